/*
 * test_target_prop.c - the target propagation family against its defining
 * properties:
 *
 *  - DTP's fixed point: when the output target equals the output, every
 *    hidden target equals the hidden activity and every forward update is
 *    exactly zero, whatever the inverses (vanilla TP has no such point);
 *  - inverses learn: on a fixed net, feedback-only training shrinks each
 *    inverse's reconstruction error by a large factor;
 *  - a linear net with exact inverses set by hand gives the analytic targets;
 *  - schedules (parallel, alternating, pre-training) train what they say;
 *  - auxiliary outputs, properties, diagnostics and bad hyperparameters.
 *
 * Hooks are driven by hand in the diagnose phase where the targets or the
 * gradients are inspected, so nothing is applied.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"
#include "testhooks.h"

static bpl_rule *make_rule(const char *name)
{
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    return rule;
}

static size_t tensor_size(bpl_layer *layer, const char *name)
{
    size_t rows, cols;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
    return rows * cols;
}

static float *copy_tensor(bpl_net *net, size_t l, const char *name)
{
    bpl_layer *layer = bpl_net_layer(net, l);
    size_t n = tensor_size(layer, name);
    float *v = malloc(n * sizeof *v);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, v, n));
    return v;
}

static int tensor_equals(bpl_net *net, size_t l, const char *name, const float *v)
{
    float *now = copy_tensor(net, l, name);
    int same = memcmp(now, v, tensor_size(bpl_net_layer(net, l), name) * sizeof *v) == 0;
    free(now);
    return same;
}

/* ---- the fixed point ------------------------------------------------------ */

/* tanh hidden layers, a linear output with MSE: y = output makes the output
 * error exactly zero. */
static bpl_net *fixed_point_net(const char *rule, uint64_t seed)
{
    const size_t units[] = {9, 8, 7, 4};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_LINEAR};
    bpl_net *net = test_make_net(6, units, acts, 4, seed);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    bpl_rule *r = make_rule(rule);
    if (strcmp(rule, "dtp") == 0 || strcmp(rule, "tp") == 0) {
        BPL_OK_OR_FAIL(bpl_rule_set_string(r, "first_target", "gradient"));
        BPL_OK_OR_FAIL(bpl_rule_set(r, "target_step", 0.5));
    }
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    /* "whatever the inverses": large random ones */
    for (size_t l = 1; l < 4; l++)
        if (bpl_layer_tensor_info(bpl_net_layer(net, l), "inverse", NULL, NULL, NULL) ==
            BPL_OK) {
            BPL_OK_OR_FAIL(bpl_layer_init_tensor(bpl_net_layer(net, l), "inverse",
                                                 BPL_INIT_NORMAL, 1.5));
            BPL_OK_OR_FAIL(bpl_layer_init_tensor(bpl_net_layer(net, l), "inverse_bias",
                                                 BPL_INIT_NORMAL, 0.5));
        }
    return net;
}

static int all_zero(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0.0f)
            return 0;
    return 1;
}

START_TEST(difference_target_fixed_point)
{
    static const char *const rules[] = {"dtp", "sdtp"};
    const char *rule = rules[_i];
    bpl_net *net = fixed_point_net(rule, 31);
    enum { B = 5 };
    float x[B * 6], y[B * 4];
    uint64_t seed = 8;
    test_fill_uniform(x, B * 6, -1.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, y, B * 4)); /* target = output */
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    for (size_t l = 0; l < 3; l++) {
        size_t n = B * bpl_layer_units(bpl_net_layer(net, l));
        ck_assert_msg(memcmp(test_buffer(net, l, "target"), test_buffer(net, l, "activation"),
                             n * sizeof(float)) == 0,
                      "%s: target of layer %zu differs from its activity", rule, l);
    }
    for (size_t l = 0; l < 4; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *gw, *gb;
        BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "weight", &gw, NULL, NULL));
        BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "bias", &gb, NULL, NULL));
        ck_assert_msg(all_zero(gw, tensor_size(layer, "weight")),
                      "%s: layer %zu weight update is not zero", rule, l);
        ck_assert_msg(all_zero(gb, tensor_size(layer, "bias")),
                      "%s: layer %zu bias update is not zero", rule, l);
    }
    /* and a real training step leaves the forward weights where they were */
    float *w0 = copy_tensor(net, 0, "weight");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    ck_assert_msg(tensor_equals(net, 0, "weight", w0), "%s: a zero update moved W", rule);
    free(w0);
    bpl_net_destroy(net);
}
END_TEST

