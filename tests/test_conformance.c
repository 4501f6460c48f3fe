/* The conformance suite on every backend present (built-in cases and the JSON files in tests/cases),
 * checks of the checker itself: a deliberately broken fake backend must be caught. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vt/conformance.h"
#include "vt/registry.h"
#include "vt/rng.h"

static vt_conf_case *g_files;
static int g_n_files;

static void print_failures(const vt_conf_report *rep) {
    for (int i = 0; i < rep->n; i++) {
        const vt_conf_result *r = &rep->results[i];
        if (r->verdict == VT_CONF_FAIL)
            printf("  FAIL %s: %s [%s]: %s\n", r->target, r->case_name, r->origin, r->message);
    }
}

static vt_backend *start_reference(void) {
    vt_backend_opts o = {0};
    o.reference = 1;
    vt_backend *ref = NULL;
    assert_int_equal(vt_backend_reg_cpu()->init(0, &o, &ref), VT_OK);
    return ref;
}

/* Built-in and file cases on every device of one backend ("cpu" = the fast CPU path). */
static void test_backend(void **state) {
    const char *name = *state;
    const vt_backend_reg *reg = vt_backend_reg_find(name);
    assert_non_null(reg);
    int nd = reg->device_count();
    if (nd <= 0) {
        printf("SKIPPED: backend %s has no device here\n", name);
        skip();
    }
    vt_backend *ref = start_reference();
    int total_pass = 0, total_fail = 0, total_skip = 0;
    for (int d = 0; d < nd; d++) {
        vt_backend_opts o = {0};
        o.validation = 1; /* Vulkan: a validation error fails the case */
        vt_backend *be = NULL;
        if (reg->init(d, &o, &be) != VT_OK) {
            printf("SKIPPED: %s device %d did not start: %s\n", name, d, vt_last_error());
            continue;
        }
        char label[48];
        snprintf(label, sizeof label, "%s:%d", name, d);
        vt_conf_options opt;
        vt_conf_options_default(&opt);
        vt_conf_report rep;
        memset(&rep, 0, sizeof rep);
        assert_int_equal(vt_conf_run_target(ref, be, label, g_files, g_n_files, &opt, &rep), VT_OK);
        int p, f, s;
        vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
        printf("%s (%s): %d passed, %d failed, %d skipped\n", label, be->info.name, p, f, s);
        for (int i = 0; i < rep.n; i++)
            if (rep.results[i].verdict == VT_CONF_SKIP)
                printf("  skipped: %s (%s)\n", rep.results[i].case_name, rep.results[i].message);
        print_failures(&rep);
        total_pass += p;
        total_fail += f;
        total_skip += s;
        vt_conf_report_free(&rep);
        vt_backend_free(be);
    }
    vt_backend_free(ref);
    assert_int_equal(total_fail, 0);
    if (total_pass == 0) {
        printf("SKIPPED: backend %s ran no case (%d skipped)\n", name, total_skip);
        skip();
    }
}

/* supports_node is a promise: the backend claims a case's node exactly when it then runs it and
 * passes. A claimed node that the backend declines at run time (VT_ERR_UNSUPPORTED), or that fails,
 * breaks the promise; a node it does not claim is skipped without running. VT_OP_NONE and ops past
 * the table are never claimed. The first case of each op and kind (activation, pooling, upsampling
 * mode: a backend may claim only some) keeps it short on slow devices. Returns the broken promises. */
static int check_supports(vt_backend *ref, vt_backend *be, const char *name, int *claimed) {
    vt_node none;
    memset(&none, 0, sizeof none);
    int broken = 0;
    for (int k = 0; k < 3; k++) {
        none.op = k == 0 ? VT_OP_NONE : (k == 1 ? VT_OP_COUNT : (vt_op)(VT_OP_COUNT + 1000));
        if (be->iface->supports_node(be, &none)) {
            printf("  %s claims op %d\n", name, (int)none.op);
            broken++;
        }
    }
    int not_claimed = 0;
    char seen[VT_OP_COUNT][8];
    memset(seen, 0, sizeof seen);
    *claimed = 0;
    for (int i = 0; i < vt_conf_builtin_count(); i++) {
        const vt_conf_case *def = vt_conf_builtin(i);
        int kind = def->op == VT_OP_ACT || def->op == VT_OP_ACT_BWD             ? (int)def->p.act.kind
                   : def->op == VT_OP_POOL2D || def->op == VT_OP_POOL2D_BWD     ? (int)def->p.pool2d.kind
                   : def->op == VT_OP_UPSAMPLE || def->op == VT_OP_UPSAMPLE_BWD ? (int)def->p.upsample.mode
                                                                                : 0;
        if (kind < 0 || kind >= 8 || seen[def->op][kind]) continue;
        seen[def->op][kind] = 1;
        vt_conf_case c;
        vt_conf_case_copy_def(&c, def);
        vt_conf_result r;
        assert_int_equal(vt_conf_run_case(ref, be, name, &c, &r), VT_OK);
        vt_conf_case_release(&c);
        /* the runner asks supports_node first: "not supported by" is its answer no */
        int claims = !(r.verdict == VT_CONF_SKIP && strncmp(r.message, "not supported by", 16) == 0);
        *claimed += claims;
        not_claimed += !claims;
        if (claims != (r.verdict == VT_CONF_PASS)) {
            broken++;
            printf("  %s claims %s (%s) but %s: %s\n", name, vt_op_name(def->op), def->name,
                   vt_conf_verdict_name(r.verdict), r.message);
        }
    }
    printf("%s: %d op kinds claimed and passed, %d not claimed, %d broken promises\n", name, *claimed - broken,
           not_claimed, broken);
    return broken;
}

/* Every backend registered that has a device here keeps the promise. */
static void test_supports_is_exact(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    int checked = 0;
    for (int b = 0; b < vt_backend_reg_count(); b++) {
        const vt_backend_reg *reg = vt_backend_reg_get(b);
        vt_backend *be = NULL;
        if (reg->device_count() <= 0) {
            printf("%s: no device here, nothing to check\n", reg->name);
            continue;
        }
        if (reg->init(0, NULL, &be) != VT_OK) {
            printf("%s: did not start: %s\n", reg->name, vt_last_error());
            continue;
        }
        int claimed = 0;
        assert_int_equal(check_supports(ref, be, reg->name, &claimed), 0);
        assert_true(claimed > 0);
        checked++;
        vt_backend_free(be);
    }
    vt_backend_free(ref);
    assert_true(checked >= 1); /* the CPU at least */
}

/* The reference itself against the independent expected values of tests/cases. */
static void test_reference_vs_files(void **state) {
    (void)state;
    if (g_n_files == 0) {
        printf("SKIPPED: no case files in tests/cases\n");
        skip();
    }
    vt_backend *ref = start_reference();
    vt_conf_options opt;
    vt_conf_options_default(&opt);
    opt.builtin = 0;
    vt_conf_report rep;
    memset(&rep, 0, sizeof rep);
    assert_int_equal(vt_conf_run_target(ref, ref, "cpu-ref", g_files, g_n_files, &opt, &rep), VT_OK);
    int p, f, s;
    vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
    printf("cpu-ref vs %d file cases: %d passed, %d failed, %d skipped\n", g_n_files, p, f, s);
    print_failures(&rep);
    assert_int_equal(f, 0);
    assert_int_equal(p + s, g_n_files);
    assert_true(p > 0);
    vt_conf_report_free(&rep);
    vt_backend_free(ref);
}

/* NONFINITE: the reference against an oracle that shares nothing with it (isfinite over the case's
 * own data, not a bit test); every built-in case, so a wrong reference cannot hide a wrong backend. */
static void test_nonfinite_reference(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    int n = 0, set = 0;
    for (int i = 0; i < vt_conf_builtin_count(); i++) {
        const vt_conf_case *def = vt_conf_builtin(i);
        if (def->op != VT_OP_NONFINITE) continue;
        vt_conf_case c;
        vt_conf_case_copy_def(&c, def);
        assert_int_equal(vt_conf_case_materialize(&c), VT_OK);
        const float *x = c.src[0].data;
        int64_t e = 1;
        for (int d = 0; d < c.src[0].ndim; d++) e *= c.src[0].shape[d];
        int32_t want = ((const int32_t *)c.dst[0].data)[0];
        for (int64_t k = 0; k < e; k++)
            if (!isfinite(x[k])) want = 1;
        c.dst[0].expected = malloc(sizeof want);
        assert_non_null(c.dst[0].expected);
        memcpy(c.dst[0].expected, &want, sizeof want);
        vt_conf_result r;
        assert_int_equal(vt_conf_run_case(ref, ref, "cpu-ref", &c, &r), VT_OK);
        if (r.verdict != VT_CONF_PASS) printf("  FAIL %s: %s\n", c.name, r.message);
        assert_int_equal(r.verdict, VT_CONF_PASS);
        set += want;
        n++;
        vt_conf_case_release(&c);
    }
    printf("nonfinite: %d cases, %d with the flag set, the reference agrees with isfinite\n", n, set);
    assert_string_equal(vt_op_name(VT_OP_NONFINITE), "nonfinite");
    assert_int_equal(vt_op_from_name("nonfinite"), VT_OP_NONFINITE);
    assert_true(n >= 10 && set >= 5 && set < n);
    vt_backend_free(ref);
}

