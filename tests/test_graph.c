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
 * 3 as 1 with gelu everywhere (an ACT node after conv2 and fc1: gelu is never fused), 4 a transposed
 * convolution with bias (k4 s2 p1, 5x5 -> 10x10) in place of the upsample. */
static int variant;

static vt_tensor *build_cnn(vt_graph *g, vt_tensor *x) {
    vt_tensor *h = vt_g_conv2d(g, x, "conv1", 4, 3, 1, 1, 1, VT_ACT_NONE, 0, VT_INIT_UNIFORM_FAN_IN);
    if (variant == 4)
        h = vt_g_conv2d_transpose(g, h, "up", 4, 4, 2, 1, 1, VT_INIT_UNIFORM_FAN_IN);
    else if (variant != 1 && variant != 3)
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
    for (variant = 0; variant < 5; variant++) check_gradients(be);
    vt_backend_free(be);
    /* the fast CPU through the transposed convolution's forward and its three backward nodes */
    vt_backend_opts fast = {0};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &fast, &be), VT_OK);
    variant = 4;
    check_gradients(be);
    variant = 0;
    vt_backend_free(be);
}

/* CONV2D_TRANSPOSE validates P and Q within PyTorch's output_padding range, w [C,K,R,S], bias [K], no
 * activation, paddings smaller than the kernel. */
static void test_conv_transpose_validation(void **state) {
    (void)state;
    /* x [2,3,4,5], w [3,6,3,3], stride 2 pad 1: P from 7 to 8, Q from 9 to 10 */
    vt_tensor x, w, b, y, bad_w, bad_b;
    vt_tensor_init(&x, "x", VT_F32, 4, (int64_t[]){2, 3, 4, 5});
    vt_tensor_init(&w, "w", VT_F32, 4, (int64_t[]){3, 6, 3, 3});
    vt_tensor_init(&b, "b", VT_F32, 1, (int64_t[]){6});
    vt_tensor_init(&bad_w, "w", VT_F32, 4, (int64_t[]){6, 3, 3, 3});
    vt_tensor_init(&bad_b, "b", VT_F32, 1, (int64_t[]){3});
    vt_node n = {.op = VT_OP_CONV2D_TRANSPOSE, .src = {&x, &w, &b}, .dst = {&y}};
    n.p.conv2d = (vt_conv2d_params){2, 2, 1, 1, VT_ACT_NONE, 0};
    const int64_t ok[4][2] = {{7, 9}, {8, 10}, {7, 10}, {8, 9}}, bad[4][2] = {{6, 9}, {9, 9}, {7, 8}, {7, 11}};
    for (int i = 0; i < 4; i++) {
        vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, ok[i][0], ok[i][1]});
        if (vt_node_validate(&n) != VT_OK) fail_msg("%s", vt_last_error());
        vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, bad[i][0], bad[i][1]});
        assert_int_equal(vt_node_validate(&n), VT_ERR_SHAPE);
    }
    vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, 7, 9});
    n.src[2] = NULL; /* the bias is optional */
    assert_int_equal(vt_node_validate(&n), VT_OK);
    n.src[2] = &bad_b;
    assert_int_equal(vt_node_validate(&n), VT_ERR_SHAPE);
    n.src[2] = &b;
    n.src[1] = &bad_w; /* a CONV2D weight [K,C,R,S] is not a transposed one */
    assert_int_equal(vt_node_validate(&n), VT_ERR_SHAPE);
    n.src[1] = &w;
    n.p.conv2d.act = VT_ACT_RELU;
    assert_int_equal(vt_node_validate(&n), VT_ERR_INVALID_ARG);
    n.p.conv2d = (vt_conv2d_params){2, 2, 3, 1, VT_ACT_NONE, 0};
    assert_int_equal(vt_node_validate(&n), VT_ERR_INVALID_ARG);
    n.p.conv2d = (vt_conv2d_params){0, 2, 1, 1, VT_ACT_NONE, 0};
    assert_int_equal(vt_node_validate(&n), VT_ERR_INVALID_ARG);
    /* stride 1: exactly one P */
    n.p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_NONE, 0};
    vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, 4, 5});
    assert_int_equal(vt_node_validate(&n), VT_OK);
    vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, 5, 5});
    assert_int_equal(vt_node_validate(&n), VT_ERR_SHAPE);
    /* the FLOPs are those of its data gradient: 2 * inputs * K*R*S */
    n.p.conv2d = (vt_conv2d_params){2, 2, 1, 1, VT_ACT_NONE, 0};
    vt_tensor_init(&y, "y", VT_F32, 4, (int64_t[]){2, 6, 7, 9});
    assert_float_equal(vt_node_flops(&n), 2.0 * 120 * 54, 0.0);
}

