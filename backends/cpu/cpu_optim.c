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
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        int team = vt_cpu_team(), t = vt_cpu_tid();
        int64_t a = lo + (hi - lo) * t / team, b = lo + (hi - lo) * (t + 1) / team;
        vt_cpu_sgd_update(&u, param + a, buf ? buf + a : NULL, grad + a, b - a);
    }
}

vt_status vt_cpu_sgd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    vt_cpu_sgd_range(c, n, ctx, 0, vt_tensor_nelem(n->dst[0]));
    return VT_OK;
}

typedef struct vt_cpu_adam_loop {
    const float *grad;
    float *param, *m, *v;
    int64_t E;
    float c1, c1n, c2, b2, eps, wd, step_size, sqrt_bc2, decay;
    int decoupled, small;
} vt_cpu_adam_loop;

/* The operations of ops.h one by one over [lo, hi): fmaf where torch's CPU kernels fuse, every other
 * operation rounded on its own (-ffp-contract=off in CMakeLists.txt: the compiler fuses nothing else).
 * fmaf is exactly rounded on every path, so the FMA-instruction build below gives the same bits. */
static inline void adam_body(const vt_cpu_adam_loop *a, int64_t lo, int64_t hi) {
    const float *grad = a->grad;
    float *param = a->param, *m = a->m, *v = a->v;
    const float c1 = a->c1, c1n = a->c1n, c2 = a->c2, b2 = a->b2, eps = a->eps, wd = a->wd;
    const float step_size = a->step_size, sqrt_bc2 = a->sqrt_bc2, decay = a->decay;
    const int decoupled = a->decoupled, small = a->small;
    for (int64_t i = lo; i < hi; i++) {
        float g = grad[i], w = param[i];
        if (decoupled) w *= decay;
        else g = fmaf(wd, w, g);
        float mi = m[i], d = g - mi;
        mi = small ? fmaf(c1, d, mi) : fmaf(-c1n, d, g);
        float vi = fmaf(c2 * g, g, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        param[i] = w - (step_size * mi) / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* With FMA instructions fmaf is one instruction and the loop vectorises; without them it is a
 * library call per element (5.5 -> 9.6 ns per element measured). The OpenMP region stays outside:
 * an outlined region would not inherit the target. */
__attribute__((target("avx2,fma"))) static void adam_range_fma(const vt_cpu_adam_loop *a, int64_t lo, int64_t hi) {
    adam_body(a, lo, hi);
}
#define VT_ADAM_FMA 1
#endif
static void adam_range_plain(const vt_cpu_adam_loop *a, int64_t lo, int64_t hi) { adam_body(a, lo, hi); }

vt_status vt_cpu_adam(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_adam_params *p = &n->p.adam;
    int64_t t = (int64_t)ctx->step - p->step_offset + 1;
    if (t < 1)
        return vt_error(VT_ERR_INVALID_ARG, "adam %s: step %llu before step_offset %lld", n->label,
                        (unsigned long long)ctx->step, (long long)p->step_offset);
    vt_adam_consts k = vt_adam_consts_of(p, ctx->lr * p->lr_mult, t);
    vt_cpu_adam_loop a = {.grad = vt_cpu_f32(n->src[0]),
                          .param = vt_cpu_f32(n->dst[0]),
                          .m = vt_cpu_f32(n->dst[1]),
                          .v = vt_cpu_f32(n->dst[2]),
                          .E = vt_tensor_nelem(n->dst[0]),
                          .c1 = k.c1,
                          .c1n = 1.0f - k.c1,
                          .c2 = k.c2,
                          .b2 = k.b2,
                          .eps = k.eps,
                          .wd = k.wd,
                          .step_size = k.step_size,
                          .sqrt_bc2 = k.sqrt_bc2,
                          .decay = k.decay,
                          .decoupled = p->decoupled,
                          .small = k.c1 < 0.5f};
    int nt = vt_cpu_nt(c, a.E * 4), fma = 0;
    (void)nt; /* only read by the OpenMP pragma */
#ifdef VT_ADAM_FMA
    fma = vt_cpu_avx2_available();
#endif
    /* one contiguous share per thread; the update is element-wise, so the split changes nothing */
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        int team = vt_cpu_team(), tid = vt_cpu_tid();
        int64_t lo = a.E * tid / team, hi = a.E * (tid + 1) / team;
#ifdef VT_ADAM_FMA
        if (fma) adam_range_fma(&a, lo, hi);
        else
#endif
            adam_range_plain(&a, lo, hi);
    }
    (void)fma;
    return VT_OK;
}
