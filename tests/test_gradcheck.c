/* Gradient checks of every backward op on the CPU reference: the analytic gradient of
 * loss = sum(out * R) against central finite differences of the forward op, in f32. */
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

static vt_backend *g_ref;
static vt_rng g_rng;

#define MAX_T 256
static vt_tensor *g_t[MAX_T];
static int g_nt;

static int setup(void **state) {
    (void)state;
    vt_backend_opts o = {0};
    o.reference = 1;
    return vt_backend_reg_cpu()->init(0, &o, &g_ref) == VT_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    vt_backend_free(g_ref);
    return 0;
}

/* Frees every tensor of the test that just ran. */
static int free_tensors(void **state) {
    (void)state;
    for (int i = 0; i < g_nt; i++) vt_tensor_free(g_t[i]);
    g_nt = 0;
    return 0;
}

static vt_tensor *tnew(vt_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const void *data) {
    int64_t shape[4] = {d0, d1, d2, d3};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(g_ref, "t", dt, ndim, shape, &t), VT_OK);
    assert_true(g_nt < MAX_T);
    g_t[g_nt++] = t;
    if (data) assert_int_equal(vt_tensor_upload(t, data, vt_tensor_nbytes(t)), VT_OK);
    return t;
}

static float *host(int64_t n) {
    float *p = calloc((size_t)n, sizeof *p);
    assert_non_null(p);
    return p;
}

static float *uniform(int64_t n, float lo, float hi) {
    float *p = host(n);
    for (int64_t i = 0; i < n; i++) p[i] = vt_rng_uniform_range(&g_rng, lo, hi);
    return p;
}

/* Uniform values pushed at least `gap` away from zero (no kink of relu / leaky relu / selu nearby). */
static float *away_from_zero(int64_t n, float gap) {
    float *p = uniform(n, -2, 2);
    for (int64_t i = 0; i < n; i++) p[i] = p[i] < 0 ? p[i] - gap : p[i] + gap;
    return p;
}

/* Distinct values 0.05 apart in random order (max pooling keeps its argmax under +-eps). */
static float *distinct(int64_t n) {
    int32_t *perm = malloc((size_t)n * sizeof *perm);
    assert_non_null(perm);
    vt_rng_permutation(&g_rng, perm, n);
    float *p = host(n);
    for (int64_t i = 0; i < n; i++) p[i] = -1.0f + 0.05f * (float)perm[i];
    free(perm);
    return p;
}

static const vt_step_ctx g_ctx = {3, 1234, 0.1f, 0};

/* Computes a node; an op the reference lacks skips the test (printed, never passed). */
static void run(vt_node *n) {
    vt_status st = vt_backend_compute(g_ref, n, &g_ctx);
    if (st == VT_ERR_UNSUPPORTED) {
        printf("SKIPPED: the CPU reference has no %s: %s\n", vt_op_name(n->op), vt_last_error());
        skip();
    }
    if (st != VT_OK) printf("%s\n", vt_last_error());
    assert_int_equal(st, VT_OK);
    assert_int_equal(vt_backend_sync(g_ref), VT_OK);
}

static void get(const vt_tensor *t, float *out) {
    assert_int_equal(vt_tensor_download(t, out, vt_tensor_nbytes(t)), VT_OK);
}

/* A node run before every forward of the finite differences (BN_STATS before BN_APPLY), or NULL. */
static vt_node *g_before;

static double weighted_loss(vt_node *fwd, const vt_tensor *out, const float *R) {
    if (g_before) run(g_before);
    run(fwd);
    int64_t n = vt_tensor_nelem(out);
    float *y = host(n);
    get(out, y);
    double L = 0;
    for (int64_t i = 0; i < n; i++) L += (double)y[i] * (double)(R ? R[i] : 1.0f);
    free(y);
    return L;
}

/* Central differences of loss = sum(out * R) w.r.t. up to 64 elements of `param` (whose host copy
 * is `p`), compared with `analytic`. The tolerance covers f32 rounding of the loss over 2*eps. */
