/* Growable text buffers, file helpers and the hand-written SVG charts (line charts with nice ticks
 * and a legend, grouped horizontal bar charts) shared by the run report and the bench views. */
#define _POSIX_C_SOURCE 200809L
#include "report_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tableau 10: distinguishable on screen and in print, one per run / backend. */
static const char *const vt_palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                         "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

const char *vt_rep_colour(int i) { return vt_palette[(i < 0 ? 0 : i) % 10]; }

void vt_sb_printf(vt_sb *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = room ? vsnprintf(b->p + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (n == -1) {
            b->oom = 1;
            return;
        }
        size_t need = b->len + (n > 0 ? (size_t)n : 0) + 1;
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < need) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void vt_sb_puts(vt_sb *b, const char *s) { vt_sb_printf(b, "%s", s); }

void vt_sb_escape(vt_sb *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': vt_sb_puts(b, "&amp;"); break;
        case '<': vt_sb_puts(b, "&lt;"); break;
        case '>': vt_sb_puts(b, "&gt;"); break;
        case '"': vt_sb_puts(b, "&quot;"); break;
        default: vt_sb_printf(b, "%c", *s);
        }
    }
}

void vt_sb_md(vt_sb *b, const char *s) {
    /* A '|' would split a Markdown table cell. */
    for (; s && *s; s++) {
        if (*s == '|') vt_sb_puts(b, "\\|");
        else if (*s == '\n') vt_sb_puts(b, " ");
        else vt_sb_printf(b, "%c", *s);
    }
}

