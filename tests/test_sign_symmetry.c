/*
 * test_sign_symmetry.c - the sign-concordant feedback rules usf, brsf and
 * frsf by their defining properties:
 *
 *  - every layer above the first has a feedback tensor B of W's shape,
 *    with W's signs elementwise after attach and after every step (W's
 *    signs change as it learns), on dense and conv layers;
 *  - usf's magnitudes are one value per layer, feedback_scale
 *    sqrt(2 / (fan_in + fan_out));
 *  - brsf's magnitudes are redrawn every step, frsf's never change (they
 *    are its saved "feedback_magnitude");
 *  - for a seed, brsf and frsf draw the same; B never shares W's storage;
 *  - each rule lowers the loss of a small dense and a small conv net;
 *  - a saved and loaded net trains on bit for bit as the original, and a
 *    diagnostic pass between steps changes nothing.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const rules[] = {"usf", "brsf", "frsf"};
#define N_RULES (sizeof rules / sizeof rules[0])

enum { DENSE_IN = 12, CONV_IN = 2 * 7 * 7, CLASSES = 3, N = 24 };

/* 12-16(tanh)-10(relu)-3(softmax). */
static bpl_net *dense_net(uint64_t seed)
{
    static const size_t units[] = {16, 10, CLASSES};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_RELU, BPL_ACT_SOFTMAX};
    return test_make_net(DENSE_IN, units, acts, 3, seed);
}

/* 2x7x7 -> conv 4@3x3 stride 2 pad 1 (relu) -> conv 5@2x2 pad 1 (tanh) -> dense 3. */
static bpl_net *conv_net(uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {2, 7, 7};
    BPL_OK_OR_FAIL(bpl_net_create(&net, CONV_IN, seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 4, 3, 3, 2, 1, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 5, 2, 2, 1, 1, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, CLASSES, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    return net;
}

/* A separable task: the class is which third of the input is raised. */
static void make_task(float *x, float *y, size_t inputs, uint64_t seed)
{
    uint64_t s = seed;
    test_fill_onehot(y, N, CLASSES, &s);
    test_fill_uniform(x, N * inputs, -0.3f, 0.3f, &s);
    size_t third = inputs / CLASSES;
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < CLASSES; c++)
            if (y[n * CLASSES + c] > 0.5f)
                for (size_t i = 0; i < third; i++)
                    x[n * inputs + c * third + i] += 1.0f;
}

static float sign_of(float v)
{
    return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : 0.0f;
}

/* Layer l's weight and feedback (same shape), through the public API. */
static size_t weight_and_feedback(bpl_net *net, size_t l, float **w, float **b)
{
    size_t rows, cols, brows, bcols;
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "weight", w, &rows, &cols));
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "feedback", b, &brows, &bcols));
    ck_assert_uint_eq(brows, rows);
    ck_assert_uint_eq(bcols, cols);
    return rows * cols;
}

/* sign(B) == sign(W) at every layer that has B (all but the first). */
static void assert_signs_agree(bpl_net *net, const char *rule, const char *when)
{
    float *w, *b;
    ck_assert_int_eq(bpl_layer_tensor(bpl_net_layer(net, 0), "feedback", &w, NULL, NULL),
                     BPL_ERR_NOT_FOUND);
    for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
        size_t n = weight_and_feedback(net, l, &w, &b);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(sign_of(b[i]) == sign_of(w[i]),
                          "%s %s, layer %zu [%zu]: W %g, B %g", rule, when, l, i, (double)w[i],
                          (double)b[i]);
    }
}

/* The signs agree after attach and after each of 30 steps large enough for
 * many of W's signs to flip; counts the flips so that the check means
 * something. */
static void check_signs(bpl_net *net, const char *rule, size_t inputs)
{
    test_attach(net, rule);
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.05));
    assert_signs_agree(net, rule, "after attach");
    float *x = malloc(N * inputs * sizeof *x), y[N * CLASSES];
    ck_assert_ptr_nonnull(x);
    make_task(x, y, inputs, 5);
    size_t flips = 0;
    for (int step = 0; step < 30; step++) {
        size_t n_before = 0;
        float *before = test_snapshot(net, &n_before);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, NULL));
        assert_signs_agree(net, rule, "after a step");
        size_t at = 0;
        for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
            bpl_layer *layer = bpl_net_layer(net, l);
            for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
                const char *name = bpl_layer_tensor_name(layer, t);
                float *v;
                size_t rows, cols;
                BPL_OK_OR_FAIL(bpl_layer_tensor(layer, name, &v, &rows, &cols));
                if (l > 0 && strcmp(name, "weight") == 0)
                    for (size_t i = 0; i < rows * cols; i++)
                        flips += sign_of(v[i]) != sign_of(before[at + i]);
                at += rows * cols;
            }
        }
        ck_assert_uint_eq(at, n_before);
        free(before);
    }
    ck_assert_msg(flips > 0, "%s: no weight changed sign", rule);
    free(x);
}