static double grad_error(const char *what, vt_node *fwd, const vt_tensor *out, const float *R, vt_tensor *param,
                         float *p, const float *analytic, float eps, int quiet) {
    int64_t n = vt_tensor_nelem(param);
    size_t bytes = vt_tensor_nbytes(param);
    int checks = n < 64 ? (int)n : 64;
    double worst = 0;
    for (int c = 0; c < checks; c++) {
        int64_t i = n <= 64 ? c : (int64_t)vt_rng_below(&g_rng, (uint32_t)n);
        float keep = p[i];
        p[i] = keep + eps;
        assert_int_equal(vt_tensor_upload(param, p, bytes), VT_OK);
        double lp = weighted_loss(fwd, out, R);
        p[i] = keep - eps;
        assert_int_equal(vt_tensor_upload(param, p, bytes), VT_OK);
        double lm = weighted_loss(fwd, out, R);
        p[i] = keep;
        assert_int_equal(vt_tensor_upload(param, p, bytes), VT_OK);
        /* the perturbed values are rounded to f32: divide by the step actually taken */
        double num = (lp - lm) / ((double)(keep + eps) - (double)(keep - eps));
        double err = fabs(num - (double)analytic[i]);
        double lim = 5e-4 + 2e-3 * fabs((double)analytic[i]);
        if (err / lim > worst) worst = err / lim;
        if (err > lim && !quiet)
            printf("%s[%lld]: numeric %.7g, analytic %.7g (error %.3g, limit %.3g)\n", what, (long long)i, num,
                   (double)analytic[i], err, lim);
    }
    printf("%-34s %3d elements checked, worst error %.3f of the limit\n", what, checks, worst);
    run(fwd); /* leave the forward outputs as they were */
    return worst;
}

static void check_grad(const char *what, vt_node *fwd, const vt_tensor *out, const float *R, vt_tensor *param, float *p,
                       const float *analytic, float eps) {
    assert_true(grad_error(what, fwd, out, R, param, p, analytic, eps, 0) <= 1.0);
}

static vt_node node(vt_op op) {
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    return n;
}

/* ---- MATMUL-derived linear layer grads and BIAS_GRAD ---- */

static void test_linear(void **state) {
    (void)state;
    const int64_t N = 5, I = 7, O = 3;
    float *x = uniform(N * I, -1, 1), *w = uniform(O * I, -1, 1), *b = uniform(O, -1, 1), *R = uniform(N * O, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 2, N, I, 1, 1, x), *tw = tnew(VT_F32, 2, O, I, 1, 1, w),
              *tb = tnew(VT_F32, 1, O, 1, 1, 1, b);
    vt_tensor *ty = tnew(VT_F32, 2, N, O, 1, 1, NULL), *tdy = tnew(VT_F32, 2, N, O, 1, 1, R);
    vt_tensor *tdx = tnew(VT_F32, 2, N, I, 1, 1, NULL), *tdw = tnew(VT_F32, 2, O, I, 1, 1, NULL),
              *tdb = tnew(VT_F32, 1, O, 1, 1, 1, NULL);
    vt_node f = node(VT_OP_MATMUL);
    f.p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
    f.src[0] = tx, f.src[1] = tw, f.src[2] = tb, f.dst[0] = ty;
    run(&f);
    vt_node bx = node(VT_OP_MATMUL); /* dx = dy W */
    bx.p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    bx.src[0] = tdy, bx.src[1] = tw, bx.dst[0] = tdx;
    vt_node bw = node(VT_OP_MATMUL); /* dW = dy^T x */
    bw.p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    bw.src[0] = tdy, bw.src[1] = tx, bw.dst[0] = tdw;
    vt_node bb = node(VT_OP_BIAS_GRAD);
    bb.src[0] = tdy, bb.dst[0] = tdb;
    run(&bx);
    run(&bw);
    run(&bb);
    float *dx = host(N * I), *dw = host(O * I), *db = host(O);
    get(tdx, dx);
    get(tdw, dw);
    get(tdb, db);
    check_grad("linear dx (matmul dy W)", &f, ty, R, tx, x, dx, 1e-2f);
    check_grad("linear dW (matmul dy^T x)", &f, ty, R, tw, w, dw, 1e-2f);
    check_grad("linear db (bias_grad)", &f, ty, R, tb, b, db, 1e-2f);
    /* the check itself must notice a gradient that is 1% off */
    for (int i = 0; i < N * I; i++) dx[i] *= 1.01f;
    assert_true(grad_error("linear dx, 1% off on purpose", &f, ty, R, tx, x, dx, 1e-2f, 1) > 1.0);
    free(x), free(w), free(b), free(R), free(dx), free(dw), free(db);
}

