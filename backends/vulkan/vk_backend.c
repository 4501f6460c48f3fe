/* Vulkan backend: device enumeration and registration, the memory suballocator, transfers, the
 * dispatch recorder with data-flow barriers, recorded graphs and submission / synchronisation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"
#include "vt/registry.h"

/* ---- errors ---- */

/* clang-format off */
static const char *vk_result_name(VkResult r) {
    switch (r) {
#define N(x) case x: return #x;
    N(VK_SUCCESS) N(VK_NOT_READY) N(VK_TIMEOUT) N(VK_INCOMPLETE) N(VK_ERROR_OUT_OF_HOST_MEMORY)
    N(VK_ERROR_OUT_OF_DEVICE_MEMORY) N(VK_ERROR_INITIALIZATION_FAILED) N(VK_ERROR_DEVICE_LOST)
    N(VK_ERROR_MEMORY_MAP_FAILED) N(VK_ERROR_LAYER_NOT_PRESENT) N(VK_ERROR_EXTENSION_NOT_PRESENT)
    N(VK_ERROR_FEATURE_NOT_PRESENT) N(VK_ERROR_INCOMPATIBLE_DRIVER) N(VK_ERROR_TOO_MANY_OBJECTS)
    N(VK_ERROR_FORMAT_NOT_SUPPORTED) N(VK_ERROR_FRAGMENTED_POOL) N(VK_ERROR_OUT_OF_POOL_MEMORY)
    N(VK_ERROR_INVALID_EXTERNAL_HANDLE) N(VK_ERROR_UNKNOWN) N(VK_ERROR_INVALID_SHADER_NV)
#undef N
    default: return "VK_ERROR_(unnamed)";
    }
}
/* clang-format on */

vt_status vt_vk_fail_at(const char *file, int line, VkResult r, const char *call) {
    vt_status s = VT_ERR_DEVICE;
    if (r == VK_ERROR_DEVICE_LOST) s = VT_ERR_DEVICE_LOST;
    else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) s = VT_ERR_OOM;
    /* keep only the function name of the call expression */
    char fn[64];
    size_t k = 0;
    while (call[k] && call[k] != '(' && k + 1 < sizeof fn) {
        fn[k] = call[k];
        k++;
    }
    fn[k] = 0;
    return vt_set_error_at(file, line, s, "vulkan: %s failed: %s (%d)", fn, vk_result_name(r), (int)r);
}

static VKAPI_ATTR VkBool32 VKAPI_CALL vk_debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                  VkDebugUtilsMessageTypeFlagsEXT type,
                                                  const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)type;
    vk_ctx *c = user;
    if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
        vt_log(VT_LOG_ERROR, "vulkan validation: %s", data->pMessage);
        if (c && !c->validation_error) {
            c->validation_error = 1;
            snprintf(c->validation_msg, sizeof c->validation_msg, "%s", data->pMessage);
        }
    } else if (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        vt_log(VT_LOG_WARN, "vulkan validation warning: %s", data->pMessage);
    }
    return VK_FALSE;
}

vt_status vt_vk_check_validation(vk_ctx *c) {
    if (!c->validation_error) return VT_OK;
    c->validation_error = 0;
    return vt_error(VT_ERR_DEVICE, "vulkan validation error: %s", c->validation_msg);
}

/* ---- instance and device enumeration ---- */

static int vk_type_order(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static vt_status vk_instance_create(int validation, vk_ctx *c, VkInstance *out) {
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "vtrain",
                             .pEngineName = "vtrain",
                             .apiVersion = VK_API_VERSION_1_1};
    const char *layers[1] = {"VK_LAYER_KHRONOS_validation"};
    const char *exts[1] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    if (validation) {
        uint32_t n = 0;
        vkEnumerateInstanceLayerProperties(&n, NULL);
        VkLayerProperties *lp = calloc(n ? n : 1, sizeof *lp);
        if (!lp) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
        vkEnumerateInstanceLayerProperties(&n, lp);
        int found = 0;
        for (uint32_t i = 0; i < n; i++) found |= strcmp(lp[i].layerName, layers[0]) == 0;
        free(lp);
        if (!found)
            return vt_error(VT_ERR_NOT_FOUND, "vulkan: validation asked for but %s is not installed", layers[0]);
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        ci.enabledExtensionCount = 1;
        ci.ppEnabledExtensionNames = exts;
    }
    VK_CHECK(vkCreateInstance(&ci, NULL, out));
    if (validation && c) {
        PFN_vkCreateDebugUtilsMessengerEXT fn =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        if (!fn) return vt_error(VT_ERR_DEVICE, "vulkan: vkCreateDebugUtilsMessengerEXT is missing");
        VkDebugUtilsMessengerCreateInfoEXT mi = {.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
                                                 .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                                                    VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
                                                 .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                                                                VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                                                                VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
                                                 .pfnUserCallback = vk_debug_cb,
                                                 .pUserData = c};
        VK_CHECK(fn(*out, &mi, NULL, &c->messenger));
    }
    return VT_OK;
}

/* Physical devices that have a compute queue, in the order discrete, integrated, virtual, CPU. */
static vt_status vk_physical_devices(VkInstance inst, VkPhysicalDevice *out, int max, int *count) {
    uint32_t n = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(inst, &n, NULL));
    VkPhysicalDevice *all = calloc(n ? n : 1, sizeof *all);
    if (!all) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, all);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(all);
        return vt_vk_fail_at(__FILE__, __LINE__, r, "vkEnumeratePhysicalDevices");
    }
    int k = 0;
    for (int order = 0; order <= 4; order++) {
        for (uint32_t i = 0; i < n && k < max; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(all[i], &p);
            if (vk_type_order(p.deviceType) != order || p.apiVersion < VK_API_VERSION_1_1) continue;
            uint32_t nq = 0;
            vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, NULL);
            VkQueueFamilyProperties qp[16];
            if (nq > 16) nq = 16;
            vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, qp);
            int has = 0;
            for (uint32_t q = 0; q < nq; q++) has |= (qp[q].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
            if (has) out[k++] = all[i];
        }
    }
    free(all);
    *count = k;
    return VT_OK;
}

static void vk_fill_info(VkPhysicalDevice pd, vt_device_info *info) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    memset(info, 0, sizeof *info);
    snprintf(info->backend, sizeof info->backend, "vulkan");
    snprintf(info->name, sizeof info->name, "%.127s", p.deviceName);
    const char *vendor = NULL;
    switch (p.vendorID) {
    case 0x10DE: vendor = "NVIDIA"; break;
    case 0x1002: vendor = "AMD"; break;
    case 0x8086: vendor = "Intel"; break;
    case 0x13B5: vendor = "ARM"; break;
    case 0x5143: vendor = "Qualcomm"; break;
    case 0x106B: vendor = "Apple"; break;
    case 0x10005: vendor = "Mesa"; break;
    default: break;
    }
    if (vendor) snprintf(info->vendor, sizeof info->vendor, "%s", vendor);
    else snprintf(info->vendor, sizeof info->vendor, "0x%04x", p.vendorID);
    snprintf(info->driver, sizeof info->driver, "Vulkan %u.%u.%u, driver 0x%x", VK_API_VERSION_MAJOR(p.apiVersion),
             VK_API_VERSION_MINOR(p.apiVersion), VK_API_VERSION_PATCH(p.apiVersion), p.driverVersion);
    const char *type = "other";
    if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) type = "gpu";
    else if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU) type = "integrated";
    else if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) type = "cpu";
    snprintf(info->type, sizeof info->type, "%s", type);
    info->is_cpu_hosted = p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    for (uint32_t h = 0; h < mp.memoryHeapCount; h++)
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp.memoryHeaps[h].size > info->memory_bytes)
            info->memory_bytes = mp.memoryHeaps[h].size;
    info->compute_units = 0; /* Vulkan 1.1 does not report it */
    info->peak_gflops = 0.0;
}

