/* Checkpoint files and the trainer: what a checkpoint holds (tensors and metadata), its checks when
 * read back, and the progress and history of a resumed run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

/* Checkpoint tensors: parameters and BN statistics under their PyTorch names, optimizer slots as
 * "optim.<slot>.<name>", so a checkpoint is independent of the block layout and the backend. */
vt_status tr_ckpt_save(vt_trainer *t, const char *path, double test_acc) {
    if (t->rank != 0) return VT_OK; /* one writer: the ranks hold the same state */
    vt_tensor_dict d = {0};
    vt_status s = VT_OK;
    int bad = 0;
    VT_TRY(tr_params_nonfinite(t, &bad));
    if (bad) return vt_error(VT_ERR_NUMERIC, "%s: not written: the parameters hold NaN/Inf values", path);
    size_t maxb = 0;
    for (int i = 0; i < vt_params_n_params(t->m); i++)
        if (vt_tensor_nbytes(vt_params_param_at(t->m, i)) > maxb) maxb = vt_tensor_nbytes(vt_params_param_at(t->m, i));
    for (int i = 0; i < vt_params_n_states(t->m); i++)
        if (vt_tensor_nbytes(vt_params_state_at(t->m, i)) > maxb) maxb = vt_tensor_nbytes(vt_params_state_at(t->m, i));
    void *buf = malloc(maxb ? maxb : 4);
    if (!buf) return vt_error(VT_ERR_OOM, "out of host memory");
    VT_TRY(vt_backend_sync(t->be));
    for (int i = 0; i < vt_params_n_params(t->m) && s == VT_OK; i++) {
        vt_tensor *p = vt_params_param_at(t->m, i);
        s = vt_tensor_download(p, buf, vt_tensor_nbytes(p));
        if (s == VT_OK) s = vt_dict_add(&d, p->name, VT_F32, p->ndim, p->shape, buf);
        for (int slot = 0; slot < vt_params_n_opt_slots(t->m) && s == VT_OK; slot++) {
            vt_tensor view = *p;
            view.buf = vt_params_flat_opt(t->m, slot, -1)->buf;
            s = vt_tensor_download(&view, buf, vt_tensor_nbytes(p));
            char name[200];
            snprintf(name, sizeof name, "optim.%d.%s", slot, p->name);
            if (s == VT_OK) s = vt_dict_add(&d, name, VT_F32, p->ndim, p->shape, buf);
        }
    }
    for (int i = 0; i < vt_params_n_states(t->m) && s == VT_OK; i++) {
        vt_tensor *p = vt_params_state_at(t->m, i);
        s = vt_tensor_download(p, buf, vt_tensor_nbytes(p));
        if (s == VT_OK) s = vt_dict_add(&d, p->name, VT_F32, p->ndim, p->shape, buf);
    }
    free(buf);
    if (s == VT_OK) {
        cJSON *meta = cJSON_CreateObject();
        cJSON_AddStringToObject(meta, "format", "vtrain-checkpoint");
        cJSON_AddItemToObject(meta, "config", tr_cfg_to_json(t));
        cJSON_AddNumberToObject(meta, "epoch", t->epoch);
        cJSON_AddNumberToObject(meta, "step_in_epoch", (double)t->step_in_epoch);
        cJSON_AddNumberToObject(meta, "global_step", (double)t->global_step);
        cJSON_AddNumberToObject(meta, "best_test_acc", t->best_acc);
        cJSON_AddNumberToObject(meta, "best_epoch", t->best_epoch);
        cJSON_AddNumberToObject(meta, "test_acc", test_acc);
        if (t->seg) {
            /* the mIoU of these weights (null when not evaluated: the initial or a mid-epoch checkpoint) */
            cJSON_AddNumberToObject(meta, "best_test_miou", t->best_miou);
            cJSON_AddNumberToObject(meta, "test_miou", t->have_scores ? t->te_scores.miou : NAN);
        }
        cJSON_AddNumberToObject(meta, "cum_seconds", t->cum_seconds);
        cJSON_AddNumberToObject(meta, "time_to_target", t->time_to_target);
        cJSON_AddNumberToObject(meta, "step_offset0", (double)t->ocfg.step_offset[0]);
        cJSON_AddNumberToObject(meta, "step_offset1", (double)t->ocfg.step_offset[1]);
        cJSON_AddNumberToObject(meta, "frozen_groups", t->frozen);
        cJSON_AddNumberToObject(meta, "skipped_steps", (double)t->skipped_steps);
        cJSON_AddNumberToObject(meta, "bn_batches_tracked", (double)t->bn_tracked);
        /* what a user of the exported weights needs to feed the model */
        if (t->class_names) {
            cJSON *cn = cJSON_CreateArray();
            for (int i = 0; i < t->n_classes; i++) cJSON_AddItemToArray(cn, cJSON_CreateString(t->class_names[i]));
            cJSON_AddItemToObject(meta, "class_names", cn);
        }
        float mean[3], std[3];
        int nc = t->in_c == 1 ? 1 : 3;
        tr_norm_of(t->in_c, mean, std);
        cJSON *norm = cJSON_CreateObject(), *jm = cJSON_CreateArray(), *js = cJSON_CreateArray();
        for (int c = 0; c < nc; c++) {
            cJSON_AddItemToArray(jm, tr_float_json(mean[c]));
            cJSON_AddItemToArray(js, tr_float_json(std[c]));
        }
        cJSON_AddItemToObject(norm, "mean", jm);
        cJSON_AddItemToObject(norm, "std", js);
        cJSON_AddItemToObject(meta, "normalize", norm);
        int side_h = t->mcfg.input_size > 0 ? t->mcfg.input_size : t->in_h;
        int side_w = t->mcfg.input_size > 0 ? t->mcfg.input_size : t->in_w;
        cJSON *isz = cJSON_CreateArray();
        cJSON_AddItemToArray(isz, cJSON_CreateNumber(t->in_c));
        cJSON_AddItemToArray(isz, cJSON_CreateNumber(side_h));
        cJSON_AddItemToArray(isz, cJSON_CreateNumber(side_w));
        cJSON_AddItemToObject(meta, "input_size", isz);
        /* RNG state: every stream is a pure function of (seed, epoch, step), so these suffice. */
        cJSON_AddNumberToObject(meta, "rng_seed", t->cfg.seed);
        cJSON *part = cJSON_CreateArray();
        cJSON_AddItemToArray(part, cJSON_CreateNumber(t->part_loss));
        cJSON_AddItemToArray(part, cJSON_CreateNumber(t->part_correct));
        cJSON_AddItemToArray(part, cJSON_CreateNumber(t->part_count));
        cJSON_AddItemToObject(meta, "partial_train_metrics", part);
        cJSON *hist = cJSON_CreateArray();
        for (int i = 0; i < t->n_hist; i++) {
            cJSON *e = tr_metrics_json(&t->hist[i]);
            if (t->seg) tr_metrics_json_seg(t, i, e);
            cJSON_AddItemToArray(hist, e);
        }
        cJSON_AddItemToObject(meta, "history", hist);
        char *txt = cJSON_PrintUnformatted(meta);
        cJSON_Delete(meta);
        if (!txt) s = vt_error(VT_ERR_OOM, "out of host memory");
        else {
            s = vt_dict_set_meta(&d, txt);
            free(txt);
        }
    }
    if (s == VT_OK) s = vt_ckpt_write(path, &d);
    vt_dict_free(&d);
    return s;
}

