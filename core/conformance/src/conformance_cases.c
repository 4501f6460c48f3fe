/* The built-in conformance cases: odd shapes that catch indexing and tail bugs, and the shapes the
 * practice really runs (linear 3072->1024, the CNN stem, ResNet18 convolutions, global pooling). */
#include "vt/conformance.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vt_conf_case *vt_cases;
static int vt_n_cases, vt_cap_cases;
static int vt_cases_failed;

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a: a stable seed per case name */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static vt_conf_case *add_case(vt_op op, const char *fmt, ...) {
    if (vt_n_cases == vt_cap_cases) {
        int cap = vt_cap_cases ? vt_cap_cases * 2 : 256;
        vt_conf_case *grown = realloc(vt_cases, (size_t)cap * sizeof *grown);
        if (!grown) {
            vt_cases_failed = 1;
            return NULL;
        }
        vt_cases = grown;
        vt_cap_cases = cap;
    }
    vt_conf_case *c = &vt_cases[vt_n_cases++];
    memset(c, 0, sizeof *c);
    c->op = op;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->name, sizeof c->name, fmt, ap);
    va_end(ap);
    c->tol = vt_conf_op_tol(op);
    c->red = 1.0;
    c->seed = name_hash(c->name);
    c->ctx.seed = 20240607u;
    c->ctx.lr = 0.1f;
    c->replay = 1;
    snprintf(c->origin, sizeof c->origin, "builtin");
    return c;
}

static void put(vt_conf_operand *o, vt_dtype dt, vt_conf_init init, float lo, float hi, int ndim, int64_t d0,
                int64_t d1, int64_t d2, int64_t d3) {
    o->present = 1;
    o->dtype = dt;
    o->init = init;
    o->lo = lo;
    o->hi = hi;
    o->ndim = ndim;
    o->shape[0] = d0;
    o->shape[1] = d1;
    o->shape[2] = d2;
    o->shape[3] = d3;
    for (int i = ndim; i < VT_MAX_DIMS; i++) o->shape[i] = 1;
}

/* Outputs the op must fully overwrite start as junk so that an unwritten element shows. */
static void out(vt_conf_operand *o, vt_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    put(o, dt, VT_CONF_INIT_GARBAGE, 0, 0, ndim, d0, d1, d2, d3);
    o->is_output = 1;
}

static const char *act_tag(vt_act a) { return a == VT_ACT_NONE ? "" : vt_act_name(a); }

/* ---- builders, one per op family ---- */

static void matmul(int64_t M, int64_t K, int64_t N, int ta, int tb, float alpha, float beta, int bias, vt_act act,
                   float act_alpha, const char *tag) {
    vt_conf_case *c = add_case(VT_OP_MATMUL, "matmul %s%lldx%lldx%lld%s%s a%g b%g%s%s%s", tag, (long long)M,
                               (long long)K, (long long)N, ta ? " tA" : "", tb ? " tB" : "", (double)alpha,
                               (double)beta, bias ? " bias" : "", act ? " " : "", act_tag(act));
    if (!c) return;
    c->p.matmul = (vt_matmul_params){ta, tb, alpha, beta, act, act_alpha};
    if (ta) put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, K, M, 1, 1);
    else put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, M, K, 1, 1);
    if (tb) put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, N, K, 1, 1);
    else put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, K, N, 1, 1);
    if (bias) put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, N, 1, 1, 1);
    out(&c->dst[0], VT_F32, 2, M, N, 1, 1);
    if (beta != 0.0f) c->dst[0].init = VT_CONF_INIT_UNIFORM, c->dst[0].lo = -1, c->dst[0].hi = 1;
    c->red = (double)K;
}

static void bias_grad(int ndim, int64_t n, int64_t ch, int64_t h, int64_t w) {
    vt_conf_case *c = add_case(VT_OP_BIAS_GRAD, ndim == 2 ? "bias_grad %lldx%lld" : "bias_grad %lldx%lldx%lldx%lld",
                               (long long)n, (long long)ch, (long long)h, (long long)w);
    if (!c) return;
    put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, n, ch, h, w);
    out(&c->dst[0], VT_F32, 1, ch, 1, 1, 1);
    c->red = (double)(n * h * w);
}

static int64_t conv_out(int64_t in, int64_t k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* kind 0: forward, 1: backward data, 2: backward weight */
static void conv(int kind, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw,
                 int ph, int pw, int bias, vt_act act, float act_alpha, const char *tag) {
    static const vt_op ops[3] = {VT_OP_CONV2D, VT_OP_CONV2D_BWD_DATA, VT_OP_CONV2D_BWD_WEIGHT};
    int64_t P = conv_out(H, R, sh, ph), Q = conv_out(W, S, sw, pw);
    vt_conf_case *c =
        add_case(ops[kind], "%s %sx%lldx%lldx%lldx%lld w%lldx%lldx%lldx%lld s%d,%d p%d,%d%s%s%s", vt_op_name(ops[kind]),
                 tag, (long long)N, (long long)C, (long long)H, (long long)W, (long long)K, (long long)C, (long long)R,
                 (long long)S, sh, sw, ph, pw, bias ? " bias" : "", act ? " " : "", act_tag(act));
    if (!c) return;
    c->p.conv2d = (vt_conv2d_params){sh, sw, ph, pw, act, act_alpha};
    if (kind == 0) {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, K, C, R, S);
        if (bias) put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, K, 1, 1, 1);
        out(&c->dst[0], VT_F32, 4, N, K, P, Q);
        c->red = (double)(C * R * S);
    } else if (kind == 1) {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, K, P, Q);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, K, C, R, S);
        out(&c->dst[0], VT_F32, 4, N, C, H, W);
        c->red = (double)(K * R * S);
    } else {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, K, P, Q);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        out(&c->dst[0], VT_F32, 4, K, C, R, S);
        c->red = (double)(N * P * Q);
    }
}

