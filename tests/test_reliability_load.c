/* Long-run checks of the real vtrain program: resident memory stays flat over thousands of steps,
 * and training, resume, eval and failing commands free everything (valgrind memcheck). */
#define _GNU_SOURCE
#include "test_dataset_fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "vt/checkpoint.h"

#if defined(__SANITIZE_ADDRESS__)
#define VT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VT_UNDER_ASAN 1
#endif
#endif
#ifndef VT_UNDER_ASAN
#define VT_UNDER_ASAN 0
#endif

static char g_root[512], g_vtrain[1024], g_data[600], g_argv0[1024];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)(n > 0 ? n : 0) + 1);
    size_t got = n > 0 ? fread(b, 1, (size_t)n, f) : 0;
    b[got] = 0;
    fclose(f);
    return b;
}

/* argv[0] is replaced by the program; NULL-terminated. Output goes to `log`. */
static pid_t spawn(const char *prog, const char *const *argv, const char *log) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        close(fd);
        if (chdir(g_root) != 0) _exit(126);
        execvp(prog, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static int wait_child(pid_t pid, double timeout_s) {
    double t0 = now_s();
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
        assert_true(r == 0);
        if (now_s() - t0 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("child %d still running after %.0f s", (int)pid, timeout_s);
        }
        sleep_s(0.01);
    }
}

/* RssAnon (heap and other anonymous memory: what a leak grows; library pages are file-backed and
 * come and go with the page cache) of a live process in KiB, -1 once it is gone. */
static long rss_kib(pid_t pid) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void skip_without_vtrain(void) {
    if (!g_vtrain[0]) {
        printf("SKIPPED: the vtrain program is not built next to this test\n");
        skip();
    }
}

/* ---- resident memory over a long run ------------------------------------------------------- */

static void test_rss_flat(void **state) {
    (void)state;
    skip_without_vtrain();
    if (VT_UNDER_ASAN) {
        printf("SKIPPED: under AddressSanitizer the quarantine makes resident memory grow by design\n");
        skip();
    }
    char out[600], log[700];
    snprintf(out, sizeof out, "%s/long", g_root);
    snprintf(log, sizeof log, "%s/long.log", g_root);
    /* 16 steps per epoch, a checkpoint and an evaluation per epoch: 1500 epochs = 24000 steps. Long
     * enough that the first quarter covers start-up on a loaded machine: with the CUDA backend compiled
     * in, the loader pages in a few hundred MB of cuBLAS/cuDNN over the first seconds. */
    const int epochs = 1500;
    char ep[16];
    snprintf(ep, sizeof ep, "%d", epochs);
    const char *const argv[] = {"vtrain",       "train",  "--backend",     "cpu", "--data",       g_data,
                                "--problem",    "linear", "--limit-train", "256", "--limit-test", "64",
                                "--batch-size", "16",     "--epochs",      ep,    "--out",        out,
                                "--quiet",      NULL};
    pid_t pid = spawn(g_vtrain, argv, log);
    enum { MAXS = 20000 };
    static long s[MAXS];
    int n = 0;
    for (;;) {
        long k = rss_kib(pid);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("long run failed:\n%s", slurp_text(log));
            break;
        }
        if (k > 0 && n < MAXS) s[n++] = k;
        sleep_s(0.02);
    }
    if (n < 40) {
        printf("SKIPPED: the run ended after %d samples, too few to judge\n", n);
        skip();
    }
    /* warm-up: the first quarter (data upload, first checkpoints, allocator settling) */
    long base = 0, late = 0, peak = 0;
    for (int i = n / 4; i < n / 2; i++) base = s[i] > base ? s[i] : base;
    for (int i = 3 * n / 4; i < n; i++) late = s[i] > late ? s[i] : late;
    for (int i = 0; i < n; i++) peak = s[i] > peak ? s[i] : peak;
    printf(
        "anonymous RSS over %d epochs (%d steps): %d samples, first %ld KiB, after warm-up %ld KiB, last quarter %ld KiB, "
        "peak %ld KiB, growth %+ld KiB\n",
        epochs, epochs * 16, n, s[0], base, late, peak, late - base);
    /* The per-epoch metric history is kept by design (checkpoints carry it): allow 1 KiB per epoch for
     * it and 1 MiB besides; a leak of 400 bytes per step (> 4 MiB over the ~12000 steps between the
     * two windows) still fails. */
    assert_true(late - base <= 1024 + epochs);
}

/* ---- valgrind memcheck on short runs, their resume, eval and failures ---------------------- */

static int valgrind_run(const char *name, const char *const *vt_args, int expect_rc) {
    char log[700];
    snprintf(log, sizeof log, "%s/%s.vg.log", g_root, name);
    const char *argv[48] = {"valgrind",
                            "--quiet",
                            "--leak-check=full",
                            "--errors-for-leak-kinds=definite,indirect",
                            "--error-exitcode=99",
                            "--track-fds=no",
                            "--suppressions=" VT_SOURCE_DIR "/tests/valgrind.supp",
                            g_vtrain};
    int k = 8;
    for (int i = 1; vt_args[i] && k < 46; i++) argv[k++] = vt_args[i];
    argv[k] = NULL;
    double t0 = now_s();
    int rc = wait_child(spawn("valgrind", argv, log), 600);
    char *t = slurp_text(log);
    printf("  valgrind %-24s exit %d (%s), %.1f s\n", name, rc, rc == expect_rc ? "as expected" : "UNEXPECTED",
           now_s() - t0);
    if (rc != expect_rc) fail_msg("%s under valgrind: exit %d, expected %d:\n%s", name, rc, expect_rc, t);
    free(t);
    return rc;
}

