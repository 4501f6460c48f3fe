/* Segmentation datasets (deepglobe tiles, SegNet's CamVid): pairs of image and mask read into memory,
 * optionally resized or cropped, and masks written back in each layout's own PNG format. */
#define _POSIX_C_SOURCE 200809L
#include "vt/segdata.h"

#include "dataset_internal.h"
#include "segdata_internal.h"

#include <math.h>
#include <stdio.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define VT_SEG_PATH_MAX 1024

static const char *const vt_deepglobe_names[] = {"urban", "agriculture", "rangeland", "forest", "water", "barren"};
static const char *const vt_camvid_names[] = {"sky",  "building", "pole",       "road",      "pavement", "tree",
                                              "sign_symbol", "fence", "car", "pedestrian", "bicyclist"};
/* deepglobe's class colours, in class order. */
const uint8_t vt_deepglobe_rgb[6][3] = {{0, 255, 255}, {255, 255, 0}, {255, 0, 255},
                                               {0, 255, 0},   {0, 0, 255},   {255, 255, 255}};

uint8_t vt_seg_deepglobe_class(uint8_t r, uint8_t g, uint8_t b) {
    /* The evaluation script's code 4R + 2G + B of the thresholded channels -> class. */
    static const uint8_t by_code[8] = {VT_SEG_IGNORE /* black */, 4 /* blue */, 3 /* green */, 0 /* cyan */,
                                       VT_SEG_IGNORE /* red */,   2 /* purple */, 1 /* yellow */, 5 /* white */};
    return by_code[(r >= 128) * 4 + (g >= 128) * 2 + (b >= 128)];
}

const char *const *vt_seg_class_names(vt_seg_layout layout, int *n_classes) {
    if (layout == VT_SEG_DEEPGLOBE) {
        *n_classes = 6;
        return vt_deepglobe_names;
    }
    if (layout == VT_SEG_CAMVID) {
        *n_classes = 11;
        return vt_camvid_names;
    }
    *n_classes = 0;
    return NULL;
}

/* ---- listing ------------------------------------------------------------------------------- */

static bool vt_is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool vt_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static bool vt_seg_names_has(const vt_names *l, const char *name) {
    return bsearch(&name, l->v, (size_t)l->n, sizeof *l->v, vt_cmp_str) != NULL;
}

/* ---- detection ------------------------------------------------------------------------------ */

static bool vt_has_sat(const char *dir) {
    vt_names l;
    if (vt_list_dir(dir, VT_LIST_ALL, &l) != VT_OK) return false;
    bool found = false;
    for (int i = 0; i < l.n && !found; i++) found = strstr(l.v[i], "_sat.") != NULL;
    vt_names_free(&l);
    return found;
}

vt_status vt_segdata_detect(const char *path, vt_seg_layout *layout) {
    char a[VT_SEG_PATH_MAX], b[VT_SEG_PATH_MAX];
    *layout = VT_SEG_AUTO;
    if (!path) return vt_error(VT_ERR_INVALID_ARG, "segmentation dataset: NULL path");
    static const char *const dg[] = {"training", "validation"};
    for (int i = 0; i < 2; i++) {
        int k = snprintf(a, sizeof a, "%s/%s", path, dg[i]);
        if (k > 0 && (size_t)k < sizeof a && vt_is_dir(a) && vt_has_sat(a)) {
            *layout = VT_SEG_DEEPGLOBE;
            return VT_OK;
        }
    }
    static const char *const cv[] = {"train", "val", "test"};
    for (int i = 0; i < 3; i++) {
        int k = snprintf(a, sizeof a, "%s/%s", path, cv[i]);
        int k2 = snprintf(b, sizeof b, "%s/%sannot", path, cv[i]);
        if (k > 0 && (size_t)k < sizeof a && k2 > 0 && (size_t)k2 < sizeof b && vt_is_dir(a) && vt_is_dir(b)) {
            *layout = VT_SEG_CAMVID;
            return VT_OK;
        }
    }
    return vt_error(VT_ERR_NOT_FOUND,
                    "%s: no segmentation dataset: looked for training/ or validation/ holding NNNN_sat.jpg + "
                    "NNNN_mask.png (deepglobe), and train/ + trainannot/, val/ + valannot/ or test/ + testannot/ "
                    "(camvid)",
                    path);
}

/* ---- one pair -------------------------------------------------------------------------------- */

typedef struct vt_seg_pair {
    char *name;  /* base name */
    char *image; /* path */
    char *mask;  /* path */
} vt_seg_pair;

