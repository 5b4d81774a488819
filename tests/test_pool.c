/*
 * test_pool.c - the pooling kinds (maxpool2d, avgpool2d) and layers
 * without parameters through the library, against ground truth:
 *
 *  - a batch on 2 threads gives the bits of 1;
 *  - forward against direct loops over shapes with stride below, at and
 *    above the window, non-square inputs, several channels, a window as
 *    large as the input and a remainder the floor drops;
 *  - the error sent to the input against finite differences of the
 *    forward, with distinct inputs so that every maximum is unique; ties go
 *    to the first maximum, and so does a NaN; overlapping windows add;
 *    alpha and beta; 2x2 max pooling's portable loops again, where the CPU
 *    would run its AVX-512 version;
 *  - shapes and argument errors with their messages; the blocks and passes
 *    that a layer without parameters refuses or skips; a failed allocation
 *    while adding one; saving is refused;
 *  - backprop through conv -> maxpool -> conv -> avgpool -> dense: every
 *    gradient against finite differences; fa with B = W^T gives backprop's
 *    gradients; dfa projects to the layers with parameters only; backprop,
 *    fa and dfa lower the loss; the rules that need a dense matrix are
 *    refused naming the pooling layer; the alignment diagnostic on a net
 *    with pooling layers.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpl_internal.h"
#include "testhooks.h"

typedef struct pool_case {
    size_t c, h, w, kh, kw, stride;
} pool_case;

static const pool_case cases[] = {
    {1, 4, 4, 2, 2, 2}, /* stride = window: side by side */
    {2, 5, 7, 3, 3, 1}, /* stride < window: overlapping, non-square input */
    {3, 6, 5, 2, 2, 3}, /* stride > window: rows and columns skipped */
    {2, 4, 4, 4, 4, 4}, /* the window covers the input: 1x1 */
    {1, 7, 6, 3, 3, 2}, /* (6 - 3) / 2 + 1 = 2: the floor drops the last column */
    {2, 3, 5, 1, 1, 2}, /* a 1x1 window: subsampling */
    {2, 5, 6, 2, 3, 1}, /* a non-square window, as a model file may hold */
    {1, 3, 150, 2, 2, 1}, /* output rows longer than max pooling's scan of 64 */
    {3, 7, 9, 2, 2, 2}, /* 2x2 by 2 over odd extents: the last row and column belong
                           to no window */
    {2, 7, 8, 2, 2, 2}, /* 2x2 by 2 (its own loops: an even width) over an odd height */
    {2, 4, 70, 2, 2, 2}, /* 2x2 by 2 over rows of two whole vectors' pairs and a part */
};
#define N_CASES (sizeof cases / sizeof cases[0])

static size_t extent(size_t n, size_t k, size_t s)
{
    return (n - k) / s + 1;
}

static size_t out_size_of(const pool_case *c)
{
    return c->c * extent(c->h, c->kh, c->stride) * extent(c->w, c->kw, c->stride);
}

static int add_pool(bpl_net *net, int max, size_t window, size_t stride)
{
    return max ? bpl_net_add_maxpool2d(net, window, stride)
               : bpl_net_add_avgpool2d(net, window, stride);
}

/* A net with the case's C x H x W input and one pooling layer: a square
 * window through the public call, another as the loader adds one. */
static bpl_net *pool_net(const pool_case *c, int max)
{
    bpl_net *net;
    const size_t chw[] = {c->c, c->h, c->w};
    BPL_OK_OR_FAIL(bpl_net_create(&net, c->c * c->h * c->w, 1));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    if (c->kh == c->kw) {
        BPL_OK_OR_FAIL(add_pool(net, max, c->kh, c->stride));
        return net;
    }
    const bpl__kind_params q = {.kernel_h = c->kh, .kernel_w = c->kw, .stride = c->stride};
    BPL_OK_OR_FAIL(bpl__net_append_layer(net, max ? &bpl__maxpool2d_kind : &bpl__avgpool2d_kind,
                                         0, &q, BPL_ACT_LINEAR, BPL_INIT_ZERO, 1));
    return net;
}

/* out[n][c][y][x] = max or mean of in[n][c][y s + i][x s + j], i < kh, j < kw:
 * the definition, loop by loop, in double. */
static void direct_pool(const pool_case *c, int max, const float *in, size_t batch,
                        double *out)
{
    size_t ho = extent(c->h, c->kh, c->stride), wo = extent(c->w, c->kw, c->stride);
    for (size_t n = 0; n < batch; n++)
        for (size_t ch = 0; ch < c->c; ch++)
            for (size_t y = 0; y < ho; y++)
                for (size_t x = 0; x < wo; x++) {
                    double best = -INFINITY, sum = 0.0;
                    for (size_t i = 0; i < c->kh; i++)
                        for (size_t j = 0; j < c->kw; j++) {
                            double v = in[((n * c->c + ch) * c->h + y * c->stride + i) * c->w +
                                          x * c->stride + j];
                            best = v > best ? v : best;
                            sum += v;
                        }
                    out[((n * c->c + ch) * ho + y) * wo + x] =
                        max ? best : sum / (double)(c->kh * c->kw);
                }
}

START_TEST(test_forward_matches_direct_loops)
{
    enum { B = 3 };
    for (int max = 0; max < 2; max++)
        for (size_t k = 0; k < N_CASES; k++) {
            const pool_case *c = &cases[k];
            bpl_net *net = pool_net(c, max);
            bpl_layer *layer = bpl_net_layer(net, 0);
            size_t in_size = c->c * c->h * c->w, out_size = out_size_of(c);
            /* C x H_out x W_out, no parameters, always linear. */
            size_t dims[BPL__MAX_DIMS], ndim;
            bpl__layer_shape(layer, dims, &ndim);
            ck_assert_uint_eq(ndim, 3);
            ck_assert_uint_eq(dims[0], c->c);
            ck_assert_uint_eq(dims[1], extent(c->h, c->kh, c->stride));
            ck_assert_uint_eq(dims[2], extent(c->w, c->kw, c->stride));
            ck_assert_uint_eq(bpl_layer_units(layer), out_size);
            ck_assert_uint_eq(bpl_layer_inputs(layer), in_size);
            ck_assert_str_eq(bpl_layer_kind(layer), max ? "maxpool2d" : "avgpool2d");
            ck_assert_int_eq(bpl_layer_activation(layer), BPL_ACT_LINEAR);
            ck_assert_uint_eq(bpl_layer_param_count(layer), 0);
            ck_assert_uint_eq(bpl_layer_tensor_count(layer), 0);
            ck_assert_uint_eq(bpl_net_param_count(net), 0);

            float *in = malloc(B * in_size * sizeof *in);
            float *out = malloc(B * out_size * sizeof *out);
            double *ref = malloc(B * out_size * sizeof *ref);
            uint64_t seed = 3 + k;
            test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
            direct_pool(c, max, in, B, ref);
            BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_LINEAR, out));
            for (size_t i = 0; i < B * out_size; i++)
                ck_assert_msg(max ? out[i] == ref[i] : fabs(out[i] - ref[i]) <= 1e-6,
                              "%s case %zu: out[%zu] %.8g, direct %.8g",
                              max ? "max" : "avg", k, i, (double)out[i], ref[i]);
            /* The activation given applies to every element. */
            BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, out));
            for (size_t i = 0; i < B * out_size; i++)
                ck_assert(fabs(out[i] - tanh(ref[i])) <= 1e-5);
            /* So does prediction, through the net (the layer's own: linear). */
            BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
            BPL_OK_OR_FAIL(bpl_net_predict(net, in, B, out, B * out_size));
            for (size_t i = 0; i < B * out_size; i++)
                ck_assert(fabs(out[i] - ref[i]) <= 1e-6);
            free(in);
            free(out);
            free(ref);
            bpl_net_destroy(net);
        }
}
END_TEST

