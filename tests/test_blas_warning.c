/*
 * test_blas_warning.c - the warning about slow BLAS kernels.
 *
 * Debian's OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs
 * it does not recognise.  A net with a log callback must be told once, with
 * the fix, when its first training step runs on such kernels on a CPU that
 * could do better (bpl__blas_warning), and never otherwise.  meson runs this
 * test twice: as the machine is, and with OPENBLAS_CORETYPE=Prescott forcing
 * the fallback; with OpenBLAS on an AVX2 CPU that run must see the warning,
 * which checks the detection itself.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"

typedef struct {
    int warnings;
    char last[512];
} log_record;

static void record(int level, const char *message, void *user_data)
{
    log_record *r = user_data;
    if (level == BPL_LOG_WARNING && strstr(message, "OPENBLAS_CORETYPE")) {
        r->warnings++;
        snprintf(r->last, sizeof r->last, "%s", message);
    }
}

START_TEST(warns_once_exactly_when_kernels_are_slow)
{
    static const size_t units[] = {5, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, acts, 2, 5);
    test_attach(net, "backprop");
    log_record r = {0};
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, record, &r));
    float x[8 * 4], y[8 * 3];
    uint64_t s = 9;
    test_fill_uniform(x, 32, -1, 1, &s);
    test_fill_onehot(y, 8, 3, &s);
    for (int i = 0; i < 3; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));

    int expected = bpl__blas_warning() != NULL;
    ck_assert_msg(r.warnings == expected, "%d warning(s), expected %d; BLAS: %s; last: %s",
                  r.warnings, expected, bpl_blas_info(), r.last);
    if (expected)
        ck_assert_msg(strstr(r.last, "-Dblas=blis") != NULL, "the fix is not named: %s",
                      r.last);

    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced && strcmp(forced, "Prescott") == 0 &&
        strcmp(bpl_blas_backend(), "openblas") == 0 && __builtin_cpu_supports("avx2"))
        ck_assert_msg(r.warnings == 1, "OPENBLAS_CORETYPE=Prescott, yet no warning; BLAS: %s",
                      bpl_blas_info());
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blas_warning");
    TCase *tc = tcase_create("warning");
    tcase_add_test(tc, warns_once_exactly_when_kernels_are_slow);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
