/* CPU backend: registration, device description, buffers and dispatch. The ops live in cpu_*.c;
 * the reference mode runs only plain single-threaded loops, the fast mode uses OpenBLAS and OpenMP. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_internal.h"
#include "vt/registry.h"

/* What the CPU runs: one function per op, looked up by dispatch and by supports_node alike, so the
 * two can never disagree. Sized by its entries: an op appended to vt/op_list.h without one here
 * fails the assertion below. */
static const vt_cpu_op_fn cpu_ops[] = {
    [VT_OP_MATMUL] = vt_cpu_matmul,
    [VT_OP_BIAS_GRAD] = vt_cpu_bias_grad,
    [VT_OP_CONV2D] = vt_cpu_conv2d,
    [VT_OP_CONV2D_BWD_DATA] = vt_cpu_conv2d_bwd_data,
    [VT_OP_CONV2D_BWD_WEIGHT] = vt_cpu_conv2d_bwd_weight,
    [VT_OP_POOL2D] = vt_cpu_pool2d,
    [VT_OP_POOL2D_BWD] = vt_cpu_pool2d_bwd,
    [VT_OP_BATCHNORM] = vt_cpu_batchnorm,
    [VT_OP_BATCHNORM_BWD] = vt_cpu_batchnorm_bwd,
    [VT_OP_ACT] = vt_cpu_act_fwd,
    [VT_OP_ACT_BWD] = vt_cpu_act_bwd,
    [VT_OP_DROPOUT] = vt_cpu_dropout,
    [VT_OP_DROPOUT_BWD] = vt_cpu_dropout,
    [VT_OP_ADD] = vt_cpu_add,
    [VT_OP_SOFTMAX_CE] = vt_cpu_softmax_ce,
    [VT_OP_SOFTMAX_CE_BWD] = vt_cpu_softmax_ce_bwd,
    [VT_OP_ARGMAX] = vt_cpu_argmax,
    [VT_OP_UPSAMPLE] = vt_cpu_upsample,
    [VT_OP_UPSAMPLE_BWD] = vt_cpu_upsample_bwd,
    [VT_OP_BATCH_PREP] = vt_cpu_batch_prep,
    [VT_OP_SGD] = vt_cpu_sgd,
    [VT_OP_ADAM] = vt_cpu_adam,
    [VT_OP_FILL] = vt_cpu_fill,
    [VT_OP_NONFINITE] = vt_cpu_nonfinite,
    [VT_OP_BN_STATS] = vt_cpu_bn_stats,
    [VT_OP_BN_APPLY] = vt_cpu_bn_apply,
    [VT_OP_BN_BWD_STATS] = vt_cpu_bn_bwd_stats,
    [VT_OP_BN_BWD_APPLY] = vt_cpu_bn_bwd_apply,
    [VT_OP_CONV2D_TRANSPOSE] = vt_cpu_conv2d_transpose,
    [VT_OP_CONFUSION] = vt_cpu_confusion,
};
_Static_assert(sizeof cpu_ops / sizeof cpu_ops[0] == VT_OP_COUNT, "an entry for every op of vt/op_list.h");

vt_status vt_cpu_scratch(vt_cpu_ctx *c, size_t bytes, float **out) {
    if (bytes > c->scratch_bytes) {
        size_t size = (bytes + 4095) & ~(size_t)4095;
        float *p = aligned_alloc(64, size);
        if (!p) return vt_error(VT_ERR_OOM, "cpu: cannot allocate %zu bytes of scratch memory", bytes);
        free(c->scratch);
        c->scratch = p;
        c->scratch_bytes = size;
    }
    *out = c->scratch;
    return VT_OK;
}

static void cpu_free(vt_backend *be) {
    vt_cpu_ctx *c = be->context;
    if (c) free(c->scratch);
    free(c);
    free(be);
}

