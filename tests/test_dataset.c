/* Dataset loading on synthetic data the test writes itself: CIFAR-100/10 binary (folders and
 * .tar.gz), PNG/JPEG image folders, format detection, and every kind of hostile input. */
#include "test_dataset_fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "vt/dataset.h"

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

static char *sub(const char *name) {
    char *p = fx_join(tmp, name);
    mkdir(p, 0755);
    return p;
}

/* A failed load leaves the dataset zeroed. */
static void assert_zeroed(const vt_dataset *d) {
    vt_dataset z;
    memset(&z, 0, sizeof z);
    assert_memory_equal(d, &z, sizeof z);
}

static void assert_error(vt_status got, vt_status want, const char *needle1, const char *needle2) {
    if (got != want || !strstr(vt_last_error(), needle1) || (needle2 && !strstr(vt_last_error(), needle2)))
        print_error("status %s (want %s), message: %s\n", vt_status_name(got), vt_status_name(want), vt_last_error());
    assert_int_equal(got, want);
    assert_non_null(strstr(vt_last_error(), needle1));
    if (needle2) assert_non_null(strstr(vt_last_error(), needle2));
}

static void check_cifar_records(const vt_dataset *d, int64_t first) {
    for (int64_t i = 0; i < d->n; i += 7)
        for (int j = 0; j < 3072; j += 101) assert_int_equal(d->images[i * 3072 + j], fx_pixel(first + i, j));
}

static void test_cifar100_folder(void **state) {
    (void)state;
    char *dir = sub("c100");
    fx_write_cifar100(dir, 250, 60);
    char *inner = fx_join(dir, "cifar-100-binary");
    const char *paths[2] = {dir, inner};
    for (int k = 0; k < 2; k++) {
        char fmt[32];
        assert_int_equal(vt_dataset_detect(paths[k], fmt, sizeof fmt), VT_OK);
        assert_string_equal(fmt, "cifar100-bin");
        vt_dataset d;
        assert_int_equal(vt_dataset_load(paths[k], "train", NULL, &d), VT_OK);
        assert_int_equal(d.n, 250);
        assert_int_equal(d.c, 3);
        assert_int_equal(d.h, 32);
        assert_int_equal(d.w, 32);
        assert_int_equal(d.n_classes, 100);
        assert_string_equal(d.format, "cifar100-bin");
        assert_string_equal(d.class_names[0], "fine_0");
        assert_string_equal(d.class_names[99], "fine_99");
        assert_string_equal(d.source, inner);
        for (int64_t i = 0; i < d.n; i++) assert_int_equal(d.labels[i], i % 100);
        check_cifar_records(&d, 0);
        vt_dataset_free(&d);
        assert_null(d.images);
    }
    vt_dataset_opts o = {VT_LABELS_COARSE, 0};
    vt_dataset d;
    assert_int_equal(vt_dataset_load(dir, "test", &o, &d), VT_OK);
    assert_int_equal(d.n, 60);
    assert_int_equal(d.n_classes, 20);
    assert_string_equal(d.class_names[19], "coarse_19");
    for (int64_t i = 0; i < d.n; i++) assert_int_equal(d.labels[i], (1000 + i) % 20);
    check_cifar_records(&d, 1000);
    vt_dataset_free(&d);
    o.labels = VT_LABELS_FINE;
    o.limit = 17;
    assert_int_equal(vt_dataset_load(dir, "train", &o, &d), VT_OK);
    assert_int_equal(d.n, 17);
    check_cifar_records(&d, 0);
    vt_dataset_free(&d);
    /* Without label name files the names are numbers. */
    char *names = fx_join(inner, "fine_label_names.txt");
    remove(names);
    assert_int_equal(vt_dataset_load(inner, "test", NULL, &d), VT_OK);
    assert_string_equal(d.class_names[42], "42");
    vt_dataset_free(&d);
    free(names);
    free(inner);
    free(dir);
}

