// Element-wise ops, one element (or one vec4) per invocation: activations and their gradients, ADD,
// dropout (Philox mask, word e%4 of the call at counter e/4) and the SGD / Adam parameter updates.
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

// VEC4 (a -D define): operands bound as vec4 arrays, for sizes and offsets that are multiples of four;
// CPU drivers turn one vec4 access per invocation into one vector load instead of four scalar ones.
#ifdef VEC4
#define T vec4
#define ZERO vec4(0.0)
#else
#define T float
#define ZERO 0.0
#endif
// TEXEL (a -D define): the two read-only sources through uniform texel buffers (bindings 9, 10;
// rgba32f with VEC4, r32f without), offsets in their element units; the read-write operands stay
// storage buffers.
#ifdef TEXEL
layout(set = 0, binding = 9) uniform samplerBuffer texS0;
layout(set = 0, binding = 10) uniform samplerBuffer texS1;
#ifdef VEC4
#define S0(i) texelFetch(texS0, int(i))
#define S1(i) texelFetch(texS1, int(i))
#define SRC_OFF(o) (o)
#else
#define S0(i) texelFetch(texS0, int(i)).x
#define S1(i) texelFetch(texS1, int(i)).x
#define SRC_OFF(o) (o)
#endif
#else
layout(std430, set = 0, binding = 0) readonly buffer Src0 { T s0[]; };
layout(std430, set = 0, binding = 1) readonly buffer Src1 { T s1[]; };
#define S0(i) s0[i]
#define S1(i) s1[i]
#ifdef VEC4
#define SRC_OFF(o) ((o) / 4u)
#else
#define SRC_OFF(o) (o)
#endif
#endif
// The read-write operands: with TEXEL, storage texel buffers (bindings 11-13, imageLoad/imageStore,
// offsets in texels); otherwise storage buffers.
#ifdef TEXEL
#ifdef VEC4
layout(set = 0, binding = 11, rgba32f) uniform imageBuffer img0;
layout(set = 0, binding = 12, rgba32f) uniform imageBuffer img1;
layout(set = 0, binding = 13, rgba32f) uniform imageBuffer img2;
#define LD(img, i) imageLoad(img, int(i))
#define ST(img, i, v) imageStore(img, int(i), (v))
#else
layout(set = 0, binding = 11, r32f) uniform imageBuffer img0;
layout(set = 0, binding = 12, r32f) uniform imageBuffer img1;
layout(set = 0, binding = 13, r32f) uniform imageBuffer img2;
#define LD(img, i) imageLoad(img, int(i)).x
#define ST(img, i, v) imageStore(img, int(i), vec4((v), 0.0, 0.0, 0.0))
#endif
#define LD0(i) LD(img0, i)
#define LD1(i) LD(img1, i)
#define LD2(i) LD(img2, i)
#define ST0(i, v) ST(img0, i, v)
#define ST1(i, v) ST(img1, i, v)
#define ST2(i, v) ST(img2, i, v)
#define DST_OFF(o) (o)
#else
layout(std430, set = 0, binding = 2) buffer Dst0 { T d0[]; };
layout(std430, set = 0, binding = 3) buffer Dst1 { T d1[]; };
layout(std430, set = 0, binding = 4) buffer Dst2 { T d2[]; };
#define LD0(i) d0[i]
#define LD1(i) d1[i]
#define LD2(i) d2[i]
#define ST0(i, v) d0[i] = (v)
#define ST1(i, v) d1[i] = (v)
#define ST2(i, v) d2[i] = (v)
#ifdef VEC4
#define DST_OFF(o) ((o) / 4u)
#else
#define DST_OFF(o) (o)
#endif
#endif

// The backward per component: the shared formulas are scalar (the vec4 form applies them lane by
// lane, the same operations as the scalar shader).
T act_bwd(T dy, T y) {
#ifdef VEC4
    return vec4(vt_act_bwd(KIND, dy.x, y.x, pc.f[0]), vt_act_bwd(KIND, dy.y, y.y, pc.f[0]),
                vt_act_bwd(KIND, dy.z, y.z, pc.f[0]), vt_act_bwd(KIND, dy.w, y.w, pc.f[0]));
#else
    return vt_act_bwd(KIND, dy, y, pc.f[0]);
#endif
}

// a * b + c rounded once, whatever the driver does with fma() (GLSL and Vulkan let it round twice, as
// lavapipe does): Dekker's exact product, two-sum, the low parts added rounding to odd, then one
// rounding to nearest (Boldo and Melquiond's emulated FMA; exact for f32 without underflow).
float fma1(float a, float b, float c) {
    precise float sa = 4097.0 * a, ah = sa - (sa - a), al = a - ah;
    precise float sb = 4097.0 * b, bh = sb - (sb - b), bl = b - bh;
    precise float ph = a * b;
    precise float pl = ((ah * bh - ph) + ah * bl + al * bh) + al * bl;
    precise float th = c + ph, tb = th - c, tl = (c - (th - tb)) + (ph - tb);
    precise float v = tl + pl, vb = v - tl, ve = (tl - (v - vb)) + (pl - vb);
    int iv = floatBitsToInt(v);
    if (ve != 0.0 && (iv & 1) == 0) iv += (v > 0.0) == (ve > 0.0) ? 1 : -1;
    precise float z = th + intBitsToFloat(iv);
    return z;
}
#ifdef VEC4
vec4 fma_exact(vec4 a, vec4 b, vec4 c) {
    return vec4(fma1(a.x, b.x, c.x), fma1(a.y, b.y, c.y), fma1(a.z, b.z, c.z), fma1(a.w, b.w, c.w));
}
#else
float fma_exact(float a, float b, float c) { return fma1(a, b, c); }
#endif

