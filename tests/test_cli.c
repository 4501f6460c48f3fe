/* The vtrain command line as a user meets it, driven through the real program: strict numbers,
 * --flag=value, "did you mean", help/version, exit codes, messages without source locations, flags
 * that do not fit the problem, FIFOs refused, export that cannot overwrite its input; and the
 * progress line fitted to the terminal. */
#define _GNU_SOURCE
#include "test_dataset_fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "vt/checkpoint.h"
#include "vt/train.h"
/* The progress renderer is the program's own (tools/), not the library's: tests/CMakeLists.txt compiles it in */
#include "progress.h"

static char g_root[512];    /* fresh temporary folder for the whole file */
static char g_vtrain[1024]; /* the vtrain program of this build */
static char g_data[600];    /* synthetic CIFAR-100 in the official binary layout */
static char g_argv0[1024];

/* ---- helpers --------------------------------------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)(sz > 0 ? sz : 0) + 1);
    size_t k = b && sz > 0 ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    if (b) b[k] = 0;
    return b;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* What one run of vtrain printed. */
typedef struct result {
    int rc; /* exit status; 1000 + signal when it crashed; -1 when it ran past the timeout */
    char out[65536], err[65536];
} result;

/* Runs vtrain with the NULL-terminated arguments (without the program name) in the test folder. */
static void run_v(result *r, double timeout_s, const char *const *args) {
    const char *argv[64];
    int n = 0;
    argv[n++] = "vtrain";
    for (; *args && n < 63; args++) argv[n++] = *args;
    argv[n] = NULL;
    char outp[700], errp[700];
    snprintf(outp, sizeof outp, "%s/stdout.txt", g_root);
    snprintf(errp, sizeof errp, "%s/stderr.txt", g_root);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0 || chdir(g_root) != 0) _exit(126);
        execv(g_vtrain, (char *const *)argv);
        _exit(127);
    }
    double t0 = now_s();
    int st = 0;
    r->rc = -1;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
            break;
        }
        if (now_s() - t0 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    char *o = slurp(outp), *e = slurp(errp);
    snprintf(r->out, sizeof r->out, "%s", o ? o : "");
    snprintf(r->err, sizeof r->err, "%s", e ? e : "");
    free(o);
    free(e);
}

#define RUN(r, ...) run_v((r), 60, (const char *const[]){__VA_ARGS__, NULL})

static void skip_without_vtrain(void) {
    if (!g_vtrain[0]) {
        printf("vtrain program not found next to the tests; skipped\n");
        skip();
    }
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A usage error: exit 2, the message names `needle`, and one line pointing to --help (no help text). */
static void expect_usage_error(const result *r, const char *what, const char *needle) {
    if (r->rc != 2) fail_msg("%s: exit %d (want 2)\nstdout: %s\nstderr: %s", what, r->rc, r->out, r->err);
    if (!strstr(r->err, needle)) fail_msg("%s: the message does not name '%s': %s", what, needle, r->err);
    if (!strstr(r->err, "--help")) fail_msg("%s: no pointer to --help: %s", what, r->err);
    if (strstr(r->err, "usage:") || count_lines(r->err) > 2)
        fail_msg("%s: more than the error and one line:\n%s", what, r->err);
}

/* ---- list --json ----------------------------------------------------------------------------- */

static void test_list_json(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    RUN(r, "list", "--json");
    assert_int_equal(r->rc, 0);
    cJSON *j = cJSON_Parse(r->out);
    if (!j) fail_msg("not JSON:\n%s", r->out);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 8);
    static const char *const keys[] = {"id",       "name",     "optimizer", "lr",         "momentum", "weight_decay",
                                       "nesterov", "schedule", "epochs",    "batch_size", "augment",  "dropout"};
    const cJSON *p;
    cJSON_ArrayForEach(p, j) {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (!cJSON_GetObjectItemCaseSensitive(p, keys[k])) fail_msg("no \"%s\" in %s", keys[k], cJSON_Print(p));
    }
    const cJSON *mlp = cJSON_GetArrayItem(j, 1);
    assert_string_equal(cJSON_GetObjectItem(mlp, "name")->valuestring, "mlp");
    assert_true(cJSON_GetObjectItem(mlp, "lr")->valuedouble == 0.005);
    /* floats as written in the table, not their float32 expansion */
    assert_non_null(strstr(r->out, "\"lr\": 0.005,"));
    cJSON_Delete(j);
    free(r);
}

/* ---- strict numbers and paths ---------------------------------------------------------------- */

