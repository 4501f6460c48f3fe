/* OpenCL backend ops: every op of ops.h, forward and backward. GEMMs (MATMUL, convolutions lowered
 * with im2col / col2im) go through CLBlast; everything else is a kernel from shaders/opencl. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "ocl_internal.h"

#define ARG_T(a, t)         vt_ocl_arg_tensor((a), (t))
/* Largest scratch one convolution chunk may take; bigger batches are split into image chunks. */
#define VT_OCL_CONV_SCRATCH ((size_t)128 << 20)
/* Channel reductions over at most this many values run one item per channel, in order; a
 * work-group tree per channel only pays off above it. */
#define VT_OCL_ROWS_MAX     4096

static int nel(const vt_tensor *t) { return (int)vt_tensor_nelem(t); }

/* ---- CLBlast tuning ----
 * CLBlast ships tuned kernel parameters per device and falls back to generic ones for a device it
 * does not know. PoCL's CPU device is not in its database; the parameters below came from CLBlast's
 * own tuners (Debian clblast-utils: clblast_tuner_xgemm, _copy_pad, _transpose_pad, _copy_fast,
 * _transpose_fast) on PoCL 3.1 with AVX-512, and each GEMM is told whether to take the tiled
 * (indirect) kernel (vt_ocl_gemm). SGEMM 1024^3 goes from about 25-30 to about 75 GFLOP/s and the MLP's GEMMs
 * about 2x (docs/backend-opencl.md). The option clblast_xgemm=0:1:32:...:4 sets all 16 Xgemm parameters
 * for any device (a tuner's output, in the order of vt_pocl_cpu_tuning[0].names, which is CLBlast's
 * own); clblast_xgemm=default keeps CLBlast's own parameters. */

typedef struct vt_clblast_set {
    const char *kernel;
    int n;
    const char *names[16];
    size_t values[16];
} vt_clblast_set;

static const vt_clblast_set vt_pocl_cpu_tuning[] = {
    {"Xgemm",
     16,
     {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB", "NDIMC", "NWG", "SA", "SB", "STRM", "STRN",
      "VWM", "VWN"},
     {0, 1, 32, 2, 8, 8, 64, 8, 8, 64, 1, 1, 0, 0, 4, 4}},
    {"Copy", 4, {"COPY_DIMX", "COPY_DIMY", "COPY_VW", "COPY_WPT"}, {16, 32, 8, 1}},
    {"Pad", 4, {"PAD_DIMX", "PAD_DIMY", "PAD_WPTX", "PAD_WPTY"}, {32, 32, 2, 1}},
    {"Transpose", 4, {"TRA_DIM", "TRA_PAD", "TRA_SHUFFLE", "TRA_WPT"}, {8, 1, 0, 8}},
    {"Padtranspose", 3, {"PADTRA_PAD", "PADTRA_TILE", "PADTRA_WPT"}, {0, 8, 4}},
};

/* Parses the 16 Xgemm values "V:V:...:V" in the order of the names (an options value can hold
 * neither ',' nor more than 63 characters, so the names are left out); 0 and a message otherwise. */
static int vt_xgemm_parse(const char *text, vt_clblast_set *out, char *why, size_t why_len) {
    *out = vt_pocl_cpu_tuning[0];
    const char *p = text;
    for (int k = 0; k < out->n; k++) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || *p == '-' || *p == '+' || v > 1024)
            return snprintf(why, why_len, "value %d (%s) wants an integer 0..1024", k + 1, out->names[k]), 0;
        if (k + 1 < out->n && *end != ':')
            return snprintf(why, why_len, "%d values given, 16 needed (%s first missing)", k + 1, out->names[k + 1]), 0;
        if (k + 1 == out->n && *end) return snprintf(why, why_len, "more than 16 values, or junk after the 16th"), 0;
        out->values[k] = (size_t)v;
        p = end + 1;
    }
    return 1;
}

static vt_status vt_clblast_apply(vt_ocl_ctx *c, const vt_clblast_set *t, const char *from) {
    CLBlastStatusCode st = CLBlastOverrideParameters(c->device, t->kernel, CLBlastPrecisionSingle, (size_t)t->n,
                                                     (const char **)t->names, t->values);
    if (st != CLBlastSuccess)
        return vt_error(VT_ERR_DEVICE, "opencl: CLBlastOverrideParameters(%s, %s) failed: status %d", t->kernel, from,
                        (int)st);
    return VT_OK;
}

vt_status vt_ocl_tune_clblast(vt_backend *be, const char *xgemm) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (xgemm && strcmp(xgemm, "default") == 0) return VT_OK;
    if (xgemm) {
        char why[96];
        vt_clblast_set t;
        if (!vt_xgemm_parse(xgemm, &t, why, sizeof why))
            return vt_error(VT_ERR_INVALID_ARG,
                            "opencl options: clblast_xgemm=%s: %s; give 'default' or the 16 values "
                            "GEMMK:KREG:KWG:KWI:MDIMA:MDIMC:MWG:NDIMB:NDIMC:NWG:SA:SB:STRM:STRN:VWM:VWN",
                            xgemm, why);
        VT_TRY(vt_clblast_apply(c, &t, "clblast_xgemm option"));
        c->gemm_switch = 1; /* tuned tiles: the same direct/indirect rule as below */
        snprintf(c->clblast_tuning, sizeof c->clblast_tuning, "clblast_xgemm option");
        return VT_OK;
    }
    char plat[128] = "";
    cl_device_type type = 0;
    clGetPlatformInfo(c->platform, CL_PLATFORM_NAME, sizeof plat, plat, NULL);
    plat[sizeof plat - 1] = 0;
    clGetDeviceInfo(c->device, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    if (!strstr(plat, "Portable Computing Language") || !(type & CL_DEVICE_TYPE_CPU)) return VT_OK;
    for (size_t i = 0; i < sizeof vt_pocl_cpu_tuning / sizeof vt_pocl_cpu_tuning[0]; i++)
        VT_TRY(vt_clblast_apply(c, &vt_pocl_cpu_tuning[i], "built-in PoCL CPU parameters"));
    c->gemm_switch = 1; /* each GEMM picks direct or indirect (vt_ocl_gemm) */
    snprintf(c->clblast_tuning, sizeof c->clblast_tuning, "built-in PoCL CPU parameters");
    return VT_OK;
}

/* ---- GEMM through CLBlast (row-major, offsets in elements) ---- */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the same call with the operands
 * swapped. CLBlast's tiled kernel stores C column-major, so this form never transposes C through a
 * temporary (row-major would, on every call: a 12 MB copy for the MLP's weight gradient). */
static CLBlastStatusCode vt_clblast_sgemm(vt_ocl_ctx *c, int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                                          cl_mem A, size_t ao, size_t lda, cl_mem B, size_t bo, size_t ldb, float beta,
                                          cl_mem C, size_t co, size_t ldc) {
    return CLBlastSgemm(CLBlastLayoutColMajor, tb ? CLBlastTransposeYes : CLBlastTransposeNo,
                        ta ? CLBlastTransposeYes : CLBlastTransposeNo, N, M, K, alpha, B, bo, ldb, A, ao, lda, beta, C,
                        co, ldc, &c->queue, NULL);
}

/* The direct/indirect mode last set per device (0: not yet), shared by every backend of the process. */
#define VT_CLBLAST_MAX_DEV 16
static pthread_mutex_t vt_clblast_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    cl_device_id dev;
    int mode;
} vt_clblast_modes[VT_CLBLAST_MAX_DEV];

static int *vt_clblast_mode_of(cl_device_id dev) {
    for (int i = 0; i < VT_CLBLAST_MAX_DEV; i++) {
        if (vt_clblast_modes[i].dev == dev) return &vt_clblast_modes[i].mode;
        if (!vt_clblast_modes[i].dev) {
            vt_clblast_modes[i].dev = dev;
            vt_clblast_modes[i].mode = 0;
            return &vt_clblast_modes[i].mode;
        }
    }
    return NULL;
}

