/*
 * test_microcircuit.c - dendritic cortical microcircuits against the
 * properties that define them:
 *
 *  - in the self-predicting state, without a target, apical potentials are
 *    about zero and every weight update vanishes;
 *  - learning the interneuron weights from a random start (no target) drives
 *    the apical mismatch down by a large factor;
 *  - with B = W^T and weak nudging, the bottom-up update is backprop's;
 *  - the continuous-time dynamics settle to their fixed point;
 *  - learned and fixed top-down weights behave as set; bad settings refused.
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
        acts[l] = BPL_ACT_SIGMOID; /* ignored by the rule: its neurons are logistic */
    bpl_net *net = test_make_net(inputs, units, acts, n_layers, seed);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "microcircuit"));
    for (; settings && *settings; settings += 2)
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, settings[0], settings[1]));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    return net;
}

static double mean_square(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return s / (double)n;
}

enum { IN = 20, H1 = 16, H2 = 12, OUT = 5, B = 8 };

START_TEST(self_predicting_state_is_quiet)
{
    /* pre-training mode: the target is ignored */
    static const char *const settings[] = {"pretrain_steps", "1000000", NULL};
    const size_t units[] = {H1, H2, OUT};
    bpl_net *net = make_net(IN, units, 3, 3, settings);
    float x[B * IN], y[B * OUT];
    uint64_t seed = 5;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    test_run_hooks(net, BPL_PHASE_TRAIN, x, y, B, 1, 0);
    /* pre-training: the forward weights rest */
    ck_assert_uint_eq(test_run_gradients(net), 1u << BPL_GROUP_FEEDBACK);
    bpl_rule *rule = bpl_net_rule(net);
    ck_assert_msg(test_max_abs(test_buffer(net, 1, "v_apical"), B * H2) == 0.0,
                  "top hidden apical potential %g", test_max_abs(test_buffer(net, 1, "v_apical"), B * H2));
    ck_assert_msg(test_max_abs(test_buffer(net, 0, "v_apical"), B * H1) < 1e-5,
                  "first hidden apical potential %g", test_max_abs(test_buffer(net, 0, "v_apical"), B * H1));
    /* interneuron updates: W_IP is the only plasticity during pre-training */
    ck_assert_msg(test_max_abs(test_grad(net, 1, "ip"), OUT * H2) == 0.0, "W_IP of the top layer moved");
    ck_assert_msg(test_max_abs(test_grad(net, 0, "ip"), H2 * H1) < 1e-6, "W_IP of the first layer");
    /* and with a target the same net does learn */
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "pretrain_steps", 0));
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    ck_assert(test_max_abs(test_buffer(net, 1, "v_apical"), B * H2) > 1e-4);
    ck_assert(test_max_abs(test_grad(net, 0, "weight"), H1 * IN) > 1e-6);
    bpl_net_destroy(net);
}
END_TEST

/* The forward pass of the self-predicting state reproduces the bottom-up
 * sweep of a logistic net; diagnostics find the output layer's update
 * aligned with its gradient. */
START_TEST(predictions_are_the_bottom_up_sweep)
{
    const size_t units[] = {H1, OUT};
    bpl_net *net = make_net(IN, units, 2, 4, NULL);
    float x[B * IN], out[B * OUT];
    uint64_t seed = 9;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, out, B * OUT));
    const float *w0 = test_tensor(net, 0, "weight"), *b0 = test_tensor(net, 0, "bias");
    const float *w1 = test_tensor(net, 1, "weight"), *b1 = test_tensor(net, 1, "bias");
    for (int b = 0; b < B; b++) {
        double h[H1];
        for (int j = 0; j < H1; j++) {
            double a = b0[j];
            for (int i = 0; i < IN; i++)
                a += (double)w0[j * IN + i] * x[b * IN + i];
            h[j] = 1.0 / (1.0 + exp(-a));
        }
        for (int k = 0; k < OUT; k++) {
            double a = b1[k];
            for (int j = 0; j < H1; j++)
                a += (double)w1[k * H1 + j] * h[j];
            ck_assert_msg(fabs(1.0 / (1.0 + exp(-a)) - out[b * OUT + k]) < 1e-5, "output");
        }
    }
    bpl_net_destroy(net);
}
END_TEST

