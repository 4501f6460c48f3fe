/* Datasets on disk: the official CIFAR-100 / CIFAR-10 binary releases (folder or .tar.gz) and
 * image folders (<path>/<split>/<class>/ of PNG or JPEG files), loaded whole into memory as u8 CHW images. */
#ifndef VT_DATASET_H
#define VT_DATASET_H

#include "vt/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vt_label_kind { VT_LABELS_FINE = 0, VT_LABELS_COARSE } vt_label_kind;

typedef struct vt_dataset_opts {
    vt_label_kind labels; /* CIFAR-100 only: fine (100 classes) or coarse (20 superclasses) */
    int64_t limit;        /* 0 = all; else first N records (for quick runs) */
} vt_dataset_opts;

typedef struct vt_dataset {
    int64_t n;
    int c, h, w; /* images are u8 CHW, n*c*h*w bytes, R plane then G then B */
    uint8_t *images;
    int32_t *labels; /* n labels in 0..n_classes-1 (NULL for a segmentation set: masks instead) */
    uint8_t *masks;  /* segmentation: n*h*w class ids 0..n_classes-1 or 255 (ignored); NULL otherwise */
    int n_classes;
    char **class_names; /* n_classes names, "0".."K-1" where the release names none */
    char format[32];    /* "cifar100-bin", "cifar10-bin", "image-folder" */
    char source[512];   /* path it was read from */
} vt_dataset;

/* Reads split "train" or "test" from path: a folder or archive; the format is detected.
 * opts may be NULL (fine labels, every record). On failure *out is zeroed and nothing is held. */
vt_status vt_dataset_load(const char *path, const char *split, const vt_dataset_opts *opts, vt_dataset *out);
void vt_dataset_free(vt_dataset *d);

/* Which dataset is at path ("cifar100-bin", ...), or VT_ERR_NOT_FOUND with a message that says what
 * was looked for and which command fetches it. */
vt_status vt_dataset_detect(const char *path, char *format, size_t n);

/* For the trainer: name is "cifar100" or "cifar10" (looked up under dir as the extracted folder or
 * the official .tar.gz), or a path to any dataset vt_dataset_detect accepts. Writes the path to
 * load into path[n]; VT_ERR_NOT_FOUND says which command fetches it. */
vt_status vt_dataset_find_or_explain(const char *name, const char *dir, char *path, size_t n);

#ifdef __cplusplus
}
#endif
#endif