/* A NaN in a window is the window's maximum: pooling never hides one. */
START_TEST(test_max_keeps_nan)
{
    const pool_case c = {1, 2, 4, 2, 2, 2};
    bpl_net *net = pool_net(&c, 1);
    const float in[] = {1.0f, NAN, 5.0f, 6.0f, 2.0f, 3.0f, 7.0f, 8.0f};
    float out[2];
    BPL_OK_OR_FAIL(bpl_layer_forward(bpl_net_layer(net, 0), in, 1, BPL_ACT_LINEAR, out));
    ck_assert(isnan(out[0]));
    ck_assert_float_eq(out[1], 8.0f);
    bpl_net_destroy(net);
}
END_TEST

/* Put the net in a step by hand with `in` as its input rows: max pooling
 * sends its error through the Jacobian at its input of the step. */
static void enter_step(bpl_net *net, const float *in, size_t batch)
{
    BPL_OK_OR_FAIL(bpl__net_reserve(net, batch));
    net->phase = BPL_PHASE_DIAGNOSE;
    net->batch = batch;
    net->x = in;
}

static void leave_step(bpl_net *net)
{
    net->phase = BPL_PHASE_IDLE;
}

/* The error goes to the first maximum, a NaN being the largest: a NaN in
 * the first row, then ties, a NaN pair below a tie, and equal values. */
START_TEST(test_max_sends_to_the_first_nan)
{
    const pool_case c = {1, 2, 4, 2, 2, 2};
    const float in[2][8] = {{1.0f, NAN, 5.0f, 6.0f, 2.0f, 3.0f, 7.0f, 8.0f},
                            {4.0f, 4.0f, 1.0f, 1.0f, NAN, NAN, 1.0f, 1.0f}};
    const float want[2][8] = {{0, 0.5f, 0, 0, 0, 0, 0, 2.0f}, {0, 0, 2.0f, 0, 0.5f, 0, 0, 0}};
    const float err[2] = {0.5f, 2.0f};
    for (int k = 0; k < 2; k++) {
        bpl_net *net = pool_net(&c, 1);
        float sent[8];
        enter_step(net, in[k], 1);
        BPL_OK_OR_FAIL(bpl_layer_send_error(bpl_net_layer(net, 0), NULL, 0, err, 1, 1.0f, 0.0f,
                                            sent));
        for (int i = 0; i < 8; i++)
            ck_assert_msg(sent[i] == want[k][i], "input %d, element %d: %g, not %g", k, i,
                          (double)sent[i], (double)want[k][i]);
        leave_step(net);
        bpl_net_destroy(net);
    }
}
END_TEST

/* n distinct values 0.05 apart, shuffled, centred on 0: a perturbation
 * below 0.025 moves no maximum. */
static void fill_distinct(float *v, size_t n, uint64_t *seed)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 0.05f * ((float)i - (float)n / 2.0f);
    for (size_t i = n; i > 1; i--) {
        float u;
        test_fill_uniform(&u, 1, 0.0f, 1.0f, seed);
        size_t j = (size_t)(u * (float)i) % i;
        float t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* L = sum r . pool(in), in double. */
static double pooled_loss(bpl_layer *layer, const float *in, const float *r, size_t n_out,
                          float *scratch, size_t batch)
{
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, batch, BPL_ACT_LINEAR, scratch));
    double s = 0.0;
    for (size_t i = 0; i < batch * n_out; i++)
        s += (double)r[i] * scratch[i];
    return s;
}

START_TEST(test_send_error_matches_finite_differences)
{
    enum { B = 2 };
    const double eps = 1e-2;
    for (int max = 0; max < 2; max++)
        for (size_t k = 0; k < N_CASES; k++) {
            const pool_case *c = &cases[k];
            bpl_net *net = pool_net(c, max);
            bpl_layer *layer = bpl_net_layer(net, 0);
            size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
            float *in = malloc(B * in_size * sizeof *in);
            float *r = malloc(B * out_size * sizeof *r);
            float *out = malloc(B * out_size * sizeof *out);
            float *sent = malloc(B * in_size * sizeof *sent);
            uint64_t seed = 13 + k;
            fill_distinct(in, B * in_size, &seed);
            test_fill_uniform(r, B * out_size, -1.0f, 1.0f, &seed);
            enter_step(net, in, B);
            BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, r, B, 1.0f, 0.0f, sent));
            leave_step(net);
            for (size_t i = 0; i < B * in_size; i++) {
                float saved = in[i];
                in[i] = saved + (float)eps;
                double up = pooled_loss(layer, in, r, out_size, out, B);
                in[i] = saved - (float)eps;
                double down = pooled_loss(layer, in, r, out_size, out, B);
                in[i] = saved;
                double numeric = (up - down) / (2 * eps);
                ck_assert_msg(fabs(sent[i] - numeric) <= 1e-4 + 1e-4 * fabs(numeric),
                              "%s case %zu: input error[%zu] %.6g, finite difference %.6g",
                              max ? "max" : "avg", k, i, (double)sent[i], numeric);
            }
            free(in);
            free(r);
            free(out);
            free(sent);
            bpl_net_destroy(net);
        }
}
END_TEST

/* Ties go to the first maximum, row by row; overlapping windows add. */
/* A batch is cut into the library's threads, a slice of examples each:
 * every example's output and error are its own, so 2 threads give the
 * bits of 1, for both kinds over every case. */
