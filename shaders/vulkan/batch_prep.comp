// BATCH_PREP: gather the epoch's samples through perm, crop Ho x Wo out of the zero-padded H x W image
// (random or centred) and flip horizontally from Philox (same words as the CPU), then normalise u8
// pixels. LABELS = 0: the images and i32 labels; LABELS = 1: a second dispatch for u8 masks [D,H,W],
// bound in the images' place, writing i32 [B,Ho,Wo] from the same source pixels (255 outside).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(constant_id = 3) const uint LABELS = 0;

// The image (or mask) set may be larger than maxStorageBufferRange, so it is bound as up to four
// consecutive chunks of u[8] bytes: bindings 0, 5, 6, 7.
layout(std430, set = 0, binding = 0) readonly buffer Img0 { uint img0[]; };
layout(std430, set = 0, binding = 5) readonly buffer Img1 { uint img1[]; };
layout(std430, set = 0, binding = 6) readonly buffer Img2 { uint img2[]; };
layout(std430, set = 0, binding = 7) readonly buffer Img3 { uint img3[]; };
layout(std430, set = 0, binding = 1) readonly buffer Labels { int labels[]; };
layout(std430, set = 0, binding = 2) readonly buffer Perm { int perm[]; };
layout(std430, set = 0, binding = 3) buffer X { float xo[]; };
layout(std430, set = 0, binding = 4) buffer Y { int yo[]; };

uint pixel(uint byte_index) {
    uint chunk = byte_index / pc.u[8];
    uint local = byte_index - chunk * pc.u[8];
    uint word;
    if (chunk == 0u) { local += pc.off[0]; word = img0[local >> 2]; }
    else if (chunk == 1u) { local += pc.off[5]; word = img1[local >> 2]; }
    else if (chunk == 2u) { local += pc.off[6]; word = img2[local >> 2]; }
    else { local += pc.off[7]; word = img3[local >> 2]; }
    return (word >> ((local & 3u) * 8u)) & 0xffu;
}

// u: 0 B, 1 C, 2 Ho, 3 Wo, 4 pad, 5 flip, 6 salt, 7 D, 8 chunk bytes, 9 H, 10 W, 11 center,
// 12 labels are masks (the first dispatch writes no y).  f: 0..3 mean, 4..7 std.
// One invocation per output row (b, c, h), or (b, h) for the masks: the generator runs once per row.
void main() {
    const uint B = pc.u[0], C = LABELS != 0u ? 1u : pc.u[1], Ho = pc.u[2], Wo = pc.u[3];
    const uint H = pc.u[9], W = pc.u[10];
    const int pad = int(pc.u[4]);
    uint id = vt_flat_id();
    if (id >= B * C * Ho) return;
    uint b = id / (C * Ho), r = id - b * C * Ho;
    uint c = r / Ho, h = r - c * Ho;
    uint j = ctx.batch_start_lo + b;
    uint s = uint(perm[pc.off[2] + j]);
    if (LABELS == 0u && r == 0u && pc.u[12] == 0u) yo[pc.off[4] + b] = labels[pc.off[1] + s];
    uvec4 rnd = vt_philox(ctx.seed, pc.u[6], uvec4(j, 0u, ctx.step_lo, ctx.step_hi));
    uint span_h = H - Ho + uint(2 * pad) + 1u, span_w = W - Wo + uint(2 * pad) + 1u;
    int oy, ox;
    if (pc.u[11] != 0u) {
        oy = int((span_h - 1u) / 2u);
        ox = int((span_w - 1u) / 2u);
    } else {
        oy = int(rnd.x % span_h);
        ox = int(rnd.y % span_w);
    }
    bool flip = pc.u[5] != 0u && (rnd.z & 1u) != 0u;
    int sy = int(h) + oy - pad;
    uint out_row = (LABELS != 0u ? pc.off[4] : pc.off[3]) + id * Wo;
    bool row_ok = sy >= 0 && sy < int(H);
    uint src_row = ((s * C + c) * H + uint(max(sy, 0))) * W;
    if (LABELS != 0u) {
        for (uint w = 0u; w < Wo; w++) {
            int sx = (flip ? int(Wo) - 1 - int(w) : int(w)) + ox - pad;
            yo[out_row + w] = row_ok && sx >= 0 && sx < int(W) ? int(pixel(src_row + uint(sx))) : 255;
        }
        return;
    }
    float mean = pc.f[c], inv_std = pc.f[4u + c];
    for (uint w = 0u; w < Wo; w++) {
        int col = flip ? int(Wo) - 1 - int(w) : int(w);
        int sx = col + ox - pad;
        uint v = 0u;
        if (row_ok && sx >= 0 && sx < int(W)) v = pixel(src_row + uint(sx));
        xo[out_row + w] = (float(v) / 255.0 - mean) / inv_std;
    }
}
