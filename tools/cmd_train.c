/* `vtrain train`: one problem or all of them; parses flags, picks the backend, handles Ctrl-C
 * (first: checkpoint and stop; second: exit at once) and writes the comparison for --problem all. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "vt/models.h"
#include "vt/report.h"
#include "vt/train.h"

static volatile sig_atomic_t vt_signal_seen = 0;

static void on_signal(int sig) {
    if (vt_signal_seen) _exit(128 + sig); /* second signal: leave now, touch nothing */
    vt_signal_seen = sig;
    vt_train_stop_requested = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: vtrain train --problem N|NAME|all [options]\n"
            "\n"
            "  --problem P          1-8, a name (vtrain list), or all\n"
            "  --backend B          auto (default), cpu, opencl, vulkan, cuda\n"
            "  --device K           device index within the backend (vtrain devices)\n"
            "  --data PATH          dataset folder or archive (default: CIFAR-100 in data/)\n"
            "  --labels fine|coarse CIFAR-100 label set (default fine)\n"
            "  --epochs E  --batch-size B  --lr X  --momentum M  --weight-decay W  --nesterov\n"
            "  --optimizer sgd|adam|adamw\n"
            "  --schedule S         constant, step:E:G, multistep:E1,E2:G, exp:G, cosine:T[:MIN], suffix ,warmup:E\n"
            "  --seed S             (default 42)\n"
            "  --augment | --no-augment   random crop (pad 4) + horizontal flip\n"
            "  --batchnorm          batch norm after every hidden layer\n"
            "  --activation A       relu, leaky_relu, selu\n"
            "  --dropout P          dropout on hidden layers (training only)\n"
            "  --label-smoothing E\n"
            "  --pretrained FILE    safetensors or PyTorch .pth weights (problem 7)\n"
            "  --keep-head          keep the checkpoint's classifier when its shape fits\n"
            "  --input-size S       upsample images to SxS on the device (ResNet18)\n"
            "  --stem cifar|imagenet  ResNet18 stem (default imagenet)\n"
            "  --freeze-backbone-epochs N  --backbone-lr-mult X  --frozen-bn\n"
            "  --out DIR            run folder (default runs/<problem>)\n"
            "  --resume CKPT        continue from a checkpoint (last.vtc)\n"
            "  --max-minutes M      cap each problem's training time\n"
            "  --target-acc A       also report the time to reach A%% test accuracy\n"
            "  --limit-train N  --limit-test N   use the first N images of a split\n"
            "  --nan-policy stop|skip-step\n"
            "  --log-every N        steps between metric read-backs (default 20)\n"
            "  --quiet\n");
}