START_TEST(pretraining_learns_the_self_predicting_state)
{
    static const char *const settings[] = {"self_predicting_init", "false", "learn_pi", "true",
                                           "pretrain_steps", "1000000", "fb_lr", "3e-3", NULL};
    const size_t units[] = {H1, H2, OUT};
    bpl_net *net = make_net(IN, units, 3, 6, settings);
    enum { N = 64 };
    float x[N * IN], y[N * OUT], probe[N * IN];
    uint64_t seed = 2;
    test_fill_uniform(probe, N * IN, 0.0f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, probe, NULL, N, 1, 0);
    double before[2] = {mean_square(test_buffer(net, 0, "v_apical"), N * H1),
                        mean_square(test_buffer(net, 1, "v_apical"), N * H2)};
    float w0[H1 * IN];
    memcpy(w0, test_tensor(net, 0, "weight"), sizeof w0);
    for (int step = 0; step < 1500; step++) {
        test_fill_uniform(x, N * IN, 0.0f, 1.0f, &seed);
        test_fill_onehot(y, N, OUT, &seed);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, NULL));
    }
    ck_assert_mem_eq(w0, test_tensor(net, 0, "weight"), sizeof w0); /* bottom-up untouched */
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, probe, NULL, N, 1, 0);
    for (size_t l = 0; l < 2; l++) {
        double after = mean_square(test_buffer(net, l, "v_apical"), N * (l == 0 ? H1 : H2));
        printf("layer %zu: mean squared apical potential %.4g -> %.4g\n", l, before[l], after);
        ck_assert_msg(after < before[l] / 100.0, "layer %zu: %.4g -> %.4g", l, before[l], after);
    }
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

/* With B_l = W_{l+1}^T (and W_PI = -B) and weak nudging, the bottom-up
 * updates are backprop of the output's own error through phi'. */
START_TEST(symmetric_topdown_is_backprop)
{
    static const char *const settings[] = {"lambda_out", "0.02", "lambda_apical", "0.02",
                                           "lambda_inter", "0.02", NULL};
    const size_t units[] = {H1, H2, OUT};
    bpl_net *net = make_net(IN, units, 3, 8, settings);
    /* B_l = W_{l+1}^T, W_PI = -B, W_IP as the self-predicting state wants */
    for (size_t l = 0; l < 2; l++) {
        size_t n = l == 0 ? H1 : H2, n_above = l == 0 ? H2 : OUT;
        const float *w_above = test_tensor(net, l + 1, "weight"), *b_above = test_tensor(net, l + 1, "bias");
        float *bt = malloc(n * n_above * sizeof *bt), *pi = malloc(n * n_above * sizeof *pi);
        float *ip = malloc(n * n_above * sizeof *ip), c[16];
        float k = l == 1 ? 1.0f : 1.0f - 0.02f;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n_above; j++) {
                bt[i * n_above + j] = w_above[j * n + i];
                pi[i * n_above + j] = -w_above[j * n + i];
            }
        for (size_t i = 0; i < n * n_above; i++)
            ip[i] = k * w_above[i];
        for (size_t j = 0; j < n_above; j++)
            c[j] = k * b_above[j];
        bpl_layer *layer = bpl_net_layer(net, l);
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "feedback", bt, n * n_above));
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "pi", pi, n * n_above));
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "ip", ip, n * n_above));
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "ip_bias", c, n_above));
        free(bt);
        free(pi);
        free(ip);
    }
    float x[B * IN], y[B * OUT];
    uint64_t seed = 12;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    /* backprop of the output error through W and phi'(v_B) of the sweep */
    double delta2[B * H2], delta1[B * H1], bp1[H1 * IN] = {0}, bp2[H2 * H1] = {0};
    const float *e = test_buffer(net, 2, "delta"), *w2 = test_tensor(net, 2, "weight"),
                *w1 = test_tensor(net, 1, "weight");
    const float *r0 = test_buffer(net, 0, "activation"), *r1 = test_buffer(net, 1, "activation");
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < H2; j++) {
            double d = 0;
            for (int k = 0; k < OUT; k++)
                d += (double)e[b * OUT + k] * w2[k * H2 + j];
            delta2[b * H2 + j] = d * r1[b * H2 + j] * (1 - r1[b * H2 + j]);
        }
        for (int j = 0; j < H1; j++) {
            double d = 0;
            for (int k = 0; k < H2; k++)
                d += delta2[b * H2 + k] * w1[k * H1 + j];
            delta1[b * H1 + j] = d * r0[b * H1 + j] * (1 - r0[b * H1 + j]);
        }
        for (int j = 0; j < H2; j++)
            for (int i = 0; i < H1; i++)
                bp2[j * H1 + i] -= delta2[b * H2 + j] * r0[b * H1 + i];
        for (int j = 0; j < H1; j++)
            for (int i = 0; i < IN; i++)
                bp1[j * IN + i] -= delta1[b * H1 + j] * x[b * IN + i];
    }
    double a2 = angle(test_grad(net, 1, "weight"), bp2, H2 * H1);
    double a1 = angle(test_grad(net, 0, "weight"), bp1, H1 * IN);
    printf("B = W^T, weak nudging: angle to backprop %.2f (top hidden), %.2f (first)\n", a2, a1);
    ck_assert_msg(a2 < 1.0 && a1 < 1.0, "angles %.2f, %.2f", a2, a1);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, B, angles, 3));
    ck_assert(isfinite(angles[0]) && angles[0] < 90.0);
    bpl_net_destroy(net);
}
END_TEST

