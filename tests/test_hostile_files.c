/* Hostile files under 10 MiB must be refused or loaded within 2 s and 512 MiB: each is built here,
 * then read in a child process (fork) under a wall-clock alarm, its peak RSS taken from wait4(). */
#define _DEFAULT_SOURCE
#include "test_dataset_fixtures.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <zlib.h>
#include <cmocka.h>

#include "vt/checkpoint.h"
#include "vt/dataset.h"
#include "vt/weights.h"

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

/* The promise, and what a sanitizer build can keep of it: ASan reserves terabytes of address space
 * (no RLIMIT_AS), its shadow memory and quarantine inflate RSS, and it runs several times slower. */
#define LIMIT_SECONDS (VT_UNDER_ASAN ? 30.0 : 2.0)
#define LIMIT_RSS_KB  (512L * 1024)
#define LIMIT_AS      ((rlim_t)1 << 30) /* a guard for the machine: an allocation past it fails (and is OOM) */

static char *tmp;

static int setup(void **state) {
    (void)state;
    tmp = fx_tmpdir();
    return tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fx_rmtree(tmp);
    free(tmp);
    return 0;
}

/* ---- the child runner ---------------------------------------------------------------------- */

typedef vt_status (*load_fn)(const char *path);

typedef struct outcome {
    bool exited;
    int code; /* the vt_status the load returned */
    int sig;
    double seconds, cpu_seconds; /* wall, and the child's user + system CPU */
    long rss_kb;
    char msg[1024]; /* its message */
} outcome;

/* Every load runs in a child, never here: an OpenMP region in this process would leave the
 * children it forks afterwards without their worker threads (libgomp then hangs). */
