/* `vtrain report`: from run folders (read by report_run.c) and bench documents, writes summary.md,
 * the SVG charts and one self-contained report.html; the run tables are in report_tables.c, the
 * charts' drawing in report_svg.c, the bench sections in report_bench.c. */
#define _POSIX_C_SOURCE 200809L
#include "vt/report.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report_run.h"

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

static void vt_date_utc(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm);
    else snprintf(buf, n, "(unknown date)");
}

typedef enum {
    VT_CH_ACC_EPOCH,
    VT_CH_TRAIN_TEST_ACC,
    VT_CH_ACC_TIME,
    VT_CH_LOSS_EPOCH,
    VT_CH_LR_EPOCH,
    VT_CH_MIOU_EPOCH, /* segmentation runs only: drawn when there is one */
    VT_CH_MIOU_TIME,
    VT_CH_COUNT
} vt_chart_kind;
static const char *const vt_chart_file[VT_CH_COUNT] = {"acc_epoch.svg",  "train_test_acc.svg", "acc_time.svg",
                                                       "loss_epoch.svg", "lr_epoch.svg",       "miou_epoch.svg",
                                                       "miou_time.svg"};

static void vt_chart(vt_sb *b, vt_chart_kind k, const vt_run *runs, int n) {
    /* two lines per run where train (dashed) and test (solid) share a chart */
    vt_series *s = calloc((size_t)(n ? 2 * n : 1), sizeof *s);
    if (!s) {
        b->oom = 1;
        return;
    }
    int ns = 0;
    for (int i = 0; i < n; i++) {
        if ((k == VT_CH_MIOU_EPOCH || k == VT_CH_MIOU_TIME) && !runs[i].seg) continue;
        vt_series base = {.n = runs[i].n, .label = runs[i].name, .colour = i, .x = runs[i].epoch};
        switch (k) {
        case VT_CH_ACC_EPOCH: base.y = runs[i].test_acc; break;
        case VT_CH_ACC_TIME: base.x = runs[i].cum_seconds, base.y = runs[i].test_acc; break;
        case VT_CH_LR_EPOCH: base.y = runs[i].lr; break;
        case VT_CH_TRAIN_TEST_ACC: base.y = runs[i].test_acc; break;
        case VT_CH_LOSS_EPOCH: base.y = runs[i].test_loss; break;
        case VT_CH_MIOU_EPOCH: base.y = runs[i].test_miou; break;
        case VT_CH_MIOU_TIME: base.x = runs[i].cum_seconds, base.y = runs[i].test_miou; break;
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
        vt_svg_line_chart(b, "Accuracy by epoch: train (dashed) and test (solid)", "epoch", "accuracy (%)", s, ns, 900,
                          420, &epochs);
    if (k == VT_CH_ACC_TIME)
        vt_svg_line_chart(b, "Test accuracy by training time", "seconds", "test accuracy (%)", s, ns, 900, 420, NULL);
    if (k == VT_CH_LOSS_EPOCH)
        vt_svg_line_chart(b, "Loss by epoch: train (dashed) and test (solid)", "epoch", "loss", s, ns, 900, 420,
                          &epochs);
    if (k == VT_CH_LR_EPOCH)
        vt_svg_line_chart(b, "Learning rate by epoch (log scale)", "epoch", "learning rate", s, ns, 900, 420, &lr);
    if (k == VT_CH_MIOU_EPOCH)
        vt_svg_line_chart(b, "Test mIoU by epoch (segmentation runs)", "epoch", "test mIoU (%)", s, ns, 900, 420,
                          &epochs);
    if (k == VT_CH_MIOU_TIME)
        vt_svg_line_chart(b, "Test mIoU by training time (segmentation runs)", "seconds", "test mIoU (%)", s, ns, 900,
                          420, NULL);
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
        if (vt_rep_run_load(run_dirs[i], &runs[nr]) == VT_OK) nr++;
        else vt_log(VT_LOG_WARN, "vtrain report: warning: run %s skipped: %s\n", run_dirs[i], vt_last_error());
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
    nsk = vt_rep_read_skipped(out_dir, sk, nsk, 32);
    for (int i = 0; i < nr && nr > 1; i++) { /* a comparison: also where its runs live (a single run is just itself) */
        char parent[512];
        snprintf(parent, sizeof parent, "%s", runs[i].dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) *slash = 0;
        else snprintf(parent, sizeof parent, ".");
        nsk = vt_rep_read_skipped(parent, sk, nsk, 32);
    }

    char date[40], path[1100];
    vt_date_utc(date, sizeof date);
    vt_sb_printf(&md, "# vtrain report\n\nGenerated %s.", date);
    if (nr)
        vt_sb_printf(&md, " %d run(s). Convergence = first epoch within 1 point of the run's best test accuracy.", nr);
    vt_sb_puts(&md, "\n\n");
    vt_sb_printf(&html,
                 "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vtrain report</title>"
                 "<style>%s</style></head><body>\n<h1>vtrain report</h1>\n<p class=\"meta\">Generated %s.</p>\n",
                 vt_rep_css, date);
    if (nr) {
        vt_sb_puts(&md, "## Runs\n\n");
        vt_rep_md_runs(&md, runs, nr);
        vt_rep_md_where(&md, runs, nr);
        vt_sb_puts(&html,
                   "<h2>Runs</h2>\n<p class=\"meta\">Convergence: the first epoch whose test accuracy comes within "
                   "1 point of the run's best, and the training time until then.</p>\n");
        vt_rep_html_runs(&html, runs, nr);
        int seg = 0;
        for (int i = 0; i < nr; i++) seg |= runs[i].seg;
        if (seg) {
            static const char note[] = "Segmentation runs: test acc is pixel accuracy; mIoU is the mean over the "
                                       "classes of TP/(TP+FP+FN) with ignored pixels left out, and their "
                                       "convergence is by mIoU.";
            vt_sb_printf(&md, "\n%s\n", note);
            vt_sb_printf(&html, "<p class=\"meta\">%s</p>\n", note);
        }
    }
    vt_rep_notes(&md, &html, runs, nr, sk, nsk);
    if (nr) {
        vt_sb_puts(&md, "\n## Charts\n\n");
        vt_sb_puts(&html, "<h2>Charts</h2>\n");
        int any_seg = 0;
        for (int i = 0; i < nr; i++) any_seg |= runs[i].seg;
        for (int k = 0; k < VT_CH_COUNT; k++) {
            if ((k == VT_CH_MIOU_EPOCH || k == VT_CH_MIOU_TIME) && !any_seg) continue;
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
    for (int i = 0; i < nr; i++) vt_rep_run_free(&runs[i]);
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
