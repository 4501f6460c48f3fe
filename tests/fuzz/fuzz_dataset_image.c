/* libFuzzer harness for the PNG and JPEG decode wrappers on memory buffers: any input either
 * decodes to a sane RGB image or returns an error; nothing leaks, crashes or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(vt_status s, vt_rgb_image *img) {
    if (s == VT_OK) {
        if (img->w <= 0 || img->h <= 0 || (int64_t)img->w * img->h > VT_IMAGE_MAX_PIXELS || !img->rgb) abort();
        volatile uint8_t sink = 0;
        size_t n = (size_t)img->w * (size_t)img->h * 3;
        for (size_t i = 0; i < n; i += 97) sink ^= img->rgb[i];
        sink ^= img->rgb[n - 1];
        (void)sink;
    } else if (img->rgb) {
        abort(); /* a failure leaves nothing allocated */
    }
    vt_rgb_image_free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_rgb_image img;
    check(vt_image_decode_mem(data, size, "fuzz", &img), &img);
    /* Each decoder on its own as well, so that either sees inputs without the other's signature. */
    check(vt_image_decode_png(data, size, "fuzz.png", &img), &img);
    check(vt_image_decode_jpeg(data, size, "fuzz.jpg", &img), &img);
    return 0;
}
