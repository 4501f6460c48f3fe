// UPSAMPLE nearest / bilinear (PyTorch align_corners=False) and its adjoint. The backward gathers:
// each dx element visits the few output rows / columns whose taps can reach it and adds their weights.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint BWD = 0;
layout(constant_id = 4) const uint BILINEAR = 0;

// forward: 0 x [NC,H,W], 2 y [NC,Ho,Wo].  backward: 0 dy [NC,Ho,Wo], 2 dx [NC,H,W].
layout(std430, set = 0, binding = 0) readonly buffer B0 { float b0[]; };
layout(std430, set = 0, binding = 2) buffer Out { float o[]; };

// One axis: the taps (i0, i1) and weights (l0, l1) of output index d for input size n, output size no.
void taps(uint d, uint n, uint no, out uint i0, out uint i1, out float l0, out float l1) {
    float scale = float(n) / float(no);
    if (BILINEAR == 0u) {
        i0 = min(uint(floor(float(d) * scale)), n - 1u);
        i1 = i0;
        l0 = 1.0;
        l1 = 0.0;
        return;
    }
    float s = max((float(d) + 0.5) * scale - 0.5, 0.0);
    i0 = min(uint(floor(s)), n - 1u);
    i1 = min(i0 + 1u, n - 1u);
    l1 = s - float(i0);
    l0 = 1.0 - l1;
}

// Weight with which output index d reads input index i along one axis.
float weight(uint d, uint i, uint n, uint no) {
    uint i0, i1;
    float l0, l1;
    taps(d, n, no, i0, i1, l0, l1);
    return (i0 == i ? l0 : 0.0) + (i1 == i ? l1 : 0.0);
}

// u: 0 N*C, 1 H, 2 W, 3 Ho, 4 Wo
void main() {
    const uint NC = pc.u[0], H = pc.u[1], W = pc.u[2], Ho = pc.u[3], Wo = pc.u[4];
    const uint id = vt_flat_id();
    if (BWD == 0u) {
        if (id >= NC * Ho * Wo) return;
        uint nc = id / (Ho * Wo), r = id - nc * Ho * Wo, dy = r / Wo, dx = r - dy * Wo;
        uint y0, y1, x0, x1;
        float ly0, ly1, lx0, lx1;
        taps(dy, H, Ho, y0, y1, ly0, ly1);
        taps(dx, W, Wo, x0, x1, lx0, lx1);
        uint b = pc.off[0] + nc * H * W;
        float v;
        if (BILINEAR == 0u) v = b0[b + y0 * W + x0];
        else
            v = ly0 * (lx0 * b0[b + y0 * W + x0] + lx1 * b0[b + y0 * W + x1]) +
                ly1 * (lx0 * b0[b + y1 * W + x0] + lx1 * b0[b + y1 * W + x1]);
        o[pc.off[2] + id] = v;
        return;
    }
    if (id >= NC * H * W) return;
    uint nc = id / (H * W), r = id - nc * H * W, h = r / W, w = r - h * W;
    // candidate output ranges: the mapping is monotonic, so a margin of two around the inverse suffices
    float sy = float(H) / float(Ho), sx = float(W) / float(Wo);
    int a0 = int(floor((float(h) - 1.0) / sy)) - 2, a1 = int(ceil((float(h) + 2.0) / sy)) + 2;
    int c0 = int(floor((float(w) - 1.0) / sx)) - 2, c1 = int(ceil((float(w) + 2.0) / sx)) + 2;
    if (h == 0u) a0 = 0;
    if (w == 0u) c0 = 0;
    if (h + 1u >= H) a1 = int(Ho) - 1;
    if (w + 1u >= W) c1 = int(Wo) - 1;
    a0 = max(a0, 0); c0 = max(c0, 0);
    a1 = min(a1, int(Ho) - 1); c1 = min(c1, int(Wo) - 1);
    uint b = pc.off[0] + nc * Ho * Wo;
    float acc = 0.0;
    for (int oy = a0; oy <= a1; oy++) {
        float wy = weight(uint(oy), h, H, Ho);
        if (wy == 0.0) continue;
        for (int ox = c0; ox <= c1; ox++) {
            float wx = weight(uint(ox), w, W, Wo);
            if (wx == 0.0) continue;
            acc += b0[b + uint(oy) * Wo + uint(ox)] * wy * wx;
        }
    }
    o[pc.off[2] + id] = acc;
}
