/* Weights import/export tests on the fixtures from tools/make_fixtures.py: ResNet18 .pth and
 * .safetensors against the recorded names/shapes/checksums, strided views and dtypes, hostile files. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vt/weights.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX(name) VT_SOURCE_DIR "/tests/fixtures/" name

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* unlink first: truncating a file that has data makes ext4 flush it on close (slow) */
static void spit(const char *path, const unsigned char *b, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void load_ok(const char *path, vt_tensor_dict *d) {
    vt_status s = vt_weights_load(path, d);
    if (s != VT_OK) fail_msg("%s: %s", path, vt_last_error());
}

static void load_fails(const char *path, vt_status want, const char *needle) {
    vt_tensor_dict d;
    vt_status s = vt_weights_load(path, &d);
    if (s == VT_OK) fail_msg("%s loaded but must fail", path);
    assert_int_equal(d.n, 0);
    if (want != VT_OK && s != want)
        fail_msg("%s: status %s, want %s: %s", path, vt_status_name(s), vt_status_name(want), vt_last_error());
    if (needle && !strstr(vt_last_error(), needle))
        fail_msg("%s: message lacks '%s': %s", path, needle, vt_last_error());
}

/* Names, order, shapes, dtypes and checksums recorded by make_fixtures.py. */
static void check_against_expect(const vt_tensor_dict *d, bool same_order) {
    size_t n;
    unsigned char *text = slurp(FIX("resnet18_narrow_expect.json"), &n);
    assert_non_null(text);
    cJSON *root = cJSON_ParseWithLength((const char *)text, n);
    assert_non_null(root);
    const cJSON *list = cJSON_GetObjectItem(root, "tensors");
    assert_int_equal((size_t)cJSON_GetArraySize(list), d->n);
    size_t i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        const vt_host_tensor *t = same_order ? &d->items[i] : vt_dict_find(d, name);
        assert_non_null(t);
        assert_string_equal(t->name, name);
        const cJSON *shape = cJSON_GetObjectItem(e, "shape");
        assert_int_equal(t->ndim, cJSON_GetArraySize(shape));
        int k = 0;
        for (const cJSON *s = shape->child; s; s = s->next, k++) assert_int_equal(t->shape[k], (int64_t)s->valuedouble);
        const char *dtype = cJSON_GetObjectItem(e, "dtype")->valuestring;
        size_t numel = (size_t)cJSON_GetObjectItem(e, "numel")->valuedouble;
        double sum = 0, abs_sum = 0;
        if (strcmp(dtype, "float32") == 0) {
            assert_int_equal(t->dtype, VT_F32);
            assert_int_equal(t->nbytes, numel * 4);
            const float *v = t->data;
            for (size_t j = 0; j < numel; j++) {
                sum += v[j];
                abs_sum += fabs(v[j]);
            }
            int f = 0;
            for (const cJSON *x = cJSON_GetObjectItem(e, "first")->child; x; x = x->next, f++)
                assert_true(v[f] == (float)x->valuedouble);
        } else {
            assert_string_equal(dtype, "int64");
            assert_int_equal(t->dtype, VT_I32);
            const int32_t *v = t->data;
            for (size_t j = 0; j < numel; j++) {
                sum += v[j];
                abs_sum += fabs((double)v[j]);
            }
        }
        double want = cJSON_GetObjectItem(e, "sum")->valuedouble,
               want_abs = cJSON_GetObjectItem(e, "abs_sum")->valuedouble;
        assert_true(fabs(sum - want) <= 1e-9 * (1 + want_abs));
        assert_true(fabs(abs_sum - want_abs) <= 1e-9 * (1 + want_abs));
    }
    /* torchvision names: spot-check the ones a loader most often gets wrong */
    assert_non_null(vt_dict_find(d, "layer2.0.downsample.0.weight"));
    assert_non_null(vt_dict_find(d, "layer2.0.downsample.1.running_var"));
    assert_non_null(vt_dict_find(d, "layer4.1.bn2.num_batches_tracked"));
    assert_non_null(vt_dict_find(d, "fc.bias"));
    assert_null(vt_dict_find(d, "layer1.0.downsample.0.weight"));
    cJSON_Delete(root);
    free(text);
}

static void assert_dicts_equal(const vt_tensor_dict *a, const vt_tensor_dict *b) {
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const vt_host_tensor *x = &a->items[i], *y = vt_dict_find(b, x->name);
        assert_non_null(y);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->ndim, y->ndim);
        for (int k = 0; k < VT_MAX_DIMS; k++) assert_int_equal(x->shape[k], y->shape[k]);
        assert_int_equal(x->nbytes, y->nbytes);
        if (x->nbytes) assert_memory_equal(x->data, y->data, x->nbytes);
    }
}

static void test_resnet_pth(void **state) {
    (void)state;
    vt_tensor_dict d;
    load_ok(FIX("resnet18_narrow.pth"), &d);
    assert_int_equal(d.n, 122);
    check_against_expect(&d, true);
    const vt_host_tensor *t = vt_dict_find(&d, "bn1.num_batches_tracked");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(((int32_t *)t->data)[0], 3);
    vt_dict_free(&d);
}

