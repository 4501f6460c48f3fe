/* `vtrain download cifar100|cifar10`: fetch, verify and extract an official CIFAR binary release
 * into a data folder (default data/); a second run finds it and does nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/download.h"

static void download_usage(FILE *f) {
    fprintf(f, "usage: vtrain download cifar100|cifar10 [--dir DIR] [--mirror URL] [--md5 HEX] [--quiet]\n"
               "\n"
               "Fetches the official binary release over HTTPS, resumes a partial download (DIR/<archive>.part),\n"
               "checks its MD5 and extracts it into DIR (default data/).\n"
               "\n"
               "  --dir DIR     folder for the archive and the extracted release (default data)\n"
               "  --mirror URL  base URL holding the archive, or the archive's full URL (ending in .tar.gz);\n"
               "                default $VTRAIN_MIRROR, else https://www.cs.toronto.edu/~kriz/\n"
               "  --md5 HEX     expected MD5 instead of the official one (for a mirror serving another file)\n"
               "  --quiet       no progress output\n"
               "\n"
               "Offline: place cifar-100-binary.tar.gz (or cifar-10-binary.tar.gz) in DIR by hand and rerun;\n"
               "it is verified and extracted.\n");
}

int vt_cmd_download(int argc, char **argv) {
    static const char *const known[] = {"--dir", "--mirror", "--md5", "--quiet", "--help", "--verbose", NULL};
    static const char *const names[] = {"cifar100", "cifar10"};
    static char dir[512] = "data", mirror[1024], md5[64];
    const char *name = NULL;
    vt_download_opts opts = {NULL, NULL, false};
    vt_args a;
    vt_args_init(&a, "download", argc, argv, known);
    while (vt_args_next(&a)) {
        if (vt_args_help(&a)) {
            download_usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--quiet") || vt_args_is(&a, "-q")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            opts.quiet = true;
        } else if (vt_args_is(&a, "--dir")) {
            if (vt_args_str(&a, dir, sizeof dir)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--mirror")) {
            if (vt_args_str(&a, mirror, sizeof mirror)) return VT_EXIT_USAGE;
            opts.mirror = mirror;
        } else if (vt_args_is(&a, "--md5")) {
            if (vt_args_str(&a, md5, sizeof md5)) return VT_EXIT_USAGE;
            opts.md5 = md5;
        } else if (a.flag) {
            return vt_args_unknown(&a);
        } else if (!name) {
            name = a.arg;
        } else {
            return vt_cli_usage_error("download", "one dataset at a time ('%s' and '%s' given)", name, a.arg);
        }
    }
    if (!name) return vt_cli_usage_error("download", "which dataset? cifar100 or cifar10");
    if (strcmp(name, "cifar100") != 0 && strcmp(name, "cifar10") != 0) {
        const char *s = vt_cli_suggest(name, names, 2);
        if (s) return vt_cli_usage_error("download", "unknown dataset '%s' (did you mean %s?)", name, s);
        return vt_cli_usage_error("download", "unknown dataset '%s': known are cifar100 and cifar10", name);
    }
    vt_status s = vt_download_dataset(name, dir, &opts);
    if (s != VT_OK) return vt_cli_lib_error("download", vt_status_name(s));
    char path[1024];
    if (vt_dataset_find_or_explain(name, dir, path, sizeof path) == VT_OK && !opts.quiet)
        printf("%s ready in %s\n", name, path);
    return VT_EXIT_OK;
}