static vt_status vt_ocl_gemm(vt_backend *be, const char *label, int ta, int tb, size_t M, size_t N, size_t K,
                             float alpha, cl_mem A, size_t ao, size_t lda, cl_mem B, size_t bo, size_t ldb, float beta,
                             cl_mem C, size_t co, size_t ldc) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    CLBlastStatusCode st;
    if (c->gemm_switch) {
        /* With the tuned PoCL parameters the tiled (indirect) kernel wins by 2-3x once every dimension
         * fills a 64-wide tile; below that its padding and copies lose to the direct kernel (the
         * 16-channel convolutions: 2.5x slower). CLBlast chooses by M*N*K alone, so we tell it. The
         * choice is a per-device setting of the process and costs ~0.1-0.3 ms to change, so the
         * mode last set on each device is kept process-wide, and setting it and issuing the GEMM
         * happen under one lock: another backend on the same device cannot flip it in between. */
        int want = (M >= 64 && N >= 64 && K >= 64) ? 1 : 2;
        pthread_mutex_lock(&vt_clblast_mu);
        int *mode = vt_clblast_mode_of(c->device);
        vt_status s = VT_OK;
        if (!mode) {
            s = vt_error(VT_ERR_OOM, "opencl: more than %d devices with tuned CLBlast parameters", VT_CLBLAST_MAX_DEV);
        } else if (*mode != want) {
            vt_clblast_set g = {"GemmRoutine", 1, {"XGEMM_MIN_INDIRECT_SIZE"}, {want == 1 ? 64 : 1u << 20}};
            s = vt_clblast_apply(c, &g, "direct/indirect switch");
            if (s == VT_OK) *mode = want;
        }
        if (s != VT_OK) {
            pthread_mutex_unlock(&vt_clblast_mu);
            return s;
        }
        st = vt_clblast_sgemm(c, ta, tb, M, N, K, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc);
        pthread_mutex_unlock(&vt_clblast_mu);
    } else {
        st = vt_clblast_sgemm(c, ta, tb, M, N, K, alpha, A, ao, lda, B, bo, ldb, beta, C, co, ldc);
    }
    if (st != CLBlastSuccess) {
        vt_status s = (st == CLBlastTempBufferAllocFailure || st == CLBlastOpenCLOutOfResources ||
                       st == CLBlastOpenCLOutOfHostMemory)
                          ? VT_ERR_OOM
                          : VT_ERR_DEVICE;
        return vt_error(s, "opencl: %s: CLBlastSgemm(%s%s, M=%zu N=%zu K=%zu) failed: status %d (%s)", label,
                        ta ? "T" : "N", tb ? "T" : "N", M, N, K, (int)st,
                        (int)st > -1000 ? vt_ocl_err_name((cl_int)st) : "CLBlast argument or feature error");
    }
    be->counters.dispatches++;
    c->dirty = 1;
    return VT_OK;
}

/* ---- MATMUL ---- */

static vt_status op_matmul(vt_backend *be, const vt_node *n) {
    const vt_matmul_params *p = &n->p.matmul;
    const vt_tensor *A = n->src[0], *B = n->src[1], *bias = n->src[2], *C = n->dst[0];
    size_t M = (size_t)C->shape[0], N = (size_t)C->shape[1];
    size_t K = (size_t)(p->trans_a ? A->shape[0] : A->shape[1]);
    /* A layer's forward (x W^T) at batch size <= 128 with long rows: vt_gemm_nt4 reads both operands
     * along K, where CLBlast first copies W transposed (12 MiB for the MLP's first layer). */
    if (vt_ocl_of(be)->gemm_nt && !p->trans_a && p->trans_b && p->beta == 0.0f && M % 4 == 0 && N % 4 == 0 &&
        M <= 128 && K >= 256 && M * N * K <= (size_t)INT_MAX) {
        vt_ocl_args a;
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_GEMM_NT4, &a));
        ARG_T(&a, A);
        ARG_T(&a, B);
        ARG_T(&a, C);
        ARG_T(&a, bias ? bias : C);
        vt_ocl_arg_int(&a, bias != NULL);
        vt_ocl_arg_int(&a, (int)M);
        vt_ocl_arg_int(&a, (int)N);
        vt_ocl_arg_int(&a, (int)K);
        vt_ocl_arg_float(&a, p->alpha);
        vt_ocl_arg_int(&a, (int)p->act);
        vt_ocl_arg_float(&a, p->act_alpha);
        return vt_ocl_launch3(be, &a, M / 4, N / 4, 1);
    }
    VT_TRY(vt_ocl_gemm(be, n->label, p->trans_a, p->trans_b, M, N, K, p->alpha, vt_ocl_mem(A), vt_ocl_eoff(A),
                       (size_t)A->shape[1], vt_ocl_mem(B), vt_ocl_eoff(B), (size_t)B->shape[1], p->beta, vt_ocl_mem(C),
                       vt_ocl_eoff(C), N));
    if (!bias && p->act == VT_ACT_NONE) return VT_OK;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_BIAS_ACT, &a));
    ARG_T(&a, C);
    ARG_T(&a, bias ? bias : C);
    vt_ocl_arg_int(&a, bias != NULL);
    vt_ocl_arg_int(&a, (int)M);
    vt_ocl_arg_int(&a, (int)N);
    vt_ocl_arg_int(&a, (int)p->act);
    vt_ocl_arg_float(&a, p->act_alpha);
    return vt_ocl_launch3(be, &a, M, 1, 1);
}

/* ---- convolutions: chunks of images through im2col + one GEMM each ---- */

/* A device array: buffer and element offset (tensors, or regions of the scratch buffer). */
typedef struct dmem {
    cl_mem mem;
    size_t off;
} dmem;

static dmem dm_t(const vt_tensor *t) { return (dmem){vt_ocl_mem(t), (size_t)vt_ocl_eoff(t)}; }

typedef struct conv_dims {
    int N, C, H, W, K, R, S, P, Q;
    int sh, sw, ph, pw;
    int CRS, PQ, nb;         /* nb: images per chunk */
    size_t col_off, tmp_off; /* scratch regions, in floats */
} conv_dims;

/* Fills d for input x [N,C,H,W], weights [K,C,R,S], output [N,K,P,Q] and sizes the scratch: `lead`
 * floats first (for flipped weights), then col[CRS][nb*PQ], then tmp[K][nb*PQ]. */
static vt_status conv_setup(vt_backend *be, const vt_node *n, const int64_t *xs, const int64_t *ws_shape,
                            const int64_t *ys, int sh, int sw, int ph, int pw, size_t lead, conv_dims *d, cl_mem *ws) {
    d->N = (int)xs[0], d->C = (int)xs[1], d->H = (int)xs[2], d->W = (int)xs[3];
    d->K = (int)ws_shape[0], d->R = (int)ws_shape[2], d->S = (int)ws_shape[3];
    d->P = (int)ys[2], d->Q = (int)ys[3];
    d->sh = sh, d->sw = sw, d->ph = ph, d->pw = pw;
    d->CRS = d->C * d->R * d->S;
    d->PQ = d->P * d->Q;
    if ((size_t)d->CRS * (size_t)d->PQ > (size_t)INT_MAX)
        return vt_error(VT_ERR_UNSUPPORTED, "opencl: %s %s: one image unfolds to %zu values, over the 2^31 limit",
                        vt_op_name(n->op), n->label, (size_t)d->CRS * (size_t)d->PQ);
    size_t per_image = ((size_t)d->CRS + (size_t)d->K) * (size_t)d->PQ * sizeof(float);
    size_t limit = VT_OCL_CONV_SCRATCH;
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (limit > c->max_alloc) limit = (size_t)c->max_alloc;
    size_t nb = limit / per_image;
    if (nb < 1) nb = 1;
    if (nb > (size_t)d->N) nb = (size_t)d->N;
    /* Kernel indices are int: keep a chunk's unfolded matrix under 2^31 elements. */
    while (nb > 1 && (size_t)d->CRS * nb * (size_t)d->PQ > (size_t)INT_MAX) nb--;
    d->nb = (int)nb;
    d->col_off = (lead + 63) & ~(size_t)63;
    d->tmp_off = d->col_off + (size_t)d->CRS * nb * (size_t)d->PQ;
    return vt_ocl_workspace(be, d->col_off * sizeof(float) + per_image * nb, ws);
}

