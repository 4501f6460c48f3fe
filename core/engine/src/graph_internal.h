/* What the files of the graph share and nothing else sees: the graph itself (tensors with their
 * lifetimes and gradients, nodes with their phases, the plan) and the builder's primitives.
 * graph.c builds, layers.c has the layer helpers, autodiff.c the backward and optimizer nodes,
 * planner.c places the tensors and runs the graph. */
#ifndef VT_GRAPH_INTERNAL_H
#define VT_GRAPH_INTERNAL_H

#include "vt/graph.h"

typedef struct vt_tinfo {
    vt_tensor *t;
    int owned;    /* graph frees the struct */
    int planned;  /* memory from the arena */
    int base;     /* index of the tensor whose bytes it shares (itself when not a view) */
    int producer; /* forward node that writes it, -1 */
    int requires_grad;
    int grad;        /* index of its gradient tensor, -1 */
    int first, last; /* node range using it (planning) */
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
    int n_forward; /* nodes before backward was appended */
    vt_phase cur_phase;
    vt_buffer *arena;
    size_t arena_bytes;
    int planned;
    vt_graph_exec exec[VT_PHASE_COUNT + 1]; /* per phase, and [VT_PHASE_COUNT] = all */
    uint32_t dropout_salt;
    int sync_ranks; /* > 0: training batch norms are split at sync points (vt_graph_set_sync_bn) */
    vt_sync_point *sync;
    int n_sync, cap_sync;
    /* vt_graph_run_range's executables, one per range run, kept so that a backend records each once */
    vt_graph_exec *ranges;
    int n_ranges, cap_ranges;
};

/* Records a sync point after node `after` (the node that wrote t); g's status on failure. */
vt_status vt_graph_add_sync(vt_graph *g, int after, vt_sync_kind kind, vt_tensor *t);

/* Records the first error (builders then return NULL); returns NULL for the caller's convenience. */
vt_tensor *vt_graph_fail(vt_graph *g, vt_status s);
/* Index of t in g's tensors, -1 if absent. */
int vt_graph_tindex(const vt_graph *g, const vt_tensor *t);
/* Registers t (if new) and returns its index, -1 when out of memory. */
int vt_graph_tadd(vt_graph *g, vt_tensor *t, int owned, int planned);
/* A view of x with another shape (same element count), sharing x's memory. */
vt_tensor *vt_graph_view_of(vt_graph *g, vt_tensor *x, const char *name, int ndim, const int64_t *shape);
/* A planner tensor named prefix+suffix. */
vt_tensor *vt_graph_new_like(vt_graph *g, const char *prefix, const char *suffix, vt_dtype dt, int ndim,
                             const int64_t *shape);

#endif
