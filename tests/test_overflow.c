/*
 * test_overflow.c - every size product of the public API with sizes whose
 * product does not fit a size_t.  Each call must fail with a status and a
 * message naming the function before it reads or writes a caller buffer: the
 * buffers passed here are tiny, so a call that trusted a wrapped product
 * reads or writes past them (a crash, or a report under the sanitizers).
 * docs/reliability.md, "Size products in the public API", lists the
 * products and the test of each.
 */
#include "testutil.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HALF ((SIZE_MAX >> 1) + 1) /* 2^63 on LP64: HALF * 2 wraps to 0 */

/* A 2-input net with `outputs` linear outputs (MSE), with backprop attached. */
static bpl_net *linear_net(size_t inputs, size_t outputs)
{
    static const int acts[] = {BPL_ACT_LINEAR};
    bpl_net *net = test_make_net(inputs, &outputs, acts, 1, 7);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    test_attach(net, "backprop");
    return net;
}

/* The reproduction: batch 2^63, 2 outputs, out_len 0. */
START_TEST(test_predict_out_len_wraps)
{
    bpl_net *net = linear_net(2, 2);
    float x[2] = {0.5f, -0.5f}, out[2] = {0};
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, HALF, out, 0), BPL_ERR_OVERFLOW,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, HALF + 1, out, 2), BPL_ERR_OVERFLOW,
                     "bpl_net_predict");
    ck_assert(out[0] == 0.0f && out[1] == 0.0f);
    bpl_net_destroy(net);
}
END_TEST

/* out_len is right, but batch x inputs wraps: x would be read past its end. */
START_TEST(test_predict_input_wraps)
{
    bpl_net *net = linear_net(8, 1);
    float x[8] = {0}, out[1] = {0};
    size_t batch = (SIZE_MAX >> 3) + 2; /* x 8 wraps to 8 */
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, batch, out, batch), BPL_ERR_OVERFLOW,
                     "bpl_net_predict");
    /* batch x outputs fits in a size_t, but not as bytes of floats */
    bpl_net *one = linear_net(1, 1);
    batch = (SIZE_MAX >> 2) + 2;
    BPL_EXPECT_ERROR(bpl_net_predict(one, x, batch, out, batch), BPL_ERR_OVERFLOW,
                     "bpl_net_predict");
    bpl_net_destroy(one);
    bpl_net_destroy(net);
}
END_TEST

/* batch x inputs and batch x outputs of a training step, checked before x and
 * y are read for NaN. */
START_TEST(test_train_batch_wraps)
{
    bpl_net *net = linear_net(4, 2);
    float x[4] = {0}, y[2] = {0};
    size_t batch = (SIZE_MAX >> 2) + 2; /* x 4 wraps to 4, x 2 does not */
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, batch, NULL), BPL_ERR_OVERFLOW,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, HALF, NULL), BPL_ERR_OVERFLOW,
                     "bpl_net_train_batch");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_alignment_wraps)
{
    bpl_net *net = linear_net(4, 2);
    float x[4] = {0}, y[2] = {0};
    double angles[1];
    size_t batch = (SIZE_MAX >> 2) + 2;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, batch, angles, 1), BPL_ERR_OVERFLOW,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, HALF, angles, 1), BPL_ERR_OVERFLOW,
                     "bpl_net_alignment");
    bpl_net_destroy(net);
}
END_TEST

/* A batch larger than a dataset is the whole dataset: no steps count wraps. */
START_TEST(test_fit_batch_size_max)
{
    bpl_net *net = linear_net(2, 1);
    float x[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, y[3] = {1, 0, 1};
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 3, 2, 1));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 2, SIZE_MAX, NULL, NULL));
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

/* rows x cols with a NULL matrix: a product that wraps to 0 is no licence. */
START_TEST(test_activation_forward_wraps)
{
    size_t big = (size_t)1 << (sizeof(size_t) * 4); /* big * big wraps to 0 */
    BPL_EXPECT_ERROR(bpl_activation_forward(BPL_ACT_RELU, NULL, NULL, big, big),
                     BPL_ERR_OVERFLOW, "bpl_activation_forward");
    float a[4] = {-1, 1, -2, 2};
    BPL_EXPECT_ERROR(bpl_activation_forward(BPL_ACT_RELU, a, NULL, HALF, 2),
                     BPL_ERR_OVERFLOW, "bpl_activation_forward");
    BPL_EXPECT_ERROR(bpl_activation_forward(BPL_ACT_RELU, a, NULL, SIZE_MAX >> 2, 2),
                     BPL_ERR_OVERFLOW, "bpl_activation_forward");
    ck_assert(a[0] == -1.0f && a[3] == 2.0f);
    BPL_OK_OR_FAIL(bpl_activation_forward(BPL_ACT_RELU, a, NULL, 2, 2));
    ck_assert(a[0] == 0.0f && a[3] == 2.0f);
}
END_TEST

/* Every dimension and leading dimension of bpl_gemm is checked against
 * BLAS's int before a matrix is touched. */
