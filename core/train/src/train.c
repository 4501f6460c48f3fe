/* The training loop: data resident on the device, one recorded graph per step, metrics read back
 * every log_every steps, evaluation on the whole test set, atomic checkpoints, exact resume. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vt/checkpoint.h"
#include "vt/dataset.h"
#include "vt/models.h"
#include "vt/progress.h"
#include "vt/comm.h"
#include "vt/rng.h"
#include "vt/schedule.h"
#include "vt/train.h"
#include "vt/weights.h"

volatile int vt_train_stop_requested = 0;

static const float vt_mean[3] = {0.485f, 0.456f, 0.406f};
static const float vt_std[3] = {0.229f, 0.224f, 0.225f};

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

/* Bounded copy that always terminates (snprintf("%s") trips gcc's truncation analysis). */
static void copy_str(char *dst, size_t n, const char *src) {
    size_t k = strlen(src);
    if (k >= n) k = n - 1;
    memcpy(dst, src, k);
    dst[k] = 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the trainer state ---------------------------------------------------------------------- */

typedef struct vt_trainer {
    vt_train_cfg cfg;              /* resolved: no "unset" values left */
    const vt_problem *prob;
    vt_model_cfg mcfg;
    vt_backend *be;
    vt_params *m;
    vt_graph *train_g, *eval_g, *eval_rem_g;
    vt_tensor *tr_img, *tr_lab, *tr_perm, *te_img, *te_lab, *te_perm, *tr_metrics, *te_metrics;
    int64_t n_train, n_test;
    int n_classes;
    int steps_per_epoch;
    int eval_batch;
    vt_schedule sched;
    vt_optim_cfg ocfg;
    uint32_t frozen;
    char data_path[512], data_format[32];
    /* progress */
    int epoch;                     /* completed epochs */
    int64_t step_in_epoch, global_step;
    double best_acc, cum_seconds, time_to_target;
    int best_epoch;
    double part_loss, part_correct, part_count; /* train metrics of a partly done epoch (resume) */
    int64_t skipped_steps;         /* --nan-policy skip-step: steps rolled back */
    int64_t bn_tracked;            /* batches seen by BN in training mode (imported + counted) */
    vt_tensor *nf_flag;            /* i32 [1]: NONFINITE's flag */
    int lock_fd, locked;           /* flock on RUN/.lock, held for the whole run */
    char **class_names;            /* n_classes names from the dataset (NULL for synthetic data) */
    int in_c, in_h, in_w;          /* the dataset's image shape */
    vt_epoch_metrics *hist;
    int n_hist, cap_hist;
    /* data parallel: this rank trains on images [rank * local_b, (rank + 1) * local_b) of every global
     * batch and evaluates test images [te_lo, te_hi); one rank = a single process */
    vt_comm *comm;
    int rank, nranks, local_b;
    int64_t te_lo, te_hi;
    vt_grad_sync *gsync;
    /* overlap: the train graph's nodes before the optimizer, cut after the last node that touches each
     * gradient bucket; bucket_at[k] lists the buckets ready after piece k (see plan_overlap) */
    const vt_graph *ov_graph;     /* the graph the pieces were cut from (rebuilt graphs are cut again) */
    vt_graph_exec *ov_piece;
    int ov_n, ov_first_bwd;       /* pieces; index of the first piece after the data phase */
    int *ov_bucket_piece;         /* per bucket: the piece after which it is ready (-1: before any) */
    double exposed_seconds;       /* communication the backward pass did not hide, whole run */
} vt_trainer;

/* Weights to import: a file given, and not the explicit "none". A resumed run takes its weights
 * from the checkpoint instead. */
static int wants_weights(const vt_train_cfg *c) {
    return c->pretrained[0] && strcmp(c->pretrained, "none") != 0 && !c->resume[0];
}

static vt_status resolve_cfg(const vt_train_cfg *in, vt_trainer *t) {
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
    if (c->freeze_backbone_epochs < 0) c->freeze_backbone_epochs = wants_weights(c) ? 1 : 0;
    if (c->log_every <= 0) c->log_every = 20;
    if (c->epochs < 0) return vt_error(VT_ERR_INVALID_ARG, "--epochs %d must be >= 0", c->epochs);
    if (c->max_steps < 0) return vt_error(VT_ERR_INVALID_ARG, "--steps %lld must be >= 0", (long long)c->max_steps);
    if (c->batch_size < 1) return vt_error(VT_ERR_INVALID_ARG, "--batch-size %d must be >= 1", c->batch_size);
    if (!(c->lr > 0) || !isfinite(c->lr)) return vt_error(VT_ERR_INVALID_ARG, "--lr %g must be > 0", (double)c->lr);
    if (c->dropout >= 1.0f) return vt_error(VT_ERR_INVALID_ARG, "--dropout %g must be < 1", (double)c->dropout);
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
    if (t->ocfg.nesterov && t->ocfg.momentum <= 0) return vt_error(VT_ERR_INVALID_ARG, "--nesterov needs --momentum > 0");
    return VT_OK;
}

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
    VT_TRY(vt_tensor_new(t->be, name, VT_I32, 1, &d->n, lab));
    VT_TRY(vt_tensor_upload(*lab, d->labels, (size_t)d->n * sizeof(int32_t)));
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
static void norm_of(int channels, float mean[3], float std[3]) {
    for (int c = 0; c < 3; c++) {
        mean[c] = vt_mean[c];
        std[c] = vt_std[c];
    }
    if (channels == 1) {
        mean[0] = 0.449f;
        std[0] = 0.226f;
    }
}

/* BATCH_PREP node at the head of a graph: x [B,C,H,W] f32 and y [B] i32 from the resident dataset. */
static vt_status add_data(vt_trainer *t, vt_graph *g, int B, int augment, vt_tensor *img, vt_tensor *lab, vt_tensor *perm,
                          vt_tensor **x, vt_tensor **y) {
    vt_graph_set_phase(g, VT_PHASE_DATA);
    vt_graph_external(g, img);
    vt_graph_external(g, lab);
    vt_graph_external(g, perm);
    *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){B, img->shape[1], img->shape[2], img->shape[3]});
    *y = vt_graph_tensor(g, "labels", VT_I32, 1, (int64_t[]){B});
    if (!*x || !*y) return vt_graph_status(g);
    vt_op_params p = {.prep = {.pad = augment ? 4 : 0, .flip = augment, .salt = 0xDA7Au}};
    float mean[3], std[3];
    norm_of((int)img->shape[1], mean, std);
    for (int c = 0; c < 4; c++) {
        p.prep.mean[c] = c < 3 ? mean[c] : 0.5f;
        p.prep.std[c] = c < 3 ? std[c] : 0.25f;
    }
    vt_tensor *src[3] = {img, lab, perm}, *dst[2] = {*x, *y};
    if (vt_graph_add_node(g, VT_OP_BATCH_PREP, &p, src, 3, dst, 2, "data") < 0) return vt_graph_status(g);
    vt_graph_set_phase(g, VT_PHASE_FORWARD);
    (void)t;
    return VT_OK;
}