static vt_status cpu_buffer_alloc(vt_backend *be, vt_buffer *buf) {
    (void)be;
    size_t size = (buf->size + 63) & ~(size_t)63;
    buf->host = aligned_alloc(64, size ? size : 64);
    if (!buf->host) return vt_error(VT_ERR_OOM, "cpu: cannot allocate %zu bytes of host memory", buf->size);
    memset(buf->host, 0, size);
    return VT_OK;
}

static void cpu_buffer_free(vt_backend *be, vt_buffer *buf) {
    (void)be;
    free(buf->host);
    buf->host = NULL;
}

static vt_status cpu_buffer_write(vt_backend *be, vt_buffer *buf, size_t off, const void *data, size_t size) {
    (void)be;
    if (off > buf->size || size > buf->size - off)
        return vt_error(VT_ERR_INVALID_ARG, "cpu: write of %zu bytes at %zu past buffer of %zu", size, off, buf->size);
    memcpy((char *)buf->host + off, data, size);
    return VT_OK;
}

static vt_status cpu_buffer_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    (void)be;
    if (off > buf->size || size > buf->size - off)
        return vt_error(VT_ERR_INVALID_ARG, "cpu: read of %zu bytes at %zu past buffer of %zu", size, off, buf->size);
    memcpy(data, (const char *)buf->host + off, size);
    return VT_OK;
}

static bool cpu_dtype_ok(vt_dtype t) { return t == VT_F32 || t == VT_I32 || t == VT_U32 || t == VT_U8; }

/* A lookup in cpu_ops: every op there is implemented for every dtype combination vt_node_validate
 * accepts; the only dtypes refused are the reserved half-precision ones. */
static bool cpu_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    if ((int)n->op <= (int)VT_OP_NONE || (int)n->op >= (int)VT_OP_COUNT || !cpu_ops[n->op]) return false;
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (n->src[i] && !cpu_dtype_ok(n->src[i]->dtype)) return false;
    for (int i = 0; i < VT_MAX_DST; i++)
        if (n->dst[i] && !cpu_dtype_ok(n->dst[i]->dtype)) return false;
    return true;
}

static vt_status cpu_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    if ((int)n->op <= (int)VT_OP_NONE || (int)n->op >= (int)VT_OP_COUNT || !cpu_ops[n->op])
        return vt_error(VT_ERR_UNSUPPORTED, "cpu: op %d (%s) not implemented", (int)n->op, n->label);
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (n->src[i] && (!n->src[i]->buf || !n->src[i]->buf->host))
            return vt_error(VT_ERR_INVALID_ARG, "cpu: %s %s: src%d (%s) has no host memory", vt_op_name(n->op),
                            n->label, i, n->src[i]->name);
    for (int i = 0; i < VT_MAX_DST; i++)
        if (n->dst[i] && (!n->dst[i]->buf || !n->dst[i]->buf->host))
            return vt_error(VT_ERR_INVALID_ARG, "cpu: %s %s: dst%d (%s) has no host memory", vt_op_name(n->op),
                            n->label, i, n->dst[i]->name);
    static const vt_step_ctx zero_ctx = {0};
    be->counters.dispatches++;
    return cpu_ops[n->op](be->context, n, ctx ? ctx : &zero_ctx);
}

static vt_status cpu_sync(vt_backend *be) {
    (void)be;
    return VT_OK;
}

static const vt_backend_i cpu_iface = {
    .free = cpu_free,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_write = cpu_buffer_write,
    .buffer_read = cpu_buffer_read,
    .supports_node = cpu_supports,
    .compute_node = cpu_compute,
    .graph_compute = vt_cpu_graph_compute,
    .synchronize = cpu_sync,
};

static int cpu_device_count(void) { return 1; }

/* Value of a "key : value" line of /proc/cpuinfo; false when absent (other kernels, containers). */
static bool cpuinfo_field(const char *key, char *out, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    size_t klen = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, n, "%s", v);
        size_t len = strlen(out);
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' ')) out[--len] = 0;
        found = len > 0;
    }
    fclose(f);
    return found;
}

