/* The trainer: problems of the practice, the training loop, evaluation, checkpoints and the
 * step-level benchmark used by `vtrain bench`. */
#ifndef VT_TRAIN_H
#define VT_TRAIN_H

#include "vt/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress of a training run, given to the progress callback after every read-back of the train
 * metrics (every log_every steps, at the end of an epoch and before a stop). */
typedef struct vt_progress {
    const char *problem;              /* the run's problem name */
    int problem_index, problem_count; /* --problem all: problem k of n (1-based); 0 = a single run */
    int epoch, epochs;                /* current epoch (1-based) and planned epochs */
    int64_t step, steps;              /* steps done in this epoch, steps per epoch */
    double loss, acc;                 /* running train loss and accuracy (percent) of the epoch */
    double images_per_s;
    double elapsed_s; /* training time of the whole run so far */
    double eta_s;     /* time left (already capped by --max-minutes); < 0 = unknown */
} vt_progress;

/* The trainer never prints: progress goes to this callback (a program draws it: the vtrain CLI's bar),
 * the header and epoch lines to vt_log() at VT_LOG_INFO, rollbacks of --nan-policy skip-step at
 * VT_LOG_WARN. p is valid during the call only. */
typedef void (*vt_progress_fn)(const vt_progress *p, void *user);

/* Everything a training run depends on; written to RUN_DIR/config.json so a run can be repeated.
 * Fields left at their "unset" value (-1, 0 or "") take the problem's default. */
typedef struct vt_train_cfg {
    char problem[32];                 /* number or name */
    char backend[16];                 /* cpu, opencl, vulkan, cuda, auto */
    int device;                       /* -1 = best */
    char data[512];                   /* dataset path ("" = data/) */
    char out_dir[512];                /* run folder */
    char resume[512];                 /* checkpoint to continue from */
    char pretrained[512];             /* weights to start from (problem 7) */
    int epochs, batch_size;           /* -1 = default; epochs 0 = write the initial checkpoint (RUN/init.vtc and
                                  RUN/last.vtc) and stop, for checking against another framework */
    int64_t max_steps;                /* --steps N: stop after N optimizer steps in all (0 = no cap); a cut run */
    int no_shuffle;                   /* --no-shuffle: samples in file order every epoch (identity permutation) */
    int overwrite;                    /* --overwrite: replace an existing run folder's contents */
    int problem_index, problem_count; /* --problem all: this is problem k of n (1-based; 0 = single run) */
    float lr, momentum, weight_decay; /* < 0 = default */
    int nesterov;                     /* -1 = default */
    char optimizer[8];                /* sgd, adam, adamw, "" = default */
    char schedule[64];                /* "" = default */
    uint32_t seed;
    int augment;   /* -1 = default, 0/1 */
    int batchnorm; /* -1 = default */
    vt_act act;    /* VT_ACT_NONE = default (ReLU) */
    float act_alpha;
    float dropout; /* < 0 = default */
    float label_smoothing;
    int labels_coarse;
    int64_t limit_train, limit_test; /* 0 = whole split */
    double max_minutes;              /* 0 = no cap */
    double target_acc;               /* 0 = none; percent (segmentation: a test mIoU in percent) */
    int stem_cifar, input_size, width, frozen_bn, keep_head;
    int freeze_backbone_epochs;
    float backbone_lr_mult;  /* < 0 = default 1 */
    int nan_policy;          /* 0 stop, 1 skip-step */
    int log_every;           /* steps between metric read-backs (0 = 20) */
    int quiet;               /* no progress callback, no log lines below warnings */
    vt_progress_fn progress; /* NULL = no progress reports (not saved with the run) */
    void *progress_user;     /* passed to progress */
    int no_checkpoints;      /* skip writing last/best (benchmarks, tests) */
    /* Data parallel (not saved with the run; given again on --resume, any rank count that divides the
     * batch): every rank trains on its slice of each global batch of batch_size images. */
    struct vt_comm *comm; /* the job's communicator; NULL or one rank = a single process */
    int sync_bn;          /* --sync-bn: BN batch statistics over the whole global batch (else each rank's slice) */
    /* Segmentation problems (9-11; saved with the run) */
    int seg_h, seg_w;   /* --size HxW: every image/mask pair brought to this size at load (0 = stored size) */
    int crop_h, crop_w; /* --crop HxW: random training crop with the mask (0 = the whole image); eval: whole */
    int fc_width;       /* --fc-width: FCN's fc6/fc7 channels (0 = the model's default) */
} vt_train_cfg;

void vt_train_cfg_init(vt_train_cfg *c);

