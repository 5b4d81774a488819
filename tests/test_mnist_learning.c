/*
 * test_mnist_learning.c - every built-in rule learns real data.
 *
 * A 784-64-64-10 tanh net trains for ten epochs on 4,000 MNIST images with the
 * rule's default hyperparameters and is scored on 2,000 test images.  Chance
 * is 10%.  Each rule has its floor, about 8 points under what it reaches
 * (vanilla target propagation is the weak one, as in the literature); a new
 * built-in rule is picked up from the registry and must clear 70%.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

static bpl_dataset *train_set, *test_set;

static void load(void)
{
    const char *dir = test_require_mnist();
    bpl_dataset *full;
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&full, dir, BPL_MNIST_TRAIN));
    BPL_OK_OR_FAIL(bpl_dataset_slice(&train_set, full, 0, 4000));
    bpl_dataset_destroy(full);
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&full, dir, BPL_MNIST_TEST));
    BPL_OK_OR_FAIL(bpl_dataset_slice(&test_set, full, 0, 2000));
    bpl_dataset_destroy(full);
}

static void unload(void)
{
    bpl_dataset_destroy(train_set);
    bpl_dataset_destroy(test_set);
}

static double floor_of(const char *rule)
{
    static const struct {
        const char *rule;
        double floor;
    } floors[] = {{"backprop", 0.82}, {"fa", 0.80}, {"dfa", 0.80},
                  {"tp", 0.62},       {"dtp", 0.80}, {"sdtp", 0.78},
                  {"segregated", 0.74}, {"microcircuit", 0.62}, {"usf", 0.80},
                  {"brsf", 0.80}, {"frsf", 0.80}};
    for (size_t i = 0; i < sizeof floors / sizeof floors[0]; i++)
        if (strcmp(floors[i].rule, rule) == 0)
            return floors[i].floor;
    return 0.70;
}

START_TEST(rule_learns_mnist_subset)
{
    const char *rule = bpl_rule_builtin_name((size_t)_i);
    const size_t units[] = {64, 64, 10};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(784, units, acts, 3, 1);
    test_attach(net, rule);
    double before, after, loss;
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, test_set, &before, NULL));
    BPL_OK_OR_FAIL(bpl_net_fit(net, train_set, 10, 32, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, test_set, &after, &loss));
    printf("%-10s accuracy %.4f -> %.4f, test loss %.3f\n", rule, before, after, loss);
    ck_assert_msg(after > floor_of(rule), "rule %s reached only %.3f accuracy (floor %.2f)",
                  rule, after, floor_of(rule));
    ck_assert_msg(after > before + 0.5, "rule %s: %.3f -> %.3f", rule, before, after);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mnist_learning");
    TCase *tc = tcase_create("smoke");
    tcase_add_unchecked_fixture(tc, load, unload);
    tcase_add_loop_test(tc, rule_learns_mnist_subset, 0, (int)bpl_rule_builtin_count());
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
