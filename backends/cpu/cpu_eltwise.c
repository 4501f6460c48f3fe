/* CPU elementwise ops: activations (the formulas of vt/act_formulas.h), their gradients, add and
 * dropout. One loop per kind so that each vectorises; the fast mode splits it over OpenMP threads. */
#include "cpu_internal.h"
#include "vt/rng.h"

/* ---- ACT / ACT_BWD / ADD ---- */

vt_status vt_cpu_act_fwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const float *x = vt_cpu_f32(n->src[0]);
    float *y = vt_cpu_f32(n->dst[0]);
    int64_t E = vt_tensor_nelem(n->src[0]);
    vt_act kind = n->p.act.kind;
    float alpha = n->p.act.alpha;
    int nt = vt_cpu_nt(c, E);
    /* One loop per kind so that relu and leaky relu vectorise (formulas: vt/act_formulas.h). */
    if (kind == VT_ACT_RELU) {
        VT_OMP_SIMD_FOR
        for (int64_t i = 0; i < E; i++) {
            float v = x[i];
            y[i] = VT_RELU_FWD(v);
        }
        return VT_OK;
    }
    if (kind == VT_ACT_LEAKY_RELU) {
        VT_OMP_SIMD_FOR
        for (int64_t i = 0; i < E; i++) {
            float v = x[i];
            y[i] = VT_LEAKY_RELU_FWD(v, alpha);
        }
        return VT_OK;
    }
    if (kind == VT_ACT_GELU) {
        VT_OMP_FOR
        for (int64_t i = 0; i < E; i++) {
            float v = x[i];
            y[i] = VT_GELU_FWD(v);
        }
        return VT_OK;
    }
    VT_OMP_FOR
    for (int64_t i = 0; i < E; i++) y[i] = vt_cpu_act(kind, alpha, x[i]);
    return VT_OK;
}

vt_status vt_cpu_act_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    /* src1 is the forward output y, or for gelu the forward input x (vt/act_formulas.h) */
    const float *dy = vt_cpu_f32(n->src[0]), *y = vt_cpu_f32(n->src[1]);
    float *dx = vt_cpu_f32(n->dst[0]);
    int64_t E = vt_tensor_nelem(n->src[0]);
    vt_act kind = n->p.act.kind;
    float alpha = n->p.act.alpha;
    int nt = vt_cpu_nt(c, E);
    /* One loop per kind so that each vectorises. */
    if (kind == VT_ACT_RELU) {
        VT_OMP_SIMD_FOR
        for (int64_t i = 0; i < E; i++) {
            float g = dy[i], v = y[i]; /* loaded unconditionally: a conditional load does not vectorise */
            dx[i] = VT_RELU_BWD(v, g);
        }
    } else if (kind == VT_ACT_LEAKY_RELU) {
        VT_OMP_SIMD_FOR
        for (int64_t i = 0; i < E; i++) {
            float g = dy[i], v = y[i];
            dx[i] = VT_LEAKY_RELU_BWD(v, g, alpha);
        }
    } else if (kind == VT_ACT_GELU) {
        VT_OMP_FOR
        for (int64_t i = 0; i < E; i++) {
            float g = dy[i], v = y[i];
            dx[i] = VT_GELU_BWD(v, g);
        }
    } else {
        VT_OMP_SIMD_FOR
        for (int64_t i = 0; i < E; i++) {
            float g = dy[i], v = y[i];
            dx[i] = VT_SELU_BWD(v, g);
        }
    }
    return VT_OK;
}

vt_status vt_cpu_add(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const float *a = vt_cpu_f32(n->src[0]), *b = vt_cpu_f32(n->src[1]);
    float *y = vt_cpu_f32(n->dst[0]);
    int64_t E = vt_tensor_nelem(n->src[0]);
    int nt = vt_cpu_nt(c, E);
    VT_OMP_SIMD_FOR
    for (int64_t i = 0; i < E; i++) y[i] = a[i] + b[i];
    return VT_OK;
}

/* ---- DROPOUT / DROPOUT_BWD: the same Philox mask, applied to x forward and to dy backward ---- */

vt_status vt_cpu_dropout(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_dropout_params *p = &n->p.dropout;
    const float *x = vt_cpu_f32(n->src[0]);
    float *y = vt_cpu_f32(n->dst[0]);
    int64_t E = vt_tensor_nelem(n->src[0]);
    int64_t groups = (E + 3) / 4;
    uint32_t seed = ctx->seed, salt = p->salt, s_lo = (uint32_t)ctx->step, s_hi = (uint32_t)(ctx->step >> 32);
    float prob = p->p, keep_div = 1.0f - p->p;
    int nt = vt_cpu_nt(c, E * 8);
    VT_OMP_FOR
    for (int64_t g = 0; g < groups; g++) {
        vt_philox_out w = vt_philox(seed, salt, (uint32_t)g, 0, s_lo, s_hi);
        for (int64_t l = 0; l < 4 && g * 4 + l < E; l++) {
            int64_t i = g * 4 + l;
            bool keep = vt_u32_to_unit(w.v[l]) >= prob;
            y[i] = keep ? x[i] / keep_div : 0.0f;
        }
    }
    return VT_OK;
}
