/* The registry of the backends compiled in (backends/registry.c). Each backend library exports
 * exactly one symbol, its vt_backend_reg_<name>(); the engine itself knows none of them. */
#ifndef VT_REGISTRY_H
#define VT_REGISTRY_H

#include "vt/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

const vt_backend_reg *vt_backend_reg_cpu(void);
const vt_backend_reg *vt_backend_reg_opencl(void);
const vt_backend_reg *vt_backend_reg_vulkan(void);
const vt_backend_reg *vt_backend_reg_cuda(void);

/* Registry of the backends compiled in, in preference order (cuda, vulkan, opencl, cpu). */
int vt_backend_reg_count(void);
const vt_backend_reg *vt_backend_reg_get(int i);
const vt_backend_reg *vt_backend_reg_find(const char *name);
/* Create a backend by name ("cpu", "opencl", "vulkan", "cuda", "auto") and device index (-1 = best). */
vt_status vt_backend_init_by_name(const char *name, int device, const vt_backend_opts *opts, vt_backend **out);
#ifdef __cplusplus
}
#endif
#endif
