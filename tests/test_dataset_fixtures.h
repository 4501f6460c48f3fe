/* Synthetic datasets for the dataset and download tests: CIFAR records, official-layout .tar.gz
 * archives (libarchive), PNG/JPEG image folders, all written into a fresh temporary folder. */
#ifndef VT_TEST_DATASET_FIXTURES_H
#define VT_TEST_DATASET_FIXTURES_H

#define _XOPEN_SOURCE 700
#include <archive.h>
#include <archive_entry.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jpeglib.h>
#include <png.h>

/* Pixel j of record i, so that every record and plane differs. */
static inline uint8_t fx_pixel(int64_t i, int j) { return (uint8_t)((i * 7 + j * 13 + (j >> 10)) & 255); }

static inline char *fx_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char *p = malloc(512);
    snprintf(p, 512, "%s/vt_data_test_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static inline int fx_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static inline void fx_rmtree(const char *p) { nftw(p, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static inline char *fx_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static inline int fx_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = fwrite(data, 1, n, f);
    fclose(f);
    return k == n ? 0 : -1;
}

static inline int fx_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* count CIFAR records; label_bytes 2 = CIFAR-100 (coarse i%20, fine i%100), 1 = CIFAR-10 (i%10).
 * first shifts the record numbers (for the batches after the first). */
static inline uint8_t *fx_cifar_records(int label_bytes, int64_t count, int64_t first, size_t *len) {
    size_t rec = (size_t)label_bytes + 3072;
    uint8_t *b = malloc(rec * (size_t)count + 1);
    for (int64_t r = 0; r < count; r++) {
        int64_t i = first + r;
        uint8_t *p = b + rec * (size_t)r;
        if (label_bytes == 2) {
            p[0] = (uint8_t)(i % 20);
            p[1] = (uint8_t)(i % 100);
        } else {
            p[0] = (uint8_t)(i % 10);
        }
        for (int j = 0; j < 3072; j++) p[label_bytes + j] = fx_pixel(i, j);
    }
    *len = rec * (size_t)count;
    return b;
}

static inline char *fx_names_text(const char *stem, int k) {
    char *t = malloc((size_t)k * 32 + 2);
    size_t at = 0;
    for (int i = 0; i < k; i++) at += (size_t)sprintf(t + at, "%s_%d\n", stem, i);
    t[at++] = '\n'; /* the official files end with an empty line */
    t[at] = 0;
    return t;
}

/* The official CIFAR-100 layout in dir/cifar-100-binary: n_train train and n_test test records. */
static inline void fx_write_cifar100(const char *dir, int64_t n_train, int64_t n_test) {
    char *folder = fx_join(dir, "cifar-100-binary");
    mkdir(folder, 0755);
    size_t len;
    uint8_t *b = fx_cifar_records(2, n_train, 0, &len);
    char *p = fx_join(folder, "train.bin");
    fx_write(p, b, len);
    free(p);
    free(b);
    b = fx_cifar_records(2, n_test, 1000, &len);
    p = fx_join(folder, "test.bin");
    fx_write(p, b, len);
    free(p);
    free(b);
    char *t = fx_names_text("fine", 100);
    p = fx_join(folder, "fine_label_names.txt");
    fx_write(p, t, strlen(t));
    free(p);
    free(t);
    t = fx_names_text("coarse", 20);
    p = fx_join(folder, "coarse_label_names.txt");
    fx_write(p, t, strlen(t));
    free(p);
    free(t);
    free(folder);
}

/* The official CIFAR-10 layout in dir/cifar-10-batches-bin: 5 train batches of per_batch records. */
static inline void fx_write_cifar10(const char *dir, int64_t per_batch, int64_t n_test) {
    char *folder = fx_join(dir, "cifar-10-batches-bin");
    mkdir(folder, 0755);
    size_t len;
    char name[64];
    for (int k = 0; k < 5; k++) {
        uint8_t *b = fx_cifar_records(1, per_batch, k * per_batch, &len);
        snprintf(name, sizeof name, "data_batch_%d.bin", k + 1);
        char *p = fx_join(folder, name);
        fx_write(p, b, len);
        free(p);
        free(b);
    }
    uint8_t *b = fx_cifar_records(1, n_test, 1000, &len);
    char *p = fx_join(folder, "test_batch.bin");
    fx_write(p, b, len);
    free(p);
    free(b);
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    p = fx_join(folder, "batches.meta.txt");
    fx_write(p, meta, strlen(meta));
    free(p);
    free(folder);
}

/* One archive member: a folder (data NULL, len 0), a file, or a symlink (link != NULL). */
typedef struct fx_member {
    const char *name;
    const void *data;
    size_t len;
    const char *link;
} fx_member;

static inline int fx_write_targz(const char *path, const fx_member *m, int n) {
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK) return -1;
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        if (m[i].link) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].link);
            archive_entry_set_perm(e, 0777);
        } else if (!m[i].data) {
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t)m[i].len);
        }
        archive_write_header(a, e);
        if (m[i].data && m[i].len) archive_write_data(a, m[i].data, m[i].len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return 0;
}

/* cifar-100-binary.tar.gz in the official layout at path. */
static inline void fx_write_cifar100_targz(const char *path, int64_t n_train, int64_t n_test) {
    size_t ltr, lte;
    uint8_t *tr = fx_cifar_records(2, n_train, 0, &ltr);
    uint8_t *te = fx_cifar_records(2, n_test, 1000, &lte);
    char *fine = fx_names_text("fine", 100), *coarse = fx_names_text("coarse", 20);
    fx_member m[] = {
        {"cifar-100-binary/", NULL, 0, NULL},
        {"cifar-100-binary/coarse_label_names.txt", coarse, strlen(coarse), NULL},
        {"cifar-100-binary/test.bin", te, lte, NULL},
        {"cifar-100-binary/fine_label_names.txt", fine, strlen(fine), NULL},
        {"cifar-100-binary/train.bin", tr, ltr, NULL},
    };
    fx_write_targz(path, m, 5);
    free(tr);
    free(te);
    free(fine);
    free(coarse);
}

/* An RGB pattern of w x h for image number idx, interleaved. */
static inline uint8_t *fx_rgb(int w, int h, int idx) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) p[((size_t)y * w + x) * 3 + c] = (uint8_t)(idx * 31 + y * 5 + x * 3 + c * 60);
    return p;
}

/* channels: 1 grey, 3 RGB, 4 RGBA (alpha 255). */
static inline int fx_write_png(const char *path, int w, int h, int channels, const uint8_t *rgb) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    uint8_t *buf = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h; i++) {
        if (channels == 1) buf[i] = rgb[3 * i];
        for (int c = 0; c < 3 && channels > 1; c++) buf[channels * i + c] = rgb[3 * i + c];
        if (channels == 4) buf[4 * i + 3] = 255;
    }
    int ok = png_image_write_to_file(&img, path, 0, buf, 0, NULL);
    free(buf);
    return ok ? 0 : -1;
}

static inline int fx_write_jpeg(const char *path, int w, int h, const uint8_t *rgb, int grey) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = grey ? 1 : 3;
    c.in_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    c.comp_info[0].h_samp_factor = 1; /* 4:4:4, so that the decoded pixels stay close */
    c.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * 3);
    while (c.next_scanline < c.image_height) {
        const uint8_t *src = rgb + (size_t)c.next_scanline * w * 3;
        if (grey)
            for (int x = 0; x < w; x++) row[x] = src[3 * x];
        else memcpy(row, src, (size_t)w * 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    fclose(f);
    return 0;
}

#endif
