/* CPU CONV2D, CONV2D_BWD_DATA and CONV2D_BWD_WEIGHT. Reference: direct loops with double sums, each
 * output element a gather; fast: a chunk of images lowered to GEMM through im2col / col2im. */
#include <cblas.h>
#include <string.h>

#include "cpu_internal.h"

/* Dimension letters: x [N,C,H,W], w [K,C,R,S], y [N,K,P,Q]; sh/sw strides, ph/pw paddings. */
typedef struct conv_dims {
    int64_t N, C, H, W, K, R, S, P, Q;
    int sh, sw, ph, pw;
} conv_dims;

static conv_dims conv_dims_of(const vt_conv2d_params *p, const vt_tensor *x, const vt_tensor *w, const vt_tensor *y) {
    conv_dims d = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3],
                   y->shape[2], y->shape[3], p->stride_h, p->stride_w, p->pad_h, p->pad_w};
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

/* dx[n,c,h,w] = sum over the (k, r, s) whose window position lands on (h, w) of dy * w. */
static void conv_bwd_data_ref(const conv_dims *d, const float *dy, const float *w, float *dx) {
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t h = 0; h < d->H; h++)
                for (int64_t ww = 0; ww < d->W; ww++) {
                    double acc = 0.0;
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

/* ---- fast: im2col over a chunk of images ----
 * The column matrix has one row per (c, r, s) and one column per (image of the chunk, p, q), so one
 * GEMM covers the whole chunk. Chunks are sized to stay in the last-level cache. */

#define CONV_CHUNK_BYTES ((size_t)3 << 20)

/* Output columns q whose input column q*sw - pw + s lies inside [0, W): [*q0, *q1). */
static void valid_q(const conv_dims *d, int64_t s, int64_t *q0, int64_t *q1) {
    int64_t lo = d->pw - s; /* smallest q*sw allowed */
    int64_t a = lo <= 0 ? 0 : (lo + d->sw - 1) / d->sw;
    int64_t hi = d->W - 1 + d->pw - s; /* largest q*sw allowed */
    int64_t b = hi < 0 ? 0 : hi / d->sw + 1;
    if (b > d->Q) b = d->Q;
    if (a > b) a = b;
    *q0 = a;
    *q1 = b;
}

/* Rows (c, r, s) of channel c for image i of the chunk; ld is the column count of the matrix. */
static void im2col_channel(const conv_dims *d, const float *xc, int64_t c, int64_t i, float *col, int64_t ld) {
    int64_t PQ = d->P * d->Q;
    for (int64_t r = 0; r < d->R; r++)
        for (int64_t s = 0; s < d->S; s++) {
            float *row = col + ((c * d->R + r) * d->S + s) * ld + i * PQ;
            int64_t q0, q1;
            valid_q(d, s, &q0, &q1);
            for (int64_t oh = 0; oh < d->P; oh++) {
                float *out = row + oh * d->Q;
                int64_t h = oh * d->sh - d->ph + r;
                if (h < 0 || h >= d->H) {
                    memset(out, 0, (size_t)d->Q * sizeof(float));
                    continue;
                }
                /* Index, not a shifted pointer: in - pw would point before the plane. */
                const float *in = xc + h * d->W;
                int64_t off = s - d->pw;
                for (int64_t q = 0; q < q0; q++) out[q] = 0.0f;
                if (d->sw == 1) {
                    if (q1 > q0) memcpy(out + q0, in + q0 + off, (size_t)(q1 - q0) * sizeof(float));
                } else {
                    for (int64_t q = q0; q < q1; q++) out[q] = in[q * d->sw + off];
                }
                for (int64_t q = q1; q < d->Q; q++) out[q] = 0.0f;
            }
        }
}

/* Adds the rows of channel c (image i of the chunk) back into the image plane dxc, which the
 * caller zeroed. One thread owns a plane, so the additions happen in a fixed order. */
static void col2im_channel(const conv_dims *d, const float *col, int64_t c, int64_t i, int64_t ld, float *dxc) {
    int64_t PQ = d->P * d->Q;
    for (int64_t r = 0; r < d->R; r++)
        for (int64_t s = 0; s < d->S; s++) {
            const float *row = col + ((c * d->R + r) * d->S + s) * ld + i * PQ;
            int64_t q0, q1;
            valid_q(d, s, &q0, &q1);
            for (int64_t oh = 0; oh < d->P; oh++) {
                int64_t h = oh * d->sh - d->ph + r;
                if (h < 0 || h >= d->H) continue;
                const float *in = row + oh * d->Q;
                float *out = dxc + h * d->W;
                int64_t off = s - d->pw;
                if (d->sw == 1)
                    for (int64_t q = q0; q < q1; q++) out[q + off] += in[q];
                else
                    for (int64_t q = q0; q < q1; q++) out[q * d->sw + off] += in[q];
            }
        }
}

static int64_t chunk_images(const conv_dims *d) {
    int64_t rows = d->C * d->R * d->S;
    if (d->K > rows) rows = d->K;
    int64_t per_image = rows * d->P * d->Q * (int64_t)sizeof(float);
    int64_t nb = (int64_t)CONV_CHUNK_BYTES / (per_image > 0 ? per_image : 1);
    if (nb < 1) nb = 1;
    if (nb > d->N) nb = d->N;
    return nb;
}

static vt_status check_blas_dims(const vt_node *n, int64_t a, int64_t b, int64_t c) {
    if (a > INT32_MAX || b > INT32_MAX || c > INT32_MAX)
        return vt_error(VT_ERR_SHAPE, "%s %s: GEMM dims %lldx%lldx%lld exceed the BLAS integer range", vt_op_name(n->op),
                        n->label, (long long)a, (long long)b, (long long)c);
    return VT_OK;
}

static void im2col_chunk(vt_cpu_ctx *c, const conv_dims *d, const float *x, int64_t n0, int64_t nb, float *col) {
    int64_t ld = nb * d->P * d->Q, items = nb * d->C;
    int nt = vt_cpu_nt(c, items * d->R * d->S * d->P * d->Q);
    VT_OMP_FOR
    for (int64_t it = 0; it < items; it++) {
        int64_t i = it / d->C, ch = it % d->C;
        im2col_channel(d, x + ((n0 + i) * d->C + ch) * d->H * d->W, ch, i, col, ld);
    }
}

/* dyT [K, nb*PQ] from dy [nb, K, PQ]: the GEMM operand layout of a chunk of output gradients. */
static void gather_dy_chunk(vt_cpu_ctx *c, const conv_dims *d, const float *dy, int64_t n0, int64_t nb, float *dyT) {
    int64_t PQ = d->P * d->Q, items = nb * d->K;
    int nt = vt_cpu_nt(c, items * PQ);
    VT_OMP_FOR
    for (int64_t it = 0; it < items; it++) {
        int64_t i = it / d->K, k = it % d->K;
        memcpy(dyT + k * nb * PQ + i * PQ, dy + ((n0 + i) * d->K + k) * PQ, (size_t)PQ * sizeof(float));
    }
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
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, nb = chunk_images(&d);
    VT_TRY(check_blas_dims(n, d.K, nb * PQ, CRS));
    float *col, *out;
    VT_TRY(vt_cpu_scratch(c, (size_t)(CRS + d.K) * (size_t)(nb * PQ) * sizeof(float), &col));
    out = col + CRS * nb * PQ;
    for (int64_t n0 = 0; n0 < d.N; n0 += nb) {
        int64_t cnb = d.N - n0 < nb ? d.N - n0 : nb, ld = cnb * PQ;
        im2col_chunk(c, &d, x, n0, cnb, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d.K, (int)ld, (int)CRS, 1.0f, w, (int)CRS, col,
                    (int)ld, 0.0f, out, (int)ld);
        /* out [K, cnb*PQ] -> y [cnb, K, PQ], adding the bias and applying the activation on the way. */
        int64_t items = cnb * d.K;
        int nt = vt_cpu_nt(c, items * PQ);
        vt_act act = p->act;
        float aa = p->act_alpha;
        VT_OMP_FOR
        for (int64_t it = 0; it < items; it++) {
            int64_t i = it / d.K, k = it % d.K;
            const float *src = out + k * ld + i * PQ;
            float *dst = y + ((n0 + i) * d.K + k) * PQ;
            float b = bias ? bias[k] : 0.0f;
            if (act == VT_ACT_NONE)
                for (int64_t j = 0; j < PQ; j++) dst[j] = src[j] + b;
            else if (act == VT_ACT_RELU)
                for (int64_t j = 0; j < PQ; j++) dst[j] = src[j] + b > 0.0f ? src[j] + b : 0.0f;
            else
                for (int64_t j = 0; j < PQ; j++) dst[j] = vt_cpu_act(act, aa, src[j] + b);
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
        conv_bwd_data_ref(&d, dy, w, dx);
        return VT_OK;
    }
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, HW = d.H * d.W, nb = chunk_images(&d);
    VT_TRY(check_blas_dims(n, CRS, nb * PQ, d.K));
    float *col, *dyT;
    VT_TRY(vt_cpu_scratch(c, (size_t)(CRS + d.K) * (size_t)(nb * PQ) * sizeof(float), &col));
    dyT = col + CRS * nb * PQ;
    for (int64_t n0 = 0; n0 < d.N; n0 += nb) {
        int64_t cnb = d.N - n0 < nb ? d.N - n0 : nb, ld = cnb * PQ;
        gather_dy_chunk(c, &d, dy, n0, cnb, dyT);
        /* col [CRS, cnb*PQ] = w^T [CRS, K] * dyT [K, cnb*PQ] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)CRS, (int)ld, (int)d.K, 1.0f, w, (int)CRS, dyT,
                    (int)ld, 0.0f, col, (int)ld);
        int64_t items = cnb * d.C;
        int nt = vt_cpu_nt(c, items * d.R * d.S * PQ);
        VT_OMP_FOR
        for (int64_t it = 0; it < items; it++) {
            int64_t i = it / d.C, ch = it % d.C;
            float *plane = dx + ((n0 + i) * d.C + ch) * HW;
            memset(plane, 0, (size_t)HW * sizeof(float));
            col2im_channel(&d, col, ch, i, ld, plane);
        }
    }
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
    int64_t CRS = d.C * d.R * d.S, PQ = d.P * d.Q, nb = chunk_images(&d);
    VT_TRY(check_blas_dims(n, d.K, CRS, nb * PQ));
    float *col, *dyT;
    VT_TRY(vt_cpu_scratch(c, (size_t)(CRS + d.K) * (size_t)(nb * PQ) * sizeof(float), &col));
    dyT = col + CRS * nb * PQ;
    /* Chunks are summed one after the other (beta = 1), a fixed order. */
    for (int64_t n0 = 0; n0 < d.N; n0 += nb) {
        int64_t cnb = d.N - n0 < nb ? d.N - n0 : nb, ld = cnb * PQ;
        im2col_chunk(c, &d, x, n0, cnb, col);
        gather_dy_chunk(c, &d, dy, n0, cnb, dyT);
        /* dw [K, CRS] (+)= dyT [K, cnb*PQ] * col^T [cnb*PQ, CRS] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d.K, (int)CRS, (int)ld, 1.0f, dyT, (int)ld, col,
                    (int)ld, n0 == 0 ? 0.0f : 1.0f, dw, (int)CRS);
    }
    return VT_OK;
}
