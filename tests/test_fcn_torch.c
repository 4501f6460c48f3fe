/* vtrain's FCN-32s and FCN-8s (VGG16 backbone) against PyTorch: parameter names and shapes equal to the
 * PyTorch modules' state_dict, torchvision's VGG16 weights imported through vt_model_import_alias
 * (classifier.0/3 -> fc6/fc7), and the eval-mode logits of two inputs (one not a multiple of 32) on
 * every backend with a device. Fixtures from tools/make_fixtures.py --fcn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vt/checkpoint.h"
#include "vt/registry.h"
#include "vt/models.h"
#include "vt/weights.h"

#define FIX      VT_SOURCE_DIR "/tests/fixtures/"
#define WIDTH    4
#define FC_WIDTH 16
#define CLASSES  6

static void fcn_cfg(vt_arch arch, int h, int w, vt_model_cfg *cfg) {
    const vt_problem *p = vt_problem_find(arch == VT_ARCH_FCN8S ? "fcn8s" : "fcn32s-scratch");
    assert_non_null(p);
    vt_model_cfg_default(p, CLASSES, 3, h, w, cfg);
    assert_int_equal(cfg->arch, arch);
    cfg->width = WIDTH;
    cfg->fc_width = FC_WIDTH;
}

/* ---- fcn_narrow_keys.json: {"fcn32s": [["name", [d0, d1, ...]], ...], "fcn8s": [...], "vgg16": [...]} */

typedef struct key_shape {
    char name[64];
    int ndim;
    int64_t shape[VT_MAX_DIMS];
} key_shape;

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static const char *skip_ws(const char *p) {
    while (isspace((unsigned char)*p)) p++;
    return p;
}

static const char *expect_char(const char *p, char c) {
    p = skip_ws(p);
    if (*p != c) fail_msg("keys json: expected '%c' at \"%.20s\"", c, p);
    return p + 1;
}

/* The list of one model in the json text; returns how many entries were read into out. */
static int read_keys(const char *json, const char *model, key_shape *out, int cap) {
    char tag[32];
    snprintf(tag, sizeof tag, "\"%s\"", model);
    const char *p = strstr(json, tag);
    if (!p) fail_msg("keys json has no %s", model);
    p = expect_char(p + strlen(tag), ':');
    p = expect_char(p, '[');
    int n = 0;
    for (;;) {
        p = skip_ws(p);
        if (*p == ']') break;
        if (n >= cap) fail_msg("keys json: more than %d entries for %s", cap, model);
        key_shape *k = &out[n++];
        memset(k, 0, sizeof *k);
        p = expect_char(p, '[');
        p = expect_char(p, '"');
        const char *e = strchr(p, '"');
        assert_non_null(e);
        assert_true(e - p < (long)sizeof k->name);
        memcpy(k->name, p, (size_t)(e - p));
        p = expect_char(e + 1, ',');
        p = expect_char(p, '[');
        for (;;) {
            p = skip_ws(p);
            if (*p == ']') break;
            char *end;
            assert_true(k->ndim < VT_MAX_DIMS);
            k->shape[k->ndim++] = strtoll(p, &end, 10);
            assert_true(end != p);
            p = skip_ws(end);
            if (*p == ',') p++;
        }
        p = expect_char(p, ']');
        p = expect_char(p, ']');
        p = skip_ws(p);
        if (*p == ',') p++;
    }
    return n;
}

