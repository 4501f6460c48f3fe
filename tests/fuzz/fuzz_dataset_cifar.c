/* libFuzzer harness for the CIFAR record parser: the input is a whole .bin file; the first byte
 * picks the layout (CIFAR-100 fine/coarse or CIFAR-10) and a record limit, the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const vt_cifar_layout layouts[3] = {{2, {20, 100}, 1}, {2, {20, 100}, 0}, {1, {10, 0}, 0}};
    const vt_cifar_layout *layout = &layouts[data[0] % 3];
    int64_t limit = (data[0] >> 2) % 4; /* 0 = all */
    vt_dataset d;
    memset(&d, 0, sizeof d);
    /* Twice, as the CIFAR-10 loader appends one batch after another. */
    for (int pass = 0; pass < 2; pass++) {
        int64_t before = d.n;
        vt_status s = vt_dataset_parse_cifar_mem(data + 1, size - 1, "fuzz.bin", layout, limit, &d);
        if (s != VT_OK) {
            if (d.n != before) abort(); /* a failure must not leave records behind */
            break;
        }
        for (int64_t i = 0; i < d.n; i++)
            if (d.labels[i] < 0 || d.labels[i] >= layout->n_classes[layout->use_label]) abort();
        if (limit > 0 && d.n > limit) abort();
    }
    vt_dataset_free(&d);
    return 0;
}
