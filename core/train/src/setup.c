/* Setting a run up on the backend: the datasets resident on the device, the model's parameters
 * (fresh or pretrained), the train graph (data, forward, loss, backward, optimizer) and the eval graphs. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vt/rng.h"
#include "vt/weights.h"
#include "train_internal.h"

static const float vt_mean[3] = {0.485f, 0.456f, 0.406f};
static const float vt_std[3] = {0.229f, 0.224f, 0.225f};

static int opt_slots(const vt_trainer *t) {
    if (t->ocfg.kind == VT_OPTIM_SGD) return t->ocfg.momentum != 0.0f ? 1 : 0;
    return 2;
}

static vt_status upload_dataset(vt_trainer *t, const vt_dataset *d, const char *split, vt_tensor **img, vt_tensor **lab,
                                vt_tensor **perm) {
    char name[48];
    snprintf(name, sizeof name, "%s.images", split);
    VT_TRY(vt_tensor_new(t->be, name, VT_U8, 4, (int64_t[]){d->n, d->c, d->h, d->w}, img));
    VT_TRY(vt_tensor_upload(*img, d->images, (size_t)d->n * (size_t)d->c * (size_t)d->h * (size_t)d->w));
    snprintf(name, sizeof name, "%s.labels", split);
    if (d->masks) {
        VT_TRY(vt_tensor_new(t->be, name, VT_U8, 3, (int64_t[]){d->n, d->h, d->w}, lab));
        VT_TRY(vt_tensor_upload(*lab, d->masks, (size_t)d->n * (size_t)d->h * (size_t)d->w));
    } else {
        VT_TRY(vt_tensor_new(t->be, name, VT_I32, 1, &d->n, lab));
        VT_TRY(vt_tensor_upload(*lab, d->labels, (size_t)d->n * sizeof(int32_t)));
    }
    snprintf(name, sizeof name, "%s.perm", split);
    VT_TRY(vt_tensor_new(t->be, name, VT_I32, 1, &d->n, perm));
    int32_t *id = malloc((size_t)d->n * sizeof *id);
    if (!id) return vt_error(VT_ERR_OOM, "out of host memory");
    for (int64_t i = 0; i < d->n; i++) id[i] = (int32_t)i;
    vt_status s = vt_tensor_upload(*perm, id, (size_t)d->n * sizeof *id);
    free(id);
    return s;
}

/* The per-channel normalisation BATCH_PREP applies (ImageNet's for colour, its grey mean for one channel). */
void tr_norm_of(int channels, float mean[3], float std[3]) {
    for (int c = 0; c < 3; c++) {
        mean[c] = vt_mean[c];
        std[c] = vt_std[c];
    }
    if (channels == 1) {
        mean[0] = 0.449f;
        std[0] = 0.226f;
    }
}

/* BATCH_PREP node at the head of a graph: x [B,C,H,W] f32 and y [B] i32 from the resident dataset; for
 * segmentation x [B,C,oh,ow] (a crop: random in training, centred with center = 1) and y [B,oh,ow] i32
 * from the u8 masks. Segmentation crops without padding: a padded border would be all ignored pixels. */
static vt_status add_data(vt_trainer *t, vt_graph *g, int B, int augment, int center, int oh, int ow, vt_tensor *img,
                          vt_tensor *lab, vt_tensor *perm, vt_tensor **x, vt_tensor **y) {
    vt_graph_set_phase(g, VT_PHASE_DATA);
    vt_graph_external(g, img);
    vt_graph_external(g, lab);
    vt_graph_external(g, perm);
    if (!t->seg) {
        oh = (int)img->shape[2];
        ow = (int)img->shape[3];
    }
    *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){B, img->shape[1], oh, ow});
    *y = t->seg ? vt_graph_tensor(g, "labels", VT_I32, 3, (int64_t[]){B, oh, ow})
                : vt_graph_tensor(g, "labels", VT_I32, 1, (int64_t[]){B});
    if (!*x || !*y) return vt_graph_status(g);
    vt_op_params p = {.prep = {.pad = augment && !t->seg ? 4 : 0, .flip = augment, .salt = 0xDA7Au, .center = center}};
    float mean[3], std[3];
    tr_norm_of((int)img->shape[1], mean, std);
    for (int c = 0; c < 4; c++) {
        p.prep.mean[c] = c < 3 ? mean[c] : 0.5f;
        p.prep.std[c] = c < 3 ? std[c] : 0.25f;
    }
    vt_tensor *src[3] = {img, lab, perm}, *dst[2] = {*x, *y};
    if (vt_graph_add_node(g, VT_OP_BATCH_PREP, &p, src, 3, dst, 2, "data") < 0) return vt_graph_status(g);
    vt_graph_set_phase(g, VT_PHASE_FORWARD);
    return VT_OK;
}

