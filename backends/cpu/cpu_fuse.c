/* CPU graph execution: the nodes in order, with one fusion. The weight gradient of a linear layer,
 * dW [M,N] = alpha dY^T [M,K] X [K,N] (a MATMUL with trans_a, beta 0, no bias or activation), whose
 * only reader is the step's SGD update, is computed together with that update: each 6x16 tile of dW
 * leaves the registers straight into the update of its weights and momentum. The gradient then never
 * goes to memory and back: for the MLP's 3072x1024 layer that is 25 of the 88 MB the separate GEMM and
 * update move per step, on a machine where the update is memory bound.
 *
 * The plan is made on the first run of an exec and kept with it. A GEMM is fused only when nothing
 * between it and the update (nor after the update) reads or writes its gradient, and nothing between
 * them touches the weights or momentum it updates, so every node sees the values it would see
 * unfused. The update arithmetic is vt_cpu_sgd's, element by element; the tile sums run over k in
 * order, one FMA chain per element, so the results repeat run to run. Where the gradient is not
 * written, its buffer keeps the previous values: nothing in the graph reads it.
 * x86 with AVX2 and FMA; with AVX-512F (and N % 32 == 0) 6x32 tiles of 16-lane vectors, the same
 * values bit for bit. The backend option fuse=0 turns the fusion off. */
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define VT_FUSE_X86 1
#include <immintrin.h>
#else
#define VT_FUSE_X86 0
#endif

#define MR 6   /* rows of dW per tile (broadcasts of dY) */
#define NB 16  /* columns of dW per tile (two vectors of X) */
#define PN 256 /* columns per panel: the panel of X (K x PN) stays in L2 while every row block uses it */

typedef struct fuse_range {
    int64_t lo, hi;
} fuse_range;

typedef struct cpu_plan {
    int n;
    int *sgd_of;    /* per node: the SGD node its GEMM is fused into, or -1 */
    int64_t *first; /* per fused node: element of the SGD's tensors where its dW starts */
    int *n_done;    /* per SGD node: ranges its fused GEMMs update */
    fuse_range **done;
} cpu_plan;

static void plan_free(vt_backend *be, void *state) {
    (void)be;
    cpu_plan *p = state;
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->done[i]);
    free(p->done);
    free(p->n_done);
    free(p->sgd_of);
    free(p->first);
    free(p);
}

/* Byte ranges [off, off+len) of one buffer. */
static bool overlaps(const vt_tensor *t, const vt_buffer *buf, size_t off, size_t len) {
    if (!t || t->buf != buf) return false;
    size_t a = t->offset, b = t->offset + vt_tensor_nbytes(t);
    return a < off + len && off < b;
}

static bool node_touches(const vt_node *n, const vt_buffer *buf, size_t off, size_t len) {
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (overlaps(n->src[i], buf, off, len)) return true;
    for (int i = 0; i < VT_MAX_DST; i++)
        if (overlaps(n->dst[i], buf, off, len)) return true;
    return false;
}

/* Can node k (a weight-gradient GEMM) be fused into the SGD node j > k? *first gets its offset. */
static bool fusable(const vt_graph_exec *e, int k, int j, int64_t *first) {
    const vt_node *mm = &e->nodes[k], *sgd = &e->nodes[j];
    const vt_matmul_params *p = &mm->p.matmul;
    const vt_tensor *d = mm->dst[0], *g = sgd->src[0], *w = sgd->dst[0], *mom = sgd->dst[1];
    if (!p->trans_a || p->trans_b || p->beta != 0.0f || mm->src[2] || p->act != VT_ACT_NONE) return false;
    if (d->dtype != VT_F32 || g->dtype != VT_F32 || d->shape[1] % NB != 0) return false;
    size_t len = vt_tensor_nbytes(d);
    if (d->buf != g->buf || d->offset < g->offset || d->offset + len > g->offset + vt_tensor_nbytes(g)) return false;
    if ((d->offset - g->offset) % sizeof(float) != 0) return false;
    *first = (int64_t)((d->offset - g->offset) / sizeof(float));
    size_t woff = w->offset + (size_t)*first * sizeof(float),
           moff = mom ? mom->offset + (size_t)*first * sizeof(float) : 0;
    /* The GEMM's own inputs must not be the weights or momentum it updates. */
    for (int i = 0; i < 2; i++)
        if (overlaps(mm->src[i], w->buf, woff, len) || (mom && overlaps(mm->src[i], mom->buf, moff, len))) return false;
    for (int m = k + 1; m < e->n_nodes; m++) {
        if (m == j) continue;
        const vt_node *o = &e->nodes[m];
        if (node_touches(o, d->buf, d->offset, len)) return false;
        if (m < j && (node_touches(o, w->buf, woff, len) || (mom && node_touches(o, mom->buf, moff, len))))
            return false;
    }
    return true;
}