START_TEST(test_threads_give_the_same_bits)
{
    enum { B = 9 };
    for (size_t k = 0; k < N_CASES; k++)
        for (int max = 0; max <= 1; max++) {
            const pool_case *c = &cases[k];
            bpl_net *net = pool_net(c, max);
            bpl_layer *layer = bpl_net_layer(net, 0);
            size_t in_size = c->c * c->h * c->w, out_size = out_size_of(c);
            float *in = malloc(B * in_size * sizeof *in), *err = malloc(B * out_size * 4);
            float *out[2], *sent[2];
            uint64_t seed = 3 + k;
            test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
            test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);
            for (size_t t = 0; t < 2; t++) {
                BPL_OK_OR_FAIL(bpl_set_thread_count(t + 1));
                out[t] = malloc(B * out_size * sizeof *out[t]);
                sent[t] = malloc(B * in_size * sizeof *sent[t]);
                BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, out[t]));
                enter_step(net, in, B);
                BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 0.5f, 0.0f, sent[t]));
                leave_step(net);
            }
            BPL_OK_OR_FAIL(bpl_set_thread_count(1));
            ck_assert_msg(memcmp(out[0], out[1], B * out_size * sizeof(float)) == 0,
                          "case %zu (%s): outputs differ on 2 threads", k, max ? "max" : "avg");
            ck_assert_msg(memcmp(sent[0], sent[1], B * in_size * sizeof(float)) == 0,
                          "case %zu (%s): errors differ on 2 threads", k, max ? "max" : "avg");
            for (size_t t = 0; t < 2; t++) {
                free(out[t]);
                free(sent[t]);
            }
            free(in);
            free(err);
            bpl_net_destroy(net);
        }
}
END_TEST

START_TEST(test_max_ties_and_overlaps)
{
    /* 2x2 windows side by side over 2x4: [1 3 | 4 4]
     *                                    [3 3 | 4 2] */
    const pool_case side = {1, 2, 4, 2, 2, 2};
    bpl_net *net = pool_net(&side, 1);
    const float in[] = {1, 3, 4, 4, 3, 3, 4, 2};
    const float err[] = {10, 20};
    float sent[8];
    enter_step(net, in, 1);
    BPL_OK_OR_FAIL(bpl_layer_send_error(bpl_net_layer(net, 0), NULL, 0, err, 1, 1.0f, 0.0f,
                                        sent));
    leave_step(net);
    const float want[] = {0, 10, 20, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < 8; i++)
        ck_assert_msg(sent[i] == want[i], "sent[%zu] %g, want %g", i, (double)sent[i],
                      (double)want[i]);
    bpl_net_destroy(net);

    /* 2x2 windows at stride 1 over 3x3 with the top in the middle: each of
     * the four windows sends its error there. */
    const pool_case over = {1, 3, 3, 2, 2, 1};
    net = pool_net(&over, 1);
    const float peak[] = {0, 1, 0, 2, 9, 3, 0, 4, 0};
    const float e4[] = {1, 2, 4, 8};
    float got[9];
    enter_step(net, peak, 1);
    BPL_OK_OR_FAIL(bpl_layer_send_error(bpl_net_layer(net, 0), NULL, 0, e4, 1, 1.0f, 0.0f,
                                        got));
    leave_step(net);
    for (size_t i = 0; i < 9; i++)
        ck_assert_float_eq(got[i], i == 4 ? 15.0f : 0.0f);
    bpl_net_destroy(net);

    /* Average pooling spreads each error evenly, and overlaps add. */
    net = pool_net(&over, 0);
    float avg[9];
    BPL_OK_OR_FAIL(bpl_layer_send_error(bpl_net_layer(net, 0), NULL, 0, e4, 1, 1.0f, 0.0f,
                                        avg));
    const float spread[] = {0.25f, 0.75f, 0.5f, 1.25f, 3.75f, 2.5f, 1.0f, 3.0f, 2.0f};
    for (size_t i = 0; i < 9; i++)
        ck_assert_float_eq_tol(avg[i], spread[i], 1e-6f);
    bpl_net_destroy(net);
}
END_TEST

/* out = beta out + alpha (...); beta 0 overwrites whatever was there. */
START_TEST(test_factors)
{
    enum { B = 2 };
    /* overlapping windows, and 2x2 by 2 over an odd height (its own loops) */
    for (int run = 0; run < 4; run++) {
        static const pool_case odd_height = {2, 7, 8, 2, 2, 2};
        const pool_case *c = run < 2 ? &cases[1] : &odd_height;
        int max = run % 2;
        bpl_net *net = pool_net(c, max);
        bpl_layer *layer = bpl_net_layer(net, 0);
        size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
        float in[B * 112], err[B * 30], plain[B * 112], scaled[B * 112];
        ck_assert_uint_le(B * in_size, sizeof in / sizeof *in);
        ck_assert_uint_le(B * out_size, sizeof err / sizeof *err);
        uint64_t seed = 7;
        fill_distinct(in, B * in_size, &seed);
        test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);
        enter_step(net, in, B);
        BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, plain));
        for (size_t i = 0; i < B * in_size; i++)
            scaled[i] = 1.0f + (float)i;
        BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 2.0f, 0.5f, scaled));
        for (size_t i = 0; i < B * in_size; i++)
            ck_assert_float_eq_tol(scaled[i], 0.5f * (1.0f + (float)i) + 2.0f * plain[i],
                                   1e-5f);
        for (size_t i = 0; i < B * in_size; i++)
            scaled[i] = NAN;
        BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, scaled));
        ck_assert(memcmp(scaled, plain, B * in_size * sizeof *plain) == 0);
        leave_step(net);
        bpl_net_destroy(net);
    }
}
END_TEST

