/* What the segmentation loader and the mask writer share. */
#ifndef VT_SEGDATA_INTERNAL_H
#define VT_SEGDATA_INTERNAL_H

#include <stdint.h>

#define VT_CAMVID_VOID 11

/* the practice's colours of classes 0-5 (urban, agriculture, rangeland, forest, water, barren) */
extern const uint8_t vt_deepglobe_rgb[6][3];

#endif
