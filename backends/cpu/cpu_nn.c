/* CPU pooling, softmax cross-entropy, argmax, upsampling (activations, add and dropout are
 * cpu_eltwise.c, batch norm cpu_bn.c). The plain loops serve both modes (the fast mode splits their
 * outer, independent index over OpenMP threads); a few fast-only variants (tiled max pooling) sit
 * beside them. */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

/* ---- POOL2D / POOL2D_BWD ---- */

/* Rows [*r0,*r1) of a kernel of size k placed at o*stride - pad that fall inside [0, n). */
static void pool_span(int64_t o, int stride, int pad, int k, int64_t n, int *r0, int *r1) {
    int64_t start = o * stride - pad;
    int64_t a = start < 0 ? -start : 0, b = n - start < k ? n - start : k;
    *r0 = (int)a;
    *r1 = (int)(b > a ? b : a);
}

/* Position (h*W + w) of the first maximum of the window at (oh, ow), padding excluded; the window
 * always holds a real pixel because validation keeps the padding at most half the kernel. The
 * comparison is a select rather than a branch: after a ReLU, ties and zeros are everywhere. */
static int64_t pool_argmax(const vt_pool2d_params *p, const float *xp, int64_t H, int64_t W, int64_t oh, int64_t ow) {
    int r0, r1, s0, s1;
    pool_span(oh, p->stride_h, p->pad_h, p->kh, H, &r0, &r1);
    pool_span(ow, p->stride_w, p->pad_w, p->kw, W, &s0, &s1);
    int64_t h0 = oh * p->stride_h - p->pad_h, w0 = ow * p->stride_w - p->pad_w;
    int64_t best = (h0 + r0) * W + w0 + s0;
    float bv = xp[best];
    for (int r = r0; r < r1; r++)
        for (int s = s0; s < s1; s++) {
            int64_t at = (h0 + r) * W + w0 + s;
            float v = xp[at];
            int t = v > bv;
            best = t ? at : best;
            bv = t ? v : bv;
        }
    return best;
}

static float pool_avg(const vt_pool2d_params *p, const float *xp, int64_t H, int64_t W, int64_t oh, int64_t ow) {
    double acc = 0.0;
    for (int r = 0; r < p->kh; r++) {
        int64_t h = oh * p->stride_h - p->pad_h + r;
        if (h < 0 || h >= H) continue;
        for (int s = 0; s < p->kw; s++) {
            int64_t w = ow * p->stride_w - p->pad_w + s;
            if (w >= 0 && w < W) acc += (double)xp[h * W + w];
        }
    }
    return (float)(acc / (double)(p->kh * p->kw));
}

/* Max pooling with non-overlapping windows inside the image (kernel = stride, no padding), the
 * common case: no bounds tests, and the same first-maximum rule as pool_argmax. */
static bool pool_tiled(const vt_pool2d_params *p) {
    return p->kind == VT_POOL_MAX && p->kh == p->stride_h && p->kw == p->stride_w && p->pad_h == 0 && p->pad_w == 0;
}

static void pool_max_tiled(const vt_pool2d_params *p, const float *xp, float *yp, int64_t W, int64_t P, int64_t Q) {
    int kh = p->kh, kw = p->kw;
    for (int64_t oh = 0; oh < P; oh++) {
        const float *row = xp + oh * kh * W;
        float *out = yp + oh * Q;
        if (kh == 2 && kw == 2) {
            const float *r1 = row + W;
            for (int64_t ow = 0; ow < Q; ow++) {
                float v = row[2 * ow];
                if (row[2 * ow + 1] > v) v = row[2 * ow + 1];
                if (r1[2 * ow] > v) v = r1[2 * ow];
                if (r1[2 * ow + 1] > v) v = r1[2 * ow + 1];
                out[ow] = v;
            }
            continue;
        }
        for (int64_t ow = 0; ow < Q; ow++) {
            const float *win = row + ow * kw;
            float v = win[0];
            for (int r = 0; r < kh; r++)
                for (int s = 0; s < kw; s++)
                    if (win[r * W + s] > v) v = win[r * W + s];
            out[ow] = v;
        }
    }
}

