/* CPU backend internals shared by its files: the backend context, tensor accessors, the activations
 * (through vt/act_formulas.h) and one entry point per op (vt_cpu_<op>), each serving both the
 * reference and fast modes. */
#ifndef VT_CPU_INTERNAL_H
#define VT_CPU_INTERNAL_H

#include <math.h>
#include <stddef.h>

#include "vt/backend.h"

/* OpenMP pragmas through a macro so that a build without OpenMP has no unknown-pragma warnings.
 * Loops name their thread count `nt`; nt == 1 runs the loop serially on the calling thread. */
/* VT_OMP_SIMD_FOR is for flat element-wise loops whose output may be one of the inputs (in place):
 * the compiler's own alias test would otherwise fall back to scalar code for them. */
#ifdef _OPENMP
#define VT_OMP(x)       _Pragma(x)
#define VT_OMP_FOR      _Pragma("omp parallel for schedule(static) num_threads(nt) if(nt > 1)")
#define VT_OMP_SIMD_FOR _Pragma("omp parallel for simd schedule(static) num_threads(nt) if(nt > 1)")
#else
#define VT_OMP(x)
#define VT_OMP_FOR      (void)nt;
#define VT_OMP_SIMD_FOR (void)nt;
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* The calling thread's number in its OpenMP team, and the team's size (0 and 1 outside a team or in
 * a build without OpenMP). */
