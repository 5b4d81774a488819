/*
 * test_predict_determinism.c - what bpl_net_predict and bpl_net_evaluate
 * return depends on the parameters and the input only.
 *
 * BLAS kernels may round a row of a product differently depending on how
 * many rows the product has, so inference must never size its products by
 * the net's history (the batch size it last trained with).  A net trained
 * with one batch size, saved and loaded, must predict exactly what the
 * original predicts, bit for bit, for every input size, with whatever BLAS,
 * kernel set and thread count the suite runs under.  This holds for every
 * built-in rule whose inference is deterministic (all of them in their
 * default modes).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { INPUTS = 24, HIDDEN1 = 40, HIDDEN2 = 24, CLASSES = 6, EXAMPLES = 300 };

/* Input sizes around the inference chunk and the training batches. */
static const size_t input_sizes[] = {1, 7, 31, 32, 33, 200, 255, 256, 257, 600};
enum { N_SIZES = sizeof input_sizes / sizeof input_sizes[0], MAX_ROWS = 600 };

/* Training batch sizes: below, at and above the inference chunk. */
static const size_t train_batches[] = {32, 300};
enum { N_BATCHES = sizeof train_batches / sizeof train_batches[0] };

static bpl_net *make_trained(const char *rule_name, size_t batch)
{
    /* The dendritic rules' neurons are logistic whatever is declared:
     * declare them so, as their own tests do. */
    int logistic = strcmp(rule_name, "microcircuit") == 0 ||
                   strcmp(rule_name, "segregated") == 0;
    int hidden = logistic ? BPL_ACT_SIGMOID : BPL_ACT_TANH;
    const size_t units[] = {HIDDEN1, HIDDEN2, CLASSES};
    const int acts[] = {hidden, hidden, logistic ? BPL_ACT_SIGMOID : BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(INPUTS, units, acts, 3, 7);
    test_attach(net, rule_name);

    static float x[EXAMPLES * INPUTS], y[EXAMPLES * CLASSES];
    uint64_t state = 11;
    test_fill_uniform(x, EXAMPLES * INPUTS, -1.0f, 1.0f, &state);
    test_fill_onehot(y, EXAMPLES, CLASSES, &state);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, EXAMPLES, INPUTS, CLASSES));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 2, batch, NULL, NULL));
    bpl_dataset_destroy(ds);
    return net;
}

static size_t count_differences(const float *a, const float *b, size_t n)
{
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    return differ;
}

static void assert_same_evaluation(bpl_net *a, bpl_net *b, const float *x, size_t rows,
                                   const char *what)
{
    static float y[MAX_ROWS * CLASSES];
    uint64_t state = 5;
    test_fill_onehot(y, rows, CLASSES, &state);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, rows, INPUTS, CLASSES));
    double acc_a, loss_a, acc_b, loss_b;
    BPL_OK_OR_FAIL(bpl_net_evaluate(a, ds, &acc_a, &loss_a));
    BPL_OK_OR_FAIL(bpl_net_evaluate(b, ds, &acc_b, &loss_b));
    bpl_dataset_destroy(ds);
    ck_assert_msg(acc_a == acc_b && memcmp(&loss_a, &loss_b, sizeof loss_a) == 0,
                  "%s: evaluate gives accuracy %.17g loss %.17g, after save and load "
                  "%.17g and %.17g",
                  what, acc_a, loss_a, acc_b, loss_b);
}

START_TEST(save_load_predict_is_bit_identical)
{
    const char *rule_name = bpl_rule_builtin_name((size_t)_i);
    static float x[MAX_ROWS * INPUTS], out_a[MAX_ROWS * CLASSES], out_b[MAX_ROWS * CLASSES];
    uint64_t state = 3;
    test_fill_uniform(x, MAX_ROWS * INPUTS, -1.5f, 1.5f, &state);
    for (int b = 0; b < N_BATCHES; b++) {
        bpl_net *net = make_trained(rule_name, train_batches[b]);
        char path[512];
        snprintf(path, sizeof path, "%s", test_temp_path("determinism.bpl"));
        BPL_OK_OR_FAIL(bpl_net_save(net, path));
        bpl_net *loaded = NULL;
        BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
        /* the largest size first: a loaded net that grew its workspace for
         * it must still predict the small sizes as the original does */
        for (int s = N_SIZES - 1; s >= 0; s--) {
            size_t rows = input_sizes[s];
            char what[160];
            snprintf(what, sizeof what, "%s trained at batch %zu, predicting %zu rows",
                     rule_name, train_batches[b], rows);
            BPL_OK_OR_FAIL(bpl_net_predict(net, x, rows, out_a, rows * CLASSES));
            BPL_OK_OR_FAIL(bpl_net_predict(loaded, x, rows, out_b, rows * CLASSES));
            size_t differ = count_differences(out_a, out_b, rows * CLASSES);
            ck_assert_msg(differ == 0, "%s: %zu of %zu outputs differ after save and load",
                          what, differ, rows * CLASSES);
            assert_same_evaluation(net, loaded, x, rows, what);
        }
        bpl_net_destroy(loaded);
        bpl_net_destroy(net);
    }
}
END_TEST

START_TEST(predict_ignores_training_history)
{
    /* Two copies of the same parameters, one of which trained last with a
     * large batch (its workspace is larger): the same input, the same bits. */
    const char *rule_name = bpl_rule_builtin_name((size_t)_i);
    static float x[MAX_ROWS * INPUTS], out_a[MAX_ROWS * CLASSES], out_b[MAX_ROWS * CLASSES];
    uint64_t state = 9;
    test_fill_uniform(x, MAX_ROWS * INPUTS, -1.0f, 1.0f, &state);
    bpl_net *net = make_trained(rule_name, 32);
    char path[512];
    snprintf(path, sizeof path, "%s", test_temp_path("history.bpl"));
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *copy = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&copy, path));
    /* a failed step with a huge batch leaves the parameters as they were
     * but may grow the workspace */
    size_t rows = MAX_ROWS;
    BPL_OK_OR_FAIL(bpl_net_predict(copy, x, rows, out_b, rows * CLASSES));
    for (int s = 0; s < N_SIZES; s++) {
        rows = input_sizes[s];
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, rows, out_a, rows * CLASSES));
        BPL_OK_OR_FAIL(bpl_net_predict(copy, x, rows, out_b, rows * CLASSES));
        ck_assert_msg(count_differences(out_a, out_b, rows * CLASSES) == 0,
                      "%s: %zu rows predicted differently by the same parameters", rule_name,
                      rows);
        /* and predicting again on the same net changes nothing */
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, rows, out_b, rows * CLASSES));
        ck_assert_msg(count_differences(out_a, out_b, rows * CLASSES) == 0,
                      "%s: %zu rows predicted differently the second time", rule_name,
                      rows);
    }
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("predict_determinism");
    TCase *tc = tcase_create("determinism");
    tcase_set_timeout(tc, 300);
    int n_rules = (int)bpl_rule_builtin_count();
    tcase_add_loop_test(tc, save_load_predict_is_bit_identical, 0, n_rules);
    tcase_add_loop_test(tc, predict_ignores_training_history, 0, n_rules);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
