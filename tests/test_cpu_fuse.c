/* CPU fast path: SGD updates fused into the weight-gradient GEMMs (backends/cpu/cpu_fuse.c).
 * Whole training steps of the MLPs with the fusion on, off, and on the reference backend must agree;
 * the planner must fuse where it may and refuse where another node would see different values. */
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
#include "vt/graph.h"
#include "vt/models.h"
#include "vt/rng.h"

static vt_backend *g_ref, *g_fused, *g_plain, *g_avx2;

static int setup(void **state) {
    (void)state;
    vt_backend_opts ro = {0}, fo = {0}, po = {0}, ao = {0};
    ro.reference = 1;
    po.options = "fuse=0";
    ao.options = "avx512=0";
    if (vt_backend_init_by_name("cpu", 0, &ro, &g_ref) != VT_OK) return -1;
    if (vt_backend_init_by_name("cpu", 0, &fo, &g_fused) != VT_OK) return -1;
    if (vt_backend_init_by_name("cpu", 0, &po, &g_plain) != VT_OK) return -1;
    return vt_backend_init_by_name("cpu", 0, &ao, &g_avx2) == VT_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    vt_backend_free(g_ref);
    vt_backend_free(g_fused);
    vt_backend_free(g_plain);
    vt_backend_free(g_avx2);
    return 0;
}

static bool fusion_on(void) { return strstr(g_fused->info.config, "SGD fused") != NULL; }

typedef struct run_out {
    float *params[2], *moms[2];
    int64_t n[2];
    uint64_t fused;
} run_out;

/* `steps` SGD steps of problem `name` (batch B, `classes` outputs) on be; parameters and momentum
 * of both groups come back in out. */
static void run_steps(vt_backend *be, const char *name, int B, int classes, const vt_optim_cfg *oc, int steps,
                      run_out *out) {
    const vt_problem *pr = vt_problem_find(name);
    assert_non_null(pr);
    vt_model_cfg cfg;
    vt_model_cfg_default(pr, classes, 3, 32, 32, &cfg);
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){B, 3, 32, 32});
    vt_tensor *y = vt_graph_tensor(g, "y", VT_I32, 1, (int64_t[]){B});
    vt_tensor *logits = vt_model_build(g, &cfg, x);
    vt_tensor *loss = vt_g_softmax_ce(g, logits, y, 0.0f, NULL);
    assert_int_equal(vt_graph_backward(g, loss, 0), VT_OK);
    assert_int_equal(vt_params_alloc(m, be, 7), VT_OK);
    assert_int_equal(vt_params_alloc_optimizer(m, oc->momentum != 0.0f ? 1 : 0), VT_OK);
    assert_int_equal(vt_graph_optimizer(g, oc, 0), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    size_t nx = (size_t)B * 3 * 32 * 32;
    float *xs = malloc(nx * sizeof *xs);
    int32_t *ys = malloc((size_t)B * sizeof *ys);
    assert_non_null(xs);
    assert_non_null(ys);
    vt_rng r;
    vt_rng_init(&r, 11, 0);
    uint64_t f0 = be->counters.fused;
    for (int s = 0; s < steps; s++) {
        for (size_t i = 0; i < nx; i++) xs[i] = vt_rng_uniform_range(&r, -1.0f, 1.0f);
        for (int i = 0; i < B; i++) ys[i] = (int32_t)((i * 7 + s) % classes);
        assert_int_equal(vt_tensor_upload(x, xs, nx * sizeof *xs), VT_OK);
        assert_int_equal(vt_tensor_upload(y, ys, (size_t)B * sizeof *ys), VT_OK);
        vt_step_ctx ctx = {.step = (uint64_t)s, .seed = 3, .lr = 0.05f};
        assert_int_equal(vt_graph_run(g, -1, &ctx), VT_OK);
    }
    out->fused = be->counters.fused - f0;
    for (int grp = 0; grp < 2; grp++) {
        vt_tensor *p = vt_params_flat_params(m, grp), *mo = oc->momentum != 0.0f ? vt_params_flat_opt(m, 0, grp) : NULL;
        out->n[grp] = p ? vt_tensor_nelem(p) : 0;
        out->params[grp] = out->moms[grp] = NULL;
        if (!p) continue;
        out->params[grp] = malloc((size_t)out->n[grp] * sizeof(float));
        assert_int_equal(vt_tensor_download(p, out->params[grp], vt_tensor_nbytes(p)), VT_OK);
        if (mo) {
            out->moms[grp] = malloc((size_t)out->n[grp] * sizeof(float));
            assert_int_equal(vt_tensor_download(mo, out->moms[grp], vt_tensor_nbytes(mo)), VT_OK);
        }
    }
    free(xs);
    free(ys);
    vt_graph_free(g);
    vt_params_free(m);
}

static void free_out(run_out *o) {
    for (int i = 0; i < 2; i++) free(o->params[i]), free(o->moms[i]);
}

