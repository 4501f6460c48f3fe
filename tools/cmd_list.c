/* `vtrain list`: the problems with their models, parameter counts and default hyper-parameters: the
 * classification problems, then the segmentation group. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/models.h"

/* Images the segmentation group's parameter counts are for (FCN's parameters do not depend on the image
 * size; its input must be at least 32x32): deepglobe's six classes. */
#define VT_LIST_SEG_CLASSES 6
#define VT_LIST_SEG_SIDE    64

/* Parameter count of a problem's model for CIFAR-100 shapes, or a segmentation problem's for
 * VT_LIST_SEG_CLASSES classes (builds the graph, allocates nothing). */
static long long count_params(const vt_problem *p) {
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_model_cfg cfg;
    int side = p->segmentation ? VT_LIST_SEG_SIDE : 32;
    vt_model_cfg_default(p, p->segmentation ? VT_LIST_SEG_CLASSES : 100, 3, side, side, &cfg);
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){2, 3, side, side});
    vt_model_build(g, &cfg, x);
    long long n = vt_graph_status(g) == VT_OK ? (long long)vt_params_param_count(m) : -1;
    if (n < 0) fprintf(stderr, "vtrain list: %s: %s\n", p->name, vt_last_error());
    vt_graph_free(g);
    vt_params_free(m);
    return n;
}

/* A JSON string (names and schedules hold no characters that need escaping, but be safe). */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

/* The classification problems' defaults as a JSON list, for other tools (tools/pytorch_ref.py, whose
 * reference covers those) to read one table. */
static void list_json(void) {
    int n = 0;
    while (n < vt_problem_count() && !vt_problem_get(n)->segmentation) n++;
    printf("[\n");
    for (int i = 0; i < n; i++) {
        const vt_problem *p = vt_problem_get(i);
        char lr[32], mom[32], wd[32], drop[32];
        vt_cli_format_float(lr, sizeof lr, p->lr);
        vt_cli_format_float(mom, sizeof mom, p->momentum);
        vt_cli_format_float(wd, sizeof wd, p->weight_decay);
        vt_cli_format_float(drop, sizeof drop, p->dropout);
        printf("  {\"id\": %d, \"name\": ", p->id);
        json_str(p->name);
        printf(", \"model\": ");
        json_str(vt_arch_name(p->arch));
        printf(", \"optimizer\": ");
        json_str(p->optimizer);
        printf(", \"lr\": %s, \"momentum\": %s, \"weight_decay\": %s, \"nesterov\": %s, \"schedule\": ", lr, mom, wd,
               p->nesterov ? "true" : "false");
        json_str(p->schedule);
        printf(", \"epochs\": %d, \"batch_size\": %d, \"augment\": %s, \"dropout\": %s, \"pretrained\": %s}%s\n",
               p->epochs, p->batch_size, p->augment ? "true" : "false", drop, p->pretrained ? "true" : "false",
               i + 1 < n ? "," : "");
    }
    printf("]\n");
}

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain list [--json]\n\n"
               "Shows the practice's problems, their models, parameter counts (100 classes) and defaults; then the\n"
               "segmentation problems (per-pixel classes scored by mIoU; parameters for 6 classes).\n"
               "  --json    the classification problems' defaults as a JSON list (id, name, optimizer, lr, momentum,\n"
               "            weight_decay, nesterov, schedule, epochs, batch_size, augment, dropout, ...), floats as\n"
               "            written in the table\n");
}

int vt_cmd_list(int argc, char **argv) {
    static const char *const known[] = {"--json", "--help", NULL};
    vt_args a;
    int json = 0;
    vt_args_init(&a, "list", argc, argv, known);
    while (vt_args_next(&a)) {
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--json")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            json = 1;
        } else {
            return vt_args_unknown(&a);
        }
    }
    if (json) {
        list_json();
        return VT_EXIT_OK;
    }
    printf("%-2s %-18s %-26s %10s %-6s %7s %-12s %6s %5s %s\n", "#", "name", "model", "params", "optim", "lr",
           "schedule", "epochs", "batch", "notes");
    int seg_header = 0;
    for (int i = 0; i < vt_problem_count(); i++) {
        const vt_problem *p = vt_problem_get(i);
        if (p->segmentation && !seg_header) {
            printf("\nsegmentation (per-pixel classes, scored by mIoU; parameters for %d classes):\n",
                   VT_LIST_SEG_CLASSES);
            seg_header = 1;
        }
        char notes[96] = "";
        if (p->augment) strcat(notes, "crop+flip ");
        if (p->dropout > 0)
            snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "dropout %.1f ", (double)p->dropout);
        if (p->weight_decay > 0)
            snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "wd %g ", (double)p->weight_decay);
        if (p->momentum > 0)
            snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "momentum %g ", (double)p->momentum);
        if (p->pretrained) strcat(notes, "needs --pretrained");
        printf("%-2d %-18s %-26s %10lld %-6s %7g %-12s %6d %5d %s\n", p->id, p->name, vt_arch_name(p->arch),
               count_params(p), p->optimizer, (double)p->lr, p->schedule, p->epochs, p->batch_size, notes);
        printf("   %s\n", p->title);
    }
    return 0;
}
