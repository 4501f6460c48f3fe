/* Convolution lowering around the CLBlast GEMMs. A chunk of nb images starting at image n0 is
 * unfolded into col[C*R*S][nb*P*Q] (column = image-in-chunk * P*Q + p*Q + q); the GEMM output
 * tmp[K][nb*P*Q] uses the same column order and is moved to/from NCHW by scatter/gather. */

__kernel void vt_im2col(__global const float *x, ulong xo, __global float *col, ulong colo, int C, int H, int W,
                        int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int gid = get_global_id(0);
    int cols = nb * P * Q;
    if (gid >= C * R * S * cols) return;
    int row = gid / cols, cx = gid - row * cols;
    int nn = cx / (P * Q), pq = cx - nn * (P * Q);
    int p = pq / Q, q = pq - p * Q;
    int s = row % S, r = (row / S) % R, c = row / (R * S);
    int h = p * sh - ph + r, w = q * sw - pw + s;
    float v = 0.0f;
    if (h >= 0 && h < H && w >= 0 && w < W) v = x[xo + ((size_t)(n0 + nn) * C + c) * H * W + h * W + w];
    col[colo + gid] = v;
}

/* Sums, for every input pixel, the unfolded gradients that came from it (gather: no atomics). */
__kernel void vt_col2im(__global const float *col, ulong colo, __global float *dx, ulong dxo, int C, int H, int W,
                        int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int gid = get_global_id(0);
    if (gid >= nb * C * H * W) return;
    int w = gid % W, h = (gid / W) % H, c = (gid / (H * W)) % C, nn = gid / (C * H * W);
    int cols = nb * P * Q;
    float sum = 0.0f;
    for (int r = 0; r < R; r++) {
        int th = h + ph - r;
        if (th < 0 || th % sh) continue;
        int p = th / sh;
        if (p >= P) continue;
        for (int s = 0; s < S; s++) {
            int tw = w + pw - s;
            if (tw < 0 || tw % sw) continue;
            int q = tw / sw;
            if (q >= Q) continue;
            sum += col[colo + (size_t)((c * R + r) * S + s) * cols + nn * P * Q + p * Q + q];
        }
    }
    dx[dxo + (size_t)n0 * C * H * W + gid] = sum;
}

/* y[n0+nn][k][pq] = act(tmp[k][nn*PQ+pq] + bias[k]). */
__kernel void vt_conv_scatter(__global const float *tmp, ulong tmpo, __global float *y, ulong yo,
                              __global const float *bias, ulong bo, int has_bias, int K, int PQ, int n0, int nb,
                              int kind, float alpha) {
    int gid = get_global_id(0);
    if (gid >= nb * K * PQ) return;
    int pq = gid % PQ, k = (gid / PQ) % K, nn = gid / (K * PQ);
    float v = tmp[tmpo + (size_t)k * nb * PQ + nn * PQ + pq];
    if (has_bias) v += bias[bo + k];
    y[yo + (size_t)n0 * K * PQ + gid] = vt_act_apply(v, kind, alpha);
}

/* tmp[k][nn*PQ+pq] = dy[n0+nn][k][pq]. */
__kernel void vt_conv_gather(__global const float *dy, ulong dyo, __global float *tmp, ulong tmpo, int K, int PQ,
                             int n0, int nb) {
    int gid = get_global_id(0);
    int cols = nb * PQ;
    if (gid >= K * cols) return;
    int k = gid / cols, cx = gid - k * cols;
    int nn = cx / PQ, pq = cx - nn * PQ;
    tmp[tmpo + gid] = dy[dyo + ((size_t)(n0 + nn) * K + k) * PQ + pq];
}