/* Enumeration is cached: the registry asks for counts and infos many times. */
static int vk_enum_done = 0;
static int vk_enum_count = 0;
static vt_device_info vk_enum_info[8];

static void vk_enumerate_once(void) {
    if (vk_enum_done) return;
    vk_enum_done = 1;
    VkInstance inst;
    if (vk_instance_create(0, NULL, &inst) != VT_OK) return;
    VkPhysicalDevice pds[8];
    int n = 0;
    if (vk_physical_devices(inst, pds, 8, &n) == VT_OK) {
        for (int i = 0; i < n; i++) vk_fill_info(pds[i], &vk_enum_info[i]);
        vk_enum_count = n;
    }
    vkDestroyInstance(inst, NULL);
}

static int vk_device_count(void) {
    vk_enumerate_once();
    return vk_enum_count;
}

static vt_status vk_device_info(int index, vt_device_info *out) {
    vk_enumerate_once();
    if (index < 0 || index >= vk_enum_count)
        return vt_error(VT_ERR_NOT_FOUND, "vulkan: device %d asked, %d present", index, vk_enum_count);
    *out = vk_enum_info[index];
    return VT_OK;
}

/* ---- memory ---- */

static int vk_find_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
        if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

/* Block memory: the device-local type of the largest device-local heap, host visible + coherent in that
 * heap when offered (lavapipe, integrated GPUs); a host-visible type when there is no device-local heap. */
static void vk_pick_memory(vk_ctx *c) {
    const VkPhysicalDeviceMemoryProperties *mp = &c->memprops;
    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int best_heap = -1;
    for (uint32_t h = 0; h < mp->memoryHeapCount; h++)
        if ((mp->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (best_heap < 0 || mp->memoryHeaps[h].size > mp->memoryHeaps[best_heap].size))
            best_heap = (int)h;
    int dev = -1, dev_hv = -1;
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        if ((int)mp->memoryTypes[i].heapIndex != best_heap) continue;
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if (!(f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) continue;
        if ((f & hv) == hv && dev_hv < 0) dev_hv = (int)i;
        if (dev < 0) dev = (int)i;
    }
    c->host_type = (uint32_t)vk_find_type(mp, ~0u, hv | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if ((int)c->host_type < 0) c->host_type = (uint32_t)vk_find_type(mp, ~0u, hv);
    if (dev_hv >= 0) {
        c->dev_type = (uint32_t)dev_hv;
        c->uma = 1;
    } else if (dev >= 0) {
        c->dev_type = (uint32_t)dev;
        c->uma = 0;
    } else {
        c->dev_type = c->host_type;
        c->uma = 1;
    }
    c->heap_size = mp->memoryHeaps[mp->memoryTypes[c->dev_type].heapIndex].size;
}

static vt_status vk_make_buffer(vk_ctx *c, VkDeviceSize size, uint32_t type, VkBuffer *buf, VkDeviceMemory *mem,
                                void **map, const char *what) {
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                      VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult cr = vkCreateBuffer(c->dev, &bi, NULL, buf);
    if (cr != VK_SUCCESS) {
        vt_vk_fail_at(__FILE__, __LINE__, cr, "vkCreateBuffer");
        return vt_error(cr == VK_ERROR_DEVICE_LOST ? VT_ERR_DEVICE_LOST : VT_ERR_OOM,
                        "vulkan: %s: vkCreateBuffer of %llu bytes failed (%s)", what, (unsigned long long)size,
                        vk_result_name(cr));
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->dev, *buf, &req);
    if (!(req.memoryTypeBits & (1u << type))) {
        vkDestroyBuffer(c->dev, *buf, NULL);
        return vt_error(VT_ERR_DEVICE, "vulkan: %s: memory type %u cannot hold storage buffers", what, type);
    }
    VkMemoryAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = type};
    VkResult r = vkAllocateMemory(c->dev, &ai, NULL, mem);
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(c->dev, *buf, NULL);
        uint32_t heap = c->memprops.memoryTypes[type].heapIndex;
        vt_vk_fail_at(__FILE__, __LINE__, r, "vkAllocateMemory");
        return vt_error(
            r == VK_ERROR_DEVICE_LOST ? VT_ERR_DEVICE_LOST : VT_ERR_OOM,
            "vulkan: %s: vkAllocateMemory of %llu bytes failed (%s); heap %u has %llu bytes, %d blocks in use", what,
            (unsigned long long)req.size, vk_result_name(r), heap,
            (unsigned long long)c->memprops.memoryHeaps[heap].size, c->n_blocks);
    }
    VK_CHECK(vkBindBufferMemory(c->dev, *buf, *mem, 0));
    *map = NULL;
    if (c->memprops.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        VK_CHECK(vkMapMemory(c->dev, *mem, 0, VK_WHOLE_SIZE, 0, map));
    return VT_OK;
}

static vt_status vk_hostbuf_create(vk_ctx *c, VkDeviceSize size, vk_hostbuf *hb, const char *what) {
    memset(hb, 0, sizeof *hb);
    hb->size = size;
    VT_TRY(vk_make_buffer(c, size, c->host_type, &hb->buf, &hb->mem, &hb->map, what));
    memset(hb->map, 0, size);
    return VT_OK;
}

static void vk_hostbuf_destroy(vk_ctx *c, vk_hostbuf *hb) {
    if (hb->buf) vkDestroyBuffer(c->dev, hb->buf, NULL);
    if (hb->mem) vkFreeMemory(c->dev, hb->mem, NULL);
    memset(hb, 0, sizeof *hb);
}

static vt_status vk_block_new(vk_ctx *c, VkDeviceSize size, int dedicated, vk_block **out) {
    vk_block *b = calloc(1, sizeof *b);
    if (!b) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    b->size = size;
    b->dedicated = dedicated;
    vt_status s = vk_make_buffer(c, size, c->dev_type, &b->buf, &b->mem, &b->map, "device block");
    if (s != VT_OK) {
        free(b);
        return s;
    }
    b->cap_free = 8;
    b->free_list = malloc(sizeof(vk_range) * (size_t)b->cap_free);
    if (!b->free_list) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    b->free_list[0] = (vk_range){0, size};
    b->n_free = 1;
    if (c->n_blocks == c->cap_blocks) {
        int cap = c->cap_blocks ? 2 * c->cap_blocks : 8;
        vk_block **nb = realloc(c->blocks, sizeof *nb * (size_t)cap);
        if (!nb) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
        c->blocks = nb;
        c->cap_blocks = cap;
    }
    c->blocks[c->n_blocks++] = b;
    *out = b;
    return VT_OK;
}

static void vk_block_destroy(vk_ctx *c, vk_block *b) {
    for (int i = 0; i < 2; i++)
        if (b->view[i]) vkDestroyBufferView(c->dev, b->view[i], NULL);
    vkDestroyBuffer(c->dev, b->buf, NULL);
    vkFreeMemory(c->dev, b->mem, NULL);
    free(b->free_list);
    free(b);
}

static int vk_block_take(vk_block *b, VkDeviceSize size, VkDeviceSize align, VkDeviceSize *off) {
    for (int i = 0; i < b->n_free; i++) {
        vk_range *r = &b->free_list[i];
        VkDeviceSize start = (r->off + align - 1) / align * align;
        if (start + size > r->off + r->size) continue;
        VkDeviceSize end = start + size, rend = r->off + r->size;
        /* split into the head gap and tail gap; the head is never larger than align */
        if (start > r->off && end < rend) {
            if (b->n_free == b->cap_free) {
                int cap = 2 * b->cap_free;
                vk_range *nr = realloc(b->free_list, sizeof *nr * (size_t)cap);
                if (!nr) return 0;
                b->free_list = nr;
                b->cap_free = cap;
                r = &b->free_list[i];
            }
            memmove(&b->free_list[i + 2], &b->free_list[i + 1], sizeof *r * (size_t)(b->n_free - i - 1));
            b->free_list[i] = (vk_range){r->off, start - r->off};
            b->free_list[i + 1] = (vk_range){end, rend - end};
            b->n_free++;
        } else if (start > r->off) {
            r->size = start - r->off;
        } else if (end < rend) {
            r->off = end;
            r->size = rend - end;
        } else {
            memmove(&b->free_list[i], &b->free_list[i + 1], sizeof *r * (size_t)(b->n_free - i - 1));
            b->n_free--;
        }
        *off = start;
        return 1;
    }
    return 0;
}

static void vk_block_give(vk_block *b, VkDeviceSize off, VkDeviceSize size) {
    int i = 0;
    while (i < b->n_free && b->free_list[i].off < off) i++;
    if (b->n_free == b->cap_free) {
        int cap = 2 * b->cap_free;
        vk_range *nr = realloc(b->free_list, sizeof *nr * (size_t)cap);
        if (!nr) return; /* leaks the range rather than corrupting the list */
        b->free_list = nr;
        b->cap_free = cap;
    }
    memmove(&b->free_list[i + 1], &b->free_list[i], sizeof(vk_range) * (size_t)(b->n_free - i));
    b->free_list[i] = (vk_range){off, size};
    b->n_free++;
    if (i + 1 < b->n_free && b->free_list[i].off + b->free_list[i].size == b->free_list[i + 1].off) {
        b->free_list[i].size += b->free_list[i + 1].size;
        memmove(&b->free_list[i + 1], &b->free_list[i + 2], sizeof(vk_range) * (size_t)(b->n_free - i - 2));
        b->n_free--;
    }
    if (i > 0 && b->free_list[i - 1].off + b->free_list[i - 1].size == b->free_list[i].off) {
        b->free_list[i - 1].size += b->free_list[i].size;
        memmove(&b->free_list[i], &b->free_list[i + 1], sizeof(vk_range) * (size_t)(b->n_free - i - 1));
        b->n_free--;
    }
}

/* ---- one-shot command buffers (transfers, fills) ---- */

static vt_status vk_oneshot_begin(vk_ctx *c, VkCommandBuffer *cb) {
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VK_CHECK(vkAllocateCommandBuffers(c->dev, &ai, cb));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(*cb, &bi));
    vk_rec tmp = {.cb = *cb};
    vt_vk_rec_barrier(&tmp);
    return VT_OK;
}

