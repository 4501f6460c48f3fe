/* safetensors reader (strict bounds: offsets inside the data, no overlap, size = numel * dtype
 * size) with conversion to f32/i32, and an atomic writer that safetensors.torch.load_file accepts. */
#include "vt/atomic_file.h"
#include "weights_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float vt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float vt_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

typedef struct st_dtype {
    const char *name;
    unsigned size;
    vt_dtype to;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, VT_F32}, {"F16", 2, VT_F32}, {"BF16", 2, VT_F32}, {"F64", 8, VT_F32}, {"I64", 8, VT_I32},
    {"I32", 4, VT_I32}, {"U32", 4, VT_U32}, {"U8", 1, VT_U8},    {"BOOL", 1, VT_U8},
};

typedef struct st_range {
    uint64_t begin, end;
    const char *name;
} st_range;

static int range_cmp(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static bool json_u64(const cJSON *j, uint64_t *v) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return false;
    *v = (uint64_t)d;
    return true;
}

/* Converts n elements of source dtype `src` to the dict dtype. I64 must fit in i32. */
static vt_status st_convert(const char *label, const char *name, const st_dtype *dt, const unsigned char *src,
                            uint64_t n, void *dst) {
    if (strcmp(dt->name, "F32") == 0 || strcmp(dt->name, "I32") == 0 || strcmp(dt->name, "U32") == 0 ||
        strcmp(dt->name, "U8") == 0) {
        memcpy(dst, src, (size_t)(n * dt->size));
        return VT_OK;
    }
    float *f = dst;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * dt->size;
        if (strcmp(dt->name, "F16") == 0) {
            f[i] = vt_f16_to_f32(vt_rd16(p));
        } else if (strcmp(dt->name, "BF16") == 0) {
            f[i] = vt_bf16_to_f32(vt_rd16(p));
        } else if (strcmp(dt->name, "F64") == 0) {
            uint64_t bits = vt_rd64(p);
            double d;
            memcpy(&d, &bits, 8);
            f[i] = (float)d;
        } else if (strcmp(dt->name, "I64") == 0) {
            int64_t v = (int64_t)vt_rd64(p);
            if (v < INT32_MIN || v > INT32_MAX)
                return vt_error(VT_ERR_FORMAT, "%s: tensor '%s': int64 value %lld at element %llu does not fit in i32",
                                label, name, (long long)v, (unsigned long long)i);
            ((int32_t *)dst)[i] = (int32_t)v;
        } else { /* BOOL */
            ((unsigned char *)dst)[i] = p[0] != 0;
        }
    }
    return VT_OK;
}

/* One pass over the header text before cJSON sees it: cJSON spends about 80 bytes per value, so
 * a header of tiny values (`[0,0,0,...`) would cost 40 times its size. A safetensors header is
 * an object of tensor objects holding short arrays, so its depth and value count are bounded. */
static vt_status st_prescan(const char *h, size_t n, const char *label) {
    size_t values = 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '"') {
            for (i++; i < n && h[i] != '"'; i++)
                if (h[i] == '\\') i++;
            values++;
        } else if (c == '{' || c == '[') {
            if (++depth > VT_ST_MAX_DEPTH)
                return vt_error(VT_ERR_FORMAT,
                                "%s: safetensors: header nests deeper than %d levels at byte %zu; a "
                                "safetensors header is an object of tensor objects",
                                label, VT_ST_MAX_DEPTH, i);
            values++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
            values++;
            while (i + 1 < n && h[i + 1] != ',' && h[i + 1] != ']' && h[i + 1] != '}' && h[i + 1] != ' ') i++;
        }
        if (values > VT_ST_MAX_VALUES)
            return vt_error(VT_ERR_FORMAT,
                            "%s: safetensors: header holds over %u JSON values, the most that %d tensors "
                            "need; refused before parsing it",
                            label, VT_ST_MAX_VALUES, VT_WEIGHTS_MAX_TENSORS);
    }
    return VT_OK;
}

