/* Markdown and HTML views of a `vtrain bench` JSON document: every backend side by side, then
 * each backend's detail (op timings, model step split), with SVG throughput bars in the HTML. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_util.h"
#include "vt/report.h"

static double vt_bn(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *vt_bs(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

static int vt_ok(const cJSON *o) { return strcmp(vt_bs(o, "status"), "ok") == 0; }

static void vt_num(char *buf, size_t n, double v) {
    if (!isfinite(v)) snprintf(buf, n, "-");
    else if (fabs(v) >= 100) snprintf(buf, n, "%.0f", v);
    else if (fabs(v) >= 10) snprintf(buf, n, "%.1f", v);
    else if (fabs(v) >= 1) snprintf(buf, n, "%.2f", v);
    else snprintf(buf, n, "%.3g", v);
}

static void vt_backend_label(const cJSON *be, char *buf, size_t n) {
    snprintf(buf, n, "%s: %s", vt_bs(be, "backend"), vt_bs(be, "device"));
}

/* Rows of the side-by-side tables: the union of names over every backend, in first-seen order. */
typedef struct vt_rows {
    const char *name[512], *shape[512], *kind[512];
    int n;
} vt_rows;

static void vt_collect(vt_rows *r, const cJSON *backends, const char *list, const char *key) {
    r->n = 0;
    const cJSON *be;
    cJSON_ArrayForEach(be, backends) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(be, list)) {
            const char *nm = vt_bs(e, key);
            int k = 0;
            while (k < r->n && strcmp(r->name[k], nm) != 0) k++;
            if (k == r->n && r->n < 512) {
                r->name[r->n] = nm;
                r->shape[r->n] = vt_bs(e, "shape");
                r->kind[r->n] = vt_bs(e, "kind");
                r->n++;
            }
        }
    }
}

static const cJSON *vt_find(const cJSON *be, const char *list, const char *key, const char *name) {
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(be, list)) {
        if (strcmp(vt_bs(e, key), name) == 0) return e;
    }
    return NULL;
}

/* The headline figure of an op entry: GB/s for memory-bound ops, GFLOP/s otherwise. */
static double vt_op_value(const cJSON *e) {
    if (!e || !vt_ok(e)) return NAN;
    return strcmp(vt_bs(e, "kind"), "memory") == 0 ? vt_bn(e, "gbps") : vt_bn(e, "gflops");
}

static void vt_op_cell(char *buf, size_t n, const cJSON *e) {
    if (!e) {
        snprintf(buf, n, "-");
        return;
    }
    if (!vt_ok(e)) {
        snprintf(buf, n, "%s", vt_bs(e, "status")[0] ? vt_bs(e, "status") : "-");
        return;
    }
    char v[32], ms[32];
    vt_num(v, sizeof v, vt_op_value(e));
    vt_num(ms, sizeof ms, vt_bn(e, "ms_median"));
    snprintf(buf, n, "%s (%s ms)", v, ms);
}

static void vt_source_line(const cJSON *src, char *line, size_t n) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(src, "machine");
    double load = vt_bn(m, "load_avg_1m");
    char l[48] = "";
    if (isfinite(load)) snprintf(l, sizeof l, ", load %.2f", load);
    snprintf(line, n, "%s, %s, %.0f cores, %s%s", vt_bs(m, "host"), vt_bs(m, "cpu"), vt_bn(m, "cores"), vt_bs(m, "os"),
             l);
}

