/*
 * test_tensor_groups.c - parameter groups of tensors: which tensors have a
 * gradient and optimiser state, and what re-declaring a tensor with
 * bpl_layer_add_tensor may change.
 *
 * A layer's "weight" and "bias" are written by every gradient writer of the
 * library (bpl_net_weight_gradients, the diagnostics) and saved as forward
 * parameters: they stay in BPL_GROUP_FORWARD.  Other tensors may move between
 * groups, and those in BPL_GROUP_NONE have no gradient anywhere.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 3-4(tanh)-2(softmax) with `rule` attached (NULL: none). */
static bpl_net *classifier(const char *rule)
{
    static const size_t units[] = {4, 2};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(3, units, acts, 2, 11);
    if (rule)
        test_attach(net, rule);
    return net;
}

static void batch_of(float *x, float *y, size_t rows)
{
    uint64_t state = 5;
    test_fill_uniform(x, rows * 3, -1.0f, 1.0f, &state);
    test_fill_onehot(y, rows, 2, &state);
}

/* A training step, a prediction and the alignment diagnostic all run. */
static void net_still_trains(bpl_net *net)
{
    float x[4 * 3], y[4 * 2], out[4 * 2];
    double loss, angles[2];
    batch_of(x, y, 4);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, &loss));
    ck_assert(isfinite(loss));
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 4, out, 8));
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 2));
}

static const char *const forward_tensors[] = {"weight", "bias"};

/* Regrouping the forward parameters out of BPL_GROUP_FORWARD freed their
 * gradient, and the next step wrote through NULL. */
START_TEST(test_forward_parameters_keep_their_group)
{
    bpl_net *net = classifier("backprop");
    for (size_t l = 0; l < 2; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t i = 0; i < 2; i++) {
            const char *name = forward_tensors[i];
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
            static const int others[] = {BPL_GROUP_NONE, BPL_GROUP_FEEDBACK};
            for (size_t g = 0; g < 2; g++) {
                BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, name, rows, cols, others[g],
                                                      BPL_INIT_ZERO, 1.0, NULL),
                                 BPL_ERR_INVALID_ARG, "BPL_GROUP_FORWARD");
                int group;
                BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, NULL, NULL, &group));
                ck_assert_int_eq(group, BPL_GROUP_FORWARD);
                float *grad;
                BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, name, &grad, NULL, NULL));
                ck_assert_ptr_nonnull(grad);
            }
            /* Re-declaring it as it is keeps it, values included. */
            int created = -1;
            BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, name, rows, cols, BPL_GROUP_FORWARD,
                                                BPL_INIT_ZERO, 1.0, &created));
            ck_assert_int_eq(created, 0);
        }
    }
    net_still_trains(net);
    bpl_net_destroy(net);
}
END_TEST

/* The same refusal without a rule, and for frozen parameters: freezing is
 * how a forward parameter stops training. */
START_TEST(test_forward_parameters_without_rule)
{
    bpl_net *net = classifier(NULL);
    bpl_layer *layer = bpl_net_layer(net, 1);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(layer, "weight", 1));
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "weight", 2, 4, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    ck_assert_int_eq(bpl_layer_frozen(layer, "weight"), 1);
    test_attach(net, "fa");
    float before[8], after[8];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", before, 8));
    net_still_trains(net);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", after, 8));
    ck_assert(memcmp(before, after, sizeof before) == 0);
    bpl_net_destroy(net);
}
END_TEST

/* A rule whose attach hook tries to take the weight out of training fails
 * to attach, and the net is left as it was. */
static int regroup_weight_attach(void *self, bpl_net *net)
{
    (void)self;
    bpl_layer *layer = bpl_net_layer(net, 0);
    return bpl_layer_add_tensor(layer, "weight", bpl_layer_units(layer),
                                bpl_layer_inputs(layer), BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                NULL);
}

static int dense_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int no_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    (void)net;
    (void)y;
    (void)batch;
    return 0;
}

static int no_update(void *self, bpl_net *net)
{
    (void)self;
    (void)net;
    return 0;
}

START_TEST(test_attach_cannot_regroup_forward_parameters)
{
    bpl_net *net = classifier(NULL);
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "regrouper";
    vt.attach = regroup_weight_attach;
    vt.forward = dense_forward;
    vt.compute_targets = no_targets;
    vt.update = no_update;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_INVALID_ARG, "regrouper");
    bpl_rule_destroy(rule);
    test_attach(net, "backprop");
    net_still_trains(net);
    bpl_net_destroy(net);
}
END_TEST

/* Saving after the refused regroup writes a file that loads: a weight in
 * another group would be saved as one, and refused by bpl_net_load. */
START_TEST(test_refused_regroup_saves_and_loads)
{
    bpl_net *net = classifier("backprop");
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "bias", 1, 4, BPL_GROUP_FEEDBACK,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    const char *path = test_temp_path("groups.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *loaded;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    net_still_trains(loaded);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

/* Other tensors move between groups; out of training they lose their
 * gradient, optimiser state and frozen flag, and everything that reads a
 * gradient copes. */
START_TEST(test_rule_tensor_regroups)
{
    bpl_net *net = classifier("backprop");
    bpl_layer *layer = bpl_net_layer(net, 0);
    float *grad;
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_FEEDBACK,
                                        BPL_INIT_UNIFORM, 0.1, NULL));
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(layer, "extra", 1));
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_NONE,
                                        BPL_INIT_ZERO, 1.0, NULL));
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL), BPL_ERR_STATE,
                     "bpl_layer_tensor_grad");
    ck_assert_int_eq(bpl_layer_frozen(layer, "extra"), 0);
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(layer, "extra", 1), BPL_ERR_STATE,
                     "bpl_layer_set_frozen");
    net_still_trains(net);
    /* back into training: fresh gradient storage */
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_FORWARD,
                                        BPL_INIT_ZERO, 1.0, NULL));
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL));
    ck_assert_ptr_nonnull(grad);
    net_still_trains(net);
    const char *path = test_temp_path("extra.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *loaded;
    BPL_OK_OR_FAIL(bpl_net_load(&loaded, path));
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

static Suite *groups_suite(void)
{
    Suite *s = suite_create("tensor_groups");
    TCase *tc = tcase_create("forward parameters");
    tcase_add_test(tc, test_forward_parameters_keep_their_group);
    tcase_add_test(tc, test_forward_parameters_without_rule);
    tcase_add_test(tc, test_attach_cannot_regroup_forward_parameters);
    tcase_add_test(tc, test_refused_regroup_saves_and_loads);
    suite_add_tcase(s, tc);
    tc = tcase_create("rule tensors");
    tcase_add_test(tc, test_rule_tensor_regroups);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(groups_suite());
}
