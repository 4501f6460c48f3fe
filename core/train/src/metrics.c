/* What a run reports in its folder: metrics.jsonl and metrics.csv (one line per epoch) and
 * summary.json, with the convergence figures. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "train_internal.h"

cJSON *tr_metrics_json(const vt_epoch_metrics *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", e->epoch);
    cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
    cJSON_AddNumberToObject(o, "train_acc", e->train_acc);
    cJSON_AddNumberToObject(o, "test_loss", e->test_loss);
    cJSON_AddNumberToObject(o, "test_acc", e->test_acc);
    cJSON_AddNumberToObject(o, "lr", e->lr);
    cJSON_AddNumberToObject(o, "epoch_seconds", e->epoch_seconds);
    cJSON_AddNumberToObject(o, "cum_seconds", e->cum_seconds);
    cJSON_AddNumberToObject(o, "images_per_s", e->images_per_s);
    return o;
}

/* Segmentation scores are fractions in [0,1]; NaN (no class had any pixel) is JSON's null. */
void tr_metrics_json_seg(const vt_trainer *t, int i, cJSON *o) {
    const vt_epoch_metrics *e = &t->hist[i];
    cJSON_AddNumberToObject(o, "test_miou", e->test_miou);
    cJSON_AddNumberToObject(o, "test_miou_practice", e->test_miou_practice);
    cJSON *iou = cJSON_CreateArray();
    for (int k = 0; k < t->n_classes && k < VT_TR_MAX_CLASSES; k++)
        cJSON_AddItemToArray(iou, cJSON_CreateNumber(t->hist_iou[(size_t)i * VT_TR_MAX_CLASSES + (size_t)k]));
    cJSON_AddItemToObject(o, "test_iou", iou);
}

vt_status tr_metrics_seg_from_json(vt_trainer *t, int i, const cJSON *o) {
    t->hist[i].test_miou = tr_jnum(o, "test_miou", NAN);
    t->hist[i].test_miou_practice = tr_jnum(o, "test_miou_practice", NAN);
    double *iou = t->hist_iou + (size_t)i * VT_TR_MAX_CLASSES;
    for (int k = 0; k < VT_TR_MAX_CLASSES; k++) iou[k] = NAN;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "test_iou"), *v;
    if (a && !cJSON_IsArray(a)) return vt_error(VT_ERR_FORMAT, "history[%d].test_iou is not a list", i);
    int k = 0;
    cJSON_ArrayForEach(v, a) {
        if (k < VT_TR_MAX_CLASSES) iou[k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        k++;
    }
    return VT_OK;
}

/* A number for a JSON line: null where it is not finite. */
static const char *jnum(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.6f", v);
    else snprintf(buf, n, "null");
    return buf;
}

/* The segmentation part of an epoch's metrics.jsonl line (from its leading comma, without the closing
 * brace) and of its metrics.csv row (NaN is an empty field). */
static size_t seg_jsonl(const vt_trainer *t, int i, char *out, size_t n) {
    const vt_epoch_metrics *e = &t->hist[i];
    char a[48], b[48];
    size_t k = (size_t)snprintf(out, n, ",\"test_miou\":%s,\"test_miou_practice\":%s,\"test_iou\":[",
                                jnum(a, sizeof a, e->test_miou), jnum(b, sizeof b, e->test_miou_practice));
    for (int c = 0; c < t->n_classes && k < n; c++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", c ? "," : "",
                              jnum(a, sizeof a, t->hist_iou[(size_t)i * VT_TR_MAX_CLASSES + (size_t)c]));
    if (k < n) k += (size_t)snprintf(out + k, n - k, "]");
    return k < n ? k : n - 1;
}

