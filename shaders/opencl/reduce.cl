/* Per-channel reductions (bias gradient, batch-norm statistics and gradients): one work-group of
 * VT_RED_LS items per channel, each item summing a fixed stride, then a fixed tree in local
 * memory; or, for few values per channel, one item per channel summing in order (the *_rows
 * kernels). No atomics, so results are bitwise identical from run to run. */

/* Channel c of x[N][C][HW] holds M = N*HW values; value i of the channel is element
 * (i / HW) * C*HW + c*HW + i % HW. Item lid visits i = lid, lid + LS, ... and steps (n, hw)
 * without dividing: division is slow on CPU devices. */
typedef struct vt_ch_iter { int n, hw, dn, dhw; } vt_ch_iter;

vt_ch_iter vt_ch_begin(int lid, int HW) {
    vt_ch_iter it = {lid / HW, lid % HW, VT_RED_LS / HW, VT_RED_LS % HW};
    return it;
}

void vt_ch_next(vt_ch_iter *it, int HW) {
    it->n += it->dn;
    it->hw += it->dhw;
    if (it->hw >= HW) {
        it->hw -= HW;
        it->n++;
    }
}

#define VT_CH_AT(it, c, C, HW) (((size_t)(it).n * (C) + (c)) * (HW) + (it).hw)

void vt_tree_sum2(__local float *a, __local float *b, int lid) {
    for (int s = VT_RED_LS / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
            a[lid] += a[lid + s];
            b[lid] += b[lid + s];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

__kernel void vt_bias_grad(__global const float *dy, ulong dyo, __global float *db, ulong dbo, int N, int C, int HW) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
    int M = N * HW;
    float s = 0.0f;
    vt_ch_iter it = vt_ch_begin(lid, HW);
    for (int i = lid; i < M; i += VT_RED_LS, vt_ch_next(&it, HW)) s += dy[dyo + VT_CH_AT(it, c, C, HW)];
    a[lid] = s;
    b[lid] = 0.0f;
    vt_tree_sum2(a, b, lid);
    if (lid == 0) db[dbo + c] = a[0];
}

/* Few values per channel (a [N,C] gradient): one item per channel summing in order; neighbouring
 * channels are neighbouring addresses, and there is no work-group tree to pay for. */
__kernel void vt_bias_grad_rows(__global const float *dy, ulong dyo, __global float *db, ulong dbo, int N, int C,
                                int HW) {
    int c = get_global_id(0);
    if (c >= C) return;
    float s = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) s += dy[dyo + ((size_t)n * C + c) * HW + i];
    db[dbo + c] = s;
}

/* Training statistics of channel c: the mean, then the biased variance around it (two passes for
 * accuracy), by the work-group tree. Shared by BATCHNORM and BN_STATS so that one rank of the
 * synchronised batch norm reduces exactly as BATCHNORM does. Every item of the group must call it. */
void vt_bn_mean_var(__global const float *x, ulong xo, int N, int C, int HW, int c, int lid, __local float *a,
                    __local float *b, float *mean_out, float *var_out) {
    int M = N * HW;
    float s = 0.0f;
    vt_ch_iter it = vt_ch_begin(lid, HW);
    for (int i = lid; i < M; i += VT_RED_LS, vt_ch_next(&it, HW)) s += x[xo + VT_CH_AT(it, c, C, HW)];
    a[lid] = s;
    b[lid] = 0.0f;
    vt_tree_sum2(a, b, lid);
    float mean = a[0] / (float)M;
    barrier(CLK_LOCAL_MEM_FENCE);
    float q = 0.0f;
    it = vt_ch_begin(lid, HW);
    for (int i = lid; i < M; i += VT_RED_LS, vt_ch_next(&it, HW)) {
        float d = x[xo + VT_CH_AT(it, c, C, HW)] - mean;
        q += d * d;
    }
    a[lid] = q;
    vt_tree_sum2(a, b, lid);
    *mean_out = mean;
    *var_out = a[0] / (float)M;
}

/* vt_bn_mean_var for few values per channel: one item per channel, sums in order. */
void vt_bn_mean_var_rows(__global const float *x, ulong xo, int N, int C, int HW, int c, float *mean_out,
                         float *var_out) {
    int M = N * HW;
    float s = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) s += x[xo + ((size_t)n * C + c) * HW + i];
    float mean = s / (float)M, q = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            float d = x[xo + ((size_t)n * C + c) * HW + i] - mean;
            q += d * d;
        }
    *mean_out = mean;
    *var_out = q / (float)M;
}

