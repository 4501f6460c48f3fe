/* Reverse-mode autodiff: vt_graph_backward appends the adjoint of every forward node, seeded by the
 * loss, and vt_graph_optimizer one fused update node per trainable parameter group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

static int is_param(const vt_tensor *t) { return (t->flags & VT_TENSOR_PARAM) != 0; }

static int param_frozen(const vt_graph *g, const vt_tensor *t, uint32_t frozen) {
    for (int i = 0; i < vt_params_n_params(g->m); i++)
        if (vt_params_param_at(g->m, i) == t) return (frozen >> vt_params_param_group(g->m, i)) & 1u;
    return 1;
}

/* Adds `d` (shaped like t, or like a view of t) to the gradient of t's base tensor. Parameter
 * gradients go straight into the model's gradient block when they are the first contribution. */
static vt_status grad_accumulate(vt_graph *g, vt_tensor *t, vt_tensor *d) {
    int ti = vt_graph_tindex(g, t);
    int bi = g->ti[ti].base;
    vt_tensor *base = g->ti[bi].t;
    if (d->ndim != base->ndim || !vt_tensor_same_shape(d, base))
        d = vt_graph_view_of(g, d, d->name, base->ndim, base->shape);
    if (!d) return g->status;
    if (g->ti[bi].grad < 0) {
        g->ti[bi].grad = vt_graph_tindex(g, d);
        return VT_OK;
    }
    vt_tensor *old = g->ti[g->ti[bi].grad].t;
    vt_tensor *sum;
    if (is_param(base)) {
        sum = old; /* in-place into the gradient block: an elementwise add reads each element before writing it */
    } else {
        sum = vt_graph_new_like(g, base->name, ".gsum", VT_F32, base->ndim, base->shape);
        if (!sum) return g->status;
    }
    vt_tensor *src[2] = {old, d}, *dst[1] = {sum};
    if (vt_graph_add_node(g, VT_OP_ADD, NULL, src, 2, dst, 1, "grad_sum") < 0) return g->status;
    g->ti[bi].grad = vt_graph_tindex(g, sum);
    return VT_OK;
}

/* Where the gradient of t should be written: the model's gradient block for a parameter that has
 * none yet, else a fresh planner tensor. */
static vt_tensor *grad_target(vt_graph *g, vt_tensor *t, const char *suffix) {
    int bi = g->ti[vt_graph_tindex(g, t)].base;
    vt_tensor *base = g->ti[bi].t;
    if (is_param(base) && g->ti[bi].grad < 0 && t == base) {
        vt_tensor *gt = vt_params_grad_of(g->m, base);
        vt_graph_tadd(g, gt, 0, 0);
        return gt;
    }
    return vt_graph_new_like(g, t->name, suffix, VT_F32, t->ndim, t->shape);
}

/* Registers the result of grad_target: either it already is the gradient (param block), or it is added. */
static vt_status grad_commit(vt_graph *g, vt_tensor *t, vt_tensor *d) {
    int bi = g->ti[vt_graph_tindex(g, t)].base;
    if (is_param(g->ti[bi].t) && d == vt_params_grad_of(g->m, g->ti[bi].t) && g->ti[bi].grad < 0) {
        g->ti[bi].grad = vt_graph_tindex(g, d);
        return VT_OK;
    }
    return grad_accumulate(g, t, d);
}

static int needs_grad(const vt_graph *g, const vt_tensor *t) {
    if (!t) return 0;
    int i = vt_graph_tindex(g, t);
    return i >= 0 && g->ti[g->ti[i].base].requires_grad;
}

static vt_tensor *grad_of(vt_graph *g, const vt_tensor *t) {
    int i = vt_graph_tindex(g, t);
    if (i < 0) return NULL;
    int gi = g->ti[g->ti[i].base].grad;
    if (gi < 0) return NULL;
    vt_tensor *gr = g->ti[gi].t;
    if (!vt_tensor_same_shape(gr, t)) gr = vt_graph_view_of(g, gr, gr->name, t->ndim, t->shape);
    return gr;
}

static int add_bwd(vt_graph *g, vt_op op, const vt_op_params *p, vt_tensor *s0, vt_tensor *s1, vt_tensor *s2,
                   vt_tensor *s3, vt_tensor *s4, vt_tensor *d0, vt_tensor *d1, vt_tensor *d2, const char *label,
                   const char *what) {
    vt_tensor *src[5] = {s0, s1, s2, s3, s4}, *dst[3] = {d0, d1, d2};
    char lab[48];
    snprintf(lab, sizeof lab, "%.32s:%s", label, what);
    return vt_graph_add_node(g, op, p, src, 5, dst, 3, lab);
}