static void test_fcn_param_names_and_shapes_match_pytorch(void **state) {
    (void)state;
    char *json = read_text(FIX "fcn_narrow_keys.json");
    static const vt_arch archs[2] = {VT_ARCH_FCN32S, VT_ARCH_FCN8S};
    static const char *models[2] = {"fcn32s", "fcn8s"};
    for (int a = 0; a < 2; a++) {
        key_shape want[64];
        int n_want = read_keys(json, models[a], want, 64);
        vt_params *m = vt_params_new();
        vt_graph *g = vt_graph_new(m, 1);
        vt_model_cfg cfg;
        fcn_cfg(archs[a], 64, 64, &cfg);
        vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){2, 3, 64, 64});
        vt_tensor *y = vt_model_build(g, &cfg, x);
        assert_int_equal(vt_graph_status(g), VT_OK);
        assert_non_null(y);
        /* per-pixel logits at the input's size */
        assert_int_equal(y->ndim, 4);
        assert_int_equal(y->shape[0], 2);
        assert_int_equal(y->shape[1], CLASSES);
        assert_int_equal(y->shape[2], 64);
        assert_int_equal(y->shape[3], 64);
        assert_int_equal(vt_params_n_params(m), n_want);
        assert_int_equal(vt_params_n_states(m), 0); /* no batch norm */
        int head = 0;
        for (int i = 0; i < n_want; i++) {
            const vt_tensor *t = vt_params_param_at(m, i);
            if (strcmp(t->name, want[i].name) != 0)
                fail_msg("%s parameter %d: vtrain %s, pytorch %s", models[a], i, t->name, want[i].name);
            assert_int_equal(t->ndim, want[i].ndim);
            for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], want[i].shape[d]);
            /* the backbone (VGG16 features, fc6, fc7) is group 0; everything from score_fr on is the head */
            if (strcmp(t->name, "score_fr.weight") == 0) head = 1;
            assert_int_equal(vt_params_param_group(m, i), head);
        }
        assert_true(head);
        vt_graph_free(g);
        vt_params_free(m);
    }
    free(json);
}

/* torchvision's VGG16 names: the features are FCN's own, fc6/fc7 come from classifier.0/3 with the same
 * element count, and nothing else is aliased (classifier.6, the ImageNet classifier, has no use). */
static void assert_alias(const vt_model_cfg *cfg, const char *name, const char *want) {
    const char *got = vt_model_import_alias(cfg, name);
    if (!got || strcmp(got, want) != 0) fail_msg("alias of %s: %s, want %s", name, got ? got : "none", want);
}

static void test_fcn_import_alias(void **state) {
    (void)state;
    vt_model_cfg cfg;
    fcn_cfg(VT_ARCH_FCN8S, 64, 64, &cfg);
    assert_alias(&cfg, "fc6.weight", "classifier.0.weight");
    assert_alias(&cfg, "fc6.bias", "classifier.0.bias");
    assert_alias(&cfg, "fc7.weight", "classifier.3.weight");
    assert_alias(&cfg, "fc7.bias", "classifier.3.bias");
    assert_null(vt_model_import_alias(&cfg, "features.0.weight"));
    assert_null(vt_model_import_alias(&cfg, "score_fr.weight"));
    assert_null(vt_model_import_alias(&cfg, "upscore8.weight"));
    assert_null(vt_model_import_alias(&cfg, NULL));
    fcn_cfg(VT_ARCH_FCN32S, 64, 64, &cfg);
    assert_alias(&cfg, "fc6.weight", "classifier.0.weight");
    vt_model_cfg_default(vt_problem_find("resnet18-finetune"), 10, 3, 32, 32, &cfg);
    assert_null(vt_model_import_alias(&cfg, "fc6.weight"));

    char *json = read_text(FIX "fcn_narrow_keys.json");
    key_shape vgg[64], fcn[64];
    int n_vgg = read_keys(json, "vgg16", vgg, 64), n_fcn = read_keys(json, "fcn32s", fcn, 64);
    free(json);
    vt_tensor_dict d = {0};
    if (vt_weights_load(FIX "vgg16_narrow.pth", &d) != VT_OK) fail_msg("%s", vt_last_error());
    assert_int_equal(d.n, n_vgg);
    fcn_cfg(VT_ARCH_FCN32S, 64, 64, &cfg);
    int aliased = 0;
    for (int i = 0; i < n_fcn; i++) {
        const char *alias = vt_model_import_alias(&cfg, fcn[i].name);
        const vt_host_tensor *h = vt_dict_find(&d, alias ? alias : fcn[i].name);
        if (strncmp(fcn[i].name, "features.", 9) == 0 || alias) {
            if (!h) fail_msg("vgg16_narrow.pth has no %s for %s", alias ? alias : fcn[i].name, fcn[i].name);
            int64_t n = 1;
            for (int k = 0; k < fcn[i].ndim; k++) n *= fcn[i].shape[k];
            assert_int_equal(h->nbytes, n * 4);
            aliased += alias != NULL;
        }
    }
    assert_int_equal(aliased, 4);
    vt_dict_free(&d);
}

