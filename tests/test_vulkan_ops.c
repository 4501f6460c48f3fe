/* Vulkan backend tests: what is this backend's own (the op-against-reference checks of every op are the
 * conformance suite's): the options string, the op table, GELU's erf, the kernel paths against each
 * other, views at offsets below the descriptor alignment, a dataset bound in chunks, recorded graphs
 * replayed with changing step values, device info, errors, counters and the pipeline cache.
 * ctest runs it again with VT_VULKAN_OPTIONS set (validation layers, storage buffers, GEMM tiles). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"

static vt_backend *g_vk, *g_ref;

/* The backend reads VT_VULKAN_OPTIONS itself (validation=1 and the other paths of the ctest variants). */
static int setup(void **state) {
    (void)state;
    vt_backend_opts ro = {0};
    ro.reference = 1;
    if (vt_backend_init_by_name("cpu", 0, &ro, &g_ref) != VT_OK) return -1;
    const vt_backend_reg *r = vt_backend_reg_find("vulkan");
    if (!r || r->device_count() <= 0) return 0;
    vt_backend_opts vo = {0};
    if (vt_backend_init_by_name("vulkan", -1, &vo, &g_vk) != VT_OK) {
        print_message("vulkan init failed: %s\n", vt_last_error());
        g_vk = NULL;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    vt_backend_free(g_vk);
    vt_backend_free(g_ref);
    return 0;
}

#define NEED_VULKAN()                                                       \
    do {                                                                    \
        if (!g_vk) {                                                        \
            print_message("SKIPPED: no Vulkan device (or not compiled)\n"); \
            skip();                                                         \
        }                                                                   \
    } while (0)

/* ---- case table ---- */

/* G_SEG: i32 labels in [0,k) with ignored ones mixed in (k, 255, -1); G_MASK: u8 class ids below k and 255;
 * G_COUNT: small non-negative i32 (an accumulator that already holds counts). */
enum {
    G_NORMAL = 0,
    G_POS,
    G_LABEL,
    G_PERM,
    G_U8,
    G_ZERO,
    G_NAN, /* normal, NaN in the middle, -Inf last */
    G_SEG,
    G_MASK,
    G_COUNT
};

typedef struct tdesc {
    int nd; /* 0 = absent */
    int64_t s[4];
    vt_dtype dt;
    int gen;
} tdesc;

typedef struct tcase {
    char name[80];
    vt_op op;
    vt_op_params p;
    tdesc src[VT_MAX_SRC], dst[VT_MAX_DST];
    int k; /* labels in [0,k), perm of [0,k) */
    vt_step_ctx ctx;
    double atol, rtol;
} tcase;

static tdesc D(vt_dtype dt, int gen, int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
    tdesc t = {nd, {a, b, c, d}, dt, gen};
    return t;
}
static tdesc F1(int64_t a) { return D(VT_F32, G_NORMAL, 1, a, 1, 1, 1); }
static tdesc F2(int64_t a, int64_t b) { return D(VT_F32, G_NORMAL, 2, a, b, 1, 1); }
static tdesc F4(int64_t a, int64_t b, int64_t c, int64_t d) { return D(VT_F32, G_NORMAL, 4, a, b, c, d); }

static tcase cases[96];
static int n_cases;

static tcase *add(vt_op op, const char *fmt, ...) {
    if (n_cases == (int)(sizeof cases / sizeof cases[0])) fail_msg("more than %d cases: grow cases[]", n_cases);
    tcase *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    c->op = op;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->atol = 1e-5;
    c->rtol = 1e-4;
    c->ctx = (vt_step_ctx){7, 1234u, 0.05f, 0};
    return c;
}

/* The GEMM and convolution shapes that the two GEMM shaders must agree on bit for bit. */
static void build_cases(void) {
    if (n_cases) return;
    /* MATMUL: odd shapes, every transpose, bias, activations, alpha/beta; a real MLP layer */
    static const int64_t mm[][3] = {{1, 1, 1}, {5, 7, 13}, {33, 13, 5}, {13, 33, 7}, {7, 600, 9}, {64, 96, 100}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++)
        for (int t = 0; t < 4; t++) {
            int64_t M = mm[i][0], K = mm[i][1], N = mm[i][2];
            int ta = t & 1, tb = t >> 1;
            tcase *c =
                add(VT_OP_MATMUL, "matmul %lldx%lldx%lld ta%d tb%d", (long long)M, (long long)K, (long long)N, ta, tb);
            c->p.matmul = (vt_matmul_params){ta, tb, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
            c->src[0] = ta ? F2(K, M) : F2(M, K);
            c->src[1] = tb ? F2(N, K) : F2(K, N);
            c->dst[0] = F2(M, N);
            if (i % 2 == 1) c->src[2] = F1(N);
            if (i == 3) c->p.matmul.act = (vt_act)(1 + t % 3), c->p.matmul.act_alpha = 0.1f;
            if (i == 2) c->p.matmul.alpha = 0.5f, c->p.matmul.beta = 0.75f;
        }
    {
        tcase *c = add(VT_OP_MATMUL, "matmul mlp 64x3072x256 bias relu");
        c->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0.0f};
        c->src[0] = F2(64, 3072);
        c->src[1] = F2(256, 3072);
        c->src[2] = F1(256);
        c->dst[0] = F2(64, 256);
        c->atol = 1e-3; /* sums of 3072 products of magnitude ~1 */
        c = add(VT_OP_MATMUL, "matmul dW 100x64x1024 ta (split K)");
        c->p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
        c->src[0] = F2(1024, 100);
        c->src[1] = F2(1024, 64);
        c->dst[0] = F2(100, 64);
        c->atol = 1e-4;
    }
    /* convolutions: {N,C,H,W, K,R,S, stride, pad} */
    static const int cv[][9] = {{1, 1, 1, 1, 1, 1, 1, 1, 0},    {2, 3, 7, 7, 5, 3, 3, 1, 1},
                                {2, 5, 13, 13, 7, 3, 3, 2, 1},  {3, 4, 9, 7, 6, 1, 1, 1, 0},
                                {1, 2, 13, 11, 3, 5, 5, 2, 2},  {64, 3, 32, 32, 16, 5, 5, 1, 2},
                                {8, 16, 16, 16, 32, 3, 3, 1, 1}};
    for (size_t i = 0; i < sizeof cv / sizeof cv[0]; i++) {
        const int *g = cv[i];
        int64_t P = (g[2] + 2 * g[8] - g[5]) / g[7] + 1, Q = (g[3] + 2 * g[8] - g[6]) / g[7] + 1;
        vt_conv2d_params cp = {g[7], g[7], g[8], g[8], VT_ACT_NONE, 0.0f};
        for (int op = 0; op < 3; op++) {
            static const vt_op ops[3] = {VT_OP_CONV2D, VT_OP_CONV2D_BWD_DATA, VT_OP_CONV2D_BWD_WEIGHT};
            tcase *c = add(ops[op], "%s x[%d,%d,%d,%d] w[%d,%d,%d,%d] s%d p%d", vt_op_name(ops[op]), g[0], g[1], g[2],
                           g[3], g[4], g[1], g[5], g[6], g[7], g[8]);
            c->p.conv2d = cp;
            tdesc x = F4(g[0], g[1], g[2], g[3]), w = F4(g[4], g[1], g[5], g[6]), y = F4(g[0], g[4], P, Q);
            if (op == 0) {
                c->src[0] = x, c->src[1] = w, c->dst[0] = y;
                if (i % 2 == 1) {
                    c->src[2] = F1(g[4]);
                    c->p.conv2d.act = VT_ACT_RELU;
                }
            } else if (op == 1) {
                c->src[0] = y, c->src[1] = w, c->dst[0] = x;
            } else {
                c->src[0] = y, c->src[1] = x, c->dst[0] = w;
            }
            c->atol = op == 2 && g[0] * g[2] * g[3] > 10000 ? 2e-3 : 2e-4; /* dw sums over N*P*Q terms */
            c->rtol = 2e-4;
        }
        /* CONV2D_TRANSPOSE, the adjoint of the forward above: y's shape in, x's shape out, bias on odd rows */
        tcase *c = add(VT_OP_CONV2D_TRANSPOSE, "conv2d_transpose x[%d,%d,%lld,%lld] w[%d,%d,%d,%d] s%d p%d", g[0], g[4],
                       (long long)P, (long long)Q, g[4], g[1], g[5], g[6], g[7], g[8]);
        c->p.conv2d = cp;
        c->src[0] = F4(g[0], g[4], P, Q);
        c->src[1] = F4(g[4], g[1], g[5], g[6]);
        if (i % 2 == 1) c->src[2] = F1(g[1]);
        c->dst[0] = F4(g[0], g[1], g[2], g[3]);
    }
    /* CONV2D_TRANSPOSE at the top of PyTorch's output_padding range, and FCN-32s's upsampling (R = S = 64,
     * stride 32, padding 16) on a few channels */
    {
        tcase *c = add(VT_OP_CONV2D_TRANSPOSE, "conv2d_transpose x[2,3,7,6] w[3,4,5,5] s2 p2 output_padding 1");
        c->p.conv2d = (vt_conv2d_params){2, 2, 2, 2, VT_ACT_NONE, 0.0f};
        c->src[0] = F4(2, 3, 7, 6);
        c->src[1] = F4(3, 4, 5, 5);
        c->src[2] = F1(4);
        c->dst[0] = F4(2, 4, 14, 12);
        c = add(VT_OP_CONV2D_TRANSPOSE, "conv2d_transpose x[1,3,2,3] w[3,5,64,64] s32 p16 (fcn-32s)");
        c->p.conv2d = (vt_conv2d_params){32, 32, 16, 16, VT_ACT_NONE, 0.0f};
        c->src[0] = F4(1, 3, 2, 3);
        c->src[1] = F4(3, 5, 64, 64);
        c->src[2] = F1(5);
        c->dst[0] = F4(1, 5, 64, 96);
    }
}

/* ---- running a case ---- */

static void gen_host(const tdesc *d, void *h, int64_t n, int k, vt_rng *rng) {
    switch (d->gen) {
    case G_NORMAL:
        for (int64_t i = 0; i < n; i++) ((float *)h)[i] = vt_rng_normal(rng);
        break;
    case G_POS:
        for (int64_t i = 0; i < n; i++) ((float *)h)[i] = 0.1f + vt_rng_uniform(rng);
        break;
    case G_LABEL:
        for (int64_t i = 0; i < n; i++) ((int32_t *)h)[i] = (int32_t)vt_rng_below(rng, (uint32_t)k);
        break;
    case G_PERM: vt_rng_permutation(rng, (int32_t *)h, n); break;
    case G_U8:
        for (int64_t i = 0; i < n; i++) ((uint8_t *)h)[i] = (uint8_t)vt_rng_below(rng, 256);
        break;
    case G_NAN:
        for (int64_t i = 0; i < n; i++) ((float *)h)[i] = vt_rng_normal(rng);
        ((float *)h)[n / 2] = NAN;
        ((float *)h)[n - 1] = -INFINITY;
        break;
    case G_SEG:
        for (int64_t i = 0; i < n; i++) {
            uint32_t v = vt_rng_below(rng, (uint32_t)k + 3);
            ((int32_t *)h)[i] = v < (uint32_t)k ? (int32_t)v : v == (uint32_t)k ? k : v == (uint32_t)k + 1 ? 255 : -1;
        }
        break;
    case G_MASK:
        for (int64_t i = 0; i < n; i++) {
            uint32_t v = vt_rng_below(rng, (uint32_t)k + 1);
            ((uint8_t *)h)[i] = (uint8_t)(v < (uint32_t)k ? v : 255u);
        }
        break;
    case G_COUNT:
        for (int64_t i = 0; i < n; i++) ((int32_t *)h)[i] = (int32_t)vt_rng_below(rng, 50);
        break;
    default: memset(h, 0, (size_t)n * vt_dtype_size(d->dt)); break;
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

/* Same inputs on any backend (from seed); afterwards every operand is read back. */
static vt_status run_case(vt_backend *be, const tcase *c, uint32_t seed, outs *o) {
    memset(o, 0, sizeof *o);
    vt_rng rng;
    vt_rng_init(&rng, seed, 3);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = c->op;
    n.p = c->p;
    snprintf(n.label, sizeof n.label, "%.40s", c->name);
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        const tdesc *d = i < VT_MAX_SRC ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        if (!d->nd) continue;
        assert_int_equal(vt_tensor_new(be, "t", d->dt, d->nd, d->s, &ts[i]), VT_OK);
        size_t nb = vt_tensor_nbytes(ts[i]);
        o->data[i] = calloc(1, nb);
        assert_non_null(o->data[i]);
        o->n[i] = vt_tensor_nelem(ts[i]);
        o->dt[i] = d->dt;
        gen_host(d, o->data[i], o->n[i], c->k, &rng);
        assert_int_equal(vt_tensor_upload(ts[i], o->data[i], nb), VT_OK);
        if (i < VT_MAX_SRC) n.src[i] = ts[i];
        else n.dst[i - VT_MAX_SRC] = ts[i];
    }
    vt_status st = vt_backend_compute(be, &n, &c->ctx);
    if (st == VT_OK) st = vt_backend_sync(be);
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        if (!ts[i]) continue;
        if (st == VT_OK) assert_int_equal(vt_tensor_download(ts[i], o->data[i], vt_tensor_nbytes(ts[i])), VT_OK);
        vt_tensor_free(ts[i]);
    }
    return st;
}

/* Normalised squared error, element-wise atol + rtol, NaN agreement. */
static int close_enough(const char *what, const float *got, const float *ref, int64_t n, double atol, double rtol) {
    double num = 0, den = 0;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        double a = got[i], b = ref[i];
        int na = isnan(a), nb = isnan(b);
        if (na || nb) {
            if (na != nb && !bad++) first = i;
            continue;
        }
        num += (a - b) * (a - b);
        den += b * b;
        if (fabs(a - b) > atol + rtol * fabs(b) && !bad++) first = i;
    }
    double nmse = den > 0 ? num / den : num;
    if (bad || nmse > 1e-7) {
        print_message("  %s: %lld of %lld differ, nmse %.3g; first %lld: got %.9g want %.9g\n", what, (long long)bad,
                      (long long)n, nmse, (long long)first, first >= 0 ? (double)got[first] : 0.0,
                      first >= 0 ? (double)ref[first] : 0.0);
        return 0;
    }
    return 1;
}

