/* Graph builder, reverse-mode autodiff, fused optimizer nodes and the memory planner.
 * Forward nodes are recorded by the layer helpers; vt_graph_backward appends their adjoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/graph.h"

typedef struct vt_tinfo {
    vt_tensor *t;
    int owned;        /* graph frees the struct */
    int planned;      /* memory from the arena */
    int base;         /* index of the tensor whose bytes it shares (itself when not a view) */
    int producer;     /* forward node that writes it, -1 */
    int requires_grad;
    int grad;         /* index of its gradient tensor, -1 */
    int first, last;  /* node range using it (planning) */
} vt_tinfo;

struct vt_graph {
    vt_params *m;
    int training;
    vt_status status;
    vt_tinfo *ti;
    int n_t, cap_t;
    vt_node *nodes;
    uint8_t *phase;
    int n_nodes, cap_nodes;
    int n_forward;    /* nodes before backward was appended */
    vt_phase cur_phase;
    vt_buffer *arena;
    size_t arena_bytes;
    int planned;
    vt_graph_exec exec[VT_PHASE_COUNT + 1]; /* per phase, and [VT_PHASE_COUNT] = all */
    uint32_t dropout_salt;
};

static vt_tensor *gfail(vt_graph *g, vt_status s) {
    if (g->status == VT_OK) g->status = s;
    return NULL;
}

vt_graph *vt_graph_new(vt_params *m, int training) {
    vt_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->m = m;
    g->training = training;
    g->cur_phase = VT_PHASE_FORWARD;
    return g;
}

void vt_graph_free(vt_graph *g) {
    if (!g) return;
    for (int i = 0; i <= VT_PHASE_COUNT; i++)
        if (g->m && vt_params_backend(g->m)) vt_graph_exec_reset(vt_params_backend(g->m), &g->exec[i]);
    for (int i = 0; i < g->n_t; i++)
        if (g->ti[i].owned) free(g->ti[i].t);
    free(g->ti);
    free(g->nodes);
    free(g->phase);
    vt_backend_buffer_free(g->arena);
    free(g);
}

vt_status vt_graph_status(const vt_graph *g) { return g->status; }
int vt_graph_training(const vt_graph *g) { return g->training; }
vt_params *vt_graph_params(const vt_graph *g) { return g->m; }
void vt_graph_set_phase(vt_graph *g, vt_phase phase) { g->cur_phase = phase; }
int vt_graph_n_nodes(const vt_graph *g) { return g->n_nodes; }
const vt_node *vt_graph_node(const vt_graph *g, int i) { return (i >= 0 && i < g->n_nodes) ? &g->nodes[i] : NULL; }
size_t vt_graph_arena_bytes(const vt_graph *g) { return g->arena_bytes; }

static int tindex(const vt_graph *g, const vt_tensor *t) {
    for (int i = g->n_t - 1; i >= 0; i--)
        if (g->ti[i].t == t) return i;
    return -1;
}

/* Registers t (if new) and returns its index. */
static int tadd(vt_graph *g, vt_tensor *t, int owned, int planned) {
    int i = tindex(g, t);
    if (i >= 0) return i;
    if (g->n_t == g->cap_t) {
        int cap = g->cap_t ? g->cap_t * 2 : 128;
        vt_tinfo *p = realloc(g->ti, (size_t)cap * sizeof *p);
        if (!p) return -1;
        g->ti = p;
        g->cap_t = cap;
    }
    vt_tinfo *r = &g->ti[g->n_t];
    memset(r, 0, sizeof *r);
    r->t = t;
    r->owned = owned;
    r->planned = planned;
    r->base = g->n_t;
    r->producer = -1;
    r->grad = -1;
    r->first = r->last = -1;
    return g->n_t++;
}

