/* The graph builder: tensors (planned, external, views), nodes with their phase, and the accessors.
 * The layer helpers (layers.c) record forward nodes through it, the autodiff (autodiff.c) appends
 * their adjoints and the optimizer nodes, the planner (planner.c) places the tensors and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

vt_tensor *vt_graph_fail(vt_graph *g, vt_status s) {
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
    for (int i = 0; i < g->n_ranges; i++)
        if (g->m && vt_params_backend(g->m)) vt_graph_exec_reset(vt_params_backend(g->m), &g->ranges[i]);
    free(g->ranges);
    free(g->sync);
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

int vt_graph_tindex(const vt_graph *g, const vt_tensor *t) {
    for (int i = g->n_t - 1; i >= 0; i--)
        if (g->ti[i].t == t) return i;
    return -1;
}

/* Registers t (if new) and returns its index. */
int vt_graph_tadd(vt_graph *g, vt_tensor *t, int owned, int planned) {
    int i = vt_graph_tindex(g, t);
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
    if (!t) return vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    vt_tensor_init(t, name, dtype, ndim, shape);
    if (vt_graph_tadd(g, t, 1, 1) < 0) {
        free(t);
        return vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    return t;
}

vt_tensor *vt_graph_external(vt_graph *g, vt_tensor *t) {
    if (g->status != VT_OK) return NULL;
    if (!t) return vt_graph_fail(g, vt_error(VT_ERR_INVALID_ARG, "external tensor is NULL"));
    t->flags |= VT_TENSOR_EXTERNAL;
    if (vt_graph_tadd(g, t, 0, 0) < 0) return vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    return t;
}

vt_tensor *vt_graph_view_of(vt_graph *g, vt_tensor *x, const char *name, int ndim, const int64_t *shape) {
    int xi = vt_graph_tadd(g, x, 0, 0);
    vt_tensor *v = calloc(1, sizeof *v);
    if (!v || xi < 0) {
        free(v);
        return vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    vt_tensor_init(v, name, x->dtype, ndim, shape);
    if (vt_tensor_nelem(v) != vt_tensor_nelem(x)) {
        char a[64], b[64];
        vt_status s = vt_error(VT_ERR_SHAPE, "reshape %s: %s has %lld elements, %s has %lld", x->name,
                               vt_tensor_describe(x, a, sizeof a), (long long)vt_tensor_nelem(x),
                               vt_tensor_describe(v, b, sizeof b), (long long)vt_tensor_nelem(v));
        free(v);
        return vt_graph_fail(g, s);
    }
    v->flags = VT_TENSOR_VIEW;
    v->buf = x->buf;
    v->offset = x->offset;
    int vi = vt_graph_tadd(g, v, 1, 0);
    if (vi < 0) {
        free(v);
        return vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
    }
    g->ti[vi].base = g->ti[xi].base;
    g->ti[vi].producer = g->ti[xi].producer;
    return v;
}

vt_tensor *vt_graph_reshape(vt_graph *g, vt_tensor *x, int ndim, const int64_t *shape) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
    char name[64];
    snprintf(name, sizeof name, "%.50s.view", x->name);
    return vt_graph_view_of(g, x, name, ndim, shape);
}

vt_tensor *vt_graph_flatten(vt_graph *g, vt_tensor *x) {
    if (g->status != VT_OK || !x) return vt_graph_fail(g, VT_ERR_INVALID_ARG);
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
            vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
            return -1;
        }
        g->cap_nodes = cap;
    }
    if (g->planned) {
        vt_graph_fail(g, vt_error(VT_ERR_INVALID_ARG, "graph is already planned; build it completely first"));
        return -1;
    }
    vt_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (p) n->p = *p;
    for (int i = 0; i < n_src && i < VT_MAX_SRC; i++) {
        n->src[i] = src[i];
        if (src[i] && vt_graph_tadd(g, src[i], 0, 0) < 0) return -1;
    }
    for (int i = 0; i < n_dst && i < VT_MAX_DST; i++) {
        n->dst[i] = dst[i];
        if (dst[i]) {
            int di = vt_graph_tadd(g, dst[i], 0, 0);
            if (di < 0) return -1;
            if (g->ti[di].producer < 0) g->ti[di].producer = g->n_nodes;
        }
    }
    snprintf(n->label, sizeof n->label, "%s", label ? label : "");
    g->phase[g->n_nodes] = (uint8_t)g->cur_phase;
    return g->n_nodes++;
}

void vt_graph_set_sync_bn(vt_graph *g, int ranks) {
    if (g->planned) {
        vt_graph_fail(g, vt_error(VT_ERR_INVALID_ARG, "sync batch norm: the graph is already planned"));
        return;
    }
    g->sync_ranks = ranks > 0 ? ranks : 0;
}

vt_status vt_graph_add_sync(vt_graph *g, int after, vt_sync_kind kind, vt_tensor *t) {
    if (g->status != VT_OK) return g->status;
    if (g->n_sync == g->cap_sync) {
        int cap = g->cap_sync ? g->cap_sync * 2 : 32;
        vt_sync_point *p = realloc(g->sync, (size_t)cap * sizeof *p);
        if (!p) {
            vt_graph_fail(g, vt_error(VT_ERR_OOM, "out of host memory"));
            return g->status;
        }
        g->sync = p;
        g->cap_sync = cap;
    }
    g->sync[g->n_sync++] = (vt_sync_point){after, kind, t};
    return VT_OK;
}

int vt_graph_n_sync_points(const vt_graph *g) { return g->n_sync; }
const vt_sync_point *vt_graph_sync_point(const vt_graph *g, int i) {
    return (i >= 0 && i < g->n_sync) ? &g->sync[i] : NULL;
}

/* A planner tensor named prefix+suffix. */
vt_tensor *vt_graph_new_like(vt_graph *g, const char *prefix, const char *suffix, vt_dtype dt, int ndim,
                             const int64_t *shape) {
    char name[64];
    snprintf(name, sizeof name, "%.40s%.20s", prefix, suffix);
    return vt_graph_tensor(g, name, dt, ndim, shape);
}
