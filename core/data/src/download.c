/* `vtrain download`: fetches an official CIFAR release with libcurl (resumable .part file, HTTP
 * Range), checks its MD5 (download_md5.c) and extracts it safely through a temporary folder. Progress
 * and notes go through vt_log (VT_LOG_INFO); errors are returned. */
#define _XOPEN_SOURCE 700
#include "vt/download.h"

#include "dataset_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VT_PATH_MAX           1024
/* The official archives are about 162 MiB; a mirror that sends more than this (or more than it
 * announced) is cut off instead of filling the disk. */
#define VT_DOWNLOAD_MAX_BYTES ((int64_t)256 << 20)

/* ---- paths and folders -------------------------------------------------------------------- */

static bool vt_path(char *out, size_t n, const char *a, const char *b) {
    int k = snprintf(out, n, "%s/%s", a, b);
    return k >= 0 && (size_t)k < n;
}

static vt_status vt_mkdirs(const char *path) {
    char p[VT_PATH_MAX];
    if (strlen(path) >= sizeof p) return vt_error(VT_ERR_INVALID_ARG, "%s: path too long", path);
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return vt_error(VT_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return vt_error(VT_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
    return VT_OK;
}

static int vt_rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void vt_rm_tree(const char *path) { nftw(path, vt_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static bool vt_exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Whether folder holds every .bin of the release; names the first one missing. */
static bool vt_release_complete(const vt_release *rel, const char *folder, const char **missing) {
    char p[VT_PATH_MAX];
    for (int i = 0; i < 6 && rel->files[i]; i++) {
        struct stat st;
        if (!vt_path(p, sizeof p, folder, rel->files[i]) || stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (missing) *missing = rel->files[i];
            return false;
        }
    }
    return true;
}

/* ---- safe extraction ---------------------------------------------------------------------- */

/* libarchive may fail without a message (archive_error_string gives NULL). */
static const char *vt_extract_why(struct archive *a) {
    const char *m = archive_error_string(a);
    return m && *m ? m : "the archive ends early or a header is damaged (no detail from libarchive)";
}

/* Only members under <folder>/ are written, below dest; absolute names, ".." parts, links and
 * special files are refused, so nothing can land outside dest. */
static vt_status vt_extract(const char *archive_path, const vt_release *rel, const char *dest) {
    struct archive *a = archive_read_new();
    if (!a) return vt_error(VT_ERR_OOM, "%s: no memory for libarchive", archive_path);
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, archive_path, 1 << 16) != ARCHIVE_OK) {
        vt_status s =
            vt_error(VT_ERR_FORMAT, "%s: not a readable .tar.gz archive: %s", archive_path, vt_extract_why(a));
        archive_read_free(a);
        return s;
    }
    vt_status s = VT_OK;
    struct archive_entry *e;
    int r;
    size_t fl = strlen(rel->folder);
    char out[VT_PATH_MAX * 2];
    while (s == VT_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!name || !*name) {
            s = vt_error(VT_ERR_FORMAT, "%s: member without a name", archive_path);
            break;
        }
        while (name[0] == '.' && name[1] == '/') name += 2;
        if (name[0] == '/') {
            s = vt_error(VT_ERR_FORMAT, "%s: member %s has an absolute path; refusing to extract", archive_path, name);
            break;
        }
        bool dotdot = false;
        for (const char *c = name; *c;) {
            const char *end = strchr(c, '/');
            size_t len = end ? (size_t)(end - c) : strlen(c);
            if (len == 2 && c[0] == '.' && c[1] == '.') dotdot = true;
            c += len;
            while (*c == '/') c++;
        }
        if (dotdot) {
            s = vt_error(VT_ERR_FORMAT, "%s: member %s climbs out with '..'; refusing to extract", archive_path, name);
            break;
        }
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFLNK || archive_entry_hardlink(e)) {
            s = vt_error(VT_ERR_FORMAT, "%s: member %s is a link; refusing to extract", archive_path, name);
            break;
        }
        if (strncmp(name, rel->folder, fl) != 0 || (name[fl] != '/' && name[fl] != 0)) {
            archive_read_data_skip(a); /* not part of the release: left out */
            continue;
        }
        if (!vt_path(out, sizeof out, dest, name)) {
            s = vt_error(VT_ERR_FORMAT, "%s: member name too long: %.80s", archive_path, name);
            break;
        }
        if (type == AE_IFDIR) {
            s = vt_mkdirs(out);
            continue;
        }
        if (type != AE_IFREG) {
            s = vt_error(VT_ERR_FORMAT, "%s: member %s is not a regular file or folder; refusing to extract",
                         archive_path, name);
            break;
        }
        char *slash = strrchr(out, '/');
        *slash = 0;
        s = vt_mkdirs(out);
        *slash = '/';
        if (s != VT_OK) break;
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            s = vt_error(VT_ERR_IO, "%s: cannot create: %s", out, strerror(errno));
            break;
        }
        const void *block;
        size_t size;
        la_int64_t off;
        int64_t written = 0;
        while ((r = archive_read_data_block(a, &block, &size, &off)) == ARCHIVE_OK) {
            if (off != written && lseek(fd, off, SEEK_SET) < 0) {
                s = vt_error(VT_ERR_IO, "%s: seek failed: %s", out, strerror(errno));
                break;
            }
            const uint8_t *p = block;
            size_t left = size;
            while (left > 0) {
                ssize_t k = write(fd, p, left);
                if (k < 0) {
                    if (errno == EINTR) continue;
                    s = vt_error(VT_ERR_IO, "%s: write failed: %s", out, strerror(errno));
                    break;
                }
                p += k;
                left -= (size_t)k;
            }
            if (s != VT_OK) break;
            written = off + (int64_t)size;
        }
        if (s == VT_OK && r != ARCHIVE_EOF)
            s = vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated (in member %s): %s", archive_path, name,
                         vt_extract_why(a));
        if (close(fd) != 0 && s == VT_OK) s = vt_error(VT_ERR_IO, "%s: close failed: %s", out, strerror(errno));
    }
    if (s == VT_OK && r != ARCHIVE_EOF)
        s = vt_error(VT_ERR_FORMAT, "%s: archive is corrupt or truncated: %s", archive_path, vt_extract_why(a));
    archive_read_free(a);
    return s;
}

