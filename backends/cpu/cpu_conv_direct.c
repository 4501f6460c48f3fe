/* CPU direct convolutions for few output channels (16 or 32), the CNN problems' shapes, on x86 with
 * AVX2 and FMA (checked at run time). Lowering those to GEMM spends a third of the time outside the
 * multiply: im2col writes the column matrix, OpenBLAS packs it again, and a 16-row GEMM per image
 * pays the call overhead each time. Here the micro-kernels read the zero-bordered image itself.
 *
 * Forward, stride 1 and rows of 8 to 32 outputs: a tile is kc output channels x one whole output
 * row (pv vectors of 8 pixels), 12 accumulators; per (c, r, s) it loads the row under the window and
 * broadcasts kc weights. Results leave as vector stores with bias and activation.
 * Forward, other shapes: a tile is 16 output channels x 6 output pixels of one row; per (c, r, s) it
 * loads the 16 weights (packed [K/16][C*R*S][16]) and broadcasts the 6 input pixels.
 * Weight gradient: a tile is 16 output channels x up to 6 kernel columns s (for one c, r), summed over
 * every output pixel of the image; dy is first transposed to [P*Q][16] (8x8 blocks in registers) so
 * the 16 channels of a pixel are one load.
 * Every output is one FMA chain in a fixed order, so the results do not depend on threads or timing.
 * Where the CPU has AVX-512F, the row forward and the weight gradient (the latter as tiles of up to
 * 14 taps x 16 channels) run 16-lane variants of the same chains: the values are the same bit for bit,
 * at twice the work per instruction. */
#include <string.h>

#include "cpu_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define VT_DIRECT_X86 1
#include <immintrin.h>
#else
#define VT_DIRECT_X86 0
#endif

#define CB 16 /* output channels per block: two 8-float vectors */
#define NR 6  /* output pixels (forward) or kernel columns (weight gradient) per tile */

void vt_cpu_pad_plane(const vt_cpu_conv_dims *d, const float *xc, float *pad) {
    int64_t Wp = d->W + 2 * d->pw, Hp = d->H + 2 * d->ph;
    memset(pad, 0, (size_t)(d->ph * Wp) * sizeof(float));
    for (int64_t h = 0; h < d->H; h++) {
        float *row = pad + (h + d->ph) * Wp;
        for (int64_t w = 0; w < d->pw; w++) row[w] = 0.0f;
        for (int64_t w = 0; w < d->W; w++) row[d->pw + w] = xc[h * d->W + w];
        for (int64_t w = d->pw + d->W; w < Wp; w++) row[w] = 0.0f;
    }
    memset(pad + (d->ph + d->H) * Wp, 0, (size_t)((Hp - d->ph - d->H) * Wp) * sizeof(float));
}

bool vt_cpu_avx2_available(void) {
#if VT_DIRECT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool vt_cpu_avx512_available(void) {
#if VT_DIRECT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool vt_cpu_direct_conv_fits(const vt_cpu_conv_dims *d) {
    /* 16 or 32 output channels; up to 1024 weights per output (the packed block of one channel
     * group, 64 KiB, stays in L1/L2). Wider layers run faster as one big GEMM each. */
    return (d->K == 16 || d->K == 32) && d->C * d->R * d->S <= 1024 && d->P > 0 && d->Q > 0;
}

size_t vt_cpu_direct_work_floats(const vt_cpu_conv_dims *d) {
    int64_t padded = d->C * (d->H + 2 * d->ph) * (d->W + 2 * d->pw);
    return (size_t)(padded + d->P * d->Q * CB + 16 * CB);
}

void vt_cpu_direct_pack_weights(const vt_cpu_conv_dims *d, const float *w, float *wp) {
    int64_t CRS = d->C * d->R * d->S;
    for (int64_t kb = 0; kb < d->K / CB; kb++)
        for (int64_t j = 0; j < CRS; j++)
            for (int k = 0; k < CB; k++) wp[(kb * CRS + j) * CB + k] = w[(kb * CB + k) * CRS + j];
}

