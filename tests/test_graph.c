/* Autodiff and planner checks at the graph level: gradients of whole small networks (conv, BN,
 * activations, pooling, residual add, upsample, views, label smoothing) against central differences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/graph.h"
#include "vt/registry.h"
#include "vt/models.h"
#include "vt/rng.h"

typedef struct net {
    vt_params *m;
    vt_graph *g;
    vt_tensor *x, *y, *loss;
    float *xdata;
    int32_t *ydata;
} net;

/* Variants of the network: 0 bilinear upsample + max-pool, 1 no upsample + avg-pool, 2 nearest + max,
 * 3 as 1 with gelu everywhere (an ACT node after conv2 and fc1: gelu is never fused). */
static int variant;

static vt_tensor *build_cnn(vt_graph *g, vt_tensor *x) {
    vt_tensor *h = vt_g_conv2d(g, x, "conv1", 4, 3, 1, 1, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
    if (variant != 1 && variant != 3)
        h = vt_g_upsample(g, h, variant == 2 ? VT_UPSAMPLE_NEAREST : VT_UPSAMPLE_BILINEAR, 10, 10);
    h = vt_g_batchnorm(g, h, "bn1", 0.1f, 1e-5f, 0);
    vt_act a = variant == 3 ? VT_ACT_GELU : VT_ACT_SELU;
    h = variant == 3 ? vt_g_gelu(g, h) : vt_g_act(g, h, VT_ACT_LEAKY_RELU, 0.1f);
    vt_tensor *p = vt_g_pool2d(g, h, variant == 1 || variant == 3 ? VT_POOL_AVG : VT_POOL_MAX, 2, 2, 0);
    vt_tensor *c = vt_g_conv2d(g, p, "conv2", 4, 3, 1, 1, 0, a, 0, VT_INIT_UNIFORM_FAN_IN);
    h = vt_g_add(g, c, p); /* p feeds two consumers: its gradient is summed */
    h = vt_g_pool2d(g, h, VT_POOL_AVG, 3, 2, 1);
    h = vt_g_global_avgpool(g, h);
    h = vt_g_linear(g, h, "fc1", 6, 1, a, 0, VT_INIT_UNIFORM_FAN_IN);
    h = vt_g_batchnorm(g, h, "bn2", 0.1f, 1e-5f, 0);
    return vt_g_linear(g, h, "fc2", 5, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
}

static void net_build(net *n, vt_backend *be, int frozen) {
    memset(n, 0, sizeof *n);
    n->m = vt_params_new();
    n->g = vt_graph_new(n->m, 1);
    n->x = vt_graph_tensor(n->g, "x", VT_F32, 4, (int64_t[]){3, 2, 5, 5});
    n->y = vt_graph_tensor(n->g, "y", VT_I32, 1, (int64_t[]){3});
    vt_tensor *logits = build_cnn(n->g, n->x);
    n->loss = vt_g_softmax_ce(n->g, logits, n->y, 0.1f, NULL);
    assert_int_equal(vt_graph_status(n->g), VT_OK);
    vt_status s = vt_graph_backward(n->g, n->loss, frozen);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    assert_int_equal(vt_params_alloc(n->m, be, 3), VT_OK);
    s = vt_graph_plan(n->g);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    n->xdata = malloc(3 * 2 * 25 * sizeof(float));
    n->ydata = malloc(3 * sizeof(int32_t));
    vt_rng r;
    vt_rng_init(&r, 11, 0);
    for (int i = 0; i < 150; i++) n->xdata[i] = vt_rng_normal(&r);
    for (int i = 0; i < 3; i++) n->ydata[i] = (int32_t)vt_rng_below(&r, 5);
}

static void net_free(net *n) {
    vt_graph_free(n->g);
    vt_params_free(n->m);
    free(n->xdata);
    free(n->ydata);
}

/* The arena is reused within a run, so inputs are written before every run. */
static float net_loss(net *n, int phase) {
    assert_int_equal(vt_tensor_upload(n->x, n->xdata, 150 * sizeof(float)), VT_OK);
    assert_int_equal(vt_tensor_upload(n->y, n->ydata, 3 * sizeof(int32_t)), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(n->g, phase, &ctx), VT_OK);
    float l;
    assert_int_equal(vt_tensor_download(n->loss, &l, sizeof l), VT_OK);
    return l;
}

static void check_gradients(vt_backend *be) {
    net n;
    net_build(&n, be, 0);
    net_loss(&n, -1);
    int checked = 0, bad = 0;
    for (int i = 0; i < vt_params_n_params(n.m); i++) {
        vt_tensor *p = vt_params_param_at(n.m, i);
        int64_t ne = vt_tensor_nelem(p);
        float *pv = malloc((size_t)ne * sizeof(float)), *gv = malloc((size_t)ne * sizeof(float));
        assert_int_equal(vt_tensor_download(p, pv, (size_t)ne * 4), VT_OK);
        assert_int_equal(vt_tensor_download(vt_params_grad_of(n.m, p), gv, (size_t)ne * 4), VT_OK);
        for (int k = 0; k < 4 && k < ne; k++) {
            int64_t j = (k * 7919) % ne;
            float keep = pv[j];
            /* small enough that few activations cross a kink (ReLU family, max-pool) */
            const float eps = 5e-4f;
            pv[j] = keep + eps;
            assert_int_equal(vt_tensor_upload(p, pv, (size_t)ne * 4), VT_OK);
            float lp = net_loss(&n, VT_PHASE_FORWARD);
            pv[j] = keep - eps;
            assert_int_equal(vt_tensor_upload(p, pv, (size_t)ne * 4), VT_OK);
            float lm = net_loss(&n, VT_PHASE_FORWARD);
            pv[j] = keep;
            assert_int_equal(vt_tensor_upload(p, pv, (size_t)ne * 4), VT_OK);
            double fd = ((double)lp - (double)lm) / (2.0 * eps);
            double an = gv[j];
            double tol = 3e-2 * fmax(fabs(fd), fabs(an)) + 2e-3;
            checked++;
            if (fabs(fd - an) > tol) {
                bad++;
                fprintf(stderr, "%s[%lld]: autodiff %.6f, finite difference %.6f\n", p->name, (long long)j, an, fd);
            }
        }
        free(pv);
        free(gv);
    }
    fprintf(stderr, "%s: %d gradient entries checked, %d off\n", be->info.name, checked, bad);
    assert_true(checked > 30);
    assert_int_equal(bad, 0);
    net_free(&n);
}

static void test_gradients_reference(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {.reference = 1};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    for (variant = 0; variant < 4; variant++) check_gradients(be);
    variant = 0;
    vt_backend_free(be);
}

/* Frozen groups get no gradient and no backward work is done for them. */
static void test_frozen_backbone(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {.reference = 1};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    net full, frozen;
    net_build(&full, be, 0);
    vt_params_set_group(full.m, 0);
    net_build(&frozen, be, 1u); /* build_cnn puts everything in group 0: all frozen */
    int conv_bwd_full = 0, conv_bwd_frozen = 0;
    for (int i = 0; i < vt_graph_n_nodes(full.g); i++)
        conv_bwd_full += vt_graph_node(full.g, i)->op == VT_OP_CONV2D_BWD_WEIGHT;
    for (int i = 0; i < vt_graph_n_nodes(frozen.g); i++)
        conv_bwd_frozen += vt_graph_node(frozen.g, i)->op == VT_OP_CONV2D_BWD_WEIGHT;
    assert_int_equal(conv_bwd_full, 2);
    assert_int_equal(conv_bwd_frozen, 0);
    net_free(&full);
    net_free(&frozen);
    vt_backend_free(be);
}

/* The update nodes: one over every parameter group when the groups share their settings (one
 * dispatch), one per group otherwise, none for a frozen group. */
static void test_optimizer_nodes(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {.reference = 1};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    const struct {
        vt_optim_cfg oc;
        uint32_t frozen;
        int nodes;
        const char *labels;
    } cases[] = {
        {{.kind = VT_OPTIM_SGD, .momentum = 0.9f, .group_lr_mult = {1.0f, 1.0f}}, 0, 1, "optimizer"},
        {{.kind = VT_OPTIM_SGD, .momentum = 0.9f, .group_lr_mult = {1.0f, 0.5f}}, 0, 2, "optimizer optimizer.head"},
        {{.kind = VT_OPTIM_ADAM,
          .beta1 = 0.9f,
          .beta2 = 0.999f,
          .eps = 1e-8f,
          .group_lr_mult = {1.0f, 1.0f},
          .step_offset = {0, 100}},
         0,
         2,
         "optimizer optimizer.head"},
        {{.kind = VT_OPTIM_ADAM, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .group_lr_mult = {1.0f, 1.0f}},
         0,
         1,
         "optimizer"},
        {{.kind = VT_OPTIM_SGD, .momentum = 0.0f, .group_lr_mult = {1.0f, 1.0f}}, 1u, 1, "optimizer.head"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vt_model_cfg cfg;
        vt_model_cfg_default(vt_problem_find("mlp"), 10, 3, 8, 8, &cfg);
        vt_params *m = vt_params_new();
        vt_graph *g = vt_graph_new(m, 1);
        vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){2, 3, 8, 8});
        vt_tensor *y = vt_graph_tensor(g, "y", VT_I32, 1, (int64_t[]){2});
        vt_tensor *loss = vt_g_softmax_ce(g, vt_model_build(g, &cfg, x), y, 0.0f, NULL);
        assert_int_equal(vt_graph_backward(g, loss, cases[c].frozen), VT_OK);
        assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
        assert_int_equal(vt_params_alloc_optimizer(m, cases[c].oc.kind == VT_OPTIM_SGD ? 1 : 2), VT_OK);
        assert_non_null(vt_params_flat_params(m, 1)); /* the head is a group of its own */
        int before = vt_graph_n_nodes(g);
        assert_int_equal(vt_graph_optimizer(g, &cases[c].oc, cases[c].frozen), VT_OK);
        char labels[64] = "";
        int64_t covered = 0;
        for (int i = before; i < vt_graph_n_nodes(g); i++) {
            const vt_node *n = vt_graph_node(g, i);
            snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%s", i > before ? " " : "", n->label);
            covered += vt_tensor_nelem(n->dst[0]);
            if (n->op == VT_OP_ADAM) {
                /* the decimal the user wrote, as torch's Python floats: (double)0.999f would make
                 * 1 - beta2 1.3e-5 off */
                assert_true(n->p.adam.beta1 == 0.9 && n->p.adam.beta2 == 0.999 && n->p.adam.eps == 1e-8);
                assert_true(n->p.adam.weight_decay == 0.0);
            }
        }
        print_message("case %zu: %s\n", c, labels);
        assert_int_equal(vt_graph_n_nodes(g) - before, cases[c].nodes);
        assert_string_equal(labels, cases[c].labels);
        /* merged: the one node spans both groups and the gap between them */
        if (cases[c].nodes == 1 && !cases[c].frozen)
            assert_int_equal(covered, vt_tensor_nelem(vt_params_flat_params(m, -1)));
        vt_graph_free(g);
        vt_params_free(m);
    }
    vt_backend_free(be);
}

/* The planner reuses memory: the arena is smaller than the sum of the activations. */
static void test_planner_reuses(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {0};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 0);
    vt_tensor *h = vt_graph_tensor(g, "x", VT_F32, 2, (int64_t[]){64, 256});
    size_t total = vt_tensor_nbytes(h);
    char name[16];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "fc%d", i);
        h = vt_g_linear(g, h, name, 256, 1, VT_ACT_RELU, 0, VT_INIT_UNIFORM_FAN_IN);
        total += vt_tensor_nbytes(h);
    }
    assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    fprintf(stderr, "arena %zu bytes for %zu bytes of activations\n", vt_graph_arena_bytes(g), total);
    assert_true(vt_graph_arena_bytes(g) <= 3 * 64 * 256 * 4 + 3 * VT_ALIGN);
    vt_graph_free(g);
    vt_params_free(m);
    vt_backend_free(be);
}