static void test_cifar100_targz(void **state) {
    (void)state;
    char *dir = sub("c100gz");
    char *gz = fx_join(dir, "cifar-100-binary.tar.gz");
    fx_write_cifar100_targz(gz, 120, 40);
    const char *paths[2] = {gz, dir};
    for (int k = 0; k < 2; k++) {
        char fmt[32];
        assert_int_equal(vt_dataset_detect(paths[k], fmt, sizeof fmt), VT_OK);
        assert_string_equal(fmt, "cifar100-bin");
        vt_dataset d;
        assert_int_equal(vt_dataset_load(paths[k], "test", NULL, &d), VT_OK);
        assert_int_equal(d.n, 40);
        assert_string_equal(d.source, gz);
        assert_string_equal(d.class_names[5], "fine_5");
        for (int64_t i = 0; i < d.n; i++) assert_int_equal(d.labels[i], (1000 + i) % 100);
        check_cifar_records(&d, 1000);
        vt_dataset_free(&d);
    }
    vt_dataset d;
    /* Members written as "./cifar-100-binary/..." (tar run inside the folder's parent). */
    size_t l;
    uint8_t *te = fx_cifar_records(2, 4, 1000, &l);
    fx_member dot[] = {{"./cifar-100-binary/", NULL, 0, NULL}, {"./cifar-100-binary/test.bin", te, l, NULL}};
    char *dotgz = fx_join(dir, "dot.tar.gz");
    fx_write_targz(dotgz, dot, 2);
    assert_int_equal(vt_dataset_load(dotgz, "test", NULL, &d), VT_OK);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.class_names[7], "7"); /* no names file in this archive */
    check_cifar_records(&d, 1000);
    vt_dataset_free(&d);
    free(dotgz);
    free(te);
    vt_dataset_opts o = {VT_LABELS_COARSE, 100};
    assert_int_equal(vt_dataset_load(gz, "train", &o, &d), VT_OK);
    assert_int_equal(d.n, 100);
    assert_int_equal(d.n_classes, 20);
    for (int64_t i = 0; i < d.n; i++) assert_int_equal(d.labels[i], i % 20);
    check_cifar_records(&d, 0);
    vt_dataset_free(&d);
    free(gz);
    free(dir);
}

static void test_cifar10_folder(void **state) {
    (void)state;
    char *dir = sub("c10");
    fx_write_cifar10(dir, 30, 25);
    char fmt[32];
    assert_int_equal(vt_dataset_detect(dir, fmt, sizeof fmt), VT_OK);
    assert_string_equal(fmt, "cifar10-bin");
    vt_dataset d;
    assert_int_equal(vt_dataset_load(dir, "train", NULL, &d), VT_OK);
    assert_int_equal(d.n, 150); /* five batches in order */
    assert_int_equal(d.n_classes, 10);
    assert_string_equal(d.class_names[0], "airplane");
    assert_string_equal(d.class_names[9], "truck");
    for (int64_t i = 0; i < d.n; i++) assert_int_equal(d.labels[i], i % 10);
    check_cifar_records(&d, 0);
    vt_dataset_free(&d);
    vt_dataset_opts o = {VT_LABELS_FINE, 70}; /* crosses from batch 2 into batch 3 */
    assert_int_equal(vt_dataset_load(dir, "train", &o, &d), VT_OK);
    assert_int_equal(d.n, 70);
    check_cifar_records(&d, 0);
    vt_dataset_free(&d);
    assert_int_equal(vt_dataset_load(dir, "test", NULL, &d), VT_OK);
    assert_int_equal(d.n, 25);
    check_cifar_records(&d, 1000);
    assert_string_equal(d.format, "cifar10-bin");
    vt_dataset_free(&d);
    /* coarse labels exist only in CIFAR-100: refused here, never silently the fine ones */
    o.labels = VT_LABELS_COARSE;
    o.limit = 0;
    assert_int_equal(vt_dataset_load(dir, "train", &o, &d), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "coarse labels exist only in CIFAR-100"));
    free(dir);
}