/* t ? x : y on the bits, so that the compiler cannot turn it into a branch. */
static inline float fsel(int t, float x, float y) {
    uint32_t a, b, m = 0u - (uint32_t)t;
    memcpy(&a, &x, sizeof a);
    memcpy(&b, &y, sizeof b);
    uint32_t r = (a & m) | (b & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* Every element of dx written once, window by window (the windows tile the image): dy at the
 * first maximum, zero elsewhere, and zero for the rows and columns no window covers. */
static void pool_max_tiled_bwd(const vt_pool2d_params *p, const float *xp, const float *dyp, float *dxp, int64_t H,
                               int64_t W, int64_t P, int64_t Q) {
    int kh = p->kh, kw = p->kw;
    for (int64_t oh = 0; oh < P; oh++) {
        if (kh == 2 && kw == 2) {
            const float *x0 = xp + 2 * oh * W, *x1 = x0 + W;
            float *d0 = dxp + 2 * oh * W, *d1 = d0 + W;
            /* Selects, not branches: after a ReLU the windows are full of ties and zeros, which
             * branch predictors guess badly. */
            for (int64_t ow = 0; ow < Q; ow++) {
                float a = x0[2 * ow], b = x0[2 * ow + 1], cc = x1[2 * ow], dd = x1[2 * ow + 1];
                float g = 0.0f + dyp[oh * Q + ow];
                int t1 = b > a;
                float v1 = fsel(t1, b, a);
                int t2 = cc > v1;
                float v2 = fsel(t2, cc, v1);
                int t3 = dd > v2;
                int k2 = t2 & (t3 ^ 1), k1 = t1 & ((t2 | t3) ^ 1), k0 = (t1 | t2 | t3) ^ 1;
                d0[2 * ow] = fsel(k0, g, 0.0f);
                d0[2 * ow + 1] = fsel(k1, g, 0.0f);
                d1[2 * ow] = fsel(k2, g, 0.0f);
                d1[2 * ow + 1] = fsel(t3, g, 0.0f);
            }
            for (int64_t w = 2 * Q; w < W; w++) d0[w] = d1[w] = 0.0f;
            continue;
        }
        for (int64_t ow = 0; ow < Q; ow++) {
            int64_t base = oh * kh * W + ow * kw, best = base;
            float v = xp[base];
            for (int r = 0; r < kh; r++)
                for (int s = 0; s < kw; s++)
                    if (xp[base + r * W + s] > v) {
                        v = xp[base + r * W + s];
                        best = base + r * W + s;
                    }
            /* 0 + g, as the general path adds into zeros (0 + -0 is +0). */
            float g = 0.0f + dyp[oh * Q + ow];
            for (int r = 0; r < kh; r++)
                for (int s = 0; s < kw; s++) dxp[base + r * W + s] = base + r * W + s == best ? g : 0.0f;
        }
        for (int r = 0; r < kh; r++)
            for (int64_t w = Q * kw; w < W; w++) dxp[(oh * kh + r) * W + w] = 0.0f;
    }
    for (int64_t h = P * kh; h < H; h++)
        for (int64_t w = 0; w < W; w++) dxp[h * W + w] = 0.0f;
}

vt_status vt_cpu_pool2d(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_pool2d_params *p = &n->p.pool2d;
    const vt_tensor *xt = n->src[0], *yt = n->dst[0];
    const float *x = vt_cpu_f32(xt);
    float *y = vt_cpu_f32(yt);
    int64_t planes = xt->shape[0] * xt->shape[1], H = xt->shape[2], W = xt->shape[3];
    int64_t P = yt->shape[2], Q = yt->shape[3];
    bool tiled = !c->reference && pool_tiled(p);
    int nt = vt_cpu_nt(c, planes * P * Q * p->kh * p->kw);
    VT_OMP_FOR
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * P * Q;
        if (tiled) {
            pool_max_tiled(p, xp, yp, W, P, Q);
            continue;
        }
        for (int64_t oh = 0; oh < P; oh++)
            for (int64_t ow = 0; ow < Q; ow++)
                yp[oh * Q + ow] =
                    p->kind == VT_POOL_MAX ? xp[pool_argmax(p, xp, H, W, oh, ow)] : pool_avg(p, xp, H, W, oh, ow);
    }
    return VT_OK;
}

vt_status vt_cpu_pool2d_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_pool2d_params *p = &n->p.pool2d;
    const vt_tensor *dyt = n->src[0], *xt = n->src[1];
    const float *dy = vt_cpu_f32(dyt), *x = vt_cpu_f32(xt);
    float *dx = vt_cpu_f32(n->dst[0]);
    int64_t planes = xt->shape[0] * xt->shape[1], H = xt->shape[2], W = xt->shape[3];
    int64_t P = dyt->shape[2], Q = dyt->shape[3];
    float inv_area = 1.0f / (float)(p->kh * p->kw);
    bool tiled = !c->reference && pool_tiled(p);
    int nt = vt_cpu_nt(c, planes * P * Q * p->kh * p->kw);
    VT_OMP_FOR
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W, *dyp = dy + pl * P * Q;
        float *dxp = dx + pl * H * W;
        if (tiled) {
            pool_max_tiled_bwd(p, xp, dyp, dxp, H, W, P, Q);
            continue;
        }
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t oh = 0; oh < P; oh++)
            for (int64_t ow = 0; ow < Q; ow++) {
                float g = dyp[oh * Q + ow];
                if (p->kind == VT_POOL_MAX) {
                    dxp[pool_argmax(p, xp, H, W, oh, ow)] += g;
                    continue;
                }
                float ga = g * inv_area;
                for (int r = 0; r < p->kh; r++) {
                    int64_t h = oh * p->stride_h - p->pad_h + r;
                    if (h < 0 || h >= H) continue;
                    for (int s = 0; s < p->kw; s++) {
                        int64_t w = ow * p->stride_w - p->pad_w + s;
                        if (w >= 0 && w < W) dxp[h * W + w] += ga;
                    }
                }
            }
    }
    return VT_OK;
}

