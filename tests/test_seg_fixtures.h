/* Synthetic segmentation folders for the tests that train, evaluate and predict the segmentation
 * problems: a deepglobe-layout split whose classes the network can learn, and a small image folder (a
 * classification dataset, for the refusals). Include after test_dataset_fixtures.h and cmocka.h. */
#ifndef TEST_SEG_FIXTURES_H
#define TEST_SEG_FIXTURES_H

#include "vt/registry.h"
#include "vt/segdata.h"

static const uint8_t dg_rgb[7][3] = {{0, 255, 255}, {255, 255, 0},   {255, 0, 255}, {0, 255, 0},
                                     {0, 0, 255},   {255, 255, 255}, {0, 0, 0}};

/* The class of pixel (x, y) of pair i: bands the network can learn from the image (which is drawn from
 * the class below), with a corner of ignored pixels. */
static uint8_t fx_class(int i, int x, int y) {
    if (x < 6 && y < 6) return VT_SEG_IGNORE;
    return (uint8_t)(((y / 16) + (i & 1)) % 3);
}

/* dir/<split>/NNNN_sat.jpg + NNNN_mask.png, w x h, n pairs (lossless-enough JPEG: flat colour bands). */
static void write_deepglobe(const char *dir, const char *split, int n, int w, int h) {
    char *sd = fx_join(dir, split);
    mkdir(dir, 0755);
    mkdir(sd, 0755);
    uint8_t *m = malloc((size_t)w * h * 3), *rgb = malloc((size_t)w * h * 3);
    assert_non_null(m);
    assert_non_null(rgb);
    for (int i = 0; i < n; i++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t c = fx_class(i, x, y);
                int k = c == VT_SEG_IGNORE ? 6 : c;
                uint8_t *p = rgb + 3 * ((size_t)y * w + x);
                p[0] = (uint8_t)(40 + 80 * (k % 3) + (x * 7 + i) % 16);
                p[1] = (uint8_t)(200 - 60 * (k % 3));
                p[2] = (uint8_t)(30 + (y * 3) % 20);
                memcpy(m + 3 * ((size_t)y * w + x), dg_rgb[k], 3);
            }
        char name[64];
        snprintf(name, sizeof name, "%04d_sat.jpg", i);
        char *p = fx_join(sd, name);
        assert_int_equal(fx_write_jpeg(p, w, h, rgb, 0), 0);
        free(p);
        snprintf(name, sizeof name, "%04d_mask.png", i);
        p = fx_join(sd, name);
        assert_int_equal(fx_write_png(p, w, h, 3, m), 0);
        free(p);
    }
    free(m);
    free(rgb);
    free(sd);
}

/* dir/{train,test}/c0, c1: one 8x8 PNG each. */
static void write_image_folder(const char *dir) {
    mkdir(dir, 0755);
    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++)
        for (int c = 0; c < 2; c++) {
            char *sd = fx_join(dir, splits[s]);
            mkdir(sd, 0755);
            char sub[16];
            snprintf(sub, sizeof sub, "c%d", c);
            char *cd = fx_join(sd, sub);
            mkdir(cd, 0755);
            uint8_t *rgb = fx_rgb(8, 8, c);
            char *p = fx_join(cd, "a.png");
            assert_int_equal(fx_write_png(p, 8, 8, 3, rgb), 0);
            free(p);
            free(rgb);
            free(cd);
            free(sd);
        }
}

/* The folders every test of the file shares: tmp/dg (deepglobe layout, n_train training pairs and 3
 * validation pairs at 64x64) and tmp/imgs (an image folder). */
static char *tmp, *seg_dir, *cls_dir;

static int seg_fixture_setup(void **state, int n_train) {
    (void)state;
    tmp = fx_tmpdir();
    if (!tmp) return -1;
    seg_dir = fx_join(tmp, "dg");
    write_deepglobe(seg_dir, "training", n_train, 64, 64);
    write_deepglobe(seg_dir, "validation", 3, 64, 64);
    cls_dir = fx_join(tmp, "imgs");
    write_image_folder(cls_dir);
    return 0;
}

static int seg_fixture_teardown(void **state) {
    (void)state;
    fx_rmtree(tmp);
    free(tmp);
    free(seg_dir);
    free(cls_dir);
    return 0;
}

static vt_backend *cpu(void) {
    vt_backend *be = NULL;
    vt_backend_opts o = {0};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    return be;
}

#endif