/* Vanilla TP has no fixed point: imperfect inverses move every target. */
START_TEST(vanilla_target_has_no_fixed_point)
{
    bpl_net *net = fixed_point_net("tp", 31);
    enum { B = 5 };
    float x[B * 6], y[B * 4];
    uint64_t seed = 8;
    test_fill_uniform(x, B * 6, -1.0f, 1.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, B, y, B * 4));
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
    /* the penultimate target is h (zero gradient); below it, g(h) != h */
    size_t n = B * bpl_layer_units(bpl_net_layer(net, 1));
    ck_assert(memcmp(test_buffer(net, 1, "target"), test_buffer(net, 1, "activation"), n * sizeof(float)));
    float *gw;
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(bpl_net_layer(net, 1), "weight", &gw, NULL, NULL));
    ck_assert(!all_zero(gw, tensor_size(bpl_net_layer(net, 1), "weight")));
    bpl_net_destroy(net);
}
END_TEST

/* ---- linear nets with exact inverses ------------------------------------------ */

/* Square linear layers with orthogonal weights: W^-1 = W^T, so the exact
 * inverse is g(h) = W^T (h - b) = W^T h - W^T b. */
static bpl_net *linear_net(const char *rule)
{
    enum { N = 6 };
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, N, 77));
    for (int l = 0; l < 4; l++)
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, N, BPL_ACT_LINEAR, BPL_INIT_ORTHOGONAL));
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    uint64_t seed = 3;
    for (size_t l = 0; l < 4; l++) {
        float b[N];
        test_fill_uniform(b, N, -0.5f, 0.5f, &seed);
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(bpl_net_layer(net, l), "bias", b, N));
    }
    bpl_rule *r = make_rule(rule);
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "first_target", "gradient"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "inverse_activation", "linear"));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "target_step", 0.3));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    for (size_t l = 1; l < 3; l++) { /* inverses of layers 1 and 2 */
        float w[N * N], wt[N * N], b[N], c[N];
        bpl_layer *layer = bpl_net_layer(net, l);
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", w, N * N));
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", b, N));
        for (int i = 0; i < N; i++) {
            c[i] = 0.0f;
            for (int j = 0; j < N; j++) {
                wt[i * N + j] = w[j * N + i];
                c[i] -= w[j * N + i] * b[j];
            }
        }
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "inverse", wt, N * N));
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "inverse_bias", c, N));
    }
    return net;
}

START_TEST(exact_inverses_give_analytic_targets)
{
    static const char *const rules[] = {"dtp", "tp"};
    enum { N = 6, B = 3 };
    bpl_net *net = linear_net(rules[_i]);
    float x[B * N], y[B * N];
    uint64_t seed = 12;
    test_fill_uniform(x, B * N, -1.0f, 1.0f, &seed);
    test_fill_uniform(y, B * N, -1.0f, 1.0f, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 0);

    /* Analytic: t_2 = h_2 - 0.3 W_3^T (h_3 - y); t_l = h_l + W_{l+1}^T (t_{l+1} - h_{l+1}). */
    double t[3][B][N];
    float w[4][N * N];
    for (size_t l = 0; l < 4; l++)
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, l), "weight", w[l], N * N));
    const float *h3 = test_buffer(net, 3, "activation");
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            double g = 0.0;
            for (int j = 0; j < N; j++)
                g += (double)w[3][j * N + i] * (h3[b * N + j] - y[b * N + j]);
            t[2][b][i] = test_buffer(net, 2, "activation")[b * N + i] - 0.3 * g;
        }
    for (int l = 1; l >= 0; l--)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) {
                double d = 0.0;
                for (int j = 0; j < N; j++)
                    d += (double)w[l + 1][j * N + i] *
                         (t[l + 1][b][j] - test_buffer(net, (size_t)l + 1, "activation")[b * N + j]);
                t[l][b][i] = test_buffer(net, (size_t)l, "activation")[b * N + i] + d;
            }
    for (size_t l = 0; l < 3; l++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++) {
                double got = test_buffer(net, l, "target")[b * N + i];
                ck_assert_msg(fabs(got - t[l][b][i]) < 1e-5, "%s: layer %zu target %g, analytic %g",
                              rules[_i], l, got, t[l][b][i]);
            }
    bpl_net_destroy(net);
}
END_TEST

/* ---- one step against the pages' formulas ------------------------------------- */

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

enum { RI = 5, RB = 4, RMAX = 8 };
static const size_t ref_units[] = {6, 4, 3};

/* g_l(v) = tanh(V_l v + c_l), v of `width` values ("auto": the layers are tanh). */
static void ref_inverse(bpl_net *net, size_t l, const double *v, size_t width, double *out)
{
    const float *inv = test_tensor(net, l, "inverse"), *c = test_tensor(net, l, "inverse_bias");
    for (size_t i = 0; i < ref_units[l - 1]; i++) {
        double a = c[i];
        for (size_t j = 0; j < width; j++)
            a += (double)inv[i * width + j] * v[j];
        out[i] = tanh(a);
    }
}

