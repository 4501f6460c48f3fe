/* CPU backend tests: hand-checked cases for the reference mode, and what is the CPU's own: its
 * convolution paths (direct AVX2 / AVX-512, im2col) against each other and the reference, the fast
 * path's determinism, the kernel-path options. The fast path against the reference on every op is the
 * conformance suite's (tests/test_conformance.c). */
#define _POSIX_C_SOURCE 200809L /* setenv */
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
#include "vt/conformance.h"
#include "vt/registry.h"
#include "vt/rng.h"

static vt_backend *g_ref, *g_fast;
/* When set, check_fast also runs each node here and requires g_fast's outputs bit for bit. */
static vt_backend *g_other;

static int setup(void **state) {
    (void)state;
    vt_backend_opts ro = {0}, fo = {0};
    ro.reference = 1;
    if (vt_backend_init_by_name("cpu", 0, &ro, &g_ref) != VT_OK) return -1;
    if (vt_backend_init_by_name("cpu", 0, &fo, &g_fast) != VT_OK) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    vt_backend_free(g_ref);
    vt_backend_free(g_fast);
    return 0;
}

/* ---- helpers ---- */

/* A tensor on be of the given shape (ndim leading entries of d0..d3), filled from data or zeros. */
static vt_tensor *mk(vt_backend *be, vt_dtype dt, int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     const void *data) {
    int64_t shape[4] = {d0, d1, d2, d3};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "t", dt, nd, shape, &t), VT_OK);
    if (data) assert_int_equal(vt_tensor_upload(t, data, vt_tensor_nbytes(t)), VT_OK);
    return t;
}

static float *get(const vt_tensor *t) {
    float *h = malloc(vt_tensor_nbytes(t));
    assert_non_null(h);
    assert_int_equal(vt_tensor_download(t, h, vt_tensor_nbytes(t)), VT_OK);
    return h;
}

static vt_node node(vt_op op) {
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    snprintf(n.label, sizeof n.label, "test");
    return n;
}

static void run(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    vt_status s = vt_backend_compute(be, n, ctx);
    if (s != VT_OK) fail_msg("%s failed: %s", vt_op_name(n->op), vt_last_error());
}

static void free_node(vt_node *n) {
    for (int i = 0; i < VT_MAX_SRC; i++) vt_tensor_free(n->src[i]);
    for (int i = 0; i < VT_MAX_DST; i++) vt_tensor_free(n->dst[i]);
}

static void expect_near(const vt_tensor *t, const float *want, double tol) {
    float *got = get(t);
    int64_t E = vt_tensor_nelem(t);
    for (int64_t i = 0; i < E; i++)
        if (!(fabs((double)got[i] - (double)want[i]) <= tol * (1.0 + fabs((double)want[i]))))
            fail_msg("element %lld: got %.9g, want %.9g", (long long)i, (double)got[i], (double)want[i]);
    free(got);
}

static const vt_step_ctx ctx0 = {0, 1234u, 0.1f, 0};

/* ---- reference: hand-checked cases ---- */

static void test_info(void **state) {
    (void)state;
    assert_string_equal(g_ref->info.backend, "cpu");
    assert_string_equal(g_ref->info.type, "cpu");
    assert_string_equal(g_ref->info.driver, "reference");
    assert_non_null(strstr(g_ref->info.name, "reference"));
    assert_non_null(strstr(g_fast->info.driver, "OpenBLAS"));
    assert_true(g_fast->info.compute_units >= 1);
    assert_true(g_fast->info.memory_bytes > 0);
    assert_string_not_equal(g_ref->info.name, g_fast->info.name);
}

static void test_matmul_ref(void **state) {
    (void)state;
    /* A = [[1,2,3],[4,5,6]] stored transposed, B = [[7,8],[9,10],[11,12]] stored transposed:
     * AB = [[58,64],[139,154]]; C = relu(2*AB + 0.5*1 + [1,-300]). */
    const float At[] = {1, 4, 2, 5, 3, 6}, Bt[] = {7, 9, 11, 8, 10, 12}, C0[] = {1, 1, 1, 1}, bias[] = {1, -300};
    vt_node n = node(VT_OP_MATMUL);
    n.p.matmul = (vt_matmul_params){1, 1, 2.0f, 0.5f, VT_ACT_RELU, 0.0f};
    n.src[0] = mk(g_ref, VT_F32, 2, 3, 2, 1, 1, At);
    n.src[1] = mk(g_ref, VT_F32, 2, 2, 3, 1, 1, Bt);
    n.src[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, bias);
    n.dst[0] = mk(g_ref, VT_F32, 2, 2, 2, 1, 1, C0);
    uint64_t before = g_ref->counters.dispatches;
    run(g_ref, &n, &ctx0);
    assert_int_equal(g_ref->counters.dispatches, before + 1);
    const float want[] = {117.5f, 0.0f, 279.5f, 8.5f};
    expect_near(n.dst[0], want, 1e-6);
    free_node(&n);

    /* No transposes, beta 0 ignores NaN already in C, leaky activation. */
    const float A[] = {1, 2, 3, 4, 5, 6}, B[] = {7, 8, 9, 10, 11, 12}, Cn[] = {NAN, NAN, NAN, NAN};
    n = node(VT_OP_MATMUL);
    n.p.matmul = (vt_matmul_params){0, 0, -1.0f, 0.0f, VT_ACT_LEAKY_RELU, 0.25f};
    n.src[0] = mk(g_ref, VT_F32, 2, 2, 3, 1, 1, A);
    n.src[1] = mk(g_ref, VT_F32, 2, 3, 2, 1, 1, B);
    n.dst[0] = mk(g_ref, VT_F32, 2, 2, 2, 1, 1, Cn);
    run(g_ref, &n, &ctx0);
    const float want2[] = {-14.5f, -16.0f, -34.75f, -38.5f};
    expect_near(n.dst[0], want2, 1e-6);
    free_node(&n);
}

static void test_conv_ref(void **state) {
    (void)state;
    const float x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[] = {1, 0, 0, -1}, b[] = {0.5f};
    /* stride 1, no padding: every output is x[p,q] - x[p+1,q+1] = -4. */
    vt_node n = node(VT_OP_CONV2D);
    n.p.conv2d = (vt_conv2d_params){1, 1, 0, 0, VT_ACT_NONE, 0.0f};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 3, 3, x);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, w);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float want[] = {-4, -4, -4, -4};
    expect_near(n.dst[0], want, 0);
    free_node(&n);
    /* stride 2, padding 1, bias 0.5: y = x[2p-1,2q-1] - x[2p,2q] + 0.5 with zeros outside. */
    n = node(VT_OP_CONV2D);
    n.p.conv2d = (vt_conv2d_params){2, 2, 1, 1, VT_ACT_NONE, 0.0f};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 3, 3, x);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, w);
    n.src[2] = mk(g_ref, VT_F32, 1, 1, 1, 1, 1, b);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float want2[] = {-0.5f, -2.5f, -6.5f, -3.5f};
    expect_near(n.dst[0], want2, 0);
    free_node(&n);
    /* Backward data for stride 1 no pad, dy = 1: dx[h,w] = sum of the taps that reach (h,w). */
    const float ones[] = {1, 1, 1, 1};
    n = node(VT_OP_CONV2D_BWD_DATA);
    n.p.conv2d = (vt_conv2d_params){1, 1, 0, 0, VT_ACT_NONE, 0.0f};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, ones);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, w);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 3, 3, NULL);
    run(g_ref, &n, &ctx0);
    const float want3[] = {1, 1, 0, 1, 0, -1, 0, -1, -1};
    expect_near(n.dst[0], want3, 0);
    free_node(&n);
    /* Backward weight, dy = 1: dw[r,s] = sum of the 2x2 block of x starting at (r,s). */
    n = node(VT_OP_CONV2D_BWD_WEIGHT);
    n.p.conv2d = (vt_conv2d_params){1, 1, 0, 0, VT_ACT_NONE, 0.0f};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, ones);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 3, 3, x);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float want4[] = {12, 16, 24, 28};
    expect_near(n.dst[0], want4, 0);
    free_node(&n);
}

