/* CPU batch norm: BATCHNORM / BATCHNORM_BWD, and the synchronised batch norm's four ops (BN_STATS,
 * BN_APPLY, BN_BWD_STATS, BN_BWD_APPLY), which are the same computation cut at its two channel
 * reductions. Both share the per-channel helpers below, so that one rank's split ops give
 * BATCHNORM's numbers up to the f32 rounding of the statistics and sums handed between them.
 * x is viewed as [N, C, HW] (HW = 1 for [N,C]); M = N*HW values per channel on this rank. */
#include "cpu_internal.h"

/* Fast-path row sums in eight float lanes (fixed order, vectorisable), returned in double. */
static double sum_sqdev(const float *x, int64_t n, float mean) {
    float lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float d = x[i + l] - mean;
            lane[l] += d * d;
        }
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += (double)lane[l];
    for (; i < n; i++) {
        double d = (double)x[i] - (double)mean;
        s += d * d;
    }
    return s;
}

/* sum dy and sum dy*(x - mean) of one row. */
static void sum_dy_dyx(const float *dy, const float *x, int64_t n, float mean, double *sdy, double *sdyx) {
    float la[8] = {0}, lb[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            la[l] += dy[i + l];
            lb[l] += dy[i + l] * (x[i + l] - mean);
        }
    double a = 0.0, b = 0.0;
    for (int l = 0; l < 8; l++) {
        a += (double)la[l];
        b += (double)lb[l];
    }
    for (; i < n; i++) {
        a += (double)dy[i];
        b += (double)dy[i] * ((double)x[i] - (double)mean);
    }
    *sdy = a;
    *sdyx = b;
}

static void bn_dims(const vt_tensor *x, int64_t *N, int64_t *C, int64_t *HW) {
    *N = x->shape[0];
    *C = x->shape[1];
    *HW = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
}

/* Mean and biased variance of channel ch, two passes: the mean first, then the variance around it.
 * Reference: double throughout; fast: eight float lanes per row, rows added in double. */
static void channel_stats(bool ref, const float *x, int64_t N, int64_t C, int64_t HW, int64_t ch, double *mean,
                          double *var) {
    double sum = 0.0;
    if (ref)
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < HW; k++) sum += (double)x[(i * C + ch) * HW + k];
    else
        for (int64_t i = 0; i < N; i++) sum += vt_cpu_sum(x + (i * C + ch) * HW, HW);
    double mu = sum / (double)(N * HW), sq = 0.0;
    if (ref)
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < HW; k++) {
                double dv = (double)x[(i * C + ch) * HW + k] - mu;
                sq += dv * dv;
            }
    else
        for (int64_t i = 0; i < N; i++) sq += sum_sqdev(x + (i * C + ch) * HW, HW, (float)mu);
    *mean = mu;
    *var = sq / (double)(N * HW);
}

/* sum dy and sum dy*xhat of channel ch, xhat = (x - mu)*is. */
static void channel_sums(bool ref, const float *dy, const float *x, int64_t N, int64_t C, int64_t HW, int64_t ch,
                         float mu, float is, double *sum_dy, double *sum_dy_xhat) {
    double sdy = 0.0, sdyx = 0.0;
    if (ref) {
        for (int64_t i = 0; i < N; i++)
            for (int64_t k = 0; k < HW; k++) {
                int64_t j = (i * C + ch) * HW + k;
                float xhat = (x[j] - mu) * is;
                sdy += (double)dy[j];
                sdyx += (double)dy[j] * (double)xhat;
            }
    } else {
        for (int64_t i = 0; i < N; i++) {
            int64_t j = (i * C + ch) * HW;
            double a, b;
            sum_dy_dyx(dy + j, x + j, HW, mu, &a, &b);
            sdy += a;
            sdyx += b;
        }
        sdyx *= (double)is;
    }
    *sum_dy = sdy;
    *sum_dy_xhat = sdyx;
}

