/*
 * test_dataset.c - IDX files and in-memory datasets.
 *
 * Every fixture is written by the test itself into a per-run temporary
 * directory: small IDX image and label files, raw and gzip, valid and broken
 * in every way the loader promises to notice.
 */
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC_LABELS 0x00000801u
#define MAGIC_VECTORS 0x00000802u
#define MAGIC_IMAGES 0x00000803u

enum { N = 5, ROWS = 3, COLS = 4, FEAT = ROWS * COLS, CLASSES = 4 };

/* ---- fixtures ------------------------------------------------------------ */

typedef struct blob {
    unsigned char *data;
    size_t size;
} blob;

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An IDX file: magic, one big-endian u32 per dimension, then `payload`. */
static blob idx_blob(uint32_t magic, const uint32_t *dims, int n_dims,
                     const unsigned char *payload, size_t payload_size)
{
    blob b;
    b.size = 4 + 4 * (size_t)n_dims + payload_size;
    b.data = malloc(b.size + 1);
    ck_assert_ptr_nonnull(b.data);
    put_be32(b.data, magic);
    for (int d = 0; d < n_dims; d++)
        put_be32(b.data + 4 + 4 * d, dims[d]);
    if (payload_size)
        memcpy(b.data + 4 + 4 * (size_t)n_dims, payload, payload_size);
    return b;
}

/* Pixels with both extremes and everything in between represented. */
static void make_pixels(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 37 + 11);
    p[0] = 0;
    p[1] = 255;
}

static void make_labels(unsigned char *l, size_t n, size_t classes)
{
    for (size_t i = 0; i < n; i++)
        l[i] = (unsigned char)((i * 3 + 1) % classes);
}

static blob images_blob(uint32_t n, uint32_t rows, uint32_t cols)
{
    size_t size = (size_t)n * rows * cols;
    unsigned char *p = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(p);
    make_pixels(p, size);
    const uint32_t dims[3] = {n, rows, cols};
    blob b = idx_blob(MAGIC_IMAGES, dims, 3, p, size);
    free(p);
    return b;
}

static blob labels_blob(uint32_t n, size_t classes)
{
    unsigned char l[256];
    ck_assert_uint_le(n, sizeof l);
    make_labels(l, n, classes);
    const uint32_t dims[1] = {n};
    return idx_blob(MAGIC_LABELS, dims, 1, l, n);
}

/* Write `n` bytes to `path`, gzip-compressed when `gz` is set. */
static void write_bytes(const char *path, const void *data, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_msg(f != NULL, "gzopen %s", path);
        if (n)
            ck_assert_int_eq(gzwrite(f, data, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
        if (n)
            ck_assert_uint_eq(fwrite(data, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static void write_blob(const char *path, blob b, int gz)
{
    write_bytes(path, b.data, b.size, gz);
    free(b.data);
}

static blob read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "fopen %s", path);
    blob b = {malloc(1 << 16), 0};
    ck_assert_ptr_nonnull(b.data);
    b.size = fread(b.data, 1, 1 << 16, f);
    ck_assert(feof(f));
    fclose(f);
    return b;
}

/* test_temp_path returns a static buffer: keep a copy. */
static void temp(char *dst, const char *name)
{
    snprintf(dst, 512, "%s", test_temp_path(name));
}

/* A valid pair of image and label files of N examples. */
static void write_valid_pair(const char *images, const char *labels, int gz)
{
    write_blob(images, images_blob(N, ROWS, COLS), gz);
    write_blob(labels, labels_blob(N, CLASSES), gz);
}

/* Load, expect BPL_ERR_FORMAT, and check the message names `path` and the
 * problem (`needle`, NULL when the wording depends on zlib). */
static void expect_format(const char *images, const char *labels, size_t classes,
                          const char *path, const char *needle)
{
    bpl_dataset *ds = (bpl_dataset *)1;
    int rc = bpl_dataset_load_idx(&ds, images, labels, classes);
    ck_assert_ptr_null(ds);
    BPL_EXPECT_ERROR(rc, BPL_ERR_FORMAT, path);
    if (needle)
        ck_assert_msg(strstr(bpl_last_error_message(), needle) != NULL,
                      "message '%s' does not mention '%s'", bpl_last_error_message(), needle);
}

/* ---- valid files ---------------------------------------------------------- */

static void check_contents(const bpl_dataset *ds, size_t n, size_t feat, size_t classes)
{
    ck_assert_uint_eq(bpl_dataset_example_count(ds), n);
    ck_assert_uint_eq(bpl_dataset_features(ds), feat);
    ck_assert_uint_eq(bpl_dataset_targets(ds), classes);
    unsigned char pixels[N * FEAT], labels[N];
    make_pixels(pixels, n * feat);
    make_labels(labels, n, classes);
    float x[N * FEAT], y[N * CLASSES];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, n, x, n * feat, y, n * classes));
    for (size_t i = 0; i < n * feat; i++)
        ck_assert_msg(fabsf(x[i] - pixels[i] / 255.0f) <= 1e-6f, "pixel %zu: %.9g vs %u/255",
                      i, x[i], pixels[i]);
    ck_assert_float_eq(x[0], 0.0f);
    ck_assert_float_eq_tol(x[1], 1.0f, 1e-6f);
    for (size_t i = 0; i < n; i++) {
        int label = -1;
        BPL_OK_OR_FAIL(bpl_dataset_label(ds, i, &label));
        ck_assert_int_eq(label, labels[i]);
        for (size_t j = 0; j < classes; j++)
            ck_assert_float_eq(y[i * classes + j], j == labels[i] ? 1.0f : 0.0f);
    }
}

START_TEST(idx_images_raw_and_gzip)
{
    char images[512], labels[512];
    for (int gz = 0; gz < 2; gz++) {
        temp(images, gz ? "valid-images.gz" : "valid-images");
        temp(labels, gz ? "valid-labels.gz" : "valid-labels");
        write_valid_pair(images, labels, gz);
        bpl_dataset *ds = NULL;
        BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
        check_contents(ds, N, FEAT, CLASSES);
        bpl_dataset_destroy(ds);
    }
}
END_TEST

START_TEST(idx_mixed_compression)
{
    /* Each file is sniffed on its own: a gzip image file with raw labels. */
    char images[512], labels[512];
    temp(images, "mixed-images.gz");
    temp(labels, "mixed-labels");
    write_blob(images, images_blob(N, ROWS, COLS), 1);
    write_blob(labels, labels_blob(N, CLASSES), 0);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
    check_contents(ds, N, FEAT, CLASSES);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(idx_vectors_2d)
{
    char images[512], labels[512];
    unsigned char pixels[N * FEAT];
    make_pixels(pixels, sizeof pixels);
    const uint32_t dims[2] = {N, FEAT};
    for (int gz = 0; gz < 2; gz++) {
        temp(images, gz ? "vectors.gz" : "vectors");
        temp(labels, gz ? "vectors-labels.gz" : "vectors-labels");
        write_blob(images, idx_blob(MAGIC_VECTORS, dims, 2, pixels, sizeof pixels), gz);
        write_blob(labels, labels_blob(N, CLASSES), gz);
        bpl_dataset *ds = NULL;
        BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
        check_contents(ds, N, FEAT, CLASSES);
        bpl_dataset_destroy(ds);
    }
}
END_TEST

START_TEST(idx_class_bounds)
{
    /* 256 classes is the most a byte label can address; label 255 fits. */
    char images[512], labels[512];
    temp(images, "bounds-images");
    temp(labels, "bounds-labels");
    write_blob(images, images_blob(2, 1, 3), 0);
    const unsigned char l[2] = {255, 0};
    const uint32_t dims[1] = {2};
    write_blob(labels, idx_blob(MAGIC_LABELS, dims, 1, l, 2), 0);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, 256));
    ck_assert_uint_eq(bpl_dataset_targets(ds), 256);
    int label = -1;
    BPL_OK_OR_FAIL(bpl_dataset_label(ds, 0, &label));
    ck_assert_int_eq(label, 255);
    float y[2 * 256];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, 2, NULL, 0, y, 2 * 256));
    ck_assert_float_eq(y[255], 1.0f);
    ck_assert_float_eq(y[256], 1.0f);
    bpl_dataset_destroy(ds);
    /* the same labels with 255 classes: label 255 is one too many */
    expect_format(images, labels, 255, labels, "label");
}
END_TEST

