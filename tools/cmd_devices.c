/* `vtrain devices`: every backend compiled in and every device it sees. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/backend.h"
#include "vt/registry.h"

int vt_cmd_devices(int argc, char **argv) {
    static const char *const known[] = {"--help", "--verbose", NULL};
    vt_args a;
    vt_args_init(&a, "devices", argc, argv, known);
    while (vt_args_next(&a)) {
        if (vt_args_help(&a)) {
            printf("usage: vtrain devices\n\nLists every backend compiled into this build and every device it sees.\n");
            return VT_EXIT_OK;
        }
        return vt_args_unknown(&a);
    }
    printf("%-8s %-3s %-11s %-44s %-24s %10s  %s\n", "backend", "dev", "type", "name", "vendor", "memory", "driver");
    for (int i = 0; i < vt_backend_reg_count(); i++) {
        const vt_backend_reg *r = vt_backend_reg_get(i);
        int n = r->device_count();
        if (n <= 0) {
            printf("%-8s %-3s %-11s (no device: %s)\n", r->name, "-", "-",
                   vt_last_error()[0] ? vt_last_error() : "none found");
            vt_clear_error();
            continue;
        }
        for (int d = 0; d < n; d++) {
            vt_device_info info;
            if (r->device_info(d, &info) != VT_OK) {
                printf("%-8s %-3d (error: %s)\n", r->name, d, vt_last_error());
                continue;
            }
            char type[24];
            snprintf(type, sizeof type, "%s%s", info.type, info.is_cpu_hosted ? "*" : "");
            printf("%-8s %-3d %-11s %-44.44s %-24.24s %7.1f GB  %s\n", r->name, d, type, info.name, info.vendor,
                   (double)info.memory_bytes / 1e9, info.driver);
        }
    }
    printf("(* = a driver that runs on the host CPU)\n");
    return 0;
}
