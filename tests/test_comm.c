/* The communicator alone: averages, sums, allgathers, broadcasts and barriers on 1, 2 or 4 ranks, bucket
 * boundaries, bucketed gradient averaging on CPU memory and through host staging (OpenCL, Vulkan),
 * and a dead or stalled rank ending the job within the timeout (a driver that runs the launcher). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/comm.h"

static vt_comm *comm;
static int expect_size = -1;

/* A value every rank can predict for (rank, i), exact in f32 so the mean is exact too. */
static float value_of(int rank, int64_t i) { return (float)(rank * 8 + (i % 97)) * 0.25f; }

static float mean_of(int size, int64_t i) {
    double s = 0;
    for (int r = 0; r < size; r++) s += value_of(r, i);
    return (float)(s / size);
}

static void test_size(void **state) {
    (void)state;
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    if (expect_size > 0) assert_int_equal(n, expect_size);
    assert_true(r >= 0 && r < n);
    assert_true(vt_comm_local_rank(comm) >= 0 && vt_comm_local_rank(comm) < vt_comm_local_size(comm));
    assert_string_equal(vt_comm_kind(comm),
                        n > 1 ? "mpi" : (vt_comm_launched() && vt_comm_have_mpi() ? "mpi" : "single"));
}

static void test_allreduce_avg(void **state) {
    (void)state;
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    /* odd lengths, one element, and nothing */
    const size_t lens[] = {0, 1, 7, 1000, 65537};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        float *b = malloc(len * sizeof(float) + 1);
        assert_non_null(b);
        for (size_t i = 0; i < len; i++) b[i] = value_of(r, (int64_t)i);
        assert_int_equal(vt_comm_allreduce_avg(comm, b, len), VT_OK);
        for (size_t i = 0; i < len; i++)
            if (b[i] != mean_of(n, (int64_t)i))
                fail_msg("rank %d: element %zu of %zu: %g, want %g", r, i, len, b[i], mean_of(n, (int64_t)i));
        free(b);
    }
}

static void test_allreduce_sum_f64(void **state) {
    (void)state;
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    double b[3] = {1.0, (double)r, 1e15 + r};
    assert_int_equal(vt_comm_allreduce_sum_f64(comm, b, 3), VT_OK);
    assert_true(b[0] == (double)n);
    assert_true(b[1] == (double)n * (n - 1) / 2);
    assert_true(b[2] == 1e15 * n + (double)n * (n - 1) / 2);
}

static void test_bcast(void **state) {
    (void)state;
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    for (int root = 0; root < n; root += (n > 1 ? n - 1 : 1)) {
        unsigned char b[1001];
        for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(r == root ? (i * 7 + (size_t)root) & 0xff : 0xAA);
        assert_int_equal(vt_comm_bcast(comm, b, sizeof b, root), VT_OK);
        for (size_t i = 0; i < sizeof b; i++) assert_int_equal(b[i], (i * 7 + (size_t)root) & 0xff);
    }
    char x = 0;
    assert_int_equal(vt_comm_bcast(comm, &x, 1, n), VT_ERR_INVALID_ARG);
    assert_int_equal(vt_comm_bcast(comm, &x, 1, -1), VT_ERR_INVALID_ARG);
}

/* Every rank's bytes in rank order on every rank: odd sizes, in place (mine in its own slot) and not,
 * and nothing; counted in the stats. */
static void test_allgather(void **state) {
    (void)state;
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    const size_t lens[] = {1, 7, 1000, 8 * 1024};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t len = lens[k];
        unsigned char *mine = malloc(len), *all = malloc(len * (size_t)n);
        assert_non_null(mine);
        assert_non_null(all);
        for (int in_place = 0; in_place < 2; in_place++) {
            memset(all, 0xEE, len * (size_t)n);
            unsigned char *src = in_place ? all + (size_t)r * len : mine;
            for (size_t i = 0; i < len; i++) src[i] = (unsigned char)((size_t)r * 31 + i * 7 + len);
            uint64_t before = vt_comm_get_stats(comm)->allgathers;
            assert_int_equal(vt_comm_allgather(comm, src, all, len), VT_OK);
            assert_int_equal(vt_comm_get_stats(comm)->allgathers, before + 1);
            for (int q = 0; q < n; q++)
                for (size_t i = 0; i < len; i++)
                    if (all[(size_t)q * len + i] != (unsigned char)((size_t)q * 31 + i * 7 + len))
                        fail_msg("rank %d: byte %zu of rank %d's %zu (%s): %d", r, i, q, len,
                                 in_place ? "in place" : "apart", all[(size_t)q * len + i]);
        }
        free(mine);
        free(all);
    }
    unsigned char none = 0;
    assert_int_equal(vt_comm_allgather(comm, &none, &none, 0), VT_OK);
}