/* CONV2D_TRANSPOSE: x [N,C,H,W], w [C,K,R,S], y [N,K,P,Q] with P = (H-1)*sh - 2*ph + R + oph, oph in
 * [0, sh) (PyTorch's output_padding). naninf: NaN and +-Inf in x, which spread along its scatter. */
static void conv_t(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw, int ph,
                   int pw, int oph, int opw, int bias, int naninf, const char *tag) {
    int64_t P = (H - 1) * sh - 2 * ph + R + oph, Q = (W - 1) * sw - 2 * pw + S + opw;
    vt_conf_case *c = add_case(VT_OP_CONV2D_TRANSPOSE,
                               "conv2d_transpose %sx%lldx%lldx%lldx%lld w%lldx%lldx%lldx%lld s%d,%d p%d,%d op%d,%d%s%s",
                               tag, (long long)N, (long long)C, (long long)H, (long long)W, (long long)C, (long long)K,
                               (long long)R, (long long)S, sh, sw, ph, pw, oph, opw, bias ? " bias" : "",
                               naninf ? " naninf" : "");
    if (!c) return;
    c->p.conv2d = (vt_conv2d_params){sh, sw, ph, pw, VT_ACT_NONE, 0};
    put(&c->src[0], VT_F32, naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
    put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, C, K, R, S);
    if (bias) put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 1, K, 1, 1, 1);
    out(&c->dst[0], VT_F32, 4, N, K, P, Q);
    c->red = (double)(C * ((R + sh - 1) / sh) * ((S + sw - 1) / sw)); /* the terms of one output element */
}

static void conv_all(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw,
                     int ph, int pw, const char *tag) {
    conv(0, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
    conv(0, N, C, H, W, K, R, S, sh, sw, ph, pw, 1, VT_ACT_RELU, 0, tag);
    conv(1, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
    conv(2, N, C, H, W, K, R, S, sh, sw, ph, pw, 0, VT_ACT_NONE, 0, tag);
}

static void pool(int bwd, vt_pool_kind kind, int64_t N, int64_t C, int64_t H, int64_t W, int kh, int kw, int sh, int sw,
                 int ph, int pw, vt_conf_init xinit, const char *tag) {
    vt_op op = bwd ? VT_OP_POOL2D_BWD : VT_OP_POOL2D;
    int64_t P = conv_out(H, kh, sh, ph), Q = conv_out(W, kw, sw, pw);
    vt_conf_case *c = add_case(op, "%s %s %s%lldx%lldx%lldx%lld k%dx%d s%d,%d p%d,%d%s", vt_op_name(op),
                               kind == VT_POOL_MAX ? "max" : "avg", tag, (long long)N, (long long)C, (long long)H,
                               (long long)W, kh, kw, sh, sw, ph, pw, xinit == VT_CONF_INIT_INTS ? " ties" : "");
    if (!c) return;
    c->p.pool2d = (vt_pool2d_params){kind, kh, kw, sh, sw, ph, pw};
    vt_conf_operand *x = bwd ? &c->src[1] : &c->src[0];
    if (xinit == VT_CONF_INIT_INTS) put(x, VT_F32, xinit, -3, 3, 4, N, C, H, W);
    else if (xinit == VT_CONF_INIT_DISTINCT) put(x, VT_F32, xinit, -5, 0.01f, 4, N, C, H, W);
    else put(x, VT_F32, xinit, -1, 1, 4, N, C, H, W);
    if (bwd) {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, P, Q);
        out(&c->dst[0], VT_F32, 4, N, C, H, W);
    } else {
        out(&c->dst[0], VT_F32, 4, N, C, P, Q);
    }
    c->red = (double)(kh * kw);
}

static void batchnorm(int bwd, int training, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int save_out,
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
    vt_conf_case *c = add_case(op, "%s", nm);
    if (!c) return;
    c->p.bn = (vt_batchnorm_params){training, 0.1f, 1e-5f, 0};
    int64_t M = N * (ndim == 4 ? H * W : 1);
    c->red = (double)M;
    if (!bwd) {
        /* an offset mean exposes E[x^2]-E[x]^2 variance formulas */
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 1, C, 1, 1, 1);
        put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
        put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, 0.1f, 0.5f, 1, C, 1, 1, 1);
        c->src[3].is_output = c->src[4].is_output = training;
        out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        if (save_out) {
            out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
            out(&c->dst[2], VT_F32, 1, C, 1, 1, 1);
        }
    } else {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, N, C, H, W);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 1.5f, 2.5f, 1, C, 1, 1, 1);
        put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
        out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
        out(&c->dst[2], VT_F32, 1, C, 1, 1, 1);
    }
}

/* The synchronised batch norm's four ops. ranks > 1 sets count = ranks * N*H*W, as one rank of
 * several sees it (the statistics and sums then stand for the whole batch's). naninf: NaN/Inf in x
 * (BN_APPLY, BN_BWD_APPLY: elementwise) or one NaN in x / dy (BN_STATS, BN_BWD_STATS: its channel). */
