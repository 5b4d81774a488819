/*
 * test_target_prop_conv.c - dtp and sdtp on nets of strided convolutions,
 * against ground truth:
 *
 *  - a conv layer's inverse is a transposed convolution (V of the weight's
 *    shape, the layer's stride and padding, a bias per input channel):
 *    against direct loops in double precision, over shapes with several
 *    channels, stride, padding and a stride above the kernel;
 *  - its gradient against central finite differences of the reconstruction
 *    loss (noise-preserving and denoising);
 *  - the difference correction: t_{l-1} = h_{l-1} + g(t_l) - g(h_l) to
 *    rounding, and with a perfect inverse (an orthogonal stride-2 2x2 conv
 *    and its transpose) the target below maps onto the target above;
 *  - dtp and sdtp lower the loss of a conv(stride 2) -> conv(stride 2) ->
 *    dense -> dense net on a synthetic task, and every inverse's
 *    reconstruction error falls with inverse-only pre-training, the hidden
 *    layers' (the transposed convolution's too) also over the training;
 *  - a dense layer sent down the same path (its kind without a dense
 *    matrix) gives the dense inverse's targets and gradients;
 *  - the alignment diagnostic per layer of a conv net, drawing nothing;
 *  - the inverses' shapes, and the refusals: tp, segregated and
 *    microcircuit on a conv net, dtp and sdtp on a layer without a
 *    transposed map (as a pooling layer).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"
#include "testhooks.h"

/* Layer 1's geometry: a C0 x H x W input (layer 0's output) and the conv. */
typedef struct inv_case {
    size_t h, w, c0, c1, kh, kw, stride, pad;
} inv_case;

static const inv_case cases[] = {
    {9, 9, 2, 3, 3, 3, 2, 1}, /* the strided case of the nets below */
    {8, 7, 3, 4, 5, 5, 2, 2}, /* LeNet's 5x5 kernel, padding 2, non-square input */
    {6, 6, 1, 2, 2, 2, 2, 0}, /* non-overlapping patches */
    {7, 6, 2, 3, 3, 2, 3, 0}, /* stride above the kernel: units no output sees */
    {5, 5, 2, 2, 3, 3, 1, 1}, /* stride 1 */
};
#define N_CASES (sizeof cases / sizeof cases[0])

static size_t extent(size_t n, size_t k, size_t s, size_t p)
{
    return (n + 2 * p - k) / s + 1;
}

/* 1 x H x W -> conv C0@3x3 pad 1 (tanh) -> the case's conv (tanh) -> dense 3
 * (softmax), `rule` attached; layer 1 is the conv with a transposed inverse. */
static bpl_net *case_net(const inv_case *c, const char *rule, double noise, uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {1, c->h, c->w};
    BPL_OK_OR_FAIL(bpl_net_create(&net, c->h * c->w, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, c->c0, 3, 3, 1, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, c->c1, c->kh, c->kw, c->stride, c->pad,
                                      BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    bpl_rule *r;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&r, rule));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "noise", noise));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    /* The biases start at zero: give them values to check. */
    uint64_t s = seed + 1000;
    test_fill_uniform(test_tensor(net, 0, "bias"), c->c0, -0.3f, 0.3f, &s);
    test_fill_uniform(test_tensor(net, 1, "bias"), c->c1, -0.3f, 0.3f, &s);
    test_fill_uniform(test_tensor(net, 1, "inverse_bias"), c->c0, -0.3f, 0.3f, &s);
    return net;
}

/* out[c][y][x] = act(cb[c] + sum over o, oy, ox, i, j with oy s + i - p = y and
 * ox s + j - p = x of V[o][c][i][j] h[o][oy][ox]): a transposed convolution,
 * scattered from each output position as its definition reads, in double. */
