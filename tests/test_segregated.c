/*
 * test_segregated.c - segregated dendrites against the properties that
 * define the model:
 *
 *  - the forward sweep is the paper's: C = k_B (lambda_max W x + b) in hidden
 *    layers, k_D (...) at the output, rates lambda_max sigma(C), and the
 *    prediction's argmax is that of the output soma;
 *  - without a teacher the target phase repeats the forward phase and every
 *    update is exactly zero;
 *  - with symmetric feedback and small errors the hidden update points close
 *    to backprop of the same output error through the same neurons;
 *  - spiking mode fires at lambda_max sigma(C) over long windows;
 *  - the paper's initialisation puts the mean somatic drive near 3;
 *  - both modes are deterministic from the seed; bad settings are refused.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"
#include "testhooks.h"

static bpl_net *make_net(size_t inputs, const size_t *units, size_t n_layers, uint64_t seed,
                         const char *const *settings)
{
    int acts[8];
    for (size_t l = 0; l < n_layers; l++)
        acts[l] = l + 1 < n_layers ? BPL_ACT_TANH : BPL_ACT_SOFTMAX; /* ignored by the rule */
    bpl_net *net = test_make_net(inputs, units, acts, n_layers, seed);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "segregated"));
    for (; settings && *settings; settings += 2)
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, settings[0], settings[1]));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    return net;
}

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

START_TEST(forward_sweep_is_the_papers)
{
    const size_t units[] = {7, 4};
    bpl_net *net = make_net(5, units, 2, 3, NULL);
    enum { B = 3 };
    float x[B * 5], out[B * 4];
    uint64_t seed = 2;
    test_fill_uniform(x, B * 5, 0.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, out, B * 4));
    const double lambda = 0.2, k_b = 0.6 / (0.1 + 0.6), k_d = 0.6 / (0.1 + 0.6);
    const float *w0 = test_tensor(net, 0, "weight"), *b0 = test_tensor(net, 0, "bias");
    const float *w1 = test_tensor(net, 1, "weight"), *b1 = test_tensor(net, 1, "bias");
    for (int b = 0; b < B; b++) {
        double s[7], c_out[4];
        for (int j = 0; j < 7; j++) {
            double a = b0[j];
            for (int i = 0; i < 5; i++)
                a += lambda * w0[j * 5 + i] * x[b * 5 + i];
            s[j] = sigmoid(k_b * a);
        }
        int best = 0, predicted = 0;
        for (int k = 0; k < 4; k++) {
            double a = b1[k];
            for (int j = 0; j < 7; j++)
                a += lambda * w1[k * 7 + j] * s[j];
            c_out[k] = k_d * a;
            ck_assert_msg(fabs(sigmoid(c_out[k]) - out[b * 4 + k]) < 1e-5,
                          "example %d unit %d: %g vs %g", b, k, sigmoid(c_out[k]),
                          (double)out[b * 4 + k]);
            best = c_out[k] > c_out[best] ? k : best;
            predicted = out[b * 4 + k] > out[b * 4 + predicted] ? k : predicted;
        }
        ck_assert_int_eq(best, predicted); /* argmax of the output soma */
    }
    bpl_net_destroy(net);
}
END_TEST

START_TEST(no_teacher_no_update)
{
    static const char *const settings[] = {"teaching_gain", "0", NULL};
    const size_t units[] = {9, 8, 4};
    bpl_net *net = make_net(6, units, 3, 5, settings);
    enum { B = 4 };
    float x[B * 6], y[B * 4];
    uint64_t seed = 9;
    test_fill_uniform(x, B * 6, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 4, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    for (size_t l = 0; l < 3; l++) {
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, l), "weight", &rows, &cols,
                                             NULL));
        const float *gw = test_grad(net, l, "weight"), *gb = test_grad(net, l, "bias");
        for (size_t i = 0; i < rows * cols; i++)
            ck_assert_msg(gw[i] == 0.0f, "layer %zu weight update %zu = %g", l, i,
                          (double)gw[i]);
        for (size_t i = 0; i < rows; i++)
            ck_assert_msg(gb[i] == 0.0f, "layer %zu bias update", l);
    }
    /* a real step moves nothing either */
    float w[9 * 6];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", w, 54));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    ck_assert_mem_eq(w, test_tensor(net, 0, "weight"), sizeof w);
    bpl_net_destroy(net);
}
END_TEST