static void pad_image(const vt_cpu_conv_dims *d, const float *xn, float *padded) {
    int64_t plane = (d->H + 2 * d->ph) * (d->W + 2 * d->pw);
    for (int64_t c = 0; c < d->C; c++) vt_cpu_pad_plane(d, xn + c * d->H * d->W, padded + c * plane);
}

#if VT_DIRECT_X86
#define VT_TARGET __attribute__((target("avx2,fma")))
#define VT_TILE   static inline __attribute__((always_inline, target("avx2,fma")))

/* out[j][0..16) = sum over (c, r, s) of wb[(c, r, s)][0..16) * in[c][r][s + j*sw], j < nr. */
VT_TILE void fwd_tile(const vt_cpu_conv_dims *d, const float *in, const float *wb, int64_t plane, int64_t Wp,
                      const int nr, float *out) {
    __m256 acc[NR][2];
    for (int j = 0; j < nr; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    const int64_t sw = d->sw, R = d->R, S = d->S;
    for (int64_t c = 0; c < d->C; c++)
        for (int64_t r = 0; r < R; r++) {
            const float *row = in + c * plane + r * Wp;
            const float *wr = wb + (c * R + r) * S * CB;
            for (int64_t s = 0; s < S; s++) {
                __m256 a0 = _mm256_loadu_ps(wr + s * CB), a1 = _mm256_loadu_ps(wr + s * CB + 8);
                for (int j = 0; j < nr; j++) {
                    __m256 b = _mm256_broadcast_ss(row + s + j * sw);
                    acc[j][0] = _mm256_fmadd_ps(a0, b, acc[j][0]);
                    acc[j][1] = _mm256_fmadd_ps(a1, b, acc[j][1]);
                }
            }
        }
    for (int j = 0; j < nr; j++) {
        _mm256_storeu_ps(out + j * CB, acc[j][0]);
        _mm256_storeu_ps(out + j * CB + 8, acc[j][1]);
    }
}

VT_TARGET static void fwd_image(const vt_cpu_conv_dims *d, const float *xn, const float *wp, const float *bias,
                                vt_act act, float aa, float *yn, float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    float *padded = work, *tile = work + d->C * plane + PQ * CB;
    pad_image(d, xn, padded);
    for (int64_t kb = 0; kb < d->K / CB; kb++) {
        const float *wb = wp + kb * CRS * CB;
        for (int64_t oh = 0; oh < d->P; oh++)
            for (int64_t q0 = 0; q0 < d->Q; q0 += NR) {
                const float *in = padded + oh * d->sh * Wp + q0 * d->sw;
                int nr = d->Q - q0 < NR ? (int)(d->Q - q0) : NR;
                switch (nr) {
                case 6: fwd_tile(d, in, wb, plane, Wp, 6, tile); break;
                case 5: fwd_tile(d, in, wb, plane, Wp, 5, tile); break;
                case 4: fwd_tile(d, in, wb, plane, Wp, 4, tile); break;
                case 3: fwd_tile(d, in, wb, plane, Wp, 3, tile); break;
                case 2: fwd_tile(d, in, wb, plane, Wp, 2, tile); break;
                default: fwd_tile(d, in, wb, plane, Wp, 1, tile); break;
                }
                /* Channel-major output: each of the 16 channels gets a run of nr pixels. */
                for (int k = 0; k < CB; k++) {
                    int64_t ch = kb * CB + k;
                    float *y = yn + ch * PQ + oh * d->Q + q0;
                    float b = bias ? bias[ch] : 0.0f;
                    for (int j = 0; j < nr; j++) y[j] = vt_cpu_act(act, aa, tile[j * CB + k] + b);
                }
            }
    }
}

/* Stride 1 and rows of 8 to 32 output pixels (a multiple of 8): the tile is kc output channels x one
 * whole output row as pv vectors of 8 pixels, so the results go out as vector stores, bias and
 * activation included. Per (c, r, s): pv unaligned loads of the input row, kc broadcast weights. */
/* One function per (kc, pv). The accumulators are one array per pixel vector, indexed only by the
 * channel loop: with a two-index array GCC keeps a copy of every accumulator on the stack. */
#define VT_FWD_ROW(KC, PV)                                                                                             \
    VT_TARGET static void fwd_row_##KC##_##PV(const vt_cpu_conv_dims *d, const float *in, const float *w, int64_t CRS, \
                                              int64_t plane, int64_t Wp, const float *bias, int64_t k0, vt_act act,    \
                                              float aa, float *y, int64_t PQ) {                                        \
        __m256 a0[KC], a1[KC], a2[KC], a3[KC];                                                                         \
        _Pragma("GCC unroll 8") for (int k = 0; k < KC; k++) a0[k] = a1[k] = a2[k] = a3[k] = _mm256_setzero_ps();      \
        const int64_t R = d->R, S = d->S;                                                                              \
        for (int64_t c = 0; c < d->C; c++)                                                                             \
            for (int64_t r = 0; r < R; r++) {                                                                          \
                const float *row = in + c * plane + r * Wp;                                                            \
                const float *wr = w + (c * R + r) * S;                                                                 \
                for (int64_t s = 0; s < S; s++) {                                                                      \
                    __m256 x0 = _mm256_loadu_ps(row + s), x1 = x0, x2 = x0, x3 = x0;                                   \
                    if (PV > 1) x1 = _mm256_loadu_ps(row + s + 8);                                                     \
                    if (PV > 2) x2 = _mm256_loadu_ps(row + s + 16);                                                    \
                    if (PV > 3) x3 = _mm256_loadu_ps(row + s + 24);                                                    \
                    _Pragma("GCC unroll 8") for (int k = 0; k < KC; k++) {                                             \
                        __m256 wk = _mm256_broadcast_ss(wr + k * CRS + s);                                             \
                        a0[k] = _mm256_fmadd_ps(wk, x0, a0[k]);                                                        \
                        if (PV > 1) a1[k] = _mm256_fmadd_ps(wk, x1, a1[k]);                                            \
                        if (PV > 2) a2[k] = _mm256_fmadd_ps(wk, x2, a2[k]);                                            \
                        if (PV > 3) a3[k] = _mm256_fmadd_ps(wk, x3, a3[k]);                                            \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        _Pragma("GCC unroll 8") for (int k = 0; k < KC; k++) {                                                         \
            float b = bias ? bias[k0 + k] : 0.0f, t[32];                                                               \
            _mm256_storeu_ps(t, a0[k]);                                                                                \
            _mm256_storeu_ps(t + 8, a1[k]);                                                                            \
            _mm256_storeu_ps(t + 16, a2[k]);                                                                           \
            _mm256_storeu_ps(t + 24, a3[k]);                                                                           \
            vt_cpu_bias_act(t, 8 * PV, NULL, b, act, aa);                                                              \
            memcpy(y + k * PQ, t, 8 * PV * sizeof(float));                                                             \
        }                                                                                                              \
    }
VT_FWD_ROW(12, 1)
VT_FWD_ROW(8, 1)
VT_FWD_ROW(4, 1)
VT_FWD_ROW(6, 2)
VT_FWD_ROW(4, 2)
VT_FWD_ROW(2, 2)
VT_FWD_ROW(4, 3)
VT_FWD_ROW(3, 4)
VT_FWD_ROW(2, 4)
VT_FWD_ROW(1, 4)

typedef void (*fwd_row_fn)(const vt_cpu_conv_dims *d, const float *in, const float *w, int64_t CRS, int64_t plane,
                           int64_t Wp, const float *bias, int64_t k0, vt_act act, float aa, float *y, int64_t PQ);

/* The kernel for kc channels x pv vectors; kc is 12/pv (12 accumulators: 4-cycle FMAs, two per cycle,
 * keep 8 in flight with room to spare) or the remainder of 16 or 32 channels by it. */
static fwd_row_fn fwd_row_for(int kc, int pv) {
    switch (pv * 16 + kc) {
    case 16 + 12: return fwd_row_12_1;
    case 16 + 8: return fwd_row_8_1;
    case 16 + 4: return fwd_row_4_1;
    case 32 + 6: return fwd_row_6_2;
    case 32 + 4: return fwd_row_4_2;
    case 32 + 2: return fwd_row_2_2;
    case 48 + 4: return fwd_row_4_3;
    case 64 + 3: return fwd_row_3_4;
    case 64 + 2: return fwd_row_2_4;
    case 64 + 1: return fwd_row_1_4;
    default: return NULL;
    }
}

VT_TARGET static void fwd_image_rows(const vt_cpu_conv_dims *d, const float *xn, const float *w, const float *bias,
                                     vt_act act, float aa, float *yn, float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    pad_image(d, xn, work);
    int pv = (int)(d->Q / 8), kc = 12 / pv;
    fwd_row_fn full = fwd_row_for(kc, pv), tail = fwd_row_for((int)(d->K % kc), pv);
    for (int64_t oh = 0; oh < d->P; oh++) {
        const float *in = work + oh * Wp;
        for (int64_t k0 = 0; k0 < d->K; k0 += kc)
            (k0 + kc <= d->K ? full : tail)(d, in, w + k0 * CRS, CRS, plane, Wp, bias, k0, act, aa,
                                            yn + k0 * PQ + oh * d->Q, PQ);
    }
}

/* acc[j][0..16) = sum over output pixels (oh, ow) of dyT[oh*Q + ow][0..16) * in[oh*sh][ow*sw + j],
 * j < nr; `in` points at row r, column s0 of one channel of the padded image. */
VT_TILE void bwdw_tile(const vt_cpu_conv_dims *d, const float *in, const float *dyT, int64_t Wp, const int nr,
                       float *out) {
    __m256 acc[NR][2];
    for (int j = 0; j < nr; j++) acc[j][0] = acc[j][1] = _mm256_setzero_ps();
    const int64_t sw = d->sw, Q = d->Q;
    for (int64_t oh = 0; oh < d->P; oh++) {
        const float *row = in + oh * d->sh * Wp;
        const float *g = dyT + oh * Q * CB;
        for (int64_t ow = 0; ow < Q; ow++) {
            __m256 a0 = _mm256_loadu_ps(g + ow * CB), a1 = _mm256_loadu_ps(g + ow * CB + 8);
            for (int j = 0; j < nr; j++) {
                __m256 b = _mm256_broadcast_ss(row + ow * sw + j);
                acc[j][0] = _mm256_fmadd_ps(a0, b, acc[j][0]);
                acc[j][1] = _mm256_fmadd_ps(a1, b, acc[j][1]);
            }
        }
    }
    for (int j = 0; j < nr; j++) {
        _mm256_storeu_ps(out + j * CB, acc[j][0]);
        _mm256_storeu_ps(out + j * CB + 8, acc[j][1]);
    }
}

/* dyT [PQ][16] = the 16 channel rows dy [16][PQ] transposed, 8x8 blocks in registers. */
VT_TARGET static void transpose_dy(const float *dy, int64_t PQ, float *dyT) {
    int64_t p0 = 0;
    for (; p0 + 8 <= PQ; p0 += 8)
        for (int h = 0; h < CB; h += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(dy + (h + i) * PQ + p0);
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            /* r[0..3] hold pixels (0,1,2,3 | 4,5,6,7) of channels 0-3, r[4..7] of channels 4-7 */
            for (int i = 0; i < 4; i++) {
                __m256 lo = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20),
                       hi = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
                _mm256_storeu_ps(dyT + (p0 + i) * CB + h, lo);
                _mm256_storeu_ps(dyT + (p0 + i + 4) * CB + h, hi);
            }
        }
    for (; p0 < PQ; p0++)
        for (int k = 0; k < CB; k++) dyT[p0 * CB + k] = dy[k * PQ + p0];
}

VT_TARGET static void bwdw_image(const vt_cpu_conv_dims *d, const float *xn, const float *dyn, float *acc, bool first,
                                 float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, PQ = d->P * d->Q, R = d->R, S = d->S;
    float *padded = work, *dyT = work + d->C * plane, *tile = dyT + PQ * CB;
    pad_image(d, xn, padded);
    for (int64_t kb = 0; kb < d->K / CB; kb++) {
        transpose_dy(dyn + kb * CB * PQ, PQ, dyT);
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t s0 = 0; s0 < S; s0 += NR) {
                    const float *in = padded + c * plane + r * Wp + s0;
                    int nr = S - s0 < NR ? (int)(S - s0) : NR;
                    switch (nr) {
                    case 6: bwdw_tile(d, in, dyT, Wp, 6, tile); break;
                    case 5: bwdw_tile(d, in, dyT, Wp, 5, tile); break;
                    case 4: bwdw_tile(d, in, dyT, Wp, 4, tile); break;
                    case 3: bwdw_tile(d, in, dyT, Wp, 3, tile); break;
                    case 2: bwdw_tile(d, in, dyT, Wp, 2, tile); break;
                    default: bwdw_tile(d, in, dyT, Wp, 1, tile); break;
                    }
                    /* acc is this thread's dw^T [C*R*S, K]: image sums added in image order. */
                    for (int j = 0; j < nr; j++) {
                        float *a = acc + ((c * R + r) * S + s0 + j) * d->K + kb * CB;
                        for (int k = 0; k < CB; k++) a[k] = first ? tile[j * CB + k] : a[k] + tile[j * CB + k];
                    }
                }
    }
}

/* ---- AVX-512: the same sums, 16 lanes per vector ----
 * Each output is still one FMA chain over the same terms in the same order, so these kernels give
 * the AVX2 kernels' values bit for bit; they only do twice the work per instruction. */
#define VT_TARGET512 __attribute__((target("avx512f,avx2,fma")))

/* Forward by rows: kc channels x pv vectors of 16 pixels (stride 1, 16 or 32 columns). */
#define VT_FWD_ROW512(KC, PV)                                                                                   \
    VT_TARGET512 static void fwd_row512_##KC##_##PV(const vt_cpu_conv_dims *d, const float *in, const float *w, \
                                                    int64_t CRS, int64_t plane, int64_t Wp, const float *bias,  \
                                                    int64_t k0, vt_act act, float aa, float *y, int64_t PQ) {   \
        __m512 a0[KC], a1[KC];                                                                                  \
        _Pragma("GCC unroll 16") for (int k = 0; k < KC; k++) a0[k] = a1[k] = _mm512_setzero_ps();              \
        const int64_t R = d->R, S = d->S;                                                                       \
        for (int64_t c = 0; c < d->C; c++)                                                                      \
            for (int64_t r = 0; r < R; r++) {                                                                   \
                const float *row = in + c * plane + r * Wp;                                                     \
                const float *wr = w + (c * R + r) * S;                                                          \
                for (int64_t s = 0; s < S; s++) {                                                               \
                    __m512 x0 = _mm512_loadu_ps(row + s), x1 = x0;                                              \
                    if (PV > 1) x1 = _mm512_loadu_ps(row + s + 16);                                             \
                    _Pragma("GCC unroll 16") for (int k = 0; k < KC; k++) {                                     \
                        __m512 wk = _mm512_set1_ps(wr[k * CRS + s]);                                            \
                        a0[k] = _mm512_fmadd_ps(wk, x0, a0[k]);                                                 \
                        if (PV > 1) a1[k] = _mm512_fmadd_ps(wk, x1, a1[k]);                                     \
                    }                                                                                           \
                }                                                                                               \
            }                                                                                                   \
        _Pragma("GCC unroll 16") for (int k = 0; k < KC; k++) {                                                 \
            float b = bias ? bias[k0 + k] : 0.0f, t[32];                                                        \
            _mm512_storeu_ps(t, a0[k]);                                                                         \
            _mm512_storeu_ps(t + 16, a1[k]);                                                                    \
            vt_cpu_bias_act(t, 16 * PV, NULL, b, act, aa);                                                      \
            memcpy(y + k * PQ, t, 16 * PV * sizeof(float));                                                     \
        }                                                                                                       \
    }