static void test_detect_and_find(void **state) {
    (void)state;
    char *dir = sub("nothing");
    char fmt[32];
    assert_error(vt_dataset_detect(dir, fmt, sizeof fmt), VT_ERR_NOT_FOUND, "vtrain download cifar100",
                 "cifar-100-binary.tar.gz");
    char *missing = fx_join(tmp, "does-not-exist");
    assert_error(vt_dataset_detect(missing, fmt, sizeof fmt), VT_ERR_NOT_FOUND, "does not exist", "vtrain download");
    char path[512];
    /* The exact message the trainer shows. */
    char *nodata = sub("empty-data");
    assert_int_equal(vt_dataset_find_or_explain("cifar100", nodata, path, sizeof path), VT_ERR_NOT_FOUND);
    char want[1024];
    snprintf(
        want, sizeof want,
        "dataset cifar100 not found in %s/: run `vtrain download cifar100` (or place cifar-100-binary.tar.gz there)",
        nodata);
    assert_non_null(strstr(vt_last_error(), want));
    assert_error(vt_dataset_find_or_explain("cifar10", nodata, path, sizeof path), VT_ERR_NOT_FOUND,
                 "run `vtrain download cifar10` (or place cifar-10-binary.tar.gz there)", NULL);
    /* Found as folder, then as the archive alone. */
    fx_write_cifar10(nodata, 10, 10);
    assert_int_equal(vt_dataset_find_or_explain("cifar10", nodata, path, sizeof path), VT_OK);
    assert_non_null(strstr(path, "cifar-10-batches-bin"));
    char *gz = fx_join(nodata, "cifar-100-binary.tar.gz");
    fx_write_cifar100_targz(gz, 10, 10);
    assert_int_equal(vt_dataset_find_or_explain("cifar100", nodata, path, sizeof path), VT_OK);
    assert_string_equal(path, gz);
    /* A path is accepted as is. */
    assert_int_equal(vt_dataset_find_or_explain(gz, "data", path, sizeof path), VT_OK);
    assert_string_equal(path, gz);
    assert_error(vt_dataset_find_or_explain("imagenet", nodata, path, sizeof path), VT_ERR_NOT_FOUND, "imagenet", NULL);
    /* A damaged archive is reported as damaged, not as missing. */
    fx_write(gz, "this is not gzip", 16);
    assert_error(vt_dataset_find_or_explain("cifar100", nodata, path, sizeof path), VT_ERR_FORMAT, "cifar100 is in",
                 "cifar-100-binary.tar.gz: not a readable .tar.gz archive");
    free(gz);
    free(nodata);
    free(missing);
    free(dir);
}

/* A CIFAR-100 folder whose train.bin holds the given bytes. */
static char *c100_with_train(const char *name, const void *data, size_t len) {
    char *dir = sub(name);
    fx_write_cifar100(dir, 3, 3);
    char *inner = fx_join(dir, "cifar-100-binary");
    char *p = fx_join(inner, "train.bin");
    fx_write(p, data, len);
    free(p);
    free(dir);
    return inner;
}

