/* CPU backend: registration, buffers and dispatch. The op implementations live in cpu_ops_*.c;
 * the reference mode runs only the plain loops, the fast mode uses OpenBLAS and OpenMP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/backend.h"

static void cpu_free(vt_backend *be) { free(be); }

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
    if (off + size > buf->size) return vt_error(VT_ERR_INVALID_ARG, "cpu: write of %zu bytes at %zu past buffer of %zu", size, off, buf->size);
    memcpy((char *)buf->host + off, data, size);
    return VT_OK;
}

static vt_status cpu_buffer_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    (void)be;
    if (off + size > buf->size) return vt_error(VT_ERR_INVALID_ARG, "cpu: read of %zu bytes at %zu past buffer of %zu", size, off, buf->size);
    memcpy(data, (const char *)buf->host + off, size);
    return VT_OK;
}

static bool cpu_supports(vt_backend *be, const vt_node *n) {
    (void)be;
    (void)n;
    return false;
}

static vt_status cpu_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    (void)be;
    (void)ctx;
    return vt_error(VT_ERR_UNSUPPORTED, "cpu: %s not implemented", vt_op_name(n->op));
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
    .graph_compute = NULL,
    .synchronize = cpu_sync,
};

static int cpu_device_count(void) { return 1; }

static vt_status cpu_device_info(int index, vt_device_info *out) {
    if (index != 0) return vt_error(VT_ERR_NOT_FOUND, "cpu: device %d does not exist", index);
    memset(out, 0, sizeof *out);
    snprintf(out->backend, sizeof out->backend, "cpu");
    snprintf(out->name, sizeof out->name, "host CPU");
    snprintf(out->vendor, sizeof out->vendor, "host");
    snprintf(out->type, sizeof out->type, "cpu");
    return VT_OK;
}

static vt_status cpu_init(int index, const vt_backend_opts *opts, vt_backend **out) {
    vt_backend *be = calloc(1, sizeof *be);
    if (!be) return vt_error(VT_ERR_OOM, "cpu: out of memory");
    be->iface = &cpu_iface;
    if (opts) be->opts = *opts;
    VT_TRY(cpu_device_info(index, &be->info));
    *out = be;
    return VT_OK;
}

const vt_backend_reg *vt_backend_reg_cpu(void) {
    static const vt_backend_reg reg = {"cpu", cpu_device_count, cpu_device_info, cpu_init};
    return &reg;
}