static int compare_outs(const tcase *c, const outs *g, const outs *r) {
    int ok = 1;
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        if (!g->data[i]) continue;
        char what[120];
        snprintf(what, sizeof what, "%s %s%d", c->name, i < VT_MAX_SRC ? "src" : "dst",
                 i < VT_MAX_SRC ? i : i - VT_MAX_SRC);
        if (g->dt[i] == VT_F32) {
            ok &= close_enough(what, g->data[i], r->data[i], g->n[i], c->atol, c->rtol);
        } else if (memcmp(g->data[i], r->data[i], (size_t)g->n[i] * vt_dtype_size(g->dt[i])) != 0) {
            print_message("  %s: integer output differs\n", what);
            ok = 0;
        }
    }
    return ok;
}

/* Tensors at offsets that are multiples of 4 but not of the descriptor alignment. */
static void test_unaligned_views(void **state) {
    (void)state;
    NEED_VULKAN();
    vt_backend *bes[2] = {g_vk, g_ref};
    float res[2][35];
    for (int b = 0; b < 2; b++) {
        vt_buffer *buf;
        assert_int_equal(vt_backend_buffer_alloc(bes[b], 4096, &buf), VT_OK);
        vt_tensor a, w, y;
        int64_t sa[2] = {5, 7}, sw[2] = {7, 7}, sy[2] = {5, 7};
        vt_tensor_init(&a, "a", VT_F32, 2, sa);
        vt_tensor_init(&w, "w", VT_F32, 2, sw);
        vt_tensor_init(&y, "y", VT_F32, 2, sy);
        a.buf = w.buf = y.buf = buf;
        a.offset = 4;
        w.offset = 4 + 35 * 4 + 8;
        y.offset = 1000 + 12;
        float ha[35], hw[49];
        for (int i = 0; i < 35; i++) ha[i] = (float)(i % 7) - 2.5f;
        for (int i = 0; i < 49; i++) hw[i] = (float)(i % 5) * 0.25f;
        assert_int_equal(vt_tensor_upload(&a, ha, sizeof ha), VT_OK);
        assert_int_equal(vt_tensor_upload(&w, hw, sizeof hw), VT_OK);
        vt_node n;
        memset(&n, 0, sizeof n);
        n.op = VT_OP_MATMUL;
        n.p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0.0f};
        n.src[0] = &a;
        n.src[1] = &w;
        n.dst[0] = &y;
        vt_step_ctx ctx = {0};
        assert_int_equal(vt_backend_compute(bes[b], &n, &ctx), VT_OK);
        assert_int_equal(vt_backend_sync(bes[b]), VT_OK);
        assert_int_equal(vt_tensor_download(&y, res[b], sizeof res[b]), VT_OK);
        /* the bytes before the view stay untouched */
        float before[3];
        vt_tensor pre;
        int64_t sp[1] = {3};
        vt_tensor_init(&pre, "pre", VT_F32, 1, sp);
        pre.buf = buf;
        pre.offset = 1000;
        assert_int_equal(vt_tensor_download(&pre, before, sizeof before), VT_OK);
        for (int i = 0; i < 3; i++) assert_true(before[i] == 0.0f);
        vt_backend_buffer_free(buf);
    }
    assert_true(close_enough("unaligned matmul", res[0], res[1], 35, 1e-5, 1e-5));
}

/* ---- recorded graphs ---- */

typedef struct mlp_graph {
    vt_tensor *x, *w1, *b1, *h, *hd, *w2, *logits, *labels, *loss, *metrics, *dlogits, *dw2, *dhd, *dh, *mom;
    vt_node nodes[10];
    int n;
} mlp_graph;

static vt_tensor *newt(vt_backend *be, vt_dtype dt, int nd, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    vt_tensor *t;
    assert_int_equal(vt_tensor_new(be, "g", dt, nd, s, &t), VT_OK);
    return t;
}

