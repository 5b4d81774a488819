/*
 * microcircuit.c - dendritic cortical microcircuits (Sacramento, Costa,
 * Bengio & Senn 2018, NeurIPS): "microcircuit".
 *
 * Every hidden layer l has pyramidal neurons (basal v_B, apical v_A, soma u)
 * and one interneuron per neuron of the layer above (dendrite v_I, soma u_I).
 * Weights: bottom-up W_l ("weight", "bias"), top-down B_l ("feedback",
 * [units(l)][units(l+1)]), pyramidal-to-interneuron W_IP ("ip", "ip_bias",
 * [units(l+1)][units(l)]) and interneuron-to-pyramidal W_PI ("pi",
 * [units(l)][units(l+1)]).  Rates are phi(u), phi the logistic function.
 *
 *   v_B,l = W_l phi(u_{l-1}) + b_l      v_I,l = W_IP,l phi(u_l) + c_l
 *   v_A,l = B_l phi(u_{l+1}) + W_PI,l phi(u_I,l)
 *
 * except that the first layer's input rates are the input itself, x.
 *
 * In the self-predicting state (W_PI = -B, W_IP matching the layer above)
 * interneurons cancel the top-down input and apical potentials are zero; a
 * target at the output breaks the balance, and the apical potential carries
 * the error down.  Plasticity (Eqs. 7-10):
 *
 *   W_l    += lr (phi(u_l) - phi(k v_B,l)) r_{l-1}^T    (k: the soma's attenuation)
 *   W_IP,l += lr (phi(u_I,l) - phi(k_I v_I,l)) r_l^T
 *   W_PI,l += lr (0 - v_A,l) r_I,l^T                    (optional)
 *   B_l    += lr (phi(u_l) - phi(B_l r_{l+1})) r_{l+1}^T (optional)
 *
 * "steady" (the default, and how the paper trained MNIST): each example is
 * one bottom-up sweep, the output nudged towards its target with mixing
 * factor lambda_out, and one top-down sweep in which interneurons mix in the
 * soma above (lambda_inter) and pyramidal somata their apical potential
 * (lambda_apical).  Every synapse learns with the presynaptic rates that
 * formed its compartment's potential: basal and interneuron dendrites are
 * computed in the bottom-up sweep (W and W_IP learn with its rates),
 * apical dendrites in the top-down sweep (W_PI learns with phi(u_I), B
 * with the nudged phi(u_{l+1})); docs/rules/microcircuit.md says why.
 * Every update is a mean over the batch.
 * "continuous": the Euler-integrated dynamics of Eqs. 1-2 with optional
 * noise and low-pass filtered plasticity, for small tasks.
 *
 * The neurons are the model's own (logistic); declared activations are
 * ignored.  "activation" buffers hold the bottom-up rates, which are also the
 * predictions; "derivative" gives the diagnostic phi'.  Its maths is dense:
 * the public API and the dense products of kinds/dense.c are used.
 */
#include "../dense_rule.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bpl_internal.h" /* declares the constructor; bpl__calloc */
#include "fast_math.h"

enum mode { STEADY, CONTINUOUS };

typedef struct settings {
    int mode, learn_topdown, learn_pi, rescale, inter_nudged;
    float lambda_out, lambda_inter, lambda_apical, target_high, target_low;
    float dt, g_lk, g_a, g_b, g_d, g_som, noise, tau_w;
    size_t steps, pretrain_steps;
} settings;

/* The number of training steps taken: it ends the pre-training. */
typedef struct microcircuit {
    uint64_t steps;
    int resumed;     /* its state came from a saved net: keep what attach would set */
    int pretraining; /* this step's plan, made by compute_targets */
} microcircuit;

static void read_settings(const bpl_rule *r, settings *s)
{
    s->mode = (int)bpl__rule_getf(r, "mode");
    s->learn_topdown = bpl__rule_getf(r, "learn_topdown") != 0.0f;
    s->learn_pi = bpl__rule_getf(r, "learn_pi") != 0.0f;
    s->rescale = bpl__rule_getf(r, "rescale_lr") != 0.0f;
    s->inter_nudged = (int)bpl__rule_getf(r, "interneuron_target") == 0;
    s->lambda_out = bpl__rule_getf(r, "lambda_out");
    s->lambda_inter = bpl__rule_getf(r, "lambda_inter");
    s->lambda_apical = bpl__rule_getf(r, "lambda_apical");
    s->target_high = bpl__rule_getf(r, "target_high");
    s->target_low = bpl__rule_getf(r, "target_low");
    s->dt = bpl__rule_getf(r, "dt");
    s->g_lk = bpl__rule_getf(r, "g_lk");
    s->g_a = bpl__rule_getf(r, "g_A");
    s->g_b = bpl__rule_getf(r, "g_B");
    s->g_d = bpl__rule_getf(r, "g_D");
    s->g_som = bpl__rule_getf(r, "g_som");
    s->noise = bpl__rule_getf(r, "noise");
    s->tau_w = bpl__rule_getf(r, "tau_w");
    s->steps = (size_t)bpl__rule_getf(r, "steps");
    s->pretrain_steps = (size_t)bpl__rule_getf(r, "pretrain_steps");
}