static void test_barrier(void **state) {
    (void)state;
    const vt_comm_stats before = *vt_comm_get_stats(comm);
    for (int i = 0; i < 5; i++) assert_int_equal(vt_comm_barrier(comm), VT_OK);
    assert_int_equal(vt_comm_get_stats(comm)->barriers, before.barriers + 5);
}

static vt_backend *start(const char *name) {
    const vt_backend_reg *reg = vt_backend_reg_find(name);
    vt_backend_opts o = {0};
    vt_backend *be = NULL;
    if (!reg || reg->device_count() <= 0 || reg->init(0, &o, &be) != VT_OK) {
        printf("SKIPPED: backend %s has no device here\n", name);
        return NULL;
    }
    return be;
}

static void test_buckets(void **state) {
    (void)state;
    vt_backend *be = start("cpu");
    assert_non_null(be);
    int64_t shape[1] = {1000};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "g", VT_F32, 1, shape, &t), VT_OK);
    /* 1000 floats in 384-byte (96-float) buckets: 10 full ones and a tail of 40, in order, no gap */
    vt_grad_sync *s = NULL;
    assert_int_equal(vt_grad_sync_new(comm, t, 384, &s), VT_OK);
    assert_int_equal(vt_grad_sync_n_buckets(s), 11);
    int64_t next = 0;
    for (int i = 0; i < 11; i++) {
        int64_t first, count;
        vt_grad_sync_bucket(s, i, &first, &count);
        assert_int_equal(first, next);
        assert_int_equal(count, i < 10 ? 96 : 40);
        next = first + count;
    }
    assert_int_equal(next, 1000);
    assert_int_equal(vt_grad_sync_bytes(s), 4000);
    vt_grad_sync_free(s);
    /* a bucket the size of the block, and one larger: a single bucket */
    assert_int_equal(vt_grad_sync_new(comm, t, 4000, &s), VT_OK);
    assert_int_equal(vt_grad_sync_n_buckets(s), 1);
    vt_grad_sync_free(s);
    assert_int_equal(vt_grad_sync_new(comm, t, 1 << 20, &s), VT_OK);
    assert_int_equal(vt_grad_sync_n_buckets(s), 1);
    vt_grad_sync_free(s);
    /* the default comes from VT_BUCKET_MB */
    setenv("VT_BUCKET_MB", "0.001", 1); /* 1048 bytes: 262 floats a bucket */
    assert_int_equal(vt_grad_sync_new(comm, t, 0, &s), VT_OK);
    assert_int_equal(vt_grad_sync_n_buckets(s), 4);
    vt_grad_sync_free(s);
    unsetenv("VT_BUCKET_MB");
    vt_tensor_free(t);
    vt_backend_free(be);
}