/* The model's logits, or an error when the model cannot be built for this input. */
static vt_status build_model(vt_trainer *t, vt_graph *g, vt_tensor *x, vt_tensor **logits) {
    *logits = vt_model_build(g, &t->mcfg, x);
    VT_TRY(vt_graph_status(g));
    if (!*logits)
        return vt_error(VT_ERR_UNSUPPORTED, "%s: the model %s cannot be built for input %lldx%lld", t->cfg.problem,
                        vt_arch_name(t->prob->arch), (long long)x->shape[2], (long long)x->shape[3]);
    return VT_OK;
}

/* Parameters an imported file is expected to hold: all but the classifier head (resnet's fc) and, for
 * the segmentation models, the layers the FCN adds on the VGG16 backbone (score_*, upscore*), which
 * have no counterpart in an ImageNet file and start fresh. */
static int fresh_layer(const vt_trainer *t, const char *name) {
    if (strncmp(name, "fc.", 3) == 0) return 1;
    if (!t->seg) return 0;
    return strncmp(name, "features.", 9) != 0 && !vt_model_import_alias(&t->mcfg, name) &&
           strncmp(name, "fc6.", 4) != 0 && strncmp(name, "fc7.", 4) != 0;
}

/* A name of the file that some model parameter imports through its alias. */
static int is_alias_target(const vt_trainer *t, const char *nm) {
    for (int i = 0; i < vt_params_n_params(t->m); i++) {
        const char *a = vt_model_import_alias(&t->mcfg, vt_params_param_at(t->m, i)->name);
        if (a && strcmp(a, nm) == 0) return 1;
    }
    return 0;
}

static vt_status load_pretrained(vt_trainer *t) {
    vt_tensor_dict d = {0};
    VT_TRY(vt_weights_load(t->cfg.pretrained, &d));
    int loaded = 0, missing = 0, misshaped = 0, unexpected = 0, aliased = 0;
    char report[1024] = "";
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? vt_params_n_params(t->m) : vt_params_n_states(t->m);
        for (int i = 0; i < n; i++) {
            vt_tensor *p = pass == 0 ? vt_params_param_at(t->m, i) : vt_params_state_at(t->m, i);
            int head = fresh_layer(t, p->name);
            const vt_host_tensor *h = vt_dict_find(&d, p->name);
            /* torchvision's VGG16 holds fc6/fc7 as Linear layers: the same elements under another name */
            const char *alias = h ? NULL : vt_model_import_alias(&t->mcfg, p->name);
            if (alias) h = vt_dict_find(&d, alias);
            if (!h) {
                missing++;
                if (!head) snprintf(report + strlen(report), sizeof report - strlen(report), " missing:%s", p->name);
                continue;
            }
            int64_t n_h = 1;
            for (int k = 0; k < h->ndim; k++) n_h *= h->shape[k];
            if (h->dtype != VT_F32 || n_h != vt_tensor_nelem(p)) {
                misshaped++;
                if (!head) snprintf(report + strlen(report), sizeof report - strlen(report), " misshaped:%s", p->name);
                continue;
            }
            if (head && !t->cfg.keep_head) continue; /* the head is replaced by a fresh one */
            vt_status s = vt_tensor_upload(p, h->data, h->nbytes);
            if (s != VT_OK) {
                vt_dict_free(&d);
                return s;
            }
            loaded++;
            if (alias) aliased++;
        }
    }
    for (size_t k = 0; k < d.n; k++) {
        const char *nm = d.items[k].name;
        int found = 0;
        for (int i = 0; i < vt_params_n_params(t->m) && !found; i++)
            found = strcmp(vt_params_param_at(t->m, i)->name, nm) == 0;
        for (int i = 0; i < vt_params_n_states(t->m) && !found; i++)
            found = strcmp(vt_params_state_at(t->m, i)->name, nm) == 0;
        if (strstr(nm, "num_batches_tracked") && d.items[k].dtype == VT_I32 && d.items[k].nbytes >= 4) {
            int32_t v;
            memcpy(&v, d.items[k].data, sizeof v);
            if (v > t->bn_tracked) t->bn_tracked = v; /* every BN layer counts the same batches */
        }
        if (!found && t->seg) found = is_alias_target(t, nm) || strncmp(nm, "classifier.6.", 13) == 0;
        if (!found && !strstr(nm, "num_batches_tracked")) {
            unexpected++;
            snprintf(report + strlen(report), sizeof report - strlen(report), " unexpected:%s", nm);
        }
    }
    vt_dict_free(&d);
    int body_missing = 0;
    for (char *q = report; (q = strstr(q, "missing:")); q++) body_missing++;
    int body_misshaped = 0;
    for (char *q = report; (q = strstr(q, "misshaped:")); q++) body_misshaped++;
    if (body_missing || body_misshaped)
        return vt_error(VT_ERR_FORMAT, "%s: does not fit the model (%d tensors loaded):%.900s", t->cfg.pretrained,
                        loaded, report);
    char via[64] = "";
    if (aliased) snprintf(via, sizeof via, ", %d of them through import aliases", aliased);
    if (!t->cfg.quiet)
        vt_log(VT_LOG_INFO, "pretrained: %d tensors loaded from %s%s%s%s", loaded, t->cfg.pretrained, via,
               t->cfg.keep_head ? "" : " (new classifier head)", unexpected ? report : "");
    (void)missing;
    (void)misshaped;
    return VT_OK;
}

