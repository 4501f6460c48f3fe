/* CUDA backend tests: every op against the CPU reference (cuDNN and im2col convolutions alike), TF32
 * off/on, bit-exact dropout, determinism, a whole training step replayed as a CUDA graph with new
 * step values, counters, errors; and, on machines without a GPU, a clean "no device" answer. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"

/* ---- helpers ---- */

static vt_backend *open_cuda(const vt_backend_opts *opts) {
    const vt_backend_reg *r = vt_backend_reg_find("cuda");
    if (!r || r->device_count() <= 0) return NULL;
    vt_backend *be = NULL;
    if (vt_backend_init_by_name("cuda", 0, opts, &be) != VT_OK) {
        print_message("cuda init failed: %s\n", vt_last_error());
        return NULL;
    }
    return be;
}

#define NEED_CUDA(be)                                          \
    do {                                                       \
        if (!(be)) {                                           \
            print_message("SKIPPED: no CUDA device\n");        \
            skip();                                            \
            return; /* skip() longjmps; this tells gcc */      \
        }                                                      \
    } while (0)

static vt_backend *open_cpu_reference(void) {
    vt_backend_opts o = {0};
    o.reference = 1;
    vt_backend *be = NULL;
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    return be;
}

enum { GEN_UNIFORM = 0, GEN_POSITIVE, GEN_LABELS, GEN_PERM, GEN_U8, GEN_ZERO, GEN_SMALL, GEN_NAN /* NaN mid, +Inf last */ };

typedef struct tspec {
    int ndim; /* 0: operand absent */
    int64_t shape[4];
    vt_dtype dt;
    int gen;
} tspec;

typedef struct tcase {
    char name[96];
    vt_op op;
    vt_op_params p;
    tspec src[VT_MAX_SRC], dst[VT_MAX_DST];
    int label_k;
    vt_step_ctx ctx;
    double atol, rtol;
} tcase;

static tspec TS(int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    tspec t = {ndim, {a, b, c, d}, VT_F32, GEN_UNIFORM};
    return t;
}
static tspec T1(int64_t a) { return TS(1, a, 1, 1, 1); }
static tspec T2(int64_t a, int64_t b) { return TS(2, a, b, 1, 1); }
static tspec T4(int64_t a, int64_t b, int64_t c, int64_t d) { return TS(4, a, b, c, d); }
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
                   : s->gen == GEN_SMALL  ? vt_rng_uniform_range(rng, -0.05f, 0.05f)
                   : s->gen == GEN_ZERO   ? 0.0f
                                          : vt_rng_uniform_range(rng, -1.0f, 1.0f);
        if (s->gen == GEN_NAN && n > 0) f[n / 2] = NAN, f[n - 1] = INFINITY;
    } else if (s->dt == VT_I32 || s->dt == VT_U32) {
        int32_t *v = data;
        if (s->gen == GEN_PERM) vt_rng_permutation(rng, v, n);
        else if (s->gen == GEN_ZERO) memset(v, 0, (size_t)n * 4);
        else
            for (int64_t i = 0; i < n; i++) v[i] = (int32_t)vt_rng_below(rng, (uint32_t)(label_k > 0 ? label_k : 10));
    } else if (s->dt == VT_U8) {
        uint8_t *u = data;
        for (int64_t i = 0; i < n; i++) u[i] = (uint8_t)vt_rng_below(rng, 256);
    }
}

typedef struct outs {
    void *data[VT_MAX_SRC + VT_MAX_DST];
    int64_t n[VT_MAX_SRC + VT_MAX_DST];
    vt_dtype dt[VT_MAX_SRC + VT_MAX_DST];
} outs;

static void outs_free(outs *o) {
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) free(o->data[i]);
    memset(o, 0, sizeof *o);
}

/* Runs the case on be with inputs drawn from seed; returns the status and every operand afterwards
 * (outputs and in-place inputs alike). */
static vt_status run_case(vt_backend *be, const tcase *c, uint32_t seed, outs *out) {
    memset(out, 0, sizeof *out);
    vt_rng rng;
    vt_rng_init(&rng, seed, 11);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = c->op;
    n.p = c->p;
    snprintf(n.label, sizeof n.label, "%.40s", c->name);
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        const tspec *s = i < VT_MAX_SRC ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        if (!s->ndim) continue;
        assert_int_equal(vt_tensor_new(be, i < VT_MAX_SRC ? "src" : "dst", s->dt, s->ndim, s->shape, &ts[i]), VT_OK);
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
    vt_status st = vt_backend_compute(be, &n, &c->ctx);
    if (st == VT_OK) st = vt_backend_sync(be);
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        if (!ts[i]) continue;
        if (st == VT_OK) assert_int_equal(vt_tensor_download(ts[i], out->data[i], vt_tensor_nbytes(ts[i])), VT_OK);
        vt_tensor_free(ts[i]);
    }
    return st;
}