VT_FWD_ROW512(16, 1)
VT_FWD_ROW512(12, 2)
VT_FWD_ROW512(8, 2)
VT_FWD_ROW512(4, 2)

static fwd_row_fn fwd_row512_for(int kc, int pv) {
    switch (pv * 32 + kc) {
    case 32 + 16: return fwd_row512_16_1;
    case 64 + 12: return fwd_row512_12_2;
    case 64 + 8: return fwd_row512_8_2;
    case 64 + 4: return fwd_row512_4_2;
    default: return NULL;
    }
}

static bool rows512(const vt_cpu_conv_dims *d) { return d->sw == 1 && (d->Q == 16 || d->Q == 32); }

VT_TARGET512 static void fwd_image_rows512(const vt_cpu_conv_dims *d, const float *xn, const float *w,
                                           const float *bias, vt_act act, float aa, float *yn, float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, CRS = d->C * d->R * d->S, PQ = d->P * d->Q;
    pad_image(d, xn, work);
    int pv = (int)(d->Q / 16), kc = pv == 1 ? 16 : 12;
    fwd_row_fn full = fwd_row512_for(kc, pv), tail = fwd_row512_for((int)(d->K % kc), pv);
    for (int64_t oh = 0; oh < d->P; oh++) {
        const float *in = work + oh * Wp;
        for (int64_t k0 = 0; k0 < d->K; k0 += kc)
            (k0 + kc <= d->K ? full : tail)(d, in, w + k0 * CRS, CRS, plane, Wp, bias, k0, act, aa,
                                            yn + k0 * PQ + oh * d->Q, PQ);
    }
}

