/* Tests of `vtrain report` (core/src/report*.c) on synthetic run folders and bench documents:
 * files written, SVG well formed, table rows and derived figures right, bad folders skipped. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vt/report.h"

static char g_root[256];

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    return p;
}

/* A run folder with `epochs` epochs: accuracy rises by `step` points per epoch up to `top`. */
static void make_run(const char *name, int epochs, double step, double top, int with_summary) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%s", g_root, name);
    assert_int_equal(mkdir(dir, 0775), 0);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t k = 0;
    for (int e = 1; e <= epochs; e++) {
        double acc = fmin(top, step * e);
        k += (size_t)snprintf(
            buf + k, 65536 - k,
            "{\"epoch\":%d,\"train_loss\":%.3f,\"train_acc\":%.2f,\"test_loss\":%.3f,\"test_acc\":%.2f,"
            "\"lr\":0.01,\"epoch_seconds\":2.0,\"cum_seconds\":%.1f,\"images_per_s\":25000}\n",
            e, 4.0 / e, acc + 3, 4.2 / e, acc, 2.0 * e);
    }
    write_file(dir, "metrics.jsonl", buf);
    snprintf(buf, 65536,
             "{\"problem\":\"mlp\",\"model\":\"mlp\",\"backend\":\"cpu\",\"device\":\"host CPU\",\"epochs\":%d,"
             "\"batch_size\":64,\"lr\":0.01,\"optimizer\":\"sgd\",\"params\":3250276}",
             epochs);
    write_file(dir, "config.json", buf);
    if (with_summary) {
        snprintf(buf, 65536,
                 "{\"problem\":\"mlp\",\"model\":\"mlp\",\"params\":3250276,\"optimizer\":\"sgd\",\"epochs\":%d,"
                 "\"best_test_acc\":%.2f,\"best_epoch\":%d,\"final_test_acc\":%.2f,\"convergence_epoch\":3,"
                 "\"convergence_seconds\":6.0,\"seconds_per_epoch\":2.0,\"images_per_s\":25000,\"backend\":\"cpu\","
                 "\"device\":\"host CPU\",\"target_acc\":30,\"time_to_target_seconds\":8.0}",
                 epochs, top, epochs, top);
        write_file(dir, "summary.json", buf);
    }
    free(buf);
}

/* Balanced-tag check of an XML fragment: every element closed in order, comments and
 * declarations skipped, attribute values may hold '>'. */
static int xml_balanced(const char *s, const char *end, char *why, size_t nwhy) {
    char stack[64][32];
    int depth = 0, elements = 0;
    for (const char *p = s; p < end; p++) {
        if (*p != '<') continue;
        if (strncmp(p, "<!--", 4) == 0) {
            const char *e = strstr(p, "-->");
            if (!e) return snprintf(why, nwhy, "unclosed comment"), 0;
            p = e + 2;
            continue;
        }
        if (p[1] == '?' || p[1] == '!') {
            p = strchr(p, '>');
            if (!p) return snprintf(why, nwhy, "unclosed declaration"), 0;
            continue;
        }
        int closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = strcspn(n, " \t\n/>");
        if (len == 0 || len >= 32) return snprintf(why, nwhy, "bad tag name near '%.20s'", p), 0;
        const char *q = n + len;
        char quote = 0;
        for (; q < end && (quote || *q != '>'); q++) {
            if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '"' || *q == '\'')) quote = *q;
            else if (!quote && *q == '<') return snprintf(why, nwhy, "'<' inside tag '%.*s'", (int)len, n), 0;
        }
        if (q >= end) return snprintf(why, nwhy, "unterminated tag '%.*s'", (int)len, n), 0;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], n, len) != 0 || stack[depth - 1][len] != 0)
                return snprintf(why, nwhy, "</%.*s> closes <%s>", (int)len, n, depth ? stack[depth - 1] : "(nothing)"),
                       0;
            depth--;
        } else if (q[-1] != '/') {
            if (depth == 64) return snprintf(why, nwhy, "too deep"), 0;
            memcpy(stack[depth], n, len);
            stack[depth][len] = 0;
            depth++;
        }
        elements++;
        p = q;
    }
    if (depth) return snprintf(why, nwhy, "<%s> never closed", stack[depth - 1]), 0;
    if (elements == 0) return snprintf(why, nwhy, "no element"), 0;
    return 1;
}

