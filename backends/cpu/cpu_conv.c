/* CPU CONV2D, CONV2D_BWD_DATA, CONV2D_BWD_WEIGHT and CONV2D_TRANSPOSE (the data gradient's code with
 * a bias). Reference: direct loops with double sums, each
 * output element a gather; fast: each image lowered to one GEMM through im2col / col2im. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

typedef vt_cpu_conv_dims conv_dims;

static conv_dims conv_dims_of(const vt_conv2d_params *p, const vt_tensor *x, const vt_tensor *w, const vt_tensor *y) {
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                   y->shape[2], y->shape[3], p->stride_h, p->stride_w, p->pad_h,    p->pad_w};
    return d;
}

/* ---- reference ---- */

static void conv_fwd_ref(const conv_dims *d, const vt_conv2d_params *p, const float *x, const float *w,
                         const float *bias, float *y) {
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t k = 0; k < d->K; k++)
            for (int64_t oh = 0; oh < d->P; oh++)
                for (int64_t ow = 0; ow < d->Q; ow++) {
                    double acc = bias ? (double)bias[k] : 0.0;
                    for (int64_t c = 0; c < d->C; c++)
                        for (int64_t r = 0; r < d->R; r++) {
                            int64_t h = oh * d->sh - d->ph + r;
                            if (h < 0 || h >= d->H) continue;
                            for (int64_t s = 0; s < d->S; s++) {
                                int64_t ww = ow * d->sw - d->pw + s;
                                if (ww < 0 || ww >= d->W) continue;
                                acc += (double)x[((n * d->C + c) * d->H + h) * d->W + ww] *
                                       (double)w[((k * d->C + c) * d->R + r) * d->S + s];
                            }
                        }
                    y[((n * d->K + k) * d->P + oh) * d->Q + ow] = vt_cpu_act(p->act, p->act_alpha, (float)acc);
                }
}

/* dx[n,c,h,w] = sum over the (k, r, s) whose window position lands on (h, w) of dy * w; + bias[c]
 * where given (CONV2D_TRANSPOSE, which is this gather with dy = x and c its output channel). */
static void conv_bwd_data_ref(const conv_dims *d, const float *dy, const float *w, const float *bias, float *dx) {
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t h = 0; h < d->H; h++)
                for (int64_t ww = 0; ww < d->W; ww++) {
                    double acc = bias ? (double)bias[c] : 0.0;
                    for (int64_t k = 0; k < d->K; k++)
                        for (int64_t r = 0; r < d->R; r++) {
                            int64_t th = h + d->ph - r; /* = oh * sh */
                            if (th < 0 || th % d->sh != 0 || th / d->sh >= d->P) continue;
                            int64_t oh = th / d->sh;
                            for (int64_t s = 0; s < d->S; s++) {
                                int64_t tw = ww + d->pw - s;
                                if (tw < 0 || tw % d->sw != 0 || tw / d->sw >= d->Q) continue;
                                int64_t ow = tw / d->sw;
                                acc += (double)dy[((n * d->K + k) * d->P + oh) * d->Q + ow] *
                                       (double)w[((k * d->C + c) * d->R + r) * d->S + s];
                            }
                        }
                    dx[((n * d->C + c) * d->H + h) * d->W + ww] = (float)acc;
                }
}

static void conv_bwd_weight_ref(const conv_dims *d, const float *dy, const float *x, float *dw) {
    for (int64_t k = 0; k < d->K; k++)
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t r = 0; r < d->R; r++)
                for (int64_t s = 0; s < d->S; s++) {
                    double acc = 0.0;
                    for (int64_t n = 0; n < d->N; n++)
                        for (int64_t oh = 0; oh < d->P; oh++) {
                            int64_t h = oh * d->sh - d->ph + r;
                            if (h < 0 || h >= d->H) continue;
                            for (int64_t ow = 0; ow < d->Q; ow++) {
                                int64_t ww = ow * d->sw - d->pw + s;
                                if (ww < 0 || ww >= d->W) continue;
                                acc += (double)dy[((n * d->K + k) * d->P + oh) * d->Q + ow] *
                                       (double)x[((n * d->C + c) * d->H + h) * d->W + ww];
                            }
                        }
                    dw[((k * d->C + c) * d->R + r) * d->S + s] = (float)acc;
                }
}

