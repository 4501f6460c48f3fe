/* Run configuration: the problem's defaults for what is unset, the configuration as JSON (config.json
 * and every checkpoint's metadata) and back, and the merge of a resumed run's saved configuration
 * with the options that may change on --resume. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

void vt_train_cfg_init(vt_train_cfg *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->backend, sizeof c->backend, "auto");
    c->device = -1;
    c->epochs = c->batch_size = -1;
    c->lr = c->momentum = c->weight_decay = -1.0f;
    c->nesterov = -1;
    c->seed = 42;
    c->augment = c->batchnorm = -1;
    c->act = VT_ACT_NONE;
    c->act_alpha = 0.01f;
    c->dropout = -1.0f;
    c->backbone_lr_mult = -1.0f;
    c->freeze_backbone_epochs = -1;
    c->width = 64;
}

/* Weights to import: a file given, and not the explicit "none". A resumed run takes its weights
 * from the checkpoint instead. */
int tr_wants_weights(const vt_train_cfg *c) {
    return c->pretrained[0] && strcmp(c->pretrained, "none") != 0 && !c->resume[0];
}

vt_status tr_resolve_cfg(const vt_train_cfg *in, vt_trainer *t) {
    t->cfg = *in;
    vt_train_cfg *c = &t->cfg;
    t->prob = vt_problem_find(c->problem);
    if (!t->prob) return vt_error(VT_ERR_INVALID_ARG, "unknown problem '%s' (vtrain list shows them)", c->problem);
    const vt_problem *p = t->prob;
    copy_str(c->problem, sizeof c->problem, p->name);
    if (c->epochs < 0) c->epochs = p->epochs;
    if (c->batch_size < 0) c->batch_size = p->batch_size;
    if (c->lr < 0) c->lr = p->lr;
    if (c->momentum < 0) c->momentum = p->momentum;
    if (c->weight_decay < 0) c->weight_decay = p->weight_decay;
    if (c->nesterov < 0) c->nesterov = p->nesterov;
    if (!c->optimizer[0]) copy_str(c->optimizer, sizeof c->optimizer, p->optimizer);
    if (!c->schedule[0]) {
        if (strncmp(p->schedule, "cosine", 6) == 0)
            snprintf(c->schedule, sizeof c->schedule, "cosine:%d", c->epochs > 0 ? c->epochs : 1);
        else copy_str(c->schedule, sizeof c->schedule, p->schedule);
    }
    if (c->augment < 0) c->augment = p->augment;
    if (c->batchnorm < 0) c->batchnorm = p->arch == VT_ARCH_RESNET18;
    if (c->act == VT_ACT_NONE) c->act = VT_ACT_RELU;
    if (c->dropout < 0) c->dropout = p->dropout;
    if (c->backbone_lr_mult < 0) c->backbone_lr_mult = 1.0f;
    /* Fine-tuning: one epoch with the backbone frozen trains the fresh head at a third of the cost
     * of a full step (no backward through the backbone), so the unfrozen epochs start from a head that
     * already fits the pretrained features instead of sending random-head gradients into them. */
    if (c->freeze_backbone_epochs < 0) c->freeze_backbone_epochs = tr_wants_weights(c) ? 1 : 0;
    if (c->log_every <= 0) c->log_every = 20;
    if (c->epochs < 0) return vt_error(VT_ERR_INVALID_ARG, "--epochs %d must be >= 0", c->epochs);
    if (c->max_steps < 0) return vt_error(VT_ERR_INVALID_ARG, "--steps %lld must be >= 0", (long long)c->max_steps);
    if (c->batch_size < 1) return vt_error(VT_ERR_INVALID_ARG, "--batch-size %d must be >= 1", c->batch_size);
    if (!(c->lr > 0) || !isfinite(c->lr)) return vt_error(VT_ERR_INVALID_ARG, "--lr %g must be > 0", (double)c->lr);
    if (c->dropout >= 1.0f) return vt_error(VT_ERR_INVALID_ARG, "--dropout %g must be < 1", (double)c->dropout);
    if (c->seg_h < 0 || c->seg_w < 0 || (c->seg_h > 0) != (c->seg_w > 0))
        return vt_error(VT_ERR_INVALID_ARG, "--size %dx%d: give both sides > 0", c->seg_h, c->seg_w);
    if (c->crop_h < 0 || c->crop_w < 0 || (c->crop_h > 0) != (c->crop_w > 0))
        return vt_error(VT_ERR_INVALID_ARG, "--crop %dx%d: give both sides > 0", c->crop_h, c->crop_w);
    if (c->fc_width < 0) return vt_error(VT_ERR_INVALID_ARG, "--fc-width %d must be >= 0", c->fc_width);
    if (!p->segmentation && (c->seg_h || c->crop_h || c->fc_width))
        return vt_error(VT_ERR_INVALID_ARG, "--size, --crop and --fc-width are for the segmentation problems, not %s",
                        p->name);
    if (p->segmentation && c->seg_h && c->crop_h && (c->crop_h > c->seg_h || c->crop_w > c->seg_w))
        return vt_error(VT_ERR_INVALID_ARG, "--crop %dx%d is larger than --size %dx%d", c->crop_h, c->crop_w, c->seg_h,
                        c->seg_w);
    VT_TRY(vt_schedule_parse(c->schedule, &t->sched));
    t->sched.base_lr = c->lr;
    memset(&t->ocfg, 0, sizeof t->ocfg);
    if (strcmp(c->optimizer, "sgd") == 0) t->ocfg.kind = VT_OPTIM_SGD;
    else if (strcmp(c->optimizer, "adam") == 0) t->ocfg.kind = VT_OPTIM_ADAM;
    else if (strcmp(c->optimizer, "adamw") == 0) t->ocfg.kind = VT_OPTIM_ADAMW;
    else return vt_error(VT_ERR_INVALID_ARG, "--optimizer '%s': use sgd, adam or adamw", c->optimizer);
    t->ocfg.momentum = c->momentum;
    t->ocfg.weight_decay = c->weight_decay;
    t->ocfg.nesterov = c->nesterov;
    t->ocfg.beta1 = 0.9f;
    t->ocfg.beta2 = 0.999f;
    t->ocfg.eps = 1e-8f;
    if (t->ocfg.kind == VT_OPTIM_ADAMW && in->weight_decay < 0) t->ocfg.weight_decay = c->weight_decay = 0.01f;
    t->ocfg.group_lr_mult[0] = c->backbone_lr_mult;
    t->ocfg.group_lr_mult[1] = 1.0f;
    if (t->ocfg.nesterov && t->ocfg.momentum <= 0)
        return vt_error(VT_ERR_INVALID_ARG, "--nesterov needs --momentum > 0");
    return VT_OK;
}

