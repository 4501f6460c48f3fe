/* CUDA backend internals shared by its C files: the backend context, the per-run context that
 * ops execute in (eager or under stream capture), error mapping and the op entry points. */
#ifndef VT_CUDA_INTERNAL_H
#define VT_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#ifdef VT_CUDA_CUDNN
#include <cudnn.h>
#endif

#include "cuda_kernels.h"
#include "vt/backend.h"

/* One cached convolution plan (cuDNN descriptors + chosen algorithm), keyed by shape and kind. */
typedef struct vt_cuda_conv_plan vt_cuda_conv_plan;

typedef struct vt_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* fixed for the backend's life: captured GEMMs keep pointing at it */
    size_t blas_ws_size;
#ifdef VT_CUDA_CUDNN
    cudnnHandle_t dnn;
#endif
    int use_cudnn; /* 0 when built without cuDNN or with the option cudnn=0 */
    int verbose;   /* option verbose=1: log each convolution plan */
    void *ws;      /* eager workspace (cuDNN, im2col); grows, never referenced by a graph */
    size_t ws_size;
    unsigned char *staging[2]; /* pinned, for uploads and downloads */
    cudaEvent_t staging_ev[2];
    int staging_busy[2];
    size_t staging_size;
    vt_cuda_conv_plan **plans;
    int n_plans, cap_plans;
} vt_cuda_ctx;

/* Where one execution of ops happens. Eager runs read step values from val and take workspace from
 * the backend (growing it); captured runs read step values from device memory and may only use the
 * workspace that the graph owns (no allocation, no synchronisation while capturing). */
typedef struct vt_cuda_run {
    vt_backend *be;
    vt_cuda_ctx *cx;
    cudaStream_t stream;
    int capturing;
    vt_cuda_step_arg step;
    void *ws; /* capturing: the graph's workspace */
    size_t ws_size;
    size_t ws_peak;      /* largest workspace any op asked for in this run */
    uint64_t dispatches; /* kernels, GEMMs and cuDNN calls enqueued */
} vt_cuda_run;

/* Map a CUDA / cuBLAS / cuDNN failure to a vt_status with the call and file:line. */
vt_status vt_cuda_fail(const char *file, int line, cudaError_t e, const char *call);
vt_status vt_cuda_blas_fail(const char *file, int line, cublasStatus_t e, const char *call);
#ifdef VT_CUDA_CUDNN
vt_status vt_cuda_dnn_fail(const char *file, int line, cudnnStatus_t e, const char *call);
#define VT_DNN(call)                                                                                          \
    do {                                                                                                      \
        cudnnStatus_t vt_dnn_e_ = (call);                                                                     \
        if (vt_dnn_e_ != CUDNN_STATUS_SUCCESS) return vt_cuda_dnn_fail(__FILE__, __LINE__, vt_dnn_e_, #call); \
    } while (0)
#endif
#define VT_CU(call)                                                                            \
    do {                                                                                       \
        cudaError_t vt_cu_e_ = (call);                                                         \
        if (vt_cu_e_ != cudaSuccess) return vt_cuda_fail(__FILE__, __LINE__, vt_cu_e_, #call); \
    } while (0)
#define VT_BLAS(call)                                                                                             \
    do {                                                                                                          \
        cublasStatus_t vt_blas_e_ = (call);                                                                       \
        if (vt_blas_e_ != CUBLAS_STATUS_SUCCESS) return vt_cuda_blas_fail(__FILE__, __LINE__, vt_blas_e_, #call); \
    } while (0)

/* Device memory, with an OOM message that says what was asked and what is free. */
vt_status vt_cuda_malloc(void **p, size_t bytes, const char *what);
/* Workspace of at least bytes for the current op (see vt_cuda_run). */
vt_status vt_cuda_workspace(vt_cuda_run *run, size_t bytes, void **out);

/* Device address of a tensor's first element. */
static inline void *vt_cuda_ptr(const vt_tensor *t) { return t ? (void *)((char *)t->buf->handle + t->offset) : NULL; }

/* Enqueue one validated node. */
vt_status vt_cuda_run_node(vt_cuda_run *run, const vt_node *n);
/* GEMM and convolutions (cuda_conv.c). */
vt_status vt_cuda_matmul(vt_cuda_run *run, const vt_node *n);
vt_status vt_cuda_conv(vt_cuda_run *run, const vt_node *n);
void vt_cuda_conv_plans_free(vt_cuda_ctx *cx);
/* CUDA graphs (cuda_graph.c). */
vt_status vt_cuda_graph_compute(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx);

#endif