static void mlp_build(vt_backend *be, mlp_graph *g) {
    memset(g, 0, sizeof *g);
    const int B = 13, I = 33, H = 20, K = 7;
    g->x = newt(be, VT_F32, 2, B, I);
    g->w1 = newt(be, VT_F32, 2, H, I);
    g->b1 = newt(be, VT_F32, 1, H, 1);
    g->h = newt(be, VT_F32, 2, B, H);
    g->hd = newt(be, VT_F32, 2, B, H);
    g->w2 = newt(be, VT_F32, 2, K, H);
    g->logits = newt(be, VT_F32, 2, B, K);
    g->labels = newt(be, VT_I32, 1, B, 1);
    g->loss = newt(be, VT_F32, 1, 1, 1);
    g->metrics = newt(be, VT_F32, 1, 3, 1);
    g->dlogits = newt(be, VT_F32, 2, B, K);
    g->dw2 = newt(be, VT_F32, 2, K, H);
    g->dhd = newt(be, VT_F32, 2, B, H);
    g->dh = newt(be, VT_F32, 2, B, H);
    g->mom = newt(be, VT_F32, 2, K, H);
    vt_rng rng;
    vt_rng_init(&rng, 77, 1);
    float buf[1024];
    int32_t lab[B];
    vt_tensor *init[] = {g->x, g->w1, g->b1, g->w2};
    for (int t = 0; t < 4; t++) {
        int64_t n = vt_tensor_nelem(init[t]);
        for (int64_t i = 0; i < n; i++) buf[i] = vt_rng_normal(&rng) * 0.5f;
        assert_int_equal(vt_tensor_upload(init[t], buf, (size_t)n * 4), VT_OK);
    }
    for (int i = 0; i < B; i++) lab[i] = (int32_t)vt_rng_below(&rng, K);
    assert_int_equal(vt_tensor_upload(g->labels, lab, sizeof lab), VT_OK);
    vt_node *n = g->nodes;
    memset(n, 0, sizeof g->nodes);
    n[0].op = VT_OP_MATMUL;
    n[0].p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_RELU, 0.0f};
    n[0].src[0] = g->x, n[0].src[1] = g->w1, n[0].src[2] = g->b1, n[0].dst[0] = g->h;
    n[1].op = VT_OP_DROPOUT;
    n[1].p.dropout = (vt_dropout_params){0.25f, 5u};
    n[1].src[0] = g->h, n[1].dst[0] = g->hd;
    n[2].op = VT_OP_MATMUL;
    n[2].p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n[2].src[0] = g->hd, n[2].src[1] = g->w2, n[2].dst[0] = g->logits;
    n[3].op = VT_OP_SOFTMAX_CE;
    n[3].p.ce = (vt_softmax_ce_params){0.1f, 1.0f, 0};
    n[3].src[0] = g->logits, n[3].src[1] = g->labels, n[3].dst[0] = g->loss, n[3].dst[1] = g->metrics;
    n[4].op = VT_OP_SOFTMAX_CE_BWD;
    n[4].p.ce = (vt_softmax_ce_params){0.1f, 1.0f / 13.0f, 0};
    n[4].src[0] = g->logits, n[4].src[1] = g->labels, n[4].dst[0] = g->dlogits;
    n[5].op = VT_OP_MATMUL; /* dW2 = dlogits^T hd */
    n[5].p.matmul = (vt_matmul_params){1, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n[5].src[0] = g->dlogits, n[5].src[1] = g->hd, n[5].dst[0] = g->dw2;
    n[6].op = VT_OP_MATMUL; /* dhd = dlogits W2 */
    n[6].p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n[6].src[0] = g->dlogits, n[6].src[1] = g->w2, n[6].dst[0] = g->dhd;
    n[7].op = VT_OP_DROPOUT_BWD;
    n[7].p.dropout = (vt_dropout_params){0.25f, 5u};
    n[7].src[0] = g->dhd, n[7].dst[0] = g->dh;
    n[8].op = VT_OP_SGD;
    n[8].p.sgd = (vt_sgd_params){1.0f, 0.9f, 1e-4f, 0};
    n[8].src[0] = g->dw2, n[8].dst[0] = g->w2, n[8].dst[1] = g->mom;
    for (int i = 0; i < 9; i++) snprintf(n[i].label, sizeof n[i].label, "mlp.%d", i);
    g->n = 9;
}

static void mlp_free(mlp_graph *g) {
    vt_tensor *all[] = {g->x,    g->w1,      g->b1,      g->h,   g->hd,  g->w2, g->logits, g->labels,
                        g->loss, g->metrics, g->dlogits, g->dw2, g->dhd, g->dh, g->mom};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vt_tensor_free(all[i]);
}

static void read_f(const vt_tensor *t, float *out) {
    assert_int_equal(vt_tensor_download(t, out, vt_tensor_nbytes(t)), VT_OK);
}

/* A graph recorded once and replayed with new step values equals the same nodes run one by one. */
static void test_graph_replay(void **state) {
    (void)state;
    NEED_VULKAN();
    mlp_graph a, b;
    mlp_build(g_vk, &a);
    mlp_build(g_vk, &b);
    vt_graph_exec exec = {a.nodes, a.n, NULL, NULL};
    vt_backend_counters before = g_vk->counters;
    for (int step = 0; step < 4; step++) {
        vt_step_ctx ctx = {(uint64_t)step * 3 + 1, 42u + (uint32_t)step, 0.1f / (float)(step + 1), 0};
        assert_int_equal(vt_backend_graph_compute(g_vk, &exec, &ctx), VT_OK);
        for (int i = 0; i < b.n; i++) assert_int_equal(vt_backend_compute(g_vk, &b.nodes[i], &ctx), VT_OK);
        assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    }
    uint64_t submits = g_vk->counters.submits - before.submits;
    assert_true(submits >= 8); /* 4 replays + 4 batches of one-off nodes */
    vt_tensor *ta[] = {a.w2, a.mom, a.hd, a.dh, a.metrics, a.loss},
              *tb[] = {b.w2, b.mom, b.hd, b.dh, b.metrics, b.loss};
    for (size_t i = 0; i < sizeof ta / sizeof ta[0]; i++) {
        float x[400], y[400];
        read_f(ta[i], x);
        read_f(tb[i], y);
        int64_t n = vt_tensor_nelem(ta[i]);
        for (int64_t k = 0; k < n; k++)
            if (x[k] != y[k])
                fail_msg("tensor %zu element %lld: graph %.9g, one by one %.9g", i, (long long)k, (double)x[k],
                         (double)y[k]);
    }
    /* different seeds per step gave different dropout masks: the replay did read the new values */
    float h1[260];
    read_f(a.hd, h1);
    int zeros = 0;
    for (int i = 0; i < 260; i++) zeros += h1[i] == 0.0f;
    assert_true(zeros > 0);
    vt_graph_exec_reset(g_vk, &exec);
    mlp_free(&a);
    mlp_free(&b);
}

/* The same graph on the CPU reference gives the same numbers (within float tolerance). */
static void test_graph_vs_reference(void **state) {
    (void)state;
    NEED_VULKAN();
    mlp_graph a, r;
    mlp_build(g_vk, &a);
    mlp_build(g_ref, &r);
    vt_graph_exec ea = {a.nodes, a.n, NULL, NULL}, er = {r.nodes, r.n, NULL, NULL};
    for (int step = 0; step < 3; step++) {
        vt_step_ctx ctx = {(uint64_t)step, 9u, 0.05f, 0};
        assert_int_equal(vt_backend_graph_compute(g_vk, &ea, &ctx), VT_OK);
        assert_int_equal(vt_backend_graph_compute(g_ref, &er, &ctx), VT_OK);
    }
    assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    assert_int_equal(vt_backend_sync(g_ref), VT_OK);
    float x[400], y[400];
    read_f(a.w2, x);
    read_f(r.w2, y);
    assert_true(close_enough("graph w2", x, y, vt_tensor_nelem(a.w2), 1e-5, 1e-4));
    read_f(a.metrics, x);
    read_f(r.metrics, y);
    assert_true(close_enough("graph metrics", x, y, 3, 1e-4, 1e-4));
    vt_graph_exec_reset(g_vk, &ea);
    vt_graph_exec_reset(g_ref, &er);
    mlp_free(&a);
    mlp_free(&r);
}

/* ---- the synchronised batch norm ---- */

/* One rank's split batch norm: BN_STATS | BN_APPLY, BN_BWD_STATS | BN_BWD_APPLY, recorded as three
 * graphs cut where the host combines the statistics and the sums over the ranks (vt/graph.h). */
typedef struct sbn_rank {
    vt_tensor *x, *dy, *rm, *rv, *st, *y, *su, *dx, *dg, *db;
    vt_node n[4];
    vt_graph_exec piece[3];
} sbn_rank;

static vt_tensor *newt4(vt_backend *be, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    vt_tensor *t;
    assert_int_equal(vt_tensor_new(be, "sbn", VT_F32, d ? 4 : b ? 2 : 1, s, &t), VT_OK);
    return t;
}

static void sbn_rank_build(sbn_rank *r, vt_tensor *g, vt_tensor *b, int64_t N, int64_t C, int64_t HW, int64_t count) {
    r->x = newt4(g_vk, N, C, HW, 1);
    r->dy = newt4(g_vk, N, C, HW, 1);
    r->y = newt4(g_vk, N, C, HW, 1);
    r->dx = newt4(g_vk, N, C, HW, 1);
    r->rm = newt4(g_vk, C, 0, 0, 0);
    r->rv = newt4(g_vk, C, 0, 0, 0);
    r->dg = newt4(g_vk, C, 0, 0, 0);
    r->db = newt4(g_vk, C, 0, 0, 0);
    r->st = newt4(g_vk, 2, C, 0, 0);
    r->su = newt4(g_vk, 2, C, 0, 0);
    float one[64];
    for (int i = 0; i < 64; i++) one[i] = 1.0f;
    assert_int_equal(vt_tensor_upload(r->rv, one, (size_t)C * 4), VT_OK);
    vt_node *n = r->n;
    memset(n, 0, sizeof r->n);
    vt_batchnorm_params p = {1, 0.1f, 1e-5f, count};
    vt_op ops[4] = {VT_OP_BN_STATS, VT_OP_BN_APPLY, VT_OP_BN_BWD_STATS, VT_OP_BN_BWD_APPLY};
    for (int i = 0; i < 4; i++) n[i].op = ops[i], n[i].p.bn = p;
    n[0].src[0] = r->x, n[0].dst[0] = r->st;
    n[1].src[0] = r->x, n[1].src[1] = g, n[1].src[2] = b, n[1].src[3] = r->st;
    n[1].dst[0] = r->y, n[1].dst[1] = r->rm, n[1].dst[2] = r->rv;
    n[2].src[0] = r->dy, n[2].src[1] = r->x, n[2].src[2] = r->st;
    n[2].dst[0] = r->dg, n[2].dst[1] = r->db, n[2].dst[2] = r->su;
    n[3].src[0] = r->dy, n[3].src[1] = r->x, n[3].src[2] = g, n[3].src[3] = r->st, n[3].src[4] = r->su;
    n[3].dst[0] = r->dx;
    r->piece[0] = (vt_graph_exec){n, 1, NULL, NULL};
    r->piece[1] = (vt_graph_exec){n + 1, 2, NULL, NULL};
    r->piece[2] = (vt_graph_exec){n + 3, 1, NULL, NULL};
}

