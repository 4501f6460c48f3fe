/* What the files of the trainer share: the trainer's state and the functions each file offers the
 * others. Private to core/train/src; the public interface is vt/train.h. */
#ifndef VT_TRAIN_INTERNAL_H
#define VT_TRAIN_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vt/checkpoint.h"
#include "vt/comm.h"
#include "vt/dataset.h"
#include "vt/models.h"
#include "vt/schedule.h"
#include "vt/segdata.h"
#include "vt/train.h"

/* Bounded copy that always terminates (snprintf("%s") trips gcc's truncation analysis). */
static inline void copy_str(char *dst, size_t n, const char *src) {
    size_t k = strlen(src);
    if (k >= n) k = n - 1;
    memcpy(dst, src, k);
    dst[k] = 0;
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct vt_trainer {
    vt_train_cfg cfg; /* resolved: no "unset" values left */
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
    char last_path[700], best_path[700]; /* RUN/last.vtc, RUN/best.vtc */
    /* progress */
    int epoch; /* completed epochs */
    int64_t step_in_epoch, global_step;
    double best_acc, cum_seconds, time_to_target;
    int best_epoch;
    double part_loss, part_correct, part_count; /* train metrics of a partly done epoch (resume) */
    int64_t skipped_steps;                      /* --nan-policy skip-step: steps rolled back */
    int64_t bn_tracked;                         /* batches seen by BN in training mode (imported + counted) */
    vt_tensor *nf_flag;                         /* i32 [1]: NONFINITE's flag */
    int lock_fd, locked;                        /* flock on RUN/.lock, held for the whole run */
    char **class_names;                         /* n_classes names from the dataset (NULL for synthetic data) */
    int in_c, in_h, in_w;                       /* the dataset's image shape */
    vt_epoch_metrics *hist;
    int n_hist, cap_hist;
    /* data parallel: this rank trains on images [rank * local_b, (rank + 1) * local_b) of every global
     * batch and evaluates test images [te_lo, te_hi); one rank = a single process */
    vt_comm *comm;
    int rank, nranks, local_b;
    int64_t te_lo, te_hi;
    vt_grad_sync *gsync;
    /* the step in pieces (see plan_pieces): the train graph's nodes before the optimizer, cut after the
     * data phase, after each sync point of the synchronised batch norm and (overlap) after the last node
     * that touches each gradient bucket */
    const vt_graph *ov_graph; /* the graph the pieces were cut from (rebuilt graphs are cut again) */
    vt_graph_exec *ov_piece;
    int ov_n, ov_first_bwd;  /* pieces; index of the first piece after the data phase */
    int ov_overlap, ov_nb;   /* cut for overlap; buckets planned (0 without overlap) */
    int *ov_bucket_piece;    /* per bucket: the piece after which it is ready (-1: before any) */
    float *sb_mine, *sb_all; /* host staging of a sync point: this rank's values, every rank's */
    double exposed_seconds;  /* communication the backward pass did not hide, whole run */
    double sync_bn_seconds;  /* in the synchronised batch norm's combines (staging included), whole run */
    int64_t sync_bn_combines;
    /* segmentation (prob->segmentation): masks u8 [D,H,W] in place of the labels, the eval graphs count
     * a confusion matrix into te_conf (i32 [K+1,K+1]) that tr_evaluate turns into te_scores */
    int seg;
    int crop_h, crop_w; /* the training crop (the whole image without --crop) */
    vt_tensor *te_conf;
    vt_seg_scores te_scores; /* of the last evaluation */
    int have_scores;         /* te_scores holds an evaluation of the current weights */
    double best_miou;        /* highest test mIoU so far (fraction) */
    double *hist_iou;        /* per epoch of hist: VT_TR_MAX_CLASSES per-class IoUs (NaN: not counted) */
} vt_trainer;

#define VT_TR_MAX_CLASSES 256

/* The score that ranks epochs (best.vtc, convergence, --target-acc): test accuracy in percent for
 * classification, test mIoU in percent for segmentation. */
static inline double tr_score(const vt_trainer *t, const vt_epoch_metrics *e) {
    return t->seg ? 100.0 * e->test_miou : e->test_acc;
}

/* Does BN count the batches it sees in training mode (num_batches_tracked)? */
static inline int tr_bn_counts(const vt_trainer *t) { return t->mcfg.batchnorm && !t->cfg.frozen_bn; }

/* ---- run_config.c: defaults, config JSON, resume merge ------------------------------------- */
/* Weights to import: a file given, and not the explicit "none". */
int tr_wants_weights(const vt_train_cfg *c);
/* t->cfg from `in` with the problem's defaults for what is unset; optimizer and schedule from it. */
vt_status tr_resolve_cfg(const vt_train_cfg *in, vt_trainer *t);
/* The run's configuration: cfg_in resolved, or (--resume) the checkpoint's, read into `resume`, with
 * the options a resumed run may change taken from cfg_in. */
vt_status tr_configure(vt_trainer *t, const vt_train_cfg *cfg_in, vt_tensor_dict *resume);
cJSON *tr_float_json(float v);
cJSON *tr_cfg_to_json(const vt_trainer *t);
vt_status tr_cfg_from_json(const cJSON *j, const char *file, vt_train_cfg *c);
double tr_jnum(const cJSON *o, const char *k, double def);
vt_status tr_jfield(const cJSON *o, const char *sect, const char *k, double def, double lo, double hi, int whole,
                    const char *file, double *out);

/* ---- run_folder.c: the folder a run writes -------------------------------------------------- */
/* Chooses the folder (given, the resumed checkpoint's, or runs/<problem>) and locks it if it exists. */
vt_status tr_run_folder_choose(vt_trainer *t);
/* Creates and locks the folder, refuses one holding a run (unless --resume or --overwrite), writes
 * config.json and classes.txt. */
vt_status tr_run_folder_open(vt_trainer *t);
vt_status tr_write_text(const char *dir, const char *name, const char *text, const char *mode);
vt_status tr_write_json_file(const char *dir, const char *name, cJSON *j);

/* ---- setup.c: data, model and graphs on the backend ----------------------------------------- */
vt_status tr_load_data(vt_trainer *t, vt_dataset *train, vt_dataset *test);
/* The model configuration of the run's resolved config for data of n_classes and C x H x W (the one
 * place it is derived: training, evaluation and prediction build the same network). */
void tr_model_cfg(const vt_trainer *t, int n_classes, int c, int h, int w, vt_model_cfg *m);
/* Data + model + graphs. `train`/`test` may be synthetic (benchmarks). */
vt_status tr_setup(vt_trainer *t, vt_backend *be, const vt_dataset *train, const vt_dataset *test);
vt_status tr_build_train_graph(vt_trainer *t);
void tr_free(vt_trainer *t);
void tr_norm_of(int channels, float mean[3], float std[3]);
vt_status tr_read_metrics(vt_tensor *m, double out[3]);
/* The epoch's sample order (seeded per epoch; file order with --no-shuffle). */
vt_status tr_upload_perm(vt_trainer *t, int epoch);

/* ---- data_parallel.c: ranks, gradient averaging, overlap, synchronised BN ------------------ */
int tr_dp(const vt_trainer *t);
vt_status tr_dp_any(vt_trainer *t, int *flag);
vt_status tr_dp_sum(vt_trainer *t, double *m, size_t n);
vt_status tr_dp_broadcast_model(vt_trainer *t);
vt_status tr_dp_bn_states(vt_trainer *t);
vt_status tr_upload_train_metrics(vt_trainer *t, const double m[3]);
vt_status tr_train_step(vt_trainer *t, const vt_step_ctx *ctx);
/* A step with the synchronised batch norm's combines but without the gradients' averaging (bench). */
vt_status tr_sync_bn_step(vt_trainer *t, const vt_step_ctx *ctx);
void tr_overlap_free(vt_trainer *t);

/* ---- eval.c --------------------------------------------------------------------------------- */
/* Segmentation: also sets t->te_scores (mIoU, per-class IoU) from the confusion matrix. */
vt_status tr_evaluate(vt_trainer *t, double *loss, double *acc);
/* Appends the segmentation fields of history entry i (mIoU, per-class IoU) to a metrics object. */
void tr_metrics_json_seg(const vt_trainer *t, int i, cJSON *o);
/* Reads them back from a history entry into t->hist[i] / t->hist_iou (NaN where absent). */
vt_status tr_metrics_seg_from_json(vt_trainer *t, int i, const cJSON *o);

/* ---- checkpoint.c: checkpoint files <-> trainer --------------------------------------------- */
vt_status tr_ckpt_save(vt_trainer *t, const char *path, double test_acc);
vt_status tr_ckpt_load_tensors(vt_trainer *t, const vt_tensor_dict *d, const char *file, int need_opt);
vt_status tr_resume_state(vt_trainer *t, const vt_tensor_dict *d, const char *file);

/* ---- metrics.c: metrics.jsonl/csv, summary.json --------------------------------------------- */
cJSON *tr_metrics_json(const vt_epoch_metrics *e);
vt_status tr_write_metrics(const vt_trainer *t);
void tr_summarise(const vt_trainer *t, vt_train_result *r);
vt_status tr_write_summary(const vt_trainer *t, const vt_train_result *r);

/* ---- nan_guard.c: NaN/Inf detection, --nan-policy ------------------------------------------- */
/* The guard's state: the state at the last read-back (snap) and the last one a finite window proved
 * (ok), with the train metrics that go with them, so that skip-step can roll back to it. */
typedef struct tr_guard {
    vt_params_snapshot snap, ok;
    int64_t ok_step, snap_step, checked_step;
    double good_m[3], ok_m[3];
    int bad_windows;    /* read-back windows in a row with NaN/Inf (whole run) */
    int64_t ep_skipped; /* steps of this epoch rolled back */
} tr_guard;
vt_status tr_params_nonfinite(vt_trainer *t, int *bad);
/* At the start of an epoch whose running train metrics are m. */
vt_status tr_guard_epoch_start(vt_trainer *t, tr_guard *g, const double m[3]);
/* After a read-back of the train metrics m: checks loss and parameters. Stops with VT_ERR_NUMERIC,
 * or under skip-step rolls back (*rolled_back = 1, m reset) or takes the window as proven. */
vt_status tr_guard_window(vt_trainer *t, tr_guard *g, double m[3], int ep, double lr, int *rolled_back);
/* At the end of an epoch not halted: under skip-step the test loss is checked too (*evaluated = 1
 * with test loss/accuracy set when it was computed and kept); an epoch with every step skipped stops. */
vt_status tr_guard_epoch_end(vt_trainer *t, tr_guard *g, double m[3], int ep, int64_t first_step, int halted,
                             double *test_loss, double *test_acc, int *evaluated);
void tr_guard_free(tr_guard *g);

#endif
