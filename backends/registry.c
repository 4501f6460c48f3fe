/* The backend registry: the one file that knows which backends were compiled in (VT_HAVE_*
 * definitions from each backend's CMake library), in preference order, and picks a device. */
#include "vt/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef const vt_backend_reg *(*vt_reg_fn)(void);

static const vt_reg_fn vt_regs[] = {
#ifdef VT_HAVE_CUDA
    vt_backend_reg_cuda,
#endif
#ifdef VT_HAVE_VULKAN
    vt_backend_reg_vulkan,
#endif
#ifdef VT_HAVE_OPENCL
    vt_backend_reg_opencl,
#endif
    vt_backend_reg_cpu,
};

int vt_backend_reg_count(void) { return (int)(sizeof vt_regs / sizeof vt_regs[0]); }

const vt_backend_reg *vt_backend_reg_get(int i) { return (i >= 0 && i < vt_backend_reg_count()) ? vt_regs[i]() : NULL; }

const vt_backend_reg *vt_backend_reg_find(const char *name) {
    for (int i = 0; i < vt_backend_reg_count(); i++) {
        const vt_backend_reg *r = vt_backend_reg_get(i);
        if (strcmp(r->name, name) == 0) return r;
    }
    return NULL;
}

/* Lower is better. A driver that runs on the host CPU (PoCL, lavapipe) ranks after the CPU backend:
 * it uses the same cores through generated code, while the CPU backend calls OpenBLAS directly
 * (about 7x faster per training step on the development machine, docs/benchmarks.md). Within one
 * backend's own device list (--backend opencl without --device) it is still the one picked. */
static int vt_type_rank(const vt_device_info *d) {
    if (d->is_cpu_hosted) return 4;
    if (strcmp(d->type, "gpu") == 0) return 0;
    if (strcmp(d->type, "integrated") == 0) return 1;
    if (strcmp(d->type, "cpu") == 0) return 3;
    return 2;
}

vt_status vt_backend_init_by_name(const char *name, int device, const vt_backend_opts *opts, vt_backend **out) {
    *out = NULL;
    vt_backend_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (strcmp(name, "auto") == 0) {
        /* Best device present: a real GPU first, then the CPU backend, CPU-hosted drivers last. */
        const vt_backend_reg *best = NULL;
        int best_dev = -1, best_rank = 1 << 30;
        for (int i = 0; i < vt_backend_reg_count(); i++) {
            const vt_backend_reg *r = vt_backend_reg_get(i);
            int n = r->device_count();
            for (int d = 0; d < n; d++) {
                vt_device_info info;
                if (r->device_info(d, &info) != VT_OK) continue;
                int rank = vt_type_rank(&info) * 16 + i;
                if (rank < best_rank) {
                    best_rank = rank;
                    best = r;
                    best_dev = d;
                }
            }
        }
        if (!best) return vt_error(VT_ERR_NOT_FOUND, "no device found on any backend");
        vt_status s = best->init(best_dev, opts, out);
        if (s == VT_OK) return s;
        /* The preferred device failed to start: say so rather than hide it. */
        vt_log(VT_LOG_WARN, "vtrain: backend %s device %d failed (%s); using cpu", best->name, best_dev,
               vt_last_error());
        return vt_backend_reg_cpu()->init(0, opts, out);
    }
    const vt_backend_reg *r = vt_backend_reg_find(name);
    if (!r) {
        char have[128] = "";
        for (int i = 0; i < vt_backend_reg_count(); i++) {
            strncat(have, vt_backend_reg_get(i)->name, sizeof have - strlen(have) - 2);
            if (i + 1 < vt_backend_reg_count()) strncat(have, ",", sizeof have - strlen(have) - 1);
        }
        return vt_error(VT_ERR_NOT_FOUND, "backend '%s' is not compiled in (this build has: %s)", name, have);
    }
    int n = r->device_count();
    if (n <= 0) return vt_error(VT_ERR_NOT_FOUND, "backend %s: no device found", name);
    if (device < 0) {
        int best_rank = 1 << 30;
        device = 0;
        for (int d = 0; d < n; d++) {
            vt_device_info info;
            if (r->device_info(d, &info) != VT_OK) continue;
            int rank = vt_type_rank(&info);
            if (rank < best_rank) {
                best_rank = rank;
                device = d;
            }
        }
    }
    if (device >= n) return vt_error(VT_ERR_NOT_FOUND, "backend %s: device %d asked, %d present", name, device, n);
    return r->init(device, opts, out);
}
