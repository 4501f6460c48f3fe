/* The conformance suite: per-op tolerances (from vt/op_list.h), the run of every selected case on
 * every backend and device compiled in against the CPU reference, and the counts over a report. The
 * run of one case is conformance_run.c, case contents conformance_contents.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_internal.h"
#include "vt/registry.h"

/* ---- tolerances ---- */

/* From vt/op_list.h (the table in docs/conformance.md shows the same values). atol is scaled by
 * sqrt(reduction length). */
#define VT_TOL_(e, name, n_src, n_dst, params, nmse, atol, rtol, update) [VT_OP_##e] = {nmse, atol, rtol, update},
static const vt_conf_tol vt_tol_table[] = {[VT_OP_NONE] = {0, 0, 0, 0}, VT_OP_LIST(VT_TOL_)};
#undef VT_TOL_
_Static_assert(sizeof vt_tol_table / sizeof vt_tol_table[0] == VT_OP_COUNT, "one tolerance per op");

vt_conf_tol vt_conf_op_tol(vt_op op) {
    vt_conf_tol none = {0, 0, 0, 0};
    return (op > VT_OP_NONE && op < VT_OP_COUNT) ? vt_tol_table[op] : none;
}

const char *vt_conf_verdict_name(vt_conf_verdict v) {
    switch (v) {
    case VT_CONF_PASS: return "pass";
    case VT_CONF_FAIL: return "FAIL";
    case VT_CONF_SKIP: return "skipped";
    default: return "?";
    }
}

void vt_conf_options_default(vt_conf_options *o) {
    memset(o, 0, sizeof *o);
    o->device = -1;
    o->builtin = 1;
}

/* ---- the whole suite ---- */

static vt_status add_target(vt_conf_report *rep, const char *label, const char *device, vt_backend *be,
                            const char *err) {
    vt_conf_target *grown = realloc(rep->targets, (size_t)(rep->n_targets + 1) * sizeof *grown);
    if (!grown) return vt_error(VT_ERR_OOM, "conformance: out of host memory");
    rep->targets = grown;
    vt_conf_target *t = &rep->targets[rep->n_targets++];
    memset(t, 0, sizeof *t);
    snprintf(t->label, sizeof t->label, "%s", label);
    snprintf(t->device, sizeof t->device, "%s", device);
    t->be = be;
    if (err) snprintf(t->error, sizeof t->error, "%s", err);
    return VT_OK;
}

