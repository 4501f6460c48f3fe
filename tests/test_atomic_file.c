/* The atomic file helper (vt/atomic_file.h) on its own: a commit replaces the file whole; a failed
 * write, an abort or a failed rename leave the previous file as it was and no temp file behind. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vt/atomic_file.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", g_dir, name); }

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* The whole file as a string (NULL when it cannot be opened). */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

static void assert_content(const char *path, const char *want) {
    char *got = slurp(path);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* Entries of the test folder other than the given names: leftover temp files. */
static int count_others(const char *keep1, const char *keep2) {
    DIR *dir = opendir(g_dir);
    assert_non_null(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if ((keep1 && !strcmp(e->d_name, keep1)) || (keep2 && !strcmp(e->d_name, keep2))) continue;
        n++;
    }
    closedir(dir);
    return n;
}

static void test_write_and_replace(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "a.txt");
    assert_int_equal(vt_atomic_write(path, "first", 5), VT_OK);
    assert_content(path, "first");
    assert_int_equal(vt_atomic_write(path, "second, longer", 14), VT_OK);
    assert_content(path, "second, longer");
    assert_int_equal(vt_atomic_write(path, "", 0), VT_OK);
    assert_content(path, "");
    assert_int_equal(count_others("a.txt", NULL), 0);
    unlink(path);
}

static void test_stream_pos_crc_pad(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "b.bin");
    vt_atomic_file f;
    assert_int_equal(vt_afile_open(&f, path), VT_OK);
    /* nothing at path until the commit */
    struct stat st;
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(vt_afile_write(&f, "1234", 4), VT_OK);
    assert_int_equal(vt_afile_write(&f, "56789", 5), VT_OK);
    assert_int_equal(f.pos, 9);
    assert_int_equal(f.crc, 0xCBF43926u); /* the CRC-32 check value of "123456789" */
    assert_int_equal(vt_afile_pad(&f, 8, '.'), VT_OK);
    assert_int_equal(f.pos, 16);
    assert_int_equal(vt_afile_pad(&f, 8, '.'), VT_OK); /* already aligned: nothing added */
    assert_int_equal(f.pos, 16);
    assert_int_equal(vt_afile_commit(&f), VT_OK);
    assert_content(path, "123456789.......");
    /* abort after a commit is a no-op: the committed file stays */
    vt_afile_abort(&f);
    assert_content(path, "123456789.......");
    assert_int_equal(count_others("b.bin", NULL), 0);
    unlink(path);
}

static void test_abort_keeps_old_file(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "c.txt");
    spit(path, "old content");
    vt_atomic_file f;
    assert_int_equal(vt_afile_open(&f, path), VT_OK);
    assert_int_equal(vt_afile_write(&f, "new", 3), VT_OK);
    assert_int_equal(count_others("c.txt", NULL), 1); /* the temp file, while open */
    vt_afile_abort(&f);
    vt_afile_abort(&f); /* safe to repeat */
    assert_content(path, "old content");
    assert_int_equal(count_others("c.txt", NULL), 0);
    unlink(path);
}

/* write() fails part-way (the file-size limit gives EFBIG, as a full disk gives ENOSPC). */
static void test_failed_write_keeps_old_file(void **state) {
    (void)state;
    char path[512];
    path_in_dir(path, sizeof path, "d.txt");
    spit(path, "old content");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        size_t n = 64 * 1024;
        char *big = malloc(n);
        if (!big) _exit(2);
        memset(big, 'x', n);
        vt_status s = vt_atomic_write(path, big, n);
        int ok = s == VT_ERR_IO && strstr(vt_last_error(), "d.txt") && strstr(vt_last_error(), "write failed");
        if (!ok) fprintf(stderr, "child: status %d: %s\n", (int)s, vt_last_error());
        free(big);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_content(path, "old content");
    assert_int_equal(count_others("d.txt", NULL), 0);
    unlink(path);
}

/* The rename fails (a non-empty folder sits at path): the folder stays, the temp file goes. */
static void test_failed_rename_cleans_up(void **state) {
    (void)state;
    char path[512], inner[600];
    path_in_dir(path, sizeof path, "e.dir");
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", path);
    spit(inner, "inside");
    assert_int_equal(vt_atomic_write(path, "data", 4), VT_ERR_IO);
    assert_non_null(strstr(vt_last_error(), "e.dir"));
    assert_content(inner, "inside");
    assert_int_equal(count_others("e.dir", NULL), 0);
    unlink(inner);
    rmdir(path);
}

static void test_bad_paths(void **state) {
    (void)state;
    vt_atomic_file f;
    assert_int_equal(vt_afile_open(&f, "/nonexistent-folder-vtrain/x.bin"), VT_ERR_IO);
    assert_non_null(strstr(vt_last_error(), "/nonexistent-folder-vtrain/x.bin"));
    vt_afile_abort(&f); /* harmless after a failed open */
    assert_int_equal(vt_afile_open(&f, ""), VT_ERR_INVALID_ARG);
    assert_int_equal(vt_afile_open(&f, NULL), VT_ERR_INVALID_ARG);
    assert_int_equal(vt_atomic_write("/nonexistent-folder-vtrain/y.bin", "z", 1), VT_ERR_IO);
    assert_int_equal(count_others(NULL, NULL), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/vt_test_afile_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
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
        cmocka_unit_test(test_write_and_replace),       cmocka_unit_test(test_stream_pos_crc_pad),
        cmocka_unit_test(test_abort_keeps_old_file),    cmocka_unit_test(test_failed_write_keeps_old_file),
        cmocka_unit_test(test_failed_rename_cleans_up), cmocka_unit_test(test_bad_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