/* Normalised squared error plus an element-wise bound; NaN must agree. 1 when equal. */
static int close_enough(const char *what, const float *got, const float *ref, int64_t n, double atol, double rtol) {
    double num = 0, den = 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = ref[i];
        if (isnan(a) || isnan(b)) {
            if (isnan(a) != isnan(b) && ++bad && first < 0) first = i;
            continue;
        }
        num += (a - b) * (a - b);
        den += b * b;
        if (fabs(a - b) > atol + rtol * fabs(b) && ++bad && first < 0) first = i;
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

static int outs_match(const char *name, const outs *got, const outs *ref, double atol, double rtol) {
    int ok = 1;
    for (int t = 0; t < VT_MAX_SRC + VT_MAX_DST; t++) {
        if (!ref->data[t]) continue;
        char what[128];
        snprintf(what, sizeof what, "%.90s %s%d", name, t < VT_MAX_SRC ? "src" : "dst", t < VT_MAX_SRC ? t : t - VT_MAX_SRC);
        if (ref->dt[t] == VT_F32) {
            ok &= close_enough(what, got->data[t], ref->data[t], ref->n[t], atol, rtol);
        } else if (memcmp(got->data[t], ref->data[t], (size_t)ref->n[t] * vt_dtype_size(ref->dt[t])) != 0) {
            print_message("  %s: integer output differs\n", what);
            ok = 0;
        }
    }
    return ok;
}

/* ---- the case list ---- */

static int n_cases;
static tcase cases[200];

static tcase *add(const char *name, vt_op op) {
    if (n_cases == (int)(sizeof cases / sizeof cases[0])) fail_msg("more than %d cases: grow cases[]", n_cases);
    tcase *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->op = op;
    c->atol = 1e-4;
    c->rtol = 1e-3;
    c->ctx.seed = 4321;
    c->ctx.step = 0x300000005ull;
    c->ctx.lr = 0.05f;
    return c;
}

static void add_conv_cases(void) {
    const int cv[][8] = {/* N C H W K R S stride/pad code */
                         {1, 1, 5, 7, 1, 1, 1, 0},    {5, 7, 13, 13, 5, 3, 3, 1},  {2, 3, 7, 5, 13, 3, 5, 2},
                         {3, 5, 33, 13, 7, 5, 5, 3},  {64, 3, 32, 32, 16, 5, 5, 1}, {32, 64, 16, 16, 128, 3, 3, 4},
                         {16, 128, 8, 8, 128, 1, 1, 5}};
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        int N = cv[i][0], C = cv[i][1], H = cv[i][2], W = cv[i][3], K = cv[i][4], R = cv[i][5], S = cv[i][6];
        int code = cv[i][7];
        vt_conv2d_params cp = {1, 1, 0, 0, VT_ACT_NONE, 0.0f};
        if (code == 1) cp.pad_h = R / 2, cp.pad_w = S / 2;
        if (code == 2) cp.stride_h = 2, cp.stride_w = 1, cp.pad_h = 1, cp.pad_w = 2;
        if (code == 3) cp.stride_h = cp.stride_w = 3, cp.pad_h = cp.pad_w = 2;
        if (code == 4) cp.stride_h = cp.stride_w = 2, cp.pad_h = cp.pad_w = 1; /* ResNet downsampling 3x3 */
        if (code == 5) cp.stride_h = cp.stride_w = 2;                          /* ResNet 1x1 shortcut */
        if (i == 4) cp.pad_h = cp.pad_w = 2;
        int P = (H + 2 * cp.pad_h - R) / cp.stride_h + 1, Q = (W + 2 * cp.pad_w - S) / cp.stride_w + 1;
        char nm[96];
        snprintf(nm, sizeof nm, "conv2d x[%d,%d,%d,%d] w[%d,%d,%d,%d] s%d p%d", N, C, H, W, K, C, R, S, cp.stride_h,
                 cp.pad_h);
        tcase *c = add(nm, VT_OP_CONV2D);
        c->p.conv2d = cp;
        c->p.conv2d.act = (vt_act)(i % VT_ACT_COUNT);
        c->p.conv2d.act_alpha = 0.1f;
        c->src[0] = T4(N, C, H, W), c->src[1] = T4(K, C, R, S);
        if (i != 1) c->src[2] = T1(K);
        c->dst[0] = T4(N, K, P, Q);
        c->atol = 1e-3;
        snprintf(nm, sizeof nm, "conv2d_bwd_data dy[%d,%d,%d,%d] w[%d,%d,%d,%d]", N, K, P, Q, K, C, R, S);
        c = add(nm, VT_OP_CONV2D_BWD_DATA);
        c->p.conv2d = cp;
        c->src[0] = T4(N, K, P, Q), c->src[1] = T4(K, C, R, S), c->dst[0] = T4(N, C, H, W);
        c->atol = 1e-3;
        snprintf(nm, sizeof nm, "conv2d_bwd_weight dy[%d,%d,%d,%d] x[%d,%d,%d,%d]", N, K, P, Q, N, C, H, W);
        c = add(nm, VT_OP_CONV2D_BWD_WEIGHT);
        c->p.conv2d = cp;
        c->src[0] = T4(N, K, P, Q), c->src[1] = T4(N, C, H, W), c->dst[0] = T4(K, C, R, S);
        c->atol = 3e-3; /* sums over N*P*Q products */
    }
}

