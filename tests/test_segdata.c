/* Segmentation datasets and the mIoU metric: hand-made masks with a known confusion matrix, deepglobe's
 * colour thresholds, hostile pairs, the mask round trip, resizing, and the real data when it is there. */
#include "test_dataset_fixtures.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "vt/segdata.h"

static char *tmp;

static int setup(void **state) {
    (void)state;
    tmp = fx_tmpdir();
    return tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    fx_rmtree(tmp);
    free(tmp);
    return 0;
}

static char *sub(const char *name) {
    char *p = fx_join(tmp, name);
    mkdir(p, 0755);
    return p;
}

static void assert_error(vt_status got, vt_status want, const char *needle1, const char *needle2) {
    if (got != want || !strstr(vt_last_error(), needle1) || (needle2 && !strstr(vt_last_error(), needle2)))
        print_error("status %s (want %s), message: %s\n", vt_status_name(got), vt_status_name(want), vt_last_error());
    assert_int_equal(got, want);
    assert_non_null(strstr(vt_last_error(), needle1));
    if (needle2) assert_non_null(strstr(vt_last_error(), needle2));
}

#define assert_close(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-12)

static void assert_zeroed(const vt_segdata *d) {
    vt_segdata z;
    memset(&z, 0, sizeof z);
    assert_memory_equal(d, &z, sizeof z);
}

static const uint8_t dg_rgb[7][3] = {{0, 255, 255}, {255, 255, 0}, {255, 0, 255}, {0, 255, 0},
                                     {0, 0, 255},   {255, 255, 255}, {0, 0, 0}};

/* The class of pixel (x, y) of pair i in the synthetic sets: 0..k-1 or VT_SEG_IGNORE. */
static uint8_t fx_class(int i, int x, int y, int k) {
    int v = (i * 3 + x / 2 + y * 5) % (k + 1);
    return v == k ? VT_SEG_IGNORE : (uint8_t)v;
}

/* dir/<split>/NNNN_sat.jpg + NNNN_mask.png, w x h, n pairs. */
static void fx_write_deepglobe(const char *dir, const char *split, int n, int w, int h) {
    char *sd = fx_join(dir, split);
    mkdir(dir, 0755);
    mkdir(sd, 0755);
    uint8_t *m = malloc((size_t)w * h * 3);
    for (int i = 0; i < n; i++) {
        char name[64];
        uint8_t *rgb = fx_rgb(w, h, i);
        snprintf(name, sizeof name, "%04d_sat.jpg", i);
        char *p = fx_join(sd, name);
        assert_int_equal(fx_write_jpeg(p, w, h, rgb, 0), 0);
        free(p);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t c = fx_class(i, x, y, 6);
                memcpy(m + 3 * ((size_t)y * w + x), dg_rgb[c == VT_SEG_IGNORE ? 6 : c], 3);
            }
        snprintf(name, sizeof name, "%04d_mask.png", i);
        p = fx_join(sd, name);
        assert_int_equal(fx_write_png(p, w, h, 3, m), 0);
        free(p);
        free(rgb);
    }
    free(m);
    free(sd);
}

/* dir/<split>/NAME.png + dir/<split>annot/NAME.png (grey ids, 11 void). */
static void fx_write_camvid(const char *dir, const char *split, int n, int w, int h) {
    mkdir(dir, 0755);
    char an[64];
    snprintf(an, sizeof an, "%sannot", split);
    char *sd = fx_join(dir, split), *ad = fx_join(dir, an);
    mkdir(sd, 0755);
    mkdir(ad, 0755);
    uint8_t *m = malloc((size_t)w * h * 3);
    for (int i = 0; i < n; i++) {
        char name[64];
        uint8_t *rgb = fx_rgb(w, h, i);
        snprintf(name, sizeof name, "seq_%03d.png", i);
        char *p = fx_join(sd, name);
        assert_int_equal(fx_write_png(p, w, h, 3, rgb), 0);
        free(p);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t c = fx_class(i, x, y, 11);
                m[3 * ((size_t)y * w + x)] = c == VT_SEG_IGNORE ? 11 : c;
            }
        p = fx_join(ad, name);
        assert_int_equal(fx_write_png(p, w, h, 1, m), 0);
        free(p);
        free(rgb);
    }
    free(m);
    free(sd);
    free(ad);
}

