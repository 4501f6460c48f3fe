/* Data-side kernels: BATCH_PREP (gather + random crop/flip + normalise, Philox per sample) and
 * nearest / bilinear UPSAMPLE with its adjoint. One work-item per row (or plane), looping along it. */

/* One item per output row: range (Ho, B*C). The output [B,C,Ho,Wo] is a window of the image (a crop
 * smaller than it, or CIFAR's pad-and-crop); masks = 1: lab is u8 masks [D,H,W] (read through
 * mask), and the items of channel 0 also write the label row y[b,h,:] from the same source pixels. */
__kernel void vt_batch_prep(__global const uchar *img, ulong io, __global const int *lab, ulong lo,
                            __global const uchar *mask, ulong mo, __global const int *perm, ulong po, __global float *x,
                            ulong xo, __global int *y, ulong yo, int B, int C, int H, int W, int Ho, int Wo, int pad,
                            int flip, int center, int masks, float4 mean, float4 sd, uint seed, uint salt, uint step_lo,
                            uint step_hi, long batch_start) {
    int h = get_global_id(0), bc = get_global_id(1);
    if (h >= Ho) return;
    int b = bc / C, c = bc - b * C;
    long j = batch_start + b;
    int s = perm[po + j];
    if (!masks && c == 0 && h == 0) y[yo + b] = lab[lo + s];
    uint4 r = vt_philox(seed, salt, (uint)j, 0u, step_lo, step_hi);
    /* span 1 (whole image, no padding) gives offset 0, as without a crop */
    uint span_h = (uint)(H - Ho + 2 * pad + 1), span_w = (uint)(W - Wo + 2 * pad + 1);
    int oy = center ? (int)((span_h - 1u) / 2u) : (int)(r.x % span_h);
    int ox = center ? (int)((span_w - 1u) / 2u) : (int)(r.y % span_w);
    int flipped = flip && (r.z & 1u);
    float m = c == 0 ? mean.x : c == 1 ? mean.y : c == 2 ? mean.z : mean.w;
    float d = c == 0 ? sd.x : c == 1 ? sd.y : c == 2 ? sd.z : sd.w;
    int sy = h + oy - pad, row_ok = sy >= 0 && sy < H;
    __global float *out = x + xo + ((size_t)bc * Ho + h) * Wo;
    __global const uchar *in = img + io + (((size_t)s * C + c) * H + (row_ok ? sy : 0)) * W;
    for (int w = 0; w < Wo; w++) {
        int sx = (flipped ? Wo - 1 - w : w) + ox - pad;
        float raw = 0.0f;
        if (row_ok && sx >= 0 && sx < W) raw = (float)in[sx];
        out[w] = (raw / 255.0f - m) / d;
    }
    if (!masks || c != 0) return;
    __global const uchar *mrow = mask + mo + ((size_t)s * H + (row_ok ? sy : 0)) * W;
    __global int *yout = y + yo + ((size_t)b * Ho + h) * Wo;
    for (int w = 0; w < Wo; w++) {
        int sx = (flipped ? Wo - 1 - w : w) + ox - pad;
        yout[w] = row_ok && sx >= 0 && sx < W ? (int)mrow[sx] : 255;
    }
}

/* Source index and weights along one axis (PyTorch F.interpolate, align_corners=False). */
void vt_up_axis(int o, int in, float scale, int mode, int *i0, int *i1, float *l0, float *l1) {
    if (mode == VT_UPSAMPLE_NEAREST) {
        int s = (int)floor((float)o * scale);
        *i0 = *i1 = min(s, in - 1);
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    float s = ((float)o + 0.5f) * scale - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int a = (int)floor(s);
    *i0 = a;
    *i1 = min(a + 1, in - 1);
    *l1 = s - (float)a;
    *l0 = 1.0f - *l1;
}

/* One item per output row: range (Ho, planes). */
__kernel void vt_upsample(__global const float *x, ulong xo, __global float *y, ulong yo, int planes, int H, int W,
                          int Ho, int Wo, float scale_h, float scale_w, int mode) {
    int oh = get_global_id(0), pl = get_global_id(1);
    if (oh >= Ho) return;
    __global const float *xp = x + xo + (size_t)pl * H * W;
    __global float *out = y + yo + ((size_t)pl * Ho + oh) * Wo;
    int h0, h1;
    float a0, a1;
    vt_up_axis(oh, H, scale_h, mode, &h0, &h1, &a0, &a1);
    for (int ow = 0; ow < Wo; ow++) {
        int w0, w1;
        float b0, b1;
        vt_up_axis(ow, W, scale_w, mode, &w0, &w1, &b0, &b1);
        float v;
        if (mode == VT_UPSAMPLE_NEAREST)
            v = xp[h0 * W + w0];
        else
            v = a0 * (b0 * xp[h0 * W + w0] + b1 * xp[h0 * W + w1]) + a1 * (b0 * xp[h1 * W + w0] + b1 * xp[h1 * W + w1]);
        out[ow] = v;
    }
}

/* One work-item per (n, c) plane adds every dy element into dx in row-major order: the adjoint
 * without atomics, and the same summation order on every run. */
__kernel void vt_upsample_bwd(__global const float *dy, ulong dyo, __global float *dx, ulong dxo, int planes, int H,
                              int W, int Ho, int Wo, float scale_h, float scale_w, int mode) {
    int pl = get_global_id(0);
    if (pl >= planes) return;
    __global float *d = dx + dxo + (size_t)pl * H * W;
    __global const float *g = dy + dyo + (size_t)pl * Ho * Wo;
    for (int i = 0; i < H * W; i++) d[i] = 0.0f;
    for (int oh = 0; oh < Ho; oh++) {
        int h0, h1;
        float a0, a1;
        vt_up_axis(oh, H, scale_h, mode, &h0, &h1, &a0, &a1);
        for (int ow = 0; ow < Wo; ow++) {
            int w0, w1;
            float b0, b1;
            vt_up_axis(ow, W, scale_w, mode, &w0, &w1, &b0, &b1);
            float v = g[oh * Wo + ow];
            if (mode == VT_UPSAMPLE_NEAREST) {
                d[h0 * W + w0] += v;
            } else {
                d[h0 * W + w0] += a0 * b0 * v;
                d[h0 * W + w1] += a0 * b1 * v;
                d[h1 * W + w0] += a1 * b0 * v;
                d[h1 * W + w1] += a1 * b1 * v;
            }
        }
    }
}