/* Weight gradient: 16 output channels (one vector) x RT kernel rows x ST kernel columns of taps of one
 * input channel, up to 14 accumulators, summed over every output pixel of the image. */
typedef void (*bwdw_fn)(const vt_cpu_conv_dims *d, const float *in, const float *dyT, int64_t Wp, float *out);
#define VT_BWDW512(RT, ST)                                                                                     \
    VT_TARGET512 static void bwdw512_##RT##_##ST(const vt_cpu_conv_dims *d, const float *in, const float *dyT, \
                                                 int64_t Wp, float *out) {                                     \
        __m512 acc[RT * ST];                                                                                   \
        _Pragma("GCC unroll 16") for (int t = 0; t < RT * ST; t++) acc[t] = _mm512_setzero_ps();               \
        const int64_t sw = d->sw, Q = d->Q;                                                                    \
        for (int64_t oh = 0; oh < d->P; oh++) {                                                                \
            const float *row = in + oh * d->sh * Wp;                                                           \
            const float *g = dyT + oh * Q * CB;                                                                \
            for (int64_t ow = 0; ow < Q; ow++) {                                                               \
                __m512 a = _mm512_loadu_ps(g + ow * CB);                                                       \
                const float *px = row + ow * sw;                                                               \
                _Pragma("GCC unroll 16") for (int rr = 0; rr < RT; rr++)                                       \
                    _Pragma("GCC unroll 16") for (int s = 0; s < ST; s++) acc[rr * ST + s] =                   \
                        _mm512_fmadd_ps(a, _mm512_set1_ps(px[rr * Wp + s]), acc[rr * ST + s]);                 \
            }                                                                                                  \
        }                                                                                                      \
        _Pragma("GCC unroll 16") for (int t = 0; t < RT * ST; t++) _mm512_storeu_ps(out + t * CB, acc[t]);     \
    }