static void test_pool_ref(void **state) {
    (void)state;
    /* Two 2x2 windows: all equal (first wins), and a tie between positions 1 and 2. */
    const float x[] = {5, 5, 1, 3, 5, 5, 3, 2};
    const float dy[] = {1, 10};
    vt_node n = node(VT_OP_POOL2D);
    n.p.pool2d = (vt_pool2d_params){VT_POOL_MAX, 2, 2, 2, 2, 0, 0};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 4, x);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float want[] = {5, 3};
    expect_near(n.dst[0], want, 0);
    free_node(&n);
    n = node(VT_OP_POOL2D_BWD);
    n.p.pool2d = (vt_pool2d_params){VT_POOL_MAX, 2, 2, 2, 2, 0, 0};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 2, dy);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 2, 4, x);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 4, NULL);
    run(g_ref, &n, &ctx0);
    const float want_dx[] = {1, 0, 0, 10, 0, 0, 0, 0};
    expect_near(n.dst[0], want_dx, 0);
    free_node(&n);
    /* Overlapping windows (kernel 2, stride 1) add up on a shared maximum. */
    const float x2[] = {0, 9, 0, 0, 0, 0};
    const float dy2[] = {1, 2};
    n = node(VT_OP_POOL2D_BWD);
    n.p.pool2d = (vt_pool2d_params){VT_POOL_MAX, 2, 2, 1, 1, 0, 0};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 2, dy2);
    n.src[1] = mk(g_ref, VT_F32, 4, 1, 1, 2, 3, x2);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 3, NULL);
    run(g_ref, &n, &ctx0);
    const float want2[] = {0, 3, 0, 0, 0, 0};
    expect_near(n.dst[0], want2, 0);
    free_node(&n);
    /* Average with padding 1, kernel 3, stride 2 counts the padding: y[0] = (1+2+4+5)/9. */
    const float x3[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    n = node(VT_OP_POOL2D);
    n.p.pool2d = (vt_pool2d_params){VT_POOL_AVG, 3, 3, 2, 2, 1, 1};
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 3, 3, x3);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 2, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float want3[] = {12.0f / 9, 16.0f / 9, 24.0f / 9, 28.0f / 9};
    expect_near(n.dst[0], want3, 1e-6);
    free_node(&n);
}

static void test_batchnorm_ref(void **state) {
    (void)state;
    /* x [2,2,1,2]; channel 0 holds 1,2,3,4 (mean 2.5, var 1.25), channel 1 holds 0,0,0,8 (mean 2, var 12). */
    const float x[] = {1, 2, 0, 0, 3, 4, 0, 8}, gamma[] = {2, 1}, beta[] = {0, 1}, rm[] = {0, 0}, rv[] = {1, 1};
    vt_node n = node(VT_OP_BATCHNORM);
    n.p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, 0};
    n.src[0] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, x);
    n.src[1] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, gamma);
    n.src[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, beta);
    n.src[3] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, rm);
    n.src[4] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, rv);
    n.dst[0] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, NULL);
    n.dst[1] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, NULL);
    n.dst[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx0);
    /* Values from a double-precision evaluation of the formulas. */
    const float want_y[] = {-2.6832708f, -0.8944236f, 0.42264997f, 0.42264997f,
                            0.8944236f,  2.6832708f,  0.42264997f, 2.7320501f};
    expect_near(n.dst[0], want_y, 1e-6);
    const float want_mean[] = {2.5f, 2.0f}, want_inv[] = {0.894423613f, 0.288675014f};
    expect_near(n.dst[1], want_mean, 1e-7);
    expect_near(n.dst[2], want_inv, 1e-6);
    /* rm = 0.1*mean; rv = 0.9 + 0.1*var*4/3. */
    const float want_rm[] = {0.25f, 0.2f}, want_rv[] = {0.9f + 0.1f * 1.25f * 4 / 3, 0.9f + 0.1f * 16.0f};
    expect_near(n.src[3], want_rm, 1e-6);
    expect_near(n.src[4], want_rv, 1e-6);

    /* Backward, training: dy = x gives sums that are easy to check through the identity
     * sum(dx) = 0 per channel and dbeta = sum dy. */
    vt_node b = node(VT_OP_BATCHNORM_BWD);
    b.p.bn = n.p.bn;
    b.src[0] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, x);
    b.src[1] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, x);
    b.src[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, gamma);
    float *sm = get(n.dst[1]), *si = get(n.dst[2]);
    b.src[3] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, sm);
    b.src[4] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, si);
    b.dst[0] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, NULL);
    b.dst[1] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, NULL);
    b.dst[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, NULL);
    run(g_ref, &b, &ctx0);
    /* dbeta = [10, 8]; dgamma = sum x*xhat = sum (x-mean)*xhat = M*var*invstd = 4*sqrt(var) (eps aside). */
    const float want_db[] = {10, 8}, want_dg[] = {4 * 1.25f * 0.894423613f, 4 * 12.0f * 0.288675014f};
    expect_near(b.dst[2], want_db, 1e-6);
    expect_near(b.dst[1], want_dg, 1e-5);
    /* dy = x is a linear function of xhat, so the normalised gradient is (almost) zero. */
    const float zeros[8] = {0};
    float *dx = get(b.dst[0]);
    for (int i = 0; i < 8; i++) assert_true(fabsf(dx[i] - zeros[i]) < 1e-4f);
    free(dx);
    /* Frozen statistics: dx = dy * gamma * invstd. */
    b.p.bn.training = 0;
    run(g_ref, &b, &ctx0);
    const float want_frozen[] = {1 * 2 * 0.894423613f, 2 * 2 * 0.894423613f, 0, 0,
                                 3 * 2 * 0.894423613f, 4 * 2 * 0.894423613f, 0, 8 * 0.288675014f};
    expect_near(b.dst[0], want_frozen, 1e-6);
    free(sm);
    free(si);
    free_node(&b);

    /* Eval mode uses (and reports) the running statistics. */
    n.p.bn.training = 0;
    const float rm2[] = {1, -1}, rv2[] = {4, 0.25f};
    assert_int_equal(vt_tensor_upload(n.src[3], rm2, sizeof rm2), VT_OK);
    assert_int_equal(vt_tensor_upload(n.src[4], rv2, sizeof rv2), VT_OK);
    run(g_ref, &n, &ctx0);
    float i0 = 1.0f / sqrtf(4 + 1e-5f), i1 = 1.0f / sqrtf(0.25f + 1e-5f);
    const float want_eval[] = {0, 2 * i0, 1 * i1 + 1, 1 * i1 + 1, 4 * i0, 6 * i0, 1 * i1 + 1, 9 * i1 + 1};
    expect_near(n.dst[0], want_eval, 1e-6);
    expect_near(n.src[3], rm2, 0);
    free_node(&n);
}

static void test_softmax_ce_ref(void **state) {
    (void)state;
    const float logits[] = {1, 2, 3, 3, 3, 0};
    const int32_t labels[] = {0, 1};
    const float m0[] = {1, 2, 3};
    vt_node n = node(VT_OP_SOFTMAX_CE);
    n.p.ce = (vt_softmax_ce_params){0.1f, 0.5f, 0};
    n.src[0] = mk(g_ref, VT_F32, 2, 2, 3, 1, 1, logits);
    n.src[1] = mk(g_ref, VT_I32, 1, 2, 1, 1, 1, labels);
    n.dst[0] = mk(g_ref, VT_F32, 1, 1, 1, 1, 1, NULL);
    n.dst[1] = mk(g_ref, VT_F32, 1, 3, 1, 1, 1, m0);
    run(g_ref, &n, &ctx0);
    /* Row 0 (python): 2.30760596444438. Row 1: logits 3,3,0, label 1 (a tie for the max: the first,
     * index 0, is the prediction, so it is wrong): lse = 3 + log(2 + e^-3). */
    double lse1 = 3.0 + log(2.0 + exp(-3.0));
    double l1 = 0.9 * (lse1 - 3.0) + 0.1 * (lse1 - 2.0);
    double l0 = 2.30760596444438;
    const float want_loss[] = {(float)((l0 + l1) / 2)};
    expect_near(n.dst[0], want_loss, 1e-6);
    const float want_m[] = {(float)(1 + l0 + l1), 2, 5};
    expect_near(n.dst[1], want_m, 1e-6);
    free_node(&n);

    vt_node b = node(VT_OP_SOFTMAX_CE_BWD);
    b.p.ce = (vt_softmax_ce_params){0.1f, 0.5f, 0};
    b.src[0] = mk(g_ref, VT_F32, 2, 1, 3, 1, 1, logits);
    b.src[1] = mk(g_ref, VT_I32, 1, 1, 1, 1, 1, labels);
    b.dst[0] = mk(g_ref, VT_F32, 2, 1, 3, 1, 1, NULL);
    run(g_ref, &b, &ctx0);
    const float want_d[] = {0.5f * -0.8433027601629529f, 0.5f * 0.21139513772146437f, 0.5f * 0.6319076224414887f};
    expect_near(b.dst[0], want_d, 1e-6);
    free_node(&b);

    /* ARGMAX takes the first maximum. */
    vt_node a = node(VT_OP_ARGMAX);
    a.src[0] = mk(g_ref, VT_F32, 2, 2, 3, 1, 1, logits);
    a.dst[0] = mk(g_ref, VT_I32, 1, 2, 1, 1, 1, NULL);
    run(g_ref, &a, &ctx0);
    int32_t idx[2];
    assert_int_equal(vt_tensor_download(a.dst[0], idx, sizeof idx), VT_OK);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 0);
    free_node(&a);
}