static vt_status conv_im2col(vt_backend *be, dmem x, const conv_dims *d, cl_mem ws, int n0, int nb) {
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_IM2COL, &a));
    vt_ocl_arg_mem(&a, x.mem);
    vt_ocl_arg_ulong(&a, x.off);
    vt_ocl_arg_mem(&a, ws);
    vt_ocl_arg_ulong(&a, d->col_off);
    int v[] = {d->C, d->H, d->W, d->R, d->S, d->P, d->Q, d->sh, d->sw, d->ph, d->pw, n0, nb};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
    return vt_ocl_launch3(be, &a, (size_t)nb * (size_t)d->P, (size_t)d->CRS, 1);
}

/* dy images n0..n0+nb into the GEMM layout tmp[K][nb*PQ]. */
static vt_status conv_gather(vt_backend *be, const vt_tensor *dy, const conv_dims *d, cl_mem ws, int n0, int nb) {
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_GATHER, &a));
    ARG_T(&a, dy);
    vt_ocl_arg_mem(&a, ws);
    vt_ocl_arg_ulong(&a, d->tmp_off);
    vt_ocl_arg_int(&a, d->K);
    vt_ocl_arg_int(&a, d->PQ);
    vt_ocl_arg_int(&a, n0);
    vt_ocl_arg_int(&a, nb);
    return vt_ocl_launch3(be, &a, (size_t)d->K, (size_t)nb, 1);
}

/* 16 or 32 output channels: our own kernels instead of 16-row CLBlast GEMMs (and the scatter)
 * (the option conv=gemm keeps the GEMM). */
static bool conv_few_channels(vt_backend *be, const conv_dims *d) {
    return vt_ocl_of(be)->conv_rows && (d->K == 16 || d->K == 32);
}

/* Stride 1 and rows of a multiple of 16 outputs: the direct kernels read a zero-bordered copy of the
 * chunk instead of its unfolded matrix (a 25x smaller scratch for 5x5 kernels, written once). */
static bool conv_direct(vt_backend *be, const conv_dims *d) {
    return conv_few_channels(be, d) && d->sh == 1 && d->sw == 1 && d->Q % 16 == 0;
}

/* The output, then the bias (or the output again as a placeholder) and whether there is one. */
static void arg_out_bias(vt_ocl_args *a, dmem y, const vt_tensor *bias) {
    vt_ocl_arg_mem(a, y.mem);
    vt_ocl_arg_ulong(a, y.off);
    vt_ocl_arg_mem(a, bias ? vt_ocl_mem(bias) : y.mem);
    vt_ocl_arg_ulong(a, bias ? vt_ocl_eoff(bias) : 0);
    vt_ocl_arg_int(a, bias != NULL);
}

/* The chunk n0..n0+nb of x with its zero border, at the scratch's column region. */
static vt_status conv_pad(vt_backend *be, dmem x, const conv_dims *d, cl_mem ws, int n0, int nb) {
    int Hp = d->H + 2 * d->ph;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_PAD, &a));
    vt_ocl_arg_mem(&a, x.mem);
    vt_ocl_arg_ulong(&a, x.off);
    vt_ocl_arg_mem(&a, ws);
    vt_ocl_arg_ulong(&a, d->col_off);
    int v[] = {d->C, d->H, d->W, d->ph, d->pw, n0, nb};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
    return vt_ocl_launch3(be, &a, (size_t)Hp, (size_t)nb * (size_t)d->C, 1);
}

/* y = act(conv(x, w) + bias) with the geometry in d (the scratch already sized by conv_setup). */
static vt_status conv_forward(vt_backend *be, const char *label, dmem x, dmem w, const vt_tensor *bias, vt_act act,
                              float act_alpha, dmem y, const conv_dims *d, cl_mem ws) {
    for (int n0 = 0; n0 < d->N; n0 += d->nb) {
        int nb = d->N - n0 < d->nb ? d->N - n0 : d->nb;
        size_t cols = (size_t)nb * (size_t)d->PQ;
        if (conv_direct(be, d)) {
            VT_TRY(conv_pad(be, x, d, ws, n0, nb));
            vt_ocl_args a;
            VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_DIRECT16, &a));
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, d->col_off);
            vt_ocl_arg_mem(&a, w.mem);
            vt_ocl_arg_ulong(&a, w.off);
            arg_out_bias(&a, y, bias);
            int v[] = {d->C, d->K, d->R, d->S, d->P, d->Q, d->H + 2 * d->ph, d->W + 2 * d->pw, n0, nb, (int)act};
            for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
            vt_ocl_arg_float(&a, act_alpha);
            VT_TRY(vt_ocl_launch3(be, &a, cols / 16, (size_t)d->K / 16, 1));
            continue;
        }
        VT_TRY(conv_im2col(be, x, d, ws, n0, nb));
        if (conv_few_channels(be, d)) {
            vt_ocl_args a;
            VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_ROWS16, &a));
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, d->col_off);
            vt_ocl_arg_mem(&a, w.mem);
            vt_ocl_arg_ulong(&a, w.off);
            arg_out_bias(&a, y, bias);
            vt_ocl_arg_int(&a, d->K);
            vt_ocl_arg_int(&a, d->CRS);
            vt_ocl_arg_int(&a, d->PQ);
            vt_ocl_arg_int(&a, n0);
            vt_ocl_arg_int(&a, nb);
            vt_ocl_arg_int(&a, (int)act);
            vt_ocl_arg_float(&a, act_alpha);
            VT_TRY(vt_ocl_launch3(be, &a, (cols + 15) / 16, (size_t)d->K / 16, 1));
            continue;
        }
        VT_TRY(vt_ocl_gemm(be, label, 0, 0, (size_t)d->K, cols, (size_t)d->CRS, 1.0f, w.mem, w.off, (size_t)d->CRS, ws,
                           d->col_off, cols, 0.0f, ws, d->tmp_off, cols));
        vt_ocl_args a;
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_SCATTER, &a));
        vt_ocl_arg_mem(&a, ws);
        vt_ocl_arg_ulong(&a, d->tmp_off);
        arg_out_bias(&a, y, bias);
        vt_ocl_arg_int(&a, d->K);
        vt_ocl_arg_int(&a, d->PQ);
        vt_ocl_arg_int(&a, n0);
        vt_ocl_arg_int(&a, nb);
        vt_ocl_arg_int(&a, (int)act);
        vt_ocl_arg_float(&a, act_alpha);
        VT_TRY(vt_ocl_launch3(be, &a, (size_t)d->K, (size_t)nb, 1));
    }
    return VT_OK;
}

static vt_status op_conv2d(vt_backend *be, const vt_node *n) {
    const vt_conv2d_params *p = &n->p.conv2d;
    const vt_tensor *x = n->src[0], *w = n->src[1], *y = n->dst[0];
    conv_dims d;
    cl_mem ws;
    VT_TRY(conv_setup(be, n, x->shape, w->shape, y->shape, p->stride_h, p->stride_w, p->pad_h, p->pad_w, 0, &d, &ws));
    return conv_forward(be, n->label, dm_t(x), dm_t(w), n->src[2], p->act, p->act_alpha, dm_t(y), &d, ws);
}

/* dx = the data gradient of a convolution with weights w [K,C,R,S] at dy [N,K,P,Q], plus bias[c] per
 * channel of dx when bias is given. CONV2D_BWD_DATA without bias; CONV2D_TRANSPOSE is the same sum with
 * its x as dy and its w [C_in,C_out,R,S] as the convolution's [K,C,R,S] (ops.h). */