/* f_l(h): tanh hidden layers, a softmax output. */
static void ref_layer(bpl_net *net, size_t l, const double *h, double *out)
{
    const float *w = test_tensor(net, l, "weight"), *b = test_tensor(net, l, "bias");
    size_t n = ref_units[l], n_in = l == 0 ? RI : ref_units[l - 1];
    double mx = -1e300, sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        double a = b[j];
        for (size_t i = 0; i < n_in; i++)
            a += (double)w[j * n_in + i] * h[i];
        out[j] = a;
        mx = fmax(mx, a);
    }
    for (size_t j = 0; j < n; j++) {
        if (l < 2)
            out[j] = tanh(out[j]);
        else
            sum += out[j] = exp(out[j] - mx);
    }
    for (size_t j = 0; l == 2 && j < n; j++)
        out[j] /= sum;
}

/* z = tanh(A h) of the auxiliary outputs, k of them. */
static void ref_auxiliary(bpl_net *net, const double *h, size_t k, double *z)
{
    if (k == 0)
        return;
    const float *a = test_tensor(net, 2, "auxiliary");
    for (size_t m = 0; m < k; m++) {
        double s = 0.0;
        for (size_t i = 0; i < ref_units[1]; i++)
            s += (double)a[m * ref_units[1] + i] * h[i];
        z[m] = tanh(s);
    }
}

/* One parallel step of tp, dtp and sdtp with auxiliary outputs, computed
 * here in double from the pages (docs/rules/dtp.md, tp.md, sdtp.md): the
 * forward updates from the targets, the inverse updates from the noise the
 * pages say is drawn (one [batch][units(l-1)] block per inverse, lowest
 * layer first, from the net's generator), every loss averaged over the
 * batch, and everything from the weights as they were before the step. */