static void test_dropout_ref(void **state) {
    (void)state;
    const int64_t E = 100003;
    float *x = malloc(E * sizeof(float));
    assert_non_null(x);
    for (int64_t i = 0; i < E; i++) x[i] = 1.0f + (float)(i % 7);
    vt_step_ctx ctx = {77, 99u, 0.1f, 0};
    vt_node n = node(VT_OP_DROPOUT);
    n.p.dropout = (vt_dropout_params){0.3f, 5u};
    n.src[0] = mk(g_ref, VT_F32, 1, E, 1, 1, 1, x);
    n.dst[0] = mk(g_ref, VT_F32, 1, E, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx);
    vt_node b = node(VT_OP_DROPOUT_BWD);
    b.p.dropout = n.p.dropout;
    b.src[0] = mk(g_ref, VT_F32, 1, E, 1, 1, 1, x);
    b.dst[0] = mk(g_ref, VT_F32, 1, E, 1, 1, 1, NULL);
    run(g_ref, &b, &ctx);
    float *y = get(n.dst[0]), *dx = get(b.dst[0]);
    int64_t kept = 0;
    for (int64_t i = 0; i < E; i++) {
        /* The mask of element i, straight from the formula of ops.h. */
        vt_philox_out w = vt_philox(99u, 5u, (uint32_t)(i / 4), 0, 77u, 0u);
        bool keep = vt_u32_to_unit(w.v[i % 4]) >= 0.3f;
        float want = keep ? x[i] / (1.0f - 0.3f) : 0.0f;
        assert_true(y[i] == want);
        assert_true(dx[i] == y[i]);
        kept += keep;
    }
    double rate = (double)kept / (double)E;
    assert_true(fabs(rate - 0.7) < 0.01);
    /* Another step gives another mask. */
    vt_step_ctx ctx2 = ctx;
    ctx2.step = 78;
    run(g_ref, &n, &ctx2);
    float *y2 = get(n.dst[0]);
    int64_t differ = 0;
    for (int64_t i = 0; i < E; i++) differ += (y2[i] == 0.0f) != (y[i] == 0.0f);
    assert_true(differ > E / 10);
    free(y);
    free(y2);
    free(dx);
    free(x);
    free_node(&n);
    free_node(&b);
}

static void test_optim_ref(void **state) {
    (void)state;
    const float p0[] = {1.0f, -2.0f}, g[] = {0.5f, 0.25f}, zero[] = {0, 0};
    vt_step_ctx ctx = {0, 1u, 0.1f, 0};
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        vt_node n = node(VT_OP_SGD);
        n.p.sgd = (vt_sgd_params){2.0f, 0.9f, 0.01f, nesterov};
        n.src[0] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, g);
        n.dst[0] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, p0);
        n.dst[1] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, zero);
        run(g_ref, &n, &ctx);
        /* lr = 0.2; g' = g + 0.01 p; buf = g'; step = nesterov ? g' + 0.9 buf : buf. */
        float want_p[2], want_buf[2];
        for (int i = 0; i < 2; i++) {
            float gi = g[i] + 0.01f * p0[i];
            want_buf[i] = gi;
            want_p[i] = p0[i] - 0.2f * (nesterov ? gi + 0.9f * gi : gi);
        }
        expect_near(n.dst[0], want_p, 1e-6);
        expect_near(n.dst[1], want_buf, 1e-6);
        free_node(&n);
    }
    for (int decoupled = 0; decoupled < 2; decoupled++) {
        vt_node n = node(VT_OP_ADAM);
        n.p.adam = (vt_adam_params){1.0f, 0.9f, 0.999f, 1e-8f, 0.1f, decoupled, 5};
        ctx.step = 6; /* t = 2 */
        const float m0[] = {0.1f, -0.2f}, v0[] = {0.01f, 0.04f};
        n.src[0] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, g);
        n.dst[0] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, p0);
        n.dst[1] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, m0);
        n.dst[2] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, v0);
        run(g_ref, &n, &ctx);
        float want_p[2], want_m[2], want_v[2];
        for (int i = 0; i < 2; i++) {
            double p = p0[i], gi = g[i];
            if (decoupled) p *= 1.0 - 0.1 * 0.1;
            else gi += 0.1 * p;
            double m = 0.9 * m0[i] + 0.1 * gi, v = 0.999 * v0[i] + 0.001 * gi * gi;
            double bc1 = 1 - 0.9 * 0.9, bc2 = 1 - 0.999 * 0.999;
            want_p[i] = (float)(p - (0.1 / bc1) * m / (sqrt(v) / sqrt(bc2) + 1e-8));
            want_m[i] = (float)m;
            want_v[i] = (float)v;
        }
        expect_near(n.dst[0], want_p, 1e-5);
        expect_near(n.dst[1], want_m, 1e-6);
        expect_near(n.dst[2], want_v, 1e-6);
        free_node(&n);
    }
}

static void test_batch_prep_ref(void **state) {
    (void)state;
    /* D = 3 images of 1 channel, 2x3. */
    uint8_t img[3 * 6];
    for (int i = 0; i < 18; i++) img[i] = (uint8_t)(i * 10);
    const int32_t labels[] = {7, 8, 9}, perm[] = {2, 0, 1};
    vt_step_ctx ctx = {3, 42u, 0.1f, 1};
    vt_node n = node(VT_OP_BATCH_PREP);
    n.p.prep = (vt_batch_prep_params){0, 0, {0.5f, 0, 0, 0}, {0.25f, 1, 1, 1}, 9u, 0};
    n.src[0] = mk(g_ref, VT_U8, 4, 3, 1, 2, 3, img);
    n.src[1] = mk(g_ref, VT_I32, 1, 3, 1, 1, 1, labels);
    n.src[2] = mk(g_ref, VT_I32, 1, 3, 1, 1, 1, perm);
    n.dst[0] = mk(g_ref, VT_F32, 4, 2, 1, 2, 3, NULL);
    n.dst[1] = mk(g_ref, VT_I32, 1, 2, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx);
    /* No augmentation: batch = samples perm[1], perm[2] = 0, 1. */
    float want[12];
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 6; i++) want[b * 6 + i] = ((float)img[(b)*6 + i] / 255.0f - 0.5f) / 0.25f;
    expect_near(n.dst[0], want, 1e-6);
    int32_t y[2];
    assert_int_equal(vt_tensor_download(n.dst[1], y, sizeof y), VT_OK);
    assert_int_equal(y[0], 7);
    assert_int_equal(y[1], 8);

    /* Crop 1 and flip: check each output pixel against its source from the Philox words. */
    n.p.prep.pad = 1;
    n.p.prep.flip = 1;
    int seen_flip = 0, seen_shift = 0;
    for (uint64_t step = 0; step < 8; step++) {
        ctx.step = step;
        run(g_ref, &n, &ctx);
        float *x = get(n.dst[0]);
        for (int b = 0; b < 2; b++) {
            int64_t j = 1 + b, s = perm[j];
            vt_philox_out w = vt_philox(42u, 9u, (uint32_t)j, 0, (uint32_t)step, 0);
            int oy = (int)(w.v[0] % 3), ox = (int)(w.v[1] % 3), flip = (int)(w.v[2] & 1);
            seen_flip += flip;
            seen_shift += oy != 1 || ox != 1;
            for (int h = 0; h < 2; h++)
                for (int c = 0; c < 3; c++) {
                    int sh = h + oy - 1, sc = (flip ? 2 - c : c) + ox - 1;
                    float raw = (sh < 0 || sh >= 2 || sc < 0 || sc >= 3) ? 0.0f : (float)img[s * 6 + sh * 3 + sc];
                    float e = (raw / 255.0f - 0.5f) / 0.25f;
                    assert_true(fabsf(x[b * 6 + h * 3 + c] - e) < 1e-6f);
                }
        }
        free(x);
    }
    assert_true(seen_flip > 0 && seen_flip < 16);
    assert_true(seen_shift > 0);
    /* A batch that runs past the dataset is an error, not a read out of bounds. */
    ctx.batch_start = 2;
    assert_int_equal(vt_backend_compute(g_ref, &n, &ctx), VT_ERR_INVALID_ARG);
    free_node(&n);
}