static void vk_host_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

static vt_status vk_submit_wait(vk_ctx *c, VkCommandBuffer cb) {
    vk_host_barrier(cb);
    VK_CHECK(vkEndCommandBuffer(cb));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence f;
    VK_CHECK(vkCreateFence(c->dev, &fi, NULL, &f));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb};
    VkResult r = vkQueueSubmit(c->queue, 1, &si, f);
    if (r == VK_SUCCESS) r = vkWaitForFences(c->dev, 1, &f, VK_TRUE, UINT64_MAX);
    vkDestroyFence(c->dev, f, NULL);
    vkFreeCommandBuffers(c->dev, c->cmd_pool, 1, &cb);
    if (r != VK_SUCCESS) return vt_vk_fail_at(__FILE__, __LINE__, r, "vkQueueSubmit/vkWaitForFences");
    return VT_OK;
}

/* ---- submission of batched one-off work and recorded graphs ---- */

static vt_status vk_pend_begin(vk_ctx *c) {
    if (c->pend_open) return VT_OK;
    VK_CHECK(vkResetDescriptorPool(c->dev, c->pend.pool, 0));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(c->pend.cb, &bi));
    c->pend.n_touched = 0;
    c->pend.dispatches = 0;
    vt_vk_rec_barrier(&c->pend); /* orders against earlier submissions on the queue */
    c->pend_open = 1;
    c->ring_next = 0;
    return VT_OK;
}

/* Submits the batched one-off work, waits for it and every recorded graph still running.
 * counted: whether this wait counts as a sync (synchronize() is counted by the core wrapper). */
static vt_status vk_drain(vt_backend *be, int counted) {
    vk_ctx *c = be->context;
    int waited = 0;
    if (c->pend_open) {
        c->pend_open = 0;
        vk_host_barrier(c->pend.cb);
        VK_CHECK(vkEndCommandBuffer(c->pend.cb));
        VkSubmitInfo si = {
            .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->pend.cb};
        VK_CHECK(vkResetFences(c->dev, 1, &c->pend_fence));
        VK_CHECK(vkQueueSubmit(c->queue, 1, &si, c->pend_fence));
        be->counters.submits++;
        VK_CHECK(vkWaitForFences(c->dev, 1, &c->pend_fence, VK_TRUE, UINT64_MAX));
        waited = 1;
    }
    for (int i = 0; i < c->n_inflight; i++) {
        vk_graph_state *g = c->inflight[i];
        if (!g->pending) continue;
        VK_CHECK(vkWaitForFences(c->dev, 1, &g->fence, VK_TRUE, UINT64_MAX));
        g->pending = 0;
        waited = 1;
    }
    if (waited && counted) be->counters.syncs++;
    return vt_vk_check_validation(c);
}

static vt_status vk_synchronize(vt_backend *be) { return vk_drain(be, 0); }

/* ---- the recorder ---- */

void vt_vk_rec_barrier(vk_rec *rec) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask =
                              VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    vkCmdPipelineBarrier(
        rec->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    rec->n_touched = 0;
    rec->barriers++;
}

static int vk_overlap(const vk_touch *t, const vk_block *b, VkDeviceSize lo, VkDeviceSize hi) {
    return t->block == b && lo < t->hi && t->lo < hi;
}

/* The block as texels of 16 bytes (kind 1, rgba32f) or 4 (kind 2, r32f), capped at
 * maxTexelBufferElements; made once and kept with the block. */
static vt_status vk_block_view(vk_ctx *c, vk_block *b, int kind, VkBufferView *out) {
    VkBufferView *v = &b->view[kind == 1 ? 0 : 1];
    if (!*v) {
        VkDeviceSize tb = kind == 1 ? 16 : 4, texels = b->size / tb, cap = c->props.limits.maxTexelBufferElements;
        if (texels > cap) texels = cap;
        VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                     .buffer = b->buf,
                                     .format = kind == 1 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
                                     .offset = 0,
                                     .range = texels * tb};
        VK_CHECK(vkCreateBufferView(c->dev, &vi, NULL, v));
    }
    *out = *v;
    return VT_OK;
}