/* ---- SOFTMAX_CE / SOFTMAX_CE_BWD / ARGMAX ----
 * Logits [N,K] or [N,K,H,W]: row r = n*S + s (S = H*W) holds the K values (n*K + k)*S + s, stride S. */

typedef struct ce_shape {
    int64_t rows, K, S;
} ce_shape;

static ce_shape ce_shape_of(const vt_tensor *logits) {
    ce_shape sh = {logits->shape[0], logits->shape[1], 1};
    if (logits->ndim == 4) sh.S = logits->shape[2] * logits->shape[3];
    sh.rows *= sh.S;
    return sh;
}

/* The first element of row r; its class k is at [k * S]. */
static const float *row_at(const float *x, ce_shape sh, int64_t r) { return x + (r / sh.S) * sh.K * sh.S + r % sh.S; }

static int64_t row_argmax(const float *row, int64_t K, int64_t S) {
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        if (row[k * S] > row[best * S]) best = k;
    return best;
}

/* log(sum_k exp(row[k])) in double, shifted by the row maximum. */
static double row_logsumexp(const float *row, int64_t K, int64_t S) {
    double mx = (double)row[row_argmax(row, K, S) * S], s = 0.0;
    for (int64_t k = 0; k < K; k++) s += exp((double)row[k * S] - mx);
    return mx + log(s);
}

static vt_status check_labels(const vt_node *n, const int32_t *y, int64_t rows, int64_t K) {
    if (n->p.ce.ignore) return VT_OK; /* out of range = ignored */
    for (int64_t i = 0; i < rows; i++)
        if (y[i] < 0 || y[i] >= K)
            return vt_error(VT_ERR_INVALID_ARG, "%s %s: label %d of row %lld not in [0,%lld)", vt_op_name(n->op),
                            n->label, y[i], (long long)i, (long long)K);
    return VT_OK;
}

