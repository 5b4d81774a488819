/*
 * test_recommendation.c - the recommended training set-up of rules: what
 * every built-in rule recommends, how a user rule declares its own, the
 * checks on keys and values, and bpl_rule_ignores.
 */
#include "testutil.h"

#include <string.h>

static const char *const training_choices[] = {"hidden", "activation", "init",
                                               "batch_size", "epochs", "lr_decay"};
#define N_CHOICES (sizeof training_choices / sizeof training_choices[0])

static int is_training_choice(const char *key)
{
    for (size_t i = 0; i < N_CHOICES; i++)
        if (strcmp(key, training_choices[i]) == 0)
            return 1;
    return strcmp(key, "ignores") == 0;
}

static bpl_rule *builtin(const char *name)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    return rule;
}

/* A user rule with nothing but the forward optimiser and `declared`. */
static int no_hook(void *self, bpl_net *net)
{
    (void)self;
    (void)net;
    return 0;
}

static int no_step(void *self, bpl_net *net, const float *data, size_t batch)
{
    (void)self;
    (void)net;
    (void)data;
    (void)batch;
    return 0;
}

static bpl_rule *user_rule(void)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "mine";
    vt.forward = no_step;
    vt.compute_targets = no_step;
    vt.update = no_hook;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "smooth", BPL_PARAM_BOOL, 1, 0, 1, NULL, ""));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "width", BPL_PARAM_INT, 4, 1, 64, NULL, ""));
    return rule;
}

static const char *recommended(const bpl_rule *rule, const char *key)
{
    const char *value = NULL;
    BPL_OK_OR_FAIL(bpl_rule_recommended(rule, key, &value));
    ck_assert_ptr_nonnull(value);
    return value;
}

static int ignores(const bpl_rule *rule, const char *choice)
{
    int ignored = -1;
    BPL_OK_OR_FAIL(bpl_rule_ignores(rule, choice, &ignored));
    ck_assert(ignored == 0 || ignored == 1);
    return ignored;
}

/* ---- built-in rules ------------------------------------------------------ */

/* A complete set-up: a front end needs no defaults of its own. */
START_TEST(builtin_recommends_a_complete_setup)
{
    bpl_rule *rule = builtin(bpl_rule_builtin_name((size_t)_i));
    static const char *const always[] = {"hidden", "batch_size", "epochs", "lr_decay",
                                         "optimizer", "lr"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        recommended(rule, always[i]);
    /* Activation and initialiser: recommended, or ignored by the model. */
    ck_assert_msg(ignores(rule, "activation") ||
                      bpl_rule_recommended(rule, "activation", &(const char *){0}) == BPL_OK,
                  "%s neither recommends nor ignores an activation", bpl_rule_name(rule));
    ck_assert_msg(ignores(rule, "init") ||
                      bpl_rule_recommended(rule, "init", &(const char *){0}) == BPL_OK,
                  "%s neither recommends nor ignores an initialiser", bpl_rule_name(rule));
    bpl_rule_destroy(rule);
}
END_TEST

/* Every hyperparameter entry is one bpl_rule_set_string accepts, and
 * applying it leaves the rule with that value. */
START_TEST(builtin_hyperparameter_entries_apply)
{
    bpl_rule *rule = builtin(bpl_rule_builtin_name((size_t)_i));
    ck_assert_uint_gt(bpl_rule_recommendation_count(rule), 0);
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key, *value;
        BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, i, &key, &value));
        double unused;
        if (bpl_rule_get(rule, key, &unused) != BPL_OK) {
            ck_assert_msg(is_training_choice(key), "%s recommends unknown '%s'",
                          bpl_rule_name(rule), key);
            continue;
        }
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, key, value));
    }
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(builtin_values)
{
    bpl_rule *rule = builtin("backprop");
    ck_assert_str_eq(recommended(rule, "hidden"), "256,256");
    ck_assert_str_eq(recommended(rule, "activation"), "relu");
    ck_assert_str_eq(recommended(rule, "lr_decay"), "0.8");
    ck_assert_int_eq(ignores(rule, "activation"), 0);
    ck_assert_int_eq(ignores(rule, "init"), 0);
    bpl_rule_destroy(rule);

    rule = builtin("sdtp"); /* AO-SDTP: what reaches the documented accuracy */
    ck_assert_str_eq(recommended(rule, "auxiliary_outputs"), "512");
    bpl_rule_destroy(rule);

    rule = builtin("segregated");
    ck_assert_str_eq(recommended(rule, "batch_size"), "32");
    BPL_EXPECT_ERROR(bpl_rule_recommended(rule, "activation", &(const char *){0}),
                     BPL_ERR_NOT_FOUND, "activation");
    bpl_rule_destroy(rule);
}
END_TEST