static void sync_bn(vt_op op, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int ranks, int running, int naninf,
                    const char *tag) {
    int64_t M = N * (ndim == 4 ? H * W : 1);
    char shp[64];
    if (ndim == 4)
        snprintf(shp, sizeof shp, "2d %s%lldx%lldx%lldx%lld", tag, (long long)N, (long long)C, (long long)H,
                 (long long)W);
    else snprintf(shp, sizeof shp, "1d %s%lldx%lld", tag, (long long)N, (long long)C);
    const char *opt =
        running ? "" : (op == VT_OP_BN_APPLY ? " no-running" : (op == VT_OP_BN_BWD_STATS ? " frozen" : ""));
    vt_conf_case *c = add_case(op, "%s %s ranks%d%s%s", vt_op_name(op), shp, ranks, opt, naninf ? " naninf" : "");
    if (!c) return;
    c->p.bn = (vt_batchnorm_params){1, 0.1f, 1e-5f, M * ranks};
    c->red = (double)M;
    /* x around an offset mean (it exposes E[x^2]-E[x]^2 variance formulas); stats are a plausible
     * [mean; var] of such an x, sums any values */
    vt_conf_init nan_one = naninf ? VT_CONF_INIT_MARKED : VT_CONF_INIT_UNIFORM;
    vt_conf_init nan_all = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    switch (op) {
    case VT_OP_BN_STATS:
        put(&c->src[0], VT_F32, nan_one, 1.0f, 3.0f, ndim, N, C, H, W);
        c->src[0].mark_at = M > 2 ? 2 : 0;
        c->src[0].mark = NAN;
        out(&c->dst[0], VT_F32, 2, 2, C, 1, 1);
        break;
    case VT_OP_BN_APPLY:
        put(&c->src[0], VT_F32, nan_all, 1.0f, 3.0f, ndim, N, C, H, W);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 1, C, 1, 1, 1);
        put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        if (running) {
            put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, 1, C, 1, 1, 1);
            put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.1f, 0.5f, 1, C, 1, 1, 1);
            c->dst[1].is_output = c->dst[2].is_output = 1;
        }
        break;
    case VT_OP_BN_BWD_STATS:
        put(&c->src[0], VT_F32, nan_one, -1, 1, ndim, N, C, H, W);
        c->src[0].mark_at = -1;
        c->src[0].mark = NAN;
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, 1.0f, 3.0f, ndim, N, C, H, W);
        put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        if (running) {
            out(&c->dst[0], VT_F32, 1, C, 1, 1, 1);
            out(&c->dst[1], VT_F32, 1, C, 1, 1, 1);
        }
        out(&c->dst[2], VT_F32, 2, 2, C, 1, 1);
        break;
    default: /* BN_BWD_APPLY */
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, ndim, N, C, H, W);
        put(&c->src[1], VT_F32, nan_all, 1.0f, 3.0f, ndim, N, C, H, W);
        put(&c->src[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.5f, 1.5f, 1, C, 1, 1, 1);
        put(&c->src[3], VT_F32, VT_CONF_INIT_UNIFORM, 0.2f, 2.5f, 2, 2, C, 1, 1);
        put(&c->src[4], VT_F32, VT_CONF_INIT_UNIFORM, -3.0f, 3.0f, 2, 2, C, 1, 1);
        out(&c->dst[0], VT_F32, ndim, N, C, H, W);
        break;
    }
}

static void act(int bwd, vt_act kind, float alpha, int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3) {
    vt_op op = bwd ? VT_OP_ACT_BWD : VT_OP_ACT;
    char kn[32];
    if (kind == VT_ACT_LEAKY_RELU) snprintf(kn, sizeof kn, "%s a%g", vt_act_name(kind), (double)alpha);
    else snprintf(kn, sizeof kn, "%s", vt_act_name(kind));
    vt_conf_case *c = add_case(op, "%s %s %lldx%lldx%lldx%lld%s", vt_op_name(op), kn, (long long)d0, (long long)d1,
                               (long long)d2, (long long)d3, naninf ? " naninf" : "");
    if (!c) return;
    c->p.act = (vt_act_params){kind, alpha};
    vt_conf_init init = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    if (!bwd) {
        put(&c->src[0], VT_F32, init, -3, 3, ndim, d0, d1, d2, d3);
    } else {
        put(&c->src[0], VT_F32, init, -1, 1, ndim, d0, d1, d2, d3);
        /* src1 is the forward output y (selu never goes below -scale*A), but gelu's is the input x:
         * both sides of gelu's minimum at -0.75 and its tails */
        float lo = kind == VT_ACT_SELU ? -1.7f : (kind == VT_ACT_GELU ? -5.0f : -2.0f);
        put(&c->src[1], VT_F32, VT_CONF_INIT_UNIFORM, lo, kind == VT_ACT_GELU ? 5.0f : 2.0f, ndim, d0, d1, d2, d3);
    }
    out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

static void dropout(int bwd, float p, uint32_t salt, uint64_t step, int naninf, int ndim, int64_t d0, int64_t d1,
                    int64_t d2, int64_t d3) {
    vt_op op = bwd ? VT_OP_DROPOUT_BWD : VT_OP_DROPOUT;
    vt_conf_case *c = add_case(op, "%s p%g salt%u step%llu %lldx%lldx%lldx%lld%s", vt_op_name(op), (double)p, salt,
                               (unsigned long long)step, (long long)d0, (long long)d1, (long long)d2, (long long)d3,
                               naninf ? " naninf" : "");
    if (!c) return;
    c->p.dropout = (vt_dropout_params){p, salt};
    c->ctx.step = step;
    put(&c->src[0], VT_F32, naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM, -2, 2, ndim, d0, d1, d2, d3);
    out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

static void add(int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_conf_case *c = add_case(VT_OP_ADD, "add %lldx%lldx%lldx%lld%s", (long long)d0, (long long)d1, (long long)d2,
                               (long long)d3, naninf ? " naninf" : "");
    if (!c) return;
    vt_conf_init init = naninf ? VT_CONF_INIT_NANINF : VT_CONF_INIT_UNIFORM;
    put(&c->src[0], VT_F32, init, -2, 2, ndim, d0, d1, d2, d3);
    put(&c->src[1], VT_F32, init, -2, 2, ndim, d0, d1, d2, d3);
    out(&c->dst[0], VT_F32, ndim, d0, d1, d2, d3);
}

static void softmax_ce(int bwd, int64_t N, int64_t K, float smoothing, int metrics, float range, int ties) {
    vt_op op = bwd ? VT_OP_SOFTMAX_CE_BWD : VT_OP_SOFTMAX_CE;
    vt_conf_case *c = add_case(op, "%s %lldx%lld ls%g range%g%s%s", vt_op_name(op), (long long)N, (long long)K,
                               (double)smoothing, (double)range, metrics ? " metrics" : "", ties ? " ties" : "");
    if (!c) return;
    c->p.ce = (vt_softmax_ce_params){smoothing, bwd ? 1.0f / (float)N : 1.0f};
    if (ties) put(&c->src[0], VT_F32, VT_CONF_INIT_INTS, -2, 2, 2, N, K, 1, 1);
    else put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -range, range, 2, N, K, 1, 1);
    put(&c->src[1], VT_I32, VT_CONF_INIT_INDEX, 0, (float)K, 1, N, 1, 1, 1);
    if (bwd) {
        out(&c->dst[0], VT_F32, 2, N, K, 1, 1);
        c->red = (double)K;
    } else {
        out(&c->dst[0], VT_F32, 1, 1, 1, 1, 1);
        if (metrics) {
            /* metrics accumulate: start from non-zero values */
            put(&c->dst[1], VT_F32, VT_CONF_INIT_INTS, 0, 9, 1, 3, 1, 1, 1);
            c->dst[1].is_output = 1;
        }
        c->red = (double)(N * K);
    }
}

static void argmax(int64_t N, int64_t K, int ties) {
    vt_conf_case *c = add_case(VT_OP_ARGMAX, "argmax %lldx%lld%s", (long long)N, (long long)K, ties ? " ties" : "");
    if (!c) return;
    if (ties) put(&c->src[0], VT_F32, VT_CONF_INIT_INTS, -2, 2, 2, N, K, 1, 1);
    else put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -5, 5, 2, N, K, 1, 1);
    out(&c->dst[0], VT_I32, 1, N, 1, 1, 1);
}