vt_status vt_cpu_softmax_ce(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const float *logits = vt_cpu_f32(n->src[0]);
    const int32_t *labels = vt_cpu_i32(n->src[1]);
    float *loss = vt_cpu_f32(n->dst[0]), *metrics = vt_cpu_f32(n->dst[1]);
    ce_shape sh = ce_shape_of(n->src[0]);
    int64_t N = sh.rows, K = sh.K;
    double e = (double)n->p.ce.label_smoothing;
    VT_TRY(check_labels(n, labels, N, K));
    double *per = malloc((size_t)N * 3 * sizeof(double));
    if (!per) return vt_error(VT_ERR_OOM, "softmax_ce %s: out of host memory", n->label);
    int nt = vt_cpu_nt(c, N * K * 4);
    VT_OMP_FOR
    for (int64_t i = 0; i < N; i++) {
        if (labels[i] < 0 || labels[i] >= K) { /* ignored (checked above otherwise) */
            per[3 * i] = per[3 * i + 1] = per[3 * i + 2] = 0.0;
            continue;
        }
        const float *row = row_at(logits, sh, i);
        double lse = row_logsumexp(row, K, sh.S);
        /* -log p[k] = lse - row[k]; its mean over k is lse - mean_k row[k]. */
        double sum_row = 0.0;
        for (int64_t k = 0; k < K; k++) sum_row += (double)row[k * sh.S];
        double nll = lse - (double)row[labels[i] * sh.S];
        per[3 * i] = (1.0 - e) * nll + e * (lse - sum_row / (double)K);
        per[3 * i + 1] = row_argmax(row, K, sh.S) == labels[i] ? 1.0 : 0.0;
        per[3 * i + 2] = 1.0;
    }
    double total = 0.0, correct = 0.0, counted = 0.0;
    for (int64_t i = 0; i < N; i++) {
        total += per[3 * i];
        correct += per[3 * i + 1];
        counted += per[3 * i + 2];
    }
    free(per);
    loss[0] = (float)(total / (counted > 0.0 ? counted : 1.0));
    if (metrics) {
        metrics[0] += (float)total;
        metrics[1] += (float)correct;
        metrics[2] += (float)counted;
    }
    return VT_OK;
}

vt_status vt_cpu_softmax_ce_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const float *logits = vt_cpu_f32(n->src[0]);
    const int32_t *labels = vt_cpu_i32(n->src[1]);
    float *dl = vt_cpu_f32(n->dst[0]);
    ce_shape sh = ce_shape_of(n->src[0]);
    int64_t N = sh.rows, K = sh.K, S = sh.S;
    double e = (double)n->p.ce.label_smoothing, scale = (double)n->p.ce.scale;
    VT_TRY(check_labels(n, labels, N, K));
    int nt = vt_cpu_nt(c, N * K * 4);
    VT_OMP_FOR
    for (int64_t i = 0; i < N; i++) {
        const float *row = row_at(logits, sh, i);
        float *out = dl + (row - logits);
        if (labels[i] < 0 || labels[i] >= K) {
            for (int64_t k = 0; k < K; k++) out[k * S] = 0.0f;
            continue;
        }
        double lse = row_logsumexp(row, K, S);
        for (int64_t k = 0; k < K; k++) {
            double target = e / (double)K + (k == labels[i] ? 1.0 - e : 0.0);
            out[k * S] = (float)(scale * (exp((double)row[k * S] - lse) - target));
        }
    }
    return VT_OK;
}

vt_status vt_cpu_argmax(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const float *x = vt_cpu_f32(n->src[0]);
    int32_t *out = vt_cpu_i32(n->dst[0]);
    ce_shape sh = ce_shape_of(n->src[0]);
    int nt = vt_cpu_nt(c, sh.rows * sh.K);
    VT_OMP_FOR
    for (int64_t i = 0; i < sh.rows; i++) out[i] = (int32_t)row_argmax(row_at(x, sh, i), sh.K, sh.S);
    return VT_OK;
}

vt_status vt_cpu_confusion(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)c;
    (void)ctx;
    const int32_t *pred = vt_cpu_i32(n->src[0]), *truth = vt_cpu_i32(n->src[1]);
    int32_t *counts = vt_cpu_i32(n->dst[0]);
    int64_t M = vt_tensor_nelem(n->src[0]), K1 = n->dst[0]->shape[0], K = K1 - 1;
    for (int64_t i = 0; i < M; i++) {
        int64_t t = truth[i] >= 0 && truth[i] < K ? truth[i] : K;
        int64_t q = pred[i] >= 0 && pred[i] < K ? pred[i] : K;
        counts[t * K1 + q]++;
    }
    return VT_OK;
}

/* ---- UPSAMPLE / UPSAMPLE_BWD ----
 * Per output index o along an axis of input size `in`: two source indices and their weights
 * (nearest: one index with weight 1, the second weight 0). Both directions use these taps. */

typedef struct up_tap {
    int64_t i0, i1;
    float l0, l1;
} up_tap;

static up_tap up_tap_of(vt_upsample_mode mode, int64_t o, int64_t in, int64_t out) {
    float scale = (float)in / (float)out;
    up_tap t;
    if (mode == VT_UPSAMPLE_NEAREST) {
        int64_t s = (int64_t)floorf((float)o * scale);
        t.i0 = t.i1 = s < in - 1 ? s : in - 1;
        t.l0 = 1.0f;
        t.l1 = 0.0f;
        return t;
    }
    float s = ((float)o + 0.5f) * scale - 0.5f;
    if (s < 0.0f) s = 0.0f;
    t.i0 = (int64_t)floorf(s);
    if (t.i0 > in - 1) t.i0 = in - 1;
    t.i1 = t.i0 + 1 < in - 1 ? t.i0 + 1 : in - 1;
    t.l1 = s - (float)t.i0;
    t.l0 = 1.0f - t.l1;
    return t;
}

