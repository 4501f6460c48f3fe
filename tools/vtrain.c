/* vtrain: the command-line program. Dispatches to one subcommand per file (tools/cmd_*.c); handles
 * the program-wide flags (--help, help CMD, -V/--version/version, -v/--verbose). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "progress.h"

#define VT_VERSION "0.1.0"

typedef struct vt_subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} vt_subcommand;

static const vt_subcommand vt_subcommands[] = {
    {"train", vt_cmd_train, "train one problem or all of them (--problem N|NAME|all)"},
    {"eval", vt_cmd_eval, "recompute test loss/accuracy (segmentation: mIoU) of a saved checkpoint"},
    {"predict", vt_cmd_predict, "write the masks a segmentation checkpoint predicts for a dataset split"},
    {"list", vt_cmd_list, "show the problems, their models and default hyper-parameters"},
    {"devices", vt_cmd_devices, "list every backend compiled in and every device it sees"},
    {"conformance", vt_cmd_conformance, "check every op on every backend against the CPU reference"},
    {"bench", vt_cmd_bench, "op and model benchmarks, every backend side by side"},
    {"report", vt_cmd_report, "summary.md, SVG plots and an HTML page from run folders"},
    {"export", vt_cmd_export, "export a checkpoint's weights (safetensors, torchvision names)"},
    {"download", vt_cmd_download, "fetch and verify CIFAR-100 / CIFAR-10"},
    {"help", NULL, "this list, or a command's options (vtrain help CMD)"},
    {"version", NULL, "print the version (also -V, --version)"},
};
#define VT_N_SUBCOMMANDS (sizeof vt_subcommands / sizeof vt_subcommands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain [-v] <command> [options]   (vtrain help <command> for its options)\n\ncommands:\n");
    for (size_t i = 0; i < VT_N_SUBCOMMANDS; i++)
        fprintf(f, "  %-12s %s\n", vt_subcommands[i].name, vt_subcommands[i].help);
    fprintf(f, "\n  -v, --verbose  show where in the source an error was raised\n"
               "Options take --flag VALUE or --flag=VALUE. Exit status: 0 ok, 1 failed, 2 bad command line.\n");
}

static const vt_subcommand *find(const char *name) {
    for (size_t i = 0; i < VT_N_SUBCOMMANDS; i++)
        if (strcmp(name, vt_subcommands[i].name) == 0) return &vt_subcommands[i];
    return NULL;
}

static int unknown_command(const char *name) {
    const char *names[VT_N_SUBCOMMANDS];
    for (size_t i = 0; i < VT_N_SUBCOMMANDS; i++) names[i] = vt_subcommands[i].name;
    const char *s = vt_cli_suggest(name, names, (int)VT_N_SUBCOMMANDS);
    if (s) return vt_cli_usage_error(NULL, "unknown command '%s' (did you mean %s?)", name, s);
    return vt_cli_usage_error(NULL, "unknown command '%s'", name);
}

int main(int argc, char **argv) {
    /* the library prints nothing itself: its lines come here */
    vt_cli_output_init(&vt_cli_out, &vt_cli_verbose);
    int k = 1;
    while (k < argc && (!strcmp(argv[k], "-v") || !strcmp(argv[k], "--verbose"))) {
        vt_cli_verbose = 1;
        k++;
    }
    if (k >= argc) {
        usage(stderr);
        return VT_EXIT_USAGE;
    }
    const char *cmd = argv[k];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return VT_EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
        if (k + 1 < argc) return vt_cli_usage_error(NULL, "%s takes no arguments", cmd);
        printf("vtrain %s\n", VT_VERSION);
        return VT_EXIT_OK;
    }
    if (!strcmp(cmd, "help")) {
        if (k + 1 >= argc) {
            usage(stdout);
            return VT_EXIT_OK;
        }
        if (k + 2 < argc) return vt_cli_usage_error(NULL, "help takes one command name");
        const vt_subcommand *sc = find(argv[k + 1]);
        if (!sc) return unknown_command(argv[k + 1]);
        if (!sc->run) {
            usage(stdout);
            return VT_EXIT_OK;
        }
        char *hargv[] = {(char *)sc->name, (char *)"--help", NULL};
        return sc->run(2, hargv);
    }
    if (cmd[0] == '-') return vt_cli_usage_error(NULL, "unknown option %s", cmd);
    const vt_subcommand *sc = find(cmd);
    if (!sc || !sc->run) return unknown_command(cmd);
    return sc->run(argc - k, argv + k);
}