static void test_cifar_hostile(void **state) {
    (void)state;
    vt_dataset d;
    size_t len;
    uint8_t *good = fx_cifar_records(2, 10, 0, &len);

    char *truncated = c100_with_train("trunc", good, len - 1000);
    assert_error(vt_dataset_load(truncated, "train", NULL, &d), VT_ERR_FORMAT, "train.bin", "record 9 is cut short");
    assert_zeroed(&d);

    size_t l10;
    uint8_t *c10 = fx_cifar_records(1, 2, 0, &l10);
    char *wrong = c100_with_train("wrongsize", c10, l10);
    assert_error(vt_dataset_load(wrong, "train", NULL, &d), VT_ERR_FORMAT, "3074-byte records", "3073-byte CIFAR-10");
    assert_zeroed(&d);

    uint8_t *bad = malloc(len);
    memcpy(bad, good, len);
    bad[3 * 3074 + 1] = 100; /* fine label of record 3 */
    char *range = c100_with_train("range", bad, len);
    assert_error(vt_dataset_load(range, "train", NULL, &d), VT_ERR_FORMAT,
                 "record 3: fine label 100 is out of range 0..99", "train.bin");
    assert_zeroed(&d);
    memcpy(bad, good, len);
    bad[5 * 3074] = 20; /* coarse label of record 5: checked whatever labels are asked for */
    char *range2 = c100_with_train("range2", bad, len);
    assert_error(vt_dataset_load(range2, "train", NULL, &d), VT_ERR_FORMAT, "record 5: coarse label 20", NULL);

    char *empty = c100_with_train("emptyfile", good, 0);
    assert_error(vt_dataset_load(empty, "train", NULL, &d), VT_ERR_FORMAT, "train.bin: empty file", NULL);
    assert_zeroed(&d);

    /* Missing split. */
    char *nosplit = c100_with_train("nosplit", good, len);
    char *tb = fx_join(nosplit, "test.bin");
    remove(tb);
    assert_int_equal(vt_dataset_load(nosplit, "train", NULL, &d), VT_OK);
    vt_dataset_free(&d);
    assert_error(vt_dataset_load(nosplit, "test", NULL, &d), VT_ERR_NOT_FOUND, "test.bin", NULL);
    assert_zeroed(&d);
    assert_error(vt_dataset_load(nosplit, "valid", NULL, &d), VT_ERR_INVALID_ARG, "valid", NULL);

    /* CIFAR-10 label out of range in batch 4. */
    char *c10dir = sub("c10bad");
    fx_write_cifar10(c10dir, 5, 5);
    uint8_t *b4 = fx_cifar_records(1, 5, 15, &l10);
    b4[2 * 3073] = 10;
    char *p = fx_join(c10dir, "cifar-10-batches-bin/data_batch_4.bin");
    fx_write(p, b4, l10);
    assert_error(vt_dataset_load(c10dir, "train", NULL, &d), VT_ERR_FORMAT, "data_batch_4.bin: record 2: label 10",
                 NULL);
    assert_zeroed(&d);
    /* The limit stops before the bad batch. */
    vt_dataset_opts o = {VT_LABELS_FINE, 15};
    assert_int_equal(vt_dataset_load(c10dir, "train", &o, &d), VT_OK);
    assert_int_equal(d.n, 15);
    vt_dataset_free(&d);

    free(p);
    free(b4);
    free(c10dir);
    free(tb);
    free(nosplit);
    free(empty);
    free(range2);
    free(range);
    free(bad);
    free(wrong);
    free(c10);
    free(truncated);
    free(good);
}

/* libarchive does not check the gzip trailer: single-byte damage in the compressed data could decode
 * to other records silently. Every flip past the gzip header, trailer included, must be refused, and
 * every cut too, with a message that says what happened. */
static void test_targz_integrity(void **state) {
    (void)state;
    char *dir = sub("gzflip");
    char *gz = fx_join(dir, "cifar-100-binary.tar.gz"), *bad = fx_join(dir, "bad.tar.gz");
    fx_write_cifar100_targz(gz, 40, 10);
    FILE *f = fopen(gz, "rb");
    uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 1000 && n < sizeof buf);
    vt_dataset d;
    assert_int_equal(vt_dataset_load(gz, "train", NULL, &d), VT_OK);
    vt_dataset_free(&d);
    int loaded = 0;
    for (int k = 0; k < 20; k++) {
        size_t at = 16 + (size_t)k * (n - 17) / 19;
        buf[at] ^= 0x10;
        fx_write(bad, buf, n);
        buf[at] ^= 0x10;
        const char *splits[2] = {"train", "test"};
        for (int sp = 0; sp < 2; sp++) {
            vt_status s = vt_dataset_load(bad, splits[sp], NULL, &d);
            if (s == VT_OK) {
                print_error("flip at byte %zu of %zu: the %s split loaded\n", at, n, splits[sp]);
                loaded++;
                vt_dataset_free(&d);
                continue;
            }
            assert_null(strstr(vt_last_error(), "(null)"));
            assert_non_null(strstr(vt_last_error(), "bad.tar.gz"));
            assert_zeroed(&d);
        }
    }
    assert_int_equal(loaded, 0);
    for (int k = 0; k < 20; k++) {
        size_t len = 1 + (size_t)k * (n - 2) / 19;
        fx_write(bad, buf, len);
        vt_status s = vt_dataset_load(bad, "train", NULL, &d);
        if (s == VT_OK) fail_msg("cut at byte %zu of %zu loaded", len, n);
        if (strstr(vt_last_error(), "(null)")) fail_msg("cut at byte %zu of %zu: %s", len, n, vt_last_error());
    }
    free(bad);
    free(gz);
    free(dir);
}

