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

/* Training statistics: mean, then the biased variance around it (two passes for accuracy). */
__kernel void vt_bn_stats(__global const float *x, ulong xo, int N, int C, int HW, __global float *rmean, ulong rmo,
                          __global float *rvar, ulong rvo, __global float *smean, ulong smo, __global float *sinv,
                          ulong sio, float momentum, float eps) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
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
    if (lid == 0) {
        float var = a[0] / (float)M;
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
    float s = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) s += x[xo + ((size_t)n * C + c) * HW + i];
    float mean = s / (float)M, q = 0.0f;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            float d = x[xo + ((size_t)n * C + c) * HW + i] - mean;
            q += d * d;
        }
    float var = q / (float)M;
    smean[smo + c] = mean;
    sinv[sio + c] = 1.0f / sqrt(var + eps);
    rmean[rmo + c] = (1.0f - momentum) * rmean[rmo + c] + momentum * mean;
    rvar[rvo + c] = (1.0f - momentum) * rvar[rvo + c] + momentum * var * (float)M / (float)(M - 1);
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

__kernel void vt_bn_bwd_reduce(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                               __global const float *mean, ulong mo, __global const float *inv, ulong io,
                               __global float *dgamma, ulong dgo, __global float *dbeta, ulong dbo, int N, int C,
                               int HW) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int c = get_group_id(0), lid = get_local_id(0);
    int M = N * HW;
    float mu = mean[mo + c], is = inv[io + c];
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
                                    int HW) {
    int c = get_global_id(0);
    if (c >= C) return;
    float mu = mean[mo + c], is = inv[io + c];
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

__kernel void vt_bn_bwd_apply(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                              __global const float *gamma, ulong go, __global const float *mean, ulong mo,
                              __global const float *inv, ulong io, __global const float *dgamma, ulong dgo,
                              __global const float *dbeta, ulong dbo, __global float *dx, ulong dxo, int training,
                              int C, int HW, int M) {
    int c = get_global_id(0), nn = get_global_id(1);
    if (c >= C) return;
    size_t base = ((size_t)nn * C + c) * HW;
    float is = inv[io + c], gm = gamma[go + c], mu = mean[mo + c], db = dbeta[dbo + c], dg = dgamma[dgo + c];
    for (int i = 0; i < HW; i++) {
        float g = dy[dyo + base + i];
        if (training) {
            float xhat = (x[xo + base + i] - mu) * is;
            dx[dxo + base + i] = gm * is / (float)M * ((float)M * g - db - xhat * dg);
        } else {
            dx[dxo + base + i] = g * gm * is;
        }
    }
}
