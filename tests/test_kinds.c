/*
 * test_kinds.c - layer kinds: the dense kind's table and shapes, the
 * kind-neutral building blocks rules call, and bpl_net_set_rule refusing a
 * rule whose needs a layer's kind lacks (through test-only kinds: no kind
 * but dense is public).
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "bpl_internal.h"

/* 5-6(tanh)-4(tanh)-3(softmax). */
static bpl_net *make_net(void)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(5, units, acts, 3, 7);
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * sinf(1.0f + (float)i);
}

START_TEST(test_dense_kind_and_shapes)
{
    bpl_net *net = make_net();
    size_t dims[BPL__MAX_DIMS], ndim;
    static const size_t sizes[] = {6, 4, 3}, inputs[] = {5, 6, 4};
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        ck_assert_str_eq(bpl__layer_kind(layer)->name, "dense");
        bpl__layer_shape(layer, dims, &ndim);
        ck_assert_uint_eq(ndim, 1);
        ck_assert_uint_eq(dims[0], sizes[l]);
        ck_assert_uint_eq(bpl_layer_units(layer), sizes[l]);
        bpl__layer_input_shape(layer, dims, &ndim);
        ck_assert_uint_eq(ndim, 1);
        ck_assert_uint_eq(dims[0], inputs[l]);
        ck_assert_uint_eq(bpl_layer_inputs(layer), inputs[l]);
        /* The kind names its parameters; the rest of the library finds them so. */
        ck_assert_str_eq(bpl__layer_weight(layer)->name, "weight");
        ck_assert_str_eq(bpl__layer_bias(layer)->name, "bias");
    }
    bpl__net_input_shape(net, dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 5);
    bpl_net_destroy(net);
}
END_TEST

/* A C x H x W input: the dense layer above flattens it. */
START_TEST(test_image_input_shape)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 12, 1));
    static const size_t chw[] = {3, 2, 2}, wrong[] = {3, 2, 3};
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, wrong, 3), BPL_ERR_SHAPE, "12");
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, chw, 0), BPL_ERR_INVALID_ARG, NULL);
    BPL_OK_OR_FAIL(bpl__net_set_input_shape(net, chw, 3));
    size_t dims[BPL__MAX_DIMS], ndim;
    bpl__net_input_shape(net, dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert(memcmp(dims, chw, sizeof chw) == 0);
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    bpl__layer_input_shape(bpl_net_layer(net, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 0)), 12);
    bpl__layer_shape(bpl_net_layer(net, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 4);
    /* The kind says so without a layer, as a loader asks before allocating. */
    size_t out[BPL__MAX_DIMS], out_ndim;
    bpl__dense_kind.output_shape(chw, 3, 7, out, &out_ndim);
    ck_assert_uint_eq(out_ndim, 1);
    ck_assert_uint_eq(out[0], 7);
    /* The shape describes the net's first layer's input: fixed once it has one. */
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, chw, 3), BPL_ERR_STATE, "layer");
    /* The model file keeps the input's shape and each layer's kind and shape. */
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    bpl_net *loaded;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&loaded, data, size));
    bpl_buffer_free(data);
    bpl__net_input_shape(loaded, dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert(memcmp(dims, chw, sizeof chw) == 0);
    ck_assert_ptr_eq(bpl__layer_kind(bpl_net_layer(loaded, 0)), &bpl__dense_kind);
    bpl__layer_shape(bpl_net_layer(loaded, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 4);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

/* The blocks compute what the dense maths says, whichever matrix is given. */
START_TEST(test_blocks)
{
    bpl_net *net = make_net();
    bpl_layer *layer = bpl_net_layer(net, 1); /* 6 -> 4 */
    const size_t batch = 3, in_n = 6, out_n = 4;
    bpl__tensor *w = bpl__layer_weight(layer), *b = bpl__layer_bias(layer);
    float in[18], out[12], err[12], down[18], down_t[18], wt[24];
    fill(in, batch * in_n, 0.5f);
    fill(err, batch * out_n, 0.25f);
    fill(b->data, out_n, 0.1f);

    bpl__layer_forward(net, layer, in, batch, BPL_ACT_TANH, out);
    for (size_t i = 0; i < batch; i++)
        for (size_t j = 0; j < out_n; j++) {
            double z = b->data[j];
            for (size_t k = 0; k < in_n; k++)
                z += (double)in[i * in_n + k] * w->data[j * in_n + k];
            ck_assert_double_eq_tol(out[i * out_n + j], tanh(z), 1e-5);
        }

    /* Through W itself, and through a copy of W stored transposed. */
    for (size_t j = 0; j < out_n; j++)
        for (size_t k = 0; k < in_n; k++)
            wt[k * out_n + j] = w->data[j * in_n + k];
    bpl__layer_send_error(net, layer, NULL, 0, err, batch, 2.0f, 0.0f, down);
    bpl__layer_send_error(net, layer, wt, 1, err, batch, 2.0f, 0.0f, down_t);
    for (size_t i = 0; i < batch; i++)
        for (size_t k = 0; k < in_n; k++) {
            double e = 0.0;
            for (size_t j = 0; j < out_n; j++)
                e += 2.0 * err[i * out_n + j] * w->data[j * in_n + k];
            ck_assert_double_eq_tol(down[i * in_n + k], e, 1e-5);
            ck_assert_double_eq_tol(down_t[i * in_n + k], e, 1e-5);
        }

    /* Gradients: alpha err^T in for W; sums of 3 err / 4 for the bias. */
    bpl__layer_gradients(net, layer, err, in, batch, 2.0f, 3.0f, 4.0f);
    for (size_t j = 0; j < out_n; j++) {
        double gb = 0.0;
        for (size_t i = 0; i < batch; i++)
            gb += 3.0 * err[i * out_n + j] / 4.0;
        ck_assert_double_eq_tol(b->grad[j], gb, 1e-6);
        for (size_t k = 0; k < in_n; k++) {
            double g = 0.0;
            for (size_t i = 0; i < batch; i++)
                g += 2.0 * err[i * out_n + j] * in[i * in_n + k];
            ck_assert_double_eq_tol(w->grad[j * in_n + k], g, 1e-5);
        }
    }
    bpl_net_destroy(net);
}
END_TEST

/* Dense, but without what the named capabilities give. */
static bpl__kind lacking(unsigned missing, const char *name)
{
    bpl__kind kind = bpl__dense_kind;
    kind.name = name;
    kind.caps &= ~missing;
    return kind;
}

/* `rule` on a net whose layer 1 is of `kind`: BPL_OK or the refusal. */
static int attach(bpl_net *net, const char *rule_name)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rule_name));
    int rc = bpl_net_set_rule(net, rule);
    if (rc != BPL_OK)
        bpl_rule_destroy(rule); /* a refused rule stays its caller's */
    return rc;
}

