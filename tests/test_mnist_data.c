/*
 * test_mnist_data.c - the real MNIST files load exactly.
 *
 * Sizes, label histograms, first labels and the training set's pixel sum
 * are known properties of the published files: any error in decompression,
 * header parsing or byte order would change at least one of them.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

enum { FEATURES = 784, CLASSES = 10, CHUNK = 1000 };

static const char *mnist_dir;

static const size_t train_histogram[CLASSES] = {5923, 6742, 5958, 6131, 5842,
                                                5421, 5918, 6265, 5851, 5949};
static const size_t test_histogram[CLASSES] = {980, 1135, 1032, 1010, 982,
                                               892, 958,  1028, 974,  1009};
static const int train_first[10] = {5, 0, 4, 1, 9, 2, 1, 3, 1, 4};
static const int test_first[10] = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};

static bpl_dataset *load_split(int split)
{
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&ds, mnist_dir, split));
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* Shape, label histogram, first labels, and one-hot rows that agree with
 * the labels. */
static void check_split(const bpl_dataset *ds, size_t n, const size_t *histogram,
                        const int *first)
{
    ck_assert_uint_eq(bpl_dataset_example_count(ds), n);
    ck_assert_uint_eq(bpl_dataset_features(ds), FEATURES);
    ck_assert_uint_eq(bpl_dataset_targets(ds), CLASSES);
    size_t counts[CLASSES] = {0};
    for (size_t i = 0; i < n; i++) {
        int label = -1;
        BPL_OK_OR_FAIL(bpl_dataset_label(ds, i, &label));
        ck_assert_msg(label >= 0 && label < CLASSES, "example %zu: label %d", i, label);
        counts[label]++;
        if (i < 10)
            ck_assert_msg(label == first[i], "example %zu: label %d, expected %d", i, label,
                          first[i]);
    }
    for (int c = 0; c < CLASSES; c++)
        ck_assert_msg(counts[c] == histogram[c], "class %d: %zu examples, expected %zu", c,
                      counts[c], histogram[c]);

    float *y = malloc(CHUNK * CLASSES * sizeof *y);
    ck_assert_ptr_nonnull(y);
    size_t mismatches = 0;
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t rows = n - start < CHUNK ? n - start : CHUNK;
        BPL_OK_OR_FAIL(bpl_dataset_get(ds, start, rows, NULL, 0, y, rows * CLASSES));
        for (size_t r = 0; r < rows; r++) {
            int label;
            BPL_OK_OR_FAIL(bpl_dataset_label(ds, start + r, &label));
            for (int c = 0; c < CLASSES; c++)
                mismatches += y[r * CLASSES + c] != (c == label ? 1.0f : 0.0f);
        }
    }
    free(y);
    ck_assert_uint_eq(mismatches, 0);
}

START_TEST(train_split)
{
    bpl_dataset *ds = load_split(BPL_MNIST_TRAIN);
    check_split(ds, 60000, train_histogram, train_first);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_split)
{
    bpl_dataset *ds = load_split(BPL_MNIST_TEST);
    check_split(ds, 10000, test_histogram, test_first);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(train_pixel_sum)
{
    bpl_dataset *ds = load_split(BPL_MNIST_TRAIN);
    size_t n = bpl_dataset_example_count(ds);
    float *x = malloc((size_t)CHUNK * FEATURES * sizeof *x);
    ck_assert_ptr_nonnull(x);

    /* Default scaling: pixels arrive in [0, 1] as pixel/255.  The float scale
     * 1/255 is not exact, so each value is rounded back to its byte before
     * summing: 47 million small errors of one sign would add up to ~90. */
    double sum = 0.0, worst = 0.0;
    float lo = INFINITY, hi = -INFINITY;
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t rows = n - start < CHUNK ? n - start : CHUNK;
        BPL_OK_OR_FAIL(bpl_dataset_get(ds, start, rows, x, rows * FEATURES, NULL, 0));
        for (size_t i = 0; i < rows * FEATURES; i++) {
            double v = (double)x[i] * 255.0;
            sum += round(v);
            worst = fmax(worst, fabs(v - round(v)));
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
        }
    }
    ck_assert_msg(worst < 1e-3, "a scaled pixel is %g away from an integer/255", worst);
    ck_assert_float_eq(lo, 0.0f);
    ck_assert_float_eq_tol(hi, 1.0f, 1e-6f);
    ck_assert_msg(llround(sum) == 1567298545LL, "pixel sum %.1f, expected 1567298545", sum);

    /* scale 1: the raw bytes, summed exactly */
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 1.0, 0.0));
    long long exact = 0;
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t rows = n - start < CHUNK ? n - start : CHUNK;
        BPL_OK_OR_FAIL(bpl_dataset_get(ds, start, rows, x, rows * FEATURES, NULL, 0));
        for (size_t i = 0; i < rows * FEATURES; i++)
            exact += (long long)x[i];
    }
    free(x);
    bpl_dataset_destroy(ds);
    ck_assert_msg(exact == 1567298545LL, "pixel sum %lld, expected 1567298545", exact);
}
END_TEST