vt_status vt_safetensors_read_mem(const unsigned char *buf, size_t n, const char *label, vt_tensor_dict *out) {
    if (!out) return vt_error(VT_ERR_INVALID_ARG, "safetensors: NULL output");
    memset(out, 0, sizeof *out);
    if (!label) label = "(memory)";
    if (n < 8)
        return vt_error(VT_ERR_FORMAT, "%s: safetensors: file of %zu bytes is shorter than the 8-byte header length",
                        label, n);
    uint64_t hlen = vt_rd64(buf);
    if (hlen > n - 8)
        return vt_error(VT_ERR_FORMAT,
                        "%s: safetensors header of %llu bytes but the file has %zu bytes (truncated, or not a "
                        "safetensors file)",
                        label, (unsigned long long)hlen, n);
    if (hlen < 2)
        return vt_error(VT_ERR_FORMAT, "%s: safetensors header of %llu bytes cannot hold a JSON object", label,
                        (unsigned long long)hlen);
    if (hlen > VT_ST_HEADER_MAX)
        return vt_error(VT_ERR_FORMAT, "%s: safetensors header of %llu bytes is over the limit of %u", label,
                        (unsigned long long)hlen, VT_ST_HEADER_MAX);
    VT_TRY(st_prescan((const char *)buf + 8, (size_t)hlen, label));
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return vt_error(VT_ERR_FORMAT, "%s: safetensors: header is not a JSON object", label);
    }
    const unsigned char *data = buf + 8 + hlen;
    uint64_t dn = n - 8 - hlen;
    int count = cJSON_GetArraySize(root);
    st_range *ranges = calloc((size_t)count + 1, sizeof *ranges);
    vt_status s = VT_OK;
    size_t nr = 0;
    if (!ranges) {
        cJSON_Delete(root);
        return vt_error(VT_ERR_OOM, "%s: safetensors: cannot allocate %d ranges", label, count);
    }
    if (count > VT_WEIGHTS_MAX_TENSORS) {
        s = vt_error(VT_ERR_FORMAT, "%s: safetensors: %d tensors is over the limit of %d", label, count,
                     VT_WEIGHTS_MAX_TENSORS);
        goto done;
    }
    /* First pass: validate every entry and its range, so nothing is allocated for a bad file. */
    for (cJSON *e = root->child; e; e = e->next) {
        const char *name = e->string ? e->string : "";
        if (strcmp(name, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                s = vt_error(VT_ERR_FORMAT, "%s: safetensors: __metadata__ is not an object", label);
                goto done;
            }
            continue;
        }
        if (!cJSON_IsObject(e)) {
            s = vt_error(VT_ERR_FORMAT, "%s: safetensors: tensor '%.160s' is not an object", label, name);
            goto done;
        }
        size_t len = strlen(name);
        if (len == 0 || len >= VT_CKPT_NAME_MAX) {
            s = vt_error(VT_ERR_FORMAT, "%s: safetensors: tensor name '%.60s' must have 1..%d bytes", label, name,
                         VT_CKPT_NAME_MAX - 1);
            goto done;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2) {
            s = vt_error(
                VT_ERR_FORMAT,
                "%s: safetensors: tensor '%s' needs dtype (string), shape (array) and data_offsets ([begin, end])",
                label, name);
            goto done;
        }
        const st_dtype *dt = NULL;
        for (size_t k = 0; k < sizeof st_dtypes / sizeof st_dtypes[0]; k++)
            if (strcmp(jd->valuestring, st_dtypes[k].name) == 0) dt = &st_dtypes[k];
        if (!dt) {
            s = vt_error(
                VT_ERR_DTYPE,
                "%s: safetensors: tensor '%s': dtype '%.16s' is not supported (F32 F16 BF16 F64 I64 I32 U32 U8 BOOL)",
                label, name, jd->valuestring);
            goto done;
        }
        int ndim = cJSON_GetArraySize(js);
        if (ndim > VT_MAX_DIMS) {
            s = vt_error(VT_ERR_SHAPE, "%s: safetensors: tensor '%s' has %d dims, at most %d are supported", label,
                         name, ndim, VT_MAX_DIMS);
            goto done;
        }
        uint64_t nelem = 1, dim;
        for (const cJSON *d = js->child; d; d = d->next) {
            if (!json_u64(d, &dim) || (dim && nelem > ((uint64_t)1 << 40) / dim)) {
                s = vt_error(VT_ERR_FORMAT,
                             "%s: safetensors: tensor '%s': shape entry is not a sane non-negative integer", label,
                             name);
                goto done;
            }
            nelem *= dim;
        }
        uint64_t b, en;
        if (!json_u64(jo->child, &b) || !json_u64(jo->child->next, &en) || en < b || en > dn) {
            s = vt_error(VT_ERR_FORMAT, "%s: safetensors: tensor '%s': data_offsets lie outside the %llu data bytes",
                         label, name, (unsigned long long)dn);
            goto done;
        }
        if (en - b != nelem * dt->size) {
            s = vt_error(VT_ERR_FORMAT, "%s: safetensors: tensor '%s': %llu bytes stored, shape and dtype need %llu",
                         label, name, (unsigned long long)(en - b), (unsigned long long)(nelem * dt->size));
            goto done;
        }
        ranges[nr].begin = b;
        ranges[nr].end = en;
        ranges[nr].name = name;
        nr++;
    }
    qsort(ranges, nr, sizeof *ranges, range_cmp);
    /* Empty tensors own no bytes, so only non-empty ranges can overlap. */
    for (size_t i = 0, last = SIZE_MAX; i < nr; i++) {
        if (ranges[i].begin == ranges[i].end) continue;
        if (last != SIZE_MAX && ranges[i].begin < ranges[last].end) {
            s = vt_error(VT_ERR_FORMAT, "%s: safetensors: tensors '%s' and '%s' overlap", label, ranges[last].name,
                         ranges[i].name);
            goto done;
        }
        last = i;
    }
    for (cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            char *m = cJSON_PrintUnformatted(e);
            if (!m) {
                s = vt_error(VT_ERR_OOM, "%s: safetensors: cannot print __metadata__", label);
                goto done;
            }
            s = vt_dict_set_meta(out, m);
            cJSON_free(m);
            if (s != VT_OK) goto done;
            continue;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        const st_dtype *dt = NULL;
        for (size_t k = 0; k < sizeof st_dtypes / sizeof st_dtypes[0]; k++)
            if (strcmp(jd->valuestring, st_dtypes[k].name) == 0) dt = &st_dtypes[k];
        int64_t shape[VT_MAX_DIMS];
        int ndim = 0;
        uint64_t nelem = 1, v = 0;
        for (const cJSON *d = js->child; d; d = d->next) {
            json_u64(d, &v);
            shape[ndim++] = (int64_t)v;
            nelem *= v;
        }
        uint64_t b = 0;
        json_u64(jo->child, &b);
        s = vt_dict_append(out, e->string, dt->to, ndim, shape, NULL);
        if (s != VT_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", vt_last_error());
            s = vt_error(s == VT_ERR_OOM ? s : VT_ERR_FORMAT, "%s: safetensors: %s", label, why);
            goto done;
        }
        s = st_convert(label, e->string, dt, data + b, nelem, out->items[out->n - 1].data);
        if (s != VT_OK) goto done;
    }
    s = vt_dict_check_unique(out, label);
