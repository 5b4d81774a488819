/*
 * model_io.c - saving and loading nets.
 *
 * File layout (all integers and floats little-endian):
 *
 *   0  magic "BPLNET\r\n" (the CR LF catches text-mode mangling)
 *   8  u32 format version (1)       12  u32 flags (0)
 *  16  u64 payload size             24  u32 CRC-32 of the payload
 *  28  u32 CRC-32 of bytes 0..27    32  payload
 *
 * Payload: u64 inputs, u64 seed, u64 generator state[4], u32 loss,
 * u32 layers, u64 optimiser steps[2]; per layer u64 units, u32 activation,
 * u32 initialiser, u32 tensors; per tensor str name, i32 group, u64 rows,
 * u64 cols, u8 flags (bit 0: optimiser moments follow, bit 1: frozen),
 * f32 data[rows*cols] (then m and v if bit 0); then u32 has_rule and, if
 * set, str name, u32 count and per
 * hyperparameter str name, f64 value.  A str is u32 length + bytes.
 *
 * Saving writes a temporary file next to the target, flushes it to disk and
 * renames it over the target, so the target is never half-written.  The
 * target is the path, or the file its symbolic links lead to; anything but
 * a regular file there is refused (docs/reliability.md, "Saving over
 * special paths").
 */
#include "bpl_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FORMAT_VERSION 1
#define HEADER_SIZE 32
#define MAX_FILE_SIZE ((uint64_t)1 << 36)
/* The smallest saved hyperparameter: a one-character name and its value. */
#define MIN_PARAM_BYTES (4 + 1 + 8)
static const unsigned char magic[8] = {'B', 'P', 'L', 'N', 'E', 'T', '\r', '\n'};

/* A second moment (RMSprop, Adam) is a running mean of squares: the step
 * takes its square root. */
static int all_nonnegative(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0.0f)
            return 0;
    return 1;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct writer {
    unsigned char *data;
    size_t size, cap;
    int failed;
} writer;

static void put_bytes(writer *w, const void *src, size_t n)
{
    if (w->failed)
        return;
    if (w->size + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->size + n)
            cap *= 2;
        unsigned char *grown = bpl__realloc(w->data, cap);
        if (!grown) {
            w->failed = 1;
            return;
        }
        w->data = grown;
        w->cap = cap;
    }
    memcpy(w->data + w->size, src, n);
    w->size += n;
}

static void put_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(w, b, 8);
}

static void put_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put_bytes(w, b, 4);
}

static void put_f64(writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(w, bits);
}

static void put_floats(writer *w, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        put_u32(w, bits);
    }
}

static void put_str(writer *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put_bytes(w, s, n);
}

static void put_tensor(writer *w, const bpl__tensor *t)
{
    size_t n = t->rows * t->cols;
    put_str(w, t->name);
    put_u32(w, (uint32_t)(int32_t)t->group);
    put_u64(w, t->rows);
    put_u64(w, t->cols);
    unsigned char flags = (unsigned char)((t->m != NULL) | (t->frozen << 1));
    put_bytes(w, &flags, 1);
    put_floats(w, t->data, n);
    if (t->m) {
        put_floats(w, t->m, n);
        put_floats(w, t->v, n);
    }
}

static void put_rule(writer *w, const bpl_net *net)
{
    const bpl_rule *rule = net->rule;
    if (rule) {
        put_u32(w, 1);
        put_str(w, rule->name);
        put_u32(w, (uint32_t)rule->n_params);
        for (size_t i = 0; i < rule->n_params; i++) {
            put_str(w, rule->params[i].name);
            put_f64(w, rule->params[i].value);
        }
    } else if (net->pending_rule[0]) {
        put_u32(w, 1);
        put_str(w, net->pending_rule);
        put_u32(w, (uint32_t)net->n_pending_params);
        for (size_t i = 0; i < net->n_pending_params; i++) {
            put_str(w, net->pending_params[i].name);
            put_f64(w, net->pending_params[i].value);
        }
    } else {
        put_u32(w, 0);
    }
}

static void put_payload(writer *w, const bpl_net *net)
{
    put_u64(w, net->n_inputs);
    put_u64(w, net->seed);
    for (int i = 0; i < 4; i++)
        put_u64(w, net->rng.s[i]);
    put_u32(w, (uint32_t)net->loss);
    put_u32(w, (uint32_t)net->n_layers);
    for (int g = 0; g < BPL__N_GROUPS; g++)
        put_u64(w, net->optim[g].steps);
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        put_u64(w, layer->size);
        put_u32(w, (uint32_t)layer->activation);
        put_u32(w, (uint32_t)layer->init);
        put_u32(w, (uint32_t)layer->n_tensors);
        for (size_t t = 0; t < layer->n_tensors; t++)
            put_tensor(w, &layer->tensors[t]);
    }
    put_rule(w, net);
}

