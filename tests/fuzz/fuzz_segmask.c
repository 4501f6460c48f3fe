/* libFuzzer harness for the segmentation mask decoder (deepglobe's RGB colour masks, camvid's 8-bit
 * grey id masks): any input either decodes to a mask of the size its header gave or returns an error
 * with nothing allocated; nothing crashes or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "segdata_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const vt_seg_layout layouts[2] = {VT_SEG_DEEPGLOBE, VT_SEG_CAMVID};
    for (int l = 0; l < 2; l++) {
        int w = 0, h = 0;
        uint8_t *px = NULL;
        if (vt_mask_decode(data, size, "fuzz_mask.png", layouts[l], true, &w, &h, &px) == VT_OK && px) abort();
        if (vt_mask_decode(data, size, "fuzz_mask.png", layouts[l], false, &w, &h, &px) == VT_OK) {
            if (!px || w <= 0 || h <= 0) abort();
            size_t n = (size_t)w * (size_t)h * (layouts[l] == VT_SEG_DEEPGLOBE ? 3 : 1);
            volatile uint8_t sink = px[0] ^ px[n - 1]; /* the whole mask is there */
            (void)sink;
            free(px);
        } else if (px) {
            abort(); /* a failure leaves nothing allocated */
        }
    }
    return 0;
}
