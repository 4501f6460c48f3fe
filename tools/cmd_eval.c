/* `vtrain eval`: recompute test loss/accuracy of a checkpoint without training, and check it
 * against the accuracy the checkpoint recorded. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/train.h"
#include "vt/registry.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain eval --checkpoint FILE [--data PATH] [--backend B] [--device K (0-1023)]\n"
               "                  [--backend-options key=value,...]\n\n"
               "Recomputes test loss and accuracy from a saved model; exits 1 if the accuracy differs from the one\n"
               "recorded in the checkpoint (same backend, same data). Exit status: 0 same accuracy, 1 failed or\n"
               "different, 2 bad command line.\n"
               "--backend-options: the backend's kernel-path options (docs/backend-<name>.md); default: the\n"
               "environment's VT_<BACKEND>_OPTIONS; an unknown key is an error.\n");
}

int vt_cmd_eval(int argc, char **argv) {
    static const char *const known[] = {"--checkpoint", "--data", "--backend", "--backend-options",
                                        "--device",     "--help", "--verbose", NULL};
    static char ckpt[512], data[512], backend[16] = "auto", options[512];
    vt_backend_opts bo = {0};
    int device = -1;
    vt_args a;
    vt_args_init(&a, "eval", argc, argv, known);
    while (vt_args_next(&a)) {
        long long n;
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--checkpoint")) {
            if (vt_args_str(&a, ckpt, sizeof ckpt)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--data")) {
            if (vt_args_str(&a, data, sizeof data)) return VT_EXIT_USAGE;
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
    if (!ckpt[0]) return vt_cli_usage_error("eval", "--checkpoint is required");
    /* a FIFO would block the reader forever */
    if (vt_check_regular_file(ckpt, "checkpoint") != VT_OK) return vt_cli_lib_error("eval", NULL);
    vt_backend *be;
    if (vt_backend_init_by_name(backend, device, &bo, &be) != VT_OK) return vt_cli_lib_error("eval", NULL);
    double loss, acc, recorded;
    vt_status s = vt_eval_checkpoint(ckpt, data, be, &loss, &acc, &recorded);
    vt_backend_free(be);
    if (s != VT_OK) return vt_cli_lib_error("eval", NULL);
    printf("test loss %.6f, test accuracy %.4f%% (checkpoint recorded %.4f%%)\n", loss, acc, recorded);
    if (recorded >= 0 && fabs(acc - recorded) > 1e-9) {
        fprintf(stderr, "vtrain eval: accuracy differs from the recorded one (another backend or dataset?)\n");
        return 1;
    }
    return 0;
}
