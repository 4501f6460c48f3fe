/* `vtrain list`: the problems with their models, parameter counts and default hyper-parameters. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "vt/models.h"

/* Parameter count of a problem's model for CIFAR-100 shapes (builds the graph, allocates nothing). */
static long long count_params(const vt_problem *p) {
    vt_model *m = vt_model_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_model_cfg cfg;
    vt_model_cfg_default(p, 100, 3, 32, 32, &cfg);
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){2, 3, 32, 32});
    vt_model_build(g, &cfg, x);
    long long n = vt_graph_status(g) == VT_OK ? (long long)vt_model_param_count(m) : -1;
    if (n < 0) fprintf(stderr, "vtrain list: %s: %s\n", p->name, vt_last_error());
    vt_graph_free(g);
    vt_model_free(m);
    return n;
}

int vt_cmd_list(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vtrain list\n\nShows the practice's problems, their models, parameter counts (100 classes) and defaults.\n");
            return 0;
        }
        fprintf(stderr, "vtrain list: unknown option %s\nusage: vtrain list\n", argv[i]);
        return 2;
    }
    printf("%-2s %-18s %-26s %10s %-6s %7s %-12s %6s %5s %s\n", "#", "name", "model", "params", "optim", "lr", "schedule",
           "epochs", "batch", "notes");
    for (int i = 0; i < vt_problem_count(); i++) {
        const vt_problem *p = vt_problem_get(i);
        char notes[96] = "";
        if (p->augment) strcat(notes, "crop+flip ");
        if (p->dropout > 0) snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "dropout %.1f ", (double)p->dropout);
        if (p->weight_decay > 0) snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "wd %g ", (double)p->weight_decay);
        if (p->momentum > 0) snprintf(notes + strlen(notes), sizeof notes - strlen(notes), "momentum %g ", (double)p->momentum);
        if (p->pretrained) strcat(notes, "needs --pretrained");
        printf("%-2d %-18s %-26s %10lld %-6s %7g %-12s %6d %5d %s\n", p->id, p->name, vt_arch_name(p->arch), count_params(p),
               p->optimizer, (double)p->lr, p->schedule, p->epochs, p->batch_size, notes);
        printf("   %s\n", p->title);
    }
    return 0;
}
