/*
 * test_api_layers.c - layers: reading and writing tensors, tensors and
 * buffers added by rules, initialising a tensor, frozen tensors, a
 * layer's kind, shape and window.
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

START_TEST(test_tensor_roundtrip)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);

    float w[6], back[6];
    for (int i = 0; i < 6; i++)
        w[i] = 0.25f * (float)i - 0.5f;
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "weight", w, 6));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);
    const float b[2] = {0.5f, -1.5f};
    float bback[2];
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "bias", b, 2));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", bback, 2));
    ck_assert_mem_eq(b, bback, sizeof b);

    /* non-finite values: rejected before anything is written */
    float bad[6];
    memcpy(bad, w, sizeof bad);
    bad[5] = NAN;
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", bad, 6), BPL_ERR_NUMERIC,
                     "bpl_layer_set_tensor");
    bad[5] = 0.0f;
    bad[0] = INFINITY;
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", bad, 6), BPL_ERR_NUMERIC,
                     "bpl_layer_set_tensor");
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);

    /* length must equal rows * cols */
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", w, 5), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "bias", w, 3), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", back, 7), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", back, 0), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);

    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "feedback", back, 6), BPL_ERR_NOT_FOUND,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "feedback", w, 6), BPL_ERR_NOT_FOUND,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(NULL, "weight", back, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, NULL, back, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(NULL, "weight", w, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, NULL, w, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_tensor)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t params = bpl_net_param_count(net);

    int created = -1;
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_NONE,
                                        BPL_INIT_CONSTANT, 0.5, &created));
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    ck_assert_str_eq(bpl_layer_tensor_name(layer, 2), "extra");
    /* only weights and biases are forward parameters */
    ck_assert_uint_eq(bpl_net_param_count(net), params);
    int group = -7;
    size_t rows = 0, cols = 0;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "extra", &rows, &cols, &group));
    ck_assert_uint_eq(rows, 2);
    ck_assert_uint_eq(cols, 3);
    ck_assert_int_eq(group, BPL_GROUP_NONE);
    float v[6];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(v[i], 0.5f);

    /* borrowed storage is the tensor itself */
    float *data = NULL;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "extra", &data, &rows, &cols));
    ck_assert_uint_eq(rows * cols, 6);
    data[4] = 9.0f;
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    ck_assert_float_eq(v[4], 9.0f);
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "extra", &data, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_layer_tensor(layer, "nope", &data, NULL, NULL), BPL_ERR_NOT_FOUND,
                     "bpl_layer_tensor");
    BPL_EXPECT_ERROR(bpl_layer_tensor(layer, "extra", NULL, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_tensor");

    /* a group-none tensor has no gradient; a trained one has, same shape */
    float *grad = NULL;
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL), BPL_ERR_STATE,
                     "bpl_layer_tensor_grad");
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "weight", &grad, &rows, &cols));
    ck_assert_ptr_nonnull(grad);
    ck_assert_uint_eq(rows, 2);
    ck_assert_uint_eq(cols, 3);
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(layer, "nope", &grad, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "bpl_layer_tensor_grad");
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(NULL, "weight", &grad, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_grad");

    /* same name, same shape: kept with its values, regrouped */
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_FEEDBACK,
                                        BPL_INIT_ZERO, 1.0, &created));
    ck_assert_int_eq(created, 0);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    ck_assert_float_eq(v[4], 9.0f);
    ck_assert_float_eq(v[0], 0.5f);
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "extra", NULL, NULL, &group));
    ck_assert_int_eq(group, BPL_GROUP_FEEDBACK);
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL));
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                        1.0, NULL));

    /* same name, other shape */
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "extra", 3, 2, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_SHAPE, "bpl_layer_add_tensor");

    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(NULL, "t", 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, NULL, 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "", 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, long_name, 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, -2, BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, 2, BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE, 9, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, NAN, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, INFINITY, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_tensor_zero_size)
{
    /* Zero sizes are invalid arguments: "BPL_ERR_INVALID_ARG: NULL where not
     * allowed, bad enum, zero size" (enum bpl_status). */
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    int rc_rows = bpl_layer_add_tensor(layer, "t", 0, 3, BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                       NULL);
    int rows_named = strstr(bpl_last_error_message(), "bpl_layer_add_tensor") != NULL;
    int rc_cols = bpl_layer_add_tensor(layer, "t", 3, 0, BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                       NULL);
    int cols_named = strstr(bpl_last_error_message(), "bpl_layer_add_tensor") != NULL;
    size_t count = bpl_layer_tensor_count(layer);
    bpl_net_destroy(net); /* before asserting: nothing leaks if this fails */
    ck_assert_uint_eq(count, 2);
    ck_assert(rows_named && cols_named);
    ck_assert_msg(rc_rows == BPL_ERR_INVALID_ARG && rc_cols == BPL_ERR_INVALID_ARG,
                  "bpl_layer_add_tensor with 0 rows -> %d (%s), 0 cols -> %d (%s); "
                  "expected %d (%s)",
                  rc_rows, bpl_strerror(rc_rows), rc_cols, bpl_strerror(rc_cols),
                  BPL_ERR_INVALID_ARG, bpl_strerror(BPL_ERR_INVALID_ARG));
}
END_TEST

