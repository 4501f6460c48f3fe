/* The builders of the built-in conformance cases, one per op family: odd shapes, the practice's real
 * shapes, NaN/Inf where an op must propagate them (the list itself: conformance_cases.c). */
#include "conformance_cases.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builders, one per op family ---- */

void vt_cc_matmul(int64_t M, int64_t K, int64_t N, int ta, int tb, float alpha, float beta, int bias, vt_act act,
                  float act_alpha, const char *tag) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_MATMUL, "matmul %s%lldx%lldx%lld%s%s a%g b%g%s%s%s", tag, (long long)M,
                                     (long long)K, (long long)N, ta ? " tA" : "", tb ? " tB" : "", (double)alpha,
                                     (double)beta, bias ? " bias" : "", act ? " " : "", vt_cc_act_tag(act));
    if (!c) return;
    c->p.matmul = (vt_matmul_params){ta, tb, alpha, beta, act, act_alpha};
    if (ta) vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, K, M, 1, 1);
    else vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, M, K, 1, 1);
    if (tb) vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, N, K, 1, 1);
    else vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, K, N, 1, 1);
    if (bias) vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, N, 1, 1, 1);
    vt_cc_out(&c->dst[0], VT_F32, 2, M, N, 1, 1);
    if (beta != 0.0f) c->dst[0].init = VT_CONF_INIT_UNIFORM, c->dst[0].lo = -1, c->dst[0].hi = 1;
    c->red = (double)K;
}

void vt_cc_bias_grad(int ndim, int64_t n, int64_t ch, int64_t h, int64_t w) {
    vt_conf_case *c =
        vt_cc_add_case(VT_OP_BIAS_GRAD, ndim == 2 ? "bias_grad %lldx%lld" : "bias_grad %lldx%lldx%lldx%lld",
                       (long long)n, (long long)ch, (long long)h, (long long)w);
    if (!c) return;
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, n, ch, h, w);
    vt_cc_out(&c->dst[0], VT_F32, 1, ch, 1, 1, 1);
    c->red = (double)(n * h * w);
}

int64_t vt_cc_conv_out(int64_t in, int64_t k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* kind 0: forward, 1: backward data, 2: backward weight */
void vt_cc_conv(int kind, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw,
                int ph, int pw, int bias, vt_act act, float act_alpha, const char *tag) {
    static const vt_op ops[3] = {VT_OP_CONV2D, VT_OP_CONV2D_BWD_DATA, VT_OP_CONV2D_BWD_WEIGHT};
    int64_t P = vt_cc_conv_out(H, R, sh, ph), Q = vt_cc_conv_out(W, S, sw, pw);
    vt_conf_case *c = vt_cc_add_case(ops[kind], "%s %sx%lldx%lldx%lldx%lld w%lldx%lldx%lldx%lld s%d,%d p%d,%d%s%s%s",
                                     vt_op_name(ops[kind]), tag, (long long)N, (long long)C, (long long)H, (long long)W,
                                     (long long)K, (long long)C, (long long)R, (long long)S, sh, sw, ph, pw,
                                     bias ? " bias" : "", act ? " " : "", vt_cc_act_tag(act));
    if (!c) return;
    c->p.conv2d = (vt_conv2d_params){sh, sw, ph, pw, act, act_alpha};
    if (kind == 0) {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, K, C, R, S);
        if (bias) vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, K, 1, 1, 1);
        vt_cc_out(&c->dst[0], VT_F32, 4, N, K, P, Q);
        c->red = (double)(C * R * S);
    } else if (kind == 1) {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, K, P, Q);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, K, C, R, S);
        vt_cc_out(&c->dst[0], VT_F32, 4, N, C, H, W);
        c->red = (double)(K * R * S);
    } else {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, K, P, Q);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        vt_cc_out(&c->dst[0], VT_F32, 4, K, C, R, S);
        c->red = (double)(N * P * Q);
    }
}

