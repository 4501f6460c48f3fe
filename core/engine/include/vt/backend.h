/* The backend interface: a small table of function pointers plus a context, and the wrappers that
 * validate nodes and keep counters. The registry of backends is vt/registry.h. */
#ifndef VT_BACKEND_H
#define VT_BACKEND_H

#include "vt/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_device_info {
    char backend[16]; /* "cpu", "opencl", "vulkan", "cuda" */
    char name[128];
    char vendor[64];
    char driver[96]; /* driver / API version string */
    char type[16];   /* "gpu", "integrated", "cpu", "other" */
    uint64_t memory_bytes;
    int compute_units;
    double peak_gflops; /* f32, 0 when unknown */
    int is_cpu_hosted;  /* PoCL, lavapipe: a driver that runs on the host CPU */
    char config[192];   /* after init: the backend's choice of kernels and paths ("" if none) */
} vt_device_info;

/* Transfer / synchronisation counters, kept by every backend (reset by the caller). */
typedef struct vt_backend_counters {
    uint64_t uploads, downloads; /* host->device, device->host transfers */
    uint64_t bytes_up, bytes_down;
    uint64_t syncs;      /* blocking waits on the device */
    uint64_t dispatches; /* kernel launches / vkCmdDispatch / GEMM calls */
    uint64_t submits;    /* queue submissions / graph launches */
    uint64_t fused;      /* nodes run inside another node's kernel (CPU: GEMM + SGD update) */
} vt_backend_counters;

typedef struct vt_backend_opts {
    int reference;         /* CPU backend: plain loops only (the definition of correct) */
    int threads;           /* CPU backend: 0 = all cores */
    int validation;        /* Vulkan: enable validation layers; errors fail the run */
    int tf32;              /* CUDA: allow TF32 GEMMs */
    const char *cache_dir; /* where pipeline / program caches go; NULL = no disk cache */
    /* The backend's kernel-path options, "key=value,key=value" (docs/backend-options.md lists every key), for
     * benchmarking and testing one path; NULL: the environment's VT_<BACKEND>_OPTIONS, e.g.
     * VT_OPENCL_OPTIONS=conv=gemm. Unknown keys are refused at init. */
    const char *options;
} vt_backend_opts;

/* A parsed options string: at most VT_MAX_OPTIONS pairs. */
#define VT_MAX_OPTIONS 16
typedef struct vt_options {
    int n;
    char key[VT_MAX_OPTIONS][32];
    char value[VT_MAX_OPTIONS][64];
} vt_options;

/* Parses backend's options: opts->options when set, else getenv("VT_<BACKEND>_OPTIONS") (BACKEND in
 * upper case), else none. Every key must be one of known[] (NULL-terminated); a repeated or unknown
 * key, a pair without '=', an empty key or value, or one too long is VT_ERR_INVALID_ARG with a
 * message naming the backend, where the string came from, the key and the known keys. */
vt_status vt_options_parse(const char *backend, const vt_backend_opts *opts, const char *const *known, vt_options *out);
/* key's value, or def when the key is absent. */
const char *vt_options_get(const vt_options *o, const char *key, const char *def);
/* key's value as a switch: 1 for "1", "on", "true", "yes"; 0 for "0", "off", "false", "no"; def when
 * absent; otherwise VT_ERR_INVALID_ARG naming the key (the result is left as def). */
vt_status vt_options_bool(const vt_options *o, const char *backend, const char *key, int def, int *out);

typedef struct vt_backend vt_backend;

/* A sequence of nodes that a backend may execute as one unit (record once, replay). The backend
 * may keep whatever it derived from the nodes in be_state; it is freed with be_state_free when the
 * exec is destroyed. nodes and their tensors must not change while be_state is alive. */
typedef struct vt_graph_exec {
    const vt_node *nodes;
    int n_nodes;
    void *be_state;
    void (*be_state_free)(vt_backend *be, void *state);
} vt_graph_exec;

typedef struct vt_backend_i {
    void (*free)(vt_backend *be);
    /* Allocate size bytes (zero-filled) into buf (buf->backend/size are set by the caller). */
    vt_status (*buffer_alloc)(vt_backend *be, vt_buffer *buf);
    void (*buffer_free)(vt_backend *be, vt_buffer *buf);
    /* Byte copies between host memory and a buffer region; blocking. */
    vt_status (*buffer_write)(vt_backend *be, vt_buffer *buf, size_t offset, const void *data, size_t size);
    vt_status (*buffer_read)(vt_backend *be, const vt_buffer *buf, size_t offset, void *data, size_t size);
    /* Does this backend implement the node (op, dtypes, params) exactly? */
    bool (*supports_node)(vt_backend *be, const vt_node *n);
    /* Enqueue one node (may return before it finishes). */
    vt_status (*compute_node)(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx);
    /* Optional (NULL: core loops over compute_node). Enqueue a whole node sequence. */
    vt_status (*graph_compute)(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx);
    /* Wait until everything enqueued has finished. */
    vt_status (*synchronize)(vt_backend *be);
} vt_backend_i;

struct vt_backend {
    const vt_backend_i *iface;
    void *context;
    vt_device_info info;
    vt_backend_counters counters;
    vt_backend_opts opts;
};

/* One per backend, exported by its folder (the only symbol a backend exports). */
typedef struct vt_backend_reg {
    const char *name;
    int (*device_count)(void);
    vt_status (*device_info)(int index, vt_device_info *out);
    vt_status (*init)(int index, const vt_backend_opts *opts, vt_backend **out);
} vt_backend_reg;

void vt_backend_free(vt_backend *be);

/* Convenience wrappers over the interface (they also keep the counters). */
vt_status vt_backend_buffer_alloc(vt_backend *be, size_t size, vt_buffer **out);
void vt_backend_buffer_free(vt_buffer *buf);
bool vt_backend_supports(vt_backend *be, const vt_node *n);
/* Validates, then computes. An unsupported node is VT_ERR_UNSUPPORTED, never a silent fallback. */
vt_status vt_backend_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx);
vt_status vt_backend_graph_compute(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx);
void vt_graph_exec_reset(vt_backend *be, vt_graph_exec *exec); /* frees be_state */
vt_status vt_backend_sync(vt_backend *be);

#ifdef __cplusplus
}
#endif
#endif
