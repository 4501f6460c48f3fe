/* Private declarations shared by the OpenCL backend's host files: the backend context, the kernel
 * table, the cl-error macro and the launch helpers. Nothing here is exported from the library. */
#ifndef VT_OCL_INTERNAL_H
#define VT_OCL_INTERNAL_H

#include <CL/cl.h>

#include "vt/backend.h"

/* Programs: one per shaders/opencl/<name>.cl, each built with vt/act_formulas.h and common.cl in front. */
typedef enum vt_ocl_prog {
    VT_OCL_PROG_ELEMENTWISE,
    VT_OCL_PROG_CONV,
    VT_OCL_PROG_POOL,
    VT_OCL_PROG_REDUCE,
    VT_OCL_PROG_SOFTMAX,
    VT_OCL_PROG_DATA,
    VT_OCL_PROG_COUNT
} vt_ocl_prog;

typedef enum vt_ocl_kern {
    VT_OCL_K_ACT_FWD,
    VT_OCL_K_ACT_BWD,
    VT_OCL_K_ADD,
    VT_OCL_K_DROPOUT,
    VT_OCL_K_BIAS_ACT,
    VT_OCL_K_GEMM_NT4,
    VT_OCL_K_SGD,
    VT_OCL_K_ADAM,
    VT_OCL_K_NONFINITE,
    VT_OCL_K_IM2COL,
    VT_OCL_K_COL2IM,
    VT_OCL_K_CONV_SCATTER,
    VT_OCL_K_CONV_GATHER,
    VT_OCL_K_CONV_FLIP,
    VT_OCL_K_CONV_ROWS16,
    VT_OCL_K_CONV_DW16,
    VT_OCL_K_CONV_PAD,
    VT_OCL_K_CONV_DIRECT16,
    VT_OCL_K_CONV_DW_DIRECT,
    VT_OCL_K_POOL_FWD,
    VT_OCL_K_POOL_BWD,
    VT_OCL_K_POOL_BWD_DISJOINT,
    VT_OCL_K_POOL_ARGMAX,
    VT_OCL_K_POOL_BWD_IDX,
    VT_OCL_K_BIAS_GRAD,
    VT_OCL_K_BIAS_GRAD_ROWS,
    VT_OCL_K_BN_STATS,
    VT_OCL_K_BN_STATS_ROWS,
    VT_OCL_K_BN_EVAL_SAVE,
    VT_OCL_K_BN_APPLY,
    VT_OCL_K_BN_BWD_REDUCE,
    VT_OCL_K_BN_BWD_REDUCE_ROWS,
    VT_OCL_K_BN_BWD_APPLY,
    VT_OCL_K_BN_SYNC_STATS,
    VT_OCL_K_BN_SYNC_STATS_ROWS,
    VT_OCL_K_BN_SYNC_RUNNING,
    VT_OCL_K_CE_ROWS,
    VT_OCL_K_CE_REDUCE,
    VT_OCL_K_CE_BWD,
    VT_OCL_K_ARGMAX,
    VT_OCL_K_CONFUSION,
    VT_OCL_K_BATCH_PREP,
    VT_OCL_K_UPSAMPLE,
    VT_OCL_K_UPSAMPLE_BWD,
    VT_OCL_K_COUNT
} vt_ocl_kern;

/* Work-group size of the per-channel reductions (a power of two; every OpenCL 1.2 device
 * allows at least this many items per group). */
#define VT_OCL_RED_LS 128
/* Work-group size (along the first dimension) of every other launch. */
#define VT_OCL_LS     64

/* Host staging copies of non-blocking writes, freed once the queue has passed them. */
typedef struct vt_ocl_staging {
    void *data;
    struct vt_ocl_staging *next;
} vt_ocl_staging;

typedef struct vt_ocl_ctx {
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
    cl_program programs[VT_OCL_PROG_COUNT];
    cl_kernel kernels[VT_OCL_K_COUNT];
    char build_opts[512];
    cl_ulong max_alloc, global_mem;
    /* Scratch for im2col / GEMM output / per-row losses; grows on demand, never shrinks. */
    cl_mem ws;
    size_t ws_size;
    vt_ocl_staging *staging;
    size_t staging_bytes;
    int dirty;               /* commands enqueued since the last flush */
    int gemm_switch;         /* 1: each GEMM picks CLBlast's direct or indirect kernel by its shape */
    char clblast_tuning[48]; /* where the Xgemm parameters came from; empty: CLBlast's own */
    int conv_rows;           /* convolutions of 16 or 32 channels through our own kernels (conv.cl) */
    int gemm_nt;             /* batch-sized x W^T products through vt_gemm_nt4 */
} vt_ocl_ctx;