static int64_t operand_nelem(const vt_conf_operand *o) {
    int64_t n = 1;
    for (int d = 0; d < o->ndim; d++) n *= o->shape[d];
    return n;
}

/* What a segmentation case's oracle saw: ignored labels by kind (255, K, -1, other), cases with every
 * label ignored, the largest CONFUSION. */
typedef struct seg_seen {
    int64_t kinds[4];
    int all_ignored, cases;
    int64_t largest;
} seg_seen;

/* Expected outputs of a built-in CONFUSION or SOFTMAX_CE(_BWD) with ignore case, computed here from
 * the case's own data in double (nothing shared with the reference): counts exactly; the loss as the
 * mean over the labels in [0,K), metrics accumulated over those only, zero gradient elsewhere. */
static void seg_oracle(vt_conf_case *c, seg_seen *seen) {
    if (c->op == VT_OP_CONFUSION) {
        int64_t K1 = c->dst[0].shape[0], K = K1 - 1, M = operand_nelem(&c->src[0]);
        int32_t *want = malloc((size_t)(K1 * K1) * sizeof *want);
        assert_non_null(want);
        memcpy(want, c->dst[0].data, (size_t)(K1 * K1) * sizeof *want);
        const int32_t *q = c->src[0].data, *t = c->src[1].data;
        for (int64_t i = 0; i < M; i++) {
            int64_t tt = t[i] >= 0 && t[i] < K ? t[i] : K, qq = q[i] >= 0 && q[i] < K ? q[i] : K;
            want[tt * K1 + qq]++;
        }
        c->dst[0].expected = want;
        if (M > seen->largest) seen->largest = M;
        return;
    }
    const vt_conf_operand *x = &c->src[0];
    int64_t N = x->shape[0], K = x->shape[1], S = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    const float *z = x->data;
    const int32_t *y = c->src[1].data;
    double e = c->p.ce.label_smoothing, scale = c->p.ce.scale, total = 0, correct = 0, counted = 0;
    int bwd = c->op == VT_OP_SOFTMAX_CE_BWD;
    float *grad = bwd ? malloc((size_t)(N * K * S) * sizeof *grad) : NULL;
    for (int64_t r = 0; r < N * S; r++) {
        const float *row = z + (r / S) * K * S + r % S;
        float *g = bwd ? grad + (row - z) : NULL;
        if (y[r] < 0 || y[r] >= K) {
            seen->kinds[y[r] == 255 ? 0 : y[r] == K ? 1 : y[r] == -1 ? 2 : 3]++;
            for (int64_t k = 0; bwd && k < K; k++) g[k * S] = 0.0f;
            continue;
        }
        int64_t best = 0;
        double sum = 0, se = 0;
        for (int64_t k = 0; k < K; k++) {
            if (row[k * S] > row[best * S]) best = k;
            sum += row[k * S];
        }
        for (int64_t k = 0; k < K; k++) se += exp((double)row[k * S] - row[best * S]);
        double lse = row[best * S] + log(se);
        total += (1 - e) * (lse - row[y[r] * S]) + e * (lse - sum / (double)K);
        correct += best == y[r];
        counted++;
        for (int64_t k = 0; bwd && k < K; k++)
            g[k * S] = (float)(scale * (exp(row[k * S] - lse) - (e / (double)K + (k == y[r] ? 1 - e : 0))));
    }
    seen->all_ignored += counted == 0;
    if (bwd) {
        c->dst[0].expected = grad;
        return;
    }
    float *loss = malloc(sizeof *loss);
    assert_non_null(loss);
    loss[0] = (float)(total / (counted > 0 ? counted : 1));
    c->dst[0].expected = loss;
    if (c->dst[1].present) {
        float *m = malloc(3 * sizeof *m);
        assert_non_null(m);
        const float *m0 = c->dst[1].data;
        m[0] = (float)(m0[0] + total), m[1] = (float)(m0[1] + correct), m[2] = (float)(m0[2] + counted);
        c->dst[1].expected = m;
    }
}

/* The segmentation ops' built-in cases (CONFUSION, SOFTMAX_CE(_BWD) with ignored labels): the
 * reference against seg_oracle on every one, so a wrong reference cannot pass a wrong backend; and
 * the cases cover what they must (every kind of ignored label, an all-ignored batch, millions of
 * pixels into few bins). */
static void test_segmentation_reference(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    seg_seen seen;
    memset(&seen, 0, sizeof seen);
    for (int i = 0; i < vt_conf_builtin_count(); i++) {
        const vt_conf_case *def = vt_conf_builtin(i);
        int ce = (def->op == VT_OP_SOFTMAX_CE || def->op == VT_OP_SOFTMAX_CE_BWD) && def->p.ce.ignore;
        if (def->op != VT_OP_CONFUSION && !ce) continue;
        vt_conf_case c;
        vt_conf_case_copy_def(&c, def);
        assert_int_equal(vt_conf_case_materialize(&c), VT_OK);
        seg_oracle(&c, &seen);
        vt_conf_result r;
        assert_int_equal(vt_conf_run_case(ref, ref, "cpu-ref", &c, &r), VT_OK);
        if (r.verdict != VT_CONF_PASS) printf("  FAIL %s: %s\n", c.name, r.message);
        assert_int_equal(r.verdict, VT_CONF_PASS);
        seen.cases++;
        vt_conf_case_release(&c);
    }
    printf("segmentation: %d cases agree with the oracle; ignored labels 255 %lld, K %lld, -1 %lld, other %lld; "
           "%d all ignored; largest confusion %lld pixels\n",
           seen.cases, (long long)seen.kinds[0], (long long)seen.kinds[1], (long long)seen.kinds[2],
           (long long)seen.kinds[3], seen.all_ignored, (long long)seen.largest);
    assert_true(seen.cases >= 20);
    for (int k = 0; k < 4; k++) assert_true(seen.kinds[k] > 0);
    assert_true(seen.all_ignored >= 2);
    assert_true(seen.largest >= (1 << 20));
    vt_backend_free(ref);
}

/* An integer output (class ids, counts, flags) must match exactly, even under an op's or a file's
 * float tolerance: 8 for 7 fails with atol 1 and rtol 0.5, where a float would pass. */
static void test_int_outputs_exact(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    for (int off = 0; off < 2; off++) {
        vt_conf_case c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "fill i32 off by %d", off);
        c.op = VT_OP_FILL;
        c.p.fill.value = 7.0f;
        c.tol = (vt_conf_tol){1.0, 1.0, 0.5, 0};
        c.red = 1.0;
        vt_conf_operand *o = &c.dst[0];
        o->present = o->is_output = 1;
        o->dtype = VT_I32;
        o->ndim = 1;
        for (int d = 0; d < VT_MAX_DIMS; d++) o->shape[d] = d == 0 ? 5 : 1;
        int32_t *want = malloc(5 * sizeof *want);
        assert_non_null(want);
        for (int k = 0; k < 5; k++) want[k] = 7 + (k == 3 ? off : 0);
        o->expected = want;
        vt_conf_result r;
        assert_int_equal(vt_conf_run_case(ref, ref, "cpu-ref", &c, &r), VT_OK);
        printf("%s: %s %s\n", c.name, vt_conf_verdict_name(r.verdict), r.message);
        assert_int_equal(r.verdict, off ? VT_CONF_FAIL : VT_CONF_PASS);
        if (off) assert_int_equal(r.worst_index, 3);
        vt_conf_case_release(&c);
    }
    vt_backend_free(ref);
}

/* NONFINITE on a view in the middle of a buffer full of NaN: what lies around the view is never read.
 * Then the view's first and last elements, one at a time, must set the flag. */
static void test_nonfinite_view(void **state) {
    const char *name = *state;
    const vt_backend_reg *reg = vt_backend_reg_find(name);
    if (!reg || reg->device_count() <= 0) {
        printf("SKIPPED: backend %s has no device here\n", name);
        skip();
    }
    vt_backend *be = NULL;
    vt_backend_opts bo = {0};
    bo.validation = 1;
    if (reg->init(0, &bo, &be) != VT_OK) {
        printf("SKIPPED: %s did not start: %s\n", name, vt_last_error());
        skip();
    }
    enum { TOTAL = 4096, AT = 64, LEN = 1001 };
    float *host = malloc(TOTAL * sizeof *host);
    assert_non_null(host);
    vt_buffer *xb = NULL, *fb = NULL;
    assert_int_equal(vt_backend_buffer_alloc(be, TOTAL * sizeof(float), &xb), VT_OK);
    assert_int_equal(vt_backend_buffer_alloc(be, 3 * sizeof(int32_t), &fb), VT_OK);
    int64_t xs[1] = {LEN}, fs[1] = {1};
    vt_tensor x, flag;
    vt_tensor_init(&x, "x", VT_F32, 1, xs);
    x.buf = xb;
    x.offset = AT * sizeof(float);
    vt_tensor_init(&flag, "flag", VT_I32, 1, fs);
    flag.buf = fb;
    flag.offset = sizeof(int32_t);
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_NONFINITE;
    n.src[0] = &x;
    n.dst[0] = &flag;
    snprintf(n.label, sizeof n.label, "nonfinite view");
    assert_int_equal(vt_node_validate(&n), VT_OK);
    assert_true(vt_backend_supports(be, &n));
    for (int pass = 0; pass < 3; pass++) {
        for (int k = 0; k < TOTAL; k++) host[k] = (k >= AT && k < AT + LEN) ? (float)k * 1e30f : NAN;
        if (pass == 1) host[AT] = INFINITY;
        if (pass == 2) host[AT + LEN - 1] = NAN;
        int32_t f3[3] = {7, 0, 7}, got[3];
        assert_int_equal(be->iface->buffer_write(be, xb, 0, host, TOTAL * sizeof(float)), VT_OK);
        assert_int_equal(be->iface->buffer_write(be, fb, 0, f3, sizeof f3), VT_OK);
        assert_int_equal(vt_backend_compute(be, &n, NULL), VT_OK);
        assert_int_equal(vt_backend_sync(be), VT_OK);
        assert_int_equal(be->iface->buffer_read(be, fb, 0, got, sizeof got), VT_OK);
        printf("%s nonfinite view, pass %d: flag %d\n", name, pass, got[1]);
        assert_int_equal(got[0], 7);
        assert_int_equal(got[2], 7);
        assert_int_equal(got[1], pass == 0 ? 0 : 1);
    }
    vt_backend_buffer_free(xb);
    vt_backend_buffer_free(fb);
    free(host);
    vt_backend_free(be);
}