static vt_status load_pretrained(vt_trainer *t) {
    vt_tensor_dict d = {0};
    VT_TRY(vt_weights_load(t->cfg.pretrained, &d));
    int loaded = 0, missing = 0, misshaped = 0, unexpected = 0;
    char report[1024] = "";
    for (int pass = 0; pass < 2; pass++) {
        int n = pass == 0 ? vt_params_n_params(t->m) : vt_params_n_states(t->m);
        for (int i = 0; i < n; i++) {
            vt_tensor *p = pass == 0 ? vt_params_param_at(t->m, i) : vt_params_state_at(t->m, i);
            int head = strncmp(p->name, "fc.", 3) == 0;
            const vt_host_tensor *h = vt_dict_find(&d, p->name);
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
        }
    }
    for (size_t k = 0; k < d.n; k++) {
        const char *nm = d.items[k].name;
        int found = 0;
        for (int i = 0; i < vt_params_n_params(t->m) && !found; i++) found = strcmp(vt_params_param_at(t->m, i)->name, nm) == 0;
        for (int i = 0; i < vt_params_n_states(t->m) && !found; i++) found = strcmp(vt_params_state_at(t->m, i)->name, nm) == 0;
        if (strstr(nm, "num_batches_tracked") && d.items[k].dtype == VT_I32 && d.items[k].nbytes >= 4) {
            int32_t v;
            memcpy(&v, d.items[k].data, sizeof v);
            if (v > t->bn_tracked) t->bn_tracked = v; /* every BN layer counts the same batches */
        }
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
        return vt_error(VT_ERR_FORMAT, "%s: does not fit the model (%d tensors loaded):%.900s", t->cfg.pretrained, loaded, report);
    if (!t->cfg.quiet)
        fprintf(stderr, "pretrained: %d tensors loaded from %s%s%s\n", loaded, t->cfg.pretrained,
                t->cfg.keep_head ? "" : " (new classifier head)", unexpected ? report : "");
    (void)missing;
    (void)misshaped;
    return VT_OK;
}

static void overlap_free(vt_trainer *t);

static vt_status build_train_graph(vt_trainer *t) {
    overlap_free(t); /* its pieces point into the old graph's nodes */
    if (t->train_g) vt_graph_free(t->train_g);
    vt_graph *g = t->train_g = vt_graph_new(t->m, 1);
    if (!g) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_tensor *x, *y;
    int B = t->local_b;
    VT_TRY(add_data(t, g, B, t->cfg.augment, t->tr_img, t->tr_lab, t->tr_perm, &x, &y));
    vt_tensor *logits = vt_model_build(g, &t->mcfg, x);
    vt_tensor *loss = vt_g_softmax_ce(g, logits, y, t->cfg.label_smoothing, t->tr_metrics);
    VT_TRY(vt_graph_status(g));
    VT_TRY(vt_graph_backward(g, loss, t->frozen));
    if (!vt_params_backend(t->m)) {
        VT_TRY(vt_params_alloc(t->m, t->be, t->cfg.seed));
        VT_TRY(vt_params_alloc_optimizer(t->m, opt_slots(t)));
        if (wants_weights(&t->cfg)) VT_TRY(load_pretrained(t));
    }
    VT_TRY(vt_graph_optimizer(g, &t->ocfg, t->frozen));
    return vt_graph_plan(g);
}

static vt_status build_eval_graph(vt_trainer *t, int B, vt_graph **out) {
    vt_graph *g = *out = vt_graph_new(t->m, 0);
    if (!g) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_tensor *x, *y;
    VT_TRY(add_data(t, g, B, 0, t->te_img, t->te_lab, t->te_perm, &x, &y));
    vt_tensor *logits = vt_model_build(g, &t->mcfg, x);
    vt_g_softmax_ce(g, logits, y, 0.0f, t->te_metrics);
    VT_TRY(vt_graph_status(g));
    return vt_graph_plan(g);
}

static void overlap_free(vt_trainer *t) {
    for (int k = 0; k < t->ov_n; k++) vt_graph_exec_reset(t->be, &t->ov_piece[k]);
    free(t->ov_piece);
    free(t->ov_bucket_piece);
    t->ov_piece = NULL;
    t->ov_bucket_piece = NULL;
    t->ov_n = 0;
    t->ov_graph = NULL;
}

static void trainer_free(vt_trainer *t) {
    vt_graph_free(t->train_g);
    vt_graph_free(t->eval_g);
    vt_graph_free(t->eval_rem_g);
    vt_params_free(t->m);
    vt_tensor *ts[] = {t->tr_img, t->tr_lab, t->tr_perm, t->te_img, t->te_lab, t->te_perm, t->tr_metrics, t->te_metrics};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) vt_tensor_free(ts[i]);
    vt_tensor_free(t->nf_flag);
    overlap_free(t);
    vt_grad_sync_free(t->gsync);
    if (t->class_names)
        for (int i = 0; i < t->n_classes; i++) free(t->class_names[i]);
    free(t->class_names);
    if (t->locked) close(t->lock_fd); /* releases the run folder's lock */
    free(t->hist);
    memset(t, 0, sizeof *t);
}

/* Data + model + graphs. `train`/`test` may be synthetic (benchmarks). */
static vt_status trainer_setup(vt_trainer *t, vt_backend *be, const vt_dataset *train, const vt_dataset *test) {
    t->be = be;
    t->n_classes = test->n_classes > train->n_classes ? test->n_classes : train->n_classes;
    vt_model_cfg_default(t->prob, t->n_classes, train->c, train->h, train->w, &t->mcfg);
    t->mcfg.batchnorm = t->cfg.batchnorm || t->prob->arch == VT_ARCH_RESNET18;
    t->mcfg.act = t->cfg.act;
    t->mcfg.act_alpha = t->cfg.act_alpha;
    t->mcfg.dropout = t->cfg.dropout;
    t->mcfg.stem_cifar = t->cfg.stem_cifar;
    t->mcfg.input_size = t->cfg.input_size;
    t->mcfg.width = t->cfg.width > 0 ? t->cfg.width : 64;
    t->mcfg.frozen_bn = t->cfg.frozen_bn;
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
        return vt_error(VT_ERR_INVALID_ARG, "batch size %d is larger than the training set (%lld images)", t->cfg.batch_size,
                        (long long)t->n_train);
    t->steps_per_epoch = (int)(t->n_train / t->cfg.batch_size);
    if (t->nranks < 1) t->nranks = 1;
    if (t->cfg.batch_size % t->nranks)
        return vt_error(VT_ERR_INVALID_ARG, "batch size %d does not divide over %d ranks (each rank takes an equal slice of "
                        "every batch): give a multiple of %d", t->cfg.batch_size, t->nranks, t->nranks);
    t->local_b = t->cfg.batch_size / t->nranks;
    t->te_lo = t->n_test * t->rank / t->nranks;
    t->te_hi = t->n_test * (t->rank + 1) / t->nranks;
    VT_TRY(upload_dataset(t, train, "train", &t->tr_img, &t->tr_lab, &t->tr_perm));
    VT_TRY(upload_dataset(t, test, "test", &t->te_img, &t->te_lab, &t->te_perm));
    VT_TRY(vt_tensor_new(be, "train.metrics", VT_F32, 1, (int64_t[]){3}, &t->tr_metrics));
    VT_TRY(vt_tensor_new(be, "test.metrics", VT_F32, 1, (int64_t[]){3}, &t->te_metrics));
    VT_TRY(vt_tensor_new(be, "nonfinite.flag", VT_I32, 1, (int64_t[]){1}, &t->nf_flag));
    t->m = vt_params_new();
    if (!t->m) return vt_error(VT_ERR_OOM, "out of host memory");
    t->frozen = (t->cfg.freeze_backbone_epochs > 0 && t->epoch < t->cfg.freeze_backbone_epochs) ? 1u : 0u;
    VT_TRY(build_train_graph(t));
    int64_t mine = t->te_hi - t->te_lo; /* this rank's share of the test set (all of it on one rank) */
    int eb = t->eval_batch = t->local_b < mine ? t->local_b : (int)mine;
    if (eb > 0) VT_TRY(build_eval_graph(t, eb, &t->eval_g));
    int rem = eb > 0 ? (int)(mine % eb) : 0;
    if (rem) VT_TRY(build_eval_graph(t, rem, &t->eval_rem_g));
    return VT_OK;
}

static vt_status zero_metrics(vt_tensor *m) {
    float z[3] = {0, 0, 0};
    return vt_tensor_upload(m, z, sizeof z);
}

static vt_status read_metrics(vt_tensor *m, double out[3]) {
    float v[3];
    VT_TRY(vt_tensor_download(m, v, sizeof v));
    for (int i = 0; i < 3; i++) out[i] = v[i];
    return VT_OK;
}

/* Is any parameter or BN statistic NaN/Inf? Checked on the device (FILL clears the flag, NONFINITE
 * sets it) so that only 4 bytes come back; a ReLU network can hold NaN weights with a finite loss. */
static vt_status params_nonfinite(vt_trainer *t, int *bad) {
    *bad = 0;
    vt_step_ctx ctx = {.step = (uint64_t)t->global_step, .seed = t->cfg.seed};
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_NONFINITE;
    n.src[0] = vt_params_flat_params(t->m, -1);
    n.dst[0] = t->nf_flag;
    snprintf(n.label, sizeof n.label, "nonfinite.params");
    if (!vt_backend_supports(t->be, &n)) {
        /* a backend without the op: the same test on a host copy (slower, never skipped) */
        for (int pass = 0; pass < 2 && !*bad; pass++) {
            int cnt = pass ? vt_params_n_states(t->m) : 1;
            for (int i = 0; i < cnt && !*bad; i++) {
                vt_tensor *x = pass ? vt_params_state_at(t->m, i) : n.src[0];
                size_t nb = vt_tensor_nbytes(x);
                float *h = malloc(nb ? nb : 4);
                if (!h) return vt_error(VT_ERR_OOM, "out of host memory");
                vt_status s = vt_tensor_download(x, h, nb);
                for (size_t k = 0; s == VT_OK && k < nb / sizeof *h && !*bad; k++) *bad = !isfinite(h[k]);
                free(h);
                VT_TRY(s);
            }
        }
        return VT_OK;
    }
    vt_node clear;
    memset(&clear, 0, sizeof clear);
    clear.op = VT_OP_FILL;
    clear.p.fill.value = 0.0f;
    clear.dst[0] = t->nf_flag;
    snprintf(clear.label, sizeof clear.label, "nonfinite.clear");
    VT_TRY(vt_backend_compute(t->be, &clear, &ctx));
    VT_TRY(vt_backend_compute(t->be, &n, &ctx));
    for (int i = 0; i < vt_params_n_states(t->m); i++) {
        n.src[0] = vt_params_state_at(t->m, i);
        snprintf(n.label, sizeof n.label, "nonfinite.state");
        VT_TRY(vt_backend_compute(t->be, &n, &ctx));
    }
    int32_t flag = 0;
    VT_TRY(vt_tensor_download(t->nf_flag, &flag, sizeof flag));
    *bad = flag != 0;
    return VT_OK;
}

/* ---- data parallel ------------------------------------------------------------------------- */

static int dp(const vt_trainer *t) { return t->nranks > 1; }

