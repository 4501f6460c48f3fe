/* The op table: one enum, one params struct per op, and the exact semantics every backend must
 * reproduce. Names, shape inference and argument validation live in core/engine/src/ops.c only. */
#ifndef VT_OPS_H
#define VT_OPS_H

#include <math.h>

#include "vt/act_formulas.h"
#include "vt/op_list.h"
#include "vt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conventions
 * - All tensors are dense row-major. Float tensors are f32. Labels/indices are i32 (u32 for perm).
 * - src[] are read, dst[] are written. Ops marked IN-PLACE read and write a dst.
 * - Optional operands are NULL.
 * - A backend may assume vt_node_validate() succeeded.
 * - Every output element is written (no read-modify-write of dst) unless stated (beta, accumulate,
 *   in-place). Gradient ops overwrite their outputs; the autodiff sums multiple contributions with ADD.
 * - Per-step values (learning rate, step number, seed, batch start) are NOT in params: they come from
 *   vt_step_ctx, so a recorded command buffer / captured graph can be replayed unchanged.
 *
 * Random numbers: Philox4x32-10 (see vt/rng.h). vt_philox(key0, key1, c0, c1, c2, c3) -> 4 x u32.
 * A uniform float from a word w is (w >> 8) * 2^-24 in [0,1).
 */

