/* Vulkan backend: the embedded SPIR-V table, pipelines created lazily per shader + specialization,
 * and one encoder per op that turns a node into dispatches (bindings, push constants, grid). */
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define SPV(name)                             \
    extern const uint32_t vt_vk_spv_##name[]; \
    extern const size_t vt_vk_spv_##name##_size;
SPV(gemm_mm)
SPV(gemm_vec4) SPV(gemm_conv) SPV(gemm_conv_dx) SPV(gemm_conv_dw) SPV(gemm_reduce) SPV(eltwise) SPV(eltwise4) SPV(fill)
    SPV(gemm_mm_tex) SPV(gemm_vec4_tex) SPV(gemm_conv_tex) SPV(gemm_conv_dx_tex) SPV(gemm_conv_dw_tex) SPV(eltwise_tex)
        SPV(eltwise4_tex) SPV(gemm_mm_smem) SPV(gemm_conv_smem) SPV(gemm_conv_dx_smem) SPV(gemm_conv_dw_smem)
            SPV(bias_grad_sg) SPV(batchnorm_sg) SPV(bias_grad) SPV(pool) SPV(batchnorm) SPV(softmax_ce) SPV(argmax)
                SPV(upsample) SPV(batch_prep) SPV(nonfinite) SPV(confusion)
#undef SPV

                    enum {
                        SH_GEMM_MM,
                        SH_GEMM_VEC4,
                        SH_GEMM_CONV,
                        SH_GEMM_CONV_DX,
                        SH_GEMM_CONV_DW,
                        SH_GEMM_REDUCE,
                        SH_ELTWISE,
                        SH_ELTWISE4,
                        SH_FILL,
                        SH_BIAS_GRAD,
                        SH_POOL,
                        SH_BATCHNORM,
                        SH_SOFTMAX_CE,
                        SH_ARGMAX,
                        SH_UPSAMPLE,
                        SH_BATCH_PREP,
                        SH_NONFINITE,
                        SH_CONFUSION,
                        /* the same shaders reading operands 0 and 1 through texel buffers */
                        SH_GEMM_MM_T,
                        SH_GEMM_VEC4_T,
                        SH_GEMM_CONV_T,
                        SH_GEMM_CONV_DX_T,
                        SH_GEMM_CONV_DW_T,
                        SH_ELTWISE_T,
                        SH_ELTWISE4_T,
                        /* the GEMM shader's modes with shared-memory tiles (GPUs) */
                        SH_GEMM_MM_S,
                        SH_GEMM_CONV_S,
                        SH_GEMM_CONV_DX_S,
                        SH_GEMM_CONV_DW_S,
                        /* the reducing shaders with subgroup arithmetic */
                        SH_BIAS_GRAD_SG,
                        SH_BATCHNORM_SG,
                        SH_COUNT
                    };

typedef struct vk_shader_src {
    const char *name;
    const uint32_t *code;
    const size_t *size;
} vk_shader_src;

static const vk_shader_src vk_shaders[SH_COUNT] = {
#define S(e, n) [e] = {#n, vt_vk_spv_##n, &vt_vk_spv_##n##_size}
    S(SH_GEMM_MM, gemm_mm),
    S(SH_GEMM_VEC4, gemm_vec4),
    S(SH_GEMM_CONV, gemm_conv),
    S(SH_GEMM_CONV_DX, gemm_conv_dx),
    S(SH_GEMM_CONV_DW, gemm_conv_dw),
    S(SH_GEMM_REDUCE, gemm_reduce),
    S(SH_ELTWISE, eltwise),
    S(SH_ELTWISE4, eltwise4),
    S(SH_FILL, fill),
    S(SH_BIAS_GRAD, bias_grad),
    S(SH_POOL, pool),
    S(SH_BATCHNORM, batchnorm),
    S(SH_SOFTMAX_CE, softmax_ce),
    S(SH_ARGMAX, argmax),
    S(SH_UPSAMPLE, upsample),
    S(SH_BATCH_PREP, batch_prep),
    S(SH_NONFINITE, nonfinite),
    S(SH_CONFUSION, confusion),
    S(SH_GEMM_MM_T, gemm_mm_tex),
    S(SH_GEMM_VEC4_T, gemm_vec4_tex),
    S(SH_GEMM_CONV_T, gemm_conv_tex),
    S(SH_GEMM_CONV_DX_T, gemm_conv_dx_tex),
    S(SH_GEMM_CONV_DW_T, gemm_conv_dw_tex),
    S(SH_ELTWISE_T, eltwise_tex),
    S(SH_ELTWISE4_T, eltwise4_tex),
    S(SH_GEMM_MM_S, gemm_mm_smem),
    S(SH_GEMM_CONV_S, gemm_conv_smem),
    S(SH_GEMM_CONV_DX_S, gemm_conv_dx_smem),
    S(SH_GEMM_CONV_DW_S, gemm_conv_dw_smem),
    S(SH_BIAS_GRAD_SG, bias_grad_sg),
    S(SH_BATCHNORM_SG, batchnorm_sg),
#undef S
};

int vt_vk_shader_count(void) { return SH_COUNT; }

/* Operands 0 and 1 of shaders with a texel twin are read through uniform texel buffers when the
 * device's texel-buffer range covers them and they are aligned to the texel (16 bytes for the vec4
 * shaders, 4 otherwise): CPU drivers fetch texels with vector loads and storage buffers lane by lane
 * (lavapipe: SGEMM 21 -> 62 GFLOP/s). The arithmetic is the same, so are the results. */
static int vk_texel_twin(int shader, uint32_t *texel_bytes) {
    static const int twin[][2] = {{SH_GEMM_MM, SH_GEMM_MM_T},           {SH_GEMM_VEC4, SH_GEMM_VEC4_T},
                                  {SH_GEMM_CONV, SH_GEMM_CONV_T},       {SH_GEMM_CONV_DX, SH_GEMM_CONV_DX_T},
                                  {SH_GEMM_CONV_DW, SH_GEMM_CONV_DW_T}, {SH_ELTWISE, SH_ELTWISE_T},
                                  {SH_ELTWISE4, SH_ELTWISE4_T}};
    for (size_t i = 0; i < sizeof twin / sizeof twin[0]; i++)
        if (twin[i][0] == shader) {
            *texel_bytes = (shader == SH_GEMM_VEC4 || shader == SH_ELTWISE4) ? 16 : 4;
            return twin[i][1];
        }
    return -1;
}