/* Set on every rank when set on any: the ranks must take the same branches. */
static vt_status dp_any(vt_trainer *t, int *flag) {
    if (!dp(t)) return VT_OK;
    double v = *flag ? 1.0 : 0.0;
    VT_TRY(vt_comm_allreduce_sum_f64(t->comm, &v, 1));
    *flag = v > 0;
    return VT_OK;
}

/* Metric sums (loss sum, correct, count) of every rank added up. */
static vt_status dp_sum(vt_trainer *t, double *m, size_t n) {
    if (!dp(t)) return VT_OK;
    return vt_comm_allreduce_sum_f64(t->comm, m, n);
}

/* x made the same on every rank: rank 0's bytes, or (avg, f32 only) the mean over the ranks. */
static vt_status dp_tensor(vt_trainer *t, vt_tensor *x, int avg) {
    size_t nb = vt_tensor_nbytes(x);
    if (nb == 0) return VT_OK;
    avg = avg && x->dtype == VT_F32;
    void *h = malloc(nb);
    if (!h) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = VT_OK;
    if (avg || t->rank == 0) s = vt_tensor_download(x, h, nb);
    if (s == VT_OK) s = avg ? vt_comm_allreduce_avg(t->comm, h, nb / sizeof(float)) : vt_comm_bcast(t->comm, h, nb, 0);
    if (s == VT_OK && (avg || t->rank != 0)) s = vt_tensor_upload(x, h, nb);
    free(h);
    return s;
}

/* Parameters, BN statistics and optimizer state from rank 0, at the start and after a resume. */
static vt_status dp_broadcast_model(vt_trainer *t) {
    if (!dp(t)) return VT_OK;
    VT_TRY(dp_tensor(t, vt_params_flat_params(t->m, -1), 0));
    for (int i = 0; i < vt_params_n_states(t->m); i++) VT_TRY(dp_tensor(t, vt_params_state_at(t->m, i), 0));
    for (int k = 0; k < vt_params_n_opt_slots(t->m); k++) VT_TRY(dp_tensor(t, vt_params_flat_opt(t->m, k, -1), 0));
    return VT_OK;
}

/* BN running statistics are kept per rank while training (each from its own slice, as DDP does) and
 * made the same before they are used or saved: rank 0's (DDP's buffer broadcast), or their mean with
 * --sync-bn. Their update is linear, so the mean taken here equals a mean taken after every step. */
static vt_status dp_bn_states(vt_trainer *t) {
    if (!dp(t)) return VT_OK;
    for (int i = 0; i < vt_params_n_states(t->m); i++) VT_TRY(dp_tensor(t, vt_params_state_at(t->m, i), t->cfg.sync_bn));
    return VT_OK;
}

/* The running train metrics of a resumed or rolled-back epoch: held by rank 0, so that the ranks' sums
 * add up to them. */
static vt_status upload_train_metrics(vt_trainer *t, const double m[3]) {
    float v[3] = {0, 0, 0};
    if (t->rank == 0)
        for (int k = 0; k < 3; k++) v[k] = (float)m[k];
    return vt_tensor_upload(t->tr_metrics, v, sizeof v);
}

/* Does x lie (partly) in bytes [lo, hi) of buf? */
static int touches(const vt_tensor *x, const vt_buffer *buf, size_t lo, size_t hi) {
    if (!x || x->buf != buf) return 0;
    size_t a = x->offset, b = a + vt_tensor_nbytes(x);
    return a < hi && lo < b;
}

/* Cuts the train graph's nodes before the optimizer into pieces: the data phase, then a piece ending
 * after the last node that reads or writes each gradient bucket. After that piece the bucket's values
 * are final and can be averaged while the rest of the backward pass runs. */
static vt_status plan_overlap(vt_trainer *t) {
    overlap_free(t);
    const vt_graph *g = t->train_g;
    int n = vt_graph_n_nodes(g);
    const vt_node *nodes = vt_graph_node(g, 0);
    if (!nodes) return vt_error(VT_ERR_INVALID_ARG, "overlap: empty train graph");
    int d = 0, opt;
    while (d < n && nodes[d].op == VT_OP_BATCH_PREP) d++;
    for (opt = d; opt < n && nodes[opt].op != VT_OP_SGD && nodes[opt].op != VT_OP_ADAM; opt++) {}
    for (int k = opt; k < n; k++)
        if (nodes[k].op != VT_OP_SGD && nodes[k].op != VT_OP_ADAM)
            return vt_error(VT_ERR_UNSUPPORTED, "overlap: node %d (%s) after the optimizer", k, nodes[k].label);
    const vt_tensor *flat = vt_params_flat_grads(t->m, -1);
    int nb = vt_grad_sync_n_buckets(t->gsync);
    int *last = malloc(((size_t)nb + 1) * sizeof *last), *cut = malloc(((size_t)nb + 2) * sizeof *cut);
    t->ov_bucket_piece = malloc(((size_t)nb + 1) * sizeof *t->ov_bucket_piece);
    t->ov_piece = calloc((size_t)nb + 2, sizeof *t->ov_piece);
    if (!last || !cut || !t->ov_bucket_piece || !t->ov_piece) {
        free(last);
        free(cut);
        overlap_free(t);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    for (int b = 0; b < nb; b++) {
        int64_t first, count;
        vt_grad_sync_bucket(t->gsync, b, &first, &count);
        size_t lo = flat->offset + (size_t)first * sizeof(float), hi = lo + (size_t)count * sizeof(float);
        last[b] = -1;
        for (int k = d; k < opt; k++)
            for (int j = 0; j < VT_MAX_SRC + VT_MAX_DST; j++) {
                const vt_tensor *x = j < VT_MAX_SRC ? nodes[k].src[j] : nodes[k].dst[j - VT_MAX_SRC];
                if (touches(x, flat->buf, lo, hi)) last[b] = k;
            }
    }
    /* piece ends: after each bucket's last node, and the optimizer's start; ascending, no repeats */
    int n_cut = 0;
    for (int b = 0; b < nb; b++)
        if (last[b] >= 0) cut[n_cut++] = last[b] + 1;
    cut[n_cut++] = opt;
    for (int i = 1; i < n_cut; i++)
        for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
            int tmp = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = tmp;
        }
    int pieces = 0, at = 0;
    if (d > 0) t->ov_piece[pieces++] = (vt_graph_exec){.nodes = nodes, .n_nodes = d};
    t->ov_first_bwd = pieces;
    at = d;
    for (int i = 0; i < n_cut; i++) {
        if (cut[i] <= at) continue;
        t->ov_piece[pieces++] = (vt_graph_exec){.nodes = nodes + at, .n_nodes = cut[i] - at};
        at = cut[i];
    }
    for (int b = 0; b < nb; b++) {
        t->ov_bucket_piece[b] = -1;
        for (int k = t->ov_first_bwd; k < pieces && last[b] >= 0; k++) {
            const vt_graph_exec *e = &t->ov_piece[k];
            if (e->nodes + e->n_nodes == nodes + last[b] + 1) t->ov_bucket_piece[b] = k;
        }
    }
    free(last);
    free(cut);
    t->ov_n = pieces;
    t->ov_graph = g;
    return VT_OK;
}

/* The data-parallel step with the buckets averaged while the backward pass goes on. */
static vt_status train_step_overlap(vt_trainer *t, const vt_step_ctx *ctx, const vt_step_ctx *own) {
    if (t->ov_graph != t->train_g) VT_TRY(plan_overlap(t));
    int nb = vt_grad_sync_n_buckets(t->gsync);
    VT_TRY(vt_grad_sync_begin(t->gsync));
    vt_status s = VT_OK;
    for (int b = 0; b < nb && s == VT_OK; b++)
        if (t->ov_bucket_piece[b] < 0) s = vt_grad_sync_ready(t->gsync, b);
    for (int k = 0; k < t->ov_n && s == VT_OK; k++) {
        s = vt_backend_graph_compute(t->be, &t->ov_piece[k], k < t->ov_first_bwd ? ctx : own);
        for (int b = 0; b < nb && s == VT_OK; b++)
            if (t->ov_bucket_piece[b] == k) s = vt_grad_sync_ready(t->gsync, b);
    }
    /* every bucket handed over is waited for, also after a failure, so no collective is left half done */
    vt_status e = vt_grad_sync_end(t->gsync);
    if (s == VT_OK) s = e;
    VT_TRY(s);
    t->exposed_seconds += vt_grad_sync_exposed_seconds(t->gsync);
    return vt_graph_run(t->train_g, VT_PHASE_OPTIMIZER, ctx);
}

/* One training step of this rank's slice: forward and backward, the gradients averaged over the ranks
 * in buckets (during the backward pass where the communicator allows it), then the same optimizer step
 * everywhere. */