static outcome run_limited(load_fn fn, const char *path, int alarm_s) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        if (!VT_UNDER_ASAN) {
            struct rlimit rl = {LIMIT_AS, LIMIT_AS};
            setrlimit(RLIMIT_AS, &rl);
        }
        alarm((unsigned)alarm_s);
        vt_status s = fn(path);
        const char *m = s == VT_OK ? "" : vt_last_error();
        if (write(pfd[1], m, strlen(m)) < 0) _exit(120);
        _exit((int)s);
    }
    close(pfd[1]);
    outcome o;
    memset(&o, 0, sizeof o);
    size_t got = 0;
    for (;;) {
        ssize_t k = read(pfd[0], o.msg + got, sizeof o.msg - 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(pfd[0]);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.exited = WIFEXITED(st);
    o.code = o.exited ? WEXITSTATUS(st) : -1;
    o.sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    o.seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    o.cpu_seconds = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    o.rss_kb = ru.ru_maxrss;
    return o;
}

/* Refused (any status but out-of-memory, which would mean the limit did the refusing) or loaded,
 * in time and memory. want_ok: 1 must load, 0 must be refused, -1 either; needle: in the refusal. */
static void expect_bounded(const char *what, load_fn fn, const char *path, int want_ok, const char *needle) {
    printf("  %s\n", what);
    outcome o = run_limited(fn, path, VT_UNDER_ASAN ? 60 : 10);
    printf("    -> %s%s%s\n", o.exited ? vt_status_name((vt_status)o.code) : "killed", o.msg[0] ? ": " : "", o.msg);
    printf("    %.2f s, peak RSS %ld MiB%s\n", o.seconds, o.rss_kb / 1024,
           VT_UNDER_ASAN ? " (ASan build: RSS not checked, time limit 30 s)" : "");
    if (!o.exited) fail_msg("%s: killed by signal %d after %.1f s (hung or crashed)", what, o.sig, o.seconds);
    if (o.code == VT_ERR_OOM)
        fail_msg("%s: ran out of memory under the %llu MiB address-space guard", what,
                 (unsigned long long)(LIMIT_AS >> 20));
    if (want_ok == 1 && o.code != VT_OK)
        fail_msg("%s: refused (%s), must load", what, vt_status_name((vt_status)o.code));
    if (want_ok == 0 && o.code == VT_OK) fail_msg("%s: loaded, must be refused", what);
    /* the limit is on the loader's own CPU time: wall time on a loaded machine measures the neighbours
     * (the alarm above still ends a loader that hangs) */
    if (o.cpu_seconds > LIMIT_SECONDS)
        fail_msg("%s: took %.2f s of CPU (%.2f s wall), limit %.0f s", what, o.cpu_seconds, o.seconds, LIMIT_SECONDS);
    if (!VT_UNDER_ASAN && o.rss_kb > LIMIT_RSS_KB)
        fail_msg("%s: peak RSS %ld MiB, limit %ld MiB", what, o.rss_kb / 1024, LIMIT_RSS_KB / 1024);
    if (needle && !strstr(o.msg, needle)) fail_msg("%s: the message lacks '%s'", what, needle);
}

static vt_status load_weights(const char *path) {
    vt_tensor_dict d;
    vt_status s = vt_weights_load(path, &d);
    if (s == VT_OK) vt_dict_free(&d);
    return s;
}

static vt_status load_ckpt(const char *path) {
    vt_tensor_dict d;
    vt_status s = vt_ckpt_read(path, &d);
    if (s == VT_OK) vt_dict_free(&d);
    return s;
}

static vt_status find_cifar100(const char *dir) {
    char path[1024];
    return vt_dataset_find_or_explain("cifar100", dir, path, sizeof path);
}

static vt_status load_train(const char *path) {
    vt_dataset d;
    vt_status s = vt_dataset_load(path, "train", NULL, &d);
    if (s == VT_OK) vt_dataset_free(&d);
    return s;
}

/* ---- byte builders ------------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put1(bytes *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}
static void put_le(bytes *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) put1(b, (unsigned)(v >> (8 * i)) & 0xff);
}
static void put_be32(bytes *b, uint32_t v) {
    for (int i = 3; i >= 0; i--) put1(b, (v >> (8 * i)) & 0xff);
}
static void put_str(bytes *b, const char *s) { put(b, s, strlen(s)); }

static void spit(const char *path, const bytes *b) { assert_int_equal(fx_write(path, b->p, b->n), 0); }

/* A stored (uncompressed) ZIP archive as torch.save writes it. */
typedef struct zip_rec {
    const char *name;
    const unsigned char *data;
    size_t n;
} zip_rec;

static void write_zip(const char *path, const zip_rec *r, int count) {
    bytes z = {0}, cd = {0};
    for (int i = 0; i < count; i++) {
        uint32_t crc = (uint32_t)crc32(0, r[i].data, (uInt)r[i].n);
        uint64_t off = z.n;
        size_t nl = strlen(r[i].name);
        put_le(&z, 0x04034b50u, 4);
        put_le(&z, 20, 2), put_le(&z, 0, 2), put_le(&z, 0, 2), put_le(&z, 0, 4);
        put_le(&z, crc, 4), put_le(&z, r[i].n, 4), put_le(&z, r[i].n, 4);
        put_le(&z, nl, 2), put_le(&z, 0, 2);
        put(&z, r[i].name, nl);
        put(&z, r[i].data, r[i].n);
        put_le(&cd, 0x02014b50u, 4);
        put_le(&cd, 20, 2), put_le(&cd, 20, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 4);
        put_le(&cd, crc, 4), put_le(&cd, r[i].n, 4), put_le(&cd, r[i].n, 4);
        put_le(&cd, nl, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2), put_le(&cd, 0, 2);
        put_le(&cd, 0, 4), put_le(&cd, off, 4);
        put(&cd, r[i].name, nl);
    }
    uint64_t cd_off = z.n;
    put(&z, cd.p, cd.n);
    put_le(&z, 0x06054b50u, 4);
    put_le(&z, 0, 2), put_le(&z, 0, 2), put_le(&z, (uint64_t)count, 2), put_le(&z, (uint64_t)count, 2);
    put_le(&z, cd.n, 4), put_le(&z, cd_off, 4), put_le(&z, 0, 2);
    spit(path, &z);
    free(z.p);
    free(cd.p);
}

static void pk_str(bytes *b, const char *s) {
    put1(b, 0x8c); /* SHORT_BINUNICODE */
    put1(b, (unsigned)strlen(s));
    put_str(b, s);
}
static void pk_int(bytes *b, uint32_t v) {
    put1(b, 'J'); /* BININT */
    put_le(b, v, 4);
}

/* A torch.save() pickle of n tensors "t<i>" (ndim 2, given size and stride), every one a view of
 * storage "0" of `numel` floats. The storage is memoised once and fetched with BINGET after. */
static void pickle_views(bytes *b, int n, uint32_t numel, const uint32_t size[2], const uint32_t stride[2]) {
    put1(b, 0x80), put1(b, 2); /* PROTO 2 */
    put1(b, '}');              /* EMPTY_DICT */
    put_str(b, "ctorch._utils\n_rebuild_tensor_v2\n");
    put1(b, 'q'), put1(b, 0); /* BINPUT 0 */
    put1(b, '0');             /* POP */
    put_str(b, "ccollections\nOrderedDict\n");
    put1(b, 'q'), put1(b, 1);
    put1(b, '0');
    put1(b, '('); /* MARK for SETITEMS */
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d", i);
        pk_str(b, key);
        put1(b, 'h'), put1(b, 0); /* _rebuild_tensor_v2 */
        put1(b, '(');             /* MARK: its arguments */
        if (i == 0) {
            put1(b, '(');
            pk_str(b, "storage");
            put_str(b, "ctorch\nFloatStorage\n");
            pk_str(b, "0");
            pk_str(b, "cpu");
            pk_int(b, numel);
            put1(b, 't');
            put1(b, 'Q'); /* BINPERSID */
            put1(b, 'q'), put1(b, 2);
        } else {
            put1(b, 'h'), put1(b, 2);
        }
        put1(b, 'K'), put1(b, 0); /* storage offset */
        pk_int(b, size[0]), pk_int(b, size[1]), put1(b, 0x86);
        pk_int(b, stride[0]), pk_int(b, stride[1]), put1(b, 0x86);
        put1(b, 0x89); /* requires_grad False */
        put1(b, 'h'), put1(b, 1), put1(b, ')'), put1(b, 'R');
        put1(b, 't'), put1(b, 'R');
    }
    put1(b, 'u'); /* SETITEMS */
    put1(b, '.');
}

