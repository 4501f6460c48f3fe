/* Faults a training run must survive, driven through the real vtrain program: SIGINT/SIGTERM,
 * kill -9 at random moments, a full disk, a diverging loss, device out of memory, hostile files. */
#define _GNU_SOURCE
#include "test_dataset_fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/checkpoint.h"

static char g_root[512];    /* fresh temporary folder for the whole file */
static char g_vtrain[1024]; /* the vtrain program of this build */
static char g_data[600];    /* synthetic CIFAR-10 in the official binary layout */
static char g_argv0[1024];

/* ---- helpers: files -------------------------------------------------------------------------- */

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_root, name); }

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)(sz > 0 ? sz : 0) + 1);
    if (b && sz > 0 && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[sz > 0 ? sz : 0] = 0;
    if (n) *n = (size_t)(sz > 0 ? sz : 0);
    return b;
}

static void spit(const char *path, const void *b, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Temp files left by an interrupted atomic write (<file>.tmp.<pid>); removed when `remove_them`. */
static int count_temp_files(const char *dir, int remove_them) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        n++;
        if (remove_them) {
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    return n;
}

/* Every regular file of a run folder with its bytes, to prove a failed command changed nothing. */
#define SNAP_MAX 24
typedef struct snap {
    int n;
    char name[SNAP_MAX][128];
    unsigned char *data[SNAP_MAX];
    size_t len[SNAP_MAX];
} snap;

static void snap_take(const char *dir, snap *s) {
    memset(s, 0, sizeof *s);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        assert_true(s->n < SNAP_MAX);
        snprintf(s->name[s->n], sizeof s->name[0], "%s", e->d_name);
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        s->data[s->n] = slurp(p, &s->len[s->n]);
        assert_non_null(s->data[s->n]);
        s->n++;
    }
    closedir(d);
}

static void snap_check_same(const char *dir, const snap *s, const char *what) {
    snap now;
    snap_take(dir, &now);
    if (now.n != s->n) fail_msg("%s: the run folder had %d files, now %d", what, s->n, now.n);
    for (int i = 0; i < s->n; i++) {
        int found = 0;
        for (int k = 0; k < now.n && !found; k++) {
            if (strcmp(now.name[k], s->name[i])) continue;
            found = 1;
            if (now.len[k] != s->len[i] || memcmp(now.data[k], s->data[i], s->len[i]))
                fail_msg("%s: %s in the run folder was overwritten", what, s->name[i]);
        }
        if (!found) fail_msg("%s: %s disappeared from the run folder", what, s->name[i]);
    }
    for (int k = 0; k < now.n; k++) free(now.data[k]);
}

static void snap_free(snap *s) {
    for (int i = 0; i < s->n; i++) free(s->data[i]);
    memset(s, 0, sizeof *s);
}

/* Reads a checkpoint; returns its metadata's integer field `key` (-1 when the read fails). */
static long ckpt_meta_int(const char *path, const char *key) {
    vt_tensor_dict d = {0};
    if (vt_ckpt_read(path, &d) != VT_OK) {
        fprintf(stderr, "%s\n", vt_last_error());
        return -1;
    }
    cJSON *m = cJSON_Parse(d.meta_json ? d.meta_json : "");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    long r = cJSON_IsNumber(v) ? (long)v->valuedouble : -2;
    cJSON_Delete(m);
    vt_dict_free(&d);
    return r;
}

/* Every f32 tensor of a checkpoint is finite. */
static int ckpt_all_finite(const char *path) {
    vt_tensor_dict d = {0};
    if (vt_ckpt_read(path, &d) != VT_OK) return 0;
    int ok = 1;
    for (size_t i = 0; i < d.n && ok; i++) {
        if (d.items[i].dtype != VT_F32) continue;
        const float *f = d.items[i].data;
        for (size_t k = 0; k < d.items[i].nbytes / 4 && ok; k++) ok = isfinite(f[k]);
    }
    vt_dict_free(&d);
    return ok;
}

static double json_file_num(const char *path, const char *key) {
    char *t = (char *)slurp(path, NULL);
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    free(t);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    double r = cJSON_IsBool(v) ? (cJSON_IsTrue(v) ? 1 : 0) : cJSON_IsNumber(v) ? v->valuedouble : NAN;
    cJSON_Delete(j);
    return r;
}

static char *json_file_str(const char *path, const char *key) {
    char *t = (char *)slurp(path, NULL);
    assert_non_null(t);
    cJSON *j = cJSON_Parse(t);
    free(t);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    char *r = strdup(cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(j);
    return r;
}

/* ---- helpers: the vtrain child ------------------------------------------------------------- */

#define ARGS_MAX 48
typedef struct args {
    const char *v[ARGS_MAX + 1];
    int n;
} args;

static void arg(args *a, const char *s) {
    assert_true(a->n < ARGS_MAX);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void argl(args *a, const char *const *list) {
    for (; *list; list++) arg(a, *list);
}

/* Replaces the value that follows `flag`. */
static void arg_set(args *a, const char *flag, const char *value) {
    for (int i = 0; i + 1 < a->n; i++)
        if (!strcmp(a->v[i], flag)) {
            a->v[i + 1] = value;
            return;
        }
    fail_msg("no %s in the arguments", flag);
}

/* `vtrain train` on the CPU backend, the synthetic data, a tiny problem, into folder `out`. */
static args train_args(const char *out, const char *const *extra) {
    args a = {.n = 0};
    argl(&a, (const char *const[]){"vtrain", "train", "--backend", "cpu", "--data", g_data, "--limit-train", "256",
                                   "--limit-test", "64", "--batch-size", "16", "--out", out, NULL});
    if (extra) argl(&a, extra);
    return a;
}

typedef struct child_opts {
    long fsize_limit; /* RLIMIT_FSIZE in bytes, SIGXFSZ ignored; 0 = none */
} child_opts;

/* Starts vtrain with stdout and stderr going to `log`, in the test's temporary folder. */
static pid_t spawn(const args *a, const char *log, const child_opts *o) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        close(fd);
        if (chdir(g_root) != 0) _exit(126);
        if (o && o->fsize_limit > 0) {
            signal(SIGXFSZ, SIG_IGN); /* so a write past the limit fails with EFBIG, like a full disk */
            struct rlimit rl = {(rlim_t)o->fsize_limit, (rlim_t)o->fsize_limit};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        }
        execv(g_vtrain, (char *const *)a->v);
        _exit(127);
    }
    return pid;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Waits for the child; a child still running after timeout_s is killed and fails the test. */
static int wait_child(pid_t pid, double timeout_s) {
    double t0 = now_s();
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return st;
        assert_true(r == 0);
        if (now_s() - t0 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("vtrain (pid %d) still running after %.0f s", (int)pid, timeout_s);
        }
        sleep_s(0.005);
    }
}

/* Exit code, or 1000 + signal number when the child died of a signal (a crash). */
static int exit_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st); }

static const char *log_text(const char *log);
static int log_has(const char *log, const char *text);

static int run_vtrain(const args *a, const char *log, double timeout_s) {
    return exit_code(wait_child(spawn(a, log, NULL), timeout_s));
}