vt_status tr_build_train_graph(vt_trainer *t) {
    tr_overlap_free(t); /* its pieces point into the old graph's nodes */
    if (t->train_g) vt_graph_free(t->train_g);
    vt_graph *g = t->train_g = vt_graph_new(t->m, 1);
    if (!g) return vt_error(VT_ERR_OOM, "out of host memory");
    /* --sync-bn: batch statistics over the whole global batch (the eval graphs use running statistics);
     * one rank is plain batch norm */
    if (t->cfg.sync_bn && t->nranks > 1) vt_graph_set_sync_bn(g, t->nranks);
    vt_tensor *x, *y;
    int B = t->local_b;
    VT_TRY(add_data(t, g, B, t->cfg.augment, 0, t->crop_h, t->crop_w, t->tr_img, t->tr_lab, t->tr_perm, &x, &y));
    vt_tensor *logits;
    VT_TRY(build_model(t, g, x, &logits));
    vt_tensor *loss = t->seg ? vt_g_softmax_ce_ignore(g, logits, y, t->cfg.label_smoothing, t->tr_metrics)
                             : vt_g_softmax_ce(g, logits, y, t->cfg.label_smoothing, t->tr_metrics);
    VT_TRY(vt_graph_status(g));
    VT_TRY(vt_graph_backward(g, loss, t->frozen));
    if (!vt_params_backend(t->m)) {
        VT_TRY(vt_params_alloc(t->m, t->be, t->cfg.seed));
        VT_TRY(vt_params_alloc_optimizer(t->m, opt_slots(t)));
        if (tr_wants_weights(&t->cfg)) VT_TRY(load_pretrained(t));
    }
    VT_TRY(vt_graph_optimizer(g, &t->ocfg, t->frozen));
    return vt_graph_plan(g);
}

static vt_status build_eval_graph(vt_trainer *t, int B, vt_graph **out) {
    vt_graph *g = *out = vt_graph_new(t->m, 0);
    if (!g) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_tensor *x, *y;
    VT_TRY(add_data(t, g, B, 0, 1, (int)t->te_img->shape[2], (int)t->te_img->shape[3], t->te_img, t->te_lab, t->te_perm,
                    &x, &y));
    vt_tensor *logits;
    VT_TRY(build_model(t, g, x, &logits));
    if (t->seg) {
        vt_g_softmax_ce_ignore(g, logits, y, 0.0f, t->te_metrics);
        vt_tensor *pred = vt_g_argmax(g, logits);
        VT_TRY(vt_graph_status(g));
        VT_TRY(vt_g_confusion(g, pred, y, t->te_conf));
    } else vt_g_softmax_ce(g, logits, y, 0.0f, t->te_metrics);
    VT_TRY(vt_graph_status(g));
    return vt_graph_plan(g);
}