static int tensor(bpl_net *net, size_t l, const char *name, float **out)
{
    return bpl_layer_tensor(bpl_net_layer(net, l), name, out, NULL, NULL);
}

static int grad(bpl_net *net, size_t l, const char *name, float **out)
{
    return bpl_layer_tensor_grad(bpl_net_layer(net, l), name, out, NULL, NULL);
}

static inline float phi(float u)
{
    return bpl__fast_sigmoidf(u);
}

/* phi(x) - phi(y) given d = x - y: phi(x) (1 - phi(y)) (1 - e^{-d}).  The
 * errors of the steady-state scheme are differences between a potential and
 * one nudged by a mixing factor; subtracting two logistic values would lose
 * them to rounding once the factors are small (the error reaching layer k
 * shrinks like lambda^(depth)), while d itself is exact. */
static inline float phi_difference(float x, float y, float d)
{
    return phi(x) * (1.0f - phi(y)) * -expm1f(-d);
}

BPL__MULTIVERSION
static void phi_of(const float *u, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = phi(u[i]);
}

/* out = beta out + in M^T (+ bias), in [batch][cols], M [rows][cols]. */
static void project(bpl_net *net, const float *in, const float *m, const float *bias,
                    size_t batch, size_t rows, size_t cols, float beta, float *out)
{
    bpl__dense_map(net, in, m, bias, batch, rows, cols, beta, BPL_ACT_LINEAR, out);
}

/* ---- attach ----------------------------------------------------------------- */

/* The self-predicting state: W_PI = -B, and W_IP reproduces what the layer
 * above's soma will be without a target: its basal potential, attenuated by
 * (1 - lambda_apical) below the output. */
static int self_predict(bpl_net *net, const settings *s)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l < top; l++) {
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        float *b, *pi, *ip, *ip_bias, *w_above, *b_above;
        TRY(tensor(net, l, "feedback", &b));
        TRY(tensor(net, l, "pi", &pi));
        TRY(tensor(net, l, "ip", &ip));
        TRY(tensor(net, l, "ip_bias", &ip_bias));
        TRY(tensor(net, l + 1, "weight", &w_above));
        TRY(tensor(net, l + 1, "bias", &b_above));
        float k = l + 1 == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < n * n_above; i++) {
            pi[i] = -b[i];
            ip[i] = k * w_above[i];
        }
        for (size_t j = 0; j < n_above; j++)
            ip_bias[j] = k * b_above[j];
    }
    return BPL_OK;
}

static int add_tensors(bpl_net *net, const settings *s, double topdown_scale)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l < top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        TRY(bpl_layer_add_tensor(layer, "feedback", n, n_above,
                                 s->learn_topdown ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                 BPL_INIT_GLOROT_UNIFORM, topdown_scale, NULL));
        TRY(bpl_layer_add_tensor(layer, "pi", n, n_above,
                                 s->learn_pi ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE,
                                 BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
        TRY(bpl_layer_add_tensor(layer, "ip", n_above, n, BPL_GROUP_FEEDBACK,
                                 BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
        TRY(bpl_layer_add_tensor(layer, "ip_bias", 1, n_above, BPL_GROUP_FEEDBACK,
                                 BPL_INIT_ZERO, 0.0, NULL));
    }
    return BPL_OK;
}

/* Low-pass filters of the plasticity, for the continuous mode only: the
 * first two for every layer, all six below the output layer. */
static const char *const filtered[][2] = {{"weight", "weight_filter"},
                                          {"bias", "bias_filter"},
                                          {"feedback", "feedback_filter"},
                                          {"pi", "pi_filter"},
                                          {"ip", "ip_filter"},
                                          {"ip_bias", "ip_bias_filter"}};

static size_t filters_of(const bpl_net *net, size_t l)
{
    return l < bpl__rule_top(net) ? 6 : 2;
}

static int add_filters(bpl_net *net, const settings *s)
{
    if (s->mode != CONTINUOUS)
        return BPL_OK;
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t k = filters_of(net, l);
        for (size_t i = 0; i < k; i++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(layer, filtered[i][0], &rows, &cols, NULL));
            TRY(bpl_layer_add_tensor(layer, filtered[i][1], rows, cols, BPL_GROUP_NONE,
                                     BPL_INIT_ZERO, 0.0, NULL));
        }
    }
    return BPL_OK;
}

static int add_buffers(bpl_net *net)
{
    static const char *const every[] = {"v_basal", "u", "rate_u", "derivative", "scratch",
                                        "noise"};
    static const char *const hidden[] = {"v_apical"};
    static const char *const inter[] = {"v_inter", "u_inter", "rate_inter", "err_inter",
                                        "noise_inter"};
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
            TRY(bpl_layer_add_buffer(layer, every[i], bpl__rule_units(net, l)));
        if (l == top)
            continue;
        for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
            TRY(bpl_layer_add_buffer(layer, hidden[i], bpl__rule_units(net, l)));
        for (size_t i = 0; i < sizeof inter / sizeof inter[0]; i++)
            TRY(bpl_layer_add_buffer(layer, inter[i], bpl__rule_units(net, l + 1)));
    }
    return BPL_OK;
}

