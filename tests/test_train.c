/* End-to-end trainer tests on synthetic data in the official CIFAR binary formats: every problem
 * trains and its loss falls, resume is exact, eval reproduces the recorded accuracy, bad input fails. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vt/checkpoint.h"
#include "vt/registry.h"
#include "vt/dataset.h"
#include "vt/rng.h"
#include "vt/train.h"
#include "vt/weights.h"

static char tmp_root[256];

/* Class k has a distinct colour and a bright square at a class-dependent place, plus noise:
 * learnable by every model in a couple of epochs. */
static void synth_record(uint8_t *px, int label, vt_rng *r) {
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int v = 40 + 18 * ((label * (c + 1)) % 10) + (int)vt_rng_below(r, 40);
                int qy = (label % 4) * 8, qx = (label / 4) * 8;
                if (y >= qy && y < qy + 8 && x >= qx && x < qx + 8) v = 240 - c * 20;
                px[c * 1024 + y * 32 + x] = (uint8_t)v;
            }
}

static void write_cifar10(const char *dir, int per_batch, int n_test) {
    char path[512];
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    vt_rng r;
    vt_rng_init(&r, 7, 1);
    uint8_t rec[3073];
    for (int b = 1; b <= 6; b++) {
        if (b <= 5) snprintf(path, sizeof path, "%s/cifar-10-batches-bin/data_batch_%d.bin", dir, b);
        else snprintf(path, sizeof path, "%s/cifar-10-batches-bin/test_batch.bin", dir);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        int n = b <= 5 ? per_batch : n_test;
        for (int i = 0; i < n; i++) {
            rec[0] = (uint8_t)vt_rng_below(&r, 10);
            synth_record(rec + 1, rec[0], &r);
            assert_int_equal(fwrite(rec, 1, sizeof rec, f), sizeof rec);
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin/batches.meta.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n", f);
    fclose(f);
}

static void write_cifar100(const char *dir, int n_train, int n_test) {
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/cifar-100-binary", dir);
    mkdir(path, 0755);
    vt_rng r;
    vt_rng_init(&r, 9, 1);
    uint8_t rec[3074];
    const char *names[2] = {"train.bin", "test.bin"};
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/cifar-100-binary/%s", dir, names[s]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        int n = s == 0 ? n_train : n_test;
        for (int i = 0; i < n; i++) {
            rec[1] = (uint8_t)vt_rng_below(&r, 100);
            rec[0] = (uint8_t)(rec[1] / 5);
            synth_record(rec + 2, rec[1] % 16, &r);
            assert_int_equal(fwrite(rec, 1, sizeof rec, f), sizeof rec);
        }
        fclose(f);
    }
}

static int setup(void **state) {
    (void)state;
    snprintf(tmp_root, sizeof tmp_root, "/tmp/vt_test_train_%d", (int)getpid());
    mkdir(tmp_root, 0755);
    char d[300];
    snprintf(d, sizeof d, "%s/c10", tmp_root);
    write_cifar10(d, 64, 100);
    snprintf(d, sizeof d, "%s/c100", tmp_root);
    write_cifar100(d, 256, 50);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : 0;
}

static vt_backend *cpu(void) {
    vt_backend *be = NULL;
    vt_backend_opts o = {0};
    assert_int_equal(vt_backend_init_by_name("cpu", 0, &o, &be), VT_OK);
    return be;
}

static void base_cfg(vt_train_cfg *c, const char *problem, const char *out) {
    vt_train_cfg_init(c);
    snprintf(c->problem, sizeof c->problem, "%s", problem);
    snprintf(c->data, sizeof c->data, "%s/c10", tmp_root);
    snprintf(c->out_dir, sizeof c->out_dir, "%s/%s", tmp_root, out);
    c->quiet = 1;
    c->batch_size = 32;
    c->epochs = 3;
    c->log_every = 3;
}

/* Reads metrics.jsonl of a run: train loss per epoch. */
static int read_losses(const char *dir, double *loss, double *acc, int max) {
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        loss[n] = cJSON_GetObjectItem(j, "train_loss")->valuedouble;
        acc[n] = cJSON_GetObjectItem(j, "test_acc")->valuedouble;
        n++;
        cJSON_Delete(j);
    }
    fclose(f);
    return n;
}

static void train_problem(const char *problem, float lr) {
    vt_backend *be = cpu();
    vt_train_cfg c;
    base_cfg(&c, problem, problem);
    if (lr > 0) c.lr = lr;
    if (!strcmp(problem, "resnet18-scratch")) {
        c.width = 8;
        c.stem_cifar = 1;
        c.lr = 0.05f;
        c.epochs = 2;
    }
    vt_train_result r;
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s: %s\n", problem, vt_last_error());
    assert_int_equal(s, VT_OK);
    double loss[8], acc[8];
    int n = read_losses(c.out_dir, loss, acc, 8);
    assert_int_equal(n, c.epochs);
    fprintf(stderr, "%-18s train loss %.3f -> %.3f, test acc %.1f%% -> %.1f%%\n", problem, loss[0], loss[n - 1], acc[0],
            acc[n - 1]);
    assert_true(isfinite(loss[n - 1]));
    assert_true(loss[n - 1] < loss[0]);
    assert_true(r.best_test_acc > 10.0 + 1.0); /* better than chance on 10 classes */
    vt_backend_free(be);
}