/* A bilinear-initialised transposed convolution (FCN's upsampling, k = 2s, p = s/2) turns a constant
 * image into the same constant away from the borders, channel by channel (the kernel does not mix
 * channels), and its weight is get_upsampling_weight's. */
static void bilinear_check(vt_backend *be, int64_t H, int k, int s, int pad) {
    const int64_t C = 3;
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){2, C, H, H});
    vt_tensor *y = vt_g_conv2d_transpose(g, x, "up", C, k, s, pad, 0, VT_INIT_BILINEAR);
    if (!y) fail_msg("%s", vt_last_error());
    int64_t P = (H - 1) * s - 2 * pad + k;
    assert_int_equal(y->shape[2], P);
    assert_int_equal(y->shape[3], P);
    assert_int_equal(vt_params_alloc(m, be, 3), VT_OK);
    if (vt_graph_plan(g) != VT_OK) fail_msg("%s", vt_last_error());
    /* the weight: f(i) = 1 - |i - center| / factor on each axis of w[c,c], zero off the diagonal */
    vt_tensor *w = vt_params_param_at(m, 0);
    int64_t nw = vt_tensor_nelem(w);
    float *wv = malloc((size_t)nw * sizeof(float));
    assert_int_equal(vt_tensor_download(w, wv, (size_t)nw * sizeof(float)), VT_OK);
    int factor = (k + 1) / 2;
    double center = k % 2 ? factor - 1.0 : factor - 0.5;
    for (int64_t c = 0; c < C; c++)
        for (int64_t o = 0; o < C; o++)
            for (int r = 0; r < k; r++)
                for (int q = 0; q < k; q++) {
                    double want = c != o ? 0.0 : (1 - fabs(r - center) / factor) * (1 - fabs(q - center) / factor);
                    assert_float_equal(wv[((c * C + o) * k + r) * k + q], (float)want, 0.0);
                }
    free(wv);
    int64_t nx = 2 * C * H * H, ny = 2 * C * P * P;
    float *xv = malloc((size_t)nx * sizeof(float)), *yv = malloc((size_t)ny * sizeof(float));
    for (int64_t i = 0; i < nx; i++) xv[i] = 0.5f + (float)((i / (H * H)) % C); /* channel c holds 0.5 + c */
    assert_int_equal(vt_tensor_upload(x, xv, (size_t)nx * sizeof(float)), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(g, VT_PHASE_FORWARD, &ctx), VT_OK);
    assert_int_equal(vt_tensor_download(y, yv, (size_t)ny * sizeof(float)), VT_OK);
    int checked = 0;
    for (int64_t n = 0; n < 2; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t p = s - pad; p < H * s - pad; p++) /* two input rows reach p, their taps sum to 1 */
                for (int64_t q = s - pad; q < H * s - pad; q++) {
                    assert_float_equal(yv[((n * C + c) * P + p) * P + q], 0.5 + (double)c, 1e-5);
                    checked++;
                }
    assert_true(checked > 0);
    /* at the border the image fades: the corner is not the constant (the check above looks inside) */
    assert_true(fabsf(yv[0] - 0.5f) > 1e-3f);
    free(xv);
    free(yv);
    vt_graph_free(g);
    vt_params_free(m);
}

