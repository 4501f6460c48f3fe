/* Private helpers of the report files (report*.c): growable text buffers, file helpers and the
 * hand-written SVG charts. Not part of the public API. */
#ifndef VT_REPORT_UTIL_H
#define VT_REPORT_UTIL_H

#include <stddef.h>

#include "vt/common.h"

typedef struct vt_sb {
    char *p;
    size_t len, cap;
    int oom; /* sticky: a failed growth makes every later append a no-op */
} vt_sb;

void vt_sb_printf(vt_sb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void vt_sb_puts(vt_sb *b, const char *s);
void vt_sb_escape(vt_sb *b, const char *s); /* XML/HTML text and attribute escaping */
void vt_sb_md(vt_sb *b, const char *s);     /* Markdown table cell escaping */
void vt_sb_free(vt_sb *b);

vt_status vt_rep_mkdirs(const char *path);
vt_status vt_rep_write_file(const char *path, const vt_sb *b);
/* Whole file, NUL-terminated. VT_ERR_NOT_FOUND when it does not exist. */
vt_status vt_rep_read_file(const char *path, char **out, size_t *len);
const char *vt_rep_colour(int i);

typedef struct vt_series {
    const double *x, *y; /* NaN entries are gaps */
    int n;
    const char *label; /* NULL: no legend entry (a second line of a run already listed) */
    int colour;        /* palette index */
    int dashed;
} vt_series;

/* x_integer: ticks on whole numbers only (epochs); log_y: a logarithmic y axis (learning rates;
 * non-positive values become gaps). */
typedef struct vt_chart_opts {
    int x_integer, log_y;
} vt_chart_opts;

void vt_svg_line_chart(vt_sb *b, const char *title, const char *xlabel, const char *ylabel, const vt_series *s, int ns,
                       int w, int h, const vt_chart_opts *o);
/* Horizontal grouped bars: one row per item, one bar per group; val[row * ngroups + group], NaN = none. */
void vt_svg_bar_chart(vt_sb *b, const char *title, const char *unit, const char *const *rows, int nrows,
                      const char *const *groups, int ngroups, const double *val);

/* The benchmark sections (Markdown and HTML body) of one parsed bench document. */
struct cJSON;
void vt_rep_bench_md(vt_sb *b, const struct cJSON *doc, const char *source);
void vt_rep_bench_html(vt_sb *b, const struct cJSON *doc, const char *source);
extern const char *const vt_rep_css;

#endif
