/* `vtrain bench`'s step-level benchmark: a problem's training step on synthetic data, timed whole and
 * phase by phase. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/rng.h"
#include "train_internal.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* n random images of side x side; seg: masks of random class ids (an eighth ignored) instead of labels. */
static vt_status synth_dataset(vt_dataset *d, int64_t n, int classes, uint32_t seed, int side, int seg) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = 3;
    d->h = d->w = side;
    d->n_classes = classes;
    size_t px = (size_t)side * (size_t)side;
    d->images = malloc((size_t)n * 3 * px);
    if (seg) d->masks = malloc((size_t)n * px);
    else d->labels = malloc((size_t)n * sizeof(int32_t));
    if (!d->images || (!d->labels && !d->masks)) {
        free(d->images);
        free(d->labels);
        free(d->masks);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    vt_rng r;
    vt_rng_init(&r, seed, 77);
    for (int64_t i = 0; i < n * 3 * (int64_t)px; i++) d->images[i] = (uint8_t)(vt_rng_u32(&r) & 0xff);
    for (int64_t i = 0; seg && i < n * (int64_t)px; i++) {
        uint32_t v = vt_rng_below(&r, (uint32_t)classes * 8);
        d->masks[i] = v >= (uint32_t)classes * 7 ? 255 : (uint8_t)(v % (uint32_t)classes);
    }
    for (int64_t i = 0; !seg && i < n; i++) d->labels[i] = (int32_t)vt_rng_below(&r, (uint32_t)classes);
    snprintf(d->format, sizeof d->format, "synthetic");
    return VT_OK;
}

/* The step of `batch` images: alone (comm NULL), or as one rank of a data-parallel job with the
 * synchronised batch norm (the global batch is batch x ranks; see vt_bench_problem_sync_bn). */
static vt_status bench_step(vt_backend *be, vt_comm *comm, const char *problem, int batch, int warmup, int repeats,
                            vt_step_profile *out, double *sync_bn_ms) {
    memset(out, 0, sizeof *out);
    int ranks = comm ? vt_comm_size(comm) : 1;
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    copy_str(c.problem, sizeof c.problem, problem);
    c.batch_size = batch * ranks;
    c.quiet = 1;
    c.sync_bn = comm != NULL;
    vt_trainer T;
    memset(&T, 0, sizeof T);
    VT_TRY(tr_resolve_cfg(&c, &T));
    T.comm = comm;
    T.nranks = ranks;
    T.rank = comm ? vt_comm_rank(comm) : 0;
    if (T.prob->arch == VT_ARCH_RESNET18) T.cfg.stem_cifar = 1; /* the CIFAR variant is what people train at 32x32 */
    vt_dataset train, test;
    int64_t n = (int64_t)c.batch_size * 4;
    /* segmentation: 64x64 (2x2 after the FCN's 32x downsampling) and deepglobe's 6 classes */
    int seg = T.prob->segmentation, side = seg ? 64 : 32, classes = seg ? 6 : 100;
    VT_TRY(synth_dataset(&train, n, classes, 1, side, seg));
    vt_status s = synth_dataset(&test, batch, classes, 2, side, seg);
    if (s == VT_OK) s = tr_setup(&T, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK) s = tr_upload_perm(&T, 0);
    if (repeats < 1) repeats = 1;
    double *times = calloc((size_t)repeats * 2, sizeof *times), *bn = times ? times + repeats : NULL;
    if (!times) s = vt_error(VT_ERR_OOM, "out of host memory");
    vt_step_ctx ctx = {.step = 0, .seed = 1, .lr = 1e-4f, .batch_start = (int64_t)T.rank * batch};
    for (int i = 0; i < warmup && s == VT_OK; i++) {
        ctx.step = (uint64_t)i;
        s = comm ? tr_sync_bn_step(&T, &ctx) : vt_graph_run(T.train_g, -1, &ctx);
        if (s == VT_OK) s = vt_backend_sync(be);
    }
    vt_backend_counters before = be->counters;
    for (int i = 0; i < repeats && s == VT_OK; i++) {
        ctx.step = (uint64_t)(warmup + i);
        ctx.batch_start = (i % 4) * (int64_t)c.batch_size + (int64_t)T.rank * batch;
        double t0 = now_s(), bn0 = T.sync_bn_seconds;
        s = comm ? tr_sync_bn_step(&T, &ctx) : vt_graph_run(T.train_g, -1, &ctx);
        if (s == VT_OK) s = vt_backend_sync(be);
        times[i] = (now_s() - t0) * 1e3;
        bn[i] = (T.sync_bn_seconds - bn0) * 1e3;
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
        qsort(bn, (size_t)repeats, sizeof *bn, cmp_double);
        out->step_ms_min = times[0];
        out->step_ms_max = times[repeats - 1];
        out->step_ms_median = times[repeats / 2];
        out->images_per_s = batch / (out->step_ms_median / 1e3);
        out->gemm_gflop = vt_graph_flops(T.train_g, 1) / 1e9;
        if (sync_bn_ms) *sync_bn_ms = bn[repeats / 2];
        /* each phase alone, same repeats, median; a graph with sync points runs only in pieces */
        double *ph = &out->data_ms;
        for (int p = 0; p < VT_PHASE_COUNT && s == VT_OK; p++) {
            if (vt_graph_n_sync_points(T.train_g) > 0) {
                ph[p] = NAN;
                continue;
            }
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
    tr_free(&T);
    return s;
}

vt_status vt_bench_problem(vt_backend *be, const char *problem, int batch, int warmup, int repeats,
                           vt_step_profile *out) {
    return bench_step(be, NULL, problem, batch, warmup, repeats, out, NULL);
}

vt_status vt_bench_problem_sync_bn(vt_backend *be, struct vt_comm *comm, const char *problem, int batch, int warmup,
                                   int repeats, vt_step_profile *out, double *sync_bn_ms) {
    *sync_bn_ms = 0;
    if (!comm) return vt_error(VT_ERR_INVALID_ARG, "synchronised batch norm benchmark without a communicator");
    return bench_step(be, comm, problem, batch, warmup, repeats, out, sync_bn_ms);
}
