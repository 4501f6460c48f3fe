/* OpenCL backend: device enumeration across all platforms, buffers, program building and caching
 * (in memory, optionally on disk), kernel launch helpers and the registry entry. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_internal.h"
#include "vt/registry.h"

extern const char vt_ocl_src_act_formulas[];
extern const char vt_ocl_src_common[];
extern const char vt_ocl_src_elementwise[];
extern const char vt_ocl_src_conv[];
extern const char vt_ocl_src_pool[];
extern const char vt_ocl_src_reduce[];
extern const char vt_ocl_src_softmax[];
extern const char vt_ocl_src_data[];

static const struct {
    const char *file;
    const char *src;
} vt_ocl_programs[VT_OCL_PROG_COUNT] = {
    [VT_OCL_PROG_ELEMENTWISE] = {"elementwise.cl", vt_ocl_src_elementwise},
    [VT_OCL_PROG_CONV] = {"conv.cl", vt_ocl_src_conv},
    [VT_OCL_PROG_POOL] = {"pool.cl", vt_ocl_src_pool},
    [VT_OCL_PROG_REDUCE] = {"reduce.cl", vt_ocl_src_reduce},
    [VT_OCL_PROG_SOFTMAX] = {"softmax.cl", vt_ocl_src_softmax},
    [VT_OCL_PROG_DATA] = {"data.cl", vt_ocl_src_data},
};

static const struct {
    vt_ocl_prog prog;
    const char *name;
} vt_ocl_kernel_table[VT_OCL_K_COUNT] = {
    [VT_OCL_K_ACT_FWD] = {VT_OCL_PROG_ELEMENTWISE, "vt_act_fwd"},
    [VT_OCL_K_ACT_BWD] = {VT_OCL_PROG_ELEMENTWISE, "vt_act_bwd"},
    [VT_OCL_K_ADD] = {VT_OCL_PROG_ELEMENTWISE, "vt_add"},
    [VT_OCL_K_DROPOUT] = {VT_OCL_PROG_ELEMENTWISE, "vt_dropout"},
    [VT_OCL_K_BIAS_ACT] = {VT_OCL_PROG_ELEMENTWISE, "vt_bias_act"},
    [VT_OCL_K_GEMM_NT4] = {VT_OCL_PROG_ELEMENTWISE, "vt_gemm_nt4"},
    [VT_OCL_K_SGD] = {VT_OCL_PROG_ELEMENTWISE, "vt_sgd"},
    [VT_OCL_K_ADAM] = {VT_OCL_PROG_ELEMENTWISE, "vt_adam"},
    [VT_OCL_K_NONFINITE] = {VT_OCL_PROG_ELEMENTWISE, "vt_nonfinite"},
    [VT_OCL_K_IM2COL] = {VT_OCL_PROG_CONV, "vt_im2col"},
    [VT_OCL_K_COL2IM] = {VT_OCL_PROG_CONV, "vt_col2im"},
    [VT_OCL_K_CONV_SCATTER] = {VT_OCL_PROG_CONV, "vt_conv_scatter"},
    [VT_OCL_K_CONV_GATHER] = {VT_OCL_PROG_CONV, "vt_conv_gather"},
    [VT_OCL_K_CONV_FLIP] = {VT_OCL_PROG_CONV, "vt_conv_flip"},
    [VT_OCL_K_CONV_ROWS16] = {VT_OCL_PROG_CONV, "vt_conv_rows16"},
    [VT_OCL_K_CONV_DW16] = {VT_OCL_PROG_CONV, "vt_conv_dw16"},
    [VT_OCL_K_CONV_PAD] = {VT_OCL_PROG_CONV, "vt_conv_pad"},
    [VT_OCL_K_CONV_DIRECT16] = {VT_OCL_PROG_CONV, "vt_conv_direct16"},
    [VT_OCL_K_CONV_DW_DIRECT] = {VT_OCL_PROG_CONV, "vt_conv_dw_direct"},
    [VT_OCL_K_POOL_FWD] = {VT_OCL_PROG_POOL, "vt_pool_fwd"},
    [VT_OCL_K_POOL_BWD] = {VT_OCL_PROG_POOL, "vt_pool_bwd"},
    [VT_OCL_K_POOL_BWD_DISJOINT] = {VT_OCL_PROG_POOL, "vt_pool_bwd_disjoint"},
    [VT_OCL_K_POOL_ARGMAX] = {VT_OCL_PROG_POOL, "vt_pool_argmax_rows"},
    [VT_OCL_K_POOL_BWD_IDX] = {VT_OCL_PROG_POOL, "vt_pool_bwd_idx"},
    [VT_OCL_K_BIAS_GRAD] = {VT_OCL_PROG_REDUCE, "vt_bias_grad"},
    [VT_OCL_K_BIAS_GRAD_ROWS] = {VT_OCL_PROG_REDUCE, "vt_bias_grad_rows"},
    [VT_OCL_K_BN_STATS] = {VT_OCL_PROG_REDUCE, "vt_bn_stats"},
    [VT_OCL_K_BN_STATS_ROWS] = {VT_OCL_PROG_REDUCE, "vt_bn_stats_rows"},
    [VT_OCL_K_BN_EVAL_SAVE] = {VT_OCL_PROG_REDUCE, "vt_bn_eval_save"},
    [VT_OCL_K_BN_APPLY] = {VT_OCL_PROG_REDUCE, "vt_bn_apply"},
    [VT_OCL_K_BN_BWD_REDUCE] = {VT_OCL_PROG_REDUCE, "vt_bn_bwd_reduce"},
    [VT_OCL_K_BN_BWD_REDUCE_ROWS] = {VT_OCL_PROG_REDUCE, "vt_bn_bwd_reduce_rows"},
    [VT_OCL_K_BN_BWD_APPLY] = {VT_OCL_PROG_REDUCE, "vt_bn_bwd_apply"},
    [VT_OCL_K_BN_SYNC_STATS] = {VT_OCL_PROG_REDUCE, "vt_bn_sync_stats"},
    [VT_OCL_K_BN_SYNC_STATS_ROWS] = {VT_OCL_PROG_REDUCE, "vt_bn_sync_stats_rows"},
    [VT_OCL_K_BN_SYNC_RUNNING] = {VT_OCL_PROG_REDUCE, "vt_bn_sync_running"},
    [VT_OCL_K_CE_ROWS] = {VT_OCL_PROG_SOFTMAX, "vt_ce_rows"},
    [VT_OCL_K_CE_REDUCE] = {VT_OCL_PROG_SOFTMAX, "vt_ce_reduce"},
    [VT_OCL_K_CE_BWD] = {VT_OCL_PROG_SOFTMAX, "vt_ce_bwd"},
    [VT_OCL_K_ARGMAX] = {VT_OCL_PROG_SOFTMAX, "vt_argmax"},
    [VT_OCL_K_CONFUSION] = {VT_OCL_PROG_SOFTMAX, "vt_confusion"},
    [VT_OCL_K_BATCH_PREP] = {VT_OCL_PROG_DATA, "vt_batch_prep"},
    [VT_OCL_K_UPSAMPLE] = {VT_OCL_PROG_DATA, "vt_upsample"},
    [VT_OCL_K_UPSAMPLE_BWD] = {VT_OCL_PROG_DATA, "vt_upsample_bwd"},
};

/* ---- errors ---- */

