/* vtrain's ResNet18 forward against PyTorch's own logits (train and eval mode) for a narrow
 * ResNet18 whose weights were written by torch.save and safetensors (tools/make_fixtures.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vt/checkpoint.h"
#include "vt/registry.h"
#include "vt/models.h"
#include "vt/weights.h"

#define FIX VT_SOURCE_DIR "/tests/fixtures/"

static void load_into(vt_params *m, const vt_tensor_dict *d) {
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? vt_params_n_states(m) : vt_params_n_params(m);
        for (int i = 0; i < n; i++) {
            vt_tensor *t = pass ? vt_params_state_at(m, i) : vt_params_param_at(m, i);
            const vt_host_tensor *h = vt_dict_find(d, t->name);
            if (!h) fail_msg("fixture has no %s", t->name);
            assert_int_equal(h->nbytes, vt_tensor_nbytes(t));
            assert_int_equal(vt_tensor_upload(t, h->data, h->nbytes), VT_OK);
        }
    }
}

/* Max |vtrain - torch| over the logits of one backend, one weights file, one mode. */
static double run_once(vt_backend *be, const char *weights, int training, const vt_tensor_dict *io) {
    vt_tensor_dict d = {0};
    vt_status s = vt_weights_load(weights, &d);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    vt_params *m = vt_params_new();
    vt_graph *g = vt_graph_new(m, training);
    vt_model_cfg cfg;
    vt_model_cfg_default(vt_problem_find("resnet18-scratch"), 10, 3, 32, 32, &cfg);
    cfg.width = 4;
    vt_tensor *x = vt_graph_tensor(g, "input", VT_F32, 4, (int64_t[]){2, 3, 32, 32});
    vt_tensor *logits = vt_model_build(g, &cfg, x);
    assert_int_equal(vt_graph_status(g), VT_OK);
    assert_int_equal(vt_params_alloc(m, be, 1), VT_OK);
    assert_int_equal(vt_graph_plan(g), VT_OK);
    load_into(m, &d);
    const vt_host_tensor *in = vt_dict_find(io, "input");
    const vt_host_tensor *want = vt_dict_find(io, training ? "logits_train" : "logits_eval");
    assert_non_null(in);
    assert_non_null(want);
    assert_int_equal(vt_tensor_upload(x, in->data, in->nbytes), VT_OK);
    vt_step_ctx ctx = {0};
    assert_int_equal(vt_graph_run(g, -1, &ctx), VT_OK);
    float got[20];
    assert_int_equal(vt_tensor_download(logits, got, sizeof got), VT_OK);
    const float *w = want->data;
    double worst = 0;
    for (int i = 0; i < 20; i++) {
        double e = fabs((double)got[i] - (double)w[i]);
        if (!(e <= worst)) worst = e; /* NaN propagates */
    }
    vt_graph_free(g);
    vt_params_free(m);
    vt_dict_free(&d);
    return worst;
}

static void test_resnet18_matches_pytorch(void **state) {
    (void)state;
    vt_tensor_dict io = {0};
    vt_status s = vt_weights_load(FIX "resnet18_narrow_io.safetensors", &io);
    if (s != VT_OK) fail_msg("%s", vt_last_error());
    const char *files[2] = {FIX "resnet18_narrow.pth", FIX "resnet18_narrow.safetensors"};
    int backends_run = 0;
    for (int r = 0; r < vt_backend_reg_count(); r++) {
        const vt_backend_reg *reg = vt_backend_reg_get(r);
        if (reg->device_count() <= 0) {
            fprintf(stderr, "SKIPPED: %s: no device\n", reg->name);
            continue;
        }
        for (int ref = 0; ref < (strcmp(reg->name, "cpu") ? 1 : 2); ref++) {
            vt_backend *be;
            vt_backend_opts o = {.reference = ref};
            assert_int_equal(reg->init(0, &o, &be), VT_OK);
            for (int f = 0; f < 2; f++)
                for (int training = 0; training < 2; training++) {
                    double e = run_once(be, files[f], training, &io);
                    fprintf(stderr, "%s%s %s %s: max |vtrain - pytorch| = %.2e\n", reg->name, ref ? "(reference)" : "",
                            strrchr(files[f], '/') + 1, training ? "train" : "eval", e);
                    assert_true(e <= 1e-4);
                }
            vt_backend_free(be);
            backends_run++;
        }
    }
    assert_true(backends_run >= 1);
    vt_dict_free(&io);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resnet18_matches_pytorch)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
