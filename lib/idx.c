/*
 * idx.c - the IDX file format of MNIST (LeCun et al.), raw or gzip.
 *
 * An IDX file is a 4-byte magic (0, 0, type, number of dimensions), one
 * big-endian uint32 per dimension, then the data.  Only unsigned bytes
 * (type 0x08) are read.  Everything the header claims is checked against
 * what the file really holds, and memory grows only as data arrives, so a
 * header claiming billions of images costs nothing before it is rejected.
 *
 * Both headers are read and checked against each other before either
 * payload, and the labels are read before the images: a gzip image file
 * that inflates to gigabytes costs nothing when its label file disagrees.
 * No file is inflated further than its header declares plus 4 KiB (enough
 * to report that more follows).
 *
 * A gzip file may hold several members, read as the concatenation of their
 * data (as gzip -d does); any byte after the last member is refused, as
 * any byte after the data of a raw file is.
 */
#include "bpl_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define MAX_IDX_BYTES ((size_t)1 << 32) /* 4 GiB of payload is far beyond MNIST */
#define EXTRA_CHECKED 4096              /* bytes read past the payload to report them */
#define GZ_INPUT ((size_t)1 << 16)

typedef struct idx_file {
    const char *path;
    const char *caller;
    int fd;
    uint64_t file_size;  /* when opened */
    size_t header_bytes; /* magic and dimensions */
    /* gzip only */
    int gzip, inflating, member_done, finished;
    uint64_t read_bytes; /* compressed bytes read from the file so far */
    unsigned char *in;
    z_stream z;
} idx_file;

static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
    size_t bytes;
    (void)opaque;
    return bpl__mul_size(items, size, &bytes) ? bpl__malloc(bytes) : Z_NULL;
}

static void zlib_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    bpl__free(p);
}

static int read_failed(const idx_file *f)
{
    return bpl__fail(BPL_ERR_IO, "%s: '%s': read error: %s", f->caller, f->path,
                     strerror(errno));
}

/* Open a regular file and tell gzip from raw by the gzip magic 1f 8b (a
 * raw IDX file starts with 00 00). */
static int idx_open(idx_file *f, const char *path, const char *caller)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->caller = caller;
    int rc = bpl__open_regular(path, caller, &f->fd, &f->file_size);
    if (rc != BPL_OK)
        return rc;
    unsigned char magic[2];
    ssize_t got = pread(f->fd, magic, 2, 0);
    if (got < 0)
        return read_failed(f);
    f->gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!f->gzip)
        return BPL_OK;
    f->in = bpl__malloc(GZ_INPUT);
    f->z.zalloc = zlib_alloc;
    f->z.zfree = zlib_free;
    if (!f->in || inflateInit2(&f->z, 15 + 16) != Z_OK)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    f->inflating = 1;
    return BPL_OK;
}

static void idx_close(idx_file *f)
{
    if (f->inflating)
        inflateEnd(&f->z);
    bpl__free(f->in);
    if (f->fd >= 0)
        close(f->fd);
}

/* Top up the input buffer (keeping what inflate has not used yet). */
static int gz_fill(idx_file *f)
{
    if (f->z.avail_in > 0)
        memmove(f->in, f->z.next_in, f->z.avail_in);
    size_t got;
    if (bpl__read_fully(f->fd, f->in + f->z.avail_in, GZ_INPUT - f->z.avail_in, &got) != 0)
        return read_failed(f);
    f->z.next_in = f->in;
    f->z.avail_in += (uInt)got;
    f->read_bytes += got;
    return BPL_OK;
}

/* After a member's end: another member, the end of the file, or bytes
 * that are neither. */
static int gz_next_member(idx_file *f)
{
    int rc = f->z.avail_in < 2 ? gz_fill(f) : BPL_OK;
    if (rc != BPL_OK)
        return rc;
    if (f->z.avail_in == 0) {
        f->finished = 1;
        return BPL_OK;
    }
    if (f->z.avail_in >= 2 && f->z.next_in[0] == 0x1f && f->z.next_in[1] == 0x8b) {
        f->member_done = 0;
        inflateReset(&f->z); /* cannot fail on a stream that inflated a member */
        return BPL_OK;
    }
    uint64_t end = f->read_bytes - f->z.avail_in;
    uint64_t extra = f->file_size > end ? f->file_size - end : f->z.avail_in;
    return bpl__fail(BPL_ERR_FORMAT,
                     "%s: '%s': %llu unexpected bytes after the end of the gzip data (at "
                     "byte %llu)",
                     f->caller, f->path, (unsigned long long)extra, (unsigned long long)end);
}

