/*
 * test_api_training.c - one training step (bpl_net_train_batch): its
 * arguments, invalid architectures, the loss it reports, and non-finite
 * values and divergence caught at the step that causes them, the parameters
 * unchanged.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_train_args)
{
    bpl_net *net = test_small_classifier(3);
    float x[2 * 4], y[2 * 3];
    uint64_t s = 9;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_train_batch(NULL, x, y, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, NULL, y, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, NULL, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 0, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    bpl_net_destroy(net);

    bpl_net *empty;
    BPL_OK_OR_FAIL(bpl_net_create(&empty, 4, 1));
    BPL_EXPECT_ERROR(bpl_net_train_batch(empty, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    float out[2 * 3];
    BPL_EXPECT_ERROR(bpl_net_predict(empty, x, 2, out, 6), BPL_ERR_STATE, "bpl_net_predict");
    bpl_net_destroy(empty);
}
END_TEST

/* Train and predict on a net whose architecture is invalid: STATE, both. */
static void expect_invalid_architecture(bpl_net *net)
{
    float x[2 * 4], y[2 * 3], out[2 * 3];
    uint64_t s = 4;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_STATE, "bpl_net_predict");
    double angles[2];
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 2, angles, 2), BPL_ERR_STATE,
                     "bpl_net_alignment");
}

START_TEST(test_invalid_architectures)
{
    /* softmax is for the output layer only */
    static const size_t units[] = {5, 3};
    static const int hidden_softmax[] = {BPL_ACT_SOFTMAX, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, hidden_softmax, 2, 1);
    test_attach(net, "backprop");
    expect_invalid_architecture(net);
    bpl_net_destroy(net);

    /* cross-entropy needs a softmax or sigmoid output */
    static const int outputs[] = {BPL_ACT_TANH, BPL_ACT_LINEAR, BPL_ACT_RELU};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
        const int acts[] = {BPL_ACT_TANH, outputs[i]};
        net = test_make_net(4, units, acts, 2, 1);
        test_attach(net, "backprop");
        expect_invalid_architecture(net);
        /* ... and is fine with MSE */
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
        float x[2 * 4] = {0}, y[2 * 3] = {0}, out[2 * 3];
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2, out, 6));
        bpl_net_destroy(net);
    }
    const int sigmoid_out[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID};
    net = test_make_net(4, units, sigmoid_out, 2, 1);
    test_attach(net, "backprop");
    float x[2 * 4] = {0}, y[2 * 3] = {0};
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_train_loss)
{
    const struct {
        int out_act, loss;
    } cases[] = {{BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY},
                 {BPL_ACT_SIGMOID, BPL_LOSS_CROSS_ENTROPY},
                 {BPL_ACT_LINEAR, BPL_LOSS_MSE},
                 {BPL_ACT_SOFTMAX, BPL_LOSS_MSE}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        static const size_t units[] = {5, 3};
        const int acts[] = {BPL_ACT_TANH, cases[c].out_act};
        bpl_net *net = test_make_net(4, units, acts, 2, 21);
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, cases[c].loss));
        test_attach(net, "backprop");
        BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.05));
        float x[6 * 4], y[6 * 3], h[6 * 3];
        uint64_t s = 31 + c;
        test_fill_uniform(x, 24, -1, 1, &s);
        test_fill_onehot(y, 6, 3, &s);
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 6, h, 18));
        double want = test_expected_loss(cases[c].loss, cases[c].out_act, h, y, 6, 3);
        /* loss_out is the loss before the update */
        double first = -1;
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, &first));
        ck_assert_msg(fabs(first - want) <= 1e-6 * fmax(1.0, fabs(want)),
                      "case %zu: loss %.9g, expected %.9g", c, first, want);
        double last = first;
        for (int step = 0; step < 40; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, &last));
        ck_assert_msg(last < first, "case %zu: loss %g did not fall from %g", c, last,
                      first);
        ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
        bpl_net_destroy(net);
    }
}
END_TEST