/* CONV2D_TRANSPOSE: x [N,C,H,W], w [C,K,R,S], y [N,K,P,Q] with P = (H-1)*sh - 2*ph + R + oph, oph in
 * [0, sh) (PyTorch's output_padding). naninf: NaN and +-Inf in x, which spread along its scatter. */
void vt_cc_conv_t(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw, int ph,
                  int pw, int oph, int opw, int bias, int naninf, const char *tag) {
    int64_t P = (H - 1) * sh - 2 * ph + R + oph, Q = (W - 1) * sw - 2 * pw + S + opw;
    vt_conf_case *c =
        vt_cc_add_case(VT_OP_CONV2D_TRANSPOSE,
                       "conv2d_transpose %sx%lldx%lldx%lldx%lld w%lldx%lldx%lldx%lld s%d,%d p%d,%d op%d,%d%s%s", tag,
                       (long long)N, (long long)C, (long long)H, (long long)W, (long long)C, (long long)K, (long long)R,
                       (long long)S, sh, sw, ph, pw, oph, opw, bias ? " bias" : "", naninf ? " naninf" : "");
    if (!c) return;
    c->p.conv2d = (vt_conv2d_params){sh, sw, ph, pw, VT_ACT_NONE, 0};
    vt_cc_put(&c->src[0], VT_F32, naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
    vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, C, K, R, S);
    if (bias) vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, K, 1, 1, 1);
    vt_cc_out(&c->dst[0], VT_F32, 4, N, K, P, Q);
    c->red = (double)(C * ((R + sh - 1) / sh) * ((S + sw - 1) / sw)); /* the terms of one output element */
}

void vt_cc_conv_all(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw, int ph,
                    int pw, const char *tag) {
    vt_cc_conv(0, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
    vt_cc_conv(0, N, C, H, W, K, R, S, sh, sw, ph, pw, 1, VT_ACT_RELU, 0, tag);
    vt_cc_conv(1, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
    vt_cc_conv(2, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
}

void vt_cc_pool(int bwd, vt_pool_kind kind, int64_t N, int64_t C, int64_t H, int64_t W, int kh, int kw, int sh, int sw,
                int ph, int pw, vt_conf_init xinit, const char *tag) {
    vt_op op = bwd ? VT_OP_POOL2D_BWD : VT_OP_POOL2D;
    int64_t P = vt_cc_conv_out(H, kh, sh, ph), Q = vt_cc_conv_out(W, kw, sw, pw);
    vt_conf_case *c = vt_cc_add_case(op, "%s %s %s%lldx%lldx%lldx%lld k%dx%d s%d,%d p%d,%d%s", vt_op_name(op),
                                     kind == VT_POOL_MAX ? "max" : "avg", tag, (long long)N, (long long)C, (long long)H,
                                     (long long)W, kh, kw, sh, sw, ph, pw, xinit == VT_CONF_INIT_INTS ? " ties" : "");
    if (!c) return;
    c->p.pool2d = (vt_pool2d_params){kind, kh, kw, sh, sw, ph, pw};
    vt_conf_operand *x = bwd ? &c->src[1] : &c->src[0];
    if (xinit == VT_CONF_INIT_INTS) vt_cc_put(x, VT_F32, xinit, -3, 3, 4, N, C, H, W);
    else if (xinit == VT_CONF_INIT_DISTINCT) vt_cc_put(x, VT_F32, xinit, -5, 0.01f, 4, N, C, H, W);
    else vt_cc_put(x, VT_F32, xinit, -1, 1, 4, N, C, H, W);
    if (bwd) {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, P, Q);
        vt_cc_out(&c->dst[0], VT_F32, 4, N, C, H, W);
    } else {
        vt_cc_out(&c->dst[0], VT_F32, 4, N, C, P, Q);
    }
    c->red = (double)(kh * kw);
}

void vt_cc_batchnorm(int bwd, int training, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int save_out,
                     const char *tag) {
    vt_op op = bwd ? VT_OP_BATCHNORM_BWD : VT_OP_BATCHNORM;
    const char *mode = training ? "train" : (bwd ? "frozen" : "eval");
    char nm[96];
    if (ndim == 4)
        snprintf(nm, sizeof nm, "%s %s 2d %s%lldx%lldx%lldx%lld%s", vt_op_name(op), mode, tag, (long long)N,
                 (long long)C, (long long)H, (long long)W, save_out ? "" : " no-save");
    else
        snprintf(nm, sizeof nm, "%s %s 1d %s%lldx%lld%s", vt_op_name(op), mode, tag, (long long)N, (long long)C,
                 save_out ? "" : " no-save");
    vt_conf_case *c = vt_cc_add_case(op, "%s", nm);
    if (!c) return;
    c->p.bn = (vt_batchnorm_params){training, 0.1f, 1e-5f, 0};
    int64_t M = N * (ndim == 4 ? H * W : 1);
    c->red = (double)M;
    if (!bwd) {
        /* an offset mean exposes E[x^2]-E[x]^2 variance formulas */
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, 0.1f, 0.5f, 1, C, 1, 1, 1);
        c->src[3].is_output = c->src[4].is_output = training;
        vt_cc_out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        if (save_out) {
            vt_cc_out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
            vt_cc_out(&c->dst[2], VT_F32, 1, C, 1, 1, 1);
        }
    } else {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, N, C, H, W);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 1.5f, 2.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
        vt_cc_out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        vt_cc_out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
        vt_cc_out(&c->dst[2], VT_F32, 1, C, 1, 1, 1);
    }
}

