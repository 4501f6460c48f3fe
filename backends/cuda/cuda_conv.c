/* CUDA backend GEMM and convolutions: MATMUL through cuBLAS (row-major by computing C^T = B^T A^T),
 * CONV2D and its gradients through cuDNN with per-shape cached algorithms, or im2col + cuBLAS.
 * CONV2D_TRANSPOSE is CONV2D_BWD_DATA with dy = x (vt/ops.h): same operand slots, same plan, same
 * kernels, then its bias. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

#define VT_IM2COL_BYTES ((size_t)64 << 20) /* column buffer per chunk of images */
#define VT_CONV_WS_MAX  ((size_t)1 << 30)  /* largest cuDNN workspace an algorithm may take */

struct vt_cuda_conv_plan {
    vt_op op; /* the kind: CONV2D, CONV2D_BWD_DATA (also CONV2D_TRANSPOSE's) or CONV2D_BWD_WEIGHT */
    int64_t N;
    vt_cuda_conv_geom g;
    int im2col; /* no usable cuDNN algorithm (or cuDNN off): our own path */
    size_t ws_bytes;
#ifdef VT_CUDA_CUDNN
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int algo;
#endif
};

/* Row-major C[M,N] = alpha op(A) op(B) + beta C for `batch` matrices spaced sA, sB, sC floats apart.
 * Column-major cuBLAS sees each row-major matrix transposed, so it computes C^T = op(B)^T op(A)^T. */
static vt_status gemm_rm(vt_cuda_run *run, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                         const float *B, float beta, float *C, int batch, long long sA, long long sB, long long sC) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1) VT_BLAS(cublasSgemm(run->cx->blas, opb, opa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, N));
    else
        VT_BLAS(cublasSgemmStridedBatched(run->cx->blas, opb, opa, N, M, K, &alpha, B, ldb, sB, A, lda, sA, &beta, C, N,
                                          sC, batch));
    run->dispatches++;
    return VT_OK;
}

static bool fits_int(int64_t v) { return v > 0 && v <= INT_MAX; }

vt_status vt_cuda_matmul(vt_cuda_run *run, const vt_node *n) {
    const vt_matmul_params *p = &n->p.matmul;
    const vt_tensor *A = n->src[0], *B = n->src[1], *bias = n->src[2], *C = n->dst[0];
    int64_t M = C->shape[0], N = C->shape[1], K = p->trans_a ? A->shape[0] : A->shape[1];
    if (!fits_int(M) || !fits_int(N) || !fits_int(K))
        return vt_error(VT_ERR_UNSUPPORTED, "cuda: matmul %s: dims %lldx%lldx%lld exceed cuBLAS int sizes", n->label,
                        (long long)M, (long long)N, (long long)K);
    VT_TRY(gemm_rm(run, p->trans_a, p->trans_b, (int)M, (int)N, (int)K, p->alpha, vt_cuda_ptr(A), vt_cuda_ptr(B),
                   p->beta, vt_cuda_ptr(C), 1, 0, 0, 0));
    if (bias || p->act != VT_ACT_NONE) {
        VT_CU(vt_cuda_bias_act(run->stream, vt_cuda_ptr(C), vt_cuda_ptr(bias), M * N, 1, N, p->act, p->act_alpha));
        run->dispatches++;
    }
    return VT_OK;
}

/* ---- plans ---- */

/* The convolution a node runs: CONV2D_TRANSPOSE holds x, w, y in CONV2D_BWD_DATA's slots (its x is
 * the dy, its y the dx, its w [C,K,R,S] a CONV2D weight with C outputs), so it is that convolution and
 * shares its plans. */
static vt_op conv_kind(vt_op op) { return op == VT_OP_CONV2D_TRANSPOSE ? VT_OP_CONV2D_BWD_DATA : op; }

