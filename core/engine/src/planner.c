/* The memory planner: every planner tensor placed in one arena on the model's backend, reusing memory
 * between tensors whose lifetimes do not overlap; then the per-phase executables and the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

typedef struct vt_live {
    size_t off, size;
    int last;
} vt_live;

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
            int b = g->ti[vt_graph_tindex(g, t)].base;
            if (g->ti[b].first < 0) g->ti[b].first = k;
            g->ti[b].last = k;
        }
    }
    size_t n_live = 0, cap_live = (size_t)g->n_t + 1, high = 0;
    vt_live *live = malloc(cap_live * sizeof *live);
    size_t *offs = calloc((size_t)g->n_t + 1, sizeof *offs);
    int *order = malloc(((size_t)g->n_t + 1) * sizeof *order);
    if (!live || !offs || !order) {
        free(live);
        free(offs);
        free(order);
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
                vt_live t = live[b];
                live[b] = live[b - 1];
                live[b - 1] = t;
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

static const char *phase_name(int idx) {
    static const char *names[VT_PHASE_COUNT + 1] = {"data", "forward", "backward", "optimizer", "whole graph"};
    return names[idx];
}

/* A sync point whose combine would fall inside nodes [first, end): the host could not step in. */
static const vt_sync_point *sync_inside(const vt_graph *g, int first, int end, int *which) {
    for (int i = 0; i < g->n_sync; i++)
        if (g->sync[i].after_node >= first && g->sync[i].after_node + 1 < end) {
            *which = i;
            return &g->sync[i];
        }
    return NULL;
}

static vt_status sync_refusal(const vt_graph *g, const vt_sync_point *sp, int which, const char *what) {
    const vt_node *n = &g->nodes[sp->after_node];
    return vt_error(VT_ERR_INVALID_ARG,
                    "%s holds sync point %d (%s %s, node %d: %s must be combined across the ranks before node %d); "
                    "run it piece by piece with vt_graph_run_range",
                    what, which, vt_op_name(n->op), n->label, sp->after_node, sp->t->name, sp->after_node + 1);
}

vt_status vt_graph_run(vt_graph *g, int phase, const vt_step_ctx *ctx) {
    if (!g->planned) VT_TRY(vt_graph_plan(g));
    int idx = phase < 0 ? VT_PHASE_COUNT : phase;
    if (idx > VT_PHASE_COUNT) return vt_error(VT_ERR_INVALID_ARG, "phase %d", phase);
    vt_graph_exec *e = &g->exec[idx];
    if (e->n_nodes == 0) return VT_OK;
    int first = (int)(e->nodes - g->nodes), which;
    const vt_sync_point *sp = sync_inside(g, first, first + e->n_nodes, &which);
    if (sp) return sync_refusal(g, sp, which, phase_name(idx));
    return vt_backend_graph_compute(vt_params_backend(g->m), e, ctx);
}

vt_status vt_graph_run_range(vt_graph *g, int first, int end, const vt_step_ctx *ctx) {
    if (!g->planned) VT_TRY(vt_graph_plan(g));
    if (first < 0 || end > g->n_nodes || first > end)
        return vt_error(VT_ERR_INVALID_ARG, "node range [%d, %d) outside the graph's %d nodes", first, end, g->n_nodes);
    if (first == end) return VT_OK;
    int which;
    const vt_sync_point *sp = sync_inside(g, first, end, &which);
    if (sp) {
        char what[48];
        snprintf(what, sizeof what, "node range [%d, %d)", first, end);
        return sync_refusal(g, sp, which, what);
    }
    /* One executable per range, kept: a backend that records a range replays it on the next step. */
    vt_graph_exec *e = NULL;
    for (int i = 0; i < g->n_ranges && !e; i++)
        if (g->ranges[i].nodes == g->nodes + first && g->ranges[i].n_nodes == end - first) e = &g->ranges[i];
    if (!e) {
        if (g->n_ranges == g->cap_ranges) {
            int cap = g->cap_ranges ? g->cap_ranges * 2 : 16;
            vt_graph_exec *r = realloc(g->ranges, (size_t)cap * sizeof *r);
            if (!r) return vt_error(VT_ERR_OOM, "out of host memory");
            g->ranges = r;
            g->cap_ranges = cap;
        }
        e = &g->ranges[g->n_ranges++];
        *e = (vt_graph_exec){.nodes = g->nodes + first, .n_nodes = end - first};
    }
    return vt_backend_graph_compute(vt_params_backend(g->m), e, ctx);
}

double vt_graph_flops(const vt_graph *g, int gemm_only) {
    double f = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        vt_op op = g->nodes[k].op;
        int gemm =
            op == VT_OP_MATMUL || op == VT_OP_CONV2D || op == VT_OP_CONV2D_BWD_DATA || op == VT_OP_CONV2D_BWD_WEIGHT;
        if (!gemm_only || gemm) f += vt_node_flops(&g->nodes[k]);
    }
    return f;
}