/* Every rank fills a gradient block on `backend` with its own values; after the sync each holds the mean. */
static void grad_sync_on(const char *backend) {
    vt_backend *be = start(backend);
    if (!be) skip();
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    const int64_t len = 10007;
    int64_t shape[1] = {len};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "grads", VT_F32, 1, shape, &t), VT_OK);
    float *h = malloc((size_t)len * sizeof(float));
    assert_non_null(h);
    for (int64_t i = 0; i < len; i++) h[i] = value_of(r, i);
    assert_int_equal(vt_tensor_upload(t, h, (size_t)len * sizeof(float)), VT_OK);
    vt_grad_sync *s = NULL;
    assert_int_equal(vt_grad_sync_new(comm, t, 4096, &s), VT_OK); /* 1024 floats a bucket: 10 and a tail */
    assert_int_equal(vt_grad_sync_n_buckets(s), 10);
    vt_backend_counters before = be->counters;
    assert_int_equal(vt_grad_sync_run(s), VT_OK);
    /* staged backends move each bucket once each way; CPU memory is reduced where it lies */
    int staged = n > 1 && strcmp(backend, "cpu") != 0;
    assert_int_equal(be->counters.downloads - before.downloads, staged ? 10 : 0);
    assert_int_equal(be->counters.uploads - before.uploads, staged ? 10 : 0);
    memset(h, 0, (size_t)len * sizeof(float));
    assert_int_equal(vt_tensor_download(t, h, (size_t)len * sizeof(float)), VT_OK);
    for (int64_t i = 0; i < len; i++)
        if (h[i] != mean_of(n, i))
            fail_msg("%s rank %d: element %lld: %g, want %g", backend, r, (long long)i, h[i], mean_of(n, i));
    /* a second run on the same block leaves the mean unchanged */
    assert_int_equal(vt_grad_sync_run(s), VT_OK);
    assert_int_equal(vt_tensor_download(t, h, (size_t)len * sizeof(float)), VT_OK);
    for (int64_t i = 0; i < len; i++) assert_true(h[i] == mean_of(n, i));
    vt_grad_sync_free(s);
    free(h);
    vt_tensor_free(t);
    vt_backend_free(be);
}

static void test_grad_sync_cpu(void **state) {
    (void)state;
    grad_sync_on("cpu");
}
static void test_grad_sync_opencl(void **state) {
    (void)state;
    grad_sync_on("opencl");
}
static void test_grad_sync_vulkan(void **state) {
    (void)state;
    grad_sync_on("vulkan");
}

/* Overlap with collectives of the caller in between (the synchronised batch norm's allgathers during the
 * backward pass): drain waits for the buckets handed over so far, then the caller's allgather runs, then
 * the rest; every bucket ends as the mean. */
static void test_grad_sync_drain(void **state) {
    (void)state;
    vt_backend *be = start("cpu");
    assert_non_null(be);
    int n = vt_comm_size(comm), r = vt_comm_rank(comm);
    const int64_t len = 3000;
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "grads", VT_F32, 1, (int64_t[]){len}, &t), VT_OK);
    float *h = malloc((size_t)len * sizeof(float));
    assert_non_null(h);
    for (int64_t i = 0; i < len; i++) h[i] = value_of(r, i);
    assert_int_equal(vt_tensor_upload(t, h, (size_t)len * sizeof(float)), VT_OK);
    vt_grad_sync *s = NULL;
    assert_int_equal(vt_grad_sync_new(comm, t, 4000, &s), VT_OK); /* 1000 floats a bucket: 3 */
    if (!vt_grad_sync_can_overlap(s)) {
        vt_grad_sync_free(s);
        vt_tensor_free(t);
        vt_backend_free(be);
        free(h);
        printf("SKIPPED: no overlap here (one rank, or no MPI_THREAD_MULTIPLE)\n");
        skip();
    }
    assert_int_equal(vt_grad_sync_begin(s), VT_OK);
    assert_int_equal(vt_grad_sync_ready(s, 2), VT_OK);
    assert_int_equal(vt_grad_sync_ready(s, 1), VT_OK);
    assert_int_equal(vt_grad_sync_drain(s), VT_OK);
    int *ranks = calloc((size_t)n, sizeof *ranks);
    assert_non_null(ranks);
    assert_int_equal(vt_comm_allgather(comm, &r, ranks, sizeof r), VT_OK);
    for (int q = 0; q < n; q++) assert_int_equal(ranks[q], q);
    free(ranks);
    assert_int_equal(vt_grad_sync_ready(s, 0), VT_OK);
    assert_int_equal(vt_grad_sync_end(s), VT_OK);
    assert_int_equal(vt_tensor_download(t, h, (size_t)len * sizeof(float)), VT_OK);
    for (int64_t i = 0; i < len; i++)
        if (h[i] != mean_of(n, i)) fail_msg("rank %d: element %lld: %g, want %g", r, (long long)i, h[i], mean_of(n, i));
    vt_grad_sync_free(s);
    free(h);
    vt_tensor_free(t);
    vt_backend_free(be);
}