static int vk_use_texels(const vk_ctx *c, int *shader, vk_arg *args, int nargs) {
    uint32_t tb = 0;
    int twin = vk_texel_twin(*shader, &tb);
    if (twin < 0 || c->no_texel) return 0;
    /* the element-wise twin also takes its read-write operands 2-4 as storage texel buffers */
    int n = twin == SH_ELTWISE_T || twin == SH_ELTWISE4_T ? VK_MAX_TEX + VK_MAX_IMG : VK_MAX_TEX;
    VkDeviceSize cap = (VkDeviceSize)c->props.limits.maxTexelBufferElements * tb;
    for (int i = 0; i < n && i < nargs; i++) {
        if (!args[i].alloc) continue;
        VkDeviceSize lo = args[i].alloc->off + args[i].off;
        if (lo % tb || lo + args[i].size > cap || args[i].alloc->block->size > (VkDeviceSize)UINT32_MAX * tb) return 0;
    }
    for (int i = 0; i < n && i < nargs; i++)
        if (args[i].alloc) args[i].texel = tb == 16 ? 1 : 2;
    *shader = twin;
    return 1;
}

/* ---- pipelines ---- */

vt_status vt_vk_pipeline_get(vt_backend *be, int shader, const uint32_t *spec, VkPipeline *out) {
    vk_ctx *c = be->context;
    for (int i = 0; i < c->n_pipes; i++)
        if (c->pipes[i].shader == shader && memcmp(c->pipes[i].spec, spec, sizeof c->pipes[i].spec) == 0) {
            *out = c->pipes[i].pipe;
            return VT_OK;
        }
    if (!c->modules[shader]) {
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = *vk_shaders[shader].size,
                                       .pCode = vk_shaders[shader].code};
        VkResult r = vkCreateShaderModule(c->dev, &mi, NULL, &c->modules[shader]);
        if (r != VK_SUCCESS) {
            vt_vk_fail_at(__FILE__, __LINE__, r, "vkCreateShaderModule");
            return vt_error(VT_ERR_DEVICE, "vulkan: shader %s: vkCreateShaderModule failed (%d)",
                            vk_shaders[shader].name, (int)r);
        }
    }
    VkSpecializationMapEntry map[3 + VK_MAX_SPEC];
    for (uint32_t i = 0; i < 3 + VK_MAX_SPEC; i++) map[i] = (VkSpecializationMapEntry){i, 4 * i, 4};
    VkSpecializationInfo si = {.mapEntryCount = 3 + VK_MAX_SPEC,
                               .pMapEntries = map,
                               .dataSize = sizeof(uint32_t) * (3 + VK_MAX_SPEC),
                               .pData = spec};
    VkComputePipelineCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                                      .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                                                .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                                                .module = c->modules[shader],
                                                .pName = "main",
                                                .pSpecializationInfo = &si},
                                      .layout = c->layout};
    VkPipeline p;
    VkResult r = vkCreateComputePipelines(c->dev, c->pcache, 1, &pi, NULL, &p);
    if (r != VK_SUCCESS) {
        vt_vk_fail_at(__FILE__, __LINE__, r, "vkCreateComputePipelines");
        return vt_error(r == VK_ERROR_DEVICE_LOST ? VT_ERR_DEVICE_LOST : VT_ERR_DEVICE,
                        "vulkan: shader %s: vkCreateComputePipelines failed (%d)", vk_shaders[shader].name, (int)r);
    }
    if (c->n_pipes == c->cap_pipes) {
        int cap = c->cap_pipes ? 2 * c->cap_pipes : 32;
        vk_pipe *np = realloc(c->pipes, sizeof *np * (size_t)cap);
        if (!np) {
            vkDestroyPipeline(c->dev, p, NULL);
            return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
        }
        c->pipes = np;
        c->cap_pipes = cap;
    }
    vk_pipe *e = &c->pipes[c->n_pipes++];
    e->shader = shader;
    memcpy(e->spec, spec, sizeof e->spec);
    e->pipe = p;
    *out = p;
    return VT_OK;
}

void vt_vk_pipes_destroy(vk_ctx *c) {
    for (int i = 0; i < c->n_pipes; i++) vkDestroyPipeline(c->dev, c->pipes[i].pipe, NULL);
    free(c->pipes);
    c->pipes = NULL;
    c->n_pipes = 0;
    if (c->modules)
        for (int i = 0; i < SH_COUNT; i++)
            if (c->modules[i]) vkDestroyShaderModule(c->dev, c->modules[i], NULL);
    free(c->modules);
    c->modules = NULL;
}

/* ---- helpers ---- */

static vk_arg targ(const vt_tensor *t, int write) {
    vk_arg a = {0};
    if (!t) return a;
    a.alloc = t->buf->handle;
    a.off = t->offset;
    a.size = vt_tensor_nbytes(t);
    a.esize = (uint32_t)vt_dtype_size(t->dtype);
    a.write = write;
    return a;
}

/* 1-D work of n invocations in groups of local, on a 2-D grid within the 65535 limit of x. */
static void grid1(uint64_t n, uint32_t local, uint32_t *gx, uint32_t *gy) {
    uint64_t groups = (n + local - 1) / local;
    if (groups == 0) groups = 1;
    uint64_t x = groups < 65535 ? groups : 65535;
    *gx = (uint32_t)x;
    *gy = (uint32_t)((groups + x - 1) / x);
}

static vt_status disp1(vt_backend *be, vk_rec *rec, int shader, uint32_t local, const uint32_t *ospec, int nspec,
                       const vk_arg *args, int nargs, const uint32_t *pu, int npu, const float *pf, int npf,
                       uint64_t n) {
    uint32_t spec[3 + VK_MAX_SPEC] = {local, 1, 1};
    for (int i = 0; i < nspec; i++) spec[3 + i] = ospec[i];
    uint32_t gx, gy;
    grid1(n, local, &gx, &gy);
    return vt_vk_rec_dispatch(be, rec, shader, spec, nspec, args, nargs, pu, npu, pf, npf, gx, gy, 1);
}

