/*
 * test_numeric.c - the rules against ground truth.
 *
 *  - backprop's gradients against central finite differences of the loss,
 *    for every activation and both losses;
 *  - feedback alignment with B = W^T gives backprop's update;
 *  - direct feedback alignment's hidden errors are the output error sent
 *    through B_l, recomputed here independently;
 *  - feedback alignment's angle to backprop falls well below 90 degrees;
 *  - the same seed gives bit-identical training.
 *
 * Gradients are read in the diagnose phase, where a rule computes them but
 * bpl_net_apply_gradients leaves the parameters alone.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"
#include "testhooks.h"

/* The loss, computed here from the net's outputs in double precision, as an
 * independent definition: CE = -sum y log p (softmax) or the binary form
 * (sigmoid); MSE = 1/2 sum (h - y)^2; averaged over the batch. */
static double reference_loss(bpl_net *net, const float *x, const float *y, size_t batch)
{
    size_t n_out = bpl_net_outputs(net);
    float *out = malloc(batch * n_out * sizeof *out);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, batch, out, batch * n_out));
    int act = bpl_layer_activation(bpl_net_layer(net, bpl_net_layer_count(net) - 1));
    double total = 0.0;
    for (size_t i = 0; i < batch * n_out; i++) {
        double h = out[i], t = y[i];
        if (bpl_net_loss(net) == BPL_LOSS_MSE)
            total += 0.5 * (h - t) * (h - t);
        else if (act == BPL_ACT_SIGMOID)
            total -= t * log(h) + (1.0 - t) * log(1.0 - h);
        else
            total -= t * log(h);
    }
    free(out);
    return total / (double)batch;
}

typedef struct case_spec {
    int hidden_act, output_act, loss;
} case_spec;

/* Compare every weight and bias gradient with a central difference. */
static void check_gradients(const case_spec *c, double eps, double rel_tol, double abs_tol)
{
    const size_t units[] = {5, 4, 3};
    const int acts[] = {c->hidden_act, c->hidden_act, c->output_act};
    bpl_net *net = test_make_net(6, units, acts, 3, 42);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, c->loss));
    test_attach(net, "backprop");
    enum { B = 4 };
    float x[B * 6], y[B * 3];
    uint64_t seed = 7;
    test_fill_uniform(x, B * 6, -1.0f, 1.0f, &seed);
    if (c->loss == BPL_LOSS_MSE)
        test_fill_uniform(y, B * 3, 0.1f, 0.9f, &seed);
    else if (c->output_act == BPL_ACT_SIGMOID)
        test_fill_uniform(y, B * 3, 0.0f, 1.0f, &seed);
    else
        test_fill_onehot(y, B, 3, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);

    size_t checked = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (const char *const *name = (const char *const[]){"weight", "bias", NULL}; *name;
             name++) {
            float *w, *g;
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor(layer, *name, &w, &rows, &cols));
            BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, *name, &g, NULL, NULL));
            for (size_t i = 0; i < rows * cols; i++) {
                float saved = w[i];
                w[i] = saved + (float)eps;
                double up = reference_loss(net, x, y, B);
                w[i] = saved - (float)eps;
                double down = reference_loss(net, x, y, B);
                w[i] = saved;
                double numeric = (up - down) / (2.0 * eps);
                double err = fabs(numeric - g[i]);
                ck_assert_msg(err <= abs_tol + rel_tol * fmax(fabs(numeric), fabs(g[i])),
                              "%s/%s/%s: layer %zu %s[%zu]: backprop %.6g, finite "
                              "difference %.6g",
                              bpl_activation_name(c->hidden_act),
                              bpl_activation_name(c->output_act), bpl_loss_name(c->loss), l,
                              *name, i, (double)g[i], numeric);
                checked++;
            }
        }
    }
    ck_assert_uint_eq(checked, bpl_net_param_count(net));
    bpl_net_destroy(net);
}

START_TEST(gradient_every_activation_cross_entropy)
{
    const int hidden[] = {BPL_ACT_LINEAR, BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_RELU};
    const int outputs[] = {BPL_ACT_SOFTMAX, BPL_ACT_SIGMOID};
    for (size_t h = 0; h < 4; h++)
        for (size_t o = 0; o < 2; o++) {
            case_spec c = {hidden[h], outputs[o], BPL_LOSS_CROSS_ENTROPY};
            check_gradients(&c, 1e-2, 2e-2, 2e-4);
        }
}
END_TEST

START_TEST(gradient_every_activation_mse)
{
    const int acts[] = {BPL_ACT_LINEAR, BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_RELU};
    const int outputs[] = {BPL_ACT_LINEAR, BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_RELU,
                           BPL_ACT_SOFTMAX};
    for (size_t h = 0; h < 4; h++)
        for (size_t o = 0; o < 5; o++) {
            case_spec c = {acts[h], outputs[o], BPL_LOSS_MSE};
            check_gradients(&c, 1e-2, 2e-2, 2e-4);
        }
}
END_TEST

