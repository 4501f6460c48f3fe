/* Layer helpers: each records the forward node(s) of one layer, with its parameters named as
 * PyTorch names them. A gelu asked of a linear or convolution layer becomes an ACT node after it,
 * never a fused epilogue: its backward needs the pre-activation input, which a fused node does not
 * keep. */
#include <stdio.h>
#include <string.h>

#include "graph_internal.h"

static vt_tensor *fwd_out(vt_graph *g, vt_op op, const vt_op_params *p, vt_tensor *const *src, const char *label,
                          const char *suffix) {
    int nd;
    int64_t shape[VT_MAX_DIMS];
    vt_dtype dt;
    vt_status s = vt_op_infer_shape(op, p, src, 0, &nd, shape, &dt);
    if (s != VT_OK) return vt_graph_fail(g, s);
    vt_tensor *y = vt_graph_new_like(g, label, suffix, dt, nd, shape);
    if (!y) return NULL;
    vt_tensor *dst[1] = {y};
    vt_node probe = {.op = op};
    probe.p = *p;
    for (int i = 0; i < vt_op_n_src(op); i++) probe.src[i] = src[i];
    probe.dst[0] = y;
    snprintf(probe.label, sizeof probe.label, "%s", label);
    s = vt_node_validate(&probe);
    if (s != VT_OK) return vt_graph_fail(g, s);
    if (vt_graph_add_node(g, op, p, src, vt_op_n_src(op), dst, 1, label) < 0) return NULL;
    return y;
}

vt_tensor *vt_g_linear(vt_graph *g, vt_tensor *x, const char *prefix, int64_t out, int bias, vt_act act, float alpha,
                       vt_init init) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 2) x = vt_graph_flatten(g, x);
    if (!x) return NULL;
    int64_t in = x->shape[1];
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    vt_tensor *w = vt_params_param(g->m, name, 2, (int64_t[]){out, in}, init, in, out);
    vt_tensor *b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        b = vt_params_param(g->m, name, 1, &out, VT_INIT_UNIFORM_FAN_IN, in, out);
        if (!b) return vt_graph_fail(g, VT_ERR_SHAPE);
    }
    if (!w) return vt_graph_fail(g, VT_ERR_SHAPE);
    int fuse = act != VT_ACT_GELU;
    vt_op_params p = {.matmul = {.trans_b = 1, .alpha = 1.0f}};
    p.matmul.act = fuse ? act : VT_ACT_NONE;
    p.matmul.act_alpha = fuse ? alpha : 0.0f;
    vt_tensor *src[3] = {x, w, b};
    vt_tensor *y = fwd_out(g, VT_OP_MATMUL, &p, src, prefix, "");
    return fuse || !y ? y : vt_g_act(g, y, act, alpha);
}

vt_tensor *vt_g_conv2d(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride, int pad,
                       int bias, vt_act act, float alpha, vt_init init) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "%s: conv2d input must be 4-D", prefix));
    int64_t cin = x->shape[1];
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    vt_tensor *w = vt_params_param(g->m, name, 4, (int64_t[]){cout, cin, k, k}, init, cin * k * k, cout * k * k);
    vt_tensor *b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        b = vt_params_param(g->m, name, 1, &cout, VT_INIT_UNIFORM_FAN_IN, cin * k * k, cout * k * k);
        if (!b) return vt_graph_fail(g, VT_ERR_SHAPE);
    }
    if (!w) return vt_graph_fail(g, VT_ERR_SHAPE);
    int fuse = act != VT_ACT_GELU;
    vt_op_params p = {.conv2d = {stride, stride, pad, pad, fuse ? act : VT_ACT_NONE, fuse ? alpha : 0.0f}};
    vt_tensor *src[3] = {x, w, b};
    vt_tensor *y = fwd_out(g, VT_OP_CONV2D, &p, src, prefix, "");
    return fuse || !y ? y : vt_g_act(g, y, act, alpha);
}

vt_tensor *vt_g_conv2d_transpose(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride,
                                 int pad, int bias, vt_init init) {
    return vt_g_conv2d_transpose_to(g, x, prefix, cout, k, stride, pad, bias, init, 0, 0);
}

