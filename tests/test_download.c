/* vtrain download against a local HTTP server (tests/download_server.py) serving a synthetic
 * archive in the official layout: whole, resumed, wrong checksum, 404, refused, corrupt, unsafe. */
#include "test_dataset_fixtures.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "vt/download.h"

static char *tmp;      /* fresh per test */
static char *served;   /* tmp/served: what the server hands out */
static char *data_dir; /* tmp/data: where downloads go */
static char md5_good[33];
static pid_t server_pid = -1;
static int server_port;
static char log_path[600];
static bool have_python;

static bool python_present(void) {
    const char *path = getenv("PATH");
    if (!path) return false;
    char *copy = strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[1024];
        snprintf(p, sizeof p, "%s/python3", d);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

static int setup(void **state) {
    (void)state;
    tmp = fx_tmpdir();
    if (!tmp) return -1;
    served = fx_join(tmp, "served");
    data_dir = fx_join(tmp, "data");
    mkdir(served, 0755);
    char *gz = fx_join(served, "cifar-100-binary.tar.gz");
    fx_write_cifar100_targz(gz, 300, 50);
    assert_int_equal(vt_md5_file(gz, md5_good), VT_OK);
    free(gz);
    snprintf(log_path, sizeof log_path, "%s/server.log", tmp);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    fx_rmtree(tmp);
    free(tmp);
    free(served);
    free(data_dir);
    return 0;
}

/* Starts the server with extra flags (NULL-terminated); the test is skipped without python3. */
static void start_server(const char *flag) {
    if (!have_python) {
        printf("SKIPPED: python3 not found; the download tests need it for the local HTTP server\n");
        skip();
    }
    char port_file[600];
    snprintf(port_file, sizeof port_file, "%s/port", tmp);
    remove(port_file);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *script = VT_SOURCE_DIR "/tests/download_server.py";
        if (flag)
            execlp("python3", "python3", script, "--root", served, "--port-file", port_file, "--log", log_path, flag,
                   (char *)NULL);
        else
            execlp("python3", "python3", script, "--root", served, "--port-file", port_file, "--log", log_path,
                   (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &server_port) == 1;
            fclose(f);
            if (ok) return;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            server_pid = -1;
            fail_msg("download_server.py exited before serving (status %d)", st);
        }
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("download_server.py did not start within 10 s");
}

static int log_lines(const char *needle) {
    FILE *f = fopen(log_path, "r");
    if (!f) return 0;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (!needle || strstr(line, needle)) n++;
    fclose(f);
    return n;
}

static void mirror_url(char *out, size_t n, const char *path) {
    snprintf(out, n, "http://127.0.0.1:%d/%s", server_port, path);
}

/* A port nobody listens on. */
static int closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void assert_dataset_ready(void) {
    char path[1024];
    assert_int_equal(vt_dataset_find_or_explain("cifar100", data_dir, path, sizeof path), VT_OK);
    assert_non_null(strstr(path, "cifar-100-binary"));
    vt_dataset d;
    assert_int_equal(vt_dataset_load(path, "train", NULL, &d), VT_OK);
    assert_int_equal(d.n, 300);
    assert_string_equal(d.class_names[3], "fine_3");
    for (int64_t i = 0; i < d.n; i += 11) assert_int_equal(d.labels[i], i % 100);
    vt_dataset_free(&d);
}

/* Nothing of the release is left in data_dir: no folder, no archive, no .part, no temp folder. */
static void assert_nothing_left(void) {
    char *p = fx_join(data_dir, "cifar-100-binary");
    assert_false(fx_exists(p));
    free(p);
    p = fx_join(data_dir, "cifar-100-binary.tar.gz");
    assert_false(fx_exists(p));
    free(p);
    p = fx_join(data_dir, "cifar-100-binary.tar.gz.part");
    assert_false(fx_exists(p));
    free(p);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' 2>/dev/null | grep -q vtrain-extract", data_dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_md5(void **state) {
    (void)state;
    char hex[33];
    vt_md5_mem("", 0, hex);
    assert_string_equal(hex, "d41d8cd98f00b204e9800998ecf8427e");
    vt_md5_mem("abc", 3, hex);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    const char *q = "12345678901234567890123456789012345678901234567890123456789012345678901234567890";
    vt_md5_mem(q, strlen(q), hex);
    assert_string_equal(hex, "57edf4a22be3c955ac49da2e2107b67a");
    char *p = fx_join(tmp, "fox.txt");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    fx_write(p, fox, strlen(fox));
    assert_int_equal(vt_md5_file(p, hex), VT_OK);
    assert_string_equal(hex, "9e107d9d372bb6826bd81d3542a419d6");
    free(p);
}

/* What the library said through vt_log, one line per message (progress bars included). */
static char g_log[16384];
static void capture_log(vt_log_level level, const char *text, void *user) {
    (void)user;
    size_t k = strlen(g_log);
    snprintf(g_log + k, sizeof g_log - k, "%s %s%s", level >= VT_LOG_WARN ? "W" : "I", text,
             text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
}

static void test_whole_then_nothing(void **state) {
    (void)state;
    start_server(NULL);
    char url[256];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, md5_good, false}; /* not quiet: the plain progress lines run too */
    g_log[0] = 0;
    vt_log_set(capture_log, NULL);
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    vt_log_set(NULL, NULL);
    if (s != VT_OK) print_error("%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    /* progress and notes come through vt_log (the library prints nothing itself) */
    assert_non_null(strstr(g_log, "I downloading http://127.0.0.1:"));
    assert_non_null(strstr(g_log, "I MD5 ok ("));
    assert_non_null(strstr(g_log, "I extracting "));
    assert_int_equal(log_lines("GET /cifar-100-binary.tar.gz range=-"), 1);
    assert_dataset_ready();
    char *part = fx_join(data_dir, "cifar-100-binary.tar.gz.part");
    assert_false(fx_exists(part));
    free(part);
    /* Second run: finds the data and makes no request, even with the host gone. */
    char dead[128];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/", closed_port());
    o.mirror = dead;
    o.quiet = true;
    g_log[0] = 0;
    vt_log_set(capture_log, NULL);
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_OK);
    vt_log_set(NULL, NULL);
    assert_int_equal(log_lines(NULL), 1);
    assert_string_equal(g_log, ""); /* quiet: not a word */
}

static void test_resume_after_cut(void **state) {
    (void)state;
    start_server("--cut-first");
    char url[256];
    mirror_url(url, sizeof url, "cifar-100-binary.tar.gz"); /* a full URL works too */
    vt_download_opts o = {url, md5_good, true};
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    if (s != VT_OK) print_error("%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_int_equal(log_lines("range=-"), 1);
    assert_int_equal(log_lines("range=bytes="), 1); /* the second transfer asked for the rest only */
    assert_dataset_ready();
}

static void test_resume_existing_part(void **state) {
    (void)state;
    start_server(NULL);
    /* A .part left by an earlier run: the first 1000 bytes. */
    mkdir(data_dir, 0755);
    char *gz = fx_join(served, "cifar-100-binary.tar.gz");
    FILE *f = fopen(gz, "rb");
    uint8_t head[1000];
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    char *part = fx_join(data_dir, "cifar-100-binary.tar.gz.part");
    fx_write(part, head, sizeof head);
    char url[256];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, md5_good, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_OK);
    assert_int_equal(log_lines("range=bytes=1000-"), 1);
    assert_int_equal(log_lines(NULL), 1);
    assert_false(fx_exists(part));
    assert_dataset_ready();
    free(part);
    free(gz);
}

static void test_server_without_range(void **state) {
    (void)state;
    start_server("--no-range");
    mkdir(data_dir, 0755);
    char *part = fx_join(data_dir, "cifar-100-binary.tar.gz.part");
    fx_write(part, "stale bytes that must not stay in front", 39);
    char url[256];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, md5_good, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_OK);
    assert_dataset_ready();
    free(part);
}