/* ---- fast: im2col + GEMM per image ----
 * Each thread takes a fixed share of the images and lowers one image at a time into its own column
 * matrix (one row per (c, r, s), one column per (p, q)), small enough to stay in its L2 cache, then
 * runs a single-threaded GEMM on it. With fewer images than threads, the images go one after the
 * other and each GEMM is split over the threads instead.
 * Each channel is first copied into a zero-bordered plane, so that building a row of the column
 * matrix is a run of short unconditional copies (no bounds tests, no memcpy calls on 16 floats). */

typedef struct conv_work {
    float *col; /* [C*R*S, P*Q] */
    float *pad; /* [Hp, Wp]: one channel with its zero border */
    float *acc; /* bwd weight: this thread's partial dw^T [C*R*S, K] */
} conv_work;

static int64_t padded_h(const conv_dims *d) { return d->H + 2 * d->ph; }
static int64_t padded_w(const conv_dims *d) { return d->W + 2 * d->pw; }

/* Short runs (often 8 to 32 floats): restrict spares a run-time overlap test per run, and the build
 * keeps these loops from becoming memcpy calls, whose call cost would dominate. */
static inline void run_copy(float *restrict out, const float *restrict in, int64_t n) {
    for (int64_t q = 0; q < n; q++) out[q] = in[q];
}

static inline void run_add(float *restrict out, const float *restrict in, int64_t n) {
    for (int64_t q = 0; q < n; q++) out[q] += in[q];
}

/* col [CRS][ld] (columns 0..PQ-1 of each row written) from image xn; pad: a plane of scratch. */
static void im2col_ld(const conv_dims *d, const float *xn, float *col, int64_t ld, float *pad) {
    int64_t Wp = padded_w(d), sw = d->sw;
    bool padded = d->ph > 0 || d->pw > 0;
    for (int64_t c = 0; c < d->C; c++) {
        const float *src = xn + c * d->H * d->W;
        if (padded) {
            vt_cpu_pad_plane(d, src, pad);
            src = pad;
        }
        for (int64_t r = 0; r < d->R; r++)
            for (int64_t s = 0; s < d->S; s++) {
                float *row = col + ((c * d->R + r) * d->S + s) * ld;
                for (int64_t oh = 0; oh < d->P; oh++) {
                    const float *in = src + (oh * d->sh + r) * Wp + s;
                    float *out = row + oh * d->Q;
                    if (sw == 1) run_copy(out, in, d->Q);
                    else
                        for (int64_t q = 0; q < d->Q; q++) out[q] = in[q * sw];
                }
            }
    }
}

static void im2col(const conv_dims *d, const float *xn, conv_work *wk) {
    im2col_ld(d, xn, wk->col, d->P * d->Q, wk->pad);
}

/* dxn = the column matrix's entries added back at their image positions (the adjoint of im2col). */
/* col [CRS][ld] (columns 0..PQ-1 of each row read); pad: a plane of scratch. */
static void col2im_ld(const conv_dims *d, const float *col, int64_t ld, float *pad, float *dxn) {
    int64_t Wp = padded_w(d), Hp = padded_h(d), sw = d->sw;
    bool padded = d->ph > 0 || d->pw > 0;
    for (int64_t c = 0; c < d->C; c++) {
        float *dst = padded ? pad : dxn + c * d->H * d->W;
        memset(dst, 0, (size_t)(Hp * Wp) * sizeof(float));
        for (int64_t r = 0; r < d->R; r++)
            for (int64_t s = 0; s < d->S; s++) {
                const float *row = col + ((c * d->R + r) * d->S + s) * ld;
                for (int64_t oh = 0; oh < d->P; oh++) {
                    float *out = dst + (oh * d->sh + r) * Wp + s;
                    const float *in = row + oh * d->Q;
                    if (sw == 1) run_add(out, in, d->Q);
                    else
                        for (int64_t q = 0; q < d->Q; q++) out[q * sw] += in[q];
                }
            }
        if (padded) {
            float *dxc = dxn + c * d->H * d->W;
            for (int64_t h = 0; h < d->H; h++)
                memcpy(dxc + h * d->W, dst + (h + d->ph) * Wp + d->pw, (size_t)d->W * sizeof(float));
        }
    }
}

static void col2im(const conv_dims *d, conv_work *wk, float *dxn) { col2im_ld(d, wk->col, d->P * d->Q, wk->pad, dxn); }