static void vt_header(vt_sb *b, const cJSON *doc, int html) {
    /* A merged document (several bench files side by side) lists each file's origin. */
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(doc, "sources");
    int n = cJSON_IsArray(sources) ? cJSON_GetArraySize(sources) : 0;
    for (int i = 0; i < (n ? n : 1); i++) {
        const cJSON *src = n ? cJSON_GetArrayItem(sources, i) : doc;
        char line[512], rep[96];
        vt_source_line(src, line, sizeof line);
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(src, "settings");
        snprintf(rep, sizeof rep, "warm-up %.0f, repeats %.0f%s", vt_bn(set, "warmup"), vt_bn(set, "repeats"),
                 cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(set, "quick")) ? ", quick sizes" : "");
        const char *file = vt_bs(src, "file");
        if (html) {
            vt_sb_puts(b, "<p class=\"meta\">");
            if (*file) {
                vt_sb_puts(b, "File: ");
                vt_sb_escape(b, file);
                vt_sb_puts(b, "<br>");
            }
            vt_sb_puts(b, "Machine: ");
            vt_sb_escape(b, line);
            vt_sb_puts(b, "<br>Date: ");
            vt_sb_escape(b, vt_bs(src, "date"));
            vt_sb_puts(b, " &middot; ");
            vt_sb_escape(b, rep);
            vt_sb_puts(b, "<br>Command: <code>");
            vt_sb_escape(b, vt_bs(src, "command"));
            vt_sb_puts(b, "</code></p>\n");
        } else {
            if (*file) vt_sb_printf(b, "- File: %s\n", file);
            vt_sb_puts(b, "- Machine: ");
            vt_sb_md(b, line);
            vt_sb_printf(b, "\n- Date: %s (%s)\n- Command: `%s`\n\n", vt_bs(src, "date"), rep, vt_bs(src, "command"));
        }
    }
}

static const char *const vt_prob_cols[] = {"problem",
                                           "batch",
                                           "step ms (min / median / max)",
                                           "images/s",
                                           "data ms",
                                           "fwd ms",
                                           "bwd ms",
                                           "opt ms",
                                           "GEMM GFLOP/step",
                                           "dispatches/step",
                                           "up / down / syncs per step",
                                           "x GEMM-bound ideal"};
enum { VT_NPROB = 12 };

static void vt_prob_cells(const cJSON *p, char c[VT_NPROB][128]) {
    char a[32], bb[32], cc[32];
    snprintf(c[0], 128, "%s", vt_bs(p, "name")[0] ? vt_bs(p, "name") : vt_bs(p, "problem"));
    vt_num(c[1], 128, vt_bn(p, "batch"));
    if (!vt_ok(p)) {
        snprintf(c[2], 128, "%s", vt_bs(p, "status"));
        for (int i = 3; i < VT_NPROB; i++) snprintf(c[i], 128, "-");
        return;
    }
    vt_num(a, sizeof a, vt_bn(p, "step_ms_min"));
    vt_num(bb, sizeof bb, vt_bn(p, "step_ms_median"));
    vt_num(cc, sizeof cc, vt_bn(p, "step_ms_max"));
    snprintf(c[2], 128, "%s / %s / %s", a, bb, cc);
    vt_num(c[3], 128, vt_bn(p, "images_per_s"));
    vt_num(c[4], 128, vt_bn(p, "data_ms"));
    vt_num(c[5], 128, vt_bn(p, "fwd_ms"));
    vt_num(c[6], 128, vt_bn(p, "bwd_ms"));
    vt_num(c[7], 128, vt_bn(p, "opt_ms"));
    vt_num(c[8], 128, vt_bn(p, "gemm_gflop"));
    vt_num(c[9], 128, vt_bn(p, "dispatches"));
    char u[32], d[32], y[32];
    vt_num(u, sizeof u, vt_bn(p, "uploads"));
    vt_num(d, sizeof d, vt_bn(p, "downloads"));
    vt_num(y, sizeof y, vt_bn(p, "syncs"));
    snprintf(c[10], 128, "%s / %s / %s", u, d, y);
    vt_num(c[11], 128, vt_bn(p, "x_ideal"));
}

static const char *const vt_op_cols[] = {"op", "shape", "GFLOP/s", "GB/s", "ms min", "ms median", "ms max", "of peak"};
enum { VT_NOPC = 8 };

static void vt_op_cells(const cJSON *e, char c[VT_NOPC][160]) {
    snprintf(c[0], 160, "%s", vt_bs(e, "name"));
    snprintf(c[1], 160, "%s", vt_bs(e, "shape"));
    if (!vt_ok(e)) {
        snprintf(c[2], 160, "%s", vt_bs(e, "status"));
        for (int i = 3; i < VT_NOPC; i++) snprintf(c[i], 160, "-");
        return;
    }
    vt_num(c[2], 160, vt_bn(e, "gflops"));
    vt_num(c[3], 160, vt_bn(e, "gbps"));
    vt_num(c[4], 160, vt_bn(e, "ms_min"));
    vt_num(c[5], 160, vt_bn(e, "ms_median"));
    vt_num(c[6], 160, vt_bn(e, "ms_max"));
    double f = vt_bn(e, "peak_fraction");
    if (isfinite(f)) snprintf(c[7], 160, "%.1f%%", f * 100);
    else snprintf(c[7], 160, "-");
}

