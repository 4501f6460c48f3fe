/* Communicators for data-parallel training: rank and size, averaging a flat f32 buffer, allgather,
 * broadcast and barrier over MPI (any backend, host memory) or NCCL (CUDA device memory); rank 0 of 1 without. */
#ifndef VT_COMM_H
#define VT_COMM_H

#include "vt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_comm vt_comm;

/* What one communicator did since it was opened (or since the caller zeroed it). */
typedef struct vt_comm_stats {
    uint64_t allreduces, bcasts, barriers; /* collective calls */
    uint64_t allgathers;                   /* collective calls (synchronised batch norm's statistics) */
    uint64_t bytes_reduced;                /* payload bytes given to allreduce (per rank) */
    double seconds;                        /* wall time spent inside collectives, waits included */
} vt_comm_stats;

/* Default seconds a collective may wait for the other ranks before the job is aborted. */
#define VT_COMM_DEFAULT_TIMEOUT 300.0

/* 1 when vtrain was built with MPI (-DVT_MPI=ON), 1 when NCCL is there too (CUDA builds). */
int vt_comm_have_mpi(void);
int vt_comm_have_nccl(void);
/* 1 when the environment says a launcher started this process as one rank of a job (mpirun,
 * mpiexec, srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK), or VT_COMM=mpi. */
int vt_comm_launched(void);

/* Joins the job this process was launched in: MPI when built with it and vt_comm_launched(), else a
 * single-process communicator (rank 0 of 1, every collective a no-op). VT_COMM=single forces the
 * latter. timeout_s <= 0 takes VT_COMM_TIMEOUT from the environment, else VT_COMM_DEFAULT_TIMEOUT.
 * One MPI communicator per process: MPI cannot be initialised twice. */
vt_status vt_comm_init(double timeout_s, vt_comm **out);
/* Leaves the job (MPI_Finalize when this communicator initialised MPI). NULL is ignored. */
void vt_comm_free(vt_comm *c);

int vt_comm_rank(const vt_comm *c);
int vt_comm_size(const vt_comm *c);
/* Rank among the processes on this machine, and their count (for picking a GPU per rank). */
int vt_comm_local_rank(const vt_comm *c);
int vt_comm_local_size(const vt_comm *c);
const char *vt_comm_kind(const vt_comm *c); /* "single", "mpi" */
double vt_comm_timeout(const vt_comm *c);
void vt_comm_set_timeout(vt_comm *c, double seconds);
const vt_comm_stats *vt_comm_get_stats(const vt_comm *c);
void vt_comm_reset_stats(vt_comm *c);

/* Collectives: every rank calls them in the same order with the same sizes. Each waits at most the
 * timeout; past it, a rank prints which collective stalled, which ranks did not answer a ping, and
 * aborts the whole job (MPI_Abort, exit status 1 on every rank) rather than hang: after a half-done
 * collective no rank can go on, and the last checkpoint is the last good one. */
/* buf <- the element-wise mean of buf over all ranks (in place, host memory; same bits on every rank). */
vt_status vt_comm_allreduce_avg(vt_comm *c, float *buf, size_t n);
/* buf <- the element-wise sum over all ranks (host memory), for metric counters. */
vt_status vt_comm_allreduce_sum_f64(vt_comm *c, double *buf, size_t n);
/* Every rank's `bytes` bytes at mine, in rank order, into all (size * bytes; the same bytes on every
 * rank). mine may be all's own slot (all + rank * bytes); otherwise the two must not overlap. */
vt_status vt_comm_allgather(vt_comm *c, const void *mine, void *all, size_t bytes);
/* root's bytes to every rank. */
vt_status vt_comm_bcast(vt_comm *c, void *buf, size_t bytes, int root);
vt_status vt_comm_barrier(vt_comm *c);
/* Plain blocking MPI_Allreduce (sum) of n floats with no timeout or polling: the yardstick that
 * `vtrain bench --distributed` compares vt_comm_allreduce_avg with. */
