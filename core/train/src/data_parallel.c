/* Data parallel training: every rank trains on its slice of each global batch; the gradients are
 * averaged in buckets (during the backward pass where the communicator allows it), metrics summed and
 * the model and BN statistics made the same on every rank where they are used or saved. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

int tr_dp(const vt_trainer *t) { return t->nranks > 1; }

/* Set on every rank when set on any: the ranks must take the same branches. */
vt_status tr_dp_any(vt_trainer *t, int *flag) {
    if (!tr_dp(t)) return VT_OK;
    double v = *flag ? 1.0 : 0.0;
    VT_TRY(vt_comm_allreduce_sum_f64(t->comm, &v, 1));
    *flag = v > 0;
    return VT_OK;
}

/* Metric sums (loss sum, correct, count) of every rank added up. */
vt_status tr_dp_sum(vt_trainer *t, double *m, size_t n) {
    if (!tr_dp(t)) return VT_OK;
    return vt_comm_allreduce_sum_f64(t->comm, m, n);
}

/* x made the same on every rank: rank 0's bytes, or (avg, f32 only) the mean over the ranks. */
static vt_status dp_tensor(vt_trainer *t, vt_tensor *x, int avg) {
    size_t nb = vt_tensor_nbytes(x);
    if (nb == 0) return VT_OK;
    avg = avg && x->dtype == VT_F32;
    void *h = malloc(nb);
    if (!h) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = VT_OK;
    if (avg || t->rank == 0) s = vt_tensor_download(x, h, nb);
    if (s == VT_OK) s = avg ? vt_comm_allreduce_avg(t->comm, h, nb / sizeof(float)) : vt_comm_bcast(t->comm, h, nb, 0);
    if (s == VT_OK && (avg || t->rank != 0)) s = vt_tensor_upload(x, h, nb);
    free(h);
    return s;
}

/* Parameters, BN statistics and optimizer state from rank 0, at the start and after a resume. */
vt_status tr_dp_broadcast_model(vt_trainer *t) {
    if (!tr_dp(t)) return VT_OK;
    VT_TRY(dp_tensor(t, vt_params_flat_params(t->m, -1), 0));
    for (int i = 0; i < vt_params_n_states(t->m); i++) VT_TRY(dp_tensor(t, vt_params_state_at(t->m, i), 0));
    for (int k = 0; k < vt_params_n_opt_slots(t->m); k++) VT_TRY(dp_tensor(t, vt_params_flat_opt(t->m, k, -1), 0));
    return VT_OK;
}

/* Without --sync-bn, BN running statistics are kept per rank while training (each from its own slice, as
 * DDP does) and made the same before they are used or saved: rank 0's (DDP's buffer broadcast). With
 * --sync-bn every rank updates them from the same whole-batch statistics (the combine below gives every
 * rank the same bits), so they are already the same. */
vt_status tr_dp_bn_states(vt_trainer *t) {
    if (!tr_dp(t) || t->cfg.sync_bn) return VT_OK;
    for (int i = 0; i < vt_params_n_states(t->m); i++) VT_TRY(dp_tensor(t, vt_params_state_at(t->m, i), 0));
    return VT_OK;
}

/* The running train metrics of a resumed or rolled-back epoch: held by rank 0, so that the ranks' sums
 * add up to them. */
vt_status tr_upload_train_metrics(vt_trainer *t, const double m[3]) {
    float v[3] = {0, 0, 0};
    if (t->rank == 0)
        for (int k = 0; k < 3; k++) v[k] = (float)m[k];
    return vt_tensor_upload(t->tr_metrics, v, sizeof v);
}

/* Does x lie (partly) in bytes [lo, hi) of buf? */
static int touches(const vt_tensor *x, const vt_buffer *buf, size_t lo, size_t hi) {
    if (!x || x->buf != buf) return 0;
    size_t a = x->offset, b = a + vt_tensor_nbytes(x);
    return a < hi && lo < b;
}

/* Cuts the train graph's nodes before the optimizer into pieces: the data phase, then pieces ending
 * after each sync point of the synchronised batch norm (the host combines its tensor across the ranks
 * before the next node reads it) and, with overlap, after the last node that reads or writes each
 * gradient bucket (after that piece the bucket's values are final and can be averaged while the rest of
 * the backward pass runs). Both kinds of cut go into one ascending list, so a piece may end at both. */