static vt_status conv_bwd_data(vt_backend *be, const vt_node *n, const vt_tensor *dy, const vt_tensor *w,
                               const vt_tensor *bias, const vt_tensor *dx) {
    const vt_conv2d_params *p = &n->p.conv2d;
    conv_dims d;
    cl_mem ws;
    if (p->stride_h == 1 && p->stride_w == 1) {
        /* Stride 1: dx is the forward convolution of dy with the weights flipped in (r, s) and
         * transposed to [C,K,R,S], padded by R-1-pad. This keeps the GEMM's inner dimension at
         * K*R*S instead of K and replaces col2im by im2col (about 2x faster on PoCL). */
        int64_t K = w->shape[0], C = w->shape[1], R = w->shape[2], S = w->shape[3];
        int64_t wt_shape[4] = {C, K, R, S};
        size_t wt_elems = (size_t)(K * C * R * S);
        VT_TRY(conv_setup(be, n, dy->shape, wt_shape, dx->shape, 1, 1, (int)R - 1 - p->pad_h, (int)S - 1 - p->pad_w,
                          wt_elems, &d, &ws));
        vt_ocl_args a;
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_FLIP, &a));
        ARG_T(&a, w);
        vt_ocl_arg_mem(&a, ws);
        vt_ocl_arg_ulong(&a, 0);
        vt_ocl_arg_int(&a, (int)K);
        vt_ocl_arg_int(&a, (int)C);
        vt_ocl_arg_int(&a, (int)(R * S));
        VT_TRY(vt_ocl_launch3(be, &a, (size_t)K, (size_t)C, 1));
        return conv_forward(be, n->label, dm_t(dy), (dmem){ws, 0}, bias, VT_ACT_NONE, 0.0f, dm_t(dx), &d, ws);
    }
    VT_TRY(conv_setup(be, n, dx->shape, w->shape, dy->shape, p->stride_h, p->stride_w, p->pad_h, p->pad_w, 0, &d, &ws));
    for (int n0 = 0; n0 < d.N; n0 += d.nb) {
        int nb = d.N - n0 < d.nb ? d.N - n0 : d.nb;
        size_t cols = (size_t)nb * (size_t)d.PQ;
        VT_TRY(conv_gather(be, dy, &d, ws, n0, nb));
        /* dcol[CRS][cols] = W^T dy */
        VT_TRY(vt_ocl_gemm(be, n->label, 1, 0, (size_t)d.CRS, cols, (size_t)d.K, 1.0f, vt_ocl_mem(w), vt_ocl_eoff(w),
                           (size_t)d.CRS, ws, d.tmp_off, cols, 0.0f, ws, d.col_off, cols));
        vt_ocl_args a;
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_COL2IM, &a));
        vt_ocl_arg_mem(&a, ws);
        vt_ocl_arg_ulong(&a, d.col_off);
        arg_out_bias(&a, dm_t(dx), bias);
        int v[] = {d.C, d.H, d.W, d.R, d.S, d.P, d.Q, d.sh, d.sw, d.ph, d.pw, n0, nb};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
        VT_TRY(vt_ocl_launch3(be, &a, (size_t)d.H, (size_t)nb * (size_t)d.C, 1));
    }
    return VT_OK;
}

static vt_status op_conv2d_bwd_data(vt_backend *be, const vt_node *n) {
    return conv_bwd_data(be, n, n->src[0], n->src[1], NULL, n->dst[0]);
}

static vt_status op_conv2d_transpose(vt_backend *be, const vt_node *n) {
    return conv_bwd_data(be, n, n->src[0], n->src[1], n->src[2], n->dst[0]);
}

static vt_status op_conv2d_bwd_weight(vt_backend *be, const vt_node *n) {
    const vt_conv2d_params *p = &n->p.conv2d;
    const vt_tensor *dy = n->src[0], *x = n->src[1], *dw = n->dst[0];
    conv_dims d;
    cl_mem ws;
    VT_TRY(conv_setup(be, n, x->shape, dw->shape, dy->shape, p->stride_h, p->stride_w, p->pad_h, p->pad_w, 0, &d, &ws));
    for (int n0 = 0; n0 < d.N; n0 += d.nb) {
        int nb = d.N - n0 < d.nb ? d.N - n0 : d.nb;
        size_t cols = (size_t)nb * (size_t)d.PQ;
        if (conv_direct(be, &d) && d.S <= 5) {
            VT_TRY(conv_pad(be, dm_t(x), &d, ws, n0, nb));
            vt_ocl_args a;
            VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_DW_DIRECT, &a));
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, d.col_off);
            ARG_T(&a, dy);
            ARG_T(&a, dw);
            int v[] = {d.C, d.K, d.R, d.S, d.P, d.Q, d.H + 2 * d.ph, d.W + 2 * d.pw, n0, nb, n0 > 0};
            for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
            VT_TRY(vt_ocl_launch3(be, &a, (size_t)d.C * (size_t)d.R, (size_t)d.K / 4, 1));
            continue;
        }
        VT_TRY(conv_im2col(be, dm_t(x), &d, ws, n0, nb));
        VT_TRY(conv_gather(be, dy, &d, ws, n0, nb));
        /* dw[K][CRS] (+)= dy[K][cols] col[CRS][cols]^T; the first chunk overwrites. */
        if (conv_few_channels(be, &d)) {
            vt_ocl_args a;
            VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONV_DW16, &a));
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, d.tmp_off);
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, d.col_off);
            ARG_T(&a, dw);
            vt_ocl_arg_int(&a, d.CRS);
            vt_ocl_arg_int(&a, (int)cols);
            vt_ocl_arg_int(&a, n0 > 0);
            VT_TRY(vt_ocl_launch3(be, &a, ((size_t)d.CRS + 1) / 2, (size_t)d.K / 8, 1));
            continue;
        }
        VT_TRY(vt_ocl_gemm(be, n->label, 0, 1, (size_t)d.K, (size_t)d.CRS, cols, 1.0f, ws, d.tmp_off, cols, ws,
                           d.col_off, cols, n0 == 0 ? 0.0f : 1.0f, vt_ocl_mem(dw), vt_ocl_eoff(dw), (size_t)d.CRS));
    }
    return VT_OK;
}

/* ---- pooling ---- */

static vt_status op_pool(vt_backend *be, const vt_node *n) {
    const vt_pool2d_params *p = &n->p.pool2d;
    int bwd = n->op == VT_OP_POOL2D_BWD;
    const vt_tensor *x = bwd ? n->src[1] : n->src[0];
    const vt_tensor *y = bwd ? n->src[0] : n->dst[0];
    int planes = (int)(x->shape[0] * x->shape[1]);
    int disjoint = p->stride_h >= p->kh && p->stride_w >= p->kw;
    vt_ocl_args a;
    if (bwd && !disjoint && p->kind == VT_POOL_MAX) {
        /* Overlapping windows: find each window's maximum once, then gather per dx row. */
        size_t windows = (size_t)planes * (size_t)y->shape[2] * (size_t)y->shape[3];
        cl_mem ws;
        VT_TRY(vt_ocl_workspace(be, windows * sizeof(cl_int), &ws));
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_POOL_ARGMAX, &a));
        ARG_T(&a, x);
        vt_ocl_arg_mem(&a, ws);
        vt_ocl_arg_ulong(&a, 0);
        int v[] = {planes, (int)x->shape[2], (int)x->shape[3], (int)y->shape[2], (int)y->shape[3], p->kh,
                   p->kw,  p->stride_h,      p->stride_w,      p->pad_h,         p->pad_w};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
        VT_TRY(vt_ocl_launch3(be, &a, (size_t)y->shape[2], (size_t)planes, 1));
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_POOL_BWD_IDX, &a));
        ARG_T(&a, n->src[0]);
        vt_ocl_arg_mem(&a, ws);
        vt_ocl_arg_ulong(&a, 0);
        ARG_T(&a, n->dst[0]);
        int u[] = {planes, (int)x->shape[2], (int)x->shape[3], (int)y->shape[2], (int)y->shape[3],
                   p->kh,  p->stride_h,      p->pad_h};
        for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) vt_ocl_arg_int(&a, u[i]);
        return vt_ocl_launch3(be, &a, (size_t)x->shape[2], (size_t)planes, 1);
    }
    VT_TRY(vt_ocl_begin(be, !bwd ? VT_OCL_K_POOL_FWD : disjoint ? VT_OCL_K_POOL_BWD_DISJOINT : VT_OCL_K_POOL_BWD, &a));
    if (bwd) {
        ARG_T(&a, n->src[0]);
        ARG_T(&a, x);
        ARG_T(&a, n->dst[0]);
    } else {
        ARG_T(&a, x);
        ARG_T(&a, y);
    }
    int v[] = {planes, (int)x->shape[2], (int)x->shape[3], (int)y->shape[2], (int)y->shape[3], p->kh,
               p->kw,  p->stride_h,      p->stride_w,      p->pad_h,         p->pad_w,         (int)p->kind};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) vt_ocl_arg_int(&a, v[i]);
    if (bwd && disjoint) return vt_ocl_launch3(be, &a, (size_t)y->shape[2], (size_t)planes, 1);
    if (bwd) return vt_ocl_launch3(be, &a, (size_t)x->shape[2], (size_t)planes, 1);
    return vt_ocl_launch3(be, &a, (size_t)y->shape[2], (size_t)planes, 1);
}