/* Copy every layer's weight gradient into one array. */
static float *weight_gradients(bpl_net *net)
{
    size_t total = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        total += bpl_layer_units(bpl_net_layer(net, l)) * bpl_layer_inputs(bpl_net_layer(net, l));
    float *all = malloc(total * sizeof *all), *dst = all;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        float *g;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor_grad(bpl_net_layer(net, l), "weight", &g, &rows, &cols));
        memcpy(dst, g, rows * cols * sizeof *dst);
        dst += rows * cols;
    }
    return all;
}

static void set_feedback_to_transpose(bpl_net *net)
{
    for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t rows = bpl_layer_units(layer), cols = bpl_layer_inputs(layer);
        float *w = malloc(rows * cols * sizeof *w), *wt = malloc(rows * cols * sizeof *wt);
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", w, rows * cols));
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                wt[c * rows + r] = w[r * cols + c];
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "feedback", wt, rows * cols));
        free(w);
        free(wt);
    }
}

START_TEST(fa_with_transposed_feedback_is_backprop)
{
    const size_t units[] = {16, 12, 8, 4};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_RELU, BPL_ACT_SIGMOID, BPL_ACT_SOFTMAX};
    bpl_net *bp = test_make_net(10, units, acts, 4, 3);
    bpl_net *fa = test_make_net(10, units, acts, 4, 3);
    test_attach(bp, "backprop");
    test_attach(fa, "fa");
    enum { B = 8 };
    float x[B * 10], y[B * 4];
    uint64_t seed = 11;
    for (int step = 0; step < 5; step++) {
        test_fill_uniform(x, B * 10, -1.0f, 1.0f, &seed);
        test_fill_onehot(y, B, 4, &seed);
        /* B is re-copied every step: both nets must stay identical. */
        set_feedback_to_transpose(fa);
        test_run_hooks(bp, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
        test_run_hooks(fa, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);
        float *gb = weight_gradients(bp), *gf = weight_gradients(fa);
        size_t n = bpl_net_param_count(bp) - (16 + 12 + 8 + 4);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(fabsf(gb[i] - gf[i]) <= 1e-6f + 1e-4f * fabsf(gb[i]),
                          "step %d: gradient %zu: backprop %g, fa %g", step, i,
                          (double)gb[i], (double)gf[i]);
        free(gb);
        free(gf);
        BPL_OK_OR_FAIL(bpl_net_train_batch(bp, x, y, B, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(fa, x, y, B, NULL));
    }
    bpl_net_destroy(bp);
    bpl_net_destroy(fa);
}
END_TEST

START_TEST(fa_feedback_stays_fixed)
{
    const size_t units[] = {8, 3};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(5, units, acts, 2, 9);
    test_attach(net, "fa");
    float before[8 * 3], after[8 * 3], x[4 * 5], y[4 * 3];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 1), "feedback", before, 24));
    uint64_t seed = 5;
    for (int i = 0; i < 20; i++) {
        test_fill_uniform(x, 20, -1.0f, 1.0f, &seed);
        test_fill_onehot(y, 4, 3, &seed);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    }
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 1), "feedback", after, 24));
    ck_assert_mem_eq(before, after, sizeof before);
    bpl_net_destroy(net);
}
END_TEST

/* DFA: delta_l = (e B_l^T) (.) act'(h_l), e = (p - y)/batch, recomputed here. */
START_TEST(dfa_hidden_errors_come_from_the_output_error)
{
    const size_t units[] = {7, 6, 5, 3};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID, BPL_ACT_RELU, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, acts, 4, 21);
    test_attach(net, "dfa");
    enum { B = 6 };
    float x[B * 4], y[B * 3];
    uint64_t seed = 17;
    test_fill_uniform(x, B * 4, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    test_run_hooks(net, BPL_PHASE_DIAGNOSE, x, y, B, 1, 1);

    const float *p = net->layers[3]->buffers[0].data; /* output activation */
    float e[B * 3];
    for (size_t i = 0; i < B * 3; i++)
        e[i] = (p[i] - y[i]) / B;
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl_layer_units(layer);
        float fb[7 * 3];
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "feedback", fb, n * 3));
        const float *h = layer->buffers[0].data, *delta = layer->buffers[1].data;
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < n; j++) {
                double s = 0.0;
                for (size_t k = 0; k < 3; k++)
                    s += (double)e[b * 3 + k] * fb[j * 3 + k];
                double hv = h[b * n + j];
                double d = acts[l] == BPL_ACT_TANH      ? 1.0 - hv * hv
                           : acts[l] == BPL_ACT_SIGMOID ? hv * (1.0 - hv)
                                                        : (hv > 0.0 ? 1.0 : 0.0);
                ck_assert_msg(fabs(s * d - delta[b * n + j]) < 1e-6,
                              "layer %zu example %zu unit %zu: expected %g, rule %g", l, b,
                              j, s * d, (double)delta[b * n + j]);
            }
    }
    bpl_net_destroy(net);
}
END_TEST

/* A teacher net labels random inputs; the student learns with FA.  Lillicrap
 * et al. report the hidden update's angle to backprop falling from about 90
 * degrees to well below it as W aligns with B. */
