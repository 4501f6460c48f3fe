// GEMM fast path for 16-byte aligned operands whose dims are multiples of 4: each invocation owns an
// 8 x 8 block of C kept in vec4 registers and reads A and B as vec4, four k at a time; no shared memory
// and no barriers (CPU drivers such as lavapipe run these loops best). A and B are read through uniform
// texel buffers (rgba32f): lavapipe fetches a texel for all lanes with vector loads, where it reads a
// storage buffer lane by lane.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

layout(constant_id = 3) const uint TRANS_A = 0;
layout(constant_id = 4) const uint TRANS_B = 0;
layout(constant_id = 5) const uint ACT = 0;
layout(constant_id = 6) const uint HAS_BIAS = 0;
layout(constant_id = 7) const uint HAS_BETA = 0;
// SPLIT = 1: workgroup z is a slice of K; raw partial sums go to C at slice*M*N (gemm_reduce finishes).
layout(constant_id = 8) const uint SPLIT = 0;

// TEXEL (a -D define): A and B through rgba32f uniform texel buffers, offsets in texels; otherwise
// storage buffers of vec4, offsets in floats.
#ifdef TEXEL
layout(set = 0, binding = 9) uniform samplerBuffer texA;
layout(set = 0, binding = 10) uniform samplerBuffer texB;
#define a_at(i) texelFetch(texA, int(i))
#define b_at(i) texelFetch(texB, int(i))
#define VEC4_OFF(o) (o)
#else
layout(std430, set = 0, binding = 0) readonly buffer BufA { vec4 a[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB { vec4 b[]; };
#define a_at(i) a[i]
#define b_at(i) b[i]
#define VEC4_OFF(o) ((o) / 4u)
#endif
layout(std430, set = 0, binding = 2) readonly buffer BufBias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer BufC { float c[]; };
// C4 = 1: C's offset is a multiple of 4 floats, so the epilogue reads and writes C as vec4 (one store
// per four outputs instead of four; same values).
layout(constant_id = 9) const uint C4 = 0;
layout(std430, set = 0, binding = 3) buffer BufC4 { vec4 c4[]; };

// u: 0 M, 1 N, 2 K, 3 K per slice (a multiple of 4).  f: 0 alpha, 1 beta, 2 act alpha.
// off[0], off[1]: the operands' first elements (texels with TEXEL, else floats; 16-byte aligned).
void main() {
    const uint M = pc.u[0], N = pc.u[1], K = pc.u[2];
    const uint M4 = M / 4u, N4 = N / 4u, K4 = K / 4u;
    const uint m0 = (gl_WorkGroupID.y * gl_WorkGroupSize.y + gl_LocalInvocationID.y) * 8u;
    const uint n0 = (gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x) * 8u;
    if (m0 >= M || n0 >= N) return;
    const uint oa = VEC4_OFF(pc.off[0]), ob = VEC4_OFF(pc.off[1]);
    const uint kb = gl_WorkGroupID.z * pc.u[3], ke = min(K, kb + pc.u[3]);

    // vec4 indices of the block's rows (A) and columns (B), clamped into the matrices
    uint ra[8], cb[8];
    [[unroll]] for (uint i = 0; i < 8u; i++) {
        uint m = min(m0 + i, M - 1u), n = min(n0 + i, N - 1u);
        ra[i] = TRANS_A != 0u ? 0u : oa + m * K4;
        cb[i] = TRANS_B != 0u ? ob + n * K4 : 0u;
    }
    const uint ma0 = min(m0 / 4u, M4 - 1u), ma1 = min(m0 / 4u + 1u, M4 - 1u);
    const uint nb0 = min(n0 / 4u, N4 - 1u), nb1 = min(n0 / 4u + 1u, N4 - 1u);

    vec4 acc[8][2];
    [[unroll]] for (uint i = 0; i < 8u; i++) {
        acc[i][0] = vec4(0.0);
        acc[i][1] = vec4(0.0);
    }
    for (uint k = kb; k < ke; k += 4u) {
        // A block as av[i] = A[m0+i][k..k+3]
        vec4 av[8];
        if (TRANS_A == 0u) {
            [[unroll]] for (uint i = 0; i < 8u; i++) av[i] = a_at(ra[i] + k / 4u);
        } else {
            vec4 t0[4], t1[4];
            [[unroll]] for (uint q = 0; q < 4u; q++) {
                t0[q] = a_at(oa + (k + q) * M4 + ma0);
                t1[q] = a_at(oa + (k + q) * M4 + ma1);
            }
            [[unroll]] for (uint i = 0; i < 4u; i++) {
                av[i] = vec4(t0[0][i], t0[1][i], t0[2][i], t0[3][i]);
                av[i + 4u] = vec4(t1[0][i], t1[1][i], t1[2][i], t1[3][i]);
            }
        }
        // B block as bv[q][h] = B[k+q][n0+4h .. n0+4h+3]
        vec4 bv[4][2];
        if (TRANS_B == 0u) {
            [[unroll]] for (uint q = 0; q < 4u; q++) {
                bv[q][0] = b_at(ob + (k + q) * N4 + nb0);
                bv[q][1] = b_at(ob + (k + q) * N4 + nb1);
            }
        } else {
            vec4 t[8];
            [[unroll]] for (uint j = 0; j < 8u; j++) t[j] = b_at(cb[j] + k / 4u);
            [[unroll]] for (uint q = 0; q < 4u; q++) {
                bv[q][0] = vec4(t[0][q], t[1][q], t[2][q], t[3][q]);
                bv[q][1] = vec4(t[4][q], t[5][q], t[6][q], t[7][q]);
            }
        }
        [[unroll]] for (uint q = 0; q < 4u; q++)
            [[unroll]] for (uint i = 0; i < 8u; i++) {
                acc[i][0] = fma(vec4(av[i][q]), bv[q][0], acc[i][0]);
                acc[i][1] = fma(vec4(av[i][q]), bv[q][1], acc[i][1]);
            }
    }

    const uint oc = pc.off[3];
    if (C4 != 0u) {
        [[unroll]] for (uint i = 0; i < 8u; i++) {
            uint m = m0 + i;
            if (m >= M) break;
            [[unroll]] for (uint h = 0; h < 2u; h++) {
                uint n = n0 + 4u * h;
                if (n >= N) break;
                vec4 v = acc[i][h];
                if (SPLIT != 0u) {
                    c4[(oc + gl_WorkGroupID.z * M * N + m * N + n) / 4u] = v;
                    continue;
                }
                uint ci = (oc + m * N + n) / 4u;
                v *= pc.f[0];
                if (HAS_BETA != 0u) v += pc.f[1] * c4[ci];
                if (HAS_BIAS != 0u) {
                    uint bo = pc.off[2] + n;
                    v += vec4(bias[bo], bias[bo + 1u], bias[bo + 2u], bias[bo + 3u]);
                }
                c4[ci] = vec4(vt_act(ACT, v.x, pc.f[2]), vt_act(ACT, v.y, pc.f[2]), vt_act(ACT, v.z, pc.f[2]),
                              vt_act(ACT, v.w, pc.f[2]));
            }
        }
        return;
    }
    [[unroll]] for (uint i = 0; i < 8u; i++) {
        uint m = m0 + i;
        if (m >= M) break;
        [[unroll]] for (uint j = 0; j < 8u; j++) {
            uint n = n0 + j;
            if (n >= N) break;
            float v = acc[i][j / 4u][j % 4u];
            if (SPLIT != 0u) {
                c[oc + gl_WorkGroupID.z * M * N + m * N + n] = v;
                continue;
            }
            uint ci = oc + m * N + n;
            v *= pc.f[0];
            if (HAS_BETA != 0u) v += pc.f[1] * c[ci];
            if (HAS_BIAS != 0u) v += bias[pc.off[2] + n];
            c[ci] = vt_act(ACT, v, pc.f[2]);
        }
    }
}