#define VT_BWDW512_S(ST) VT_BWDW512(1, ST) VT_BWDW512(2, ST) VT_BWDW512(3, ST)
VT_BWDW512_S(1)
VT_BWDW512_S(2)
VT_BWDW512_S(3)
VT_BWDW512_S(4)
VT_BWDW512(1, 5)
VT_BWDW512(2, 5)
VT_BWDW512(1, 6)
VT_BWDW512(2, 6)
VT_BWDW512(1, 7)
VT_BWDW512(2, 7)

/* Rows of taps per tile: 3 for kernels up to 4 wide, 2 up to 7 (at most 14 accumulators). */
static int bwdw512_rows(int64_t S) { return S <= 4 ? 3 : 2; }

/* clang-format off */
static bwdw_fn bwdw512_for(int rt, int64_t st) {
#define C3(ST) case ST: return rt == 1 ? bwdw512_1_##ST : rt == 2 ? bwdw512_2_##ST : bwdw512_3_##ST;
#define C2(ST) case ST: return rt == 1 ? bwdw512_1_##ST : bwdw512_2_##ST;
    switch (st) {
    C3(1) C3(2) C3(3) C3(4) C2(5) C2(6) C2(7)
    default: return NULL;
    }
#undef C3
#undef C2
}
/* clang-format on */