vt_tensor *vt_graph_tensor(vt_graph *g, const char *name, vt_dtype dtype, int ndim, const int64_t *shape) {
    if (g->status != VT_OK) return NULL;
    vt_tensor *t = calloc(1, sizeof *t);
    if (!t) return gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    vt_tensor_init(t, name, dtype, ndim, shape);
    if (tadd(g, t, 1, 1) < 0) {
        free(t);
        return gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    return t;
}

vt_tensor *vt_graph_external(vt_graph *g, vt_tensor *t) {
    if (g->status != VT_OK) return NULL;
    if (!t) return gfail(g, vt_error(VT_ERR_INVALID_ARG, "external tensor is NULL"));
    t->flags |= VT_TENSOR_EXTERNAL;
    if (tadd(g, t, 0, 0) < 0) return gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    return t;
}

static vt_tensor *view_of(vt_graph *g, vt_tensor *x, const char *name, int ndim, const int64_t *shape) {
    int xi = tadd(g, x, 0, 0);
    vt_tensor *v = calloc(1, sizeof *v);
    if (!v || xi < 0) {
        free(v);
        return gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    vt_tensor_init(v, name, x->dtype, ndim, shape);
    if (vt_tensor_nelem(v) != vt_tensor_nelem(x)) {
        char a[64], b[64];
        vt_status s = vt_error(VT_ERR_SHAPE, "reshape %s: %s has %lld elements, %s has %lld", x->name,
                               vt_tensor_describe(x, a, sizeof a), (long long)vt_tensor_nelem(x),
                               vt_tensor_describe(v, b, sizeof b), (long long)vt_tensor_nelem(v));
        free(v);
        return gfail(g, s);
    }
    v->flags = VT_TENSOR_VIEW;
    v->buf = x->buf;
    v->offset = x->offset;
    int vi = tadd(g, v, 1, 0);
    if (vi < 0) {
        free(v);
        return gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    g->ti[vi].base = g->ti[xi].base;
    g->ti[vi].producer = g->ti[xi].producer;
    return v;
}

vt_tensor *vt_graph_reshape(vt_graph *g, vt_tensor *x, int ndim, const int64_t *shape) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    char name[64];
    snprintf(name, sizeof name, "%.50s.view", x->name);
    return view_of(g, x, name, ndim, shape);
}

vt_tensor *vt_graph_flatten(vt_graph *g, vt_tensor *x) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    int64_t shape[2] = {x->shape[0], vt_tensor_nelem(x) / x->shape[0]};
    return vt_graph_reshape(g, x, 2, shape);
}

int vt_graph_add_node(vt_graph *g, vt_op op, const vt_op_params *p, vt_tensor *const *src, int n_src,
                      vt_tensor *const *dst, int n_dst, const char *label) {
    if (g->status != VT_OK) return -1;
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 128;
        vt_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        uint8_t *ph = realloc(g->phase, (size_t)cap);
        if (n) g->nodes = n;
        if (ph) g->phase = ph;
        if (!n || !ph) {
            gfail(g, vt_error(VT_ERR_OOM, "out of host memory"));
            return -1;
        }
        g->cap_nodes = cap;
    }
    if (g->planned) {
        gfail(g, vt_error(VT_ERR_INVALID_ARG, "graph is already planned; build it completely first"));
        return -1;
    }
    vt_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (p) n->p = *p;
    for (int i = 0; i < n_src && i < VT_MAX_SRC; i++) {
        n->src[i] = src[i];
        if (src[i] && tadd(g, src[i], 0, 0) < 0) return -1;
    }
    for (int i = 0; i < n_dst && i < VT_MAX_DST; i++) {
        n->dst[i] = dst[i];
        if (dst[i]) {
            int di = tadd(g, dst[i], 0, 0);
            if (di < 0) return -1;
            if (g->ti[di].producer < 0) g->ti[di].producer = g->n_nodes;
        }
    }
    snprintf(n->label, sizeof n->label, "%s", label ? label : "");
    g->phase[g->n_nodes] = (uint8_t)g->cur_phase;
    return g->n_nodes++;
}

