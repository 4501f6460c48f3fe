/* Image-folder datasets (<path>/<split>/<class>/ of .png, .jpg, .jpeg files): PNG (libpng) and JPEG
 * (libjpeg-turbo) decoding from memory, and the folder loader that decodes in parallel (OpenMP). */
#define _DEFAULT_SOURCE /* d_type and DT_* from dirent.h */
#define _POSIX_C_SOURCE 200809L
#include "dataset_internal.h"

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define VT_PATH_MAX 1024

void vt_rgb_image_free(vt_rgb_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* ---- PNG ---------------------------------------------------------------------------------- */

/* The size a record must have: refused from the header, before any pixel memory is taken. */
static vt_status vt_image_size_check(const char *name, const char *kind, unsigned w, unsigned h, int want_w,
                                     int want_h) {
    if (w == 0 || h == 0 || (uint64_t)w * h > VT_IMAGE_MAX_PIXELS)
        return vt_error(VT_ERR_FORMAT, "%s: %s of %ux%u pixels is empty or too large (limit %d pixels)", name, kind, w,
                        h, VT_IMAGE_MAX_PIXELS);
    if (want_w > 0 && (w != (unsigned)want_w || h != (unsigned)want_h))
        return vt_error(VT_ERR_FORMAT, "%s: image is %ux%u, but the first image fixed the size at %dx%d", name, w, h,
                        want_w, want_h);
    return VT_OK;
}

static vt_status vt_png_decode(const uint8_t *buf, size_t len, const char *name, int want_w, int want_h, bool probe,
                               vt_rgb_image *out) {
    memset(out, 0, sizeof *out);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, buf, len)) {
        vt_status s = vt_error(VT_ERR_FORMAT, "%s: undecodable PNG: %s", name, img.message);
        png_image_free(&img);
        return s;
    }
    vt_status hs = vt_image_size_check(name, "PNG", img.width, img.height, want_w, want_h);
    if (hs != VT_OK || probe) {
        out->w = (int)img.width;
        out->h = (int)img.height;
        png_image_free(&img);
        return hs;
    }
    /* The simplified API converts grey, palette, 16-bit and alpha (composited on black) to RGB8. */
    img.format = PNG_FORMAT_RGB;
    size_t size = PNG_IMAGE_SIZE(img);
    uint8_t *rgb = malloc(size);
    if (!rgb) {
        png_image_free(&img);
        return vt_error(VT_ERR_OOM, "%s: no memory for a %ux%u image", name, img.width, img.height);
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&img, &black, rgb, 0, NULL)) {
        vt_status s = vt_error(VT_ERR_FORMAT, "%s: undecodable PNG: %s", name, img.message);
        free(rgb);
        png_image_free(&img);
        return s;
    }
    out->w = (int)img.width;
    out->h = (int)img.height;
    out->rgb = rgb;
    return VT_OK;
}

/* ---- JPEG --------------------------------------------------------------------------------- */

typedef struct vt_jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} vt_jpeg_err;

