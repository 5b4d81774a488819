/*
 * testutil.h - helpers shared by the Check suites.
 */
#ifndef BPL_TESTUTIL_H
#define BPL_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* The suites test the extension API (bioplaus_rule.h) as well as the user
 * API it includes. */
#include "bioplaus_rule.h"

/* Fail the test with the library's message unless `expr` returns BPL_OK. */
#define BPL_OK_OR_FAIL(expr)                                                         \
    do {                                                                             \
        int rc_ = (expr);                                                            \
        ck_assert_msg(rc_ == BPL_OK, "%s -> %d (%s): %s", #expr, rc_,                \
                      bpl_strerror(rc_), bpl_last_error_message());                  \
    } while (0)

/* Assert that `expr` returns `status` and that the message mentions `needle`
 * (NULL: only that it is not empty). */
#define BPL_EXPECT_ERROR(expr, status, needle)                                       \
    test_expect_error((expr), (status), (needle), #expr, __FILE__, __LINE__)

void test_expect_error(int rc, int status, const char *needle, const char *expr,
                       const char *file, int line);

/* Assert that `expr` fails (any negative status) with a message naming
 * `needle`, for inputs whose exact status the header leaves open. */
#define BPL_EXPECT_FAILURE(expr, needle)                                             \
    test_expect_failure((expr), (needle), #expr, __FILE__, __LINE__)

void test_expect_failure(int rc, const char *needle, const char *expr, const char *file,
                         int line);

/* Run one suite; returns the process exit code (0 when everything passed). */
int test_run_suite(Suite *suite);

/* The directory holding the MNIST IDX files: $BIOPLAUS_MNIST_DIR, else
 * <source>/data/mnist, else <source>/../shared/data/mnist.  Returns NULL
 * when none has the files. */
const char *test_mnist_dir(void);

/* For tests that need MNIST: the directory, or exit 77 (a visible SKIP in
 * meson) with a note; with CI=true a missing dataset fails instead. */
const char *test_require_mnist(void);

/* A net [inputs]-[hidden...]-[outputs] with the given activations. */
bpl_net *test_make_net(size_t inputs, const size_t *units, const int *activations,
                       size_t n_layers, uint64_t seed);

/* Attach the built-in rule `name` (fails the test on error). */
void test_attach(bpl_net *net, const char *name);

/* A 4-5(tanh)-3(softmax) classifier: the default loss (cross-entropy) fits. */
bpl_net *test_small_classifier(uint64_t seed);

/* A 5-6(tanh)-4(tanh)-3(softmax) net, and a batch of `batch` rows for it in
 * x (batch x 5) and y (batch x 3, one-hot). */
bpl_net *test_deep_net(uint64_t seed, float *x, float *y, size_t batch);

/* Every tensor of every layer, concatenated in layer and tensor order
 * (malloc'd; the count in *n_out). */
float *test_snapshot(bpl_net *net, size_t *n_out);

/* 1 if the net's tensors equal `before` (from test_snapshot) bit for bit:
 * "unchanged" in the header means exactly unchanged. */
int test_same_params(bpl_net *net, const float *before, size_t n);

/* The largest ||a - b|| / ||b|| over the tensors of two nets of the same
 * shape; `where` (if not NULL) gets the layer and tensor it is found in. */
double test_worst_relative_distance(bpl_net *a, bpl_net *b, char *where, size_t where_size);

/* The weight tensor of layer `layer` into dst (fails the test on error). */
void test_get_weight(bpl_net *net, size_t layer, float *dst, size_t len);

/* Mean over rows of the documented loss of outputs h against targets y:
 * BPL_LOSS_MSE, or cross-entropy after a sigmoid or softmax output. */
double test_expected_loss(int loss, int out_act, const float *h, const float *y, size_t rows,
                          size_t cols);

/* A linear regression with plain SGD at the largest learning rate: it
 * explodes within a few steps. */
bpl_net *test_diverging_regression(void);

/* The mean, standard deviation and largest magnitude of n values. */
struct test_moments {
    double mean, sd, max_abs;
};
struct test_moments test_moments(const float *w, size_t n);

/* Fill with uniform values in [lo, hi) from a small local generator. */
void test_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t *state);

/* One-hot rows for random classes. */
void test_fill_onehot(float *y, size_t rows, size_t classes, uint64_t *state);

/* A fresh path in a per-test temporary directory (removed at exit). */
const char *test_temp_path(const char *name);

#endif