START_TEST(test_signs_follow_the_weights)
{
    for (size_t r = 0; r < N_RULES; r++) {
        bpl_net *dense = dense_net(3), *conv = conv_net(3);
        check_signs(dense, rules[r], DENSE_IN);
        check_signs(conv, rules[r], CONV_IN);
        bpl_net_destroy(dense);
        bpl_net_destroy(conv);
    }
}
END_TEST

/* Glorot's fan_in + fan_out of a layer's rows x cols weight: a conv
 * kernel's area counts in fan_out (fan_in = C_in kh kw, fan_out = C_out kh kw). */
static double fan_sum(const bpl_layer *layer, size_t rows, size_t cols)
{
    size_t kh, kw;
    BPL_OK_OR_FAIL(bpl_layer_get_window(layer, &kh, &kw, NULL, NULL));
    return (double)cols + (double)rows * (double)(kh * kw > 0 ? kh * kw : 1);
}

/* usf: |B| is feedback_scale sqrt(2 / (fan_in + fan_out)) wherever W is
 * not zero, one value per layer, after attach and after steps. */
static void check_usf_magnitudes(bpl_net *net, double scale, size_t inputs)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "usf"));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "feedback_scale", scale));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    float *x = malloc(N * inputs * sizeof *x), y[N * CLASSES];
    ck_assert_ptr_nonnull(x);
    make_task(x, y, inputs, 7);
    for (int step = 0; step < 4; step++) {
        for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
            float *w, *b;
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, &rows, &cols));
            weight_and_feedback(net, l, &w, &b);
            float c = (float)(scale * sqrt(2.0 / fan_sum(bpl_net_layer(net, l), rows, cols)));
            for (size_t i = 0; i < rows * cols; i++)
                ck_assert_msg(fabsf(b[i]) == (w[i] != 0.0f ? c : 0.0f),
                              "layer %zu [%zu]: |B| %.9g, expected %.9g", l, i,
                              (double)fabsf(b[i]), (double)c);
        }
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, NULL));
    }
    free(x);
}

START_TEST(test_usf_has_one_magnitude_per_layer)
{
    bpl_net *dense = dense_net(9), *conv = conv_net(9);
    check_usf_magnitudes(dense, 1.0, DENSE_IN);
    check_usf_magnitudes(conv, 0.3, CONV_IN);
    bpl_net_destroy(dense);
    bpl_net_destroy(conv);
}
END_TEST

/* |B| of every layer, concatenated (malloc'd). */
static float *magnitudes(bpl_net *net, size_t *n_out)
{
    size_t total = 0;
    float *w, *b;
    for (size_t l = 1; l < bpl_net_layer_count(net); l++)
        total += weight_and_feedback(net, l, &w, &b);
    float *m = malloc(total * sizeof *m);
    ck_assert_ptr_nonnull(m);
    size_t at = 0;
    for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
        size_t n = weight_and_feedback(net, l, &w, &b);
        for (size_t i = 0; i < n; i++)
            m[at + i] = w[i] != 0.0f ? fabsf(b[i]) : -1.0f; /* no magnitude where W is 0 */
        at += n;
    }
    *n_out = total;
    return m;
}

/* brsf's magnitudes change at every step (all but a few of them) and lie
 * in [0, feedback_scale sqrt(6 / (fan_in + fan_out))); frsf's stay its
 * "feedback_magnitude", step after step. */