static void conv_shape(const vt_node *n, int64_t *N, vt_cuda_conv_geom *g) {
    const vt_tensor *x, *w, *y;
    vt_op kind = conv_kind(n->op);
    if (kind == VT_OP_CONV2D) {
        x = n->src[0];
        w = n->src[1];
        y = n->dst[0];
    } else if (kind == VT_OP_CONV2D_BWD_DATA) {
        y = n->src[0];
        w = n->src[1];
        x = n->dst[0];
    } else {
        y = n->src[0];
        x = n->src[1];
        w = n->dst[0];
    }
    const vt_conv2d_params *p = &n->p.conv2d;
    memset(g, 0, sizeof *g);
    *N = x->shape[0];
    g->C = (int)x->shape[1];
    g->H = (int)x->shape[2];
    g->W = (int)x->shape[3];
    g->K = (int)w->shape[0];
    g->R = (int)w->shape[2];
    g->S = (int)w->shape[3];
    g->P = (int)y->shape[2];
    g->Q = (int)y->shape[3];
    g->sh = p->stride_h;
    g->sw = p->stride_w;
    g->ph = p->pad_h;
    g->pw = p->pad_w;
}

static size_t col_bytes(const vt_cuda_conv_geom *g) { return (size_t)g->C * g->R * g->S * g->P * g->Q * sizeof(float); }

/* Images per im2col chunk: as many as fit VT_IM2COL_BYTES, at least one. */
static int im2col_chunk(const vt_cuda_conv_plan *pl) {
    size_t per = col_bytes(&pl->g), nb = per ? VT_IM2COL_BYTES / per : 1;
    if (nb < 1) nb = 1;
    if (nb > (size_t)pl->N) nb = (size_t)pl->N;
    return (int)nb;
}

static void plan_free(vt_cuda_conv_plan *pl) {
    if (!pl) return;
#ifdef VT_CUDA_CUDNN
    if (pl->xd) cudnnDestroyTensorDescriptor(pl->xd);
    if (pl->yd) cudnnDestroyTensorDescriptor(pl->yd);
    if (pl->wd) cudnnDestroyFilterDescriptor(pl->wd);
    if (pl->cd) cudnnDestroyConvolutionDescriptor(pl->cd);
#endif
    free(pl);
}

void vt_cuda_conv_plans_free(vt_cuda_ctx *cx) {
    for (int i = 0; i < cx->n_plans; i++) plan_free(cx->plans[i]);
    free(cx->plans);
    cx->plans = NULL;
    cx->n_plans = cx->cap_plans = 0;
}

#ifdef VT_CUDA_CUDNN
/* Accept a measured or suggested algorithm: it ran, is deterministic, fits, and keeps FP32 unless
 * TF32 was asked for. */