/* ---- per-channel reductions ---- */

static void nchw(const vt_tensor *x, int *N, int *C, int *HW) {
    *N = (int)x->shape[0];
    *C = (int)x->shape[1];
    *HW = x->ndim == 4 ? (int)(x->shape[2] * x->shape[3]) : 1;
}

static vt_status op_bias_grad(vt_backend *be, const vt_node *n) {
    int N, C, HW;
    nchw(n->src[0], &N, &C, &HW);
    int rows = N * HW <= VT_OCL_ROWS_MAX;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, rows ? VT_OCL_K_BIAS_GRAD_ROWS : VT_OCL_K_BIAS_GRAD, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, HW);
    if (rows) return vt_ocl_launch(be, &a, (size_t)C, 0);
    return vt_ocl_launch(be, &a, (size_t)C * VT_OCL_RED_LS, VT_OCL_RED_LS);
}

/* The batch-norm kernels below serve both BATCHNORM / BATCHNORM_BWD and the synchronised batch
 * norm's four ops, so that one rank of the latter computes exactly what BATCHNORM does. Where a
 * kernel takes an invstd vector, is_var says it holds the variance instead, and the kernel forms
 * 1/sqrt(var + eps) as vt_bn_stats does for save_invstd. */

/* Row r of a [2,C] f32 tensor (the sync ops' stats and sums) as a [C] vector of the same buffer. */
static vt_tensor bn_row(const vt_tensor *t, int r) {
    vt_tensor v = *t;
    v.ndim = 1;
    v.shape[0] = t->shape[1];
    v.shape[1] = 1;
    v.offset += (size_t)r * (size_t)t->shape[1] * sizeof(float);
    return v;
}

/* y = (x - mean) * invstd * gamma + beta */
static vt_status bn_apply(vt_backend *be, const vt_tensor *x, const vt_tensor *y, const vt_tensor *mean,
                          const vt_tensor *sd, int is_var, float eps, const vt_tensor *gamma, const vt_tensor *beta) {
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_BN_APPLY, &a));
    ARG_T(&a, x);
    ARG_T(&a, y);
    ARG_T(&a, mean);
    ARG_T(&a, sd);
    vt_ocl_arg_int(&a, is_var);
    vt_ocl_arg_float(&a, eps);
    ARG_T(&a, gamma);
    ARG_T(&a, beta);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, HW);
    return vt_ocl_launch3(be, &a, (size_t)C, (size_t)N, 1);
}

/* This rank's channel sums of the backward: db = sum dy, dg = sum dy * xhat. */
static vt_status bn_bwd_sums(vt_backend *be, const vt_tensor *dy, const vt_tensor *x, const vt_tensor *mean,
                             const vt_tensor *sd, int is_var, float eps, const vt_tensor *dg, const vt_tensor *db) {
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    int rows = N * HW <= VT_OCL_ROWS_MAX;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, rows ? VT_OCL_K_BN_BWD_REDUCE_ROWS : VT_OCL_K_BN_BWD_REDUCE, &a));
    ARG_T(&a, dy);
    ARG_T(&a, x);
    ARG_T(&a, mean);
    ARG_T(&a, sd);
    ARG_T(&a, dg);
    ARG_T(&a, db);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, HW);
    vt_ocl_arg_int(&a, is_var);
    vt_ocl_arg_float(&a, eps);
    return rows ? vt_ocl_launch(be, &a, (size_t)C, 0) : vt_ocl_launch(be, &a, (size_t)C * VT_OCL_RED_LS, VT_OCL_RED_LS);
}

/* dx from the channel sums dg, db over M values per channel (training), or dy * gamma * invstd (eval). */
static vt_status bn_bwd_dx(vt_backend *be, const vt_tensor *dy, const vt_tensor *x, const vt_tensor *gamma,
                           const vt_tensor *mean, const vt_tensor *sd, int is_var, float eps, const vt_tensor *dg,
                           const vt_tensor *db, const vt_tensor *dx, int training, float M) {
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_BN_BWD_APPLY, &a));
    ARG_T(&a, dy);
    ARG_T(&a, x);
    ARG_T(&a, gamma);
    ARG_T(&a, mean);
    ARG_T(&a, sd);
    ARG_T(&a, dg);
    ARG_T(&a, db);
    ARG_T(&a, dx);
    vt_ocl_arg_int(&a, training);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, HW);
    vt_ocl_arg_float(&a, M);
    vt_ocl_arg_int(&a, is_var);
    vt_ocl_arg_float(&a, eps);
    return vt_ocl_launch3(be, &a, (size_t)C, (size_t)N, 1);
}

static vt_status op_batchnorm(vt_backend *be, const vt_node *n) {
    const vt_batchnorm_params *p = &n->p.bn;
    const vt_tensor *x = n->src[0], *gamma = n->src[1], *beta = n->src[2], *rm = n->src[3], *rv = n->src[4];
    const vt_tensor *y = n->dst[0], *sm = n->dst[1], *si = n->dst[2];
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    vt_ocl_args a;
    int rows = N * HW <= VT_OCL_ROWS_MAX;
    if (p->training) {
        VT_TRY(vt_ocl_begin(be, rows ? VT_OCL_K_BN_STATS_ROWS : VT_OCL_K_BN_STATS, &a));
        ARG_T(&a, x);
        vt_ocl_arg_int(&a, N);
        vt_ocl_arg_int(&a, C);
        vt_ocl_arg_int(&a, HW);
        ARG_T(&a, rm);
        ARG_T(&a, rv);
        ARG_T(&a, sm);
        ARG_T(&a, si);
        vt_ocl_arg_float(&a, p->momentum);
        vt_ocl_arg_float(&a, p->eps);
        VT_TRY(rows ? vt_ocl_launch(be, &a, (size_t)C, 0)
                    : vt_ocl_launch(be, &a, (size_t)C * VT_OCL_RED_LS, VT_OCL_RED_LS));
    } else if (sm || si) {
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_BN_EVAL_SAVE, &a));
        ARG_T(&a, rm);
        ARG_T(&a, rv);
        /* Either may be absent; the absent one is pointed at a scratch word. */
        cl_mem ws;
        VT_TRY(vt_ocl_workspace(be, (size_t)C * 2 * sizeof(float), &ws));
        if (sm) ARG_T(&a, sm);
        else {
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, 0);
        }
        if (si) ARG_T(&a, si);
        else {
            vt_ocl_arg_mem(&a, ws);
            vt_ocl_arg_ulong(&a, (cl_ulong)C);
        }
        vt_ocl_arg_int(&a, C);
        vt_ocl_arg_float(&a, p->eps);
        VT_TRY(vt_ocl_launch(be, &a, (size_t)C, 0));
    }
    return bn_apply(be, x, y, p->training ? sm : rm, p->training ? si : rv, !p->training, p->eps, gamma, beta);
}