vt_status vt_conf_run(const vt_conf_options *o, vt_conf_report *rep) {
    vt_conf_options defaults;
    if (!o) {
        vt_conf_options_default(&defaults);
        o = &defaults;
    }
    if (o->op && o->op[0] && vt_op_from_name(o->op) == VT_OP_NONE)
        return vt_error(VT_ERR_INVALID_ARG, "conformance: unknown op '%s'", o->op);
    if (o->backend && o->backend[0] && !vt_backend_reg_find(o->backend))
        return vt_error(VT_ERR_NOT_FOUND, "conformance: backend '%s' is not compiled in", o->backend);

    vt_conf_case *ext = NULL;
    int n_ext = 0;
    if (o->cases_dir && o->cases_dir[0]) VT_TRY(vt_conf_load_dir(o->cases_dir, &ext, &n_ext));

    vt_backend_opts ropts = {0};
    ropts.reference = 1;
    ropts.options = ""; /* the reference is the plain loops whatever the environment asks of the CPU backend */
    vt_backend *ref = NULL;
    vt_status st = vt_backend_reg_cpu()->init(0, &ropts, &ref);
    if (st != VT_OK) {
        vt_conf_cases_free(ext, n_ext);
        return st;
    }

    /* Targets: the CPU reference itself only for external cases (it is checked against the file),
     * the CPU fast path, then every device of every other backend. */
    int first_target = rep->n_targets;
    for (int b = vt_backend_reg_count() - 1; b >= 0; b--) {
        const vt_backend_reg *reg = vt_backend_reg_get(b);
        if (o->backend && o->backend[0] && strcmp(o->backend, reg->name) != 0) continue;
        int nd = reg->device_count();
        int is_cpu = strcmp(reg->name, "cpu") == 0;
        if (is_cpu && n_ext > 0 && st == VT_OK)
            st = add_target(rep, "cpu-ref", "host CPU (reference loops)", ref, NULL);
        if (nd <= 0 && !is_cpu && st == VT_OK) {
            st = add_target(rep, reg->name, "no device found", NULL, NULL);
            if (st == VT_OK) rep->targets[rep->n_targets - 1].no_device = 1;
        }
        for (int d = 0; d < nd && st == VT_OK; d++) {
            if (o->device >= 0 && d != o->device) continue;
            char label[48];
            if (is_cpu) snprintf(label, sizeof label, "cpu");
            else snprintf(label, sizeof label, "%s:%d", reg->name, d);
            vt_device_info info;
            memset(&info, 0, sizeof info);
            char device[128] = "?";
            if (reg->device_info(d, &info) == VT_OK) snprintf(device, sizeof device, "%s", info.name);
            vt_backend_opts topts = {0};
            topts.validation = o->validation;
            topts.options = o->backend_options;
            vt_backend *be = NULL;
            if (reg->init(d, &topts, &be) != VT_OK) st = add_target(rep, label, device, NULL, vt_last_error());
            else st = add_target(rep, label, device, be, NULL);
        }
    }

    int nb = o->builtin ? vt_conf_builtin_count() : 0;
    vt_backend *tb[64];
    const char *tl[64];
    for (int i = 0; i < nb + n_ext && st == VT_OK; i++) {
        const vt_conf_case *def = i < nb ? vt_conf_builtin(i) : &ext[i - nb];
        if (!vt_conf_op_selected(o, def->op)) continue;
        int nt = 0;
        vt_conf_result res;
        for (int t = first_target; t < rep->n_targets && nt < 64; t++) {
            vt_conf_target *tg = &rep->targets[t];
            if (tg->no_device) continue;
            if (!tg->be) {
                vt_conf_fill_result(&res, def, tg->label);
                res.verdict = VT_CONF_FAIL;
                snprintf(res.message, sizeof res.message, "backend did not start: %s", tg->error);
                st = vt_conf_report_add(rep, &res, o);
                continue;
            }
            if (tg->be == ref && i < nb) continue; /* the reference is only checked against files */
            tb[nt] = tg->be;
            tl[nt] = tg->label;
            nt++;
        }
        if (st != VT_OK || nt == 0) continue;
        vt_conf_case c;
        if (i < nb) vt_conf_case_copy_def(&c, def);
        else c = *def;
        st = vt_conf_run_case_targets(ref, tb, tl, nt, &c, o, rep);
        if (i < nb) vt_conf_case_release(&c);
    }

    for (int t = first_target; t < rep->n_targets; t++) {
        if (rep->targets[t].be && rep->targets[t].be != ref) vt_backend_free(rep->targets[t].be);
        rep->targets[t].be = NULL;
    }
    vt_backend_free(ref);
    vt_conf_cases_free(ext, n_ext);
    return st;
}

void vt_conf_report_free(vt_conf_report *rep) {
    free(rep->results);
    free(rep->targets);
    memset(rep, 0, sizeof *rep);
}

void vt_conf_report_count(const vt_conf_report *rep, vt_op op, const char *target, int *pass, int *fail, int *skip) {
    int p = 0, f = 0, s = 0;
    for (int i = 0; i < rep->n; i++) {
        const vt_conf_result *r = &rep->results[i];
        if (op != VT_OP_NONE && r->op != op) continue;
        if (target && strcmp(r->target, target) != 0) continue;
        if (r->verdict == VT_CONF_PASS) p++;
        else if (r->verdict == VT_CONF_FAIL) f++;
        else s++;
    }
    if (pass) *pass = p;
    if (fail) *fail = f;
    if (skip) *skip = s;
}