static vt_status make_plan(const vt_graph_exec *e, bool fuse, cpu_plan **out) {
    cpu_plan *p = calloc(1, sizeof *p);
    if (!p) return vt_error(VT_ERR_OOM, "cpu: out of host memory planning a graph");
    p->n = e->n_nodes;
    p->sgd_of = malloc((size_t)p->n * sizeof *p->sgd_of);
    p->first = calloc((size_t)p->n, sizeof *p->first);
    p->n_done = calloc((size_t)p->n, sizeof *p->n_done);
    p->done = calloc((size_t)p->n, sizeof *p->done);
    if (!p->sgd_of || !p->first || !p->n_done || !p->done) {
        plan_free(NULL, p);
        return vt_error(VT_ERR_OOM, "cpu: out of host memory planning a graph");
    }
    for (int k = 0; k < p->n; k++) p->sgd_of[k] = -1;
    for (int k = 0; k < p->n && fuse; k++) {
        if (e->nodes[k].op != VT_OP_MATMUL) continue;
        for (int j = k + 1; j < p->n; j++) {
            const vt_node *s = &e->nodes[j];
            if (s->op != VT_OP_SGD || !fusable(e, k, j, &p->first[k])) continue;
            fuse_range *r = realloc(p->done[j], (size_t)(p->n_done[j] + 1) * sizeof *r);
            if (!r) {
                plan_free(NULL, p);
                return vt_error(VT_ERR_OOM, "cpu: out of host memory planning a graph");
            }
            p->done[j] = r;
            r[p->n_done[j]++] = (fuse_range){p->first[k], p->first[k] + vt_tensor_nelem(e->nodes[k].dst[0])};
            p->sgd_of[k] = j;
            break;
        }
    }
    /* Ranges in element order, for the update of what is left. */
    for (int j = 0; j < p->n; j++)
        for (int a = 1; a < p->n_done[j]; a++)
            for (int b = a; b > 0 && p->done[j][b - 1].lo > p->done[j][b].lo; b--) {
                fuse_range t = p->done[j][b];
                p->done[j][b] = p->done[j][b - 1];
                p->done[j][b - 1] = t;
            }
    *out = p;
    return VT_OK;
}

#if VT_FUSE_X86
#define VT_TILE static inline __attribute__((always_inline, target("avx2,fma")))

/* t[i][0..16) = sum over k of a[k][i] * x[k][0..16), i < mr, from the packed a [K][MR] and x [K][16]. */
VT_TILE void tn_tile(const float *a, const float *x, int64_t K, const int mr, __m256 t[MR][2]) {
    __m256 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(x + k * NB), b1 = _mm256_loadu_ps(x + k * NB + 8);
        for (int i = 0; i < mr; i++) {
            __m256 av = _mm256_broadcast_ss(a + k * MR + i);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) t[i][0] = acc[i][0], t[i][1] = acc[i][1];
}

/* vt_cpu_sgd_update on 8 elements, operation for operation (multiplies and adds, no FMA), so the
 * values are the unfused update's. */
