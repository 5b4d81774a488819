/*
 * model_io.c - a net as the bytes of a model file, and back: what
 * bpl_net_save and bpl_net_save_to_buffer write, what bpl_net_load and
 * bpl_net_load_from_buffer read.
 *
 * Layout (all integers and floats little-endian):
 *
 *   0  magic "BPLNET\r\n" (the CR LF catches text-mode mangling)
 *   8  u32 format version (2)       12  u32 flags (0)
 *  16  u64 payload size             24  u32 CRC-32 of the payload
 *  28  u32 CRC-32 of bytes 0..27    32  payload
 *
 * Payload of version 2: shape input, u64 seed, u64 generator state[4],
 * u32 loss, u32 layers, u64 optimiser steps[2]; per layer str kind
 * ("dense", "conv2d", ...), for every kind but dense (bpl__kind's
 * ignores_params) u64 units, u64 kernel_h, u64 kernel_w, u64 stride,
 * u64 pad (what bpl__net_append_layer was given: conv2d's units are its
 * output channels), then shape output, u32 activation, u32 initialiser,
 * u32 tensors; per tensor str name, i32 group, u64 rows, u64 cols, u8 flags
 * (bit 0: optimiser moments follow, bit 1: frozen), f32 data[rows*cols]
 * (then m and v if bit 0); then u32 has_rule and, if set, str name, u32
 * count and per hyperparameter str name, f64 value, then u32 has_state
 * and, if set, u64 size and the bytes of the rule's save_state hook.  A
 * str is u32 length + bytes; a shape is u32 rank (1..8) + u64
 * extents[rank] (a dense layer's is [units], a conv2d layer's
 * [C_out, H_out, W_out], the input's [inputs] or its C x H x W).
 *
 * A layer's tensors are the kind's parameters (named by the kind: "weight"
 * and "bias", in the forward group; none for a kind without, such as
 * pooling) and its rule's, in any order.  The loader rebuilds each layer
 * through bpl__net_append_layer from its kind, width and params, after
 * checking with the kind's pure functions that the stored shape is the one
 * they give and that the file holds the parameters' values.  Files with
 * dense layers only are the same bytes as before conv2d layers existed.
 *
 * Version 1 (still read) had u64 inputs where the input shape is, a layer
 * was u64 units, u32 activation, u32 initialiser, u32 tensors, and a rule
 * had no state: the built-in rules kept their step counts in tensors of
 * layer 0 ("schedule_steps", "microcircuit_steps",
 * "segregated_initialised"), which the loader turns into their state.
 */
#include "bpl_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define FORMAT_VERSION 2
#define HEADER_SIZE 32
#define MAX_RANK 8
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

static void put_shape(writer *w, const size_t *extents, uint32_t rank)
{
    put_u32(w, rank);
    for (uint32_t i = 0; i < rank; i++)
        put_u64(w, extents[i]);
}

/* What rebuilds a layer of a kind with params: its width and window. */
static void put_kind_params(writer *w, const bpl_layer *layer)
{
    put_u64(w, layer->units);
    put_u64(w, layer->params.kernel_h);
    put_u64(w, layer->params.kernel_w);
    put_u64(w, layer->params.stride);
    put_u64(w, layer->params.pad);
}

static void put_state(writer *w, const unsigned char *state, size_t size, int has_state)
{
    put_u32(w, (uint32_t)has_state);
    if (has_state) {
        put_u64(w, size);
        put_bytes(w, state, size);
    }
}

/* The rule attached, or the one a load left pending, with its state. */
static void put_rule(writer *w, const bpl_net *net, const unsigned char *state, size_t size)
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
        put_state(w, state, size, rule->vt.save_state != NULL);
    } else if (net->pending_rule[0]) {
        put_u32(w, 1);
        put_str(w, net->pending_rule);
        put_u32(w, (uint32_t)net->n_pending_params);
        for (size_t i = 0; i < net->n_pending_params; i++) {
            put_str(w, net->pending_params[i].name);
            put_f64(w, net->pending_params[i].value);
        }
        put_state(w, net->pending_state, net->pending_state_size, net->has_pending_state);
    } else {
        put_u32(w, 0);
    }
}