/* y = (x - mean)*scale + shift over channel ch. */
static void channel_normalize(const float *x, float *y, int64_t N, int64_t C, int64_t HW, int64_t ch, float mean,
                              float scale, float shift) {
    for (int64_t i = 0; i < N; i++) {
        const float *xr = x + (i * C + ch) * HW;
        float *yr = y + (i * C + ch) * HW;
        /* simd: y may be x itself (in place), which the compiler's alias test would refuse. */
        VT_OMP("omp simd")
        for (int64_t k = 0; k < HW; k++) yr[k] = (xr[k] - mean) * scale + shift;
    }
}

/* Training dx of channel ch: gamma*invstd/M * (M*dy - db - xhat*dg), M the whole batch's count. */
static void channel_dx(const float *dy, const float *x, float *dx, int64_t N, int64_t C, int64_t HW, int64_t ch,
                       float mu, float is, float g, float db, float dg, int64_t M) {
    float k1 = g * is / (float)M, fM = (float)M;
    for (int64_t i = 0; i < N; i++) {
        int64_t j0 = (i * C + ch) * HW;
        /* simd: dx may be dy itself (in place). */
        VT_OMP("omp simd")
        for (int64_t k = 0; k < HW; k++) {
            int64_t j = j0 + k;
            float xhat = (x[j] - mu) * is;
            dx[j] = k1 * (fM * dy[j] - db - xhat * dg);
        }
    }
}

/* The running statistics' update, M values per channel over the whole batch. */
static void running_update(float *rm, float *rv, int64_t ch, float momentum, float mean, double var, int64_t M) {
    rm[ch] = (1.0f - momentum) * rm[ch] + momentum * mean;
    rv[ch] = (1.0f - momentum) * rv[ch] + momentum * (float)(var * (double)M / (double)(M - 1));
}

static float invstd_of(double var, float eps) { return (float)(1.0 / sqrt(var + (double)eps)); }

/* ---- BATCHNORM / BATCHNORM_BWD ---- */

vt_status vt_cpu_batchnorm(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_batchnorm_params *p = &n->p.bn;
    int64_t N, C, HW;
    bn_dims(n->src[0], &N, &C, &HW);
    const float *x = vt_cpu_f32(n->src[0]), *gamma = vt_cpu_f32(n->src[1]), *beta = vt_cpu_f32(n->src[2]);
    float *rm = vt_cpu_f32(n->src[3]), *rv = vt_cpu_f32(n->src[4]);
    float *y = vt_cpu_f32(n->dst[0]), *save_mean = vt_cpu_f32(n->dst[1]), *save_invstd = vt_cpu_f32(n->dst[2]);
    int64_t M = N * HW;
    bool ref = c->reference;
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        float mean, invstd;
        if (p->training) {
            double mu, var;
            channel_stats(ref, x, N, C, HW, ch, &mu, &var);
            mean = (float)mu;
            invstd = invstd_of(var, p->eps);
            save_mean[ch] = mean;
            save_invstd[ch] = invstd;
            running_update(rm, rv, ch, p->momentum, mean, var, M);
        } else {
            mean = rm[ch];
            invstd = invstd_of((double)rv[ch], p->eps);
            if (save_mean) save_mean[ch] = mean;
            if (save_invstd) save_invstd[ch] = invstd;
        }
        channel_normalize(x, y, N, C, HW, ch, mean, invstd * gamma[ch], beta[ch]);
    }
    return VT_OK;
}

vt_status vt_cpu_batchnorm_bwd(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_batchnorm_params *p = &n->p.bn;
    int64_t N, C, HW;
    bn_dims(n->src[1], &N, &C, &HW);
    const float *dy = vt_cpu_f32(n->src[0]), *x = vt_cpu_f32(n->src[1]), *gamma = vt_cpu_f32(n->src[2]);
    const float *mean = vt_cpu_f32(n->src[3]), *invstd = vt_cpu_f32(n->src[4]);
    float *dx = vt_cpu_f32(n->dst[0]), *dgamma = vt_cpu_f32(n->dst[1]), *dbeta = vt_cpu_f32(n->dst[2]);
    int64_t M = N * HW;
    bool ref = c->reference;
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        float mu = mean[ch], is = invstd[ch];
        double sdy, sdyx;
        channel_sums(ref, dy, x, N, C, HW, ch, mu, is, &sdy, &sdyx);
        /* Written after the sums so that dx may share memory with dy. */
        float db = (float)sdy, dg = (float)sdyx;
        dbeta[ch] = db;
        dgamma[ch] = dg;
        float g = gamma[ch];
        if (p->training) {
            channel_dx(dy, x, dx, N, C, HW, ch, mu, is, g, db, dg, M);
        } else {
            float k0 = g * is;
            for (int64_t i = 0; i < N; i++) {
                int64_t j0 = (i * C + ch) * HW;
                VT_OMP("omp simd")
                for (int64_t k = 0; k < HW; k++) dx[j0 + k] = dy[j0 + k] * k0;
            }
        }
    }
    return VT_OK;
}