START_TEST(test_gemm_dimensions)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {0};
    size_t big = (size_t)INT_MAX + 1;
    BPL_EXPECT_ERROR(bpl_gemm(NULL, 0, 0, big, 2, 2, 1, a, 2, b, 2, 0, c, 2),
                     BPL_ERR_OVERFLOW, "bpl_gemm");
    BPL_EXPECT_ERROR(bpl_gemm(NULL, 0, 0, 2, big, 2, 1, a, 2, b, big, 0, c, big),
                     BPL_ERR_OVERFLOW, "bpl_gemm");
    BPL_EXPECT_ERROR(bpl_gemm(NULL, 0, 0, 2, 2, big, 1, a, big, b, 2, 0, c, 2),
                     BPL_ERR_OVERFLOW, "bpl_gemm");
    BPL_EXPECT_ERROR(bpl_gemm(NULL, 1, 1, 2, 2, big, 1, a, 2, b, big, 0, c, 2),
                     BPL_ERR_OVERFLOW, "bpl_gemm");
    BPL_EXPECT_ERROR(bpl_gemm(NULL, 0, 0, 2, 2, 2, 1, a, SIZE_MAX, b, 2, 0, c, 2),
                     BPL_ERR_OVERFLOW, "bpl_gemm");
    ck_assert(c[0] == 0.0f && c[3] == 0.0f);
    BPL_OK_OR_FAIL(bpl_gemm(NULL, 0, 0, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2));
    ck_assert(c[0] == 1.0f && c[3] == 4.0f);
}
END_TEST

/* n x n_features of pixels is checked before the labels are read. */
START_TEST(test_dataset_from_u8_wraps)
{
    uint8_t pixels[4] = {0}, labels[4] = {0};
    bpl_dataset *ds = NULL;
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, HALF, 2, 2), BPL_ERR_OVERFLOW,
                     "bpl_dataset_from_u8");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_dataset_from_f32_wraps)
{
    float x[4] = {0}, y[4] = {0};
    bpl_dataset *ds;
    /* n x n_features, n x n_targets, and either as bytes of floats */
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, HALF, 2, 1), BPL_ERR_OVERFLOW,
                     "bpl_dataset_from_f32");
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, HALF, 1, 2), BPL_ERR_OVERFLOW,
                     "bpl_dataset_from_f32");
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, (SIZE_MAX >> 2) + 1, 1, 1),
                     BPL_ERR_OVERFLOW, "bpl_dataset_from_f32");
    ck_assert_ptr_null(ds);
}
END_TEST

static bpl_dataset *three_examples(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {1, 0, 0, 1, 1, 0};
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 3, 2, 2));
    return ds;
}

/* start + count may wrap: the range is checked as count <= n - start, and the
 * message gives start and count as the caller passed them. */
START_TEST(test_dataset_ranges)
{
    bpl_dataset *ds = three_examples(), *slice;
    char start_max[64];
    snprintf(start_max, sizeof start_max, "start %zu", (size_t)SIZE_MAX);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, SIZE_MAX, 2), BPL_ERR_RANGE, start_max);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, 1, SIZE_MAX), BPL_ERR_RANGE,
                     "bpl_dataset_slice");
    float x[4], y[4];
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, SIZE_MAX, 2, x, 4, y, 4), BPL_ERR_RANGE, start_max);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 1, SIZE_MAX, x, 4, y, 4), BPL_ERR_RANGE,
                     "bpl_dataset_get");
    /* count x features is bounded by the dataset; a length that disagrees is SHAPE */
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 1, 2, x, SIZE_MAX, y, 4), BPL_ERR_SHAPE,
                     "bpl_dataset_get");
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 1, 2, x, 4, y, SIZE_MAX), BPL_ERR_SHAPE,
                     "bpl_dataset_get");
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 1, 2, x, 4, y, 4));
    ck_assert(x[0] == 3.0f && y[3] == 0.0f);
    bpl_dataset_destroy(ds);
}
END_TEST

/* Tensor lengths are compared with rows x cols of a tensor that exists, whose
 * size was checked when it was made. */
START_TEST(test_tensor_lengths)
{
    bpl_net *net = linear_net(2, 2);
    bpl_layer *layer = bpl_net_layer(net, 0);
    float buf[4] = {0};
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", buf, SIZE_MAX), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", buf, 4 + HALF), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", buf, SIZE_MAX), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", buf, 4 + HALF), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    bpl_net_destroy(net);
}
END_TEST

/* rows x cols of a new tensor, capacity x cols of a new buffer, units x
 * inputs of a new layer. */
START_TEST(test_new_shapes)
{
    bpl_net *net;
    BPL_EXPECT_ERROR(bpl_net_create(&net, SIZE_MAX, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_create");
    BPL_OK_OR_FAIL(bpl_net_create(&net, 2, 1));
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, HALF, BPL_ACT_RELU, BPL_INIT_ZERO),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", HALF, 2, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_OVERFLOW, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 2, HALF, BPL_GROUP_FORWARD,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_OVERFLOW, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "b", HALF), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 2);
    bpl_net_destroy(net);
}
END_TEST

static Suite *overflow_suite(void)
{
    Suite *s = suite_create("overflow");
    TCase *tc = tcase_create("net");
    tcase_add_test(tc, test_predict_out_len_wraps);
    tcase_add_test(tc, test_predict_input_wraps);
    tcase_add_test(tc, test_train_batch_wraps);
    tcase_add_test(tc, test_alignment_wraps);
    tcase_add_test(tc, test_fit_batch_size_max);
    suite_add_tcase(s, tc);

    tc = tcase_create("building blocks");
    tcase_add_test(tc, test_activation_forward_wraps);
    tcase_add_test(tc, test_gemm_dimensions);
    suite_add_tcase(s, tc);

    tc = tcase_create("datasets");
    tcase_add_test(tc, test_dataset_from_u8_wraps);
    tcase_add_test(tc, test_dataset_from_f32_wraps);
    tcase_add_test(tc, test_dataset_ranges);
    suite_add_tcase(s, tc);

    tc = tcase_create("layers");
    tcase_add_test(tc, test_tensor_lengths);
    tcase_add_test(tc, test_new_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(overflow_suite());
}
