/* The training loop: data resident on the device, one recorded graph per step, metrics read back
 * every log_every steps, evaluation on the whole test set, atomic checkpoints, exact resume.
 * The pieces live next door: run_config.c (configuration and resume), run_folder.c, setup.c (data,
 * model, graphs), data_parallel.c, nan_guard.c, eval.c, checkpoint.c, metrics.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

volatile int vt_train_stop_requested = 0;

/* What the loop carries from step to step and epoch to epoch. */
typedef struct tr_loop {
    double budget;          /* --max-minutes in seconds (unbounded without it) */
    int stop;               /* cut by --steps or --max-minutes */
    const char *cut_reason; /* "steps" or "max-minutes" */
    tr_guard guard;
    /* the epoch under way */
    int ep;              /* 0-based */
    double t0, lr, m[3]; /* start time, learning rate, running train metrics (loss sum, correct, count) */
    int64_t first_step, images;
} tr_loop;

/* Configuration, data, model and run folder: everything before the first step. */
static vt_status start_run(vt_trainer *t, const vt_train_cfg *cfg_in, vt_backend *be, vt_train_result *res) {
    t->comm = cfg_in->comm;
    t->nranks = vt_comm_size(t->comm);
    t->rank = vt_comm_rank(t->comm);
    vt_tensor_dict resume = {0};
    vt_status s = tr_configure(t, cfg_in, &resume);
    if (s == VT_OK) {
        copy_str(res->problem, sizeof res->problem, t->cfg.problem);
        if (t->rank > 0) t->cfg.quiet = 1; /* rank 0 speaks for the job */
        s = tr_run_folder_choose(t);
    }
    vt_dataset train = {0}, test = {0};
    if (s == VT_OK) s = tr_load_data(t, &train, &test);
    if (s == VT_OK) s = tr_setup(t, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK && t->cfg.resume[0]) s = tr_ckpt_load_tensors(t, &resume, t->cfg.resume, 1);
    if (s == VT_OK && t->step_in_epoch > t->steps_per_epoch)
        s = vt_error(VT_ERR_FORMAT,
                     "%s: step_in_epoch = %lld, but an epoch has %d steps here (other data or batch size?)",
                     t->cfg.resume, (long long)t->step_in_epoch, t->steps_per_epoch);
    vt_dict_free(&resume);
    /* every rank starts from rank 0's model, whatever it loaded */
    if (s == VT_OK && tr_dp(t)) s = vt_grad_sync_new(t->comm, vt_params_flat_grads(t->m, -1), 0, &t->gsync);
    if (s == VT_OK) s = tr_dp_broadcast_model(t);
    if (s == VT_OK) s = tr_run_folder_open(t);
    if (s == VT_OK && !t->hist) {
        t->cap_hist = t->cfg.epochs + 1;
        t->hist = calloc((size_t)t->cap_hist, sizeof *t->hist);
        if (!t->hist) s = vt_error(VT_ERR_OOM, "out of host memory");
    }
    if (s == VT_OK && t->seg) {
        /* per-class IoU of every epoch, as many as hist can hold (a resumed history is already there) */
        double *iou = realloc(t->hist_iou, (size_t)t->cap_hist * VT_TR_MAX_CLASSES * sizeof *iou);
        if (!iou) s = vt_error(VT_ERR_OOM, "out of host memory");
        else {
            for (size_t i = (size_t)t->n_hist * VT_TR_MAX_CLASSES; i < (size_t)t->cap_hist * VT_TR_MAX_CLASSES; i++)
                iou[i] = NAN;
            t->hist_iou = iou;
        }
    }
    return s;
}

static void announce(const vt_trainer *t) {
    if (t->cfg.quiet) return;
    vt_log(VT_LOG_INFO, "%s: %s, %lld parameters, %lld train / %lld test images, %d steps/epoch, backend %s (%s)",
           t->cfg.problem, vt_arch_name(t->prob->arch), (long long)vt_params_param_count(t->m), (long long)t->n_train,
           (long long)t->n_test, t->steps_per_epoch, t->be->info.backend, t->be->info.name);
}

/* --epochs 0: the initial weights, for checking a first step against another framework. */
static vt_status save_initial(vt_trainer *t) {
    char init_path[700];
    snprintf(init_path, sizeof init_path, "%s/init.vtc", t->cfg.out_dir);
    VT_TRY(tr_ckpt_save(t, init_path, 0));
    return t->cfg.no_checkpoints ? VT_OK : tr_ckpt_save(t, t->last_path, 0);
}