static void put_payload(writer *w, const bpl_net *net, const unsigned char *state,
                        size_t state_size)
{
    put_shape(w, net->in_shape, (uint32_t)net->in_ndim);
    put_u64(w, net->seed);
    for (int i = 0; i < 4; i++)
        put_u64(w, net->rng.s[i]);
    put_u32(w, (uint32_t)net->loss);
    put_u32(w, (uint32_t)net->n_layers);
    for (int g = 0; g < BPL__N_GROUPS; g++)
        put_u64(w, net->optim[g].steps);
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        put_str(w, layer->kind->name);
        if (!layer->kind->ignores_params)
            put_kind_params(w, layer);
        put_shape(w, layer->shape, (uint32_t)layer->ndim);
        put_u32(w, (uint32_t)layer->activation);
        put_u32(w, (uint32_t)layer->init);
        put_u32(w, (uint32_t)layer->n_tensors);
        for (size_t t = 0; t < layer->n_tensors; t++)
            put_tensor(w, &layer->tensors[t]);
    }
    put_rule(w, net, state, state_size);
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

static int check_saveable(const bpl_net *net, const char *caller)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        /* The loader rebuilds the kinds it knows by name (get_layer_head):
         * a file with another could not be loaded. */
        if (bpl__kind_find(layer->kind->name) != layer->kind) {
            char known[256];
            bpl__kind_names(known, sizeof known);
            return bpl__fail(BPL_ERR_UNSUPPORTED,
                             "%s: layer %zu is of kind '%s', which the model file format "
                             "does not store (it stores %s); not saved",
                             caller, l, layer->kind->name, known);
        }
        for (size_t i = 0; i < layer->n_tensors; i++) {
            const bpl__tensor *t = &layer->tensors[i];
            const char *what = unsaveable(t);
            if (what)
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "%s: tensor '%s' of layer %zu %s; not saved (a model "
                                 "file may not hold it)",
                                 caller, t->name, l, what);
        }
    }
    return BPL_OK;
}

int bpl__model_encode(const bpl_net *net, const char *caller, unsigned char **data_out,
                      size_t *size_out)
{
    *data_out = NULL;
    *size_out = 0;
    if (net->phase != BPL_PHASE_IDLE)
        return bpl__fail(BPL_ERR_STATE, "%s: not allowed inside a step", caller);
    int rc = check_saveable(net, caller);
    if (rc != BPL_OK)
        return rc;
    unsigned char *state = NULL;
    size_t state_size = 0;
    if (net->rule && (rc = bpl__rule_save_state(net->rule, &state, &state_size)) != BPL_OK) {
        bpl__error_prefix(caller);
        return rc;
    }
    writer w = {0};
    unsigned char header[HEADER_SIZE] = {0};
    put_bytes(&w, header, sizeof header); /* filled in below */
    put_payload(&w, net, state, state_size);
    bpl__free(state);
    if (w.failed || w.size > BPL__MAX_MODEL_BYTES) {
        bpl__free(w.data);
        return w.failed ? bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller)
                        : bpl__fail(BPL_ERR_OVERFLOW,
                                    "%s: the net takes %zu bytes, more than a model may",
                                    caller, w.size);
    }
    make_header(w.data, w.data + HEADER_SIZE, w.size - HEADER_SIZE);
    *data_out = w.data;
    *size_out = w.size;
    return BPL_OK;
}

/* ---- reading -------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
    const char *caller; /* the public function, for messages */
    const char *source; /* the path, or "(buffer)" */
    uint32_t version;
} reader;

static int bad(const reader *r, const char *what)
{
    return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s", r->caller, r->source, what);
}

static int truncated(const reader *r, const char *what)
{
    return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': truncated while reading %s", r->caller,
                     r->source, what);
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
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s has a bad length %u", r->caller,
                         r->source, what, n);
    rc = get_bytes(r, dst, n, what);
    if (rc != BPL_OK)
        return rc;
    dst[n] = '\0';
    for (uint32_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] > 0x7e)
            return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s is not printable text",
                             r->caller, r->source, what);
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
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s holds NaN or Inf", r->caller,
                         r->source, what);
    return BPL_OK;
}

/* A version-2 shape: rank 1..BPL__MAX_DIMS, every extent 1..BPL__MAX_UNITS
 * and their product too (a rank up to MAX_RANK is read, so that a larger
 * one is reported as such). */