vt_tensor *vt_g_conv2d_transpose_to(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride,
                                    int pad, int bias, vt_init init, int64_t out_h, int64_t out_w) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4)
        return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "%s: conv2d_transpose input must be 4-D", prefix));
    if (stride < 1) return vt_graph_fail(g, vt_error(VT_ERR_INVALID_ARG, "%s: stride %d must be >= 1", prefix, stride));
    int64_t cin = x->shape[1];
    char name[96];
    /* PyTorch's ConvTranspose2d weight [in, out, k, k]; its default init takes fan_in from dim 1 */
    snprintf(name, sizeof name, "%s.weight", prefix);
    vt_tensor *w = vt_params_param(g->m, name, 4, (int64_t[]){cin, cout, k, k}, init, cout * k * k, cin * k * k);
    vt_tensor *b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        b = vt_params_param(g->m, name, 1, &cout, VT_INIT_UNIFORM_FAN_IN, cout * k * k, cin * k * k);
        if (!b) return vt_graph_fail(g, VT_ERR_SHAPE);
    }
    if (!w) return vt_graph_fail(g, VT_ERR_SHAPE);
    /* no output_padding: y is (H-1)*stride - 2*pad + k, as PyTorch's default; else the size asked for,
     * which validation keeps within PyTorch's output_padding range */
    int64_t shape[4] = {x->shape[0], cout, (x->shape[2] - 1) * stride - 2 * (int64_t)pad + k,
                        (x->shape[3] - 1) * stride - 2 * (int64_t)pad + k};
    if (out_h > 0) shape[2] = out_h;
    if (out_w > 0) shape[3] = out_w;
    if (shape[2] <= 0 || shape[3] <= 0)
        return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "%s: conv2d_transpose of %s gives an empty output", prefix,
                                         x->name));
    vt_tensor *y = vt_graph_new_like(g, prefix, "", VT_F32, 4, shape);
    if (!y) return NULL;
    vt_op_params p = {.conv2d = {stride, stride, pad, pad, VT_ACT_NONE, 0.0f}};
    vt_node probe = {.op = VT_OP_CONV2D_TRANSPOSE, .p = p, .src = {x, w, b}, .dst = {y}};
    snprintf(probe.label, sizeof probe.label, "%s", prefix);
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return vt_graph_fail(g, s);
    vt_tensor *src[3] = {x, w, b}, *dst[1] = {y};
    if (vt_graph_add_node(g, VT_OP_CONV2D_TRANSPOSE, &p, src, 3, dst, 1, prefix) < 0) return NULL;
    return y;
}

/* A training batch norm of a synchronised graph: BN_STATS, a sync point where the host turns this
 * rank's statistics into the whole batch's, BN_APPLY with the whole batch's count. */
static vt_tensor *sync_batchnorm(vt_graph *g, vt_tensor *x, const char *prefix, vt_op_params *p, vt_tensor *gamma,
                                 vt_tensor *beta, vt_tensor *rm, vt_tensor *rv) {
    if (x->ndim != 2 && x->ndim != 4)
        return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "%s: batch norm input must be [N,C] or [N,C,H,W]", prefix));
    int64_t C = x->shape[1];
    p->bn.count = (int64_t)g->sync_ranks * (vt_tensor_nelem(x) / C);
    vt_tensor *stats = vt_graph_new_like(g, prefix, ".stats", VT_F32, 2, (int64_t[]){2, C});
    vt_tensor *y = vt_graph_new_like(g, prefix, "", VT_F32, x->ndim, x->shape);
    if (!stats || !y) return NULL;
    vt_node ps = {.op = VT_OP_BN_STATS, .p = *p, .src = {x}, .dst = {stats}};
    vt_node pa = {.op = VT_OP_BN_APPLY, .p = *p, .src = {x, gamma, beta, stats}, .dst = {y, rm, rv}};
    snprintf(ps.label, sizeof ps.label, "%s", prefix);
    snprintf(pa.label, sizeof pa.label, "%s", prefix);
    vt_status s = vt_node_validate(&ps);
    if (s == VT_OK) s = vt_node_validate(&pa);
    if (s != VT_OK) return vt_graph_fail(g, s);
    char label[48];
    snprintf(label, sizeof label, "%.40s:stats", prefix);
    int k = vt_graph_add_node(g, VT_OP_BN_STATS, p, ps.src, 1, ps.dst, 1, label);
    if (k < 0 || vt_graph_add_sync(g, k, VT_SYNC_BN_STATS, stats) != VT_OK) return NULL;
    if (vt_graph_add_node(g, VT_OP_BN_APPLY, p, pa.src, 4, pa.dst, 3, prefix) < 0) return NULL;
    return y;
}

