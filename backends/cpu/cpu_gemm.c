/* CPU MATMUL and BIAS_GRAD. Reference: a triple loop with double sums; fast: one OpenBLAS SGEMM
 * (threaded by OpenBLAS itself) followed by a threaded bias + activation epilogue. */
#include <cblas.h>

#include "cpu_internal.h"

/* Dimension letters: C [M,N] = op(A) [M,K] * op(B) [K,N]. */
static void matmul_ref(const vt_matmul_params *p, const float *A, const float *B, const float *bias, float *C,
                       int64_t M, int64_t N, int64_t K) {
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++) {
                float a = p->trans_a ? A[k * M + i] : A[i * K + k];
                float b = p->trans_b ? B[j * K + k] : B[k * N + j];
                acc += (double)a * (double)b;
            }
            double v = (double)p->alpha * acc;
            /* beta == 0 never reads C, so garbage (even NaN) in C does not leak in, as in BLAS. */
            if (p->beta != 0.0f) v += (double)p->beta * (double)C[i * N + j];
            if (bias) v += (double)bias[j];
            C[i * N + j] = vt_cpu_act(p->act, p->act_alpha, (float)v);
        }
    }
}

vt_status vt_cpu_matmul(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_matmul_params *p = &n->p.matmul;
    const float *A = vt_cpu_f32(n->src[0]), *B = vt_cpu_f32(n->src[1]), *bias = vt_cpu_f32(n->src[2]);
    float *C = vt_cpu_f32(n->dst[0]);
    int64_t M = n->dst[0]->shape[0], N = n->dst[0]->shape[1];
    int64_t K = p->trans_a ? n->src[0]->shape[0] : n->src[0]->shape[1];
    if (c->reference) {
        matmul_ref(p, A, B, bias, C, M, N, K);
        return VT_OK;
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return vt_error(VT_ERR_SHAPE, "matmul %s: dims %lldx%lldx%lld exceed the BLAS integer range", n->label,
                        (long long)M, (long long)N, (long long)K);
    cblas_sgemm(CblasRowMajor, p->trans_a ? CblasTrans : CblasNoTrans, p->trans_b ? CblasTrans : CblasNoTrans, (int)M,
                (int)N, (int)K, p->alpha, A, p->trans_a ? (int)M : (int)K, B, p->trans_b ? (int)K : (int)N, p->beta, C,
                (int)N);
    if (!bias && p->act == VT_ACT_NONE) return VT_OK;
    int nt = vt_cpu_nt(c, M * N);
    vt_act act = p->act;
    float aa = p->act_alpha;
    VT_OMP_FOR
    for (int64_t i = 0; i < M; i++) {
        float *row = C + i * N;
        if (bias)
            for (int64_t j = 0; j < N; j++) row[j] = vt_cpu_act(act, aa, row[j] + bias[j]);
        else
            for (int64_t j = 0; j < N; j++) row[j] = vt_cpu_act(act, aa, row[j]);
    }
    return VT_OK;
}

/* db[c] = sum over n (and h, w) of dy[n,c,...]. Reference: one double sum; fast: one thread per
 * channel, lane sums per row, so the order is fixed and the result is the same run to run. */
vt_status vt_cpu_bias_grad(vt_cpu_ctx *c, const vt_node *n, const vt_step_ctx *ctx) {
    (void)ctx;
    const vt_tensor *t = n->src[0];
    const float *dy = vt_cpu_f32(t);
    float *db = vt_cpu_f32(n->dst[0]);
    int64_t N = t->shape[0], C = t->shape[1];
    int64_t HW = t->ndim == 4 ? t->shape[2] * t->shape[3] : 1;
    if (c->reference) {
        for (int64_t ch = 0; ch < C; ch++) {
            double acc = 0.0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t k = 0; k < HW; k++) acc += (double)dy[(i * C + ch) * HW + k];
            db[ch] = (float)acc;
        }
        return VT_OK;
    }
    int nt = vt_cpu_nt(c, N * C * HW);
    VT_OMP_FOR
    for (int64_t ch = 0; ch < C; ch++) {
        double acc = 0.0;
        for (int64_t i = 0; i < N; i++) acc += vt_cpu_sum(dy + (i * C + ch) * HW, HW);
        db[ch] = (float)acc;
    }
    return VT_OK;
}