static int mc_attach(microcircuit *self, bpl_net *net, const settings *s)
{
    if (bpl_net_layer_count(net) < 2)
        return bpl_error_set(BPL_ERR_STATE, "microcircuits need a hidden layer");
    bpl_rule *rule = bpl_net_rule(net);
    TRY(add_tensors(net, s, bpl__rule_getf(rule, "topdown_scale")));
    /* A loaded net keeps its weights; a fresh attach initialises them. */
    if (!self->resumed && bpl__rule_getf(rule, "self_predicting_init") != 0.0f)
        TRY(self_predict(net, s));
    TRY(add_filters(net, s));
    TRY(add_buffers(net));
    int learned = s->learn_topdown || s->learn_pi;
    return bpl_rule_set_property(rule, BPL_PROP_SEPARATE_WEIGHTS_LEARNED,
                                 s->learn_topdown ? BPL_TICK_YES : BPL_TICK_PARTIAL,
                                 s->learn_topdown ? "top-down and interneuron weights learned"
                                 : learned
                                     ? "interneuron weights learned, top-down fixed"
                                     : "interneuron W_IP learned; top-down and W_PI fixed");
}

/* ---- the steady-state sweeps ----------------------------------------------------- */

/* Bottom-up: v_B, rates (the "activation"), interneuron dendrites. */
static int bottom_up(bpl_net *net, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l);
        float *v_b, *r, *deriv;
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(bpl__rule_buffer(net, l, "derivative", &deriv));
        bpl__layer_forward(net, layer, below, batch, BPL_ACT_LINEAR, v_b);
        phi_of(v_b, r, batch * n);
        for (size_t i = 0; i < batch * n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
        if (l < top) {
            float *ip, *ip_bias, *v_i;
            size_t n_above = bpl__rule_units(net, l + 1);
            TRY(tensor(net, l, "ip", &ip));
            TRY(tensor(net, l, "ip_bias", &ip_bias));
            TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
            project(net, r, ip, ip_bias, batch, n_above, n, 0.0f, v_i);
        }
        below = r;
    }
    return BPL_OK;
}

/* The output's target potential: the logit of a rate between target_low
 * and target_high. */
static float target_potential(const settings *s, float y)
{
    float rate = s->target_low + (s->target_high - s->target_low) * y;
    return logf(rate / (1.0f - rate));
}

/* Nudge the output, then sweep down: interneurons mix in the soma above,
 * pyramidal somata their apical potential.  a + lambda (b - a) makes the
 * mixture exact when a == b, so the self-predicting state is a fixed point
 * to the bit at the top. */
static int top_down(bpl_net *net, const settings *s, const float *y, size_t batch)
{
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    float *u, *v_b;
    TRY(bpl__rule_buffer(net, top, "u", &u));
    TRY(bpl__rule_buffer(net, top, "v_basal", &v_b));
    float *d_top;
    TRY(bpl__rule_buffer(net, top, "scratch", &d_top)); /* u - v_B, exactly */
    for (size_t i = 0; i < batch * n_top; i++) {
        d_top[i] = y ? s->lambda_out * (target_potential(s, y[i]) - v_b[i]) : 0.0f;
        u[i] = v_b[i] + d_top[i];
    }
    for (size_t l = top; l-- > 0;) {
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        float *u_above, *rate_above, *v_i, *u_i, *r_i, *v_a, *bfb, *pi, *ul, *vl;
        TRY(bpl__rule_buffer(net, l + 1, "u", &u_above));
        TRY(bpl__rule_buffer(net, l + 1, "rate_u", &rate_above));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        TRY(bpl__rule_buffer(net, l, "u", &ul));
        TRY(bpl__rule_buffer(net, l, "v_basal", &vl));
        TRY(tensor(net, l, "feedback", &bfb));
        TRY(tensor(net, l, "pi", &pi));
        float *d_i, *d_l, *v_b_above;
        /* the interneuron's learning target, exactly */
        TRY(bpl__rule_buffer(net, l, "err_inter", &d_i));
        TRY(bpl__rule_buffer(net, l + 1, "v_basal", &v_b_above));
        TRY(bpl__rule_buffer(net, l, "scratch", &d_l));   /* u - (1 - lambda) v_B, exactly */
        phi_of(u_above, rate_above, batch * n_above);
        /* Interneurons follow the soma above.  Their plasticity follows it as
         * it is now (Eq. 8 read literally), or, with interneuron_target=
         * bottom_up, as it would be without a target: the self-predicting
         * solution, which cannot learn the labels and so cannot silence the
         * error. */
        float k_above = l + 1 == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n_above; i++) {
            u_i[i] = v_i[i] + s->lambda_inter * (u_above[i] - v_i[i]);
            float goal = s->inter_nudged ? u_above[i] : k_above * v_b_above[i];
            d_i[i] = s->lambda_inter * (goal - v_i[i]);
        }
        phi_of(u_i, r_i, batch * n_above);
        project(net, rate_above, bfb, NULL, batch, n, n_above, 0.0f, v_a);
        project(net, r_i, pi, NULL, batch, n, n_above, 1.0f, v_a);
        float keep = 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++) {
            d_l[i] = s->lambda_apical * v_a[i];
            ul[i] = keep * vl[i] + d_l[i];
        }
    }
    float *rate_top;
    TRY(bpl__rule_buffer(net, top, "rate_u", &rate_top));
    phi_of(u, rate_top, batch * n_top);
    return BPL_OK;
}

