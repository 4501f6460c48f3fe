/* Running one conformance case: every operand inside a bigger buffer between canaries, the case on
 * the CPU reference and on a target, and the comparison of the outputs by normalised MSE and
 * elementwise (NaN/Inf in the same places, optimizer updates relative to the reference's). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_internal.h"

/* Room before and after each operand for the canaries; the front also makes the tensor offset
 * non-zero and keeps it on the planner's alignment. */
#define VT_CONF_GUARD ((size_t)VT_ALIGN)

static uint8_t canary_byte(size_t i) { return (uint8_t)(0xA5u ^ (uint8_t)(i * 7u)); }

typedef struct conf_slot {
    vt_conf_operand *o;
    char role[8]; /* "src2", "dst0" */
    vt_buffer *buf;
    vt_tensor t;
    size_t nbytes, total;
    void *after; /* contents read back after the run (nbytes) */
} conf_slot;

typedef struct conf_run {
    conf_slot slots[VT_MAX_SRC + VT_MAX_DST];
    int n_slots;
    vt_conf_verdict verdict;
    char message[320];
} conf_run;

static void run_free(conf_run *r) {
    for (int i = 0; i < r->n_slots; i++) {
        if (r->slots[i].buf) vt_backend_buffer_free(r->slots[i].buf);
        free(r->slots[i].after);
    }
    memset(r, 0, sizeof *r);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
run_set(conf_run *r, vt_conf_verdict v, const char *fmt, ...) {
    r->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
}

/* Ops that read per-step values from the context. */
static int ctx_dependent(vt_op op) {
    return op == VT_OP_DROPOUT || op == VT_OP_DROPOUT_BWD || op == VT_OP_BATCH_PREP || op == VT_OP_SGD ||
           op == VT_OP_ADAM;
}

/* The context of the replay: another step, seed, learning rate and batch. */
static vt_step_ctx replay_ctx(const vt_conf_case *c) {
    vt_step_ctx r = c->ctx;
    /* Philox counters take the step's high word: cross 2^32 there. Adam's bias correction would
     * need step counts no run reaches to see the high word, so it gets a nearby step. */
    r.step = c->ctx.step + (c->op == VT_OP_ADAM ? 7u : 0x100000001ull);
    r.seed = c->ctx.seed ^ 0x5a5a5a5au;
    r.lr = c->ctx.lr * 0.5f;
    if (c->op == VT_OP_BATCH_PREP) {
        int64_t room = c->src[0].shape[0] - c->dst[0].shape[0];
        r.batch_start = c->ctx.batch_start == room ? 0 : room;
    }
    return r;
}

/* Runs c on be. On return r->verdict is PASS (ran, outputs in slots[].after), SKIP or FAIL with a
 * message; the status is only for host-side failures (out of memory). */
static vt_status run_on(vt_backend *be, vt_conf_case *c, conf_run *r) {
    memset(r, 0, sizeof *r);
    vt_node node;
    memset(&node, 0, sizeof node);
    node.op = c->op;
    node.p = c->p;
    snprintf(node.label, sizeof node.label, "%.47s", c->name);
    for (int i = 0; i < VT_MAX_SRC + VT_MAX_DST; i++) {
        int is_src = i < VT_MAX_SRC;
        vt_conf_operand *o = is_src ? &c->src[i] : &c->dst[i - VT_MAX_SRC];
        if (!o->present) continue;
        conf_slot *s = &r->slots[r->n_slots++];
        s->o = o;
        snprintf(s->role, sizeof s->role, "%s%d", is_src ? "src" : "dst", is_src ? i : i - VT_MAX_SRC);
        vt_tensor_init(&s->t, s->role, o->dtype, o->ndim, o->shape);
        s->nbytes = vt_conf_operand_nbytes(o);
        s->total = VT_CONF_GUARD + ((s->nbytes + 3) & ~(size_t)3) + VT_CONF_GUARD;
        uint8_t *img = malloc(s->total);
        s->after = malloc(s->nbytes ? s->nbytes : 1);
        if (!img || !s->after) {
            free(img);
            return vt_error(VT_ERR_OOM, "conformance %s: out of host memory", c->name);
        }
        for (size_t k = 0; k < s->total; k++) img[k] = canary_byte(k);
        memcpy(img + VT_CONF_GUARD, o->data, s->nbytes);
        vt_status st = vt_backend_buffer_alloc(be, s->total, &s->buf);
        if (st == VT_OK) st = be->iface->buffer_write(be, s->buf, 0, img, s->total);
        free(img);
        if (st != VT_OK) {
            run_set(r, VT_CONF_FAIL, "%s: buffer setup failed: %s", s->role, vt_last_error());
            return VT_OK;
        }
        s->t.buf = s->buf;
        s->t.offset = VT_CONF_GUARD;
        if (is_src) node.src[i] = &s->t;
        else node.dst[i - VT_MAX_SRC] = &s->t;
    }
    if (vt_node_validate(&node) != VT_OK) {
        run_set(r, VT_CONF_FAIL, "the case itself is invalid: %s", vt_last_error());
        return VT_OK;
    }
    if (!vt_backend_supports(be, &node)) {
        run_set(r, VT_CONF_SKIP, "not supported by %s", be->info.backend);
        return VT_OK;
    }
    vt_status st;
    if (ctx_dependent(c->op)) {
        /* Record once, replay with other per-step values: a value baked into the recording shows.
         * Only built-in cases replay: a file's expected values are for the one run it describes. */
        vt_graph_exec ex = {&node, 1, NULL, NULL};
        vt_step_ctx again = replay_ctx(c);
        st = vt_backend_graph_compute(be, &ex, &c->ctx);
        if (st == VT_OK && c->replay) st = vt_backend_graph_compute(be, &ex, &again);
        if (st == VT_OK) st = vt_backend_sync(be);
        vt_graph_exec_reset(be, &ex);
    } else {
        st = vt_backend_compute(be, &node, &c->ctx);
        if (st == VT_OK) st = vt_backend_sync(be);
    }
    if (st == VT_ERR_UNSUPPORTED) {
        run_set(r, VT_CONF_SKIP, "unsupported: %s", vt_last_error());
        return VT_OK;
    }
    if (st != VT_OK) {
        run_set(r, VT_CONF_FAIL, "error (%s): %s", vt_status_name(st), vt_last_error());
        return VT_OK;
    }
    for (int i = 0; i < r->n_slots; i++) {
        conf_slot *s = &r->slots[i];
        uint8_t *img = malloc(s->total);
        if (!img) return vt_error(VT_ERR_OOM, "conformance %s: out of host memory", c->name);
        st = be->iface->buffer_read(be, s->buf, 0, img, s->total);
        if (st != VT_OK) {
            free(img);
            run_set(r, VT_CONF_FAIL, "%s: read-back failed: %s", s->role, vt_last_error());
            return VT_OK;
        }
        for (size_t k = 0; k < s->total; k++) {
            if (k == VT_CONF_GUARD) k += s->nbytes; /* skip the tensor itself */
            if (k < s->total && img[k] != canary_byte(k)) {
                char where[96];
                snprintf(where, sizeof where, "%s byte %lld", k < VT_CONF_GUARD ? "before" : "after",
                         k < VT_CONF_GUARD ? (long long)(VT_CONF_GUARD - k)
                                           : (long long)(k - VT_CONF_GUARD - s->nbytes));
                r->verdict = VT_CONF_FAIL;
                snprintf(r->message, sizeof r->message, "canary overwritten: %s of %s %s", where, s->role,
                         vt_tensor_describe(&s->t, (char[64]){0}, 64));
                free(img);
                return VT_OK;
            }
        }
        memcpy(s->after, img + VT_CONF_GUARD, s->nbytes);
        free(img);
        if (!s->o->is_output && memcmp(s->after, s->o->data, s->nbytes) != 0) {
            run_set(r, VT_CONF_FAIL, "input %s was modified", s->role);
            return VT_OK;
        }
    }
    r->verdict = VT_CONF_PASS;
    return VT_OK;
}

/* ---- comparison ---- */

typedef struct conf_stats {
    double worst_nmse, worst_ratio;
    char worst_output[16];
    int64_t worst_index;
    double got, ref;
    int naninf_bad; /* NaN/Inf disagreement seen */
    char naninf_msg[128];
    double worst_update; /* compare_update: worst |du_got - du_ref| / its limit */
    int64_t update_index;
    double update_got, update_ref;
    char update_output[16];
} conf_stats;

static double as_double(const void *p, vt_dtype dt, int64_t i) {
    switch (dt) {
    case VT_F32: return (double)((const float *)p)[i];
    case VT_I32: return (double)((const int32_t *)p)[i];
    case VT_U32: return (double)((const uint32_t *)p)[i];
    case VT_U8: return (double)((const uint8_t *)p)[i];
    default: return 0.0;
    }
}

static void compare_output(const char *role, vt_dtype dt, int64_t n, const void *got, const void *ref, vt_conf_tol tol,
                           double red, conf_stats *st) {
    /* integer outputs (labels, counts, flags) are exact whatever the op's float tolerances: an
     * accumulated count one off among millions is as wrong as a class id one off */
    if (dt != VT_F32) tol.atol = tol.rtol = 0;
    double atol = tol.atol * sqrt(red > 1 ? red : 1);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = as_double(got, dt, i), r = as_double(ref, dt, i);
        double ratio;
        if (!isfinite(r) || !isfinite(g)) {
            int same = (isnan(r) && isnan(g)) || (isinf(r) && isinf(g) && (r > 0) == (g > 0));
            if (!same) {
                if (!st->naninf_bad)
                    snprintf(st->naninf_msg, sizeof st->naninf_msg, "NaN/Inf mismatch at %s[%lld]: got %g, expected %g",
                             role, (long long)i, g, r);
                st->naninf_bad = 1;
                ratio = INFINITY;
            } else {
                ratio = 0;
            }
        } else {
            double d = fabs(g - r);
            num += d * d;
            den += r * r;
            double lim = atol + tol.rtol * fabs(r);
            ratio = d == 0 ? 0 : (lim > 0 ? d / lim : INFINITY);
        }
        if (st->worst_index < 0 || ratio > st->worst_ratio) {
            st->worst_ratio = ratio;
            st->worst_index = i;
            st->got = g;
            st->ref = r;
            snprintf(st->worst_output, sizeof st->worst_output, "%s", role);
        }
    }
    double nmse = den > 0 ? num / den : (n > 0 ? num / (double)n : 0);
    if (nmse > st->worst_nmse) st->worst_nmse = nmse;
}