done:
    free(ranges);
    cJSON_Delete(root);
    if (s != VT_OK) vt_dict_free(out);
    return s;
}

static int name_cmp(const void *a, const void *b) {
    const vt_host_tensor *x = *(const vt_host_tensor *const *)a, *y = *(const vt_host_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* safetensors metadata must map strings to strings; anything else is kept as one string. */
static cJSON *st_metadata(const char *meta_json) {
    cJSON *m = cJSON_Parse(meta_json);
    bool strings = cJSON_IsObject(m);
    for (const cJSON *e = strings ? m->child : NULL; e; e = e->next)
        if (!cJSON_IsString(e)) strings = false;
    if (strings) return m;
    cJSON_Delete(m);
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "vtrain_meta", meta_json)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

vt_status vt_safetensors_write(const char *path, const vt_tensor_dict *d) {
    if (!path || !d) return vt_error(VT_ERR_INVALID_ARG, "vt_safetensors_write: NULL argument");
    const vt_host_tensor **order = malloc((d->n + 1) * sizeof *order);
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    vt_status s = VT_OK;
    if (!order || !root) {
        s = vt_error(VT_ERR_OOM, "%s: cannot allocate the safetensors header", path);
        goto done;
    }
    for (size_t i = 0; i < d->n; i++) order[i] = &d->items[i];
    qsort(order, d->n, sizeof *order, name_cmp);
    if (d->meta_json) {
        cJSON *m = st_metadata(d->meta_json);
        if (!m) {
            s = vt_error(VT_ERR_OOM, "%s: cannot build __metadata__", path);
            goto done;
        }
        cJSON_AddItemToObject(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < d->n; i++) {
        const vt_host_tensor *t = order[i];
        const char *dt;
        size_t nelem = 1;
        for (int k = 0; k < t->ndim; k++) nelem *= (size_t)t->shape[k];
        if (nelem * vt_dtype_size(t->dtype) != t->nbytes || (t->nbytes && !t->data)) {
            s = vt_error(VT_ERR_INVALID_ARG, "%s: tensor '%s': shape and nbytes %zu disagree", path, t->name,
                         t->nbytes);
            goto done;
        }
        uint64_t bytes = t->nbytes;
        switch (t->dtype) {
        case VT_F32: dt = "F32"; break;
        case VT_F16: dt = "F16"; break;
        case VT_BF16: dt = "BF16"; break;
        case VT_U32: dt = "U32"; break;
        case VT_U8: dt = "U8"; break;
        case VT_I32:
            dt = ends_with(t->name, "num_batches_tracked") ? "I64" : "I32";
            if (dt[1] == '6') bytes *= 2;
            break;
        default:
            s = vt_error(VT_ERR_DTYPE, "%s: tensor '%s': dtype %d cannot be written", path, t->name, (int)t->dtype);
            goto done;
        }
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!e || !shape || !offs) {
            cJSON_Delete(e);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            s = vt_error(VT_ERR_OOM, "%s: cannot build the safetensors header", path);
            goto done;
        }
        cJSON_AddItemToObject(root, t->name, e);
        cJSON_AddStringToObject(e, "dtype", dt);
        for (int k = 0; k < t->ndim; k++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[k]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddItemToObject(e, "data_offsets", offs);
        off += bytes;
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) {
        s = vt_error(VT_ERR_OOM, "%s: cannot print the safetensors header", path);
        goto done;
    }
    size_t tl = strlen(text);
    uint64_t hlen = (tl + 7) / 8 * 8;
    unsigned char lenb[8];
    vt_wr64(lenb, hlen);
    vt_atomic_file f;
    s = vt_afile_open(&f, path);
    if (s != VT_OK) goto done;
    s = vt_afile_write(&f, lenb, 8);
    if (s == VT_OK) s = vt_afile_write(&f, text, tl);
    if (s == VT_OK) s = vt_afile_pad(&f, 8, ' ');
    for (size_t i = 0; s == VT_OK && i < d->n; i++) {
        const vt_host_tensor *t = order[i];
        if (t->dtype == VT_I32 && ends_with(t->name, "num_batches_tracked")) {
            for (size_t k = 0; s == VT_OK && k < t->nbytes / 4; k++) {
                int32_t v;
                memcpy(&v, (const unsigned char *)t->data + 4 * k, 4);
                unsigned char w[8];
                vt_wr64(w, (uint64_t)(int64_t)v);
                s = vt_afile_write(&f, w, 8);
            }
        } else {
            s = vt_afile_write(&f, t->data, t->nbytes);
        }
    }
    if (s != VT_OK) vt_afile_abort(&f);
    else s = vt_afile_commit(&f);
done:
    cJSON_free(text);
    cJSON_Delete(root);
    free(order);
    return s;
}
