/* `vtrain download cifar100|cifar10`: fetch, verify and extract an official CIFAR binary release
 * into a data folder (default data/); a second run finds it and does nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "vt/download.h"

static void download_usage(FILE *f) {
    fprintf(f,
            "usage: vtrain download cifar100|cifar10 [--dir DIR] [--mirror URL] [--md5 HEX] [--quiet]\n"
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
    const char *name = NULL, *dir = "data";
    vt_download_opts opts = {NULL, NULL, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            download_usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opts.quiet = true;
        } else if (strcmp(a, "--dir") == 0 || strcmp(a, "--mirror") == 0 || strcmp(a, "--md5") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vtrain download: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--dir") == 0)
                dir = v;
            else if (strcmp(a, "--mirror") == 0)
                opts.mirror = v;
            else
                opts.md5 = v;
        } else if (a[0] == '-') {
            fprintf(stderr, "vtrain download: unknown option '%s'\n", a);
            download_usage(stderr);
            return 2;
        } else if (!name) {
            name = a;
        } else {
            fprintf(stderr, "vtrain download: one dataset at a time ('%s' and '%s' given)\n", name, a);
            return 2;
        }
    }
    if (!name) {
        download_usage(stderr);
        return 2;
    }
    if (strcmp(name, "cifar100") != 0 && strcmp(name, "cifar10") != 0) {
        fprintf(stderr, "vtrain download: unknown dataset '%s': known are cifar100 and cifar10\n", name);
        return 2;
    }
    vt_status s = vt_download_dataset(name, dir, &opts);
    if (s != VT_OK) {
        fprintf(stderr, "vtrain download: %s: %s\n", vt_status_name(s), vt_last_error());
        return 1;
    }
    char path[1024];
    if (vt_dataset_find_or_explain(name, dir, path, sizeof path) == VT_OK && !opts.quiet)
        printf("%s ready in %s\n", name, path);
    return 0;
}
