// Shared by every vtrain compute shader: the push-constant block, the per-step values, helpers for
// flat indices over 2-D grids, activations (vt/act_formulas.h) and the Philox4x32-10 generator (bit-identical to vt/rng.h).
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

// Activation kinds (vt_act) and their formulas: vt/act_formulas.h, shared with the C, CUDA and
// OpenCL kernels. GLSL has no erf, so vt_erf comes first.
#define ACT_NONE 0u
#define ACT_RELU 1u
#define ACT_LEAKY 2u
#define ACT_SELU 3u
#define ACT_GELU 4u

// erf in f32: erf(x) = x + x P(x^2) below |x| = 0.921875, 1 - exp(R(|x|) - x^2) above (R near
// log(erfc(x)) + x^2, erfc being small there), 1 from |x| = 4 on (erf rounds to 1 in f32 from 3.92).
// Least-squares fits weighted towards minimax (P on relative error, R weighted by erfc), rounded to
// f32. Over every f32 input: at most 1.44 ulp with each operation rounded, 1.24 ulp where the driver
// fuses multiply-adds, given a correctly rounded exp; the driver's exp error reaches the result
// scaled by erfc(|x|) <= 0.19. NaN in gives +-1 out: GELU's factor x carries the NaN.
float vt_erf(float x) {
    float t = abs(x);
    if (t < 0.921875) {
        float s = x * x;
        float p = -6.013393286e-04;
        p = p * s + 4.998000804e-03;
        p = p * s - 2.677023225e-02;
        p = p * s + 1.128192693e-01;
        p = p * s - 3.761250675e-01;
        p = p * s + 1.283791512e-01;
        return x * p + x;
    }
    t = t < 4.0 ? t : 4.0;
    float r = -2.118426346e-05;
    r = r * t + 4.354780831e-04;
    r = r * t - 4.175902344e-03;
    r = r * t + 2.513195202e-02;
    r = r * t - 1.082991064e-01;
    r = r * t + 3.666700423e-01;
    r = r * t - 1.129523158e+00;
    r = r * t + 1.763621112e-04;
    float e = 1.0 - exp(r - t * t);
    return x < 0.0 ? -e : e;
}

#include "vt/act_formulas.h"

float vt_act(uint kind, float x, float alpha) {
    if (kind == ACT_RELU) return VT_RELU_FWD(x);
    if (kind == ACT_LEAKY) return VT_LEAKY_RELU_FWD(x, alpha);
    if (kind == ACT_SELU) return VT_SELU_FWD(x);
    if (kind == ACT_GELU) return VT_GELU_FWD(x);
    return x;
}

// dx from dy and ACT_BWD's src1: the forward output y, or for gelu the forward input x.
float vt_act_bwd(uint kind, float dy, float y, float alpha) {
    if (kind == ACT_RELU) return VT_RELU_BWD(y, dy);
    if (kind == ACT_LEAKY) return VT_LEAKY_RELU_BWD(y, dy, alpha);
    if (kind == ACT_GELU) return VT_GELU_BWD(y, dy);
    return VT_SELU_BWD(y, dy);
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
