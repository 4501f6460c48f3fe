/* Reading members of a dataset archive (.tar, .tar.gz): gzip is inflated here with zlib, which checks
 * every member's trailer (CRC32, length) and refuses a decompression bomb; libarchive reads the tar. */
#define _POSIX_C_SOURCE 200809L
#include "dataset_archive.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

uint64_t vt_inflate_limit(uint64_t file_bytes) {
    uint64_t lim = file_bytes > UINT64_MAX / VT_INFLATE_RATIO ? UINT64_MAX : file_bytes * VT_INFLATE_RATIO;
    return lim < VT_INFLATE_FLOOR ? VT_INFLATE_FLOOR : lim;
}

const char *vt_strip_dot(const char *name) {
    while (name[0] == '.' && name[1] == '/') name += 2;
    return name;
}

/* Why the gzip reader below failed: libarchive may replace the message a read callback set (a failed
 * skip becomes "Truncated input file"), so the reason is also kept here, per thread. */
static _Thread_local char vt_gz_why[256];

/* libarchive may fail without a message (archive_error_string gives NULL). */
const char *vt_archive_why(struct archive *a) {
    if (vt_gz_why[0]) return vt_gz_why;
    const char *m = archive_error_string(a);
    return m && *m ? m : "the archive ends early or a header is damaged (no detail from libarchive)";
}

/* libarchive's gzip filter does not check the gzip trailer (CRC32 and length), so a flipped bit in
 * the compressed data can decode to other bytes without an error. A gzip file is therefore inflated
 * here with zlib, which checks the trailer of every member, and libarchive reads the plain tar. */
struct vt_gz_src {
    int fd;
    z_stream zs;
    bool zs_ready;
    uint64_t out_total, out_limit, in_size;
    bool done; /* the last member's trailer is verified and only zero padding followed */
    unsigned char in[1 << 16];
    unsigned char out[1 << 16];
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
vt_gz_fail(struct archive *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vt_gz_why, sizeof vt_gz_why, fmt, ap);
    va_end(ap);
    archive_set_error(a, EILSEQ, "%s", vt_gz_why);
}

static bool vt_gz_fill(vt_gz_src *g) {
    if (g->zs.avail_in > 0) return true;
    for (;;) {
        ssize_t k = read(g->fd, g->in, sizeof g->in);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        g->zs.next_in = g->in;
        g->zs.avail_in = (uInt)k;
        return true;
    }
}

/* After a member's trailer: another member, zero padding to the end, or refused trailing bytes. */
static int vt_gz_after_member(struct archive *a, vt_gz_src *g) {
    for (;;) {
        if (!vt_gz_fill(g)) {
            g->done = true;
            return ARCHIVE_OK;
        }
        if (g->zs.next_in[0] == 0x1f) {
            if (inflateReset(&g->zs) != Z_OK) break;
            return ARCHIVE_OK;
        }
        while (g->zs.avail_in > 0 && g->zs.next_in[0] == 0) {
            g->zs.next_in++;
            g->zs.avail_in--;
        }
        if (g->zs.avail_in > 0) break;
    }
    vt_gz_fail(a, "gzip: unexpected bytes after the end of the compressed data");
    return ARCHIVE_FATAL;
}

static la_ssize_t vt_gz_read(struct archive *a, void *ud, const void **buf) {
    vt_gz_src *g = ud;
    *buf = g->out;
    g->zs.next_out = g->out;
    g->zs.avail_out = sizeof g->out;
    while (!g->done && g->zs.avail_out == sizeof g->out) {
        if (!vt_gz_fill(g)) {
            vt_gz_fail(a, "gzip: the compressed data ends early (truncated file)");
            return -1;
        }
        uInt before = g->zs.avail_out;
        int r = inflate(&g->zs, Z_NO_FLUSH);
        g->out_total += before - g->zs.avail_out;
        if (g->out_total > g->out_limit) {
            vt_gz_fail(a, "gzip: inflates to over %llu bytes, %u times its %llu bytes (a decompression bomb?)",
                       (unsigned long long)g->out_limit, VT_INFLATE_RATIO, (unsigned long long)g->in_size);
            return -1;
        }
        if (r == Z_STREAM_END) {
            if (vt_gz_after_member(a, g) != ARCHIVE_OK) return -1;
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            /* Z_DATA_ERROR covers "incorrect data check" (CRC32) and "incorrect length check" */
            vt_gz_fail(a, "gzip: %s", g->zs.msg ? g->zs.msg : "damaged compressed data");
            return -1;
        }
    }
    return (la_ssize_t)(sizeof g->out - g->zs.avail_out);
}

