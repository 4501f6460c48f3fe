/* Training the segmentation problems end to end on the CPU: a synthetic deepglobe-layout folder at 64x64,
 * a narrow FCN-32s; the loss goes down, the recorded mIoU is that of the weights (recomputed on the host
 * from the downloaded predictions and by vt_eval_checkpoint_seg), resume continues bit for bit, the
 * training crop, the refusals. */
#include "test_dataset_fixtures.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_seg_fixtures.h"

#include <cjson/cJSON.h>

#include "vt/checkpoint.h"
#include "vt/models.h"
#include "vt/registry.h"
#include "vt/segdata.h"
#include "vt/train.h"
#include "vt/weights.h"

static int setup(void **state) { return seg_fixture_setup(state, 8); }

static void base_cfg(vt_train_cfg *c, const char *out) {
    vt_train_cfg_init(c);
    snprintf(c->problem, sizeof c->problem, "fcn32s-scratch");
    snprintf(c->data, sizeof c->data, "%s", seg_dir);
    char *o = fx_join(tmp, out);
    snprintf(c->out_dir, sizeof c->out_dir, "%s", o);
    free(o);
    c->quiet = 1;
    c->width = 4;
    c->fc_width = 16;
    c->batch_size = 2;
    c->epochs = 3;
    c->log_every = 2;
    c->lr = 1e-3f;
    c->dropout = 0.0f;
}

static void run_ok(const vt_train_cfg *c, vt_backend *be, vt_train_result *r) {
    vt_status s = vt_train_run(c, be, r);
    if (s != VT_OK) fail_msg("%s: %s", vt_status_name(s), vt_last_error());
}

static cJSON *ckpt_meta(const char *path, vt_tensor_dict *d) {
    vt_status s = vt_ckpt_read(path, d);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    cJSON *m = cJSON_Parse(d->meta_json);
    assert_non_null(m);
    return m;
}

/* The checkpoint's predictions of the val split, computed by a graph of our own (input normalised on
 * the host as BATCH_PREP does), scored on the host against the masks as loaded. */
static double host_miou(vt_backend *be, const char *ckpt) {
    vt_tensor_dict d = {0};
    cJSON *meta = ckpt_meta(ckpt, &d);
    cJSON_Delete(meta);
    vt_segdata val;
    assert_int_equal(vt_segdata_load(seg_dir, "val", VT_SEG_AUTO, NULL, &val), VT_OK);
    vt_model_cfg mc;
    vt_model_cfg_default(vt_problem_find("fcn32s-scratch"), val.n_classes, 3, 64, 64, &mc);
    mc.width = 4;
    mc.fc_width = 16;
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 0);
    int64_t n = val.n;
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){n, 3, 64, 64});
    vt_tensor *logits = vt_model_build(g, &mc, x);
    vt_tensor *pred = vt_g_argmax(g, logits);
    assert_int_equal(vt_graph_status(g), VT_OK);
    assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    for (int i = 0; i < vt_params_n_params(m); i++) {
        vt_tensor *p = vt_params_param_at(m, i);
        const vt_host_tensor *h = vt_dict_find(&d, p->name);
        assert_non_null(h);
        assert_int_equal(vt_tensor_upload(p, h->data, h->nbytes), VT_OK);
    }
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    size_t px = 64 * 64, nel = (size_t)n * 3 * px;
    float *xin = malloc(nel * sizeof *xin);
    for (size_t i = 0; i < nel; i++) {
        int ch = (int)((i / px) % 3);
        xin[i] = ((float)val.images[i] / 255.0f - mean[ch]) / sd[ch];
    }
    assert_int_equal(vt_tensor_upload(x, xin, nel * sizeof *xin), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(g, -1, &ctx), VT_OK);
    int32_t *pi = malloc((size_t)n * px * sizeof *pi);
    uint8_t *pu = malloc((size_t)n * px);
    assert_int_equal(vt_tensor_download(pred, pi, (size_t)n * px * sizeof *pi), VT_OK);
    for (size_t i = 0; i < (size_t)n * px; i++) pu[i] = (uint8_t)(pi[i] >= 0 && pi[i] < 255 ? pi[i] : 254);
    vt_seg_confusion c;
    assert_int_equal(vt_seg_confusion_init(&c, val.n_classes), VT_OK);
    assert_int_equal(vt_seg_confusion_add(&c, pu, val.masks, n * (int64_t)px, VT_SEG_IGNORE), VT_OK);
    vt_seg_scores sc;
    vt_seg_scores_compute(&c, &sc);
    vt_seg_confusion_free(&c);
    free(xin);
    free(pi);
    free(pu);
    vt_graph_free(g);
    vt_params_free(m);
    vt_segdata_free(&val);
    vt_dict_free(&d);
    return sc.miou;
}

