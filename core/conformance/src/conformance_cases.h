/* The built-in conformance cases in two files: conformance_cases.c keeps the list and decides which
 * cases exist (build_cases), conformance_builders.c holds one builder per op family. */
#ifndef VT_CONFORMANCE_CASES_H
#define VT_CONFORMANCE_CASES_H

#include "vt/conformance.h"

/* a new case of op, named by fmt, appended to the list (NULL when out of memory: the list is then
 * marked failed) */
vt_conf_case *vt_cc_add_case(vt_op op, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* operand o: dtype, initialisation and range, shape */
void vt_cc_put(vt_conf_operand *o, vt_dtype dt, vt_conf_init init, float lo, float hi, int ndim, int64_t d0, int64_t d1,
               int64_t d2, int64_t d3);
void vt_cc_out(vt_conf_operand *o, vt_dtype dt, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
const char *vt_cc_act_tag(vt_act a);

/* the builders, one per op family */
void vt_cc_matmul(int64_t M, int64_t K, int64_t N, int ta, int tb, float alpha, float beta, int bias, vt_act act,
                  float act_alpha, const char *tag);
void vt_cc_bias_grad(int ndim, int64_t n, int64_t ch, int64_t h, int64_t w);
int64_t vt_cc_conv_out(int64_t in, int64_t k, int s, int p);
void vt_cc_conv(int kind, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw,
                int ph, int pw, int bias, vt_act act, float act_alpha, const char *tag);
void vt_cc_conv_t(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw, int ph,
                  int pw, int oph, int opw, int bias, int naninf, const char *tag);
void vt_cc_conv_all(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int sh, int sw, int ph,
                    int pw, const char *tag);
void vt_cc_pool(int bwd, vt_pool_kind kind, int64_t N, int64_t C, int64_t H, int64_t W, int kh, int kw, int sh, int sw,
                int ph, int pw, vt_conf_init xinit, const char *tag);
void vt_cc_batchnorm(int bwd, int training, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int save_out,
                     const char *tag);
void vt_cc_sync_bn(vt_op op, int ndim, int64_t N, int64_t C, int64_t H, int64_t W, int ranks, int running, int naninf,
                   const char *tag);
void vt_cc_act(int bwd, vt_act kind, float alpha, int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
void vt_cc_dropout(int bwd, float p, uint32_t salt, uint64_t step, int naninf, int ndim, int64_t d0, int64_t d1,
                   int64_t d2, int64_t d3);
void vt_cc_add(int naninf, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
void vt_cc_softmax_ce(int bwd, int64_t N, int64_t K, float smoothing, int metrics, float range, int ties);
void vt_cc_argmax(int64_t N, int64_t K, int ties);
void vt_cc_softmax_ce_px(int bwd, int ndim, int64_t N, int64_t K, int64_t H, int64_t W, float smoothing, int ignore,
                         float ignored, int metrics);
void vt_cc_argmax_px(int64_t N, int64_t K, int64_t H, int64_t W, int ties);
void vt_cc_confusion(int64_t K, int64_t N, int64_t H, int64_t W, int64_t vals, float outside, int start,
                     const char *tag);
void vt_cc_upsample(int bwd, vt_upsample_mode mode, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho, int64_t Wo);
void vt_cc_batch_prep(int64_t D, int64_t C, int64_t H, int64_t W, int64_t B, int64_t start, int pad, int flip,
                      uint64_t step);
void vt_cc_batch_prep_crop(int64_t D, int64_t C, int64_t H, int64_t W, int64_t B, int64_t Ho, int64_t Wo, int64_t start,
                           int pad, int flip, int center, int masks, uint64_t step);
void vt_cc_sgd(float momentum, float wd, int nesterov, float lr_mult, int64_t n0, int64_t n1);
void vt_cc_adam(int decoupled, double wd, uint64_t step, int64_t step_offset, int64_t n0, int64_t n1);
void vt_cc_adam_update(int decoupled, double beta1, double wd, uint64_t step, int64_t step_offset, int64_t n0,
                       int64_t n1);
void vt_cc_fill(vt_dtype dt, float value, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
void vt_cc_nonfinite(int64_t n0, int64_t n1, float lo, float hi, int64_t at, float mark, int flag0, const char *tag);

#endif