static void test_archive_hostile(void **state) {
    (void)state;
    vt_dataset d;
    char *dir = sub("gzbad");
    char *gz = fx_join(dir, "cifar-100-binary.tar.gz");
    fx_write_cifar100_targz(gz, 200, 10);
    uint8_t *data;
    FILE *f = fopen(gz, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    /* Cut in the middle of train.bin (the last member). */
    char *cut = fx_join(dir, "cut.tar.gz");
    fx_write(cut, data, (size_t)size * 3 / 4);
    assert_error(vt_dataset_load(cut, "train", NULL, &d), VT_ERR_FORMAT, "cut.tar.gz", "corrupt or truncated");
    assert_zeroed(&d);

    /* Garbage in the compressed stream. */
    char *garbled = fx_join(dir, "garbled.tar.gz");
    for (long i = size / 3; i < size / 3 + 64; i++) data[i] ^= 0x5a;
    fx_write(garbled, data, (size_t)size);
    vt_status s = vt_dataset_load(garbled, "train", NULL, &d);
    assert_true(s == VT_ERR_FORMAT);
    assert_non_null(strstr(vt_last_error(), "garbled.tar.gz"));
    assert_zeroed(&d);

    /* Not an archive at all. */
    char *junk = fx_join(dir, "junk.tar.gz");
    fx_write(junk, "hello, this is not gzip", 23);
    assert_error(vt_dataset_load(junk, "train", NULL, &d), VT_ERR_FORMAT, "junk.tar.gz", NULL);
    assert_zeroed(&d);

    /* A valid archive of something else. */
    char *other = fx_join(dir, "other.tar.gz");
    fx_member m[] = {{"photos/", NULL, 0, NULL}, {"photos/a.txt", "abc", 3, NULL}};
    fx_write_targz(other, m, 2);
    assert_error(vt_dataset_load(other, "train", NULL, &d), VT_ERR_NOT_FOUND, "cifar-100-binary/", "vtrain download");

    /* Release folder without the split. */
    char *nosplit = fx_join(dir, "nosplit.tar.gz");
    fx_member m2[] = {{"cifar-100-binary/", NULL, 0, NULL}, {"cifar-100-binary/train.bin", data, 0, NULL}};
    fx_write_targz(nosplit, m2, 2);
    assert_error(vt_dataset_load(nosplit, "test", NULL, &d), VT_ERR_NOT_FOUND, "no member cifar-100-binary/test.bin",
                 NULL);
    assert_zeroed(&d);

    free(nosplit);
    free(other);
    free(junk);
    free(garbled);
    free(cut);
    free(data);
    free(gz);
    free(dir);
}

/* dir/split/cls/name from image number idx in the given encoding. */
static void put_image(const char *root, const char *split, const char *cls, const char *name, int w, int h, int idx,
                      const char *kind) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, split);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", root, split, cls);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s/%s", root, split, cls, name);
    uint8_t *rgb = fx_rgb(w, h, idx);
    if (strcmp(kind, "png") == 0) fx_write_png(p, w, h, 3, rgb);
    if (strcmp(kind, "png-grey") == 0) fx_write_png(p, w, h, 1, rgb);
    if (strcmp(kind, "png-rgba") == 0) fx_write_png(p, w, h, 4, rgb);
    if (strcmp(kind, "jpeg") == 0) fx_write_jpeg(p, w, h, rgb, 0);
    if (strcmp(kind, "jpeg-grey") == 0) fx_write_jpeg(p, w, h, rgb, 1);
    free(rgb);
}

