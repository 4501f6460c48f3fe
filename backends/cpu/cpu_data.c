/* CPU BATCH_PREP (gather, random crop and flip, normalise a batch from a resident u8 dataset), FILL
 * and NONFINITE. The Philox words are those of ops.h, so every backend picks the same crops and flips. */
#include <math.h>

#include "cpu_internal.h"
#include "vt/rng.h"

vt_status vt_cpu_batch_prep(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_batch_prep_params *p = &n->p.prep;
    const vt_tensor *it = n->src[0], *xt = n->dst[0];
    const uint8_t *images = vt_cpu_u8(it);
    bool masks = n->src[1]->dtype == VT_U8; /* u8 [D,H,W] class ids per pixel, else i32 [D] */
    const uint8_t *mask = masks ? vt_cpu_u8(n->src[1]) : NULL;
    const int32_t *labels = masks ? NULL : vt_cpu_i32(n->src[1]), *perm = vt_cpu_i32(n->src[2]);
    float *x = vt_cpu_f32(xt);
    int32_t *y = vt_cpu_i32(n->dst[1]);
    int64_t D = it->shape[0], C = it->shape[1], H = it->shape[2], W = it->shape[3], B = xt->shape[0];
    int64_t Ho = xt->shape[2], Wo = xt->shape[3];
    /* Indices come from data, not shapes: check them before any thread reads through them. */
    if (ctx->batch_start < 0 || ctx->batch_start + B > D)
        return vt_error(VT_ERR_INVALID_ARG, "batch_prep %s: batch [%lld,%lld) outside the %lld samples", n->label,
                        (long long)ctx->batch_start, (long long)(ctx->batch_start + B), (long long)D);
    for (int64_t b = 0; b < B; b++) {
        int32_t s = perm[ctx->batch_start + b];
        if (s < 0 || s >= D)
            return vt_error(VT_ERR_INVALID_ARG, "batch_prep %s: perm[%lld] = %d not in [0,%lld)", n->label,
                            (long long)(ctx->batch_start + b), s, (long long)D);
    }
    int pad = p->pad;
    uint32_t span_h = (uint32_t)(H - Ho + 2 * pad + 1), span_w = (uint32_t)(W - Wo + 2 * pad + 1);
    float stdv[4], mean[4], zero[4];
    for (int64_t ch = 0; ch < C; ch++) {
        mean[ch] = p->mean[ch];
        stdv[ch] = p->std[ch];
        zero[ch] = (0.0f / 255.0f - mean[ch]) / stdv[ch];
    }
    int nt = vt_cpu_nt(c, B * C * Ho * Wo * 4);
    VT_OMP_FOR
    for (int64_t b = 0; b < B; b++) {
        int64_t j = ctx->batch_start + b;
        int64_t s = perm[j];
        if (!masks) y[b] = labels[s];
        vt_philox_out w =
            vt_philox(ctx->seed, p->salt, (uint32_t)j, 0, (uint32_t)ctx->step, (uint32_t)(ctx->step >> 32));
        int64_t oy = p->center ? (int64_t)(span_h - 1) / 2 : (int64_t)(w.v[0] % span_h);
        int64_t ox = p->center ? (int64_t)(span_w - 1) / 2 : (int64_t)(w.v[1] % span_w);
        bool flip = p->flip && (w.v[2] & 1u);
        for (int64_t ch = 0; ch < C; ch++) {
            const uint8_t *src = images + ((s * C + ch) * H) * W;
            float *dst = x + ((b * C + ch) * Ho) * Wo;
            for (int64_t h = 0; h < Ho; h++) {
                int64_t sh = h + oy - pad;
                for (int64_t col = 0; col < Wo; col++) {
                    int64_t cc = flip ? Wo - 1 - col : col;
                    int64_t sw = cc + ox - pad;
                    float v;
                    if (sh < 0 || sh >= H || sw < 0 || sw >= W) v = zero[ch];
                    else v = ((float)src[sh * W + sw] / 255.0f - mean[ch]) / stdv[ch];
                    dst[h * Wo + col] = v;
                }
            }
        }
        if (masks) {
            const uint8_t *src = mask + s * H * W;
            int32_t *dst = y + b * Ho * Wo;
            for (int64_t h = 0; h < Ho; h++) {
                int64_t sh = h + oy - pad;
                for (int64_t col = 0; col < Wo; col++) {
                    int64_t sw = (flip ? Wo - 1 - col : col) + ox - pad;
                    dst[h * Wo + col] = (sh < 0 || sh >= H || sw < 0 || sw >= W) ? 255 : (int32_t)src[sh * W + sw];
                }
            }
        }
    }
    return VT_OK;
}

vt_status vt_cpu_fill(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_tensor *t = n->dst[0];
    int64_t E = vt_tensor_nelem(t);
    float v = n->p.fill.value;
    int nt = vt_cpu_nt(c, E);
    if (t->dtype == VT_F32) {
        float *d = vt_cpu_f32(t);
        VT_OMP_FOR
        for (int64_t i = 0; i < E; i++) d[i] = v;
        return VT_OK;
    }
    /* Integer fills: truncate toward zero, clamped to the type's range (NaN gives 0). */
    double lo = t->dtype == VT_I32 ? -2147483648.0 : 0.0;
    double hi = t->dtype == VT_I32 ? 2147483647.0 : t->dtype == VT_U32 ? 4294967295.0 : 255.0;
    double dv = isnan(v) ? 0.0 : trunc((double)v);
    if (dv < lo) dv = lo;
    if (dv > hi) dv = hi;
    if (t->dtype == VT_U8) {
        uint8_t *d = vt_cpu_u8(t);
        for (int64_t i = 0; i < E; i++) d[i] = (uint8_t)dv;
    } else if (t->dtype == VT_I32) {
        int32_t *d = vt_cpu_i32(t);
        VT_OMP_FOR
        for (int64_t i = 0; i < E; i++) d[i] = (int32_t)dv;
    } else if (t->dtype == VT_U32) {
        uint32_t *d = (uint32_t *)(void *)vt_cpu_i32(t);
        VT_OMP_FOR
        for (int64_t i = 0; i < E; i++) d[i] = (uint32_t)dv;
    } else {
        return vt_error(VT_ERR_DTYPE, "fill %s: dtype %s not supported", n->label, vt_dtype_name(t->dtype));
    }
    return VT_OK;
}

/* NONFINITE: a bit test on the exponent (all ones is NaN or +-Inf), so that -ffast-math, which may
 * assume isnan() false, cannot remove it. The flag is only ever set, never cleared. */
vt_status vt_cpu_nonfinite(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const uint32_t *x = (const uint32_t *)(const void *)vt_cpu_f32(n->src[0]);
    int64_t E = vt_tensor_nelem(n->src[0]);
    uint32_t found = 0;
    int nt = vt_cpu_nt(c, E);
    (void)nt; /* only read by the OpenMP pragma */
    VT_OMP("omp parallel for simd schedule(static) num_threads(nt) if(nt > 1) reduction(|:found)")
    for (int64_t i = 0; i < E; i++) found |= (uint32_t)((x[i] & 0x7f800000u) == 0x7f800000u);
    if (found) vt_cpu_i32(n->dst[0])[0] = 1;
    return VT_OK;
}