/* ---- reference: semantic segmentation (CONFUSION, BATCH_PREP with masks, CE with ignore) ---- */

/* CONFUSION on 6 pixels, K = 2 (counts [3,3], row = truth, column = prediction, index 2 = no class),
 * accumulated onto what the counts held. */
static void test_confusion_ref(void **state) {
    (void)state;
    const int32_t pred[6] = {0, 1, 1, 7, 0, -1}, truth[6] = {0, 1, 0, 1, 255, -5};
    const int32_t c0[9] = {10, 0, 0, 0, 20, 0, 0, 0, 30};
    vt_node n = node(VT_OP_CONFUSION);
    n.src[0] = mk(g_ref, VT_I32, 2, 2, 3, 1, 1, pred);
    n.src[1] = mk(g_ref, VT_I32, 1, 6, 1, 1, 1, truth);
    n.dst[0] = mk(g_ref, VT_I32, 2, 3, 3, 1, 1, c0);
    run(g_ref, &n, &ctx0);
    /* (t,q): (0,0) (1,1) (0,1) (1,2) (2,0) (2,2) */
    const int32_t want[9] = {11, 1, 0, 0, 21, 1, 1, 0, 31};
    int32_t got[9];
    assert_int_equal(vt_tensor_download(n.dst[0], got, sizeof got), VT_OK);
    for (int i = 0; i < 9; i++) assert_int_equal(got[i], want[i]);
    free_node(&n);
}

/* BATCH_PREP with u8 masks and a crop smaller than the image: every image byte is the code of its
 * pixel (1 + s*40 + h*W + w, the same in every channel) and the mask holds the same code, so at each
 * output position the label must equal the image value it sits with (255 where x is the padding's 0),
 * and both must be the pixel the crop offset and flip of vt/ops.h select. */
static void test_prep_masks_ref(void **state) {
    (void)state;
    enum { D = 3, C = 3, H = 5, W = 7, B = 2, Ho = 3, Wo = 4 };
    uint8_t img[D * C * H * W], mask[D * H * W];
    for (int s = 0; s < D; s++)
        for (int i = 0; i < H * W; i++) {
            mask[s * H * W + i] = (uint8_t)(1 + s * 40 + i);
            for (int ch = 0; ch < C; ch++) img[(s * C + ch) * H * W + i] = (uint8_t)(1 + s * 40 + i);
        }
    const int32_t perm[D] = {2, 0, 1};
    vt_node n = node(VT_OP_BATCH_PREP);
    n.p.prep = (vt_batch_prep_params){2, 1, {0, 0, 0, 0}, {1, 1, 1, 1}, 5u, 0};
    n.src[0] = mk(g_ref, VT_U8, 4, D, C, H, W, img);
    n.src[1] = mk(g_ref, VT_U8, 3, D, H, W, 1, mask);
    n.src[2] = mk(g_ref, VT_I32, 1, D, 1, 1, 1, perm);
    n.dst[0] = mk(g_ref, VT_F32, 4, B, C, Ho, Wo, NULL);
    n.dst[1] = mk(g_ref, VT_I32, 3, B, Ho, Wo, 1, NULL);
    int outside = 0, flips = 0;
    for (int center = 0; center < 2; center++)
        for (uint64_t step = 0; step < 6; step++) {
            n.p.prep.center = center;
            vt_step_ctx ctx = {step, 77u, 0.1f, 1};
            run(g_ref, &n, &ctx);
            float *x = get(n.dst[0]);
            int32_t y[B * Ho * Wo];
            assert_int_equal(vt_tensor_download(n.dst[1], y, sizeof y), VT_OK);
            int span_h = H - Ho + 2 * 2 + 1, span_w = W - Wo + 2 * 2 + 1;
            for (int b = 0; b < B; b++) {
                int j = 1 + b, s = perm[j];
                vt_philox_out w = vt_philox(77u, 5u, (uint32_t)j, 0, (uint32_t)step, 0);
                int oy = center ? (span_h - 1) / 2 : (int)(w.v[0] % (uint32_t)span_h);
                int ox = center ? (span_w - 1) / 2 : (int)(w.v[1] % (uint32_t)span_w);
                int flip = (int)(w.v[2] & 1u);
                flips += flip;
                for (int h = 0; h < Ho; h++)
                    for (int col = 0; col < Wo; col++) {
                        int sh = h + oy - 2, sw = (flip ? Wo - 1 - col : col) + ox - 2;
                        int in = sh >= 0 && sh < H && sw >= 0 && sw < W;
                        int code = in ? 1 + s * 40 + sh * W + sw : 0;
                        outside += !in;
                        int32_t label = y[(b * Ho + h) * Wo + col];
                        for (int ch = 0; ch < C; ch++) {
                            int raw = (int)lrintf(x[((b * C + ch) * Ho + h) * Wo + col] * 255.0f);
                            assert_int_equal(raw, code);
                            assert_int_equal(label, raw ? raw : 255); /* the label of the same pixel */
                        }
                    }
            }
            free(x);
        }
    assert_true(outside > 0 && flips > 0 && flips < 24);
    free_node(&n);
}

/* SOFTMAX_CE with ignore on [N,K] is the CE of the kept rows alone (loss, metrics); the backward is
 * the kept rows' backward at the same scale, and zero on the ignored rows. */
static void test_ce_ignore_ref(void **state) {
    (void)state;
    const float logits[12] = {1, 2, 3, 0.5f, -1, 2, 3, 3, 0, -2, 4, 1}, kept[6] = {1, 2, 3, 3, 3, 0};
    const int32_t labels[4] = {0, 255, 1, -1}, kept_labels[2] = {0, 1};
    const float m0[3] = {1, 2, 3};
    float loss[2], m[2][3], d[2][12];
    for (int k = 0; k < 2; k++) {
        int64_t N = k ? 2 : 4;
        vt_node n = node(VT_OP_SOFTMAX_CE);
        n.p.ce = (vt_softmax_ce_params){0.1f, 1.0f, k ? 0 : 1};
        n.src[0] = mk(g_ref, VT_F32, 2, N, 3, 1, 1, k ? kept : logits);
        n.src[1] = mk(g_ref, VT_I32, 1, N, 1, 1, 1, k ? kept_labels : labels);
        n.dst[0] = mk(g_ref, VT_F32, 1, 1, 1, 1, 1, NULL);
        n.dst[1] = mk(g_ref, VT_F32, 1, 3, 1, 1, 1, m0);
        run(g_ref, &n, &ctx0);
        assert_int_equal(vt_tensor_download(n.dst[0], &loss[k], sizeof loss[k]), VT_OK);
        assert_int_equal(vt_tensor_download(n.dst[1], m[k], sizeof m[k]), VT_OK);
        vt_node b = node(VT_OP_SOFTMAX_CE_BWD);
        b.p.ce = (vt_softmax_ce_params){0.1f, 0.25f, k ? 0 : 1};
        b.src[0] = n.src[0], b.src[1] = n.src[1];
        b.dst[0] = mk(g_ref, VT_F32, 2, N, 3, 1, 1, NULL);
        run(g_ref, &b, &ctx0);
        assert_int_equal(vt_tensor_download(b.dst[0], d[k], (size_t)N * 3 * sizeof(float)), VT_OK);
        vt_tensor_free(b.dst[0]);
        free_node(&n);
    }
    /* the kept rows alone: rows 0 and 2 (hand: row 0 as in test_softmax_ce_ref, row 2 a tie, wrong) */
    double lse1 = 3.0 + log(2.0 + exp(-3.0));
    double want = (2.30760596444438 + 0.9 * (lse1 - 3.0) + 0.1 * (lse1 - 2.0)) / 2;
    assert_true(fabs((double)loss[0] - want) < 1e-6);
    assert_true(loss[0] == loss[1]);
    for (int i = 0; i < 3; i++) assert_true(m[0][i] == m[1][i]);
    assert_true(m[0][1] == 2.0f && m[0][2] == 5.0f); /* neither kept row right (a tie), two counted */
    for (int k = 0; k < 3; k++) {
        assert_true(d[0][k] == d[1][k] && d[0][6 + k] == d[1][3 + k]);
        assert_true(d[0][3 + k] == 0.0f && d[0][9 + k] == 0.0f);
    }
}