/* Unfreezing, the epoch's sample order, its running metrics (a resumed epoch's so far), the guard. */
static vt_status begin_epoch(vt_trainer *t, tr_loop *L) {
    L->ep = t->epoch;
    if (t->frozen && L->ep >= t->cfg.freeze_backbone_epochs) {
        /* unfreeze: the backbone's Adam steps count from here */
        t->frozen = 0;
        t->ocfg.step_offset[0] = t->global_step;
        VT_TRY(tr_build_train_graph(t));
    }
    VT_TRY(tr_upload_perm(t, L->ep));
    double m0[3] = {t->part_loss, t->part_correct, t->part_count};
    VT_TRY(tr_upload_train_metrics(t, m0));
    L->t0 = now_s();
    L->first_step = t->step_in_epoch;
    L->images = 0;
    for (int k = 0; k < 3; k++) L->m[k] = m0[k];
    L->lr = t->cfg.lr;
    return tr_guard_epoch_start(t, &L->guard, L->m);
}

/* The progress callback's view of the epoch after a read-back. */
static void report_progress(const vt_trainer *t, const tr_loop *L) {
    if (t->cfg.quiet || !t->cfg.progress) return;
    double el = now_s() - L->t0;
    double rate = el > 0 ? (double)(t->step_in_epoch - L->first_step) / el : 0; /* steps/s */
    int64_t left = (int64_t)(t->cfg.epochs - L->ep) * t->steps_per_epoch - t->step_in_epoch;
    if (t->cfg.max_steps > 0 && t->cfg.max_steps - t->global_step < left) left = t->cfg.max_steps - t->global_step;
    double elapsed = t->cum_seconds + el;
    double eta = rate > 0 ? (double)left / rate : -1;
    if (t->cfg.max_minutes > 0 && (eta < 0 || eta > L->budget - elapsed))
        eta = L->budget > elapsed ? L->budget - elapsed : 0;
    const double *m = L->m;
    vt_progress p = {.problem = t->cfg.problem,
                     .problem_index = t->cfg.problem_index,
                     .problem_count = t->cfg.problem_count,
                     .epoch = L->ep + 1,
                     .epochs = t->cfg.epochs,
                     .step = t->step_in_epoch,
                     .steps = t->steps_per_epoch,
                     .loss = m[2] > 0 ? m[0] / m[2] : 0,
                     .acc = m[2] > 0 ? 100 * m[1] / m[2] : 0,
                     .images_per_s = el > 0 ? (double)L->images / el : 0,
                     .elapsed_s = elapsed,
                     .eta_s = eta};
    t->cfg.progress(&p, t->cfg.progress_user);
}

/* The steps of the epoch, from where it stands to its end, a cut or a stop request. The metrics are read
 * back (and checked by the guard) every log_every steps, at the end and before stopping. */
static vt_status run_steps(vt_trainer *t, tr_loop *L) {
    while (t->step_in_epoch < t->steps_per_epoch) {
        double ep_frac = L->ep + (double)t->step_in_epoch / t->steps_per_epoch;
        L->lr = vt_schedule_lr(&t->sched, ep_frac);
        vt_step_ctx ctx = {.step = (uint64_t)t->global_step,
                           .seed = t->cfg.seed,
                           .lr = (float)L->lr,
                           .batch_start = t->step_in_epoch * t->cfg.batch_size + (int64_t)t->rank * t->local_b};
        VT_TRY(tr_train_step(t, &ctx));
        t->step_in_epoch++;
        t->global_step++;
        if (tr_bn_counts(t)) t->bn_tracked++;
        L->images += t->cfg.batch_size;
        int last = t->step_in_epoch == t->steps_per_epoch;
        int over_steps = t->cfg.max_steps > 0 && t->global_step >= t->cfg.max_steps;
        int over_time = t->cum_seconds + (now_s() - L->t0) > L->budget;
        if (tr_dp(t)) {
            /* clocks and signals differ between ranks: stop when any rank would */
            double f[2] = {over_time, vt_train_stop_requested};
            VT_TRY(vt_comm_allreduce_sum_f64(t->comm, f, 2));
            over_time = f[0] > 0;
            if (f[1] > 0) vt_train_stop_requested = 1;
        }
        int over = over_steps || over_time;
        if (!(last || over || vt_train_stop_requested || (t->step_in_epoch - L->first_step) % t->cfg.log_every == 0))
            continue;
        VT_TRY(tr_read_metrics(t->tr_metrics, L->m));
        VT_TRY(tr_dp_sum(t, L->m, 3));
        int rolled_back = 0;
        VT_TRY(tr_guard_window(t, &L->guard, L->m, L->ep, L->lr, &rolled_back));
        if (rolled_back) continue;
        report_progress(t, L);
        if (over) {
            L->stop = 1;
            L->cut_reason = over_steps ? "steps" : "max-minutes";
        }
        if (vt_train_stop_requested || over) break;
    }
    return VT_OK;
}