vt_status vt_vk_rec_dispatch(vt_backend *be, vk_rec *rec, int shader, const uint32_t *spec, int nspec,
                             const vk_arg *args, int nargs, const uint32_t *pu, int npu, const float *pf, int npf,
                             uint32_t gx, uint32_t gy, uint32_t gz) {
    vk_ctx *c = be->context;
    if (gx == 0 || gy == 0 || gz == 0) return VT_OK;
    uint32_t full_spec[3 + VK_MAX_SPEC] = {0};
    for (int i = 0; i < 3 + nspec && i < 3 + VK_MAX_SPEC; i++) full_spec[i] = spec[i];
    VkPipeline pipe;
    VT_TRY(vt_vk_pipeline_get(be, shader, full_spec, &pipe));

    /* descriptors: binding i covers the operand, starting at the alignment boundary below it */
    struct {
        uint32_t off[8];
        uint32_t u[16];
        float f[8];
    } push;
    memset(&push, 0, sizeof push);
    VkDescriptorBufferInfo infos[VK_MAX_BIND + 1];
    const vk_alloc *dummy = c->dummy->handle;
    for (int i = 0; i < VK_MAX_BIND; i++) {
        const vk_arg *a = i < nargs && args[i].alloc ? &args[i] : NULL;
        if (!a) {
            infos[i] = (VkDescriptorBufferInfo){dummy->block->buf, dummy->off, dummy->size};
            continue;
        }
        VkDeviceSize abs = a->alloc->off + a->off;
        VkDeviceSize base = abs / c->align * c->align;
        VkDeviceSize range = (abs - base + a->size + 3) / 4 * 4;
        if (range > c->max_range)
            return vt_error(VT_ERR_UNSUPPORTED, "vulkan: operand of %llu bytes exceeds maxStorageBufferRange %llu",
                            (unsigned long long)a->size, (unsigned long long)c->max_range);
        if (base + range > a->alloc->block->size) range = a->alloc->block->size - base;
        infos[i] = (VkDescriptorBufferInfo){a->alloc->block->buf, base, range};
        push.off[i] = (uint32_t)((abs - base) / (a->esize ? a->esize : 4));
    }
    infos[VK_CTX_BINDING] =
        (VkDescriptorBufferInfo){rec->ctx_buf, rec->ctx_off, rec->ctx_range ? rec->ctx_range : VK_CTX_SLOT};
    /* texel bindings: the operand's whole block as one view, the operand's start as a texel index */
    VkBufferView views[VK_MAX_TEX + VK_MAX_IMG];
    int kind = 2; /* unused texel bindings get the dummy block in this dispatch's texel format */
    for (int i = 0; i < nargs && i < VK_MAX_TEX + VK_MAX_IMG; i++)
        if (args[i].alloc && args[i].texel) kind = args[i].texel;
    for (int i = 0; i < VK_MAX_TEX + VK_MAX_IMG; i++) {
        const vk_arg *a = i < nargs && args[i].alloc && args[i].texel ? &args[i] : NULL;
        const vk_alloc *al = a ? a->alloc : dummy;
        VT_TRY(vk_block_view(c, al->block, a ? a->texel : kind, &views[i]));
        if (!a) continue;
        VkDeviceSize abs = a->alloc->off + a->off, tb = a->texel == 1 ? 16 : 4;
        if (abs % tb || abs / tb > UINT32_MAX)
            return vt_error(VT_ERR_DEVICE, "vulkan: texel operand at byte %llu is not %llu-byte aligned",
                            (unsigned long long)abs, (unsigned long long)tb);
        push.off[i] = (uint32_t)(abs / tb);
    }
    for (int i = 0; i < npu && i < 16; i++) push.u[i] = pu[i];
    for (int i = 0; i < npf && i < 8; i++) push.f[i] = pf[i];

    VkDescriptorSetAllocateInfo dai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                       .descriptorPool = rec->pool,
                                       .descriptorSetCount = 1,
                                       .pSetLayouts = &c->dsl};
    VkDescriptorSet set;
    VK_CHECK(vkAllocateDescriptorSets(c->dev, &dai, &set));
    VkWriteDescriptorSet w[3] = {{.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                  .dstSet = set,
                                  .dstBinding = 0,
                                  .descriptorCount = VK_MAX_BIND + 1,
                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                  .pBufferInfo = infos},
                                 {.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                  .dstSet = set,
                                  .dstBinding = VK_TEX_BINDING,
                                  .descriptorCount = VK_MAX_TEX,
                                  .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                  .pTexelBufferView = views},
                                 {.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                  .dstSet = set,
                                  .dstBinding = VK_IMG_BINDING,
                                  .descriptorCount = VK_MAX_IMG,
                                  .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER,
                                  .pTexelBufferView = views + VK_MAX_TEX}};
    vkUpdateDescriptorSets(c->dev, 3, w, 0, NULL);

    /* a barrier only when this dispatch reads what an earlier one wrote, or writes what one touched */
    int hazard = 0;
    for (int i = 0; i < nargs && !hazard; i++) {
        if (!args[i].alloc) continue;
        const vk_block *b = args[i].alloc->block;
        VkDeviceSize lo = args[i].alloc->off + args[i].off, hi = lo + args[i].size;
        for (int t = 0; t < rec->n_touched && !hazard; t++)
            if (vk_overlap(&rec->touched[t], b, lo, hi) && (args[i].write || rec->touched[t].write)) hazard = 1;
    }
    if (hazard) vt_vk_rec_barrier(rec);
    for (int i = 0; i < nargs; i++) {
        if (!args[i].alloc) continue;
        if (rec->n_touched == rec->cap_touched) {
            int cap = rec->cap_touched ? 2 * rec->cap_touched : 32;
            vk_touch *nt = realloc(rec->touched, sizeof *nt * (size_t)cap);
            if (!nt) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
            rec->touched = nt;
            rec->cap_touched = cap;
        }
        VkDeviceSize lo = args[i].alloc->off + args[i].off;
        rec->touched[rec->n_touched++] = (vk_touch){args[i].alloc->block, lo, lo + args[i].size, args[i].write};
    }

    vkCmdBindPipeline(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(rec->cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->layout, 0, 1, &set, 0, NULL);
    vkCmdPushConstants(rec->cb, c->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof push, &push);
    vkCmdDispatch(rec->cb, gx, gy, gz);
    rec->dispatches++;
    return VT_OK;
}

/* ---- step context ---- */

typedef struct vk_step_words {
    uint32_t step_lo, step_hi, seed;
    float lr;
    uint32_t bs_lo, bs_hi;
} vk_step_words;

static void vk_write_ctx(void *dst, const vt_step_ctx *ctx) {
    vk_step_words w = {0};
    if (ctx) {
        w.step_lo = (uint32_t)ctx->step;
        w.step_hi = (uint32_t)(ctx->step >> 32);
        w.seed = ctx->seed;
        w.lr = ctx->lr;
        w.bs_lo = (uint32_t)(uint64_t)ctx->batch_start;
        w.bs_hi = (uint32_t)((uint64_t)ctx->batch_start >> 32);
    }
    memcpy(dst, &w, sizeof w);
}

/* Adam's per-step scalars (ops.h), computed here in double: one vec4 per Adam node of the
 * recording, in recording order, after the step words. */