static void write_pth(const char *path, const bytes *pkl, uint32_t numel) {
    float *data = calloc(numel ? numel : 1, sizeof *data);
    assert_non_null(data);
    zip_rec r[3] = {{"archive/data.pkl", pkl->p, pkl->n},
                    {"archive/byteorder", (const unsigned char *)"little", 6},
                    {"archive/data/0", (const unsigned char *)data, numel * sizeof *data}};
    write_zip(path, r, 3);
    free(data);
}

/* n one-float tensors, each in its own storage "<i>" (one zip entry each). */
static void write_pth_own_storages(const char *path, int n) {
    bytes b = {0};
    put1(&b, 0x80), put1(&b, 2), put1(&b, '}');
    put_str(&b, "ctorch._utils\n_rebuild_tensor_v2\n");
    put1(&b, 'q'), put1(&b, 0), put1(&b, '0');
    put1(&b, '(');
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "t%d", i);
        pk_str(&b, key);
        put1(&b, 'h'), put1(&b, 0), put1(&b, '('), put1(&b, '(');
        pk_str(&b, "storage");
        put_str(&b, "ctorch\nFloatStorage\n");
        snprintf(key, sizeof key, "%d", i);
        pk_str(&b, key);
        pk_str(&b, "cpu");
        put1(&b, 'K'), put1(&b, 1), put1(&b, 't'), put1(&b, 'Q');
        put1(&b, 'K'), put1(&b, 0);
        put1(&b, 'K'), put1(&b, 1), put1(&b, 0x85), put1(&b, 'K'), put1(&b, 1), put1(&b, 0x85);
        put1(&b, 0x89), put1(&b, ')');
        put1(&b, 't'), put1(&b, 'R');
    }
    put1(&b, 'u'), put1(&b, '.');
    zip_rec *r = calloc((size_t)n + 1, sizeof *r);
    char(*names)[32] = calloc((size_t)n, sizeof *names);
    static const float one = 1.0f;
    assert_true(r && names);
    r[0] = (zip_rec){"archive/data.pkl", b.p, b.n};
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "archive/data/%d", i);
        r[i + 1] = (zip_rec){names[i], (const unsigned char *)&one, sizeof one};
    }
    write_zip(path, r, n + 1);
    free(names);
    free(r);
    free(b.p);
}

