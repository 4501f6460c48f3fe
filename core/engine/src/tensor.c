/* Tensor shape helpers and standalone tensors with their own backend buffer. */
#include "vt/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t vt_tensor_nelem(const vt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t vt_tensor_nbytes(const vt_tensor *t) { return (size_t)vt_tensor_nelem(t) * vt_dtype_size(t->dtype); }

void vt_tensor_init(vt_tensor *t, const char *name, vt_dtype dtype, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    t->id = -1;
    for (int i = 0; i < VT_MAX_DIMS; i++) t->shape[i] = (i < ndim) ? shape[i] : 1;
    if (name) snprintf(t->name, sizeof t->name, "%s", name);
}

bool vt_tensor_same_shape(const vt_tensor *a, const vt_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *vt_tensor_describe(const vt_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "] %s", vt_dtype_name(t->dtype));
    return buf;
}

vt_status vt_tensor_new(vt_backend *be, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                        vt_tensor **out) {
    *out = NULL;
    if (ndim < 1 || ndim > VT_MAX_DIMS)
        return vt_error(VT_ERR_INVALID_ARG, "tensor %s: rank %d not in 1..%d", name ? name : "?", ndim, VT_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0)
            return vt_error(VT_ERR_SHAPE, "tensor %s: dim %d is %lld", name ? name : "?", i, (long long)shape[i]);
    vt_tensor *t = calloc(1, sizeof *t);
    if (!t) return vt_error(VT_ERR_OOM, "tensor %s: out of host memory", name ? name : "?");
    vt_tensor_init(t, name, dtype, ndim, shape);
    size_t bytes = vt_tensor_nbytes(t);
    vt_status s = vt_backend_buffer_alloc(be, bytes ? bytes : 1, &t->buf);
    if (s != VT_OK) {
        free(t);
        return s;
    }
    *out = t;
    return VT_OK;
}

void vt_tensor_free(vt_tensor *t) {
    if (!t) return;
    vt_backend_buffer_free(t->buf);
    free(t);
}

vt_status vt_tensor_upload(vt_tensor *t, const void *data, size_t nbytes) {
    if (!t->buf) return vt_error(VT_ERR_INVALID_ARG, "tensor %s has no memory", t->name);
    if (nbytes != vt_tensor_nbytes(t))
        return vt_error(VT_ERR_SHAPE, "tensor %s: upload of %zu bytes, tensor has %zu", t->name, nbytes,
                        vt_tensor_nbytes(t));
    vt_backend *be = t->buf->backend;
    be->counters.uploads++;
    be->counters.bytes_up += nbytes;
    return be->iface->buffer_write(be, t->buf, t->offset, data, nbytes);
}

vt_status vt_tensor_download(const vt_tensor *t, void *data, size_t nbytes) {
    if (!t->buf) return vt_error(VT_ERR_INVALID_ARG, "tensor %s has no memory", t->name);
    if (nbytes != vt_tensor_nbytes(t))
        return vt_error(VT_ERR_SHAPE, "tensor %s: download of %zu bytes, tensor has %zu", t->name, nbytes,
                        vt_tensor_nbytes(t));
    vt_backend *be = t->buf->backend;
    be->counters.downloads++;
    be->counters.bytes_down += nbytes;
    return be->iface->buffer_read(be, t->buf, t->offset, data, nbytes);
}
