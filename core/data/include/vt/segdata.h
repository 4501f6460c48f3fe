/* Semantic-segmentation datasets on disk, loaded whole into memory (u8 CHW images and u8 masks of class
 * ids), the masks written back in each dataset's own format, and the segmentation metric (confusion
 * matrix, per-class IoU, mIoU, pixel accuracy) counted over a whole set. Two layouts:
 *   deepglobe: DIR/training/ and DIR/validation/ of NNNN_sat.jpg + NNNN_mask.png (RGB colour masks);
 *   camvid:    SegNet's DIR/{train,val,test}/ images with DIR/{train,val,test}annot/ greyscale id PNGs.
 * See docs/segmentation.md. */
#ifndef VT_SEGDATA_H
#define VT_SEGDATA_H

#include "vt/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The mask value of a pixel that the loss and the metric ignore (deepglobe's black and red "unknown",
 * camvid's void 11). Every other mask value is a class id below n_classes. */
#define VT_SEG_IGNORE 255

typedef enum vt_seg_layout { VT_SEG_AUTO = 0, VT_SEG_DEEPGLOBE, VT_SEG_CAMVID } vt_seg_layout;

/* How opts.h x opts.w is reached from the stored size: resized (images bilinear, masks nearest) or
 * cropped at the centre (both the same window). */
typedef enum vt_seg_fit { VT_SEG_RESIZE = 0, VT_SEG_CROP } vt_seg_fit;

typedef struct vt_segdata_opts {
    int64_t limit;  /* 0 = all; else the first N pairs (sorted by name) */
    int h, w;       /* 0, 0 = the stored size; else the size every pair is brought to */
    vt_seg_fit fit; /* with h, w: resize or centre crop (a crop may not be larger than the image) */
} vt_segdata_opts;

typedef struct vt_segdata {
    int64_t n;
    int c, h, w;       /* images are u8 CHW, n*3*h*w bytes, R plane then G then B */
    uint8_t *images;
    uint8_t *masks;    /* n*h*w class ids 0..n_classes-1, or VT_SEG_IGNORE */
    int n_classes;     /* the known classes: 6 (deepglobe), 11 (camvid) */
    const char *const *class_names; /* n_classes static names */
    uint8_t ignore;    /* VT_SEG_IGNORE */
    char **names;      /* n base names of the pairs ("0000", "0001TP_006690") */
    vt_seg_layout layout;
    char format[32];   /* "deepglobe" or "camvid" */
    char source[512];  /* the folder the split was read from */
} vt_segdata;

/* Which layout DIR holds: deepglobe (DIR/training or DIR/validation holding *_sat.* files) or camvid
 * (DIR/<split> beside DIR/<split>annot for train, val or test); VT_ERR_NOT_FOUND saying what was
 * looked for otherwise. */
vt_status vt_segdata_detect(const char *path, vt_seg_layout *layout);

/* Reads one split: "train" or "val" (deepglobe's training/validation; those names are accepted too),
 * or "test" (camvid). layout VT_SEG_AUTO detects it. opts may be NULL (every pair, stored size). Every
 * pair must have both files, the same size as the first pair, a colour (deepglobe) or 8-bit greyscale
 * (camvid) mask with only valid values; anything else is refused with the file named. On failure *out
 * is zeroed and nothing is held. */
vt_status vt_segdata_load(const char *path, const char *split, vt_seg_layout layout, const vt_segdata_opts *opts,
                          vt_segdata *out);
void vt_segdata_free(vt_segdata *d);

/* deepglobe's colour -> class, as the practice's evaluation script: each channel thresholded at 128
 * (>= 128 is on), cyan 0, yellow 1, purple 2, green 3, blue 4, white 5; black and red VT_SEG_IGNORE. */
uint8_t vt_seg_deepglobe_class(uint8_t r, uint8_t g, uint8_t b);
/* Class names and count of a layout (NULL, 0 for VT_SEG_AUTO). */
const char *const *vt_seg_class_names(vt_seg_layout layout, int *n_classes);

/* Writes an h x w mask of class ids (or VT_SEG_IGNORE) as the layout's own PNG: deepglobe an RGB
 * colour mask (ignored pixels black), camvid 8-bit grey ids (ignored pixels 11). A value that is
 * neither a class nor VT_SEG_IGNORE is refused with its pixel named. */
vt_status vt_seg_write_mask(const char *path, vt_seg_layout layout, const uint8_t *mask, int h, int w);

/* The confusion matrix of a whole set: (k+1) x (k+1) counts, row = truth, column = prediction; row k
 * counts the pixels whose truth is ignored, column k the predictions that are no class (>= k). */
typedef struct vt_seg_confusion {
    int k;
    uint64_t *m;
} vt_seg_confusion;

vt_status vt_seg_confusion_init(vt_seg_confusion *c, int k);
void vt_seg_confusion_free(vt_seg_confusion *c);
/* Adds n pixels: truth in 0..k-1 or ignore (anything else is refused, nothing added), pred any byte. */
vt_status vt_seg_confusion_add(vt_seg_confusion *c, const uint8_t *pred, const uint8_t *truth, int64_t n,
                               uint8_t ignore);

typedef struct vt_seg_scores {
    double iou[256];          /* per class TP/(TP+FP+FN), ignored-truth pixels excluded; NaN when 0/0 */
    double iou_practice[256]; /* the same with the practice's FP, which counts ignored-truth pixels too */
    double miou;              /* mean of iou over the classes where it is not 0/0 (NaN if none) */
    double miou_practice;     /* mean of iou_practice likewise */
    double pixel_acc;         /* correct / pixels with a known truth (NaN if none) */
    int n_valid;              /* classes counted in miou */
    uint64_t pixels;          /* pixels with a known truth */
} vt_seg_scores;

void vt_seg_scores_compute(const vt_seg_confusion *c, vt_seg_scores *s);

#ifdef __cplusplus
}
#endif
#endif