/* One table, Markdown or HTML, from a header row and a cell callback's output. */
static void vt_table_begin(vt_sb *b, int html, const char *const *cols, int nc, int nleft) {
    if (html) {
        vt_sb_puts(b, "<div class=\"wrap\"><table>\n<tr>");
        for (int i = 0; i < nc; i++) {
            vt_sb_puts(b, "<th>");
            vt_sb_escape(b, cols[i]);
            vt_sb_puts(b, "</th>");
        }
        vt_sb_puts(b, "</tr>\n");
    } else {
        vt_sb_puts(b, "|");
        for (int i = 0; i < nc; i++) {
            vt_sb_puts(b, " ");
            vt_sb_md(b, cols[i]);
            vt_sb_puts(b, " |");
        }
        vt_sb_puts(b, "\n|");
        for (int i = 0; i < nc; i++) vt_sb_puts(b, i < nleft ? "---|" : "---:|");
        vt_sb_puts(b, "\n");
    }
}

static void vt_table_row(vt_sb *b, int html, const char *const *cells, int nc, int nleft) {
    if (html) {
        vt_sb_puts(b, "<tr>");
        for (int i = 0; i < nc; i++) {
            vt_sb_puts(b, i < nleft ? "<td class=\"l\">" : "<td>");
            vt_sb_escape(b, cells[i]);
            vt_sb_puts(b, "</td>");
        }
        vt_sb_puts(b, "</tr>\n");
    } else {
        vt_sb_puts(b, "|");
        for (int i = 0; i < nc; i++) {
            vt_sb_puts(b, " ");
            vt_sb_md(b, cells[i]);
            vt_sb_puts(b, " |");
        }
        vt_sb_puts(b, "\n");
    }
}

static void vt_table_end(vt_sb *b, int html) { vt_sb_puts(b, html ? "</table></div>\n" : "\n"); }

static void vt_heading(vt_sb *b, int html, int level, const char *text) {
    if (html) {
        vt_sb_printf(b, "<h%d>", level);
        vt_sb_escape(b, text);
        vt_sb_printf(b, "</h%d>\n", level);
    } else {
        for (int i = 0; i < level; i++) vt_sb_puts(b, "#");
        vt_sb_printf(b, " %s\n\n", text);
    }
}

/* Bars for the rows whose kind matches (NULL: all), one bar per backend. */
static void vt_bars(vt_sb *b, const cJSON *backends, const vt_rows *rows, const char *kind, const char *title,
                    const char *unit, int problems) {
    int nb = cJSON_GetArraySize(backends);
    if (nb <= 0) return;
    const char *names[512];
    char(*labels)[160] = calloc((size_t)nb, sizeof *labels);
    const char **groups = calloc((size_t)nb, sizeof *groups);
    double *val = malloc(sizeof(double) * 512 * (size_t)nb);
    if (!labels || !groups || !val) {
        b->oom = 1;
        goto out;
    }
    for (int g = 0; g < nb; g++) {
        vt_backend_label(cJSON_GetArrayItem(backends, g), labels[g], sizeof labels[g]);
        groups[g] = labels[g];
    }
    int nr = 0, any = 0;
    for (int r = 0; r < rows->n; r++) {
        if (kind && strcmp(rows->kind[r], kind) != 0) continue;
        names[nr] = rows->name[r];
        for (int g = 0; g < nb; g++) {
            const cJSON *be = cJSON_GetArrayItem(backends, g);
            const cJSON *e =
                problems ? vt_find(be, "problems", "name", rows->name[r]) : vt_find(be, "ops", "name", rows->name[r]);
            double v = problems ? (e && vt_ok(e) ? vt_bn(e, "images_per_s") : NAN) : vt_op_value(e);
            val[nr * nb + g] = v;
            any |= isfinite(v);
        }
        nr++;
    }
    if (nr > 0 && any) vt_svg_bar_chart(b, title, unit, names, nr, groups, nb, val);
out:
    free(labels);
    free(groups);
    free(val);
}