/* The segregated and microcircuit neurons are the model's own; segregated's
 * paper_init sets the weights, so the initialiser counts only without it. */
START_TEST(builtin_ignored_choices)
{
    bpl_rule *rule = builtin("segregated");
    ck_assert_int_eq(ignores(rule, "activation"), 1);
    ck_assert_int_eq(ignores(rule, "init"), 1);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "paper_init", "false"));
    ck_assert_int_eq(ignores(rule, "init"), 0);
    ck_assert_int_eq(ignores(rule, "activation"), 1);
    ck_assert_int_eq(ignores(rule, "batch_size"), 0);
    bpl_rule_destroy(rule);

    rule = builtin("microcircuit");
    ck_assert_int_eq(ignores(rule, "activation"), 1);
    ck_assert_int_eq(ignores(rule, "init"), 0);
    bpl_rule_destroy(rule);

    for (size_t i = 0; i < bpl_rule_builtin_count(); i++) {
        const char *name = bpl_rule_builtin_name(i);
        if (strcmp(name, "segregated") == 0 || strcmp(name, "microcircuit") == 0)
            continue;
        rule = builtin(name);
        ck_assert_msg(!ignores(rule, "activation") && !ignores(rule, "init"),
                      "%s ignores a choice", name);
        bpl_rule_destroy(rule);
    }
}
END_TEST

/* The set-up travels with the rule into a net and back out of a file. */
START_TEST(attached_and_loaded_rules_keep_it)
{
    static const size_t units[] = {4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(5, units, acts, 2, 1);
    test_attach(net, "dfa");
    ck_assert_str_eq(recommended(bpl_net_rule(net), "lr"), "0.0005");
    const char *path = test_temp_path("recommended.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net_destroy(net);
    BPL_OK_OR_FAIL(bpl_net_load(&net, path));
    ck_assert_str_eq(recommended(bpl_net_rule(net), "epochs"), "20");
    bpl_net_destroy(net);
}
END_TEST

/* ---- user rules ------------------------------------------------------------ */

START_TEST(user_rule_declares_its_own)
{
    bpl_rule *rule = user_rule();
    ck_assert_uint_eq(bpl_rule_recommendation_count(rule), 0);
    BPL_EXPECT_ERROR(bpl_rule_recommended(rule, "hidden", &(const char *){0}),
                     BPL_ERR_NOT_FOUND, "hidden");
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "hidden", "32,16"));
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "lr", "0.01"));
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "smooth", "false"));
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "optimizer", "rmsprop"));
    ck_assert_uint_eq(bpl_rule_recommendation_count(rule), 4);

    /* Order of first setting; replacing keeps the place. */
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "lr", "0.02"));
    const char *key, *value;
    BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, 1, &key, &value));
    ck_assert_str_eq(key, "lr");
    ck_assert_str_eq(value, "0.02");
    BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, 3, &key, NULL));
    ck_assert_str_eq(key, "optimizer");
    BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, 0, NULL, &value));
    ck_assert_str_eq(value, "32,16");

    /* Borrowed strings stay put while their entry does. */
    const char *before = recommended(rule, "hidden");
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "epochs", "3"));
    ck_assert_ptr_eq(recommended(rule, "hidden"), before);

    /* A recommendation is not a setting: the rule keeps its values. */
    double lr;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "lr", &lr));
    ck_assert_double_eq(lr, 1e-3);

    /* NULL removes; removing what is absent is not an error. */
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "lr", NULL));
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "lr", NULL));
    ck_assert_uint_eq(bpl_rule_recommendation_count(rule), 4);
    BPL_OK_OR_FAIL(bpl_rule_recommendation(rule, 1, &key, NULL));
    ck_assert_str_eq(key, "smooth");
    BPL_EXPECT_ERROR(bpl_rule_recommendation(rule, 4, &key, &value), BPL_ERR_RANGE, "4");
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(values_are_checked)
{
    bpl_rule *rule = user_rule();
    static const struct {
        const char *key, *value;
        int status;
    } bad[] = {
        {"no_such_key", "1", BPL_ERR_NOT_FOUND},
        {"lr", "fast", BPL_ERR_INVALID_ARG},
        {"lr", "-1", BPL_ERR_RANGE},
        {"width", "2.5", BPL_ERR_RANGE},
        {"width", "65", BPL_ERR_RANGE},
        {"smooth", "maybe", BPL_ERR_INVALID_ARG},
        {"optimizer", "lbfgs", BPL_ERR_INVALID_ARG},
        {"hidden", "64,,32", BPL_ERR_INVALID_ARG},
        {"hidden", "64,x", BPL_ERR_INVALID_ARG},
        {"hidden", "-3", BPL_ERR_INVALID_ARG},
        {"hidden", "99999999", BPL_ERR_INVALID_ARG},
        {"activation", "softmax", BPL_ERR_INVALID_ARG},
        {"activation", "swish", BPL_ERR_INVALID_ARG},
        {"init", "random", BPL_ERR_INVALID_ARG},
        {"batch_size", "0", BPL_ERR_INVALID_ARG},
        {"batch_size", "1e3", BPL_ERR_INVALID_ARG},
        {"epochs", "", BPL_ERR_INVALID_ARG},
        {"lr_decay", "0", BPL_ERR_INVALID_ARG},
        {"lr_decay", "1.5", BPL_ERR_INVALID_ARG},
        {"ignores", "activation,optimizer", BPL_ERR_INVALID_ARG},
        {"ignores", "init:no_such_param", BPL_ERR_INVALID_ARG},
        {"ignores", "init:", BPL_ERR_INVALID_ARG},
        {"ignores", "ignores", BPL_ERR_INVALID_ARG},
        {"ignores", "activation,,init", BPL_ERR_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = bpl_rule_set_recommendation(rule, bad[i].key, bad[i].value);
        ck_assert_msg(rc == bad[i].status, "%s=%s gave %d, expected %d", bad[i].key,
                      bad[i].value, rc, bad[i].status);
        ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), bad[i].key));
    }
    ck_assert_uint_eq(bpl_rule_recommendation_count(rule), 0);

    static const char *const good[][2] = {
        {"hidden", ""}, {"hidden", "0"}, {"hidden", "1000"}, {"activation", "sigmoid"},
        {"init", "he_normal"}, {"batch_size", "1"}, {"epochs", "100"}, {"lr_decay", "1"},
        {"ignores", ""}, {"ignores", "init:smooth,activation"}, {"width", "64"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, good[i][0], good[i][1]));

    BPL_EXPECT_ERROR(bpl_rule_set_recommendation(NULL, "lr", "1"), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_set_recommendation(rule, NULL, "1"), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_recommended(rule, "lr", NULL), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_recommendation(NULL, 0, NULL, NULL), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_uint_eq(bpl_rule_recommendation_count(NULL), 0);
    bpl_rule_destroy(rule);
}
END_TEST