/* Extracts into a fresh temporary folder inside dir, checks the release is whole, then renames it
 * into place, so that a failure leaves nothing half-extracted. */
static vt_status vt_extract_into(const char *archive_path, const vt_release *rel, const char *dir, bool quiet) {
    char tmp[VT_PATH_MAX], from[VT_PATH_MAX * 2], to[VT_PATH_MAX];
    if (!vt_path(tmp, sizeof tmp, dir, ".vtrain-extract-XXXXXX") || !vt_path(to, sizeof to, dir, rel->folder))
        return vt_error(VT_ERR_INVALID_ARG, "%s: path too long", dir);
    if (!mkdtemp(tmp)) return vt_error(VT_ERR_IO, "%s: cannot create a temporary folder: %s", dir, strerror(errno));
    if (!quiet) vt_log(VT_LOG_INFO, "extracting %s into %s\n", archive_path, to);
    vt_status s = vt_extract(archive_path, rel, tmp);
    const char *missing = NULL;
    vt_path(from, sizeof from, tmp, rel->folder);
    if (s == VT_OK && !vt_release_complete(rel, from, &missing))
        s = vt_error(VT_ERR_FORMAT, "%s: archive has no member %s/%s; it is not the official %s release", archive_path,
                     rel->folder, missing, rel->name);
    if (s == VT_OK && rename(from, to) != 0)
        s = vt_error(VT_ERR_IO, "cannot move %s to %s: %s", from, to, strerror(errno));
    vt_rm_tree(tmp);
    return s;
}

/* ---- transfer ----------------------------------------------------------------------------- */

typedef struct vt_xfer {
    FILE *f;
    CURL *curl;
    int64_t offset; /* bytes already in the .part file when this transfer began */
    bool first_write;
    bool quiet, tty;
    double t0, last; /* seconds */
    int last_decile;
    const char *label;
    int64_t received; /* bytes written in this transfer */
    int64_t cap;      /* most bytes this transfer may write */
    bool over_cap;
} vt_xfer;