/* max |a-b| / (atol + rtol |b|) over both groups' parameters and momentum: <= 1 passes. */
static double worst(const run_out *a, const run_out *b, double atol, double rtol) {
    double w = 0;
    for (int grp = 0; grp < 2; grp++) {
        assert_int_equal(a->n[grp], b->n[grp]);
        for (int64_t i = 0; i < a->n[grp]; i++) {
            double e =
                fabs((double)a->params[grp][i] - b->params[grp][i]) / (atol + rtol * fabs((double)b->params[grp][i]));
            if (!(e <= w)) w = e; /* NaN lands here too */
            if (a->moms[grp]) {
                e = fabs((double)a->moms[grp][i] - b->moms[grp][i]) / (atol + rtol * fabs((double)b->moms[grp][i]));
                if (!(e <= w)) w = e;
            }
        }
    }
    return w;
}

static bool same_bits(const run_out *a, const run_out *b) {
    for (int grp = 0; grp < 2; grp++) {
        size_t n = (size_t)a->n[grp] * sizeof(float);
        if (a->n[grp] != b->n[grp] || (n && memcmp(a->params[grp], b->params[grp], n) != 0)) return false;
        if (a->moms[grp] && memcmp(a->moms[grp], b->moms[grp], n) != 0) return false;
    }
    return true;
}