static void test_valgrind(void **state) {
    (void)state;
    skip_without_vtrain();
    if (VT_UNDER_ASAN) {
        printf("SKIPPED: valgrind cannot run an AddressSanitizer build (LSan checks leaks there)\n");
        skip();
    }
    if (system("valgrind --version > /dev/null 2>&1") != 0) {
        printf("SKIPPED: valgrind is not installed\n");
        skip();
    }
    char out[600], last[700], bad[700];
    snprintf(out, sizeof out, "%s/vg", g_root);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(bad, sizeof bad, "%s/bad.vtc", g_root);
    valgrind_run("train",
                 (const char *const[]){"vtrain",       "train",  "--backend",     "cpu", "--data",       g_data,
                                       "--problem",    "linear", "--limit-train", "64",  "--limit-test", "32",
                                       "--batch-size", "16",     "--epochs",      "2",   "--out",        out,
                                       "--quiet",      NULL},
                 0);
    valgrind_run("resume",
                 (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu",
                                       "--epochs", "3", "--quiet", NULL},
                 0);
    valgrind_run("eval", (const char *const[]){"vtrain", "eval", "--checkpoint", last, "--backend", "cpu", NULL}, 0);
    /* Ctrl-C: the interrupt path writes a checkpoint and returns through the same frees */
    {
        char log[700], out2[600], last2[700];
        snprintf(log, sizeof log, "%s/sigint.vg.log", g_root);
        snprintf(out2, sizeof out2, "%s/vg-int", g_root);
        snprintf(last2, sizeof last2, "%s/last.vtc", out2);
        const char *const argv[] = {"valgrind",
                                    "--quiet",
                                    "--leak-check=full",
                                    "--errors-for-leak-kinds=definite,indirect",
                                    "--error-exitcode=99",
                                    "--suppressions=" VT_SOURCE_DIR "/tests/valgrind.supp",
                                    g_vtrain,
                                    "train",
                                    "--backend",
                                    "cpu",
                                    "--data",
                                    g_data,
                                    "--problem",
                                    "linear",
                                    "--limit-train",
                                    "64",
                                    "--limit-test",
                                    "32",
                                    "--batch-size",
                                    "16",
                                    "--epochs",
                                    "100000",
                                    "--out",
                                    out2,
                                    "--quiet",
                                    NULL};
        double t0 = now_s();
        pid_t pid = spawn("valgrind", argv, log);
        struct stat st;
        while (stat(last2, &st) != 0 && now_s() - t0 < 300) sleep_s(0.05);
        sleep_s(0.3);
        kill(pid, SIGINT);
        int rc = wait_child(pid, 300);
        printf("  valgrind %-24s exit %d, %.1f s\n", "sigint", rc, now_s() - t0);
        if (rc != 130) fail_msg("Ctrl-C under valgrind: exit %d, expected 130:\n%s", rc, slurp_text(log));
    }
    /* failures free what they allocated too */
    vt_tensor_dict d = {0};
    assert_int_equal(vt_ckpt_read(last, &d), VT_OK);
    vt_tensor_dict w = {0};
    for (size_t i = 0; i < d.n; i++) {
        vt_host_tensor *h = &d.items[i];
        int64_t shape[4] = {h->shape[0], h->shape[1], h->shape[2], h->shape[3]};
        if (i == 0) shape[0] += 1;
        assert_int_equal(vt_dict_add(&w, h->name, h->dtype, h->ndim, shape, i == 0 ? NULL : h->data), VT_OK);
    }
    assert_int_equal(vt_dict_set_meta(&w, d.meta_json), VT_OK);
    assert_int_equal(vt_ckpt_write(bad, &w), VT_OK);
    vt_dict_free(&w);
    vt_dict_free(&d);
    valgrind_run("eval-wrong-shape",
                 (const char *const[]){"vtrain", "eval", "--checkpoint", bad, "--backend", "cpu", NULL}, 1);
    valgrind_run(
        "resume-wrong-shape",
        (const char *const[]){"vtrain", "train", "--resume", bad, "--out", out, "--backend", "cpu", "--quiet", NULL},
        1);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no-such-data", g_root);
    valgrind_run("missing-data",
                 (const char *const[]){"vtrain", "train", "--backend", "cpu", "--data", missing, "--problem", "linear",
                                       "--out", out, "--quiet", NULL},
                 1);
    /* a folder of its own: `out` holds a run, and a new run there is refused (--resume or --overwrite) */
    char nan_out[700];
    snprintf(nan_out, sizeof nan_out, "%s/vg-nan", g_root);
    valgrind_run("nan-stop",
                 (const char *const[]){"vtrain",       "train",  "--backend",     "cpu",   "--data",       g_data,
                                       "--problem",    "linear", "--limit-train", "64",    "--limit-test", "32",
                                       "--batch-size", "16",     "--epochs",      "2",     "--lr",         "1e35",
                                       "--log-every",  "1",      "--out",         nan_out, "--quiet",      NULL},
                 1);
}

/* ---- main ---------------------------------------------------------------------------------- */

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
    if (access(cand, X_OK) != 0 || !realpath(cand, g_vtrain)) g_vtrain[0] = 0;
}

static int group_setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/vt_reliability_load_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_root)) return -1;
    snprintf(g_data, sizeof g_data, "%s/data", g_root);
    mkdir(g_data, 0755);
    fx_write_cifar10(g_data, 64, 64);
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

int main(int argc, char **argv) {
    (void)argc;
    snprintf(g_argv0, sizeof g_argv0, "%s", argv[0]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_flat),
        cmocka_unit_test(test_valgrind),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