/* Image idx of size w x h in CHW at dst, as PNG stores it (grey: the R channel everywhere). */
static void check_png(const uint8_t *dst, int w, int h, int idx, bool grey) {
    uint8_t *rgb = fx_rgb(w, h, idx);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++) assert_int_equal(dst[c * w * h + i], rgb[3 * i + (grey ? 0 : c)]);
    free(rgb);
}

static void test_image_folder(void **state) {
    (void)state;
    char *root = sub("imgs");
    const int W = 12, H = 8;
    /* Classes: bird (2 png), cat (1 png-grey + 1 png-rgba + 1 jpeg), dog (1 jpeg-grey). */
    put_image(root, "train", "cat", "a.png", W, H, 1, "png-grey");
    put_image(root, "train", "cat", "b.PNG", W, H, 2, "png-rgba");
    put_image(root, "train", "cat", "c.jpg", W, H, 3, "jpeg");
    put_image(root, "train", "bird", "x.png", W, H, 4, "png");
    put_image(root, "train", "bird", "y.png", W, H, 5, "png");
    put_image(root, "train", "dog", "z.jpeg", W, H, 6, "jpeg-grey");
    put_image(root, "test", "dog", "t.png", W, H, 7, "png");
    char *readme = fx_join(root, "train/cat/notes.txt");
    fx_write(readme, "ignored", 7);

    char fmt[32];
    assert_int_equal(vt_dataset_detect(root, fmt, sizeof fmt), VT_OK);
    assert_string_equal(fmt, "image-folder");
    vt_dataset d;
    assert_int_equal(vt_dataset_load(root, "train", NULL, &d), VT_OK);
    assert_int_equal(d.n, 6);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, H);
    assert_int_equal(d.w, W);
    assert_int_equal(d.n_classes, 3);
    assert_string_equal(d.class_names[0], "bird");
    assert_string_equal(d.class_names[1], "cat");
    assert_string_equal(d.class_names[2], "dog");
    assert_string_equal(d.format, "image-folder");
    /* Round-robin over classes: bird/x, cat/a, dog/z, bird/y, cat/b, cat/c. */
    const int32_t want_labels[6] = {0, 1, 2, 0, 1, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(d.labels[i], want_labels[i]);
    size_t img = (size_t)3 * W * H;
    check_png(d.images + 0 * img, W, H, 4, false);
    check_png(d.images + 1 * img, W, H, 1, true);
    check_png(d.images + 3 * img, W, H, 5, false);
    check_png(d.images + 4 * img, W, H, 2, false);
    /* JPEG at quality 100: close, not exact. */
    uint8_t *rgb = fx_rgb(W, H, 3);
    double err = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < W * H; i++)
            err += abs((int)d.images[5 * img + (size_t)c * W * H + (size_t)i] - rgb[3 * i + c]);
    if (err / (double)img >= 6.0) print_error("mean JPEG error %.2f\n", err / (double)img);
    assert_true(err / (double)img < 6.0);
    free(rgb);
    const uint8_t *g = d.images + 2 * img; /* grey JPEG: three equal planes */
    for (int i = 0; i < W * H; i++) {
        assert_int_equal(g[i], g[W * H + i]);
        assert_int_equal(g[i], g[2 * W * H + i]);
    }
    vt_dataset_free(&d);

    /* Test split: labels from the train classes; limit. */
    assert_int_equal(vt_dataset_load(root, "test", NULL, &d), VT_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.labels[0], 2);
    assert_int_equal(d.n_classes, 3);
    check_png(d.images, W, H, 7, false);
    vt_dataset_free(&d);
    vt_dataset_opts o = {VT_LABELS_FINE, 3};
    assert_int_equal(vt_dataset_load(root, "train", &o, &d), VT_OK);
    assert_int_equal(d.n, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(d.labels[i], i);
    vt_dataset_free(&d);
    free(readme);
    free(root);
}