static void vt_pairs_free(vt_seg_pair *p, int64_t n) {
    for (int64_t i = 0; p && i < n; i++) {
        free(p[i].name);
        free(p[i].image);
        free(p[i].mask);
    }
    free(p);
}

static char *vt_strcat3(const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

/* The pairs of a split folder, sorted by base name; a file without its partner is refused. */
static vt_status vt_seg_collect(vt_seg_layout layout, const char *idir, const char *mdir, vt_seg_pair **pairs,
                                int64_t *n_pairs) {
    *pairs = NULL;
    *n_pairs = 0;
    vt_names il, ml;
    VT_TRY(vt_list_dir(idir, VT_LIST_ALL, &il));
    vt_status s = VT_OK;
    if (layout == VT_SEG_CAMVID) {
        s = vt_list_dir(mdir, VT_LIST_ALL, &ml);
        if (s != VT_OK) {
            vt_names_free(&il);
            return s;
        }
    } else {
        memset(&ml, 0, sizeof ml);
    }
    vt_seg_pair *p = calloc((size_t)(il.n ? il.n : 1), sizeof *p);
    if (!p) s = vt_error(VT_ERR_OOM, "%s: no memory", idir);
    int64_t n = 0;
    char base[VT_SEG_PATH_MAX];
    for (int i = 0; i < il.n && s == VT_OK; i++) {
        const char *f = il.v[i];
        if (layout == VT_SEG_DEEPGLOBE) {
            const char *m = strstr(f, "_mask.");
            if (m) {
                /* a mask must have its image */
                size_t bl = (size_t)(m - f);
                char want[VT_SEG_PATH_MAX];
                snprintf(want, sizeof want, "%.*s_sat.jpg", (int)bl, f);
                char want2[VT_SEG_PATH_MAX];
                snprintf(want2, sizeof want2, "%.*s_sat.png", (int)bl, f);
                if (!vt_seg_names_has(&il, want) && !vt_seg_names_has(&il, want2))
                    s = vt_error(VT_ERR_FORMAT, "%s/%s: mask without its image (%s)", idir, f, want);
                continue;
            }
            const char *sat = strstr(f, "_sat.");
            if (!sat || !(vt_ends_with(f, ".jpg") || vt_ends_with(f, ".jpeg") || vt_ends_with(f, ".png"))) continue;
            snprintf(base, sizeof base, "%.*s", (int)(sat - f), f);
            char mname[VT_SEG_PATH_MAX];
            snprintf(mname, sizeof mname, "%s_mask.png", base);
            if (!vt_seg_names_has(&il, mname)) {
                s = vt_error(VT_ERR_NOT_FOUND, "%s/%s: image without its mask %s/%s", idir, f, idir, mname);
                break;
            }
            p[n].name = strdup(base);
            p[n].image = vt_strcat3(idir, "/", f);
            char *mp = vt_strcat3(idir, "/", base);
            p[n].mask = mp ? vt_strcat3(mp, "_mask.png", "") : NULL;
            free(mp);
        } else {
            if (!(vt_ends_with(f, ".jpg") || vt_ends_with(f, ".jpeg") || vt_ends_with(f, ".png"))) continue;
            const char *dot = strrchr(f, '.');
            snprintf(base, sizeof base, "%.*s", (int)(dot - f), f);
            char mname[VT_SEG_PATH_MAX];
            snprintf(mname, sizeof mname, "%s.png", base);
            if (!vt_seg_names_has(&ml, mname)) {
                s = vt_error(VT_ERR_NOT_FOUND, "%s/%s: image without its mask %s/%s", idir, f, mdir, mname);
                break;
            }
            p[n].name = strdup(base);
            p[n].image = vt_strcat3(idir, "/", f);
            p[n].mask = vt_strcat3(mdir, "/", mname);
        }
        if (!p[n].name || !p[n].image || !p[n].mask) s = vt_error(VT_ERR_OOM, "%s: no memory", idir);
        n++;
        /* two images of one base name (0001.jpg and 0001.png) would share a mask */
        if (s == VT_OK && n > 1 && strcmp(p[n - 1].name, p[n - 2].name) == 0)
            s = vt_error(VT_ERR_FORMAT, "%s/%s: a second image of the base name %s", idir, f, base);
    }
    if (s == VT_OK && layout == VT_SEG_CAMVID) /* a mask must have its image */
        for (int i = 0; i < ml.n && s == VT_OK; i++) {
            if (!vt_ends_with(ml.v[i], ".png")) continue;
            bool found = false;
            size_t bl = strlen(ml.v[i]) - 4;
            for (int64_t j = 0; j < n && !found; j++)
                found = strlen(p[j].name) == bl && strncmp(p[j].name, ml.v[i], bl) == 0;
            if (!found) s = vt_error(VT_ERR_FORMAT, "%s/%s: mask without its image in %s", mdir, ml.v[i], idir);
        }
    if (s == VT_OK && n == 0)
        s = vt_error(VT_ERR_FORMAT, "%s: no image + mask pairs (expected %s)", idir,
                     layout == VT_SEG_DEEPGLOBE ? "NNNN_sat.jpg + NNNN_mask.png" : "NAME.jpg|png + annot/NAME.png");
    vt_names_free(&il);
    vt_names_free(&ml);
    if (s != VT_OK) {
        vt_pairs_free(p, n);
        return s;
    }
    *pairs = p;
    *n_pairs = n;
    return VT_OK;
}

/* A mask PNG, checked from its header: size, colour (deepglobe) or 8-bit grey (camvid), no alpha, no
 * 16-bit; then read as 8-bit RGB or grey with the values as stored. probe: header only. */
vt_status vt_mask_decode(const uint8_t *buf, size_t len, const char *name, vt_seg_layout layout, bool probe, int *w,
                         int *h, uint8_t **px) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(buf, png_sig, 8) != 0)
        return vt_error(VT_ERR_FORMAT, "%s: mask is not a PNG file (%zu bytes)", name, len);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, buf, len)) {
        vt_status s = vt_error(VT_ERR_FORMAT, "%s: undecodable PNG mask: %s", name, img.message);
        png_image_free(&img);
        return s;
    }
    vt_status s = VT_OK;
    bool colour = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    if (img.width == 0 || img.height == 0 || (uint64_t)img.width * img.height > VT_IMAGE_MAX_PIXELS)
        s = vt_error(VT_ERR_FORMAT, "%s: mask of %ux%u pixels is empty or too large (limit %d pixels)", name,
                     img.width, img.height, VT_IMAGE_MAX_PIXELS);
    else if (img.format & PNG_FORMAT_FLAG_ALPHA)
        s = vt_error(VT_ERR_FORMAT, "%s: mask has an alpha channel (expected %s)", name,
                     layout == VT_SEG_DEEPGLOBE ? "8-bit RGB" : "8-bit greyscale");
    else if (img.format & PNG_FORMAT_FLAG_LINEAR)
        s = vt_error(VT_ERR_FORMAT, "%s: mask is 16-bit (expected %s)", name,
                     layout == VT_SEG_DEEPGLOBE ? "8-bit RGB" : "8-bit greyscale");
    else if (layout == VT_SEG_DEEPGLOBE && !colour)
        s = vt_error(VT_ERR_FORMAT, "%s: mask is greyscale, not an RGB colour mask", name);
    else if (layout == VT_SEG_CAMVID && colour)
        s = vt_error(VT_ERR_FORMAT, "%s: mask is in colour, not 8-bit greyscale class ids", name);
    *w = (int)img.width;
    *h = (int)img.height;
    if (s != VT_OK || probe) {
        png_image_free(&img);
        return s;
    }
    img.format = layout == VT_SEG_DEEPGLOBE ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *out = malloc(PNG_IMAGE_SIZE(img));
    if (!out) {
        png_image_free(&img);
        return vt_error(VT_ERR_OOM, "%s: no memory for a %ux%u mask", name, img.width, img.height);
    }
    if (!png_image_finish_read(&img, NULL, out, 0, NULL)) {
        s = vt_error(VT_ERR_FORMAT, "%s: undecodable PNG mask: %s", name, img.message);
        free(out);
        png_image_free(&img);
        return s;
    }
    *px = out;
    return VT_OK;
}