static void direct_transposed(const inv_case *c, const double *v, const double *cb,
                              const double *h, int tanh_act, double *out)
{
    size_t ho = extent(c->h, c->kh, c->stride, c->pad);
    size_t wo = extent(c->w, c->kw, c->stride, c->pad);
    size_t n_in = c->c0 * c->h * c->w;
    for (size_t ch = 0; ch < c->c0; ch++)
        for (size_t i = 0; i < c->h * c->w; i++)
            out[ch * c->h * c->w + i] = cb[ch];
    for (size_t o = 0; o < c->c1; o++)
        for (size_t oy = 0; oy < ho; oy++)
            for (size_t ox = 0; ox < wo; ox++) {
                double a = h[(o * ho + oy) * wo + ox];
                for (size_t ch = 0; ch < c->c0; ch++)
                    for (size_t i = 0; i < c->kh; i++)
                        for (size_t j = 0; j < c->kw; j++) {
                            long y = (long)(oy * c->stride + i) - (long)c->pad;
                            long x = (long)(ox * c->stride + j) - (long)c->pad;
                            if (y < 0 || x < 0 || y >= (long)c->h || x >= (long)c->w)
                                continue;
                            out[(ch * c->h + (size_t)y) * c->w + (size_t)x] +=
                                v[((o * c->c0 + ch) * c->kh + i) * c->kw + j] * a;
                        }
            }
    for (size_t i = 0; tanh_act && i < n_in; i++)
        out[i] = tanh(out[i]);
}

static double *to_double(const float *v, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = v[i];
    return d;
}

static size_t n_weights(const inv_case *c)
{
    return c->c1 * c->c0 * c->kh * c->kw;
}

/* g_1 of each row of `rows` (layer 1's output space) by the direct loops. */
static void direct_rows(bpl_net *net, const inv_case *c, const float *rows, size_t batch,
                        int tanh_act, double *out)
{
    size_t n_out = bpl_layer_units(bpl_net_layer(net, 1)), n_in = c->c0 * c->h * c->w;
    double *v = to_double(test_tensor(net, 1, "inverse"), n_weights(c));
    double *cb = to_double(test_tensor(net, 1, "inverse_bias"), c->c0);
    for (size_t n = 0; n < batch; n++) {
        double *h = to_double(rows + n * n_out, n_out);
        direct_transposed(c, v, cb, h, tanh_act, out + n * n_in);
        free(h);
    }
    free(v);
    free(cb);
}

static void assert_close_rows(const float *got, const double *want, size_t n, double tol,
                              const char *what, size_t k)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
                      "case %zu: %s[%zu] %.8g, direct %.8g", k, what, i, (double)got[i],
                      want[i]);
}

/* The inverse's shapes: V as the weight, c per input channel. */
static void assert_inverse_shape(bpl_net *net, const inv_case *c)
{
    size_t rows, cols;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 1), "inverse", &rows, &cols, NULL));
    ck_assert_uint_eq(rows, c->c1);
    ck_assert_uint_eq(cols, c->c0 * c->kh * c->kw);
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 1), "inverse_bias", &rows, &cols,
                                         NULL));
    ck_assert_uint_eq(rows * cols, c->c0);
}

/* g_1(h_1) and g_1(t_1), as the targets of dtp leave them in layer 0's
 * buffers, are the direct loops' transposed convolution; the target is
 * h_0 + (g_1(t_1) - g_1(h_1)) of those buffers, to the bit. */
START_TEST(inverse_is_a_transposed_convolution)
{
    enum { B = 3 };
    for (size_t k = 0; k < N_CASES; k++)
        for (int linear = 0; linear < 2; linear++) {
            const inv_case *c = &cases[k];
            bpl_net *net = case_net(c, "dtp", 0.1, 40 + k);
            if (linear)
                BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "inverse_activation",
                                                   "linear"));
            assert_inverse_shape(net, c);
            size_t n_x = c->h * c->w, n_in = c->c0 * n_x;
            float *x = malloc(B * n_x * sizeof *x), y[B * 3];
            uint64_t seed = 70 + k;
            test_fill_uniform(x, B * n_x, -1.0f, 1.0f, &seed);
            test_fill_onehot(y, B, 3, &seed);
            test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 0);
            double *want = malloc(B * n_in * sizeof *want);
            direct_rows(net, c, test_buffer(net, 1, "activation"), B, !linear, want);
            assert_close_rows(test_buffer(net, 0, "g_value"), want, B * n_in, 1e-5,
                              "g(h)", k);
            direct_rows(net, c, test_buffer(net, 1, "target"), B, !linear, want);
            assert_close_rows(test_buffer(net, 0, "g_target"), want, B * n_in, 1e-5,
                              "g(t)", k);
            const float *h0 = test_buffer(net, 0, "activation"),
                        *t0 = test_buffer(net, 0, "target"),
                        *gt = test_buffer(net, 0, "g_target"),
                        *gv = test_buffer(net, 0, "g_value");
            for (size_t i = 0; i < B * n_in; i++)
                ck_assert_msg(t0[i] == h0[i] + (gt[i] - gv[i]),
                              "case %zu: t_0[%zu] is not h + (g(t) - g(h))", k, i);
            free(x);
            free(want);
            bpl_net_destroy(net);
        }
}
END_TEST