static int bad(const char *msg, const char *arg) {
    fprintf(stderr, "vtrain train: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
    usage(stderr);
    return 2;
}

static int parse_num(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == 0;
}

static void copy_arg(char *dst, size_t n, const char *src) {
    size_t k = strlen(src);
    if (k >= n) k = n - 1;
    memcpy(dst, src, k);
    dst[k] = 0;
}

int vt_cmd_train(int argc, char **argv) {
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    vt_backend_opts bo = {0};
    int problem_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x = 0;
#define NEED_VALUE()                                          \
    do {                                                      \
        if (!v) return bad("missing value for", a);           \
        i++;                                                  \
    } while (0)
#define NEED_NUM()                                            \
    do {                                                      \
        NEED_VALUE();                                         \
        if (!parse_num(v, &x)) return bad("not a number:", v); \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--problem")) { NEED_VALUE(); copy_arg(c.problem, sizeof c.problem, v); problem_given = 1; }
        else if (!strcmp(a, "--backend")) { NEED_VALUE(); copy_arg(c.backend, sizeof c.backend, v); }
        else if (!strcmp(a, "--device")) { NEED_NUM(); c.device = (int)x; }
        else if (!strcmp(a, "--data")) { NEED_VALUE(); copy_arg(c.data, sizeof c.data, v); }
        else if (!strcmp(a, "--labels")) {
            NEED_VALUE();
            if (strcmp(v, "fine") && strcmp(v, "coarse")) return bad("--labels takes fine or coarse, not", v);
            c.labels_coarse = !strcmp(v, "coarse");
        }
        else if (!strcmp(a, "--epochs")) { NEED_NUM(); c.epochs = (int)x; if (x < 1) return bad("--epochs must be >= 1:", v); }
        else if (!strcmp(a, "--batch-size")) { NEED_NUM(); c.batch_size = (int)x; if (x < 1) return bad("--batch-size must be >= 1:", v); }
        else if (!strcmp(a, "--lr")) { NEED_NUM(); c.lr = (float)x; if (!(x > 0)) return bad("--lr must be > 0:", v); }
        else if (!strcmp(a, "--momentum")) { NEED_NUM(); c.momentum = (float)x; }
        else if (!strcmp(a, "--weight-decay")) { NEED_NUM(); c.weight_decay = (float)x; }
        else if (!strcmp(a, "--nesterov")) c.nesterov = 1;
        else if (!strcmp(a, "--optimizer")) { NEED_VALUE(); copy_arg(c.optimizer, sizeof c.optimizer, v); }
        else if (!strcmp(a, "--schedule")) { NEED_VALUE(); copy_arg(c.schedule, sizeof c.schedule, v); }
        else if (!strcmp(a, "--seed")) { NEED_NUM(); c.seed = (uint32_t)x; }
        else if (!strcmp(a, "--augment")) c.augment = 1;
        else if (!strcmp(a, "--no-augment")) c.augment = 0;
        else if (!strcmp(a, "--batchnorm")) c.batchnorm = 1;
        else if (!strcmp(a, "--activation")) {
            NEED_VALUE();
            if (!strcmp(v, "relu")) c.act = VT_ACT_RELU;
            else if (!strcmp(v, "leaky_relu")) c.act = VT_ACT_LEAKY_RELU;
            else if (!strcmp(v, "selu")) c.act = VT_ACT_SELU;
            else return bad("--activation takes relu, leaky_relu or selu, not", v);
        }
        else if (!strcmp(a, "--dropout")) { NEED_NUM(); c.dropout = (float)x; if (x < 0 || x >= 1) return bad("--dropout must be in [0,1):", v); }
        else if (!strcmp(a, "--label-smoothing")) { NEED_NUM(); c.label_smoothing = (float)x; }
        else if (!strcmp(a, "--pretrained")) { NEED_VALUE(); copy_arg(c.pretrained, sizeof c.pretrained, v); }
        else if (!strcmp(a, "--keep-head")) c.keep_head = 1;
        else if (!strcmp(a, "--input-size")) { NEED_NUM(); c.input_size = (int)x; }
        else if (!strcmp(a, "--stem")) {
            NEED_VALUE();
            if (strcmp(v, "cifar") && strcmp(v, "imagenet")) return bad("--stem takes cifar or imagenet, not", v);
            c.stem_cifar = !strcmp(v, "cifar");
        }
        else if (!strcmp(a, "--width")) { NEED_NUM(); c.width = (int)x; }
        else if (!strcmp(a, "--freeze-backbone-epochs")) { NEED_NUM(); c.freeze_backbone_epochs = (int)x; }
        else if (!strcmp(a, "--backbone-lr-mult")) { NEED_NUM(); c.backbone_lr_mult = (float)x; }
        else if (!strcmp(a, "--frozen-bn")) c.frozen_bn = 1;
        else if (!strcmp(a, "--out")) { NEED_VALUE(); copy_arg(c.out_dir, sizeof c.out_dir, v); }
        else if (!strcmp(a, "--resume")) { NEED_VALUE(); copy_arg(c.resume, sizeof c.resume, v); }
        else if (!strcmp(a, "--max-minutes")) { NEED_NUM(); c.max_minutes = x; }
        else if (!strcmp(a, "--target-acc")) { NEED_NUM(); c.target_acc = x; }
        else if (!strcmp(a, "--limit-train")) { NEED_NUM(); c.limit_train = (int64_t)x; }
        else if (!strcmp(a, "--limit-test")) { NEED_NUM(); c.limit_test = (int64_t)x; }
        else if (!strcmp(a, "--nan-policy")) {
            NEED_VALUE();
            if (strcmp(v, "stop") && strcmp(v, "skip-step")) return bad("--nan-policy takes stop or skip-step, not", v);
            c.nan_policy = !strcmp(v, "skip-step");
        }
        else if (!strcmp(a, "--log-every")) { NEED_NUM(); c.log_every = (int)x; }
        else if (!strcmp(a, "--quiet")) c.quiet = 1;
        else if (!strcmp(a, "--no-checkpoints")) c.no_checkpoints = 1;
        else return bad("unknown option", a);
    }
    if (!problem_given && !c.resume[0]) return bad("--problem is required", NULL);
    if (c.resume[0] && !problem_given) copy_arg(c.problem, sizeof c.problem, "1"); /* replaced by the checkpoint's */
    int all = !strcmp(c.problem, "all");
    if (!all && !vt_problem_find(c.problem)) return bad("unknown problem (vtrain list shows them):", c.problem);

    vt_backend *be = NULL;
    if (vt_backend_init_by_name(c.backend, c.device, &bo, &be) != VT_OK) {
        fprintf(stderr, "vtrain train: %s\n", vt_last_error());
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 0;
    if (!all) {
        vt_train_result r;
        vt_status s = vt_train_run(&c, be, &r);
        if (s != VT_OK) {
            fprintf(stderr, "vtrain train: %s\n", vt_last_error());
            rc = s == VT_ERR_INVALID_ARG ? 2 : 1;
        } else if (r.interrupted) {
            fprintf(stderr, "vtrain train: interrupted; checkpoint written. Resume with: vtrain train --resume %s/last.vtc\n",
                    r.out_dir);
            rc = 128 + (vt_signal_seen ? vt_signal_seen : SIGINT);
        } else {
            printf("%s: best test accuracy %.2f%% (epoch %d), final %.2f%%, converged at epoch %d (%.1f s), %.0f img/s\n",
                   c.problem, r.best_test_acc, r.best_epoch, r.final_test_acc, r.convergence_epoch, r.convergence_seconds,
                   r.images_per_s);
        }
        vt_backend_free(be);
        return rc;
    }
    /* --problem all: the eight in turn, then the comparison. */
    char root[512];
    copy_arg(root, sizeof root, c.out_dir[0] ? c.out_dir : "runs");
    const char *dirs[16];
    char dirbuf[16][600];
    int n_dirs = 0;
    printf("Running all %d problems on %s (%s); each problem's expected time on a 2-core CPU:\n", vt_problem_count(),
           be->info.backend, be->info.name);
    for (int i = 0; i < vt_problem_count(); i++) {
        const vt_problem *p = vt_problem_get(i);
        double imgs = 50000.0 * (c.epochs > 0 ? c.epochs : p->epochs);
        double minutes = imgs / p->expected_img_per_s_cpu / 60.0;
        if (c.max_minutes > 0 && minutes > c.max_minutes) minutes = c.max_minutes;
        printf("  %d %-18s ~%.0f min%s\n", p->id, p->name, minutes, be->info.is_cpu_hosted || !strcmp(be->info.backend, "cpu") ? "" : " (less on a GPU)");
    }
    fflush(stdout);
    for (int i = 0; i < vt_problem_count() && !vt_train_stop_requested; i++) {
        const vt_problem *p = vt_problem_get(i);
        vt_train_cfg pc = c;
        copy_arg(pc.problem, sizeof pc.problem, p->name);
        snprintf(dirbuf[n_dirs], sizeof dirbuf[n_dirs], "%.500s/%s", root, p->name);
        copy_arg(pc.out_dir, sizeof pc.out_dir, dirbuf[n_dirs]);
        if (p->pretrained && !pc.pretrained[0]) {
            printf("%s: skipped: it needs ImageNet weights (--pretrained FILE; see docs/weights.md)\n", p->name);
            continue;
        }
        vt_train_result r;
        vt_status s = vt_train_run(&pc, be, &r);
        if (s != VT_OK) {
            fprintf(stderr, "vtrain train: %s: %s\n", p->name, vt_last_error());
            rc = 1;
            continue;
        }
        printf("%s: best %.2f%%, final %.2f%%, converged at epoch %d (%.1f s)\n", p->name, r.best_test_acc, r.final_test_acc,
               r.convergence_epoch, r.convergence_seconds);
        fflush(stdout);
        dirs[n_dirs] = dirbuf[n_dirs];
        n_dirs++;
    }
    if (n_dirs > 0) {
        if (vt_report_write(dirs, n_dirs, root) != VT_OK) {
            fprintf(stderr, "vtrain train: report: %s\n", vt_last_error());
            rc = 1;
        } else {
            printf("comparison written to %s/summary.md and %s/report.html\n", root, root);
        }
    }
    if (vt_train_stop_requested) rc = 128 + (vt_signal_seen ? vt_signal_seen : SIGINT);
    vt_backend_free(be);
    return rc;
}