static size_t seg_csv(const vt_epoch_metrics *e, char *out, size_t n) {
    char a[48] = "", b[48] = "";
    if (isfinite(e->test_miou)) snprintf(a, sizeof a, "%.6f", e->test_miou);
    if (isfinite(e->test_miou_practice)) snprintf(b, sizeof b, "%.6f", e->test_miou_practice);
    size_t k = (size_t)snprintf(out, n, ",%s,%s", a, b);
    return k < n ? k : n - 1;
}

/* metrics.jsonl and metrics.csv are rewritten from the history, so a resumed run has them whole.
 * Segmentation runs have the columns test_miou, test_miou_practice (and per-class test_iou in the JSON
 * lines); classification runs keep the columns they always had. */
vt_status tr_write_metrics(const vt_trainer *t) {
    if (t->rank != 0) return VT_OK;
    size_t cap = 256 + (size_t)t->n_hist * (400 + (t->seg ? 100 + 16 * (size_t)t->n_classes : 0));
    char *jl = malloc(cap), *csv = malloc(cap);
    if (!jl || !csv) {
        free(jl);
        free(csv);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    size_t a = 0, b = 0;
    b += (size_t)snprintf(csv + b, cap - b,
                          "epoch,train_loss,train_acc,test_loss,test_acc,lr,epoch_seconds,cum_seconds,%s\n",
                          t->seg ? "images_per_s,test_miou,test_miou_practice" : "images_per_s");
    jl[0] = 0;
    for (int i = 0; i < t->n_hist; i++) {
        const vt_epoch_metrics *e = &t->hist[i];
        a += (size_t)snprintf(
            jl + a, cap - a,
            "{\"epoch\":%d,\"train_loss\":%.6f,\"train_acc\":%.4f,\"test_loss\":%.6f,\"test_acc\":%.4f,"
            "\"lr\":%.8g,\"epoch_seconds\":%.3f,\"cum_seconds\":%.3f,\"images_per_s\":%.1f",
            e->epoch, e->train_loss, e->train_acc, e->test_loss, e->test_acc, e->lr, e->epoch_seconds, e->cum_seconds,
            e->images_per_s);
        if (t->seg) a += seg_jsonl(t, i, jl + a, cap - a);
        a += (size_t)snprintf(jl + a, cap - a, "}\n");
        b += (size_t)snprintf(csv + b, cap - b, "%d,%.6f,%.4f,%.6f,%.4f,%.8g,%.3f,%.3f,%.1f", e->epoch, e->train_loss,
                              e->train_acc, e->test_loss, e->test_acc, e->lr, e->epoch_seconds, e->cum_seconds,
                              e->images_per_s);
        if (t->seg) b += seg_csv(e, csv + b, cap - b);
        b += (size_t)snprintf(csv + b, cap - b, "\n");
    }
    vt_status s = tr_write_text(t->cfg.out_dir, "metrics.jsonl", jl, "w");
    if (s == VT_OK) s = tr_write_text(t->cfg.out_dir, "metrics.csv", csv, "w");
    free(jl);
    free(csv);
    return s;
}

/* Convergence: the first epoch whose test accuracy (segmentation: mIoU in percent) is within 1 point of
 * the run's best. */
void tr_summarise(const vt_trainer *t, vt_train_result *r) {
    memset(r, 0, sizeof *r);
    r->best_test_miou = r->final_test_miou = NAN;
    if (t->seg) {
        double best = NAN;
        for (int i = 0; i < t->n_hist; i++)
            if (isnan(best) || t->hist[i].test_miou > best) {
                best = t->hist[i].test_miou;
                r->best_epoch = t->hist[i].epoch;
                r->best_test_acc = t->hist[i].test_acc;
            }
        r->best_test_miou = best;
        for (int i = 0; i < t->n_hist; i++)
            if (tr_score(t, &t->hist[i]) >= 100.0 * best - 1.0) {
                r->convergence_epoch = t->hist[i].epoch;
                r->convergence_seconds = t->hist[i].cum_seconds;
                break;
            }
        if (t->n_hist) r->final_test_miou = t->hist[t->n_hist - 1].test_miou;
    }
    r->epochs_done = t->n_hist;
    r->global_step = t->global_step;
    r->params = vt_params_param_count(t->m);
    r->time_to_target_seconds = t->time_to_target;
    r->cum_seconds = t->cum_seconds;
    for (int i = 0; i < t->n_hist && !t->seg; i++)
        if (t->hist[i].test_acc > r->best_test_acc || i == 0) {
            r->best_test_acc = t->hist[i].test_acc;
            r->best_epoch = t->hist[i].epoch;
        }
    for (int i = 0; i < t->n_hist && !t->seg; i++)
        if (t->hist[i].test_acc >= r->best_test_acc - 1.0) {
            r->convergence_epoch = t->hist[i].epoch;
            r->convergence_seconds = t->hist[i].cum_seconds;
            break;
        }
    if (t->n_hist) {
        r->final_test_acc = t->hist[t->n_hist - 1].test_acc;
        r->final_test_loss = t->hist[t->n_hist - 1].test_loss;
        double img = 0, sec = 0;
        for (int i = 0; i < t->n_hist; i++) {
            img += t->hist[i].images_per_s * t->hist[i].epoch_seconds;
            sec += t->hist[i].epoch_seconds;
        }
        r->images_per_s = sec > 0 ? img / sec : 0;
    }
}

vt_status tr_write_summary(const vt_trainer *t, const vt_train_result *r) {
    if (t->rank != 0) return VT_OK;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "problem", t->cfg.problem);
    cJSON_AddNumberToObject(j, "problem_id", t->prob->id);
    cJSON_AddStringToObject(j, "model", vt_arch_name(t->prob->arch));
    cJSON_AddNumberToObject(j, "params", (double)r->params);
    cJSON_AddStringToObject(j, "optimizer", t->cfg.optimizer);
    cJSON_AddNumberToObject(j, "epochs", r->epochs_done);
    cJSON_AddNumberToObject(j, "best_test_acc", r->best_test_acc);
    cJSON_AddNumberToObject(j, "best_epoch", r->best_epoch);
    cJSON_AddNumberToObject(j, "final_test_acc", r->final_test_acc);
    if (t->seg) {
        /* fractions; best_epoch above is the epoch of the best mIoU */
        cJSON_AddNumberToObject(j, "best_test_miou", r->best_test_miou);
        cJSON_AddNumberToObject(j, "final_test_miou", r->final_test_miou);
    }
    cJSON_AddNumberToObject(j, "convergence_epoch", r->convergence_epoch);
    cJSON_AddNumberToObject(j, "convergence_seconds", r->convergence_seconds);
    cJSON_AddNumberToObject(j, "seconds_per_epoch", r->epochs_done ? r->cum_seconds / r->epochs_done : 0);
    cJSON_AddNumberToObject(j, "images_per_s", r->images_per_s);
    cJSON_AddStringToObject(j, "backend", t->be->info.backend);
    cJSON_AddStringToObject(j, "device", t->be->info.name);
    cJSON_AddStringToObject(j, "data", t->data_path);
    cJSON_AddNumberToObject(j, "target_acc", t->cfg.target_acc);
    if (t->cfg.target_acc > 0 && t->time_to_target > 0)
        cJSON_AddNumberToObject(j, "time_to_target_seconds", t->time_to_target);
    else cJSON_AddNullToObject(j, "time_to_target_seconds");
    cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
    cJSON_AddBoolToObject(j, "cut", r->cut);
    if (r->cut) cJSON_AddStringToObject(j, "cut_reason", r->cut_reason);
    else cJSON_AddNullToObject(j, "cut_reason");
    cJSON_AddNumberToObject(j, "global_step", (double)t->global_step);
    cJSON_AddNumberToObject(j, "skipped_steps", (double)t->skipped_steps);
    vt_status s = tr_write_json_file(t->cfg.out_dir, "summary.json", j);
    cJSON_Delete(j);
    return s;
}
