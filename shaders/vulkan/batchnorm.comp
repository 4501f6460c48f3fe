// BATCHNORM forward and backward, one workgroup per channel: statistics by fixed-order workgroup sums
// (reduce.glsl; two passes for the variance), then the element-wise part, all in one dispatch.
// The synchronised batch norm's four ops are the same code cut at the sums (SPLIT): BN_STATS and
// BN_BWD_STATS stop after them and write them out, BN_APPLY and BN_BWD_APPLY read them back (combined
// over the ranks by the host in between), so one rank gives BATCHNORM's numbers bit for bit.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "reduce.glsl"

layout(constant_id = 3) const uint BWD = 0;
layout(constant_id = 4) const uint TRAINING = 1;
layout(constant_id = 5) const uint SPLIT = 0; // 0 whole op, 1 the sums only (*_STATS), 2 from given sums (*_APPLY)

// forward: 0 x, 1 gamma, 2 beta, 3 running_mean (rw), 4 running_var (rw), 5 y, 6 save_mean, 7 save_invstd
//   BN_STATS: 0 x, 6 stats [2,C] (written). BN_APPLY: 0-4 as BATCHNORM, 5 y, 6 stats [2,C] (read).
// backward: 0 dy, 1 x, 2 gamma, 3 save_mean, 4 save_invstd, 5 dx, 6 dgamma, 7 dbeta
//   BN_BWD_STATS: 0 dy, 1 x, 3 stats, 5 sums [2,C] (written), 6 dgamma, 7 dbeta.
//   BN_BWD_APPLY: 0 dy, 1 x, 2 gamma, 3 stats, 4 sums [2,C] (read), 5 dx.
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

// u: 0 N, 1 C, 2 H*W, 3 optional outputs present (forward eval: save outputs; BN_APPLY: running
// statistics; BN_BWD_STATS: bit 0 dgamma, bit 1 dbeta).  f: 0 momentum, 1 eps, 2 M over all ranks (*_APPLY).
void main() {
    const uint C = pc.u[1], HW = pc.u[2], M = pc.u[0] * HW;
    const uint c = vt_flat_group(), t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    // this rank's element count for the sums, the whole batch's for the formulas after them
    const float fm = SPLIT == 2u ? pc.f[2] : float(M);
    if (BWD == 0u) {
        float mean, invstd;
        if (SPLIT == 2u) {
            mean = b6[pc.off[6] + c];
            float var = b6[pc.off[6] + C + c];
            invstd = 1.0 / sqrt(var + pc.f[1]);
            if (t == 0u && pc.u[3] != 0u) {
                float mom = pc.f[0];
                b3[pc.off[3] + c] = (1.0 - mom) * b3[pc.off[3] + c] + mom * mean;
                b4[pc.off[4] + c] = (1.0 - mom) * b4[pc.off[4] + c] + mom * var * fm / (fm - 1.0);
            }
        } else if (TRAINING != 0u) {
            float s = 0.0;
            FOR_CHANNEL(idx) s += b0[pc.off[0] + idx];
            mean = reduce1(s) / fm;
            float q = 0.0;
            FOR_CHANNEL(idx) {
                float d = b0[pc.off[0] + idx] - mean;
                q += d * d;
            }
            float var = reduce1(q) / fm;
            if (SPLIT == 1u) {
                if (t == 0u) {
                    b6[pc.off[6] + c] = mean;
                    b6[pc.off[6] + C + c] = var;
                }
                return;
            }
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
        // the split ops read the variance and invert it as the forward did; BATCHNORM_BWD reads invstd
        float mean = b3[pc.off[3] + c];
        float invstd = SPLIT != 0u ? 1.0 / sqrt(b3[pc.off[3] + C + c] + pc.f[1]) : b4[pc.off[4] + c];
        float sdy, sdx;
        if (SPLIT == 2u) {
            sdx = b4[pc.off[4] + c];
            sdy = b4[pc.off[4] + C + c];
        } else {
            sdy = 0.0;
            sdx = 0.0;
            FOR_CHANNEL(idx) {
                float dy = b0[pc.off[0] + idx];
                sdy += dy;
                sdx += dy * (b1[pc.off[1] + idx] - mean) * invstd;
            }
            reduce2(sdy, sdx);   // sdy = dbeta, sdx = dgamma
            if (SPLIT == 1u) {
                if (t == 0u) {
                    b5[pc.off[5] + c] = sdx;
                    b5[pc.off[5] + C + c] = sdy;
                    if ((pc.u[3] & 1u) != 0u) b6[pc.off[6] + c] = sdx;
                    if ((pc.u[3] & 2u) != 0u) b7[pc.off[7] + c] = sdy;
                }
                return;
            }
            if (t == 0u) {
                b6[pc.off[6] + c] = sdx;
                b7[pc.off[7] + c] = sdy;
            }
        }
        float g = b2[pc.off[2] + c];
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
