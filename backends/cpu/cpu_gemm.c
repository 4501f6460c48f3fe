/* CPU MATMUL and BIAS_GRAD. Reference: a triple loop with double sums; fast: OpenBLAS SGEMMs on
 * blocks of C, one per OpenMP thread, each followed by the bias + activation epilogue on its block. */
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

/* Bias and activation over the rows [i0,i1) and columns [j0,j1) of C. */
static void epilogue(float *C, int64_t ldc, int64_t i0, int64_t i1, int64_t j0, int64_t j1, const float *bias,
                     vt_act act, float aa) {
    for (int64_t i = i0; i < i1; i++)
        vt_cpu_bias_act(C + i * ldc + j0, j1 - j0, bias ? bias + j0 : NULL, 0.0f, act, aa);
}

void vt_cpu_gemm(const vt_cpu_ctx *c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, const float *bias,
                 vt_act act, float act_alpha) {
    /* Split the larger of M and N into one block per thread, in multiples of 16 so every block keeps
     * whole micro-kernel tiles. Each C element belongs to one GEMM call and the split depends only
     * on the shape and the thread count, so results repeat bit for bit from run to run. Tiny
     * products stay on one thread: waking the team would cost more than the work. */
    bool split_n = N >= M;
    int64_t dim = split_n ? N : M;
    int64_t tiles = (dim + 15) / 16;
    int64_t parts = c->threads < tiles ? c->threads : tiles;
    if ((double)M * (double)N * (double)K < 262144.0) parts = 1;
    if (parts < 1) parts = 1;
    int nt = (int)parts;
    (void)nt; /* only read by the OpenMP pragma */
    bool epi = bias || act != VT_ACT_NONE;
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        int team = vt_cpu_team(), t = vt_cpu_tid();
        int64_t lo = tiles * t / team * 16, hi = tiles * (t + 1) / team * 16;
        if (hi > dim) hi = dim;
        if (lo < hi) {
            int64_t m0 = split_n ? 0 : lo, m1 = split_n ? M : hi, n0 = split_n ? lo : 0, n1 = split_n ? hi : N;
            const float *a = ta ? A + m0 : A + m0 * lda;
            const float *b = tb ? B + n0 * ldb : B + n0;
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)(m1 - m0),
                        (int)(n1 - n0), (int)K, alpha, a, (int)lda, b, (int)ldb, beta, C + m0 * ldc + n0, (int)ldc);
            if (epi) epilogue(C, ldc, m0, m1, n0, n1, bias, act, act_alpha);
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
    vt_cpu_gemm(c, p->trans_a, p->trans_b, M, N, K, p->alpha, A, p->trans_a ? M : K, B, p->trans_b ? K : N, p->beta, C,
                N, bias, p->act, p->act_alpha);
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
