/* OpenCL backend tests: every op against the CPU reference on random inputs (odd and real shapes),
 * plus checks that need no reference: GEMM vs host loops, bit-exact dropout masks, determinism,
 * allocation errors, the on-disk program cache and the transfer counters. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"

/* ---- helpers ---- */

static vt_backend *open_opencl(const vt_backend_opts *opts) {
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (!r || r->device_count() <= 0) return NULL;
    vt_backend *be = NULL;
    vt_status s = vt_backend_init_by_name("opencl", -1, opts, &be);
    if (s != VT_OK) {
        print_message("opencl init failed: %s\n", vt_last_error());
        return NULL;
    }
    return be;
}

#define NEED_OPENCL(be)                                                    \
    do {                                                                   \
        if (!(be)) {                                                       \
            print_message("SKIPPED: no OpenCL device (or not compiled)\n"); \
            skip();                                                        \
        }                                                                  \
    } while (0)

enum { GEN_UNIFORM = 0, GEN_POSITIVE, GEN_LABELS, GEN_PERM, GEN_U8, GEN_ZERO, GEN_NAN };

typedef struct tspec {
    int ndim;  /* 0: operand absent */
    int64_t shape[4];
    vt_dtype dt;
    int gen;
} tspec;

typedef struct ocase {
    char name[96];
    vt_op op;
    vt_op_params p;
    tspec src[VT_MAX_SRC], dst[VT_MAX_DST];
    int label_k;  /* GEN_LABELS draws in [0, label_k) */
    vt_step_ctx ctx;
    double atol, rtol;
} ocase;

static tspec T(int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    tspec t = {ndim, {a, b, c, d}, VT_F32, GEN_UNIFORM};
    return t;
}
static tspec T1(int64_t a) { return T(1, a, 1, 1, 1); }
static tspec T2(int64_t a, int64_t b) { return T(2, a, b, 1, 1); }
static tspec T4(int64_t a, int64_t b, int64_t c, int64_t d) { return T(4, a, b, c, d); }
static tspec G(tspec t, vt_dtype dt, int gen) {
    t.dt = dt;
    t.gen = gen;
    return t;
}

static void fill_host(const tspec *s, void *data, int64_t n, int label_k, vt_rng *rng) {
    if (s->dt == VT_F32) {
        float *f = data;
        for (int64_t i = 0; i < n; i++)
            f[i] = s->gen == GEN_POSITIVE ? vt_rng_uniform_range(rng, 0.5f, 1.5f)
                   : s->gen == GEN_ZERO   ? 0.0f
                   : s->gen == GEN_NAN    ? NAN
                                          : vt_rng_uniform_range(rng, -1.0f, 1.0f);
    } else if (s->dt == VT_I32 || s->dt == VT_U32) {
        int32_t *v = data;
        if (s->gen == GEN_PERM)
            vt_rng_permutation(rng, v, n);
        else
            for (int64_t i = 0; i < n; i++) v[i] = (int32_t)vt_rng_below(rng, (uint32_t)(label_k > 0 ? label_k : 10));
    } else if (s->dt == VT_U8) {
        uint8_t *u = data;
        for (int64_t i = 0; i < n; i++) u[i] = (uint8_t)vt_rng_below(rng, 256);
    }
}

typedef struct run_out {
    void *data[VT_MAX_SRC + VT_MAX_DST];
    int64_t n[VT_MAX_SRC + VT_MAX_DST];
    vt_dtype dt[VT_MAX_SRC + VT_MAX_DST];
} run_out;

static void run_out_free(run_out *o) {
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) free(o->data[i]);
    memset(o, 0, sizeof *o);
}

/* Runs the case on be with inputs from seed; returns the op's status and every operand after the
 * run (dst and in-place src alike). */
static vt_status run_case(vt_backend *be, const ocase *c, uint32_t seed, run_out *out) {
    memset(out, 0, sizeof *out);
    vt_rng rng;
    vt_rng_init(&rng, seed, 7);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = c->op;
    n.p = c->p;
    snprintf(n.label, sizeof n.label, "%.40s", c->name);
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    vt_status st = VT_OK;
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        const tspec *s = i < VT_MAX_SRC ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        if (!s->ndim) continue;
        char name[16];
        snprintf(name, sizeof name, "%s%d", i < VT_MAX_SRC ? "src" : "dst", i < VT_MAX_SRC ? i : i - VT_MAX_SRC);
        assert_int_equal(vt_tensor_new(be, name, s->dt, s->ndim, s->shape, &ts[i]), VT_OK);
        int64_t ne = vt_tensor_nelem(ts[i]);
        size_t nb = vt_tensor_nbytes(ts[i]);
        void *h = calloc(1, nb);
        assert_non_null(h);
        fill_host(s, h, ne, c->label_k, &rng);
        assert_int_equal(vt_tensor_upload(ts[i], h, nb), VT_OK);
        out->data[i] = h;
        out->n[i] = ne;
        out->dt[i] = s->dt;
        if (i < VT_MAX_SRC) n.src[i] = ts[i];
        else n.dst[i - VT_MAX_SRC] = ts[i];
    }
    st = vt_backend_compute(be, &n, &c->ctx);
    if (st == VT_OK) st = vt_backend_sync(be);
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        if (!ts[i]) continue;
        if (st == VT_OK) assert_int_equal(vt_tensor_download(ts[i], out->data[i], vt_tensor_nbytes(ts[i])), VT_OK);
        vt_tensor_free(ts[i]);
    }
    return st;
}

