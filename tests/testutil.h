/*
 * testutil.h - helpers shared by the Check suites.
 */
#ifndef BPL_TESTUTIL_H
#define BPL_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "bioplaus.h"

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

/* Fill with uniform values in [lo, hi) from a small local generator. */
void test_fill_uniform(float *v, size_t n, float lo, float hi, uint64_t *state);

/* One-hot rows for random classes. */
void test_fill_onehot(float *y, size_t rows, size_t classes, uint64_t *state);

/* A fresh path in a per-test temporary directory (removed at exit). */
const char *test_temp_path(const char *name);

#endif