static void test_wrong_checksum(void **state) {
    (void)state;
    start_server(NULL);
    char url[256];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, "0123456789abcdef0123456789abcdef", true};
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    assert_int_equal(s, VT_ERR_CHECKSUM);
    assert_non_null(strstr(vt_last_error(), md5_good));
    assert_non_null(strstr(vt_last_error(), "removed"));
    assert_nothing_left();
    o.md5 = "not-hex";
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_ERR_INVALID_ARG);
}

static void test_404(void **state) {
    (void)state;
    start_server(NULL);
    char url[256];
    mirror_url(url, sizeof url, "nothing-here.tar.gz");
    vt_download_opts o = {url, md5_good, true};
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    assert_int_equal(s, VT_ERR_NETWORK);
    assert_non_null(strstr(vt_last_error(), "HTTP 404"));
    assert_non_null(strstr(vt_last_error(), "nothing-here.tar.gz"));
    assert_nothing_left();
}

static void test_refused_then_by_hand(void **state) {
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", closed_port());
    vt_download_opts o = {url, md5_good, true};
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    assert_int_equal(s, VT_ERR_NETWORK);
    assert_non_null(strstr(vt_last_error(), "cannot reach 127.0.0.1"));
    assert_non_null(strstr(vt_last_error(), "place it in"));
    assert_non_null(strstr(vt_last_error(), "cifar-100-binary.tar.gz"));
    assert_non_null(strstr(vt_last_error(), data_dir));
    assert_nothing_left();
    /* A name that cannot resolve (.invalid is reserved for that) is a network error too. */
    vt_download_opts dns = {"http://vtrain-test.invalid/", md5_good, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &dns), VT_ERR_NETWORK);
    assert_non_null(strstr(vt_last_error(), "cifar-100-binary.tar.gz"));
    assert_nothing_left();
    /* The $VTRAIN_MIRROR route fails the same way. */
    setenv("VTRAIN_MIRROR", url, 1);
    vt_download_opts env_o = {NULL, md5_good, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &env_o), VT_ERR_NETWORK);
    unsetenv("VTRAIN_MIRROR");
    /* Placed by hand: found, verified, extracted; no network needed. */
    char *src = fx_join(served, "cifar-100-binary.tar.gz");
    char *dst = fx_join(data_dir, "cifar-100-binary.tar.gz");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, dst);
    assert_int_equal(system(cmd), 0);
    /* Before extraction the trainer can already use the archive. */
    char path[1024];
    assert_int_equal(vt_dataset_find_or_explain("cifar100", data_dir, path, sizeof path), VT_OK);
    assert_string_equal(path, dst);
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_OK);
    assert_dataset_ready();
    free(src);
    free(dst);
}