START_TEST(test_shapes_and_argument_errors)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 60, 1));
    /* No C x H x W input shape. */
    BPL_EXPECT_ERROR(bpl_net_add_maxpool2d(net, 2, 0), BPL_ERR_SHAPE,
                     "bpl_net_add_maxpool2d: layer 0 (maxpool2d) over input 60: a pooling "
                     "layer needs a C x H x W input");
    const size_t chw[] = {3, 4, 5};
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    /* The window does not fit: the layer, its input's shape and the window. */
    BPL_EXPECT_ERROR(bpl_net_add_avgpool2d(net, 5, 1), BPL_ERR_SHAPE,
                     "bpl_net_add_avgpool2d: layer 0 (avgpool2d) over input 3x4x5: window "
                     "5x5 does not fit the 4x5 input");
    BPL_EXPECT_ERROR(bpl_net_add_maxpool2d(net, 0, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_add_maxpool2d: the window must be > 0");
    BPL_EXPECT_ERROR(bpl_net_add_avgpool2d(net, 0, 0), BPL_ERR_INVALID_ARG, "window");
    BPL_EXPECT_ERROR(bpl_net_add_maxpool2d(NULL, 2, 2), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_add_avgpool2d(NULL, 2, 2), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    /* Stride 0 is the window: 3 x 2 x 2; a stride past the input, one window. */
    BPL_OK_OR_FAIL(bpl_net_add_maxpool2d(net, 2, 0));
    BPL_OK_OR_FAIL(bpl_net_add_avgpool2d(net, 1, SIZE_MAX));
    static const size_t want[][3] = {{3, 2, 2}, {3, 1, 1}};
    size_t dims[BPL__MAX_DIMS], ndim;
    for (size_t l = 0; l < 2; l++) {
        bpl__layer_shape(bpl_net_layer(net, l), dims, &ndim);
        ck_assert_uint_eq(ndim, 3);
        ck_assert(memcmp(dims, want[l], sizeof want[l]) == 0);
    }
    /* After a dense layer there is no C x H x W to pool. */
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    BPL_EXPECT_ERROR(bpl_net_add_maxpool2d(net, 1, 1), BPL_ERR_SHAPE,
                     "layer 3 (maxpool2d) over input 2: a pooling layer needs");
    /* Layers come before the rule. */
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_add_avgpool2d(net, 1, 1), BPL_ERR_STATE, "before attaching");
    ck_assert_uint_eq(bpl_net_layer_count(net), 3);
    bpl_net_destroy(net);
}
END_TEST

/* What a loader may hand the kinds' output_shape: only what the public
 * calls make fits. */
START_TEST(test_output_shape_refusals)
{
    const bpl__kind *kinds[] = {&bpl__maxpool2d_kind, &bpl__avgpool2d_kind};
    for (size_t k = 0; k < 2; k++) {
        const bpl__kind *kind = kinds[k];
        ck_assert_ptr_null(kind->weight);
        ck_assert_ptr_null(kind->bias);
        ck_assert(kind->gradients == NULL);
        ck_assert_uint_eq(kind->caps, BPL__CAN_FORWARD | BPL__CAN_SEND_ERROR);
        const size_t in[] = {2, 6, 6};
        size_t dims[BPL__MAX_DIMS], ndim;
        bpl__kind_params q = {.kernel_h = 3, .kernel_w = 2, .stride = 2};
        BPL_OK_OR_FAIL(kind->output_shape(in, 3, 0, &q, dims, &ndim));
        ck_assert_uint_eq(dims[0], 2); /* the channels are the input's */
        ck_assert_uint_eq(dims[1], 2);
        ck_assert_uint_eq(dims[2], 3);
        q.pad = 1;
        BPL_EXPECT_ERROR(kind->output_shape(in, 3, 0, &q, dims, &ndim), BPL_ERR_INVALID_ARG,
                         "no padding");
        q.pad = 0;
        q.kernel_w = 0;
        BPL_EXPECT_ERROR(kind->output_shape(in, 3, 0, &q, dims, &ndim), BPL_ERR_INVALID_ARG,
                         "must be > 0");
        q.kernel_w = 2;
        q.stride = 0;
        BPL_EXPECT_ERROR(kind->output_shape(in, 3, 0, &q, dims, &ndim), BPL_ERR_INVALID_ARG,
                         "must be > 0");
        q.stride = 1;
        q.kernel_w = 7;
        BPL_EXPECT_ERROR(kind->output_shape(in, 3, 0, &q, dims, &ndim), BPL_ERR_SHAPE,
                         "window 3x7 does not fit the 6x6 input");
        q.kernel_w = 1;
        BPL_EXPECT_ERROR(kind->output_shape(in, 2, 0, &q, dims, &ndim), BPL_ERR_SHAPE,
                         "C x H x W");
        const size_t huge[] = {SIZE_MAX / 2, 4, 4};
        BPL_EXPECT_ERROR(kind->output_shape(huge, 3, 0, &q, dims, &ndim), BPL_ERR_OVERFLOW,
                         "above");
    }
    /* Pooling layers are always linear, whoever adds one. */
    bpl_net *net;
    const size_t chw[] = {1, 4, 4};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 1));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    const bpl__kind_params q = {.kernel_h = 2, .kernel_w = 2, .stride = 2};
    BPL_EXPECT_ERROR(bpl__net_append_layer(net, &bpl__maxpool2d_kind, 0, &q, BPL_ACT_RELU,
                                           BPL_INIT_ZERO, 0),
                     BPL_ERR_INVALID_ARG,
                     "bpl_net_add_maxpool2d: a maxpool2d layer has no activation of its own "
                     "(linear), not relu");
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    BPL_OK_OR_FAIL(bpl__net_append_layer(net, &bpl__avgpool2d_kind, 0, &q, BPL_ACT_LINEAR,
                                         BPL_INIT_ZERO, 0));
    ck_assert_uint_eq(bpl_net_outputs(net), 4);
    bpl_net_destroy(net);
}
END_TEST

/* conv 1@3x3 pad 1 over 1x4x4, then a pooling layer, then dense 2. */
static bpl_net *conv_pool_dense(int max)
{
    bpl_net *net;
    const size_t chw[] = {1, 4, 4};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 3));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 2, 3, 3, 1, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(add_pool(net, max, 2, 2));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    return net;
}

/* The blocks a layer without parameters refuses, and those it passes. */
START_TEST(test_blocks_on_a_layer_without_parameters)
{
    enum { B = 2 };
    bpl_net *net = conv_pool_dense(1);
    bpl_layer *conv = bpl_net_layer(net, 0), *pool = bpl_net_layer(net, 1);
    ck_assert_uint_eq(bpl_net_param_count(net),
                      bpl_layer_param_count(conv) + bpl_layer_param_count(bpl_net_layer(net, 2)));
    ck_assert_uint_eq(bpl_layer_param_count(conv), 2 * 9 + 2);
    ck_assert_uint_eq(bpl_layer_param_count(NULL), 0);
    ck_assert_ptr_null(bpl_layer_kind(NULL));
    ck_assert_str_eq(bpl_layer_kind(conv), "conv2d");
    ck_assert_str_eq(bpl_layer_kind(bpl_net_layer(net, 2)), "dense");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(pool, "weight", NULL, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "layer 1 has no tensor 'weight'");
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(pool, "weight", 1), BPL_ERR_NOT_FOUND, "weight");

    float in[B * 32], err[B * 8], out[B * 32];
    uint64_t seed = 5;
    fill_distinct(in, B * 32, &seed);
    test_fill_uniform(err, B * 8, -1.0f, 1.0f, &seed);
    BPL_EXPECT_ERROR(bpl_layer_gradients(pool, err, in, B, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_UNSUPPORTED, "layer 1 (kind 'maxpool2d') does not provide "
                                          "parameter gradients");
    BPL_EXPECT_ERROR(bpl_layer_send_error(pool, "feedback", 0, err, B, 1.0f, 0.0f, out),
                     BPL_ERR_INVALID_ARG, "has no parameters: its error goes through its "
                                          "own Jacobian");
    /* Max pooling's Jacobian is at the step's input: only within a step,
     * for its batch. */
    BPL_EXPECT_ERROR(bpl_layer_send_error(pool, NULL, 0, err, B, 1.0f, 0.0f, out),
                     BPL_ERR_STATE, "call it from a rule hook");
    test_attach(net, "backprop");
    float x[B * 16], y[B * 2];
    test_fill_uniform(x, B * 16, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 2, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    net->phase = BPL_PHASE_DIAGNOSE;
    BPL_EXPECT_ERROR(bpl_layer_send_error(pool, NULL, 0, err, 1, 1.0f, 0.0f, out),
                     BPL_ERR_SHAPE, "2 rows, not 1");
    /* What backprop sent down, the block sends: the delta of the layer
     * below is that times act'. */
    const float *a0 = test_buffer(net, 0, "activation"), *d0 = test_buffer(net, 0, "delta");
    const float *d1 = test_buffer(net, 1, "delta");
    BPL_OK_OR_FAIL(bpl_layer_send_error(pool, NULL, 0, d1, B, 1.0f, 0.0f, out));
    for (size_t i = 0; i < B * 32; i++)
        ck_assert_float_eq_tol(d0[i], out[i] * (1.0f - a0[i] * a0[i]), 1e-6f);
    /* The net-level pass: m NULL is the layer's own map, for a dense layer
     * its weight (the same bits backprop got); a pooling layer takes no m,
     * and has no gradients to take (nothing done). */
    float d1_before[B * 8];
    memcpy(d1_before, d1, sizeof d1_before);
    BPL_OK_OR_FAIL(bpl_net_project_delta(net, 2, 1, NULL, 0));
    ck_assert(memcmp(d1, d1_before, sizeof d1_before) == 0);
    float *w;
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, 2), "weight", &w, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_net_project_delta(net, 1, 0, w, 1), BPL_ERR_INVALID_ARG,
                     "layer 1 (kind 'maxpool2d') has no parameters");
    BPL_EXPECT_ERROR(bpl_net_project_delta(net, 2, 0, NULL, 0), BPL_ERR_SHAPE,
                     "own map (m NULL) only sends to the layer just below");
    BPL_OK_OR_FAIL(bpl_net_weight_gradients(net, 1));
    net->phase = BPL_PHASE_IDLE;
    bpl_net_destroy(net);
}
END_TEST