static void shape_str(char *out, size_t n, vt_dtype dt, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(out, n, "%s [", vt_dtype_name(dt));
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

/* A checkpoint tensor must have the model tensor's dtype and shape (same byte count is not enough: a
 * transposed weight has it) and only finite values. */
static vt_status check_host_tensor(const vt_host_tensor *h, const vt_tensor *p, const char *name, const char *file) {
    int same = h->dtype == p->dtype && h->ndim == p->ndim && h->nbytes == vt_tensor_nbytes(p);
    for (int i = 0; i < p->ndim && same; i++) same = h->shape[i] == p->shape[i];
    if (!same) {
        char have[96], need[96];
        shape_str(have, sizeof have, h->dtype, h->ndim, h->shape);
        shape_str(need, sizeof need, p->dtype, p->ndim, p->shape);
        return vt_error(VT_ERR_FORMAT, "%s: tensor %s is %s, the model needs %s", file, name, have, need);
    }
    const float *f = h->data;
    for (size_t i = 0; h->dtype == VT_F32 && i < h->nbytes / sizeof *f; i++)
        if (!isfinite(f[i]))
            return vt_error(VT_ERR_NUMERIC,
                            "%s: tensor %s holds NaN/Inf (element %zu is %g): the checkpoint is not usable", file, name,
                            i, (double)f[i]);
    return VT_OK;
}

/* need_opt: resuming needs the optimizer slots; eval does not read them. */
vt_status tr_ckpt_load_tensors(vt_trainer *t, const vt_tensor_dict *d, const char *file, int need_opt) {
    for (int i = 0; i < vt_params_n_params(t->m); i++) {
        vt_tensor *p = vt_params_param_at(t->m, i);
        const vt_host_tensor *h = vt_dict_find(d, p->name);
        if (!h)
            return vt_error(VT_ERR_FORMAT, "%s: tensor %s is missing (checkpoint of another model?)", file, p->name);
        VT_TRY(check_host_tensor(h, p, p->name, file));
        VT_TRY(vt_tensor_upload(p, h->data, h->nbytes));
        if (!need_opt) continue;
        for (int slot = 0; slot < vt_params_n_opt_slots(t->m); slot++) {
            char name[200];
            snprintf(name, sizeof name, "optim.%d.%s", slot, p->name);
            const vt_host_tensor *o = vt_dict_find(d, name);
            if (!o)
                return vt_error(VT_ERR_FORMAT, "%s: optimizer state %s is missing (another optimizer?)", file, name);
            VT_TRY(check_host_tensor(o, p, name, file));
            vt_tensor view = *p;
            view.buf = vt_params_flat_opt(t->m, slot, -1)->buf;
            VT_TRY(vt_tensor_upload(&view, o->data, o->nbytes));
        }
    }
    for (int i = 0; i < vt_params_n_states(t->m); i++) {
        vt_tensor *p = vt_params_state_at(t->m, i);
        const vt_host_tensor *h = vt_dict_find(d, p->name);
        if (!h) return vt_error(VT_ERR_FORMAT, "%s: state %s is missing (checkpoint of another model?)", file, p->name);
        VT_TRY(check_host_tensor(h, p, p->name, file));
        VT_TRY(vt_tensor_upload(p, h->data, h->nbytes));
    }
    return VT_OK;
}

static vt_status resume_fields(vt_trainer *t, const cJSON *meta, const char *file) {
    double x = 0;
#define VT_META(key, lo, hi, whole, dst, type)                    \
    VT_TRY(tr_jfield(meta, "", key, 0, lo, hi, whole, file, &x)); \
    dst = (type)x
    VT_META("epoch", 0, 1e6, 1, t->epoch, int);
    VT_META("step_in_epoch", 0, 1e15, 1, t->step_in_epoch, int64_t);
    VT_META("global_step", 0, 1e15, 1, t->global_step, int64_t);
    VT_META("best_test_acc", 0, 100, 0, t->best_acc, double);
    VT_META("best_epoch", 0, 1e6, 1, t->best_epoch, int);
    t->best_miou = tr_jnum(meta, "best_test_miou", NAN);
    VT_META("cum_seconds", 0, 1e300, 0, t->cum_seconds, double);
    VT_META("time_to_target", 0, 1e300, 0, t->time_to_target, double);
    VT_META("skipped_steps", 0, 1e15, 1, t->skipped_steps, int64_t);
    VT_META("bn_batches_tracked", 0, 1e15, 1, t->bn_tracked, int64_t);
    VT_META("step_offset0", 0, 1e15, 1, t->ocfg.step_offset[0], int64_t);
    VT_META("step_offset1", 0, 1e15, 1, t->ocfg.step_offset[1], int64_t);
#undef VT_META
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(meta, "partial_train_metrics");
    if (cJSON_IsArray(part) && cJSON_GetArraySize(part) == 3) {
        double v[3] = {0, 0, 0};
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, part) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0))
                return vt_error(VT_ERR_FORMAT, "%s: partial_train_metrics[%d] is not a number >= 0", file, k);
            v[k++] = e->valuedouble;
        }
        t->part_loss = v[0];
        t->part_correct = v[1];
        t->part_count = v[2];
    }
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(meta, "history");
    if (hist && !cJSON_IsArray(hist)) return vt_error(VT_ERR_FORMAT, "%s: history is not a list", file);
    int nh = cJSON_GetArraySize(hist); /* one pass; the loop below walks the list once more */
    if (nh > t->epoch)
        return vt_error(VT_ERR_FORMAT, "%s: history has %d entries, more than the %d epochs done", file, nh, t->epoch);
    size_t cap = (size_t)nh + (size_t)(t->cfg.epochs > t->epoch ? t->cfg.epochs - t->epoch : 0) + 1;
    t->hist = calloc(cap, sizeof *t->hist);
    if (!t->hist) return vt_error(VT_ERR_OOM, "out of host memory");
    t->cap_hist = (int)cap;
    if (t->prob->segmentation) {
        t->hist_iou = malloc(cap * VT_TR_MAX_CLASSES * sizeof *t->hist_iou);
        if (!t->hist_iou) return vt_error(VT_ERR_OOM, "out of host memory");
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, hist) {
        vt_epoch_metrics *m = &t->hist[t->n_hist];
        m->epoch = (int)fmin(fmax(tr_jnum(e, "epoch", t->n_hist + 1), 0), 1e6);
        m->train_loss = tr_jnum(e, "train_loss", 0);
        m->train_acc = tr_jnum(e, "train_acc", 0);
        m->test_loss = tr_jnum(e, "test_loss", 0);
        m->test_acc = tr_jnum(e, "test_acc", 0);
        m->lr = tr_jnum(e, "lr", 0);
        m->epoch_seconds = tr_jnum(e, "epoch_seconds", 0);
        m->cum_seconds = tr_jnum(e, "cum_seconds", 0);
        m->images_per_s = tr_jnum(e, "images_per_s", 0);
        m->test_miou = m->test_miou_practice = NAN;
        if (t->prob->segmentation) VT_TRY(tr_metrics_seg_from_json(t, t->n_hist, e));
        t->n_hist++;
    }
    return VT_OK;
}

/* Progress, history and counters of a checkpoint's run; on failure the caller frees the trainer. */
vt_status tr_resume_state(vt_trainer *t, const vt_tensor_dict *d, const char *file) {
    cJSON *meta = cJSON_Parse(d->meta_json ? d->meta_json : "");
    if (!meta) return vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", file);
    vt_status s = resume_fields(t, meta, file);
    cJSON_Delete(meta);
    return s;
}