START_TEST(test_init_tensor_args)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    float w[6];
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT, 2.5));
    test_get_weight(net, 0, w, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(w[i], 2.5f);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "bias", BPL_INIT_CONSTANT, -1.0));
    float b[2];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", b, 2));
    ck_assert_float_eq(b[0], -1.0f);
    ck_assert_float_eq(b[1], -1.0f);

    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "nope", BPL_INIT_ZERO, 1.0),
                     BPL_ERR_NOT_FOUND, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", -1, 1.0), BPL_ERR_INVALID_ARG,
                     "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT + 1, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT, NAN),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(NULL, "weight", BPL_INIT_ZERO, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, NULL, BPL_INIT_ZERO, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    /* failed calls leave the values */
    test_get_weight(net, 0, w, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(w[i], 2.5f);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_buffer)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "trace", 4));
    /* same name and width: a no-op */
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "trace", 4));
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "trace", 5), BPL_ERR_SHAPE,
                     "bpl_layer_add_buffer");
    /* the standard buffers exist already, [batch][units] */
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "activation", 2));
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "delta", 2));
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "delta", 3), BPL_ERR_SHAPE,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "w0", 0), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "", 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, NULL, 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(NULL, "x", 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    bpl_net_destroy(net);
}
END_TEST

/* A frozen tensor keeps its values whatever the rule computes; the flag is
 * saved with the net; fixed tensors cannot be frozen. */
START_TEST(test_frozen_tensors)
{
    static const size_t units[] = {6, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, acts, 2, 5);
    test_attach(net, "fa");
    bpl_layer *first = bpl_net_layer(net, 0), *second = bpl_net_layer(net, 1);
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(NULL, "weight", 1), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_frozen");
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(first, "nope", 1), BPL_ERR_NOT_FOUND, "nope");
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(second, "feedback", 1), BPL_ERR_STATE, "feedback");
    ck_assert_int_eq(bpl_layer_frozen(first, "weight"), 0);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(first, "weight", 1));
    ck_assert_int_eq(bpl_layer_frozen(first, "weight"), 1);
    ck_assert_int_eq(bpl_layer_frozen(NULL, "weight"), 0);
    float w0[24], w1[24], v0[18], v1[18], x[8 * 4], y[8 * 3];
    uint64_t seed = 3;
    test_fill_uniform(x, 32, -1, 1, &seed);
    test_fill_onehot(y, 8, 3, &seed);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w0, 24));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(second, "weight", v0, 18));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w1, 24));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(second, "weight", v1, 18));
    ck_assert_mem_eq(w0, w1, sizeof w0);
    ck_assert(memcmp(v0, v1, sizeof v0) != 0);
    const char *path = test_temp_path("frozen.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *copy;
    BPL_OK_OR_FAIL(bpl_net_load(&copy, path));
    ck_assert_int_eq(bpl_layer_frozen(bpl_net_layer(copy, 0), "weight"), 1);
    ck_assert_int_eq(bpl_layer_frozen(bpl_net_layer(copy, 1), "weight"), 0);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(first, "weight", 0));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w1, 24));
    ck_assert(memcmp(w0, w1, sizeof w0) != 0);
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
}
END_TEST