/* Every allocation of adding a pooling layer may fail: the call fails
 * cleanly, the net keeps its layers, a later call succeeds.  With batch
 * buffers sized already (after a prediction) the new layer's are made too. */
START_TEST(test_add_survives_allocation_failure)
{
    const size_t chw[] = {2, 4, 4};
    float x[32] = {0}, out[2 * 2 * 2];
    for (int sized = 0; sized < 2; sized++) {
        int failed = 0;
        for (uint64_t k = 1;; k++) {
            bpl_net *net;
            BPL_OK_OR_FAIL(bpl_net_create(&net, 32, 1));
            BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
            BPL_OK_OR_FAIL(bpl_net_add_avgpool2d(net, 2, 2));
            BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
            if (sized)
                BPL_OK_OR_FAIL(bpl_net_predict(net, x, 1, out, 8));
            bpl__alloc_fail_at(k);
            int rc = bpl_net_add_maxpool2d(net, 2, 1);
            bpl__alloc_fail_at(0);
            if (rc == BPL_OK) {
                ck_assert_uint_eq(bpl_net_layer_count(net), 2);
                bpl_net_destroy(net);
                break;
            }
            ck_assert_int_eq(rc, BPL_ERR_NOMEM);
            ck_assert_uint_eq(bpl_net_layer_count(net), 1);
            BPL_OK_OR_FAIL(bpl_net_add_maxpool2d(net, 2, 1));
            BPL_OK_OR_FAIL(bpl_net_predict(net, x, 1, out, 2));
            bpl_net_destroy(net);
            failed++;
        }
        /* the layer, its buffer table and, sized, the buffers' storage */
        ck_assert_int_ge(failed, sized ? 4 : 2);
    }
}
END_TEST

/* The file format does not store pooling layers yet: no file is written
 * that could not be loaded. */

/* ---- rules on nets with pooling layers ------------------------------------------ */

/* 1x9x9 -> conv 3@2x2 (tanh) -> maxpool 2 -> conv 4@2x2 pad 1 (tanh)
 * -> avgpool 2 stride 1 -> dense 3 (softmax). */
static bpl_net *lenet_like(uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {1, 9, 9};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 81, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 3, 2, 2, 1, 0, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_maxpool2d(net, 2, 0));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 4, 2, 2, 1, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_avgpool2d(net, 2, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    uint64_t s = seed + 100;
    for (size_t l = 0; l < 5; l++) {
        if (!bpl_layer_param_count(bpl_net_layer(net, l)))
            continue;
        float *b;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "bias", &b, &rows, &cols));
        test_fill_uniform(b, rows * cols, -0.5f, 0.5f, &s);
    }
    return net;
}

/* A net with both poolings goes through a model file and comes back the
 * same: layers, windows, predictions and further training, bit for bit. */
START_TEST(test_pooling_net_round_trips)
{
    float x[6 * 81], y[6 * 3], p[6 * 3], q[6 * 3];
    uint64_t s = 3;
    test_fill_uniform(x, 6 * 81, -1.0f, 1.0f, &s);
    test_fill_onehot(y, 6, 3, &s);
    bpl_net *net = lenet_like(4);
    test_attach(net, "backprop");
    for (int i = 0; i < 3; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, NULL));
    void *bytes;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &bytes, &size));
    bpl_net *copy;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&copy, bytes, size));
    bpl_buffer_free(bytes);
    ck_assert_str_eq(bpl_layer_kind(bpl_net_layer(copy, 1)), "maxpool2d");
    ck_assert_str_eq(bpl_layer_kind(bpl_net_layer(copy, 3)), "avgpool2d");
    const bpl__kind_params *window = &bpl_net_layer(copy, 3)->params;
    ck_assert(window->kernel_h == 2 && window->kernel_w == 2 && window->stride == 1 &&
              window->pad == 0);
    ck_assert_int_eq(bpl_layer_activation(bpl_net_layer(copy, 1)), BPL_ACT_LINEAR);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 6, p, 18));
    BPL_OK_OR_FAIL(bpl_net_predict(copy, x, 6, q, 18));
    ck_assert(memcmp(p, q, sizeof p) == 0);
    for (int i = 0; i < 2; i++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(copy, x, y, 6, NULL));
    }
    size_t n;
    float *want = test_snapshot(net, &n);
    ck_assert(test_same_params(copy, want, n));
    free(want);
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
}
END_TEST
#define LENET_IN 81
#define LENET_OUT 3
#define LENET_LAYERS 5

START_TEST(test_lenet_like_shapes)
{
    bpl_net *net = lenet_like(1);
    static const size_t want[][3] = {{3, 8, 8}, {3, 4, 4}, {4, 5, 5}, {4, 4, 4}};
    size_t dims[BPL__MAX_DIMS], ndim;
    for (size_t l = 0; l < 4; l++) {
        bpl__layer_shape(bpl_net_layer(net, l), dims, &ndim);
        ck_assert_uint_eq(ndim, 3);
        ck_assert(memcmp(dims, want[l], sizeof want[l]) == 0);
    }
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 4)), 64);
    ck_assert_uint_eq(bpl_net_param_count(net), (3 * 4 + 3) + (4 * 12 + 4) + (3 * 64 + 3));
    bpl_net_destroy(net);
}
END_TEST

static double net_loss(bpl_net *net, const float *x, const float *y, size_t batch)
{
    float out[8 * LENET_OUT];
    ck_assert_uint_le(batch * LENET_OUT, sizeof out / sizeof *out);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, batch, out, batch * LENET_OUT));
    double total = 0.0;
    for (size_t i = 0; i < batch * LENET_OUT; i++)
        total -= y[i] * log(out[i]);
    return total / (double)batch;
}

/* Which element of each max-pooling window is its maximum, after the last
 * prediction (the maxpool's input is layer 0's activation). */
