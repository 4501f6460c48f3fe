/* Writing a file so that a crash or a full disk never leaves a half-written one: the bytes go to
 * <path>.tmp.<pid> in the same folder, which commit fsyncs, renames over path and follows with an
 * fsync of the folder. Until the rename succeeds the previous file at path is untouched; on any
 * failure the temp file is removed. Checkpoints and safetensors files are written this way. */
#ifndef VT_ATOMIC_FILE_H
#define VT_ATOMIC_FILE_H

#include "vt/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_atomic_file {
    int fd;       /* of the temp file; -1 once closed */
    char *path;   /* the final name */
    char *tmp;    /* the temp file's name */
    uint32_t crc; /* running zlib CRC32 of every byte written (formats that end in a checksum) */
    uint64_t pos; /* bytes written */
} vt_atomic_file;

/* Creates the temp file for path. On failure nothing is left behind and *f needs no abort. */
vt_status vt_afile_open(vt_atomic_file *f, const char *path);
/* Appends n bytes. A failed write (VT_ERR_IO naming path and the byte offset) leaves f open: the
 * caller aborts it. */
vt_status vt_afile_write(vt_atomic_file *f, const void *data, size_t n);
/* Appends `byte` until the size is a multiple of align. */
vt_status vt_afile_pad(vt_atomic_file *f, size_t align, unsigned char byte);
/* fsync, close, rename over path, fsync the folder. On failure the temp file is removed (f is
 * aborted); a failure of the last step alone means the new file is in place but may not survive a
 * power cut. */
vt_status vt_afile_commit(vt_atomic_file *f);
/* Closes and removes the temp file; path keeps its previous content. Safe to repeat, and a no-op
 * after a commit. */
void vt_afile_abort(vt_atomic_file *f);

/* The whole file at once: open, write n bytes of data, commit (abort on any failure). */
vt_status vt_atomic_write(const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