/* ---- CONV2D_BWD_DATA / CONV2D_BWD_WEIGHT, and BIAS_GRAD on 4-D ---- */

static void conv_check(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t RR, int64_t S, int sh, int ph) {
    int64_t P = (H + 2 * ph - RR) / sh + 1, Q = (W + 2 * ph - S) / sh + 1;
    float *x = uniform(N * C * H * W, -1, 1), *w = uniform(K * C * RR * S, -1, 1), *b = uniform(K, -1, 1);
    float *R = uniform(N * K * P * Q, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 4, N, C, H, W, x), *tw = tnew(VT_F32, 4, K, C, RR, S, w),
              *tb = tnew(VT_F32, 1, K, 1, 1, 1, b);
    vt_tensor *ty = tnew(VT_F32, 4, N, K, P, Q, NULL), *tdy = tnew(VT_F32, 4, N, K, P, Q, R);
    vt_tensor *tdx = tnew(VT_F32, 4, N, C, H, W, NULL), *tdw = tnew(VT_F32, 4, K, C, RR, S, NULL),
              *tdb = tnew(VT_F32, 1, K, 1, 1, 1, NULL);
    vt_conv2d_params cp = {sh, sh, ph, ph, VT_ACT_NONE, 0};
    vt_node f = node(VT_OP_CONV2D);
    f.p.conv2d = cp;
    f.src[0] = tx, f.src[1] = tw, f.src[2] = tb, f.dst[0] = ty;
    run(&f);
    vt_node bd = node(VT_OP_CONV2D_BWD_DATA);
    bd.p.conv2d = cp;
    bd.src[0] = tdy, bd.src[1] = tw, bd.dst[0] = tdx;
    vt_node bw = node(VT_OP_CONV2D_BWD_WEIGHT);
    bw.p.conv2d = cp;
    bw.src[0] = tdy, bw.src[1] = tx, bw.dst[0] = tdw;
    vt_node bb = node(VT_OP_BIAS_GRAD);
    bb.src[0] = tdy, bb.dst[0] = tdb;
    run(&bd);
    run(&bw);
    run(&bb);
    float *dx = host(N * C * H * W), *dw = host(K * C * RR * S), *db = host(K);
    get(tdx, dx);
    get(tdw, dw);
    get(tdb, db);
    char what[64];
    snprintf(what, sizeof what, "conv2d_bwd_data s%d p%d", sh, ph);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    snprintf(what, sizeof what, "conv2d_bwd_weight s%d p%d", sh, ph);
    check_grad(what, &f, ty, R, tw, w, dw, 1e-2f);
    check_grad("conv bias (bias_grad 4-D)", &f, ty, R, tb, b, db, 1e-2f);
    free(x), free(w), free(b), free(R), free(dx), free(dw), free(db);
}

static void test_conv(void **state) {
    (void)state;
    conv_check(2, 3, 7, 6, 4, 3, 3, 1, 1);
    conv_check(2, 3, 7, 6, 4, 3, 3, 2, 1);
    conv_check(1, 2, 9, 9, 3, 5, 5, 2, 2);
    conv_check(2, 4, 6, 6, 3, 1, 1, 2, 0);
}

/* ---- CONV2D_TRANSPOSE's backward as the graph builds it: dx = CONV2D(dy, w), dw = CONV2D_BWD_WEIGHT(x, dy),
 * db = BIAS_GRAD(dy) ---- */