static void assert_svg_file(const char *path) {
    char *s = read_all(path);
    if (!s) fail_msg("%s was not written", path);
    char why[200] = "";
    if (!xml_balanced(s, s + strlen(s), why, sizeof why)) fail_msg("%s: %s", path, why);
    assert_non_null(strstr(s, "<svg"));
    assert_non_null(strstr(s, "<polyline"));
    free(s);
}

/* Every inline <svg> of an HTML page must be well formed on its own. */
static int assert_html_svgs(const char *html) {
    int n = 0;
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p + 1, "<svg")) {
        const char *e = strstr(p, "</svg>");
        assert_non_null(e);
        char why[200] = "";
        if (!xml_balanced(p, e + 6, why, sizeof why)) fail_msg("inline svg %d: %s", n, why);
        n++;
    }
    return n;
}

static int count_lines_starting(const char *s, const char *prefix) {
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, k) == 0) n++;
    return n;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/vt_test_report_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_convergence_index(void **state) {
    (void)state;
    const double acc[] = {10, 30, 39.5, 40, 39};
    assert_int_equal(vt_report_convergence_index(acc, 5, 1.0), 2);
    assert_int_equal(vt_report_convergence_index(acc, 5, 0.1), 3);
    const double flat[] = {5, NAN, 5};
    assert_int_equal(vt_report_convergence_index(flat, 3, 1.0), 0);
    assert_int_equal(vt_report_convergence_index(acc, 0, 1.0), -1);
}