/* Errors of Eqs. 7-8 into "delta" (pyramidal) and "err_inter", from the
 * exact potential differences top_down left in "scratch" and "err_inter". */
static int steady_errors(bpl_net *net, const settings *s, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        size_t n = bpl__rule_units(net, l);
        float *u, *v_b, *d, *diff;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "delta", &d));
        TRY(bpl__rule_buffer(net, l, "scratch", &diff));
        float k = l == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++)
            d[i] = phi_difference(u[i], k * v_b[i], diff[i]);
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *u_i, *v_i, *e_i;
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi_difference(v_i[i] + e_i[i], v_i[i], e_i[i]);
    }
    return BPL_OK;
}

/* ---- the continuous-time dynamics ---------------------------------------------- */

/* Attenuations of the plasticity's predictions: the soma's steady state
 * without top-down input, relative to its dendrite. */
static float k_hidden(const settings *s)
{
    return s->g_b / (s->g_lk + s->g_b + s->g_a);
}

static float k_output(const settings *s)
{
    return s->g_b / (s->g_lk + s->g_b);
}

static float k_inter(const settings *s)
{
    return s->g_d / (s->g_lk + s->g_d);
}

/* Every dendritic potential from the current somata (rates phi(u)). */
static int dendrites(bpl_net *net, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        float *u, *r;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        phi_of(u, r, batch * bpl__rule_units(net, l));
        if (l < top) {
            float *u_i, *r_i;
            TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            phi_of(u_i, r_i, batch * bpl__rule_units(net, l + 1));
        }
    }
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l);
        float *v_b, *r;
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        bpl__layer_forward(net, layer, below, batch, BPL_ACT_LINEAR, v_b);
        if (l < top) {
            size_t n_above = bpl__rule_units(net, l + 1);
            float *ip, *ip_bias, *v_i, *bfb, *pi, *v_a, *r_above, *r_i;
            TRY(tensor(net, l, "ip", &ip));
            TRY(tensor(net, l, "ip_bias", &ip_bias));
            TRY(tensor(net, l, "feedback", &bfb));
            TRY(tensor(net, l, "pi", &pi));
            TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
            TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
            TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            project(net, r, ip, ip_bias, batch, n_above, n, 0.0f, v_i);
            project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, v_a);
            project(net, r_i, pi, NULL, batch, n, n_above, 1.0f, v_a);
        }
        below = r;
    }
    return BPL_OK;
}

/* One Euler step of every soma (Eqs. 1-2), the output nudged towards its
 * target when y is given. */
static int euler_step(bpl_net *net, const settings *s, const float *y, size_t batch)
{
    size_t top = bpl__rule_top(net);
    float noise = s->noise * sqrtf(s->dt);
    for (size_t l = 0; l <= top; l++) {
        size_t n = batch * bpl__rule_units(net, l);
        float *u, *v_b, *xi;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "noise", &xi));
        if (noise > 0.0f)
            TRY(bpl_net_random_normal(net, xi, n, 0.0, noise));
        else
            memset(xi, 0, n * sizeof *xi);
        if (l == top) {
            for (size_t i = 0; i < n; i++) {
                float du = -s->g_lk * u[i] + s->g_b * (v_b[i] - u[i]);
                if (y)
                    du += s->g_som * (target_potential(s, y[i]) - u[i]);
                u[i] += s->dt * du + xi[i];
            }
            continue;
        }
        float *v_a, *u_i, *v_i, *u_above, *xi_i;
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        for (size_t i = 0; i < n; i++)
            u[i] += s->dt * (-s->g_lk * u[i] + s->g_b * (v_b[i] - u[i]) +
                             s->g_a * (v_a[i] - u[i])) +
                    xi[i];
        size_t n_i = batch * bpl__rule_units(net, l + 1);
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l + 1, "u", &u_above));
        TRY(bpl__rule_buffer(net, l, "noise_inter", &xi_i));
        if (noise > 0.0f)
            TRY(bpl_net_random_normal(net, xi_i, n_i, 0.0, noise));
        else
            memset(xi_i, 0, n_i * sizeof *xi_i);
        /* the soma above takes this step later in the loop: the interneuron
         * follows it as it was at the start of the step, like every other
         * term of this explicit Euler step */
        for (size_t i = 0; i < n_i; i++)
            u_i[i] += s->dt * (-s->g_lk * u_i[i] + s->g_d * (v_i[i] - u_i[i]) +
                               s->g_som * (u_above[i] - u_i[i])) +
                      xi_i[i];
    }
    return BPL_OK;
}

/* The start of a presentation: every soma and interneuron at rest. */
static int rest(bpl_net *net, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        float *u;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        memset(u, 0, batch * bpl__rule_units(net, l) * sizeof *u);
        if (l < bpl__rule_top(net)) {
            float *u_i;
            TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
            memset(u_i, 0, batch * bpl__rule_units(net, l + 1) * sizeof *u_i);
        }
    }
    return BPL_OK;
}

/* The rates of the somata as the layers' activations (predictions). */
static int publish_rates(bpl_net *net, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        float *u, *r, *deriv;
        size_t n = batch * bpl__rule_units(net, l);
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(bpl__rule_buffer(net, l, "derivative", &deriv));
        phi_of(u, r, n);
        for (size_t i = 0; i < n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
    }
    return BPL_OK;
}