/* The ops, in the order of vt/op_list.h (which gives their names, operand counts and tolerances):
 *
 * MATMUL: C = act(alpha * op(A) op(B) + beta * C + bias)
 *   src0 A [M,K] (or [K,M] if trans_a), src1 B [K,N] (or [N,K] if trans_b), src2 bias [N] optional
 *   dst0 C [M,N]. beta != 0 reads C first (accumulate). act applied last (VT_ACT_NONE = identity).
 *   Linear layer y = x W^T + b is MATMUL(x, W, bias=b, trans_b=1) with W [out,in] (PyTorch layout).
 * BIAS_GRAD: db[c] = sum over all dims except dim 1 of dy.
 *   src0 dy [N,C] or [N,C,H,W]; dst0 db [C].
 * CONV2D: y = act(conv(x, w) + bias), cross-correlation as in PyTorch, groups=1, dilation=1.
 *   src0 x [N,C,H,W], src1 w [K,C,R,S], src2 bias [K] optional; dst0 y [N,K,P,Q]
 *   P = (H + 2*pad_h - R) / stride_h + 1, Q likewise. Zero padding.
 * CONV2D_BWD_DATA: dx = d(conv)/dx^T dy.  src0 dy [N,K,P,Q], src1 w [K,C,R,S]; dst0 dx [N,C,H,W]
 *   (H, W taken from dst0; must map to P, Q with the params).
 * CONV2D_BWD_WEIGHT: dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,p*sh-ph+r,q*sw-pw+s].
 *   src0 dy [N,K,P,Q], src1 x [N,C,H,W]; dst0 dw [K,C,R,S].
 * POOL2D: max or average pooling. src0 x [N,C,H,W]; dst0 y [N,C,P,Q],
 *   P = (H + 2*pad_h - kh) / stride_h + 1. Max ignores padding (padding is -inf); average counts
 *   padding as zeros and divides by kh*kw (PyTorch count_include_pad=True).
 *   Global average pooling is POOL2D avg with kernel = (H,W), stride 1, no padding.
 * POOL2D_BWD: src0 dy [N,C,P,Q], src1 x [N,C,H,W]; dst0 dx [N,C,H,W].
 *   Max: the gradient goes to the FIRST maximum of the window in row-major window order
 *   (recomputed from x); windows overlapping add up.
 * BATCHNORM (2d on [N,C,H,W], 1d on [N,C]):
 *   src0 x, src1 gamma [C], src2 beta [C], src3 running_mean [C], src4 running_var [C]
 *   dst0 y (shape of x), dst1 save_mean [C], dst2 save_invstd [C]
 *   training=1: mean/var (biased) over N,H,W; y = (x-mean)*invstd*gamma + beta, invstd=1/sqrt(var+eps);
 *     save_mean=mean, save_invstd=invstd; running stats updated IN-PLACE (src3, src4):
 *     rm = (1-momentum)*rm + momentum*mean; rv = (1-momentum)*rv + momentum*var*M/(M-1), M=N*H*W.
 *   training=0: uses running stats; save_mean=running_mean, save_invstd=1/sqrt(running_var+eps)
 *     (dst1/dst2 may be NULL in eval-only graphs).
 * BATCHNORM_BWD: src0 dy, src1 x, src2 gamma, src3 save_mean, src4 save_invstd
 *   dst0 dx, dst1 dgamma [C], dst2 dbeta [C]
 *   dbeta = sum dy; dgamma = sum dy*xhat, xhat = (x-mean)*invstd;
 *   training=1: dx = gamma*invstd/M * (M*dy - dbeta - xhat*dgamma)
 *   training=0 (frozen statistics): dx = dy*gamma*invstd.
 * ACT: y = f(x), any shape. relu: x>0 ? x : 0 (so relu(NaN) = 0, unlike PyTorch, which propagates
 *   NaN; the NaN still reaches the loss through every other path); leaky_relu: x>0 ? x : alpha*x;
 *   selu: scale*(x>0 ? x : A*(exp(x)-1)), scale=1.0507009873554804934193349852946,
 *   A=1.6732632423543772848170429916717; gelu: 0.5*x*(1 + erf(x/sqrt(2))) (PyTorch's default, exact
 *   erf). MATMUL and CONV2D do not fuse gelu (its backward needs the pre-activation input).
 * ACT_BWD: src0 dy, src1 y (the forward OUTPUT; for gelu the forward INPUT x); dst0 dx.
 *   relu: y>0 ? dy : 0; leaky: y>0 ? dy : alpha*dy; selu: y>0 ? scale*dy : (y + scale*A)*dy;
 *   gelu: dy * (Phi(x) + x*phi(x)). Formulas: vt/act_formulas.h.
 * DROPOUT (inverted, training only): src0 x; dst0 y, any shape, E = nelem.
 *   For element i: w = vt_philox(ctx.seed, salt, i/4, 0, (u32)ctx.step, (u32)(ctx.step>>32))[i%4];
 *   keep = ((w >> 8) * 2^-24) >= p; y = keep ? x / (1-p) : 0.
 * DROPOUT_BWD: src0 dy; dst0 dx = keep ? dy / (1-p) : 0 (same mask as the forward).
 * ADD: dst0 = src0 + src1, same shape.
 * SOFTMAX_CE: softmax cross-entropy with optional label smoothing e (PyTorch semantics):
 *   src0 logits [N,K] or [N,K,H,W] (classes on axis 1, per pixel for semantic segmentation; S = H*W,
 *   S = 1 for [N,K]: element (n,k,s) is logits[(n*K + k)*S + s]); src1 labels i32 of N*S elements
 *   ([N] for [N,K], [N,H,W] for [N,K,H,W]), row r = n*S + s.
 *   ignore = 0: every label must be in [0,K). ignore = 1: a row whose label is outside [0,K) (255,
 *   CamVid's void 11 with K = 11) is ignored: no loss, no gradient, not counted (PyTorch's ignore_index).
 *   per-row l_r = (1-e) * (-log p[r,y_r]) + e * mean_k(-log p[r,k])
 *   dst0 loss [1] = sum of l_r over the counted rows / max(counted, 1) (mean over counted rows; with
 *   ignore = 0 every row counts, so the mean over N*S).
 *   dst1 metrics [3] optional, ACCUMULATED over the counted rows: m[0] += sum l_r,
 *   m[1] += #(argmax_r == y_r), m[2] += counted.
 *   argmax takes the first maximum.
 * SOFTMAX_CE_BWD: src0 logits, src1 labels, as SOFTMAX_CE; dst0 dlogits (shape of logits)
 *   = scale * (softmax(logits) - ((1-e)*onehot(y) + e/K)) per row; 0 for every class of an ignored
 *   row. The trainer uses scale = 1/(N*S): with ignored rows this is the gradient of the sum over
 *   counted rows divided by all rows, a fixed scale per batch (not 1/counted).
 * ARGMAX: src0 x [N,K] or [N,K,H,W]; dst0 i32 [N] or [N,H,W] (N*S elements), index of the first
 *   maximum over axis 1 (a NaN never compares greater, so a row of NaN gives 0).
 * UPSAMPLE: src0 x [N,C,H,W]; dst0 y [N,C,Ho,Wo] (sizes from dst). PyTorch F.interpolate:
 *   nearest: src = min(floor(dst * (H/Ho)), H-1) per axis (scale computed as (float)H/Ho).
 *   bilinear (align_corners=False): s = max((dst+0.5)*(H/Ho) - 0.5, 0); i0 = floor(s),
 *   i1 = min(i0+1, H-1), l1 = s - i0, l0 = 1 - l1; per axis, product of weights.
 * UPSAMPLE_BWD: src0 dy [N,C,Ho,Wo]; dst0 dx [N,C,H,W]: the adjoint of UPSAMPLE
 *   (every dy element adds its weights into dx).
 * BATCH_PREP: gather one batch from a dataset resident on the device, augment, normalise.
 *   src0 images u8 [D,C,H,W], src1 labels: i32 [D] (one class per image) or u8 [D,H,W] (one class
 *   id per pixel: segmentation masks), src2 perm i32 [D] (sample order of the epoch)
 *   dst0 x f32 [B,C,Ho,Wo] with Ho <= H, Wo <= W (a crop of Ho x Wo; Ho = H, Wo = W: the whole image)
 *   dst1 y: i32 [B] for i32 labels; i32 [B,Ho,Wo] for u8 masks.
 *   For b in [0,B): j = ctx.batch_start + b; s = perm[j].
 *   Randomness: w = vt_philox(ctx.seed, salt, j, 0, (u32)ctx.step, (u32)(ctx.step>>32)).
 *   Crop: span_h = H - Ho + 2*pad + 1, span_w = W - Wo + 2*pad + 1 (pad >= 0 is the zero padding
 *     around the image); center = 0: oy = w[0] % span_h, ox = w[1] % span_w; center = 1: oy =
 *     (span_h-1)/2, ox = (span_w-1)/2 (integer division). The source pixel of output (h,w) is
 *     (h + oy - pad, w + ox - pad). (Ho = H, pad = 0 gives oy = 0; Ho = H keeps CIFAR's pad-and-crop.)
 *   Flip (flip = 1): if (w[2] & 1) output column w reads as column Wo-1-w before the crop offset.
 *   Value: x = (u8/255 - mean[c]) / std[c]; a source pixel outside the image has raw value 0.
 *   Labels: y[b] = labels[s] (i32 labels); y[b,h,w] = mask[s, sh, sw] of the same source pixel as x,
 *     255 where it lies outside the image (u8 masks).
 * SGD (IN-PLACE): src0 grad; dst0 param, dst1 momentum buffer (NULL when momentum == 0), same shape.
 *   lr = ctx.lr * lr_mult; g = grad + weight_decay * p;
 *   if momentum: buf = momentum * buf + g; g = nesterov ? g + momentum * buf : buf;
 *   p -= lr * g. (Momentum buffers start at zero, which equals PyTorch's first-step clone
 *   because dampening is always 0.)
 * ADAM (IN-PLACE): src0 grad; dst0 param, dst1 m, dst2 v. torch.optim.Adam / AdamW (the
 * single-tensor CPU path of torch 2.x), operation for operation:
 *   t = ctx.step - step_offset + 1 (>= 1); lr = ctx.lr * lr_mult (an f32 product).
 *   Per step, in double from the double params (vt_adam_consts_of; torch does this in Python floats):
 *     C1 = f32(1 - beta1), C2 = f32(1 - beta2), B2 = f32(beta2), E = f32(eps), WD = f32(weight_decay),
 *     S = f32(lr / (1 - beta1^t)), Q = f32(sqrt(1 - beta2^t)), D = f32(1 - lr * weight_decay).
 *   Per element, in f32, each operation rounded, in this order; fma(a, b, c) = a * b + c rounded
 *   once, where torch's CPU kernels fuse (fmaf, OpenCL and GLSL fma(), __fmaf_rn; nothing else
 *   may be contracted):
 *     decoupled (AdamW): w = p * D; g = grad.        else: w = p; g = fma(WD, w, grad).  (mul_; add)
 *     d = g - m; m = C1 < 0.5 ? fma(C1, d, m) : fma(-(1 - C1), d, g)        (torch's lerp_)
 *     v = fma(C2 * g, g, v * B2)                                           (mul_, addcmul_)
 *     p = w - (S * m) / (sqrt(v) / Q + E)                                  (addcdiv_)
 *   m and v are then torch's bit for bit; p differs where torch's vectorised sqrt is not correctly
 *   rounded (1 ulp, about one element in seven), and a GPU's division may be a few ulp off: the
 *   conformance cases bound the update itself (p_after - p_before) relatively, 2e-6.
 * FILL: dst0 = value for every element (f32; for i32/u32/u8 the value is converted).
 * NONFINITE: src0 x f32, any shape; dst0 flag i32 [1], IN-PLACE (not zeroed by the op).
 *   If any element of x is NaN or +-Inf, dst0[0] is set to 1; otherwise dst0 is left unchanged.
 *   The test is on the bits (exponent all ones), so fast-math compiler flags cannot remove it.
 *   The trainer zeroes the flag with FILL, runs NONFINITE over the parameter and state blocks and
 *   reads the flag back (checkpoints and metric read-backs never see non-finite weights).
 *
 * CONV2D_TRANSPOSE: PyTorch's ConvTranspose2d (groups=1, dilation=1), the adjoint of CONV2D:
 *   src0 x [N,C,H,W], src1 w [C,K,R,S] (PyTorch's layout: in, out, kh, kw), src2 bias [K] optional;
 *   dst0 y [N,K,P,Q]: y[n,k,p,q] = bias[k] + sum over c,h,w,r,s with p = h*sh - ph + r and
 *   q = w*sw - pw + s of x[n,c,h,w] * w[c,k,r,s]. P, Q are taken from dst0 and must satisfy
 *   (H-1)*sh - 2*ph + R <= P < (H-1)*sh - 2*ph + R + sh (PyTorch's output_padding range), Q likewise.
 *   Without bias this is exactly CONV2D_BWD_DATA with dy = x and the weight w read as a CONV2D weight
 *   [C,K,R,S] (C outputs, K inputs); a backend may run it so. No fused activation (act must be NONE).
 *   Its backward needs no op of its own: dx = CONV2D(dy, w) with no bias (w read as [C,K,R,S]),
 *   dw = CONV2D_BWD_WEIGHT(src0 = x, src1 = dy) (x in the role of dy, dy in the role of x),
 *   dbias = BIAS_GRAD(dy). FCN-32s upsamples by 32 with R = S = 64, stride 32, padding 16.
 *
 * CONFUSION: the confusion matrix of a segmentation (or classification), ACCUMULATED.
 *   src0 pred i32, src1 truth i32, both of M elements (any shapes); dst0 counts i32 [K+1,K+1] (K from
 *   dst0). t = truth in [0,K) ? truth : K; q = pred in [0,K) ? pred : K; counts[t*(K+1) + q] += 1.
 *   Row K counts pixels whose truth is ignored (255, void), column K predictions that are no class.
 *   Integer counts: exact, in any order (the caller keeps every entry below 2^31).
 *
 * Synchronised batch norm (data-parallel training, --sync-bn): BATCHNORM / BATCHNORM_BWD in training
 * mode split at their two channel reductions, so that the host can combine the per-rank reductions
 * across ranks in between (a sync point of the graph, vt/graph.h). x is [N,C,H,W] or [N,C] as for
 * BATCHNORM; M_local = N*H*W of this rank's x; M = p.bn.count, the elements per channel over all ranks
 * (M >= M_local, M > 1). With one rank (stats and sums left as computed, count = M_local) the four
 * ops give BATCHNORM / BATCHNORM_BWD training up to rounding.
 * BN_STATS: src0 x; dst0 stats f32 [2,C]: stats[0,c] = mean over N,H,W = sum / M_local; stats[1,c] =
 *   biased variance = sum (x - mean)^2 / M_local (two passes, as BATCHNORM computes them).
 *   The host then overwrites stats with the whole batch's mean and biased variance.
 * BN_APPLY: src0 x, src1 gamma [C], src2 beta [C], src3 stats [2,C] (the whole batch's mean and
 *   biased variance); dst0 y (shape of x); dst1 running_mean [C], dst2 running_var [C] IN-PLACE (both
 *   NULL: no update). invstd = 1/sqrt(var+eps); y = (x-mean)*invstd*gamma + beta;
 *   rm = (1-momentum)*rm + momentum*mean; rv = (1-momentum)*rv + momentum*var*M/(M-1).
 * BN_BWD_STATS: src0 dy, src1 x, src2 stats [2,C] (as BN_APPLY read it); dst0 dgamma [C], dst1 dbeta
 *   [C] (both optional: NULL for a frozen layer), dst2 sums f32 [2,C]; xhat = (x-mean)*invstd:
 *   sums[0,c] = sum over this rank's N,H,W of dy*xhat, sums[1,c] = sum of dy; dgamma = sums[0],
 *   dbeta = sums[1] (this rank's parameter gradients, averaged over ranks with the others).
 *   The host then overwrites sums with their sum over all ranks.
 * BN_BWD_APPLY: src0 dy, src1 x, src2 gamma, src3 stats [2,C], src4 sums [2,C] (over all ranks);
 *   dst0 dx = gamma*invstd/M * (M*dy - sums[1] - xhat*sums[0]).
 */