static void test_linear(void **s) {
    (void)s;
    train_problem("linear", 0);
}
static void test_mlp(void **s) {
    (void)s;
    train_problem("mlp", 0);
}
static void test_deep_mlp(void **s) {
    (void)s;
    train_problem("deep-mlp", 0);
}
static void test_cnn_stride(void **s) {
    (void)s;
    train_problem("cnn-stride", 0);
}
static void test_cnn_pool(void **s) {
    (void)s;
    train_problem("cnn-pool", 0);
}
static void test_cnn_dropout(void **s) {
    (void)s;
    train_problem("cnn-dropout", 0);
}
static void test_resnet18(void **s) {
    (void)s;
    train_problem("resnet18-scratch", 0);
}

static void test_options(void **state) {
    (void)state;
    /* batch norm, SELU/LeakyReLU, AdamW with warm-up, label smoothing, augmentation */
    const char *acts[2] = {"selu", "leaky"};
    for (int i = 0; i < 2; i++) {
        vt_backend *be = cpu();
        vt_train_cfg c;
        base_cfg(&c, "mlp", acts[i]);
        c.batchnorm = 1;
        c.act = i == 0 ? VT_ACT_SELU : VT_ACT_LEAKY_RELU;
        snprintf(c.optimizer, sizeof c.optimizer, "adamw");
        c.lr = 1e-3f;
        snprintf(c.schedule, sizeof c.schedule, "cosine:3,warmup:1");
        c.label_smoothing = 0.1f;
        c.augment = 1;
        c.dropout = 0.2f;
        vt_train_result r;
        vt_status s = vt_train_run(&c, be, &r);
        if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
        assert_int_equal(s, VT_OK);
        double loss[8], acc[8];
        int n = read_losses(c.out_dir, loss, acc, 8);
        assert_true(loss[n - 1] < loss[0]);
        vt_backend_free(be);
    }
}

static void load_params(const char *path, vt_tensor_dict *d) {
    vt_status s = vt_ckpt_read(path, d);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
}

/* N epochs straight == k epochs + resume to N: every tensor bit for bit, and the same metrics. */
static void test_resume_exact(void **state) {
    (void)state;
    const char *problems[2] = {"cnn-dropout", "mlp"};
    for (int pi = 0; pi < 2; pi++) {
        vt_backend *be = cpu();
        vt_train_cfg a, b;
        char oa[64], ob[64];
        snprintf(oa, sizeof oa, "straight-%d", pi);
        snprintf(ob, sizeof ob, "resumed-%d", pi);
        base_cfg(&a, problems[pi], oa);
        a.augment = 1;
        a.epochs = 3;
        vt_train_result r;
        assert_int_equal(vt_train_run(&a, be, &r), VT_OK);
        base_cfg(&b, problems[pi], ob);
        b.augment = 1;
        b.epochs = 1;
        assert_int_equal(vt_train_run(&b, be, &r), VT_OK);
        vt_train_cfg c;
        vt_train_cfg_init(&c);
        c.quiet = 1;
        c.log_every = 3;
        c.epochs = 3;
        snprintf(c.problem, sizeof c.problem, "%s", problems[pi]);
        snprintf(c.out_dir, sizeof c.out_dir, "%s", b.out_dir);
        snprintf(c.resume, sizeof c.resume, "%s/last.vtc", b.out_dir);
        vt_status s = vt_train_run(&c, be, &r);
        if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
        assert_int_equal(s, VT_OK);
        assert_int_equal(r.epochs_done, 3);
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/last.vtc", a.out_dir);
        snprintf(pb, sizeof pb, "%s/last.vtc", b.out_dir);
        vt_tensor_dict da = {0}, db = {0};
        load_params(pa, &da);
        load_params(pb, &db);
        assert_int_equal(da.n, db.n);
        for (size_t i = 0; i < da.n; i++) {
            const vt_host_tensor *tb = vt_dict_find(&db, da.items[i].name);
            assert_non_null(tb);
            assert_int_equal(tb->nbytes, da.items[i].nbytes);
            if (memcmp(tb->data, da.items[i].data, tb->nbytes) != 0)
                fail_msg("%s differs after resume", da.items[i].name);
        }
        vt_dict_free(&da);
        vt_dict_free(&db);
        double la[8], aa[8], lb[8], ab[8];
        assert_int_equal(read_losses(a.out_dir, la, aa, 8), 3);
        assert_int_equal(read_losses(b.out_dir, lb, ab, 8), 3);
        for (int e = 0; e < 3; e++) {
            assert_true(fabs(la[e] - lb[e]) < 1e-5);
            assert_true(aa[e] == ab[e]);
        }
        vt_backend_free(be);
    }
}

/* A mid-epoch stop (as Ctrl-C does) checkpoints, and resuming gives the same result as no stop. */
static void test_interrupt_resume(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg a;
    base_cfg(&a, "cnn-pool", "nostop");
    a.epochs = 2;
    vt_train_result r;
    assert_int_equal(vt_train_run(&a, be, &r), VT_OK);
    vt_train_cfg b;
    base_cfg(&b, "cnn-pool", "stopped");
    b.epochs = 2;
    vt_train_stop_requested = 1; /* stops after the first read-back (step 3 of epoch 1) */
    assert_int_equal(vt_train_run(&b, be, &r), VT_OK);
    vt_train_stop_requested = 0;
    assert_true(r.interrupted);
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    c.quiet = 1;
    c.log_every = 3;
    snprintf(c.problem, sizeof c.problem, "cnn-pool");
    snprintf(c.out_dir, sizeof c.out_dir, "%s", b.out_dir);
    snprintf(c.resume, sizeof c.resume, "%s/last.vtc", b.out_dir);
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    char pa[600], pb[600];
    snprintf(pa, sizeof pa, "%s/last.vtc", a.out_dir);
    snprintf(pb, sizeof pb, "%s/last.vtc", b.out_dir);
    vt_tensor_dict da = {0}, db = {0};
    load_params(pa, &da);
    load_params(pb, &db);
    for (size_t i = 0; i < da.n; i++) {
        const vt_host_tensor *tb = vt_dict_find(&db, da.items[i].name);
        assert_non_null(tb);
        if (memcmp(tb->data, da.items[i].data, tb->nbytes) != 0)
            fail_msg("%s differs after interrupted resume", da.items[i].name);
    }
    vt_dict_free(&da);
    vt_dict_free(&db);
    vt_backend_free(be);
}