static void sbn_rank_free(sbn_rank *r) {
    for (int i = 0; i < 3; i++) vt_graph_exec_reset(g_vk, &r->piece[i]);
    vt_tensor *all[] = {r->x, r->dy, r->rm, r->rv, r->st, r->y, r->su, r->dx, r->dg, r->db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vt_tensor_free(all[i]);
}

/* Runs piece k of every rank, then combines over the ranks as the trainer's host does: kind 0 the
 * statistics st (mean of the means, mean of var + (mean_r - mean)^2, in double), 1 the sums su, -1
 * nothing. */
static void sbn_piece(sbn_rank *r, int ranks, int k, int kind, int64_t C) {
    vt_step_ctx ctx = {1, 2u, 0.1f, 0};
    for (int i = 0; i < ranks; i++) assert_int_equal(vt_backend_graph_compute(g_vk, &r[i].piece[k], &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    if (ranks == 1 || kind < 0) return;
    float h[4][128];
    double out[128];
    for (int i = 0; i < ranks; i++) read_f(kind ? r[i].su : r[i].st, h[i]);
    for (int64_t c = 0; c < C; c++) {
        double m = 0.0, v = 0.0;
        for (int i = 0; i < ranks; i++) m += h[i][c];
        if (kind) {
            for (int i = 0; i < ranks; i++) v += h[i][C + c];
        } else {
            m /= ranks;
            for (int i = 0; i < ranks; i++) v += h[i][C + c] + (h[i][c] - m) * (h[i][c] - m);
            v /= ranks;
        }
        out[c] = m, out[C + c] = v;
    }
    float f[128];
    for (int64_t i = 0; i < 2 * C; i++) f[i] = (float)out[i];
    for (int i = 0; i < ranks; i++)
        assert_int_equal(vt_tensor_upload(kind ? r[i].su : r[i].st, f, (size_t)C * 8), VT_OK);
}

static void sbn_same_bits(const char *what, const vt_tensor *a, const vt_tensor *b, int step) {
    float x[1024], y[1024];
    read_f(a, x);
    read_f(b, y);
    int64_t n = vt_tensor_nelem(a);
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&x[i], &y[i], 4) != 0)
            fail_msg("step %d %s[%lld]: split ops %.9g, BATCHNORM %.9g", step, what, (long long)i, (double)x[i],
                     (double)y[i]);
}

/* The split ops recorded as graphs and replayed over steps with new inputs: as one rank they are
 * BATCHNORM / BATCHNORM_BWD bit for bit (the same shader cut at its sums, on either reduction path),
 * and two ranks whose sums the host combines between the pieces match BATCHNORM on the whole batch. */
static void test_sync_bn_graphs(void **state) {
    (void)state;
    NEED_VULKAN();
    enum { N = 4, C = 5, HW = 21, E = 2 * N * C * HW }; /* two ranks of N, or one of 2N: E elements */
    const int64_t M = 2 * N * HW;
    vt_tensor *g = newt4(g_vk, C, 0, 0, 0), *b = newt4(g_vk, C, 0, 0, 0);
    vt_tensor *sm = newt4(g_vk, C, 0, 0, 0), *si = newt4(g_vk, C, 0, 0, 0);
    sbn_rank whole, one, two[2];
    sbn_rank_build(&whole, g, b, 2 * N, C, HW, M); /* only its tensors: BATCHNORM's operands */
    sbn_rank_build(&one, g, b, 2 * N, C, HW, M);
    for (int i = 0; i < 2; i++) sbn_rank_build(&two[i], g, b, N, C, HW, M);
    vt_node bn[2];
    memset(bn, 0, sizeof bn);
    bn[0].op = VT_OP_BATCHNORM, bn[1].op = VT_OP_BATCHNORM_BWD;
    bn[0].p.bn = bn[1].p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, 0};
    bn[0].src[0] = whole.x, bn[0].src[1] = g, bn[0].src[2] = b, bn[0].src[3] = whole.rm, bn[0].src[4] = whole.rv;
    bn[0].dst[0] = whole.y, bn[0].dst[1] = sm, bn[0].dst[2] = si;
    bn[1].src[0] = whole.dy, bn[1].src[1] = whole.x, bn[1].src[2] = g, bn[1].src[3] = sm, bn[1].src[4] = si;
    bn[1].dst[0] = whole.dx, bn[1].dst[1] = whole.dg, bn[1].dst[2] = whole.db;
    vt_graph_exec ebn = {bn, 2, NULL, NULL};
    vt_rng rng;
    vt_rng_init(&rng, 2024, 3);
    float h[2][E], gb[2][C];
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < C; c++) gb[i][c] = 1.0f + 0.3f * vt_rng_normal(&rng);
    assert_int_equal(vt_tensor_upload(g, gb[0], sizeof gb[0]), VT_OK);
    assert_int_equal(vt_tensor_upload(b, gb[1], sizeof gb[1]), VT_OK);
    const size_t half = (size_t)(N * C * HW) * 4;
    for (int step = 0; step < 3; step++) {
        /* new inputs every step, away from zero mean so the two-pass variance matters */
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < E; i++) h[k][i] = (k ? 0.01f : 1.0f) * (vt_rng_normal(&rng) + 3.0f);
        sbn_rank *up[] = {&whole, &one};
        for (int i = 0; i < 2; i++) {
            assert_int_equal(vt_tensor_upload(up[i]->x, h[0], 2 * half), VT_OK);
            assert_int_equal(vt_tensor_upload(up[i]->dy, h[1], 2 * half), VT_OK);
            assert_int_equal(vt_tensor_upload(two[i].x, (char *)h[0] + i * half, half), VT_OK);
            assert_int_equal(vt_tensor_upload(two[i].dy, (char *)h[1] + i * half, half), VT_OK);
        }
        vt_step_ctx ctx = {1, 2u, 0.1f, 0};
        assert_int_equal(vt_backend_graph_compute(g_vk, &ebn, &ctx), VT_OK);
        for (int k = 0; k < 3; k++) {
            sbn_piece(&one, 1, k, -1, C);
            sbn_piece(two, 2, k, k < 2 ? k : -1, C);
        }
        const char *what[] = {"y", "running_mean", "running_var", "dx", "dgamma", "dbeta"};
        vt_tensor *wa[] = {whole.y, whole.rm, whole.rv, whole.dx, whole.dg, whole.db},
                  *oa[] = {one.y, one.rm, one.rv, one.dx, one.dg, one.db};
        for (int i = 0; i < 6; i++) sbn_same_bits(what[i], oa[i], wa[i], step);
        /* two ranks: y and dx are the halves of the whole batch's; the parameter gradients add up */
        float got[E], want[E], r1[E];
        const char *names[] = {"y", "dx", "dgamma", "dbeta", "running_mean", "running_var"};
        vt_tensor *ta[] = {two[0].y, two[0].dx, two[0].dg, two[0].db, two[0].rm, two[0].rv},
                  *tb[] = {two[1].y, two[1].dx, two[1].dg, two[1].db, two[1].rm, two[1].rv},
                  *tw[] = {whole.y, whole.dx, whole.dg, whole.db, whole.rm, whole.rv};
        for (int i = 0; i < 6; i++) {
            int64_t n = vt_tensor_nelem(ta[i]);
            read_f(ta[i], got);
            read_f(tb[i], r1);
            read_f(tw[i], want);
            if (i < 2) memcpy(got + n, r1, (size_t)n * 4);
            else if (i < 4)
                for (int64_t k = 0; k < n; k++) got[k] += r1[k];
            else assert_memory_equal(got, r1, (size_t)n * 4); /* every rank keeps the same running statistics */
            char name[64];
            snprintf(name, sizeof name, "step %d two ranks %s", step, names[i]);
            assert_true(close_enough(name, got, want, i < 2 ? 2 * n : n, 1e-5, 1e-4));
        }
    }
    vt_graph_exec_reset(g_vk, &ebn);
    sbn_rank_free(&whole);
    sbn_rank_free(&one);
    for (int i = 0; i < 2; i++) sbn_rank_free(&two[i]);
    vt_tensor *all[] = {g, b, sm, si};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vt_tensor_free(all[i]);
}

static void test_device_info(void **state) {
    (void)state;
    NEED_VULKAN();
    const vt_device_info *d = &g_vk->info;
    print_message("  vulkan device: %s (%s, %s) %.2f GB, %s%s\n", d->name, d->vendor, d->type,
                  (double)d->memory_bytes / 1e9, d->driver, d->is_cpu_hosted ? ", runs on the host CPU" : "");
    assert_string_equal(d->backend, "vulkan");
    assert_true(d->name[0] != 0);
    assert_true(d->memory_bytes > 0);
    assert_true(strcmp(d->type, "gpu") == 0 || strcmp(d->type, "integrated") == 0 || strcmp(d->type, "cpu") == 0 ||
                strcmp(d->type, "other") == 0);
    if (strcmp(d->type, "cpu") == 0) assert_int_equal(d->is_cpu_hosted, 1);
    /* device order: no GPU listed after a CPU device */
    const vt_backend_reg *r = vt_backend_reg_find("vulkan");
    int seen_cpu = 0;
    for (int i = 0; i < r->device_count(); i++) {
        vt_device_info info;
        assert_int_equal(r->device_info(i, &info), VT_OK);
        if (strcmp(info.type, "cpu") == 0) seen_cpu = 1;
        else if (strcmp(info.type, "gpu") == 0) assert_false(seen_cpu);
    }
    vt_device_info bad;
    assert_int_equal(r->device_info(99, &bad), VT_ERR_NOT_FOUND);
}

/* The environment's VT_VULKAN_OPTIONS (the ctest variant's: validation layers, storage buffers) with the
 * pairs of extra in place of those of the same keys, so that a test choosing one path keeps the others. */
static const char *opts_with(char *buf, size_t size, const char *extra) {
    const char *env = getenv("VT_VULKAN_OPTIONS");
    size_t used = 0;
    buf[0] = 0;
    for (const char *p = env ? env : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        int replaced = 0;
        for (const char *q = extra; *q;) {
            const char *qe = strchr(q, ',');
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            const char *qeq = memchr(q, '=', ql);
            if (qeq && (size_t)(qeq - q) == kl && strncmp(q, p, kl) == 0) replaced = 1;
            q += ql + (qe ? 1 : 0);
        }
        if (!replaced && len) used += (size_t)snprintf(buf + used, size - used, "%.*s,", (int)len, p);
        assert_true(used < size);
        p += len + (end ? 1 : 0);
    }
    snprintf(buf + used, size - used, "%s", extra);
    return buf;
}