static void test_misc_ref(void **state) {
    (void)state;
    /* UPSAMPLE 1x2 -> 1x4: nearest [1,1,2,2]; bilinear (PyTorch) [1,1.25,1.75,2]. */
    const float x[] = {1, 2};
    vt_node n = node(VT_OP_UPSAMPLE);
    n.p.upsample.mode = VT_UPSAMPLE_NEAREST;
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 2, x);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 4, NULL);
    run(g_ref, &n, &ctx0);
    const float wn[] = {1, 1, 2, 2};
    expect_near(n.dst[0], wn, 0);
    n.p.upsample.mode = VT_UPSAMPLE_BILINEAR;
    run(g_ref, &n, &ctx0);
    const float wb[] = {1, 1.25f, 1.75f, 2};
    expect_near(n.dst[0], wb, 1e-7);
    free_node(&n);
    /* Its adjoint with dy = 1: bilinear weights per source column sum to 2 each. */
    const float ones[] = {1, 1, 1, 1};
    n = node(VT_OP_UPSAMPLE_BWD);
    n.p.upsample.mode = VT_UPSAMPLE_BILINEAR;
    n.src[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 4, ones);
    n.dst[0] = mk(g_ref, VT_F32, 4, 1, 1, 1, 2, NULL);
    run(g_ref, &n, &ctx0);
    const float wbb[] = {2, 2};
    expect_near(n.dst[0], wbb, 1e-7);
    free_node(&n);
    /* ACT and ACT_BWD. */
    const float a[] = {-2, -0.5f, 0, 3};
    n = node(VT_OP_ACT);
    n.p.act = (vt_act_params){VT_ACT_SELU, 0};
    n.src[0] = mk(g_ref, VT_F32, 1, 4, 1, 1, 1, a);
    n.dst[0] = mk(g_ref, VT_F32, 1, 4, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx0);
    float ws[4];
    for (int i = 0; i < 4; i++)
        ws[i] = a[i] > 0 ? VT_SELU_SCALE * a[i] : VT_SELU_SCALE * VT_SELU_ALPHA * (expf(a[i]) - 1);
    expect_near(n.dst[0], ws, 1e-6);
    free_node(&n);
    n = node(VT_OP_ACT_BWD);
    n.p.act = (vt_act_params){VT_ACT_LEAKY_RELU, 0.1f};
    n.src[0] = mk(g_ref, VT_F32, 1, 4, 1, 1, 1, ones);
    n.src[1] = mk(g_ref, VT_F32, 1, 4, 1, 1, 1, a);
    n.dst[0] = mk(g_ref, VT_F32, 1, 4, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx0);
    const float wl[] = {0.1f, 0.1f, 0.1f, 1};
    expect_near(n.dst[0], wl, 0);
    free_node(&n);
    /* BIAS_GRAD over [N,C,H,W]. */
    const float dy[] = {1, 2, 3, 4, 5, 6, 7, 8};
    n = node(VT_OP_BIAS_GRAD);
    n.src[0] = mk(g_ref, VT_F32, 4, 2, 2, 1, 2, dy);
    n.dst[0] = mk(g_ref, VT_F32, 1, 2, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx0);
    const float wdb[] = {1 + 2 + 5 + 6, 3 + 4 + 7 + 8};
    expect_near(n.dst[0], wdb, 0);
    free_node(&n);
    /* FILL on f32 and i32. */
    n = node(VT_OP_FILL);
    n.p.fill.value = -3.75f;
    n.dst[0] = mk(g_ref, VT_I32, 1, 3, 1, 1, 1, NULL);
    run(g_ref, &n, &ctx0);
    int32_t iv[3];
    assert_int_equal(vt_tensor_download(n.dst[0], iv, sizeof iv), VT_OK);
    assert_int_equal(iv[0], -3);
    assert_int_equal(iv[2], -3);
    free_node(&n);
    /* Every op is supported; half precision is not. */
    vt_node s = node(VT_OP_ADD);
    vt_tensor h;
    int64_t shp[1] = {4};
    vt_tensor_init(&h, "h", VT_F16, 1, shp);
    s.src[0] = s.src[1] = s.dst[0] = &h;
    assert_false(vt_backend_supports(g_fast, &s));
    h.dtype = VT_F32;
    for (int op = 1; op < VT_OP_COUNT; op++) {
        s.op = (vt_op)op;
        assert_true(vt_backend_supports(g_ref, &s));
    }
}

/* ---- fast vs reference on random inputs ---- */

static vt_rng g_rng;

static void fill_random(vt_tensor *t, float lo, float hi) {
    int64_t E = vt_tensor_nelem(t);
    float *h = malloc((size_t)E * sizeof(float));
    assert_non_null(h);
    for (int64_t i = 0; i < E; i++) h[i] = vt_rng_uniform_range(&g_rng, lo, hi);
    assert_int_equal(vt_tensor_upload(t, h, vt_tensor_nbytes(t)), VT_OK);
    free(h);
}

static vt_tensor *rnd(int nd, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_tensor *t = mk(g_ref, VT_F32, nd, d0, d1, d2, d3, NULL);
    fill_random(t, -1.0f, 1.0f);
    return t;
}

static vt_tensor *clone_to(vt_backend *be, const vt_tensor *t) {
    vt_tensor *c = mk(be, t->dtype, t->ndim, t->shape[0], t->shape[1], t->shape[2], t->shape[3], NULL);
    void *h = malloc(vt_tensor_nbytes(t));
    assert_non_null(h);
    assert_int_equal(vt_tensor_download(t, h, vt_tensor_nbytes(t)), VT_OK);
    assert_int_equal(vt_tensor_upload(c, h, vt_tensor_nbytes(t)), VT_OK);
    free(h);
    return c;
}

/* Largest |fast - ref| over max |ref| (plus a floor), for a tensor pair of the same dtype. */
static void compare_tensors(const char *what, int idx, const vt_tensor *r, const vt_tensor *f, double tol) {
    int64_t E = vt_tensor_nelem(r);
    if (r->dtype != VT_F32) {
        void *a = malloc(vt_tensor_nbytes(r)), *b = malloc(vt_tensor_nbytes(r));
        assert_int_equal(vt_tensor_download(r, a, vt_tensor_nbytes(r)), VT_OK);
        assert_int_equal(vt_tensor_download(f, b, vt_tensor_nbytes(r)), VT_OK);
        if (memcmp(a, b, vt_tensor_nbytes(r)) != 0) fail_msg("%s operand %d: integer outputs differ", what, idx);
        free(a);
        free(b);
        return;
    }
    float *a = get(r), *b = get(f);
    double mx = 0, err = 0;
    int64_t worst = 0;
    for (int64_t i = 0; i < E; i++) mx = fmax(mx, fabs((double)a[i]));
    for (int64_t i = 0; i < E; i++) {
        if (isnan(a[i]) != isnan(b[i])) fail_msg("%s operand %d element %lld: NaN mismatch", what, idx, (long long)i);
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > err) {
            err = e;
            worst = i;
        }
    }
    if (err > tol * (mx + 1e-3))
        fail_msg("%s operand %d: max error %.3g at %lld (ref %.9g fast %.9g), max |ref| %.3g", what, idx, err,
                 (long long)worst, (double)a[worst], (double)b[worst], mx);
    free(a);
    free(b);
}

