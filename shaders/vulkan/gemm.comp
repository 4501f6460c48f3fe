// Register-blocked GEMM C = act(alpha*op(A)op(B) + beta*C + bias) and, by MODE (a -D define), the three
// convolutions as implicit GEMMs (no im2col buffer). Each invocation owns a TM x TN block of C.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

// MODE 0: matmul          rows M = M,    cols N = N,          K = K
// MODE 1: conv forward    rows = Kout,   cols = Nb*P*Q,       K = C*R*S    (y[n,k,p,q])
// MODE 2: conv bwd data   rows = C,      cols = Nb*H*W,       K = Kout*R*S (dx[n,c,h,w])
// MODE 3: conv bwd weight rows = Kout,   cols = C*R*S,        K = Nb*P*Q   (dw[k,c,r,s])
#ifndef MODE
#define MODE 0
#endif

layout(constant_id = 3) const uint TM = 8;
layout(constant_id = 4) const uint TN = 8;
layout(constant_id = 5) const uint TRANS_A = 0;
layout(constant_id = 6) const uint TRANS_B = 0;
layout(constant_id = 7) const uint ACT = 0;
layout(constant_id = 8) const uint HAS_BIAS = 0;
layout(constant_id = 9) const uint HAS_BETA = 0;
// SPLIT = 1: workgroup z is a slice of K; raw partial sums go to C at slice*M*N (gemm_reduce finishes).
layout(constant_id = 10) const uint SPLIT = 0;
// STRIDE_LOG2 bit 0: both strides are powers of two, u[15] holds their log2 (shifts instead of a per-lane
// integer division, which CPU drivers cannot vectorise).
// bit 1: K is longer than 65535, the register path takes KU = 4 k per iteration of its k loop (see there).
layout(constant_id = 11) const uint STRIDE_LOG2 = 0;
const uint KU = (STRIDE_LOG2 & 2u) != 0u ? 4u : 1u;

