/* Models as graphs over a parameter store (vt/params.h): a graph builder with layer helpers, reverse-mode
 * autodiff that appends backward nodes, optimizer nodes, and a memory planner that reuses buffers. */
#ifndef VT_GRAPH_H
#define VT_GRAPH_H

#include "vt/params.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- graph builder ------------------------------------------------------------------------ */

typedef struct vt_graph vt_graph;

typedef enum vt_phase {
    VT_PHASE_DATA = 0,
    VT_PHASE_FORWARD,
    VT_PHASE_BACKWARD,
    VT_PHASE_OPTIMIZER,
    VT_PHASE_COUNT
} vt_phase;

vt_graph *vt_graph_new(vt_params *m, int training);
void vt_graph_free(vt_graph *g);
/* First error met while building (VT_OK if none); builders return NULL after an error. */
vt_status vt_graph_status(const vt_graph *g);
int vt_graph_training(const vt_graph *g);
vt_params *vt_graph_params(const vt_graph *g);

/* A tensor whose memory the planner places (activations). */
vt_tensor *vt_graph_tensor(vt_graph *g, const char *name, vt_dtype dtype, int ndim, const int64_t *shape);
/* A tensor whose memory the caller owns (dataset on the device, metrics). */
vt_tensor *vt_graph_external(vt_graph *g, vt_tensor *t);
/* Reshape without a copy (same element count). */
vt_tensor *vt_graph_reshape(vt_graph *g, vt_tensor *x, int ndim, const int64_t *shape);
vt_tensor *vt_graph_flatten(vt_graph *g, vt_tensor *x); /* [N, rest] */
/* Append a raw node (params and dst tensors given). Returns the node index or -1. */
int vt_graph_add_node(vt_graph *g, vt_op op, const vt_op_params *p, vt_tensor *const *src, int n_src,
                      vt_tensor *const *dst, int n_dst, const char *label);

/* Layer helpers (forward nodes). Parameter names follow PyTorch: <prefix>.weight, <prefix>.bias,
 * <prefix>.running_mean, <prefix>.running_var. The activation of linear and conv2d is fused into the
 * node, except gelu, which becomes an ACT node after it (its backward needs the pre-activation). */
vt_tensor *vt_g_linear(vt_graph *g, vt_tensor *x, const char *prefix, int64_t out, int bias, vt_act act, float alpha,
                       vt_init init);
vt_tensor *vt_g_conv2d(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride, int pad,
                       int bias, vt_act act, float alpha, vt_init init);
/* PyTorch's ConvTranspose2d(cin, cout, k, stride, pad) without output_padding: weight [cin,cout,k,k] (init
 * VT_INIT_BILINEAR for FCN's upsampling), no activation. */
vt_tensor *vt_g_conv2d_transpose(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride,
                                 int pad, int bias, vt_init init);
/* The same with the output's height and width given (0: the default), as PyTorch's output_size
 * argument: within [(H-1)*stride - 2*pad + k, that + stride). FCN upsamples to the input's size. */
vt_tensor *vt_g_conv2d_transpose_to(vt_graph *g, vt_tensor *x, const char *prefix, int64_t cout, int k, int stride,
                                    int pad, int bias, vt_init init, int64_t out_h, int64_t out_w);
vt_tensor *vt_g_batchnorm(vt_graph *g, vt_tensor *x, const char *prefix, float momentum, float eps, int frozen);
vt_tensor *vt_g_act(vt_graph *g, vt_tensor *x, vt_act kind, float alpha);
vt_tensor *vt_g_gelu(vt_graph *g, vt_tensor *x); /* PyTorch's exact (erf) GELU */
vt_tensor *vt_g_pool2d(vt_graph *g, vt_tensor *x, vt_pool_kind kind, int k, int stride, int pad);
vt_tensor *vt_g_global_avgpool(vt_graph *g, vt_tensor *x);
vt_tensor *vt_g_dropout(vt_graph *g, vt_tensor *x, float p); /* identity outside training */
vt_tensor *vt_g_add(vt_graph *g, vt_tensor *a, vt_tensor *b);
vt_tensor *vt_g_upsample(vt_graph *g, vt_tensor *x, vt_upsample_mode mode, int64_t h, int64_t w);
/* Loss (mean softmax cross-entropy, [1]); metrics may be NULL or an external [3] accumulator.
 * logits [N,K] with labels [N], or per pixel [N,K,H,W] with labels [N,H,W]; the backward's scale is
 * 1/(N*H*W). */
vt_tensor *vt_g_softmax_ce(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing,
                           vt_tensor *metrics);
/* The same with labels outside [0,K) ignored (segmentation's void/unknown, 255): the loss is the mean
 * over the counted pixels; the gradient is that of their sum over all N*H*W pixels (vt/ops.h). */
vt_tensor *vt_g_softmax_ce_ignore(vt_graph *g, vt_tensor *logits, vt_tensor *labels, float label_smoothing,
                                  vt_tensor *metrics);
