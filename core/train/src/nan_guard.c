/* The NaN guard. At every read-back of the train metrics the loss and the parameters themselves are
 * checked (a ReLU network can hold NaN weights with a finite loss). --nan-policy stop ends the run with
 * a message; skip-step rolls the parameters back to the state the last finite window started from
 * (a read-back sees the loss before the window's last update, so the state at the read-back is
 * unproven) and goes on. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train_internal.h"

/* Is any parameter or BN statistic NaN/Inf? Checked on the device (FILL clears the flag, NONFINITE
 * sets it) so that only 4 bytes come back; a ReLU network can hold NaN weights with a finite loss. */
vt_status tr_params_nonfinite(vt_trainer *t, int *bad) {
    *bad = 0;
    vt_step_ctx ctx = {.step = (uint64_t)t->global_step, .seed = t->cfg.seed};
    vt_node n;
    memset(&n, 0, sizeof n);
    n.op = VT_OP_NONFINITE;
    n.src[0] = vt_params_flat_params(t->m, -1);
    n.dst[0] = t->nf_flag;
    snprintf(n.label, sizeof n.label, "nonfinite.params");
    if (!vt_backend_supports(t->be, &n)) {
        /* a backend without the op: the same test on a host copy (slower, never skipped) */
        for (int pass = 0; pass < 2 && !*bad; pass++) {
            int cnt = pass ? vt_params_n_states(t->m) : 1;
            for (int i = 0; i < cnt && !*bad; i++) {
                vt_tensor *x = pass ? vt_params_state_at(t->m, i) : n.src[0];
                size_t nb = vt_tensor_nbytes(x);
                float *h = malloc(nb ? nb : 4);
                if (!h) return vt_error(VT_ERR_OOM, "out of host memory");
                vt_status s = vt_tensor_download(x, h, nb);
                for (size_t k = 0; s == VT_OK && k < nb / sizeof *h && !*bad; k++) *bad = !isfinite(h[k]);
                free(h);
                VT_TRY(s);
            }
        }
        return VT_OK;
    }
    vt_node clear;
    memset(&clear, 0, sizeof clear);
    clear.op = VT_OP_FILL;
    clear.p.fill.value = 0.0f;
    clear.dst[0] = t->nf_flag;
    snprintf(clear.label, sizeof clear.label, "nonfinite.clear");
    VT_TRY(vt_backend_compute(t->be, &clear, &ctx));
    VT_TRY(vt_backend_compute(t->be, &n, &ctx));
    for (int i = 0; i < vt_params_n_states(t->m); i++) {
        n.src[0] = vt_params_state_at(t->m, i);
        snprintf(n.label, sizeof n.label, "nonfinite.state");
        VT_TRY(vt_backend_compute(t->be, &n, &ctx));
    }
    int32_t flag = 0;
    VT_TRY(vt_tensor_download(t->nf_flag, &flag, sizeof flag));
    *bad = flag != 0;
    return VT_OK;
}

/* What the message of a numeric stop says about the checkpoints on disk. */
static void kept_text(const vt_trainer *t, char *out, size_t n) {
    if (t->cfg.no_checkpoints || access(t->last_path, F_OK) != 0)
        snprintf(out, n, "no checkpoint had been written yet");
    else snprintf(out, n, "the last good checkpoint %s is kept", t->last_path);
}

vt_status tr_guard_epoch_start(vt_trainer *t, tr_guard *g, const double m[3]) {
    g->checked_step = g->ok_step = g->snap_step = t->global_step;
    g->ep_skipped = 0;
    for (int k = 0; k < 3; k++) g->good_m[k] = g->ok_m[k] = m[k];
    if (!t->cfg.nan_policy) return VT_OK;
    VT_TRY(vt_params_snapshot_take(t->m, &g->snap));
    return vt_params_snapshot_take(t->m, &g->ok);
}

/* Steps since the proven state are undone: counted as skipped, and BN's batch count goes back too. */
static void count_rolled_back(vt_trainer *t, tr_guard *g) {
    int64_t n_bad = t->global_step - g->ok_step;
    t->skipped_steps += n_bad;
    g->ep_skipped += n_bad;
    if (tr_bn_counts(t)) t->bn_tracked -= n_bad;
}