static vt_status cpu_device_info(int index, vt_device_info *out) {
    if (index != 0) return vt_error(VT_ERR_NOT_FOUND, "cpu: device %d does not exist (only device 0)", index);
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "cpu");
    if (!cpuinfo_field("model name", out->name, sizeof out->name)) snprintf(out->name, sizeof out->name, "host CPU");
    if (!cpuinfo_field("vendor_id", out->vendor, sizeof out->vendor)) snprintf(out->vendor, sizeof out->vendor, "host");
    snprintf(out->type, sizeof out->type, "cpu");
    /* OpenBLAS's configuration string starts with "OpenBLAS <version>". */
    snprintf(out->driver, sizeof out->driver, "%s", openblas_get_config());
    size_t dl = strlen(out->driver);
    while (dl > 0 && out->driver[dl - 1] == ' ') out->driver[--dl] = 0;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) out->memory_bytes = (uint64_t)pages * (uint64_t)page;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    out->compute_units = cores > 0 ? (int)cores : 1;
    return VT_OK;
}

static vt_status cpu_init(int index, const vt_backend_opts *opts, vt_backend **out) {
    *out = NULL;
    vt_backend *be = calloc(1, sizeof *be);
    vt_cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return vt_error(VT_ERR_OOM, "cpu: out of memory");
    }
    be->iface = &cpu_iface;
    be->context = c;
    if (opts) be->opts = *opts;
    vt_status s = cpu_device_info(index, &be->info);
    if (s != VT_OK) {
        cpu_free(be);
        return s;
    }
    /* Kernel-path options (docs/backend-cpu.md), parsed in reference mode too so that an unknown key
     * fails the same everywhere: direct_conv, fuse and avx512 switch off a fast path the CPU has. */
    static const char *const known[] = {"direct_conv", "fuse", "avx512", NULL};
    vt_options o;
    int direct_conv = 1, fuse = 1, avx512 = 1;
    s = vt_options_parse("cpu", opts, known, &o);
    if (s == VT_OK) s = vt_options_bool(&o, "cpu", "direct_conv", 1, &direct_conv);
    if (s == VT_OK) s = vt_options_bool(&o, "cpu", "fuse", 1, &fuse);
    if (s == VT_OK) s = vt_options_bool(&o, "cpu", "avx512", 1, &avx512);
    if (s != VT_OK) {
        cpu_free(be);
        return s;
    }
    c->reference = be->opts.reference != 0;
    if (c->reference) {
        c->threads = 1;
        char name[sizeof be->info.name];
        snprintf(name, sizeof name, "%s", be->info.name);
        snprintf(be->info.name, sizeof be->info.name, "host CPU (reference): %.100s", name);
        snprintf(be->info.driver, sizeof be->info.driver, "reference");
    } else {
#ifdef _OPENMP
        c->threads = be->opts.threads > 0 ? be->opts.threads : omp_get_max_threads();
#else
        c->threads = 1;
#endif
        if (c->threads < 1) c->threads = 1;
        /* One pool of threads, not two: OpenMP splits the work and every OpenBLAS call runs on the
         * thread that makes it. OpenBLAS's own workers spin after each call and would steal the
         * cores from the OpenMP team that runs next (the setting is process-wide). */
        openblas_set_num_threads(1);
        c->direct_conv = vt_cpu_avx2_available() && direct_conv;
        c->fuse_sgd = vt_cpu_avx2_available() && fuse;
        c->avx512 = vt_cpu_avx512_available() && avx512;
        snprintf(be->info.config, sizeof be->info.config, "%s%s; %s",
                 c->direct_conv ? "convs of 16/32 channels: direct " : "convs: im2col + GEMM",
                 c->direct_conv ? (c->avx512 ? "AVX-512" : "AVX2") : "",
                 c->fuse_sgd ? "SGD fused into weight-gradient GEMMs" : "SGD not fused");
    }
    *out = be;
    return VT_OK;
}

const vt_backend_reg *vt_backend_reg_cpu(void) {
    static const vt_backend_reg reg = {"cpu", cpu_device_count, cpu_device_info, cpu_init};
    return &reg;
}
