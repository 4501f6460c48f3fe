// POOL2D max / average and its backward. The backward gathers: each dx element visits the windows
// that cover it (ascending, as a scatter would) and, for max, recomputes each window's first maximum.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint BWD = 0;
layout(constant_id = 4) const uint AVG = 0;

// forward: 0 x, 2 y.  backward: 0 dy, 1 x, 2 dx.
layout(std430, set = 0, binding = 0) readonly buffer B0 { float b0[]; };
layout(std430, set = 0, binding = 1) readonly buffer B1 { float b1[]; };
layout(std430, set = 0, binding = 2) buffer Out { float o[]; };

// u: 0 N*C, 1 H, 2 W, 3 P, 4 Q, 5 kh, 6 kw, 7 sh, 8 sw, 9 ph, 10 pw, 11 first n*C+c of this dispatch
// (N*C can exceed the device's z group count, e.g. 128 x 512 in ResNet18: the host splits it).
// Grid: x = output column, y = output row, z = n*C + c (no per-invocation integer division).
// TILED = 1 (backward only): windows tile the input exactly (stride = kernel, no padding), so one
// invocation per window writes all of its dx elements.
layout(constant_id = 5) const uint TILED = 0;

void main() {
    const uint H = pc.u[1], W = pc.u[2], P = pc.u[3], Q = pc.u[4];
    const int kh = int(pc.u[5]), kw = int(pc.u[6]), sh = int(pc.u[7]), sw = int(pc.u[8]);
    const int ph = int(pc.u[9]), pw = int(pc.u[10]);
    const uint nc = gl_GlobalInvocationID.z + pc.u[11];
    if (BWD == 0u || TILED != 0u) {
        int q = int(gl_GlobalInvocationID.x), p = int(gl_GlobalInvocationID.y);
        if (q >= int(Q) || p >= int(P)) return;
        uint xb = (BWD == 0u ? pc.off[0] : pc.off[1]) + nc * H * W;
        float acc = AVG != 0u ? 0.0 : -1.0 / 0.0;
        int bh = -1, bw = -1;
        for (int r = 0; r < kh; r++) {
            int ih = p * sh - ph + r;
            if (ih < 0 || ih >= int(H)) continue;
            for (int s = 0; s < kw; s++) {
                int iw = q * sw - pw + s;
                if (iw < 0 || iw >= int(W)) continue;
                float v = (BWD == 0u) ? b0[xb + uint(ih) * W + uint(iw)] : b1[xb + uint(ih) * W + uint(iw)];
                if (AVG != 0u) acc += v;
                else if (bh < 0 || v > acc) {
                    acc = v;
                    bh = ih;
                    bw = iw;
                }
            }
        }
        if (BWD == 0u) {
            o[pc.off[2] + (nc * P + uint(p)) * Q + uint(q)] = AVG != 0u ? acc / float(kh * kw) : acc;
            return;
        }
        float g = b0[pc.off[0] + (nc * P + uint(p)) * Q + uint(q)];
        for (int r = 0; r < kh; r++)
            for (int s = 0; s < kw; s++) {
                int ih = p * sh + r, iw = q * sw + s;
                float v = AVG != 0u ? g / float(kh * kw) : ((ih == bh && iw == bw) ? g : 0.0);
                o[pc.off[2] + (nc * H + uint(ih)) * W + uint(iw)] = v;
            }
        return;
    }
    int w = int(gl_GlobalInvocationID.x), h = int(gl_GlobalInvocationID.y);
    if (w >= int(W) || h >= int(H)) return;
    uint xb = pc.off[1] + nc * H * W, yb = pc.off[0] + nc * P * Q;
    // windows p with p*sh - ph <= h <= p*sh - ph + kh - 1
    int p0 = max(0, (h + ph - kh + sh) / sh), p1 = min(int(P) - 1, (h + ph) / sh);
    int q0 = max(0, (w + pw - kw + sw) / sw), q1 = min(int(Q) - 1, (w + pw) / sw);
    if (h + ph - kh + 1 < 0) p0 = 0;
    if (w + pw - kw + 1 < 0) q0 = 0;
    float acc = 0.0;
    for (int p = p0; p <= p1; p++) {
        for (int q = q0; q <= q1; q++) {
            float g = b0[yb + uint(p) * Q + uint(q)];
            if (AVG != 0u) {
                acc += g / float(kh * kw);
                continue;
            }
            float best = -1.0 / 0.0;
            int bh = -1, bw = -1;
            for (int r = 0; r < kh; r++) {
                int ih = p * sh - ph + r;
                if (ih < 0 || ih >= int(H)) continue;
                for (int s = 0; s < kw; s++) {
                    int iw = q * sw - pw + s;
                    if (iw < 0 || iw >= int(W)) continue;
                    float v = b1[xb + uint(ih) * W + uint(iw)];
                    if (bh < 0 || v > best) {
                        best = v;
                        bh = ih;
                        bw = iw;
                    }
                }
            }
            if (bh == h && bw == w) acc += g;
        }
    }
    o[pc.off[2] + (nc * H + uint(h)) * W + uint(w)] = acc;
}