/* Three Adam nodes in one recorded graph (other step offsets, betas, AdamW), replayed over steps with a
 * changing learning rate: each node must read its own per-step scalars (Vulkan: its slot of the step
 * context), never another node's or a recorded step's. The update is compared with the reference's. */
enum { AG_NODES = 3, AG_N = 301 };

static vt_status adam_graph_run(vt_backend *be, float out[AG_NODES][3][AG_N]) {
    static const vt_adam_params ps[AG_NODES] = {
        {1.0f, 0.9, 0.999, 1e-8, 0.0, 0, 0}, {0.5f, 0.8, 0.99, 1e-6, 0.01, 1, 3}, {2.0f, 0.3, 0.98, 1e-8, 0.05, 0, 5}};
    vt_tensor *t[AG_NODES][4] = {{NULL}};
    vt_node nodes[AG_NODES];
    memset(nodes, 0, sizeof nodes);
    int64_t shape[1] = {AG_N};
    vt_status st = VT_OK;
    float *host = malloc(AG_N * sizeof *host);
    if (!host) return VT_ERR_OOM;
    for (int k = 0; k < AG_NODES && st == VT_OK; k++) {
        for (int j = 0; j < 4 && st == VT_OK; j++) {
            st = vt_tensor_new(be, "adam", VT_F32, 1, shape, &t[k][j]);
            vt_rng r;
            vt_rng_init(&r, 31u + (uint32_t)k, (uint32_t)j);
            for (int i = 0; i < AG_N; i++)
                host[i] = j == 3 ? vt_rng_uniform_range(&r, 0.0f, 0.01f) : vt_rng_uniform_range(&r, -1e-3f, 1e-3f);
            if (st == VT_OK) st = vt_tensor_upload(t[k][j], host, AG_N * sizeof *host);
        }
        nodes[k].op = VT_OP_ADAM;
        nodes[k].p.adam = ps[k];
        nodes[k].src[0] = t[k][0];
        for (int j = 0; j < 3; j++) nodes[k].dst[j] = t[k][j + 1];
        snprintf(nodes[k].label, sizeof nodes[k].label, "adam%d", k);
    }
    vt_graph_exec ex = {nodes, AG_NODES, NULL, NULL};
    for (int step = 5; step < 9 && st == VT_OK; step++) {
        vt_step_ctx ctx = {(uint64_t)step, 7, 0.01f / (float)(step - 3), 0};
        st = vt_backend_graph_compute(be, &ex, &ctx);
    }
    if (st == VT_OK) st = vt_backend_sync(be);
    vt_graph_exec_reset(be, &ex);
    for (int k = 0; k < AG_NODES; k++)
        for (int j = 0; j < 4; j++) {
            if (st == VT_OK && j > 0) st = vt_tensor_download(t[k][j], out[k][j - 1], AG_N * sizeof(float));
            if (t[k][j]) vt_tensor_free(t[k][j]);
        }
    free(host);
    return st;
}

static void test_adam_graph(void **state) {
    const char *name = *state;
    const vt_backend_reg *reg = vt_backend_reg_find(name);
    if (!reg || reg->device_count() <= 0) {
        printf("SKIPPED: backend %s has no device here\n", name);
        skip();
    }
    vt_backend *be = NULL;
    vt_backend_opts o = {0};
    o.validation = 1;
    if (reg->init(0, &o, &be) != VT_OK) {
        printf("SKIPPED: %s did not start: %s\n", name, vt_last_error());
        skip();
    }
    vt_backend *ref = start_reference();
    static float want[AG_NODES][3][AG_N], got[AG_NODES][3][AG_N];
    assert_int_equal(adam_graph_run(ref, want), VT_OK);
    vt_status st = adam_graph_run(be, got);
    if (st != VT_OK) printf("%s\n", vt_last_error());
    assert_int_equal(st, VT_OK);
    double worst = 0;
    for (int k = 0; k < AG_NODES; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < AG_N; i++) {
                double d = fabs((double)got[k][j][i] - want[k][j][i]), lim = 2e-6 * fabs((double)want[k][j][i]) + 1e-12;
                if (d / lim > worst) worst = d / lim;
                if (d > lim)
                    printf("adam%d dst%d[%d]: %s got %.9g, reference %.9g\n", k, j, i, name, got[k][j][i],
                           want[k][j][i]);
                assert_true(d <= lim);
            }
    printf("%s: 3 Adam nodes in one graph, 4 steps, worst element %.3f of 2e-6 relative\n", name, worst);
    vt_backend_free(ref);
    vt_backend_free(be);
}

/* The torch cases of tests/cases/adam.json (expected values by torch.optim.Adam / AdamW itself) on one
 * backend, each node run once: m and v must be torch's bit for bit (ops.h: the same operations, with a
 * fused multiply-add where torch's CPU kernels have one; Vulkan's fma() may round twice, the shader
 * emulates one rounding). The parameter differs where torch's sqrt is not correctly rounded: on the CPU,
 * whose sqrtf and division are, its update stays within 4e-7 relative plus the rounding of the stored
 * parameter; elsewhere the conformance cases bound it (2e-6). "cpu-ref" is the reference. */
static int64_t f32_ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t x = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia, y = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
    return x > y ? x - y : y - x;
}

static void test_adam_torch_bits(void **state) {
    const char *name = *state;
    int cpu_ref = strcmp(name, "cpu-ref") == 0, on_cpu = cpu_ref || strcmp(name, "cpu") == 0;
    vt_backend *be = NULL;
    if (cpu_ref) {
        be = start_reference();
    } else {
        const vt_backend_reg *reg = vt_backend_reg_find(name);
        vt_backend_opts o = {0};
        if (!reg || reg->device_count() <= 0 || reg->init(0, &o, &be) != VT_OK) {
            printf("SKIPPED: backend %s has no device here or did not start\n", name);
            skip();
        }
    }
    int cases = 0;
    int64_t worst_ulp[3] = {0, 0, 0};
    double worst_update = 0;
    for (int c = 0; c < g_n_files; c++) {
        const vt_conf_case *k = &g_files[c];
        if (k->op != VT_OP_ADAM || !strstr(k->origin, "adam.json")) continue;
        int64_t n = 1;
        for (int d = 0; d < k->dst[0].ndim; d++) n *= k->dst[0].shape[d];
        vt_tensor *t[4] = {NULL};
        const vt_conf_operand *ops[4] = {&k->src[0], &k->dst[0], &k->dst[1], &k->dst[2]};
        for (int j = 0; j < 4; j++) {
            assert_non_null(ops[j]->data);
            assert_int_equal(vt_tensor_new(be, "adam", VT_F32, ops[j]->ndim, ops[j]->shape, &t[j]), VT_OK);
            assert_int_equal(vt_tensor_upload(t[j], ops[j]->data, (size_t)n * sizeof(float)), VT_OK);
        }
        vt_node node;
        memset(&node, 0, sizeof node);
        node.op = VT_OP_ADAM;
        node.p = k->p;
        node.src[0] = t[0];
        for (int j = 0; j < 3; j++) node.dst[j] = t[j + 1];
        snprintf(node.label, sizeof node.label, "adam");
        vt_status st = vt_backend_compute(be, &node, &k->ctx);
        if (st == VT_OK) st = vt_backend_sync(be);
        if (st != VT_OK) printf("%s\n", vt_last_error());
        assert_int_equal(st, VT_OK);
        float *got = malloc((size_t)n * sizeof(float));
        assert_non_null(got);
        for (int j = 0; j < 3; j++) {
            const float *want = k->dst[j].expected, *before = k->dst[j].data;
            assert_non_null(want);
            assert_int_equal(vt_tensor_download(t[j + 1], got, (size_t)n * sizeof(float)), VT_OK);
            for (int64_t i = 0; i < n; i++) {
                int64_t u = f32_ulps(got[i], want[i]);
                if (u > worst_ulp[j]) worst_ulp[j] = u;
                if (j == 0) {
                    double du = (double)got[i] - before[i], dref = (double)want[i] - before[i];
                    double slack = (double)nextafterf(fabsf(want[i]), INFINITY) - fabsf(want[i]);
                    double e = fmax(fabs(du - dref) - slack, 0) / fabs(dref);
                    if (e > worst_update) worst_update = e;
                    if (on_cpu && e > 4e-7)
                        printf("%s: %s p[%lld]: update %.9g, torch's %.9g\n", name, k->name, (long long)i, du, dref);
                    if (on_cpu) assert_true(e <= 4e-7);
                } else if (u != 0) {
                    printf("%s: %s %s[%lld]: got %.9g, torch %.9g (%lld ulp)\n", name, k->name, j == 1 ? "m" : "v",
                           (long long)i, (double)got[i], (double)want[i], (long long)u);
                }
            }
            if (j > 0) assert_int_equal(worst_ulp[j], 0);
        }
        free(got);
        for (int j = 0; j < 4; j++) vt_tensor_free(t[j]);
        cases++;
    }
    printf("%s: %d torch Adam cases, m and v bit for bit, parameter within %lld ulp, update within %.2e relative "
           "(beyond the parameter's rounding)\n",
           name, cases, (long long)worst_ulp[0], worst_update);
    vt_backend_free(be);
    if (cases == 0) {
        printf("SKIPPED: no torch Adam cases (tests/cases/adam.json)\n");
        skip();
    }
}