START_TEST(parallel_step_is_the_pages_formula)
{
    static const char *const rules[] = {"sdtp", "dtp", "tp"};
    const char *rule = rules[_i];
    const size_t aux = _i == 0 ? 3 : 0;
    const double noise = 0.3, step = 0.4, lr = 0.05, fb_lr = 0.02;
    const int vanilla = _i == 2, gradient_target = _i == 1, denoising = _i == 0;
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(RI, ref_units, acts, 3, 13);
    bpl_rule *r = make_rule(rule);
    BPL_OK_OR_FAIL(bpl_rule_set(r, "noise", noise));
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "fb_optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "lr", lr));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "fb_lr", fb_lr));
    if (aux)
        BPL_OK_OR_FAIL(bpl_rule_set(r, "auxiliary_outputs", (double)aux));
    if (gradient_target)
        BPL_OK_OR_FAIL(bpl_rule_set(r, "target_step", step));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    /* layout of the output layer's inverse: [units(L-1)][units(L) + k] */
    size_t top_inverse = gradient_target ? 0 : ref_units[2] + aux;
    if (top_inverse) {
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 2), "inverse", &rows, &cols,
                                             NULL));
        ck_assert_uint_eq(rows, ref_units[1]);
        ck_assert_uint_eq(cols, top_inverse);
    }
    float x[RB * RI], y[RB * 3];
    uint64_t seed = 27;
    test_fill_uniform(x, RB * RI, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, RB, 3, &seed);

    /* the reference, from the state before the step */
    double gw[3][RMAX * RMAX] = {{0}}, gb[3][RMAX] = {{0}};
    double gv[3][RMAX * 2 * RMAX] = {{0}}, gc[3][RMAX] = {{0}};
    double h[RB][3][RMAX], t[RB][2][RMAX];
    bpl__rng rng = net->rng; /* forward and targets draw nothing: the update's noise is next */
    for (size_t e = 0; e < RB; e++) {
        double in[RMAX];
        for (size_t i = 0; i < RI; i++)
            in[i] = x[e * RI + i];
        for (size_t l = 0; l < 3; l++)
            ref_layer(net, l, l == 0 ? in : h[e][l - 1], h[e][l]);
        double yd[RMAX], g_t[RMAX], g_v[RMAX];
        for (size_t k = 0; k < 3; k++)
            yd[k] = y[e * 3 + k];
        if (gradient_target) { /* t = h - step W_L^T (p - y), per example */
            const float *w = test_tensor(net, 2, "weight");
            for (size_t i = 0; i < ref_units[1]; i++) {
                double d = 0.0;
                for (size_t k = 0; k < 3; k++)
                    d += (double)w[k * ref_units[1] + i] * (h[e][2][k] - yd[k]);
                t[e][1][i] = h[e][1][i] - step * d;
            }
        } else { /* from the label: g_L([y, z]) against g_L([h_L, z]) */
            double with_y[2 * RMAX], with_h[2 * RMAX];
            for (size_t k = 0; k < 3; k++) {
                with_y[k] = yd[k];
                with_h[k] = h[e][2][k];
            }
            ref_auxiliary(net, h[e][1], aux, with_y + 3);
            ref_auxiliary(net, h[e][1], aux, with_h + 3);
            ref_inverse(net, 2, with_y, 3 + aux, g_t);
            ref_inverse(net, 2, with_h, 3 + aux, g_v);
            for (size_t i = 0; i < ref_units[1]; i++)
                t[e][1][i] = vanilla ? g_t[i] : h[e][1][i] + (g_t[i] - g_v[i]);
        }
        ref_inverse(net, 1, t[e][1], ref_units[1], g_t);
        ref_inverse(net, 1, h[e][1], ref_units[1], g_v);
        for (size_t i = 0; i < ref_units[0]; i++)
            t[e][0][i] = vanilla ? g_t[i] : h[e][0][i] + (g_t[i] - g_v[i]);
        /* forward losses: 1/2 |h - t|^2 hidden, the task loss at the output, batch means */
        for (size_t l = 0; l < 3; l++) {
            size_t n_in = l == 0 ? RI : ref_units[l - 1];
            const double *pre = l == 0 ? in : h[e][l - 1];
            for (size_t j = 0; j < ref_units[l]; j++) {
                double d = l == 2 ? h[e][2][j] - yd[j]
                                  : (h[e][l][j] - t[e][l][j]) * (1.0 - h[e][l][j] * h[e][l][j]);
                gb[l][j] += d / RB;
                for (size_t i = 0; i < n_in; i++)
                    gw[l][j * n_in + i] += d * pre[i] / RB;
            }
        }
    }
    for (size_t l = 1; l < 3; l++) { /* inverse losses, lowest inverse first */
        size_t below = ref_units[l - 1], width = l == 2 ? 3 + aux : ref_units[l];
        if (l == 2 && gradient_target)
            continue;
        float eps[RB * RMAX];
        bpl__rng_fill_normal(&rng, eps, RB * below, 0.0f, (float)noise);
        for (size_t e = 0; e < RB; e++) {
            double noisy[RMAX], out[2 * RMAX], recon[RMAX];
            for (size_t i = 0; i < below; i++)
                noisy[i] = (double)(float)(eps[e * below + i] + (float)h[e][l - 1][i]);
            ref_layer(net, l, noisy, out);
            if (l == 2)
                ref_auxiliary(net, noisy, aux, out + 3);
            ref_inverse(net, l, out, width, recon);
            for (size_t i = 0; i < below; i++) {
                double wanted = denoising ? h[e][l - 1][i] : noisy[i];
                double d = (recon[i] - wanted) * (1.0 - recon[i] * recon[i]) / RB;
                gc[l][i] += d;
                for (size_t j = 0; j < width; j++)
                    gv[l][i * width + j] += d * out[j];
            }
        }
    }
    float w_before[RMAX * RMAX], v_before[RMAX * 2 * RMAX];
    memcpy(w_before, test_tensor(net, 0, "weight"), ref_units[0] * RI * sizeof(float));
    memcpy(v_before, test_tensor(net, 1, "inverse"), ref_units[0] * ref_units[1] * sizeof(float));

    test_run_hooks(net, BPL_PHASE_TRAIN, x, y, RB, 1, 1);
    double worst = 0.0;
    for (size_t l = 0; l < 3; l++) {
        size_t n_in = l == 0 ? RI : ref_units[l - 1];
        double ew = relative_error(test_grad(net, l, "weight"), gw[l], ref_units[l] * n_in);
        double eb = relative_error(test_grad(net, l, "bias"), gb[l], ref_units[l]);
        double ev = 0.0, ec = 0.0;
        if (l >= 1 && !(l == 2 && gradient_target)) {
            size_t width = l == 2 ? 3 + aux : ref_units[l];
            ev = relative_error(test_grad(net, l, "inverse"), gv[l], ref_units[l - 1] * width);
            ec = relative_error(test_grad(net, l, "inverse_bias"), gc[l], ref_units[l - 1]);
        }
        printf("%s, layer %zu: relative errors W %.1e b %.1e V %.1e c %.1e\n", rule, l, ew, eb,
               ev, ec);
        worst = fmax(worst, fmax(fmax(ew, eb), fmax(ev, ec)));
    }
    ck_assert_msg(worst < 2e-5, "%s: an update differs from the page's formula: %g", rule,
                  worst);
    /* and both were applied together: each step is its pre-step gradient's */
    double moved_w[RMAX * RMAX], moved_v[RMAX * RMAX];
    const float *w_after = test_tensor(net, 0, "weight"), *v_after = test_tensor(net, 1, "inverse");
    for (size_t i = 0; i < ref_units[0] * RI; i++)
        moved_w[i] = ((double)w_before[i] - w_after[i]) / lr;
    for (size_t i = 0; i < ref_units[0] * ref_units[1]; i++)
        moved_v[i] = ((double)v_before[i] - v_after[i]) / fb_lr;
    float gw0[RMAX * RMAX], gv1[RMAX * RMAX];
    for (size_t i = 0; i < ref_units[0] * RI; i++)
        gw0[i] = (float)gw[0][i];
    for (size_t i = 0; i < ref_units[0] * ref_units[1]; i++)
        gv1[i] = (float)gv[1][i];
    double sw = relative_error(gw0, moved_w, ref_units[0] * RI);
    double sv = relative_error(gv1, moved_v, ref_units[0] * ref_units[1]);
    ck_assert_msg(sw < 1e-3 && sv < 1e-3, "%s: the steps are not the pre-step gradients': %g %g",
                  rule, sw, sv);
    bpl_net_destroy(net);
}
END_TEST