/* Normalised squared error plus an element-wise bound; NaN must agree. Returns 1 when equal. */
static int compare(const char *what, const float *got, const float *ref, int64_t n, double atol, double rtol) {
    double num = 0, den = 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = ref[i];
        if (isnan(a) || isnan(b)) {
            if (isnan(a) != isnan(b)) {
                bad++;
                if (first < 0) first = i;
            }
            continue;
        }
        num += (a - b) * (a - b);
        den += b * b;
        if (fabs(a - b) > atol + rtol * fabs(b)) {
            bad++;
            if (first < 0) first = i;
        }
    }
    double nmse = den > 0 ? num / den : num;
    if (bad || nmse > 1e-6) {
        print_message("  %s: %lld of %lld differ, nmse %.3g; first at %lld: got %.9g want %.9g\n", what, (long long)bad,
                      (long long)n, nmse, (long long)first, first >= 0 ? (double)got[first] : 0.0,
                      first >= 0 ? (double)ref[first] : 0.0);
        return 0;
    }
    return 1;
}

/* ---- the case list ---- */

static int n_cases;
static ocase cases[160];

static ocase *add(const char *fmt, vt_op op) {
    ocase *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", fmt);
    c->op = op;
    c->atol = 1e-4;
    c->rtol = 1e-3;
    c->ctx.seed = 1234;
    c->ctx.step = 0x100000007ull;
    c->ctx.lr = 0.05f;
    return c;
}