static vt_status op_batchnorm_bwd(vt_backend *be, const vt_node *n) {
    const vt_tensor *dy = n->src[0], *x = n->src[1], *gamma = n->src[2], *mean = n->src[3], *inv = n->src[4];
    const vt_tensor *dx = n->dst[0], *dg = n->dst[1], *db = n->dst[2];
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    VT_TRY(bn_bwd_sums(be, dy, x, mean, inv, 0, 0.0f, dg, db));
    return bn_bwd_dx(be, dy, x, gamma, mean, inv, 0, 0.0f, dg, db, dx, n->p.bn.training, (float)(N * HW));
}

/* ---- synchronised batch norm: BATCHNORM / BATCHNORM_BWD cut at their channel reductions ---- */

/* BN_STATS: this rank's mean and biased variance into stats [2,C], by BATCHNORM's reduction. */
static vt_status op_bn_stats(vt_backend *be, const vt_node *n) {
    const vt_tensor *x = n->src[0], *stats = n->dst[0];
    int N, C, HW;
    nchw(x, &N, &C, &HW);
    int rows = N * HW <= VT_OCL_ROWS_MAX;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, rows ? VT_OCL_K_BN_SYNC_STATS_ROWS : VT_OCL_K_BN_SYNC_STATS, &a));
    ARG_T(&a, x);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, HW);
    ARG_T(&a, stats);
    return rows ? vt_ocl_launch(be, &a, (size_t)C, 0) : vt_ocl_launch(be, &a, (size_t)C * VT_OCL_RED_LS, VT_OCL_RED_LS);
}

/* BN_APPLY: y from the whole batch's stats, then the running statistics (when given) with M = count. */
static vt_status op_bn_apply(vt_backend *be, const vt_node *n) {
    const vt_batchnorm_params *p = &n->p.bn;
    const vt_tensor *x = n->src[0], *gamma = n->src[1], *beta = n->src[2], *stats = n->src[3];
    const vt_tensor *y = n->dst[0], *rm = n->dst[1], *rv = n->dst[2];
    vt_tensor mean = bn_row(stats, 0), var = bn_row(stats, 1);
    VT_TRY(bn_apply(be, x, y, &mean, &var, 1, p->eps, gamma, beta));
    if (!rm && !rv) return VT_OK;
    int C = (int)stats->shape[1];
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_BN_SYNC_RUNNING, &a));
    ARG_T(&a, stats);
    /* an absent vector is not written: stats stands in for its buffer */
    ARG_T(&a, rm ? rm : stats);
    vt_ocl_arg_int(&a, rm != NULL);
    ARG_T(&a, rv ? rv : stats);
    vt_ocl_arg_int(&a, rv != NULL);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_float(&a, p->momentum);
    vt_ocl_arg_float(&a, (float)p->count);
    vt_ocl_arg_float(&a, (float)(p->count - 1));
    return vt_ocl_launch(be, &a, (size_t)C, 0);
}

/* Copies a [C] vector within the device (an exact copy of the bits). */
static vt_status copy_vec(vt_backend *be, const vt_tensor *src, const vt_tensor *dst) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    VT_OCL_CHECK(clEnqueueCopyBuffer(c->queue, vt_ocl_mem(src), vt_ocl_mem(dst), src->offset, dst->offset,
                                     (size_t)vt_tensor_nelem(dst) * sizeof(float), 0, NULL, NULL));
    be->counters.dispatches++;
    c->dirty = 1;
    return VT_OK;
}

/* BN_BWD_STATS: sums [2,C] = (sum dy*xhat, sum dy) by BATCHNORM_BWD's reduction; dgamma and dbeta,
 * when present, are copies of the two rows (the host overwrites sums afterwards, not them). */
static vt_status op_bn_bwd_stats(vt_backend *be, const vt_node *n) {
    const vt_tensor *dy = n->src[0], *x = n->src[1], *stats = n->src[2];
    const vt_tensor *dg = n->dst[0], *db = n->dst[1], *sums = n->dst[2];
    vt_tensor mean = bn_row(stats, 0), var = bn_row(stats, 1), s0 = bn_row(sums, 0), s1 = bn_row(sums, 1);
    VT_TRY(bn_bwd_sums(be, dy, x, &mean, &var, 1, n->p.bn.eps, &s0, &s1));
    if (dg) VT_TRY(copy_vec(be, &s0, dg));
    if (db) VT_TRY(copy_vec(be, &s1, db));
    return VT_OK;
}

/* BN_BWD_APPLY: dx with the sums over all ranks and M = count. */
static vt_status op_bn_bwd_apply(vt_backend *be, const vt_node *n) {
    const vt_tensor *dy = n->src[0], *x = n->src[1], *gamma = n->src[2], *stats = n->src[3], *sums = n->src[4];
    vt_tensor mean = bn_row(stats, 0), var = bn_row(stats, 1), s0 = bn_row(sums, 0), s1 = bn_row(sums, 1);
    return bn_bwd_dx(be, dy, x, gamma, &mean, &var, 1, n->p.bn.eps, &s0, &s1, n->dst[0], 1, (float)n->p.bn.count);
}

/* ---- element-wise ---- */

static vt_status op_act(vt_backend *be, const vt_node *n) {
    vt_ocl_args a;
    if (n->op == VT_OP_ACT) {
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_ACT_FWD, &a));
        ARG_T(&a, n->src[0]);
    } else {
        VT_TRY(vt_ocl_begin(be, VT_OCL_K_ACT_BWD, &a));
        ARG_T(&a, n->src[0]);
        ARG_T(&a, n->src[1]);
    }
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, nel(n->dst[0]));
    vt_ocl_arg_int(&a, (int)n->p.act.kind);
    vt_ocl_arg_float(&a, n->p.act.alpha);
    return vt_ocl_launch(be, &a, (size_t)nel(n->dst[0]), 0);
}

static vt_status op_add(vt_backend *be, const vt_node *n) {
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_ADD, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->src[1]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, nel(n->dst[0]));
    return vt_ocl_launch(be, &a, (size_t)nel(n->dst[0]), 0);
}

static vt_status op_dropout(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_DROPOUT, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, nel(n->dst[0]));
    vt_ocl_arg_float(&a, n->p.dropout.p);
    vt_ocl_arg_uint(&a, ctx->seed);
    vt_ocl_arg_uint(&a, n->p.dropout.salt);
    vt_ocl_arg_uint(&a, (uint32_t)ctx->step);
    vt_ocl_arg_uint(&a, (uint32_t)(ctx->step >> 32));
    return vt_ocl_launch(be, &a, (size_t)nel(n->dst[0]), 0);
}

/* ---- loss ---- */

/* Logits [N,K] (S = 1) or [N,K,H,W] (S = H*W): N*S rows of K classes, stride S. */
static void ce_dims(const vt_tensor *x, int *rows, int *K, int *S) {
    int64_t s = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
    *rows = (int)(x->shape[0] * s);
    *K = (int)x->shape[1];
    *S = (int)s;
}

static vt_status op_softmax_ce(vt_backend *be, const vt_node *n) {
    const vt_tensor *x = n->src[0], *lab = n->src[1];
    int N, K, S;
    ce_dims(x, &N, &K, &S);
    cl_mem ws;
    VT_TRY(vt_ocl_workspace(be, (size_t)N * 3 * sizeof(float), &ws));
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CE_ROWS, &a));
    ARG_T(&a, x);
    ARG_T(&a, lab);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, K);
    vt_ocl_arg_int(&a, S);
    vt_ocl_arg_float(&a, n->p.ce.label_smoothing);
    vt_ocl_arg_int(&a, n->p.ce.ignore);
    vt_ocl_arg_mem(&a, ws);
    vt_ocl_arg_ulong(&a, 0);
    VT_TRY(vt_ocl_launch(be, &a, (size_t)N, 0));
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CE_REDUCE, &a));
    vt_ocl_arg_mem(&a, ws);
    vt_ocl_arg_ulong(&a, 0);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, n->p.ce.ignore);
    ARG_T(&a, n->dst[0]);
    ARG_T(&a, n->dst[1] ? n->dst[1] : n->dst[0]);
    vt_ocl_arg_int(&a, n->dst[1] != NULL);
    return vt_ocl_launch(be, &a, VT_OCL_RED_LS, VT_OCL_RED_LS);
}

