// SOFTMAX_CE (loss and accumulated metrics, one workgroup, fixed-order reduction) and SOFTMAX_CE_BWD
// (one invocation per row), with PyTorch's label smoothing.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint BWD = 0;

layout(std430, set = 0, binding = 0) readonly buffer Logits { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Labels { int y[]; };
layout(std430, set = 0, binding = 2) buffer Out { float o[]; };       // loss [1] or dlogits [N,K]
layout(std430, set = 0, binding = 3) buffer Metrics { float m[]; };
shared float part_loss[256];
shared float part_hit[256];

// u: 0 N, 1 K, 2 metrics present.  f: 0 label smoothing, 1 scale (backward).
void main() {
    const uint N = pc.u[0], K = pc.u[1];
    const float e = pc.f[0];
    if (BWD != 0u) {
        uint r = vt_flat_id();
        if (r >= N) return;
        uint row = pc.off[0] + r * K;
        float mx = x[row];
        for (uint k = 1u; k < K; k++) mx = max(mx, x[row + k]);
        float s = 0.0;
        for (uint k = 0u; k < K; k++) s += exp(x[row + k] - mx);
        int lab = y[pc.off[1] + r];
        for (uint k = 0u; k < K; k++) {
            float target = (int(k) == lab ? 1.0 - e : 0.0) + e / float(K);
            o[pc.off[2] + r * K + k] = pc.f[1] * (exp(x[row + k] - mx) / s - target);
        }
        return;
    }
    const uint t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    float loss = 0.0, hits = 0.0;
    for (uint r = t; r < N; r += L) {
        uint row = pc.off[0] + r * K;
        float mx = x[row];
        uint arg = 0u;
        float sx = x[row];
        for (uint k = 1u; k < K; k++) {
            float v = x[row + k];
            if (v > mx) {
                mx = v;
                arg = k;
            }
            sx += v;
        }
        float s = 0.0;
        for (uint k = 0u; k < K; k++) s += exp(x[row + k] - mx);
        float lse = mx + log(s);
        int lab = y[pc.off[1] + r];
        float nll = lse - x[row + uint(lab)];
        float mean_nll = lse - sx / float(K);
        loss += (1.0 - e) * nll + e * mean_nll;
        hits += int(arg) == lab ? 1.0 : 0.0;
    }
    part_loss[t] = loss;
    part_hit[t] = hits;
    barrier();
    if (t == 0u) {
        float tl = 0.0, th = 0.0;
        for (uint i = 0u; i < L; i++) {
            tl += part_loss[i];
            th += part_hit[i];
        }
        o[pc.off[2]] = tl / float(N);
        if (pc.u[2] != 0u) {
            m[pc.off[3]] += tl;
            m[pc.off[3] + 1u] += th;
            m[pc.off[3] + 2u] += float(N);
        }
    }
}
