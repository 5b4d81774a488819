/*
 * test_resume.c - a run resumes from its last completed epoch: fitting
 * e1 + e2 epochs gives bit for bit what fitting e1, saving, loading and
 * fitting e2 gives, for every built-in rule, and on a conv net for every
 * rule that trains one (dtp's and sdtp's learned transposed inverses too).  This is
 * what makes long accuracy runs resumable (bench/accuracy.sh).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

enum { INPUTS = 12, CLASSES = 4, EXAMPLES = 70, BATCH = 16 };

static bpl_dataset *make_dataset(void)
{
    static float x[EXAMPLES * INPUTS], y[EXAMPLES * CLASSES];
    uint64_t state = 21;
    test_fill_uniform(x, EXAMPLES * INPUTS, 0.0f, 1.0f, &state);
    test_fill_onehot(y, EXAMPLES, CLASSES, &state);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, EXAMPLES, INPUTS, CLASSES));
    return ds;
}

static bpl_net *make_dense(const char *rule)
{
    /* The dendritic rules' neurons are logistic whatever is declared. */
    int logistic = strcmp(rule, "microcircuit") == 0 || strcmp(rule, "segregated") == 0;
    const size_t units[] = {10, 8, CLASSES};
    const int acts[] = {logistic ? BPL_ACT_SIGMOID : BPL_ACT_TANH,
                        logistic ? BPL_ACT_SIGMOID : BPL_ACT_TANH,
                        logistic ? BPL_ACT_SIGMOID : BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(INPUTS, units, acts, 3, 9);
    test_attach(net, rule);
    return net;
}

/* 1 x 3 x 4 images through a conv layer and a dense one. */
static bpl_net *make_conv(const char *rule)
{
    static const size_t image[] = {1, 3, 4};
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, INPUTS, 9));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, image, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 3, 2, 2, 1, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, CLASSES, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    test_attach(net, rule);
    return net;
}

/* Fit 3 epochs straight, and 1 + save + load + 2: the same bits. */
static void check_resume(bpl_net *straight, bpl_net *stopped, const char *what)
{
    bpl_dataset *ds = make_dataset();
    BPL_OK_OR_FAIL(bpl_net_fit(straight, ds, 3, BATCH, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_net_fit(stopped, ds, 1, BATCH, NULL, NULL));
    void *bytes;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(stopped, &bytes, &size));
    bpl_net *resumed;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&resumed, bytes, size));
    bpl_buffer_free(bytes);
    BPL_OK_OR_FAIL(bpl_net_fit(resumed, ds, 2, BATCH, NULL, NULL));

    size_t n;
    float *want = test_snapshot(straight, &n);
    ck_assert_msg(test_same_params(resumed, want, n),
                  "%s: resumed after epoch 1, the net differs from the one trained straight",
                  what);
    /* And training changed it: the comparison is not between two unchanged nets. */
    float *first = test_snapshot(stopped, &n);
    ck_assert_msg(!test_same_params(resumed, first, n), "%s: epochs 2 and 3 changed nothing",
                  what);
    free(first);
    free(want);
    bpl_net_destroy(resumed);
    bpl_dataset_destroy(ds);
}

START_TEST(dense_run_resumes_bit_for_bit)
{
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    bpl_net *straight = make_dense(rule), *stopped = make_dense(rule);
    check_resume(straight, stopped, rule);
    bpl_net_destroy(straight);
    bpl_net_destroy(stopped);
}
END_TEST

START_TEST(conv_run_resumes_bit_for_bit)
{
    static const char *const rules[] = {"backprop", "fa",  "dfa",  "dtp",
                                        "sdtp",     "usf", "brsf", "frsf"};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        bpl_net *straight = make_conv(rules[i]), *stopped = make_conv(rules[i]);
        check_resume(straight, stopped, rules[i]);
        bpl_net_destroy(straight);
        bpl_net_destroy(stopped);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, dense_run_resumes_bit_for_bit, 0, (int)bpl_rule_builtin_count());
    tcase_add_test(tc, conv_run_resumes_bit_for_bit);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