static void test_resnet_safetensors(void **state) {
    (void)state;
    vt_tensor_dict d, p;
    load_ok(FIX("resnet18_narrow.safetensors"), &d);
    check_against_expect(&d, false);
    assert_non_null(d.meta_json);
    assert_non_null(strstr(d.meta_json, "\"widths\":\"4,8,16,32\""));
    load_ok(FIX("resnet18_narrow.pth"), &p);
    assert_dicts_equal(&p, &d);
    vt_dict_free(&d);
    vt_dict_free(&p);
}

static void test_io_fixture(void **state) {
    (void)state;
    vt_tensor_dict d;
    load_ok(FIX("resnet18_narrow_io.safetensors"), &d);
    const vt_host_tensor *x = vt_dict_find(&d, "input"), *le = vt_dict_find(&d, "logits_eval"),
                         *lt = vt_dict_find(&d, "logits_train");
    assert_non_null(x);
    assert_non_null(le);
    assert_non_null(lt);
    assert_int_equal(x->ndim, 4);
    assert_int_equal(x->shape[0], 2);
    assert_int_equal(x->shape[1], 3);
    assert_int_equal(x->shape[2], 32);
    assert_int_equal(x->shape[3], 32);
    assert_int_equal(le->shape[0], 2);
    assert_int_equal(le->shape[1], 10);
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        assert_true(isfinite(((float *)le->data)[i]) && isfinite(((float *)lt->data)[i]));
        differ += ((float *)le->data)[i] != ((float *)lt->data)[i];
    }
    assert_true(differ > 0); /* train-mode BN uses batch statistics */
    vt_dict_free(&d);
}

static void test_tiny_pth_views_and_dtypes(void **state) {
    (void)state;
    vt_tensor_dict d;
    load_ok(FIX("tiny.pth"), &d);
    assert_int_equal(d.n, 8);
    const vt_host_tensor *base = vt_dict_find(&d, "base"), *tr = vt_dict_find(&d, "transposed"),
                         *sl = vt_dict_find(&d, "slice");
    assert_int_equal(base->shape[0], 3);
    assert_int_equal(base->shape[1], 4);
    assert_int_equal(tr->shape[0], 4);
    assert_int_equal(tr->shape[1], 3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            assert_true(((float *)base->data)[i * 4 + j] == (float)(i * 4 + j));
            assert_true(((float *)tr->data)[j * 3 + i] == (float)(i * 4 + j));
        }
    const float want_slice[4] = {5, 6, 9, 10};
    assert_int_equal(sl->shape[0], 2);
    assert_int_equal(sl->shape[1], 2);
    assert_memory_equal(sl->data, want_slice, sizeof want_slice);
    const float *h = vt_dict_find(&d, "half")->data;
    assert_true(h[0] == 1.5f && h[1] == -2.25f && h[2] == 65504.0f);
    const float *b = vt_dict_find(&d, "bf16")->data;
    assert_true(b[0] == 1.5f && b[1] == -2.25f && fabsf(b[2] - 3.0e38f) < 0.01f * 3.0e38f);
    const vt_host_tensor *dbl = vt_dict_find(&d, "double");
    assert_int_equal(dbl->dtype, VT_F32);
    assert_true(((float *)dbl->data)[0] == 0.1f && ((float *)dbl->data)[1] == -0.2f);
    const float *par = vt_dict_find(&d, "param")->data;
    assert_true(par[0] == 0.5f && par[1] == 0.5f);
    const vt_host_tensor *nbt = vt_dict_find(&d, "bn.num_batches_tracked");
    assert_int_equal(nbt->dtype, VT_I32);
    assert_int_equal(nbt->ndim, 0);
    assert_int_equal(((int32_t *)nbt->data)[0], 7);
    vt_dict_free(&d);
}

static void test_hostile_pickles(void **state) {
    (void)state;
    load_fails(FIX("evil_os_system.pth"), VT_ERR_FORMAT, "os.system");
    assert_non_null(strstr(vt_last_error(), "refused"));
    assert_non_null(strstr(vt_last_error(), "evil_os_system.pth"));
    load_fails(FIX("evil_stack_global.pth"), VT_ERR_FORMAT, "builtins.eval");
}

static void test_damaged_files(void **state) {
    (void)state;
    load_fails(FIX("tiny_truncated.pth"), VT_ERR_FORMAT, "tiny_truncated.pth");
    load_fails(FIX("tiny_bad_crc.pth"), VT_ERR_CHECKSUM, "tiny/data/0");
    load_fails(FIX("st_huge_header.safetensors"), VT_OK, "st_huge_header.safetensors");
    load_fails(FIX("st_offset_past_end.safetensors"), VT_ERR_FORMAT, "data_offsets");
    load_fails(FIX("st_huge_shape.safetensors"), VT_ERR_FORMAT, "shape");
    load_fails(FIX("st_size_mismatch.safetensors"), VT_ERR_FORMAT, "bytes stored");
    load_fails(FIX("st_overlap.safetensors"), VT_ERR_FORMAT, "overlap");
    load_fails(FIX("st_bad_dtype.safetensors"), VT_ERR_DTYPE, "C64");
    load_fails(FIX("resnet18_narrow_expect.json"), VT_ERR_FORMAT, "not a weights file");
    load_fails(FIX("does_not_exist.pth"), VT_ERR_NOT_FOUND, "does_not_exist.pth");
    vt_tensor_dict d;
    load_ok(FIX("st_ok.safetensors"), &d);
    assert_int_equal(d.n, 1);
    assert_true(((float *)d.items[0].data)[0] == 1.0f && ((float *)d.items[0].data)[1] == 2.0f);
    vt_dict_free(&d);
}