/* A planner tensor shaped like `like` (or given shape), named prefix+suffix. */
static vt_tensor *new_like(vt_graph *g, const char *prefix, const char *suffix, vt_dtype dt, int ndim,
                           const int64_t *shape) {
    char name[64];
    snprintf(name, sizeof name, "%.40s%.20s", prefix, suffix);
    return vt_graph_tensor(g, name, dt, ndim, shape);
}

static vt_tensor *fwd_out(vt_graph *g, vt_op op, const vt_op_params *p, vt_tensor *const *src, const char *label,
                          const char *suffix) {
    int nd;
    int64_t shape[VT_MAX_DIMS];
    vt_dtype dt;
    vt_status s = vt_op_infer_shape(op, p, src, 0, &nd, shape, &dt);
    if (s != VT_OK) return gfail(g, s);
    vt_tensor *y = new_like(g, label, suffix, dt, nd, shape);
    if (!y) return NULL;
    vt_tensor *dst[1] = {y};
    vt_node probe = {.op = op};
    probe.p = *p;
    for (int i = 0; i < vt_op_n_src(op); i++) probe.src[i] = src[i];
    probe.dst[0] = y;
    snprintf(probe.label, sizeof probe.label, "%s", label);
    s = vt_node_validate(&probe);
    if (s != VT_OK) return gfail(g, s);
    if (vt_graph_add_node(g, op, p, src, vt_op_n_src(op), dst, 1, label) < 0) return NULL;
    return y;
}

vt_tensor *vt_g_linear(vt_graph *g, vt_tensor *x, const char *prefix, int64_t out, int bias, vt_act act, float alpha,
                       vt_init init) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
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
        if (!b) return gfail(g, VT_ERR_SHAPE);
    }
    if (!w) return gfail(g, VT_ERR_SHAPE);
    vt_op_params p = {.matmul = {.trans_b = 1, .alpha = 1.0f, .act = act, .act_alpha = alpha}};
    vt_tensor *src[3] = {x, w, b};
    return fwd_out(g, VT_OP_MATMUL, &p, src, prefix, "");
}

vt_tensor *vt_g_conv2d(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride, int pad,
                       int bias, vt_act act, float alpha, vt_init init) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return gfail(g, vt_error(VT_ERR_SHAPE, "%s: conv2d input must be 4-D", prefix));
    int64_t cin = x->shape[1];
    char name[96];
    snprintf(name, sizeof name, "%s.weight", prefix);
    vt_tensor *w = vt_params_param(g->m, name, 4, (int64_t[]){cout, cin, k, k}, init, cin * k * k, cout * k * k);
    vt_tensor *b = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        b = vt_params_param(g->m, name, 1, &cout, VT_INIT_UNIFORM_FAN_IN, cin * k * k, cout * k * k);
        if (!b) return gfail(g, VT_ERR_SHAPE);
    }
    if (!w) return gfail(g, VT_ERR_SHAPE);
    vt_op_params p = {.conv2d = {stride, stride, pad, pad, act, alpha}};
    vt_tensor *src[3] = {x, w, b};
    return fwd_out(g, VT_OP_CONV2D, &p, src, prefix, "");
}

vt_tensor *vt_g_batchnorm(vt_graph *g, vt_tensor *x, const char *prefix, float momentum, float eps, int frozen) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
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
    if (!gamma || !beta || !rm || !rv) return gfail(g, VT_ERR_SHAPE);
    vt_op_params p = {.bn = {.training = g->training && !frozen, .momentum = momentum, .eps = eps}};
    vt_tensor *y = new_like(g, prefix, "", VT_F32, x->ndim, x->shape);
    vt_tensor *sm = new_like(g, prefix, ".save_mean", VT_F32, 1, &C);
    vt_tensor *si = new_like(g, prefix, ".save_invstd", VT_F32, 1, &C);
    if (!y || !sm || !si) return NULL;
    vt_tensor *src[5] = {x, gamma, beta, rm, rv};
    vt_tensor *dst[3] = {y, sm, si};
    vt_node probe = {.op = VT_OP_BATCHNORM, .p = p, .src = {x, gamma, beta, rm, rv}, .dst = {y, sm, si}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return gfail(g, s);
    if (vt_graph_add_node(g, VT_OP_BATCHNORM, &p, src, 5, dst, 3, prefix) < 0) return NULL;
    return y;
}