START_TEST(test_rule_needs_dense_matrix)
{
    static bpl__kind not_dense;
    not_dense = lacking(BPL__CAN_DENSE, "test_not_dense");
    static const char *const accepted[] = {"backprop", "fa", "dfa"};
    static const char *const refused[] = {"tp", "dtp", "sdtp", "segregated", "microcircuit"};
    bpl_net *net = make_net();
    bpl_net_layer(net, 1)->kind = &not_dense;
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
        BPL_OK_OR_FAIL(attach(net, accepted[i]));
    bpl_rule *before = bpl_net_rule(net);
    size_t tensors = bpl_layer_tensor_count(bpl_net_layer(net, 0));
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        BPL_EXPECT_ERROR(attach(net, refused[i]), BPL_ERR_UNSUPPORTED,
                         "layer 1 (kind 'test_not_dense')");
        ck_assert_msg(strstr(bpl_last_error_message(), refused[i]) != NULL, "%s",
                      bpl_last_error_message());
        ck_assert_msg(strstr(bpl_last_error_message(), "dense weight matrix") != NULL, "%s",
                      bpl_last_error_message());
        /* Refused before anything changed: the previous rule and its tensors stay. */
        ck_assert_ptr_eq(bpl_net_rule(net), before);
        ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(net, 0)), tensors);
    }
    bpl_net_destroy(net);
}
END_TEST

/* One capability missing on one layer: which rules are refused, and how. */
START_TEST(test_rule_needs_each_capability)
{
    static const struct {
        unsigned missing;
        size_t layer;
        const char *rule, *message; /* NULL: the rule attaches */
    } cases[] = {
        {BPL__CAN_SEND_ERROR, 2, "backprop",
         "needs sending an error to its input, which layer 2 (kind 'test_kind') does not "
         "provide"},
        {BPL__CAN_SEND_ERROR, 2, "fa", "layer 2 (kind 'test_kind')"},
        /* Direct feedback alignment sends the error around the layers. */
        {BPL__CAN_SEND_ERROR, 2, "dfa", NULL},
        {BPL__CAN_GRADIENTS, 0, "dfa", "parameter gradients, which layer 0"},
        {BPL__CAN_FORWARD, 1, "backprop", "a forward pass, which layer 1"},
    };
    static bpl__kind kind;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kind = lacking(cases[i].missing, "test_kind");
        bpl_net *net = make_net();
        bpl_net_layer(net, cases[i].layer)->kind = &kind;
        if (cases[i].message) {
            BPL_EXPECT_ERROR(attach(net, cases[i].rule), BPL_ERR_UNSUPPORTED,
                             cases[i].message);
            ck_assert_ptr_null(bpl_net_rule(net));
        } else {
            BPL_OK_OR_FAIL(attach(net, cases[i].rule));
        }
        bpl_net_destroy(net);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kinds");
    TCase *tc = tcase_create("kinds");
    tcase_add_test(tc, test_dense_kind_and_shapes);
    tcase_add_test(tc, test_image_input_shape);
    tcase_add_test(tc, test_blocks);
    tcase_add_test(tc, test_rule_needs_dense_matrix);
    tcase_add_test(tc, test_rule_needs_each_capability);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