static double angle(const float *a, const double *b, size_t n)
{
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        dot += a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += b[i] * b[i];
    }
    return acos(dot / sqrt(na * nb)) * 180.0 / 3.14159265358979323846;
}

/* Backprop of an output error `e` (per example, OUT wide) through W_out and
 * the hidden neurons' sigma'(C): the gradient of the hidden weights. */
static void backprop_hidden(bpl_net *net, const double *e, size_t b_size, size_t in,
                            size_t h, size_t out, double *grad_w)
{
    const float *w1 = test_tensor(net, 1, "weight");
    const float *deriv = test_buffer(net, 0, "derivative"), *presyn = test_buffer(net, 0, "presyn");
    memset(grad_w, 0, h * in * sizeof *grad_w);
    for (size_t b = 0; b < b_size; b++)
        for (size_t j = 0; j < h; j++) {
            double d = 0;
            for (size_t k = 0; k < out; k++)
                d += e[b * out + k] * w1[k * h + j];
            d *= deriv[b * h + j];
            for (size_t i = 0; i < in; i++)
                grad_w[j * in + i] -= d * presyn[b * in + i]; /* a gradient, as the rule's */
        }
}

/* With symmetric feedback and a weak teacher, the hidden update is backprop
 * through the same neurons, up to a per-unit factor sigma'(A) of the apical
 * plateau.  With small weights (plateaus in their linear range) that factor
 * is nearly constant and the angle is a fraction of a degree.  (With the
 * paper's initialisation many plateaus saturate, sigma'(A) spans 0.007 to
 * 0.25 and the angle widens to about 35 degrees.) */
