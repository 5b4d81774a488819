/*
 * test_conv.c - the conv2d layer kind against ground truth:
 *
 *  - forward against a direct-loop convolution in double precision, over
 *    shapes with several input channels, non-square kernels, stride and
 *    padding;
 *  - the error sent to the input (through W, through another tensor of its
 *    shape, plain or transposed, with alpha and beta) and the weight and
 *    bias gradients against central finite differences of a scalar loss;
 *  - a batch cut into several chunks of the workspace, on one thread or
 *    two, gives each example what it gets alone; a child of fork runs its
 *    slices without the parent's threads; an infinite input reaches only
 *    the weight gradients that read it;
 *  - the shapes a layer gets and the errors when they do not fit; a failed
 *    allocation while adding one leaves the net as it was;
 *  (saving and loading conv nets: test_model_kinds.c);
 *  - backprop through conv layers under a dense layer: every gradient of
 *    the whole net against finite differences; backprop, fa and dfa lower
 *    the loss;
 *  - feedback alignment's B has W's layout on a conv layer;
 *  - the alignment diagnostic gives an angle per conv layer;
 *  - training gives the same bits every time, on 1 thread and on 2;
 *  - the Winograd path: on the wider net's second layer (which it takes
 *    by itself) against the definition and the im2col path; not on
 *    LeNet's (few channels); its constant table against its construction;
 *    and the forward, error, gradient, chunk and training tests again
 *    with every pass it can run sent to it;
 *  - where the build has oneDNN, the forward, error, gradient and chunk
 *    tests again with every pass it takes sent to it (and a check that it
 *    ran them).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpl_internal.h"
#include "config.h"
#include "kinds/conv2d_paths.h"
#include "testhooks.h"

typedef struct conv_case {
    size_t c_in, h, w, c_out, kh, kw, stride, pad;
} conv_case;

/* Set while every pass the Winograd path can run is sent to it (the
 * conv-winograd-forced case), whose tolerances are a share of the
 * largest value. */
static int winograd_forced;

static const conv_case cases[] = {
    {1, 5, 5, 2, 3, 3, 1, 0}, /* the plain case */
    {2, 7, 6, 3, 3, 2, 2, 1}, /* C_in > 1, non-square kernel, stride 2, padding */
    {3, 8, 8, 4, 5, 5, 1, 2}, /* "same" padding, as LeNet's first layer */
    {2, 6, 9, 1, 1, 3, 2, 0}, /* 1-high kernel, one output channel */
    {1, 4, 4, 2, 4, 4, 1, 0}, /* the kernel covers the input: 1x1 output */
    {2, 5, 4, 2, 2, 3, 3, 2}, /* stride above the kernel height: rows skipped */
    {1, 20, 18, 3, 3, 3, 1, 1}, /* one channel, rows of 18: a block and a part of one */
};
#define N_CASES (sizeof cases / sizeof cases[0])

static size_t out_extent(size_t n, size_t k, size_t s, size_t p)
{
    return (n + 2 * p - k) / s + 1;
}

/* A net with a C x H x W input and one conv layer of the case. */
static bpl_net *conv_net(const conv_case *c, int activation, uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {c->c_in, c->h, c->w};
    BPL_OK_OR_FAIL(bpl_net_create(&net, c->c_in * c->h * c->w, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, c->c_out, c->kh, c->kw, c->stride, c->pad,
                                      activation, BPL_INIT_GLOROT_UNIFORM));
    return net;
}

/* The bias is zero when the layer is made: give it values to check. */
static void fill_bias(bpl_net *net, size_t l, uint64_t *seed)
{
    float *b;
    size_t rows, cols;
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "bias", &b, &rows, &cols));
    test_fill_uniform(b, rows * cols, -0.5f, 0.5f, seed);
}

/* out[n][o][y][x] = b[o] + sum_c,i,j w[o][c][i][j] in[n][c][y s + i - p][x s + j - p],
 * the definition, loop by loop, in double. */
static void direct_conv(const conv_case *c, const float *w, const float *b, const float *in,
                        size_t batch, double *out)
{
    size_t ho = out_extent(c->h, c->kh, c->stride, c->pad);
    size_t wo = out_extent(c->w, c->kw, c->stride, c->pad);
    for (size_t n = 0; n < batch; n++)
        for (size_t o = 0; o < c->c_out; o++)
            for (size_t y = 0; y < ho; y++)
                for (size_t x = 0; x < wo; x++) {
                    double s = b[o];
                    for (size_t ch = 0; ch < c->c_in; ch++)
                        for (size_t i = 0; i < c->kh; i++)
                            for (size_t j = 0; j < c->kw; j++) {
                                long iy = (long)(y * c->stride + i) - (long)c->pad;
                                long ix = (long)(x * c->stride + j) - (long)c->pad;
                                if (iy < 0 || ix < 0 || iy >= (long)c->h || ix >= (long)c->w)
                                    continue;
                                s += (double)w[((o * c->c_in + ch) * c->kh + i) * c->kw + j] *
                                     in[((n * c->c_in + ch) * c->h + (size_t)iy) * c->w +
                                        (size_t)ix];
                            }
                    out[((n * c->c_out + o) * ho + y) * wo + x] = s;
                }
}

