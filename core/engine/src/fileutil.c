/* File checks shared by every reader: refuse non-regular files before opening them. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "vt/common.h"

vt_status vt_check_regular_file(const char *path, const char *what) {
    struct stat st;
    if (!path || !path[0]) return vt_error(VT_ERR_INVALID_ARG, "%s: no path given", what);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return vt_error(VT_ERR_NOT_FOUND, "%s %s: no such file", what, path);
        return vt_error(VT_ERR_IO, "%s %s: %s", what, path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) return vt_error(VT_ERR_IO, "%s %s: is a folder, not a file", what, path);
    if (!S_ISREG(st.st_mode))
        return vt_error(VT_ERR_IO, "%s %s: not a regular file (a FIFO, socket or device); refused", what, path);
    return VT_OK;
}

int vt_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
