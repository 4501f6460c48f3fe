/* Convolution lowering around the CLBlast GEMMs. A chunk of nb images starting at image n0 is
 * unfolded into col[C*R*S][nb*P*Q] (column = image-in-chunk * P*Q + p*Q + q); the GEMM output
 * tmp[K][nb*P*Q] uses the same column order and is moved to/from NCHW by scatter/gather.
 * Each work-item handles one contiguous row and loops along it: index arithmetic (divisions)
 * is then paid once per row, not per element, which made im2col ~50x faster on PoCL. */

/* One item per (image-in-chunk, output row p) and unfolded row (c, r, s): range (nb*P, C*R*S). */
__kernel void vt_im2col(__global const float *x, ulong xo, __global float *col, ulong colo, int C, int H, int W,
                        int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int np = get_global_id(0), row = get_global_id(1);
    if (np >= nb * P) return;
    int nn = np / P, p = np - nn * P;
    int s = row % S, r = (row / S) % R, c = row / (R * S);
    int h = p * sh - ph + r;
    __global float *out = col + colo + (size_t)row * nb * P * Q + (size_t)np * Q;
    if (h < 0 || h >= H) {
        for (int q = 0; q < Q; q++) out[q] = 0.0f;
        return;
    }
    __global const float *in = x + xo + (((size_t)(n0 + nn) * C + c) * H + h) * W;
    for (int q = 0; q < Q; q++) {
        int w = q * sw - pw + s;
        out[q] = (w >= 0 && w < W) ? in[w] : 0.0f;
    }
}

/* Sums, for every input pixel, the unfolded gradients that came from it (gather: no atomics), in
 * ascending (r, s) order, starting from bias[c] (CONV2D_TRANSPOSE's bias) or from zero (has_bias = 0).
 * One item per input row (h, image-in-chunk, c): range (H, nb*C). */
__kernel void vt_col2im(__global const float *col, ulong colo, __global float *dx, ulong dxo,
                        __global const float *bias, ulong bo, int has_bias, int C, int H, int W, int R, int S, int P,
                        int Q, int sh, int sw, int ph, int pw, int n0, int nb) {
    int h = get_global_id(0), nc = get_global_id(1);
    if (h >= H) return;
    int nn = nc / C, c = nc - nn * C;
    size_t cols = (size_t)nb * P * Q;
    __global const float *cb = col + colo + (size_t)nn * P * Q;
    __global float *out = dx + dxo + (((size_t)(n0 + nn) * C + c) * H + h) * W;
    float b0 = has_bias ? bias[bo + c] : 0.0f;
    for (int w = 0; w < W; w++) out[w] = b0;
    for (int r = 0; r < R; r++) {
        int th = h + ph - r;
        if (th < 0) break;
        if (th % sh) continue;
        int p = th / sh;
        if (p >= P) continue;
        for (int s = 0; s < S; s++) {
            __global const float *src = cb + (size_t)((c * R + r) * S + s) * cols + (size_t)p * Q;
            if (sw == 1) {
                /* q = w + pw - s must lie in [0, Q) */
                int w_lo = max(0, s - pw), w_hi = min(W, Q + s - pw);
                for (int w = w_lo; w < w_hi; w++) out[w] += src[w + pw - s];
            } else {
                for (int w = 0; w < W; w++) {
                    int tw = w + pw - s;
                    if (tw < 0 || tw % sw) continue;
                    int q = tw / sw;
                    if (q < Q) out[w] += src[q];
                }
            }
        }
    }
}

/* y[n0+nn][k][:] = act(tmp[k][nn*PQ + :] + bias[k]). Range (K, nb). */
__kernel void vt_conv_scatter(__global const float *tmp, ulong tmpo, __global float *y, ulong yo,
                              __global const float *bias, ulong bo, int has_bias, int K, int PQ, int n0, int nb,
                              int kind, float alpha) {
    int k = get_global_id(0), nn = get_global_id(1);
    if (k >= K) return;
    __global const float *in = tmp + tmpo + ((size_t)k * nb + nn) * PQ;
    __global float *out = y + yo + ((size_t)(n0 + nn) * K + k) * PQ;
    float b = has_bias ? bias[bo + k] : 0.0f;
    for (int i = 0; i < PQ; i++) out[i] = vt_act_apply(has_bias ? in[i] + b : in[i], kind, alpha);
}