static char *path_of(const char *name) { return fx_join(tmp, name); }

/* ---- weights ------------------------------------------------------------------------------- */

/* A few hundred bytes: one float of storage viewed as [32768, 16384] with stride 0 (2 GiB as f32). */
static void test_pth_stride0_view(void **state) {
    (void)state;
    char *p = path_of("stride0.pth");
    bytes pkl = {0};
    pickle_views(&pkl, 1, 1, (const uint32_t[2]){32768, 16384}, (const uint32_t[2]){0, 0});
    write_pth(p, &pkl, 1);
    free(pkl.p);
    expect_bounded("stride-0 view [32768,16384] of one float (.pth)", load_weights, p, 0,
                   "stride-0 or overlapping view");
    free(p);
}

/* Overlapping views: many tensors of 1 MiB each over one 1 MiB storage. */
static void test_pth_repeated_views(void **state) {
    (void)state;
    char *p = path_of("repeat.pth");
    bytes pkl = {0};
    pickle_views(&pkl, 200, 1 << 18, (const uint32_t[2]){512, 512}, (const uint32_t[2]){512, 1});
    write_pth(p, &pkl, 1 << 18);
    free(pkl.p);
    expect_bounded("200 views of one 1 MiB storage (.pth)", load_weights, p, 0, NULL);
    free(p);
}

/* A 9 MB pickle of 4.5 million None values pushed and popped: every value the reader builds lives to
 * the end, so their count is capped (and each is small). */
static void test_pth_many_values(void **state) {
    (void)state;
    char *p = path_of("values.pth");
    bytes pkl = {0};
    put1(&pkl, 0x80), put1(&pkl, 2), put1(&pkl, '}');
    for (int i = 0; i < 4500000; i++) put(&pkl, "N0", 2);
    put1(&pkl, '.');
    write_pth(p, &pkl, 1);
    free(pkl.p);
    expect_bounded("4.5 million pickle values (.pth)", load_weights, p, 0, "more than any state_dict holds");
    free(p);
}

/* 65,536 distinct names: the duplicate check and the storage lookup must not be quadratic. */
static void test_pth_many_names(void **state) {
    (void)state;
    char *p = path_of("names.pth");
    bytes pkl = {0};
    pickle_views(&pkl, 65536, 1, (const uint32_t[2]){1, 1}, (const uint32_t[2]){1, 1});
    write_pth(p, &pkl, 1);
    free(pkl.p);
    expect_bounded("65,536 tensor names (.pth)", load_weights, p, 1, NULL);
    /* and 40,000 storages, one zip entry each, looked up once per tensor */
    write_pth_own_storages(p, 40000);
    expect_bounded("40,000 tensors in 40,000 storages (.pth)", load_weights, p, 1, NULL);
    free(p);
}

/* n empty tensors "t00000"...; with dup_last the last one takes the first one's name. */
static void write_st_names(const char *path, int n, bool dup_last) {
    bytes h = {0}, f = {0};
    put1(&h, '{');
    for (int i = 0; i < n; i++) {
        char e[128];
        snprintf(e, sizeof e, "%s\"t%05d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}", i ? "," : "",
                 dup_last && i == n - 1 ? 0 : i);
        put_str(&h, e);
    }
    put1(&h, '}');
    put_le(&f, h.n, 8);
    put(&f, h.p, h.n);
    spit(path, &f);
    free(h.p);
    free(f.p);
}