static void expect_in_log(const char *log, const char *text) {
    if (!log_has(log, text)) fail_msg("expected \"%s\" in the output of vtrain:\n%s", text, log_text(log));
}

/* The output of a child for a failure message (static: the failure longjmps past any free). */
static const char *log_text(const char *log) {
    static char buf[16384];
    size_t n = 0;
    char *t = (char *)slurp(log, &n);
    if (!t) return "(no output)";
    const char *from = n >= sizeof buf ? t + n - (sizeof buf - 1) : t; /* the tail holds the error */
    snprintf(buf, sizeof buf, "%s", from);
    free(t);
    return buf;
}

/* Prints the first line of the output that starts with "vtrain " (the error), for the record. */
static void show_error(const char *what, const char *log) {
    char *t = (char *)slurp(log, NULL);
    const char *m = t ? strstr(t, "vtrain ") : NULL;
    if (m) printf("%s: %.*s\n", what, (int)strcspn(m, "\n"), m);
    free(t);
}

static int log_has(const char *log, const char *text) {
    char *t = (char *)slurp(log, NULL);
    int r = t && strstr(t, text) != NULL;
    free(t);
    return r;
}

/* Waits until `path` exists (returns 1) or the child exits / time runs out (returns 0). */
static int wait_for_file(const char *path, pid_t pid, double timeout_s) {
    double t0 = now_s();
    while (now_s() - t0 < timeout_s) {
        if (file_exists(path)) return 1;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            fail_msg("vtrain exited (status %d) before writing %s", exit_code(st), path);
        sleep_s(0.002);
    }
    return 0;
}

/* Is signal `sig` still pending (not yet delivered) for process pid? */
static int signal_pending(pid_t pid, int sig) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int pend = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long mask;
        if ((sscanf(line, "SigPnd: %llx", &mask) == 1 || sscanf(line, "ShdPnd: %llx", &mask) == 1) &&
            (mask >> (sig - 1)) & 1ull)
            pend = 1;
    }
    fclose(f);
    return pend;
}

static void skip_without_vtrain(void) {
    if (!g_vtrain[0]) {
        printf("SKIPPED: the vtrain program is not built next to this test\n");
        skip();
    }
}

/* A finished run of the linear problem in folder `name` (epochs), for the tests that need one. */
static void make_run(const char *name, const char *epochs, char *out, size_t n) {
    path_of(out, n, name);
    char log[700];
    snprintf(log, sizeof log, "%s.log", out);
    args a = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", epochs, "--quiet", NULL});
    int rc = run_vtrain(&a, log, 120);
    if (rc != 0) fail_msg("setup run %s failed with %d:\n%s", name, rc, log_text(log));
}

/* ---- 1. SIGINT / SIGTERM ------------------------------------------------------------------- */

static void interrupt_once(int sig, const char *name, int resume) {
    char out[600], log[700], last[700];
    path_of(out, sizeof out, name);
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args a = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", "60", "--log-every", "1", NULL});
    int st = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        fx_rmtree(out); /* a fresh run folder each attempt (a finished one is not rerun into) */
        pid_t pid = spawn(&a, log, NULL);
        assert_true(wait_for_file(last, pid, 60));
        sleep_s(0.02 + 0.001 * (rand() % 30));
        kill(pid, sig);
        st = wait_child(pid, 60);
        if (exit_code(st) != 0) break;
        printf("note: the run finished before signal %d arrived; again\n", sig);
    }
    assert_int_equal(exit_code(st), 128 + sig);
    char want[900];
    snprintf(want, sizeof want, "Resume with: vtrain train --resume %s/last.vtc", out);
    expect_in_log(log, want);
    long epoch = ckpt_meta_int(last, "epoch"), step = ckpt_meta_int(last, "step_in_epoch");
    assert_true(epoch >= 1 && epoch < 60);
    assert_true(step >= 0 && step < 16);
    assert_int_equal(count_temp_files(out, 0), 0);
    char summary[700];
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    assert_true(json_file_num(summary, "interrupted") == 1);
    printf("signal %d: stopped at epoch %ld + %ld steps, exit %d\n", sig, epoch, step, exit_code(st));
    if (!resume) return;
    /* the resumed run carries on from that step and ends at the planned epoch count */
    args r = {.n = 0};
    argl(&r,
         (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu", "--quiet", NULL});
    int rc = run_vtrain(&r, log, 120);
    if (rc != 0) fail_msg("resume failed with %d:\n%s", rc, log_text(log));
    assert_int_equal(ckpt_meta_int(last, "epoch"), 60);
    assert_int_equal(ckpt_meta_int(last, "global_step"), 60 * 16);
    assert_true(json_file_num(summary, "epochs") == 60);
    assert_true(json_file_num(summary, "interrupted") == 0);
    char csv[700];
    snprintf(csv, sizeof csv, "%s/metrics.csv", out);
    char *t = (char *)slurp(csv, NULL);
    int lines = 0;
    for (char *q = t; q && *q; q++) lines += *q == '\n';
    free(t);
    assert_int_equal(lines, 61); /* header + one row per epoch, none lost or repeated */
}

static void test_sigint_resume(void **state) {
    (void)state;
    skip_without_vtrain();
    interrupt_once(SIGINT, "sigint", 1);
}

static void test_sigterm(void **state) {
    (void)state;
    skip_without_vtrain();
    interrupt_once(SIGTERM, "sigterm", 0);
}

/* KNOWN FAILURE until tools/cmd_train.c is fixed: without --out the resume hint printed
 * "runs/<problem>/last.vtc" literally instead of the folder the trainer wrote (runs/linear). */
static void test_sigint_default_out(void **state) {
    (void)state;
    skip_without_vtrain();
    char last[700], log[700];
    path_of(last, sizeof last, "runs/linear/last.vtc"); /* the child runs in g_root */
    path_of(log, sizeof log, "default_out.log");
    args a = {.n = 0};
    argl(&a, (const char *const[]){"vtrain", "train", "--backend", "cpu", "--data", g_data, "--problem", "1",
                                   "--limit-train", "256", "--limit-test", "64", "--batch-size", "16", "--epochs",
                                   "1000", "--quiet", NULL});
    pid_t pid = spawn(&a, log, NULL);
    assert_true(wait_for_file(last, pid, 60));
    kill(pid, SIGINT);
    assert_int_equal(exit_code(wait_child(pid, 60)), 130);
    assert_true(ckpt_meta_int(last, "epoch") >= 1);
    if (!log_has(log, "Resume with: vtrain train --resume runs/linear/last.vtc"))
        fail_msg("KNOWN FAILURE (cmd_train.c): the resume hint does not name the checkpoint written:\n%s",
                 log_text(log));
}

/* KNOWN FAILURE until tools/cmd_train.c / core/src/train.c are fixed: the printed resume command
 * (`vtrain train --resume RUN/last.vtc`, no --out) continues into runs/<problem>, not into RUN, so
 * RUN stays at the interrupted state. Runs the hint exactly as printed (plus --backend cpu). */
static void test_resume_hint_as_printed(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700];
    path_of(out, sizeof out, "hint");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args a = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", "300", "--quiet", NULL});
    pid_t pid = spawn(&a, log, NULL);
    assert_true(wait_for_file(last, pid, 60));
    kill(pid, SIGINT);
    assert_int_equal(exit_code(wait_child(pid, 60)), 130);
    const char *t = log_text(log);
    const char *h = strstr(t, "Resume with: ");
    assert_non_null(h);
    static char cmd[1024];
    snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(h + 13, "\n"), h + 13);
    args r = {.n = 0};
    for (char *tok = strtok(cmd, " "); tok; tok = strtok(NULL, " ")) arg(&r, tok);
    assert_true(r.n >= 3);
    long before = ckpt_meta_int(last, "epoch");
    char ep[32];
    snprintf(ep, sizeof ep, "%ld", before + 2);
    argl(&r, (const char *const[]){"--backend", "cpu", "--epochs", ep, "--quiet", NULL});
    int rc = run_vtrain(&r, log, 120);
    if (rc != 0) fail_msg("the printed resume command failed with %d:\n%s", rc, log_text(log));
    long after = ckpt_meta_int(last, "epoch");
    char elsewhere[700];
    path_of(elsewhere, sizeof elsewhere, "runs/linear/last.vtc");
    if (after == before && file_exists(elsewhere))
        fail_msg("KNOWN FAILURE (cmd_train.c/train.c): the printed resume command trained into runs/linear, "
                 "not into %s, which is still at epoch %ld",
                 out, after);
    assert_int_equal(after, before + 2);
}

