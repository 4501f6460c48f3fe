/* Evaluation: loss and accuracy over the whole test set, and `vtrain eval` of a checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"

static vt_status zero_metrics(vt_tensor *m) {
    float z[3] = {0, 0, 0};
    return vt_tensor_upload(m, z, sizeof z);
}

/* Loss and accuracy over the whole test set, last partial batch included; one read-back. Each rank
 * evaluates its share and the sums are added up. */
vt_status tr_evaluate(vt_trainer *t, double *loss, double *acc) {
    VT_TRY(tr_dp_bn_states(t));
    VT_TRY(zero_metrics(t->te_metrics));
    vt_step_ctx ctx = {.step = 0, .seed = t->cfg.seed, .lr = 0.0f, .batch_start = 0};
    int64_t full = t->eval_batch > 0 ? (t->te_hi - t->te_lo) / t->eval_batch : 0;
    for (int64_t i = 0; i < full; i++) {
        ctx.batch_start = t->te_lo + i * t->eval_batch;
        VT_TRY(vt_graph_run(t->eval_g, -1, &ctx));
    }
    if (t->eval_rem_g) {
        ctx.batch_start = t->te_lo + full * t->eval_batch;
        VT_TRY(vt_graph_run(t->eval_rem_g, -1, &ctx));
    }
    double m[3];
    VT_TRY(tr_read_metrics(t->te_metrics, m));
    VT_TRY(tr_dp_sum(t, m, 3));
    *loss = m[2] > 0 ? m[0] / m[2] : 0;
    *acc = m[2] > 0 ? 100.0 * m[1] / m[2] : 0;
    if (!isfinite(*loss)) return vt_error(VT_ERR_NUMERIC, "test loss is %g", *loss);
    return VT_OK;
}

vt_status vt_eval_checkpoint(const char *ckpt, const char *data, vt_backend *be, double *test_loss, double *test_acc,
                             double *recorded_acc) {
    vt_tensor_dict d = {0};
    VT_TRY(vt_check_regular_file(ckpt, "checkpoint"));
    VT_TRY(vt_ckpt_read(ckpt, &d));
    cJSON *meta = cJSON_Parse(d.meta_json ? d.meta_json : "");
    vt_train_cfg c;
    vt_status s = meta ? tr_cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), ckpt, &c)
                       : vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", ckpt);
    *recorded_acc = meta ? tr_jnum(meta, "test_acc", -1) : -1;
    cJSON_Delete(meta);
    vt_trainer T;
    memset(&T, 0, sizeof T);
    if (s == VT_OK) {
        if (data && data[0]) copy_str(c.data, sizeof c.data, data);
        c.pretrained[0] = 0;
        c.quiet = 1;
        s = tr_resolve_cfg(&c, &T);
    }
    vt_dataset train = {0}, test = {0};
    if (s == VT_OK) {
        /* Only the test split matters; a one-batch slice of train keeps the setup cheap. */
        T.cfg.limit_train = T.cfg.batch_size;
        s = tr_load_data(&T, &train, &test);
    }
    if (s == VT_OK) s = tr_setup(&T, be, &train, &test);
    vt_dataset_free(&train);
    vt_dataset_free(&test);
    if (s == VT_OK) s = tr_ckpt_load_tensors(&T, &d, ckpt, 0);
    if (s == VT_OK) s = tr_evaluate(&T, test_loss, test_acc);
    vt_dict_free(&d);
    tr_free(&T);
    return s;
}