VT_TILE void sgd8(const vt_cpu_sgd_args *u, float *param, float *buf, __m256 g) {
    __m256 lr = _mm256_set1_ps(u->lr), wd = _mm256_set1_ps(u->wd), p = _mm256_loadu_ps(param);
    g = _mm256_add_ps(g, _mm256_mul_ps(wd, p));
    if (u->mom == 0.0f) {
        _mm256_storeu_ps(param, _mm256_sub_ps(p, _mm256_mul_ps(lr, g)));
        return;
    }
    __m256 mom = _mm256_set1_ps(u->mom);
    __m256 b = _mm256_add_ps(_mm256_mul_ps(mom, _mm256_loadu_ps(buf)), g);
    _mm256_storeu_ps(buf, b);
    __m256 step = u->nesterov ? _mm256_add_ps(g, _mm256_mul_ps(mom, b)) : b;
    _mm256_storeu_ps(param, _mm256_sub_ps(p, _mm256_mul_ps(lr, step)));
}

/* The rows [r0, r1) of dW = alpha A^T B (A [K,M] with rows of lda, B [K,N]), each tile followed by
 * the update of its weights (and momentum). ap holds (r1-r0 rounded up to MR) * K floats, xp K * PN. */
__attribute__((target("avx2,fma"))) static void tn_sgd_rows(const float *A, int64_t lda, const float *B, int64_t K,
                                                            int64_t N, float alpha, int64_t r0, int64_t r1,
                                                            const vt_cpu_sgd_args *u, float *param, float *buf,
                                                            float *ap, float *xp) {
    /* A's rows of this range as [row block][K][MR] (zeros past r1), so a tile reads one run. */
    for (int64_t i0 = r0; i0 < r1; i0 += MR) {
        float *dst = ap + (i0 - r0) * K;
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < MR; i++) dst[k * MR + i] = i0 + i < r1 ? A[k * lda + i0 + i] : 0.0f;
    }
    __m256 va = _mm256_set1_ps(alpha);
    for (int64_t j0 = 0; j0 < N; j0 += PN) {
        int64_t j1 = j0 + PN < N ? j0 + PN : N;
        /* B's panel as [column tile][K][16]. */
        for (int64_t j = j0; j < j1; j += NB)
            for (int64_t k = 0; k < K; k++) memcpy(xp + ((j - j0) * K + k * NB), B + k * N + j, NB * sizeof(float));
        for (int64_t i0 = r0; i0 < r1; i0 += MR) {
            int mr = r1 - i0 < MR ? (int)(r1 - i0) : MR;
            const float *a = ap + (i0 - r0) * K;
            for (int64_t j = j0; j < j1; j += NB) {
                __m256 t[MR][2];
                const float *x = xp + (j - j0) * K;
                switch (mr) {
                case 6: tn_tile(a, x, K, 6, t); break;
                case 5: tn_tile(a, x, K, 5, t); break;
                case 4: tn_tile(a, x, K, 4, t); break;
                case 3: tn_tile(a, x, K, 3, t); break;
                case 2: tn_tile(a, x, K, 2, t); break;
                default: tn_tile(a, x, K, 1, t); break;
                }
                for (int i = 0; i < mr; i++) {
                    int64_t at = (i0 + i) * N + j;
                    __m256 g0 = t[i][0], g1 = t[i][1];
                    if (alpha != 1.0f) g0 = _mm256_mul_ps(g0, va), g1 = _mm256_mul_ps(g1, va);
                    sgd8(u, param + at, buf ? buf + at : NULL, g0);
                    sgd8(u, param + at + 8, buf ? buf + at + 8 : NULL, g1);
                }
            }
        }
    }
}

/* AVX-512: tiles of 6 rows x 32 columns (two 16-lane vectors), the same sums and update in the same
 * order, so the values are the AVX2 kernel's bit for bit. Needs N % 32 == 0. */
#define NB512      32
#define VT_TILE512 static inline __attribute__((always_inline, target("avx512f,avx2,fma")))