static void test_safetensors_many_names(void **state) {
    (void)state;
    char *p = path_of("names.safetensors");
    write_st_names(p, 65536, false);
    expect_bounded("65,536 tensor names (.safetensors)", load_weights, p, 1, NULL);
    write_st_names(p, 65536, true);
    expect_bounded("65,536 tensor names, the last a duplicate (.safetensors)", load_weights, p, 0,
                   "duplicate tensor name 't00000'");
    free(p);
}

/* A header that is one long array of zeros: cJSON would spend ~40 bytes of memory per byte. */
static void write_zeros_header(const char *path, size_t header_bytes) {
    size_t n = 8 + header_bytes;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)header_bytes >> (8 * i));
    memcpy(b + 8, "{\"x\":[", 6);
    for (size_t i = 14; i + 2 < n; i += 2) memcpy(b + i, "0,", 2);
    b[n - 3] = '0'; /* header_bytes is even: the pattern ends on a comma here */
    memcpy(b + n - 2, "]}", 2);
    assert_int_equal(fx_write(path, b, n), 0);
    free(b);
}

static void test_safetensors_huge_headers(void **state) {
    (void)state;
    char *p = path_of("header.safetensors");
    write_zeros_header(p, (size_t)9 << 20);
    expect_bounded("9 MiB safetensors header of zeros", load_weights, p, 0, NULL);
    write_zeros_header(p, (size_t)100 << 20);
    expect_bounded("100 MiB safetensors header of zeros", load_weights, p, 0, NULL);
    /* a header length past the end of the file says so */
    bytes f = {0};
    put_le(&f, 1000, 8);
    put_str(&f, "{}");
    spit(p, &f);
    free(f.p);
    expect_bounded("safetensors header length past the end of the file", load_weights, p, 0,
                   "header of 1000 bytes but the file has 10 bytes");
    free(p);
}

/* A checkpoint of 65,536 one-float tensors (the dict is filled directly: vt_dict_add checks each
 * name against all before it). */
static void test_ckpt_many_names(void **state) {
    (void)state;
    char *p = path_of("names.vtc");
    vt_tensor_dict d = {0};
    d.n = d.cap = 65536;
    d.items = calloc(d.n, sizeof *d.items);
    assert_non_null(d.items);
    for (size_t i = 0; i < d.n; i++) {
        vt_host_tensor *t = &d.items[i];
        snprintf(t->name, sizeof t->name, "layer%zu.weight", i);
        t->dtype = VT_F32;
        t->ndim = 1;
        for (int k = 0; k < VT_MAX_DIMS; k++) t->shape[k] = 1;
        t->data = calloc(1, 4);
        t->nbytes = 4;
    }
    assert_int_equal(vt_ckpt_write(p, &d), VT_OK);
    expect_bounded("65,536 tensor names (.vtc)", load_ckpt, p, 1, NULL);
    snprintf(d.items[d.n - 1].name, sizeof d.items[0].name, "layer7.weight");
    assert_int_equal(vt_ckpt_write(p, &d), VT_OK);
    expect_bounded("two tensors of one name (.vtc)", load_ckpt, p, 0, "duplicate tensor name 'layer7.weight'");
    vt_dict_free(&d);
    free(p);
}

/* Checkpoint metadata of 9 MiB that is one array of zeros: the reader parses it once to validate
 * it (cJSON spends about 40 bytes per byte of such text). */
static void test_ckpt_zeros_meta(void **state) {
    (void)state;
    char *p = path_of("meta.vtc");
    size_t n = (size_t)9 << 20;
    char *meta = malloc(n + 1);
    assert_non_null(meta);
    memcpy(meta, "{\"x\":[", 6);
    for (size_t i = 6; i + 2 < n; i += 2) memcpy(meta + i, "0,", 2);
    meta[n - 3] = '0';
    memcpy(meta + n - 2, "]}", 3);
    vt_tensor_dict d = {0};
    assert_int_equal(vt_dict_set_meta(&d, meta), VT_OK);
    free(meta);
    assert_int_equal(vt_ckpt_write(p, &d), VT_OK);
    vt_dict_free(&d);
    expect_bounded("9 MiB of checkpoint metadata that is an array of zeros", load_ckpt, p, -1, NULL);
    free(p);
}