/* A 1x1 convolution with stride 1 and no padding is a plain GEMM on the image itself. */
static bool is_pointwise(const conv_dims *d) {
    return d->R == 1 && d->S == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
}

static vt_status check_blas_dims(const vt_node *n, const conv_dims *d) {
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    if (d->K > INT32_MAX || CRS > INT32_MAX || PQ > INT32_MAX)
        return vt_error(VT_ERR_SHAPE, "%s %s: GEMM dims %lldx%lldx%lld exceed the BLAS integer range",
                        vt_op_name(n->op), n->label, (long long)d->K, (long long)PQ, (long long)CRS);
    return VT_OK;
}

/* Threads for the per-image loop: one per image at most. */
static int conv_threads(const vt_cpu_ctx *c, const conv_dims *d) {
    int64_t t = c->threads < d->N ? c->threads : d->N;
    return t < 1 ? 1 : (int)t;
}

/* Per-thread scratch: column matrix and padded plane, or the direct kernels' padded image and
 * transposed dy (direct), plus (bwd weight) a partial dw. */
static vt_status conv_scratch(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, int nt, bool with_acc, bool direct,
                              float **base, int64_t *per) {
    VT_TRY(check_blas_dims(n, d));
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    int64_t col = is_pointwise(d) ? 0 : CRS * PQ, pad = is_pointwise(d) ? 0 : padded_h(d) * padded_w(d);
    if (direct) col = (int64_t)vt_cpu_direct_work_floats(d), pad = 0;
    /* Rounded to 16 floats so every thread's block starts on its own cache line. */
    *per = (col + pad + (with_acc ? CRS * d->K : 0) + 15) & ~(int64_t)15;
    return vt_cpu_scratch(c, (size_t)nt * (size_t)*per * sizeof(float), base);
}

static conv_work conv_work_of(const conv_dims *d, float *base, int64_t per, int t, bool direct) {
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    int64_t col = is_pointwise(d) ? 0 : CRS * PQ, pad = is_pointwise(d) ? 0 : padded_h(d) * padded_w(d);
    if (direct) col = (int64_t)vt_cpu_direct_work_floats(d), pad = 0;
    float *b = base + (int64_t)t * per;
    conv_work w = {b, b + col, b + col + pad};
    return w;
}

/* The direct kernels serve this shape (and the CPU and the settings allow them). */
static bool use_direct(const vt_cpu_ctx *c, const conv_dims *d) {
    return c->direct_conv && !is_pointwise(d) && vt_cpu_direct_conv_fits(d);
}

/* One GEMM of the per-image loop: single-threaded when the images are spread over the threads,
 * split over the threads when the images go one after the other. */