/* Every parameter of the model from the fixtures: FCN's own names first (the heads file), then
 * torchvision's VGG16 file by name or import alias. FCN-32s's upscore is in neither: it must still hold
 * its bilinear initialisation, which PyTorch's reference used too. */
static void load_weights(vt_params *m, const vt_model_cfg *cfg, const vt_tensor_dict *vgg,
                         const vt_tensor_dict *heads) {
    for (int i = 0; i < vt_params_n_params(m); i++) {
        vt_tensor *t = vt_params_param_at(m, i);
        const vt_host_tensor *h = vt_dict_find(heads, t->name);
        if (!h) h = vt_dict_find(vgg, t->name);
        if (!h && vt_model_import_alias(cfg, t->name)) h = vt_dict_find(vgg, vt_model_import_alias(cfg, t->name));
        if (!h) {
            if (strcmp(t->name, "upscore.weight") == 0) continue;
            fail_msg("the fixtures have no %s", t->name);
        }
        assert_int_equal(h->nbytes, vt_tensor_nbytes(t));
        assert_int_equal(vt_tensor_upload(t, h->data, h->nbytes), VT_OK);
    }
}

static void input_f32(const vt_host_tensor *in, float *out, int64_t n) {
    assert_int_equal(in->nbytes, n * 4); /* stored as f16, read as f32 */
    memcpy(out, in->data, (size_t)n * 4);
}

/* One backend, one model, one input: checks the logits against PyTorch's (float64) reference. */
static void run_once(vt_backend *be, const char *be_name, vt_arch arch, const char *tag, const vt_tensor_dict *io,
                     const vt_tensor_dict *vgg, const vt_tensor_dict *heads) {
    char key[32];
    snprintf(key, sizeof key, "input_%s", tag);
    const vt_host_tensor *in = vt_dict_find(io, key);
    snprintf(key, sizeof key, "%s_%s", arch == VT_ARCH_FCN8S ? "fcn8s" : "fcn32s", tag);
    const vt_host_tensor *want = vt_dict_find(io, key);
    assert_non_null(in);
    assert_non_null(want);
    assert_int_equal(in->ndim, 4);
    int64_t n = in->shape[0], hh = in->shape[2], ww = in->shape[3];
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 0);
    vt_model_cfg cfg;
    fcn_cfg(arch, (int)hh, (int)ww, &cfg);
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, in->shape);
    vt_tensor *logits = vt_model_build(g, &cfg, x);
    assert_int_equal(vt_graph_status(g), VT_OK);
    assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    load_weights(m, &cfg, vgg, heads);
    int64_t n_in = n * 3 * hh * ww, n_out = n * CLASSES * hh * ww;
    assert_int_equal(want->nbytes, n_out * 4);
    float *xin = malloc((size_t)n_in * 4), *got = malloc((size_t)n_out * 4);
    assert_non_null(xin);
    assert_non_null(got);
    input_f32(in, xin, n_in);
    assert_int_equal(vt_tensor_upload(x, xin, (size_t)n_in * 4), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(g, -1, &ctx), VT_OK);
    assert_int_equal(vt_tensor_download(logits, got, (size_t)n_out * 4), VT_OK);
    const float *w = want->data;
    double max_ref = 0, worst = 0, err2 = 0, ref2 = 0;
    for (int64_t i = 0; i < n_out; i++) {
        double r = w[i], e = fabs((double)got[i] - r);
        if (fabs(r) > max_ref) max_ref = fabs(r);
        if (!(e <= worst)) worst = e; /* NaN propagates */
        err2 += e * e;
        ref2 += r * r;
    }
    double nerr = err2 / ref2;
    fprintf(stderr,
            "%s %s %s [%lld,%d,%lld,%lld]: max |vtrain - pytorch| = %.2e (max |logit| %.2f), "
            "normalised error %.2e\n",
            be_name, vt_arch_name(arch), tag, (long long)n, CLASSES, (long long)hh, (long long)ww, worst, max_ref,
            nerr);
    assert_true(max_ref > 0.1); /* a non-trivial reference */
    assert_true(worst <= 1e-4 * max_ref);
    assert_true(nerr <= 1e-9);
    free(xin);
    free(got);
    vt_graph_free(g);
    vt_params_free(m);
}

