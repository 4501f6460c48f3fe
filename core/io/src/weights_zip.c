/* Minimal ZIP reader for torch.save() archives: central directory (with ZIP64 records and extra
 * fields), stored entries only, every range bounds-checked, CRC32 verified when an entry is read. */
#include "weights_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_EOCD   0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64  0x07064b50u
#define SIG_CDIR   0x02014b50u
#define SIG_LOCAL  0x04034b50u

void vt_zip_close(vt_zip *z) {
    if (!z) return;
    for (size_t i = 0; i < z->count; i++) free(z->e[i].name);
    free(z->e);
    free(z->by_name);
    memset(z, 0, sizeof *z);
}

/* ZIP64 extra field (id 1): the 64-bit values replace, in this order, whichever of the 32-bit
 * fields hold 0xFFFFFFFF. */
static vt_status zip64_extra(const vt_zip *z, const unsigned char *x, size_t xn, const char *name, uint64_t *usize,
                             uint64_t *csize, uint64_t *loff) {
    while (xn >= 4) {
        uint16_t id = vt_rd16(x), len = vt_rd16(x + 2);
        if ((size_t)len > xn - 4)
            return vt_error(VT_ERR_FORMAT, "%s: zip entry '%s': extra field runs past its end", z->label, name);
        if (id == 1) {
            const unsigned char *p = x + 4;
            size_t left = len;
            uint64_t *fields[3] = {usize, csize, loff};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != 0xFFFFFFFFu) continue;
                if (left < 8)
                    return vt_error(VT_ERR_FORMAT, "%s: zip entry '%s': ZIP64 extra field is too short", z->label,
                                    name);
                *fields[i] = vt_rd64(p);
                p += 8;
                left -= 8;
            }
            return VT_OK;
        }
        x += 4 + len;
        xn -= 4 + (size_t)len;
    }
    return VT_OK;
}

static _Thread_local const vt_zip *sort_ctx;

/* By name, then by position, so that the first of equal names comes first. */
static int by_name_cmp(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sort_ctx->e[x].name, sort_ctx->e[y].name);
    return c ? c : (x > y) - (x < y);
}