START_TEST(test_forward_matches_direct_loops)
{
    enum { B = 3 };
    for (size_t k = 0; k < N_CASES; k++) {
        const conv_case *c = &cases[k];
        bpl_net *net = conv_net(c, BPL_ACT_LINEAR, 11 + k);
        bpl_layer *layer = bpl_net_layer(net, 0);
        uint64_t seed = 5 + k;
        fill_bias(net, 0, &seed);
        size_t ho = out_extent(c->h, c->kh, c->stride, c->pad);
        size_t wo = out_extent(c->w, c->kw, c->stride, c->pad);
        size_t in_size = c->c_in * c->h * c->w, out_size = c->c_out * ho * wo;
        /* The layer's shape is C_out x H_out x W_out, its weight C_out x C_in kh kw. */
        size_t dims[BPL__MAX_DIMS], ndim;
        bpl__layer_shape(layer, dims, &ndim);
        ck_assert_uint_eq(ndim, 3);
        ck_assert_uint_eq(dims[0], c->c_out);
        ck_assert_uint_eq(dims[1], ho);
        ck_assert_uint_eq(dims[2], wo);
        ck_assert_uint_eq(bpl_layer_units(layer), out_size);
        ck_assert_uint_eq(bpl_layer_inputs(layer), in_size);
        ck_assert_str_eq(bpl__layer_kind(layer)->name, "conv2d");
        float *w, *b;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, &rows, &cols));
        ck_assert_uint_eq(rows, c->c_out);
        ck_assert_uint_eq(cols, c->c_in * c->kh * c->kw);
        BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "bias", &b, &rows, &cols));
        ck_assert_uint_eq(rows * cols, c->c_out);

        float *in = malloc(B * in_size * sizeof *in);
        float *out = malloc(B * out_size * sizeof *out);
        double *ref = malloc(B * out_size * sizeof *ref);
        test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
        direct_conv(c, w, b, in, B, ref);
        BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_LINEAR, out));
        for (size_t i = 0; i < B * out_size; i++)
            ck_assert_msg(fabs(out[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])),
                          "case %zu: out[%zu] %.8g, direct %.8g", k, i, (double)out[i],
                          ref[i]);
        /* The activation applies to every element of the row. */
        BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, out));
        for (size_t i = 0; i < B * out_size; i++)
            ck_assert_msg(fabs(out[i] - tanh(ref[i])) <= 1e-5, "case %zu: tanh out[%zu]", k,
                          i);
        /* So does prediction, through the net. */
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
        BPL_OK_OR_FAIL(bpl_net_predict(net, in, B, out, B * out_size));
        for (size_t i = 0; i < B * out_size; i++)
            ck_assert(fabs(out[i] - ref[i]) <= 1e-5 * (1.0 + fabs(ref[i])));
        free(in);
        free(out);
        free(ref);
        bpl_net_destroy(net);
    }
}
END_TEST

/* L = sum r . tanh(conv(in)) in double, from the layer's own forward. */
static double scalar_loss(bpl_layer *layer, const float *in, const float *r, size_t batch,
                          size_t out_size, float *scratch)
{
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, batch, BPL_ACT_TANH, scratch));
    double s = 0.0;
    for (size_t i = 0; i < batch * out_size; i++)
        s += (double)r[i] * scratch[i];
    return s;
}

static void assert_close(double analytic, double numeric, const char *what, size_t k,
                         size_t i)
{
    ck_assert_msg(fabs(analytic - numeric) <= 2e-3 + 2e-2 * fabs(numeric),
                  "case %zu: %s[%zu]: kind %.6g, finite difference %.6g", k, what, i,
                  analytic, numeric);
}

/* dL/dz = r tanh'(z): the error at the layer's output. */
static void output_error(const float *out, const float *r, size_t n, float *err)
{
    for (size_t i = 0; i < n; i++)
        err[i] = r[i] * (1.0f - out[i] * out[i]);
}

START_TEST(test_send_error_and_gradients_match_finite_differences)
{
    enum { B = 2 };
    const double eps = 1e-2;
    for (size_t k = 0; k < N_CASES; k++) {
        const conv_case *c = &cases[k];
        bpl_net *net = conv_net(c, BPL_ACT_TANH, 21 + k);
        bpl_layer *layer = bpl_net_layer(net, 0);
        uint64_t seed = 31 + k;
        fill_bias(net, 0, &seed);
        size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
        float *in = malloc(B * in_size * sizeof *in);
        float *r = malloc(B * out_size * sizeof *r);
        float *out = malloc(B * out_size * sizeof *out);
        float *err = malloc(B * out_size * sizeof *err);
        float *sent = malloc(B * in_size * sizeof *sent);
        test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
        test_fill_uniform(r, B * out_size, -1.0f, 1.0f, &seed);
        scalar_loss(layer, in, r, B, out_size, out);
        output_error(out, r, B * out_size, err);

        /* To the input, through W. */
        BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, sent));
        for (size_t i = 0; i < B * in_size; i++) {
            float saved = in[i];
            in[i] = saved + (float)eps;
            double up = scalar_loss(layer, in, r, B, out_size, out);
            in[i] = saved - (float)eps;
            double down = scalar_loss(layer, in, r, B, out_size, out);
            in[i] = saved;
            assert_close(sent[i], (up - down) / (2 * eps), "input error", k, i);
        }
        /* The parameters' gradients: the weight's and the bias's. */
        BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, B, 1.0f, 1.0f, 1.0f));
        for (const char *const *name = (const char *const[]){"weight", "bias", NULL}; *name;
             name++) {
            float *p, *g;
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor(layer, *name, &p, &rows, &cols));
            BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, *name, &g, NULL, NULL));
            for (size_t i = 0; i < rows * cols; i++) {
                float saved = p[i];
                p[i] = saved + (float)eps;
                double up = scalar_loss(layer, in, r, B, out_size, out);
                p[i] = saved - (float)eps;
                double down = scalar_loss(layer, in, r, B, out_size, out);
                p[i] = saved;
                assert_close(g[i], (up - down) / (2 * eps), *name, k, i);
            }
        }
        free(in);
        free(r);
        free(out);
        free(err);
        free(sent);
        bpl_net_destroy(net);
    }
}
END_TEST

/* The factors: gradients scale by alpha, the bias's by bias_scale /
 * bias_divisor; a sent error is beta out + alpha (...). */
static void check_factors(const conv_case *c)
{
    enum { B = 2 };
    bpl_net *net = conv_net(c, BPL_ACT_LINEAR, 3);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    size_t nw = c->c_out * c->c_in * c->kh * c->kw;
    float in[B * 7 * 6 * 2], err[B * 3 * 4 * 4], plain[B * 84], scaled[B * 84];
    float w1[64], b1[3];
    ck_assert_uint_le(B * in_size, sizeof in / sizeof *in);
    ck_assert_uint_le(B * out_size, sizeof err / sizeof *err);
    ck_assert_uint_le(nw, 64);
    uint64_t seed = 9;
    test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
    test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);
    float *gw = test_grad(net, 0, "weight"), *gb = test_grad(net, 0, "bias");
    BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, B, 1.0f, 1.0f, 1.0f));
    memcpy(w1, gw, nw * sizeof *gw);
    memcpy(b1, gb, c->c_out * sizeof *gb);
    BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, B, 0.5f, 3.0f, 4.0f));
    for (size_t i = 0; i < nw; i++)
        ck_assert_float_eq_tol(gw[i], 0.5f * w1[i], 1e-6f);
    for (size_t i = 0; i < c->c_out; i++)
        ck_assert_float_eq_tol(gb[i], 0.75f * b1[i], 1e-5f);

    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, plain));
    for (size_t i = 0; i < B * in_size; i++)
        scaled[i] = 1.0f + (float)i;
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 2.0f, 0.5f, scaled));
    for (size_t i = 0; i < B * in_size; i++)
        ck_assert_float_eq_tol(scaled[i], 0.5f * (1.0f + (float)i) + 2.0f * plain[i], 1e-5f);
    /* beta 0 overwrites, whatever was there. */
    for (size_t i = 0; i < B * in_size; i++)
        scaled[i] = NAN;
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, scaled));
    ck_assert(memcmp(scaled, plain, B * in_size * sizeof *plain) == 0);
    bpl_net_destroy(net);
}