/* ---- the metric ---------------------------------------------------------------------------- */

static void test_metric_by_hand(void **state) {
    (void)state;
    /* 4 classes, class 3 in neither prediction nor truth; two "images" accumulated into one matrix.
     *   truth 0: pred 0,0,1     -> TP0 2, FN0 1 (to 1)
     *   truth 1: pred 1,2       -> TP1 1, FN1 1 (to 2)
     *   truth 2: pred 2,9       -> TP2 1, FN2 1 (9 is no class)
     *   ignored: pred 0,1       -> left out, except by the practice's FP
     * FP0 0, FP1 1 (truth 0), FP2 1 (truth 1).
     * IoU: 0: 2/(2+0+1) = 2/3; 1: 1/(1+1+1) = 1/3; 2: 1/(1+1+1) = 1/3; 3: 0/0, left out.
     * mIoU = (2/3 + 1/3 + 1/3) / 3 = 4/9. Practice (FP with ignored truth): 0: 2/4, 1: 1/4, 2: 1/3,
     * mean (1/2 + 1/4 + 1/3) / 3 = 13/36. Pixel accuracy 4 of 7 known pixels. */
    const uint8_t t1[] = {0, 0, 0, 255, 1}, p1[] = {0, 0, 1, 0, 1};
    const uint8_t t2[] = {1, 2, 2, 255}, p2[] = {2, 2, 9, 1};
    vt_seg_confusion c;
    assert_int_equal(vt_seg_confusion_init(&c, 4), VT_OK);
    assert_int_equal(vt_seg_confusion_add(&c, p1, t1, 5, 255), VT_OK);
    assert_int_equal(vt_seg_confusion_add(&c, p2, t2, 4, 255), VT_OK);
    /* a truth that is no class and not the ignore value is refused and adds nothing */
    const uint8_t tb[] = {0, 4}, pb[] = {0, 0};
    assert_error(vt_seg_confusion_add(&c, pb, tb, 2, 255), VT_ERR_INVALID_ARG, "truth pixel 1 is 4", NULL);
    /* the matrix itself: row truth, column prediction, row/column 4 = ignored / no class */
    const uint64_t want[5][5] = {{2, 1, 0, 0, 0}, {0, 1, 1, 0, 0}, {0, 0, 1, 0, 1}, {0, 0, 0, 0, 0}, {1, 1, 0, 0, 0}};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) assert_int_equal(c.m[i * 5 + j], want[i][j]);
    vt_seg_scores s;
    vt_seg_scores_compute(&c, &s);
    assert_close(s.iou[0], 2.0 / 3);
    assert_close(s.iou[1], 1.0 / 3);
    assert_close(s.iou[2], 1.0 / 3);
    assert_true(isnan(s.iou[3]));
    assert_int_equal(s.n_valid, 3);
    assert_close(s.miou, 4.0 / 9);
    assert_close(s.iou_practice[0], 0.5);
    assert_close(s.iou_practice[1], 0.25);
    assert_close(s.miou_practice, 13.0 / 36);
    assert_int_equal(s.pixels, 7);
    assert_close(s.pixel_acc, 4.0 / 7);
    /* counted over the whole set, not per image: image 1 alone has mIoU (2/3 + 1/2) / 2 */
    vt_seg_confusion c1;
    assert_int_equal(vt_seg_confusion_init(&c1, 4), VT_OK);
    assert_int_equal(vt_seg_confusion_add(&c1, p1, t1, 5, 255), VT_OK);
    vt_seg_scores s1;
    vt_seg_scores_compute(&c1, &s1);
    assert_close(s1.miou, (2.0 / 3 + 0.5) / 2);
    vt_seg_confusion_free(&c1);
    vt_seg_confusion_free(&c);
    /* nothing known: NaN, not a division by zero */
    assert_int_equal(vt_seg_confusion_init(&c, 2), VT_OK);
    vt_seg_scores_compute(&c, &s);
    assert_true(isnan(s.miou));
    assert_true(isnan(s.pixel_acc));
    assert_int_equal(s.n_valid, 0);
    vt_seg_confusion_free(&c);
    assert_int_equal(vt_seg_confusion_init(&c, 0), VT_ERR_INVALID_ARG);
}