START_TEST(symmetric_feedback_follows_backprop)
{
    static const char *const settings[] = {"feedback", "symmetric", "teaching_gain", "0.02",
                                           "paper_init", "false", NULL};
    enum { IN = 12, H = 20, OUT = 6, B = 16 };
    const size_t units[] = {H, OUT};
    bpl_net *net = make_net(IN, units, 2, 7, settings);
    float x[B * IN], y[B * OUT];
    uint64_t seed = 4;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    const float *s_t = test_buffer(net, 1, "target_rate"), *s_f = test_buffer(net, 1, "activation");
    const float *e_out = test_buffer(net, 1, "delta");
    double rate_error[B * OUT], output_error[B * OUT], bp[H * IN];
    for (int i = 0; i < B * OUT; i++) {
        rate_error[i] = (double)s_t[i] - s_f[i];
        output_error[i] = e_out[i];
    }
    const float *rule = test_grad(net, 0, "weight");
    backprop_hidden(net, rate_error, B, IN, H, OUT, bp);
    double to_rates = angle(rule, bp, H * IN);
    backprop_hidden(net, output_error, B, IN, H, OUT, bp);
    double to_output = angle(rule, bp, H * IN);
    printf("symmetric feedback: hidden update vs backprop of the rate change %.1f degrees, "
           "of the output error %.1f degrees\n",
           to_rates, to_output);
    ck_assert_msg(to_rates < 5.0, "angle to backprop of the rate change %.1f", to_rates);
    ck_assert_msg(to_output < 5.0, "angle to backprop of the output error %.1f", to_output);
    /* the diagnostics API reports a descent direction too */
    double angles[2];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, B, angles, 2));
    ck_assert_msg(angles[0] < 90.0, "alignment %.1f", angles[0]);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(spiking_rates_converge)
{
    static const char *const settings[] = {
        "mode", "spiking", "phase_steps", "4000", "integration_steps", "3900",
        "phase_jitter", "false", NULL};
    enum { IN = 30, H = 40, OUT = 5, B = 4 };
    const size_t units[] = {H, OUT};
    bpl_net *net = make_net(IN, units, 2, 11, settings);
    float x[B * IN];
    uint64_t seed = 6;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_TRAIN, x, NULL, B, 0, 0);
    /* Per neuron: spikes in the window against the expected count
     * T lambda_max mean sigma(C); z-scores of a Poisson count. */
    const double t = 3900, lambda = 0.2;
    double sum_z = 0, sum_z2 = 0;
    size_t n = 0;
    for (size_t l = 0; l < 2; l++) {
        const float *empirical = test_buffer(net, l, "spike_rate"), *model = test_buffer(net, l, "mean_rate");
        size_t width = l == 0 ? H : OUT;
        for (size_t i = 0; i < B * width; i++, n++) {
            double expected = t * lambda * model[i], observed = t * lambda * empirical[i];
            double z = (observed - expected) / sqrt(expected);
            sum_z += z;
            sum_z2 += z * z;
        }
    }
    double mean_z = sum_z / (double)n, mean_z2 = sum_z2 / (double)n;
    printf("spiking: %zu neurons, mean z %.3f, mean z^2 %.3f\n", n, mean_z, mean_z2);
    ck_assert_msg(fabs(mean_z) < 4.0 / sqrt((double)n), "mean z %.3f", mean_z);
    ck_assert_msg(mean_z2 > 0.6 && mean_z2 < 1.4, "mean z^2 %.3f", mean_z2);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(paper_initialisation_drive)
{
    enum { IN = 784, H = 500, B = 64 };
    const size_t units[] = {H, 10};
    bpl_net *net = make_net(IN, units, 2, 1, NULL);
    static float x[B * IN];
    uint64_t seed = 3;
    /* The derivation assumes the layer below fires at the linearised rate of
     * a potential of 3: nu * 3 = (lambda_max / 4) * 3 = 0.15, i.e. x = 0.75. */
    test_fill_uniform(x, B * IN, 0.5f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_PREDICT, x, NULL, B, 0, 0);
    const float *basal = test_buffer(net, 0, "basal");
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < (size_t)B * H; i++) {
        sum += basal[i];
        sum2 += (double)basal[i] * basal[i];
    }
    double mean = sum / (B * H), sd = sqrt(sum2 / (B * H) - mean * mean);
    printf("paper init: basal potential mean %.2f, sd %.2f\n", mean, sd);
    ck_assert_msg(mean > 2.7 && mean < 3.3, "mean basal potential %.2f", mean);
    bpl_net_destroy(net);
}
END_TEST