/* Decompress `name` from the MNIST directory to `dst`. */
static void gunzip_to(const char *name, const char *dst)
{
    char src[4096];
    snprintf(src, sizeof src, "%s/%s.gz", mnist_dir, name);
    gzFile in = gzopen(src, "rb");
    ck_assert_msg(in != NULL, "cannot open %s", src);
    FILE *out = fopen(dst, "wb");
    ck_assert_msg(out != NULL, "cannot create %s: %s", dst, strerror(errno));
    static char buf[1 << 16];
    int got;
    while ((got = gzread(in, buf, sizeof buf)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, (size_t)got, out), (size_t)got);
    ck_assert_int_eq(got, 0);
    ck_assert_int_eq(gzclose(in), Z_OK);
    ck_assert_int_eq(fclose(out), 0);
}

static void assert_same_examples(const bpl_dataset *a, const bpl_dataset *b)
{
    size_t n = bpl_dataset_example_count(a);
    ck_assert_uint_eq(bpl_dataset_example_count(b), n);
    ck_assert_uint_eq(bpl_dataset_features(b), FEATURES);
    ck_assert_uint_eq(bpl_dataset_targets(b), CLASSES);
    float *xa = malloc(2 * (size_t)CHUNK * FEATURES * sizeof *xa);
    float *ya = malloc(2 * (size_t)CHUNK * CLASSES * sizeof *ya);
    ck_assert(xa && ya);
    float *xb = xa + (size_t)CHUNK * FEATURES, *yb = ya + (size_t)CHUNK * CLASSES;
    size_t differ = 0;
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t rows = n - start < CHUNK ? n - start : CHUNK;
        BPL_OK_OR_FAIL(bpl_dataset_get(a, start, rows, xa, rows * FEATURES, ya,
                                       rows * CLASSES));
        BPL_OK_OR_FAIL(bpl_dataset_get(b, start, rows, xb, rows * FEATURES, yb,
                                       rows * CLASSES));
        for (size_t r = 0; r < rows; r++)
            differ += memcmp(xa + r * FEATURES, xb + r * FEATURES, FEATURES * sizeof *xa) != 0 ||
                      memcmp(ya + r * CLASSES, yb + r * CLASSES, CLASSES * sizeof *ya) != 0;
    }
    free(xa);
    free(ya);
    ck_assert_msg(differ == 0, "%zu of %zu examples differ", differ, n);
}

START_TEST(raw_files_load_identically)
{
    /* The uncompressed files, under their usual names in a directory of
     * their own, give the same examples as the .gz files. */
    char dir[512], images[1024], labels[1024];
    snprintf(dir, sizeof dir, "%s", test_temp_path("mnist-raw"));
    ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", dir);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", dir);
    gunzip_to("t10k-images-idx3-ubyte", images);
    gunzip_to("t10k-labels-idx1-ubyte", labels);

    bpl_dataset *gz = load_split(BPL_MNIST_TEST), *raw = NULL, *raw_dir = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&raw, images, labels, CLASSES));
    BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&raw_dir, dir, BPL_MNIST_TEST));
    check_split(raw, 10000, test_histogram, test_first);
    assert_same_examples(gz, raw);
    assert_same_examples(gz, raw_dir);
    bpl_dataset_destroy(gz);
    bpl_dataset_destroy(raw);
    bpl_dataset_destroy(raw_dir);
}
END_TEST

int main(void)
{
    mnist_dir = test_require_mnist(); /* skips (77) when the files are absent */
    Suite *s = suite_create("mnist_data");

    TCase *tc = tcase_create("train");
    tcase_add_test(tc, train_split);
    tcase_add_test(tc, train_pixel_sum);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("test");
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, raw_files_load_identically);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    return test_run_suite(s);
}
