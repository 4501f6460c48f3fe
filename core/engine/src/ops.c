/* The op table in one place: names, operand counts, shape inference and validation (FLOP and byte
 * counts: ops_cost.c). Backends only compute; everything that can be checked before running is checked here. The
 * plain values of each op (name, operand counts) come from the list in vt/op_list.h. */
#include "vt/ops.h"

#include <stdio.h>
#include <string.h>

typedef struct vt_op_desc {
    const char *name;
    int n_src, n_dst;
} vt_op_desc;

/* Generated from vt/op_list.h: an op added there has its name and operand counts here. */
#define VT_OP_DESC_(e, name, n_src, n_dst, params, nmse, atol, rtol, update) [VT_OP_##e] = {name, n_src, n_dst},
static const vt_op_desc vt_op_table[] = {[VT_OP_NONE] = {"none", 0, 0}, VT_OP_LIST(VT_OP_DESC_)};
#undef VT_OP_DESC_
_Static_assert(sizeof vt_op_table / sizeof vt_op_table[0] == VT_OP_COUNT, "one entry per op");

const char *vt_op_name(vt_op op) { return (op >= 0 && op < VT_OP_COUNT) ? vt_op_table[op].name : "?"; }
int vt_op_n_src(vt_op op) { return (op >= 0 && op < VT_OP_COUNT) ? vt_op_table[op].n_src : 0; }
int vt_op_n_dst(vt_op op) { return (op >= 0 && op < VT_OP_COUNT) ? vt_op_table[op].n_dst : 0; }

vt_op vt_op_from_name(const char *name) {
    for (int i = 1; i < VT_OP_COUNT; i++)
        if (strcmp(vt_op_table[i].name, name) == 0) return (vt_op)i;
    return VT_OP_NONE;
}

const char *vt_act_name(vt_act a) {
    switch (a) {
    case VT_ACT_NONE: return "none";
    case VT_ACT_RELU: return "relu";
    case VT_ACT_LEAKY_RELU: return "leaky_relu";
    case VT_ACT_SELU: return "selu";
    case VT_ACT_GELU: return "gelu";
    default: return "?";
    }
}

vt_act vt_act_from_name(const char *name) {
    for (int a = 0; a < VT_ACT_COUNT; a++)
        if (strcmp(vt_act_name((vt_act)a), name) == 0) return (vt_act)a;
    return VT_ACT_COUNT;
}

/* ---- helpers for messages ---- */

#define SHP(t) vt_tensor_describe((t), (char[64]){0}, 64)

static vt_status fail(const vt_node *n, vt_status s, const char *what) {
    return vt_error(s, "%s%s%s: %s", vt_op_name(n->op), n->label[0] ? " " : "", n->label, what);
}

#define CHECK(cond, status, ...)                      \
    do {                                              \
        if (!(cond)) {                                \
            char msg_[400];                           \
            snprintf(msg_, sizeof msg_, __VA_ARGS__); \
            return fail(n, status, msg_);             \
        }                                             \
    } while (0)

static int64_t conv_out(int64_t in, int k, int stride, int pad) {
    if (stride <= 0) return -1;
    int64_t span = in + 2 * (int64_t)pad - k;
    if (span < 0) return -1;
    return span / stride + 1;
}

static bool is_f32(const vt_tensor *t) { return t && t->dtype == VT_F32; }

static bool vec_of(const vt_tensor *t, int64_t c) { return t && t->ndim == 1 && t->shape[0] == c; }
/* Labels (or argmax) of logits [N,K] ([N]) or [N,K,H,W] ([N,H,W]). */
static bool class_axis_labels(const vt_tensor *logits, const vt_tensor *y) {
    if (!y) return false;
    if (logits->ndim == 2) return vec_of(y, logits->shape[0]);
    return y->ndim == 3 && y->shape[0] == logits->shape[0] && y->shape[1] == logits->shape[2] &&
           y->shape[2] == logits->shape[3];
}