static void check_redraws(bpl_net *net, size_t inputs)
{
    float *x = malloc(N * inputs * sizeof *x), y[N * CLASSES];
    ck_assert_ptr_nonnull(x);
    make_task(x, y, inputs, 11);
    const int redraws = strcmp(bpl_rule_name(bpl_net_rule(net)), "brsf") == 0;
    size_t n;
    float *prev = magnitudes(net, &n);
    for (int step = 0; step < 5; step++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, NULL));
        size_t n2, same = 0, compared = 0;
        float *now = magnitudes(net, &n2);
        ck_assert_uint_eq(n2, n);
        for (size_t i = 0; i < n; i++)
            if (now[i] >= 0.0f && prev[i] >= 0.0f) {
                compared++;
                same += now[i] == prev[i];
            }
        ck_assert_uint_gt(compared, n / 2);
        if (redraws)
            ck_assert_msg(same * 100 < compared, "brsf step %d: %zu of %zu magnitudes kept",
                          step, same, compared);
        else
            ck_assert_msg(same == compared, "frsf step %d: %zu of %zu magnitudes changed",
                          step, compared - same, compared);
        free(prev);
        prev = now;
    }
    free(prev);
    for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *w, *b, *r;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, &rows, &cols));
        weight_and_feedback(net, l, &w, &b);
        float limit = (float)sqrt(6.0 / fan_sum(layer, rows, cols));
        int has_r = bpl_layer_tensor(layer, "feedback_magnitude", &r, NULL, NULL) == BPL_OK;
        ck_assert_int_eq(has_r, !redraws);
        for (size_t i = 0; i < rows * cols; i++) {
            ck_assert(fabsf(b[i]) < limit);
            if (has_r)
                ck_assert(fabsf(b[i]) == (w[i] != 0.0f ? fabsf(r[i]) : 0.0f));
        }
    }
    free(x);
}

START_TEST(test_brsf_redraws_and_frsf_does_not)
{
    for (size_t r = 1; r < N_RULES; r++) {
        bpl_net *dense = dense_net(13), *conv = conv_net(13);
        test_attach(dense, rules[r]);
        test_attach(conv, rules[r]);
        check_redraws(dense, DENSE_IN);
        check_redraws(conv, CONV_IN);
        bpl_net_destroy(dense);
        bpl_net_destroy(conv);
    }
}
END_TEST

/* The same seed draws the same B and trains the same parameters; another
 * seed draws other magnitudes. */
START_TEST(test_deterministic_for_a_seed)
{
    float x[N * DENSE_IN], y[N * CLASSES];
    make_task(x, y, DENSE_IN, 17);
    for (size_t r = 1; r < N_RULES; r++) {
        bpl_net *a = dense_net(19), *b = dense_net(19), *other = dense_net(20);
        test_attach(a, rules[r]);
        test_attach(b, rules[r]);
        test_attach(other, rules[r]);
        for (int step = 0; step < 5; step++) {
            BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, N, NULL));
            BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, N, NULL));
            BPL_OK_OR_FAIL(bpl_net_train_batch(other, x, y, N, NULL));
        }
        size_t n;
        float *snap = test_snapshot(a, &n);
        ck_assert_msg(test_same_params(b, snap, n), "%s: same seed, other parameters",
                      rules[r]);
        ck_assert_msg(!test_same_params(other, snap, n), "%s: another seed, same parameters",
                      rules[r]);
        free(snap);
        bpl_net_destroy(a);
        bpl_net_destroy(b);
        bpl_net_destroy(other);
    }
}
END_TEST

/* B has storage of its own: writing it leaves W alone. */
START_TEST(test_feedback_never_aliases_the_weight)
{
    for (size_t r = 0; r < N_RULES; r++) {
        bpl_net *nets[] = {dense_net(23), conv_net(23)};
        for (size_t k = 0; k < 2; k++) {
            bpl_net *net = nets[k];
            test_attach(net, rules[r]);
            for (size_t l = 1; l < bpl_net_layer_count(net); l++) {
                float *w, *b;
                size_t n = weight_and_feedback(net, l, &w, &b);
                ck_assert(b + n <= w || w + n <= b);
                float w0 = w[0];
                b[0] = 123.0f;
                ck_assert(w[0] == w0);
            }
            bpl_net_destroy(net);
        }
    }
}
END_TEST

/* Mean cross-entropy of the net's predictions. */
static double mean_loss(bpl_net *net, const float *x, const float *y)
{
    float out[N * CLASSES];
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, N, out, N * CLASSES));
    double total = 0.0;
    for (size_t i = 0; i < N * CLASSES; i++)
        total -= y[i] * log(fmax(out[i], 1e-30));
    return total / N;
}

/* Each rule halves the loss of a separable task on a dense and a conv net. */
START_TEST(test_rules_lower_the_loss)
{
    for (size_t r = 0; r < N_RULES; r++)
        for (int conv = 0; conv < 2; conv++) {
            size_t inputs = conv ? CONV_IN : DENSE_IN;
            bpl_net *net = conv ? conv_net(29) : dense_net(29);
            test_attach(net, rules[r]);
            BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.01));
            float *x = malloc(N * inputs * sizeof *x), y[N * CLASSES];
            ck_assert_ptr_nonnull(x);
            make_task(x, y, inputs, 31);
            double before = mean_loss(net, x, y);
            for (int step = 0; step < 60; step++)
                BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, NULL));
            double after = mean_loss(net, x, y);
            ck_assert_msg(after < 0.5 * before, "%s on the %s net: loss %.4g -> %.4g",
                          rules[r], conv ? "conv" : "dense", before, after);
            free(x);
            bpl_net_destroy(net);
        }
}
END_TEST