static void conv_gemm(const vt_cpu_ctx *c, int nt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (nt > 1 || c->threads <= 1)
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                    (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    else vt_cpu_gemm(c, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, NULL, VT_ACT_NONE, 0.0f);
}

/* The direct forward: weights packed once into the front of the scratch, then one image at a time per
 * thread, each thread with its own work area. */
static vt_status conv_fwd_direct(vt_cpu_ctx *c, const conv_dims *d, const float *x, const float *w, const float *bias,
                                 vt_act act, float aa, float *y) {
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q, HW = d->H * d->W;
    int64_t packed = (d->K * CRS + 15) & ~(int64_t)15,
            per = ((int64_t)vt_cpu_direct_work_floats(d) + 15) & ~(int64_t)15;
    int nt = conv_threads(c, d);
    float *scratch;
    VT_TRY(vt_cpu_scratch(c, (size_t)(packed + nt * per) * sizeof(float), &scratch));
    if (!vt_cpu_direct_conv_rows(d)) vt_cpu_direct_pack_weights(d, w, scratch);
    VT_OMP("omp parallel for schedule(static) num_threads(nt) if(nt > 1)")
    for (int64_t i = 0; i < d->N; i++)
        vt_cpu_direct_conv_fwd(d, c->avx512, x + i * d->C * HW, w, scratch, bias, act, aa, y + i * d->K * PQ,
                               scratch + packed + vt_cpu_tid() * per);
    return VT_OK;
}

/* Small outputs (fewer than 64 pixels per image: the deep ResNet layers at 32x32 input). One GEMM per
 * image would read the weights once per image (a matrix-vector product at 1x1), so each thread
 * unfolds a group of G images side by side, col [CRS][G*PQ], and runs one GEMM per group. G keeps a
 * group at most 256 columns wide and gives every thread at least one group. */
static int64_t group_size(const vt_cpu_ctx *c, const conv_dims *d) {
    int64_t PQ = d->P * d->Q, g = 256 / (PQ > 0 ? PQ : 1), per_thread = (d->N + c->threads - 1) / c->threads;
    if (g > per_thread) g = per_thread;
    return g < 1 ? 1 : g;
}

static bool use_groups(const vt_cpu_ctx *c, const conv_dims *d) { return d->P * d->Q < 64 && group_size(c, d) > 1; }

/* The grouped passes' split: G images a group, per-thread scratch of col [CRS][G*PQ], a second
 * [K][G*PQ] matrix and a padded plane; one thread per group at most. */
typedef struct group_plan {
    int64_t G, groups, per;
    int nt;
    float *scratch;
} group_plan;

static vt_status group_setup(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, group_plan *g) {
    VT_TRY(check_blas_dims(n, d));
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    g->G = group_size(c, d);
    g->groups = (d->N + g->G - 1) / g->G;
    g->per = (CRS * g->G * PQ + d->K * g->G * PQ + padded_h(d) * padded_w(d) + 15) & ~(int64_t)15;
    g->nt = c->threads < g->groups ? c->threads : (int)g->groups;
    return vt_cpu_scratch(c, (size_t)(g->nt * g->per) * sizeof(float), &g->scratch);
}

/* dst [K][ld] = the dy of images i0..i0+gn side by side, PQ columns each. */
static void gather_dy(const conv_dims *d, const float *dy, int64_t i0, int64_t gn, float *dst, int64_t ld) {
    int64_t PQ = d->P * d->Q;
    for (int64_t j = 0; j < gn; j++)
        for (int64_t k = 0; k < d->K; k++)
            memcpy(dst + k * ld + j * PQ, dy + ((i0 + j) * d->K + k) * PQ, (size_t)PQ * sizeof(float));
}

static vt_status conv_fwd_grouped(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, const float *x, const float *w,
                                  const float *bias, vt_act act, float aa, float *y) {
    group_plan g;
    VT_TRY(group_setup(c, n, d, &g));
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q, HW = d->H * d->W, G = g.G, groups = g.groups, per = g.per;
    int nt = g.nt;
    (void)nt; /* only read by the OpenMP pragma */
    float *scratch = g.scratch;
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        float *col = scratch + vt_cpu_tid() * per, *out = col + CRS * G * PQ, *pad = out + d->K * G * PQ;
        VT_OMP("omp for schedule(static)")
        for (int64_t gi = 0; gi < groups; gi++) {
            int64_t i0 = gi * G, gn = d->N - i0 < G ? d->N - i0 : G, ld = gn * PQ;
            for (int64_t j = 0; j < gn; j++) im2col_ld(d, x + (i0 + j) * d->C * HW, col + j * PQ, ld, pad);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d->K, (int)ld, (int)CRS, 1.0f, w, (int)CRS, col,
                        (int)ld, 0.0f, out, (int)ld);
            for (int64_t j = 0; j < gn; j++)
                for (int64_t k = 0; k < d->K; k++) {
                    float *yk = y + ((i0 + j) * d->K + k) * PQ;
                    memcpy(yk, out + k * ld + j * PQ, (size_t)PQ * sizeof(float));
                    if (bias || act != VT_ACT_NONE) vt_cpu_bias_act(yk, PQ, NULL, bias ? bias[k] : 0.0f, act, aa);
                }
        }
    }
    return VT_OK;
}

/* y = act(conv(x, w) + bias) for the fast path, on dims d (also used by the backward data pass). */
static vt_status conv_fwd_fast(vt_cpu_ctx *c, const vt_node *n, const conv_dims *dp, const float *x, const float *w,
                               const float *bias, vt_act act, float aa, float *y) {
    if (use_direct(c, dp)) {
        VT_TRY(check_blas_dims(n, dp));
        return conv_fwd_direct(c, dp, x, w, bias, act, aa, y);
    }
    if (!is_pointwise(dp) && use_groups(c, dp)) return conv_fwd_grouped(c, n, dp, x, w, bias, act, aa, y);
    conv_dims d = *dp;
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, HW = d.H * d.W, per;
    bool pw = is_pointwise(&d);
    int nt = conv_threads(c, &d);
    float *scratch;
    VT_TRY(conv_scratch(c, n, &d, nt, false, false, &scratch, &per));
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        conv_work wk = conv_work_of(&d, scratch, per, vt_cpu_tid(), false);
        VT_OMP("omp for schedule(static)")
        for (int64_t i = 0; i < d.N; i++) {
            const float *b = pw ? x + i * d.C * HW : wk.col;
            if (!pw) im2col(&d, x + i * d.C * HW, &wk);
            float *yn = y + i * d.K * PQ;
            conv_gemm(c, nt, false, false, d.K, PQ, CRS, w, CRS, b, PQ, 0.0f, yn, PQ);
            if (!bias && act == VT_ACT_NONE) continue;
            for (int64_t k = 0; k < d.K; k++) vt_cpu_bias_act(yn + k * PQ, PQ, NULL, bias ? bias[k] : 0.0f, act, aa);
        }
    }
    return VT_OK;
}