static int get_shape(reader *r, size_t *extents, size_t *rank_out, size_t *size_out,
                     const char *what)
{
    uint32_t rank;
    int rc = get_u32(r, &rank, what);
    if (rc != BPL_OK)
        return rc;
    if (rank == 0 || rank > MAX_RANK)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s has an invalid rank %u", r->caller,
                         r->source, what, rank);
    uint64_t read[MAX_RANK], size = 1;
    for (uint32_t i = 0; rc == BPL_OK && i < rank; i++)
        rc = get_u64(r, &read[i], what);
    if (rc != BPL_OK)
        return rc;
    if (rank > BPL__MAX_DIMS)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': %s has rank %u; this library holds at most %d dims",
                         r->caller, r->source, what, rank, BPL__MAX_DIMS);
    for (uint32_t i = 0; i < rank; i++) {
        if (read[i] == 0 || read[i] > BPL__MAX_UNITS || size * read[i] > BPL__MAX_UNITS)
            return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s has an impossible extent",
                             r->caller, r->source, what);
        size *= read[i];
        extents[i] = (size_t)read[i];
    }
    *rank_out = rank;
    *size_out = (size_t)size;
    return BPL_OK;
}

/* Which of the kind's parameter tensors `name` is: bit 1 its weight, bit 2
 * its bias, 0 neither (a rule's tensor, or a kind without parameters). */
static unsigned standard_bit(const bpl__kind *kind, const char *name)
{
    if (kind->weight && strcmp(name, kind->weight) == 0)
        return 1u;
    if (kind->bias && strcmp(name, kind->bias) == 0)
        return 2u;
    return 0u;
}

static unsigned standard_mask(const bpl__kind *kind)
{
    return (kind->weight ? 1u : 0u) | (kind->bias ? 2u : 0u);
}

/* Read one tensor into the layer: the kind's parameters exist already,
 * others are kept pending until their rule is attached. */
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
    unsigned bit = standard_bit(layer->kind, name);
    if (bit) {
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
            bpl__error_prefix(r->caller);
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
                           "%s: '%s': the optimiser state of tensor '%s' holds a negative "
                           "second moment",
                           r->caller, r->source, name);
    }
    return rc;
}

/* A layer's head: its kind, width and params, and the output shape it
 * stored (version 1 knew dense layers only, and stored their units). */
typedef struct layer_head {
    const bpl__kind *kind;
    size_t shape[BPL__MAX_DIMS], ndim;
    uint64_t units;
    bpl__kind_params params;
} layer_head;

/* A u64 of the file as a size_t, refused if this machine's cannot hold it. */
static int get_size(reader *r, size_t *v, const char *what)
{
    uint64_t read;
    int rc = get_u64(r, &read, what);
    if (rc != BPL_OK)
        return rc;
    if ((uint64_t)(size_t)read != read)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': %s does not fit a size_t here",
                         r->caller, r->source, what);
    *v = (size_t)read;
    return BPL_OK;
}

/* The width and params of a kind that takes them; whether they fit the
 * kind is its output_shape's to say (check_layer_geometry). */
static int get_kind_params(reader *r, layer_head *h)
{
    size_t units;
    bpl__kind_params *q = &h->params;
    int rc = get_size(r, &units, "a layer's width");
    if (rc == BPL_OK) rc = get_size(r, &q->kernel_h, "a layer's kernel height");
    if (rc == BPL_OK) rc = get_size(r, &q->kernel_w, "a layer's kernel width");
    if (rc == BPL_OK) rc = get_size(r, &q->stride, "a layer's stride");
    if (rc == BPL_OK) rc = get_size(r, &q->pad, "a layer's padding");
    if (rc == BPL_OK && units > BPL__MAX_UNITS)
        rc = bad(r, "a layer's width is beyond 2^24");
    h->units = units;
    return rc;
}

static int get_layer_head(reader *r, size_t index, layer_head *h)
{
    memset(h, 0, sizeof *h);
    h->kind = &bpl__dense_kind;
    if (r->version == 1)
        return get_u64(r, &h->units, "a layer");
    char kind[BPL__NAME_MAX];
    int rc = get_str(r, kind, sizeof kind, "a layer kind");
    if (rc != BPL_OK)
        return rc;
    h->kind = bpl__kind_find(kind);
    if (!h->kind) {
        char known[256];
        bpl__kind_names(known, sizeof known);
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': layer %zu is of kind '%s', which this library does "
                         "not know (it knows %s)",
                         r->caller, r->source, index, kind, known);
    }
    if (!h->kind->ignores_params && (rc = get_kind_params(r, h)) != BPL_OK)
        return rc;
    size_t size;
    rc = get_shape(r, h->shape, &h->ndim, &size, "a layer's shape");
    if (h->kind->ignores_params)
        h->units = size; /* a dense layer's shape is [units] */
    return rc;
}

/* The shape the kind gives the stored width and params over the input so
 * far is the stored one (version 2), and the file holds the parameters'
 * values: checked by the kind's pure functions, before the layer is built. */