/* tmp[k][nn*PQ + :] = dy[n0+nn][k][:]. Range (K, nb). */
__kernel void vt_conv_gather(__global const float *dy, ulong dyo, __global float *tmp, ulong tmpo, int K, int PQ,
                             int n0, int nb) {
    int k = get_global_id(0), nn = get_global_id(1);
    if (k >= K) return;
    __global const float *in = dy + dyo + ((size_t)(n0 + nn) * K + k) * PQ;
    __global float *out = tmp + tmpo + ((size_t)k * nb + nn) * PQ;
    for (int i = 0; i < PQ; i++) out[i] = in[i];
}

/* wt[c][k][R-1-r][S-1-s] = w[k][c][r][s]: the weights of the stride-1 data gradient written as a
 * forward convolution. Range (K, C). */
__kernel void vt_conv_flip(__global const float *w, ulong wo, __global float *wt, ulong wto, int K, int C, int RS) {
    int k = get_global_id(0), c = get_global_id(1);
    if (k >= K) return;
    __global const float *in = w + wo + ((size_t)k * C + c) * RS;
    __global float *out = wt + wto + ((size_t)c * K + k) * RS;
    for (int i = 0; i < RS; i++) out[RS - 1 - i] = in[i];
}

/* Forward convolution for 16 output channels at a time (the CNN problems' layers), straight from
 * the unfolded chunk: y[n0+nn][kb*16+k][p] = act(sum over j of w[kb*16+k][j] * col[j][nn*PQ+p] + b).
 * One item per column (output pixel of the chunk): 16 sums in registers, one FMA chain each over j in
 * order. Across a work-group the column loads are contiguous and the weights are the same for every
 * item, so CPU drivers vectorise over items; this replaces a 16-row GEMM (CLBlast's direct kernel,
 * ~20 GFLOP/s on PoCL) plus the scatter pass. Range (nb*PQ, K/16). */
__kernel void vt_conv_rows16(__global const float *col, ulong colo, __global const float *w, ulong wo,
                             __global float *y, ulong yo, __global const float *bias, ulong bo, int has_bias, int K,
                             int CRS, int PQ, int n0, int nb, int kind, float alpha) {
    int i0 = get_global_id(0) * 16, kb = get_global_id(1);
    int cols = nb * PQ;
    if (i0 >= cols) return;
    __global const float *wp = w + wo + (size_t)kb * 16 * CRS;
    if (i0 + 16 <= cols) {
        float16 acc[16];
        for (int k = 0; k < 16; k++) acc[k] = (float16)(0.0f);
        __global const float *cp = col + colo + i0;
        for (int j = 0; j < CRS; j++) {
            float16 b = vload16(0, cp + (size_t)j * cols);
            for (int k = 0; k < 16; k++) acc[k] = fma((float16)(wp[k * CRS + j]), b, acc[k]);
        }
        for (int q = 0; q < 16; q++) {
            int i = i0 + q, nn = i / PQ, p = i - nn * PQ;
            __global float *out = y + yo + ((size_t)(n0 + nn) * K + kb * 16) * PQ + p;
            for (int k = 0; k < 16; k++) {
                float v = has_bias ? acc[k][q] + bias[bo + kb * 16 + k] : acc[k][q];
                out[(size_t)k * PQ] = vt_act_apply(v, kind, alpha);
            }
        }
        return;
    }
    for (int i = i0; i < cols; i++) {
        float acc[16];
        for (int k = 0; k < 16; k++) acc[k] = 0.0f;
        for (int j = 0; j < CRS; j++) {
            float b = col[colo + (size_t)j * cols + i];
            for (int k = 0; k < 16; k++) acc[k] = fma(wp[k * CRS + j], b, acc[k]);
        }
        int nn = i / PQ, p = i - nn * PQ;
        __global float *out = y + yo + ((size_t)(n0 + nn) * K + kb * 16) * PQ + p;
        for (int k = 0; k < 16; k++) {
            float v = has_bias ? acc[k] + bias[bo + kb * 16 + k] : acc[k];
            out[(size_t)k * PQ] = vt_act_apply(v, kind, alpha);
        }
    }
}