static inline int vt_cpu_tid(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static inline int vt_cpu_team(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

typedef struct vt_cpu_ctx {
    int reference; /* plain single-threaded loops only */
    int threads;   /* OpenMP threads (1 in reference mode); OpenBLAS itself runs single-threaded */
    /* Growable scratch for the fast convolutions (im2col columns); one compute call at a time. */
    float *scratch;
    size_t scratch_bytes;
    /* Direct AVX2/FMA convolutions for 16 or 32 output channels (cpu_conv_direct.c): the CPU has
     * them and the option direct_conv is not 0. */
    int direct_conv;
    /* SGD updates fused into the weight-gradient GEMMs that feed them (cpu_fuse.c): the CPU has
     * AVX2/FMA and the option fuse is not 0. */
    int fuse_sgd;
    /* The direct and fused kernels' AVX-512 variants: the CPU has AVX-512F and the option avx512 is not 0. */
    int avx512;
} vt_cpu_ctx;

typedef vt_status (*vt_cpu_op_fn)(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);

static inline float *vt_cpu_f32(const vt_tensor *t) {
    return t ? (float *)(void *)((char *)t->buf->host + t->offset) : NULL;
}
static inline int32_t *vt_cpu_i32(const vt_tensor *t) {
    return t ? (int32_t *)(void *)((char *)t->buf->host + t->offset) : NULL;
}
static inline uint8_t *vt_cpu_u8(const vt_tensor *t) { return t ? (uint8_t *)t->buf->host + t->offset : NULL; }

/* Thread count for a loop of `work` cheap element operations: tiny loops stay on one thread,
 * where waking the team would cost more than the loop. */
static inline int vt_cpu_nt(const vt_cpu_ctx *c, int64_t work) {
    if (c->threads <= 1 || work < 16384) return 1;
    return c->threads;
}

/* The activation of ops.h, applied to a pre-activation value (formulas: vt/act_formulas.h). */
static inline float vt_cpu_act(vt_act a, float alpha, float x) {
    switch (a) {
    case VT_ACT_RELU: return VT_RELU_FWD(x);
    case VT_ACT_LEAKY_RELU: return VT_LEAKY_RELU_FWD(x, alpha);
    case VT_ACT_SELU: return VT_SELU_FWD(x);
    case VT_ACT_GELU: return VT_GELU_FWD(x);
    default: return x;
    }
}

/* row[j] = act(row[j] + bias[j]) (bias NULL: + b0) over n elements, one loop per activation so
 * that ReLU and leaky ReLU vectorise as selects instead of data-dependent branches. */
static inline void vt_cpu_bias_act(float *row, int64_t n, const float *bias, float b0, vt_act a, float alpha) {
    switch (a) {
    case VT_ACT_RELU:
        if (bias)
            for (int64_t j = 0; j < n; j++) {
                float v = row[j] + bias[j];
                row[j] = VT_RELU_FWD(v);
            }
        else
            for (int64_t j = 0; j < n; j++) {
                float v = row[j] + b0;
                row[j] = VT_RELU_FWD(v);
            }
        return;
    case VT_ACT_LEAKY_RELU:
        for (int64_t j = 0; j < n; j++) {
            float v = row[j] + (bias ? bias[j] : b0);
            row[j] = VT_LEAKY_RELU_FWD(v, alpha);
        }
        return;
    case VT_ACT_SELU:
        for (int64_t j = 0; j < n; j++) row[j] = vt_cpu_act(a, alpha, row[j] + (bias ? bias[j] : b0));
        return;
    default:
        if (bias)
            for (int64_t j = 0; j < n; j++) row[j] += bias[j];
        else
            for (int64_t j = 0; j < n; j++) row[j] += b0;
        return;
    }
}

/* Sum of x[0..n) in a fixed order: eight float lanes (vectorisable, deterministic), added in double. */
static inline double vt_cpu_sum(const float *x, int64_t n) {
    float lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += x[i + l];
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += (double)lane[l];
    for (; i < n; i++) s += (double)x[i];
    return s;
}

/* Scratch of at least `bytes`, kept between calls. */
vt_status vt_cpu_scratch(vt_cpu_ctx *c, size_t bytes, float **out);

/* cpu_gemm.c */
/* C = act(alpha op(A) op(B) + beta C + bias) with single-threaded OpenBLAS calls on blocks of C spread
 * over the OpenMP team (row-major, leading dimensions in elements; bias may be NULL). */
void vt_cpu_gemm(const vt_cpu_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, const float *bias,
                 vt_act act, float act_alpha);
vt_status vt_cpu_matmul(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_bias_grad(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
/* Convolution dimensions: x [N,C,H,W], w [K,C,R,S], y [N,K,P,Q]; sh/sw strides, ph/pw paddings. */
typedef struct vt_cpu_conv_dims {
    int64_t N, C, H, W, K, R, S, P, Q;
    int sh, sw, ph, pw;
} vt_cpu_conv_dims;
/* cpu_conv_direct.c: per-image direct kernels; `work` holds vt_cpu_direct_work_floats floats, `wp`
 * the weights from vt_cpu_direct_pack_weights ([K/16][C*R*S][16]); acc is a dw^T [C*R*S, K] that the
 * image's sum is stored into (first) or added to. */
void vt_cpu_pad_plane(const vt_cpu_conv_dims *d, const float *xc, float *pad);
bool vt_cpu_avx2_available(void);
bool vt_cpu_avx512_available(void);
bool vt_cpu_direct_conv_fits(const vt_cpu_conv_dims *d);
size_t vt_cpu_direct_work_floats(const vt_cpu_conv_dims *d);
void vt_cpu_direct_pack_weights(const vt_cpu_conv_dims *d, const float *w, float *wp);
/* Stride 1 and 8, 16, 24 or 32 output columns: the forward runs whole output rows per tile and reads
 * w as it is (wp is not used). */
bool vt_cpu_direct_conv_rows(const vt_cpu_conv_dims *d);
/* avx512: use the AVX-512 variants where there are some (same values, bit for bit). */
void vt_cpu_direct_conv_fwd(const vt_cpu_conv_dims *d, bool avx512, const float *xn, const float *w, const float *wp,
                            const float *bias, vt_act act, float aa, float *yn, float *work);
void vt_cpu_direct_conv_bwd_weight(const vt_cpu_conv_dims *d, bool avx512, const float *xn, const float *dyn,
                                   float *acc, bool first, float *work);
/* cpu_fuse.c: graph execution with SGD fused into weight-gradient GEMMs */
vt_status vt_cpu_graph_compute(vt_backend *be, vt_graph_exec *e, const vt_step_ctx *ctx);
/* cpu_conv.c */
vt_status vt_cpu_conv2d(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_conv2d_bwd_data(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_conv2d_bwd_weight(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_conv2d_transpose(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
/* cpu_bn.c (batch norm, whole and split for the synchronised batch norm) */
vt_status vt_cpu_batchnorm(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_batchnorm_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_bn_stats(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_bn_apply(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_bn_bwd_stats(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_bn_bwd_apply(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
/* cpu_nn.c (pooling, softmax CE, argmax, upsampling) and cpu_eltwise.c (activations, dropout, add) */
vt_status vt_cpu_pool2d(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_pool2d_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_act_fwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_act_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_dropout(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_add(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_softmax_ce(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_softmax_ce_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_argmax(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_confusion(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_upsample(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_upsample_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
/* cpu_data.c */
vt_status vt_cpu_batch_prep(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_fill(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_nonfinite(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
/* cpu_optim.c */
/* One SGD step on E elements: the per-step scalars of an SGD node, and the update itself, shared by
 * the SGD op and the fused GEMM + update so that both give the same values. */
typedef struct vt_cpu_sgd_args {
    float lr, wd, mom;
    int nesterov;
} vt_cpu_sgd_args;
static inline vt_cpu_sgd_args vt_cpu_sgd_args_of(const vt_node *n, const vt_step_ctx *ctx) {
    const vt_sgd_params *p = &n->p.sgd;
    vt_cpu_sgd_args a = {ctx->lr * p->lr_mult, p->weight_decay, p->momentum, p->nesterov};
    return a;
}
static inline void vt_cpu_sgd_update(const vt_cpu_sgd_args *u, float *restrict param, float *restrict buf,
                                     const float *restrict grad, int64_t E) {
    float lr = u->lr, wd = u->wd, mom = u->mom;
    /* Separate loops: without momentum there is no buffer, not even one to read speculatively. */
    if (mom == 0.0f) {
        for (int64_t i = 0; i < E; i++) param[i] -= lr * (grad[i] + wd * param[i]);
        return;
    }
    if (u->nesterov) {
        for (int64_t i = 0; i < E; i++) {
            float g = grad[i] + wd * param[i];
            float b = mom * buf[i] + g;
            buf[i] = b;
            param[i] -= lr * (g + mom * b);
        }
        return;
    }
    for (int64_t i = 0; i < E; i++) {
        float g = grad[i] + wd * param[i];
        float b = mom * buf[i] + g;
        buf[i] = b;
        param[i] -= lr * b;
    }
}
/* The SGD node's update of the elements [lo, hi) only. */
void vt_cpu_sgd_range(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx, int64_t lo, int64_t hi);
vt_status vt_cpu_sgd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_cpu_adam(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx);

#endif