/* L(V, c) = mean over rows of 1/2 |g_1(no) - r|^2, no the noisy input's
 * image ("noisy_out" of layer 1), r what the inverse reconstructs. */
static double reconstruction_loss(bpl_net *net, const inv_case *c, const double *v,
                                  const double *cb, const float *no, const float *r,
                                  size_t batch)
{
    size_t n_out = bpl_layer_units(bpl_net_layer(net, 1)), n_in = c->c0 * c->h * c->w;
    double *out = malloc(n_in * sizeof *out), loss = 0.0;
    for (size_t n = 0; n < batch; n++) {
        double *h = to_double(no + n * n_out, n_out);
        direct_transposed(c, v, cb, h, 1, out);
        for (size_t i = 0; i < n_in; i++) {
            double d = out[i] - r[n * n_in + i];
            loss += 0.5 * d * d;
        }
        free(h);
    }
    free(out);
    return loss / (double)batch;
}

/* The inverse's gradients (V and c) against central differences of its
 * reconstruction loss, noise-preserving (dtp) and denoising (sdtp). */
START_TEST(inverse_gradient_matches_finite_differences)
{
    enum { B = 2 };
    static const char *const rules[] = {"dtp", "sdtp"};
    const double eps = 1e-4;
    for (size_t k = 0; k < N_CASES; k++)
        for (size_t ri = 0; ri < 2; ri++) {
            const inv_case *c = &cases[k];
            bpl_net *net = case_net(c, rules[ri], 0.3, 90 + k);
            size_t n_x = c->h * c->w;
            float *x = malloc(B * n_x * sizeof *x), y[B * 3];
            uint64_t seed = 11 + k;
            test_fill_uniform(x, B * n_x, -1.0f, 1.0f, &seed);
            test_fill_onehot(y, B, 3, &seed);
            test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
            /* what the step reconstructed, and from what */
            const float *no = test_buffer(net, 1, "noisy_out");
            const float *r = ri == 0 ? test_buffer(net, 0, "noisy")
                                     : test_buffer(net, 0, "activation");
            double *v = to_double(test_tensor(net, 1, "inverse"), n_weights(c));
            double *cb = to_double(test_tensor(net, 1, "inverse_bias"), c->c0);
            const float *gv = test_grad(net, 1, "inverse");
            const float *gc = test_grad(net, 1, "inverse_bias");
            for (size_t t = 0; t < 2; t++) {
                double *p = t == 0 ? v : cb;
                const float *g = t == 0 ? gv : gc;
                size_t n = t == 0 ? n_weights(c) : c->c0;
                for (size_t i = 0; i < n; i++) {
                    double saved = p[i];
                    p[i] = saved + eps;
                    double up = reconstruction_loss(net, c, v, cb, no, r, B);
                    p[i] = saved - eps;
                    double down = reconstruction_loss(net, c, v, cb, no, r, B);
                    p[i] = saved;
                    double numeric = (up - down) / (2 * eps);
                    ck_assert_msg(fabs(g[i] - numeric) <= 1e-4 + 1e-3 * fabs(numeric),
                                  "%s case %zu: %s[%zu]: %.7g, finite difference %.7g",
                                  rules[ri], k, t == 0 ? "inverse" : "inverse_bias", i,
                                  (double)g[i], numeric);
                }
            }
            free(v);
            free(cb);
            free(x);
            bpl_net_destroy(net);
        }
}
END_TEST

/* ---- a perfect inverse ---------------------------------------------------- */

/* The 8 x 8 Sylvester Hadamard matrix over sqrt(8): orthogonal, H^T H = I. */
static float hadamard(size_t i, size_t j)
{
    return (__builtin_popcount((unsigned)(i & j)) % 2 ? -1.0f : 1.0f) / sqrtf(8.0f);
}

