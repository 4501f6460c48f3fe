/* Private helpers shared by the checkpoint and weights code: CRC32 over large buffers, whole-file
 * reads, and the memory-based checkpoint parser (used by the fuzzer). Atomic writing is public:
 * vt/atomic_file.h. */
#ifndef VT_CHECKPOINT_INTERNAL_H
#define VT_CHECKPOINT_INTERNAL_H

#include "vt/atomic_file.h"
#include "vt/checkpoint.h"

#include <stdint.h>

/* vt_dict_add without its duplicate-name check, which is linear per call: readers of untrusted
 * files append every tensor, then check all names once with vt_dict_check_unique (a sort). */
vt_status vt_dict_append(vt_tensor_dict *d, const char *name, vt_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);
/* VT_ERR_FORMAT "<label>: duplicate tensor name '<name>'" when two items share a name. */
vt_status vt_dict_check_unique(const vt_tensor_dict *d, const char *label);

/* zlib crc32 over any length (zlib's length argument is 32-bit). */
uint32_t vt_crc32(uint32_t crc, const void *data, size_t n);

/* Reads a whole regular file into malloc'd memory (*out, *n). Bounded by max_bytes. Anything but a
 * regular file (a FIFO, a folder, a device) is refused before it is opened. */
vt_status vt_read_file(const char *path, uint64_t max_bytes, unsigned char **out, size_t *n);

/* Parses a checkpoint held in memory; label names it in error messages. */
vt_status vt_ckpt_read_mem(const void *buf, size_t n, const char *label, vt_tensor_dict *out);

/* Little-endian field access that never assumes alignment. */
static inline uint16_t vt_rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t vt_rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t vt_rd64(const unsigned char *p) {
    return (uint64_t)vt_rd32(p) | ((uint64_t)vt_rd32(p + 4) << 32);
}
static inline void vt_wr16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void vt_wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void vt_wr64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

#endif