/* The common adjoint: if t needs a gradient, d(t) = op(s0, s1) written where grad_target says, then
 * registered (or summed) by grad_commit. */
static vt_status grad_op(vt_graph *g, vt_tensor *t, vt_op op, const vt_op_params *p, vt_tensor *s0, vt_tensor *s1,
                         const char *label, const char *what) {
    if (!t || !needs_grad(g, t)) return VT_OK;
    vt_tensor *d = grad_target(g, t, ".grad");
    if (!d) return g->status;
    if (add_bwd(g, op, p, s0, s1, NULL, NULL, NULL, d, NULL, NULL, label, what) < 0) return g->status;
    return grad_commit(g, t, d);
}

/* dY through a fused activation epilogue: returns dZ (pre-activation gradient). Its ACT_BWD reads the
 * output y, which is right for every activation a node may fuse (never gelu: vt_node_validate). */
static vt_tensor *act_epilogue_bwd(vt_graph *g, vt_tensor *dy, vt_tensor *y, vt_act act, float alpha,
                                   const char *label) {
    if (act == VT_ACT_NONE) return dy;
    if (act == VT_ACT_GELU) return vt_graph_fail(g, vt_error(VT_ERR_INVALID_ARG, "%s: gelu cannot be fused", label));
    vt_tensor *dz = vt_graph_new_like(g, y->name, ".dz", VT_F32, y->ndim, y->shape);
    if (!dz) return NULL;
    vt_op_params p = {.act = {act, alpha}};
    if (add_bwd(g, VT_OP_ACT_BWD, &p, dy, y, NULL, NULL, NULL, dz, NULL, NULL, label, "act_bwd") < 0) return NULL;
    return dz;
}

/* BN_APPLY's adjoint: BN_BWD_STATS writes this rank's dgamma and dbeta (straight into their gradient
 * block when they are the first contribution) and the sums; a sync point turns the sums into their
 * sum over the ranks; BN_BWD_APPLY gives dx. Without a dx to compute, the sums go nowhere and there
 * is no sync point. */
static vt_status sync_batchnorm_bwd(vt_graph *g, const vt_node *n, vt_tensor *dy) {
    vt_tensor *x = n->src[0], *gamma = n->src[1], *beta = n->src[2], *stats = n->src[3];
    const char *L = n->label;
    int gx = needs_grad(g, x), gg = needs_grad(g, gamma), gb = needs_grad(g, beta);
    if (!gx && !gg && !gb) return VT_OK;
    vt_tensor *dg = NULL, *db = NULL;
    if (gg || gb) {
        dg = gg ? grad_target(g, gamma, ".grad") : vt_graph_new_like(g, L, ".dgunused", VT_F32, 1, gamma->shape);
        db = gb ? grad_target(g, beta, ".grad") : vt_graph_new_like(g, L, ".dbunused", VT_F32, 1, beta->shape);
        if (!dg || !db) return g->status;
    }
    vt_tensor *sums = vt_graph_new_like(g, L, ".sums", VT_F32, 2, stats->shape);
    if (!sums) return g->status;
    int k = add_bwd(g, VT_OP_BN_BWD_STATS, &n->p, dy, x, stats, NULL, NULL, dg, db, sums, L, "bwd_stats");
    if (k < 0) return g->status;
    if (gx) {
        VT_TRY(vt_graph_add_sync(g, k, VT_SYNC_SUM, sums));
        vt_tensor *dx = grad_target(g, x, ".grad");
        if (!dx) return g->status;
        if (add_bwd(g, VT_OP_BN_BWD_APPLY, &n->p, dy, x, gamma, stats, sums, dx, NULL, NULL, L, "bwd_apply") < 0)
            return g->status;
        VT_TRY(grad_commit(g, x, dx));
    }
    if (gg) VT_TRY(grad_commit(g, gamma, dg));
    if (gb) VT_TRY(grad_commit(g, beta, db));
    return VT_OK;
}

