/* Private to the dataset loader: reading the members of a CIFAR release archive (dataset_archive.c)
 * for detection and loading (dataset.c). */
#ifndef VT_DATASET_ARCHIVE_H
#define VT_DATASET_ARCHIVE_H

#include "dataset_internal.h"

#include <archive.h>
#include <stdint.h>

/* Bigger members (and dataset files) than this are not CIFAR files; refuse before allocating. */
#define VT_MEMBER_MAX ((size_t)1 << 31)

/* An archive may inflate to at most VT_INFLATE_RATIO times its size, or VT_INFLATE_FLOOR when that
 * is more (the official CIFAR archives inflate 1.15 times, to 176 MiB; a synthetic one of zeros
 * inflates far more): a small gzip bomb is refused before it costs seconds and gigabytes. */
#define VT_INFLATE_RATIO 16u
#define VT_INFLATE_FLOOR ((uint64_t)192 << 20)

/* The most bytes an archive of file_bytes may inflate to. */
uint64_t vt_inflate_limit(uint64_t file_bytes);

/* The zlib-checked gzip source under a libarchive reader. */
typedef struct vt_gz_src vt_gz_src;

/* Opens path for reading members; *gz is the gzip source when path is gzip (NULL otherwise), which
 * vt_gz_drain finishes once the caller has seen the end of the tar. NULL on failure, with the
 * error set. archive_read_free closes it. */
struct archive *vt_archive_open(const char *path, vt_gz_src **gz);
/* Inflates what is left after libarchive saw the end of the tar, so that the trailer is checked
 * (nothing to do when g is NULL). */
vt_status vt_gz_drain(struct archive *a, vt_gz_src *g, const char *path);
/* Reads the current member (at most limit bytes, and at most VT_MEMBER_MAX) into a fresh buffer. */
vt_status vt_archive_slurp(struct archive *a, struct archive_entry *e, const char *path, const char *member,
                           uint64_t limit, uint8_t **data, size_t *len);
/* Why the last archive call failed, never NULL. */
const char *vt_archive_why(struct archive *a);
/* A member name without its leading "./" parts. */
const char *vt_strip_dot(const char *name);

#endif
