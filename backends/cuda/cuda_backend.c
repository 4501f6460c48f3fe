/* CUDA backend: registration, device enumeration, buffers (cudaMalloc, uploads and downloads through
 * pinned staging memory), error mapping, and the dispatch of one node to its kernel or library call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "vt/registry.h"

#define VT_CUDA_BLAS_WS (32u << 20) /* cuBLAS workspace: what NVIDIA advises for Hopper */
#define VT_CUDA_STAGING (8u << 20)  /* each of the two pinned staging halves */

/* ---- errors ---- */

/* Errors after which the context is unusable: report them as a lost device so callers stop. */
static int vt_cuda_sticky(cudaError_t e) {
    switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorECCUncorrectable:
    case cudaErrorLaunchTimeout:
    case cudaErrorAssert: return 1;
    default: return 0;
    }
}

vt_status vt_cuda_fail(const char *file, int line, cudaError_t e, const char *call) {
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError(); /* allocation failures are not sticky; clear them */
        return vt_set_error_at(file, line, VT_ERR_OOM, "cuda: %s: out of device memory (%.1f of %.1f MiB free)", call,
                               (double)free_b / 1048576.0, (double)total_b / 1048576.0);
    }
    vt_status s = vt_cuda_sticky(e) ? VT_ERR_DEVICE_LOST : VT_ERR_DEVICE;
    return vt_set_error_at(file, line, s, "cuda: %s failed: %s (%s)", call, cudaGetErrorName(e), cudaGetErrorString(e));
}

vt_status vt_cuda_blas_fail(const char *file, int line, cublasStatus_t e, const char *call) {
    vt_status s = e == CUBLAS_STATUS_ALLOC_FAILED ? VT_ERR_OOM : VT_ERR_DEVICE;
    return vt_set_error_at(file, line, s, "cuda: %s failed: %s (%s)", call, cublasGetStatusName(e),
                           cublasGetStatusString(e));
}

#ifdef VT_CUDA_CUDNN
vt_status vt_cuda_dnn_fail(const char *file, int line, cudnnStatus_t e, const char *call) {
    vt_status s = e == CUDNN_STATUS_ALLOC_FAILED ? VT_ERR_OOM : VT_ERR_DEVICE;
    return vt_set_error_at(file, line, s, "cuda: %s failed: %s", call, cudnnGetErrorString(e));
}
#endif

vt_status vt_cuda_malloc(void **p, size_t bytes, const char *what) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return VT_OK;
    *p = NULL;
    if (e != cudaErrorMemoryAllocation) return vt_cuda_fail(__FILE__, __LINE__, e, "cudaMalloc");
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();
    cudaMemGetInfo(&free_b, &total_b);
    return vt_error(VT_ERR_OOM, "cuda: %s: cannot allocate %.1f MiB of device memory (%.1f of %.1f MiB free)", what,
                    (double)bytes / 1048576.0, (double)free_b / 1048576.0, (double)total_b / 1048576.0);
}

vt_status vt_cuda_workspace(vt_cuda_run *run, size_t bytes, void **out) {
    *out = NULL;
    if (bytes > run->ws_peak) run->ws_peak = bytes;
    if (bytes == 0) return VT_OK;
    if (run->capturing) {
        if (bytes > run->ws_size)
            return vt_error(VT_ERR_INVALID_ARG,
                            "cuda: an op asks for %zu bytes of workspace while capturing a graph that owns %zu", bytes,
                            run->ws_size);
        *out = run->ws;
        return VT_OK;
    }
    vt_cuda_ctx *cx = run->cx;
    if (bytes > cx->ws_size) {
        /* Kernels already enqueued may still use the old block. */
        VT_CU(cudaStreamSynchronize(cx->stream));
        cudaFree(cx->ws);
        cx->ws = NULL;
        cx->ws_size = 0;
        size_t size = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
        VT_TRY(vt_cuda_malloc(&cx->ws, size, "workspace"));
        cx->ws_size = size;
    }
    *out = cx->ws;
    return VT_OK;
}