static vt_status backward_node(vt_graph *g, const vt_node *fn) {
    vt_node n = *fn; /* copy: g->nodes may move while we append */
    vt_tensor *y = n.dst[0];
    const char *L = n.label;
    if (n.op == VT_OP_SOFTMAX_CE) {
        return grad_op(g, n.src[0], VT_OP_SOFTMAX_CE_BWD, &n.p, n.src[0], n.src[1], L, "bwd");
    }
    vt_tensor *dy = grad_of(g, y);
    if (!dy) return VT_OK; /* nothing downstream needs it */
    switch (n.op) {
    case VT_OP_MATMUL: {
        const vt_matmul_params *mp = &n.p.matmul;
        if (mp->beta != 0.0f) return vt_error(VT_ERR_UNSUPPORTED, "%s: no gradient for matmul with beta != 0", L);
        vt_tensor *dz = act_epilogue_bwd(g, dy, y, mp->act, mp->act_alpha, L);
        if (!dz) return g->status;
        vt_tensor *A = n.src[0], *B = n.src[1], *bias = n.src[2];
        /* dA = dC op(B)^T (transposed back when A was used transposed); dB = op(A)^T dC likewise */
        vt_op_params pa = {.matmul = {.alpha = mp->alpha}}, pb = pa;
        if (!mp->trans_a) {
            pa.matmul.trans_a = 0;
            pa.matmul.trans_b = !mp->trans_b;
        } else {
            pa.matmul.trans_a = mp->trans_b;
            pa.matmul.trans_b = 1;
        }
        if (!mp->trans_b) {
            pb.matmul.trans_a = !mp->trans_a;
            pb.matmul.trans_b = 0;
        } else {
            pb.matmul.trans_a = 1;
            pb.matmul.trans_b = mp->trans_a;
        }
        VT_TRY(grad_op(g, A, VT_OP_MATMUL, &pa, mp->trans_a ? B : dz, mp->trans_a ? dz : B, L, "dA"));
        VT_TRY(grad_op(g, B, VT_OP_MATMUL, &pb, mp->trans_b ? dz : A, mp->trans_b ? A : dz, L, "dB"));
        return grad_op(g, bias, VT_OP_BIAS_GRAD, NULL, dz, NULL, L, "db");
    }
    case VT_OP_CONV2D: {
        const vt_conv2d_params *cp = &n.p.conv2d;
        vt_tensor *dz = act_epilogue_bwd(g, dy, y, cp->act, cp->act_alpha, L);
        if (!dz) return g->status;
        vt_tensor *x = n.src[0], *w = n.src[1], *bias = n.src[2];
        vt_op_params p = {.conv2d = *cp};
        p.conv2d.act = VT_ACT_NONE;
        p.conv2d.act_alpha = 0.0f;
        VT_TRY(grad_op(g, x, VT_OP_CONV2D_BWD_DATA, &p, dz, w, L, "bwd_data"));
        VT_TRY(grad_op(g, w, VT_OP_CONV2D_BWD_WEIGHT, &p, dz, x, L, "bwd_weight"));
        return grad_op(g, bias, VT_OP_BIAS_GRAD, NULL, dz, NULL, L, "db");
    }
    case VT_OP_CONV2D_TRANSPOSE: {
        /* The adjoint of the adjoint of CONV2D: dx = CONV2D(dy, w) (w [C,K,R,S] read as a CONV2D weight,
         * C outputs), dw = CONV2D_BWD_WEIGHT with x in the role of dy and dy in the role of x. */
        vt_tensor *x = n.src[0], *w = n.src[1], *bias = n.src[2];
        vt_op_params p = {.conv2d = n.p.conv2d};
        VT_TRY(grad_op(g, x, VT_OP_CONV2D, &p, dy, w, L, "dx"));
        VT_TRY(grad_op(g, w, VT_OP_CONV2D_BWD_WEIGHT, &p, x, dy, L, "dw"));
        return grad_op(g, bias, VT_OP_BIAS_GRAD, NULL, dy, NULL, L, "db");
    }
    case VT_OP_POOL2D: return grad_op(g, n.src[0], VT_OP_POOL2D_BWD, &n.p, dy, n.src[0], L, "bwd");
    case VT_OP_BATCHNORM: {
        vt_tensor *x = n.src[0], *gamma = n.src[1], *beta = n.src[2];
        int gx = needs_grad(g, x), gg = needs_grad(g, gamma), gb = needs_grad(g, beta);
        if (!gx && !gg && !gb) return VT_OK;
        if (!n.dst[1] || !n.dst[2]) return vt_error(VT_ERR_INVALID_ARG, "%s: batchnorm without saved statistics", L);
        vt_tensor *dx =
            gx ? grad_target(g, x, ".grad") : vt_graph_new_like(g, x->name, ".dxunused", VT_F32, x->ndim, x->shape);
        vt_tensor *dg =
            gg ? grad_target(g, gamma, ".grad") : vt_graph_new_like(g, L, ".dgunused", VT_F32, 1, gamma->shape);
        vt_tensor *db =
            gb ? grad_target(g, beta, ".grad") : vt_graph_new_like(g, L, ".dbunused", VT_F32, 1, beta->shape);
        if (!dx || !dg || !db) return g->status;
        if (add_bwd(g, VT_OP_BATCHNORM_BWD, &n.p, dy, x, gamma, n.dst[1], n.dst[2], dx, dg, db, L, "bwd") < 0)
            return g->status;
        if (gx) VT_TRY(grad_commit(g, x, dx));
        if (gg) VT_TRY(grad_commit(g, gamma, dg));
        if (gb) VT_TRY(grad_commit(g, beta, db));
        return VT_OK;
    }
    case VT_OP_BN_APPLY: return sync_batchnorm_bwd(g, &n, dy);
    case VT_OP_BN_STATS: return VT_OK; /* its share of the gradient is in BN_APPLY's, through the sums */
    case VT_OP_ACT:
        /* ACT_BWD reads the forward output y, except gelu's, which reads the input x (vt/act_formulas.h) */
        return grad_op(g, n.src[0], VT_OP_ACT_BWD, &n.p, dy, n.p.act.kind == VT_ACT_GELU ? n.src[0] : y, L, "bwd");
    case VT_OP_DROPOUT: return grad_op(g, n.src[0], VT_OP_DROPOUT_BWD, &n.p, dy, NULL, L, "bwd");
    case VT_OP_ADD:
        /* The gradient passes unchanged to both inputs. */
        for (int i = 0; i < 2; i++)
            if (needs_grad(g, n.src[i])) VT_TRY(grad_accumulate(g, n.src[i], dy));
        return VT_OK;
    case VT_OP_UPSAMPLE: return grad_op(g, n.src[0], VT_OP_UPSAMPLE_BWD, &n.p, dy, NULL, L, "bwd");
    case VT_OP_BATCH_PREP:
    case VT_OP_FILL:
    case VT_OP_NONFINITE:
    case VT_OP_ARGMAX:
    case VT_OP_CONFUSION: return VT_OK;
    default: return vt_error(VT_ERR_UNSUPPORTED, "%s: no gradient rule for op %s", L, vt_op_name(n.op));
    }
}