/* ---- a forward + backward + update chain as one recorded graph ---- */

enum {
    CH_X,
    CH_W,
    CH_B,
    CH_A1,
    CH_G,
    CH_BE,
    CH_RM,
    CH_RV,
    CH_A2,
    CH_SM,
    CH_SI,
    CH_A3,
    CH_A4,
    CH_A4V,
    CH_FW,
    CH_FB,
    CH_Z,
    CH_LAB,
    CH_DZ,
    CH_DA4V,
    CH_DA4,
    CH_DA3,
    CH_DA2,
    CH_DA1,
    CH_DG,
    CH_DBE,
    CH_DC,
    CH_DW,
    CH_MOM,
    CH_N
};

typedef struct chain {
    vt_tensor *t[CH_N];
    vt_tensor views[2]; /* [2,4,5,5] seen as [2,100] */
    vt_node nodes[13];
    int n_nodes;
} chain;

static void chain_tensor(vt_backend *be, chain *c, int id, vt_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2,
                         int64_t d3) {
    int64_t shape[4] = {d0, d1, d2, d3};
    assert_int_equal(vt_tensor_new(be, "chain", dt, ndim, shape, &c->t[id]), VT_OK);
    int64_t n = vt_tensor_nelem(c->t[id]);
    vt_rng r;
    vt_rng_init(&r, 77, (uint32_t)id);
    if (dt == VT_I32) {
        int32_t *v = malloc((size_t)n * sizeof *v);
        assert_non_null(v);
        for (int64_t i = 0; i < n; i++) v[i] = (int32_t)vt_rng_below(&r, 10);
        assert_int_equal(vt_tensor_upload(c->t[id], v, (size_t)n * sizeof *v), VT_OK);
        free(v);
        return;
    }
    float *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    float lo = id == CH_G || id == CH_RV ? 0.5f : -1.0f;
    for (int64_t i = 0; i < n; i++) v[i] = vt_rng_uniform_range(&r, lo, 1.0f);
    assert_int_equal(vt_tensor_upload(c->t[id], v, (size_t)n * sizeof *v), VT_OK);
    free(v);
}

static vt_node *chain_node(chain *c, vt_op op) {
    vt_node *n = &c->nodes[c->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    snprintf(n->label, sizeof n->label, "chain.%d.%s", c->n_nodes - 1, vt_op_name(op));
    return n;
}

static void chain_build(vt_backend *be, chain *c) {
    memset(c, 0, sizeof *c);
    chain_tensor(be, c, CH_X, VT_F32, 4, 2, 3, 9, 9);
    chain_tensor(be, c, CH_W, VT_F32, 4, 4, 3, 3, 3);
    chain_tensor(be, c, CH_B, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_A1, VT_F32, 4, 2, 4, 9, 9);
    chain_tensor(be, c, CH_G, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_BE, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_RM, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_RV, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_A2, VT_F32, 4, 2, 4, 9, 9);
    chain_tensor(be, c, CH_SM, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_SI, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_A3, VT_F32, 4, 2, 4, 5, 5);
    chain_tensor(be, c, CH_A4, VT_F32, 4, 2, 4, 5, 5);
    chain_tensor(be, c, CH_FW, VT_F32, 2, 10, 100, 1, 1);
    chain_tensor(be, c, CH_FB, VT_F32, 1, 10, 1, 1, 1);
    chain_tensor(be, c, CH_Z, VT_F32, 2, 2, 10, 1, 1);
    chain_tensor(be, c, CH_LAB, VT_I32, 1, 2, 1, 1, 1);
    chain_tensor(be, c, CH_DZ, VT_F32, 2, 2, 10, 1, 1);
    chain_tensor(be, c, CH_DA4, VT_F32, 4, 2, 4, 5, 5);
    chain_tensor(be, c, CH_DA3, VT_F32, 4, 2, 4, 5, 5);
    chain_tensor(be, c, CH_DA2, VT_F32, 4, 2, 4, 9, 9);
    chain_tensor(be, c, CH_DA1, VT_F32, 4, 2, 4, 9, 9);
    chain_tensor(be, c, CH_DG, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_DBE, VT_F32, 1, 4, 1, 1, 1);
    chain_tensor(be, c, CH_DC, VT_F32, 4, 2, 4, 9, 9);
    chain_tensor(be, c, CH_DW, VT_F32, 4, 4, 3, 3, 3);
    chain_tensor(be, c, CH_MOM, VT_F32, 4, 4, 3, 3, 3);
    /* flatten views share the bytes of the 4-D tensors */
    int64_t flat[2] = {2, 100};
    vt_tensor_init(&c->views[0], "a4.flat", VT_F32, 2, flat);
    c->views[0].buf = c->t[CH_A4]->buf;
    c->views[0].offset = c->t[CH_A4]->offset;
    c->views[0].flags = VT_TENSOR_VIEW;
    vt_tensor_init(&c->views[1], "da4.flat", VT_F32, 2, flat);
    c->views[1].buf = c->t[CH_DA4]->buf;
    c->views[1].offset = c->t[CH_DA4]->offset;
    c->views[1].flags = VT_TENSOR_VIEW;
    c->t[CH_A4V] = &c->views[0];
    c->t[CH_DA4V] = &c->views[1];
    vt_tensor **t = c->t;
    vt_node *n = chain_node(c, VT_OP_CONV2D);
    n->p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_RELU, 0};
    n->src[0] = t[CH_X], n->src[1] = t[CH_W], n->src[2] = t[CH_B], n->dst[0] = t[CH_A1];
    n = chain_node(c, VT_OP_BATCHNORM);
    n->p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, 0};
    n->src[0] = t[CH_A1], n->src[1] = t[CH_G], n->src[2] = t[CH_BE], n->src[3] = t[CH_RM], n->src[4] = t[CH_RV];
    n->dst[0] = t[CH_A2], n->dst[1] = t[CH_SM], n->dst[2] = t[CH_SI];
    n = chain_node(c, VT_OP_POOL2D);
    n->p.pool2d = (vt_pool2d_params){VT_POOL_MAX, 3, 3, 2, 2, 1, 1};
    n->src[0] = t[CH_A2], n->dst[0] = t[CH_A3];
    n = chain_node(c, VT_OP_DROPOUT);
    n->p.dropout = (vt_dropout_params){0.2f, 5};
    n->src[0] = t[CH_A3], n->dst[0] = t[CH_A4];
    n = chain_node(c, VT_OP_MATMUL);
    n->p.matmul = (vt_matmul_params){0, 1, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = t[CH_A4V], n->src[1] = t[CH_FW], n->src[2] = t[CH_FB], n->dst[0] = t[CH_Z];
    n = chain_node(c, VT_OP_SOFTMAX_CE_BWD);
    n->p.ce = (vt_softmax_ce_params){0.1f, 0.5f, 0};
    n->src[0] = t[CH_Z], n->src[1] = t[CH_LAB], n->dst[0] = t[CH_DZ];
    n = chain_node(c, VT_OP_MATMUL);
    n->p.matmul = (vt_matmul_params){0, 0, 1.0f, 0.0f, VT_ACT_NONE, 0};
    n->src[0] = t[CH_DZ], n->src[1] = t[CH_FW], n->dst[0] = t[CH_DA4V];
    n = chain_node(c, VT_OP_DROPOUT_BWD);
    n->p.dropout = (vt_dropout_params){0.2f, 5};
    n->src[0] = t[CH_DA4], n->dst[0] = t[CH_DA3];
    n = chain_node(c, VT_OP_POOL2D_BWD);
    n->p.pool2d = (vt_pool2d_params){VT_POOL_MAX, 3, 3, 2, 2, 1, 1};
    n->src[0] = t[CH_DA3], n->src[1] = t[CH_A2], n->dst[0] = t[CH_DA2];
    n = chain_node(c, VT_OP_BATCHNORM_BWD);
    n->p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, 0};
    n->src[0] = t[CH_DA2], n->src[1] = t[CH_A1], n->src[2] = t[CH_G], n->src[3] = t[CH_SM], n->src[4] = t[CH_SI];
    n->dst[0] = t[CH_DA1], n->dst[1] = t[CH_DG], n->dst[2] = t[CH_DBE];
    n = chain_node(c, VT_OP_ACT_BWD);
    n->p.act = (vt_act_params){VT_ACT_RELU, 0};
    n->src[0] = t[CH_DA1], n->src[1] = t[CH_A1], n->dst[0] = t[CH_DC];
    n = chain_node(c, VT_OP_CONV2D_BWD_WEIGHT);
    n->p.conv2d = (vt_conv2d_params){1, 1, 1, 1, VT_ACT_NONE, 0};
    n->src[0] = t[CH_DC], n->src[1] = t[CH_X], n->dst[0] = t[CH_DW];
    n = chain_node(c, VT_OP_SGD);
    n->p.sgd = (vt_sgd_params){1.0f, 0.9f, 5e-4f, 1};
    n->src[0] = t[CH_DW], n->dst[0] = t[CH_W], n->dst[1] = t[CH_MOM];
}