static void test_strict_numbers(void **state) {
    (void)state;
    skip_without_vtrain();
    static const char *const bad[][3] = {
        {"--epochs", "nan", "--epochs"},
        {"--epochs", "inf", "--epochs"},
        {"--epochs", "1e10", "--epochs"},
        {"--epochs", "-1", "--epochs"},
        {"--epochs", "3x", "--epochs"},
        {"--epochs", "", "--epochs"},
        {"--batch-size", "nan", "--batch-size"},
        {"--batch-size", "2.5", "--batch-size"},
        {"--batch-size", "1e10", "--batch-size"},
        {"--batch-size", "0", "--batch-size"},
        {"--limit-train", "nan", "--limit-train"},
        {"--limit-test", "-5", "--limit-test"},
        {"--lr", "nan", "--lr"},
        {"--lr", "0", "--lr"},
        {"--lr", "inf", "--lr"},
        {"--momentum", "2", "--momentum"},
        {"--dropout", "1", "--dropout"},
        {"--seed", "-1", "--seed"},
        {"--seed", "1e20", "--seed"},
        {"--device", "1.5", "--device"},
        {"--log-every", "0", "--log-every"},
        {"--max-minutes", "nan", "--max-minutes"},
        {"--target-acc", "101", "--target-acc"},
        {"--steps", "0", "--steps"},
        {"--label-smoothing", "-0.1", "--label-smoothing"},
    };
    result *r = calloc(1, sizeof *r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "train %s '%s'", bad[i][0], bad[i][1]);
        RUN(r, "train", "--problem", "1", "--backend", "cpu", "--data", g_data, bad[i][0], bad[i][1]);
        expect_usage_error(r, what, bad[i][2]);
        assert_non_null(strstr(r->err, bad[i][1])); /* the value as given */
        /* the same through --flag=value */
        char eq[128];
        snprintf(eq, sizeof eq, "%s=%s", bad[i][0], bad[i][1]);
        RUN(r, "train", "--problem", "1", "--backend", "cpu", "--data", g_data, eq);
        expect_usage_error(r, eq, bad[i][2]);
    }
    /* the ResNet width: 1e9 used to overflow a signed int inside the model (UBSan abort) */
    RUN(r, "train", "--problem", "8", "--backend", "cpu", "--data", g_data, "--width", "1e9");
    expect_usage_error(r, "--width 1e9", "out of range [1, 4096]");
    RUN(r, "train", "--problem", "8", "--backend", "cpu", "--data", g_data, "--width", "1e12");
    expect_usage_error(r, "--width 1e12", "--width: 1e12 is out of range");
    RUN(r, "eval", "--checkpoint", "x.vtc", "--device", "nan");
    expect_usage_error(r, "eval --device nan", "--device");
    RUN(r, "bench", "--batch", "2.5");
    expect_usage_error(r, "bench --batch 2.5", "--batch");
    free(r);
}

static void test_long_paths(void **state) {
    (void)state;
    skip_without_vtrain();
    char longp[700];
    memset(longp, 'a', 600);
    longp[600] = 0;
    result *r = calloc(1, sizeof *r);
    static const char *const flags[] = {"--out", "--data", "--resume", "--pretrained"};
    for (int i = 0; i < 4; i++) {
        RUN(r, "train", "--problem", "7", "--backend", "cpu", flags[i], longp);
        expect_usage_error(r, flags[i], flags[i]);
        assert_non_null(strstr(r->err, "600 characters"));
    }
    free(r);
}

/* ---- conventions ----------------------------------------------------------------------------- */

static void test_did_you_mean(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    RUN(r, "trian", "--problem", "1");
    expect_usage_error(r, "command", "did you mean train?");
    RUN(r, "train", "--problem", "1", "--epoch", "3");
    expect_usage_error(r, "flag", "did you mean --epochs?");
    RUN(r, "train", "--problem", "cnn-pol");
    expect_usage_error(r, "problem", "did you mean cnn-pool?");
    RUN(r, "train", "--problem", "1", "--backend", "vulcan");
    expect_usage_error(r, "backend", "did you mean vulkan?");
    RUN(r, "eval", "--chekpoint", "x");
    expect_usage_error(r, "eval flag", "did you mean --checkpoint?");
    RUN(r, "export", "--checkpoint", "x", "--formt", "safetensors");
    expect_usage_error(r, "export flag", "did you mean --format?");
    RUN(r, "train", "cnn-pool");
    expect_usage_error(r, "a problem without --problem", "did you mean --problem cnn-pool?");
    RUN(r, "bench", "--backend", "vulcan");
    expect_usage_error(r, "bench backend", "did you mean vulkan?");
    RUN(r, "bench", "--problem", "cnn-pol");
    expect_usage_error(r, "bench problem", "did you mean cnn-pool?");
    RUN(r, "download", "cifar-100");
    expect_usage_error(r, "download dataset", "did you mean cifar100?");
    RUN(r, "xyzzy");
    expect_usage_error(r, "far from any command", "unknown command 'xyzzy'");
    assert_null(strstr(r->err, "did you mean"));
    free(r);
}

static void test_help_and_version(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r), *r2 = calloc(1, sizeof *r2);
    static const char *const cmds[] = {"train", "eval",   "list",   "devices", "conformance",
                                       "bench", "report", "export", "download"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        RUN(r, "help", cmds[i]);
        RUN(r2, cmds[i], "--help");
        if (r->rc != 0 || r2->rc != 0) fail_msg("help %s: exit %d / %d", cmds[i], r->rc, r2->rc);
        assert_string_equal(r->out, r2->out);
        assert_non_null(strstr(r->out, "usage: vtrain"));
        assert_string_equal(r->err, "");
    }
    static const char *const v[] = {"-V", "--version", "version"};
    for (int i = 0; i < 3; i++) {
        RUN(r, v[i]);
        assert_int_equal(r->rc, 0);
        assert_non_null(strstr(r->out, "vtrain "));
    }
    RUN(r, "help", "trainn");
    expect_usage_error(r, "help of an unknown command", "did you mean train?");
    free(r);
    free(r2);
}

/* Every subcommand: a bad option is a usage error (2) with one pointer line; a failure at run time is 1. */
static void test_exit_codes(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    static const char *const cmds[] = {"train", "eval",   "list",   "devices", "conformance",
                                       "bench", "report", "export", "download"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        RUN(r, cmds[i], "--bogus-flag");
        expect_usage_error(r, cmds[i], "--bogus-flag");
    }
    RUN(r, "eval", "--backend", "cpu", "--checkpoint", "missing.vtc");
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "missing.vtc"));
    RUN(r, "export", "--checkpoint", "missing.vtc");
    assert_int_equal(r->rc, 1);
    RUN(r, "report", "no-such-run");
    assert_int_equal(r->rc, 1);
    free(r);
}

/* --backend-options reaches the backend of every command that starts one: an unknown key fails the
 * command (exit 1) with the backend's message naming the key and the known ones; --activation gelu is
 * accepted and trains. */