vt_status vt_cpu_conv2d(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_conv2d_params *p = &n->p.conv2d;
    conv_dims d = conv_dims_of(p, n->src[0], n->src[1], n->dst[0]);
    const float *x = vt_cpu_f32(n->src[0]), *w = vt_cpu_f32(n->src[1]), *bias = vt_cpu_f32(n->src[2]);
    float *y = vt_cpu_f32(n->dst[0]);
    if (c->reference) {
        conv_fwd_ref(&d, p, x, w, bias, y);
        return VT_OK;
    }
    return conv_fwd_fast(c, n, &d, x, w, bias, p->act, p->act_alpha, y);
}

/* With stride 1 the data gradient is itself a convolution: dy padded by R-1-ph (and S-1-pw), with
 * the kernel flipped and its two channel axes swapped. Going through im2col avoids col2im's
 * scatter-adds and uses the forward GEMM shape. */
static vt_status conv_bwd_data_as_fwd(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, const float *dy,
                                      const float *w, float *dx) {
    conv_dims e = {
        d->N, d->K, d->P, d->Q, d->C, d->R, d->S, d->H, d->W, 1, 1, (int)(d->R - 1 - d->ph), (int)(d->S - 1 - d->pw)};
    size_t nw = (size_t)(d->K * d->C * d->R * d->S);
    float *wf = malloc(nw * sizeof(float));
    if (!wf) return vt_error(VT_ERR_OOM, "conv2d_bwd_data %s: out of host memory", n->label);
    for (int64_t k = 0; k < d->K; k++)
        for (int64_t ch = 0; ch < d->C; ch++)
            for (int64_t r = 0; r < d->R; r++)
                for (int64_t s = 0; s < d->S; s++)
                    wf[((ch * d->K + k) * d->R + (d->R - 1 - r)) * d->S + (d->S - 1 - s)] =
                        w[((k * d->C + ch) * d->R + r) * d->S + s];
    vt_status st = conv_fwd_fast(c, n, &e, dy, wf, NULL, VT_ACT_NONE, 0.0f, dx);
    free(wf);
    return st;
}

/* Data gradient at stride > 1 for small outputs: per group of images (as the grouped forward), dy
 * side by side [K][G*PQ], one GEMM col = w^T dy, then col2im per image. */
static vt_status conv_bwd_data_grouped(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, const float *dy,
                                       const float *w, float *dx) {
    group_plan g;
    VT_TRY(group_setup(c, n, d, &g));
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q, HW = d->H * d->W, G = g.G, groups = g.groups, per = g.per;
    int nt = g.nt;
    (void)nt; /* only read by the OpenMP pragma */
    float *scratch = g.scratch;
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        float *col = scratch + vt_cpu_tid() * per, *dyg = col + CRS * G * PQ, *pad = dyg + d->K * G * PQ;
        VT_OMP("omp for schedule(static)")
        for (int64_t gi = 0; gi < groups; gi++) {
            int64_t i0 = gi * G, gn = d->N - i0 < G ? d->N - i0 : G, ld = gn * PQ;
            gather_dy(d, dy, i0, gn, dyg, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)CRS, (int)ld, (int)d->K, 1.0f, w, (int)CRS, dyg,
                        (int)ld, 0.0f, col, (int)ld);
            for (int64_t j = 0; j < gn; j++) col2im_ld(d, col + j * PQ, ld, pad, dx + (i0 + j) * d->C * HW);
        }
    }
    return VT_OK;
}

