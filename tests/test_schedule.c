/* Learning-rate schedules against PyTorch's closed forms (StepLR, MultiStepLR, ExponentialLR,
 * CosineAnnealingLR, LinearLR warm-up via SequentialLR), and the spec parser's round trip and errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vt/schedule.h"

static vt_schedule parse(const char *spec, float base) {
    vt_schedule s;
    memset(&s, 0, sizeof s);
    s.base_lr = base;
    vt_status st = vt_schedule_parse(spec, &s);
    if (st != VT_OK) printf("%s\n", vt_last_error());
    assert_int_equal(st, VT_OK);
    assert_true(s.base_lr == base);
    return s;
}

static void near(const vt_schedule *s, double epoch, double want) {
    double got = vt_schedule_lr(s, epoch);
    if (fabs(got - want) > 1e-6 * fabs(want) + 1e-9) printf("epoch %g: got %.9g, want %.9g\n", epoch, got, want);
    assert_true(fabs(got - want) <= 1e-6 * fabs(want) + 1e-9);
}

static void test_constant(void **state) {
    (void)state;
    vt_schedule s = parse("constant", 0.1f);
    near(&s, 0, 0.1);
    near(&s, 123.5, 0.1);
}

static void test_step(void **state) {
    (void)state;
    vt_schedule s = parse("step:30:0.1", 0.1f);
    near(&s, 0, 0.1);
    near(&s, 29.99, 0.1);
    near(&s, 30, 0.01);
    near(&s, 59.5, 0.01);
    near(&s, 60, 0.001);
}

static void test_multistep(void **state) {
    (void)state;
    vt_schedule s = parse("multistep:30,60,80:0.2", 0.5f);
    near(&s, 29.9, 0.5);
    near(&s, 30, 0.1);
    near(&s, 60, 0.02);
    near(&s, 79.9, 0.02);
    near(&s, 80, 0.004);
    near(&s, 500, 0.004);
}

static void test_exponential(void **state) {
    (void)state;
    vt_schedule s = parse("exp:0.95", 0.1f);
    near(&s, 0, 0.1);
    near(&s, 0.7, 0.1); /* per whole epoch */
    near(&s, 1, 0.095);
    near(&s, 10.5, 0.1 * pow(0.95, 10));
}

static void test_cosine(void **state) {
    (void)state;
    vt_schedule s = parse("cosine:100", 0.1f);
    near(&s, 0, 0.1);
    near(&s, 25, 0.1 * (1 + cos(3.14159265358979323846 / 4)) / 2);
    near(&s, 50.9, 0.05);
    near(&s, 100, 0.0);
    vt_schedule m = parse("cosine:10:0.001", 0.1f);
    near(&m, 10, 0.001);
    near(&m, 5, 0.001 + (0.1 - 0.001) / 2);
}

static void test_warmup(void **state) {
    (void)state;
    /* LinearLR(start_factor=1/3, total_iters=2) then CosineAnnealingLR(T_max=10) restarted at 0 */
    vt_schedule s = parse("cosine:10,warmup:2", 1.0f);
    near(&s, 0, 1.0 / 3.0);
    near(&s, 0.5, 1.0 / 3.0 + (2.0 / 3.0) * 0.25);
    near(&s, 1, 2.0 / 3.0);
    near(&s, 2, 1.0);
    near(&s, 7, 0.5);
    near(&s, 12, 0.0);
    vt_schedule t = parse("step:3:0.5,warmup:2:0.1", 0.2f);
    near(&t, 0, 0.02);
    near(&t, 1, 0.2 * (0.1 + 0.9 * 0.5));
    near(&t, 4.9, 0.2);
    near(&t, 5, 0.1);
    vt_schedule m = parse("multistep:2,4:0.1,warmup:1", 1.0f);
    assert_int_equal(m.n_milestones, 2);
    near(&m, 2.5, 1.0);
    near(&m, 3, 0.1);
}

static void test_round_trip(void **state) {
    (void)state;
    static const char *specs[] = {
        "constant",
        "step:30:0.1",
        "multistep:30,60:0.1",
        "multistep:5:0.5",
        "exp:0.95",
        "cosine:200",
        "cosine:200:1e-05",
        "step:7:0.3,warmup:5",
        "cosine:50,warmup:3:0.01",
        "multistep:1,2,3,4,5,6,7,8:0.9,warmup:1",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        vt_schedule s = parse(specs[i], 0.1f);
        char buf[160];
        int n = vt_schedule_format(&s, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(specs[i]));
        assert_string_equal(buf, specs[i]);
        vt_schedule back = parse(buf, 0.1f);
        assert_memory_equal(&back, &s, sizeof s);
        char tiny[4];
        assert_int_equal(vt_schedule_format(&s, tiny, sizeof tiny), n); /* snprintf-like when cut */
        assert_int_equal(strlen(tiny), 3);
    }
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *spec, *needle;
    } bad[] = {
        {"", "unknown kind"},
        {"linear", "unknown kind"},
        {"constant:1", "constant takes no arguments"},
        {"step", "step needs STEP:GAMMA"},
        {"step:0:0.1", "step size"},
        {"step:30:-1", "gamma"},
        {"step:30:0.1:7", "step needs"},
        {"step:3x:0.1", "step size"},
        {"multistep:60,30:0.1", "strictly increasing"},
        {"multistep:1,2,3,4,5,6,7,8,9:0.1", "at most 8"},
        {"multistep:,:0.1", "milestones"},
        {"exp:abc", "gamma"},
        {"exp:nan", "gamma"},
        {"cosine:0", "T_MAX"},
        {"cosine:10:-1", "eta_min"},
        {"step:30:0.1,warmup:-1", "warmup epochs"},
        {"step:30:0.1,warmup:2:0", "start factor"},
        {"step:30:0.1,warmup:2:1.5", "start factor"},
        {"step:30:0.1,warmup:2:0.1:3", "warmup takes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vt_schedule s;
        memset(&s, 0, sizeof s);
        s.kind = VT_SCHED_COSINE;
        s.t_max = 77;
        vt_status st = vt_schedule_parse(bad[i].spec, &s);
        if (st != VT_ERR_INVALID_ARG || !strstr(vt_last_error(), bad[i].needle))
            printf("'%s': %s / %s\n", bad[i].spec, vt_status_name(st), vt_last_error());
        assert_int_equal(st, VT_ERR_INVALID_ARG);
        assert_non_null(strstr(vt_last_error(), bad[i].needle));
        assert_int_equal(s.t_max, 77); /* untouched on failure */
    }
    assert_int_equal(vt_schedule_parse(NULL, &(vt_schedule){0}), VT_ERR_INVALID_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant),    cmocka_unit_test(test_step),   cmocka_unit_test(test_multistep),
        cmocka_unit_test(test_exponential), cmocka_unit_test(test_cosine), cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
