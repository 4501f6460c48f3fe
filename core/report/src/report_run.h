/* Private to the report files: a run folder as read by report_run.c (metrics.jsonl, config.json,
 * summary.json, skipped.json) and the run tables of report_tables.c, both used by report.c. */
#ifndef VT_REPORT_RUN_H
#define VT_REPORT_RUN_H

#include "report_util.h"

struct cJSON;

/* One run folder as the report reads it. */
typedef struct vt_run {
    char dir[512], name[128];
    char problem[64], model[64], optimizer[32], backend[32], device[128];
    double params;
    int epochs;
    double best_acc, final_acc, conv_seconds, sec_per_epoch, images_per_s, target_acc, time_to_target;
    int best_epoch, conv_epoch;
    int n; /* epochs read from metrics.jsonl */
    double *epoch, *train_loss, *test_acc, *cum_seconds, *train_acc, *test_loss, *lr;
    /* segmentation runs (metrics.jsonl's test_miou, a fraction, here in percent; NaN for classification,
     * whose test_acc is then pixel accuracy): seg is set when any epoch has a finite mIoU */
    double *test_miou;
    int seg;
    double best_miou, final_miou;
    int best_miou_epoch;
    /* how the run ended (summary.json) */
    int has_summary, cut, interrupted;
    char cut_reason[32];
    double skipped_steps;
} vt_run;

/* A problem of `--problem all` that produced no run (ROOT/skipped.json, written by vtrain train). */
typedef struct vt_skipped {
    char problem[64], reason[600];
} vt_skipped;

/* Reads run folder dir into *r (zeroed first); metrics.jsonl must hold at least one usable epoch.
 * Derived figures come from the curve, then summary.json has the last word. */
vt_status vt_rep_run_load(const char *dir, vt_run *r);
void vt_rep_run_free(vt_run *r);
/* Reads DIR/skipped.json into sk (up to max entries, no problem twice); a missing file is no news.
 * Returns the new count. */
int vt_rep_read_skipped(const char *dir, vt_skipped *sk, int have, int max);
/* Copies string (or number) member key of o into dst; leaves dst as it is otherwise. */
void vt_rep_jstr(const struct cJSON *o, const char *key, char *dst, size_t n);

/* The run table (Markdown, HTML with the "where they ran" table) and the Markdown "where" table. */
/* With a segmentation run among them, the tables get a "test mIoU" column ("-" for classification). */
void vt_rep_md_runs(vt_sb *b, const vt_run *runs, int n);
void vt_rep_html_runs(vt_sb *b, const vt_run *runs, int n);
void vt_rep_md_where(vt_sb *b, const vt_run *runs, int n);
/* "Skipped and cut": the problems without a run and the runs that did not finish as planned. */
void vt_rep_notes(vt_sb *md, vt_sb *html, const vt_run *runs, int n, const vt_skipped *sk, int nsk);

#endif