static uint32_t u32(int64_t v) { return (uint32_t)v; }

/* ---- GEMM and convolutions ---- */

typedef struct gemm_job {
    int shader;
    vk_arg a, b, bias, c;
    uint32_t M, N, K;
    uint32_t conv[12]; /* u[4..15] for the convolution modes */
    float alpha, beta, act_alpha;
    uint32_t act, trans_a, trans_b;
} gemm_job;

/* Plain matmuls with 16-byte aligned operands and dims that are multiples of 4 take the vec4 shader. */
static int gemm_vec4_ok(const gemm_job *j) {
    if (j->shader != SH_GEMM_MM) return 0;
    if (j->N % 4 || j->K % 4 || (j->trans_a && j->M % 4)) return 0;
    return (j->a.alloc->off + j->a.off) % 16 == 0 && (j->b.alloc->off + j->b.off) % 16 == 0;
}

static int gemm_smem_variant(int shader) {
    switch (shader) {
    case SH_GEMM_CONV: return SH_GEMM_CONV_S;
    case SH_GEMM_CONV_DX: return SH_GEMM_CONV_DX_S;
    case SH_GEMM_CONV_DW: return SH_GEMM_CONV_DW_S;
    default: return SH_GEMM_MM_S;
    }
}

/* Outputs per invocation (TM x TN) and workgroup (LX x LY) for a GEMM. shrink: fit the tile to few
 * rows or columns. smem: the shared-memory budget of the staged tiles, 16 k deep (BK in gemm.comp). */
static void gemm_geometry(const gemm_job *j, uint32_t TM, uint32_t TN, uint32_t LX, uint32_t LY, int shrink,
                          uint32_t smem, uint32_t *tm, uint32_t *tn, uint32_t *lx, uint32_t *ly) {
    if (shrink && j->M < TM * LY) {
        /* few rows (convolutions with 3 or 16 channels): shrink the row tile instead of idling lanes */
        uint32_t inv = LX * LY;
        TM = j->M < TM ? j->M : TM;
        LY = (j->M + TM - 1) / TM;
        while (inv % LY) LY++;
        LX = inv / LY;
    }
    if (shrink && j->N < TN * LX) {
        /* few columns (weight gradients of small filters): fewer invocations per workgroup */
        while (LX > 1 && (LX / 2) * TN >= j->N) LX /= 2;
    }
    while (smem && LX > 1 && 16u * (LX * TN + LY * TM) * 4u > smem) LX /= 2;
    *tm = TM;
    *tn = TN;
    *lx = LX;
    *ly = LY;
}

static vt_status enc_gemm(vt_backend *be, vk_rec *rec, const gemm_job *j) {
    vk_ctx *c = be->context;
    /* The register-blocked geometry (vec4 shader where it applies) fixes the split of K, whichever
     * shader then runs: the shared-memory tiles sum the same slices in the same order, so both give
     * the same bits. */
    int vec4 = gemm_vec4_ok(j);
    uint32_t TM, TN, LX, LY;
    gemm_geometry(j, vec4 ? 8 : c->gemm_tm, vec4 ? 8 : c->gemm_tn, c->gemm_lx, c->gemm_ly, !vec4, 0, &TM, &TN, &LX,
                  &LY);
    uint32_t gx = (j->N + LX * TN - 1) / (LX * TN), gy = (j->M + LY * TM - 1) / (LY * TM);
    /* Too few invocations for the device and a long K: split K into slices summed by a second pass. */
    uint32_t want = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU ? 2048 : 65536;
    uint32_t have = gx * gy * LX * LY;
    uint32_t slices = 1;
    if ((j->shader == SH_GEMM_MM || j->shader == SH_GEMM_CONV_DW) && have < want && j->K >= 512) {
        slices = (want + have - 1) / have;
        if (slices > j->K / 256) slices = j->K / 256;
        if (slices > 64) slices = 64;
        if (slices < 2) slices = 1;
    }
    uint32_t kchunk = (j->K + slices - 1) / slices;
    if (vec4) kchunk = (kchunk + 3) / 4 * 4;
    slices = (j->K + kchunk - 1) / kchunk;
    /* shared-memory tiles (GPUs) take every shape */
    int tiled = c->gemm_tiled;
    if (tiled) {
        vec4 = 0;
        gemm_geometry(j, c->tile_tm, c->tile_tn, c->tile_lx, c->tile_ly, 1,
                      (uint32_t)c->props.limits.maxComputeSharedMemorySize, &TM, &TN, &LX, &LY);
        gx = (j->N + LX * TN - 1) / (LX * TN);
        gy = (j->M + LY * TM - 1) / (LY * TM);
    }
    uint32_t pu[16] = {j->M, j->N, j->K, kchunk};
    memcpy(&pu[4], j->conv, sizeof j->conv);
    float pf[3] = {j->alpha, j->beta, j->act_alpha};
    uint32_t spec[3 + VK_MAX_SPEC] = {LX, LY, 1};
    uint32_t *split;
    if (vec4) {
        /* C4: C starts on a 16-byte boundary (the split-K scratch always does) */
        uint32_t c4 = (j->c.alloc->off + j->c.off) % 16 == 0;
        uint32_t v[7] = {j->trans_a, j->trans_b, j->act, j->bias.alloc != NULL, j->beta != 0.0f, 0, c4};
        memcpy(&spec[3], v, sizeof v);
        split = &spec[3 + 5];
    } else {
        uint32_t v[9] = {TM,
                         TN,
                         j->trans_a,
                         j->trans_b,
                         j->act,
                         j->bias.alloc != NULL,
                         j->beta != 0.0f,
                         0,
                         /* bit 1: a k loop longer than llvmpipe's 65535 iterations, unrolled by 4 (gemm.comp) */
                         (j->conv[11] != 0xffffffffu) | (!tiled && kchunk > 65535u ? 2u : 0u)};
        memcpy(&spec[3], v, sizeof v);
        split = &spec[3 + 7];
    }
    int shader = vec4 ? SH_GEMM_VEC4 : tiled ? gemm_smem_variant(j->shader) : j->shader;
    vk_arg args[4] = {j->a, j->b, j->bias, j->c};
    args[3].write = 1;
    vk_use_texels(c, &shader, args, 2);
    if (slices == 1) return vt_vk_rec_dispatch(be, rec, shader, spec, 9, args, 4, pu, 16, pf, 3, gx, gy, 1);

    vt_buffer *scratch;
    VkDeviceSize part_bytes = (VkDeviceSize)slices * j->M * j->N * 4;
    VT_TRY(vt_vk_scratch(be, part_bytes, &scratch));
    vk_arg part = {.alloc = scratch->handle, .off = 0, .size = part_bytes, .esize = 4, .write = 1};
    args[2] = (vk_arg){0};
    args[3] = part;
    *split = 1;
    /* the epilogue runs in the reduction */
    split[-1] = 0;
    split[-2] = 0;
    VT_TRY(vt_vk_rec_dispatch(be, rec, shader, spec, 9, args, 4, pu, 16, pf, 3, gx, gy, slices));
    part.write = 0;
    vk_arg rargs[4] = {part, {0}, j->bias, j->c};
    rargs[3].write = 1;
    uint32_t rspec[3] = {j->act, j->bias.alloc != NULL, j->beta != 0.0f};
    uint32_t ru[3] = {j->M, j->N, slices};
    return disp1(be, rec, SH_GEMM_REDUCE, 256, rspec, 3, rargs, 4, ru, 3, pf, 3, (uint64_t)j->M * j->N);
}