/* Linear layers: 1x4x4 -> conv 2@3x3 pad 1 -> conv 8@2x2 stride 2 (W = H, no
 * bias) -> dense 3, MSE.  The stride-2 2x2 conv on 2 channels takes each
 * 2x2 patch of both channels (8 values) to 8 outputs through H: an
 * invertible map, whose inverse is the transposed convolution with V = W.
 * With that inverse, DTP's target below maps exactly onto the target
 * above: f_1(t_0) = t_1, t_0 = f_1^-1(t_1). */
START_TEST(perfect_inverse_inverts_the_target)
{
    enum { B = 4 };
    bpl_net *net;
    const size_t chw[] = {1, 4, 4};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 5));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 2, 3, 3, 1, 1, BPL_ACT_LINEAR,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 8, 2, 2, 2, 0, BPL_ACT_LINEAR,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_LINEAR, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    bpl_rule *r;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&r, "dtp"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "inverse_activation", "linear"));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "target_step", 0.5));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    float w[64];
    for (size_t i = 0; i < 8; i++)
        for (size_t j = 0; j < 8; j++)
            w[i * 8 + j] = hadamard(i, j);
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 1), "weight", w, 64));
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 1), "inverse", w, 64));
    float x[B * 16], y[B * 3];
    uint64_t seed = 3;
    test_fill_uniform(x, B * 16, -1.0f, 1.0f, &seed);
    test_fill_uniform(y, B * 3, -2.0f, 2.0f, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 0);
    const float *h0 = test_buffer(net, 0, "activation"), *t0 = test_buffer(net, 0, "target");
    const float *h1 = test_buffer(net, 1, "activation"), *t1 = test_buffer(net, 1, "target");
    /* The inverse is perfect: g(h_1) = h_0. */
    for (size_t i = 0; i < B * 32; i++)
        ck_assert_float_eq_tol(test_buffer(net, 0, "g_value")[i], h0[i], 1e-5f);
    /* The target above moved (the output is off its target), and so did t_0. */
    double moved = 0.0;
    for (size_t i = 0; i < B * 32; i++)
        moved = fmax(moved, fabs(t1[i] - h1[i]));
    ck_assert_double_gt(moved, 1e-3);
    /* f_1(t_0) = t_1. */
    float *image = malloc(B * 32 * sizeof *image);
    BPL_OK_OR_FAIL(bpl_layer_forward(bpl_net_layer(net, 1), t0, B, BPL_ACT_LINEAR, image));
    for (size_t i = 0; i < B * 32; i++)
        ck_assert_msg(fabs(image[i] - t1[i]) <= 1e-5, "f(t_0)[%zu] %.8g, t_1 %.8g", i,
                      (double)image[i], (double)t1[i]);
    free(image);
    bpl_net_destroy(net);
}
END_TEST

/* ---- training ------------------------------------------------------------------ */

enum { SIDE = 10, N_TRAIN = 256, N_CLASSES = 3 };

/* 1x10x10 images of a bar, horizontal, vertical or diagonal, at a random
 * place, over noise: the class is the bar's orientation. */
static void bars(float *x, float *y, size_t n, uint64_t *seed)
{
    test_fill_uniform(x, n * SIDE * SIDE, -0.2f, 0.2f, seed);
    test_fill_onehot(y, n, N_CLASSES, seed);
    for (size_t e = 0; e < n; e++) {
        float place[2];
        test_fill_uniform(place, 2, 0.0f, 1.0f, seed);
        size_t a = 1 + (size_t)(place[0] * 4), b = 1 + (size_t)(place[1] * 4);
        float *img = x + e * SIDE * SIDE;
        for (size_t i = 0; i < 5; i++) {
            size_t yy = a, xx = b;
            if (y[e * N_CLASSES + 0] > 0.5f) /* horizontal */
                xx += i;
            else if (y[e * N_CLASSES + 1] > 0.5f) /* vertical */
                yy += i;
            else { /* diagonal */
                yy += i;
                xx += i;
            }
            img[yy * SIDE + xx] += 1.0f;
        }
    }
}

/* 1x10x10 -> conv 4@3x3 stride 2 pad 1 (tanh, 4x5x5) -> conv 8@3x3 stride 2
 * pad 1 (tanh, 8x3x3) -> dense 16 (tanh) -> dense 3 (softmax). */
static bpl_net *strided_net(const char *rule, uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {1, SIDE, SIDE};
    BPL_OK_OR_FAIL(bpl_net_create(&net, SIDE * SIDE, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 4, 3, 3, 2, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, 8, 3, 3, 2, 1, BPL_ACT_TANH,
                                      BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 16, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, N_CLASSES, BPL_ACT_SOFTMAX,
                                     BPL_INIT_GLOROT_UNIFORM));
    test_attach(net, rule);
    return net;
}