/* acc += dt * filter after filter += dt/tau_w (instant - filter):
 * low-pass filtered plasticity, integrated over the presentation.  The
 * instant change is a gradient-ascent direction: it enters as its negative
 * so that the optimiser's descent applies it. */
static void filter_into(const settings *s, float *filter, const float *instant, float *acc,
                        size_t n)
{
    float a = s->dt / s->tau_w;
    for (size_t i = 0; i < n; i++) {
        filter[i] += a * (instant[i] - filter[i]);
        acc[i] -= s->dt * filter[i];
    }
}

/* post [batch][rows] x pre [batch][cols] -> [rows][cols] / batch, and the
 * column sums of post / batch for a bias. */
static void outer(bpl_net *net, const float *post, const float *pre, size_t batch,
                  size_t rows, size_t cols, float *out, float *bias_out)
{
    bpl__dense_outer(net, post, pre, batch, rows, cols, 1.0f / (float)batch, 1.0f,
                     (float)batch, out, bias_out);
}

/* Scratch of the continuous mode: one matrix's instant change, and the
 * step's plasticity filters.  A step integrates its filters as it goes, in
 * this copy of them, and after_apply makes the copy the net's: a step that
 * fails, and a diagnostic pass, leave the filter tensors as they were, like
 * every other parameter.  Allocated at the first step, not at attach, so
 * that a load allocates no more than its file holds. */
enum { N_FILTERS = sizeof filtered / sizeof filtered[0] };
typedef struct work {
    float *w, *b;
    float *filters;     /* every filter, layer by layer, in the order of `filtered` */
    size_t *filter_at;  /* where filter k of layer l starts: [l * N_FILTERS + k] */
} work;

/* The working copy of filter k of layer l. */
static float *working_filter(const work *wk, size_t l, size_t k)
{
    return wk->filters + wk->filter_at[l * N_FILTERS + k];
}

/* The instant change of one matrix (filter k of layer l, and its bias's,
 * filter bias_k, unless negative), filtered into its gradient. */
static int plastic(bpl_net *net, const settings *s, size_t l, size_t k, int bias_k,
                   const float *post, const float *pre, size_t batch, size_t rows,
                   size_t cols, const work *wk)
{
    float *g;
    outer(net, post, pre, batch, rows, cols, wk->w, bias_k >= 0 ? wk->b : NULL);
    TRY(grad(net, l, filtered[k][0], &g));
    filter_into(s, working_filter(wk, l, k), wk->w, g, rows * cols);
    if (bias_k >= 0) {
        TRY(grad(net, l, filtered[bias_k][0], &g));
        filter_into(s, working_filter(wk, l, (size_t)bias_k), wk->b, g, rows);
    }
    return BPL_OK;
}

/* Where each filter goes in the working copy, and the copy itself. */
static int layout_filters(bpl_net *net, work *wk)
{
    size_t n_layers = bpl_net_layer_count(net), at = 0;
    wk->filter_at = bpl__calloc(n_layers * N_FILTERS, sizeof *wk->filter_at);
    if (!wk->filter_at)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    for (size_t l = 0; l < n_layers; l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k][1], &rows, &cols,
                                      NULL));
            wk->filter_at[l * N_FILTERS + k] = at;
            at += rows * cols;
        }
    }
    wk->filters = bpl__malloc((at ? at : 1) * sizeof *wk->filters);
    return wk->filters ? BPL_OK : bpl_error_set(BPL_ERR_NOMEM, "out of memory");
}

/* Copy every filter tensor into the working copy (commit = 0), or the
 * working copy into the tensors (commit = 1). */
static int copy_filters(bpl_net *net, const work *wk, int commit)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            float *f, *copy = working_filter(wk, l, k);
            size_t rows, cols;
            TRY(bpl_layer_tensor(bpl_net_layer(net, l), filtered[k][1], &f, &rows, &cols));
            memcpy(commit ? f : copy, commit ? copy : f, rows * cols * sizeof *f);
        }
    }
    return BPL_OK;
}

static int begin_filters(bpl_net *net, work *wk)
{
    if (!wk->filters)
        TRY(layout_filters(net, wk));
    return copy_filters(net, wk, 0);
}

/* A filter that overflowed would reach the weights through a later step
 * (or through a frozen weight, not at all), and a file may not hold it. */
static int check_filters(bpl_net *net, const work *wk)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k][1], &rows, &cols,
                                      NULL));
            if (!bpl__all_finite(working_filter(wk, l, k), rows * cols))
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "the plasticity filter '%s' of layer %zu overflowed to NaN "
                                 "or Inf; parameters left unchanged",
                                 filtered[k][1], l);
        }
    }
    return BPL_OK;
}

