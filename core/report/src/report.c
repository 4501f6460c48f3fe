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
    double *epoch, *train_loss, *test_acc, *cum_seconds, *train_acc, *test_loss, *lr;
    /* how the run ended (summary.json) */
    int has_summary, cut, interrupted;
    char cut_reason[32];
    double skipped_steps;
} vt_run;

/* A problem of `--problem all` that produced no run (ROOT/skipped.json, written by vtrain train). */
typedef struct vt_skipped {
    char problem[64], reason[600];
} vt_skipped;

const char *const vt_rep_css =
    "body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}"
    "h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}h3{font-size:15px}.meta{color:#666;font-size:13px}"
    "table{border-collapse:collapse;font-size:12.5px;margin:8px 0 16px}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}"
    "th{background:#f4f6f8;text-align:center;max-width:170px}td.l{text-align:left;overflow-wrap:anywhere;max-width:220px}"
    "tr:nth-child(even) td{background:#fafafa}.note{color:#8a4b00}"
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
    free(r->train_acc);
    free(r->test_loss);
    free(r->lr);
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
    int cap[7] = {0, 0, 0, 0, 0, 0, 0}, lineno = 0;
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
                 vt_push(&r->test_acc, r->n, &cap[2], acc) && vt_push(&r->cum_seconds, r->n, &cap[3], vt_jnum(o, "cum_seconds")) &&
                 vt_push(&r->train_acc, r->n, &cap[4], vt_jnum(o, "train_acc")) &&
                 vt_push(&r->test_loss, r->n, &cap[5], vt_jnum(o, "test_loss")) && vt_push(&r->lr, r->n, &cap[6], vt_jnum(o, "lr"));
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
        r->has_summary = 1;
        r->cut = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "cut"));
        r->interrupted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sum, "interrupted"));
        vt_jstr(sum, "cut_reason", r->cut_reason, sizeof r->cut_reason);
        r->skipped_steps = vt_jnum(sum, "skipped_steps");
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

/* Few columns, so that the table fits a page; where each run ran is a table of its own. */
enum { VT_NCOL = 9 };
static const char *const vt_cols[VT_NCOL] = {"run", "problem", "model (parameters)", "training", "best test acc",
                                             "final test acc", "convergence", "speed", "status"};
static const int vt_col_left[VT_NCOL] = {1, 1, 1, 1, 0, 0, 0, 0, 1};

/* How the run ended, in words: complete, cut (and by what), interrupted, steps skipped. */
static void vt_run_status(const vt_run *r, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    if (!r->has_summary) {
        snprintf(buf, n, "no summary.json");
        return;
    }
    if (r->cut)
        k += (size_t)snprintf(buf + k, n - k, "cut by --%s after %d of %d epochs", r->cut_reason[0] ? r->cut_reason : "?",
                              r->n, r->epochs);
    else if (r->interrupted)
        k += (size_t)snprintf(buf + k, n - k, "interrupted after %d of %d epochs", r->n, r->epochs);
    else
        k += (size_t)snprintf(buf + k, n - k, "complete");
    if (k < n && isfinite(r->skipped_steps) && r->skipped_steps > 0)
        snprintf(buf + k, n - k, "; %.0f steps skipped (NaN/Inf loss)", r->skipped_steps);
}

/* The cells of one table row, shared by the Markdown and HTML tables. */
static void vt_run_cells(const vt_run *r, char cells[VT_NCOL][160]) {
    char a[48], b[48], c[48];
    snprintf(cells[0], 160, "%s", r->name);
    snprintf(cells[1], 160, "%s", r->problem[0] ? r->problem : "-");
    vt_fmt_params(a, sizeof a, r->params);
    snprintf(cells[2], 160, "%s (%s)", r->model[0] ? r->model : "-", a);
    snprintf(cells[3], 160, "%s, %d epochs", r->optimizer[0] ? r->optimizer : "-", r->epochs);
    vt_fmt(a, sizeof a, "%.2f%%", r->best_acc);
    snprintf(cells[4], 160, "%s (ep %d)", a, r->best_epoch);
    vt_fmt(cells[5], 160, "%.2f%%", r->final_acc);
    vt_fmt_secs(b, sizeof b, r->conv_seconds);
    snprintf(cells[6], 160, "ep %d, %s", r->conv_epoch, b);
    vt_fmt(a, sizeof a, "%.2f s/epoch", r->sec_per_epoch);
    vt_fmt(c, sizeof c, "%.0f img/s", r->images_per_s);
    snprintf(cells[7], 160, "%s, %s", a, c);
    vt_run_status(r, cells[8], 160);
}