static void store_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void store_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void make_header(unsigned char *h, const unsigned char *payload, size_t size)
{
    memcpy(h, magic, sizeof magic);
    store_u32(h + 8, FORMAT_VERSION);
    store_u32(h + 12, 0);
    store_u64(h + 16, size);
    store_u32(h + 24, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), payload, size));
    store_u32(h + 28, (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, 28));
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the file a save replaces ---------------------------------------------- */

#define PATH_BYTES 4096
#define MAX_LINKS 40 /* as many as Linux follows in one path */
#define TEMP_NAME_MAX 200 /* bytes of the target's name kept in a temporary's */

/* The length of the directory part of `path`, its trailing slash included
 * (0 for a bare name). */
static size_t directory_length(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + 1 : 0;
}

/* Replace `target` (a symbolic link) by what it points to, relative to the
 * link's directory. */
static int follow_link(const char *path, char *target)
{
    static const char caller[] = "bpl_net_save";
    char link[PATH_BYTES];
    ssize_t n = readlink(target, link, sizeof link);
    if (n < 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot read the link '%s': %s", caller, path,
                         target, strerror(errno));
    size_t dir = link[0] == '/' ? 0 : directory_length(target);
    if ((size_t)n >= sizeof link || dir + (size_t)n >= PATH_BYTES)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': the path its links lead to is too long",
                         caller, path);
    memcpy(target + dir, link, (size_t)n);
    target[dir + (size_t)n] = '\0';
    return BPL_OK;
}

/* The file a save to `path` replaces: `path` itself, or the end of its
 * chain of symbolic links.  It must be a regular file or not exist yet (a
 * dangling link's target is created, as open() would). */
static int resolve_target(const char *path, char *target)
{
    static const char caller[] = "bpl_net_save";
    snprintf(target, PATH_BYTES, "%s", path);
    for (int links = 0;; links++) {
        struct stat st;
        if (lstat(target, &st) != 0)
            return errno == ENOENT ? BPL_OK
                                   : bpl__fail(BPL_ERR_IO, "%s: '%s': %s", caller, path,
                                               strerror(errno));
        if (S_ISREG(st.st_mode))
            return BPL_OK;
        if (!S_ISLNK(st.st_mode))
            return bpl__fail(BPL_ERR_IO, "%s: '%s'%s%s%s: not a regular file (%s); nothing "
                             "was written",
                             caller, path, links ? " (links to '" : "", links ? target : "",
                             links ? "')" : "", bpl__file_kind((unsigned)st.st_mode));
        if (links == MAX_LINKS)
            return bpl__fail(BPL_ERR_IO, "%s: '%s': too many levels of symbolic links (a "
                             "loop?); nothing was written",
                             caller, path);
        int rc = follow_link(path, target);
        if (rc != BPL_OK)
            return rc;
    }
}

/* 32 bits that differ between calls, threads and processes; O_EXCL makes a
 * clash harmless. */
static uint32_t temporary_suffix(unsigned attempt, const void *salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
                 (uint64_t)(uintptr_t)salt ^ (uint64_t)attempt << 48 ^
                 (uint64_t)getpid() << 16;
    x ^= x >> 30; /* splitmix64's finaliser */
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (uint32_t)x;
}

/* Create a fresh temporary file beside `target`, named
 * ".<name>.bpl-tmp.<pid>.<8 hex digits>" (the name cut to TEMP_NAME_MAX
 * bytes), so that one left by a killed save is recognisable. */
static int open_temporary(const char *target, char *tmp, size_t size)
{
    size_t dir = directory_length(target), name = strlen(target + dir);
    int kept = (int)(name < TEMP_NAME_MAX ? name : TEMP_NAME_MAX);
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, size, "%.*s.%.*s.bpl-tmp.%ld.%08lx", (int)dir, target, kept,
                 target + dir, (long)getpid(),
                 (unsigned long)temporary_suffix(attempt, tmp));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static void sync_directory(const char *target)
{
    char dir[PATH_BYTES];
    size_t n = directory_length(target);
    if (n == 0)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(n > 1 ? n - 1 : n), target);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* durability of the rename; a failure here is not fatal */
        close(fd);
    }
}