static double vt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t vt_xfer_write(char *ptr, size_t size, size_t nmemb, void *ud) {
    vt_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->first_write) {
        x->first_write = false;
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        /* A server that ignores Range sends the whole file again: start the .part over. */
        if (x->offset > 0 && code == 200) {
            if (fflush(x->f) != 0 || ftruncate(fileno(x->f), 0) != 0 || fseek(x->f, 0, SEEK_SET) != 0) return 0;
            x->offset = 0;
            x->cap = VT_DOWNLOAD_MAX_BYTES;
        }
        /* A declared length is the expected size: no more than that is taken. */
        curl_off_t declared = -1;
        if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared) == CURLE_OK && declared >= 0 &&
            declared < x->cap)
            x->cap = declared;
    }
    if ((int64_t)n > x->cap - x->received) {
        x->over_cap = true;
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
    x->received += (int64_t)n;
    return fwrite(ptr, 1, n, x->f) == n ? n : 0;
}

static int vt_xfer_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    vt_xfer *x = ud;
    if (x->quiet) return 0;
    double now = vt_now();
    double have = (double)(x->offset + dlnow), total = dltotal > 0 ? (double)(x->offset + dltotal) : 0;
    bool done = dltotal > 0 && dlnow >= dltotal;
    double rate = now > x->t0 ? (double)dlnow / (now - x->t0) : 0;
    if (x->tty) {
        if ((now - x->last < 0.2 && !done) || (done && x->last_decile == 10)) return 0;
        if (done) x->last_decile = 10; /* libcurl reports the end more than once: draw it once */
        x->last = now;
        if (total > 0) {
            int fill = (int)(30 * have / total);
            char bar[31];
            for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
            bar[30] = 0;
            vt_log(VT_LOG_INFO, "\r%s [%s] %3d%% %.1f/%.1f MB %.1f MB/s ", x->label, bar, (int)(100 * have / total),
                   have / 1e6, total / 1e6, rate / 1e6);
        } else {
            vt_log(VT_LOG_INFO, "\r%s %.1f MB %.1f MB/s ", x->label, have / 1e6, rate / 1e6);
        }
    } else if (total > 0) {
        int decile = (int)(10 * have / total);
        if (decile > x->last_decile) {
            x->last_decile = decile;
            vt_log(VT_LOG_INFO, "%s: %d%% (%.1f of %.1f MB, %.1f MB/s)\n", x->label, 10 * decile, have / 1e6,
                   total / 1e6, rate / 1e6);
        }
    }
    return 0;
}

/* The host of url, or for a URL without one (file:///path) the path, so messages name a place. */
static void vt_host_of(const char *url, char *host, size_t n) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t k = strcspn(p, "/:?#");
    if (k == 0) k = strcspn(p, "?#");
    if (k >= n) k = n - 1;
    memcpy(host, p, k);
    host[k] = 0;
}

/* One transfer into part, resuming from its current size. *retry says whether another try could
 * make progress (the connection dropped after bytes came). *complete: the server says nothing is
 * left (416 on a resume). */