/* ---- rejected files ------------------------------------------------------- */

START_TEST(idx_truncated_payload)
{
    char images[512], labels[512];
    for (int gz = 0; gz < 2; gz++) {
        temp(images, gz ? "short-images.gz" : "short-images");
        temp(labels, gz ? "short-labels.gz" : "short-labels");
        blob b = images_blob(N, ROWS, COLS);
        b.size -= 1; /* one pixel missing */
        write_blob(images, b, gz);
        write_blob(labels, labels_blob(N, CLASSES), gz);
        expect_format(images, labels, CLASSES, images, "truncated");

        /* now the images are fine and the labels are short */
        write_blob(images, images_blob(N, ROWS, COLS), gz);
        b = labels_blob(N, CLASSES);
        b.size -= 2;
        write_blob(labels, b, gz);
        expect_format(images, labels, CLASSES, labels, "truncated");
    }
}
END_TEST

START_TEST(idx_truncated_header)
{
    char images[512], labels[512];
    temp(images, "header-images");
    temp(labels, "header-labels");
    write_blob(labels, labels_blob(N, CLASSES), 0);
    /* every cut inside the 16-byte header of a 3-D file */
    for (size_t cut = 1; cut < 16; cut++) {
        blob b = images_blob(N, ROWS, COLS);
        b.size = cut;
        write_blob(images, b, 0);
        expect_format(images, labels, CLASSES, images, "truncated");
    }
    /* a label file cut inside its dimension */
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    blob b = labels_blob(N, CLASSES);
    b.size = 6;
    write_blob(labels, b, 0);
    expect_format(images, labels, CLASSES, labels, "truncated");
}
END_TEST

START_TEST(idx_bad_magic)
{
    char images[512], labels[512];
    temp(images, "magic-images");
    temp(labels, "magic-labels");
    unsigned char pixels[N * FEAT];
    make_pixels(pixels, sizeof pixels);
    const uint32_t dims[4] = {N, ROWS, COLS, 1};
    write_blob(labels, labels_blob(N, CLASSES), 0);

    /* wrong type byte: signed bytes (0x09) and floats (0x0D) are not read */
    write_blob(images, idx_blob(0x00000903u, dims, 3, pixels, sizeof pixels), 0);
    expect_format(images, labels, CLASSES, images, "magic");
    write_blob(images, idx_blob(0x00000D03u, dims, 3, pixels, sizeof pixels), 0);
    expect_format(images, labels, CLASSES, images, "magic");
    /* nonzero leading bytes */
    write_blob(images, idx_blob(0x01000803u, dims, 3, pixels, sizeof pixels), 0);
    expect_format(images, labels, CLASSES, images, "magic");
    /* images need 2 or 3 dimensions */
    write_blob(images, idx_blob(0x00000801u, dims, 1, pixels, N), 0);
    expect_format(images, labels, CLASSES, images, "magic");
    write_blob(images, idx_blob(0x00000804u, dims, 4, pixels, sizeof pixels), 0);
    expect_format(images, labels, CLASSES, images, "magic");
    /* a text file */
    static const char text[] = "this is not an IDX file, just some text\n";
    write_bytes(images, text, sizeof text - 1, 0);
    expect_format(images, labels, CLASSES, images, "magic");

    /* labels need exactly 1 dimension: an image file given as labels */
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    write_blob(labels, images_blob(N, 1, 1), 0);
    expect_format(images, labels, CLASSES, labels, "magic");
    write_bytes(labels, text, sizeof text - 1, 1);
    expect_format(images, labels, CLASSES, labels, "magic");
}
END_TEST

START_TEST(idx_count_mismatch)
{
    char images[512], labels[512];
    temp(images, "count-images");
    temp(labels, "count-labels");
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    write_blob(labels, labels_blob(N - 1, CLASSES), 0);
    expect_format(images, labels, CLASSES, images, NULL);
    ck_assert_msg(strstr(bpl_last_error_message(), labels) != NULL,
                  "the message should name both files: %s", bpl_last_error_message());
}
END_TEST

START_TEST(idx_label_out_of_range)
{
    char images[512], labels[512];
    temp(images, "range-images");
    temp(labels, "range-labels");
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    unsigned char l[N] = {0, 1, 2, 3, 3};
    l[3] = CLASSES; /* one past the last class */
    const uint32_t dims[1] = {N};
    write_blob(labels, idx_blob(MAGIC_LABELS, dims, 1, l, N), 0);
    expect_format(images, labels, CLASSES, labels, "label");
    /* the same file is fine with one more class */
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES + 1));
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(idx_empty_file)
{
    char images[512], labels[512];
    temp(images, "empty-images");
    temp(labels, "empty-labels");
    write_bytes(images, "", 0, 0);
    write_blob(labels, labels_blob(N, CLASSES), 0);
    expect_format(images, labels, CLASSES, images, "empty");
    /* an empty gzip stream is an empty file too */
    write_bytes(images, "", 0, 1);
    expect_format(images, labels, CLASSES, images, "empty");
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    write_bytes(labels, "", 0, 0);
    expect_format(images, labels, CLASSES, labels, "empty");
}
END_TEST

START_TEST(idx_zero_dimension)
{
    char images[512], labels[512];
    temp(images, "zero-images");
    temp(labels, "zero-labels");
    write_blob(labels, labels_blob(N, CLASSES), 0);
    const uint32_t shapes[3][3] = {{0, ROWS, COLS}, {N, 0, COLS}, {N, ROWS, 0}};
    for (int s = 0; s < 3; s++) {
        write_blob(images, idx_blob(MAGIC_IMAGES, shapes[s], 3, NULL, 0), s == 2);
        expect_format(images, labels, CLASSES, images, "zero");
    }
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    const uint32_t none[1] = {0};
    write_blob(labels, idx_blob(MAGIC_LABELS, none, 1, NULL, 0), 0);
    expect_format(images, labels, CLASSES, labels, "zero");
}
END_TEST