/* Index of the first maximum over axis 1: [N,K] -> i32 [N], [N,K,H,W] -> i32 [N,H,W]. */
vt_tensor *vt_g_argmax(vt_graph *g, vt_tensor *x);
/* Adds pred/truth pairs (i32, same size) into counts, an external i32 [K+1,K+1] accumulator
 * (row = truth, column = prediction; row/column K: ignored truth / no class). */
vt_status vt_g_confusion(vt_graph *g, vt_tensor *pred, vt_tensor *truth, vt_tensor *counts);

/* Appends the backward nodes of everything before it, seeded by the loss (which must come from
 * vt_g_softmax_ce). Parameters of frozen groups (bit g of frozen_groups) get no gradient, and no
 * backward work is done for parts of the graph that only lead to them. */
vt_status vt_graph_backward(vt_graph *g, vt_tensor *loss, uint32_t frozen_groups);

typedef enum vt_optim_kind { VT_OPTIM_SGD = 0, VT_OPTIM_ADAM, VT_OPTIM_ADAMW } vt_optim_kind;
typedef struct vt_optim_cfg {
    vt_optim_kind kind;
    float momentum, weight_decay;
    int nesterov;            /* SGD */
    float beta1, beta2, eps; /* Adam/AdamW: the node takes the shortest decimal
                                                         of each (0.999f -> 0.999 in double), as torch */
    float group_lr_mult[2];  /* per parameter group */
    int64_t step_offset[2];  /* Adam: first step of each group */
} vt_optim_cfg;
/* Appends one fused update node per trainable group (the whole group's flat block in one dispatch). */
vt_status vt_graph_optimizer(vt_graph *g, const vt_optim_cfg *cfg, uint32_t frozen_groups);

/* Marks where the next nodes belong (for the per-phase profile). */
void vt_graph_set_phase(vt_graph *g, vt_phase phase);

/* Places every planner tensor in one arena on the model's backend, reusing memory between tensors
 * whose lifetimes do not overlap. */
vt_status vt_graph_plan(vt_graph *g);
size_t vt_graph_arena_bytes(const vt_graph *g);
/* Runs the nodes of the whole graph (phase = -1) or of one phase; enqueues, does not wait. */
vt_status vt_graph_run(vt_graph *g, int phase, const vt_step_ctx *ctx);
/* Synchronised batch norm for data-parallel training. After vt_graph_set_sync_bn(g, ranks) with
 * ranks > 1, training-mode batch norms built by vt_g_batchnorm are BN_STATS, a sync point, BN_APPLY
 * (count = ranks * this rank's N*H*W), and their backward is BN_BWD_STATS, a sync point,
 * BN_BWD_APPLY (vt/ops.h). At a sync point the host must combine tensor t across the ranks, in place,
 * before the nodes after it run: VT_SYNC_BN_STATS: t [2,C] holds each rank's mean and biased variance
 * (equal counts), to become the whole batch's (mean of the means; mean of var + (mean_r - mean)^2);
 * VT_SYNC_SUM: t becomes the sum over the ranks. vt_graph_run refuses a phase holding a sync point;
 * run it piece by piece: vt_graph_n_sync_points / vt_graph_sync_point (in node order, after planning)
 * tell where, vt_graph_run_range runs nodes [first, end). */
/* Call it before the layers are built (an error once planned). ranks = 1 splits too (the host step is
 * then the identity; for tests), ranks <= 0 turns it off. Frozen batch norms and evaluation graphs
 * keep BATCHNORM. dgamma and dbeta are this rank's, written by BN_BWD_STATS straight into the
 * gradient block, to be averaged over the ranks like every gradient. A batch norm whose input needs
 * no gradient has no BN_BWD_APPLY and so no VT_SYNC_SUM point. The sync points are in node order,
 * forward then backward; every rank's graph, built alike, has the same ones at the same nodes. */
typedef enum vt_sync_kind { VT_SYNC_BN_STATS = 0, VT_SYNC_SUM } vt_sync_kind;
typedef struct vt_sync_point {
    int after_node; /* the index of the node that produced t; combine before node after_node + 1 */
    vt_sync_kind kind;
    vt_tensor *t;
} vt_sync_point;
void vt_graph_set_sync_bn(vt_graph *g, int ranks);
int vt_graph_n_sync_points(const vt_graph *g);
const vt_sync_point *vt_graph_sync_point(const vt_graph *g, int i);
/* Plans if needed; enqueues nodes [first, end) (an empty range does nothing) and does not wait.
 * Refuses a range that holds a sync point (after_node in [first, end - 1)): a piece ends at
 * after_node + 1. Each distinct range keeps its executable, so a backend records it once. */
vt_status vt_graph_run_range(vt_graph *g, int first, int end, const vt_step_ctx *ctx);
int vt_graph_n_nodes(const vt_graph *g);
const vt_node *vt_graph_node(const vt_graph *g, int i);
double vt_graph_flops(const vt_graph *g, int gemm_only);

#ifdef __cplusplus
}
#endif
#endif
