/* CUDA backend kernels: everything that is not a GEMM or a convolution, plus im2col/col2im for the
 * convolution path without cuDNN. Reductions use fixed trees (no float atomics), so results repeat. */
#include <math.h>
#include <stdint.h>

#include "cuda_kernels.h"

#define VT_BS 256     /* threads per block of the elementwise kernels */
#define VT_RED_BS 512 /* threads per block of the per-channel reductions (a power of two) */

static unsigned vt_grid(int64_t n, int bs) {
    int64_t g = (n + bs - 1) / bs;
    if (g < 1) g = 1;
    if (g > (1 << 20)) g = 1 << 20; /* the kernels loop with a grid stride beyond this */
    return (unsigned)g;
}

#define VT_LOOP(i, n) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- shared device helpers ---- */

/* vt_philox() of vt/rng.h, word for word. */
static __device__ __forceinline__ uint4 vt_philox_dev(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2,
                                               uint32_t c3) {
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return make_uint4(c0, c1, c2, c3);
}

static __device__ __forceinline__ float vt_unit_dev(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

static __device__ __forceinline__ vt_cuda_step vt_load_step(const vt_cuda_step_arg &a) { return a.dev ? *a.dev : a.val; }

/* The formulas of vt/act_formulas.h, shared with the CPU reference and the other backends. MATMUL and
 * CONV2D epilogues never get gelu (validation refuses it); ACT does. */
static __device__ __forceinline__ float vt_act_dev(float v, int act, float alpha) {
    switch (act) {
    case VT_ACT_RELU: return VT_RELU_FWD(v);
    case VT_ACT_LEAKY_RELU: return VT_LEAKY_RELU_FWD(v, alpha);
    case VT_ACT_SELU: return VT_SELU_FWD(v);
    case VT_ACT_GELU: return VT_GELU_FWD(v);
    default: return v;
    }
}

/* Sum over a block of VT_RED_BS threads in a fixed tree; every thread gets the total. */
static __device__ double vt_block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = VT_RED_BS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* Offset of element i (0 <= i < N*HW) of channel c in an [N, C, HW] tensor. */
static __device__ __forceinline__ int64_t vt_chan_off(int64_t i, int64_t c, int64_t C, int64_t HW) {
    int64_t n = i / HW;
    return (n * C + c) * HW + (i - n * HW);
}

/* ---- elementwise ---- */

static __global__ void vt_k_fill32(uint32_t *dst, int64_t n, uint32_t v) {
    VT_LOOP(i, n) dst[i] = v;
}

/* NONFINITE: the flag is set when an element's exponent bits are all ones (NaN, +-Inf); a bit test,
 * so --use_fast_math cannot fold it away. Threads that find one all store the same 1. */
static __global__ void vt_k_nonfinite(const uint32_t *x, int64_t n, int32_t *flag) {
    uint32_t found = 0;
    VT_LOOP(i, n) found |= (x[i] & 0x7f800000u) == 0x7f800000u;
    if (found) *flag = 1;
}

static __global__ void vt_k_bias_act(float *y, const float *bias, int64_t n, int64_t inner, int64_t C, int act, float alpha) {
    VT_LOOP(i, n) {
        float v = y[i];
        if (bias) v += bias[(i / inner) % C];
        y[i] = vt_act_dev(v, act, alpha);
    }
}

static __global__ void vt_k_act(const float *x, float *y, int64_t n, int act, float alpha) {
    VT_LOOP(i, n) y[i] = vt_act_dev(x[i], act, alpha);
}

/* fwd is ACT_BWD's src1: the forward output y for relu, leaky_relu and selu, the forward input x for
 * gelu (whose y does not determine x). */
static __global__ void vt_k_act_bwd(const float *dy, const float *fwd, float *dx, int64_t n, int act, float alpha) {
    VT_LOOP(i, n) {
        float g = dy[i], o = fwd[i], r;
        switch (act) {
        case VT_ACT_RELU: r = VT_RELU_BWD(o, g); break;
        case VT_ACT_LEAKY_RELU: r = VT_LEAKY_RELU_BWD(o, g, alpha); break;
        case VT_ACT_SELU: r = VT_SELU_BWD(o, g); break;
        case VT_ACT_GELU: r = VT_GELU_BWD(o, g); break;
        default: r = g; break;
        }
        dx[i] = r;
    }
}

static __global__ void vt_k_add(const float *a, const float *b, float *y, int64_t n) {
    VT_LOOP(i, n) y[i] = a[i] + b[i];
}

/* One Philox call serves four consecutive elements (counter i/4, word i%4). */
static __global__ void vt_k_dropout(const float *x, float *y, int64_t n, float p, uint32_t salt, vt_cuda_step_arg sa) {
    vt_cuda_step st = vt_load_step(sa);
    int64_t groups = (n + 3) / 4;
    VT_LOOP(g, groups) {
        uint4 w = vt_philox_dev(st.seed, salt, (uint32_t)g, 0u, (uint32_t)st.step, (uint32_t)(st.step >> 32));
        uint32_t ws[4] = {w.x, w.y, w.z, w.w};
        for (int k = 0; k < 4; k++) {
            int64_t i = g * 4 + k;
            if (i >= n) break;
            y[i] = vt_unit_dev(ws[k]) >= p ? x[i] / (1.0f - p) : 0.0f;
        }
    }
}

/* ---- per-channel reductions: one block per channel ---- */

static __global__ void vt_k_channel_sum(const float *dy, float *db, int64_t N, int64_t C, int64_t HW) {
    __shared__ double sh[VT_RED_BS];
    int64_t c = blockIdx.x, M = N * HW;
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) acc += dy[vt_chan_off(i, c, C, HW)];
    double s = vt_block_sum(acc, sh);
    if (threadIdx.x == 0) db[c] = (float)s;
}

/* Batch norm, whole (BATCHNORM, BATCHNORM_BWD) or split at its two channel reductions for the
 * synchronised batch norm (BN_STATS, BN_APPLY, BN_BWD_STATS, BN_BWD_APPLY). The pieces below are shared,
 * so that the split ops on one rank reduce in the same order as the whole ones. */

