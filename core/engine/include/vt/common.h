/* vtrain common definitions: status codes, the thread-local error message, dtypes.
 * Every library call returns a vt_status and, on failure, leaves a message in vt_last_error(). */
#ifndef VT_COMMON_H
#define VT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_status {
    VT_OK = 0,
    VT_ERR_INVALID_ARG, /* bad argument, bad flag, bad parameter value */
    VT_ERR_SHAPE,       /* shapes do not agree */
    VT_ERR_DTYPE,       /* dtype not supported by this op */
    VT_ERR_UNSUPPORTED, /* op/feature not implemented on this backend */
    VT_ERR_OOM,         /* host or device allocation failed */
    VT_ERR_DEVICE,      /* API error from OpenCL / Vulkan / CUDA */
    VT_ERR_DEVICE_LOST, /* the device is gone; stop cleanly */
    VT_ERR_IO,          /* file system error (open, read, write, fsync, rename) */
    VT_ERR_FORMAT,      /* malformed file / record / field */
    VT_ERR_CHECKSUM,    /* checksum mismatch */
    VT_ERR_NOT_FOUND,   /* file, key, device or backend not found */
    VT_ERR_NETWORK,     /* download failed */
    VT_ERR_INTERRUPTED, /* SIGINT / SIGTERM */
    VT_ERR_NUMERIC,     /* NaN / Inf */
    VT_STATUS_COUNT
} vt_status;

const char *vt_status_name(vt_status s);

/* Thread-local message of the last failure ("conv2d: ..."). Never NULL. */
const char *vt_last_error(void);
/* Where that failure was raised ("file.c:123"), for `vtrain -v`; "" when none. */
const char *vt_last_error_location(void);
void vt_clear_error(void);
/* Sets the message and returns s, so that `return vt_error(VT_ERR_SHAPE, "...", ...);` works. */
vt_status vt_set_error_at(const char *file, int line, vt_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define vt_error(s, ...) vt_set_error_at(__FILE__, __LINE__, (s), __VA_ARGS__)

/* Propagate a failure unchanged. */
#define VT_TRY(expr)                              \
    do {                                          \
        vt_status vt_try_s_ = (expr);             \
        if (vt_try_s_ != VT_OK) return vt_try_s_; \
    } while (0)

typedef enum vt_dtype {
    VT_F32 = 0,
    VT_F16,  /* reserved: no op supports it yet */
    VT_BF16, /* reserved: no op supports it yet */
    VT_I32,
    VT_U32,
    VT_U8,
    VT_DTYPE_COUNT
} vt_dtype;

/* Refuses anything but an existing regular file before it is opened (a FIFO would block open()
 * forever, a folder reads as garbage): VT_ERR_NOT_FOUND when missing, VT_ERR_IO otherwise; the
 * message names `what` (e.g. "checkpoint") and the path. */
vt_status vt_check_regular_file(const char *path, const char *what);
/* 1 when a and b name the same existing file (same device and inode), else 0. */
int vt_same_file(const char *a, const char *b);

/* The shortest %g text (1 to 9 digits) that reads back as the same float: 0.005, not
 * 0.00499999988824129. For finite v; writes at most 16 characters. */
void vt_float_shortest(float v, char *buf, size_t n);

/* The library never prints: what it has to say goes through one log callback, which a program
 * installs (the vtrain CLI does; like ggml_log_set). Without one, warnings and errors go to stderr
 * and the rest is dropped. vt_log_set(NULL, NULL) restores that default. Thread-safe to call vt_log;
 * install the callback before starting threads. */
typedef enum vt_log_level { VT_LOG_DEBUG = 0, VT_LOG_INFO, VT_LOG_WARN, VT_LOG_ERROR } vt_log_level;
typedef void (*vt_log_fn)(vt_log_level level, const char *text, void *user);
void vt_log_set(vt_log_fn fn, void *user);
void vt_log(vt_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

size_t vt_dtype_size(vt_dtype t);
const char *vt_dtype_name(vt_dtype t);

#ifdef __cplusplus
}
#endif
#endif