static void chain_free(chain *c) {
    for (int i = 0; i < CH_N; i++)
        if (i != CH_A4V && i != CH_DA4V) vt_tensor_free(c->t[i]);
}

/* Three replays with different steps (dropout masks) and learning rates; the graph feeds itself
 * through the updated weights and BN running statistics. */
static vt_status chain_run(vt_backend *be, chain *c) {
    vt_graph_exec ex = {c->nodes, c->n_nodes, NULL, NULL};
    vt_status st = VT_OK;
    for (int i = 0; i < 3 && st == VT_OK; i++) {
        vt_step_ctx ctx = {(uint64_t)(10 + i * 1000), 99, 0.1f / (float)(i + 1), 0};
        st = vt_backend_graph_compute(be, &ex, &ctx);
    }
    if (st == VT_OK) st = vt_backend_sync(be);
    vt_graph_exec_reset(be, &ex);
    return st;
}

static void test_graph_chain(void **state) {
    const char *name = *state;
    const vt_backend_reg *reg = vt_backend_reg_find(name);
    if (!reg || reg->device_count() <= 0) {
        printf("SKIPPED: backend %s has no device here\n", name);
        skip();
    }
    vt_backend *ref = start_reference();
    vt_backend_opts o = {0};
    o.validation = 1;
    vt_backend *be = NULL;
    if (reg->init(0, &o, &be) != VT_OK) {
        printf("SKIPPED: %s did not start: %s\n", name, vt_last_error());
        vt_backend_free(ref);
        skip();
    }
    chain a, b;
    chain_build(ref, &a);
    chain_build(be, &b);
    for (int i = 0; i < a.n_nodes; i++)
        if (!vt_backend_supports(be, &b.nodes[i])) {
            printf("SKIPPED: %s does not support %s\n", name, b.nodes[i].label);
            chain_free(&a), chain_free(&b);
            vt_backend_free(be), vt_backend_free(ref);
            skip();
        }
    assert_int_equal(chain_run(ref, &a), VT_OK);
    vt_status st = chain_run(be, &b);
    if (st != VT_OK) printf("%s\n", vt_last_error());
    assert_int_equal(st, VT_OK);
    double worst = 0;
    for (int id = 0; id < CH_N; id++) {
        if (id == CH_LAB) continue;
        int64_t n = vt_tensor_nelem(a.t[id]);
        float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(vt_tensor_download(a.t[id], x, (size_t)n * sizeof *x), VT_OK);
        assert_int_equal(vt_tensor_download(b.t[id], y, (size_t)n * sizeof *y), VT_OK);
        for (int64_t i = 0; i < n; i++) {
            /* errors grow along the chain: a missing barrier or a stale input is off by O(1) */
            double lim = 1e-4 + 1e-3 * fabs((double)x[i]);
            double r = fabs((double)y[i] - (double)x[i]) / lim;
            if (!(r <= 1.0))
                printf("tensor %d [%lld]: %s got %.9g, reference %.9g\n", id, (long long)i, name, (double)y[i],
                       (double)x[i]);
            assert_true(r <= 1.0);
            if (r > worst) worst = r;
        }
        free(x), free(y);
    }
    printf("%s: %d-node graph replayed 3 times, worst element %.3f of the tolerance\n", name, a.n_nodes, worst);
    chain_free(&a), chain_free(&b);
    vt_backend_free(be);
    vt_backend_free(ref);
}

/* ---- a fake backend that breaks the rules in chosen ways ---- */

typedef enum {
    FAKE_OK,
    FAKE_OVERRUN,
    FAKE_UNDERRUN,
    FAKE_WRONG,
    FAKE_SKIP_ONE,
    FAKE_TOUCH_INPUT,
    FAKE_NAN,
    FAKE_UNSUPPORTED,
    FAKE_BAKED,
    FAKE_ADAM_F32,   /* Adam with its constants in float32: 1 - beta from f32 betas, bias corrections by powf */
    FAKE_ADAM_BC_F32 /* only the bias corrections 1 - pow(b, t) in float32 */
} fake_mode;

typedef struct fake_ctx {
    fake_mode mode;
} fake_ctx;

static void fake_free(vt_backend *be) {
    free(be->context);
    free(be);
}

static vt_status fake_alloc(vt_backend *be, vt_buffer *buf) {
    (void)be;
    buf->host = calloc(1, buf->size);
    return buf->host ? VT_OK : VT_ERR_OOM;
}

static void fake_buffer_free(vt_backend *be, vt_buffer *buf) {
    (void)be;
    free(buf->host);
}

static vt_status fake_write(vt_backend *be, vt_buffer *buf, size_t off, const void *data, size_t size) {
    (void)be;
    memcpy((char *)buf->host + off, data, size);
    return VT_OK;
}

static vt_status fake_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    (void)be;
    memcpy(data, (const char *)buf->host + off, size);
    return VT_OK;
}

static bool fake_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    return (n->op == VT_OP_ACT && n->p.act.kind == VT_ACT_RELU) || (n->op == VT_OP_SGD && n->p.sgd.momentum == 0.0f) ||
           n->op == VT_OP_ADAM;
}

/* ADAM in the order of ops.h; FAKE_ADAM_F32 takes its constants as the GPU backends once did (f32 betas,
 * 1 - pow(b, t) in f32), FAKE_ADAM_BC_F32 only the bias corrections, everything else from
 * vt_adam_consts_of. */
static void fake_adam(const vt_node *n, const vt_step_ctx *ctx, fake_mode mode) {
    const vt_adam_params *ap = &n->p.adam;
    const float *g0 = (const float *)((const char *)n->src[0]->buf->host + n->src[0]->offset);
    float *p = (float *)((char *)n->dst[0]->buf->host + n->dst[0]->offset);
    float *m = (float *)((char *)n->dst[1]->buf->host + n->dst[1]->offset);
    float *v = (float *)((char *)n->dst[2]->buf->host + n->dst[2]->offset);
    int64_t t = (int64_t)ctx->step - ap->step_offset + 1;
    float lr = ctx->lr * ap->lr_mult;
    vt_adam_consts k = vt_adam_consts_of(ap, lr, t);
    float b1 = (float)ap->beta1, b2 = (float)ap->beta2;
    if (mode == FAKE_ADAM_F32) {
        k.c1 = 1.0f - b1;
        k.c2 = 1.0f - b2;
        k.decay = 1.0f - lr * (float)ap->weight_decay;
    }
    if (mode == FAKE_ADAM_F32 || mode == FAKE_ADAM_BC_F32) {
        k.step_size = lr / (1.0f - powf(b1, (float)t));
        k.sqrt_bc2 = sqrtf(1.0f - powf(b2, (float)t));
    }
    for (int64_t i = 0; i < vt_tensor_nelem(n->dst[0]); i++) {
        float w = p[i], g = g0[i];
        if (ap->decoupled) w *= k.decay;
        else g = fmaf(k.wd, w, g);
        float d = g - m[i];
        float mi = k.c1 < 0.5f ? fmaf(k.c1, d, m[i]) : fmaf(-(1.0f - k.c1), d, g);
        float vi = fmaf(k.c2 * g, g, v[i] * k.b2);
        m[i] = mi;
        v[i] = vi;
        p[i] = w - (k.step_size * mi) / (sqrtf(vi) / k.sqrt_bc2 + k.eps);
    }
}

/* Plain SGD with a given learning rate. */
static void fake_sgd(const vt_node *n, float lr) {
    const float *g = (const float *)((const char *)n->src[0]->buf->host + n->src[0]->offset);
    float *p = (float *)((char *)n->dst[0]->buf->host + n->dst[0]->offset);
    for (int64_t i = 0; i < vt_tensor_nelem(n->dst[0]); i++)
        p[i] -= lr * n->p.sgd.lr_mult * (g[i] + n->p.sgd.weight_decay * p[i]);
}

static void fake_state_free(vt_backend *be, void *state) {
    (void)be;
    free(state);
}