/* Mean and biased variance of channel c over its M = N*HW elements, in double; two passes: the
 * variance from squared deviations, not E[x^2]-E[x]^2. Every thread gets both. */
static __device__ void vt_bn_moments(const float *x, int64_t c, int64_t C, int64_t HW, int64_t M, double *sh,
                                     double *mean, double *var) {
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) acc += x[vt_chan_off(i, c, C, HW)];
    double dmean = vt_block_sum(acc, sh) / (double)M;
    acc = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) {
        double d = (double)x[vt_chan_off(i, c, C, HW)] - dmean;
        acc += d * d;
    }
    *mean = dmean;
    *var = vt_block_sum(acc, sh) / (double)M;
}

/* y = (x - mean) * scale + shift over channel c. Each thread rewrites only what it reads, so y may
 * share memory with x. */
static __device__ void vt_bn_affine(const float *x, float *y, int64_t c, int64_t C, int64_t HW, int64_t M, float mean,
                                    float scale, float shift) {
    for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) {
        int64_t o = vt_chan_off(i, c, C, HW);
        y[o] = (x[o] - mean) * scale + shift;
    }
}

/* The running statistics' update; var is the biased variance over count elements. */
static __device__ void vt_bn_running(float *rmean, float *rvar, int64_t c, float mean, double var, int64_t count,
                                     float momentum) {
    rmean[c] = (1.0f - momentum) * rmean[c] + momentum * mean;
    rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (float)(var * (double)count / (double)(count - 1));
}

/* Sums over channel c of dy (db) and dy * xhat (dg), xhat = (x - mean) * invstd in float; every
 * thread gets both. */
static __device__ void vt_bn_dsums(const float *dy, const float *x, int64_t c, int64_t C, int64_t HW, int64_t M,
                                   float mean, float invstd, double *sh, float *db, float *dg) {
    double a0 = 0.0, a1 = 0.0;
    for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) {
        int64_t o = vt_chan_off(i, c, C, HW);
        a0 += dy[o];
        a1 += (double)dy[o] * (double)((x[o] - mean) * invstd);
    }
    *db = (float)vt_block_sum(a0, sh);
    *dg = (float)vt_block_sum(a1, sh);
}

/* dx = gamma*invstd/M * (M*dy - db - xhat*dg) over channel c, M elements per channel in all (the
 * whole batch's: count, for the synchronised form) while this block walks its Mloc. Index for index,
 * after every read of dy: dx may share memory with dy. */
static __device__ void vt_bn_dx(const float *dy, const float *x, float *dx, int64_t c, int64_t C, int64_t HW,
                                int64_t Mloc, int64_t M, float mean, float invstd, float g, float db, float dg) {
    float fm = (float)M, k = g * invstd / fm;
    for (int64_t i = threadIdx.x; i < Mloc; i += VT_RED_BS) {
        int64_t o = vt_chan_off(i, c, C, HW);
        float xhat = (x[o] - mean) * invstd;
        dx[o] = k * (fm * dy[o] - db - xhat * dg);
    }
}

/* invstd of a variance as BATCHNORM computes it: in double, rounded once. */
static __device__ __forceinline__ float vt_bn_invstd(double var, float eps) {
    return (float)(1.0 / sqrt(var + (double)eps));
}

static __global__ void vt_k_bn_fwd(const float *x, const float *gamma, const float *beta, float *rmean, float *rvar,
                                   float *y, float *save_mean, float *save_invstd, int64_t N, int64_t C, int64_t HW,
                                   int training, float momentum, float eps) {
    __shared__ double sh[VT_RED_BS];
    int64_t c = blockIdx.x, M = N * HW;
    float mean, invstd;
    if (training) {
        double dmean, var;
        vt_bn_moments(x, c, C, HW, M, sh, &dmean, &var);
        mean = (float)dmean;
        invstd = vt_bn_invstd(var, eps);
        if (threadIdx.x == 0) {
            save_mean[c] = mean;
            save_invstd[c] = invstd;
            vt_bn_running(rmean, rvar, c, mean, var, M, momentum);
        }
    } else {
        mean = rmean[c];
        invstd = vt_bn_invstd((double)rvar[c], eps);
        if (threadIdx.x == 0) {
            if (save_mean) save_mean[c] = mean;
            if (save_invstd) save_invstd[c] = invstd;
        }
    }
    vt_bn_affine(x, y, c, C, HW, M, mean, invstd * gamma[c], beta[c]);
}

static __global__ void vt_k_bn_bwd(const float *dy, const float *x, const float *gamma, const float *save_mean,
                                   const float *save_invstd, float *dx, float *dgamma, float *dbeta, int64_t N,
                                   int64_t C, int64_t HW, int training) {
    __shared__ double sh[VT_RED_BS];
    int64_t c = blockIdx.x, M = N * HW;
    float mean = save_mean[c], invstd = save_invstd[c], g = gamma[c];
    float db, dg;
    vt_bn_dsums(dy, x, c, C, HW, M, mean, invstd, sh, &db, &dg);
    if (threadIdx.x == 0) {
        dbeta[c] = db;
        dgamma[c] = dg;
    }
    /* After the barrier in vt_block_sum: dx may share memory with dy. */
    if (training) {
        vt_bn_dx(dy, x, dx, c, C, HW, M, M, mean, invstd, g, db, dg);
    } else {
        float k0 = g * invstd;
        for (int64_t i = threadIdx.x; i < M; i += VT_RED_BS) {
            int64_t o = vt_chan_off(i, c, C, HW);
            dx[o] = dy[o] * k0;
        }
    }
}

/* BN_STATS: this rank's mean and biased variance, stats [2, C]. */
static __global__ void vt_k_bn_stats(const float *x, float *stats, int64_t N, int64_t C, int64_t HW) {
    __shared__ double sh[VT_RED_BS];
    int64_t c = blockIdx.x;
    double mean, var;
    vt_bn_moments(x, c, C, HW, N * HW, sh, &mean, &var);
    if (threadIdx.x == 0) {
        stats[c] = (float)mean;
        stats[C + c] = (float)var;
    }
}

/* BN_APPLY: normalise with the whole batch's stats; running statistics updated when given. No
 * barrier: the emulation may run its threads one after another. */
