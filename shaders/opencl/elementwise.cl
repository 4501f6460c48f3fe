/* Element-wise kernels: activations and their gradients, ADD, DROPOUT, the MATMUL epilogue
 * (bias + activation) and the SGD / Adam updates. One work-item per element. */

__kernel void vt_act_fwd(__global const float *x, ulong xo, __global float *y, ulong yo, int n, int kind,
                         float alpha) {
    int i = get_global_id(0);
    if (i >= n) return;
    y[yo + i] = vt_act_apply(x[xo + i], kind, alpha);
}

/* fwd is ACT_BWD's src1: the forward output y for relu, leaky_relu and selu, the forward input x
 * for gelu (vt/act_formulas.h says why). */
__kernel void vt_act_bwd(__global const float *dy, ulong dyo, __global const float *fwd, ulong fo,
                         __global float *dx, ulong dxo, int n, int kind, float alpha) {
    int i = get_global_id(0);
    if (i >= n) return;
    float g = dy[dyo + i], v = fwd[fo + i], r;
    if (kind == VT_ACT_RELU) r = VT_RELU_BWD(v, g);
    else if (kind == VT_ACT_LEAKY_RELU) r = VT_LEAKY_RELU_BWD(v, g, alpha);
    else if (kind == VT_ACT_SELU) r = VT_SELU_BWD(v, g);
    else if (kind == VT_ACT_GELU) r = VT_GELU_BWD(v, g);
    else r = g;
    dx[dxo + i] = r;
}

__kernel void vt_add(__global const float *a, ulong ao, __global const float *b, ulong bo, __global float *c,
                     ulong co, int n) {
    int i = get_global_id(0);
    if (i >= n) return;
    c[co + i] = a[ao + i] + b[bo + i];
}

/* Forward and backward share the mask: element i uses word i%4 of block i/4. */
__kernel void vt_dropout(__global const float *x, ulong xo, __global float *y, ulong yo, int n, float p,
                         uint seed, uint salt, uint step_lo, uint step_hi) {
    int i = get_global_id(0);
    if (i >= n) return;
    uint4 w = vt_philox(seed, salt, (uint)(i / 4), 0u, step_lo, step_hi);
    int keep = vt_u32_to_unit(vt_philox_word(w, i % 4)) >= p;
    y[yo + i] = keep ? x[xo + i] / (1.0f - p) : 0.0f;
}

/* C[M,N] = act(C + bias[col]); runs after the GEMM wrote alpha*AB + beta*C. One item per row. */
__kernel void vt_bias_act(__global float *c, ulong co, __global const float *bias, ulong bo, int has_bias, int rows,
                          int cols, int kind, float alpha) {
    int r = get_global_id(0);
    if (r >= rows) return;
    __global float *row = c + co + (size_t)r * cols;
    for (int j = 0; j < cols; j++) row[j] = vt_act_apply(has_bias ? row[j] + bias[bo + j] : row[j], kind, alpha);
}

/* One item per 16 elements (vector loads and stores; the arithmetic is per element, in the same
 * order as the scalar tail), which doubled the update's bandwidth on PoCL. */