static void argmax_pattern(bpl_net *net, size_t batch, size_t *pattern)
{
    const float *a = test_buffer(net, 0, "activation");
    size_t p = 0;
    for (size_t n = 0; n < batch; n++)
        for (size_t c = 0; c < 3; c++)
            for (size_t oy = 0; oy < 4; oy++)
                for (size_t ox = 0; ox < 4; ox++) {
                    size_t best = 0;
                    float top = -INFINITY;
                    for (size_t i = 0; i < 4; i++) {
                        float v = a[((n * 3 + c) * 8 + 2 * oy + i / 2) * 8 + 2 * ox + i % 2];
                        if (v > top) {
                            top = v;
                            best = i;
                        }
                    }
                    pattern[p++] = best;
                }
}

/* The central difference of the loss in one parameter, and whether the
 * maxima stayed where they were on both sides (a kink in between makes the
 * difference meaningless). */
static double central_difference(bpl_net *net, float *w, double eps, const float *x,
                                 const float *y, size_t batch, const size_t *base,
                                 size_t *scratch, size_t n_pattern, int *smooth)
{
    float saved = *w;
    *w = saved + (float)eps;
    double up = net_loss(net, x, y, batch);
    argmax_pattern(net, batch, scratch);
    *smooth = memcmp(scratch, base, n_pattern * sizeof *base) == 0;
    *w = saved - (float)eps;
    double down = net_loss(net, x, y, batch);
    argmax_pattern(net, batch, scratch);
    *smooth = *smooth && memcmp(scratch, base, n_pattern * sizeof *base) == 0;
    *w = saved;
    return (up - down) / (2 * eps);
}

START_TEST(test_backprop_gradients_through_pooling)
{
    enum { B = 4, N_PATTERN = B * 3 * 4 * 4 };
    bpl_net *net = lenet_like(17);
    test_attach(net, "backprop");
    float x[B * LENET_IN], y[B * LENET_OUT];
    uint64_t seed = 23;
    test_fill_uniform(x, B * LENET_IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, LENET_OUT, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    size_t base[N_PATTERN], moved[N_PATTERN];
    net_loss(net, x, y, B);
    argmax_pattern(net, B, base);
    size_t checked = 0, kinks = 0;
    for (size_t l = 0; l < LENET_LAYERS; l++) {
        if (!bpl_layer_param_count(bpl_net_layer(net, l)))
            continue;
        for (const char *const *name = (const char *const[]){"weight", "bias", NULL}; *name;
             name++) {
            float *w, *g = test_grad(net, l, *name);
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), *name, &w, &rows, &cols));
            for (size_t i = 0; i < rows * cols; i++) {
                int smooth;
                double numeric = central_difference(net, &w[i], 1e-2, x, y, B, base, moved,
                                                    N_PATTERN, &smooth);
                if (!smooth) /* a maximum moved: come closer */
                    numeric = central_difference(net, &w[i], 1e-3, x, y, B, base, moved,
                                                 N_PATTERN, &smooth);
                checked++;
                if (!smooth) {
                    kinks++;
                    continue;
                }
                ck_assert_msg(fabs(numeric - g[i]) <=
                                  3e-4 + 2e-2 * fmax(fabs(numeric), fabs(g[i])),
                              "layer %zu %s[%zu]: backprop %.6g, finite difference %.6g", l,
                              *name, i, (double)g[i], numeric);
            }
        }
    }
    ck_assert_uint_eq(checked, bpl_net_param_count(net));
    ck_assert_msg(kinks <= checked / 50, "%zu of %zu parameters at a kink", kinks, checked);
    bpl_net_destroy(net);
}
END_TEST

/* fa sends through a pooling layer's own Jacobian, with no B of its own;
 * with B = W on the other layers its gradients are backprop's, bit for bit. */
START_TEST(test_fa_with_b_equal_w_is_backprop)
{
    enum { B = 4 };
    float x[B * LENET_IN], y[B * LENET_OUT];
    uint64_t seed = 41;
    test_fill_uniform(x, B * LENET_IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, LENET_OUT, &seed);
    bpl_net *bp = lenet_like(43), *fa = lenet_like(43);
    test_attach(bp, "backprop");
    test_attach(fa, "fa");
    for (size_t l = 1; l < LENET_LAYERS; l++) {
        bpl_layer *layer = bpl_net_layer(fa, l);
        if (!bpl_layer_param_count(layer)) {
            BPL_EXPECT_ERROR(bpl_layer_tensor_info(layer, "feedback", NULL, NULL, NULL),
                             BPL_ERR_NOT_FOUND, "feedback");
            continue;
        }
        float *w, *b;
        size_t rows, cols, brows, bcols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, &rows, &cols));
        BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "feedback", &b, &brows, &bcols));
        /* B has W^T's layout on a dense layer, W's own on a conv layer. */
        int dense = strcmp(bpl_layer_kind(layer), "dense") == 0;
        ck_assert_uint_eq(brows, dense ? cols : rows);
        ck_assert_uint_eq(bcols, dense ? rows : cols);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                b[dense ? j * rows + i : i * cols + j] = w[i * cols + j];
    }
    test_run_hooks(bp, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    test_run_hooks(fa, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    for (size_t l = 0; l < LENET_LAYERS; l++) {
        if (!bpl_layer_param_count(bpl_net_layer(bp, l)))
            continue;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(bp, l), "weight", &rows, &cols,
                                             NULL));
        const float *g1 = test_grad(bp, l, "weight"), *g2 = test_grad(fa, l, "weight");
        /* Bit for bit: through pooling, B = W sends what W sends. */
        for (size_t i = 0; i < rows * cols; i++)
            ck_assert_msg(memcmp(&g1[i], &g2[i], sizeof g1[i]) == 0,
                          "layer %zu weight[%zu]: backprop %.9g, fa %.9g", l, i,
                          (double)g1[i], (double)g2[i]);
    }
    bpl_net_destroy(bp);
    bpl_net_destroy(fa);
}
END_TEST

/* delta = (e B^T) (.) tanh'(a) for an example: `e` [LENET_OUT], B [units][LENET_OUT]. */
static void projection(const float *e, const float *fb, size_t units, double *out)
{
    for (size_t u = 0; u < units; u++) {
        out[u] = 0.0;
        for (size_t o = 0; o < LENET_OUT; o++)
            out[u] += (double)e[o] * fb[u * LENET_OUT + o];
    }
}

static void assert_delta(const float *d, const double *expected, size_t units, size_t l,
                         size_t n)
{
    for (size_t u = 0; u < units; u++)
        ck_assert_msg(fabs(d[u] - expected[u]) <= 1e-6 + 1e-5 * fabs(expected[u]),
                      "layer %zu delta[%zu][%zu] %.8g, expected %.8g", l, n, u, (double)d[u],
                      expected[u]);
}

/* With "projection" unpooled, dfa sends the output error to each layer
 * with parameters at its own output: delta = (e B^T) (.) act', B
 * [units][outputs]; a pooling layer gets no B. */