static int write_atomically(const char *path, const unsigned char *data, size_t n)
{
    static const char caller[] = "bpl_net_save";
    char target[PATH_BYTES], tmp[PATH_BYTES + TEMP_NAME_MAX + 64];
    if (strlen(path) > 4000)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: path too long", caller);
    int rc = resolve_target(path, target);
    if (rc != BPL_OK)
        return rc;
    int fd = open_temporary(target, tmp, sizeof tmp);
    if (fd < 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot create a temporary file: %s", caller,
                         path, strerror(errno));
    const char *step = NULL;
    if (write_all(fd, data, n) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "flush";
    int saved_errno = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved_errno = errno;
    }
    if (!step && rename(tmp, target) != 0) {
        step = "rename";
        saved_errno = errno;
    }
    if (step) {
        unlink(tmp);
        return bpl__fail(BPL_ERR_IO, "%s: '%s': %s failed: %s (the previous file, if any, "
                         "is untouched)",
                         caller, path, step, strerror(saved_errno));
    }
    sync_directory(target);
    return BPL_OK;
}

/* What bpl_net_save writes, bpl_net_load must read: values it would refuse
 * (written through a borrowed pointer, bpl_layer_tensor) are refused here,
 * before a file exists. */
static const char *unsaveable(const bpl__tensor *t)
{
    size_t n = t->rows * t->cols;
    if (!bpl__all_finite(t->data, n))
        return "holds NaN or Inf";
    if (t->m && (!bpl__all_finite(t->m, n) || !bpl__all_finite(t->v, n)))
        return "has optimiser moments of NaN or Inf";
    if (t->m && !all_nonnegative(t->v, n))
        return "has a negative second moment";
    return NULL;
}

static int check_saveable(const bpl_net *net)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        for (size_t i = 0; i < layer->n_tensors; i++) {
            const bpl__tensor *t = &layer->tensors[i];
            const char *what = unsaveable(t);
            if (what)
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "bpl_net_save: tensor '%s' of layer %zu %s; not saved (a "
                                 "model file may not hold it)",
                                 t->name, l, what);
        }
    }
    return BPL_OK;
}

BPL_API int bpl_net_save(const bpl_net *net, const char *path)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(path != NULL && path[0] != '\0');
    if (net->phase != BPL_PHASE_IDLE)
        return bpl__fail(BPL_ERR_STATE, "bpl_net_save: not allowed inside a step");
    int rc = check_saveable(net);
    if (rc != BPL_OK)
        return rc;
    writer w = {0};
    unsigned char header[HEADER_SIZE] = {0};
    put_bytes(&w, header, sizeof header); /* filled in below */
    put_payload(&w, net);
    if (w.failed) {
        bpl__free(w.data);
        return bpl__fail(BPL_ERR_NOMEM, "bpl_net_save: out of memory");
    }
    make_header(w.data, w.data + HEADER_SIZE, w.size - HEADER_SIZE);
    rc = write_atomically(path, w.data, w.size);
    bpl__free(w.data);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
    const char *path;
} reader;

static int truncated(const reader *r, const char *what)
{
    return bpl__fail(BPL_ERR_FORMAT, "bpl_net_load: '%s': truncated while reading %s",
                     r->path, what);
}

static int get_bytes(reader *r, void *dst, size_t n, const char *what)
{
    if (r->left < n)
        return truncated(r, what);
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return BPL_OK;
}

static uint64_t load_u64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static uint32_t load_u32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
           (uint32_t)b[3] << 24;
}

static int get_u64(reader *r, uint64_t *v, const char *what)
{
    unsigned char b[8] = {0};
    int rc = get_bytes(r, b, 8, what);
    if (rc == BPL_OK)
        *v = load_u64(b);
    return rc;
}

static int get_u32(reader *r, uint32_t *v, const char *what)
{
    unsigned char b[4] = {0};
    int rc = get_bytes(r, b, 4, what);
    if (rc == BPL_OK)
        *v = load_u32(b);
    return rc;
}

static int get_f64(reader *r, double *v, const char *what)
{
    uint64_t bits;
    int rc = get_u64(r, &bits, what);
    if (rc == BPL_OK)
        memcpy(v, &bits, sizeof *v);
    return rc;
}

