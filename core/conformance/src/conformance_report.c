/* Conformance results as text (op x backend table plus every failure), JSON, and the generated
 * op-support markdown table of docs/op-support.md. */
#include "vt/conformance.h"
#include "vt/registry.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int op_has_results(const vt_conf_report *rep, vt_op op) {
    for (int i = 0; i < rep->n; i++)
        if (rep->results[i].op == op) return 1;
    return 0;
}

static double worst_nmse(const vt_conf_report *rep, vt_op op, const char *target) {
    double w = 0;
    for (int i = 0; i < rep->n; i++) {
        const vt_conf_result *r = &rep->results[i];
        if (r->op == op && strcmp(r->target, target) == 0 && r->verdict != VT_CONF_SKIP && r->worst_nmse > w)
            w = r->worst_nmse;
    }
    return w;
}

void vt_conf_report_print_table(const vt_conf_report *rep, FILE *f) {
    fprintf(f, "%-20s", "op");
    for (int t = 0; t < rep->n_targets; t++)
        if (!rep->targets[t].no_device) fprintf(f, " %-22s", rep->targets[t].label);
    fprintf(f, "\n");
    for (int op = 1; op < VT_OP_COUNT; op++) {
        if (!op_has_results(rep, (vt_op)op)) continue;
        fprintf(f, "%-20s", vt_op_name((vt_op)op));
        for (int t = 0; t < rep->n_targets; t++) {
            if (rep->targets[t].no_device) continue;
            int p, fl, s;
            vt_conf_report_count(rep, (vt_op)op, rep->targets[t].label, &p, &fl, &s);
            char cell[64];
            if (p + fl + s == 0) snprintf(cell, sizeof cell, "-");
            else if (p + fl == 0) snprintf(cell, sizeof cell, "%d/%d/%d", p, fl, s);
            else
                snprintf(cell, sizeof cell, "%d/%d/%d %.1e", p, fl, s,
                         worst_nmse(rep, (vt_op)op, rep->targets[t].label));
            fprintf(f, " %-22s", cell);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "cells: pass/fail/skipped and the worst normalised MSE\n");
    for (int t = 0; t < rep->n_targets; t++) {
        int p, fl, s;
        vt_conf_report_count(rep, VT_OP_NONE, rep->targets[t].label, &p, &fl, &s);
        if (rep->targets[t].no_device) {
            fprintf(f, "%-10s SKIPPED: compiled in, no device found\n", rep->targets[t].label);
            continue;
        }
        fprintf(f, "%-10s %-40.40s %4d passed %4d failed %4d skipped%s%s\n", rep->targets[t].label,
                rep->targets[t].device, p, fl, s, rep->targets[t].error[0] ? "  not started: " : "",
                rep->targets[t].error);
    }
    for (int i = 0; i < rep->n; i++) {
        const vt_conf_result *r = &rep->results[i];
        if (r->verdict != VT_CONF_FAIL) continue;
        fprintf(f, "FAIL %s: %s [%s]: %s\n", r->target, r->case_name, r->origin, r->message);
    }
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* JSON has no NaN or Inf: print them as strings. */
static void json_num(FILE *f, double v) {
    if (isnan(v)) fprintf(f, "\"nan\"");
    else if (isinf(v)) fprintf(f, v > 0 ? "\"inf\"" : "\"-inf\"");
    else fprintf(f, "%.9g", v);
}

void vt_conf_report_print_json(const vt_conf_report *rep, FILE *f) {
    int p, fl, s;
    vt_conf_report_count(rep, VT_OP_NONE, NULL, &p, &fl, &s);
    fprintf(f, "{\n  \"summary\": {\"pass\": %d, \"fail\": %d, \"skip\": %d},\n  \"targets\": [", p, fl, s);
    for (int t = 0; t < rep->n_targets; t++) {
        const vt_conf_target *tg = &rep->targets[t];
        fprintf(f, "%s\n    {\"target\": ", t ? "," : "");
        json_str(f, tg->label);
        fprintf(f, ", \"device\": ");
        json_str(f, tg->device);
        fprintf(f, ", \"error\": ");
        json_str(f, tg->error);
        vt_conf_report_count(rep, VT_OP_NONE, tg->label, &p, &fl, &s);
        fprintf(f, ", \"no_device\": %s, \"pass\": %d, \"fail\": %d, \"skip\": %d}", tg->no_device ? "true" : "false",
                p, fl, s);
    }
    fprintf(f, "\n  ],\n  \"results\": [");
    for (int i = 0; i < rep->n; i++) {
        const vt_conf_result *r = &rep->results[i];
        fprintf(f, "%s\n    {\"op\": \"%s\", \"case\": ", i ? "," : "", vt_op_name(r->op));
        json_str(f, r->case_name);
        fprintf(f, ", \"origin\": ");
        json_str(f, r->origin);
        fprintf(f, ", \"target\": ");
        json_str(f, r->target);
        fprintf(f, ", \"verdict\": \"%s\", \"worst_nmse\": ",
                r->verdict == VT_CONF_PASS ? "pass" : (r->verdict == VT_CONF_FAIL ? "fail" : "skip"));
        json_num(f, r->worst_nmse);
        fprintf(f, ", \"worst_ratio\": ");
        json_num(f, r->worst_ratio);
        fprintf(f, ", \"worst_output\": ");
        json_str(f, r->worst_output);
        fprintf(f, ", \"worst_index\": %lld, \"worst_got\": ", (long long)r->worst_index);
        json_num(f, r->worst_got);
        fprintf(f, ", \"worst_expected\": ");
        json_num(f, r->worst_ref);
        fprintf(f, ", \"message\": ");
        json_str(f, r->message);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

vt_status vt_conf_report_write_markdown(const vt_conf_report *rep, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return vt_error(VT_ERR_IO, "conformance: cannot write %s", path);
    fprintf(f, "# Op support\n\n");
    fprintf(
        f,
        "Generated by `vtrain conformance --cases tests/cases --markdown docs/op-support.md`; do not edit by hand.\n");
    fprintf(f, "Each cell counts the built-in and file cases of the op on that backend: **yes** = every case\n");
    fprintf(f, "passed, **partial** = some cases are not supported (skipped), **no** = none supported,\n");
    fprintf(f, "**FAIL** = at least one case gave a wrong result. See docs/conformance.md for what is checked.\n");
    fprintf(f, "`cpu` is the CPU fast path; `cpu-ref` is the reference itself, checked only against the\n");
    fprintf(f, "independent NumPy case files in tests/cases.\n\n");
    fprintf(f, "| op |");
    for (int t = 0; t < rep->n_targets; t++)
        if (!rep->targets[t].no_device) fprintf(f, " %s |", rep->targets[t].label);
    fprintf(f, "\n|---|");
    for (int t = 0; t < rep->n_targets; t++)
        if (!rep->targets[t].no_device) fprintf(f, "---|");
    fprintf(f, "\n");
    for (int op = 1; op < VT_OP_COUNT; op++) {
        if (!op_has_results(rep, (vt_op)op)) continue;
        fprintf(f, "| %s |", vt_op_name((vt_op)op));
        for (int t = 0; t < rep->n_targets; t++) {
            if (rep->targets[t].no_device) continue;
            int p, fl, s;
            vt_conf_report_count(rep, (vt_op)op, rep->targets[t].label, &p, &fl, &s);
            int n = p + fl + s;
            if (n == 0) fprintf(f, " - |");
            else if (fl) fprintf(f, " FAIL (%d of %d) |", fl, n);
            else if (s == 0) fprintf(f, " yes (%d) |", p);
            else if (p == 0) fprintf(f, " no |");
            else fprintf(f, " partial (%d of %d) |", p, n);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\nDevices:\n\n");
    for (int t = 0; t < rep->n_targets; t++)
        if (!rep->targets[t].no_device)
            fprintf(f, "- %s: %s%s%s\n", rep->targets[t].label, rep->targets[t].device,
                    rep->targets[t].error[0] ? " (did not start: " : "", rep->targets[t].error[0] ? ")" : "");
    for (int b = 0; b < vt_backend_reg_count(); b++) {
        const vt_backend_reg *reg = vt_backend_reg_get(b);
        int listed = 0;
        size_t len = strlen(reg->name);
        for (int t = 0; t < rep->n_targets; t++)
            if (strncmp(rep->targets[t].label, reg->name, len) == 0 && !rep->targets[t].no_device) listed = 1;
        if (!listed && reg->device_count() <= 0)
            fprintf(f, "- %s: compiled in, but no device was found when this table was generated\n", reg->name);
    }
    if (fclose(f) != 0) return vt_error(VT_ERR_IO, "conformance: error writing %s", path);
    return VT_OK;
}
