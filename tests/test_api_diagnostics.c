/*
 * test_api_diagnostics.c - diagnostics: the alignment angles and step
 * profiling.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

START_TEST(test_alignment_args)
{
    float x[4 * 5], y[4 * 3];
    bpl_net *net = test_deep_net(1, x, y, 4);
    double angles[4];
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_STATE,
                     "bpl_net_alignment");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_alignment(NULL, x, y, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, NULL, y, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, NULL, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, NULL, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 0, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 2), BPL_ERR_SHAPE,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 0), BPL_ERR_SHAPE,
                     "bpl_net_alignment");
    x[2] = NAN;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_NUMERIC,
                     "bpl_net_alignment");
    x[2] = 0;
    y[1] = INFINITY;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_NUMERIC,
                     "bpl_net_alignment");
    y[1] = 0;
    /* room for more angles than layers is fine */
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 4));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_alignment_backprop)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = test_deep_net(2, x, y, 8);
    bpl_net *twin = test_deep_net(2, x, y, 8);
    test_attach(net, "backprop");
    test_attach(twin, "backprop");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 8, NULL));
    size_t n;
    float *before = test_snapshot(net, &n);
    double angles[3] = {-1, -1, -1};
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 8, angles, 3));
    for (int l = 0; l < 3; l++)
        ck_assert_msg(angles[l] >= 0 && angles[l] < 1e-2, "layer %d: %g degrees", l,
                      angles[l]);
    ck_assert(test_same_params(net, before, n));
    /* nor does it advance the optimiser: training continues as in the twin */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 8, NULL));
    free(before);
    before = test_snapshot(twin, &n);
    ck_assert(test_same_params(net, before, n));
    free(before);
    bpl_net_destroy(twin);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_alignment_fa)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = test_deep_net(3, x, y, 8);
    test_attach(net, "fa");
    size_t n;
    float *before = test_snapshot(net, &n);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 8, angles, 3));
    /* FA's output layer sees the true error; hidden layers do not */
    ck_assert_double_lt(angles[2], 1e-2);
    for (int l = 0; l < 2; l++)
        ck_assert_msg(isfinite(angles[l]) && angles[l] > 1e-2 && angles[l] < 180,
                      "layer %d: %g degrees", l, angles[l]);
    ck_assert(test_same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);

    /* zero weights give zero updates: NaN angles */
    bpl_net *zero;
    BPL_OK_OR_FAIL(bpl_net_create(&zero, 5, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(zero, 4, BPL_ACT_TANH, BPL_INIT_ZERO));
    BPL_OK_OR_FAIL(bpl_net_add_dense(zero, 3, BPL_ACT_SOFTMAX, BPL_INIT_ZERO));
    test_attach(zero, "backprop");
    BPL_OK_OR_FAIL(bpl_net_alignment(zero, x, y, 8, angles, 2));
    ck_assert(isnan(angles[0]));
    ck_assert(isnan(angles[1]));
    bpl_net_destroy(zero);
}
END_TEST

START_TEST(test_profiling)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = test_deep_net(4, x, y, 8);
    test_attach(net, "backprop");
    double step_s = -1, gemm_s = -1, flops = -1;
    uint64_t steps = 99;
    /* off by default: nothing recorded */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);
    ck_assert_double_eq(flops, 0);

    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
    for (int i = 0; i < 2; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 2);
    ck_assert_double_gt(flops, 0);
    ck_assert_double_ge(gemm_s, 0);
    ck_assert_double_gt(step_s, 0);
    ck_assert_double_le(gemm_s, step_s);
    double flops2 = flops;
    for (int i = 0; i < 2; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 4);
    /* the same batch shape costs the same operations every step */
    ck_assert_double_eq(flops, 2 * flops2);
    ck_assert_double_le(gemm_s, step_s);

    /* switching on again resets */
    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);
    ck_assert_double_eq(step_s, 0);
    ck_assert_double_eq(gemm_s, 0);
    ck_assert_double_eq(flops, 0);
    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 0));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);

    BPL_EXPECT_ERROR(bpl_net_set_profiling(NULL, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_profiling");
    BPL_EXPECT_ERROR(bpl_net_profile(NULL, &step_s, &gemm_s, &flops, &steps),
                     BPL_ERR_INVALID_ARG, "bpl_net_profile");
    bpl_net_destroy(net);
}
END_TEST

static Suite *diagnostics_suite(void)
{
    Suite *s = suite_create("api_diagnostics");
    TCase *tc = tcase_create("diagnostics");
    tcase_add_test(tc, test_alignment_args);
    tcase_add_test(tc, test_alignment_backprop);
    tcase_add_test(tc, test_alignment_fa);
    tcase_add_test(tc, test_profiling);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(diagnostics_suite());
}