static int get_str(reader *r, char *dst, size_t size, const char *what)
{
    uint32_t n;
    int rc = get_u32(r, &n, what);
    if (rc != BPL_OK)
        return rc;
    if (n == 0 || n >= size)
        return bpl__fail(BPL_ERR_FORMAT, "bpl_net_load: '%s': %s has a bad length %u",
                         r->path, what, n);
    rc = get_bytes(r, dst, n, what);
    if (rc != BPL_OK)
        return rc;
    dst[n] = '\0';
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] > 0x7e)
            return bpl__fail(BPL_ERR_FORMAT, "bpl_net_load: '%s': %s is not printable text",
                             r->path, what);
    return BPL_OK;
}

static int get_floats(reader *r, float *dst, size_t n, const char *what)
{
    if (r->left / 4 < n)
        return truncated(r, what);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = load_u32(r->p + 4 * i);
        memcpy(&dst[i], &bits, sizeof bits);
    }
    r->p += 4 * n;
    r->left -= 4 * n;
    if (!bpl__all_finite(dst, n))
        return bpl__fail(BPL_ERR_FORMAT, "bpl_net_load: '%s': %s holds NaN or Inf",
                         r->path, what);
    return BPL_OK;
}

static int bad(const reader *r, const char *what)
{
    return bpl__fail(BPL_ERR_FORMAT, "bpl_net_load: '%s': %s", r->path, what);
}

/* Read one tensor into the layer: weight and bias exist already, others are
 * kept pending until their rule is attached. */
static int load_tensor(reader *r, bpl_layer *layer, unsigned *standard_seen)
{
    char name[BPL__NAME_MAX];
    uint32_t group_bits;
    uint64_t rows, cols;
    unsigned char flags = 0;
    int rc = get_str(r, name, sizeof name, "a tensor name");
    if (rc == BPL_OK) rc = get_u32(r, &group_bits, "a tensor group");
    if (rc == BPL_OK) rc = get_u64(r, &rows, "a tensor shape");
    if (rc == BPL_OK) rc = get_u64(r, &cols, "a tensor shape");
    if (rc == BPL_OK) rc = get_bytes(r, &flags, 1, "a tensor");
    if (rc != BPL_OK)
        return rc;
    int group = (int)(int32_t)group_bits, has_moments = flags & 1, frozen = (flags >> 1) & 1;
    if (group < BPL_GROUP_NONE || group >= BPL__N_GROUPS || flags > 3 ||
        (group == BPL_GROUP_NONE && flags != 0))
        return bad(r, "a tensor has an invalid group");
    if (rows == 0 || cols == 0 || rows > BPL__MAX_UNITS || cols > BPL__MAX_UNITS ||
        rows * cols > r->left / 4)
        return bad(r, "a tensor has an impossible shape");
    bpl__tensor *t = bpl__layer_find_tensor(layer, name);
    int standard = strcmp(name, "weight") == 0 || strcmp(name, "bias") == 0;
    if (standard) {
        unsigned bit = strcmp(name, "weight") == 0 ? 1u : 2u;
        if (*standard_seen & bit)
            return bad(r, "a layer has two tensors of the same name");
        *standard_seen |= bit;
        if (t->rows != rows || t->cols != cols || group != BPL_GROUP_FORWARD)
            return bad(r, "a weight or bias does not fit its layer");
    } else {
        if (t)
            return bad(r, "a layer has two tensors of the same name");
        rc = bpl__layer_new_tensor(layer, name, (size_t)rows, (size_t)cols, group, &t);
        if (rc != BPL_OK) {
            bpl__error_prefix("bpl_net_load");
            return rc;
        }
        t->pending = 1;
        t->from_rule = 1;
    }
    t->frozen = frozen;
    size_t n = (size_t)(rows * cols);
    rc = get_floats(r, t->data, n, "tensor values");
    if (rc == BPL_OK && has_moments && t->m) {
        rc = get_floats(r, t->m, n, "optimiser state");
        if (rc == BPL_OK)
            rc = get_floats(r, t->v, n, "optimiser state");
        if (rc == BPL_OK && !all_nonnegative(t->v, n))
            rc = bpl__fail(BPL_ERR_FORMAT,
                           "bpl_net_load: '%s': the optimiser state of tensor '%s' holds a "
                           "negative second moment",
                           r->path, name);
    }
    return rc;
}

