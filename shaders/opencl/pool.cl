/* Max / average pooling and their gradients. The general backward pass adds, per dx row, the
 * windows that cover it in ascending window order, so sums are deterministic; non-overlapping
 * windows take a shorter path. One work-item per row, looping along it (per-element index
 * arithmetic is slow on CPU devices). */

/* Range (P, planes). */
__kernel void vt_pool_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, int planes, int H, int W,
                          int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int kind) {
    int p = get_global_id(0), pl = get_global_id(1);
    if (p >= P) return;
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global float *out = y + yo + ((size_t)pl * P + p) * Q;
    int h0 = p * sh - ph;
    int i_lo = max(0, -h0), i_hi = min(kh, H - h0);
    for (int q = 0; q < Q; q++) {
        int w0 = q * sw - pw;
        int j_lo = max(0, -w0), j_hi = min(kw, W - w0);
        float acc = kind == VT_POOL_MAX ? -INFINITY : 0.0f;
        int found = 0;
        for (int i = i_lo; i < i_hi; i++)
            for (int j = j_lo; j < j_hi; j++) {
                float v = xp[(h0 + i) * W + w0 + j];
                if (kind == VT_POOL_MAX) {
                    if (!found || v > acc) acc = v;
                    found = 1;
                } else {
                    acc += v;
                }
            }
        out[q] = kind == VT_POOL_MAX ? acc : acc / (float)(kh * kw);
    }
}

/* Index (into the plane) of the first maximum of window (p, q), in row-major window order. */
int vt_pool_argmax(__global const float *xp, int H, int W, int p, int q, int kh, int kw, int sh, int sw, int ph,
                   int pw) {
    int h0 = p * sh - ph, w0 = q * sw - pw;
    int i_lo = max(0, -h0), i_hi = min(kh, H - h0), j_lo = max(0, -w0), j_hi = min(kw, W - w0);
    int best = -1;
    float m = 0.0f;
    for (int i = i_lo; i < i_hi; i++)
        for (int j = j_lo; j < j_hi; j++) {
            int idx = (h0 + i) * W + w0 + j;
            float v = xp[idx];
            if (best < 0 || v > m) {
                m = v;
                best = idx;
            }
        }
    return best;
}

/* One item per dx row h: range (H, planes). The row is zeroed, then every window that covers it
 * adds its gradient, windows in ascending (p, q) order, so each element's sum has a fixed order. */
__kernel void vt_pool_bwd(__global const float *dy, ulong dyo, __global const float *x, ulong xo, __global float *dx,
                          ulong dxo, int planes, int H, int W, int P, int Q, int kh, int kw, int sh, int sw, int ph,
                          int pw, int kind) {
    int h = get_global_id(0), pl = get_global_id(1);
    if (h >= H) return;
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global const float *dyp = dy + dyo + (size_t)pl * P * Q;
    __global float *out = dx + dxo + ((size_t)pl * H + h) * W;
    for (int w = 0; w < W; w++) out[w] = 0.0f;
    /* Windows p with 0 <= h + ph - p*sh < kh. */
    int p_lo = h + ph - kh + 1 <= 0 ? 0 : (h + ph - kh + 1 + sh - 1) / sh;
    int p_hi = min(P - 1, (h + ph) / sh);
    for (int p = p_lo; p <= p_hi; p++)
        for (int q = 0; q < Q; q++) {
            float g = dyp[p * Q + q];
            if (kind == VT_POOL_MAX) {
                int idx = vt_pool_argmax(xp, H, W, p, q, kh, kw, sh, sw, ph, pw);
                int col = idx - h * W;
                if (col >= 0 && col < W) out[col] += g;
            } else {
                int w0 = q * sw - pw;
                int j_lo = max(0, -w0), j_hi = min(kw, W - w0);
                for (int j = j_lo; j < j_hi; j++) out[w0 + j] += g / (float)(kh * kw);
            }
        }
}

/* Windows that do not overlap (stride >= kernel, e.g. 2x2 stride 2): one item per window row p
 * owns the dx rows from its window's first row to the next window's, zeroes them and writes each
 * window's gradient once, finding each maximum once. Every element gets at most one window, so
 * this equals the general kernel bit for bit. Range (P, planes). */
__kernel void vt_pool_bwd_disjoint(__global const float *dy, ulong dyo, __global const float *x, ulong xo,
                                   __global float *dx, ulong dxo, int planes, int H, int W, int P, int Q, int kh,
                                   int kw, int sh, int sw, int ph, int pw, int kind) {
    int p = get_global_id(0), pl = get_global_id(1);
    if (p >= P) return;
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global const float *dyp = dy + dyo + ((size_t)pl * P + p) * Q;
    __global float *out = dx + dxo + (size_t)pl * H * W;
    int r0 = p == 0 ? 0 : max(0, p * sh - ph), r1 = p == P - 1 ? H : min(H, (p + 1) * sh - ph);
    for (int i = r0 * W; i < r1 * W; i++) out[i] = 0.0f;
    int h0 = p * sh - ph;
    int i_lo = max(0, -h0), i_hi = min(kh, H - h0);
    for (int q = 0; q < Q; q++) {
        float g = dyp[q];
        if (kind == VT_POOL_MAX) {
            out[vt_pool_argmax(xp, H, W, p, q, kh, kw, sh, sw, ph, pw)] = g;
        } else {
            int w0 = q * sw - pw;
            int j_lo = max(0, -w0), j_hi = min(kw, W - w0);
            float v = g / (float)(kh * kw);
            for (int i = i_lo; i < i_hi; i++)
                for (int j = j_lo; j < j_hi; j++) out[(h0 + i) * W + w0 + j] = v;
        }
    }
}

/* Overlapping max pooling, first pass: the first maximum of every window, found once
 * (idx[plane][p][q], an index into the plane). Range (P, planes). */
__kernel void vt_pool_argmax_rows(__global const float *x, ulong xo, __global int *idx, ulong io, int planes, int H,
                                  int W, int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw) {
    int p = get_global_id(0), pl = get_global_id(1);
    if (p >= P) return;
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global int *out = idx + io + ((size_t)pl * P + p) * Q;
    for (int q = 0; q < Q; q++) out[q] = vt_pool_argmax(xp, H, W, p, q, kh, kw, sh, sw, ph, pw);
}

/* Overlapping max pooling, second pass: each dx row adds the gradients of the windows whose
 * maximum lies in it, in ascending (p, q) order (the order of vt_pool_bwd). Range (H, planes). */
__kernel void vt_pool_bwd_idx(__global const float *dy, ulong dyo, __global const int *idx, ulong io,
                              __global float *dx, ulong dxo, int planes, int H, int W, int P, int Q, int kh, int sh,
                              int ph) {
    int h = get_global_id(0), pl = get_global_id(1);
    if (h >= H) return;
    __global const float *dyp = dy + dyo + (size_t)pl * P * Q;
    __global const int *ip = idx + io + (size_t)pl * P * Q;
    __global float *out = dx + dxo + ((size_t)pl * H + h) * W;
    for (int w = 0; w < W; w++) out[w] = 0.0f;
    int p_lo = h + ph - kh + 1 <= 0 ? 0 : (h + ph - kh + 1 + sh - 1) / sh;
    int p_hi = min(P - 1, (h + ph) / sh);
    for (int p = p_lo; p <= p_hi; p++)
        for (int q = 0; q < Q; q++) {
            int col = ip[p * Q + q] - h * W;
            if (col >= 0 && col < W) out[col] += dyp[p * Q + q];
        }
}
