/*
 * test_workspace.c - the hot path does not allocate.
 *
 * A net sizes its batch workspace once; after that, training steps, fit's
 * steps and predictions of the same size must not touch the heap.  The
 * internal build counts every allocation the library makes.
 */
#include "testutil.h"

#include <stdlib.h>

#include "bpl_internal.h"

enum { IN = 30, OUT = 4, B = 16, N = 200 };

static bpl_net *make(const char *rule)
{
    const size_t units[] = {24, 12, OUT};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_RELU, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(IN, units, acts, 3, 8);
    test_attach(net, rule);
    return net;
}

START_TEST(train_batch_does_not_allocate)
{
    for (size_t r = 0; r < bpl_rule_builtin_count(); r++) {
        bpl_net *net = make(bpl_rule_builtin_name(r));
        float x[B * IN], y[B * OUT];
        uint64_t seed = 3;
        test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
        test_fill_onehot(y, B, OUT, &seed);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL)); /* sizes the workspace */
        uint64_t before = bpl__alloc_count();
        for (int i = 0; i < 10; i++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
        /* smaller batches fit in the same workspace */
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B / 2, NULL));
        ck_assert_msg(bpl__alloc_count() == before, "rule %s: %llu allocations in 11 steps",
                      bpl_rule_builtin_name(r),
                      (unsigned long long)(bpl__alloc_count() - before));
        bpl_net_destroy(net);
    }
}
END_TEST

static uint64_t allocations_between_batches;
static uint64_t last_count;

static int count_allocations(int event, size_t epoch, size_t step, size_t steps, double loss,
                             void *user_data)
{
    (void)epoch, (void)steps, (void)loss, (void)user_data;
    uint64_t now = bpl__alloc_count();
    if (event == BPL_EVENT_BATCH && !(epoch == 1 && step == 1))
        allocations_between_batches += now - last_count;
    last_count = now;
    return 0;
}

START_TEST(fit_steps_do_not_allocate)
{
    bpl_net *net = make("backprop");
    float *x = malloc(N * IN * sizeof *x), *y = malloc(N * OUT * sizeof *y);
    uint64_t seed = 4;
    test_fill_uniform(x, N * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, N, OUT, &seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, IN, OUT));
    allocations_between_batches = 0;
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 3, B, count_allocations, NULL));
    ck_assert_uint_eq(allocations_between_batches, 0);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
    free(x);
    free(y);
}
END_TEST

START_TEST(workspace_grows_only_for_larger_batches)
{
    bpl_net *net = make("fa");
    float x[2 * B * IN], y[2 * B * OUT], out[2 * B * OUT];
    uint64_t seed = 6;
    test_fill_uniform(x, 2 * B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, 2 * B, OUT, &seed);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    uint64_t before = bpl__alloc_count();
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2 * B, NULL));
    ck_assert_uint_gt(bpl__alloc_count(), before);
    before = bpl__alloc_count();
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2 * B, NULL));
    ck_assert_uint_eq(bpl__alloc_count(), before);
    /* inference runs in chunks of BPL__INFERENCE_ROWS, whatever the batch:
     * the first prediction grows the workspace to that once */
    ck_assert_uint_lt(2 * B, BPL__INFERENCE_ROWS);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2 * B, out, 2 * B * OUT));
    before = bpl__alloc_count();
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2 * B, out, 2 * B * OUT));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2 * B, NULL));
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, out, B * OUT));
    ck_assert_uint_eq(bpl__alloc_count(), before);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("workspace");
    TCase *tc = tcase_create("no_allocation_in_steps");
    tcase_add_test(tc, train_batch_does_not_allocate);
    tcase_add_test(tc, fit_steps_do_not_allocate);
    tcase_add_test(tc, workspace_grows_only_for_larger_batches);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