static double logistic(double u)
{
    return 1.0 / (1.0 + exp(-u));
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

/* Every steady-state update, computed here in double from the formulas of
 * docs/rules/microcircuit.md, against the gradients the rule hands to the
 * optimiser (the negated updates, averaged over the batch).  Mixing factors
 * all different, soft targets, random interneuron weights (so every apical
 * potential is far from zero), and B and W_PI learned: every equation and
 * every presynaptic rate is exercised.  _i: 0 nudged interneuron target,
 * 1 bottom_up. */
START_TEST(steady_update_is_the_pages_formula)
{
    const char *settings[] = {"self_predicting_init", "false", "learn_topdown", "true",
                              "learn_pi", "true", "lambda_out", "0.3", "lambda_inter", "0.2",
                              "lambda_apical", "0.15", "target_high", "0.9", "target_low",
                              "0.05", "interneuron_target", _i ? "bottom_up" : "nudged",
                              NULL};
    enum { I = 5, L = 2, MAXN = 8 }; /* L: index of the output layer */
    const size_t n[] = {6, 4, 3};
    const double lo = 0.3, li = 0.2, la = 0.15, high = 0.9, low = 0.05;
    bpl_net *net = make_net(I, n, 3, 41, settings);
    enum { NB = 4 };
    float x[NB * I], y[NB * 3];
    uint64_t seed = 19;
    test_fill_uniform(x, NB * I, 0.0f, 1.0f, &seed);
    test_fill_uniform(y, NB * 3, 0.0f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, NB, 1, 1);

    /* the updates: W and b per layer; W_IP, c, W_PI, B per hidden layer */
    double dw[3][MAXN * MAXN] = {{0}}, db[3][MAXN] = {{0}}, dip[2][MAXN * MAXN] = {{0}};
    double dc[2][MAXN] = {{0}}, dpi[2][MAXN * MAXN] = {{0}}, dbt[2][MAXN * MAXN] = {{0}};
    for (size_t e = 0; e < NB; e++) {
        double r[3][MAXN], v_b[3][MAXN], v_i[2][MAXN], u[3][MAXN], u_i[2][MAXN];
        double v_a[2][MAXN];
        /* bottom-up sweep: r_0 = x, u = v_B, rates phi(v_B) */
        const float *below = x + e * I;
        double in[MAXN];
        for (size_t i = 0; i < I; i++)
            in[i] = below[i];
        for (size_t l = 0; l <= L; l++) {
            size_t n_in = l == 0 ? I : n[l - 1];
            const double *pre = l == 0 ? in : r[l - 1];
            const float *w = test_tensor(net, l, "weight"), *b = test_tensor(net, l, "bias");
            for (size_t j = 0; j < n[l]; j++) {
                v_b[l][j] = b[j];
                for (size_t i = 0; i < n_in; i++)
                    v_b[l][j] += (double)w[j * n_in + i] * pre[i];
                r[l][j] = logistic(v_b[l][j]);
            }
        }
        for (size_t l = 0; l < L; l++) {
            const float *ip = test_tensor(net, l, "ip"), *c = test_tensor(net, l, "ip_bias");
            for (size_t j = 0; j < n[l + 1]; j++) {
                v_i[l][j] = c[j];
                for (size_t i = 0; i < n[l]; i++)
                    v_i[l][j] += (double)ip[j * n[l] + i] * r[l][i];
            }
        }
        /* nudge: u_L = v_B + lambda_out (logit(low + (high - low) y) - v_B) */
        for (size_t j = 0; j < n[L]; j++) {
            double rate = low + (high - low) * y[e * n[L] + j];
            u[L][j] = v_b[L][j] + lo * (log(rate / (1.0 - rate)) - v_b[L][j]);
        }
        /* top-down sweep */
        for (size_t l = L; l-- > 0;) {
            const float *bt = test_tensor(net, l, "feedback"), *pi = test_tensor(net, l, "pi");
            for (size_t j = 0; j < n[l + 1]; j++)
                u_i[l][j] = v_i[l][j] + li * (u[l + 1][j] - v_i[l][j]);
            for (size_t j = 0; j < n[l]; j++) {
                v_a[l][j] = 0.0;
                for (size_t k = 0; k < n[l + 1]; k++)
                    v_a[l][j] += (double)bt[j * n[l + 1] + k] * logistic(u[l + 1][k]) +
                                 (double)pi[j * n[l + 1] + k] * logistic(u_i[l][k]);
                u[l][j] = (1.0 - la) * v_b[l][j] + la * v_a[l][j];
            }
        }
        /* plasticity, averaged over the batch */
        for (size_t l = 0; l <= L; l++) {
            size_t n_in = l == 0 ? I : n[l - 1];
            const double *pre = l == 0 ? in : r[l - 1];
            double k = l == L ? 1.0 : 1.0 - la, scale = 1.0 / (lo * pow(la, (double)(L - l)));
            for (size_t j = 0; j < n[l]; j++) {
                double post = scale * (logistic(u[l][j]) - logistic(k * v_b[l][j])) / NB;
                db[l][j] += post;
                for (size_t i = 0; i < n_in; i++)
                    dw[l][j * n_in + i] += post * pre[i];
            }
            if (l == L)
                continue;
            double k_above = l + 1 == L ? 1.0 : 1.0 - la;
            for (size_t j = 0; j < n[l + 1]; j++) {
                double goal = _i ? v_i[l][j] + li * (k_above * v_b[l + 1][j] - v_i[l][j])
                                 : u_i[l][j];
                double post = (logistic(goal) - logistic(v_i[l][j])) / NB;
                dc[l][j] += post;
                for (size_t i = 0; i < n[l]; i++)
                    dip[l][j * n[l] + i] += post * r[l][i];
            }
            const float *bt = test_tensor(net, l, "feedback");
            for (size_t j = 0; j < n[l]; j++) {
                double predicted = 0.0;
                for (size_t k2 = 0; k2 < n[l + 1]; k2++)
                    predicted += (double)bt[j * n[l + 1] + k2] * logistic(u[l + 1][k2]);
                double post_b = (logistic(u[l][j]) - logistic(predicted)) / NB;
                for (size_t k2 = 0; k2 < n[l + 1]; k2++) {
                    dpi[l][j * n[l + 1] + k2] += -v_a[l][j] * logistic(u_i[l][k2]) / NB;
                    dbt[l][j * n[l + 1] + k2] += post_b * logistic(u[l + 1][k2]);
                }
            }
        }
    }
    /* the rule's gradients are the negated updates */
    double worst = 0.0;
    for (size_t l = 0; l <= L; l++) {
        size_t n_in = l == 0 ? I : n[l - 1];
        for (size_t i = 0; i < n[l] * n_in; i++)
            dw[l][i] = -dw[l][i];
        for (size_t j = 0; j < n[l]; j++)
            db[l][j] = -db[l][j];
        double errs[6] = {relative_error(test_grad(net, l, "weight"), dw[l], n[l] * n_in),
                          relative_error(test_grad(net, l, "bias"), db[l], n[l])};
        if (l < L) {
            size_t m = n[l] * n[l + 1];
            for (size_t i = 0; i < m; i++) {
                dip[l][i] = -dip[l][i];
                dpi[l][i] = -dpi[l][i];
                dbt[l][i] = -dbt[l][i];
            }
            for (size_t j = 0; j < n[l + 1]; j++)
                dc[l][j] = -dc[l][j];
            errs[2] = relative_error(test_grad(net, l, "ip"), dip[l], m);
            errs[3] = relative_error(test_grad(net, l, "ip_bias"), dc[l], n[l + 1]);
            errs[4] = relative_error(test_grad(net, l, "pi"), dpi[l], m);
            errs[5] = relative_error(test_grad(net, l, "feedback"), dbt[l], m);
        }
        printf("microcircuit (%s), layer %zu: relative errors W %.1e b %.1e W_IP %.1e c %.1e "
               "W_PI %.1e B %.1e\n",
               settings[17], l, errs[0], errs[1], errs[2], errs[3], errs[4], errs[5]);
        for (int k = 0; k < 6; k++)
            worst = fmax(worst, errs[k]);
    }
    ck_assert_msg(worst < 1e-5, "an update differs from the page's formula: %g", worst);
    bpl_net_destroy(net);
}
END_TEST

/* The continuous dynamics, left alone with a fixed input, come to rest at
 * the fixed point of their equations, found here by damped iteration. */
START_TEST(continuous_mode_settles)
{
    static const char *const settings[] = {"mode", "continuous", "steps", "1500", "dt", "0.1",
                                           NULL};
    enum { I = 6, HH = 5, O = 3, BB = 2 };
    const size_t units[] = {HH, O};
    bpl_net *net = make_net(I, units, 2, 13, settings);
    float x[BB * I];
    uint64_t seed = 7;
    test_fill_uniform(x, BB * I, 0.0f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_PREDICT, x, NULL, BB, 0, 0);
    const float *w0 = test_tensor(net, 0, "weight"), *b0 = test_tensor(net, 0, "bias");
    const float *w1 = test_tensor(net, 1, "weight"), *b1 = test_tensor(net, 1, "bias");
    const float *fb = test_tensor(net, 0, "feedback"), *pi = test_tensor(net, 0, "pi");
    const float *ip = test_tensor(net, 0, "ip"), *ipb = test_tensor(net, 0, "ip_bias");
    const double g_lk = 0.1, g_a = 0.8, g_b = 1.0, g_d = 1.0, g_som = 0.8;
    for (int b = 0; b < BB; b++) {
        double u[HH] = {0}, ui[O] = {0}, uo[O] = {0};
        for (int it = 0; it < 20000; it++) {
            double r[HH], ri[O], ro[O], nu[HH], nui[O], nuo[O];
            for (int j = 0; j < HH; j++)
                r[j] = 1 / (1 + exp(-u[j]));
            for (int k = 0; k < O; k++) {
                ri[k] = 1 / (1 + exp(-ui[k]));
                ro[k] = 1 / (1 + exp(-uo[k]));
            }
            for (int j = 0; j < HH; j++) {
                double vb = b0[j], va = 0;
                for (int i = 0; i < I; i++)
                    vb += (double)w0[j * I + i] * x[b * I + i];
                for (int k = 0; k < O; k++)
                    va += (double)fb[j * O + k] * ro[k] + (double)pi[j * O + k] * ri[k];
                nu[j] = (g_b * vb + g_a * va) / (g_lk + g_b + g_a);
            }
            for (int k = 0; k < O; k++) {
                double vb = b1[k], vi = ipb[k];
                for (int j = 0; j < HH; j++) {
                    vb += (double)w1[k * HH + j] * r[j];
                    vi += (double)ip[k * HH + j] * r[j];
                }
                nuo[k] = g_b * vb / (g_lk + g_b);
                nui[k] = (g_d * vi + g_som * uo[k]) / (g_lk + g_d + g_som);
            }
            for (int j = 0; j < HH; j++)
                u[j] = 0.5 * u[j] + 0.5 * nu[j];
            for (int k = 0; k < O; k++) {
                uo[k] = 0.5 * uo[k] + 0.5 * nuo[k];
                ui[k] = 0.5 * ui[k] + 0.5 * nui[k];
            }
        }
        const float *sim_u = test_buffer(net, 0, "u"), *sim_o = test_buffer(net, 1, "u");
        const float *sim_i = test_buffer(net, 0, "u_inter");
        for (int j = 0; j < HH; j++)
            ck_assert_msg(fabs(sim_u[b * HH + j] - u[j]) < 1e-4, "hidden soma %d: %g vs %g", j,
                          (double)sim_u[b * HH + j], u[j]);
        for (int k = 0; k < O; k++) {
            ck_assert_msg(fabs(sim_o[b * O + k] - uo[k]) < 1e-4, "output soma");
            ck_assert_msg(fabs(sim_i[b * O + k] - ui[k]) < 1e-4, "interneuron");
        }
    }
    bpl_net_destroy(net);
}
END_TEST

/* Continuous mode with plasticity learns a small task: the loss falls. */
START_TEST(continuous_mode_learns)
{
    static const char *const settings[] = {"mode", "continuous", "steps", "40", "dt", "0.1",
                                           "target_low", "0.001", "target_high", "0.999",
                                           "optimizer", "sgd", "lr", "1", NULL};
    enum { I = 6, HH = 10, O = 3, BB = 16 };
    const size_t units[] = {HH, O};
    bpl_net *net = make_net(I, units, 2, 21, settings);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    float x[BB * I], y[BB * O];
    uint64_t seed = 4;
    test_fill_uniform(x, BB * I, 0.0f, 1.0f, &seed);
    for (int b = 0; b < BB; b++) /* a smooth target the net can represent */
        for (int k = 0; k < O; k++)
            y[b * O + k] = 0.5f + 0.4f * (x[b * I + k] - x[b * I + k + 3]);
    double first = 0, last = 0;
    for (int i = 0; i < 400; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BB, i == 0 ? &first : &last));
    printf("continuous mode: loss %.4f -> %.4f\n", first, last);
    ck_assert_msg(last < 0.5 * first, "loss %.4f -> %.4f", first, last);
    bpl_net_destroy(net);
}
END_TEST