/* A float as the shortest decimal that reads back to the same float (0.005, not 0.00499999988824129). */
cJSON *tr_float_json(float v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char txt[48];
    vt_float_shortest(v, txt, sizeof txt);
    return cJSON_CreateRaw(txt);
}

static void add_float(cJSON *j, const char *key, float v) { cJSON_AddItemToObject(j, key, tr_float_json(v)); }

cJSON *tr_cfg_to_json(const vt_trainer *t) {
    const vt_train_cfg *c = &t->cfg;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "problem", c->problem);
    cJSON_AddNumberToObject(j, "problem_id", t->prob->id);
    cJSON_AddStringToObject(j, "model", vt_arch_name(t->prob->arch));
    cJSON_AddStringToObject(j, "backend", t->be ? t->be->info.backend : c->backend);
    cJSON_AddStringToObject(j, "device", t->be ? t->be->info.name : "");
    cJSON_AddNumberToObject(j, "device_index", c->device);
    cJSON_AddStringToObject(j, "data", t->data_path);
    cJSON_AddStringToObject(j, "data_format", t->data_format);
    cJSON_AddNumberToObject(j, "n_classes", t->n_classes);
    cJSON_AddNumberToObject(j, "epochs", c->epochs);
    cJSON_AddNumberToObject(j, "batch_size", c->batch_size);
    add_float(j, "lr", c->lr);
    cJSON_AddStringToObject(j, "optimizer", c->optimizer);
    add_float(j, "momentum", c->momentum);
    add_float(j, "weight_decay", t->ocfg.weight_decay);
    cJSON_AddBoolToObject(j, "nesterov", c->nesterov);
    cJSON_AddStringToObject(j, "schedule", c->schedule);
    cJSON_AddNumberToObject(j, "seed", c->seed);
    cJSON_AddBoolToObject(j, "augment", c->augment);
    cJSON_AddBoolToObject(j, "batchnorm", t->mcfg.batchnorm);
    cJSON_AddStringToObject(j, "activation", vt_act_name(c->act));
    add_float(j, "act_alpha", c->act_alpha);
    add_float(j, "dropout", c->dropout);
    add_float(j, "label_smoothing", c->label_smoothing);
    cJSON_AddStringToObject(j, "labels", c->labels_coarse ? "coarse" : "fine");
    cJSON_AddNumberToObject(j, "limit_train", (double)c->limit_train);
    cJSON_AddNumberToObject(j, "limit_test", (double)c->limit_test);
    cJSON_AddNumberToObject(j, "max_minutes", c->max_minutes);
    cJSON_AddNumberToObject(j, "max_steps", (double)c->max_steps);
    cJSON_AddBoolToObject(j, "no_shuffle", c->no_shuffle);
    cJSON_AddNumberToObject(j, "target_acc", c->target_acc);
    cJSON_AddBoolToObject(j, "stem_cifar", c->stem_cifar);
    cJSON_AddNumberToObject(j, "input_size", c->input_size);
    cJSON_AddNumberToObject(j, "width", t->mcfg.width);
    cJSON_AddBoolToObject(j, "frozen_bn", c->frozen_bn);
    cJSON_AddBoolToObject(j, "keep_head", c->keep_head);
    cJSON_AddNumberToObject(j, "freeze_backbone_epochs", c->freeze_backbone_epochs);
    add_float(j, "backbone_lr_mult", c->backbone_lr_mult);
    cJSON_AddStringToObject(j, "pretrained", c->pretrained);
    cJSON_AddStringToObject(j, "nan_policy", c->nan_policy ? "skip-step" : "stop");
    cJSON_AddNumberToObject(j, "ranks", t->nranks > 1 ? t->nranks : 1); /* a record: a resume may use another count */
    cJSON_AddBoolToObject(j, "sync_bn", c->sync_bn);
    cJSON_AddNumberToObject(j, "params", t->m ? (double)vt_params_param_count(t->m) : 0);
    if (t->prob->segmentation) {
        /* only segmentation runs carry these, so a classification config.json stays as it was */
        cJSON_AddNumberToObject(j, "seg_h", c->seg_h);
        cJSON_AddNumberToObject(j, "seg_w", c->seg_w);
        cJSON_AddNumberToObject(j, "crop_h", c->crop_h);
        cJSON_AddNumberToObject(j, "crop_w", c->crop_w);
        cJSON_AddNumberToObject(j, "fc_width", c->fc_width);
    }
    return j;
}