static void test_image_folder_hostile(void **state) {
    (void)state;
    vt_dataset d;
    char fmt[32];
    /* No split folders at all: not a dataset. */
    char *none = sub("img_none");
    assert_error(vt_dataset_detect(none, fmt, sizeof fmt), VT_ERR_NOT_FOUND, "image folder", NULL);
    /* train/ with no class folders. */
    char *empty = sub("img_empty");
    char *p = fx_join(empty, "train");
    mkdir(p, 0755);
    assert_error(vt_dataset_load(empty, "train", NULL, &d), VT_ERR_FORMAT, "holds no class folders", "img_empty/train");
    assert_zeroed(&d);
    free(p);
    /* A class folder without images. */
    char *noimg = sub("img_noimg");
    put_image(noimg, "train", "a", "1.png", 4, 4, 1, "png");
    p = fx_join(noimg, "train/b");
    mkdir(p, 0755);
    char *txt = fx_join(p, "readme.txt");
    fx_write(txt, "x", 1);
    assert_error(vt_dataset_load(noimg, "train", NULL, &d), VT_ERR_FORMAT, "img_noimg/train/b holds no", NULL);
    assert_zeroed(&d);
    free(txt);
    free(p);
    /* Undecodable image (after a good one, so the parallel path reports it). */
    char *undec = sub("img_undec");
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "%02d.png", i);
        put_image(undec, "train", "a", name, 4, 4, i, "png");
    }
    p = fx_join(undec, "train/a/07.png");
    fx_write(p, "\x89PNG\r\n\x1a\nthis is not the rest of a png", 38);
    assert_error(vt_dataset_load(undec, "train", NULL, &d), VT_ERR_FORMAT, "train/a/07.png", "undecodable PNG");
    assert_zeroed(&d);
    fx_write(p, "GIF89a....", 10);
    assert_error(vt_dataset_load(undec, "train", NULL, &d), VT_ERR_FORMAT, "train/a/07.png",
                 "neither a PNG nor a JPEG");
    /* A truncated JPEG is refused, not padded with grey. */
    free(p);
    p = fx_join(undec, "train/a/08.jpg");
    put_image(undec, "train", "a", "08.jpg", 4, 4, 3, "jpeg"); /* the right size: the cut is what fails */
    put_image(undec, "train", "a", "07.png", 4, 4, 7, "png");
    uint8_t *jd;
    FILE *f = fopen(p, "rb");
    uint8_t jbuf[4096];
    size_t jl = fread(jbuf, 1, sizeof jbuf, f);
    fclose(f);
    jd = jbuf;
    fx_write(p, jd, jl / 2);
    assert_error(vt_dataset_load(undec, "train", NULL, &d), VT_ERR_FORMAT, "train/a/08.jpg", "JPEG");
    assert_zeroed(&d);
    remove(p);
    free(p);
    /* Wrongly sized image. */
    put_image(undec, "train", "a", "15.png", 5, 4, 15, "png");
    assert_error(vt_dataset_load(undec, "train", NULL, &d), VT_ERR_FORMAT, "train/a/15.png",
                 "is 5x4, but the first image fixed the size at 4x4");
    assert_zeroed(&d);
    /* Missing split, and a test class that train does not have. */
    put_image(undec, "train", "a", "15.png", 4, 4, 15, "png");
    assert_int_equal(vt_dataset_load(undec, "train", NULL, &d), VT_OK);
    assert_int_equal(d.n, 20);
    vt_dataset_free(&d);
    assert_error(vt_dataset_load(undec, "test", NULL, &d), VT_ERR_NOT_FOUND, "has no test split", NULL);
    assert_zeroed(&d);
    put_image(undec, "test", "zebra", "1.png", 4, 4, 1, "png");
    assert_error(vt_dataset_load(undec, "test", NULL, &d), VT_ERR_FORMAT, "'zebra' is not among the 1 classes", NULL);
    assert_zeroed(&d);
    free(undec);
    free(noimg);
    free(empty);
    free(none);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar100_folder),      cmocka_unit_test(test_cifar100_targz),
        cmocka_unit_test(test_cifar10_folder),       cmocka_unit_test(test_detect_and_find),
        cmocka_unit_test(test_cifar_hostile),        cmocka_unit_test(test_archive_hostile),
        cmocka_unit_test(test_targz_integrity),      cmocka_unit_test(test_image_folder),
        cmocka_unit_test(test_image_folder_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