/* The mean cross-entropy over n rows, and the fraction classified right. */
static double mean_loss(bpl_net *net, const float *x, const float *y, size_t n,
                        double *accuracy)
{
    float *out = malloc(n * N_CLASSES * sizeof *out);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, n, out, n * N_CLASSES));
    double total = 0.0;
    size_t right = 0;
    for (size_t e = 0; e < n; e++) {
        size_t best = 0;
        for (size_t k = 0; k < N_CLASSES; k++) {
            total -= y[e * N_CLASSES + k] * log(fmax(out[e * N_CLASSES + k], 1e-12));
            if (out[e * N_CLASSES + k] > out[e * N_CLASSES + best])
                best = k;
        }
        right += y[e * N_CLASSES + best] > 0.5f;
    }
    free(out);
    if (accuracy)
        *accuracy = (double)right / (double)n;
    return total / (double)n;
}

/* Layer 1 of the strided net as the direct loops see it: 4x5x5 in, 8@3x3
 * stride 2 pad 1. */
static const inv_case strided_layer1 = {5, 5, 4, 8, 3, 3, 2, 1};

/* The spread of n rows of `width` values, mean |h - mean h|^2: the error of
 * the best constant reconstruction, which an inverse that learned anything
 * beats. */
static double spread_of(const float *h, size_t n, size_t width)
{
    double total = 0.0;
    for (size_t i = 0; i < width; i++) {
        double mean = 0.0;
        for (size_t e = 0; e < n; e++)
            mean += h[e * width + i];
        mean /= (double)n;
        for (size_t e = 0; e < n; e++)
            total += (h[e * width + i] - mean) * (h[e * width + i] - mean);
    }
    return total / (double)n;
}

/* Each inverse's reconstruction error mean |g_l(f_l(h_{l-1})) - h_{l-1}|^2 on
 * the rows, computed here (the transposed convolution by the direct loops,
 * the dense inverses as tanh(V h + c)) from the layers' own forward maps;
 * err[l] for l = 1 ... top, 0 where layer l has no inverse; spread[l], the
 * spread of h_{l-1} (spread_of). */
static void reconstruction_errors(bpl_net *net, const float *x, size_t n, double *err,
                                  double *spread)
{
    size_t n_layers = bpl_net_layer_count(net);
    float *h[4];
    const float *in = x;
    for (size_t l = 0; l < n_layers; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        h[l] = malloc(n * bpl_layer_units(layer) * sizeof *h[l]);
        BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, n, bpl_layer_activation(layer), h[l]));
        in = h[l];
    }
    err[0] = spread[0] = 0.0;
    for (size_t l = 1; l < n_layers; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t below = bpl_layer_units(bpl_net_layer(net, l - 1));
        size_t units = bpl_layer_units(layer);
        err[l] = 0.0;
        spread[l] = spread_of(h[l - 1], n, below);
        if (bpl_layer_tensor_info(layer, "inverse", NULL, NULL, NULL) != BPL_OK)
            continue;
        double *g = malloc(n * below * sizeof *g);
        if (l == 1) {
            direct_rows(net, &strided_layer1, h[1], n, 1, g);
        } else {
            const float *v = test_tensor(net, l, "inverse");
            const float *c = test_tensor(net, l, "inverse_bias");
            for (size_t e = 0; e < n; e++)
                for (size_t i = 0; i < below; i++) {
                    double a = c[i];
                    for (size_t j = 0; j < units; j++)
                        a += (double)v[i * units + j] * h[l][e * units + j];
                    g[e * below + i] = tanh(a);
                }
        }
        for (size_t i = 0; i < n * below; i++)
            err[l] += (g[i] - h[l - 1][i]) * (g[i] - h[l - 1][i]);
        err[l] /= (double)n;
        free(g);
    }
    for (size_t l = 0; l < n_layers; l++)
        free(h[l]);
}

static void train_epochs(bpl_net *net, const float *x, const float *y, int epochs)
{
    for (int epoch = 0; epoch < epochs; epoch++)
        for (size_t b = 0; b < N_TRAIN; b += 32)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x + b * SIDE * SIDE, y + b * N_CLASSES,
                                               32, NULL));
}

