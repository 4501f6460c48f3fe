/* libFuzzer harness: the ZIP reader (central directory, ZIP64, local headers, CRC) and the whole
 * torch.save() archive path, once as given and once with entry CRCs fixed so mutations go deeper. */
#include "weights_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_zip z;
    unsigned char *fixed = NULL;
    if (vt_zip_open_mem(&z, data, size, "fuzz") == VT_OK) {
        fixed = malloc(size ? size : 1);
        if (fixed) memcpy(fixed, data, size);
        for (size_t i = 0; i < z.count; i++) {
            const unsigned char *p;
            if (vt_zip_data(&z, &z.e[i], &p) == VT_OK && z.e[i].size > 0) {
                volatile unsigned char sink = p[z.e[i].size - 1];
                (void)sink;
            }
            if (fixed) vt_wr32(fixed + z.e[i].cd_off + 16, vt_crc32(0, data + z.e[i].data_off, (size_t)z.e[i].size));
        }
        vt_zip_close(&z);
    }
    vt_tensor_dict d;
    if (vt_pth_read_mem(data, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    if (fixed && vt_pth_read_mem(fixed, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    free(fixed);
    return 0;
}