START_TEST(idx_trailing_bytes)
{
    char images[512], labels[512];
    static unsigned char junk[5000];
    for (int gz = 0; gz < 2; gz++) {
        temp(images, gz ? "tail-images.gz" : "tail-images");
        temp(labels, gz ? "tail-labels.gz" : "tail-labels");
        const size_t extra[] = {1, sizeof junk};
        for (int e = 0; e < 2; e++) {
            blob b = images_blob(N, ROWS, COLS);
            unsigned char *grown = realloc(b.data, b.size + extra[e]);
            ck_assert_ptr_nonnull(grown);
            memcpy(grown + b.size, junk, extra[e]);
            b.data = grown;
            b.size += extra[e];
            write_blob(images, b, gz);
            write_blob(labels, labels_blob(N, CLASSES), gz);
            expect_format(images, labels, CLASSES, images, "unexpected");
        }
        /* a label file with one label too many */
        write_blob(images, images_blob(N, ROWS, COLS), gz);
        blob l = labels_blob(N, CLASSES);
        l.data[l.size++] = 0;
        write_blob(labels, l, gz);
        expect_format(images, labels, CLASSES, labels, "unexpected");
    }
}
END_TEST

/* Write a gzip image file of enough pixels that the deflate stream has a
 * middle to damage; returns its compressed bytes. */
static blob gzip_images(const char *path)
{
    write_blob(path, images_blob(40, 16, 16), 1);
    return read_all(path);
}

START_TEST(idx_gzip_corrupt)
{
    char images[512], labels[512], damaged[512];
    temp(images, "gz-good.gz");
    temp(labels, "gz-labels");
    temp(damaged, "gz-damaged.gz");
    write_blob(labels, labels_blob(40, CLASSES), 0);
    blob gz = gzip_images(images);
    ck_assert_uint_gt(gz.size, 64);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
    bpl_dataset_destroy(ds);

    /* flipped bytes in the middle of the compressed data */
    unsigned char *copy = malloc(gz.size);
    ck_assert_ptr_nonnull(copy);
    for (size_t pos = 12; pos + 12 < gz.size; pos += 5) {
        memcpy(copy, gz.data, gz.size);
        copy[pos] ^= 0x5a;
        copy[pos + 1] ^= 0xa5;
        write_bytes(damaged, copy, gz.size, 0);
        expect_format(damaged, labels, CLASSES, damaged, NULL);
    }
    /* a wrong CRC-32 in the trailer (the 8 last bytes: CRC, then length) */
    memcpy(copy, gz.data, gz.size);
    copy[gz.size - 8] ^= 0x01;
    write_bytes(damaged, copy, gz.size, 0);
    expect_format(damaged, labels, CLASSES, damaged, NULL);
    /* a wrong length in the trailer */
    memcpy(copy, gz.data, gz.size);
    copy[gz.size - 4] ^= 0x01;
    write_bytes(damaged, copy, gz.size, 0);
    expect_format(damaged, labels, CLASSES, damaged, NULL);
    free(copy);
    free(gz.data);
}
END_TEST

START_TEST(idx_gzip_truncated)
{
    /* Every prefix of a .gz file is a truncated file, including those that
     * lose only part of the trailer that carries the CRC-32 and length. */
    char images[512], labels[512], cut[512];
    temp(images, "trunc-good.gz");
    temp(labels, "trunc-labels");
    temp(cut, "trunc-cut.gz");
    write_blob(labels, labels_blob(40, CLASSES), 0);
    blob gz = gzip_images(images);
    char accepted[2048] = "";
    size_t n_accepted = 0;
    for (size_t len = 0; len < gz.size; len++) {
        write_bytes(cut, gz.data, len, 0);
        bpl_dataset *ds = NULL;
        int rc = bpl_dataset_load_idx(&ds, cut, labels, CLASSES);
        if (rc == BPL_ERR_FORMAT) {
            ck_assert_ptr_null(ds);
            ck_assert_msg(strstr(bpl_last_error_message(), cut) != NULL,
                          "length %zu: message '%s' does not name the file", len,
                          bpl_last_error_message());
            continue;
        }
        bpl_dataset_destroy(ds);
        n_accepted++;
        size_t used = strlen(accepted);
        snprintf(accepted + used, sizeof accepted - used, " %zu(rc %d)", len, rc);
    }
    size_t size = gz.size;
    free(gz.data);
    ck_assert_msg(n_accepted == 0,
                  "%zu of %zu truncations of a %zu-byte .gz were not rejected with "
                  "BPL_ERR_FORMAT; lengths:%s",
                  n_accepted, size, size, accepted);
}
END_TEST

/* Load `images` in a child process whose address space may grow by at most
 * `headroom` bytes: a loader that believed the header and allocated what it
 * announces would fail there with NOMEM (or die) instead of FORMAT.
 * Returns the load status, or 1000 + signal if the child was killed. */
static int load_with_capped_memory(const char *images, const char *labels, size_t headroom)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsigned long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (!statm || fscanf(statm, "%lu", &pages) != 1)
            _exit(200);
        fclose(statm);
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
        if (lim.rlim_max == RLIM_INFINITY || cap < lim.rlim_max)
            lim.rlim_cur = cap;
        if (setrlimit(RLIMIT_AS, &lim) != 0)
            _exit(201);
        bpl_dataset *ds = NULL;
        int rc = bpl_dataset_load_idx(&ds, images, labels, CLASSES);
        bpl_dataset_destroy(ds);
        _exit(-rc); /* statuses are small negative numbers */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        return 1000 + WTERMSIG(status);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) < 200, "child set-up failed (%d)", WEXITSTATUS(status));
    return -WEXITSTATUS(status);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

START_TEST(idx_huge_header_tiny_file)
{
    char images[512], labels[512];
    temp(images, "huge-images");
    temp(labels, "huge-labels");
    write_blob(labels, labels_blob(N, CLASSES), 0);
    unsigned char pixels[100];
    make_pixels(pixels, sizeof pixels);
    /* 2^31-1 images of 28x28 (beyond any sane size), and 5 million (3.9 GB,
     * plausible enough to be read) - each followed by 100 bytes */
    const uint32_t counts[] = {0x7fffffffu, 5000000u};
    for (int c = 0; c < 2; c++) {
        const uint32_t dims[3] = {counts[c], 28, 28};
        for (int gz = 0; gz < 2; gz++) {
            write_blob(images, idx_blob(MAGIC_IMAGES, dims, 3, pixels, sizeof pixels), gz);
            double start = seconds_now();
            expect_format(images, labels, CLASSES, images, NULL);
            double elapsed = seconds_now() - start;
            ck_assert_msg(elapsed < 5.0, "rejecting a tiny file took %.2f s", elapsed);
            int rc = load_with_capped_memory(images, labels, (size_t)512 << 20);
            ck_assert_msg(rc == BPL_ERR_FORMAT,
                          "%u x 28 x 28 header, 100-byte payload, address space capped "
                          "at +512 MiB: status %d (expected BPL_ERR_FORMAT)",
                          counts[c], rc);
        }
    }
    /* a label file announcing 2^32-1 labels */
    write_blob(images, images_blob(N, ROWS, COLS), 0);
    const uint32_t many[1] = {0xffffffffu};
    write_blob(labels, idx_blob(MAGIC_LABELS, many, 1, pixels, sizeof pixels), 0);
    expect_format(images, labels, CLASSES, labels, NULL);
    ck_assert_int_eq(load_with_capped_memory(images, labels, (size_t)512 << 20),
                     BPL_ERR_FORMAT);
}
END_TEST

