// Second pass of a split-K GEMM: sums the slices in a fixed order (deterministic, no atomics) and
// applies the epilogue alpha, beta, bias and activation. Output layout C[m*N + n].
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint ACT = 0;
layout(constant_id = 4) const uint HAS_BIAS = 0;
layout(constant_id = 5) const uint HAS_BETA = 0;

layout(std430, set = 0, binding = 0) readonly buffer Parts { float part[]; };
layout(std430, set = 0, binding = 2) readonly buffer BufBias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer BufC { float c[]; };

// u: 0 M, 1 N, 2 slices.  f: 0 alpha, 1 beta, 2 act alpha.
void main() {
    uint idx = vt_flat_id();
    uint MN = pc.u[0] * pc.u[1];
    if (idx >= MN) return;
    float s = 0.0;
    for (uint z = 0; z < pc.u[2]; z++) s += part[pc.off[0] + z * MN + idx];
    float v = pc.f[0] * s;
    uint ci = pc.off[3] + idx;
    if (HAS_BETA != 0) v += pc.f[1] * c[ci];
    if (HAS_BIAS != 0) v += bias[pc.off[2] + idx % pc.u[1]];
    c[ci] = vt_act(ACT, v, pc.f[2]);
}