// u: 0 n, 1 dropout salt, 2 flags (1 momentum, 2 nesterov, 4 decoupled), 3 Adam: its slot in ctx.adam
// f: act/dropout: 0 alpha or p.  SGD: 0 lr_mult, 1 momentum, 2 weight decay.
//    Adam (f32 of the double values of ops.h): 2 B2, 3 E, 4 WD, 5 C1, 6 C2.
T act(T x) {
#ifdef VEC4
    return vec4(vt_act(KIND, x.x, pc.f[0]), vt_act(KIND, x.y, pc.f[0]), vt_act(KIND, x.z, pc.f[0]), vt_act(KIND, x.w, pc.f[0]));
#else
    return vt_act(KIND, x, pc.f[0]);
#endif
}

void main() {
    const uint n = pc.u[0];
#ifdef VEC4
    // one vec4 per invocation; n and the offsets are in vec4 units here
    const uint i = vt_flat_id();
    if (i >= n) return;
    const uint a = SRC_OFF(pc.off[0]) + i, b = SRC_OFF(pc.off[1]) + i, o = DST_OFF(pc.off[2]) + i;
    const uint m1 = DST_OFF(pc.off[3]) + i, m2 = DST_OFF(pc.off[4]) + i;
    const uint first = i * 4u;
#else
    const uint i = vt_flat_id();
    if (i >= n) return;
    const uint a = SRC_OFF(pc.off[0]) + i, b = SRC_OFF(pc.off[1]) + i, o = DST_OFF(pc.off[2]) + i;
    const uint m1 = DST_OFF(pc.off[3]) + i, m2 = DST_OFF(pc.off[4]) + i;
    const uint first = i;
#endif
    float lr = ctx.lr * pc.f[0];
    if (OP == OP_ACT) {
        ST0(o, act(S0(a)));
    } else if (OP == OP_ACT_BWD) {
        // src1: the forward output y, the forward input x for gelu
        ST0(o, act_bwd(S0(a), S1(b)));
    } else if (OP == OP_ADD) {
        ST0(o, S0(a) + S1(b));
    } else if (OP == OP_DROPOUT || OP == OP_DROPOUT_BWD) {
        // element e uses word e % 4 of the generator at counter e / 4
        uvec4 rnd = vt_philox(ctx.seed, pc.u[1], uvec4(first / 4u, 0u, ctx.step_lo, ctx.step_hi));
#ifdef VEC4
        bvec4 keep = greaterThanEqual(vec4(rnd >> 8u) * (1.0 / 16777216.0), vec4(pc.f[0]));
        ST0(o, mix(vec4(0.0), S0(a) / (1.0 - pc.f[0]), keep));
#else
        bool keep = vt_unit(rnd[first % 4u]) >= pc.f[0];
        ST0(o, keep ? S0(a) / (1.0 - pc.f[0]) : 0.0);
#endif
    } else if (OP == OP_SGD) {
        T p = LD0(o);
        T g = S0(a) + pc.f[2] * p;
        if ((pc.u[2] & 1u) != 0u) {
            T buf = pc.f[1] * LD1(m1) + g;
            ST1(m1, buf);
            g = (pc.u[2] & 2u) != 0u ? g + pc.f[1] * buf : buf;
        }
        ST0(o, p - lr * g);
    } else if (OP == OP_ADAM) {
        // ops.h, operation for operation, fma_exact where torch's CPU kernels fuse and `precise`
        // against any other contraction; C1 < 0.5 is uniform, so is the branch of torch's lerp
        vec4 k = ctx.adam[pc.u[3]];
        precise T w = LD0(o), g = S0(a);
        precise T m = LD1(m1);
        if ((pc.u[2] & 4u) != 0u) w *= k.z;
        else g = fma_exact(T(pc.f[4]), w, g);
        precise T d = g - m;
        precise T mn = pc.f[5] < 0.5 ? fma_exact(T(pc.f[5]), d, m) : fma_exact(T(-(1.0 - pc.f[5])), d, g);
        precise T v = fma_exact(pc.f[6] * g, g, LD2(m2) * pc.f[2]);
        ST1(m1, mn);
        ST2(m2, v);
        precise T up = (k.x * mn) / (sqrt(v) / k.y + pc.f[3]);
        ST0(o, w - up);
    }
}
