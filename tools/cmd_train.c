/* `vtrain train`: one problem or all of them; parses flags, picks the backend, handles Ctrl-C
 * (first: checkpoint and stop; second: exit at once) and writes the comparison for --problem all. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"
#include "progress.h"
#include "vt/comm.h"
#include "vt/registry.h"
#include "vt/models.h"
#include "vt/report.h"
#include "vt/train.h"

static volatile sig_atomic_t vt_signal_seen = 0;

static void on_signal(int sig) {
    if (vt_signal_seen) _exit(128 + sig); /* second signal: leave now, touch nothing */
    vt_signal_seen = sig;
    vt_train_stop_requested = 1;
}

/* The refusal of problem 7 without weights: the trainer says the same. */
static const char vt_needs_weights[] =
    "resnet18-finetune needs ImageNet weights: give --pretrained FILE (see docs/weights.md), or --pretrained none to "
    "train it from random weights";

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: vtrain train --problem N|NAME|all [options]      (--flag VALUE or --flag=VALUE)\n"
        "\n"
        "  --problem P          1-11, a name (vtrain list), or all (the eight classification problems)\n"
        "  --backend B          auto (default), cpu, opencl, vulkan, cuda\n"
        "  --backend-options S  the backend's kernel-path options, key=value,... (docs/backend-<name>.md);\n"
        "                       default: the environment's VT_<BACKEND>_OPTIONS; an unknown key is an error\n"
        "  --device K           device index within the backend, 0-1023 (vtrain devices)\n"
        "  --data PATH          dataset folder or archive (default: CIFAR-100 in data/)\n"
        "  --labels fine|coarse CIFAR-100 label set (default fine; coarse with CIFAR-10 or an image folder is an error)\n"
        "  --epochs E           0-1000000; 0 writes the initial checkpoint (init.vtc, last.vtc) and stops\n"
        "  --steps N            stop after N optimizer steps in all, 1-1e12 (the run is marked as cut)\n"
        "  --batch-size B       1-65536\n"
        "  --lr X               > 0   --momentum M  0-1   --weight-decay W  0-10   --nesterov\n"
        "  --optimizer sgd|adam|adamw\n"
        "  --schedule S         constant, step:E:G, multistep:E1,E2:G, exp:G, cosine:T[:MIN], suffix ,warmup:E\n"
        "  --seed S             0-4294967295 (default 42)\n"
        "  --no-shuffle         samples in file order every epoch (for checks against another framework)\n"
        "  --augment | --no-augment   random crop (pad 4) + horizontal flip\n"
        "  --batchnorm          batch norm after every hidden layer\n"
        "  --activation A       relu, leaky_relu, selu, gelu (exact erf GELU, as PyTorch's nn.GELU())\n"
        "  --dropout P          dropout on hidden layers (training only), 0 <= P < 1\n"
        "  --label-smoothing E  0 <= E < 1\n"
        "  --pretrained FILE    safetensors or PyTorch .pth weights; problems 7, 10 (both require it: --pretrained\n"
        "                       none trains them from random weights) and 11 (optional); an error elsewhere\n"
        "  --keep-head          keep the checkpoint's classifier when its shape fits (needs --pretrained FILE)\n"
        "  ResNet18 only (problems 7, 8; an error on other problems, ignored by the others of --problem all):\n"
        "  --input-size S       upsample images to SxS on the device, 8-4096\n"
        "  --stem cifar|imagenet  stem (default imagenet)\n"
        "  --width W            channels of the first stage, 1-4096 (default 64; also FCN's VGG16, problems 9-11)\n"
        "  --freeze-backbone-epochs N  0-1000000   --backbone-lr-mult X  0-1000   --frozen-bn\n"
        "  Segmentation only (problems 9-11; docs/segmentation.md):\n"
        "  --size HxW           bring every image and mask to H x W at load, 1-16384 each (FCN: at least 32x32;\n"
        "                       default: the stored size)\n"
        "  --crop HxW           random training crop of image and mask, at most --size (default: the whole image)\n"
        "  --fc-width N         channels of FCN's fc6/fc7, 1-65536 (default 64 x --width: 4096, as the paper)\n"
        "  --out DIR            run folder (default runs/<problem>)\n"
        "  --overwrite          replace an existing run folder's contents\n"
        "  --resume CKPT        continue from a checkpoint (last.vtc)\n"
        "  --max-minutes M      cap each problem's training time, 0-1e6 (0 = no cap)\n"
        "  --target-acc A       also report the time to reach A%% test accuracy, 0-100\n"
        "  --limit-train N  --limit-test N   use the first N images of a split, 0-1e9 (0 = all)\n"
        "  --nan-policy stop|skip-step\n"
        "  --log-every N        steps between metric read-backs, 1-1000000 (default 20)\n"
        "  --quiet  --no-checkpoints  -v|--verbose (source locations in errors)\n"
        "  Data parallel, under an MPI launcher (mpirun -np N vtrain train ...; docs/distributed.md):\n"
        "  --batch-size is the global batch, split evenly over the ranks (it must divide).\n"
        "  --sync-bn            batch norm with the statistics of the whole global batch (default: each\n"
        "                       rank's slice, running statistics from rank 0)\n"
        "  --comm-timeout S     seconds a rank waits for the others before the job is aborted (default 300)\n"
        "\n"
        "Warnings (not errors): --nesterov or --momentum with adam/adamw, which do not use them.\n"
        "Paths are limited to 511 characters. Exit status: 0 done, 1 failed, 2 bad command line,\n"
        "128+N stopped by signal N (a checkpoint was written).\n");
}