static vt_status init_with(const char *options, vt_backend **out) {
    vt_backend_opts o = {0};
    o.options = options;
    *out = NULL;
    return vt_backend_init_by_name("vulkan", -1, &o, out);
}

/* The GEMM shader with shared-memory tiles (the GPU default) against the register-blocked one (the
 * CPU-driver default): the same k order and epilogue, so every matmul and convolution case must agree
 * bit for bit. */
static void test_gemm_tiled_vs_registers(void **state) {
    (void)state;
    NEED_VULKAN();
    vt_backend *be[2] = {NULL, NULL};
    const char *mode[2] = {"gemm=registers", "gemm=tiled"}, *shown[2] = {"register blocks", "shared-memory tiles"};
    for (int i = 0; i < 2; i++) {
        char buf[256];
        if (init_with(opts_with(buf, sizeof buf, mode[i]), &be[i]) != VT_OK)
            fail_msg("%s: %s", mode[i], vt_last_error());
        if (!strstr(be[i]->info.config, shown[i])) fail_msg("config '%s' lacks '%s'", be[i]->info.config, shown[i]);
    }
    build_cases();
    int compared = 0, differ = 0;
    for (int i = 0; i < n_cases; i++) {
        const tcase *c = &cases[i];
        outs o[2];
        for (int k = 0; k < 2; k++)
            if (run_case(be[k], c, 2000u + (uint32_t)i, &o[k]) != VT_OK)
                fail_msg("%s (%s): %s", c->name, mode[k], vt_last_error());
        for (int d = VT_MAX_SRC; d < VT_MAX_SRC + VT_MAX_DST; d++)
            if (o[0].data[d] && memcmp(o[0].data[d], o[1].data[d], (size_t)o[0].n[d] * vt_dtype_size(o[0].dt[d]))) {
                print_message("  %s: dst%d differs between the two GEMM shaders\n", c->name, d - VT_MAX_SRC);
                differ++;
            }
        compared++;
        outs_free(&o[0]);
        outs_free(&o[1]);
    }
    print_message("  %d GEMM and convolution cases compared bitwise, %d differ\n", compared, differ);
    assert_true(compared >= 20);
    assert_int_equal(differ, 0);
    vt_backend_free(be[0]);
    vt_backend_free(be[1]);
}

/* CONV2D_TRANSPOSE runs CONV2D_BWD_DATA's shader (dy = x, the same k sum) with the bias in its epilogue:
 * without bias the same bits as CONV2D_BWD_DATA on the same operands, with bias those bits plus bias[k]
 * (one f32 addition). run_case draws x and w first from the seed, so both ops see the same x and w. */
static void test_conv_transpose_is_bwd_data(void **state) {
    (void)state;
    NEED_VULKAN();
    /* {N, C_in, H, W, C_out, R, S, stride, pad, output_padding} */
    static const int sh[][10] = {{2, 3, 7, 6, 4, 5, 5, 2, 2, 1},
                                 {1, 6, 5, 5, 3, 3, 3, 1, 1, 0},
                                 {1, 3, 2, 3, 5, 64, 64, 32, 16, 0},
                                 {3, 7, 4, 5, 2, 3, 3, 3, 0, 2}};
    int checked = 0;
    for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
        const int *g = sh[i];
        int64_t P = (int64_t)(g[2] - 1) * g[7] - 2 * g[8] + g[5] + g[9];
        int64_t Q = (int64_t)(g[3] - 1) * g[7] - 2 * g[8] + g[6] + g[9];
        for (int bias = 0; bias < 2; bias++) {
            tcase t = {0}, bd = {0};
            t.op = VT_OP_CONV2D_TRANSPOSE;
            snprintf(t.name, sizeof t.name, "conv2d_transpose %zu bias %d", i, bias);
            t.p.conv2d = (vt_conv2d_params){g[7], g[7], g[8], g[8], VT_ACT_NONE, 0.0f};
            t.src[0] = F4(g[0], g[1], g[2], g[3]);
            t.src[1] = F4(g[1], g[4], g[5], g[6]);
            if (bias) t.src[2] = F1(g[4]);
            t.dst[0] = F4(g[0], g[4], P, Q);
            bd = t;
            bd.op = VT_OP_CONV2D_BWD_DATA;
            bd.src[2] = (tdesc){0};
            outs ot, ob;
            uint32_t seed = 3000u + (uint32_t)i;
            if (run_case(g_vk, &t, seed, &ot) != VT_OK) fail_msg("%s: %s", t.name, vt_last_error());
            if (run_case(g_vk, &bd, seed, &ob) != VT_OK) fail_msg("%s (bwd data): %s", t.name, vt_last_error());
            assert_memory_equal(ot.data[0], ob.data[0], (size_t)ot.n[0] * sizeof(float));
            assert_memory_equal(ot.data[1], ob.data[1], (size_t)ot.n[1] * sizeof(float));
            const float *y = ot.data[VT_MAX_SRC], *dx = ob.data[VT_MAX_SRC], *b = bias ? ot.data[2] : NULL;
            int64_t plane = P * Q, bad = 0;
            for (int64_t e = 0; e < ot.n[VT_MAX_SRC]; e++) {
                float want = b ? dx[e] + b[(e / plane) % g[4]] : dx[e];
                if (memcmp(&y[e], &want, sizeof want) != 0 && !bad++)
                    print_message("  %s: element %lld: %.9g, CONV2D_BWD_DATA (+ bias) %.9g\n", t.name, (long long)e,
                                  (double)y[e], (double)want);
            }
            assert_int_equal(bad, 0);
            checked++;
            outs_free(&ot);
            outs_free(&ob);
        }
    }
    assert_int_equal(checked, 8);
}

/* llvmpipe ends a shader invocation's loops after 65535 iterations in all, without an error: the GEMM shader
 * must sum a k longer than that (FCN-32s's upsampling: 21 * 64 * 64 = 86016 terms; its fc6's data
 * gradient: 4096 * 49) on both of its paths. 1x1 convolutions of 70001 channels and the data gradient. */
static void test_gemm_long_k(void **state) {
    (void)state;
    NEED_VULKAN();
    const char *mode[2] = {"gemm=registers", "gemm=tiled"};
    for (int b = 0; b < 2; b++) {
        vt_backend *be = NULL;
        char buf[256];
        if (init_with(opts_with(buf, sizeof buf, mode[b]), &be) != VT_OK) fail_msg("%s: %s", mode[b], vt_last_error());
        for (int op = 0; op < 3; op++) {
            static const vt_op ops[3] = {VT_OP_CONV2D, VT_OP_CONV2D_BWD_DATA, VT_OP_CONV2D_TRANSPOSE};
            const int64_t C = 70001;
            tcase t = {0};
            t.op = ops[op];
            snprintf(t.name, sizeof t.name, "%s k %lld (%s)", vt_op_name(t.op), (long long)C, mode[b]);
            t.p.conv2d = (vt_conv2d_params){1, 1, 0, 0, VT_ACT_NONE, 0.0f};
            t.src[0] = F4(2, C, 1, 1);
            t.src[1] = op == 0 ? F4(3, C, 1, 1) : F4(C, 3, 1, 1);
            t.dst[0] = F4(2, 3, 1, 1);
            /* sums of 70001 products of magnitude ~1, in f32 */
            t.atol = 2e-2;
            t.rtol = 1e-4;
            outs g, r;
            if (run_case(be, &t, 4000u + (uint32_t)op, &g) != VT_OK) fail_msg("%s: %s", t.name, vt_last_error());
            if (run_case(g_ref, &t, 4000u + (uint32_t)op, &r) != VT_OK) fail_msg("%s: %s", t.name, vt_last_error());
            if (!compare_outs(&t, &g, &r)) fail_msg("%s: differs from the reference", t.name);
            outs_free(&g);
            outs_free(&r);
        }
        vt_backend_free(be);
    }
}

/* The options string: parsed once at init, every key known, every value checked; from opts.options,
 * else from VT_VULKAN_OPTIONS. */
static void test_options(void **state) {
    (void)state;
    NEED_VULKAN();
    static const struct {
        const char *options, *says;
    } bad[] = {
        {"gemm_tiles=16x16", "unknown key \"gemm_tiles\""},
        {"texel=0,colour=red", "unknown key \"colour\""},
        {"gemm=shared", "gemm=shared"},
        {"subgroup=maybe", "subgroup=maybe"},
        {"validation=2", "validation=2"},
        {"texel", "expected key=value"},
        {"gemm_tile=16,16", "expected key=value"},
        {"gemm_tile=0x16", "gemm_tile=0x16"},
        {"gemm_tile=64x64", "gemm_tile=64x64"},
        {"gemm_tile=8x8x", "gemm_tile=8x8x"},
        {"gemm=tiled,gemm=registers", "given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vt_backend *be = NULL;
        vt_status st = init_with(bad[i].options, &be);
        if (st == VT_OK) fail_msg("options \"%s\" accepted", bad[i].options);
        assert_int_equal(st, VT_ERR_INVALID_ARG);
        assert_null(be);
        if (!strstr(vt_last_error(), bad[i].says))
            fail_msg("options \"%s\": message '%s' lacks '%s'", bad[i].options, vt_last_error(), bad[i].says);
    }
    /* the unknown key's message lists the known ones */
    vt_backend *be = NULL;
    assert_int_not_equal(init_with("fast=1", &be), VT_OK);
    assert_non_null(strstr(vt_last_error(), "validation, texel, gemm, subgroup, gemm_tile"));
    /* the paths chosen show in the device's config line */
    assert_int_equal(init_with("texel=0,subgroup=off,gemm=registers,gemm_tile=8x4", &be), VT_OK);
    if (!strstr(be->info.config, "storage buffers (texel=0)") || !strstr(be->info.config, "workgroup 8x4") ||
        !strstr(be->info.config, "sums by shared memory"))
        fail_msg("config '%s'", be->info.config);
    vt_backend_free(be);
    /* opts.options NULL: the environment's string, refused the same way and named as the source */
    char *env0 = getenv("VT_VULKAN_OPTIONS") ? strdup(getenv("VT_VULKAN_OPTIONS")) : NULL;
    setenv("VT_VULKAN_OPTIONS", "gemm=fast", 1);
    be = NULL;
    assert_int_equal(vt_backend_init_by_name("vulkan", -1, NULL, &be), VT_ERR_INVALID_ARG);
    assert_null(be);
    assert_non_null(strstr(vt_last_error(), "gemm=fast"));
    setenv("VT_VULKAN_OPTIONS", "nope=1", 1);
    assert_int_equal(vt_backend_init_by_name("vulkan", -1, NULL, &be), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "VT_VULKAN_OPTIONS"));
    setenv("VT_VULKAN_OPTIONS", "texel=0", 1);
    assert_int_equal(vt_backend_init_by_name("vulkan", -1, NULL, &be), VT_OK);
    assert_non_null(strstr(be->info.config, "texel=0"));
    vt_backend_free(be);
    /* opts.options, when set, is the whole story: the environment's string is not read */
    setenv("VT_VULKAN_OPTIONS", "nope=1", 1);
    assert_int_equal(init_with("", &be), VT_OK);
    vt_backend_free(be);
    if (env0) setenv("VT_VULKAN_OPTIONS", env0, 1);
    else unsetenv("VT_VULKAN_OPTIONS");
    free(env0);
}

