/* Checkpoint format tests: round trip, truncation, every single-bit flip, newer version, disk full,
 * and kill -9 in the middle of writes never leaving a corrupt file at the target path. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vt/checkpoint.h"

#ifdef __linux__
#include <sched.h>
#include <sys/mount.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_dir[256];

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* unlink first: truncating a file that has data makes ext4 flush it on close (slow) */
static void spit(const char *path, const unsigned char *b, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A small dict: a 2x3 f32, a scalar i32, a 5-byte u8 and an empty tensor, plus metadata. */
static void make_small(vt_tensor_dict *d, float seed) {
    memset(d, 0, sizeof *d);
    float w[6];
    for (int i = 0; i < 6; i++) w[i] = seed + (float)i * 0.5f;
    int64_t s23[2] = {2, 3}, s5[1] = {5}, s0[2] = {0, 4};
    int32_t step = 42;
    unsigned char bytes[5] = {1, 2, 3, 4, 250};
    assert_int_equal(vt_dict_add(d, "layer.weight", VT_F32, 2, s23, w), VT_OK);
    assert_int_equal(vt_dict_add(d, "bn.num_batches_tracked", VT_I32, 0, NULL, &step), VT_OK);
    assert_int_equal(vt_dict_add(d, "mask", VT_U8, 1, s5, bytes), VT_OK);
    assert_int_equal(vt_dict_add(d, "empty", VT_F32, 2, s0, NULL), VT_OK);
    assert_int_equal(vt_dict_set_meta(d, "{\"epoch\":3,\"step\":1200,\"best_acc\":0.625,\"rng\":[1,2]}"), VT_OK);
}

static void assert_dicts_equal(const vt_tensor_dict *a, const vt_tensor_dict *b) {
    assert_int_equal(a->n, b->n);
    if (a->meta_json || b->meta_json) assert_string_equal(a->meta_json, b->meta_json);
    for (size_t i = 0; i < a->n; i++) {
        const vt_host_tensor *x = &a->items[i], *y = vt_dict_find(b, x->name);
        assert_non_null(y);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        for (int k = 0; k < VT_MAX_DIMS; k++) assert_int_equal(x->shape[k], y->shape[k]);
        assert_int_equal(x->nbytes, y->nbytes);
        if (x->nbytes) assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

static void test_dict_rules(void **state) {
    (void)state;
    vt_tensor_dict d = {0};
    int64_t s[1] = {2};
    float v[2] = {1, 2};
    assert_int_equal(vt_dict_add(&d, "a", VT_F32, 1, s, v), VT_OK);
    assert_int_equal(vt_dict_add(&d, "a", VT_F32, 1, s, v), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "duplicate"));
    assert_int_equal(vt_dict_add(&d, "", VT_F32, 1, s, v), VT_ERR_INVALID_ARG);
    char longname[200];
    memset(longname, 'x', sizeof longname - 1);
    longname[199] = 0;
    assert_int_equal(vt_dict_add(&d, longname, VT_F32, 1, s, v), VT_ERR_INVALID_ARG);
    int64_t neg[1] = {-1};
    assert_int_not_equal(vt_dict_add(&d, "n", VT_F32, 1, neg, NULL), VT_OK);
    const vt_host_tensor *t = vt_dict_find(&d, "a");
    assert_non_null(t);
    assert_true(((float *)t->data)[1] == 2.0f);
    assert_null(vt_dict_find(&d, "b"));
    vt_dict_free(&d);
    vt_dict_free(&d);
}

static void test_round_trip(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "rt.vtckpt");
    vt_tensor_dict d, r;
    make_small(&d, 1.25f);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    assert_int_equal(vt_ckpt_read(path, &r), VT_OK);
    assert_dicts_equal(&d, &r);
    /* data offsets are 64-byte aligned and the file ends with the footer */
    size_t n;
    unsigned char *b = slurp(path, &n);
    assert_memory_equal(b, "VTCKPT\0\0", 8);
    assert_memory_equal(b + n - 24, "VTCKEND\0", 8);
    free(b);
    vt_dict_free(&r);
    /* no metadata, no tensors */
    vt_tensor_dict e = {0};
    assert_int_equal(vt_ckpt_write(path, &e), VT_OK);
    assert_int_equal(vt_ckpt_read(path, &r), VT_OK);
    assert_int_equal(r.n, 0);
    assert_null(r.meta_json);
    vt_dict_free(&r);
    vt_dict_free(&d);
    /* reading a missing file names it */
    path_in_dir(path, sizeof path, "missing.vtckpt");
    assert_int_equal(vt_ckpt_read(path, &r), VT_ERR_NOT_FOUND);
    assert_non_null(strstr(vt_last_error(), "missing.vtckpt"));
}

static void test_truncated(void **state) {
    (void)state;
    char path[512], cut[512];
    path_in_dir(path, sizeof path, "tr.vtckpt");
    path_in_dir(cut, sizeof cut, "tr_cut.vtckpt");
    vt_tensor_dict d, r;
    make_small(&d, -3.0f);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    size_t n;
    unsigned char *b = slurp(path, &n);
    for (size_t len = 0; len < n; len++) {
        spit(cut, b, len);
        vt_status s = vt_ckpt_read(cut, &r);
        assert_int_not_equal(s, VT_OK);
        assert_int_equal(r.n, 0);
        assert_non_null(strstr(vt_last_error(), "tr_cut.vtckpt"));
    }
    /* appended garbage is rejected too */
    unsigned char *longer = malloc(n + 7);
    memcpy(longer, b, n);
    memset(longer + n, 0xAB, 7);
    spit(cut, longer, n + 7);
    assert_int_not_equal(vt_ckpt_read(cut, &r), VT_OK);
    free(longer);
    free(b);
    vt_dict_free(&d);
}

static void test_every_bit_flip(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "flip.vtckpt");
    vt_tensor_dict d, r;
    make_small(&d, 7.0f);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    char bad[512];
    path_in_dir(bad, sizeof bad, "flip_bad.vtckpt");
    size_t n;
    unsigned char *b = slurp(path, &n);
    assert_non_null(b);
    size_t detected = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (unsigned char)(1u << bit);
            spit(bad, b, n);
            vt_status s = vt_ckpt_read(bad, &r);
            if (s == VT_OK) fail_msg("flip of byte %zu bit %d was not detected", i, bit);
            assert_int_equal(r.n, 0);
            detected++;
            b[i] ^= (unsigned char)(1u << bit);
        }
    }
    assert_int_equal(detected, n * 8);
    free(b);
    vt_dict_free(&d);
}

