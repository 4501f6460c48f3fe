/* Fetching the official CIFAR releases over HTTPS (libcurl): resume, MD5 check, safe extraction.
 * A hand-placed archive in the target folder is verified and used instead of the network. */
#ifndef VT_DOWNLOAD_H
#define VT_DOWNLOAD_H

#include "vt/common.h"
#include "vt/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_download_opts {
    const char *mirror; /* base URL (the archive name is appended) or a full URL ending in .tar.gz;
                           NULL: $VTRAIN_MIRROR, else the official host */
    const char *md5;    /* 32 hex digits replacing the official checksum; NULL: official */
    bool quiet;         /* no progress output */
} vt_download_opts;

/* Makes dir/<release folder> hold dataset name ("cifar100" or "cifar10"). Does nothing when it is
 * already there. opts may be NULL. */
vt_status vt_download_dataset(const char *name, const char *dir, const vt_download_opts *opts);

/* MD5 of a file as 32 lowercase hex digits plus the terminating zero. */
vt_status vt_md5_file(const char *path, char hex[33]);
/* MD5 of a memory buffer. */
void vt_md5_mem(const void *data, size_t len, char hex[33]);

#ifdef __cplusplus
}
#endif
#endif
