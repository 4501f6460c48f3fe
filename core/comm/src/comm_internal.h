/* The communicator's record and the entry points of its MPI and NCCL parts (core/comm/), which are
 * compiled only when vtrain is built with MPI (VT_HAVE_MPI) and NCCL (VT_HAVE_NCCL). */
#ifndef VT_COMM_INTERNAL_H
#define VT_COMM_INTERNAL_H

#include "vt/comm.h"

struct vt_comm {
    int rank, size, local_rank, local_size;
    const char *kind;
    double timeout;
    vt_comm_stats stats;
    void *mpi;  /* comm_mpi.c's state; NULL for a single-process communicator */
    void *nccl; /* comm_nccl.c's state; NULL until vt_comm_nccl_init */
};

double vt_comm_now(void);

#ifdef VT_HAVE_MPI
/* Initialises MPI (unless something else did) and fills rank, size, local rank and size. */
vt_status vt_comm_mpi_open(vt_comm *c);
void vt_comm_mpi_close(vt_comm *c);
/* In-place sum of n elements (f32, or f64 when is_f64) under the timeout; what names it in messages. */
vt_status vt_comm_mpi_allreduce_sum(vt_comm *c, void *buf, size_t n, int is_f64, const char *what);
/* bytes from every rank into all, in rank order; mine NULL: already in all's slot of this rank. */
vt_status vt_comm_mpi_allgather(vt_comm *c, const void *mine, void *all, size_t bytes);
vt_status vt_comm_mpi_bcast(vt_comm *c, void *buf, size_t bytes, int root);
vt_status vt_comm_mpi_barrier(vt_comm *c);
vt_status vt_comm_mpi_allreduce_plain(vt_comm *c, float *buf, size_t n);
/* Runs `done(arg)` until it returns nonzero (1 done, -1 failed) or the timeout passes, serving the
 * other ranks' pings meanwhile; past the timeout: names the ranks that do not answer and aborts. */
int vt_comm_mpi_wait(vt_comm *c, int (*done)(void *arg), void *arg, const char *what);
void vt_comm_mpi_abort(vt_comm *c, int code, const char *msg);
/* 1 when collectives may be called from another thread than the one that started MPI. */
int vt_comm_mpi_threaded(const vt_comm *c);
#endif

#ifdef VT_HAVE_NCCL
vt_status vt_comm_nccl_open(vt_comm *c, int cuda_device);
void vt_comm_nccl_close(vt_comm *c);
vt_status vt_comm_nccl_allreduce_avg(vt_comm *c, void *dev_ptr, size_t n);
vt_status vt_comm_nccl_allgather(vt_comm *c, const void *mine_dev, void *all_dev, size_t bytes);
vt_status vt_comm_nccl_bcast(vt_comm *c, void *dev_ptr, size_t bytes, int root);
#endif

#endif