/* ---- images -------------------------------------------------------------------------------- */

static void png_chunk(bytes *b, const char *type, const unsigned char *data, size_t n) {
    put_be32(b, (uint32_t)n);
    size_t at = b->n;
    put(b, type, 4);
    if (n) put(b, data, n);
    put_be32(b, (uint32_t)crc32(0, b->p + at, (uInt)(n + 4)));
}

/* A 1-bit grey PNG of w x h zeros: a couple of KiB that decode to 3*w*h bytes of RGB. */
static void write_png_1bit(const char *path, uint32_t w, uint32_t h) {
    bytes f = {0}, ihdr = {0};
    put(&f, "\x89PNG\r\n\x1a\n", 8);
    put_be32(&ihdr, w), put_be32(&ihdr, h);
    put1(&ihdr, 1), put1(&ihdr, 0), put1(&ihdr, 0), put1(&ihdr, 0), put1(&ihdr, 0);
    png_chunk(&f, "IHDR", ihdr.p, ihdr.n);
    size_t raw_n = (size_t)h * (1 + (w + 7) / 8);
    unsigned char *raw = calloc(raw_n, 1);
    uLongf zn = compressBound((uLong)raw_n);
    unsigned char *z = malloc(zn);
    assert_true(raw && z);
    assert_int_equal(compress2(z, &zn, raw, (uLong)raw_n, 9), Z_OK);
    png_chunk(&f, "IDAT", z, zn);
    png_chunk(&f, "IEND", NULL, 0);
    spit(path, &f);
    free(raw);
    free(z);
    free(f.p);
    free(ihdr.p);
}

static void test_png_huge_images(void **state) {
    (void)state;
    char *root = path_of("pngs"), *dir = path_of("pngs/train/a");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *first = fx_join(dir, "00.png");
    write_png_1bit(first, 4096, 4096);
    for (int i = 1; i < 16; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/%02d.png'", first, dir, i);
        assert_int_equal(system(cmd), 0);
    }
    expect_bounded("16 tiny 1-bit 4096x4096 PNGs", load_train, root, 0, "far larger than their files");
    /* one image of another size is refused from its header, before it is decoded */
    write_png_1bit(first, 32, 32);
    for (int i = 1; i < 15; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/%02d.png'", first, dir, i);
        assert_int_equal(system(cmd), 0);
    }
    char *odd = fx_join(dir, "15.png");
    write_png_1bit(odd, 4096, 4096);
    expect_bounded("15 PNGs of 32x32 and one of 4096x4096", load_train, root, 0,
                   "is 4096x4096, but the first image fixed the size at 32x32");
    free(odd);
    free(first);
    free(dir);
    free(root);
}

/* ---- archives ------------------------------------------------------------------------------ */

/* A .tar.gz with one member of `zeros` bytes of zeros (a gzip bomb: about 230:1 at level 1). */
static void write_bomb_targz(const char *path, const char *member, size_t zeros) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_filter_option(a, "gzip", "compression-level", "1");
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, member);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)zeros);
    archive_write_header(a, e);
    archive_entry_free(e);
    static const unsigned char block[1 << 16];
    for (size_t done = 0; done < zeros; done += sizeof block)
        archive_write_data(a, block, zeros - done < sizeof block ? zeros - done : sizeof block);
    archive_write_close(a);
    archive_write_free(a);
}

static void test_targz_bomb(void **state) {
    (void)state;
    char *p = path_of("cifar-100-binary.tar.gz");
    write_bomb_targz(p, "cifar-100-binary/train.bin", (size_t)3074 * 200000); /* 615 MB of black records */
    struct stat st;
    stat(p, &st);
    printf("  archive of %lld bytes\n", (long long)st.st_size);
    expect_bounded("a .tar.gz whose train.bin inflates to 615 MB", load_train, p, 0, "over the limit");
    /* a member that is skipped is inflated too (to reach the trailer): the limit holds there as well */
    write_bomb_targz(p, "cifar-100-binary/extra.bin", (size_t)300 << 20);
    stat(p, &st);
    printf("  archive of %lld bytes\n", (long long)st.st_size);
    expect_bounded("a .tar.gz with a skipped member of 300 MiB", load_train, p, 0, "decompression bomb");
    free(p);
}

