// Element-wise ops, four consecutive elements per invocation: activations and their gradients, ADD,
// dropout (Philox mask, one generator call per four elements) and the SGD / Adam parameter updates.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define OP_ACT 0u
#define OP_ACT_BWD 1u
#define OP_ADD 2u
#define OP_DROPOUT 3u
#define OP_DROPOUT_BWD 4u
#define OP_SGD 5u
#define OP_ADAM 6u
layout(constant_id = 3) const uint OP = 0;
layout(constant_id = 4) const uint KIND = 0;   // activation kind

layout(std430, set = 0, binding = 0) readonly buffer Src0 { float s0[]; };
layout(std430, set = 0, binding = 1) readonly buffer Src1 { float s1[]; };
layout(std430, set = 0, binding = 2) buffer Dst0 { float d0[]; };
layout(std430, set = 0, binding = 3) buffer Dst1 { float d1[]; };
layout(std430, set = 0, binding = 4) buffer Dst2 { float d2[]; };

// u: 0 n, 1 dropout salt, 2 flags (1 momentum, 2 nesterov, 4 decoupled), 3 Adam step_offset (low word)
// f: act/dropout: 0 alpha or p.  SGD: 0 lr_mult, 1 momentum, 2 weight decay.
//    Adam: 0 lr_mult, 1 beta1, 2 beta2, 3 eps, 4 weight decay.
void main() {
    const uint n = pc.u[0];
    const uint base = vt_flat_id() * 4u;
    if (base >= n) return;
    uvec4 rnd = uvec4(0);
    if (OP == OP_DROPOUT || OP == OP_DROPOUT_BWD)
        rnd = vt_philox(ctx.seed, pc.u[1], uvec4(base / 4u, 0u, ctx.step_lo, ctx.step_hi));
    float lr = ctx.lr * pc.f[0];
    float bc1 = 1.0, bc2 = 1.0;
    if (OP == OP_ADAM) {
        float t = float(ctx.step_lo - pc.u[3] + 1u);
        bc1 = 1.0 - pow(pc.f[1], t);
        bc2 = 1.0 - pow(pc.f[2], t);
    }
    for (uint e = 0; e < 4u; e++) {
        uint i = base + e;
        if (i >= n) break;
        uint a = pc.off[0] + i, b = pc.off[1] + i, o = pc.off[2] + i;
        if (OP == OP_ACT) {
            d0[o] = vt_act(KIND, s0[a], pc.f[0]);
        } else if (OP == OP_ACT_BWD) {
            float dy = s0[a], y = s1[b], r;
            if (KIND == ACT_RELU) r = y > 0.0 ? dy : 0.0;
            else if (KIND == ACT_LEAKY) r = y > 0.0 ? dy : pc.f[0] * dy;
            else r = y > 0.0 ? float(SELU_SCALE) * dy : (y + float(SELU_SCALE) * float(SELU_ALPHA)) * dy;
            d0[o] = r;
        } else if (OP == OP_ADD) {
            d0[o] = s0[a] + s1[b];
        } else if (OP == OP_DROPOUT || OP == OP_DROPOUT_BWD) {
            bool keep = vt_unit(rnd[e]) >= pc.f[0];
            d0[o] = keep ? s0[a] / (1.0 - pc.f[0]) : 0.0;
        } else if (OP == OP_SGD) {
            float p = d0[o];
            float g = s0[a] + pc.f[2] * p;
            if ((pc.u[2] & 1u) != 0u) {
                uint m = pc.off[3] + i;
                float buf = pc.f[1] * d1[m] + g;
                d1[m] = buf;
                g = (pc.u[2] & 2u) != 0u ? g + pc.f[1] * buf : buf;
            }
            d0[o] = p - lr * g;
        } else if (OP == OP_ADAM) {
            float p = d0[o], g = s0[a];
            if ((pc.u[2] & 4u) != 0u) p *= 1.0 - lr * pc.f[4];
            else g += pc.f[4] * p;
            uint mi = pc.off[3] + i, vi = pc.off[4] + i;
            float m = pc.f[1] * d1[mi] + (1.0 - pc.f[1]) * g;
            float v = pc.f[2] * d2[vi] + (1.0 - pc.f[2]) * g * g;
            d1[mi] = m;
            d2[vi] = v;
            d0[o] = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + pc.f[3]);
        }
    }
}
