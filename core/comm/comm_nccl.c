/* The NCCL communicator for CUDA device memory: rank 0 makes the ncclUniqueId and MPI broadcasts it;
 * collectives run on a stream of their own and are polled against the same deadline as MPI's. */
#define _POSIX_C_SOURCE 200809L
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_internal.h"

typedef struct nccl_state {
    ncclComm_t comm;
    cudaStream_t stream;
    int device;
} nccl_state;

static vt_status nccl_fail(ncclResult_t r, const char *what) {
    return vt_error(VT_ERR_DEVICE, "%s: %s", what, ncclGetErrorString(r));
}

static vt_status cuda_fail(cudaError_t e, const char *what) {
    return vt_error(VT_ERR_DEVICE, "%s: %s", what, cudaGetErrorString(e));
}

vt_status vt_comm_nccl_open(vt_comm *c, int cuda_device) {
    if (!c->mpi && c->size > 1) return vt_error(VT_ERR_INVALID_ARG, "NCCL needs the MPI communicator to start");
    cudaError_t e = cudaSetDevice(cuda_device);
    if (e != cudaSuccess) return cuda_fail(e, "NCCL: cudaSetDevice");
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) return nccl_fail(r, "ncclGetUniqueId");
    }
    VT_TRY(vt_comm_bcast(c, &id, sizeof id, 0));
    nccl_state *n = calloc(1, sizeof *n);
    if (!n) return vt_error(VT_ERR_OOM, "out of host memory");
    n->device = cuda_device;
    e = cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        free(n);
        return cuda_fail(e, "NCCL: cudaStreamCreate");
    }
    /* non-blocking init, so that a rank that never joins trips the timeout instead of hanging here */
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&n->comm, c->size, id, c->rank, &cfg);
    double t0 = vt_comm_now();
    while (r == ncclSuccess || r == ncclInProgress) {
        ncclResult_t st = ncclInProgress;
        if (ncclCommGetAsyncError(n->comm, &st) != ncclSuccess) break;
        if (st == ncclSuccess) break;
        if (st != ncclInProgress) {
            r = st;
            break;
        }
        if (vt_comm_now() - t0 > c->timeout) {
            ncclCommAbort(n->comm);
            char msg[256];
            snprintf(msg, sizeof msg, "NCCL start (ncclCommInitRank) not finished after %.1f s; aborting every rank",
                     c->timeout);
            vt_comm_abort(c, 1, msg);
            break;
        }
    }
    if (r != ncclSuccess && r != ncclInProgress) {
        cudaStreamDestroy(n->stream);
        free(n);
        return nccl_fail(r, "ncclCommInitRank");
    }
    c->nccl = n;
    return VT_OK;
}

void vt_comm_nccl_close(vt_comm *c) {
    nccl_state *n = c->nccl;
    ncclCommDestroy(n->comm);
    cudaStreamDestroy(n->stream);
    free(n);
    c->nccl = NULL;
}

/* Waits for the stream under the timeout; a late peer aborts the NCCL communicator, then the job. */
static vt_status wait_stream(vt_comm *c, const char *what) {
    nccl_state *n = c->nccl;
    double t0 = vt_comm_now();
    for (;;) {
        cudaError_t e = cudaStreamQuery(n->stream);
        if (e == cudaSuccess) return VT_OK;
        if (e != cudaErrorNotReady) return cuda_fail(e, what);
        ncclResult_t st = ncclSuccess;
        ncclCommGetAsyncError(n->comm, &st);
        if (st != ncclSuccess && st != ncclInProgress) return nccl_fail(st, what);
        double waited = vt_comm_now() - t0;
        if (waited > c->timeout) {
            ncclCommAbort(n->comm);
            c->nccl = NULL;
            char msg[256];
            snprintf(msg, sizeof msg,
                     "%s on the GPU not finished after %.1f s (a rank is dead or stalled); aborting every rank", what,
                     waited);
            vt_comm_abort(c, 1, msg);
            return vt_error(VT_ERR_NETWORK, "%s", msg);
        }
    }
}

vt_status vt_comm_nccl_allreduce_avg(vt_comm *c, void *dev_ptr, size_t n) {
    nccl_state *s = c->nccl;
    ncclResult_t r = ncclAllReduce(dev_ptr, dev_ptr, n, ncclFloat32, ncclAvg, s->comm, s->stream);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_fail(r, "ncclAllReduce");
    return wait_stream(c, "allreduce");
}

vt_status vt_comm_nccl_allgather(vt_comm *c, const void *mine_dev, void *all_dev, size_t bytes) {
    nccl_state *s = c->nccl;
    ncclResult_t r = ncclAllGather(mine_dev, all_dev, bytes, ncclUint8, s->comm, s->stream);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_fail(r, "ncclAllGather");
    return wait_stream(c, "allgather");
}

vt_status vt_comm_nccl_bcast(vt_comm *c, void *dev_ptr, size_t bytes, int root) {
    nccl_state *s = c->nccl;
    ncclResult_t r = ncclBroadcast(dev_ptr, dev_ptr, bytes, ncclUint8, root, s->comm, s->stream);
    if (r != ncclSuccess && r != ncclInProgress) return nccl_fail(r, "ncclBroadcast");
    return wait_stream(c, "broadcast");
}
