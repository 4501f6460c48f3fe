/* `vtrain eval`: recompute test loss/accuracy of a checkpoint without training, and check it
 * against the accuracy the checkpoint recorded. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "vt/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain eval --checkpoint FILE [--data PATH] [--backend B] [--device K]\n\n"
               "Recomputes test loss and accuracy from a saved model; exits 1 if the accuracy differs from the one\n"
               "recorded in the checkpoint (same backend, same data).\n");
}

int vt_cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = "", *backend = "auto";
    int device = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { fprintf(stderr, "vtrain eval: unknown option or missing value: %s\n", a); usage(stderr); return 2; }
        if (!strcmp(a, "--checkpoint")) ckpt = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--device")) { if (sscanf(v, "%d", &device) != 1) { fprintf(stderr, "vtrain eval: bad --device %s\n", v); return 2; } }
        else { fprintf(stderr, "vtrain eval: unknown option %s\n", a); usage(stderr); return 2; }
        i++;
    }
    if (!ckpt) { fprintf(stderr, "vtrain eval: --checkpoint is required\n"); usage(stderr); return 2; }
    vt_backend *be;
    vt_backend_opts bo = {0};
    if (vt_backend_init_by_name(backend, device, &bo, &be) != VT_OK) {
        fprintf(stderr, "vtrain eval: %s\n", vt_last_error());
        return 1;
    }
    double loss, acc, recorded;
    vt_status s = vt_eval_checkpoint(ckpt, data, be, &loss, &acc, &recorded);
    vt_backend_free(be);
    if (s != VT_OK) {
        fprintf(stderr, "vtrain eval: %s\n", vt_last_error());
        return 1;
    }
    printf("test loss %.6f, test accuracy %.4f%% (checkpoint recorded %.4f%%)\n", loss, acc, recorded);
    if (recorded >= 0 && fabs(acc - recorded) > 1e-9) {
        fprintf(stderr, "vtrain eval: accuracy differs from the recorded one (another backend or dataset?)\n");
        return 1;
    }
    return 0;
}
