/* Private pieces of the dataset loader shared by dataset.c, dataset_image.c, download.c and the
 * fuzz harnesses: the CIFAR record parser and the PNG/JPEG decoders, all on memory buffers. */
#ifndef VT_DATASET_INTERNAL_H
#define VT_DATASET_INTERNAL_H

#include "vt/dataset.h"

#define VT_CIFAR_PIXELS 3072 /* 3 planes of 32x32 */

/* An official binary release: where it lives and what a complete extraction holds. */
typedef struct vt_release {
    const char *name;     /* "cifar100" */
    const char *format;   /* "cifar100-bin" */
    const char *folder;   /* folder inside the official archive */
    const char *archive;  /* official archive file name */
    const char *url;      /* official address */
    const char *md5;      /* of the official archive */
    const char *files[6]; /* .bin files a complete folder holds (NULL-terminated when fewer) */
} vt_release;

/* "cifar100" or "cifar10"; NULL for anything else. */
const vt_release *vt_release_find(const char *name);

typedef struct vt_cifar_layout {
    int label_bytes;  /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, then fine) */
    int n_classes[2]; /* valid range of each label byte */
    int use_label;    /* which label byte becomes the record's label */
} vt_cifar_layout;

/* Appends the records of buf (a whole .bin file called name) to d, which starts zeroed or holds
 * earlier files of the same split; stops once d->n reaches max_records (0 = no limit). Checks the
 * size is a whole number of records and every label byte is in range; on failure d keeps only what
 * it held before the call. */
vt_status vt_dataset_parse_cifar_mem(const uint8_t *buf, size_t len, const char *name, const vt_cifar_layout *layout,
                                     int64_t max_records, vt_dataset *d);

/* A decoded image, 8-bit RGB interleaved (HWC). */
typedef struct vt_rgb_image {
    int w, h;
    uint8_t *rgb;
} vt_rgb_image;

#define VT_IMAGE_MAX_PIXELS     (1 << 24)
/* An image folder's split may decode to at most VT_IMAGE_EXPAND_FACTOR times the bytes of its
 * files (photos decode to 2-10 times theirs), or VT_IMAGE_DECODE_MIN when that is more; decoding
 * threads together hold at most VT_IMAGE_DECODE_SCRATCH (at least one image). */
#define VT_IMAGE_EXPAND_FACTOR  64u
#define VT_IMAGE_DECODE_MIN     ((uint64_t)256 << 20)
#define VT_IMAGE_DECODE_SCRATCH ((uint64_t)64 << 20)

/* PNG or JPEG (told apart by their signatures) to RGB; grey and alpha are converted. name is used
 * in messages. The caller frees out->rgb with vt_rgb_image_free. */
vt_status vt_image_decode_mem(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out);
vt_status vt_image_decode_png(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out);
vt_status vt_image_decode_jpeg(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out);
void vt_rgb_image_free(vt_rgb_image *img);

/* Image-folder loading (dataset_image.c): path holds train/<class>/... and test/<class>/... */
vt_status vt_dataset_load_image_folder(const char *path, const char *split, const vt_dataset_opts *opts,
                                       vt_dataset *out);
/* True when path/train exists and holds at least one sub-folder. */
bool vt_dataset_is_image_folder(const char *path);

/* Whole file into memory (the caller frees *data). */
vt_status vt_dataset_read_file(const char *path, uint8_t **data, size_t *len);

/* A sorted listing of a folder's non-hidden entries (dataset_image.c). */
typedef struct vt_names {
    char **v;
    int n, cap;
} vt_names;
typedef enum vt_list_kind {
    VT_LIST_DIRS = 0, /* sub-folders */
    VT_LIST_IMAGES,   /* names ending .png/.jpg/.jpeg, of any file type (reading refuses a non-file by name) */
    VT_LIST_ALL       /* every name */
} vt_list_kind;
vt_status vt_list_dir(const char *dir, vt_list_kind kind, vt_names *out);
void vt_names_free(vt_names *l);
/* strcmp on two char * elements, for qsort and bsearch over vt_names.v */
int vt_cmp_str(const void *a, const void *b);

/* Class names "0".."k-1". */
char **vt_dataset_numbered_names(int k);

#endif