static void build_cases(void) {
    n_cases = 0;
    ocase *c;
    /* MATMUL: odd sizes, every transpose, bias, activations, beta accumulate. */
    const int mm[][3] = {{1, 1, 1}, {5, 7, 13}, {13, 33, 7}, {33, 5, 1}, {64, 100, 1024}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (int t = 0; t < 4; t++) {
            int M = mm[i][0], N = mm[i][1], K = mm[i][2], ta = t & 1, tb = t >> 1;
            char nm[64];
            snprintf(nm, sizeof nm, "matmul %dx%dx%d t%d%d", M, N, K, ta, tb);
            c = add(nm, VT_OP_MATMUL);
            c->p.matmul = (vt_matmul_params){ta, tb, 1.0f, 0.0f, (vt_act)(t % VT_ACT_COUNT), 0.1f};
            c->src[0] = ta ? T2(K, M) : T2(M, K);
            c->src[1] = tb ? T2(N, K) : T2(K, N);
            if (t & 1) c->src[2] = T1(N);
            c->dst[0] = T2(M, N);
            if (t == 3) c->p.matmul.beta = 0.5f, c->p.matmul.alpha = 2.0f;
        }
    /* Outputs are overwritten, not read: stale NaN in C or y must not leak through (beta = 0). */
    for (int big = 0; big < 2; big++) {
        c = add(big ? "matmul 200x300x400 over NaN" : "matmul 5x7x13 over NaN", VT_OP_MATMUL);
        c->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
        c->src[0] = big ? T2(200, 400) : T2(5, 13), c->src[1] = big ? T2(300, 400) : T2(7, 13);
        c->dst[0] = G(big ? T2(200, 300) : T2(5, 7), VT_F32, GEN_NAN);
    }
    c = add("linear 3072->1024 b64", VT_OP_MATMUL);
    c->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0.0f};
    c->src[0] = T2(64, 3072), c->src[1] = T2(1024, 3072), c->src[2] = T1(1024), c->dst[0] = T2(64, 1024);

    /* Convolutions: odd shapes, stride, padding, and the real first layer 3->16 5x5 on 32x32, batch 64. */
    const int cv[][8] = {/* N C H W K R S stride/pad code */
                         {1, 1, 5, 7, 1, 1, 1, 0},   {5, 7, 13, 13, 5, 3, 3, 1}, {2, 3, 7, 5, 13, 3, 5, 2},
                         {3, 5, 33, 13, 7, 5, 5, 3}, {64, 3, 32, 32, 16, 5, 5, 1},
                         /* 16 and 32 channels: the backend's own convolution kernels, with tails */
                         {3, 5, 13, 11, 32, 3, 3, 1}, {2, 16, 16, 16, 16, 5, 5, 1}, {2, 4, 9, 15, 16, 7, 7, 2}};
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        int N = cv[i][0], C = cv[i][1], H = cv[i][2], W = cv[i][3], K = cv[i][4], R = cv[i][5], S = cv[i][6];
        int code = cv[i][7];
        vt_conv2d_params cp = {1, 1, 0, 0, VT_ACT_NONE, 0.0f};
        if (code == 1) cp.pad_h = R / 2, cp.pad_w = S / 2;
        if (code == 2) cp.stride_h = 2, cp.stride_w = 1, cp.pad_h = 1, cp.pad_w = 2;
        if (code == 3) cp.stride_h = cp.stride_w = 3, cp.pad_h = cp.pad_w = 2;
        if (i == 4) cp.pad_h = cp.pad_w = 2;
        int P = (H + 2 * cp.pad_h - R) / cp.stride_h + 1, Q = (W + 2 * cp.pad_w - S) / cp.stride_w + 1;
        char nm[96];
        snprintf(nm, sizeof nm, "conv2d x[%d,%d,%d,%d] w[%d,%d,%d,%d] s%d p%d", N, C, H, W, K, C, R, S, cp.stride_h,
                 cp.pad_h);
        c = add(nm, VT_OP_CONV2D);
        c->p.conv2d = cp;
        c->p.conv2d.act = i % 2 ? VT_ACT_RELU : VT_ACT_NONE;
        c->src[0] = T4(N, C, H, W), c->src[1] = T4(K, C, R, S);
        if (i != 1) c->src[2] = T1(K);
        c->dst[0] = T4(N, K, P, Q);
        snprintf(nm, sizeof nm, "conv2d_bwd_data dy[%d,%d,%d,%d] w[%d,%d,%d,%d]", N, K, P, Q, K, C, R, S);
        c = add(nm, VT_OP_CONV2D_BWD_DATA);
        c->p.conv2d = cp;
        c->src[0] = T4(N, K, P, Q), c->src[1] = T4(K, C, R, S), c->dst[0] = T4(N, C, H, W);
        snprintf(nm, sizeof nm, "conv2d_bwd_weight dy[%d,%d,%d,%d] x[%d,%d,%d,%d]", N, K, P, Q, N, C, H, W);
        c = add(nm, VT_OP_CONV2D_BWD_WEIGHT);
        c->p.conv2d = cp;
        c->src[0] = T4(N, K, P, Q), c->src[1] = T4(N, C, H, W), c->dst[0] = T4(K, C, R, S);
        c->atol = 1e-3; /* sums over N*P*Q = up to 65536 products */
    }

    /* Pooling: max / avg, overlapping windows, padding. */
    const int pl[][7] = {/* H W kh kw stride pad kind */
                         {5, 7, 2, 2, 2, 0, 0}, {13, 13, 3, 3, 2, 1, 0}, {7, 5, 3, 3, 1, 1, 1}, {33, 33, 2, 2, 2, 0, 1},
                         {8, 8, 8, 8, 1, 0, 1}, {32, 32, 2, 2, 2, 0, 0}};
    for (size_t i = 0; i < sizeof pl / sizeof pl[0]; i++) {
        int H = pl[i][0], W = pl[i][1], N = i == 5 ? 64 : 3, C = i == 5 ? 16 : 5;
        vt_pool2d_params pp = {(vt_pool_kind)pl[i][6], pl[i][2], pl[i][3], pl[i][4], pl[i][4], pl[i][5], pl[i][5]};
        int P = (H + 2 * pp.pad_h - pp.kh) / pp.stride_h + 1, Q = (W + 2 * pp.pad_w - pp.kw) / pp.stride_w + 1;
        char nm[96];
        snprintf(nm, sizeof nm, "pool2d %s %dx%d k%d s%d p%d", pp.kind ? "avg" : "max", H, W, pp.kh, pp.stride_h, pp.pad_h);
        c = add(nm, VT_OP_POOL2D);
        c->p.pool2d = pp;
        c->src[0] = T4(N, C, H, W), c->dst[0] = T4(N, C, P, Q);
        snprintf(nm, sizeof nm, "pool2d_bwd %s %dx%d k%d s%d p%d", pp.kind ? "avg" : "max", H, W, pp.kh, pp.stride_h,
                 pp.pad_h);
        c = add(nm, VT_OP_POOL2D_BWD);
        c->p.pool2d = pp;
        c->src[0] = T4(N, C, P, Q), c->src[1] = T4(N, C, H, W), c->dst[0] = T4(N, C, H, W);
    }

    /* Bias gradient, batch norm (2-D and 4-D, train and eval), forward and backward. */
    c = add("bias_grad [33,7]", VT_OP_BIAS_GRAD);
    c->src[0] = T2(33, 7), c->dst[0] = T1(7);
    c = add("bias_grad [64,16,32,32]", VT_OP_BIAS_GRAD);
    c->src[0] = T4(64, 16, 32, 32), c->dst[0] = T1(16);
    c->atol = 1e-3;
    const int64_t bn[][4] = {{5, 7, 1, 1}, {13, 5, 7, 7}, {64, 16, 32, 32}, {2, 3, 1, 1}};
    for (int i = 0; i < 4; i++)
        for (int train = 0; train < 2; train++) {
            int nd = bn[i][2] == 1 ? 2 : 4;
            tspec x = T(nd, bn[i][0], bn[i][1], bn[i][2], bn[i][3]);
            int64_t C = bn[i][1];
            char nm[96];
            snprintf(nm, sizeof nm, "batchnorm %s [%lld,%lld,%lld,%lld]", train ? "train" : "eval", (long long)bn[i][0],
                     (long long)C, (long long)bn[i][2], (long long)bn[i][3]);
            c = add(nm, VT_OP_BATCHNORM);
            c->p.bn = (vt_batchnorm_params){train, 0.1f, 1e-5f};
            c->src[0] = x, c->src[1] = T1(C), c->src[2] = T1(C), c->src[3] = T1(C);
            c->src[4] = G(T1(C), VT_F32, GEN_POSITIVE);
            c->dst[0] = x, c->dst[1] = T1(C), c->dst[2] = T1(C);
            snprintf(nm, sizeof nm, "batchnorm_bwd %s [%lld,%lld,%lld,%lld]", train ? "train" : "eval",
                     (long long)bn[i][0], (long long)C, (long long)bn[i][2], (long long)bn[i][3]);
            c = add(nm, VT_OP_BATCHNORM_BWD);
            c->p.bn = (vt_batchnorm_params){train, 0.1f, 1e-5f};
            c->src[0] = x, c->src[1] = x, c->src[2] = T1(C), c->src[3] = T1(C);
            c->src[4] = G(T1(C), VT_F32, GEN_POSITIVE);
            c->dst[0] = x, c->dst[1] = T1(C), c->dst[2] = T1(C);
            c->atol = 1e-3;
        }

    /* Element-wise ops. */
    for (int k = VT_ACT_RELU; k < VT_ACT_COUNT; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "act %s [5,7,13]", vt_act_name((vt_act)k));
        c = add(nm, VT_OP_ACT);
        c->p.act = (vt_act_params){(vt_act)k, 0.01f};
        c->src[0] = T(3, 5, 7, 13, 1), c->dst[0] = T(3, 5, 7, 13, 1);
        snprintf(nm, sizeof nm, "act_bwd %s [33,13]", vt_act_name((vt_act)k));
        c = add(nm, VT_OP_ACT_BWD);
        c->p.act = (vt_act_params){(vt_act)k, 0.2f};
        c->src[0] = T2(33, 13), c->src[1] = T2(33, 13), c->dst[0] = T2(33, 13);
    }
    c = add("add [1]", VT_OP_ADD);
    c->src[0] = T1(1), c->src[1] = T1(1), c->dst[0] = T1(1);
    c = add("add [64,16,32,32]", VT_OP_ADD);
    c->src[0] = T4(64, 16, 32, 32), c->src[1] = T4(64, 16, 32, 32), c->dst[0] = T4(64, 16, 32, 32);
    const float ps[] = {0.0f, 0.3f, 0.5f};
    for (int i = 0; i < 3; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "dropout p=%.1f [33,13]", (double)ps[i]);
        c = add(nm, VT_OP_DROPOUT);
        c->p.dropout = (vt_dropout_params){ps[i], 77u + (uint32_t)i};
        c->src[0] = T2(33, 13), c->dst[0] = T2(33, 13);
        c->atol = c->rtol = 0.0;
        snprintf(nm, sizeof nm, "dropout_bwd p=%.1f [5,7]", (double)ps[i]);
        c = add(nm, VT_OP_DROPOUT_BWD);
        c->p.dropout = (vt_dropout_params){ps[i], 5u};
        c->src[0] = T2(5, 7), c->dst[0] = T2(5, 7);
        c->atol = c->rtol = 0.0;
    }

    /* Loss and argmax. */
    const int ce[][2] = {{1, 1}, {5, 7}, {33, 13}, {64, 100}};
    for (int i = 0; i < 4; i++)
        for (int ls = 0; ls < 2; ls++) {
            int N = ce[i][0], K = ce[i][1];
            char nm[64];
            snprintf(nm, sizeof nm, "softmax_ce [%d,%d] ls%d", N, K, ls);
            c = add(nm, VT_OP_SOFTMAX_CE);
            c->p.ce = (vt_softmax_ce_params){ls ? 0.1f : 0.0f, 1.0f / (float)N};
            c->label_k = K;
            c->src[0] = T2(N, K), c->src[1] = G(T1(N), VT_I32, GEN_LABELS);
            c->dst[0] = T1(1);
            if (ls) c->dst[1] = T1(3);
            snprintf(nm, sizeof nm, "softmax_ce_bwd [%d,%d] ls%d", N, K, ls);
            c = add(nm, VT_OP_SOFTMAX_CE_BWD);
            c->p.ce = (vt_softmax_ce_params){ls ? 0.1f : 0.0f, 1.0f / (float)N};
            c->label_k = K;
            c->src[0] = T2(N, K), c->src[1] = G(T1(N), VT_I32, GEN_LABELS), c->dst[0] = T2(N, K);
        }
    c = add("argmax [33,13]", VT_OP_ARGMAX);
    c->src[0] = T2(33, 13), c->dst[0] = G(T1(33), VT_I32, GEN_ZERO);

    /* Upsampling: integer and fractional factors, both modes, forward and adjoint. */
    const int up[][4] = {{5, 7, 10, 14}, {7, 5, 13, 33}, {13, 13, 5, 7}, {1, 1, 3, 3}};
    for (int i = 0; i < 4; i++)
        for (int m = 0; m < 2; m++) {
            char nm[64];
            snprintf(nm, sizeof nm, "upsample %s %dx%d->%dx%d", m ? "bilinear" : "nearest", up[i][0], up[i][1],
                     up[i][2], up[i][3]);
            c = add(nm, VT_OP_UPSAMPLE);
            c->p.upsample.mode = (vt_upsample_mode)m;
            c->src[0] = T4(2, 3, up[i][0], up[i][1]), c->dst[0] = T4(2, 3, up[i][2], up[i][3]);
            snprintf(nm, sizeof nm, "upsample_bwd %s %dx%d->%dx%d", m ? "bilinear" : "nearest", up[i][0], up[i][1],
                     up[i][2], up[i][3]);
            c = add(nm, VT_OP_UPSAMPLE_BWD);
            c->p.upsample.mode = (vt_upsample_mode)m;
            c->src[0] = T4(2, 3, up[i][2], up[i][3]), c->dst[0] = T4(2, 3, up[i][0], up[i][1]);
        }

    /* Batch preparation: crop + flip, and neither. */
    for (int aug = 0; aug < 2; aug++) {
        c = add(aug ? "batch_prep pad4 flip [64 of 100]" : "batch_prep plain [5 of 13]", VT_OP_BATCH_PREP);
        int D = aug ? 100 : 13, B = aug ? 64 : 5;
        c->p.prep = (vt_batch_prep_params){aug ? 4 : 0, aug, {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 99u};
        c->label_k = 100;
        c->src[0] = G(T4(D, 3, 32, 32), VT_U8, GEN_U8), c->src[1] = G(T1(D), VT_I32, GEN_LABELS);
        c->src[2] = G(T1(D), VT_I32, GEN_PERM);
        c->dst[0] = T4(B, 3, 32, 32), c->dst[1] = G(T1(B), VT_I32, GEN_ZERO);
        c->ctx.batch_start = aug ? 30 : 7;
    }

    /* Optimizers (in-place) and fill. */
    for (int v = 0; v < 3; v++) {
        c = add(v == 0 ? "sgd plain [33,13]" : v == 1 ? "sgd momentum wd [5,7]" : "sgd nesterov [1024]", VT_OP_SGD);
        c->p.sgd = (vt_sgd_params){1.0f, v ? 0.9f : 0.0f, v ? 5e-4f : 0.0f, v == 2};
        tspec t = v == 0 ? T2(33, 13) : v == 1 ? T2(5, 7) : T1(1024);
        c->src[0] = t, c->dst[0] = t;
        if (v) c->dst[1] = t;
    }
    for (int v = 0; v < 2; v++) {
        c = add(v ? "adamw [33,13]" : "adam l2 [1024]", VT_OP_ADAM);
        c->p.adam = (vt_adam_params){1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, v, 0};
        c->ctx.step = 6;
        tspec t = v ? T2(33, 13) : T1(1024);
        c->src[0] = t, c->dst[0] = t, c->dst[1] = t, c->dst[2] = G(t, VT_F32, GEN_POSITIVE);
    }
    const vt_dtype fd[] = {VT_F32, VT_I32, VT_U32, VT_U8};
    for (int i = 0; i < 4; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "fill %s [5,7]", vt_dtype_name(fd[i]));
        c = add(nm, VT_OP_FILL);
        c->p.fill.value = i == 0 ? -2.5f : 7.0f;
        c->dst[0] = G(T2(5, 7), fd[i], GEN_ZERO);
    }
}

