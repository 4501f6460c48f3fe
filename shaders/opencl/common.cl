/* Shared helpers put in front of every vtrain OpenCL program (after vt/act_formulas.h): Philox4x32-10
 * (bit-identical to vt_philox in vt/rng.h) and the activations of ops.h. */
/* No a*b+c contraction: keeps results equal to the C reference, which is built without it. */
#pragma OPENCL FP_CONTRACT OFF

/* VT_ACT_* and VT_POOL_* values come from the host as -D options, so they follow the C enums. */

uint4 vt_philox(uint k0, uint k1, uint c0, uint c1, uint c2, uint c3) {
    for (int r = 0; r < 10; r++) {
        uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint4)(c0, c1, c2, c3);
}

uint vt_philox_word(uint4 v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

float vt_u32_to_unit(uint w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* The formulas are vt/act_formulas.h's macros (the host puts that file in front of this one). The fused
 * epilogues (MATMUL, CONV2D) never receive gelu: validation refuses it there. */
float vt_act_apply(float x, int kind, float alpha) {
    if (kind == VT_ACT_RELU) return VT_RELU_FWD(x);
    if (kind == VT_ACT_LEAKY_RELU) return VT_LEAKY_RELU_FWD(x, alpha);
    if (kind == VT_ACT_SELU) return VT_SELU_FWD(x);
    if (kind == VT_ACT_GELU) return VT_GELU_FWD(x);
    return x;
}