static __global__ void vt_k_bn_apply(const float *x, const float *gamma, const float *beta, const float *stats,
                                     float *y, float *rmean, float *rvar, int64_t N, int64_t C, int64_t HW,
                                     int64_t count, float momentum, float eps) {
    int64_t c = blockIdx.x;
    float mean = stats[c], var = stats[C + c], invstd = vt_bn_invstd((double)var, eps);
    if (threadIdx.x == 0 && rmean && rvar) vt_bn_running(rmean, rvar, c, mean, (double)var, count, momentum);
    vt_bn_affine(x, y, c, C, HW, N * HW, mean, invstd * gamma[c], beta[c]);
}

/* BN_BWD_STATS: this rank's sums [2, C] (sum dy*xhat, sum dy), and dgamma, dbeta when given. */
static __global__ void vt_k_bn_bwd_stats(const float *dy, const float *x, const float *stats, float *dgamma,
                                         float *dbeta, float *sums, int64_t N, int64_t C, int64_t HW, float eps) {
    __shared__ double sh[VT_RED_BS];
    int64_t c = blockIdx.x;
    float mean = stats[c], invstd = vt_bn_invstd((double)stats[C + c], eps);
    float db, dg;
    vt_bn_dsums(dy, x, c, C, HW, N * HW, mean, invstd, sh, &db, &dg);
    if (threadIdx.x == 0) {
        sums[c] = dg;
        sums[C + c] = db;
        if (dgamma) dgamma[c] = dg;
        if (dbeta) dbeta[c] = db;
    }
}

/* BN_BWD_APPLY: dx with the sums over all ranks and M = count. No barrier (see vt_k_bn_apply). */
static __global__ void vt_k_bn_bwd_apply(const float *dy, const float *x, const float *gamma, const float *stats,
                                         const float *sums, float *dx, int64_t N, int64_t C, int64_t HW,
                                         int64_t count, float eps) {
    int64_t c = blockIdx.x;
    float mean = stats[c], invstd = vt_bn_invstd((double)stats[C + c], eps);
    vt_bn_dx(dy, x, dx, c, C, HW, N * HW, count, mean, invstd, gamma[c], sums[C + c], sums[c]);
}

/* ---- pooling ---- */

/* First maximum of window (p, q) in row-major window order, padding skipped; -1 if none. */
static __device__ int vt_pool_argmax(const float *xc, int H, int W, int p, int q, const vt_pool2d_params &pp) {
    int h0 = p * pp.stride_h - pp.pad_h, w0 = q * pp.stride_w - pp.pad_w, best = -1;
    float m = 0.0f;
    for (int r = 0; r < pp.kh; r++) {
        int h = h0 + r;
        if (h < 0 || h >= H) continue;
        for (int s = 0; s < pp.kw; s++) {
            int w = w0 + s;
            if (w < 0 || w >= W) continue;
            float v = xc[h * W + w];
            if (best < 0 || v > m) {
                m = v;
                best = h * W + w;
            }
        }
    }
    return best;
}

static __global__ void vt_k_pool(const float *x, float *y, int64_t NC, int H, int W, int P, int Q, vt_pool2d_params pp) {
    int64_t n = NC * P * Q;
    VT_LOOP(i, n) {
        int q = (int)(i % Q);
        int64_t t = i / Q;
        int p = (int)(t % P);
        int64_t nc = t / P;
        const float *xc = x + nc * H * W;
        if (pp.kind == VT_POOL_MAX) {
            int b = vt_pool_argmax(xc, H, W, p, q, pp);
            y[i] = b >= 0 ? xc[b] : -INFINITY;
        } else {
            int h0 = p * pp.stride_h - pp.pad_h, w0 = q * pp.stride_w - pp.pad_w;
            double acc = 0.0;
            for (int r = 0; r < pp.kh; r++) {
                int h = h0 + r;
                if (h < 0 || h >= H) continue;
                for (int s = 0; s < pp.kw; s++) {
                    int w = w0 + s;
                    if (w >= 0 && w < W) acc += xc[h * W + w];
                }
            }
            y[i] = (float)(acc / (double)(pp.kh * pp.kw));
        }
    }
}

/* Gather form of the scatter: each dx element sums the windows that cover it, in row-major window
 * order, so no two threads write the same element. */
static __global__ void vt_k_pool_bwd(const float *dy, const float *x, float *dx, int64_t NC, int H, int W, int P, int Q,
                              vt_pool2d_params pp) {
    int64_t n = NC * H * W;
    VT_LOOP(i, n) {
        int w = (int)(i % W);
        int64_t t = i / W;
        int h = (int)(t % H);
        int64_t nc = t / H;
        const float *xc = x + nc * H * W;
        const float *dyc = dy + nc * P * Q;
        int nh = h + pp.pad_h - pp.kh + 1, nw = w + pp.pad_w - pp.kw + 1;
        int plo = nh <= 0 ? 0 : (nh + pp.stride_h - 1) / pp.stride_h;
        int qlo = nw <= 0 ? 0 : (nw + pp.stride_w - 1) / pp.stride_w;
        int phi = min(P - 1, (h + pp.pad_h) / pp.stride_h);
        int qhi = min(Q - 1, (w + pp.pad_w) / pp.stride_w);
        float acc = 0.0f, inv_area = 1.0f / (float)(pp.kh * pp.kw);
        for (int p = plo; p <= phi; p++)
            for (int q = qlo; q <= qhi; q++) {
                if (pp.kind == VT_POOL_MAX) {
                    if (vt_pool_argmax(xc, H, W, p, q, pp) == h * W + w) acc += dyc[p * Q + q];
                } else {
                    acc += dyc[p * Q + q] * inv_area;
                }
            }
        dx[i] = acc;
    }
}

/* ---- softmax cross-entropy, argmax, confusion ----
 * Logits [N,K] (S = 1) or [N,K,H,W] (S = H*W): row r = n*S + s holds the K values (n*K + k)*S + s.
 * [N,K] takes one warp per row (the K values are contiguous); per-pixel rows take one thread each,
 * so that neighbouring threads read neighbouring pixels of each class plane. */

/* First element of row r; its class k is at [k * S]. */
static __device__ __forceinline__ int64_t vt_row_base(int64_t r, int64_t K, int64_t S) {
    return (r / S) * K * S + r % S;
}