static void train_and_copy(const char *mode, uint64_t seed, float *w, size_t n)
{
    const char *settings[] = {"mode", mode, "phase_steps", "20", "integration_steps", "10",
                              NULL};
    const size_t units[] = {10, 3};
    bpl_net *net = make_net(6, units, 2, seed, settings);
    float x[8 * 6], y[8 * 3];
    uint64_t data = 5;
    test_fill_uniform(x, 48, 0.0f, 1.0f, &data);
    test_fill_onehot(y, 8, 3, &data);
    for (int i = 0; i < 3; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", w, n));
    bpl_net_destroy(net);
}

START_TEST(deterministic_from_the_seed)
{
    static const char *const modes[] = {"rate", "spiking"};
    float a[60], b[60], c[60];
    train_and_copy(modes[_i], 1, a, 60);
    train_and_copy(modes[_i], 1, b, 60);
    train_and_copy(modes[_i], 2, c, 60);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

/* Spiking mode computes the learning signal of rate mode up to spike noise:
 * from the same weights, the weight updates of the two modes point the same
 * way (the rates are sampled, so not exactly). */
START_TEST(spiking_updates_follow_rate_updates)
{
    static const char *const spiking[] = {"mode", "spiking", NULL};
    enum { IN = 64, H = 40, OUT = 10, B = 64 };
    const size_t units[] = {H, OUT};
    bpl_net *rate = make_net(IN, units, 2, 17, NULL), *spike = make_net(IN, units, 2, 17, spiking);
    static float x[B * IN], y[B * OUT];
    uint64_t seed = 2;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    test_run_hooks(rate, BPL_PHASE_TRAIN, x, y, B, 1, 0);
    test_run_hooks(spike, BPL_PHASE_TRAIN, x, y, B, 1, 0);
    for (size_t l = 0; l < 2; l++) {
        /* the updates, built from each mode's errors and presynaptic rates */
        size_t n = l == 0 ? H : OUT, n_in = l == 0 ? IN : H;
        double *ur = calloc(n * n_in, sizeof *ur), *us = calloc(n * n_in, sizeof *us);
        float *usf = malloc(n * n_in * sizeof *usf);
        const float *dr = test_buffer(rate, l, "delta"), *pr = test_buffer(rate, l, "presyn");
        const float *ds = test_buffer(spike, l, "delta"), *ps = test_buffer(spike, l, "presyn");
        for (int b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++)
                for (size_t i = 0; i < n_in; i++) {
                    ur[j * n_in + i] += (double)dr[b * n + j] * pr[b * n_in + i];
                    us[j * n_in + i] += (double)ds[b * n + j] * ps[b * n_in + i];
                }
        for (size_t i = 0; i < n * n_in; i++)
            usf[i] = (float)us[i];
        double a = angle(usf, ur, n * n_in);
        printf("layer %zu: spiking vs rate update %.1f degrees\n", l, a);
        ck_assert_msg(a < 30.0, "layer %zu: %.1f degrees", l, a);
        free(ur);
        free(us);
        free(usf);
    }
    bpl_net_destroy(rate);
    bpl_net_destroy(spike);
}
END_TEST

/* ---- the update, computed here from the page's formulas ----------------- */

/* The rate-mode constants of the page, with this file's non-default settings. */
typedef struct seg_constants {
    double lambda, g_l, g_b, g_a, g_d, e_e, e_i, gain;
} seg_constants;

static const seg_constants defaults = {0.2, 0.1, 0.6, 0.0, 0.6, 8.0, -8.0, 1.0};

enum { MAX_UNITS = 16, MAX_LAYERS = 4 };

/* One step of rate mode from docs/rules/segregated.md, in double: the
 * gradients handed to the optimiser (the negated updates), per layer l:
 * gw[l] [units][inputs], gb[l] [units], and, for hidden layers, gy[l]
 * [units][outputs] of learned feedback.  y_override replaces the net's Y
 * (NULL: read the net's "feedback" tensors). */
static void seg_reference(bpl_net *net, const seg_constants *k, const float *x, const float *y,
                          size_t batch, double *const *y_override, double **gw, double **gb,
                          double **gy)
{
    size_t top = bpl_net_layer_count(net) - 1, n_top = bpl_layer_units(bpl_net_layer(net, top));
    const double k_b = k->g_b / (k->g_l + k->g_b + k->g_a), k_d = k->g_d / (k->g_l + k->g_d);
    const double p_hidden = 20.0 / k->lambda, p_final = 20.0 / (k->lambda * k->lambda);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl_layer_units(layer), n_in = bpl_layer_inputs(layer);
        memset(gw[l], 0, n * n_in * sizeof *gw[l]);
        memset(gb[l], 0, n * sizeof *gb[l]);
        if (l < top)
            memset(gy[l], 0, n * n_top * sizeof *gy[l]);
    }
    for (size_t e = 0; e < batch; e++) {
        /* forward phase: r_0 = lambda x, C = k_B (W r + b), output k_D (W r + b) */
        double r[MAX_LAYERS + 1][64], s[MAX_LAYERS][MAX_UNITS], basal_top[MAX_UNITS];
        size_t n_in0 = bpl_net_inputs(net);
        for (size_t i = 0; i < n_in0; i++)
            r[0][i] = k->lambda * x[e * n_in0 + i];
        for (size_t l = 0; l <= top; l++) {
            bpl_layer *layer = bpl_net_layer(net, l);
            size_t n = bpl_layer_units(layer), n_in = bpl_layer_inputs(layer);
            const float *w = test_tensor(net, l, "weight"), *b = test_tensor(net, l, "bias");
            for (size_t j = 0; j < n; j++) {
                double basal = b[j];
                for (size_t i = 0; i < n_in; i++)
                    basal += (double)w[j * n_in + i] * r[l][i];
                if (l == top)
                    basal_top[j] = basal;
                s[l][j] = sigmoid((l == top ? k_d : k_b) * basal);
                r[l + 1][j] = k->lambda * s[l][j];
            }
        }
        /* target phase: the output soma under teaching conductances */
        double s_t[MAX_UNITS];
        for (size_t j = 0; j < n_top; j++) {
            double g_e = k->gain * y[e * n_top + j], g_i = k->gain * (1.0 - y[e * n_top + j]);
            s_t[j] = sigmoid((k->g_d * basal_top[j] + g_e * k->e_e + g_i * k->e_i) /
                             (k->g_l + k->g_d + g_e + g_i));
        }
        for (size_t l = 0; l <= top; l++) {
            bpl_layer *layer = bpl_net_layer(net, l);
            size_t n = bpl_layer_units(layer), n_in = bpl_layer_inputs(layer);
            double err[MAX_UNITS], recon[MAX_UNITS];
            if (l == top) {
                for (size_t j = 0; j < n; j++)
                    err[j] = (k->lambda * s_t[j] - k->lambda * s[l][j]) * k_d * k->lambda *
                             s[l][j] * (1.0 - s[l][j]);
            } else {
                const float *yf = test_tensor(net, l, "feedback");
                for (size_t j = 0; j < n; j++) {
                    double a_f = 0.0, a_t = 0.0;
                    for (size_t m = 0; m < n_top; m++) {
                        double y_jm = y_override ? y_override[l][j * n_top + m]
                                                 : (double)yf[j * n_top + m];
                        a_f += y_jm * k->lambda * s[top][m];
                        a_t += y_jm * k->lambda * s_t[m];
                    }
                    double alpha_f = sigmoid(a_f), alpha_t = sigmoid(a_t);
                    err[j] = (alpha_t - alpha_f) * k_b * k->lambda * s[l][j] * (1.0 - s[l][j]);
                    recon[j] = (k->lambda * s[l][j] - alpha_f) * alpha_f * (1.0 - alpha_f);
                }
                for (size_t j = 0; j < n; j++) /* Delta Y = mean recon r_L^T */
                    for (size_t m = 0; m < n_top; m++)
                        gy[l][j * n_top + m] -=
                            recon[j] * k->lambda * s[top][m] / (double)batch;
            }
            double p = l == top ? p_final : p_hidden;
            for (size_t j = 0; j < n; j++) { /* Delta W = P mean e r^T */
                gb[l][j] -= p * err[j] / (double)batch;
                for (size_t i = 0; i < n_in; i++)
                    gw[l][j * n_in + i] -= p * err[j] * r[l][i] / (double)batch;
            }
        }
    }
}

/* max |got - want| over max |want|: float rounding only, when they agree. */
static double relative_error(const float *got, const double *want, size_t n)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    ck_assert_msg(scale > 0.0, "the reference update is zero: the test checks nothing");
    return diff / scale;
}