VT_TILE512 void tn_tile512(const float *a, const float *x, int64_t K, const int mr, __m512 t[MR][2]) {
    __m512 acc[MR][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(x + k * NB512), b1 = _mm512_loadu_ps(x + k * NB512 + 16);
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(a[k * MR + i]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) t[i][0] = acc[i][0], t[i][1] = acc[i][1];
}

VT_TILE512 void sgd16(const vt_cpu_sgd_args *u, float *param, float *buf, __m512 g) {
    __m512 lr = _mm512_set1_ps(u->lr), wd = _mm512_set1_ps(u->wd), p = _mm512_loadu_ps(param);
    g = _mm512_add_ps(g, _mm512_mul_ps(wd, p));
    if (u->mom == 0.0f) {
        _mm512_storeu_ps(param, _mm512_sub_ps(p, _mm512_mul_ps(lr, g)));
        return;
    }
    __m512 mom = _mm512_set1_ps(u->mom);
    __m512 b = _mm512_add_ps(_mm512_mul_ps(mom, _mm512_loadu_ps(buf)), g);
    _mm512_storeu_ps(buf, b);
    __m512 step = u->nesterov ? _mm512_add_ps(g, _mm512_mul_ps(mom, b)) : b;
    _mm512_storeu_ps(param, _mm512_sub_ps(p, _mm512_mul_ps(lr, step)));
}

__attribute__((target("avx512f,avx2,fma"))) static void tn_sgd_rows512(const float *A, int64_t lda, const float *B,
                                                                       int64_t K, int64_t N, float alpha, int64_t r0,
                                                                       int64_t r1, const vt_cpu_sgd_args *u,
                                                                       float *param, float *buf, float *ap, float *xp) {
    for (int64_t i0 = r0; i0 < r1; i0 += MR) {
        float *dst = ap + (i0 - r0) * K;
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i < MR; i++) dst[k * MR + i] = i0 + i < r1 ? A[k * lda + i0 + i] : 0.0f;
    }
    __m512 va = _mm512_set1_ps(alpha);
    for (int64_t j0 = 0; j0 < N; j0 += PN) {
        int64_t j1 = j0 + PN < N ? j0 + PN : N;
        for (int64_t j = j0; j < j1; j += NB512)
            for (int64_t k = 0; k < K; k++)
                memcpy(xp + ((j - j0) * K + k * NB512), B + k * N + j, NB512 * sizeof(float));
        for (int64_t i0 = r0; i0 < r1; i0 += MR) {
            int mr = r1 - i0 < MR ? (int)(r1 - i0) : MR;
            const float *a = ap + (i0 - r0) * K;
            for (int64_t j = j0; j < j1; j += NB512) {
                __m512 t[MR][2];
                const float *x = xp + (j - j0) * K;
                switch (mr) {
                case 6: tn_tile512(a, x, K, 6, t); break;
                case 5: tn_tile512(a, x, K, 5, t); break;
                case 4: tn_tile512(a, x, K, 4, t); break;
                case 3: tn_tile512(a, x, K, 3, t); break;
                case 2: tn_tile512(a, x, K, 2, t); break;
                default: tn_tile512(a, x, K, 1, t); break;
                }
                for (int i = 0; i < mr; i++) {
                    int64_t at = (i0 + i) * N + j;
                    __m512 g0 = t[i][0], g1 = t[i][1];
                    if (alpha != 1.0f) g0 = _mm512_mul_ps(g0, va), g1 = _mm512_mul_ps(g1, va);
                    sgd16(u, param + at, buf ? buf + at : NULL, g0);
                    sgd16(u, param + at + 16, buf ? buf + at + 16 : NULL, g1);
                }
            }
        }
    }
}
#endif