/* clang-format off */
const char *vt_ocl_err_name(cl_int err) {
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
    E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
    E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    default: return "unknown OpenCL error";
    }
}
/* clang-format on */

vt_status vt_ocl_fail(const char *file, int line, const char *call, cl_int err) {
    vt_status s = VT_ERR_DEVICE;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY) s = VT_ERR_OOM;
    return vt_set_error_at(file, line, s, "opencl: %s failed: %s (%d)", call, vt_ocl_err_name(err), (int)err);
}

/* ---- devices: every device of every platform, in platform order ---- */

#define VT_OCL_MAX_DEVICES 32

static struct {
    int scanned, count;
    cl_platform_id platform[VT_OCL_MAX_DEVICES];
    cl_device_id device[VT_OCL_MAX_DEVICES];
} vt_ocl_devs;

static void vt_ocl_scan(void) {
    if (vt_ocl_devs.scanned) return;
    vt_ocl_devs.scanned = 1;
    cl_uint np = 0;
    if (clGetPlatformIDs(0, NULL, &np) != CL_SUCCESS || np == 0) return;
    cl_platform_id plats[16];
    if (np > 16) np = 16;
    if (clGetPlatformIDs(np, plats, NULL) != CL_SUCCESS) return;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
        cl_device_id devs[VT_OCL_MAX_DEVICES];
        if (nd > VT_OCL_MAX_DEVICES) nd = VT_OCL_MAX_DEVICES;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < nd && vt_ocl_devs.count < VT_OCL_MAX_DEVICES; d++) {
            vt_ocl_devs.platform[vt_ocl_devs.count] = plats[p];
            vt_ocl_devs.device[vt_ocl_devs.count] = devs[d];
            vt_ocl_devs.count++;
        }
    }
}