/* Weight gradient for 16 or 32 output channels from the unfolded chunk and the gathered dy:
 * dw[k][j] (+)= sum over i of tmp[k][i] * col[j][i]. One item per 8 channels x 2 columns j: 16 vector
 * sums over i in steps of 16 (the 8 + 2 loads feed 16 FMAs), then added across lanes in a fixed tree.
 * Replaces a CLBlast GEMM whose inner dimension is the whole chunk (~15 GFLOP/s on PoCL).
 * Range (ceil(CRS/2), K/8). */
__kernel void vt_conv_dw16(__global const float *tmp, ulong tmpo, __global const float *col, ulong colo,
                           __global float *dw, ulong dwo, int CRS, int cols, int accumulate) {
    int j0 = get_global_id(0) * 2, k0 = get_global_id(1) * 8;
    if (j0 >= CRS) return;
    int nj = CRS - j0 < 2 ? 1 : 2;
    __global const float *c0 = col + colo + (size_t)j0 * cols;
    __global const float *c1 = c0 + (nj > 1 ? cols : 0);
    __global const float *a = tmp + tmpo + (size_t)k0 * cols;
    float16 acc0[8], acc1[8];
    for (int k = 0; k < 8; k++) acc0[k] = acc1[k] = (float16)(0.0f);
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        float16 b0 = vload16(0, c0 + i), b1 = vload16(0, c1 + i);
        for (int k = 0; k < 8; k++) {
            float16 ak = vload16(0, a + (size_t)k * cols + i);
            acc0[k] = fma(ak, b0, acc0[k]);
            acc1[k] = fma(ak, b1, acc1[k]);
        }
    }
    for (int k = 0; k < 8; k++) {
        float8 h0 = acc0[k].lo + acc0[k].hi, h1 = acc1[k].lo + acc1[k].hi;
        float4 q0 = h0.lo + h0.hi, q1 = h1.lo + h1.hi;
        float2 r0 = q0.lo + q0.hi, r1 = q1.lo + q1.hi;
        float s0 = r0.x + r0.y, s1 = r1.x + r1.y;
        for (int t = i; t < cols; t++) {
            float av = a[(size_t)k * cols + t];
            s0 = fma(av, c0[t], s0);
            s1 = fma(av, c1[t], s1);
        }
        __global float *o = dw + dwo + (size_t)(k0 + k) * CRS + j0;
        o[0] = accumulate ? o[0] + s0 : s0;
        if (nj > 1) o[1] = accumulate ? o[1] + s1 : s1;
    }
}

/* x [n0+nn][c] with a zero border of ph rows and pw columns: xp[nn][c][Hp][Wp]. Range (Hp, nb*C). */
__kernel void vt_conv_pad(__global const float *x, ulong xo, __global float *xp, ulong xpo, int C, int H, int W,
                          int ph, int pw, int n0, int nb) {
    int hp = get_global_id(0), nc = get_global_id(1);
    int Hp = H + 2 * ph, Wp = W + 2 * pw;
    if (hp >= Hp) return;
    int nn = nc / C, c = nc - nn * C, h = hp - ph;
    __global float *out = xp + xpo + ((size_t)nc * Hp + hp) * Wp;
    if (h < 0 || h >= H) {
        for (int w = 0; w < Wp; w++) out[w] = 0.0f;
        return;
    }
    __global const float *in = x + xo + (((size_t)(n0 + nn) * C + c) * H + h) * W;
    for (int w = 0; w < pw; w++) out[w] = 0.0f;
    for (int w = 0; w < W; w++) out[pw + w] = in[w];
    for (int w = pw + W; w < Wp; w++) out[w] = 0.0f;
}

/* Stride-1 forward straight from the padded chunk (no unfolded matrix): one item per 16 output
 * channels x 16 consecutive output pixels of a row; per (c, r, s) one 16-wide load of the padded row
 * and 16 broadcast weights, the sum over (c, r, s) in order. Q % 16 == 0. Range (nb*P*Q/16, K/16). */