static void vt_bench_body(vt_sb *b, const cJSON *doc, const char *source, int html) {
    const cJSON *backends = cJSON_GetObjectItemCaseSensitive(doc, "backends");
    char title[600];
    snprintf(title, sizeof title, "Benchmarks%s%s", source && *source ? ": " : "", source ? source : "");
    vt_heading(b, html, 2, title);
    vt_header(b, doc, html);
    int nb = cJSON_GetArraySize(backends);
    const cJSON *be;
    cJSON_ArrayForEach(be, backends) {
        /* one line per backend: why it did not run, or its speed-relevant configuration */
        int failed = strcmp(vt_bs(be, "status"), "error") == 0;
        const char *cfg = vt_bs(be, "config");
        if (!failed && !cfg[0]) continue;
        char msg[700];
        if (failed) snprintf(msg, sizeof msg, "%s: not run: %s", vt_bs(be, "backend"), vt_bs(be, "error"));
        else snprintf(msg, sizeof msg, "%s: %s", vt_bs(be, "backend"), cfg);
        if (html) {
            vt_sb_puts(b, "<p class=\"meta\">");
            vt_sb_escape(b, msg);
            vt_sb_puts(b, "</p>\n");
        } else {
            vt_sb_printf(b, "- %s\n\n", msg);
        }
    }
    const char **cols = calloc((size_t)nb + 3, sizeof *cols);
    char(*labels)[160] = calloc((size_t)nb + 1, sizeof *labels);
    char(*cells)[160] = calloc((size_t)nb + 3, sizeof *cells);
    const char **cp = calloc((size_t)nb + 3, sizeof *cp);
    vt_rows *rows = calloc(1, sizeof *rows);
    if (!cols || !labels || !cells || !cp || !rows) {
        b->oom = 1;
        goto out;
    }
    for (int g = 0; g < nb; g++) vt_backend_label(cJSON_GetArrayItem(backends, g), labels[g], sizeof labels[g]);
    for (int i = 0; i < nb + 3; i++) cp[i] = cells[i];

    vt_collect(rows, backends, "ops", "name");
    if (rows->n > 0) {
        vt_heading(b, html, 3, "Ops, side by side (GFLOP/s, or GB/s for memory-bound ops; median time)");
        if (html) vt_bars(b, backends, rows, "compute", "Compute-bound ops", "GFLOP/s (median)", 0);
        if (html) vt_bars(b, backends, rows, "memory", "Memory-bound ops", "GB/s (median)", 0);
        cols[0] = "op";
        cols[1] = "shape";
        cols[2] = "unit";
        for (int g = 0; g < nb; g++) cols[3 + g] = labels[g];
        vt_table_begin(b, html, cols, nb + 3, 3);
        for (int r = 0; r < rows->n; r++) {
            snprintf(cells[0], 160, "%s", rows->name[r]);
            snprintf(cells[1], 160, "%s", rows->shape[r]);
            snprintf(cells[2], 160, "%s", strcmp(rows->kind[r], "memory") == 0 ? "GB/s" : "GFLOP/s");
            for (int g = 0; g < nb; g++)
                vt_op_cell(cells[3 + g], 160, vt_find(cJSON_GetArrayItem(backends, g), "ops", "name", rows->name[r]));
            vt_table_row(b, html, cp, nb + 3, 3);
        }
        vt_table_end(b, html);
    }
    vt_collect(rows, backends, "problems", "name");
    if (rows->n > 0) {
        vt_heading(b, html, 3, "Training steps, side by side (images/s; median step ms)");
        if (html) vt_bars(b, backends, rows, NULL, "Training throughput", "images/s", 1);
        cols[0] = "problem";
        for (int g = 0; g < nb; g++) cols[1 + g] = labels[g];
        vt_table_begin(b, html, cols, nb + 1, 1);
        for (int r = 0; r < rows->n; r++) {
            snprintf(cells[0], 160, "%s", rows->name[r]);
            for (int g = 0; g < nb; g++) {
                const cJSON *p = vt_find(cJSON_GetArrayItem(backends, g), "problems", "name", rows->name[r]);
                if (!p) snprintf(cells[1 + g], 160, "-");
                else if (!vt_ok(p)) snprintf(cells[1 + g], 160, "%s", vt_bs(p, "status"));
                else {
                    char a[32], c[32];
                    vt_num(a, sizeof a, vt_bn(p, "images_per_s"));
                    vt_num(c, sizeof c, vt_bn(p, "step_ms_median"));
                    snprintf(cells[1 + g], 160, "%s (%s ms)", a, c);
                }
            }
            vt_table_row(b, html, cp, nb + 1, 1);
        }
        vt_table_end(b, html);
    }
    cJSON_ArrayForEach(be, backends) {
        char lab[160], h[300];
        vt_backend_label(be, lab, sizeof lab);
        const cJSON *ops = cJSON_GetObjectItemCaseSensitive(be, "ops");
        const cJSON *probs = cJSON_GetObjectItemCaseSensitive(be, "problems");
        if (cJSON_GetArraySize(ops) == 0 && cJSON_GetArraySize(probs) == 0) continue;
        double peak = vt_bn(be, "peak_gflops");
        if (isfinite(peak) && peak > 0) snprintf(h, sizeof h, "%s (peak %.0f GFLOP/s)", lab, peak);
        else snprintf(h, sizeof h, "%s", lab);
        vt_heading(b, html, 3, h);
        if (cJSON_GetArraySize(ops) > 0) {
            vt_table_begin(b, html, vt_op_cols, VT_NOPC, 2);
            const cJSON *e;
            cJSON_ArrayForEach(e, ops) {
                char c[VT_NOPC][160];
                const char *pc[VT_NOPC];
                vt_op_cells(e, c);
                for (int i = 0; i < VT_NOPC; i++) pc[i] = c[i];
                vt_table_row(b, html, pc, VT_NOPC, 2);
            }
            vt_table_end(b, html);
        }
        if (cJSON_GetArraySize(probs) > 0) {
            vt_table_begin(b, html, vt_prob_cols, VT_NPROB, 1);
            const cJSON *p;
            cJSON_ArrayForEach(p, probs) {
                char c[VT_NPROB][128];
                const char *pc[VT_NPROB];
                vt_prob_cells(p, c);
                for (int i = 0; i < VT_NPROB; i++) pc[i] = c[i];
                vt_table_row(b, html, pc, VT_NPROB, 1);
            }
            vt_table_end(b, html);
        }
    }
out:
    free(cols);
    free(labels);
    free(cells);
    free(cp);
    free(rows);
}