static const char *const train_flags[] = {"--help",
                                          "--problem",
                                          "--backend",
                                          "--backend-options",
                                          "--device",
                                          "--data",
                                          "--labels",
                                          "--epochs",
                                          "--steps",
                                          "--batch-size",
                                          "--lr",
                                          "--momentum",
                                          "--weight-decay",
                                          "--nesterov",
                                          "--optimizer",
                                          "--schedule",
                                          "--seed",
                                          "--no-shuffle",
                                          "--augment",
                                          "--no-augment",
                                          "--batchnorm",
                                          "--activation",
                                          "--dropout",
                                          "--label-smoothing",
                                          "--pretrained",
                                          "--keep-head",
                                          "--input-size",
                                          "--stem",
                                          "--width",
                                          "--freeze-backbone-epochs",
                                          "--backbone-lr-mult",
                                          "--frozen-bn",
                                          "--out",
                                          "--overwrite",
                                          "--resume",
                                          "--max-minutes",
                                          "--target-acc",
                                          "--limit-train",
                                          "--limit-test",
                                          "--nan-policy",
                                          "--log-every",
                                          "--quiet",
                                          "--no-checkpoints",
                                          "--verbose",
                                          "--sync-bn",
                                          "--comm-timeout",
                                          "--size",
                                          "--crop",
                                          "--fc-width",
                                          NULL};

/* One of `choices` (NULL-terminated), or a usage error with a suggestion. */
static int pick(vt_args *a, const char *const *choices, const char **out) {
    const char *v = vt_args_value(a);
    if (!v) return -1;
    int n = 0;
    for (; choices[n]; n++)
        if (!strcmp(v, choices[n])) {
            *out = choices[n];
            return 0;
        }
    char list[256] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? (i + 1 == n ? " or " : ", ") : "",
                 choices[i]);
    const char *s = vt_cli_suggest(v, choices, n);
    if (s) vt_cli_usage_error(a->cmd, "%s takes %s, not '%s' (did you mean %s?)", a->flag, list, v, s);
    else vt_cli_usage_error(a->cmd, "%s takes %s, not '%s'", a->flag, list, v);
    return -1;
}

/* An activation by name (vt_act_from_name knows them; "none" is not one a model trains with). */
static int pick_activation(vt_args *a, vt_act *out) {
    const char *names[VT_ACT_COUNT + 1];
    int n = 0;
    for (int k = VT_ACT_NONE + 1; k < VT_ACT_COUNT; k++) names[n++] = vt_act_name((vt_act)k);
    names[n] = NULL;
    const char *ch = NULL;
    if (pick(a, names, &ch)) return -1;
    *out = vt_act_from_name(ch);
    return 0;
}

/* "HxW" (two whole numbers in [1, 16384] joined by 'x') into *h, *w; a usage error otherwise. */
static int parse_hw(vt_args *a, int *h, int *w) {
    const char *v = vt_args_value(a);
    if (!v) return -1;
    const char *x = strchr(v, 'x');
    char hs[32], ws[32];
    size_t lh = x ? (size_t)(x - v) : 0;
    if (!x || lh == 0 || lh >= sizeof hs || strlen(x + 1) == 0 || strlen(x + 1) >= sizeof ws) {
        vt_cli_usage_error(a->cmd, "%s takes HxW (two numbers joined by 'x', e.g. 256x256), not '%s'", a->flag, v);
        return -1;
    }
    memcpy(hs, v, lh);
    hs[lh] = 0;
    snprintf(ws, sizeof ws, "%s", x + 1);
    long long hv, wv;
    if (vt_cli_parse_int(a->cmd, a->flag, hs, 1, 16384, &hv) || vt_cli_parse_int(a->cmd, a->flag, ws, 1, 16384, &wv))
        return -1;
    *h = (int)hv;
    *w = (int)wv;
    return 0;
}