static vt_status vk_write_adam(void *dst, const vt_node *nodes, int n_nodes, const vt_step_ctx *ctx) {
    static const vt_step_ctx zero_ctx = {0};
    if (!ctx) ctx = &zero_ctx;
    float *slot = (float *)(void *)((char *)dst + VK_CTX_ADAM_OFF);
    for (int i = 0; i < n_nodes; i++) {
        const vt_node *n = &nodes[i];
        if (n->op != VT_OP_ADAM) continue;
        int64_t t = (int64_t)ctx->step - n->p.adam.step_offset + 1;
        if (t < 1)
            return vt_error(VT_ERR_INVALID_ARG, "vulkan: adam %s: step %llu before step_offset %lld", n->label,
                            (unsigned long long)ctx->step, (long long)n->p.adam.step_offset);
        vt_adam_consts k = vt_adam_consts_of(&n->p.adam, ctx->lr * n->p.adam.lr_mult, t);
        slot[0] = k.step_size;
        slot[1] = k.sqrt_bc2;
        slot[2] = k.decay;
        slot[3] = 0.0f;
        slot += 4;
    }
    return VT_OK;
}

static int vk_count_adam(const vt_node *nodes, int n_nodes) {
    int k = 0;
    for (int i = 0; i < n_nodes; i++) k += nodes[i].op == VT_OP_ADAM;
    return k;
}

/* ---- interface ---- */

static vt_status vk_buffer_alloc(vt_backend *be, vt_buffer *buf) {
    vk_ctx *c = be->context;
    VT_TRY(vt_vk_check_validation(c));
    VkDeviceSize size = (buf->size + 3) / 4 * 4;
    if (size == 0) size = 4;
    if (size > c->heap_size)
        return vt_error(VT_ERR_OOM, "vulkan: buffer of %llu bytes asked, the device heap has %llu bytes",
                        (unsigned long long)size, (unsigned long long)c->heap_size);
    vk_alloc *a = calloc(1, sizeof *a);
    if (!a) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    a->size = size;
    vk_block *blk = NULL;
    VkDeviceSize off = 0;
    if (size > c->block_size) {
        vt_status s = vk_block_new(c, size, 1, &blk);
        if (s != VT_OK) {
            free(a);
            return s;
        }
        vk_block_take(blk, size, c->align, &off);
    } else {
        for (int i = 0; i < c->n_blocks && !blk; i++)
            if (!c->blocks[i]->dedicated && vk_block_take(c->blocks[i], size, c->align, &off)) blk = c->blocks[i];
        if (!blk) {
            vt_status s = vk_block_new(c, c->block_size, 0, &blk);
            if (s != VT_OK) {
                free(a);
                return s;
            }
            vk_block_take(blk, size, c->align, &off);
        }
    }
    a->block = blk;
    a->off = off;
    buf->handle = a;
    buf->host = NULL;
    if (blk->map) {
        memset((char *)blk->map + off, 0, size);
        return VT_OK;
    }
    VkCommandBuffer cb;
    VT_TRY(vk_oneshot_begin(c, &cb));
    vkCmdFillBuffer(cb, blk->buf, off, size, 0);
    return vk_submit_wait(c, cb);
}

static void vk_buffer_free(vt_backend *be, vt_buffer *buf) {
    vk_ctx *c = be->context;
    vk_alloc *a = buf->handle;
    if (!a) return;
    /* work still queued may use this range; it must finish before the range is handed out again */
    vk_drain(be, 1);
    vk_block *b = a->block;
    if (b->dedicated) {
        for (int i = 0; i < c->n_blocks; i++)
            if (c->blocks[i] == b) {
                c->blocks[i] = c->blocks[--c->n_blocks];
                break;
            }
        vk_block_destroy(c, b);
    } else {
        vk_block_give(b, a->off, a->size);
    }
    free(a);
    buf->handle = NULL;
}

static vt_status vk_buffer_write(vt_backend *be, vt_buffer *buf, size_t off, const void *data, size_t size) {
    vk_ctx *c = be->context;
    vk_alloc *a = buf->handle;
    if (off + size > buf->size)
        return vt_error(VT_ERR_INVALID_ARG, "vulkan: write of %zu bytes at %zu past buffer of %zu", size, off,
                        buf->size);
    VT_TRY(vk_drain(be, 1));
    if (a->block->map) {
        memcpy((char *)a->block->map + a->off + off, data, size);
        return VT_OK;
    }
    /* staged: the copy regions must be 4-byte multiples, so partial words are merged on the host */
    size_t done = 0;
    while (done < size) {
        size_t dst = off + done;
        size_t head = dst & 3u;
        size_t chunk = size - done;
        if (chunk + head > c->staging.size) chunk = c->staging.size - head;
        size_t span = (head + chunk + 3) & ~(size_t)3;
        if (head || (span != head + chunk)) {
            /* read the edge words first so bytes outside [off, off+size) keep their value */
            VkCommandBuffer cb;
            VT_TRY(vk_oneshot_begin(c, &cb));
            VkBufferCopy rc = {a->off + dst - head, 0, span};
            vkCmdCopyBuffer(cb, a->block->buf, c->staging.buf, 1, &rc);
            VT_TRY(vk_submit_wait(c, cb));
        }
        memcpy((char *)c->staging.map + head, (const char *)data + done, chunk);
        VkCommandBuffer cb;
        VT_TRY(vk_oneshot_begin(c, &cb));
        VkBufferCopy wc = {0, a->off + dst - head, span};
        vkCmdCopyBuffer(cb, c->staging.buf, a->block->buf, 1, &wc);
        VT_TRY(vk_submit_wait(c, cb));
        done += chunk;
    }
    return VT_OK;
}

static vt_status vk_buffer_read(vt_backend *be, const vt_buffer *buf, size_t off, void *data, size_t size) {
    vk_ctx *c = be->context;
    const vk_alloc *a = buf->handle;
    if (off + size > buf->size)
        return vt_error(VT_ERR_INVALID_ARG, "vulkan: read of %zu bytes at %zu past buffer of %zu", size, off,
                        buf->size);
    VT_TRY(vk_drain(be, 1));
    if (a->block->map) {
        memcpy(data, (const char *)a->block->map + a->off + off, size);
        return VT_OK;
    }
    size_t done = 0;
    while (done < size) {
        size_t src = off + done;
        size_t head = src & 3u;
        size_t chunk = size - done;
        if (chunk + head > c->staging.size) chunk = c->staging.size - head;
        size_t span = (head + chunk + 3) & ~(size_t)3;
        VkCommandBuffer cb;
        VT_TRY(vk_oneshot_begin(c, &cb));
        VkBufferCopy rc = {a->off + src - head, 0, span};
        vkCmdCopyBuffer(cb, a->block->buf, c->staging.buf, 1, &rc);
        VT_TRY(vk_submit_wait(c, cb));
        memcpy((char *)data + done, (const char *)c->staging.map + head, chunk);
        done += chunk;
    }
    return VT_OK;
}

vt_status vt_vk_scratch(vt_backend *be, VkDeviceSize bytes, vt_buffer **out) {
    vk_ctx *c = be->context;
    /* the newest scratch buffer is the largest; older ones stay alive for graphs recorded with them */
    if (c->n_scratch && c->scratch[c->n_scratch - 1]->size >= bytes) {
        *out = c->scratch[c->n_scratch - 1];
        return VT_OK;
    }
    vt_buffer **ns = realloc(c->scratch, sizeof *ns * (size_t)(c->n_scratch + 1));
    if (!ns) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    c->scratch = ns;
    VkDeviceSize want = bytes < ((VkDeviceSize)4 << 20) ? ((VkDeviceSize)4 << 20) : bytes;
    VT_TRY(vt_backend_buffer_alloc(be, (size_t)want, &c->scratch[c->n_scratch]));
    *out = c->scratch[c->n_scratch++];
    return VT_OK;
}