static bool algo_ok(cudnnStatus_t st, cudnnDeterminism_t det, cudnnMathType_t math, size_t mem, size_t limit,
                    int tf32) {
    if (st != CUDNN_STATUS_SUCCESS || det != CUDNN_DETERMINISTIC || mem > limit) return false;
    if (!tf32 && (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) return false;
    return true;
}

/* Measure the algorithms once for this shape (cudnnFind*, which allocates and synchronises: never
 * while capturing), fall back on the heuristics (_v7), and keep the fastest acceptable one. */
static vt_status dnn_plan(vt_cuda_run *run, vt_cuda_conv_plan *pl) {
    vt_cuda_ctx *cx = run->cx;
    cudnnHandle_t h = cx->dnn;
    const vt_cuda_conv_geom *g = &pl->g;
    int tf32 = run->be->opts.tf32;
    VT_DNN(cudnnCreateTensorDescriptor(&pl->xd));
    VT_DNN(cudnnCreateTensorDescriptor(&pl->yd));
    VT_DNN(cudnnCreateFilterDescriptor(&pl->wd));
    VT_DNN(cudnnCreateConvolutionDescriptor(&pl->cd));
    VT_DNN(cudnnSetTensor4dDescriptor(pl->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)pl->N, g->C, g->H, g->W));
    VT_DNN(cudnnSetTensor4dDescriptor(pl->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)pl->N, g->K, g->P, g->Q));
    VT_DNN(cudnnSetFilter4dDescriptor(pl->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->K, g->C, g->R, g->S));
    VT_DNN(cudnnSetConvolution2dDescriptor(pl->cd, g->ph, g->pw, g->sh, g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
    /* FMA_MATH keeps cuDNN off TF32 tensor cores, which DEFAULT_MATH allows on Ampere and later. */
    VT_DNN(cudnnSetConvolutionMathType(pl->cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    size_t free_b = 0, total_b = 0;
    VT_CU(cudaMemGetInfo(&free_b, &total_b));
    size_t limit = free_b / 2 < VT_CONV_WS_MAX ? free_b / 2 : VT_CONV_WS_MAX;
    int found = -1, got = 0;
    cudnnMathType_t math = CUDNN_FMA_MATH;
    if (pl->op == VT_OP_CONV2D) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        for (int pass = 0; pass < 2 && found < 0; pass++) {
            cudnnStatus_t st =
                pass == 0 ? cudnnFindConvolutionForwardAlgorithm(h, pl->xd, pl->wd, pl->cd, pl->yd,
                                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf)
                          : cudnnGetConvolutionForwardAlgorithm_v7(h, pl->xd, pl->wd, pl->cd, pl->yd,
                                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf);
            for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && found < 0; i++)
                if (algo_ok(perf[i].status, perf[i].determinism, perf[i].mathType, perf[i].memory, limit, tf32)) {
                    found = (int)perf[i].algo;
                    math = perf[i].mathType;
                }
        }
        if (found >= 0) {
            if (tf32) VT_DNN(cudnnSetConvolutionMathType(pl->cd, math));
            VT_DNN(cudnnGetConvolutionForwardWorkspaceSize(h, pl->xd, pl->wd, pl->cd, pl->yd,
                                                           (cudnnConvolutionFwdAlgo_t)found, &pl->ws_bytes));
        }
    } else if (pl->op == VT_OP_CONV2D_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        for (int pass = 0; pass < 2 && found < 0; pass++) {
            cudnnStatus_t st =
                pass == 0 ? cudnnFindConvolutionBackwardDataAlgorithm(h, pl->wd, pl->yd, pl->cd, pl->xd,
                                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf)
                          : cudnnGetConvolutionBackwardDataAlgorithm_v7(
                                h, pl->wd, pl->yd, pl->cd, pl->xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf);
            for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && found < 0; i++)
                if (algo_ok(perf[i].status, perf[i].determinism, perf[i].mathType, perf[i].memory, limit, tf32)) {
                    found = (int)perf[i].algo;
                    math = perf[i].mathType;
                }
        }
        if (found >= 0) {
            if (tf32) VT_DNN(cudnnSetConvolutionMathType(pl->cd, math));
            VT_DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(h, pl->wd, pl->yd, pl->cd, pl->xd,
                                                                (cudnnConvolutionBwdDataAlgo_t)found, &pl->ws_bytes));
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        for (int pass = 0; pass < 2 && found < 0; pass++) {
            cudnnStatus_t st =
                pass == 0 ? cudnnFindConvolutionBackwardFilterAlgorithm(
                                h, pl->xd, pl->yd, pl->cd, pl->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf)
                          : cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                                h, pl->xd, pl->yd, pl->cd, pl->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf);
            for (int i = 0; st == CUDNN_STATUS_SUCCESS && i < got && found < 0; i++)
                if (algo_ok(perf[i].status, perf[i].determinism, perf[i].mathType, perf[i].memory, limit, tf32)) {
                    found = (int)perf[i].algo;
                    math = perf[i].mathType;
                }
        }
        if (found >= 0) {
            if (tf32) VT_DNN(cudnnSetConvolutionMathType(pl->cd, math));
            VT_DNN(cudnnGetConvolutionBackwardFilterWorkspaceSize(
                h, pl->xd, pl->yd, pl->cd, pl->wd, (cudnnConvolutionBwdFilterAlgo_t)found, &pl->ws_bytes));
        }
    }
    /* cudnnFind* may leave a failed trial's error behind; it is not ours to report. */
    cudaGetLastError();
    pl->im2col = found < 0; /* no deterministic algorithm for this shape: our own path is */
    pl->algo = found;
    return VT_OK;
}
#endif

