/* Vulkan backend internals shared by its source files: the device context, the suballocator,
 * pipelines keyed by shader + specialization constants, and the dispatch recorder. */
#ifndef VT_VK_INTERNAL_H
#define VT_VK_INTERNAL_H

#include <vulkan/vulkan.h>

#include "vt/backend.h"

#define VK_MAX_BIND     8 /* storage buffers per dispatch, binding 8 is the step context */
#define VK_CTX_BINDING  8
/* Bindings 9 and 10: operands 0 and 1 as uniform texel buffers (rgba32f) for shaders that read them
 * with texelFetch (vk_arg.texel): CPU drivers fetch texels with vector loads, storage buffers lane
 * by lane. */
#define VK_TEX_BINDING  9
#define VK_MAX_TEX      2
/* Bindings 11-13: operands 2-4 as storage texel buffers (imageLoad/imageStore) for the element-wise
 * shader's texel twin, which reads and writes its in-place operands that way. */
#define VK_IMG_BINDING  11
#define VK_MAX_IMG      3
#define VK_MAX_SPEC     9    /* op specialization constants after the three workgroup sizes */
#define VK_CTX_SLOT     256  /* bytes per step-context slot (>= any minStorageBufferOffsetAlignment) */
#define VK_CTX_ADAM_OFF 32   /* where the step context's Adam scalars start (one vec4 per Adam node) */
#define VK_RING_SLOTS   1024 /* one-off dispatches recorded before a forced flush */

vt_status vt_vk_fail_at(const char *file, int line, VkResult r, const char *call);
#define VK_CHECK(call)                                                                   \
    do {                                                                                 \
        VkResult vk_r_ = (call);                                                         \
        if (vk_r_ != VK_SUCCESS) return vt_vk_fail_at(__FILE__, __LINE__, vk_r_, #call); \
    } while (0)

/* One large VkDeviceMemory + VkBuffer, handed out in ranges (first fit, coalescing free list). */
typedef struct vk_range {
    VkDeviceSize off, size;
} vk_range;
typedef struct vk_block {
    VkDeviceMemory mem;
    VkBuffer buf;
    VkDeviceSize size;
    void *map;            /* persistently mapped when the memory is host visible */
    VkBufferView view[2]; /* the whole block as rgba32f / r32f texels, made on first use */
    vk_range *free_list;
    int n_free, cap_free;
    int dedicated;
} vk_block;

/* What vt_buffer.handle points to. */
typedef struct vk_alloc {
    vk_block *block;
    VkDeviceSize off, size;
} vk_alloc;

typedef struct vk_pipe {
    int shader;
    uint32_t spec[3 + VK_MAX_SPEC];
    VkPipeline pipe;
} vk_pipe;

/* A host-visible buffer of step-context slots. */
typedef struct vk_hostbuf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;
    VkDeviceSize size;
} vk_hostbuf;

/* Byte range touched by a recorded dispatch, for barrier placement. */
typedef struct vk_touch {
    const vk_block *block;
    VkDeviceSize lo, hi;
    int write;
} vk_touch;

/* Records dispatches into one command buffer with only the barriers the data flow needs. */
typedef struct vk_rec {
    VkCommandBuffer cb;
    VkDescriptorPool pool;
    VkBuffer ctx_buf;
    VkDeviceSize ctx_off;
    VkDeviceSize ctx_range; /* bytes of the step context bound (0: VK_CTX_SLOT) */
    uint32_t n_adam;        /* Adam nodes recorded so far: the next one's slot in the context */
    vk_touch *touched;
    int n_touched, cap_touched;
    uint32_t dispatches, barriers;
} vk_rec;

/* A tensor-like operand of a dispatch: bytes [off, off+size) of an allocation. */
typedef struct vk_arg {
    const vk_alloc *alloc;
    VkDeviceSize off, size;
    uint32_t esize; /* element size for the push-constant element offset */
    int write;
    int texel; /* 1 rgba32f, 2 r32f texels (offset in texels): operands 0-1 at VK_TEX_BINDING + i,
                         2-4 at VK_IMG_BINDING + i - 2 */
} vk_arg;

typedef struct vk_graph_state vk_graph_state;

typedef struct vk_ctx {
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pdev;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    uint32_t dev_type, host_type; /* memory types for blocks and for staging/context */
    int uma;                      /* blocks are host visible + coherent: copy with memcpy */
    VkDeviceSize heap_size, align, block_size, max_range;
    vk_block **blocks;
    int n_blocks, cap_blocks;
    vk_hostbuf staging;
    VkCommandPool cmd_pool;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache pcache;
    VkShaderModule *modules;
    vk_pipe *pipes;
    int n_pipes, cap_pipes;
    /* one-off work from compute_node, batched until the next synchronisation point */
    vk_rec pend;
    VkFence pend_fence;
    int pend_open;
    vk_hostbuf ring;
    uint32_t ring_next;
    vk_graph_state **inflight;
    int n_inflight, cap_inflight;
    vt_buffer *dummy;
    vt_buffer **scratch;
    int n_scratch;
    /* tile shapes picked for this device */
    uint32_t gemm_tm, gemm_tn, gemm_lx, gemm_ly; /* register-blocked shaders */
    uint32_t tile_tm, tile_tn, tile_lx, tile_ly; /* shared-memory tiles */
    int no_texel;                                /* option texel=0: every operand through storage buffers */
    int subgroup; /* workgroup sums with subgroup arithmetic (device support; option subgroup=0 turns off) */
    uint32_t subgroup_size;
    int gemm_tiled; /* GEMMs and convolutions with shared-memory tiles (GPUs; option gemm=tiled|registers) */
    int validation;
    int validation_error;
    char validation_msg[768];
    char cache_path[512];
} vk_ctx;

struct vk_graph_state {
    VkCommandBuffer cb;
    VkFence fence;
    VkDescriptorPool pool;
    vk_hostbuf ctxbuf;
    uint32_t dispatches, barriers;
    int pending;
};

/* vk_backend.c */
vt_status vt_vk_check_validation(vk_ctx *c);
vt_status vt_vk_scratch(vt_backend *be, VkDeviceSize bytes, vt_buffer **out);

vt_status vt_vk_rec_dispatch(vt_backend *be, vk_rec *rec, int shader, const uint32_t *spec, int nspec,
                             const vk_arg *args, int nargs, const uint32_t *pu, int npu, const float *pf, int npf,
                             uint32_t gx, uint32_t gy, uint32_t gz);
void vt_vk_rec_barrier(vk_rec *rec);

/* vk_ops.c: shader table, pipelines and the per-op encoders */
vt_status vt_vk_pipeline_get(vt_backend *be, int shader, const uint32_t *spec, VkPipeline *out);
void vt_vk_pipes_destroy(vk_ctx *c);
int vt_vk_shader_count(void);
vt_status vt_vk_record_node(vt_backend *be, vk_rec *rec, const vt_node *n);
bool vt_vk_supports_node(vt_backend *be, const vt_node *n);

#endif