static int load_layer(reader *r, bpl_net *net)
{
    uint64_t units;
    uint32_t activation, init, n_tensors;
    int rc = get_u64(r, &units, "a layer");
    if (rc == BPL_OK) rc = get_u32(r, &activation, "a layer");
    if (rc == BPL_OK) rc = get_u32(r, &init, "a layer");
    if (rc == BPL_OK) rc = get_u32(r, &n_tensors, "a layer");
    if (rc != BPL_OK)
        return rc;
    if (units == 0 || units > BPL__MAX_UNITS || !bpl__activation_valid((int)activation) ||
        !bpl__init_valid((int)init) || n_tensors < 2 || n_tensors > BPL__MAX_TENSORS)
        return bad(r, "a layer has invalid settings");
    /* Its weight and bias are stored in what is left of the file: a header
     * claiming more is rejected before anything is allocated. */
    size_t inputs = net->n_layers ? net->layers[net->n_layers - 1]->size : net->n_inputs;
    if ((inputs + 1) * units > r->left / 4)
        return bad(r, "a layer is larger than the rest of the file");
    rc = bpl__net_append_layer(net, &bpl__dense_kind, (size_t)units, (int)activation, (int)init, 0);
    if (rc != BPL_OK) {
        bpl__error_prefix("bpl_net_load");
        return rc;
    }
    bpl_layer *layer = net->layers[net->n_layers - 1];
    unsigned standard_seen = 0;
    for (uint32_t t = 0; rc == BPL_OK && t < n_tensors; t++)
        rc = load_tensor(r, layer, &standard_seen);
    if (rc == BPL_OK && standard_seen != 3)
        rc = bad(r, "a layer lacks its weight or bias");
    return rc;
}

static int load_rule(reader *r, bpl_net *net)
{
    uint32_t has_rule, n_params;
    int rc = get_u32(r, &has_rule, "the rule");
    if (rc != BPL_OK || has_rule == 0)
        return rc;
    if (has_rule != 1)
        return bad(r, "the rule flag is invalid");
    rc = get_str(r, net->pending_rule, sizeof net->pending_rule, "the rule name");
    if (rc == BPL_OK) rc = get_u32(r, &n_params, "the rule");
    if (rc != BPL_OK)
        return rc;
    if (n_params > r->left / MIN_PARAM_BYTES)
        return bad(r, "the rule has an impossible number of hyperparameters");
    net->pending_params = bpl__calloc(n_params ? n_params : 1, sizeof *net->pending_params);
    if (!net->pending_params)
        return bpl__fail(BPL_ERR_NOMEM, "bpl_net_load: out of memory");
    for (uint32_t i = 0; rc == BPL_OK && i < n_params; i++) {
        bpl__saved_param *p = &net->pending_params[i];
        rc = get_str(r, p->name, sizeof p->name, "a hyperparameter name");
        if (rc == BPL_OK) rc = get_f64(r, &p->value, "a hyperparameter");
        if (rc == BPL_OK && !isfinite(p->value))
            rc = bad(r, "a hyperparameter is not finite");
        net->n_pending_params = i + 1;
    }
    return rc;
}

/* Attach the saved rule if it is built in; it takes its tensors and values.
 * It may not create any: every tensor it needs must be in the file, which
 * keeps what a load allocates within a few times the file's size. */
static int attach_saved_rule(bpl_net *net, const char *path)
{
    if (!net->pending_rule[0])
        return BPL_OK;
    int builtin = 0;
    for (size_t i = 0; i < bpl__n_builtin_rules; i++)
        builtin |= strcmp(bpl__builtin_rules[i].vtable->name, net->pending_rule) == 0;
    if (!builtin)
        return BPL_OK; /* stays pending for bpl_net_set_rule */
    bpl_rule *rule;
    int rc = bpl_rule_create_builtin(&rule, net->pending_rule);
    if (rc == BPL_OK) {
        net->restoring = 1;
        rc = bpl_net_set_rule(net, rule);
        net->restoring = 0;
        if (rc != BPL_OK)
            bpl_rule_destroy(rule);
    }
    if (rc != BPL_OK) {
        int status = rc == BPL_ERR_NOMEM ? rc : BPL_ERR_FORMAT;
        char prefix[4200];
        snprintf(prefix, sizeof prefix, "bpl_net_load: '%s': restoring its rule", path);
        bpl__error_prefix(prefix);
        return status;
    }
    return BPL_OK;
}