START_TEST(test_dfa_unpooled_projects_to_layers_with_parameters)
{
    enum { B = 4 };
    float x[B * LENET_IN], y[B * LENET_OUT];
    double expected[192];
    uint64_t seed = 47;
    test_fill_uniform(x, B * LENET_IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, LENET_OUT, &seed);
    bpl_net *net = lenet_like(49);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "dfa"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "projection", "unpooled"));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    for (size_t l = 0; l + 1 < LENET_LAYERS; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t rows, cols;
        int rc = bpl_layer_tensor_info(layer, "feedback", &rows, &cols, NULL);
        if (!bpl_layer_param_count(layer)) {
            ck_assert_int_eq(rc, BPL_ERR_NOT_FOUND);
            continue;
        }
        BPL_OK_OR_FAIL(rc);
        ck_assert_uint_eq(rows, bpl_layer_units(layer));
        ck_assert_uint_eq(cols, LENET_OUT);
    }
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    const float *e = test_buffer(net, LENET_LAYERS - 1, "delta");
    for (size_t l = 0; l < 3; l += 2) {
        size_t units = bpl_layer_units(bpl_net_layer(net, l));
        ck_assert_uint_le(units, 192);
        const float *fb = test_tensor(net, l, "feedback");
        const float *a = test_buffer(net, l, "activation"), *d = test_buffer(net, l, "delta");
        for (size_t n = 0; n < B; n++) {
            projection(e + n * LENET_OUT, fb, units, expected);
            for (size_t u = 0; u < units; u++)
                expected[u] *= 1.0 - (double)a[n * units + u] * a[n * units + u];
            assert_delta(d + n * units, expected, units, l, n);
        }
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, l), "weight", &rows, &cols,
                                             NULL));
        ck_assert_double_gt(test_max_abs(test_grad(net, l, "weight"), rows * cols), 0.0);
    }
    bpl_net_destroy(net);
}
END_TEST

/* By default ("projection" pooled), the error of a conv layer followed by
 * pooling arrives at the pooling's output, through B [pooled units]
 * [outputs] held by the conv layer, and goes down the pooling's routing,
 * computed here from the definitions: max pooling (2x2, stride 2, over
 * 3x8x8) hands each window's error to its first maximum, average pooling
 * (2x2, stride 1, over 4x5x5: overlapping) a quarter to each of its inputs,
 * the overlaps adding; then times tanh'.  The rule is fixed once
 * attached. */
START_TEST(test_dfa_pooled_projects_through_the_pooling)
{
    enum { B = 4 };
    float x[B * LENET_IN], y[B * LENET_OUT];
    double pooled[64], expected[192];
    uint64_t seed = 53;
    test_fill_uniform(x, B * LENET_IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, LENET_OUT, &seed);
    bpl_net *net = lenet_like(59);
    test_attach(net, "dfa");
    bpl_rule *rule = bpl_net_rule(net);
    ck_assert_int_eq(bpl_rule_set_string(rule, "projection", "unpooled"), BPL_ERR_STATE);
    double value;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, "projection", &value));
    ck_assert_double_eq(value, 0.0); /* pooled */
    const size_t rows_of[] = {48, 0, 64, 0}; /* the pooled maps' units */
    for (size_t l = 0; l + 1 < LENET_LAYERS; l++) {
        size_t rows, cols;
        int rc = bpl_layer_tensor_info(bpl_net_layer(net, l), "feedback", &rows, &cols, NULL);
        if (!rows_of[l]) {
            ck_assert_int_eq(rc, BPL_ERR_NOT_FOUND);
            continue;
        }
        BPL_OK_OR_FAIL(rc);
        ck_assert_uint_eq(rows, rows_of[l]);
        ck_assert_uint_eq(rows, bpl_layer_units(bpl_net_layer(net, l + 1)));
        ck_assert_uint_eq(cols, LENET_OUT);
    }
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    const float *e = test_buffer(net, LENET_LAYERS - 1, "delta");
    for (size_t n = 0; n < B; n++) {
        /* conv 0 (3x8x8) -> maxpool 2x2 -> 3x4x4 */
        const float *a = test_buffer(net, 0, "activation") + n * 192;
        projection(e + n * LENET_OUT, test_tensor(net, 0, "feedback"), 48, pooled);
        memset(expected, 0, sizeof expected);
        for (size_t c = 0; c < 3; c++)
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++) {
                    size_t best = c * 64 + 2 * i * 8 + 2 * j;
                    for (size_t di = 0; di < 2; di++)
                        for (size_t dj = 0; dj < 2; dj++) {
                            size_t u = c * 64 + (2 * i + di) * 8 + 2 * j + dj;
                            if (a[u] > a[best])
                                best = u;
                        }
                    expected[best] += pooled[c * 16 + i * 4 + j];
                }
        for (size_t u = 0; u < 192; u++)
            expected[u] *= 1.0 - (double)a[u] * a[u];
        assert_delta(test_buffer(net, 0, "delta") + n * 192, expected, 192, 0, n);

        /* conv 2 (4x5x5) -> avgpool 2x2 stride 1 -> 4x4x4 */
        a = test_buffer(net, 2, "activation") + n * 100;
        projection(e + n * LENET_OUT, test_tensor(net, 2, "feedback"), 64, pooled);
        memset(expected, 0, sizeof expected);
        for (size_t c = 0; c < 4; c++)
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++)
                    for (size_t di = 0; di < 2; di++)
                        for (size_t dj = 0; dj < 2; dj++)
                            expected[c * 25 + (i + di) * 5 + j + dj] +=
                                pooled[c * 16 + i * 4 + j] / 4.0;
        for (size_t u = 0; u < 100; u++)
            expected[u] *= 1.0 - (double)a[u] * a[u];
        assert_delta(test_buffer(net, 2, "delta") + n * 100, expected, 100, 2, n);
    }
    bpl_net_destroy(net);
}
END_TEST

/* Backprop, fa and dfa lower the loss of a small conv + pooling net on a
 * separable task. */
START_TEST(test_rules_train_a_pooling_net)
{
    enum { N = 32 };
    static const char *const rules[] = {"backprop", "fa", "dfa"};
    for (size_t r = 0; r < 3; r++) {
        bpl_net *net = lenet_like(29);
        test_attach(net, rules[r]);
        BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.05));
        float x[N * LENET_IN], y[N * LENET_OUT];
        uint64_t seed = 37;
        test_fill_onehot(y, N, LENET_OUT, &seed);
        /* The class is which third of the image (by rows) is bright, plus noise. */
        test_fill_uniform(x, N * LENET_IN, -0.3f, 0.3f, &seed);
        for (size_t n = 0; n < N; n++)
            for (size_t c = 0; c < LENET_OUT; c++)
                if (y[n * LENET_OUT + c] > 0.5f)
                    for (size_t i = 0; i < 27; i++)
                        x[n * LENET_IN + c * 27 + i] += 1.0f;
        double before = net_loss(net, x, y, 8);
        double first = 0.0, loss = 0.0;
        for (int step = 0; step < 60; step++) {
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, &loss));
            if (step == 0)
                first = loss;
        }
        double after = net_loss(net, x, y, 8);
        ck_assert_msg(loss < 0.5 * first && after < 0.5 * before,
                      "%s: loss %.4g -> %.4g (first 8: %.4g -> %.4g)", rules[r], first, loss,
                      before, after);
        /* Evaluation runs the same forward pass. */
        bpl_dataset *ds;
        double accuracy, eval_loss;
        BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, LENET_IN, LENET_OUT));
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &accuracy, &eval_loss));
        ck_assert_double_ge(accuracy, 0.9);
        ck_assert_double_lt(eval_loss, 0.5 * first);
        bpl_dataset_destroy(ds);
        bpl_net_destroy(net);
    }
}
END_TEST

