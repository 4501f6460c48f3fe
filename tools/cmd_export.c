/* `vtrain export`: a checkpoint's weights as safetensors with torchvision-style names. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain export --checkpoint FILE --format safetensors [--out FILE]\n\n"
               "Writes parameters and batch-norm statistics under PyTorch names (default: FILE with .safetensors).\n"
               "__metadata__ holds the problem, class_names, normalize_mean/normalize_std and input_size [C,H,W]\n"
               "(JSON text) when the checkpoint records them. --out may not be the checkpoint itself (also not\n"
               "through a link).\n");
}

int vt_cmd_export(int argc, char **argv) {
    static const char *const known[] = {"--checkpoint", "--format", "--out", "--help", "--verbose", NULL};
    static char ckpt[512], format[32] = "safetensors", out[512];
    vt_args a;
    vt_args_init(&a, "export", argc, argv, known);
    while (vt_args_next(&a)) {
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--checkpoint")) {
            if (vt_args_str(&a, ckpt, sizeof ckpt)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--format")) {
            if (vt_args_str(&a, format, sizeof format)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--out")) {
            if (vt_args_str(&a, out, sizeof out)) return VT_EXIT_USAGE;
        } else return vt_args_unknown(&a);
    }
    if (!ckpt[0]) return vt_cli_usage_error("export", "--checkpoint is required");
    if (strcmp(format, "safetensors"))
        return vt_cli_usage_error("export", "--format %s: only safetensors is supported", format);
    if (!out[0]) {
        char *dot = strrchr(ckpt, '.');
        size_t stem = dot && !strchr(dot, '/') ? (size_t)(dot - ckpt) : strlen(ckpt);
        if (stem + 12 >= sizeof out)
            return vt_cli_usage_error("export", "--checkpoint: too long a path to derive --out from");
        snprintf(out, sizeof out, "%.*s.safetensors", (int)stem, ckpt);
    }
    if (vt_export_checkpoint(ckpt, out) != VT_OK) return vt_cli_lib_error("export", NULL);
    printf("wrote %s\n", out);
    return VT_EXIT_OK;
}