vt_status vt_comm_allreduce_plain(vt_comm *c, float *buf, size_t n);
/* Ends every rank of the job now, after logging msg (prefixed by this rank) as an error. For the
 * program only; a single-process communicator just returns. */
void vt_comm_abort(vt_comm *c, int code, const char *msg);

/* NCCL for CUDA device memory: started over MPI (rank 0 makes the ncclUniqueId and broadcasts it).
 * cuda_device is the CUDA device this rank's backend uses. Without NCCL: VT_ERR_UNSUPPORTED. */
vt_status vt_comm_nccl_init(vt_comm *c, int cuda_device);
int vt_comm_has_nccl_ready(const vt_comm *c);
/* The mean over ranks of n floats at a CUDA device address, in place (waits for it, under the
 * timeout). The caller has finished every kernel that writes them. */
vt_status vt_comm_allreduce_avg_device(vt_comm *c, void *dev_ptr, size_t n);
/* vt_comm_allgather on CUDA device addresses (mine and all as there). */
vt_status vt_comm_allgather_device(vt_comm *c, const void *mine_dev, void *all_dev, size_t bytes);
/* root's bytes at a CUDA device address to every rank. */
vt_status vt_comm_bcast_device(vt_comm *c, void *dev_ptr, size_t bytes, int root);

/* ---- bucketed averaging of a flat gradient block ----------------------------------------- */

/* Default bucket size (bytes); VT_BUCKET_MB in the environment overrides it. */
#define VT_COMM_DEFAULT_BUCKET_BYTES ((size_t)25 << 20)

typedef struct vt_grad_sync vt_grad_sync;

/* Averages the f32 tensor `flat` (a gradient block on any backend) across the ranks of c in
 * buckets of at most bucket_bytes (0: VT_BUCKET_MB or the default), always in the same order from
 * element 0. CPU buffers are reduced in place; OpenCL/Vulkan buffers are staged through host
 * memory (one download and one upload per bucket); CUDA buffers go straight to NCCL when
 * vt_comm_nccl_init succeeded, else they are staged too. */
vt_status vt_grad_sync_new(vt_comm *c, vt_tensor *flat, size_t bucket_bytes, vt_grad_sync **out);
void vt_grad_sync_free(vt_grad_sync *s);
int vt_grad_sync_n_buckets(const vt_grad_sync *s);
/* Elements [*first, *first + *count) of flat form bucket i. */
void vt_grad_sync_bucket(const vt_grad_sync *s, int i, int64_t *first, int64_t *count);
/* Waits for the backend, then averages every bucket (a no-op on one rank). */
vt_status vt_grad_sync_run(vt_grad_sync *s);
/* Overlap with the backward pass: begin, then hand over each bucket as soon as the last node that
 * reads or writes it has been enqueued (ready waits for the backend, stages the bucket and passes it
 * to a thread that averages buckets in the order given: the same order on every rank), then end
 * (waits for the thread, uploads staged buckets). Only where collectives may run on another thread
 * (MPI_THREAD_MULTIPLE), on host-reachable memory, and unless VT_OVERLAP=0. */
int vt_grad_sync_can_overlap(const vt_grad_sync *s);
vt_status vt_grad_sync_begin(vt_grad_sync *s);
vt_status vt_grad_sync_ready(vt_grad_sync *s, int bucket);
vt_status vt_grad_sync_end(vt_grad_sync *s);
/* Between begin and end: waits until every bucket handed over so far is averaged, so that the caller
 * may run collectives of its own on the communicator (two threads must not run collectives of one
 * communicator at once, and every rank must see them in the same order). A failure of the thread is
 * returned here and by end. */
vt_status vt_grad_sync_drain(vt_grad_sync *s);
/* Seconds the last step waited (in drain and end): communication that the backward pass did not hide. */
double vt_grad_sync_exposed_seconds(const vt_grad_sync *s);
/* Seconds the last run took (staging included) and the bytes it reduced. */
double vt_grad_sync_last_seconds(const vt_grad_sync *s);
size_t vt_grad_sync_bytes(const vt_grad_sync *s);

#ifdef __cplusplus
}
#endif
#endif