/* What the library said through vt_log while a report was written, one line per message. */
static char g_log[8192];
static void capture_log(vt_log_level level, const char *text, void *user) {
    (void)user;
    size_t k = strlen(g_log);
    snprintf(g_log + k, sizeof g_log - k, "%s %s%s", level >= VT_LOG_WARN ? "W" : "I", text,
             text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
}

static void test_report_runs(void **state) {
    (void)state;
    make_run("run-a", 10, 5.0, 42.5, 1);
    make_run("run&b", 6, 9.0, 36.0, 0); /* no summary.json: figures derived from metrics.jsonl */
    char dir[400], bad[400], bad2[400], out[400], ab[400];
    snprintf(dir, sizeof dir, "%s/run-a", g_root);
    snprintf(ab, sizeof ab, "%s/run&b", g_root);
    /* A folder with a corrupt metrics file and one that does not exist are skipped, not fatal. */
    snprintf(bad, sizeof bad, "%s/corrupt", g_root);
    assert_int_equal(mkdir(bad, 0775), 0);
    write_file(bad, "metrics.jsonl", "{\"epoch\": 1, \"test_acc\"\n");
    snprintf(bad2, sizeof bad2, "%s/absent", g_root);
    snprintf(out, sizeof out, "%s/out/nested", g_root);
    const char *runs[] = {dir, ab, bad, bad2};
    g_log[0] = 0;
    vt_log_set(capture_log, NULL);
    vt_status s = vt_report_write(runs, 4, out);
    vt_log_set(NULL, NULL);
    if (s != VT_OK) fail_msg("vt_report_write: %s", vt_last_error());
    /* the skipped folders and the missing summary are told through vt_log, not printed */
    assert_non_null(strstr(g_log, "W vtrain report: warning: run "));
    assert_non_null(strstr(g_log, "/corrupt skipped"));
    assert_non_null(strstr(g_log, "/absent skipped"));
    assert_non_null(strstr(g_log, "I vtrain report: note: "));
    assert_non_null(strstr(g_log, "run&b/summary.json is missing"));

    char path[600];
    const char *svgs[] = {"acc_epoch.svg", "train_test_acc.svg", "acc_time.svg", "loss_epoch.svg", "lr_epoch.svg"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", out, svgs[i]);
        assert_svg_file(path);
    }

    snprintf(path, sizeof path, "%s/summary.md", out);
    char *md = read_all(path);
    assert_non_null(md);
    /* the runs table, the table of where they ran, and the target table (run-a only) */
    assert_int_equal(count_lines_starting(md, "| run-a |"), 3);
    assert_int_equal(count_lines_starting(md, "| run&b |"), 2);
    assert_null(strstr(md, "corrupt"));
    assert_null(strstr(md, "absent"));
    /* run-a: figures from summary.json */
    assert_non_null(strstr(
        md,
        "| run-a | mlp | mlp (3.25M) | sgd, 10 epochs | 42.50% (ep 10) | 42.50% | ep 3, 6.0s | 2.00 s/epoch, 25000 img/s | complete |"));
    assert_non_null(strstr(md, "| run-a | cpu | host CPU |"));
    /* run&b: acc 9,18,27,36,36,36 -> best 36 at epoch 4, converged (>= 35) at epoch 4 after 8 s,
     * 12 s over 6 epochs = 2 s/epoch, no images/s without summary.json */
    assert_non_null(strstr(
        md,
        "| run&b | mlp | mlp (3.25M) | sgd, 6 epochs | 36.00% (ep 4) | 36.00% | ep 4, 8.0s | 2.00 s/epoch, - | no summary.json |"));
    assert_non_null(strstr(md, "| run-a | 30.00% | 8.0s |"));
    assert_null(strstr(md, "mIoU")); /* classification runs alone: no segmentation column or chart */
    free(md);

    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = read_all(path);
    assert_non_null(html);
    assert_int_equal(assert_html_svgs(html), 5);
    assert_non_null(strstr(html, "run&amp;b"));
    assert_null(strstr(html, "run&b"));
    assert_non_null(strstr(html, "</table>"));
    assert_non_null(strstr(html, "</html>"));
    free(html);
}

/* A segmentation run (metrics.jsonl with test_miou fractions, null where NaN) beside a classification run:
 * the mIoU charts are drawn from the segmentation run only, the table gets a mIoU column ("-" for the
 * classification run); a report of classification runs alone has neither (test_report_runs). */
static void test_report_segmentation(void **state) {
    (void)state;
    make_run("cls", 4, 10.0, 40.0, 0);
    char seg[400], cls[400], out[400], path[600];
    snprintf(seg, sizeof seg, "%s/seg", g_root);
    snprintf(cls, sizeof cls, "%s/cls", g_root);
    snprintf(out, sizeof out, "%s/seg-out", g_root);
    assert_int_equal(mkdir(seg, 0775), 0);
    /* mIoU 20%, null (no class counted), 45%, 40%: best 45 at epoch 3, final 40 */
    write_file(seg, "metrics.jsonl",
               "{\"epoch\":1,\"train_loss\":1.5,\"train_acc\":50,\"test_loss\":1.6,\"test_acc\":55,\"lr\":0.001,"
               "\"cum_seconds\":3,\"test_miou\":0.2,\"test_miou_practice\":0.18,\"test_iou\":[0.1,0.3]}\n"
               "{\"epoch\":2,\"train_loss\":1.2,\"train_acc\":60,\"test_loss\":1.3,\"test_acc\":61,\"lr\":0.001,"
               "\"cum_seconds\":6,\"test_miou\":null,\"test_miou_practice\":null,\"test_iou\":[null,null]}\n"
               "{\"epoch\":3,\"train_loss\":1.0,\"train_acc\":70,\"test_loss\":1.1,\"test_acc\":72,\"lr\":0.001,"
               "\"cum_seconds\":9,\"test_miou\":0.45,\"test_miou_practice\":0.4,\"test_iou\":[0.4,0.5]}\n"
               "{\"epoch\":4,\"train_loss\":0.9,\"train_acc\":75,\"test_loss\":1.0,\"test_acc\":74,\"lr\":0.001,"
               "\"cum_seconds\":12,\"test_miou\":0.4,\"test_miou_practice\":0.38,\"test_iou\":[0.35,0.45]}\n");
    write_file(seg, "config.json",
               "{\"problem\":\"fcn32s-scratch\",\"model\":\"fcn32s-vgg16\",\"optimizer\":\"adam\"}");
    const char *runs[] = {cls, seg};
    vt_log_set(capture_log, NULL);
    vt_status s = vt_report_write(runs, 2, out);
    vt_log_set(NULL, NULL);
    if (s != VT_OK) fail_msg("vt_report_write: %s", vt_last_error());
    const char *svgs[] = {"miou_epoch.svg", "miou_time.svg"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", out, svgs[i]);
        assert_svg_file(path);
        char *svg = read_all(path);
        assert_non_null(svg);
        assert_non_null(strstr(svg, "mIoU"));
        assert_non_null(strstr(svg, "seg"));
        assert_null(strstr(svg, "cls")); /* no mIoU curve for the classification run */
        free(svg);
    }
    snprintf(path, sizeof path, "%s/summary.md", out);
    char *md = read_all(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "| test mIoU (best, final) |"));
    assert_non_null(strstr(md, "miou_epoch.svg"));
    /* convergence by mIoU: first epoch within 1 point of 45 is epoch 3, after 9 s */
    const char *row = strstr(md, "| seg | fcn32s-scratch |");
    if (!row) fail_msg("no row of the segmentation run:\n%s", md);
    const char *eol = strchr(row, '\n');
    char line[600];
    snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - row : (long)strlen(row)), row);
    if (!strstr(line, "| ep 3, 9.0s |") || !strstr(line, "| 45.00% (ep 3), 40.00% |"))
        fail_msg("segmentation row: %s", line);
    row = strstr(md, "| cls | mlp |");
    assert_non_null(row);
    eol = strchr(row, '\n');
    snprintf(line, sizeof line, "%.*s", (int)(eol ? eol - row : (long)strlen(row)), row);
    if (!strstr(line, "| no summary.json | - |")) fail_msg("classification row without its '-': %s", line);
    free(md);
    snprintf(path, sizeof path, "%s/report.html", out);
    char *html = read_all(path);
    assert_non_null(html);
    assert_int_equal(assert_html_svgs(html), 7);
    assert_non_null(strstr(html, "<th>test mIoU (best, final)</th>"));
    free(html);
}