/* ---- colours ------------------------------------------------------------------------------- */

static void test_colour_thresholds(void **state) {
    (void)state;
    for (int k = 0; k < 7; k++) {
        uint8_t want = k == 6 ? VT_SEG_IGNORE : (uint8_t)k;
        /* exact, then every on-channel at 128 and every off-channel at 127: the same class */
        assert_int_equal(vt_seg_deepglobe_class(dg_rgb[k][0], dg_rgb[k][1], dg_rgb[k][2]), want);
        uint8_t r = dg_rgb[k][0] ? 128 : 127, g = dg_rgb[k][1] ? 128 : 127, b = dg_rgb[k][2] ? 128 : 127;
        assert_int_equal(vt_seg_deepglobe_class(r, g, b), want);
    }
    assert_int_equal(vt_seg_deepglobe_class(255, 0, 0), VT_SEG_IGNORE);  /* red: unknown */
    assert_int_equal(vt_seg_deepglobe_class(128, 127, 127), VT_SEG_IGNORE);
    assert_int_equal(vt_seg_deepglobe_class(127, 255, 255), 0);          /* 127 is off: cyan */
    assert_int_equal(vt_seg_deepglobe_class(128, 255, 255), 5);          /* 128 is on: white */
    assert_int_equal(vt_seg_deepglobe_class(255, 255, 127), 1);          /* yellow */
    assert_int_equal(vt_seg_deepglobe_class(255, 127, 255), 2);          /* purple */

    /* the same through a mask file: one row of boundary colours */
    char *dir = sub("thresh");
    char *sd = fx_join(dir, "training");
    mkdir(sd, 0755);
    const uint8_t px[8][3] = {{127, 128, 128}, {128, 128, 127}, {128, 127, 128}, {127, 128, 127},
                              {127, 127, 128}, {128, 128, 128}, {127, 127, 127}, {128, 127, 127}};
    const uint8_t want[8] = {0, 1, 2, 3, 4, 5, VT_SEG_IGNORE, VT_SEG_IGNORE};
    uint8_t rgb[8 * 3];
    memcpy(rgb, px, sizeof rgb);
    char *p = fx_join(sd, "0000_mask.png");
    assert_int_equal(fx_write_png(p, 8, 1, 3, rgb), 0);
    free(p);
    p = fx_join(sd, "0000_sat.jpg");
    assert_int_equal(fx_write_jpeg(p, 8, 1, rgb, 0), 0);
    free(p);
    vt_segdata d;
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, NULL, &d), VT_OK);
    assert_int_equal(d.layout, VT_SEG_DEEPGLOBE);
    assert_memory_equal(d.masks, want, 8);
    vt_segdata_free(&d);
    free(sd);
    free(dir);
}

/* ---- loading ------------------------------------------------------------------------------- */