vt_status vt_graph_backward(vt_graph *g, vt_tensor *loss, uint32_t frozen_groups) {
    if (g->status != VT_OK) return g->status;
    if (!g->training) return vt_error(VT_ERR_INVALID_ARG, "backward of an evaluation graph");
    int li = loss ? vt_graph_tindex(g, loss) : -1;
    if (li < 0 || g->ti[li].producer < 0 || g->nodes[g->ti[li].producer].op != VT_OP_SOFTMAX_CE)
        return vt_error(VT_ERR_INVALID_ARG, "backward needs the loss returned by vt_g_softmax_ce");
    /* Which tensors lead to a trainable parameter (forward sweep). */
    for (int i = 0; i < g->n_t; i++) {
        vt_tensor *t = g->ti[i].t;
        g->ti[i].requires_grad = is_param(t) && !param_frozen(g, t, frozen_groups);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const vt_node *n = &g->nodes[k];
        int req = 0;
        for (int s = 0; s < VT_MAX_SRC; s++) req |= needs_grad(g, n->src[s]);
        if (n->op == VT_OP_BATCH_PREP || n->op == VT_OP_SGD || n->op == VT_OP_ADAM) req = 0;
        if (req)
            for (int d = 0; d < VT_MAX_DST; d++)
                if (n->dst[d]) g->ti[g->ti[vt_graph_tindex(g, n->dst[d])].base].requires_grad = 1;
    }
    /* Views share their base's flag. */
    for (int i = 0; i < g->n_t; i++) g->ti[i].requires_grad = g->ti[g->ti[i].base].requires_grad;
    g->n_forward = g->n_nodes;
    vt_phase saved = g->cur_phase;
    g->cur_phase = VT_PHASE_BACKWARD;
    vt_status s = backward_node(g, &g->nodes[g->ti[li].producer]);
    for (int k = g->n_forward - 1; k >= 0 && s == VT_OK; k--) {
        if (k == g->ti[li].producer) continue;
        s = backward_node(g, &g->nodes[k]);
        if (s == VT_OK) s = g->status;
    }
    g->cur_phase = saved == VT_PHASE_BACKWARD ? VT_PHASE_OPTIMIZER : saved;
    if (s != VT_OK && g->status == VT_OK) g->status = s;
    if (s != VT_OK) return s;
    /* Every trainable parameter must have received a gradient in its block. */
    for (int i = 0; i < vt_params_n_params(g->m); i++) {
        vt_tensor *p = vt_params_param_at(g->m, i);
        if (param_frozen(g, p, frozen_groups)) continue;
        int pi = vt_graph_tindex(g, p);
        if (pi < 0) continue; /* not used by this graph */
        int gi = g->ti[pi].grad;
        if (gi < 0 || g->ti[gi].t != vt_params_grad_of(g->m, p))
            return vt_error(VT_ERR_INVALID_ARG, "parameter %s got no gradient in its block", p->name);
    }
    return VT_OK;
}