/* Runs the node (built on the reference backend) on both backends from the same inputs and
 * compares every operand afterwards, so in-place updates (BN running stats, optimizer state,
 * accumulated metrics) are checked too. Frees the node. */
static void check_fast(const char *what, vt_node *r, const vt_step_ctx *ctx, double tol) {
    vt_node f = *r;
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (r->src[i]) f.src[i] = clone_to(g_fast, r->src[i]);
    for (int i = 0; i < VT_MAX_DST; i++)
        if (r->dst[i]) f.dst[i] = clone_to(g_fast, r->dst[i]);
    run(g_ref, r, ctx);
    run(g_fast, &f, ctx);
    /* Run the fast one again: the same inputs must give bitwise the same outputs. */
    bool reads_dst = r->op == VT_OP_SGD || r->op == VT_OP_ADAM || r->op == VT_OP_BATCHNORM ||
                     r->op == VT_OP_SOFTMAX_CE || (r->op == VT_OP_MATMUL && r->p.matmul.beta != 0.0f);
    if (!reads_dst && r->dst[0] && r->dst[0]->dtype == VT_F32) {
        float *first = get(f.dst[0]);
        run(g_fast, &f, ctx);
        float *second = get(f.dst[0]);
        if (memcmp(first, second, vt_tensor_nbytes(f.dst[0])) != 0)
            fail_msg("%s: fast mode is not deterministic", what);
        free(first);
        free(second);
    }
    if (g_other && !reads_dst && r->dst[0] && r->dst[0]->dtype == VT_F32) {
        vt_node o = f;
        for (int i = 0; i < VT_MAX_SRC; i++)
            if (f.src[i]) o.src[i] = clone_to(g_other, f.src[i]);
        for (int i = 0; i < VT_MAX_DST; i++)
            if (f.dst[i]) o.dst[i] = clone_to(g_other, f.dst[i]);
        run(g_other, &o, ctx);
        float *a = get(f.dst[0]), *b = get(o.dst[0]);
        if (memcmp(a, b, vt_tensor_nbytes(f.dst[0])) != 0)
            fail_msg("%s: %s and %s differ", what, g_fast->info.config, g_other->info.config);
        free(a);
        free(b);
        free_node(&o);
    }
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (r->src[i]) compare_tensors(what, i, r->src[i], f.src[i], tol);
    for (int i = 0; i < VT_MAX_DST; i++)
        if (r->dst[i]) compare_tensors(what, 10 + i, r->dst[i], f.dst[i], tol);
    free_node(r);
    free_node(&f);
}

typedef struct conv_case {
    int64_t N, C, H, W, K, R, S;
    int sh, sw, ph, pw;
} conv_case;

/* Odd shapes, and 16 / 32 output channels (the direct kernels where the CPU has them) with every
 * width of partial tile, strides and kernels wider than a tile. */
static void run_fast_conv_cases(void) {
    vt_rng_init(&g_rng, 2, 2);
    const conv_case cases[] = {
        {1, 1, 5, 7, 1, 1, 1, 1, 1, 0, 0},    {2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1},
        {3, 5, 13, 11, 7, 3, 3, 2, 2, 1, 1},  {5, 3, 9, 9, 4, 5, 5, 1, 1, 2, 2},
        {2, 7, 13, 13, 3, 3, 1, 2, 1, 1, 0},  {1, 2, 5, 33, 5, 2, 4, 3, 2, 1, 3},
        {7, 13, 8, 8, 33, 1, 1, 2, 2, 0, 0},  {4, 16, 16, 16, 16, 5, 5, 1, 1, 2, 2},
        {3, 4, 9, 8, 5, 3, 2, 1, 1, 0, 1},    {2, 5, 6, 7, 3, 1, 1, 1, 1, 0, 0},
        {3, 3, 32, 32, 16, 5, 5, 1, 1, 2, 2}, {2, 5, 13, 11, 32, 3, 3, 2, 1, 1, 1},
        {2, 2, 9, 15, 16, 7, 7, 2, 1, 3, 3},  {1, 3, 4, 5, 16, 2, 3, 1, 3, 1, 0},
        {5, 16, 8, 8, 16, 5, 5, 2, 2, 2, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const conv_case *k = &cases[i];
        int64_t P = (k->H + 2 * k->ph - k->R) / k->sh + 1, Q = (k->W + 2 * k->pw - k->S) / k->sw + 1;
        /* every activation a convolution may fuse (all but gelu) */
        vt_conv2d_params cp = {k->sh, k->sw, k->ph, k->pw, (vt_act)(i % VT_ACT_GELU), 0.1f};
        char what[64];
        snprintf(what, sizeof what, "conv case %zu", i);
        vt_node n = node(VT_OP_CONV2D);
        n.p.conv2d = cp;
        n.src[0] = rnd(4, k->N, k->C, k->H, k->W);
        n.src[1] = rnd(4, k->K, k->C, k->R, k->S);
        if (i % 2) n.src[2] = rnd(1, k->K, 1, 1, 1);
        n.dst[0] = rnd(4, k->N, k->K, P, Q);
        check_fast(what, &n, &ctx0, 2e-6);
        cp.act = VT_ACT_NONE;
        n = node(VT_OP_CONV2D_BWD_DATA);
        n.p.conv2d = cp;
        n.src[0] = rnd(4, k->N, k->K, P, Q);
        n.src[1] = rnd(4, k->K, k->C, k->R, k->S);
        n.dst[0] = rnd(4, k->N, k->C, k->H, k->W);
        check_fast(what, &n, &ctx0, 2e-6);
        n = node(VT_OP_CONV2D_BWD_WEIGHT);
        n.p.conv2d = cp;
        n.src[0] = rnd(4, k->N, k->K, P, Q);
        n.src[1] = rnd(4, k->N, k->C, k->H, k->W);
        n.dst[0] = rnd(4, k->K, k->C, k->R, k->S);
        check_fast(what, &n, &ctx0, 2e-6);
    }
}

/* The direct kernels' AVX-512 variants against their AVX2 ones: the same values bit for bit (each
 * output is the same FMA chain), and both against the reference. */
static void test_fast_conv_avx2(void **state) {
    (void)state;
    vt_backend *be = NULL;
    vt_backend_opts fo = {0};
    fo.options = "avx512=0";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &fo, &be), VT_OK);
    print_message("comparing \"%s\" with \"%s\"\n", g_fast->info.config, be->info.config);
    g_other = be;
    run_fast_conv_cases();
    g_other = NULL;
    vt_backend_free(be);
}

/* The same cases with the direct kernels switched off: every convolution through im2col + GEMM. */
static void test_fast_conv_im2col(void **state) {
    (void)state;
    vt_backend *be = NULL, *keep = g_fast;
    vt_backend_opts fo = {0};
    fo.options = "direct_conv=0";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &fo, &be), VT_OK);
    assert_non_null(strstr(be->info.config, "im2col"));
    g_fast = be;
    run_fast_conv_cases();
    g_fast = keep;
    vt_backend_free(be);
}

/* The reference convolutions are adjoint to each other: <conv(x,w), dy> = <x, bwd_data(dy,w)> =
 * <w, bwd_weight(dy,x)>, an exact identity that catches index mistakes in any of the three. */