static void test_eval_reproduces(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg a;
    base_cfg(&a, "cnn-stride", "evalrun");
    a.epochs = 2;
    a.batchnorm = 1;
    vt_train_result r;
    assert_int_equal(vt_train_run(&a, be, &r), VT_OK);
    char p[600];
    snprintf(p, sizeof p, "%s/best.vtc", a.out_dir);
    double loss, acc, rec;
    vt_status s = vt_eval_checkpoint(p, "", be, &loss, &acc, &rec);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_true(acc == rec);
    assert_true(acc == r.best_test_acc);
    /* export: a safetensors file with torchvision-style names */
    char out[620];
    snprintf(out, sizeof out, "%s/model.safetensors", a.out_dir);
    assert_int_equal(vt_export_checkpoint(p, out), VT_OK);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_true(st.st_size > 50000); /* ~18k parameters for 10 classes */
    vt_backend_free(be);
}

static void test_cifar100_coarse(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    base_cfg(&c, "linear", "c100");
    snprintf(c.data, sizeof c.data, "%s/c100", tmp_root);
    c.epochs = 1;
    c.labels_coarse = 1;
    vt_train_result r;
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    c.labels_coarse = 0;
    snprintf(c.out_dir, sizeof c.out_dir, "%s/c100fine", tmp_root);
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    vt_backend_free(be);
}

static void test_bad_input(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "nope", "bad1");
    assert_int_equal(vt_train_run(&c, be, &r), VT_ERR_INVALID_ARG);
    assert_non_null(strstr(vt_last_error(), "nope"));
    base_cfg(&c, "linear", "bad2");
    snprintf(c.data, sizeof c.data, "%s/does-not-exist", tmp_root);
    assert_int_not_equal(vt_train_run(&c, be, &r), VT_OK);
    assert_non_null(strstr(vt_last_error(), "does-not-exist"));
    base_cfg(&c, "linear", "bad3");
    c.batch_size = 100000;
    assert_int_equal(vt_train_run(&c, be, &r), VT_ERR_INVALID_ARG);
    base_cfg(&c, "linear", "bad4");
    snprintf(c.optimizer, sizeof c.optimizer, "rmsprop");
    assert_int_equal(vt_train_run(&c, be, &r), VT_ERR_INVALID_ARG);
    /* a learning rate that diverges: stopped with a message naming the steps, no checkpoint lost */
    base_cfg(&c, "mlp", "nan");
    c.lr = 1e12f;
    c.epochs = 2;
    vt_status s = vt_train_run(&c, be, &r);
    assert_int_equal(s, VT_ERR_NUMERIC);
    assert_non_null(strstr(vt_last_error(), "--lr"));
    /* resuming from a checkpoint that is not one */
    base_cfg(&c, "linear", "bad5");
    snprintf(c.resume, sizeof c.resume, "%s/c10/cifar-10-batches-bin/test_batch.bin", tmp_root);
    assert_int_not_equal(vt_train_run(&c, be, &r), VT_OK);
    vt_backend_free(be);
}

/* Every other backend present trains the same steps as the CPU and reaches the same losses. */
static void test_backends_match_cpu(void **state) {
    (void)state;
    const char *names[3] = {"opencl", "vulkan", "cuda"};
    int ran = 0;
    for (int bi = 0; bi < 3; bi++) {
        const vt_backend_reg *reg = vt_backend_reg_find(names[bi]);
        if (!reg || reg->device_count() <= 0) {
            fprintf(stderr, "SKIPPED: %s: no device\n", names[bi]);
            continue;
        }
        const char *problems[3] = {"mlp", "cnn-pool", "resnet18-scratch"};
        for (int pi = 0; pi < 3; pi++) {
            double loss[2][8], acc[2][8];
            for (int k = 0; k < 2; k++) {
                vt_backend *be = NULL;
                vt_backend_opts o = {0};
                assert_int_equal(vt_backend_init_by_name(k ? names[bi] : "cpu", k ? -1 : 0, &o, &be), VT_OK);
                vt_train_cfg c;
                char out[64];
                snprintf(out, sizeof out, "%s-%s-%d", names[bi], problems[pi], k);
                base_cfg(&c, problems[pi], out);
                c.epochs = 2;
                if (pi == 2) {
                    c.width = 8;
                    c.stem_cifar = 1;
                    c.lr = 0.05f;
                    c.epochs = 1;
                    c.limit_train = 128;
                }
                vt_train_result r;
                vt_status s = vt_train_run(&c, be, &r);
                if (s != VT_OK) fprintf(stderr, "%s %s: %s\n", names[bi], problems[pi], vt_last_error());
                assert_int_equal(s, VT_OK);
                read_losses(c.out_dir, loss[k], acc[k], 8);
                vt_backend_free(be);
            }
            if (pi == 1) {
                /* a checkpoint made on the CPU loads and evaluates on this backend */
                vt_backend *be = NULL;
                vt_backend_opts o = {0};
                assert_int_equal(vt_backend_init_by_name(names[bi], -1, &o, &be), VT_OK);
                char ck[600];
                snprintf(ck, sizeof ck, "%s/%s-%s-0/best.vtc", tmp_root, names[bi], problems[pi]);
                double l, a, rec;
                vt_status s = vt_eval_checkpoint(ck, "", be, &l, &a, &rec);
                if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
                assert_int_equal(s, VT_OK);
                fprintf(stderr, "%s: CPU checkpoint evaluates to %.2f%% (recorded on CPU %.2f%%)\n", names[bi], a, rec);
                assert_true(fabs(a - rec) <= 1.0);
                vt_backend_free(be);
            }
            int ne = pi == 2 ? 1 : 2;
            for (int e = 0; e < ne; e++) {
                fprintf(stderr, "%s %s epoch %d: loss cpu %.5f vs %.5f, acc %.2f vs %.2f\n", names[bi], problems[pi],
                        e + 1, loss[0][e], loss[1][e], acc[0][e], acc[1][e]);
                assert_true(fabs(loss[0][e] - loss[1][e]) <= 2e-3 * fabs(loss[0][e]) + 1e-3);
            }
            ran++;
        }
    }
    if (!ran) skip();
}

