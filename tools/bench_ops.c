/* The op micro-benchmarks of `vtrain bench`: the cases (practice GEMMs, every ResNet18 convolution
 * forward and backward, pooling, batchnorm, an elementwise op) and their timing through the backend. */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double vt_bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void vt_spec(vt_tspec *t, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    t->ndim = ndim;
    t->shape[0] = a, t->shape[1] = b, t->shape[2] = c, t->shape[3] = d;
    t->positive = 0;
}

static vt_bench_case *vt_case_new(vt_bench_case *cases, int *n, int max, vt_op op) {
    if (*n >= max) return NULL;
    vt_bench_case *c = &cases[(*n)++];
    memset(c, 0, sizeof *c);
    c->op = op;
    return c;
}

/* C[M,N] = op(A) op(B), the forms the trainer issues for a linear layer and its backward. */
static void vt_add_gemm(vt_bench_case *cs, int *n, int max, const char *role, int64_t M, int64_t N, int64_t K, int ta,
                        int tb) {
    vt_bench_case *c = vt_case_new(cs, n, max, VT_OP_MATMUL);
    if (!c) return;
    snprintf(c->name, sizeof c->name, "gemm %s", role);
    snprintf(c->shape, sizeof c->shape, "M=%lld N=%lld K=%lld %s%s", (long long)M, (long long)N, (long long)K,
             ta ? "T" : "N", tb ? "T" : "N");
    c->p.matmul = (vt_matmul_params){.trans_a = ta, .trans_b = tb, .alpha = 1.0f, .beta = 0.0f, .act = VT_ACT_NONE};
    c->nsrc = 2;
    c->ndst = 1;
    if (ta) vt_spec(&c->src[0], 2, K, M, 1, 1);
    else vt_spec(&c->src[0], 2, M, K, 1, 1);
    if (tb) vt_spec(&c->src[1], 2, N, K, 1, 1);
    else vt_spec(&c->src[1], 2, K, N, 1, 1);
    vt_spec(&c->dst[0], 2, M, N, 1, 1);
}