static void test_fcn_matches_pytorch(void **state) {
    (void)state;
    vt_tensor_dict io = {0}, vgg = {0}, heads = {0};
    if (vt_weights_load(FIX "fcn_narrow_io.safetensors", &io) != VT_OK) fail_msg("%s", vt_last_error());
    if (vt_weights_load(FIX "vgg16_narrow.pth", &vgg) != VT_OK) fail_msg("%s", vt_last_error());
    if (vt_weights_load(FIX "fcn_narrow_heads.safetensors", &heads) != VT_OK) fail_msg("%s", vt_last_error());
    int backends_run = 0;
    for (int r = 0; r < vt_backend_reg_count(); r++) {
        const vt_backend_reg *reg = vt_backend_reg_get(r);
        if (reg->device_count() <= 0) {
            fprintf(stderr, "SKIPPED: %s: no device\n", reg->name);
            continue;
        }
        vt_backend *be;
        vt_backend_opts o = {0};
        assert_int_equal(reg->init(0, &o, &be), VT_OK);
        for (int a = 0; a < 2; a++)
            for (int t = 0; t < 2; t++)
                run_once(be, reg->name, a ? VT_ARCH_FCN8S : VT_ARCH_FCN32S, t ? "b" : "a", &io, &vgg, &heads);
        vt_backend_free(be);
        backends_run++;
    }
    assert_true(backends_run >= 1);
    vt_dict_free(&io);
    vt_dict_free(&vgg);
    vt_dict_free(&heads);
}

/* torchvision's VGG init (zero conv biases) and the FCN paper's zero class scores; the upsampling
 * starts bilinear. And the training graph (dropout, per-pixel loss with ignored labels, backward) builds. */
static void test_fcn_init_and_training_graph(void **state) {
    (void)state;
    vt_backend *be;
    vt_backend_opts o = {0};
    assert_int_equal(vt_backend_reg_find("cpu")->init(0, &o, &be), VT_OK);
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, 1);
    vt_model_cfg cfg;
    fcn_cfg(VT_ARCH_FCN8S, 40, 48, &cfg);
    assert_true(cfg.dropout == 0.5f);
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){1, 3, 40, 48});
    vt_tensor *labels = vt_graph_tensor(g, "labels", VT_I32, 3, (int64_t[]){1, 40, 48});
    vt_tensor *logits = vt_model_build(g, &cfg, x);
    vt_tensor *loss = vt_g_softmax_ce_ignore(g, logits, labels, 0.0f, NULL);
    assert_non_null(loss);
    assert_int_equal(vt_graph_backward(g, loss, 0), VT_OK);
    assert_int_equal(vt_graph_status(g), VT_OK);
    assert_int_equal(vt_params_alloc(m, be, 7), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    int n_dropout = 0;
    for (int i = 0; i < vt_graph_n_nodes(g); i++) n_dropout += vt_graph_node(g, i)->op == VT_OP_DROPOUT;
    assert_int_equal(n_dropout, 2);
    for (int i = 0; i < vt_params_n_params(m); i++) {
        vt_tensor *t = vt_params_param_at(m, i);
        int64_t n = vt_tensor_nelem(t);
        float *v = malloc((size_t)n * 4);
        assert_non_null(v);
        assert_int_equal(vt_tensor_download(t, v, (size_t)n * 4), VT_OK);
        double sum_abs = 0;
        for (int64_t k = 0; k < n; k++) sum_abs += fabs(v[k]);
        int is_bias = strstr(t->name, ".bias") != NULL, is_score = strncmp(t->name, "score", 5) == 0;
        if (is_bias || is_score) {
            if (sum_abs != 0) fail_msg("%s is not zero-initialised", t->name);
        } else if (strncmp(t->name, "upscore", 7) == 0) {
            /* bilinear: channel c to c only; each 2-D kernel of a factor-s upsampling sums to s*s */
            int64_t kk = t->shape[2] * t->shape[3];
            double s = (double)(t->shape[2] / 2) * (double)(t->shape[2] / 2), diag = 0;
            for (int64_t c = 0; c < t->shape[0]; c++)
                for (int64_t k = 0; k < kk; k++) diag += v[(c * t->shape[1] + c) * kk + k];
            assert_true(fabs(diag - s * (double)t->shape[0]) < 1e-3 * diag);
            assert_true(fabs(diag - sum_abs) < 1e-6 * diag);
        } else if (sum_abs == 0) {
            fail_msg("%s is all zero", t->name);
        }
        free(v);
    }
    vt_graph_free(g);
    vt_params_free(m);
    vt_backend_free(be);
}

