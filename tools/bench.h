/* Shared between tools/cmd_bench.c and tools/bench_ops.c: op benchmark cases, their options and
 * their results. */
#ifndef VT_TOOLS_BENCH_H
#define VT_TOOLS_BENCH_H

#include "vt/backend.h"

typedef struct vt_tspec {
    int ndim;
    int64_t shape[VT_MAX_DIMS];
    int positive; /* filled with values in [0.5, 1.5) instead of [-1, 1) */
} vt_tspec;

typedef struct vt_bench_case {
    char name[64];  /* unique, e.g. "conv layer2 3x3 bwd-data" */
    char shape[96]; /* human-readable shape */
    int memory;     /* memory-bound: headline figure is GB/s, not GFLOP/s */
    vt_op op;
    vt_op_params p;
    int nsrc, ndst; /* operands beyond nsrc (optional bias) stay NULL */
    vt_tspec src[VT_MAX_SRC], dst[VT_MAX_DST];
} vt_bench_case;

typedef struct vt_bench_opts {
    int warmup, repeats, quick;
    double min_sample_ms; /* a timed sample repeats a short op until it lasts about this long */
    double max_case_ms;   /* stop repeating a case once it has used this much time (>= 1 sample) */
} vt_bench_opts;

typedef enum { VT_BENCH_OK = 0, VT_BENCH_UNSUPPORTED, VT_BENCH_ERROR } vt_bench_status;

typedef struct vt_bench_result {
    vt_bench_status status;
    double ms_min, ms_median, ms_max;
    double flops, bytes, gflops, gbps, peak_fraction; /* peak_fraction NaN when unknown */
    int repeats, iters;
    char error[512];
} vt_bench_result;

double vt_bench_now_ms(void);
/* Fills up to max cases; returns how many. */
int vt_bench_make_cases(int quick, vt_bench_case *cases, int max);
/* Unsupported is VT_OK with status VT_BENCH_UNSUPPORTED; a failure returns its status. */
vt_status vt_bench_run_case(vt_backend *be, const vt_bench_case *c, const vt_bench_opts *o, vt_bench_result *r);

#endif