/* BATCHNORM training: statistics, save_mean / save_invstd and the running statistics. */
__kernel void vt_bn_stats(__global const float *x, ulong xo, int N, int C, int HW, __global float *rmean, ulong rmo,
                          __global float *rvar, ulong rvo, __global float *smean, ulong smo, __global float *sinv,
                          ulong sio, float momentum, float eps) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
    int M = N * HW;
    float mean, var;
    vt_bn_mean_var(x, xo, N, C, HW, c, lid, a, b, &mean, &var);
    if (lid == 0) {
        smean[smo + c] = mean;
        sinv[sio + c] = 1.0f / sqrt(var + eps);
        rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mean;
        rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * var * (float)M / (float)(M - 1);
    }
}

/* vt_bn_stats for few values per channel: one item per channel, sums in order. */
__kernel void vt_bn_stats_rows(__global const float *x, ulong xo, int N, int C, int HW, __global float *rmean,
                               ulong rmo, __global float *rvar, ulong rvo, __global float *smean, ulong smo,
                               __global float *sinv, ulong sio, float momentum, float eps) {
    int c = get_global_id(0);
    if (c >= C) return;
    int M = N * HW;
    float mean, var;
    vt_bn_mean_var_rows(x, xo, N, C, HW, c, &mean, &var);
    smean[smo + c] = mean;
    sinv[sio + c] = 1.0f / sqrt(var + eps);
    rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mean;
    rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * var * (float)M / (float)(M - 1);
}

/* BN_STATS: this rank's mean and biased variance, rows 0 and 1 of stats [2,C] (so at so and so + C). */
__kernel void vt_bn_sync_stats(__global const float *x, ulong xo, int N, int C, int HW, __global float *stats,
                               ulong so) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
    float mean, var;
    vt_bn_mean_var(x, xo, N, C, HW, c, lid, a, b, &mean, &var);
    if (lid == 0) {
        stats[so + c] = mean;
        stats[so + C + c] = var;
    }
}

/* vt_bn_sync_stats for few values per channel. */
__kernel void vt_bn_sync_stats_rows(__global const float *x, ulong xo, int N, int C, int HW, __global float *stats,
                                    ulong so) {
    int c = get_global_id(0);
    if (c >= C) return;
    float mean, var;
    vt_bn_mean_var_rows(x, xo, N, C, HW, c, &mean, &var);
    stats[so + c] = mean;
    stats[so + C + c] = var;
}

/* BN_APPLY's running statistics from the whole batch's stats [2,C] and M = count, as vt_bn_stats
 * updates them; M and M - 1 come as floats, converted on the host from the 64-bit count (the same
 * rounding as vt_bn_stats' (float) of an int). A NULL running vector is not written: its flag is 0
 * and the host passes another buffer in its place. */
__kernel void vt_bn_sync_running(__global const float *stats, ulong so, __global float *rmean, ulong rmo, int has_rm,
                                 __global float *rvar, ulong rvo, int has_rv, int C, float momentum, float M,
                                 float M1) {
    int c = get_global_id(0);
    if (c >= C) return;
    float mean = stats[so + c], var = stats[so + C + c];
    if (has_rm) rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mean;
    if (has_rv) rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * var * M / M1;
}

/* Eval mode: save_mean = running_mean, save_invstd = 1/sqrt(running_var + eps). */
__kernel void vt_bn_eval_save(__global const float *rmean, ulong rmo, __global const float *rvar, ulong rvo,
                              __global float *smean, ulong smo, __global float *sinv, ulong sio, int C, float eps) {
    int c = get_global_id(0);
    if (c >= C) return;
    smean[smo + c] = rmean[rmo + c];
    sinv[sio + c] = 1.0f / sqrt(rvar[rvo + c] + eps);
}

/* y = (x - mean) * invstd * gamma + beta; with is_var the second vector is a variance.
 * One item per (c, n) row of HW values: range (C, N). */