START_TEST(test_factors)
{
    check_factors(&cases[1]);
}
END_TEST

/* The same with stride 1 and a square kernel, which the Winograd path takes. */
START_TEST(test_factors_stride_1)
{
    check_factors(&cases[0]);
}
END_TEST

/* An error sent through another tensor of W's shape (feedback alignment's
 * B) is the error a layer whose weight is that tensor sends; the transposed
 * form, through B^T, gives the same. */
START_TEST(test_send_error_through_other_tensor)
{
    enum { B = 2 };
    const conv_case *c = &cases[2];
    bpl_net *net = conv_net(c, BPL_ACT_LINEAR, 4), *other = conv_net(c, BPL_ACT_LINEAR, 5);
    bpl_layer *layer = bpl_net_layer(net, 0), *twin = bpl_net_layer(other, 0);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    size_t rows = c->c_out, cols = c->c_in * c->kh * c->kw;
    float *bw = test_tensor(other, 0, "weight");
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "feedback", rows, cols, BPL_GROUP_NONE,
                                        BPL_INIT_ZERO, 1.0, NULL));
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "feedback_t", cols, rows, BPL_GROUP_NONE,
                                        BPL_INIT_ZERO, 1.0, NULL));
    float *fb = test_tensor(net, 0, "feedback"), *fbt = test_tensor(net, 0, "feedback_t");
    memcpy(fb, bw, rows * cols * sizeof *fb);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            fbt[j * rows + i] = bw[i * cols + j];
    float *err = malloc(B * out_size * sizeof *err);
    float *want = malloc(B * in_size * sizeof *want), *got = malloc(B * in_size * sizeof *got);
    uint64_t seed = 12;
    test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_layer_send_error(twin, NULL, 0, err, B, 1.0f, 0.0f, want));
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, "feedback", 0, err, B, 1.0f, 0.0f, got));
    ck_assert(memcmp(got, want, B * in_size * sizeof *got) == 0);
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, "feedback_t", 1, err, B, 1.0f, 0.0f, got));
    for (size_t i = 0; i < B * in_size; i++)
        ck_assert_float_eq_tol(got[i], want[i], 1e-5f);
    /* A tensor of another shape is refused. */
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, "feedback_t", 0, err, B, 1.0f, 0.0f, got),
                     BPL_ERR_SHAPE, "feedback_t");
    free(err);
    free(want);
    free(got);
    bpl_net_destroy(net);
    bpl_net_destroy(other);
}
END_TEST

/* A batch larger than a chunk of the workspace (many output channels: five
 * examples per chunk, fourteen chunks) gives each example what
 * it gets alone: the forward pass, the error sent to the input and the
 * gradients, summed over the examples, do not depend on how the batch was
 * cut into chunks. */
static void check_chunks_against_examples(const conv_case *shape)
{
    enum { B = 70 };
    const conv_case c = *shape;
    bpl_net *net = conv_net(&c, BPL_ACT_TANH, 8);
    bpl_layer *layer = bpl_net_layer(net, 0);
    uint64_t seed = 17;
    fill_bias(net, 0, &seed);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    size_t nw = c.c_out * c.kh * c.kw;
    float *in = malloc(B * in_size * sizeof *in), *err = malloc(B * out_size * sizeof *err);
    float *out = malloc(B * out_size * sizeof *out), *one = malloc(out_size * sizeof *one);
    float *sent = malloc(B * in_size * sizeof *sent), *sent1 = malloc(in_size * sizeof *sent1);
    float *gw = test_grad(net, 0, "weight"), *gb = test_grad(net, 0, "bias");
    float *gw_batch = malloc(nw * sizeof *gw_batch);
    double *gw_sum = calloc(nw, sizeof *gw_sum), gb_sum[64] = {0};
    float gb_batch[64];
    test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
    test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);

    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, out));
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, B, 1.0f, 0.0f, sent));
    BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, B, 1.0f, 1.0f, 1.0f));
    memcpy(gw_batch, gw, nw * sizeof *gw);
    memcpy(gb_batch, gb, c.c_out * sizeof *gb);
    /* The largest differences, asserted once (an assertion per element
     * would send a million locations through Check's pipe). */
    double out_diff = 0.0, sent_diff = 0.0;
    for (size_t n = 0; n < B; n++) {
        BPL_OK_OR_FAIL(bpl_layer_forward(layer, in + n * in_size, 1, BPL_ACT_TANH, one));
        for (size_t i = 0; i < out_size; i++)
            out_diff = fmax(out_diff, fabs(out[n * out_size + i] - one[i]));
        BPL_OK_OR_FAIL(
            bpl_layer_send_error(layer, NULL, 0, err + n * out_size, 1, 1.0f, 0.0f, sent1));
        for (size_t i = 0; i < in_size; i++)
            sent_diff = fmax(sent_diff, fabs(sent[n * in_size + i] - sent1[i]));
        BPL_OK_OR_FAIL(
            bpl_layer_gradients(layer, err + n * out_size, in + n * in_size, 1, 1.0f, 1.0f, 1.0f));
        for (size_t i = 0; i < nw; i++)
            gw_sum[i] += gw[i];
        for (size_t i = 0; i < c.c_out; i++)
            gb_sum[i] += gb[i];
    }
    ck_assert_msg(out_diff <= 1e-5, "outputs differ from the examples' alone by %g", out_diff);
    ck_assert_msg(sent_diff <= 1e-4, "sent errors differ from the examples' alone by %g",
                  sent_diff);
    /* The Winograd path's error is a share of the largest value, not of
     * each (its transforms mix the elements): 5e-5 of it at most for a
     * batch of 256 with the library's own GEMM. */
    double largest = 0.0;
    for (size_t i = 0; i < nw; i++)
        largest = fmax(largest, fabs(gw_sum[i]));
    for (size_t i = 0; i < nw; i++) {
        double tol = 1e-3 * (1.0 + fabs(gw_sum[i]));
        if (winograd_forced)
            tol = fmax(tol, 1e-4 * largest);
        ck_assert_msg(fabs(gw_batch[i] - gw_sum[i]) <= tol,
                      "weight gradient[%zu] %.8g, summed alone %.8g", i, (double)gw_batch[i],
                      gw_sum[i]);
    }
    for (size_t i = 0; i < c.c_out; i++)
        ck_assert(fabs(gb_batch[i] - gb_sum[i]) <= 1e-3 * (1.0 + fabs(gb_sum[i])));
    free(in);
    free(err);
    free(out);
    free(one);
    free(sent);
    free(sent1);
    free(gw_batch);
    free(gw_sum);
    bpl_net_destroy(net);
}