static void test_bilinear_upsampling(void **state) {
    (void)state;
    for (int reference = 1; reference >= 0; reference--) {
        vt_backend *be;
        vt_backend_opts o = {.reference = reference};
        assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
        bilinear_check(be, 4, 4, 2, 1);
        bilinear_check(be, 3, 16, 8, 4);
        bilinear_check(be, 2, 64, 32, 16); /* FCN-32s */
        vt_backend_free(be);
    }
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

/* ---- the synchronised batch norm ---- */

/* One data-parallel rank (or the whole batch when ranks = 0): the network of build_cnn (variant 1:
 * conv, a 2-D batch norm, pooling, residual add, a 1-D batch norm) on B samples. */
typedef struct sbn_net {
    vt_params *m;
    vt_graph *g;
    vt_tensor *x, *y, *metrics; /* metrics: external, so the arena's reuse leaves the summed loss alone */
    int64_t B;
} sbn_net;

static void sbn_build(sbn_net *n, vt_backend *be, int64_t B, int ranks) {
    memset(n, 0, sizeof *n);
    n->B = B;
    n->m = vt_params_new();
    n->g = vt_graph_new(n->m, 1);
    if (ranks) vt_graph_set_sync_bn(n->g, ranks);
    /* external: a planned tensor first used late (the labels) shares memory with earlier ones */
    assert_int_equal(vt_tensor_new(be, "x", VT_F32, 4, (int64_t[]){B, 2, 5, 5}, &n->x), VT_OK);
    assert_int_equal(vt_tensor_new(be, "y", VT_I32, 1, (int64_t[]){B}, &n->y), VT_OK);
    vt_graph_external(n->g, n->x);
    vt_graph_external(n->g, n->y);
    variant = 1;
    assert_int_equal(vt_tensor_new(be, "metrics", VT_F32, 1, (int64_t[]){3}, &n->metrics), VT_OK);
    vt_tensor *loss = vt_g_softmax_ce(n->g, build_cnn(n->g, n->x), n->y, 0.1f, n->metrics);
    variant = 0;
    assert_int_equal(vt_graph_status(n->g), VT_OK);
    if (vt_graph_backward(n->g, loss, 0) != VT_OK) fail_msg("%s", vt_last_error());
    assert_int_equal(vt_params_alloc(n->m, be, 3), VT_OK);
    if (vt_graph_plan(n->g) != VT_OK) fail_msg("%s", vt_last_error());
}

static void sbn_free(sbn_net *n) {
    vt_graph_free(n->g);
    vt_params_free(n->m);
    vt_tensor_free(n->metrics);
    vt_tensor_free(n->x);
    vt_tensor_free(n->y);
}

static void sbn_inputs(sbn_net *n, const float *x, const int32_t *y) {
    assert_int_equal(vt_tensor_upload(n->x, x, vt_tensor_nbytes(n->x)), VT_OK);
    assert_int_equal(vt_tensor_upload(n->y, y, vt_tensor_nbytes(n->y)), VT_OK);
    const float zero[3] = {0};
    assert_int_equal(vt_tensor_upload(n->metrics, zero, sizeof zero), VT_OK);
}

/* Runs the graphs of `ranks` ranks in lockstep, piece by piece, and at every sync point combines the
 * ranks' tensors on the host as vt/graph.h says (in double). */
static void sbn_run(sbn_net *n, int ranks) {
    vt_step_ctx ctx = {0};
    int ns = vt_graph_n_sync_points(n[0].g), at = 0;
    for (int r = 1; r < ranks; r++) assert_int_equal(vt_graph_n_sync_points(n[r].g), ns);
    for (int i = 0; i <= ns; i++) {
        const vt_sync_point *sp = i < ns ? vt_graph_sync_point(n[0].g, i) : NULL;
        int end = sp ? sp->after_node + 1 : vt_graph_n_nodes(n[0].g);
        for (int r = 0; r < ranks; r++)
            if (vt_graph_run_range(n[r].g, at, end, &ctx) != VT_OK) fail_msg("%s", vt_last_error());
        at = end;
        if (!sp) break;
        int64_t E = vt_tensor_nelem(sp->t), C = E / 2;
        float v[4][128];
        double out[128] = {0};
        assert_true(ranks <= 4 && E <= 128);
        for (int r = 0; r < ranks; r++) {
            const vt_sync_point *q = vt_graph_sync_point(n[r].g, i);
            assert_int_equal(q->after_node, sp->after_node);
            assert_int_equal(q->kind, sp->kind);
            assert_int_equal(vt_tensor_download(q->t, v[r], (size_t)E * sizeof(float)), VT_OK);
        }
        for (int64_t c = 0; c < C; c++) {
            if (sp->kind == VT_SYNC_BN_STATS) {
                for (int r = 0; r < ranks; r++) out[c] += (double)v[r][c] / ranks;
                for (int r = 0; r < ranks; r++) {
                    double dm = (double)v[r][c] - out[c];
                    out[C + c] += ((double)v[r][C + c] + dm * dm) / ranks;
                }
            } else {
                for (int r = 0; r < ranks; r++) {
                    out[c] += (double)v[r][c];
                    out[C + c] += (double)v[r][C + c];
                }
            }
        }
        float f[128];
        for (int64_t k = 0; k < E; k++) f[k] = (float)out[k];
        for (int r = 0; r < ranks; r++)
            assert_int_equal(vt_tensor_upload(vt_graph_sync_point(n[r].g, i)->t, f, (size_t)E * sizeof(float)), VT_OK);
    }
}

static float *sbn_get(const vt_tensor *t) {
    float *h = malloc(vt_tensor_nbytes(t));
    assert_non_null(h);
    assert_int_equal(vt_tensor_download(t, h, vt_tensor_nbytes(t)), VT_OK);
    return h;
}

/* want[i] against the mean over the ranks of got[r][i], within tol of the tensor's largest value, plus
 * 1e-7: a bias followed by a batch norm (conv1.bias) has a gradient that is zero but for rounding. */
static void sbn_expect(const char *what, const vt_tensor *want, vt_tensor *const *got, int ranks, double tol) {
    int64_t E = vt_tensor_nelem(want);
    float *w = sbn_get(want), *g[4];
    for (int r = 0; r < ranks; r++) g[r] = sbn_get(got[r]);
    double scale = 0.0;
    for (int64_t i = 0; i < E; i++) scale = fmax(scale, fabs((double)w[i]));
    for (int64_t i = 0; i < E; i++) {
        double mean = 0.0;
        for (int r = 0; r < ranks; r++) mean += (double)g[r][i] / ranks;
        if (!(fabs(mean - (double)w[i]) <= tol * scale + 1e-7))
            fail_msg("%s[%lld]: %.9g over the ranks, %.9g whole (scale %g)", what, (long long)i, mean, (double)w[i],
                     scale);
    }
    free(w);
    for (int r = 0; r < ranks; r++) free(g[r]);
}

/* The whole batch in one graph against `ranks` graphs on its parts with synchronised batch norm:
 * the mean loss, every gradient averaged over the ranks (as data-parallel training averages them)
 * and the running statistics. ranks = 1 checks the split ops against BATCHNORM itself. */
static void check_sync_bn_graph(vt_backend *be, int ranks, int64_t B) {
    sbn_net whole, part[4];
    sbn_build(&whole, be, B, 0);
    for (int r = 0; r < ranks; r++) sbn_build(&part[r], be, B / ranks, ranks);
    int64_t per = B / ranks * 50;
    float *x = malloc((size_t)B * 50 * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y);
    assert_true(x && y);
    vt_rng rng;
    vt_rng_init(&rng, 17, 0);
    for (int64_t i = 0; i < B * 50; i++) x[i] = vt_rng_normal(&rng);
    for (int64_t i = 0; i < B; i++) y[i] = (int32_t)vt_rng_below(&rng, 5);
    sbn_inputs(&whole, x, y);
    vt_step_ctx ctx = {0};
    if (vt_graph_run(whole.g, -1, &ctx) != VT_OK) fail_msg("%s", vt_last_error());
    for (int r = 0; r < ranks; r++) sbn_inputs(&part[r], x + r * per, y + r * (B / ranks));
    sbn_run(part, ranks);
    /* the summed loss and sample count of the whole batch are the sums of the parts' */
    float mw[3], mr[3], sum[3] = {0};
    assert_int_equal(vt_tensor_download(whole.metrics, mw, sizeof mw), VT_OK);
    for (int r = 0; r < ranks; r++) {
        assert_int_equal(vt_tensor_download(part[r].metrics, mr, sizeof mr), VT_OK);
        for (int k = 0; k < 3; k++) sum[k] += mr[k];
    }
    if (!(fabs((double)sum[0] - (double)mw[0]) <= 1e-5 * fabs((double)mw[0])))
        fail_msg("summed loss %.9g over the ranks, %.9g whole", (double)sum[0], (double)mw[0]);
    assert_true(sum[2] == mw[2] && mw[2] == (float)B);
    vt_tensor *got[4];
    int n_params = vt_params_n_params(whole.m);
    assert_int_equal(n_params, vt_params_n_params(part[0].m));
    for (int i = 0; i < n_params; i++) {
        vt_tensor *p = vt_params_param_at(whole.m, i);
        for (int r = 0; r < ranks; r++) got[r] = vt_params_grad_of(part[r].m, vt_params_param_at(part[r].m, i));
        sbn_expect(p->name, vt_params_grad_of(whole.m, p), got, ranks, 1e-5);
    }
    for (int i = 0; i < vt_params_n_states(whole.m); i++) {
        for (int r = 0; r < ranks; r++) got[r] = vt_params_state_at(part[r].m, i);
        sbn_expect(vt_params_state_at(whole.m, i)->name, vt_params_state_at(whole.m, i), got, ranks, 1e-5);
    }
    free(x);
    free(y);
    sbn_free(&whole);
    for (int r = 0; r < ranks; r++) sbn_free(&part[r]);
}

/* The graph of a synchronised batch norm: BN_STATS, sync point, BN_APPLY; BN_BWD_STATS writing dgamma
 * and dbeta into the gradient block, sync point, BN_BWD_APPLY; vt_graph_run refuses it whole. */
static void test_sync_bn_graph_structure(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {.reference = 1};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    sbn_net n;
    sbn_build(&n, be, 4, 2);
    /* bn1 [2,4,5,5] and bn2 [2,6]: two statistics and two sums (both inputs need a gradient) */
    assert_int_equal(vt_graph_n_sync_points(n.g), 4);
    static const vt_sync_kind kinds[4] = {VT_SYNC_BN_STATS, VT_SYNC_BN_STATS, VT_SYNC_SUM, VT_SYNC_SUM};
    static const int64_t counts[4] = {2 * 4 * 25, 2 * 4, 2 * 4, 2 * 4 * 25}; /* ranks * this rank's N*H*W */
    int last = -1;
    for (int i = 0; i < 4; i++) {
        const vt_sync_point *sp = vt_graph_sync_point(n.g, i);
        assert_true(sp->after_node > last);
        last = sp->after_node;
        assert_int_equal(sp->kind, kinds[i]);
        const vt_node *k = vt_graph_node(n.g, sp->after_node), *next = vt_graph_node(n.g, sp->after_node + 1);
        assert_int_equal(k->op, kinds[i] == VT_SYNC_BN_STATS ? VT_OP_BN_STATS : VT_OP_BN_BWD_STATS);
        assert_int_equal(next->op, kinds[i] == VT_SYNC_BN_STATS ? VT_OP_BN_APPLY : VT_OP_BN_BWD_APPLY);
        /* t is what the node wrote and what the next one reads, which keeps it alive across the sync */
        assert_ptr_equal(sp->t, k->dst[kinds[i] == VT_SYNC_BN_STATS ? 0 : 2]);
        assert_ptr_equal(sp->t, next->src[kinds[i] == VT_SYNC_BN_STATS ? 3 : 4]);
        assert_int_equal(next->p.bn.count, counts[i]);
        if (kinds[i] == VT_SYNC_SUM) {
            const char *name = i == 2 ? "bn2.weight" : "bn1.weight";
            vt_tensor *gamma = NULL;
            for (int j = 0; j < vt_params_n_params(n.m); j++)
                if (strcmp(vt_params_param_at(n.m, j)->name, name) == 0) gamma = vt_params_param_at(n.m, j);
            assert_non_null(gamma);
            assert_ptr_equal(k->dst[0], vt_params_grad_of(n.m, gamma));
        }
    }
    assert_null(vt_graph_sync_point(n.g, 4));
    for (int i = 0; i < vt_graph_n_nodes(n.g); i++) assert_int_not_equal(vt_graph_node(n.g, i)->op, VT_OP_BATCHNORM);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(n.g, -1, &ctx), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "sync point 0"));
    assert_non_null(strstr(vt_last_error(), "bn1"));
    assert_int_equal(vt_graph_run(n.g, VT_PHASE_FORWARD, &ctx), VT_ERR_INVALID_ARG);
    assert_int_equal(vt_graph_run(n.g, VT_PHASE_BACKWARD, &ctx), VT_ERR_INVALID_ARG);
    const vt_sync_point *sp = vt_graph_sync_point(n.g, 0);
    assert_int_equal(vt_graph_run_range(n.g, 0, sp->after_node + 2, &ctx), VT_ERR_INVALID_ARG);
    assert_int_equal(vt_graph_run_range(n.g, 0, sp->after_node + 1, &ctx), VT_OK);
    assert_int_equal(vt_graph_run_range(n.g, 0, vt_graph_n_nodes(n.g) + 1, &ctx), VT_ERR_INVALID_ARG);
    sbn_free(&n);

    /* frozen and evaluation batch norms keep BATCHNORM, with no sync point */
    for (int training = 0; training < 2; training++) {
        vt_params *m = vt_params_new();
        vt_graph *g = vt_graph_new(m, training);
        vt_graph_set_sync_bn(g, 2);
        vt_tensor *h = vt_graph_tensor(g, "x", VT_F32, 2, (int64_t[]){4, 3});
        assert_non_null(vt_g_batchnorm(g, h, "bn", 0.1f, 1e-5f, training));
        assert_int_equal(vt_graph_node(g, vt_graph_n_nodes(g) - 1)->op, VT_OP_BATCHNORM);
        assert_int_equal(vt_graph_n_sync_points(g), 0);
        vt_graph_free(g);
        vt_params_free(m);
    }
    vt_backend_free(be);
}

