/* Reports from run folders (summary.md, hand-written SVG plots, one self-contained report.html)
 * and the Markdown/HTML views of `vtrain bench` JSON documents. */
#ifndef VT_REPORT_H
#define VT_REPORT_H

#include "vt/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads each run folder (metrics.jsonl, summary.json, config.json) and writes into out_dir
 * (created if needed): summary.md, acc_epoch.svg, acc_time.svg, loss_epoch.svg, report.html.
 * A run folder whose metrics are missing or unreadable is skipped with a warning (vt_log) naming
 * the file; it is an error only when no run is usable. */
vt_status vt_report_write(const char *const *run_dirs, int n, const char *out_dir);

/* Same, plus the benchmark view of `vtrain bench --json` files (n may be 0 when only benchmarks
 * are reported). A bench file that cannot be read or parsed is an error naming the file. */
vt_status vt_report_write_ex(const char *const *run_dirs, int n, const char *const *bench_files, int n_bench,
                             const char *out_dir);

/* Renders one bench JSON document (its text) as Markdown and/or a self-contained HTML page;
 * either path may be NULL. */
vt_status vt_report_bench_render(const char *json_text, const char *md_path, const char *html_path);

/* Convergence as the reports define it: the first epoch whose test accuracy comes within `window`
 * points (1.0 in the reports) of the best. Returns its index in acc[], or -1 when n == 0. */
int vt_report_convergence_index(const double *acc, int n, double window);

#ifdef __cplusplus
}
#endif
#endif