/* Node k's GEMM and its part of the update of SGD node s. */
static vt_status matmul_sgd(vt_cpu_ctx *c, const vt_node *mm, const vt_node *s, int64_t first, const vt_step_ctx *ctx) {
#if VT_FUSE_X86
    const vt_matmul_params *p = &mm->p.matmul;
    const float *A = vt_cpu_f32(mm->src[0]), *B = vt_cpu_f32(mm->src[1]);
    int64_t M = mm->dst[0]->shape[0], N = mm->dst[0]->shape[1], K = mm->src[0]->shape[0];
    vt_cpu_sgd_args u = vt_cpu_sgd_args_of(s, ctx);
    float *param = vt_cpu_f32(s->dst[0]) + first, *buf = s->dst[1] ? vt_cpu_f32(s->dst[1]) + first : NULL;
    int64_t tiles = (M + MR - 1) / MR;
    int nt = c->threads < tiles ? c->threads : (int)tiles;
    if ((double)M * (double)N * (double)K < 262144.0) nt = 1;
    bool wide = c->avx512 && N % NB512 == 0;
    /* Per thread: its rows of A packed, and one panel of B packed. */
    int64_t rows = (tiles + nt - 1) / nt * MR, per = (rows * K + K * PN + 15) & ~(int64_t)15;
    float *scratch;
    VT_TRY(vt_cpu_scratch(c, (size_t)(nt * per) * sizeof(float), &scratch));
    VT_OMP("omp parallel num_threads(nt) if(nt > 1)") {
        int team = vt_cpu_team(), t = vt_cpu_tid();
        int64_t r0 = tiles * t / team * MR, r1 = tiles * (t + 1) / team * MR;
        if (r1 > M) r1 = M;
        float *ap = scratch + t * per;
        if (r0 < r1 && wide) tn_sgd_rows512(A, M, B, K, N, p->alpha, r0, r1, &u, param, buf, ap, ap + rows * K);
        else if (r0 < r1) tn_sgd_rows(A, M, B, K, N, p->alpha, r0, r1, &u, param, buf, ap, ap + rows * K);
    }
    return VT_OK;
#else
    (void)c, (void)mm, (void)s, (void)first, (void)ctx;
    return vt_error(VT_ERR_UNSUPPORTED, "cpu: fused GEMM + SGD needs x86 with AVX2");
#endif
}

vt_status vt_cpu_graph_compute(vt_backend *be, vt_graph_exec *e, const vt_step_ctx *ctx) {
    vt_cpu_ctx *c = be->context;
    if (!e->be_state) {
        for (int i = 0; i < e->n_nodes; i++) {
            VT_TRY(vt_node_validate(&e->nodes[i]));
            if (!be->iface->supports_node(be, &e->nodes[i]))
                return vt_error(VT_ERR_UNSUPPORTED, "op %s (%s) is not supported on backend %s",
                                vt_op_name(e->nodes[i].op), e->nodes[i].label, be->info.backend);
        }
        cpu_plan *p = NULL;
        VT_TRY(make_plan(e, c->fuse_sgd, &p));
        e->be_state = p;
        e->be_state_free = plan_free;
    }
    const cpu_plan *p = e->be_state;
    static const vt_step_ctx zero_ctx = {0};
    if (!ctx) ctx = &zero_ctx;
    for (int k = 0; k < e->n_nodes; k++) {
        const vt_node *n = &e->nodes[k];
        if (p->sgd_of[k] >= 0) {
            be->counters.dispatches++;
            be->counters.fused++;
            VT_TRY(matmul_sgd(c, n, &e->nodes[p->sgd_of[k]], p->first[k], ctx));
        } else if (p->n_done[k] > 0) {
            /* The update of what the fused GEMMs left. */
            be->counters.dispatches++;
            int64_t at = 0, E = vt_tensor_nelem(n->dst[0]);
            for (int r = 0; r <= p->n_done[k]; r++) {
                int64_t end = r < p->n_done[k] ? p->done[k][r].lo : E;
                if (end > at) vt_cpu_sgd_range(c, n, ctx, at, end);
                if (r < p->n_done[k]) at = p->done[k][r].hi;
            }
        } else {
            VT_TRY(be->iface->compute_node(be, n, ctx));
        }
    }
    return VT_OK;
}