/* ---- tests ---- */

static void test_ops_vs_cpu_reference(void **state) {
    (void)state;
    vt_backend *ocl = open_opencl(NULL);
    NEED_OPENCL(ocl);
    vt_backend_opts ro = {0};
    ro.reference = 1;
    vt_backend *cpu = NULL;
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &ro, &cpu), VT_OK);
    build_cases();
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_cases; i++) {
        const ocase *c = &cases[i];
        run_out ref, got;
        vt_status sr = run_case(cpu, c, 1000u + (uint32_t)i, &ref);
        if (sr == VT_ERR_UNSUPPORTED) {
            print_message("SKIPPED %-48s (the CPU reference lacks it: %s)\n", c->name, vt_last_error());
            skipped++;
            run_out_free(&ref);
            continue;
        }
        assert_int_equal(sr, VT_OK);
        vt_status so = run_case(ocl, c, 1000u + (uint32_t)i, &got);
        if (so != VT_OK) print_message("FAILED %s: %s\n", c->name, vt_last_error());
        assert_int_equal(so, VT_OK);
        int ok = 1;
        for (int t = 0; t < VT_MAX_SRC + VT_MAX_DST; t++) {
            if (!ref.data[t]) continue;
            char what[128];
            snprintf(what, sizeof what, "%.90s %s%d", c->name, t < VT_MAX_SRC ? "src" : "dst",
                     t < VT_MAX_SRC ? t : t - VT_MAX_SRC);
            if (ref.dt[t] == VT_F32) {
                ok &= compare(what, got.data[t], ref.data[t], ref.n[t], c->atol, c->rtol);
            } else if (memcmp(got.data[t], ref.data[t], (size_t)ref.n[t] * vt_dtype_size(ref.dt[t])) != 0) {
                print_message("  %s: integer output differs\n", what);
                ok = 0;
            }
        }
        if (ok) passed++;
        else {
            failed++;
            print_message("FAILED %s\n", c->name);
        }
        run_out_free(&ref);
        run_out_free(&got);
    }
    print_message("opencl vs cpu reference: %d passed, %d failed, %d skipped of %d cases\n", passed, failed, skipped,
                  n_cases);
    vt_backend_free(cpu);
    vt_backend_free(ocl);
    assert_int_equal(failed, 0);
    if (passed == 0) {
        print_message("SKIPPED: the CPU reference implements none of the ops yet\n");
        skip();
    }
}