static void build_cases(void) {
    n_cases = 0;
    tcase *c;
    const int mm[][3] = {{1, 1, 1}, {5, 7, 13}, {13, 33, 7}, {33, 5, 1}, {64, 100, 1024}, {257, 129, 65}};
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
    c = add("linear 3072->1024 b64", VT_OP_MATMUL);
    c->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0.0f};
    c->src[0] = T2(64, 3072), c->src[1] = T2(1024, 3072), c->src[2] = T1(1024), c->dst[0] = T2(64, 1024);

    add_conv_cases();

    const int pl[][7] = {/* H W kh kw stride pad kind */
                         {5, 7, 2, 2, 2, 0, 0}, {13, 13, 3, 3, 2, 1, 0}, {7, 5, 3, 3, 1, 1, 1}, {33, 33, 2, 2, 2, 0, 1},
                         {8, 8, 8, 8, 1, 0, 1}, {32, 32, 2, 2, 2, 0, 0}, {9, 9, 3, 3, 2, 1, 1}};
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

    c = add("bias_grad [33,7]", VT_OP_BIAS_GRAD);
    c->src[0] = T2(33, 7), c->dst[0] = T1(7);
    c = add("bias_grad [64,16,32,32]", VT_OP_BIAS_GRAD);
    c->src[0] = T4(64, 16, 32, 32), c->dst[0] = T1(16);
    c->atol = 1e-3;
    const int64_t bn[][4] = {{5, 7, 1, 1}, {13, 5, 7, 7}, {64, 16, 32, 32}, {2, 3, 1, 1}, {256, 512, 1, 1}};
    for (int i = 0; i < 5; i++)
        for (int train = 0; train < 2; train++) {
            int nd = bn[i][2] == 1 ? 2 : 4;
            tspec x = TS(nd, bn[i][0], bn[i][1], bn[i][2], bn[i][3]);
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

    for (int k = VT_ACT_RELU; k < VT_ACT_COUNT; k++) {
        char nm[64];
        snprintf(nm, sizeof nm, "act %s [5,7,13]", vt_act_name((vt_act)k));
        c = add(nm, VT_OP_ACT);
        c->p.act = (vt_act_params){(vt_act)k, 0.01f};
        c->src[0] = TS(3, 5, 7, 13, 1), c->dst[0] = TS(3, 5, 7, 13, 1);
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

    const int ce[][2] = {{1, 1}, {5, 7}, {33, 13}, {64, 100}, {1000, 100}, {3, 1000}};
    for (int i = 0; i < 6; i++)
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
    c = add("argmax [7,1000]", VT_OP_ARGMAX);
    c->src[0] = T2(7, 1000), c->dst[0] = G(T1(7), VT_I32, GEN_ZERO);

    const int up[][4] = {{5, 7, 10, 14}, {7, 5, 13, 33}, {13, 13, 5, 7}, {1, 1, 3, 3}, {16, 16, 32, 32}};
    for (int i = 0; i < 5; i++)
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

    for (int aug = 0; aug < 2; aug++) {
        c = add(aug ? "batch_prep pad4 flip [64 of 100]" : "batch_prep plain [5 of 13]", VT_OP_BATCH_PREP);
        int D = aug ? 100 : 13, B = aug ? 64 : 5;
        c->p.prep = (vt_batch_prep_params){aug ? 4 : 0, aug, {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 99u};
        c->label_k = 100;
        c->src[0] = G(T4(D, 3, 32, 32), VT_U8, GEN_U8), c->src[1] = G(T1(D), VT_I32, GEN_LABELS);
        c->src[2] = G(T1(D), VT_I32, GEN_PERM);
        c->dst[0] = T4(B, 3, 32, 32), c->dst[1] = G(T1(B), VT_I32, GEN_ZERO);
        c->ctx.batch_start = aug ? 30 : 7;
        c->atol = 1e-6;
        c->rtol = 1e-6;
    }

    for (int v = 0; v < 3; v++) {
        c = add(v == 0 ? "sgd plain [33,13]" : v == 1 ? "sgd momentum wd [5,7]" : "sgd nesterov [1024]", VT_OP_SGD);
        c->p.sgd = (vt_sgd_params){1.0f, v ? 0.9f : 0.0f, v ? 5e-4f : 0.0f, v == 2};
        tspec t = v == 0 ? T2(33, 13) : v == 1 ? T2(5, 7) : T1(1024);
        c->src[0] = t, c->dst[0] = t;
        if (v) c->dst[1] = t;
    }
    for (int v = 0; v < 2; v++) {
        c = add(v ? "adamw [33,13]" : "adam l2 [1024]", VT_OP_ADAM);
        c->p.adam = (vt_adam_params){1.0f, 0.9f, 0.999f, 1e-8f, 0.01f, v, 2};
        c->ctx.step = 6;
        tspec t = v ? T2(33, 13) : T1(1024);
        c->src[0] = t, c->dst[0] = t, c->dst[1] = t, c->dst[2] = G(t, VT_F32, GEN_POSITIVE);
    }
    const vt_dtype fd[] = {VT_F32, VT_I32, VT_U32, VT_U8};
    const float fv[] = {-2.5f, -7.9f, 3e9f, 300.0f};
    for (int i = 0; i < 4; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "fill %s %g [5,7]", vt_dtype_name(fd[i]), (double)fv[i]);
        c = add(nm, VT_OP_FILL);
        c->p.fill.value = fv[i];
        c->dst[0] = G(T2(5, 7), fd[i], GEN_ZERO);
    }
    for (int bad = 0; bad < 2; bad++) {
        c = add(bad ? "nonfinite nan/inf [1031]" : "nonfinite finite [1031]", VT_OP_NONFINITE);
        c->src[0] = G(T1(1031), VT_F32, bad ? GEN_NAN : GEN_UNIFORM);
        c->dst[0] = G(T1(1), VT_I32, GEN_ZERO);
    }
}

/* Every case on cuda vs the CPU reference; conv_only limits it to the convolutions. */
static void compare_all(vt_backend *cu, int conv_only, const char *tag) {
    vt_backend *cpu = open_cpu_reference();
    build_cases();
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        int is_conv = c->op == VT_OP_CONV2D || c->op == VT_OP_CONV2D_BWD_DATA || c->op == VT_OP_CONV2D_BWD_WEIGHT;
        if (conv_only && !is_conv) continue;
        outs ref, got;
        vt_status sr = run_case(cpu, c, 2000u + (uint32_t)i, &ref);
        if (sr == VT_ERR_UNSUPPORTED) {
            print_message("SKIPPED %-48s (the CPU reference lacks it)\n", c->name);
            skipped++;
            outs_free(&ref);
            continue;
        }
        assert_int_equal(sr, VT_OK);
        vt_status so = run_case(cu, c, 2000u + (uint32_t)i, &got);
        if (so != VT_OK) print_message("FAILED %s: %s\n", c->name, vt_last_error());
        assert_int_equal(so, VT_OK);
        if (outs_match(c->name, &got, &ref, c->atol, c->rtol)) {
            passed++;
        } else {
            failed++;
            print_message("FAILED %s\n", c->name);
        }
        outs_free(&ref);
        outs_free(&got);
    }
    print_message("cuda (%s) vs cpu reference: %d passed, %d failed, %d skipped\n", tag, passed, failed, skipped);
    vt_backend_free(cpu);
    assert_int_equal(failed, 0);
    assert_true(passed > 0);
}