/* The rules whose maths multiplies by W as a matrix are refused, naming
 * the pooling layer; backprop, fa and dfa attach. */
START_TEST(test_dense_rules_refused)
{
    static const char *const dense_only[] = {"tp", "dtp", "sdtp", "segregated",
                                             "microcircuit"};
    for (int max = 0; max < 2; max++) {
        bpl_net *net;
        const size_t chw[] = {1, 4, 4};
        BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 1));
        BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
        BPL_OK_OR_FAIL(add_pool(net, max, 2, 2));
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
        char want[96];
        snprintf(want, sizeof want, "which layer 0 (kind '%s') does not provide",
                 max ? "maxpool2d" : "avgpool2d");
        for (size_t r = 0; r < sizeof dense_only / sizeof *dense_only; r++) {
            bpl_rule *rule;
            BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, dense_only[r]));
            BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_UNSUPPORTED, want);
            /* dtp and sdtp need a transposed map (conv layers have one), the
             * others a dense matrix: a pooling layer has neither. */
            ck_assert_msg((strstr(bpl_last_error_message(), "a dense weight matrix") ||
                           strstr(bpl_last_error_message(), "a transposed map")) &&
                              strstr(bpl_last_error_message(), dense_only[r]),
                          "%s", bpl_last_error_message());
            ck_assert_ptr_null(bpl_net_rule(net));
            bpl_rule_destroy(rule);
        }
        for (const char *const *r = (const char *const[]){"backprop", "fa", "dfa", NULL}; *r;
             r++)
            test_attach(net, *r);
        bpl_net_destroy(net);
    }
}
END_TEST

/* A rule that declares nothing needs everything, a dense matrix too: it is
 * refused on a net with pooling layers rather than finding no weight. */
static int noop_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int noop_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    (void)net;
    (void)y;
    (void)batch;
    return BPL_OK;
}

static int noop_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    (void)self;
    (void)net;
    *groups = 0;
    return BPL_OK;
}

START_TEST(test_undeclared_needs_refused)
{
    bpl_net *net = conv_pool_dense(0);
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "mine";
    vt.forward = noop_forward;
    vt.compute_targets = noop_targets;
    vt.gradients = noop_gradients;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    /* The conv layer comes first: it lacks the dense matrix too. */
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_UNSUPPORTED,
                     "layer 0 (kind 'conv2d')");
    /* Needing gradients of every layer is no obstacle: pooling has none to give. */
    BPL_OK_OR_FAIL(bpl_rule_set_needs(rule, BPL_NEEDS_FORWARD | BPL_NEEDS_GRADIENTS));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    bpl_net_destroy(net);
}
END_TEST

/* The alignment diagnostic: NaN for the pooling layers, which have no
 * update; backprop against itself 0 degrees elsewhere; fa's hidden layers
 * not. */
START_TEST(test_alignment_with_pooling_layers)
{
    enum { B = 8 };
    float x[B * LENET_IN], y[B * LENET_OUT];
    double angles[LENET_LAYERS];
    uint64_t seed = 51;
    test_fill_uniform(x, B * LENET_IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, LENET_OUT, &seed);
    static const char *const rules[] = {"backprop", "fa", "dfa"};
    for (size_t r = 0; r < 3; r++) {
        bpl_net *net = lenet_like(53);
        test_attach(net, rules[r]);
        BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, B, angles, LENET_LAYERS));
        ck_assert(isnan(angles[1]) && isnan(angles[3]));
        ck_assert_msg(angles[4] < 0.1, "%s output layer: %g degrees", rules[r], angles[4]);
        for (size_t l = 0; l < 3; l += 2) {
            if (r == 0)
                ck_assert_msg(angles[l] < 0.1, "backprop layer %zu: %g degrees", l,
                              angles[l]);
            else
                ck_assert_msg(angles[l] > 1.0 && angles[l] <= 180.0,
                              "%s layer %zu: %g degrees", rules[r], l, angles[l]);
        }
        bpl_net_destroy(net);
    }
}
END_TEST

/* The same routing on 2x2 max pooling's portable loops, which machines
 * without AVX-512 run. */
static void portable_on(void)
{
    bpl__pool_force_portable(1);
}

static void portable_off(void)
{
    bpl__pool_force_portable(0);
}

static TCase *portable_case(void)
{
    TCase *tc = tcase_create("pool-portable");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, portable_on, portable_off);
    tcase_add_test(tc, test_forward_matches_direct_loops);
    tcase_add_test(tc, test_max_keeps_nan);
    tcase_add_test(tc, test_max_sends_to_the_first_nan);
    tcase_add_test(tc, test_send_error_matches_finite_differences);
    tcase_add_test(tc, test_max_ties_and_overlaps);
    tcase_add_test(tc, test_factors);
    tcase_add_test(tc, test_backprop_gradients_through_pooling);
    tcase_add_test(tc, test_dfa_pooled_projects_through_the_pooling);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_forward_matches_direct_loops);
    tcase_add_test(tc, test_max_keeps_nan);
    tcase_add_test(tc, test_max_sends_to_the_first_nan);
    tcase_add_test(tc, test_send_error_matches_finite_differences);
    tcase_add_test(tc, test_threads_give_the_same_bits);
    tcase_add_test(tc, test_max_ties_and_overlaps);
    tcase_add_test(tc, test_factors);
    tcase_add_test(tc, test_shapes_and_argument_errors);
    tcase_add_test(tc, test_output_shape_refusals);
    tcase_add_test(tc, test_blocks_on_a_layer_without_parameters);
    tcase_add_test(tc, test_add_survives_allocation_failure);
    tcase_add_test(tc, test_pooling_net_round_trips);
    tcase_add_test(tc, test_lenet_like_shapes);
    tcase_add_test(tc, test_backprop_gradients_through_pooling);
    tcase_add_test(tc, test_fa_with_b_equal_w_is_backprop);
    tcase_add_test(tc, test_dfa_unpooled_projects_to_layers_with_parameters);
    tcase_add_test(tc, test_dfa_pooled_projects_through_the_pooling);
    tcase_add_test(tc, test_rules_train_a_pooling_net);
    tcase_add_test(tc, test_dense_rules_refused);
    tcase_add_test(tc, test_undeclared_needs_refused);
    tcase_add_test(tc, test_alignment_with_pooling_layers);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, portable_case());
    return test_run_suite(s);
}