/* Problem 7: pretrained weights in, fresh head, backbone frozen for the first epoch, then trained. */
static void test_finetune_pretrained(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    base_cfg(&c, "resnet18-finetune", "finetune");
    snprintf(c.pretrained, sizeof c.pretrained, "%s/tests/fixtures/resnet18_narrow.safetensors", VT_SOURCE_DIR);
    c.width = 4;
    c.epochs = 2;
    c.limit_train = 64;
    c.augment = 0;
    vt_train_result r;
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    vt_tensor_dict src = {0}, e1 = {0}, e2 = {0};
    /* the fixture through the weights loader, the epoch-1 and epoch-2 checkpoints */
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/best.vtc", c.out_dir);
    snprintf(p2, sizeof p2, "%s/last.vtc", c.out_dir);
    (void)p1;
    load_params(p2, &e2);
    /* batch norm's count: the fixture's num_batches_tracked (3) plus the 4 training steps */
    cJSON *meta = cJSON_Parse(e2.meta_json);
    assert_non_null(meta);
    assert_int_equal(cJSON_GetObjectItem(meta, "bn_batches_tracked")->valueint, 3 + 4);
    cJSON_Delete(meta);
    vt_train_cfg c1 = c;
    c1.epochs = 1;
    snprintf(c1.out_dir, sizeof c1.out_dir, "%s/finetune1", tmp_root);
    assert_int_equal(vt_train_run(&c1, be, &r), VT_OK);
    snprintf(p1, sizeof p1, "%s/last.vtc", c1.out_dir);
    load_params(p1, &e1);
    assert_int_equal(vt_weights_load(VT_SOURCE_DIR "/tests/fixtures/resnet18_narrow.safetensors", &src), VT_OK);
    const vt_host_tensor *w0 = vt_dict_find(&src, "layer2.0.conv1.weight");
    const vt_host_tensor *w1 = vt_dict_find(&e1, "layer2.0.conv1.weight");
    const vt_host_tensor *w2 = vt_dict_find(&e2, "layer2.0.conv1.weight");
    assert_non_null(w0);
    assert_non_null(w1);
    assert_non_null(w2);
    assert_memory_equal(w0->data, w1->data, w0->nbytes);      /* frozen in epoch 1 */
    assert_true(memcmp(w1->data, w2->data, w1->nbytes) != 0); /* trained in epoch 2 */
    const vt_host_tensor *f0 = vt_dict_find(&src, "fc.weight"), *f1 = vt_dict_find(&e1, "fc.weight");
    assert_int_equal(f0->nbytes, f1->nbytes);                 /* 10 classes both */
    assert_true(memcmp(f0->data, f1->data, f0->nbytes) != 0); /* a fresh head */
    vt_dict_free(&src);
    vt_dict_free(&e1);
    vt_dict_free(&e2);
    /* weights that do not fit the model are refused by name */
    vt_train_cfg bad = c;
    bad.width = 8;
    snprintf(bad.out_dir, sizeof bad.out_dir, "%s/finetune-bad", tmp_root);
    assert_int_equal(vt_train_run(&bad, be, &r), VT_ERR_FORMAT);
    assert_non_null(strstr(vt_last_error(), "misshaped:conv1.weight"));
    vt_backend_free(be);
}

/* ---- run folder, cuts, --epochs 0 / --steps / --no-shuffle, checkpoint validation, outputs -------- */

static char *slurp_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    return b;
}

static cJSON *json_of(const char *dir, const char *name) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *t = slurp_text(p);
    if (!t) fail_msg("%s is missing", p);
    cJSON *j = cJSON_Parse(t);
    free(t);
    assert_non_null(j);
    return j;
}

static cJSON *ckpt_meta(const char *path) {
    vt_tensor_dict d = {0};
    load_params(path, &d);
    cJSON *m = cJSON_Parse(d.meta_json);
    vt_dict_free(&d);
    assert_non_null(m);
    return m;
}