/* An infinite input makes infinite (or NaN) exactly the weight gradients
 * whose terms read it: the loops that run past a row's end (rows in
 * blocks) must not turn it into a NaN elsewhere. */
START_TEST(test_infinite_input_reaches_only_its_weights)
{
    const conv_case c = {1, 20, 18, 3, 3, 3, 1, 1};
    size_t ho = out_extent(c.h, c.kh, c.stride, c.pad), wo = out_extent(c.w, c.kw, c.stride, c.pad);
    bpl_net *net = conv_net(&c, BPL_ACT_LINEAR, 6);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t in_size = c.h * c.w, out_size = c.c_out * ho * wo;
    float *in = malloc(in_size * sizeof *in), *err = malloc(out_size * sizeof *err);
    uint64_t seed = 9;
    test_fill_uniform(in, in_size, -1.0f, 1.0f, &seed);
    test_fill_uniform(err, out_size, 0.5f, 1.0f, &seed);
    size_t at_y = 7, at_x = 17; /* the last column of a row */
    in[at_y * c.w + at_x] = INFINITY;
    BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, 1, 1.0f, 1.0f, 1.0f));
    const float *gw = test_grad(net, 0, "weight");
    for (size_t o = 0; o < c.c_out; o++)
        for (size_t i = 0; i < c.kh; i++)
            for (size_t j = 0; j < c.kw; j++) {
                /* weight (i, j) reads the element at output (y, x) = (at_y + pad - i,
                 * at_x + pad - j), if that output exists */
                long y = (long)(at_y + c.pad) - (long)i, x = (long)(at_x + c.pad) - (long)j;
                int reads = y >= 0 && x >= 0 && y < (long)ho && x < (long)wo;
                float g = gw[(o * c.kh + i) * c.kw + j];
                ck_assert_msg(reads ? !isfinite(g) : isfinite(g),
                              "weight %zu,%zu,%zu: gradient %g, reads the infinity: %d", o, i, j,
                              (double)g, reads);
            }
    free(in);
    free(err);
    bpl_net_destroy(net);
}
END_TEST

/* One thread, and two (each takes half the batch, in chunks of its half of
 * the workspace). */
START_TEST(test_batch_in_chunks_equals_examples_alone)
{
    /* Many output channels (im2col's chunks); LeNet's first layer (one
     * channel in, a few out: the direct loops). */
    static const conv_case shapes[] = {{1, 12, 12, 64, 5, 5, 1, 2}, {1, 28, 28, 6, 5, 5, 1, 2}};
    for (size_t k = 0; k < 2; k++) {
        check_chunks_against_examples(&shapes[k]);
        BPL_OK_OR_FAIL(bpl_set_thread_count(2));
        check_chunks_against_examples(&shapes[k]);
        BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    }
}
END_TEST

/* A child of fork has none of the library's threads: its conv layers run
 * their slices one after another, with the parent's results, rather than
 * wait for workers that stayed with the parent. */
START_TEST(test_threads_after_fork)
{
    enum { B = 8 };
    const conv_case *c = &cases[2];
    BPL_OK_OR_FAIL(bpl_set_thread_count(2));
    bpl_net *net = conv_net(c, BPL_ACT_TANH, 6);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    float *in = malloc(B * in_size * sizeof *in), *out = malloc(B * out_size * sizeof *out);
    float *again = malloc(B * out_size * sizeof *again);
    uint64_t seed = 23;
    test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, out));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60); /* a child that waits for the parent's workers dies */
        int same = bpl_layer_forward(layer, in, B, BPL_ACT_TANH, again) == BPL_OK &&
                   memcmp(again, out, B * out_size * sizeof *out) == 0;
        /* Freed here too: under valgrind the child's leaks are errors. */
        free(in);
        free(out);
        free(again);
        bpl_net_destroy(net);
        _exit(same ? 0 : 1);
    }
    ck_assert_int_gt(pid, 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child's forward pass failed or hung (status %d)", status);
    /* The parent's workers still run. */
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_TANH, again));
    ck_assert(memcmp(again, out, B * out_size * sizeof *out) == 0);
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
    free(in);
    free(out);
    free(again);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_shapes_through_layers)
{
    bpl_net *net;
    const size_t chw[] = {1, 8, 8};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 64, 1));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 4, 3, 3, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 2, 3, 3, 2, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    static const size_t want[][3] = {{4, 6, 6}, {2, 3, 3}};
    size_t dims[BPL__MAX_DIMS], ndim;
    for (size_t l = 0; l < 2; l++) {
        bpl__layer_shape(bpl_net_layer(net, l), dims, &ndim);
        ck_assert_uint_eq(ndim, 3);
        ck_assert(memcmp(dims, want[l], sizeof want[l]) == 0);
    }
    /* The second reads the first's maps; the dense layer reads them flattened. */
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 1)), 144);
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 2)), 18);
    ck_assert_uint_eq(bpl_net_outputs(net), 3);
    /* After a dense layer there is no C x H x W to convolve. */
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_SHAPE, "layer 3 (conv2d) over input 3: a conv2d layer needs");
    ck_assert_uint_eq(bpl_net_layer_count(net), 3);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_shape_errors)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 12, 1));
    /* No C x H x W input shape. */
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 3, 3, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_SHAPE, "bpl_net_add_conv2d: layer 0 (conv2d) over input 12");
    const size_t chw[] = {3, 2, 2};
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    /* The kernel does not fit; with padding it does. */
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 3, 2, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_SHAPE, "over input 3x2x2: kernel 3x2 does not fit");
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 0, 1, 1, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_INVALID_ARG, "out_channels");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 0, 1, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_INVALID_ARG, "kernel");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 0, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_INVALID_ARG, "stride");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, 0, 99, BPL_INIT_HE_NORMAL),
                     BPL_ERR_INVALID_ARG, "activation");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, 0, BPL_ACT_RELU, 99),
                     BPL_ERR_INVALID_ARG, "initialiser");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(NULL, 2, 1, 1, 1, 0, BPL_ACT_RELU, 0),
                     BPL_ERR_INVALID_ARG, NULL);
    /* Sizes whose products overflow, or leave a BLAS dimension above an int. */
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, SIZE_MAX / 2, BPL_ACT_RELU,
                                        BPL_INIT_HE_NORMAL),
                     BPL_ERR_SHAPE, "does not fit");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, SIZE_MAX / 4, BPL_ACT_RELU,
                                        BPL_INIT_HE_NORMAL),
                     BPL_ERR_OVERFLOW, "too large");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, SIZE_MAX / 2, SIZE_MAX / 2, 1, SIZE_MAX / 4,
                                        BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_OVERFLOW, "too large");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, (size_t)1 << 24, 1, 1, 1, 1024, BPL_ACT_RELU,
                                        BPL_INIT_HE_NORMAL),
                     BPL_ERR_OVERFLOW, "too large");
    ck_assert_uint_eq(bpl_net_layer_count(net), 0);
    /* The net is still whole: a layer that fits is added. */
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 2, 3, 2, 1, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL));
    size_t dims[BPL__MAX_DIMS], ndim;
    bpl__layer_shape(bpl_net_layer(net, 0), dims, &ndim);
    ck_assert_uint_eq(dims[0], 2);
    ck_assert_uint_eq(dims[1], 2);
    ck_assert_uint_eq(dims[2], 3);
    /* Layers come before the rule. */
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_add_conv2d(net, 2, 1, 1, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
                     BPL_ERR_STATE, "before attaching");
    bpl_net_destroy(net);
}
END_TEST