/* supports_node is the op table (then the binding limits): nothing outside vt_op, not VT_OP_NONE. */
static void test_supports_table(void **state) {
    (void)state;
    NEED_VULKAN();
    vt_tensor *x, *y;
    int64_t sh[1] = {8};
    assert_int_equal(vt_tensor_new(g_vk, "x", VT_F32, 1, sh, &x), VT_OK);
    assert_int_equal(vt_tensor_new(g_vk, "y", VT_F32, 1, sh, &y), VT_OK);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_ACT;
    n.p.act.kind = VT_ACT_GELU;
    n.src[0] = x;
    n.dst[0] = y;
    assert_true(g_vk->iface->supports_node(g_vk, &n));
    static const int outside[] = {VT_OP_NONE, VT_OP_COUNT, VT_OP_COUNT + 1, -1, 1 << 20};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        n.op = (vt_op)outside[i];
        if (g_vk->iface->supports_node(g_vk, &n)) fail_msg("op %d reported supported", outside[i]);
    }
    vt_tensor_free(x);
    vt_tensor_free(y);
}

/* GELU's erf is this backend's own (GLSL has none): forward and backward over a dense grid, on the
 * scalar and vec4 shaders, against the formulas in double. Bounds: erf within 2 ulp of 1 (the
 * approximation's 1.44 plus the driver's exp), the formula's own roundings on top. */
static void test_gelu_erf(void **state) {
    (void)state;
    NEED_VULKAN();
    for (int odd = 0; odd < 2; odd++) {
        const int64_t n = 24000 + odd; /* multiple of 4: the vec4 shader; odd: the scalar one */
        float *x = malloc((size_t)n * 4), *dy = malloc((size_t)n * 4), *y = malloc((size_t)n * 4),
              *dx = malloc((size_t)n * 4);
        assert_true(x && dy && y && dx);
        for (int64_t i = 0; i < n; i++) {
            x[i] = -7.0f + 14.0f * (float)i / (float)(n - 1);
            dy[i] = 0.5f + (float)(i % 7) * 0.25f;
        }
        x[0] = 0.0f, x[1] = -0.0f, x[2] = 1e-30f, x[3] = -3e-5f, x[4] = 0.921875f, x[5] = -0.921875f, x[6] = 4.0f;
        x[7] = 30.0f, x[8] = -30.0f, x[9] = 0.92187494f;
        vt_tensor *tx, *tdy, *ty, *tdx;
        int64_t sh[1] = {n};
        assert_int_equal(vt_tensor_new(g_vk, "x", VT_F32, 1, sh, &tx), VT_OK);
        assert_int_equal(vt_tensor_new(g_vk, "dy", VT_F32, 1, sh, &tdy), VT_OK);
        assert_int_equal(vt_tensor_new(g_vk, "y", VT_F32, 1, sh, &ty), VT_OK);
        assert_int_equal(vt_tensor_new(g_vk, "dx", VT_F32, 1, sh, &tdx), VT_OK);
        assert_int_equal(vt_tensor_upload(tx, x, (size_t)n * 4), VT_OK);
        assert_int_equal(vt_tensor_upload(tdy, dy, (size_t)n * 4), VT_OK);
        vt_node f, b;
        memset(&f, 0, sizeof f);
        memset(&b, 0, sizeof b);
        f.op = VT_OP_ACT;
        f.p.act.kind = VT_ACT_GELU;
        f.src[0] = tx, f.dst[0] = ty;
        b.op = VT_OP_ACT_BWD;
        b.p.act.kind = VT_ACT_GELU;
        b.src[0] = tdy, b.src[1] = tx, b.dst[0] = tdx; /* gelu's backward takes the forward input */
        vt_step_ctx ctx = {0};
        assert_int_equal(vt_backend_compute(g_vk, &f, &ctx), VT_OK);
        assert_int_equal(vt_backend_compute(g_vk, &b, &ctx), VT_OK);
        assert_int_equal(vt_tensor_download(ty, y, (size_t)n * 4), VT_OK);
        assert_int_equal(vt_tensor_download(tdx, dx, (size_t)n * 4), VT_OK);
        const double u = ldexp(1.0, -24), r2 = 0.70710678118654752440, r2pi = 0.39894228040143267794;
        double worst_f = 0, worst_b = 0;
        for (int64_t i = 0; i < n; i++) {
            double xi = x[i], phi = 0.5 * (1.0 + erf(xi * r2)), dens = r2pi * exp(-0.5 * xi * xi);
            double yr = xi * phi, dr = dy[i] * (phi + xi * dens);
            /* erf off by 2 ulp of 1 moves y by |x| ulp; then a few roundings of y itself */
            double tol_f = 2.0 * u * fabs(xi) + 4.0 * u * fabs(yr) + 1e-37;
            double tol_b = dy[i] * (2.0 * u + 8.0 * u * fabs(xi * dens)) + 4.0 * u * fabs(dr) + 1e-37;
            double ef = fabs(y[i] - yr) / tol_f, eb = fabs(dx[i] - dr) / tol_b;
            if (ef > worst_f) worst_f = ef;
            if (eb > worst_b) worst_b = eb;
            if (ef > 1.0 || eb > 1.0)
                fail_msg("gelu at x=%.9g: y %.9g want %.9g, dx %.9g want %.9g", xi, (double)y[i], yr, (double)dx[i],
                         dr);
        }
        print_message("  gelu %lld values: forward error %.2f, backward %.2f of the bounds\n", (long long)n, worst_f,
                      worst_b);
        assert_true(y[7] == 30.0f && y[8] == 0.0f && dx[7] == dy[7] && dx[8] == 0.0f);
        vt_tensor_free(tx);
        vt_tensor_free(tdy);
        vt_tensor_free(ty);
        vt_tensor_free(tdx);
        free(x);
        free(dy);
        free(y);
        free(dx);
    }
}

/* A dataset larger than one descriptor range (lavapipe's maxStorageBufferRange is 128 MB): BATCH_PREP
 * binds it in chunks; samples from the last chunk must match the CPU reference. */
static void test_batch_prep_chunks(void **state) {
    (void)state;
    NEED_VULKAN();
    tcase c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "batch_prep D45000 [3,32,32] B256");
    c.op = VT_OP_BATCH_PREP;
    c.p.prep.pad = 4;
    c.p.prep.flip = 1;
    c.p.prep.salt = 99u;
    for (int k = 0; k < 4; k++) {
        c.p.prep.mean[k] = 0.4f + 0.05f * (float)k;
        c.p.prep.std[k] = 0.2f + 0.03f * (float)k;
    }
    c.src[0] = D(VT_U8, G_U8, 4, 45000, 3, 32, 32); /* 138 MB */
    c.src[1] = D(VT_I32, G_LABEL, 1, 45000, 1, 1, 1);
    c.src[2] = D(VT_I32, G_PERM, 1, 45000, 1, 1, 1);
    c.k = 45000;
    c.dst[0] = F4(256, 3, 32, 32);
    c.dst[1] = D(VT_I32, G_ZERO, 1, 256, 1, 1, 1);
    c.ctx = (vt_step_ctx){0x200000011ull, 1234u, 0.05f, 44000};
    c.atol = 1e-6;
    c.rtol = 1e-6;
    outs g, r;
    assert_int_equal(run_case(g_ref, &c, 77, &r), VT_OK);
    vt_status st = run_case(g_vk, &c, 77, &g);
    if (st != VT_OK) fail_msg("%s: %s", c.name, vt_last_error());
    assert_true(compare_outs(&c, &g, &r));
    outs_free(&g);
    outs_free(&r);
}

/* ---- segmentation: per-pixel softmax cross-entropy, argmax, confusion, crops with masks ---- */

static void run_vs_reference(tcase *cs, int n) {
    int ok = 1;
    for (int i = 0; i < n; i++) {
        outs g, r;
        vt_status sr = run_case(g_ref, &cs[i], 31 + (uint32_t)i, &r);
        if (sr != VT_OK) fail_msg("%s on the reference: %s", cs[i].name, vt_last_error());
        vt_status sg = run_case(g_vk, &cs[i], 31 + (uint32_t)i, &g);
        if (sg != VT_OK) fail_msg("%s: %s", cs[i].name, vt_last_error());
        if (!compare_outs(&cs[i], &g, &r)) {
            print_message("  FAILED: %s\n", cs[i].name);
            ok = 0;
        }
        outs_free(&g);
        outs_free(&r);
    }
    assert_true(ok);
}

/* Each new shape and parameter against the CPU reference, on odd shapes (N=3, K=7, H=5, W=9), with the
 * ignored labels 255, K and -1 mixed in; one [N,K,H,W] large enough that a single workgroup's rows would
 * run past llvmpipe's 65535 loop iterations. */