/* The synchronised batch norm's four ops. ranks > 1 sets count = ranks * N*H*W, as one rank of
 * several sees it (the statistics and sums then stand for the whole batch's). naninf: NaN/Inf in x
 * (BN_APPLY, BN_BWD_APPLY: elementwise) or one NaN in x / dy (BN_STATS, BN_BWD_STATS: its channel). */
void vt_cc_sync_bn(vt_op op, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int ranks, int running, int naninf,
                   const char *tag) {
    int64_t M = N * (ndim == 4 ? H * W : 1);
    char shp[64];
    if (ndim == 4)
        snprintf(shp, sizeof shp, "2d %s%lldx%lldx%lldx%lld", tag, (long long)N, (long long)C, (long long)H,
                 (long long)W);
    else snprintf(shp, sizeof shp, "1d %s%lldx%lld", tag, (long long)N, (long long)C);
    const char *opt =
        running ? "" : (op == VT_OP_BN_APPLY ? " no-running" : (op == VT_OP_BN_BWD_STATS ? " frozen" : ""));
    vt_conf_case *c = vt_cc_add_case(op, "%s %s ranks%d%s%s", vt_op_name(op), shp, ranks, opt, naninf ? " naninf" : "");
    if (!c) return;
    c->p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, M * ranks};
    c->red = (double)M;
    /* x around an offset mean (it exposes E[x^2]-E[x]^2 variance formulas); stats are a plausible
     * [mean; var] of such an x, sums any values */
    vt_conf_init nan_one = naninf ? VT_CONF_INIT_MARKED : VT_CONF_INIT_UNIFORM;
    vt_conf_init nan_all = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    switch (op) {
    case VT_OP_BN_STATS:
        vt_cc_put(&c->src[0], VT_F32, nan_one, 1.0f, 3.0f, ndim, N, C, H, W);
        c->src[0].mark_at = M > 2 ? 2 : 0;
        c->src[0].mark = NAN;
        vt_cc_out(&c->dst[0], VT_F32, 2, 2, C, 1, 1);
        break;
    case VT_OP_BN_APPLY:
        vt_cc_put(&c->src[0], VT_F32, nan_all, 1.0f, 3.0f, ndim, N, C, H, W);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        vt_cc_out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        if (running) {
            vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
            vt_cc_put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.1f, 0.5f, 1, C, 1, 1, 1);
            c->dst[1].is_output = c->dst[2].is_output = 1;
        }
        break;
    case VT_OP_BN_BWD_STATS:
        vt_cc_put(&c->src[0], VT_F32, nan_one, -1, 1, ndim, N, C, H, W);
        c->src[0].mark_at = -1;
        c->src[0].mark = NAN;
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        if (running) {
            vt_cc_out(&c->dst[0], VT_F32, 1, C, 1, 1, 1);
            vt_cc_out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
        }
        vt_cc_out(&c->dst[2], VT_F32, 2, 2, C, 1, 1);
        break;
    default: /* BN_BWD_APPLY */
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, N, C, H, W);
        vt_cc_put(&c->src[1], VT_F32, nan_all, 1.0f, 3.0f, ndim, N, C, H, W);
        vt_cc_put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        vt_cc_put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        vt_cc_put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, -3.0f, 3.0f, 2, 2, C, 1, 1);
        vt_cc_out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        break;
    }
}