/* Source coordinate of destination index i for nearest (floor of i * n / m) and bilinear (half-pixel
 * centres, as PyTorch's align_corners=False and OpenCV's resize). */
static void vt_bilinear_at(int i, int n_src, int n_dst, int *i0, int *i1, float *f) {
    float x = ((float)i + 0.5f) * (float)n_src / (float)n_dst - 0.5f;
    if (x < 0) x = 0;
    int a = (int)x;
    if (a > n_src - 1) a = n_src - 1;
    *i0 = a;
    *i1 = a + 1 < n_src ? a + 1 : n_src - 1;
    *f = x - (float)a;
}

/* One pair into dst_img (3 x oh x ow, CHW) and dst_mask (oh x ow of class ids). */
static vt_status vt_seg_decode_pair(const vt_seg_pair *p, vt_seg_layout layout, int w, int h,
                                    const vt_segdata_opts *o, int ow, int oh, uint8_t *dst_img, uint8_t *dst_mask) {
    uint8_t *data;
    size_t len;
    VT_TRY(vt_dataset_read_file(p->image, &data, &len));
    vt_rgb_image img;
    vt_status s = vt_image_decode_mem(data, len, p->image, &img);
    free(data);
    if (s != VT_OK) return s;
    uint8_t *mpx = NULL;
    int mw = 0, mh = 0;
    if (img.w != w || img.h != h)
        s = vt_error(VT_ERR_FORMAT, "%s: image is %dx%d, but the first pair fixed the size at %dx%d", p->image, img.w,
                     img.h, w, h);
    if (s == VT_OK) s = vt_dataset_read_file(p->mask, &data, &len);
    if (s == VT_OK) {
        s = vt_mask_decode(data, len, p->mask, layout, false, &mw, &mh, &mpx);
        free(data);
    }
    if (s == VT_OK && (mw != w || mh != h))
        s = vt_error(VT_ERR_FORMAT, "%s: mask is %dx%d, but its image %s is %dx%d", p->mask, mw, mh, p->image, w, h);
    if (s != VT_OK) {
        vt_rgb_image_free(&img);
        free(mpx);
        return s;
    }
    /* class ids at the stored size, in place of the mask's pixels */
    size_t plane = (size_t)w * (size_t)h;
    for (size_t i = 0; i < plane && s == VT_OK; i++) {
        if (layout == VT_SEG_DEEPGLOBE) {
            mpx[i] = vt_seg_deepglobe_class(mpx[3 * i], mpx[3 * i + 1], mpx[3 * i + 2]);
        } else if (mpx[i] == VT_CAMVID_VOID) {
            mpx[i] = VT_SEG_IGNORE;
        } else if (mpx[i] > VT_CAMVID_VOID) {
            s = vt_error(VT_ERR_FORMAT, "%s: pixel (x %zu, y %zu) holds %u, not a class id 0..10 nor void 11", p->mask,
                         i % (size_t)w, i / (size_t)w, mpx[i]);
        }
    }
    if (s == VT_OK) {
        size_t oplane = (size_t)ow * (size_t)oh;
        if (ow == w && oh == h) {
            for (size_t i = 0; i < plane; i++)
                for (int c = 0; c < 3; c++) dst_img[c * plane + i] = img.rgb[3 * i + (size_t)c];
            memcpy(dst_mask, mpx, plane);
        } else if (o->fit == VT_SEG_CROP) {
            int x0 = (w - ow) / 2, y0 = (h - oh) / 2;
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    size_t si = (size_t)(y + y0) * (size_t)w + (size_t)(x + x0), di = (size_t)y * (size_t)ow + (size_t)x;
                    for (int c = 0; c < 3; c++) dst_img[c * oplane + di] = img.rgb[3 * si + (size_t)c];
                    dst_mask[di] = mpx[si];
                }
        } else {
            for (int y = 0; y < oh; y++) {
                int y0, y1;
                float fy;
                vt_bilinear_at(y, h, oh, &y0, &y1, &fy);
                size_t ny = (size_t)y * (size_t)h / (size_t)oh;
                for (int x = 0; x < ow; x++) {
                    int x0, x1;
                    float fx;
                    vt_bilinear_at(x, w, ow, &x0, &x1, &fx);
                    size_t di = (size_t)y * (size_t)ow + (size_t)x;
                    for (int c = 0; c < 3; c++) {
                        const uint8_t *r = img.rgb + c;
                        float a = r[3 * ((size_t)y0 * w + x0)], b = r[3 * ((size_t)y0 * w + x1)];
                        float cc = r[3 * ((size_t)y1 * w + x0)], d = r[3 * ((size_t)y1 * w + x1)];
                        float v = (a + (b - a) * fx) + ((cc + (d - cc) * fx) - (a + (b - a) * fx)) * fy;
                        dst_img[c * oplane + di] = (uint8_t)lrintf(v < 0 ? 0 : v > 255 ? 255 : v);
                    }
                    size_t nx = (size_t)x * (size_t)w / (size_t)ow;
                    dst_mask[di] = mpx[ny * (size_t)w + nx];
                }
            }
        }
    }
    vt_rgb_image_free(&img);
    free(mpx);
    return s;
}

