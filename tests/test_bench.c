/* Tests of `vtrain bench`: the timing path on a small in-test backend (results, FLOP counts, order
 * of min/median/max), and the vtrain program's --ops --quick JSON (well formed, every field there).
 * Speed is never checked. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The op-benchmark code itself, so that it runs here against the backend below. */
#include "../tools/bench_ops.c"

/* ---- a tiny host backend that implements MATMUL (no transposes, no bias) and ADD ---- */
static int g_computes;

static void tb_free(vt_backend *be) { free(be); }
static vt_status tb_alloc(vt_backend *be, vt_buffer *b) {
    (void)be;
    b->host = calloc(1, b->size);
    return b->host ? VT_OK : vt_error(VT_ERR_OOM, "test backend: oom");
}
static void tb_buf_free(vt_backend *be, vt_buffer *b) {
    (void)be;
    free(b->host);
}
static vt_status tb_write(vt_backend *be, vt_buffer *b, size_t off, const void *d, size_t n) {
    (void)be;
    memcpy((char *)b->host + off, d, n);
    return VT_OK;
}
static vt_status tb_read(vt_backend *be, const vt_buffer *b, size_t off, void *d, size_t n) {
    (void)be;
    memcpy(d, (const char *)b->host + off, n);
    return VT_OK;
}
static bool tb_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    if (n->op == VT_OP_ADD) return true;
    return n->op == VT_OP_MATMUL && !n->p.matmul.trans_a && !n->p.matmul.trans_b && !n->src[2];
}
static float *tb_f(const vt_tensor *t) { return (float *)((char *)t->buf->host + t->offset); }
static vt_status tb_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    (void)be;
    (void)ctx;
    g_computes++;
    if (n->op == VT_OP_ADD) {
        int64_t e = vt_tensor_nelem(n->dst[0]);
        const float *a = tb_f(n->src[0]), *b = tb_f(n->src[1]);
        float *c = tb_f(n->dst[0]);
        for (int64_t i = 0; i < e; i++) c[i] = a[i] + b[i];
        return VT_OK;
    }
    int64_t M = n->dst[0]->shape[0], N = n->dst[0]->shape[1], K = n->src[0]->shape[1];
    const float *A = tb_f(n->src[0]), *B = tb_f(n->src[1]);
    float *C = tb_f(n->dst[0]);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = 0;
            for (int64_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
            C[i * N + j] = s;
        }
    return VT_OK;
}
static vt_status tb_sync(vt_backend *be) {
    (void)be;
    return VT_OK;
}
static const vt_backend_i tb_iface = {tb_free,     tb_alloc,   tb_buf_free, tb_write, tb_read,
                                      tb_supports, tb_compute, NULL,        tb_sync};

static vt_backend *tb_new(double peak) {
    vt_backend *be = calloc(1, sizeof *be);
    assert_non_null(be);
    be->iface = &tb_iface;
    snprintf(be->info.backend, sizeof be->info.backend, "test");
    snprintf(be->info.name, sizeof be->info.name, "test host");
    be->info.peak_gflops = peak;
    return be;
}

static void test_cases_cover_the_brief(void **state) {
    (void)state;
    vt_bench_case cs[128];
    int n = vt_bench_make_cases(0, cs, 128);
    int gemm = 0, conv[3] = {0, 0, 0}, pool = 0, bn = 0, add = 0, big = 0;
    for (int i = 0; i < n; i++) {
        switch (cs[i].op) {
        case VT_OP_MATMUL:
            gemm++;
            big |= cs[i].dst[0].shape[0] == 1024 && cs[i].dst[0].shape[1] == 1024 && cs[i].src[0].shape[1] == 1024;
            break;
        case VT_OP_CONV2D:
            conv[0]++;
            assert_int_equal(cs[i].src[0].shape[0], 128);
            break;
        case VT_OP_CONV2D_BWD_DATA: conv[1]++; break;
        case VT_OP_CONV2D_BWD_WEIGHT: conv[2]++; break;
        case VT_OP_POOL2D:
        case VT_OP_POOL2D_BWD: pool++; break;
        case VT_OP_BATCHNORM:
        case VT_OP_BATCHNORM_BWD: bn++; break;
        case VT_OP_ADD: add++; break;
        default: fail_msg("unexpected op %s", vt_op_name(cs[i].op));
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cs[i].name, cs[j].name) == 0) fail_msg("duplicate case name %s", cs[i].name);
    }
    assert_true(big);
    assert_true(gemm >= 7);
    /* 8 distinct 3x3/7x7 convolutions and 3 downsamples, each forward and both backwards */
    assert_int_equal(conv[0], 11);
    assert_int_equal(conv[1], 11);
    assert_int_equal(conv[2], 11);
    assert_int_equal(pool, 2);
    assert_int_equal(bn, 2);
    assert_int_equal(add, 1);
    /* every case is a valid node */
    for (int q = 0; q < 2; q++) {
        n = vt_bench_make_cases(q, cs, 128);
        for (int i = 0; i < n; i++) {
            vt_tensor t[VT_MAX_SRC + VT_MAX_DST];
            vt_node node;
            memset(&node, 0, sizeof node);
            node.op = cs[i].op;
            node.p = cs[i].p;
            for (int k = 0; k < cs[i].nsrc + cs[i].ndst; k++) {
                const vt_tspec *sp = k < cs[i].nsrc ? &cs[i].src[k] : &cs[i].dst[k - cs[i].nsrc];
                vt_tensor_init(&t[k], "t", VT_F32, sp->ndim, sp->shape);
                if (k < cs[i].nsrc) node.src[k] = &t[k];
                else node.dst[k - cs[i].nsrc] = &t[k];
            }
            if (vt_node_validate(&node) != VT_OK) fail_msg("case %s: %s", cs[i].name, vt_last_error());
        }
    }
}

