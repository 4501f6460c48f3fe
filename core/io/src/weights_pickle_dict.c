/* From the value a torch.save() pickle returns to a tensor dict: finds the state_dict (also inside
 * a training checkpoint's {"state_dict": ...}), then copies each tensor out of its storage with
 * any strides, converting to f32/i32/u8. */
#include "weights_pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pv_names[] = {"mark",  "None", "bool", "int",    "float",   "str",
                                       "tuple", "list", "dict", "global", "storage", "tensor"};

/* Copies one tensor out of its storage (any strides) into a new dict entry. */
static vt_status add_tensor(pk *k, const char *name, const pv *t, vt_storage_fn storage, void *ctx,
                            vt_tensor_dict *out) {
    const pv *st = t->storage;
    unsigned es = vt_pickle_storage_types[st->sdt].size;
    ps_dtype sdt = vt_pickle_storage_types[st->sdt].dt;
    if (t->ndim > VT_MAX_DIMS)
        return vt_error(VT_ERR_SHAPE, "%s: tensor '%s' has %d dims, at most %d are supported", k->label, name, t->ndim,
                        VT_MAX_DIMS);
    if ((uint64_t)st->i > ((uint64_t)1 << 40) / es)
        return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': storage of %lld elements is too large", k->label, name,
                        (long long)st->i);
    const unsigned char *bytes;
    size_t nb;
    VT_TRY(storage(ctx, st->s, &bytes, &nb));
    if (nb < (uint64_t)st->i * es)
        return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': storage '%s' has %zu bytes, its %lld elements need %llu",
                        k->label, name, st->s, nb, (long long)st->i, (unsigned long long)((uint64_t)st->i * es));
    uint64_t nelem = 1, last = (uint64_t)t->i;
    for (int d = 0; d < t->ndim; d++) {
        uint64_t sz = (uint64_t)t->size[d], sd = (uint64_t)t->stride[d];
        if (sz && nelem > ((uint64_t)1 << 40) / sz)
            return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': shape is too large", k->label, name);
        nelem *= sz;
        if (sz && sd > ((uint64_t)1 << 40) / sz)
            return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': stride is too large", k->label, name);
        last += (sz ? sz - 1 : 0) * sd;
    }
    if (nelem > 0 && last >= (uint64_t)st->i)
        return vt_error(VT_ERR_FORMAT,
                        "%s: tensor '%s': offset/size/stride reach element %llu of a %lld-element storage", k->label,
                        name, (unsigned long long)last, (long long)st->i);
    vt_dtype to = (sdt <= PS_BFLOAT16) ? VT_F32 : (sdt <= PS_CHAR) ? VT_I32 : VT_U8;
    /* Stride-0 and overlapping views expand a few stored bytes into any size: the total copied out
     * is capped by what the file holds (see vt_pickle_load_state_dict). */
    uint64_t out_nb = nelem * vt_dtype_size(to);
    if (out_nb > k->max_out_bytes - k->out_bytes)
        return vt_error(
            VT_ERR_FORMAT,
            "%s: tensor '%s' would expand to %llu bytes from a %llu-byte storage (a stride-0 or "
            "overlapping view); with the tensors before it that is over the limit of %llu bytes for this file",
            k->label, name, (unsigned long long)out_nb, (unsigned long long)nb, (unsigned long long)k->max_out_bytes);
    k->out_bytes += out_nb;
    vt_status s = vt_dict_append(out, name, to, t->ndim, t->size, NULL);
    if (s != VT_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", vt_last_error());
        return vt_error(s == VT_ERR_OOM ? s : VT_ERR_FORMAT, "%s: %s", k->label, why);
    }
    void *dst = out->items[out->n - 1].data;
    int64_t idx[PT_MAX_DIMS] = {0};
    for (uint64_t i = 0; i < nelem; i++) {
        uint64_t e = (uint64_t)t->i;
        for (int d = 0; d < t->ndim; d++) e += (uint64_t)idx[d] * (uint64_t)t->stride[d];
        const unsigned char *p = bytes + e * es;
        switch (sdt) {
        case PS_FLOAT: memcpy((float *)dst + i, p, 4); break;
        case PS_DOUBLE: {
            uint64_t u = vt_rd64(p);
            double x;
            memcpy(&x, &u, 8);
            ((float *)dst)[i] = (float)x;
            break;
        }
        case PS_HALF: ((float *)dst)[i] = vt_f16_to_f32(vt_rd16(p)); break;
        case PS_BFLOAT16: ((float *)dst)[i] = vt_bf16_to_f32(vt_rd16(p)); break;
        case PS_LONG: {
            int64_t x = (int64_t)vt_rd64(p);
            if (x < INT32_MIN || x > INT32_MAX)
                return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': int64 value %lld does not fit in i32", k->label, name,
                                (long long)x);
            ((int32_t *)dst)[i] = (int32_t)x;
            break;
        }
        case PS_INT: ((int32_t *)dst)[i] = (int32_t)vt_rd32(p); break;
        case PS_SHORT: ((int32_t *)dst)[i] = (int16_t)vt_rd16(p); break;
        case PS_CHAR: ((int32_t *)dst)[i] = (signed char)p[0]; break;
        case PS_BYTE: ((unsigned char *)dst)[i] = p[0]; break;
        case PS_BOOL: ((unsigned char *)dst)[i] = p[0] != 0; break;
        }
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->size[d]) break;
            idx[d] = 0;
        }
    }
    return VT_OK;
}

