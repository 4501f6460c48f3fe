// Shared by every vtrain compute shader: the push-constant block, the per-step values, helpers for
// flat indices over 2-D grids, activations and the Philox4x32-10 generator (bit-identical to vt/rng.h).
#ifndef VT_COMMON_GLSL
#define VT_COMMON_GLSL

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

// off[i]: element offset of binding i inside its descriptor range (tensors need only 4-byte alignment,
// descriptors need minStorageBufferOffsetAlignment). u/f: op parameters, documented per shader.
layout(push_constant) uniform PushConstants {
    uint off[8];
    uint u[16];
    float f[8];
} pc;

// Per-step values written by the host before every submit, so recorded command buffers replay unchanged.
layout(std430, set = 0, binding = 8) readonly buffer StepCtx {
    uint step_lo;
    uint step_hi;
    uint seed;
    float lr;
    uint batch_start_lo;
    uint batch_start_hi;
    uint pad0;
    uint pad1;
    // Adam's per-step scalars (ops.h), computed by the host in double: one per Adam node of the
    // recording (push constant u[3] picks it): x step size S, y sqrt(bias correction 2) Q, z decay D.
    vec4 adam[];
} ctx;

#define ACT_NONE 0u
#define ACT_RELU 1u
#define ACT_LEAKY 2u
#define ACT_SELU 3u
#define SELU_SCALE 1.0507009873554804934193349852946
#define SELU_ALPHA 1.6732632423543772848170429916717

float vt_act(uint kind, float x, float alpha) {
    if (kind == ACT_RELU) return max(x, 0.0);
    if (kind == ACT_LEAKY) return x > 0.0 ? x : alpha * x;
    if (kind == ACT_SELU) return float(SELU_SCALE) * (x > 0.0 ? x : float(SELU_ALPHA) * (exp(x) - 1.0));
    return x;
}

// Flat invocation index for 1-D work laid out on a 2-D grid (the x count is capped by the host).
uint vt_flat_id() {
    return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
}
uint vt_flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

uvec4 vt_philox(uint k0, uint k1, uvec4 c) {
    for (int r = 0; r < 10; r++) {
        uint hi0, lo0, hi1, lo1;
        umulExtended(0xD2511F53u, c.x, hi0, lo0);
        umulExtended(0xCD9E8D57u, c.z, hi1, lo1);
        c = uvec4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

float vt_unit(uint w) { return float(w >> 8) * (1.0 / 16777216.0); }

#endif