static vt_status op_softmax_ce_bwd(vt_backend *be, const vt_node *n) {
    const vt_tensor *x = n->src[0];
    int N, K, S;
    ce_dims(x, &N, &K, &S);
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CE_BWD, &a));
    ARG_T(&a, x);
    ARG_T(&a, n->src[1]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, K);
    vt_ocl_arg_int(&a, S);
    vt_ocl_arg_float(&a, n->p.ce.label_smoothing);
    vt_ocl_arg_float(&a, n->p.ce.scale);
    vt_ocl_arg_int(&a, n->p.ce.ignore);
    return vt_ocl_launch(be, &a, (size_t)N, 0);
}

static vt_status op_argmax(vt_backend *be, const vt_node *n) {
    const vt_tensor *x = n->src[0];
    int N, K, S;
    ce_dims(x, &N, &K, &S);
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_ARGMAX, &a));
    ARG_T(&a, x);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, N);
    vt_ocl_arg_int(&a, K);
    vt_ocl_arg_int(&a, S);
    return vt_ocl_launch(be, &a, (size_t)N, 0);
}

/* CONFUSION: adds into the existing counts (never cleared here: the op accumulates). */
static vt_status op_confusion(vt_backend *be, const vt_node *n) {
    int M = nel(n->src[0]);
    if (M == 0) return VT_OK;
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_CONFUSION, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->src[1]);
    vt_ocl_arg_int(&a, M);
    vt_ocl_arg_int(&a, (int)n->dst[0]->shape[0] - 1);
    ARG_T(&a, n->dst[0]);
    return vt_ocl_launch(be, &a, (size_t)M, 0);
}

/* ---- data ---- */

static vt_status op_upsample(vt_backend *be, const vt_node *n) {
    int bwd = n->op == VT_OP_UPSAMPLE_BWD;
    const vt_tensor *x = bwd ? n->dst[0] : n->src[0];
    const vt_tensor *y = bwd ? n->src[0] : n->dst[0];
    int planes = (int)(x->shape[0] * x->shape[1]);
    int H = (int)x->shape[2], W = (int)x->shape[3], Ho = (int)y->shape[2], Wo = (int)y->shape[3];
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, bwd ? VT_OCL_K_UPSAMPLE_BWD : VT_OCL_K_UPSAMPLE, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, planes);
    vt_ocl_arg_int(&a, H);
    vt_ocl_arg_int(&a, W);
    vt_ocl_arg_int(&a, Ho);
    vt_ocl_arg_int(&a, Wo);
    vt_ocl_arg_float(&a, (float)H / (float)Ho);
    vt_ocl_arg_float(&a, (float)W / (float)Wo);
    vt_ocl_arg_int(&a, (int)n->p.upsample.mode);
    if (bwd) return vt_ocl_launch(be, &a, (size_t)planes, 0);
    return vt_ocl_launch3(be, &a, (size_t)Ho, (size_t)planes, 1);
}

static vt_status op_batch_prep(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_batch_prep_params *p = &n->p.prep;
    const vt_tensor *img = n->src[0], *x = n->dst[0];
    int64_t D = img->shape[0], B = x->shape[0];
    if (ctx->batch_start < 0 || ctx->batch_start + B > D)
        return vt_error(VT_ERR_INVALID_ARG, "opencl: batch_prep %s: batch [%lld, %lld) is outside the %lld samples",
                        n->label, (long long)ctx->batch_start, (long long)(ctx->batch_start + B), (long long)D);
    int C = (int)x->shape[1];
    cl_float4 mean = {{0, 0, 0, 0}}, sd = {{1, 1, 1, 1}};
    for (int c = 0; c < C && c < 4; c++) {
        mean.s[c] = p->mean[c];
        sd.s[c] = p->std[c];
    }
    int masks = n->src[1]->dtype == VT_U8; /* u8 [D,H,W] class ids per pixel, else i32 [D] */
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_BATCH_PREP, &a));
    ARG_T(&a, img);
    ARG_T(&a, n->src[1]); /* as i32 labels (unused with masks) */
    ARG_T(&a, n->src[1]); /* as u8 masks (unused without) */
    ARG_T(&a, n->src[2]);
    ARG_T(&a, x);
    ARG_T(&a, n->dst[1]);
    vt_ocl_arg_int(&a, (int)B);
    vt_ocl_arg_int(&a, C);
    vt_ocl_arg_int(&a, (int)img->shape[2]);
    vt_ocl_arg_int(&a, (int)img->shape[3]);
    vt_ocl_arg_int(&a, (int)x->shape[2]);
    vt_ocl_arg_int(&a, (int)x->shape[3]);
    vt_ocl_arg_int(&a, p->pad);
    vt_ocl_arg_int(&a, p->flip);
    vt_ocl_arg_int(&a, p->center);
    vt_ocl_arg_int(&a, masks);
    vt_ocl_arg(&a, sizeof mean, &mean);
    vt_ocl_arg(&a, sizeof sd, &sd);
    vt_ocl_arg_uint(&a, ctx->seed);
    vt_ocl_arg_uint(&a, p->salt);
    vt_ocl_arg_uint(&a, (uint32_t)ctx->step);
    vt_ocl_arg_uint(&a, (uint32_t)(ctx->step >> 32));
    vt_ocl_arg_long(&a, ctx->batch_start);
    return vt_ocl_launch3(be, &a, (size_t)x->shape[2], (size_t)(B * C), 1);
}

/* ---- optimizers and fill ---- */

static vt_status op_sgd(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_sgd_params *p = &n->p.sgd;
    const vt_tensor *param = n->dst[0], *buf = n->dst[1];
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_SGD, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, param);
    ARG_T(&a, (p->momentum != 0.0f && buf) ? buf : param);
    vt_ocl_arg_int(&a, nel(param));
    vt_ocl_arg_float(&a, ctx->lr * p->lr_mult);
    vt_ocl_arg_float(&a, p->momentum);
    vt_ocl_arg_float(&a, p->weight_decay);
    vt_ocl_arg_int(&a, p->nesterov);
    return vt_ocl_launch(be, &a, ((size_t)nel(param) + 15) / 16, 0);
}

static vt_status op_adam(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    const vt_adam_params *p = &n->p.adam;
    int64_t t = (int64_t)ctx->step - p->step_offset + 1;
    if (t < 1)
        return vt_error(VT_ERR_INVALID_ARG, "opencl: adam %s: step %llu before step_offset %lld", n->label,
                        (unsigned long long)ctx->step, (long long)p->step_offset);
    vt_adam_consts k = vt_adam_consts_of(p, ctx->lr * p->lr_mult, t);
    const vt_tensor *param = n->dst[0];
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_ADAM, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, param);
    ARG_T(&a, n->dst[1]);
    ARG_T(&a, n->dst[2]);
    vt_ocl_arg_int(&a, nel(param));
    vt_ocl_arg_float(&a, k.c1);
    vt_ocl_arg_float(&a, k.c2);
    vt_ocl_arg_float(&a, k.b2);
    vt_ocl_arg_float(&a, k.eps);
    vt_ocl_arg_float(&a, k.wd);
    vt_ocl_arg_int(&a, p->decoupled);
    vt_ocl_arg_float(&a, k.step_size);
    vt_ocl_arg_float(&a, k.sqrt_bc2);
    vt_ocl_arg_float(&a, k.decay);
    return vt_ocl_launch(be, &a, (size_t)nel(param), 0);
}

static vt_status op_fill(vt_backend *be, const vt_node *n) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    const vt_tensor *t = n->dst[0];
    float v = n->p.fill.value;
    unsigned char pattern[4];
    size_t psize = vt_dtype_size(t->dtype);
    switch (t->dtype) {
    case VT_F32: memcpy(pattern, &v, 4); break;
    case VT_I32: {
        int32_t i = (int32_t)v;
        memcpy(pattern, &i, 4);
        break;
    }
    case VT_U32: {
        uint32_t u = (uint32_t)(int64_t)v;
        memcpy(pattern, &u, 4);
        break;
    }
    case VT_U8: pattern[0] = (unsigned char)(int)v; break;
    default: return vt_error(VT_ERR_DTYPE, "opencl: fill %s: dtype %s", n->label, vt_dtype_name(t->dtype));
    }
    VT_OCL_CHECK(
        clEnqueueFillBuffer(c->queue, vt_ocl_mem(t), pattern, psize, t->offset, vt_tensor_nbytes(t), 0, NULL, NULL));
    be->counters.dispatches++;
    c->dirty = 1;
    return VT_OK;
}