/* The fast data gradient on dims d (x = dx, y = dy); shared with CONV2D_TRANSPOSE. */
static vt_status conv_bwd_data_fast(vt_cpu_ctx *c, const vt_node *n, const conv_dims *dp, const float *dy,
                                    const float *w, float *dx) {
    conv_dims d = *dp;
    if (d.sh == 1 && d.sw == 1 && !is_pointwise(&d)) return conv_bwd_data_as_fwd(c, n, &d, dy, w, dx);
    if (!is_pointwise(&d) && use_groups(c, &d)) return conv_bwd_data_grouped(c, n, &d, dy, w, dx);
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, HW = d.H * d.W, per;
    bool pw = is_pointwise(&d);
    int nt = conv_threads(c, &d);
    float *scratch;
    VT_TRY(conv_scratch(c, n, &d, nt, false, false, &scratch, &per));
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        conv_work wk = conv_work_of(&d, scratch, per, vt_cpu_tid(), false);
        VT_OMP("omp for schedule(static)")
        for (int64_t i = 0; i < d.N; i++) {
            /* col [CRS, PQ] = w^T [CRS, K] * dy_i [K, PQ]; pointwise: straight into dx_i. */
            float *out = pw ? dx + i * d.C * HW : wk.col;
            conv_gemm(c, nt, true, false, CRS, PQ, d.K, w, CRS, dy + i * d.K * PQ, PQ, 0.0f, out, PQ);
            if (!pw) col2im(&d, &wk, dx + i * d.C * HW);
        }
    }
    return VT_OK;
}

vt_status vt_cpu_conv2d_bwd_data(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    conv_dims d = conv_dims_of(&n->p.conv2d, n->dst[0], n->src[1], n->src[0]);
    const float *dy = vt_cpu_f32(n->src[0]), *w = vt_cpu_f32(n->src[1]);
    float *dx = vt_cpu_f32(n->dst[0]);
    if (c->reference) {
        conv_bwd_data_ref(&d, dy, w, NULL, dx);
        return VT_OK;
    }
    return conv_bwd_data_fast(c, n, &d, dy, w, dx);
}

/* CONV2D_TRANSPOSE: CONV2D_BWD_DATA with dy = x, the weight [C,K,R,S] read as a CONV2D weight (C
 * outputs, K inputs) and y in the role of dx, then the bias per output channel. */
vt_status vt_cpu_conv2d_transpose(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    conv_dims d = conv_dims_of(&n->p.conv2d, n->dst[0], n->src[1], n->src[0]);
    const float *x = vt_cpu_f32(n->src[0]), *w = vt_cpu_f32(n->src[1]), *bias = vt_cpu_f32(n->src[2]);
    float *y = vt_cpu_f32(n->dst[0]);
    if (c->reference) {
        conv_bwd_data_ref(&d, x, w, bias, y);
        return VT_OK;
    }
    VT_TRY(conv_bwd_data_fast(c, n, &d, x, w, y));
    if (bias) {
        int64_t planes = d.N * d.C, HW = d.H * d.W;
        int nt = vt_cpu_nt(c, planes * HW);
        VT_OMP_FOR
        for (int64_t i = 0; i < planes; i++) {
            float b = bias[i % d.C], *yp = y + i * HW;
            for (int64_t j = 0; j < HW; j++) yp[j] += b;
        }
    }
    return VT_OK;
}

/* Weight gradient for small outputs: chunks of up to 1024 columns (whole images) unfolded side by
 * side by all threads, col [CRS][cols] and dy [K][cols], then one threaded GEMM per chunk into
 * dw^T [CRS, K] (each element summed by one thread, chunks in order), transposed at the end. Per
 * image the GEMM's inner dimension would be P*Q (1 to 63) and every image would rewrite dw. */