/* ---- tests ---- */

/* Runs everywhere: with no driver or GPU the registry answers 0 devices and says why, without crashing. */
static void test_no_device_is_clean(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("cuda");
    if (!r) {
        print_message("SKIPPED: the CUDA backend is not compiled in\n");
        skip();
    }
    vt_clear_error();
    int n = r->device_count();
    assert_true(n >= 0);
    if (n > 0) {
        print_message("%d CUDA device(s) present; the no-device path is not exercised here\n", n);
        return;
    }
    print_message("no CUDA device: %s\n", vt_last_error());
    assert_non_null(strstr(vt_last_error(), "cuda"));
    vt_device_info info;
    assert_int_equal(r->device_info(0, &info), VT_ERR_NOT_FOUND);
    vt_backend *be = NULL;
    assert_int_equal(vt_backend_init_by_name("cuda", -1, NULL, &be), VT_ERR_NOT_FOUND);
    assert_null(be);
    /* "auto" must still find a device elsewhere (the CPU at least). */
    assert_int_equal(vt_backend_init_by_name("auto", -1, NULL, &be), VT_OK);
    assert_non_null(be);
    assert_string_not_equal(be->info.backend, "cuda");
    vt_backend_free(be);
}

static void test_device_info(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("cuda");
    if (!r || r->device_count() <= 0) {
        print_message("SKIPPED: no CUDA device\n");
        skip();
    }
    for (int i = 0; i < r->device_count(); i++) {
        vt_device_info info;
        assert_int_equal(r->device_info(i, &info), VT_OK);
        assert_string_equal(info.backend, "cuda");
        assert_true(info.name[0] != 0);
        assert_true(info.memory_bytes > 0);
        assert_true(info.compute_units > 0);
        assert_true(info.peak_gflops > 0);
        assert_int_equal(info.is_cpu_hosted, 0);
        print_message("device %d: %s | %s | %s | %d SMs | %.0f GFLOP/s\n", i, info.name, info.driver, info.type,
                      info.compute_units, info.peak_gflops);
    }
    vt_device_info info;
    assert_int_equal(r->device_info(r->device_count(), &info), VT_ERR_NOT_FOUND);
}

