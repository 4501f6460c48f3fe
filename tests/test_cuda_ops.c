/* CUDA backend tests: what is this backend's own (the ops against the CPU reference are the conformance
 * suite's): the options string and the paths it picks, the op table, staging transfers and counters,
 * out-of-memory messages, repeatable reductions, TF32, a whole training step replayed as a CUDA graph
 * with new step values, the synchronised batch norm's pieces replayed as graphs with the host's
 * combinations in between; the segmentation ops' per-pixel shapes, ignored labels, confusion matrix and
 * mask crops against the CPU; and, on machines without a GPU, a clean "no device" answer. */
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
#include "vt/conformance.h"
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

#define NEED_CUDA(be)                                     \
    do {                                                  \
        if (!(be)) {                                      \
            print_message("SKIPPED: no CUDA device\n");   \
            skip();                                       \
            return; /* skip() longjmps; this tells gcc */ \
        }                                                 \
    } while (0)

static vt_backend *open_cpu_reference(void) {
    vt_backend_opts o = {0};
    o.reference = 1;
    vt_backend *be = NULL;
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    return be;
}

enum { GEN_UNIFORM = 0, GEN_LABELS, GEN_PERM, GEN_U8, GEN_ZERO, GEN_SMALL };

typedef struct tspec {
    int ndim;
    int64_t shape[4];
    vt_dtype dt;
    int gen;
} tspec;

static void fill_host(const tspec *s, void *data, int64_t n, int label_k, vt_rng *rng) {
    if (s->dt == VT_F32) {
        float *f = data;
        for (int64_t i = 0; i < n; i++)
            f[i] = s->gen == GEN_SMALL  ? vt_rng_uniform_range(rng, -0.05f, 0.05f)
                   : s->gen == GEN_ZERO ? 0.0f
                                        : vt_rng_uniform_range(rng, -1.0f, 1.0f);
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

/* A tensor on be holding n floats from rng (uniform in [-1, 1)), or zeros without rng. */
static vt_tensor *mk_f32(vt_backend *be, int nd, const int64_t *shape, vt_rng *rng) {
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "t", VT_F32, nd, shape, &t), VT_OK);
    int64_t n = vt_tensor_nelem(t);
    float *h = calloc((size_t)n, sizeof *h);
    assert_non_null(h);
    for (int64_t i = 0; rng && i < n; i++) h[i] = vt_rng_uniform_range(rng, -1.0f, 1.0f);
    assert_int_equal(vt_tensor_upload(t, h, (size_t)n * 4), VT_OK);
    free(h);
    return t;
}

/* ---- the options string, the op table ---- */

/* An unknown key or a bad value stops init with a message naming it and the known keys, whether the
 * string comes from vt_backend_opts.options or from VT_CUDA_OPTIONS. Checked before any device is
 * touched, so this runs without a GPU too. */
static void test_options_refused(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("cuda");
    if (!r) {
        print_message("SKIPPED: the CUDA backend is not compiled in\n");
        skip();
        return;
    }
    static const char *const bad[] = {"cudnn=0,bogus=1", "cudnn=maybe", "verbose", "cudnn=1,cudnn=0"};
    static const char *const named[] = {"bogus", "cudnn", "verbose", "cudnn"};
    for (int i = 0; i < 4; i++) {
        vt_backend_opts o = {0};
        o.options = bad[i];
        vt_backend *be = NULL;
        vt_clear_error();
        assert_int_equal(r->init(0, &o, &be), VT_ERR_INVALID_ARG);
        assert_null(be);
        print_message("options \"%s\": %s\n", bad[i], vt_last_error());
        assert_non_null(strstr(vt_last_error(), "cuda"));
        assert_non_null(strstr(vt_last_error(), named[i]));
    }
    /* From the environment when the caller gives none; the message lists the known keys. */
    const char *was = getenv("VT_CUDA_OPTIONS");
    char saved[256];
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    setenv("VT_CUDA_OPTIONS", "no_such_key=1", 1);
    vt_backend *be = NULL;
    vt_status s = r->init(0, NULL, &be);
    if (was) setenv("VT_CUDA_OPTIONS", saved, 1);
    else unsetenv("VT_CUDA_OPTIONS");
    assert_int_equal(s, VT_ERR_INVALID_ARG);
    assert_null(be);
    assert_non_null(strstr(vt_last_error(), "VT_CUDA_OPTIONS"));
    assert_non_null(strstr(vt_last_error(), "no_such_key"));
    assert_non_null(strstr(vt_last_error(), "cudnn"));
    assert_non_null(strstr(vt_last_error(), "verbose"));
}

typedef struct log_lines {
    char text[8][256];
    int n;
} log_lines;

static void collect_log(vt_log_level level, const char *text, void *user) {
    log_lines *l = user;
    (void)level;
    if (l->n < 8) snprintf(l->text[l->n++], sizeof l->text[0], "%s", text);
}

/* The test program shows everything the library logs (VT_CUDA_OPTIONS=verbose=1: the plans). */
static void print_log(vt_log_level level, const char *text, void *user) {
    (void)level;
    (void)user;
    print_message("log: %s\n", text);
}

/* cudnn=0 takes the convolutions through im2col + cuBLAS (info.config says so), verbose=1 logs each
 * convolution plan through vt_log once, when the plan is made; the plan runs. */
