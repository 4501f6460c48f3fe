/* Status names, the thread-local error message and dtype facts. */
#include "vt/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char vt_err_msg[1024];
/* Where the message was raised ("file.c:123"), kept apart so that users see the message alone and
 * `vtrain -v` can still show the place. */
static _Thread_local char vt_err_loc[128];

const char *vt_status_name(vt_status s) {
    static const char *names[VT_STATUS_COUNT] = {"ok",
                                                 "invalid argument",
                                                 "shape mismatch",
                                                 "unsupported dtype",
                                                 "unsupported",
                                                 "out of memory",
                                                 "device error",
                                                 "device lost",
                                                 "I/O error",
                                                 "bad format",
                                                 "checksum mismatch",
                                                 "not found",
                                                 "network error",
                                                 "interrupted",
                                                 "NaN/Inf"};
    return (s >= 0 && s < VT_STATUS_COUNT) ? names[s] : "unknown status";
}

const char *vt_last_error(void) { return vt_err_msg; }

const char *vt_last_error_location(void) { return vt_err_loc; }

void vt_clear_error(void) {
    vt_err_msg[0] = 0;
    vt_err_loc[0] = 0;
}

vt_status vt_set_error_at(const char *file, int line, vt_status s, const char *fmt, ...) {
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    /* the message may quote the previous one (vt_last_error() as an argument): format it aside first */
    char msg[sizeof vt_err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(vt_err_msg, msg, sizeof msg);
    snprintf(vt_err_loc, sizeof vt_err_loc, "%s:%d", base, line);
    return s;
}

static vt_log_fn vt_log_cb;
static void *vt_log_user;

void vt_log_set(vt_log_fn fn, void *user) {
    vt_log_cb = fn;
    vt_log_user = user;
}

void vt_log(vt_log_level level, const char *fmt, ...) {
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (vt_log_cb) {
        vt_log_cb(level, text, vt_log_user);
    } else if (level >= VT_LOG_WARN) {
        /* the one place the library writes to a stream: the default when no program installed a callback */
        size_t n = strlen(text);
        fprintf(stderr, "%s%s", text, n && text[n - 1] == '\n' ? "" : "\n");
    }
}

size_t vt_dtype_size(vt_dtype t) {
    switch (t) {
    case VT_F32:
    case VT_I32:
    case VT_U32: return 4;
    case VT_F16:
    case VT_BF16: return 2;
    case VT_U8: return 1;
    default: return 0;
    }
}

const char *vt_dtype_name(vt_dtype t) {
    switch (t) {
    case VT_F32: return "f32";
    case VT_F16: return "f16";
    case VT_BF16: return "bf16";
    case VT_I32: return "i32";
    case VT_U32: return "u32";
    case VT_U8: return "u8";
    default: return "?";
    }
}

void vt_float_shortest(float v, char *buf, size_t n) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}
