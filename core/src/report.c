/* `vtrain report`: reads run folders (metrics.jsonl, summary.json, config.json) and writes
 * summary.md, three SVG charts and one self-contained report.html. */
#define _POSIX_C_SOURCE 200809L
#include "vt/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_util.h"

typedef struct vt_run {
    char dir[512], name[128];
    char problem[64], model[64], optimizer[32], backend[32], device[128];
    double params;
    int epochs;
    double best_acc, final_acc, conv_seconds, sec_per_epoch, images_per_s, target_acc, time_to_target;
    int best_epoch, conv_epoch;
    int n; /* epochs read from metrics.jsonl */
    double *epoch, *train_loss, *test_acc, *cum_seconds;
} vt_run;

const char *const vt_rep_css =
    "body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}"
    "h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}h3{font-size:15px}.meta{color:#666;font-size:13px}"
    "table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}"
    "th{background:#f4f6f8;text-align:center;white-space:normal;max-width:170px}td.l{text-align:left}tr:nth-child(even) td{background:#fafafa}"
    ".wrap{overflow-x:auto}svg{display:block;margin:8px 0 20px;max-width:100%;height:auto}"
    "code{background:#f4f4f4;padding:1px 4px}";

int vt_report_convergence_index(const double *acc, int n, double window) {
    if (n <= 0) return -1;
    double best = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(acc[i]) && acc[i] > best) best = acc[i];
    if (!isfinite(best)) return -1;
    for (int i = 0; i < n; i++)
        if (isfinite(acc[i]) && acc[i] >= best - window) return i;
    return -1;
}

static void vt_run_free(vt_run *r) {
    free(r->epoch);
    free(r->train_loss);
    free(r->test_acc);
    free(r->cum_seconds);
    memset(r, 0, sizeof *r);
}

static double vt_jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void vt_jstr(const cJSON *o, const char *key, char *dst, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v) && v->valuestring) snprintf(dst, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(dst, n, "%g", v->valuedouble);
}

static int vt_push(double **a, int n, int *cap, double v) {
    if (n == *cap) {
        int nc = *cap ? *cap * 2 : 32;
        double *p = realloc(*a, (size_t)nc * sizeof *p);
        if (!p) return 0;
        *a = p;
        *cap = nc;
    }
    (*a)[n] = v;
    return 1;
}

/* metrics.jsonl: one object per epoch. A corrupt line (e.g. the last one of a run killed while
 * writing) is skipped with a warning; a run without any valid line is unusable. */
static vt_status vt_run_read_metrics(vt_run *r) {
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", r->dir);
    char *text = NULL;
    VT_TRY(vt_rep_read_file(path, &text, NULL));
    int cap[4] = {0, 0, 0, 0}, lineno = 0;
    vt_status st = VT_OK;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) continue;
        cJSON *o = cJSON_Parse(p);
        double acc = o ? vt_jnum(o, "test_acc") : NAN;
        if (!cJSON_IsObject(o) || !isfinite(acc)) {
            fprintf(stderr, "vtrain report: warning: %s:%d: %s; line skipped\n", path, lineno,
                    o ? "no numeric test_acc" : "not valid JSON");
            cJSON_Delete(o);
            continue;
        }
        double ep = vt_jnum(o, "epoch");
        if (!isfinite(ep)) ep = r->n + 1;
        int ok = vt_push(&r->epoch, r->n, &cap[0], ep) && vt_push(&r->train_loss, r->n, &cap[1], vt_jnum(o, "train_loss")) &&
                 vt_push(&r->test_acc, r->n, &cap[2], acc) && vt_push(&r->cum_seconds, r->n, &cap[3], vt_jnum(o, "cum_seconds"));
        if (!ok) {
            cJSON_Delete(o);
            st = vt_error(VT_ERR_OOM, "%s: out of memory", path);
            break;
        }
        r->n++;
        cJSON_Delete(o);
    }
    free(text);
    if (st == VT_OK && r->n == 0) st = vt_error(VT_ERR_FORMAT, "%s: no epoch with a numeric test_acc", path);
    return st;
}