/* ---- inverse learning ---------------------------------------------------------- */

/* Mean |g_l(f_l(h)) - h|^2 of layer l's inverse over a batch, computed here
 * from the tensors in double precision. */
static double reconstruction_error(bpl_net *net, size_t l, const float *x, size_t batch)
{
    size_t n_in = bpl_net_inputs(net);
    double *h = malloc(batch * 512 * sizeof *h), *next = malloc(batch * 512 * sizeof *next);
    for (size_t i = 0; i < batch * n_in; i++)
        h[i] = x[i];
    double err = 0.0;
    for (size_t k = 0; k <= l; k++) {
        bpl_layer *layer = bpl_net_layer(net, k);
        size_t rows = bpl_layer_units(layer), cols = bpl_layer_inputs(layer);
        float *w = copy_tensor(net, k, "weight"), *b = copy_tensor(net, k, "bias");
        int act = bpl_layer_activation(layer);
        for (size_t e = 0; e < batch; e++) {
            double mx = -1e300, sum = 0.0;
            for (size_t r = 0; r < rows; r++) {
                double a = b[r];
                for (size_t c = 0; c < cols; c++)
                    a += (double)w[r * cols + c] * h[e * cols + c];
                next[e * rows + r] = act == BPL_ACT_TANH ? tanh(a) : a;
                mx = fmax(mx, a);
            }
            if (act == BPL_ACT_SOFTMAX) {
                for (size_t r = 0; r < rows; r++)
                    sum += next[e * rows + r] = exp(next[e * rows + r] - mx);
                for (size_t r = 0; r < rows; r++)
                    next[e * rows + r] /= sum;
            }
        }
        if (k == l) { /* g_l(next) against h */
            float *v = copy_tensor(net, l, "inverse"), *c = copy_tensor(net, l, "inverse_bias");
            for (size_t e = 0; e < batch; e++)
                for (size_t i = 0; i < cols; i++) {
                    double a = c[i];
                    for (size_t r = 0; r < rows; r++)
                        a += (double)v[i * rows + r] * next[e * rows + r];
                    double d = tanh(a) - h[e * cols + i];
                    err += d * d;
                }
            free(v);
            free(c);
        }
        double *swap = h;
        h = next;
        next = swap;
        free(w);
        free(b);
    }
    free(h);
    free(next);
    return err / (double)batch;
}

START_TEST(inverses_learn_to_reconstruct)
{
    static const char *const rules[] = {"dtp", "sdtp"};
    const char *rule = rules[_i];
    const size_t units[] = {40, 30, 20, 5};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(25, units, acts, 4, 5);
    bpl_rule *r = make_rule(rule);
    BPL_OK_OR_FAIL(bpl_rule_set(r, "pretrain_steps", 1e9)); /* inverses only */
    BPL_OK_OR_FAIL(bpl_rule_set(r, "fb_lr", 1e-2));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    enum { B = 64 };
    float x[B * 25], y[B * 5], probe[B * 25];
    uint64_t seed = 4;
    test_fill_uniform(probe, B * 25, 0.0f, 1.0f, &seed);
    size_t first = strcmp(rule, "sdtp") == 0 ? 3 : 2; /* sdtp also inverts the output */
    double before[4] = {0}, after[4] = {0};
    for (size_t l = 1; l <= first; l++)
        before[l] = reconstruction_error(net, l, probe, B);
    float *w0 = copy_tensor(net, 0, "weight");
    for (int step = 0; step < 400; step++) {
        test_fill_uniform(x, B * 25, 0.0f, 1.0f, &seed);
        test_fill_onehot(y, B, 5, &seed);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    }
    ck_assert_msg(tensor_equals(net, 0, "weight", w0), "pre-training moved forward weights");
    free(w0);
    for (size_t l = 1; l <= first; l++) {
        after[l] = reconstruction_error(net, l, probe, B);
        printf("%s: inverse of layer %zu: reconstruction error %.4g -> %.4g\n", rule, l,
               before[l], after[l]);
        /* The output layer's inverse sees only 5 probabilities of 20 units:
         * it cannot reconstruct as well as the hidden ones. */
        double factor = l == 3 ? 4.0 : 10.0;
        ck_assert_msg(after[l] < before[l] / factor,
                      "%s: inverse of layer %zu: reconstruction error %.4g -> %.4g", rule, l,
                      before[l], after[l]);
    }
    bpl_net_destroy(net);
}
END_TEST