vt_tensor *vt_g_act(vt_graph *g, vt_tensor *x, vt_act kind, float alpha) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    if (kind == VT_ACT_NONE) return x;
    vt_op_params p = {.act = {kind, alpha}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.%s", x->name, vt_act_name(kind));
    return fwd_out(g, VT_OP_ACT, &p, src, label, "");
}

vt_tensor *vt_g_pool2d(vt_graph *g, vt_tensor *x, vt_pool_kind kind, int k, int stride, int pad) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    vt_op_params p = {.pool2d = {kind, k, k, stride, stride, pad, pad}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.%s", x->name, kind == VT_POOL_MAX ? "maxpool" : "avgpool");
    return fwd_out(g, VT_OP_POOL2D, &p, src, label, "");
}

vt_tensor *vt_g_global_avgpool(vt_graph *g, vt_tensor *x) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return gfail(g, vt_error(VT_ERR_SHAPE, "global average pool needs a 4-D input"));
    vt_op_params p = {.pool2d = {VT_POOL_AVG, (int)x->shape[2], (int)x->shape[3], 1, 1, 0, 0}};
    vt_tensor *src[1] = {x};
    vt_tensor *y = fwd_out(g, VT_OP_POOL2D, &p, src, "avgpool", "");
    return y ? vt_graph_flatten(g, y) : NULL;
}

vt_tensor *vt_g_dropout(vt_graph *g, vt_tensor *x, float p_drop) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    if (!g->training || p_drop <= 0.0f) return x;
    vt_op_params p = {.dropout = {p_drop, 0xD0D0u + g->dropout_salt++}};
    vt_tensor *src[1] = {x};
    char label[48];
    snprintf(label, sizeof label, "%.30s.dropout", x->name);
    return fwd_out(g, VT_OP_DROPOUT, &p, src, label, "");
}

vt_tensor *vt_g_add(vt_graph *g, vt_tensor *a, vt_tensor *b) {
    if (g->status != VT_OK || !a || !b) return gfail(g, VT_ERR_INVALID_ARG);
    vt_op_params p = {.fill = {0}};
    vt_tensor *src[2] = {a, b};
    char label[48];
    snprintf(label, sizeof label, "%.30s.add", a->name);
    return fwd_out(g, VT_OP_ADD, &p, src, label, "");
}