static void test_newer_version(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "newer.vtckpt");
    vt_tensor_dict d, r;
    make_small(&d, 0.0f);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    size_t n;
    unsigned char *b = slurp(path, &n);
    b[8] = 2; /* format version u32 LE at offset 8 */
    spit(path, b, n);
    assert_int_equal(vt_ckpt_read(path, &r), VT_ERR_FORMAT);
    assert_non_null(strstr(vt_last_error(), "written by a newer vtrain: format version 2, this build reads up to 1"));
    assert_non_null(strstr(vt_last_error(), "newer.vtckpt"));
    free(b);
    vt_dict_free(&d);
}

static void make_big(vt_tensor_dict *d, int seed, size_t nfloat) {
    memset(d, 0, sizeof *d);
    float *w = malloc(nfloat * sizeof *w);
    for (size_t i = 0; i < nfloat; i++) w[i] = (float)seed * 1000.0f + (float)(i % 997);
    int64_t s1[1] = {(int64_t)nfloat};
    assert_int_equal(vt_dict_add(d, "big", VT_F32, 1, s1, w), VT_OK);
    free(w);
    char meta[64];
    snprintf(meta, sizeof meta, "{\"seed\":%d}", seed);
    assert_int_equal(vt_dict_set_meta(d, meta), VT_OK);
}

/* The file at path is a complete checkpoint written by make_big with the seed in its metadata. */
static int assert_consistent(const char *path) {
    vt_tensor_dict r;
    vt_status s = vt_ckpt_read(path, &r);
    if (s != VT_OK) fail_msg("target checkpoint is unreadable: %s", vt_last_error());
    int seed = -1;
    assert_int_equal(sscanf(r.meta_json, "{\"seed\":%d}", &seed), 1);
    const vt_host_tensor *t = vt_dict_find(&r, "big");
    assert_non_null(t);
    const float *w = t->data;
    for (size_t i = 0; i < t->nbytes / 4; i += 4099) assert_true(w[i] == (float)seed * 1000.0f + (float)(i % 997));
    vt_dict_free(&r);
    return seed;
}

static int count_temp_files(void) {
    DIR *dir = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(dir);
    return n;
}

static int remove_temp_files(void) {
    int n = 0;
    DIR *dir = opendir(g_dir);
    struct dirent *e;
    char p[600];
    while ((e = readdir(dir)) != NULL)
        if (strstr(e->d_name, ".tmp.")) {
            snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
            unlink(p);
            n++;
        }
    closedir(dir);
    return n;
}