static bool vk_supports(vt_backend *be, const vt_node *n) { return vt_vk_supports_node(be, n); }

static vt_status vk_compute_node(vt_backend *be, const vt_node *n, const vt_step_ctx *ctx) {
    vk_ctx *c = be->context;
    VT_TRY(vt_vk_check_validation(c));
    /* one ring slot and at most a few descriptor sets per node; flush when either could run out */
    if (c->pend_open && c->ring_next + 1 >= VK_RING_SLOTS) VT_TRY(vk_drain(be, 1));
    VT_TRY(vk_pend_begin(c));
    vk_write_ctx((char *)c->ring.map + (size_t)c->ring_next * VK_CTX_SLOT, ctx);
    VT_TRY(vk_write_adam((char *)c->ring.map + (size_t)c->ring_next * VK_CTX_SLOT, n, 1, ctx));
    c->pend.n_adam = 0;
    c->pend.ctx_buf = c->ring.buf;
    c->pend.ctx_off = (VkDeviceSize)c->ring_next * VK_CTX_SLOT;
    c->ring_next++;
    uint32_t before = c->pend.dispatches;
    VT_TRY(vt_vk_record_node(be, &c->pend, n));
    be->counters.dispatches += c->pend.dispatches - before;
    return VT_OK;
}

static void vk_graph_state_free(vt_backend *be, void *p) {
    vk_ctx *c = be->context;
    vk_graph_state *g = p;
    if (!g) return;
    if (g->pending) vkWaitForFences(c->dev, 1, &g->fence, VK_TRUE, UINT64_MAX);
    for (int i = 0; i < c->n_inflight; i++)
        if (c->inflight[i] == g) {
            c->inflight[i] = c->inflight[--c->n_inflight];
            break;
        }
    if (g->cb) vkFreeCommandBuffers(c->dev, c->cmd_pool, 1, &g->cb);
    if (g->fence) vkDestroyFence(c->dev, g->fence, NULL);
    if (g->pool) vkDestroyDescriptorPool(c->dev, g->pool, NULL);
    vk_hostbuf_destroy(c, &g->ctxbuf);
    free(g);
}

static vt_status vk_descriptor_pool(vk_ctx *c, uint32_t sets, VkDescriptorPool *out) {
    VkDescriptorPoolSize ps[3] = {{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, sets * (VK_MAX_BIND + 1)},
                                  {VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, sets * VK_MAX_TEX},
                                  {VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, sets * VK_MAX_IMG}};
    VkDescriptorPoolCreateInfo pi = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = sets, .poolSizeCount = 3, .pPoolSizes = ps};
    VK_CHECK(vkCreateDescriptorPool(c->dev, &pi, NULL, out));
    return VT_OK;
}

static vt_status vk_graph_record(vt_backend *be, vt_graph_exec *exec, vk_graph_state **out) {
    vk_ctx *c = be->context;
    for (int i = 0; i < exec->n_nodes; i++) {
        const vt_node *n = &exec->nodes[i];
        VT_TRY(vt_node_validate(n));
        if (!vt_vk_supports_node(be, n))
            return vt_error(VT_ERR_UNSUPPORTED, "vulkan: op %s (%s) is not supported on %s", vt_op_name(n->op),
                            n->label, be->info.name);
    }
    vk_graph_state *g = calloc(1, sizeof *g);
    if (!g) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    vt_status s = VT_OK;
    vk_rec rec = {0};
#define GTRY(expr)                 \
    do {                           \
        s = (expr);                \
        if (s != VT_OK) goto fail; \
    } while (0)
    /* the step words, then one vec4 of Adam scalars per Adam node */
    VkDeviceSize ctx_bytes = VK_CTX_ADAM_OFF + 16 * (VkDeviceSize)vk_count_adam(exec->nodes, exec->n_nodes);
    ctx_bytes = ctx_bytes < VK_CTX_SLOT ? VK_CTX_SLOT : (ctx_bytes + VK_CTX_SLOT - 1) / VK_CTX_SLOT * VK_CTX_SLOT;
    GTRY(vk_hostbuf_create(c, ctx_bytes, &g->ctxbuf, "step context"));
    GTRY(vk_descriptor_pool(c, (uint32_t)exec->n_nodes * 4 + 4, &g->pool));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkResult r = vkCreateFence(c->dev, &fi, NULL, &g->fence);
    if (r != VK_SUCCESS) GTRY(vt_vk_fail_at(__FILE__, __LINE__, r, "vkCreateFence"));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    r = vkAllocateCommandBuffers(c->dev, &ai, &g->cb);
    if (r != VK_SUCCESS) GTRY(vt_vk_fail_at(__FILE__, __LINE__, r, "vkAllocateCommandBuffers"));
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    r = vkBeginCommandBuffer(g->cb, &bi);
    if (r != VK_SUCCESS) GTRY(vt_vk_fail_at(__FILE__, __LINE__, r, "vkBeginCommandBuffer"));
    rec.cb = g->cb;
    rec.pool = g->pool;
    rec.ctx_buf = g->ctxbuf.buf;
    rec.ctx_off = 0;
    rec.ctx_range = ctx_bytes;
    vt_vk_rec_barrier(&rec);
    rec.barriers = 0;
    for (int i = 0; i < exec->n_nodes; i++) GTRY(vt_vk_record_node(be, &rec, &exec->nodes[i]));
    vk_host_barrier(g->cb);
    r = vkEndCommandBuffer(g->cb);
    if (r != VK_SUCCESS) GTRY(vt_vk_fail_at(__FILE__, __LINE__, r, "vkEndCommandBuffer"));
    g->dispatches = rec.dispatches;
    g->barriers = rec.barriers;
    free(rec.touched);
    if (c->n_inflight == c->cap_inflight) {
        int cap = c->cap_inflight ? 2 * c->cap_inflight : 8;
        vk_graph_state **ni = realloc(c->inflight, sizeof *ni * (size_t)cap);
        if (!ni) GTRY(vt_error(VT_ERR_OOM, "vulkan: out of host memory"));
        c->inflight = ni;
        c->cap_inflight = cap;
    }
    c->inflight[c->n_inflight++] = g;
    *out = g;
    return VT_OK;
fail:
    free(rec.touched);
    vk_graph_state_free(be, g);
    return s;
#undef GTRY
}

static vt_status vk_graph_compute(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx) {
    vk_ctx *c = be->context;
    VT_TRY(vt_vk_check_validation(c));
    if (!exec->be_state) {
        vk_graph_state *g = NULL;
        VT_TRY(vk_graph_record(be, exec, &g));
        exec->be_state = g;
        exec->be_state_free = vk_graph_state_free;
    }
    vk_graph_state *g = exec->be_state;
    /* earlier one-off work must be on the queue first; the same command buffer cannot be pending twice */
    if (c->pend_open) VT_TRY(vk_drain(be, 1));
    if (g->pending) {
        VK_CHECK(vkWaitForFences(c->dev, 1, &g->fence, VK_TRUE, UINT64_MAX));
        g->pending = 0;
        be->counters.syncs++;
    }
    vk_write_ctx(g->ctxbuf.map, ctx);
    VT_TRY(vk_write_adam(g->ctxbuf.map, exec->nodes, exec->n_nodes, ctx));
    VK_CHECK(vkResetFences(c->dev, 1, &g->fence));
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &g->cb};
    VK_CHECK(vkQueueSubmit(c->queue, 1, &si, g->fence));
    g->pending = 1;
    be->counters.submits++;
    be->counters.dispatches += g->dispatches;
    return VT_OK;
}