/* ---- the loader ------------------------------------------------------------------------------ */

void vt_segdata_free(vt_segdata *d) {
    if (!d) return;
    free(d->images);
    free(d->masks);
    for (int64_t i = 0; d->names && i < d->n; i++) free(d->names[i]);
    free(d->names);
    memset(d, 0, sizeof *d);
}

/* The split's folders: deepglobe's training/validation, camvid's <split> and <split>annot. */
static vt_status vt_seg_split_dirs(const char *path, const char *split, vt_seg_layout layout, char *idir, char *mdir) {
    const char *name = NULL;
    bool train = strcmp(split, "train") == 0 || strcmp(split, "training") == 0;
    bool val = strcmp(split, "val") == 0 || strcmp(split, "validation") == 0;
    if (layout == VT_SEG_DEEPGLOBE) name = train ? "training" : val ? "validation" : NULL;
    else name = train ? "train" : val ? "val" : strcmp(split, "test") == 0 ? "test" : NULL;
    if (!name)
        return vt_error(VT_ERR_INVALID_ARG, "%s: no split '%s' in a %s dataset (%s)", path, split,
                        layout == VT_SEG_DEEPGLOBE ? "deepglobe" : "camvid",
                        layout == VT_SEG_DEEPGLOBE ? "train or val" : "train, val or test");
    int k = snprintf(idir, VT_SEG_PATH_MAX, "%s/%s", path, name);
    int k2 = snprintf(mdir, VT_SEG_PATH_MAX, layout == VT_SEG_DEEPGLOBE ? "%s/%s" : "%s/%sannot", path, name);
    if (k < 0 || k >= VT_SEG_PATH_MAX || k2 < 0 || k2 >= VT_SEG_PATH_MAX)
        return vt_error(VT_ERR_INVALID_ARG, "%s: path too long", path);
    if (!vt_is_dir(idir)) return vt_error(VT_ERR_NOT_FOUND, "%s: no %s split: %s is not a folder", path, split, idir);
    if (!vt_is_dir(mdir)) return vt_error(VT_ERR_NOT_FOUND, "%s: no %s masks: %s is not a folder", path, split, mdir);
    return VT_OK;
}