static int check_layer_geometry(reader *r, const bpl_net *net, const layer_head *h)
{
    size_t in[BPL__MAX_DIMS], in_ndim, out[BPL__MAX_DIMS], ndim;
    if (net->n_layers)
        bpl__layer_shape(net->layers[net->n_layers - 1], in, &in_ndim);
    else
        bpl__net_input_shape(net, in, &in_ndim);
    int rc = h->kind->output_shape(in, in_ndim, (size_t)h->units, &h->params, out, &ndim);
    if (rc != BPL_OK) {
        char shape[BPL__MAX_DIMS * 24] = "", prefix[4400];
        for (size_t i = 0, used = 0; i < in_ndim && used < sizeof shape; i++)
            used += (size_t)snprintf(shape + used, sizeof shape - used, i ? "x%zu" : "%zu",
                                     in[i]);
        snprintf(prefix, sizeof prefix,
                 "%s: '%s': layer %zu (%s) does not fit its input %s", r->caller, r->source,
                 net->n_layers, h->kind->name, shape);
        bpl__error_prefix(prefix);
        return BPL_ERR_FORMAT;
    }
    if (h->ndim && (h->ndim != ndim || memcmp(h->shape, out, ndim * sizeof *out) != 0))
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': layer %zu (%s): its stored shape is not the one its "
                         "kind gives it",
                         r->caller, r->source, net->n_layers, h->kind->name);
    /* Its parameters are stored in what is left of the file: a header
     * claiming more is rejected before anything is allocated. */
    if (h->kind->param_values &&
        h->kind->param_values(in, in_ndim, (size_t)h->units, &h->params) > r->left / 4)
        return bad(r, "a layer is larger than the rest of the file");
    return BPL_OK;
}

/* The values of the layer's parameter tensors as built, within the rest of
 * the file: what check_layer_geometry says for a kind that can say it
 * before, for any other kind after building and before reading. */
static int check_built_layer(reader *r, const bpl_layer *layer)
{
    uint64_t values = 0;
    const bpl__tensor *w = bpl__layer_weight(layer), *b = bpl__layer_bias(layer);
    if (w)
        values += (uint64_t)w->rows * w->cols;
    if (b)
        values += (uint64_t)b->rows * b->cols;
    return values > r->left / 4 ? bad(r, "a layer is larger than the rest of the file")
                                 : BPL_OK;
}

static int load_layer(reader *r, bpl_net *net)
{
    layer_head head;
    uint32_t activation, init, n_tensors;
    int rc = get_layer_head(r, net->n_layers, &head);
    if (rc == BPL_OK) rc = get_u32(r, &activation, "a layer");
    if (rc == BPL_OK) rc = get_u32(r, &init, "a layer");
    if (rc == BPL_OK) rc = get_u32(r, &n_tensors, "a layer");
    if (rc != BPL_OK)
        return rc;
    unsigned standard = standard_mask(head.kind);
    size_t n_standard = (standard & 1u) + (standard >> 1);
    if ((head.kind->ignores_params && (head.units == 0 || head.units > BPL__MAX_UNITS)) ||
        !bpl__activation_valid((int)activation) || !bpl__init_valid((int)init) ||
        n_tensors < n_standard || n_tensors > BPL__MAX_TENSORS)
        return bad(r, "a layer has invalid settings");
    rc = check_layer_geometry(r, net, &head);
    if (rc != BPL_OK)
        return rc;
    rc = bpl__net_append_layer(net, head.kind, (size_t)head.units, &head.params,
                               (int)activation, (int)init, 0);
    if (rc != BPL_OK) {
        bpl__error_prefix(r->caller);
        return rc;
    }
    bpl_layer *layer = net->layers[net->n_layers - 1];
    rc = check_built_layer(r, layer);
    unsigned standard_seen = 0;
    for (uint32_t t = 0; rc == BPL_OK && t < n_tensors; t++)
        rc = load_tensor(r, layer, &standard_seen);
    if (rc == BPL_OK && standard_seen != standard)
        rc = bad(r, "a layer lacks its weight or bias");
    return rc;
}