static int read_jsonl(const char *dir, double *loss, double *miou, int max) {
    char *p = fx_join(dir, "metrics.jsonl");
    FILE *f = fopen(p, "r");
    free(p);
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        loss[n] = cJSON_GetObjectItem(j, "train_loss")->valuedouble;
        const cJSON *mi = cJSON_GetObjectItem(j, "test_miou");
        assert_non_null(mi);
        miou[n] = cJSON_IsNumber(mi) ? mi->valuedouble : NAN;
        const cJSON *iou = cJSON_GetObjectItem(j, "test_iou");
        assert_true(cJSON_IsArray(iou));
        assert_int_equal(cJSON_GetArraySize(iou), 6);
        cJSON_Delete(j);
        n++;
    }
    fclose(f);
    return n;
}

/* Training lowers the loss; the mIoU recorded in last.vtc is that of its weights, three ways. */
static void test_train_and_score(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    base_cfg(&c, "run");
    vt_train_result r;
    run_ok(&c, be, &r);
    assert_int_equal(r.epochs_done, 3);
    assert_true(isfinite(r.final_test_miou) && r.final_test_miou >= 0 && r.final_test_miou <= 1);
    assert_true(isfinite(r.best_test_miou) && r.best_test_miou >= r.final_test_miou);
    double loss[8], miou[8];
    assert_int_equal(read_jsonl(c.out_dir, loss, miou, 8), 3);
    if (!(loss[2] < loss[0])) fail_msg("train loss did not go down: %g -> %g", loss[0], loss[2]);
    assert_true(fabs(miou[2] - r.final_test_miou) < 1e-6); /* printed with 6 decimals */
    /* metrics.csv has the segmentation columns */
    char *csv = fx_join(c.out_dir, "metrics.csv");
    FILE *f = fopen(csv, "r");
    free(csv);
    assert_non_null(f);
    char head[512];
    assert_non_null(fgets(head, sizeof head, f));
    fclose(f);
    assert_non_null(strstr(head, ",test_miou,test_miou_practice"));
    char *last = fx_join(c.out_dir, "last.vtc");
    vt_tensor_dict d = {0};
    cJSON *meta = ckpt_meta(last, &d);
    double rec = cJSON_GetObjectItem(meta, "test_miou")->valuedouble;
    const cJSON *cfg = cJSON_GetObjectItem(meta, "config");
    assert_int_equal(cJSON_GetObjectItem(cfg, "fc_width")->valueint, 16);
    cJSON_Delete(meta);
    vt_dict_free(&d);
    assert_true(rec == r.final_test_miou);
    double host = host_miou(be, last);
    if (fabs(host - rec) > 1e-12) fail_msg("host mIoU %.17g, recorded %.17g", host, rec);
    vt_seg_eval ev;
    vt_status s = vt_eval_checkpoint_seg(last, "", be, &ev);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    assert_true(ev.miou == rec);
    assert_true(ev.recorded_miou == rec);
    assert_int_equal(ev.n_classes, 6);
    assert_true(isfinite(ev.loss) && ev.pixel_acc >= 0 && ev.pixel_acc <= 1);
    free(last);
    /* best.vtc holds the best mIoU */
    char *best = fx_join(c.out_dir, "best.vtc");
    meta = ckpt_meta(best, &d);
    assert_true(cJSON_GetObjectItem(meta, "test_miou")->valuedouble == r.best_test_miou);
    cJSON_Delete(meta);
    vt_dict_free(&d);
    free(best);
    vt_backend_free(be);
}