static void test_segmentation_ops(void **state) {
    (void)state;
    NEED_VULKAN();
    static tcase cs[16];
    int n = 0;
    memset(cs, 0, sizeof cs);
    for (int ig = 0; ig < 2; ig++)
        for (int bwd = 0; bwd < 2; bwd++) {
            tcase *c = &cs[n++];
            snprintf(c->name, sizeof c->name, "softmax_ce%s [3,7,5,9] ignore %d", bwd ? "_bwd" : "", ig);
            c->op = bwd ? VT_OP_SOFTMAX_CE_BWD : VT_OP_SOFTMAX_CE;
            c->p.ce = (vt_softmax_ce_params){ig ? 0.1f : 0.0f, 1.0f / 135.0f, ig};
            c->src[0] = F4(3, 7, 5, 9);
            c->src[1] = D(VT_I32, ig ? G_SEG : G_LABEL, 3, 3, 5, 9, 1);
            c->k = 7;
            if (bwd) c->dst[0] = F4(3, 7, 5, 9);
            else c->dst[0] = F1(1), c->dst[1] = D(VT_F32, G_ZERO, 1, 3, 1, 1, 1);
        }
    for (int bwd = 0; bwd < 2; bwd++) {
        tcase *c = &cs[n++];
        snprintf(c->name, sizeof c->name, "softmax_ce%s [13,7] ignore 1", bwd ? "_bwd" : "");
        c->op = bwd ? VT_OP_SOFTMAX_CE_BWD : VT_OP_SOFTMAX_CE;
        c->p.ce = (vt_softmax_ce_params){0.1f, 1.0f / 13.0f, 1};
        c->src[0] = F2(13, 7);
        c->src[1] = D(VT_I32, G_SEG, 1, 13, 1, 1, 1);
        c->k = 7;
        if (bwd) c->dst[0] = F2(13, 7);
        else c->dst[0] = F1(1), c->dst[1] = D(VT_F32, G_ZERO, 1, 3, 1, 1, 1);
    }
    {
        tcase *c = &cs[n++];
        snprintf(c->name, sizeof c->name, "softmax_ce [2,21,256,256] ignore 1 (2048 workgroups)");
        c->op = VT_OP_SOFTMAX_CE;
        c->p.ce = (vt_softmax_ce_params){0.0f, 1.0f, 1};
        c->src[0] = F4(2, 21, 256, 256);
        c->src[1] = D(VT_I32, G_SEG, 3, 2, 256, 256, 1);
        c->k = 21;
        c->dst[0] = F1(1), c->dst[1] = D(VT_F32, G_ZERO, 1, 3, 1, 1, 1);
        c->atol = 1e-4; /* float sums of 10^5 losses against the reference's double */
        c->rtol = 1e-5;
    }
    {
        tcase *c = &cs[n++];
        snprintf(c->name, sizeof c->name, "argmax [3,7,5,9]");
        c->op = VT_OP_ARGMAX;
        c->src[0] = D(VT_F32, G_NAN, 4, 3, 7, 5, 9);
        c->dst[0] = D(VT_I32, G_ZERO, 3, 3, 5, 9, 1);
        c = &cs[n++];
        snprintf(c->name, sizeof c->name, "confusion [3,5,9] K=7 accumulated");
        c->op = VT_OP_CONFUSION;
        c->src[0] = D(VT_I32, G_SEG, 3, 3, 5, 9, 1);
        c->src[1] = D(VT_I32, G_SEG, 3, 3, 5, 9, 1);
        c->k = 7;
        c->dst[0] = D(VT_I32, G_COUNT, 2, 8, 8, 1, 1);
        c = &cs[n++];
        snprintf(c->name, sizeof c->name, "confusion [40000] K=2 (collisions)");
        c->op = VT_OP_CONFUSION;
        c->src[0] = D(VT_I32, G_SEG, 1, 40000, 1, 1, 1);
        c->src[1] = D(VT_I32, G_SEG, 1, 40000, 1, 1, 1);
        c->k = 2;
        c->dst[0] = D(VT_I32, G_ZERO, 2, 3, 3, 1, 1);
    }
    /* BATCH_PREP: crops smaller than the image, with and without padding, flip, centre; masks and i32 labels */
    static const int bp[][5] = {/* pad, flip, center, masks, Ho==H */
                                {2, 1, 0, 1, 0}, {0, 1, 0, 1, 0}, {3, 0, 1, 1, 0}, {0, 0, 1, 1, 1},
                                {2, 1, 0, 0, 0}, {1, 1, 1, 0, 0}, {2, 1, 0, 1, 1}};
    for (size_t i = 0; i < sizeof bp / sizeof bp[0]; i++) {
        tcase *c = &cs[n++];
        int64_t Ho = bp[i][4] ? 13 : 9, Wo = bp[i][4] ? 17 : 12;
        snprintf(c->name, sizeof c->name, "batch_prep [11,3,13,17] -> [4,3,%lld,%lld] pad %d flip %d center %d %s",
                 (long long)Ho, (long long)Wo, bp[i][0], bp[i][1], bp[i][2], bp[i][3] ? "masks" : "labels");
        c->op = VT_OP_BATCH_PREP;
        c->p.prep.pad = bp[i][0];
        c->p.prep.flip = bp[i][1];
        c->p.prep.center = bp[i][2];
        c->p.prep.salt = 17u + (uint32_t)i;
        for (int k = 0; k < 4; k++) {
            c->p.prep.mean[k] = 0.45f - 0.05f * (float)k;
            c->p.prep.std[k] = 0.25f + 0.02f * (float)k;
        }
        c->src[0] = D(VT_U8, G_U8, 4, 11, 3, 13, 17);
        c->src[1] = bp[i][3] ? D(VT_U8, G_MASK, 3, 11, 13, 17, 1) : D(VT_I32, G_LABEL, 1, 11, 1, 1, 1);
        c->src[2] = D(VT_I32, G_PERM, 1, 11, 1, 1, 1);
        c->k = 7;
        c->dst[0] = F4(4, 3, Ho, Wo);
        c->dst[1] = bp[i][3] ? D(VT_I32, G_ZERO, 3, 4, Ho, Wo, 1) : D(VT_I32, G_ZERO, 1, 4, 1, 1, 1);
        c->ctx = (vt_step_ctx){0x300000005ull + i, 4321u, 0.05f, 6};
        c->atol = 1e-6;
        c->rtol = 1e-6;
    }
    for (int i = 0; i < n; i++)
        if (!cs[i].atol) cs[i].atol = 1e-5, cs[i].rtol = 1e-4;
    run_vs_reference(cs, n);
}

/* Masks as large as the images' chunks (lavapipe's 128 MB range): bound in chunks like the images. */
static void test_batch_prep_mask_chunks(void **state) {
    (void)state;
    NEED_VULKAN();
    tcase c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "batch_prep masks D1100 [1,360,360] -> [6,1,320,300]");
    c.op = VT_OP_BATCH_PREP;
    c.p.prep.pad = 1;
    c.p.prep.flip = 1;
    c.p.prep.salt = 3u;
    c.p.prep.mean[0] = 0.5f;
    c.p.prep.std[0] = 0.25f;
    c.src[0] = D(VT_U8, G_U8, 4, 1100, 1, 360, 360); /* 143 MB each */
    c.src[1] = D(VT_U8, G_MASK, 3, 1100, 360, 360, 1);
    c.src[2] = D(VT_I32, G_PERM, 1, 1100, 1, 1, 1);
    c.k = 12;
    c.dst[0] = F4(6, 1, 320, 300);
    c.dst[1] = D(VT_I32, G_ZERO, 3, 6, 320, 300, 1);
    c.ctx = (vt_step_ctx){9, 77u, 0.05f, 1090};
    c.atol = 1e-6;
    c.rtol = 1e-6;
    run_vs_reference(&c, 1);
}

/* A segmentation step as the trainer records it: BATCH_PREP with masks (its x as logits of 3 classes),
 * SOFTMAX_CE with ignore and metrics, SOFTMAX_CE_BWD, ARGMAX, CONFUSION; recorded once and replayed with
 * new step values (crops, flips, batch_start) against the CPU reference, step by step. */
typedef struct seg_graph {
    vt_tensor *img, *mask, *perm, *x, *y, *loss, *metrics, *dx, *pred, *counts;
    vt_node n[5];
} seg_graph;

static vt_tensor *newtn(vt_backend *be, vt_dtype dt, int nd, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t s[4] = {a, b, c, d};
    vt_tensor *t;
    assert_int_equal(vt_tensor_new(be, "seg", dt, nd, s, &t), VT_OK);
    size_t nb = vt_tensor_nbytes(t);
    void *z = calloc(1, nb);
    assert_non_null(z);
    assert_int_equal(vt_tensor_upload(t, z, nb), VT_OK);
    free(z);
    return t;
}