static void test_hand_placed_bad_checksum(void **state) {
    (void)state;
    mkdir(data_dir, 0755);
    char *dst = fx_join(data_dir, "cifar-100-binary.tar.gz");
    fx_write(dst, "not the archive", 15);
    vt_download_opts o = {"http://127.0.0.1:9/", md5_good, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_ERR_CHECKSUM);
    assert_non_null(strstr(vt_last_error(), "remove or replace it"));
    assert_true(fx_exists(dst)); /* the user's file is theirs to remove */
    free(dst);
}

static void test_corrupt_archive(void **state) {
    (void)state;
    /* The served file passes its (overridden) checksum but is not a readable archive. */
    char *gz = fx_join(served, "cifar-100-binary.tar.gz");
    FILE *f = fopen(gz, "rb");
    uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = n / 4; i < n; i++) buf[i] ^= 0xa5;
    fx_write(gz, buf, n);
    char md5[33];
    vt_md5_mem(buf, n, md5);
    start_server(NULL);
    char url[256];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, md5, true};
    vt_status s = vt_download_dataset("cifar100", data_dir, &o);
    assert_int_equal(s, VT_ERR_FORMAT);
    assert_non_null(strstr(vt_last_error(), "cifar-100-binary.tar.gz"));
    assert_nothing_left();
    free(gz);
}

/* Hand-placed archives with members that would escape the folder. */
static void test_unsafe_archives(void **state) {
    (void)state;
    mkdir(data_dir, 0755);
    char *dst = fx_join(data_dir, "cifar-100-binary.tar.gz");
    size_t len;
    uint8_t *tr = fx_cifar_records(2, 3, 0, &len);
    const fx_member bad[3][3] = {
        {{"cifar-100-binary/", NULL, 0, NULL},
         {"cifar-100-binary/train.bin", tr, len, NULL},
         {"cifar-100-binary/../../evil.txt", "x", 1, NULL}},
        {{"cifar-100-binary/", NULL, 0, NULL},
         {"cifar-100-binary/train.bin", tr, len, NULL},
         {"/tmp/vt-evil-absolute.txt", "x", 1, NULL}},
        {{"cifar-100-binary/", NULL, 0, NULL},
         {"cifar-100-binary/train.bin", tr, len, NULL},
         {"cifar-100-binary/test.bin", NULL, 0, "/etc/passwd"}},
    };
    const char *why[3] = {"'..'", "absolute path", "is a link"};
    for (int k = 0; k < 3; k++) {
        fx_write_targz(dst, bad[k], 3);
        char md5[33];
        assert_int_equal(vt_md5_file(dst, md5), VT_OK);
        vt_download_opts o = {"http://127.0.0.1:9/", md5, true};
        vt_status s = vt_download_dataset("cifar100", data_dir, &o);
        if (s != VT_ERR_FORMAT || !strstr(vt_last_error(), why[k])) print_error("case %d: %s\n", k, vt_last_error());
        assert_int_equal(s, VT_ERR_FORMAT);
        assert_non_null(strstr(vt_last_error(), why[k]));
        char *evil = fx_join(tmp, "evil.txt");
        assert_false(fx_exists(evil));
        free(evil);
        char *folder = fx_join(data_dir, "cifar-100-binary");
        assert_false(fx_exists(folder));
        free(folder);
    }
    assert_false(fx_exists("/tmp/vt-evil-absolute.txt"));
    /* A release without test.bin is refused as a whole. */
    const fx_member partial[2] = {{"cifar-100-binary/", NULL, 0, NULL}, {"cifar-100-binary/train.bin", tr, len, NULL}};
    fx_write_targz(dst, partial, 2);
    char md5[33];
    vt_md5_file(dst, md5);
    vt_download_opts o = {"http://127.0.0.1:9/", md5, true};
    assert_int_equal(vt_download_dataset("cifar100", data_dir, &o), VT_ERR_FORMAT);
    assert_non_null(strstr(vt_last_error(), "cifar-100-binary/test.bin"));
    char *folder = fx_join(data_dir, "cifar-100-binary");
    assert_false(fx_exists(folder));
    free(folder);
    assert_int_equal(vt_download_dataset("imagenet", data_dir, &o), VT_ERR_INVALID_ARG);
    free(tr);
    free(dst);
}