static void test_load_deepglobe(void **state) {
    (void)state;
    char *dir = fx_join(tmp, "dg");
    fx_write_deepglobe(dir, "training", 5, 12, 10);
    fx_write_deepglobe(dir, "validation", 2, 12, 10);
    vt_seg_layout l;
    assert_int_equal(vt_segdata_detect(dir, &l), VT_OK);
    assert_int_equal(l, VT_SEG_DEEPGLOBE);
    vt_segdata d;
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, NULL, &d), VT_OK);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 10);
    assert_int_equal(d.w, 12);
    assert_int_equal(d.n_classes, 6);
    assert_string_equal(d.class_names[0], "urban");
    assert_string_equal(d.class_names[5], "barren");
    assert_int_equal(d.ignore, VT_SEG_IGNORE);
    assert_string_equal(d.format, "deepglobe");
    assert_string_equal(d.names[3], "0003");
    for (int i = 0; i < 5; i++)
        for (int y = 0; y < 10; y++)
            for (int x = 0; x < 12; x++) assert_int_equal(d.masks[(i * 10 + y) * 12 + x], fx_class(i, x, y, 6));
    /* the image: JPEG at quality 100, 4:4:4, stays within a few levels of what was written */
    uint8_t *rgb = fx_rgb(12, 10, 2);
    for (int j = 0; j < 120; j++)
        for (int c = 0; c < 3; c++) assert_true(abs((int)d.images[2 * 360 + c * 120 + j] - rgb[3 * j + c]) <= 8);
    free(rgb);
    vt_segdata_free(&d);
    assert_int_equal(vt_segdata_load(dir, "validation", VT_SEG_DEEPGLOBE, NULL, &d), VT_OK);
    assert_int_equal(d.n, 2);
    vt_segdata_free(&d);
    vt_segdata_opts o = {3, 0, 0, VT_SEG_RESIZE};
    assert_int_equal(vt_segdata_load(dir, "val", VT_SEG_AUTO, &o, &d), VT_OK);
    assert_int_equal(d.n, 2); /* a limit over the count is the count */
    vt_segdata_free(&d);
    assert_error(vt_segdata_load(dir, "test", VT_SEG_AUTO, NULL, &d), VT_ERR_INVALID_ARG, "no split 'test'", NULL);
    assert_zeroed(&d);
    free(dir);
}

static void test_load_camvid(void **state) {
    (void)state;
    char *dir = fx_join(tmp, "cv");
    fx_write_camvid(dir, "train", 4, 9, 7);
    fx_write_camvid(dir, "test", 3, 9, 7);
    vt_seg_layout l;
    assert_int_equal(vt_segdata_detect(dir, &l), VT_OK);
    assert_int_equal(l, VT_SEG_CAMVID);
    vt_segdata d;
    vt_segdata_opts o = {3, 0, 0, VT_SEG_RESIZE};
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, &o, &d), VT_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.n_classes, 11);
    assert_string_equal(d.class_names[10], "bicyclist");
    assert_string_equal(d.names[1], "seq_001");
    uint8_t *rgb = fx_rgb(9, 7, 1); /* PNG images: exact */
    for (int j = 0; j < 63; j++)
        for (int c = 0; c < 3; c++) assert_int_equal(d.images[189 + c * 63 + j], rgb[3 * j + c]);
    free(rgb);
    for (int i = 0; i < 3; i++)
        for (int y = 0; y < 7; y++)
            for (int x = 0; x < 9; x++) assert_int_equal(d.masks[(i * 7 + y) * 9 + x], fx_class(i, x, y, 11));
    vt_segdata_free(&d);
    assert_int_equal(vt_segdata_load(dir, "test", VT_SEG_CAMVID, NULL, &d), VT_OK);
    assert_int_equal(d.n, 3);
    vt_segdata_free(&d);
    assert_error(vt_segdata_load(dir, "val", VT_SEG_AUTO, NULL, &d), VT_ERR_NOT_FOUND, "no val split", NULL);
    char *empty = sub("nothing");
    assert_error(vt_segdata_detect(empty, &l), VT_ERR_NOT_FOUND, "no segmentation dataset", "trainannot");
    free(empty);
    free(dir);
}