static void test_backend_options(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    char out[700], ckpt[800];
    snprintf(out, sizeof out, "%s/run-options", g_root);
    RUN(r, "train", "--problem", "mlp", "--backend", "cpu", "--backend-options", "nosuch=1", "--data", g_data, "--out",
        out);
    if (r->rc != 1) fail_msg("train: exit %d\n%s\n%s", r->rc, r->out, r->err);
    if (!strstr(r->err, "vtrain train: cpu options") || !strstr(r->err, "nosuch") || !strstr(r->err, "fuse"))
        fail_msg("train: no backend message:\n%s", r->err);
    RUN(r, "train", "--problem=mlp", "--backend=cpu", "--backend-options=fuse=0", "--activation=gelu", "--data", g_data,
        "--limit-train=64", "--limit-test=16", "--batch-size=16", "--epochs=1", "--out", out, "--quiet");
    if (r->rc != 0) fail_msg("train with fuse=0 and gelu: exit %d\n%s\n%s", r->rc, r->out, r->err);
    snprintf(ckpt, sizeof ckpt, "%s/config.json", out);
    char *cfg = slurp(ckpt);
    assert_non_null(cfg);
    cJSON *j = cJSON_Parse(cfg);
    assert_non_null(j);
    const cJSON *act = cJSON_GetObjectItem(j, "activation");
    if (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu")) fail_msg("config.json without gelu:\n%s", cfg);
    cJSON_Delete(j);
    free(cfg);
    snprintf(ckpt, sizeof ckpt, "%s/last.vtc", out);
    RUN(r, "eval", "--backend", "cpu", "--backend-options", "nosuch=1", "--checkpoint", ckpt);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "nosuch"));
    RUN(r, "eval", "--backend", "cpu", "--backend-options", "fuse=0", "--checkpoint", ckpt);
    if (r->rc != 0) fail_msg("eval with fuse=0: exit %d\n%s\n%s", r->rc, r->out, r->err);
    RUN(r, "bench", "--backend", "cpu", "--backend-options", "nosuch=1", "--problem", "1", "--quick", "--repeats", "1");
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->out, "nosuch"));
    RUN(r, "bench", "--backend-options", "fuse=0", "--problem", "1");
    expect_usage_error(r, "bench", "--backend-options");
    /* the target does not start: its cases are reported failed with the backend's message (the CPU
     * reference itself never takes the target's options) */
    RUN(r, "conformance", "--backend", "cpu", "--backend-options", "nosuch=1", "--op", "add");
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->out, "not started: cpu options (--backend-options): unknown key \"nosuch\""));
    RUN(r, "train", "--help");
    assert_non_null(strstr(r->out, "--backend-options"));
    assert_non_null(strstr(r->out, "gelu"));
    free(r);
}

/* User-facing errors carry no "file.c:123:" prefix; -v/--verbose shows the place. */
static void test_error_location(void **state) {
    (void)state;
    skip_without_vtrain();
    regex_t re;
    assert_int_equal(regcomp(&re, "[a-z_]+\\.c:[0-9]+", REG_EXTENDED), 0);
    result *r = calloc(1, sizeof *r);
    RUN(r, "eval", "--backend", "cpu", "--checkpoint", "missing.vtc");
    assert_int_equal(r->rc, 1);
    if (regexec(&re, r->err, 0, NULL, 0) == 0) fail_msg("source location in a user-facing error: %s", r->err);
    RUN(r, "-v", "eval", "--backend", "cpu", "--checkpoint", "missing.vtc");
    assert_int_equal(r->rc, 1);
    if (regexec(&re, r->err, 0, NULL, 0) != 0) fail_msg("-v: no source location: %s", r->err);
    RUN(r, "eval", "--verbose", "--backend", "cpu", "--checkpoint", "missing.vtc");
    if (regexec(&re, r->err, 0, NULL, 0) != 0) fail_msg("--verbose: no source location: %s", r->err);
    regfree(&re);
    free(r);
}

/* Flags that do not fit the chosen problem or data. */
static void test_inapplicable_flags(void **state) {
    (void)state;
    skip_without_vtrain();
    char c10[700];
    snprintf(c10, sizeof c10, "%s/c10", g_root);
    mkdir(c10, 0755);
    fx_write_cifar10(c10, 8, 8);
    result *r = calloc(1, sizeof *r);
    RUN(r, "train", "--problem", "1", "--stem", "cifar");
    expect_usage_error(r, "--stem on linear", "--stem applies to the ResNet18 problems");
    RUN(r, "train", "--problem", "mlp", "--input-size", "64");
    expect_usage_error(r, "--input-size on mlp", "--input-size");
    RUN(r, "train", "--problem", "5", "--frozen-bn");
    expect_usage_error(r, "--frozen-bn on cnn-pool", "--frozen-bn");
    RUN(r, "train", "--problem", "5", "--width", "32");
    expect_usage_error(r, "--width on cnn-pool", "--width");
    RUN(r, "train", "--problem", "8", "--pretrained", "w.safetensors");
    expect_usage_error(r, "--pretrained on 8", "--pretrained applies to problem 7");
    RUN(r, "train", "--problem", "8", "--keep-head");
    expect_usage_error(r, "--keep-head alone", "--keep-head needs --pretrained");
    RUN(r, "train", "--problem", "1", "--labels", "coarse", "--data", c10);
    expect_usage_error(r, "--labels coarse on CIFAR-10", "CIFAR-10");
    char imgs[700];
    snprintf(imgs, sizeof imgs, "%s/imgs", g_root);
    mkdir(imgs, 0755);
    snprintf(c10, sizeof c10, "%s/imgs/train", g_root);
    mkdir(c10, 0755);
    RUN(r, "train", "--problem", "1", "--labels=coarse", "--data", imgs);
    expect_usage_error(r, "--labels coarse on an image folder", "an image folder");
    RUN(r, "train", "--problem", "1", "--nesterov=1");
    expect_usage_error(r, "a switch with a value", "--nesterov takes no value");
    free(r);
}