/* MATMUL against plain host loops: needs no other backend. */
static void test_matmul_vs_host(void **state) {
    (void)state;
    vt_backend *be = open_opencl(NULL);
    NEED_OPENCL(be);
    /* the last two take CLBlast's tiled kernel with the PoCL tuning (every dimension >= 64) */
    const int sz[][3] = {{1, 1, 1}, {5, 7, 13}, {33, 13, 5}, {70, 65, 129}, {128, 192, 64}};
    for (int i = 0; i < 5; i++)
        for (int t = 0; t < 4; t++) {
            int M = sz[i][0], N = sz[i][1], K = sz[i][2], ta = t & 1, tb = t >> 1;
            ocase c;
            memset(&c, 0, sizeof c);
            c.op = VT_OP_MATMUL;
            snprintf(c.name, sizeof c.name, "matmul host %d", t);
            c.p.matmul = (vt_matmul_params){ta, tb, 1.5f, t == 3 ? 0.5f : 0.0f, t == 2 ? VT_ACT_RELU : VT_ACT_NONE, 0};
            c.src[0] = ta ? T2(K, M) : T2(M, K);
            c.src[1] = tb ? T2(N, K) : T2(K, N);
            c.src[2] = T1(N);
            c.dst[0] = T2(M, N);
            run_out in, out;
            /* Same seed, so run_case draws the same inputs: capture them first with a zero-op. */
            assert_int_equal(run_case(be, &c, 5u, &out), VT_OK);
            /* Regenerate the inputs on the host. */
            vt_rng rng;
            vt_rng_init(&rng, 5u, 7);
            memset(&in, 0, sizeof in);
            for (int s = 0; s < 3; s++) {
                int64_t ne = c.src[s].shape[0] * c.src[s].shape[1];
                if (c.src[s].ndim == 1) ne = c.src[s].shape[0];
                in.data[s] = calloc((size_t)ne, 4);
                fill_host(&c.src[s], in.data[s], ne, 0, &rng);
            }
            float *C0 = calloc((size_t)M * N, 4);
            fill_host(&c.dst[0], C0, (int64_t)M * N, 0, &rng);
            const float *A = in.data[0], *B = in.data[1], *bias = in.data[2];
            float *want = calloc((size_t)M * N, 4);
            for (int m = 0; m < M; m++)
                for (int nn = 0; nn < N; nn++) {
                    double s = 0;
                    for (int k = 0; k < K; k++) {
                        float a = ta ? A[k * M + m] : A[m * K + k];
                        float b = tb ? B[nn * K + k] : B[k * N + nn];
                        s += (double)a * b;
                    }
                    double v = c.p.matmul.alpha * s + c.p.matmul.beta * C0[m * N + nn] + bias[nn];
                    if (c.p.matmul.act == VT_ACT_RELU && v < 0) v = 0;
                    want[m * N + nn] = (float)v;
                }
            char what[64];
            snprintf(what, sizeof what, "matmul %dx%dx%d t%d%d", M, N, K, ta, tb);
            assert_true(compare(what, out.data[VT_MAX_SRC], want, (int64_t)M * N, 1e-4, 1e-4));
            free(want);
            free(C0);
            run_out_free(&in);
            run_out_free(&out);
        }
    vt_backend_free(be);
}