static void expect_same_tensors(const char *pa, const char *pb) {
    vt_tensor_dict da = {0}, db = {0};
    cJSON_Delete(ckpt_meta(pa, &da));
    cJSON_Delete(ckpt_meta(pb, &db));
    assert_int_equal(da.n, db.n);
    for (size_t i = 0; i < da.n; i++) {
        const vt_host_tensor *tb = vt_dict_find(&db, da.items[i].name);
        assert_non_null(tb);
        assert_int_equal(tb->nbytes, da.items[i].nbytes);
        if (memcmp(tb->data, da.items[i].data, tb->nbytes) != 0) fail_msg("%s differs", da.items[i].name);
    }
    vt_dict_free(&da);
    vt_dict_free(&db);
}

/* 3 epochs straight == a run cut after 5 steps (mid-epoch) and resumed: the same bits and metrics;
 * the random training crop and flip included. */
static void test_resume_exact(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg a, b;
    base_cfg(&a, "straight");
    a.crop_h = a.crop_w = 32;
    vt_train_result r;
    run_ok(&a, be, &r);
    base_cfg(&b, "cut");
    b.crop_h = b.crop_w = 32;
    b.max_steps = 5;
    run_ok(&b, be, &r);
    assert_true(r.cut);
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    c.quiet = 1;
    c.log_every = 2;
    snprintf(c.problem, sizeof c.problem, "fcn32s-scratch");
    snprintf(c.out_dir, sizeof c.out_dir, "%s", b.out_dir);
    snprintf(c.resume, sizeof c.resume, "%s/last.vtc", b.out_dir);
    run_ok(&c, be, &r);
    assert_int_equal(r.epochs_done, 3);
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/last.vtc", a.out_dir);
    snprintf(pb, sizeof pb, "%s/last.vtc", b.out_dir);
    expect_same_tensors(pa, pb);
    double la[8], ma[8], lb[8], mb[8];
    assert_int_equal(read_jsonl(a.out_dir, la, ma, 8), 3);
    assert_int_equal(read_jsonl(b.out_dir, lb, mb, 8), 3);
    for (int e = 0; e < 3; e++) {
        assert_true(fabs(la[e] - lb[e]) < 1e-5);
        assert_true(ma[e] == mb[e] || (isnan(ma[e]) && isnan(mb[e])));
    }
    /* the resumed run kept the crop it was started with */
    vt_tensor_dict d = {0};
    cJSON *meta = ckpt_meta(pb, &d);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "config"), "crop_h")->valueint, 32);
    cJSON_Delete(meta);
    vt_dict_free(&d);
    vt_backend_free(be);
}

static void expect_refused(const vt_train_cfg *c, const char *needle1, const char *needle2) {
    vt_backend *be = cpu();
    vt_train_result r;
    vt_status s = vt_train_run(c, be, &r);
    if (s == VT_OK || !strstr(vt_last_error(), needle1) || (needle2 && !strstr(vt_last_error(), needle2)))
        fail_msg("status %s, message: %s", vt_status_name(s), vt_last_error());
    vt_backend_free(be);
}

static void test_refusals(void **state) {
    (void)state;
    vt_train_cfg c;
    base_cfg(&c, "bad1");
    c.crop_h = c.crop_w = 96; /* larger than the 64x64 images */
    expect_refused(&c, "--crop 96x96", "larger");
    base_cfg(&c, "bad2");
    c.seg_h = c.seg_w = 64;
    c.crop_h = 96;
    c.crop_w = 32;
    expect_refused(&c, "--crop 96x32", "--size 64x64");
    base_cfg(&c, "bad3");
    snprintf(c.data, sizeof c.data, "%s", cls_dir);
    expect_refused(&c, cls_dir, "fcn32s-scratch");
    base_cfg(&c, "bad4");
    snprintf(c.problem, sizeof c.problem, "cnn-pool");
    c.width = 64;
    c.fc_width = 0;
    expect_refused(&c, seg_dir, "cnn-pool");
}

