/* `vtrain predict`: the masks a segmentation checkpoint predicts for one split of a dataset, written in
 * the dataset's own format and names at each pair's stored size. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vt/segdata.h"
#include "train_internal.h"

/* Creates dir and its missing parents (mkdir -p); an existing folder is fine, a file in the way is not. */
static vt_status make_dirs(const char *dir) {
    char p[1024];
    if (strlen(dir) >= sizeof p) return vt_error(VT_ERR_INVALID_ARG, "%s: too long a folder name", dir);
    copy_str(p, sizeof p, dir);
    for (char *q = p + 1;; q++) {
        char c = *q;
        if (c != '/' && c != 0) continue;
        *q = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return vt_error(VT_ERR_IO, "%s: cannot create the folder: %s", p, strerror(errno));
        *q = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return vt_error(VT_ERR_IO, "%s: is not a folder", dir);
    return VT_OK;
}

/* The eval network on an uploaded input: x [B,C,H,W] f32 (external) -> logits -> argmax i32 [B,H,W]. */
static vt_status build_predict_graph(vt_trainer *t, vt_tensor *x, vt_graph **out, vt_tensor **pred) {
    vt_graph *g = *out = vt_graph_new(t->m, 0);
    if (!g) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_graph_external(g, x);
    vt_graph_set_phase(g, VT_PHASE_FORWARD);
    vt_tensor *logits = vt_model_build(g, &t->mcfg, x);
    *pred = logits ? vt_g_argmax(g, logits) : NULL;
    VT_TRY(vt_graph_status(g));
    if (!*pred) return vt_error(VT_ERR_INVALID_ARG, "the model gave no per-pixel logits");
    VT_TRY(vt_params_alloc(t->m, t->be, t->cfg.seed));
    return vt_graph_plan(g);
}

/* Images [lo, lo + n) of d normalised as BATCH_PREP does (same float expression), into x (B images;
 * the rest of a last partial batch is zero, its predictions unused). */
static void normalise_batch(const vt_segdata *d, int64_t lo, int64_t n, int B, float *x) {
    float mean[3], std[3];
    tr_norm_of(d->c, mean, std);
    size_t plane = (size_t)d->h * (size_t)d->w, img = (size_t)d->c * plane;
    memset(x, 0, (size_t)B * img * sizeof *x);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = d->images + (size_t)(lo + i) * img;
        float *dst = x + (size_t)i * img;
        for (int ch = 0; ch < d->c; ch++)
            for (size_t k = 0; k < plane; k++)
                dst[ch * plane + k] = ((float)src[ch * plane + k] / 255.0f - mean[ch]) / std[ch];
    }
}

/* pred (h x w class ids) brought to oh x ow by nearest neighbour (source index floor(i * n / m), as the
 * loader resizes masks), as bytes; a value that is no class becomes VT_SEG_IGNORE. */
static void mask_at(const int32_t *pred, int h, int w, int n_classes, int oh, int ow, uint8_t *out) {
    for (int y = 0; y < oh; y++) {
        int sy = (int)((int64_t)y * h / oh);
        for (int x = 0; x < ow; x++) {
            int sx = (int)((int64_t)x * w / ow);
            int32_t v = pred[(size_t)sy * (size_t)w + (size_t)sx];
            out[(size_t)y * (size_t)ow + (size_t)x] = (v >= 0 && v < n_classes) ? (uint8_t)v : VT_SEG_IGNORE;
        }
    }
}

/* Runs the network over d batch by batch (B images a batch, x its input) and writes every mask at
 * oh x ow into out_dir. */
static vt_status predict_all(vt_trainer *t, const vt_segdata *d, int B, vt_tensor *x, vt_graph *g, vt_tensor *pred,
                             int oh, int ow, const char *out_dir, int64_t *written) {
    vt_status s = VT_OK;
    size_t plane = (size_t)d->h * (size_t)d->w;
    float *hx = malloc((size_t)B * (size_t)d->c * plane * sizeof *hx);
    int32_t *hp = malloc((size_t)B * plane * sizeof *hp);
    uint8_t *mask = malloc((size_t)oh * (size_t)ow);
    if (!hx || !hp || !mask) s = vt_error(VT_ERR_OOM, "out of host memory");
    vt_step_ctx ctx = {.step = 0, .seed = t->cfg.seed, .lr = 0.0f, .batch_start = 0};
    for (int64_t lo = 0; lo < d->n && s == VT_OK; lo += B) {
        int64_t n = d->n - lo < B ? d->n - lo : B;
        normalise_batch(d, lo, n, B, hx);
        s = vt_tensor_upload(x, hx, (size_t)B * (size_t)d->c * plane * sizeof *hx);
        if (s == VT_OK) s = vt_graph_run(g, -1, &ctx);
        if (s == VT_OK) s = vt_tensor_download(pred, hp, (size_t)B * plane * sizeof *hp);
        for (int64_t i = 0; i < n && s == VT_OK; i++) {
            mask_at(hp + (size_t)i * plane, d->h, d->w, d->n_classes, oh, ow, mask);
            char path[1200];
            snprintf(path, sizeof path, "%s/%s%s", out_dir, d->names[lo + i],
                     d->layout == VT_SEG_DEEPGLOBE ? "_mask.png" : ".png");
            s = vt_seg_write_mask(path, d->layout, mask, oh, ow);
            if (s == VT_OK) (*written)++;
        }
    }
    free(hx);
    free(hp);
    free(mask);
    return s;
}