/* ---- schedules ---------------------------------------------------------------- */

static bpl_net *small_tp_net(const char *rule, const char *schedule, double alternate,
                             double pretrain)
{
    const size_t units[] = {12, 10, 4};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(8, units, acts, 3, 2);
    bpl_rule *r = make_rule(rule);
    BPL_OK_OR_FAIL(bpl_rule_set_string(r, "schedule", schedule));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "alternate_steps", alternate));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "pretrain_steps", pretrain));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    return net;
}

/* Which of the forward weights and the inverse of layer 1 a step changed. */
static void step_and_see(bpl_net *net, int *forward_moved, int *inverse_moved)
{
    static uint64_t seed = 21;
    float x[4 * 8], y[4 * 4];
    test_fill_uniform(x, 32, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, 4, 4, &seed);
    float *w = copy_tensor(net, 0, "weight"), *v = copy_tensor(net, 1, "inverse");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    *forward_moved = !tensor_equals(net, 0, "weight", w);
    *inverse_moved = !tensor_equals(net, 1, "inverse", v);
    free(w);
    free(v);
}

START_TEST(parallel_trains_both_every_step)
{
    bpl_net *net = small_tp_net("dtp", "parallel", 0, 0);
    for (int i = 0; i < 3; i++) {
        int f, v;
        step_and_see(net, &f, &v);
        ck_assert(f && v);
    }
    bpl_net_destroy(net);
}
END_TEST

START_TEST(alternating_takes_turns)
{
    bpl_net *net = small_tp_net("sdtp", "alternating", 2, 1);
    /* step 1: pre-training; then turns of 2: inverse, inverse, forward, forward, ... */
    const int expect_forward[] = {0, 0, 0, 1, 1, 0, 0, 1};
    for (int i = 0; i < 8; i++) {
        int f, v;
        step_and_see(net, &f, &v);
        ck_assert_msg(f == expect_forward[i] && v == !expect_forward[i],
                      "step %d: forward moved %d, inverse moved %d", i + 1, f, v);
    }
    bpl_net_destroy(net);
}
END_TEST

static int count_epochs(int event, size_t epoch, size_t step, size_t steps, double loss,
                        void *user_data)
{
    (void)epoch, (void)step, (void)steps, (void)loss;
    if (event == BPL_EVENT_EPOCH)
        ++*(int *)user_data;
    return 0;
}

START_TEST(alternating_by_epochs_of_fit)
{
    bpl_net *net = small_tp_net("dtp", "alternating", 0, 0);
    enum { N = 24 };
    float x[N * 8], y[N * 4];
    uint64_t seed = 6;
    test_fill_uniform(x, N * 8, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, N, 4, &seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, 8, 4));
    int epochs = 0;
    float *w = copy_tensor(net, 0, "weight"), *v = copy_tensor(net, 1, "inverse");
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, 6, count_epochs, &epochs)); /* inverse epoch */
    ck_assert(tensor_equals(net, 0, "weight", w));
    ck_assert(!tensor_equals(net, 1, "inverse", v));
    free(v);
    v = copy_tensor(net, 1, "inverse");
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, 6, count_epochs, &epochs)); /* forward epoch */
    ck_assert(!tensor_equals(net, 0, "weight", w));
    ck_assert(tensor_equals(net, 1, "inverse", v));
    ck_assert_int_eq(epochs, 2);
    /* outside fit an epoch has no length: a clear error, nothing changed */
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_STATE, "alternate_steps");
    free(w);
    free(v);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

/* A saved net resumes its schedule: the copy takes the same turns as the
 * original and trains bit-identically. */
START_TEST(schedule_survives_save_and_load)
{
    bpl_net *net = small_tp_net("dtp", "alternating", 3, 2);
    int f, v;
    for (int i = 0; i < 4; i++) /* pre-training 2, then 2 of the first inverse turn */
        step_and_see(net, &f, &v);
    const char *path = test_temp_path("tp-schedule.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *copy;
    BPL_OK_OR_FAIL(bpl_net_load(&copy, path));
    for (int i = 0; i < 4; i++) {
        float x[4 * 8], y[4 * 4];
        uint64_t seed = 100 + (uint64_t)i;
        test_fill_uniform(x, 32, 0.0f, 1.0f, &seed);
        test_fill_onehot(y, 4, 4, &seed);
        float *w = copy_tensor(net, 0, "weight");
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(copy, x, y, 4, NULL));
        /* step 5 ends the inverse turn; 6-8 are the forward turn */
        ck_assert_int_eq(!tensor_equals(net, 0, "weight", w), i >= 1);
        free(w);
        for (size_t l = 0; l < 3; l++) {
            float *mine = copy_tensor(net, l, "weight");
            ck_assert_msg(tensor_equals(copy, l, "weight", mine), "step %d layer %zu", i, l);
            free(mine);
        }
        float *inv = copy_tensor(net, 1, "inverse");
        ck_assert(tensor_equals(copy, 1, "inverse", inv));
        free(inv);
    }
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
}
END_TEST