static vt_status plan_pieces(vt_trainer *t, int overlap) {
    tr_overlap_free(t);
    const vt_graph *g = t->train_g;
    int n = vt_graph_n_nodes(g);
    const vt_node *nodes = vt_graph_node(g, 0);
    if (!nodes) return vt_error(VT_ERR_INVALID_ARG, "step pieces: empty train graph");
    int d = 0, opt;
    while (d < n && nodes[d].op == VT_OP_BATCH_PREP) d++;
    for (opt = d; opt < n && nodes[opt].op != VT_OP_SGD && nodes[opt].op != VT_OP_ADAM; opt++) {}
    for (int k = opt; k < n; k++)
        if (nodes[k].op != VT_OP_SGD && nodes[k].op != VT_OP_ADAM)
            return vt_error(VT_ERR_UNSUPPORTED, "step pieces: node %d (%s) after the optimizer", k, nodes[k].label);
    int nsp = vt_graph_n_sync_points(g);
    size_t most = 0; /* floats of the largest tensor combined */
    for (int i = 0; i < nsp; i++) {
        const vt_sync_point *sp = vt_graph_sync_point(g, i);
        if (sp->after_node < d || sp->after_node + 1 >= opt || (i > 0 && sp->after_node <= vt_graph_sync_point(g, i - 1)->after_node))
            return vt_error(VT_ERR_INVALID_ARG, "step pieces: sync point %d after node %d (forward and backward are "
                            "nodes %d to %d)", i, sp->after_node, d, opt - 1);
        if (sp->t->dtype != VT_F32 || (sp->kind == VT_SYNC_BN_STATS && vt_tensor_nelem(sp->t) % 2))
            return vt_error(VT_ERR_INVALID_ARG, "step pieces: sync point %d: %s is not f32 [2,C]", i, sp->t->name);
        if ((size_t)vt_tensor_nelem(sp->t) > most) most = (size_t)vt_tensor_nelem(sp->t);
    }
    const vt_tensor *flat = vt_params_flat_grads(t->m, -1);
    int nb = overlap ? vt_grad_sync_n_buckets(t->gsync) : 0;
    int *last = malloc(((size_t)nb + 1) * sizeof *last), *cut = malloc(((size_t)nb + (size_t)nsp + 2) * sizeof *cut);
    t->ov_bucket_piece = malloc(((size_t)nb + 1) * sizeof *t->ov_bucket_piece);
    t->ov_piece = calloc((size_t)nb + (size_t)nsp + 3, sizeof *t->ov_piece);
    t->sb_mine = malloc((most + 1) * sizeof *t->sb_mine);
    t->sb_all = malloc(((size_t)t->nranks * most + 1) * sizeof *t->sb_all);
    if (!last || !cut || !t->ov_bucket_piece || !t->ov_piece || !t->sb_mine || !t->sb_all) {
        free(last);
        free(cut);
        tr_overlap_free(t);
        return vt_error(VT_ERR_OOM, "out of host memory");
    }
    for (int b = 0; b < nb; b++) {
        int64_t first, count;
        vt_grad_sync_bucket(t->gsync, b, &first, &count);
        size_t lo = flat->offset + (size_t)first * sizeof(float), hi = lo + (size_t)count * sizeof(float);
        last[b] = -1;
        for (int k = d; k < opt; k++)
            for (int j = 0; j < VT_MAX_SRC + VT_MAX_DST; j++) {
                const vt_tensor *x = j < VT_MAX_SRC ? nodes[k].src[j] : nodes[k].dst[j - VT_MAX_SRC];
                if (touches(x, flat->buf, lo, hi)) last[b] = k;
            }
    }
    /* piece ends: after each bucket's last node and each sync point, and the optimizer's start;
     * ascending, no repeats */
    int n_cut = 0;
    for (int b = 0; b < nb; b++)
        if (last[b] >= 0) cut[n_cut++] = last[b] + 1;
    for (int i = 0; i < nsp; i++) cut[n_cut++] = vt_graph_sync_point(g, i)->after_node + 1;
    cut[n_cut++] = opt;
    for (int i = 1; i < n_cut; i++)
        for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
            int tmp = cut[j];
            cut[j] = cut[j - 1];
            cut[j - 1] = tmp;
        }
    int pieces = 0, at = 0;
    if (d > 0) t->ov_piece[pieces++] = (vt_graph_exec){.nodes = nodes, .n_nodes = d};
    t->ov_first_bwd = pieces;
    at = d;
    for (int i = 0; i < n_cut; i++) {
        if (cut[i] <= at) continue;
        t->ov_piece[pieces++] = (vt_graph_exec){.nodes = nodes + at, .n_nodes = cut[i] - at};
        at = cut[i];
    }
    for (int b = 0; b < nb; b++) {
        t->ov_bucket_piece[b] = -1;
        for (int k = t->ov_first_bwd; k < pieces && last[b] >= 0; k++) {
            const vt_graph_exec *e = &t->ov_piece[k];
            if (e->nodes + e->n_nodes == nodes + last[b] + 1) t->ov_bucket_piece[b] = k;
        }
    }
    free(last);
    free(cut);
    t->ov_n = pieces;
    t->ov_nb = nb;
    t->ov_graph = g;
    return VT_OK;
}

