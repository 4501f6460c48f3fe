/* libFuzzer harness: the restricted pickle reader on arbitrary bytes; every storage key resolves
 * to one fixed 4 KiB buffer so that tensor offset/size/stride checks are exercised too. */
#include "weights_internal.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char storage_bytes[4096];

static vt_status storage(void *ctx, const char *key, const unsigned char **out, size_t *n) {
    (void)ctx;
    if (strcmp(key, "missing") == 0) return vt_error(VT_ERR_FORMAT, "storage '%s' is missing", key);
    *out = storage_bytes;
    *n = sizeof storage_bytes;
    return VT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vt_tensor_dict d;
    /* the loader's cap for a file holding this pickle and the storage */
    uint64_t cap = ((uint64_t)size + sizeof storage_bytes) * VT_PTH_EXPAND_FACTOR + VT_PTH_EXPAND_SLACK;
    if (vt_pickle_load_state_dict(data, size, "fuzz", storage, NULL, cap, &d) == VT_OK) vt_dict_free(&d);
    return 0;
}