/* A recording that keeps the learning rate of its first run (FAKE_BAKED), as a command buffer with the
 * value in its push constants would. */
static vt_status fake_graph(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx) {
    fake_ctx *fc = be->context;
    if (!exec->be_state) {
        float *lr = malloc(sizeof *lr);
        if (!lr) return VT_ERR_OOM;
        *lr = ctx->lr;
        exec->be_state = lr;
        exec->be_state_free = fake_state_free;
    }
    float lr = fc->mode == FAKE_BAKED ? *(float *)exec->be_state : ctx->lr;
    for (int i = 0; i < exec->n_nodes; i++) {
        if (exec->nodes[i].op == VT_OP_ADAM) {
            fake_adam(&exec->nodes[i], ctx, fc->mode);
            continue;
        }
        if (exec->nodes[i].op != VT_OP_SGD) return vt_error(VT_ERR_UNSUPPORTED, "fake: graphs of SGD and Adam only");
        fake_sgd(&exec->nodes[i], lr);
    }
    return VT_OK;
}

static vt_status fake_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    fake_ctx *fc = be->context;
    if (fc->mode == FAKE_UNSUPPORTED) return vt_error(VT_ERR_UNSUPPORTED, "fake: declines at run time");
    if (n->op == VT_OP_SGD) {
        fake_sgd(n, ctx->lr);
        return VT_OK;
    }
    if (n->op == VT_OP_ADAM) {
        fake_adam(n, ctx, fc->mode);
        return VT_OK;
    }
    float *x = (float *)((char *)n->src[0]->buf->host + n->src[0]->offset);
    float *y = (float *)((char *)n->dst[0]->buf->host + n->dst[0]->offset);
    int64_t count = vt_tensor_nelem(n->dst[0]);
    for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
    switch (fc->mode) {
    case FAKE_OVERRUN: y[count] = 0.0f; break; /* one element past the output */
    case FAKE_UNDERRUN: y[-1] = 0.0f; break;   /* one element before it */
    case FAKE_WRONG: y[count / 2] += 0.01f; break;
    case FAKE_SKIP_ONE: y[count - 1] = -31337.0f; break; /* as if the tail was never written */
    case FAKE_TOUCH_INPUT: x[0] = 42.0f; break;
    case FAKE_NAN: y[1] = NAN; break;
    default: break;
    }
    return VT_OK;
}

static vt_status fake_sync(vt_backend *be) {
    (void)be;
    return VT_OK;
}

static const vt_backend_i fake_iface = {
    .free = fake_free,
    .buffer_alloc = fake_alloc,
    .buffer_free = fake_buffer_free,
    .buffer_write = fake_write,
    .buffer_read = fake_read,
    .supports_node = fake_supports,
    .compute_node = fake_compute,
    .graph_compute = fake_graph,
    .synchronize = fake_sync,
};

static vt_backend *fake_new(fake_mode mode) {
    vt_backend *be = calloc(1, sizeof *be);
    fake_ctx *fc = calloc(1, sizeof *fc);
    assert_non_null(be);
    assert_non_null(fc);
    fc->mode = mode;
    be->iface = &fake_iface;
    be->context = fc;
    snprintf(be->info.backend, sizeof be->info.backend, "fake");
    snprintf(be->info.name, sizeof be->info.name, "fake device");
    return be;
}

static void relu_case(vt_conf_case *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "act relu fake 5x7");
    snprintf(c->origin, sizeof c->origin, "test");
    c->op = VT_OP_ACT;
    c->p.act.kind = VT_ACT_RELU;
    c->tol = vt_conf_op_tol(VT_OP_ACT);
    c->red = 1;
    c->seed = 99;
    vt_conf_operand *x = &c->src[0], *y = &c->dst[0];
    x->present = y->present = 1;
    x->dtype = y->dtype = VT_F32;
    x->ndim = y->ndim = 2;
    x->shape[0] = y->shape[0] = 5;
    x->shape[1] = y->shape[1] = 7;
    x->shape[2] = y->shape[2] = x->shape[3] = y->shape[3] = 1;
    x->init = VT_CONF_INIT_UNIFORM;
    x->lo = -1;
    x->hi = 1;
    y->init = VT_CONF_INIT_GARBAGE;
    y->is_output = 1;
}

static vt_conf_result run_fake(fake_mode mode) {
    vt_backend *ref = start_reference();
    vt_backend *fake = fake_new(mode);
    vt_conf_case c;
    relu_case(&c);
    vt_conf_result r;
    assert_int_equal(vt_conf_run_case(ref, fake, "fake", &c, &r), VT_OK);
    vt_conf_case_release(&c);
    vt_backend_free(fake);
    vt_backend_free(ref);
    printf("fake mode %d: %s %s\n", (int)mode, vt_conf_verdict_name(r.verdict), r.message);
    return r;
}

static void test_fake_correct_passes(void **state) {
    (void)state;
    vt_conf_result r = run_fake(FAKE_OK);
    if (r.verdict == VT_CONF_SKIP) {
        printf("SKIPPED: the CPU reference has no relu (%s)\n", r.message);
        skip();
    }
    assert_int_equal(r.verdict, VT_CONF_PASS);
    assert_true(r.worst_nmse == 0.0);
}

static void expect_fail(fake_mode mode, const char *needle) {
    vt_conf_result r = run_fake(mode);
    if (r.verdict == VT_CONF_SKIP && strstr(r.message, "reference")) {
        printf("SKIPPED: the CPU reference has no relu\n");
        skip();
    }
    assert_int_equal(r.verdict, VT_CONF_FAIL);
    assert_non_null(strstr(r.message, needle));
}

static void test_fake_overrun_caught(void **state) {
    (void)state;
    expect_fail(FAKE_OVERRUN, "canary overwritten: after byte 0 of dst0");
}

static void test_fake_underrun_caught(void **state) {
    (void)state;
    expect_fail(FAKE_UNDERRUN, "canary overwritten: before byte 4 of dst0");
}

static void test_fake_wrong_value_caught(void **state) {
    (void)state;
    expect_fail(FAKE_WRONG, "dst0[17]");
}

static void test_fake_unwritten_caught(void **state) {
    (void)state;
    expect_fail(FAKE_SKIP_ONE, "dst0[34]: got -31337");
}

static void test_fake_input_write_caught(void **state) {
    (void)state;
    expect_fail(FAKE_TOUCH_INPUT, "input src0 was modified");
}

static void test_fake_nan_caught(void **state) {
    (void)state;
    expect_fail(FAKE_NAN, "NaN/Inf mismatch at dst0[1]");
}

/* Per-step values baked into a recording are caught by the replay with another context. */
static void test_fake_baked_ctx_caught(void **state) {
    (void)state;
    for (int baked = 0; baked < 2; baked++) {
        vt_backend *ref = start_reference();
        vt_backend *fake = fake_new(baked ? FAKE_BAKED : FAKE_OK);
        vt_conf_options opt;
        vt_conf_options_default(&opt);
        opt.op = "sgd";
        vt_conf_report rep;
        memset(&rep, 0, sizeof rep);
        assert_int_equal(vt_conf_run_target(ref, fake, "fake", NULL, 0, &opt, &rep), VT_OK);
        int p, f, s;
        vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
        printf("fake sgd %s: %d passed, %d failed, %d skipped\n", baked ? "baked lr" : "correct", p, f, s);
        if (p + f == 0) {
            printf("SKIPPED: the CPU reference has no sgd\n");
            skip();
        }
        if (baked) {
            assert_int_equal(p, 0);
            assert_true(f >= 2);
            assert_non_null(strstr(rep.results[0].message, "dst0["));
        } else {
            assert_int_equal(f, 0);
            assert_true(p >= 2);
        }
        vt_conf_report_free(&rep);
        vt_backend_free(fake);
        vt_backend_free(ref);
    }
}

/* Adam's constants in float32 (what the GPU backends did) fail, against the CPU reference (built-in
 * cases, the update cases with small parameters) and against torch (tests/cases/adam.json); only the
 * bias corrections in float32 (the Vulkan shader's 1 - pow(b, t)) fail the update cases; in double
 * everything passes. */
static void test_fake_adam_f32_caught(void **state) {
    (void)state;
    static const fake_mode modes[3] = {FAKE_OK, FAKE_ADAM_F32, FAKE_ADAM_BC_F32};
    static const char *names[3] = {"double", "f32", "f32 bias corrections"};
    for (int k = 0; k < 3; k++) {
        vt_backend *ref = start_reference();
        vt_backend *fake = fake_new(modes[k]);
        vt_conf_options opt;
        vt_conf_options_default(&opt);
        opt.op = "adam";
        vt_conf_report rep;
        memset(&rep, 0, sizeof rep);
        assert_int_equal(vt_conf_run_target(ref, fake, "fake", g_files, g_n_files, &opt, &rep), VT_OK);
        int builtin_fail = 0, update_fail = 0, file_fail = 0, file_cases = 0, p, f, s;
        for (int i = 0; i < rep.n; i++) {
            const vt_conf_result *r = &rep.results[i];
            int from_file = strcmp(r->origin, "builtin") != 0;
            file_cases += from_file;
            if (r->verdict != VT_CONF_FAIL) continue;
            int upd = strstr(r->case_name, "-update") != NULL;
            if (upd && update_fail++ == 0) printf("  e.g. %s: %s\n", r->case_name, r->message);
            if (from_file && file_fail++ == 0) printf("  e.g. %s: %s\n", r->case_name, r->message);
            if (!from_file) builtin_fail++;
        }
        vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
        printf("fake adam, constants in %s: %d passed, %d failed (%d built-in of which %d update cases, %d of %d torch "
               "cases)\n",
               names[k], p, f, builtin_fail, update_fail, file_fail, file_cases);
        assert_int_equal(s, 0);
        if (modes[k] == FAKE_OK) {
            assert_int_equal(f, 0);
            assert_true(p >= 10);
        } else {
            assert_true(update_fail >= 1);
            if (modes[k] == FAKE_ADAM_F32 && file_cases > 0) assert_true(file_fail >= 3);
        }
        vt_conf_report_free(&rep);
        vt_backend_free(fake);
        vt_backend_free(ref);
    }
}