static void test_disk_full(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "full.vtckpt");
    vt_tensor_dict d;
    make_big(&d, 1, 1000);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    vt_dict_free(&d);
    size_t n0;
    unsigned char *before = slurp(path, &n0);
    /* The file-size limit makes write() fail with EFBIG part-way, like a full disk does. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {64 * 1024, 64 * 1024};
        setrlimit(RLIMIT_FSIZE, &rl);
        vt_tensor_dict big;
        make_big(&big, 2, 256 * 1024);
        vt_status s = vt_ckpt_write(path, &big);
        int ok = s == VT_ERR_IO && strstr(vt_last_error(), "full.vtckpt") && strstr(vt_last_error(), "File too large");
        if (!ok) fprintf(stderr, "child: status %d: %s\n", (int)s, vt_last_error());
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    size_t n1;
    unsigned char *after = slurp(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(count_temp_files(), 0);
    assert_consistent(path);
    free(before);
    free(after);
    /* a folder that does not exist: VT_ERR_IO naming the path */
    vt_tensor_dict e = {0};
    assert_int_equal(vt_ckpt_write("/nonexistent-folder-vtrain/x.vtckpt", &e), VT_ERR_IO);
    assert_non_null(strstr(vt_last_error(), "/nonexistent-folder-vtrain/x.vtckpt"));
}

/* A real ENOSPC: a 256 KiB tmpfs in a private mount namespace (needs root; skipped otherwise). */
static void test_disk_full_tmpfs(void **state) {
    (void)state;
#ifdef __linux__
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char mnt[512], path[600];
        path_in_dir(mnt, sizeof mnt, "tmpfs");
        snprintf(path, sizeof path, "%s/small.vtckpt", mnt);
        if (mkdir(mnt, 0755) != 0 || unshare(CLONE_NEWNS) != 0 ||
            mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0)
            _exit(77);
        vt_tensor_dict small, big, r;
        make_big(&small, 5, 1000);
        make_big(&big, 6, 256 * 1024);
        int ok = vt_ckpt_write(path, &small) == VT_OK;
        vt_status s = vt_ckpt_write(path, &big);
        ok = ok && s == VT_ERR_IO && strstr(vt_last_error(), "No space left on device") &&
             strstr(vt_last_error(), "small.vtckpt");
        if (!ok) fprintf(stderr, "child: status %d: %s\n", (int)s, vt_last_error());
        ok = ok && vt_ckpt_read(path, &r) == VT_OK && r.meta_json && strcmp(r.meta_json, "{\"seed\":5}") == 0;
        DIR *dir = opendir(mnt);
        struct dirent *e;
        while (dir && (e = readdir(dir)) != NULL)
            if (strstr(e->d_name, ".tmp.")) ok = 0;
        if (dir) closedir(dir);
        umount(mnt);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    char mnt[512];
    path_in_dir(mnt, sizeof mnt, "tmpfs");
    rmdir(mnt);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77) {
        printf("SKIPPED: cannot mount a tmpfs here (needs root); the RLIMIT_FSIZE test covers the failure path\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(st), 0);
#else
    printf("SKIPPED: tmpfs disk-full test is Linux-only\n");
    skip();
#endif
}

static void test_kill_mid_write(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "crash.vtckpt");
    vt_tensor_dict d;
    make_big(&d, 0, 1 << 20);
    /* Kill delays span a few write times measured here, so they land mid-write on a slow
     * (sanitizer, loaded) machine as often as on a fast one. */
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    assert_int_equal(vt_ckpt_write(path, &d), VT_OK);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    vt_dict_free(&d);
    long write_us = (long)((w1.tv_sec - w0.tv_sec) * 1000000L + (w1.tv_nsec - w0.tv_nsec) / 1000L);
    if (write_us < 1000) write_us = 1000;
    srand((unsigned)time(NULL));
    const int rounds = 60;
    int mid_write = 0, updated = 0;
    for (int round = 0; round < rounds; round++) {
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(ready[0]);
            if (write(ready[1], "r", 1) != 1) _exit(1);
            for (int seed = 1;; seed++) {
                vt_tensor_dict c;
                make_big(&c, round * 1000 + seed, 1 << 20);
                if (vt_ckpt_write(path, &c) != VT_OK) _exit(1);
                vt_dict_free(&c);
            }
        }
        close(ready[1]);
        char rb;
        assert_int_equal(read(ready[0], &rb, 1), 1);
        close(ready[0]);
        long delay_us = rand() % (3 * write_us);
        struct timespec ts = {delay_us / 1000000L, (delay_us % 1000000L) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        int seed = assert_consistent(path);
        updated += seed != 0;
        mid_write += remove_temp_files() > 0;
    }
    printf("kill -9: %d rounds, %d killed with a temp file half-written, %d saw the target replaced\n", rounds,
           mid_write, updated);
    /* the timing must actually hit writes, or the test proves nothing */
    assert_true(mid_write > rounds / 8);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vt_test_ckpt_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    DIR *dir = opendir(g_dir);
    struct dirent *e;
    char p[600];
    while (dir && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (dir) closedir(dir);
    rmdir(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_rules),      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_every_bit_flip),  cmocka_unit_test(test_newer_version),  cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_disk_full_tmpfs), cmocka_unit_test(test_kill_mid_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