static int file_there(const char *dir, const char *name) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void expect_same_tensors(const char *pa, const char *pb) {
    vt_tensor_dict da = {0}, db = {0};
    load_params(pa, &da);
    load_params(pb, &db);
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

/* A folder that holds a run is refused (its files untouched) unless --resume or --overwrite; the
 * overwrite removes the old run's files. */
static void test_rerun_policy(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "linear", "rerun");
    c.epochs = 0;
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    assert_true(file_there(c.out_dir, "init.vtc"));
    char init[700];
    snprintf(init, sizeof init, "%s/init.vtc", c.out_dir);
    char *before = slurp_text(init);
    c.epochs = 1;
    assert_int_equal(vt_train_run(&c, be, &r), VT_ERR_INVALID_ARG);
    char want[900];
    snprintf(want, sizeof want,
             "%s already holds a run; continue it with --resume %s/last.vtc, replace it with --overwrite, or choose "
             "another --out",
             c.out_dir, c.out_dir);
    if (!strstr(vt_last_error(), want)) fail_msg("unexpected message: %s", vt_last_error());
    assert_false(file_there(c.out_dir, "summary.json")); /* nothing was written */
    char *after = slurp_text(init);
    assert_string_equal(before, after);
    free(after);
    free(before);
    c.overwrite = 1;
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_false(file_there(c.out_dir, "init.vtc")); /* the old run's files are gone */
    assert_true(file_there(c.out_dir, "summary.json"));
    /* and a resume into it continues */
    vt_train_cfg d = c;
    d.overwrite = 0;
    d.epochs = 2;
    snprintf(d.resume, sizeof d.resume, "%s/last.vtc", c.out_dir);
    assert_int_equal(vt_train_run(&d, be, &r), VT_OK);
    assert_int_equal(r.epochs_done, 2);
    vt_backend_free(be);
}

/* --steps and --max-minutes cut a run like Ctrl-C: the cut epoch is not recorded, summary.json says
 * why, and resuming finishes the cut epoch exactly (bit-identical to a run that was never cut). */
static void test_cut_resume_exact(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg a, b;
    vt_train_result r;
    base_cfg(&a, "cnn-dropout", "uncut");
    a.epochs = 2;
    a.augment = 1;
    assert_int_equal(vt_train_run(&a, be, &r), VT_OK);
    assert_false(r.cut);
    cJSON *j = json_of(a.out_dir, "summary.json");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "cut")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "cut_reason")));
    cJSON_Delete(j);
    base_cfg(&b, "cnn-dropout", "cut");
    b.epochs = 2;
    b.augment = 1;
    b.max_steps = 13; /* 10 steps per epoch: 3 steps into epoch 2 */
    assert_int_equal(vt_train_run(&b, be, &r), VT_OK);
    assert_true(r.cut);
    assert_string_equal(r.cut_reason, "steps");
    assert_int_equal(r.epochs_done, 1);
    j = json_of(b.out_dir, "summary.json");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "cut")));
    assert_string_equal(cJSON_GetObjectItem(j, "cut_reason")->valuestring, "steps");
    assert_int_equal(cJSON_GetObjectItem(j, "epochs")->valueint, 1);
    cJSON_Delete(j);
    char last[700];
    snprintf(last, sizeof last, "%s/last.vtc", b.out_dir);
    cJSON *m = ckpt_meta(last);
    assert_int_equal(cJSON_GetObjectItem(m, "epoch")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(m, "step_in_epoch")->valueint, 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "history")), 1);
    cJSON_Delete(m);
    double lb[8], ab[8];
    assert_int_equal(read_losses(b.out_dir, lb, ab, 8), 1);
    vt_train_cfg c;
    vt_train_cfg_init(&c);
    c.quiet = 1;
    c.log_every = 3;
    snprintf(c.out_dir, sizeof c.out_dir, "%s", b.out_dir);
    snprintf(c.resume, sizeof c.resume, "%s", last);
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_false(r.cut);
    assert_int_equal(r.epochs_done, 2);
    assert_string_equal(r.problem, "cnn-dropout");
    char pa[700];
    snprintf(pa, sizeof pa, "%s/last.vtc", a.out_dir);
    expect_same_tensors(pa, last);
    double la[8], aa[8];
    assert_int_equal(read_losses(a.out_dir, la, aa, 8), 2);
    assert_int_equal(read_losses(b.out_dir, lb, ab, 8), 2);
    for (int e = 0; e < 2; e++) {
        if (la[e] != lb[e] || aa[e] != ab[e])
            fail_msg("epoch %d: loss %.9g vs %.9g, acc %g vs %g after cut + resume", e + 1, la[e], lb[e], aa[e], ab[e]);
    }
    /* a cut before any epoch finished still writes summary.json; --max-minutes is reported as such */
    base_cfg(&b, "linear", "cut-early");
    b.max_minutes = 1e-9;
    assert_int_equal(vt_train_run(&b, be, &r), VT_OK);
    assert_true(r.cut);
    assert_string_equal(r.cut_reason, "max-minutes");
    j = json_of(b.out_dir, "summary.json");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "cut")));
    assert_string_equal(cJSON_GetObjectItem(j, "cut_reason")->valuestring, "max-minutes");
    assert_int_equal(cJSON_GetObjectItem(j, "epochs")->valueint, 0);
    cJSON_Delete(j);
    vt_backend_free(be);
}

/* --epochs 0 writes the initial weights; --steps N --no-shuffle from them equals N SGD steps with
 * momentum computed here in double from the same data (problem 1: one linear layer). */
