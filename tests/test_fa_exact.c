/*
 * test_fa_exact.c - feedback alignment with B = W is backprop, bit for bit.
 *
 * fa sends the error down through B where backprop sends it through W; with
 * B set to W (in B's layout) the two rules must train the same parameters
 * to the last bit, step after step, on a dense net and on a conv net
 * (conv -> conv -> dense, with stride and padding).  Compared with memcmp:
 * equality to a tolerance would hide a product that reads B in another
 * order than W.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Layer l's feedback tensor = its weight, in B's layout: the weight's own
 * on conv layers, its transpose on dense ones (fa's B is [inputs][units]
 * there, as it has always been drawn). */
static void set_feedback_to_weight(bpl_net *net, size_t l, int conv)
{
    bpl_layer *layer = bpl_net_layer(net, l);
    float *w, *b;
    size_t rows, cols, brows, bcols;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, &rows, &cols));
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "feedback", &b, &brows, &bcols));
    ck_assert_uint_eq(brows * bcols, rows * cols);
    if (!conv) {
        ck_assert_uint_eq(brows, cols);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                b[j * rows + i] = w[i * cols + j];
    } else {
        ck_assert_uint_eq(brows, rows);
        memcpy(b, w, rows * cols * sizeof *w);
    }
}

/* Every weight and bias of the two nets: bit for bit when `tolerance` is
 * 0, else each within tolerance * max(1, |backprop's|). */
static void assert_same_parameters(bpl_net *a, bpl_net *b, int step, double tolerance)
{
    static const char *const names[] = {"weight", "bias"};
    for (size_t l = 0; l < bpl_net_layer_count(a); l++)
        for (size_t t = 0; t < 2; t++) {
            float *pa, *pb;
            size_t rows, cols, rows_b, cols_b;
            BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(a, l), names[t], &pa, &rows, &cols));
            BPL_OK_OR_FAIL(
                bpl_layer_tensor(bpl_net_layer(b, l), names[t], &pb, &rows_b, &cols_b));
            ck_assert_uint_eq(rows * cols, rows_b * cols_b);
            size_t first = rows * cols;
            for (size_t i = 0; i < rows * cols && first == rows * cols; i++) {
                double bound = tolerance * fmax(1.0, fabs((double)pa[i]));
                if (tolerance == 0.0 ? memcmp(&pa[i], &pb[i], sizeof *pa) != 0
                                     : !(fabs((double)pa[i] - pb[i]) <= bound))
                    first = i;
            }
            ck_assert_msg(first == rows * cols,
                          "step %d, layer %zu %s[%zu]: backprop %.9g, fa %.9g (tolerance %g)",
                          step, l, names[t], first,
                          first < rows * cols ? (double)pa[first] : 0.0,
                          first < rows * cols ? (double)pb[first] : 0.0, tolerance);
        }
}

enum { BATCH = 6 };

/* Train `bp` (backprop) and `fa` (fa, B = W set before each step: W moves)
 * on the same batches of BATCH and compare after every step (see
 * assert_same_parameters for `tolerance`); the first n_conv layers are
 * convolutions. */
static void train_side_by_side(bpl_net *bp, bpl_net *fa, size_t inputs, size_t outputs,
                               size_t n_conv, double tolerance)
{
    enum { B = BATCH, STEPS = 5 };
    float *x = malloc(B * inputs * sizeof *x), *y = malloc(B * outputs * sizeof *y);
    ck_assert(x && y);
    uint64_t seed = 71;
    assert_same_parameters(bp, fa, 0, 0.0);
    for (int step = 1; step <= STEPS; step++) {
        test_fill_uniform(x, B * inputs, -1.0f, 1.0f, &seed);
        test_fill_onehot(y, B, outputs, &seed);
        for (size_t l = 1; l < bpl_net_layer_count(fa); l++)
            set_feedback_to_weight(fa, l, l < n_conv);
        double loss_bp, loss_fa;
        BPL_OK_OR_FAIL(bpl_net_train_batch(bp, x, y, B, &loss_bp));
        BPL_OK_OR_FAIL(bpl_net_train_batch(fa, x, y, B, &loss_fa));
        if (tolerance == 0.0)
            ck_assert(memcmp(&loss_bp, &loss_fa, sizeof loss_bp) == 0);
        else
            ck_assert_double_le(fabs(loss_bp - loss_fa), tolerance * fmax(1.0, loss_bp));
        assert_same_parameters(bp, fa, step, tolerance);
    }
    free(x);
    free(y);
}