static int ocl_device_count(void) {
    vt_ocl_scan();
    return vt_ocl_devs.count;
}

/* Long strings are cut to fit rather than lost (the query fails when the buffer is too small). */
static void vt_ocl_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
    char tmp[1024] = "";
    if (clGetDeviceInfo(d, what, sizeof tmp, tmp, NULL) != CL_SUCCESS) tmp[0] = 0;
    tmp[sizeof tmp - 1] = 0;
    snprintf(out, n, "%s", tmp);
}

static vt_status ocl_device_info(int index, vt_device_info *out) {
    vt_ocl_scan();
    if (index < 0 || index >= vt_ocl_devs.count)
        return vt_error(VT_ERR_NOT_FOUND, "opencl: device %d asked, %d present", index, vt_ocl_devs.count);
    cl_device_id d = vt_ocl_devs.device[index];
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "opencl");
    vt_ocl_str(d, CL_DEVICE_NAME, out->name, sizeof out->name);
    vt_ocl_str(d, CL_DEVICE_VENDOR, out->vendor, sizeof out->vendor);
    char ver[48], drv[40];
    vt_ocl_str(d, CL_DEVICE_VERSION, ver, sizeof ver);
    vt_ocl_str(d, CL_DRIVER_VERSION, drv, sizeof drv);
    snprintf(out->driver, sizeof out->driver, "%s, driver %s", ver, drv);
    cl_device_type type = 0;
    cl_bool unified = CL_FALSE;
    cl_ulong mem = 0;
    cl_uint cu = 0, mhz = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof mhz, &mhz, NULL);
    const char *t = "other";
    if (type & CL_DEVICE_TYPE_CPU) {
        t = "cpu";
        out->is_cpu_hosted = 1;
    } else if (type & CL_DEVICE_TYPE_GPU) {
        t = unified ? "integrated" : "gpu";
    }
    snprintf(out->type, sizeof out->type, "%s", t);
    out->memory_bytes = mem;
    out->compute_units = (int)cu;
    out->peak_gflops = 0.0; /* not knowable from OpenCL queries alone */
    return VT_OK;
}

/* ---- buffers ---- */

/* Queued writes keep their host copy until the queue has passed them. */
static void vt_ocl_release_staging(vt_ocl_ctx *c) {
    while (c->staging) {
        vt_ocl_staging *n = c->staging->next;
        free(c->staging->data);
        free(c->staging);
        c->staging = n;
    }
    c->staging_bytes = 0;
}

static vt_status ocl_sync(vt_backend *be) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (c->dirty) be->counters.submits++;
    c->dirty = 0;
    VT_OCL_CHECK(clFinish(c->queue));
    vt_ocl_release_staging(c);
    return VT_OK;
}

