// SOFTMAX_CE (loss and accumulated metrics) and SOFTMAX_CE_BWD (one invocation per row), with PyTorch's
// label smoothing and ignored labels. Logits [N,K] or [N,K,H,W]: row r = n*S + s reads its K classes at
// stride S from (n*K)*S + s (S = 1 for [N,K]).
// MODE 0: the loss of [N,K] in one workgroup, fixed-order reduction (each invocation strides over rows).
// MODE 1: the backward, one invocation per row.
// MODE 2, 3: the loss of [N,K,H,W], where N*H*W rows are too many for one workgroup (llvmpipe ends an
// invocation's loops after 65535 iterations in all): 2 writes one (loss, hits, counted) triple per
// workgroup of one row per invocation into a scratch buffer, 3 sums the triples in group order in one
// workgroup. Both orders are fixed, so results repeat.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint MODE = 0;

layout(std430, set = 0, binding = 0) readonly buffer Logits { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Labels { int y[]; };
layout(std430, set = 0, binding = 2) buffer Out { float o[]; };       // loss [1], dlogits, or MODE 2's triples
layout(std430, set = 0, binding = 3) buffer Metrics { float m[]; };
layout(std430, set = 0, binding = 4) readonly buffer Parts { float part[]; }; // MODE 3: MODE 2's triples
shared float part_loss[256];
shared float part_hit[256];
shared uint part_cnt[256];

// The loss of row r (first element at x[row], classes at stride S) and whether its argmax is the label.
void row_loss(uint row, uint K, uint S, int lab, float e, out float l, out float hit) {
    float mx = x[row];
    uint arg = 0u;
    float sx = x[row];
    for (uint k = 1u; k < K; k++) {
        float v = x[row + k * S];
        if (v > mx) {
            mx = v;
            arg = k;
        }
        sx += v;
    }
    float s = 0.0;
    for (uint k = 0u; k < K; k++) s += exp(x[row + k * S] - mx);
    float lse = mx + log(s);
    float nll = lse - x[row + uint(lab) * S];
    float mean_nll = lse - sx / float(K);
    l = (1.0 - e) * nll + e * mean_nll;
    hit = int(arg) == lab ? 1.0 : 0.0;
}

// The first element of row r.
uint row_start(uint r, uint K, uint S) {
    uint n = r / S;
    return pc.off[0] + n * K * S + (r - n * S);
}

// u: 0 rows (N*S), 1 K, 2 metrics present, 3 S, 4 ignore, 5 MODE 3: number of triples.
// f: 0 label smoothing, 1 scale (backward).
void main() {
    const uint N = pc.u[0], K = pc.u[1], S = pc.u[3];
    const bool ignore = pc.u[4] != 0u;
    const float e = pc.f[0];
    if (MODE == 1u) {
        uint r = vt_flat_id();
        if (r >= N) return;
        uint row = row_start(r, K, S);
        uint orow = row - pc.off[0] + pc.off[2];
        int lab = y[pc.off[1] + r];
        if (ignore && (lab < 0 || lab >= int(K))) {
            for (uint k = 0u; k < K; k++) o[orow + k * S] = 0.0;
            return;
        }
        float mx = x[row];
        for (uint k = 1u; k < K; k++) mx = max(mx, x[row + k * S]);
        float s = 0.0;
        for (uint k = 0u; k < K; k++) s += exp(x[row + k * S] - mx);
        for (uint k = 0u; k < K; k++) {
            float target = (int(k) == lab ? 1.0 - e : 0.0) + e / float(K);
            o[orow + k * S] = pc.f[1] * (exp(x[row + k * S] - mx) / s - target);
        }
        return;
    }
    const uint t = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    // the 2-D grid may hold more groups than there are triples: whole workgroups leave
    if (MODE == 2u && vt_flat_group() * L >= N) return;
    float loss = 0.0, hits = 0.0;
    uint cnt = 0u;
    if (MODE == 0u) {
        for (uint r = t; r < N; r += L) {
            int lab = y[pc.off[1] + r];
            if (ignore && (lab < 0 || lab >= int(K))) continue;
            float l, h;
            row_loss(pc.off[0] + r * K, K, 1u, lab, e, l, h);
            loss += l;
            hits += h;
            cnt++;
        }
    } else if (MODE == 2u) {
        uint r = vt_flat_group() * L + t;
        int lab = r < N ? y[pc.off[1] + r] : -1;
        if (r < N && !(ignore && (lab < 0 || lab >= int(K)))) {
            row_loss(row_start(r, K, S), K, S, lab, e, loss, hits);
            cnt = 1u;
        }
    } else {
        for (uint g = t; g < pc.u[5]; g += L) {
            uint p = pc.off[4] + 3u * g;
            loss += part[p];
            hits += part[p + 1u];
            cnt += uint(part[p + 2u]);
        }
    }
    part_loss[t] = loss;
    part_hit[t] = hits;
    part_cnt[t] = cnt;
    barrier();
    if (t == 0u) {
        float tl = 0.0, th = 0.0;
        uint tc = 0u;
        for (uint i = 0u; i < L; i++) {
            tl += part_loss[i];
            th += part_hit[i];
            tc += part_cnt[i];
        }
        if (MODE == 2u) {
            uint p = pc.off[2] + 3u * vt_flat_group();
            o[p] = tl;
            o[p + 1u] = th;
            o[p + 2u] = float(tc);
            return;
        }
        o[pc.off[2]] = tl / float(max(tc, 1u));
        if (pc.u[2] != 0u) {
            m[pc.off[3]] += tl;
            m[pc.off[3] + 1u] += th;
            m[pc.off[3] + 2u] += float(tc);
        }
    }
}