static void test_ops_vs_cpu_reference(void **state) {
    (void)state;
    vt_backend *cu = open_cuda(NULL);
    NEED_CUDA(cu);
    compare_all(cu, 0, "cudnn if built");
    vt_backend_free(cu);
}

/* The convolution path of our own (im2col + cuBLAS) is what runs without cuDNN. */
static void test_conv_im2col_vs_cpu_reference(void **state) {
    (void)state;
    setenv("VT_CUDA_NO_CUDNN", "1", 1);
    vt_backend *cu = open_cuda(NULL);
    unsetenv("VT_CUDA_NO_CUDNN");
    NEED_CUDA(cu);
    compare_all(cu, 1, "im2col");
    vt_backend_free(cu);
}

/* TF32 is off by default (results match FP32 closely); on, they match loosely. */
static void test_tf32(void **state) {
    (void)state;
    vt_backend_opts o = {0};
    o.tf32 = 1;
    vt_backend *cu = open_cuda(&o);
    NEED_CUDA(cu);
    vt_backend *cpu = open_cpu_reference();
    tcase c;
    memset(&c, 0, sizeof c);
    c.op = VT_OP_MATMUL;
    snprintf(c.name, sizeof c.name, "matmul tf32");
    c.p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    c.src[0] = T2(128, 512), c.src[1] = T2(256, 512), c.dst[0] = T2(128, 256);
    outs ref, got;
    assert_int_equal(run_case(cpu, &c, 3u, &ref), VT_OK);
    assert_int_equal(run_case(cu, &c, 3u, &got), VT_OK);
    /* TF32 keeps 10 mantissa bits: each product is off by ~6e-4 relative, so the normalised error
     * is ~3e-7 and single elements may be off by a few 1e-3; far more means TF32 is broken. */
    const float *g = got.data[VT_MAX_SRC], *r = ref.data[VT_MAX_SRC];
    double num = 0, den = 0, worst = 0;
    for (int i = 0; i < 128 * 256; i++) {
        double d = (double)g[i] - r[i];
        num += d * d;
        den += (double)r[i] * r[i];
        if (fabs(d) > worst) worst = fabs(d);
    }
    print_message("tf32 matmul: nmse %.3g, worst %.3g\n", num / den, worst);
    assert_true(num / den < 1e-5);
    assert_true(worst < 0.1);
    outs_free(&ref);
    outs_free(&got);
    vt_backend_free(cpu);
    vt_backend_free(cu);
}

static void test_dropout_bit_exact(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    tcase c;
    memset(&c, 0, sizeof c);
    c.op = VT_OP_DROPOUT;
    snprintf(c.name, sizeof c.name, "dropout");
    c.p.dropout = (vt_dropout_params){0.3f, 4242u};
    c.ctx.seed = 17;
    c.ctx.step = 0x500000003ull;
    c.src[0] = T1(1001), c.dst[0] = T1(1001);
    outs o;
    assert_int_equal(run_case(be, &c, 9u, &o), VT_OK);
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
    outs_free(&o);
    vt_backend_free(be);
}

/* Reductions (BN, bias gradient, loss, weight gradients) repeat bit for bit. */
static void test_deterministic(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    build_cases();
    int checked = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        if (c->op != VT_OP_BATCHNORM && c->op != VT_OP_BATCHNORM_BWD && c->op != VT_OP_BIAS_GRAD &&
            c->op != VT_OP_SOFTMAX_CE && c->op != VT_OP_CONV2D_BWD_WEIGHT && c->op != VT_OP_CONV2D_BWD_DATA &&
            c->op != VT_OP_POOL2D_BWD && c->op != VT_OP_UPSAMPLE_BWD)
            continue;
        outs a, b;
        assert_int_equal(run_case(be, c, 31u, &a), VT_OK);
        assert_int_equal(run_case(be, c, 31u, &b), VT_OK);
        for (int t = 0; t < VT_MAX_SRC + VT_MAX_DST; t++)
            if (a.data[t]) assert_memory_equal(a.data[t], b.data[t], (size_t)a.n[t] * vt_dtype_size(a.dt[t]));
        outs_free(&a);
        outs_free(&b);
        checked++;
    }
    assert_true(checked >= 20);
    vt_backend_free(be);
}

/* ---- a whole training step as one graph ---- */

enum { D_ = 40, B_ = 8, C_ = 3, H_ = 8, K1 = 4, F_ = K1 * H_ * H_, NCLS = 10 };

