/* The list of ops, one line each: everything about an op that is a plain value lives here, and every
 * table indexed by op is generated from it (the vt_op enum, the names and operand counts of ops.c,
 * the conformance tolerances, the parameter groups of the JSON case files). The semantics of each op
 * are the comments of vt/ops.h, in the same order.
 *
 * X(ENUM, name, n_src, n_dst, params, nmse, atol, rtol, update)
 *   ENUM    the enum value without its prefix: VT_OP_##ENUM. The order is the enum's order (values
 *           are written into benchmark files and case names: append, never reorder).
 *   name    the op's name in case files, reports and the command line.
 *   n_src, n_dst  the most source / destination operands (optional ones may be NULL).
 *   params  the group of vt_op_params fields a case file may set (NONE: no parameters).
 *   nmse, atol, rtol, update  the conformance tolerances (vt_conf_tol, docs/conformance.md): atol is
 *           scaled by sqrt(reduction length); update > 0 bounds an optimizer's in-place update. */
#ifndef VT_OP_LIST_H
#define VT_OP_LIST_H

/* clang-format off */
#define VT_OP_LIST(X)                                                                   \
    X(MATMUL,            "matmul",            3, 1, MATMUL,   1e-9,  1e-5, 1e-4, 0)    \
    X(BIAS_GRAD,         "bias_grad",         1, 1, NONE,     1e-10, 1e-6, 1e-5, 0)    \
    X(CONV2D,            "conv2d",            3, 1, CONV,     1e-9,  1e-5, 1e-4, 0)    \
    X(CONV2D_BWD_DATA,   "conv2d_bwd_data",   2, 1, CONV,     1e-9,  1e-5, 1e-4, 0)    \
    X(CONV2D_BWD_WEIGHT, "conv2d_bwd_weight", 2, 1, CONV,     1e-9,  1e-5, 1e-4, 0)    \
    X(POOL2D,            "pool2d",            1, 1, POOL,     1e-12, 1e-6, 1e-6, 0)    \
    X(POOL2D_BWD,        "pool2d_bwd",        2, 1, POOL,     1e-12, 1e-6, 1e-6, 0)    \
    X(BATCHNORM,         "batchnorm",         5, 3, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(BATCHNORM_BWD,     "batchnorm_bwd",     5, 3, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(ACT,               "act",               1, 1, ACT,      1e-12, 1e-6, 1e-5, 0)    \
    X(ACT_BWD,           "act_bwd",           2, 1, ACT,      1e-12, 1e-6, 1e-5, 0)    \
    X(DROPOUT,           "dropout",           1, 1, DROPOUT,  1e-12, 1e-7, 1e-6, 0)    \
    X(DROPOUT_BWD,       "dropout_bwd",       1, 1, DROPOUT,  1e-12, 1e-7, 1e-6, 0)    \
    X(ADD,               "add",               2, 1, NONE,     0,     0,    0,    0)    \
    X(SOFTMAX_CE,        "softmax_ce",        2, 2, CE,       1e-10, 1e-6, 1e-5, 0)    \
    X(SOFTMAX_CE_BWD,    "softmax_ce_bwd",    2, 1, CE,       1e-10, 1e-7, 1e-5, 0)    \
    X(ARGMAX,            "argmax",            1, 1, NONE,     0,     0,    0,    0)    \
    X(UPSAMPLE,          "upsample",          1, 1, UPSAMPLE, 1e-12, 1e-6, 1e-5, 0)    \
    X(UPSAMPLE_BWD,      "upsample_bwd",      1, 1, UPSAMPLE, 1e-12, 1e-6, 1e-5, 0)    \
    X(BATCH_PREP,        "batch_prep",        3, 2, PREP,     1e-12, 1e-6, 1e-6, 0)    \
    X(SGD,               "sgd",               1, 2, SGD,      1e-12, 1e-7, 1e-6, 0)    \
    X(ADAM,              "adam",              1, 3, ADAM,     1e-12, 1e-7, 1e-5, 2e-6) \
    X(FILL,              "fill",              0, 1, FILL,     0,     0,    0,    0)    \
    X(NONFINITE,         "nonfinite",         1, 1, NONE,     0,     0,    0,    0)    \
    X(BN_STATS,          "bn_stats",          1, 1, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(BN_APPLY,          "bn_apply",          4, 3, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(BN_BWD_STATS,      "bn_bwd_stats",      3, 3, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(BN_BWD_APPLY,      "bn_bwd_apply",      5, 1, BN,       1e-9,  1e-5, 1e-4, 0)    \
    X(CONV2D_TRANSPOSE,  "conv2d_transpose",  3, 1, CONV,     1e-9,  1e-5, 1e-4, 0)    \
    X(CONFUSION,         "confusion",         2, 1, NONE,     0,     0,    0,    0)
/* clang-format on */

#endif
