/* Named host tensors with JSON metadata (vt_tensor_dict) and the vtrain checkpoint file format.
 * The byte layout, checksums and atomic-write rules are described in docs/checkpoint-format.md. */
#ifndef VT_CHECKPOINT_H
#define VT_CHECKPOINT_H

#include "vt/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VT_CKPT_NAME_MAX 160 /* bytes including the terminating NUL */
#define VT_CKPT_VERSION  1u  /* newest format version this build writes and reads */

/* One tensor in host memory. ndim may be 0 (a scalar, one element); data is owned by the dict. */
typedef struct vt_host_tensor {
    char name[VT_CKPT_NAME_MAX];
    vt_dtype dtype;
    int ndim;
    int64_t shape[VT_MAX_DIMS]; /* unused dims are 1 */
    void *data;
    size_t nbytes;
} vt_host_tensor;

typedef struct vt_tensor_dict {
    char *meta_json; /* NUL-terminated JSON text, may be NULL; owned (malloc) */
    vt_host_tensor *items;
    size_t n, cap;
} vt_tensor_dict;

/* Appends a copy of data (nelem * dtype size bytes). data == NULL gives zero-filled bytes that the
 * caller may fill through the returned item (vt_dict_find or items[n-1]). Names must be non-empty,
 * shorter than VT_CKPT_NAME_MAX and unique in the dict. */
vt_status vt_dict_add(vt_tensor_dict *d, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                      const void *data);
const vt_host_tensor *vt_dict_find(const vt_tensor_dict *d, const char *name);
/* Replaces meta_json with a copy of json (NULL clears it). */
vt_status vt_dict_set_meta(vt_tensor_dict *d, const char *json);
/* Frees everything and leaves an empty dict (safe on a zeroed or already freed dict). */
void vt_dict_free(vt_tensor_dict *d);

/* Writes atomically: <path>.tmp.<pid> in the same folder, fsync, rename over path, fsync the folder.
 * On any failure the temp file is removed, the previous file at path is untouched, VT_ERR_IO. */
vt_status vt_ckpt_write(const char *path, const vt_tensor_dict *d);
/* Reads and verifies a checkpoint into *out (which must be empty or zeroed; it is freed on failure).
 * Errors: VT_ERR_IO (open/read), VT_ERR_FORMAT (layout, bounds, newer version), VT_ERR_CHECKSUM. */
vt_status vt_ckpt_read(const char *path, vt_tensor_dict *out);

#ifdef __cplusplus
}
#endif
#endif