vt_status vt_segdata_load(const char *path, const char *split, vt_seg_layout layout, const vt_segdata_opts *opts,
                          vt_segdata *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !split || !out) return vt_error(VT_ERR_INVALID_ARG, "segmentation dataset: NULL argument");
    vt_segdata_opts o = {0, 0, 0, VT_SEG_RESIZE};
    if (opts) o = *opts;
    if (o.limit < 0 || o.h < 0 || o.w < 0 || (o.h == 0) != (o.w == 0) || (o.fit != VT_SEG_RESIZE && o.fit != VT_SEG_CROP))
        return vt_error(VT_ERR_INVALID_ARG, "%s: bad options (limit %lld, size %dx%d, fit %d)", path,
                        (long long)o.limit, o.w, o.h, (int)o.fit);
    if (layout == VT_SEG_AUTO) VT_TRY(vt_segdata_detect(path, &layout));
    if (layout != VT_SEG_DEEPGLOBE && layout != VT_SEG_CAMVID)
        return vt_error(VT_ERR_INVALID_ARG, "%s: unknown segmentation layout %d", path, (int)layout);
    char idir[VT_SEG_PATH_MAX], mdir[VT_SEG_PATH_MAX];
    VT_TRY(vt_seg_split_dirs(path, split, layout, idir, mdir));
    vt_seg_pair *pairs;
    int64_t total;
    VT_TRY(vt_seg_collect(layout, idir, mdir, &pairs, &total));
    int64_t n = (o.limit > 0 && o.limit < total) ? o.limit : total;

    /* The first image's header fixes the size; its mask is checked from its header too. */
    uint8_t *data = NULL;
    size_t len = 0;
    vt_rgb_image first = {0, 0, NULL};
    vt_status s = vt_dataset_read_file(pairs[0].image, &data, &len);
    if (s == VT_OK) {
        s = vt_image_decode_mem(data, len, pairs[0].image, &first);
        free(data);
    }
    int w = first.w, h = first.h;
    vt_rgb_image_free(&first);
    int ow = o.w ? o.w : w, oh = o.h ? o.h : h;
    if (s == VT_OK && o.fit == VT_SEG_CROP && (ow > w || oh > h))
        s = vt_error(VT_ERR_INVALID_ARG, "%s: a %dx%d crop is larger than the %dx%d images", path, ow, oh, w, h);
    if (s == VT_OK && (uint64_t)ow * (uint64_t)oh > VT_IMAGE_MAX_PIXELS)
        s = vt_error(VT_ERR_INVALID_ARG, "%s: %dx%d is over the limit of %d pixels", path, ow, oh, VT_IMAGE_MAX_PIXELS);
    size_t img_bytes = (size_t)3 * (size_t)ow * (size_t)oh, mask_bytes = (size_t)ow * (size_t)oh;
    /* Tiny files can declare huge images: what the split decodes to is capped by its files' bytes. */
    if (s == VT_OK) {
        uint64_t file_bytes = 0;
        for (int64_t i = 0; i < n; i++) {
            struct stat st;
            if (stat(pairs[i].image, &st) == 0 && S_ISREG(st.st_mode)) file_bytes += (uint64_t)st.st_size;
            if (stat(pairs[i].mask, &st) == 0 && S_ISREG(st.st_mode)) file_bytes += (uint64_t)st.st_size;
        }
        uint64_t need = (uint64_t)n * 4 * (uint64_t)w * (uint64_t)h, limit = file_bytes * VT_IMAGE_EXPAND_FACTOR;
        if (limit < VT_IMAGE_DECODE_MIN) limit = VT_IMAGE_DECODE_MIN;
        if (need > limit)
            s = vt_error(VT_ERR_FORMAT,
                         "%s: %lld pairs of %dx%d decode to %llu bytes, over the limit of %llu (%u times the %llu "
                         "bytes of the files); refused: the images are far larger than their files",
                         idir, (long long)n, w, h, (unsigned long long)need, (unsigned long long)limit,
                         VT_IMAGE_EXPAND_FACTOR, (unsigned long long)file_bytes);
    }
    if (s == VT_OK) {
        out->images = malloc((size_t)n * img_bytes);
        out->masks = malloc((size_t)n * mask_bytes);
        out->names = calloc((size_t)n, sizeof *out->names);
        if (!out->images || !out->masks || !out->names)
            s = vt_error(VT_ERR_OOM, "%s: no memory for %lld pairs of %dx%d", idir, (long long)n, ow, oh);
    }
    int threads = 1;
