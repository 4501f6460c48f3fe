// NONFINITE: flag = 1 if any element of x has an all-ones exponent (NaN or +-Inf). x is read as bits,
// so no float rule of the compiler can fold the test away. 16 elements per invocation; invocations that
// find one all store the same 1 (a benign race); the flag is never cleared here.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { uint x[]; };
layout(std430, set = 0, binding = 2) buffer Flag { int flag[]; };

// u: 0 element count
void main() {
    uint i0 = vt_flat_id() * 16u;
    if (i0 >= pc.u[0]) return;
    uint i1 = min(i0 + 16u, pc.u[0]);
    bool found = false;
    for (uint i = i0; i < i1; i++) found = found || (x[pc.off[0] + i] & 0x7f800000u) == 0x7f800000u;
    if (found) flag[pc.off[2]] = 1;
}
