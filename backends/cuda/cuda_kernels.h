/* CUDA backend: launchers of the .cu kernels (C linkage, plain C types) and the per-step values
 * kernels read. Each launcher enqueues on the given stream and returns the launch error. */
#ifndef VT_CUDA_KERNELS_H
#define VT_CUDA_KERNELS_H

#include <cuda_runtime_api.h>

#include "vt/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* vt_step_ctx as kernels see it. */
typedef struct vt_cuda_step {
    uint64_t step;
    int64_t batch_start;
    uint32_t seed;
    float lr;
} vt_cuda_step;

/* Per-step values for one launch: from device memory when dev is set (a captured graph, whose
 * replays copy fresh values there first), else the values captured by the launch itself. */
typedef struct vt_cuda_step_arg {
    const vt_cuda_step *dev;
    vt_cuda_step val;
} vt_cuda_step_arg;

cudaError_t vt_cuda_fill32(cudaStream_t s, uint32_t *dst, int64_t n, uint32_t pattern);
cudaError_t vt_cuda_nonfinite(cudaStream_t s, const float *x, int64_t n, int32_t *flag);
/* y[i] = act(y[i] + bias[(i / inner) % C]); bias may be NULL. Matmul: inner 1, C = N; conv: inner P*Q. */
cudaError_t vt_cuda_bias_act(cudaStream_t s, float *y, const float *bias, int64_t n, int64_t inner, int64_t C, int act,
                             float alpha);
cudaError_t vt_cuda_act(cudaStream_t s, const float *x, float *y, int64_t n, int act, float alpha);
/* fwd: the forward output y for relu, leaky_relu and selu, the forward input x for gelu (ACT_BWD's src1). */
cudaError_t vt_cuda_act_bwd(cudaStream_t s, const float *dy, const float *fwd, float *dx, int64_t n, int act,
                            float alpha);
cudaError_t vt_cuda_add(cudaStream_t s, const float *a, const float *b, float *y, int64_t n);
cudaError_t vt_cuda_dropout(cudaStream_t s, const float *x, float *y, int64_t n, float p, uint32_t salt,
                            vt_cuda_step_arg st);
/* db[c] = sum over n, j of dy[n, c, j] (dy viewed as [N, C, HW]). */
cudaError_t vt_cuda_channel_sum(cudaStream_t s, const float *dy, float *db, int64_t N, int64_t C, int64_t HW);
cudaError_t vt_cuda_bn_fwd(cudaStream_t s, const float *x, const float *gamma, const float *beta, float *rmean,
                           float *rvar, float *y, float *save_mean, float *save_invstd, int64_t N, int64_t C,
                           int64_t HW, int training, float momentum, float eps);
cudaError_t vt_cuda_bn_bwd(cudaStream_t s, const float *dy, const float *x, const float *gamma, const float *save_mean,
                           const float *save_invstd, float *dx, float *dgamma, float *dbeta, int64_t N, int64_t C,
                           int64_t HW, int training);
/* The synchronised batch norm (vt/ops.h): stats and sums are [2, C]; count is M over all ranks. One
 * block per channel, in BATCHNORM's reduction order. rmean, rvar (both or neither), dgamma, dbeta
 * may be NULL. */
cudaError_t vt_cuda_bn_stats(cudaStream_t s, const float *x, float *stats, int64_t N, int64_t C, int64_t HW);
cudaError_t vt_cuda_bn_apply(cudaStream_t s, const float *x, const float *gamma, const float *beta, const float *stats,
                             float *y, float *rmean, float *rvar, int64_t N, int64_t C, int64_t HW, int64_t count,
                             float momentum, float eps);
cudaError_t vt_cuda_bn_bwd_stats(cudaStream_t s, const float *dy, const float *x, const float *stats, float *dgamma,
                                 float *dbeta, float *sums, int64_t N, int64_t C, int64_t HW, float eps);
cudaError_t vt_cuda_bn_bwd_apply(cudaStream_t s, const float *dy, const float *x, const float *gamma,
                                 const float *stats, const float *sums, float *dx, int64_t N, int64_t C, int64_t HW,
                                 int64_t count, float eps);
cudaError_t vt_cuda_pool(cudaStream_t s, const float *x, float *y, int64_t NC, int H, int W, int P, int Q,
                         const vt_pool2d_params *p);
cudaError_t vt_cuda_pool_bwd(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t NC, int H, int W,
                             int P, int Q, const vt_pool2d_params *p);
/* Logits [N,K] (S = 1) or [N,K,H,W] (S = H*W, classes S apart), labels of N*S rows; ignore = 1: rows
 * whose label is outside [0,K) add nothing (loss over the counted rows, zero gradient). */
cudaError_t vt_cuda_softmax_ce(cudaStream_t s, const float *logits, const int32_t *labels, float *loss, float *metrics,
                               int64_t N, int64_t K, int64_t S, float smoothing, int ignore);
cudaError_t vt_cuda_softmax_ce_bwd(cudaStream_t s, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t N, int64_t K, int64_t S, float smoothing, float scale, int ignore);
cudaError_t vt_cuda_argmax(cudaStream_t s, const float *x, int32_t *out, int64_t N, int64_t K, int64_t S);
/* Adds M pred/truth pairs into counts [K+1,K+1] (ACCUMULATED; out-of-range values go to row/column K). */
cudaError_t vt_cuda_confusion(cudaStream_t s, const int32_t *pred, const int32_t *truth, int32_t *counts, int64_t M,
                              int K);
cudaError_t vt_cuda_upsample(cudaStream_t s, const float *x, float *y, int64_t NC, int H, int W, int Ho, int Wo,
                             int mode);
cudaError_t vt_cuda_upsample_bwd(cudaStream_t s, const float *dy, float *dx, int64_t NC, int H, int W, int Ho, int Wo,
                                 int mode);
/* x [B,C,Ho,Wo] from images [D,C,H,W]; labels i32 [D] -> y [B], or masks u8 [D,H,W] -> y [B,Ho,Wo]
 * (exactly one of labels, masks is non-NULL). */
cudaError_t vt_cuda_batch_prep(cudaStream_t s, const uint8_t *images, const int32_t *labels, const uint8_t *masks,
                               const int32_t *perm, float *x, int32_t *y, int64_t D, int64_t B, int C, int H, int W,
                               int Ho, int Wo, const vt_batch_prep_params *p, vt_cuda_step_arg st);
cudaError_t vt_cuda_sgd(cudaStream_t s, const float *grad, float *param, float *mom_buf, int64_t n,
                        const vt_sgd_params *p, vt_cuda_step_arg st);
cudaError_t vt_cuda_adam(cudaStream_t s, const float *grad, float *param, float *m, float *v, int64_t n,
                         const vt_adam_params *p, vt_cuda_step_arg st);

/* Convolution geometry for the im2col path. */
typedef struct vt_cuda_conv_geom {
    int C, H, W, K, R, S, P, Q, sh, sw, ph, pw;
} vt_cuda_conv_geom;
/* col[b][(c*R + r)*S + s][p*Q + q] = x[b][c][p*sh - ph + r][q*sw - pw + s] (zero outside), b < nb. */
cudaError_t vt_cuda_im2col(cudaStream_t s, const float *x, float *col, int nb, const vt_cuda_conv_geom *g);
/* The adjoint: dx[b][c][h][w] = sum of the col entries that im2col reads from (b,c,h,w). */
cudaError_t vt_cuda_col2im(cudaStream_t s, const float *col, float *dx, int nb, const vt_cuda_conv_geom *g);

#ifdef __cplusplus
}
#endif
#endif