/* A stop or cut mid-epoch: the checkpoint holds where we are, and a resume continues this very epoch. */
static vt_status save_partial(vt_trainer *t, const tr_loop *L) {
    t->part_loss = L->m[0];
    t->part_correct = L->m[1];
    t->part_count = L->m[2];
    if (t->cfg.no_checkpoints) return VT_OK;
    VT_TRY(tr_dp_bn_states(t));
    return tr_ckpt_save(t, t->last_path, 0);
}

/* The finished epoch into the history and the log; returns whether its test accuracy is the best yet. */
static int record_epoch(vt_trainer *t, const tr_loop *L, double test_loss, double test_acc, double train_secs) {
    const double *m = L->m;
    vt_epoch_metrics *e = &t->hist[t->n_hist++];
    e->epoch = L->ep + 1;
    e->train_loss = m[2] > 0 ? m[0] / m[2] : 0;
    e->train_acc = m[2] > 0 ? 100 * m[1] / m[2] : 0;
    e->test_loss = test_loss;
    e->test_acc = test_acc;
    e->lr = L->lr;
    e->epoch_seconds = train_secs;
    e->cum_seconds = t->cum_seconds;
    e->images_per_s = train_secs > 0 ? (double)L->images / train_secs : 0;
    e->test_miou = e->test_miou_practice = NAN;
    if (t->seg) {
        e->test_miou = t->te_scores.miou;
        e->test_miou_practice = t->te_scores.miou_practice;
        double *iou = t->hist_iou + (size_t)(t->n_hist - 1) * VT_TR_MAX_CLASSES;
        for (int k = 0; k < VT_TR_MAX_CLASSES; k++) iou[k] = k < t->n_classes ? t->te_scores.iou[k] : NAN;
    }
    t->epoch++;
    t->step_in_epoch = 0;
    t->part_loss = t->part_correct = t->part_count = 0;
    /* segmentation: --target-acc is a test mIoU in percent, and best.vtc holds the best mIoU */
    double score = tr_score(t, e);
    if (t->cfg.target_acc > 0 && t->time_to_target == 0 && score >= t->cfg.target_acc)
        t->time_to_target = t->cum_seconds;
    int improved =
        t->n_hist == 1 || (t->seg ? e->test_miou > t->best_miou || (isnan(t->best_miou) && !isnan(e->test_miou))
                                  : test_acc > t->best_acc);
    if (improved) {
        t->best_acc = test_acc;
        t->best_miou = e->test_miou;
        t->best_epoch = L->ep + 1;
    }
    if (!t->cfg.quiet && t->seg)
        vt_log(VT_LOG_INFO,
               "%s epoch %d/%d: train loss %.4f pixel acc %.2f%% | test loss %.4f pixel acc %.2f%% mIoU %.2f%% "
               "(practice %.2f%%) | lr %.3g | %.1fs, %.1f img/s",
               t->cfg.problem, L->ep + 1, t->cfg.epochs, e->train_loss, e->train_acc, test_loss, test_acc,
               100.0 * e->test_miou, 100.0 * e->test_miou_practice, L->lr, train_secs, e->images_per_s);
    else if (!t->cfg.quiet)
        vt_log(VT_LOG_INFO,
               "%s epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.3g | %.1fs, %.0f img/s",
               t->cfg.problem, L->ep + 1, t->cfg.epochs, e->train_loss, e->train_acc, test_loss, test_acc, L->lr,
               train_secs, e->images_per_s);
    return improved;
}

/* What the communication cost, for docs/distributed.md's model. */
static void report_comm(const vt_trainer *t) {
    if (!tr_dp(t) || t->cfg.quiet || !(t->cum_seconds > 0)) return;
    const vt_comm_stats *cs = vt_comm_get_stats(t->comm);
    char bn[160] = "";
    if (t->sync_bn_combines)
        snprintf(bn, sizeof bn, "; synchronised batch norm %.3f s (%.1f%%, %lld combines)", t->sync_bn_seconds,
                 100.0 * t->sync_bn_seconds / t->cum_seconds, (long long)t->sync_bn_combines);
    vt_log(VT_LOG_INFO,
           "%s: %d ranks; %.3f s of %.3f s training in collectives; waits for the gradient averages after the "
           "backward pass %.3f s (%.1f%%)%s%s; %.2f MB of gradients a step",
           t->cfg.problem, t->nranks, cs->seconds, t->cum_seconds, t->exposed_seconds,
           100.0 * t->exposed_seconds / t->cum_seconds, vt_grad_sync_can_overlap(t->gsync) ? "" : " (no overlap here)",
           bn, (double)vt_grad_sync_bytes(t->gsync) / 1e6);
}