/* The dropout mask must be bit-identical to vt_philox on the host. */
static void test_dropout_bit_exact(void **state) {
    (void)state;
    vt_backend *be = open_opencl(NULL);
    NEED_OPENCL(be);
    ocase c;
    memset(&c, 0, sizeof c);
    c.op = VT_OP_DROPOUT;
    snprintf(c.name, sizeof c.name, "dropout");
    c.p.dropout = (vt_dropout_params){0.3f, 4242u};
    c.ctx.seed = 17;
    c.ctx.step = 0x500000003ull;
    c.src[0] = T1(1001);
    c.dst[0] = T1(1001);
    run_out o;
    assert_int_equal(run_case(be, &c, 9u, &o), VT_OK);
    /* run_case overwrote the input copy with the downloaded input (unchanged); recompute on host. */
    const float *x = o.data[0], *y = o.data[VT_MAX_SRC];
    int kept = 0;
    for (int i = 0; i < 1001; i++) {
        vt_philox_out w = vt_philox(17u, 4242u, (uint32_t)(i / 4), 0, 3u, 5u);
        int keep = vt_u32_to_unit(w.v[i % 4]) >= 0.3f;
        float want = keep ? x[i] / (1.0f - 0.3f) : 0.0f;
        kept += keep;
        assert_memory_equal(&y[i], &want, sizeof want);
    }
    assert_true(kept > 600 && kept < 800);
    run_out_free(&o);
    vt_backend_free(be);
}

/* Reductions (BN statistics, bias gradient, loss) are bitwise identical run to run. */
static void test_deterministic(void **state) {
    (void)state;
    vt_backend *be = open_opencl(NULL);
    NEED_OPENCL(be);
    build_cases();
    int checked = 0;
    for (int i = 0; i < n_cases; i++) {
        const ocase *c = &cases[i];
        if (c->op != VT_OP_BATCHNORM && c->op != VT_OP_BATCHNORM_BWD && c->op != VT_OP_BIAS_GRAD &&
            c->op != VT_OP_SOFTMAX_CE && c->op != VT_OP_CONV2D_BWD_WEIGHT)
            continue;
        run_out a, b;
        assert_int_equal(run_case(be, c, 31u, &a), VT_OK);
        assert_int_equal(run_case(be, c, 31u, &b), VT_OK);
        for (int t = 0; t < VT_MAX_SRC + VT_MAX_DST; t++)
            if (a.data[t]) assert_memory_equal(a.data[t], b.data[t], (size_t)a.n[t] * vt_dtype_size(a.dt[t]));
        run_out_free(&a);
        run_out_free(&b);
        checked++;
    }
    assert_true(checked >= 10);
    vt_backend_free(be);
}

static void test_alloc_too_big(void **state) {
    (void)state;
    vt_backend *be = open_opencl(NULL);
    NEED_OPENCL(be);
    vt_buffer *buf = NULL;
    vt_status s = vt_backend_buffer_alloc(be, (size_t)1 << 50, &buf);
    assert_int_equal(s, VT_ERR_OOM);
    assert_null(buf);
    print_message("message: %s\n", vt_last_error());
    assert_non_null(strstr(vt_last_error(), "smaller batch"));
    assert_non_null(strstr(vt_last_error(), "1125899906842624"));
    vt_backend_free(be);
}

static void test_device_info(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (!r || r->device_count() <= 0) {
        print_message("SKIPPED: no OpenCL device (or not compiled)\n");
        skip();
    }
    for (int i = 0; i < r->device_count(); i++) {
        vt_device_info info;
        assert_int_equal(r->device_info(i, &info), VT_OK);
        assert_string_equal(info.backend, "opencl");
        assert_true(info.name[0] != 0);
        assert_true(info.memory_bytes > 0);
        assert_true(info.compute_units > 0);
        if (strcmp(info.type, "cpu") == 0) assert_int_equal(info.is_cpu_hosted, 1);
        print_message("device %d: %s | %s | %s | %s | %d CUs\n", i, info.name, info.vendor, info.driver, info.type,
                      info.compute_units);
    }
    vt_device_info info;
    assert_int_equal(r->device_info(r->device_count(), &info), VT_ERR_NOT_FOUND);
}