// TEXEL (a -D define): A and B read through r32f uniform texel buffers (bindings 9, 10), which CPU
// drivers fetch with vector gathers; otherwise storage buffers. Offsets are in floats either way.
#ifdef TEXEL
layout(set = 0, binding = 9) uniform samplerBuffer texA;
layout(set = 0, binding = 10) uniform samplerBuffer texB;
#define LOAD_A(i) texelFetch(texA, int(i)).x
#define LOAD_B(i) texelFetch(texB, int(i)).x
#else
layout(std430, set = 0, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer BufB { float b[]; };
#define LOAD_A(i) a[i]
#define LOAD_B(i) b[i]
#endif
layout(std430, set = 0, binding = 2) readonly buffer BufBias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer BufC { float c[]; };

// u: 0 M, 1 N, 2 K, 3 K per slice, 4 Nb, 5 C, 6 H, 7 W, 8 Kout, 9 R, 10 S, 11 P, 12 Q,
//    13 stride_h | stride_w << 16, 14 pad_h | pad_w << 16, 15 log2 of the strides (STRIDE_LOG2).   f: 0 alpha, 1 beta, 2 act alpha.

#ifdef SMEM
// SMEM (a -D define): shared-memory tiles for GPUs. The workgroup stages a BM x BK slice of A and a
// BK x BN slice of B in shared memory (coalesced: consecutive invocations load consecutive addresses),
// then every invocation runs its TM x TN block from there. The outputs, the order of the k sum and the
// epilogue are those of the register-blocked path, so both give the same bits.
#define BK 16u
const uint BM = gl_WorkGroupSize.y * TM;
const uint BN = gl_WorkGroupSize.x * TN;
shared float As[BK * BM];
shared float Bs[BK * BN];

#if MODE != 0
#define CONV_GEOM                                                                                   \
    const uint C = pc.u[5], H = pc.u[6], W = pc.u[7], KO = pc.u[8], R = pc.u[9], S = pc.u[10];    \
    const uint P = pc.u[11], Q = pc.u[12], RS = R * S;                                              \
    const int sh = int(pc.u[13] & 0xffffu), sw = int(pc.u[13] >> 16);                              \
    const int ph = int(pc.u[14] & 0xffffu), pw = int(pc.u[14] >> 16);
#endif

// op(A)[m][k] for m < M, k < K
float fetch_a(uint m, uint k) {
    const uint M = pc.u[0], K = pc.u[2], oa = pc.off[0];
#if MODE == 0
    return LOAD_A(TRANS_A != 0 ? oa + k * M + m : oa + m * K + k);
#elif MODE == 1
    return LOAD_A(oa + m * K + k);  // w[m, crs]
#else
    CONV_GEOM
#if MODE == 2
    uint kk = k / RS, rs = k - kk * RS;
    return LOAD_A(oa + (kk * C + m) * RS + rs);  // w[kk, m, rs]
#else
    uint nb = k / (P * Q), pq = k - nb * P * Q;
    return LOAD_A(oa + (nb * KO + m) * P * Q + pq);  // dy[nb, m, pq]
#endif
#endif
}

// op(B)[k][n] for k < K, n < N; zero where the convolution window leaves the image
float fetch_b(uint k, uint n) {
    const uint N = pc.u[1], K = pc.u[2], ob = pc.off[1];
#if MODE == 0
    return LOAD_B(TRANS_B != 0 ? ob + n * K + k : ob + k * N + n);
#else
    CONV_GEOM
#if MODE == 1
    uint nb = n / (P * Q), pq = n - nb * P * Q, p = pq / Q, q = pq - p * Q;
    uint c_ = k / RS, rs = k - c_ * RS, r = rs / S, s = rs - r * S;
    int ih = int(p) * sh - ph + int(r), iw = int(q) * sw - pw + int(s);
    bool ok = ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
    return ok ? LOAD_B(ob + nb * C * H * W + (c_ * H + uint(ih)) * W + uint(iw)) : 0.0;
#elif MODE == 2
    uint nb = n / (H * W), hw = n - nb * H * W, h = hw / W, w = hw - h * W;
    uint kk = k / RS, rs = k - kk * RS, r = rs / S, s = rs - r * S;
    int th = int(h) + ph - int(r), tw = int(w) + pw - int(s);
    int p = th / sh, q = tw / sw;
    bool ok = th >= 0 && tw >= 0 && p * sh == th && q * sw == tw && p < int(P) && q < int(Q);
    return ok ? LOAD_B(ob + nb * KO * P * Q + (kk * P + uint(p)) * Q + uint(q)) : 0.0;
#else
    uint cc = n / RS, rs = n - cc * RS, r = rs / S, s = rs - r * S;
    uint nb = k / (P * Q), pq = k - nb * P * Q, p = pq / Q, q = pq - p * Q;
    int ih = int(p) * sh + int(r) - ph, iw = int(q) * sw + int(s) - pw;
    bool ok = ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
    return ok ? LOAD_B(ob + nb * C * H * W + cc * H * W + uint(ih) * W + uint(iw)) : 0.0;
#endif
#endif
}
#endif

void main() {
    const uint M = pc.u[0], N = pc.u[1], K = pc.u[2];
    const uint LX = gl_WorkGroupSize.x, LY = gl_WorkGroupSize.y;
    const uint m0 = gl_WorkGroupID.y * LY * TM + gl_LocalInvocationID.y;
    const uint n0 = gl_WorkGroupID.x * LX * TN + gl_LocalInvocationID.x;
    const uint kb = gl_WorkGroupID.z * pc.u[3];
    const uint ke = min(K, kb + pc.u[3]);
    float acc[TM][TN];
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN; j++) acc[i][j] = 0.0;
#if MODE != 0
    const uint P = pc.u[11], Q = pc.u[12];
#endif
#if MODE != 0
    const uint C = pc.u[5], H = pc.u[6], W = pc.u[7], KO = pc.u[8];
#endif

#ifdef SMEM
    // A is staged k-fastest when its rows are contiguous along k, B n-fastest unless it is transposed
    const bool A_KFAST = MODE != 0 || TRANS_A == 0u, B_KFAST = MODE == 0 && TRANS_B != 0u;
    const uint tid = gl_LocalInvocationID.y * LX + gl_LocalInvocationID.x, NT = LX * LY;
    const uint mb = gl_WorkGroupID.y * BM, nbase = gl_WorkGroupID.x * BN;
    // Only the k0 loop iterates at run time (the others unroll: counts fixed by the constants), as llvmpipe
    // ends an invocation's loops after 65535 iterations in all.
    for (uint k0 = kb; k0 < ke; k0 += BK) {
        [[unroll]] for (uint e0 = 0; e0 < BM * BK; e0 += NT) {
            uint e = e0 + tid;
            if (e < BM * BK) {
                uint mi = A_KFAST ? e / BK : e % BM, kk = A_KFAST ? e % BK : e / BM;
                uint m = mb + mi, k = k0 + kk;
                As[kk * BM + mi] = m < M && k < ke ? fetch_a(m, k) : 0.0;
            }
        }
        [[unroll]] for (uint e0 = 0; e0 < BN * BK; e0 += NT) {
            uint e = e0 + tid;
            if (e < BN * BK) {
                uint nj = B_KFAST ? e / BK : e % BN, kk = B_KFAST ? e % BK : e / BN;
                uint n = nbase + nj, k = k0 + kk;
                Bs[kk * BN + nj] = n < N && k < ke ? fetch_b(k, n) : 0.0;
            }
        }
        barrier();
        // k in order up to ke: the same sum as the register path's
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            if (k0 + kk < ke) {
                float av[TM], bv[TN];
                [[unroll]] for (uint i = 0; i < TM; i++) av[i] = As[kk * BM + gl_LocalInvocationID.y + i * LY];
                [[unroll]] for (uint j = 0; j < TN; j++) bv[j] = Bs[kk * BN + gl_LocalInvocationID.x + j * LX];
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
            }
        }
        barrier();
    }