static void test_run_case_timing(void **state) {
    (void)state;
    vt_backend *be = tb_new(100.0);
    vt_bench_case cs[128];
    int n = vt_bench_make_cases(1, cs, 128);
    vt_bench_opts o = {.warmup = 1, .repeats = 5, .quick = 1, .min_sample_ms = 5, .max_case_ms = 10000};
    int ok = 0, unsupported = 0;
    for (int i = 0; i < n; i++) {
        vt_bench_result r;
        g_computes = 0;
        vt_status s = vt_bench_run_case(be, &cs[i], &o, &r);
        assert_int_equal(s, VT_OK);
        if (!tb_supports(be, &(vt_node){.op = cs[i].op, .p = cs[i].p})) {
            assert_int_equal(r.status, VT_BENCH_UNSUPPORTED);
            assert_int_equal(g_computes, 0);
            unsupported++;
            continue;
        }
        assert_int_equal(r.status, VT_BENCH_OK);
        /* warm-up + sizing run + 5 samples of one execution each (quick) */
        assert_int_equal(g_computes, 1 + 1 + 5);
        assert_int_equal(r.repeats, 5);
        assert_true(r.ms_min <= r.ms_median && r.ms_median <= r.ms_max);
        assert_true(r.ms_min >= 0);
        if (cs[i].op == VT_OP_MATMUL) {
            double M = (double)cs[i].dst[0].shape[0], N = (double)cs[i].dst[0].shape[1],
                   K = (double)cs[i].src[0].shape[1];
            assert_true(fabs(r.flops - 2 * M * N * K) < 1e-6);
            if (r.ms_median > 0) {
                assert_true(fabs(r.gflops - r.flops / (r.ms_median * 1e-3) * 1e-9) < 1e-6 * r.gflops + 1e-9);
                assert_true(fabs(r.peak_fraction - r.gflops / 100.0) < 1e-9);
            }
        } else {
            assert_true(isnan(r.peak_fraction)); /* memory-bound: no fraction of FLOP peak */
            assert_true(fabs(r.bytes - 3.0 * 4096 * 4) < 1e-6);
        }
        ok++;
    }
    assert_true(ok >= 4);
    assert_true(unsupported > 30);
    vt_backend_free(be);
}

/* The vtrain program sits in ../tools relative to this test in the build tree. */
static int find_vtrain(char *out, size_t n) {
    char self[1024];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return 0;
    self[k] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return 0;
    *slash = 0;
    snprintf(out, n, "%s/../tools/vtrain", self);
    return access(out, X_OK) == 0;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    p[len] = 0;
    fclose(f);
    return p;
}

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("missing field '%s'", k);
    return v;
}

/* Runs `vtrain bench ARGS` quickly on the CPU backend with --json DIR/NAME and returns the parsed file. */
static cJSON *bench_json(const char *exe, const char *dir, const char *args, const char *name) {
    char cmd[4096], path[1200];
    snprintf(cmd, sizeof cmd,
             "'%s' bench %s --backend cpu --repeats 1 --warmup 0 --quick --json '%s/%s' > /dev/null 2>&1", exe, args,
             dir, name);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = slurp(path);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (!doc) fail_msg("%s is not valid JSON", name);
    return doc;
}