typedef enum vt_op {
    VT_OP_NONE = 0,
#define VT_OP_ENUM_(e, name, n_src, n_dst, params, nmse, atol, rtol, update) VT_OP_##e,
    VT_OP_LIST(VT_OP_ENUM_)
#undef VT_OP_ENUM_
        VT_OP_COUNT
} vt_op;

/* Formulas of each activation, forward and backward: vt/act_formulas.h (shared by every language). */
typedef enum vt_act { VT_ACT_NONE = 0, VT_ACT_RELU, VT_ACT_LEAKY_RELU, VT_ACT_SELU, VT_ACT_GELU, VT_ACT_COUNT } vt_act;
typedef enum vt_pool_kind { VT_POOL_MAX = 0, VT_POOL_AVG } vt_pool_kind;
typedef enum vt_upsample_mode { VT_UPSAMPLE_NEAREST = 0, VT_UPSAMPLE_BILINEAR } vt_upsample_mode;

typedef struct vt_matmul_params {
    int trans_a, trans_b;
    float alpha, beta;
    vt_act act;
    float act_alpha;
} vt_matmul_params;
typedef struct vt_conv2d_params {
    int stride_h, stride_w, pad_h, pad_w;
    vt_act act;
    float act_alpha;
} vt_conv2d_params;
typedef struct vt_pool2d_params {
    vt_pool_kind kind;
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
} vt_pool2d_params;
typedef struct vt_batchnorm_params {
    int training;
    float momentum, eps;
    int64_t count; /* BN_APPLY, BN_BWD_APPLY: M, elements per channel over all ranks (unused elsewhere) */
} vt_batchnorm_params;
typedef struct vt_act_params {
    vt_act kind;
    float alpha;
} vt_act_params;
typedef struct vt_dropout_params {
    float p;
    uint32_t salt;
} vt_dropout_params;
typedef struct vt_softmax_ce_params {
    float label_smoothing;
    float scale;
    int ignore; /* 1: rows whose label is outside [0,K) are ignored (segmentation's void) */
} vt_softmax_ce_params;
typedef struct vt_upsample_params {
    vt_upsample_mode mode;
} vt_upsample_params;
typedef struct vt_batch_prep_params {
    int pad, flip;
    float mean[4], std[4];
    uint32_t salt;
    int center; /* 1: the crop window is centred (evaluation), not drawn */
} vt_batch_prep_params;
typedef struct vt_sgd_params {
    float lr_mult, momentum, weight_decay;
    int nesterov;
} vt_sgd_params;
/* Adam's betas, eps and weight decay are double, as torch keeps them (Python floats): 1 - beta2 from
 * an f32 beta2 differs from torch's by 1.3e-5 relative. */
