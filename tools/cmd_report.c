/* `vtrain report RUN_DIR... [--bench FILE.json]... [--out DIR]`: summary.md, SVG charts and one
 * report.html from run folders and bench results (the work is in core/src/report*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "vt/report.h"

static void report_usage(FILE *f) {
    fprintf(f,
            "usage: vtrain report RUN_DIR... [--bench FILE.json]... [--out DIR]\n"
            "  RUN_DIR         a run folder written by `vtrain train` (metrics.jsonl, summary.json, config.json)\n"
            "  --bench FILE    add the benchmark view of a `vtrain bench --json` (or pytorch_ref.py --bench) file\n"
            "  --out DIR       where summary.md, *.svg and report.html go (default: the run folder when there is\n"
            "                  one, else ./report)\n");
}

int vt_cmd_report(int argc, char **argv) {
    const char **runs = calloc((size_t)argc + 1, sizeof *runs);
    const char **bench = calloc((size_t)argc + 1, sizeof *bench);
    const char *out = NULL;
    int nr = 0, nb = 0, rc = 0;
    if (!runs || !bench) {
        fprintf(stderr, "vtrain report: out of memory\n");
        rc = 1;
        goto done;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            report_usage(stdout);
            goto done;
        } else if (strcmp(a, "--out") == 0 || strcmp(a, "--bench") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vtrain report: %s needs a value\n", a);
                rc = 2;
                goto done;
            }
            if (strcmp(a, "--out") == 0) out = argv[++i];
            else bench[nb++] = argv[++i];
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "vtrain report: unknown option %s\n", a);
            report_usage(stderr);
            rc = 2;
            goto done;
        } else {
            runs[nr++] = a;
        }
    }
    if (nr == 0 && nb == 0) {
        report_usage(stderr);
        rc = 2;
        goto done;
    }
    if (!out) out = nr == 1 ? runs[0] : "report";
    vt_status s = vt_report_write_ex(runs, nr, bench, nb, out);
    if (s != VT_OK) {
        fprintf(stderr, "vtrain report: %s\n", vt_last_error());
        rc = 1;
        goto done;
    }
    printf("wrote %s/summary.md and %s/report.html%s\n", out, out, nr ? " (+ acc_epoch.svg, acc_time.svg, loss_epoch.svg)" : "");
done:
    free(runs);
    free(bench);
    return rc;
}