static int gz_read(idx_file *f, unsigned char *dst, size_t n, size_t *got)
{
    while (*got < n && !f->finished) {
        int rc = BPL_OK;
        if (f->member_done)
            rc = gz_next_member(f);
        else if (f->z.avail_in == 0)
            rc = gz_fill(f);
        if (rc != BPL_OK)
            return rc;
        if (f->finished || f->member_done)
            continue;
        if (f->z.avail_in == 0)
            return bpl__fail(BPL_ERR_FORMAT,
                             "%s: '%s': truncated: the compressed data stops before its end",
                             f->caller, f->path);
        size_t want = n - *got < (size_t)1 << 30 ? n - *got : (size_t)1 << 30;
        f->z.next_out = dst + *got;
        f->z.avail_out = (uInt)want;
        int zr = inflate(&f->z, Z_NO_FLUSH);
        *got += want - f->z.avail_out;
        if (zr == Z_STREAM_END)
            f->member_done = 1;
        else if (zr == Z_MEM_ERROR)
            return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", f->caller);
        else if (zr != Z_OK && zr != Z_BUF_ERROR)
            return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': corrupt compressed data: %s",
                             f->caller, f->path, f->z.msg ? f->z.msg : "inflate failed");
    }
    return BPL_OK;
}

/* Read up to n bytes; *got tells how many arrived.  A short count means the
 * data ended; errors are corrupt or truncated compressed data, bytes after
 * the last gzip member, and failed reads. */
static int idx_read(idx_file *f, void *dst, size_t n, size_t *got)
{
    *got = 0;
    if (f->gzip)
        return gz_read(f, dst, n, got);
    return bpl__read_fully(f->fd, dst, n, got) == 0 ? BPL_OK : read_failed(f);
}

static uint32_t big_endian32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read the magic and dimensions; check the type and the dimension count. */
static int read_header(idx_file *f, int min_dims, int max_dims, uint32_t dims[3],
                       int *n_dims)
{
    const char *caller = f->caller;
    unsigned char head[4 + 4 * 3];
    size_t got;
    int rc = idx_read(f, head, 4, &got);
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
    rc = idx_read(f, head + 4, 4 * (size_t)nd, &got);
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
    f->header_bytes = 4 + 4 * (size_t)nd;
    return BPL_OK;
}

static int truncated(const idx_file *f, size_t size, const char *what, uint64_t have)
{
    return bpl__fail(BPL_ERR_FORMAT,
                     "%s: '%s': truncated: the header promises %zu bytes of %s, the file "
                     "holds %llu",
                     f->caller, f->path, size, what, (unsigned long long)have);
}

static int extra_bytes(const idx_file *f, size_t size, const char *what, uint64_t extra,
                       int at_least)
{
    return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s%llu unexpected bytes after the %zu bytes "
                     "of %s",
                     f->caller, f->path, at_least ? "at least " : "",
                     (unsigned long long)extra, size, what);
}

/* A raw file's length is known before reading it: compare it with the
 * header's promise at once. */
static int check_raw_length(const idx_file *f, size_t size, const char *what)
{
    if (f->gzip)
        return BPL_OK;
    uint64_t have = f->file_size > f->header_bytes ? f->file_size - f->header_bytes : 0;
    if (have < size)
        return truncated(f, size, what, have);
    if (have > size)
        return extra_bytes(f, size, what, have - size, 0);
    return BPL_OK;
}

/* Read exactly `size` payload bytes into a buffer grown as data arrives, and
 * make sure nothing follows them. */
static int read_payload(idx_file *f, size_t size, uint8_t **out, const char *what)
{
    size_t cap = size < (size_t)1 << 24 ? size : (size_t)1 << 24, have = 0;
    uint8_t *buf = bpl__malloc(cap);
    if (!buf)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", f->caller);
    int rc = BPL_OK;
    while (rc == BPL_OK && have < size) {
        if (have == cap) {
            size_t grown_cap = cap * 2 < size ? cap * 2 : size;
            uint8_t *grown = bpl__realloc(buf, grown_cap);
            if (!grown) {
                rc = bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", f->caller);
                break;
            }
            buf = grown;
            cap = grown_cap;
        }
        size_t got;
        rc = idx_read(f, buf + have, cap - have, &got);
        have += got;
        if (rc == BPL_OK && got == 0)
            break;
    }
    if (rc == BPL_OK && have < size)
        rc = truncated(f, size, what, have);
    if (rc == BPL_OK) {
        unsigned char extra[EXTRA_CHECKED];
        size_t got;
        rc = idx_read(f, extra, sizeof extra, &got);
        if (rc == BPL_OK && got > 0)
            rc = extra_bytes(f, size, what, got, got == sizeof extra);
    }
    if (rc != BPL_OK) {
        bpl__free(buf);
        return rc;
    }
    *out = buf;
    return BPL_OK;
}