/* Every update of rate mode, learned feedback included, is the page's
 * formula averaged over the batch, to float precision.  Soft labels and a
 * teaching gain that is not 1 exercise the teaching conductances. */
START_TEST(rate_update_is_the_pages_formula)
{
    static const char *const settings[] = {"learn_feedback", "true", "teaching_gain", "0.7",
                                           "paper_init", "false", "lr", "0", "fb_lr", "0",
                                           NULL};
    enum { IN = 6, H1 = 7, H2 = 5, OUT = 3, B = 5 };
    const size_t units[] = {H1, H2, OUT};
    bpl_net *net = make_net(IN, units, 3, 23, settings);
    float x[B * IN], y[B * OUT];
    uint64_t seed = 31;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_uniform(y, B * OUT, 0.0f, 1.0f, &seed);
    /* the training phase computes Y's update too; zero rates leave the net as it was */
    test_run_hooks(net, BPL_PHASE_TRAIN, x, y, B, 1, 1);
    seg_constants k = defaults;
    k.gain = 0.7;
    double gw0[H1 * IN], gw1[H2 * H1], gw2[OUT * H2], gb0[H1], gb1[H2], gb2[OUT];
    double gy0[H1 * OUT], gy1[H2 * OUT];
    double *gw[] = {gw0, gw1, gw2}, *gb[] = {gb0, gb1, gb2}, *gy[] = {gy0, gy1};
    seg_reference(net, &k, x, y, B, NULL, gw, gb, gy);
    const size_t n[] = {H1, H2, OUT}, n_in[] = {IN, H1, H2};
    for (size_t l = 0; l < 3; l++) {
        double ew = relative_error(test_grad(net, l, "weight"), gw[l], n[l] * n_in[l]);
        double eb = relative_error(test_grad(net, l, "bias"), gb[l], n[l]);
        double ey = l < 2 ? relative_error(test_grad(net, l, "feedback"), gy[l], n[l] * OUT) : 0;
        printf("rate mode, layer %zu: relative error of W %.2g, b %.2g, Y %.2g\n", l, ew, eb,
               ey);
        ck_assert_msg(ew < 1e-5 && eb < 1e-5 && ey < 1e-5, "layer %zu: %g %g %g", l, ew, eb,
                      ey);
    }
    bpl_net_destroy(net);
}
END_TEST

