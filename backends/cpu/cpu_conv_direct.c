/* CPU direct convolutions for few output channels (16 or 32), the CNN problems' shapes, on x86 with
 * AVX2 and FMA (checked at run time). Lowering those to GEMM spends a third of the time outside the
 * multiply: im2col writes the column matrix, OpenBLAS packs it again, and a 16-row GEMM per image
 * pays the call overhead each time. Here the micro-kernel reads the zero-bordered image itself.
 *
 * Forward: a tile of 16 output channels x 6 output pixels of one row lives in 12 ymm registers;
 * for each (c, r, s) it loads the 16 weights (packed [K/16][C*R*S][16]) as two vectors and
 * broadcasts the 6 input pixels under the window, 12 FMAs. The sum runs over (c, r, s) in order, one
 * FMA chain per output, so the result does not depend on threads or timing.
 * Weight gradient: a tile of 16 output channels x up to 6 kernel columns s (for one c, r) sums over
 * every output pixel of the image; dy is first transposed to [P*Q][16] so the 16 channels of a pixel
 * are one vector load. */
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

bool vt_cpu_direct_conv_available(void) {
#if VT_DIRECT_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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
    return (size_t)(padded + d->P * d->Q * CB + NR * CB);
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
#define VT_TILE static inline __attribute__((always_inline, target("avx2,fma")))

/* out[j][0..16) = sum over (c, r, s) of wb[(c, r, s)][0..16) * in[c][r][s + j*sw], j < nr. */
VT_TILE void fwd_tile(const vt_cpu_conv_dims *d, const float *in, const float *wb, int64_t plane, int64_t Wp, const int nr,
                      float *out) {
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

VT_TARGET static void fwd_image(const vt_cpu_conv_dims *d, const float *xn, const float *wp, const float *bias, vt_act act,
                                float aa, float *yn, float *work) {
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

/* acc[j][0..16) = sum over output pixels (oh, ow) of dyT[oh*Q + ow][0..16) * in[oh*sh][ow*sw + j],
 * j < nr; `in` points at row r, column s0 of one channel of the padded image. */
VT_TILE void bwdw_tile(const vt_cpu_conv_dims *d, const float *in, const float *dyT, int64_t Wp, const int nr, float *out) {
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

VT_TARGET static void bwdw_image(const vt_cpu_conv_dims *d, const float *xn, const float *dyn, float *acc, bool first,
                                 float *work) {
    int64_t Hp = d->H + 2 * d->ph, Wp = d->W + 2 * d->pw, plane = Hp * Wp, PQ = d->P * d->Q, R = d->R, S = d->S;
    float *padded = work, *dyT = work + d->C * plane, *tile = dyT + PQ * CB;
    pad_image(d, xn, padded);
    for (int64_t kb = 0; kb < d->K / CB; kb++) {
        for (int k = 0; k < CB; k++) {
            const float *src = dyn + (kb * CB + k) * PQ;
            for (int64_t p = 0; p < PQ; p++) dyT[p * CB + k] = src[p];
        }
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
#endif

void vt_cpu_direct_conv_fwd(const vt_cpu_conv_dims *d, const float *xn, const float *wp, const float *bias, vt_act act,
                            float aa, float *yn, float *work) {
#if VT_DIRECT_X86
    fwd_image(d, xn, wp, bias, act, aa, yn, work);
#else
    (void)d, (void)xn, (void)wp, (void)bias, (void)act, (void)aa, (void)yn, (void)work;
#endif
}

void vt_cpu_direct_conv_bwd_weight(const vt_cpu_conv_dims *d, const float *xn, const float *dyn, float *acc, bool first,
                                   float *work) {
#if VT_DIRECT_X86
    bwdw_image(d, xn, dyn, acc, first, work);
#else
    (void)d, (void)xn, (void)dyn, (void)acc, (void)first, (void)work;
#endif
}