static void upsample(int bwd, vt_upsample_mode mode, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
                     int64_t Wo) {
    vt_op op = bwd ? VT_OP_UPSAMPLE_BWD : VT_OP_UPSAMPLE;
    vt_conf_case *c = add_case(op, "%s %s %lldx%lldx%lldx%lld to %lldx%lld", vt_op_name(op),
                               mode == VT_UPSAMPLE_NEAREST ? "nearest" : "bilinear", (long long)N, (long long)C,
                               (long long)H, (long long)W, (long long)Ho, (long long)Wo);
    if (!c) return;
    c->p.upsample.mode = mode;
    if (!bwd) {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, H, W);
        out(&c->dst[0], VT_F32, 4, N, C, Ho, Wo);
    } else {
        put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 4, N, C, Ho, Wo);
        out(&c->dst[0], VT_F32, 4, N, C, H, W);
        c->red = 4.0 * (double)((Ho + H - 1) / H) * (double)((Wo + W - 1) / W);
    }
}

static void batch_prep(int64_t D, int64_t C, int64_t H, int64_t W, int64_t B, int64_t start, int pad, int flip,
                       uint64_t step) {
    vt_conf_case *c = add_case(VT_OP_BATCH_PREP, "batch_prep D%lld %lldx%lldx%lldx%lld start%lld pad%d flip%d step%llu",
                               (long long)D, (long long)B, (long long)C, (long long)H, (long long)W, (long long)start,
                               pad, flip, (unsigned long long)step);
    if (!c) return;
    vt_batch_prep_params *p = &c->p.prep;
    p->pad = pad;
    p->flip = flip;
    p->salt = 77;
    static const float mean[4] = {0.5071f, 0.4865f, 0.4409f, 0.5f}, sd[4] = {0.2673f, 0.2564f, 0.2762f, 0.25f};
    for (int i = 0; i < 4; i++) p->mean[i] = mean[i], p->std[i] = sd[i];
    c->ctx.step = step;
    c->ctx.batch_start = start;
    put(&c->src[0], VT_U8, VT_CONF_INIT_BYTES, 0, 255, 4, D, C, H, W);
    put(&c->src[1], VT_I32, VT_CONF_INIT_INDEX, 0, 100, 1, D, 1, 1, 1);
    put(&c->src[2], VT_I32, VT_CONF_INIT_PERM, 0, 0, 1, D, 1, 1, 1);
    out(&c->dst[0], VT_F32, 4, B, C, H, W);
    out(&c->dst[1], VT_I32, 1, B, 1, 1, 1);
}

static void sgd(float momentum, float wd, int nesterov, float lr_mult, int64_t n0, int64_t n1) {
    vt_conf_case *c = add_case(VT_OP_SGD, "sgd m%g wd%g%s lrx%g %lldx%lld", (double)momentum, (double)wd,
                               nesterov ? " nesterov" : "", (double)lr_mult, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.sgd = (vt_sgd_params){lr_mult, momentum, wd, nesterov};
    c->ctx.lr = 0.05f;
    put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    c->dst[0].is_output = 1;
    if (momentum != 0.0f) {
        put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.5f, 0.5f, 2, n0, n1, 1, 1);
        c->dst[1].is_output = 1;
    }
}

static void adam(int decoupled, double wd, uint64_t step, int64_t step_offset, int64_t n0, int64_t n1) {
    vt_conf_case *c = add_case(VT_OP_ADAM, "%s wd%g step%llu off%lld %lldx%lld", decoupled ? "adamw" : "adam", wd,
                               (unsigned long long)step, (long long)step_offset, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.adam = (vt_adam_params){1.0f, 0.9, 0.999, 1e-8, wd, decoupled, step_offset};
    c->ctx.lr = 1e-3f;
    c->ctx.step = step;
    put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.1f, 0.1f, 2, n0, n1, 1, 1);
    put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.0f, 0.01f, 2, n0, n1, 1, 1);
    for (int i = 0; i < 3; i++) c->dst[i].is_output = 1;
}

