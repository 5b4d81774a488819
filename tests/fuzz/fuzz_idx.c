/*
 * fuzz_idx.c - IDX loading (bpl_dataset_load_idx, bpl_dataset_load_mnist)
 * on arbitrary image and label files, raw or gzip.  Input layout: see
 * fuzz_format.h.  Whatever the files hold, a load either fails with
 * BPL_ERR_FORMAT or gives a dataset that every accessor agrees with.
 */
#define ZLIB_CONST /* next_in is const: no casts */
#include <zlib.h>

#include "fuzz_format.h"
#include "fuzz_util.h"

/* Examples read back per dataset: enough to cross every code path. */
#define MAX_CHECKED 64

typedef struct buffer {
    unsigned char *data;
    size_t size;
} buffer;

/* gzip (not zlib) framing, as gzopen expects; NULL data on failure. */
static buffer gzip(const unsigned char *src, size_t n)
{
    buffer out = {NULL, 0};
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return out;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    out.data = malloc(cap);
    z.next_in = src;
    z.avail_in = (uInt)n;
    z.next_out = out.data;
    z.avail_out = (uInt)cap;
    if (!out.data || deflate(&z, Z_FINISH) != Z_STREAM_END) {
        free(out.data);
        out.data = NULL;
    } else {
        out.size = cap - z.avail_out;
    }
    deflateEnd(&z);
    return out;
}

/* Write one file, compressed and damaged as the flags ask. */
static void write_member(const char *path, const unsigned char *src, size_t n, int gz,
                         int cut, size_t cut_bytes)
{
    if (!gz) {
        fuzz_write(path, src, n);
        return;
    }
    buffer b = gzip(src, n);
    if (!b.data)
        fuzz_abort("zlib could not compress %zu bytes", n);
    if (cut)
        b.size = b.size > cut_bytes ? b.size - cut_bytes : 0;
    fuzz_write(path, b.data, b.size);
    free(b.data);
}

/* Accessors of a loaded dataset agree with each other and with its size. */
static void check_examples(const bpl_dataset *ds, size_t n_classes)
{
    size_t n = bpl_dataset_example_count(ds), f = bpl_dataset_features(ds);
    size_t t = bpl_dataset_targets(ds), count = n < MAX_CHECKED ? n : MAX_CHECKED;
    if (n == 0 || f == 0 || t != n_classes)
        fuzz_abort("loaded dataset has n %zu, features %zu, targets %zu (classes %zu)", n, f,
                   t, n_classes);
    float *x = malloc(count * f * sizeof *x), *y = malloc(count * t * sizeof *y);
    if (!x || !y)
        fuzz_abort("out of memory in the target");
    fuzz_check(bpl_dataset_get(ds, 0, count, x, count * f, y, count * t), FZ(BPL_OK),
               "bpl_dataset_get");
    for (size_t i = 0; i < count; i++) {
        int label;
        fuzz_check(bpl_dataset_label(ds, i, &label), FZ(BPL_OK), "bpl_dataset_label");
        if (label < 0 || (size_t)label >= t || y[i * t + (size_t)label] != 1.0f)
            fuzz_abort("example %zu: label %d does not match its target row", i, label);
        for (size_t j = 0; j < f; j++)
            if (!(x[i * f + j] >= 0.0f && x[i * f + j] <= 1.0f))
                fuzz_abort("example %zu: pixel %zu scaled to %g", i, j, x[i * f + j]);
    }
    int label;
    fuzz_check(bpl_dataset_label(ds, n, &label), FZ(BPL_ERR_RANGE), "bpl_dataset_label");
    fuzz_check(bpl_dataset_get(ds, n, 1, x, f, NULL, 0), FZ(BPL_ERR_RANGE),
               "bpl_dataset_get");
    if (count > 1)
        fuzz_check(bpl_dataset_get(ds, 0, count, x, f, NULL, 0), FZ(BPL_ERR_SHAPE),
                   "bpl_dataset_get");
    free(x);
    free(y);
}

/* A slice holds exactly the examples it was cut from. */
static void check_slice(const bpl_dataset *ds, size_t start, size_t count)
{
    size_t n = bpl_dataset_example_count(ds), f = bpl_dataset_features(ds);
    bpl_dataset *s;
    int rc = fuzz_check(bpl_dataset_slice(&s, ds, start, count),
                        FZ(BPL_OK) | FZ(BPL_ERR_RANGE) | FZ(BPL_ERR_INVALID_ARG),
                        "bpl_dataset_slice");
    int fits = count > 0 && start <= n && count <= n - start;
    if ((rc == BPL_OK) != fits)
        fuzz_abort("slice [%zu, +%zu) of %zu examples returned %d", start, count, n, rc);
    if (rc != BPL_OK)
        return;
    size_t m = count < MAX_CHECKED ? count : MAX_CHECKED;
    float *a = malloc(m * f * sizeof *a), *b = malloc(m * f * sizeof *b);
    if (!a || !b)
        fuzz_abort("out of memory in the target");
    fuzz_check(bpl_dataset_get(ds, start, m, a, m * f, NULL, 0), FZ(BPL_OK),
               "bpl_dataset_get");
    fuzz_check(bpl_dataset_get(s, 0, m, b, m * f, NULL, 0), FZ(BPL_OK), "bpl_dataset_get");
    if (bpl_dataset_example_count(s) != count || memcmp(a, b, m * f * sizeof *a) != 0)
        fuzz_abort("slice [%zu, +%zu) differs from its source", start, count);
    free(a);
    free(b);
    bpl_dataset_destroy(s);
}