/* A second SIGINT right after the first: exit at once, the checkpoint on disk keeps its bytes. */
static void test_double_sigint(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700];
    path_of(out, sizeof out, "sigint2");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    /* mlp: a 25 MB checkpoint and slower steps leave a wide window between the two signals */
    for (int attempt = 0; attempt < 6; attempt++) {
        fx_rmtree(out);
        args a =
            train_args(out, (const char *const[]){"--problem", "mlp", "--epochs", "1000", "--log-every", "1", NULL});
        pid_t pid = spawn(&a, log, NULL);
        assert_true(wait_for_file(last, pid, 120));
        /* right after a checkpoint was replaced, so that no legitimate write is due for a while */
        struct stat st0, st1;
        assert_int_equal(stat(last, &st0), 0);
        double t0 = now_s();
        while (stat(last, &st1) == 0 && st1.st_ino == st0.st_ino && now_s() - t0 < 60) sleep_s(0.001);
        size_t n0;
        unsigned char *before = slurp(last, &n0);
        assert_non_null(before);
        if (attempt % 2 == 0) {
            kill(pid, SIGINT);
            for (double t1 = now_s(); signal_pending(pid, SIGINT) && now_s() - t1 < 0.05;) sleep_s(0.0002);
            kill(pid, SIGINT);
        } else {
            /* deterministic variant: both signals pending together, delivered before any more work */
            kill(pid, SIGSTOP);
            kill(pid, SIGINT);
            kill(pid, SIGTERM);
            kill(pid, SIGCONT);
        }
        double t2 = now_s();
        int st = wait_child(pid, 60);
        double exit_after = now_s() - t2;
        if (log_has(log, "checkpoint written")) {
            /* the first signal's checkpoint finished before the second arrived: timing, not a fault */
            printf("note: attempt %d: the second SIGINT came after the checkpoint; retrying\n", attempt);
            free(before);
            continue;
        }
        if (exit_code(st) != 130 && exit_code(st) != 143) fail_msg("double signal: exit %d", exit_code(st));
        size_t n1;
        unsigned char *after = slurp(last, &n1);
        assert_non_null(after);
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        assert_true(ckpt_meta_int(last, "epoch") >= 1);
        int temps = count_temp_files(out, 1);
        printf("double %s: exit %d %.3f s after the second signal, last.vtc unchanged, %d temp file(s) left\n",
               attempt % 2 ? "SIGINT+SIGTERM" : "SIGINT", exit_code(st), exit_after, temps);
        assert_true(exit_after < 5.0);
        free(before);
        free(after);
        return;
    }
    fail_msg("six attempts could not place the second SIGINT before the first one's checkpoint");
}

/* ---- 2. kill -9 at random moments ---------------------------------------------------------- */

static void test_kill9_loop(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], best[700];
    path_of(out, sizeof out, "kill9");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(best, sizeof best, "%s/best.vtc", out);
    /* two steps per epoch: last.vtc (and often best.vtc) is rewritten every few milliseconds */
    const char *const fresh[] = {"--problem", "linear",       "--epochs", "100000",  "--limit-train",
                                 "32",        "--limit-test", "16",       "--quiet", NULL};
    const int kills = 25;
    int mid_write = 0, with_ckpt = 0, advanced = 0;
    long prev_epoch = 0;
    for (int k = 0; k < kills; k++) {
        args a;
        if (file_exists(last)) {
            a = (args){.n = 0};
            argl(&a, (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu",
                                           "--quiet", NULL});
        } else {
            /* killed before its first checkpoint: start afresh (the folder holds the killed run's config) */
            fx_rmtree(out);
            a = train_args(out, fresh);
        }
        pid_t pid = spawn(&a, log, NULL);
        sleep_s(0.15 + 0.001 * (rand() % 700));
        kill(pid, SIGKILL);
        int st = wait_child(pid, 30);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            fail_msg("round %d: vtrain ended with %d before the kill:\n%s", k, exit_code(st), log_text(log));
        mid_write += count_temp_files(out, 1) > 0;
        if (!file_exists(last)) continue;
        with_ckpt++;
        long e = ckpt_meta_int(last, "epoch");
        if (e < 0) fail_msg("round %d: last.vtc does not read back after kill -9", k);
        if (e < prev_epoch) fail_msg("round %d: last.vtc went back from epoch %ld to %ld", k, prev_epoch, e);
        advanced += e > prev_epoch;
        prev_epoch = e;
        if (file_exists(best) && ckpt_meta_int(best, "epoch") < 0) fail_msg("round %d: best.vtc does not read back", k);
    }
    printf("kill -9: %d kills survived, %d landed while a checkpoint was being written (temp file present), "
           "%d left a checkpoint, %d moved training forward (last epoch %ld)\n",
           kills, mid_write, with_ckpt, advanced, prev_epoch);
    assert_true(with_ckpt > 0);
    /* the survivor resumes and finishes */
    char ep[32];
    snprintf(ep, sizeof ep, "%ld", prev_epoch + 1);
    args r = {.n = 0};
    argl(&r, (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu", "--quiet",
                                   "--epochs", ep, NULL});
    int rc = run_vtrain(&r, log, 120);
    if (rc != 0) fail_msg("resume after the kills failed with %d:\n%s", rc, log_text(log));
    assert_int_equal(ckpt_meta_int(last, "epoch"), prev_epoch + 1);
}

/* ---- 3. disk full while writing a checkpoint ----------------------------------------------- */