vt_status vt_zip_open_mem(vt_zip *z, const unsigned char *buf, size_t n, const char *label) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->n = n;
    z->label = label ? label : "(memory)";
    label = z->label;
    if (n < 22)
        return vt_error(VT_ERR_FORMAT, "%s: zip: %zu bytes is too short for an end-of-central-directory record", label,
                        n);
    size_t eocd = SIZE_MAX;
    size_t lowest = n - 22 > 65535 ? n - 22 - 65535 : 0;
    for (size_t p = n - 22 + 1; p-- > lowest;) {
        if (vt_rd32(buf + p) == SIG_EOCD && p + 22 + vt_rd16(buf + p + 20) <= n) {
            eocd = p;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return vt_error(VT_ERR_FORMAT, "%s: zip: end-of-central-directory record not found (truncated?)", label);
    uint64_t total = vt_rd16(buf + eocd + 10), cd_size = vt_rd32(buf + eocd + 12), cd_off = vt_rd32(buf + eocd + 16);
    if (eocd >= 20 && vt_rd32(buf + eocd - 20) == SIG_LOC64) {
        uint64_t r = vt_rd64(buf + eocd - 20 + 8);
        if (r > n - 56 || n < 56 || vt_rd32(buf + r) != SIG_EOCD64)
            return vt_error(VT_ERR_FORMAT, "%s: zip: ZIP64 end record offset %llu is invalid", label,
                            (unsigned long long)r);
        total = vt_rd64(buf + r + 32);
        cd_size = vt_rd64(buf + r + 40);
        cd_off = vt_rd64(buf + r + 48);
    }
    if (cd_off > n || cd_size > n - cd_off)
        return vt_error(VT_ERR_FORMAT, "%s: zip: central directory [%llu, +%llu) lies outside the %zu-byte file", label,
                        (unsigned long long)cd_off, (unsigned long long)cd_size, n);
    if (total > VT_ZIP_MAX_ENTRIES || total > cd_size / 46)
        return vt_error(VT_ERR_FORMAT, "%s: zip: %llu entries do not fit in a %llu-byte central directory", label,
                        (unsigned long long)total, (unsigned long long)cd_size);
    z->e = calloc((size_t)total + 1, sizeof *z->e);
    if (!z->e) return vt_error(VT_ERR_OOM, "%s: zip: cannot allocate %llu entries", label, (unsigned long long)total);
    const unsigned char *p = buf + cd_off, *end = buf + cd_off + cd_size;
    for (uint64_t i = 0; i < total; i++) {
        vt_status s;
        if ((size_t)(end - p) < 46 || vt_rd32(p) != SIG_CDIR) {
            s = vt_error(VT_ERR_FORMAT, "%s: zip: central directory entry %llu is missing or damaged", label,
                         (unsigned long long)i);
            goto fail;
        }
        uint16_t flags = vt_rd16(p + 8), method = vt_rd16(p + 10);
        uint32_t crc = vt_rd32(p + 16);
        uint64_t csize = vt_rd32(p + 20), usize = vt_rd32(p + 24), loff = vt_rd32(p + 42);
        size_t nl = vt_rd16(p + 28), xl = vt_rd16(p + 30), cl = vt_rd16(p + 32);
        if ((size_t)(end - p) - 46 < nl + xl + cl) {
            s = vt_error(VT_ERR_FORMAT, "%s: zip: central directory entry %llu runs past the directory", label,
                         (unsigned long long)i);
            goto fail;
        }
        char *name = malloc(nl + 1);
        if (!name) {
            s = vt_error(VT_ERR_OOM, "%s: zip: out of memory", label);
            goto fail;
        }
        memcpy(name, p + 46, nl);
        name[nl] = 0;
        z->e[z->count++].name = name;
        if (memchr(p + 46, 0, nl)) {
            s = vt_error(VT_ERR_FORMAT, "%s: zip: entry %llu has a NUL byte in its name", label, (unsigned long long)i);
            goto fail;
        }
        s = zip64_extra(z, p + 46 + nl, xl, name, &usize, &csize, &loff);
        if (s != VT_OK) goto fail;
        if (flags & 1) {
            s = vt_error(VT_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", label, name);
            goto fail;
        }
        if (method != 0 || csize != usize) {
            s = vt_error(VT_ERR_UNSUPPORTED,
                         "%s: zip entry '%s' is compressed (method %u); torch.save stores entries uncompressed", label,
                         name, method);
            goto fail;
        }
        if (loff > n || n - loff < 30 || vt_rd32(buf + loff) != SIG_LOCAL) {
            s = vt_error(VT_ERR_FORMAT, "%s: zip entry '%s': local header at %llu is missing", label, name,
                         (unsigned long long)loff);
            goto fail;
        }
        uint64_t data = loff + 30 + vt_rd16(buf + loff + 26) + vt_rd16(buf + loff + 28);
        if (data > n || usize > n - data) {
            s = vt_error(VT_ERR_FORMAT, "%s: zip entry '%s': data [%llu, +%llu) lies outside the %zu-byte file", label,
                         name, (unsigned long long)data, (unsigned long long)usize, n);
            goto fail;
        }
        z->e[z->count - 1].data_off = data;
        z->e[z->count - 1].size = usize;
        z->e[z->count - 1].crc = crc;
        z->e[z->count - 1].cd_off = (uint64_t)(p - buf);
        p += 46 + nl + xl + cl;
        continue;
    fail:
        vt_zip_close(z);
        return s;
    }
    /* A sorted index: a torch.save archive has one entry per storage, looked up once per tensor. */
    z->by_name = malloc((z->count + 1) * sizeof *z->by_name);
    if (!z->by_name) {
        vt_zip_close(z);
        return vt_error(VT_ERR_OOM, "%s: zip: cannot allocate the name index", label);
    }
    for (size_t i = 0; i < z->count; i++) z->by_name[i] = i;
    sort_ctx = z;
    qsort(z->by_name, z->count, sizeof *z->by_name, by_name_cmp);
    sort_ctx = NULL;
    return VT_OK;
}

/* The first entry of that name in directory order, as a linear search would find it. */
const vt_zip_entry *vt_zip_find(const vt_zip *z, const char *name) {
    if (!z->by_name) return NULL;
    size_t lo = 0, hi = z->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(z->e[z->by_name[mid]].name, name) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < z->count && strcmp(z->e[z->by_name[lo]].name, name) == 0) return &z->e[z->by_name[lo]];
    return NULL;
}

vt_status vt_zip_data(const vt_zip *z, const vt_zip_entry *e, const unsigned char **data) {
    const unsigned char *p = z->buf + e->data_off;
    uint32_t crc = vt_crc32(0, p, (size_t)e->size);
    if (crc != e->crc)
        return vt_error(VT_ERR_CHECKSUM, "%s: zip entry '%s': CRC32 mismatch (stored %08x, computed %08x)", z->label,
                        e->name, e->crc, crc);
    *data = p;
    return VT_OK;
}
