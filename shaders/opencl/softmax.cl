/* Softmax cross-entropy (loss, metrics, gradient) and argmax. One work-item per row; the batch
 * mean is a fixed tree in one work-group, so the loss is bitwise reproducible.
 * Logits are [N,K] (S = 1) or [N,K,H,W] (S = H*W, classes on axis 1): row r = n*S + s holds the K
 * values (n*K + k)*S + s, stride S. Adjacent work-items take adjacent s, so their loads coalesce. */

/* The first element of row r (its class k is at [k * S]). */
size_t vt_ce_row(int r, int K, int S) {
    int n = r / S, s = r - n * S;
    return (size_t)n * K * S + (size_t)s;
}

/* rows[r] = loss of row r, rows[R + r] = 1 when its argmax is its label, rows[2R + r] = 1 when it
 * counts. ignore = 1: a label outside [0,K) makes the row count for nothing. */
__kernel void vt_ce_rows(__global const float *x, ulong xo, __global const int *lab, ulong lo, int N, int K, int S,
                         float e, int ignore, __global float *rows, ulong ro) {
    int n = get_global_id(0);
    if (n >= N) return;
    int y = lab[lo + n];
    if (ignore && (y < 0 || y >= K)) {
        rows[ro + n] = 0.0f;
        rows[ro + N + n] = 0.0f;
        rows[ro + 2 * (size_t)N + n] = 0.0f;
        return;
    }
    __global const float *r = x + xo + vt_ce_row(n, K, S);
    float mx = r[0];
    int am = 0;
    for (int k = 1; k < K; k++)
        if (r[(size_t)k * S] > mx) {
            mx = r[(size_t)k * S];
            am = k;
        }
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(r[(size_t)k * S] - mx);
    float lse = log(s);
    float nll = -(r[(size_t)y * S] - mx - lse);
    float mean_nll = 0.0f;
    for (int k = 0; k < K; k++) mean_nll += -(r[(size_t)k * S] - mx - lse);
    mean_nll /= (float)K;
    rows[ro + n] = (1.0f - e) * nll + e * mean_nll;
    rows[ro + N + n] = am == y ? 1.0f : 0.0f;
    rows[ro + 2 * (size_t)N + n] = 1.0f;
}

/* ignore = 0: every row counts, the divisor is N as before (no third sum); ignore = 1: the counted
 * rows are summed as integers (exact at any N). */
__kernel void vt_ce_reduce(__global const float *rows, ulong ro, int N, int ignore, __global float *loss, ulong lo,
                           __global float *metrics, ulong mo, int has_metrics) {
    __local float a[VT_RED_LS], b[VT_RED_LS];
    __local int cnt[VT_RED_LS];
    int lid = get_local_id(0);
    float sl = 0.0f, sc = 0.0f;
    int sn = 0;
    for (int i = lid; i < N; i += VT_RED_LS) {
        sl += rows[ro + i];
        sc += rows[ro + N + i];
        if (ignore) sn += rows[ro + 2 * (size_t)N + i] != 0.0f;
    }
    a[lid] = sl;
    b[lid] = sc;
    cnt[lid] = sn;
    for (int s = VT_RED_LS / 2; s > 0; s >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < s) {
            a[lid] += a[lid + s];
            b[lid] += b[lid + s];
            cnt[lid] += cnt[lid + s];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        int counted = ignore ? cnt[0] : N;
        loss[lo] = a[0] / (float)(counted > 0 ? counted : 1);
        if (has_metrics) {
            metrics[mo] += a[0];
            metrics[mo + 1] += b[0];
            metrics[mo + 2] += (float)counted;
        }
    }
}

/* ignore = 1: every class of an ignored row gets a zero gradient. */
__kernel void vt_ce_bwd(__global const float *x, ulong xo, __global const int *lab, ulong lo, __global float *dx,
                        ulong dxo, int N, int K, int S, float e, float scale, int ignore) {
    int n = get_global_id(0);
    if (n >= N) return;
    size_t base = vt_ce_row(n, K, S);
    __global const float *r = x + xo + base;
    __global float *d = dx + dxo + base;
    int y = lab[lo + n];
    if (ignore && (y < 0 || y >= K)) {
        for (int k = 0; k < K; k++) d[(size_t)k * S] = 0.0f;
        return;
    }
    float mx = r[0];
    for (int k = 1; k < K; k++) mx = r[(size_t)k * S] > mx ? r[(size_t)k * S] : mx;
    float s = 0.0f;
    for (int k = 0; k < K; k++) s += exp(r[(size_t)k * S] - mx);
    float off = e / (float)K;
    for (int k = 0; k < K; k++) {
        float target = (k == y ? 1.0f - e : 0.0f) + off;
        d[(size_t)k * S] = scale * (exp(r[(size_t)k * S] - mx) / s - target);
    }
}

__kernel void vt_argmax(__global const float *x, ulong xo, __global int *out, ulong oo, int N, int K, int S) {
    int n = get_global_id(0);
    if (n >= N) return;
    __global const float *r = x + xo + vt_ce_row(n, K, S);
    float mx = r[0];
    int am = 0;
    for (int k = 1; k < K; k++)
        if (r[(size_t)k * S] > mx) {
            mx = r[(size_t)k * S];
            am = k;
        }
    out[oo + n] = am;
}

/* CONFUSION: one item per element; integer atomics, so the counts are exact in any order. */
__kernel void vt_confusion(__global const int *pred, ulong po, __global const int *truth, ulong to, int M, int K,
                           __global int *counts, ulong co) {
    int i = get_global_id(0);
    if (i >= M) return;
    int t = truth[to + i], q = pred[po + i];
    t = t >= 0 && t < K ? t : K;
    q = q >= 0 && q < K ? q : K;
    atomic_inc(counts + co + (size_t)t * (K + 1) + q);
}