static vt_status plan_get(vt_cuda_run *run, const vt_node *n, vt_cuda_conv_plan **out) {
    vt_cuda_ctx *cx = run->cx;
    int64_t N;
    vt_cuda_conv_geom g;
    conv_shape(n, &N, &g);
    for (int i = 0; i < cx->n_plans; i++) {
        vt_cuda_conv_plan *pl = cx->plans[i];
        if (pl->op == conv_kind(n->op) && pl->N == N && memcmp(&pl->g, &g, sizeof g) == 0) {
            *out = pl;
            return VT_OK;
        }
    }
    if (run->capturing)
        return vt_error(VT_ERR_INVALID_ARG, "cuda: %s %s: no plan for this shape while capturing", vt_op_name(n->op),
                        n->label);
    if (N > INT_MAX || (int64_t)g.C * g.H * g.W > INT_MAX || (int64_t)g.K * g.P * g.Q > INT_MAX)
        return vt_error(VT_ERR_UNSUPPORTED, "cuda: %s %s: tensor too large for int sizes", vt_op_name(n->op), n->label);
    if (cx->n_plans == cx->cap_plans) {
        int cap = cx->cap_plans ? 2 * cx->cap_plans : 16;
        vt_cuda_conv_plan **np = realloc(cx->plans, (size_t)cap * sizeof *np);
        if (!np) return vt_error(VT_ERR_OOM, "cuda: out of host memory");
        cx->plans = np;
        cx->cap_plans = cap;
    }
    vt_cuda_conv_plan *pl = calloc(1, sizeof *pl);
    if (!pl) return vt_error(VT_ERR_OOM, "cuda: out of host memory");
    pl->op = conv_kind(n->op);
    pl->N = N;
    pl->g = g;
    pl->im2col = 1;
#ifdef VT_CUDA_CUDNN
    if (cx->use_cudnn) {
        pl->im2col = 0;
        vt_status s = dnn_plan(run, pl);
        if (s != VT_OK) {
            plan_free(pl);
            return s;
        }
    }
#endif
    if (pl->im2col) pl->ws_bytes = (size_t)im2col_chunk(pl) * col_bytes(&pl->g);
    if (cx->verbose) {
        char how[64];
#ifdef VT_CUDA_CUDNN
        if (!pl->im2col) snprintf(how, sizeof how, "cuDNN algorithm %d", pl->algo);
        else
#endif
            snprintf(how, sizeof how, "%s", cx->use_cudnn ? "im2col, no cuDNN algorithm qualified" : "im2col");
        vt_log(VT_LOG_INFO, "cuda: %s N%lld C%d %dx%d K%d %dx%d s%dx%d p%dx%d: %s, workspace %zu bytes",
               vt_op_name(pl->op), (long long)pl->N, g.C, g.H, g.W, g.K, g.R, g.S, g.sh, g.sw, g.ph, g.pw, how,
               pl->ws_bytes);
    }
    cx->plans[cx->n_plans++] = pl;
    *out = pl;
    return VT_OK;
}

/* ---- im2col path ---- */

static vt_status conv_im2col(vt_cuda_run *run, const vt_node *n, const vt_cuda_conv_plan *pl, float *ws) {
    const vt_cuda_conv_geom *g = &pl->g;
    int CRS = g->C * g->R * g->S, PQ = g->P * g->Q, nb = im2col_chunk(pl);
    long long col_per = (long long)CRS * PQ, x_per = (long long)g->C * g->H * g->W, y_per = (long long)g->K * PQ;
    for (int64_t b0 = 0; b0 < pl->N; b0 += nb) {
        int cnt = (int)(pl->N - b0 < nb ? pl->N - b0 : nb);
        if (pl->op == VT_OP_CONV2D) {
            const float *x = (const float *)vt_cuda_ptr(n->src[0]) + b0 * x_per;
            float *y = (float *)vt_cuda_ptr(n->dst[0]) + b0 * y_per;
            VT_CU(vt_cuda_im2col(run->stream, x, ws, cnt, g));
            run->dispatches++;
            /* y_b [K, PQ] = w [K, CRS] col_b [CRS, PQ], w shared by the batch (stride 0). */
            VT_TRY(
                gemm_rm(run, 0, 0, g->K, PQ, CRS, 1.0f, vt_cuda_ptr(n->src[1]), ws, 0.0f, y, cnt, 0, col_per, y_per));
        } else if (pl->op == VT_OP_CONV2D_BWD_DATA) {
            const float *dy = (const float *)vt_cuda_ptr(n->src[0]) + b0 * y_per;
            float *dx = (float *)vt_cuda_ptr(n->dst[0]) + b0 * x_per;
            /* col_b [CRS, PQ] = w^T [CRS, K] dy_b [K, PQ], then scattered back as a gather. */
            VT_TRY(
                gemm_rm(run, 1, 0, CRS, PQ, g->K, 1.0f, vt_cuda_ptr(n->src[1]), dy, 0.0f, ws, cnt, 0, y_per, col_per));
            VT_CU(vt_cuda_col2im(run->stream, ws, dx, cnt, g));
            run->dispatches++;
        } else {
            const float *dy = (const float *)vt_cuda_ptr(n->src[0]) + b0 * y_per;
            const float *x = (const float *)vt_cuda_ptr(n->src[1]) + b0 * x_per;
            VT_CU(vt_cuda_im2col(run->stream, x, ws, cnt, g));
            run->dispatches++;
            /* dw [K, CRS] += dy_b [K, PQ] col_b^T [PQ, CRS], one image after another (a fixed order). */
            for (int i = 0; i < cnt; i++)
                VT_TRY(gemm_rm(run, 0, 1, g->K, CRS, PQ, 1.0f, dy + i * y_per, ws + i * col_per, (b0 + i) ? 1.0f : 0.0f,
                               vt_cuda_ptr(n->dst[0]), 1, 0, 0, 0));
        }
    }
    return VT_OK;
}