/* One rank (the host step leaves the statistics and sums as they are): loss and every gradient of
 * the split graph are those of the same network with BATCHNORM. */
static void test_sync_bn_one_rank(void **state) {
    (void)state;
    vt_backend_opts o[2] = {{.reference = 1}, {0}};
    for (int k = 0; k < 2; k++) {
        vt_backend *be;
        assert_int_equal(vt_backend_init_by_name("cpu", 0, &o[k], &be), VT_OK);
        check_sync_bn_graph(be, 1, 12);
        vt_backend_free(be);
    }
}

/* Two and three ranks in one process, each a graph on its part of the batch, combined on the host:
 * the whole batch's loss, averaged gradients and running statistics. */
static void test_sync_bn_ranks(void **state) {
    (void)state;
    vt_backend_opts o[2] = {{.reference = 1}, {0}};
    for (int k = 0; k < 2; k++) {
        vt_backend *be;
        assert_int_equal(vt_backend_init_by_name("cpu", 0, &o[k], &be), VT_OK);
        check_sync_bn_graph(be, 2, 12);
        check_sync_bn_graph(be, 3, 12);
        vt_backend_free(be);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_reference),
        cmocka_unit_test(test_frozen_backbone),
        cmocka_unit_test(test_optimizer_nodes),
        cmocka_unit_test(test_planner_reuses),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_gelu_not_fused),
        cmocka_unit_test(test_conv_transpose_validation),
        cmocka_unit_test(test_bilinear_upsampling),
        cmocka_unit_test(test_sync_bn_graph_structure),
        cmocka_unit_test(test_sync_bn_one_rank),
        cmocka_unit_test(test_sync_bn_ranks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