/* Every allocation of adding a conv layer may fail: the call then fails
 * cleanly (no leak: the sanitiser build checks), the net keeps its layers
 * and a later call succeeds. */
START_TEST(test_add_survives_allocation_failure)
{
    const size_t chw[] = {2, 5, 5};
    int failed = 0;
    for (uint64_t k = 1;; k++) {
        bpl_net *net;
        BPL_OK_OR_FAIL(bpl_net_create(&net, 50, 1));
        BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
        bpl__alloc_fail_at(k);
        int rc = bpl_net_add_conv2d(net, 3, 3, 3, 1, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL);
        bpl__alloc_fail_at(0);
        if (rc == BPL_OK) {
            ck_assert_uint_eq(bpl_net_layer_count(net), 1);
            bpl_net_destroy(net);
            break;
        }
        ck_assert_int_eq(rc, BPL_ERR_NOMEM);
        ck_assert_uint_eq(bpl_net_layer_count(net), 0);
        BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 3, 3, 3, 1, 1, BPL_ACT_RELU,
                                          BPL_INIT_HE_NORMAL));
        bpl_net_destroy(net);
        failed++;
    }
    ck_assert_int_ge(failed, 4); /* the layer, its two tensors, the workspace */
}
END_TEST

/* ---- backprop through conv layers ------------------------------------------------ */

/* 2x6x6 -> conv 3@3x3 pad 1 stride 2 (tanh) -> conv 4@2x2 (tanh) -> dense 3 (softmax). */
static bpl_net *small_conv_net(uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {2, 6, 6};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 72, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 3, 3, 3, 2, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 4, 2, 2, 1, 0, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    uint64_t s = seed + 100;
    fill_bias(net, 0, &s);
    fill_bias(net, 1, &s);
    return net;
}

static double net_loss(bpl_net *net, const float *x, const float *y, size_t batch)
{
    float out[8 * 3];
    ck_assert_uint_le(batch * 3, sizeof out / sizeof *out);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, batch, out, batch * 3));
    double total = 0.0;
    for (size_t i = 0; i < batch * 3; i++)
        total -= y[i] * log(out[i]);
    return total / (double)batch;
}

START_TEST(test_backprop_gradients_of_a_conv_net)
{
    enum { B = 4 };
    bpl_net *net = small_conv_net(17);
    test_attach(net, "backprop");
    float x[B * 72], y[B * 3];
    uint64_t seed = 23;
    test_fill_uniform(x, B * 72, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    const double eps = 1e-2;
    size_t checked = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        for (const char *const *name = (const char *const[]){"weight", "bias", NULL}; *name;
             name++) {
            float *w = test_tensor(net, l, *name), *g = test_grad(net, l, *name);
            float *data;
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), *name, &data, &rows, &cols));
            for (size_t i = 0; i < rows * cols; i++) {
                float saved = w[i];
                w[i] = saved + (float)eps;
                double up = net_loss(net, x, y, B);
                w[i] = saved - (float)eps;
                double down = net_loss(net, x, y, B);
                w[i] = saved;
                double numeric = (up - down) / (2 * eps);
                ck_assert_msg(fabs(numeric - g[i]) <=
                                  2e-4 + 2e-2 * fmax(fabs(numeric), fabs(g[i])),
                              "layer %zu %s[%zu]: backprop %.6g, finite difference %.6g", l,
                              *name, i, (double)g[i], numeric);
                checked++;
            }
        }
    ck_assert_uint_eq(checked, bpl_net_param_count(net));
    bpl_net_destroy(net);
}
END_TEST

/* Backprop, and the rules that need no dense matrix, lower the loss of a
 * small conv net on a separable task. */
START_TEST(test_rules_train_a_conv_net)
{
    enum { N = 32 };
    static const char *const rules[] = {"backprop", "fa", "dfa"};
    for (size_t r = 0; r < 3; r++) {
        bpl_net *net = small_conv_net(29);
        test_attach(net, rules[r]);
        BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.05));
        float x[N * 72], y[N * 3];
        uint64_t seed = 37;
        test_fill_onehot(y, N, 3, &seed);
        /* The class is the sign pattern of three input regions, plus noise. */
        test_fill_uniform(x, N * 72, -0.3f, 0.3f, &seed);
        for (size_t n = 0; n < N; n++)
            for (size_t c = 0; c < 3; c++)
                if (y[n * 3 + c] > 0.5f)
                    for (size_t i = 0; i < 12; i++)
                        x[n * 72 + c * 24 + i] += 1.0f;
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
        bpl_net_destroy(net);
    }
}
END_TEST