/* ---- devices ---- */

static int cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        vt_error(VT_ERR_NOT_FOUND, "cuda: no usable device: %s (%s)", cudaGetErrorName(e), cudaGetErrorString(e));
        cudaGetLastError();
        return 0;
    }
    if (n == 0) vt_error(VT_ERR_NOT_FOUND, "cuda: the driver reports no CUDA device");
    return n;
}

/* FP32 lanes per SM, for the peak figure. */
static int cuda_cores_per_sm(int major, int minor) {
    if (major == 7) return 64;
    if (major == 8) return minor == 0 ? 64 : 128;
    if (major >= 9) return 128;
    return 64;
}

static vt_status cuda_device_info(int index, vt_device_info *out) {
    memset(out, 0, sizeof *out);
    int n = cuda_device_count();
    if (index < 0 || index >= n) return vt_error(VT_ERR_NOT_FOUND, "cuda: device %d asked, %d present", index, n);
    struct cudaDeviceProp prop;
    VT_CU(cudaGetDeviceProperties(&prop, index));
    int drv = 0, rt = 0, khz = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, index);
    snprintf(out->backend, sizeof out->backend, "cuda");
    snprintf(out->name, sizeof out->name, "%.127s", prop.name);
    snprintf(out->vendor, sizeof out->vendor, "NVIDIA");
    snprintf(out->driver, sizeof out->driver, "driver %d.%d, runtime %d.%d, sm_%d%d", drv / 1000, (drv % 1000) / 10,
             rt / 1000, (rt % 1000) / 10, prop.major, prop.minor);
    snprintf(out->type, sizeof out->type, "%s", prop.integrated ? "integrated" : "gpu");
    out->memory_bytes = (uint64_t)prop.totalGlobalMem;
    out->compute_units = prop.multiProcessorCount;
    out->peak_gflops = 2.0 * prop.multiProcessorCount * cuda_cores_per_sm(prop.major, prop.minor) * (double)khz * 1e-6;
    return VT_OK;
}

/* ---- backend life ---- */

static void cuda_free(vt_backend *be) {
    if (!be) return;
    vt_cuda_ctx *cx = be->context;
    if (cx) {
        cudaSetDevice(cx->device);
        if (cx->stream) cudaStreamSynchronize(cx->stream);
        vt_cuda_conv_plans_free(cx);
#ifdef VT_CUDA_CUDNN
        if (cx->dnn) cudnnDestroy(cx->dnn);
#endif
        if (cx->blas) cublasDestroy(cx->blas);
        cudaFree(cx->blas_ws);
        cudaFree(cx->ws);
        for (int i = 0; i < 2; i++) {
            if (cx->staging[i]) cudaFreeHost(cx->staging[i]);
            if (cx->staging_ev[i]) cudaEventDestroy(cx->staging_ev[i]);
        }
        if (cx->stream) cudaStreamDestroy(cx->stream);
        free(cx);
    }
    free(be);
}

