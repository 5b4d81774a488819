/*
 * test_api_init.c - the weight initialisers: their distributions,
 * orthogonality, gain and seeds.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The weight of a single [rows][cols] layer drawn by `init`. */
static void draw_weight(int init, size_t rows, size_t cols, uint64_t seed, float *w)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, cols, seed));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, rows, BPL_ACT_LINEAR, init));
    test_get_weight(net, 0, w, rows * cols);
    float bias[64];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "bias", bias, rows));
    for (size_t j = 0; j < rows; j++)
        ck_assert_float_eq(bias[j], 0.0f);
    bpl_net_destroy(net);
}

START_TEST(test_init_distributions)
{
    enum { ROWS = 64, COLS = 48, N = ROWS * COLS };
    const double fan_sum = ROWS + COLS, fan_in = COLS;
    /* uniform limit (0 for normal), expected standard deviation */
    const struct {
        int init;
        double limit, sd;
    } cases[] = {
        {BPL_INIT_GLOROT_UNIFORM, sqrt(6 / fan_sum), sqrt(6 / fan_sum) / sqrt(3)},
        {BPL_INIT_GLOROT_NORMAL, 0, sqrt(2 / fan_sum)},
        {BPL_INIT_HE_UNIFORM, sqrt(6 / fan_in), sqrt(6 / fan_in) / sqrt(3)},
        {BPL_INIT_HE_NORMAL, 0, sqrt(2 / fan_in)},
        {BPL_INIT_UNIFORM, 1.0, 1.0 / sqrt(3)},
        {BPL_INIT_NORMAL, 0, 1.0},
    };
    static float w[N];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        draw_weight(cases[c].init, ROWS, COLS, 11, w);
        struct test_moments m = test_moments(w, N);
        const char *name = bpl_init_name(cases[c].init);
        /* 3072 draws: the sample sd is within ~1.3% (1 sigma) of the truth */
        ck_assert_msg(fabs(m.sd / cases[c].sd - 1) < 0.1, "%s: sd %g, expected %g", name, m.sd,
                      cases[c].sd);
        ck_assert_msg(fabs(m.mean) < 0.1 * cases[c].sd, "%s: mean %g", name, m.mean);
        if (cases[c].limit > 0) {
            ck_assert_msg(m.max_abs <= cases[c].limit * (1 + 1e-6), "%s: %g beyond +-%g", name,
                          m.max_abs, cases[c].limit);
            ck_assert_msg(m.max_abs > 0.95 * cases[c].limit, "%s: max %g of limit %g", name,
                          m.max_abs, cases[c].limit);
        }
    }
    draw_weight(BPL_INIT_ZERO, ROWS, COLS, 11, w);
    for (size_t i = 0; i < N; i++)
        ck_assert_float_eq(w[i], 0.0f);
    draw_weight(BPL_INIT_CONSTANT, ROWS, COLS, 11, w);
    for (size_t i = 0; i < N; i++)
        ck_assert_float_eq(w[i], 1.0f); /* gain 1 */
}
END_TEST

/* max |M M^T - gain^2 I| (rows_first) or |M^T M - gain^2 I| for [rows][cols] M. */
static double gram_error(const float *m, size_t rows, size_t cols, int rows_first,
                         double gain)
{
    size_t n = rows_first ? rows : cols, len = rows_first ? cols : rows;
    double worst = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) {
            double dot = 0;
            for (size_t k = 0; k < len; k++)
                dot += rows_first ? (double)m[a * cols + k] * m[b * cols + k]
                                  : (double)m[k * cols + a] * m[k * cols + b];
            worst = fmax(worst, fabs(dot - (a == b ? gain * gain : 0.0)));
        }
    return worst;
}

START_TEST(test_init_orthogonal)
{
    float w[12 * 12];
    /* wide [5][12]: orthonormal rows */
    draw_weight(BPL_INIT_ORTHOGONAL, 5, 12, 3, w);
    ck_assert_double_lt(gram_error(w, 5, 12, 1, 1.0), 1e-4);
    /* tall [12][5]: orthonormal columns */
    draw_weight(BPL_INIT_ORTHOGONAL, 12, 5, 3, w);
    ck_assert_double_lt(gram_error(w, 12, 5, 0, 1.0), 1e-4);
    /* square: both */
    draw_weight(BPL_INIT_ORTHOGONAL, 12, 12, 3, w);
    ck_assert_double_lt(gram_error(w, 12, 12, 1, 1.0), 1e-4);
    ck_assert_double_lt(gram_error(w, 12, 12, 0, 1.0), 1e-4);

    /* the gain scales the matrix */
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 9, 3));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(bpl_net_layer(net, 0), "weight",
                                         BPL_INIT_ORTHOGONAL, 2.0));
    test_get_weight(net, 0, w, 36);
    ck_assert_double_lt(gram_error(w, 4, 9, 1, 2.0), 4e-4);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_init_gain)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 40, 3));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 30, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    bpl_layer *layer = bpl_net_layer(net, 0);
    static float w[1200];
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_UNIFORM, 0.1));
    test_get_weight(net, 0, w, 1200);
    struct test_moments m = test_moments(w, 1200);
    ck_assert_double_le(m.max_abs, 0.1 * (1 + 1e-6));
    ck_assert_double_gt(m.max_abs, 0.09);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_GLOROT_UNIFORM, 3.0));
    test_get_weight(net, 0, w, 1200);
    m = test_moments(w, 1200);
    double limit = 3.0 * sqrt(6.0 / 70.0);
    ck_assert_double_le(m.max_abs, limit * (1 + 1e-6));
    ck_assert_double_gt(m.max_abs, 0.9 * limit);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_NORMAL, 0.5));
    test_get_weight(net, 0, w, 1200);
    m = test_moments(w, 1200);
    ck_assert_double_lt(fabs(m.sd - 0.5), 0.05);
    bpl_net_destroy(net);
}
END_TEST