/* ---- what follows the data ----------------------------------------------------- */

static void append_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "ab");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Bytes appended to a file after its last gzip member are refused as they
 * are after the data of a raw file: FORMAT, naming the file and the extra
 * bytes, whichever of the two files carries them. */
START_TEST(idx_trailing_garbage_raw_and_gzip)
{
    static const unsigned char text[] = "appended by mistake\n";
    static const unsigned char zeros[8] = {0};
    static const unsigned char half_magic[1] = {0x1f};
    static unsigned char long_tail[5000];
    memset(long_tail, 'x', sizeof long_tail);
    const struct {
        const unsigned char *data;
        size_t size;
    } tails[] = {{text, sizeof text - 1}, {zeros, sizeof zeros},
                 {half_magic, sizeof half_magic}, {long_tail, sizeof long_tail}};
    char images[512], labels[512];
    for (int gz = 1; gz >= 0; gz--) {
        temp(images, gz ? "garbage-images.gz" : "garbage-images");
        temp(labels, gz ? "garbage-labels.gz" : "garbage-labels");
        for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
            for (int which = 0; which < 2; which++) {
                write_valid_pair(images, labels, gz);
                const char *damaged = which ? labels : images;
                append_bytes(damaged, tails[t].data, tails[t].size);
                expect_format(images, labels, CLASSES, damaged, "unexpected bytes");
                char count[32];
                snprintf(count, sizeof count, "%zu", tails[t].size);
                ck_assert_msg(strstr(bpl_last_error_message(), count) != NULL,
                              "%s, %zu bytes appended: the message does not say how many: "
                              "%s",
                              gz ? "gzip" : "raw", tails[t].size, bpl_last_error_message());
            }
        }
    }
}
END_TEST

/* A gzip file may hold several members (what `cat a.gz b.gz` and parallel
 * compressors make); the data is their concatenation, as gzip -d gives,
 * wherever the boundary falls. */
START_TEST(idx_gzip_members_concatenated)
{
    char images[512], labels[512], part[512];
    temp(images, "members-images.gz");
    temp(labels, "members-labels.gz");
    temp(part, "members-part.gz");
    write_valid_pair(images, labels, 1);
    blob whole = images_blob(N, ROWS, COLS);
    const size_t splits[] = {2, 10, whole.size / 2};
    blob second = {NULL, 0};
    bpl_dataset *ds = NULL;
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        write_bytes(images, whole.data, splits[s], 1);
        write_bytes(part, whole.data + splits[s], whole.size - splits[s], 1);
        free(second.data);
        second = read_all(part);
        append_bytes(images, second.data, second.size);
        BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
        check_contents(ds, N, FEAT, CLASSES);
        bpl_dataset_destroy(ds);
    }
    free(whole.data);
    /* an empty member at the end is still a member */
    write_bytes(part, "", 0, 1);
    blob empty = read_all(part);
    append_bytes(images, empty.data, empty.size);
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
    check_contents(ds, N, FEAT, CLASSES);
    bpl_dataset_destroy(ds);
    /* garbage after the last member is not */
    append_bytes(images, "junk", 4);
    expect_format(images, labels, CLASSES, images, "unexpected bytes");
    /* nor is a second member that is damaged */
    write_valid_pair(images, labels, 1);
    second.data[second.size / 2] ^= 0x55;
    second.data[second.size / 2 + 1] ^= 0xaa;
    append_bytes(images, second.data, second.size);
    expect_format(images, labels, CLASSES, images, NULL);
    free(second.data);
    free(empty.data);
}
END_TEST

/* ---- decompression bombs -------------------------------------------------------- */

static size_t deflate_into(z_stream *z, unsigned char *in, size_t n, int flush,
                           unsigned char *out, size_t cap)
{
    z->next_in = in;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    int rc = deflate(z, flush);
    ck_assert_int_eq(rc, flush == Z_FINISH ? Z_STREAM_END : Z_OK);
    ck_assert(z->avail_in == 0 && z->avail_out > 0);
    return cap - z->avail_out;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A gzip file holding `head` then `zeros` zero bytes, made as bombs are
 * made: one MiB of zeros deflated after a full flush (so that it refers to
 * nothing before it), its 1 KB written over and over. */
static void write_gzip_bomb(const char *path, unsigned char *head, size_t head_size,
                            size_t zeros)
{
    enum { MIB = 1 << 20 };
    static unsigned char zero[MIB], block[1 << 16], out[1 << 16];
    static const unsigned char gzip_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(gzip_header, 1, sizeof gzip_header, f), sizeof gzip_header);
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_RLE), Z_OK);
    size_t n = deflate_into(&z, head, head_size, Z_FULL_FLUSH, out, sizeof out);
    ck_assert_uint_eq(fwrite(out, 1, n, f), n);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), head, (uInt)head_size);
    uLong crc_mib = crc32(crc32(0L, Z_NULL, 0), zero, MIB);
    size_t block_size = zeros >= MIB ? deflate_into(&z, zero, MIB, Z_FULL_FLUSH, block,
                                                    sizeof block)
                                     : 0;
    for (size_t i = 0; i < zeros / MIB; i++) {
        ck_assert_uint_eq(fwrite(block, 1, block_size, f), block_size);
        crc = crc32_combine(crc, crc_mib, MIB);
    }
    n = deflate_into(&z, zero, zeros % MIB, Z_FINISH, out, sizeof out);
    ck_assert_uint_eq(fwrite(out, 1, n, f), n);
    crc = crc32(crc, zero, (uInt)(zeros % MIB));
    deflateEnd(&z);
    unsigned char trailer[8];
    put_le32(trailer, (uint32_t)crc);
    put_le32(trailer + 4, (uint32_t)(head_size + zeros));
    ck_assert_uint_eq(fwrite(trailer, 1, sizeof trailer, f), sizeof trailer);
    ck_assert_int_eq(fclose(f), 0);
}

static size_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* Require FORMAT naming `named`, fast, and (when `capped`) also from a
 * child whose address space may grow by 24 MiB only.  The child goes
 * first: memory that a load in this process freed would stay mapped in its
 * heap and let the child inflate into it without growing. */
static void expect_cheap_refusal(const char *images, const char *labels, const char *named,
                                 int capped, const char *what)
{
    if (capped) {
        int rc = load_with_capped_memory(images, labels, (size_t)24 << 20);
        ck_assert_msg(rc == BPL_ERR_FORMAT,
                      "%s, address space capped at +24 MiB: status %d (expected "
                      "BPL_ERR_FORMAT)",
                      what, rc);
    }
    double start = seconds_now();
    expect_format(images, labels, CLASSES, named, NULL);
    double elapsed = seconds_now() - start;
    ck_assert_msg(elapsed < 2.0, "%s: refusing took %.2f s", what, elapsed);
}

/* 31 MB of images in a 31 KB file.  The headers say what the payloads
 * hold, so a file whose header disagrees with the other file, or whose
 * labels are wrong, is refused before a byte of the bomb is inflated; and
 * no file is ever inflated past what its header announces. */