vt_tensor *vt_g_batchnorm(vt_graph *g, vt_tensor *x, const char *prefix, float momentum, float eps, int frozen) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    int64_t C = x->shape[1];
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    vt_tensor *gamma = vt_params_param(g->m, name, 1, &C, VT_INIT_ONES, C, C);
    snprintf(name, sizeof name, "%s.bias", prefix);
    vt_tensor *beta = vt_params_param(g->m, name, 1, &C, VT_INIT_ZEROS, C, C);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    vt_tensor *rm = vt_params_state(g->m, name, 1, &C, 0.0f);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    vt_tensor *rv = vt_params_state(g->m, name, 1, &C, 1.0f);
    if (!gamma || !beta || !rm || !rv) return vt_graph_fail(g, VT_ERR_SHAPE);
    vt_op_params p = {.bn = {.training = g->training && !frozen, .momentum = momentum, .eps = eps}};
    if (p.bn.training && g->sync_ranks > 0) return sync_batchnorm(g, x, prefix, &p, gamma, beta, rm, rv);
    vt_tensor *y = vt_graph_new_like(g, prefix, "", VT_F32, x->ndim, x->shape);
    vt_tensor *sm = vt_graph_new_like(g, prefix, ".save_mean", VT_F32, 1, &C);
    vt_tensor *si = vt_graph_new_like(g, prefix, ".save_invstd", VT_F32, 1, &C);
    if (!y || !sm || !si) return NULL;
    vt_tensor *src[5] = {x, gamma, beta, rm, rv};
    vt_tensor *dst[3] = {y, sm, si};
    vt_node probe = {.op = VT_OP_BATCHNORM, .p = p, .src = {x, gamma, beta, rm, rv}, .dst = {y, sm, si}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return vt_graph_fail(g, s);
    if (vt_graph_add_node(g, VT_OP_BATCHNORM, &p, src, 5, dst, 3, prefix) < 0) return NULL;
    return y;
}

vt_tensor *vt_g_act(vt_graph *g, vt_tensor *x, vt_act kind, float alpha) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (kind == VT_ACT_NONE) return x;
    vt_op_params p = {.act = {kind, alpha}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.%s", x->name, vt_act_name(kind));
    return fwd_out(g, VT_OP_ACT, &p, src, label, "");
}

vt_tensor *vt_g_gelu(vt_graph *g, vt_tensor *x) { return vt_g_act(g, x, VT_ACT_GELU, 0.0f); }

vt_tensor *vt_g_pool2d(vt_graph *g, vt_tensor *x, vt_pool_kind kind, int k, int stride, int pad) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    vt_op_params p = {.pool2d = {kind, k, k, stride, stride, pad, pad}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.%s", x->name, kind == VT_POOL_MAX ? "maxpool" : "avgpool");
    return fwd_out(g, VT_OP_POOL2D, &p, src, label, "");
}

vt_tensor *vt_g_global_avgpool(vt_graph *g, vt_tensor *x) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "global average pool needs a 4-D input"));
    vt_op_params p = {.pool2d = {VT_POOL_AVG, (int)x->shape[2], (int)x->shape[3], 1, 1, 0, 0}};
    vt_tensor *src[1] = {x};
    vt_tensor *y = fwd_out(g, VT_OP_POOL2D, &p, src, "avgpool", "");
    return y ? vt_graph_flatten(g, y) : NULL;
}

vt_tensor *vt_g_dropout(vt_graph *g, vt_tensor *x, float p_drop) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (!g->training || p_drop <= 0.0f) return x;
    vt_op_params p = {.dropout = {p_drop, 0xD0D0u + g->dropout_salt++}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.dropout", x->name);
    return fwd_out(g, VT_OP_DROPOUT, &p, src, label, "");
}

