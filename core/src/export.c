/* `vtrain export`: a checkpoint's weights as safetensors with torchvision-style names. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/checkpoint.h"
#include "vt/train.h"
#include "vt/weights.h"

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

vt_status vt_export_checkpoint(const char *ckpt, const char *out_path) {
    vt_tensor_dict d = {0}, out = {0};
    VT_TRY(vt_ckpt_read(ckpt, &d));
    vt_status s = VT_OK;
    cJSON *meta = cJSON_Parse(d.meta_json ? d.meta_json : "");
    int32_t batches = (int32_t)(meta ? jnum(meta, "global_step", 0) : 0);
    cJSON_Delete(meta);
    for (size_t i = 0; i < d.n && s == VT_OK; i++) {
        const vt_host_tensor *h = &d.items[i];
        if (strncmp(h->name, "optim.", 6) == 0) continue;
        s = vt_dict_add(&out, h->name, h->dtype, h->ndim, h->shape, h->data);
        /* torchvision's BatchNorm state_dict also has num_batches_tracked (an int64 scalar; the
         * safetensors writer widens it), without which load_state_dict(strict=True) fails. */
        size_t len = strlen(h->name);
        if (s == VT_OK && len > 13 && strcmp(h->name + len - 13, ".running_mean") == 0) {
            char name[VT_CKPT_NAME_MAX];
            snprintf(name, sizeof name, "%.*s.num_batches_tracked", (int)(len - 13), h->name);
            s = vt_dict_add(&out, name, VT_I32, 0, NULL, &batches);
        }
    }
    if (s == VT_OK) s = vt_safetensors_write(out_path, &out);
    vt_dict_free(&d);
    vt_dict_free(&out);
    return s;
}