typedef struct vt_adam_params {
    float lr_mult;
    double beta1, beta2, eps, weight_decay;
    int decoupled;
    int64_t step_offset;
} vt_adam_params;
typedef struct vt_fill_params {
    float value;
} vt_fill_params;

typedef union vt_op_params {
    vt_matmul_params matmul;
    vt_conv2d_params conv2d;     /* CONV2D, CONV2D_BWD_DATA, CONV2D_BWD_WEIGHT (act only for CONV2D) */
    vt_pool2d_params pool2d;     /* POOL2D, POOL2D_BWD */
    vt_batchnorm_params bn;      /* BATCHNORM, BATCHNORM_BWD */
    vt_act_params act;           /* ACT, ACT_BWD */
    vt_dropout_params dropout;   /* DROPOUT, DROPOUT_BWD */
    vt_softmax_ce_params ce;     /* SOFTMAX_CE, SOFTMAX_CE_BWD */
    vt_upsample_params upsample; /* UPSAMPLE, UPSAMPLE_BWD */
    vt_batch_prep_params prep;   /* BATCH_PREP */
    vt_sgd_params sgd;
    vt_adam_params adam;
    vt_fill_params fill;
} vt_op_params;

#define VT_MAX_SRC 5
#define VT_MAX_DST 3

