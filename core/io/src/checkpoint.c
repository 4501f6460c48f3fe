/* The tensor dictionary and the vtrain checkpoint format (an atomic writer, vt/atomic_file.h, and a
 * reader that treats the file as hostile). Layout: docs/checkpoint-format.md. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint_internal.h"
#include "vt/atomic_file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_MAGIC            "VTCKPT\0\0"
#define CKPT_END_MAGIC        "VTCKEND\0"
#define CKPT_FIXED            40u /* magic, version, flags, header size, meta len, count */
#define CKPT_ENTRY_FIXED      (2u + 4u + 4u + 8u * VT_MAX_DIMS + 8u + 8u + 4u)
#define CKPT_FOOTER           24u
#define CKPT_ALIGN            64u
#define CKPT_MAX_TENSORS      65536u
#define CKPT_MAX_META         (64u << 20)
#define CKPT_MAX_TENSOR_BYTES ((uint64_t)1 << 40)

/* ---------------------------------------------------------------- tensor dictionary */

static vt_status shape_nbytes(vt_dtype dtype, int ndim, const int64_t *shape, size_t *out) {
    if ((int)dtype < 0 || dtype >= VT_DTYPE_COUNT)
        return vt_error(VT_ERR_DTYPE, "dtype code %d is unknown", (int)dtype);
    if (ndim < 0 || ndim > VT_MAX_DIMS) return vt_error(VT_ERR_SHAPE, "ndim %d is outside 0..%d", ndim, VT_MAX_DIMS);
    uint64_t n = vt_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return vt_error(VT_ERR_SHAPE, "dim %d is negative (%lld)", i, (long long)shape[i]);
        if (shape[i] > 0 && n > CKPT_MAX_TENSOR_BYTES / (uint64_t)shape[i])
            return vt_error(VT_ERR_SHAPE, "shape is too large (over %llu bytes)",
                            (unsigned long long)CKPT_MAX_TENSOR_BYTES);
        n *= (uint64_t)shape[i];
    }
    if (n > SIZE_MAX) return vt_error(VT_ERR_SHAPE, "shape is too large for this machine");
    *out = (size_t)n;
    return VT_OK;
}

static vt_status dict_add(vt_tensor_dict *d, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                          const void *data, bool check_dup) {
    if (!d || !name || (ndim > 0 && !shape)) return vt_error(VT_ERR_INVALID_ARG, "vt_dict_add: NULL argument");
    size_t len = strlen(name);
    if (len == 0 || len >= VT_CKPT_NAME_MAX)
        return vt_error(VT_ERR_INVALID_ARG, "vt_dict_add: name '%.40s' must have 1..%d bytes", name,
                        VT_CKPT_NAME_MAX - 1);
    size_t nbytes;
    vt_status s = shape_nbytes(dtype, ndim, shape, &nbytes);
    if (s != VT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", vt_last_error());
        return vt_error(s, "vt_dict_add: tensor '%s': %s", name, why);
    }
    if (check_dup && vt_dict_find(d, name))
        return vt_error(VT_ERR_INVALID_ARG, "vt_dict_add: duplicate tensor name '%s'", name);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        vt_host_tensor *items = realloc(d->items, cap * sizeof *items);
        if (!items) return vt_error(VT_ERR_OOM, "vt_dict_add: cannot grow the dict to %zu tensors", cap);
        d->items = items;
        d->cap = cap;
    }
    void *buf = data ? malloc(nbytes ? nbytes : 1) : calloc(nbytes ? nbytes : 1, 1);
    if (!buf) return vt_error(VT_ERR_OOM, "vt_dict_add: tensor '%s': cannot allocate %zu bytes", name, nbytes);
    if (data && nbytes) memcpy(buf, data, nbytes);
    vt_host_tensor *t = &d->items[d->n++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, len + 1);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < VT_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    t->data = buf;
    t->nbytes = nbytes;
    return VT_OK;
}

vt_status vt_dict_add(vt_tensor_dict *d, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                      const void *data) {
    return dict_add(d, name, dtype, ndim, shape, data, true);
}

