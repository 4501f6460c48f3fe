/* SGD (plain, momentum, Nesterov, weight decay), Adam and AdamW over several steps on every backend
 * present, against the update rules evaluated in double in the test. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"

#define NP    37 /* odd, not a multiple of any vector width */
#define STEPS 6

typedef struct target {
    const char *backend;
    int reference;
} target;

static vt_backend *start(const target *t) {
    vt_backend_opts o = {0};
    o.reference = t->reference;
    vt_backend *be = NULL;
    const vt_backend_reg *reg = vt_backend_reg_find(t->backend);
    if (!reg || reg->device_count() <= 0) {
        printf("SKIPPED: backend %s has no device here\n", t->backend);
        skip();
    }
    if (reg->init(0, &o, &be) != VT_OK) {
        printf("SKIPPED: backend %s did not start: %s\n", t->backend, vt_last_error());
        skip();
    }
    return be;
}

static vt_tensor *tnew(vt_backend *be, const float *data) {
    int64_t shape[1] = {NP};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "t", VT_F32, 1, shape, &t), VT_OK);
    assert_int_equal(vt_tensor_upload(t, data, sizeof(float) * NP), VT_OK);
    return t;
}

static void run(vt_backend *be, vt_node *n, const vt_step_ctx *ctx) {
    vt_status st = vt_backend_compute(be, n, ctx);
    if (st == VT_ERR_UNSUPPORTED) {
        printf("SKIPPED: %s has no %s: %s\n", be->info.backend, vt_op_name(n->op), vt_last_error());
        skip();
    }
    if (st != VT_OK) printf("%s\n", vt_last_error());
    assert_int_equal(st, VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
}

static void expect_close(const char *what, int step, const vt_tensor *t, const double *want, double atol, double rtol) {
    float got[NP];
    assert_int_equal(vt_tensor_download(t, got, sizeof got), VT_OK);
    for (int i = 0; i < NP; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (err > atol + rtol * fabs(want[i]))
            printf("%s step %d [%d]: got %.9g, want %.9g\n", what, step, i, (double)got[i], want[i]);
        assert_true(err <= atol + rtol * fabs(want[i]));
    }
}

/* Per-step learning rates, as a schedule would give them. */
static float step_lr(int t, float base) { return base * (1.0f - 0.1f * (float)t); }

static void sgd_case(const target *tg, float momentum, float wd, int nesterov, float lr_mult) {
    printf("%s%s: sgd momentum %g wd %g nesterov %d lr_mult %g\n", tg->backend, tg->reference ? "-ref" : "",
           (double)momentum, (double)wd, nesterov, (double)lr_mult);
    vt_backend *be = start(tg);
    vt_rng r;
    vt_rng_init(&r, 5, 1);
    float p0[NP], b0[NP], g[STEPS][NP];
    double p[NP], b[NP];
    for (int i = 0; i < NP; i++) p0[i] = vt_rng_uniform_range(&r, -1, 1), p[i] = p0[i], b0[i] = 0, b[i] = 0;
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < NP; i++) g[s][i] = vt_rng_uniform_range(&r, -1, 1);
    vt_tensor *tp = tnew(be, p0), *tb = momentum != 0 ? tnew(be, b0) : NULL, *tgr = tnew(be, g[0]);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_SGD;
    n.p.sgd = (vt_sgd_params){lr_mult, momentum, wd, nesterov};
    n.src[0] = tgr, n.dst[0] = tp, n.dst[1] = tb;
    for (int s = 0; s < STEPS; s++) {
        vt_step_ctx ctx = {(uint64_t)s, 1, step_lr(s, 0.1f), 0};
        assert_int_equal(vt_tensor_upload(tgr, g[s], sizeof g[s]), VT_OK);
        run(be, &n, &ctx);
        double lr = (double)ctx.lr * (double)lr_mult;
        for (int i = 0; i < NP; i++) {
            double d = (double)g[s][i] + (double)wd * p[i];
            if (momentum != 0) {
                b[i] = (double)momentum * b[i] + d;
                d = nesterov ? d + (double)momentum * b[i] : b[i];
            }
            p[i] -= lr * d;
        }
        expect_close("sgd param", s, tp, p, 1e-6, 1e-5);
        if (tb) expect_close("sgd momentum", s, tb, b, 1e-6, 1e-5);
    }
    /* step 1 from a zero buffer is plain SGD (PyTorch clones the gradient on the first step) */
    vt_tensor_free(tp);
    vt_tensor_free(tb);
    vt_tensor_free(tgr);
    vt_backend_free(be);
}