/* The rule's saved state (version 2), kept until the rule is attached. */
static int load_state(reader *r, bpl_net *net)
{
    uint32_t has_state;
    uint64_t size;
    int rc = get_u32(r, &has_state, "the rule's state");
    if (rc != BPL_OK || has_state == 0)
        return rc;
    if (has_state != 1)
        return bad(r, "the rule's state flag is invalid");
    rc = get_u64(r, &size, "the rule's state");
    if (rc != BPL_OK)
        return rc;
    if (size > r->left || size > BPL__MAX_STATE_BYTES)
        return bad(r, "the rule's state is larger than the rest of the file");
    net->pending_state = bpl__malloc(size ? (size_t)size : 1);
    if (!net->pending_state)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", r->caller);
    net->has_pending_state = 1;
    net->pending_state_size = (size_t)size;
    return get_bytes(r, net->pending_state, (size_t)size, "the rule's state");
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
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", r->caller);
    for (uint32_t i = 0; rc == BPL_OK && i < n_params; i++) {
        bpl__saved_param *p = &net->pending_params[i];
        rc = get_str(r, p->name, sizeof p->name, "a hyperparameter name");
        if (rc == BPL_OK) rc = get_f64(r, &p->value, "a hyperparameter");
        if (rc == BPL_OK && !isfinite(p->value))
            rc = bad(r, "a hyperparameter is not finite");
        net->n_pending_params = i + 1;
    }
    if (rc == BPL_OK && r->version >= 2)
        rc = load_state(r, net);
    return rc;
}

/* Version 1's step counters: the tensor of layer 0 that held a built-in
 * rule's count (two floats, the low 24 bits and the rest) or marked it
 * initialised (one float), becoming that rule's state. */
static const struct v1_counter {
    const char *rule, *tensor;
    size_t floats; /* 2: a count; 1: a marker, count 1 */
} v1_counters[] = {{"tp", "schedule_steps", 2},
                   {"dtp", "schedule_steps", 2},
                   {"sdtp", "schedule_steps", 2},
                   {"microcircuit", "microcircuit_steps", 2},
                   {"segregated", "segregated_initialised", 1}};

static int v1_count(const reader *r, const bpl__tensor *t, uint64_t *count)
{
    if (t->rows != 1 || t->cols != 2 || t->group != BPL_GROUP_NONE)
        return bad(r, "a step counter has the wrong shape or group");
    const float limit = 16777216.0f; /* 2^24 */
    for (int i = 0; i < 2; i++)
        if (!(t->data[i] >= 0.0f && t->data[i] < limit && t->data[i] == floorf(t->data[i])))
            return bpl__fail(BPL_ERR_FORMAT,
                             "%s: '%s': the step counter '%s' holds %g, not a whole number "
                             "in [0, 2^24)",
                             r->caller, r->source, t->name, (double)t->data[i]);
    *count = (uint64_t)t->data[0] + ((uint64_t)t->data[1] << 24);
    return BPL_OK;
}

static int convert_v1_counter(const reader *r, bpl_net *net)
{
    for (size_t i = 0; i < sizeof v1_counters / sizeof v1_counters[0]; i++) {
        const struct v1_counter *c = &v1_counters[i];
        if (strcmp(net->pending_rule, c->rule) != 0 || net->n_layers == 0)
            continue;
        bpl_layer *first = net->layers[0];
        bpl__tensor *t = bpl__layer_find_tensor(first, c->tensor);
        if (!t || !t->pending)
            return BPL_OK; /* a net saved without one starts afresh, as then */
        uint64_t count = 1;
        if (c->floats == 2) {
            int rc = v1_count(r, t, &count);
            if (rc != BPL_OK)
                return rc;
        } else if (t->group != BPL_GROUP_NONE) {
            return bad(r, "the segregated rule's marker has the wrong group");
        }
        net->pending_state = bpl__malloc(BPL__COUNT_STATE_SIZE);
        if (!net->pending_state)
            return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", r->caller);
        net->has_pending_state = 1;
        bpl__count_state_save(count, net->pending_state, BPL__COUNT_STATE_SIZE,
                              &net->pending_state_size);
        bpl__layer_remove_tensor(first, t);
        return BPL_OK;
    }
    return BPL_OK;
}

/* Attach the saved rule if it is built in; it takes its tensors, values
 * and state.  It may not create any tensor: every one it needs must be in
 * the file, which keeps what a load allocates within a few times the
 * file's size. */
static int attach_saved_rule(bpl_net *net, const reader *r)
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
        snprintf(prefix, sizeof prefix, "%s: '%s': restoring its rule", r->caller, r->source);
        bpl__error_prefix(prefix);
        return status;
    }
    return BPL_OK;
}