/* The text of every <text> element of an SVG whose y is below the plot (the x tick labels). */
static int has_fraction_x_tick(const char *svg) {
    for (const char *p = strstr(svg, "text-anchor=\"middle\">"); p; p = strstr(p + 1, "text-anchor=\"middle\">")) {
        const char *v = p + strlen("text-anchor=\"middle\">");
        char *end;
        double x = strtod(v, &end);
        if (end != v && *end == '<' && x != floor(x)) return 1;
    }
    return 0;
}

/* Runs cut, interrupted or with skipped steps, and problems skipped by --problem all, say so and
 * why; epoch axes have whole-number ticks; the table has few columns; train/test and lr curves. */
static void test_report_status_and_charts(void **state) {
    (void)state;
    char root[400], a[500], b[500], c[500], path[600];
    snprintf(root, sizeof root, "%s/all", g_root);
    assert_int_equal(mkdir(root, 0775), 0);
    make_run("all/cut-run", 3, 5.0, 40, 1);
    make_run("all/nan-run", 3, 5.0, 40, 1);
    make_run("all/int-run", 2, 5.0, 40, 1);
    snprintf(a, sizeof a, "%s/cut-run", root);
    snprintf(b, sizeof b, "%s/nan-run", root);
    snprintf(c, sizeof c, "%s/int-run", root);
    write_file(a, "summary.json",
               "{\"problem\":\"cnn-pool\",\"epochs\":15,\"cut\":true,\"cut_reason\":\"max-minutes\","
               "\"interrupted\":false,\"skipped_steps\":0}");
    write_file(b, "summary.json",
               "{\"problem\":\"mlp\",\"epochs\":3,\"cut\":false,\"cut_reason\":null,"
               "\"interrupted\":false,\"skipped_steps\":7}");
    write_file(c, "summary.json", "{\"problem\":\"linear\",\"epochs\":10,\"cut\":false,\"interrupted\":true}");
    write_file(root, "skipped.json",
               "[{\"problem\": \"resnet18-finetune\", \"reason\": \"resnet18-finetune needs ImageNet weights: give "
               "--pretrained FILE\"}, {\"problem\": \"deep-mlp\", \"reason\": \"failed: out of <memory>\"}]");
    const char *runs[] = {a, b, c};
    vt_status s = vt_report_write(runs, 3, root);
    if (s != VT_OK) fail_msg("report: %s", vt_last_error());
    snprintf(path, sizeof path, "%s/summary.md", root);
    char *md = read_all(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "## Skipped and cut"));
    assert_non_null(strstr(md, "- **resnet18-finetune** skipped: resnet18-finetune needs ImageNet weights"));
    assert_non_null(strstr(md, "- **deep-mlp** skipped: failed: out of <memory>"));
    assert_non_null(strstr(md, "cut by --max-minutes after 3 of 15 epochs"));
    assert_non_null(strstr(md, "7 steps skipped (NaN/Inf loss)"));
    assert_non_null(strstr(md, "interrupted after 2 of 10 epochs"));
    free(md);
    snprintf(path, sizeof path, "%s/report.html", root);
    char *html = read_all(path);
    assert_non_null(html);
    assert_non_null(strstr(html, "resnet18-finetune</b> skipped"));
    assert_non_null(strstr(html, "out of &lt;memory&gt;"));
    assert_non_null(strstr(html, "cut by --max-minutes"));
    /* the runs table: at most 9 columns, inside a scrolling container */
    const char *t = strstr(html, "<div class=\"wrap\"><table>");
    assert_non_null(t);
    const char *row_end = strstr(t, "</tr>");
    int th = 0;
    for (const char *p = strstr(t, "<th>"); p && p < row_end; p = strstr(p + 1, "<th>")) th++;
    assert_true(th >= 5 && th <= 9);
    free(html);
    /* epochs on the x axis: whole numbers only (3 epochs used to give 0.5, 1.5, 2.5) */
    static const char *const epoch_charts[] = {"acc_epoch.svg", "train_test_acc.svg", "loss_epoch.svg", "lr_epoch.svg"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", root, epoch_charts[i]);
        assert_svg_file(path);
        char *svg = read_all(path);
        if (has_fraction_x_tick(svg)) fail_msg("%s: an epoch tick that is not a whole number", epoch_charts[i]);
        free(svg);
    }
    /* train (dashed) beside test (solid) */
    snprintf(path, sizeof path, "%s/train_test_acc.svg", root);
    char *svg = read_all(path);
    assert_non_null(strstr(svg, "stroke-dasharray"));
    free(svg);
    /* a single run's report does not pick up the skipped problems of its neighbours */
    const char *one[] = {a};
    assert_int_equal(vt_report_write(one, 1, a), VT_OK);
    snprintf(path, sizeof path, "%s/summary.md", a);
    md = read_all(path);
    assert_null(strstr(md, "resnet18-finetune"));
    assert_non_null(strstr(md, "cut by --max-minutes"));
    free(md);
}