/* A label that counts: always with ignore = 0 (an out-of-range label is the caller's error there), else
 * only labels in [0,K) (segmentation's void, 255, is ignored). */
static __device__ __forceinline__ bool vt_ce_counted(int32_t y, int64_t K, int ignore) {
    return !ignore || (y >= 0 && y < K);
}

/* Row maximum and its index, reduced over a warp; every lane gets both. Same answer as the CPU's
 * "best = 0; if (x[k] > x[best]) best = k": the first maximum, NaN never chosen unless x[0] is NaN. */
static __device__ void vt_warp_argmax(const float *xr, int64_t K, float *mout, int64_t *aout) {
    int lane = threadIdx.x & 31;
    float m = 0.0f;
    int64_t a = -1;
    for (int64_t k = lane; k < K; k += 32) {
        float v = xr[k];
        if (!isnan(v) && (a < 0 || v > m)) {
            m = v;
            a = k;
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        float om = __shfl_down_sync(0xffffffffu, m, off);
        long long oa = __shfl_down_sync(0xffffffffu, (long long)a, off);
        if (oa >= 0 && (a < 0 || om > m || (om == m && oa < a))) {
            m = om;
            a = oa;
        }
    }
    a = __shfl_sync(0xffffffffu, (long long)a, 0);
    m = __shfl_sync(0xffffffffu, m, 0);
    float x0 = xr[0];
    if (a < 0 || isnan(x0)) {
        a = 0;
        m = x0;
    }
    *mout = m;
    *aout = a;
}

/* The CPU's loop itself, for one thread per row: the first maximum, strict >, NaN never greater. */
static __device__ __forceinline__ int64_t vt_seq_argmax(const float *xr, int64_t K, int64_t S) {
    int64_t best = 0;
    for (int64_t k = 1; k < K; k++)
        if (xr[k * S] > xr[best * S]) best = k;
    return best;
}

static __device__ float vt_warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

static __device__ double vt_warp_sum_d(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* A single block. [N,K]: warps take rows in turn, lane 0 of each warp sums its rows in order.
 * Per pixel (S > 1): threads take rows in turn, each sums its rows in order, then a fixed butterfly
 * over the warp. Thread 0 sums the warps in order: the same total on every run. */
static __global__ void vt_k_softmax_ce(const float *logits, const int32_t *labels, float *loss, float *metrics, int64_t N,
                                int64_t K, int64_t S, float e, int ignore) {
    __shared__ double wl[32];
    __shared__ double wc[32];
    __shared__ double wn[32];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    double acc = 0.0, correct = 0.0, counted = 0.0, de = (double)e;
    if (S == 1) {
        for (int64_t r = warp; r < N; r += nw) {
            const float *xr = logits + r * K;
            int32_t y = labels[r];
            if (!vt_ce_counted(y, K, ignore)) continue; /* the whole warp skips: r is the warp's */
            float m;
            int64_t am;
            vt_warp_argmax(xr, K, &m, &am);
            /* In double, like the CPU reference: the mean of the logits cancels badly in float. */
            double se = 0.0, sx = 0.0;
            for (int64_t k = lane; k < K; k += 32) {
                se += (double)expf(xr[k] - m);
                sx += (double)xr[k];
            }
            se = vt_warp_sum_d(se);
            sx = vt_warp_sum_d(sx);
            if (lane == 0) {
                double lse = (double)m + log(se);
                double nll = (y >= 0 && y < K) ? lse - (double)xr[y] : (double)NAN;
                acc += (1.0 - de) * nll + de * (lse - sx / (double)K);
                correct += (am == y) ? 1.0 : 0.0;
                counted += 1.0;
            }
        }
    } else {
        for (int64_t r = threadIdx.x; r < N; r += blockDim.x) {
            int32_t y = labels[r];
            if (!vt_ce_counted(y, K, ignore)) continue;
            const float *xr = logits + vt_row_base(r, K, S);
            int64_t am = vt_seq_argmax(xr, K, S);
            float m = xr[am * S];
            double se = 0.0, sx = 0.0;
            for (int64_t k = 0; k < K; k++) {
                se += (double)expf(xr[k * S] - m);
                sx += (double)xr[k * S];
            }
            double lse = (double)m + log(se);
            double nll = (y >= 0 && y < K) ? lse - (double)xr[y * S] : (double)NAN;
            acc += (1.0 - de) * nll + de * (lse - sx / (double)K);
            correct += (am == y) ? 1.0 : 0.0;
            counted += 1.0;
        }
        acc = vt_warp_sum_d(acc);
        correct = vt_warp_sum_d(correct);
        counted = vt_warp_sum_d(counted);
    }
    if (lane == 0) {
        wl[warp] = acc;
        wc[warp] = correct;
        wn[warp] = counted;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double tl = 0.0, tc = 0.0, tn = 0.0;
        for (int w = 0; w < nw; w++) {
            tl += wl[w];
            tc += wc[w];
            tn += wn[w];
        }
        /* Without ignored rows tn is N exactly: the same quotient as the mean over N. */
        loss[0] = (float)(tl / (tn > 0.0 ? tn : 1.0));
        if (metrics) {
            metrics[0] += (float)tl;
            metrics[1] += (float)tc;
            metrics[2] += (float)tn;
        }
    }
}

static __global__ void vt_k_softmax_ce_bwd(const float *logits, const int32_t *labels, float *dl, int64_t N, int64_t K, float e,
                                    float scale, int ignore) {
    int lane = threadIdx.x & 31;
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    /* r is the same for the whole warp, so whole warps enter and leave the loop together. */
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < N; r += warps) {
        const float *xr = logits + r * K;
        float *dr = dl + r * K;
        int32_t y = labels[r];
        if (!vt_ce_counted(y, K, ignore)) {
            for (int64_t k = lane; k < K; k += 32) dr[k] = 0.0f;
            continue;
        }
        float m = -INFINITY;
        for (int64_t k = lane; k < K; k += 32) m = fmaxf(m, xr[k]);
        for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
        float se = 0.0f;
        for (int64_t k = lane; k < K; k += 32) se += expf(xr[k] - m);
        se = vt_warp_sum(se);
        float off = e / (float)K;
        for (int64_t k = lane; k < K; k += 32) {
            float t = (k == y ? 1.0f - e : 0.0f) + off;
            dr[k] = scale * (expf(xr[k] - m) / se - t);
        }
    }
}

/* Per pixel: one thread per row, the same float arithmetic as the warp form, summed in class order. */
static __global__ void vt_k_softmax_ce_bwd_px(const float *logits, const int32_t *labels, float *dl, int64_t N,
                                              int64_t K, int64_t S, float e, float scale, int ignore) {
    VT_LOOP(r, N) {
        int64_t base = vt_row_base(r, K, S);
        const float *xr = logits + base;
        float *dr = dl + base;
        int32_t y = labels[r];
        if (!vt_ce_counted(y, K, ignore)) {
            for (int64_t k = 0; k < K; k++) dr[k * S] = 0.0f;
            continue;
        }
        float m = -INFINITY;
        for (int64_t k = 0; k < K; k++) m = fmaxf(m, xr[k * S]);
        float se = 0.0f;
        for (int64_t k = 0; k < K; k++) se += expf(xr[k * S] - m);
        float off = e / (float)K;
        for (int64_t k = 0; k < K; k++) {
            float t = (k == y ? 1.0f - e : 0.0f) + off;
            dr[k * S] = scale * (expf(xr[k * S] - m) / se - t);
        }
    }
}

static __global__ void vt_k_argmax(const float *x, int32_t *out, int64_t N, int64_t K) {
    int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < N; r += warps) {
        float m;
        int64_t a;
        vt_warp_argmax(x + r * K, K, &m, &a);
        if ((threadIdx.x & 31) == 0) out[r] = (int32_t)a;
    }
}

