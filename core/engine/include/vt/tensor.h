/* Tensors and backend buffers. A tensor is a dense row-major (NCHW) view of up to 4 dims into
 * a backend buffer at a byte offset; reshape/flatten are views that share the same bytes. */
#ifndef VT_TENSOR_H
#define VT_TENSOR_H

#include "vt/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VT_MAX_DIMS 4
/* Every tensor placed by the planner starts on this byte boundary (covers Vulkan's
 * minStorageBufferOffsetAlignment on every known device and OpenCL's CL_DEVICE_MEM_BASE_ADDR_ALIGN). */
#define VT_ALIGN    256

struct vt_backend;

/* A block of device (or host) memory owned by a backend. */
typedef struct vt_buffer {
    struct vt_backend *backend;
    size_t size;  /* bytes */
    void *host;   /* CPU backend: the memory itself; other backends: NULL */
    void *handle; /* backend-specific: cl_mem, a Vulkan buffer record, a CUDA device pointer */
} vt_buffer;

typedef struct vt_tensor {
    vt_dtype dtype;
    int ndim;                   /* 1..4 */
    int64_t shape[VT_MAX_DIMS]; /* shape[0] is outermost (N for NCHW); unused dims are 1 */
    vt_buffer *buf;             /* NULL until placed */
    size_t offset;              /* bytes from the start of buf */
    int id;                     /* index in its graph's tensor table, -1 when standalone */
    uint32_t flags;             /* VT_TENSOR_* */
    char name[64];
} vt_tensor;

enum {
    VT_TENSOR_PARAM = 1u << 0,    /* trainable parameter (lives in the parameter block) */
    VT_TENSOR_GRAD = 1u << 1,     /* gradient of a parameter (lives in the gradient block) */
    VT_TENSOR_STATE = 1u << 2,    /* persistent non-trainable state: BN running stats, optimizer moments */
    VT_TENSOR_EXTERNAL = 1u << 3, /* memory owned outside the graph (dataset, metrics) */
    VT_TENSOR_VIEW = 1u << 4,     /* shares the bytes of another tensor */
    VT_TENSOR_INPUT = 1u << 5,    /* written by the host before the graph runs */
};

int64_t vt_tensor_nelem(const vt_tensor *t);
size_t vt_tensor_nbytes(const vt_tensor *t);
/* Fill in dtype/ndim/shape (no memory). Unused dims are set to 1. */
void vt_tensor_init(vt_tensor *t, const char *name, vt_dtype dtype, int ndim, const int64_t *shape);
bool vt_tensor_same_shape(const vt_tensor *a, const vt_tensor *b);
/* "[64,3,32,32] f32" into buf; returns buf. */
const char *vt_tensor_describe(const vt_tensor *t, char *buf, size_t n);

/* Standalone tensors with their own buffer (used by tests, loaders and checkpoints). */
vt_status vt_tensor_new(struct vt_backend *be, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                        vt_tensor **out);
void vt_tensor_free(vt_tensor *t);
/* Host <-> tensor copies of the whole tensor (counted by the backend as transfers). */
vt_status vt_tensor_upload(vt_tensor *t, const void *data, size_t nbytes);
vt_status vt_tensor_download(const vt_tensor *t, void *data, size_t nbytes);

#ifdef __cplusplus
}
#endif
#endif
