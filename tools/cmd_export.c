/* `vtrain export`: a checkpoint's weights as safetensors with torchvision-style names. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "vt/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain export --checkpoint FILE --format safetensors [--out FILE]\n\n"
               "Writes parameters and batch-norm statistics under PyTorch names (default: FILE with .safetensors).\n");
}

int vt_cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *format = "safetensors", *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "vtrain export: unknown option or missing value: %s\n", a); usage(stderr); return 2; }
        if (!strcmp(a, "--checkpoint")) ckpt = v;
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--out")) out = v;
        else { fprintf(stderr, "vtrain export: unknown option %s\n", a); usage(stderr); return 2; }
        i++;
    }
    if (!ckpt) { fprintf(stderr, "vtrain export: --checkpoint is required\n"); usage(stderr); return 2; }
    if (strcmp(format, "safetensors")) { fprintf(stderr, "vtrain export: --format %s: only safetensors is supported\n", format); return 2; }
    char path[1024];
    if (!out) {
        snprintf(path, sizeof path, "%s", ckpt);
        char *dot = strrchr(path, '.');
        if (dot && !strchr(dot, '/')) *dot = 0;
        strncat(path, ".safetensors", sizeof path - strlen(path) - 1);
        out = path;
    }
    if (vt_export_checkpoint(ckpt, out) != VT_OK) {
        fprintf(stderr, "vtrain export: %s\n", vt_last_error());
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}