void vt_rep_bench_md(vt_sb *b, const cJSON *doc, const char *source) { vt_bench_body(b, doc, source, 0); }
void vt_rep_bench_html(vt_sb *b, const cJSON *doc, const char *source) { vt_bench_body(b, doc, source, 1); }

vt_status vt_report_bench_render(const char *json_text, const char *md_path, const char *html_path) {
    cJSON *doc = cJSON_Parse(json_text ? json_text : "");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "backends"))) {
        cJSON_Delete(doc);
        return vt_error(VT_ERR_FORMAT, "bench: not a bench JSON document (no \"backends\" array)");
    }
    vt_status st = VT_OK;
    if (md_path) {
        vt_sb md = {0};
        vt_sb_puts(&md, "# vtrain bench\n\n");
        vt_rep_bench_md(&md, doc, NULL);
        st = vt_rep_write_file(md_path, &md);
        vt_sb_free(&md);
    }
    if (st == VT_OK && html_path) {
        vt_sb h = {0};
        vt_sb_printf(&h,
                     "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vtrain bench</title>"
                     "<style>%s</style></head><body>\n<h1>vtrain bench</h1>\n",
                     vt_rep_css);
        vt_rep_bench_html(&h, doc, NULL);
        vt_sb_puts(&h, "</body></html>\n");
        st = vt_rep_write_file(html_path, &h);
        vt_sb_free(&h);
    }
    cJSON_Delete(doc);
    return st;
}
