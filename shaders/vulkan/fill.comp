// FILL for any dtype: one invocation per 32-bit word of the byte range; edge words of u8 tensors keep
// the bytes outside the range.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(std430, set = 0, binding = 2) buffer Dst { uint d[]; };

// off[2] is in bytes here. u: 0 byte count, 1 fill pattern (the value's bytes, replicated for u8).
void main() {
    uint first = pc.off[2], last = first + pc.u[0];   // [first, last) in bytes
    uint w = first / 4u + vt_flat_id();
    if (w * 4u >= last) return;
    uint lo = max(first, w * 4u), hi = min(last, w * 4u + 4u);
    uint mask = 0u;
    for (uint b = lo; b < hi; b++) mask |= 0xffu << ((b - w * 4u) * 8u);
    d[w] = mask == 0xffffffffu ? pc.u[1] : (d[w] & ~mask) | (pc.u[1] & mask);
}