/* An op the backend does not claim, and one it declines at run time, are both skipped, never passed. */
static void test_unsupported_is_skipped(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    vt_backend *fake = fake_new(FAKE_OK);
    vt_conf_options opt;
    vt_conf_options_default(&opt);
    opt.op = "conv2d";
    vt_conf_report rep;
    memset(&rep, 0, sizeof rep);
    assert_int_equal(vt_conf_run_target(ref, fake, "fake", NULL, 0, &opt, &rep), VT_OK);
    int p, f, s;
    vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
    assert_true(rep.n > 5);
    assert_int_equal(p, 0);
    assert_int_equal(f, 0);
    assert_int_equal(s, rep.n);
    assert_int_equal(rep.results[0].verdict, VT_CONF_SKIP);
    vt_conf_report_free(&rep);
    vt_backend_free(fake);
    vt_backend_free(ref);

    vt_conf_result r = run_fake(FAKE_UNSUPPORTED);
    assert_int_equal(r.verdict, VT_CONF_SKIP);

    /* the promise check: kept by the honest fake, broken by one that claims and then declines or
     * claims and computes wrong values */
    static const fake_mode modes[3] = {FAKE_OK, FAKE_UNSUPPORTED, FAKE_WRONG};
    for (int k = 0; k < 3; k++) {
        ref = start_reference();
        fake = fake_new(modes[k]);
        int claimed = 0;
        int broken = check_supports(ref, fake, "fake", &claimed);
        assert_true(claimed >= 3);
        if (modes[k] == FAKE_OK) assert_int_equal(broken, 0);
        else assert_true(broken >= 1);
        vt_backend_free(fake);
        vt_backend_free(ref);
    }
}

/* The JSON output parses and agrees with the counts; the markdown table has the op rows. */
static void test_report_outputs(void **state) {
    (void)state;
    vt_backend *ref = start_reference();
    vt_backend *fake = fake_new(FAKE_OVERRUN);
    vt_conf_report rep;
    memset(&rep, 0, sizeof rep);
    vt_conf_options opt;
    vt_conf_options_default(&opt);
    opt.op = "act";
    assert_int_equal(vt_conf_run_target(ref, fake, "fake", NULL, 0, &opt, &rep), VT_OK);
    opt.op = "pool2d";
    assert_int_equal(vt_conf_run_target(ref, fake, "fake", NULL, 0, &opt, &rep), VT_OK);
    int p, f, s;
    vt_conf_report_count(&rep, VT_OP_NONE, NULL, &p, &f, &s);
    assert_true(f > 0 && s > 0);
    rep.targets = calloc(1, sizeof *rep.targets);
    assert_non_null(rep.targets);
    rep.n_targets = 1;
    snprintf(rep.targets[0].label, sizeof rep.targets[0].label, "fake");
    snprintf(rep.targets[0].device, sizeof rep.targets[0].device, "fake \"quoted\" device");

    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    vt_conf_report_print_json(&rep, mem);
    fclose(mem);
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    const cJSON *sum = cJSON_GetObjectItem(root, "summary");
    assert_int_equal(cJSON_GetObjectItem(sum, "fail")->valueint, f);
    assert_int_equal(cJSON_GetObjectItem(sum, "skip")->valueint, s);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "results")), rep.n);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "targets"), 0), "device")->valuestring,
        "fake \"quoted\" device");
    cJSON_Delete(root);
    free(buf);

    buf = NULL;
    mem = open_memstream(&buf, &len);
    vt_conf_report_print_table(&rep, mem);
    fclose(mem);
    assert_non_null(strstr(buf, "FAIL fake: act relu"));
    assert_non_null(strstr(buf, "canary overwritten"));
    free(buf);

    char path[] = "/tmp/vt_conf_mdXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(vt_conf_report_write_markdown(&rep, path), VT_OK);
    FILE *md = fopen(path, "r");
    assert_non_null(md);
    char text[8192];
    size_t got = fread(text, 1, sizeof text - 1, md);
    text[got] = 0;
    fclose(md);
    remove(path);
    assert_non_null(strstr(text, "| act | FAIL ("));
    assert_non_null(strstr(text, "| pool2d | no |"));
    vt_conf_report_free(&rep);
    vt_backend_free(fake);
    vt_backend_free(ref);
}

/* ---- hostile case files ---- */

static vt_status load_text(const char *text, char *msg, size_t n) {
    char path[] = "/tmp/vt_conf_caseXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    vt_conf_case *cases = NULL;
    int nc = 0;
    vt_status st = vt_conf_load_file(path, &cases, &nc);
    snprintf(msg, n, "%s", vt_last_error());
    if (st == VT_OK) vt_conf_cases_free(cases, nc);
    remove(path);
    return st;
}

#define HDR "{\"format\":\"vtrain-cases\",\"version\":1,\"cases\":["
#define RELU_OK \
    "{\"name\":\"r\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[2],\"data\":[1,-1]}],\"dst\":[{\"shape\":[2],\"expected\":[1,0]}]}"

/* the start of a bn_apply file case up to its dst list: x [2,1] = {1, 2}, the given count */
#define BN_APPLY_SRC(count)                                                                                            \
    "{\"name\":\"a\",\"op\":\"bn_apply\",\"params\":{\"count\":" #count "},\"src\":[{\"shape\":[2,1],\"data\":[1,2]}," \
    "{\"shape\":[1],\"data\":[1]},{\"shape\":[1],\"data\":[0]},{\"shape\":[2,1],\"data\":[1.5,0.25]}],\"dst\":["

/* softmax_ce_bwd per pixel, logits [1,2,1,2], labels [1,1,2] (PARAMS: more params after the scale) */
#define CE_PX(PARAMS, LABELS)                                                                                         \
    "{\"name\":\"a\",\"op\":\"softmax_ce_bwd\",\"params\":{\"scale\":0.5" PARAMS "},"                                 \
    "\"src\":[{\"shape\":[1,2,1,2],\"data\":[1,2,3,4]},{\"dtype\":\"i32\",\"shape\":[1,1,2],\"data\":[" LABELS "]}]," \
    "\"dst\":[{\"shape\":[1,2,1,2],\"expected\":[0,0,0,0]}]}"