/* A problem by number or name, or a usage error naming the closest name. */
static const vt_problem *find_problem(const char *key) {
    const vt_problem *p = vt_problem_find(key);
    if (p) return p;
    const char *names[32];
    int n = 0;
    for (int i = 0; i < vt_problem_count() && n < 31; i++) names[n++] = vt_problem_get(i)->name;
    names[n++] = "all";
    const char *s = vt_cli_suggest(key, names, n);
    if (s) vt_cli_usage_error("train", "unknown problem '%s' (did you mean %s?)", key, s);
    else
        vt_cli_usage_error("train", "unknown problem '%s' (1-%d, a name from vtrain list, or all)", key,
                           vt_problem_count());
    return NULL;
}

/* What the data has instead of CIFAR-100's two label sets, as far as its layout and name tell:
 * "CIFAR-10", "an image folder", or NULL (CIFAR-100, the default, or unknown). */
static const char *single_label_set(const char *data) {
    if (!data[0]) return NULL; /* the default is CIFAR-100 */
    char p[1100];
    struct stat st;
    snprintf(p, sizeof p, "%s/cifar-10-batches-bin", data);
    if (access(p, F_OK) == 0) return "CIFAR-10";
    const char *base = strrchr(data, '/');
    base = base ? base + 1 : data;
    if (!strncmp(base, "cifar-10-", 9) || !strcmp(base, "cifar-10-batches-bin")) return "CIFAR-10";
    snprintf(p, sizeof p, "%s/train", data);
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) return "an image folder";
    return NULL;
}

static void json_escaped(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned)(unsigned char)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* ROOT/skipped.json: the problems of --problem all that did not produce a run, and why, for the report. */
static void write_skipped(const char *root, const char names[][32], const char reasons[][600], int n) {
    char path[700];
    snprintf(path, sizeof path, "%s/skipped.json", root);
    if (n == 0) {
        unlink(path);
        return;
    }
    mkdir(root, 0755);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vtrain train: cannot write %s\n", path);
        return;
    }
    fprintf(f, "[\n");
    for (int i = 0; i < n; i++) {
        fprintf(f, "  {\"problem\": ");
        json_escaped(f, names[i]);
        fprintf(f, ", \"reason\": ");
        json_escaped(f, reasons[i]);
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "]\n");
    fclose(f);
}

