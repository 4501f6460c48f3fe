/* CPU optimizer steps, in place: SGD (momentum, Nesterov, L2 weight decay) and Adam / AdamW.
 * The per-step scalars (bias corrections) are computed once per call in double. */
#include <math.h>

#include "cpu_internal.h"

void vt_cpu_sgd_range(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx, int64_t lo, int64_t hi) {
    const float *grad = vt_cpu_f32(n->src[0]);
    float *param = vt_cpu_f32(n->dst[0]), *buf = vt_cpu_f32(n->dst[1]);
    vt_cpu_sgd_args u = vt_cpu_sgd_args_of(n, ctx);
    int nt = vt_cpu_nt(c, (hi - lo) * 2);
    (void)nt; /* only read by the OpenMP pragma */
    /* One contiguous share per thread; the update is element-wise, so the split changes nothing. */
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)")
    {
        int team = vt_cpu_team(), t = vt_cpu_tid();
        int64_t a = lo + (hi - lo) * t / team, b = lo + (hi - lo) * (t + 1) / team;
        vt_cpu_sgd_update(&u, param + a, buf ? buf + a : NULL, grad + a, b - a);
    }
}

vt_status vt_cpu_sgd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    vt_cpu_sgd_range(c, n, ctx, 0, vt_tensor_nelem(n->dst[0]));
    return VT_OK;
}

vt_status vt_cpu_adam(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_adam_params *p = &n->p.adam;
    const float *grad = vt_cpu_f32(n->src[0]);
    float *param = vt_cpu_f32(n->dst[0]), *m = vt_cpu_f32(n->dst[1]), *v = vt_cpu_f32(n->dst[2]);
    int64_t E = vt_tensor_nelem(n->dst[0]);
    int64_t t = (int64_t)ctx->step - p->step_offset + 1;
    if (t < 1)
        return vt_error(VT_ERR_INVALID_ARG, "adam %s: step %llu before step_offset %lld", n->label,
                        (unsigned long long)ctx->step, (long long)p->step_offset);
    float lr = ctx->lr * p->lr_mult;
    float b1 = p->beta1, b2 = p->beta2, eps = p->eps, wd = p->weight_decay;
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    float step_size = (float)((double)lr / bc1), sqrt_bc2 = (float)sqrt(bc2);
    float decay = 1.0f - lr * wd;
    int decoupled = p->decoupled;
    int nt = vt_cpu_nt(c, E * 4);
    VT_OMP_FOR
    for (int64_t i = 0; i < E; i++) {
        float g = grad[i], w = param[i];
        if (decoupled)
            w *= decay;
        else
            g += wd * w;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = w - step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
    return VT_OK;
}