/* The image file's header: examples, features per example, payload size. */
static int images_header(idx_file *f, size_t *n, size_t *features, size_t *size)
{
    uint32_t dims[3] = {0, 1, 1};
    int nd;
    int rc = read_header(f, 2, 3, dims, &nd);
    if (rc != BPL_OK)
        return rc;
    size_t feat = (size_t)dims[1] * (nd == 3 ? dims[2] : 1);
    if (feat > BPL__MAX_UNITS || !bpl__mul_size(dims[0], feat, size) || *size > MAX_IDX_BYTES)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': %u examples of %zu features is beyond the %zu-byte limit",
                         f->caller, f->path, dims[0], feat, MAX_IDX_BYTES);
    *n = dims[0];
    *features = feat;
    return BPL_OK;
}

static int labels_header(idx_file *f, size_t *n)
{
    uint32_t dims[3];
    int nd;
    int rc = read_header(f, 1, 1, dims, &nd);
    if (rc == BPL_OK)
        *n = dims[0];
    return rc;
}

/* Everything that can be checked without reading a payload. */
static int check_headers(idx_file *images, idx_file *labels, size_t *n, size_t *features,
                         size_t *size)
{
    size_t n_labels = 0;
    int rc = images_header(images, n, features, size);
    if (rc == BPL_OK)
        rc = labels_header(labels, &n_labels);
    if (rc == BPL_OK && *n != n_labels)
        rc = bpl__fail(BPL_ERR_FORMAT, "%s: '%s' holds %zu images but '%s' %zu labels",
                       images->caller, images->path, *n, labels->path, n_labels);
    if (rc == BPL_OK)
        rc = check_raw_length(images, *size, "pixels");
    if (rc == BPL_OK)
        rc = check_raw_length(labels, *n, "labels");
    return rc;
}

static int read_labels(idx_file *f, size_t n, size_t n_classes, uint8_t **labels)
{
    int rc = read_payload(f, n, labels, "labels");
    for (size_t i = 0; rc == BPL_OK && i < n; i++)
        if ((*labels)[i] >= n_classes) {
            rc = bpl__fail(BPL_ERR_FORMAT, "%s: '%s': label %u of example %zu is outside "
                           "0..%zu",
                           f->caller, f->path, (*labels)[i], i, n_classes - 1);
            bpl__free(*labels);
            *labels = NULL;
        }
    return rc;
}

/* Both files are open: check, then read the labels, then the pixels. */
static int load_pair(idx_file *images, idx_file *labels, size_t n_classes, bpl_dataset *ds)
{
    size_t size = 0;
    int rc = check_headers(images, labels, &ds->n, &ds->n_features, &size);
    if (rc == BPL_OK)
        rc = read_labels(labels, ds->n, n_classes, &ds->labels);
    if (rc == BPL_OK)
        rc = read_payload(images, size, &ds->pixels, "pixels");
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
    bpl_dataset *ds = bpl__calloc(1, sizeof *ds);
    if (!ds)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    idx_file images = {.fd = -1}, labels = {.fd = -1};
    int rc = idx_open(&images, images_path, caller);
    if (rc == BPL_OK)
        rc = idx_open(&labels, labels_path, caller);
    if (rc == BPL_OK)
        rc = load_pair(&images, &labels, n_classes, ds);
    idx_close(&images);
    idx_close(&labels);
    if (rc != BPL_OK) {
        bpl_dataset_destroy(ds);
        return rc;
    }
    ds->n_targets = n_classes;
    ds->scale = 1.0f / 255.0f;
    *out = ds;
    return BPL_OK;
}

/* Anything under the name counts (a FIFO or directory is then refused by
 * the load, with a clearer message than "missing"); nothing is opened. */
static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
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