__kernel void vt_sgd(__global const float *grad, ulong go, __global float *p, ulong po, __global float *buf,
                     ulong bo, int n, float lr, float momentum, float wd, int nesterov) {
    int i0 = get_global_id(0) * 16;
    if (i0 >= n) return;
    if (i0 + 16 <= n) {
        float16 w = vload16(0, p + po + i0);
        float16 g = vload16(0, grad + go + i0) + wd * w;
        if (momentum != 0.0f) {
            float16 b = momentum * vload16(0, buf + bo + i0) + g;
            vstore16(b, 0, buf + bo + i0);
            g = nesterov ? g + momentum * b : b;
        }
        vstore16(w - lr * g, 0, p + po + i0);
        return;
    }
    for (int i = i0; i < n; i++) {
        float w = p[po + i];
        float g = grad[go + i] + wd * w;
        if (momentum != 0.0f) {
            float b = momentum * buf[bo + i] + g;
            buf[bo + i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        p[po + i] = w - lr * g;
    }
}

/* ADAM as ops.h writes it, the per-step scalars (S, Q, D) from the host in double: fma() where torch's
 * CPU kernels fuse (add with alpha, lerp_, addcmul_), no other contraction, so that each operation
 * rounds as the CPU reference's does. */
#pragma OPENCL FP_CONTRACT OFF
__kernel void vt_adam(__global const float *grad, ulong go, __global float *p, ulong po, __global float *m,
                      ulong mo, __global float *v, ulong vo, int n, float c1, float c2, float b2, float eps,
                      float wd, int decoupled, float step_size, float sqrt_bc2, float decay) {
    int i = get_global_id(0);
    if (i >= n) return;
    float w = p[po + i], g = grad[go + i];
    if (decoupled)
        w *= decay;
    else
        g = fma(wd, w, g);
    float mm = m[mo + i], d = g - mm;
    mm = c1 < 0.5f ? fma(c1, d, mm) : fma(-(1.0f - c1), d, g);
    float vv = fma(c2 * g, g, v[vo + i] * b2);
    m[mo + i] = mm;
    v[vo + i] = vv;
    p[po + i] = w - (step_size * mm) / (sqrt(vv) / sqrt_bc2 + eps);
}
#pragma OPENCL FP_CONTRACT ON

/* NONFINITE: flag[0] = 1 if any of x[0..n) has an all-ones exponent (NaN or +-Inf), read as bits so
 * that no math flag can fold the test away. 16 elements per item; items that find one all store the
 * same 1 (a benign race); the flag is never cleared here. */
__kernel void vt_nonfinite(__global const uint *x, ulong xo, __global int *flag, ulong fo, int n) {
    int i0 = get_global_id(0) * 16;
    if (i0 >= n) return;
    int i1 = min(i0 + 16, n);
    uint found = 0;
    for (int i = i0; i < i1; i++) found |= (x[xo + i] & 0x7f800000u) == 0x7f800000u;
    if (found) flag[fo] = 1;
}

/* C[M,N] = act(alpha * A[M,K] B[N,K]^T + bias[col]) for few rows and long rows of K (a layer's
 * forward at batch size M): one item per 4x4 block of C, 16 vector sums of 16 k each, added across
 * lanes in a fixed tree at the end, then the epilogue. Both operands are read along K, contiguous,
 * so no transposed copy is made; a work-group is the column of blocks of 4 rows of B, which it reads
 * once into cache for every block of A. Range (M/4, N/4). */
__kernel void vt_gemm_nt4(__global const float *A, ulong ao, __global const float *B, ulong bo, __global float *C,
                          ulong co, __global const float *bias, ulong bio, int has_bias, int M, int N, int K,
                          float alpha, int kind, float act_alpha) {
    int m0 = get_global_id(0) * 4, n0 = get_global_id(1) * 4;
    if (m0 >= M || n0 >= N) return;
    __global const float *a = A + ao + (size_t)m0 * K, *b = B + bo + (size_t)n0 * K;
    float16 acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = (float16)(0.0f);
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        float16 av[4], bv[4];
        for (int i = 0; i < 4; i++) av[i] = vload16(0, a + (size_t)i * K + k);
        for (int j = 0; j < 4; j++) bv[j] = vload16(0, b + (size_t)j * K + k);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            float8 h = acc[i][j].lo + acc[i][j].hi;
            float4 q = h.lo + h.hi;
            float2 e = q.lo + q.hi;
            float s = e.x + e.y;
            for (int t = k; t < K; t++) s = fma(a[(size_t)i * K + t], b[(size_t)j * K + t], s);
            float v = alpha * s;
            if (has_bias) v += bias[bio + n0 + j];
            C[co + (size_t)(m0 + i) * N + n0 + j] = vt_act_apply(v, kind, act_alpha);
        }
}
