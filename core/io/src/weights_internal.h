/* Private memory-based readers behind vt_weights_load: safetensors, a minimal ZIP reader (stored
 * entries, ZIP64, CRC32-checked) and the restricted pickle reader for torch.save() state_dicts. */
#ifndef VT_WEIGHTS_INTERNAL_H
#define VT_WEIGHTS_INTERNAL_H

#include "checkpoint_internal.h"
#include "vt/weights.h"

/* Sane maxima for hostile inputs. */
#define VT_ST_HEADER_MAX       (100u << 20) /* safetensors JSON header bytes */
#define VT_WEIGHTS_MAX_TENSORS 65536
/* Header JSON values (keys included): a tensor entry has at most 8 + 2 * VT_MAX_DIMS, and the
 * header nests root -> tensor -> shape/data_offsets. */
#define VT_ST_MAX_VALUES       (24u * VT_WEIGHTS_MAX_TENSORS + 65536u)
#define VT_ST_MAX_DEPTH        3
#define VT_ZIP_MAX_ENTRIES     1000000u
#define VT_PICKLE_MAX_STACK    (1u << 20)
#define VT_PICKLE_MAX_MEMO     (1u << 20)
#define VT_PICKLE_MAX_VALUES   (1u << 21) /* a 65536-tensor state_dict needs about 1.4M */
/* Tensors copied out of a .pth may hold at most this many times the file's bytes (plus the slack
 * below): f16 storages double, tied weights repeat; a stride-0 view of one element does not pass. */
#define VT_PTH_EXPAND_FACTOR   8u
#define VT_PTH_EXPAND_SLACK    ((uint64_t)64 << 20)

vt_status vt_safetensors_read_mem(const unsigned char *buf, size_t n, const char *label, vt_tensor_dict *out);

typedef struct vt_zip_entry {
    char *name;
    uint64_t data_off; /* absolute offset of the stored bytes (after the local header) */
    uint64_t size;
    uint32_t crc;
    uint64_t cd_off; /* offset of its central-directory record (lets the fuzzer fix CRCs) */
} vt_zip_entry;

typedef struct vt_zip {
    const unsigned char *buf;
    size_t n;
    const char *label;
    vt_zip_entry *e;
    size_t count;
    size_t *by_name; /* entry indexes sorted by name, for vt_zip_find */
} vt_zip;

/* Indexes the central directory; every entry must be stored (method 0) and lie inside buf. */
vt_status vt_zip_open_mem(vt_zip *z, const unsigned char *buf, size_t n, const char *label);
const vt_zip_entry *vt_zip_find(const vt_zip *z, const char *name);
/* Points *data at the entry's bytes after checking its CRC32. */
vt_status vt_zip_data(const vt_zip *z, const vt_zip_entry *e, const unsigned char **data);
void vt_zip_close(vt_zip *z);

/* Looks up the raw bytes of storage `key` (the data/<key> record) for the pickle reader. */
typedef vt_status (*vt_storage_fn)(void *ctx, const char *key, const unsigned char **data, size_t *n);

/* Runs the restricted pickle in pkl and adds every tensor of the resulting state_dict to out;
 * refuses once the tensors would need over max_out_bytes in all (views can repeat stored bytes). */
vt_status vt_pickle_load_state_dict(const unsigned char *pkl, size_t n, const char *label, vt_storage_fn storage,
                                    void *ctx, uint64_t max_out_bytes, vt_tensor_dict *out);

/* A torch.save() zip archive in memory. */
vt_status vt_pth_read_mem(const unsigned char *buf, size_t n, const char *label, vt_tensor_dict *out);

/* f16 / bf16 bits to f32 (exact). */
float vt_f16_to_f32(uint16_t h);
float vt_bf16_to_f32(uint16_t h);

#endif