void vt_sb_free(vt_sb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

vt_status vt_rep_mkdirs(const char *path) {
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return vt_error(VT_ERR_INVALID_ARG, "report: output path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0775) != 0 && errno != EEXIST)
            return vt_error(VT_ERR_IO, "report: cannot create folder %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0775) != 0 && errno != EEXIST)
        return vt_error(VT_ERR_IO, "report: cannot create folder %s: %s", tmp, strerror(errno));
    return VT_OK;
}

vt_status vt_rep_write_file(const char *path, const vt_sb *b) {
    if (b->oom) return vt_error(VT_ERR_OOM, "report: out of memory while building %s", path);
    /* Write beside and rename, so that a reader never sees half a page. */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return vt_error(VT_ERR_IO, "report: cannot open %s for writing: %s", tmp, strerror(errno));
    size_t w = b->len ? fwrite(b->p, 1, b->len, f) : 0;
    int bad = (w != b->len) | (fclose(f) != 0);
    if (bad) {
        remove(tmp);
        return vt_error(VT_ERR_IO, "report: cannot write %s", path);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return vt_error(VT_ERR_IO, "report: cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    return VT_OK;
}

vt_status vt_rep_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vt_error(errno == ENOENT ? VT_ERR_NOT_FOUND : VT_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    while (p) {
        n += fread(p + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *q = realloc(p, cap * 2);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!p) return vt_error(VT_ERR_OOM, "%s: out of memory reading it", path);
    if (err) {
        free(p);
        return vt_error(VT_ERR_IO, "%s: read error", path);
    }
    p[n] = 0;
    *out = p;
    if (len) *len = n;
    return VT_OK;
}

/* A step of 1, 2 or 5 times a power of ten that splits [lo,hi] into about `want` intervals. */
static double vt_nice_step(double lo, double hi, int want) {
    double range = hi - lo;
    if (!(range > 0)) range = fabs(hi) > 0 ? fabs(hi) : 1.0;
    double raw = range / want;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    double nice = f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0;
    return nice * mag;
}

static void vt_nice_range(double *lo, double *hi, double *step, int want) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
    }
    if (*hi <= *lo) {
        double c = *lo;
        *lo = c - (fabs(c) > 0 ? fabs(c) * 0.1 : 0.5);
        *hi = c + (fabs(c) > 0 ? fabs(c) * 0.1 : 0.5);
    }
    *step = vt_nice_step(*lo, *hi, want);
    *lo = floor(*lo / *step + 1e-9) * *step;
    *hi = ceil(*hi / *step - 1e-9) * *step;
}

/* Tick label without float noise ("0.30000000000000004" -> "0.3"). */
static void vt_tick_label(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) v = 0;
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) >= 1e6) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.*f", dec, v);
}

static void vt_svg_open(vt_sb *b, int w, int h, const char *title) {
    vt_sb_printf(b,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
                 w, h, w, h);
    vt_sb_puts(b, "<title>");
    vt_sb_escape(b, title);
    vt_sb_puts(b, "</title>\n");
    vt_sb_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    vt_sb_printf(b,
                 "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\" fill=\"#222\">",
                 w / 2);
    vt_sb_escape(b, title);
    vt_sb_puts(b, "</text>\n");
}

/* Legend entries are clipped so that a long run name cannot push the legend off the chart. */
static void vt_legend_label(vt_sb *b, const char *s, size_t max) {
    char tmp[96];
    size_t n = strlen(s ? s : "");
    if (n > max && max > 3 && max < sizeof tmp) {
        snprintf(tmp, sizeof tmp, "%.*s...", (int)(max - 3), s);
        vt_sb_escape(b, tmp);
    } else {
        vt_sb_escape(b, s ? s : "");
    }
}

/* The value plotted on y: log10 on a logarithmic axis (NaN for values it cannot show). */
static double vt_yv(double y, int log_y) { return log_y ? (y > 0 ? log10(y) : NAN) : y; }

void vt_svg_line_chart(vt_sb *b, const char *title, const char *xlabel, const char *ylabel, const vt_series *s, int ns,
                       int w, int h, const vt_chart_opts *o) {
    const int ml = 64, mr = 200, mt = 36, mb = 50;
    int pw = w - ml - mr, ph = h - mt - mb;
    int x_int = o && o->x_integer, log_y = o && o->log_y;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = vt_yv(s[i].y[k], log_y);
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (!isfinite(xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    if (xlo > 0 && xlo <= (xhi - xlo) * 0.5) xlo = 0; /* start the axis at 0 when that costs little */
    if (!log_y && ylo > 0 && ylo <= (yhi - ylo) * 0.5) ylo = 0;
    double xs, ys;
    if (x_int) {
        /* epochs: whole-number ticks, a step of 1, 2, 5, 10, ... */
        xlo = floor(xlo);
        xhi = ceil(xhi);
        if (xhi <= xlo) xhi = xlo + 1;
        xs = vt_nice_step(xlo, xhi, 8);
        if (xs < 1) xs = 1;
        xlo = floor(xlo / xs) * xs;
        xhi = ceil(xhi / xs) * xs;
    } else {
        vt_nice_range(&xlo, &xhi, &xs, 8);
    }
    if (log_y) {
        /* decades */
        ylo = floor(ylo);
        yhi = ceil(yhi);
        if (yhi <= ylo) yhi = ylo + 1;
        ys = 1;
    } else {
        vt_nice_range(&ylo, &yhi, &ys, 6);
    }
#define VT_PX(v) (ml + ((v)-xlo) / (xhi - xlo) * pw)
#define VT_PY(v) (mt + ph - ((v)-ylo) / (yhi - ylo) * ph)
    vt_svg_open(b, w, h, title);
    vt_sb_printf(b, "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (double v = ylo; v <= yhi + ys * 1e-6; v += ys)
        vt_sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", ml, VT_PY(v), ml + pw, VT_PY(v));
    for (double v = xlo; v <= xhi + xs * 1e-6; v += xs)
        vt_sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", VT_PX(v), mt, VT_PX(v), mt + ph);
    vt_sb_puts(b, "</g>\n");
    vt_sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", ml, mt, pw,
                 ph);
    char lab[32];
    vt_sb_puts(b, "<g fill=\"#333\" font-size=\"11\">\n");
    for (double v = ylo; v <= yhi + ys * 1e-6; v += ys) {
        if (log_y) snprintf(lab, sizeof lab, "%g", pow(10.0, v));
        else vt_tick_label(lab, sizeof lab, v, ys);
        vt_sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#444\"/>", ml - 4, VT_PY(v), ml,
                     VT_PY(v));
        vt_sb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", ml - 7, VT_PY(v) + 4, lab);
    }
    for (double v = xlo; v <= xhi + xs * 1e-6; v += xs) {
        vt_tick_label(lab, sizeof lab, v, xs);
        vt_sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#444\"/>", VT_PX(v), mt + ph,
                     VT_PX(v), mt + ph + 4);
        vt_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", VT_PX(v), mt + ph + 17, lab);
    }
    vt_sb_puts(b, "</g>\n");
    vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#222\">", ml + pw / 2, h - 10);
    vt_sb_escape(b, xlabel);
    vt_sb_puts(b, "</text>\n");
    vt_sb_printf(b, "<text x=\"16\" y=\"%d\" text-anchor=\"middle\" fill=\"#222\" transform=\"rotate(-90 16 %d)\">",
                 mt + ph / 2, mt + ph / 2);
    vt_sb_escape(b, ylabel);
    vt_sb_puts(b, "</text>\n");
    for (int i = 0; i < ns; i++) {
        const char *c = vt_rep_colour(s[i].colour);
        /* NaN points break the line rather than join across the gap. */
        int open = 0, count = 0;
        for (int k = 0; k < s[i].n; k++) {
            double x = s[i].x[k], y = vt_yv(s[i].y[k], log_y);
            if (!isfinite(x) || !isfinite(y)) {
                if (open) vt_sb_puts(b, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open)
                vt_sb_printf(
                    b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s stroke-linejoin=\"round\" points=\"",
                    c, s[i].dashed ? " stroke-dasharray=\"6 4\"" : "");
            vt_sb_printf(b, "%s%.1f,%.1f", open ? " " : "", VT_PX(x), VT_PY(y));
            open = 1;
            count++;
        }
        if (open) vt_sb_puts(b, "\"/>\n");
        /* Markers only while they stay readable. */
        if (count <= 40 && !s[i].dashed)
            for (int k = 0; k < s[i].n; k++) {
                double y = vt_yv(s[i].y[k], log_y);
                if (isfinite(s[i].x[k]) && isfinite(y))
                    vt_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", VT_PX(s[i].x[k]),
                                 VT_PY(y), c);
            }
    }
#undef VT_PX
#undef VT_PY
    int lx = ml + pw + 16, ly = mt + 6, shown = 0;
    for (int i = 0; i < ns; i++) {
        if (!s[i].label) continue;
        int y = ly + shown++ * 20;
        if (y > h - 20) break;
        vt_sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>", lx, y + 5,
                     lx + 18, y + 5, vt_rep_colour(s[i].colour));
        vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#222\">", lx + 24, y + 9);
        vt_legend_label(b, s[i].label, 26);
        vt_sb_puts(b, "</text>\n");
    }
    vt_sb_puts(b, "</svg>\n");
}