vt_status tr_guard_window(vt_trainer *t, tr_guard *g, double m[3], int ep, double lr, int *rolled_back) {
    *rolled_back = 0;
    int params_bad = 0;
    if (isfinite(m[0])) VT_TRY(tr_params_nonfinite(t, &params_bad));
    VT_TRY(tr_dp_any(t, &params_bad));
    const char *what = params_bad ? "parameters became NaN/Inf" : isnan(m[0]) ? "loss became NaN" : "loss became Inf";
    if ((params_bad || !isfinite(m[0])) && t->cfg.nan_policy) {
        count_rolled_back(t, g);
        g->bad_windows++;
        if (!t->cfg.quiet)
            vt_log(VT_LOG_WARN, "%s: %s in steps %lld-%lld; steps %lld-%lld skipped (rolled back)", t->cfg.problem,
                   what, (long long)g->checked_step + 1, (long long)t->global_step, (long long)g->ok_step + 1,
                   (long long)t->global_step);
        if (g->bad_windows > 20)
            return vt_error(VT_ERR_NUMERIC,
                            "%s: NaN/Inf in %d read-back windows in a row (%lld steps "
                            "skipped); try a smaller --lr. Checkpoints already written (%s) are kept",
                            t->cfg.problem, g->bad_windows, (long long)t->skipped_steps, t->last_path);
        VT_TRY(vt_params_snapshot_restore(t->m, &g->ok));
        VT_TRY(vt_params_snapshot_take(t->m, &g->snap));
        VT_TRY(tr_upload_train_metrics(t, g->ok_m));
        for (int k = 0; k < 3; k++) m[k] = g->good_m[k] = g->ok_m[k];
        g->checked_step = g->ok_step = g->snap_step = t->global_step;
        *rolled_back = 1;
        return VT_OK;
    }
    if (params_bad || !isfinite(m[0])) {
        char kept[800];
        kept_text(t, kept, sizeof kept);
        return vt_error(VT_ERR_NUMERIC,
                        "%s: %s between step %lld and %lld (epoch %d, learning rate %g)%s; try a smaller --lr (or "
                        "--nan-policy skip-step); %s",
                        t->cfg.problem,
                        params_bad    ? "parameters became NaN/Inf"
                        : isnan(m[0]) ? "training loss became NaN"
                                      : "training loss became Inf",
                        (long long)g->checked_step + 1, (long long)t->global_step, ep + 1, lr,
                        params_bad ? " while the loss stayed finite" : "", kept);
    }
    g->checked_step = t->global_step;
    if (!t->cfg.nan_policy) return VT_OK;
    g->bad_windows = 0;
    /* this finite window validates the state it started from, not the one it ends in */
    vt_params_snapshot tmp = g->ok;
    g->ok = g->snap;
    g->snap = tmp;
    g->ok_step = g->snap_step;
    g->snap_step = t->global_step;
    for (int k = 0; k < 3; k++) {
        g->ok_m[k] = g->good_m[k];
        g->good_m[k] = m[k];
    }
    return vt_params_snapshot_take(t->m, &g->snap);
}

vt_status tr_guard_epoch_end(vt_trainer *t, tr_guard *g, double m[3], int ep, int64_t first_step, int halted,
                             double *test_loss, double *test_acc, int *evaluated) {
    *evaluated = 0;
    if (t->cfg.nan_policy && !halted) {
        /* The epoch's last window proved the state it started from, not the one it ended in: finite
         * weights can still be large enough to give a NaN test loss. Then back to the proven state. */
        vt_status s = tr_evaluate(t, test_loss, test_acc);
        *evaluated = s == VT_OK;
        if (s == VT_ERR_NUMERIC && t->global_step > g->ok_step) {
            count_rolled_back(t, g);
            if (!t->cfg.quiet)
                vt_log(VT_LOG_WARN, "%s: %s; steps %lld-%lld skipped (rolled back)", t->cfg.problem, vt_last_error(),
                       (long long)g->ok_step + 1, (long long)t->global_step);
            s = vt_params_snapshot_restore(t->m, &g->ok);
            for (int k = 0; k < 3; k++) m[k] = g->ok_m[k];
            g->ok_step = t->global_step;
        }
        VT_TRY(s);
    }
    if (t->cfg.nan_policy && g->ep_skipped > 0 && g->ep_skipped >= t->step_in_epoch - first_step) {
        char kept[800];
        kept_text(t, kept, sizeof kept);
        return vt_error(VT_ERR_NUMERIC,
                        "%s: every step of epoch %d (%lld) gave NaN/Inf and was skipped, so nothing was trained; try a "
                        "smaller --lr; %s",
                        t->cfg.problem, ep + 1, (long long)g->ep_skipped, kept);
    }
    return VT_OK;
}

void tr_guard_free(tr_guard *g) {
    vt_params_snapshot_free(&g->snap);
    vt_params_snapshot_free(&g->ok);
}