/* One epoch's measurements (accuracies in percent). */
typedef struct vt_epoch_metrics {
    int epoch;
    double train_loss, train_acc, test_loss, test_acc, lr, epoch_seconds, cum_seconds, images_per_s;
    /* segmentation (NaN for classification): over the whole test split, fractions in [0,1] (NaN when no
     * class has a pixel); the acc fields are then pixel accuracies (percent) over pixels of known truth */
    double test_miou, test_miou_practice;
} vt_epoch_metrics;

typedef struct vt_train_result {
    int epochs_done;
    int64_t global_step;
    double best_test_acc, final_test_acc, final_test_loss;
    int best_epoch;
    int convergence_epoch;
    double convergence_seconds, time_to_target_seconds, cum_seconds, images_per_s;
    double best_test_miou, final_test_miou; /* segmentation (NaN otherwise), fractions; best = highest mIoU,
                                               best_epoch/convergence then follow the mIoU */
    int64_t params;
    int interrupted;     /* stopped by a signal; a checkpoint was written */
    int cut;             /* stopped by --max-minutes or --steps before the planned epochs */
    char cut_reason[64]; /* "max-minutes" or "steps" when cut */
    char problem[32];    /* the run's problem name (from its config, also after --resume) */
    char out_dir[512];   /* the run folder that was written */
} vt_train_result;

/* Set asynchronously (by a signal handler in the program) to ask the trainer to stop after the
 * current step and write a checkpoint. */
extern volatile int vt_train_stop_requested;

/* Trains per cfg on the given backend and writes the run folder. */
vt_status vt_train_run(const vt_train_cfg *cfg, vt_backend *be, vt_train_result *res);
/* Recomputes test loss/accuracy of a checkpoint (data = "" uses the path recorded in it). */
vt_status vt_eval_checkpoint(const char *ckpt, const char *data, vt_backend *be, double *test_loss, double *test_acc,
                             double *recorded_acc);
/* A segmentation checkpoint's scores over the whole split it was evaluated on (the run's test split,
 * at the run's size), recomputed on the backend; recorded_* are those the checkpoint holds. Fractions
 * in [0,1] (pixel_acc too); recorded_miou is NaN for a checkpoint written before any evaluation (init,
 * mid-epoch). A classification checkpoint is refused. */
typedef struct vt_seg_eval {
    double loss, pixel_acc, miou, miou_practice;
    int n_classes;
    double iou[256];
    double recorded_miou;
} vt_seg_eval;
vt_status vt_eval_checkpoint_seg(const char *ckpt, const char *data, vt_backend *be, vt_seg_eval *out);
/* Predicts the masks of one split of a segmentation dataset (data = "" uses the checkpoint's; split
 * "val", "train" or "test") with a segmentation checkpoint and writes them into out_dir in the
 * dataset's own format and names (deepglobe NNNN_mask.png colour masks; camvid grey id PNGs), at each
 * pair's stored size (nearest-neighbour back from the run's size). *written = masks written. */
vt_status vt_predict_checkpoint(const char *ckpt, const char *data, const char *split, const char *out_dir,
                                vt_backend *be, int64_t *written);
/* Writes the weights of a checkpoint as safetensors with torchvision-style names. */
vt_status vt_export_checkpoint(const char *ckpt, const char *out_path);

/* Median per-step cost of a training step, and its split. */
typedef struct vt_step_profile {
    double data_ms, fwd_ms, bwd_ms, opt_ms;          /* measured by running each phase alone */
    double step_ms_min, step_ms_median, step_ms_max; /* whole step, replayed as in training */
    double images_per_s;                             /* batch / median step */
    double gemm_gflop;                               /* GEMM/conv FLOPs of one step, in GFLOP */
    uint64_t dispatches, uploads, downloads, syncs;  /* per step */
} vt_step_profile;

/* Builds problem `problem` (number "5" or name "cnn-pool") with synthetic data for input size
 * 32x32 and 100 classes (segmentation problems: 64x64 images and masks of 6 classes), then times
 * `repeats` training steps after `warmup`. */
vt_status vt_bench_problem(vt_backend *be, const char *problem, int batch, int warmup, int repeats,
                           vt_step_profile *out);
/* The same on one rank of a data-parallel job (every rank calls it with the same arguments) with the
 * synchronised batch norm (--sync-bn): `batch` images a rank, the ranks' BN statistics and sums combined
 * at every sync point, no gradient averaging (`vtrain bench --distributed` times that apart). The step
 * includes the combines; sync_bn_ms is their median time a step (staging included). The phase times
 * are NaN: a graph with sync points runs only in pieces. One rank: plain batch norm. */
vt_status vt_bench_problem_sync_bn(vt_backend *be, struct vt_comm *comm, const char *problem, int batch, int warmup,
                                   int repeats, vt_step_profile *out, double *sync_bn_ms);

#ifdef __cplusplus
}
#endif
#endif