static vt_status cuda_setup(vt_backend *be, vt_cuda_ctx *cx) {
    VT_CU(cudaSetDevice(cx->device));
    VT_CU(cudaStreamCreateWithFlags(&cx->stream, cudaStreamNonBlocking));
    VT_BLAS(cublasCreate(&cx->blas));
    /* cublasSetStream resets the workspace, so the stream comes first. */
    VT_BLAS(cublasSetStream(cx->blas, cx->stream));
    cx->blas_ws_size = VT_CUDA_BLAS_WS;
    VT_TRY(vt_cuda_malloc(&cx->blas_ws, cx->blas_ws_size, "cuBLAS workspace"));
    /* A fixed user workspace keeps cuBLAS from allocating inside a graph capture. */
    VT_BLAS(cublasSetWorkspace(cx->blas, cx->blas_ws, cx->blas_ws_size));
    /* FP32 GEMMs stay FP32 unless TF32 was asked for. */
    VT_BLAS(cublasSetMathMode(cx->blas, be->opts.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
#ifdef VT_CUDA_CUDNN
    if (cx->use_cudnn) {
        cudnnStatus_t st = cudnnCreate(&cx->dnn);
        if (st != CUDNN_STATUS_SUCCESS) return vt_cuda_dnn_fail(__FILE__, __LINE__, st, "cudnnCreate");
        VT_DNN(cudnnSetStream(cx->dnn, cx->stream));
    }
#endif
    cx->staging_size = VT_CUDA_STAGING;
    for (int i = 0; i < 2; i++) {
        VT_CU(cudaHostAlloc((void **)&cx->staging[i], cx->staging_size, cudaHostAllocDefault));
        VT_CU(cudaEventCreateWithFlags(&cx->staging_ev[i], cudaEventDisableTiming));
    }
    snprintf(be->info.config, sizeof be->info.config, "convolutions through %s; %s GEMMs",
             cx->use_cudnn ? "cuDNN" : "im2col + cuBLAS", be->opts.tf32 ? "TF32" : "FP32");
    return VT_OK;
}

/* The options string (vt_backend_opts.options or VT_CUDA_OPTIONS): cudnn=0 takes the convolutions
 * through im2col + cuBLAS even where cuDNN was built in; verbose=1 logs each convolution plan. */
static const char *const cuda_option_keys[] = {"cudnn", "verbose", NULL};

static vt_status cuda_options(const vt_backend_opts *opts, vt_cuda_ctx *cx) {
    vt_options o;
    VT_TRY(vt_options_parse("cuda", opts, cuda_option_keys, &o));
    int cudnn = 1;
    VT_TRY(vt_options_bool(&o, "cuda", "cudnn", 1, &cudnn));
    VT_TRY(vt_options_bool(&o, "cuda", "verbose", 0, &cx->verbose));
#ifdef VT_CUDA_CUDNN
    cx->use_cudnn = cudnn;
#else
    cx->use_cudnn = 0; /* built without cuDNN: im2col whatever the option says */
#endif
    return VT_OK;
}

static const vt_backend_i cuda_iface;

static vt_status cuda_init(int index, const vt_backend_opts *opts, vt_backend **out) {
    *out = NULL;
    vt_backend *be = calloc(1, sizeof *be);
    vt_cuda_ctx *cx = calloc(1, sizeof *cx);
    if (!be || !cx) {
        free(be);
        free(cx);
        return vt_error(VT_ERR_OOM, "cuda: out of host memory");
    }
    be->iface = &cuda_iface;
    be->context = cx;
    if (opts) be->opts = *opts;
    cx->device = index;
    /* Before the device: a bad option is the caller's mistake, not the device's. */
    vt_status s = cuda_options(opts, cx);
    if (s != VT_OK) {
        free(be);
        free(cx);
        return s;
    }
    s = cuda_device_info(index, &be->info);
    if (s == VT_OK) s = cuda_setup(be, cx);
    if (s != VT_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vt_last_error());
        cuda_free(be);
        vt_clear_error();
        return vt_error(s, "cuda: device %d could not be opened: %s", index, msg);
    }
    *out = be;
    return VT_OK;
}

/* ---- buffers ---- */

static vt_status cuda_buffer_alloc(vt_backend *be, vt_buffer *buf) {
    vt_cuda_ctx *cx = be->context;
    VT_CU(cudaSetDevice(cx->device));
    void *p = NULL;
    char what[64];
    snprintf(what, sizeof what, "buffer of %zu bytes", buf->size);
    VT_TRY(vt_cuda_malloc(&p, buf->size, what));
    /* On the backend's stream, so that every later use is ordered after the zeroing. */
    cudaError_t e = cudaMemsetAsync(p, 0, buf->size ? buf->size : 1, cx->stream);
    if (e != cudaSuccess) {
        cudaFree(p);
        return vt_cuda_fail(__FILE__, __LINE__, e, "cudaMemsetAsync");
    }
    buf->handle = p;
    buf->host = NULL;
    return VT_OK;
}

static void cuda_buffer_free(vt_backend *be, vt_buffer *buf) {
    vt_cuda_ctx *cx = be->context;
    if (!buf->handle) return;
    cudaSetDevice(cx->device);
    cudaStreamSynchronize(cx->stream); /* queued work may still read it */
    cudaFree(buf->handle);
    buf->handle = NULL;
}

static vt_status cuda_check_range(const vt_buffer *buf, size_t off, size_t size, const char *what) {
    if (!buf->handle) return vt_error(VT_ERR_INVALID_ARG, "cuda: %s on a buffer with no device memory", what);
    if (off > buf->size || size > buf->size - off)
        return vt_error(VT_ERR_INVALID_ARG, "cuda: %s of %zu bytes at %zu past buffer of %zu", what, size, off,
                        buf->size);
    return VT_OK;
}

/* Two pinned halves: the host fills one while the other is being copied. */
static vt_status cuda_buffer_write(vt_backend *be, vt_buffer *buf, size_t off, const void *data, size_t size) {
    vt_cuda_ctx *cx = be->context;
    VT_TRY(cuda_check_range(buf, off, size, "write"));
    VT_CU(cudaSetDevice(cx->device));
    const char *src = data;
    char *dst = (char *)buf->handle + off;
    int slot = 0;
    for (size_t done = 0; done < size; slot ^= 1) {
        size_t chunk = size - done < cx->staging_size ? size - done : cx->staging_size;
        if (cx->staging_busy[slot]) VT_CU(cudaEventSynchronize(cx->staging_ev[slot]));
        cx->staging_busy[slot] = 0;
        memcpy(cx->staging[slot], src + done, chunk);
        VT_CU(cudaMemcpyAsync(dst + done, cx->staging[slot], chunk, cudaMemcpyHostToDevice, cx->stream));
        VT_CU(cudaEventRecord(cx->staging_ev[slot], cx->stream));
        cx->staging_busy[slot] = 1;
        done += chunk;
    }
    VT_CU(cudaStreamSynchronize(cx->stream));
    cx->staging_busy[0] = cx->staging_busy[1] = 0;
    return VT_OK;
}

static vt_status cuda_buffer_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    vt_cuda_ctx *cx = be->context;
    VT_TRY(cuda_check_range(buf, off, size, "read"));
    VT_CU(cudaSetDevice(cx->device));
    char *out = data;
    const char *src = (const char *)buf->handle + off;
    size_t prev_off = 0, prev_len = 0;
    int slot = 0;
    /* Copy chunk i to the device->host half while the host drains chunk i-1 from the other. */
    for (size_t done = 0; done < size; slot ^= 1) {
        size_t chunk = size - done < cx->staging_size ? size - done : cx->staging_size;
        VT_CU(cudaMemcpyAsync(cx->staging[slot], src + done, chunk, cudaMemcpyDeviceToHost, cx->stream));
        VT_CU(cudaEventRecord(cx->staging_ev[slot], cx->stream));
        if (prev_len) {
            VT_CU(cudaEventSynchronize(cx->staging_ev[slot ^ 1]));
            memcpy(out + prev_off, cx->staging[slot ^ 1], prev_len);
        }
        prev_off = done;
        prev_len = chunk;
        done += chunk;
    }
    VT_CU(cudaStreamSynchronize(cx->stream));
    if (prev_len) memcpy(out + prev_off, cx->staging[slot ^ 1], prev_len);
    return VT_OK;
}