static void test_resize_and_crop(void **state) {
    (void)state;
    char *dir = fx_join(tmp, "rs");
    fx_write_camvid(dir, "train", 2, 8, 6);
    vt_segdata full, d;
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, NULL, &full), VT_OK);
    /* nearest for masks: pixel (x, y) of the 4x3 is (2x, 2y) of the 8x6 */
    vt_segdata_opts o = {0, 3, 4, VT_SEG_RESIZE};
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, &o, &d), VT_OK);
    assert_int_equal(d.h, 3);
    assert_int_equal(d.w, 4);
    for (int i = 0; i < 2; i++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++) {
                assert_int_equal(d.masks[(i * 3 + y) * 4 + x], full.masks[(i * 6 + 2 * y) * 8 + 2 * x]);
                /* bilinear at half-pixel centres: a 2x reduction is the mean of a 2x2 block */
                for (int c = 0; c < 3; c++) {
                    const uint8_t *f = full.images + i * 144 + c * 48;
                    int sum = f[(2 * y) * 8 + 2 * x] + f[(2 * y) * 8 + 2 * x + 1] + f[(2 * y + 1) * 8 + 2 * x] +
                              f[(2 * y + 1) * 8 + 2 * x + 1];
                    assert_true(abs(4 * (int)d.images[i * 36 + c * 12 + y * 4 + x] - sum) <= 2);
                }
            }
    vt_segdata_free(&d);
    /* centre crop 4x2 of 8x6: rows 2..3, columns 2..5 */
    vt_segdata_opts oc = {0, 2, 4, VT_SEG_CROP};
    assert_int_equal(vt_segdata_load(dir, "train", VT_SEG_AUTO, &oc, &d), VT_OK);
    for (int i = 0; i < 2; i++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++) {
                assert_int_equal(d.masks[(i * 2 + y) * 4 + x], full.masks[(i * 6 + y + 2) * 8 + x + 2]);
                assert_int_equal(d.images[i * 24 + 8 + y * 4 + x], full.images[i * 144 + 48 + (y + 2) * 8 + x + 2]);
            }
    vt_segdata_free(&d);
    vt_segdata_opts big = {0, 7, 9, VT_SEG_CROP};
    assert_error(vt_segdata_load(dir, "train", VT_SEG_AUTO, &big, &d), VT_ERR_INVALID_ARG, "crop is larger", NULL);
    vt_segdata_opts half = {0, 3, 0, VT_SEG_RESIZE};
    assert_error(vt_segdata_load(dir, "train", VT_SEG_AUTO, &half, &d), VT_ERR_INVALID_ARG, "bad options", NULL);
    vt_segdata_free(&full);
    free(dir);
}

/* ---- hostile pairs ------------------------------------------------------------------------- */

static void expect_refused(const char *dir, const char *split, vt_status want, const char *n1, const char *n2) {
    vt_segdata d;
    assert_error(vt_segdata_load(dir, split, VT_SEG_AUTO, NULL, &d), want, n1, n2);
    assert_zeroed(&d);
}

