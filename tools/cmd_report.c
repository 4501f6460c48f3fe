/* `vtrain report RUN_DIR... [--bench FILE.json]... [--out DIR]`: summary.md, SVG charts and one
 * report.html from run folders and bench results (the work is in core/src/report*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: vtrain report RUN_DIR... [--bench FILE.json]... [--out DIR]\n"
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
    static const char *const known[] = {"--bench", "--out", "--help", "--verbose", NULL};
    vt_args a;
    vt_args_init(&a, "report", argc, argv, known);
    while (vt_args_next(&a)) {
        if (vt_args_help(&a)) {
            report_usage(stdout);
            goto done;
        } else if (vt_args_is(&a, "--out") || vt_args_is(&a, "--bench")) {
            int is_out = vt_args_is(&a, "--out");
            const char *v = vt_args_value(&a);
            if (!v) {
                rc = VT_EXIT_USAGE;
                goto done;
            }
            if (is_out) out = v;
            else bench[nb++] = v;
        } else if (a.flag) {
            rc = vt_args_unknown(&a);
            goto done;
        } else {
            runs[nr++] = a.arg;
        }
    }
    if (nr == 0 && nb == 0) {
        rc = vt_cli_usage_error("report", "give at least one RUN_DIR or --bench FILE");
        goto done;
    }
    if (!out) out = nr == 1 ? runs[0] : "report";
    vt_status s = vt_report_write_ex(runs, nr, bench, nb, out);
    if (s != VT_OK) {
        rc = vt_cli_lib_error("report", NULL);
        goto done;
    }
    printf("wrote %s/summary.md and %s/report.html%s\n", out, out,
           nr ? " (+ acc_epoch.svg, acc_time.svg, loss_epoch.svg)" : "");
done:
    free(runs);
    free(bench);
    return rc;
}
