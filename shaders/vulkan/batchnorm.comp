// BATCHNORM forward and backward, one workgroup per channel: statistics by fixed-order workgroup sums
// (reduce.glsl; two passes for the variance), then the element-wise part, all in one dispatch.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 3) const uint BWD = 0;
layout(constant_id = 4) const uint TRAINING = 1;

// forward: 0 x, 1 gamma, 2 beta, 3 running_mean (rw), 4 running_var (rw), 5 y, 6 save_mean, 7 save_invstd
// backward: 0 dy, 1 x, 2 gamma, 3 save_mean, 4 save_invstd, 5 dx, 6 dgamma, 7 dbeta
layout(std430, set = 0, binding = 0) readonly buffer B0 { float b0[]; };
layout(std430, set = 0, binding = 1) readonly buffer B1 { float b1[]; };
layout(std430, set = 0, binding = 2) readonly buffer B2 { float b2[]; };
layout(std430, set = 0, binding = 3) buffer B3 { float b3[]; };
layout(std430, set = 0, binding = 4) buffer B4 { float b4[]; };
layout(std430, set = 0, binding = 5) buffer B5 { float b5[]; };
layout(std430, set = 0, binding = 6) buffer B6 { float b6[]; };
layout(std430, set = 0, binding = 7) buffer B7 { float b7[]; };
float reduce1(float v) { return vt_wg_sum(v); }

void reduce2(inout float a, inout float b) { vt_wg_sum2(a, b); }

// Every element of channel c, spread over the invocations without a per-invocation integer division.
#define FOR_CHANNEL(idx) \
    for (uint n_ = 0u, idx; n_ < pc.u[0]; n_++) \
        for (uint hw_ = t; hw_ < HW && (idx = (n_ * C + c) * HW + hw_, true); hw_ += L)

// u: 0 N, 1 C, 2 H*W, 3 save outputs present (forward eval).  f: 0 momentum, 1 eps.
void main() {
    const uint C = pc.u[1], HW = pc.u[2], M = pc.u[0] * HW;
    const uint c = vt_flat_group(), t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    const float fm = float(M);
    if (BWD == 0u) {
        float mean, invstd;
        if (TRAINING != 0u) {
            float s = 0.0;
            FOR_CHANNEL(idx) s += b0[pc.off[0] + idx];
            mean = reduce1(s) / fm;
            float q = 0.0;
            FOR_CHANNEL(idx) {
                float d = b0[pc.off[0] + idx] - mean;
                q += d * d;
            }
            float var = reduce1(q) / fm;
            invstd = 1.0 / sqrt(var + pc.f[1]);
            if (t == 0u) {
                float mom = pc.f[0];
                b3[pc.off[3] + c] = (1.0 - mom) * b3[pc.off[3] + c] + mom * mean;
                b4[pc.off[4] + c] = (1.0 - mom) * b4[pc.off[4] + c] + mom * var * fm / (fm - 1.0);
                b6[pc.off[6] + c] = mean;
                b7[pc.off[7] + c] = invstd;
            }
        } else {
            mean = b3[pc.off[3] + c];
            invstd = 1.0 / sqrt(b4[pc.off[4] + c] + pc.f[1]);
            if (t == 0u && pc.u[3] != 0u) {
                b6[pc.off[6] + c] = mean;
                b7[pc.off[7] + c] = invstd;
            }
        }
        float g = b1[pc.off[1] + c], be = b2[pc.off[2] + c];
        FOR_CHANNEL(idx) b5[pc.off[5] + idx] = (b0[pc.off[0] + idx] - mean) * invstd * g + be;
    } else {
        float mean = b3[pc.off[3] + c], invstd = b4[pc.off[4] + c], g = b2[pc.off[2] + c];
        float sdy = 0.0, sdx = 0.0;
        FOR_CHANNEL(idx) {
            float dy = b0[pc.off[0] + idx];
            sdy += dy;
            sdx += dy * (b1[pc.off[1] + idx] - mean) * invstd;
        }
        reduce2(sdy, sdx);   // sdy = dbeta, sdx = dgamma
        if (t == 0u) {
            b6[pc.off[6] + c] = sdx;
            b7[pc.off[7] + c] = sdy;
        }
        FOR_CHANNEL(idx) {
            float dy = b0[pc.off[0] + idx];
            float r;
            if (TRAINING != 0u) {
                float xhat = (b1[pc.off[1] + idx] - mean) * invstd;
                r = g * invstd / fm * (fm * dy - sdy - xhat * sdx);
            } else {
                r = dy * g * invstd;
            }
            b5[pc.off[5] + idx] = r;
        }
    }
}
