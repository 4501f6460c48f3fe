/* Reading a run folder for the report: metrics.jsonl (one object per epoch), config.json and
 * summary.json, and the skipped.json of `--problem all`. Warnings go through vt_log. */
#define _POSIX_C_SOURCE 200809L
#include "report_run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void vt_rep_run_free(vt_run *r) {
    free(r->epoch);
    free(r->train_loss);
    free(r->test_acc);
    free(r->cum_seconds);
    free(r->train_acc);
    free(r->test_loss);
    free(r->lr);
    free(r->test_miou);
    memset(r, 0, sizeof *r);
}

static double vt_jnum(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

void vt_rep_jstr(const cJSON *o, const char *key, char *dst, size_t n) {
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
    int cap[8] = {0, 0, 0, 0, 0, 0, 0, 0}, lineno = 0;
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
            vt_log(VT_LOG_WARN, "vtrain report: warning: %s:%d: %s; line skipped\n", path, lineno,
                   o ? "no numeric test_acc" : "not valid JSON");
            cJSON_Delete(o);
            continue;
        }
        double ep = vt_jnum(o, "epoch");
        if (!isfinite(ep)) ep = r->n + 1;
        int ok = vt_push(&r->epoch, r->n, &cap[0], ep) &&
                 vt_push(&r->train_loss, r->n, &cap[1], vt_jnum(o, "train_loss")) &&
                 vt_push(&r->test_acc, r->n, &cap[2], acc) &&
                 vt_push(&r->cum_seconds, r->n, &cap[3], vt_jnum(o, "cum_seconds")) &&
                 vt_push(&r->train_acc, r->n, &cap[4], vt_jnum(o, "train_acc")) &&
                 vt_push(&r->test_loss, r->n, &cap[5], vt_jnum(o, "test_loss")) &&
                 vt_push(&r->lr, r->n, &cap[6], vt_jnum(o, "lr")) &&
                 vt_push(&r->test_miou, r->n, &cap[7], 100.0 * vt_jnum(o, "test_miou"));
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
        if (!*missing) vt_log(VT_LOG_WARN, "vtrain report: warning: %s\n", vt_last_error());
        return NULL;
    }
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(o)) {
        vt_log(VT_LOG_WARN, "vtrain report: warning: %s is not a valid JSON object; using what metrics.jsonl gives\n",
               path);
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void vt_run_fill(vt_run *r, const cJSON *o) {
    vt_rep_jstr(o, "problem", r->problem, sizeof r->problem);
    vt_rep_jstr(o, "model", r->model, sizeof r->model);
    vt_rep_jstr(o, "optimizer", r->optimizer, sizeof r->optimizer);
    vt_rep_jstr(o, "backend", r->backend, sizeof r->backend);
    vt_rep_jstr(o, "device", r->device, sizeof r->device);
    double v;
    if (isfinite(v = vt_jnum(o, "params"))) r->params = v;
    if (isfinite(v = vt_jnum(o, "epochs"))) r->epochs = (int)v;
}

vt_status vt_rep_run_load(const char *dir, vt_run *r) {
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
        vt_rep_run_free(r);
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
    /* segmentation: the best epoch by mIoU (ties: the first) */
    r->best_miou = r->final_miou = NAN;
    for (int i = 0; i < r->n; i++) {
        if (!isfinite(r->test_miou[i])) continue;
        if (!r->seg || r->test_miou[i] > r->best_miou) {
            r->best_miou = r->test_miou[i];
            r->best_miou_epoch = (int)r->epoch[i];
        }
        r->seg = 1;
    }
    if (r->seg) {
        r->final_miou = r->test_miou[r->n - 1];
        /* the trainer ranks segmentation epochs by mIoU (convergence too): so does the curve here */
        int si = vt_report_convergence_index(r->test_miou, r->n, 1.0);
        if (si >= 0) {
            r->conv_epoch = (int)r->epoch[si];
            r->conv_seconds = r->cum_seconds[si];
        }
    }
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
    if (missing) vt_log(VT_LOG_INFO, "vtrain report: note: %s is missing; figures derived from metrics.jsonl\n", path);
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
        vt_rep_jstr(sum, "cut_reason", r->cut_reason, sizeof r->cut_reason);
        r->skipped_steps = vt_jnum(sum, "skipped_steps");
    }
    cJSON_Delete(sum);
    return VT_OK;
}

int vt_rep_read_skipped(const char *dir, vt_skipped *sk, int have, int max) {
    char path[700], *text = NULL;
    snprintf(path, sizeof path, "%s/skipped.json", dir);
    if (vt_rep_read_file(path, &text, NULL) != VT_OK) {
        vt_clear_error();
        return have;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(j)) {
        vt_log(VT_LOG_WARN, "vtrain report: warning: %s is not a JSON list; ignored\n", path);
        cJSON_Delete(j);
        return have;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (have >= max) break;
        char prob[64] = "", why[600] = "";
        vt_rep_jstr(e, "problem", prob, sizeof prob);
        vt_rep_jstr(e, "reason", why, sizeof why);
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