/* The shortest decimal that reads back as f (0.999f -> 0.999): the value the user wrote, which torch
 * keeps as a Python float; Adam's constants (1 - beta2, ...) are computed from it in double. */
static double vt_decimal_of(float f) {
    if (!isfinite(f)) return (double)f;
    char buf[32];
    vt_float_shortest(f, buf, sizeof buf);
    return strtod(buf, NULL);
}

vt_status vt_graph_optimizer(vt_graph *g, const vt_optim_cfg *cfg, uint32_t frozen_groups) {
    if (g->status != VT_OK) return g->status;
    vt_phase saved = g->cur_phase;
    g->cur_phase = VT_PHASE_OPTIMIZER;
    /* One update node for both groups when they share every setting: the flat view of all groups spans
     * both, with the same alignment gaps that lie between the tensors of a group, so the values are
     * those of two nodes, in one dispatch instead of two. */
    int merged = (frozen_groups & 3u) == 0 && cfg->group_lr_mult[0] == cfg->group_lr_mult[1] &&
                 cfg->step_offset[0] == cfg->step_offset[1];
    for (int grp = merged ? -1 : 0; grp < (merged ? 0 : 2); grp++) {
        if (grp >= 0 && ((frozen_groups >> grp) & 1u)) continue;
        vt_tensor *p = vt_params_flat_params(g->m, grp), *gr = vt_params_flat_grads(g->m, grp);
        if (!p || !gr) continue;
        int gi = grp < 0 ? 0 : grp; /* settings of the group (equal for both when merged) */
        vt_op_params op = {0};
        vt_tensor *src[1] = {gr};
        vt_tensor *dst[3] = {p, NULL, NULL};
        vt_op kind;
        if (cfg->kind == VT_OPTIM_SGD) {
            kind = VT_OP_SGD;
            op.sgd = (vt_sgd_params){cfg->group_lr_mult[gi], cfg->momentum, cfg->weight_decay, cfg->nesterov};
            if (cfg->momentum != 0.0f) {
                dst[1] = vt_params_flat_opt(g->m, 0, grp);
                if (!dst[1]) return vt_error(VT_ERR_INVALID_ARG, "SGD with momentum needs 1 optimizer slot");
            }
        } else {
            kind = VT_OP_ADAM;
            op.adam =
                (vt_adam_params){cfg->group_lr_mult[gi],  vt_decimal_of(cfg->beta1),        vt_decimal_of(cfg->beta2),
                                 vt_decimal_of(cfg->eps), vt_decimal_of(cfg->weight_decay), cfg->kind == VT_OPTIM_ADAMW,
                                 cfg->step_offset[gi]};
            dst[1] = vt_params_flat_opt(g->m, 0, grp);
            dst[2] = vt_params_flat_opt(g->m, 1, grp);
            if (!dst[1] || !dst[2]) return vt_error(VT_ERR_INVALID_ARG, "Adam needs 2 optimizer slots");
        }
        vt_node probe = {.op = kind, .p = op, .src = {gr}, .dst = {dst[0], dst[1], dst[2]}};
        VT_TRY(vt_node_validate(&probe));
        if (vt_graph_add_node(g, kind, &op, src, 1, dst, 3, grp == 1 ? "optimizer.head" : "optimizer") < 0)
            return g->status;
    }
    g->cur_phase = saved;
    return g->status;
}