/* ---- nodes ---- */

/* The ops vt_cuda_run_node implements: a new op is unsupported here until it gets a row and a case. */
static const unsigned char cuda_ops[VT_OP_COUNT] = {
    [VT_OP_MATMUL] = 1,
    [VT_OP_BIAS_GRAD] = 1,
    [VT_OP_CONV2D] = 1,
    [VT_OP_CONV2D_BWD_DATA] = 1,
    [VT_OP_CONV2D_BWD_WEIGHT] = 1,
    [VT_OP_POOL2D] = 1,
    [VT_OP_POOL2D_BWD] = 1,
    [VT_OP_BATCHNORM] = 1,
    [VT_OP_BATCHNORM_BWD] = 1,
    [VT_OP_ACT] = 1,
    [VT_OP_ACT_BWD] = 1,
    [VT_OP_DROPOUT] = 1,
    [VT_OP_DROPOUT_BWD] = 1,
    [VT_OP_ADD] = 1,
    [VT_OP_SOFTMAX_CE] = 1,
    [VT_OP_SOFTMAX_CE_BWD] = 1,
    [VT_OP_ARGMAX] = 1,
    [VT_OP_UPSAMPLE] = 1,
    [VT_OP_UPSAMPLE_BWD] = 1,
    [VT_OP_BATCH_PREP] = 1,
    [VT_OP_SGD] = 1,
    [VT_OP_ADAM] = 1,
    [VT_OP_FILL] = 1,
    [VT_OP_NONFINITE] = 1,
    [VT_OP_BN_STATS] = 1,
    [VT_OP_BN_APPLY] = 1,
    [VT_OP_BN_BWD_STATS] = 1,
    [VT_OP_BN_BWD_APPLY] = 1,
    [VT_OP_CONV2D_TRANSPOSE] = 1,
    [VT_OP_CONFUSION] = 1,
};
_Static_assert(sizeof cuda_ops / sizeof cuda_ops[0] == VT_OP_COUNT, "cuda_ops has one entry per op");