/* The update itself at bias-correction step t (= step - step_offset + 1): parameters small next to
 * the update (|p| <= 1e-3, lr 1e-2), so that the parameter's own rounding cannot hide a wrong update
 * (vt_conf_tol.update); beta1 0.5 takes the other branch of torch's lerp. */
static void adam_update(int decoupled, double beta1, double wd, uint64_t step, int64_t step_offset, int64_t n0,
                        int64_t n1) {
    vt_conf_case *c =
        add_case(VT_OP_ADAM, "%s-update b1=%g wd%g t%lld off%lld %lldx%lld", decoupled ? "adamw" : "adam", beta1, wd,
                 (long long)((int64_t)step - step_offset + 1), (long long)step_offset, (long long)n0, (long long)n1);
    if (!c) return;
    c->p.adam = (vt_adam_params){1.0f, beta1, 0.999, 1e-8, wd, decoupled, step_offset};
    c->ctx.lr = 1e-2f;
    c->ctx.step = step;
    put(&c->src[0], VT_F32, VT_CONF_INIT_UNIFORM, -1, 1, 2, n0, n1, 1, 1);
    put(&c->dst[0], VT_F32, VT_CONF_INIT_UNIFORM, -1e-3f, 1e-3f, 2, n0, n1, 1, 1);
    put(&c->dst[1], VT_F32, VT_CONF_INIT_UNIFORM, -0.1f, 0.1f, 2, n0, n1, 1, 1);
    put(&c->dst[2], VT_F32, VT_CONF_INIT_UNIFORM, 0.0f, 0.01f, 2, n0, n1, 1, 1);
    for (int i = 0; i < 3; i++) c->dst[i].is_output = 1;
}

static void fill(vt_dtype dt, float value, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    vt_conf_case *c = add_case(VT_OP_FILL, "fill %s %g %lldx%lldx%lldx%lld", vt_dtype_name(dt), (double)value,
                               (long long)d0, (long long)d1, (long long)d2, (long long)d3);
    if (!c) return;
    c->p.fill.value = value;
    out(&c->dst[0], dt, ndim, d0, d1, d2, d3);
}

/* NONFINITE over n0 x n1 values in [lo, hi), one of them (at, negative from the end) replaced by mark
 * (no mark: at = 0, mark = lo); the flag starts at flag0 and must end at flag0 | any non-finite. */
static void nonfinite(int64_t n0, int64_t n1, float lo, float hi, int64_t at, float mark, int flag0, const char *tag) {
    vt_conf_case *c = add_case(VT_OP_NONFINITE, "nonfinite %s%lldx%lld at%lld %g flag%d", tag, (long long)n0,
                               (long long)n1, (long long)at, (double)mark, flag0);
    if (!c) return;
    put(&c->src[0], VT_F32, VT_CONF_INIT_MARKED, lo, hi, 2, n0, n1, 1, 1);
    c->src[0].mark_at = at;
    c->src[0].mark = mark;
    put(&c->dst[0], VT_I32, VT_CONF_INIT_CONST, (float)flag0, 0, 1, 1, 1, 1, 1);
    c->dst[0].is_output = 1;
}