static vt_status ocl_buffer_alloc(vt_backend *be, vt_buffer *buf) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    /* Rounded to whole words so the zero fill can use a 4-byte pattern. */
    size_t size = (buf->size + 3) & ~(size_t)3;
    if (size == 0) size = 4;
    if (size > c->max_alloc)
        return vt_error(
            VT_ERR_OOM,
            "opencl: %s: a buffer of %zu bytes (%.1f MiB) asked; the device allows %llu bytes (%.1f MiB) per "
            "buffer and has %llu bytes (%.1f MiB) in all; use a smaller batch",
            be->info.name, size, (double)size / 1048576.0, (unsigned long long)c->max_alloc,
            (double)c->max_alloc / 1048576.0, (unsigned long long)c->global_mem, (double)c->global_mem / 1048576.0);
    cl_int err = CL_SUCCESS;
    cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, size, NULL, &err);
    if (err != CL_SUCCESS) {
        if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY)
            return vt_error(VT_ERR_OOM,
                            "opencl: clCreateBuffer of %zu bytes (%.1f MiB) failed: %s; the device has %llu bytes "
                            "(%.1f MiB); use a smaller batch",
                            size, (double)size / 1048576.0, vt_ocl_err_name(err), (unsigned long long)c->global_mem,
                            (double)c->global_mem / 1048576.0);
        return vt_ocl_fail(__FILE__, __LINE__, "clCreateBuffer", err);
    }
    cl_uint zero = 0;
    err = clEnqueueFillBuffer(c->queue, m, &zero, sizeof zero, 0, size, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        clReleaseMemObject(m);
        return vt_ocl_fail(__FILE__, __LINE__, "clEnqueueFillBuffer", err);
    }
    c->dirty = 1;
    buf->handle = m;
    buf->host = NULL;
    return VT_OK;
}

static void ocl_buffer_free(vt_backend *be, vt_buffer *buf) {
    (void)be;
    /* OpenCL keeps the memory alive until queued commands that use it have finished. */
    if (buf->handle) clReleaseMemObject((cl_mem)buf->handle);
    buf->handle = NULL;
}

static vt_status ocl_buffer_write(vt_backend *be, vt_buffer *buf, size_t off, const void *data, size_t size) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (off > buf->size || size > buf->size - off)
        return vt_error(VT_ERR_INVALID_ARG, "opencl: write of %zu bytes at %zu past buffer of %zu", size, off,
                        buf->size);
    if (size == 0) return VT_OK;
    /* The write is queued, not waited for: a private copy keeps the caller free to reuse data. */
    vt_ocl_staging *st = malloc(sizeof *st);
    void *copy = malloc(size);
    if (!st || !copy) {
        free(st);
        free(copy);
        return vt_error(VT_ERR_OOM, "opencl: cannot stage %zu bytes for upload", size);
    }
    memcpy(copy, data, size);
    st->data = copy;
    st->next = c->staging;
    c->staging = st;
    c->staging_bytes += size;
    VT_OCL_CHECK(clEnqueueWriteBuffer(c->queue, (cl_mem)buf->handle, CL_FALSE, off, size, copy, 0, NULL, NULL));
    c->dirty = 1;
    /* Bound host memory held by queued uploads when nobody synchronises for a long time. */
    if (c->staging_bytes > ((size_t)256 << 20)) {
        be->counters.syncs++;
        return ocl_sync(be);
    }
    return VT_OK;
}

static vt_status ocl_buffer_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (off > buf->size || size > buf->size - off)
        return vt_error(VT_ERR_INVALID_ARG, "opencl: read of %zu bytes at %zu past buffer of %zu", size, off,
                        buf->size);
    if (size == 0) return VT_OK;
    if (c->dirty) be->counters.submits++;
    c->dirty = 0;
    VT_OCL_CHECK(clEnqueueReadBuffer(c->queue, (cl_mem)buf->handle, CL_TRUE, off, size, data, 0, NULL, NULL));
    /* In-order queue: everything before the read, staged uploads included, has completed. */
    vt_ocl_release_staging(c);
    return VT_OK;
}