typedef struct vt_node {
    vt_op op;
    vt_op_params p;
    vt_tensor *src[VT_MAX_SRC];
    vt_tensor *dst[VT_MAX_DST];
    char label[48]; /* e.g. "layer1.0.conv1" or "layer1.0.conv1:bwd_data" */
} vt_node;

/* Per-step dynamic values, read by ops at execution time (never baked into params). */
typedef struct vt_step_ctx {
    uint64_t step;       /* global optimizer step, 0-based */
    uint32_t seed;       /* run seed */
    float lr;            /* base learning rate of this step */
    int64_t batch_start; /* BATCH_PREP: index of the batch's first sample in perm */
} vt_step_ctx;

/* The per-step scalars of ADAM (see the op), computed in double and rounded once to f32; shared by the
 * CPU, OpenCL and Vulkan hosts and the CUDA kernel so that every backend uses the same values. */
typedef struct vt_adam_consts {
    float c1, c2, b2, eps, wd;        /* fixed per node */
    float step_size, sqrt_bc2, decay; /* per step: S, Q, D */
} vt_adam_consts;

#if defined(__CUDACC__)
#define VT_HOST_DEVICE __host__ __device__
#else
#define VT_HOST_DEVICE
#endif
/* t >= 1 is the caller's to check; lr = ctx.lr * lr_mult. */
static inline VT_HOST_DEVICE vt_adam_consts vt_adam_consts_of(const vt_adam_params *p, float lr, int64_t t) {
    vt_adam_consts k;
    double b1 = p->beta1, b2 = p->beta2, dlr = (double)lr;
    k.c1 = (float)(1.0 - b1);
    k.c2 = (float)(1.0 - b2);
    k.b2 = (float)b2;
    k.eps = (float)p->eps;
    k.wd = (float)p->weight_decay;
    k.step_size = (float)(dlr / (1.0 - pow(b1, (double)t)));
    k.sqrt_bc2 = (float)sqrt(1.0 - pow(b2, (double)t));
    k.decay = (float)(1.0 - dlr * p->weight_decay);
    return k;
}