double tr_jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1 : 0;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *jstr(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

/* A number read from a checkpoint's metadata, checked before any cast: a bad value names the file and
 * the field, never a command-line flag. whole = must be an integer. */
vt_status tr_jfield(const cJSON *o, const char *sect, const char *k, double def, double lo, double hi, int whole,
                    const char *file, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = def; /* absent: the default ("unset" where it is -1) */
        return VT_OK;
    }
    if (!cJSON_IsNumber(v) && !cJSON_IsBool(v) && !cJSON_IsNull(v))
        return vt_error(VT_ERR_FORMAT, "%s: %s%s%s is not a number", file, sect, sect[0] ? "." : "", k);
    double x = tr_jnum(o, k, def);
    const char *sep = sect[0] ? "." : "";
    if (!isfinite(x) || x < lo || x > hi) {
        if (hi >= 1e300) return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be >= %.15g", file, sect, sep, k, x, lo);
        return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be between %.15g and %.15g", file, sect, sep, k, x, lo,
                        hi);
    }
    if (whole && x != floor(x))
        return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be a whole number", file, sect, sep, k, x);
    *out = x;
    return VT_OK;
}

/* The configuration a checkpoint was trained with (so eval/resume rebuild the same model). */
vt_status tr_cfg_from_json(const cJSON *j, const char *file, vt_train_cfg *c) {
    if (!cJSON_IsObject(j)) return vt_error(VT_ERR_FORMAT, "%s: metadata has no \"config\" object", file);
    vt_train_cfg_init(c);
    copy_str(c->problem, sizeof c->problem, jstr(j, "problem", ""));
    copy_str(c->data, sizeof c->data, jstr(j, "data", ""));
    copy_str(c->optimizer, sizeof c->optimizer, jstr(j, "optimizer", ""));
    copy_str(c->schedule, sizeof c->schedule, jstr(j, "schedule", ""));
    copy_str(c->pretrained, sizeof c->pretrained, jstr(j, "pretrained", ""));
    if (!vt_problem_find(c->problem))
        return vt_error(VT_ERR_FORMAT, "%s: config.problem '%s' is unknown", file, c->problem);
    const double big = 1e300;
    double x = 0;
#define VT_FIELD(key, def, lo, hi, whole, dst, type)                   \
    VT_TRY(tr_jfield(j, "config", key, def, lo, hi, whole, file, &x)); \
    dst = (type)x
    VT_FIELD("epochs", -1, 0, 1e6, 1, c->epochs, int);
    VT_FIELD("batch_size", -1, 1, 1 << 20, 1, c->batch_size, int);
    VT_FIELD("lr", -1, 1e-30, 1e30, 0, c->lr, float);
    if (!(c->lr > 0)) return vt_error(VT_ERR_FORMAT, "%s: config.lr = %g: must be > 0", file, (double)c->lr);
    VT_FIELD("momentum", -1, 0, 1e6, 0, c->momentum, float);
    VT_FIELD("weight_decay", -1, 0, 1e6, 0, c->weight_decay, float);
    VT_FIELD("nesterov", 0, 0, 1, 1, c->nesterov, int);
    VT_FIELD("seed", 42, 0, 4294967295.0, 1, c->seed, uint32_t);
    VT_FIELD("augment", 0, 0, 1, 1, c->augment, int);
    VT_FIELD("batchnorm", 0, 0, 1, 1, c->batchnorm, int);
    const char *act = jstr(j, "activation", "relu");
    c->act = vt_act_from_name(act);
    if (c->act == VT_ACT_COUNT) return vt_error(VT_ERR_FORMAT, "%s: config.activation '%s' is unknown", file, act);
    VT_FIELD("act_alpha", 0.01, -1e6, 1e6, 0, c->act_alpha, float);
    VT_FIELD("dropout", 0, 0, 0.999999, 0, c->dropout, float);
    VT_FIELD("label_smoothing", 0, 0, 1, 0, c->label_smoothing, float);
    c->labels_coarse = strcmp(jstr(j, "labels", "fine"), "coarse") == 0;
    VT_FIELD("limit_train", 0, 0, 1e15, 1, c->limit_train, int64_t);
    VT_FIELD("limit_test", 0, 0, 1e15, 1, c->limit_test, int64_t);
    VT_FIELD("max_minutes", 0, 0, big, 0, c->max_minutes, double);
    VT_FIELD("max_steps", 0, 0, 1e15, 1, c->max_steps, int64_t);
    VT_FIELD("no_shuffle", 0, 0, 1, 1, c->no_shuffle, int);
    VT_FIELD("target_acc", 0, 0, 100, 0, c->target_acc, double);
    VT_FIELD("stem_cifar", 0, 0, 1, 1, c->stem_cifar, int);
    VT_FIELD("input_size", 0, 0, 4096, 1, c->input_size, int);
    VT_FIELD("width", 64, 1, 4096, 1, c->width, int);
    VT_FIELD("frozen_bn", 0, 0, 1, 1, c->frozen_bn, int);
    VT_FIELD("keep_head", 0, 0, 1, 1, c->keep_head, int);
    VT_FIELD("freeze_backbone_epochs", 0, -1, 1e6, 1, c->freeze_backbone_epochs, int);
    if (c->freeze_backbone_epochs < 0) c->freeze_backbone_epochs = 0;
    VT_FIELD("backbone_lr_mult", 1, 0, 1e6, 0, c->backbone_lr_mult, float);
    VT_FIELD("seg_h", 0, 0, 65536, 1, c->seg_h, int);
    VT_FIELD("seg_w", 0, 0, 65536, 1, c->seg_w, int);
    VT_FIELD("crop_h", 0, 0, 65536, 1, c->crop_h, int);
    VT_FIELD("crop_w", 0, 0, 65536, 1, c->crop_w, int);
    VT_FIELD("fc_width", 0, 0, 1 << 20, 1, c->fc_width, int);
#undef VT_FIELD
    c->nan_policy = strcmp(jstr(j, "nan_policy", "stop"), "skip-step") == 0;
    return VT_OK;
}