/* Validation already refuses f16/bf16 and gelu in MATMUL/CONV2D epilogues; the table is all there is. */
static bool cuda_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    return n->op > VT_OP_NONE && n->op < VT_OP_COUNT && cuda_ops[n->op];
}

static vt_status cuda_check_operands(vt_cuda_run *run, const vt_node *n) {
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        const vt_tensor *t = i < VT_MAX_SRC ? n->src[i] : n->dst[i - VT_MAX_SRC];
        if (!t) continue;
        if (!t->buf || !t->buf->handle)
            return vt_error(VT_ERR_INVALID_ARG, "cuda: %s %s: tensor %s has no device memory", vt_op_name(n->op),
                            n->label, t->name);
        if (t->buf->backend != run->be)
            return vt_error(VT_ERR_INVALID_ARG, "cuda: %s %s: tensor %s lives on backend %s", vt_op_name(n->op),
                            n->label, t->name, t->buf->backend ? t->buf->backend->info.backend : "?");
        if (t->offset + vt_tensor_nbytes(t) > t->buf->size)
            return vt_error(VT_ERR_INVALID_ARG, "cuda: %s %s: tensor %s ends past its buffer", vt_op_name(n->op),
                            n->label, t->name);
    }
    return VT_OK;
}

#define F(t) ((float *)vt_cuda_ptr(t))
#define I(t) ((int32_t *)vt_cuda_ptr(t))
#define LAUNCH(call)       \
    do {                   \
        VT_CU(call);       \
        run->dispatches++; \
    } while (0)

static vt_status cuda_fill(vt_cuda_run *run, const vt_tensor *t, float value) {
    int64_t n = vt_tensor_nelem(t);
    uint32_t pattern;
    if (t->dtype == VT_F32) {
        memcpy(&pattern, &value, 4);
    } else {
        /* Integer fills: truncate toward zero, clamp to the type's range, NaN gives 0 (as the CPU does). */
        double lo = t->dtype == VT_I32 ? -2147483648.0 : 0.0;
        double hi = t->dtype == VT_I32 ? 2147483647.0 : t->dtype == VT_U32 ? 4294967295.0 : 255.0;
        double dv = isnan(value) ? 0.0 : trunc((double)value);
        if (dv < lo) dv = lo;
        if (dv > hi) dv = hi;
        if (t->dtype == VT_U8) {
            LAUNCH(cudaMemsetAsync(vt_cuda_ptr(t), (int)dv, (size_t)n, run->stream));
            return VT_OK;
        }
        if (t->dtype == VT_I32) {
            int32_t v = (int32_t)dv;
            memcpy(&pattern, &v, 4);
        } else if (t->dtype == VT_U32) {
            pattern = (uint32_t)dv;
        } else {
            return vt_error(VT_ERR_DTYPE, "cuda: fill of %s is not supported", vt_dtype_name(t->dtype));
        }
    }
    LAUNCH(vt_cuda_fill32(run->stream, vt_cuda_ptr(t), n, pattern));
    return VT_OK;
}