/* dtp and sdtp lower the loss of the strided net on the bars and classify
 * fresh bars well; every inverse (the transposed convolution of layer 1, the
 * dense ones above) reconstructs better after inverse-only pre-training, and
 * the hidden layers' explain more than half the spread of what they
 * reconstruct after the forward weights have moved under them (at the start
 * they do worse than a constant).  (The output layer's inverse in sdtp sees 3 probabilities of 16
 * units: once the hidden layer spreads out it reconstructs no better.) */
START_TEST(rules_train_a_strided_conv_net)
{
    static const char *const rules[] = {"dtp", "sdtp"};
    const char *rule = rules[_i];
    bpl_net *net = strided_net(rule, 21);
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 3e-3));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "fb_lr", 3e-3));
    float *x = malloc(N_TRAIN * SIDE * SIDE * sizeof *x), y[N_TRAIN * N_CLASSES];
    float *xt = malloc(N_TRAIN * SIDE * SIDE * sizeof *xt), yt[N_TRAIN * N_CLASSES];
    uint64_t seed = 8;
    bars(x, y, N_TRAIN, &seed);
    bars(xt, yt, N_TRAIN, &seed);
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "pretrain_steps", 3 * N_TRAIN / 32));
    double before = mean_loss(net, x, y, N_TRAIN, NULL), err0[4], errp[4], err1[4];
    double spread0[4], spreadp[4], spread1[4];
    reconstruction_errors(net, x, N_TRAIN, err0, spread0);
    train_epochs(net, x, y, 3);
    reconstruction_errors(net, x, N_TRAIN, errp, spreadp);
    ck_assert_msg(mean_loss(net, x, y, N_TRAIN, NULL) == before, "pre-training moved W");
    train_epochs(net, x, y, 30);
    double acc, after = mean_loss(net, x, y, N_TRAIN, NULL);
    double fresh = mean_loss(net, xt, yt, N_TRAIN, &acc);
    reconstruction_errors(net, x, N_TRAIN, err1, spread1);
    printf("%s: loss %.4f -> %.4f (fresh bars %.4f, accuracy %.3f); reconstruction "
           "errors at the start, pre-trained, trained: %.4g %.4g %.4g (conv), %.4g %.4g "
           "%.4g, %.4g %.4g %.4g; spreads %.4g %.4g %.4g (conv), %.4g %.4g %.4g\n",
           rule, before, after, fresh, acc, err0[1], errp[1], err1[1], err0[2], errp[2],
           err1[2], err0[3], errp[3], err1[3], spread0[1], spreadp[1], spread1[1], spread0[2],
           spreadp[2], spread1[2]);
    ck_assert_msg(after < 0.3 * before, "%s: loss %.4g -> %.4g", rule, before, after);
    ck_assert_msg(acc > 0.8, "%s: accuracy %.3f on fresh bars", rule, acc);
    size_t top_inverse = strcmp(rule, "sdtp") == 0 ? 3 : 2;
    for (size_t l = 1; l <= top_inverse; l++)
        ck_assert_msg(errp[l] < 0.85 * err0[l],
                      "%s: inverse of layer %zu: reconstruction error %.4g -> %.4g "
                      "pre-trained", rule, l, err0[l], errp[l]);
    for (size_t l = 1; l <= 2; l++)
        ck_assert_msg(err1[l] < 0.5 * spread1[l],
                      "%s: inverse of layer %zu: reconstruction error %.4g trained, not "
                      "under half the spread %.4g of what it reconstructs",
                      rule, l, err1[l], spread1[l]);
    free(x);
    free(xt);
    bpl_net_destroy(net);
}
END_TEST

/* The alignment diagnostic gives an angle per layer of a conv net trained by
 * dtp or sdtp, and draws nothing: a twin net that did not run it trains to
 * the same bits. */