static void test_vtrain_bench_json(void **state) {
    (void)state;
    char exe[1200];
    if (!find_vtrain(exe, sizeof exe)) fail_msg("vtrain program not found next to the tests (%s)", exe);
    char dir[] = "/tmp/vt_test_bench_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' bench --ops --backend cpu --repeats 1 --warmup 0 --quick --json '%s/b.json' --md '%s/b.md' "
             "--html '%s/b.html' > '%s/out.txt' 2>&1",
             exe, dir, dir, dir, dir);
    int rc = system(cmd);
    char path[200];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *console = slurp(path);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("vtrain bench exited %d:\n%s", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, console ? console : "");
    assert_non_null(console);
    assert_non_null(strstr(console, "gemm 128^3"));
    free(console);

    snprintf(path, sizeof path, "%s/b.json", dir);
    char *text = slurp(path);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    if (!doc) fail_msg("b.json is not valid JSON");
    const cJSON *m = field(doc, "machine");
    assert_true(cJSON_IsString(field(m, "cpu")));
    assert_true(cJSON_IsNumber(field(m, "cores")));
    assert_true(cJSON_IsString(field(doc, "date")));
    assert_non_null(strstr(field(doc, "command")->valuestring, "bench --ops"));
    const cJSON *bes = field(doc, "backends");
    assert_int_equal(cJSON_GetArraySize(bes), 1);
    const cJSON *be = cJSON_GetArrayItem(bes, 0);
    assert_string_equal(field(be, "backend")->valuestring, "cpu");
    assert_string_equal(field(be, "status")->valuestring, "ok");
    assert_true(cJSON_IsString(field(be, "device")));
    assert_true(cJSON_IsNumber(field(be, "peak_gflops")));
    assert_true(cJSON_IsArray(field(be, "problems")));
    const cJSON *ops = field(be, "ops");
    assert_int_equal(cJSON_GetArraySize(ops), 45);
    const cJSON *e;
    int ok = 0;
    cJSON_ArrayForEach(e, ops) {
        assert_true(cJSON_IsString(field(e, "name")));
        assert_true(cJSON_IsString(field(e, "shape")));
        const char *st = field(e, "status")->valuestring;
        const char *keys[] = {"gflops", "gbps", "ms_min", "ms_median", "ms_max"};
        for (int i = 0; i < 5; i++) {
            const cJSON *v = field(e, keys[i]);
            if (strcmp(st, "ok") == 0) assert_true(cJSON_IsNumber(v) && v->valuedouble >= 0);
            else assert_true(cJSON_IsNull(v));
        }
        if (strcmp(st, "ok") == 0) {
            ok++;
            assert_true(field(e, "ms_min")->valuedouble <= field(e, "ms_median")->valuedouble);
            assert_true(field(e, "ms_median")->valuedouble <= field(e, "ms_max")->valuedouble);
        } else if (strcmp(st, "unsupported") != 0) {
            fail_msg("op %s: status %s (%s)", field(e, "name")->valuestring, st,
                     cJSON_IsString(cJSON_GetObjectItem(e, "error")) ? cJSON_GetObjectItem(e, "error")->valuestring
                                                                     : "");
        }
    }
    printf("cpu backend: %d of %d op cases supported\n", ok, cJSON_GetArraySize(ops));
    cJSON_Delete(doc);
    free(text);
    snprintf(path, sizeof path, "%s/b.md", dir);
    text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "| op | shape | unit | cpu: "));
    free(text);
    snprintf(path, sizeof path, "%s/b.html", dir);
    text = slurp(path);
    assert_non_null(text);
    assert_non_null(strstr(text, "</html>"));
    free(text);

    /* a training step next to its GEMM-bound ideal, at the SGEMM rate measured in the same run */
    doc = bench_json(exe, dir, "--problem 2", "p.json");
    const cJSON *pr = cJSON_GetArrayItem(field(cJSON_GetArrayItem(field(doc, "backends"), 0), "problems"), 0);
    assert_non_null(pr);
    assert_string_equal(field(pr, "status")->valuestring, "ok");
    double rate = field(pr, "sgemm_gflops")->valuedouble, gf = field(pr, "gemm_gflop")->valuedouble;
    double ideal = field(pr, "ideal_ms")->valuedouble, med = field(pr, "step_ms_median")->valuedouble;
    assert_true(rate > 0 && gf > 0 && ideal > 0);
    /* the JSON keeps 4 significant digits */
    assert_true(fabs(ideal - gf / rate * 1e3) <= 5e-3 * ideal);
    assert_true(fabs(field(pr, "x_ideal")->valuedouble - med / ideal) <= 5e-3 * (med / ideal));
    cJSON_Delete(doc);

    /* --filter keeps only the op cases whose name contains the text */
    doc = bench_json(exe, dir, "--ops --filter fc1", "f.json");
    ops = field(cJSON_GetArrayItem(field(doc, "backends"), 0), "ops");
    assert_int_equal(cJSON_GetArraySize(ops), 3);
    cJSON_ArrayForEach(e, ops) assert_non_null(strstr(field(e, "name")->valuestring, "fc1"));
    cJSON_Delete(doc);

    /* bad flags are refused with status 2 */
    snprintf(cmd, sizeof cmd, "'%s' bench --repeats 0 > /dev/null 2>&1", exe);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    snprintf(cmd, sizeof cmd, "'%s' bench --problem nine > /dev/null 2>&1", exe);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_cover_the_brief),
        cmocka_unit_test(test_run_case_timing),
        cmocka_unit_test(test_vtrain_bench_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