static void test_conv_adjoint_ref(void **state) {
    (void)state;
    vt_rng_init(&g_rng, 3, 3);
    const conv_case k = {2, 3, 9, 7, 4, 3, 2, 2, 1, 1, 1};
    int64_t P = (k.H + 2 * k.ph - k.R) / k.sh + 1, Q = (k.W + 2 * k.pw - k.S) / k.sw + 1;
    vt_conv2d_params cp = {k.sh, k.sw, k.ph, k.pw, VT_ACT_NONE, 0};
    vt_tensor *x = rnd(4, k.N, k.C, k.H, k.W), *w = rnd(4, k.K, k.C, k.R, k.S), *dy = rnd(4, k.N, k.K, P, Q);
    vt_tensor *y = rnd(4, k.N, k.K, P, Q), *dx = rnd(4, k.N, k.C, k.H, k.W), *dw = rnd(4, k.K, k.C, k.R, k.S);
    vt_node n = node(VT_OP_CONV2D);
    n.p.conv2d = cp;
    n.src[0] = x;
    n.src[1] = w;
    n.dst[0] = y;
    run(g_ref, &n, &ctx0);
    n = node(VT_OP_CONV2D_BWD_DATA);
    n.p.conv2d = cp;
    n.src[0] = dy;
    n.src[1] = w;
    n.dst[0] = dx;
    run(g_ref, &n, &ctx0);
    n = node(VT_OP_CONV2D_BWD_WEIGHT);
    n.p.conv2d = cp;
    n.src[0] = dy;
    n.src[1] = x;
    n.dst[0] = dw;
    run(g_ref, &n, &ctx0);
    float *hx = get(x), *hw = get(w), *hdy = get(dy), *hy = get(y), *hdx = get(dx), *hdw = get(dw);
    double a = 0, b = 0, c = 0;
    for (int64_t i = 0; i < vt_tensor_nelem(y); i++) a += (double)hy[i] * hdy[i];
    for (int64_t i = 0; i < vt_tensor_nelem(x); i++) b += (double)hx[i] * hdx[i];
    for (int64_t i = 0; i < vt_tensor_nelem(w); i++) c += (double)hw[i] * hdw[i];
    assert_true(fabs(a - b) < 1e-4 * (1 + fabs(a)));
    assert_true(fabs(a - c) < 1e-4 * (1 + fabs(a)));
    free(hx);
    free(hw);
    free(hdy);
    free(hy);
    free(hdx);
    free(hdw);
    vt_tensor_free(x);
    vt_tensor_free(w);
    vt_tensor_free(dy);
    vt_tensor_free(y);
    vt_tensor_free(dx);
    vt_tensor_free(dw);
}

/* The fast path against itself on every built-in conformance case (the conformance suite compares
 * it with the reference): its threads and blocked loops give the same bits run after run. */
static void test_fast_deterministic(void **state) {
    (void)state;
    int n = 0;
    for (int i = 0; i < vt_conf_builtin_count(); i++) {
        vt_conf_case c;
        vt_conf_case_copy_def(&c, vt_conf_builtin(i));
        c.tol = (vt_conf_tol){0, 0, 0, 0}; /* every element equal, NaN where NaN */
        vt_conf_result r;
        assert_int_equal(vt_conf_run_case(g_fast, g_fast, "cpu", &c, &r), VT_OK);
        if (r.verdict != VT_CONF_PASS) fail_msg("%s: two runs differ: %s", c.name, r.message);
        vt_conf_case_release(&c);
        n++;
    }
    print_message("%d cases, the same bits twice\n", n);
    assert_true(n > 200);
}

/* The kernel-path options: from vt_backend_opts.options, else VT_CPU_OPTIONS; an unknown key or a
 * value that is not a switch stops init with a message naming it. */
static void test_options(void **state) {
    (void)state;
    vt_backend *be = NULL;
    vt_backend_opts o = {0};
    o.options = "direct_conv=0,fuse=off,avx512=no";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    assert_non_null(strstr(be->info.config, "im2col"));
    assert_non_null(strstr(be->info.config, "SGD not fused"));
    vt_backend_free(be);
    o.options = "fuse=1,conv=gemm";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_ERR_INVALID_ARG);
    assert_null(be);
    assert_non_null(strstr(vt_last_error(), "conv"));
    assert_non_null(strstr(vt_last_error(), "direct_conv"));
    o.options = "fuse=maybe";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "fuse=maybe"));
    o.reference = 1; /* the reference refuses unknown keys too */
    o.options = "nosuch=1";
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_ERR_INVALID_ARG);
    o.reference = 0;
    o.options = NULL;
    setenv("VT_CPU_OPTIONS", "direct_conv=0", 1);
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    assert_non_null(strstr(be->info.config, "im2col"));
    vt_backend_free(be);
    setenv("VT_CPU_OPTIONS", "direct_conv", 1);
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "VT_CPU_OPTIONS"));
    unsetenv("VT_CPU_OPTIONS");
    /* the old variables are gone: they change nothing */
    setenv("VT_CPU_DIRECT_CONV", "0", 1);
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    assert_string_equal(be->info.config, g_fast->info.config);
    vt_backend_free(be);
    unsetenv("VT_CPU_DIRECT_CONV");
}

/* ---- the synchronised batch norm's split ops against BATCHNORM / BATCHNORM_BWD ---- */

/* |got - want| <= tol * max|want| for every element (dx cancels M*dy against the sums, so its small
 * elements carry the rounding of its large terms). */
static void expect_close_scaled(const float *got, const float *want, int64_t n, double tol, const char *what) {
    double scale = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)want[i]));
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - (double)want[i]) <= tol * scale))
            fail_msg("%s element %lld: got %.9g, want %.9g (scale %g)", what, (long long)i, (double)got[i],
                     (double)want[i], scale);
}

static void fill_uniform(float *v, int64_t n, float lo, float hi, uint32_t seed) {
    vt_rng r;
    vt_rng_init(&r, seed, 0);
    for (int64_t i = 0; i < n; i++) v[i] = vt_rng_uniform_range(&r, lo, hi);
}

/* x [N,C,H,W] (H = W = 0: [N,C]) split along N into `ranks` equal parts. Each part: BN_STATS; the host
 * combines the [2,C] statistics as vt/graph.h says (VT_SYNC_BN_STATS); BN_APPLY with count = the whole
 * batch's; BN_BWD_STATS; the host sums the [2,C] sums (VT_SYNC_SUM); BN_BWD_APPLY. The parts of y and
 * dx, the running statistics, and dgamma/dbeta summed over the parts must be BATCHNORM /
 * BATCHNORM_BWD training on the whole batch. */