static void adam_case(const target *tg, int decoupled, float wd, int64_t step_offset) {
    printf("%s%s: %s wd %g step_offset %lld\n", tg->backend, tg->reference ? "-ref" : "", decoupled ? "adamw" : "adam",
           (double)wd, (long long)step_offset);
    vt_backend *be = start(tg);
    vt_rng r;
    vt_rng_init(&r, 6, 2);
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    float p0[NP], z[NP], g[STEPS][NP];
    double p[NP], m[NP], v[NP];
    for (int i = 0; i < NP; i++) p0[i] = vt_rng_uniform_range(&r, -1, 1), p[i] = p0[i], z[i] = 0, m[i] = v[i] = 0;
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < NP; i++) g[s][i] = vt_rng_uniform_range(&r, -1, 1) * (s + 1);
    vt_tensor *tp = tnew(be, p0), *tm = tnew(be, z), *tv = tnew(be, z), *tgr = tnew(be, g[0]);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_ADAM;
    n.p.adam = (vt_adam_params){1.0f, b1, b2, eps, wd, decoupled, step_offset};
    n.src[0] = tgr, n.dst[0] = tp, n.dst[1] = tm, n.dst[2] = tv;
    for (int s = 0; s < STEPS; s++) {
        vt_step_ctx ctx = {(uint64_t)(s + step_offset), 1, step_lr(s, 1e-2f), 0};
        assert_int_equal(vt_tensor_upload(tgr, g[s], sizeof g[s]), VT_OK);
        float before[NP];
        assert_int_equal(vt_tensor_download(tp, before, sizeof before), VT_OK);
        run(be, &n, &ctx);
        double lr = ctx.lr, t = (double)(s + 1);
        for (int i = 0; i < NP; i++) {
            double d = g[s][i];
            if (decoupled) p[i] *= 1.0 - lr * (double)wd;
            else d += (double)wd * p[i];
            m[i] = (double)b1 * m[i] + (1.0 - (double)b1) * d;
            v[i] = (double)b2 * v[i] + (1.0 - (double)b2) * d * d;
            double bc1 = 1.0 - pow((double)b1, t), bc2 = 1.0 - pow((double)b2, t);
            p[i] -= (lr / bc1) * m[i] / (sqrt(v[i]) / sqrt(bc2) + (double)eps);
        }
        /* 1 - b2^t cancels: one ulp of pow() at t = 1 is ~6e-5 of bc2, so a correct f32 kernel may be
         * ~1e-4 of lr off per step (GLSL's pow is not exact even at t = 1); a wrong t or formula is
         * off by a large part of lr. */
        expect_close("adam param", s, tp, p, 2e-4 * (double)ctx.lr * (s + 1), 1e-5);
        expect_close("adam m", s, tm, m, 1e-6, 1e-5);
        expect_close("adam v", s, tv, v, 1e-7, 1e-5);
        if (s == 0 && wd == 0) {
            /* The first step of Adam moves every parameter by lr * sign(g), whatever |g| is. */
            float after[NP];
            assert_int_equal(vt_tensor_download(tp, after, sizeof after), VT_OK);
            for (int i = 0; i < NP; i++)
                assert_true(fabs((double)(before[i] - after[i]) - lr * (g[0][i] > 0 ? 1 : -1)) < 1e-6);
        }
    }
    vt_tensor_free(tp);
    vt_tensor_free(tm);
    vt_tensor_free(tv);
    vt_tensor_free(tgr);
    vt_backend_free(be);
}

static void test_sgd(void **state) {
    const target *t = *state;
    sgd_case(t, 0, 0, 0, 1);
    sgd_case(t, 0, 5e-4f, 0, 1);
    sgd_case(t, 0.9f, 0, 0, 1);
    sgd_case(t, 0.9f, 5e-4f, 0, 0.5f);
    sgd_case(t, 0.9f, 0, 1, 1);
    sgd_case(t, 0.8f, 1e-2f, 1, 2);
}

static void test_adam(void **state) {
    const target *t = *state;
    adam_case(t, 0, 0, 0);
    adam_case(t, 0, 1e-2f, 0);
    adam_case(t, 1, 5e-2f, 0);
    adam_case(t, 1, 1e-2f, 1000); /* t restarts at 1 from step_offset */
}

int main(void) {
    static const target targets[] = {{"cpu", 1}, {"cpu", 0}, {"opencl", 0}, {"vulkan", 0}, {"cuda", 0}};
    static char names[10][40];
    struct CMUnitTest tests[10];
    int n = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        if (!vt_backend_reg_find(targets[i].backend)) {
            printf("SKIPPED: backend %s is not compiled in\n", targets[i].backend);
            continue;
        }
        const char *tag = targets[i].reference ? "-ref" : "";
        snprintf(names[n], sizeof names[n], "sgd %s%s", targets[i].backend, tag);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_sgd, (void *)&targets[i]);
        tests[n].name = names[n];
        n++;
        snprintf(names[n], sizeof names[n], "adam %s%s", targets[i].backend, tag);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_adam, (void *)&targets[i]);
        tests[n].name = names[n];
        n++;
    }
    return _cmocka_run_group_tests("optim", tests, (size_t)n, NULL, NULL);
}