/* NCCL on CUDA device memory, one rank (NCCL allows two ranks only on two GPUs): the communicator
 * starts, and an average over one rank leaves the floats as they were. Skipped without a GPU. */
static void test_nccl_one_rank(void **state) {
    (void)state;
    if (!vt_comm_have_nccl()) {
        printf("SKIPPED: built without NCCL\n");
        skip();
    }
    if (vt_comm_size(comm) > 1) {
        printf("SKIPPED: two ranks on one GPU are not allowed by NCCL\n");
        skip();
    }
    vt_backend *be = start("cuda");
    if (!be) skip();
    assert_int_equal(vt_comm_nccl_init(comm, 0), VT_OK);
    assert_true(vt_comm_has_nccl_ready(comm));
    int64_t shape[1] = {1027};
    vt_tensor *t = NULL;
    assert_int_equal(vt_tensor_new(be, "g", VT_F32, 1, shape, &t), VT_OK);
    float h[1027];
    for (int i = 0; i < 1027; i++) h[i] = value_of(0, i);
    assert_int_equal(vt_tensor_upload(t, h, sizeof h), VT_OK);
    assert_int_equal(vt_comm_allreduce_avg_device(comm, (char *)t->buf->handle + t->offset, 1027), VT_OK);
    assert_int_equal(vt_comm_bcast_device(comm, (char *)t->buf->handle + t->offset, sizeof h, 0), VT_OK);
    memset(h, 0, sizeof h);
    assert_int_equal(vt_tensor_download(t, h, sizeof h), VT_OK);
    for (int i = 0; i < 1027; i++) assert_true(h[i] == value_of(0, i));
    vt_tensor_free(t);
    vt_backend_free(be);
}

static void test_env_checks(void **state) {
    (void)state;
    vt_comm *c = NULL;
    /* a bad timeout or mode is refused before anything starts */
    setenv("VT_COMM_TIMEOUT", "soon", 1);
    assert_int_equal(vt_comm_init(0, &c), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "VT_COMM_TIMEOUT"));
    unsetenv("VT_COMM_TIMEOUT");
    setenv("VT_COMM", "tcp", 1);
    assert_int_equal(vt_comm_init(0, &c), VT_ERR_INVALID_ARG);
    unsetenv("VT_COMM");
    assert_null(c);
    /* a single-process communicator: every collective returns at once */
    setenv("VT_COMM", "single", 1);
    assert_int_equal(vt_comm_init(2.5, &c), VT_OK);
    unsetenv("VT_COMM");
    assert_int_equal(vt_comm_size(c), 1);
    assert_true(vt_comm_timeout(c) == 2.5);
    float f[2] = {3, 4};
    assert_int_equal(vt_comm_allreduce_avg(c, f, 2), VT_OK);
    assert_true(f[0] == 3 && f[1] == 4);
    assert_int_equal(vt_comm_barrier(c), VT_OK);
    float g[2] = {0, 0};
    assert_int_equal(vt_comm_allgather(c, f, g, sizeof f), VT_OK);
    assert_true(g[0] == 3 && g[1] == 4);
    if (!vt_comm_have_nccl()) assert_int_equal(vt_comm_nccl_init(c, 0), VT_ERR_UNSUPPORTED);
    vt_comm_free(c);
}

/* ---- the dead-rank driver ------------------------------------------------------------------ */

/* Child mode: rank `who` stalls (sleeps far past the timeout) or exits at once without a word to the
 * others; every other rank waits in an allreduce (an allgather for stall-gather), which must end the job. */