/* ---- auxiliary outputs, properties, diagnostics, bad settings ------------------- */

START_TEST(auxiliary_outputs)
{
    const size_t units[] = {16, 12, 4};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(8, units, acts, 3, 9);
    bpl_rule *r = make_rule("sdtp");
    BPL_OK_OR_FAIL(bpl_rule_set(r, "auxiliary_outputs", 20));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "lr", 3e-3));
    BPL_OK_OR_FAIL(bpl_rule_set(r, "fb_lr", 3e-3));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, r));
    size_t rows, cols;
    int group;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 2), "inverse", &rows, &cols, NULL));
    ck_assert_uint_eq(rows, 12);
    ck_assert_uint_eq(cols, 4 + 20);
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 2), "auxiliary", &rows, &cols,
                                         &group));
    ck_assert_uint_eq(rows, 20);
    ck_assert_uint_eq(cols, 12);
    ck_assert_int_eq(group, BPL_GROUP_NONE);
    float *a = copy_tensor(net, 2, "auxiliary");
    enum { B = 32 };
    float x[B * 8], y[B * 4];
    uint64_t seed = 1;
    /* a learnable task: the class is the largest of the first four inputs */
    test_fill_uniform(x, B * 8, 0.0f, 1.0f, &seed);
    memset(y, 0, sizeof y);
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int k = 1; k < 4; k++)
            best = x[b * 8 + k] > x[b * 8 + best] ? k : best;
        y[b * 4 + best] = 1.0f;
    }
    double first = 0.0, last = 0.0;
    for (int i = 0; i < 400; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, i == 0 ? &first : &last));
    ck_assert_msg(last < 0.5 * first, "loss %.3f -> %.3f", first, last);
    ck_assert_msg(tensor_equals(net, 2, "auxiliary", a), "the random features must stay fixed");
    free(a);
    bpl_net_destroy(net);
}
END_TEST

static int property(bpl_rule *rule, int prop)
{
    int tick;
    BPL_OK_OR_FAIL(bpl_rule_property(rule, prop, &tick, NULL));
    return tick;
}

START_TEST(properties_follow_the_review)
{
    /* The static table is checked for every rule in test_rule_api.c; a label
     * first target removes the weight transport through the last layer. */
    const size_t units[] = {6, 5, 3};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_rule *dtp = make_rule("dtp");
    ck_assert_int_eq(property(dtp, BPL_PROP_NO_WEIGHT_TRANSPORT), BPL_TICK_PARTIAL);
    BPL_OK_OR_FAIL(bpl_rule_set_string(dtp, "first_target", "label"));
    bpl_net *net = test_make_net(4, units, acts, 3, 1);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, dtp));
    ck_assert_int_eq(property(dtp, BPL_PROP_NO_WEIGHT_TRANSPORT), BPL_TICK_YES);
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 2), "inverse", NULL, NULL, NULL));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(alignment_diagnostic_changes_nothing)
{
    static const char *const rules[] = {"tp", "dtp", "sdtp"};
    const size_t units[] = {16, 12, 4};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *a = test_make_net(8, units, acts, 3, 4), *b = test_make_net(8, units, acts, 3, 4);
    test_attach(a, rules[_i]);
    test_attach(b, rules[_i]);
    enum { B = 16 };
    float x[B * 8], y[B * 4];
    uint64_t seed = 3;
    test_fill_uniform(x, B * 8, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 4, &seed);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(a, x, y, B, angles, 3));
    ck_assert_msg(angles[2] < 1e-3, "%s: the output layer trains on the task loss", rules[_i]);
    ck_assert(isfinite(angles[0]) && isfinite(angles[1]));
    /* the diagnostic drew no noise and advanced no schedule: a and b stay twins */
    for (int i = 0; i < 5; i++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, B, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, B, NULL));
    }
    for (size_t l = 0; l < 3; l++) {
        float *wb = copy_tensor(b, l, "weight");
        ck_assert_msg(tensor_equals(a, l, "weight", wb), "%s: layer %zu", rules[_i], l);
        free(wb);
    }
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

/* The diagnostic measures the forward update whatever the schedule's turn:
 * during pre-training, in an inverse turn, and outside bpl_net_fit with
 * epoch-long turns, the angles are those of the parallel schedule. */