/* fa's B has W's own layout on a conv layer (W^T's on the dense one); with
 * B = W its gradients are backprop's, bit for bit: B goes down through the
 * products W does (test_fa_exact trains on with it). */
/* Training gives the same bits every time for a given thread count (each
 * thread's slice runs the same code on the same examples, and the slices'
 * weight gradients are added in order), on 1 thread and on 2. */
static void train_steps(bpl_net *net, size_t n)
{
    float x[64 * 72], y[64 * 3];
    uint64_t seed = 41;
    test_fill_uniform(x, 64 * 72, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, 64, 3, &seed);
    double loss;
    for (size_t step = 0; step < n; step++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 64, &loss));
}

START_TEST(test_same_bits_every_time)
{
    for (size_t threads = 1; threads <= 2; threads++) {
        BPL_OK_OR_FAIL(bpl_set_thread_count(threads));
        bpl_net *a = small_conv_net(3), *b = small_conv_net(3);
        test_attach(a, "backprop");
        test_attach(b, "backprop");
        train_steps(a, 5);
        train_steps(b, 5);
        for (size_t l = 0; l < 2; l++) {
            size_t rows, cols;
            float *wa, *wb;
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(a, l), "weight", &wa, &rows, &cols));
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(b, l), "weight", &wb, NULL, NULL));
            ck_assert_msg(memcmp(wa, wb, rows * cols * sizeof *wa) == 0,
                          "%zu threads: layer %zu's weights differ between two runs", threads,
                          l);
        }
        bpl_net_destroy(a);
        bpl_net_destroy(b);
    }
    BPL_OK_OR_FAIL(bpl_set_thread_count(1));
}
END_TEST

START_TEST(test_fa_feedback_has_the_weight_layout)
{
    enum { B = 4 };
    float x[B * 72], y[B * 3];
    uint64_t seed = 41;
    test_fill_uniform(x, B * 72, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    bpl_net *bp = small_conv_net(43), *fa = small_conv_net(43);
    test_attach(bp, "backprop");
    test_attach(fa, "fa");
    for (size_t l = 1; l < 3; l++) {
        float *w, *b;
        size_t rows, cols, brows, bcols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(fa, l), "weight", &w, &rows, &cols));
        BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(fa, l), "feedback", &b, &brows, &bcols));
        ck_assert_uint_eq(brows, l == 2 ? cols : rows);
        ck_assert_uint_eq(bcols, l == 2 ? rows : cols);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                b[l == 2 ? j * rows + i : i * cols + j] = w[i * cols + j];
    }
    test_run_hooks(bp, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    test_run_hooks(fa, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    for (size_t l = 0; l < 3; l++) {
        float *w;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(bp, l), "weight", &w, &rows, &cols));
        const float *g1 = test_grad(bp, l, "weight"), *g2 = test_grad(fa, l, "weight");
        for (size_t i = 0; i < rows * cols; i++)
            ck_assert_msg(memcmp(&g1[i], &g2[i], sizeof *g1) == 0,
                          "layer %zu weight[%zu]: backprop %.8g, fa %.8g", l, i,
                          (double)g1[i], (double)g2[i]);
    }
    bpl_net_destroy(bp);
    bpl_net_destroy(fa);
}
END_TEST

/* The alignment diagnostic measures conv layers too: backprop against
 * itself is 0 degrees at every layer, fa's first updates are not. */