/* Every tensor of the net, concatenated (the caller frees it). */
static float *all_tensors(bpl_net *net, size_t *n_out)
{
    size_t n = 0;
    float *all = NULL;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
            all = realloc(all, (n + rows * cols) * sizeof *all);
            ck_assert_ptr_nonnull(all);
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, all + n, rows * cols));
            n += rows * cols;
        }
    }
    *n_out = n;
    return all;
}

/* The continuous mode integrates its plasticity filters during the step: a
 * step that fails (here its weights overflow the dynamics) must leave them,
 * like every parameter, as they were, and the net must still save. */
START_TEST(continuous_failed_step_keeps_filters)
{
    static const char *const settings[] = {"mode", "continuous", "steps", "2", "dt", "1.2",
                                           "noise", "0.1", NULL};
    enum { I = 3, H = 4, O = 2, BB = 3 };
    const size_t units[] = {H, 3, O};
    bpl_net *net = make_net(I, units, 3, 7, settings);
    float x[BB * I], y[BB * O];
    uint64_t seed = 9;
    test_fill_uniform(x, BB * I, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, BB, O, &seed);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, BB, NULL));
    const float huge[3] = {3e38f, -3e38f, 3e38f};
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, 1), "bias", huge, 3));
    size_t n_before, n_after;
    float *before = all_tensors(net, &n_before);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, BB, NULL), BPL_ERR_NUMERIC, NULL);
    float *after = all_tensors(net, &n_after);
    ck_assert_uint_eq(n_after, n_before);
    ck_assert_msg(memcmp(before, after, n_before * sizeof *before) == 0,
                  "a failed step changed the net's tensors");
    BPL_OK_OR_FAIL(bpl_net_save(net, test_temp_path("failed-step.bpl")));
    free(before);
    free(after);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(topdown_fixed_or_learned)
{
    static const char *const learned[] = {"learn_topdown", "true", NULL};
    const size_t units[] = {H1, OUT};
    for (int learn = 0; learn < 2; learn++) {
        bpl_net *net = make_net(IN, units, 2, 3, learn ? learned : NULL);
        int group;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 0), "feedback", NULL, NULL,
                                             &group));
        ck_assert_int_eq(group, learn ? BPL_GROUP_FEEDBACK : BPL_GROUP_NONE);
        float before[H1 * OUT], x[B * IN], y[B * OUT];
        memcpy(before, test_tensor(net, 0, "feedback"), sizeof before);
        uint64_t seed = 3;
        test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
        test_fill_onehot(y, B, OUT, &seed);
        for (int i = 0; i < 3; i++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
        int moved = memcmp(before, test_tensor(net, 0, "feedback"), sizeof before) != 0;
        ck_assert_int_eq(moved, learn);
        /* W_PI stays at -B, exactly, whether B moves or not */
        const float *b = test_tensor(net, 0, "feedback"), *pi = test_tensor(net, 0, "pi");
        for (size_t i = 0; i < H1 * OUT; i++)
            ck_assert_msg(pi[i] == -b[i], "learn %d: W_PI[%zu] = %g, B = %g", learn, i,
                          (double)pi[i], (double)b[i]);
        int tick;
        BPL_OK_OR_FAIL(bpl_rule_property(bpl_net_rule(net), BPL_PROP_SEPARATE_WEIGHTS_LEARNED,
                                         &tick, NULL));
        ck_assert_int_eq(tick, learn ? BPL_TICK_YES : BPL_TICK_PARTIAL);
        bpl_net_destroy(net);
    }
}
END_TEST

