// BIAS_GRAD db[c] = sum of dy over every dim but 1; one workgroup per channel, a fixed-order tree
// reduction in shared memory (deterministic, no atomics).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer Dy { float dy[]; };
layout(std430, set = 0, binding = 2) buffer Db { float db[]; };
shared float part[256];

// u: 0 N, 1 C, 2 H*W. Workgroup size is a power of two <= 256.
void main() {
    const uint C = pc.u[1], HW = pc.u[2], M = pc.u[0] * HW;
    const uint c = vt_flat_group(), t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    float s = 0.0;
    for (uint i = t; i < M; i += L) {
        uint n = i / HW, hw = i - n * HW;
        s += dy[pc.off[0] + (n * C + c) * HW + hw];
    }
    part[t] = s;
    barrier();
    for (uint w = L / 2u; w > 0u; w >>= 1) {
        if (t < w) part[t] += part[t + w];
        barrier();
    }
    if (t == 0u) db[pc.off[2] + c] = part[0];
}
