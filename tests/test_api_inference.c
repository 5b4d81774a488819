/*
 * test_api_inference.c - inference: bpl_net_predict and bpl_net_evaluate.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

START_TEST(test_predict_args)
{
    bpl_net *net = test_small_classifier(2);
    float x[2 * 4] = {0}, out[2 * 3];
    BPL_EXPECT_ERROR(bpl_net_predict(NULL, x, 2, out, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, NULL, 2, out, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 0, out, 0), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 5), BPL_ERR_SHAPE, "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 7), BPL_ERR_SHAPE, "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 1, out, 6), BPL_ERR_SHAPE, "bpl_net_predict");
    x[3] = NAN;
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_NUMERIC, "bpl_net_predict");
    x[3] = -INFINITY;
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_NUMERIC, "bpl_net_predict");
    x[3] = 0;
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2, out, 6));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_predict_softmax)
{
    bpl_net *net = test_small_classifier(6);
    float x[5 * 4], plain[5 * 3], with_rule[5 * 3];
    uint64_t s = 3;
    test_fill_uniform(x, 20, -3, 3, &s);
    /* no rule: the dense forward pass */
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, plain, 15));
    for (size_t i = 0; i < 5; i++) {
        double sum = 0;
        for (size_t j = 0; j < 3; j++) {
            ck_assert_float_ge(plain[i * 3 + j], 0.0f);
            ck_assert_float_le(plain[i * 3 + j], 1.0f);
            sum += plain[i * 3 + j];
        }
        ck_assert_double_lt(fabs(sum - 1.0), 1e-5);
    }
    /* backprop's forward hook is the same dense pass */
    test_attach(net, "backprop");
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, with_rule, 15));
    for (size_t i = 0; i < 15; i++)
        ck_assert_float_eq_tol(with_rule[i], plain[i], 1e-6f);
    /* prediction changes nothing */
    size_t n;
    float *before = test_snapshot(net, &n);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, with_rule, 15));
    ck_assert(test_same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_predict_large_batch)
{
    enum { ROWS = 600 }; /* more than the default 256-row workspace */
    bpl_net *net = test_small_classifier(8);
    test_attach(net, "backprop");
    static float x[ROWS * 4], out[ROWS * 3];
    uint64_t s = 12;
    test_fill_uniform(x, ROWS * 4, -2, 2, &s);
    for (size_t i = 0; i < ROWS * 3; i++)
        out[i] = NAN;
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, ROWS, out, ROWS * 3));
    for (size_t i = 0; i < ROWS; i++) {
        float row[3];
        BPL_OK_OR_FAIL(bpl_net_predict(net, x + i * 4, 1, row, 3));
        for (size_t j = 0; j < 3; j++)
            ck_assert_msg(fabsf(out[i * 3 + j] - row[j]) <= 1e-6f, "row %zu col %zu: %g vs %g",
                          i, j, out[i * 3 + j], row[j]);
    }
    bpl_net_destroy(net);
}
END_TEST

/* Accuracy and mean cross-entropy computed from bpl_net_predict. */
static void reference_eval(bpl_net *net, const float *x, const float *y, size_t n,
                           size_t classes, double *acc, double *loss)
{
    float *p = malloc(n * classes * sizeof *p);
    ck_assert_ptr_nonnull(p);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, n, p, n * classes));
    size_t correct = 0;
    for (size_t i = 0; i < n; i++)
        correct += argmax(p + i * classes, classes) == argmax(y + i * classes, classes);
    *acc = (double)correct / (double)n;
    *loss = test_expected_loss(BPL_LOSS_CROSS_ENTROPY, BPL_ACT_SOFTMAX, p, y, n, classes);
    free(p);
}

START_TEST(test_evaluate)
{
    enum { N = 40 };
    bpl_net *net = test_small_classifier(4);
    float x[N * 4], y[N * 3];
    uint64_t s = 77;
    test_fill_uniform(x, N * 4, -1, 1, &s);
    test_fill_onehot(y, N, 3, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, 4, 3));

    /* without a rule (dense pass) and with one */
    for (int pass = 0; pass < 2; pass++) {
        double acc = -1, loss = -1, want_acc, want_loss;
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &acc, &loss));
        reference_eval(net, x, y, N, 3, &want_acc, &want_loss);
        ck_assert_double_eq(acc, want_acc);
        ck_assert_double_ge(acc, 0.0);
        ck_assert_double_le(acc, 1.0);
        ck_assert_double_lt(fabs(loss - want_loss), 1e-6 * want_loss);
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, NULL, NULL));
        if (pass == 0)
            test_attach(net, "backprop");
    }
    /* uint8 data: pixels scaled by 1/255, labels as one-hot targets */
    uint8_t pixels[N * 4], labels[N];
    float scaled[N * 4], onehot[N * 3] = {0};
    for (size_t i = 0; i < N * 4; i++) {
        pixels[i] = (uint8_t)((i * 37) % 256);
        scaled[i] = (float)pixels[i] * (1.0f / 255.0f);
    }
    for (size_t i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 3);
        onehot[i * 3 + labels[i]] = 1.0f;
    }
    bpl_dataset *u8;
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&u8, pixels, labels, N, 4, 3));
    double acc, loss, want_acc, want_loss;
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, u8, &acc, &loss));
    reference_eval(net, scaled, onehot, N, 3, &want_acc, &want_loss);
    ck_assert_double_eq(acc, want_acc);
    ck_assert_double_lt(fabs(loss - want_loss), 1e-5 * want_loss);

    BPL_EXPECT_ERROR(bpl_net_evaluate(NULL, ds, &acc, &loss), BPL_ERR_INVALID_ARG,
                     "bpl_net_evaluate");
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, NULL, &acc, &loss), BPL_ERR_INVALID_ARG,
                     "bpl_net_evaluate");
    bpl_dataset *wrong;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y, N / 2, 8, 3)); /* 8 features */
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, wrong, &acc, &loss), BPL_ERR_SHAPE,
                     "bpl_net_evaluate");
    bpl_dataset_destroy(wrong);
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, N, 4, 5)); /* 5 classes */
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, wrong, &acc, &loss), BPL_ERR_SHAPE,
                     "bpl_net_evaluate");
    bpl_dataset_destroy(wrong);
    bpl_dataset_destroy(u8);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

static Suite *inference_suite(void)
{
    Suite *s = suite_create("api_inference");
    TCase *tc = tcase_create("inference");
    tcase_add_test(tc, test_predict_args);
    tcase_add_test(tc, test_predict_softmax);
    tcase_add_test(tc, test_predict_large_batch);
    tcase_add_test(tc, test_evaluate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(inference_suite());
}