vt_status vt_predict_checkpoint(const char *ckpt, const char *data, const char *split, const char *out_dir,
                                vt_backend *be, int64_t *written) {
    *written = 0;
    if (!out_dir || !out_dir[0]) return vt_error(VT_ERR_INVALID_ARG, "no output folder given for the masks");
    if (!split || !split[0]) split = "val";
    VT_TRY(vt_check_regular_file(ckpt, "checkpoint"));
    vt_tensor_dict dict = {0};
    VT_TRY(vt_ckpt_read(ckpt, &dict));
    cJSON *meta = cJSON_Parse(dict.meta_json ? dict.meta_json : "");
    vt_train_cfg c;
    vt_status s = meta ? tr_cfg_from_json(cJSON_GetObjectItemCaseSensitive(meta, "config"), ckpt, &c)
                       : vt_error(VT_ERR_FORMAT, "%s: metadata is not valid JSON", ckpt);
    cJSON_Delete(meta);
    vt_trainer T;
    memset(&T, 0, sizeof T);
    if (s == VT_OK) {
        const vt_problem *p = vt_problem_find(c.problem);
        if (!p) s = vt_error(VT_ERR_FORMAT, "%s: unknown problem '%s' in its config", ckpt, c.problem);
        else if (!p->segmentation)
            s = vt_error(VT_ERR_INVALID_ARG,
                         "%s: a checkpoint of problem %d %s, which classifies images; predict needs a segmentation "
                         "checkpoint (problems of the \"segmentation\" group of vtrain list)",
                         ckpt, p->id, p->name);
    }
    if (s == VT_OK) {
        if (data && data[0]) copy_str(c.data, sizeof c.data, data);
        c.pretrained[0] = 0;
        c.quiet = 1;
        s = tr_resolve_cfg(&c, &T);
    }
    if (s == VT_OK && !T.cfg.data[0])
        s = vt_error(VT_ERR_INVALID_ARG, "%s: records no dataset folder; give the data folder", ckpt);
    /* the split at the run's size (what the network saw), and the stored size the masks are written at:
     * every pair of a split has the first pair's size, so loading one pair tells it */
    vt_segdata d = {0}, first = {0};
    vt_segdata_opts o = {.h = T.cfg.seg_h, .w = T.cfg.seg_w, .fit = VT_SEG_RESIZE};
    if (s == VT_OK) s = vt_segdata_load(T.cfg.data, split, VT_SEG_AUTO, &o, &d);
    int oh = d.h, ow = d.w;
    if (s == VT_OK && T.cfg.seg_h > 0) {
        vt_segdata_opts one = {.limit = 1};
        s = vt_segdata_load(T.cfg.data, split, d.layout, &one, &first);
        oh = first.h;
        ow = first.w;
        vt_segdata_free(&first);
    }
    if (s == VT_OK && d.n == 0) s = vt_error(VT_ERR_NOT_FOUND, "%s: the %s split holds no pairs", T.cfg.data, split);
    if (s == VT_OK) {
        T.be = be;
        T.n_classes = d.n_classes;
        tr_model_cfg(&T, d.n_classes, d.c, d.h, d.w, &T.mcfg);
        T.m = vt_params_new();
        if (!T.m) s = vt_error(VT_ERR_OOM, "out of host memory");
    }
    if (s == VT_OK) s = make_dirs(out_dir);
    /* one graph, its parameters allocated with it, then the checkpoint's weights over them */
    vt_tensor *x = NULL, *pred = NULL;
    vt_graph *g = NULL;
    int B = T.cfg.batch_size > 0 && T.cfg.batch_size < d.n ? T.cfg.batch_size : (int)d.n;
    if (s == VT_OK) s = vt_tensor_new(be, "predict.input", VT_F32, 4, (int64_t[]){B, d.c, d.h, d.w}, &x);
    if (s == VT_OK) s = build_predict_graph(&T, x, &g, &pred);
    if (s == VT_OK) s = tr_ckpt_load_tensors(&T, &dict, ckpt, 0);
    if (s == VT_OK) s = predict_all(&T, &d, B, x, g, pred, oh, ow, out_dir, written);
    vt_graph_free(g);
    vt_tensor_free(x);
    vt_segdata_free(&d);
    vt_dict_free(&dict);
    tr_free(&T);
    return s;
}