static int vt_gz_close(struct archive *a, void *ud) {
    (void)a;
    vt_gz_src *g = ud;
    if (g->zs_ready) inflateEnd(&g->zs);
    if (g->fd >= 0) close(g->fd);
    free(g);
    return ARCHIVE_OK;
}

/* Inflates what is left after libarchive saw the end of the tar, so that the trailer is checked. */
vt_status vt_gz_drain(struct archive *a, vt_gz_src *g, const char *path) {
    if (!g) return VT_OK;
    const void *b;
    la_ssize_t k;
    while ((k = vt_gz_read(a, g, &b)) > 0) {}
    if (k < 0) return vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated: %s", path, vt_archive_why(a));
    return VT_OK;
}

/* Opens path for reading members; *gz is the gzip source when path is gzip (NULL otherwise), which
 * vt_gz_drain finishes once the caller has seen the end of the tar. */
struct archive *vt_archive_open(const char *path, vt_gz_src **gz) {
    if (gz) *gz = NULL;
    vt_gz_why[0] = 0;
    if (vt_check_regular_file(path, "dataset archive") != VT_OK) return NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        vt_error(VT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char magic[2] = {0, 0};
    bool is_gz = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    struct archive *a = archive_read_new();
    vt_gz_src *g = is_gz && a ? calloc(1, sizeof *g) : NULL;
    if (!a || (is_gz && !g)) {
        vt_error(VT_ERR_OOM, "%s: no memory for the archive reader", path);
        if (a) archive_read_free(a);
        close(fd);
        return NULL;
    }
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    int r;
    if (is_gz) {
        g->fd = fd;
        struct stat st;
        g->in_size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
        g->out_limit = vt_inflate_limit(g->in_size);
        if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK) {
            vt_error(VT_ERR_OOM, "%s: zlib could not start", path);
            close(fd);
            free(g);
            archive_read_free(a);
            return NULL;
        }
        g->zs_ready = true;
        r = archive_read_open(a, g, NULL, vt_gz_read, vt_gz_close); /* owns g from here */
    } else {
        close(fd);
        archive_read_support_filter_all(a);
        r = archive_read_open_filename(a, path, 1 << 16);
    }
    if (r != ARCHIVE_OK) {
        vt_error(VT_ERR_FORMAT, "%s: not a readable .tar.gz archive: %s", path, vt_archive_why(a));
        archive_read_free(a);
        return NULL;
    }
    if (gz) *gz = g;
    return a;
}

/* Reads the current member into a fresh buffer. */
vt_status vt_archive_slurp(struct archive *a, struct archive_entry *e, const char *path, const char *member,
                           uint64_t limit, uint8_t **data, size_t *len) {
    if (limit > VT_MEMBER_MAX) limit = VT_MEMBER_MAX;
    /* The tar header says how big the member is: refuse it, or take exactly that (plus room to see
     * that no more comes), instead of doubling a buffer towards the limit. */
    la_int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    if (declared > (la_int64_t)limit)
        return vt_error(VT_ERR_FORMAT, "%s: member %s declares %lld bytes, over the limit of %llu for this archive",
                        path, member, (long long)declared, (unsigned long long)limit);
    size_t cap = declared >= 0 ? (size_t)declared + (1 << 16) : (size_t)1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return vt_error(VT_ERR_OOM, "%s: no memory", path);
    for (;;) {
        if (cap - n < (1 << 16)) {
            if (cap >= limit) {
                free(buf);
                return vt_error(VT_ERR_FORMAT, "%s: member %s is over the limit of %llu bytes for this archive", path,
                                member, (unsigned long long)limit);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return vt_error(VT_ERR_OOM, "%s: no memory for member %s", path, member);
            }
            buf = nb;
            cap *= 2;
        }
        la_ssize_t k = archive_read_data(a, buf + n, cap - n);
        if (k < 0) {
            vt_status s = vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated (in member %s at byte %zu): %s",
                                   path, member, n, vt_archive_why(a));
            free(buf);
            return s;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    *data = buf;
    *len = n;
    return VT_OK;
}