/* Every prefix (sampled) of the real fixtures fails cleanly; single-byte damage never crashes. */
static void test_truncations_and_flips(void **state) {
    (void)state;
    char tmp[] = "/tmp/vt_test_weights_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    const char *files[] = {FIX("resnet18_narrow.pth"), FIX("resnet18_narrow.safetensors"), FIX("tiny.pth")};
    for (int f = 0; f < 3; f++) {
        size_t n;
        unsigned char *b = slurp(files[f], &n);
        assert_non_null(b);
        for (size_t len = 0; len < n; len += (len < 4096 || n - len < 4096) ? 1 + len % 13 : 1021) {
            spit(tmp, b, len);
            load_fails(tmp, VT_OK, NULL);
        }
        free(b);
    }
    size_t n;
    unsigned char *b = slurp(FIX("tiny.pth"), &n);
    int detected = 0;
    for (size_t i = 0; i < n; i++) {
        b[i] ^= (unsigned char)(1u << (i % 8));
        spit(tmp, b, n);
        vt_tensor_dict d;
        if (vt_weights_load(tmp, &d) == VT_OK) vt_dict_free(&d);
        else detected++;
        b[i] ^= (unsigned char)(1u << (i % 8));
    }
    /* zip fields the reader ignores (times, versions, padding) may change freely; data may not */
    assert_true(detected > (int)n / 4);
    free(b);
    unlink(tmp);
}

static void test_safetensors_write(void **state) {
    (void)state;
    char tmp[] = "/tmp/vt_test_weights_st_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    vt_tensor_dict d = {0}, r;
    float w[6] = {1, -2, 3.5f, 4, 5, 6};
    int64_t s23[2] = {2, 3};
    int32_t nbt = 123456, idx[6] = {-1, 0, 1, 2147483647, -2147483647 - 1, 9};
    assert_int_equal(vt_dict_add(&d, "z.weight", VT_F32, 2, s23, w), VT_OK);
    assert_int_equal(vt_dict_add(&d, "a.num_batches_tracked", VT_I32, 0, NULL, &nbt), VT_OK);
    assert_int_equal(vt_dict_add(&d, "m.idx", VT_I32, 2, s23, idx), VT_OK);
    assert_int_equal(vt_dict_set_meta(&d, "{\"epoch\":4}"), VT_OK);
    assert_int_equal(vt_safetensors_write(tmp, &d), VT_OK);
    size_t n;
    unsigned char *b = slurp(tmp, &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)b[i] << (8 * i);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + 24 + 8 + 24);
    char *hdr = calloc(1, hlen + 1);
    memcpy(hdr, b + 8, hlen);
    char *pa = strstr(hdr, "\"a.num_batches_tracked\""), *pm = strstr(hdr, "\"m.idx\""),
         *pz = strstr(hdr, "\"z.weight\"");
    assert_true(pa && pm && pz && pa < pm && pm < pz);
    assert_non_null(strstr(hdr, "\"dtype\":\"I64\""));
    assert_non_null(strstr(hdr, "\"vtrain_meta\":\"{\\\"epoch\\\":4}\""));
    free(hdr);
    free(b);
    load_ok(tmp, &r);
    assert_dicts_equal(&d, &r);
    vt_dict_free(&r);
    /* pth -> safetensors -> load gives the same tensors */
    vt_tensor_dict p;
    load_ok(FIX("resnet18_narrow.pth"), &p);
    assert_int_equal(vt_safetensors_write(tmp, &p), VT_OK);
    load_ok(tmp, &r);
    assert_dicts_equal(&p, &r);
    vt_dict_free(&r);
    /* a vtrain checkpoint loads through vt_weights_load too */
    assert_int_equal(vt_ckpt_write(tmp, &p), VT_OK);
    load_ok(tmp, &r);
    assert_dicts_equal(&p, &r);
    vt_dict_free(&r);
    vt_dict_free(&p);
    vt_dict_free(&d);
    unlink(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_pth),
        cmocka_unit_test(test_resnet_safetensors),
        cmocka_unit_test(test_io_fixture),
        cmocka_unit_test(test_tiny_pth_views_and_dtypes),
        cmocka_unit_test(test_hostile_pickles),
        cmocka_unit_test(test_damaged_files),
        cmocka_unit_test(test_truncations_and_flips),
        cmocka_unit_test(test_safetensors_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