START_TEST(alignment_on_a_conv_net)
{
    static const char *const rules[] = {"dtp", "sdtp"};
    bpl_net *a = strided_net(rules[_i], 6), *b = strided_net(rules[_i], 6);
    enum { B = 32 };
    float x[B * SIDE * SIDE], y[B * N_CLASSES];
    uint64_t seed = 19;
    bars(x, y, B, &seed);
    double angles[4];
    BPL_OK_OR_FAIL(bpl_net_alignment(a, x, y, B, angles, 4));
    for (size_t l = 0; l < 4; l++)
        ck_assert_msg(isfinite(angles[l]) && angles[l] >= 0.0 && angles[l] <= 180.0,
                      "%s: layer %zu angle %g", rules[_i], l, angles[l]);
    ck_assert_msg(angles[3] < 1e-3, "%s: the output layer trains on the task loss",
                  rules[_i]);
    for (int i = 0; i < 3; i++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, B, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, B, NULL));
    }
    for (size_t l = 0; l < 4; l++)
        for (const char *const *name = (const char *const[]){"weight", "inverse", NULL}; *name;
             name++) {
            size_t rows, cols;
            if (bpl_layer_tensor_info(bpl_net_layer(a, l), *name, &rows, &cols, NULL) !=
                BPL_OK)
                continue;
            ck_assert_msg(memcmp(test_tensor(a, l, *name), test_tensor(b, l, *name),
                                 rows * cols * sizeof(float)) == 0,
                          "%s: layer %zu %s", rules[_i], l, *name);
        }
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

/* ---- the transposed path on a dense layer ------------------------------------ */

/* A dense kind without its dense matrix takes the transposed path: V of the
 * weight's shape [units][inputs] through send_error, a bias per unit (a flat
 * input has a channel per unit).  With V = the dense inverse's matrix
 * transposed, the targets and the inverse's gradients are the dense
 * inverse's: the path computes the same map and gradient, to rounding. */
START_TEST(transposed_path_is_the_dense_inverse)
{
    static bpl__kind not_dense;
    not_dense = bpl__dense_kind;
    not_dense.name = "test_not_dense";
    not_dense.caps &= ~(unsigned)BPL__CAN_DENSE;
    static const size_t units[] = {6, 5, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *dense = test_make_net(7, units, acts, 4, 12);
    bpl_net *other = test_make_net(7, units, acts, 4, 12);
    bpl_net_layer(other, 1)->kind = &not_dense;
    bpl_net_layer(other, 2)->kind = &not_dense;
    test_attach(dense, "sdtp");
    test_attach(other, "sdtp");
    for (size_t l = 1; l <= 2; l++) {
        size_t rows, cols, brows, bcols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(other, l), "inverse", &rows, &cols,
                                             NULL));
        ck_assert_uint_eq(rows, units[l]);
        ck_assert_uint_eq(cols, units[l - 1]);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(other, l), "inverse_bias", &brows,
                                             &bcols, NULL));
        ck_assert_uint_eq(brows * bcols, units[l - 1]);
        const float *v = test_tensor(dense, l, "inverse");
        float *vt = test_tensor(other, l, "inverse");
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                vt[i * cols + j] = v[j * rows + i];
        uint64_t seed = 40 + l;
        float *c = test_tensor(dense, l, "inverse_bias");
        test_fill_uniform(c, cols, -0.3f, 0.3f, &seed);
        memcpy(test_tensor(other, l, "inverse_bias"), c, cols * sizeof *c);
    }
    enum { B = 5 };
    float x[B * 7], y[B * 3];
    uint64_t seed = 2;
    test_fill_uniform(x, B * 7, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    test_run_hooks(dense, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    test_run_hooks(other, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < B * units[l]; i++)
            ck_assert_float_eq_tol(test_buffer(other, l, "target")[i],
                                   test_buffer(dense, l, "target")[i], 1e-6f);
    for (size_t l = 1; l <= 2; l++) {
        const float *g = test_grad(dense, l, "inverse"), *gt = test_grad(other, l, "inverse");
        size_t rows = units[l], cols = units[l - 1];
        double scale = test_max_abs(g, rows * cols);
        ck_assert_double_gt(scale, 0.0);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                ck_assert_msg(fabs(gt[i * cols + j] - g[j * rows + i]) <= 1e-5 * scale,
                              "layer %zu: dV^T[%zu][%zu]", l, i, j);
        for (size_t i = 0; i < cols; i++)
            ck_assert_float_eq_tol(test_grad(other, l, "inverse_bias")[i],
                                   test_grad(dense, l, "inverse_bias")[i], 1e-6f);
    }
    bpl_net_layer(other, 1)->kind = &bpl__dense_kind;
    bpl_net_layer(other, 2)->kind = &bpl__dense_kind;
    bpl_net_destroy(dense);
    bpl_net_destroy(other);
}
END_TEST

/* ---- shapes and refusals --------------------------------------------------------- */

/* The conv layer's inverse has the weight's shape and a bias per input
 * channel; the dense layers above keep their dense inverses. */
START_TEST(inverse_shapes)
{
    bpl_net *net = strided_net("sdtp", 2);
    static const struct {
        size_t l, rows, cols, bias;
    } want[] = {{1, 8, 4 * 9, 4}, {2, 8 * 9, 16, 8 * 9}, {3, 16, 3, 16}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        bpl_layer *layer = bpl_net_layer(net, want[i].l);
        size_t rows, cols;
        int group;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "inverse", &rows, &cols, &group));
        ck_assert_uint_eq(rows, want[i].rows);
        ck_assert_uint_eq(cols, want[i].cols);
        ck_assert_int_eq(group, BPL_GROUP_FEEDBACK);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "inverse_bias", &rows, &cols, &group));
        ck_assert_uint_eq(rows * cols, want[i].bias);
        ck_assert_int_eq(group, BPL_GROUP_FEEDBACK);
    }
    /* layer 0 has none: nothing below it to carry a target to */
    ck_assert_int_eq(bpl_layer_tensor_info(bpl_net_layer(net, 0), "inverse", NULL, NULL, NULL),
                     BPL_ERR_NOT_FOUND);
    bpl_net_destroy(net);
}
END_TEST