/* RLIMIT_FSIZE below the checkpoint size: write() fails with EFBIG part-way, as on a full disk. */
static void test_disk_full_rlimit(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], best[700];
    make_run("full", "2", out, sizeof out);
    snprintf(log, sizeof log, "%s.resume.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(best, sizeof best, "%s/best.vtc", out);
    size_t n0, b0;
    unsigned char *before = slurp(last, &n0), *best_before = slurp(best, &b0);
    assert_non_null(before);
    assert_non_null(best_before);
    assert_true(n0 > 100 * 1024);
    args a = {.n = 0};
    argl(&a, (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu", "--quiet",
                                   "--epochs", "4", NULL});
    child_opts o = {.fsize_limit = 64 * 1024};
    int st = wait_child(spawn(&a, log, &o), 120);
    assert_int_equal(exit_code(st), 1);
    expect_in_log(log, "last.vtc");
    expect_in_log(log, "File too large");
    show_error("disk full (RLIMIT_FSIZE)", log);
    size_t n1, b1;
    unsigned char *after = slurp(last, &n1), *best_after = slurp(best, &b1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(b0, b1);
    assert_memory_equal(best_before, best_after, b0);
    assert_int_equal(ckpt_meta_int(last, "epoch"), 2);
    assert_int_equal(count_temp_files(out, 0), 0);
    /* with room again, the same command finishes */
    int rc = run_vtrain(&a, log, 120);
    assert_int_equal(rc, 0);
    assert_int_equal(ckpt_meta_int(last, "epoch"), 4);
    free(before);
    free(after);
    free(best_before);
    free(best_after);
}

/* A real ENOSPC: the run folder on a small tmpfs in a private mount namespace (root only). */
static void test_disk_full_tmpfs(void **state) {
    (void)state;
    skip_without_vtrain();
#ifdef __linux__
    char src[600], srclast[700], mnt[600], log[700];
    make_run("full2", "1", src, sizeof src);
    snprintf(srclast, sizeof srclast, "%s/last.vtc", src);
    path_of(mnt, sizeof mnt, "tmpfs");
    snprintf(log, sizeof log, "%s.log", mnt);
    assert_int_equal(mkdir(mnt, 0755), 0);
    size_t n0;
    unsigned char *before = slurp(srclast, &n0);
    assert_non_null(before);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* room for the copied last.vtc and the small files, not for a second checkpoint */
        char opt[64], last[700];
        snprintf(opt, sizeof opt, "size=%zuk", (n0 + 96 * 1024) / 1024);
        if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", mnt, "tmpfs", 0, opt) != 0)
            _exit(77);
        snprintf(last, sizeof last, "%s/last.vtc", mnt);
        FILE *f = fopen(last, "wb");
        if (!f || fwrite(before, 1, n0, f) != n0 || fclose(f) != 0) _exit(2);
        args a = {.n = 0};
        argl(&a, (const char *const[]){"vtrain", "train", "--resume", last, "--out", mnt, "--backend", "cpu", "--quiet",
                                       "--epochs", "3", NULL});
        int st = 0;
        pid_t c = spawn(&a, log, NULL);
        if (waitpid(c, &st, 0) != c) _exit(3);
        int ok = exit_code(st) == 1;
        if (!ok) fprintf(stderr, "vtrain exit %d\n", exit_code(st));
        size_t n1;
        unsigned char *after = slurp(last, &n1);
        if (!after || n1 != n0 || memcmp(after, before, n0)) ok = 0, fprintf(stderr, "last.vtc changed\n");
        if (ckpt_meta_int(last, "epoch") != 1) ok = 0, fprintf(stderr, "last.vtc does not read back\n");
        if (count_temp_files(mnt, 0)) ok = 0, fprintf(stderr, "a temp file is left\n");
        umount(mnt);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    rmdir(mnt);
    free(before);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        printf("SKIPPED: cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers the failure path\n");
        skip();
    }
    if (WEXITSTATUS(st) != 0) fail_msg("disk full on tmpfs:\n%s", log_text(log));
    expect_in_log(log, "No space left on device");
    expect_in_log(log, "last.vtc");
    show_error("disk full (tmpfs)", log);
#else
    printf("SKIPPED: the tmpfs disk-full test is Linux-only\n");
    skip();
#endif
}

/* ---- 4. the loss becomes NaN / Inf --------------------------------------------------------- */

static void test_nan_stop(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], best[700];
    path_of(out, sizeof out, "nan");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(best, sizeof best, "%s/best.vtc", out);
    /* good for an epoch, then the learning rate grows a millionfold per epoch until the loss is Inf */
    args a = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", "20", "--lr", "0.001",
                                                   "--schedule", "step:1:1e6", "--log-every", "1", "--quiet", NULL});
    int rc = run_vtrain(&a, log, 120);
    assert_int_equal(rc, 1);
    expect_in_log(log, "training loss became");
    expect_in_log(log, "between step");
    expect_in_log(log, "try a smaller --lr");
    expect_in_log(log, "last.vtc is kept");
    show_error("NaN", log);
    /* the step range is a real one, after the last checkpoint */
    char *t = (char *)slurp(log, NULL);
    long long s0 = 0, s1 = 0;
    int epoch = 0;
    const char *p = strstr(t, "between step");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "between step %lld and %lld (epoch %d", &s0, &s1, &epoch), 3);
    free(t);
    assert_true(s0 >= 1 && s0 <= s1);
    long ck = ckpt_meta_int(last, "epoch");
    assert_true(ck >= 1);
    assert_true(ck < epoch);
    assert_true(ckpt_meta_int(last, "global_step") < s0);
    assert_true(ckpt_all_finite(last));
    assert_true(ckpt_all_finite(best));
    printf("NaN/Inf: stopped between step %lld and %lld (epoch %d); last.vtc (epoch %ld) kept and finite\n", s0, s1,
           epoch, ck);
    /* resume from the kept checkpoint runs (and diverges again at the same place: same config) */
    args r = {.n = 0};
    argl(&r,
         (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu", "--quiet", NULL});
    assert_int_equal(run_vtrain(&r, log, 120), 1);
    expect_in_log(log, "training loss became");
}

/* Diverging before the first checkpoint: the message must not promise a checkpoint that is not there. */
static void test_nan_before_any_checkpoint(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700];
    path_of(out, sizeof out, "nan0");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args a = train_args(out, (const char *const[]){"--problem", "mlp", "--epochs", "2", "--lr", "1e12", "--log-every",
                                                   "1", "--quiet", NULL});
    assert_int_equal(run_vtrain(&a, log, 120), 1);
    expect_in_log(log, "training loss became");
    expect_in_log(log, "try a smaller --lr");
    assert_false(file_exists(last));
    if (log_has(log, "is kept"))
        fail_msg("the message claims a checkpoint is kept, but none was written:\n%s", log_text(log));
    expect_in_log(log, "no checkpoint");
}

/* --nan-policy skip-step: a non-finite read-back restores the last good state and training goes on.
 * The learning rate falls a millionfold per epoch (1e6, 1, 1e-6; 4 steps each), so the first
 * epoch diverges within a few steps and the rest can train: the run must finish, report the
 * skipped steps, and evaluate and checkpoint a finite model. */
