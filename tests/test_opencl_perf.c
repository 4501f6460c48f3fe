/* PERFORMANCE TEST (ctest label perf: run apart from the correctness suite, one at a time, with
 * `ctest -L perf -j1`). OpenCL speed figures, printed, not asserted: SGEMM 1024^3 through MATMUL, and
 * per-op times of an MLP 3072-1024-100 and a small CNN training step at batch 64. Asserts only that
 * the steps learn. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"

#ifdef VT_HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>
#endif

/* Process CPU time (all threads, the driver's included): a load-independent view when the machine
 * is shared, since on a CPU device the work runs in this process. */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static vt_backend *open_opencl(void) {
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (!r || r->device_count() <= 0) return NULL;
    vt_backend *be = NULL;
    if (vt_backend_init_by_name("opencl", -1, NULL, &be) != VT_OK) {
        print_message("opencl init failed: %s\n", vt_last_error());
        return NULL;
    }
    return be;
}

#define NEED_OPENCL(be)                                                     \
    do {                                                                    \
        if (!(be)) {                                                        \
            print_message("SKIPPED: no OpenCL device (or not compiled)\n"); \
            skip();                                                         \
        }                                                                   \
    } while (0)

/* ---- a tiny hand-built network: tensors and a node list ---- */

#define MAX_T 64
#define MAX_N 64

typedef struct net {
    vt_backend *be;
    vt_tensor *t[MAX_T];
    int nt;
    vt_node nodes[MAX_N];
    int nn;
    double time_s[MAX_N], cpu_s[MAX_N];
    vt_rng rng;
} net;

static vt_tensor *tens(net *g, const char *name, vt_dtype dt, int ndim, int64_t a, int64_t b, int64_t c, int64_t d,
                       float scale) {
    int64_t shp[4] = {a, b, c, d};
    vt_tensor *t;
    assert_int_equal(vt_tensor_new(g->be, name, dt, ndim, shp, &t), VT_OK);
    g->t[g->nt++] = t;
    if (scale != 0.0f) {
        int64_t n = vt_tensor_nelem(t);
        float *h = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) h[i] = scale * vt_rng_uniform_range(&g->rng, -1.0f, 1.0f);
        assert_int_equal(vt_tensor_upload(t, h, (size_t)n * 4), VT_OK);
        free(h);
    }
    return t;
}

static vt_node *node(net *g, vt_op op, const char *label) {
    vt_node *n = &g->nodes[g->nn++];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->label, sizeof n->label, "%s", label);
    return n;
}

static void sgd(net *g, vt_tensor *grad, vt_tensor *param, const char *label) {
    vt_node *n = node(g, VT_OP_SGD, label);
    n->p.sgd = (vt_sgd_params){1.0f, 0.0f, 0.0f, 0};
    n->src[0] = grad;
    n->dst[0] = param;
}

static void net_free(net *g) {
    for (int i = 0; i < g->nt; i++) vt_tensor_free(g->t[i]);
}

/* One step; with per_op, a wait after every node so its time can be attributed. */
static double run_step(net *g, const vt_step_ctx *ctx, int per_op) {
    double t0 = now_s();
    for (int i = 0; i < g->nn; i++) {
        double a = per_op ? now_s() : 0, ca = per_op ? cpu_s() : 0;
        vt_status s = vt_backend_compute(g->be, &g->nodes[i], ctx);
        if (s != VT_OK) print_message("%s: %s\n", g->nodes[i].label, vt_last_error());
        assert_int_equal(s, VT_OK);
        if (per_op) {
            assert_int_equal(vt_backend_sync(g->be), VT_OK);
            g->time_s[i] += now_s() - a;
            g->cpu_s[i] += cpu_s() - ca;
        }
    }
    assert_int_equal(vt_backend_sync(g->be), VT_OK);
    return now_s() - t0;
}

static float read_loss(vt_tensor *loss) {
    float v;
    assert_int_equal(vt_tensor_download(loss, &v, sizeof v), VT_OK);
    return v;
}

