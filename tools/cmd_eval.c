/* `vtrain eval`: recompute test loss/accuracy of a checkpoint without training, and check it
 * against the accuracy the checkpoint recorded; a segmentation checkpoint's pixel accuracy and mIoU
 * likewise. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/models.h"
#include "vt/train.h"
#include "vt/registry.h"

/* Whether a checkpoint is of a segmentation problem, from its metadata alone (the header's JSON, read
 * without the tensors: an FCN checkpoint is hundreds of MB). The evaluation reads and verifies the
 * whole file anyway, so anything unreadable here counts as "not segmentation" and is reported there. */
static int is_segmentation_checkpoint(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char h[40];
    int seg = 0;
    if (fread(h, 1, sizeof h, f) == sizeof h && memcmp(h, "VTCKPT\0\0", 8) == 0) {
        uint64_t m = 0;
        for (int i = 7; i >= 0; i--) m = (m << 8) | h[24 + i];
        char *txt = m > 0 && m < (64u << 20) ? malloc((size_t)m + 1) : NULL;
        if (txt && fread(txt, 1, (size_t)m, f) == (size_t)m) {
            txt[m] = 0;
            cJSON *meta = cJSON_Parse(txt);
            const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(meta, "config");
            const cJSON *prob = cJSON_GetObjectItemCaseSensitive(cfg, "problem");
            const vt_problem *p = cJSON_IsString(prob) ? vt_problem_find(prob->valuestring) : NULL;
            seg = p && p->segmentation;
            cJSON_Delete(meta);
        }
        free(txt);
    }
    fclose(f);
    return seg;
}

/* The scores of a segmentation checkpoint; exit 1 when the mIoU differs from the recorded one. */
static int eval_segmentation(const char *ckpt, const char *data, vt_backend *be) {
    vt_seg_eval e;
    memset(&e, 0, sizeof e);
    vt_status s = vt_eval_checkpoint_seg(ckpt, data, be, &e);
    if (s != VT_OK) return vt_cli_lib_error("eval", NULL);
    printf("test loss %.6f, pixel accuracy %.4f%%, mIoU %.4f%%, practice's mIoU %.4f%% (checkpoint recorded mIoU "
           "%.4f%%)\n",
           e.loss, 100.0 * e.pixel_acc, 100.0 * e.miou, 100.0 * e.miou_practice, 100.0 * e.recorded_miou);
    printf("per-class IoU:");
    for (int k = 0; k < e.n_classes && k < 256; k++) {
        if (isnan(e.iou[k])) printf(" %d: -", k);
        else printf(" %d: %.4f%%", k, 100.0 * e.iou[k]);
    }
    printf("\n");
    if (isfinite(e.recorded_miou) && e.recorded_miou >= 0 && !(fabs(e.miou - e.recorded_miou) <= 1e-6)) {
        fprintf(stderr, "vtrain eval: mIoU differs from the recorded one (another backend or dataset?)\n");
        return 1;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain eval --checkpoint FILE [--data PATH] [--backend B] [--device K (0-1023)]\n"
               "                  [--backend-options key=value,...]\n\n"
               "Recomputes test loss and accuracy from a saved model; exits 1 if the accuracy differs from the one\n"
               "recorded in the checkpoint (same backend, same data). Exit status: 0 same accuracy, 1 failed or\n"
               "different, 2 bad command line.\n"
               "A segmentation checkpoint (problems 9-11): test loss, pixel accuracy, mIoU, the practice's mIoU\n"
               "and the IoU of every class over the test split at the run's size; exits 1 if the mIoU differs\n"
               "from the recorded one by more than 1e-6.\n"
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
    if (is_segmentation_checkpoint(ckpt)) {
        int rc = eval_segmentation(ckpt, data, be);
        vt_backend_free(be);
        return rc;
    }
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