/* The net's input: version 1 stored its size, version 2 its shape. */
static int get_inputs(reader *r, uint64_t *n_inputs, size_t *shape, size_t *ndim)
{
    *ndim = 0;
    if (r->version == 1)
        return get_u64(r, n_inputs, "the net");
    size_t size;
    int rc = get_shape(r, shape, ndim, &size, "the input shape");
    *n_inputs = size;
    return rc;
}

static int parse_payload(reader *r, bpl_net **out)
{
    uint64_t n_inputs, seed, state[4], steps[BPL__N_GROUPS];
    size_t in_shape[BPL__MAX_DIMS], in_ndim;
    uint32_t loss, n_layers;
    int rc = get_inputs(r, &n_inputs, in_shape, &in_ndim);
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
        bpl__error_prefix(r->caller);
        return rc;
    }
    net->loss = (int)loss;
    if (in_ndim > 1)
        rc = bpl__net_set_input_shape(net, in_shape, in_ndim);
    for (uint32_t l = 0; rc == BPL_OK && l < n_layers; l++)
        rc = load_layer(r, net);
    if (rc == BPL_OK)
        rc = load_rule(r, net);
    if (rc == BPL_OK && r->left != 0)
        rc = bad(r, "unexpected bytes after the model");
    if (rc == BPL_OK && r->version == 1)
        rc = convert_v1_counter(r, net);
    if (rc == BPL_OK)
        rc = attach_saved_rule(net, r);
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

static int check_header(const unsigned char *h, size_t size, reader *r)
{
    if (size < HEADER_SIZE || memcmp(h, magic, 6) != 0)
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': not a libbioplaus model (bad magic)",
                         r->caller, r->source);
    if (memcmp(h, magic, sizeof magic) != 0)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': line endings were altered (opened in text mode?)",
                         r->caller, r->source);
    if (load_u32(h + 28) != (uint32_t)crc32(crc32(0L, Z_NULL, 0), h, 28))
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': header checksum mismatch", r->caller,
                         r->source);
    uint32_t version = load_u32(h + 8);
    if (version < 1 || version > FORMAT_VERSION || load_u32(h + 12) != 0)
        return bpl__fail(BPL_ERR_VERSION,
                         "%s: '%s': format version %u (flags 0x%x) not supported; this "
                         "library reads versions 1 to %d",
                         r->caller, r->source, version, load_u32(h + 12), FORMAT_VERSION);
    uint64_t payload = load_u64(h + 16);
    if (payload != size - HEADER_SIZE)
        return bpl__fail(BPL_ERR_FORMAT,
                         "%s: '%s': truncated or extended: the header announces %llu "
                         "payload bytes, there are %zu",
                         r->caller, r->source, (unsigned long long)payload,
                         size - HEADER_SIZE);
    if (load_u32(h + 24) !=
        (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), h + HEADER_SIZE, (size_t)payload))
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': checksum mismatch: the model is corrupt",
                         r->caller, r->source);
    r->version = version;
    return BPL_OK;
}

int bpl__model_decode(const unsigned char *data, size_t size, const char *caller,
                      const char *source, bpl_net **out)
{
    reader r = {data + (size < HEADER_SIZE ? size : HEADER_SIZE),
                size < HEADER_SIZE ? 0 : size - HEADER_SIZE, caller, source, 0};
    int rc = check_header(data, size, &r);
    return rc == BPL_OK ? parse_payload(&r, out) : rc;
}

/* ---- memory ------------------------------------------------------------------ */

BPL_API int bpl_net_save_to_buffer(const bpl_net *net, void **data_out, size_t *size_out)
{
    BPL_CHECK_ARG(data_out != NULL);
    *data_out = NULL;
    BPL_CHECK_ARG(size_out != NULL);
    *size_out = 0;
    BPL_CHECK_ARG(net != NULL);
    unsigned char *data;
    size_t size;
    int rc = bpl__model_encode(net, "bpl_net_save_to_buffer", &data, &size);
    if (rc == BPL_OK) {
        *data_out = data;
        *size_out = size;
    }
    return rc;
}

BPL_API void bpl_buffer_free(void *data)
{
    bpl__free(data);
}

BPL_API int bpl_net_load_from_buffer(bpl_net **out, const void *data, size_t size)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(data != NULL || size == 0);
    if (size > BPL__MAX_MODEL_BYTES)
        return bpl__fail(BPL_ERR_FORMAT,
                         "bpl_net_load_from_buffer: %zu bytes are too many to be a model",
                         size);
    return bpl__model_decode(data ? data : (const void *)"", size,
                             "bpl_net_load_from_buffer", "(buffer)", out);
}
