/* Dataset detection and the CIFAR-100 / CIFAR-10 binary loaders, from the extracted folder or
 * straight from the official .tar.gz (libarchive), plus the trainer's find-or-explain lookup. */
#define _POSIX_C_SOURCE 200809L
#include "dataset_archive.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VT_PATH_MAX 1024

static const vt_release vt_releases[] = {
    {"cifar100",
     "cifar100-bin",
     "cifar-100-binary",
     "cifar-100-binary.tar.gz",
     "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
     "03b5dce01913d631647c71ecec9e9cb8",
     {"train.bin", "test.bin", NULL, NULL, NULL, NULL}},
    {"cifar10",
     "cifar10-bin",
     "cifar-10-batches-bin",
     "cifar-10-binary.tar.gz",
     "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
     "c32a1d4ab5d03f1284b67883e8d87530",
     {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
      "test_batch.bin"}},
};
#define VT_N_RELEASES (sizeof vt_releases / sizeof vt_releases[0])

const vt_release *vt_release_find(const char *name) {
    for (size_t i = 0; i < VT_N_RELEASES; i++)
        if (name && strcmp(name, vt_releases[i].name) == 0) return &vt_releases[i];
    return NULL;
}

static const vt_cifar_layout vt_layout_c100_fine = {2, {20, 100}, 1};
static const vt_cifar_layout vt_layout_c100_coarse = {2, {20, 100}, 0};
static const vt_cifar_layout vt_layout_c10 = {1, {10, 0}, 0};

/* ---- CIFAR records ---------------------------------------------------------------------- */

vt_status vt_dataset_parse_cifar_mem(const uint8_t *buf, size_t len, const char *name, const vt_cifar_layout *layout,
                                     int64_t max_records, vt_dataset *d) {
    if (!layout || !d || (!buf && len) || layout->label_bytes < 1 || layout->label_bytes > 2 || layout->use_label < 0 ||
        layout->use_label >= layout->label_bytes)
        return vt_error(VT_ERR_INVALID_ARG, "cifar parser: bad arguments");
    if (!name) name = "<memory>";
    const size_t rec = (size_t)layout->label_bytes + VT_CIFAR_PIXELS;
    const char *fields = layout->label_bytes == 2 ? "1 coarse + 1 fine label byte + 3072 pixel bytes"
                                                  : "1 label byte + 3072 pixel bytes";
    if (len == 0) return vt_error(VT_ERR_FORMAT, "%s: empty file, no records", name);
    if (len % rec != 0) {
        size_t other = layout->label_bytes == 2 ? rec - 1 : rec + 1;
        return vt_error(VT_ERR_FORMAT,
                        "%s: %zu bytes is not a whole number of %zu-byte records (%s): record %zu is cut "
                        "short (%zu of %zu bytes)%s",
                        name, len, rec, fields, len / rec, len % rec, rec,
                        len % other == 0
                            ? (layout->label_bytes == 2 ? "; the size fits 3073-byte CIFAR-10 records instead"
                                                        : "; the size fits 3074-byte CIFAR-100 records instead")
                            : "; the file is truncated or not in this format");
    }
    if (d->n > 0 && (d->c != 3 || d->h != 32 || d->w != 32))
        return vt_error(VT_ERR_INVALID_ARG, "%s: appending CIFAR records to a dataset of other shape", name);
    int64_t count = (int64_t)(len / rec);
    int64_t take = count;
    if (max_records > 0) {
        if (d->n >= max_records) return VT_OK;
        if (take > max_records - d->n) take = max_records - d->n;
    }
    static const char *const names2[2] = {"coarse label", "fine label"};
    for (int64_t i = 0; i < take; i++) {
        const uint8_t *r = buf + (size_t)i * rec;
        for (int b = 0; b < layout->label_bytes; b++)
            if (r[b] >= layout->n_classes[b])
                return vt_error(VT_ERR_FORMAT, "%s: record %lld: %s %u is out of range 0..%d", name, (long long)i,
                                layout->label_bytes == 2 ? names2[b] : "label", r[b], layout->n_classes[b] - 1);
    }
    size_t total = (size_t)(d->n + take);
    uint8_t *img = realloc(d->images, total * VT_CIFAR_PIXELS);
    if (!img) return vt_error(VT_ERR_OOM, "%s: no memory for %zu images", name, total);
    d->images = img;
    int32_t *lab = realloc(d->labels, total * sizeof *lab);
    if (!lab) return vt_error(VT_ERR_OOM, "%s: no memory for %zu labels", name, total);
    d->labels = lab;
    for (int64_t i = 0; i < take; i++) {
        const uint8_t *r = buf + (size_t)i * rec;
        memcpy(img + (size_t)(d->n + i) * VT_CIFAR_PIXELS, r + layout->label_bytes, VT_CIFAR_PIXELS);
        lab[d->n + i] = r[layout->use_label];
    }
    d->n += take;
    d->c = 3;
    d->h = 32;
    d->w = 32;
    return VT_OK;
}