static void exercise(const bpl_dataset *ds, size_t n_classes, const unsigned char *seed)
{
    check_examples(ds, n_classes);
    size_t n = bpl_dataset_example_count(ds);
    check_slice(ds, seed[0] % (n + 2), 1 + seed[1] % (n + 1));
    check_slice(ds, 0, n);
}

/* Two loads of the same files hold the same examples. */
static void check_same(const bpl_dataset *a, const bpl_dataset *b)
{
    size_t n = bpl_dataset_example_count(a), f = bpl_dataset_features(a);
    if (bpl_dataset_example_count(b) != n || bpl_dataset_features(b) != f)
        fuzz_abort("two loads of the same files disagree on their shape");
    size_t m = n < MAX_CHECKED ? n : MAX_CHECKED;
    float *x = malloc(m * f * sizeof *x), *y = malloc(m * f * sizeof *y);
    if (!x || !y)
        fuzz_abort("out of memory in the target");
    fuzz_check(bpl_dataset_get(a, 0, m, x, m * f, NULL, 0), FZ(BPL_OK), "bpl_dataset_get");
    fuzz_check(bpl_dataset_get(b, 0, m, y, m * f, NULL, 0), FZ(BPL_OK), "bpl_dataset_get");
    if (memcmp(x, y, m * f * sizeof *x) != 0)
        fuzz_abort("two loads of the same files disagree on their pixels");
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_begin();
    if (size < IDX_HEAD_SIZE)
        return 0;
    unsigned flags = data[0];
    size_t classes = (size_t)data[1] + 1, body = size - IDX_HEAD_SIZE;
    size_t split = (size_t)data[2] | (size_t)data[3] << 8;
    if (split > body)
        split = body;
    const unsigned char *images = data + IDX_HEAD_SIZE, *labels = images + split;
    size_t cut = 1 + (flags >> 4);
    char images_path[512], labels_path[512];
    /* The MNIST spelling, so that bpl_dataset_load_mnist finds the same files. */
    fuzz_path(images_path, sizeof images_path, "train-images-idx3-ubyte");
    fuzz_path(labels_path, sizeof labels_path, "train-labels-idx1-ubyte");
    write_member(images_path, images, split, flags & IDX_GZIP_IMAGES,
                 flags & IDX_CUT_IMAGES, cut);
    write_member(labels_path, labels, body - split, flags & IDX_GZIP_LABELS,
                 flags & IDX_CUT_LABELS, cut);

    const size_t tried[] = {classes, 10, 256};
    bpl_dataset *ten = NULL;
    for (size_t i = 0; i < sizeof tried / sizeof tried[0]; i++) {
        bpl_dataset *ds;
        int rc = fuzz_check(bpl_dataset_load_idx(&ds, images_path, labels_path, tried[i]),
                            FZ(BPL_OK) | FZ(BPL_ERR_FORMAT), "bpl_dataset_load_idx");
        if ((rc == BPL_OK) != (ds != NULL))
            fuzz_abort("bpl_dataset_load_idx returned %d with *out %p", rc, (void *)ds);
        if (rc == BPL_OK)
            exercise(ds, tried[i], data + 1);
        if (tried[i] == 10 && !ten)
            ten = ds;
        else
            bpl_dataset_destroy(ds);
    }
    bpl_dataset *ds;
    fuzz_check(bpl_dataset_load_idx(&ds, images_path, labels_path, 0),
               FZ(BPL_ERR_INVALID_ARG), "bpl_dataset_load_idx");
    int rc = fuzz_check(bpl_dataset_load_mnist(&ds, fuzz_scratch_dir(), BPL_MNIST_TRAIN),
                        FZ(BPL_OK) | FZ(BPL_ERR_FORMAT), "bpl_dataset_load_mnist");
    if ((rc == BPL_OK) != (ten != NULL))
        fuzz_abort("bpl_dataset_load_mnist (%d) and bpl_dataset_load_idx with 10 classes "
                   "disagree",
                   rc);
    if (rc == BPL_OK)
        check_same(ds, ten);
    bpl_dataset_destroy(ds);
    bpl_dataset_destroy(ten);
    fuzz_check(bpl_dataset_load_mnist(&ds, fuzz_scratch_dir(), BPL_MNIST_TEST),
               FZ(BPL_ERR_IO), "bpl_dataset_load_mnist");
    return 0;
}