static void vt_md_runs(vt_sb *b, const vt_run *runs, int n) {
    vt_sb_puts(b, "|");
    for (int c = 0; c < VT_NCOL; c++) vt_sb_printf(b, " %s |", vt_cols[c]);
    vt_sb_puts(b, "\n|");
    for (int c = 0; c < VT_NCOL; c++) vt_sb_puts(b, vt_col_left[c] ? "---|" : "---:|");
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
            vt_sb_printf(b, "<td%s>", vt_col_left[c] ? " class=\"l\"" : "");
            if (c == 0) vt_sb_printf(b, "<span style=\"color:%s\">&#9632;</span> ", vt_rep_colour(i));
            vt_sb_escape(b, cells[c]);
            vt_sb_puts(b, "</td>");
        }
        vt_sb_puts(b, "</tr>\n");
    }
    vt_sb_puts(b, "</table></div>\n");
    vt_sb_puts(b, "<h3>Where they ran</h3>\n<div class=\"wrap\"><table>\n<tr><th>run</th><th>backend</th><th>device</th></tr>\n");
    for (int i = 0; i < n; i++) {
        vt_sb_puts(b, "<tr><td class=\"l\">");
        vt_sb_escape(b, runs[i].name);
        vt_sb_puts(b, "</td><td class=\"l\">");
        vt_sb_escape(b, runs[i].backend[0] ? runs[i].backend : "-");
        vt_sb_puts(b, "</td><td class=\"l\">");
        vt_sb_escape(b, runs[i].device[0] ? runs[i].device : "-");
        vt_sb_puts(b, "</td></tr>\n");
    }
    vt_sb_puts(b, "</table></div>\n");
}

static void vt_md_where(vt_sb *b, const vt_run *runs, int n) {
    vt_sb_puts(b, "\n| run | backend | device |\n|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        vt_sb_puts(b, "| ");
        vt_sb_md(b, runs[i].name);
        vt_sb_puts(b, " | ");
        vt_sb_md(b, runs[i].backend[0] ? runs[i].backend : "-");
        vt_sb_puts(b, " | ");
        vt_sb_md(b, runs[i].device[0] ? runs[i].device : "-");
        vt_sb_puts(b, " |\n");
    }
}

/* Reads DIR/skipped.json into sk (up to max entries, no problem twice); a missing file is no news. */
static int vt_read_skipped(const char *dir, vt_skipped *sk, int have, int max) {
    char path[700], *text = NULL;
    snprintf(path, sizeof path, "%s/skipped.json", dir);
    if (vt_rep_read_file(path, &text, NULL) != VT_OK) {
        vt_clear_error();
        return have;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(j)) {
        fprintf(stderr, "vtrain report: warning: %s is not a JSON list; ignored\n", path);
        cJSON_Delete(j);
        return have;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (have >= max) break;
        char prob[64] = "", why[600] = "";
        vt_jstr(e, "problem", prob, sizeof prob);
        vt_jstr(e, "reason", why, sizeof why);
        if (!prob[0]) continue;
        int dup = 0;
        for (int i = 0; i < have; i++) dup |= !strcmp(sk[i].problem, prob);
        if (dup) continue;
        snprintf(sk[have].problem, sizeof sk[have].problem, "%s", prob);
        snprintf(sk[have].reason, sizeof sk[have].reason, "%s", why[0] ? why : "(no reason recorded)");
        have++;
    }
    cJSON_Delete(j);
    return have;
}

/* "Skipped and cut": the problems without a run and the runs that did not finish as planned. */
static void vt_notes(vt_sb *md, vt_sb *html, const vt_run *runs, int n, const vt_skipped *sk, int nsk) {
    int any = nsk;
    for (int i = 0; i < n; i++) any |= runs[i].cut || runs[i].interrupted || (isfinite(runs[i].skipped_steps) && runs[i].skipped_steps > 0);
    if (!any) return;
    vt_sb_puts(md, "\n## Skipped and cut\n\n");
    vt_sb_puts(html, "<h2>Skipped and cut</h2>\n<ul class=\"note\">\n");
    for (int i = 0; i < nsk; i++) {
        vt_sb_puts(md, "- **");
        vt_sb_md(md, sk[i].problem);
        vt_sb_puts(md, "** skipped: ");
        vt_sb_md(md, sk[i].reason);
        vt_sb_puts(md, "\n");
        vt_sb_puts(html, "<li><b>");
        vt_sb_escape(html, sk[i].problem);
        vt_sb_puts(html, "</b> skipped: ");
        vt_sb_escape(html, sk[i].reason);
        vt_sb_puts(html, "</li>\n");
    }
    for (int i = 0; i < n; i++) {
        const vt_run *r = &runs[i];
        char st[160];
        if (!(r->cut || r->interrupted || (isfinite(r->skipped_steps) && r->skipped_steps > 0))) continue;
        vt_run_status(r, st, sizeof st);
        const char *why = r->cut && !strcmp(r->cut_reason, "max-minutes") ? " (the time cap); resume it to finish the cut epoch"
                          : r->cut && !strcmp(r->cut_reason, "steps")     ? " (the step cap)"
                          : r->interrupted                               ? " (a signal); resume it from last.vtc"
                                                                         : "";
        vt_sb_puts(md, "- **");
        vt_sb_md(md, r->name);
        vt_sb_printf(md, "**: %s%s\n", st, why);
        vt_sb_puts(html, "<li><b>");
        vt_sb_escape(html, r->name);
        vt_sb_puts(html, "</b>: ");
        vt_sb_escape(html, st);
        vt_sb_escape(html, why);
        vt_sb_puts(html, "</li>\n");
    }
    vt_sb_puts(html, "</ul>\n");
}

