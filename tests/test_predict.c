/* vt_predict_checkpoint (`vtrain predict`): the masks a segmentation checkpoint predicts, written in the
 * dataset's own format and names at the stored size, read back by the loader as the ground truth of a
 * copy of the dataset: they score mIoU 1 against themselves and, against the real truth, the mIoU that
 * vt_eval_checkpoint_seg recomputes; a run at a smaller --size still writes masks at the stored size; a
 * classification checkpoint is refused. */
#define _GNU_SOURCE
#include "test_dataset_fixtures.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_seg_fixtures.h"

#include "vt/registry.h"
#include "vt/segdata.h"
#include "vt/train.h"

static void copy_file(const char *from, const char *to) {
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    assert_int_equal(fx_write(to, b, (size_t)n), 0);
    free(b);
}

/* A copy of the validation split whose masks are the n predicted ones in pred_dir. */
static char *copy_with_masks(const char *name, const char *pred_dir, int n) {
    char *root = fx_join(tmp, name), *val = fx_join(root, "validation"), *src = fx_join(seg_dir, "validation");
    mkdir(root, 0755);
    mkdir(val, 0755);
    for (int i = 0; i < n; i++) {
        char f[64], *a, *b;
        snprintf(f, sizeof f, "%04d_sat.jpg", i);
        a = fx_join(src, f);
        b = fx_join(val, f);
        copy_file(a, b);
        free(a);
        free(b);
        snprintf(f, sizeof f, "%04d_mask.png", i);
        a = fx_join(pred_dir, f);
        b = fx_join(val, f);
        if (!fx_exists(a)) fail_msg("predict wrote no %s", a);
        copy_file(a, b);
        free(a);
        free(b);
    }
    free(val);
    free(src);
    return root;
}

static int setup(void **state) { return seg_fixture_setup(state, 4); }

/* A short fcn32s-scratch run (small widths) at size hw (0 = stored); returns RUN/last.vtc. */
static char *train_seg(vt_backend *be, const char *out, int hw) {
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    snprintf(c.problem, sizeof c.problem, "fcn32s-scratch");
    snprintf(c.data, sizeof c.data, "%s", seg_dir);
    char *o = fx_join(tmp, out);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", o);
    c.quiet = 1;
    c.width = 4;
    c.fc_width = 16;
    c.batch_size = 2;
    c.epochs = 1;
    c.lr = 1e-3f;
    c.dropout = 0.0f;
    c.seg_h = c.seg_w = hw;
    vt_train_result r;
    memset(&r, 0, sizeof r);
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fail_msg("training %s: %s", out, vt_last_error());
    char *ck = fx_join(o, "last.vtc");
    free(o);
    return ck;
}

static double miou_of(const vt_segdata *pred, const vt_segdata *truth) {
    assert_int_equal(pred->n, truth->n);
    assert_int_equal(pred->h, truth->h);
    assert_int_equal(pred->w, truth->w);
    vt_seg_confusion c;
    assert_int_equal(vt_seg_confusion_init(&c, truth->n_classes), VT_OK);
    assert_int_equal(vt_seg_confusion_add(&c, pred->masks, truth->masks, truth->n * truth->h * truth->w, VT_SEG_IGNORE),
                     VT_OK);
    vt_seg_scores sc;
    vt_seg_scores_compute(&c, &sc);
    vt_seg_confusion_free(&c);
    return sc.miou;
}

static void test_predict_stored_size(void **state) {
    (void)state;
    vt_backend *be = cpu();
    char *ck = train_seg(be, "run", 0);
    char *pred_dir = fx_join(tmp, "pred/nested"); /* created with its parent */
    int64_t written = -1;
    vt_status s = vt_predict_checkpoint(ck, "", "val", pred_dir, be, &written);
    if (s != VT_OK) fail_msg("predict: %s", vt_last_error());
    assert_int_equal(written, 3);
    char *copy = copy_with_masks("copy", pred_dir, 3);
    vt_segdata pred, truth;
    if (vt_segdata_load(copy, "val", VT_SEG_AUTO, NULL, &pred) != VT_OK) fail_msg("reload: %s", vt_last_error());
    assert_int_equal(vt_segdata_load(seg_dir, "val", VT_SEG_AUTO, NULL, &truth), VT_OK);
    assert_int_equal(pred.h, 64);
    assert_int_equal(pred.w, 64);
    /* the predictions as their own truth */
    assert_true(miou_of(&pred, &pred) == 1.0);
    /* against the real truth: the checkpoint's own evaluation of the same split at the same size */
    vt_seg_eval e;
    s = vt_eval_checkpoint_seg(ck, "", be, &e);
    if (s != VT_OK) fail_msg("eval: %s", vt_last_error());
    double m = miou_of(&pred, &truth);
    if (!(fabs(m - e.miou) <= 1e-12)) fail_msg("mIoU of the written masks %.12f, eval %.12f", m, e.miou);
    vt_segdata_free(&pred);
    vt_segdata_free(&truth);
    free(copy);
    free(pred_dir);
    free(ck);
    vt_backend_free(be);
}