/* One sync point of the synchronised batch norm: the tensor the node before wrote, combined across the
 * ranks in place. Every rank gathers every rank's values and does the same arithmetic in the same order
 * (in double), so every rank gets the same bits: BN statistics [2,C] become the whole batch's mean and
 * biased variance (the slices are of equal size: the mean of the means, and the mean of each slice's
 * variance plus its mean's squared distance to the whole mean); sums become the sum over the ranks. */
static vt_status combine(vt_trainer *t, const vt_sync_point *sp) {
    double t0 = now_s();
    size_t n = (size_t)vt_tensor_nelem(sp->t), R = (size_t)t->nranks;
    float *mine = t->sb_mine, *all = t->sb_all;
    VT_TRY(vt_backend_sync(t->be));
    VT_TRY(vt_tensor_download(sp->t, mine, n * sizeof(float)));
    VT_TRY(vt_comm_allgather(t->comm, mine, all, n * sizeof(float)));
    if (sp->kind == VT_SYNC_BN_STATS) {
        size_t C = n / 2;
        for (size_t c = 0; c < C; c++) {
            double mean = 0, var = 0;
            for (size_t r = 0; r < R; r++) mean += all[r * n + c];
            mean /= (double)R;
            for (size_t r = 0; r < R; r++) {
                double dm = all[r * n + c] - mean;
                var += all[r * n + C + c] + dm * dm;
            }
            mine[c] = (float)mean;
            mine[C + c] = (float)(var / (double)R);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            double sum = 0;
            for (size_t r = 0; r < R; r++) sum += all[r * n + i];
            mine[i] = (float)sum;
        }
    }
    VT_TRY(vt_tensor_upload(sp->t, mine, n * sizeof(float)));
    t->sync_bn_seconds += now_s() - t0;
    t->sync_bn_combines++;
    return VT_OK;
}

/* The pieces before the optimizer: after each, the sync points it ends at are combined and (overlap) the
 * buckets it finished are handed over. Before a combine the buckets handed over so far are drained:
 * the averaging thread and this one must not run collectives of the communicator at the same time. */
static vt_status run_pieces(vt_trainer *t, const vt_step_ctx *ctx, const vt_step_ctx *own, int overlap) {
    const vt_node *nodes = vt_graph_node(t->train_g, 0);
    int nsp = vt_graph_n_sync_points(t->train_g), next = 0;
    vt_status s = VT_OK;
    for (int b = 0; overlap && b < t->ov_nb && s == VT_OK; b++)
        if (t->ov_bucket_piece[b] < 0) s = vt_grad_sync_ready(t->gsync, b);
    for (int k = 0; k < t->ov_n && s == VT_OK; k++) {
        const vt_graph_exec *e = &t->ov_piece[k];
        s = vt_backend_graph_compute(t->be, &t->ov_piece[k], k < t->ov_first_bwd ? ctx : own);
        int end = (int)(e->nodes + e->n_nodes - nodes);
        for (; next < nsp && s == VT_OK; next++) {
            const vt_sync_point *sp = vt_graph_sync_point(t->train_g, next);
            if (sp->after_node >= end) break;
            if (overlap) s = vt_grad_sync_drain(t->gsync);
            if (s == VT_OK) s = combine(t, sp);
        }
        for (int b = 0; overlap && b < t->ov_nb && s == VT_OK; b++)
            if (t->ov_bucket_piece[b] == k) s = vt_grad_sync_ready(t->gsync, b);
    }
    return s;
}

