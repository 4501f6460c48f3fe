/* libFuzzer harness: the safetensors reader on arbitrary bytes (header JSON, offsets, dtypes).
 * It must return an error or a dict, never crash, leak or read out of bounds. */
#include "weights_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_tensor_dict d;
    if (vt_safetensors_read_mem(data, size, "fuzz", &d) == VT_OK) vt_dict_free(&d);
    return 0;
}