START_TEST(idx_gzip_bomb)
{
    enum { BOMB_N = 40000, SIDE = 28 };
    char images[512], labels[512];
    temp(images, "bomb-images.gz");
    temp(labels, "bomb-labels");
    const uint32_t dims[3] = {BOMB_N, SIDE, SIDE};
    blob head = idx_blob(MAGIC_IMAGES, dims, 3, NULL, 0);
    write_gzip_bomb(images, head.data, head.size, (size_t)BOMB_N * SIDE * SIDE);
    free(head.data);
    ck_assert_uint_lt(file_size(images), 100000);

    /* a label out of range: the labels are read first */
    unsigned char *l = calloc(BOMB_N, 1);
    ck_assert_ptr_nonnull(l);
    const uint32_t n_labels[1] = {BOMB_N};
    l[BOMB_N - 1] = CLASSES;
    write_blob(labels, idx_blob(MAGIC_LABELS, n_labels, 1, l, BOMB_N), 0);
    expect_cheap_refusal(images, labels, labels, 1, "bomb with a label out of range");

    /* the label file holds another count */
    write_blob(labels, labels_blob(N, CLASSES), 0);
    expect_cheap_refusal(images, labels, images, 1, "bomb with 5 labels");
    ck_assert_msg(strstr(bpl_last_error_message(), labels) != NULL,
                  "the message should name both files: %s", bpl_last_error_message());

    /* a label file that is a bomb, claiming 2^32 - 16 labels for 5 images */
    temp(labels, "bomb-labels.gz");
    write_blob(images, images_blob(N, ROWS, COLS), 1);
    const uint32_t many[1] = {0xfffffff0u};
    head = idx_blob(MAGIC_LABELS, many, 1, NULL, 0);
    write_gzip_bomb(labels, head.data, head.size, (size_t)32 << 20);
    free(head.data);
    expect_cheap_refusal(images, labels, labels, 1, "label bomb");

    /* a small header followed by a bomb: inflated only as far as the header
     * says, plus a little to see that more follows */
    head = images_blob(N, ROWS, COLS);
    write_gzip_bomb(images, head.data, head.size, (size_t)32 << 20);
    free(head.data);
    write_blob(labels, labels_blob(N, CLASSES), 1);
    expect_cheap_refusal(images, labels, images, 0, "small header, large stream");
    ck_assert_msg(strstr(bpl_last_error_message(), "unexpected bytes") != NULL,
                  "message: %s", bpl_last_error_message());

    /* the bomb is a valid file: with as many valid labels, it loads (last,
     * as it leaves 31 MB in this process's heap) */
    temp(labels, "bomb-labels");
    l[BOMB_N - 1] = 0;
    write_blob(labels, idx_blob(MAGIC_LABELS, n_labels, 1, l, BOMB_N), 0);
    free(l);
    temp(images, "bomb-images.gz");
    head = idx_blob(MAGIC_IMAGES, dims, 3, NULL, 0);
    write_gzip_bomb(images, head.data, head.size, (size_t)BOMB_N * SIDE * SIDE);
    free(head.data);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, images, labels, CLASSES));
    ck_assert_uint_eq(bpl_dataset_example_count(ds), BOMB_N);
    float x[SIDE * SIDE];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, BOMB_N - 1, 1, x, SIDE * SIDE, NULL, 0));
    ck_assert_float_eq(x[SIDE * SIDE - 1], 0.0f);
    bpl_dataset_destroy(ds);
}
END_TEST

/* ---- paths that are not regular files ------------------------------------------ */

/* Load in a child that an alarm kills after 3 s, so that a load that
 * blocks fails the test instead of hanging it.  Returns the status; the
 * message is copied into `message`. */
static int load_in_child(const char *images, const char *labels, const char *mnist_dir,
                         char *message, size_t size)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGALRM, SIG_DFL); /* Check's handler would kill the whole test */
        alarm(3);
        bpl_dataset *ds = NULL;
        int rc = mnist_dir ? bpl_dataset_load_mnist(&ds, mnist_dir, BPL_MNIST_TRAIN)
                           : bpl_dataset_load_idx(&ds, images, labels, CLASSES);
        bpl_dataset_destroy(ds);
        const char *m = bpl_last_error_message();
        ssize_t w = write(fds[1], m, strlen(m));
        (void)w;
        _exit(-rc);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < size && (r = read(fds[0], message + got, size - 1 - got)) > 0)
        got += (size_t)r;
    message[got] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM,
                  "loading '%s' and '%s' blocked for 3 s", mnist_dir ? mnist_dir : images,
                  labels ? labels : "");
    ck_assert_msg(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
    return -WEXITSTATUS(status);
}

/* Expect IO naming `path` and saying it is not a regular file (loading in
 * a child when `path` is a FIFO). */
static void expect_not_regular(const char *images, const char *labels, const char *mnist_dir,
                               const char *path)
{
    char message[2048];
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
        rc = load_in_child(images, labels, mnist_dir, message, sizeof message);
    } else {
        bpl_dataset *ds = (bpl_dataset *)1;
        rc = mnist_dir ? bpl_dataset_load_mnist(&ds, mnist_dir, BPL_MNIST_TRAIN)
                       : bpl_dataset_load_idx(&ds, images, labels, CLASSES);
        ck_assert_ptr_null(ds);
        snprintf(message, sizeof message, "%s", bpl_last_error_message());
    }
    ck_assert_msg(rc == BPL_ERR_IO, "'%s': status %d (expected BPL_ERR_IO): %s", path, rc,
                  message);
    ck_assert_msg(strstr(message, path) != NULL && strstr(message, "not a regular file"),
                  "'%s': message: %s", path, message);
    ck_assert_msg(strstr(message, "bpl_dataset_load_idx") != NULL, "message: %s", message);
}

/* A FIFO would block the open (no writer) or the reads; a directory, or a
 * device that reads as empty or as endless zeros, is no IDX file either.
 * Each is refused as an I/O error at once, as images and as labels. */
START_TEST(idx_special_files)
{
    char images[512], labels[512], fifo[512], dir[512];
    temp(images, "special-images");
    temp(labels, "special-labels");
    temp(fifo, "special-fifo");
    temp(dir, "special-dir");
    write_valid_pair(images, labels, 0);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    const char *specials[] = {fifo, dir, "/dev/null", "/dev/zero"};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        expect_not_regular(specials[i], labels, NULL, specials[i]);
        expect_not_regular(images, specials[i], NULL, specials[i]);
    }
}
END_TEST

/* A symbolic link is followed: to a regular file it loads, to anything
 * else it is refused as that thing is. */
START_TEST(idx_symlinks)
{
    char images[512], labels[512], link_images[512], link_labels[512], fifo[512];
    char link_fifo[512];
    temp(images, "linked-images.gz");
    temp(labels, "linked-labels");
    temp(link_images, "link-to-images");
    temp(link_labels, "link-to-labels");
    temp(fifo, "linked-fifo");
    temp(link_fifo, "link-to-fifo");
    write_blob(images, images_blob(N, ROWS, COLS), 1);
    write_blob(labels, labels_blob(N, CLASSES), 0);
    ck_assert_int_eq(symlink("linked-images.gz", link_images), 0); /* relative */
    ck_assert_int_eq(symlink(labels, link_labels), 0);             /* absolute */
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_load_idx(&ds, link_images, link_labels, CLASSES));
    check_contents(ds, N, FEAT, CLASSES);
    bpl_dataset_destroy(ds);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(symlink(fifo, link_fifo), 0);
    expect_not_regular(link_fifo, labels, NULL, link_fifo);
    expect_not_regular(images, link_fifo, NULL, link_fifo);
}
END_TEST