static void conv_geom(const vt_tensor *x, const vt_tensor *w, const vt_tensor *y, const vt_conv2d_params *p,
                      uint32_t out[12]) {
    out[0] = u32(x->shape[0]);
    out[1] = u32(x->shape[1]);
    out[2] = u32(x->shape[2]);
    out[3] = u32(x->shape[3]);
    out[4] = u32(w->shape[0]);
    out[5] = u32(w->shape[2]);
    out[6] = u32(w->shape[3]);
    out[7] = u32(y->shape[2]);
    out[8] = u32(y->shape[3]);
    out[9] = (uint32_t)p->stride_h | ((uint32_t)p->stride_w << 16);
    out[10] = (uint32_t)p->pad_h | ((uint32_t)p->pad_w << 16);
    int pow2 = (p->stride_h & (p->stride_h - 1)) == 0 && (p->stride_w & (p->stride_w - 1)) == 0;
    uint32_t lh = 0, lw = 0;
    while ((1 << lh) < p->stride_h) lh++;
    while ((1 << lw) < p->stride_w) lw++;
    out[11] = pow2 ? (lh | (lw << 16)) : 0xffffffffu;
}

/* ---- node encoders ---- */

/* BATCH_PREP binds its dataset in up to four chunks of this many bytes (one descriptor range each). */
static VkDeviceSize prep_chunk(const vk_ctx *c) {
    VkDeviceSize chunk = (c->max_range - 2 * c->align) / 256 * 256;
    return chunk > ((VkDeviceSize)1 << 30) ? (VkDeviceSize)1 << 30 : chunk;
}

/* A u8 dataset (images or masks) in consecutive chunks at BATCH_PREP's bindings 0, 5, 6, 7. */
static void prep_bind(const vt_tensor *t, VkDeviceSize chunk, vk_arg *args) {
    static const int slot[4] = {0, 5, 6, 7};
    VkDeviceSize total = vt_tensor_nbytes(t);
    for (int i = 0; i < 4; i++) {
        VkDeviceSize at = (VkDeviceSize)i * chunk;
        if (at >= total) break;
        args[slot[i]] = targ(t, 0);
        args[slot[i]].off += at;
        args[slot[i]].size = total - at < chunk ? total - at : chunk;
        args[slot[i]].esize = 1;
    }
}

enum { OP_ACT, OP_ACT_BWD, OP_ADD, OP_DROPOUT, OP_DROPOUT_BWD, OP_SGD, OP_ADAM };

static vt_status enc_eltwise(vt_backend *be, vk_rec *rec, uint32_t op, uint32_t kind, const vk_arg *args, int nargs,
                             const uint32_t *pu, const float *pf, int npf, int64_t n) {
    uint32_t spec[2] = {op, kind};
    int vec4 = n % 4 == 0;
    for (int i = 0; i < nargs; i++)
        if (args[i].alloc && (args[i].alloc->off + args[i].off) % 16) vec4 = 0;
    uint64_t inv = vec4 ? (uint64_t)n / 4 : (uint64_t)n;
    uint32_t u[4] = {(uint32_t)inv, pu ? pu[1] : 0, pu ? pu[2] : 0, pu ? pu[3] : 0};
    vk_arg targs[VK_MAX_BIND];
    if (nargs > VK_MAX_BIND) nargs = VK_MAX_BIND;
    memcpy(targs, args, sizeof *args * (size_t)nargs);
    int shader = vec4 ? SH_ELTWISE4 : SH_ELTWISE;
    vk_use_texels(be->context, &shader, targs, nargs);
    return disp1(be, rec, shader, 256, spec, 2, targs, nargs, u, 4, pf, npf, inv);
}

