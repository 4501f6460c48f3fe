// ARGMAX over axis 1 of [N,K] or [N,K,H,W]: index of the first maximum of each row (row r = n*S + s,
// classes at stride S = H*W), one invocation per row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) buffer Out { int o[]; };

// u: 0 rows (N*S), 1 K, 2 S
void main() {
    uint r = vt_flat_id();
    if (r >= pc.u[0]) return;
    const uint K = pc.u[1], S = pc.u[2];
    uint n = r / S;
    uint row = pc.off[0] + n * K * S + (r - n * S);
    float best = x[row];
    int arg = 0;
    for (uint k = 1u; k < K; k++)
        if (x[row + k * S] > best) {
            best = x[row + k * S];
            arg = int(k);
        }
    o[pc.off[2] + r] = arg;
}