/* ---- programs: built once per backend, optionally cached as binaries on disk ---- */

static uint64_t vt_fnv1a(uint64_t h, const char *s) {
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void vt_ocl_cache_path(vt_backend *be, vt_ocl_prog p, char *path, size_t n) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    uint64_t h = 0xcbf29ce484222325ull;
    h = vt_fnv1a(h, vt_ocl_src_act_formulas);
    h = vt_fnv1a(h, vt_ocl_src_common);
    h = vt_fnv1a(h, vt_ocl_programs[p].src);
    h = vt_fnv1a(h, c->build_opts);
    h = vt_fnv1a(h, be->info.name);
    h = vt_fnv1a(h, be->info.vendor);
    h = vt_fnv1a(h, be->info.driver);
    snprintf(path, n, "%s/opencl-%.*s-%016llx.bin", be->opts.cache_dir, (int)(strlen(vt_ocl_programs[p].file) - 3),
             vt_ocl_programs[p].file, (unsigned long long)h);
}

/* A cached binary is only a shortcut: any failure falls back to building from source. */
static cl_program vt_ocl_load_binary(vt_backend *be, const char *path) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cl_program prog = NULL;
    unsigned char *bin = NULL;
    long len = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (bin = malloc((size_t)len)) && fread(bin, 1, (size_t)len, f) == (size_t)len) {
        size_t sz = (size_t)len;
        const unsigned char *bins[1] = {bin};
        cl_int st = CL_SUCCESS, err = CL_SUCCESS;
        prog = clCreateProgramWithBinary(c->context, 1, &c->device, &sz, bins, &st, &err);
        if (err != CL_SUCCESS || st != CL_SUCCESS) {
            if (prog) clReleaseProgram(prog);
            prog = NULL;
        } else if (clBuildProgram(prog, 1, &c->device, c->build_opts, NULL, NULL) != CL_SUCCESS) {
            clReleaseProgram(prog);
            prog = NULL;
        }
    }
    free(bin);
    fclose(f);
    return prog;
}

/* Written to a temporary name and renamed, so a reader never sees half a file. */
static void vt_ocl_save_binary(cl_program prog, const char *path) {
    size_t sz = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof sz, &sz, NULL) != CL_SUCCESS || sz == 0) return;
    unsigned char *bin = malloc(sz);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "wb");
        if (f) {
            int ok = fwrite(bin, 1, sz, f) == sz;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, path) != 0) remove(tmp);
        }
    }
    free(bin);
}

static vt_status vt_ocl_program(vt_backend *be, vt_ocl_prog p, cl_program *out) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (c->programs[p]) {
        *out = c->programs[p];
        return VT_OK;
    }
    char path[1024] = "";
    if (be->opts.cache_dir && be->opts.cache_dir[0]) {
        vt_ocl_cache_path(be, p, path, sizeof path);
        cl_program cached = vt_ocl_load_binary(be, path);
        if (cached) {
            c->programs[p] = *out = cached;
            return VT_OK;
        }
    }
    /* The shared activation formulas (vt/act_formulas.h), then common.cl, then the program's file. */
    const char *srcs[3] = {vt_ocl_src_act_formulas, vt_ocl_src_common, vt_ocl_programs[p].src};
    cl_int err = CL_SUCCESS;
    cl_program prog = clCreateProgramWithSource(c->context, 3, srcs, NULL, &err);
    if (err != CL_SUCCESS) return vt_ocl_fail(__FILE__, __LINE__, "clCreateProgramWithSource", err);
    err = clBuildProgram(prog, 1, &c->device, c->build_opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[700] = "";
        size_t got = 0;
        clGetProgramBuildInfo(prog, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &got);
        log[sizeof log - 1] = 0;
        clReleaseProgram(prog);
        /* Line numbers in the log count act_formulas.h and common.cl first, then the named file. */
        return vt_error(
            VT_ERR_DEVICE,
            "opencl: building shaders/opencl/%s (after vt/act_formulas.h and common.cl) failed: %s (%d); log: %s",
            vt_ocl_programs[p].file, vt_ocl_err_name(err), (int)err, log);
    }
    if (path[0]) vt_ocl_save_binary(prog, path);
    c->programs[p] = *out = prog;
    return VT_OK;
}