static void test_init_steps_host_sgd(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "linear", "init0");
    c.epochs = 0;
    c.augment = 0;
    c.no_shuffle = 1;
    snprintf(c.schedule, sizeof c.schedule, "constant");
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    assert_int_equal(r.epochs_done, 0);
    assert_true(file_there(c.out_dir, "init.vtc"));
    assert_true(file_there(c.out_dir, "last.vtc"));
    char init[700];
    snprintf(init, sizeof init, "%s/init.vtc", c.out_dir);
    enum { N = 5, B = 32, K = 10, D = 3072 };
    vt_train_cfg s5 = c;
    s5.epochs = 1;
    s5.max_steps = N;
    snprintf(s5.out_dir, sizeof s5.out_dir, "%s/steps5", tmp_root);
    assert_int_equal(vt_train_run(&s5, be, &r), VT_OK);
    assert_true(r.cut);
    assert_string_equal(r.cut_reason, "steps");
    assert_int_equal(r.global_step, N);
    char after[700];
    snprintf(after, sizeof after, "%s/last.vtc", s5.out_dir);
    vt_tensor_dict d0 = {0}, d1 = {0};
    load_params(init, &d0);
    load_params(after, &d1);
    const vt_host_tensor *w0 = vt_dict_find(&d0, "fc.weight"), *b0 = vt_dict_find(&d0, "fc.bias");
    const vt_host_tensor *w1 = vt_dict_find(&d1, "fc.weight"), *b1 = vt_dict_find(&d1, "fc.bias");
    assert_non_null(w0);
    assert_non_null(b0);
    assert_non_null(w1);
    assert_non_null(b1);
    assert_int_equal(w0->shape[0], K);
    assert_int_equal(w0->shape[1], D);
    vt_dataset ds;
    char data[600];
    snprintf(data, sizeof data, "%s/c10", tmp_root);
    assert_int_equal(vt_dataset_load(data, "train", NULL, &ds), VT_OK);
    double *w = malloc(sizeof(double) * K * D), *vw = calloc(K * D, sizeof(double)),
           *gw = malloc(sizeof(double) * K * D);
    double *x = malloc(sizeof(double) * B * D);
    double bias[K], vb[K] = {0}, gb[K];
    assert_non_null(w);
    assert_non_null(vw);
    assert_non_null(gw);
    assert_non_null(x);
    for (int i = 0; i < K * D; i++) w[i] = ((const float *)w0->data)[i];
    for (int k = 0; k < K; k++) bias[k] = ((const float *)b0->data)[k];
    const double mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    const double lr = 0.001f, mom = 0.9f;
    for (int step = 0; step < N; step++) {
        for (int b = 0; b < B; b++)
            for (int i = 0; i < D; i++) {
                int ch = i / 1024;
                x[b * D + i] = ((double)ds.images[(size_t)(step * B + b) * D + i] / 255.0 - mean[ch]) / sd[ch];
            }
        memset(gw, 0, sizeof(double) * K * D);
        memset(gb, 0, sizeof gb);
        for (int b = 0; b < B; b++) {
            double z[K], mx = -1e300, sum = 0;
            for (int k = 0; k < K; k++) {
                z[k] = bias[k];
                for (int i = 0; i < D; i++) z[k] += w[k * D + i] * x[b * D + i];
                if (z[k] > mx) mx = z[k];
            }
            for (int k = 0; k < K; k++) sum += exp(z[k] - mx);
            int y = ds.labels[step * B + b];
            for (int k = 0; k < K; k++) {
                double g = (exp(z[k] - mx) / sum - (k == y)) / B; /* d mean-CE / d logit */
                gb[k] += g;
                for (int i = 0; i < D; i++) gw[k * D + i] += g * x[b * D + i];
            }
        }
        for (int i = 0; i < K * D; i++) {
            vw[i] = mom * vw[i] + gw[i];
            w[i] -= lr * vw[i];
        }
        for (int k = 0; k < K; k++) {
            vb[k] = mom * vb[k] + gb[k];
            bias[k] -= lr * vb[k];
        }
    }
    double err = 0, scale = 0, moved = 0;
    for (int i = 0; i < K * D; i++) {
        double got = ((const float *)w1->data)[i];
        err = fmax(err, fabs(got - w[i]));
        scale = fmax(scale, fabs(w[i]));
        moved = fmax(moved, fabs(w[i] - ((const float *)w0->data)[i]));
    }
    for (int k = 0; k < K; k++) err = fmax(err, fabs(((const float *)b1->data)[k] - bias[k]));
    fprintf(stderr,
            "linear, %d SGD steps from init.vtc: max |vtrain - host double| = %.3g (weights up to %.3g, moved %.3g)\n",
            N, err, scale, moved);
    assert_true(moved > 1e-4);       /* the steps did something */
    assert_true(err < 2e-6 * scale); /* float32 against double */
    free(w);
    free(vw);
    free(gw);
    free(x);
    vt_dataset_free(&ds);
    vt_dict_free(&d0);
    vt_dict_free(&d1);
    vt_backend_free(be);
}

/* Writes `src` with one change to `dst`: metadata edited by `edit`, and/or fc.weight transposed. */
static void write_altered(const char *src, const char *dst, void (*edit)(cJSON *), int transpose) {
    vt_tensor_dict d = {0};
    load_params(src, &d);
    if (edit) {
        cJSON *m = cJSON_Parse(d.meta_json);
        edit(m);
        char *t = cJSON_PrintUnformatted(m);
        assert_int_equal(vt_dict_set_meta(&d, t), VT_OK);
        free(t);
        cJSON_Delete(m);
    }
    for (size_t i = 0; transpose && i < d.n; i++)
        if (!strcmp(d.items[i].name, "fc.weight")) {
            int64_t t = d.items[i].shape[0];
            d.items[i].shape[0] = d.items[i].shape[1];
            d.items[i].shape[1] = t;
        }
    assert_int_equal(vt_ckpt_write(dst, &d), VT_OK);
    vt_dict_free(&d);
}

