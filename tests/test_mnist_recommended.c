/*
 * test_mnist_recommended.c - every built-in rule learns MNIST from its
 * recommended training set-up alone.
 *
 * The net, the hyperparameters, the batch size and the learning-rate
 * schedule are read from the rule through the public API
 * (bpl_rule_recommendation), as a front end reads them, so the test follows
 * the recommendation wherever it goes.  Budget: the first TRAIN_IMAGES
 * training images for EPOCHS epochs, scored on the first TEST_IMAGES test
 * images; every rule must reach 80% test accuracy, vanilla target
 * propagation 50% (its recommended rate is small; chance is 10%).  All
 * eight together take well under a minute on two cores.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRAIN_IMAGES = 30000, TEST_IMAGES = 2000, EPOCHS = 2 };

static bpl_dataset *train_set, *test_set;

static void load(void)
{
    const char *dir = test_require_mnist();
    bpl_dataset *full;
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&full, dir, BPL_MNIST_TRAIN));
    BPL_OK_OR_FAIL(bpl_dataset_slice(&train_set, full, 0, TRAIN_IMAGES));
    bpl_dataset_destroy(full);
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&full, dir, BPL_MNIST_TEST));
    BPL_OK_OR_FAIL(bpl_dataset_slice(&test_set, full, 0, TEST_IMAGES));
    bpl_dataset_destroy(full);
}

static void unload(void)
{
    bpl_dataset_destroy(train_set);
    bpl_dataset_destroy(test_set);
}

static double threshold_of(const char *rule)
{
    return strcmp(rule, "tp") == 0 ? 0.50 : 0.80;
}

/* The recommended value of a training choice, or `fallback` when the rule
 * recommends none (an ignored activation, say). */
static const char *recommended(const bpl_rule *rule, const char *key, const char *fallback)
{
    const char *value;
    return bpl_rule_recommended(rule, key, &value) == BPL_OK ? value : fallback;
}

/* Every recommended hyperparameter, applied as a front end applies it. */
static void apply_hyperparameters(bpl_rule *rule)
{
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key, *value;
        double unused;
        BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, i, &key, &value));
        if (bpl_rule_get(rule, key, &unused) == BPL_OK)
            BPL_OK_OR_FAIL(bpl_rule_set_string(rule, key, value));
    }
}

/* "256,256" -> hidden layers of a 784-...-10 softmax net. */
static bpl_net *recommended_net(const bpl_rule *rule)
{
    int activation, init;
    BPL_OK_OR_FAIL(bpl_activation_from_name(recommended(rule, "activation", "tanh"),
                                            &activation));
    BPL_OK_OR_FAIL(bpl_init_from_name(recommended(rule, "init", "glorot_uniform"), &init));
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, bpl_dataset_features(train_set), 1));
    const char *hidden = recommended(rule, "hidden", "");
    for (const char *p = hidden; *p && strcmp(hidden, "0") != 0;) {
        char *end;
        unsigned long units = strtoul(p, &end, 10);
        ck_assert_msg(units > 0 && (*end == ',' || *end == '\0'), "hidden '%s'", hidden);
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, units, activation, init));
        p = *end ? end + 1 : end;
    }
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, bpl_dataset_targets(train_set), BPL_ACT_SOFTMAX,
                                     init));
    return net;
}

/* The learning-rate schedule: "lr" times the decay after every epoch. */
static int decay_after_epoch(int event, size_t epoch, size_t step, size_t steps, double loss,
                             void *user_data)
{
    (void)epoch;
    (void)step;
    (void)steps;
    (void)loss;
    bpl_net *net = user_data;
    if (event != BPL_EVENT_EPOCH)
        return 0;
    bpl_rule *rule = bpl_net_rule(net);
    double lr;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "lr", &lr));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", lr * atof(recommended(rule, "lr_decay", "1"))));
    return 0;
}

START_TEST(recommended_setup_learns)
{
    const char *name = bpl_rule_builtin_name((size_t)_i);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    apply_hyperparameters(rule);
    bpl_net *net = recommended_net(rule);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    size_t batch = strtoul(recommended(rule, "batch_size", "0"), NULL, 10);
    ck_assert_msg(batch > 0, "%s recommends no batch size", name);

    double accuracy, loss;
    BPL_OK_OR_FAIL(bpl_net_fit(net, train_set, EPOCHS, batch, decay_after_epoch, net));
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, test_set, &accuracy, &loss));
    printf("%-12s %zu images x %d epochs, batch %zu: test accuracy %.4f, loss %.3f\n", name,
           (size_t)TRAIN_IMAGES, EPOCHS, batch, accuracy, loss);
    ck_assert_msg(accuracy >= threshold_of(name),
                  "rule %s's recommended set-up reached only %.3f test accuracy (at least "
                  "%.2f expected)",
                  name, accuracy, threshold_of(name));
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mnist_recommended");
    TCase *tc = tcase_create("recommended");
    tcase_add_unchecked_fixture(tc, load, unload);
    tcase_add_loop_test(tc, recommended_setup_learns, 0, (int)bpl_rule_builtin_count());
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