/* Pretrained import: a torchvision-style VGG16 file (features.*, fc6/fc7 as the Linear layers
 * classifier.0/3, ImageNet's classifier.6) starts FCN-32s with those weights through the aliases; the
 * FCN's own layers start fresh and classifier.6 is ignored. */
static void test_pretrained_aliases(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    base_cfg(&c, "src");
    c.epochs = 1;
    vt_train_result r;
    run_ok(&c, be, &r);
    char src[700];
    snprintf(src, sizeof src, "%s/last.vtc", c.out_dir);
    vt_tensor_dict d = {0}, vgg = {0};
    cJSON_Delete(ckpt_meta(src, &d));
    for (size_t i = 0; i < d.n; i++) {
        const vt_host_tensor *h = &d.items[i];
        const char *nm = h->name;
        if (strncmp(nm, "features.", 9) == 0) {
            assert_int_equal(vt_dict_add(&vgg, nm, h->dtype, h->ndim, h->shape, h->data), VT_OK);
        } else if (strncmp(nm, "fc6.", 4) == 0 || strncmp(nm, "fc7.", 4) == 0) {
            char name[64];
            snprintf(name, sizeof name, "classifier.%c.%s", nm[2] == '6' ? '0' : '3', nm + 4);
            int64_t rows = h->shape[0], cols = 1;
            for (int k = 1; k < h->ndim; k++) cols *= h->shape[k];
            /* a Linear weight is [out, in]: the same elements as the convolution's [out, C, kh, kw] */
            int64_t shape[2] = {rows, cols};
            assert_int_equal(vt_dict_add(&vgg, name, h->dtype, h->ndim > 1 ? 2 : 1, shape, h->data), VT_OK);
        }
    }
    float head[16 * 10];
    for (int i = 0; i < 160; i++) head[i] = 0.01f * (float)i;
    assert_int_equal(vt_dict_add(&vgg, "classifier.6.weight", VT_F32, 2, (int64_t[]){10, 16}, head), VT_OK);
    char *file = fx_join(tmp, "vgg16.safetensors");
    assert_int_equal(vt_safetensors_write(file, &vgg), VT_OK);
    vt_train_cfg p;
    base_cfg(&p, "pre");
    snprintf(p.problem, sizeof p.problem, "fcn32s-pretrained");
    snprintf(p.pretrained, sizeof p.pretrained, "%s", file);
    p.epochs = 0;
    run_ok(&p, be, &r);
    char init[700];
    snprintf(init, sizeof init, "%s/init.vtc", p.out_dir);
    vt_tensor_dict got = {0};
    cJSON_Delete(ckpt_meta(init, &got));
    int same = 0;
    for (size_t i = 0; i < d.n; i++) {
        const char *nm = d.items[i].name;
        if (strncmp(nm, "optim.", 6) == 0) continue;
        const vt_host_tensor *g = vt_dict_find(&got, nm);
        assert_non_null(g);
        int backbone = strncmp(nm, "features.", 9) == 0 || strncmp(nm, "fc6.", 4) == 0 || strncmp(nm, "fc7.", 4) == 0;
        int eq = g->nbytes == d.items[i].nbytes && memcmp(g->data, d.items[i].data, g->nbytes) == 0;
        if (backbone && !eq) fail_msg("%s was not imported", nm);
        if (strncmp(nm, "score_fr.weight", 15) == 0 && eq) fail_msg("%s was imported", nm);
        same += eq;
    }
    assert_true(same >= 4);
    vt_dict_free(&got);
    vt_dict_free(&d);
    vt_dict_free(&vgg);
    free(file);
    vt_backend_free(be);
}

int main(void) {
    if (!vt_problem_find("fcn32s-scratch")) {
        fprintf(stderr, "no segmentation problem in this build\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_and_score),
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_pretrained_aliases),
    };
    return cmocka_run_group_tests(tests, setup, seg_fixture_teardown);
}