static void vt_date_utc(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm);
    else snprintf(buf, n, "(unknown date)");
}

typedef enum { VT_CH_ACC_EPOCH, VT_CH_TRAIN_TEST_ACC, VT_CH_ACC_TIME, VT_CH_LOSS_EPOCH, VT_CH_LR_EPOCH, VT_CH_COUNT } vt_chart_kind;
static const char *const vt_chart_file[VT_CH_COUNT] = {"acc_epoch.svg", "train_test_acc.svg", "acc_time.svg",
                                                        "loss_epoch.svg", "lr_epoch.svg"};

static void vt_chart(vt_sb *b, vt_chart_kind k, const vt_run *runs, int n) {
    /* two lines per run where train (dashed) and test (solid) share a chart */
    vt_series *s = calloc((size_t)(n ? 2 * n : 1), sizeof *s);
    if (!s) {
        b->oom = 1;
        return;
    }
    int ns = 0;
    for (int i = 0; i < n; i++) {
        vt_series base = {.n = runs[i].n, .label = runs[i].name, .colour = i, .x = runs[i].epoch};
        switch (k) {
        case VT_CH_ACC_EPOCH: base.y = runs[i].test_acc; break;
        case VT_CH_ACC_TIME: base.x = runs[i].cum_seconds, base.y = runs[i].test_acc; break;
        case VT_CH_LR_EPOCH: base.y = runs[i].lr; break;
        case VT_CH_TRAIN_TEST_ACC: base.y = runs[i].test_acc; break;
        case VT_CH_LOSS_EPOCH: base.y = runs[i].test_loss; break;
        default: break;
        }
        s[ns++] = base;
        if (k == VT_CH_TRAIN_TEST_ACC || k == VT_CH_LOSS_EPOCH) {
            vt_series tr = base;
            tr.label = NULL;
            tr.dashed = 1;
            tr.y = k == VT_CH_TRAIN_TEST_ACC ? runs[i].train_acc : runs[i].train_loss;
            s[ns++] = tr;
        }
    }
    const vt_chart_opts epochs = {.x_integer = 1}, lr = {.x_integer = 1, .log_y = 1};
    if (k == VT_CH_ACC_EPOCH)
        vt_svg_line_chart(b, "Test accuracy by epoch", "epoch", "test accuracy (%)", s, ns, 900, 420, &epochs);
    if (k == VT_CH_TRAIN_TEST_ACC)
        vt_svg_line_chart(b, "Accuracy by epoch: train (dashed) and test (solid)", "epoch", "accuracy (%)", s, ns, 900, 420,
                          &epochs);
    if (k == VT_CH_ACC_TIME)
        vt_svg_line_chart(b, "Test accuracy by training time", "seconds", "test accuracy (%)", s, ns, 900, 420, NULL);
    if (k == VT_CH_LOSS_EPOCH)
        vt_svg_line_chart(b, "Loss by epoch: train (dashed) and test (solid)", "epoch", "loss", s, ns, 900, 420, &epochs);
    if (k == VT_CH_LR_EPOCH)
        vt_svg_line_chart(b, "Learning rate by epoch (log scale)", "epoch", "learning rate", s, ns, 900, 420, &lr);
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
    int nr = 0, nsk = 0;
    vt_skipped *sk = calloc(32, sizeof *sk);
    if (!runs || !benches || !sk) {
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
    /* problems of --problem all without a run: ROOT/skipped.json beside the run folders */
    nsk = vt_read_skipped(out_dir, sk, nsk, 32);
    for (int i = 0; i < nr && nr > 1; i++) { /* a comparison: also where its runs live (a single run is just itself) */
        char parent[512];
        snprintf(parent, sizeof parent, "%s", runs[i].dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) *slash = 0;
        else snprintf(parent, sizeof parent, ".");
        nsk = vt_read_skipped(parent, sk, nsk, 32);
    }

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
        vt_md_where(&md, runs, nr);
        vt_sb_puts(&html, "<h2>Runs</h2>\n<p class=\"meta\">Convergence: the first epoch whose test accuracy comes within "
                          "1 point of the run's best, and the training time until then.</p>\n");
        vt_html_runs(&html, runs, nr);
    }
    vt_notes(&md, &html, runs, nr, sk, nsk);
    if (nr) {
        vt_sb_puts(&md, "\n## Charts\n\n");
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
    free(sk);
    vt_sb_free(&md);
    vt_sb_free(&html);
    vt_sb_free(&svg);
    return st;
}

vt_status vt_report_write(const char *const *run_dirs, int n, const char *out_dir) {
    return vt_report_write_ex(run_dirs, n, NULL, 0, out_dir);
}