VT_TARGET512 static void bwdw_image512(const vt_cpu_conv_dims *d, const float *xn, const float *dyn, float *acc,
                                       bool first, float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, PQ = d->P * d->Q, R = d->R, S = d->S;
    float *padded = work, *dyT = work + d->C * plane, *tile = dyT + PQ * CB;
    pad_image(d, xn, padded);
    int rt = bwdw512_rows(S);
    for (int64_t kb = 0; kb < d->K / CB; kb++) {
        transpose_dy(dyn + kb * CB * PQ, PQ, dyT);
        for (int64_t c = 0; c < d->C; c++)
            for (int64_t r0 = 0; r0 < R; r0 += rt) {
                int nr = R - r0 < rt ? (int)(R - r0) : rt;
                bwdw512_for(nr, S)(d, padded + c * plane + r0 * Wp, dyT, Wp, tile);
                /* taps (r0 .. r0+nr-1, 0 .. S-1) are consecutive rows of this thread's dw^T [C*R*S, K] */
                for (int64_t t = 0; t < nr * S; t++) {
                    float *a = acc + ((c * R + r0) * S + t) * d->K + kb * CB;
                    for (int k = 0; k < CB; k++) a[k] = first ? tile[t * CB + k] : a[k] + tile[t * CB + k];
                }
            }
    }
}
#endif

