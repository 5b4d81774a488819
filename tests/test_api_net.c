/*
 * test_api_net.c - nets: creation, NULL handles, introspection, layer
 * handles, adding dense layers, the loss and the log callback.
 */
#include "testutil.h"

#include <limits.h>

START_TEST(test_net_create_args)
{
    bpl_net *net = (bpl_net *)(uintptr_t)1; /* must be reset to NULL on failure */
    BPL_EXPECT_ERROR(bpl_net_create(&net, 0, 1), BPL_ERR_INVALID_ARG, "bpl_net_create");
    ck_assert_ptr_null(net);
    BPL_EXPECT_ERROR(bpl_net_create(NULL, 3, 1), BPL_ERR_INVALID_ARG, "bpl_net_create");
    net = (bpl_net *)(uintptr_t)1;
    BPL_EXPECT_FAILURE(bpl_net_create(&net, SIZE_MAX, 1), "bpl_net_create");
    ck_assert_ptr_null(net);
    bpl_net_destroy(NULL);

    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 99));
    ck_assert_ptr_nonnull(net);
    ck_assert_uint_eq(bpl_net_inputs(net), 3);
    ck_assert_uint_eq(bpl_net_outputs(net), 0);
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    ck_assert_uint_eq(bpl_net_param_count(net), 0);
    ck_assert_uint_eq(bpl_net_seed(net), 99);
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    ck_assert_ptr_null(bpl_net_layer(net, 0));
    ck_assert_ptr_null(bpl_net_rule(net));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    /* A rule needs layers to attach to. */
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "backprop"));
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_STATE, "bpl_net_set_rule");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_null_getters)
{
    ck_assert_int_eq(bpl_net_loss(NULL), 0);
    ck_assert_uint_eq(bpl_net_inputs(NULL), 0);
    ck_assert_uint_eq(bpl_net_outputs(NULL), 0);
    ck_assert_uint_eq(bpl_net_layer_count(NULL), 0);
    ck_assert_uint_eq(bpl_net_param_count(NULL), 0);
    ck_assert_uint_eq(bpl_net_seed(NULL), 0);
    ck_assert_ptr_null(bpl_net_layer(NULL, 0));
    ck_assert_ptr_null(bpl_net_rule(NULL));
    ck_assert_int_eq(bpl_net_phase(NULL), BPL_PHASE_IDLE);
    ck_assert_uint_eq(bpl_layer_index(NULL), 0);
    ck_assert_uint_eq(bpl_layer_units(NULL), 0);
    ck_assert_uint_eq(bpl_layer_inputs(NULL), 0);
    ck_assert_int_eq(bpl_layer_activation(NULL), -1);
    ck_assert_uint_eq(bpl_layer_tensor_count(NULL), 0);
    ck_assert_ptr_null(bpl_layer_tensor_name(NULL, 0));
}
END_TEST