static void build_cases(void) {
    /* MATMUL: every transpose combination on odd shapes, beta/alpha/bias/epilogue, then the real ones */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            matmul(5, 7, 13, ta, tb, 1, 0, 0, VT_ACT_NONE, 0, "");
            matmul(33, 17, 65, ta, tb, 1, 0, 1, VT_ACT_NONE, 0, "");
            matmul(7, 1, 5, ta, tb, 0.5f, 1, 0, VT_ACT_NONE, 0, "");
        }
    matmul(1, 1, 1, 0, 0, 1, 0, 0, VT_ACT_NONE, 0, "");
    matmul(13, 33, 7, 0, 1, 1, 0.5f, 1, VT_ACT_NONE, 0, "");
    matmul(13, 33, 7, 0, 1, 2, 1, 1, VT_ACT_RELU, 0, "");
    matmul(13, 33, 7, 0, 1, 1, 0, 1, VT_ACT_LEAKY_RELU, 0.1f, "");
    matmul(13, 33, 7, 0, 1, 1, 0, 1, VT_ACT_SELU, 0, "");
    matmul(64, 3072, 1024, 0, 1, 1, 0, 1, VT_ACT_RELU, 0, "linear ");    /* forward of linear 3072->1024 */
    matmul(64, 1024, 3072, 0, 0, 1, 0, 0, VT_ACT_NONE, 0, "linear-dx "); /* dx = dy W */
    matmul(1024, 64, 3072, 1, 0, 1, 1, 0, VT_ACT_NONE, 0, "linear-dw "); /* dW += dy^T x */
    matmul(64, 1024, 100, 0, 1, 1, 0, 1, VT_ACT_NONE, 0, "head ");
    /* batch-sized x W^T with a K that is not a multiple of 16, alpha and every epilogue */
    matmul(8, 259, 12, 0, 1, 0.5f, 0, 1, VT_ACT_LEAKY_RELU, 0.1f, "nt ");
    matmul(4, 256, 4, 0, 1, 1, 0, 0, VT_ACT_SELU, 0, "nt ");
    /* multiples of 4 from 128 rows up (the GPU backends' vec4 paths) with partial tiles on every edge,
     * and a tall-K product few enough outputs that K is split into slices */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) matmul(132, 516, 260, ta, tb, 1, 0, 1, VT_ACT_RELU, 0, "vec4 ");
    matmul(128, 2048, 8, 0, 0, 1, 0.5f, 0, VT_ACT_NONE, 0, "split-k ");
    matmul(128, 2048, 12, 1, 1, 1, 0, 1, VT_ACT_NONE, 0, "split-k ");

    bias_grad(2, 5, 7, 1, 1);
    bias_grad(2, 64, 1024, 1, 1);
    bias_grad(4, 3, 13, 5, 7);
    bias_grad(4, 8, 64, 8, 8);

    /* CONV2D and its two backward ops on the same geometry */
    conv_all(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, "");
    conv_all(2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, "");
    conv_all(2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, "");
    conv_all(3, 7, 11, 9, 4, 3, 1, 2, 1, 1, 0, "");
    conv_all(1, 3, 33, 33, 5, 3, 3, 3, 3, 0, 0, "");
    conv_all(4, 3, 32, 32, 16, 5, 5, 2, 2, 2, 2, "stem ");
    conv_all(4, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, "resnet ");
    conv_all(2, 128, 8, 8, 256, 3, 3, 2, 2, 1, 1, "resnet ");
    conv_all(2, 64, 16, 16, 128, 1, 1, 2, 2, 0, 0, "downsample ");
    /* small outputs over many images: the CPU's grouped GEMMs (whole and partial groups) */
    conv_all(8, 32, 2, 2, 48, 3, 3, 1, 1, 1, 1, "deep ");
    conv_all(5, 12, 3, 3, 24, 3, 3, 2, 2, 1, 1, "deep ");
    /* 16 and 32 output channels: the CPU's direct kernels, with every width of partial tile. */
    conv_all(3, 3, 32, 32, 16, 5, 5, 1, 1, 2, 2, "pool-cnn ");
    conv_all(2, 16, 16, 16, 16, 5, 5, 1, 1, 2, 2, "pool-cnn ");
    conv_all(2, 5, 13, 11, 32, 3, 3, 1, 1, 1, 1, "");
    conv_all(2, 2, 9, 15, 16, 7, 7, 2, 1, 3, 3, "");
    conv_all(1, 4, 6, 7, 16, 3, 5, 1, 2, 0, 1, "");
    conv(0, 2, 5, 13, 13, 16, 5, 5, 1, 1, 2, 2, 1, VT_ACT_SELU, 0, "");
    conv(0, 2, 5, 13, 13, 32, 3, 3, 2, 2, 1, 1, 1, VT_ACT_LEAKY_RELU, 0.2f, "");
    conv(0, 2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, 1, VT_ACT_LEAKY_RELU, 0.2f, "");
    conv(0, 2, 5, 13, 13, 7, 5, 5, 2, 2, 2, 2, 1, VT_ACT_SELU, 0, "");
    conv(0, 2, 3, 7, 5, 5, 3, 3, 1, 1, 1, 1, 1, VT_ACT_NONE, 0, "");

    /* CONV2D_TRANSPOSE: strides 1 to 3, every output_padding, paddings, odd and rectangular shapes, the
     * CPU's data-gradient paths (stride 1 as a forward convolution, 16 and 32 channels, grouped small
     * inputs, pointwise), NaN/Inf, and FCN-32s' upsampling by 32 (k64 s32 p16) of 21 or 7 class scores */
    conv_t(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, "");
    conv_t(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, "");
    conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, "");
    conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 0, "");
    for (int op = 0; op < 2; op++) {
        conv_t(2, 5, 4, 6, 3, 3, 3, 2, 2, 1, 1, op, op, 0, 0, "");
        conv_t(2, 5, 4, 6, 3, 3, 3, 2, 2, 1, 1, op, 1 - op, 1, 0, "");
    }
    for (int op = 0; op < 3; op++) conv_t(1, 3, 5, 4, 2, 4, 5, 3, 3, 1, 2, op, 2 - op, 1, 0, "");
    conv_t(3, 7, 3, 5, 5, 2, 3, 2, 1, 0, 1, 1, 0, 1, 0, "");
    conv_t(2, 4, 3, 3, 6, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, "");
    conv_t(2, 8, 4, 4, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0, "");
    conv_t(2, 6, 5, 3, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, "");
    conv_t(2, 5, 7, 9, 16, 3, 3, 1, 1, 1, 1, 0, 0, 1, 0, "");
    conv_t(2, 3, 6, 5, 32, 5, 5, 1, 1, 2, 2, 0, 0, 1, 0, "");
    conv_t(8, 24, 3, 3, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, "");
    conv_t(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1, 0, 0, 1, 1, "");
    conv_t(2, 3, 5, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, "");
    conv_t(1, 21, 1, 1, 21, 64, 64, 32, 32, 16, 16, 0, 0, 0, 0, "fcn32s ");
    conv_t(2, 21, 2, 2, 21, 64, 64, 32, 32, 16, 16, 0, 0, 1, 0, "fcn32s ");
    conv_t(1, 7, 3, 3, 7, 64, 64, 32, 32, 16, 16, 0, 0, 0, 0, "fcn32s ");
    conv_t(1, 7, 4, 4, 7, 64, 64, 32, 32, 16, 16, 0, 0, 1, 0, "fcn32s ");

    /* POOL2D forward and backward */
    for (int bwd = 0; bwd < 2; bwd++) {
        vt_conf_init xi = bwd ? VT_CONF_INIT_DISTINCT : VT_CONF_INIT_UNIFORM;
        pool(bwd, VT_POOL_MAX, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, xi, "");
        pool(bwd, VT_POOL_MAX, 2, 64, 16, 16, 3, 3, 2, 2, 1, 1, xi, "resnet ");
        pool(bwd, VT_POOL_MAX, 3, 7, 8, 9, 2, 2, 2, 2, 0, 0, xi, "");
        pool(bwd, VT_POOL_MAX, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, xi, "");
        pool(bwd, VT_POOL_MAX, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, VT_CONF_INIT_INTS, "");
        pool(bwd, VT_POOL_AVG, 2, 5, 13, 13, 3, 3, 2, 2, 1, 1, VT_CONF_INIT_UNIFORM, "");
        pool(bwd, VT_POOL_AVG, 3, 7, 8, 9, 2, 2, 2, 2, 0, 0, VT_CONF_INIT_UNIFORM, "");
        pool(bwd, VT_POOL_AVG, 3, 5, 7, 5, 3, 1, 1, 1, 1, 0, VT_CONF_INIT_UNIFORM, "");
        pool(bwd, VT_POOL_AVG, 4, 512, 4, 4, 4, 4, 1, 1, 0, 0, VT_CONF_INIT_UNIFORM, "global ");
        /* ResNet18's global pool at batch 130: N*C = 66560 planes, more than a 65535 grid dimension */
        pool(bwd, VT_POOL_AVG, 130, 512, 1, 1, 1, 1, 1, 1, 0, 0, VT_CONF_INIT_UNIFORM, "many-planes ");
    }

    /* BATCHNORM: 2d and 1d, training and eval; then the backward, training and frozen */
    for (int tr = 0; tr < 2; tr++) {
        batchnorm(0, tr, 4, 4, 7, 5, 3, 1, "");
        batchnorm(0, tr, 4, 8, 64, 8, 8, 1, "resnet ");
        batchnorm(0, tr, 2, 5, 13, 1, 1, 1, "");
        batchnorm(0, tr, 2, 64, 1024, 1, 1, 1, "");
        batchnorm(1, tr, 4, 4, 7, 5, 3, 1, "");
        batchnorm(1, tr, 4, 8, 64, 8, 8, 1, "resnet ");
        batchnorm(1, tr, 2, 5, 13, 1, 1, 1, "");
        batchnorm(1, tr, 2, 64, 1024, 1, 1, 1, "");
    }
    batchnorm(0, 0, 4, 2, 3, 5, 5, 0, "");
    batchnorm(0, 1, 4, 2, 1, 1, 2, 1, "");

    /* the synchronised batch norm's ops: odd shapes, 2d and 1d, ResNet18's layers, one rank and several
     * (count > N*H*W), no running statistics / no parameter gradients (frozen), NaN/Inf */
    static const vt_op sbn_ops[4] = {VT_OP_BN_STATS, VT_OP_BN_APPLY, VT_OP_BN_BWD_STATS, VT_OP_BN_BWD_APPLY};
    for (int k = 0; k < 4; k++) {
        vt_op op = sbn_ops[k];
        sync_bn(op, 4, 4, 7, 5, 3, 1, 1, 0, "");
        sync_bn(op, 4, 4, 7, 5, 3, 4, 1, 0, "");
        sync_bn(op, 4, 8, 64, 8, 8, 1, 1, 0, "resnet ");
        sync_bn(op, 4, 4, 64, 8, 8, 2, 1, 0, "resnet ");
        sync_bn(op, 4, 2, 512, 1, 1, 4, 1, 0, "resnet ");
        sync_bn(op, 4, 1, 3, 1, 1, 2, 1, 0, "");
        sync_bn(op, 2, 5, 13, 1, 1, 1, 1, 0, "");
        sync_bn(op, 2, 64, 1024, 1, 1, 2, 1, 0, "");
        sync_bn(op, 4, 3, 5, 7, 11, 3, 0, 0, "");
        sync_bn(op, 4, 3, 5, 7, 11, 2, 1, 1, "");
        sync_bn(op, 2, 33, 13, 1, 1, 2, 1, 1, "");
    }

    /* activations, forward and backward, odd sizes, NaN/Inf propagation */
    static const vt_act kinds[4] = {VT_ACT_RELU, VT_ACT_LEAKY_RELU, VT_ACT_SELU, VT_ACT_GELU};
    for (int bwd = 0; bwd < 2; bwd++)
        for (int k = 0; k < 4; k++) {
            float a = kinds[k] == VT_ACT_LEAKY_RELU ? 0.01f : 0.0f;
            act(bwd, kinds[k], a, 0, 1, 1, 1, 1, 1);
            act(bwd, kinds[k], a, 0, 2, 5, 7, 1, 1);
            act(bwd, kinds[k], a, 0, 4, 3, 13, 5, 7);
            act(bwd, kinds[k], a, 0, 2, 64, 1024, 1, 1);
            act(bwd, kinds[k], a, 1, 2, 33, 13, 1, 1);
            if (kinds[k] == VT_ACT_LEAKY_RELU) act(bwd, kinds[k], 0.2f, 0, 2, 33, 13, 1, 1);
        }

    for (int bwd = 0; bwd < 2; bwd++) {
        dropout(bwd, 0.5f, 1, 0, 0, 1, 13, 1, 1, 1);
        dropout(bwd, 0.1f, 2, 7, 0, 2, 33, 7, 1, 1);
        dropout(bwd, 0.5f, 3, 5000000000ull, 0, 4, 4, 64, 8, 8);
        dropout(bwd, 0.0f, 4, 3, 0, 2, 5, 7, 1, 1);
        dropout(bwd, 0.25f, 5, 11, 1, 2, 33, 13, 1, 1);
    }

    add(0, 1, 1, 1, 1, 1);
    add(0, 2, 33, 13, 1, 1);
    add(0, 4, 8, 64, 8, 8);
    add(1, 2, 33, 13, 1, 1);

    for (int bwd = 0; bwd < 2; bwd++) {
        softmax_ce(bwd, 5, 7, 0.0f, 1, 3, 0);
        softmax_ce(bwd, 5, 7, 0.1f, 1, 3, 0);
        softmax_ce(bwd, 64, 100, 0.0f, 1, 5, 0);
        softmax_ce(bwd, 64, 100, 0.1f, 0, 5, 0);
        softmax_ce(bwd, 3, 1, 0.0f, 1, 1, 0);
        softmax_ce(bwd, 13, 33, 0.2f, 1, 60, 0); /* large logits: needs the max-subtraction */
        softmax_ce(bwd, 13, 33, 0.0f, 1, 2, 1);  /* ties: argmax takes the first maximum */
    }

    argmax(1, 1, 0);
    argmax(5, 7, 0);
    argmax(64, 100, 0);
    argmax(13, 33, 1);

    for (int bwd = 0; bwd < 2; bwd++)
        for (int m = 0; m < 2; m++) {
            upsample(bwd, (vt_upsample_mode)m, 2, 3, 32, 32, 64, 64);
            upsample(bwd, (vt_upsample_mode)m, 2, 3, 5, 7, 13, 11);
            upsample(bwd, (vt_upsample_mode)m, 1, 2, 13, 13, 5, 5);
            upsample(bwd, (vt_upsample_mode)m, 1, 1, 1, 1, 3, 3);
        }

    batch_prep(37, 3, 32, 32, 16, 5, 4, 1, 0);
    batch_prep(37, 3, 32, 32, 16, 21, 4, 1, 4294967301ull);
    batch_prep(20, 3, 32, 32, 20, 0, 0, 0, 3);
    batch_prep(9, 1, 7, 5, 5, 3, 2, 1, 12);
    batch_prep(9, 4, 5, 7, 9, 0, 3, 0, 1);

    sgd(0, 0, 0, 1, 13, 1);
    sgd(0, 5e-4f, 0, 1, 33, 7);
    sgd(0.9f, 0, 0, 1, 33, 7);
    sgd(0.9f, 5e-4f, 0, 1, 33, 7);
    sgd(0.9f, 5e-4f, 1, 1, 33, 7);
    sgd(0.9f, 5e-4f, 1, 0.5f, 1024, 33);

    adam(0, 0, 0, 0, 13, 1);
    adam(0, 1e-2, 9, 0, 33, 7);
    adam(1, 1e-2, 0, 0, 33, 7);
    adam(1, 5e-2, 1000, 400, 33, 7);
    adam(1, 1e-2, 5, 0, 1024, 33);
    /* t = 1, 2, 10, 1000, with and without a step offset */
    adam_update(0, 0.9, 0, 0, 0, 33, 7);
    adam_update(1, 0.9, 1e-2, 0, 0, 33, 7);
    adam_update(0, 0.9, 0, 5, 4, 33, 7);
    adam_update(0, 0.9, 1e-2, 1, 0, 33, 7);
    adam_update(1, 0.9, 1e-2, 109, 100, 33, 7);
    adam_update(0, 0.9, 0, 9, 0, 1024, 33);
    adam_update(1, 0.9, 5e-2, 1999, 1000, 33, 7);
    adam_update(0, 0.9, 1e-2, 999, 0, 33, 7);
    adam_update(0, 0.5, 0, 2, 0, 13, 5);
    adam_update(1, 0.3, 1e-2, 9, 0, 13, 5);

    fill(VT_F32, 0.0f, 1, 1, 1, 1, 1);
    fill(VT_F32, -1.5f, 2, 33, 7, 1, 1);
    fill(VT_F32, 3.25f, 4, 3, 5, 7, 11);
    fill(VT_I32, 7.0f, 1, 13, 1, 1, 1);
    fill(VT_U8, 200.0f, 1, 37, 1, 1, 1);

    /* NONFINITE: one element, odd sizes, sizes that span many workgroups / threads; the special value
     * first, in the middle and last; huge finite values (largest exponent below all ones) */
    nonfinite(1, 1, -1, 1, 0, 0.5f, 0, "");
    nonfinite(1, 1, -1, 1, 0, NAN, 0, "");
    nonfinite(1, 1, -1, 1, 0, -INFINITY, 0, "");
    nonfinite(33, 7, -1, 1, 0, 0.5f, 0, "");
    nonfinite(33, 7, -1, 1, 0, NAN, 0, "");
    nonfinite(33, 7, -1, 1, 115, NAN, 0, "");
    nonfinite(33, 7, -1, 1, -1, NAN, 0, "");
    nonfinite(33, 7, -1, 1, 115, INFINITY, 0, "");
    nonfinite(33, 7, -1, 1, -1, -INFINITY, 0, "");
    nonfinite(1031, 1023, -1, 1, 0, 0.5f, 0, "large ");
    nonfinite(1031, 1023, -1, 1, 0, NAN, 0, "large ");
    nonfinite(1031, 1023, -1, 1, 527345, INFINITY, 0, "large ");
    nonfinite(1031, 1023, -1, 1, -1, NAN, 0, "large ");
    nonfinite(1031, 1023, -1, 1, -1, -INFINITY, 0, "large ");
    nonfinite(257, 129, -1.7e38f, 1.7e38f, 1000, FLT_MAX, 0, "huge ");
    nonfinite(257, 129, -1.7e38f, 1.7e38f, -1, -FLT_MAX, 0, "huge ");
    nonfinite(13, 5, -1, 1, 3, 0.25f, 1, "");
    nonfinite(1031, 1023, -1, 1, 3, 0.25f, 1, "large ");
    nonfinite(13, 5, -1, 1, 3, NAN, 1, "");
}

static void ensure_cases(void) {
    if (vt_n_cases || vt_cases_failed) return;
    build_cases();
}

int vt_conf_builtin_count(void) {
    ensure_cases();
    return vt_cases_failed ? 0 : vt_n_cases;
}

const vt_conf_case *vt_conf_builtin(int i) {
    ensure_cases();
    return (i >= 0 && i < vt_n_cases && !vt_cases_failed) ? &vt_cases[i] : NULL;
}