__kernel void vt_conv_direct16(__global const float *xp, ulong xpo, __global const float *w, ulong wo,
                               __global float *y, ulong yo, __global const float *bias, ulong bo, int has_bias,
                               int C, int K, int R, int S, int P, int Q, int Hp, int Wp, int n0, int nb, int kind,
                               float alpha) {
    int t = get_global_id(0), kb = get_global_id(1);
    int QB = Q / 16;
    if (t >= nb * P * QB) return;
    int qb = t % QB, np = t / QB, p = np % P, nn = np / P;
    int CRS = C * R * S;
    __global const float *wp = w + wo + (size_t)kb * 16 * CRS;
    __global const float *xb = xp + xpo + ((size_t)nn * C * Hp + p) * Wp + qb * 16;
    float16 acc[16];
    for (int k = 0; k < 16; k++) acc[k] = (float16)(0.0f);
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++) {
            __global const float *row = xb + ((size_t)c * Hp + r) * Wp;
            int j = (c * R + r) * S;
            for (int s = 0; s < S; s++) {
                float16 b = vload16(0, row + s);
                for (int k = 0; k < 16; k++) acc[k] = fma((float16)(wp[k * CRS + j + s]), b, acc[k]);
            }
        }
    __global float *out = y + yo + (((size_t)(n0 + nn) * K + kb * 16) * P + p) * Q + qb * 16;
    for (int k = 0; k < 16; k++) {
        float16 v = acc[k];
        if (has_bias) v += (float16)(bias[bo + kb * 16 + k]);
        float vs[16];
        vstore16(v, 0, vs);
        for (int q = 0; q < 16; q++) vs[q] = vt_act_apply(vs[q], kind, alpha);
        vstore16(vload16(0, vs), 0, out + (size_t)k * P * Q);
    }
}

/* Stride-1 weight gradient straight from the padded chunk and dy: one item per input channel c,
 * kernel row r and 4 output channels; 4 x S (S <= 5) vector sums over every output row segment of
 * 16 pixels (images n0.. in order), added across lanes at the end. Range (C*R, K/4). */
__kernel void vt_conv_dw_direct(__global const float *xp, ulong xpo, __global const float *dy, ulong dyo,
                                __global float *dw, ulong dwo, int C, int K, int R, int S, int P, int Q, int Hp, int Wp,
                                int n0, int nb, int accumulate) {
    int cr = get_global_id(0), k0 = get_global_id(1) * 4;
    if (cr >= C * R) return;
    int c = cr / R, r = cr - c * R;
    float16 acc[4][5];
    for (int k = 0; k < 4; k++)
        for (int s = 0; s < 5; s++) acc[k][s] = (float16)(0.0f);
    for (int nn = 0; nn < nb; nn++) {
        __global const float *xr = xp + xpo + (((size_t)nn * C + c) * Hp + r) * Wp;
        __global const float *g = dy + dyo + ((size_t)(n0 + nn) * K + k0) * P * Q;
        for (int p = 0; p < P; p++)
            for (int q0 = 0; q0 < Q; q0 += 16) {
                float16 a[4], b[5];
                for (int k = 0; k < 4; k++) a[k] = vload16(0, g + (size_t)k * P * Q + p * Q + q0);
                for (int s = 0; s < 5; s++) b[s] = s < S ? vload16(0, xr + (size_t)p * Wp + q0 + s) : (float16)(0.0f);
                for (int k = 0; k < 4; k++)
                    for (int s = 0; s < 5; s++) acc[k][s] = fma(a[k], b[s], acc[k][s]);
            }
    }
    for (int k = 0; k < 4; k++)
        for (int s = 0; s < S; s++) {
            float8 h = acc[k][s].lo + acc[k][s].hi;
            float4 q = h.lo + h.hi;
            float2 e = q.lo + q.hi;
            float v = e.x + e.y;
            __global float *o = dw + dwo + (((size_t)(k0 + k) * C + c) * R + r) * S + s;
            *o = accumulate ? *o + v : v;
        }
}