/* Learned top-down weights keep the apical potential quiet without a
 * target: W_PI follows -B, so after B has learned on targets the
 * self-predicting state still holds. */
START_TEST(learned_topdown_stays_self_predicting)
{
    static const char *const learned[] = {"learn_topdown", "true", NULL};
    const size_t units[] = {H1, OUT};
    bpl_net *net = make_net(IN, units, 2, 4, learned);
    float x[B * IN], y[B * OUT];
    uint64_t seed = 5;
    test_fill_uniform(x, B * IN, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, OUT, &seed);
    for (int i = 0; i < 20; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    /* no target: the interneurons predict the output's basal sweep; the
     * apical potential is B (r_above - r_I), small as W_IP has tracked */
    test_run_hooks(net, BPL_PHASE_TRAIN, x, NULL, B, 1, 0);
    double apical = test_max_abs(test_buffer(net, 0, "v_apical"), B * H1);
    printf("learned top-down: max |v_apical| without a target %.3g\n", apical);
    ck_assert_msg(apical < 0.01, "max |v_apical| = %g", apical);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(bad_settings_refused)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "microcircuit"));
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "lambda_out", 0), BPL_ERR_RANGE, "lambda_out");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "lambda_apical", 1), BPL_ERR_RANGE, "lambda_apical");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "target_high", 1), BPL_ERR_RANGE, "target_high");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "mode", "sometimes"), BPL_ERR_INVALID_ARG,
                     "mode");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "dt", 0), BPL_ERR_RANGE, "dt");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "noise", -1), BPL_ERR_RANGE, "noise");
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
    Suite *s = suite_create("microcircuit");
    TCase *tc = tcase_create("steady_state");
    tcase_add_test(tc, self_predicting_state_is_quiet);
    tcase_add_test(tc, predictions_are_the_bottom_up_sweep);
    tcase_add_test(tc, pretraining_learns_the_self_predicting_state);
    tcase_add_test(tc, symmetric_topdown_is_backprop);
    tcase_add_loop_test(tc, steady_update_is_the_pages_formula, 0, 2);
    tcase_add_test(tc, topdown_fixed_or_learned);
    tcase_add_test(tc, learned_topdown_stays_self_predicting);
    tcase_add_test(tc, bad_settings_refused);
    suite_add_tcase(s, tc);
    TCase *ct = tcase_create("continuous");
    tcase_add_test(ct, continuous_mode_settles);
    tcase_add_test(ct, continuous_mode_learns);
    tcase_add_test(ct, continuous_failed_step_keeps_filters);
    suite_add_tcase(s, ct);
    return test_run_suite(s);
}
