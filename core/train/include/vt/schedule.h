/* Learning-rate schedules with PyTorch's formulas (StepLR, MultiStepLR, ExponentialLR,
 * CosineAnnealingLR, LinearLR warm-up chained as SequentialLR), and their text form "step:30:0.1". */
#ifndef VT_SCHEDULE_H
#define VT_SCHEDULE_H

#include "vt/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VT_SCHED_CONSTANT,
    VT_SCHED_STEP,
    VT_SCHED_MULTISTEP,
    VT_SCHED_EXPONENTIAL,
    VT_SCHED_COSINE
} vt_sched_kind;

#define VT_SCHED_MAX_MILESTONES 8

typedef struct vt_schedule {
    vt_sched_kind kind;
    float base_lr;
    int step_size;                           /* STEP: epochs between decays */
    float gamma;                             /* STEP, MULTISTEP, EXPONENTIAL: decay factor */
    int milestones[VT_SCHED_MAX_MILESTONES]; /* MULTISTEP: strictly increasing epochs */
    int n_milestones;
    int t_max;                 /* COSINE: half period in epochs */
    float eta_min;             /* COSINE: floor */
    int warmup_epochs;         /* 0: no warm-up */
    float warmup_start_factor; /* LinearLR start_factor, in (0, 1] */
} vt_schedule;

/* The warm-up start factor when the spec does not give one (PyTorch LinearLR's default). */
#define VT_SCHED_DEFAULT_WARMUP_FACTOR (1.0f / 3.0f)

/* Learning rate at `epoch` (fractional: epoch + step/steps_per_epoch). The main schedule decays per
 * whole epoch like PyTorch's epoch-level schedulers; the linear warm-up (start_factor -> 1 over
 * warmup_epochs) is fractional, and the main schedule starts at epoch 0 once it ends (SequentialLR). */
float vt_schedule_lr(const vt_schedule *s, double epoch);

/* "constant", "step:STEP:GAMMA", "multistep:M1,M2,...:GAMMA", "exp:GAMMA", "cosine:T_MAX[:ETA_MIN]",
 * each with an optional suffix ",warmup:EPOCHS[:START_FACTOR]". base_lr is left as the caller set it. */
vt_status vt_schedule_parse(const char *spec, vt_schedule *s);
/* The inverse of parse (the spec parses back to the same schedule). Returns the length it needed, as
 * snprintf does; the text is cut (still NUL-terminated) when n is too small. */
int vt_schedule_format(const vt_schedule *s, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
