/*
 * idx.c - the IDX file format of MNIST (LeCun et al.), raw or gzip.
 *
 * An IDX file is a 4-byte magic (0, 0, type, number of dimensions), one
 * big-endian uint32 per dimension, then the data.  Only unsigned bytes
 * (type 0x08) are read.  Everything the header claims is checked against
 * what the file really holds, and memory grows only as data arrives, so a
 * header claiming billions of images costs nothing before it is rejected.
 */
#include "bpl_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define MAX_IDX_BYTES ((size_t)1 << 32) /* 4 GiB of payload is far beyond MNIST */
#define READ_CHUNK ((size_t)1 << 20)

typedef struct idx_file {
    const char *path;
    gzFile gz;
} idx_file;

static const char *zlib_error(gzFile gz)
{
    int code;
    const char *msg = gzerror(gz, &code);
    return code != Z_OK && msg && msg[0] ? msg : NULL;
}

static int idx_open(idx_file *f, const char *path, const char *caller)
{
    f->path = path;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot open: %s", caller, path,
                         errno ? strerror(errno) : "out of memory");
    return BPL_OK;
}

/* Read up to n bytes; *got tells how many arrived.  Fails only on a stream
 * error (corrupt gzip data), not on a short read. */
static int idx_read(idx_file *f, void *dst, size_t n, size_t *got, const char *caller)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < READ_CHUNK ? n - *got : READ_CHUNK;
        int r = gzread(f->gz, (char *)dst + *got, (unsigned)want);
        if (r < 0)
            return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': corrupt data: %s", caller, f->path,
                             zlib_error(f->gz) ? zlib_error(f->gz) : "read error");
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return BPL_OK;
}

static uint32_t big_endian32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read the magic and dimensions; check the type and the dimension count. */
static int read_header(idx_file *f, int min_dims, int max_dims, uint32_t dims[3],
                       int *n_dims, const char *caller)
{
    unsigned char head[4 + 4 * 3];
    size_t got;
    int rc = idx_read(f, head, 4, &got, caller);
    if (rc != BPL_OK)
        return rc;
    if (got == 0)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': the file is empty", caller, f->path);
    if (got < 4)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': truncated header (%zu bytes)", caller,
                         f->path, got);
    int nd = head[3];
    if (head[0] != 0 || head[1] != 0 || head[2] != IDX_UBYTE || nd < min_dims ||
        nd > max_dims)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': bad magic 0x%02x%02x%02x%02x (expected an IDX file of "
                         "unsigned bytes with %d%s%d dimensions, e.g. 0x000008%02x)",
                         caller, f->path, head[0], head[1], head[2], head[3], min_dims,
                         min_dims == max_dims ? "" : " to ",
                         min_dims == max_dims ? 0 : max_dims, max_dims);
    rc = idx_read(f, head + 4, 4 * (size_t)nd, &got, caller);
    if (rc != BPL_OK)
        return rc;
    if (got < 4 * (size_t)nd)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': truncated header", caller, f->path);
    for (int d = 0; d < nd; d++) {
        dims[d] = big_endian32(head + 4 + 4 * d);
        if (dims[d] == 0)
            return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': dimension %d is zero", caller,
                             f->path, d);
    }
    *n_dims = nd;
    return BPL_OK;
}

/* Read exactly `size` payload bytes into a buffer grown as data arrives, and
 * make sure nothing follows them. */