/* gelu asked of linear and conv2d becomes an ACT node after an unfused node; its ACT_BWD reads the
 * forward input x, every other activation's the output y; a fused gelu is refused by validation. */
static void test_gelu_not_fused(void **state) {
    (void)state;
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){2, 3, 4, 4});
    vt_tensor *y = vt_graph_tensor(g, "y", VT_I32, 1, (int64_t[]){2});
    vt_tensor *h = vt_g_conv2d(g, x, "c", 4, 3, 1, 1, 1, VT_ACT_GELU, 0, VT_INIT_UNIFORM_FAN_IN);
    h = vt_g_linear(g, h, "fc1", 5, 1, VT_ACT_GELU, 0, VT_INIT_UNIFORM_FAN_IN);
    h = vt_g_linear(g, h, "fc2", 3, 1, VT_ACT_SELU, 0, VT_INIT_UNIFORM_FAN_IN);
    vt_tensor *loss = vt_g_softmax_ce(g, h, y, 0.0f, NULL);
    assert_non_null(loss);
    assert_int_equal(vt_graph_backward(g, loss, 0), VT_OK);
    int gelu_fwd = 0, gelu_bwd = 0, selu_bwd = 0;
    for (int i = 0; i < vt_graph_n_nodes(g); i++) {
        const vt_node *n = vt_graph_node(g, i);
        if (n->op == VT_OP_MATMUL) assert_int_not_equal(n->p.matmul.act, VT_ACT_GELU);
        if (n->op == VT_OP_CONV2D) assert_int_equal(n->p.conv2d.act, VT_ACT_NONE);
        if (n->op == VT_OP_ACT && n->p.act.kind == VT_ACT_GELU) {
            gelu_fwd++;
            /* the ACT_BWD of this node reads its input */
            int found = 0;
            for (int k = i + 1; k < vt_graph_n_nodes(g); k++) {
                const vt_node *b = vt_graph_node(g, k);
                if (b->op == VT_OP_ACT_BWD && b->p.act.kind == VT_ACT_GELU && b->src[1] == n->src[0]) found++;
            }
            assert_int_equal(found, 1);
        }
        if (n->op == VT_OP_ACT_BWD && n->p.act.kind == VT_ACT_GELU) gelu_bwd++;
        if (n->op == VT_OP_ACT_BWD && n->p.act.kind == VT_ACT_SELU) {
            selu_bwd++;
            assert_string_equal(n->src[1]->name, "fc2"); /* the output of the fused matmul */
        }
    }
    assert_int_equal(gelu_fwd, 2);
    assert_int_equal(gelu_bwd, 2);
    assert_int_equal(selu_bwd, 1);
    vt_graph_free(g);
    vt_params_free(m);

    /* a node that fuses gelu does not validate */
    int64_t s2[2] = {2, 2};
    vt_tensor a, b, c;
    vt_tensor_init(&a, "a", VT_F32, 2, s2);
    vt_tensor_init(&b, "b", VT_F32, 2, s2);
    vt_tensor_init(&c, "c", VT_F32, 2, s2);
    vt_node n = {.op = VT_OP_MATMUL, .src = {&a, &b}, .dst = {&c}};
    n.p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_SELU, 0};
    assert_int_equal(vt_node_validate(&n), VT_OK);
    n.p.matmul.act = VT_ACT_GELU;
    assert_int_equal(vt_node_validate(&n), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "gelu"));
    int64_t s4[4] = {1, 2, 3, 3}, w4[4] = {2, 2, 1, 1};
    vt_tensor cx, cw, cy;
    vt_tensor_init(&cx, "x", VT_F32, 4, s4);
    vt_tensor_init(&cw, "w", VT_F32, 4, w4);
    vt_tensor_init(&cy, "y", VT_F32, 4, s4);
    vt_node cn = {.op = VT_OP_CONV2D, .src = {&cx, &cw}, .dst = {&cy}};
    cn.p.conv2d = (vt_conv2d_params){1, 1, 0, 0, VT_ACT_RELU, 0};
    assert_int_equal(vt_node_validate(&cn), VT_OK);
    cn.p.conv2d.act = VT_ACT_GELU;
    assert_int_equal(vt_node_validate(&cn), VT_ERR_INVALID_ARG);
}