vt_status vt_ocl_kernel(vt_backend *be, vt_ocl_kern id, cl_kernel *out) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (!c->kernels[id]) {
        cl_program prog;
        VT_TRY(vt_ocl_program(be, vt_ocl_kernel_table[id].prog, &prog));
        cl_int err = CL_SUCCESS;
        cl_kernel k = clCreateKernel(prog, vt_ocl_kernel_table[id].name, &err);
        if (err != CL_SUCCESS)
            return vt_error(VT_ERR_DEVICE, "opencl: clCreateKernel(%s) from %s failed: %s (%d)",
                            vt_ocl_kernel_table[id].name, vt_ocl_programs[vt_ocl_kernel_table[id].prog].file,
                            vt_ocl_err_name(err), (int)err);
        c->kernels[id] = k;
    }
    *out = c->kernels[id];
    return VT_OK;
}

vt_status vt_ocl_workspace(vt_backend *be, size_t bytes, cl_mem *out) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (bytes == 0) bytes = 4;
    if (bytes > c->ws_size) {
        if (bytes > c->max_alloc)
            return vt_error(VT_ERR_OOM,
                            "opencl: %s: scratch of %zu bytes exceeds the %llu-byte buffer limit; use a smaller batch",
                            be->info.name, bytes, (unsigned long long)c->max_alloc);
        if (c->ws) clReleaseMemObject(c->ws);
        c->ws = NULL;
        c->ws_size = 0;
        cl_int err = CL_SUCCESS;
        cl_mem m = clCreateBuffer(c->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
        if (err != CL_SUCCESS)
            return vt_error(err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ? VT_ERR_OOM
                                                                                                  : VT_ERR_DEVICE,
                            "opencl: scratch buffer of %zu bytes: %s; the device has %llu bytes; use a smaller batch",
                            bytes, vt_ocl_err_name(err), (unsigned long long)c->global_mem);
        c->ws = m;
        c->ws_size = bytes;
    }
    *out = c->ws;
    return VT_OK;
}

/* ---- launches ---- */

void vt_ocl_arg(vt_ocl_args *a, size_t size, const void *value) {
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->k, a->n, size, value);
    a->n++;
}

vt_status vt_ocl_begin(vt_backend *be, vt_ocl_kern id, vt_ocl_args *a) {
    a->n = 0;
    a->err = CL_SUCCESS;
    a->what = vt_ocl_kernel_table[id].name;
    return vt_ocl_kernel(be, id, &a->k);
}

static vt_status vt_ocl_enqueue(vt_backend *be, vt_ocl_args *a, cl_uint dims, const size_t *global,
                                const size_t *local) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (a->err != CL_SUCCESS)
        return vt_error(VT_ERR_DEVICE, "opencl: %s: clSetKernelArg(%u) failed: %s (%d)", a->what, a->n,
                        vt_ocl_err_name(a->err), (int)a->err);
    for (cl_uint i = 0; i < dims; i++)
        if (global[i] == 0) return VT_OK;
    cl_int err = clEnqueueNDRangeKernel(c->queue, a->k, dims, NULL, global, local, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return vt_error(err == CL_OUT_OF_RESOURCES || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? VT_ERR_OOM
                                                                                              : VT_ERR_DEVICE,
                        "opencl: clEnqueueNDRangeKernel(%s, %zu x %zu x %zu) failed: %s (%d)", a->what, global[0],
                        dims > 1 ? global[1] : 1, dims > 2 ? global[2] : 1, vt_ocl_err_name(err), (int)err);
    be->counters.dispatches++;
    c->dirty = 1;
    return VT_OK;
}