static void test_hostile(void **state) {
    (void)state;
    char *dir, *p;
    uint8_t *data;
    long len;
    /* a truncated mask PNG */
    dir = fx_join(tmp, "h1");
    fx_write_deepglobe(dir, "training", 3, 16, 16);
    p = fx_join(dir, "training/0001_mask.png");
    {
        FILE *f = fopen(p, "rb");
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc((size_t)len);
        assert_int_equal(fread(data, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        assert_int_equal(fx_write(p, data, (size_t)len / 2), 0);
        free(data);
    }
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_mask.png", "undecodable");
    free(p);
    free(dir);
    /* a missing mask, then a mask without its image */
    dir = fx_join(tmp, "h2");
    fx_write_deepglobe(dir, "training", 3, 8, 8);
    p = fx_join(dir, "training/0002_mask.png");
    unlink(p);
    expect_refused(dir, "train", VT_ERR_NOT_FOUND, "0002_sat.jpg", "without its mask");
    free(p);
    p = fx_join(dir, "training/0002_sat.jpg");
    unlink(p);
    free(p);
    p = fx_join(dir, "training/0007_mask.png");
    uint8_t rgb[8 * 8 * 3] = {0};
    assert_int_equal(fx_write_png(p, 8, 8, 3, rgb), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0007_mask.png", "without its image");
    free(p);
    free(dir);
    /* a mask of another size than its image */
    dir = fx_join(tmp, "h3");
    fx_write_deepglobe(dir, "training", 2, 8, 8);
    p = fx_join(dir, "training/0001_mask.png");
    assert_int_equal(fx_write_png(p, 8, 6, 3, rgb), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_mask.png", "is 8x6");
    /* a greyscale mask where colour is expected, and one with alpha */
    assert_int_equal(fx_write_png(p, 8, 8, 1, rgb), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_mask.png", "not an RGB colour mask");
    assert_int_equal(fx_write_png(p, 8, 8, 4, rgb), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_mask.png", "alpha");
    /* a mask that is a JPEG */
    assert_int_equal(fx_write_jpeg(p, 8, 8, rgb, 0), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_mask.png", "not a PNG");
    /* an image of another size than the first pair's */
    assert_int_equal(fx_write_png(p, 8, 8, 3, rgb), 0);
    free(p);
    p = fx_join(dir, "training/0001_sat.jpg");
    assert_int_equal(fx_write_jpeg(p, 8, 4, rgb, 0), 0);
    expect_refused(dir, "train", VT_ERR_FORMAT, "0001_sat.jpg", "first pair fixed the size");
    /* a folder where the mask should be a file */
    assert_int_equal(fx_write_jpeg(p, 8, 8, rgb, 0), 0);
    free(p);
    p = fx_join(dir, "training/0001_mask.png");
    unlink(p);
    mkdir(p, 0755);
    expect_refused(dir, "train", VT_ERR_IO, "0001_mask.png", NULL);
    free(p);
    free(dir);
    /* camvid: a class id over void, a colour annotation, a missing annotation */
    dir = fx_join(tmp, "h4");
    fx_write_camvid(dir, "val", 3, 6, 5);
    p = fx_join(dir, "valannot/seq_002.png");
    uint8_t ids[6 * 5 * 3] = {0};
    ids[3 * (2 * 6 + 4)] = 12; /* pixel (x 4, y 2) */
    assert_int_equal(fx_write_png(p, 6, 5, 1, ids), 0);
    expect_refused(dir, "val", VT_ERR_FORMAT, "seq_002.png", "pixel (x 4, y 2) holds 12");
    assert_int_equal(fx_write_png(p, 6, 5, 3, ids), 0);
    expect_refused(dir, "val", VT_ERR_FORMAT, "seq_002.png", "in colour");
    unlink(p);
    expect_refused(dir, "val", VT_ERR_NOT_FOUND, "seq_002.png", "without its mask");
    free(p);
    free(dir);
}

/* ---- writing masks ------------------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    const vt_seg_layout layouts[2] = {VT_SEG_DEEPGLOBE, VT_SEG_CAMVID};
    for (int li = 0; li < 2; li++) {
        int k = li == 0 ? 6 : 11, w = 13, h = 7;
        uint8_t m[13 * 7];
        for (int i = 0; i < w * h; i++) {
            int v = (i * 7 + i / 5) % (k + 1);
            m[i] = v == k ? VT_SEG_IGNORE : (uint8_t)v;
        }
        char *dir = fx_join(tmp, li == 0 ? "rt_dg" : "rt_cv");
        mkdir(dir, 0755);
        char *mp, *ip;
        if (li == 0) {
            char *sd = fx_join(dir, "validation");
            mkdir(sd, 0755);
            mp = fx_join(sd, "0000_mask.png");
            ip = fx_join(sd, "0000_sat.jpg");
            free(sd);
        } else {
            char *sd = fx_join(dir, "val"), *ad = fx_join(dir, "valannot");
            mkdir(sd, 0755);
            mkdir(ad, 0755);
            mp = fx_join(ad, "a.png");
            ip = fx_join(sd, "a.jpg");
            free(sd);
            free(ad);
        }
        assert_int_equal(vt_seg_write_mask(mp, layouts[li], m, h, w), VT_OK);
        uint8_t *rgb = fx_rgb(w, h, 0);
        assert_int_equal(fx_write_jpeg(ip, w, h, rgb, 0), 0);
        free(rgb);
        vt_segdata d;
        assert_int_equal(vt_segdata_load(dir, "val", VT_SEG_AUTO, NULL, &d), VT_OK);
        assert_int_equal(d.layout, layouts[li]);
        assert_memory_equal(d.masks, m, sizeof m);
        vt_segdata_free(&d);
        m[20] = (uint8_t)k; /* neither a class nor ignored */
        assert_error(vt_seg_write_mask(mp, layouts[li], m, h, w), VT_ERR_INVALID_ARG, "pixel (x 7, y 1)", NULL);
        free(mp);
        free(ip);
        free(dir);
    }
}

/* ---- the real data ------------------------------------------------------------------------- */

static void test_real_data(void **state) {
    (void)state;
    char *root = fx_join(VT_SOURCE_DIR, "../shared/data");
    char *dg = fx_join(root, "deepglobe-tiles"), *cv = fx_join(root, "camvid");
    if (!fx_exists(dg) || !fx_exists(cv)) {
        free(root);
        free(dg);
        free(cv);
        skip();
    }
    static const char *const dsplits[2] = {"train", "val"};
    const int64_t dn[2] = {160, 48};
    for (int s = 0; s < 2; s++) {
        vt_segdata d;
        assert_int_equal(vt_segdata_load(dg, dsplits[s], VT_SEG_AUTO, NULL, &d), VT_OK);
        assert_int_equal(d.layout, VT_SEG_DEEPGLOBE);
        assert_int_equal(d.n, dn[s]);
        assert_int_equal(d.h, 512);
        assert_int_equal(d.w, 512);
        uint64_t hist[256] = {0};
        for (int64_t i = 0; i < d.n * 512 * 512; i++) hist[d.masks[i]]++;
        print_message("deepglobe %s:", dsplits[s]);
        for (int c = 0; c < 6; c++) print_message(" %s %llu", d.class_names[c], (unsigned long long)hist[c]);
        print_message(" ignored %llu\n", (unsigned long long)hist[VT_SEG_IGNORE]);
        uint64_t sum = hist[VT_SEG_IGNORE];
        for (int c = 0; c < 6; c++) sum += hist[c];
        assert_int_equal(sum, (uint64_t)d.n * 512 * 512); /* nothing outside the classes and ignored */
        /* exactly the seven colours in the mask files (read raw, not through the thresholds) */
        for (int64_t i = 0; i < d.n; i += 16) {
            char name[600];
            snprintf(name, sizeof name, "%s/%s/%s_mask.png", dg, s == 0 ? "training" : "validation", d.names[i]);
            png_image img;
            memset(&img, 0, sizeof img);
            img.version = PNG_IMAGE_VERSION;
            assert_true(png_image_begin_read_from_file(&img, name));
            img.format = PNG_FORMAT_RGB;
            uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
            assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
            for (size_t j = 0; j < (size_t)512 * 512; j++) {
                int found = 0;
                for (int c = 0; c < 7 && !found; c++) found = memcmp(px + 3 * j, dg_rgb[c], 3) == 0;
                assert_true(found);
            }
            free(px);
        }
        vt_segdata_free(&d);
    }
    static const char *const csplits[3] = {"train", "val", "test"};
    const int64_t cn[3] = {367, 101, 233};
    for (int s = 0; s < 3; s++) {
        vt_segdata d;
        assert_int_equal(vt_segdata_load(cv, csplits[s], VT_SEG_AUTO, NULL, &d), VT_OK);
        assert_int_equal(d.layout, VT_SEG_CAMVID);
        assert_int_equal(d.n, cn[s]);
        assert_int_equal(d.h, 360);
        assert_int_equal(d.w, 480);
        uint64_t hist[256] = {0};
        for (int64_t i = 0; i < d.n * 360 * 480; i++) hist[d.masks[i]]++;
        print_message("camvid %s:", csplits[s]);
        for (int c = 0; c < 11; c++) print_message(" %s %llu", d.class_names[c], (unsigned long long)hist[c]);
        print_message(" void %llu\n", (unsigned long long)hist[VT_SEG_IGNORE]);
        uint64_t sum = hist[VT_SEG_IGNORE];
        for (int c = 0; c < 11; c++) sum += hist[c];
        assert_int_equal(sum, (uint64_t)d.n * 360 * 480);
        vt_segdata_free(&d);
    }
    /* a CPU-sized copy: 128x128 resized */
    vt_segdata_opts o = {8, 128, 128, VT_SEG_RESIZE};
    vt_segdata d;
    assert_int_equal(vt_segdata_load(dg, "val", VT_SEG_AUTO, &o, &d), VT_OK);
    assert_int_equal(d.n, 8);
    assert_int_equal(d.h, 128);
    vt_segdata_free(&d);
    free(root);
    free(dg);
    free(cv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_by_hand),     cmocka_unit_test(test_colour_thresholds),
        cmocka_unit_test(test_load_deepglobe),     cmocka_unit_test(test_load_camvid),
        cmocka_unit_test(test_resize_and_crop),    cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