void tr_free(vt_trainer *t) {
    vt_graph_free(t->train_g);
    vt_graph_free(t->eval_g);
    vt_graph_free(t->eval_rem_g);
    vt_params_free(t->m);
    vt_tensor *ts[] = {t->tr_img, t->tr_lab,  t->tr_perm,    t->te_img,
                       t->te_lab, t->te_perm, t->tr_metrics, t->te_metrics};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) vt_tensor_free(ts[i]);
    vt_tensor_free(t->nf_flag);
    vt_tensor_free(t->te_conf);
    free(t->hist_iou);
    tr_overlap_free(t);
    vt_grad_sync_free(t->gsync);
    if (t->class_names)
        for (int i = 0; i < t->n_classes; i++) free(t->class_names[i]);
    free(t->class_names);
    if (t->locked) close(t->lock_fd); /* releases the run folder's lock */
    free(t->hist);
    memset(t, 0, sizeof *t);
}

void tr_model_cfg(const vt_trainer *t, int n_classes, int c, int h, int w, vt_model_cfg *m) {
    vt_model_cfg_default(t->prob, n_classes, c, h, w, m);
    m->batchnorm = t->cfg.batchnorm || t->prob->arch == VT_ARCH_RESNET18;
    m->act = t->cfg.act;
    m->act_alpha = t->cfg.act_alpha;
    m->dropout = t->cfg.dropout;
    m->stem_cifar = t->cfg.stem_cifar;
    m->input_size = t->cfg.input_size;
    m->width = t->cfg.width > 0 ? t->cfg.width : 64;
    m->frozen_bn = t->cfg.frozen_bn;
    m->fc_width = t->cfg.fc_width;
}