/* Glorot's limit of n values drawn into a tensor: within the limit, and
 * reaching near it (n >= 1000 uniform draws). */
static void check_uniform_limit(const float *w, size_t n, double limit, const char *what)
{
    struct test_moments m = test_moments(w, n);
    ck_assert_msg(m.max_abs <= limit * (1 + 1e-6), "%s: %g beyond +-%g", what, m.max_abs,
                  limit);
    ck_assert_msg(m.max_abs > 0.95 * limit, "%s: max %g of limit %g", what, m.max_abs, limit);
}

/* A conv layer's Glorot fans count the kernel's area on both sides, as
 * PyTorch's and Keras's do: fan_in = C_in kh kw, fan_out = C_out kh kw.  So
 * does a tensor a rule adds in the weight's shape (fa's B); a tensor of
 * another shape on the same layer counts its rows and columns. */
START_TEST(test_init_conv_fans)
{
    enum { C_IN = 8, C_OUT = 40, KH = 3, KW = 5, COLS = C_IN * KH * KW };
    static float w[C_OUT * COLS];
    const size_t chw[] = {C_IN, 9, 9};
    const double conv_limit = sqrt(6.0 / (COLS + C_OUT * KH * KW));
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, C_IN * 9 * 9, 5));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, C_OUT, KH, KW, 1, 0, BPL_ACT_RELU,
                                      BPL_INIT_GLOROT_UNIFORM));
    bpl_layer *conv = bpl_net_layer(net, 0);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(conv, "weight", w, C_OUT * COLS));
    check_uniform_limit(w, C_OUT * COLS, conv_limit, "conv weight");

    BPL_OK_OR_FAIL(bpl_layer_add_tensor(conv, "like_weight", C_OUT, COLS, BPL_GROUP_NONE,
                                        BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(conv, "like_weight", w, C_OUT * COLS));
    check_uniform_limit(w, C_OUT * COLS, conv_limit, "tensor of the weight's shape");
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(conv, "like_weight", BPL_INIT_GLOROT_UNIFORM, 2.0));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(conv, "like_weight", w, C_OUT * COLS));
    check_uniform_limit(w, C_OUT * COLS, 2.0 * conv_limit, "re-initialised, gain 2");

    BPL_OK_OR_FAIL(bpl_layer_add_tensor(conv, "other", COLS, C_OUT, BPL_GROUP_NONE,
                                        BPL_INIT_GLOROT_UNIFORM, 1.0, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(conv, "other", w, C_OUT * COLS));
    check_uniform_limit(w, C_OUT * COLS, sqrt(6.0 / (COLS + C_OUT)), "transposed shape");

    /* He counts fan_in only: the same for conv layers in either convention. */
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(conv, "weight", BPL_INIT_HE_UNIFORM, 1.0));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(conv, "weight", w, C_OUT * COLS));
    check_uniform_limit(w, C_OUT * COLS, sqrt(6.0 / COLS), "he_uniform conv weight");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_init_seed)
{
    static const int inits[] = {BPL_INIT_GLOROT_UNIFORM, BPL_INIT_HE_NORMAL,
                                BPL_INIT_ORTHOGONAL, BPL_INIT_NORMAL};
    float a[8 * 6], b[8 * 6], c[8 * 6];
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
        draw_weight(inits[i], 8, 6, 1234, a);
        draw_weight(inits[i], 8, 6, 1234, b);
        draw_weight(inits[i], 8, 6, 1235, c);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: same seed, different weights",
                      bpl_init_name(inits[i]));
        ck_assert_msg(memcmp(a, c, sizeof a) != 0, "%s: different seeds, same weights",
                      bpl_init_name(inits[i]));
    }
    /* whole nets too: every layer is drawn from the net's generator */
    bpl_net *n1 = test_small_classifier(77), *n2 = test_small_classifier(77), *n3 = test_small_classifier(78);
    size_t len;
    float *s1 = test_snapshot(n1, &len);
    ck_assert(test_same_params(n2, s1, len));
    ck_assert(!test_same_params(n3, s1, len));
    free(s1);
    bpl_net_destroy(n1);
    bpl_net_destroy(n2);
    bpl_net_destroy(n3);
}
END_TEST

static Suite *init_suite(void)
{
    Suite *s = suite_create("api_init");
    TCase *tc = tcase_create("init");
    tcase_add_test(tc, test_init_distributions);
    tcase_add_test(tc, test_init_orthogonal);
    tcase_add_test(tc, test_init_gain);
    tcase_add_test(tc, test_init_conv_fans);
    tcase_add_test(tc, test_init_seed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(init_suite());
}