static void test_report_no_usable_run(void **state) {
    (void)state;
    char bad[400], out[400];
    snprintf(bad, sizeof bad, "%s/empty-run", g_root);
    assert_int_equal(mkdir(bad, 0775), 0);
    write_file(bad, "metrics.jsonl", "not json\n{\"epoch\":1}\n");
    snprintf(out, sizeof out, "%s/out2", g_root);
    const char *runs[] = {bad};
    assert_int_not_equal(vt_report_write(runs, 1, out), VT_OK);
    assert_non_null(strstr(vt_last_error(), "metrics.jsonl"));
    assert_int_not_equal(vt_report_write(runs, 0, out), VT_OK);
}

static const char *bench_doc =
    "{\"tool\":\"vtrain bench\",\"machine\":{\"host\":\"h\",\"cpu\":\"c\",\"cores\":2,\"os\":\"Linux\"},"
    "\"date\":\"2026-01-01T00:00:00Z\",\"command\":\"vtrain bench --ops\",\"settings\":{\"warmup\":1,\"repeats\":3},"
    "\"backends\":["
    "{\"backend\":\"cpu\",\"device\":\"host CPU\",\"peak_gflops\":0,\"status\":\"ok\",\"ops\":["
    "{\"name\":\"gemm 1024^3\",\"shape\":\"M=1024 N=1024 K=1024 NN\",\"kind\":\"compute\",\"status\":\"ok\",\"gflops\":50.5,"
    "\"gbps\":0.6,\"ms_min\":42,\"ms_median\":42.5,\"ms_max\":44,\"peak_fraction\":null},"
    "{\"name\":\"add\",\"shape\":\"4194304 f32\",\"kind\":\"memory\",\"status\":\"ok\",\"gflops\":0.5,\"gbps\":6.25,"
    "\"ms_min\":8,\"ms_median\":8.05,\"ms_max\":9,\"peak_fraction\":null}],"
    "\"problems\":[{\"problem\":\"2\",\"name\":\"mlp\",\"batch\":64,\"status\":\"ok\",\"step_ms_min\":3,\"step_ms_median\":3.2,"
    "\"step_ms_max\":4,\"images_per_s\":20000,\"data_ms\":0.1,\"fwd_ms\":1,\"bwd_ms\":1.8,\"opt_ms\":0.3,\"gemm_gflop\":0.8,"
    "\"dispatches\":12,\"uploads\":0,\"downloads\":1,\"syncs\":1}]},"
    "{\"backend\":\"vulkan\",\"device\":\"llvmpipe <x&y>\",\"peak_gflops\":200,\"status\":\"ok\",\"ops\":["
    "{\"name\":\"gemm 1024^3\",\"shape\":\"M=1024 N=1024 K=1024 NN\",\"kind\":\"compute\",\"status\":\"ok\",\"gflops\":20,"
    "\"gbps\":0.2,\"ms_min\":100,\"ms_median\":107,\"ms_max\":120,\"peak_fraction\":0.1},"
    "{\"name\":\"add\",\"shape\":\"4194304 f32\",\"kind\":\"memory\",\"status\":\"unsupported\",\"gflops\":null}],"
    "\"problems\":[]},"
    "{\"backend\":\"cuda\",\"device\":\"\",\"status\":\"error\",\"error\":\"no device found\"}]}";