vt_status vt_op_infer_shape(vt_op op, const vt_op_params *p, vt_tensor *const *src, int di, int *ndim,
                            int64_t shape[VT_MAX_DIMS], vt_dtype *dtype) {
    for (int i = 0; i < VT_MAX_DIMS; i++) shape[i] = 1;
    *dtype = VT_F32;
    /* src has only as many entries as the op takes sources: read src[1] only where it exists */
    const vt_tensor *a = src[0], *b = NULL;
    switch (op) {
    case VT_OP_MATMUL: {
        b = src[1];
        if (!a || !b || a->ndim != 2 || b->ndim != 2) return vt_error(VT_ERR_SHAPE, "matmul: operands must be 2-D");
        *ndim = 2;
        shape[0] = p->matmul.trans_a ? a->shape[1] : a->shape[0];
        shape[1] = p->matmul.trans_b ? b->shape[0] : b->shape[1];
        return VT_OK;
    }
    case VT_OP_CONV2D: {
        b = src[1];
        if (!a || !b || a->ndim != 4 || b->ndim != 4) return vt_error(VT_ERR_SHAPE, "conv2d: x and w must be 4-D");
        const vt_conv2d_params *c = &p->conv2d;
        *ndim = 4;
        shape[0] = a->shape[0];
        shape[1] = b->shape[0];
        shape[2] = conv_out(a->shape[2], (int)b->shape[2], c->stride_h, c->pad_h);
        shape[3] = conv_out(a->shape[3], (int)b->shape[3], c->stride_w, c->pad_w);
        if (shape[2] <= 0 || shape[3] <= 0) return vt_error(VT_ERR_SHAPE, "conv2d: empty output");
        return VT_OK;
    }
    case VT_OP_POOL2D: {
        if (!a || a->ndim != 4) return vt_error(VT_ERR_SHAPE, "pool2d: x must be 4-D");
        const vt_pool2d_params *q = &p->pool2d;
        *ndim = 4;
        shape[0] = a->shape[0];
        shape[1] = a->shape[1];
        shape[2] = conv_out(a->shape[2], q->kh, q->stride_h, q->pad_h);
        shape[3] = conv_out(a->shape[3], q->kw, q->stride_w, q->pad_w);
        if (shape[2] <= 0 || shape[3] <= 0) return vt_error(VT_ERR_SHAPE, "pool2d: empty output");
        return VT_OK;
    }
    case VT_OP_BATCHNORM:
        if (!a) return vt_error(VT_ERR_SHAPE, "batchnorm: no input");
        if (di == 0) {
            *ndim = a->ndim;
            for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
        } else {
            *ndim = 1;
            shape[0] = a->ndim >= 2 ? a->shape[1] : 1;
        }
        return VT_OK;
    case VT_OP_BN_STATS:
        if (!a || a->ndim < 2) return vt_error(VT_ERR_SHAPE, "bn_stats: x must be [N,C] or [N,C,H,W]");
        *ndim = 2;
        shape[0] = 2;
        shape[1] = a->shape[1];
        return VT_OK;
    case VT_OP_BN_APPLY:
        if (!a || a->ndim < 2) return vt_error(VT_ERR_SHAPE, "bn_apply: x must be [N,C] or [N,C,H,W]");
        if (di == 0) {
            *ndim = a->ndim;
            for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
        } else {
            *ndim = 1;
            shape[0] = a->shape[1];
        }
        return VT_OK;
    case VT_OP_BIAS_GRAD:
        if (!a || a->ndim < 2) return vt_error(VT_ERR_SHAPE, "bias_grad: dy must be at least 2-D");
        *ndim = 1;
        shape[0] = a->shape[1];
        return VT_OK;
    case VT_OP_ACT:
    case VT_OP_DROPOUT:
    case VT_OP_ADD:
    case VT_OP_ACT_BWD:
    case VT_OP_DROPOUT_BWD:
        if (!a) return vt_error(VT_ERR_SHAPE, "%s: no input", vt_op_name(op));
        *ndim = a->ndim;
        for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
        return VT_OK;
    case VT_OP_SOFTMAX_CE:
        *ndim = 1;
        shape[0] = di == 0 ? 1 : 3;
        return VT_OK;
    case VT_OP_SOFTMAX_CE_BWD:
        if (!a) return vt_error(VT_ERR_SHAPE, "softmax_ce_bwd: no input");
        *ndim = a->ndim;
        for (int i = 0; i < a->ndim; i++) shape[i] = a->shape[i];
        return VT_OK;
    case VT_OP_ARGMAX:
        if (!a || (a->ndim != 2 && a->ndim != 4)) return vt_error(VT_ERR_SHAPE, "argmax: x must be 2-D or 4-D");
        *ndim = a->ndim == 2 ? 1 : 3;
        shape[0] = a->shape[0];
        if (a->ndim == 4) {
            shape[1] = a->shape[2];
            shape[2] = a->shape[3];
        }
        *dtype = VT_I32;
        return VT_OK;
    default:
        return vt_error(VT_ERR_INVALID_ARG, "%s: output shape is not implied by the inputs; give it", vt_op_name(op));
    }
}

/* The activation fused into a MATMUL or CONV2D epilogue. Not gelu: its backward needs the
 * pre-activation input, which a fused node never stores (the graph puts gelu in an ACT node). */
static vt_status check_fused_act(const vt_node *n, vt_act a) {
    CHECK(a >= VT_ACT_NONE && a < VT_ACT_COUNT, VT_ERR_INVALID_ARG, "unknown activation %d", (int)a);
    CHECK(a != VT_ACT_GELU, VT_ERR_INVALID_ARG, "gelu cannot be fused (its backward needs the input); use an act node");
    return VT_OK;
}

static vt_status validate_operands(const vt_node *n) {
    int ns = vt_op_n_src(n->op), nd = vt_op_n_dst(n->op);
    for (int i = 0; i < VT_MAX_SRC; i++) {
        const vt_tensor *t = n->src[i];
        if (!t) continue;
        CHECK(i < ns, VT_ERR_INVALID_ARG, "src%d given but the op takes %d", i, ns);
        CHECK(t->ndim >= 1 && t->ndim <= VT_MAX_DIMS, VT_ERR_SHAPE, "src%d (%s) has rank %d", i, t->name, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] > 0, VT_ERR_SHAPE, "src%d (%s) has dim %d = %lld", i, t->name, d, (long long)t->shape[d]);
        CHECK(t->dtype != VT_F16 && t->dtype != VT_BF16, VT_ERR_DTYPE, "src%d (%s) is %s; only f32 is implemented", i,
              t->name, vt_dtype_name(t->dtype));
    }
    for (int i = 0; i < VT_MAX_DST; i++) {
        const vt_tensor *t = n->dst[i];
        if (!t) continue;
        CHECK(i < nd, VT_ERR_INVALID_ARG, "dst%d given but the op takes %d", i, nd);
        CHECK(t->ndim >= 1 && t->ndim <= VT_MAX_DIMS, VT_ERR_SHAPE, "dst%d (%s) has rank %d", i, t->name, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] > 0, VT_ERR_SHAPE, "dst%d (%s) has dim %d = %lld", i, t->name, d, (long long)t->shape[d]);
        CHECK(t->dtype != VT_F16 && t->dtype != VT_BF16, VT_ERR_DTYPE, "dst%d (%s) is %s; only f32 is implemented", i,
              t->name, vt_dtype_name(t->dtype));
    }
    return VT_OK;
}

