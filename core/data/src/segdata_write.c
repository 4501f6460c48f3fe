/* Predicted masks written back in each layout's own format: the practice's colour PNG (ignored pixels
 * black, "unknown"), CamVid's greyscale ids (ignored pixels 11, void). */
#include "vt/segdata.h"

#include "dataset_internal.h"
#include "segdata_internal.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing a mask -------------------------------------------------------------------------- */

vt_status vt_seg_write_mask(const char *path, vt_seg_layout layout, const uint8_t *mask, int h, int w) {
    if (!path || !mask || h <= 0 || w <= 0 || (uint64_t)w * (uint64_t)h > VT_IMAGE_MAX_PIXELS)
        return vt_error(VT_ERR_INVALID_ARG, "%s: cannot write a %dx%d mask", path ? path : "(null)", w, h);
    if (layout != VT_SEG_DEEPGLOBE && layout != VT_SEG_CAMVID)
        return vt_error(VT_ERR_INVALID_ARG, "%s: unknown segmentation layout %d", path, (int)layout);
    int k = layout == VT_SEG_DEEPGLOBE ? 6 : 11, ch = layout == VT_SEG_DEEPGLOBE ? 3 : 1;
    size_t plane = (size_t)w * (size_t)h;
    uint8_t *px = malloc(plane * (size_t)ch);
    if (!px) return vt_error(VT_ERR_OOM, "%s: no memory for a %dx%d mask", path, w, h);
    for (size_t i = 0; i < plane; i++) {
        uint8_t v = mask[i];
        if (v >= k && v != VT_SEG_IGNORE) {
            free(px);
            return vt_error(VT_ERR_INVALID_ARG, "%s: pixel (x %zu, y %zu) holds %u, neither a class 0..%d nor %u",
                            path, i % (size_t)w, i / (size_t)w, v, k - 1, VT_SEG_IGNORE);
        }
        if (layout == VT_SEG_CAMVID) {
            px[i] = v == VT_SEG_IGNORE ? VT_CAMVID_VOID : v;
        } else {
            for (int c = 0; c < 3; c++) px[3 * i + (size_t)c] = v == VT_SEG_IGNORE ? 0 : vt_deepglobe_rgb[v][c];
        }
    }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = layout == VT_SEG_DEEPGLOBE ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    vt_status s = VT_OK;
    if (!png_image_write_to_file(&img, path, 0, px, 0, NULL))
        s = vt_error(VT_ERR_IO, "%s: cannot write the mask PNG: %s", path, img.message);
    png_image_free(&img);
    free(px);
    return s;
}