START_TEST(test_alignment_per_conv_layer)
{
    enum { B = 8 };
    float x[B * 72], y[B * 3];
    double angles[3];
    uint64_t seed = 51;
    test_fill_uniform(x, B * 72, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    bpl_net *bp = small_conv_net(53), *fa = small_conv_net(53);
    test_attach(bp, "backprop");
    test_attach(fa, "fa");
    BPL_OK_OR_FAIL(bpl_net_alignment(bp, x, y, B, angles, 3));
    for (size_t l = 0; l < 3; l++)
        ck_assert_msg(angles[l] < 0.1, "backprop layer %zu: %g degrees", l, angles[l]);
    BPL_OK_OR_FAIL(bpl_net_alignment(fa, x, y, B, angles, 3));
    ck_assert_double_lt(angles[2], 0.1); /* the output layer's error is the same */
    for (size_t l = 0; l < 2; l++)
        ck_assert_msg(angles[l] > 1.0 && angles[l] <= 180.0, "fa layer %zu: %g degrees", l,
                      angles[l]);
    bpl_net_destroy(bp);
    bpl_net_destroy(fa);
}
END_TEST

#if BPL_HAVE_DNNL
/* The accelerated case: every pass oneDNN's primitives accept goes to them
 * (whatever the shape), at most 3 examples per call (so that a slice takes
 * several calls, the weight gradient adding theirs), and each test must
 * have run some there. */
static size_t passes_before;

static void accelerate(void)
{
    bpl__conv_accel_force(BPL__CONV_ACCEL_ALWAYS);
    bpl__conv_accel_set_chunk(3);
    passes_before = bpl__conv_accel_passes();
}

static void check_accelerated(void)
{
    ck_assert_msg(bpl__conv_accel_passes() > passes_before,
                  "no pass ran through oneDNN's primitives");
    bpl__conv_accel_force(BPL__CONV_ACCEL_AUTO);
    bpl__conv_accel_set_chunk(0);
}

/* A failure of oneDNN's part way through a slice (the third call, with 3
 * examples per call): the portable path does the examples left, the
 * weight gradient adding to what the calls before summed, and the results
 * are those of the portable path alone, to rounding. */
START_TEST(test_failure_part_way_falls_back)
{
    enum { B = 20 };
    const conv_case c = {8, 10, 10, 16, 3, 3, 1, 1};
    bpl_net *net = conv_net(&c, BPL_ACT_TANH, 2);
    bpl_layer *layer = bpl_net_layer(net, 0);
    uint64_t seed = 4;
    fill_bias(net, 0, &seed);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    size_t nw = c.c_out * c.c_in * c.kh * c.kw;
    float *in = malloc(B * in_size * sizeof *in), *err = malloc(B * out_size * sizeof *err);
    float *out[2], *sent[2], *gw[2];
    test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
    test_fill_uniform(err, B * out_size, -1.0f, 1.0f, &seed);
    for (int run = 0; run < 2; run++) {
        /* run 0: the portable path; run 1: oneDNN failing at each pass's
         * third call (a fresh net each time: failed entries are not retried) */
        bpl_net *n = run ? conv_net(&c, BPL_ACT_TANH, 2) : net;
        bpl_layer *l = bpl_net_layer(n, 0);
        if (run) {
            seed = 4;
            fill_bias(n, 0, &seed);
        }
        bpl__conv_accel_force(run ? BPL__CONV_ACCEL_ALWAYS : BPL__CONV_ACCEL_NEVER);
        out[run] = malloc(B * out_size * sizeof(float));
        sent[run] = malloc(B * in_size * sizeof(float));
        gw[run] = malloc(nw * sizeof(float));
        bpl__conv_accel_fail_call(run ? 3 : 0);
        BPL_OK_OR_FAIL(bpl_layer_forward(l, in, B, BPL_ACT_TANH, out[run]));
        bpl__conv_accel_fail_call(run ? 3 : 0);
        BPL_OK_OR_FAIL(bpl_layer_send_error(l, NULL, 0, err, B, 0.5f, 0.0f, sent[run]));
        bpl__conv_accel_fail_call(run ? 3 : 0);
        BPL_OK_OR_FAIL(bpl_layer_gradients(l, err, in, B, 0.25f, 1.0f, 1.0f));
        memcpy(gw[run], test_grad(n, 0, "weight"), nw * sizeof(float));
        if (run)
            bpl_net_destroy(n);
    }
    bpl__conv_accel_fail_call(0);
    bpl__conv_accel_force(BPL__CONV_ACCEL_ALWAYS);
    for (size_t i = 0; i < B * out_size; i++)
        ck_assert_float_eq_tol(out[1][i], out[0][i], 1e-5f);
    for (size_t i = 0; i < B * in_size; i++)
        ck_assert_float_eq_tol(sent[1][i], sent[0][i], 1e-5f);
    for (size_t i = 0; i < nw; i++)
        ck_assert_msg(fabsf(gw[1][i] - gw[0][i]) <= 1e-4f * (1.0f + fabsf(gw[0][i])),
                      "weight gradient[%zu] %g, portable %g", i, (double)gw[1][i],
                      (double)gw[0][i]);
    for (int run = 0; run < 2; run++) {
        free(out[run]);
        free(sent[run]);
        free(gw[run]);
    }
    free(in);
    free(err);
    bpl_net_destroy(net);
}
END_TEST

/* The run-time report names the accelerator, as bioplaus.h says. */
START_TEST(test_blas_info_names_onednn)
{
    ck_assert_msg(strstr(bpl_blas_info(), "; conv: oneDNN ") != NULL, "bpl_blas_info: %s",
                  bpl_blas_info());
}
END_TEST

#endif

/* The Winograd case: every pass the Winograd path can run goes to it
 * (stride 1, square kernels: cases 0, 2 and 6, and the chunk tests'
 * shapes), and each test must have run some there. */
static size_t winograd_before;

static void winograd_on(void)
{
    winograd_forced = 1;
    bpl__conv_winograd_force(BPL__CONV_ACCEL_ALWAYS);
    winograd_before = bpl__conv_winograd_passes();
}

static void check_winograd(void)
{
    ck_assert_msg(bpl__conv_winograd_passes() > winograd_before,
                  "no pass ran through the Winograd path");
    bpl__conv_winograd_force(BPL__CONV_ACCEL_AUTO);
    winograd_forced = 0;
}

/* Every |got - want| within `share` of the largest |want|: the Winograd
 * path's float error is a share of the largest value, not of each. */
static void assert_within_share(const float *got, const float *want, size_t n, double share,
                                const char *what, const conv_case *c)
{
    double largest = 0.0;
    for (size_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(want[i]));
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= share * largest,
                      "kernel %zu, pad %zu, %s[%zu]: %.8g, im2col %.8g", c->kh, c->pad, what, i,
                      (double)got[i], (double)want[i]);
}

/* The three passes of a layer of case c on `batch` random examples, with
 * the Winograd path in `mode` (BPL__CONV_ACCEL_*: chosen by the library,
 * or forced), against im2col's, to 5e-5 of the largest value: 1e-5 with
 * OpenBLAS's products, beyond it with the library's own (-Dblas=none). */
static void check_winograd_against_im2col(const conv_case *c, size_t batch, uint64_t seed,
                                          int mode)
{
    bpl_net *net = conv_net(c, BPL_ACT_LINEAR, seed);
    bpl_layer *layer = bpl_net_layer(net, 0);
    fill_bias(net, 0, &seed);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    const size_t n[3] = {batch * out_size, batch * in_size, c->c_out * c->c_in * c->kh * c->kw};
    float *in = malloc(batch * in_size * sizeof *in);
    float *err = malloc(batch * out_size * sizeof *err);
    float *res[2][3];
    test_fill_uniform(in, batch * in_size, -1.0f, 1.0f, &seed);
    test_fill_uniform(err, batch * out_size, -1.0f, 1.0f, &seed);
    for (int run = 0; run < 2; run++) { /* run 0: Winograd; run 1: im2col */
        size_t before = bpl__conv_winograd_passes();
        bpl__conv_winograd_force(run ? BPL__CONV_ACCEL_NEVER : mode);
        bpl__conv_accel_force(BPL__CONV_ACCEL_NEVER);
        for (int k = 0; k < 3; k++)
            res[run][k] = malloc(n[k] * sizeof(float));
        BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, batch, BPL_ACT_LINEAR, res[run][0]));
        BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, batch, 1.0f, 0.0f, res[run][1]));
        BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, batch, 1.0f, 1.0f, 1.0f));
        memcpy(res[run][2], test_grad(net, 0, "weight"), n[2] * sizeof(float));
        if (!run) /* the three passes went the Winograd way */
            ck_assert_uint_eq(bpl__conv_winograd_passes() - before, 3);
    }
    bpl__conv_winograd_force(BPL__CONV_ACCEL_AUTO);
    bpl__conv_accel_force(BPL__CONV_ACCEL_AUTO);
    const char *what[3] = {"forward", "sent error", "weight gradient"};
    for (int k = 0; k < 3; k++)
        assert_within_share(res[0][k], res[1][k], n[k], 5e-5, what[k], c);
    for (int run = 0; run < 2; run++)
        for (int k = 0; k < 3; k++)
            free(res[run][k]);
    free(in), free(err);
    bpl_net_destroy(net);
}