static int attach(bpl_net *net, const char *name)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    int rc = bpl_net_set_rule(net, rule);
    if (rc != BPL_OK)
        bpl_rule_destroy(rule);
    return rc;
}

/* tp, segregated and microcircuit multiply by a dense W: refused on a conv
 * net.  dtp and sdtp are refused on a layer whose kind has no transposed
 * map to run an inverse through (a pooling layer has no weight), before
 * anything changes. */
START_TEST(refusals)
{
    static const char *const dense_only[] = {"tp", "segregated", "microcircuit"};
    for (size_t i = 0; i < sizeof dense_only / sizeof *dense_only; i++) {
        bpl_net *net = strided_net("backprop", 1);
        BPL_EXPECT_ERROR(attach(net, dense_only[i]), BPL_ERR_UNSUPPORTED,
                         "needs a dense weight matrix, which layer 0 (kind 'conv2d') does "
                         "not provide");
        ck_assert_msg(strstr(bpl_last_error_message(), dense_only[i]) != NULL, "%s",
                      bpl_last_error_message());
        ck_assert_str_eq(bpl_rule_name(bpl_net_rule(net)), "backprop");
        bpl_net_destroy(net);
    }
    static bpl__kind pool_like;
    pool_like = bpl__conv2d_kind;
    pool_like.name = "test_pool";
    pool_like.caps &= ~(unsigned)BPL__CAN_TRANSPOSE;
    static const char *const inverse_rules[] = {"dtp", "sdtp"};
    for (size_t i = 0; i < 2; i++) {
        bpl_net *net = strided_net("backprop", 1);
        bpl_net_layer(net, 1)->kind = &pool_like;
        BPL_EXPECT_ERROR(attach(net, inverse_rules[i]), BPL_ERR_UNSUPPORTED,
                         "needs a transposed map of its weight's shape to run a learned "
                         "inverse through, which layer 1 (kind 'test_pool') does not provide");
        ck_assert_str_eq(bpl_rule_name(bpl_net_rule(net)), "backprop");
        bpl_net_layer(net, 1)->kind = &bpl__conv2d_kind;
        bpl_net_destroy(net);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("target_prop_conv");
    TCase *core = tcase_create("inverse");
    tcase_add_test(core, inverse_is_a_transposed_convolution);
    tcase_add_test(core, inverse_gradient_matches_finite_differences);
    tcase_add_test(core, perfect_inverse_inverts_the_target);
    tcase_add_test(core, inverse_shapes);
    tcase_add_test(core, refusals);
    tcase_add_test(core, transposed_path_is_the_dense_inverse);
    tcase_add_loop_test(core, alignment_on_a_conv_net, 0, 2);
    suite_add_tcase(s, core);
    TCase *train = tcase_create("training");
    tcase_set_timeout(train, 120);
    tcase_add_loop_test(train, rules_train_a_strided_conv_net, 0, 2);
    suite_add_tcase(s, train);
    return test_run_suite(s);
}