static int misbehave(const char *how, int who) {
    vt_comm *c = NULL;
    if (vt_comm_init(0, &c) != VT_OK) {
        fprintf(stderr, "comm: %s\n", vt_last_error());
        return 3;
    }
    float b[4] = {1, 2, 3, 4};
    if (vt_comm_allreduce_avg(c, b, 4) != VT_OK) return 3; /* everyone alive here */
    if (vt_comm_rank(c) == who) {
        if (strncmp(how, "stall", 5) == 0) sleep(120);
        _exit(0);
    }
    vt_status s;
    if (strcmp(how, "stall-gather") == 0) {
        /* the synchronised batch norm's collective */
        float *all = calloc((size_t)vt_comm_size(c) * 4, sizeof *all);
        s = all ? vt_comm_allgather(c, b, all, sizeof b) : VT_ERR_OOM;
        free(all);
    } else {
        s = vt_comm_allreduce_avg(c, b, 4);
    }
    fprintf(stderr, "rank %d: the collective returned (%s) instead of ending the job\n", vt_comm_rank(c),
            vt_status_name(s));
    vt_comm_free(c);
    return 0;
}

/* Runs LAUNCHER... this-program --misbehave HOW RANK, and checks that the job ends non-zero well
 * within the timeout, naming the silent rank when it stalls. */
static int drive(const char *how, char **launcher, int n_launcher, const char *self) {
    const double timeout = 3;
    char **argv = calloc((size_t)n_launcher + 5, sizeof *argv);
    if (!argv) return 1;
    for (int i = 0; i < n_launcher; i++) argv[i] = launcher[i];
    argv[n_launcher] = (char *)self;
    argv[n_launcher + 1] = (char *)"--misbehave";
    argv[n_launcher + 2] = (char *)how;
    argv[n_launcher + 3] = (char *)"2";
    int fd[2];
    if (pipe(fd) != 0) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        setenv("VT_COMM_TIMEOUT", "3", 1);
        setpgid(0, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    char out[65536];
    size_t len = 0;
    ssize_t k;
    while ((k = read(fd[0], out + len, sizeof out - 1 - len)) > 0) {
        len += (size_t)k;
        if (len >= sizeof out - 1) break;
    }
    out[len] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    free(argv);
    printf("%s: launcher ended after %.1f s, status %d\n--- its stderr ---\n%s---\n", how, took,
           WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st), out);
    int bad = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) printf("FAIL: the job exited 0\n"), bad = 1;
    /* the timeout, the ping grace (1 s at this timeout) and the launcher's start and teardown */
    if (took > timeout + 25) printf("FAIL: %.1f s is far past the %.0f s timeout\n", took, timeout), bad = 1;
    if (strncmp(how, "stall", 5) == 0) {
        if (strcmp(how, "stall-gather") == 0 && !strstr(out, "allgather"))
            printf("FAIL: the message does not name the allgather\n"), bad = 1;
        if (!strstr(out, "no answer from rank 2")) printf("FAIL: the message does not name rank 2\n"), bad = 1;
        if (took < timeout) printf("FAIL: ended before the timeout (%.1f s)\n", took), bad = 1;
    }
    if (strstr(out, "instead of ending the job")) printf("FAIL: a rank went on past the dead one\n"), bad = 1;
    printf("%s\n", bad ? "1 failed" : "1 passed, 0 failed");
    return bad;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "--misbehave") == 0) return misbehave(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "--driver") == 0) {
        if (!vt_comm_have_mpi()) {
            printf("SKIPPED: built without MPI\n");
            return 77;
        }
        return drive(argv[2], argv + 3, argc - 3, argv[0]);
    }
    if (argc >= 3 && strcmp(argv[1], "--expect-size") == 0) {
        expect_size = atoi(argv[2]);
        if (!vt_comm_have_mpi()) {
            printf("SKIPPED: built without MPI\n");
            return 77;
        }
    }
    if (vt_comm_init(0, &comm) != VT_OK) {
        fprintf(stderr, "comm: %s\n", vt_last_error());
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_allreduce_avg),
        cmocka_unit_test(test_allreduce_sum_f64),
        cmocka_unit_test(test_bcast),
        cmocka_unit_test(test_allgather),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_grad_sync_cpu),
        cmocka_unit_test(test_grad_sync_opencl),
        cmocka_unit_test(test_grad_sync_vulkan),
        cmocka_unit_test(test_grad_sync_drain),
        cmocka_unit_test(test_nccl_one_rank),
        cmocka_unit_test(test_env_checks),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    vt_comm_free(comm);
    return rc;
}