static void edit_epochs(cJSON *m) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "config"), "epochs", cJSON_CreateNumber(-3));
}
static void edit_batch(cJSON *m) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "config"), "batch_size", cJSON_CreateNumber(1e10));
}
static void edit_lr(cJSON *m) {
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "config"), "lr", cJSON_CreateNumber(-1));
}
static void edit_neg_step(cJSON *m) { cJSON_ReplaceItemInObject(m, "global_step", cJSON_CreateNumber(-5)); }
static void edit_neg_epoch(cJSON *m) { cJSON_ReplaceItemInObject(m, "epoch", cJSON_CreateNumber(-1)); }
static void edit_long_hist(cJSON *m) {
    cJSON *h = cJSON_CreateArray();
    for (int i = 0; i < 100000; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "epoch", i + 1);
        cJSON_AddNumberToObject(e, "test_acc", 10);
        cJSON_AddItemToArray(h, e);
    }
    cJSON_ReplaceItemInObject(m, "history", h);
}
static void edit_long_hist_done(cJSON *m) {
    edit_long_hist(m);
    cJSON_ReplaceItemInObject(m, "epoch", cJSON_CreateNumber(100000));
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(m, "config"), "epochs", cJSON_CreateNumber(100000));
}

/* Checkpoint values that fail validation name the file and the field; shapes and dtypes are compared. */
static void test_checkpoint_validation(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "linear", "valid");
    c.epochs = 1;
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    char good[700], bad[700];
    snprintf(good, sizeof good, "%s/last.vtc", c.out_dir);
    snprintf(bad, sizeof bad, "%s/altered.vtc", tmp_root);
    struct {
        void (*edit)(cJSON *);
        int transpose;
        const char *want;
    } cases[] = {
        {edit_epochs, 0, "altered.vtc: config.epochs = -3: must be"},
        {edit_batch, 0, "altered.vtc: config.batch_size = 1e+10: must be"},
        {edit_lr, 0, "altered.vtc: config.lr = -1: must be"},
        {edit_neg_step, 0, "altered.vtc: global_step = -5: must be"},
        {edit_neg_epoch, 0, "altered.vtc: epoch = -1: must be"},
        {edit_long_hist, 0, "altered.vtc: history has 100000 entries, more than the 1 epochs done"},
        {NULL, 1, "altered.vtc: tensor fc.weight is f32 [3072,10], the model needs f32 [10,3072]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_altered(good, bad, cases[i].edit, cases[i].transpose);
        vt_train_cfg rc;
        vt_train_cfg_init(&rc);
        rc.quiet = 1;
        snprintf(rc.out_dir, sizeof rc.out_dir, "%s/valid-resume", tmp_root);
        snprintf(rc.resume, sizeof rc.resume, "%s", bad);
        assert_int_not_equal(vt_train_run(&rc, be, &r), VT_OK);
        if (!strstr(vt_last_error(), cases[i].want))
            fail_msg("resume: expected \"%s\", got: %s", cases[i].want, vt_last_error());
        assert_null(strstr(vt_last_error(), "--"));
        double l, a, rec;
        if (i < 3 || cases[i].transpose) {
            assert_int_not_equal(vt_eval_checkpoint(bad, "", be, &l, &a, &rec), VT_OK);
            if (!strstr(vt_last_error(), cases[i].want))
                fail_msg("eval: expected \"%s\", got: %s", cases[i].want, vt_last_error());
        }
    }
    /* 100k history entries for 100k epochs done: linear time, not quadratic */
    write_altered(good, bad, edit_long_hist_done, 0);
    vt_train_cfg rc;
    vt_train_cfg_init(&rc);
    rc.quiet = 1;
    snprintf(rc.out_dir, sizeof rc.out_dir, "%s/valid-long", tmp_root);
    snprintf(rc.resume, sizeof rc.resume, "%s", bad);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vt_status s = vt_train_run(&rc, be, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_int_equal(r.epochs_done, 100000);
    fprintf(stderr, "resume with 100000 history entries: %.2f s\n", secs);
    assert_true(secs < 10.0);
    vt_backend_free(be);
}

/* Problem 7 needs weights or an explicit --pretrained none. */
static void test_finetune_needs_weights(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "7", "p7");
    c.width = 4;
    c.epochs = 1;
    c.limit_train = 64;
    assert_int_equal(vt_train_run(&c, be, &r), VT_ERR_INVALID_ARG);
    assert_string_equal(vt_last_error(), "resnet18-finetune needs ImageNet weights: give --pretrained FILE (see "
                                         "docs/weights.md), or --pretrained none to train it from random weights");
    assert_false(file_there(c.out_dir, "config.json"));
    snprintf(c.pretrained, sizeof c.pretrained, "none");
    vt_status s = vt_train_run(&c, be, &r);
    if (s != VT_OK) fprintf(stderr, "%s\n", vt_last_error());
    assert_int_equal(s, VT_OK);
    assert_string_equal(r.problem, "resnet18-finetune");
    cJSON *j = json_of(c.out_dir, "config.json");
    assert_string_equal(cJSON_GetObjectItem(j, "pretrained")->valuestring, "none");
    assert_int_equal(cJSON_GetObjectItem(j, "freeze_backbone_epochs")->valueint, 0); /* nothing to freeze */
    cJSON_Delete(j);
    vt_backend_free(be);
}

