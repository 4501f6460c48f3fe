/* The trainer: problems of the practice, the training loop, evaluation, checkpoints and the
 * step-level benchmark used by `vtrain bench`. */
#ifndef VT_TRAIN_H
#define VT_TRAIN_H

#include "vt/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Median per-step cost of a training step, and its split. */
typedef struct vt_step_profile {
    double data_ms, fwd_ms, bwd_ms, opt_ms;        /* measured by running each phase alone */
    double step_ms_min, step_ms_median, step_ms_max; /* whole step, replayed as in training */
    double images_per_s;                           /* batch / median step */
    double gemm_gflop;                             /* GEMM/conv FLOPs of one step, in GFLOP */
    uint64_t dispatches, uploads, downloads, syncs; /* per step */
} vt_step_profile;

/* Builds problem `problem` (number "5" or name "cnn-pool") with synthetic data for input size
 * 32x32 and 100 classes, then times `repeats` training steps after `warmup`. */
vt_status vt_bench_problem(vt_backend *be, const char *problem, int batch, int warmup, int repeats,
                           vt_step_profile *out);

#ifdef __cplusplus
}
#endif
#endif

