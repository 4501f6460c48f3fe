/* The run tables of the report, Markdown and HTML from the same cells: one row per run, where each
 * ran, and the "Skipped and cut" notes. */
#include "report_run.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
enum { VT_NCOL = 10 };
static const char *const vt_cols[VT_NCOL] = {
    "run",   "problem", "model (parameters)",     "training", "best test acc", "final test acc", "convergence",
    "speed", "status",  "test mIoU (best, final)"};
static const int vt_col_left[VT_NCOL] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 0};

/* The columns shown: the mIoU column only when a segmentation run is among them, so that a report of
 * classification runs is as it was. */
static int vt_ncols(const vt_run *runs, int n) {
    for (int i = 0; i < n; i++)
        if (runs[i].seg) return VT_NCOL;
    return VT_NCOL - 1;
}

/* How the run ended, in words: complete, cut (and by what), interrupted, steps skipped. */
static void vt_run_status(const vt_run *r, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    if (!r->has_summary) {
        snprintf(buf, n, "no summary.json");
        return;
    }
    if (r->cut)
        k += (size_t)snprintf(buf + k, n - k, "cut by --%s after %d of %d epochs",
                              r->cut_reason[0] ? r->cut_reason : "?", r->n, r->epochs);
    else if (r->interrupted)
        k += (size_t)snprintf(buf + k, n - k, "interrupted after %d of %d epochs", r->n, r->epochs);
    else k += (size_t)snprintf(buf + k, n - k, "complete");
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
    if (r->seg) {
        vt_fmt(a, sizeof a, "%.2f%%", r->best_miou);
        vt_fmt(b, sizeof b, "%.2f%%", r->final_miou);
        snprintf(cells[9], 160, "%s (ep %d), %s", a, r->best_miou_epoch, b);
    } else snprintf(cells[9], 160, "-");
}

void vt_rep_md_runs(vt_sb *b, const vt_run *runs, int n) {
    int nc = vt_ncols(runs, n);
    vt_sb_puts(b, "|");
    for (int c = 0; c < nc; c++) vt_sb_printf(b, " %s |", vt_cols[c]);
    vt_sb_puts(b, "\n|");
    for (int c = 0; c < nc; c++) vt_sb_puts(b, vt_col_left[c] ? "---|" : "---:|");
    vt_sb_puts(b, "\n");
    for (int i = 0; i < n; i++) {
        char cells[VT_NCOL][160];
        vt_run_cells(&runs[i], cells);
        vt_sb_puts(b, "|");
        for (int c = 0; c < nc; c++) {
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

void vt_rep_html_runs(vt_sb *b, const vt_run *runs, int n) {
    int nc = vt_ncols(runs, n);
    vt_sb_puts(b, "<div class=\"wrap\"><table>\n<tr>");
    for (int c = 0; c < nc; c++) vt_sb_printf(b, "<th>%s</th>", vt_cols[c]);
    vt_sb_puts(b, "</tr>\n");
    for (int i = 0; i < n; i++) {
        char cells[VT_NCOL][160];
        vt_run_cells(&runs[i], cells);
        vt_sb_puts(b, "<tr>");
        for (int c = 0; c < nc; c++) {
            vt_sb_printf(b, "<td%s>", vt_col_left[c] ? " class=\"l\"" : "");
            if (c == 0) vt_sb_printf(b, "<span style=\"color:%s\">&#9632;</span> ", vt_rep_colour(i));
            vt_sb_escape(b, cells[c]);
            vt_sb_puts(b, "</td>");
        }
        vt_sb_puts(b, "</tr>\n");
    }
    vt_sb_puts(b, "</table></div>\n");
    vt_sb_puts(
        b,
        "<h3>Where they ran</h3>\n<div class=\"wrap\"><table>\n<tr><th>run</th><th>backend</th><th>device</th></tr>\n");
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

void vt_rep_md_where(vt_sb *b, const vt_run *runs, int n) {
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

void vt_rep_notes(vt_sb *md, vt_sb *html, const vt_run *runs, int n, const vt_skipped *sk, int nsk) {
    int any = nsk;
    for (int i = 0; i < n; i++)
        any |= runs[i].cut || runs[i].interrupted || (isfinite(runs[i].skipped_steps) && runs[i].skipped_steps > 0);
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
        const char *why = r->cut && !strcmp(r->cut_reason, "max-minutes")
                              ? " (the time cap); resume it to finish the cut epoch"
                          : r->cut && !strcmp(r->cut_reason, "steps") ? " (the step cap)"
                          : r->interrupted                            ? " (a signal); resume it from last.vtc"
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