/* Program binaries land in cache_dir and a second backend builds from them with equal results. */
static void test_disk_cache(void **state) {
    (void)state;
    char dir[] = "/tmp/vt_ocl_cacheXXXXXX";
    assert_non_null(mkdtemp(dir));
    vt_backend_opts o = {0};
    o.cache_dir = dir;
    vt_backend *be = open_opencl(&o);
    if (!be) rmdir(dir);
    NEED_OPENCL(be);
    ocase c;
    memset(&c, 0, sizeof c);
    c.op = VT_OP_ACT;
    snprintf(c.name, sizeof c.name, "act");
    c.p.act = (vt_act_params){VT_ACT_SELU, 0};
    c.src[0] = T1(37), c.dst[0] = T1(37);
    run_out a, b;
    assert_int_equal(run_case(be, &c, 3u, &a), VT_OK);
    vt_backend_free(be);
    int files = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "opencl-", 7) == 0) files++;
    }
    closedir(d);
    assert_true(files >= 1);
    be = open_opencl(&o);
    assert_non_null(be);
    assert_int_equal(run_case(be, &c, 3u, &b), VT_OK);
    assert_memory_equal(a.data[VT_MAX_SRC], b.data[VT_MAX_SRC], 37 * 4);
    vt_backend_free(be);
    run_out_free(&a);
    run_out_free(&b);
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* compute_node only enqueues; transfers and waits are counted. */
static void test_counters(void **state) {
    (void)state;
    vt_backend *be = open_opencl(NULL);
    NEED_OPENCL(be);
    int64_t shp[1] = {100};
    vt_tensor *x, *y;
    assert_int_equal(vt_tensor_new(be, "x", VT_F32, 1, shp, &x), VT_OK);
    assert_int_equal(vt_tensor_new(be, "y", VT_F32, 1, shp, &y), VT_OK);
    float h[100];
    for (int i = 0; i < 100; i++) h[i] = (float)i - 50.0f;
    memset(&be->counters, 0, sizeof be->counters);
    assert_int_equal(vt_tensor_upload(x, h, sizeof h), VT_OK);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_ACT;
    n.p.act.kind = VT_ACT_RELU;
    n.src[0] = x;
    n.dst[0] = y;
    vt_step_ctx ctx = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(vt_backend_compute(be, &n, &ctx), VT_OK);
    assert_int_equal(be->counters.dispatches, 5);
    assert_int_equal(be->counters.syncs, 0);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    assert_int_equal(be->counters.syncs, 1);
    assert_int_equal(be->counters.submits, 1);
    assert_int_equal(vt_tensor_download(y, h, sizeof h), VT_OK);
    assert_int_equal(be->counters.uploads, 1);
    assert_int_equal(be->counters.downloads, 1);
    assert_int_equal(be->counters.bytes_down, sizeof h);
    for (int i = 0; i < 100; i++) assert_true(h[i] == (i > 50 ? (float)i - 50.0f : 0.0f));
    vt_tensor_free(x);
    vt_tensor_free(y);
    vt_backend_free(be);
}

/* Two backends on one device: the same GEMM gives the same bits however the other backend's GEMMs
 * were interleaved (CLBlast keeps the direct/indirect choice per device for the whole process). On
 * PoCL both kernels happen to sum in the same order, so this checks the results, not which kernel ran;
 * vt_cl_gemm keeps the choice per device under a lock for the latter. */
static void test_two_backends_one_device(void **state) {
    (void)state;
    vt_backend *a = open_opencl(NULL), *b = open_opencl(NULL);
    if (!a || !b) {
        vt_backend_free(a);
        vt_backend_free(b);
        print_message("SKIPPED: no OpenCL device (or not compiled)\n");
        skip();
    }
    ocase skinny, square;
    memset(&skinny, 0, sizeof skinny);
    skinny.op = VT_OP_MATMUL;
    snprintf(skinny.name, sizeof skinny.name, "matmul skinny");
    skinny.p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    skinny.src[0] = T2(16, 400); /* 16 rows: the direct kernel, although M*N*K is large */
    skinny.src[1] = T2(400, 2048);
    skinny.dst[0] = T2(16, 2048);
    square = skinny;
    snprintf(square.name, sizeof square.name, "matmul square");
    square.src[0] = T2(128, 128);
    square.src[1] = T2(128, 128);
    square.dst[0] = T2(128, 128);
    run_out first, other, again;
    assert_int_equal(run_case(a, &skinny, 3u, &first), VT_OK);
    assert_int_equal(run_case(b, &square, 4u, &other), VT_OK);
    assert_int_equal(run_case(a, &skinny, 3u, &again), VT_OK);
    assert_memory_equal(first.data[VT_MAX_SRC], again.data[VT_MAX_SRC], 16 * 2048 * sizeof(float));
    run_out_free(&first);
    run_out_free(&other);
    run_out_free(&again);
    vt_backend_free(a);
    vt_backend_free(b);
}

/* VT_OPENCL_CONV / VT_OPENCL_GEMM_NT: bad values are refused, good ones show in the configuration.
 * The variables are put back as found (ctest also runs this file with them set). */