#else
    const uint oa = pc.off[0], ob = pc.off[1];
#if MODE != 0
    const uint R = pc.u[9], S = pc.u[10];
    const int sh = int(pc.u[13] & 0xffffu), sw = int(pc.u[13] >> 16);
    const int ph = int(pc.u[14] & 0xffffu), pw = int(pc.u[14] >> 16);
    const uint RS = R * S;
#endif

    // Row / column facts hoisted out of the K loop. Out-of-range rows and columns are clamped so that
    // loads stay in bounds; their results are never stored.
    uint arow[TM];
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint m = min(m0 + i * LY, M - 1);
#if MODE == 0
        arow[i] = TRANS_A != 0 ? oa + m : oa + m * K;
#elif MODE == 1
        arow[i] = oa + m * K;          // w[k, crs]
#elif MODE == 2
        arow[i] = oa + m * RS;         // w[kk, c, r, s] = base + kk*C*RS + rs
#else
        arow[i] = oa + m * P * Q;      // dy[nb, k, pq] = base + nb*KO*PQ + pq
#endif
    }
    uint bcol[TN];
    int bi0[TN], bj0[TN];
    [[unroll]] for (uint j = 0; j < TN; j++) {
        uint n = min(n0 + j * LX, N - 1);
#if MODE == 0
        bcol[j] = TRANS_B != 0 ? ob + n * K : ob + n;
        bi0[j] = 0; bj0[j] = 0;
#elif MODE == 1
        uint nb = n / (P * Q), pq = n - nb * P * Q, p = pq / Q, q = pq - p * Q;
        bcol[j] = ob + nb * C * H * W;
        bi0[j] = int(p) * sh - ph; bj0[j] = int(q) * sw - pw;
#elif MODE == 2
        uint nb = n / (H * W), hw = n - nb * H * W, h = hw / W, w = hw - h * W;
        bcol[j] = ob + nb * KO * P * Q;
        bi0[j] = int(h) + ph; bj0[j] = int(w) + pw;
#else
        uint cc = n / RS, rs = n - cc * RS, r = rs / S, s = rs - r * S;
        bcol[j] = ob + cc * H * W;
        bi0[j] = int(r) - ph; bj0[j] = int(s) - pw;
#endif
    }

    // llvmpipe (lavapipe) ends an invocation's loops after 65535 iterations in all, silently: a longer K
    // takes KU k per iteration (unrolled, the same k order), so K up to 4 * 65535 sums every term there.
    for (uint k0 = kb; k0 < ke; k0 += KU) {
        [[unroll]] for (uint ku = 0; ku < KU; ku++) {
            const uint k = k0 + ku;
            if (k < ke) {
                float av[TM], bv[TN];
#if MODE == 0
                [[unroll]] for (uint i = 0; i < TM; i++) av[i] = LOAD_A(TRANS_A != 0 ? arow[i] + k * M : arow[i] + k);
                [[unroll]] for (uint j = 0; j < TN; j++) bv[j] = LOAD_B(TRANS_B != 0 ? bcol[j] + k : bcol[j] + k * N);
#elif MODE == 1
                uint c_ = k / RS, rs = k - c_ * RS, r = rs / S, s = rs - r * S;
                [[unroll]] for (uint i = 0; i < TM; i++) av[i] = LOAD_A(arow[i] + k);
                [[unroll]] for (uint j = 0; j < TN; j++) {
                    int ih = bi0[j] + int(r), iw = bj0[j] + int(s);
                    bool ok = ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
                    bv[j] = ok ? LOAD_B(bcol[j] + (c_ * H + uint(ih)) * W + uint(iw)) : 0.0;
                }
#elif MODE == 2
                uint kk = k / RS, rs = k - kk * RS, r = rs / S, s = rs - r * S;
                [[unroll]] for (uint i = 0; i < TM; i++) av[i] = LOAD_A(arow[i] + kk * C * RS + rs);
                [[unroll]] for (uint j = 0; j < TN; j++) {
                    int th = bi0[j] - int(r), tw = bj0[j] - int(s);
                    int p, q;
                    if ((STRIDE_LOG2 & 1u) != 0u) {
                        p = th >> int(pc.u[15] & 0xffffu);
                        q = tw >> int(pc.u[15] >> 16);
                    } else {
                        p = th / sh;
                        q = tw / sw;
                    }
                    bool ok = th >= 0 && tw >= 0 && p * sh == th && q * sw == tw && p < int(P) && q < int(Q);
                    bv[j] = ok ? LOAD_B(bcol[j] + (kk * P + uint(p)) * Q + uint(q)) : 0.0;
                }
#else
                uint nb = k / (P * Q), pq = k - nb * P * Q, p = pq / Q, q = pq - p * Q;
                [[unroll]] for (uint i = 0; i < TM; i++) av[i] = LOAD_A(arow[i] + nb * KO * P * Q + pq);
                int ihp = int(p) * sh, iwq = int(q) * sw;
                [[unroll]] for (uint j = 0; j < TN; j++) {
                    int ih = ihp + bi0[j], iw = iwq + bj0[j];
                    bool ok = ih >= 0 && ih < int(H) && iw >= 0 && iw < int(W);
                    bv[j] = ok ? LOAD_B(bcol[j] + nb * C * H * W + uint(ih) * W + uint(iw)) : 0.0;
                }
#endif
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
            }
        }
    }
#endif

    const uint oc = pc.off[3];
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint m = m0 + i * LY;
        if (m >= M) break;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint n = n0 + j * LX;
            if (n >= N) break;
            if (SPLIT != 0) {
                c[oc + gl_WorkGroupID.z * M * N + m * N + n] = acc[i][j];
                continue;
            }
#if MODE == 0 || MODE == 3
            uint ci = oc + m * N + n;
            uint bidx = n;
#elif MODE == 1
            uint nb = n / (P * Q), pq = n - nb * P * Q;
            uint ci = oc + (nb * KO + m) * P * Q + pq;
            uint bidx = m;
#else
            uint nb = n / (H * W), hw = n - nb * H * W;
            uint ci = oc + (nb * C + m) * H * W + hw;
            uint bidx = m;
#endif
            float v = pc.f[0] * acc[i][j];
            if (HAS_BETA != 0) v += pc.f[1] * c[ci];
            if (HAS_BIAS != 0) v += bias[pc.off[2] + bidx];
            c[ci] = vt_act(ACT, v, pc.f[2]);
        }
    }
}