static void vt_jpeg_error_exit(j_common_ptr cinfo) {
    vt_jpeg_err *e = (vt_jpeg_err *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Warnings ("premature end of data", "corrupt data") are kept for the caller instead of printed. */
static void vt_jpeg_emit(j_common_ptr cinfo, int level) {
    vt_jpeg_err *e = (vt_jpeg_err *)cinfo->err;
    if (level < 0) {
        if (e->pub.num_warnings == 0) (*cinfo->err->format_message)(cinfo, e->msg);
        e->pub.num_warnings++;
    }
}

vt_status vt_image_decode_png(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out) {
    return vt_png_decode(buf, len, name, 0, 0, false, out);
}

static vt_status vt_jpeg_decode(const uint8_t *buf, size_t len, const char *name, int want_w, int want_h, bool probe,
                                vt_rgb_image *out) {
    memset(out, 0, sizeof *out);
    if (len < 4) return vt_error(VT_ERR_FORMAT, "%s: undecodable JPEG: only %zu bytes", name, len);
    struct jpeg_decompress_struct cinfo;
    vt_jpeg_err err;
    uint8_t *volatile rgb = NULL;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = vt_jpeg_error_exit;
    err.pub.emit_message = vt_jpeg_emit;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return vt_error(VT_ERR_FORMAT, "%s: undecodable JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    vt_status hs = vt_image_size_check(name, "JPEG", cinfo.image_width, cinfo.image_height, want_w, want_h);
    if (hs != VT_OK || probe) {
        out->w = (int)cinfo.image_width;
        out->h = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return hs;
    }
    /* Grey and YCbCr both come out as RGB; CMYK cannot and fails in start_decompress. */
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return vt_error(VT_ERR_FORMAT, "%s: JPEG decodes to %d components, not RGB", name, cinfo.output_components);
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    rgb = malloc(stride * cinfo.output_height);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return vt_error(VT_ERR_OOM, "%s: no memory for a %ux%u image", name, cinfo.output_width, cinfo.output_height);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (err.pub.num_warnings > 0) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return vt_error(VT_ERR_FORMAT, "%s: corrupt JPEG: %s", name, err.msg);
    }
    out->w = (int)cinfo.output_width;
    out->h = (int)cinfo.output_height;
    out->rgb = rgb;
    jpeg_destroy_decompress(&cinfo);
    return VT_OK;
}

vt_status vt_image_decode_jpeg(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out) {
    return vt_jpeg_decode(buf, len, name, 0, 0, false, out);
}

/* want_w > 0: the image must be want_w x want_h, checked from its header. probe: only the header
 * is read (out->w, out->h set, no pixels). */
static vt_status vt_image_decode_as(const uint8_t *buf, size_t len, const char *name, int want_w, int want_h,
                                    bool probe, vt_rgb_image *out) {
    memset(out, 0, sizeof *out);
    if (!name) name = "<memory>";
    if (!buf && len) return vt_error(VT_ERR_INVALID_ARG, "%s: NULL buffer", name);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return vt_png_decode(buf, len, name, want_w, want_h, probe, out);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return vt_jpeg_decode(buf, len, name, want_w, want_h, probe, out);
    return vt_error(VT_ERR_FORMAT, "%s: undecodable image: neither a PNG nor a JPEG signature (%zu bytes)", name, len);
}

vt_status vt_image_decode_mem(const uint8_t *buf, size_t len, const char *name, vt_rgb_image *out) {
    return vt_image_decode_as(buf, len, name, 0, 0, false, out);
}

/* ---- folder listing ----------------------------------------------------------------------- */

int vt_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void vt_names_free(vt_names *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool vt_has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

vt_status vt_list_dir(const char *dir, vt_list_kind kind, vt_names *out) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return vt_error(errno == ENOENT ? VT_ERR_NOT_FOUND : VT_ERR_IO, "%s: cannot open folder: %s", dir,
                        strerror(errno));
    struct dirent *e;
    char p[VT_PATH_MAX];
    vt_status s = VT_OK;
    while (s == VT_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (kind == VT_LIST_IMAGES && !vt_has_image_ext(e->d_name)) continue;
        /* Files of any type are kept: reading then refuses a FIFO or folder by name. */
        bool keep = true;
        if (kind == VT_LIST_DIRS) {
            int k = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (k < 0 || (size_t)k >= sizeof p) {
                s = vt_error(VT_ERR_INVALID_ARG, "%s: path too long under this folder", dir);
                break;
            }
#ifdef _DIRENT_HAVE_D_TYPE
            if (e->d_type == DT_DIR || e->d_type == DT_REG) keep = e->d_type == DT_DIR;
            else
#endif
            {
                struct stat st;
                keep = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
            }
        }
        if (!keep) continue;
        if (out->n == out->cap) {
            int nc = out->cap ? out->cap * 2 : 64;
            char **nv = realloc(out->v, (size_t)nc * sizeof *nv);
            if (!nv) {
                s = vt_error(VT_ERR_OOM, "%s: no memory for the listing", dir);
                break;
            }
            out->v = nv;
            out->cap = nc;
        }
        out->v[out->n] = strdup(e->d_name);
        if (!out->v[out->n]) {
            s = vt_error(VT_ERR_OOM, "%s: no memory for the listing", dir);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (s != VT_OK) {
        vt_names_free(out);
        return s;
    }
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, vt_cmp_str);
    return VT_OK;
}

bool vt_dataset_is_image_folder(const char *path) {
    char p[VT_PATH_MAX];
    int k = snprintf(p, sizeof p, "%s/train", path);
    struct stat st;
    return k > 0 && (size_t)k < sizeof p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the loader --------------------------------------------------------------------------- */

typedef struct vt_image_record {
    char *path;
    int32_t label;
} vt_image_record;

/* Reads, decodes and checks one record; writes its CHW planes to dst when it is sized w x h. */
static vt_status vt_decode_record(const vt_image_record *r, int64_t index, int w, int h, uint8_t *dst) {
    uint8_t *data;
    size_t len;
    VT_TRY(vt_dataset_read_file(r->path, &data, &len));
    vt_rgb_image img;
    vt_status s = vt_image_decode_as(data, len, r->path, w, h, false, &img);
    free(data);
    if (s != VT_OK) {
        if (strstr(vt_last_error(), "first image fixed")) /* say which record */
            s = vt_error(s, "%s: record %lld: image is %dx%d, but the first image fixed the size at %dx%d", r->path,
                         (long long)index, img.w, img.h, w, h);
        return s;
    }
    if (img.w != w || img.h != h) {
        s = vt_error(VT_ERR_FORMAT, "%s: record %lld: image is %dx%d, but the first image fixed the size at %dx%d",
                     r->path, (long long)index, img.w, img.h, w, h);
        vt_rgb_image_free(&img);
        return s;
    }
    size_t plane = (size_t)w * (size_t)h;
    for (size_t i = 0; i < plane; i++) {
        dst[i] = img.rgb[3 * i];
        dst[plane + i] = img.rgb[3 * i + 1];
        dst[2 * plane + i] = img.rgb[3 * i + 2];
    }
    vt_rgb_image_free(&img);
    return VT_OK;
}

static vt_status vt_collect(const char *path, const char *split, const vt_names *classes, vt_image_record **recs,
                            int64_t *n_recs) {
    char sdir[VT_PATH_MAX], cdir[VT_PATH_MAX];
    *recs = NULL;
    *n_recs = 0;
    int k = snprintf(sdir, sizeof sdir, "%s/%s", path, split);
    if (k < 0 || (size_t)k >= sizeof sdir) return vt_error(VT_ERR_INVALID_ARG, "%s: path too long", path);
    struct stat st;
    if (stat(sdir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vt_error(VT_ERR_NOT_FOUND, "image folder %s has no %s split: %s is not a folder", path, split, sdir);
    vt_names sc;
    VT_TRY(vt_list_dir(sdir, VT_LIST_DIRS, &sc));
    if (sc.n == 0) {
        vt_names_free(&sc);
        return vt_error(VT_ERR_FORMAT, "image folder %s holds no class folders (expected %s/<class>/*.png|jpg)", sdir,
                        sdir);
    }
    vt_names *files = calloc((size_t)sc.n, sizeof *files);
    int *label = calloc((size_t)sc.n, sizeof *label);
    vt_status s = VT_OK;
    if (!files || !label) s = vt_error(VT_ERR_OOM, "%s: no memory", sdir);
    int64_t total = 0;
    int most = 0;
    for (int c = 0; c < sc.n && s == VT_OK; c++) {
        char **hit = bsearch(&sc.v[c], classes->v, (size_t)classes->n, sizeof *classes->v, vt_cmp_str);
        if (!hit) {
            s = vt_error(VT_ERR_FORMAT, "%s/%s: class folder '%s' is not among the %d classes of %s/train", sdir,
                         sc.v[c], sc.v[c], classes->n, path);
            break;
        }
        label[c] = (int)(hit - classes->v);
        k = snprintf(cdir, sizeof cdir, "%s/%s", sdir, sc.v[c]);
        s = (k < 0 || (size_t)k >= sizeof cdir) ? vt_error(VT_ERR_INVALID_ARG, "%s: path too long", sdir)
                                                : vt_list_dir(cdir, VT_LIST_IMAGES, &files[c]);
        if (s == VT_OK && files[c].n == 0)
            s = vt_error(VT_ERR_FORMAT, "class folder %s holds no .png/.jpg/.jpeg images", cdir);
        if (s == VT_OK) {
            total += files[c].n;
            if (files[c].n > most) most = files[c].n;
        }
    }
    vt_image_record *r = NULL;
    if (s == VT_OK) {
        r = calloc((size_t)total, sizeof *r);
        if (!r) s = vt_error(VT_ERR_OOM, "%s: no memory for %lld records", sdir, (long long)total);
    }
    /* Round-robin over classes, so that the first N records (opts.limit) cover every class. */
    int64_t at = 0;
    for (int i = 0; i < most && s == VT_OK; i++)
        for (int c = 0; c < sc.n && s == VT_OK; c++) {
            if (i >= files[c].n) continue;
            size_t need = strlen(sdir) + strlen(sc.v[c]) + strlen(files[c].v[i]) + 3;
            r[at].path = malloc(need);
            if (!r[at].path) {
                s = vt_error(VT_ERR_OOM, "%s: no memory", sdir);
                break;
            }
            snprintf(r[at].path, need, "%s/%s/%s", sdir, sc.v[c], files[c].v[i]);
            r[at].label = label[c];
            at++;
        }
    if (files)
        for (int c = 0; c < sc.n; c++) vt_names_free(&files[c]);
    free(files);
    free(label);
    vt_names_free(&sc);
    if (s != VT_OK) {
        for (int64_t i = 0; i < at; i++) free(r[i].path);
        free(r);
        return s;
    }
    *recs = r;
    *n_recs = total;
    return VT_OK;
}

vt_status vt_dataset_load_image_folder(const char *path, const char *split, const vt_dataset_opts *opts,
                                       vt_dataset *out) {
    char tdir[VT_PATH_MAX];
    int k = snprintf(tdir, sizeof tdir, "%s/train", path);
    if (k < 0 || (size_t)k >= sizeof tdir) return vt_error(VT_ERR_INVALID_ARG, "%s: path too long", path);
    /* Classes come from train for both splits, so that labels agree. */
    vt_names classes;
    VT_TRY(vt_list_dir(tdir, VT_LIST_DIRS, &classes));
    if (classes.n == 0) {
        vt_names_free(&classes);
        return vt_error(VT_ERR_FORMAT, "image folder %s holds no class folders (expected %s/<class>/*.png|jpg)", tdir,
                        tdir);
    }
    vt_image_record *recs = NULL;
    int64_t total = 0;
    vt_status s = vt_collect(path, split, &classes, &recs, &total);
    if (s != VT_OK) {
        vt_names_free(&classes);
        return s;
    }
    int64_t n = (opts->limit > 0 && opts->limit < total) ? opts->limit : total;

    /* The first image's header fixes the size. */
    uint8_t *data = NULL;
    size_t len = 0;
    vt_rgb_image first = {0, 0, NULL};
    s = vt_dataset_read_file(recs[0].path, &data, &len);
    if (s == VT_OK) s = vt_image_decode_as(data, len, recs[0].path, 0, 0, true, &first);
    free(data);
    int w = first.w, h = first.h;
    size_t img_bytes = (size_t)3 * (size_t)w * (size_t)h;
    /* Tiny files can declare huge images (a 1-bit 4096x4096 PNG of zeros is a few KiB): the pixels
     * the whole split decodes to are capped by the bytes its files hold, before anything is decoded. */
    if (s == VT_OK) {
        uint64_t file_bytes = 0;
        for (int64_t i = 0; i < n; i++) {
            struct stat st;
            if (stat(recs[i].path, &st) == 0 && S_ISREG(st.st_mode)) file_bytes += (uint64_t)st.st_size;
        }
        uint64_t need = (uint64_t)n * img_bytes, limit = file_bytes * VT_IMAGE_EXPAND_FACTOR;
        if (limit < VT_IMAGE_DECODE_MIN) limit = VT_IMAGE_DECODE_MIN;
        if (need > limit)
            s = vt_error(
                VT_ERR_FORMAT,
                "image folder %s: %lld images of %dx%d decode to %llu bytes, over the limit of %llu (%u times the "
                "%llu bytes of the image files, at least %llu MiB); refused: the images are far larger than "
                "their files",
                path, (long long)n, w, h, (unsigned long long)need, (unsigned long long)limit, VT_IMAGE_EXPAND_FACTOR,
                (unsigned long long)file_bytes, (unsigned long long)(VT_IMAGE_DECODE_MIN >> 20));
    }
    /* Each decoding thread holds one image of RGB besides the dataset: bound that too. */
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
    if (img_bytes > 0 && (uint64_t)threads * img_bytes > VT_IMAGE_DECODE_SCRATCH)
        threads = (int)(VT_IMAGE_DECODE_SCRATCH / img_bytes);
    if (threads < 1) threads = 1;
#endif
    if (s == VT_OK) {
        out->images = malloc((size_t)n * img_bytes);
        out->labels = malloc((size_t)n * sizeof *out->labels);
        if (!out->images || !out->labels)
            s = vt_error(VT_ERR_OOM, "%s: no memory for %lld images of %dx%d", path, (long long)n, w, h);
    }
    if (s == VT_OK) {
        int64_t bad = n; /* lowest failing record, so the message does not depend on thread timing */
        vt_status bad_status = VT_OK;
        char bad_msg[1024] = "";
        uint8_t *images = out->images;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
#endif
        for (int64_t i = 0; i < n; i++) {
            vt_status si = vt_decode_record(&recs[i], i, w, h, images + (size_t)i * img_bytes);
            if (si != VT_OK) {
#ifdef _OPENMP
#pragma omp critical(vt_image_folder_error)
#endif
                if (i < bad) {
                    bad = i;
                    bad_status = si;
                    snprintf(bad_msg, sizeof bad_msg, "%s", vt_last_error());
                }
            }
        }
        if (bad < n) s = vt_error(bad_status, "%s", bad_msg);
    }
    (void)threads;
    if (s == VT_OK) {
        for (int64_t i = 0; i < n; i++) out->labels[i] = recs[i].label;
        out->n = n;
        out->c = 3;
        out->h = h;
        out->w = w;
        out->n_classes = classes.n;
        out->class_names = classes.v; /* ownership moves to the dataset */
        classes.v = NULL;
        classes.n = 0;
    }
    for (int64_t i = 0; i < total; i++) free(recs[i].path);
    free(recs);
    vt_names_free(&classes);
    return s;
}