/* A layer says what it is: its kind, its output shape, its window. */
START_TEST(test_layer_introspection)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 2 * 7 * 5, 1));
    static const size_t image[] = {2, 7, 5};
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, image, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 4, 3, 2, 2, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    bpl_layer *conv = bpl_net_layer(net, 0), *dense = bpl_net_layer(net, 1);
    ck_assert_str_eq(bpl_layer_kind(conv), "conv2d");
    ck_assert_str_eq(bpl_layer_kind(dense), "dense");
    ck_assert_ptr_null(bpl_layer_kind(NULL));

    size_t dims[BPL_MAX_DIMS], ndim = 0;
    BPL_OK_OR_FAIL(bpl_layer_get_shape(conv, dims, BPL_MAX_DIMS, &ndim));
    /* (7 + 2 - 3) / 2 + 1 = 4, (5 + 2 - 2) / 2 + 1 = 3 */
    ck_assert_uint_eq(ndim, 3);
    ck_assert_uint_eq(dims[0], 4);
    ck_assert_uint_eq(dims[1], 4);
    ck_assert_uint_eq(dims[2], 3);
    ck_assert_uint_eq(bpl_layer_units(conv), 4 * 4 * 3);
    BPL_OK_OR_FAIL(bpl_layer_get_shape(dense, NULL, 0, &ndim));
    ck_assert_uint_eq(ndim, 1);
    ck_assert_int_eq(bpl_layer_get_shape(conv, dims, 2, &ndim), BPL_ERR_SHAPE);
    ck_assert_uint_eq(ndim, 3);
    ck_assert_int_eq(bpl_layer_get_shape(NULL, dims, 3, &ndim), BPL_ERR_INVALID_ARG);
    ck_assert_int_eq(bpl_layer_get_shape(conv, dims, 3, NULL), BPL_ERR_INVALID_ARG);
    ck_assert_int_eq(bpl_layer_get_shape(conv, NULL, 3, &ndim), BPL_ERR_INVALID_ARG);

    size_t kh = 0, kw = 0, stride = 0, pad = 0;
    BPL_OK_OR_FAIL(bpl_layer_get_window(conv, &kh, &kw, &stride, &pad));
    ck_assert_uint_eq(kh, 3);
    ck_assert_uint_eq(kw, 2);
    ck_assert_uint_eq(stride, 2);
    ck_assert_uint_eq(pad, 1);
    BPL_OK_OR_FAIL(bpl_layer_get_window(conv, NULL, NULL, &stride, NULL));
    ck_assert_uint_eq(stride, 2);
    BPL_OK_OR_FAIL(bpl_layer_get_window(dense, &kh, &kw, &stride, &pad));
    ck_assert_uint_eq(kh + kw + stride + pad, 0);
    ck_assert_int_eq(bpl_layer_get_window(NULL, &kh, NULL, NULL, NULL), BPL_ERR_INVALID_ARG);
    bpl_net_destroy(net);

    /* A softmax conv layer is refused, naming what to do instead. */
    BPL_OK_OR_FAIL(bpl_net_create(&net, 2 * 7 * 5, 1));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, image, 3));
    ck_assert_int_eq(bpl_net_add_conv2d(net, 4, 3, 3, 1, 0, BPL_ACT_SOFTMAX, BPL_INIT_HE_NORMAL),
                     BPL_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "dense softmax"));
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    bpl_net_destroy(net);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("api_layers");
    TCase *tc = tcase_create("layer");
    tcase_add_test(tc, test_tensor_roundtrip);
    tcase_add_test(tc, test_add_tensor);
    tcase_add_test(tc, test_add_tensor_zero_size);
    tcase_add_test(tc, test_init_tensor_args);
    tcase_add_test(tc, test_add_buffer);
    tcase_add_test(tc, test_frozen_tensors);
    tcase_add_test(tc, test_layer_introspection);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(layers_suite());
}