/* Runs warm-up steps, then timed steps (whole-step and per-op), prints the table, and checks the
 * loss of the fixed batch went down. */
static void bench_net(net *g, vt_tensor *loss, const char *title, double gflops_ref) {
    vt_step_ctx ctx = {0};
    ctx.lr = 0.01f;
    ctx.seed = 1;
    run_step(g, &ctx, 0); /* first use builds programs and CLBlast kernels: not timed */
    float first = read_loss(loss);
    run_step(g, &ctx, 0);
    const int reps = 5;
    double best = 1e30, c0 = cpu_s();
    for (int r = 0; r < reps; r++) {
        ctx.step++;
        double t = run_step(g, &ctx, 0);
        if (t < best) best = t;
    }
    double cpu = (cpu_s() - c0) / reps;
    memset(g->time_s, 0, sizeof g->time_s);
    memset(g->cpu_s, 0, sizeof g->cpu_s);
    for (int r = 0; r < reps; r++) run_step(g, &ctx, 1);
    float last = read_loss(loss);
    double gemm_flops = 0, total_op = 0;
    print_message("%s: per-op times (mean of %d, each op waited for)\n", title, reps);
    for (int i = 0; i < g->nn; i++) {
        const vt_node *n = &g->nodes[i];
        double ms = 1e3 * g->time_s[i] / reps, f = vt_node_flops(n);
        int gemm = n->op == VT_OP_MATMUL || n->op == VT_OP_CONV2D || n->op == VT_OP_CONV2D_BWD_DATA ||
                   n->op == VT_OP_CONV2D_BWD_WEIGHT;
        if (gemm) gemm_flops += f;
        total_op += ms;
        print_message("  %-22s %-18s %8.3f ms %8.2f GFLOP/s %8.3f CPU-ms\n", n->label, vt_op_name(n->op), ms,
                      ms > 0 ? f / ms * 1e-6 : 0, 1e3 * g->cpu_s[i] / reps);
    }
    double bound = 1.5 * gemm_flops / (gflops_ref * 1e9);
    print_message("%s: step %.2f ms (best of %d, no waits between ops; %.2f CPU-s per step), sum of per-op %.2f ms; "
                  "GEMM work %.1f MFLOP; 1.5 x GEMM FLOPs / %.1f GFLOP/s = %.2f ms (%s); loss %.4f -> %.4f\n",
                  title, 1e3 * best, reps, cpu, total_op, gemm_flops * 1e-6, gflops_ref, 1e3 * bound,
                  best <= bound ? "within" : "OVER", (double)first, (double)last);
    assert_true(isfinite(last));
    assert_true(last < first);
}

static double sgemm_gflops = 0;

/* The same SGEMM as a plain CLBlast call on its own context: the baseline MATMUL should match. */
static double plain_clblast_gflops(void) {
#ifdef VT_HAVE_OPENCL
    cl_platform_id plat;
    cl_device_id dev;
    if (clGetPlatformIDs(1, &plat, NULL) != CL_SUCCESS) return 0;
    if (clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, NULL) != CL_SUCCESS) return 0;
    cl_int err;
    cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
    cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
    const size_t n = 1024, bytes = n * n * 4;
    cl_mem a = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_mem c = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    float zero = 0.0f;
    clEnqueueFillBuffer(q, a, &zero, 4, 0, bytes, 0, NULL, NULL);
    clEnqueueFillBuffer(q, b, &zero, 4, 0, bytes, 0, NULL, NULL);
    double t = 0;
    const int reps = 10;
    for (int r = -1; r < reps; r++) {
        double t0 = now_s();
        CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, n, n, n, 1.0f, a, 0, n, b, 0, n,
                     0.0f, c, 0, n, &q, NULL);
        clFinish(q);
        if (r >= 0) t += now_s() - t0; /* r = -1: kernel build, not timed */
    }
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clReleaseMemObject(c);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return 2.0 * (double)n * n * n / (t / reps) * 1e-9;
#else
    return 0;