enum {
    T_IMG, T_LAB, T_PERM, T_X, T_Y, T_W1, T_B1, T_H, T_HD, T_W2, T_B2, T_LOGIT, T_LOSS, T_MET, T_DLOGIT, T_DW2,
    T_DB2, T_M2, T_V2, T_DHD, T_DH, T_DH2, T_DW1, T_DB1, T_MW1, T_MB1, T_COUNT
};

typedef struct step_graph {
    vt_tensor *t[T_COUNT];
    vt_tensor hd2, dhd2; /* [B, F] views of hd and dhd */
    vt_node nodes[16];
    int n;
} step_graph;

static void sg_build(vt_backend *be, step_graph *g) {
    memset(g, 0, sizeof *g);
    const struct { int id; vt_dtype dt; int nd; int64_t s[4]; int gen; } spec[] = {
        {T_IMG, VT_U8, 4, {D_, C_, H_, H_}, GEN_U8},   {T_LAB, VT_I32, 1, {D_}, GEN_LABELS},
        {T_PERM, VT_I32, 1, {D_}, GEN_PERM},           {T_X, VT_F32, 4, {B_, C_, H_, H_}, GEN_ZERO},
        {T_Y, VT_I32, 1, {B_}, GEN_ZERO},              {T_W1, VT_F32, 4, {K1, C_, 3, 3}, GEN_SMALL},
        {T_B1, VT_F32, 1, {K1}, GEN_UNIFORM},          {T_H, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_HD, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO}, {T_W2, VT_F32, 2, {NCLS, F_}, GEN_SMALL},
        {T_B2, VT_F32, 1, {NCLS}, GEN_UNIFORM},        {T_LOGIT, VT_F32, 2, {B_, NCLS}, GEN_ZERO},
        {T_LOSS, VT_F32, 1, {1}, GEN_ZERO},            {T_MET, VT_F32, 1, {3}, GEN_ZERO},
        {T_DLOGIT, VT_F32, 2, {B_, NCLS}, GEN_ZERO},   {T_DW2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},
        {T_DB2, VT_F32, 1, {NCLS}, GEN_ZERO},          {T_M2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},
        {T_V2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},       {T_DHD, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_DH, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO}, {T_DH2, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_DW1, VT_F32, 4, {K1, C_, 3, 3}, GEN_ZERO},  {T_DB1, VT_F32, 1, {K1}, GEN_ZERO},
        {T_MW1, VT_F32, 4, {K1, C_, 3, 3}, GEN_ZERO},  {T_MB1, VT_F32, 1, {K1}, GEN_ZERO},
    };
    vt_rng rng;
    vt_rng_init(&rng, 77u, 3);
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        vt_tensor **t = &g->t[spec[i].id];
        assert_int_equal(vt_tensor_new(be, "t", spec[i].dt, spec[i].nd, spec[i].s, t), VT_OK);
        tspec ts = {spec[i].nd, {0}, spec[i].dt, spec[i].gen};
        size_t nb = vt_tensor_nbytes(*t);
        void *h = calloc(1, nb);
        fill_host(&ts, h, vt_tensor_nelem(*t), NCLS, &rng);
        assert_int_equal(vt_tensor_upload(*t, h, nb), VT_OK);
        free(h);
    }
    vt_tensor **t = g->t;
    g->hd2 = *t[T_HD];
    g->hd2.ndim = 2, g->hd2.shape[0] = B_, g->hd2.shape[1] = F_, g->hd2.shape[2] = g->hd2.shape[3] = 1;
    g->hd2.flags |= VT_TENSOR_VIEW;
    g->dhd2 = *t[T_DHD];
    g->dhd2.ndim = 2, g->dhd2.shape[0] = B_, g->dhd2.shape[1] = F_, g->dhd2.shape[2] = g->dhd2.shape[3] = 1;
    g->dhd2.flags |= VT_TENSOR_VIEW;
    vt_node *n;