void vt_svg_bar_chart(vt_sb *b, const char *title, const char *unit, const char *const *rows, int nrows,
                      const char *const *groups, int ngroups, const double *val) {
    /* val[r * ngroups + g]; NaN = no bar (unsupported / not run). */
    const int ml = 230, mr = 90, mt = 40, mb = 44, bar = 11, gap = 10;
    int legend_h = ngroups * 17 + 6; /* one legend line per group: device names are long */
    int row_h = ngroups * bar + gap;
    int ph = nrows * row_h;
    int w = 860, pw = w - ml - mr;
    int h = mt + legend_h + ph + mb;
    double vmax = 0;
    for (int i = 0; i < nrows * ngroups; i++)
        if (isfinite(val[i]) && val[i] > vmax) vmax = val[i];
    double lo = 0, hi = vmax > 0 ? vmax : 1, step;
    vt_nice_range(&lo, &hi, &step, 6);
    int top = mt + legend_h;
    vt_svg_open(b, w, h, title);
    for (int g = 0; g < ngroups; g++) {
        int y = mt - 4 + g * 17;
        vt_sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", ml, y, vt_rep_colour(g));
        vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" fill=\"#222\">", ml + 17, y + 10);
        vt_legend_label(b, groups[g], 80);
        vt_sb_puts(b, "</text>\n");
    }
    char lab[32];
    vt_sb_puts(b, "<g font-size=\"11\" fill=\"#333\">\n");
    for (double v = lo; v <= hi + step * 1e-6; v += step) {
        double x = ml + (v - lo) / (hi - lo) * pw;
        vt_tick_label(lab, sizeof lab, v, step);
        vt_sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e6e6e6\"/>", x, top, x, top + ph);
        vt_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, top + ph + 16, lab);
    }
    vt_sb_puts(b, "</g>\n");
    for (int r = 0; r < nrows; r++) {
        int y0 = top + r * row_h + gap / 2;
        if (r % 2 == 1)
            vt_sb_printf(b, "<rect x=\"0\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#000\" fill-opacity=\"0.03\"/>\n",
                         top + r * row_h, w, row_h);
        vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\" fill=\"#222\">", ml - 8,
                     y0 + ngroups * bar / 2 + 4);
        vt_legend_label(b, rows[r], 36);
        vt_sb_puts(b, "</text>\n");
        for (int g = 0; g < ngroups; g++) {
            double v = val[r * ngroups + g];
            int y = y0 + g * bar;
            if (!isfinite(v)) {
                vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"9\" fill=\"#999\">n/a</text>\n", ml + 4,
                             y + bar - 2);
                continue;
            }
            double bw = v / (hi - lo) * pw;
            vt_sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", ml, y,
                         bw > 0.5 ? bw : 0.5, bar - 1, vt_rep_colour(g));
            vt_sb_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"9\" fill=\"#333\">%.3g</text>\n", ml + bw + 4,
                         y + bar - 2, v);
        }
    }
    vt_sb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", ml, top, ml, top + ph);
    vt_sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#222\">", ml + pw / 2, h - 8);
    vt_sb_escape(b, unit);
    vt_sb_puts(b, "</text>\n</svg>\n");
}
