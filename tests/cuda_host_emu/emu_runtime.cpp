// A host stand-in for the CUDA runtime and cuBLAS, for running the CUDA backend's C code and its
// tests on a machine without a GPU: memory is host memory, the stream runs each operation when it
// is enqueued, stream capture records the operations and a graph launch replays them, cuBLAS SGEMM
// is a column-major loop written from the cuBLAS documentation, and the kernel launchers are those
// of cuda_kernels.cu (launches.inc, made by run.sh) running the kernels on emu_shim.h.
#include "emu_shim.h"

#include <cstdio>
#include <cstdlib>
#include <cublas_v2.h>

#include "kernels_host.cpp"

namespace {
typedef std::vector<std::function<void()>> op_list;
bool capturing = false;
op_list *recording = nullptr;
cudaError_t last_error = cudaSuccess;
int event_queries = 0;
const size_t device_bytes = (size_t)16 << 30;

void enqueue(std::function<void()> f) {
    if (capturing) recording->push_back(std::move(f));
    else f();
}

cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

/* Kernels without barriers or shuffles run thread after thread; the others get real threads. */
void emu_launch(cudaStream_t, unsigned grid, unsigned block, bool threads, std::function<void()> body) {
    enqueue([=] {
        if (threads) {
            launch(grid, block, body);
            return;
        }
        gridDim.x = grid;
        blockDim.x = block;
        for (unsigned b = 0; b < grid; b++) {
            blockIdx.x = b;
            for (unsigned t = 0; t < block; t++) {
                threadIdx.x = t;
                body();
            }
        }
        threadIdx.x = 0;
    });
}

void sgemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                float b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                s += (double)a * b;
            }
            float *c = &C[i + (size_t)j * ldc];
            *c = (float)(alpha * s + (beta != 0.0f ? (double)beta * *c : 0.0));
        }
}
} // namespace

extern "C" {

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 0;
    if (getenv("VT_EMU_NO_DEVICE")) return fail(cudaErrorNoDevice);
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "host emulation");
    p->totalGlobalMem = device_bytes;
    p->multiProcessorCount = 4;
    p->major = 9;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) { return *v = 13000, cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int *v) { return *v = 13000, cudaSuccess; }
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr, int) { return *v = 1000000, cudaSuccess; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int) {
    *s = (cudaStream_t)new int(0);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete (int *)s;
    return cudaSuccess;
}
/* Allocation, freeing and waiting are refused while capturing, as thread-local capture mode does. */
cudaError_t cudaMalloc(void **p, size_t n) {
    *p = nullptr;
    if (capturing) return fail(cudaErrorStreamCaptureUnsupported);
    if (n > device_bytes) return fail(cudaErrorMemoryAllocation);
    *p = aligned_alloc(256, (n + 255) & ~(size_t)255);
    memset(*p, 0xCD, n); /* garbage, so that reliance on unzeroed memory shows */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (capturing) return fail(cudaErrorStreamCaptureUnsupported);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int) {
    *p = malloc(n);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    *f = device_bytes / 2;
    *t = device_bytes;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return capturing ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int) {
    *e = (cudaEvent_t)new int(0);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete (int *)e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventRecordWithFlags(cudaEvent_t, cudaStream_t, unsigned int) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) {
    return capturing ? fail(cudaErrorStreamCaptureUnsupported) : cudaSuccess;
}
/* Every other query says "not ready", and leaves it as the last error, the worst case. */
cudaError_t cudaEventQuery(cudaEvent_t) { return (event_queries++ & 1) ? fail(cudaErrorNotReady) : cudaSuccess; }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    enqueue([=] { memset(p, v, n); });
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t) {
    enqueue([=] { memcpy(d, s, n); });
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t, enum cudaStreamCaptureMode) {
    if (capturing) return fail(cudaErrorIllegalState);
    capturing = true;
    recording = new op_list;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!capturing) return fail(cudaErrorIllegalState);
    capturing = false;
    *g = (cudaGraph_t)recording;
    recording = nullptr;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = (cudaGraphExec_t) new op_list(*(op_list *)g);
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t) {
    for (auto &f : *(op_list *)e) f();
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete (op_list *)g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete (op_list *)e;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorName(cudaError_t e) {
    static char buf[32];
    snprintf(buf, sizeof buf, "cudaError%d", (int)e);
    return buf;
}
const char *cudaGetErrorString(cudaError_t) { return "emulated error"; }

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = (cublasHandle_t) new int(0);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete (int *)h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
const char *cublasGetStatusName(cublasStatus_t) { return "CUBLAS_STATUS_EMULATED"; }
const char *cublasGetStatusString(cublasStatus_t) { return "emulated"; }
cublasStatus_t cublasSgemm_v2(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc) {
    float a = *alpha, b = *beta; /* host pointer mode: read at the call, as cuBLAS does */
    enqueue([=] { sgemm_cm(ta != CUBLAS_OP_N, tb != CUBLAS_OP_N, m, n, k, a, A, lda, B, ldb, b, C, ldc); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    float a = *alpha, b = *beta;
    enqueue([=] {
        for (int i = 0; i < batch; i++)
            sgemm_cm(ta != CUBLAS_OP_N, tb != CUBLAS_OP_N, m, n, k, a, A + i * sA, lda, B + i * sB, ldb, b, C + i * sC,
                     ldc);
    });
    return CUBLAS_STATUS_SUCCESS;
}

#include "launches.inc"

} /* extern "C" */