/* The update of an in-place f32 parameter, after - before, against the reference's (vt_conf_tol.update). */
static void compare_update(const char *role, int64_t n, const float *before, const float *got, const float *ref,
                           double rtol, conf_stats *st) {
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(ref[i]) || !isfinite(before[i])) continue; /* judged by compare_output */
        double dg = (double)got[i] - before[i], dr = (double)ref[i] - before[i];
        float big = fabsf(got[i]) > fabsf(ref[i]) ? fabsf(got[i]) : fabsf(ref[i]);
        double ulp = (double)nextafterf(big, INFINITY) - big;
        double lim = rtol * fabs(dr) + ulp;
        double ratio = fabs(dg - dr) / lim;
        if (ratio > st->worst_update) {
            st->worst_update = ratio;
            st->update_index = i;
            st->update_got = dg;
            st->update_ref = dr;
            snprintf(st->update_output, sizeof st->update_output, "%s", role);
        }
    }
}

void vt_conf_fill_result(vt_conf_result *res, const vt_conf_case *c, const char *label) {
    memset(res, 0, sizeof *res);
    snprintf(res->case_name, sizeof res->case_name, "%s", c->name);
    snprintf(res->origin, sizeof res->origin, "%s", c->origin);
    snprintf(res->target, sizeof res->target, "%s", label);
    res->op = c->op;
    res->worst_index = -1;
}