static bool stats_of(const vt_tensor *t, int64_t c) {
    return is_f32(t) && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == c;
}

/* BN_STATS, BN_APPLY, BN_BWD_STATS, BN_BWD_APPLY: x is [N,C] or [N,C,H,W], the statistics and sums
 * [2,C], the per-channel vectors [C]; count (the elements per channel over all ranks) covers at least
 * this rank's N*H*W and more than one value. */
static vt_status validate_sync_bn(const vt_node *n) {
    const vt_batchnorm_params *p = &n->p.bn;
    vt_tensor *const *s = n->src;
    vt_tensor *const *d = n->dst;
    const vt_tensor *x = n->op == VT_OP_BN_STATS || n->op == VT_OP_BN_APPLY ? s[0] : s[1];
    CHECK(is_f32(x), VT_ERR_DTYPE, "x must be f32");
    CHECK(x->ndim == 2 || x->ndim == 4, VT_ERR_SHAPE, "x %s must be [N,C] or [N,C,H,W]", SHP(x));
    int64_t C = x->shape[1];
    int64_t M = vt_tensor_nelem(x) / C;
    CHECK(p->eps > 0.0f, VT_ERR_INVALID_ARG, "eps %g must be > 0", (double)p->eps);
    if (n->op == VT_OP_BN_APPLY || n->op == VT_OP_BN_BWD_APPLY)
        CHECK(p->count > 1 && p->count >= M, VT_ERR_INVALID_ARG,
              "count %lld (elements per channel over all ranks) must be > 1 and >= the %lld of x %s",
              (long long)p->count, (long long)M, SHP(x));
    switch (n->op) {
    case VT_OP_BN_STATS:
        CHECK(stats_of(d[0], C), VT_ERR_SHAPE, "stats %s, expected [2,%lld] f32", SHP(d[0]), (long long)C);
        return VT_OK;
    case VT_OP_BN_APPLY:
        CHECK(p->momentum >= 0.0f && p->momentum <= 1.0f, VT_ERR_INVALID_ARG, "momentum %g not in [0,1]",
              (double)p->momentum);
        for (int i = 1; i < 3; i++)
            CHECK(is_f32(s[i]) && vec_of(s[i], C), VT_ERR_SHAPE, "src%d %s, expected [%lld] f32", i, SHP(s[i]),
                  (long long)C);
        CHECK(stats_of(s[3], C), VT_ERR_SHAPE, "stats %s, expected [2,%lld] f32", SHP(s[3]), (long long)C);
        CHECK(is_f32(d[0]) && vt_tensor_same_shape(d[0], x), VT_ERR_SHAPE, "y %s must match x %s", SHP(d[0]), SHP(x));
        CHECK(!d[1] == !d[2], VT_ERR_INVALID_ARG, "running_mean and running_var are given together or not at all");
        for (int i = 1; i < 3; i++)
            if (d[i])
                CHECK(is_f32(d[i]) && vec_of(d[i], C), VT_ERR_SHAPE, "dst%d %s, expected [%lld] f32", i, SHP(d[i]),
                      (long long)C);
        return VT_OK;
    case VT_OP_BN_BWD_STATS:
        CHECK(is_f32(s[0]) && vt_tensor_same_shape(s[0], x), VT_ERR_SHAPE, "dy %s must match x %s", SHP(s[0]), SHP(x));
        CHECK(stats_of(s[2], C), VT_ERR_SHAPE, "stats %s, expected [2,%lld] f32", SHP(s[2]), (long long)C);
        CHECK(!d[0] == !d[1], VT_ERR_INVALID_ARG, "dgamma and dbeta are given together or not at all");
        for (int i = 0; i < 2; i++)
            if (d[i])
                CHECK(is_f32(d[i]) && vec_of(d[i], C), VT_ERR_SHAPE, "dst%d %s, expected [%lld] f32", i, SHP(d[i]),
                      (long long)C);
        CHECK(stats_of(d[2], C), VT_ERR_SHAPE, "sums %s, expected [2,%lld] f32", SHP(d[2]), (long long)C);
        return VT_OK;
    default: /* BN_BWD_APPLY */
        CHECK(is_f32(s[0]) && vt_tensor_same_shape(s[0], x), VT_ERR_SHAPE, "dy %s must match x %s", SHP(s[0]), SHP(x));
        CHECK(is_f32(s[2]) && vec_of(s[2], C), VT_ERR_SHAPE, "gamma %s, expected [%lld] f32", SHP(s[2]), (long long)C);
        CHECK(stats_of(s[3], C), VT_ERR_SHAPE, "stats %s, expected [2,%lld] f32", SHP(s[3]), (long long)C);
        CHECK(stats_of(s[4], C), VT_ERR_SHAPE, "sums %s, expected [2,%lld] f32", SHP(s[4]), (long long)C);
        CHECK(is_f32(d[0]) && vt_tensor_same_shape(d[0], x), VT_ERR_SHAPE, "dx %s must match x %s", SHP(d[0]), SHP(x));
        return VT_OK;
    }
}