static void conv_t_check(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t RR, int64_t S, int sh, int ph,
                         int oph) {
    int64_t P = (H - 1) * sh - 2 * ph + RR + oph, Q = (W - 1) * sh - 2 * ph + S;
    float *x = uniform(N * C * H * W, -1, 1), *w = uniform(C * K * RR * S, -1, 1), *b = uniform(K, -1, 1);
    float *R = uniform(N * K * P * Q, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 4, N, C, H, W, x), *tw = tnew(VT_F32, 4, C, K, RR, S, w),
              *tb = tnew(VT_F32, 1, K, 1, 1, 1, b);
    vt_tensor *ty = tnew(VT_F32, 4, N, K, P, Q, NULL), *tdy = tnew(VT_F32, 4, N, K, P, Q, R);
    vt_tensor *tdx = tnew(VT_F32, 4, N, C, H, W, NULL), *tdw = tnew(VT_F32, 4, C, K, RR, S, NULL),
              *tdb = tnew(VT_F32, 1, K, 1, 1, 1, NULL);
    vt_conv2d_params cp = {sh, sh, ph, ph, VT_ACT_NONE, 0};
    vt_node f = node(VT_OP_CONV2D_TRANSPOSE);
    f.p.conv2d = cp;
    f.src[0] = tx, f.src[1] = tw, f.src[2] = tb, f.dst[0] = ty;
    run(&f);
    vt_node bd = node(VT_OP_CONV2D);
    bd.p.conv2d = cp;
    bd.src[0] = tdy, bd.src[1] = tw, bd.dst[0] = tdx;
    vt_node bw = node(VT_OP_CONV2D_BWD_WEIGHT);
    bw.p.conv2d = cp;
    bw.src[0] = tx, bw.src[1] = tdy, bw.dst[0] = tdw;
    vt_node bb = node(VT_OP_BIAS_GRAD);
    bb.src[0] = tdy, bb.dst[0] = tdb;
    run(&bd);
    run(&bw);
    run(&bb);
    float *dx = host(N * C * H * W), *dw = host(C * K * RR * S), *db = host(K);
    get(tdx, dx);
    get(tdw, dw);
    get(tdb, db);
    char what[64];
    snprintf(what, sizeof what, "conv2d_transpose dx (conv2d) s%d p%d op%d", sh, ph, oph);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    snprintf(what, sizeof what, "conv2d_transpose dw (bwd_weight) s%d p%d", sh, ph);
    check_grad(what, &f, ty, R, tw, w, dw, 1e-2f);
    check_grad("conv2d_transpose db (bias_grad)", &f, ty, R, tb, b, db, 1e-2f);
    free(x), free(w), free(b), free(R), free(dx), free(dw), free(db);
}

static void test_conv_transpose(void **state) {
    (void)state;
    conv_t_check(2, 3, 4, 5, 4, 3, 3, 1, 1, 0);
    conv_t_check(2, 3, 4, 3, 2, 3, 3, 2, 1, 1);
    conv_t_check(1, 2, 3, 3, 3, 4, 5, 3, 1, 2);
    conv_t_check(1, 2, 2, 2, 2, 8, 8, 4, 2, 0); /* FCN's k = 2s, p = s/2 at a small scale */
}

/* ---- POOL2D_BWD ---- */

static void pool_check(vt_pool_kind kind, int k, int s, int p) {
    const int64_t N = 2, C = 3, H = 7, W = 6;
    int64_t P = (H + 2 * p - k) / s + 1, Q = (W + 2 * p - k) / s + 1;
    float *x = kind == VT_POOL_MAX ? distinct(N * C * H * W) : uniform(N * C * H * W, -1, 1);
    float *R = uniform(N * C * P * Q, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 4, N, C, H, W, x), *ty = tnew(VT_F32, 4, N, C, P, Q, NULL);
    vt_tensor *tdy = tnew(VT_F32, 4, N, C, P, Q, R), *tdx = tnew(VT_F32, 4, N, C, H, W, NULL);
    vt_pool2d_params pp = {kind, k, k, s, s, p, p};
    vt_node f = node(VT_OP_POOL2D);
    f.p.pool2d = pp;
    f.src[0] = tx, f.dst[0] = ty;
    run(&f);
    vt_node b = node(VT_OP_POOL2D_BWD);
    b.p.pool2d = pp;
    b.src[0] = tdy, b.src[1] = tx, b.dst[0] = tdx;
    run(&b);
    float *dx = host(N * C * H * W);
    get(tdx, dx);
    char what[64];
    snprintf(what, sizeof what, "pool2d_bwd %s k%d s%d p%d", kind == VT_POOL_MAX ? "max" : "avg", k, s, p);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    free(x), free(R), free(dx);
}

static void test_pool(void **state) {
    (void)state;
    pool_check(VT_POOL_MAX, 3, 2, 1);
    pool_check(VT_POOL_MAX, 2, 2, 0);
    pool_check(VT_POOL_MAX, 3, 1, 1);
    pool_check(VT_POOL_AVG, 3, 2, 1);
    pool_check(VT_POOL_AVG, 2, 2, 0);
}