static int read_payload(idx_file *f, size_t size, uint8_t **out, const char *what,
                        const char *caller)
{
    size_t cap = size < (size_t)1 << 24 ? size : (size_t)1 << 24, have = 0;
    uint8_t *buf = bpl__malloc(cap);
    if (!buf)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    int rc = BPL_OK;
    while (rc == BPL_OK && have < size) {
        if (have == cap) {
            size_t grown_cap = cap * 2 < size ? cap * 2 : size;
            uint8_t *grown = bpl__realloc(buf, grown_cap);
            if (!grown) {
                rc = bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got;
        rc = idx_read(f, buf + have, cap - have, &got, caller);
        have += got;
        if (rc == BPL_OK && got == 0)
            break;
    }
    if (rc == BPL_OK && have < size)
        rc = bpl__fail(BPL_ERR_FORMAT,
                       "%s: '%s': truncated: the header promises %zu bytes of %s, the file "
                       "holds %zu%s%s",
                       caller, f->path, size, what, have, zlib_error(f->gz) ? " - " : "",
                       zlib_error(f->gz) ? zlib_error(f->gz) : "");
    if (rc == BPL_OK) {
        unsigned char extra[64];
        size_t got, total = 0;
        do {
            rc = idx_read(f, extra, sizeof extra, &got, caller);
            total += got;
        } while (rc == BPL_OK && got == sizeof extra && total < 4096);
        if (rc == BPL_OK && total > 0)
            rc = bpl__fail(BPL_ERR_FORMAT,
                           "%s: '%s': %s%zu unexpected bytes after the %zu bytes of %s",
                           caller, f->path, total >= 4096 ? "at least " : "", total, size,
                           what);
    }
    /* A gzip stream cut inside its trailer still yields all the data; zlib
     * then reports the missing end (and the unverified CRC) only here. */
    if (rc == BPL_OK && zlib_error(f->gz))
        rc = bpl__fail(BPL_ERR_FORMAT, "%s: '%s': truncated or corrupt compressed data: %s",
                       caller, f->path, zlib_error(f->gz));
    if (rc != BPL_OK) {
        bpl__free(buf);
        return rc;
    }
    *out = buf;
    return BPL_OK;
}

static int load_images(const char *path, size_t *n, size_t *features, uint8_t **pixels,
                       const char *caller)
{
    idx_file f;
    int rc = idx_open(&f, path, caller);
    if (rc != BPL_OK)
        return rc;
    uint32_t dims[3] = {0, 1, 1};
    int nd;
    rc = read_header(&f, 2, 3, dims, &nd, caller);
    if (rc == BPL_OK) {
        size_t feat = (size_t)dims[1] * (nd == 3 ? dims[2] : 1), size;
        if (feat > BPL__MAX_UNITS || !bpl__mul_size(dims[0], feat, &size) ||
            size > MAX_IDX_BYTES)
            rc = bpl__fail(BPL_ERR_FORMAT,
                           "%s: '%s': %u examples of %zu features is beyond the %zu-byte "
                           "limit",
                           caller, path, dims[0], feat, MAX_IDX_BYTES);
        else
            rc = read_payload(&f, size, pixels, "pixels", caller);
        *n = dims[0];
        *features = feat;
    }
    gzclose(f.gz);
    return rc;
}

static int load_labels(const char *path, size_t *n, uint8_t **labels, const char *caller)
{
    idx_file f;
    int rc = idx_open(&f, path, caller);
    if (rc != BPL_OK)
        return rc;
    uint32_t dims[3];
    int nd;
    rc = read_header(&f, 1, 1, dims, &nd, caller);
    if (rc == BPL_OK) {
        *n = dims[0];
        rc = read_payload(&f, dims[0], labels, "labels", caller);
    }
    gzclose(f.gz);
    return rc;
}

BPL_API int bpl_dataset_load_idx(bpl_dataset **out, const char *images_path,
                                 const char *labels_path, size_t n_classes)
{
    static const char caller[] = "bpl_dataset_load_idx";
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(images_path != NULL);
    BPL_CHECK_ARG(labels_path != NULL);
    BPL_CHECK_ARG(n_classes > 0 && n_classes <= 256);
    size_t n_images = 0, n_labels = 0, features = 0;
    uint8_t *pixels = NULL, *labels = NULL;
    int rc = load_images(images_path, &n_images, &features, &pixels, caller);
    if (rc == BPL_OK)
        rc = load_labels(labels_path, &n_labels, &labels, caller);
    if (rc == BPL_OK && n_images != n_labels)
        rc = bpl__fail(BPL_ERR_FORMAT, "%s: '%s' holds %zu images but '%s' %zu labels",
                       caller, images_path, n_images, labels_path, n_labels);
    if (rc == BPL_OK) {
        for (size_t i = 0; i < n_labels && rc == BPL_OK; i++)
            if (labels[i] >= n_classes)
                rc = bpl__fail(BPL_ERR_FORMAT,
                               "%s: '%s': label %u of example %zu is outside 0..%zu", caller,
                               labels_path, labels[i], i, n_classes - 1);
    }
    bpl_dataset *ds = NULL;
    if (rc == BPL_OK)
        ds = bpl__calloc(1, sizeof *ds);
    if (rc == BPL_OK && !ds)
        rc = bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    if (rc != BPL_OK) {
        bpl__free(pixels);
        bpl__free(labels);
        return rc;
    }
    ds->n = n_images;
    ds->n_features = features;
    ds->n_targets = n_classes;
    ds->pixels = pixels;
    ds->labels = labels;
    ds->scale = 1.0f / 255.0f;
    *out = ds;
    return BPL_OK;
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* The first existing name among the usual spellings of an MNIST file:
 * "train-images-idx3-ubyte" or "train-images.idx3-ubyte", with or without
 * ".gz". */
static int find_mnist_file(const char *dir, const char *split, const char *kind,
                           int dims, char *path, size_t size, char *tried, size_t tried_size)
{
    static const char separators[] = {'-', '.'};
    static const char *const suffixes[] = {".gz", ""};
    for (int s = 0; s < 2; s++)
        for (int z = 0; z < 2; z++) {
            snprintf(path, size, "%s/%s-%s%cidx%d-ubyte%s", dir, split, kind, separators[s],
                     dims, suffixes[z]);
            if (file_exists(path))
                return 1;
        }
    snprintf(path, size, "%s/%s-%s-idx%d-ubyte.gz", dir, split, kind, dims);
    size_t used = strlen(tried);
    snprintf(tried + used, tried_size - used, "%s'%s' (or without .gz)", used ? ", " : "",
             path);
    return 0;
}

BPL_API int bpl_dataset_load_mnist(bpl_dataset **out, const char *dir, int split)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(dir != NULL);
    BPL_CHECK_ARG(split == BPL_MNIST_TRAIN || split == BPL_MNIST_TEST);
    const char *prefix = split == BPL_MNIST_TRAIN ? "train" : "t10k";
    char images[4096], labels[4096], tried[2 * 4096 + 64] = "";
    int have_images = find_mnist_file(dir, prefix, "images", 3, images, sizeof images,
                                      tried, sizeof tried);
    int have_labels = find_mnist_file(dir, prefix, "labels", 1, labels, sizeof labels,
                                      tried, sizeof tried);
    if (!have_images || !have_labels)
        return bpl__fail(BPL_ERR_IO, "bpl_dataset_load_mnist: missing %s", tried);
    int rc = bpl_dataset_load_idx(out, images, labels, 10);
    if (rc != BPL_OK)
        bpl__error_prefix("bpl_dataset_load_mnist");
    return rc;
}