/* A hyperparameter named like a training choice takes the key. */
START_TEST(hyperparameter_takes_the_key)
{
    bpl_rule *rule = user_rule();
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "epochs", BPL_PARAM_REAL, 0.5, 0, 1, NULL, ""));
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "epochs", "0.25"));
    BPL_EXPECT_ERROR(bpl_rule_set_recommendation(rule, "epochs", "3"), BPL_ERR_RANGE,
                     "epochs");
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(user_rule_ignores)
{
    bpl_rule *rule = user_rule();
    ck_assert_int_eq(ignores(rule, "activation"), 0);
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "ignores", "activation,init:smooth"));
    ck_assert_int_eq(ignores(rule, "activation"), 1);
    ck_assert_int_eq(ignores(rule, "init"), 1); /* smooth is true */
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "smooth", 0));
    ck_assert_int_eq(ignores(rule, "init"), 0);
    ck_assert_int_eq(ignores(rule, "hidden"), 0);
    int ignored = 7;
    BPL_EXPECT_ERROR(bpl_rule_ignores(rule, "optimizer", &ignored), BPL_ERR_INVALID_ARG,
                     "optimizer");
    BPL_EXPECT_ERROR(bpl_rule_ignores(rule, "ignores", &ignored), BPL_ERR_INVALID_ARG,
                     "ignores");
    BPL_EXPECT_ERROR(bpl_rule_ignores(rule, NULL, &ignored), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_ignores(rule, "init", NULL), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_ignores(NULL, "init", &ignored), BPL_ERR_INVALID_ARG, NULL);
    /* Removing the entry: nothing is ignored any more. */
    BPL_OK_OR_FAIL(bpl_rule_set_recommendation(rule, "ignores", NULL));
    ck_assert_int_eq(ignores(rule, "activation"), 0);
    bpl_rule_destroy(rule);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("recommendation");
    TCase *tc = tcase_create("builtin");
    int n_rules = (int)bpl_rule_builtin_count();
    tcase_add_loop_test(tc, builtin_recommends_a_complete_setup, 0, n_rules);
    tcase_add_loop_test(tc, builtin_hyperparameter_entries_apply, 0, n_rules);
    tcase_add_test(tc, builtin_values);
    tcase_add_test(tc, builtin_ignored_choices);
    tcase_add_test(tc, attached_and_loaded_rules_keep_it);
    suite_add_tcase(s, tc);
    tc = tcase_create("user");
    tcase_add_test(tc, user_rule_declares_its_own);
    tcase_add_test(tc, values_are_checked);
    tcase_add_test(tc, hyperparameter_takes_the_key);
    tcase_add_test(tc, user_rule_ignores);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