/* ---- BN_STATS / BN_APPLY / BN_BWD_STATS / BN_BWD_APPLY ----
 * stats and sums are [2,C]: row 0 at [ch], row 1 at [C + ch]. */

vt_status vt_cpu_bn_stats(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    int64_t N, C, HW;
    bn_dims(n->src[0], &N, &C, &HW);
    const float *x = vt_cpu_f32(n->src[0]);
    float *stats = vt_cpu_f32(n->dst[0]);
    bool ref = c->reference;
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        double mu, var;
        channel_stats(ref, x, N, C, HW, ch, &mu, &var);
        stats[ch] = (float)mu;
        stats[C + ch] = (float)var;
    }
    return VT_OK;
}

vt_status vt_cpu_bn_apply(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_batchnorm_params *p = &n->p.bn;
    int64_t N, C, HW;
    bn_dims(n->src[0], &N, &C, &HW);
    const float *x = vt_cpu_f32(n->src[0]), *gamma = vt_cpu_f32(n->src[1]), *beta = vt_cpu_f32(n->src[2]);
    const float *stats = vt_cpu_f32(n->src[3]);
    float *y = vt_cpu_f32(n->dst[0]), *rm = vt_cpu_f32(n->dst[1]), *rv = vt_cpu_f32(n->dst[2]);
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        float mean = stats[ch];
        double var = (double)stats[C + ch];
        float invstd = invstd_of(var, p->eps);
        if (rm) running_update(rm, rv, ch, p->momentum, mean, var, p->count);
        channel_normalize(x, y, N, C, HW, ch, mean, invstd * gamma[ch], beta[ch]);
    }
    return VT_OK;
}

vt_status vt_cpu_bn_bwd_stats(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_batchnorm_params *p = &n->p.bn;
    int64_t N, C, HW;
    bn_dims(n->src[1], &N, &C, &HW);
    const float *dy = vt_cpu_f32(n->src[0]), *x = vt_cpu_f32(n->src[1]), *stats = vt_cpu_f32(n->src[2]);
    float *dgamma = vt_cpu_f32(n->dst[0]), *dbeta = vt_cpu_f32(n->dst[1]), *sums = vt_cpu_f32(n->dst[2]);
    bool ref = c->reference;
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        float mu = stats[ch], is = invstd_of((double)stats[C + ch], p->eps);
        double sdy, sdyx;
        channel_sums(ref, dy, x, N, C, HW, ch, mu, is, &sdy, &sdyx);
        float db = (float)sdy, dg = (float)sdyx;
        sums[ch] = dg;
        sums[C + ch] = db;
        if (dgamma) {
            dgamma[ch] = dg;
            dbeta[ch] = db;
        }
    }
    return VT_OK;
}

vt_status vt_cpu_bn_bwd_apply(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_batchnorm_params *p = &n->p.bn;
    int64_t N, C, HW;
    bn_dims(n->src[1], &N, &C, &HW);
    const float *dy = vt_cpu_f32(n->src[0]), *x = vt_cpu_f32(n->src[1]), *gamma = vt_cpu_f32(n->src[2]);
    const float *stats = vt_cpu_f32(n->src[3]), *sums = vt_cpu_f32(n->src[4]);
    float *dx = vt_cpu_f32(n->dst[0]);
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        float mu = stats[ch], is = invstd_of((double)stats[C + ch], p->eps);
        channel_dx(dy, x, dx, N, C, HW, ch, mu, is, gamma[ch], sums[C + ch], sums[ch], p->count);
    }
    return VT_OK;
}