/* x of a batch norm viewed as [N, C, HW] ([N, C] has HW = 1). */
static void bn_dims(const vt_tensor *x, int64_t *N, int64_t *C, int64_t *HW) {
    *N = x->shape[0];
    *C = x->shape[1];
    *HW = vt_tensor_nelem(x) / (*N * *C);
}

/* Distance between the classes of one row of logits: 1 for [N,K], H*W for per-pixel [N,K,H,W]. */
static int64_t class_stride(const vt_tensor *logits) {
    return logits->ndim == 4 ? logits->shape[2] * logits->shape[3] : 1;
}

vt_status vt_cuda_run_node(vt_cuda_run *run, const vt_node *n) {
    VT_TRY(cuda_check_operands(run, n));
    cudaStream_t st = run->stream;
    vt_tensor *const *s = n->src;
    vt_tensor *const *d = n->dst;
    switch (n->op) {
    case VT_OP_MATMUL: return vt_cuda_matmul(run, n);
    case VT_OP_CONV2D:
    case VT_OP_CONV2D_BWD_DATA:
    case VT_OP_CONV2D_BWD_WEIGHT:
    case VT_OP_CONV2D_TRANSPOSE: return vt_cuda_conv(run, n);
    case VT_OP_BIAS_GRAD: {
        int64_t N = s[0]->shape[0], C = s[0]->shape[1];
        LAUNCH(vt_cuda_channel_sum(st, F(s[0]), F(d[0]), N, C, vt_tensor_nelem(s[0]) / (N * C)));
        return VT_OK;
    }
    case VT_OP_POOL2D:
    case VT_OP_POOL2D_BWD: {
        const vt_tensor *x = n->op == VT_OP_POOL2D ? s[0] : s[1];
        const vt_tensor *y = n->op == VT_OP_POOL2D ? d[0] : s[0];
        int64_t NC = x->shape[0] * x->shape[1];
        int H = (int)x->shape[2], W = (int)x->shape[3], P = (int)y->shape[2], Q = (int)y->shape[3];
        if (n->op == VT_OP_POOL2D) LAUNCH(vt_cuda_pool(st, F(s[0]), F(d[0]), NC, H, W, P, Q, &n->p.pool2d));
        else LAUNCH(vt_cuda_pool_bwd(st, F(s[0]), F(s[1]), F(d[0]), NC, H, W, P, Q, &n->p.pool2d));
        return VT_OK;
    }
    case VT_OP_BATCHNORM: {
        const vt_tensor *x = s[0];
        int64_t N = x->shape[0], C = x->shape[1], HW = vt_tensor_nelem(x) / (N * C);
        LAUNCH(vt_cuda_bn_fwd(st, F(x), F(s[1]), F(s[2]), F(s[3]), F(s[4]), F(d[0]), F(d[1]), F(d[2]), N, C, HW,
                              n->p.bn.training, n->p.bn.momentum, n->p.bn.eps));
        return VT_OK;
    }
    case VT_OP_BATCHNORM_BWD: {
        const vt_tensor *x = s[1];
        int64_t N = x->shape[0], C = x->shape[1], HW = vt_tensor_nelem(x) / (N * C);
        LAUNCH(vt_cuda_bn_bwd(st, F(s[0]), F(x), F(s[2]), F(s[3]), F(s[4]), F(d[0]), F(d[1]), F(d[2]), N, C, HW,
                              n->p.bn.training));
        return VT_OK;
    }
    case VT_OP_BN_STATS: {
        int64_t N, C, HW;
        bn_dims(s[0], &N, &C, &HW);
        LAUNCH(vt_cuda_bn_stats(st, F(s[0]), F(d[0]), N, C, HW));
        return VT_OK;
    }
    case VT_OP_BN_APPLY: {
        int64_t N, C, HW;
        bn_dims(s[0], &N, &C, &HW);
        LAUNCH(vt_cuda_bn_apply(st, F(s[0]), F(s[1]), F(s[2]), F(s[3]), F(d[0]), F(d[1]), F(d[2]), N, C, HW,
                                n->p.bn.count, n->p.bn.momentum, n->p.bn.eps));
        return VT_OK;
    }
    case VT_OP_BN_BWD_STATS: {
        int64_t N, C, HW;
        bn_dims(s[1], &N, &C, &HW);
        LAUNCH(vt_cuda_bn_bwd_stats(st, F(s[0]), F(s[1]), F(s[2]), F(d[0]), F(d[1]), F(d[2]), N, C, HW, n->p.bn.eps));
        return VT_OK;
    }
    case VT_OP_BN_BWD_APPLY: {
        int64_t N, C, HW;
        bn_dims(s[1], &N, &C, &HW);
        LAUNCH(vt_cuda_bn_bwd_apply(st, F(s[0]), F(s[1]), F(s[2]), F(s[3]), F(s[4]), F(d[0]), N, C, HW, n->p.bn.count,
                                    n->p.bn.eps));
        return VT_OK;
    }
    case VT_OP_ACT:
        LAUNCH(vt_cuda_act(st, F(s[0]), F(d[0]), vt_tensor_nelem(s[0]), n->p.act.kind, n->p.act.alpha));
        return VT_OK;
    case VT_OP_ACT_BWD:
        LAUNCH(vt_cuda_act_bwd(st, F(s[0]), F(s[1]), F(d[0]), vt_tensor_nelem(s[0]), n->p.act.kind, n->p.act.alpha));
        return VT_OK;
    case VT_OP_DROPOUT:
    case VT_OP_DROPOUT_BWD:
        LAUNCH(
            vt_cuda_dropout(st, F(s[0]), F(d[0]), vt_tensor_nelem(s[0]), n->p.dropout.p, n->p.dropout.salt, run->step));
        return VT_OK;
    case VT_OP_ADD: LAUNCH(vt_cuda_add(st, F(s[0]), F(s[1]), F(d[0]), vt_tensor_nelem(s[0]))); return VT_OK;
    case VT_OP_SOFTMAX_CE: {
        int64_t S = class_stride(s[0]);
        LAUNCH(vt_cuda_softmax_ce(st, F(s[0]), I(s[1]), F(d[0]), F(d[1]), s[0]->shape[0], s[0]->shape[1], S,
                                  n->p.ce.label_smoothing, n->p.ce.ignore));
        return VT_OK;
    }
    case VT_OP_SOFTMAX_CE_BWD: {
        int64_t S = class_stride(s[0]);
        LAUNCH(vt_cuda_softmax_ce_bwd(st, F(s[0]), I(s[1]), F(d[0]), s[0]->shape[0], s[0]->shape[1], S,
                                      n->p.ce.label_smoothing, n->p.ce.scale, n->p.ce.ignore));
        return VT_OK;
    }
    case VT_OP_ARGMAX:
        LAUNCH(vt_cuda_argmax(st, F(s[0]), I(d[0]), s[0]->shape[0], s[0]->shape[1], class_stride(s[0])));
        return VT_OK;
    case VT_OP_CONFUSION:
        LAUNCH(vt_cuda_confusion(st, I(s[0]), I(s[1]), I(d[0]), vt_tensor_nelem(s[0]), (int)d[0]->shape[0] - 1));
        return VT_OK;
    case VT_OP_UPSAMPLE:
    case VT_OP_UPSAMPLE_BWD: {
        const vt_tensor *x = n->op == VT_OP_UPSAMPLE ? s[0] : d[0];
        const vt_tensor *y = n->op == VT_OP_UPSAMPLE ? d[0] : s[0];
        int64_t NC = x->shape[0] * x->shape[1];
        int H = (int)x->shape[2], W = (int)x->shape[3], Ho = (int)y->shape[2], Wo = (int)y->shape[3];
        if (n->op == VT_OP_UPSAMPLE)
            LAUNCH(vt_cuda_upsample(st, F(s[0]), F(d[0]), NC, H, W, Ho, Wo, n->p.upsample.mode));
        else LAUNCH(vt_cuda_upsample_bwd(st, F(s[0]), F(d[0]), NC, H, W, Ho, Wo, n->p.upsample.mode));
        return VT_OK;
    }
    case VT_OP_BATCH_PREP: {
        const vt_tensor *img = s[0], *x = d[0];
        int masks = s[1]->dtype == VT_U8; /* segmentation masks [D,H,W], else one i32 label per image */
        LAUNCH(vt_cuda_batch_prep(st, vt_cuda_ptr(img), masks ? NULL : I(s[1]), masks ? vt_cuda_ptr(s[1]) : NULL,
                                  I(s[2]), F(x), I(d[1]), img->shape[0], x->shape[0], (int)x->shape[1],
                                  (int)img->shape[2], (int)img->shape[3], (int)x->shape[2], (int)x->shape[3],
                                  &n->p.prep, run->step));
        return VT_OK;
    }
    case VT_OP_SGD:
        LAUNCH(vt_cuda_sgd(st, F(s[0]), F(d[0]), n->p.sgd.momentum != 0.0f ? F(d[1]) : NULL, vt_tensor_nelem(d[0]),
                           &n->p.sgd, run->step));
        return VT_OK;
    case VT_OP_ADAM:
        LAUNCH(vt_cuda_adam(st, F(s[0]), F(d[0]), F(d[1]), F(d[2]), vt_tensor_nelem(d[0]), &n->p.adam, run->step));
        return VT_OK;
    case VT_OP_FILL: return cuda_fill(run, d[0], n->p.fill.value);
    case VT_OP_NONFINITE: LAUNCH(vt_cuda_nonfinite(st, F(s[0]), vt_tensor_nelem(s[0]), I(d[0]))); return VT_OK;
    default: return vt_error(VT_ERR_UNSUPPORTED, "cuda: op %s (%s) is not implemented", vt_op_name(n->op), n->label);
    }
}

