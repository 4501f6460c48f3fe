/* Loads the real CIFAR-10 JPEG image folder when it is present (../shared/data/cifar10-jpeg next
 * to the project, or $VTRAIN_CIFAR10_JPEG) and reports the load time; skipped elsewhere. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "vt/dataset.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_cifar10_jpeg(void **state) {
    (void)state;
    const char *env = getenv("VTRAIN_CIFAR10_JPEG");
    const char *path = env && *env ? env : VT_SOURCE_DIR "/../shared/data/cifar10-jpeg";
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("SKIPPED: no CIFAR-10 JPEG folder at %s\n", path);
        skip();
    }
    static const char *const classes[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                            "dog",      "frog",       "horse", "ship", "truck"};
    const char *splits[2] = {"train", "test"};
    const int64_t sizes[2] = {50000, 10000};
    for (int s = 0; s < 2; s++) {
        vt_dataset d;
        double t0 = now_s();
        vt_status rc = vt_dataset_load(path, splits[s], NULL, &d);
        double dt = now_s() - t0;
        if (rc != VT_OK) print_error("%s\n", vt_last_error());
        assert_int_equal(rc, VT_OK);
        printf("cifar10-jpeg %s: %lld images %dx%dx%d in %.2f s (%.0f images/s)\n", splits[s], (long long)d.n, d.c, d.h,
               d.w, dt, (double)d.n / dt);
        assert_int_equal(d.n, sizes[s]);
        assert_int_equal(d.c, 3);
        assert_int_equal(d.h, 32);
        assert_int_equal(d.w, 32);
        assert_int_equal(d.n_classes, 10);
        for (int k = 0; k < 10; k++) assert_string_equal(d.class_names[k], classes[k]);
        int64_t count[10] = {0};
        for (int64_t i = 0; i < d.n; i++) {
            assert_true(d.labels[i] >= 0 && d.labels[i] < 10);
            count[d.labels[i]]++;
        }
        for (int k = 0; k < 10; k++) assert_int_equal(count[k], sizes[s] / 10);
        /* Real photos: the mean pixel is mid-grey-ish and the planes differ. */
        double sum[3] = {0, 0, 0};
        for (int64_t i = 0; i < d.n; i++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p += 17) sum[c] += d.images[(size_t)i * 3072 + (size_t)c * 1024 + (size_t)p];
        for (int c = 0; c < 3; c++) {
            double mean = sum[c] / ((double)d.n * 61);
            printf("  mean of plane %d: %.1f\n", c, mean);
            assert_true(mean > 90 && mean < 150);
        }
        assert_true(sum[0] != sum[2]);
        vt_dataset_free(&d);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cifar10_jpeg)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