static __global__ void vt_k_argmax_px(const float *x, int32_t *out, int64_t N, int64_t K, int64_t S) {
    VT_LOOP(r, N) out[r] = (int32_t)vt_seq_argmax(x + vt_row_base(r, K, S), K, S);
}

/* CONFUSION: counts[t*(K+1) + q] += 1 with integer atomics, exact in any order. Small matrices
 * (VT_CONF_SHARED cells at most: K <= 63, every segmentation data set here) are counted per block in
 * shared memory first, so that the pixels of one class do not all queue on one global counter. */
#define VT_CONF_SHARED 4096
static __global__ void vt_k_confusion(const int32_t *pred, const int32_t *truth, int32_t *counts, int64_t M, int K,
                                      int in_shared) {
    __shared__ int32_t hist[VT_CONF_SHARED];
    int K1 = K + 1, cells = K1 * K1;
    int32_t *dst = in_shared ? hist : counts;
    if (in_shared) { /* the same for the whole block: every thread meets the barriers */
        for (int c = threadIdx.x; c < cells; c += blockDim.x) hist[c] = 0;
        __syncthreads();
    }
    VT_LOOP(i, M) {
        int32_t t = truth[i], q = pred[i];
        t = t >= 0 && t < K ? t : K;
        q = q >= 0 && q < K ? q : K;
        atomicAdd(&dst[t * K1 + q], 1);
    }
    if (in_shared) {
        __syncthreads();
        for (int c = threadIdx.x; c < cells; c += blockDim.x)
            if (hist[c]) atomicAdd(&counts[c], hist[c]);
    }
}

/* ---- upsampling ---- */

/* Source coordinate of output index o along one axis; the _rn intrinsics keep nvcc from fusing
 * the arithmetic into an FMA, so floor() sees the same value as on the CPU. */
static __device__ __forceinline__ int vt_up_nearest(int o, float scale, int H) {
    return min((int)floorf(__fmul_rn((float)o, scale)), H - 1);
}

static __device__ __forceinline__ void vt_up_linear(int o, float scale, int H, int *i0, int *i1, float *l0, float *l1) {
    float s = fmaxf(__fadd_rn(__fmul_rn(__fadd_rn((float)o, 0.5f), scale), -0.5f), 0.0f);
    int a = min((int)floorf(s), H - 1);
    *i0 = a;
    *i1 = min(a + 1, H - 1);
    *l1 = s - (float)a;
    *l0 = 1.0f - *l1;
}

static __global__ void vt_k_upsample(const float *x, float *y, int64_t NC, int H, int W, int Ho, int Wo, int mode, float sh,
                              float sw) {
    int64_t n = NC * Ho * Wo;
    VT_LOOP(i, n) {
        int ox = (int)(i % Wo);
        int64_t t = i / Wo;
        int oy = (int)(t % Ho);
        const float *xc = x + (t / Ho) * H * W;
        if (mode == VT_UPSAMPLE_NEAREST) {
            y[i] = xc[vt_up_nearest(oy, sh, H) * W + vt_up_nearest(ox, sw, W)];
        } else {
            int y0, y1, x0, x1;
            float a0, a1, b0, b1;
            vt_up_linear(oy, sh, H, &y0, &y1, &a0, &a1);
            vt_up_linear(ox, sw, W, &x0, &x1, &b0, &b1);
            y[i] = a0 * (b0 * xc[y0 * W + x0] + b1 * xc[y0 * W + x1]) + a1 * (b0 * xc[y1 * W + x0] + b1 * xc[y1 * W + x1]);
        }
    }
}

