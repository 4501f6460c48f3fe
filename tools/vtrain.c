/* vtrain: the command-line program. Dispatches to one subcommand per file (tools/cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

typedef struct vt_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} vt_subcommand;

static const vt_subcommand vt_subcommands[] = {
    {"train", vt_cmd_train, "train one problem or all of them (--problem N|NAME|all)"},
    {"eval", vt_cmd_eval, "recompute test loss/accuracy of a saved checkpoint"},
    {"list", vt_cmd_list, "show the problems, their models and default hyper-parameters"},
    {"devices", vt_cmd_devices, "list every backend compiled in and every device it sees"},
    {"conformance", vt_cmd_conformance, "check every op on every backend against the CPU reference"},
    {"bench", vt_cmd_bench, "op and model benchmarks, every backend side by side"},
    {"report", vt_cmd_report, "summary.md, SVG plots and an HTML page from run folders"},
    {"export", vt_cmd_export, "export a checkpoint's weights (safetensors, torchvision names)"},
    {"download", vt_cmd_download, "fetch and verify CIFAR-100 / CIFAR-10"},
};
#define VT_N_SUBCOMMANDS (sizeof vt_subcommands / sizeof vt_subcommands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain <command> [options]   (vtrain <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < VT_N_SUBCOMMANDS; i++) fprintf(f, "  %-12s %s\n", vt_subcommands[i].name, vt_subcommands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vtrain 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < VT_N_SUBCOMMANDS; i++)
        if (strcmp(argv[1], vt_subcommands[i].name) == 0) return vt_subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vtrain: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
