/* `vtrain predict`: the masks a segmentation checkpoint predicts for one split of a dataset, written in
 * the dataset's own format (deepglobe NNNN_mask.png colour masks, camvid grey id PNGs). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/registry.h"
#include "vt/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain predict --checkpoint FILE --out DIR [--data PATH] [--split val|train|test]\n"
               "                     [--backend B] [--device K (0-1023)] [--backend-options key=value,...]\n\n"
               "Predicts the mask of every image of one split (default val) with a segmentation checkpoint\n"
               "(problems 9-11) and writes them into DIR (created) under the dataset's own names and format,\n"
               "at each image's stored size: deepglobe NNNN_mask.png colour masks, camvid <name>.png grey ids.\n"
               "--data defaults to the folder recorded in the checkpoint. Exit status: 0 written, 1 failed,\n"
               "2 bad command line.\n");
}

int vt_cmd_predict(int argc, char **argv) {
    static const char *const known[] = {"--checkpoint",      "--data",   "--split", "--out",     "--backend",
                                        "--backend-options", "--device", "--help",  "--verbose", NULL};
    static const char *const splits[] = {"val", "train", "test", "validation", "training", NULL};
    static char ckpt[512], data[512], split[16] = "val", out[512], backend[16] = "auto", options[512];
    vt_backend_opts bo = {0};
    int device = -1;
    vt_args a;
    vt_args_init(&a, "predict", argc, argv, known);
    while (vt_args_next(&a)) {
        long long n;
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--checkpoint")) {
            if (vt_args_str(&a, ckpt, sizeof ckpt)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--data")) {
            if (vt_args_str(&a, data, sizeof data)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--split")) {
            const char *v = vt_args_value(&a);
            if (!v) return VT_EXIT_USAGE;
            int ok = 0;
            for (int i = 0; splits[i]; i++) ok |= !strcmp(v, splits[i]);
            if (!ok) return vt_cli_usage_error("predict", "--split takes val, train or test, not '%s'", v);
            snprintf(split, sizeof split, "%s", v);
        } else if (vt_args_is(&a, "--out")) {
            if (vt_args_str(&a, out, sizeof out)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--backend")) {
            if (vt_args_str(&a, backend, sizeof backend)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--backend-options")) {
            if (vt_args_str(&a, options, sizeof options)) return VT_EXIT_USAGE;
            bo.options = options;
        } else if (vt_args_is(&a, "--device")) {
            if (vt_args_int(&a, 0, 1023, &n)) return VT_EXIT_USAGE;
            device = (int)n;
        } else return vt_args_unknown(&a);
    }
    if (!ckpt[0]) return vt_cli_usage_error("predict", "--checkpoint is required");
    if (!out[0]) return vt_cli_usage_error("predict", "--out is required (the folder the masks are written to)");
    /* a FIFO would block the reader forever */
    if (vt_check_regular_file(ckpt, "checkpoint") != VT_OK) return vt_cli_lib_error("predict", NULL);
    vt_backend *be;
    if (vt_backend_init_by_name(backend, device, &bo, &be) != VT_OK) return vt_cli_lib_error("predict", NULL);
    int64_t written = 0;
    vt_status s = vt_predict_checkpoint(ckpt, data, split, out, be, &written);
    vt_backend_free(be);
    if (s != VT_OK) {
        if (written > 0)
            fprintf(stderr, "vtrain predict: %lld masks were written before the failure\n", (long long)written);
        return vt_cli_lib_error("predict", NULL);
    }
    printf("wrote %lld masks to %s\n", (long long)written, out);
    return VT_EXIT_OK;
}