/* vt_download_dataset in a child under an alarm (a hang fails the test instead of stopping it);
 * returns the child's status (-1 when killed), its message in msg and the wall time. */
static int download_in_child(const vt_download_opts *o, char *msg, size_t msg_n, double *secs) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        alarm(60);
        vt_status s = vt_download_dataset("cifar100", data_dir, o);
        const char *m = vt_last_error();
        if (write(pfd[1], m, strlen(m)) < 0) _exit(120);
        _exit((int)s);
    }
    close(pfd[1]);
    size_t got = 0;
    ssize_t k;
    while ((k = read(pfd[0], msg + got, msg_n - 1 - got)) > 0) got += (size_t)k;
    msg[got] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A mirror that streams forever without announcing a length is cut off at a hard cap (far over the
 * official archive), the partial file removed, in bounded time. */
static void test_endless_mirror(void **state) {
    (void)state;
    start_server("--endless");
    char url[256], msg[1024];
    mirror_url(url, sizeof url, "");
    vt_download_opts o = {url, md5_good, true};
    double secs;
    int code = download_in_child(&o, msg, sizeof msg, &secs);
    printf("  endless mirror: %.2f s: %s\n", secs, msg);
    if (code < 0) fail_msg("the download was killed after %.0f s: it did not stop", secs);
    assert_int_equal(code, VT_ERR_NETWORK);
    assert_non_null(strstr(msg, "sent more than"));
    assert_nothing_left();
}

/* A FIFO where the archive or its .part would be is refused, not opened (which blocks forever). */
static void test_fifo_archive(void **state) {
    (void)state;
    mkdir(data_dir, 0755);
    char *gz = fx_join(data_dir, "cifar-100-binary.tar.gz"), *part = fx_join(data_dir, "cifar-100-binary.tar.gz.part");
    assert_int_equal(mkfifo(gz, 0644), 0);
    vt_download_opts o = {"http://127.0.0.1:9/", md5_good, true};
    char msg[1024];
    double secs;
    int code = download_in_child(&o, msg, sizeof msg, &secs);
    printf("  FIFO as the archive: %.2f s: %s\n", secs, msg);
    if (code < 0) fail_msg("killed after %.0f s: the FIFO was opened", secs);
    assert_int_equal(code, VT_ERR_IO);
    assert_non_null(strstr(msg, "not a regular file"));
    remove(gz);
    assert_int_equal(mkfifo(part, 0644), 0);
    code = download_in_child(&o, msg, sizeof msg, &secs);
    printf("  FIFO as the .part: %.2f s: %s\n", secs, msg);
    if (code < 0) fail_msg("killed after %.0f s: the FIFO was opened", secs);
    assert_int_equal(code, VT_ERR_IO);
    assert_non_null(strstr(msg, "not a regular file"));
    remove(part);
    free(gz);
    free(part);
}

/* A file:// mirror has no host: the message names the path instead of an empty host. */
static void test_file_mirror_message(void **state) {
    (void)state;
    char url[1200];
    snprintf(url, sizeof url, "file://%s/nowhere/", tmp);
    vt_download_opts o = {url, md5_good, true};
    assert_int_not_equal(vt_download_dataset("cifar100", data_dir, &o), VT_OK);
    printf("  file:// mirror: %s\n", vt_last_error());
    assert_null(strstr(vt_last_error(), "from  "));
    assert_null(strstr(vt_last_error(), "reach  "));
    char where[1100];
    snprintf(where, sizeof where, "from %s/nowhere/cifar-100-binary.tar.gz", tmp);
    assert_non_null(strstr(vt_last_error(), where));
}

int main(void) {
    have_python = python_present();
    /* A proxy from the environment must not take the loopback traffic. */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_md5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_then_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_existing_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_without_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_by_hand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hand_placed_bad_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsafe_archives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endless_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mirror_message, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
