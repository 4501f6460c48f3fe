/* libFuzzer harness for the conformance case-file reader (vtrain conformance --cases): the JSON
 * documents are written to a temp file because the reader takes a path. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "vt/conformance.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/vt_fuzz_cases_%d.json", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    if (size && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);
    vt_conf_case *cases = NULL;
    int n = 0;
    if (vt_conf_load_file(path, &cases, &n) == VT_OK) vt_conf_cases_free(cases, n);
    unlink(path);
    return 0;
}