static const char needs_weights[] =
    "resnet18-finetune needs ImageNet weights: give --pretrained FILE (see docs/weights.md), or --pretrained none to "
    "train it from random weights";

static void test_problem7_needs_weights(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    RUN(r, "train", "--problem", "7", "--backend", "cpu", "--data", g_data);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, needs_weights));
    RUN(r, "train", "--problem", "resnet18-finetune", "--backend", "cpu", "--data", g_data);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, needs_weights));
    free(r);
}

/* eval --checkpoint, train --resume, --pretrained and export on a FIFO: refused at once, no hang. */
static void test_fifo_refused(void **state) {
    (void)state;
    skip_without_vtrain();
    char fifo[700];
    snprintf(fifo, sizeof fifo, "%s/fifo.vtc", g_root);
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    result *r = calloc(1, sizeof *r);
    const char *const *cases[] = {
        (const char *const[]){"eval", "--backend", "cpu", "--checkpoint", fifo, NULL},
        (const char *const[]){"train", "--backend", "cpu", "--data", g_data, "--resume", fifo, NULL},
        (const char *const[]){"train", "--backend", "cpu", "--data", g_data, "--problem", "7", "--pretrained", fifo,
                              NULL},
        (const char *const[]){"export", "--checkpoint", fifo, "--out", "x.safetensors", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double t0 = now_s();
        run_v(r, 10, cases[i]);
        if (r->rc != 1) fail_msg("%s on a FIFO: exit %d (-1: hung)\n%s", cases[i][0], r->rc, r->err);
        assert_non_null(strstr(r->err, "not a regular file"));
        assert_true(now_s() - t0 < 5);
    }
    unlink(fifo);
    free(r);
}

/* ---- a real run: --flag=value, the final line, the report in the run folder -------------------- */

static void test_train_run(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    char out[700], path[800];
    snprintf(out, sizeof out, "%s/run-linear", g_root);
    RUN(r, "train", "--problem=linear", "--backend=cpu", "--data", g_data, "--limit-train=64", "--limit-test=32",
        "--batch-size=16", "--epochs=1", "--out", out, "--quiet");
    if (r->rc != 0) fail_msg("exit %d\n%s\n%s", r->rc, r->out, r->err);
    /* the summary line on stdout names the problem by its name */
    assert_non_null(strstr(r->out, "linear: best test accuracy"));
    assert_null(strstr(r->err, "best test accuracy"));
    /* plots and the page of a single run land in its folder */
    snprintf(path, sizeof path, "%s/report.html", out);
    assert_true(fx_exists(path));
    snprintf(path, sizeof path, "%s/acc_epoch.svg", out);
    assert_true(fx_exists(path));
    /* --resume without --problem: the line names the run's problem, not a placeholder */
    snprintf(path, sizeof path, "%s/last.vtc", out);
    RUN(r, "train", "--backend", "cpu", "--data", g_data, "--resume", path, "--epochs", "2", "--quiet");
    if (r->rc != 0) fail_msg("resume: exit %d\n%s\n%s", r->rc, r->out, r->err);
    if (!strstr(r->out, "linear: best test accuracy"))
        fail_msg("resume: final line without the problem name:\n%s", r->out);
    /* --steps cuts the run; the final line says so instead of quoting an epoch that never ended */
    snprintf(out, sizeof out, "%s/run-steps", g_root);
    RUN(r, "train", "--problem", "mlp", "--backend", "cpu", "--data", g_data, "--limit-train", "64", "--limit-test",
        "16", "--batch-size", "16", "--steps=2", "--no-shuffle", "--out", out, "--quiet");
    if (r->rc != 0) fail_msg("--steps: exit %d\n%s\n%s", r->rc, r->out, r->err);
    if (!strstr(r->out, "mlp: cut by --steps after 2 steps")) fail_msg("--steps: final line:\n%s", r->out);
    free(r);
}

/* --problem all: problem 7 without weights is skipped with the trainer's words, recorded in
 * ROOT/skipped.json, and the comparison page says so. */
static void test_problem_all_skipped(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    char root[700], path[800];
    snprintf(root, sizeof root, "%s/all", g_root);
    run_v(r, 120, (const char *const[]){"train", "--problem",     "all", "--backend",    "cpu", "--data",
                                        g_data,  "--limit-train", "32",  "--limit-test", "16",  "--batch-size",
                                        "16",    "--epochs",      "1",   "--width",      "8",   "--out",
                                        root,    "--quiet",       NULL});
    if (r->rc != 0) fail_msg("exit %d\n%s\n%s", r->rc, r->out, r->err);
    char want[400];
    snprintf(want, sizeof want, "resnet18-finetune: skipped: %s", needs_weights);
    if (!strstr(r->out, want)) fail_msg("no skip line with the reason:\n%s", r->out);
    assert_non_null(strstr(r->err, "--width applies only to the ResNet18 problems")); /* a warning, not an error */
    assert_non_null(strstr(r->out, "resnet18-scratch: best"));
    snprintf(path, sizeof path, "%s/skipped.json", root);
    char *sk = slurp(path);
    assert_non_null(sk);
    cJSON *j = cJSON_Parse(sk);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "problem")->valuestring, "resnet18-finetune");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "reason")->valuestring, needs_weights);
    cJSON_Delete(j);
    free(sk);
    snprintf(path, sizeof path, "%s/summary.md", root);
    char *md = slurp(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "- **resnet18-finetune** skipped: resnet18-finetune needs ImageNet weights"));
    /* the same command again: refused before anything starts, the comparison files unchanged */
    snprintf(path, sizeof path, "%s/skipped.json", root);
    char *sk_before = slurp(path);
    run_v(r, 120, (const char *const[]){"train", "--problem",     "all", "--backend",    "cpu", "--data",
                                        g_data,  "--limit-train", "32",  "--limit-test", "16",  "--batch-size",
                                        "16",    "--epochs",      "1",   "--width",      "8",   "--out",
                                        root,    "--quiet",       NULL});
    if (r->rc != 2 || !strstr(r->err, "already holds runs of the practice") || !strstr(r->err, "nothing was changed"))
        fail_msg("rerun of --problem all: exit %d\n%s\n%s", r->rc, r->out, r->err);
    char *sk_after = slurp(path);
    assert_non_null(sk_before);
    assert_non_null(sk_after);
    assert_string_equal(sk_before, sk_after);
    free(sk_before);
    free(sk_after);
    snprintf(path, sizeof path, "%s/summary.md", root);
    char *md_after = slurp(path);
    assert_non_null(md_after);
    assert_string_equal(md, md_after);
    free(md_after);
    free(md);
    /* every problem cut by --steps before its first epoch ended: exit 0, each cut problem listed with its
     * reason in skipped.json (nothing to plot), no report failure */
    snprintf(root, sizeof root, "%s/all-cut", g_root);
    run_v(r, 120, (const char *const[]){"train", "--problem",     "all", "--backend",    "cpu", "--data",
                                        g_data,  "--limit-train", "64",  "--limit-test", "16",  "--batch-size",
                                        "16",    "--steps",       "1",   "--width",      "8",   "--out",
                                        root,    "--quiet",       NULL});
    if (r->rc != 0) fail_msg("all cut: exit %d\n%s\n%s", r->rc, r->out, r->err);
    if (!strstr(r->out, "linear: cut by --steps after 1 steps, before its first epoch ended"))
        fail_msg("all cut: no cut line:\n%s", r->out);
    snprintf(path, sizeof path, "%s/skipped.json", root);
    sk = slurp(path);
    assert_non_null(sk);
    j = cJSON_Parse(sk);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 8);
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "reason")->valuestring,
                           "cut by --steps before its first epoch ended"));
    cJSON_Delete(j);
    free(sk);
    /* --problem all does not take --resume */
    RUN(r, "train", "--problem", "all", "--resume", "x.vtc");
    expect_usage_error(r, "all + resume", "--resume");
    free(r);
}