void vt_cc_act(int bwd, vt_act kind, float alpha, int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2,
               int64_t d3) {
    vt_op op = bwd ? VT_OP_ACT_BWD : VT_OP_ACT;
    char kn[32];
    if (kind == VT_ACT_LEAKY_RELU) snprintf(kn, sizeof kn, "%s a%g", vt_act_name(kind), (double)alpha);
    else snprintf(kn, sizeof kn, "%s", vt_act_name(kind));
    vt_conf_case *c = vt_cc_add_case(op, "%s %s %lldx%lldx%lldx%lld%s", vt_op_name(op), kn, (long long)d0,
                                     (long long)d1, (long long)d2, (long long)d3, naninf ? " naninf" : "");
    if (!c) return;
    c->p.act = (vt_act_params){kind, alpha};
    vt_conf_init init = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    if (!bwd) {
        vt_cc_put(&c->src[0], VT_F32, init, -3, 3, ndim, d0, d1, d2, d3);
    } else {
        vt_cc_put(&c->src[0], VT_F32, init, -1, 1, ndim, d0, d1, d2, d3);
        /* src1 is the forward output y (selu never goes below -scale*A), but gelu's is the input x:
         * both sides of gelu's minimum at -0.75 and its tails */
        float lo = kind == VT_ACT_SELU ? -1.7f : (kind == VT_ACT_GELU ? -5.0f : -2.0f);
        vt_cc_put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, lo, kind == VT_ACT_GELU ? 5.0f : 2.0f, ndim, d0, d1, d2,
                  d3);
    }
    vt_cc_out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