static void check_sync_bn(vt_backend *be, int64_t N, int64_t C, int64_t H, int64_t W, int ranks, double tol) {
    int nd = H ? 4 : 2;
    int64_t HW = H ? H * W : 1, E = N * C * HW, Nr = N / ranks, Er = E / ranks, M = N * HW;
    float *x = malloc((size_t)E * sizeof *x), *dy = malloc((size_t)E * sizeof *dy);
    float gamma[64], beta[64], rm0[64], rv0[64];
    assert_true(C <= 64 && x && dy);
    fill_uniform(x, E, 1.0f, 3.0f, 11);
    fill_uniform(dy, E, -1.0f, 1.0f, 12);
    fill_uniform(gamma, C, 0.5f, 1.5f, 13);
    fill_uniform(beta, C, -0.5f, 0.5f, 14);
    fill_uniform(rm0, C, 1.0f, 3.0f, 15);
    fill_uniform(rv0, C, 0.1f, 0.5f, 16);
    vt_batchnorm_params bp = {1, 0.1f, 1e-5f, 0};

    /* the whole batch through BATCHNORM and BATCHNORM_BWD */
    vt_node f = node(VT_OP_BATCHNORM);
    f.p.bn = bp;
    f.src[0] = mk(be, VT_F32, nd, N, C, H, W, x);
    f.src[1] = mk(be, VT_F32, 1, C, 1, 1, 1, gamma);
    f.src[2] = mk(be, VT_F32, 1, C, 1, 1, 1, beta);
    f.src[3] = mk(be, VT_F32, 1, C, 1, 1, 1, rm0);
    f.src[4] = mk(be, VT_F32, 1, C, 1, 1, 1, rv0);
    f.dst[0] = mk(be, VT_F32, nd, N, C, H, W, NULL);
    f.dst[1] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
    f.dst[2] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
    run(be, &f, &ctx0);
    vt_node b = node(VT_OP_BATCHNORM_BWD);
    b.p.bn = bp;
    b.src[0] = mk(be, VT_F32, nd, N, C, H, W, dy);
    b.src[1] = f.src[0];
    b.src[2] = f.src[1];
    b.src[3] = f.dst[1];
    b.src[4] = f.dst[2];
    b.dst[0] = mk(be, VT_F32, nd, N, C, H, W, NULL);
    b.dst[1] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
    b.dst[2] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
    run(be, &b, &ctx0);
    float *want_y = get(f.dst[0]), *want_rm = get(f.src[3]), *want_rv = get(f.src[4]);
    float *want_dx = get(b.dst[0]), *want_dg = get(b.dst[1]), *want_db = get(b.dst[2]);

    /* the parts: statistics, combined in double */
    vt_tensor *xs[4], *stats[4], *dys[4], *sums[4];
    double acc[2][64] = {{0}};
    assert_true(ranks <= 4);
    for (int r = 0; r < ranks; r++) {
        xs[r] = mk(be, VT_F32, nd, Nr, C, H, W, x + r * Er);
        dys[r] = mk(be, VT_F32, nd, Nr, C, H, W, dy + r * Er);
        stats[r] = mk(be, VT_F32, 2, 2, C, 1, 1, NULL);
        sums[r] = mk(be, VT_F32, 2, 2, C, 1, 1, NULL);
        vt_node s = node(VT_OP_BN_STATS);
        s.p.bn = bp;
        s.src[0] = xs[r];
        s.dst[0] = stats[r];
        run(be, &s, &ctx0);
    }
    float *st[4];
    for (int r = 0; r < ranks; r++) st[r] = get(stats[r]);
    float combined[128], summed[128];
    for (int64_t c = 0; c < C; c++) {
        double mean = 0.0, var = 0.0;
        for (int r = 0; r < ranks; r++) mean += (double)st[r][c] / ranks;
        for (int r = 0; r < ranks; r++) {
            double dm = (double)st[r][c] - mean;
            var += ((double)st[r][C + c] + dm * dm) / ranks;
        }
        combined[c] = (float)mean;
        combined[C + c] = (float)var;
    }
    for (int r = 0; r < ranks; r++) {
        free(st[r]);
        assert_int_equal(vt_tensor_upload(stats[r], combined, (size_t)(2 * C) * sizeof(float)), VT_OK);
    }
    /* apply, backward statistics, summed sums, backward apply */
    bp.count = M;
    float *y = malloc((size_t)E * sizeof *y), *dx = malloc((size_t)E * sizeof *dx);
    float dg_sum[64] = {0}, db_sum[64] = {0};
    assert_true(y && dx);
    vt_tensor *rm = mk(be, VT_F32, 1, C, 1, 1, 1, rm0), *rv = mk(be, VT_F32, 1, C, 1, 1, 1, rv0);
    for (int r = 0; r < ranks; r++) {
        vt_node a = node(VT_OP_BN_APPLY);
        a.p.bn = bp;
        a.src[0] = xs[r];
        a.src[1] = f.src[1];
        a.src[2] = f.src[2];
        a.src[3] = stats[r];
        a.dst[0] = mk(be, VT_F32, nd, Nr, C, H, W, NULL);
        a.dst[1] = r == 0 ? rm : NULL; /* every rank updates its own copy alike: one suffices */
        a.dst[2] = r == 0 ? rv : NULL;
        run(be, &a, &ctx0);
        assert_int_equal(vt_tensor_download(a.dst[0], y + r * Er, (size_t)Er * sizeof(float)), VT_OK);
        vt_tensor_free(a.dst[0]);
        vt_node s = node(VT_OP_BN_BWD_STATS);
        s.p.bn = bp;
        s.src[0] = dys[r];
        s.src[1] = xs[r];
        s.src[2] = stats[r];
        s.dst[0] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
        s.dst[1] = mk(be, VT_F32, 1, C, 1, 1, 1, NULL);
        s.dst[2] = sums[r];
        run(be, &s, &ctx0);
        float *dg = get(s.dst[0]), *db = get(s.dst[1]), *sm = get(sums[r]);
        for (int64_t c = 0; c < C; c++) {
            /* dgamma and dbeta are this rank's share of the sums, bit for bit */
            assert_true(dg[c] == sm[c] && db[c] == sm[C + c]);
            dg_sum[c] += dg[c];
            db_sum[c] += db[c];
            acc[0][c] += (double)sm[c];
            acc[1][c] += (double)sm[C + c];
        }
        free(dg);
        free(db);
        free(sm);
        vt_tensor_free(s.dst[0]);
        vt_tensor_free(s.dst[1]);
    }
    for (int64_t c = 0; c < C; c++) {
        summed[c] = (float)acc[0][c];
        summed[C + c] = (float)acc[1][c];
    }
    for (int r = 0; r < ranks; r++) {
        assert_int_equal(vt_tensor_upload(sums[r], summed, (size_t)(2 * C) * sizeof(float)), VT_OK);
        vt_node a = node(VT_OP_BN_BWD_APPLY);
        a.p.bn = bp;
        a.src[0] = dys[r];
        a.src[1] = xs[r];
        a.src[2] = f.src[1];
        a.src[3] = stats[r];
        a.src[4] = sums[r];
        a.dst[0] = mk(be, VT_F32, nd, Nr, C, H, W, NULL);
        run(be, &a, &ctx0);
        assert_int_equal(vt_tensor_download(a.dst[0], dx + r * Er, (size_t)Er * sizeof(float)), VT_OK);
        vt_tensor_free(a.dst[0]);
    }
    expect_close_scaled(y, want_y, E, tol, "y");
    expect_close_scaled(dx, want_dx, E, tol, "dx");
    float *got_rm = get(rm), *got_rv = get(rv);
    for (int64_t c = 0; c < C; c++) {
        assert_true(fabs((double)got_rm[c] - (double)want_rm[c]) <= tol * fabs((double)want_rm[c]));
        assert_true(fabs((double)got_rv[c] - (double)want_rv[c]) <= tol * fabs((double)want_rv[c]));
        /* the whole batch's mean exactly where one rank computed it alone */
        if (ranks == 1) {
            float *sm = get(f.dst[1]);
            assert_true(combined[c] == sm[c]);
            free(sm);
        }
    }
    expect_close_scaled(dg_sum, want_dg, C, tol, "dgamma");
    expect_close_scaled(db_sum, want_db, C, tol, "dbeta");
    free(got_rm);
    free(got_rv);
    for (int r = 0; r < ranks; r++) {
        vt_tensor_free(xs[r]);
        vt_tensor_free(dys[r]);
        vt_tensor_free(stats[r]);
        vt_tensor_free(sums[r]);
    }
    vt_tensor_free(rm);
    vt_tensor_free(rv);
    b.src[1] = b.src[2] = b.src[3] = b.src[4] = NULL;
    free_node(&b);
    free_node(&f);
    free(want_y);
    free(want_rm);
    free(want_rv);
    free(want_dx);
    free(want_dg);
    free(want_db);
    free(x);
    free(dy);
    free(y);
    free(dx);
}

/* One rank: the split ops are BATCHNORM / BATCHNORM_BWD up to the rounding of the f32 statistics. */
static void test_sync_bn_one_rank(void **state) {
    (void)state;
    vt_backend *bes[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        check_sync_bn(bes[k], 4, 7, 5, 3, 1, 1e-6);
        check_sync_bn(bes[k], 8, 64, 8, 8, 1, 1e-6);
        check_sync_bn(bes[k], 5, 13, 0, 0, 1, 1e-6);
    }
}

/* Two and four ranks in one process: their parts, combined on the host, are the whole batch's. */
static void test_sync_bn_ranks(void **state) {
    (void)state;
    vt_backend *bes[2] = {g_ref, g_fast};
    for (int k = 0; k < 2; k++) {
        check_sync_bn(bes[k], 4, 7, 5, 3, 2, 1e-5);
        check_sync_bn(bes[k], 8, 64, 8, 8, 2, 1e-5);
        check_sync_bn(bes[k], 8, 64, 8, 8, 4, 1e-5);
        check_sync_bn(bes[k], 6, 13, 0, 0, 2, 1e-5);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),           cmocka_unit_test(test_matmul_ref),
        cmocka_unit_test(test_conv_ref),       cmocka_unit_test(test_conv_adjoint_ref),
        cmocka_unit_test(test_pool_ref),       cmocka_unit_test(test_batchnorm_ref),
        cmocka_unit_test(test_softmax_ce_ref), cmocka_unit_test(test_dropout_ref),
        cmocka_unit_test(test_optim_ref),      cmocka_unit_test(test_batch_prep_ref),
        cmocka_unit_test(test_misc_ref),       cmocka_unit_test(test_fast_conv_im2col),
        cmocka_unit_test(test_fast_conv_avx2), cmocka_unit_test(test_fast_deterministic),
        cmocka_unit_test(test_options),        cmocka_unit_test(test_sync_bn_one_rank),
        cmocka_unit_test(test_sync_bn_ranks),  cmocka_unit_test(test_confusion_ref),
        cmocka_unit_test(test_prep_masks_ref), cmocka_unit_test(test_ce_ignore_ref),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