/* ---- export ---------------------------------------------------------------------------------- */

/* A checkpoint with one BN layer and the metadata the trainer records. */
static void write_ckpt(const char *path) {
    vt_tensor_dict d = {0};
    float w[6] = {1, 2, 3, 4, 5, 6}, m[2] = {0.5f, 0.25f};
    assert_int_equal(vt_dict_add(&d, "fc.weight", VT_F32, 2, (int64_t[]){2, 3}, w), VT_OK);
    assert_int_equal(vt_dict_add(&d, "bn1.running_mean", VT_F32, 1, (int64_t[]){2}, m), VT_OK);
    assert_int_equal(vt_dict_add(&d, "bn1.running_var", VT_F32, 1, (int64_t[]){2}, m), VT_OK);
    assert_int_equal(vt_dict_add(&d, "optim.fc.weight.m", VT_F32, 2, (int64_t[]){2, 3}, w), VT_OK);
    assert_int_equal(
        vt_dict_set_meta(&d, "{\"epoch\": 3, \"global_step\": 99, \"bn_batches_tracked\": 1234, "
                             "\"config\": {\"problem\": \"resnet18-scratch\"}, "
                             "\"class_names\": [\"apple\", \"aquarium_fish\"], "
                             "\"normalize\": {\"mean\": [0.485000014, 0.456, 0.405999988], \"std\": [1, 2, 3]}, "
                             "\"input_size\": [3, 32, 32]}"),
        VT_OK);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    vt_dict_free(&d);
}

/* The safetensors header as JSON, and the file's bytes. */
static cJSON *st_header(const char *path, char **bytes) {
    char *b = slurp(path);
    assert_non_null(b);
    uint64_t hl = 0;
    memcpy(&hl, b, 8);
    char *h = strndup(b + 8, (size_t)hl);
    cJSON *j = cJSON_Parse(h);
    free(h);
    assert_non_null(j);
    *bytes = b;
    return j;
}

