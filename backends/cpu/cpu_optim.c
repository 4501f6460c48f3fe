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
    vt_adam_consts k = vt_adam_consts_of(p, ctx->lr * p->lr_mult, t);
    float c1 = k.c1, c1n = 1.0f - k.c1, c2 = k.c2, b2 = k.b2, eps = k.eps, wd = k.wd;
    float step_size = k.step_size, sqrt_bc2 = k.sqrt_bc2, decay = k.decay;
    int decoupled = p->decoupled, small = c1 < 0.5f;
    int nt = vt_cpu_nt(c, E * 4);
    /* The operations of ops.h one by one: fmaf where torch's CPU kernels fuse, every other operation
     * rounded on its own (-ffp-contract=off in CMakeLists.txt: the compiler fuses nothing else). */
    VT_OMP_FOR
    for (int64_t i = 0; i < E; i++) {
        float g = grad[i], w = param[i];
        if (decoupled)
            w *= decay;
        else
            g = fmaf(wd, w, g);
        float mi = m[i], d = g - mi;
        mi = small ? fmaf(c1, d, mi) : fmaf(-c1n, d, g);
        float vi = fmaf(c2 * g, g, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        param[i] = w - (step_size * mi) / (sqrtf(vi) / sqrt_bc2 + eps);
    }
    return VT_OK;
}