static vt_status cuda_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    vt_cuda_ctx *cx = be->context;
    VT_CU(cudaSetDevice(cx->device));
    vt_cuda_run run;
    memset(&run, 0, sizeof run);
    run.be = be;
    run.cx = cx;
    run.stream = cx->stream;
    if (ctx) {
        run.step.val.step = ctx->step;
        run.step.val.seed = ctx->seed;
        run.step.val.lr = ctx->lr;
        run.step.val.batch_start = ctx->batch_start;
    }
    vt_status s = vt_cuda_run_node(&run, n);
    be->counters.dispatches += run.dispatches;
    return s;
}

static vt_status cuda_sync(vt_backend *be) {
    vt_cuda_ctx *cx = be->context;
    VT_CU(cudaSetDevice(cx->device));
    VT_CU(cudaStreamSynchronize(cx->stream));
    return VT_OK;
}

static const vt_backend_i cuda_iface = {
    .free = cuda_free,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .buffer_write = cuda_buffer_write,
    .buffer_read = cuda_buffer_read,
    .supports_node = cuda_supports,
    .compute_node = cuda_compute,
    .graph_compute = vt_cuda_graph_compute,
    .synchronize = cuda_sync,
};

const vt_backend_reg *vt_backend_reg_cuda(void) {
    static const vt_backend_reg reg = {"cuda", cuda_device_count, cuda_device_info, cuda_init};
    return &reg;
}