/* Saved after a few steps and loaded, the net trains on bit for bit as the
 * original: brsf's draws come from the saved generator, frsf's R is saved. */
START_TEST(test_saved_net_continues_bit_for_bit)
{
    float x[N * DENSE_IN], y[N * CLASSES];
    make_task(x, y, DENSE_IN, 37);
    for (size_t r = 0; r < N_RULES; r++) {
        bpl_net *net = dense_net(41);
        test_attach(net, rules[r]);
        for (int step = 0; step < 3; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x + step * DENSE_IN, y + step * CLASSES,
                                               N - 3, NULL));
        void *data;
        size_t size;
        BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
        bpl_net *back;
        BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&back, data, size));
        bpl_buffer_free(data);
        ck_assert_str_eq(bpl_rule_name(bpl_net_rule(back)), rules[r]);
        size_t n;
        float *snap = test_snapshot(net, &n);
        ck_assert_msg(test_same_params(back, snap, n), "%s: loaded tensors differ", rules[r]);
        free(snap);
        for (int step = 0; step < 4; step++) {
            double l1, l2;
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, N, &l1));
            BPL_OK_OR_FAIL(bpl_net_train_batch(back, x, y, N, &l2));
            ck_assert_msg(memcmp(&l1, &l2, sizeof l1) == 0, "%s step %d: loss %.17g, %.17g",
                          rules[r], step, l1, l2);
        }
        snap = test_snapshot(net, &n);
        ck_assert_msg(test_same_params(back, snap, n), "%s: the loaded net trained apart",
                      rules[r]);
        free(snap);
        bpl_net_destroy(net);
        bpl_net_destroy(back);
    }
}
END_TEST

/* bpl_net_alignment between steps leaves training as it was (brsf draws in
 * the diagnostic pass too: from the net's generator, which it gives back). */
START_TEST(test_diagnostics_change_nothing)
{
    float x[N * DENSE_IN], y[N * CLASSES];
    make_task(x, y, DENSE_IN, 43);
    for (size_t r = 0; r < N_RULES; r++) {
        bpl_net *plain = dense_net(47), *probed = dense_net(47);
        test_attach(plain, rules[r]);
        test_attach(probed, rules[r]);
        for (int step = 0; step < 4; step++) {
            double angles[3];
            BPL_OK_OR_FAIL(bpl_net_alignment(probed, x, y, N, angles, 3));
            ck_assert(angles[0] >= 0.0 && angles[0] < 90.0);
            BPL_OK_OR_FAIL(bpl_net_train_batch(plain, x, y, N, NULL));
            BPL_OK_OR_FAIL(bpl_net_train_batch(probed, x, y, N, NULL));
        }
        /* B may keep the diagnostic pass's draws until the next step's:
         * compare the weights and biases, which is what training is. */
        for (size_t l = 0; l < bpl_net_layer_count(plain); l++)
            for (const char *const *name = (const char *const[]){"weight", "bias", NULL};
                 *name; name++) {
                float *va, *vc;
                size_t rows, cols;
                BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(plain, l), *name, &va, &rows,
                                                &cols));
                BPL_OK_OR_FAIL(
                    bpl_layer_tensor(bpl_net_layer(probed, l), *name, &vc, NULL, NULL));
                ck_assert_msg(memcmp(va, vc, rows * cols * sizeof *va) == 0,
                              "%s: layer %zu %s differs after diagnostics", rules[r], l,
                              *name);
            }
        bpl_net_destroy(plain);
        bpl_net_destroy(probed);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sign_symmetry");
    TCase *tc = tcase_create("sign_symmetry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_signs_follow_the_weights);
    tcase_add_test(tc, test_usf_has_one_magnitude_per_layer);
    tcase_add_test(tc, test_brsf_redraws_and_frsf_does_not);
    tcase_add_test(tc, test_deterministic_for_a_seed);
    tcase_add_test(tc, test_feedback_never_aliases_the_weight);
    tcase_add_test(tc, test_rules_lower_the_loss);
    tcase_add_test(tc, test_saved_net_continues_bit_for_bit);
    tcase_add_test(tc, test_diagnostics_change_nothing);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