START_TEST(test_net_introspection)
{
    static const size_t units[] = {5, 4, 3};
    static const int acts[] = {BPL_ACT_RELU, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(6, units, acts, 3, 42);
    ck_assert_uint_eq(bpl_net_layer_count(net), 3);
    ck_assert_uint_eq(bpl_net_inputs(net), 6);
    ck_assert_uint_eq(bpl_net_outputs(net), 3);
    ck_assert_uint_eq(bpl_net_seed(net), 42);
    /* every layer's weight [units][inputs] and bias [units] */
    ck_assert_uint_eq(bpl_net_param_count(net), 5 * (6 + 1) + 4 * (5 + 1) + 3 * (4 + 1));

    size_t inputs = 6;
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        ck_assert_ptr_nonnull(layer);
        ck_assert_ptr_eq(bpl_net_layer(net, l), layer);
        ck_assert_uint_eq(bpl_layer_index(layer), l);
        ck_assert_uint_eq(bpl_layer_units(layer), units[l]);
        ck_assert_uint_eq(bpl_layer_inputs(layer), inputs);
        ck_assert_int_eq(bpl_layer_activation(layer), acts[l]);
        ck_assert_uint_eq(bpl_layer_tensor_count(layer), 2);
        ck_assert_str_eq(bpl_layer_tensor_name(layer, 0), "weight");
        ck_assert_str_eq(bpl_layer_tensor_name(layer, 1), "bias");
        ck_assert_ptr_null(bpl_layer_tensor_name(layer, 2));
        ck_assert_ptr_null(bpl_layer_tensor_name(layer, SIZE_MAX));

        size_t rows = 0, cols = 0;
        int group = -7;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "weight", &rows, &cols, &group));
        ck_assert_uint_eq(rows, units[l]);
        ck_assert_uint_eq(cols, inputs);
        ck_assert_int_eq(group, BPL_GROUP_FORWARD);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "bias", &rows, &cols, &group));
        ck_assert_uint_eq(rows, 1);
        ck_assert_uint_eq(cols, units[l]);
        ck_assert_int_eq(group, BPL_GROUP_FORWARD);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "bias", NULL, NULL, NULL));

        /* biases start at zero */
        float bias[5];
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", bias, units[l]));
        for (size_t j = 0; j < units[l]; j++)
            ck_assert_float_eq(bias[j], 0.0f);
        inputs = units[l];
    }
    ck_assert_ptr_null(bpl_net_layer(net, 3));
    ck_assert_ptr_null(bpl_net_layer(net, SIZE_MAX));

    bpl_layer *first = bpl_net_layer(net, 0);
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(first, "feedback", NULL, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "bpl_layer_tensor_info");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(first, NULL, NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_info");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(NULL, "weight", NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_info");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_layer_handles_stable)
{
    /* Layer handles stay valid while the net grows (as long as it lives). */
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    bpl_layer *first = bpl_net_layer(net, 0);
    for (int i = 0; i < 20; i++)
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    ck_assert_uint_eq(bpl_net_layer_count(net), 21);
    ck_assert_ptr_eq(bpl_net_layer(net, 0), first);
    ck_assert_uint_eq(bpl_layer_units(first), 4);
    ck_assert_uint_eq(bpl_layer_inputs(first), 3);
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 20)), 4);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_dense_args)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    BPL_EXPECT_ERROR(bpl_net_add_dense(NULL, 3, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 0, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, -1, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX + 1, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_RELU, -1), BPL_ERR_INVALID_ARG,
                     "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_RELU, BPL_INIT_CONSTANT + 1),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_FAILURE(bpl_net_add_dense(net, SIZE_MAX, BPL_ACT_RELU, BPL_INIT_ZERO),
                   "bpl_net_add_dense");
    /* failed calls add nothing */
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);

    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 2, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_STATE, "bpl_net_add_dense");
    ck_assert_uint_eq(bpl_net_layer_count(net), 1);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_loss)
{
    bpl_net *net = test_small_classifier(1);
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_MSE);
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, 0), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, 3), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, -1), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_MSE);
    BPL_EXPECT_ERROR(bpl_net_set_loss(NULL, BPL_LOSS_MSE), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_loss");
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY));
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    bpl_net_destroy(net);
}
END_TEST

static void count_log(int level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    ++*(int *)user_data;
}

START_TEST(test_log_fn)
{
    bpl_net *net = test_small_classifier(1);
    int calls = 0;
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, count_log, &calls));
    BPL_EXPECT_ERROR(bpl_net_set_log_fn(NULL, count_log, &calls), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_log_fn");
    /* NULL switches logging off: nothing reaches the old callback */
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, NULL, NULL));
    test_attach(net, "backprop");
    float x[2 * 4], y[2 * 3];
    uint64_t s = 5;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    ck_assert_int_eq(calls, 0);
    bpl_net_destroy(net);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("api_net");
    TCase *tc = tcase_create("net");
    tcase_add_test(tc, test_net_create_args);
    tcase_add_test(tc, test_null_getters);
    tcase_add_test(tc, test_net_introspection);
    tcase_add_test(tc, test_layer_handles_stable);
    tcase_add_test(tc, test_add_dense_args);
    tcase_add_test(tc, test_set_loss);
    tcase_add_test(tc, test_log_fn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(net_suite());
}