START_TEST(test_train_nonfinite)
{
    bpl_net *net = test_small_classifier(5);
    test_attach(net, "backprop");
    float x[3 * 4], y[3 * 3];
    uint64_t s = 8;
    test_fill_uniform(x, 12, -1, 1, &s);
    test_fill_onehot(y, 3, 3, &s);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL)); /* moments exist */
    size_t n;
    float *before = test_snapshot(net, &n);

    float bad_x[3 * 4], bad_y[3 * 3];
    const float poison[] = {NAN, INFINITY, -INFINITY};
    for (size_t p = 0; p < 3; p++) {
        memcpy(bad_x, x, sizeof x);
        bad_x[7] = poison[p];
        double loss = 123.0;
        BPL_EXPECT_ERROR(bpl_net_train_batch(net, bad_x, y, 3, &loss), BPL_ERR_NUMERIC,
                         "bpl_net_train_batch");
        ck_assert(test_same_params(net, before, n));
        memcpy(bad_y, y, sizeof y);
        bad_y[8] = poison[p];
        BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, bad_y, 3, &loss), BPL_ERR_NUMERIC,
                         "bpl_net_train_batch");
        ck_assert(test_same_params(net, before, n));
        ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    }
    /* the net trains on afterwards */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert(!test_same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_train_divergence)
{
    bpl_net *net = test_diverging_regression();
    float x[4 * 4], y[4 * 3];
    uint64_t s = 17;
    test_fill_uniform(x, 16, -1, 1, &s);
    test_fill_uniform(y, 12, -1, 1, &s);
    int failed_at = -1;
    for (int step = 0; step < 200 && failed_at < 0; step++) {
        size_t n;
        float *before = test_snapshot(net, &n);
        int rc = bpl_net_train_batch(net, x, y, 4, NULL);
        if (rc != BPL_OK) {
            failed_at = step;
            BPL_EXPECT_ERROR(rc, BPL_ERR_NUMERIC, "bpl_net_train_batch");
            ck_assert_msg(test_same_params(net, before, n),
                          "the failing step %d changed the parameters", step);
        } else {
            /* A step that succeeds never leaves a parameter at Inf or NaN. */
            size_t m;
            float *after = test_snapshot(net, &m);
            for (size_t i = 0; i < m; i++)
                ck_assert_msg(isfinite(after[i]), "step %d left parameter %zu = %g", step,
                              i, (double)after[i]);
            free(after);
        }
        free(before);
    }
    ck_assert_msg(failed_at > 0, "training did not diverge (failed at %d)", failed_at);
    /* The net is still usable: with a sane learning rate training goes on. */
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 1e-6));
    double loss = NAN;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, &loss));
    ck_assert(isfinite(loss));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

/* RMSprop and Adam check a step against a bound before they check it
 * exactly; weights near the float limit take the exact check.  A tanh unit
 * saturated by a bias of 2e37 gets a zero gradient: its step is zero and
 * must be accepted, by both optimisers, leaving every parameter finite. */
START_TEST(test_huge_weights_take_exact_check)
{
    static const char *const optimizers[] = {"adam", "rmsprop"};
    for (int o = 0; o < 2; o++) {
        static const size_t units[] = {3, 2};
        static const int acts[] = {BPL_ACT_TANH, BPL_ACT_LINEAR};
        bpl_net *net = test_make_net(4, units, acts, 2, 21);
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
        test_attach(net, "backprop");
        BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "optimizer", optimizers[o]));
        float bias[3];
        bpl_layer *hidden = bpl_net_layer(net, 0);
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(hidden, "bias", bias, 3));
        bias[1] = 2e37f;
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(hidden, "bias", bias, 3));
        float x[2 * 4], y[2 * 2];
        uint64_t s = 23;
        test_fill_uniform(x, 8, -1, 1, &s);
        test_fill_uniform(y, 4, -1, 1, &s);
        size_t n;
        float *before = test_snapshot(net, &n);
        for (int step = 0; step < 3; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
        float *after = test_snapshot(net, &n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(isfinite(after[i]), "%s: parameter %zu = %g", optimizers[o], i,
                          (double)after[i]);
        ck_assert(!test_same_params(net, before, n)); /* the other units did learn */
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(hidden, "bias", bias, 3));
        ck_assert_float_eq(bias[1], 2e37f);
        free(before);
        free(after);
        bpl_net_destroy(net);
    }
}
END_TEST

static Suite *training_suite(void)
{
    Suite *s = suite_create("api_training");
    TCase *tc = tcase_create("training");
    tcase_add_test(tc, test_train_args);
    tcase_add_test(tc, test_invalid_architectures);
    tcase_add_test(tc, test_train_loss);
    tcase_add_test(tc, test_train_nonfinite);
    tcase_add_test(tc, test_train_divergence);
    tcase_add_test(tc, test_huge_weights_take_exact_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(training_suite());
}