#define NODE(o) (n = &g->nodes[g->n++], memset(n, 0, sizeof *n), n->op = (o), snprintf(n->label, sizeof n->label, "step%d", g->n))
    NODE(VT_OP_BATCH_PREP);
    n->p.prep = (vt_batch_prep_params){2, 1, {0.5f, 0.5f, 0.5f, 0}, {0.25f, 0.25f, 0.25f, 1}, 5u};
    n->src[0] = t[T_IMG], n->src[1] = t[T_LAB], n->src[2] = t[T_PERM], n->dst[0] = t[T_X], n->dst[1] = t[T_Y];
    NODE(VT_OP_CONV2D);
    n->p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_RELU, 0.0f};
    n->src[0] = t[T_X], n->src[1] = t[T_W1], n->src[2] = t[T_B1], n->dst[0] = t[T_H];
    NODE(VT_OP_DROPOUT);
    n->p.dropout = (vt_dropout_params){0.25f, 9u};
    n->src[0] = t[T_H], n->dst[0] = t[T_HD];
    NODE(VT_OP_MATMUL);
    n->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n->src[0] = &g->hd2, n->src[1] = t[T_W2], n->src[2] = t[T_B2], n->dst[0] = t[T_LOGIT];
    NODE(VT_OP_SOFTMAX_CE);
    n->p.ce = (vt_softmax_ce_params){0.1f, 1.0f / B_};
    n->src[0] = t[T_LOGIT], n->src[1] = t[T_Y], n->dst[0] = t[T_LOSS], n->dst[1] = t[T_MET];
    NODE(VT_OP_SOFTMAX_CE_BWD);
    n->p.ce = (vt_softmax_ce_params){0.1f, 1.0f / B_};
    n->src[0] = t[T_LOGIT], n->src[1] = t[T_Y], n->dst[0] = t[T_DLOGIT];
    NODE(VT_OP_MATMUL); /* dW2 = dlogits^T hd2 */
    n->p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n->src[0] = t[T_DLOGIT], n->src[1] = &g->hd2, n->dst[0] = t[T_DW2];
    NODE(VT_OP_BIAS_GRAD);
    n->src[0] = t[T_DLOGIT], n->dst[0] = t[T_DB2];
    NODE(VT_OP_MATMUL); /* dhd = dlogits W2 */
    n->p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n->src[0] = t[T_DLOGIT], n->src[1] = t[T_W2], n->dst[0] = &g->dhd2;
    NODE(VT_OP_DROPOUT_BWD);
    n->p.dropout = (vt_dropout_params){0.25f, 9u};
    n->src[0] = t[T_DHD], n->dst[0] = t[T_DH];
    NODE(VT_OP_ACT_BWD);
    n->p.act = (vt_act_params){VT_ACT_RELU, 0.0f};
    n->src[0] = t[T_DH], n->src[1] = t[T_H], n->dst[0] = t[T_DH2];
    NODE(VT_OP_CONV2D_BWD_WEIGHT);
    n->p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_NONE, 0.0f};
    n->src[0] = t[T_DH2], n->src[1] = t[T_X], n->dst[0] = t[T_DW1];
    NODE(VT_OP_BIAS_GRAD);
    n->src[0] = t[T_DH2], n->dst[0] = t[T_DB1];
    NODE(VT_OP_ADAM);
    /* eps well above 0: Adam turns tiny gradients into +-lr steps, which rounding could flip. */
    n->p.adam = (vt_adam_params){1.0f, 0.9f, 0.999f, 1e-3f, 0.01f, 1, 0};
    n->src[0] = t[T_DW2], n->dst[0] = t[T_W2], n->dst[1] = t[T_M2], n->dst[2] = t[T_V2];
    NODE(VT_OP_SGD);
    n->p.sgd = (vt_sgd_params){1.0f, 0.9f, 5e-4f, 1};
    n->src[0] = t[T_DW1], n->dst[0] = t[T_W1], n->dst[1] = t[T_MW1];
    NODE(VT_OP_SGD);
    n->p.sgd = (vt_sgd_params){0.5f, 0.9f, 0.0f, 0};
    n->src[0] = t[T_DB1], n->dst[0] = t[T_B1], n->dst[1] = t[T_MB1];
#undef NODE
    /* The biases of layer 2 stay fixed: the graph has no optimizer node for them. */
}

static void sg_free(step_graph *g) {
    for (int i = 0; i < T_COUNT; i++) vt_tensor_free(g->t[i]);
}

/* Runs `steps` steps (each with its own step, lr and batch start) and downloads what they change. */
static void sg_run(vt_backend *be, int steps, float *w1, float *w2, float *met, float *loss) {
    step_graph g;
    sg_build(be, &g);
    vt_graph_exec ex = {g.nodes, g.n, NULL, NULL};
    for (int s = 0; s < steps; s++) {
        vt_step_ctx ctx = {(uint64_t)s + 100u, 4242u, 0.1f / (float)(s + 1), (int64_t)(s * B_) % (D_ - B_)};
        assert_int_equal(vt_backend_graph_compute(be, &ex, &ctx), VT_OK);
    }
    assert_int_equal(vt_backend_sync(be), VT_OK);
    assert_int_equal(vt_tensor_download(g.t[T_W1], w1, K1 * C_ * 9 * 4), VT_OK);
    assert_int_equal(vt_tensor_download(g.t[T_W2], w2, NCLS * F_ * 4), VT_OK);
    assert_int_equal(vt_tensor_download(g.t[T_MET], met, 3 * 4), VT_OK);
    assert_int_equal(vt_tensor_download(g.t[T_LOSS], loss, 4), VT_OK);
    vt_graph_exec_reset(be, &ex);
    sg_free(&g);
}