void vt_cc_dropout(int bwd, float p, uint32_t salt, uint64_t step, int naninf, int ndim, int64_t d0, int64_t d1,
                   int64_t d2, int64_t d3) {
    vt_op op = bwd ? VT_OP_DROPOUT_BWD : VT_OP_DROPOUT;
    vt_conf_case *c = vt_cc_add_case(op, "%s p%g salt%u step%llu %lldx%lldx%lldx%lld%s", vt_op_name(op), (double)p,
                                     salt, (unsigned long long)step, (long long)d0, (long long)d1, (long long)d2,
                                     (long long)d3, naninf ? " naninf" : "");
    if (!c) return;
    c->p.dropout = (vt_dropout_params){p, salt};
    c->ctx.step = step;
    vt_cc_put(&c->src[0], VT_F32, naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM, -2, 2, ndim, d0, d1, d2, d3);
    vt_cc_out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

void vt_cc_add(int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_ADD, "add %lldx%lldx%lldx%lld%s", (long long)d0, (long long)d1,
                                     (long long)d2, (long long)d3, naninf ? " naninf" : "");
    if (!c) return;
    vt_conf_init init = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    vt_cc_put(&c->src[0], VT_F32, init, -2, 2, ndim, d0, d1, d2, d3);
    vt_cc_put(&c->src[1], VT_F32, init, -2, 2, ndim, d0, d1, d2, d3);
    vt_cc_out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

void vt_cc_softmax_ce(int bwd, int64_t N, int64_t K, float smoothing, int metrics, float range, int ties) {
    vt_op op = bwd ? VT_OP_SOFTMAX_CE_BWD : VT_OP_SOFTMAX_CE;
    vt_conf_case *c = vt_cc_add_case(op, "%s %lldx%lld ls%g range%g%s%s", vt_op_name(op), (long long)N, (long long)K,
                                     (double)smoothing, (double)range, metrics ? " metrics" : "", ties ? " ties" : "");
    if (!c) return;
    c->p.ce = (vt_softmax_ce_params){.label_smoothing = smoothing, .scale = bwd ? 1.0f / (float)N : 1.0f};
    if (ties) vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_INTS, -2, 2, 2, N, K, 1, 1);
    else vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -range, range, 2, N, K, 1, 1);
    vt_cc_put(&c->src[1], VT_I32, VT_CONF_INIT_INDEX, 0, (float)K, 1, N, 1, 1, 1);
    if (bwd) {
        vt_cc_out(&c->dst[0], VT_F32, 2, N, K, 1, 1);
        c->red = (double)K;
    } else {
        vt_cc_out(&c->dst[0], VT_F32, 1, 1, 1, 1, 1);
        if (metrics) {
            /* metrics accumulate: start from non-zero values */
            vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_INTS, 0, 9, 1, 3, 1, 1, 1);
            c->dst[1].is_output = 1;
        }
        c->red = (double)(N * K);
    }
}

void vt_cc_argmax(int64_t N, int64_t K, int ties) {
    vt_conf_case *c =
        vt_cc_add_case(VT_OP_ARGMAX, "argmax %lldx%lld%s", (long long)N, (long long)K, ties ? " ties" : "");
    if (!c) return;
    if (ties) vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_INTS, -2, 2, 2, N, K, 1, 1);
    else vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -5, 5, 2, N, K, 1, 1);
    vt_cc_out(&c->dst[0], VT_I32, 1, N, 1, 1, 1);
}

/* SOFTMAX_CE(_BWD) per pixel (ndim 4: logits [N,K,H,W], labels [N,H,W]) or per row (ndim 2: [N,K],
 * [N]); ignore = 1: a fraction `ignored` of the labels out of [0,K) (255, K, -1, INT32_MIN), which the
 * op must leave out of the loss, the gradient and the count. The backward's scale is the trainer's,
 * 1/(N*H*W). ignored = 1: every label ignored (loss 0, metrics unchanged). */
void vt_cc_softmax_ce_px(int bwd, int ndim, int64_t N, int64_t K, int64_t H, int64_t W, float smoothing, int ignore,
                         float ignored, int metrics) {
    vt_op op = bwd ? VT_OP_SOFTMAX_CE_BWD : VT_OP_SOFTMAX_CE;
    int64_t S = ndim == 4 ? H * W : 1;
    char shp[64];
    if (ndim == 4)
        snprintf(shp, sizeof shp, "%lldx%lldx%lldx%lld", (long long)N, (long long)K, (long long)H, (long long)W);
    else snprintf(shp, sizeof shp, "%lldx%lld", (long long)N, (long long)K);
    vt_conf_case *c = vt_cc_add_case(op, "%s %s ls%g ignore%d ignored%g%s", vt_op_name(op), shp, (double)smoothing,
                                     ignore, (double)ignored, metrics ? " metrics" : "");
    if (!c) return;
    c->p.ce = (vt_softmax_ce_params){smoothing, bwd ? 1.0f / (float)(N * S) : 1.0f, ignore};
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -4, 4, ndim, N, K, H, W);
    /* without ignore every label must be a class: none out of range */
    vt_conf_init li = ignore ? VT_CONF_INIT_LABELS : VT_CONF_INIT_INDEX;
    if (ndim == 4) vt_cc_put(&c->src[1], VT_I32, li, ignored, (float)K, 3, N, H, W, 1);
    else vt_cc_put(&c->src[1], VT_I32, li, ignored, (float)K, 1, N, 1, 1, 1);
    if (bwd) {
        vt_cc_out(&c->dst[0], VT_F32, ndim, N, K, H, W);
        c->red = (double)K;
    } else {
        vt_cc_out(&c->dst[0], VT_F32, 1, 1, 1, 1, 1);
        if (metrics) {
            /* metrics accumulate: start from non-zero values */
            vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_INTS, 1, 9, 1, 3, 1, 1, 1);
            c->dst[1].is_output = 1;
        }
        c->red = (double)(N * S * K);
    }
}