static int continuous_plasticity(bpl_net *net, const settings *s, const float *x,
                                 size_t batch, const work *wk)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        float *u, *v_b, *post, *below;
        const float *pre = x;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "scratch", &post));
        if (l > 0) {
            TRY(bpl__rule_buffer(net, l - 1, "rate_u", &below));
            pre = below;
        }
        float k = l == top ? k_output(s) : k_hidden(s);
        for (size_t i = 0; i < batch * n; i++)
            post[i] = phi(u[i]) - phi(k * v_b[i]);
        TRY(plastic(net, s, l, 0, 1, post, pre, batch, n, n_in, wk));
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *u_i, *v_i, *e_i, *r, *r_i, *v_a, *tmp, *r_above;
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        TRY(bpl__rule_buffer(net, l, "noise", &tmp)); /* redrawn by the Euler step */
        TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi(u_i[i]) - phi(k_inter(s) * v_i[i]);
        TRY(plastic(net, s, l, 4, 5, e_i, r, batch, n_above, n, wk));
        if (s->learn_pi) {
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = -v_a[i];
            TRY(plastic(net, s, l, 3, -1, tmp, r_i, batch, n, n_above, wk));
        }
        if (s->learn_topdown) {
            float *bfb;
            TRY(tensor(net, l, "feedback", &bfb));
            project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(u[i]) - phi(tmp[i]);
            TRY(plastic(net, s, l, 2, -1, tmp, r_above, batch, n, n_above, wk));
        }
    }
    return BPL_OK;
}

/* `steps` Euler steps; with `wk`, plasticity is integrated along the way. */
static int simulate(bpl_net *net, const settings *s, const float *x, const float *y,
                    size_t batch, const work *wk)
{
    for (size_t t = 0; t < s->steps; t++) {
        TRY(dendrites(net, x, batch));
        if (wk)
            TRY(continuous_plasticity(net, s, x, batch, wk));
        TRY(euler_step(net, s, y, batch));
    }
    return dendrites(net, x, batch); /* leave the final state's potentials */
}

/* ---- the hooks ------------------------------------------------------------------- */

typedef struct mc_rule {
    microcircuit state;
    work wk; /* continuous mode's scratch, sized at attach */
    settings s;
    uint64_t seen; /* the parameters' generation `s` was read at */
} mc_rule;

/* The hyperparameters, read again only when one has changed. */
static const settings *settings_of(mc_rule *self, bpl_net *net)
{
    const bpl_rule *r = bpl_net_rule(net);
    if (bpl__rule_settings_stale(r, &self->seen))
        read_settings(r, &self->s);
    return &self->s;
}

static int mc_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    const settings *s = settings_of(self, net);
    if (s->mode != CONTINUOUS)
        return bottom_up(net, x, batch);
    TRY(rest(net, batch));
    TRY(simulate(net, s, x, NULL, batch, NULL));
    return publish_rates(net, batch);
}

static int zero_gradients(bpl_net *net)
{
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            float *g;
            size_t rows, cols;
            if (bpl_layer_tensor_grad(layer, name, &g, &rows, &cols) == BPL_OK)
                memset(g, 0, rows * cols * sizeof *g);
        }
    }
    return BPL_OK;
}

static int mc_targets(void *self_, bpl_net *net, const float *y, size_t batch)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    self->state.pretraining = self->state.steps < s->pretrain_steps;
    const float *target = self->state.pretraining ? NULL : y;
    if (s->mode != CONTINUOUS) {
        TRY(top_down(net, s, target, batch));
        return steady_errors(net, s, batch);
    }
    /* The plasticity is integrated along the simulation, into the
     * gradients and the working copy of the filters. */
    const float *x;
    TRY(bpl_layer_input(bpl_net_layer(net, 0), &x, NULL, NULL));
    TRY(zero_gradients(net));
    TRY(begin_filters(net, &self->wk));
    return simulate(net, s, x, target, batch, &self->wk);
}

/* Gradients of the steady-state rules; pyramidal ones rescaled by the
 * inverse of the mixing factors the error went through. */
static int steady_gradients(bpl_net *net, const settings *s, size_t batch, int forward)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        float *d, *gw, *gb;
        const float *pre;
        if (forward) {
            float scale = 1.0f;
            if (s->rescale)
                scale = 1.0f / (s->lambda_out * powf(s->lambda_apical, (float)(top - l)));
            TRY(bpl__rule_buffer(net, l, "delta", &d));
            TRY(bpl_layer_input(layer, &pre, NULL, NULL));
            TRY(grad(net, l, "weight", &gw));
            TRY(grad(net, l, "bias", &gb));
            bpl__layer_gradients(net, layer, d, pre, batch, 1.0f / (float)batch, 1.0f,
                                 (float)batch);
            for (size_t i = 0; i < n * n_in; i++)
                gw[i] *= -scale;
            for (size_t i = 0; i < n; i++)
                gb[i] *= -scale;
        }
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *e_i, *r, *g_ip, *g_ipb;
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(grad(net, l, "ip", &g_ip));
        TRY(grad(net, l, "ip_bias", &g_ipb));
        outer(net, e_i, r, batch, n_above, n, g_ip, g_ipb);
        for (size_t i = 0; i < n_above * n; i++)
            g_ip[i] = -g_ip[i];
        for (size_t i = 0; i < n_above; i++)
            g_ipb[i] = -g_ipb[i];
        if (s->learn_pi) { /* W_PI += (0 - v_A) r_I^T: the gradient is +v_A r_I^T */
            float *v_a, *r_i, *g_pi;
            TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            TRY(grad(net, l, "pi", &g_pi));
            outer(net, v_a, r_i, batch, n, n_above, g_pi, NULL);
        }
        if (s->learn_topdown) { /* B += (phi(u) - phi(B r_above)) r_above^T */
            float *u, *tmp, *r_above, *bfb, *g_b;
            TRY(bpl__rule_buffer(net, l, "u", &u));
            TRY(bpl__rule_buffer(net, l, "scratch", &tmp));
            TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
            TRY(tensor(net, l, "feedback", &bfb));
            TRY(grad(net, l, "feedback", &g_b));
            project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(tmp[i]) - phi(u[i]);
            outer(net, tmp, r_above, batch, n, n_above, g_b, NULL);
        }
    }
    return BPL_OK;
}