const char *vt_op_name(vt_op op);
const char *vt_act_name(vt_act a);
/* The activation of that name ("none", "relu", "leaky_relu", "selu", "gelu"); VT_ACT_COUNT when unknown. */
vt_act vt_act_from_name(const char *name);
/* Look up by name ("conv2d"); VT_OP_NONE when unknown. */
vt_op vt_op_from_name(const char *name);
/* Number of src / dst operands the op takes (maximum; optional ones may be NULL). */
int vt_op_n_src(vt_op op);
int vt_op_n_dst(vt_op op);
/* Checks dtypes, ranks, shapes and parameter ranges of a fully specified node.
 * On failure sets a message naming the op, the label, the operand and the shapes. */
vt_status vt_node_validate(const vt_node *n);
/* Shape of dst[i] for forward ops whose output shape follows from the inputs and params
 * (MATMUL, CONV2D, POOL2D, BATCHNORM, BN_STATS, BN_APPLY, ACT, DROPOUT, ADD, SOFTMAX_CE, ARGMAX, BIAS_GRAD). */
vt_status vt_op_infer_shape(vt_op op, const vt_op_params *p, vt_tensor *const *src, int dst_index, int *ndim,
                            int64_t shape[VT_MAX_DIMS], vt_dtype *dtype);
/* Floating-point operations of one execution (2 per multiply-add), for benchmarks. */
double vt_node_flops(const vt_node *n);
/* Bytes read + written, for bandwidth figures. */
double vt_node_bytes(const vt_node *n);

#ifdef __cplusplus
}
#endif
#endif