#ifdef _OPENMP
    /* each decoding thread holds an image and a mask besides the dataset */
    threads = omp_get_max_threads();
    uint64_t scratch = (uint64_t)7 * (uint64_t)w * (uint64_t)h;
    if (scratch > 0 && (uint64_t)threads * scratch > VT_IMAGE_DECODE_SCRATCH)
        threads = (int)(VT_IMAGE_DECODE_SCRATCH / scratch);
    if (threads < 1) threads = 1;
#endif
    if (s == VT_OK) {
        int64_t bad = n; /* lowest failing pair, so the message does not depend on thread timing */
        vt_status bad_status = VT_OK;
        char bad_msg[1024] = "";
        uint8_t *images = out->images, *masks = out->masks;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
#endif
        for (int64_t i = 0; i < n; i++) {
            vt_status si = vt_seg_decode_pair(&pairs[i], layout, w, h, &o, ow, oh, images + (size_t)i * img_bytes,
                                              masks + (size_t)i * mask_bytes);
            if (si != VT_OK) {
#ifdef _OPENMP
#pragma omp critical(vt_segdata_error)
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
    if (s == VT_OK)
        for (int64_t i = 0; i < n; i++) { /* names move to the dataset */
            out->names[i] = pairs[i].name;
            pairs[i].name = NULL;
        }
    vt_pairs_free(pairs, total);
    if (s != VT_OK) {
        free(out->images);
        free(out->masks);
        free(out->names);
        memset(out, 0, sizeof *out);
        return s;
    }
    out->n = n;
    out->c = 3;
    out->h = oh;
    out->w = ow;
    out->class_names = vt_seg_class_names(layout, &out->n_classes);
    out->ignore = VT_SEG_IGNORE;
    out->layout = layout;
    snprintf(out->format, sizeof out->format, "%s", layout == VT_SEG_DEEPGLOBE ? "deepglobe" : "camvid");
    snprintf(out->source, sizeof out->source, "%s", idir);
    return VT_OK;
}
