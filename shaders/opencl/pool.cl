/* Max / average pooling and their gradients. The backward pass gathers per input pixel over the
 * windows that contain it, in ascending window order, so sums are deterministic. */

__kernel void vt_pool_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, int planes, int H, int W,
                          int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int kind) {
    int gid = get_global_id(0);
    if (gid >= planes * P * Q) return;
    int q = gid % Q, p = (gid / Q) % P, pl = gid / (P * Q);
    __global const float *xp = x + xo + (size_t)pl * H * W;
    float acc = kind == VT_POOL_MAX ? -INFINITY : 0.0f;
    int found = 0;
    for (int i = 0; i < kh; i++) {
        int h = p * sh - ph + i;
        if (h < 0 || h >= H) continue;
        for (int j = 0; j < kw; j++) {
            int w = q * sw - pw + j;
            if (w < 0 || w >= W) continue;
            float v = xp[h * W + w];
            if (kind == VT_POOL_MAX) {
                if (!found || v > acc) acc = v;
                found = 1;
            } else {
                acc += v;
            }
        }
    }
    y[yo + gid] = kind == VT_POOL_MAX ? acc : acc / (float)(kh * kw);
}

__kernel void vt_pool_bwd(__global const float *dy, ulong dyo, __global const float *x, ulong xo, __global float *dx,
                          ulong dxo, int planes, int H, int W, int P, int Q, int kh, int kw, int sh, int sw, int ph,
                          int pw, int kind) {
    int gid = get_global_id(0);
    if (gid >= planes * H * W) return;
    int w = gid % W, h = (gid / W) % H, pl = gid / (H * W);
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global const float *dyp = dy + dyo + (size_t)pl * P * Q;
    /* Windows p with 0 <= h + ph - p*sh < kh. */
    int p_lo = h + ph - kh + 1 <= 0 ? 0 : (h + ph - kh + 1 + sh - 1) / sh;
    int p_hi = min(P - 1, (h + ph) / sh);
    int q_lo = w + pw - kw + 1 <= 0 ? 0 : (w + pw - kw + 1 + sw - 1) / sw;
    int q_hi = min(Q - 1, (w + pw) / sw);
    float sum = 0.0f;
    for (int p = p_lo; p <= p_hi; p++) {
        for (int q = q_lo; q <= q_hi; q++) {
            float g = dyp[p * Q + q];
            if (kind == VT_POOL_MAX) {
                /* The first maximum of the window takes the gradient. */
                int best = -1;
                float m = 0.0f;
                for (int i = 0; i < kh; i++) {
                    int hh = p * sh - ph + i;
                    if (hh < 0 || hh >= H) continue;
                    for (int j = 0; j < kw; j++) {
                        int ww = q * sw - pw + j;
                        if (ww < 0 || ww >= W) continue;
                        float v = xp[hh * W + ww];
                        if (best < 0 || v > m) {
                            m = v;
                            best = hh * W + ww;
                        }
                    }
                }
                if (best == h * W + w) sum += g;
            } else {
                sum += g / (float)(kh * kw);
            }
        }
    }
    dx[dxo + gid] = sum;
}