static void test_export(void **state) {
    (void)state;
    char ck[700], lnk[700], hard[700], st[700];
    snprintf(ck, sizeof ck, "%s/exp.vtc", g_root);
    snprintf(lnk, sizeof lnk, "%s/exp-link.safetensors", g_root);
    snprintf(hard, sizeof hard, "%s/exp-hard.safetensors", g_root);
    snprintf(st, sizeof st, "%s/exp.safetensors", g_root);
    write_ckpt(ck);
    char *before = slurp(ck);
    /* the output is the input: by name, through a symlink, through a hard link */
    unlink(lnk);
    unlink(hard);
    assert_int_equal(symlink(ck, lnk), 0);
    assert_int_equal(link(ck, hard), 0);
    const char *same[] = {ck, lnk, hard};
    for (int i = 0; i < 3; i++) {
        vt_status s = vt_export_checkpoint(ck, same[i]);
        if (s != VT_ERR_INVALID_ARG) fail_msg("export onto %s: %s (%s)", same[i], vt_status_name(s), vt_last_error());
        assert_non_null(strstr(vt_last_error(), "input checkpoint"));
        char *now = slurp(ck);
        assert_string_equal(now, before); /* (the header and names are text up to the first NUL at least) */
        free(now);
        vt_tensor_dict d = {0};
        assert_int_equal(vt_ckpt_read(ck, &d), VT_OK);
        vt_dict_free(&d);
    }
    free(before);
    if (g_vtrain[0]) {
        result *r = calloc(1, sizeof *r);
        RUN(r, "export", "--checkpoint", ck, "--out", lnk);
        assert_int_equal(r->rc, 1);
        assert_non_null(strstr(r->err, "input checkpoint"));
        RUN(r, "export", "--checkpoint", ck, "--out=exp.safetensors");
        if (r->rc != 0) fail_msg("export: exit %d: %s", r->rc, r->err);
        free(r);
    } else {
        assert_int_equal(vt_export_checkpoint(ck, st), VT_OK);
    }
    char *bytes;
    cJSON *h = st_header(st, &bytes);
    const cJSON *md = cJSON_GetObjectItem(h, "__metadata__");
    assert_non_null(md);
    assert_string_equal(cJSON_GetObjectItem(md, "problem")->valuestring, "resnet18-scratch");
    assert_string_equal(cJSON_GetObjectItem(md, "class_names")->valuestring, "[\"apple\",\"aquarium_fish\"]");
    /* float32 values as written, not their expansion */
    assert_string_equal(cJSON_GetObjectItem(md, "normalize_mean")->valuestring, "[0.485,0.456,0.406]");
    assert_string_equal(cJSON_GetObjectItem(md, "normalize_std")->valuestring, "[1,2,3]");
    assert_string_equal(cJSON_GetObjectItem(md, "input_size")->valuestring, "[3,32,32]");
    assert_null(cJSON_GetObjectItem(h, "optim.fc.weight.m"));
    /* num_batches_tracked is the checkpoint's BN count, not the global step */
    const cJSON *nb = cJSON_GetObjectItem(h, "bn1.num_batches_tracked");
    assert_non_null(nb);
    assert_string_equal(cJSON_GetObjectItem(nb, "dtype")->valuestring, "I64");
    uint64_t hl;
    memcpy(&hl, bytes, 8);
    int64_t off = (int64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(nb, "data_offsets"), 0)->valuedouble;
    int64_t v;
    memcpy(&v, bytes + 8 + hl + off, 8);
    assert_int_equal(v, 1234);
    cJSON_Delete(h);
    free(bytes);
}

/* ---- progress -------------------------------------------------------------------------------- */

static vt_progress sample_progress(const char *name) {
    vt_progress p = {.problem = name,
                     .problem_index = 3,
                     .problem_count = 8,
                     .epoch = 12,
                     .epochs = 150,
                     .step = 391,
                     .steps = 782,
                     .loss = 2.345678,
                     .acc = 41.25,
                     .images_per_s = 12345,
                     .elapsed_s = 3725,
                     .eta_s = 40000};
    return p;
}

/* Renders through vt_progress_show into a memstream with COLUMNS=width and returns the longest
 * visible run between carriage returns / newlines (escape sequences removed). */
static int widest_shown(const vt_progress *p, int width, int tty, char *text, size_t n) {
    char cols[16];
    snprintf(cols, sizeof cols, "%d", width);
    setenv("COLUMNS", cols, 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    vt_progress_show(p, f, tty);
    vt_progress_show(p, f, tty);
    vt_progress_clear(f, tty);
    fclose(f);
    int widest = 0, cur = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\033') { /* CSI ... final byte */
            i++;
            while (i < len && !(buf[i] >= '@' && buf[i] <= '~' && buf[i] != '[')) i++;
            continue;
        }
        if (buf[i] == '\r' || buf[i] == '\n') {
            cur = 0;
            continue;
        }
        if (++cur > widest) widest = cur;
        if (k + 1 < n) text[k++] = buf[i];
    }
    text[k] = 0;
    unsetenv("COLUMNS");
    free(buf);
    return widest;
}

static void test_progress_fits(void **state) {
    (void)state;
    static const int widths[] = {20, 40, 60, 80, 120, 200};
    const char *names[] = {"cnn-pool", "resnet18-finetune",
                           "a-problem-name-far-longer-than-any-terminal-line-would-hold-at-all"};
    char text[4096], line[512];
    for (size_t ni = 0; ni < 3; ni++)
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            vt_progress p = sample_progress(names[ni]);
            int w = widest_shown(&p, widths[wi], 1, text, sizeof text);
            if (w > widths[wi] - 1) fail_msg("width %d: a line of %d columns: %s", widths[wi], w, text);
            size_t n = vt_progress_format(&p, widths[wi], 1, line, sizeof line);
            assert_true((int)n <= widths[wi] - 1);
            assert_int_equal(strlen(line), n);
            if (widths[wi] >= 40) {
                assert_non_null(strstr(line, "391/782"));  /* step n/N survives */
                assert_non_null(strstr(line, "12/150"));   /* epoch e/E */
                assert_non_null(strstr(line, "3/8"));      /* problem k/n */
                assert_non_null(strstr(line, "11:06:40")); /* the ETA */
            }
            if (widths[wi] >= 200) {
                assert_non_null(strstr(line, "problem 3/8"));
                assert_non_null(strstr(line, names[ni]));
                assert_non_null(strstr(line, "elapsed 1:02:05"));
                assert_non_null(strstr(line, "["));
            }
        }
    /* a single run says no "problem k/n"; an unknown ETA shows as ? */
    vt_progress p = sample_progress("mlp");
    p.problem_count = 0;
    p.eta_s = -1;
    vt_progress_format(&p, 80, 1, line, sizeof line);
    assert_null(strstr(line, "problem"));
    assert_non_null(strstr(line, "ETA ?"));
}

