// CONFUSION: counts[t*(K+1) + q] += 1 for every (pred q, truth t) pair, both clamped to K when outside
// [0,K). Integer atomics: exact in any order. One invocation per pair.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer Pred { int pred[]; };
layout(std430, set = 0, binding = 1) readonly buffer Truth { int truth[]; };
layout(std430, set = 0, binding = 2) buffer Counts { int counts[]; };

// u: 0 M (pairs), 1 K
void main() {
    uint i = vt_flat_id();
    if (i >= pc.u[0]) return;
    const int K = int(pc.u[1]);
    int t = truth[pc.off[1] + i], q = pred[pc.off[0] + i];
    t = t >= 0 && t < K ? t : K;
    q = q >= 0 && q < K ? q : K;
    atomicAdd(counts[pc.off[2] + uint(t * (K + 1) + q)], 1);
}
