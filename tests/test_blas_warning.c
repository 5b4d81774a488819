/*
 * test_blas_warning.c - the warning about slow BLAS kernels.
 *
 * Debian's OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernels on CPUs
 * it does not recognise, and Debian's BLIS 0.9.0 to its portable "generic"
 * ones.  A net with a log callback must be told once, with
 * the fix, when its first training step runs on such kernels on a CPU that
 * could do better, and never otherwise.  The decision (bpl__blas_advice) is
 * a function of the backend, the kernel set and the CPU, checked here for
 * every case through that seam: the test never changes the environment the
 * BLAS runs in (OPENBLAS_CORETYPE and BLIS_ARCH_TYPE are the machine's own
 * business).  The
 * second test checks that a net logs exactly what the seam says about the
 * kernels this process really runs.
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
    if (level == BPL_LOG_WARNING && strstr(message, "kernels")) {
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
        ck_assert_msg(strstr(r.last, "-Dblas=") != NULL, "the fix is not named: %s", r.last);

    bpl_net_destroy(net);
}
END_TEST

START_TEST(advice_for_every_kernel_set_and_cpu)
{
    static const struct {
        const char *backend, *kernels;
        int cpu, warns;
    } cases[] = {
        /* the known 3x case: SSE kernels where AVX2 ones could run */
        {"openblas", "Prescott", BPL__ISA_AVX2, 1},
        {"openblas", "Prescott", BPL__ISA_AVX512, 1},
        {"openblas", "Core2", BPL__ISA_AVX512, 1},
        {"openblas", "Nehalem", BPL__ISA_AVX2, 1},
        {"openblas", "Katmai", BPL__ISA_AVX2, 1},
        /* SSE kernels are the best an older CPU can run */
        {"openblas", "Prescott", BPL__ISA_SSE, 0},
        {"openblas", "Prescott", BPL__ISA_AVX, 0},
        {"openblas", "Prescott", BPL__ISA_UNKNOWN, 0},
        /* AVX2 kernels on AVX-512: measured both slower and as fast; no warning */
        {"openblas", "Haswell", BPL__ISA_AVX512, 0},
        {"openblas", "Zen", BPL__ISA_AVX512, 0},
        {"openblas", "Haswell", BPL__ISA_AVX2, 0},
        {"openblas", "SkylakeX", BPL__ISA_AVX512, 0},
        {"openblas", "Cooperlake", BPL__ISA_AVX512, 0},
        {"openblas", "Sandybridge", BPL__ISA_AVX2, 0},
        /* unknown names and other back-ends never warn */
        {"openblas", "ARMV8", BPL__ISA_UNKNOWN, 0},
        {"openblas", "NoSuchCore", BPL__ISA_AVX512, 0},
        {"openblas", NULL, BPL__ISA_AVX512, 0},
        /* BLIS's portable kernels where AVX2 or AVX-512 ones could run (4x) */
        {"blis", "generic", BPL__ISA_AVX512, 1},
        {"blis", "generic", BPL__ISA_AVX2, 1},
        {"blis", "penryn", BPL__ISA_AVX512, 1},
        {"blis", "generic", BPL__ISA_AVX, 0},
        {"blis", "skx", BPL__ISA_AVX512, 0},
        {"blis", "zen3", BPL__ISA_AVX512, 0},
        {"blis", "haswell", BPL__ISA_AVX2, 0},
        {"builtin", NULL, BPL__ISA_AVX512, 0},
        {NULL, "Prescott", BPL__ISA_AVX512, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[320];
        const char *advice = bpl__blas_advice(cases[i].backend, cases[i].kernels,
                                              cases[i].cpu, buf, sizeof buf);
        ck_assert_msg((advice != NULL) == cases[i].warns,
                      "%s kernels '%s' on a %s CPU: %s", cases[i].backend, cases[i].kernels,
                      bpl__isa_name(cases[i].cpu), advice ? advice : "no warning");
        if (advice) {
            int openblas = strcmp(cases[i].backend, "openblas") == 0;
            ck_assert_msg(strstr(advice, cases[i].kernels) &&
                              strstr(advice, openblas ? "-Dblas=blis" : "-Dblas=openblas") &&
                              strstr(advice, openblas ? "OPENBLAS_CORETYPE" : "BLIS_ARCH_TYPE"),
                          "the warning names neither the kernels nor the fix: %s", advice);
            ck_assert_msg(strstr(advice, bpl__isa_name(cases[i].cpu)) != NULL,
                          "the warning does not name the CPU's extension: %s", advice);
        }
    }
}
END_TEST

START_TEST(kernel_sets_are_classified)
{
    ck_assert_int_eq(bpl__kernel_isa("Prescott"), BPL__ISA_SSE);
    ck_assert_int_eq(bpl__kernel_isa("Sandybridge"), BPL__ISA_AVX);
    ck_assert_int_eq(bpl__kernel_isa("Haswell"), BPL__ISA_AVX2);
    ck_assert_int_eq(bpl__kernel_isa("Zen"), BPL__ISA_AVX2);
    ck_assert_int_eq(bpl__kernel_isa("SkylakeX"), BPL__ISA_AVX512);
    ck_assert_int_eq(bpl__kernel_isa("skx"), BPL__ISA_AVX512);
    ck_assert_int_eq(bpl__kernel_isa("zen3"), BPL__ISA_AVX2);
    ck_assert_int_eq(bpl__kernel_isa("generic"), BPL__ISA_GENERIC);
    ck_assert_int_eq(bpl__kernel_isa("ARMV8"), BPL__ISA_UNKNOWN);
    ck_assert_int_eq(bpl__kernel_isa(NULL), BPL__ISA_UNKNOWN);
    ck_assert_str_eq(bpl__isa_name(BPL__ISA_AVX512), "AVX-512");
    ck_assert_str_eq(bpl__isa_name(99), "unknown");
}
END_TEST

START_TEST(info_names_kernels_and_cpu)
{
    /* bpl_blas_info shows what the CPU has beside what the kernels use */
    const char *info = bpl_blas_info();
    char cpu[64];
    snprintf(cpu, sizeof cpu, "cpu=%s", bpl__isa_name(bpl__cpu_isa()));
    ck_assert_msg(strstr(info, cpu) != NULL, "'%s' does not say '%s'", info, cpu);
    if (strcmp(bpl_blas_backend(), "openblas") == 0 ||
        strcmp(bpl_blas_backend(), "blis") == 0)
        ck_assert_msg(strstr(info, " kernels)") != NULL,
                      "'%s' does not name the kernels' extension", info);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("blas_warning");
    TCase *tc = tcase_create("warning");
    tcase_add_test(tc, warns_once_exactly_when_kernels_are_slow);
    tcase_add_test(tc, advice_for_every_kernel_set_and_cpu);
    tcase_add_test(tc, kernel_sets_are_classified);
    tcase_add_test(tc, info_names_kernels_and_cpu);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
