/* Data-parallel training through the real vtrain program under an MPI launcher: after 20 steps the
 * parameters of 2 and 4 ranks match one process with the same global batch (ResNet18 with batch norm in
 * training mode too, with --sync-bn); a checkpoint of 2 ranks resumes at 4 (and at 1); a stalled or
 * killed rank ends the job within the timeout. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/checkpoint.h"
#include "vt/comm.h"
#include "vt/rng.h"

static const char *g_vtrain;
static char **g_launcher; /* mpiexec [flags] -n */
static int g_n_launcher;
static char g_root[256], g_data[300];

/* CIFAR-10 binary files of n_train/5 records a batch: class k is a colour and a bright square. */
static void write_cifar10(const char *dir, int per_batch, int n_test) {
    char path[512];
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    vt_rng r;
    vt_rng_init(&r, 7, 1);
    uint8_t rec[3073];
    for (int b = 1; b <= 6; b++) {
        if (b <= 5) snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_%d.bin", dir, b);
        else snprintf(path, sizeof path, "%s/cifar-10-batches-bin/test_batch.bin", dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        int n = b <= 5 ? per_batch : n_test;
        for (int i = 0; i < n; i++) {
            int label = (int)vt_rng_below(&r, 10);
            rec[0] = (uint8_t)label;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) {
                        int v = 40 + 18 * ((label * (c + 1)) % 10) + (int)vt_rng_below(&r, 40);
                        int qy = (label % 4) * 8, qx = (label / 4) * 8;
                        if (y >= qy && y < qy + 8 && x >= qx && x < qx + 8) v = 240 - c * 20;
                        rec[1 + c * 1024 + y * 32 + x] = (uint8_t)v;
                    }
            assert_int_equal(fwrite(rec, 1, sizeof rec, f), sizeof rec);
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin/batches.meta.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n", f);
    fclose(f);
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

typedef struct job {
    pid_t pid;
    char log[600];
    struct timespec started;
} job;

/* Starts `vtrain train ARGS` on np ranks (np = 1: the program alone, no launcher), output to a log. */
static void start(job *j, int np, const char *tag, const char *const *args) {
    const char *argv[96];
    int k = 0;
    char nps[16];
    snprintf(nps, sizeof nps, "%d", np);
    if (np > 1) {
        for (int i = 0; i < g_n_launcher; i++) argv[k++] = g_launcher[i];
        argv[k++] = nps;
    }
    argv[k++] = g_vtrain;
    argv[k++] = "train";
    for (int i = 0; args[i] && k < 94; i++) argv[k++] = args[i];
    argv[k] = NULL;
    snprintf(j->log, sizeof j->log, "%s/%s.log", g_root, tag);
    clock_gettime(CLOCK_MONOTONIC, &j->started);
    j->pid = fork();
    assert_true(j->pid >= 0);
    if (j->pid == 0) {
        FILE *f = freopen(j->log, "w", stdout);
        if (!f || dup2(1, 2) < 0) _exit(126);
        setpgid(0, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
}

static void print_log(const job *j) {
    FILE *f = fopen(j->log, "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) fputs(line, stdout);
    fclose(f);
}

static int log_has(const job *j, const char *text) {
    FILE *f = fopen(j->log, "r");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

/* Waits at most limit_s; returns the exit status (128+N for signal N), -1 when it had to be killed. */
static int finish(job *j, double limit_s) {
    int st = 0;
    for (;;) {
        pid_t r = waitpid(j->pid, &st, WNOHANG);
        if (r == j->pid) break;
        if (seconds_since(&j->started) > limit_s) {
            kill(-j->pid, SIGKILL);
            waitpid(j->pid, &st, 0);
            return -1;
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void run_ok(int np, const char *tag, const char *const *args) {
    job j;
    start(&j, np, tag, args);
    int rc = finish(&j, 300);
    if (rc != 0) {
        print_log(&j);
        fail_msg("%s: vtrain on %d rank(s) ended with %d", tag, np, rc);
    }
}

/* Largest |a - b| over largest |b|, over every parameter tensor two checkpoints share. */
static double param_diff(const char *a_path, const char *b_path, int *compared) {
    vt_tensor_dict a = {0}, b = {0};
    assert_int_equal(vt_ckpt_read(a_path, &a), VT_OK);
    assert_int_equal(vt_ckpt_read(b_path, &b), VT_OK);
    double worst = 0;
    *compared = 0;
    for (size_t i = 0; i < a.n; i++) {
        const vt_host_tensor *x = &a.items[i];
        if (x->dtype != VT_F32 || strncmp(x->name, "optim.", 6) == 0) continue; /* parameters and BN statistics */
        const vt_host_tensor *y = NULL;
        for (size_t k = 0; k < b.n && !y; k++)
            if (strcmp(b.items[k].name, x->name) == 0) y = &b.items[k];
        assert_non_null(y);
        size_t n = x->nbytes / sizeof(float);
        assert_int_equal(y->nbytes, x->nbytes);
        const float *p = x->data, *q = y->data;
        double dmax = 0, ref = 0;
        for (size_t e = 0; e < n; e++) {
            double d = fabs((double)p[e] - (double)q[e]);
            if (d > dmax || isnan(d)) dmax = isnan(d) ? INFINITY : d;
            if (fabs((double)q[e]) > ref) ref = fabs((double)q[e]);
        }
        double rel = ref > 0 ? dmax / ref : dmax;
        if (rel > worst) worst = rel;
        if (rel > 1e-5) printf("  %s: max difference %.3g of max %.3g (%.3g relative)\n", x->name, dmax, ref, rel);
        (*compared)++;
    }
    vt_dict_free(&a);
    vt_dict_free(&b);
    return worst;
}

/* The common flags of a 20-step run into folder `out`. */
static void args_of(const char **v, const char *backend, const char *problem, const char *out, const char *steps,
                    const char *const *extra) {
    int k = 0;
    const char *base[] = {"--backend", backend, "--problem",    problem, "--data",      g_data, "--batch-size", "16",
                          "--steps",   steps,   "--limit-test", "40",    "--log-every", "5",    "--quiet",      "--out",
                          out,         NULL};
    for (int i = 0; base[i]; i++) v[k++] = base[i];
    for (int i = 0; extra && extra[i]; i++) v[k++] = extra[i];
    v[k] = NULL;
}

static int backend_present(const char *name) {
    const vt_backend_reg *r = vt_backend_reg_find(name);
    return r && r->device_count() > 0;
}

/* One process and `np` ranks, same global batch, after 20 steps: the largest relative difference of the
 * parameters (and BN statistics). `variant` names the flags in the run folders (the one-process run is
 * shared by the tests of one variant). Returns -1 when the backend has no device here. */
static double diff_to_one(const char *backend, const char *problem, const char *variant, const char *how, int np,
                          const char *const *extra) {
    if (!backend_present(backend)) return -1;
    char one[400], many[400], tag[128];
    snprintf(one, sizeof one, "%s/%s-%s%s-one", g_root, backend, problem, variant);
    snprintf(many, sizeof many, "%s/%s-%s%s%s-np%d", g_root, backend, problem, variant, how, np);
    const char *v[64];
    struct stat st;
    if (stat(one, &st) != 0) {
        args_of(v, backend, problem, one, "20", extra);
        snprintf(tag, sizeof tag, "%s-%s%s-one", backend, problem, variant);
        run_ok(1, tag, v);
    }
    args_of(v, backend, problem, many, "20", extra);
    snprintf(tag, sizeof tag, "%s-%s%s%s-np%d", backend, problem, variant, how, np);
    run_ok(np, tag, v);
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/last.vtc", many);
    snprintf(b, sizeof b, "%s/last.vtc", one);
    int n = 0;
    double d = param_diff(a, b, &n);
    printf("%s %s%s%s, %d ranks: %d tensors, largest relative difference %.3g\n", backend, problem, variant, how, np, n,
           d);
    assert_true(n > 0);
    return d;
}

/* The parameters after 20 steps agree within 1e-5. */
static void same_as_one_v(const char *backend, const char *problem, const char *variant, int np,
                          const char *const *extra) {
    double d = diff_to_one(backend, problem, variant, "", np, extra);
    if (d < 0) {
        printf("SKIPPED: backend %s has no device here\n", backend);
        skip();
    }
    assert_true(d <= 1e-5);
}

static void same_as_one(const char *backend, const char *problem, int np, const char *const *extra) {
    same_as_one_v(backend, problem, "", np, extra);
}

static void test_mlp_np2(void **s) {
    (void)s;
    same_as_one("cpu", "mlp", 2, NULL);
}
static void test_mlp_np4(void **s) {
    (void)s;
    same_as_one("cpu", "mlp", 4, NULL);
}
static void test_cnn_pool_np2(void **s) {
    (void)s;
    same_as_one("cpu", "cnn-pool", 2, NULL);
}
static void test_cnn_pool_np4(void **s) {
    (void)s;
    same_as_one("cpu", "cnn-pool", 4, NULL);
}
/* batch statistics would differ between a slice and the whole batch; frozen BN has none */
static const char *const resnet_flags[] = {"--width", "4", "--frozen-bn", NULL};
static void test_resnet_np2(void **s) {
    (void)s;
    same_as_one("cpu", "resnet18-scratch", 2, resnet_flags);
}
static void test_resnet_np4(void **s) {
    (void)s;
    same_as_one("cpu", "resnet18-scratch", 4, resnet_flags);
}
/* Small buckets (about 25 of them for cnn-pool): each is averaged as soon as the backward pass is done
 * with it, while the rest of the pass runs; and the same without overlap (after the backward pass). */
static void with_env(const char *name, const char *value, const char *problem, int np, const char *tag) {
    char one[400], many[400];
    snprintf(one, sizeof one, "%s/cpu-%s-one", g_root, problem);
    snprintf(many, sizeof many, "%s/%s", g_root, tag);
    const char *v[64];
    struct stat st;
    if (stat(one, &st) != 0) {
        args_of(v, "cpu", problem, one, "20", NULL);
        run_ok(1, "one", v);
    }
    setenv(name, value, 1);
    args_of(v, "cpu", problem, many, "20", NULL);
    job j;
    start(&j, np, tag, v);
    int rc = finish(&j, 300);
    unsetenv(name);
    if (rc != 0) {
        print_log(&j);
        fail_msg("%s: vtrain ended with %d", tag, rc);
    }
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/last.vtc", many);
    snprintf(b, sizeof b, "%s/last.vtc", one);
    int n = 0;
    double d = param_diff(a, b, &n);
    printf("%s=%s, %s on %d ranks: largest relative difference %.3g\n", name, value, problem, np, d);
    assert_true(n > 0 && d <= 1e-5);
}

static void test_small_buckets(void **s) {
    (void)s;
    with_env("VT_BUCKET_MB", "0.002", "cnn-pool", 2, "buckets");
}
static void test_no_overlap(void **s) {
    (void)s;
    with_env("VT_OVERLAP", "0", "cnn-pool", 4, "no-overlap");
}

/* Unfreezing the backbone rebuilds the train graph mid-run: the overlap pieces are cut again. */
static void test_unfreeze(void **state) {
    (void)state;
    char one[400], many[400];
    snprintf(one, sizeof one, "%s/unfreeze-one", g_root);
    snprintf(many, sizeof many, "%s/unfreeze-np2", g_root);
    const char *extra[] = {"--width", "4", "--frozen-bn", "--freeze-backbone-epochs", "1", "--epochs", "2", NULL};
    const char *v[64];
    args_of(v, "cpu", "resnet18-scratch", one, "30", extra);
    run_ok(1, "unfreeze-one", v);
    args_of(v, "cpu", "resnet18-scratch", many, "30", extra);
    run_ok(2, "unfreeze-np2", v);
    char a[500], b[500];
    snprintf(a, sizeof a, "%s/last.vtc", many);
    snprintf(b, sizeof b, "%s/last.vtc", one);
    int n = 0;
    double d = param_diff(a, b, &n);
    printf("resnet18-scratch, backbone frozen for an epoch, 2 ranks: largest relative difference %.3g\n", d);
    assert_true(n > 0 && d <= 1e-5);
}

static void test_mlp_opencl_np2(void **s) {
    (void)s;
    same_as_one("opencl", "mlp", 2, NULL);
}
static void test_mlp_vulkan_np2(void **s) {
    (void)s;
    same_as_one("vulkan", "mlp", 2, NULL);
}
static void test_cnn_pool_opencl_np2(void **s) {
    (void)s;
    same_as_one("opencl", "cnn-pool", 2, NULL);
}
static void test_cnn_pool_vulkan_np2(void **s) {
    (void)s;
    same_as_one("vulkan", "cnn-pool", 2, NULL);
}
static void test_resnet_opencl_np2(void **s) {
    (void)s;
    same_as_one("opencl", "resnet18-scratch", 2, resnet_flags);
}
static void test_resnet_vulkan_np2(void **s) {
    (void)s;
    same_as_one("vulkan", "resnet18-scratch", 2, resnet_flags);
}

/* ResNet18 with batch norm in training mode (narrow, as above): --sync-bn computes the batch statistics
 * over the whole global batch (and their sums in the backward pass), so N ranks train as one process.
 * A small learning rate: at the problem's 0.1 (and at 0.01) 20 steps on these images are chaotic, two
 * correct single processes (cpu and opencl) end 0.09 apart after 10 steps, so no comparison within
 * 1e-5 could pass; at 1e-4 the rounding stays rounding while the BN biases (from 0) move. */
static const char *const sync_bn_flags[] = {"--width", "4", "--lr", "1e-4", "--sync-bn", NULL};
static void test_sync_bn_resnet_np2(void **s) {
    (void)s;
    same_as_one_v("cpu", "resnet18-scratch", "-syncbn", 2, sync_bn_flags);
}
static void test_sync_bn_resnet_np4(void **s) {
    (void)s;
    same_as_one_v("cpu", "resnet18-scratch", "-syncbn", 4, sync_bn_flags);
}
static void test_sync_bn_resnet_opencl_np2(void **s) {
    (void)s;
    same_as_one_v("opencl", "resnet18-scratch", "-syncbn", 2, sync_bn_flags);
}
static void test_sync_bn_resnet_vulkan_np2(void **s) {
    (void)s;
    same_as_one_v("vulkan", "resnet18-scratch", "-syncbn", 2, sync_bn_flags);
}
/* Small buckets (about 20): the gradient buckets' cuts and the sync points' cuts of the step together,
 * the buckets averaged during the backward pass between the BN combines; and without overlap. */
static void sync_bn_env(const char *name, const char *value, const char *how, int np) {
    char one[400];
    struct stat st;
    snprintf(one, sizeof one, "%s/cpu-resnet18-scratch-syncbn-one", g_root);
    if (stat(one, &st) != 0) {
        const char *v[64];
        args_of(v, "cpu", "resnet18-scratch", one, "20", sync_bn_flags);
        run_ok(1, "cpu-resnet18-scratch-syncbn-one", v);
    }
    setenv(name, value, 1);
    double d = diff_to_one("cpu", "resnet18-scratch", "-syncbn", how, np, sync_bn_flags);
    unsetenv(name);
    assert_true(d >= 0 && d <= 1e-5);
}
static void test_sync_bn_small_buckets(void **s) {
    (void)s;
    sync_bn_env("VT_BUCKET_MB", "0.01", "-buckets", 2);
}
static void test_sync_bn_no_overlap(void **s) {
    (void)s;
    sync_bn_env("VT_OVERLAP", "0", "-no-overlap", 2);
}
/* Without --sync-bn each rank normalises with its slice's statistics: the same runs do not match, which
 * shows that the comparison above can tell. */
static void test_plain_bn_differs(void **s) {
    (void)s;
    const char *extra[] = {"--width", "4", "--lr", "1e-4", NULL};
    double d = diff_to_one("cpu", "resnet18-scratch", "-bn", "", 2, extra);
    assert_true(d > 1e-3);
}

/* 10 steps on 2 ranks with --sync-bn (one checkpoint written, by rank 0), then on to 20 on 4 ranks: the
 * same parameters and BN statistics as 20 steps in one process. */
static void test_sync_bn_resume(void **state) {
    (void)state;
    char half[400], one[400];
    snprintf(half, sizeof half, "%s/syncbn-resume-np2", g_root);
    snprintf(one, sizeof one, "%s/cpu-resnet18-scratch-syncbn-one", g_root);
    const char *v[64];
    struct stat st;
    if (stat(one, &st) != 0) {
        args_of(v, "cpu", "resnet18-scratch", one, "20", sync_bn_flags);
        run_ok(1, "cpu-resnet18-scratch-syncbn-one", v);
    }
    args_of(v, "cpu", "resnet18-scratch", half, "10", sync_bn_flags);
    run_ok(2, "syncbn-resume-first", v);
    DIR *d = opendir(half);
    assert_non_null(d);
    struct dirent *e;
    int vtc = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".vtc")) vtc++, assert_string_equal(e->d_name, "last.vtc");
    closedir(d);
    assert_int_equal(vtc, 1);
    char from[500], ref[500];
    snprintf(from, sizeof from, "%s/last.vtc", half);
    snprintf(ref, sizeof ref, "%s/last.vtc", one);
    const char *r[] = {"--resume", from, "--steps", "20", "--sync-bn", "--quiet", NULL};
    run_ok(4, "syncbn-resume-np4", r);
    int n = 0;
    double diff = param_diff(from, ref, &n);
    printf("resnet18-scratch --sync-bn, 10 steps on 2 ranks + 10 on 4: %d tensors, largest relative difference %.3g\n",
           n, diff);
    assert_true(n > 0 && diff <= 1e-5);
}

/* Relative difference (largest |a - b| over largest |b|) of one tensor of two checkpoints. */
static double tensor_diff(const char *a_path, const char *b_path, const char *name) {
    vt_tensor_dict a = {0}, b = {0};
    assert_int_equal(vt_ckpt_read(a_path, &a), VT_OK);
    assert_int_equal(vt_ckpt_read(b_path, &b), VT_OK);
    const vt_host_tensor *x = NULL, *y = NULL;
    for (size_t i = 0; i < a.n; i++)
        if (strcmp(a.items[i].name, name) == 0) x = &a.items[i];
    for (size_t i = 0; i < b.n; i++)
        if (strcmp(b.items[i].name, name) == 0) y = &b.items[i];
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->nbytes, y->nbytes);
    const float *p = x->data, *q = y->data;
    double dmax = 0, ref = 0;
    for (size_t e = 0; e < x->nbytes / sizeof(float); e++) {
        double d = fabs((double)p[e] - (double)q[e]);
        if (d > dmax) dmax = d;
        if (fabs((double)q[e]) > ref) ref = fabs((double)q[e]);
    }
    vt_dict_free(&a);
    vt_dict_free(&b);
    return ref > 0 ? dmax / ref : dmax;
}

/* Running statistics: with --sync-bn every rank updates them from the whole batch's statistics, so with
 * the weights held still (a tiny learning rate) the first BN layer's running mean over 2 ranks equals
 * one process's; without it, rank 0's (the default) follows only its half of each batch and does not. */
static void test_sync_bn(void **state) {
    (void)state;
    const char *extra[] = {"--width", "4", "--lr", "1e-12", NULL};
    const char *extra_sync[] = {"--width", "4", "--lr", "1e-12", "--sync-bn", NULL};
    char one[400], sync[400], plain[400];
    snprintf(one, sizeof one, "%s/bn-one", g_root);
    snprintf(sync, sizeof sync, "%s/bn-sync", g_root);
    snprintf(plain, sizeof plain, "%s/bn-rank0", g_root);
    const char *v[64];
    args_of(v, "cpu", "resnet18-scratch", one, "5", extra);
    run_ok(1, "bn-one", v);
    args_of(v, "cpu", "resnet18-scratch", sync, "5", extra_sync);
    run_ok(2, "bn-sync", v);
    args_of(v, "cpu", "resnet18-scratch", plain, "5", extra);
    run_ok(2, "bn-rank0", v);
    char a[500], b[500], c[500];
    snprintf(a, sizeof a, "%s/last.vtc", sync);
    snprintf(b, sizeof b, "%s/last.vtc", one);
    snprintf(c, sizeof c, "%s/last.vtc", plain);
    double d_sync = tensor_diff(a, b, "bn1.running_mean"), d_plain = tensor_diff(c, b, "bn1.running_mean");
    printf("bn1.running_mean against one process: --sync-bn %.3g, rank 0's %.3g (relative)\n", d_sync, d_plain);
    assert_true(d_sync <= 1e-5);
    assert_true(d_plain > 1e-3);
}

/* 10 steps on 2 ranks, then on to 20 on 4 ranks and on 1: the same parameters as 20 steps at once. */
static void test_resume_other_rank_count(void **state) {
    (void)state;
    char half[400], one[400], tag[64];
    snprintf(half, sizeof half, "%s/resume-np2", g_root);
    snprintf(one, sizeof one, "%s/cpu-cnn-pool-one", g_root);
    const char *v[64];
    struct stat st;
    if (stat(one, &st) != 0) {
        args_of(v, "cpu", "cnn-pool", one, "20", NULL);
        run_ok(1, "cpu-cnn-pool-one", v);
    }
    args_of(v, "cpu", "cnn-pool", half, "10", NULL);
    run_ok(2, "resume-first", v);
    char ck[500], ref[500], copy[500], cmd[1200];
    snprintf(ck, sizeof ck, "%s/last.vtc", half);
    snprintf(ref, sizeof ref, "%s/last.vtc", one);
    /* the run folder holds one checkpoint and no leftovers of other writers */
    DIR *d = opendir(half);
    assert_non_null(d);
    struct dirent *e;
    int vtc = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".vtc")) vtc++, assert_string_equal(e->d_name, "last.vtc");
    closedir(d);
    assert_int_equal(vtc, 1);
    snprintf(copy, sizeof copy, "%s/resume-np1", g_root);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", half, copy);
    assert_int_equal(system(cmd), 0);
    for (int pass = 0; pass < 2; pass++) {
        const char *dir = pass == 0 ? half : copy;
        char from[500];
        snprintf(from, sizeof from, "%s/last.vtc", dir);
        const char *r[] = {"--resume", from, "--steps", "20", "--quiet", NULL};
        snprintf(tag, sizeof tag, "resume-np%d", pass == 0 ? 4 : 1);
        run_ok(pass == 0 ? 4 : 1, tag, r);
        int n = 0;
        double diff = param_diff(from, ref, &n);
        printf("cnn-pool 10 steps on 2 ranks + 10 on %d: %d tensors, largest relative difference %.3g\n",
               pass == 0 ? 4 : 1, n, diff);
        assert_true(n > 0 && diff <= 1e-5);
    }
}

/* Parent of process p, or -1. */
static pid_t parent_of(pid_t p) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int ppid = -1;
    char comm[256], state;
    if (fscanf(f, "%*d (%255[^)]) %c %d", comm, &state, &ppid) != 3) ppid = -1;
    fclose(f);
    return (pid_t)ppid;
}

/* Whether p descends from the launcher (Open MPI starts the ranks itself; MPICH's Hydra through a
 * proxy process in another process group). */
static int descends_from(pid_t p, pid_t launcher) {
    for (int depth = 0; depth < 8 && p > 1; depth++) {
        p = parent_of(p);
        if (p == launcher) return 1;
    }
    return 0;
}

/* The pid of rank `rank` among the launcher's processes (its environment says which it is:
 * OMPI_COMM_WORLD_RANK under Open MPI, PMI_RANK under MPICH). */
static pid_t find_rank(pid_t launcher, int rank) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    char want2[64];
    snprintf(want2, sizeof want2, "PMI_RANK=%d", rank);
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *e;
    pid_t found = -1;
    while ((e = readdir(d)) && found < 0) {
        pid_t p = (pid_t)atoi(e->d_name);
        if (p <= 0 || p == launcher) continue;
        char path[64], buf[65536];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int ppid = 0, pgrp = 0;
        char comm[256];
        char state;
        int ok = fscanf(f, "%*d (%255[^)]) %c %d %d", comm, &state, &ppid, &pgrp) == 4;
        fclose(f);
        if (!ok || strcmp(comm, "vtrain") != 0) continue;
        if (pgrp != launcher && ppid != launcher && !descends_from(p, launcher)) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", (int)p);
        f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < n;) {
            const char *var = buf + i;
            if (strcmp(var, want) == 0 || strcmp(var, want2) == 0) found = p;
            i += strlen(var) + 1;
        }
    }
    closedir(d);
    return found;
}

/* A rank stopped (SIGSTOP: alive but silent) or killed mid-run: the job ends non-zero within the timeout,
 * naming the silent rank, and the checkpoint written before is intact. */
static void dead_rank(int sig) {
    char out[400], tag[64];
    snprintf(out, sizeof out, "%s/dead-%d", g_root, sig);
    const char *v[64];
    const char *extra[] = {"--epochs", "1000", "--comm-timeout", "3", NULL};
    args_of(v, "cpu", "mlp", out, "1000000", extra);
    job j;
    snprintf(tag, sizeof tag, "dead-%d", sig);
    start(&j, 2, tag, v);
    /* wait for the first checkpoint (end of epoch 1), then silence rank 1 */
    char ck[500];
    snprintf(ck, sizeof ck, "%s/last.vtc", out);
    struct stat st;
    while (stat(ck, &st) != 0 && seconds_since(&j.started) < 120) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(stat(ck, &st), 0);
    pid_t victim = find_rank(j.pid, 1);
    if (victim <= 0) {
        kill(-j.pid, SIGKILL);
        finish(&j, 5);
        fail_msg("rank 1 not found among the launcher's processes");
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(victim, sig);
    int rc = finish(&j, 60);
    double took = seconds_since(&t0);
    print_log(&j);
    printf("rank 1 sent signal %d: the job ended after %.1f s with status %d\n", sig, took, rc);
    assert_true(rc != 0 && rc != -1);
    assert_true(took < 3 + 20); /* the timeout, the ping grace, the launcher's teardown */
    if (sig == SIGSTOP) assert_true(log_has(&j, "no answer from rank 1"));
    vt_tensor_dict d = {0};
    assert_int_equal(vt_ckpt_read(ck, &d), VT_OK); /* intact: it reads back, checksums and all */
    vt_dict_free(&d);
}

/* A global batch that does not divide over the ranks is refused by name, and the job ends (no hang). */
static void test_batch_must_divide(void **state) {
    (void)state;
    char out[400];
    snprintf(out, sizeof out, "%s/odd-batch", g_root);
    const char *v[] = {"--backend", "cpu",     "--problem", "mlp",   "--data", g_data, "--batch-size",
                       "15",        "--steps", "2",         "--out", out,      NULL};
    job j;
    start(&j, 2, "odd-batch", v);
    int rc = finish(&j, 60);
    if (rc == 0 || rc == -1 || !log_has(&j, "batch size 15 does not divide over 2 ranks")) {
        print_log(&j);
        fail_msg("status %d", rc);
    }
}

static void test_stalled_rank(void **s) {
    (void)s;
    dead_rank(SIGSTOP);
}
static void test_killed_rank(void **s) {
    (void)s;
    dead_rank(SIGKILL);
}

int main(int argc, char **argv) {
    if (!vt_comm_have_mpi() || argc < 3) {
        printf("SKIPPED: built without MPI (or no launcher given)\n");
        return 77;
    }
    g_vtrain = argv[1];
    g_launcher = argv + 2;
    g_n_launcher = argc - 2;
    snprintf(g_root, sizeof g_root, "/tmp/vt_comm_train_%d", (int)getpid());
    mkdir(g_root, 0755);
    snprintf(g_data, sizeof g_data, "%s/data", g_root);
    write_cifar10(g_data, 64, 40); /* 320 training images: 20 steps of 16 in one epoch */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_np2),
        cmocka_unit_test(test_mlp_np4),
        cmocka_unit_test(test_cnn_pool_np2),
        cmocka_unit_test(test_cnn_pool_np4),
        cmocka_unit_test(test_resnet_np2),
        cmocka_unit_test(test_resnet_np4),
        cmocka_unit_test(test_small_buckets),
        cmocka_unit_test(test_no_overlap),
        cmocka_unit_test(test_unfreeze),
        cmocka_unit_test(test_mlp_opencl_np2),
        cmocka_unit_test(test_mlp_vulkan_np2),
        cmocka_unit_test(test_cnn_pool_opencl_np2),
        cmocka_unit_test(test_cnn_pool_vulkan_np2),
        cmocka_unit_test(test_resnet_opencl_np2),
        cmocka_unit_test(test_resnet_vulkan_np2),
        cmocka_unit_test(test_resume_other_rank_count),
        cmocka_unit_test(test_sync_bn),
        cmocka_unit_test(test_sync_bn_resnet_np2),
        cmocka_unit_test(test_sync_bn_resnet_np4),
        cmocka_unit_test(test_sync_bn_resnet_opencl_np2),
        cmocka_unit_test(test_sync_bn_resnet_vulkan_np2),
        cmocka_unit_test(test_sync_bn_small_buckets),
        cmocka_unit_test(test_sync_bn_no_overlap),
        cmocka_unit_test(test_plain_bn_differs),
        cmocka_unit_test(test_sync_bn_resume),
        cmocka_unit_test(test_batch_must_divide),
        cmocka_unit_test(test_stalled_rank),
        cmocka_unit_test(test_killed_rank),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (rc == 0) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
        if (system(cmd) != 0) printf("could not remove %s\n", g_root);
    }
    return rc;
}