static vt_status vt_fetch_once(const char *url, const char *part, const vt_release *rel, const char *dir, bool quiet,
                               bool *retry, bool *complete) {
    *retry = false;
    *complete = false;
    struct stat st;
    bool have_part = lstat(part, &st) == 0;
    if (have_part && !S_ISREG(st.st_mode))
        return vt_error(VT_ERR_IO, "%s is not a regular file (a FIFO, folder or link); remove it and rerun", part);
    int64_t offset = have_part ? (int64_t)st.st_size : 0;
    FILE *f = fopen(part, offset > 0 ? "ab" : "wb");
    if (!f) return vt_error(VT_ERR_IO, "%s: cannot open for writing: %s", part, strerror(errno));
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(f);
        return vt_error(VT_ERR_NETWORK, "libcurl could not start a transfer");
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    char range[32];
    vt_xfer x = {f, c, offset, true, quiet, isatty(2) != 0, vt_now(), 0, -1, rel->archive, 0, 0, false};
    x.cap = VT_DOWNLOAD_MAX_BYTES - offset;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 512L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vtrain/0.1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, vt_xfer_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, vt_xfer_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, quiet ? 1L : 0L);
    if (offset > 0) {
        /* CURLOPT_RANGE, not RESUME_FROM: a server without Range support is then handled above. */
        snprintf(range, sizeof range, "%lld-", (long long)offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
        if (!quiet) vt_log(VT_LOG_INFO, "resuming %s at byte %lld\n", rel->archive, (long long)offset);
    } else if (!quiet) {
        vt_log(VT_LOG_INFO, "downloading %s\n", url);
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_off_t got = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &got);
    curl_easy_cleanup(c);
    int ferr = fflush(f) != 0 || ferror(f);
    if (fclose(f) != 0) ferr = 1;
    if (!quiet && x.tty) vt_log(VT_LOG_INFO, "\n"); /* ends the progress bar's line */
    if (ferr) return vt_error(VT_ERR_IO, "%s: write failed (disk full?)", part);
    char host[256];
    vt_host_of(url, host, sizeof host);
    const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_OK) return VT_OK;
    if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && offset > 0) {
        *complete = true;
        return VT_OK;
    }
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return vt_error(VT_ERR_NETWORK,
                        "this machine cannot reach %s (%s). Fetch %s from %s elsewhere and place it in %s/ by hand, "
                        "then rerun `vtrain download %s`: it is verified and extracted (or train with --data %s/%s)",
                        host, msg, rel->archive, rel->url, dir, rel->name, dir, rel->archive);
    case CURLE_HTTP_RETURNED_ERROR:
        return vt_error(
            VT_ERR_NETWORK,
            "HTTP %ld from %s (%s). Check the mirror, or place %s in %s/ by hand and rerun `vtrain download %s`", code,
            url, msg, rel->archive, dir, rel->name);
    case CURLE_WRITE_ERROR:
        if (x.over_cap) {
            remove(part); /* what came is not the archive: nothing worth resuming */
            return vt_error(VT_ERR_NETWORK,
                            "%s sent more than %lld bytes for %s (%s); stopped and removed the partial file. Check the "
                            "mirror, or place %s in %s/ by hand and rerun `vtrain download %s`",
                            host, (long long)(x.offset + x.cap), rel->archive,
                            x.cap < VT_DOWNLOAD_MAX_BYTES - x.offset ? "the length it announced"
                                                                     : "far over the official size",
                            rel->archive, dir, rel->name);
        }
        return vt_error(VT_ERR_IO, "%s: write failed while downloading (disk full?)", part);
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        *retry = got > 0;
        return vt_error(VT_ERR_NETWORK,
                        "download of %s from %s broke off after %lld bytes (%s); %s is kept for resuming", rel->archive,
                        host, (long long)(offset + got), msg, part);
    default:
        return vt_error(VT_ERR_NETWORK, "download of %s from %s failed (%s). Place %s in %s/ by hand and rerun", url,
                        host, msg, rel->archive, dir);
    }
}

static vt_status vt_check_md5(const char *path, const char *want, char got[33]) {
    VT_TRY(vt_md5_file(path, got));
    return strcmp(got, want) == 0 ? VT_OK : VT_ERR_CHECKSUM;
}