/* ARGMAX over axis 1 of [N,K,H,W] (stride H*W between classes); ties: small integers, the first wins. */
void vt_cc_argmax_px(int64_t N, int64_t K, int64_t H, int64_t W, int ties) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_ARGMAX, "argmax %lldx%lldx%lldx%lld%s", (long long)N, (long long)K,
                                     (long long)H, (long long)W, ties ? " ties" : "");
    if (!c) return;
    if (ties) vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_INTS, -1, 1, 4, N, K, H, W);
    else vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -5, 5, 4, N, K, H, W);
    vt_cc_out(&c->dst[0], VT_I32, 3, N, H, W, 1);
}

/* CONFUSION of pred [N,H,W] and truth [N*H*W] (any shapes of the same size) into counts [K+1,K+1]:
 * values in [0, vals) with a fraction `outside` out of range on both sides (vals < K crowds the counts
 * into few bins: the GPUs' atomics contend). start: counts accumulate onto non-zero values. Exact. */
void vt_cc_confusion(int64_t K, int64_t N, int64_t H, int64_t W, int64_t vals, float outside, int start,
                     const char *tag) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_CONFUSION, "confusion %sK%lld %lldx%lldx%lld vals%lld outside%g%s", tag,
                                     (long long)K, (long long)N, (long long)H, (long long)W, (long long)vals,
                                     (double)outside, start ? " accumulate" : "");
    if (!c) return;
    vt_cc_put(&c->src[0], VT_I32, VT_CONF_INIT_LABELS, outside, (float)vals, 3, N, H, W, 1);
    vt_cc_put(&c->src[1], VT_I32, VT_CONF_INIT_LABELS, outside, (float)vals, 1, N * H * W, 1, 1, 1);
    if (start) vt_cc_put(&c->dst[0], VT_I32, VT_CONF_INIT_INDEX, 0, 100000, 2, K + 1, K + 1, 1, 1);
    else vt_cc_put(&c->dst[0], VT_I32, VT_CONF_INIT_CONST, 0, 0, 2, K + 1, K + 1, 1, 1);
    c->dst[0].is_output = 1;
}

void vt_cc_upsample(int bwd, vt_upsample_mode mode, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
                    int64_t Wo) {
    vt_op op = bwd ? VT_OP_UPSAMPLE_BWD : VT_OP_UPSAMPLE;
    vt_conf_case *c = vt_cc_add_case(op, "%s %s %lldx%lldx%lldx%lld to %lldx%lld", vt_op_name(op),
                                     mode == VT_UPSAMPLE_NEAREST ? "nearest" : "bilinear", (long long)N, (long long)C,
                                     (long long)H, (long long)W, (long long)Ho, (long long)Wo);
    if (!c) return;
    c->p.upsample.mode = mode;
    if (!bwd) {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        vt_cc_out(&c->dst[0], VT_F32, 4, N, C, Ho, Wo);
    } else {
        vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, Ho, Wo);
        vt_cc_out(&c->dst[0], VT_F32, 4, N, C, H, W);
        c->red = 4.0 * (double)((Ho + H - 1) / H) * (double)((Wo + W - 1) / W);
    }
}

