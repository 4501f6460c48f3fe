/* Convolution lowering around the CLBlast GEMMs. A chunk of nb images starting at image n0 is
 * unfolded into col[C*R*S][nb*P*Q] (column = image-in-chunk * P*Q + p*Q + q); the GEMM output
 * tmp[K][nb*P*Q] uses the same column order and is moved to/from NCHW by scatter/gather.
 * Each work-item handles one contiguous row and loops along it: index arithmetic (divisions)
 * is then paid once per row, not per element, which made im2col ~50x faster on PoCL. */

/* One item per (image-in-chunk, output row p) and unfolded row (c, r, s): range (nb*P, C*R*S). */
__kernel void vt_im2col(__global const float *x, ulong xo, __global float *col, ulong colo, int C, int H, int W,
                        int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int np = get_global_id(0), row = get_global_id(1);
    if (np >= nb * P) return;
    int nn = np / P, p = np - nn * P;
    int s = row % S, r = (row / S) % R, c = row / (R * S);
    int h = p * sh - ph + r;
    __global float *out = col + colo + (size_t)row * nb * P * Q + (size_t)np * Q;
    if (h < 0 || h >= H) {
        for (int q = 0; q < Q; q++) out[q] = 0.0f;
        return;
    }
    __global const float *in = x + xo + (((size_t)(n0 + nn) * C + c) * H + h) * W;
    for (int q = 0; q < Q; q++) {
        int w = q * sw - pw + s;
        out[q] = (w >= 0 && w < W) ? in[w] : 0.0f;
    }
}

/* Sums, for every input pixel, the unfolded gradients that came from it (gather: no atomics), in
 * ascending (r, s) order. One item per input row (h, image-in-chunk, c): range (H, nb*C). */
__kernel void vt_col2im(__global const float *col, ulong colo, __global float *dx, ulong dxo, int C, int H, int W,
                        int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int h = get_global_id(0), nc = get_global_id(1);
    if (h >= H) return;
    int nn = nc / C, c = nc - nn * C;
    size_t cols = (size_t)nb * P * Q;
    __global const float *cb = col + colo + (size_t)nn * P * Q;
    __global float *out = dx + dxo + (((size_t)(n0 + nn) * C + c) * H + h) * W;
    for (int w = 0; w < W; w++) out[w] = 0.0f;
    for (int r = 0; r < R; r++) {
        int th = h + ph - r;
        if (th < 0) break;
        if (th % sh) continue;
        int p = th / sh;
        if (p >= P) continue;
        for (int s = 0; s < S; s++) {
            __global const float *src = cb + (size_t)((c * R + r) * S + s) * cols + (size_t)p * Q;
            if (sw == 1) {
                /* q = w + pw - s must lie in [0, Q) */
                int w_lo = max(0, s - pw), w_hi = min(W, Q + s - pw);
                for (int w = w_lo; w < w_hi; w++) out[w] += src[w + pw - s];
            } else {
                for (int w = 0; w < W; w++) {
                    int tw = w + pw - s;
                    if (tw < 0 || tw % sw) continue;
                    int q = tw / sw;
                    if (q < Q) out[w] += src[q];
                }
            }
        }
    }
}

/* y[n0+nn][k][:] = act(tmp[k][nn*PQ + :] + bias[k]). Range (K, nb). */
__kernel void vt_conv_scatter(__global const float *tmp, ulong tmpo, __global float *y, ulong yo,
                              __global const float *bias, ulong bo, int has_bias, int K, int PQ, int n0, int nb,
                              int kind, float alpha) {
    int k = get_global_id(0), nn = get_global_id(1);
    if (k >= K) return;
    __global const float *in = tmp + tmpo + ((size_t)k * nb + nn) * PQ;
    __global float *out = y + yo + ((size_t)(n0 + nn) * K + k) * PQ;
    float b = has_bias ? bias[bo + k] : 0.0f;
    for (int i = 0; i < PQ; i++) out[i] = vt_act_apply(has_bias ? in[i] + b : in[i], kind, alpha);
}

/* tmp[k][nn*PQ + :] = dy[n0+nn][k][:]. Range (K, nb). */
__kernel void vt_conv_gather(__global const float *dy, ulong dyo, __global float *tmp, ulong tmpo, int K, int PQ,
                             int n0, int nb) {
    int k = get_global_id(0), nn = get_global_id(1);
    if (k >= K) return;
    __global const float *in = dy + dyo + ((size_t)(n0 + nn) * K + k) * PQ;
    __global float *out = tmp + tmpo + ((size_t)k * nb + nn) * PQ;
    for (int i = 0; i < PQ; i++) out[i] = in[i];
}

/* wt[c][k][R-1-r][S-1-s] = w[k][c][r][s]: the weights of the stride-1 data gradient written as a
 * forward convolution. Range (K, C). */
__kernel void vt_conv_flip(__global const float *w, ulong wo, __global float *wt, ulong wto, int K, int C, int RS) {
    int k = get_global_id(0), c = get_global_id(1);
    if (k >= K) return;
    __global const float *in = w + wo + ((size_t)k * C + c) * RS;
    __global float *out = wt + wto + ((size_t)c * K + k) * RS;
    for (int i = 0; i < RS; i++) out[RS - 1 - i] = in[i];
}