/* The data-parallel step run in pieces: BN combines at the sync points, and the buckets averaged while
 * the backward pass goes on (overlap) or after it. */
static vt_status train_step_pieces(vt_trainer *t, const vt_step_ctx *ctx, const vt_step_ctx *own, int overlap) {
    if (t->ov_graph != t->train_g || t->ov_overlap != overlap) {
        VT_TRY(plan_pieces(t, overlap));
        t->ov_overlap = overlap;
    }
    if (!overlap) {
        VT_TRY(run_pieces(t, ctx, own, 0));
        VT_TRY(vt_grad_sync_run(t->gsync));
    } else {
        VT_TRY(vt_grad_sync_begin(t->gsync));
        vt_status s = run_pieces(t, ctx, own, 1);
        /* every bucket handed over is waited for, also after a failure, so no collective is left half done */
        vt_status e = vt_grad_sync_end(t->gsync);
        if (s == VT_OK) s = e;
        VT_TRY(s);
    }
    t->exposed_seconds += vt_grad_sync_exposed_seconds(t->gsync);
    return vt_graph_run(t->train_g, VT_PHASE_OPTIMIZER, ctx);
}

/* One training step of this rank's slice: forward and backward, the gradients averaged over the ranks
 * in buckets (during the backward pass where the communicator allows it), then the same optimizer step
 * everywhere. */
vt_status tr_train_step(vt_trainer *t, const vt_step_ctx *ctx) {
    if (!tr_dp(t)) return vt_graph_run(t->train_g, -1, ctx);
    /* Dropout masks are drawn per element of the rank's own activations: with one seed every rank would
     * reuse rank 0's masks. The data phase keeps the job's seed (crops and flips follow the global sample
     * index, as in one process); forward and backward get a seed of the rank's own (rank 0 keeps it). */
    vt_step_ctx own = *ctx;
    own.seed = ctx->seed + (uint32_t)t->rank * 0x9E3779B9u;
    int overlap = vt_grad_sync_can_overlap(t->gsync);
    if (overlap || vt_graph_n_sync_points(t->train_g) > 0) return train_step_pieces(t, ctx, &own, overlap);
    VT_TRY(vt_graph_run(t->train_g, VT_PHASE_DATA, ctx));
    for (int p = VT_PHASE_FORWARD; p <= VT_PHASE_BACKWARD; p++) VT_TRY(vt_graph_run(t->train_g, p, &own));
    VT_TRY(vt_grad_sync_run(t->gsync));
    t->exposed_seconds += vt_grad_sync_exposed_seconds(t->gsync);
    return vt_graph_run(t->train_g, VT_PHASE_OPTIMIZER, ctx);
}

/* A step of this rank's slice with the BN combines but no gradient averaging (the benchmark's: it times
 * the synchronised batch norm apart from the gradients' allreduce). */
vt_status tr_sync_bn_step(vt_trainer *t, const vt_step_ctx *ctx) {
    if (!tr_dp(t) || vt_graph_n_sync_points(t->train_g) == 0) return vt_graph_run(t->train_g, -1, ctx);
    if (t->ov_graph != t->train_g || t->ov_overlap) {
        VT_TRY(plan_pieces(t, 0));
        t->ov_overlap = 0;
    }
    VT_TRY(run_pieces(t, ctx, ctx, 0));
    return vt_graph_run(t->train_g, VT_PHASE_OPTIMIZER, ctx);
}

void tr_overlap_free(vt_trainer *t) {
    for (int k = 0; k < t->ov_n; k++) vt_graph_exec_reset(t->be, &t->ov_piece[k]);
    free(t->ov_piece);
    free(t->ov_bucket_piece);
    free(t->sb_mine);
    free(t->sb_all);
    t->ov_piece = NULL;
    t->ov_bucket_piece = NULL;
    t->sb_mine = t->sb_all = NULL;
    t->ov_n = t->ov_nb = 0;
    t->ov_graph = NULL;
}