vt_status vt_vk_record_node(vt_backend *be, vk_rec *rec, const vt_node *n) {
    vt_tensor *const *s = n->src;
    vt_tensor *const *d = n->dst;
    switch (n->op) {
    case VT_OP_MATMUL: {
        const vt_matmul_params *p = &n->p.matmul;
        gemm_job j = {.shader = SH_GEMM_MM,
                      .a = targ(s[0], 0),
                      .b = targ(s[1], 0),
                      .bias = targ(s[2], 0),
                      .c = targ(d[0], 1),
                      .alpha = p->alpha,
                      .beta = p->beta,
                      .act_alpha = p->act_alpha,
                      .act = (uint32_t)p->act,
                      .trans_a = p->trans_a != 0,
                      .trans_b = p->trans_b != 0};
        j.M = u32(d[0]->shape[0]);
        j.N = u32(d[0]->shape[1]);
        j.K = u32(p->trans_a ? s[0]->shape[0] : s[0]->shape[1]);
        return enc_gemm(be, rec, &j);
    }
    case VT_OP_CONV2D: {
        const vt_conv2d_params *p = &n->p.conv2d;
        gemm_job j = {.shader = SH_GEMM_CONV,
                      .a = targ(s[1], 0),
                      .b = targ(s[0], 0),
                      .bias = targ(s[2], 0),
                      .c = targ(d[0], 1),
                      .alpha = 1.0f,
                      .act_alpha = p->act_alpha,
                      .act = (uint32_t)p->act};
        j.M = u32(s[1]->shape[0]);
        j.N = u32(d[0]->shape[0] * d[0]->shape[2] * d[0]->shape[3]);
        j.K = u32(s[1]->shape[1] * s[1]->shape[2] * s[1]->shape[3]);
        conv_geom(s[0], s[1], d[0], p, j.conv);
        return enc_gemm(be, rec, &j);
    }
    case VT_OP_CONV2D_BWD_DATA: {
        const vt_conv2d_params *p = &n->p.conv2d;
        gemm_job j = {
            .shader = SH_GEMM_CONV_DX, .a = targ(s[1], 0), .b = targ(s[0], 0), .c = targ(d[0], 1), .alpha = 1.0f};
        j.M = u32(d[0]->shape[1]);
        j.N = u32(d[0]->shape[0] * d[0]->shape[2] * d[0]->shape[3]);
        j.K = u32(s[1]->shape[0] * s[1]->shape[2] * s[1]->shape[3]);
        conv_geom(d[0], s[1], s[0], p, j.conv);
        return enc_gemm(be, rec, &j);
    }
    case VT_OP_CONV2D_TRANSPOSE: {
        /* CONV2D_BWD_DATA's shader with dy = x and w read as a CONV2D weight [C,K,R,S] (C outputs, K inputs):
         * rows = K (the channels of y), so its epilogue adds bias[k] per row, after the same k sum. */
        const vt_conv2d_params *p = &n->p.conv2d;
        gemm_job j = {.shader = SH_GEMM_CONV_DX,
                      .a = targ(s[1], 0),
                      .b = targ(s[0], 0),
                      .bias = targ(s[2], 0),
                      .c = targ(d[0], 1),
                      .alpha = 1.0f};
        j.M = u32(d[0]->shape[1]);
        j.N = u32(d[0]->shape[0] * d[0]->shape[2] * d[0]->shape[3]);
        j.K = u32(s[1]->shape[0] * s[1]->shape[2] * s[1]->shape[3]);
        conv_geom(d[0], s[1], s[0], p, j.conv);
        return enc_gemm(be, rec, &j);
    }
    case VT_OP_CONV2D_BWD_WEIGHT: {
        const vt_conv2d_params *p = &n->p.conv2d;
        gemm_job j = {
            .shader = SH_GEMM_CONV_DW, .a = targ(s[0], 0), .b = targ(s[1], 0), .c = targ(d[0], 1), .alpha = 1.0f};
        j.M = u32(d[0]->shape[0]);
        j.N = u32(d[0]->shape[1] * d[0]->shape[2] * d[0]->shape[3]);
        j.K = u32(s[0]->shape[0] * s[0]->shape[2] * s[0]->shape[3]);
        conv_geom(s[1], d[0], s[0], p, j.conv);
        return enc_gemm(be, rec, &j);
    }
    case VT_OP_BIAS_GRAD: {
        const vt_tensor *dy = s[0];
        int64_t hw = dy->ndim == 4 ? dy->shape[2] * dy->shape[3] : 1;
        vk_arg args[3] = {targ(dy, 0), {0}, targ(d[0], 1)};
        uint32_t u[3] = {u32(dy->shape[0]), u32(dy->shape[1]), u32(hw)};
        if (hw == 1) {
            uint32_t rows = 1;
            return disp1(be, rec, SH_BIAS_GRAD, 64, &rows, 1, args, 3, u, 3, NULL, 0, (uint64_t)dy->shape[1]);
        }
        uint32_t spec[3 + VK_MAX_SPEC] = {64, 1, 1, 0};
        uint32_t gx, gy;
        grid1((uint64_t)dy->shape[1], 1, &gx, &gy);
        vk_ctx *c = be->context;
        return vt_vk_rec_dispatch(be, rec, c->subgroup ? SH_BIAS_GRAD_SG : SH_BIAS_GRAD, spec, 1, args, 3, u, 3, NULL,
                                  0, gx, gy, 1);
    }
    case VT_OP_POOL2D:
    case VT_OP_POOL2D_BWD: {
        const vt_pool2d_params *p = &n->p.pool2d;
        int bwd = n->op == VT_OP_POOL2D_BWD;
        const vt_tensor *x = bwd ? s[1] : s[0], *y = bwd ? s[0] : d[0];
        int tiled = bwd && p->stride_h == p->kh && p->stride_w == p->kw && p->pad_h == 0 && p->pad_w == 0 &&
                    x->shape[2] % p->kh == 0 && x->shape[3] % p->kw == 0;
        uint32_t spec[3 + VK_MAX_SPEC] = {16, 4, 1, (uint32_t)bwd, p->kind == VT_POOL_AVG, (uint32_t)tiled};
        vk_arg args[3] = {targ(s[0], 0), targ(bwd ? s[1] : NULL, 0), targ(d[0], 1)};
        uint32_t u[12] = {u32(x->shape[0] * x->shape[1]),
                          u32(x->shape[2]),
                          u32(x->shape[3]),
                          u32(y->shape[2]),
                          u32(y->shape[3]),
                          (uint32_t)p->kh,
                          (uint32_t)p->kw,
                          (uint32_t)p->stride_h,
                          (uint32_t)p->stride_w,
                          (uint32_t)p->pad_h,
                          (uint32_t)p->pad_w,
                          0};
        /* grid: x = column, y = row (of the output, or of dx for the gathering backward), z = n*C + c,
         * split into several dispatches where n*C exceeds the device's z group count */
        const vt_tensor *g = (bwd && !tiled) ? x : y;
        uint32_t gx = (u32(g->shape[3]) + 15) / 16, gy = (u32(g->shape[2]) + 3) / 4;
        vk_ctx *c = be->context;
        uint32_t zmax = c->props.limits.maxComputeWorkGroupCount[2];
        for (uint32_t base = 0; base < u[0]; base += zmax) {
            u[11] = base;
            uint32_t gz = u[0] - base < zmax ? u[0] - base : zmax;
            VT_TRY(vt_vk_rec_dispatch(be, rec, SH_POOL, spec, 3, args, 3, u, 12, NULL, 0, gx, gy, gz));
        }
        return VT_OK;
    }
    case VT_OP_BATCHNORM:
    case VT_OP_BATCHNORM_BWD: {
        const vt_batchnorm_params *p = &n->p.bn;
        int bwd = n->op == VT_OP_BATCHNORM_BWD;
        const vt_tensor *x = bwd ? s[1] : s[0];
        int64_t hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
        uint32_t spec[3 + VK_MAX_SPEC] = {64, 1, 1, (uint32_t)bwd, p->training != 0};
        vk_arg args[8];
        if (!bwd) {
            /* running statistics are updated in place when training */
            int rw = p->training != 0;
            vk_arg f[8] = {targ(s[0], 0),  targ(s[1], 0), targ(s[2], 0), targ(s[3], rw),
                           targ(s[4], rw), targ(d[0], 1), targ(d[1], 1), targ(d[2], 1)};
            memcpy(args, f, sizeof f);
        } else {
            vk_arg b[8] = {targ(s[0], 0), targ(s[1], 0), targ(s[2], 0), targ(s[3], 0),
                           targ(s[4], 0), targ(d[0], 1), targ(d[1], 1), targ(d[2], 1)};
            memcpy(args, b, sizeof b);
        }
        uint32_t u[4] = {u32(x->shape[0]), u32(x->shape[1]), u32(hw), d[1] && d[2]};
        float f[2] = {p->momentum, p->eps};
        uint32_t gx, gy;
        grid1((uint64_t)x->shape[1], 1, &gx, &gy);
        vk_ctx *c = be->context;
        return vt_vk_rec_dispatch(be, rec, c->subgroup ? SH_BATCHNORM_SG : SH_BATCHNORM, spec, 2, args, 8, u, 4, f, 2,
                                  gx, gy, 1);
    }
    case VT_OP_BN_STATS:
    case VT_OP_BN_APPLY:
    case VT_OP_BN_BWD_STATS:
    case VT_OP_BN_BWD_APPLY: {
        /* batchnorm.comp cut at its sums (constant SPLIT: 1 the sums, 2 from the sums), bindings as there */
        const vt_batchnorm_params *p = &n->p.bn;
        int bwd = n->op == VT_OP_BN_BWD_STATS || n->op == VT_OP_BN_BWD_APPLY;
        int split = n->op == VT_OP_BN_STATS || n->op == VT_OP_BN_BWD_STATS ? 1 : 2;
        const vt_tensor *x = bwd ? s[1] : s[0];
        int64_t hw = x->ndim == 4 ? x->shape[2] * x->shape[3] : 1;
        uint32_t spec[3 + VK_MAX_SPEC] = {64, 1, 1, (uint32_t)bwd, 1, (uint32_t)split};
        vk_arg args[8] = {{0}};
        uint32_t opt = 0;
        switch (n->op) {
        case VT_OP_BN_STATS:
            args[0] = targ(s[0], 0);
            args[6] = targ(d[0], 1);
            break;
        case VT_OP_BN_APPLY:
            /* the running statistics are updated in place when present */
            for (int i = 0; i < 3; i++) args[i] = targ(s[i], 0);
            args[3] = targ(d[1], 1);
            args[4] = targ(d[2], 1);
            args[5] = targ(d[0], 1);
            args[6] = targ(s[3], 0);
            opt = d[1] && d[2];
            break;
        case VT_OP_BN_BWD_STATS:
            args[0] = targ(s[0], 0);
            args[1] = targ(s[1], 0);
            args[3] = targ(s[2], 0);
            args[5] = targ(d[2], 1);
            args[6] = targ(d[0], 1);
            args[7] = targ(d[1], 1);
            opt = (d[0] ? 1u : 0u) | (d[1] ? 2u : 0u);
            break;
        default:
            for (int i = 0; i < 5; i++) args[i] = targ(s[i], 0);
            args[5] = targ(d[0], 1);
            break;
        }
        uint32_t u[4] = {u32(x->shape[0]), u32(x->shape[1]), u32(hw), opt};
        float f[3] = {p->momentum, p->eps, (float)p->count};
        uint32_t gx, gy;
        grid1((uint64_t)x->shape[1], 1, &gx, &gy);
        vk_ctx *c = be->context;
        return vt_vk_rec_dispatch(be, rec, c->subgroup ? SH_BATCHNORM_SG : SH_BATCHNORM, spec, 3, args, 8, u, 4, f, 3,
                                  gx, gy, 1);
    }
    case VT_OP_ACT:
    case VT_OP_ACT_BWD: {
        vk_arg args[3] = {targ(s[0], 0), targ(n->op == VT_OP_ACT_BWD ? s[1] : NULL, 0), targ(d[0], 1)};
        float f[1] = {n->p.act.alpha};
        return enc_eltwise(be, rec, n->op == VT_OP_ACT ? OP_ACT : OP_ACT_BWD, (uint32_t)n->p.act.kind, args, 3, NULL, f,
                           1, vt_tensor_nelem(d[0]));
    }
    case VT_OP_ADD: {
        vk_arg args[3] = {targ(s[0], 0), targ(s[1], 0), targ(d[0], 1)};
        return enc_eltwise(be, rec, OP_ADD, 0, args, 3, NULL, NULL, 0, vt_tensor_nelem(d[0]));
    }
    case VT_OP_DROPOUT:
    case VT_OP_DROPOUT_BWD: {
        vk_arg args[3] = {targ(s[0], 0), {0}, targ(d[0], 1)};
        uint32_t u[4] = {0, n->p.dropout.salt, 0, 0};
        float f[1] = {n->p.dropout.p};
        return enc_eltwise(be, rec, n->op == VT_OP_DROPOUT ? OP_DROPOUT : OP_DROPOUT_BWD, 0, args, 3, u, f, 1,
                           vt_tensor_nelem(d[0]));
    }
    case VT_OP_SGD: {
        const vt_sgd_params *p = &n->p.sgd;
        int mom = p->momentum != 0.0f;
        vk_arg args[4] = {targ(s[0], 0), {0}, targ(d[0], 1), targ(mom ? d[1] : NULL, 1)};
        uint32_t u[4] = {0, 0, (uint32_t)mom | (p->nesterov ? 2u : 0u), 0};
        float f[3] = {p->lr_mult, p->momentum, p->weight_decay};
        return enc_eltwise(be, rec, OP_SGD, 0, args, 4, u, f, 3, vt_tensor_nelem(d[0]));
    }
    case VT_OP_ADAM: {
        /* the fixed scalars as push constants; S, Q and D per step from the step context's slot */
        const vt_adam_params *p = &n->p.adam;
        vt_adam_consts k = vt_adam_consts_of(p, 0.0f, 1);
        vk_arg args[5] = {targ(s[0], 0), {0}, targ(d[0], 1), targ(d[1], 1), targ(d[2], 1)};
        uint32_t u[4] = {0, 0, p->decoupled ? 4u : 0u, rec->n_adam++};
        float f[7] = {p->lr_mult, 0.0f, k.b2, k.eps, k.wd, k.c1, k.c2};
        return enc_eltwise(be, rec, OP_ADAM, 0, args, 5, u, f, 7, vt_tensor_nelem(d[0]));
    }
    case VT_OP_SOFTMAX_CE:
    case VT_OP_SOFTMAX_CE_BWD: {
        /* softmax_ce.comp's MODE: 0 the loss of [N,K] in one workgroup, 1 the backward, 2 and 3 the loss of
         * [N,K,H,W] through per-workgroup partial sums (too many rows for one workgroup's loops) */
        int bwd = n->op == VT_OP_SOFTMAX_CE_BWD;
        const vt_tensor *x = s[0];
        uint64_t S = x->ndim == 4 ? (uint64_t)(x->shape[2] * x->shape[3]) : 1;
        uint64_t rows = (uint64_t)x->shape[0] * S;
        vk_arg args[5] = {targ(s[0], 0), targ(s[1], 0), targ(d[0], 1), targ(bwd ? NULL : d[1], 1), {0}};
        uint32_t u[6] = {(uint32_t)rows, u32(x->shape[1]), !bwd && d[1], (uint32_t)S, n->p.ce.ignore != 0, 0};
        float f[2] = {n->p.ce.label_smoothing, n->p.ce.scale};
        if (bwd) {
            uint32_t mode = 1;
            return disp1(be, rec, SH_SOFTMAX_CE, 64, &mode, 1, args, 4, u, 5, f, 2, rows);
        }
        if (x->ndim == 2) {
            uint32_t spec[3 + VK_MAX_SPEC] = {64, 1, 1, 0};
            return vt_vk_rec_dispatch(be, rec, SH_SOFTMAX_CE, spec, 1, args, 4, u, 5, f, 2, 1, 1, 1);
        }
        uint64_t groups = (rows + 63) / 64;
        vt_buffer *scratch;
        VkDeviceSize part_bytes = (VkDeviceSize)groups * 3 * 4;
        VT_TRY(vt_vk_scratch(be, part_bytes, &scratch));
        vk_arg part = {.alloc = scratch->handle, .off = 0, .size = part_bytes, .esize = 4, .write = 1};
        vk_arg p1[3] = {args[0], args[1], part};
        uint32_t mode = 2;
        VT_TRY(disp1(be, rec, SH_SOFTMAX_CE, 64, &mode, 1, p1, 3, u, 5, f, 2, rows));
        part.write = 0;
        args[4] = part;
        u[5] = (uint32_t)groups;
        uint32_t spec[3 + VK_MAX_SPEC] = {64, 1, 1, 3};
        return vt_vk_rec_dispatch(be, rec, SH_SOFTMAX_CE, spec, 1, args, 5, u, 6, f, 2, 1, 1, 1);
    }
    case VT_OP_ARGMAX: {
        const vt_tensor *x = s[0];
        uint64_t S = x->ndim == 4 ? (uint64_t)(x->shape[2] * x->shape[3]) : 1;
        uint64_t rows = (uint64_t)x->shape[0] * S;
        vk_arg args[3] = {targ(x, 0), {0}, targ(d[0], 1)};
        uint32_t u[3] = {(uint32_t)rows, u32(x->shape[1]), (uint32_t)S};
        return disp1(be, rec, SH_ARGMAX, 64, NULL, 0, args, 3, u, 3, NULL, 0, rows);
    }
    case VT_OP_CONFUSION: {
        /* counts accumulate: the read-modify-write counts as a write for the barriers */
        uint64_t m = (uint64_t)vt_tensor_nelem(s[0]);
        vk_arg args[3] = {targ(s[0], 0), targ(s[1], 0), targ(d[0], 1)};
        uint32_t u[2] = {(uint32_t)m, u32(d[0]->shape[0] - 1)};
        return disp1(be, rec, SH_CONFUSION, 64, NULL, 0, args, 3, u, 2, NULL, 0, m);
    }
    case VT_OP_UPSAMPLE:
    case VT_OP_UPSAMPLE_BWD: {
        int bwd = n->op == VT_OP_UPSAMPLE_BWD;
        const vt_tensor *x = bwd ? d[0] : s[0], *y = bwd ? s[0] : d[0];
        uint32_t spec[2] = {(uint32_t)bwd, n->p.upsample.mode == VT_UPSAMPLE_BILINEAR};
        vk_arg args[3] = {targ(s[0], 0), {0}, targ(d[0], 1)};
        uint32_t u[5] = {u32(x->shape[0] * x->shape[1]), u32(x->shape[2]), u32(x->shape[3]), u32(y->shape[2]),
                         u32(y->shape[3])};
        return disp1(be, rec, SH_UPSAMPLE, 64, spec, 2, args, 3, u, 5, NULL, 0, (uint64_t)vt_tensor_nelem(d[0]));
    }
    case VT_OP_BATCH_PREP: {
        vk_ctx *c = be->context;
        const vt_batch_prep_params *p = &n->p.prep;
        const vt_tensor *img = s[0], *x = d[0];
        int masks = s[1]->dtype == VT_U8;
        VkDeviceSize chunk = prep_chunk(c);
        vk_arg args[8] = {{0}};
        prep_bind(img, chunk, args);
        args[1] = masks ? (vk_arg){0} : targ(s[1], 0);
        args[2] = targ(s[2], 0);
        args[3] = targ(x, 1);
        args[4] = masks ? (vk_arg){0} : targ(d[1], 1);
        uint32_t u[13] = {u32(x->shape[0]),
                          u32(x->shape[1]),
                          u32(x->shape[2]),
                          u32(x->shape[3]),
                          (uint32_t)p->pad,
                          (uint32_t)p->flip,
                          p->salt,
                          u32(img->shape[0]),
                          (uint32_t)chunk,
                          u32(img->shape[2]),
                          u32(img->shape[3]),
                          (uint32_t)(p->center != 0),
                          (uint32_t)masks};
        float f[8];
        for (int i = 0; i < 4; i++) {
            f[i] = p->mean[i];
            f[4 + i] = p->std[i] > 0.0f ? p->std[i] : 1.0f;
        }
        VT_TRY(disp1(be, rec, SH_BATCH_PREP, 64, NULL, 0, args, 8, u, 13, f, 8,
                     (uint64_t)(x->shape[0] * x->shape[1] * x->shape[2])));
        if (!masks) return VT_OK;
        /* the masks [D,H,W] in the images' bindings (as large, so chunked the same way), y [B,Ho,Wo] */
        vk_arg margs[8] = {{0}};
        prep_bind(s[1], chunk, margs);
        margs[2] = targ(s[2], 0);
        margs[4] = targ(d[1], 1);
        uint32_t labels = 1;
        return disp1(be, rec, SH_BATCH_PREP, 64, &labels, 1, margs, 8, u, 13, f, 8,
                     (uint64_t)(x->shape[0] * x->shape[2]));
    }
    case VT_OP_FILL: {
        const vt_tensor *t = d[0];
        float v = n->p.fill.value;
        uint32_t pattern = 0;
        switch (t->dtype) {
        case VT_F32: memcpy(&pattern, &v, 4); break;
        case VT_I32: {
            int32_t iv = (int32_t)v;
            memcpy(&pattern, &iv, 4);
            break;
        }
        case VT_U32: pattern = (uint32_t)v; break;
        case VT_U8: pattern = 0x01010101u * (uint8_t)v; break;
        default: return vt_error(VT_ERR_DTYPE, "vulkan: fill: dtype %s", vt_dtype_name(t->dtype));
        }
        vk_arg args[3] = {{0}, {0}, targ(t, 1)};
        args[2].esize = 1;
        uint32_t u[2] = {u32((int64_t)vt_tensor_nbytes(t)), pattern};
        return disp1(be, rec, SH_FILL, 64, NULL, 0, args, 3, u, 2, NULL, 0, vt_tensor_nbytes(t) / 4 + 2);
    }
    case VT_OP_NONFINITE: {
        vk_arg args[3] = {targ(s[0], 0), {0}, targ(d[0], 1)};
        uint64_t e = (uint64_t)vt_tensor_nelem(s[0]);
        uint32_t u[1] = {(uint32_t)e};
        return disp1(be, rec, SH_NONFINITE, 64, NULL, 0, args, 3, u, 1, NULL, 0, (e + 15) / 16);
    }
    default: return vt_error(VT_ERR_UNSUPPORTED, "vulkan: op %s (%s) has no encoder", vt_op_name(n->op), n->label);
    }
}

