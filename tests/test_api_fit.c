/*
 * test_api_fit.c - bpl_net_fit: its progress events, stopping from the
 * callback, its arguments and divergence.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 64

struct fit_log {
    int n;
    int event[MAX_EVENTS];
    size_t epoch[MAX_EVENTS], step[MAX_EVENTS], steps[MAX_EVENTS];
    double loss[MAX_EVENTS];
    int stop_after;   /* return nonzero on this (1-based) event; 0: never */
    bpl_net *net;     /* if set, evaluate and predict from the callback */
    const bpl_dataset *ds;
    int nested_rc;
    int phase_seen;
};

static int log_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                        void *user_data)
{
    struct fit_log *log = user_data;
    if (log->n < MAX_EVENTS) {
        log->event[log->n] = event;
        log->epoch[log->n] = epoch;
        log->step[log->n] = step;
        log->steps[log->n] = steps;
        log->loss[log->n] = loss;
    }
    log->n++;
    if (log->net) {
        log->phase_seen = bpl_net_phase(log->net);
        double acc;
        float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, out[3];
        int rc = bpl_net_evaluate(log->net, log->ds, &acc, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_predict(log->net, x, 1, out, 3);
        if (rc != BPL_OK)
            log->nested_rc = rc;
    }
    return log->stop_after != 0 && log->n >= log->stop_after;
}

/* 10 examples of 4 features and 3 classes. */
static bpl_dataset *fit_dataset(void)
{
    float x[10 * 4], y[10 * 3];
    uint64_t s = 101;
    test_fill_uniform(x, 40, -1, 1, &s);
    test_fill_onehot(y, 10, 3, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 10, 4, 3));
    return ds;
}

START_TEST(test_fit_events)
{
    bpl_net *net = test_small_classifier(10);
    test_attach(net, "backprop");
    bpl_dataset *ds = fit_dataset();
    struct fit_log log = {0};
    log.net = net;
    log.ds = ds;
    /* 10 examples in batches of 4: steps of 4, 4 and 2 examples */
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 2, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 8);
    ck_assert_int_eq(log.nested_rc, BPL_OK);
    ck_assert_int_eq(log.phase_seen, BPL_PHASE_IDLE);
    for (int e = 0; e < 2; e++) {
        const int base = e * 4;
        for (int k = 0; k < 3; k++) {
            ck_assert_int_eq(log.event[base + k], BPL_EVENT_BATCH);
            ck_assert_uint_eq(log.epoch[base + k], (size_t)e + 1);
            ck_assert_uint_eq(log.step[base + k], (size_t)k + 1);
            ck_assert_uint_eq(log.steps[base + k], 3);
            ck_assert(isfinite(log.loss[base + k]) && log.loss[base + k] > 0);
        }
        ck_assert_int_eq(log.event[base + 3], BPL_EVENT_EPOCH);
        ck_assert_uint_eq(log.epoch[base + 3], (size_t)e + 1);
        ck_assert_uint_eq(log.step[base + 3], 3);
        ck_assert_uint_eq(log.steps[base + 3], 3);
        /* the epoch's mean training loss, weighted by batch size */
        double mean = (4 * log.loss[base] + 4 * log.loss[base + 1] + 2 * log.loss[base + 2]) /
                      10.0;
        ck_assert_double_lt(fabs(log.loss[base + 3] - mean), 1e-9 * mean);
    }
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);

    /* no callback is fine; the same seed and calls give the same net */
    bpl_net *a = test_small_classifier(10), *b = test_small_classifier(10);
    test_attach(a, "backprop");
    test_attach(b, "backprop");
    BPL_OK_OR_FAIL(bpl_net_fit(a, ds, 3, 3, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_net_fit(b, ds, 3, 3, NULL, NULL));
    size_t n;
    float *pa = test_snapshot(a, &n);
    ck_assert(test_same_params(b, pa, n));
    free(pa);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_fit_stop)
{
    bpl_dataset *ds = fit_dataset();
    /* stop on a batch event: no further callbacks, BPL_OK */
    bpl_net *net = test_small_classifier(10);
    test_attach(net, "backprop");
    struct fit_log log = {0};
    log.stop_after = 2;
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 5, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.event[1], BPL_EVENT_BATCH);
    ck_assert_uint_eq(log.step[1], 2);
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    /* exactly two steps were taken: a twin stopped after two steps of a
     * one-epoch fit (same shuffle) ends up identical */
    bpl_net *twin = test_small_classifier(10);
    test_attach(twin, "backprop");
    struct fit_log twin_log = {0};
    twin_log.stop_after = 2;
    BPL_OK_OR_FAIL(bpl_net_fit(twin, ds, 1, 4, log_progress, &twin_log));
    size_t n;
    float *p = test_snapshot(net, &n);
    ck_assert(test_same_params(twin, p, n));
    free(p);
    bpl_net_destroy(twin);
    bpl_net_destroy(net);

    /* stop at the end of the first epoch */
    net = test_small_classifier(10);
    test_attach(net, "backprop");
    memset(&log, 0, sizeof log);
    log.stop_after = 4;
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 3, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 4);
    ck_assert_int_eq(log.event[3], BPL_EVENT_EPOCH);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_fit_args)
{
    bpl_dataset *ds = fit_dataset();
    bpl_net *net = test_small_classifier(10);
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 1, 4, NULL, NULL), BPL_ERR_STATE, "bpl_net_fit");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_fit(NULL, ds, 1, 4, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");
    BPL_EXPECT_ERROR(bpl_net_fit(net, NULL, 1, 4, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 1, 0, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");

    /* dataset shape against the net: features, then targets */
    float x[6 * 5] = {0}, y[6 * 3] = {0}, y2[6 * 2] = {0};
    bpl_dataset *wrong;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y, 6, 5, 3));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y2, 6, 4, 2));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    uint8_t pixels[6 * 4] = {0}, labels[6] = {0, 1, 0, 1, 0, 1};
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, 6, 4, 2));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    /* a matching uint8 dataset trains */
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, 6, 4, 3));
    size_t n;
    float *before = test_snapshot(net, &n);
    BPL_OK_OR_FAIL(bpl_net_fit(net, wrong, 1, 2, NULL, NULL));
    ck_assert(!test_same_params(net, before, n));
    free(before);
    bpl_dataset_destroy(wrong);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_fit_divergence)
{
    bpl_net *net = test_diverging_regression();
    float x[8 * 4], y[8 * 3];
    uint64_t s = 23;
    test_fill_uniform(x, 32, -1, 1, &s);
    test_fill_uniform(y, 24, -1, 1, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 8, 4, 3));
    /* the message says where training broke down */
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 100, 4, NULL, NULL), BPL_ERR_NUMERIC, "epoch");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "step"));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

static Suite *fit_suite(void)
{
    Suite *s = suite_create("api_fit");
    TCase *tc = tcase_create("fit");
    tcase_add_test(tc, test_fit_events);
    tcase_add_test(tc, test_fit_stop);
    tcase_add_test(tc, test_fit_args);
    tcase_add_test(tc, test_fit_divergence);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(fit_suite());
}