static void seg_build(vt_backend *be, seg_graph *g) {
    enum { D = 9, H = 11, W = 14, B = 3, HO = 7, WO = 10, K = 3 };
    memset(g, 0, sizeof *g);
    g->img = newtn(be, VT_U8, 4, D, K, H, W);
    g->mask = newtn(be, VT_U8, 3, D, H, W, 0);
    g->perm = newtn(be, VT_I32, 1, D, 0, 0, 0);
    g->x = newtn(be, VT_F32, 4, B, K, HO, WO);
    g->y = newtn(be, VT_I32, 3, B, HO, WO, 0);
    g->loss = newtn(be, VT_F32, 1, 1, 0, 0, 0);
    g->metrics = newtn(be, VT_F32, 1, 3, 0, 0, 0);
    g->dx = newtn(be, VT_F32, 4, B, K, HO, WO);
    g->pred = newtn(be, VT_I32, 3, B, HO, WO, 0);
    g->counts = newtn(be, VT_I32, 2, K + 1, K + 1, 0, 0);
    vt_rng rng;
    vt_rng_init(&rng, 5, 2);
    static uint8_t img[D * K * H * W], mask[D * H * W];
    int32_t perm[D];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)vt_rng_below(&rng, 256);
    for (size_t i = 0; i < sizeof mask; i++) mask[i] = (uint8_t)(i % 13 == 0 ? 255 : vt_rng_below(&rng, K));
    vt_rng_permutation(&rng, perm, D);
    assert_int_equal(vt_tensor_upload(g->img, img, sizeof img), VT_OK);
    assert_int_equal(vt_tensor_upload(g->mask, mask, sizeof mask), VT_OK);
    assert_int_equal(vt_tensor_upload(g->perm, perm, sizeof perm), VT_OK);
    vt_node *n = g->n;
    n[0].op = VT_OP_BATCH_PREP;
    n[0].p.prep = (vt_batch_prep_params){2, 1, {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 11u, 0};
    n[0].src[0] = g->img, n[0].src[1] = g->mask, n[0].src[2] = g->perm, n[0].dst[0] = g->x, n[0].dst[1] = g->y;
    n[1].op = VT_OP_SOFTMAX_CE;
    n[1].p.ce = (vt_softmax_ce_params){0.05f, 1.0f, 1};
    n[1].src[0] = g->x, n[1].src[1] = g->y, n[1].dst[0] = g->loss, n[1].dst[1] = g->metrics;
    n[2].op = VT_OP_SOFTMAX_CE_BWD;
    n[2].p.ce = (vt_softmax_ce_params){0.05f, 1.0f / (B * HO * WO), 1};
    n[2].src[0] = g->x, n[2].src[1] = g->y, n[2].dst[0] = g->dx;
    n[3].op = VT_OP_ARGMAX;
    n[3].src[0] = g->x, n[3].dst[0] = g->pred;
    n[4].op = VT_OP_CONFUSION;
    n[4].src[0] = g->pred, n[4].src[1] = g->y, n[4].dst[0] = g->counts;
    for (int i = 0; i < 5; i++) snprintf(n[i].label, sizeof n[i].label, "seg.%d", i);
}

static void seg_free(seg_graph *g) {
    vt_tensor *all[] = {g->img, g->mask, g->perm, g->x, g->y, g->loss, g->metrics, g->dx, g->pred, g->counts};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vt_tensor_free(all[i]);
}

static void test_seg_graph_replay(void **state) {
    (void)state;
    NEED_VULKAN();
    seg_graph a, r;
    seg_build(g_vk, &a);
    seg_build(g_ref, &r);
    vt_graph_exec ea = {a.n, 5, NULL, NULL}, er = {r.n, 5, NULL, NULL};
    for (int step = 0; step < 4; step++) {
        vt_step_ctx ctx = {(uint64_t)step * 7 + 1, 100u + (uint32_t)step, 0.1f, (int64_t)(step * 2)};
        assert_int_equal(vt_backend_graph_compute(g_vk, &ea, &ctx), VT_OK);
        assert_int_equal(vt_backend_graph_compute(g_ref, &er, &ctx), VT_OK);
        assert_int_equal(vt_backend_sync(g_vk), VT_OK);
        assert_int_equal(vt_backend_sync(g_ref), VT_OK);
        static float fa[3 * 3 * 7 * 10], fr[3 * 3 * 7 * 10];
        int32_t ia[3 * 7 * 10], ir[3 * 7 * 10];
        read_f(a.x, fa);
        read_f(r.x, fr);
        assert_true(close_enough("seg x", fa, fr, vt_tensor_nelem(a.x), 1e-6, 1e-6));
        read_f(a.dx, fa);
        read_f(r.dx, fr);
        assert_true(close_enough("seg dx", fa, fr, vt_tensor_nelem(a.dx), 1e-6, 1e-4));
        read_f(a.loss, fa);
        read_f(r.loss, fr);
        assert_true(close_enough("seg loss", fa, fr, 1, 1e-5, 1e-4));
        read_f(a.metrics, fa);
        read_f(r.metrics, fr);
        assert_true(close_enough("seg metrics", fa, fr, 3, 1e-4, 1e-4));
        assert_true(fr[2] < (float)((step + 1) * 3 * 7 * 10)); /* some pixels were ignored */
        assert_int_equal(vt_tensor_download(a.y, ia, sizeof ia), VT_OK);
        assert_int_equal(vt_tensor_download(r.y, ir, sizeof ir), VT_OK);
        assert_memory_equal(ia, ir, sizeof ia);
        assert_int_equal(vt_tensor_download(a.counts, ia, 16 * 4), VT_OK);
        assert_int_equal(vt_tensor_download(r.counts, ir, 16 * 4), VT_OK);
        assert_memory_equal(ia, ir, 16 * 4);
    }
    vt_graph_exec_reset(g_vk, &ea);
    vt_graph_exec_reset(g_ref, &er);
    seg_free(&a);
    seg_free(&r);
}

static void test_errors(void **state) {
    (void)state;
    NEED_VULKAN();
    /* more than any heap holds: a clear out-of-memory error, not a crash */
    vt_buffer *b = NULL;
    vt_status s = vt_backend_buffer_alloc(g_vk, (size_t)1 << 46, &b);
    assert_int_equal(s, VT_ERR_OOM);
    assert_non_null(strstr(vt_last_error(), "bytes"));
    /* out-of-range transfers */
    assert_int_equal(vt_backend_buffer_alloc(g_vk, 64, &b), VT_OK);
    char tmp[128] = {0};
    assert_int_equal(g_vk->iface->buffer_write(g_vk, b, 32, tmp, 64), VT_ERR_INVALID_ARG);
    assert_int_equal(g_vk->iface->buffer_read(g_vk, b, 65, tmp, 1), VT_ERR_INVALID_ARG);
    /* a tensor of another backend is not supported, and says so */
    vt_tensor *x, *y;
    int64_t sh[1] = {8};
    assert_int_equal(vt_tensor_new(g_ref, "x", VT_F32, 1, sh, &x), VT_OK);
    assert_int_equal(vt_tensor_new(g_vk, "y", VT_F32, 1, sh, &y), VT_OK);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_ACT;
    n.p.act.kind = VT_ACT_RELU;
    n.src[0] = x;
    n.dst[0] = y;
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_backend_compute(g_vk, &n, &ctx), VT_ERR_UNSUPPORTED);
    vt_tensor_free(x);
    vt_tensor_free(y);
    vt_backend_buffer_free(b);
    assert_int_equal(vt_backend_sync(g_vk), VT_OK);
}

static void test_counters_and_zero_fill(void **state) {
    (void)state;
    NEED_VULKAN();
    vt_tensor *t;
    int64_t sh[1] = {1000};
    assert_int_equal(vt_tensor_new(g_vk, "z", VT_F32, 1, sh, &t), VT_OK);
    float h[1000];
    assert_int_equal(vt_tensor_download(t, h, sizeof h), VT_OK);
    for (int i = 0; i < 1000; i++) assert_true(h[i] == 0.0f);
    vt_backend_counters c0 = g_vk->counters;
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_FILL;
    n.p.fill.value = 3.0f;
    n.dst[0] = t;
    vt_step_ctx ctx = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(vt_backend_compute(g_vk, &n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(g_vk), VT_OK);
    assert_int_equal(vt_tensor_download(t, h, sizeof h), VT_OK);
    assert_true(h[999] == 3.0f);
    assert_int_equal(g_vk->counters.dispatches - c0.dispatches, 5);
    assert_int_equal(g_vk->counters.submits - c0.submits, 1); /* one-off nodes are batched into one submit */
    assert_int_equal(g_vk->counters.downloads - c0.downloads, 1);
    vt_tensor_free(t);
}

/* The pipeline cache is written to cache_dir when the backend is freed and read back by the next one. */
static void test_pipeline_cache(void **state) {
    (void)state;
    NEED_VULKAN();
    char dir[] = "/tmp/vt_vk_cache_XXXXXX";
    assert_non_null(mkdtemp(dir));
    for (int round = 0; round < 2; round++) {
        vt_backend_opts o = {0};
        o.cache_dir = dir;
        vt_backend *be;
        assert_int_equal(vt_backend_init_by_name("vulkan", -1, &o, &be), VT_OK);
        vt_tensor *t;
        int64_t sh[1] = {10};
        assert_int_equal(vt_tensor_new(be, "c", VT_F32, 1, sh, &t), VT_OK);
        vt_node n;
        memset(&n, 0, sizeof n);
        n.op = VT_OP_FILL;
        n.p.fill.value = 1.5f;
        n.dst[0] = t;
        vt_step_ctx ctx = {0};
        assert_int_equal(vt_backend_compute(be, &n, &ctx), VT_OK);
        float h[10];
        assert_int_equal(vt_tensor_download(t, h, sizeof h), VT_OK);
        assert_true(h[9] == 1.5f);
        vt_tensor_free(t);
        vt_backend_free(be);
        DIR *d = opendir(dir);
        assert_non_null(d);
        int files = 0;
        struct dirent *e;
        char path[512] = "";
        while ((e = readdir(d)) != NULL)
            if (strstr(e->d_name, ".pcache")) {
                files++;
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            }
        closedir(d);
        assert_int_equal(files, 1);
        if (round == 1) {
            remove(path);
            rmdir(dir);
        }
    }
}

int main(void) {
    const vt_backend_reg *r = vt_backend_reg_find("vulkan");
    if (!r || r->device_count() <= 0) {
        printf("SKIPPED: no Vulkan device (or the backend is not compiled in)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_info),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_supports_table),
        cmocka_unit_test(test_gelu_erf),
        cmocka_unit_test(test_batch_prep_chunks),
        cmocka_unit_test(test_segmentation_ops),
        cmocka_unit_test(test_batch_prep_mask_chunks),
        cmocka_unit_test(test_seg_graph_replay),
        cmocka_unit_test(test_unaligned_views),
        cmocka_unit_test(test_graph_replay),
        cmocka_unit_test(test_graph_vs_reference),
        cmocka_unit_test(test_sync_bn_graphs),
        cmocka_unit_test(test_gemm_tiled_vs_registers),
        cmocka_unit_test(test_conv_transpose_is_bwd_data),
        cmocka_unit_test(test_gemm_long_k),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_counters_and_zero_fill),
        cmocka_unit_test(test_pipeline_cache),
    };
    return cmocka_run_group_tests_name("vulkan", tests, setup, teardown);
}