vt_status vt_node_validate(const vt_node *n) {
    CHECK(n->op > VT_OP_NONE && n->op < VT_OP_COUNT, VT_ERR_INVALID_ARG, "unknown op %d", (int)n->op);
    VT_TRY(validate_operands(n));
    vt_tensor *const *s = n->src;
    vt_tensor *const *d = n->dst;
    switch (n->op) {
    case VT_OP_MATMUL: {
        const vt_matmul_params *p = &n->p.matmul;
        CHECK(is_f32(s[0]) && is_f32(s[1]) && is_f32(d[0]), VT_ERR_DTYPE, "A, B and C must be f32");
        CHECK(s[0]->ndim == 2 && s[1]->ndim == 2 && d[0]->ndim == 2, VT_ERR_SHAPE, "A %s, B %s, C %s must be 2-D",
              SHP(s[0]), SHP(s[1]), SHP(d[0]));
        int64_t M = p->trans_a ? s[0]->shape[1] : s[0]->shape[0];
        int64_t K = p->trans_a ? s[0]->shape[0] : s[0]->shape[1];
        int64_t K2 = p->trans_b ? s[1]->shape[1] : s[1]->shape[0];
        int64_t N = p->trans_b ? s[1]->shape[0] : s[1]->shape[1];
        CHECK(K == K2, VT_ERR_SHAPE, "inner dims differ: A %s%s, B %s%s", SHP(s[0]), p->trans_a ? "^T" : "", SHP(s[1]),
              p->trans_b ? "^T" : "");
        CHECK(d[0]->shape[0] == M && d[0]->shape[1] == N, VT_ERR_SHAPE, "C %s, expected [%lld,%lld]", SHP(d[0]),
              (long long)M, (long long)N);
        if (s[2])
            CHECK(is_f32(s[2]) && vec_of(s[2], N), VT_ERR_SHAPE, "bias %s, expected [%lld] f32", SHP(s[2]),
                  (long long)N);
        return check_fused_act(n, p->act);
    }
    case VT_OP_BIAS_GRAD:
        CHECK(is_f32(s[0]) && is_f32(d[0]), VT_ERR_DTYPE, "dy and db must be f32");
        CHECK(s[0]->ndim == 2 || s[0]->ndim == 4, VT_ERR_SHAPE, "dy %s must be [N,C] or [N,C,H,W]", SHP(s[0]));
        CHECK(vec_of(d[0], s[0]->shape[1]), VT_ERR_SHAPE, "db %s, expected [%lld]", SHP(d[0]),
              (long long)s[0]->shape[1]);
        return VT_OK;
    case VT_OP_CONV2D:
    case VT_OP_CONV2D_BWD_DATA:
    case VT_OP_CONV2D_BWD_WEIGHT: {
        const vt_conv2d_params *p = &n->p.conv2d;
        CHECK(p->stride_h >= 1 && p->stride_w >= 1 && p->pad_h >= 0 && p->pad_w >= 0, VT_ERR_INVALID_ARG,
              "stride %dx%d must be >= 1 and pad %dx%d >= 0", p->stride_h, p->stride_w, p->pad_h, p->pad_w);
        const vt_tensor *x, *w, *y;
        if (n->op == VT_OP_CONV2D) {
            x = s[0];
            w = s[1];
            y = d[0];
        } else if (n->op == VT_OP_CONV2D_BWD_DATA) {
            y = s[0];
            w = s[1];
            x = d[0];
        } else {
            y = s[0];
            x = s[1];
            w = d[0];
        }
        CHECK(is_f32(x) && is_f32(w) && is_f32(y), VT_ERR_DTYPE, "all operands must be f32");
        CHECK(x->ndim == 4 && w->ndim == 4 && y->ndim == 4, VT_ERR_SHAPE, "x %s, w %s, y %s must be 4-D", SHP(x),
              SHP(w), SHP(y));
        CHECK(x->shape[1] == w->shape[1], VT_ERR_SHAPE, "x %s has %lld channels, w %s expects %lld", SHP(x),
              (long long)x->shape[1], SHP(w), (long long)w->shape[1]);
        CHECK(p->pad_h < w->shape[2] && p->pad_w < w->shape[3], VT_ERR_INVALID_ARG,
              "pad %dx%d must be smaller than the kernel %lldx%lld", p->pad_h, p->pad_w, (long long)w->shape[2],
              (long long)w->shape[3]);
        int64_t P = conv_out(x->shape[2], (int)w->shape[2], p->stride_h, p->pad_h);
        int64_t Q = conv_out(x->shape[3], (int)w->shape[3], p->stride_w, p->pad_w);
        CHECK(P > 0 && Q > 0, VT_ERR_SHAPE, "kernel %s larger than padded input %s", SHP(w), SHP(x));
        CHECK(y->shape[0] == x->shape[0] && y->shape[1] == w->shape[0] && y->shape[2] == P && y->shape[3] == Q,
              VT_ERR_SHAPE, "x %s, w %s, stride %d pad %d: y is %s, expected [%lld,%lld,%lld,%lld]", SHP(x), SHP(w),
              p->stride_h, p->pad_h, SHP(y), (long long)x->shape[0], (long long)w->shape[0], (long long)P,
              (long long)Q);
        if (n->op == VT_OP_CONV2D) {
            if (s[2])
                CHECK(is_f32(s[2]) && vec_of(s[2], w->shape[0]), VT_ERR_SHAPE, "bias %s, expected [%lld]", SHP(s[2]),
                      (long long)w->shape[0]);
            return check_fused_act(n, p->act);
        }
        CHECK(p->act == VT_ACT_NONE, VT_ERR_INVALID_ARG, "backward convolutions take no activation");
        return VT_OK;
    }
    case VT_OP_CONV2D_TRANSPOSE: {
        /* x [N,C,H,W], w [C,K,R,S], bias [K], y [N,K,P,Q] with P in PyTorch's output_padding range: the
         * P, Q for which CONV2D(y, w) has H, W outputs, so that CONV2D_BWD_DATA can compute it. */
        const vt_conv2d_params *p = &n->p.conv2d;
        CHECK(p->stride_h >= 1 && p->stride_w >= 1 && p->pad_h >= 0 && p->pad_w >= 0, VT_ERR_INVALID_ARG,
              "stride %dx%d must be >= 1 and pad %dx%d >= 0", p->stride_h, p->stride_w, p->pad_h, p->pad_w);
        const vt_tensor *x = s[0], *w = s[1], *y = d[0];
        CHECK(is_f32(x) && is_f32(w) && is_f32(y), VT_ERR_DTYPE, "x, w and y must be f32");
        CHECK(x->ndim == 4 && w->ndim == 4 && y->ndim == 4, VT_ERR_SHAPE, "x %s, w %s, y %s must be 4-D", SHP(x),
              SHP(w), SHP(y));
        CHECK(x->shape[1] == w->shape[0], VT_ERR_SHAPE, "x %s has %lld channels, w %s [C,K,R,S] expects %lld", SHP(x),
              (long long)x->shape[1], SHP(w), (long long)w->shape[0]);
        CHECK(p->pad_h < w->shape[2] && p->pad_w < w->shape[3], VT_ERR_INVALID_ARG,
              "pad %dx%d must be smaller than the kernel %lldx%lld", p->pad_h, p->pad_w, (long long)w->shape[2],
              (long long)w->shape[3]);
        int64_t P0 = (x->shape[2] - 1) * p->stride_h - 2 * (int64_t)p->pad_h + w->shape[2];
        int64_t Q0 = (x->shape[3] - 1) * p->stride_w - 2 * (int64_t)p->pad_w + w->shape[3];
        CHECK(P0 > 0 && Q0 > 0, VT_ERR_SHAPE, "x %s, w %s, pad %dx%d: empty output", SHP(x), SHP(w), p->pad_h,
              p->pad_w);
        CHECK(y->shape[0] == x->shape[0] && y->shape[1] == w->shape[1] && y->shape[2] >= P0 &&
                  y->shape[2] < P0 + p->stride_h && y->shape[3] >= Q0 && y->shape[3] < Q0 + p->stride_w,
              VT_ERR_SHAPE,
              "x %s, w %s, stride %dx%d pad %dx%d: y is %s, expected [%lld,%lld,%lld..%lld,%lld..%lld]", SHP(x),
              SHP(w), p->stride_h, p->stride_w, p->pad_h, p->pad_w, SHP(y), (long long)x->shape[0],
              (long long)w->shape[1], (long long)P0, (long long)(P0 + p->stride_h - 1), (long long)Q0,
              (long long)(Q0 + p->stride_w - 1));
        if (s[2])
            CHECK(is_f32(s[2]) && vec_of(s[2], w->shape[1]), VT_ERR_SHAPE, "bias %s, expected [%lld] f32", SHP(s[2]),
                  (long long)w->shape[1]);
        CHECK(p->act == VT_ACT_NONE, VT_ERR_INVALID_ARG, "conv2d_transpose takes no fused activation (an act node)");
        return VT_OK;
    }
    case VT_OP_POOL2D:
    case VT_OP_POOL2D_BWD: {
        const vt_pool2d_params *p = &n->p.pool2d;
        CHECK(p->kind == VT_POOL_MAX || p->kind == VT_POOL_AVG, VT_ERR_INVALID_ARG, "unknown pool kind %d",
              (int)p->kind);
        CHECK(p->kh >= 1 && p->kw >= 1 && p->stride_h >= 1 && p->stride_w >= 1, VT_ERR_INVALID_ARG,
              "kernel %dx%d and stride %dx%d must be >= 1", p->kh, p->kw, p->stride_h, p->stride_w);
        CHECK(p->pad_h >= 0 && p->pad_w >= 0 && 2 * p->pad_h <= p->kh && 2 * p->pad_w <= p->kw, VT_ERR_INVALID_ARG,
              "pad %dx%d must be at most half the kernel %dx%d", p->pad_h, p->pad_w, p->kh, p->kw);
        const vt_tensor *x = n->op == VT_OP_POOL2D ? s[0] : s[1];
        const vt_tensor *y = n->op == VT_OP_POOL2D ? d[0] : s[0];
        const vt_tensor *dx = n->op == VT_OP_POOL2D_BWD ? d[0] : NULL;
        CHECK(is_f32(x) && is_f32(y), VT_ERR_DTYPE, "operands must be f32");
        CHECK(x->ndim == 4 && y->ndim == 4, VT_ERR_SHAPE, "x %s and y %s must be 4-D", SHP(x), SHP(y));
        int64_t P = conv_out(x->shape[2], p->kh, p->stride_h, p->pad_h);
        int64_t Q = conv_out(x->shape[3], p->kw, p->stride_w, p->pad_w);
        CHECK(P > 0 && Q > 0 && y->shape[0] == x->shape[0] && y->shape[1] == x->shape[1] && y->shape[2] == P &&
                  y->shape[3] == Q,
              VT_ERR_SHAPE, "x %s, kernel %dx%d stride %d: y is %s, expected [%lld,%lld,%lld,%lld]", SHP(x), p->kh,
              p->kw, p->stride_h, SHP(y), (long long)x->shape[0], (long long)x->shape[1], (long long)P, (long long)Q);
        if (dx)
            CHECK(is_f32(dx) && vt_tensor_same_shape(dx, x), VT_ERR_SHAPE, "dx %s must match x %s", SHP(dx), SHP(x));
        return VT_OK;
    }
    case VT_OP_BATCHNORM:
    case VT_OP_BATCHNORM_BWD: {
        const vt_batchnorm_params *p = &n->p.bn;
        const vt_tensor *x = n->op == VT_OP_BATCHNORM ? s[0] : s[1];
        CHECK(is_f32(x), VT_ERR_DTYPE, "x must be f32");
        CHECK(x->ndim == 2 || x->ndim == 4, VT_ERR_SHAPE, "x %s must be [N,C] or [N,C,H,W]", SHP(x));
        int64_t C = x->shape[1];
        int64_t M = vt_tensor_nelem(x) / C;
        CHECK(p->eps > 0.0f, VT_ERR_INVALID_ARG, "eps %g must be > 0", (double)p->eps);
        if (n->op == VT_OP_BATCHNORM) {
            CHECK(p->momentum >= 0.0f && p->momentum <= 1.0f, VT_ERR_INVALID_ARG, "momentum %g not in [0,1]",
                  (double)p->momentum);
            for (int i = 1; i < 5; i++)
                CHECK(s[i] && is_f32(s[i]) && vec_of(s[i], C), VT_ERR_SHAPE, "src%d %s, expected [%lld] f32", i,
                      SHP(s[i]), (long long)C);
            CHECK(d[0] && is_f32(d[0]) && vt_tensor_same_shape(d[0], x), VT_ERR_SHAPE, "y %s must match x %s",
                  SHP(d[0]), SHP(x));
            if (p->training) {
                CHECK(M > 1, VT_ERR_SHAPE, "training statistics need more than one value per channel, x is %s", SHP(x));
                CHECK(d[1] && d[2], VT_ERR_INVALID_ARG, "training needs save_mean and save_invstd outputs");
            }
            for (int i = 1; i < 3; i++)
                if (d[i])
                    CHECK(is_f32(d[i]) && vec_of(d[i], C), VT_ERR_SHAPE, "dst%d %s, expected [%lld]", i, SHP(d[i]),
                          (long long)C);
        } else {
            CHECK(is_f32(s[0]) && vt_tensor_same_shape(s[0], x), VT_ERR_SHAPE, "dy %s must match x %s", SHP(s[0]),
                  SHP(x));
            for (int i = 2; i < 5; i++)
                CHECK(s[i] && is_f32(s[i]) && vec_of(s[i], C), VT_ERR_SHAPE, "src%d %s, expected [%lld] f32", i,
                      SHP(s[i]), (long long)C);
            CHECK(d[0] && is_f32(d[0]) && vt_tensor_same_shape(d[0], x), VT_ERR_SHAPE, "dx %s must match x %s",
                  SHP(d[0]), SHP(x));
            CHECK(d[1] && d[2] && vec_of(d[1], C) && vec_of(d[2], C) && is_f32(d[1]) && is_f32(d[2]), VT_ERR_SHAPE,
                  "dgamma %s and dbeta %s must be [%lld] f32", SHP(d[1]), SHP(d[2]), (long long)C);
        }
        return VT_OK;
    }
    case VT_OP_BN_STATS:
    case VT_OP_BN_APPLY:
    case VT_OP_BN_BWD_STATS:
    case VT_OP_BN_BWD_APPLY: return validate_sync_bn(n);
    case VT_OP_ACT:
    case VT_OP_ACT_BWD:
        CHECK(n->p.act.kind > VT_ACT_NONE && n->p.act.kind < VT_ACT_COUNT, VT_ERR_INVALID_ARG, "unknown activation %d",
              (int)n->p.act.kind);
        /* fallthrough */
    case VT_OP_ADD:
    case VT_OP_DROPOUT:
    case VT_OP_DROPOUT_BWD: {
        int ns = vt_op_n_src(n->op);
        for (int i = 0; i < ns; i++)
            CHECK(is_f32(s[i]) && vt_tensor_nelem(s[i]) == vt_tensor_nelem(s[0]), VT_ERR_SHAPE,
                  "src%d %s must be f32 like src0 %s", i, SHP(s[i]), SHP(s[0]));
        CHECK(is_f32(d[0]) && vt_tensor_nelem(d[0]) == vt_tensor_nelem(s[0]), VT_ERR_SHAPE,
              "dst %s must be f32 with the %lld elements of %s", SHP(d[0]), (long long)vt_tensor_nelem(s[0]),
              SHP(s[0]));
        if (n->op == VT_OP_DROPOUT || n->op == VT_OP_DROPOUT_BWD)
            CHECK(n->p.dropout.p >= 0.0f && n->p.dropout.p < 1.0f, VT_ERR_INVALID_ARG, "p = %g not in [0,1)",
                  (double)n->p.dropout.p);
        return VT_OK;
    }
    case VT_OP_SOFTMAX_CE:
    case VT_OP_SOFTMAX_CE_BWD: {
        const vt_softmax_ce_params *p = &n->p.ce;
        CHECK(is_f32(s[0]) && (s[0]->ndim == 2 || s[0]->ndim == 4), VT_ERR_SHAPE,
              "logits %s must be [N,K] or [N,K,H,W] f32", SHP(s[0]));
        CHECK(s[1] && s[1]->dtype == VT_I32 && class_axis_labels(s[0], s[1]), VT_ERR_SHAPE,
              "labels %s must be i32 with the shape of logits %s without axis 1", SHP(s[1]), SHP(s[0]));
        CHECK(p->label_smoothing >= 0.0f && p->label_smoothing < 1.0f, VT_ERR_INVALID_ARG,
              "label smoothing %g not in [0,1)", (double)p->label_smoothing);
        CHECK(p->ignore == 0 || p->ignore == 1, VT_ERR_INVALID_ARG, "ignore = %d must be 0 or 1", p->ignore);
        if (n->op == VT_OP_SOFTMAX_CE) {
            CHECK(d[0] && is_f32(d[0]) && vec_of(d[0], 1), VT_ERR_SHAPE, "loss %s must be [1] f32", SHP(d[0]));
            if (d[1]) CHECK(is_f32(d[1]) && vec_of(d[1], 3), VT_ERR_SHAPE, "metrics %s must be [3] f32", SHP(d[1]));
        } else {
            CHECK(is_f32(d[0]) && vt_tensor_same_shape(d[0], s[0]), VT_ERR_SHAPE, "dlogits %s must match logits %s",
                  SHP(d[0]), SHP(s[0]));
        }
        return VT_OK;
    }
    case VT_OP_ARGMAX:
        CHECK(is_f32(s[0]) && (s[0]->ndim == 2 || s[0]->ndim == 4), VT_ERR_SHAPE, "x %s must be [N,K] or [N,K,H,W] f32",
              SHP(s[0]));
        CHECK(d[0] && d[0]->dtype == VT_I32 && class_axis_labels(s[0], d[0]), VT_ERR_SHAPE,
              "dst %s must be i32 with the shape of x %s without axis 1", SHP(d[0]), SHP(s[0]));
        return VT_OK;
    case VT_OP_CONFUSION: {
        CHECK(s[0] && s[1] && s[0]->dtype == VT_I32 && s[1]->dtype == VT_I32 &&
                  vt_tensor_nelem(s[0]) == vt_tensor_nelem(s[1]),
              VT_ERR_SHAPE, "pred %s and truth %s must be i32 of the same size", SHP(s[0]), SHP(s[1]));
        CHECK(d[0] && d[0]->dtype == VT_I32 && d[0]->ndim == 2 && d[0]->shape[0] == d[0]->shape[1] &&
                  d[0]->shape[0] >= 2 && d[0]->shape[0] <= 4097,
              VT_ERR_SHAPE, "counts %s must be [K+1,K+1] i32 with 1 <= K <= 4096", SHP(d[0]));
        return VT_OK;
    }
    case VT_OP_UPSAMPLE:
    case VT_OP_UPSAMPLE_BWD: {
        CHECK(n->p.upsample.mode == VT_UPSAMPLE_NEAREST || n->p.upsample.mode == VT_UPSAMPLE_BILINEAR,
              VT_ERR_INVALID_ARG, "unknown mode %d", (int)n->p.upsample.mode);
        const vt_tensor *x = n->op == VT_OP_UPSAMPLE ? s[0] : d[0];
        const vt_tensor *y = n->op == VT_OP_UPSAMPLE ? d[0] : s[0];
        CHECK(is_f32(x) && is_f32(y) && x->ndim == 4 && y->ndim == 4, VT_ERR_SHAPE, "x %s and y %s must be 4-D f32",
              SHP(x), SHP(y));
        CHECK(x->shape[0] == y->shape[0] && x->shape[1] == y->shape[1], VT_ERR_SHAPE, "x %s and y %s differ in N or C",
              SHP(x), SHP(y));
        return VT_OK;
    }
    case VT_OP_BATCH_PREP: {
        const vt_batch_prep_params *p = &n->p.prep;
        const vt_tensor *img = s[0], *lab = s[1], *perm = s[2], *x = d[0], *y = d[1];
        CHECK(img && img->dtype == VT_U8 && img->ndim == 4, VT_ERR_SHAPE, "images %s must be [D,C,H,W] u8", SHP(img));
        int64_t D = img->shape[0], C = img->shape[1];
        CHECK(C <= 4, VT_ERR_SHAPE, "images have %lld channels, at most 4 are supported", (long long)C);
        int64_t H = img->shape[2], W = img->shape[3];
        bool masks = lab && lab->dtype == VT_U8;
        if (masks)
            CHECK(lab->ndim == 3 && lab->shape[0] == D && lab->shape[1] == H && lab->shape[2] == W, VT_ERR_SHAPE,
                  "masks %s must be [%lld,%lld,%lld] u8", SHP(lab), (long long)D, (long long)H, (long long)W);
        else
            CHECK(lab && lab->dtype == VT_I32 && vec_of(lab, D), VT_ERR_SHAPE, "labels %s must be [%lld] i32 or masks u8",
                  SHP(lab), (long long)D);
        CHECK(perm && perm->dtype == VT_I32 && vec_of(perm, D), VT_ERR_SHAPE, "perm %s must be [%lld] i32", SHP(perm),
              (long long)D);
        CHECK(is_f32(x) && x->ndim == 4 && x->shape[1] == C && x->shape[2] >= 1 && x->shape[2] <= H &&
                  x->shape[3] >= 1 && x->shape[3] <= W && x->shape[0] >= 1 && x->shape[0] <= D,
              VT_ERR_SHAPE, "x %s must be [B,%lld,Ho,Wo] f32 with B <= %lld, Ho <= %lld, Wo <= %lld", SHP(x),
              (long long)C, (long long)D, (long long)H, (long long)W);
        if (masks)
            CHECK(y && y->dtype == VT_I32 && y->ndim == 3 && y->shape[0] == x->shape[0] &&
                      y->shape[1] == x->shape[2] && y->shape[2] == x->shape[3],
                  VT_ERR_SHAPE, "y %s must be [%lld,%lld,%lld] i32", SHP(y), (long long)x->shape[0],
                  (long long)x->shape[2], (long long)x->shape[3]);
        else
            CHECK(y && y->dtype == VT_I32 && vec_of(y, x->shape[0]), VT_ERR_SHAPE, "y %s must be [%lld] i32", SHP(y),
                  (long long)x->shape[0]);
        CHECK(p->center == 0 || p->center == 1, VT_ERR_INVALID_ARG, "center = %d must be 0 or 1", p->center);
        CHECK(p->pad >= 0 && p->pad <= 64, VT_ERR_INVALID_ARG, "crop padding %d not in [0,64]", p->pad);
        for (int c = 0; c < C; c++)
            CHECK(p->std[c] > 0.0f, VT_ERR_INVALID_ARG, "std[%d] = %g must be > 0", c, (double)p->std[c]);
        return VT_OK;
    }
    case VT_OP_SGD:
        CHECK(is_f32(s[0]) && is_f32(d[0]) && vt_tensor_nelem(s[0]) == vt_tensor_nelem(d[0]), VT_ERR_SHAPE,
              "grad %s and param %s must be f32 of the same size", SHP(s[0]), SHP(d[0]));
        if (n->p.sgd.momentum != 0.0f)
            CHECK(is_f32(d[1]) && vt_tensor_nelem(d[1]) == vt_tensor_nelem(d[0]), VT_ERR_SHAPE,
                  "momentum buffer %s must match param %s", SHP(d[1]), SHP(d[0]));
        CHECK(n->p.sgd.momentum >= 0.0f && n->p.sgd.weight_decay >= 0.0f, VT_ERR_INVALID_ARG,
              "momentum and weight decay must be >= 0");
        CHECK(!n->p.sgd.nesterov || n->p.sgd.momentum > 0.0f, VT_ERR_INVALID_ARG, "Nesterov needs momentum > 0");
        return VT_OK;
    case VT_OP_ADAM:
        CHECK(is_f32(s[0]) && is_f32(d[0]) && vt_tensor_nelem(s[0]) == vt_tensor_nelem(d[0]), VT_ERR_SHAPE,
              "grad %s and param %s must be f32 of the same size", SHP(s[0]), SHP(d[0]));
        CHECK(is_f32(d[1]) && is_f32(d[2]) && vt_tensor_nelem(d[1]) == vt_tensor_nelem(d[0]) &&
                  vt_tensor_nelem(d[2]) == vt_tensor_nelem(d[0]),
              VT_ERR_SHAPE, "moments %s, %s must match param %s", SHP(d[1]), SHP(d[2]), SHP(d[0]));
        CHECK(n->p.adam.beta1 >= 0.0f && n->p.adam.beta1 < 1.0f && n->p.adam.beta2 >= 0.0f && n->p.adam.beta2 < 1.0f,
              VT_ERR_INVALID_ARG, "betas (%g, %g) must be in [0,1)", (double)n->p.adam.beta1, (double)n->p.adam.beta2);
        CHECK(n->p.adam.eps > 0.0f && n->p.adam.weight_decay >= 0.0f, VT_ERR_INVALID_ARG,
              "eps must be > 0, weight decay >= 0");
        return VT_OK;
    case VT_OP_FILL: CHECK(d[0] != NULL, VT_ERR_INVALID_ARG, "no output"); return VT_OK;
    case VT_OP_NONFINITE:
        CHECK(is_f32(s[0]), VT_ERR_DTYPE, "x %s must be f32", SHP(s[0]));
        CHECK(d[0] != NULL && d[0]->dtype == VT_I32 && vt_tensor_nelem(d[0]) == 1, VT_ERR_SHAPE,
              "flag %s must be i32 [1]", SHP(d[0]));
        return VT_OK;
    default: return fail(n, VT_ERR_INVALID_ARG, "unknown op");
    }
}
