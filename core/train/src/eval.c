/* Evaluation: loss and accuracy over the whole test set, and `vtrain eval` of a checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static vt_status zero_metrics(vt_tensor *m) {
    float z[3] = {0, 0, 0};
    return vt_tensor_upload(m, z, sizeof z);
}

/* Zeroes the device's confusion counts with FILL (they stay on the device for the whole evaluation). */
static vt_status zero_confusion(vt_trainer *t) {
    vt_node clear;
    memset(&clear, 0, sizeof clear);
    clear.op = VT_OP_FILL;
    clear.p.fill.value = 0.0f;
    clear.dst[0] = t->te_conf;
    snprintf(clear.label, sizeof clear.label, "confusion.clear");
    vt_step_ctx ctx = {.step = 0, .seed = t->cfg.seed, .lr = 0.0f, .batch_start = 0};
    return vt_backend_compute(t->be, &clear, &ctx);
}

/* The evaluation's confusion matrix, read back once, into t->te_scores. */
static vt_status seg_scores(vt_trainer *t) {
    int k = t->n_classes;
    size_t cells = (size_t)(k + 1) * (size_t)(k + 1);
    int32_t *cnt = malloc(cells * sizeof *cnt);
    if (!cnt) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = vt_tensor_download(t->te_conf, cnt, cells * sizeof *cnt);
    vt_seg_confusion c = {0};
    if (s == VT_OK) s = vt_seg_confusion_init(&c, k);
    for (size_t i = 0; s == VT_OK && i < cells; i++) {
        if (cnt[i] < 0) s = vt_error(VT_ERR_NUMERIC, "confusion matrix entry %zu is %d (overflow?)", i, cnt[i]);
        else c.m[i] = (uint64_t)cnt[i];
    }
    if (s == VT_OK) {
        vt_seg_scores_compute(&c, &t->te_scores);
        t->have_scores = 1;
    }
    vt_seg_confusion_free(&c);
    free(cnt);
    return s;
}

/* Loss and accuracy over the whole test set, last partial batch included; one read-back. Each rank
 * evaluates its share and the sums are added up. Segmentation: accuracy over the pixels of known
 * truth, and the confusion matrix (te_scores); every pixel of the split is counted once. */
vt_status tr_evaluate(vt_trainer *t, double *loss, double *acc) {
    VT_TRY(tr_dp_bn_states(t));
    VT_TRY(zero_metrics(t->te_metrics));
    t->have_scores = 0;
    if (t->seg) VT_TRY(zero_confusion(t));
    vt_step_ctx ctx = {.step = 0, .seed = t->cfg.seed, .lr = 0.0f, .batch_start = 0};
    int64_t full = t->eval_batch > 0 ? (t->te_hi - t->te_lo) / t->eval_batch : 0;
    for (int64_t i = 0; i < full; i++) {
        ctx.batch_start = t->te_lo + i * t->eval_batch;
        VT_TRY(vt_graph_run(t->eval_g, -1, &ctx));
    }
    if (t->eval_rem_g) {
        ctx.batch_start = t->te_lo + full * t->eval_batch;
        VT_TRY(vt_graph_run(t->eval_rem_g, -1, &ctx));
    }
    double m[3];
    VT_TRY(tr_read_metrics(t->te_metrics, m));
    if (t->seg) VT_TRY(seg_scores(t));
    VT_TRY(tr_dp_sum(t, m, 3));
    *loss = m[2] > 0 ? m[0] / m[2] : 0;
    *acc = m[2] > 0 ? 100.0 * m[1] / m[2] : 0;
    if (!isfinite(*loss)) return vt_error(VT_ERR_NUMERIC, "test loss is %g", *loss);
    return VT_OK;
}

/* A checkpoint's model on the backend with its run's test split, evaluated; recorded_* from its metadata. */
static vt_status eval_ckpt(vt_trainer *t, const char *ckpt, const char *data, vt_backend *be, double *test_loss,
                           double *test_acc, double *recorded_acc, double *recorded_miou) {
    vt_tensor_dict d = {0};
    VT_TRY(vt_check_regular_file(ckpt, "checkpoint"));
    VT_TRY(vt_ckpt_read(ckpt, &d));
    cJSON *meta = cJSON_Parse(d.meta_json ? d.meta_json : "");
    vt_train_cfg c;
    vt_status s = meta ? tr_cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), ckpt, &c)
                       : vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", ckpt);
    *recorded_acc = meta ? tr_jnum(meta, "test_acc", -1) : -1;
    *recorded_miou = meta ? tr_jnum(meta, "test_miou", NAN) : NAN;
    cJSON_Delete(meta);
    vt_trainer *T = t;
    if (s == VT_OK) {
        if (data && data[0]) copy_str(c.data, sizeof c.data, data);
        c.pretrained[0] = 0;
        c.quiet = 1;
        s = tr_resolve_cfg(&c, T);
    }
    vt_dataset train = {0}, test = {0};
    if (s == VT_OK) {
        /* Only the test split matters; a one-batch slice of train keeps the setup cheap. */
        T->cfg.limit_train = T->cfg.batch_size;
        s = tr_load_data(T, &train, &test);
    }
    if (s == VT_OK) s = tr_setup(T, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK) s = tr_ckpt_load_tensors(T, &d, ckpt, 0);
    if (s == VT_OK) s = tr_evaluate(T, test_loss, test_acc);
    vt_dict_free(&d);
    return s;
}

vt_status vt_eval_checkpoint(const char *ckpt, const char *data, vt_backend *be, double *test_loss, double *test_acc,
                             double *recorded_acc) {
    vt_trainer T;
    memset(&T, 0, sizeof T);
    double rec_miou;
    vt_status s = eval_ckpt(&T, ckpt, data, be, test_loss, test_acc, recorded_acc, &rec_miou);
    tr_free(&T);
    return s;
}

vt_status vt_eval_checkpoint_seg(const char *ckpt, const char *data, vt_backend *be, vt_seg_eval *out) {
    memset(out, 0, sizeof *out);
    vt_trainer T;
    memset(&T, 0, sizeof T);
    double acc = 0, rec_acc;
    vt_status s = eval_ckpt(&T, ckpt, data, be, &out->loss, &acc, &rec_acc, &out->recorded_miou);
    if (s == VT_OK && !T.seg)
        s = vt_error(VT_ERR_INVALID_ARG, "%s: a checkpoint of %s, a classification problem (use vt_eval_checkpoint)",
                     ckpt, T.cfg.problem);
    if (s == VT_OK) {
        out->pixel_acc = T.te_scores.pixel_acc;
        out->miou = T.te_scores.miou;
        out->miou_practice = T.te_scores.miou_practice;
        out->n_classes = T.n_classes;
        for (int i = 0; i < T.n_classes && i < 256; i++) out->iou[i] = T.te_scores.iou[i];
    }
    tr_free(&T);
    return s;
}
