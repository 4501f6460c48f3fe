/* vt_weights_load: format detection by content, and the torch.save() archive reader that joins
 * the ZIP reader (data.pkl, data/<key> storages, byteorder) with the restricted pickle reader. */
#include "weights_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pth_ctx {
    const vt_zip *z;
    const char *prefix;
    unsigned char *verified; /* per zip entry: CRC already checked */
    char *path;
    size_t path_cap;
} pth_ctx;

static vt_status pth_storage(void *vctx, const char *key, const unsigned char **data, size_t *n) {
    pth_ctx *c = vctx;
    size_t need = strlen(c->prefix) + strlen(key) + 8;
    if (need > c->path_cap) {
        char *p = realloc(c->path, need);
        if (!p) return vt_error(VT_ERR_OOM, "%s: out of memory", c->z->label);
        c->path = p;
        c->path_cap = need;
    }
    snprintf(c->path, need, "%s/data/%s", c->prefix, key);
    const vt_zip_entry *e = vt_zip_find(c->z, c->path);
    if (!e)
        return vt_error(VT_ERR_FORMAT, "%s: storage record '%.200s' is missing from the archive", c->z->label, c->path);
    size_t idx = (size_t)(e - c->z->e);
    if (!c->verified[idx]) {
        VT_TRY(vt_zip_data(c->z, e, data));
        c->verified[idx] = 1;
    }
    *data = c->z->buf + e->data_off;
    *n = (size_t)e->size;
    return VT_OK;
}

vt_status vt_pth_read_mem(const unsigned char *buf, size_t n, const char *label, vt_tensor_dict *out) {
    memset(out, 0, sizeof *out);
    if (!label) label = "(memory)";
    vt_zip z;
    VT_TRY(vt_zip_open_mem(&z, buf, n, label));
    /* torch.save puts every record under one top folder: <prefix>/data.pkl. */
    const vt_zip_entry *pkl = NULL;
    for (size_t i = 0; i < z.count; i++) {
        const char *nm = z.e[i].name, *slash = strchr(nm, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0) {
            pkl = &z.e[i];
            break;
        }
    }
    vt_status s = VT_OK;
    pth_ctx c = {&z, NULL, NULL, NULL, 0};
    char *prefix = NULL;
    if (!pkl) {
        s = vt_error(VT_ERR_FORMAT, "%s: zip archive has no <name>/data.pkl record: not a torch.save() file", label);
        goto done;
    }
    size_t pl = strlen(pkl->name) - strlen("/data.pkl");
    prefix = malloc(pl + 16);
    c.verified = calloc(z.count, 1);
    if (!prefix || !c.verified) {
        s = vt_error(VT_ERR_OOM, "%s: out of memory", label);
        goto done;
    }
    memcpy(prefix, pkl->name, pl);
    strcpy(prefix + pl, "/byteorder");
    const vt_zip_entry *bo = vt_zip_find(&z, prefix);
    prefix[pl] = 0;
    c.prefix = prefix;
    if (bo) {
        const unsigned char *d;
        s = vt_zip_data(&z, bo, &d);
        if (s != VT_OK) goto done;
        if (bo->size != 6 || memcmp(d, "little", 6) != 0) {
            s = vt_error(VT_ERR_UNSUPPORTED, "%s: %s/byteorder is not 'little': big-endian archives are not supported",
                         label, prefix);
            goto done;
        }
    }
    const unsigned char *pk;
    s = vt_zip_data(&z, pkl, &pk);
    if (s != VT_OK) goto done;
    s = vt_pickle_load_state_dict(pk, (size_t)pkl->size, label, pth_storage, &c,
                                  (uint64_t)n * VT_PTH_EXPAND_FACTOR + VT_PTH_EXPAND_SLACK, out);
done:
    free(prefix);
    free(c.verified);
    free(c.path);
    vt_zip_close(&z);
    return s;
}

vt_status vt_weights_load(const char *path, vt_tensor_dict *out) {
    if (!path || !out) return vt_error(VT_ERR_INVALID_ARG, "vt_weights_load: NULL argument");
    memset(out, 0, sizeof *out);
    unsigned char *buf;
    size_t n;
    VT_TRY(vt_check_regular_file(path, "weights file"));
    VT_TRY(vt_read_file(path, (uint64_t)1 << 44, &buf, &n));
    vt_status s;
    if (n >= 4 && buf[0] == 'P' && buf[1] == 'K' && (buf[2] == 3 || buf[2] == 5)) {
        s = vt_pth_read_mem(buf, n, path, out);
    } else if (n >= 8 && memcmp(buf, "VTCKPT\0\0", 8) == 0) {
        s = vt_ckpt_read_mem(buf, n, path, out);
    } else if (n >= 9 && buf[8] == '{' && vt_rd64(buf) < ((uint64_t)1 << 40)) {
        /* the length's high bytes are zero (text is not); the reader says when it exceeds the file */
        s = vt_safetensors_read_mem(buf, n, path, out);
    } else if (n >= 4 && memcmp(buf, "\x80\x02\x8a\x0a", 4) == 0) {
        /* pickle protocol 2 followed by LONG1 of the legacy magic number 0x1950a86a20f9469cfc6c */
        s = vt_error(VT_ERR_UNSUPPORTED,
                     "%s: legacy (pre-1.6) PyTorch serialization is not supported; re-save it with "
                     "torch.save(obj, path) from a current PyTorch (zip format) or convert it to safetensors",
                     path);
    } else {
        s = vt_error(
            VT_ERR_FORMAT,
            "%s: not a weights file: neither safetensors, a PyTorch .pth (zip) archive nor a vtrain checkpoint", path);
    }
    free(buf);
    return s;
}