/* Below 32x32 pool5 would be empty: the build fails with an error, not a crash or a NULL with VT_OK. */
static void test_fcn_too_small_input_fails(void **state) {
    (void)state;
    for (int a = 0; a < 2; a++) {
        vt_params *m = vt_params_new();
        vt_graph *g = vt_graph_new(m, 0);
        vt_model_cfg cfg;
        fcn_cfg(a ? VT_ARCH_FCN8S : VT_ARCH_FCN32S, 16, 40, &cfg);
        vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){1, 3, 16, 40});
        assert_null(vt_model_build(g, &cfg, x));
        assert_int_not_equal(vt_graph_status(g), VT_OK);
        vt_graph_free(g);
        vt_params_free(m);
    }
}

/* Problems 9-11 after the eight classification problems, which keep their numbers. */
static void test_fcn_problems(void **state) {
    (void)state;
    assert_int_equal(vt_problem_count(), 11);
    for (int i = 0; i < 11; i++) {
        const vt_problem *p = vt_problem_get(i);
        assert_int_equal(p->id, i + 1);
        assert_int_equal(p->segmentation, i >= 8);
        assert_int_equal(vt_arch_is_segmentation(p->arch), i >= 8);
    }
    assert_string_equal(vt_problem_find("8")->name, "resnet18-scratch");
    const vt_problem *p9 = vt_problem_find("fcn32s-scratch"), *p10 = vt_problem_find("10");
    const vt_problem *p11 = vt_problem_find("fcn8s");
    assert_non_null(p9);
    assert_non_null(p10);
    assert_non_null(p11);
    assert_int_equal(p9->id, 9);
    assert_string_equal(p10->name, "fcn32s-pretrained");
    assert_int_equal(p11->id, 11);
    assert_int_equal(p9->arch, VT_ARCH_FCN32S);
    assert_int_equal(p10->arch, VT_ARCH_FCN32S);
    assert_int_equal(p11->arch, VT_ARCH_FCN8S);
    assert_int_equal(p9->pretrained, 0);
    assert_int_equal(p10->pretrained, 1);
    assert_int_equal(p11->pretrained, 0);
    vt_model_cfg cfg;
    vt_model_cfg_default(p11, 7, 3, 64, 64, &cfg);
    assert_int_equal(cfg.width, 64);
    assert_int_equal(cfg.fc_width, 0);
    assert_int_equal(cfg.batchnorm, 0);
    for (const vt_problem *p = p9; p; p = p == p9 ? p10 : p == p10 ? p11 : NULL) {
        assert_string_equal(p->optimizer, "adam");
        assert_true(p->lr == 1e-4f);
        assert_int_equal(p->batch_size, 8);
        assert_int_equal(p->epochs, 30);
        assert_int_equal(p->augment, 1);
        assert_true(p->dropout == 0.5f);
        assert_string_equal(p->schedule, "constant");
        assert_true(p->expected_img_per_s_cpu > 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fcn_problems),
        cmocka_unit_test(test_fcn_param_names_and_shapes_match_pytorch),
        cmocka_unit_test(test_fcn_import_alias),
        cmocka_unit_test(test_fcn_init_and_training_graph),
        cmocka_unit_test(test_fcn_too_small_input_fails),
        cmocka_unit_test(test_fcn_matches_pytorch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