/* config.json floats as written, checkpoint metadata for exporters, classes.txt, res->problem. */
static void test_outputs(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "3", "outputs"); /* deep-mlp by number */
    c.epochs = 1;
    c.batchnorm = 1;
    c.lr = 0.005f;
    c.dropout = 0.1f;
    assert_int_equal(vt_train_run(&c, be, &r), VT_OK);
    assert_string_equal(r.problem, "deep-mlp");
    char p[700];
    snprintf(p, sizeof p, "%s/config.json", c.out_dir);
    char *txt = slurp_text(p);
    assert_non_null(strstr(txt, "0.005"));
    assert_null(strstr(txt, "0.00499"));
    assert_null(strstr(txt, "0.100000001"));
    free(txt);
    snprintf(p, sizeof p, "%s/classes.txt", c.out_dir);
    txt = slurp_text(p);
    assert_string_equal(txt, "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n");
    free(txt);
    snprintf(p, sizeof p, "%s/last.vtc", c.out_dir);
    cJSON *m = ckpt_meta(p);
    const cJSON *cn = cJSON_GetObjectItem(m, "class_names");
    assert_int_equal(cJSON_GetArraySize(cn), 10);
    assert_string_equal(cJSON_GetArrayItem(cn, 9)->valuestring, "truck");
    const cJSON *nm = cJSON_GetObjectItem(m, "normalize");
    assert_true(fabs(cJSON_GetArrayItem(cJSON_GetObjectItem(nm, "mean"), 0)->valuedouble - 0.485) < 1e-7);
    assert_true(fabs(cJSON_GetArrayItem(cJSON_GetObjectItem(nm, "std"), 2)->valuedouble - 0.225) < 1e-7);
    const cJSON *in = cJSON_GetObjectItem(m, "input_size");
    assert_int_equal(cJSON_GetArraySize(in), 3);
    assert_int_equal(cJSON_GetArrayItem(in, 0)->valueint, 3);
    assert_int_equal(cJSON_GetArrayItem(in, 1)->valueint, 32);
    assert_int_equal(cJSON_GetObjectItem(m, "bn_batches_tracked")->valueint, 10); /* 10 steps with BN */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "config"), "problem")->valuestring, "deep-mlp");
    cJSON_Delete(m);
    /* resumed by another name: the result names the run's problem */
    vt_train_cfg rc;
    vt_train_cfg_init(&rc);
    rc.quiet = 1;
    rc.epochs = 2;
    snprintf(rc.problem, sizeof rc.problem, "1");
    snprintf(rc.resume, sizeof rc.resume, "%s", p);
    assert_int_equal(vt_train_run(&rc, be, &r), VT_OK);
    assert_string_equal(r.problem, "deep-mlp");
    m = ckpt_meta(p);
    assert_int_equal(cJSON_GetObjectItem(m, "bn_batches_tracked")->valueint, 20);
    cJSON_Delete(m);
    vt_backend_free(be);
}

/* What the log callback of test_library_silent received. */
typedef struct captured_log {
    int lines, below_warn, header, epoch_lines;
} captured_log;

static void capture_log(vt_log_level level, const char *text, void *user) {
    captured_log *c = user;
    c->lines++;
    c->below_warn += level < VT_LOG_WARN;
    c->header += strstr(text, "linear: linear,") != NULL;
    c->epoch_lines += strstr(text, "train loss") != NULL && level == VT_LOG_INFO;
}

static void count_progress(const vt_progress *p, void *user) {
    int *n = user;
    (*n)++;
    assert_string_equal(p->problem, "linear");
    assert_int_equal(p->steps, 10);
    assert_true(p->step >= 1 && p->step <= p->steps);
    assert_true(p->epoch >= 1 && p->epoch <= p->epochs);
}

/* The library prints nothing: header and epoch lines go to the log callback (info level), progress to
 * the progress callback; without callbacks, lines below warnings are dropped. Nothing reaches stdout. */
static void test_library_silent(void **state) {
    (void)state;
    vt_backend *be = cpu();
    vt_train_cfg c;
    vt_train_result r;
    base_cfg(&c, "linear", "silent");
    c.epochs = 2;
    c.quiet = 0;
    int n_progress = 0;
    c.progress = count_progress;
    c.progress_user = &n_progress;
    captured_log cap = {0};
    char p[700];
    snprintf(p, sizeof p, "%s/silent.out", tmp_root);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    dup2(fileno(f), 1);
    vt_log_set(capture_log, &cap);
    vt_status s = vt_train_run(&c, be, &r);
    /* no callbacks at all: still nothing on stdout */
    vt_log_set(NULL, NULL);
    vt_train_cfg c2 = c;
    c2.progress = NULL;
    snprintf(c2.out_dir, sizeof c2.out_dir, "%s/silent2", tmp_root);
    vt_status s2 = vt_train_run(&c2, be, &r);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    assert_int_equal(s, VT_OK);
    assert_int_equal(s2, VT_OK);
    char *txt = slurp_text(p);
    if (txt[0]) fail_msg("the library printed on stdout:\n%s", txt);
    free(txt);
    assert_int_equal(cap.header, 1);
    assert_int_equal(cap.epoch_lines, 2);
    assert_int_equal(cap.below_warn, cap.lines); /* a healthy run has nothing to warn about */
    /* a read-back at steps 3, 6, 9 and 10 of each epoch */
    assert_int_equal(n_progress, 2 * 4);
    vt_backend_free(be);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_deep_mlp),
        cmocka_unit_test(test_cnn_stride),
        cmocka_unit_test(test_cnn_pool),
        cmocka_unit_test(test_cnn_dropout),
        cmocka_unit_test(test_resnet18),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_interrupt_resume),
        cmocka_unit_test(test_eval_reproduces),
        cmocka_unit_test(test_cifar100_coarse),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_finetune_pretrained),
        cmocka_unit_test(test_backends_match_cpu),
        cmocka_unit_test(test_rerun_policy),
        cmocka_unit_test(test_cut_resume_exact),
        cmocka_unit_test(test_init_steps_host_sgd),
        cmocka_unit_test(test_checkpoint_validation),
        cmocka_unit_test(test_finetune_needs_weights),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_library_silent),
    };
    if (getenv("VT_TEST_FILTER")) cmocka_set_test_filter(getenv("VT_TEST_FILTER")); /* one test while debugging */
    return cmocka_run_group_tests(tests, setup, teardown);
}