static vt_status op_nonfinite(vt_backend *be, const vt_node *n) {
    vt_ocl_args a;
    VT_TRY(vt_ocl_begin(be, VT_OCL_K_NONFINITE, &a));
    ARG_T(&a, n->src[0]);
    ARG_T(&a, n->dst[0]);
    vt_ocl_arg_int(&a, nel(n->src[0]));
    return vt_ocl_launch(be, &a, ((size_t)nel(n->src[0]) + 15) / 16, 0);
}

/* ---- dispatch ---- */

/* The ops this backend implements (every one of ops.h today); a new op is absent until it is added
 * here and to vt_ocl_compute. Sized by its last entry, so an op appended to ops.h fails the assert. */
static const unsigned char vt_ocl_ops[] = {
    [VT_OP_NONE] = 0,
    [VT_OP_MATMUL] = 1,
    [VT_OP_BIAS_GRAD] = 1,
    [VT_OP_CONV2D] = 1,
    [VT_OP_CONV2D_BWD_DATA] = 1,
    [VT_OP_CONV2D_BWD_WEIGHT] = 1,
    [VT_OP_POOL2D] = 1,
    [VT_OP_POOL2D_BWD] = 1,
    [VT_OP_BATCHNORM] = 1,
    [VT_OP_BATCHNORM_BWD] = 1,
    [VT_OP_ACT] = 1,
    [VT_OP_ACT_BWD] = 1,
    [VT_OP_DROPOUT] = 1,
    [VT_OP_DROPOUT_BWD] = 1,
    [VT_OP_ADD] = 1,
    [VT_OP_SOFTMAX_CE] = 1,
    [VT_OP_SOFTMAX_CE_BWD] = 1,
    [VT_OP_ARGMAX] = 1,
    [VT_OP_UPSAMPLE] = 1,
    [VT_OP_UPSAMPLE_BWD] = 1,
    [VT_OP_BATCH_PREP] = 1,
    [VT_OP_SGD] = 1,
    [VT_OP_ADAM] = 1,
    [VT_OP_FILL] = 1,
    [VT_OP_NONFINITE] = 1,
    [VT_OP_BN_STATS] = 1,
    [VT_OP_BN_APPLY] = 1,
    [VT_OP_BN_BWD_STATS] = 1,
    [VT_OP_BN_BWD_APPLY] = 1,
    [VT_OP_CONV2D_TRANSPOSE] = 1,
    [VT_OP_CONFUSION] = 1,
};
_Static_assert(sizeof vt_ocl_ops / sizeof vt_ocl_ops[0] == VT_OP_COUNT, "vt_ocl_ops needs one entry per op of ops.h");

/* The im2col lowering unfolds one image of a convolution into C*R*S x P*Q values, indexed with int
 * in the kernels (conv_setup): a node past that is not supported rather than refused at run time. */
static bool conv_fits(const vt_node *n) {
    const vt_tensor *a = n->src[0], *w = n->src[1], *b = n->dst[0];
    if (n->op == VT_OP_CONV2D_BWD_DATA || n->op == VT_OP_CONV2D_TRANSPOSE) { /* dy (x), w -> dx (y) */
        const vt_conv2d_params *p = &n->p.conv2d;
        if (p->stride_h == 1 && p->stride_w == 1) /* the forward over dy with [C,K,R,S] weights */
            return w->shape[0] * w->shape[2] * w->shape[3] * b->shape[2] * b->shape[3] <= INT_MAX;
        return w->shape[1] * w->shape[2] * w->shape[3] * a->shape[2] * a->shape[3] <= INT_MAX;
    }
    if (n->op == VT_OP_CONV2D_BWD_WEIGHT) /* dy, x -> dw: unfolds x over dy's positions */
        return b->shape[1] * b->shape[2] * b->shape[3] * a->shape[2] * a->shape[3] <= INT_MAX;
    return w->shape[1] * w->shape[2] * w->shape[3] * b->shape[2] * b->shape[3] <= INT_MAX;
}

bool vt_ocl_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    if ((int)n->op <= VT_OP_NONE || (int)n->op >= VT_OP_COUNT || !vt_ocl_ops[n->op]) return false;
    const vt_tensor *ts[VT_MAX_SRC + VT_MAX_DST];
    int k = 0;
    for (int i = 0; i < VT_MAX_SRC; i++) ts[k++] = n->src[i];
    for (int i = 0; i < VT_MAX_DST; i++) ts[k++] = n->dst[i];
    for (int i = 0; i < k; i++) {
        const vt_tensor *t = ts[i];
        if (!t) continue;
        if (t->dtype == VT_F16 || t->dtype == VT_BF16) return false;
        /* Kernels index with int and take element offsets. */
        if (vt_tensor_nelem(t) > INT_MAX || t->offset % vt_dtype_size(t->dtype) != 0) return false;
        if (!t->buf || !t->buf->handle) return false;
    }
    if (n->op == VT_OP_CONV2D || n->op == VT_OP_CONV2D_BWD_DATA || n->op == VT_OP_CONV2D_BWD_WEIGHT ||
        n->op == VT_OP_CONV2D_TRANSPOSE)
        return conv_fits(n);
    return true;
}

vt_status vt_ocl_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    static const vt_step_ctx zero_ctx = {0};
    if (!ctx) ctx = &zero_ctx;
    switch (n->op) {
    case VT_OP_MATMUL: return op_matmul(be, n);
    case VT_OP_BIAS_GRAD: return op_bias_grad(be, n);
    case VT_OP_CONV2D: return op_conv2d(be, n);
    case VT_OP_CONV2D_BWD_DATA: return op_conv2d_bwd_data(be, n);
    case VT_OP_CONV2D_BWD_WEIGHT: return op_conv2d_bwd_weight(be, n);
    case VT_OP_CONV2D_TRANSPOSE: return op_conv2d_transpose(be, n);
    case VT_OP_POOL2D:
    case VT_OP_POOL2D_BWD: return op_pool(be, n);
    case VT_OP_BATCHNORM: return op_batchnorm(be, n);
    case VT_OP_BATCHNORM_BWD: return op_batchnorm_bwd(be, n);
    case VT_OP_ACT:
    case VT_OP_ACT_BWD: return op_act(be, n);
    case VT_OP_DROPOUT:
    case VT_OP_DROPOUT_BWD: return op_dropout(be, n, ctx);
    case VT_OP_ADD: return op_add(be, n);
    case VT_OP_SOFTMAX_CE: return op_softmax_ce(be, n);
    case VT_OP_SOFTMAX_CE_BWD: return op_softmax_ce_bwd(be, n);
    case VT_OP_ARGMAX: return op_argmax(be, n);
    case VT_OP_CONFUSION: return op_confusion(be, n);
    case VT_OP_UPSAMPLE:
    case VT_OP_UPSAMPLE_BWD: return op_upsample(be, n);
    case VT_OP_BATCH_PREP: return op_batch_prep(be, n, ctx);
    case VT_OP_SGD: return op_sgd(be, n, ctx);
    case VT_OP_ADAM: return op_adam(be, n, ctx);
    case VT_OP_FILL: return op_fill(be, n);
    case VT_OP_NONFINITE: return op_nonfinite(be, n);
    case VT_OP_BN_STATS: return op_bn_stats(be, n);
    case VT_OP_BN_APPLY: return op_bn_apply(be, n);
    case VT_OP_BN_BWD_STATS: return op_bn_bwd_stats(be, n);
    case VT_OP_BN_BWD_APPLY: return op_bn_bwd_apply(be, n);
    default: return vt_error(VT_ERR_UNSUPPORTED, "opencl: op %s (%s) is not implemented", vt_op_name(n->op), n->label);
    }
}