vt_tensor *vt_g_add(vt_graph *g, vt_tensor *a, vt_tensor *b) {
    if (g->status != VT_OK || !a || !b) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    vt_op_params p = {.fill = {0}};
    vt_tensor *src[2] = {a, b};
    char label[48];
    snprintf(label, sizeof label, "%.30s.add", a->name);
    return fwd_out(g, VT_OP_ADD, &p, src, label, "");
}

vt_tensor *vt_g_upsample(vt_graph *g, vt_tensor *x, vt_upsample_mode mode, int64_t h, int64_t w) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return vt_graph_fail(g, vt_error(VT_ERR_SHAPE, "upsample needs a 4-D input"));
    vt_tensor *y = vt_graph_new_like(g, "upsample", "", VT_F32, 4, (int64_t[]){x->shape[0], x->shape[1], h, w});
    if (!y) return NULL;
    vt_op_params p = {.upsample = {mode}};
    vt_tensor *src[1] = {x}, *dst[1] = {y};
    vt_node probe = {.op = VT_OP_UPSAMPLE, .p = p, .src = {x}, .dst = {y}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return vt_graph_fail(g, s);
    if (vt_graph_add_node(g, VT_OP_UPSAMPLE, &p, src, 1, dst, 1, "upsample") < 0) return NULL;
    return y;
}

static vt_tensor *softmax_ce(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing, int ignore,
                             vt_tensor *metrics) {
    if (g->status != VT_OK || !logits || !labels) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    vt_tensor *loss = vt_graph_tensor(g, "loss", VT_F32, 1, (int64_t[]){1});
    if (!loss) return NULL;
    if (metrics) vt_graph_external(g, metrics);
    /* the gradient of the sum over the rows (pixels) divided by all rows of the batch */
    vt_op_params p = {.ce = {label_smoothing, 1.0f / (float)vt_tensor_nelem(labels), ignore}};
    vt_tensor *src[2] = {logits, labels}, *dst[2] = {loss, metrics};
    vt_node probe = {.op = VT_OP_SOFTMAX_CE, .p = p, .src = {logits, labels}, .dst = {loss, metrics}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return vt_graph_fail(g, s);
    if (vt_graph_add_node(g, VT_OP_SOFTMAX_CE, &p, src, 2, dst, 2, "loss") < 0) return NULL;
    return loss;
}

vt_tensor *vt_g_softmax_ce(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing,
                           vt_tensor *metrics) {
    return softmax_ce(g, logits, labels, label_smoothing, 0, metrics);
}

vt_tensor *vt_g_softmax_ce_ignore(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing,
                                  vt_tensor *metrics) {
    return softmax_ce(g, logits, labels, label_smoothing, 1, metrics);
}

vt_tensor *vt_g_argmax(vt_graph *g, vt_tensor *x) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    int ndim = 0;
    int64_t shape[VT_MAX_DIMS];
    vt_dtype dt = VT_F32;
    vt_status s = vt_op_infer_shape(VT_OP_ARGMAX, NULL, &x, 0, &ndim, shape, &dt);
    if (s != VT_OK) return vt_graph_fail(g, s);
    vt_tensor *y = vt_graph_tensor(g, "argmax", dt, ndim, shape);
    if (!y) return NULL;
    vt_op_params p = {0};
    vt_tensor *src[1] = {x}, *dst[1] = {y};
    if (vt_graph_add_node(g, VT_OP_ARGMAX, &p, src, 1, dst, 1, "argmax") < 0) return NULL;
    return y;
}

vt_status vt_g_confusion(vt_graph *g, vt_tensor *pred, vt_tensor *truth, vt_tensor *counts) {
    if (g->status != VT_OK) return g->status;
    if (!pred || !truth || !counts) {
        vt_graph_fail(g, VT_ERR_INVALID_ARG);
        return g->status;
    }
    vt_graph_external(g, counts);
    vt_op_params p = {0};
    vt_node probe = {.op = VT_OP_CONFUSION, .p = p, .src = {pred, truth}, .dst = {counts}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) {
        vt_graph_fail(g, s);
        return g->status;
    }
    vt_tensor *src[2] = {pred, truth}, *dst[1] = {counts};
    if (vt_graph_add_node(g, VT_OP_CONFUSION, &p, src, 2, dst, 1, "confusion") < 0) return g->status;
    return VT_OK;
}