START_TEST(alignment_measures_the_forward_update_in_any_turn)
{
    bpl_net *parallel = small_tp_net("sdtp", "parallel", 0, 0);
    bpl_net *by_epochs = small_tp_net("sdtp", "alternating", 0, 0);
    bpl_net *pretraining = small_tp_net("sdtp", "alternating", 2, 1);
    enum { B = 8 };
    float x[B * 8], y[B * 4];
    uint64_t seed = 17;
    test_fill_uniform(x, B * 8, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 4, &seed);
    double want[3], got[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(parallel, x, y, B, want, 3));
    for (size_t l = 0; l < 3; l++)
        ck_assert(isfinite(want[l]));
    bpl_net *others[] = {by_epochs, pretraining};
    for (size_t n = 0; n < 2; n++) {
        BPL_OK_OR_FAIL(bpl_net_alignment(others[n], x, y, B, got, 3));
        for (size_t l = 0; l < 3; l++)
            ck_assert_msg(got[l] == want[l], "net %zu layer %zu: %g, parallel %g", n, l,
                          got[l], want[l]);
    }
    /* and it moved no schedule: the first step is still pre-training */
    int f, v;
    step_and_see(pretraining, &f, &v);
    ck_assert(!f && v);
    bpl_net_destroy(parallel);
    bpl_net_destroy(by_epochs);
    bpl_net_destroy(pretraining);
}
END_TEST

START_TEST(bad_hyperparameters_rejected)
{
    bpl_rule *dtp = make_rule("dtp"), *sdtp = make_rule("sdtp");
    BPL_EXPECT_ERROR(bpl_rule_set(dtp, "noise", -0.1), BPL_ERR_RANGE, "noise");
    BPL_EXPECT_ERROR(bpl_rule_set_string(dtp, "schedule", "sometimes"), BPL_ERR_INVALID_ARG,
                     "parallel|alternating");
    BPL_EXPECT_ERROR(bpl_rule_set(dtp, "schedule", 2), BPL_ERR_RANGE, "schedule");
    BPL_EXPECT_ERROR(bpl_rule_set(dtp, "alternate_steps", 1.5), BPL_ERR_RANGE,
                     "alternate_steps");
    BPL_EXPECT_ERROR(bpl_rule_set(dtp, "fb_lr", -1), BPL_ERR_RANGE, "fb_lr");
    BPL_EXPECT_ERROR(bpl_rule_set(dtp, "target_step", NAN), BPL_ERR_INVALID_ARG,
                     "target_step");
    BPL_EXPECT_ERROR(bpl_rule_set(sdtp, "first_target", 0), BPL_ERR_NOT_FOUND, "first_target");
    BPL_EXPECT_ERROR(bpl_rule_set(sdtp, "auxiliary_outputs", -1), BPL_ERR_RANGE,
                     "auxiliary_outputs");
    BPL_EXPECT_ERROR(bpl_rule_set_string(sdtp, "inverse_loss", "sideways"),
                     BPL_ERR_INVALID_ARG, "inverse_loss");
    /* auxiliary outputs on a net without a hidden layer: refused at attach */
    const size_t units[] = {3};
    const int acts[] = {BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, acts, 1, 1);
    BPL_OK_OR_FAIL(bpl_rule_set(sdtp, "auxiliary_outputs", 8));
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, sdtp), BPL_ERR_STATE, "auxiliary");
    ck_assert_ptr_null(bpl_net_rule(net));
    bpl_net_destroy(net);
    bpl_rule_destroy(dtp);
    bpl_rule_destroy(sdtp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("target_prop");
    TCase *core = tcase_create("defining_properties");
    tcase_add_loop_test(core, difference_target_fixed_point, 0, 2);
    tcase_add_test(core, vanilla_target_has_no_fixed_point);
    tcase_add_loop_test(core, exact_inverses_give_analytic_targets, 0, 2);
    tcase_add_loop_test(core, parallel_step_is_the_pages_formula, 0, 3);
    tcase_add_loop_test(core, inverses_learn_to_reconstruct, 0, 2);
    suite_add_tcase(s, core);
    TCase *sched = tcase_create("schedules");
    tcase_add_test(sched, parallel_trains_both_every_step);
    tcase_add_test(sched, alternating_takes_turns);
    tcase_add_test(sched, alternating_by_epochs_of_fit);
    tcase_add_test(sched, schedule_survives_save_and_load);
    suite_add_tcase(s, sched);
    TCase *misc = tcase_create("options");
    tcase_add_test(misc, auxiliary_outputs);
    tcase_add_test(misc, properties_follow_the_review);
    tcase_add_loop_test(misc, alignment_diagnostic_changes_nothing, 0, 3);
    tcase_add_test(misc, alignment_measures_the_forward_update_in_any_turn);
    tcase_add_test(misc, bad_hyperparameters_rejected);
    suite_add_tcase(s, misc);
    return test_run_suite(s);
}