static cJSON *vt_read_json_object(const char *path, int *missing) {
    char *text = NULL;
    *missing = 0;
    vt_status s = vt_rep_read_file(path, &text, NULL);
    if (s != VT_OK) {
        *missing = (s == VT_ERR_NOT_FOUND);
        if (!*missing) fprintf(stderr, "vtrain report: warning: %s\n", vt_last_error());
        return NULL;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(o)) {
        fprintf(stderr, "vtrain report: warning: %s is not a valid JSON object; using what metrics.jsonl gives\n", path);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void vt_run_fill(vt_run *r, const cJSON *o) {
    vt_jstr(o, "problem", r->problem, sizeof r->problem);
    vt_jstr(o, "model", r->model, sizeof r->model);
    vt_jstr(o, "optimizer", r->optimizer, sizeof r->optimizer);
    vt_jstr(o, "backend", r->backend, sizeof r->backend);
    vt_jstr(o, "device", r->device, sizeof r->device);
    double v;
    if (isfinite(v = vt_jnum(o, "params"))) r->params = v;
    if (isfinite(v = vt_jnum(o, "epochs"))) r->epochs = (int)v;
}

static vt_status vt_run_load(const char *dir, vt_run *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    size_t len = strlen(r->dir);
    while (len > 1 && r->dir[len - 1] == '/') r->dir[--len] = 0;
    const char *base = strrchr(r->dir, '/');
    snprintf(r->name, sizeof r->name, "%s", base ? base + 1 : r->dir);
    r->params = NAN;
    r->sec_per_epoch = r->images_per_s = r->target_acc = r->time_to_target = NAN;
    vt_status s = vt_run_read_metrics(r);
    if (s != VT_OK) {
        vt_run_free(r);
        return s;
    }
    /* Derived from the curve first; summary.json, when present and sound, has the last word. */
    int bi = 0;
    for (int i = 1; i < r->n; i++)
        if (r->test_acc[i] > r->test_acc[bi]) bi = i;
    r->best_acc = r->test_acc[bi];
    r->best_epoch = (int)r->epoch[bi];
    r->final_acc = r->test_acc[r->n - 1];
    int ci = vt_report_convergence_index(r->test_acc, r->n, 1.0);
    r->conv_epoch = (int)r->epoch[ci];
    r->conv_seconds = r->cum_seconds[ci];
    r->epochs = (int)r->epoch[r->n - 1];
    double last = r->cum_seconds[r->n - 1];
    if (isfinite(last) && r->n > 0) r->sec_per_epoch = last / r->n;

    char path[600];
    int missing;
    snprintf(path, sizeof path, "%s/config.json", r->dir);
    cJSON *cfg = vt_read_json_object(path, &missing);
    if (cfg) vt_run_fill(r, cfg);
    cJSON_Delete(cfg);
    snprintf(path, sizeof path, "%s/summary.json", r->dir);
    cJSON *sum = vt_read_json_object(path, &missing);
    if (missing) fprintf(stderr, "vtrain report: note: %s is missing; figures derived from metrics.jsonl\n", path);
    if (sum) {
        vt_run_fill(r, sum);
        double v;
        if (isfinite(v = vt_jnum(sum, "best_test_acc"))) r->best_acc = v;
        if (isfinite(v = vt_jnum(sum, "best_epoch"))) r->best_epoch = (int)v;
        if (isfinite(v = vt_jnum(sum, "final_test_acc"))) r->final_acc = v;
        if (isfinite(v = vt_jnum(sum, "convergence_epoch"))) r->conv_epoch = (int)v;
        if (isfinite(v = vt_jnum(sum, "convergence_seconds"))) r->conv_seconds = v;
        if (isfinite(v = vt_jnum(sum, "seconds_per_epoch"))) r->sec_per_epoch = v;
        if (isfinite(v = vt_jnum(sum, "images_per_s"))) r->images_per_s = v;
        r->target_acc = vt_jnum(sum, "target_acc");
        r->time_to_target = vt_jnum(sum, "time_to_target_seconds");
    }
    cJSON_Delete(sum);
    return VT_OK;
}

static void vt_fmt(char *buf, size_t n, const char *fmt, double v) {
    if (isfinite(v)) snprintf(buf, n, fmt, v);
    else snprintf(buf, n, "-");
}

static void vt_fmt_params(char *buf, size_t n, double p) {
    if (!isfinite(p)) snprintf(buf, n, "-");
    else if (p >= 1e6) snprintf(buf, n, "%.2fM", p / 1e6);
    else if (p >= 1e3) snprintf(buf, n, "%.1fk", p / 1e3);
    else snprintf(buf, n, "%.0f", p);
}

static void vt_fmt_secs(char *buf, size_t n, double s) {
    if (!isfinite(s)) snprintf(buf, n, "-");
    else if (s >= 3600) snprintf(buf, n, "%.0fh%02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
    else if (s >= 60) snprintf(buf, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, n, "%.1fs", s);
}

enum { VT_NCOL = 13 };
static const char *const vt_cols[VT_NCOL] = {"run", "problem", "model", "parameters", "optimizer", "epochs",
                                             "best test acc", "final test acc", "convergence", "s/epoch",
                                             "images/s", "backend", "device"};

/* The cells of one table row, shared by the Markdown and HTML tables. */
static void vt_run_cells(const vt_run *r, char cells[VT_NCOL][160]) {
    char a[48], b[48];
    snprintf(cells[0], 160, "%s", r->name);
    snprintf(cells[1], 160, "%s", r->problem[0] ? r->problem : "-");
    snprintf(cells[2], 160, "%s", r->model[0] ? r->model : "-");
    vt_fmt_params(cells[3], 160, r->params);
    snprintf(cells[4], 160, "%s", r->optimizer[0] ? r->optimizer : "-");
    snprintf(cells[5], 160, "%d", r->epochs);
    vt_fmt(a, sizeof a, "%.2f%%", r->best_acc);
    snprintf(cells[6], 160, "%s (ep %d)", a, r->best_epoch);
    vt_fmt(cells[7], 160, "%.2f%%", r->final_acc);
    vt_fmt_secs(b, sizeof b, r->conv_seconds);
    snprintf(cells[8], 160, "ep %d, %s", r->conv_epoch, b);
    vt_fmt(cells[9], 160, "%.2f", r->sec_per_epoch);
    vt_fmt(cells[10], 160, "%.0f", r->images_per_s);
    snprintf(cells[11], 160, "%s", r->backend[0] ? r->backend : "-");
    snprintf(cells[12], 160, "%s", r->device[0] ? r->device : "-");
}

static void vt_md_runs(vt_sb *b, const vt_run *runs, int n) {
    vt_sb_puts(b, "|");
    for (int c = 0; c < VT_NCOL; c++) vt_sb_printf(b, " %s |", vt_cols[c]);
    vt_sb_puts(b, "\n|");
    for (int c = 0; c < VT_NCOL; c++) vt_sb_puts(b, c == 0 || c == 1 || c == 2 || c == 4 || c >= 11 ? "---|" : "---:|");
    vt_sb_puts(b, "\n");
    for (int i = 0; i < n; i++) {
        char cells[VT_NCOL][160];
        vt_run_cells(&runs[i], cells);
        vt_sb_puts(b, "|");
        for (int c = 0; c < VT_NCOL; c++) {
            vt_sb_puts(b, " ");
            vt_sb_md(b, cells[c]);
            vt_sb_puts(b, " |");
        }
        vt_sb_puts(b, "\n");
    }
    int any_target = 0;
    for (int i = 0; i < n; i++) any_target |= (isfinite(runs[i].target_acc) && runs[i].target_acc > 0);
    if (any_target) {
        vt_sb_puts(b, "\n| run | target acc | time to target |\n|---|---:|---:|\n");
        for (int i = 0; i < n; i++) {
            if (!(isfinite(runs[i].target_acc) && runs[i].target_acc > 0)) continue;
            char t[48];
            if (isfinite(runs[i].time_to_target)) vt_fmt_secs(t, sizeof t, runs[i].time_to_target);
            else snprintf(t, sizeof t, "not reached");
            vt_sb_puts(b, "| ");
            vt_sb_md(b, runs[i].name);
            vt_sb_printf(b, " | %.2f%% | %s |\n", runs[i].target_acc, t);
        }
    }
}

static void vt_html_runs(vt_sb *b, const vt_run *runs, int n) {
    vt_sb_puts(b, "<div class=\"wrap\"><table>\n<tr>");
    for (int c = 0; c < VT_NCOL; c++) vt_sb_printf(b, "<th>%s</th>", vt_cols[c]);
    vt_sb_puts(b, "</tr>\n");
    for (int i = 0; i < n; i++) {
        char cells[VT_NCOL][160];
        vt_run_cells(&runs[i], cells);
        vt_sb_puts(b, "<tr>");
        for (int c = 0; c < VT_NCOL; c++) {
            int left = c == 0 || c == 1 || c == 2 || c == 4 || c >= 11;
            vt_sb_printf(b, "<td%s>", left ? " class=\"l\"" : "");
            if (c == 0) vt_sb_printf(b, "<span style=\"color:%s\">&#9632;</span> ", vt_rep_colour(i));
            vt_sb_escape(b, cells[c]);
            vt_sb_puts(b, "</td>");
        }
        vt_sb_puts(b, "</tr>\n");
    }
    vt_sb_puts(b, "</table></div>\n");
}

static void vt_date_utc(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm);
    else snprintf(buf, n, "(unknown date)");
}

typedef enum { VT_CH_ACC_EPOCH, VT_CH_ACC_TIME, VT_CH_LOSS_EPOCH, VT_CH_COUNT } vt_chart_kind;
static const char *const vt_chart_file[VT_CH_COUNT] = {"acc_epoch.svg", "acc_time.svg", "loss_epoch.svg"};

static void vt_chart(vt_sb *b, vt_chart_kind k, const vt_run *runs, int n) {
    vt_series *s = calloc((size_t)(n ? n : 1), sizeof *s);
    if (!s) {
        b->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        s[i].n = runs[i].n;
        s[i].label = runs[i].name;
        s[i].x = k == VT_CH_ACC_TIME ? runs[i].cum_seconds : runs[i].epoch;
        s[i].y = k == VT_CH_LOSS_EPOCH ? runs[i].train_loss : runs[i].test_acc;
    }
    if (k == VT_CH_ACC_EPOCH) vt_svg_line_chart(b, "Test accuracy by epoch", "epoch", "test accuracy (%)", s, n, 900, 420);
    if (k == VT_CH_ACC_TIME)
        vt_svg_line_chart(b, "Test accuracy by training time", "seconds", "test accuracy (%)", s, n, 900, 420);
    if (k == VT_CH_LOSS_EPOCH) vt_svg_line_chart(b, "Training loss by epoch", "epoch", "training loss", s, n, 900, 420);
    free(s);
}

static vt_status vt_join(char *dst, size_t n, const char *dir, const char *file) {
    if (snprintf(dst, n, "%s/%s", dir, file) >= (int)n)
        return vt_error(VT_ERR_INVALID_ARG, "report: path too long: %s/%s", dir, file);
    return VT_OK;
}

static const char *vt_jstring(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* The same device measured in two files (say ops in one run, ResNet steps in another) stays one
 * column: its ops and problems are appended to the entry already there, first file first. */
static void vt_merge_backend(cJSON *all, const cJSON *be) {
    cJSON *have;
    cJSON_ArrayForEach(have, all) {
        if (strcmp(vt_jstring(have, "backend"), vt_jstring(be, "backend")) != 0 ||
            strcmp(vt_jstring(have, "device"), vt_jstring(be, "device")) != 0 ||
            strcmp(vt_jstring(have, "status"), vt_jstring(be, "status")) != 0)
            continue;
        static const char *const lists[] = {"ops", "problems"};
        for (int l = 0; l < 2; l++) {
            cJSON *dst = cJSON_GetObjectItemCaseSensitive(have, lists[l]);
            if (!cJSON_IsArray(dst)) dst = cJSON_AddArrayToObject(have, lists[l]);
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(be, lists[l])) {
                int dup = 0;
                const cJSON *d;
                cJSON_ArrayForEach(d, dst) { dup |= strcmp(vt_jstring(d, "name"), vt_jstring(e, "name")) == 0; }
                if (!dup && dst) cJSON_AddItemToArray(dst, cJSON_Duplicate(e, 1));
            }
        }
        return;
    }
    cJSON_AddItemToArray(all, cJSON_Duplicate(be, 1));
}

vt_status vt_report_write_ex(const char *const *run_dirs, int n, const char *const *bench_files, int n_bench,
                             const char *out_dir) {
    if (!out_dir || !*out_dir) return vt_error(VT_ERR_INVALID_ARG, "report: no output folder given");
    if (n < 0 || n_bench < 0 || (n == 0 && n_bench == 0))
        return vt_error(VT_ERR_INVALID_ARG, "report: nothing to report (no run folder and no bench file)");
    vt_run *runs = calloc((size_t)(n ? n : 1), sizeof *runs);
    cJSON **benches = calloc((size_t)(n_bench ? n_bench : 1), sizeof *benches);
    vt_sb md = {0}, html = {0}, svg = {0};
    vt_status st = VT_OK;
    int nr = 0;
    if (!runs || !benches) {
        st = vt_error(VT_ERR_OOM, "report: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (vt_run_load(run_dirs[i], &runs[nr]) == VT_OK) nr++;
        else fprintf(stderr, "vtrain report: warning: run %s skipped: %s\n", run_dirs[i], vt_last_error());
    }
    if (n > 0 && nr == 0 && n_bench == 0) {
        st = vt_error(VT_ERR_NOT_FOUND, "report: none of the %d run folder(s) has a readable metrics.jsonl", n);
        goto done;
    }
    for (int i = 0; i < n_bench; i++) {
        char *text = NULL;
        if ((st = vt_rep_read_file(bench_files[i], &text, NULL)) != VT_OK) goto done;
        benches[i] = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsObject(benches[i]) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(benches[i], "backends"))) {
            st = vt_error(VT_ERR_FORMAT, "report: %s is not a vtrain bench JSON document (no \"backends\" array)",
                          bench_files[i]);
            goto done;
        }
    }
    if ((st = vt_rep_mkdirs(out_dir)) != VT_OK) goto done;

    char date[40], path[1100];
    vt_date_utc(date, sizeof date);
    vt_sb_printf(&md, "# vtrain report\n\nGenerated %s.", date);
    if (nr) vt_sb_printf(&md, " %d run(s). Convergence = first epoch within 1 point of the run's best test accuracy.", nr);
    vt_sb_puts(&md, "\n\n");
    vt_sb_printf(&html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vtrain report</title>"
                        "<style>%s</style></head><body>\n<h1>vtrain report</h1>\n<p class=\"meta\">Generated %s.</p>\n",
                 vt_rep_css, date);
    if (nr) {
        vt_sb_puts(&md, "## Runs\n\n");
        vt_md_runs(&md, runs, nr);
        vt_sb_puts(&md, "\n## Charts\n\n");
        vt_sb_puts(&html, "<h2>Runs</h2>\n<p class=\"meta\">Convergence: the first epoch whose test accuracy comes within "
                          "1 point of the run's best, and the training time until then.</p>\n");
        vt_html_runs(&html, runs, nr);
        vt_sb_puts(&html, "<h2>Charts</h2>\n");
        for (int k = 0; k < VT_CH_COUNT; k++) {
            svg.len = 0;
            vt_chart(&svg, (vt_chart_kind)k, runs, nr);
            if ((st = vt_join(path, sizeof path, out_dir, vt_chart_file[k])) != VT_OK) goto done;
            if ((st = vt_rep_write_file(path, &svg)) != VT_OK) goto done;
            vt_sb_printf(&md, "![%s](%s)\n\n", vt_chart_file[k], vt_chart_file[k]);
            if (svg.p) vt_sb_puts(&html, svg.p);
        }
    }
    if (n_bench == 1) {
        vt_rep_bench_md(&md, benches[0], bench_files[0]);
        vt_rep_bench_html(&html, benches[0], bench_files[0]);
    } else if (n_bench > 1) {
        /* Several files (vtrain on each machine, pytorch_ref.py) become one side-by-side view. */
        cJSON *merged = cJSON_CreateObject();
        cJSON *sources = cJSON_AddArrayToObject(merged, "sources");
        cJSON *all = cJSON_AddArrayToObject(merged, "backends");
        static const char *const keep[] = {"machine", "date", "command", "settings"};
        for (int i = 0; i < n_bench && merged && sources && all; i++) {
            cJSON *src = cJSON_CreateObject();
            cJSON_AddStringToObject(src, "file", bench_files[i]);
            for (int k = 0; k < 4; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(benches[i], keep[k]);
                if (v) cJSON_AddItemToObject(src, keep[k], cJSON_Duplicate(v, 1));
            }
            cJSON_AddItemToArray(sources, src);
            const cJSON *be;
            cJSON_ArrayForEach(be, cJSON_GetObjectItemCaseSensitive(benches[i], "backends")) {
                vt_merge_backend(all, be);
            }
        }
        if (!merged || !sources || !all) {
            cJSON_Delete(merged);
            st = vt_error(VT_ERR_OOM, "report: out of memory merging bench files");
            goto done;
        }
        char label[64];
        snprintf(label, sizeof label, "%d files side by side", n_bench);
        vt_rep_bench_md(&md, merged, label);
        vt_rep_bench_html(&html, merged, label);
        cJSON_Delete(merged);
    }
    vt_sb_puts(&html, "</body></html>\n");
    if ((st = vt_join(path, sizeof path, out_dir, "summary.md")) != VT_OK) goto done;
    if ((st = vt_rep_write_file(path, &md)) != VT_OK) goto done;
    if ((st = vt_join(path, sizeof path, out_dir, "report.html")) != VT_OK) goto done;
    st = vt_rep_write_file(path, &html);
done:
    for (int i = 0; i < nr; i++) vt_run_free(&runs[i]);
    for (int i = 0; benches && i < n_bench; i++) cJSON_Delete(benches[i]);
    free(runs);
    free(benches);
    vt_sb_free(&md);
    vt_sb_free(&html);
    vt_sb_free(&svg);
    return st;
}

vt_status vt_report_write(const char *const *run_dirs, int n, const char *out_dir) {
    return vt_report_write_ex(run_dirs, n, NULL, 0, out_dir);
}