static void test_options_paths(void **state) {
    (void)state;
    vt_backend_opts o = {0};
    o.options = "cudnn=0,verbose=1";
    vt_backend *be = open_cuda(&o);
    NEED_CUDA(be);
    print_message("config: %s\n", be->info.config);
    assert_non_null(strstr(be->info.config, "im2col"));
    static log_lines lines; /* static: the callback may outlive a failed assertion */
    lines.n = 0;
    vt_log_set(collect_log, &lines);
    vt_rng rng;
    vt_rng_init(&rng, 3u, 1);
    int64_t xs[4] = {2, 3, 7, 5}, ws[4] = {4, 3, 3, 3}, ys[4] = {2, 4, 7, 5};
    vt_tensor *x = mk_f32(be, 4, xs, &rng), *w = mk_f32(be, 4, ws, &rng), *y = mk_f32(be, 4, ys, NULL);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_CONV2D;
    n.p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_NONE, 0.0f};
    n.src[0] = x, n.src[1] = w, n.dst[0] = y;
    snprintf(n.label, sizeof n.label, "conv");
    vt_step_ctx ctx = {0};
    for (int i = 0; i < 3; i++) assert_int_equal(vt_backend_compute(be, &n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    vt_log_set(print_log, NULL);
    for (int i = 0; i < lines.n; i++) print_message("log: %s\n", lines.text[i]);
    assert_int_equal(lines.n, 1);
    assert_non_null(strstr(lines.text[0], "conv2d"));
    assert_non_null(strstr(lines.text[0], "im2col"));
    vt_tensor_free(x);
    vt_tensor_free(w);
    vt_tensor_free(y);
    vt_backend_free(be);
    /* With an empty options string (not the environment's): no log. */
    o.options = "";
    be = open_cuda(&o);
    assert_non_null(be);
    lines.n = 0;
    vt_log_set(collect_log, &lines);
    x = mk_f32(be, 4, xs, &rng), w = mk_f32(be, 4, ws, &rng), y = mk_f32(be, 4, ys, NULL);
    n.src[0] = x, n.src[1] = w, n.dst[0] = y;
    assert_int_equal(vt_backend_compute(be, &n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    vt_log_set(print_log, NULL);
    assert_int_equal(lines.n, 0);
    vt_tensor_free(x);
    vt_tensor_free(w);
    vt_tensor_free(y);
    vt_backend_free(be);
}

/* Fills n's dst0 with NaN (an unwritten element shows), runs n on be and returns dst0's floats
 * (malloc'ed). */
static float *compute_dst0(vt_backend *be, const vt_node *n) {
    int64_t cnt = vt_tensor_nelem(n->dst[0]);
    float *h = malloc((size_t)cnt * sizeof *h);
    assert_non_null(h);
    for (int64_t i = 0; i < cnt; i++) h[i] = NAN;
    assert_int_equal(vt_tensor_upload(n->dst[0], h, (size_t)cnt * sizeof *h), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_backend_compute(be, n, &ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    assert_int_equal(vt_tensor_download(n->dst[0], h, (size_t)cnt * sizeof *h), VT_OK);
    return h;
}

/* CONV2D_TRANSPOSE runs as CONV2D_BWD_DATA with dy = x, on both convolution paths: the same plan (one
 * verbose line for the two ops of one shape), the same bits without bias, and with a bias exactly that
 * plus bias[k]. The shape takes PyTorch's output_padding (P, Q one past the smallest) and stride 2. */
static void test_transpose_is_bwd_data(void **state) {
    (void)state;
    const char *paths[] = {"cudnn=0,verbose=1", "verbose=1"};
    for (int pi = 0; pi < 2; pi++) {
        vt_backend_opts o = {0};
        o.options = paths[pi];
        vt_backend *be = open_cuda(&o);
        NEED_CUDA(be);
        print_message("options %s, config: %s\n", paths[pi], be->info.config);
        static log_lines lines; /* static: the callback may outlive a failed assertion */
        lines.n = 0;
        vt_log_set(collect_log, &lines);
        vt_rng rng;
        vt_rng_init(&rng, 11u, 1);
        /* x [N=2, C=3, H=4, W=5], w [C=3, K=2, 3, 3], stride 2, pad 1: P in 7..8, Q in 9..10. */
        int64_t xs[4] = {2, 3, 4, 5}, ws[4] = {3, 2, 3, 3}, bs[1] = {2}, ys[4] = {2, 2, 8, 10};
        vt_tensor *x = mk_f32(be, 4, xs, &rng), *w = mk_f32(be, 4, ws, &rng), *b = mk_f32(be, 1, bs, &rng);
        vt_tensor *y = mk_f32(be, 4, ys, NULL);
        vt_node n;
        memset(&n, 0, sizeof n);
        n.op = VT_OP_CONV2D_BWD_DATA;
        n.p.conv2d = (vt_conv2d_params){2, 2, 1, 1, VT_ACT_NONE, 0.0f};
        n.src[0] = x, n.src[1] = w, n.dst[0] = y;
        snprintf(n.label, sizeof n.label, "up");
        float *bwd = compute_dst0(be, &n);
        n.op = VT_OP_CONV2D_TRANSPOSE;
        float *plain = compute_dst0(be, &n);
        n.src[2] = b;
        float *biased = compute_dst0(be, &n);
        vt_log_set(print_log, NULL);
        for (int i = 0; i < lines.n; i++) print_message("log: %s\n", lines.text[i]);
        assert_int_equal(lines.n, 1);
        if (pi == 0) assert_non_null(strstr(lines.text[0], "im2col"));
        float hb[2];
        assert_int_equal(vt_tensor_download(b, hb, sizeof hb), VT_OK);
        int64_t cnt = vt_tensor_nelem(y), per = ys[2] * ys[3];
        double mag = 0;
        for (int64_t i = 0; i < cnt; i++) {
            float want = bwd[i] + hb[(i / per) % 2];
            if (memcmp(&plain[i], &bwd[i], 4) != 0 || memcmp(&biased[i], &want, 4) != 0)
                fail_msg("%s: element %lld: transpose %.9g, with bias %.9g; bwd_data %.9g, + bias %.9g", paths[pi],
                         (long long)i, (double)plain[i], (double)biased[i], (double)bwd[i], (double)want);
            mag += fabs(bwd[i]);
        }
        assert_true(mag > 0); /* the comparison saw a real result, not two untouched buffers */
        free(bwd);
        free(plain);
        free(biased);
        vt_tensor_free(x);
        vt_tensor_free(w);
        vt_tensor_free(b);
        vt_tensor_free(y);
        vt_backend_free(be);
    }
}

/* supports_node answers from the backend's op table: every op there is, nothing outside the enum. */
static void test_supports_table(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_node n;
    memset(&n, 0, sizeof n);
    const int outside[] = {VT_OP_NONE, VT_OP_COUNT, VT_OP_COUNT + 7, -1};
    for (int i = 0; i < 4; i++) {
        n.op = (vt_op)outside[i];
        assert_false(be->iface->supports_node(be, &n));
    }
    for (int op = VT_OP_NONE + 1; op < VT_OP_COUNT; op++) {
        n.op = (vt_op)op;
        if (!be->iface->supports_node(be, &n)) fail_msg("op %s is not in the cuda table", vt_op_name((vt_op)op));
    }
    vt_backend_free(be);
}

/* ---- repeatable reductions, TF32 ---- */

/* Runs a built-in conformance case on be; the outputs' bytes after the run go to out[]. */
static void run_conf_case(vt_backend *be, const vt_conf_case *def, void *out[VT_MAX_SRC + VT_MAX_DST]) {
    vt_conf_case c;
    vt_conf_case_copy_def(&c, def);
    assert_int_equal(vt_conf_case_materialize(&c), VT_OK);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = c.op;
    n.p = c.p;
    snprintf(n.label, sizeof n.label, "%.40s", c.name);
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        const vt_conf_operand *o = i < VT_MAX_SRC ? &c.src[i] : &c.dst[i - VT_MAX_SRC];
        out[i] = NULL;
        if (!o->present) continue;
        assert_int_equal(vt_tensor_new(be, "t", o->dtype, o->ndim, o->shape, &ts[i]), VT_OK);
        assert_int_equal(vt_tensor_upload(ts[i], o->data, vt_tensor_nbytes(ts[i])), VT_OK);
        if (i < VT_MAX_SRC) n.src[i] = ts[i];
        else n.dst[i - VT_MAX_SRC] = ts[i];
    }
    assert_int_equal(vt_backend_compute(be, &n, &c.ctx), VT_OK);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        if (!ts[i]) continue;
        const vt_conf_operand *o = i < VT_MAX_SRC ? &c.src[i] : &c.dst[i - VT_MAX_SRC];
        if (o->is_output) {
            out[i] = malloc(vt_tensor_nbytes(ts[i]));
            assert_non_null(out[i]);
            assert_int_equal(vt_tensor_download(ts[i], out[i], vt_tensor_nbytes(ts[i])), VT_OK);
        }
        vt_tensor_free(ts[i]);
    }
    vt_conf_case_release(&c);
}

/* Reductions (BN, bias gradient, loss, weight gradients, the gathers of the backward ops) use fixed
 * trees, no float atomics: the conformance cases of those ops repeat bit for bit. */
static void test_deterministic(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    int checked = 0;
    for (int i = 0; i < vt_conf_builtin_count(); i++) {
        const vt_conf_case *c = vt_conf_builtin(i);
        if (c->op != VT_OP_BATCHNORM && c->op != VT_OP_BATCHNORM_BWD && c->op != VT_OP_BIAS_GRAD &&
            c->op != VT_OP_SOFTMAX_CE && c->op != VT_OP_CONV2D_BWD_WEIGHT && c->op != VT_OP_CONV2D_BWD_DATA &&
            c->op != VT_OP_POOL2D_BWD && c->op != VT_OP_UPSAMPLE_BWD && c->op != VT_OP_BN_STATS &&
            c->op != VT_OP_BN_BWD_STATS && c->op != VT_OP_CONV2D_TRANSPOSE)
            continue;
        void *a[VT_MAX_SRC + VT_MAX_DST], *b[VT_MAX_SRC + VT_MAX_DST];
        run_conf_case(be, c, a);
        run_conf_case(be, c, b);
        for (int t = 0; t < VT_MAX_SRC + VT_MAX_DST; t++) {
            if (!a[t]) continue;
            const vt_conf_operand *o = t < VT_MAX_SRC ? &c->src[t] : &c->dst[t - VT_MAX_SRC];
            size_t bytes = vt_dtype_size(o->dtype);
            for (int d = 0; d < o->ndim; d++) bytes *= (size_t)o->shape[d];
            if (memcmp(a[t], b[t], bytes) != 0) fail_msg("%s: operand %d differs between two runs", c->name, t);
            free(a[t]);
            free(b[t]);
        }
        checked++;
    }
    print_message("%d cases repeated bit for bit\n", checked);
    assert_true(checked >= 20);
    vt_backend_free(be);
}

/* C = A B^T on be, downloaded. */
static float *matmul_nt(vt_backend *be, int M, int N, int K) {
    vt_rng rng;
    vt_rng_init(&rng, 3u, 7);
    int64_t as[2] = {M, K}, bs[2] = {N, K}, cs[2] = {M, N};
    vt_tensor *a = mk_f32(be, 2, as, &rng), *b = mk_f32(be, 2, bs, &rng), *c = mk_f32(be, 2, cs, NULL);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_MATMUL;
    n.p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0.0f};
    n.src[0] = a, n.src[1] = b, n.dst[0] = c;
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_backend_compute(be, &n, &ctx), VT_OK);
    float *h = malloc((size_t)M * N * 4);
    assert_non_null(h);
    assert_int_equal(vt_tensor_download(c, h, (size_t)M * N * 4), VT_OK);
    vt_tensor_free(a);
    vt_tensor_free(b);
    vt_tensor_free(c);
    return h;
}

/* TF32 is off by default (results match FP32 closely: the conformance suite); on, they match loosely. */
static void test_tf32(void **state) {
    (void)state;
    vt_backend_opts o = {0};
    o.tf32 = 1;
    vt_backend *cu = open_cuda(&o);
    NEED_CUDA(cu);
    assert_non_null(strstr(cu->info.config, "TF32"));
    vt_backend *cpu = open_cpu_reference();
    float *r = matmul_nt(cpu, 128, 256, 512), *g = matmul_nt(cu, 128, 256, 512);
    /* TF32 keeps 10 mantissa bits: each product is off by ~6e-4 relative, so the normalised error
     * is ~3e-7 and single elements may be off by a few 1e-3; far more means TF32 is broken. */
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
    free(r);
    free(g);
    vt_backend_free(cpu);
    vt_backend_free(cu);
}

/* Runs everywhere: with no driver or GPU the registry answers 0 devices and says why, without crashing. */
static void test_no_device_is_clean(void **state) {
    (void)state;
    const vt_backend_reg *r = vt_backend_reg_find("cuda");
    if (!r) {
        print_message("SKIPPED: the CUDA backend is not compiled in\n");
        skip();
        return;
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
        return;
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

/* ---- a whole training step as one graph ---- */

enum { D_ = 40, B_ = 8, C_ = 3, H_ = 8, K1 = 4, F_ = K1 * H_ * H_, NCLS = 10 };

enum {
    T_IMG,
    T_LAB,
    T_PERM,
    T_X,
    T_Y,
    T_W1,
    T_B1,
    T_H,
    T_HD,
    T_W2,
    T_B2,
    T_LOGIT,
    T_LOSS,
    T_MET,
    T_DLOGIT,
    T_DW2,
    T_DB2,
    T_M2,
    T_V2,
    T_DHD,
    T_DH,
    T_DH2,
    T_DW1,
    T_DB1,
    T_MW1,
    T_MB1,
    T_COUNT
};

typedef struct step_graph {
    vt_tensor *t[T_COUNT];
    vt_tensor hd2, dhd2; /* [B, F] views of hd and dhd */
    vt_node nodes[16];
    int n;
} step_graph;

static void sg_build(vt_backend *be, step_graph *g) {
    memset(g, 0, sizeof *g);
    const struct {
        int id;
        vt_dtype dt;
        int nd;
        int64_t s[4];
        int gen;
    } spec[] = {
        {T_IMG, VT_U8, 4, {D_, C_, H_, H_}, GEN_U8},
        {T_LAB, VT_I32, 1, {D_}, GEN_LABELS},
        {T_PERM, VT_I32, 1, {D_}, GEN_PERM},
        {T_X, VT_F32, 4, {B_, C_, H_, H_}, GEN_ZERO},
        {T_Y, VT_I32, 1, {B_}, GEN_ZERO},
        {T_W1, VT_F32, 4, {K1, C_, 3, 3}, GEN_SMALL},
        {T_B1, VT_F32, 1, {K1}, GEN_UNIFORM},
        {T_H, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_HD, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_W2, VT_F32, 2, {NCLS, F_}, GEN_SMALL},
        {T_B2, VT_F32, 1, {NCLS}, GEN_UNIFORM},
        {T_LOGIT, VT_F32, 2, {B_, NCLS}, GEN_ZERO},
        {T_LOSS, VT_F32, 1, {1}, GEN_ZERO},
        {T_MET, VT_F32, 1, {3}, GEN_ZERO},
        {T_DLOGIT, VT_F32, 2, {B_, NCLS}, GEN_ZERO},
        {T_DW2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},
        {T_DB2, VT_F32, 1, {NCLS}, GEN_ZERO},
        {T_M2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},
        {T_V2, VT_F32, 2, {NCLS, F_}, GEN_ZERO},
        {T_DHD, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_DH, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_DH2, VT_F32, 4, {B_, K1, H_, H_}, GEN_ZERO},
        {T_DW1, VT_F32, 4, {K1, C_, 3, 3}, GEN_ZERO},
        {T_DB1, VT_F32, 1, {K1}, GEN_ZERO},
        {T_MW1, VT_F32, 4, {K1, C_, 3, 3}, GEN_ZERO},
        {T_MB1, VT_F32, 1, {K1}, GEN_ZERO},
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
#define NODE(o) \
    (n = &g->nodes[g->n++], memset(n, 0, sizeof *n), n->op = (o), snprintf(n->label, sizeof n->label, "step%d", g->n))
    NODE(VT_OP_BATCH_PREP);
    n->p.prep = (vt_batch_prep_params){2, 1, {0.5f, 0.5f, 0.5f, 0}, {0.25f, 0.25f, 0.25f, 1}, 5u, 0};
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
    n->p.ce = (vt_softmax_ce_params){0.1f, 1.0f / B_, 0};
    n->src[0] = t[T_LOGIT], n->src[1] = t[T_Y], n->dst[0] = t[T_LOSS], n->dst[1] = t[T_MET];
    NODE(VT_OP_SOFTMAX_CE_BWD);
    n->p.ce = (vt_softmax_ce_params){0.1f, 1.0f / B_, 0};
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

/* ---- the synchronised batch norm in captured graphs ---- */

enum { SB_R = 2, SB_NL = 3, SB_C = 5, SB_H = 7, SB_W = 3, SB_HW = SB_H * SB_W, SB_X = SB_NL * SB_C * SB_HW };

/* As the trainer's host does at the sync points: stats [2, C] of equal-count ranks become the whole
 * batch's mean and biased variance; sums [2, C] become their sum over the ranks. In double. */
static void sb_combine(float st[SB_R][2 * SB_C], float sums[SB_R][2 * SB_C], int which) {
    for (int c = 0; c < SB_C; c++) {
        double m = 0, v = 0, s0 = 0, s1 = 0;
        for (int r = 0; r < SB_R; r++) m += st[r][c];
        m /= SB_R;
        for (int r = 0; r < SB_R; r++) {
            double d = st[r][c] - m;
            v += st[r][SB_C + c] + d * d;
            s0 += sums[r][c];
            s1 += sums[r][SB_C + c];
        }
        for (int r = 0; r < SB_R; r++) {
            if (which == 0) st[r][c] = (float)m, st[r][SB_C + c] = (float)(v / SB_R);
            else sums[r][c] = (float)s0, sums[r][SB_C + c] = (float)s1;
        }
    }
}

/* Two ranks on one device, each step cut at the two sync points into three graphs per rank
 * (BN_STATS | BN_APPLY, BN_BWD_STATS | BN_BWD_APPLY), the host combining stats and sums in between,
 * against BATCHNORM / BATCHNORM_BWD of the whole batch on the same device. The graphs are captured on
 * the first step and replayed after: they must read the data and the combined stats and sums of each
 * step from device memory, not what the capture saw. */
static void test_sync_bn_graph_replay(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    enum { STEPS = 3 };
    vt_rng rng;
    vt_rng_init(&rng, 11u, 5);
    const float momentum = 0.1f, eps = 1e-5f;
    int64_t xs[4] = {SB_NL, SB_C, SB_H, SB_W}, fs[4] = {SB_R * SB_NL, SB_C, SB_H, SB_W}, cs[1] = {SB_C},
            ss[2] = {2, SB_C};
    vt_tensor *g = mk_f32(be, 1, cs, &rng), *b = mk_f32(be, 1, cs, &rng);
    vt_tensor *x[SB_R], *dy[SB_R], *y[SB_R], *dx[SB_R], *st[SB_R], *sums[SB_R], *rm[SB_R], *rv[SB_R], *dg[SB_R],
        *db[SB_R];
    for (int r = 0; r < SB_R; r++) {
        x[r] = mk_f32(be, 4, xs, NULL), dy[r] = mk_f32(be, 4, xs, NULL), y[r] = mk_f32(be, 4, xs, NULL);
        dx[r] = mk_f32(be, 4, xs, NULL), st[r] = mk_f32(be, 2, ss, NULL), sums[r] = mk_f32(be, 2, ss, NULL);
        rm[r] = mk_f32(be, 1, cs, NULL), rv[r] = mk_f32(be, 1, cs, NULL), dg[r] = mk_f32(be, 1, cs, NULL);
        db[r] = mk_f32(be, 1, cs, NULL);
    }
    vt_tensor *fx = mk_f32(be, 4, fs, NULL), *fdy = mk_f32(be, 4, fs, NULL), *fy = mk_f32(be, 4, fs, NULL),
              *fdx = mk_f32(be, 4, fs, NULL), *frm = mk_f32(be, 1, cs, NULL), *frv = mk_f32(be, 1, cs, NULL),
              *fmean = mk_f32(be, 1, cs, NULL), *finv = mk_f32(be, 1, cs, NULL), *fdg = mk_f32(be, 1, cs, NULL),
              *fdb = mk_f32(be, 1, cs, NULL);
    float ones[SB_C];
    for (int c = 0; c < SB_C; c++) ones[c] = 1.0f;
    assert_int_equal(vt_tensor_upload(frv, ones, sizeof ones), VT_OK);
    for (int r = 0; r < SB_R; r++) assert_int_equal(vt_tensor_upload(rv[r], ones, sizeof ones), VT_OK);

    vt_batchnorm_params bp = {1, momentum, eps, (int64_t)SB_R * SB_NL * SB_HW};
    vt_node nodes[SB_R][4];
    vt_graph_exec ex[SB_R][3];
    memset(nodes, 0, sizeof nodes);
    for (int r = 0; r < SB_R; r++) {
        vt_node *n = nodes[r];
        for (int i = 0; i < 4; i++) n[i].p.bn = bp, snprintf(n[i].label, sizeof n[i].label, "rank%d.%d", r, i);
        n[0].op = VT_OP_BN_STATS;
        n[0].src[0] = x[r], n[0].dst[0] = st[r];
        n[1].op = VT_OP_BN_APPLY;
        n[1].src[0] = x[r], n[1].src[1] = g, n[1].src[2] = b, n[1].src[3] = st[r];
        n[1].dst[0] = y[r], n[1].dst[1] = rm[r], n[1].dst[2] = rv[r];
        n[2].op = VT_OP_BN_BWD_STATS;
        n[2].src[0] = dy[r], n[2].src[1] = x[r], n[2].src[2] = st[r];
        n[2].dst[0] = dg[r], n[2].dst[1] = db[r], n[2].dst[2] = sums[r];
        n[3].op = VT_OP_BN_BWD_APPLY;
        n[3].src[0] = dy[r], n[3].src[1] = x[r], n[3].src[2] = g, n[3].src[3] = st[r], n[3].src[4] = sums[r];
        n[3].dst[0] = dx[r];
        ex[r][0] = (vt_graph_exec){&n[0], 1, NULL, NULL};
        ex[r][1] = (vt_graph_exec){&n[1], 2, NULL, NULL};
        ex[r][2] = (vt_graph_exec){&n[3], 1, NULL, NULL};
    }
    vt_node fwd, bwd;
    memset(&fwd, 0, sizeof fwd);
    memset(&bwd, 0, sizeof bwd);
    fwd.op = VT_OP_BATCHNORM, bwd.op = VT_OP_BATCHNORM_BWD;
    fwd.p.bn = bwd.p.bn = (vt_batchnorm_params){1, momentum, eps, 0};
    fwd.src[0] = fx, fwd.src[1] = g, fwd.src[2] = b, fwd.src[3] = frm, fwd.src[4] = frv;
    fwd.dst[0] = fy, fwd.dst[1] = fmean, fwd.dst[2] = finv;
    bwd.src[0] = fdy, bwd.src[1] = fx, bwd.src[2] = g, bwd.src[3] = fmean, bwd.src[4] = finv;
    bwd.dst[0] = fdx, bwd.dst[1] = fdg, bwd.dst[2] = fdb;
    snprintf(fwd.label, sizeof fwd.label, "whole");
    snprintf(bwd.label, sizeof bwd.label, "whole bwd");

    memset(&be->counters, 0, sizeof be->counters);
    uint64_t ref_dispatches = 0;
    static float hx[SB_R * SB_X], hdy[SB_R * SB_X], got[SB_R * SB_X], want[SB_R * SB_X];
    float hst[SB_R][2 * SB_C] = {{0}}, hsums[SB_R][2 * SB_C] = {{0}};
    vt_step_ctx ctx = {0};
    for (int step = 0; step < STEPS; step++) {
        /* Data of another scale and offset each step: stale values would show. */
        for (int i = 0; i < SB_R * SB_X; i++) {
            hx[i] = (float)(step + 1) * vt_rng_uniform_range(&rng, -1.0f, 1.0f) + 0.5f * (float)step;
            hdy[i] = vt_rng_uniform_range(&rng, -1.0f, 1.0f);
        }
        assert_int_equal(vt_tensor_upload(fx, hx, sizeof hx), VT_OK);
        assert_int_equal(vt_tensor_upload(fdy, hdy, sizeof hdy), VT_OK);
        for (int r = 0; r < SB_R; r++) {
            /* Rank r holds samples [r*NL, (r+1)*NL) of the whole batch. */
            assert_int_equal(vt_tensor_upload(x[r], hx + r * SB_X, SB_X * 4), VT_OK);
            assert_int_equal(vt_tensor_upload(dy[r], hdy + r * SB_X, SB_X * 4), VT_OK);
        }
        for (int piece = 0; piece < 3; piece++) {
            for (int r = 0; r < SB_R; r++) assert_int_equal(vt_backend_graph_compute(be, &ex[r][piece], &ctx), VT_OK);
            if (piece == 2) break;
            vt_tensor **t = piece == 0 ? st : sums;
            float(*h)[2 * SB_C] = piece == 0 ? hst : hsums;
            for (int r = 0; r < SB_R; r++) assert_int_equal(vt_tensor_download(t[r], h[r], sizeof h[r]), VT_OK);
            sb_combine(hst, hsums, piece);
            for (int r = 0; r < SB_R; r++) assert_int_equal(vt_tensor_upload(t[r], h[r], sizeof h[r]), VT_OK);
        }
        uint64_t before = be->counters.dispatches;
        assert_int_equal(vt_backend_compute(be, &fwd, &ctx), VT_OK);
        assert_int_equal(vt_backend_compute(be, &bwd, &ctx), VT_OK);
        ref_dispatches += be->counters.dispatches - before;
        assert_int_equal(vt_backend_sync(be), VT_OK);

        char what[64];
        vt_tensor *pairs[2][3] = {{fy, y[0], y[1]}, {fdx, dx[0], dx[1]}};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(vt_tensor_download(pairs[k][0], want, sizeof want), VT_OK);
            for (int r = 0; r < SB_R; r++)
                assert_int_equal(vt_tensor_download(pairs[k][1 + r], got + r * SB_X, SB_X * 4), VT_OK);
            snprintf(what, sizeof what, "step %d %s", step, k ? "dx" : "y");
            assert_true(close_enough(what, got, want, SB_R * SB_X, 1e-5, 1e-4));
        }
        /* Each rank's dgamma, dbeta are its own share: they add up to the whole batch's. */
        float wg[SB_C], wb[SB_C], sg[SB_C] = {0}, sbt[SB_C] = {0}, part[SB_C];
        assert_int_equal(vt_tensor_download(fdg, wg, sizeof wg), VT_OK);
        assert_int_equal(vt_tensor_download(fdb, wb, sizeof wb), VT_OK);
        for (int r = 0; r < SB_R; r++) {
            assert_int_equal(vt_tensor_download(dg[r], part, sizeof part), VT_OK);
            for (int c = 0; c < SB_C; c++) sg[c] += part[c];
            assert_int_equal(vt_tensor_download(db[r], part, sizeof part), VT_OK);
            for (int c = 0; c < SB_C; c++) sbt[c] += part[c];
        }
        snprintf(what, sizeof what, "step %d dgamma", step);
        assert_true(close_enough(what, sg, wg, SB_C, 1e-5, 1e-4));
        snprintf(what, sizeof what, "step %d dbeta", step);
        assert_true(close_enough(what, sbt, wb, SB_C, 1e-5, 1e-4));
    }
    /* Every rank's running statistics follow the whole batch's. */
    float wrm[SB_C], wrv[SB_C], grm[SB_C], grv[SB_C];
    assert_int_equal(vt_tensor_download(frm, wrm, sizeof wrm), VT_OK);
    assert_int_equal(vt_tensor_download(frv, wrv, sizeof wrv), VT_OK);
    for (int r = 0; r < SB_R; r++) {
        assert_int_equal(vt_tensor_download(rm[r], grm, sizeof grm), VT_OK);
        assert_int_equal(vt_tensor_download(rv[r], grv, sizeof grv), VT_OK);
        assert_true(close_enough("running mean", grm, wrm, SB_C, 1e-6, 1e-5));
        assert_true(close_enough("running var", grv, wrv, SB_C, 1e-6, 1e-5));
    }
    /* The first step ran each piece eagerly and captured it; the others replayed the captures. */
    assert_int_equal(be->counters.submits, (uint64_t)SB_R * 3 * (STEPS - 1));
    assert_int_equal(be->counters.dispatches - ref_dispatches, (uint64_t)STEPS * SB_R * 4);
    for (int r = 0; r < SB_R; r++) {
        for (int piece = 0; piece < 3; piece++) vt_graph_exec_reset(be, &ex[r][piece]);
        vt_tensor *all[] = {x[r], dy[r], y[r], dx[r], st[r], sums[r], rm[r], rv[r], dg[r], db[r]};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) vt_tensor_free(all[i]);
    }
    vt_tensor *rest[] = {g, b, fx, fdy, fy, fdx, frm, frv, fmean, finv, fdg, fdb};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) vt_tensor_free(rest[i]);
    vt_backend_free(be);
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

/* ---- segmentation: per-pixel loss, argmax, confusion, crops with masks, against the CPU ---- */

typedef struct seg_arg {
    vt_dtype dt;
    int ndim;
    int64_t shape[4];
    const void *data; /* contents before the run; NULL: zeros */
} seg_arg;

static size_t seg_bytes(const seg_arg *a) {
    size_t n = vt_dtype_size(a->dt);
    for (int d = 0; d < a->ndim; d++) n *= (size_t)a->shape[d];
    return n;
}

/* Runs op on be with the operands given (dst[1].ndim = 0: absent); out[i] gets dst i afterwards. */
static void seg_run(vt_backend *be, vt_op op, const vt_op_params *p, const vt_step_ctx *ctx, const seg_arg *src, int ns,
                    const seg_arg *dst, int nd, void *out[VT_MAX_DST]) {
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.p = *p;
    snprintf(n.label, sizeof n.label, "seg %s", vt_op_name(op));
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    for (int i = 0; i < ns + nd; i++) {
        const seg_arg *a = i < ns ? &src[i] : &dst[i - ns];
        if (a->ndim == 0) continue;
        assert_int_equal(vt_tensor_new(be, "t", a->dt, a->ndim, a->shape, &ts[i]), VT_OK);
        void *zero = calloc(1, seg_bytes(a));
        assert_non_null(zero);
        assert_int_equal(vt_tensor_upload(ts[i], a->data ? a->data : zero, seg_bytes(a)), VT_OK);
        free(zero);
        if (i < ns) n.src[i] = ts[i];
        else n.dst[i - ns] = ts[i];
    }
    if (vt_backend_compute(be, &n, ctx) != VT_OK) fail_msg("%s on %s: %s", n.label, be->info.backend, vt_last_error());
    assert_int_equal(vt_backend_sync(be), VT_OK);
    for (int i = 0; i < nd; i++) {
        out[i] = NULL;
        if (!ts[ns + i]) continue;
        out[i] = malloc(seg_bytes(&dst[i]));
        assert_non_null(out[i]);
        assert_int_equal(vt_tensor_download(ts[ns + i], out[i], seg_bytes(&dst[i])), VT_OK);
    }
    for (int i = 0; i < ns + nd; i++)
        if (ts[i]) vt_tensor_free(ts[i]);
}

/* The same run on cuda and on the CPU reference; f32 outputs within (atol, rtol), i32 exactly. */
static void seg_compare(vt_backend *be, vt_backend *cpu, const char *what, vt_op op, const vt_op_params *p,
                        const vt_step_ctx *ctx, const seg_arg *src, int ns, const seg_arg *dst, int nd, double atol,
                        double rtol) {
    void *got[VT_MAX_DST], *want[VT_MAX_DST];
    seg_run(be, op, p, ctx, src, ns, dst, nd, got);
    seg_run(cpu, op, p, ctx, src, ns, dst, nd, want);
    for (int i = 0; i < nd; i++) {
        if (!got[i]) continue;
        int64_t cnt = (int64_t)(seg_bytes(&dst[i]) / 4);
        char name[96];
        snprintf(name, sizeof name, "%s dst%d", what, i);
        if (dst[i].dt == VT_F32) {
            if (!close_enough(name, got[i], want[i], cnt, atol, rtol)) fail_msg("%s differs from the reference", name);
        } else {
            const int32_t *g = got[i], *w = want[i];
            for (int64_t k = 0; k < cnt; k++)
                if (g[k] != w[k]) fail_msg("%s: element %lld is %d, the reference %d", name, (long long)k, g[k], w[k]);
        }
        free(got[i]);
        free(want[i]);
    }
}

enum { SEG_N = 3, SEG_K = 7, SEG_H = 5, SEG_W = 9, SEG_ROWS = SEG_N * SEG_H * SEG_W };

/* Labels of [SEG_N, SEG_H, SEG_W]: valid, or (ignored) 255 and K mixed in; returns how many count. */
static int seg_labels(int32_t *y, int ignored, vt_rng *rng) {
    int counted = 0;
    for (int i = 0; i < SEG_ROWS; i++) {
        uint32_t u = vt_rng_below(rng, 4 * SEG_K);
        y[i] = ignored && u < SEG_K ? (u & 1 ? 255 : SEG_K) : (int32_t)(u % SEG_K);
        counted += y[i] < SEG_K;
    }
    return counted;
}

/* SOFTMAX_CE and SOFTMAX_CE_BWD on per-pixel logits [3,7,5,9], with and without ignored labels and
 * label smoothing; the metrics accumulate onto non-zero values and count only the counted pixels. */
static void test_seg_softmax_ce(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_backend *cpu = open_cpu_reference();
    vt_rng rng;
    vt_rng_init(&rng, 21u, 3);
    static float logits[SEG_N * SEG_K * SEG_H * SEG_W];
    static int32_t labels[SEG_ROWS];
    for (size_t i = 0; i < sizeof logits / sizeof logits[0]; i++) logits[i] = 3.0f * vt_rng_uniform_range(&rng, -1, 1);
    float met0[3] = {1.5f, 2.0f, 7.0f};
    for (int v = 0; v < 4; v++) {
        int ignore = v >= 2;
        float e = (v & 1) ? 0.1f : 0.0f;
        int counted = seg_labels(labels, ignore, &rng);
        if (ignore) assert_true(counted > 0 && counted < SEG_ROWS); /* both kinds of row are there */
        vt_op_params p;
        memset(&p, 0, sizeof p);
        p.ce = (vt_softmax_ce_params){e, 1.0f / SEG_ROWS, ignore};
        seg_arg src[2] = {{VT_F32, 4, {SEG_N, SEG_K, SEG_H, SEG_W}, logits},
                          {VT_I32, 3, {SEG_N, SEG_H, SEG_W}, labels}};
        seg_arg dst[2] = {{VT_F32, 1, {1}, NULL}, {VT_F32, 1, {3}, met0}};
        char what[64];
        snprintf(what, sizeof what, "softmax_ce ignore=%d e=%g", ignore, (double)e);
        seg_compare(be, cpu, what, VT_OP_SOFTMAX_CE, &p, NULL, src, 2, dst, 2, 1e-6, 1e-5);
        void *out[VT_MAX_DST];
        seg_run(be, VT_OP_SOFTMAX_CE, &p, NULL, src, 2, dst, 2, out);
        assert_true(((float *)out[1])[2] == met0[2] + (float)counted); /* m[2] counts the counted pixels */
        assert_true(((float *)out[0])[0] > 0.0f);
        free(out[0]);
        free(out[1]);
        seg_arg dl = {VT_F32, 4, {SEG_N, SEG_K, SEG_H, SEG_W}, NULL};
        snprintf(what, sizeof what, "softmax_ce_bwd ignore=%d e=%g", ignore, (double)e);
        seg_compare(be, cpu, what, VT_OP_SOFTMAX_CE_BWD, &p, NULL, src, 2, &dl, 1, 1e-6, 1e-4);
    }
    vt_backend_free(cpu);
    vt_backend_free(be);
}

/* ARGMAX over axis 1 of [3,7,5,9], with ties (the first maximum wins) and NaN (never greater). */
static void test_seg_argmax(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_backend *cpu = open_cpu_reference();
    vt_rng rng;
    vt_rng_init(&rng, 22u, 3);
    static float x[SEG_N * SEG_K * SEG_H * SEG_W];
    const int S = SEG_H * SEG_W;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)vt_rng_below(&rng, 4); /* many ties */
    x[0] = NAN;                                                                              /* pixel 0: class 0 NaN */
    x[1 * S + 1] = NAN;                                                                      /* pixel 1: class 1 NaN */
    vt_op_params p;
    memset(&p, 0, sizeof p);
    seg_arg src = {VT_F32, 4, {SEG_N, SEG_K, SEG_H, SEG_W}, x};
    seg_arg dst = {VT_I32, 3, {SEG_N, SEG_H, SEG_W}, NULL};
    seg_compare(be, cpu, "argmax", VT_OP_ARGMAX, &p, NULL, &src, 1, &dst, 1, 0, 0);
    vt_backend_free(cpu);
    vt_backend_free(be);
}

/* CONFUSION accumulates onto counts that are not zero, out-of-range predictions and truths (255, K,
 * -1) in row/column K; K = 70 is past the per-block shared-memory matrix. */
static void test_seg_confusion(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_backend *cpu = open_cpu_reference();
    vt_rng rng;
    vt_rng_init(&rng, 23u, 3);
    static int32_t pred[SEG_ROWS], truth[SEG_ROWS], counts[71 * 71];
    const int ks[2] = {SEG_K, 70};
    for (int ki = 0; ki < 2; ki++) {
        int K = ks[ki];
        for (int i = 0; i < SEG_ROWS; i++) {
            pred[i] = (int32_t)vt_rng_below(&rng, (uint32_t)K + 1);                                   /* K: no class */
            truth[i] = i % 5 == 0 ? 255 : i % 7 == 0 ? -1 : (int32_t)vt_rng_below(&rng, (uint32_t)K); /* ignored */
        }
        int64_t sum0 = 0;
        for (int i = 0; i < (K + 1) * (K + 1); i++) sum0 += counts[i] = (int32_t)vt_rng_below(&rng, 100);
        vt_op_params p;
        memset(&p, 0, sizeof p);
        seg_arg src[2] = {{VT_I32, 3, {SEG_N, SEG_H, SEG_W}, pred}, {VT_I32, 3, {SEG_N, SEG_H, SEG_W}, truth}};
        seg_arg dst = {VT_I32, 2, {K + 1, K + 1}, counts};
        char what[32];
        snprintf(what, sizeof what, "confusion K=%d", K);
        seg_compare(be, cpu, what, VT_OP_CONFUSION, &p, NULL, src, 2, &dst, 1, 0, 0);
        void *out[VT_MAX_DST];
        seg_run(be, VT_OP_CONFUSION, &p, NULL, src, 2, &dst, 1, out);
        const int32_t *c = out[0];
        int64_t sum = 0, row_k = 0;
        for (int i = 0; i < (K + 1) * (K + 1); i++) sum += c[i];
        for (int q = 0; q <= K; q++) row_k += c[K * (K + 1) + q] - counts[K * (K + 1) + q];
        assert_int_equal(sum, sum0 + SEG_ROWS); /* every pixel once */
        int ignored = 0;
        for (int i = 0; i < SEG_ROWS; i++) ignored += truth[i] < 0 || truth[i] >= K;
        assert_int_equal(row_k, ignored);
        free(out[0]);
    }
    vt_backend_free(cpu);
    vt_backend_free(be);
}

/* BATCH_PREP of a masks dataset [D,3,13,17] + u8 [D,13,17] into crops [B,3,8,11] + i32 [B,8,11]: drawn
 * and centred crops, padding, flips, over several steps; the labels 255 outside the image. */
static void test_seg_batch_prep(void **state) {
    (void)state;
    vt_backend *be = open_cuda(NULL);
    NEED_CUDA(be);
    vt_backend *cpu = open_cpu_reference();
    vt_rng rng;
    vt_rng_init(&rng, 24u, 3);
    enum { D = 7, C = 3, IH = 13, IW = 17, B = 5, OH = 8, OW = 11 };
    static uint8_t img[D * C * IH * IW], mask[D * IH * IW];
    static int32_t perm[D];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)vt_rng_below(&rng, 256);
    for (size_t i = 0; i < sizeof mask; i++) mask[i] = (uint8_t)(i % 11 == 3 ? 255 : vt_rng_below(&rng, 12));
    vt_rng_permutation(&rng, perm, D);
    int saw_outside = 0;
    for (int v = 0; v < 4; v++) {
        vt_op_params p;
        memset(&p, 0, sizeof p);
        p.prep =
            (vt_batch_prep_params){v == 0 ? 0 : 2, v != 1, {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 77u, v == 3};
        for (int step = 0; step < 3; step++) {
            vt_step_ctx ctx = {0x200000001ull + (uint64_t)step * 13, 99u, 0.1f, step};
            seg_arg src[3] = {{VT_U8, 4, {D, C, IH, IW}, img}, {VT_U8, 3, {D, IH, IW}, mask}, {VT_I32, 1, {D}, perm}};
            seg_arg dst[2] = {{VT_F32, 4, {B, C, OH, OW}, NULL}, {VT_I32, 3, {B, OH, OW}, NULL}};
            char what[64];
            snprintf(what, sizeof what, "batch_prep pad=%d flip=%d center=%d step %d", p.prep.pad, p.prep.flip,
                     p.prep.center, step);
            seg_compare(be, cpu, what, VT_OP_BATCH_PREP, &p, &ctx, src, 3, dst, 2, 0, 0);
            void *out[VT_MAX_DST];
            seg_run(be, VT_OP_BATCH_PREP, &p, &ctx, src, 3, dst, 2, out);
            for (int i = 0; i < B * OH * OW; i++) saw_outside |= ((int32_t *)out[1])[i] == 255;
            free(out[0]);
            free(out[1]);
        }
    }
    assert_true(saw_outside); /* the comparison saw labels of mask 255 or outside the image */
    vt_backend_free(cpu);
    vt_backend_free(be);
}

int main(void) {
    vt_log_set(print_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_device_is_clean),
        cmocka_unit_test(test_options_refused),
        cmocka_unit_test(test_device_info),
        cmocka_unit_test(test_options_paths),
        cmocka_unit_test(test_transpose_is_bwd_data),
        cmocka_unit_test(test_supports_table),
        cmocka_unit_test(test_counters_and_transfers),
        cmocka_unit_test(test_alloc_too_big),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_tf32),
        cmocka_unit_test(test_graph_replay_matches_reference),
        cmocka_unit_test(test_sync_bn_graph_replay),
        cmocka_unit_test(test_seg_softmax_ce),
        cmocka_unit_test(test_seg_argmax),
        cmocka_unit_test(test_seg_confusion),
        cmocka_unit_test(test_seg_batch_prep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