static void set_or_unset(const char *name, const char *value) {
    if (value) assert_int_equal(setenv(name, value, 1), 0);
    else unsetenv(name);
}

static void test_own_kernels_env(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (!r || r->device_count() <= 0) {
        print_message("SKIPPED: no OpenCL device (or not compiled)\n");
        skip();
    }
    char *conv0 = getenv("VT_OPENCL_CONV") ? strdup(getenv("VT_OPENCL_CONV")) : NULL;
    char *nt0 = getenv("VT_OPENCL_GEMM_NT") ? strdup(getenv("VT_OPENCL_GEMM_NT")) : NULL;
    const char *bad[][2] = {{"foo", NULL}, {NULL, "bar"}, {"gemm", "gemm"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set_or_unset("VT_OPENCL_CONV", bad[i][0]);
        set_or_unset("VT_OPENCL_GEMM_NT", bad[i][1]);
        vt_backend *be = NULL;
        assert_int_not_equal(vt_backend_init_by_name("opencl", -1, NULL, &be), VT_OK);
        assert_null(be);
        assert_non_null(strstr(vt_last_error(), "VT_OPENCL_CONV"));
    }
    const char *good[][3] = {{"own", "own", "16/32-channel convs, batch x W^T"}, {"gemm", "clblast", "none for convs"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        set_or_unset("VT_OPENCL_CONV", good[i][0]);
        set_or_unset("VT_OPENCL_GEMM_NT", good[i][1]);
        vt_backend *be = open_opencl(NULL);
        assert_non_null(be);
        if (!strstr(be->info.config, good[i][2])) fail_msg("config '%s' lacks '%s'", be->info.config, good[i][2]);
        if (i == 1) assert_null(strstr(be->info.config, "W^T"));
        vt_backend_free(be);
    }
    set_or_unset("VT_OPENCL_CONV", conv0);
    set_or_unset("VT_OPENCL_GEMM_NT", nt0);
    free(conv0);
    free(nt0);
}

/* VT_CLBLAST_XGEMM: malformed values are refused with the parameter named; a complete one is used. */
static void test_clblast_tuning_env(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (!r || r->device_count() <= 0) {
        print_message("SKIPPED: no OpenCL device (or not compiled)\n");
        skip();
    }
    const char *bad[][2] = {{"MWG=64", "GEMMK is missing"},
                            {"BOGUS=1", "unknown parameter 'BOGUS'"},
                            {"MWG=64,MWG=32", "MWG given twice"},
                            {"MWG=-3", "MWG wants an integer"},
                            {"MWG=64x", "MWG wants an integer"},
                            {"MWG", "has no '='"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(setenv("VT_CLBLAST_XGEMM", bad[i][0], 1), 0);
        vt_backend *be = NULL;
        vt_status s = vt_backend_init_by_name("opencl", -1, NULL, &be);
        assert_int_not_equal(s, VT_OK);
        assert_null(be);
        if (!strstr(vt_last_error(), "VT_CLBLAST_XGEMM") || !strstr(vt_last_error(), bad[i][1]))
            fail_msg("VT_CLBLAST_XGEMM=%s: error '%s' should name '%s'", bad[i][0], vt_last_error(), bad[i][1]);
    }
    /* a complete, different tiling gives the same product as the built-in one */
    ocase c;
    memset(&c, 0, sizeof c);
    c.op = VT_OP_MATMUL;
    snprintf(c.name, sizeof c.name, "matmul env tuning");
    c.p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
    c.src[0] = T2(96, 160);
    c.src[1] = T2(128, 160);
    c.dst[0] = T2(96, 128);
    run_out ref, got;
    unsetenv("VT_CLBLAST_XGEMM");
    vt_backend *be = open_opencl(NULL);
    assert_non_null(be);
    assert_int_equal(run_case(be, &c, 9u, &ref), VT_OK);
    vt_backend_free(be);
    assert_int_equal(setenv("VT_CLBLAST_XGEMM",
                            "GEMMK=0,MWG=32,NWG=32,KWG=16,MDIMC=8,NDIMC=8,MDIMA=8,NDIMB=8,KWI=2,VWM=2,VWN=2,"
                            "STRM=0,STRN=0,SA=0,SB=0,KREG=1",
                            1),
                     0);
    be = open_opencl(NULL);
    assert_non_null(be);
    assert_int_equal(run_case(be, &c, 9u, &got), VT_OK);
    vt_backend_free(be);
    assert_true(compare("matmul with VT_CLBLAST_XGEMM", got.data[VT_MAX_SRC], ref.data[VT_MAX_SRC], 96 * 128, 1e-4,
                        1e-4));
    run_out_free(&ref);
    run_out_free(&got);
    /* back to the built-in parameters for whatever runs next in this process */
    unsetenv("VT_CLBLAST_XGEMM");
    be = open_opencl(NULL);
    vt_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_info),     cmocka_unit_test(test_counters),
        cmocka_unit_test(test_alloc_too_big),   cmocka_unit_test(test_matmul_vs_host),
        cmocka_unit_test(test_dropout_bit_exact), cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_disk_cache),      cmocka_unit_test(test_ops_vs_cpu_reference),
        cmocka_unit_test(test_two_backends_one_device), cmocka_unit_test(test_clblast_tuning_env),
        cmocka_unit_test(test_own_kernels_env),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* Without a device every test skipped: tell ctest (SKIP_RETURN_CODE 77) rather than pass. */
    const vt_backend_reg *r = vt_backend_reg_find("opencl");
    if (failed == 0 && (!r || r->device_count() <= 0)) return 77;
    return failed;
}