START_TEST(idx_missing_file)
{
    char images[512], labels[512], missing[512];
    temp(images, "present-images");
    temp(labels, "present-labels");
    temp(missing, "no-such-file");
    write_valid_pair(images, labels, 0);
    bpl_dataset *ds = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, missing, labels, CLASSES), BPL_ERR_IO,
                     missing);
    ck_assert_ptr_null(ds);
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, images, missing, CLASSES), BPL_ERR_IO,
                     missing);
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(idx_invalid_arguments)
{
    char images[512], labels[512];
    temp(images, "args-images");
    temp(labels, "args-labels");
    write_valid_pair(images, labels, 0);
    bpl_dataset *ds = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(NULL, images, labels, CLASSES),
                     BPL_ERR_INVALID_ARG, "bpl_dataset_load_idx");
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, NULL, labels, CLASSES), BPL_ERR_INVALID_ARG,
                     NULL);
    ck_assert_ptr_null(ds);
    ds = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, images, NULL, CLASSES), BPL_ERR_INVALID_ARG,
                     NULL);
    ck_assert_ptr_null(ds);
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, images, labels, 0), BPL_ERR_INVALID_ARG,
                     NULL);
    BPL_EXPECT_ERROR(bpl_dataset_load_idx(&ds, images, labels, 257), BPL_ERR_INVALID_ARG,
                     NULL);
    ck_assert_ptr_null(ds);
}
END_TEST

/* ---- the MNIST layout ------------------------------------------------------ */

/* A fresh directory under the temporary directory. */
static void temp_dir(char *dst, const char *name)
{
    temp(dst, name);
    ck_assert_msg(mkdir(dst, 0755) == 0, "mkdir %s: %s", dst, strerror(errno));
}

static void write_mnist_pair(const char *dir, const char *split, const char *sep,
                             const char *suffix, uint32_t n)
{
    char path[1024];
    int gz = suffix[0] != '\0';
    snprintf(path, sizeof path, "%s/%s-images%sidx3-ubyte%s", dir, split, sep, suffix);
    write_blob(path, images_blob(n, 28, 28), gz);
    snprintf(path, sizeof path, "%s/%s-labels%sidx1-ubyte%s", dir, split, sep, suffix);
    write_blob(path, labels_blob(n, 10), gz);
}

START_TEST(mnist_missing_files)
{
    char dir[512];
    temp_dir(dir, "mnist-empty");
    bpl_dataset *ds = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, BPL_MNIST_TRAIN), BPL_ERR_IO,
                     "train-images-idx3-ubyte");
    ck_assert_ptr_null(ds);
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "train-labels-idx1-ubyte"));
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), dir));
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, BPL_MNIST_TEST), BPL_ERR_IO,
                     "t10k-images-idx3-ubyte");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "t10k-labels-idx1-ubyte"));

    /* with only the images present, the message asks for the labels */
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_blob(path, images_blob(3, 28, 28), 1);
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, BPL_MNIST_TRAIN), BPL_ERR_IO,
                     "train-labels-idx1-ubyte");

    /* a directory that does not exist at all */
    char missing[512];
    temp(missing, "mnist-nowhere");
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, missing, BPL_MNIST_TEST), BPL_ERR_IO,
                     "t10k-images-idx3-ubyte");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(mnist_file_spellings)
{
    static const struct {
        const char *dir, *sep, *suffix;
    } spellings[] = {
        {"mnist-gz", "-", ".gz"},   /* train-images-idx3-ubyte.gz */
        {"mnist-raw", "-", ""},     /* train-images-idx3-ubyte */
        {"mnist-dot", ".", ""},     /* train-images.idx3-ubyte */
        {"mnist-dotgz", ".", ".gz"} /* train-images.idx3-ubyte.gz */
    };
    for (size_t s = 0; s < sizeof spellings / sizeof spellings[0]; s++) {
        char dir[512];
        temp_dir(dir, spellings[s].dir);
        write_mnist_pair(dir, "train", spellings[s].sep, spellings[s].suffix, 6);
        write_mnist_pair(dir, "t10k", spellings[s].sep, spellings[s].suffix, 3);
        bpl_dataset *train = NULL, *test = NULL;
        BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&train, dir, BPL_MNIST_TRAIN));
        BPL_OK_OR_FAIL(bpl_dataset_load_mnist(&test, dir, BPL_MNIST_TEST));
        ck_assert_uint_eq(bpl_dataset_example_count(train), 6);
        ck_assert_uint_eq(bpl_dataset_example_count(test), 3);
        ck_assert_uint_eq(bpl_dataset_features(train), 784);
        ck_assert_uint_eq(bpl_dataset_targets(train), 10);
        ck_assert_uint_eq(bpl_dataset_targets(test), 10);
        unsigned char expected[6];
        make_labels(expected, 6, 10);
        for (size_t i = 0; i < 6; i++) {
            int label;
            BPL_OK_OR_FAIL(bpl_dataset_label(train, i, &label));
            ck_assert_int_eq(label, expected[i]);
        }
        bpl_dataset_destroy(train);
        bpl_dataset_destroy(test);
    }
}
END_TEST

START_TEST(mnist_errors_propagate)
{
    /* a broken file found under an MNIST name: FORMAT naming that file */
    char dir[512], path[1024];
    temp_dir(dir, "mnist-broken");
    write_mnist_pair(dir, "train", "-", ".gz", 4);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_blob(path, labels_blob(3, 10), 1);
    bpl_dataset *ds = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, BPL_MNIST_TRAIN), BPL_ERR_FORMAT,
                     path);
    ck_assert_ptr_null(ds);
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(NULL, dir, BPL_MNIST_TRAIN),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, NULL, BPL_MNIST_TRAIN),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, 2), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_load_mnist(&ds, dir, -1), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_null(ds);
}
END_TEST

/* A FIFO under an MNIST name is found, then refused at once. */
START_TEST(mnist_fifo)
{
    char dir[512], path[1024];
    temp_dir(dir, "mnist-fifo");
    write_mnist_pair(dir, "train", "-", ".gz", 4);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    expect_not_regular(NULL, NULL, dir, path);
}
END_TEST

/* ---- datasets built in memory ----------------------------------------------- */