#endif
}

static void test_sgemm_1024(void **state) {
    (void)state;
    vt_backend *be = open_opencl();
    NEED_OPENCL(be);
    net g = {.be = be};
    vt_rng_init(&g.rng, 1, 1);
    vt_tensor *A = tens(&g, "A", VT_F32, 2, 1024, 1024, 1, 1, 1.0f);
    vt_tensor *B = tens(&g, "B", VT_F32, 2, 1024, 1024, 1, 1, 1.0f);
    vt_tensor *C = tens(&g, "C", VT_F32, 2, 1024, 1024, 1, 1, 0.0f);
    vt_node *n = node(&g, VT_OP_MATMUL, "sgemm");
    n->p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = A, n->src[1] = B, n->dst[0] = C;
    vt_step_ctx ctx = {0};
    double t0 = now_s();
    assert_int_equal(vt_backend_compute(be, n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    double first = now_s() - t0;
    const int reps = 10;
    t0 = now_s();
    double c0 = cpu_s();
    for (int r = 0; r < reps; r++) assert_int_equal(vt_backend_compute(be, n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    double t = (now_s() - t0) / reps, cpu = (cpu_s() - c0) / reps;
    sgemm_gflops = 2.0 * 1024.0 * 1024.0 * 1024.0 / t * 1e-9;
    print_message(
        "SGEMM 1024^3 via MATMUL: first call %.1f ms (kernel build), then %.2f ms = %.1f GFLOP/s (mean of %d; "
        "%.3f CPU-s each); plain CLBlast call: %.1f GFLOP/s\n",
        1e3 * first, 1e3 * t, sgemm_gflops, reps, cpu, plain_clblast_gflops());
    /* Spot-check a few entries against host dot products. */
    float *ha = malloc(1024 * 1024 * 4), *hb = malloc(1024 * 1024 * 4), *hc = malloc(1024 * 1024 * 4);
    assert_int_equal(vt_tensor_download(A, ha, 1024 * 1024 * 4), VT_OK);
    assert_int_equal(vt_tensor_download(B, hb, 1024 * 1024 * 4), VT_OK);
    assert_int_equal(vt_tensor_download(C, hc, 1024 * 1024 * 4), VT_OK);
    for (int k = 0; k < 16; k++) {
        int i = (k * 379) % 1024, j = (k * 613 + 5) % 1024;
        double s = 0;
        for (int q = 0; q < 1024; q++) s += (double)ha[i * 1024 + q] * hb[q * 1024 + j];
        assert_true(fabs(s - hc[i * 1024 + j]) < 1e-3 * (1 + fabs(s)));
    }
    free(ha);
    free(hb);
    free(hc);
    net_free(&g);
    vt_backend_free(be);
}

static void test_mlp_step(void **state) {
    (void)state;
    vt_backend *be = open_opencl();
    NEED_OPENCL(be);
    net g = {.be = be};
    vt_rng_init(&g.rng, 2, 1);
    const int B = 64, I = 3072, H = 1024, O = 100;
    vt_tensor *x = tens(&g, "x", VT_F32, 2, B, I, 1, 1, 1.0f);
    vt_tensor *y = tens(&g, "y", VT_I32, 1, B, 1, 1, 1, 0.0f);
    int32_t lab[64];
    for (int i = 0; i < B; i++) lab[i] = (int32_t)vt_rng_below(&g.rng, (uint32_t)O);
    assert_int_equal(vt_tensor_upload(y, lab, sizeof lab), VT_OK);
    vt_tensor *w1 = tens(&g, "w1", VT_F32, 2, H, I, 1, 1, 0.02f), *b1 = tens(&g, "b1", VT_F32, 1, H, 1, 1, 1, 0.0f);
    vt_tensor *w2 = tens(&g, "w2", VT_F32, 2, O, H, 1, 1, 0.03f), *b2 = tens(&g, "b2", VT_F32, 1, O, 1, 1, 1, 0.0f);
    vt_tensor *h = tens(&g, "h", VT_F32, 2, B, H, 1, 1, 0), *lo = tens(&g, "logits", VT_F32, 2, B, O, 1, 1, 0);
    vt_tensor *loss = tens(&g, "loss", VT_F32, 1, 1, 1, 1, 1, 0);
    vt_tensor *dlo = tens(&g, "dlogits", VT_F32, 2, B, O, 1, 1, 0), *dh = tens(&g, "dh", VT_F32, 2, B, H, 1, 1, 0);
    vt_tensor *dw1 = tens(&g, "dw1", VT_F32, 2, H, I, 1, 1, 0), *db1 = tens(&g, "db1", VT_F32, 1, H, 1, 1, 1, 0);
    vt_tensor *dw2 = tens(&g, "dw2", VT_F32, 2, O, H, 1, 1, 0), *db2 = tens(&g, "db2", VT_F32, 1, O, 1, 1, 1, 0);
    vt_node *n = node(&g, VT_OP_MATMUL, "fc1+relu");
    n->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0};
    n->src[0] = x, n->src[1] = w1, n->src[2] = b1, n->dst[0] = h;
    n = node(&g, VT_OP_MATMUL, "fc2");
    n->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = h, n->src[1] = w2, n->src[2] = b2, n->dst[0] = lo;
    n = node(&g, VT_OP_SOFTMAX_CE, "loss");
    n->p.ce = (vt_softmax_ce_params){0.0f, 1.0f / B, 0};
    n->src[0] = lo, n->src[1] = y, n->dst[0] = loss;
    n = node(&g, VT_OP_SOFTMAX_CE_BWD, "loss:bwd");
    n->p.ce = (vt_softmax_ce_params){0.0f, 1.0f / B, 0};
    n->src[0] = lo, n->src[1] = y, n->dst[0] = dlo;
    n = node(&g, VT_OP_MATMUL, "fc2:dw");
    n->p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = dlo, n->src[1] = h, n->dst[0] = dw2;
    n = node(&g, VT_OP_BIAS_GRAD, "fc2:db");
    n->src[0] = dlo, n->dst[0] = db2;
    n = node(&g, VT_OP_MATMUL, "fc2:dx");
    n->p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = dlo, n->src[1] = w2, n->dst[0] = dh;
    n = node(&g, VT_OP_ACT_BWD, "relu:bwd");
    n->p.act.kind = VT_ACT_RELU;
    n->src[0] = dh, n->src[1] = h, n->dst[0] = dh;
    n = node(&g, VT_OP_MATMUL, "fc1:dw");
    n->p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = dh, n->src[1] = x, n->dst[0] = dw1;
    n = node(&g, VT_OP_BIAS_GRAD, "fc1:db");
    n->src[0] = dh, n->dst[0] = db1;
    sgd(&g, dw1, w1, "sgd w1");
    sgd(&g, db1, b1, "sgd b1");
    sgd(&g, dw2, w2, "sgd w2");
    sgd(&g, db2, b2, "sgd b2");
    bench_net(&g, loss, "MLP 3072-1024-100 b64", sgemm_gflops > 0 ? sgemm_gflops : 30.0);
    net_free(&g);
    vt_backend_free(be);
}

static void test_cnn_step(void **state) {
    (void)state;
    vt_backend *be = open_opencl();
    NEED_OPENCL(be);
    net g = {.be = be};
    vt_rng_init(&g.rng, 3, 1);
    const int B = 64, K = 16, O = 100;
    vt_tensor *x = tens(&g, "x", VT_F32, 4, B, 3, 32, 32, 1.0f);
    vt_tensor *y = tens(&g, "y", VT_I32, 1, B, 1, 1, 1, 0.0f);
    int32_t lab[64];
    for (int i = 0; i < B; i++) lab[i] = (int32_t)vt_rng_below(&g.rng, (uint32_t)O);
    assert_int_equal(vt_tensor_upload(y, lab, sizeof lab), VT_OK);
    vt_tensor *w1 = tens(&g, "w1", VT_F32, 4, K, 3, 5, 5, 0.1f), *b1 = tens(&g, "b1", VT_F32, 1, K, 1, 1, 1, 0);
    vt_tensor *w2 = tens(&g, "w2", VT_F32, 4, K, K, 5, 5, 0.05f), *b2 = tens(&g, "b2", VT_F32, 1, K, 1, 1, 1, 0);
    vt_tensor *w3 = tens(&g, "w3", VT_F32, 2, O, K * 8 * 8, 1, 1, 0.03f);
    vt_tensor *b3 = tens(&g, "b3", VT_F32, 1, O, 1, 1, 1, 0);
    vt_tensor *c1 = tens(&g, "c1", VT_F32, 4, B, K, 32, 32, 0), *p1 = tens(&g, "p1", VT_F32, 4, B, K, 16, 16, 0);
    vt_tensor *c2 = tens(&g, "c2", VT_F32, 4, B, K, 16, 16, 0), *p2 = tens(&g, "p2", VT_F32, 4, B, K, 8, 8, 0);
    vt_tensor *lo = tens(&g, "logits", VT_F32, 2, B, O, 1, 1, 0), *loss = tens(&g, "loss", VT_F32, 1, 1, 1, 1, 1, 0);
    vt_tensor *dlo = tens(&g, "dlogits", VT_F32, 2, B, O, 1, 1, 0);
    vt_tensor *dp2 = tens(&g, "dp2", VT_F32, 4, B, K, 8, 8, 0), *dc2 = tens(&g, "dc2", VT_F32, 4, B, K, 16, 16, 0);
    vt_tensor *dp1 = tens(&g, "dp1", VT_F32, 4, B, K, 16, 16, 0), *dc1 = tens(&g, "dc1", VT_F32, 4, B, K, 32, 32, 0);
    vt_tensor *dw1 = tens(&g, "dw1", VT_F32, 4, K, 3, 5, 5, 0), *db1 = tens(&g, "db1", VT_F32, 1, K, 1, 1, 1, 0);
    vt_tensor *dw2 = tens(&g, "dw2", VT_F32, 4, K, K, 5, 5, 0), *db2 = tens(&g, "db2", VT_F32, 1, K, 1, 1, 1, 0);
    vt_tensor *dw3 = tens(&g, "dw3", VT_F32, 2, O, K * 64, 1, 1, 0), *db3 = tens(&g, "db3", VT_F32, 1, O, 1, 1, 1, 0);
    /* fc sees p2 as [B, K*8*8]: a view sharing p2's bytes. */
    vt_tensor p2f = *p2, dp2f = *dp2;
    p2f.ndim = dp2f.ndim = 2;
    p2f.shape[1] = dp2f.shape[1] = K * 64;
    p2f.shape[2] = p2f.shape[3] = dp2f.shape[2] = dp2f.shape[3] = 1;
    vt_conv2d_params cp = {1, 1, 2, 2, VT_ACT_RELU, 0};
    vt_pool2d_params pp = {VT_POOL_MAX, 2, 2, 2, 2, 0, 0};
    vt_node *n = node(&g, VT_OP_CONV2D, "conv1+relu");
    n->p.conv2d = cp, n->src[0] = x, n->src[1] = w1, n->src[2] = b1, n->dst[0] = c1;
    n = node(&g, VT_OP_POOL2D, "pool1");
    n->p.pool2d = pp, n->src[0] = c1, n->dst[0] = p1;
    n = node(&g, VT_OP_CONV2D, "conv2+relu");
    n->p.conv2d = cp, n->src[0] = p1, n->src[1] = w2, n->src[2] = b2, n->dst[0] = c2;
    n = node(&g, VT_OP_POOL2D, "pool2");
    n->p.pool2d = pp, n->src[0] = c2, n->dst[0] = p2;
    n = node(&g, VT_OP_MATMUL, "fc");
    n->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = &p2f, n->src[1] = w3, n->src[2] = b3, n->dst[0] = lo;
    n = node(&g, VT_OP_SOFTMAX_CE, "loss");
    n->p.ce = (vt_softmax_ce_params){0.0f, 1.0f / B, 0};
    n->src[0] = lo, n->src[1] = y, n->dst[0] = loss;
    n = node(&g, VT_OP_SOFTMAX_CE_BWD, "loss:bwd");
    n->p.ce = (vt_softmax_ce_params){0.0f, 1.0f / B, 0};
    n->src[0] = lo, n->src[1] = y, n->dst[0] = dlo;
    n = node(&g, VT_OP_MATMUL, "fc:dw");
    n->p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = dlo, n->src[1] = &p2f, n->dst[0] = dw3;
    n = node(&g, VT_OP_BIAS_GRAD, "fc:db");
    n->src[0] = dlo, n->dst[0] = db3;
    n = node(&g, VT_OP_MATMUL, "fc:dx");
    n->p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = dlo, n->src[1] = w3, n->dst[0] = &dp2f;
    n = node(&g, VT_OP_POOL2D_BWD, "pool2:bwd");
    n->p.pool2d = pp, n->src[0] = dp2, n->src[1] = c2, n->dst[0] = dc2;
    n = node(&g, VT_OP_ACT_BWD, "relu2:bwd");
    n->p.act.kind = VT_ACT_RELU, n->src[0] = dc2, n->src[1] = c2, n->dst[0] = dc2;
    n = node(&g, VT_OP_CONV2D_BWD_WEIGHT, "conv2:dw");
    n->p.conv2d = cp, n->p.conv2d.act = VT_ACT_NONE, n->src[0] = dc2, n->src[1] = p1, n->dst[0] = dw2;
    n = node(&g, VT_OP_BIAS_GRAD, "conv2:db");
    n->src[0] = dc2, n->dst[0] = db2;
    n = node(&g, VT_OP_CONV2D_BWD_DATA, "conv2:dx");
    n->p.conv2d = cp, n->p.conv2d.act = VT_ACT_NONE, n->src[0] = dc2, n->src[1] = w2, n->dst[0] = dp1;
    n = node(&g, VT_OP_POOL2D_BWD, "pool1:bwd");
    n->p.pool2d = pp, n->src[0] = dp1, n->src[1] = c1, n->dst[0] = dc1;
    n = node(&g, VT_OP_ACT_BWD, "relu1:bwd");
    n->p.act.kind = VT_ACT_RELU, n->src[0] = dc1, n->src[1] = c1, n->dst[0] = dc1;
    n = node(&g, VT_OP_CONV2D_BWD_WEIGHT, "conv1:dw");
    n->p.conv2d = cp, n->p.conv2d.act = VT_ACT_NONE, n->src[0] = dc1, n->src[1] = x, n->dst[0] = dw1;
    n = node(&g, VT_OP_BIAS_GRAD, "conv1:db");
    n->src[0] = dc1, n->dst[0] = db1;
    sgd(&g, dw1, w1, "sgd w1");
    sgd(&g, db1, b1, "sgd b1");
    sgd(&g, dw2, w2, "sgd w2");
    sgd(&g, db2, b2, "sgd b2");
    sgd(&g, dw3, w3, "sgd w3");
    sgd(&g, db3, b3, "sgd b3");
    bench_net(&g, loss, "CNN conv16@5x5-pool-conv16@5x5-pool-fc b64", sgemm_gflops > 0 ? sgemm_gflops : 30.0);
    net_free(&g);
    vt_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_1024),
        cmocka_unit_test(test_mlp_step),
        cmocka_unit_test(test_cnn_step),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* Without a device every test skipped: tell ctest (SKIP_RETURN_CODE 77) rather than pass. */
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (failed == 0 && (!r || r->device_count() <= 0)) return 77;
    return failed;
}
