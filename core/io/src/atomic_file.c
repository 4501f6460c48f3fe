/* The one implementation of atomic file writing (vt/atomic_file.h): temp file beside the target,
 * fsync, rename, fsync of the folder. */
#define _POSIX_C_SOURCE 200809L
#include "vt/atomic_file.h"

#include "checkpoint_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

vt_status vt_afile_open(vt_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path || !*path) return vt_error(VT_ERR_INVALID_ARG, "atomic write: empty path");
    size_t n = strlen(path);
    f->path = malloc(n + 1);
    f->tmp = malloc(n + 32);
    if (!f->path || !f->tmp) {
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        return vt_error(VT_ERR_OOM, "%s: cannot allocate path strings", path);
    }
    memcpy(f->path, path, n + 1);
    snprintf(f->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f->fd < 0) {
        int e = errno;
        vt_status s = vt_error(VT_ERR_IO, "%s: cannot create temp file %s: %s", path, f->tmp, strerror(e));
        free(f->path);
        free(f->tmp);
        f->path = f->tmp = NULL;
        return s;
    }
    f->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    return VT_OK;
}

void vt_afile_abort(vt_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->tmp) unlink(f->tmp);
    free(f->path);
    free(f->tmp);
    f->fd = -1;
    f->path = f->tmp = NULL;
}

vt_status vt_afile_write(vt_atomic_file *f, const void *data, size_t n) {
    const unsigned char *p = data;
    f->crc = vt_crc32(f->crc, data, n);
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
        ssize_t w = write(f->fd, p + done, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            vt_status s = vt_error(VT_ERR_IO, "%s: write failed at byte %llu: %s", f->path,
                                   (unsigned long long)(f->pos + done), strerror(e));
            return s;
        }
        done += (size_t)w;
    }
    f->pos += n;
    return VT_OK;
}

vt_status vt_afile_pad(vt_atomic_file *f, size_t align, unsigned char byte) {
    static unsigned char zeros[256];
    unsigned char fill[256];
    const unsigned char *src = zeros;
    if (byte) {
        memset(fill, byte, sizeof fill);
        src = fill;
    }
    size_t rem = (size_t)(f->pos % align);
    size_t pad = rem ? align - rem : 0;
    while (pad > 0) {
        size_t k = pad > sizeof fill ? sizeof fill : pad;
        VT_TRY(vt_afile_write(f, src, k));
        pad -= k;
    }
    return VT_OK;
}

static vt_status fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY);
    if (fd < 0) return vt_error(VT_ERR_IO, "%s: cannot open folder %s to fsync it: %s", path, dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot fsync a folder; the rename itself has still happened. */
    if (r != 0 && e != EINVAL && e != EROFS && e != EBADF)
        return vt_error(VT_ERR_IO, "%s: fsync of folder %s failed: %s", path, dir, strerror(e));
    return VT_OK;
}

vt_status vt_afile_commit(vt_atomic_file *f) {
    if (fsync(f->fd) != 0) {
        vt_status s = vt_error(VT_ERR_IO, "%s: fsync failed: %s", f->path, strerror(errno));
        vt_afile_abort(f);
        return s;
    }
    int r = close(f->fd);
    f->fd = -1;
    if (r != 0) {
        vt_status s = vt_error(VT_ERR_IO, "%s: close failed: %s", f->path, strerror(errno));
        vt_afile_abort(f);
        return s;
    }
    if (rename(f->tmp, f->path) != 0) {
        vt_status s = vt_error(VT_ERR_IO, "%s: rename from %s failed: %s", f->path, f->tmp, strerror(errno));
        vt_afile_abort(f);
        return s;
    }
    vt_status s = fsync_parent_dir(f->path);
    free(f->path);
    free(f->tmp);
    f->path = f->tmp = NULL;
    return s;
}

vt_status vt_atomic_write(const char *path, const void *data, size_t n) {
    vt_atomic_file f;
    VT_TRY(vt_afile_open(&f, path));
    vt_status s = vt_afile_write(&f, data, n);
    if (s != VT_OK) {
        vt_afile_abort(&f);
        return s;
    }
    return vt_afile_commit(&f);
}