/* Work-groups are always given: left to itself, a driver may pick a group of 1 item for a range
 * whose size has no convenient divisor (PoCL does), which costs a group launch per item. The
 * kernels return early for items past the end of the range. */
vt_status vt_ocl_launch(vt_backend *be, vt_ocl_args *a, size_t items, size_t local) {
    if (!local) local = items < VT_OCL_LS ? (items ? items : 1) : VT_OCL_LS;
    size_t global = (items + local - 1) / local * local;
    return vt_ocl_enqueue(be, a, 1, &global, &local);
}

vt_status vt_ocl_launch3(vt_backend *be, vt_ocl_args *a, size_t x, size_t y, size_t z) {
    size_t local[3] = {x < VT_OCL_LS ? (x ? x : 1) : VT_OCL_LS, 1, 1};
    size_t global[3] = {(x + local[0] - 1) / local[0] * local[0], y, z};
    return vt_ocl_enqueue(be, a, 3, global, local);
}

/* ---- backend lifetime ---- */

static void ocl_free(vt_backend *be) {
    if (!be) return;
    vt_ocl_ctx *c = vt_ocl_of(be);
    if (c) {
        if (c->queue) clFinish(c->queue);
        vt_ocl_release_staging(c);
        for (int i = 0; i < VT_OCL_K_COUNT; i++)
            if (c->kernels[i]) clReleaseKernel(c->kernels[i]);
        for (int i = 0; i < VT_OCL_PROG_COUNT; i++)
            if (c->programs[i]) clReleaseProgram(c->programs[i]);
        if (c->ws) clReleaseMemObject(c->ws);
        if (c->queue) clReleaseCommandQueue(c->queue);
        if (c->context) clReleaseContext(c->context);
        free(c);
    }
    free(be);
}

static const vt_backend_i ocl_iface = {
    .free = ocl_free,
    .buffer_alloc = ocl_buffer_alloc,
    .buffer_free = ocl_buffer_free,
    .buffer_write = ocl_buffer_write,
    .buffer_read = ocl_buffer_read,
    .supports_node = vt_ocl_supports,
    .compute_node = vt_ocl_compute,
    .graph_compute = NULL,
    .synchronize = ocl_sync,
};

