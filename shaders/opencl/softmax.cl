/* Softmax cross-entropy (loss, metrics, gradient) and argmax. One work-item per row; the batch
 * mean is a fixed tree in one work-group, so the loss is bitwise reproducible. */

__kernel void vt_ce_rows(__global const float *x, ulong xo, __global const int *lab, ulong lo, int N, int K, float e,
                         __global float *rows, ulong ro) {
    int n = get_global_id(0);
    if (n >= N) return;
    __global const float *r = x + xo + (size_t)n * K;
    float mx = r[0];
    int am = 0;
    for (int k = 1; k < K; k++)
        if (r[k] > mx) {
            mx = r[k];
            am = k;
        }
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(r[k] - mx);
    float lse = log(s);
    int y = lab[lo + n];
    float nll = -(r[y] - mx - lse);
    float mean_nll = 0.0f;
    for (int k = 0; k < K; k++) mean_nll += -(r[k] - mx - lse);
    mean_nll /= (float)K;
    rows[ro + n] = (1.0f - e) * nll + e * mean_nll;
    rows[ro + N + n] = am == y ? 1.0f : 0.0f;
}

__kernel void vt_ce_reduce(__global const float *rows, ulong ro, int N, __global float *loss, ulong lo,
                           __global float *metrics, ulong mo, int has_metrics) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    int lid = get_local_id(0);
    float sl = 0.0f, sc = 0.0f;
    for (int i = lid; i < N; i += VT_RED_LS) {
        sl += rows[ro + i];
        sc += rows[ro + N + i];
    }
    a[lid] = sl;
    b[lid] = sc;
    for (int s = VT_RED_LS / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
            a[lid] += a[lid + s];
            b[lid] += b[lid + s];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        loss[lo] = a[0] / (float)N;
        if (has_metrics) {
            metrics[mo] += a[0];
            metrics[mo + 1] += b[0];
            metrics[mo + 2] += (float)N;
        }
    }
}

__kernel void vt_ce_bwd(__global const float *x, ulong xo, __global const int *lab, ulong lo, __global float *dx,
                        ulong dxo, int N, int K, float e, float scale) {
    int n = get_global_id(0);
    if (n >= N) return;
    __global const float *r = x + xo + (size_t)n * K;
    __global float *d = dx + dxo + (size_t)n * K;
    float mx = r[0];
    for (int k = 1; k < K; k++) mx = r[k] > mx ? r[k] : mx;
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(r[k] - mx);
    int y = lab[lo + n];
    float off = e / (float)K;
    for (int k = 0; k < K; k++) {
        float target = (k == y ? 1.0f - e : 0.0f) + off;
        d[k] = scale * (exp(r[k] - mx) / s - target);
    }
}

__kernel void vt_argmax(__global const float *x, ulong xo, __global int *out, ulong oo, int N, int K) {
    int n = get_global_id(0);
    if (n >= N) return;
    __global const float *r = x + xo + (size_t)n * K;
    float mx = r[0];
    int am = 0;
    for (int k = 1; k < K; k++)
        if (r[k] > mx) {
            mx = r[k];
            am = k;
        }
    out[oo + n] = am;
}