static void test_nan_skip_step(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], summary[700];
    path_of(out, sizeof out, "nanskip");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    args a = train_args(out, (const char *const[]){"--problem", "mlp", "--epochs", "3", "--lr", "1e6", "--schedule",
                                                   "exp:1e-6", "--limit-train", "64", "--limit-test", "32",
                                                   "--log-every", "1", "--nan-policy", "skip-step", NULL});
    int rc = run_vtrain(&a, log, 180);
    if (rc != 0) fail_msg("--nan-policy skip-step: exit %d (expected 0):\n%s", rc, log_text(log));
    const char *t = log_text(log);
    const char *p = strstr(t, "skipped ");
    long n = -1;
    for (const char *q = p; q; q = strstr(q + 1, "skipped ")) p = q; /* the last one is the total */
    if (!p || sscanf(p, "skipped %ld step", &n) != 1) fail_msg("no \"skipped N steps\" in the output:\n%s", t);
    assert_true(n > 0);
    assert_true(json_file_num(summary, "skipped_steps") == (double)n);
    assert_int_equal(ckpt_meta_int(last, "epoch"), 3);
    assert_true(ckpt_all_finite(last));
    printf("--nan-policy skip-step: finished, %ld steps skipped\n", n);
}

/* ReLU hides NaN weights from the loss: a diverged cnn-dropout run used to exit 0 with most of its
 * saved values NaN. Now the parameters are checked on the device: exit 1, no non-finite checkpoint. */
static void test_nan_params_not_saved(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], best[700];
    path_of(out, sizeof out, "nanparams");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(best, sizeof best, "%s/best.vtc", out);
    args a = train_args(
        out, (const char *const[]){"--problem", "cnn-dropout", "--lr", "1e30", "--epochs", "2", "--quiet", NULL});
    int rc = run_vtrain(&a, log, 120);
    if (rc == 0) fail_msg("cnn-dropout --lr 1e30 exited 0:\n%s", log_text(log));
    assert_int_equal(rc, 1);
    if (!log_has(log, "parameters became NaN/Inf") && !log_has(log, "training loss became"))
        fail_msg("no NaN/Inf message:\n%s", log_text(log));
    expect_in_log(log, "try a smaller --lr");
    show_error("NaN parameters", log);
    if (file_exists(last) && !ckpt_all_finite(last)) fail_msg("last.vtc holds NaN/Inf");
    if (file_exists(best) && !ckpt_all_finite(best)) fail_msg("best.vtc holds NaN/Inf");
    /* the same with skip-step: every step diverges, so the run must stop, not evaluate NaN weights */
    path_of(out, sizeof out, "nanparams-skip");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args b = train_args(out, (const char *const[]){"--problem", "cnn-dropout", "--lr", "1e30", "--epochs", "2",
                                                   "--quiet", "--nan-policy", "skip-step", NULL});
    rc = run_vtrain(&b, log, 120);
    if (rc != 1) fail_msg("cnn-dropout --lr 1e30 --nan-policy skip-step: exit %d (expected 1):\n%s", rc, log_text(log));
    if (log_has(log, "test loss is")) fail_msg("evaluated a NaN model:\n%s", log_text(log));
    if (file_exists(last) && !ckpt_all_finite(last)) fail_msg("skip-step: last.vtc holds NaN/Inf");
    show_error("NaN parameters, skip-step", log);
}

/* skip-step where no step of an epoch is good: an error, not an epoch recorded as trained. */
static void test_nan_skip_every_step(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700];
    path_of(out, sizeof out, "nanskipall");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args a =
        train_args(out, (const char *const[]){"--problem", "mlp", "--epochs", "2", "--lr", "1e12", "--limit-train",
                                              "64", "--log-every", "1", "--nan-policy", "skip-step", "--quiet", NULL});
    int rc = run_vtrain(&a, log, 120);
    if (rc != 1) fail_msg("skip-step with every step NaN: exit %d (expected 1):\n%s", rc, log_text(log));
    expect_in_log(log, "every step of epoch");
    if (log_has(log, "test loss is")) fail_msg("evaluated a model that gives NaN:\n%s", log_text(log));
    if (file_exists(last) && !ckpt_all_finite(last)) fail_msg("last.vtc holds NaN/Inf");
    show_error("skip-step, every step NaN", log);
}

/* eval of a checkpoint that holds NaN refuses, naming the file and the tensor. */
static void test_eval_nonfinite_checkpoint(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], last[700], bad[700], log[700];
    make_run("evalnan", "1", out, sizeof out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(bad, sizeof bad, "%s/nan.vtc", out);
    snprintf(log, sizeof log, "%s.eval.log", out);
    vt_tensor_dict d = {0};
    assert_int_equal(vt_ckpt_read(last, &d), VT_OK);
    vt_host_tensor *w = NULL;
    for (size_t i = 0; i < d.n; i++)
        if (!strcmp(d.items[i].name, "fc.bias")) w = &d.items[i];
    assert_non_null(w);
    ((float *)w->data)[3] = NAN;
    assert_int_equal(vt_ckpt_write(bad, &d), VT_OK);
    vt_dict_free(&d);
    args a = {.n = 0};
    argl(&a, (const char *const[]){"vtrain", "eval", "--checkpoint", bad, "--backend", "cpu", NULL});
    int rc = run_vtrain(&a, log, 60);
    if (rc != 1) fail_msg("eval of a NaN checkpoint: exit %d (expected 1):\n%s", rc, log_text(log));
    expect_in_log(log, "nan.vtc");
    expect_in_log(log, "fc.bias");
    expect_in_log(log, "NaN/Inf");
    show_error("eval of a NaN checkpoint", log);
    /* and --resume from it is refused the same way */
    args r = {.n = 0};
    argl(&r,
         (const char *const[]){"vtrain", "train", "--resume", bad, "--out", out, "--backend", "cpu", "--quiet", NULL});
    rc = run_vtrain(&r, log, 60);
    assert_int_equal(rc, 1);
    expect_in_log(log, "fc.bias");
}

/* Two trainers on one run folder: the second fails at once and names the first one's pid. */
static void test_run_folder_lock(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], log2[700], last[700];
    path_of(out, sizeof out, "locked");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(log2, sizeof log2, "%s.second.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    args a = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", "100000", "--quiet", NULL});
    pid_t pid = spawn(&a, log, NULL);
    assert_true(wait_for_file(last, pid, 60));
    /* a second fresh run and a resume into the same folder */
    args b = train_args(out, (const char *const[]){"--problem", "linear", "--epochs", "2", "--quiet", NULL});
    args r = {.n = 0};
    argl(&r,
         (const char *const[]){"vtrain", "train", "--resume", last, "--out", out, "--backend", "cpu", "--quiet", NULL});
    char want[900];
    snprintf(want, sizeof want, "run folder %s is in use by another vtrain (pid %d)", out, (int)pid);
    for (int k = 0; k < 2; k++) {
        double t0 = now_s();
        int rc = run_vtrain(k ? &r : &b, log2, 60);
        double took = now_s() - t0;
        if (rc != 1) fail_msg("second trainer on a locked folder: exit %d (expected 1):\n%s", rc, log_text(log2));
        expect_in_log(log2, want);
        printf("locked run folder: refused in %.2f s\n", took);
        assert_true(took < 5.0);
    }
    kill(pid, SIGKILL);
    wait_child(pid, 30);
}