static int case_has_expected(const vt_conf_case *c) {
    for (int i = 0; i < VT_MAX_SRC; i++)
        if (c->src[i].present && c->src[i].is_output && c->src[i].expected) return 1;
    for (int i = 0; i < VT_MAX_DST; i++)
        if (c->dst[i].present && c->dst[i].is_output && c->dst[i].expected) return 1;
    return 0;
}

/* Compares the target run with the reference run (or with the case's expected data). */
static void judge(const vt_conf_case *c, const conf_run *ref, const conf_run *tgt, vt_conf_result *res) {
    if (tgt->verdict != VT_CONF_PASS) {
        res->verdict = tgt->verdict;
        snprintf(res->message, sizeof res->message, "%s", tgt->message);
        return;
    }
    conf_stats st;
    memset(&st, 0, sizeof st);
    st.worst_index = -1;
    for (int i = 0; i < tgt->n_slots; i++) {
        const conf_slot *s = &tgt->slots[i];
        if (!s->o->is_output) continue;
        const void *want = s->o->expected ? s->o->expected : (ref ? ref->slots[i].after : NULL);
        if (!want) continue;
        compare_output(s->role, s->o->dtype, vt_conf_operand_nelem(s->o), s->after, want, c->tol, c->red, &st);
        if (c->tol.update > 0 && strcmp(s->role, "dst0") == 0 && s->o->dtype == VT_F32)
            compare_update(s->role, vt_conf_operand_nelem(s->o), s->o->data, s->after, want, c->tol.update, &st);
    }
    res->worst_nmse = st.worst_nmse;
    res->worst_ratio = st.worst_ratio;
    res->worst_index = st.worst_index;
    res->worst_got = st.got;
    res->worst_ref = st.ref;
    snprintf(res->worst_output, sizeof res->worst_output, "%s", st.worst_output);
    if (st.naninf_bad) {
        res->verdict = VT_CONF_FAIL;
        snprintf(res->message, sizeof res->message, "%s", st.naninf_msg);
    } else if (st.worst_update > 1.0 && st.worst_ratio <= 1.0 && st.worst_nmse <= c->tol.nmse) {
        res->verdict = VT_CONF_FAIL;
        res->worst_ratio = st.worst_update;
        res->worst_index = st.update_index;
        res->worst_got = st.update_got;
        res->worst_ref = st.update_ref;
        snprintf(res->worst_output, sizeof res->worst_output, "%s", st.update_output);
        snprintf(res->message, sizeof res->message,
                 "update of %s[%lld] (after - before): got %.9g, expected %.9g (%.3g x the tolerance %g relative)",
                 st.update_output, (long long)st.update_index, st.update_got, st.update_ref, st.worst_update,
                 c->tol.update);
    } else if (st.worst_ratio > 1.0 || st.worst_nmse > c->tol.nmse) {
        res->verdict = VT_CONF_FAIL;
        snprintf(res->message, sizeof res->message,
                 "%s[%lld]: got %.9g, expected %.9g (%.3g x the tolerance); nmse %.3g (limit %.3g)", st.worst_output,
                 (long long)st.worst_index, st.got, st.ref, st.worst_ratio, st.worst_nmse, c->tol.nmse);
    } else {
        res->verdict = VT_CONF_PASS;
    }
}

