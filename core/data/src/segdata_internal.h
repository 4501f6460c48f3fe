/* What the segmentation loader and the mask writer share. */
#ifndef VT_SEGDATA_INTERNAL_H
#define VT_SEGDATA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vt/segdata.h"

#define VT_CAMVID_VOID 11

/* the practice's colours of classes 0-5 (urban, agriculture, rangeland, forest, water, barren) */
extern const uint8_t vt_deepglobe_rgb[6][3];

/* A mask PNG in memory, checked from its header (size within VT_IMAGE_MAX_PIXELS, RGB colour for
 * deepglobe or 8-bit grey for camvid, no alpha, no 16-bit), then read with its values as stored into
 * *px (w*h*3 or w*h bytes, the caller frees). probe: the header only, *px untouched. name is for errors.
 * On failure nothing is held. (segdata.c; fuzzed by tests/fuzz/fuzz_segmask.c) */
vt_status vt_mask_decode(const uint8_t *buf, size_t len, const char *name, vt_seg_layout layout, bool probe, int *w,
                         int *h, uint8_t **px);

#endif
