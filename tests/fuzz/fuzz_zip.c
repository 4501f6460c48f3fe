/* libFuzzer harness: the ZIP reader (central directory, ZIP64, local headers, CRC) and the
 * whole torch.save() archive path on arbitrary bytes. */
#include "weights_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_zip z;
    if (vt_zip_open_mem(&z, data, size, "fuzz") == VT_OK) {
        for (size_t i = 0; i < z.count; i++) {
            const unsigned char *p;
            if (vt_zip_data(&z, &z.e[i], &p) == VT_OK && z.e[i].size > 0) {
                volatile unsigned char sink = p[z.e[i].size - 1];
                (void)sink;
            }
        }
        vt_zip_close(&z);
    }
    vt_tensor_dict d;
    if (vt_pth_read_mem(data, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    return 0;
}
