/* libFuzzer harness: the vtrain checkpoint reader on arbitrary bytes, once as given and once with
 * its header and whole-file CRCs recomputed so that mutations reach the parser behind them. */
#include "checkpoint_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_tensor_dict d;
    if (vt_ckpt_read_mem(data, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    if (size < 68) return 0;
    unsigned char *b = malloc(size);
    if (!b) return 0;
    memcpy(b, data, size);
    uint64_t hsize = vt_rd64(b + 16);
    if (hsize >= 44 && hsize <= size - 24) vt_wr32(b + hsize - 4, vt_crc32(0, b, (size_t)hsize - 4));
    vt_wr64(b + size - 16, size);
    vt_wr32(b + size - 8, vt_crc32(0, b, size - 24));
    /* the tensor CRCs too, for entries whose ranges lie inside the buffer */
    uint64_t meta = vt_rd64(b + 24);
    size_t p = 40 + (meta < size ? (size_t)meta : size);
    for (int i = 0; i < 64 && p + 2 <= size; i++) {
        size_t len = vt_rd16(b + p);
        size_t ent = 2 + len + 4 + 4 + 32;
        if (p + ent + 20 > size) break;
        uint64_t off = vt_rd64(b + p + ent), nb = vt_rd64(b + p + ent + 8);
        if (off <= size && nb <= size - off) vt_wr32(b + p + ent + 16, vt_crc32(0, b + off, (size_t)nb));
        p += ent + 20;
    }
    if (hsize >= 44 && hsize <= size - 24) vt_wr32(b + hsize - 4, vt_crc32(0, b, (size_t)hsize - 4));
    vt_wr32(b + size - 8, vt_crc32(0, b, size - 24));
    if (vt_ckpt_read_mem(b, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    free(b);
    return 0;
}