/* ---- BATCHNORM_BWD, training and frozen statistics ---- */

static void bn_check(int training, int ndim) {
    const int64_t N = 4, C = 3, H = ndim == 4 ? 3 : 1, W = ndim == 4 ? 2 : 1;
    int64_t n = N * C * H * W;
    float *x = uniform(n, -1, 2), *g = uniform(C, 0.5f, 1.5f), *be = uniform(C, -0.5f, 0.5f);
    float *rm = uniform(C, -0.2f, 0.2f), *rv = uniform(C, 0.5f, 1.5f), *R = uniform(n, -1, 1);
    vt_tensor *tx = tnew(VT_F32, ndim, N, C, H, W, x), *tg = tnew(VT_F32, 1, C, 1, 1, 1, g),
              *tb = tnew(VT_F32, 1, C, 1, 1, 1, be);
    vt_tensor *trm = tnew(VT_F32, 1, C, 1, 1, 1, rm), *trv = tnew(VT_F32, 1, C, 1, 1, 1, rv);
    vt_tensor *ty = tnew(VT_F32, ndim, N, C, H, W, NULL), *tsm = tnew(VT_F32, 1, C, 1, 1, 1, NULL),
              *tsi = tnew(VT_F32, 1, C, 1, 1, 1, NULL);
    vt_tensor *tdy = tnew(VT_F32, ndim, N, C, H, W, R), *tdx = tnew(VT_F32, ndim, N, C, H, W, NULL);
    vt_tensor *tdg = tnew(VT_F32, 1, C, 1, 1, 1, NULL), *tdb = tnew(VT_F32, 1, C, 1, 1, 1, NULL);
    /* momentum 0 keeps the running statistics fixed while the forward reruns */
    vt_batchnorm_params bp = {training, 0.0f, 1e-5f, 0};
    vt_node f = node(VT_OP_BATCHNORM);
    f.p.bn = bp;
    f.src[0] = tx, f.src[1] = tg, f.src[2] = tb, f.src[3] = trm, f.src[4] = trv;
    f.dst[0] = ty, f.dst[1] = tsm, f.dst[2] = tsi;
    run(&f);
    vt_node b = node(VT_OP_BATCHNORM_BWD);
    b.p.bn = bp;
    b.src[0] = tdy, b.src[1] = tx, b.src[2] = tg, b.src[3] = tsm, b.src[4] = tsi;
    b.dst[0] = tdx, b.dst[1] = tdg, b.dst[2] = tdb;
    run(&b);
    float *dx = host(n), *dg = host(C), *db = host(C);
    get(tdx, dx);
    get(tdg, dg);
    get(tdb, db);
    char what[64];
    const char *mode = training ? "train" : "frozen";
    snprintf(what, sizeof what, "batchnorm_bwd %s %dd dx", mode, ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    snprintf(what, sizeof what, "batchnorm_bwd %s %dd dgamma", mode, ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tg, g, dg, 1e-2f);
    snprintf(what, sizeof what, "batchnorm_bwd %s %dd dbeta", mode, ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tb, be, db, 1e-2f);
    free(x), free(g), free(be), free(rm), free(rv), free(R), free(dx), free(dg), free(db);
}

static void test_batchnorm(void **state) {
    (void)state;
    bn_check(1, 4);
    bn_check(1, 2);
    bn_check(0, 4);
    bn_check(0, 2);
}

/* ---- the synchronised batch norm with one rank: BN_BWD_STATS then BN_BWD_APPLY against central
 * differences of BN_STATS then BN_APPLY (the statistics depend on x: that path is in dx too) ---- */

static void sync_bn_check(int ndim) {
    const int64_t N = 4, C = 3, H = ndim == 4 ? 3 : 1, W = ndim == 4 ? 2 : 1;
    int64_t n = N * C * H * W;
    float *x = uniform(n, -1, 2), *g = uniform(C, 0.5f, 1.5f), *be = uniform(C, -0.5f, 0.5f);
    float *R = uniform(n, -1, 1);
    vt_tensor *tx = tnew(VT_F32, ndim, N, C, H, W, x), *tg = tnew(VT_F32, 1, C, 1, 1, 1, g),
              *tb = tnew(VT_F32, 1, C, 1, 1, 1, be);
    vt_tensor *tst = tnew(VT_F32, 2, 2, C, 1, 1, NULL), *tsum = tnew(VT_F32, 2, 2, C, 1, 1, NULL);
    vt_tensor *ty = tnew(VT_F32, ndim, N, C, H, W, NULL);
    vt_tensor *tdy = tnew(VT_F32, ndim, N, C, H, W, R), *tdx = tnew(VT_F32, ndim, N, C, H, W, NULL);
    vt_tensor *tdg = tnew(VT_F32, 1, C, 1, 1, 1, NULL), *tdb = tnew(VT_F32, 1, C, 1, 1, 1, NULL);
    vt_batchnorm_params bp = {1, 0.1f, 1e-5f, N * H * W};
    vt_node s = node(VT_OP_BN_STATS);
    s.p.bn = bp;
    s.src[0] = tx;
    s.dst[0] = tst;
    vt_node f = node(VT_OP_BN_APPLY); /* no running statistics: the forward reruns unchanged */
    f.p.bn = bp;
    f.src[0] = tx, f.src[1] = tg, f.src[2] = tb, f.src[3] = tst;
    f.dst[0] = ty;
    run(&s);
    run(&f);
    vt_node bs = node(VT_OP_BN_BWD_STATS);
    bs.p.bn = bp;
    bs.src[0] = tdy, bs.src[1] = tx, bs.src[2] = tst;
    bs.dst[0] = tdg, bs.dst[1] = tdb, bs.dst[2] = tsum;
    run(&bs);
    vt_node ba = node(VT_OP_BN_BWD_APPLY);
    ba.p.bn = bp;
    ba.src[0] = tdy, ba.src[1] = tx, ba.src[2] = tg, ba.src[3] = tst, ba.src[4] = tsum;
    ba.dst[0] = tdx;
    run(&ba);
    float *dx = host(n), *dg = host(C), *db = host(C);
    get(tdx, dx);
    get(tdg, dg);
    get(tdb, db);
    g_before = &s;
    char what[64];
    snprintf(what, sizeof what, "bn_bwd_apply %dd dx", ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    snprintf(what, sizeof what, "bn_bwd_stats %dd dgamma", ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tg, g, dg, 1e-2f);
    snprintf(what, sizeof what, "bn_bwd_stats %dd dbeta", ndim == 4 ? 2 : 1);
    check_grad(what, &f, ty, R, tb, be, db, 1e-2f);
    g_before = NULL;
    free(x), free(g), free(be), free(R), free(dx), free(dg), free(db);
}

static void test_sync_batchnorm(void **state) {
    (void)state;
    sync_bn_check(4);
    sync_bn_check(2);
}

/* ---- ACT_BWD for relu, leaky relu, selu, gelu ---- */

/* ACT_BWD's src1 is the forward output y, except for gelu: the input x (gelu is not monotonic, so y
 * does not tell x). gelu's inputs span its minimum at -0.75 and both tails. */
static void act_check(vt_act kind, float alpha) {
    const int64_t n = 40;
    float *x = kind == VT_ACT_GELU ? uniform(n, -4, 4) : away_from_zero(n, 0.1f), *R = uniform(n, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 2, 5, 8, 1, 1, x), *ty = tnew(VT_F32, 2, 5, 8, 1, 1, NULL);
    vt_tensor *tdy = tnew(VT_F32, 2, 5, 8, 1, 1, R), *tdx = tnew(VT_F32, 2, 5, 8, 1, 1, NULL);
    vt_node f = node(VT_OP_ACT);
    f.p.act = (vt_act_params){kind, alpha};
    f.src[0] = tx, f.dst[0] = ty;
    run(&f);
    vt_node b = node(VT_OP_ACT_BWD);
    b.p.act = f.p.act;
    b.src[0] = tdy, b.src[1] = kind == VT_ACT_GELU ? tx : ty, b.dst[0] = tdx;
    run(&b);
    float *dx = host(n);
    get(tdx, dx);
    char what[64];
    snprintf(what, sizeof what, "act_bwd %s", vt_act_name(kind));
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    free(x), free(R), free(dx);
}

static void test_act(void **state) {
    (void)state;
    act_check(VT_ACT_RELU, 0);
    act_check(VT_ACT_LEAKY_RELU, 1e-2f);
    act_check(VT_ACT_SELU, 0);
    act_check(VT_ACT_GELU, 0);
}

/* ---- DROPOUT_BWD (same mask as the forward) ---- */

static void test_dropout(void **state) {
    (void)state;
    const int64_t n = 45;
    float *x = uniform(n, -1, 1), *R = uniform(n, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 2, 9, 5, 1, 1, x), *ty = tnew(VT_F32, 2, 9, 5, 1, 1, NULL);
    vt_tensor *tdy = tnew(VT_F32, 2, 9, 5, 1, 1, R), *tdx = tnew(VT_F32, 2, 9, 5, 1, 1, NULL);
    vt_node f = node(VT_OP_DROPOUT);
    f.p.dropout = (vt_dropout_params){0.3f, 11};
    f.src[0] = tx, f.dst[0] = ty;
    run(&f);
    vt_node b = node(VT_OP_DROPOUT_BWD);
    b.p.dropout = f.p.dropout;
    b.src[0] = tdy, b.dst[0] = tdx;
    run(&b);
    float *dx = host(n);
    get(tdx, dx);
    int dropped = 0;
    for (int64_t i = 0; i < n; i++) dropped += dx[i] == 0.0f;
    assert_true(dropped > 0 && dropped < n); /* the mask is neither empty nor full */
    check_grad("dropout_bwd p0.3", &f, ty, R, tx, x, dx, 1e-2f);
    free(x), free(R), free(dx);
}

/* ---- SOFTMAX_CE_BWD, with and without label smoothing ---- */

static void ce_check(float smoothing) {
    const int64_t N = 6, K = 7;
    float *z = uniform(N * K, -3, 3);
    int32_t lab[6];
    for (int i = 0; i < N; i++) lab[i] = (int32_t)vt_rng_below(&g_rng, (uint32_t)K);
    vt_tensor *tz = tnew(VT_F32, 2, N, K, 1, 1, z), *tl = tnew(VT_I32, 1, N, 1, 1, 1, lab);
    vt_tensor *tloss = tnew(VT_F32, 1, 1, 1, 1, 1, NULL), *tdz = tnew(VT_F32, 2, N, K, 1, 1, NULL);
    vt_node f = node(VT_OP_SOFTMAX_CE);
    f.p.ce = (vt_softmax_ce_params){smoothing, 1.0f, 0};
    f.src[0] = tz, f.src[1] = tl, f.dst[0] = tloss;
    run(&f);
    vt_node b = node(VT_OP_SOFTMAX_CE_BWD);
    b.p.ce = (vt_softmax_ce_params){smoothing, 1.0f / (float)N, 0};
    b.src[0] = tz, b.src[1] = tl, b.dst[0] = tdz;
    run(&b);
    float *dz = host(N * K);
    get(tdz, dz);
    char what[64];
    snprintf(what, sizeof what, "softmax_ce_bwd ls%g", (double)smoothing);
    check_grad(what, &f, tloss, NULL, tz, z, dz, 1e-2f);
    free(z), free(dz);
}

/* Per pixel ([N,K,H,W], classes on axis 1) with ignored labels (255, K, -1): the loss is the mean over
 * the C counted pixels, and the backward with the trainer's scale 1/(N*H*W) is the gradient of the sum
 * over the counted pixels times that scale, that is of loss * C * scale (C is fixed by the labels). The
 * 64 logits are all checked; the rows of ignored pixels must be exactly zero. */
static void ce_pixel_check(float smoothing) {
    const int64_t N = 2, K = 4, H = 2, W = 4, S = H * W;
    float *z = uniform(N * K * S, -3, 3);
    int32_t lab[16];
    static const int32_t ignored[3] = {255, 4, -1};
    int counted = 0;
    for (int i = 0; i < N * S; i++) {
        lab[i] = i % 3 == 1 ? ignored[(i / 3) % 3] : (int32_t)vt_rng_below(&g_rng, (uint32_t)K);
        counted += lab[i] >= 0 && lab[i] < K;
    }
    vt_tensor *tz = tnew(VT_F32, 4, N, K, H, W, z), *tl = tnew(VT_I32, 3, N, H, W, 1, lab);
    vt_tensor *tloss = tnew(VT_F32, 1, 1, 1, 1, 1, NULL), *tdz = tnew(VT_F32, 4, N, K, H, W, NULL);
    vt_node f = node(VT_OP_SOFTMAX_CE);
    f.p.ce = (vt_softmax_ce_params){smoothing, 1.0f, 1};
    f.src[0] = tz, f.src[1] = tl, f.dst[0] = tloss;
    run(&f);
    float scale = 1.0f / (float)(N * S);
    vt_node b = node(VT_OP_SOFTMAX_CE_BWD);
    b.p.ce = (vt_softmax_ce_params){smoothing, scale, 1};
    b.src[0] = tz, b.src[1] = tl, b.dst[0] = tdz;
    run(&b);
    float *dz = host(N * K * S);
    get(tdz, dz);
    for (int64_t r = 0; r < N * S; r++) {
        if (lab[r] >= 0 && lab[r] < K) continue;
        for (int64_t k = 0; k < K; k++) assert_true(dz[(r / S) * K * S + k * S + r % S] == 0.0f);
    }
    const float R[1] = {(float)counted * scale};
    char what[64];
    snprintf(what, sizeof what, "softmax_ce_bwd px ignore ls%g", (double)smoothing);
    check_grad(what, &f, tloss, R, tz, z, dz, 1e-2f);
    free(z), free(dz);
}

static void test_softmax_ce(void **state) {
    (void)state;
    ce_check(0.0f);
    ce_check(0.1f);
    ce_check(0.3f);
    ce_pixel_check(0.0f);
    ce_pixel_check(0.2f);
}

/* ---- UPSAMPLE_BWD, nearest and bilinear, up and down ---- */

static void up_check(vt_upsample_mode mode, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
    const int64_t N = 1, C = 2;
    float *x = uniform(N * C * H * W, -1, 1), *R = uniform(N * C * Ho * Wo, -1, 1);
    vt_tensor *tx = tnew(VT_F32, 4, N, C, H, W, x), *ty = tnew(VT_F32, 4, N, C, Ho, Wo, NULL);
    vt_tensor *tdy = tnew(VT_F32, 4, N, C, Ho, Wo, R), *tdx = tnew(VT_F32, 4, N, C, H, W, NULL);
    vt_node f = node(VT_OP_UPSAMPLE);
    f.p.upsample.mode = mode;
    f.src[0] = tx, f.dst[0] = ty;
    run(&f);
    vt_node b = node(VT_OP_UPSAMPLE_BWD);
    b.p.upsample.mode = mode;
    b.src[0] = tdy, b.dst[0] = tdx;
    run(&b);
    float *dx = host(N * C * H * W);
    get(tdx, dx);
    char what[64];
    snprintf(what, sizeof what, "upsample_bwd %s %lldx%lld->%lldx%lld",
             mode == VT_UPSAMPLE_NEAREST ? "nearest" : "bilinear", (long long)H, (long long)W, (long long)Ho,
             (long long)Wo);
    check_grad(what, &f, ty, R, tx, x, dx, 1e-2f);
    free(x), free(R), free(dx);
}

static void test_upsample(void **state) {
    (void)state;
    for (int m = 0; m < 2; m++) {
        up_check((vt_upsample_mode)m, 4, 4, 8, 8);
        up_check((vt_upsample_mode)m, 5, 4, 9, 11);
        up_check((vt_upsample_mode)m, 7, 7, 3, 5);
    }
}

int main(void) {
    vt_rng_init(&g_rng, 4242, 7);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_linear, free_tensors),
        cmocka_unit_test_teardown(test_conv, free_tensors),
        cmocka_unit_test_teardown(test_conv_transpose, free_tensors),
        cmocka_unit_test_teardown(test_pool, free_tensors),
        cmocka_unit_test_teardown(test_batchnorm, free_tensors),
        cmocka_unit_test_teardown(test_sync_batchnorm, free_tensors),
        cmocka_unit_test_teardown(test_act, free_tensors),
        cmocka_unit_test_teardown(test_dropout, free_tensors),
        cmocka_unit_test_teardown(test_softmax_ce, free_tensors),
        cmocka_unit_test_teardown(test_upsample, free_tensors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