vt_tensor *vt_g_upsample(vt_graph *g, vt_tensor *x, vt_upsample_mode mode, int64_t h, int64_t w) {
    if (g->status != VT_OK || !x) return gfail(g, VT_ERR_INVALID_ARG);
    if (x->ndim != 4) return gfail(g, vt_error(VT_ERR_SHAPE, "upsample needs a 4-D input"));
    vt_tensor *y = new_like(g, "upsample", "", VT_F32, 4, (int64_t[]){x->shape[0], x->shape[1], h, w});
    if (!y) return NULL;
    vt_op_params p = {.upsample = {mode}};
    vt_tensor *src[1] = {x}, *dst[1] = {y};
    vt_node probe = {.op = VT_OP_UPSAMPLE, .p = p, .src = {x}, .dst = {y}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return gfail(g, s);
    if (vt_graph_add_node(g, VT_OP_UPSAMPLE, &p, src, 1, dst, 1, "upsample") < 0) return NULL;
    return y;
}

vt_tensor *vt_g_softmax_ce(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing, vt_tensor *metrics) {
    if (g->status != VT_OK || !logits || !labels) return gfail(g, VT_ERR_INVALID_ARG);
    vt_tensor *loss = vt_graph_tensor(g, "loss", VT_F32, 1, (int64_t[]){1});
    if (!loss) return NULL;
    if (metrics) vt_graph_external(g, metrics);
    vt_op_params p = {.ce = {label_smoothing, 1.0f / (float)logits->shape[0]}};
    vt_tensor *src[2] = {logits, labels}, *dst[2] = {loss, metrics};
    vt_node probe = {.op = VT_OP_SOFTMAX_CE, .p = p, .src = {logits, labels}, .dst = {loss, metrics}};
    vt_status s = vt_node_validate(&probe);
    if (s != VT_OK) return gfail(g, s);
    if (vt_graph_add_node(g, VT_OP_SOFTMAX_CE, &p, src, 2, dst, 2, "loss") < 0) return NULL;
    return loss;
}

/* ---- autodiff ------------------------------------------------------------------------------ */

static int is_param(const vt_tensor *t) { return (t->flags & VT_TENSOR_PARAM) != 0; }

static int param_frozen(const vt_graph *g, const vt_tensor *t, uint32_t frozen) {
    for (int i = 0; i < vt_params_n_params(g->m); i++)
        if (vt_params_param_at(g->m, i) == t) return (frozen >> vt_params_param_group(g->m, i)) & 1u;
    return 1;
}

/* Adds `d` (shaped like t, or like a view of t) to the gradient of t's base tensor. Parameter
 * gradients go straight into the model's gradient block when they are the first contribution. */
static vt_status grad_accumulate(vt_graph *g, vt_tensor *t, vt_tensor *d) {
    int ti = tindex(g, t);
    int bi = g->ti[ti].base;
    vt_tensor *base = g->ti[bi].t;
    if (d->ndim != base->ndim || !vt_tensor_same_shape(d, base)) d = view_of(g, d, d->name, base->ndim, base->shape);
    if (!d) return g->status;
    if (g->ti[bi].grad < 0) {
        g->ti[bi].grad = tindex(g, d);
        return VT_OK;
    }
    vt_tensor *old = g->ti[g->ti[bi].grad].t;
    vt_tensor *sum;
    if (is_param(base)) {
        sum = old; /* in-place into the gradient block: an elementwise add reads each element before writing it */
    } else {
        sum = new_like(g, base->name, ".gsum", VT_F32, base->ndim, base->shape);
        if (!sum) return g->status;
    }
    vt_tensor *src[2] = {old, d}, *dst[1] = {sum};
    if (vt_graph_add_node(g, VT_OP_ADD, NULL, src, 2, dst, 1, "grad_sum") < 0) return g->status;
    g->ti[bi].grad = tindex(g, sum);
    return VT_OK;
}

/* Where the gradient of t should be written: the model's gradient block for a parameter that has
 * none yet, else a fresh planner tensor. */
static vt_tensor *grad_target(vt_graph *g, vt_tensor *t, const char *suffix) {
    int bi = g->ti[tindex(g, t)].base;
    vt_tensor *base = g->ti[bi].t;
    if (is_param(base) && g->ti[bi].grad < 0 && t == base) {
        vt_tensor *gt = vt_params_grad_of(g->m, base);
        tadd(g, gt, 0, 0);
        return gt;
    }
    return new_like(g, t->name, suffix, VT_F32, t->ndim, t->shape);
}

/* Registers the result of grad_target: either it already is the gradient (param block), or it is added. */
static vt_status grad_commit(vt_graph *g, vt_tensor *t, vt_tensor *d) {
    int bi = g->ti[tindex(g, t)].base;
    if (is_param(g->ti[bi].t) && d == vt_params_grad_of(g->m, g->ti[bi].t) && g->ti[bi].grad < 0) {
        g->ti[bi].grad = tindex(g, d);
        return VT_OK;
    }
    return grad_accumulate(g, t, d);
}

static int needs_grad(const vt_graph *g, const vt_tensor *t) {
    if (!t) return 0;
    int i = tindex(g, t);
    return i >= 0 && g->ti[g->ti[i].base].requires_grad;
}

static vt_tensor *grad_of(vt_graph *g, const vt_tensor *t) {
    int i = tindex(g, t);
    if (i < 0) return NULL;
    int gi = g->ti[g->ti[i].base].grad;
    if (gi < 0) return NULL;
    vt_tensor *gr = g->ti[gi].t;
    if (!vt_tensor_same_shape(gr, t)) gr = view_of(g, gr, gr->name, t->ndim, t->shape);
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

/* dY through a fused activation epilogue: returns dZ (pre-activation gradient). */
static vt_tensor *act_epilogue_bwd(vt_graph *g, vt_tensor *dy, vt_tensor *y, vt_act act, float alpha, const char *label) {
    if (act == VT_ACT_NONE) return dy;
    vt_tensor *dz = new_like(g, y->name, ".dz", VT_F32, y->ndim, y->shape);
    if (!dz) return NULL;
    vt_op_params p = {.act = {act, alpha}};
    if (add_bwd(g, VT_OP_ACT_BWD, &p, dy, y, NULL, NULL, NULL, dz, NULL, NULL, label, "act_bwd") < 0) return NULL;
    return dz;
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
        if (!mp->trans_a) { pa.matmul.trans_a = 0; pa.matmul.trans_b = !mp->trans_b; }
        else { pa.matmul.trans_a = mp->trans_b; pa.matmul.trans_b = 1; }
        if (!mp->trans_b) { pb.matmul.trans_a = !mp->trans_a; pb.matmul.trans_b = 0; }
        else { pb.matmul.trans_a = 1; pb.matmul.trans_b = mp->trans_a; }
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
    case VT_OP_POOL2D:
        return grad_op(g, n.src[0], VT_OP_POOL2D_BWD, &n.p, dy, n.src[0], L, "bwd");
    case VT_OP_BATCHNORM: {
        vt_tensor *x = n.src[0], *gamma = n.src[1], *beta = n.src[2];
        int gx = needs_grad(g, x), gg = needs_grad(g, gamma), gb = needs_grad(g, beta);
        if (!gx && !gg && !gb) return VT_OK;
        if (!n.dst[1] || !n.dst[2]) return vt_error(VT_ERR_INVALID_ARG, "%s: batchnorm without saved statistics", L);
        vt_tensor *dx = gx ? grad_target(g, x, ".grad") : new_like(g, x->name, ".dxunused", VT_F32, x->ndim, x->shape);
        vt_tensor *dg = gg ? grad_target(g, gamma, ".grad") : new_like(g, L, ".dgunused", VT_F32, 1, gamma->shape);
        vt_tensor *db = gb ? grad_target(g, beta, ".grad") : new_like(g, L, ".dbunused", VT_F32, 1, beta->shape);
        if (!dx || !dg || !db) return g->status;
        if (add_bwd(g, VT_OP_BATCHNORM_BWD, &n.p, dy, x, gamma, n.dst[1], n.dst[2], dx, dg, db, L, "bwd") < 0)
            return g->status;
        if (gx) VT_TRY(grad_commit(g, x, dx));
        if (gg) VT_TRY(grad_commit(g, gamma, dg));
        if (gb) VT_TRY(grad_commit(g, beta, db));
        return VT_OK;
    }
    case VT_OP_ACT:
        return grad_op(g, n.src[0], VT_OP_ACT_BWD, &n.p, dy, y, L, "bwd");
    case VT_OP_DROPOUT:
        return grad_op(g, n.src[0], VT_OP_DROPOUT_BWD, &n.p, dy, NULL, L, "bwd");
    case VT_OP_ADD:
        /* The gradient passes unchanged to both inputs. */
        for (int i = 0; i < 2; i++)
            if (needs_grad(g, n.src[i])) VT_TRY(grad_accumulate(g, n.src[i], dy));
        return VT_OK;
    case VT_OP_UPSAMPLE:
        return grad_op(g, n.src[0], VT_OP_UPSAMPLE_BWD, &n.p, dy, NULL, L, "bwd");
    case VT_OP_BATCH_PREP:
    case VT_OP_FILL:
    case VT_OP_NONFINITE:
    case VT_OP_ARGMAX:
        return VT_OK;
    default:
        return vt_error(VT_ERR_UNSUPPORTED, "%s: no gradient rule for op %s", L, vt_op_name(n.op));
    }
}

vt_status vt_graph_backward(vt_graph *g, vt_tensor *loss, uint32_t frozen_groups) {
    if (g->status != VT_OK) return g->status;
    if (!g->training) return vt_error(VT_ERR_INVALID_ARG, "backward of an evaluation graph");
    int li = loss ? tindex(g, loss) : -1;
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
                if (n->dst[d]) g->ti[g->ti[tindex(g, n->dst[d])].base].requires_grad = 1;
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
        int pi = tindex(g, p);
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
            op.adam = (vt_adam_params){cfg->group_lr_mult[gi], vt_decimal_of(cfg->beta1), vt_decimal_of(cfg->beta2),
                                       vt_decimal_of(cfg->eps), vt_decimal_of(cfg->weight_decay),
                                       cfg->kind == VT_OPTIM_ADAMW, cfg->step_offset[gi]};
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

/* ---- memory planner ------------------------------------------------------------------------ */

typedef struct vt_live { size_t off, size; int last; } vt_live;

static size_t align_up(size_t x) { return (x + VT_ALIGN - 1) & ~(size_t)(VT_ALIGN - 1); }

vt_status vt_graph_plan(vt_graph *g) {
    if (g->status != VT_OK) return g->status;
    if (g->planned) return VT_OK;
    vt_backend *be = vt_params_backend(g->m);
    if (!be) return vt_error(VT_ERR_INVALID_ARG, "place the model (vt_params_alloc) before planning its graph");
    /* Lifetimes of base tensors over node indices, including uses through views. */
    for (int i = 0; i < g->n_t; i++) g->ti[i].first = g->ti[i].last = -1;
    for (int k = 0; k < g->n_nodes; k++) {
        vt_node *n = &g->nodes[k];
        for (int j = 0; j < VT_MAX_SRC + VT_MAX_DST; j++) {
            vt_tensor *t = j < VT_MAX_SRC ? n->src[j] : n->dst[j - VT_MAX_SRC];
            if (!t) continue;
            int b = g->ti[tindex(g, t)].base;
            if (g->ti[b].first < 0) g->ti[b].first = k;
            g->ti[b].last = k;
        }
    }
    size_t n_live = 0, cap_live = (size_t)g->n_t + 1, high = 0;
    vt_live *live = malloc(cap_live * sizeof *live);
    size_t *offs = calloc((size_t)g->n_t + 1, sizeof *offs);
    int *order = malloc(((size_t)g->n_t + 1) * sizeof *order);
    if (!live || !offs || !order) {
        free(live); free(offs); free(order);
        return vt_error(VT_ERR_OOM, "out of host memory planning the graph");
    }
    /* Visit planned base tensors in order of first use (stable by index). */
    int n_order = 0;
    for (int k = 0; k < g->n_nodes; k++)
        for (int i = 0; i < g->n_t; i++)
            if (g->ti[i].planned && g->ti[i].base == i && g->ti[i].first == k) order[n_order++] = i;
    for (int oi = 0; oi < n_order; oi++) {
        int i = order[oi];
        int k = g->ti[i].first;
        /* Release blocks whose last use is before this node. */
        size_t w = 0;
        for (size_t j = 0; j < n_live; j++)
            if (live[j].last >= k) live[w++] = live[j];
        n_live = w;
        size_t size = align_up(vt_tensor_nbytes(g->ti[i].t));
        /* First fit among the gaps of the live blocks sorted by offset. */
        for (size_t a = 1; a < n_live; a++)
            for (size_t b = a; b > 0 && live[b - 1].off > live[b].off; b--) {
                vt_live t = live[b]; live[b] = live[b - 1]; live[b - 1] = t;
            }
        size_t off = 0;
        for (size_t j = 0; j < n_live; j++) {
            if (live[j].off >= off + size) break;
            if (live[j].off + live[j].size > off) off = live[j].off + live[j].size;
        }
        live[n_live++] = (vt_live){off, size, g->ti[i].last};
        offs[i] = off;
        if (off + size > high) high = off + size;
    }
    free(live);
    free(order);
    g->arena_bytes = high;
    vt_status s = vt_backend_buffer_alloc(be, high ? high : VT_ALIGN, &g->arena);
    if (s != VT_OK) {
        free(offs);
        return s;
    }
    for (int i = 0; i < g->n_t; i++) {
        vt_tinfo *r = &g->ti[i];
        int b = r->base;
        if (g->ti[b].planned && g->ti[b].first >= 0) {
            r->t->buf = g->arena;
            r->t->offset = offs[b];
        } else if (b != i) {
            r->t->buf = g->ti[b].t->buf;
            r->t->offset = g->ti[b].t->offset;
        }
    }
    free(offs);
    /* Executable ranges: nodes are in phase order. */
    int begin[VT_PHASE_COUNT + 1], end[VT_PHASE_COUNT + 1];
    for (int p = 0; p < VT_PHASE_COUNT; p++) begin[p] = end[p] = -1;
    for (int k = 0; k < g->n_nodes; k++) {
        int p = g->phase[k];
        if (begin[p] < 0) begin[p] = k;
        if (end[p] >= 0 && end[p] != k) {
            /* non-contiguous phase: keep the exec whole, the per-phase profile becomes unavailable */
        }
        end[p] = k + 1;
    }
    for (int p = 0; p < VT_PHASE_COUNT; p++) {
        g->exec[p].nodes = begin[p] >= 0 ? &g->nodes[begin[p]] : NULL;
        g->exec[p].n_nodes = begin[p] >= 0 ? end[p] - begin[p] : 0;
    }
    g->exec[VT_PHASE_COUNT].nodes = g->nodes;
    g->exec[VT_PHASE_COUNT].n_nodes = g->n_nodes;
    for (int k = 0; k < g->n_nodes; k++) VT_TRY(vt_node_validate(&g->nodes[k]));
    g->planned = 1;
    return VT_OK;
}

vt_status vt_graph_run(vt_graph *g, int phase, const vt_step_ctx *ctx) {
    if (!g->planned) VT_TRY(vt_graph_plan(g));
    int idx = phase < 0 ? VT_PHASE_COUNT : phase;
    if (idx > VT_PHASE_COUNT) return vt_error(VT_ERR_INVALID_ARG, "phase %d", phase);
    vt_graph_exec *e = &g->exec[idx];
    if (e->n_nodes == 0) return VT_OK;
    return vt_backend_graph_compute(vt_params_backend(g->m), e, ctx);
}

double vt_graph_flops(const vt_graph *g, int gemm_only) {
    double f = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        vt_op op = g->nodes[k].op;
        int gemm = op == VT_OP_MATMUL || op == VT_OP_CONV2D || op == VT_OP_CONV2D_BWD_DATA || op == VT_OP_CONV2D_BWD_WEIGHT;
        if (!gemm_only || gemm) f += vt_node_flops(&g->nodes[k]);
    }
    return f;
}