/* ---- files, folders, archive members ------------------------------------------------------ */

static bool vt_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool vt_is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Anything at p: a FIFO or folder named train.bin is then refused by name, not called missing. */
static bool vt_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static bool vt_join(char *out, size_t n, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    bool slash = la > 0 && a[la - 1] == '/';
    if (la + lb + 2 > n) {
        if (n) out[0] = 0;
        return false;
    }
    memcpy(out, a, la);
    if (!slash) out[la++] = '/';
    memcpy(out + la, b, lb + 1);
    return true;
}

vt_status vt_dataset_read_file(const char *path, uint8_t **data, size_t *len) {
    /* Plain open/read: image folders call this tens of thousands of times. */
    *data = NULL;
    *len = 0;
    VT_TRY(vt_check_regular_file(path, "dataset file"));
    int fd = open(path, O_RDONLY | O_NONBLOCK); /* never blocks, should it turn into a FIFO */
    if (fd < 0)
        return vt_error(errno == ENOENT ? VT_ERR_NOT_FOUND : VT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vt_error(VT_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size > VT_MEMBER_MAX) {
        close(fd);
        return vt_error(VT_ERR_FORMAT, "%s: %zu bytes is too big for a dataset file", path, size);
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return vt_error(VT_ERR_OOM, "%s: no memory for %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (got != size) {
        free(buf);
        return vt_error(VT_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    *data = buf;
    *len = size;
    return VT_OK;
}

/* Where a detected dataset lives: a folder of .bin files, an archive (members under prefix/), or an
 * image folder. */
typedef struct vt_located {
    char format[32];
    bool archive;
    char path[VT_PATH_MAX];
    char prefix[64];
} vt_located;

static vt_status vt_locate(const char *path, vt_located *loc) {
    memset(loc, 0, sizeof *loc);
    if (!path || !*path) return vt_error(VT_ERR_INVALID_ARG, "dataset: empty path");
    if (strlen(path) >= VT_PATH_MAX - 64) return vt_error(VT_ERR_INVALID_ARG, "dataset: path too long: %.80s...", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return vt_error(VT_ERR_NOT_FOUND,
                        "no dataset at %s: it does not exist; run `vtrain download cifar100` (or cifar10) to fetch "
                        "one into data/",
                        path);
    char p[VT_PATH_MAX];
    if (S_ISREG(st.st_mode)) {
        struct archive *a = vt_archive_open(path, NULL);
        if (!a) return VT_ERR_FORMAT;
        struct archive_entry *e;
        int r;
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
            const char *name = vt_strip_dot(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
            for (size_t i = 0; i < VT_N_RELEASES; i++) {
                size_t fl = strlen(vt_releases[i].folder);
                if (strncmp(name, vt_releases[i].folder, fl) == 0 && (name[fl] == '/' || name[fl] == 0)) {
                    snprintf(loc->format, sizeof loc->format, "%s", vt_releases[i].format);
                    snprintf(loc->path, sizeof loc->path, "%s", path);
                    snprintf(loc->prefix, sizeof loc->prefix, "%s/", vt_releases[i].folder);
                    loc->archive = true;
                    archive_read_free(a);
                    return VT_OK;
                }
            }
            archive_read_data_skip(a);
        }
        vt_status s =
            r == ARCHIVE_EOF
                ? vt_error(VT_ERR_NOT_FOUND,
                           "%s: archive holds neither cifar-100-binary/ nor cifar-10-batches-bin/ "
                           "(the official CIFAR binary releases); run `vtrain download cifar100` to fetch one",
                           path)
                : vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated: %s", path, vt_archive_why(a));
        archive_read_free(a);
        return s;
    }
    if (!S_ISDIR(st.st_mode)) return vt_check_regular_file(path, "dataset");

    /* The extracted inner folders themselves. */
    static const char *const c100_files[] = {"train.bin", "test.bin"};
    static const char *const c10_files[] = {"data_batch_1.bin", "test_batch.bin"};
    for (int i = 0; i < 2; i++) {
        vt_join(p, sizeof p, path, c100_files[i]);
        if (vt_exists(p)) {
            snprintf(loc->format, sizeof loc->format, "cifar100-bin");
            snprintf(loc->path, sizeof loc->path, "%s", path);
            return VT_OK;
        }
    }
    for (int i = 0; i < 2; i++) {
        vt_join(p, sizeof p, path, c10_files[i]);
        if (vt_exists(p)) {
            snprintf(loc->format, sizeof loc->format, "cifar10-bin");
            snprintf(loc->path, sizeof loc->path, "%s", path);
            return VT_OK;
        }
    }
    /* A folder holding the release: extracted first, then the archive. */
    for (size_t i = 0; i < VT_N_RELEASES; i++) {
        vt_join(p, sizeof p, path, vt_releases[i].folder);
        if (vt_is_dir(p)) return vt_locate(p, loc);
    }
    for (size_t i = 0; i < VT_N_RELEASES; i++) {
        vt_join(p, sizeof p, path, vt_releases[i].archive);
        if (vt_is_file(p)) return vt_locate(p, loc);
    }
    if (vt_dataset_is_image_folder(path)) {
        snprintf(loc->format, sizeof loc->format, "image-folder");
        snprintf(loc->path, sizeof loc->path, "%s", path);
        return VT_OK;
    }
    return vt_error(VT_ERR_NOT_FOUND,
                    "no dataset in %s: looked for train.bin/test.bin (CIFAR-100), data_batch_N.bin/test_batch.bin "
                    "(CIFAR-10), the folders cifar-100-binary/ and cifar-10-batches-bin/, the archives "
                    "cifar-100-binary.tar.gz and cifar-10-binary.tar.gz, and an image folder train/<class>/*.png|jpg; "
                    "run `vtrain download cifar100` to fetch CIFAR-100",
                    path);
}

vt_status vt_dataset_detect(const char *path, char *format, size_t n) {
    vt_located loc;
    VT_TRY(vt_locate(path, &loc));
    if (format && n) snprintf(format, n, "%s", loc.format);
    return VT_OK;
}

/* Reads members names[0..k) (relative to the release folder) of loc. Optional ones that are absent
 * come back as NULL. */
static vt_status vt_fetch_members(const vt_located *loc, int k, const char *const *names, const bool *required,
                                  uint8_t **data, size_t *len) {
    for (int i = 0; i < k; i++) {
        data[i] = NULL;
        len[i] = 0;
    }
    vt_status s = VT_OK;
    if (!loc->archive) {
        char p[VT_PATH_MAX];
        for (int i = 0; i < k && s == VT_OK; i++) {
            vt_join(p, sizeof p, loc->path, names[i]);
            if (!vt_exists(p)) {
                if (required[i])
                    s = vt_error(VT_ERR_NOT_FOUND, "%s: missing file %s (needed for this split)", loc->path, names[i]);
                continue;
            }
            s = vt_dataset_read_file(p, &data[i], &len[i]); /* refuses a folder or FIFO by name */
        }
    } else {
        vt_gz_src *gz;
        struct archive *a = vt_archive_open(loc->path, &gz);
        if (!a) return VT_ERR_FORMAT;
        struct stat ast;
        uint64_t limit = vt_inflate_limit(stat(loc->path, &ast) == 0 ? (uint64_t)ast.st_size : 0);
        struct archive_entry *e;
        int r = ARCHIVE_OK;
        bool *got = calloc((size_t)k, sizeof *got);
        if (!got) {
            archive_read_free(a);
            return vt_error(VT_ERR_OOM, "%s: no memory", loc->path);
        }
        size_t pl = strlen(loc->prefix);
        /* To the end, even once every member is in: the gzip trailer (CRC32, length) is verified last. */
        while (s == VT_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
            const char *name = vt_strip_dot(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
            int hit = -1;
            if (strncmp(name, loc->prefix, pl) == 0 && archive_entry_filetype(e) == AE_IFREG)
                for (int i = 0; i < k; i++)
                    if (!got[i] && strcmp(name + pl, names[i]) == 0) hit = i;
            if (hit < 0) {
                if (archive_read_data_skip(a) != ARCHIVE_OK)
                    s = vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated (in member %s): %s", loc->path,
                                 name, vt_archive_why(a));
                continue;
            }
            s = vt_archive_slurp(a, e, loc->path, name, limit, &data[hit], &len[hit]);
            got[hit] = true;
        }
        if (s == VT_OK && r != ARCHIVE_EOF)
            s = vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated: %s", loc->path, vt_archive_why(a));
        if (s == VT_OK) s = vt_gz_drain(a, gz, loc->path);
        for (int i = 0; i < k && s == VT_OK; i++)
            if (!got[i] && required[i])
                s = vt_error(VT_ERR_NOT_FOUND, "%s: archive has no member %s%s (needed for this split)", loc->path,
                             loc->prefix, names[i]);
        free(got);
        archive_read_free(a);
    }
    if (s != VT_OK)
        for (int i = 0; i < k; i++) {
            free(data[i]);
            data[i] = NULL;
        }
    return s;
}

char **vt_dataset_numbered_names(int k) {
    char **names = calloc((size_t)k, sizeof *names);
    if (!names) return NULL;
    for (int i = 0; i < k; i++) {
        names[i] = malloc(16);
        if (!names[i]) {
            for (int j = 0; j < i; j++) free(names[j]);
            free(names);
            return NULL;
        }
        snprintf(names[i], 16, "%d", i);
    }
    return names;
}

/* One name per non-empty line; falls back to numbers when the file is absent or has another count. */
static char **vt_parse_names(const uint8_t *txt, size_t len, int k) {
    if (!txt) return vt_dataset_numbered_names(k);
    char **names = calloc((size_t)k, sizeof *names);
    if (!names) return NULL;
    int got = 0;
    bool ok = true;
    size_t i = 0;
    while (i < len && ok) {
        size_t j = i;
        while (j < len && txt[j] != '\n') j++;
        size_t e = j;
        while (e > i && (txt[e - 1] == '\r' || txt[e - 1] == ' ' || txt[e - 1] == '\t')) e--;
        if (e > i) {
            if (got >= k || e - i > 200) {
                ok = false;
            } else {
                names[got] = malloc(e - i + 1);
                if (!names[got]) {
                    ok = false;
                } else {
                    memcpy(names[got], txt + i, e - i);
                    names[got][e - i] = 0;
                    for (size_t c = 0; c < e - i; c++)
                        if (names[got][c] < 32) names[got][c] = '?';
                    got++;
                }
            }
        }
        i = j + 1;
    }
    if (ok && got == k) return names;
    for (int c = 0; c < got; c++) free(names[c]);
    free(names);
    return vt_dataset_numbered_names(k);
}

static vt_status vt_load_cifar(const vt_located *loc, const char *split, const vt_dataset_opts *opts, vt_dataset *out) {
    bool c100 = strcmp(loc->format, "cifar100-bin") == 0;
    bool train = strcmp(split, "train") == 0;
    const char *names[8];
    bool req[8];
    int k = 0, n_bins;
    if (c100) {
        names[k] = train ? "train.bin" : "test.bin";
        req[k++] = true;
        names[k] = opts->labels == VT_LABELS_COARSE ? "coarse_label_names.txt" : "fine_label_names.txt";
        req[k++] = false;
        n_bins = 1;
    } else {
        static const char *const batches[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                               "data_batch_4.bin", "data_batch_5.bin"};
        if (train)
            for (int i = 0; i < 5; i++) {
                names[k] = batches[i];
                req[k++] = true;
            }
        else {
            names[k] = "test_batch.bin";
            req[k++] = true;
        }
        n_bins = k;
        names[k] = "batches.meta.txt";
        req[k++] = false;
    }
    uint8_t *data[8];
    size_t len[8];
    VT_TRY(vt_fetch_members(loc, k, names, req, data, len));
    const vt_cifar_layout *layout =
        c100 ? (opts->labels == VT_LABELS_COARSE ? &vt_layout_c100_coarse : &vt_layout_c100_fine) : &vt_layout_c10;
    vt_status s = VT_OK;
    char member[VT_PATH_MAX + 80];
    for (int i = 0; i < n_bins && s == VT_OK; i++) {
        if (loc->archive) snprintf(member, sizeof member, "%s:%s%s", loc->path, loc->prefix, names[i]);
        else vt_join(member, sizeof member, loc->path, names[i]);
        s = vt_dataset_parse_cifar_mem(data[i], len[i], member, layout, opts->limit, out);
    }
    if (s == VT_OK) {
        out->n_classes = layout->n_classes[layout->use_label];
        out->class_names = vt_parse_names(data[n_bins], len[n_bins], out->n_classes);
        if (!out->class_names) s = vt_error(VT_ERR_OOM, "%s: no memory for class names", loc->path);
    }
    for (int i = 0; i < k; i++) free(data[i]);
    return s;
}

vt_status vt_dataset_load(const char *path, const char *split, const vt_dataset_opts *opts, vt_dataset *out) {
    if (!out) return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0))
        return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_load: split must be \"train\" or \"test\", not \"%s\"",
                        split ? split : "(null)");
    vt_dataset_opts o = {VT_LABELS_FINE, 0};
    if (opts) o = *opts;
    if (o.limit < 0) return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_load: limit %lld < 0", (long long)o.limit);
    if (o.labels != VT_LABELS_FINE && o.labels != VT_LABELS_COARSE)
        return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_load: unknown label kind %d", (int)o.labels);
    vt_located loc;
    VT_TRY(vt_locate(path, &loc));
    size_t pl = strlen(loc.path);
    if (pl >= sizeof out->source)
        return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_load: path longer than %zu bytes: %.80s...",
                        sizeof out->source - 1, loc.path);
    /* coarse labels exist only in CIFAR-100: anywhere else they would be silently the fine ones */
    if (o.labels == VT_LABELS_COARSE && strcmp(loc.format, "cifar100-bin") != 0)
        return vt_error(VT_ERR_INVALID_ARG, "%s: coarse labels exist only in CIFAR-100; this dataset is %s", loc.path,
                        loc.format);
    vt_status s;
    if (strcmp(loc.format, "image-folder") == 0) s = vt_dataset_load_image_folder(loc.path, split, &o, out);
    else s = vt_load_cifar(&loc, split, &o, out);
    if (s != VT_OK) {
        vt_dataset_free(out);
        return s;
    }
    snprintf(out->format, sizeof out->format, "%s", loc.format);
    memcpy(out->source, loc.path, pl + 1);
    return VT_OK;
}

void vt_dataset_free(vt_dataset *d) {
    if (!d) return;
    free(d->images);
    free(d->labels);
    free(d->masks);
    if (d->class_names) {
        for (int i = 0; i < d->n_classes; i++) free(d->class_names[i]);
        free(d->class_names);
    }
    memset(d, 0, sizeof *d);
}

vt_status vt_dataset_find_or_explain(const char *name, const char *dir, char *path, size_t n) {
    if (!name || !*name || !path || n == 0)
        return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_find_or_explain: bad arguments");
    if (!dir || !*dir) dir = "data";
    path[0] = 0;
    char p[VT_PATH_MAX], fmt[32];
    for (size_t i = 0; i < VT_N_RELEASES; i++) {
        const vt_release *r = &vt_releases[i];
        if (strcmp(name, r->name) != 0) continue;
        const char *cands[2] = {r->folder, r->archive};
        /* A candidate that is there but unusable (a damaged archive) is reported as such, not as
         * "not found", unless the other one is usable. */
        vt_status bad = VT_OK;
        char why[1024] = "";
        for (int c = 0; c < 2; c++) {
            vt_join(p, sizeof p, dir, cands[c]);
            vt_located loc;
            if (c == 1 && vt_exists(p) && !vt_is_file(p)) return vt_check_regular_file(p, "dataset archive");
            if (!(c == 0 ? vt_is_dir(p) : vt_is_file(p))) continue;
            vt_status s = vt_locate(p, &loc);
            if (s == VT_OK && strcmp(loc.format, r->format) == 0) {
                if (strlen(p) >= n)
                    return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_find_or_explain: path buffer too small");
                snprintf(path, n, "%s", p);
                vt_clear_error();
                return VT_OK;
            }
            if (bad == VT_OK) {
                bad = s != VT_OK ? s : VT_ERR_FORMAT;
                if (s != VT_OK) snprintf(why, sizeof why, "%s", vt_last_error());
                else snprintf(why, sizeof why, "%s holds %s data, not %s", p, loc.format, r->format);
            }
        }
        if (bad != VT_OK) return vt_error(bad, "dataset %s is in %s but cannot be used: %s", r->name, dir, why);
        size_t dl = strlen(dir);
        return vt_error(VT_ERR_NOT_FOUND, "dataset %s not found in %s%s: run `vtrain download %s` (or place %s there)",
                        r->name, dir, (dl && dir[dl - 1] == '/') ? "" : "/", r->name, r->archive);
    }
    /* Not a release name: a path to any dataset, as given or under dir. */
    const char *tries[2] = {name, NULL};
    if (name[0] != '/' && vt_join(p, sizeof p, dir, name)) tries[1] = p;
    for (int t = 0; t < 2; t++) {
        if (!tries[t]) continue;
        struct stat st;
        if (stat(tries[t], &st) != 0) continue;
        VT_TRY(vt_dataset_detect(tries[t], fmt, sizeof fmt));
        if (strlen(tries[t]) >= n)
            return vt_error(VT_ERR_INVALID_ARG, "vt_dataset_find_or_explain: path buffer too small");
        snprintf(path, n, "%s", tries[t]);
        return VT_OK;
    }
    return vt_error(VT_ERR_NOT_FOUND,
                    "dataset %s not found: it is neither cifar100 nor cifar10 nor an existing path (as given or "
                    "under %s); run `vtrain download cifar100` to fetch CIFAR-100",
                    name, dir);
}