static vt_status up_taps(const vt_node *n, vt_upsample_mode mode, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                         up_tap **th, up_tap **tw) {
    *th = malloc((size_t)(Ho + Wo) * sizeof(up_tap));
    if (!*th) return vt_error(VT_ERR_OOM, "%s %s: out of host memory", vt_op_name(n->op), n->label);
    *tw = *th + Ho;
    for (int64_t o = 0; o < Ho; o++) (*th)[o] = up_tap_of(mode, o, H, Ho);
    for (int64_t o = 0; o < Wo; o++) (*tw)[o] = up_tap_of(mode, o, W, Wo);
    return VT_OK;
}

vt_status vt_cpu_upsample(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_tensor *xt = n->src[0], *yt = n->dst[0];
    const float *x = vt_cpu_f32(xt);
    float *y = vt_cpu_f32(yt);
    int64_t planes = xt->shape[0] * xt->shape[1], H = xt->shape[2], W = xt->shape[3], Ho = yt->shape[2],
            Wo = yt->shape[3];
    up_tap *th, *tw;
    VT_TRY(up_taps(n, n->p.upsample.mode, H, W, Ho, Wo, &th, &tw));
    bool nearest = n->p.upsample.mode == VT_UPSAMPLE_NEAREST;
    int nt = vt_cpu_nt(c, planes * Ho * Wo * 4);
    VT_OMP_FOR
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++) {
            up_tap a = th[oh];
            for (int64_t ow = 0; ow < Wo; ow++) {
                up_tap b = tw[ow];
                /* Nearest copies the value: a zero weight times an Inf would make a NaN. */
                if (nearest) {
                    yp[oh * Wo + ow] = xp[a.i0 * W + b.i0];
                    continue;
                }
                yp[oh * Wo + ow] = a.l0 * (b.l0 * xp[a.i0 * W + b.i0] + b.l1 * xp[a.i0 * W + b.i1]) +
                                   a.l1 * (b.l0 * xp[a.i1 * W + b.i0] + b.l1 * xp[a.i1 * W + b.i1]);
            }
        }
    }
    free(th);
    return VT_OK;
}

vt_status vt_cpu_upsample_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_tensor *dyt = n->src[0], *dxt = n->dst[0];
    const float *dy = vt_cpu_f32(dyt);
    float *dx = vt_cpu_f32(dxt);
    int64_t planes = dxt->shape[0] * dxt->shape[1], H = dxt->shape[2], W = dxt->shape[3];
    int64_t Ho = dyt->shape[2], Wo = dyt->shape[3];
    up_tap *th, *tw;
    VT_TRY(up_taps(n, n->p.upsample.mode, H, W, Ho, Wo, &th, &tw));
    int nt = vt_cpu_nt(c, planes * Ho * Wo * 4);
    VT_OMP_FOR
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *dyp = dy + pl * Ho * Wo;
        float *dxp = dx + pl * H * W;
        memset(dxp, 0, (size_t)(H * W) * sizeof(float));
        for (int64_t oh = 0; oh < Ho; oh++) {
            up_tap a = th[oh];
            for (int64_t ow = 0; ow < Wo; ow++) {
                up_tap b = tw[ow];
                float g = dyp[oh * Wo + ow];
                /* Zero-weight taps are skipped so nearest mode adds exactly dy, once. */
                if (a.l0 != 0.0f) {
                    if (b.l0 != 0.0f) dxp[a.i0 * W + b.i0] += a.l0 * b.l0 * g;
                    if (b.l1 != 0.0f) dxp[a.i0 * W + b.i1] += a.l0 * b.l1 * g;
                }
                if (a.l1 != 0.0f) {
                    if (b.l0 != 0.0f) dxp[a.i1 * W + b.i0] += a.l1 * b.l0 * g;
                    if (b.l1 != 0.0f) dxp[a.i1 * W + b.i1] += a.l1 * b.l1 * g;
                }
            }
        }
    }
    free(th);
    return VT_OK;
}