vt_status vt_download_dataset(const char *name, const char *dir, const vt_download_opts *opts) {
    const vt_release *rel = vt_release_find(name);
    if (!rel)
        return vt_error(VT_ERR_INVALID_ARG, "unknown dataset '%s': known are cifar100 and cifar10",
                        name ? name : "(null)");
    vt_download_opts o = {NULL, NULL, false};
    if (opts) o = *opts;
    if (!dir || !*dir) dir = "data";
    if (strlen(dir) > VT_PATH_MAX - 128) return vt_error(VT_ERR_INVALID_ARG, "download: folder path too long");
    char want[33];
    const char *md5 = o.md5 ? o.md5 : rel->md5;
    if (strlen(md5) != 32) return vt_error(VT_ERR_INVALID_ARG, "--md5 '%s' is not 32 hex digits", md5);
    for (int i = 0; i < 32; i++) {
        if (!isxdigit((unsigned char)md5[i]))
            return vt_error(VT_ERR_INVALID_ARG, "--md5 '%s' is not 32 hex digits", md5);
        want[i] = (char)tolower((unsigned char)md5[i]);
    }
    want[32] = 0;

    char folder[VT_PATH_MAX], archive[VT_PATH_MAX], part[VT_PATH_MAX + 8], got[33];
    vt_path(folder, sizeof folder, dir, rel->folder);
    vt_path(archive, sizeof archive, dir, rel->archive);
    snprintf(part, sizeof part, "%s.part", archive);
    const char *missing = NULL;
    if (vt_exists(folder)) {
        if (vt_release_complete(rel, folder, &missing)) {
            if (!o.quiet) vt_log(VT_LOG_INFO, "%s is already in %s: nothing to do\n", rel->name, folder);
            return VT_OK;
        }
        return vt_error(VT_ERR_FORMAT, "%s exists but is incomplete (no %s): remove it and rerun `vtrain download %s`",
                        folder, missing, rel->name);
    }
    VT_TRY(vt_mkdirs(dir));

    if (vt_exists(archive)) {
        /* Placed by hand or left by an earlier run: verify before trusting it; never delete it. */
        if (!o.quiet) vt_log(VT_LOG_INFO, "found %s; checking its MD5\n", archive);
        vt_status s = vt_check_md5(archive, want, got);
        if (s == VT_ERR_CHECKSUM)
            return vt_error(VT_ERR_CHECKSUM,
                            "%s has MD5 %s, expected %s: it is damaged or another file; remove or replace it", archive,
                            got, want);
        if (s != VT_OK) return s;
        return vt_extract_into(archive, rel, dir, o.quiet);
    }

    const char *mirror = o.mirror;
    if (!mirror || !*mirror) mirror = getenv("VTRAIN_MIRROR");
    char url[2048];
    if (!mirror || !*mirror) {
        snprintf(url, sizeof url, "%s", rel->url);
    } else {
        size_t ml = strlen(mirror);
        int k;
        if (ml > 7 && strcmp(mirror + ml - 7, ".tar.gz") == 0) k = snprintf(url, sizeof url, "%s", mirror);
        else k = snprintf(url, sizeof url, "%s%s%s", mirror, mirror[ml - 1] == '/' ? "" : "/", rel->archive);
        if (k < 0 || (size_t)k >= sizeof url) return vt_error(VT_ERR_INVALID_ARG, "mirror URL too long");
    }
    static bool curl_ready = false;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return vt_error(VT_ERR_NETWORK, "libcurl failed to initialise");
        curl_ready = true;
    }
    vt_status s = VT_OK;
    bool retry = true, complete = false;
    for (int attempt = 0; attempt < 5 && retry; attempt++) {
        s = vt_fetch_once(url, part, rel, dir, o.quiet, &retry, &complete);
        if (s == VT_OK) break;
        if (retry && !o.quiet) vt_log(VT_LOG_WARN, "%s; retrying\n", vt_last_error());
    }
    if (s != VT_OK) {
        /* An empty .part is no use for resuming. */
        struct stat st;
        if (stat(part, &st) == 0 && st.st_size == 0) remove(part);
        return s;
    }
    (void)complete;
    s = vt_check_md5(part, want, got);
    if (s == VT_ERR_CHECKSUM) {
        remove(part);
        return vt_error(
            VT_ERR_CHECKSUM,
            "downloaded %s has MD5 %s, expected %s: removed it; rerun to fetch it again (or check --mirror/--md5)",
            rel->archive, got, want);
    }
    if (s != VT_OK) return s;
    if (rename(part, archive) != 0)
        return vt_error(VT_ERR_IO, "cannot rename %s to %s: %s", part, archive, strerror(errno));
    if (!o.quiet) vt_log(VT_LOG_INFO, "MD5 ok (%s)\n", got);
    s = vt_extract_into(archive, rel, dir, o.quiet);
    if (s == VT_ERR_FORMAT) {
        /* We fetched it and it cannot be used: do not leave it to be found as a hand-placed copy. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vt_last_error());
        remove(archive);
        return vt_error(s, "%s (the downloaded archive was removed)", msg);
    }
    return s;
}
