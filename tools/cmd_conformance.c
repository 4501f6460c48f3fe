/* `vtrain conformance`: runs every op case on every backend against the CPU reference, prints the
 * op x backend table (or JSON), and writes the op-support markdown table. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "vt/conformance.h"
#include "vt/registry.h"

static void usage(FILE *f) {
    fprintf(f, "usage: vtrain conformance [--backend B] [--device N] [--op NAME] [--cases DIR|FILE] [--no-builtin]\n"
               "                          [--json] [--list] [--verbose] [--validation] [--markdown FILE]\n"
               "                          [--backend-options key=value,...]\n"
               "  Checks every op against the CPU reference (plain loops) on each backend/device present.\n"
               "  --backend B      only this backend (cpu = the fast CPU path; cpu, opencl, vulkan, cuda)\n"
               "  --device N       only device N of each backend\n"
               "  --backend-options S  the kernel-path options of the --backend given (docs/backend-<name>.md;\n"
               "                   default: the environment's VT_<BACKEND>_OPTIONS); an unknown key is an error\n"
               "  --op NAME        only cases of this op (e.g. conv2d, batchnorm_bwd)\n"
               "  --cases DIR      also run the JSON case files in DIR (or one file), see docs/conformance.md\n"
               "  --no-builtin     run only the case files\n"
               "  --json           print machine-readable results instead of the table\n"
               "  --list           list the selected cases and exit\n"
               "  --verbose        print every result as it comes\n"
               "  --validation     start backends with validation on (Vulkan layers; their errors fail)\n"
               "  --markdown FILE  also write the op-support table (docs/op-support.md)\n"
               "  exit status: 0 all passed or skipped, 1 a failure, 2 bad usage\n");
}

static void print_progress(const vt_conf_result *r, void *user) {
    (void)user;
    fprintf(stderr, "%-8s %-10s %-70.70s %s%s%s\n", vt_conf_verdict_name(r->verdict), r->target, r->case_name,
            r->message[0] ? "(" : "", r->message, r->message[0] ? ")" : "");
}

static int list_cases(const vt_conf_options *o) {
    vt_conf_case *ext = NULL;
    int n_ext = 0;
    if (o->cases_dir && vt_conf_load_dir(o->cases_dir, &ext, &n_ext) != VT_OK) {
        fprintf(stderr, "vtrain conformance: %s\n", vt_last_error());
        return 1;
    }
    int nb = o->builtin ? vt_conf_builtin_count() : 0, shown = 0;
    for (int i = 0; i < nb + n_ext; i++) {
        const vt_conf_case *c = i < nb ? vt_conf_builtin(i) : &ext[i - nb];
        if (o->op && strcmp(o->op, vt_op_name(c->op)) != 0) continue;
        printf("%-20s %-72s %s\n", vt_op_name(c->op), c->name, c->origin);
        shown++;
    }
    printf("%d cases\n", shown);
    vt_conf_cases_free(ext, n_ext);
    return 0;
}

int vt_cmd_conformance(int argc, char **argv) {
    vt_conf_options o;
    vt_conf_options_default(&o);
    int json = 0, list = 0, verbose = 0;
    const char *markdown = NULL;
    static const char *const known[] = {
        "--backend", "--backend-options", "--device",  "--op",   "--cases", "--markdown", "--no-builtin", "--json",
        "--list",    "--validation",      "--verbose", "--help", NULL};
    static char backend[16], op[64], cases[512], md[512], options[512];
    int options_given = 0;
    vt_args a;
    vt_args_init(&a, "conformance", argc, argv, known);
    while (vt_args_next(&a)) {
        long long n;
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--backend")) {
            if (vt_args_str(&a, backend, sizeof backend)) return VT_EXIT_USAGE;
            o.backend = backend;
        } else if (vt_args_is(&a, "--backend-options")) {
            if (vt_args_str(&a, options, sizeof options)) return VT_EXIT_USAGE;
            options_given = 1;
        } else if (vt_args_is(&a, "--device")) {
            if (vt_args_int(&a, 0, 1000, &n)) return VT_EXIT_USAGE;
            o.device = (int)n;
        } else if (vt_args_is(&a, "--op")) {
            if (vt_args_str(&a, op, sizeof op)) return VT_EXIT_USAGE;
            o.op = op;
            if (vt_op_from_name(o.op) == VT_OP_NONE)
                return vt_cli_usage_error("conformance", "unknown op '%s' (--list shows them)", o.op);
        } else if (vt_args_is(&a, "--cases")) {
            if (vt_args_str(&a, cases, sizeof cases)) return VT_EXIT_USAGE;
            o.cases_dir = cases;
        } else if (vt_args_is(&a, "--markdown")) {
            if (vt_args_str(&a, md, sizeof md)) return VT_EXIT_USAGE;
            markdown = md;
        } else if (vt_args_is(&a, "--no-builtin")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            o.builtin = 0;
        } else if (vt_args_is(&a, "--json")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            json = 1;
        } else if (vt_args_is(&a, "--list")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            list = 1;
        } else if (vt_args_is(&a, "--validation")) {
            if (vt_args_switch(&a)) return VT_EXIT_USAGE;
            o.validation = 1;
        } else {
            return vt_args_unknown(&a);
        }
    }
    verbose = vt_cli_verbose; /* -v / --verbose: also every result as it comes */
    if (o.backend && !vt_backend_reg_find(o.backend))
        return vt_cli_usage_error("conformance", "backend '%s' is not compiled in (vtrain devices lists them)",
                                  o.backend);
    if (options_given) {
        if (!o.backend)
            return vt_cli_usage_error("conformance",
                                      "--backend-options needs --backend (the options are one backend's)");
        o.backend_options = options;
    }
    if (list) return list_cases(&o);
    if (verbose) o.on_result = print_progress;

    vt_conf_report rep;
    memset(&rep, 0, sizeof rep);
    vt_status st = vt_conf_run(&o, &rep);
    if (st != VT_OK) {
        vt_cli_lib_error("conformance", NULL);
        vt_conf_report_free(&rep);
        return VT_EXIT_RUNTIME;
    }
    if (json) vt_conf_report_print_json(&rep, stdout);
    else vt_conf_report_print_table(&rep, stdout);
    if (markdown && vt_conf_report_write_markdown(&rep, markdown) != VT_OK) {
        vt_cli_lib_error("conformance", NULL);
        vt_conf_report_free(&rep);
        return VT_EXIT_RUNTIME;
    }
    int fails = 0, ran = 0;
    vt_conf_report_count(&rep, VT_OP_NONE, NULL, NULL, &fails, NULL);
    for (int t = 0; t < rep.n_targets; t++) ran += !rep.targets[t].no_device;
    if (o.backend && !ran) {
        /* asked for one backend and it has nothing to check: not a pass */
        fprintf(stderr, "vtrain conformance: backend %s has no device here\n", o.backend);
        fails++;
    }
    for (int t = 0; t < rep.n_targets; t++)
        if (rep.targets[t].error[0]) fails++;
    vt_conf_report_free(&rep);
    return fails ? 1 : 0;
}