vt_status vt_conf_report_add(vt_conf_report *rep, const vt_conf_result *r, const vt_conf_options *o) {
    if (rep->n == rep->cap) {
        int cap = rep->cap ? rep->cap * 2 : 256;
        vt_conf_result *grown = realloc(rep->results, (size_t)cap * sizeof *grown);
        if (!grown) return vt_error(VT_ERR_OOM, "conformance: out of host memory for results");
        rep->results = grown;
        rep->cap = cap;
    }
    rep->results[rep->n++] = *r;
    if (o && o->on_result) o->on_result(r, o->user);
    return VT_OK;
}

/* One case against several targets: the reference runs once. */
vt_status vt_conf_run_case_targets(vt_backend *ref, vt_backend *const *targets, const char *const *labels, int nt,
                                   vt_conf_case *c, const vt_conf_options *o, vt_conf_report *rep) {
    vt_conf_result res;
    vt_status st = vt_conf_case_materialize(c);
    if (st != VT_OK) {
        for (int t = 0; t < nt; t++) {
            vt_conf_fill_result(&res, c, labels[t]);
            res.verdict = VT_CONF_FAIL;
            snprintf(res.message, sizeof res.message, "case setup failed: %s", vt_last_error());
            VT_TRY(vt_conf_report_add(rep, &res, o));
        }
        return VT_OK;
    }
    int expected = case_has_expected(c);
    conf_run rr;
    memset(&rr, 0, sizeof rr);
    if (!expected) {
        if (!ref) {
            rr.verdict = VT_CONF_SKIP;
            snprintf(rr.message, sizeof rr.message, "no CPU reference to compare with");
        } else {
            st = run_on(ref, c, &rr);
            if (st != VT_OK) {
                run_free(&rr);
                return st;
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        vt_conf_fill_result(&res, c, labels[t]);
        if (!expected && rr.verdict != VT_CONF_PASS) {
            /* Without a reference result nothing can be checked: never count it as passed. */
            res.verdict = rr.verdict == VT_CONF_SKIP ? VT_CONF_SKIP : VT_CONF_FAIL;
            snprintf(res.message, sizeof res.message, "reference: %.300s", rr.message);
            VT_TRY(vt_conf_report_add(rep, &res, o));
            continue;
        }
        conf_run tr;
        st = run_on(targets[t], c, &tr);
        if (st != VT_OK) {
            run_free(&tr);
            run_free(&rr);
            return st;
        }
        judge(c, expected ? NULL : &rr, &tr, &res);
        run_free(&tr);
        st = vt_conf_report_add(rep, &res, o);
        if (st != VT_OK) break;
    }
    run_free(&rr);
    return st;
}

vt_status vt_conf_run_case(vt_backend *ref, vt_backend *target, const char *label, vt_conf_case *c, vt_conf_result *r) {
    vt_conf_report rep;
    memset(&rep, 0, sizeof rep);
    vt_status st = vt_conf_run_case_targets(ref, &target, &label, 1, c, NULL, &rep);
    if (st == VT_OK && rep.n == 1) *r = rep.results[0];
    free(rep.results);
    return st;
}

int vt_conf_op_selected(const vt_conf_options *o, vt_op op) {
    return !o || !o->op || !o->op[0] || strcmp(o->op, vt_op_name(op)) == 0;
}

vt_status vt_conf_run_target(vt_backend *ref, vt_backend *target, const char *label, const vt_conf_case *cases,
                             int n_cases, const vt_conf_options *o, vt_conf_report *rep) {
    int nb = o && !o->builtin ? 0 : vt_conf_builtin_count();
    for (int i = 0; i < nb + n_cases; i++) {
        const vt_conf_case *def = i < nb ? vt_conf_builtin(i) : &cases[i - nb];
        if (!vt_conf_op_selected(o, def->op)) continue;
        vt_conf_case c;
        if (i < nb) {
            vt_conf_case_copy_def(&c, def);
        } else {
            c = *def; /* external: shares the loaded data, which is never freed here */
        }
        vt_status st = vt_conf_run_case_targets(ref, &target, &label, 1, &c, o, rep);
        if (i < nb) vt_conf_case_release(&c);
        VT_TRY(st);
    }
    return VT_OK;
}