/* Lowest o in [0, Ho] whose source index (i0 for bilinear) is >= target; the map is monotone. */
static __device__ int vt_up_lower(int target, float scale, int H, int Ho, int mode) {
    int lo = 0, hi = Ho;
    while (lo < hi) {
        int mid = (lo + hi) >> 1, src;
        if (mode == VT_UPSAMPLE_NEAREST) {
            src = vt_up_nearest(mid, scale, H);
        } else {
            int i1;
            float l0, l1;
            vt_up_linear(mid, scale, H, &src, &i1, &l0, &l1);
        }
        if (src >= target) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* Weight with which output index o reads source index i along one axis. */
static __device__ __forceinline__ float vt_up_weight(int o, int i, float scale, int H, int mode) {
    if (mode == VT_UPSAMPLE_NEAREST) return vt_up_nearest(o, scale, H) == i ? 1.0f : 0.0f;
    int i0, i1;
    float l0, l1;
    vt_up_linear(o, scale, H, &i0, &i1, &l0, &l1);
    return (i0 == i ? l0 : 0.0f) + (i1 == i ? l1 : 0.0f);
}

/* Adjoint as a gather: each dx element sums the dy elements that read it (row-major dy order). */
static __global__ void vt_k_upsample_bwd(const float *dy, float *dx, int64_t NC, int H, int W, int Ho, int Wo, int mode,
                                  float sh, float sw) {
    int64_t n = NC * H * W;
    int back = mode == VT_UPSAMPLE_NEAREST ? 0 : 1;
    VT_LOOP(i, n) {
        int ix = (int)(i % W);
        int64_t t = i / W;
        int iy = (int)(t % H);
        const float *dyc = dy + (t / H) * Ho * Wo;
        int ylo = vt_up_lower(iy - back, sh, H, Ho, mode), yhi = vt_up_lower(iy + 1, sh, H, Ho, mode);
        int xlo = vt_up_lower(ix - back, sw, W, Wo, mode), xhi = vt_up_lower(ix + 1, sw, W, Wo, mode);
        float acc = 0.0f;
        for (int oy = ylo; oy < yhi; oy++) {
            float wy = vt_up_weight(oy, iy, sh, H, mode);
            for (int ox = xlo; ox < xhi; ox++) acc += dyc[oy * Wo + ox] * wy * vt_up_weight(ox, ix, sw, W, mode);
        }
        dx[i] = acc;
    }
}

/* ---- batch preparation ---- */

/* One thread per element of x [B,C,Ho,Wo]; the threads of channel 0 also write the label: y[b] from
 * i32 labels, or y[b,h,w] from u8 masks [D,H,W] at the same source pixel (255 outside the image). */
static __global__ void vt_k_batch_prep(const uint8_t *images, const int32_t *labels, const uint8_t *masks,
                                       const int32_t *perm, float *x, int32_t *y, int64_t D, int64_t B, int C, int H,
                                       int W, int Ho, int Wo, vt_batch_prep_params p, vt_cuda_step_arg sa) {
    vt_cuda_step st = vt_load_step(sa);
    int64_t n = B * C * Ho * Wo;
    VT_LOOP(i, n) {
        int w = (int)(i % Wo);
        int64_t t = i / Wo;
        int h = (int)(t % Ho);
        t /= Ho;
        int c = (int)(t % C);
        int64_t b = t / C;
        int64_t j = st.batch_start + b;
        int32_t s = (j >= 0 && j < D) ? perm[j] : -1;
        bool label_thread = c == 0 && (masks || (h == 0 && w == 0));
        int32_t *yo = masks ? y + (b * Ho + h) * Wo + w : y + b;
        if (s < 0 || s >= D) {
            /* Out of range: no exception on a GPU; leave a value that no label can have. */
            x[i] = 0.0f;
            if (label_thread) *yo = -1;
            continue;
        }
        uint4 r = vt_philox_dev(st.seed, p.salt, (uint32_t)j, 0u, (uint32_t)st.step, (uint32_t)(st.step >> 32));
        /* Ho = H, Wo = W, pad = 0: a span of 1, so oy = ox = 0 as before crops smaller than the image. */
        uint32_t span_h = (uint32_t)(H - Ho + 2 * p.pad + 1), span_w = (uint32_t)(W - Wo + 2 * p.pad + 1);
        int oy = p.center ? (int)((span_h - 1) / 2) : (int)(r.x % span_h);
        int ox = p.center ? (int)((span_w - 1) / 2) : (int)(r.y % span_w);
        int col = (p.flip && (r.z & 1u)) ? Wo - 1 - w : w;
        int sy = h + oy - p.pad, sx = col + ox - p.pad;
        bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        float raw = 0.0f;
        if (inside) raw = (float)images[(((int64_t)s * C + c) * H + sy) * W + sx];
        x[i] = (raw / 255.0f - p.mean[c]) / p.std[c];
        if (label_thread) *yo = masks ? (inside ? (int32_t)masks[((int64_t)s * H + sy) * W + sx] : 255) : labels[s];
    }
}

/* ---- optimizers ---- */

static __global__ void vt_k_sgd(const float *grad, float *param, float *buf, int64_t n, vt_sgd_params p, vt_cuda_step_arg sa) {
    vt_cuda_step st = vt_load_step(sa);
    float lr = st.lr * p.lr_mult;
    VT_LOOP(i, n) {
        float w = param[i];
        float g = grad[i] + p.weight_decay * w;
        if (p.momentum != 0.0f) {
            float b = p.momentum * buf[i] + g;
            buf[i] = b;
            g = p.nesterov ? g + p.momentum * b : b;
        }
        param[i] = w - lr * g;
    }
}

/* The per-step scalars of ops.h (vt_adam_consts_of, in double) once per thread: a captured graph
 * replays with the step read from device memory, so the host cannot pass them by value. The launcher
 * caps the grid so that this stays cheap on GPUs with slow FP64. */
static __global__ void vt_k_adam(const float *grad, float *param, float *m, float *v, int64_t n, vt_adam_params p,
                          vt_cuda_step_arg sa) {
    vt_cuda_step st = vt_load_step(sa);
    int64_t t = (int64_t)st.step - p.step_offset + 1;
    if (t < 1) t = 1; /* the CPU reports this as an error; a kernel cannot */
    vt_adam_consts k = vt_adam_consts_of(&p, st.lr * p.lr_mult, t);
    float c1n = 1.0f - k.c1;
    bool small = k.c1 < 0.5f;
    VT_LOOP(i, n) {
        float w = param[i], g = grad[i];
        if (p.decoupled) w = __fmul_rn(w, k.decay);
        else g = __fmaf_rn(k.wd, w, g);
        float mm = m[i], d = __fsub_rn(g, mm);
        mm = small ? __fmaf_rn(k.c1, d, mm) : __fmaf_rn(-c1n, d, g);
        float vv = __fmaf_rn(__fmul_rn(k.c2, g), g, __fmul_rn(v[i], k.b2));
        m[i] = mm;
        v[i] = vv;
        param[i] = __fsub_rn(w, __fdiv_rn(__fmul_rn(k.step_size, mm), __fadd_rn(__fdiv_rn(sqrtf(vv), k.sqrt_bc2), k.eps)));
    }
}

/* ---- im2col / col2im ---- */

static __global__ void vt_k_im2col(const float *x, float *col, int nb, vt_cuda_conv_geom g) {
    int64_t n = (int64_t)nb * g.C * g.R * g.S * g.P * g.Q;
    VT_LOOP(i, n) {
        int q = (int)(i % g.Q);
        int64_t t = i / g.Q;
        int p = (int)(t % g.P);
        t /= g.P;
        int s = (int)(t % g.S);
        t /= g.S;
        int r = (int)(t % g.R);
        t /= g.R; /* t = b*C + c */
        int h = p * g.sh - g.ph + r, w = q * g.sw - g.pw + s;
        col[i] = (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[(t * g.H + h) * g.W + w] : 0.0f;
    }
}

static __global__ void vt_k_col2im(const float *col, float *dx, int nb, vt_cuda_conv_geom g) {
    int64_t n = (int64_t)nb * g.C * g.H * g.W;
    int64_t PQ = (int64_t)g.P * g.Q;
    VT_LOOP(i, n) {
        int w = (int)(i % g.W);
        int64_t t = i / g.W;
        int h = (int)(t % g.H);
        t /= g.H; /* t = b*C + c */
        const float *ct = col + t * g.R * g.S * PQ;
        float acc = 0.0f;
        for (int r = 0; r < g.R; r++) {
            int hp = h + g.ph - r;
            if (hp < 0 || hp % g.sh) continue;
            int p = hp / g.sh;
            if (p >= g.P) continue;
            for (int s = 0; s < g.S; s++) {
                int wq = w + g.pw - s;
                if (wq < 0 || wq % g.sw) continue;
                int q = wq / g.sw;
                if (q >= g.Q) continue;
                acc += ct[((int64_t)r * g.S + s) * PQ + (int64_t)p * g.Q + q];
            }
        }
        dx[i] = acc;
    }
}

/* ---- launchers ---- */

extern "C" {

cudaError_t vt_cuda_fill32(cudaStream_t s, uint32_t *dst, int64_t n, uint32_t pattern) {
    vt_k_fill32<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(dst, n, pattern);
    return cudaGetLastError();
}

cudaError_t vt_cuda_nonfinite(cudaStream_t s, const float *x, int64_t n, int32_t *flag) {
    vt_k_nonfinite<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>((const uint32_t *)x, n, flag);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bias_act(cudaStream_t s, float *y, const float *bias, int64_t n, int64_t inner, int64_t C, int act,
                             float alpha) {
    vt_k_bias_act<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(y, bias, n, inner, C, act, alpha);
    return cudaGetLastError();
}

cudaError_t vt_cuda_act(cudaStream_t s, const float *x, float *y, int64_t n, int act, float alpha) {
    vt_k_act<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(x, y, n, act, alpha);
    return cudaGetLastError();
}

cudaError_t vt_cuda_act_bwd(cudaStream_t s, const float *dy, const float *fwd, float *dx, int64_t n, int act,
                            float alpha) {
    vt_k_act_bwd<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(dy, fwd, dx, n, act, alpha);
    return cudaGetLastError();
}

cudaError_t vt_cuda_add(cudaStream_t s, const float *a, const float *b, float *y, int64_t n) {
    vt_k_add<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(a, b, y, n);
    return cudaGetLastError();
}

cudaError_t vt_cuda_dropout(cudaStream_t s, const float *x, float *y, int64_t n, float p, uint32_t salt,
                            vt_cuda_step_arg st) {
    vt_k_dropout<<<vt_grid((n + 3) / 4, VT_BS), VT_BS, 0, s>>>(x, y, n, p, salt, st);
    return cudaGetLastError();
}

cudaError_t vt_cuda_channel_sum(cudaStream_t s, const float *dy, float *db, int64_t N, int64_t C, int64_t HW) {
    vt_k_channel_sum<<<(unsigned)C, VT_RED_BS, 0, s>>>(dy, db, N, C, HW);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_fwd(cudaStream_t s, const float *x, const float *gamma, const float *beta, float *rmean,
                           float *rvar, float *y, float *save_mean, float *save_invstd, int64_t N, int64_t C,
                           int64_t HW, int training, float momentum, float eps) {
    vt_k_bn_fwd<<<(unsigned)C, VT_RED_BS, 0, s>>>(x, gamma, beta, rmean, rvar, y, save_mean, save_invstd, N, C, HW,
                                                  training, momentum, eps);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_bwd(cudaStream_t s, const float *dy, const float *x, const float *gamma, const float *save_mean,
                           const float *save_invstd, float *dx, float *dgamma, float *dbeta, int64_t N, int64_t C,
                           int64_t HW, int training) {
    vt_k_bn_bwd<<<(unsigned)C, VT_RED_BS, 0, s>>>(dy, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, N, C, HW,
                                                  training);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_stats(cudaStream_t s, const float *x, float *stats, int64_t N, int64_t C, int64_t HW) {
    vt_k_bn_stats<<<(unsigned)C, VT_RED_BS, 0, s>>>(x, stats, N, C, HW);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_apply(cudaStream_t s, const float *x, const float *gamma, const float *beta, const float *stats,
                             float *y, float *rmean, float *rvar, int64_t N, int64_t C, int64_t HW, int64_t count,
                             float momentum, float eps) {
    vt_k_bn_apply<<<(unsigned)C, VT_RED_BS, 0, s>>>(x, gamma, beta, stats, y, rmean, rvar, N, C, HW, count, momentum,
                                                    eps);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_bwd_stats(cudaStream_t s, const float *dy, const float *x, const float *stats, float *dgamma,
                                 float *dbeta, float *sums, int64_t N, int64_t C, int64_t HW, float eps) {
    vt_k_bn_bwd_stats<<<(unsigned)C, VT_RED_BS, 0, s>>>(dy, x, stats, dgamma, dbeta, sums, N, C, HW, eps);
    return cudaGetLastError();
}

cudaError_t vt_cuda_bn_bwd_apply(cudaStream_t s, const float *dy, const float *x, const float *gamma,
                                 const float *stats, const float *sums, float *dx, int64_t N, int64_t C, int64_t HW,
                                 int64_t count, float eps) {
    vt_k_bn_bwd_apply<<<(unsigned)C, VT_RED_BS, 0, s>>>(dy, x, gamma, stats, sums, dx, N, C, HW, count, eps);
    return cudaGetLastError();
}

cudaError_t vt_cuda_pool(cudaStream_t s, const float *x, float *y, int64_t NC, int H, int W, int P, int Q,
                         const vt_pool2d_params *p) {
    vt_k_pool<<<vt_grid(NC * P * Q, VT_BS), VT_BS, 0, s>>>(x, y, NC, H, W, P, Q, *p);
    return cudaGetLastError();
}

cudaError_t vt_cuda_pool_bwd(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t NC, int H, int W,
                             int P, int Q, const vt_pool2d_params *p) {
    vt_k_pool_bwd<<<vt_grid(NC * H * W, VT_BS), VT_BS, 0, s>>>(dy, x, dx, NC, H, W, P, Q, *p);
    return cudaGetLastError();
}

cudaError_t vt_cuda_softmax_ce(cudaStream_t s, const float *logits, const int32_t *labels, float *loss, float *metrics,
                               int64_t N, int64_t K, int64_t S, float smoothing, int ignore) {
    vt_k_softmax_ce<<<1, 1024, 0, s>>>(logits, labels, loss, metrics, N * S, K, S, smoothing, ignore);
    return cudaGetLastError();
}

cudaError_t vt_cuda_softmax_ce_bwd(cudaStream_t s, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t N, int64_t K, int64_t S, float smoothing, float scale, int ignore) {
    if (S == 1) {
        vt_k_softmax_ce_bwd<<<vt_grid(N * 32, VT_BS), VT_BS, 0, s>>>(logits, labels, dlogits, N, K, smoothing, scale,
                                                                     ignore);
    } else {
        vt_k_softmax_ce_bwd_px<<<vt_grid(N * S, VT_BS), VT_BS, 0, s>>>(logits, labels, dlogits, N * S, K, S, smoothing,
                                                                       scale, ignore);
    }
    return cudaGetLastError();
}

cudaError_t vt_cuda_argmax(cudaStream_t s, const float *x, int32_t *out, int64_t N, int64_t K, int64_t S) {
    if (S == 1) vt_k_argmax<<<vt_grid(N * 32, VT_BS), VT_BS, 0, s>>>(x, out, N, K);
    else vt_k_argmax_px<<<vt_grid(N * S, VT_BS), VT_BS, 0, s>>>(x, out, N * S, K, S);
    return cudaGetLastError();
}

cudaError_t vt_cuda_confusion(cudaStream_t s, const int32_t *pred, const int32_t *truth, int32_t *counts, int64_t M,
                              int K) {
    int in_shared = (K + 1) * (K + 1) <= VT_CONF_SHARED;
    unsigned g = vt_grid(M, VT_BS);
    if (in_shared && g > 1024) g = 1024; /* each block adds its matrix once: fewer, longer blocks */
    vt_k_confusion<<<g, VT_BS, 0, s>>>(pred, truth, counts, M, K, in_shared);
    return cudaGetLastError();
}

cudaError_t vt_cuda_upsample(cudaStream_t s, const float *x, float *y, int64_t NC, int H, int W, int Ho, int Wo,
                             int mode) {
    vt_k_upsample<<<vt_grid(NC * Ho * Wo, VT_BS), VT_BS, 0, s>>>(x, y, NC, H, W, Ho, Wo, mode, (float)H / (float)Ho,
                                                                 (float)W / (float)Wo);
    return cudaGetLastError();
}

cudaError_t vt_cuda_upsample_bwd(cudaStream_t s, const float *dy, float *dx, int64_t NC, int H, int W, int Ho, int Wo,
                                 int mode) {
    vt_k_upsample_bwd<<<vt_grid(NC * H * W, VT_BS), VT_BS, 0, s>>>(dy, dx, NC, H, W, Ho, Wo, mode,
                                                                   (float)H / (float)Ho, (float)W / (float)Wo);
    return cudaGetLastError();
}

cudaError_t vt_cuda_batch_prep(cudaStream_t s, const uint8_t *images, const int32_t *labels, const uint8_t *masks,
                               const int32_t *perm, float *x, int32_t *y, int64_t D, int64_t B, int C, int H, int W,
                               int Ho, int Wo, const vt_batch_prep_params *p, vt_cuda_step_arg st) {
    vt_k_batch_prep<<<vt_grid(B * C * Ho * Wo, VT_BS), VT_BS, 0, s>>>(images, labels, masks, perm, x, y, D, B, C, H, W,
                                                                      Ho, Wo, *p, st);
    return cudaGetLastError();
}

cudaError_t vt_cuda_sgd(cudaStream_t s, const float *grad, float *param, float *mom_buf, int64_t n,
                        const vt_sgd_params *p, vt_cuda_step_arg st) {
    vt_k_sgd<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(grad, param, mom_buf, n, *p, st);
    return cudaGetLastError();
}

cudaError_t vt_cuda_adam(cudaStream_t s, const float *grad, float *param, float *m, float *v, int64_t n,
                         const vt_adam_params *p, vt_cuda_step_arg st) {
    unsigned g = vt_grid(n, VT_BS);
    vt_k_adam<<<g < 1024 ? g : 1024, VT_BS, 0, s>>>(grad, param, m, v, n, *p, st);
    return cudaGetLastError();
}

cudaError_t vt_cuda_im2col(cudaStream_t s, const float *x, float *col, int nb, const vt_cuda_conv_geom *g) {
    int64_t n = (int64_t)nb * g->C * g->R * g->S * g->P * g->Q;
    vt_k_im2col<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(x, col, nb, *g);
    return cudaGetLastError();
}

cudaError_t vt_cuda_col2im(cudaStream_t s, const float *col, float *dx, int nb, const vt_cuda_conv_geom *g) {
    int64_t n = (int64_t)nb * g->C * g->H * g->W;
    vt_k_col2im<<<vt_grid(n, VT_BS), VT_BS, 0, s>>>(col, dx, nb, *g);
    return cudaGetLastError();
}

} /* extern "C" */
