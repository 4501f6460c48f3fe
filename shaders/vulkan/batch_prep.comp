// BATCH_PREP in one dispatch: gather the epoch's samples through perm, random crop with zero padding and
// horizontal flip from Philox (same words as the CPU), then normalise u8 pixels.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// The image set may be larger than maxStorageBufferRange, so it is bound as up to four consecutive
// chunks of u[8] bytes: bindings 0, 5, 6, 7.
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

// u: 0 B, 1 C, 2 H, 3 W, 4 pad, 5 flip, 6 salt, 7 D, 8 chunk bytes.  f: 0..3 mean, 4..7 std.
// One invocation per output row (b, c, h): the generator runs once per row, not once per pixel.
void main() {
    const uint B = pc.u[0], C = pc.u[1], H = pc.u[2], W = pc.u[3];
    const int pad = int(pc.u[4]);
    uint id = vt_flat_id();
    if (id >= B * C * H) return;
    uint b = id / (C * H), r = id - b * C * H;
    uint c = r / H, h = r - c * H;
    uint j = ctx.batch_start_lo + b;
    uint s = uint(perm[pc.off[2] + j]);
    if (r == 0u) yo[pc.off[4] + b] = labels[pc.off[1] + s];
    uvec4 rnd = vt_philox(ctx.seed, pc.u[6], uvec4(j, 0u, ctx.step_lo, ctx.step_hi));
    int oy = 0, ox = 0;
    if (pad > 0) {
        oy = int(rnd.x % uint(2 * pad + 1));
        ox = int(rnd.y % uint(2 * pad + 1));
    }
    bool flip = pc.u[5] != 0u && (rnd.z & 1u) != 0u;
    int sy = int(h) + oy - pad;
    float mean = pc.f[c], inv_std = pc.f[4u + c];
    uint out_row = pc.off[3] + id * W;
    bool row_ok = sy >= 0 && sy < int(H);
    uint src_row = ((s * C + c) * H + uint(max(sy, 0))) * W;
    for (uint w = 0u; w < W; w++) {
        int col = flip ? int(W) - 1 - int(w) : int(w);
        int sx = col + ox - pad;
        uint v = 0u;
        if (row_ok && sx >= 0 && sx < int(W)) v = pixel(src_row + uint(sx));
        xo[out_row + w] = (float(v) / 255.0 - mean) / inv_std;
    }
}