vt_status vt_cuda_conv(vt_cuda_run *run, const vt_node *n) {
    vt_cuda_conv_plan *pl = NULL;
    VT_TRY(plan_get(run, n, &pl));
    void *ws = NULL;
    VT_TRY(vt_cuda_workspace(run, pl->ws_bytes, &ws));
    if (pl->im2col) {
        VT_TRY(conv_im2col(run, n, pl, ws));
    } else {
#ifdef VT_CUDA_CUDNN
        cudnnHandle_t h = run->cx->dnn;
        const float one = 1.0f, zero = 0.0f;
        if (pl->op == VT_OP_CONV2D)
            VT_DNN(cudnnConvolutionForward(h, &one, pl->xd, vt_cuda_ptr(n->src[0]), pl->wd, vt_cuda_ptr(n->src[1]),
                                           pl->cd, (cudnnConvolutionFwdAlgo_t)pl->algo, ws, pl->ws_bytes, &zero, pl->yd,
                                           vt_cuda_ptr(n->dst[0])));
        else if (pl->op == VT_OP_CONV2D_BWD_DATA)
            VT_DNN(cudnnConvolutionBackwardData(h, &one, pl->wd, vt_cuda_ptr(n->src[1]), pl->yd, vt_cuda_ptr(n->src[0]),
                                                pl->cd, (cudnnConvolutionBwdDataAlgo_t)pl->algo, ws, pl->ws_bytes,
                                                &zero, pl->xd, vt_cuda_ptr(n->dst[0])));
        else
            VT_DNN(cudnnConvolutionBackwardFilter(
                h, &one, pl->xd, vt_cuda_ptr(n->src[1]), pl->yd, vt_cuda_ptr(n->src[0]), pl->cd,
                (cudnnConvolutionBwdFilterAlgo_t)pl->algo, ws, pl->ws_bytes, &zero, pl->wd, vt_cuda_ptr(n->dst[0])));
        run->dispatches++;
#else
        return vt_error(VT_ERR_UNSUPPORTED, "cuda: built without cuDNN");
#endif
    }
    /* CONV2D's bias and activation, CONV2D_TRANSPOSE's bias (validation keeps its act NONE). */
    if ((n->op == VT_OP_CONV2D || n->op == VT_OP_CONV2D_TRANSPOSE) && (n->src[2] || n->p.conv2d.act != VT_ACT_NONE)) {
        const vt_tensor *y = n->dst[0];
        VT_CU(vt_cuda_bias_act(run->stream, vt_cuda_ptr(y), vt_cuda_ptr(n->src[2]), vt_tensor_nelem(y),
                               y->shape[2] * y->shape[3], y->shape[1], n->p.conv2d.act, n->p.conv2d.act_alpha));
        run->dispatches++;
    }
    return VT_OK;
}