static vt_status train_step(vt_trainer *t, const vt_step_ctx *ctx) {
    if (!dp(t)) return vt_graph_run(t->train_g, -1, ctx);
    /* Dropout masks are drawn per element of the rank's own activations: with one seed every rank would
     * reuse rank 0's masks. The data phase keeps the job's seed (crops and flips follow the global sample
     * index, as in one process); forward and backward get a seed of the rank's own (rank 0 keeps it). */
    vt_step_ctx own = *ctx;
    own.seed = ctx->seed + (uint32_t)t->rank * 0x9E3779B9u;
    if (vt_grad_sync_can_overlap(t->gsync)) return train_step_overlap(t, ctx, &own);
    VT_TRY(vt_graph_run(t->train_g, VT_PHASE_DATA, ctx));
    for (int p = VT_PHASE_FORWARD; p <= VT_PHASE_BACKWARD; p++) VT_TRY(vt_graph_run(t->train_g, p, &own));
    VT_TRY(vt_grad_sync_run(t->gsync));
    t->exposed_seconds += vt_grad_sync_exposed_seconds(t->gsync);
    return vt_graph_run(t->train_g, VT_PHASE_OPTIMIZER, ctx);
}

/* Loss and accuracy over the whole test set, last partial batch included; one read-back. Each rank
 * evaluates its share and the sums are added up. */
static vt_status evaluate(vt_trainer *t, double *loss, double *acc) {
    VT_TRY(dp_bn_states(t));
    VT_TRY(zero_metrics(t->te_metrics));
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
    VT_TRY(read_metrics(t->te_metrics, m));
    VT_TRY(dp_sum(t, m, 3));
    *loss = m[2] > 0 ? m[0] / m[2] : 0;
    *acc = m[2] > 0 ? 100.0 * m[1] / m[2] : 0;
    if (!isfinite(*loss)) return vt_error(VT_ERR_NUMERIC, "test loss is %g", *loss);
    return VT_OK;
}

static vt_status upload_perm(vt_trainer *t, int epoch) {
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

/* ---- configuration and checkpoints as JSON ------------------------------------------------- */

/* A float as the shortest decimal that reads back to the same float (0.005, not 0.00499999988824129). */
static cJSON *float_json(float v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char txt[48];
    vt_float_shortest(v, txt, sizeof txt);
    return cJSON_CreateRaw(txt);
}

static void add_float(cJSON *j, const char *key, float v) { cJSON_AddItemToObject(j, key, float_json(v)); }

static cJSON *cfg_to_json(const vt_trainer *t) {
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
    return j;
}

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? 1 : 0;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *jstr(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : def;
}

static vt_act act_from_name(const char *s) {
    if (strcmp(s, "leaky_relu") == 0) return VT_ACT_LEAKY_RELU;
    if (strcmp(s, "selu") == 0) return VT_ACT_SELU;
    return VT_ACT_RELU;
}

/* A number read from a checkpoint's metadata, checked before any cast: a bad value names the file and
 * the field, never a command-line flag. whole = must be an integer. */
static vt_status jfield(const cJSON *o, const char *sect, const char *k, double def, double lo, double hi, int whole,
                        const char *file, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = def; /* absent: the default ("unset" where it is -1) */
        return VT_OK;
    }
    if (!cJSON_IsNumber(v) && !cJSON_IsBool(v) && !cJSON_IsNull(v))
        return vt_error(VT_ERR_FORMAT, "%s: %s%s%s is not a number", file, sect, sect[0] ? "." : "", k);
    double x = jnum(o, k, def);
    const char *sep = sect[0] ? "." : "";
    if (!isfinite(x) || x < lo || x > hi) {
        if (hi >= 1e300) return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be >= %.15g", file, sect, sep, k, x, lo);
        return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be between %.15g and %.15g", file, sect, sep, k, x, lo, hi);
    }
    if (whole && x != floor(x)) return vt_error(VT_ERR_FORMAT, "%s: %s%s%s = %g: must be a whole number", file, sect, sep, k, x);
    *out = x;
    return VT_OK;
}

/* The configuration a checkpoint was trained with (so eval/resume rebuild the same model). */
static vt_status cfg_from_json(const cJSON *j, const char *file, vt_train_cfg *c) {
    if (!cJSON_IsObject(j)) return vt_error(VT_ERR_FORMAT, "%s: metadata has no \"config\" object", file);
    vt_train_cfg_init(c);
    copy_str(c->problem, sizeof c->problem, jstr(j, "problem", ""));
    copy_str(c->data, sizeof c->data, jstr(j, "data", ""));
    copy_str(c->optimizer, sizeof c->optimizer, jstr(j, "optimizer", ""));
    copy_str(c->schedule, sizeof c->schedule, jstr(j, "schedule", ""));
    copy_str(c->pretrained, sizeof c->pretrained, jstr(j, "pretrained", ""));
    if (!vt_problem_find(c->problem)) return vt_error(VT_ERR_FORMAT, "%s: config.problem '%s' is unknown", file, c->problem);
    const double big = 1e300;
    double x = 0;
#define VT_FIELD(key, def, lo, hi, whole, dst, type) \
    VT_TRY(jfield(j, "config", key, def, lo, hi, whole, file, &x)); \
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
    c->act = act_from_name(jstr(j, "activation", "relu"));
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
#undef VT_FIELD
    c->nan_policy = strcmp(jstr(j, "nan_policy", "stop"), "skip-step") == 0;
    return VT_OK;
}