const char *vt_ocl_err_name(cl_int err);
/* Maps a failed call to VT_ERR_OOM / VT_ERR_DEVICE_LOST / VT_ERR_DEVICE with the call, the code
 * name and where it happened. */
vt_status vt_ocl_fail(const char *file, int line, const char *call, cl_int err);
#define VT_OCL_CHECK(call)                                                                     \
    do {                                                                                       \
        cl_int vt_ocl_e_ = (call);                                                             \
        if (vt_ocl_e_ != CL_SUCCESS) return vt_ocl_fail(__FILE__, __LINE__, #call, vt_ocl_e_); \
    } while (0)

static inline vt_ocl_ctx *vt_ocl_of(vt_backend *be) { return (vt_ocl_ctx *)be->context; }
static inline cl_mem vt_ocl_mem(const vt_tensor *t) { return (cl_mem)t->buf->handle; }
/* Tensor offsets are in bytes; kernels and CLBlast take elements. */
static inline cl_ulong vt_ocl_eoff(const vt_tensor *t) { return (cl_ulong)(t->offset / vt_dtype_size(t->dtype)); }

vt_status vt_ocl_kernel(vt_backend *be, vt_ocl_kern id, cl_kernel *out);
/* Makes sure the scratch buffer holds at least bytes. */
vt_status vt_ocl_workspace(vt_backend *be, size_t bytes, cl_mem *out);

/* Argument list for one launch; the first failing clSetKernelArg is kept and reported. */
typedef struct vt_ocl_args {
    cl_kernel k;
    cl_uint n;
    cl_int err;
    const char *what;
} vt_ocl_args;

void vt_ocl_arg(vt_ocl_args *a, size_t size, const void *value);
static inline void vt_ocl_arg_mem(vt_ocl_args *a, cl_mem m) { vt_ocl_arg(a, sizeof m, &m); }
static inline void vt_ocl_arg_int(vt_ocl_args *a, int v) {
    cl_int x = v;
    vt_ocl_arg(a, sizeof x, &x);
}
static inline void vt_ocl_arg_uint(vt_ocl_args *a, uint32_t v) {
    cl_uint x = v;
    vt_ocl_arg(a, sizeof x, &x);
}
static inline void vt_ocl_arg_ulong(vt_ocl_args *a, cl_ulong v) { vt_ocl_arg(a, sizeof v, &v); }
static inline void vt_ocl_arg_long(vt_ocl_args *a, int64_t v) {
    cl_long x = v;
    vt_ocl_arg(a, sizeof x, &x);
}
static inline void vt_ocl_arg_float(vt_ocl_args *a, float v) {
    cl_float x = v;
    vt_ocl_arg(a, sizeof x, &x);
}
/* A tensor is two arguments: its cl_mem and its element offset. */
static inline void vt_ocl_arg_tensor(vt_ocl_args *a, const vt_tensor *t) {
    vt_ocl_arg_mem(a, vt_ocl_mem(t));
    vt_ocl_arg_ulong(a, vt_ocl_eoff(t));
}

vt_status vt_ocl_begin(vt_backend *be, vt_ocl_kern id, vt_ocl_args *a);
/* Enqueues a 1-D range of `items` in groups of `local` (0: VT_OCL_LS); global is rounded up. */
vt_status vt_ocl_launch(vt_backend *be, vt_ocl_args *a, size_t items, size_t local);
/* Enqueues an x*y*z range in groups of VT_OCL_LS x 1 x 1; x is rounded up. */
vt_status vt_ocl_launch3(vt_backend *be, vt_ocl_args *a, size_t x, size_t y, size_t z);

/* The op dispatcher (ocl_ops.c). */
bool vt_ocl_supports(vt_backend *be, const vt_node *n);
vt_status vt_ocl_compute(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx);
/* Applies tuned CLBlast Xgemm parameters for devices CLBlast's database lacks (see ocl_ops.c);
 * xgemm is the clblast_xgemm option (NULL when absent). */
vt_status vt_ocl_tune_clblast(vt_backend *be, const char *xgemm);

#endif