void vt_cc_batch_prep(int64_t D, int64_t C, int64_t H, int64_t W, int64_t B, int64_t start, int pad, int flip,
                      uint64_t step) {
    vt_conf_case *c = vt_cc_add_case(
        VT_OP_BATCH_PREP, "batch_prep D%lld %lldx%lldx%lldx%lld start%lld pad%d flip%d step%llu", (long long)D,
        (long long)B, (long long)C, (long long)H, (long long)W, (long long)start, pad, flip, (unsigned long long)step);
    if (!c) return;
    vt_batch_prep_params *p = &c->p.prep;
    p->pad = pad;
    p->flip = flip;
    p->salt = 77;
    static const float mean[4] = {0.5071f, 0.4865f, 0.4409f, 0.5f}, sd[4] = {0.2673f, 0.2564f, 0.2762f, 0.25f};
    for (int i = 0; i < 4; i++) p->mean[i] = mean[i], p->std[i] = sd[i];
    c->ctx.step = step;
    c->ctx.batch_start = start;
    vt_cc_put(&c->src[0], VT_U8, VT_CONF_INIT_BYTES, 0, 255, 4, D, C, H, W);
    vt_cc_put(&c->src[1], VT_I32, VT_CONF_INIT_INDEX, 0, 100, 1, D, 1, 1, 1);
    vt_cc_put(&c->src[2], VT_I32, VT_CONF_INIT_PERM, 0, 0, 1, D, 1, 1, 1);
    vt_cc_out(&c->dst[0], VT_F32, 4, B, C, H, W);
    vt_cc_out(&c->dst[1], VT_I32, 1, B, 1, 1, 1);
}

/* BATCH_PREP of a crop Ho x Wo of the images (drawn, or centred: center = 1) with segmentation masks
 * (masks = 1: u8 [D,H,W] in, i32 [B,Ho,Wo] out, 255 outside the image) or one i32 label per image. */
void vt_cc_batch_prep_crop(int64_t D, int64_t C, int64_t H, int64_t W, int64_t B, int64_t Ho, int64_t Wo, int64_t start,
                           int pad, int flip, int center, int masks, uint64_t step) {
    vt_conf_case *c = vt_cc_add_case(
        VT_OP_BATCH_PREP,
        "batch_prep D%lld %lldx%lldx%lldx%lld to %lldx%lld start%lld pad%d flip%d center%d step%llu%s", (long long)D,
        (long long)B, (long long)C, (long long)H, (long long)W, (long long)Ho, (long long)Wo, (long long)start, pad,
        flip, center, (unsigned long long)step, masks ? " masks" : "");
    if (!c) return;
    vt_batch_prep_params *p = &c->p.prep;
    p->pad = pad;
    p->flip = flip;
    p->center = center;
    p->salt = 91;
    static const float mean[4] = {0.485f, 0.456f, 0.406f, 0.5f}, sd[4] = {0.229f, 0.224f, 0.225f, 0.25f};
    for (int i = 0; i < 4; i++) p->mean[i] = mean[i], p->std[i] = sd[i];
    c->ctx.step = step;
    c->ctx.batch_start = start;
    vt_cc_put(&c->src[0], VT_U8, VT_CONF_INIT_BYTES, 0, 255, 4, D, C, H, W);
    if (masks) vt_cc_put(&c->src[1], VT_U8, VT_CONF_INIT_BYTES, 0, 255, 3, D, H, W, 1);
    else vt_cc_put(&c->src[1], VT_I32, VT_CONF_INIT_INDEX, 0, 100, 1, D, 1, 1, 1);
    vt_cc_put(&c->src[2], VT_I32, VT_CONF_INIT_PERM, 0, 0, 1, D, 1, 1, 1);
    vt_cc_out(&c->dst[0], VT_F32, 4, B, C, Ho, Wo);
    if (masks) vt_cc_out(&c->dst[1], VT_I32, 3, B, Ho, Wo, 1);
    else vt_cc_out(&c->dst[1], VT_I32, 1, B, 1, 1, 1);
}