static vt_status conv_bwd_weight_chunked(vt_cpu_ctx *c, const vt_node *n, const conv_dims *d, const float *dy,
                                         const float *x, float *dw) {
    VT_TRY(check_blas_dims(n, d));
    int64_t CRS = d->C * d->R * d->S, PQ = d->P * d->Q, HW = d->H * d->W, plane = padded_h(d) * padded_w(d);
    int64_t per_chunk = 1024 / PQ < 1 ? 1 : 1024 / PQ;
    if (per_chunk > d->N) per_chunk = d->N;
    int64_t cols = per_chunk * PQ;
    int nt = c->threads;
    float *scratch;
    VT_TRY(vt_cpu_scratch(c, (size_t)((CRS + d->K) * cols + CRS * d->K + nt * plane) * sizeof(float), &scratch));
    float *col = scratch, *dyc = col + CRS * cols, *accT = dyc + d->K * cols, *pads = accT + CRS * d->K;
    for (int64_t i0 = 0; i0 < d->N; i0 += per_chunk) {
        int64_t gn = d->N - i0 < per_chunk ? d->N - i0 : per_chunk, ld = gn * PQ;
        int nti = nt < gn ? nt : (int)gn;
        (void)nti; /* only read by the OpenMP pragma */
        VT_OMP("omp parallel for schedule(static) num_threads(nti) if(nti > 1)")
        for (int64_t j = 0; j < gn; j++) {
            im2col_ld(d, x + (i0 + j) * d->C * HW, col + j * PQ, ld, pads + vt_cpu_tid() * plane);
            gather_dy(d, dy, i0 + j, 1, dyc + j * PQ, ld);
        }
        vt_cpu_gemm(c, false, true, CRS, d->K, ld, 1.0f, col, ld, dyc, ld, i0 == 0 ? 0.0f : 1.0f, accT, d->K, NULL,
                    VT_ACT_NONE, 0.0f);
    }
    int ntk = vt_cpu_nt(c, CRS * d->K);
    (void)ntk;
    VT_OMP("omp parallel for schedule(static) num_threads(ntk) if(ntk > 1)")
    for (int64_t k = 0; k < d->K; k++)
        for (int64_t j = 0; j < CRS; j++) dw[k * CRS + j] = accT[j * d->K + k];
    return VT_OK;
}

vt_status vt_cpu_conv2d_bwd_weight(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    conv_dims d = conv_dims_of(&n->p.conv2d, n->src[1], n->dst[0], n->src[0]);
    const float *dy = vt_cpu_f32(n->src[0]), *x = vt_cpu_f32(n->src[1]);
    float *dw = vt_cpu_f32(n->dst[0]);
    if (c->reference) {
        conv_bwd_weight_ref(&d, dy, x, dw);
        return VT_OK;
    }
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, HW = d.H * d.W, per;
    bool pw = is_pointwise(&d), direct = use_direct(c, &d);
    if (!pw && !direct && use_groups(c, &d)) return conv_bwd_weight_chunked(c, n, &d, dy, x, dw);
    int nt = conv_threads(c, &d);
    float *scratch;
    VT_TRY(conv_scratch(c, n, &d, nt, true, direct, &scratch, &per));
    /* Each thread sums its images into a partial dw^T [CRS, K] (col * dy_i^T runs faster than
     * dy_i * col^T for the usual few output channels); the partials are then added in thread order
     * and transposed, so the result does not depend on timing. */
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        int t = vt_cpu_tid(), team = vt_cpu_team();
        conv_work wk = conv_work_of(&d, scratch, per, t, direct);
        /* A static split written out, so that each thread knows its first image. The team may be
         * smaller than asked for; the split and the sum below follow the team actually running. */
        int64_t i0 = d.N * t / team, i1 = d.N * (t + 1) / team;
        if (i0 == i1) memset(wk.acc, 0, (size_t)(CRS * d.K) * sizeof(float));
        for (int64_t i = i0; i < i1 && direct; i++)
            vt_cpu_direct_conv_bwd_weight(&d, c->avx512, x + i * d.C * HW, dy + i * d.K * PQ, wk.acc, i == i0, wk.col);
        for (int64_t i = i0; i < i1 && !direct; i++) {
            const float *a = pw ? x + i * d.C * HW : wk.col;
            if (!pw) im2col(&d, x + i * d.C * HW, &wk);
            /* acc [CRS, K] (+)= col [CRS, PQ] * dy_i^T [PQ, K] */
            conv_gemm(c, team, false, true, CRS, d.K, PQ, a, PQ, dy + i * d.K * PQ, PQ, i == i0 ? 0.0f : 1.0f, wk.acc,
                      d.K);
        }
        VT_OMP("omp barrier")
        VT_OMP("omp for schedule(static)")
        for (int64_t k = 0; k < d.K; k++)
            for (int64_t j = 0; j < CRS; j++) {
                float sum = 0.0f;
                for (int u = 0; u < team; u++) sum += conv_work_of(&d, scratch, per, u, direct).acc[j * d.K + k];
                dw[k * CRS + j] = sum;
            }
    }
    return VT_OK;
}