static void test_progress_log_line(void **state) {
    (void)state;
    vt_progress p = sample_progress("resnet18-finetune");
    char text[4096];
    widest_shown(&p, 40, 0, text, sizeof text);
    /* not a terminal: whole lines, newline-terminated, no carriage return or escape, nothing dropped */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vt_progress_show(&p, f, 0);
    vt_progress_clear(f, 0);
    fclose(f);
    assert_true(len > 0 && buf[len - 1] == '\n');
    assert_int_equal(count_lines(buf), 1);
    assert_null(strchr(buf, '\r'));
    assert_null(strchr(buf, '\033'));
    static const char *const parts[] = {"problem 3/8",  "resnet18-finetune", "epoch 12/150",
                                        "step 391/782", "loss 2.3457",       "acc 41.25%",
                                        "12345 img/s",  "elapsed 1:02:05",   "ETA 11:06:40"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (!strstr(buf, parts[i])) fail_msg("log line lacks '%s': %s", parts[i], buf);
    free(buf);
}

/* ---- main ------------------------------------------------------------------------------------ */

static void find_vtrain(void) {
    char self[1024] = "";
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k > 0) self[k] = 0;
    else snprintf(self, sizeof self, "%s", g_argv0);
    char *slash = strrchr(self, '/');
    if (!slash) return;
    *slash = 0;
    char cand[1200];
    snprintf(cand, sizeof cand, "%s/../tools/vtrain", self);
    if (access(cand, X_OK) == 0 && realpath(cand, g_vtrain)) return;
    g_vtrain[0] = 0;
}

static int group_setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/vt_cli_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_root)) return -1;
    snprintf(g_data, sizeof g_data, "%s/data", g_root);
    mkdir(g_data, 0755);
    fx_write_cifar100(g_data, 64, 32);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    find_vtrain();
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (!getenv("VT_KEEP_TMP")) fx_rmtree(g_root);
    return 0;
}

/* ---- segmentation: list's groups, train's --size/--crop/--fc-width, eval and predict ---------- */

/* `vtrain list`: the eight classification problems as before, then the "segmentation" group (9-11). */
static void test_list_groups(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    RUN(r, "list");
    assert_int_equal(r->rc, 0);
    const char *seg = strstr(r->out, "\nsegmentation");
    if (!seg) fail_msg("no segmentation group:\n%s", r->out);
    /* the rows of each group, by their leading problem number */
    int cls_rows = 0, seg_rows = 0;
    for (const char *l = r->out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        int id = 0;
        char name[64];
        if (!isdigit((unsigned char)l[0]) || sscanf(l, "%d %63s", &id, name) != 2) continue; /* not a title line */
        if (l < seg) {
            if (id < 1 || id > 8) fail_msg("problem %d before the segmentation group", id);
            cls_rows++;
        } else {
            if (id < 9 || id > 11) fail_msg("problem %d in the segmentation group", id);
            seg_rows++;
        }
    }
    assert_int_equal(cls_rows, 8);
    assert_int_equal(seg_rows, 3);
    assert_non_null(strstr(seg, "fcn32s-scratch"));
    assert_non_null(strstr(seg, "fcn8s"));
    free(r);
}

static void test_seg_flags(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    static const char *const bad_hw[] = {"64", "64x", "x64", "0x64", "64x0", "ax64", "64x64x1", "64.5x64", "-32x32",
                                         "99999x64"};
    for (size_t i = 0; i < sizeof bad_hw / sizeof bad_hw[0]; i++) {
        RUN(r, "train", "--problem", "fcn32s-scratch", "--size", bad_hw[i]);
        expect_usage_error(r, bad_hw[i], "--size");
        RUN(r, "train", "--problem", "fcn32s-scratch", "--crop", bad_hw[i]);
        expect_usage_error(r, bad_hw[i], "--crop");
    }
    RUN(r, "train", "--problem", "fcn8s", "--fc-width", "0");
    expect_usage_error(r, "--fc-width 0", "--fc-width");
    RUN(r, "train", "--problem", "fcn8s", "--fc-width", "16.5");
    expect_usage_error(r, "--fc-width 16.5", "--fc-width");
    RUN(r, "train", "--problem", "fcn32s-scratch", "--size", "64x64", "--crop", "96x32");
    expect_usage_error(r, "--crop larger than --size", "--crop 96x32 is larger than --size 64x64");
    RUN(r, "train", "--problem", "linear", "--size", "64x64");
    expect_usage_error(r, "--size on linear", "--size applies to the segmentation problems");
    RUN(r, "train", "--problem", "resnet18-scratch", "--fc-width", "64");
    expect_usage_error(r, "--fc-width on resnet", "--fc-width applies to the segmentation problems");
    RUN(r, "train", "--problem", "all", "--crop=32x32");
    expect_usage_error(r, "--crop with all", "--crop applies to the segmentation problems");
    RUN(r, "train", "--problem", "fcn32s-scratch", "--stem", "cifar");
    expect_usage_error(r, "--stem on fcn", "--stem applies to the ResNet18 problems");
    RUN(r, "train", "--problem", "fcn32s-pretrained");
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "fcn32s-pretrained needs ImageNet VGG16 weights"));
    RUN(r, "predict", "--checkpoint", "x.vtc");
    expect_usage_error(r, "predict without --out", "--out is required");
    RUN(r, "predict", "--out", "masks");
    expect_usage_error(r, "predict without --checkpoint", "--checkpoint is required");
    RUN(r, "predict", "--checkpoint", "x.vtc", "--out", "m", "--split", "dev");
    expect_usage_error(r, "predict --split dev", "--split takes val, train or test");
    free(r);
}