/* Reads the checkpoint to resume from; the run continues with its configuration (epochs may be raised). */
static vt_status load_resume(vt_trainer *t, const vt_train_cfg *cfg_in, vt_tensor_dict *resume) {
    VT_TRY(vt_check_regular_file(t->cfg.resume, "checkpoint"));
    VT_TRY(vt_ckpt_read(t->cfg.resume, resume));
    cJSON *meta = cJSON_Parse(resume->meta_json ? resume->meta_json : "");
    vt_train_cfg saved;
    vt_status s = meta ? tr_cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), t->cfg.resume, &saved)
                       : vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", t->cfg.resume);
    cJSON_Delete(meta);
    VT_TRY(s);
    if (cfg_in->epochs > 0) saved.epochs = cfg_in->epochs;
    copy_str(saved.out_dir, sizeof saved.out_dir, t->cfg.out_dir);
    copy_str(saved.resume, sizeof saved.resume, t->cfg.resume);
    if (cfg_in->data[0]) copy_str(saved.data, sizeof saved.data, cfg_in->data);
    saved.quiet = cfg_in->quiet;
    saved.log_every = cfg_in->log_every;
    saved.no_checkpoints = cfg_in->no_checkpoints;
    saved.max_minutes = cfg_in->max_minutes;
    saved.max_steps = cfg_in->max_steps;
    saved.overwrite = cfg_in->overwrite;
    saved.problem_index = cfg_in->problem_index;
    saved.problem_count = cfg_in->problem_count;
    saved.comm = cfg_in->comm; /* the job resuming may have another number of ranks */
    saved.sync_bn = cfg_in->sync_bn;
    saved.progress = cfg_in->progress;
    saved.progress_user = cfg_in->progress_user;
    VT_TRY(tr_resolve_cfg(&saved, t));
    return tr_resume_state(t, resume, t->cfg.resume);
}

vt_status tr_configure(vt_trainer *t, const vt_train_cfg *cfg_in, vt_tensor_dict *resume) {
    if (cfg_in->resume[0]) {
        t->cfg = *cfg_in; /* the checkpoint's configuration is resolved by load_resume */
        return load_resume(t, cfg_in, resume);
    }
    VT_TRY(tr_resolve_cfg(cfg_in, t));
    if (t->prob->pretrained && !t->cfg.pretrained[0])
        return vt_error(
            VT_ERR_INVALID_ARG,
            "%s needs ImageNet weights: give --pretrained FILE (see docs/weights.md), or --pretrained none to "
            "train it from random weights",
            t->prob->name);
    return VT_OK;
}