vt_status vt_dict_append(vt_tensor_dict *d, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                         const void *data) {
    return dict_add(d, name, dtype, ndim, shape, data, false);
}

static int item_name_cmp(const void *a, const void *b) {
    const vt_host_tensor *x = *(const vt_host_tensor *const *)a, *y = *(const vt_host_tensor *const *)b;
    return strcmp(x->name, y->name);
}

vt_status vt_dict_check_unique(const vt_tensor_dict *d, const char *label) {
    if (!d || d->n < 2) return VT_OK;
    const vt_host_tensor **order = malloc(d->n * sizeof *order);
    if (!order) return vt_error(VT_ERR_OOM, "%s: cannot allocate %zu pointers to check tensor names", label, d->n);
    for (size_t i = 0; i < d->n; i++) order[i] = &d->items[i];
    qsort(order, d->n, sizeof *order, item_name_cmp);
    vt_status s = VT_OK;
    for (size_t i = 1; i < d->n && s == VT_OK; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            s = vt_error(VT_ERR_FORMAT, "%s: duplicate tensor name '%s'", label, order[i]->name);
    free(order);
    return s;
}

const vt_host_tensor *vt_dict_find(const vt_tensor_dict *d, const char *name) {
    if (!d || !name) return NULL;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0) return &d->items[i];
    return NULL;
}

vt_status vt_dict_set_meta(vt_tensor_dict *d, const char *json) {
    if (!d) return vt_error(VT_ERR_INVALID_ARG, "vt_dict_set_meta: NULL dict");
    char *copy = NULL;
    if (json) {
        size_t n = strlen(json);
        copy = malloc(n + 1);
        if (!copy) return vt_error(VT_ERR_OOM, "vt_dict_set_meta: cannot allocate %zu bytes", n + 1);
        memcpy(copy, json, n + 1);
    }
    free(d->meta_json);
    d->meta_json = copy;
    return VT_OK;
}

void vt_dict_free(vt_tensor_dict *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) free(d->items[i].data);
    free(d->items);
    free(d->meta_json);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- files */