/* ---- 5. device out of memory --------------------------------------------------------------- */

static void test_device_oom(void **state) {
    (void)state;
    vt_backend_opts bo = {0};
    vt_backend *be = NULL;
    if (!vt_backend_reg_find("opencl") || vt_backend_init_by_name("opencl", -1, &bo, &be) != VT_OK) {
        printf("SKIPPED: no OpenCL device\n");
        skip();
    }
    /* straight to the device allocator: far more than any device holds */
    vt_buffer *b = NULL;
    size_t huge = (size_t)1 << 50;
    vt_status s = vt_backend_buffer_alloc(be, huge, &b);
    assert_int_equal(s, VT_ERR_OOM);
    assert_null(b);
    const char *msg = vt_last_error();
    printf("opencl huge buffer: %s\n", msg);
    assert_non_null(strstr(msg, "asked"));
    assert_non_null(strstr(msg, "1125899906842624 bytes"));
    assert_non_null(strstr(msg, be->info.name));
    /* the backend is still usable afterwards */
    assert_int_equal(vt_backend_buffer_alloc(be, 4096, &b), VT_OK);
    vt_backend_buffer_free(b);
    assert_int_equal(vt_backend_sync(be), VT_OK);
    vt_backend_free(be);
    if (!g_vtrain[0]) return;
    /* through the CLI: ResNet18 upsampled to 4096x4096 needs activations past the device's limits */
    char out[600], log[700];
    path_of(out, sizeof out, "oom");
    snprintf(log, sizeof log, "%s.log", out);
    args a = {.n = 0};
    argl(&a, (const char *const[]){"vtrain",       "train", "--backend",     "opencl",
                                   "--data",       g_data,  "--problem",     "resnet18-scratch",
                                   "--input-size", "4096",  "--limit-train", "32",
                                   "--limit-test", "16",    "--batch-size",  "16",
                                   "--epochs",     "1",     "--out",         out,
                                   "--quiet",      NULL});
    int rc = run_vtrain(&a, log, 120);
    assert_int_equal(rc, 1);
    expect_in_log(log, "bytes");
    expect_in_log(log, "asked");
    expect_in_log(log, "smaller batch");
    assert_false(file_exists(out)); /* failed before the run folder was created */
}

/* ---- 6. hostile inputs through the CLI ----------------------------------------------------- */

/* Runs a command that must fail cleanly: exit 1 or 2 (no crash), `needle` in its message, and the
 * run folder `keep` (may be NULL) byte-identical afterwards. */
static void expect_clean_failure(const char *what, const args *a, const char *needle, const char *keep) {
    char log[700];
    path_of(log, sizeof log, "hostile.log");
    snap s = {0};
    if (keep) snap_take(keep, &s);
    int rc = run_vtrain(a, log, 120);
    const char *t = log_text(log);
    if (rc != 1 && rc != 2) fail_msg("%s: exit %d (crash, leak or success), output:\n%s", what, rc, t);
    if (!strstr(t, needle)) fail_msg("%s: the message does not name \"%s\":\n%s", what, needle, t);
    const char *msg = strstr(t, "vtrain ");
    if (!msg) msg = t;
    printf("  %-36s exit %d: %.*s\n", what, rc, (int)strcspn(msg, "\n"), msg);
    if (keep) {
        snap_check_same(keep, &s, what);
        snap_free(&s);
    }
}

/* A copy of the synthetic CIFAR-10 set in `dir` whose file `file` is replaced by `len` bytes. */
static void cifar10_variant(const char *dir, const char *file, const uint8_t *bytes, size_t len) {
    mkdir(dir, 0755);
    fx_write_cifar10(dir, 64, 64);
    char p[900];
    snprintf(p, sizeof p, "%s/cifar-10-batches-bin/%s", dir, file);
    spit(p, bytes, len);
}

static void write_png_at(const char *root, const char *split, const char *cls, const char *file, int idx) {
    char p[900];
    snprintf(p, sizeof p, "%s/%s", root, split);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", root, split, cls);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s/%s", root, split, cls, file);
    uint8_t *rgb = fx_rgb(8, 8, idx);
    assert_int_equal(fx_write_png(p, 8, 8, 3, rgb), 0);
    free(rgb);
}

static void test_hostile_datasets(void **state) {
    (void)state;
    skip_without_vtrain();
    char run[600], d[600];
    make_run("victim", "2", run, sizeof run);
    size_t rec = 3073;
    uint8_t *recs = fx_cifar_records(1, 64, 0, &rec);
    int tried = 0;

    /* truncated: 3.5 records */
    path_of(d, sizeof d, "ds_trunc");
    cifar10_variant(d, "data_batch_1.bin", recs, 3073 * 3 + 1500);
    args a = train_args(run, (const char *const[]){"--problem", "linear", "--epochs", "1", NULL});
    arg_set(&a, "--data", d);
    expect_clean_failure("truncated CIFAR file", &a, "data_batch_1.bin", run);
    tried++;

    /* CIFAR-10 records (3073 bytes) in a CIFAR-100 file (3074-byte records) */
    path_of(d, sizeof d, "ds_recsize");
    mkdir(d, 0755);
    fx_write_cifar100(d, 64, 64);
    char p[900];
    snprintf(p, sizeof p, "%s/cifar-100-binary/train.bin", d);
    spit(p, recs, 3073 * 5);
    arg_set(&a, "--data", d);
    expect_clean_failure("wrong record size", &a, "train.bin", run);
    tried++;

    /* a label past the class count */
    path_of(d, sizeof d, "ds_label");
    uint8_t *bad = malloc(3073 * 64);
    memcpy(bad, recs, 3073 * 64);
    bad[3073 * 5] = 200;
    cifar10_variant(d, "test_batch.bin", bad, 3073 * 64);
    arg_set(&a, "--data", d);
    expect_clean_failure("label out of range", &a, "test_batch.bin", run);
    tried++;
    free(bad);

    /* an empty file */
    path_of(d, sizeof d, "ds_emptyfile");
    cifar10_variant(d, "data_batch_2.bin", recs, 0);
    arg_set(&a, "--data", d);
    expect_clean_failure("empty CIFAR file", &a, "data_batch_2.bin", run);
    tried++;

    /* an empty folder */
    path_of(d, sizeof d, "ds_empty");
    mkdir(d, 0755);
    arg_set(&a, "--data", d);
    expect_clean_failure("empty folder", &a, "ds_empty", run);
    tried++;

    /* an image that does not decode (PNG signature, garbage after it) */
    path_of(d, sizeof d, "ds_badimg");
    mkdir(d, 0755);
    for (int i = 0; i < 4; i++) {
        char f[32];
        snprintf(f, sizeof f, "%d.png", i);
        write_png_at(d, "train", "a", f, i);
        write_png_at(d, "train", "b", f, 10 + i);
        write_png_at(d, "test", "a", f, 20 + i);
    }
    snprintf(p, sizeof p, "%s/train/b/2.png", d);
    unsigned char junk[300];
    memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
    for (int i = 8; i < (int)sizeof junk; i++) junk[i] = (unsigned char)(i * 37);
    spit(p, junk, sizeof junk);
    args ai = train_args(run, (const char *const[]){"--problem", "linear", "--epochs", "1", NULL});
    arg_set(&ai, "--data", d);
    arg_set(&ai, "--batch-size", "2");
    expect_clean_failure("undecodable image", &ai, "2.png", run);
    tried++;

    /* a truncated JPEG */
    snprintf(p, sizeof p, "%s/train/b/2.png", d);
    uint8_t *rgb = fx_rgb(8, 8, 3);
    assert_int_equal(fx_write_jpeg(p, 8, 8, rgb, 0), 0);
    free(rgb);
    size_t jn;
    unsigned char *jpg = slurp(p, &jn);
    spit(p, jpg, jn / 3);
    free(jpg);
    expect_clean_failure("truncated JPEG", &ai, "2.png", run);
    tried++;

    /* a class folder with no images */
    path_of(d, sizeof d, "ds_noimg");
    mkdir(d, 0755);
    for (int i = 0; i < 4; i++) {
        char f[32];
        snprintf(f, sizeof f, "%d.png", i);
        write_png_at(d, "train", "a", f, i);
        write_png_at(d, "test", "a", f, 20 + i);
    }
    snprintf(p, sizeof p, "%s/train/b", d);
    mkdir(p, 0755);
    arg_set(&ai, "--data", d);
    expect_clean_failure("class folder with no images", &ai, "train/b", run);
    tried++;

    /* images of different sizes */
    snprintf(p, sizeof p, "%s/train/b/0.png", d);
    uint8_t *big = fx_rgb(16, 16, 5);
    assert_int_equal(fx_write_png(p, 16, 16, 3, big), 0);
    free(big);
    expect_clean_failure("images of different sizes", &ai, "0.png", run);
    tried++;

    /* a path that is not there */
    path_of(d, sizeof d, "ds_missing");
    arg_set(&a, "--data", d);
    expect_clean_failure("missing dataset", &a, "ds_missing", run);
    tried++;
    free(recs);
    printf("hostile datasets: %d tried, every one a clean failure naming the file\n", tried);
}