/* Mis-shaped models and bad graphs are errors, not crashes. */
static void test_build_errors(void **state) {
    (void)state;
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){2, 3, 4, 4});
    vt_tensor *y = vt_g_conv2d(g, x, "c", 4, 7, 1, 0, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
    assert_null(y);
    assert_int_equal(vt_graph_status(g), VT_ERR_SHAPE);
    assert_non_null(strstr(vt_last_error(), "conv2d"));
    vt_graph_free(g);
    g = vt_graph_new(m, 1);
    x = vt_graph_tensor(g, "x", VT_F32, 2, (int64_t[]){2, 8});
    assert_non_null(vt_g_linear(g, x, "fc", 3, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN));
    vt_graph_free(g);
    g = vt_graph_new(m, 1);
    x = vt_graph_tensor(g, "x", VT_F32, 2, (int64_t[]){2, 9});
    assert_null(vt_g_linear(g, x, "fc", 3, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN)); /* same name, other shape */
    assert_non_null(strstr(vt_last_error(), "fc.weight"));
    assert_null(vt_graph_reshape(g, x, 1, (int64_t[]){17}));
    vt_graph_free(g);
    vt_params_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_reference), cmocka_unit_test(test_frozen_backbone),
        cmocka_unit_test(test_optimizer_nodes),     cmocka_unit_test(test_planner_reuses),
        cmocka_unit_test(test_build_errors),        cmocka_unit_test(test_gelu_not_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