static void test_graph_replay_matches_reference(void **state) {
    (void)state;
    vt_backend *cu = open_cuda(NULL);
    NEED_CUDA(cu);
    vt_backend *cpu = open_cpu_reference();
    enum { STEPS = 4 };
    float w1r[K1 * C_ * 9], w2r[NCLS * F_], metr[3], lossr;
    float w1g[K1 * C_ * 9], w2g[NCLS * F_], metg[3], lossg;
    sg_run(cpu, STEPS, w1r, w2r, metr, &lossr);
    memset(&cu->counters, 0, sizeof cu->counters);
    sg_run(cu, STEPS, w1g, w2g, metg, &lossg);
    /* First call eager + capture, then STEPS-1 replays. */
    assert_int_equal(cu->counters.submits, STEPS - 1);
    print_message("graph: loss %g (ref %g), metrics %g %g %g\n", (double)lossg, (double)lossr, (double)metg[0],
                  (double)metg[1], (double)metg[2]);
    assert_true(close_enough("graph w1", w1g, w1r, K1 * C_ * 9, 1e-4, 1e-3));
    assert_true(close_enough("graph w2", w2g, w2r, NCLS * F_, 1e-4, 1e-3));
    assert_true(close_enough("graph metrics", metg, metr, 3, 1e-4, 1e-4));
    assert_true(close_enough("graph loss", &lossg, &lossr, 1, 1e-5, 1e-4));
    assert_true(metg[2] == (float)(STEPS * B_));
    /* A replayed graph is deterministic too. */
    float w1b[K1 * C_ * 9], w2b[NCLS * F_], metb[3], lossb;
    sg_run(cu, STEPS, w1b, w2b, metb, &lossb);
    assert_memory_equal(w1b, w1g, sizeof w1b);
    assert_memory_equal(w2b, w2g, sizeof w2b);
    vt_backend_free(cpu);
    vt_backend_free(cu);
}

static void test_alloc_too_big(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_buffer *buf = NULL;
    assert_int_equal(vt_backend_buffer_alloc(be, (size_t)1 << 50, &buf), VT_ERR_OOM);
    assert_null(buf);
    print_message("message: %s\n", vt_last_error());
    assert_non_null(strstr(vt_last_error(), "free"));
    assert_non_null(strstr(vt_last_error(), "1073741824.0 MiB"));
    /* The device still works afterwards. */
    assert_int_equal(vt_backend_buffer_alloc(be, 1024, &buf), VT_OK);
    vt_backend_buffer_free(buf);
    vt_backend_free(be);
}

static void test_counters_and_transfers(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    /* Larger than the staging halves, and odd, so that the chunking is exercised. */
    int64_t n = (int64_t)5 * 1024 * 1024 + 3;
    vt_tensor *x, *y;
    assert_int_equal(vt_tensor_new(be, "x", VT_F32, 1, &n, &x), VT_OK);
    assert_int_equal(vt_tensor_new(be, "y", VT_F32, 1, &n, &y), VT_OK);
    float *h = malloc((size_t)n * 4), *back = malloc((size_t)n * 4);
    assert_non_null(h);
    assert_non_null(back);
    /* Fresh buffers read back as zeros. */
    assert_int_equal(vt_tensor_download(y, back, (size_t)n * 4), VT_OK);
    for (int64_t i = 0; i < n; i += 4099) assert_true(back[i] == 0.0f);
    for (int64_t i = 0; i < n; i++) h[i] = (float)(i % 1000) - 500.0f;
    memset(&be->counters, 0, sizeof be->counters);
    assert_int_equal(vt_tensor_upload(x, h, (size_t)n * 4), VT_OK);
    vt_node nd;
    memset(&nd, 0, sizeof nd);
    nd.op = VT_OP_ACT;
    nd.p.act.kind = VT_ACT_RELU;
    nd.src[0] = x;
    nd.dst[0] = y;
    vt_step_ctx ctx = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(vt_backend_compute(be, &nd, &ctx), VT_OK);
    assert_int_equal(be->counters.dispatches, 5);
    assert_int_equal(be->counters.syncs, 0);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    assert_int_equal(be->counters.syncs, 1);
    assert_int_equal(vt_tensor_download(y, back, (size_t)n * 4), VT_OK);
    assert_int_equal(be->counters.uploads, 1);
    assert_int_equal(be->counters.downloads, 1);
    for (int64_t i = 0; i < n; i++)
        if (back[i] != (h[i] > 0 ? h[i] : 0.0f)) fail_msg("element %lld: %g", (long long)i, (double)back[i]);
    free(h);
    free(back);
    vt_tensor_free(x);
    vt_tensor_free(y);
    vt_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_device_is_clean),
        cmocka_unit_test(test_device_info),
        cmocka_unit_test(test_counters_and_transfers),
        cmocka_unit_test(test_alloc_too_big),
        cmocka_unit_test(test_dropout_bit_exact),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_tf32),
        cmocka_unit_test(test_graph_replay_matches_reference),
        cmocka_unit_test(test_conv_im2col_vs_cpu_reference),
        cmocka_unit_test(test_ops_vs_cpu_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
