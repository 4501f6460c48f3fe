/* FLOP and byte counts of one execution of a node, for the benchmarks' GFLOP/s and GB/s figures. */
#include "vt/ops.h"

double vt_node_flops(const vt_node *n) {
    vt_tensor *const *s = n->src;
    vt_tensor *const *d = n->dst;
    switch (n->op) {
    case VT_OP_MATMUL: {
        int64_t K = n->p.matmul.trans_a ? s[0]->shape[0] : s[0]->shape[1];
        return 2.0 * (double)vt_tensor_nelem(d[0]) * (double)K;
    }
    case VT_OP_CONV2D: /* 2 * outputs * C*R*S */
        return 2.0 * (double)vt_tensor_nelem(d[0]) * (double)(s[1]->shape[1] * s[1]->shape[2] * s[1]->shape[3]);
    case VT_OP_CONV2D_BWD_DATA:
        return 2.0 * (double)vt_tensor_nelem(s[0]) * (double)(s[1]->shape[1] * s[1]->shape[2] * s[1]->shape[3]);
    case VT_OP_CONV2D_BWD_WEIGHT:
        return 2.0 * (double)vt_tensor_nelem(s[0]) * (double)(d[0]->shape[1] * d[0]->shape[2] * d[0]->shape[3]);
    case VT_OP_CONV2D_TRANSPOSE: /* 2 * inputs * K*R*S, as CONV2D_BWD_DATA with dy = x */
        return 2.0 * (double)vt_tensor_nelem(s[0]) * (double)(s[1]->shape[1] * s[1]->shape[2] * s[1]->shape[3]);
    case VT_OP_POOL2D: return (double)vt_tensor_nelem(d[0]) * n->p.pool2d.kh * n->p.pool2d.kw;
    case VT_OP_POOL2D_BWD: return (double)vt_tensor_nelem(s[0]) * n->p.pool2d.kh * n->p.pool2d.kw;
    case VT_OP_BATCHNORM:
    case VT_OP_BATCHNORM_BWD: return 8.0 * (double)vt_tensor_nelem(d[0]);
    /* the two halves of BATCHNORM (3 per element for the two passes, 4 for the normalisation) and of
     * BATCHNORM_BWD (4 for the sums, 5 for dx) */
    case VT_OP_BN_STATS: return 3.0 * (double)vt_tensor_nelem(s[0]);
    case VT_OP_BN_APPLY: return 4.0 * (double)vt_tensor_nelem(d[0]);
    case VT_OP_BN_BWD_STATS: return 4.0 * (double)vt_tensor_nelem(s[0]);
    case VT_OP_BN_BWD_APPLY: return 5.0 * (double)vt_tensor_nelem(d[0]);
    case VT_OP_SOFTMAX_CE:
    case VT_OP_SOFTMAX_CE_BWD: return 4.0 * (double)vt_tensor_nelem(s[0]);
    case VT_OP_CONFUSION: return (double)vt_tensor_nelem(s[0]);
    case VT_OP_SGD: return 6.0 * (double)vt_tensor_nelem(d[0]);
    case VT_OP_ADAM: return 14.0 * (double)vt_tensor_nelem(d[0]);
    default: {
        const vt_tensor *t = d[0] ? d[0] : s[0];
        return t ? (double)vt_tensor_nelem(t) : 0.0;
    }
    }
}

double vt_node_bytes(const vt_node *n) {
    double b = 0;
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (n->src[i]) b += (double)vt_tensor_nbytes(n->src[i]);
    for (int i = 0; i < VT_MAX_DST; i++)
        if (n->dst[i]) b += (double)vt_tensor_nbytes(n->dst[i]);
    if (n->op == VT_OP_BATCH_PREP) /* only B images are read, not the whole dataset */
        b = (double)vt_tensor_nbytes(n->dst[0]) * 1.25 + (double)vt_tensor_nbytes(n->dst[1]) * 3;
    return b;
}