/* A dense net 13-h1(tanh)-h2(relu)-4(softmax). */
static bpl_net *dense_net(size_t h1, size_t h2)
{
    const size_t units[] = {h1, h2, 4};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_RELU, BPL_ACT_SOFTMAX};
    return test_make_net(13, units, acts, 3, 61);
}

/* Whether the library's products compute err W (W [units][inputs], how
 * backprop sends an error down) and err (W^T)^T (how fa sends it through
 * a B of W^T's layout) bit for bit alike, for a batch of BATCH. */
static int products_agree(size_t units, size_t inputs)
{
    float *err = malloc(BATCH * units * sizeof *err), *w = malloc(units * inputs * sizeof *w);
    float *wt = malloc(units * inputs * sizeof *wt);
    float *plain = malloc(BATCH * inputs * sizeof *plain);
    float *transposed = malloc(BATCH * inputs * sizeof *transposed);
    ck_assert(err && w && wt && plain && transposed);
    uint64_t seed = 5;
    test_fill_uniform(err, BATCH * units, -1.0f, 1.0f, &seed);
    test_fill_uniform(w, units * inputs, -1.0f, 1.0f, &seed);
    for (size_t i = 0; i < units; i++)
        for (size_t j = 0; j < inputs; j++)
            wt[j * units + i] = w[i * inputs + j];
    BPL_OK_OR_FAIL(
        bpl_gemm(NULL, 0, 0, BATCH, inputs, units, 1.0f, err, units, w, inputs, 0.0f, plain,
                 inputs));
    BPL_OK_OR_FAIL(bpl_gemm(NULL, 0, 1, BATCH, inputs, units, 1.0f, err, units, wt, units,
                            0.0f, transposed, inputs));
    int agree = memcmp(plain, transposed, BATCH * inputs * sizeof *plain) == 0;
    free(err);
    free(w);
    free(wt);
    free(plain);
    free(transposed);
    return agree;
}

/* On dense layers fa's B has W^T's layout (the reference runs pin it), and
 * the error goes down through err B^T where backprop computes err W: the
 * same sums, in an order the kernels choose.  Where the two products agree
 * bit for bit (OpenBLAS's AVX2 kernels, say), so must the nets.  Where
 * they do not (the portable kernels, which add a transposed product's terms
 * in eight interleaved partial sums, from 16 units up; OpenBLAS's AVX-512
 * kernels for small matrices; BLIS's zen3 kernels for some shapes), the
 * nets must agree to 1e-6 (relative, above 1) over the five steps: a B
 * read in the wrong order would differ in the first digit. */
START_TEST(test_dense_fa_with_b_equal_w_is_backprop)
{
    const size_t widths[][2] = {{11, 9}, {15, 15}, {20, 17}, {64, 32}};
    for (size_t n = 0; n < sizeof widths / sizeof widths[0]; n++) {
        size_t h1 = widths[n][0], h2 = widths[n][1];
        int exact = products_agree(h2, h1) && products_agree(4, h2);
        bpl_net *bp = dense_net(h1, h2);
        bpl_net *fa = dense_net(h1, h2);
        test_attach(bp, "backprop");
        test_attach(fa, "fa");
        train_side_by_side(bp, fa, 13, 4, 0, exact ? 0.0 : 1e-6);
        bpl_net_destroy(bp);
        bpl_net_destroy(fa);
    }
}
END_TEST

/* 2x7x7 -> conv 4@3x3 stride 2 pad 1 (relu) -> conv 5@2x2 pad 1 (tanh,
 * 5x5x5) -> dense 3 (softmax): the conv layers' B has W's layout, and goes
 * down as W does, through the same products, in every build.  The dense
 * output layer's B has W^T's layout, as in the dense test: exact where its
 * two products agree. */
static bpl_net *conv_net(void)
{
    bpl_net *net;
    const size_t chw[] = {2, 7, 7};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 98, 67));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 4, 3, 3, 2, 1, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 5, 2, 2, 1, 1, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    return net;
}

START_TEST(test_conv_fa_with_b_equal_w_is_backprop)
{
    bpl_net *bp = conv_net(), *fa = conv_net();
    test_attach(bp, "backprop");
    test_attach(fa, "fa");
    ck_assert_uint_eq(bpl_layer_units(bpl_net_layer(fa, 1)), 125);
    train_side_by_side(bp, fa, 98, 3, 2, products_agree(3, 125) ? 0.0 : 1e-6);
    bpl_net_destroy(bp);
    bpl_net_destroy(fa);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fa_exact");
    TCase *tc = tcase_create("fa_exact");
    tcase_add_test(tc, test_dense_fa_with_b_equal_w_is_backprop);
    tcase_add_test(tc, test_conv_fa_with_b_equal_w_is_backprop);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