static cJSON *metrics_json(const vt_epoch_metrics *e) {
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

/* Checkpoint tensors: parameters and BN statistics under their PyTorch names, optimizer slots as
 * "optim.<slot>.<name>", so a checkpoint is independent of the block layout and the backend. */
static vt_status ckpt_save(vt_trainer *t, const char *path, double test_acc) {
    if (t->rank != 0) return VT_OK; /* one writer: the ranks hold the same state */
    vt_tensor_dict d = {0};
    vt_status s = VT_OK;
    int bad = 0;
    VT_TRY(params_nonfinite(t, &bad));
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
        cJSON_AddItemToObject(meta, "config", cfg_to_json(t));
        cJSON_AddNumberToObject(meta, "epoch", t->epoch);
        cJSON_AddNumberToObject(meta, "step_in_epoch", (double)t->step_in_epoch);
        cJSON_AddNumberToObject(meta, "global_step", (double)t->global_step);
        cJSON_AddNumberToObject(meta, "best_test_acc", t->best_acc);
        cJSON_AddNumberToObject(meta, "best_epoch", t->best_epoch);
        cJSON_AddNumberToObject(meta, "test_acc", test_acc);
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
        norm_of(t->in_c, mean, std);
        cJSON *norm = cJSON_CreateObject(), *jm = cJSON_CreateArray(), *js = cJSON_CreateArray();
        for (int c = 0; c < nc; c++) {
            cJSON_AddItemToArray(jm, float_json(mean[c]));
            cJSON_AddItemToArray(js, float_json(std[c]));
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
        for (int i = 0; i < t->n_hist; i++) cJSON_AddItemToArray(hist, metrics_json(&t->hist[i]));
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
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(out + k, n - k, "%s%lld", i ? "," : "", (long long)shape[i]);
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
            return vt_error(VT_ERR_NUMERIC, "%s: tensor %s holds NaN/Inf (element %zu is %g): the checkpoint is not usable",
                            file, name, i, (double)f[i]);
    return VT_OK;
}

/* need_opt: resuming needs the optimizer slots; eval does not read them. */
static vt_status ckpt_load_tensors(vt_trainer *t, const vt_tensor_dict *d, const char *file, int need_opt) {
    for (int i = 0; i < vt_params_n_params(t->m); i++) {
        vt_tensor *p = vt_params_param_at(t->m, i);
        const vt_host_tensor *h = vt_dict_find(d, p->name);
        if (!h) return vt_error(VT_ERR_FORMAT, "%s: tensor %s is missing (checkpoint of another model?)", file, p->name);
        VT_TRY(check_host_tensor(h, p, p->name, file));
        VT_TRY(vt_tensor_upload(p, h->data, h->nbytes));
        if (!need_opt) continue;
        for (int slot = 0; slot < vt_params_n_opt_slots(t->m); slot++) {
            char name[200];
            snprintf(name, sizeof name, "optim.%d.%s", slot, p->name);
            const vt_host_tensor *o = vt_dict_find(d, name);
            if (!o) return vt_error(VT_ERR_FORMAT, "%s: optimizer state %s is missing (another optimizer?)", file, name);
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
#define VT_META(key, lo, hi, whole, dst, type) \
    VT_TRY(jfield(meta, "", key, 0, lo, hi, whole, file, &x)); \
    dst = (type)x
    VT_META("epoch", 0, 1e6, 1, t->epoch, int);
    VT_META("step_in_epoch", 0, 1e15, 1, t->step_in_epoch, int64_t);
    VT_META("global_step", 0, 1e15, 1, t->global_step, int64_t);
    VT_META("best_test_acc", 0, 100, 0, t->best_acc, double);
    VT_META("best_epoch", 0, 1e6, 1, t->best_epoch, int);
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
    const cJSON *e;
    cJSON_ArrayForEach(e, hist) {
        vt_epoch_metrics *m = &t->hist[t->n_hist];
        m->epoch = (int)fmin(fmax(jnum(e, "epoch", t->n_hist + 1), 0), 1e6);
        m->train_loss = jnum(e, "train_loss", 0);
        m->train_acc = jnum(e, "train_acc", 0);
        m->test_loss = jnum(e, "test_loss", 0);
        m->test_acc = jnum(e, "test_acc", 0);
        m->lr = jnum(e, "lr", 0);
        m->epoch_seconds = jnum(e, "epoch_seconds", 0);
        m->cum_seconds = jnum(e, "cum_seconds", 0);
        m->images_per_s = jnum(e, "images_per_s", 0);
        t->n_hist++;
    }
    return VT_OK;
}

/* Progress, history and counters of a checkpoint's run; on failure the caller frees the trainer. */
static vt_status resume_state(vt_trainer *t, const vt_tensor_dict *d, const char *file) {
    cJSON *meta = cJSON_Parse(d->meta_json ? d->meta_json : "");
    if (!meta) return vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", file);
    vt_status s = resume_fields(t, meta, file);
    cJSON_Delete(meta);
    return s;
}

/* ---- run folder ---------------------------------------------------------------------------- */

static vt_status mkdir_p(const char *path) {
    char tmp[512];
    copy_str(tmp, sizeof tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return vt_error(VT_ERR_IO, "cannot create folder %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return vt_error(VT_ERR_IO, "cannot create folder %s: %s", tmp, strerror(errno));
    return VT_OK;
}

static vt_status write_text(const char *dir, const char *name, const char *text, const char *mode) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (!f) return vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? VT_OK : vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
}

static vt_status write_json_file(const char *dir, const char *name, cJSON *j) {
    char *txt = cJSON_Print(j);
    if (!txt) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = write_text(dir, name, txt, "w");
    free(txt);
    if (s == VT_OK) s = write_text(dir, name, "\n", "a");
    return s;
}

/* An exclusive lock on RUN/.lock for the whole run: a second trainer on the same folder would
 * overwrite the first one's checkpoints. The file keeps the holder's pid for the message. */
static vt_status lock_run_dir(vt_trainer *t) {
    if (t->locked) return VT_OK;
    char path[700];
    snprintf(path, sizeof path, "%s/.lock", t->cfg.out_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return vt_error(VT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char txt[32] = "";
        ssize_t n = pread(fd, txt, sizeof txt - 1, 0);
        txt[n > 0 ? n : 0] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return vt_error(VT_ERR_IO, "run folder %s is in use by another vtrain (pid %ld)", t->cfg.out_dir, atol(txt));
        return vt_error(VT_ERR_IO, "cannot lock %s: %s", path, strerror(e));
    }
    char txt[32];
    int n = snprintf(txt, sizeof txt, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, txt, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    t->lock_fd = fd;
    t->locked = 1;
    return VT_OK;
}

/* The files a run writes in its folder (the report's too), removed by --overwrite. */
static const char *const vt_run_files[] = {"config.json", "last.vtc", "best.vtc", "init.vtc", "summary.json",
                                           "summary.md", "metrics.jsonl", "metrics.csv", "classes.txt", "report.html",
                                           "acc_epoch.svg", "acc_time.svg", "loss_epoch.svg"};

/* A folder that holds a run is continued (--resume) or replaced (--overwrite), never overwritten silently. */
static vt_status check_run_dir(vt_trainer *t) {
    if (t->cfg.resume[0]) return VT_OK;
    const char *marks[3] = {"config.json", "last.vtc", "summary.json"};
    int holds = 0;
    char path[700];
    for (int i = 0; i < 3 && !holds; i++) {
        snprintf(path, sizeof path, "%s/%s", t->cfg.out_dir, marks[i]);
        holds = access(path, F_OK) == 0;
    }
    if (!holds) return VT_OK;
    if (!t->cfg.overwrite)
        return vt_error(VT_ERR_INVALID_ARG,
                        "%s already holds a run; continue it with --resume %s/last.vtc, replace it with --overwrite, "
                        "or choose another --out", t->cfg.out_dir, t->cfg.out_dir);
    for (size_t i = 0; i < sizeof vt_run_files / sizeof vt_run_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", t->cfg.out_dir, vt_run_files[i]);
        if (unlink(path) != 0 && errno != ENOENT) return vt_error(VT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    return VT_OK;
}

static vt_status write_classes(const vt_trainer *t) {
    if (!t->class_names || t->rank != 0) return VT_OK;
    size_t cap = 1;
    for (int i = 0; i < t->n_classes; i++) cap += strlen(t->class_names[i]) + 1;
    char *txt = malloc(cap), *q = txt;
    if (!txt) return vt_error(VT_ERR_OOM, "out of host memory");
    for (int i = 0; i < t->n_classes; i++) {
        size_t k = strlen(t->class_names[i]);
        memcpy(q, t->class_names[i], k);
        for (size_t j = 0; j < k; j++)
            if (q[j] == '\n' || q[j] == '\r') q[j] = ' '; /* one name per line */
        q += k;
        *q++ = '\n';
    }
    *q = 0;
    vt_status s = write_text(t->cfg.out_dir, "classes.txt", txt, "w");
    free(txt);
    return s;
}

/* metrics.jsonl and metrics.csv are rewritten from the history, so a resumed run has them whole. */
static vt_status write_metrics(const vt_trainer *t) {
    if (t->rank != 0) return VT_OK;
    size_t cap = 256 + (size_t)t->n_hist * 400;
    char *jl = malloc(cap), *csv = malloc(cap);
    if (!jl || !csv) {
        free(jl);
        free(csv);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    size_t a = 0, b = 0;
    b += (size_t)snprintf(csv + b, cap - b, "epoch,train_loss,train_acc,test_loss,test_acc,lr,epoch_seconds,cum_seconds,images_per_s\n");
    jl[0] = 0;
    for (int i = 0; i < t->n_hist; i++) {
        const vt_epoch_metrics *e = &t->hist[i];
        a += (size_t)snprintf(jl + a, cap - a,
                              "{\"epoch\":%d,\"train_loss\":%.6f,\"train_acc\":%.4f,\"test_loss\":%.6f,\"test_acc\":%.4f,"
                              "\"lr\":%.8g,\"epoch_seconds\":%.3f,\"cum_seconds\":%.3f,\"images_per_s\":%.1f}\n",
                              e->epoch, e->train_loss, e->train_acc, e->test_loss, e->test_acc, e->lr, e->epoch_seconds,
                              e->cum_seconds, e->images_per_s);
        b += (size_t)snprintf(csv + b, cap - b, "%d,%.6f,%.4f,%.6f,%.4f,%.8g,%.3f,%.3f,%.1f\n", e->epoch, e->train_loss,
                              e->train_acc, e->test_loss, e->test_acc, e->lr, e->epoch_seconds, e->cum_seconds, e->images_per_s);
    }
    vt_status s = write_text(t->cfg.out_dir, "metrics.jsonl", jl, "w");
    if (s == VT_OK) s = write_text(t->cfg.out_dir, "metrics.csv", csv, "w");
    free(jl);
    free(csv);
    return s;
}

/* Convergence: the first epoch whose test accuracy is within 1 point of the run's best. */
static void summarise(const vt_trainer *t, vt_train_result *r) {
    memset(r, 0, sizeof *r);
    r->epochs_done = t->n_hist;
    r->global_step = t->global_step;
    r->params = vt_params_param_count(t->m);
    r->time_to_target_seconds = t->time_to_target;
    r->cum_seconds = t->cum_seconds;
    for (int i = 0; i < t->n_hist; i++)
        if (t->hist[i].test_acc > r->best_test_acc || i == 0) {
            r->best_test_acc = t->hist[i].test_acc;
            r->best_epoch = t->hist[i].epoch;
        }
    for (int i = 0; i < t->n_hist; i++)
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

static vt_status write_summary(const vt_trainer *t, const vt_train_result *r) {
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
    cJSON_AddNumberToObject(j, "convergence_epoch", r->convergence_epoch);
    cJSON_AddNumberToObject(j, "convergence_seconds", r->convergence_seconds);
    cJSON_AddNumberToObject(j, "seconds_per_epoch", r->epochs_done ? r->cum_seconds / r->epochs_done : 0);
    cJSON_AddNumberToObject(j, "images_per_s", r->images_per_s);
    cJSON_AddStringToObject(j, "backend", t->be->info.backend);
    cJSON_AddStringToObject(j, "device", t->be->info.name);
    cJSON_AddStringToObject(j, "data", t->data_path);
    cJSON_AddNumberToObject(j, "target_acc", t->cfg.target_acc);
    if (t->cfg.target_acc > 0 && t->time_to_target > 0) cJSON_AddNumberToObject(j, "time_to_target_seconds", t->time_to_target);
    else cJSON_AddNullToObject(j, "time_to_target_seconds");
    cJSON_AddBoolToObject(j, "interrupted", r->interrupted);
    cJSON_AddBoolToObject(j, "cut", r->cut);
    if (r->cut) cJSON_AddStringToObject(j, "cut_reason", r->cut_reason);
    else cJSON_AddNullToObject(j, "cut_reason");
    cJSON_AddNumberToObject(j, "global_step", (double)t->global_step);
    cJSON_AddNumberToObject(j, "skipped_steps", (double)t->skipped_steps);
    vt_status s = write_json_file(t->cfg.out_dir, "summary.json", j);
    cJSON_Delete(j);
    return s;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static vt_status load_data(vt_trainer *t, vt_dataset *train, vt_dataset *test) {
    const char *path = t->cfg.data[0] ? t->cfg.data : "data";
    char found[512];
    if (!t->cfg.data[0]) {
        /* the README's main command: CIFAR-100 in data/ */
        VT_TRY(vt_dataset_find_or_explain("cifar100", "data", found, sizeof found));
        path = found;
    }
    copy_str(t->data_path, sizeof t->data_path, path);
    vt_dataset_opts o = {.labels = t->cfg.labels_coarse ? VT_LABELS_COARSE : VT_LABELS_FINE, .limit = t->cfg.limit_train};
    VT_TRY(vt_dataset_load(path, "train", &o, train));
    o.limit = t->cfg.limit_test;
    VT_TRY(vt_dataset_load(path, "test", &o, test));
    copy_str(t->data_format, sizeof t->data_format, train->format);
    return VT_OK;
}

/* Reads the checkpoint to resume from; the run continues with its configuration (epochs may be raised). */
static vt_status load_resume(vt_trainer *t, const vt_train_cfg *cfg_in, vt_tensor_dict *resume) {
    VT_TRY(vt_check_regular_file(t->cfg.resume, "checkpoint"));
    VT_TRY(vt_ckpt_read(t->cfg.resume, resume));
    cJSON *meta = cJSON_Parse(resume->meta_json ? resume->meta_json : "");
    vt_train_cfg saved;
    vt_status s = meta ? cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), t->cfg.resume, &saved)
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
    VT_TRY(resolve_cfg(&saved, t));
    return resume_state(t, resume, t->cfg.resume);
}

/* What the message of a numeric stop says about the checkpoints on disk. */
static void kept_text(const vt_trainer *t, const char *last_path, char *out, size_t n) {
    if (t->cfg.no_checkpoints || access(last_path, F_OK) != 0) snprintf(out, n, "no checkpoint had been written yet");
    else snprintf(out, n, "the last good checkpoint %s is kept", last_path);
}

vt_status vt_train_run(const vt_train_cfg *cfg_in, vt_backend *be, vt_train_result *res) {
    vt_trainer T;
    memset(&T, 0, sizeof T);
    vt_trainer *t = &T;
    memset(res, 0, sizeof *res);
    t->comm = cfg_in->comm;
    t->nranks = vt_comm_size(t->comm);
    t->rank = vt_comm_rank(t->comm);
    vt_tensor_dict resume = {0};
    vt_status s = VT_OK;
    if (cfg_in->resume[0]) t->cfg = *cfg_in; /* the checkpoint's configuration is resolved below */
    else s = resolve_cfg(cfg_in, t);
    if (s == VT_OK && !t->cfg.resume[0] && t->prob->pretrained && !t->cfg.pretrained[0])
        s = vt_error(VT_ERR_INVALID_ARG,
                     "%s needs ImageNet weights: give --pretrained FILE (see docs/weights.md), or --pretrained none to "
                     "train it from random weights", t->prob->name);
    if (s == VT_OK && t->cfg.resume[0]) s = load_resume(t, cfg_in, &resume);
    if (s != VT_OK) {
        vt_dict_free(&resume);
        trainer_free(t);
        return s;
    }
    copy_str(res->problem, sizeof res->problem, t->cfg.problem);
    if (t->rank > 0) t->cfg.quiet = 1; /* rank 0 speaks for the job */
    if (!t->cfg.out_dir[0] && t->cfg.resume[0]) {
        /* a resumed run continues in the folder its checkpoint is in */
        copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, t->cfg.resume);
        char *slash = strrchr(t->cfg.out_dir, '/');
        if (slash && slash != t->cfg.out_dir) *slash = 0;
        else copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, slash ? "/" : ".");
    }
    if (!t->cfg.out_dir[0]) { copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, "runs/"); copy_str(t->cfg.out_dir + 5, sizeof t->cfg.out_dir - 5, t->cfg.problem); }
    /* An existing folder is locked before the data is read, so that a clash fails at once; a new one is
     * created only once the model fits on the device. Whether it already holds a run is decided once the
     * data and the model are ready, so that a run that cannot start leaves an old run (and --overwrite
     * removes nothing) untouched. */
    struct stat st;
    /* Only rank 0 touches the run folder: the other ranks neither lock nor write it. */
    if (t->rank == 0 && stat(t->cfg.out_dir, &st) == 0 && S_ISDIR(st.st_mode)) s = lock_run_dir(t);
    vt_dataset train = {0}, test = {0};
    if (s == VT_OK) s = load_data(t, &train, &test);
    if (s == VT_OK) s = trainer_setup(t, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK && t->cfg.resume[0]) s = ckpt_load_tensors(t, &resume, t->cfg.resume, 1);
    if (s == VT_OK && t->step_in_epoch > t->steps_per_epoch)
        s = vt_error(VT_ERR_FORMAT, "%s: step_in_epoch = %lld, but an epoch has %d steps here (other data or batch size?)",
                     t->cfg.resume, (long long)t->step_in_epoch, t->steps_per_epoch);
    vt_dict_free(&resume);
    /* every rank starts from rank 0's model, whatever it loaded */
    if (s == VT_OK && dp(t)) s = vt_grad_sync_new(t->comm, vt_params_flat_grads(t->m, -1), 0, &t->gsync);
    if (s == VT_OK) s = dp_broadcast_model(t);
    if (s == VT_OK && t->rank == 0) s = mkdir_p(t->cfg.out_dir);
    if (s == VT_OK && t->rank == 0) s = lock_run_dir(t);
    if (s == VT_OK && t->rank == 0) s = check_run_dir(t);
    if (s == VT_OK && t->rank == 0) {
        cJSON *c = cfg_to_json(t);
        s = write_json_file(t->cfg.out_dir, "config.json", c);
        cJSON_Delete(c);
    }
    if (s == VT_OK) s = write_classes(t);
    if (s == VT_OK && !t->hist) {
        t->cap_hist = t->cfg.epochs + 1;
        t->hist = calloc((size_t)t->cap_hist, sizeof *t->hist);
        if (!t->hist) s = vt_error(VT_ERR_OOM, "out of host memory");
    }
    if (s != VT_OK) {
        trainer_free(t);
        return s;
    }
    int tty = isatty(1) && !t->cfg.quiet;
    char last_path[700], best_path[700];
    snprintf(last_path, sizeof last_path, "%s/last.vtc", t->cfg.out_dir);
    snprintf(best_path, sizeof best_path, "%s/best.vtc", t->cfg.out_dir);
    if (!t->cfg.quiet) {
        printf("%s: %s, %lld parameters, %lld train / %lld test images, %d steps/epoch, backend %s (%s)\n", t->cfg.problem,
               vt_arch_name(t->prob->arch), (long long)vt_params_param_count(t->m), (long long)t->n_train,
               (long long)t->n_test, t->steps_per_epoch, be->info.backend, be->info.name);
        fflush(stdout);
    }
    if (t->cfg.epochs == 0) {
        /* the initial weights, for checking a first step against another framework */
        char init_path[700];
        snprintf(init_path, sizeof init_path, "%s/init.vtc", t->cfg.out_dir);
        s = ckpt_save(t, init_path, 0);
        if (s == VT_OK && !t->cfg.no_checkpoints) s = ckpt_save(t, last_path, 0);
    }
    double budget = t->cfg.max_minutes > 0 ? t->cfg.max_minutes * 60.0 : 1e300;
    int stop = 0, bad_windows = 0;
    const char *cut_reason = "";
    int bn_counts = t->mcfg.batchnorm && !t->cfg.frozen_bn;
    vt_params_snapshot snap = {0}, ok = {0};
    while (t->epoch < t->cfg.epochs && !stop && s == VT_OK) {
        int ep = t->epoch;
        if (t->cfg.max_steps > 0 && t->global_step >= t->cfg.max_steps) {
            stop = 1;
            cut_reason = "steps";
            break;
        }
        if (t->frozen && ep >= t->cfg.freeze_backbone_epochs) {
            /* unfreeze: the backbone's Adam steps count from here */
            t->frozen = 0;
            t->ocfg.step_offset[0] = t->global_step;
            s = build_train_graph(t);
            if (s != VT_OK) break;
        }
        s = upload_perm(t, ep);
        if (s != VT_OK) break;
        double m0[3] = {t->part_loss, t->part_correct, t->part_count};
        s = upload_train_metrics(t, m0);
        if (s != VT_OK) break;
        double t0 = now_s();
        int64_t first_step = t->step_in_epoch, images = 0, ep_skipped = 0;
        double m[3] = {t->part_loss, t->part_correct, t->part_count};
        double lr = t->cfg.lr;
        int64_t checked_step = t->global_step;
        double good_m[3] = {m[0], m[1], m[2]}, ok_m[3] = {m[0], m[1], m[2]};
        int64_t ok_step = t->global_step, snap_step = t->global_step;
        if (t->cfg.nan_policy) s = vt_params_snapshot_take(t->m, &snap);
        if (t->cfg.nan_policy && s == VT_OK) s = vt_params_snapshot_take(t->m, &ok);
        if (s != VT_OK) break;
        while (t->step_in_epoch < t->steps_per_epoch) {
            double ep_frac = ep + (double)t->step_in_epoch / t->steps_per_epoch;
            lr = vt_schedule_lr(&t->sched, ep_frac);
            vt_step_ctx ctx = {.step = (uint64_t)t->global_step, .seed = t->cfg.seed, .lr = (float)lr,
                               .batch_start = t->step_in_epoch * t->cfg.batch_size + (int64_t)t->rank * t->local_b};
            s = train_step(t, &ctx);
            if (s != VT_OK) break;
            t->step_in_epoch++;
            t->global_step++;
            if (bn_counts) t->bn_tracked++;
            images += t->cfg.batch_size;
            int last = t->step_in_epoch == t->steps_per_epoch;
            int over_steps = t->cfg.max_steps > 0 && t->global_step >= t->cfg.max_steps;
            int over_time = t->cum_seconds + (now_s() - t0) > budget;
            if (dp(t)) {
                /* clocks and signals differ between ranks: stop when any rank would */
                double f[2] = {over_time, vt_train_stop_requested};
                s = vt_comm_allreduce_sum_f64(t->comm, f, 2);
                if (s != VT_OK) break;
                over_time = f[0] > 0;
                if (f[1] > 0) vt_train_stop_requested = 1;
            }
            int over = over_steps || over_time;
            if (!(last || over || vt_train_stop_requested || (t->step_in_epoch - first_step) % t->cfg.log_every == 0))
                continue;
            s = read_metrics(t->tr_metrics, m);
            if (s == VT_OK) s = dp_sum(t, m, 3);
            if (s != VT_OK) break;
            /* ReLU can hide NaN weights from the loss: the parameters themselves are checked too */
            int params_bad = 0;
            if (isfinite(m[0])) s = params_nonfinite(t, &params_bad);
            if (s == VT_OK) s = dp_any(t, &params_bad);
            if (s != VT_OK) break;
            const char *what = params_bad ? "parameters became NaN/Inf" : isnan(m[0]) ? "loss became NaN" : "loss became Inf";
            if ((params_bad || !isfinite(m[0])) && t->cfg.nan_policy) {
                /* skip-step: back to the state the last finite window started from (a read-back sees the
                 * loss before the window's last update, so the state at the read-back is unproven) */
                int64_t n_bad = t->global_step - ok_step;
                t->skipped_steps += n_bad;
                ep_skipped += n_bad;
                if (bn_counts) t->bn_tracked -= n_bad;
                bad_windows++;
                vt_progress_clear(stdout, tty);
                if (!t->cfg.quiet)
                    fprintf(stderr, "%s: %s in steps %lld-%lld; steps %lld-%lld skipped (rolled back)\n", t->cfg.problem,
                            what, (long long)checked_step + 1, (long long)t->global_step, (long long)ok_step + 1,
                            (long long)t->global_step);
                if (bad_windows > 20) {
                    s = vt_error(VT_ERR_NUMERIC, "%s: NaN/Inf in %d read-back windows in a row (%lld steps "
                                 "skipped); try a smaller --lr. Checkpoints already written (%s) are kept",
                                 t->cfg.problem, bad_windows, (long long)t->skipped_steps, last_path);
                    break;
                }
                s = vt_params_snapshot_restore(t->m, &ok);
                if (s == VT_OK) s = vt_params_snapshot_take(t->m, &snap);
                if (s == VT_OK) s = upload_train_metrics(t, ok_m);
                if (s != VT_OK) break;
                for (int k = 0; k < 3; k++) m[k] = good_m[k] = ok_m[k];
                checked_step = ok_step = snap_step = t->global_step;
                continue;
            }
            if (params_bad || !isfinite(m[0])) {
                char kept[800];
                kept_text(t, last_path, kept, sizeof kept);
                vt_progress_clear(stdout, tty);
                s = vt_error(VT_ERR_NUMERIC,
                             "%s: %s between step %lld and %lld (epoch %d, learning rate %g)%s; try a smaller --lr (or "
                             "--nan-policy skip-step); %s",
                             t->cfg.problem, params_bad ? "parameters became NaN/Inf" : isnan(m[0]) ? "training loss became NaN" : "training loss became Inf",
                             (long long)checked_step + 1, (long long)t->global_step, ep + 1, lr,
                             params_bad ? " while the loss stayed finite" : "", kept);
                break;
            }
            checked_step = t->global_step;
            if (t->cfg.nan_policy) {
                bad_windows = 0;
                /* this finite window validates the state it started from, not the one it ends in */
                vt_params_snapshot tmp = ok;
                ok = snap;
                snap = tmp;
                ok_step = snap_step;
                snap_step = t->global_step;
                for (int k = 0; k < 3; k++) {
                    ok_m[k] = good_m[k];
                    good_m[k] = m[k];
                }
                s = vt_params_snapshot_take(t->m, &snap);
                if (s != VT_OK) break;
            }
            if (!t->cfg.quiet) {
                double el = now_s() - t0;
                double rate = el > 0 ? (double)(t->step_in_epoch - first_step) / el : 0; /* steps/s */
                int64_t left = (int64_t)(t->cfg.epochs - ep) * t->steps_per_epoch - t->step_in_epoch;
                if (t->cfg.max_steps > 0 && t->cfg.max_steps - t->global_step < left) left = t->cfg.max_steps - t->global_step;
                double elapsed = t->cum_seconds + el;
                double eta = rate > 0 ? (double)left / rate : -1;
                if (t->cfg.max_minutes > 0 && (eta < 0 || eta > budget - elapsed)) eta = budget > elapsed ? budget - elapsed : 0;
                vt_progress p = {.problem = t->cfg.problem, .problem_index = t->cfg.problem_index,
                                 .problem_count = t->cfg.problem_count, .epoch = ep + 1, .epochs = t->cfg.epochs,
                                 .step = t->step_in_epoch, .steps = t->steps_per_epoch,
                                 .loss = m[2] > 0 ? m[0] / m[2] : 0, .acc = m[2] > 0 ? 100 * m[1] / m[2] : 0,
                                 .images_per_s = el > 0 ? images / el : 0, .elapsed_s = elapsed, .eta_s = eta};
                vt_progress_show(&p, stdout, tty);
            }
            if (over) {
                stop = 1;
                cut_reason = over_steps ? "steps" : "max-minutes";
            }
            if (vt_train_stop_requested || over) break;
        }
        if (s != VT_OK) break;
        double train_secs = now_s() - t0;
        t->cum_seconds += train_secs;
        int halted = (vt_train_stop_requested || stop) && t->step_in_epoch < t->steps_per_epoch;
        double test_loss = 0, test_acc = 0;
        int evaluated = 0;
        if (t->cfg.nan_policy && !halted) {
            /* The epoch's last window proved the state it started from, not the one it ended in: finite
             * weights can still be large enough to give a NaN test loss. Then back to the proven state. */
            s = evaluate(t, &test_loss, &test_acc);
            evaluated = s == VT_OK;
            if (s == VT_ERR_NUMERIC && t->global_step > ok_step) {
                int64_t n_bad = t->global_step - ok_step;
                t->skipped_steps += n_bad;
                ep_skipped += n_bad;
                if (bn_counts) t->bn_tracked -= n_bad;
                if (!t->cfg.quiet)
                    fprintf(stderr, "%s: %s; steps %lld-%lld skipped (rolled back)\n", t->cfg.problem, vt_last_error(),
                            (long long)ok_step + 1, (long long)t->global_step);
                s = vt_params_snapshot_restore(t->m, &ok);
                for (int k = 0; k < 3; k++) m[k] = ok_m[k];
                ok_step = t->global_step;
            }
            if (s != VT_OK) break;
        }
        if (t->cfg.nan_policy && ep_skipped > 0 && ep_skipped >= t->step_in_epoch - first_step) {
            char kept[800];
            kept_text(t, last_path, kept, sizeof kept);
            s = vt_error(VT_ERR_NUMERIC,
                         "%s: every step of epoch %d (%lld) gave NaN/Inf and was skipped, so nothing was trained; try a "
                         "smaller --lr; %s", t->cfg.problem, ep + 1, (long long)ep_skipped, kept);
            break;
        }
        if (halted) {
            /* mid-epoch stop or cut: save where we are; resume continues this very epoch */
            t->part_loss = m[0];
            t->part_correct = m[1];
            t->part_count = m[2];
            vt_progress_clear(stdout, tty);
            if (!t->cfg.no_checkpoints) s = dp_bn_states(t);
            if (s == VT_OK && !t->cfg.no_checkpoints) s = ckpt_save(t, last_path, 0);
            res->interrupted = vt_train_stop_requested != 0;
            break;
        }
        if (!evaluated) s = evaluate(t, &test_loss, &test_acc);
        if (s != VT_OK) break;
        vt_epoch_metrics *e = &t->hist[t->n_hist++];
        e->epoch = ep + 1;
        e->train_loss = m[2] > 0 ? m[0] / m[2] : 0;
        e->train_acc = m[2] > 0 ? 100 * m[1] / m[2] : 0;
        e->test_loss = test_loss;
        e->test_acc = test_acc;
        e->lr = lr;
        e->epoch_seconds = train_secs;
        e->cum_seconds = t->cum_seconds;
        e->images_per_s = train_secs > 0 ? images / train_secs : 0;
        t->epoch++;
        t->step_in_epoch = 0;
        t->part_loss = t->part_correct = t->part_count = 0;
        if (t->cfg.target_acc > 0 && t->time_to_target == 0 && test_acc >= t->cfg.target_acc) t->time_to_target = t->cum_seconds;
        int improved = t->n_hist == 1 || test_acc > t->best_acc;
        if (improved) {
            t->best_acc = test_acc;
            t->best_epoch = ep + 1;
        }
        vt_progress_clear(stdout, tty);
        if (!t->cfg.quiet) {
            printf("%s epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.3g | %.1fs, %.0f img/s\n",
                   t->cfg.problem, ep + 1, t->cfg.epochs, e->train_loss, e->train_acc, test_loss, test_acc, lr, train_secs,
                   e->images_per_s);
            fflush(stdout);
        }
        s = write_metrics(t);
        if (s == VT_OK && !t->cfg.no_checkpoints) {
            s = ckpt_save(t, last_path, test_acc);
            if (s == VT_OK && improved) s = ckpt_save(t, best_path, test_acc);
        }
        if (vt_train_stop_requested) {
            res->interrupted = 1;
            break;
        }
    }
    vt_params_snapshot_free(&snap);
    vt_params_snapshot_free(&ok);
    if (dp(t) && !t->cfg.quiet && t->cum_seconds > 0) {
        /* what the communication cost, for docs/distributed.md's model */
        const vt_comm_stats *cs = vt_comm_get_stats(t->comm);
        printf("%s: %d ranks; %.3f s of %.3f s training in collectives; waits for the gradient averages after the "
               "backward pass %.3f s (%.1f%%)%s; %.2f MB of gradients a step\n", t->cfg.problem, t->nranks, cs->seconds, t->cum_seconds,
               t->exposed_seconds, 100.0 * t->exposed_seconds / t->cum_seconds,
               vt_grad_sync_can_overlap(t->gsync) ? "" : " (no overlap here)", (double)vt_grad_sync_bytes(t->gsync) / 1e6);
    }
    if (stop && t->epoch < t->cfg.epochs) {
        res->cut = 1;
        copy_str(res->cut_reason, sizeof res->cut_reason, cut_reason);
    }
    vt_status s_end = s;
    if (t->skipped_steps && !t->cfg.quiet)
        fprintf(stderr, "%s: skipped %lld steps whose loss or parameters were NaN/Inf (--nan-policy skip-step)\n",
                t->cfg.problem, (long long)t->skipped_steps);
    if (s == VT_OK || s == VT_ERR_NUMERIC) {
        vt_train_result keep = *res;
        summarise(t, res);
        res->interrupted = keep.interrupted;
        res->cut = keep.cut;
        copy_str(res->cut_reason, sizeof res->cut_reason, keep.cut_reason);
        if (t->n_hist || res->cut || res->interrupted) {
            vt_status s2 = write_summary(t, res);
            if (s_end == VT_OK) s_end = s2;
        }
    }
    copy_str(res->out_dir, sizeof res->out_dir, t->cfg.out_dir);
    copy_str(res->problem, sizeof res->problem, t->cfg.problem);
    trainer_free(t);
    return s_end;
}

/* ---- eval, export, bench ------------------------------------------------------------------- */

vt_status vt_eval_checkpoint(const char *ckpt, const char *data, vt_backend *be, double *test_loss, double *test_acc,
                             double *recorded_acc) {
    vt_tensor_dict d = {0};
    VT_TRY(vt_check_regular_file(ckpt, "checkpoint"));
    VT_TRY(vt_ckpt_read(ckpt, &d));
    cJSON *meta = cJSON_Parse(d.meta_json ? d.meta_json : "");
    vt_train_cfg c;
    vt_status s = meta ? cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), ckpt, &c)
                       : vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", ckpt);
    *recorded_acc = meta ? jnum(meta, "test_acc", -1) : -1;
    cJSON_Delete(meta);
    vt_trainer T;
    memset(&T, 0, sizeof T);
    if (s == VT_OK) {
        if (data && data[0]) copy_str(c.data, sizeof c.data, data);
        c.pretrained[0] = 0;
        c.quiet = 1;
        s = resolve_cfg(&c, &T);
    }
    vt_dataset train = {0}, test = {0};
    if (s == VT_OK) {
        /* Only the test split matters; a one-batch slice of train keeps the setup cheap. */
        T.cfg.limit_train = T.cfg.batch_size;
        s = load_data(&T, &train, &test);
    }
    if (s == VT_OK) s = trainer_setup(&T, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK) s = ckpt_load_tensors(&T, &d, ckpt, 0);
    if (s == VT_OK) s = evaluate(&T, test_loss, test_acc);
    vt_dict_free(&d);
    trainer_free(&T);
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static vt_status synth_dataset(vt_dataset *d, int64_t n, int classes, uint32_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = 3;
    d->h = d->w = 32;
    d->n_classes = classes;
    d->images = malloc((size_t)n * 3072);
    d->labels = malloc((size_t)n * sizeof(int32_t));
    if (!d->images || !d->labels) {
        free(d->images);
        free(d->labels);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    vt_rng r;
    vt_rng_init(&r, seed, 77);
    for (int64_t i = 0; i < n * 3072; i++) d->images[i] = (uint8_t)(vt_rng_u32(&r) & 0xff);
    for (int64_t i = 0; i < n; i++) d->labels[i] = (int32_t)vt_rng_below(&r, (uint32_t)classes);
    snprintf(d->format, sizeof d->format, "synthetic");
    return VT_OK;
}

vt_status vt_bench_problem(vt_backend *be, const char *problem, int batch, int warmup, int repeats, vt_step_profile *out) {
    memset(out, 0, sizeof *out);
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    copy_str(c.problem, sizeof c.problem, problem);
    c.batch_size = batch;
    c.quiet = 1;
    vt_trainer T;
    memset(&T, 0, sizeof T);
    VT_TRY(resolve_cfg(&c, &T));
    if (T.prob->arch == VT_ARCH_RESNET18) T.cfg.stem_cifar = 1; /* the CIFAR variant is what people train at 32x32 */
    vt_dataset train, test;
    int64_t n = (int64_t)batch * 4;
    VT_TRY(synth_dataset(&train, n, 100, 1));
    vt_status s = synth_dataset(&test, batch, 100, 2);
    if (s == VT_OK) s = trainer_setup(&T, be, &train, &test);
    free(train.images); free(train.labels); free(test.images); free(test.labels);
    if (s == VT_OK) s = upload_perm(&T, 0);
    if (repeats < 1) repeats = 1;
    double *times = calloc((size_t)repeats, sizeof *times);
    if (!times) s = vt_error(VT_ERR_OOM, "out of host memory");
    vt_step_ctx ctx = {.step = 0, .seed = 1, .lr = 1e-4f, .batch_start = 0};
    for (int i = 0; i < warmup && s == VT_OK; i++) {
        ctx.step = (uint64_t)i;
        s = vt_graph_run(T.train_g, -1, &ctx);
        if (s == VT_OK) s = vt_backend_sync(be);
    }
    vt_backend_counters before = be->counters;
    for (int i = 0; i < repeats && s == VT_OK; i++) {
        ctx.step = (uint64_t)(warmup + i);
        ctx.batch_start = (i % 4) * batch;
        double t0 = now_s();
        s = vt_graph_run(T.train_g, -1, &ctx);
        if (s == VT_OK) s = vt_backend_sync(be);
        times[i] = (now_s() - t0) * 1e3;
    }
    if (s == VT_OK) {
        vt_backend_counters after = be->counters;
        double r = repeats;
        out->dispatches = (uint64_t)((after.dispatches - before.dispatches) / r + 0.5);
        out->uploads = (uint64_t)((after.uploads - before.uploads) / r + 0.5);
        out->downloads = (uint64_t)((after.downloads - before.downloads) / r + 0.5);
        /* the bench's own per-step wait is not part of a training step */
        out->syncs = (uint64_t)((after.syncs - before.syncs) / r - 1 + 0.5);
        qsort(times, (size_t)repeats, sizeof *times, cmp_double);
        out->step_ms_min = times[0];
        out->step_ms_max = times[repeats - 1];
        out->step_ms_median = times[repeats / 2];
        out->images_per_s = batch / (out->step_ms_median / 1e3);
        out->gemm_gflop = vt_graph_flops(T.train_g, 1) / 1e9;
        /* each phase alone, same repeats, median */
        double *ph = &out->data_ms;
        for (int p = 0; p < VT_PHASE_COUNT && s == VT_OK; p++) {
            for (int i = 0; i < repeats && s == VT_OK; i++) {
                double t0 = now_s();
                s = vt_graph_run(T.train_g, p, &ctx);
                if (s == VT_OK) s = vt_backend_sync(be);
                times[i] = (now_s() - t0) * 1e3;
            }
            qsort(times, (size_t)repeats, sizeof *times, cmp_double);
            ph[p] = times[repeats / 2];
        }
    }
    free(times);
    trainer_free(&T);
    return s;
}