static void test_case_files_hostile(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *needle;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"{\"format\":\"x\",\"version\":1,\"cases\":[]}", "'format'"},
        {"{\"format\":\"vtrain-cases\",\"version\":2,\"cases\":[]}", "'version'"},
        {HDR "{\"name\":\"a\",\"op\":\"nosuch\"}]}", "op 'nosuch' is unknown"},
        {HDR "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\",\"bogus\":1},\"src\":[],\"dst\":[]}]}",
         "unknown field 'bogus'"},
        {HDR "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"tanh\"}}]}", "'kind' has unknown value"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[3],\"data\":[1,2]}],\"dst\":[]}]}",
         "src0.data has 2 values, the shape needs 3"},
        {HDR "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[0],\"data\":[]}]}]}",
         "src0.shape[0]"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[100000,100000],\"data\":[]}]}]}",
         "src0.shape"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[1,1,1,1,1],\"data\":[1]}]}]}",
         "5 dims"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[1],\"data\":[\"x\"]}]}]}",
         "src0.data[0]"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[1],\"data\":[1e39]}]}]}",
         "finite f32"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[2],\"data\":[1,2]}],\"dst\":[{\"shape\":[2]}]}]}",
         "dst0 needs 'expected'"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"shape\":[2],\"data\":[1,2]}],\"dst\":[{\"shape\":[3],\"expected\":[1,2,3]}]}]}",
         "the node is invalid"},
        {HDR
         "{\"name\":\"a\",\"op\":\"softmax_ce_bwd\",\"src\":[{\"shape\":[1,2],\"data\":[1,2]},{\"dtype\":\"i32\",\"shape\":[1],\"data\":[2]}],"
         "\"dst\":[{\"shape\":[1,2],\"expected\":[0,0]}]}]}",
         "label not in [0, 2)"},
        {HDR
         "{\"name\":\"a\",\"op\":\"softmax_ce_bwd\",\"src\":[{\"shape\":[1,2],\"data\":[1,2]},{\"dtype\":\"i32\",\"shape\":[1],\"data\":[0.5]}],"
         "\"dst\":[{\"shape\":[1,2],\"expected\":[0,0]}]}]}",
         "must be an integer"},
        {HDR
         "{\"name\":\"a\",\"op\":\"act\",\"params\":{\"kind\":\"relu\"},\"src\":[{\"dtype\":\"f64\",\"shape\":[1],\"data\":[1]}]}]}",
         "dtype 'f64'"},
        {HDR RELU_OK "," RELU_OK ",{\"name\":7}]}", "case 2"},
        {"{\"format\":\"vtrain-cases\",\"version\":1,\"extra\":1,\"cases\":[]}", "unknown top-level field 'extra'"},
        {HDR
         "{\"name\":\"a\",\"op\":\"batchnorm\",\"params\":{\"training\":1},\"src\":[{\"shape\":[2,1],\"data\":[1,2]},"
         "{\"shape\":[1],\"data\":[1]},{\"shape\":[1],\"data\":[0]},{\"shape\":[1],\"data\":[0]},{\"shape\":[1],\"data\":[1]}],"
         "\"dst\":[{\"shape\":[2,1],\"expected\":[-1,1]},{\"shape\":[1],\"expected\":[1.5]},{\"shape\":[1],\"expected\":[2]}]}]}",
         "src3 (running statistics"},
        {HDR "{\"name\":\"a\",\"op\":\"conv2d\",\"params\":{\"stride_h\":1e12}}]}", "out of range"},
        /* the running statistics of bn_apply are read before they are updated: they need contents */
        {HDR BN_APPLY_SRC(2) "{\"shape\":[2,1],\"expected\":[-1,1]},{\"shape\":[1],\"expected\":[0.15]},"
                             "{\"shape\":[1],\"expected\":[0.95]}]}]}",
         "dst1 (running statistics"},
        /* count covers at least this rank's values */
        {HDR BN_APPLY_SRC(1) "{\"shape\":[2,1],\"expected\":[-1,1]}]}]}", "count 1"},
        /* per pixel: every label is checked, not only the first N (without ignore) */
        {HDR CE_PX("", "0,5") "]}", "src1.data[1] = 5: label not in [0, 2)"},
        {HDR CE_PX(",\"ignore\":2", "0,1") "]}", "ignore = 2"},
        {HDR "{\"name\":\"a\",\"op\":\"confusion\",\"params\":{\"ignore\":1}}]}", "unknown field 'ignore'"},
        {HDR "{\"name\":\"a\",\"op\":\"batch_prep\",\"params\":{\"centre\":1}}]}", "unknown field 'centre'"},
    };
    char msg[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vt_status st = load_text(bad[i].text, msg, sizeof msg);
        if (st != VT_ERR_FORMAT || !strstr(msg, bad[i].needle))
            printf("case %zu: status %s, message '%s', expected '%s'\n", i, vt_status_name(st), msg, bad[i].needle);
        assert_int_equal(st, VT_ERR_FORMAT);
        assert_non_null(strstr(msg, bad[i].needle));
        assert_non_null(strstr(msg, "vt_conf_case")); /* names the file */
    }
    assert_int_equal(load_text(HDR RELU_OK "]}", msg, sizeof msg), VT_OK);
    /* with ignore, labels outside [0,K) are the point */
    assert_int_equal(load_text(HDR CE_PX(",\"ignore\":1", "255,-1") "]}", msg, sizeof msg), VT_OK);
}

/* name is a word of the space- or comma-separated list */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == ',') && (p[n] == 0 || p[n] == ' ' || p[n] == ',')) return 1;
    return 0;
}

/* The names of VT_CONFORMANCE_BACKENDS that cannot be checked here: not compiled in, or no device.
 * Each is reported; a run that was asked for them is skipped (exit 77), never passed. */
static int unavailable_backends(const char *list) {
    int missing = 0;
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, " ,");
        if (n > 0) {
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(n < 31 ? n : 31), p);
            const vt_backend_reg *reg = vt_backend_reg_find(name);
            if (!reg || reg->device_count() <= 0) {
                printf("SKIPPED: backend %s named in VT_CONFORMANCE_BACKENDS %s\n", name,
                       reg ? "has no device here" : "is not compiled in");
                missing++;
            }
        }
        p += n;
        p += strspn(p, " ,");
    }
    return missing;
}

/* Runs this program again with VT_CONFORMANCE_BACKENDS=backends and no test selected; its exit status. */
static int rerun_with_backends(const char *backends) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("VT_CONFORMANCE_BACKENDS", backends, 1);
        setenv("VT_CONFORMANCE_FILTER", "no test has this name", 1);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        execl("/proc/self/exe", "test_conformance", (char *)NULL);
        _exit(126);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Asking for a backend that is not compiled in, or has no device here, is a skip (77), not a pass. */
static void test_unavailable_backend_is_skipped(void **state) {
    (void)state;
    assert_int_equal(rerun_with_backends("cpu"), 0);
    assert_int_equal(rerun_with_backends("nosuch"), 77);
    assert_int_equal(rerun_with_backends("cpu,nosuch"), 77);
    int without_device = 0;
    for (int b = 0; b < vt_backend_reg_count(); b++) {
        const vt_backend_reg *reg = vt_backend_reg_get(b);
        if (reg->device_count() > 0) continue;
        printf("%s is compiled in without a device here: asking for it is skipped\n", reg->name);
        assert_int_equal(rerun_with_backends(reg->name), 77);
        without_device++;
    }
    printf("%d backends compiled in without a device\n", without_device);
}

int main(void) {
    vt_status st = vt_conf_load_dir(VT_SOURCE_DIR "/tests/cases", &g_files, &g_n_files);
    if (st == VT_ERR_NOT_FOUND) {
        printf("no tests/cases folder: only the built-in cases run\n");
    } else if (st != VT_OK) {
        /* A broken committed case file is a failure, not a skip. */
        printf("tests/cases: %s\n", vt_last_error());
        return 1;
    }
    struct CMUnitTest tests[48];
    int n = 0;
    static const char *names[] = {"cpu", "opencl", "vulkan", "cuda"};
    /* VT_CONFORMANCE_BACKENDS="vulkan ...": only these backends (ctest runs Vulkan once more this way
     * with its other GEMM and reduction paths) */
    const char *only = getenv("VT_CONFORMANCE_BACKENDS");
    int missing = unavailable_backends(only);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (only && !listed(only, names[i])) {
            printf("SKIPPED: backend %s is not in VT_CONFORMANCE_BACKENDS\n", names[i]);
            continue;
        }
        if (!vt_backend_reg_find(names[i])) {
            printf("SKIPPED: backend %s is not compiled in\n", names[i]);
            continue;
        }
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_backend, (void *)names[i]);
        tests[n].name = names[i];
        n++;
        static char chain_names[4][32];
        snprintf(chain_names[i], sizeof chain_names[i], "%s graph chain", names[i]);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_graph_chain, (void *)names[i]);
        tests[n].name = chain_names[i];
        n++;
        static char adam_names[4][32];
        snprintf(adam_names[i], sizeof adam_names[i], "%s adam graph", names[i]);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_adam_graph, (void *)names[i]);
        tests[n].name = adam_names[i];
        n++;
        static char bits_names[4][32];
        snprintf(bits_names[i], sizeof bits_names[i], "%s adam torch bits", names[i]);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_adam_torch_bits, (void *)names[i]);
        tests[n].name = bits_names[i];
        n++;
        static char view_names[4][32];
        snprintf(view_names[i], sizeof view_names[i], "%s nonfinite view", names[i]);
        tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_nonfinite_view, (void *)names[i]);
        tests[n].name = view_names[i];
        n++;
    }
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_reference_vs_files),
        cmocka_unit_test(test_fake_correct_passes),
        cmocka_unit_test(test_fake_overrun_caught),
        cmocka_unit_test(test_fake_underrun_caught),
        cmocka_unit_test(test_fake_wrong_value_caught),
        cmocka_unit_test(test_fake_unwritten_caught),
        cmocka_unit_test(test_fake_input_write_caught),
        cmocka_unit_test(test_fake_nan_caught),
        cmocka_unit_test(test_fake_baked_ctx_caught),
        cmocka_unit_test(test_fake_adam_f32_caught),
        cmocka_unit_test(test_unsupported_is_skipped),
        cmocka_unit_test(test_case_files_hostile),
        cmocka_unit_test(test_report_outputs),
        cmocka_unit_test(test_nonfinite_reference),
        cmocka_unit_test(test_segmentation_reference),
        cmocka_unit_test(test_int_outputs_exact),
        cmocka_unit_test_prestate(test_adam_torch_bits, (void *)"cpu-ref"),
        cmocka_unit_test(test_supports_is_exact),
        cmocka_unit_test(test_unavailable_backend_is_skipped),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) tests[n++] = fixed[i];
    /* VT_CONFORMANCE_FILTER="*adam*": only the tests whose name matches (cmocka's wildcards) */
    if (getenv("VT_CONFORMANCE_FILTER")) cmocka_set_test_filter(getenv("VT_CONFORMANCE_FILTER"));
    int rc = _cmocka_run_group_tests("conformance", tests, (size_t)n, NULL, NULL);
    vt_conf_cases_free(g_files, g_n_files);
    return rc == 0 && missing ? 77 : rc;
}