static void test_bench_render(void **state) {
    (void)state;
    char md_path[400], html_path[400];
    snprintf(md_path, sizeof md_path, "%s/bench.md", g_root);
    snprintf(html_path, sizeof html_path, "%s/bench.html", g_root);
    vt_status s = vt_report_bench_render(bench_doc, md_path, html_path);
    if (s != VT_OK) fail_msg("render: %s", vt_last_error());
    char *md = read_all(md_path);
    assert_non_null(md);
    /* side by side: one column per backend, headline figure and median time per cell */
    assert_non_null(strstr(md, "| op | shape | unit | cpu: host CPU | vulkan: llvmpipe <x&y> | cuda:  |"));
    assert_non_null(
        strstr(md, "| gemm 1024^3 | M=1024 N=1024 K=1024 NN | GFLOP/s | 50.5 (42.5 ms) | 20.0 (107 ms) | - |"));
    assert_non_null(strstr(md, "| add | 4194304 f32 | GB/s | 6.25 (8.05 ms) | unsupported | - |"));
    assert_non_null(strstr(md, "cuda: not run: no device found"));
    assert_non_null(strstr(md, "| mlp | 20000 (3.20 ms) |"));
    assert_non_null(strstr(md, "10.0%")); /* fraction of peak on vulkan */
    free(md);
    char *html = read_all(html_path);
    assert_non_null(html);
    assert_true(assert_html_svgs(html) >= 2);
    assert_non_null(strstr(html, "llvmpipe &lt;x&amp;y&gt;"));
    free(html);

    assert_int_not_equal(vt_report_bench_render("{\"no\":1}", md_path, NULL), VT_OK);
    assert_int_not_equal(vt_report_bench_render("[1,", md_path, NULL), VT_OK);

    /* vtrain report --bench: the runs and the benchmark view on one page */
    char bench_path[400], run[400], out[400];
    snprintf(bench_path, sizeof bench_path, "%s/bench.json", g_root);
    write_file(g_root, "bench.json", bench_doc);
    make_run("run-c", 4, 10, 40, 1);
    snprintf(run, sizeof run, "%s/run-c", g_root);
    snprintf(out, sizeof out, "%s/out3", g_root);
    const char *runs[] = {run};
    const char *benches[] = {bench_path};
    s = vt_report_write_ex(runs, 1, benches, 1, out);
    if (s != VT_OK) fail_msg("report with bench: %s", vt_last_error());
    char path[600];
    snprintf(path, sizeof path, "%s/report.html", out);
    html = read_all(path);
    assert_non_null(html);
    assert_true(assert_html_svgs(html) >= 5);
    assert_non_null(strstr(html, "Training throughput"));
    free(html);
    /* two bench files become one side-by-side view with both origins listed */
    const char *pt_doc =
        "{\"tool\":\"pytorch_ref.py\",\"machine\":{\"host\":\"h2\"},\"date\":\"d2\",\"command\":\"python3 "
        "tools/pytorch_ref.py --ops\",\"backends\":[{\"backend\":\"pytorch\",\"device\":\"cpu\","
        "\"status\":\"ok\",\"ops\":[{\"name\":\"add\",\"shape\":\"4194304 f32\",\"kind\":\"memory\","
        "\"status\":\"ok\",\"gbps\":9.5,\"ms_median\":5.3}]}]}";
    write_file(g_root, "pt.json", pt_doc);
    char pt_path[400];
    snprintf(pt_path, sizeof pt_path, "%s/pt.json", g_root);
    const char *two[] = {bench_path, pt_path};
    s = vt_report_write_ex(NULL, 0, two, 2, out);
    if (s != VT_OK) fail_msg("report with two bench files: %s", vt_last_error());
    snprintf(path, sizeof path, "%s/summary.md", out);
    md = read_all(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "2 files side by side"));
    assert_non_null(strstr(md, "Command: `python3 tools/pytorch_ref.py --ops`"));
    assert_non_null(strstr(md, "| add | 4194304 f32 | GB/s | 6.25 (8.05 ms) | unsupported | - | 9.50 (5.30 ms) |"));
    free(md);
    /* the same device in two files stays one column: its problems join its ops */
    const char *more = "{\"backends\":[{\"backend\":\"cpu\",\"device\":\"host CPU\",\"status\":\"ok\",\"ops\":[],"
                       "\"problems\":[{\"problem\":\"8\",\"name\":\"resnet18-scratch\",\"batch\":128,\"status\":\"ok\","
                       "\"images_per_s\":25,\"step_ms_median\":5120}]}]}";
    write_file(g_root, "more.json", more);
    char more_path[400];
    snprintf(more_path, sizeof more_path, "%s/more.json", g_root);
    const char *three[] = {bench_path, more_path, pt_path};
    s = vt_report_write_ex(NULL, 0, three, 3, out);
    if (s != VT_OK) fail_msg("report with three bench files: %s", vt_last_error());
    md = read_all(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "| problem | cpu: host CPU | vulkan: llvmpipe <x&y> | cuda:  | pytorch: cpu |"));
    assert_non_null(strstr(md, "| resnet18-scratch | 25.0 (5120 ms) | - | - | - |"));
    free(md);
    /* a bench file that is not one is an error naming it */
    write_file(g_root, "notbench.json", "{\"runs\":[]}");
    snprintf(bench_path, sizeof bench_path, "%s/notbench.json", g_root);
    assert_int_not_equal(vt_report_write_ex(runs, 1, benches, 1, out), VT_OK);
    assert_non_null(strstr(vt_last_error(), "notbench.json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convergence_index),        cmocka_unit_test(test_report_runs),
        cmocka_unit_test(test_report_status_and_charts), cmocka_unit_test(test_report_no_usable_run),
        cmocka_unit_test(test_report_segmentation),      cmocka_unit_test(test_bench_render),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