bool vt_cpu_direct_conv_rows(const vt_cpu_conv_dims *d) { return d->sw == 1 && d->Q % 8 == 0 && d->Q <= 32; }

void vt_cpu_direct_conv_fwd(const vt_cpu_conv_dims *d, bool avx512, const float *xn, const float *w, const float *wp,
                            const float *bias, vt_act act, float aa, float *yn, float *work) {
#if VT_DIRECT_X86
    if (avx512 && rows512(d)) fwd_image_rows512(d, xn, w, bias, act, aa, yn, work);
    else if (vt_cpu_direct_conv_rows(d)) fwd_image_rows(d, xn, w, bias, act, aa, yn, work);
    else fwd_image(d, xn, wp, bias, act, aa, yn, work);
#else
    (void)d, (void)avx512, (void)xn, (void)w, (void)wp, (void)bias, (void)act, (void)aa, (void)yn, (void)work;
#endif
}

void vt_cpu_direct_conv_bwd_weight(const vt_cpu_conv_dims *d, bool avx512, const float *xn, const float *dyn,
                                   float *acc, bool first, float *work) {
#if VT_DIRECT_X86
    if (avx512 && d->S <= 7) bwdw_image512(d, xn, dyn, acc, first, work);
    else bwdw_image(d, xn, dyn, acc, first, work);
#else
    (void)d, (void)avx512, (void)xn, (void)dyn, (void)acc, (void)first, (void)work;
#endif
}
