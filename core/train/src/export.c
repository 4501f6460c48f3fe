/* `vtrain export`: a checkpoint's weights as safetensors with torchvision-style names, and what a
 * user needs to run them in __metadata__ (problem, class names, normalisation, input size). */
#include <cjson/cJSON.h>
#include <math.h>
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

/* Adds key: the compact JSON text of item (safetensors metadata maps strings to strings). A list
 * of numbers is written with each number in the shortest form that reads back to the same float
 * (0.485, not 0.485000014: the values were float32 in the trainer). */
static void meta_json_string(cJSON *md, const char *key, const cJSON *item) {
    if (!item) return;
    int numbers = cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0 && cJSON_GetArraySize(item) <= 16;
    const cJSON *e;
    cJSON_ArrayForEach(e, item) numbers &= cJSON_IsNumber(e) && isfinite(e->valuedouble);
    if (numbers) {
        char txt[16 * 32 + 4];
        size_t k = 0;
        txt[k++] = '[';
        cJSON_ArrayForEach(e, item) {
            float v = (float)e->valuedouble;
            char num[32];
            vt_float_shortest(v, num, sizeof num);
            k += (size_t)snprintf(txt + k, sizeof txt - k, "%s%s", k > 1 ? "," : "", num);
        }
        snprintf(txt + k, sizeof txt - k, "]");
        cJSON_AddStringToObject(md, key, txt);
        return;
    }
    char *txt = cJSON_PrintUnformatted(item);
    if (txt) cJSON_AddStringToObject(md, key, txt);
    free(txt);
}

/* The __metadata__ object from the checkpoint's meta: "problem", "class_names" (a JSON list),
 * "normalize_mean"/"normalize_std" (JSON lists of 3), "input_size" (JSON [C, H, W]). */
static char *export_metadata(const cJSON *meta) {
    cJSON *md = cJSON_CreateObject();
    if (!md) return NULL;
    cJSON_AddStringToObject(md, "format", "pt");
    cJSON_AddStringToObject(md, "exporter", "vtrain");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(meta, "config");
    const cJSON *prob = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "problem") : NULL;
    if (cJSON_IsString(prob)) cJSON_AddStringToObject(md, "problem", prob->valuestring);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(meta, "class_names");
    if (cJSON_IsArray(names)) meta_json_string(md, "class_names", names);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(meta, "normalize");
    if (cJSON_IsObject(norm)) {
        meta_json_string(md, "normalize_mean", cJSON_GetObjectItemCaseSensitive(norm, "mean"));
        meta_json_string(md, "normalize_std", cJSON_GetObjectItemCaseSensitive(norm, "std"));
    }
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(meta, "input_size");
    if (cJSON_IsArray(in)) meta_json_string(md, "input_size", in);
    char *txt = cJSON_PrintUnformatted(md);
    cJSON_Delete(md);
    return txt;
}

vt_status vt_export_checkpoint(const char *ckpt, const char *out_path) {
    VT_TRY(vt_check_regular_file(ckpt, "checkpoint"));
    if (!out_path || !out_path[0]) return vt_error(VT_ERR_INVALID_ARG, "no output path given for the export");
    /* also through a symlink or a hard link: writing it would destroy the input */
    if (vt_same_file(ckpt, out_path))
        return vt_error(VT_ERR_INVALID_ARG, "the output %s is the input checkpoint %s itself; choose another --out",
                        out_path, ckpt);
    vt_tensor_dict d = {0}, out = {0};
    VT_TRY(vt_ckpt_read(ckpt, &d));
    vt_status s = VT_OK;
    cJSON *meta = cJSON_Parse(d.meta_json ? d.meta_json : "");
    /* torchvision counts the batches each BN layer saw in training mode: the checkpoint records that
     * (imported + counted); checkpoints from before it only have the global step */
    double tracked = meta ? jnum(meta, "bn_batches_tracked", jnum(meta, "global_step", 0)) : 0;
    if (!(tracked >= 0)) tracked = 0;
    if (tracked > 2147483647.0) tracked = 2147483647.0;
    int32_t batches = (int32_t)tracked;
    char *md = meta ? export_metadata(meta) : NULL;
    cJSON_Delete(meta);
    if (md) s = vt_dict_set_meta(&out, md);
    free(md);
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