vt_status tr_setup(vt_trainer *t, vt_backend *be, const vt_dataset *train, const vt_dataset *test) {
    t->be = be;
    t->n_classes = test->n_classes > train->n_classes ? test->n_classes : train->n_classes;
    tr_model_cfg(t, t->n_classes, train->c, train->h, train->w, &t->mcfg);
    t->seg = t->prob->segmentation;
    if (t->seg != (train->masks != NULL) || t->seg != (test->masks != NULL))
        return vt_error(VT_ERR_INVALID_ARG, "%s: %s problem given %s data", t->cfg.problem,
                        t->seg ? "a segmentation" : "a classification", t->seg ? "classification" : "segmentation");
    if (t->seg && t->nranks > 1)
        return vt_error(VT_ERR_UNSUPPORTED,
                        "%s: segmentation problems train on one process only (the confusion matrix is not "
                        "combined across ranks): run it without --ranks/mpirun",
                        t->cfg.problem);
    t->crop_h = t->seg && t->cfg.crop_h > 0 ? t->cfg.crop_h : train->h;
    t->crop_w = t->seg && t->cfg.crop_w > 0 ? t->cfg.crop_w : train->w;
    if (t->seg && (t->crop_h > train->h || t->crop_w > train->w))
        return vt_error(VT_ERR_INVALID_ARG, "--crop %dx%d is larger than the images (%dx%d, see --size)", t->crop_h,
                        t->crop_w, train->h, train->w);
    if (t->seg && t->n_classes > VT_TR_MAX_CLASSES - 1)
        return vt_error(VT_ERR_INVALID_ARG, "%d classes: at most %d for segmentation", t->n_classes,
                        VT_TR_MAX_CLASSES - 1);
    t->n_train = train->n;
    t->n_test = test->n;
    t->in_c = train->c;
    t->in_h = train->h;
    t->in_w = train->w;
    const vt_dataset *named = test->n_classes >= train->n_classes ? test : train;
    if (named->class_names) {
        t->class_names = calloc((size_t)t->n_classes, sizeof *t->class_names);
        if (!t->class_names) return vt_error(VT_ERR_OOM, "out of host memory");
        for (int i = 0; i < t->n_classes; i++) {
            char num[16];
            snprintf(num, sizeof num, "%d", i);
            t->class_names[i] = strdup(i < named->n_classes && named->class_names[i] ? named->class_names[i] : num);
            if (!t->class_names[i]) return vt_error(VT_ERR_OOM, "out of host memory");
        }
    }
    if (t->cfg.batch_size > t->n_train)
        return vt_error(VT_ERR_INVALID_ARG, "batch size %d is larger than the training set (%lld images)",
                        t->cfg.batch_size, (long long)t->n_train);
    t->steps_per_epoch = (int)(t->n_train / t->cfg.batch_size);
    if (t->nranks < 1) t->nranks = 1;
    if (t->cfg.batch_size % t->nranks)
        return vt_error(VT_ERR_INVALID_ARG,
                        "batch size %d does not divide over %d ranks (each rank takes an equal slice of "
                        "every batch): give a multiple of %d",
                        t->cfg.batch_size, t->nranks, t->nranks);
    t->local_b = t->cfg.batch_size / t->nranks;
    t->te_lo = t->n_test * t->rank / t->nranks;
    t->te_hi = t->n_test * (t->rank + 1) / t->nranks;
    VT_TRY(upload_dataset(t, train, "train", &t->tr_img, &t->tr_lab, &t->tr_perm));
    VT_TRY(upload_dataset(t, test, "test", &t->te_img, &t->te_lab, &t->te_perm));
    VT_TRY(vt_tensor_new(be, "train.metrics", VT_F32, 1, (int64_t[]){3}, &t->tr_metrics));
    VT_TRY(vt_tensor_new(be, "test.metrics", VT_F32, 1, (int64_t[]){3}, &t->te_metrics));
    VT_TRY(vt_tensor_new(be, "nonfinite.flag", VT_I32, 1, (int64_t[]){1}, &t->nf_flag));
    if (t->seg) {
        int64_t k1 = t->n_classes + 1;
        VT_TRY(vt_tensor_new(be, "test.confusion", VT_I32, 2, (int64_t[]){k1, k1}, &t->te_conf));
    }
    t->m = vt_params_new();
    if (!t->m) return vt_error(VT_ERR_OOM, "out of host memory");
    t->frozen = (t->cfg.freeze_backbone_epochs > 0 && t->epoch < t->cfg.freeze_backbone_epochs) ? 1u : 0u;
    VT_TRY(tr_build_train_graph(t));
    int64_t mine = t->te_hi - t->te_lo; /* this rank's share of the test set (all of it on one rank) */
    int eb = t->eval_batch = t->local_b < mine ? t->local_b : (int)mine;
    if (eb > 0) VT_TRY(build_eval_graph(t, eb, &t->eval_g));
    int rem = eb > 0 ? (int)(mine % eb) : 0;
    if (rem) VT_TRY(build_eval_graph(t, rem, &t->eval_rem_g));
    return VT_OK;
}

vt_status tr_read_metrics(vt_tensor *m, double out[3]) {
    float v[3];
    VT_TRY(vt_tensor_download(m, v, sizeof v));
    for (int i = 0; i < 3; i++) out[i] = v[i];
    return VT_OK;
}

vt_status tr_upload_perm(vt_trainer *t, int epoch) {
    int32_t *perm = malloc((size_t)t->n_train * sizeof *perm);
    if (!perm) return vt_error(VT_ERR_OOM, "out of host memory");
    if (t->cfg.no_shuffle) {
        for (int64_t i = 0; i < t->n_train; i++) perm[i] = (int32_t)i;
    } else {
        vt_rng r;
        vt_rng_init(&r, t->cfg.seed, 0x5000u + (uint32_t)epoch);
        vt_rng_permutation(&r, perm, t->n_train);
    }
    vt_status s = vt_tensor_upload(t->tr_perm, perm, (size_t)t->n_train * sizeof *perm);
    free(perm);
    return s;
}