static int parse_payload(reader *r, bpl_net **out)
{
    uint64_t n_inputs, seed, state[4], steps[BPL__N_GROUPS];
    uint32_t loss, n_layers;
    int rc = get_u64(r, &n_inputs, "the net");
    if (rc == BPL_OK) rc = get_u64(r, &seed, "the net");
    for (int i = 0; rc == BPL_OK && i < 4; i++)
        rc = get_u64(r, &state[i], "the generator state");
    if (rc == BPL_OK) rc = get_u32(r, &loss, "the net");
    if (rc == BPL_OK) rc = get_u32(r, &n_layers, "the net");
    for (int g = 0; rc == BPL_OK && g < BPL__N_GROUPS; g++)
        rc = get_u64(r, &steps[g], "the optimiser steps");
    if (rc != BPL_OK)
        return rc;
    if (n_inputs == 0 || n_inputs > BPL__MAX_UNITS || !bpl__loss_valid((int)loss) ||
        n_layers > BPL__MAX_LAYERS)
        return bad(r, "the net has invalid settings");
    /* xoshiro256** stuck at zero returns 0 for ever: no seed leads there. */
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        return bad(r, "the random generator state is all zero");
    for (int g = 0; g < BPL__N_GROUPS; g++)
        if (steps[g] >= BPL__MAX_OPTIM_STEPS)
            return bad(r, "an optimiser step count is beyond 2^53");
    bpl_net *net;
    rc = bpl_net_create(&net, (size_t)n_inputs, seed);
    if (rc != BPL_OK) {
        bpl__error_prefix("bpl_net_load");
        return rc;
    }
    net->loss = (int)loss;
    for (uint32_t l = 0; rc == BPL_OK && l < n_layers; l++)
        rc = load_layer(r, net);
    if (rc == BPL_OK)
        rc = load_rule(r, net);
    if (rc == BPL_OK && r->left != 0)
        rc = bad(r, "unexpected bytes after the model");
    if (rc == BPL_OK)
        rc = attach_saved_rule(net, r->path);
    if (rc != BPL_OK) {
        bpl_net_destroy(net);
        return rc;
    }
    memcpy(net->rng.s, state, sizeof state);
    for (int g = 0; g < BPL__N_GROUPS; g++)
        net->optim[g].steps = steps[g];
    *out = net;
    return BPL_OK;
}

static int read_file(const char *path, unsigned char **data, size_t *size)
{
    static const char caller[] = "bpl_net_load";
    int fd;
    uint64_t file_size;
    int rc = bpl__open_regular(path, caller, &fd, &file_size);
    if (rc != BPL_OK)
        return rc;
    if (file_size > MAX_FILE_SIZE) {
        close(fd);
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': too large to be a model", caller, path);
    }
    size_t n = (size_t)file_size;
    unsigned char *buf = bpl__malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    }
    size_t got;
    int failed = bpl__read_fully(fd, buf, n, &got) != 0;
    int saved_errno = errno;
    close(fd);
    if (failed || got != n) {
        bpl__free(buf);
        return bpl__fail(BPL_ERR_IO, "%s: '%s': read error: %s", caller, path,
                         failed ? strerror(saved_errno) : "the file shrank while read");
    }
    *data = buf;
    *size = n;
    return BPL_OK;
}

static int check_header(const unsigned char *h, size_t size, const char *path)
{
    static const char caller[] = "bpl_net_load";
    if (size < HEADER_SIZE || memcmp(h, magic, 6) != 0)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': not a libbioplaus model (bad magic)",
                         caller, path);
    if (memcmp(h, magic, sizeof magic) != 0)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': line endings were altered (opened in text mode?)",
                         caller, path);
    if (load_u32(h + 28) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, 28))
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': header checksum mismatch", caller,
                         path);
    uint32_t version = load_u32(h + 8);
    if (version != FORMAT_VERSION || load_u32(h + 12) != 0)
        return bpl__fail(BPL_ERR_VERSION,
                         "%s: '%s': format version %u (flags 0x%x) not supported; this "
                         "library reads version %d",
                         caller, path, version, load_u32(h + 12), FORMAT_VERSION);
    uint64_t payload = load_u64(h + 16);
    if (payload != size - HEADER_SIZE)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': truncated or extended: the header announces %llu "
                         "payload bytes, the file has %zu",
                         caller, path, (unsigned long long)payload, size - HEADER_SIZE);
    if (load_u32(h + 24) !=
        (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), h + HEADER_SIZE, (size_t)payload))
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': checksum mismatch: the file is corrupt",
                         caller, path);
    return BPL_OK;
}

BPL_API int bpl_net_load(bpl_net **out, const char *path)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(path != NULL);
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = read_file(path, &data, &size);
    if (rc != BPL_OK)
        return rc;
    rc = check_header(data, size, path);
    if (rc == BPL_OK) {
        reader r = {data + HEADER_SIZE, size - HEADER_SIZE, path};
        rc = parse_payload(&r, out);
    }
    bpl__free(data);
    return rc;
}
