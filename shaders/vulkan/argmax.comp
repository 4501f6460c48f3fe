// ARGMAX: index of the first maximum of each row, one invocation per row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) buffer Out { int o[]; };

// u: 0 N, 1 K
void main() {
    uint r = vt_flat_id();
    if (r >= pc.u[0]) return;
    uint row = pc.off[0] + r * pc.u[1];
    float best = x[row];
    int arg = 0;
    for (uint k = 1u; k < pc.u[1]; k++)
        if (x[row + k] > best) {
            best = x[row + k];
            arg = int(k);
        }
    o[pc.off[2] + r] = arg;
}