/* One convolution as forward, backward-data and backward-weight cases. */
static void vt_add_conv(vt_bench_case *cs, int *n, int max, const char *role, int64_t N, int64_t C, int64_t H,
                        int64_t K, int64_t R, int stride, int pad) {
    int64_t P = (H + 2 * pad - R) / stride + 1;
    static const vt_op ops[3] = {VT_OP_CONV2D, VT_OP_CONV2D_BWD_DATA, VT_OP_CONV2D_BWD_WEIGHT};
    static const char *const what[3] = {"fwd", "bwd-data", "bwd-weight"};
    for (int k = 0; k < 3; k++) {
        vt_bench_case *c = vt_case_new(cs, n, max, ops[k]);
        if (!c) return;
        snprintf(c->name, sizeof c->name, "conv %s %s", role, what[k]);
        snprintf(c->shape, sizeof c->shape, "N%lld %lld->%lld %lldx%lld s%d p%d on %lldx%lld", (long long)N,
                 (long long)C, (long long)K, (long long)R, (long long)R, stride, pad, (long long)H, (long long)H);
        c->p.conv2d = (vt_conv2d_params){.stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
        c->nsrc = 2;
        c->ndst = 1;
        vt_tspec x, w, y;
        vt_spec(&x, 4, N, C, H, H);
        vt_spec(&w, 4, K, C, R, R);
        vt_spec(&y, 4, N, K, P, P);
        if (k == 0) c->src[0] = x, c->src[1] = w, c->dst[0] = y;
        if (k == 1) c->src[0] = y, c->src[1] = w, c->dst[0] = x;
        if (k == 2) c->src[0] = y, c->src[1] = x, c->dst[0] = w;
    }
}

int vt_bench_make_cases(int quick, vt_bench_case *cs, int max) {
    int n = 0;
    /* Quick sizes keep the shapes' character (aspect, transposes, strides) at a fraction of the work,
     * so that tests finish in seconds even on the reference loops. */
    int64_t big = quick ? 128 : 1024, B = quick ? 8 : 64, in = quick ? 768 : 3072, hid = quick ? 256 : 1024, cls = 100;
    char role[48];
    snprintf(role, sizeof role, "%lld^3", (long long)big);
    vt_add_gemm(cs, &n, max, role, big, big, big, 0, 0);
    vt_add_gemm(cs, &n, max, "mlp fc1 fwd", B, hid, in, 0, 1);
    vt_add_gemm(cs, &n, max, "mlp fc1 dW", hid, in, B, 1, 0);
    vt_add_gemm(cs, &n, max, "mlp fc1 dx", B, in, hid, 0, 0);
    vt_add_gemm(cs, &n, max, "mlp fc2 fwd", B, cls, hid, 0, 1);
    vt_add_gemm(cs, &n, max, "mlp fc2 dW", cls, hid, B, 1, 0);
    vt_add_gemm(cs, &n, max, "mlp fc2 dx", B, hid, cls, 0, 0);

    /* ResNet18 with the ImageNet stem on 32x32 input: 16x16 after conv1, 8x8 after the max pool. */
    int64_t N = quick ? 2 : 128;
    vt_add_conv(cs, &n, max, "conv1 7x7 s2", N, 3, 32, 64, 7, 2, 3);
    vt_add_conv(cs, &n, max, "layer1 3x3", N, 64, 8, 64, 3, 1, 1);
    vt_add_conv(cs, &n, max, "layer2.0 3x3 s2", N, 64, 8, 128, 3, 2, 1);
    vt_add_conv(cs, &n, max, "layer2 3x3", N, 128, 4, 128, 3, 1, 1);
    vt_add_conv(cs, &n, max, "layer2.0 ds 1x1 s2", N, 64, 8, 128, 1, 2, 0);
    vt_add_conv(cs, &n, max, "layer3.0 3x3 s2", N, 128, 4, 256, 3, 2, 1);
    vt_add_conv(cs, &n, max, "layer3 3x3", N, 256, 2, 256, 3, 1, 1);
    vt_add_conv(cs, &n, max, "layer3.0 ds 1x1 s2", N, 128, 4, 256, 1, 2, 0);
    vt_add_conv(cs, &n, max, "layer4.0 3x3 s2", N, 256, 2, 512, 3, 2, 1);
    vt_add_conv(cs, &n, max, "layer4 3x3", N, 512, 1, 512, 3, 1, 1);
    vt_add_conv(cs, &n, max, "layer4.0 ds 1x1 s2", N, 256, 2, 512, 1, 2, 0);

    vt_bench_case *c;
    /* The stem's max pool (3x3 s2 p1 on the conv1 output) and its backward. */
    for (int k = 0; k < 2; k++) {
        if (!(c = vt_case_new(cs, &n, max, k ? VT_OP_POOL2D_BWD : VT_OP_POOL2D))) return n;
        snprintf(c->name, sizeof c->name, "maxpool 3x3 s2 %s", k ? "bwd" : "fwd");
        snprintf(c->shape, sizeof c->shape, "[%lld,64,16,16] -> 8x8", (long long)N);
        c->memory = 1;
        c->p.pool2d = (vt_pool2d_params){
            .kind = VT_POOL_MAX, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
        c->nsrc = k ? 2 : 1;
        c->ndst = 1;
        if (k) {
            vt_spec(&c->src[0], 4, N, 64, 8, 8);
            vt_spec(&c->src[1], 4, N, 64, 16, 16);
            vt_spec(&c->dst[0], 4, N, 64, 16, 16);
        } else {
            vt_spec(&c->src[0], 4, N, 64, 16, 16);
            vt_spec(&c->dst[0], 4, N, 64, 8, 8);
        }
    }
    /* Batchnorm (training) after conv1, forward and backward. */
    if (!(c = vt_case_new(cs, &n, max, VT_OP_BATCHNORM))) return n;
    snprintf(c->name, sizeof c->name, "batchnorm fwd");
    snprintf(c->shape, sizeof c->shape, "[%lld,64,16,16] training", (long long)N);
    c->memory = 1;
    c->p.bn = (vt_batchnorm_params){.training = 1, .momentum = 0.1f, .eps = 1e-5f};
    c->nsrc = 5;
    c->ndst = 3;
    vt_spec(&c->src[0], 4, N, 64, 16, 16);
    for (int i = 1; i < 5; i++) vt_spec(&c->src[i], 1, 64, 1, 1, 1);
    c->src[4].positive = 1;
    vt_spec(&c->dst[0], 4, N, 64, 16, 16);
    vt_spec(&c->dst[1], 1, 64, 1, 1, 1);
    vt_spec(&c->dst[2], 1, 64, 1, 1, 1);
    if (!(c = vt_case_new(cs, &n, max, VT_OP_BATCHNORM_BWD))) return n;
    snprintf(c->name, sizeof c->name, "batchnorm bwd");
    snprintf(c->shape, sizeof c->shape, "[%lld,64,16,16] training", (long long)N);
    c->memory = 1;
    c->p.bn = (vt_batchnorm_params){.training = 1, .momentum = 0.1f, .eps = 1e-5f};
    c->nsrc = 5;
    c->ndst = 3;
    vt_spec(&c->src[0], 4, N, 64, 16, 16);
    vt_spec(&c->src[1], 4, N, 64, 16, 16);
    for (int i = 2; i < 5; i++) vt_spec(&c->src[i], 1, 64, 1, 1, 1);
    c->src[4].positive = 1;
    vt_spec(&c->dst[0], 4, N, 64, 16, 16);
    vt_spec(&c->dst[1], 1, 64, 1, 1, 1);
    vt_spec(&c->dst[2], 1, 64, 1, 1, 1);
    /* Large enough to leave every cache: 3 x 16 MiB of traffic per run. */
    int64_t E = quick ? 4096 : (int64_t)1 << 22;
    if (!(c = vt_case_new(cs, &n, max, VT_OP_ADD))) return n;
    snprintf(c->name, sizeof c->name, "add");
    snprintf(c->shape, sizeof c->shape, "%lld f32", (long long)E);
    c->memory = 1;
    c->nsrc = 2;
    c->ndst = 1;
    vt_spec(&c->src[0], 1, E, 1, 1, 1);
    vt_spec(&c->src[1], 1, E, 1, 1, 1);
    vt_spec(&c->dst[0], 1, E, 1, 1, 1);
    return n;
}

static int vt_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Deterministic inputs: timing must not depend on the run, and positive operands (variances,
 * inverse deviations) must stay positive. */
static vt_status vt_fill(vt_tensor *t, int positive, uint32_t seed) {
    size_t n = (size_t)vt_tensor_nelem(t);
    float *h = malloc(n * sizeof *h);
    if (!h) return vt_error(VT_ERR_OOM, "bench: out of host memory for %s", t->name);
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float u = (float)(s >> 8) * (1.0f / 16777216.0f);
        h[i] = positive ? 0.5f + u : 2.0f * u - 1.0f;
    }
    vt_status st = vt_tensor_upload(t, h, n * sizeof *h);
    free(h);
    return st;
}

vt_status vt_bench_run_case(vt_backend *be, const vt_bench_case *c, const vt_bench_opts *o, vt_bench_result *r) {
    memset(r, 0, sizeof *r);
    r->status = VT_BENCH_ERROR;
    vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST] = {0};
    vt_node node;
    memset(&node, 0, sizeof node);
    node.op = c->op;
    node.p = c->p;
    snprintf(node.label, sizeof node.label, "%.47s", c->name);
    vt_status st = VT_OK;
    for (int i = 0; i < c->nsrc + c->ndst && st == VT_OK; i++) {
        const vt_tspec *sp = i < c->nsrc ? &c->src[i] : &c->dst[i - c->nsrc];
        char nm[16];
        snprintf(nm, sizeof nm, "%s%d", i < c->nsrc ? "src" : "dst", i < c->nsrc ? i : i - c->nsrc);
        st = vt_tensor_new(be, nm, VT_F32, sp->ndim, sp->shape, &ts[i]);
        if (st == VT_OK && i < c->nsrc) st = vt_fill(ts[i], sp->positive, (uint32_t)i + 1);
        if (st == VT_OK) {
            if (i < c->nsrc) node.src[i] = ts[i];
            else node.dst[i - c->nsrc] = ts[i];
        }
    }
    if (st != VT_OK) goto out;
    if ((st = vt_node_validate(&node)) != VT_OK) goto out;
    if (!vt_backend_supports(be, &node)) {
        r->status = VT_BENCH_UNSUPPORTED;
        goto out;
    }
    r->flops = vt_node_flops(&node);
    r->bytes = vt_node_bytes(&node);
    vt_step_ctx ctx = {.step = 0, .seed = 1, .lr = 0.01f, .batch_start = 0};
    int warm = o->warmup > 0 ? o->warmup : 0;
    for (int i = 0; i < warm && st == VT_OK; i++) {
        st = vt_backend_compute(be, &node, &ctx);
        if (st == VT_OK) st = vt_backend_sync(be);
    }
    if (st != VT_OK) goto out;
    /* Short ops are repeated within one timed sample so that the sync round trip does not
     * dominate; the first timed execution sizes that count. */
    double t0 = vt_bench_now_ms();
    if ((st = vt_backend_compute(be, &node, &ctx)) != VT_OK || (st = vt_backend_sync(be)) != VT_OK) goto out;
    double once = vt_bench_now_ms() - t0;
    int iters = 1;
    if (!o->quick && once < o->min_sample_ms) {
        iters = (int)ceil(o->min_sample_ms / (once > 1e-3 ? once : 1e-3));
        if (iters > 1000) iters = 1000;
    }
    int reps = o->repeats > 0 ? o->repeats : 1;
    double *ms = calloc((size_t)reps, sizeof *ms);
    if (!ms) {
        st = vt_error(VT_ERR_OOM, "bench: out of host memory");
        goto out;
    }
    int done = 0;
    double spent = once;
    for (; done < reps && st == VT_OK; done++) {
        /* A time budget per case keeps slow backends (reference loops, CPU-hosted drivers) usable. */
        if (done > 0 && o->max_case_ms > 0 && spent > o->max_case_ms) break;
        double a = vt_bench_now_ms();
        for (int k = 0; k < iters && st == VT_OK; k++) st = vt_backend_compute(be, &node, &ctx);
        if (st == VT_OK) st = vt_backend_sync(be);
        double dt = vt_bench_now_ms() - a;
        spent += dt;
        ms[done] = dt / iters;
    }
    if (st == VT_OK) {
        qsort(ms, (size_t)done, sizeof *ms, vt_cmp_double);
        r->ms_min = ms[0];
        r->ms_max = ms[done - 1];
        r->ms_median = done % 2 ? ms[done / 2] : 0.5 * (ms[done / 2 - 1] + ms[done / 2]);
        r->repeats = done;
        r->iters = iters;
        double sec = r->ms_median * 1e-3;
        r->gflops = sec > 0 ? r->flops / sec * 1e-9 : 0;
        r->gbps = sec > 0 ? r->bytes / sec * 1e-9 : 0;
        r->peak_fraction = be->info.peak_gflops > 0 && !c->memory ? r->gflops / be->info.peak_gflops : NAN;
        r->status = VT_BENCH_OK;
    }
    free(ms);
out:
    if (st != VT_OK) snprintf(r->error, sizeof r->error, "%s", vt_last_error());
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) vt_tensor_free(ts[i]);
    return r->status == VT_BENCH_ERROR ? (st != VT_OK ? st : VT_ERR_DEVICE) : VT_OK;
}
