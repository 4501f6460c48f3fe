/* PERFORMANCE TEST (ctest label perf: run apart from the correctness suite, one at a time, `ctest -L perf
 * -j1`; its floors assume a machine not busy with other tests). Vulkan backend figures: GEMM GFLOP/s at
 * 1024^3 (and the MLP / conv shapes), the cost of one dispatch in a recorded graph, and per-node step
 * times; loose floors only. VT_VULKAN_BENCH=full for everything, VT_BENCH_COMPARE_OPENCL=1 to profile
 * the same steps on OpenCL. Kernel paths as for any program: VT_VULKAN_OPTIONS. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/graph.h"
#include "vt/models.h"

static int g_full;                 /* VT_VULKAN_BENCH=full: every shape and more repetitions (minutes, not for ctest) */
static vt_backend *g_vk, *g_other; /* g_other: OpenCL when compiled in, for side-by-side figures */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (lavapipe's worker threads included): on a loaded machine the
 * wall clock overstates the cost, CPU time / cores does not. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double g_cpu; /* CPU seconds per replay of the last time_graph */

static vt_tensor *newt(int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    vt_tensor *t;
    assert_int_equal(vt_tensor_new(g_vk, "b", VT_F32, nd, s, &t), VT_OK);
    float *h = malloc(vt_tensor_nbytes(t));
    assert_non_null(h);
    for (int64_t i = 0; i < vt_tensor_nelem(t); i++) h[i] = (float)((i * 7919) % 13) * 0.01f - 0.06f;
    assert_int_equal(vt_tensor_upload(t, h, vt_tensor_nbytes(t)), VT_OK);
    free(h);
    return t;
}

/* Median-free simple timing: one warm-up replay (pipelines, recording), then reps replays. */
static double time_graph(vt_node *nodes, int n, int reps) {
    vt_graph_exec exec = {nodes, n, NULL, NULL};
    vt_step_ctx ctx = {0, 1u, 0.01f, 0};
    assert_int_equal(vt_backend_graph_compute(g_vk, &exec, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    double t0 = now_s(), c0 = cpu_s();
    for (int r = 0; r < reps; r++) {
        ctx.step = (uint64_t)r + 1;
        assert_int_equal(vt_backend_graph_compute(g_vk, &exec, &ctx), VT_OK);
        assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    }
    double dt = (now_s() - t0) / reps;
    g_cpu = (cpu_s() - c0) / reps;
    vt_graph_exec_reset(g_vk, &exec);
    return dt;
}

static double gemm_gflops(int64_t M, int64_t K, int64_t N, int ta, int tb, int reps) {
    vt_tensor *a = ta ? newt(2, K, M, 1, 1) : newt(2, M, K, 1, 1);
    vt_tensor *b = tb ? newt(2, N, K, 1, 1) : newt(2, K, N, 1, 1);
    vt_tensor *c = newt(2, M, N, 1, 1);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_MATMUL;
    n.p.matmul = (vt_matmul_params){ta, tb, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n.src[0] = a;
    n.src[1] = b;
    n.dst[0] = c;
    double dt = time_graph(&n, 1, reps);
    double gf = 2.0 * (double)M * (double)N * (double)K / dt * 1e-9;
    print_message(
        "  gemm %lldx%lldx%lld ta%d tb%d: %.2f ms, %.1f GFLOP/s (%.2f CPU-s per replay, %.1f GFLOP per CPU-s)\n",
        (long long)M, (long long)K, (long long)N, ta, tb, dt * 1e3, gf, g_cpu,
        2.0 * (double)M * (double)N * (double)K / g_cpu * 1e-9);
    vt_tensor_free(a);
    vt_tensor_free(b);
    vt_tensor_free(c);
    return gf;
}

static void test_gemm(void **state) {
    (void)state;
    double gf = gemm_gflops(1024, 1024, 1024, 0, 1, g_full ? 5 : 2);
    if (!g_full) {
        assert_true(gf > 0.5);
        return;
    }
    gemm_gflops(1024, 1024, 1024, 0, 0, 3);
    gemm_gflops(1024, 1024, 1024, 1, 0, 3);
    gemm_gflops(64, 3072, 1024, 0, 1, 10); /* MLP layer 1 forward */
    gemm_gflops(1024, 64, 3072, 1, 0, 10); /* its weight gradient */
    gemm_gflops(64, 1024, 3072, 0, 0, 10); /* its data gradient */
    assert_true(gf > 0.5);
}

static void conv_case(const char *what, vt_op op, int N, int C, int H, int K, int R, int pad) {
    int P = H + 2 * pad - R + 1;
    vt_tensor *x = newt(4, N, C, H, H), *w = newt(4, K, C, R, R), *y = newt(4, N, K, P, P);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.p.conv2d = (vt_conv2d_params){1, 1, pad, pad, VT_ACT_NONE, 0.0f};
    if (op == VT_OP_CONV2D) n.src[0] = x, n.src[1] = w, n.dst[0] = y;
    else if (op == VT_OP_CONV2D_BWD_DATA) n.src[0] = y, n.src[1] = w, n.dst[0] = x;
    else n.src[0] = y, n.src[1] = x, n.dst[0] = w;
    double dt = time_graph(&n, 1, 5);
    print_message("  %s: %.2f ms, %.1f GFLOP/s (%.1f GFLOP per CPU-s)\n", what, dt * 1e3, vt_node_flops(&n) / dt * 1e-9,
                  vt_node_flops(&n) / g_cpu * 1e-9);
    vt_tensor_free(x);
    vt_tensor_free(w);
    vt_tensor_free(y);
}

static void test_conv(void **state) {
    (void)state;
    conv_case("conv 3->16 5x5 32x32 b64 fwd", VT_OP_CONV2D, 64, 3, 32, 16, 5, 2);
    if (!g_full) return;
    conv_case("conv 3->16 5x5 32x32 b64 bwd data", VT_OP_CONV2D_BWD_DATA, 64, 3, 32, 16, 5, 2);
    conv_case("conv 3->16 5x5 32x32 b64 bwd weight", VT_OP_CONV2D_BWD_WEIGHT, 64, 3, 32, 16, 5, 2);
    conv_case("conv 16->32 5x5 16x16 b64 fwd", VT_OP_CONV2D, 64, 16, 16, 32, 5, 2);
    conv_case("conv 16->32 5x5 16x16 b64 bwd data", VT_OP_CONV2D_BWD_DATA, 64, 16, 16, 32, 5, 2);
    conv_case("conv 16->32 5x5 16x16 b64 bwd weight", VT_OP_CONV2D_BWD_WEIGHT, 64, 16, 16, 32, 5, 2);
}

/* Cost of one more dispatch: a recorded graph of many tiny independent FILLs vs one of a single FILL. */
static void test_dispatch_overhead(void **state) {
    (void)state;
    enum { NT = 200 };
    vt_tensor *t[NT];
    vt_node nodes[NT];
    memset(nodes, 0, sizeof nodes);
    for (int i = 0; i < NT; i++) {
        t[i] = newt(1, 16, 1, 1, 1);
        nodes[i].op = VT_OP_FILL;
        nodes[i].p.fill.value = (float)i;
        nodes[i].dst[0] = t[i];
    }
    double one = time_graph(nodes, 1, g_full ? 20 : 5);
    double many = time_graph(nodes, NT, g_full ? 20 : 3);
    double per = (many - one) / (NT - 1);
    print_message("  submit+wait of a 1-dispatch graph: %.1f us; per extra dispatch: %.1f us\n", one * 1e6, per * 1e6);
    /* chained: every FILL then ADD depends on the previous one, so every dispatch needs a barrier */
    vt_node chain[NT];
    memset(chain, 0, sizeof chain);
    for (int i = 0; i < NT; i++) {
        chain[i].op = VT_OP_ADD;
        chain[i].src[0] = t[0];
        chain[i].src[1] = t[1];
        chain[i].dst[0] = t[0];
    }
    double dep = time_graph(chain, NT, g_full ? 10 : 3);
    print_message("  per dependent dispatch (with a barrier): %.1f us\n", (dep - one) / (NT - 1) * 1e6);
    for (int i = 0; i < NT; i++) vt_tensor_free(t[i]);
    assert_true(per < 1e-2);
}

/* Builds problem `name` at batch B on be (synthetic input, no data pipeline) and times every node on
 * its own (recorded as a one-node graph, replayed) plus the whole step; prints a table. */
static void profile_problem(vt_backend *be, const char *name, int B) {
    const vt_problem *pr = vt_problem_find(name);
    assert_non_null(pr);
    vt_model_cfg cfg;
    vt_model_cfg_default(pr, 100, 3, 32, 32, &cfg);
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_tensor *x = vt_graph_tensor(g, "x", VT_F32, 4, (int64_t[]){B, 3, 32, 32});
    vt_tensor *y = vt_graph_tensor(g, "y", VT_I32, 1, (int64_t[]){B});
    vt_tensor *logits = vt_model_build(g, &cfg, x);
    vt_tensor *loss = vt_g_softmax_ce(g, logits, y, 0.0f, NULL);
    assert_int_equal(vt_graph_backward(g, loss, 0), VT_OK);
    vt_optim_cfg oc = {.kind = strcmp(pr->optimizer, "sgd") == 0 ? VT_OPTIM_SGD : VT_OPTIM_ADAM,
                       .momentum = pr->momentum,
                       .beta1 = 0.9f,
                       .beta2 = 0.999f,
                       .eps = 1e-8f,
                       .group_lr_mult = {1.0f, 1.0f}};
    assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
    assert_int_equal(vt_params_alloc_optimizer(m, oc.kind == VT_OPTIM_SGD ? 1 : 2), VT_OK);
    assert_int_equal(vt_graph_optimizer(g, &oc, 0), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    int nn = vt_graph_n_nodes(g);
    vt_node *nodes = calloc((size_t)nn, sizeof *nodes);
    assert_non_null(nodes);
    for (int i = 0; i < nn; i++) nodes[i] = *vt_graph_node(g, i);
    vt_backend *saved = g_vk;
    g_vk = be; /* time_graph runs on g_vk */
    print_message("  %s batch %d on %s (%s):\n", name, B, be->info.backend, be->info.name);
    double sum = 0;
    for (int i = 0; i < nn; i++) {
        uint64_t d0 = be->counters.dispatches;
        double dt = time_graph(&nodes[i], 1, 3);
        sum += dt;
        print_message("    %-18s %-28.28s %8.2f ms  %6.2f CPU-ms  %llu disp\n", vt_op_name(nodes[i].op), nodes[i].label,
                      dt * 1e3, g_cpu * 1e3, (unsigned long long)((be->counters.dispatches - d0) / 4));
    }
    vt_backend_counters c0 = be->counters;
    double step = time_graph(nodes, nn, 5);
    print_message(
        "    whole step: %.2f ms (%.2f CPU-ms), sum of nodes alone %.2f ms, %llu dispatches, %llu submits per step\n",
        step * 1e3, g_cpu * 1e3, sum * 1e3, (unsigned long long)((be->counters.dispatches - c0.dispatches) / 6),
        (unsigned long long)((be->counters.submits - c0.submits) / 6));
    g_vk = saved;
    free(nodes);
    vt_graph_free(g);
    vt_params_free(m);
}

static void test_steps(void **state) {
    (void)state;
    if (!g_full) {
        profile_problem(g_vk, "cnn-pool", 16);
        return;
    }
    profile_problem(g_vk, "mlp", 64);
    profile_problem(g_vk, "cnn-pool", 64);
    if (g_other) {
        profile_problem(g_other, "mlp", 64);
        profile_problem(g_other, "cnn-pool", 64);
    }
}

int main(void) {
    const vt_backend_reg *r = vt_backend_reg_find("vulkan");
    if (!r || r->device_count() <= 0) {
        printf("SKIPPED: no Vulkan device (or the backend is not compiled in)\n");
        return 77;
    }
    const char *mode = getenv("VT_VULKAN_BENCH");
    g_full = mode && strcmp(mode, "full") == 0;
    vt_backend_opts o = {0};
    if (vt_backend_init_by_name("vulkan", -1, &o, &g_vk) != VT_OK) {
        printf("vulkan init failed: %s\n", vt_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_dispatch_overhead),
        cmocka_unit_test(test_steps),
    };
    if (getenv("VT_BENCH_COMPARE_OPENCL") && vt_backend_reg_find("opencl") &&
        vt_backend_init_by_name("opencl", -1, &o, &g_other) != VT_OK)
        g_other = NULL;
    int rc = cmocka_run_group_tests_name("vulkan_bench", tests, NULL, NULL);
    vt_backend_free(g_vk);
    vt_backend_free(g_other);
    return rc;
}