START_TEST(from_u8_copies)
{
    unsigned char *pixels = malloc(N * FEAT), *labels = malloc(N);
    ck_assert(pixels && labels);
    make_pixels(pixels, N * FEAT);
    make_labels(labels, N, CLASSES);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&ds, pixels, labels, N, FEAT, CLASSES));
    /* the dataset owns copies: scribbling on and freeing the caller's arrays
     * changes nothing */
    memset(pixels, 0x77, N * FEAT);
    memset(labels, 0, N);
    free(pixels);
    free(labels);
    check_contents(ds, N, FEAT, CLASSES);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(from_u8_errors)
{
    unsigned char pixels[N * FEAT], labels[N];
    make_pixels(pixels, sizeof pixels);
    make_labels(labels, N, CLASSES);
    bpl_dataset *ds = (bpl_dataset *)1;
    labels[2] = CLASSES;
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, N, FEAT, CLASSES),
                     BPL_ERR_RANGE, "label");
    ck_assert_ptr_null(ds);
    labels[2] = 0;
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(NULL, pixels, labels, N, FEAT, CLASSES),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, NULL, labels, N, FEAT, CLASSES),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, NULL, N, FEAT, CLASSES),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, 0, FEAT, CLASSES),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, N, 0, CLASSES),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, N, FEAT, 0),
                     BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_u8(&ds, pixels, labels, N, FEAT, 257),
                     BPL_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(from_f32_copies)
{
    enum { F = 3, T = 2 };
    float *x = malloc(N * F * sizeof *x), *y = malloc(N * T * sizeof *y);
    ck_assert(x && y);
    uint64_t state = 42;
    test_fill_uniform(x, N * F, -5.0f, 5.0f, &state);
    test_fill_uniform(y, N * T, -1.0f, 1.0f, &state);
    float x_copy[N * F], y_copy[N * T];
    memcpy(x_copy, x, sizeof x_copy);
    memcpy(y_copy, y, sizeof y_copy);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, F, T));
    memset(x, 0, N * F * sizeof *x);
    memset(y, 0, N * T * sizeof *y);
    free(x);
    free(y);
    ck_assert_uint_eq(bpl_dataset_example_count(ds), N);
    ck_assert_uint_eq(bpl_dataset_features(ds), F);
    ck_assert_uint_eq(bpl_dataset_targets(ds), T);
    float gx[N * F], gy[N * T];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, N, gx, N * F, gy, N * T));
    /* float data is handed back bit for bit, with no scaling */
    ck_assert_mem_eq(gx, x_copy, sizeof gx);
    ck_assert_mem_eq(gy, y_copy, sizeof gy);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(from_f32_errors)
{
    float x[6] = {0, 1, 2, 3, 4, 5}, y[4] = {1, 0, 0, 1};
    bpl_dataset *ds = (bpl_dataset *)1;
    x[4] = NAN;
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 3, 2), BPL_ERR_NUMERIC, NULL);
    ck_assert_ptr_null(ds);
    x[4] = INFINITY;
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 3, 2), BPL_ERR_NUMERIC, NULL);
    x[4] = 4;
    y[3] = -INFINITY;
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 3, 2), BPL_ERR_NUMERIC, NULL);
    y[3] = NAN;
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 3, 2), BPL_ERR_NUMERIC, NULL);
    y[3] = 1;
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(NULL, x, y, 2, 3, 2), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, NULL, y, 2, 3, 2), BPL_ERR_INVALID_ARG,
                     NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, NULL, 2, 3, 2), BPL_ERR_INVALID_ARG,
                     NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 0, 3, 2), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 0, 2), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_from_f32(&ds, x, y, 2, 3, 0), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_null(ds);
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 2, 3, 2));
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(label_of_float_rows)
{
    /* argmax of each target row, negative values included */
    const float x[4] = {0, 0, 0, 0};
    const float y[4 * 3] = {0, 0, 1, -3, -1, -2, 0.25f, 0.5f, 0.125f, 9, 8, 7};
    const int expected[4] = {2, 1, 1, 0};
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 4, 1, 3));
    for (size_t i = 0; i < 4; i++) {
        int label = -1;
        BPL_OK_OR_FAIL(bpl_dataset_label(ds, i, &label));
        ck_assert_int_eq(label, expected[i]);
    }
    int label = 77;
    BPL_EXPECT_ERROR(bpl_dataset_label(ds, 4, &label), BPL_ERR_RANGE, NULL);
    ck_assert_int_eq(label, 77);
    BPL_EXPECT_ERROR(bpl_dataset_label(ds, 0, NULL), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_label(NULL, 0, &label), BPL_ERR_INVALID_ARG, NULL);
    bpl_dataset_destroy(ds);
}
END_TEST

static bpl_dataset *make_u8(void)
{
    unsigned char pixels[N * FEAT], labels[N];
    make_pixels(pixels, sizeof pixels);
    make_labels(labels, N, CLASSES);
    bpl_dataset *ds = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&ds, pixels, labels, N, FEAT, CLASSES));
    return ds;
}