/* ---- non-regular files ----------------------------------------------------------------------- */

static void make_fifo(const char *p) {
    remove(p);
    assert_int_equal(mkfifo(p, 0644), 0);
}

/* Opening a FIFO for reading blocks until a writer comes: every reader must refuse it unopened. */
static void test_fifos_and_folders(void **state) {
    (void)state;
    char *p = path_of("ckpt.vtc");
    make_fifo(p);
    expect_bounded("FIFO as a checkpoint", load_ckpt, p, 0, "not a regular file");
    expect_bounded("FIFO as weights", load_weights, p, 0, "not a regular file");
    remove(p);
    mkdir(p, 0755);
    expect_bounded("folder as a checkpoint", load_ckpt, p, 0, "is a folder");
    expect_bounded("folder as weights", load_weights, p, 0, "is a folder");
    free(p);

    /* CIFAR-100 folder whose train.bin is a FIFO, then a folder */
    fx_write_cifar100(tmp, 10, 10);
    char *c100 = path_of("cifar-100-binary"), *tb = path_of("cifar-100-binary/train.bin");
    make_fifo(tb);
    expect_bounded("FIFO as CIFAR-100 train.bin", load_train, c100, 0, "train.bin: not a regular file");
    remove(tb);
    mkdir(tb, 0755);
    expect_bounded("folder as CIFAR-100 train.bin", load_train, c100, 0, "train.bin: is a folder");
    rmdir(tb);
    /* both files non-regular: still found as CIFAR-100, and refused by name */
    char *te = path_of("cifar-100-binary/test.bin");
    make_fifo(te);
    mkdir(tb, 0755);
    expect_bounded("folder as train.bin, FIFO as test.bin", load_train, c100, 0, "train.bin: is a folder");

    /* CIFAR-10 data_batch_3.bin as a FIFO */
    fx_write_cifar10(tmp, 5, 5);
    char *c10 = path_of("cifar-10-batches-bin"), *b3 = path_of("cifar-10-batches-bin/data_batch_3.bin");
    make_fifo(b3);
    expect_bounded("FIFO as CIFAR-10 data_batch_3.bin", load_train, c10, 0, "data_batch_3.bin: not a regular file");

    /* the dataset path itself, and an archive path, as FIFOs */
    char *fd = path_of("data.tar.gz");
    make_fifo(fd);
    expect_bounded("FIFO as a .tar.gz dataset", load_train, fd, 0, "not a regular file");
    char *look = path_of("look"), *la = path_of("look/cifar-100-binary.tar.gz");
    mkdir(look, 0755);
    make_fifo(la);
    expect_bounded("FIFO where the CIFAR-100 archive is looked for", find_cifar100, look, 0,
                   "cifar-100-binary.tar.gz: not a regular file");
    free(la);
    free(look);

    /* an image folder with a FIFO among its images */
    char *img = path_of("imgs"), *cls = path_of("imgs/train/a");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", cls);
    assert_int_equal(system(cmd), 0);
    uint8_t *rgb = fx_rgb(4, 4, 1);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d.png", i);
        char *q = fx_join(cls, name);
        fx_write_png(q, 4, 4, 3, rgb);
        free(q);
    }
    free(rgb);
    char *fimg = fx_join(cls, "3.png");
    make_fifo(fimg);
    expect_bounded("FIFO among an image folder's PNGs", load_train, img, 0, "3.png: not a regular file");
    free(fimg);
    free(cls);
    free(img);
    free(fd);
    free(b3);
    free(c10);
    free(te);
    free(tb);
    free(c100);
}

int main(void) {
    if (VT_UNDER_ASAN)
        printf("ASan build: peak RSS is not checked and the time limit is %.0f s, not 2 s\n", LIMIT_SECONDS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pth_stride0_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pth_repeated_views, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pth_many_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pth_many_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safetensors_many_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safetensors_huge_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_many_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_zeros_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_huge_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targz_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifos_and_folders, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