/* With B learned and W_PI not, W_PI is kept at -B, the state Eq. 9 drives it
 * to: then the apical potential without a target stays B (r_above - r_I),
 * zero once the interneurons match the layer above, however B moves.  Left
 * to lag behind B, W_PI no longer cancels the top-down input, and that
 * mismatch swamps the rescaled errors of the hidden layers. */
static int follow_topdown(bpl_net *net, const settings *s)
{
    if (!s->learn_topdown || s->learn_pi)
        return BPL_OK;
    for (size_t l = 0; l < bpl__rule_top(net); l++) {
        size_t n = bpl__rule_units(net, l) * bpl__rule_units(net, l + 1);
        float *b, *pi;
        TRY(tensor(net, l, "feedback", &b));
        TRY(tensor(net, l, "pi", &pi));
        for (size_t i = 0; i < n; i++)
            pi[i] = -b[i];
    }
    return BPL_OK;
}

static int mc_gradients(void *self_, bpl_net *net, unsigned int *groups)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    size_t batch;
    float *unused;
    TRY(bpl_layer_buffer(bpl_net_layer(net, 0), "activation", &unused, &batch, NULL));
    int forward = !self->state.pretraining;
    if (s->mode != CONTINUOUS)
        TRY(steady_gradients(net, s, batch, forward));
    else
        TRY(check_filters(net, &self->wk)); /* before anything is applied */
    *groups = 1u << BPL_GROUP_FEEDBACK;
    if (forward)
        *groups |= 1u << BPL_GROUP_FORWARD;
    return BPL_OK;
}

/* The step stands: its filters become the net's, W_PI follows B, and the
 * step counts towards the end of the pre-training. */
static int mc_after_apply(void *self_, bpl_net *net)
{
    mc_rule *self = self_;
    const settings *s = settings_of(self, net);
    if (s->mode == CONTINUOUS)
        TRY(copy_filters(net, &self->wk, 1));
    TRY(follow_topdown(net, s));
    self->state.steps++;
    return BPL_OK;
}

/* The step count (it ends the pre-training) is the rule's saved state,
 * given back before attach. */
static int mc_save_state(void *self_, void *data, size_t capacity, size_t *size_out)
{
    const mc_rule *self = self_;
    return bpl__count_state_save(self->state.steps, data, capacity, size_out);
}

static int mc_load_state(void *self_, bpl_net *net, const void *data, size_t size)
{
    mc_rule *self = self_;
    (void)net;
    TRY(bpl__count_state_load(data, size, BPL__MAX_OPTIM_STEPS - 1, &self->state.steps));
    self->state.resumed = 1;
    return BPL_OK;
}

/* ---- construction ------------------------------------------------------------------ */

static int mc_attach_with_work(void *self_, bpl_net *net)
{
    mc_rule *self = self_;
    TRY(mc_attach(&self->state, net, settings_of(self, net)));
    size_t largest = 1, widest = 1;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        size_t n_above = l < bpl__rule_top(net) ? bpl__rule_units(net, l + 1) : 0;
        largest = n * n_in > largest ? n * n_in : largest;
        largest = n * n_above > largest ? n * n_above : largest;
        widest = n > widest ? n : widest;
        widest = n_above > widest ? n_above : widest;
    }
    bpl__free(self->wk.w);
    bpl__free(self->wk.b);
    bpl__free(self->wk.filters);
    bpl__free(self->wk.filter_at);
    self->wk.filters = NULL;
    self->wk.filter_at = NULL;
    self->wk.w = bpl__malloc(largest * sizeof *self->wk.w);
    self->wk.b = bpl__malloc(widest * sizeof *self->wk.b);
    if (!self->wk.w || !self->wk.b)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    return BPL_OK;
}

static void mc_destroy(void *self_)
{
    mc_rule *self = self_;
    bpl__free(self->wk.w);
    bpl__free(self->wk.b);
    bpl__free(self->wk.filters);
    bpl__free(self->wk.filter_at);
    bpl__free(self);
}