__kernel void vt_bn_apply(__global const float *x, ulong xo, __global float *y, ulong yo, __global const float *mean,
                          ulong mo, __global const float *sd, ulong so, int is_var, float eps,
                          __global const float *gamma, ulong go, __global const float *beta, ulong bo, int C,
                          int HW) {
    int c = get_global_id(0), nn = get_global_id(1);
    if (c >= C) return;
    size_t base = ((size_t)nn * C + c) * HW;
    float inv = is_var ? 1.0f / sqrt(sd[so + c] + eps) : sd[so + c];
    float mu = mean[mo + c], g = gamma[go + c], b = beta[bo + c];
    for (int i = 0; i < HW; i++) y[yo + base + i] = (x[xo + base + i] - mu) * inv * g + b;
}

/* BATCHNORM_BWD's and BN_BWD_STATS' sums over channel c: dbeta = sum dy, dgamma = sum dy * xhat. The
 * second vector is save_invstd, or with is_var (BN_BWD_STATS) the variance that invstd is made from,
 * 1/sqrt(var + eps) as vt_bn_stats makes it. */
__kernel void vt_bn_bwd_reduce(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                               __global const float *mean, ulong mo, __global const float *inv, ulong io,
                               __global float *dgamma, ulong dgo, __global float *dbeta, ulong dbo, int N, int C,
                               int HW, int is_var, float eps) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
    int M = N * HW;
    float mu = mean[mo + c], is = is_var ? 1.0f / sqrt(inv[io + c] + eps) : inv[io + c];
    float sdy = 0.0f, sdx = 0.0f;
    vt_ch_iter it = vt_ch_begin(lid, HW);
    for (int i = lid; i < M; i += VT_RED_LS, vt_ch_next(&it, HW)) {
        size_t k = VT_CH_AT(it, c, C, HW);
        float g = dy[dyo + k];
        sdy += g;
        sdx += g * ((x[xo + k] - mu) * is);
    }
    a[lid] = sdy;
    b[lid] = sdx;
    vt_tree_sum2(a, b, lid);
    if (lid == 0) {
        dbeta[dbo + c] = a[0];
        dgamma[dgo + c] = b[0];
    }
}

/* vt_bn_bwd_reduce for few values per channel: one item per channel, sums in order. */
__kernel void vt_bn_bwd_reduce_rows(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                                    __global const float *mean, ulong mo, __global const float *inv, ulong io,
                                    __global float *dgamma, ulong dgo, __global float *dbeta, ulong dbo, int N, int C,
                                    int HW, int is_var, float eps) {
    int c = get_global_id(0);
    if (c >= C) return;
    float mu = mean[mo + c], is = is_var ? 1.0f / sqrt(inv[io + c] + eps) : inv[io + c];
    float sdy = 0.0f, sdx = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            size_t k = ((size_t)n * C + c) * HW + i;
            float g = dy[dyo + k];
            sdy += g;
            sdx += g * ((x[xo + k] - mu) * is);
        }
    dbeta[dbo + c] = sdy;
    dgamma[dgo + c] = sdx;
}

/* dx of BATCHNORM_BWD and BN_BWD_APPLY; dgamma and dbeta are the sums of dy * xhat and dy over the M
 * values of each channel (all ranks' for BN_BWD_APPLY, so M is a float made from the 64-bit count),
 * and with is_var the inv vector is the variance, as in vt_bn_bwd_reduce. */
__kernel void vt_bn_bwd_apply(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                              __global const float *gamma, ulong go, __global const float *mean, ulong mo,
                              __global const float *inv, ulong io, __global const float *dgamma, ulong dgo,
                              __global const float *dbeta, ulong dbo, __global float *dx, ulong dxo, int training,
                              int C, int HW, float M, int is_var, float eps) {
    int c = get_global_id(0), nn = get_global_id(1);
    if (c >= C) return;
    size_t base = ((size_t)nn * C + c) * HW;
    float is = is_var ? 1.0f / sqrt(inv[io + c] + eps) : inv[io + c];
    float gm = gamma[go + c], mu = mean[mo + c], db = dbeta[dbo + c], dg = dgamma[dgo + c];
    for (int i = 0; i < HW; i++) {
        float g = dy[dyo + base + i];
        if (training) {
            float xhat = (x[xo + base + i] - mu) * is;
            dx[dxo + base + i] = gm * is / M * (M * g - db - xhat * dg);
        } else {
            dx[dxo + base + i] = g * gm * is;
        }
    }
}