static size_t count_tensors(const pv *d) {
    size_t n = 0;
    for (size_t i = 0; i + 1 < d->n; i += 2) n += d->items[i + 1]->kind == PV_TENSOR;
    return n;
}

vt_status vt_pickle_load_state_dict(const unsigned char *pkl, size_t n, const char *label, vt_storage_fn storage,
                                    void *ctx, uint64_t max_out_bytes, vt_tensor_dict *out) {
    pk k;
    memset(&k, 0, sizeof k);
    memset(out, 0, sizeof *out);
    k.max_out_bytes = max_out_bytes;
    k.p = k.start = pkl;
    k.end = pkl + n;
    k.label = label ? label : "(memory)";
    pv *root = NULL;
    vt_status s = vt_pickle_run(&k, &root);
    if (s == VT_OK && root->kind != PV_DICT)
        s = vt_error(VT_ERR_FORMAT, "%s: pickle holds a %s, not a state_dict (dict of tensors)", k.label,
                     pv_names[root->kind]);
    /* Training checkpoints often wrap the state_dict: {"state_dict": {...}, "epoch": ...}. */
    if (s == VT_OK && count_tensors(root) == 0) {
        for (size_t i = 0; i + 1 < root->n; i += 2) {
            const pv *key = root->items[i], *val = root->items[i + 1];
            if (key->kind == PV_STR && val->kind == PV_DICT && count_tensors(val) > 0 &&
                (strcmp(key->s, "state_dict") == 0 || strcmp(key->s, "model") == 0 ||
                 strcmp(key->s, "model_state_dict") == 0)) {
                root = root->items[i + 1];
                break;
            }
        }
    }
    for (size_t i = 0; s == VT_OK && i + 1 < root->n; i += 2) {
        const pv *key = root->items[i], *val = root->items[i + 1];
        if (val->kind != PV_TENSOR) continue;
        if (key->kind != PV_STR || strlen(key->s) != key->slen) {
            s = vt_error(VT_ERR_FORMAT, "%s: state_dict key %zu is not a string", k.label, i / 2);
            break;
        }
        if (key->slen == 0 || key->slen >= VT_CKPT_NAME_MAX) {
            s = vt_error(VT_ERR_FORMAT, "%s: state_dict key '%.60s' must have 1..%d bytes", k.label, key->s,
                         VT_CKPT_NAME_MAX - 1);
            break;
        }
        if (out->n >= VT_WEIGHTS_MAX_TENSORS) {
            s = vt_error(VT_ERR_FORMAT, "%s: over %d tensors", k.label, VT_WEIGHTS_MAX_TENSORS);
            break;
        }
        s = add_tensor(&k, key->s, val, storage, ctx, out);
    }
    if (s == VT_OK) s = vt_dict_check_unique(out, k.label);
    vt_pickle_free(&k);
    if (s != VT_OK) vt_dict_free(out);
    return s;
}