/* Symmetric feedback is a function of the weights: after the weights are
 * set from outside (bpl_layer_set_tensor), the next step uses Y_2 = W_3^T
 * and Y_1 = W_2^T Y_2 of the new weights, not the Y of the old ones. */
START_TEST(symmetric_feedback_follows_set_weights)
{
    static const char *const settings[] = {"feedback", "symmetric", "paper_init", "false",
                                           NULL};
    enum { IN = 6, H1 = 7, H2 = 5, OUT = 3, B = 4 };
    const size_t units[] = {H1, H2, OUT};
    bpl_net *net = make_net(IN, units, 3, 29, settings);
    float x[B * IN], y[B * OUT], w1[H2 * H1], w2[OUT * H2];
    uint64_t seed = 17;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    test_fill_uniform(w1, H2 * H1, -2.0f, 2.0f, &seed);
    test_fill_uniform(w2, OUT * H2, -2.0f, 2.0f, &seed);
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 1), "weight", w1, H2 * H1));
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 2), "weight", w2, OUT * H2));
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    double y1[H2 * OUT], y0[H1 * OUT];
    for (size_t j = 0; j < H2; j++)
        for (size_t m = 0; m < OUT; m++)
            y1[j * OUT + m] = w2[m * H2 + j];
    for (size_t i = 0; i < H1; i++)
        for (size_t m = 0; m < OUT; m++) {
            double sum = 0.0;
            for (size_t j = 0; j < H2; j++)
                sum += (double)w1[j * H1 + i] * y1[j * OUT + m];
            y0[i * OUT + m] = sum;
        }
    double gw0[H1 * IN], gw1[H2 * H1], gw2[OUT * H2], gb0[H1], gb1[H2], gb2[OUT];
    double gy0[H1 * OUT], gy1[H2 * OUT];
    double *gw[] = {gw0, gw1, gw2}, *gb[] = {gb0, gb1, gb2}, *gy[] = {gy0, gy1};
    double *symmetric[] = {y0, y1};
    seg_reference(net, &defaults, x, y, B, symmetric, gw, gb, gy);
    double e0 = relative_error(test_grad(net, 0, "weight"), gw0, H1 * IN);
    double e1 = relative_error(test_grad(net, 1, "weight"), gw1, H2 * H1);
    printf("symmetric feedback after set_tensor: relative error %.2g, %.2g\n", e0, e1);
    ck_assert_msg(e0 < 1e-5 && e1 < 1e-5, "hidden updates used a stale Y: %g, %g", e0, e1);
    bpl_net_destroy(net);
}
END_TEST