static void test_mlp_steps(void **state) {
    (void)state;
    if (!fusion_on()) {
        print_message("fusion not available on this CPU (needs x86 with AVX2 and FMA): compared unfused only\n");
    }
    const struct {
        const char *name;
        int B, classes;
        vt_optim_cfg oc;
        int weight_gemms; /* dW GEMMs that fuse per step */
    } cases[] = {
        {"mlp", 64, 100, {.kind = VT_OPTIM_SGD, .momentum = 0.9f, .group_lr_mult = {1.0f, 1.0f}}, 2},
        {"mlp",
         7,
         10,
         {.kind = VT_OPTIM_SGD, .momentum = 0.9f, .nesterov = 1, .weight_decay = 5e-3f, .group_lr_mult = {1.0f, 0.5f}},
         2},
        {"deep-mlp",
         13,
         100,
         {.kind = VT_OPTIM_SGD, .momentum = 0.0f, .weight_decay = 1e-2f, .group_lr_mult = {1.0f, 1.0f}},
         4},
        {"linear", 5, 13, {.kind = VT_OPTIM_SGD, .momentum = 0.5f, .group_lr_mult = {1.0f, 1.0f}}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_out f, p, r, v;
        const int steps = 3;
        run_steps(g_fused, cases[i].name, cases[i].B, cases[i].classes, &cases[i].oc, steps, &f);
        /* the AVX-512 and AVX2 variants of the fused kernel: same values, bit for bit */
        run_steps(g_avx2, cases[i].name, cases[i].B, cases[i].classes, &cases[i].oc, steps, &v);
        assert_true(same_bits(&f, &v));
        run_steps(g_plain, cases[i].name, cases[i].B, cases[i].classes, &cases[i].oc, steps, &p);
        run_steps(g_ref, cases[i].name, cases[i].B, cases[i].classes, &cases[i].oc, steps, &r);
        double fp = worst(&f, &p, 1e-7, 1e-5), fr = worst(&f, &r, 1e-6, 1e-4), pr = worst(&p, &r, 1e-6, 1e-4);
        print_message(
            "%s B=%d: %llu fused GEMMs; fused vs unfused %.3g, fused vs reference %.3g, unfused vs reference %.3g "
            "(of the tolerance)\n",
            cases[i].name, cases[i].B, (unsigned long long)f.fused, fp, fr, pr);
        assert_true(fp <= 1.0);
        assert_true(fr <= 1.0);
        assert_int_equal(p.fused, 0);
        if (fusion_on()) assert_int_equal(f.fused, (uint64_t)(cases[i].weight_gemms * steps));
        free_out(&f), free_out(&p), free_out(&r), free_out(&v);
    }
}

/* A hand-made exec: dW into the middle of a flat gradient, optionally a node that reads the weights
 * before the update, then the update. With the reader the planner must not fuse (the reader must
 * see the old weights); without it, it must, and both must match the reference. */
typedef struct exec_out {
    float *w, *mom, *z;
} exec_out;

static void run_exec(vt_backend *be, bool reader, exec_out *o, uint64_t *fused) {
    const int64_t K = 9, M = 13, N = 32, OFF = 5, E = OFF + M * N + 3;
    vt_tensor *dy, *x, *gflat, *wflat, *mflat, *z;
    assert_int_equal(vt_tensor_new(be, "dy", VT_F32, 2, (int64_t[]){K, M}, &dy), VT_OK);
    assert_int_equal(vt_tensor_new(be, "x", VT_F32, 2, (int64_t[]){K, N}, &x), VT_OK);
    assert_int_equal(vt_tensor_new(be, "grads", VT_F32, 1, (int64_t[]){E}, &gflat), VT_OK);
    assert_int_equal(vt_tensor_new(be, "params", VT_F32, 1, (int64_t[]){E}, &wflat), VT_OK);
    assert_int_equal(vt_tensor_new(be, "momentum", VT_F32, 1, (int64_t[]){E}, &mflat), VT_OK);
    assert_int_equal(vt_tensor_new(be, "z", VT_F32, 2, (int64_t[]){K, M}, &z), VT_OK);
    vt_rng r;
    vt_rng_init(&r, 5, 0);
    float buf[1024];
    const vt_tensor *fill[] = {dy, x, gflat, wflat, mflat};
    for (int t = 0; t < 5; t++) {
        int64_t n = vt_tensor_nelem(fill[t]);
        for (int64_t i = 0; i < n; i++) buf[i] = vt_rng_uniform_range(&r, -1.0f, 1.0f);
        assert_int_equal(vt_tensor_upload((vt_tensor *)fill[t], buf, (size_t)n * sizeof(float)), VT_OK);
    }
    /* views [M, N] at element OFF of the gradient and of the parameters */
    vt_tensor dw, w;
    vt_tensor_init(&dw, "dw", VT_F32, 2, (int64_t[]){M, N});
    dw.buf = gflat->buf, dw.offset = gflat->offset + OFF * sizeof(float), dw.flags = VT_TENSOR_VIEW;
    vt_tensor_init(&w, "w", VT_F32, 2, (int64_t[]){M, N});
    w.buf = wflat->buf, w.offset = wflat->offset + OFF * sizeof(float), w.flags = VT_TENSOR_VIEW;
    vt_node nodes[3];
    memset(nodes, 0, sizeof nodes);
    int nn = 0;
    nodes[nn].op = VT_OP_MATMUL;
    nodes[nn].p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    nodes[nn].src[0] = dy, nodes[nn].src[1] = x, nodes[nn].dst[0] = &dw;
    snprintf(nodes[nn++].label, sizeof nodes[0].label, "dw");
    if (reader) { /* z [K, M] = x [K, N] w^T: reads the weights */
        nodes[nn].op = VT_OP_MATMUL;
        nodes[nn].p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
        nodes[nn].src[0] = x, nodes[nn].src[1] = &w, nodes[nn].dst[0] = z;
        snprintf(nodes[nn++].label, sizeof nodes[0].label, "reader");
    }
    nodes[nn].op = VT_OP_SGD;
    nodes[nn].p.sgd = (vt_sgd_params){1.0f, 0.9f, 1e-3f, 0};
    nodes[nn].src[0] = gflat, nodes[nn].dst[0] = wflat, nodes[nn].dst[1] = mflat;
    snprintf(nodes[nn++].label, sizeof nodes[0].label, "optimizer");
    vt_graph_exec ex = {nodes, nn, NULL, NULL};
    vt_step_ctx ctx = {.step = 0, .seed = 1, .lr = 0.1f};
    uint64_t f0 = be->counters.fused;
    assert_int_equal(vt_backend_graph_compute(be, &ex, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    *fused = be->counters.fused - f0;
    vt_graph_exec_reset(be, &ex);
    o->w = malloc((size_t)E * sizeof(float));
    o->mom = malloc((size_t)E * sizeof(float));
    o->z = malloc((size_t)(K * M) * sizeof(float));
    assert_int_equal(vt_tensor_download(wflat, o->w, (size_t)E * sizeof(float)), VT_OK);
    assert_int_equal(vt_tensor_download(mflat, o->mom, (size_t)E * sizeof(float)), VT_OK);
    assert_int_equal(vt_tensor_download(z, o->z, (size_t)(K * M) * sizeof(float)), VT_OK);
    vt_tensor_free(dy), vt_tensor_free(x), vt_tensor_free(gflat), vt_tensor_free(wflat), vt_tensor_free(mflat);
    vt_tensor_free(z);
}

static void test_planner(void **state) {
    (void)state;
    const int64_t E = 5 + 13 * 32 + 3, KM = 9 * 13;
    for (int reader = 0; reader < 2; reader++) {
        exec_out f, r;
        uint64_t nf, nr;
        run_exec(g_fused, reader, &f, &nf);
        run_exec(g_ref, reader, &r, &nr);
        assert_int_equal(nr, 0);
        assert_int_equal(nf, reader || !fusion_on() ? 0 : 1);
        for (int64_t i = 0; i < E; i++) {
            assert_true(fabsf(f.w[i] - r.w[i]) <= 1e-5f + 1e-5f * fabsf(r.w[i]));
            assert_true(fabsf(f.mom[i] - r.mom[i]) <= 1e-5f + 1e-5f * fabsf(r.mom[i]));
        }
        for (int64_t i = 0; reader && i < KM; i++) assert_true(fabsf(f.z[i] - r.z[i]) <= 1e-5f + 1e-5f * fabsf(r.z[i]));
        free(f.w), free(f.mom), free(f.z), free(r.w), free(r.mom), free(r.z);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planner),
        cmocka_unit_test(test_mlp_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