static vt_status vt_ocl_setup(vt_backend *be, int index, const char *xgemm) {
    vt_ocl_ctx *c = vt_ocl_of(be);
    c->platform = vt_ocl_devs.platform[index];
    c->device = vt_ocl_devs.device[index];
    cl_int err = CL_SUCCESS;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)c->platform, 0};
    c->context = clCreateContext(props, 1, &c->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) return vt_ocl_fail(__FILE__, __LINE__, "clCreateContext", err);
    /* In-order queue: ops run in submission order without events. */
    c->queue = clCreateCommandQueue(c->context, c->device, 0, &err);
    if (err != CL_SUCCESS) return vt_ocl_fail(__FILE__, __LINE__, "clCreateCommandQueue", err);
    VT_OCL_CHECK(clGetDeviceInfo(c->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof c->max_alloc, &c->max_alloc, NULL));
    VT_OCL_CHECK(clGetDeviceInfo(c->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof c->global_mem, &c->global_mem, NULL));
    size_t max_wg = 0;
    VT_OCL_CHECK(clGetDeviceInfo(c->device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL));
    if (max_wg < VT_OCL_RED_LS)
        return vt_error(VT_ERR_UNSUPPORTED, "opencl: %s allows %zu work-items per group; the reductions need %d",
                        be->info.name, max_wg, VT_OCL_RED_LS);
    /* Correctly rounded / and sqrt where the device offers it, so results track the C reference. */
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(c->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    snprintf(c->build_opts, sizeof c->build_opts,
             "-cl-std=CL1.2 -DVT_RED_LS=%d -DVT_ACT_NONE=%d -DVT_ACT_RELU=%d -DVT_ACT_LEAKY_RELU=%d -DVT_ACT_SELU=%d "
             "-DVT_ACT_GELU=%d -DVT_POOL_MAX=%d -DVT_POOL_AVG=%d -DVT_UPSAMPLE_NEAREST=%d -DVT_UPSAMPLE_BILINEAR=%d%s",
             VT_OCL_RED_LS, VT_ACT_NONE, VT_ACT_RELU, VT_ACT_LEAKY_RELU, VT_ACT_SELU, VT_ACT_GELU, VT_POOL_MAX,
             VT_POOL_AVG, VT_UPSAMPLE_NEAREST, VT_UPSAMPLE_BILINEAR,
             (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
    return vt_ocl_tune_clblast(be, xgemm);
}

/* The kernel-path options (vt_backend_opts.options or VT_OPENCL_OPTIONS), read once here. */
static const char *const vt_ocl_option_keys[] = {"conv", "gemm_nt", "clblast_xgemm", NULL};

/* value of key: 1 for `on`, 0 for `off`, def when absent; anything else is refused. */
static vt_status vt_ocl_choice(const vt_options *o, const char *key, const char *on, const char *off, int def,
                               int *out) {
    const char *v = vt_options_get(o, key, NULL);
    *out = def;
    if (!v) return VT_OK;
    if (strcmp(v, on) == 0) return *out = 1, VT_OK;
    if (strcmp(v, off) == 0) return *out = 0, VT_OK;
    return vt_error(VT_ERR_INVALID_ARG, "opencl options: %s=%s: use %s or %s", key, v, on, off);
}

static vt_status ocl_init(int index, const vt_backend_opts *opts, vt_backend **out) {
    *out = NULL;
    vt_options o;
    VT_TRY(vt_options_parse("opencl", opts, vt_ocl_option_keys, &o));
    vt_ocl_scan();
    if (index < 0 || index >= vt_ocl_devs.count)
        return vt_error(VT_ERR_NOT_FOUND, "opencl: device %d asked, %d present", index, vt_ocl_devs.count);
    vt_backend *be = calloc(1, sizeof *be);
    vt_ocl_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return vt_error(VT_ERR_OOM, "opencl: out of host memory");
    }
    be->iface = &ocl_iface;
    be->context = c;
    if (opts) be->opts = *opts;
    vt_status s = ocl_device_info(index, &be->info);
    /* Our own convolution and x W^T kernels keep 16x16 sums per work-item in vector registers: the
     * shape of a CPU device (PoCL), where they beat CLBlast 2-4x. On a GPU that many registers per
     * work-item would spill, and CLBlast's GPU kernels are tuned, so there CLBlast stays the default.
     * The options conv=own|gemm and gemm_nt=own|clblast choose either way. */
    int cpu_device = strcmp(be->info.type, "cpu") == 0;
    if (s == VT_OK) s = vt_ocl_choice(&o, "conv", "own", "gemm", cpu_device, &c->conv_rows);
    if (s == VT_OK) s = vt_ocl_choice(&o, "gemm_nt", "own", "clblast", cpu_device, &c->gemm_nt);
    if (s == VT_OK) s = vt_ocl_setup(be, index, vt_options_get(&o, "clblast_xgemm", NULL));
    if (s != VT_OK) {
        ocl_free(be);
        return s;
    }
    snprintf(be->info.config, sizeof be->info.config, "CLBlast parameters: %s; own kernels: %s%s",
             c->clblast_tuning[0] ? c->clblast_tuning : "CLBlast's own",
             c->conv_rows ? "16/32-channel convs" : "none for convs", c->gemm_nt ? ", batch x W^T" : "");
    *out = be;
    return VT_OK;
}

const vt_backend_reg *vt_backend_reg_opencl(void) {
    static const vt_backend_reg reg = {"opencl", ocl_device_count, ocl_device_info, ocl_init};
    return &reg;
}
