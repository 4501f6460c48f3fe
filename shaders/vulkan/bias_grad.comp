// BIAS_GRAD db[c] = sum of dy over every dim but 1, deterministic (fixed order, no atomics).
// [N,C,H,W]: one workgroup per channel, summed by vt_wg_sum (reduce.glsl: subgroups or a shared-memory
// tree); [N,C] (ROWS = 1): one invocation per channel summing its column in order.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 3) const uint ROWS = 0;

layout(std430, set = 0, binding = 0) readonly buffer Dy { float dy[]; };
layout(std430, set = 0, binding = 2) buffer Db { float db[]; };

// u: 0 N, 1 C, 2 H*W. Workgroup size is a power of two <= 256.
void main() {
    const uint N = pc.u[0], C = pc.u[1], HW = pc.u[2];
    if (ROWS != 0u) {
        uint c = vt_flat_id();
        if (c >= C) return;
        float s = 0.0;
        for (uint n = 0u; n < N; n++) s += dy[pc.off[0] + n * C + c];
        db[pc.off[2] + c] = s;
        return;
    }
    const uint c = vt_flat_group(), t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    float s = 0.0;
    // nested loops instead of i / HW: a per-invocation integer division does not vectorise on CPUs
    for (uint n = 0u; n < N; n++) {
        uint row = pc.off[0] + (n * C + c) * HW;
        for (uint hw = t; hw < HW; hw += L) s += dy[row + hw];
    }
    s = vt_wg_sum(s);
    if (t == 0u) db[pc.off[2] + c] = s;
}