/* Writes `d` with its metadata's config.<key> replaced (string value). */
static void write_with_config(const char *path, const vt_tensor_dict *src, const char *key, const char *value) {
    cJSON *m = cJSON_Parse(src->meta_json);
    assert_non_null(m);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "config");
    assert_non_null(c);
    cJSON_ReplaceItemInObjectCaseSensitive(c, key, cJSON_CreateString(value));
    char *txt = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    vt_tensor_dict d = {0};
    for (size_t i = 0; i < src->n; i++) {
        const vt_host_tensor *h = &src->items[i];
        assert_int_equal(vt_dict_add(&d, h->name, h->dtype, h->ndim, h->shape, h->data), VT_OK);
    }
    assert_int_equal(vt_dict_set_meta(&d, txt), VT_OK);
    free(txt);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    vt_dict_free(&d);
}

static void test_hostile_checkpoints(void **state) {
    (void)state;
    skip_without_vtrain();
    char run[600], last[700], p[700];
    make_run("victim2", "2", run, sizeof run);
    snprintf(last, sizeof last, "%s/last.vtc", run);
    size_t n;
    unsigned char *good = slurp(last, &n);
    assert_non_null(good);
    int tried = 0;
#define RESUME_ARGS(file) \
    (const char *const[]) { "vtrain", "train", "--resume", file, "--out", run, "--backend", "cpu", "--quiet", NULL }
#define EVAL_ARGS(file) \
    (const char *const[]) { "vtrain", "eval", "--checkpoint", file, "--backend", "cpu", NULL }
    struct {
        const char *name, *what;
        size_t len;
        long flip;       /* byte to flip, -1 none */
        long version_at; /* byte offset of the version field to raise, -1 none */
    } cases[] = {
        {"trunc.vtc", "truncated checkpoint", 0, -1, -1},
        {"trunc_half.vtc", "half a checkpoint", 0, -1, -1},
        {"flip_header.vtc", "bit flipped in the header", 0, 20, -1},
        {"flip_data.vtc", "bit flipped in a tensor", 0, -2, -1},
        {"empty.vtc", "empty checkpoint", 0, -1, -1},
        {"newer.vtc", "newer format version", 0, -1, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *b = malloc(n);
        memcpy(b, good, n);
        size_t len = n;
        if (!strcmp(cases[i].name, "trunc.vtc")) len = n - 7;
        if (!strcmp(cases[i].name, "trunc_half.vtc")) len = n / 2;
        if (!strcmp(cases[i].name, "empty.vtc")) len = 0;
        if (cases[i].flip == -2) b[n / 2] ^= 0x10;
        else if (cases[i].flip >= 0) b[cases[i].flip] ^= 0x01;
        if (cases[i].version_at >= 0) b[cases[i].version_at] = VT_CKPT_VERSION + 1;
        path_of(p, sizeof p, cases[i].name);
        spit(p, b, len);
        free(b);
        args a = {.n = 0};
        argl(&a, RESUME_ARGS(p));
        char what[96];
        snprintf(what, sizeof what, "resume: %s", cases[i].what);
        expect_clean_failure(what, &a, cases[i].name, run);
        a = (args){.n = 0};
        argl(&a, EVAL_ARGS(p));
        snprintf(what, sizeof what, "eval: %s", cases[i].what);
        expect_clean_failure(what, &a, cases[i].name, run);
        tried += 2;
    }
    path_of(p, sizeof p, "newer.vtc");
    args a = {.n = 0};
    argl(&a, EVAL_ARGS(p));
    expect_clean_failure("newer version says so", &a, "newer vtrain", NULL);

    vt_tensor_dict d = {0};
    assert_int_equal(vt_ckpt_read(last, &d), VT_OK);
    /* a checkpoint whose config names another model than its tensors hold */
    path_of(p, sizeof p, "other_model.vtc");
    write_with_config(p, &d, "problem", "mlp");
    a = (args){.n = 0};
    argl(&a, RESUME_ARGS(p));
    expect_clean_failure("resume: tensors of another model", &a, "other_model.vtc", run);
    a = (args){.n = 0};
    argl(&a, EVAL_ARGS(p));
    expect_clean_failure("eval: tensors of another model", &a, "other_model.vtc", run);
    tried += 2;
    /* an unknown problem in the config */
    path_of(p, sizeof p, "unknown_problem.vtc");
    write_with_config(p, &d, "problem", "no-such-model");
    a = (args){.n = 0};
    argl(&a, RESUME_ARGS(p));
    expect_clean_failure("resume: unknown problem", &a, "unknown_problem.vtc", run);
    tried++;
    /* a tensor with the wrong shape */
    vt_tensor_dict w = {0};
    const char *changed = NULL;
    for (size_t i = 0; i < d.n; i++) {
        const vt_host_tensor *h = &d.items[i];
        if (!changed && strncmp(h->name, "optim.", 6) && h->ndim == 2) {
            int64_t shape[2] = {h->shape[0] - 1, h->shape[1]};
            assert_int_equal(vt_dict_add(&w, h->name, h->dtype, 2, shape, NULL), VT_OK);
            changed = h->name;
        } else {
            assert_int_equal(vt_dict_add(&w, h->name, h->dtype, h->ndim, h->shape, h->data), VT_OK);
        }
    }
    assert_non_null(changed);
    assert_int_equal(vt_dict_set_meta(&w, d.meta_json), VT_OK);
    path_of(p, sizeof p, "wrong_shape.vtc");
    assert_int_equal(vt_ckpt_write(p, &w), VT_OK);
    vt_dict_free(&w);
    a = (args){.n = 0};
    argl(&a, EVAL_ARGS(p));
    expect_clean_failure("eval: tensor of the wrong shape", &a, "wrong_shape.vtc", run);
    expect_clean_failure("eval: names the tensor", &a, changed, NULL);
    a = (args){.n = 0};
    argl(&a, RESUME_ARGS(p));
    expect_clean_failure("resume: tensor of the wrong shape", &a, "wrong_shape.vtc", run);
    tried += 2;
    /* metadata that is not JSON, and JSON without a config */
    w = (vt_tensor_dict){0};
    assert_int_equal(vt_dict_add(&w, "x", VT_F32, 1, (int64_t[]){4}, NULL), VT_OK);
    assert_int_equal(vt_dict_set_meta(&w, "{\"epoch\": 3, "), VT_OK);
    path_of(p, sizeof p, "bad_meta.vtc");
    if (vt_ckpt_write(p, &w) == VT_OK) { /* the writer may refuse it; the reader must, then */
        a = (args){.n = 0};
        argl(&a, RESUME_ARGS(p));
        expect_clean_failure("resume: broken metadata", &a, "bad_meta.vtc", run);
    }
    assert_int_equal(vt_dict_set_meta(&w, "{\"epoch\": 3}"), VT_OK);
    path_of(p, sizeof p, "no_config.vtc");
    assert_int_equal(vt_ckpt_write(p, &w), VT_OK);
    a = (args){.n = 0};
    argl(&a, EVAL_ARGS(p));
    expect_clean_failure("eval: metadata without config", &a, "no_config.vtc", run);
    vt_dict_free(&w);
    tried += 2;
    /* not a checkpoint at all: a folder, a missing file */
    a = (args){.n = 0};
    argl(&a, RESUME_ARGS(run));
    expect_clean_failure("resume: a folder", &a, "victim2", run);
    path_of(p, sizeof p, "missing.vtc");
    a = (args){.n = 0};
    argl(&a, EVAL_ARGS(p));
    expect_clean_failure("eval: missing file", &a, "missing.vtc", run);
    tried += 2;
    /* export: a damaged checkpoint, and an output folder that does not exist */
    char st_out[700];
    path_of(st_out, sizeof st_out, "exported.safetensors");
    path_of(p, sizeof p, "flip_data.vtc");
    a = (args){.n = 0};
    argl(&a, (const char *const[]){"vtrain", "export", "--checkpoint", p, "--out", st_out, NULL});
    expect_clean_failure("export: bit flipped in a tensor", &a, "flip_data.vtc", run);
    assert_false(file_exists(st_out));
    path_of(st_out, sizeof st_out, "no-such-folder/exported.safetensors");
    a = (args){.n = 0};
    argl(&a, (const char *const[]){"vtrain", "export", "--checkpoint", last, "--out", st_out, NULL});
    expect_clean_failure("export: into a missing folder", &a, "no-such-folder", run);
    tried += 2;
    vt_dict_free(&d);
    free(good);
    printf("hostile checkpoints: %d tried, every one a clean failure naming the file; the run folder untouched\n",
           tried);
}

/* Resuming a cnn checkpoint with --problem mlp: the checkpoint's configuration wins. */
static void test_resume_other_problem_flag(void **state) {
    (void)state;
    skip_without_vtrain();
    char out[600], log[700], last[700], cfg[700];
    path_of(out, sizeof out, "cnn");
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(last, sizeof last, "%s/last.vtc", out);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    args a = train_args(out, (const char *const[]){"--problem", "cnn-stride", "--epochs", "1", "--limit-train", "32",
                                                   "--limit-test", "16", "--quiet", NULL});
    assert_int_equal(run_vtrain(&a, log, 180), 0);
    args r = {.n = 0};
    argl(&r, (const char *const[]){"vtrain", "train", "--problem", "mlp", "--resume", last, "--out", out, "--backend",
                                   "cpu", "--epochs", "2", "--quiet", NULL});
    int rc = run_vtrain(&r, log, 180);
    if (rc != 0) fail_msg("resume with another --problem: exit %d\n%s", rc, log_text(log));
    char *prob = json_file_str(cfg, "problem");
    assert_string_equal(prob, "cnn-stride");
    free(prob);
    assert_int_equal(ckpt_meta_int(last, "epoch"), 2);
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
    if (access(cand, X_OK) == 0 && realpath(cand, g_vtrain)) return;
    g_vtrain[0] = 0;
}

static int group_setup(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(g_root, sizeof g_root, "%s/vt_reliability_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_root)) return -1;
    path_of(g_data, sizeof g_data, "data");
    mkdir(g_data, 0755);
    fx_write_cifar10(g_data, 64, 64);
    /* one thread per child: several vtrain processes share two cores */
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    /* in a sanitizer build a leak in a child must not look like vtrain's own exit 1 */
    const char *lsan = getenv("LSAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%sexitcode=86", lsan ? lsan : "", lsan && *lsan ? ":" : "");
    setenv("LSAN_OPTIONS", opts, 1);
    find_vtrain();
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
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
        cmocka_unit_test(test_sigint_resume),
        cmocka_unit_test(test_sigterm),
        cmocka_unit_test(test_sigint_default_out),
        cmocka_unit_test(test_resume_hint_as_printed),
        cmocka_unit_test(test_double_sigint),
        cmocka_unit_test(test_kill9_loop),
        cmocka_unit_test(test_disk_full_rlimit),
        cmocka_unit_test(test_disk_full_tmpfs),
        cmocka_unit_test(test_nan_stop),
        cmocka_unit_test(test_nan_before_any_checkpoint),
        cmocka_unit_test(test_nan_skip_step),
        cmocka_unit_test(test_nan_params_not_saved),
        cmocka_unit_test(test_nan_skip_every_step),
        cmocka_unit_test(test_eval_nonfinite_checkpoint),
        cmocka_unit_test(test_run_folder_lock),
        cmocka_unit_test(test_device_oom),
        cmocka_unit_test(test_hostile_datasets),
        cmocka_unit_test(test_hostile_checkpoints),
        cmocka_unit_test(test_resume_other_problem_flag),
    };
    if (getenv("VT_TEST_FILTER")) cmocka_set_test_filter(getenv("VT_TEST_FILTER")); /* one test while debugging */
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