/* A tiny deepglobe-layout folder: n pairs of 64x64 bands in dir/<split>. */
static void write_deepglobe_split(const char *dir, const char *split, int n) {
    static const uint8_t rgb_of[3][3] = {{0, 255, 255}, {255, 255, 0}, {255, 0, 255}};
    char sd[800], p[900];
    snprintf(sd, sizeof sd, "%s/%s", dir, split);
    mkdir(dir, 0755);
    mkdir(sd, 0755);
    uint8_t img[64 * 64 * 3], mask[64 * 64 * 3];
    for (int i = 0; i < n; i++) {
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) {
                int k = ((y / 16) + i) % 3;
                uint8_t *q = img + 3 * (y * 64 + x);
                q[0] = (uint8_t)(40 + 80 * k);
                q[1] = (uint8_t)(200 - 60 * k);
                q[2] = (uint8_t)(30 + (x % 8));
                memcpy(mask + 3 * (y * 64 + x), rgb_of[k], 3);
            }
        snprintf(p, sizeof p, "%s/%04d_sat.jpg", sd, i);
        assert_int_equal(fx_write_jpeg(p, 64, 64, img, 0), 0);
        snprintf(p, sizeof p, "%s/%04d_mask.png", sd, i);
        assert_int_equal(fx_write_png(p, 64, 64, 3, mask), 0);
    }
}

/* train a segmentation problem with the new options, eval prints the scores, predict writes the masks. */
static void test_seg_eval_predict(void **state) {
    (void)state;
    skip_without_vtrain();
    result *r = calloc(1, sizeof *r);
    char dg[700], out[700], ck[800], masks[800], path[900];
    snprintf(dg, sizeof dg, "%s/dg", g_root);
    write_deepglobe_split(dg, "training", 4);
    write_deepglobe_split(dg, "validation", 2);
    snprintf(out, sizeof out, "%s/run-fcn", g_root);
    run_v(r, 120,
          (const char *const[]){"train", "--problem", "fcn32s-scratch", "--backend", "cpu", "--data", dg, "--width", "4",
                                "--fc-width", "16", "--size", "64x64", "--crop", "32x32", "--batch-size", "2",
                                "--epochs", "1", "--dropout", "0", "--out", out, "--quiet", NULL});
    if (r->rc != 0) fail_msg("train: exit %d\n%s\n%s", r->rc, r->out, r->err);
    /* the options reached the run's config */
    snprintf(path, sizeof path, "%s/config.json", out);
    char *cfg = slurp(path);
    assert_non_null(cfg);
    cJSON *j = cJSON_Parse(cfg);
    free(cfg);
    assert_non_null(j);
    static const char *const keys[] = {"seg_h", "seg_w", "crop_h", "crop_w", "fc_width"};
    static const double want[] = {64, 64, 32, 32, 16};
    for (int k = 0; k < 5; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!cJSON_IsNumber(v) || v->valuedouble != want[k]) fail_msg("config.json: %s is not %g", keys[k], want[k]);
    }
    cJSON_Delete(j);
    snprintf(ck, sizeof ck, "%s/last.vtc", out);
    RUN(r, "eval", "--backend", "cpu", "--checkpoint", ck);
    if (r->rc != 0) fail_msg("eval: exit %d\n%s\n%s", r->rc, r->out, r->err);
    regex_t re;
    assert_int_equal(regcomp(&re,
                             "^test loss [0-9.]+, pixel accuracy [0-9.]+%, mIoU [0-9.]+%, practice's mIoU [0-9.]+% "
                             "\\(checkpoint recorded mIoU [0-9.]+%\\)\nper-class IoU: 0: ",
                             REG_EXTENDED | REG_NEWLINE),
                     0);
    if (regexec(&re, r->out, 0, NULL, 0) != 0) fail_msg("eval output:\n%s", r->out);
    regfree(&re);
    assert_non_null(strstr(r->out, " 5: ")); /* deepglobe's six classes, absent ones shown as '-' */
    snprintf(masks, sizeof masks, "%s/masks", g_root);
    RUN(r, "predict", "--backend", "cpu", "--checkpoint", ck, "--out", masks);
    if (r->rc != 0) fail_msg("predict: exit %d\n%s\n%s", r->rc, r->out, r->err);
    assert_non_null(strstr(r->out, "wrote 2 masks to"));
    snprintf(path, sizeof path, "%s/0001_mask.png", masks);
    assert_true(fx_exists(path));
    /* a classification checkpoint is refused by predict */
    snprintf(out, sizeof out, "%s/run-lin", g_root);
    RUN(r, "train", "--problem", "linear", "--backend", "cpu", "--data", g_data, "--epochs", "0", "--batch-size", "8",
        "--out", out, "--quiet");
    if (r->rc != 0) fail_msg("linear: exit %d\n%s", r->rc, r->err);
    snprintf(ck, sizeof ck, "%s/init.vtc", out);
    RUN(r, "predict", "--backend", "cpu", "--checkpoint", ck, "--out", masks);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "predict needs a segmentation checkpoint"));
    free(r);
}

int main(int argc, char **argv) {
    (void)argc;
    snprintf(g_argv0, sizeof g_argv0, "%s", argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_json),           cmocka_unit_test(test_strict_numbers),
        cmocka_unit_test(test_long_paths),          cmocka_unit_test(test_did_you_mean),
        cmocka_unit_test(test_help_and_version),    cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_backend_options),     cmocka_unit_test(test_error_location),
        cmocka_unit_test(test_inapplicable_flags),  cmocka_unit_test(test_problem7_needs_weights),
        cmocka_unit_test(test_fifo_refused),        cmocka_unit_test(test_train_run),
        cmocka_unit_test(test_problem_all_skipped), cmocka_unit_test(test_export),
        cmocka_unit_test(test_progress_fits),       cmocka_unit_test(test_progress_log_line),
        cmocka_unit_test(test_list_groups),         cmocka_unit_test(test_seg_flags),
        cmocka_unit_test(test_seg_eval_predict),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