/* The result and summary.json of a run that ended (also by a NaN stop, a cut or an interruption). */
static vt_status finish_run(vt_trainer *t, const tr_loop *L, vt_status s, vt_train_result *res) {
    report_comm(t);
    if (L->stop && t->epoch < t->cfg.epochs) {
        res->cut = 1;
        copy_str(res->cut_reason, sizeof res->cut_reason, L->cut_reason);
    }
    if (t->skipped_steps && !t->cfg.quiet)
        vt_log(VT_LOG_WARN, "%s: skipped %lld steps whose loss or parameters were NaN/Inf (--nan-policy skip-step)",
               t->cfg.problem, (long long)t->skipped_steps);
    if (s == VT_OK || s == VT_ERR_NUMERIC) {
        vt_train_result keep = *res;
        tr_summarise(t, res);
        res->interrupted = keep.interrupted;
        res->cut = keep.cut;
        copy_str(res->cut_reason, sizeof res->cut_reason, keep.cut_reason);
        if (t->n_hist || res->cut || res->interrupted) {
            vt_status s2 = tr_write_summary(t, res);
            if (s == VT_OK) s = s2;
        }
    }
    copy_str(res->out_dir, sizeof res->out_dir, t->cfg.out_dir);
    copy_str(res->problem, sizeof res->problem, t->cfg.problem);
    return s;
}

/* Set up; then each epoch: its sample order, its steps, the test set, the epoch recorded and checkpointed;
 * until the planned epochs are done, the run is cut (--steps, --max-minutes), NaN stops it, or a signal
 * asks it to stop (mid-epoch: the checkpoint holds the position). */
vt_status vt_train_run(const vt_train_cfg *cfg_in, vt_backend *be, vt_train_result *res) {
    vt_trainer T;
    memset(&T, 0, sizeof T);
    vt_trainer *t = &T;
    memset(res, 0, sizeof *res);
    vt_status s = start_run(t, cfg_in, be, res);
    if (s != VT_OK) {
        tr_free(t);
        return s;
    }
    announce(t);
    if (t->cfg.epochs == 0) s = save_initial(t);
    tr_loop L = {.budget = t->cfg.max_minutes > 0 ? t->cfg.max_minutes * 60.0 : 1e300, .cut_reason = ""};
    while (s == VT_OK && t->epoch < t->cfg.epochs && !L.stop) {
        if (t->cfg.max_steps > 0 && t->global_step >= t->cfg.max_steps) {
            L.stop = 1;
            L.cut_reason = "steps";
            break;
        }
        s = begin_epoch(t, &L); /* unfreeze, shuffle */
        if (s == VT_OK) s = run_steps(t, &L);
        if (s != VT_OK) break;
        double train_secs = now_s() - L.t0;
        t->cum_seconds += train_secs;
        int halted = (vt_train_stop_requested || L.stop) && t->step_in_epoch < t->steps_per_epoch;
        double test_loss = 0, test_acc = 0;
        int evaluated = 0;
        /* skip-step checks the test loss too, and refuses an epoch that trained nothing */
        s = tr_guard_epoch_end(t, &L.guard, L.m, L.ep, L.first_step, halted, &test_loss, &test_acc, &evaluated);
        if (s != VT_OK) break;
        if (halted) {
            s = save_partial(t, &L);
            res->interrupted = vt_train_stop_requested != 0;
            break;
        }
        if (!evaluated) s = tr_evaluate(t, &test_loss, &test_acc);
        if (s != VT_OK) break;
        int improved = record_epoch(t, &L, test_loss, test_acc, train_secs);
        s = tr_write_metrics(t);
        if (s == VT_OK && !t->cfg.no_checkpoints) {
            s = tr_ckpt_save(t, t->last_path, test_acc);
            if (s == VT_OK && improved) s = tr_ckpt_save(t, t->best_path, test_acc);
        }
        if (vt_train_stop_requested) {
            res->interrupted = 1;
            break;
        }
    }
    tr_guard_free(&L.guard);
    s = finish_run(t, &L, s, res);
    tr_free(t);
    return s;
}