int vt_cmd_train(int argc, char **argv) {
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    vt_backend_opts bo = {0};
    double comm_timeout = 0;
    int problem_given = 0, resnet_flag = 0, momentum_given = 0, pretrained_given = 0, seg_flag = 0, width_given = 0;
    char resnet_flag_name[64] = "", seg_flag_name[64] = "";
    static const char *const backends[] = {"auto", "cpu", "opencl", "vulkan", "cuda", NULL};
    static const char *const optimizers[] = {"sgd", "adam", "adamw", NULL};
    static const char *const labels[] = {"fine", "coarse", NULL};
    char backend_options[512] = "";
    static const char *const stems[] = {"cifar", "imagenet", NULL};
    static const char *const policies[] = {"stop", "skip-step", NULL};
    vt_args a;
    vt_args_init(&a, "train", argc, argv, train_flags);
    while (vt_args_next(&a)) {
        long long n = 0;
        double x = 0;
        const char *ch = NULL;
#define SW(field)                                     \
    do {                                              \
        if (vt_args_switch(&a)) return VT_EXIT_USAGE; \
        field;                                        \
    } while (0)
#define INT(lo, hi, field)                                         \
    do {                                                           \
        if (vt_args_int(&a, (lo), (hi), &n)) return VT_EXIT_USAGE; \
        field = n;                                                 \
    } while (0)
#define DBL(lo, hi, open, field)                                              \
    do {                                                                      \
        if (vt_args_double(&a, (lo), (hi), (open), &x)) return VT_EXIT_USAGE; \
        field = x;                                                            \
    } while (0)
#define STR(field)                                                      \
    do {                                                                \
        if (vt_args_str(&a, field, sizeof field)) return VT_EXIT_USAGE; \
    } while (0)
#define PICK(list)                                     \
    do {                                               \
        if (pick(&a, list, &ch)) return VT_EXIT_USAGE; \
    } while (0)
#define RESNET() snprintf(resnet_flag_name, sizeof resnet_flag_name, "%s", a.flag), resnet_flag = 1
#define SEG()    snprintf(seg_flag_name, sizeof seg_flag_name, "%s", a.flag), seg_flag = 1
        if (vt_args_help(&a)) {
            usage(stdout);
            return VT_EXIT_OK;
        } else if (vt_args_is(&a, "--problem")) {
            STR(c.problem);
            problem_given = 1;
        } else if (vt_args_is(&a, "--backend")) {
            PICK(backends);
            snprintf(c.backend, sizeof c.backend, "%s", ch);
        } else if (vt_args_is(&a, "--backend-options")) {
            STR(backend_options);
            bo.options = backend_options;
        } else if (vt_args_is(&a, "--device")) INT(0, 1023, c.device);
        else if (vt_args_is(&a, "--data")) STR(c.data);
        else if (vt_args_is(&a, "--labels")) {
            PICK(labels);
            c.labels_coarse = !strcmp(ch, "coarse");
        } else if (vt_args_is(&a, "--epochs")) INT(0, 1000000, c.epochs);
        else if (vt_args_is(&a, "--steps")) INT(1, 1000000000000LL, c.max_steps);
        else if (vt_args_is(&a, "--batch-size")) INT(1, 65536, c.batch_size);
        else if (vt_args_is(&a, "--lr")) DBL(0, FLT_MAX, 1, c.lr);
        else if (vt_args_is(&a, "--momentum")) {
            DBL(0, 1, 0, c.momentum);
            momentum_given = 1;
        } else if (vt_args_is(&a, "--weight-decay")) DBL(0, 10, 0, c.weight_decay);
        else if (vt_args_is(&a, "--nesterov")) SW(c.nesterov = 1);
        else if (vt_args_is(&a, "--optimizer")) {
            PICK(optimizers);
            snprintf(c.optimizer, sizeof c.optimizer, "%s", ch);
        } else if (vt_args_is(&a, "--schedule")) STR(c.schedule);
        else if (vt_args_is(&a, "--seed")) INT(0, 4294967295LL, c.seed);
        else if (vt_args_is(&a, "--no-shuffle")) SW(c.no_shuffle = 1);
        else if (vt_args_is(&a, "--augment")) SW(c.augment = 1);
        else if (vt_args_is(&a, "--no-augment")) SW(c.augment = 0);
        else if (vt_args_is(&a, "--batchnorm")) SW(c.batchnorm = 1);
        else if (vt_args_is(&a, "--activation")) {
            if (pick_activation(&a, &c.act)) return VT_EXIT_USAGE;
        } else if (vt_args_is(&a, "--dropout") || vt_args_is(&a, "--label-smoothing")) {
            DBL(0, 1, 0, x);
            if (x >= 1) return vt_cli_usage_error("train", "%s: %s is out of range [0, 1)", a.flag, a.argv[a.i]);
            if (vt_args_is(&a, "--dropout")) c.dropout = (float)x;
            else c.label_smoothing = (float)x;
        } else if (vt_args_is(&a, "--pretrained")) {
            STR(c.pretrained);
            pretrained_given = 1;
        } else if (vt_args_is(&a, "--keep-head")) SW(c.keep_head = 1);
        else if (vt_args_is(&a, "--input-size")) {
            INT(8, 4096, c.input_size);
            RESNET();
        } else if (vt_args_is(&a, "--stem")) {
            PICK(stems);
            c.stem_cifar = !strcmp(ch, "cifar");
            RESNET();
        } else if (vt_args_is(&a, "--width")) {
            INT(1, 4096, c.width);
            width_given = 1; /* ResNet18 and the FCNs' VGG16 */
        } else if (vt_args_is(&a, "--freeze-backbone-epochs")) {
            INT(0, 1000000, c.freeze_backbone_epochs);
            RESNET();
        } else if (vt_args_is(&a, "--backbone-lr-mult")) {
            DBL(0, 1000, 0, c.backbone_lr_mult);
            RESNET();
        } else if (vt_args_is(&a, "--frozen-bn")) {
            SW(c.frozen_bn = 1);
            RESNET();
        } else if (vt_args_is(&a, "--out")) STR(c.out_dir);
        else if (vt_args_is(&a, "--overwrite")) SW(c.overwrite = 1);
        else if (vt_args_is(&a, "--resume")) STR(c.resume);
        else if (vt_args_is(&a, "--max-minutes")) DBL(0, 1e6, 0, c.max_minutes);
        else if (vt_args_is(&a, "--target-acc")) DBL(0, 100, 0, c.target_acc);
        else if (vt_args_is(&a, "--limit-train")) INT(0, 1000000000, c.limit_train);
        else if (vt_args_is(&a, "--limit-test")) INT(0, 1000000000, c.limit_test);
        else if (vt_args_is(&a, "--nan-policy")) {
            PICK(policies);
            c.nan_policy = !strcmp(ch, "skip-step");
        } else if (vt_args_is(&a, "--log-every")) INT(1, 1000000, c.log_every);
        else if (vt_args_is(&a, "--quiet")) SW(c.quiet = 1);
        else if (vt_args_is(&a, "--no-checkpoints")) SW(c.no_checkpoints = 1);
        else if (vt_args_is(&a, "--sync-bn")) SW(c.sync_bn = 1);
        else if (vt_args_is(&a, "--comm-timeout")) DBL(0, 1e6, 1, comm_timeout);
        else if (vt_args_is(&a, "--size")) {
            if (parse_hw(&a, &c.seg_h, &c.seg_w)) return VT_EXIT_USAGE;
            SEG();
        } else if (vt_args_is(&a, "--crop")) {
            if (parse_hw(&a, &c.crop_h, &c.crop_w)) return VT_EXIT_USAGE;
            SEG();
        } else if (vt_args_is(&a, "--fc-width")) {
            INT(1, 65536, c.fc_width);
            SEG();
        } else if (!a.flag && (vt_problem_find(a.arg) || !strcmp(a.arg, "all")))
            return vt_cli_usage_error("train", "unexpected argument '%s' (did you mean --problem %s?)", a.arg, a.arg);
        else return vt_args_unknown(&a);
#undef SW
#undef INT
#undef DBL
#undef STR
#undef PICK
#undef RESNET
#undef SEG
    }
    if (!problem_given && !c.resume[0])
        return vt_cli_usage_error("train", "--problem is required (1-%d, a name, or all)", vt_problem_count());
    /* --problem all is the comparison of the classification problems on one dataset; the segmentation
     * problems need a segmentation dataset and run one by one */
    int n_all = 0;
    while (n_all < vt_problem_count() && !vt_problem_get(n_all)->segmentation) n_all++;
    if (c.resume[0] && !problem_given) snprintf(c.problem, sizeof c.problem, "1"); /* replaced by the checkpoint's */
    int all = !strcmp(c.problem, "all");
    if (all && c.resume[0])
        return vt_cli_usage_error("train", "--resume continues one run; it does not go with --problem all");
    const vt_problem *prob = all ? NULL : find_problem(c.problem);
    if (!all && !prob) return VT_EXIT_USAGE;
    int weights_file = pretrained_given && strcmp(c.pretrained, "none") != 0;

    /* flags that do not fit the chosen problem or data */
    if (c.keep_head && !weights_file) return vt_cli_usage_error("train", "--keep-head needs --pretrained FILE");
    const char *one_set = c.labels_coarse ? single_label_set(c.data) : NULL;
    if (one_set)
        return vt_cli_usage_error("train", "--labels coarse: %s is %s, which has only one label set", c.data, one_set);
    if (prob && problem_given) {
        if (resnet_flag && prob->arch != VT_ARCH_RESNET18)
            return vt_cli_usage_error("train", "%s applies to the ResNet18 problems (7, 8), not to %d %s",
                                      resnet_flag_name, prob->id, prob->name);
        if (seg_flag && !prob->segmentation)
            return vt_cli_usage_error("train", "%s applies to the segmentation problems (9-11), not to %d %s",
                                      seg_flag_name, prob->id, prob->name);
        if (width_given && prob->arch != VT_ARCH_RESNET18 && !prob->segmentation)
            return vt_cli_usage_error("train",
                                      "--width applies to the ResNet18 and segmentation problems (7-11), not to %d %s",
                                      prob->id, prob->name);
        /* FCN-8s keeps FCN-32s' VGG16 backbone so that it may start from the same ImageNet weights */
        if (weights_file && !prob->pretrained && prob->arch != VT_ARCH_FCN8S)
            return vt_cli_usage_error("train",
                                      "--pretrained applies to problem 7 (resnet18-finetune) and problems 10 and 11 "
                                      "(fcn32s-pretrained, fcn8s), not to %d %s",
                                      prob->id, prob->name);
        if (prob->pretrained && !pretrained_given && !c.resume[0]) {
            if (prob->segmentation)
                fprintf(stderr,
                        "vtrain train: %s needs ImageNet VGG16 weights: give --pretrained FILE (torchvision's "
                        "vgg16; see docs/segmentation.md), or --pretrained none to train it from random weights\n",
                        prob->name);
            else fprintf(stderr, "vtrain train: %s\n", vt_needs_weights);
            return VT_EXIT_USAGE;
        }
    }
    if (c.crop_h > 0 && c.seg_h > 0 && (c.crop_h > c.seg_h || c.crop_w > c.seg_w))
        return vt_cli_usage_error("train", "--crop %dx%d is larger than --size %dx%d", c.crop_h, c.crop_w, c.seg_h,
                                  c.seg_w);
    if (all && seg_flag)
        return vt_cli_usage_error("train",
                                  "%s applies to the segmentation problems (9-11), which --problem all does "
                                  "not run; train them one by one",
                                  seg_flag_name);
    if (all && (resnet_flag || width_given))
        fprintf(stderr, "vtrain train: warning: %s applies only to the ResNet18 problems (7, 8)\n",
                resnet_flag ? resnet_flag_name : "--width");
    {
        const char *opt = c.optimizer[0] ? c.optimizer : prob ? prob->optimizer : "";
        if (!strncmp(opt, "adam", 4) && (c.nesterov == 1 || momentum_given))
            fprintf(stderr, "vtrain train: warning: %s is ignored by %s\n",
                    c.nesterov == 1 ? "--nesterov" : "--momentum", opt);
    }
    /* a FIFO or a folder given as a file would block open() or read as garbage */
    if (c.resume[0] && vt_check_regular_file(c.resume, "checkpoint") != VT_OK) return vt_cli_lib_error("train", NULL);
    if (weights_file && vt_check_regular_file(c.pretrained, "pretrained weights") != VT_OK)
        return vt_cli_lib_error("train", NULL);

    if (all && strlen(c.out_dir) + 20 >= sizeof c.out_dir)
        return vt_cli_usage_error("train",
                                  "--out: too long for the problems' folders inside it (at most %zu characters)",
                                  sizeof c.out_dir - 21);

    /* the job this process is a rank of (a single process when not started by an MPI launcher) */
    vt_comm *comm = NULL;
    if (vt_comm_init(comm_timeout, &comm) != VT_OK) return vt_cli_lib_error("train", NULL);
    if (vt_comm_size(comm) > 1) {
        c.comm = comm;
        /* ranks on one machine share its cores, and each takes a device of its own */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int local = vt_comm_local_size(comm);
        if (bo.threads == 0 && local > 1) bo.threads = cores / local > 0 ? (int)(cores / local) : 1;
        const vt_backend_reg *reg = vt_backend_reg_find(c.backend);
        if (c.device < 0 && reg && strcmp(c.backend, "cpu") != 0 && reg->device_count() > 0)
            c.device = vt_comm_local_rank(comm) % reg->device_count();
    }
    vt_backend *be = NULL;
    if (vt_backend_init_by_name(c.backend, c.device, &bo, &be) != VT_OK) {
        int r = vt_cli_lib_error("train", NULL);
        if (vt_comm_size(comm) > 1) vt_comm_abort(comm, r, "its backend did not start");
        vt_comm_free(comm);
        return r;
    }
    /* CUDA device memory goes straight to NCCL; without it the gradients are staged through the host */
    if (vt_comm_size(comm) > 1 && strcmp(be->info.backend, "cuda") == 0 && vt_comm_have_nccl() &&
        vt_comm_nccl_init(comm, c.device >= 0 ? c.device : 0) != VT_OK)
        fprintf(stderr, "vtrain train: warning: NCCL did not start (%s); gradients go through host memory\n",
                vt_last_error());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!c.quiet) {
        c.progress = vt_cli_progress;
        c.progress_user = &vt_cli_out;
    }
    int rc = 0;
    if (!all) {
        vt_train_result r;
        memset(&r, 0, sizeof r);
        vt_status s = vt_train_run(&c, be, &r);
        vt_cli_output_clear(&vt_cli_out);
        const char *name = r.problem[0] ? r.problem : c.problem; /* the run's own, also after --resume */
        if (s != VT_OK) {
            vt_cli_lib_error("train", NULL);
            rc = s == VT_ERR_INVALID_ARG ? VT_EXIT_USAGE : VT_EXIT_RUNTIME;
            /* the other ranks may wait in a collective for this one: end them now, not at the timeout */
            if (vt_comm_size(comm) > 1) vt_comm_abort(comm, rc, "training failed (message above)");
        } else if (r.interrupted) {
            if (vt_comm_rank(comm) == 0) /* rank 0 reports for the job */
                fprintf(
                    stderr,
                    "vtrain train: interrupted; checkpoint written. Resume with: vtrain train --resume %s/last.vtc\n",
                    r.out_dir);
            rc = 128 + (vt_signal_seen ? vt_signal_seen : SIGINT);
        } else if (vt_comm_rank(comm) == 0) {
            if (r.epochs_done > 0) {
                const char *dir = r.out_dir;
                if (vt_report_write(&dir, 1, r.out_dir) == VT_OK) {
                    if (!c.quiet) printf("plots and report written to %s/report.html\n", r.out_dir);
                } else {
                    fprintf(stderr, "vtrain train: warning: no report: %s\n", vt_last_error());
                }
            }
            if (r.epochs_done == 0 && !r.cut) {
                printf("%s: initial checkpoint written to %s\n", name, r.out_dir);
            } else if (r.epochs_done == 0) {
                printf("%s: cut by --%s after %lld steps, before the first epoch ended; checkpoint in %s\n", name,
                       r.cut_reason, (long long)r.global_step, r.out_dir);
            } else if (isfinite(r.best_test_miou)) { /* segmentation: scored by mIoU */
                printf(
                    "%s: best test mIoU %.2f%% (epoch %d), final %.2f%%, final pixel accuracy %.2f%%, converged at epoch "
                    "%d (%.1f s), %.1f img/s%s%s%s\n",
                    name, 100.0 * r.best_test_miou, r.best_epoch, 100.0 * r.final_test_miou, r.final_test_acc,
                    r.convergence_epoch, r.convergence_seconds, r.images_per_s, r.cut ? " [cut by --" : "",
                    r.cut ? r.cut_reason : "", r.cut ? "]" : "");
            } else {
                printf(
                    "%s: best test accuracy %.2f%% (epoch %d), final %.2f%%, converged at epoch %d (%.1f s), %.0f img/s%s%s%s\n",
                    name, r.best_test_acc, r.best_epoch, r.final_test_acc, r.convergence_epoch, r.convergence_seconds,
                    r.images_per_s, r.cut ? " [cut by --" : "", r.cut ? r.cut_reason : "", r.cut ? "]" : "");
            }
        }
        vt_backend_free(be);
        vt_comm_free(comm);
        return rc;
    }
    /* --problem all: the eight in turn, then the comparison. */
    char root[512];
    snprintf(root, sizeof root, "%s", c.out_dir[0] ? c.out_dir : "runs");
    const char *dirs[16];
    char dirbuf[16][600];
    char skipped[16][32];
    char reasons[16][600];
    int n_dirs = 0, n_skipped = 0;
    int speaker = vt_comm_rank(comm) == 0; /* of a data-parallel job, rank 0 prints */
    /* Folders holding runs are refused before anything starts (each run would refuse its own anyway,
     * but the comparison files of ROOT would be rewritten from failures). */
    if (!c.overwrite) {
        int held = 0;
        for (int i = 0; i < n_all; i++) {
            const char *marks[3] = {"config.json", "last.vtc", "summary.json"};
            for (int k = 0; k < 3; k++) {
                char path[800];
                snprintf(path, sizeof path, "%s/%s/%s", root, vt_problem_get(i)->name, marks[k]);
                if (access(path, F_OK) == 0) {
                    if (speaker && !held) fprintf(stderr, "vtrain train: %s already holds runs of the practice:", root);
                    if (speaker) fprintf(stderr, " %s", vt_problem_get(i)->name);
                    held++;
                    break;
                }
            }
        }
        if (held) {
            if (speaker)
                fprintf(stderr, "\nvtrain train: replace them with --overwrite, or choose another --out; nothing was "
                                "changed\n");
            vt_backend_free(be);
            vt_comm_free(comm);
            return VT_EXIT_USAGE;
        }
    }
    if (speaker)
        printf("Running all %d problems on %s (%s); each problem's expected time on a 2-core CPU:\n", n_all,
               be->info.backend, be->info.name);
    for (int i = 0; i < n_all; i++) {
        const vt_problem *p = vt_problem_get(i);
        double imgs = 50000.0 * (c.epochs >= 0 ? c.epochs : p->epochs);
        double minutes = imgs / p->expected_img_per_s_cpu / 60.0;
        if (c.max_minutes > 0 && minutes > c.max_minutes) minutes = c.max_minutes;
        if (speaker)
            printf("  %d %-18s ~%.0f min%s\n", p->id, p->name, minutes,
                   be->info.is_cpu_hosted || !strcmp(be->info.backend, "cpu") ? "" : " (less on a GPU)");
    }
    fflush(stdout);
    for (int i = 0; i < n_all && i < 16 && !vt_train_stop_requested; i++) {
        const vt_problem *p = vt_problem_get(i);
        vt_train_cfg pc = c;
        snprintf(pc.problem, sizeof pc.problem, "%s", p->name);
        snprintf(dirbuf[n_dirs], sizeof dirbuf[n_dirs], "%s/%s", root, p->name);
        snprintf(pc.out_dir, sizeof pc.out_dir, "%s", dirbuf[n_dirs]);
        pc.problem_index = i + 1;
        pc.problem_count = n_all;
        if (!p->pretrained) pc.pretrained[0] = 0; /* the weights are problem 7's */
        if (p->pretrained && !pc.pretrained[0]) {
            if (speaker) printf("%s: skipped: %s\n", p->name, vt_needs_weights);
            snprintf(skipped[n_skipped], sizeof skipped[n_skipped], "%s", p->name);
            snprintf(reasons[n_skipped++], sizeof reasons[0], "%s", vt_needs_weights);
            continue;
        }
        vt_train_result r;
        memset(&r, 0, sizeof r);
        vt_status s = vt_train_run(&pc, be, &r);
        vt_cli_output_clear(&vt_cli_out);
        if (s != VT_OK) {
            vt_cli_lib_error("train", p->name);
            if (vt_comm_size(comm) > 1) vt_comm_abort(comm, VT_EXIT_RUNTIME, "training failed (message above)");
            snprintf(skipped[n_skipped], sizeof skipped[n_skipped], "%s", p->name);
            snprintf(reasons[n_skipped++], sizeof reasons[0], "failed: %.590s", vt_last_error());
            rc = VT_EXIT_RUNTIME;
            continue;
        }
        if (speaker && r.epochs_done == 0)
            printf("%s: cut by --%s after %lld steps, before its first epoch ended; checkpoint in %s\n", p->name,
                   r.cut ? r.cut_reason : "max-minutes", (long long)r.global_step, r.out_dir);
        else if (speaker)
            printf("%s: best %.2f%%, final %.2f%%, converged at epoch %d (%.1f s)%s%s%s\n", p->name, r.best_test_acc,
                   r.final_test_acc, r.convergence_epoch, r.convergence_seconds, r.cut ? " [cut by --" : "",
                   r.cut ? r.cut_reason : "", r.cut ? "]" : "");
        fflush(stdout);
        if (r.epochs_done == 0) {
            /* cut before its first epoch ended: nothing to plot; the report lists it with the reason */
            snprintf(skipped[n_skipped], sizeof skipped[n_skipped], "%s", p->name);
            snprintf(reasons[n_skipped++], sizeof reasons[0], "cut by --%s before its first epoch ended (%lld steps)",
                     r.cut ? r.cut_reason : "max-minutes", (long long)r.global_step);
            continue;
        }
        dirs[n_dirs] = dirbuf[n_dirs];
        n_dirs++;
    }
    if (vt_comm_rank(comm) == 0)
        write_skipped(root, (const char(*)[32])skipped, (const char(*)[600])reasons, n_skipped);
    if (n_dirs > 0 && vt_comm_rank(comm) == 0) {
        if (vt_report_write(dirs, n_dirs, root) != VT_OK) {
            vt_cli_lib_error("train", "report");
            rc = VT_EXIT_RUNTIME;
        } else {
            printf("comparison written to %s/summary.md and %s/report.html\n", root, root);
        }
    }
    if (vt_train_stop_requested) rc = 128 + (vt_signal_seen ? vt_signal_seen : SIGINT);
    vt_backend_free(be);
    vt_comm_free(comm);
    return rc;
}