/* The rule resolves its hyperparameters once and keeps them until one
 * changes: a value set between predictions is the one the next uses, as if
 * it had been set before the rule was attached. */
START_TEST(changed_hyperparameter_is_used)
{
    const size_t units[] = {6, 3};
    static const char *const fixed[] = {"paper_init", "0", NULL};
    static const char *const wanted[] = {"paper_init", "0", "lambda_max", "0.5", NULL};
    bpl_net *net = make_net(4, units, 2, 11, fixed);
    bpl_net *reference = make_net(4, units, 2, 11, wanted);
    enum { B = 2 };
    float x[B * 4], before[B * 3], after[B * 3], want[B * 3];
    uint64_t seed = 5;
    test_fill_uniform(x, B * 4, 0.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, before, B * 3));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lambda_max", 0.5));
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, after, B * 3));
    BPL_OK_OR_FAIL(bpl_net_predict(reference, x, B, want, B * 3));
    ck_assert(memcmp(before, after, sizeof after) != 0);
    ck_assert(memcmp(after, want, sizeof want) == 0);
    bpl_net_destroy(net);
    bpl_net_destroy(reference);
}
END_TEST

/* The generation a rule's settings cache compares with moves on every set. */
START_TEST(settings_stale_after_a_set)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "segregated"));
    uint64_t seen = 0;
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 1);
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 0);
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "g_L", 0.2));
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 1);
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 0);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "mode", "spiking"));
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 1);
    ck_assert_int_ne(bpl_rule_set(rule, "g_L", -1.0), BPL_OK);
    ck_assert_int_eq(bpl__rule_settings_stale(rule, &seen), 0); /* refused: unchanged */
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(bad_settings_refused)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "segregated"));
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "mode", "both"), BPL_ERR_INVALID_ARG, "mode");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "lambda_max", 0), BPL_ERR_RANGE, "lambda_max");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "feedback_sparsity", 1), BPL_ERR_RANGE,
                     "feedback_sparsity");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "phase_steps", 0), BPL_ERR_RANGE, "phase_steps");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "tau_s", -1), BPL_ERR_RANGE, "tau_s");
    /* a net without a hidden layer has nowhere to put the apical dendrites */
    const size_t units[] = {3};
    const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(4, units, acts, 1, 1);
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_STATE, "hidden layer");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("segregated");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, forward_sweep_is_the_papers);
    tcase_add_test(tc, no_teacher_no_update);
    tcase_add_test(tc, symmetric_feedback_follows_backprop);
    tcase_add_test(tc, paper_initialisation_drive);
    tcase_add_test(tc, rate_update_is_the_pages_formula);
    tcase_add_test(tc, symmetric_feedback_follows_set_weights);
    tcase_add_test(tc, bad_settings_refused);
    tcase_add_test(tc, changed_hyperparameter_is_used);
    tcase_add_test(tc, settings_stale_after_a_set);
    suite_add_tcase(s, tc);
    TCase *sp = tcase_create("spiking");
    tcase_add_test(sp, spiking_rates_converge);
    tcase_add_loop_test(sp, deterministic_from_the_seed, 0, 2);
    tcase_add_test(sp, spiking_updates_follow_rate_updates);
    suite_add_tcase(s, sp);
    return test_run_suite(s);
}