/* A segmentation split as a vt_dataset (the pointers move; the class names are copied). */
static vt_status seg_as_dataset(vt_segdata *sd, vt_dataset *d) {
    memset(d, 0, sizeof *d);
    d->n = sd->n;
    d->c = sd->c;
    d->h = sd->h;
    d->w = sd->w;
    d->images = sd->images;
    d->masks = sd->masks;
    sd->images = sd->masks = NULL;
    d->n_classes = sd->n_classes;
    copy_str(d->format, sizeof d->format, sd->format);
    copy_str(d->source, sizeof d->source, sd->source);
    vt_seg_layout layout = sd->layout;
    vt_segdata_free(sd);
    d->class_names = calloc((size_t)d->n_classes, sizeof *d->class_names);
    if (!d->class_names) return vt_error(VT_ERR_OOM, "out of host memory");
    const char *const *names = vt_seg_class_names(layout, &(int){0});
    for (int i = 0; i < d->n_classes; i++) {
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        d->class_names[i] = strdup(names && names[i] ? names[i] : num);
        if (!d->class_names[i]) return vt_error(VT_ERR_OOM, "out of host memory");
    }
    return VT_OK;
}

/* Problems 9-11: train on the "train" split, evaluate on "val", both brought to --size. */
static vt_status load_seg_data(vt_trainer *t, const char *path, vt_dataset *train, vt_dataset *test) {
    vt_seg_layout layout;
    if (vt_segdata_detect(path, &layout) != VT_OK) {
        char why[400], fmt[32];
        copy_str(why, sizeof why, vt_last_error());
        if (vt_dataset_detect(path, fmt, sizeof fmt) == VT_OK)
            return vt_error(VT_ERR_INVALID_ARG,
                            "%s holds a classification dataset (%s), but %s is a segmentation problem: give a "
                            "deepglobe or camvid folder with --data",
                            path, fmt, t->cfg.problem);
        return vt_error(VT_ERR_NOT_FOUND, "%s: %s needs a segmentation dataset (deepglobe or camvid layout): %s", path,
                        t->cfg.problem, why);
    }
    vt_segdata_opts o = {.limit = t->cfg.limit_train, .h = t->cfg.seg_h, .w = t->cfg.seg_w, .fit = VT_SEG_RESIZE};
    vt_segdata a, b;
    VT_TRY(vt_segdata_load(path, "train", layout, &o, &a));
    o.limit = t->cfg.limit_test;
    vt_status s = vt_segdata_load(path, "val", layout, &o, &b);
    if (s != VT_OK) {
        vt_segdata_free(&a);
        return s;
    }
    copy_str(t->data_format, sizeof t->data_format, a.format);
    s = seg_as_dataset(&a, train);
    vt_status s2 = seg_as_dataset(&b, test);
    return s != VT_OK ? s : s2;
}

vt_status tr_load_data(vt_trainer *t, vt_dataset *train, vt_dataset *test) {
    const char *path = t->cfg.data[0] ? t->cfg.data : "data";
    char found[512];
    if (t->prob->segmentation) {
        copy_str(t->data_path, sizeof t->data_path, path);
        return load_seg_data(t, path, train, test);
    }
    vt_seg_layout layout;
    if (t->cfg.data[0] && vt_segdata_detect(path, &layout) == VT_OK) {
        char fmt[32];
        if (vt_dataset_detect(path, fmt, sizeof fmt) != VT_OK)
            return vt_error(VT_ERR_INVALID_ARG,
                            "%s holds a segmentation dataset, but %s is a classification problem: give a "
                            "segmentation problem (fcn32s-scratch, ...) or a classification dataset",
                            path, t->cfg.problem);
    }
    if (!t->cfg.data[0]) {
        /* the README's main command: CIFAR-100 in data/ */
        VT_TRY(vt_dataset_find_or_explain("cifar100", "data", found, sizeof found));
        path = found;
    }
    copy_str(t->data_path, sizeof t->data_path, path);
    vt_dataset_opts o = {.labels = t->cfg.labels_coarse ? VT_LABELS_COARSE : VT_LABELS_FINE,
                         .limit = t->cfg.limit_train};
    VT_TRY(vt_dataset_load(path, "train", &o, train));
    o.limit = t->cfg.limit_test;
    VT_TRY(vt_dataset_load(path, "test", &o, test));
    copy_str(t->data_format, sizeof t->data_format, train->format);
    return VT_OK;
}