uint32_t vt_crc32(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

vt_status vt_read_file(const char *path, uint64_t max_bytes, unsigned char **out, size_t *n) {
    *out = NULL;
    *n = 0;
    VT_TRY(vt_check_regular_file(path, "file"));
    /* O_NONBLOCK: should the path become a FIFO after the check, open() still returns at once. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return vt_error(e == ENOENT ? VT_ERR_NOT_FOUND : VT_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vt_error(VT_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_bytes || (uint64_t)st.st_size > SIZE_MAX - 1) {
        close(fd);
        return vt_error(VT_ERR_FORMAT, "%s: file size %lld is over the limit of %llu bytes", path,
                        (long long)st.st_size, (unsigned long long)max_bytes);
    }
    size_t size = (size_t)st.st_size;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return vt_error(VT_ERR_OOM, "%s: cannot allocate %zu bytes to read it", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            free(buf);
            close(fd);
            return vt_error(VT_ERR_IO, "%s: read failed at byte %zu of %zu: %s", path, got, size,
                            e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *n = size;
    return VT_OK;
}

/* ---------------------------------------------------------------- checkpoint writer */

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

vt_status vt_ckpt_write(const char *path, const vt_tensor_dict *d) {
    if (!path || !d) return vt_error(VT_ERR_INVALID_ARG, "vt_ckpt_write: NULL argument");
    if (d->n > CKPT_MAX_TENSORS)
        return vt_error(VT_ERR_INVALID_ARG, "%s: %zu tensors is over the limit of %u", path, d->n, CKPT_MAX_TENSORS);
    size_t meta_len = d->meta_json ? strlen(d->meta_json) : 0;
    if (meta_len > CKPT_MAX_META)
        return vt_error(VT_ERR_INVALID_ARG, "%s: metadata of %zu bytes is over the limit", path, meta_len);
    uint64_t hsize = CKPT_FIXED + meta_len + 4;
    for (size_t i = 0; i < d->n; i++) {
        const vt_host_tensor *t = &d->items[i];
        size_t len = strnlen(t->name, VT_CKPT_NAME_MAX);
        if (len == 0 || len >= VT_CKPT_NAME_MAX)
            return vt_error(VT_ERR_INVALID_ARG, "%s: tensor %zu has an empty or unterminated name", path, i);
        size_t nb;
        if (shape_nbytes(t->dtype, t->ndim, t->shape, &nb) != VT_OK || nb != t->nbytes || (nb && !t->data))
            return vt_error(VT_ERR_INVALID_ARG, "%s: tensor '%s': dtype/shape do not match nbytes %zu", path, t->name,
                            t->nbytes);
        hsize += CKPT_ENTRY_FIXED + len;
    }
    unsigned char *h = calloc(1, (size_t)hsize);
    if (!h) return vt_error(VT_ERR_OOM, "%s: cannot allocate the %llu-byte header", path, (unsigned long long)hsize);
    memcpy(h, CKPT_MAGIC, 8);
    vt_wr32(h + 8, VT_CKPT_VERSION);
    vt_wr32(h + 12, 0);
    vt_wr64(h + 16, hsize);
    vt_wr64(h + 24, meta_len);
    vt_wr64(h + 32, d->n);
    if (meta_len) memcpy(h + CKPT_FIXED, d->meta_json, meta_len);
    unsigned char *p = h + CKPT_FIXED + meta_len;
    uint64_t off = align_up(hsize, CKPT_ALIGN);
    for (size_t i = 0; i < d->n; i++) {
        const vt_host_tensor *t = &d->items[i];
        uint16_t len = (uint16_t)strlen(t->name);
        vt_wr16(p, len);
        memcpy(p + 2, t->name, len);
        p += 2 + len;
        vt_wr32(p, (uint32_t)t->dtype);
        vt_wr32(p + 4, (uint32_t)t->ndim);
        for (int k = 0; k < VT_MAX_DIMS; k++) vt_wr64(p + 8 + 8 * k, (uint64_t)(k < t->ndim ? t->shape[k] : 1));
        p += 8 + 8 * VT_MAX_DIMS;
        vt_wr64(p, off);
        vt_wr64(p + 8, t->nbytes);
        vt_wr32(p + 16, vt_crc32(0, t->data, t->nbytes));
        p += 20;
        off = align_up(off + t->nbytes, CKPT_ALIGN);
    }
    vt_wr32(p, vt_crc32(0, h, (size_t)hsize - 4));

    vt_atomic_file f;
    vt_status s = vt_afile_open(&f, path);
    if (s != VT_OK) {
        free(h);
        return s;
    }
    s = vt_afile_write(&f, h, (size_t)hsize);
    free(h);
    for (size_t i = 0; s == VT_OK && i < d->n; i++) {
        s = vt_afile_pad(&f, CKPT_ALIGN, 0);
        if (s == VT_OK) s = vt_afile_write(&f, d->items[i].data, d->items[i].nbytes);
    }
    if (s == VT_OK) s = vt_afile_pad(&f, CKPT_ALIGN, 0);
    if (s == VT_OK) {
        unsigned char foot[CKPT_FOOTER];
        memcpy(foot, CKPT_END_MAGIC, 8);
        vt_wr64(foot + 8, f.pos + CKPT_FOOTER);
        vt_wr32(foot + 16, f.crc);
        vt_wr32(foot + 20, 0);
        s = vt_afile_write(&f, foot, sizeof foot);
    }
    if (s != VT_OK) {
        vt_afile_abort(&f);
        return s;
    }
    return vt_afile_commit(&f);
}

/* ---------------------------------------------------------------- checkpoint reader */

vt_status vt_ckpt_read_mem(const void *data, size_t n, const char *label, vt_tensor_dict *out) {
    const unsigned char *b = data;
    if (!out) return vt_error(VT_ERR_INVALID_ARG, "vt_ckpt_read: NULL output");
    memset(out, 0, sizeof *out);
    if (!label) label = "(memory)";
    if (n < 8 || memcmp(b, CKPT_MAGIC, 8) != 0)
        return vt_error(VT_ERR_FORMAT, "%s: not a vtrain checkpoint (magic 'VTCKPT' missing)", label);
    if (n < 12) return vt_error(VT_ERR_FORMAT, "%s: truncated in the header (%zu bytes)", label, n);
    uint32_t version = vt_rd32(b + 8);
    if (version > VT_CKPT_VERSION)
        return vt_error(VT_ERR_FORMAT, "%s: written by a newer vtrain: format version %u, this build reads up to %u",
                        label, version, VT_CKPT_VERSION);
    if (version == 0) return vt_error(VT_ERR_FORMAT, "%s: format version 0 is invalid", label);
    if (n < CKPT_FIXED + 4 + CKPT_FOOTER)
        return vt_error(VT_ERR_FORMAT, "%s: truncated: %zu bytes is shorter than an empty checkpoint", label, n);
    const unsigned char *foot = b + n - CKPT_FOOTER;
    if (memcmp(foot, CKPT_END_MAGIC, 8) != 0)
        return vt_error(VT_ERR_FORMAT, "%s: footer missing (file truncated or damaged at the end)", label);
    if (vt_rd64(foot + 8) != n)
        return vt_error(VT_ERR_FORMAT, "%s: footer says the file has %llu bytes, it has %zu", label,
                        (unsigned long long)vt_rd64(foot + 8), n);
    if (vt_rd32(foot + 20) != 0) return vt_error(VT_ERR_FORMAT, "%s: footer reserved field is not zero", label);
    uint32_t file_crc = vt_crc32(0, b, n - CKPT_FOOTER);
    if (file_crc != vt_rd32(foot + 16))
        return vt_error(VT_ERR_CHECKSUM, "%s: whole-file CRC32 mismatch (stored %08x, computed %08x)", label,
                        vt_rd32(foot + 16), file_crc);
    if (vt_rd32(b + 12) != 0)
        return vt_error(VT_ERR_FORMAT, "%s: header flags %08x are unknown", label, vt_rd32(b + 12));
    uint64_t hsize = vt_rd64(b + 16), meta_len = vt_rd64(b + 24), count = vt_rd64(b + 32);
    uint64_t data_end = n - CKPT_FOOTER;
    if (hsize < CKPT_FIXED + 4 || hsize > data_end)
        return vt_error(VT_ERR_FORMAT, "%s: header size %llu is outside the file", label, (unsigned long long)hsize);
    uint32_t hcrc = vt_crc32(0, b, (size_t)hsize - 4);
    if (hcrc != vt_rd32(b + hsize - 4)) return vt_error(VT_ERR_CHECKSUM, "%s: header CRC32 mismatch", label);
    if (meta_len > CKPT_MAX_META || meta_len > hsize - CKPT_FIXED - 4)
        return vt_error(VT_ERR_FORMAT, "%s: metadata length %llu does not fit in the header", label,
                        (unsigned long long)meta_len);
    if (count > CKPT_MAX_TENSORS)
        return vt_error(VT_ERR_FORMAT, "%s: tensor count %llu is over the limit of %u", label,
                        (unsigned long long)count, CKPT_MAX_TENSORS);
    if (meta_len) {
        const char *m = (const char *)b + CKPT_FIXED;
        if (memchr(m, 0, (size_t)meta_len)) return vt_error(VT_ERR_FORMAT, "%s: metadata contains a NUL byte", label);
        cJSON *j = cJSON_ParseWithLength(m, (size_t)meta_len);
        if (!j) return vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", label);
        cJSON_Delete(j);
        out->meta_json = malloc((size_t)meta_len + 1);
        if (!out->meta_json) return vt_error(VT_ERR_OOM, "%s: cannot allocate the metadata", label);
        memcpy(out->meta_json, m, (size_t)meta_len);
        out->meta_json[meta_len] = 0;
    }
    const unsigned char *p = b + CKPT_FIXED + meta_len;
    const unsigned char *hend = b + hsize - 4;
    uint64_t prev_end = hsize;
    for (uint64_t i = 0; i < count; i++) {
        vt_status s = VT_OK;
        if ((size_t)(hend - p) < 2) {
            s = vt_error(VT_ERR_FORMAT, "%s: tensor entry %llu runs past the header", label, (unsigned long long)i);
            goto fail;
        }
        uint16_t len = vt_rd16(p);
        if (len == 0 || len >= VT_CKPT_NAME_MAX || (size_t)(hend - p) < (size_t)CKPT_ENTRY_FIXED + len) {
            s = vt_error(VT_ERR_FORMAT, "%s: tensor entry %llu: name length %u is invalid or runs past the header",
                         label, (unsigned long long)i, len);
            goto fail;
        }
        char name[VT_CKPT_NAME_MAX];
        memcpy(name, p + 2, len);
        name[len] = 0;
        if (memchr(p + 2, 0, len)) {
            s = vt_error(VT_ERR_FORMAT, "%s: tensor entry %llu: name contains a NUL byte", label,
                         (unsigned long long)i);
            goto fail;
        }
        p += 2 + len;
        uint32_t dtype = vt_rd32(p), ndim = vt_rd32(p + 4);
        int64_t shape[VT_MAX_DIMS];
        for (int k = 0; k < VT_MAX_DIMS; k++) shape[k] = (int64_t)vt_rd64(p + 8 + 8 * k);
        p += 8 + 8 * VT_MAX_DIMS;
        uint64_t off = vt_rd64(p), nbytes = vt_rd64(p + 8);
        uint32_t crc = vt_rd32(p + 16);
        p += 20;
        if (dtype >= VT_DTYPE_COUNT || ndim > VT_MAX_DIMS) {
            s = vt_error(VT_ERR_FORMAT, "%s: tensor '%s': dtype %u / ndim %u is invalid", label, name, dtype, ndim);
            goto fail;
        }
        for (uint32_t k = ndim; k < VT_MAX_DIMS; k++)
            if (shape[k] != 1) {
                s = vt_error(VT_ERR_FORMAT, "%s: tensor '%s': unused dim %u is not 1", label, name, k);
                goto fail;
            }
        size_t want;
        if (shape_nbytes((vt_dtype)dtype, (int)ndim, shape, &want) != VT_OK || want != nbytes) {
            s = vt_error(VT_ERR_FORMAT, "%s: tensor '%s': shape does not match its byte length %llu", label, name,
                         (unsigned long long)nbytes);
            goto fail;
        }
        if (off % CKPT_ALIGN || off < prev_end || off > data_end || nbytes > data_end - off) {
            s = vt_error(VT_ERR_FORMAT,
                         "%s: tensor '%s': data range [%llu, +%llu) is misaligned, overlaps or lies outside the data",
                         label, name, (unsigned long long)off, (unsigned long long)nbytes);
            goto fail;
        }
        prev_end = off + nbytes;
        if (vt_crc32(0, b + off, (size_t)nbytes) != crc) {
            s = vt_error(VT_ERR_CHECKSUM, "%s: tensor '%s': data CRC32 mismatch", label, name);
            goto fail;
        }
        s = vt_dict_append(out, name, (vt_dtype)dtype, (int)ndim, shape, b + off);
        if (s != VT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", vt_last_error());
            s = vt_error(s == VT_ERR_OOM ? s : VT_ERR_FORMAT, "%s: %s", label, why);
            goto fail;
        }
        continue;
    fail:
        vt_dict_free(out);
        return s;
    }
    if (p != hend) {
        vt_dict_free(out);
        return vt_error(VT_ERR_FORMAT, "%s: %zu stray bytes after the tensor table", label, (size_t)(hend - p));
    }
    vt_status s = vt_dict_check_unique(out, label);
    if (s != VT_OK) vt_dict_free(out);
    return s;
}

vt_status vt_ckpt_read(const char *path, vt_tensor_dict *out) {
    if (!path || !out) return vt_error(VT_ERR_INVALID_ARG, "vt_ckpt_read: NULL argument");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t n;
    VT_TRY(vt_check_regular_file(path, "checkpoint"));
    VT_TRY(vt_read_file(path, (uint64_t)1 << 44, &buf, &n));
    vt_status s = vt_ckpt_read_mem(buf, n, path, out);
    free(buf);
    return s;
}