/* Trained at 32x32: the masks come back at the stored 64x64 (nearest neighbour), and equal the 32x32
 * prediction read at every other pixel. */
static void test_predict_smaller_size(void **state) {
    (void)state;
    vt_backend *be = cpu();
    char *ck = train_seg(be, "run32", 32);
    char *pred_dir = fx_join(tmp, "pred32");
    int64_t written = 0;
    vt_status s = vt_predict_checkpoint(ck, seg_dir, "val", pred_dir, be, &written);
    if (s != VT_OK) fail_msg("predict: %s", vt_last_error());
    assert_int_equal(written, 3);
    char *copy = copy_with_masks("copy32", pred_dir, 3);
    vt_segdata pred;
    if (vt_segdata_load(copy, "val", VT_SEG_AUTO, NULL, &pred) != VT_OK) fail_msg("reload: %s", vt_last_error());
    assert_int_equal(pred.h, 64);
    assert_int_equal(pred.w, 64);
    /* nearest neighbour from 32: pixels come in 2x2 blocks of one value */
    for (int64_t i = 0; i < pred.n; i++)
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 64; x++) {
                const uint8_t *mk = pred.masks + (size_t)i * 64 * 64;
                assert_int_equal(mk[y * 64 + x], mk[(y & ~1) * 64 + (x & ~1)]);
            }
    vt_segdata_free(&pred);
    free(copy);
    free(pred_dir);
    free(ck);
    vt_backend_free(be);
}

static void test_predict_refusals(void **state) {
    (void)state;
    vt_backend *be = cpu();
    /* a classification checkpoint */
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    snprintf(c.problem, sizeof c.problem, "linear");
    snprintf(c.data, sizeof c.data, "%s", cls_dir);
    char *o = fx_join(tmp, "cls-run");
    snprintf(c.out_dir, sizeof c.out_dir, "%s", o);
    c.quiet = 1;
    c.batch_size = 2;
    c.epochs = 0;
    vt_train_result r;
    memset(&r, 0, sizeof r);
    if (vt_train_run(&c, be, &r) != VT_OK) fail_msg("linear: %s", vt_last_error());
    char *ck = fx_join(o, "init.vtc"), *pd = fx_join(tmp, "pred-cls");
    int64_t written = 0;
    assert_int_not_equal(vt_predict_checkpoint(ck, "", "val", pd, be, &written), VT_OK);
    if (!strstr(vt_last_error(), "init.vtc") || !strstr(vt_last_error(), "segmentation"))
        fail_msg("refusal of a classification checkpoint: %s", vt_last_error());
    assert_int_equal(written, 0);
    assert_false(fx_exists(pd));
    /* a missing data folder is named */
    char *seg_ck = fx_join(tmp, "run/last.vtc"), *nodata = fx_join(tmp, "no-such-data");
    if (fx_exists(seg_ck)) {
        assert_int_not_equal(vt_predict_checkpoint(seg_ck, nodata, "val", pd, be, &written), VT_OK);
        if (!strstr(vt_last_error(), "no-such-data")) fail_msg("missing data: %s", vt_last_error());
    }
    free(seg_ck);
    free(nodata);
    free(ck);
    free(pd);
    free(o);
    vt_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_stored_size),
        cmocka_unit_test(test_predict_smaller_size),
        cmocka_unit_test(test_predict_refusals),
    };
    return cmocka_run_group_tests(tests, setup, seg_fixture_teardown);
}