START_TEST(fa_aligns_with_backprop_during_training)
{
    const size_t units[] = {32, 5};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *teacher = test_make_net(20, units, acts, 2, 100);
    bpl_net *student = test_make_net(20, units, acts, 2, 200);
    test_attach(student, "fa");
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(student), "lr", 3e-3));
    enum { B = 64 };
    float x[B * 20], p[B * 5], y[B * 5];
    uint64_t seed = 1;
    double angles[2], first = 0.0, last = 0.0;
    for (int step = 0; step < 600; step++) {
        test_fill_uniform(x, B * 20, -1.0f, 1.0f, &seed);
        BPL_OK_OR_FAIL(bpl_net_predict(teacher, x, B, p, B * 5));
        memset(y, 0, sizeof y);
        for (size_t b = 0; b < B; b++) {
            size_t best = 0;
            for (size_t k = 1; k < 5; k++)
                best = p[b * 5 + k] > p[b * 5 + best] ? k : best;
            y[b * 5 + best] = 1.0f;
        }
        if (step == 0 || step == 599) {
            BPL_OK_OR_FAIL(bpl_net_alignment(student, x, y, B, angles, 2));
            ck_assert_msg(angles[1] < 1e-3, "the output layer trains as in backprop");
            (step == 0 ? &first : &last)[0] = angles[0];
        }
        BPL_OK_OR_FAIL(bpl_net_train_batch(student, x, y, B, NULL));
    }
    ck_assert_msg(first > 60.0, "initial hidden angle %.1f should be near 90", first);
    ck_assert_msg(last < 60.0 && last < first - 20.0,
                  "hidden angle went from %.1f to %.1f degrees", first, last);
    bpl_net_destroy(teacher);
    bpl_net_destroy(student);
}
END_TEST

/* Train with fit (shuffling, initialisation and feedback all from the seed)
 * and return every parameter. */
static float *train_and_dump(const char *rule, uint64_t seed, size_t *n_out)
{
    const size_t units[] = {12, 6, 3};
    const int acts[] = {BPL_ACT_RELU, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(8, units, acts, 3, seed);
    test_attach(net, rule);
    enum { N = 50 };
    float x[N * 8], y[N * 3];
    uint64_t data_seed = 99;
    test_fill_uniform(x, N * 8, -1.0f, 1.0f, &data_seed);
    test_fill_onehot(y, N, 3, &data_seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, 8, 3));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 3, 8, NULL, NULL));
    size_t n = 0;
    for (size_t l = 0; l < 3; l++)
        for (size_t t = 0; t < bpl_layer_tensor_count(bpl_net_layer(net, l)); t++) {
            size_t rows, cols;
            const char *name = bpl_layer_tensor_name(bpl_net_layer(net, l), t);
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, l), name, &rows, &cols,
                                                 NULL));
            n += rows * cols;
        }
    float *all = malloc(n * sizeof *all), *dst = all;
    for (size_t l = 0; l < 3; l++)
        for (size_t t = 0; t < bpl_layer_tensor_count(bpl_net_layer(net, l)); t++) {
            size_t rows, cols;
            const char *name = bpl_layer_tensor_name(bpl_net_layer(net, l), t);
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, l), name, &rows, &cols,
                                                 NULL));
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, l), name, dst, rows * cols));
            dst += rows * cols;
        }
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
    *n_out = n;
    return all;
}

START_TEST(same_seed_same_result)
{
    for (size_t r = 0; r < bpl_rule_builtin_count(); r++) {
        const char *rule = bpl_rule_builtin_name(r);
        size_t n1, n2, n3;
        float *a = train_and_dump(rule, 5, &n1), *b = train_and_dump(rule, 5, &n2);
        float *c = train_and_dump(rule, 6, &n3);
        ck_assert_uint_eq(n1, n2);
        ck_assert_msg(memcmp(a, b, n1 * sizeof *a) == 0, "%s: same seed, different result",
                      rule);
        ck_assert_msg(n1 != n3 || memcmp(a, c, n1 * sizeof *a) != 0,
                      "%s: different seeds, same result", rule);
        free(a);
        free(b);
        free(c);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("numeric");
    TCase *grad = tcase_create("backprop_gradients");
    tcase_add_test(grad, gradient_every_activation_cross_entropy);
    tcase_add_test(grad, gradient_every_activation_mse);
    suite_add_tcase(s, grad);
    TCase *fa = tcase_create("feedback_alignment");
    tcase_add_test(fa, fa_with_transposed_feedback_is_backprop);
    tcase_add_test(fa, fa_feedback_stays_fixed);
    tcase_add_test(fa, fa_aligns_with_backprop_during_training);
    suite_add_tcase(s, fa);
    TCase *dfa = tcase_create("direct_feedback_alignment");
    tcase_add_test(dfa, dfa_hidden_errors_come_from_the_output_error);
    suite_add_tcase(s, dfa);
    TCase *det = tcase_create("determinism");
    tcase_add_test(det, same_seed_same_result);
    suite_add_tcase(s, det);
    return test_run_suite(s);
}