static const bpl__param_spec params[] = {
    {"mode", BPL_PARAM_CHOICE, STEADY, 0, 0, "steady|continuous",
     "steady: a bottom-up and a top-down sweep per example; continuous: Euler dynamics"},
    {"lambda_out", BPL_PARAM_REAL, 0.2, 1e-6, 1, NULL,
     "steady: how far the output soma moves towards its target"},
    {"lambda_inter", BPL_PARAM_REAL, 0.1, 0, 1, NULL,
     "steady: how far interneurons move towards the soma above"},
    {"lambda_apical", BPL_PARAM_REAL, 0.1, 1e-6, 0.999, NULL,
     "steady: weight of the apical potential in the pyramidal soma"},
    {"target_high", BPL_PARAM_REAL, 0.8, 1e-3, 0.999, NULL, "target rate of the right class"},
    {"target_low", BPL_PARAM_REAL, 0.1, 1e-3, 0.999, NULL, "target rate of the other classes"},
    {"rescale_lr", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "steady: divide pyramidal updates by the mixing factors their error went through"},
    {"interneuron_target", BPL_PARAM_CHOICE, 0, 0, 0, "nudged|bottom_up",
     "steady: interneuron plasticity predicts the soma above with (nudged, Eq. 8) or "
     "without (bottom_up) the target's influence"},
    {"learn_topdown", BPL_PARAM_BOOL, 0, 0, 1, NULL,
     "learn the top-down weights B (Eq. 10) with the fb_ optimiser"},
    {"learn_pi", BPL_PARAM_BOOL, 0, 0, 1, NULL,
     "learn the interneuron-to-pyramidal weights (Eq. 9) with the fb_ optimiser"},
    {"self_predicting_init", BPL_PARAM_BOOL, 1, 0, 1, NULL,
     "start in the self-predicting state (W_PI = -B, W_IP from the weights above)"},
    {"pretrain_steps", BPL_PARAM_INT, 0, 0, 1e12, NULL,
     "batches without a target in which only interneuron-side weights learn"},
    {"topdown_scale", BPL_PARAM_REAL, 1.0, 0, 1e3, NULL,
     "gain of the Glorot-uniform top-down weights B"},
    {"dt", BPL_PARAM_REAL, 0.1, 1e-4, 10, NULL, "continuous: Euler time step"},
    {"steps", BPL_PARAM_INT, 100, 1, BPL__MAX_TIME_STEPS, NULL,
     "continuous: steps of each half of a presentation (settling, then with target)"},
    {"g_lk", BPL_PARAM_REAL, 0.1, 0, 100, NULL, "continuous: leak conductance"},
    {"g_A", BPL_PARAM_REAL, 0.8, 0, 100, NULL, "continuous: apical conductance"},
    {"g_B", BPL_PARAM_REAL, 1.0, 0, 100, NULL, "continuous: basal conductance"},
    {"g_D", BPL_PARAM_REAL, 1.0, 0, 100, NULL, "continuous: interneuron dendritic conductance"},
    {"g_som", BPL_PARAM_REAL, 0.8, 0, 100, NULL,
     "continuous: somatic nudging conductance (target, and soma above to interneuron)"},
    {"noise", BPL_PARAM_REAL, 0.0, 0, 100, NULL,
     "continuous: standard deviation of the somatic noise per unit time"},
    {"tau_w", BPL_PARAM_REAL, 30.0, 1e-3, 1e6, NULL,
     "continuous: time constant of the plasticity's low-pass filter"},
};

static int add_params(bpl_rule *rule, const void *context)
{
    (void)context;
    TRY(bpl__rule_add_params(rule, params, sizeof params / sizeof params[0]));
    TRY(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_ADAM, 1e-3));
    /* Read when the rule is attached: which weights learn, their start, the
     * continuous mode's filters. */
    static const char *const shaping[] = {"mode", "learn_topdown", "learn_pi",
                                          "topdown_scale", "self_predicting_init"};
    return bpl__rule_fix_params(rule, shaping, sizeof shaping / sizeof shaping[0]);
}

const bpl_rule_vtable bpl__microcircuit_vtable = {
    .version = BPL_RULE_VTABLE_VERSION,
    .name = "microcircuit",
    .attach = mc_attach_with_work,
    .forward = mc_forward,
    .compute_targets = mc_targets,
    .gradients = mc_gradients,
    .after_apply = mc_after_apply,
    .destroy = mc_destroy,
    .save_state = mc_save_state,
    .load_state = mc_load_state,
};

int bpl__rule_microcircuit_create(bpl_rule **out)
{
    mc_rule *self = bpl__calloc(1, sizeof *self);
    if (!self)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    /* Recommended: the documented run, 97.8% after 40 epochs (docs/results.md).
     * The model's rates are its own logistic functions. */
    static const char *const recommended[] = {
        "hidden", "500,500", "init", "glorot_uniform", "optimizer", "adam", "lr", "0.001",
        "fb_optimizer", "adam", "fb_lr", "0.001", "lr_decay", "0.95", "batch_size", "32",
        "epochs", "40", "ignores", "activation", NULL};
    static const bpl__rule_card card = {
        "Dendritic cortical microcircuits (Sacramento, Costa, Bengio & Senn 2018): "
        "interneurons cancel top-down input in the self-predicting state; a nudged output "
        "leaves an apical error that drives local plasticity.",
        {BPL_TICK_PARTIAL, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_YES, BPL_TICK_PARTIAL,
         BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES},
        {"in the limit of weak feedback with B = W^T", NULL,
         "errors live in the apical dendrites of the same neurons",
         "basal, apical and somatic compartments; interneurons",
         "interneuron W_IP learned; top-down and W_PI fixed", NULL,
         "the apical potential: top-down minus interneuron prediction"}, recommended,
        BPL__NEEDS_DENSE};
    return bpl__rule_build(out, &bpl__microcircuit_vtable, self, &card, 1e-3, add_params, NULL);
}