void vt_cc_sgd(float momentum, float wd, int nesterov, float lr_mult, int64_t n0, int64_t n1) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_SGD, "sgd m%g wd%g%s lrx%g %lldx%lld", (double)momentum, (double)wd,
                                     nesterov ? " nesterov" : "", (double)lr_mult, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.sgd = (vt_sgd_params){lr_mult, momentum, wd, nesterov};
    c->ctx.lr = 0.05f;
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    c->dst[0].is_output = 1;
    if (momentum != 0.0f) {
        vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 2, n0, n1, 1, 1);
        c->dst[1].is_output = 1;
    }
}

void vt_cc_adam(int decoupled, double wd, uint64_t step, int64_t step_offset, int64_t n0, int64_t n1) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_ADAM, "%s wd%g step%llu off%lld %lldx%lld", decoupled ? "adamw" : "adam", wd,
                                     (unsigned long long)step, (long long)step_offset, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.adam = (vt_adam_params){1.0f, 0.9, 0.999, 1e-8, wd, decoupled, step_offset};
    c->ctx.lr = 1e-3f;
    c->ctx.step = step;
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.1f, 0.1f, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.0f, 0.01f, 2, n0, n1, 1, 1);
    for (int i = 0; i < 3; i++) c->dst[i].is_output = 1;
}

/* The update itself at bias-correction step t (= step - step_offset + 1): parameters small next to
 * the update (|p| <= 1e-3, lr 1e-2), so that the parameter's own rounding cannot hide a wrong update
 * (vt_conf_tol.update); beta1 0.5 takes the other branch of torch's lerp. */
void vt_cc_adam_update(int decoupled, double beta1, double wd, uint64_t step, int64_t step_offset, int64_t n0,
                       int64_t n1) {
    vt_conf_case *c = vt_cc_add_case(
        VT_OP_ADAM, "%s-update b1=%g wd%g t%lld off%lld %lldx%lld", decoupled ? "adamw" : "adam", beta1, wd,
        (long long)((int64_t)step - step_offset + 1), (long long)step_offset, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.adam = (vt_adam_params){1.0f, beta1, 0.999, 1e-8, wd, decoupled, step_offset};
    c->ctx.lr = 1e-2f;
    c->ctx.step = step;
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1e-3f, 1e-3f, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.1f, 0.1f, 2, n0, n1, 1, 1);
    vt_cc_put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.0f, 0.01f, 2, n0, n1, 1, 1);
    for (int i = 0; i < 3; i++) c->dst[i].is_output = 1;
}

void vt_cc_fill(vt_dtype dt, float value, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_FILL, "fill %s %g %lldx%lldx%lldx%lld", vt_dtype_name(dt), (double)value,
                                     (long long)d0, (long long)d1, (long long)d2, (long long)d3);
    if (!c) return;
    c->p.fill.value = value;
    vt_cc_out(&c->dst[0], dt, ndim, d0, d1, d2, d3);
}

/* NONFINITE over n0 x n1 values in [lo, hi), one of them (at, negative from the end) replaced by mark
 * (no mark: at = 0, mark = lo); the flag starts at flag0 and must end at flag0 | any non-finite. */
void vt_cc_nonfinite(int64_t n0, int64_t n1, float lo, float hi, int64_t at, float mark, int flag0, const char *tag) {
    vt_conf_case *c = vt_cc_add_case(VT_OP_NONFINITE, "nonfinite %s%lldx%lld at%lld %g flag%d", tag, (long long)n0,
                                     (long long)n1, (long long)at, (double)mark, flag0);
    if (!c) return;
    vt_cc_put(&c->src[0], VT_F32, VT_CONF_INIT_MARKED, lo, hi, 2, n0, n1, 1, 1);
    c->src[0].mark_at = at;
    c->src[0].mark = mark;
    vt_cc_put(&c->dst[0], VT_I32, VT_CONF_INIT_CONST, (float)flag0, 0, 1, 1, 1, 1, 1);
    c->dst[0].is_output = 1;
}