START_TEST(slice_contents)
{
    bpl_dataset *ds = make_u8();
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 1.0, 0.0));
    bpl_dataset *slice = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_slice(&slice, ds, 1, 3));
    ck_assert_uint_eq(bpl_dataset_example_count(slice), 3);
    ck_assert_uint_eq(bpl_dataset_features(slice), FEAT);
    ck_assert_uint_eq(bpl_dataset_targets(slice), CLASSES);
    float want_x[3 * FEAT], want_y[3 * CLASSES], got_x[3 * FEAT], got_y[3 * CLASSES];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 1, 3, want_x, sizeof want_x / sizeof *want_x, want_y,
                                   sizeof want_y / sizeof *want_y));
    BPL_OK_OR_FAIL(bpl_dataset_get(slice, 0, 3, got_x, sizeof got_x / sizeof *got_x, got_y,
                                   sizeof got_y / sizeof *got_y));
    /* same bits: the slice kept the scaling of 1 set on its source */
    ck_assert_mem_eq(got_x, want_x, sizeof got_x);
    ck_assert_mem_eq(got_y, want_y, sizeof got_y);
    unsigned char pixels[N * FEAT];
    make_pixels(pixels, sizeof pixels);
    ck_assert_float_eq(got_x[0], (float)pixels[FEAT]);
    for (size_t i = 0; i < 3; i++) {
        int a, b;
        BPL_OK_OR_FAIL(bpl_dataset_label(ds, 1 + i, &a));
        BPL_OK_OR_FAIL(bpl_dataset_label(slice, i, &b));
        ck_assert_int_eq(a, b);
    }
    /* an independent copy: destroying the source leaves the slice whole */
    bpl_dataset_destroy(ds);
    BPL_OK_OR_FAIL(bpl_dataset_get(slice, 0, 3, got_x, sizeof got_x / sizeof *got_x, NULL,
                                   0));
    ck_assert_mem_eq(got_x, want_x, sizeof got_x);
    bpl_dataset_destroy(slice);

    /* the whole range, and the last example alone */
    ds = make_u8();
    BPL_OK_OR_FAIL(bpl_dataset_slice(&slice, ds, 0, N));
    ck_assert_uint_eq(bpl_dataset_example_count(slice), N);
    bpl_dataset_destroy(slice);
    BPL_OK_OR_FAIL(bpl_dataset_slice(&slice, ds, N - 1, 1));
    ck_assert_uint_eq(bpl_dataset_example_count(slice), 1);
    bpl_dataset_destroy(slice);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(slice_of_floats)
{
    const float x[3 * 2] = {1, 2, 3, 4, 5, 6};
    const float y[3 * 2] = {0.5f, -0.5f, 2, 3, -1, 0};
    bpl_dataset *ds = NULL, *slice = NULL;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 3, 2, 2));
    BPL_OK_OR_FAIL(bpl_dataset_slice(&slice, ds, 1, 2));
    float gx[4], gy[4];
    BPL_OK_OR_FAIL(bpl_dataset_get(slice, 0, 2, gx, 4, gy, 4));
    ck_assert_mem_eq(gx, x + 2, sizeof gx);
    ck_assert_mem_eq(gy, y + 2, sizeof gy);
    /* a float slice is still a float dataset */
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(slice, 1.0, 0.0), BPL_ERR_UNSUPPORTED, NULL);
    bpl_dataset_destroy(slice);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(slice_errors)
{
    bpl_dataset *ds = make_u8(), *slice = (bpl_dataset *)1;
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, 0, N + 1), BPL_ERR_RANGE, NULL);
    ck_assert_ptr_null(slice);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, N, 1), BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, N + 1, 1), BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, 2, N - 1), BPL_ERR_RANGE, NULL);
    /* start + count wrapping around must not pass for a valid range */
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, 2, SIZE_MAX), BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, SIZE_MAX, 2), BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, ds, 0, 0), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(&slice, NULL, 0, 1), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_slice(NULL, ds, 0, 1), BPL_ERR_INVALID_ARG, NULL);
    ck_assert_ptr_null(slice);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(scaling_applied_per_batch)
{
    bpl_dataset *ds = make_u8();
    unsigned char pixels[N * FEAT];
    make_pixels(pixels, sizeof pixels);
    float x[N * FEAT], first[N * FEAT];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, N, first, N * FEAT, NULL, 0));

    /* raw pixel values */
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 1.0, 0.0));
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, N, x, N * FEAT, NULL, 0));
    for (size_t i = 0; i < N * FEAT; i++)
        ck_assert_float_eq(x[i], (float)pixels[i]);

    /* a scale and an offset (centred pixels): exact in binary */
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 0.5, -64.0));
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 2, 2, x, 2 * FEAT, NULL, 0));
    for (size_t i = 0; i < 2 * FEAT; i++)
        ck_assert_float_eq(x[i], (float)pixels[2 * FEAT + i] * 0.5f - 64.0f);

    /* back to the default: the stored bytes never changed */
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 1.0 / 255.0, 0.0));
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, N, x, N * FEAT, NULL, 0));
    ck_assert_mem_eq(x, first, sizeof x);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(scaling_errors)
{
    bpl_dataset *ds = make_u8();
    BPL_OK_OR_FAIL(bpl_dataset_set_scaling(ds, 2.0, 1.0));
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, NAN, 0.0), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1.0, NAN), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, INFINITY, 0.0), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1.0, -INFINITY), BPL_ERR_INVALID_ARG,
                     NULL);
    /* finite doubles whose pixels would overflow a float */
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1e300, 0.0), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1e38, 0.0), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1.0, -1e300), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(NULL, 1.0, 0.0), BPL_ERR_INVALID_ARG, NULL);
    /* the failures left the previous scaling in place */
    unsigned char pixels[FEAT];
    make_pixels(pixels, sizeof pixels);
    float x[FEAT];
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, 1, x, FEAT, NULL, 0));
    for (size_t i = 0; i < FEAT; i++)
        ck_assert_float_eq(x[i], (float)pixels[i] * 2.0f + 1.0f);
    bpl_dataset_destroy(ds);

    const float fx[2] = {1, 2}, fy[2] = {1, 0};
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, fx, fy, 1, 2, 2));
    BPL_EXPECT_ERROR(bpl_dataset_set_scaling(ds, 1.0, 0.0), BPL_ERR_UNSUPPORTED, NULL);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(get_errors)
{
    bpl_dataset *ds = make_u8();
    float x[N * FEAT + 1], y[N * CLASSES + 1];
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 0, 2, x, 2 * FEAT - 1, y, 2 * CLASSES),
                     BPL_ERR_SHAPE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 0, 2, x, 2 * FEAT + 1, y, 2 * CLASSES),
                     BPL_ERR_SHAPE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 0, 2, x, 2 * FEAT, y, 2 * CLASSES + 1),
                     BPL_ERR_SHAPE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 0, 2, NULL, 0, y, 0), BPL_ERR_SHAPE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 0, N + 1, x, (N + 1) * FEAT, NULL, 0),
                     BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, N, 1, x, FEAT, NULL, 0), BPL_ERR_RANGE, NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(ds, 3, SIZE_MAX, NULL, 0, NULL, 0), BPL_ERR_RANGE,
                     NULL);
    BPL_EXPECT_ERROR(bpl_dataset_get(NULL, 0, 1, x, FEAT, NULL, 0), BPL_ERR_INVALID_ARG,
                     NULL);
    /* a NULL output's length is ignored */
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, 2, NULL, 12345, y, 2 * CLASSES));
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, 0, 2, x, 2 * FEAT, NULL, 999));
    BPL_OK_OR_FAIL(bpl_dataset_get(ds, N - 1, 1, x, FEAT, y, CLASSES));
    int label = -1;
    BPL_EXPECT_ERROR(bpl_dataset_label(ds, N, &label), BPL_ERR_RANGE, NULL);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(null_handles)
{
    bpl_dataset_destroy(NULL);
    ck_assert_uint_eq(bpl_dataset_example_count(NULL), 0);
    ck_assert_uint_eq(bpl_dataset_features(NULL), 0);
    ck_assert_uint_eq(bpl_dataset_targets(NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataset");

    TCase *tc = tcase_create("idx_valid");
    tcase_add_test(tc, idx_images_raw_and_gzip);
    tcase_add_test(tc, idx_mixed_compression);
    tcase_add_test(tc, idx_vectors_2d);
    tcase_add_test(tc, idx_class_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx_rejected");
    tcase_add_test(tc, idx_truncated_payload);
    tcase_add_test(tc, idx_truncated_header);
    tcase_add_test(tc, idx_bad_magic);
    tcase_add_test(tc, idx_count_mismatch);
    tcase_add_test(tc, idx_label_out_of_range);
    tcase_add_test(tc, idx_empty_file);
    tcase_add_test(tc, idx_zero_dimension);
    tcase_add_test(tc, idx_trailing_bytes);
    tcase_add_test(tc, idx_gzip_corrupt);
    tcase_add_test(tc, idx_gzip_truncated);
    tcase_add_test(tc, idx_huge_header_tiny_file);
    tcase_add_test(tc, idx_missing_file);
    tcase_add_test(tc, idx_invalid_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx_hostile");
    tcase_add_test(tc, idx_trailing_garbage_raw_and_gzip);
    tcase_add_test(tc, idx_gzip_members_concatenated);
    tcase_add_test(tc, idx_gzip_bomb);
    tcase_add_test(tc, idx_special_files);
    tcase_add_test(tc, idx_symlinks);
    suite_add_tcase(s, tc);

    tc = tcase_create("mnist_layout");
    tcase_add_test(tc, mnist_missing_files);
    tcase_add_test(tc, mnist_file_spellings);
    tcase_add_test(tc, mnist_errors_propagate);
    tcase_add_test(tc, mnist_fifo);
    suite_add_tcase(s, tc);

    tc = tcase_create("in_memory");
    tcase_add_test(tc, from_u8_copies);
    tcase_add_test(tc, from_u8_errors);
    tcase_add_test(tc, from_f32_copies);
    tcase_add_test(tc, from_f32_errors);
    tcase_add_test(tc, label_of_float_rows);
    tcase_add_test(tc, slice_contents);
    tcase_add_test(tc, slice_of_floats);
    tcase_add_test(tc, slice_errors);
    tcase_add_test(tc, scaling_applied_per_batch);
    tcase_add_test(tc, scaling_errors);
    tcase_add_test(tc, get_errors);
    tcase_add_test(tc, null_handles);
    suite_add_tcase(s, tc);

    return test_run_suite(s);
}