/* The wider net's second layer (32 channels in, 64 out, 5x5, "same"
 * padding on 14x14 maps), where the library chooses the Winograd path by
 * itself: forward against the definition in double, to 1e-5 of the
 * largest value (float's transforms lose about that much, the direct sum
 * 1e-7), and the three passes against the im2col path. */
START_TEST(test_winograd_on_a_wide_layer)
{
    enum { B = 5 };
    const conv_case c = {32, 14, 14, 64, 5, 5, 1, 2};
    bpl_net *net = conv_net(&c, BPL_ACT_LINEAR, 71);
    bpl_layer *layer = bpl_net_layer(net, 0);
    uint64_t seed = 73;
    fill_bias(net, 0, &seed);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    float *in = malloc(B * in_size * sizeof *in), *out = malloc(B * out_size * sizeof *out);
    float *ref = malloc(B * out_size * sizeof *ref);
    double *exact = malloc(B * out_size * sizeof *exact);
    float *w, *b;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "bias", &b, NULL, NULL));
    test_fill_uniform(in, B * in_size, -1.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, B, BPL_ACT_LINEAR, out));
    direct_conv(&c, w, b, in, B, exact);
    for (size_t i = 0; i < B * out_size; i++)
        ref[i] = (float)exact[i];
    assert_within_share(out, ref, B * out_size, 1e-5, "forward against the definition", &c);
    free(in), free(out), free(ref), free(exact);
    bpl_net_destroy(net);
    check_winograd_against_im2col(&c, B, 73, BPL__CONV_ACCEL_AUTO); /* chosen by itself */
}
END_TEST

/* Every kernel size the path takes (2 to 6: output tiles of 7 down to 3)
 * with and without padding, on odd-sized maps (partial tiles). */
START_TEST(test_winograd_every_kernel_size)
{
    for (size_t r = 2; r <= 6; r++)
        for (size_t pad = 0; pad < r; pad += r - 1 > 1 ? r - 1 : 1) {
            const conv_case c = {16, 11, 9, 17, r, r, 1, pad};
            check_winograd_against_im2col(&c, 3, 80 + r + pad, BPL__CONV_ACCEL_ALWAYS);
        }
}
END_TEST

/* LeNet's second layer (6 channels in) stays on the other paths unless
 * forced: the transforms would cost more than the products save. */
START_TEST(test_winograd_declines_few_channels)
{
    const conv_case c = {6, 14, 14, 16, 5, 5, 1, 0};
    bpl_net *net = conv_net(&c, BPL_ACT_LINEAR, 75);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
    float *in = calloc(2 * in_size, sizeof *in), *out = malloc(2 * out_size * sizeof *out);
    size_t before = bpl__conv_winograd_passes();
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, 2, BPL_ACT_LINEAR, out));
    ck_assert_uint_eq(bpl__conv_winograd_passes(), before);
    free(in), free(out);
    bpl_net_destroy(net);
}
END_TEST

/* The input transform's constant B^T is the one the construction from
 * the points gives, bit for bit. */
START_TEST(test_winograd_constant_table)
{
    ck_assert(bpl__conv_winograd_tables_agree());
}
END_TEST

static TCase *winograd_case(void)
{
    TCase *tc = tcase_create("conv-winograd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_winograd_constant_table);
    tcase_add_test(tc, test_winograd_on_a_wide_layer);
    tcase_add_test(tc, test_winograd_every_kernel_size);
    tcase_add_test(tc, test_winograd_declines_few_channels);
    return tc;
}

static TCase *winograd_forced_case(void)
{
    TCase *tc = tcase_create("conv-winograd-forced");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, winograd_on, check_winograd);
    tcase_add_test(tc, test_forward_matches_direct_loops);
    tcase_add_test(tc, test_send_error_and_gradients_match_finite_differences);
    tcase_add_test(tc, test_factors_stride_1);
    tcase_add_test(tc, test_send_error_through_other_tensor);
    tcase_add_test(tc, test_batch_in_chunks_equals_examples_alone);
    tcase_add_test(tc, test_backprop_gradients_of_a_conv_net);
    tcase_add_test(tc, test_rules_train_a_conv_net);
    tcase_add_test(tc, test_same_bits_every_time);
    return tc;
}

#if BPL_HAVE_DNNL
static TCase *accelerated_case(void)
{
    TCase *tc = tcase_create("conv-onednn");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, accelerate, check_accelerated);
    tcase_add_test(tc, test_forward_matches_direct_loops);
    tcase_add_test(tc, test_send_error_and_gradients_match_finite_differences);
    tcase_add_test(tc, test_factors);
    tcase_add_test(tc, test_send_error_through_other_tensor);
    tcase_add_test(tc, test_batch_in_chunks_equals_examples_alone);
    tcase_add_test(tc, test_backprop_gradients_of_a_conv_net);
    tcase_add_test(tc, test_rules_train_a_conv_net);
    tcase_add_test(tc, test_same_bits_every_time);
    tcase_add_test(tc, test_failure_part_way_falls_back);
    return tc;
}
#endif

int main(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_forward_matches_direct_loops);
    tcase_add_test(tc, test_send_error_and_gradients_match_finite_differences);
    tcase_add_test(tc, test_factors);
    tcase_add_test(tc, test_factors_stride_1);
    tcase_add_test(tc, test_send_error_through_other_tensor);
    tcase_add_test(tc, test_batch_in_chunks_equals_examples_alone);
    tcase_add_test(tc, test_infinite_input_reaches_only_its_weights);
    tcase_add_test(tc, test_threads_after_fork);
    tcase_add_test(tc, test_shapes_through_layers);
    tcase_add_test(tc, test_shape_errors);
    tcase_add_test(tc, test_add_survives_allocation_failure);
    tcase_add_test(tc, test_backprop_gradients_of_a_conv_net);
    tcase_add_test(tc, test_rules_train_a_conv_net);
    tcase_add_test(tc, test_same_bits_every_time);
    tcase_add_test(tc, test_fa_feedback_has_the_weight_layout);
    tcase_add_test(tc, test_alignment_per_conv_layer);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, winograd_case());
    suite_add_tcase(s, winograd_forced_case());
#if BPL_HAVE_DNNL
    tcase_add_test(tc, test_blas_info_names_onednn);
    suite_add_tcase(s, accelerated_case());
#endif
    return test_run_suite(s);
}