static void vk_save_cache(vk_ctx *c) {
    if (!c->pcache || !c->cache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *data = malloc(n);
    if (!data) return;
    if (vkGetPipelineCacheData(c->dev, c->pcache, &n, data) == VK_SUCCESS) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", c->cache_path);
        FILE *f = fopen(tmp, "wb");
        if (f) {
            int ok = fwrite(data, 1, n, f) == n;
            ok &= fclose(f) == 0;
            if (ok) rename(tmp, c->cache_path);
            else remove(tmp);
        }
    }
    free(data);
}

static void vk_free(vt_backend *be) {
    vk_ctx *c = be->context;
    if (c) {
        if (c->dev) {
            vk_drain(be, 0);
            vkDeviceWaitIdle(c->dev);
            for (int i = 0; i < c->n_scratch; i++) vt_backend_buffer_free(c->scratch[i]);
            free(c->scratch);
            if (c->dummy) vt_backend_buffer_free(c->dummy);
            vk_save_cache(c);
            vt_vk_pipes_destroy(c);
            if (c->pcache) vkDestroyPipelineCache(c->dev, c->pcache, NULL);
            if (c->layout) vkDestroyPipelineLayout(c->dev, c->layout, NULL);
            if (c->dsl) vkDestroyDescriptorSetLayout(c->dev, c->dsl, NULL);
            if (c->pend.pool) vkDestroyDescriptorPool(c->dev, c->pend.pool, NULL);
            if (c->pend_fence) vkDestroyFence(c->dev, c->pend_fence, NULL);
            if (c->cmd_pool) vkDestroyCommandPool(c->dev, c->cmd_pool, NULL);
            vk_hostbuf_destroy(c, &c->ring);
            vk_hostbuf_destroy(c, &c->staging);
            for (int i = 0; i < c->n_blocks; i++) vk_block_destroy(c, c->blocks[i]);
            free(c->blocks);
            free(c->inflight);
            free(c->pend.touched);
            vkDestroyDevice(c->dev, NULL);
        }
        if (c->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT fn =
                (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(c->inst, "vkDestroyDebugUtilsMessengerEXT");
            if (fn) fn(c->inst, c->messenger, NULL);
        }
        if (c->inst) vkDestroyInstance(c->inst, NULL);
        free(c);
    }
    free(be);
}

static const vt_backend_i vk_iface = {
    .free = vk_free,
    .buffer_alloc = vk_buffer_alloc,
    .buffer_free = vk_buffer_free,
    .buffer_write = vk_buffer_write,
    .buffer_read = vk_buffer_read,
    .supports_node = vk_supports,
    .compute_node = vk_compute_node,
    .graph_compute = vk_graph_compute,
    .synchronize = vk_synchronize,
};

/* The kernel-path options (docs/backend-vulkan.md), from vt_backend_opts.options or VT_VULKAN_OPTIONS. */
typedef struct vk_opts {
    int validation, texel, subgroup;
    int gemm;                /* -1 the device's default, 0 register blocks, 1 shared-memory tiles */
    unsigned tile_x, tile_y; /* GEMM workgroup override, 0 = the device's default */
} vk_opts;

static vt_status vk_parse_opts(const vt_backend_opts *bo, vk_opts *out) {
    static const char *const known[] = {"validation", "texel", "gemm", "subgroup", "gemm_tile", NULL};
    vt_options o;
    memset(out, 0, sizeof *out);
    VT_TRY(vt_options_parse("vulkan", bo, known, &o));
    VT_TRY(vt_options_bool(&o, "vulkan", "validation", 0, &out->validation));
    VT_TRY(vt_options_bool(&o, "vulkan", "texel", 1, &out->texel));
    VT_TRY(vt_options_bool(&o, "vulkan", "subgroup", 1, &out->subgroup));
    const char *gm = vt_options_get(&o, "gemm", NULL);
    out->gemm = -1;
    if (gm && strcmp(gm, "tiled") == 0) out->gemm = 1;
    else if (gm && strcmp(gm, "registers") == 0) out->gemm = 0;
    else if (gm) return vt_error(VT_ERR_INVALID_ARG, "vulkan options: gemm=%s: use tiled or registers", gm);
    /* "LXxLY": the pairs of the options string are separated by commas already */
    const char *tile = vt_options_get(&o, "gemm_tile", NULL);
    if (tile) {
        unsigned tx = 0, ty = 0;
        char end = 0;
        if (sscanf(tile, "%ux%u%c", &tx, &ty, &end) != 2 || tx < 1 || ty < 1 || tx > 1024 || ty > 1024 ||
            tx * ty > 1024)
            return vt_error(VT_ERR_INVALID_ARG,
                            "vulkan options: gemm_tile=%s: use LXxLY, a workgroup of at most 1024 invocations (16x16)",
                            tile);
        out->tile_x = tx;
        out->tile_y = ty;
    }
    return VT_OK;
}

static vt_status vk_init_device(vt_backend *be, int index) {
    vk_ctx *c = be->context;
    vk_opts vo;
    VT_TRY(vk_parse_opts(&be->opts, &vo));
    c->validation = be->opts.validation || vo.validation;
    VT_TRY(vk_instance_create(c->validation, c, &c->inst));
    VkPhysicalDevice pds[8];
    int n = 0;
    VT_TRY(vk_physical_devices(c->inst, pds, 8, &n));
    if (index < 0 || index >= n) return vt_error(VT_ERR_NOT_FOUND, "vulkan: device %d asked, %d present", index, n);
    c->pdev = pds[index];
    vk_fill_info(c->pdev, &be->info);
    vkGetPhysicalDeviceProperties(c->pdev, &c->props);
    vkGetPhysicalDeviceMemoryProperties(c->pdev, &c->memprops);

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, NULL);
    VkQueueFamilyProperties qp[16];
    if (nq > 16) nq = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, qp);
    /* prefer a compute-only family (async compute on GPUs), else any family with compute */
    int fam = -1;
    for (uint32_t q = 0; q < nq; q++)
        if ((qp[q].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(qp[q].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
            fam = (int)q;
            break;
        }
    for (uint32_t q = 0; q < nq && fam < 0; q++)
        if (qp[q].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)q;
    if (fam < 0) return vt_error(VT_ERR_NOT_FOUND, "vulkan: %s has no compute queue", be->info.name);
    c->qfam = (uint32_t)fam;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = c->qfam,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi};
    VK_CHECK(vkCreateDevice(c->pdev, &di, NULL, &c->dev));
    vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);

    vk_pick_memory(c);
    c->align = c->props.limits.minStorageBufferOffsetAlignment;
    if (c->align < 16) c->align = 16;
    c->max_range = c->props.limits.maxStorageBufferRange;
    c->block_size = (VkDeviceSize)256 << 20;
    while (c->block_size > (VkDeviceSize)16 << 20 && c->block_size > c->heap_size / 4) c->block_size /= 2;

    VkCommandPoolCreateInfo cpi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = c->qfam};
    VK_CHECK(vkCreateCommandPool(c->dev, &cpi, NULL, &c->cmd_pool));

    VkDescriptorSetLayoutBinding binds[VK_MAX_BIND + 1 + VK_MAX_TEX + VK_MAX_IMG];
    for (int i = 0; i <= VK_MAX_BIND; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){(uint32_t)i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1,
                                                  VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    for (int i = 0; i < VK_MAX_TEX; i++)
        binds[VK_MAX_BIND + 1 + i] =
            (VkDescriptorSetLayoutBinding){VK_TEX_BINDING + (uint32_t)i, VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, 1,
                                           VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    for (int i = 0; i < VK_MAX_IMG; i++)
        binds[VK_MAX_BIND + 1 + VK_MAX_TEX + i] =
            (VkDescriptorSetLayoutBinding){VK_IMG_BINDING + (uint32_t)i, VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER, 1,
                                           VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = VK_MAX_BIND + 1 + VK_MAX_TEX + VK_MAX_IMG,
                                          .pBindings = binds};
    VK_CHECK(vkCreateDescriptorSetLayout(c->dev, &li, NULL, &c->dsl));
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, 128};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                      .setLayoutCount = 1,
                                      .pSetLayouts = &c->dsl,
                                      .pushConstantRangeCount = 1,
                                      .pPushConstantRanges = &pr};
    VK_CHECK(vkCreatePipelineLayout(c->dev, &pli, NULL, &c->layout));

    /* pipeline cache, loaded from disk when a cache directory is given */
    void *cache_data = NULL;
    size_t cache_size = 0;
    if (be->opts.cache_dir && be->opts.cache_dir[0]) {
        snprintf(c->cache_path, sizeof c->cache_path, "%s/vulkan-%04x-%04x-%08x.pcache", be->opts.cache_dir,
                 c->props.vendorID, c->props.deviceID, c->props.driverVersion);
        FILE *f = fopen(c->cache_path, "rb");
        if (f) {
            if (fseek(f, 0, SEEK_END) == 0) {
                long len = ftell(f);
                if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (cache_data = malloc((size_t)len)) != NULL)
                    cache_size = fread(cache_data, 1, (size_t)len, f);
            }
            fclose(f);
        }
    }
    VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                     .initialDataSize = cache_size,
                                     .pInitialData = cache_data};
    VkResult r = vkCreatePipelineCache(c->dev, &pci, NULL, &c->pcache);
    if (r != VK_SUCCESS && cache_data) {
        /* a stale or foreign cache file is not an error: start empty */
        pci.initialDataSize = 0;
        pci.pInitialData = NULL;
        r = vkCreatePipelineCache(c->dev, &pci, NULL, &c->pcache);
    }
    free(cache_data);
    if (r != VK_SUCCESS) return vt_vk_fail_at(__FILE__, __LINE__, r, "vkCreatePipelineCache");

    c->modules = calloc((size_t)vt_vk_shader_count(), sizeof *c->modules);
    if (!c->modules) return vt_error(VT_ERR_OOM, "vulkan: out of host memory");

    VT_TRY(vk_hostbuf_create(c, (VkDeviceSize)VK_RING_SLOTS * VK_CTX_SLOT, &c->ring, "step context ring"));
    if (!c->uma) VT_TRY(vk_hostbuf_create(c, (VkDeviceSize)32 << 20, &c->staging, "staging"));
    VT_TRY(vk_descriptor_pool(c, VK_RING_SLOTS * 4, &c->pend.pool));
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VK_CHECK(vkAllocateCommandBuffers(c->dev, &ai, &c->pend.cb));
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(c->dev, &fi, NULL, &c->pend_fence));
    VT_TRY(vt_backend_buffer_alloc(be, 256, &c->dummy));

    c->no_texel = !vo.texel;
    /* Shared-memory tiles pay on GPUs; on CPU drivers each barrier is a switch between the lane
     * batches of the workgroup, so there the register-blocked shaders stay the default.
     * The option gemm=tiled|registers chooses either way. */
    c->gemm_tiled = vo.gemm >= 0 ? vo.gemm : c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
    /* Subgroup arithmetic in compute shaders (Vulkan 1.1 reports it; the SPIR-V that uses it may only be
     * loaded where it is supported): the workgroup sums of BIAS_GRAD and BATCHNORM use it. */
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(c->pdev, &p2);
    VkSubgroupFeatureFlags need = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    int sg_ok = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & need) == need &&
                sg.subgroupSize >= 1 && sg.subgroupSize <= 64;
    c->subgroup = sg_ok && vo.subgroup;
    c->subgroup_size = sg.subgroupSize;
    /* Tile shapes: CPU drivers pay for barriers and like long per-invocation loops over registers
     * (32 rows x 16 columns measured best for the implicit-GEMM convolutions on lavapipe);
     * GPUs want more invocations per workgroup. The shared-memory shader: 16x16 invocations of 4x4
     * outputs staged through 64x16 and 16x64 tiles (16x8 of 8x4 where a workgroup holds fewer than 256). */
    c->gemm_tm = 32;
    c->gemm_tn = 16;
    c->gemm_lx = 8;
    c->gemm_ly = 8;
    if (c->props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU) {
        c->gemm_tm = 4;
        c->gemm_tn = 4;
        c->gemm_lx = 16;
        c->gemm_ly = 16;
    }
    c->tile_tm = 4;
    c->tile_tn = 4;
    c->tile_lx = 16;
    c->tile_ly = 16;
    if (c->props.limits.maxComputeWorkGroupInvocations < 256) {
        c->tile_tm = 8;
        c->tile_ly = 8;
    }
    /* tuning override: the option gemm_tile=LXxLY */
    if (vo.tile_x) {
        c->gemm_lx = c->tile_lx = vo.tile_x;
        c->gemm_ly = c->tile_ly = vo.tile_y;
    }
    char sgs[48];
    if (c->subgroup) snprintf(sgs, sizeof sgs, "subgroups of %u", c->subgroup_size);
    else snprintf(sgs, sizeof sgs, "%s", sg_ok ? "shared memory (subgroup=0)" : "shared memory");
    snprintf(be->info.config, sizeof be->info.config, "inputs through %s; GEMM workgroup %ux%u, %s; sums by %s",
             c->no_texel ? "storage buffers (texel=0)" : "texel buffers", c->gemm_tiled ? c->tile_lx : c->gemm_lx,
             c->gemm_tiled ? c->tile_ly : c->gemm_ly, c->gemm_tiled ? "shared-memory tiles" : "register blocks", sgs);
    return vt_vk_check_validation(c);
}

static vt_status vk_init(int index, const vt_backend_opts *opts, vt_backend **out) {
    *out = NULL;
    vt_backend *be = calloc(1, sizeof *be);
    vk_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return vt_error(VT_ERR_OOM, "vulkan: out of host memory");
    }
    be->iface = &vk_iface;
    be->context = c;
    if (opts) be->opts = *opts;
    vt_status s = vk_init_device(be, index);
    if (s != VT_OK) {
        vk_free(be); /* leaves the message of the failure in place */
        return s;
    }
    *out = be;
    return VT_OK;
}

const vt_backend_reg *vt_backend_reg_vulkan(void) {
    static const vt_backend_reg reg = {"vulkan", vk_device_count, vk_device_info, vk_init};
    return &reg;
}