/* The ops with an encoder above, by op: every op of vt/ops.h is listed, so a new op fails the
 * assertion until it is given a row here (and an encoder where it is 1). */
static const unsigned char vk_ops_table[] = {
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
_Static_assert(sizeof vk_ops_table / sizeof vk_ops_table[0] == VT_OP_COUNT, "vulkan: one row per op of vt/ops.h");

/* The table, then the limits of binding an operand: this backend's buffers, 4-byte aligned (u8 excepted),
 * within one descriptor range (the images and masks of BATCH_PREP: four), fewer than 2^31 elements. */
bool vt_vk_supports_node(vt_backend *be, const vt_node *n) {
    vk_ctx *c = be->context;
    if ((unsigned)n->op >= VT_OP_COUNT || !vk_ops_table[n->op]) return false;
    for (int i = 0; i < VT_MAX_SRC; i++) {
        const vt_tensor *t = n->src[i];
        if (!t) continue;
        if (!t->buf || t->buf->backend != be) return false;
        if (t->offset % 4 && t->dtype != VT_U8) return false;
        /* the dataset of BATCH_PREP is bound in four chunks; everything else in one range */
        VkDeviceSize lim =
            (n->op == VT_OP_BATCH_PREP && t->dtype == VT_U8) ? 4 * prep_chunk(c) : c->max_range - c->align;
        if (vt_tensor_nbytes(t) > lim) return false;
        if (vt_tensor_nelem(t) >= ((int64_t)1 << 31)) return false;
    }
    for (int i = 0; i < VT_MAX_DST; i++) {
        const vt_tensor *t = n->dst[i];
        if (!t) continue;
        if (!t->buf || t->buf->backend != be) return false;
        if (t->offset % 4 && !(n->op == VT_OP_FILL && t->dtype == VT_U8)) return false;
        if (vt_tensor_nbytes(t) > c->max_range - c->align) return false;
    }
    if (n->op == VT_OP_FILL && n->dst[0] && n->dst[0]->dtype != VT_F32 && n->dst[0]->dtype != VT_I32 &&
        n->dst[0]->dtype != VT_U32 && n->dst[0]->dtype != VT_U8)
        return false;
    if (n->op == VT_OP_CONV2D || n->op == VT_OP_CONV2D_BWD_DATA || n->op == VT_OP_CONV2D_BWD_WEIGHT ||
        n->op == VT_OP_CONV2D_TRANSPOSE) {
        const vt_conv2d_params *p = &n->p.conv2d;
        if (p->stride_h > 0xffff || p->stride_w > 0xffff || p->pad_h > 0xffff || p->pad_w > 0xffff) return false;
    }
    return true;
}
