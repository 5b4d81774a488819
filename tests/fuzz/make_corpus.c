/*
 * make_corpus.c - writes the seed corpora of the fuzz targets:
 *
 *   make-corpus DIR   ->  DIR/fuzz_idx, DIR/fuzz_model, DIR/fuzz_params, DIR/fuzz_api
 *
 * Seeds are small and valid, so that fuzzing starts from inputs that reach
 * deep into each code path: tiny IDX pairs (raw, gzip, 2-D features, files
 * that are gzip streams themselves), a net of every built-in rule after one
 * training step plus a few unusual settings (saved in format version 2; the
 * same nets saved by libbioplaus 0.1 in version 1 are kept in the corpus as
 * v1-*.bpl, and no longer made here), and operation sequences over every
 * built-in rule.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#define ZLIB_CONST /* next_in is const: no casts */
#include <zlib.h>

#include "bioplaus_rule.h"
#include "fuzz_format.h"

static char out_dir[4096];

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "make-corpus: %s: %s\n", what, detail);
    exit(EXIT_FAILURE);
}

static void ok(int rc, const char *what)
{
    if (rc != BPL_OK)
        die(what, bpl_last_error_message());
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die(path, strerror(errno));
}

static const char *path_of(const char *target, const char *name)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    return path;
}

/* ---- byte strings ------------------------------------------------------------- */

typedef struct bytes {
    unsigned char data[8192];
    size_t n;
} bytes;

static void put(bytes *b, unsigned v)
{
    if (b->n == sizeof b->data)
        die("seed", "too long");
    b->data[b->n++] = (unsigned char)v;
}

static void put_all(bytes *b, const void *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(b, ((const unsigned char *)src)[i]);
}

static void put_be32(bytes *b, unsigned long v)
{
    for (int i = 3; i >= 0; i--)
        put(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_str(bytes *b, const char *s)
{
    put(b, (unsigned)strlen(s));
    put_all(b, s, strlen(s));
}

static void put_double(bytes *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    for (int i = 0; i < 8; i++)
        put(b, (unsigned)(bits >> (8 * i)) & 0xff); /* little-endian, as the target reads */
}

static void write_seed(const char *target, const char *name, const bytes *b)
{
    const char *path = path_of(target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->n, f) != b->n || fclose(f) != 0)
        die(path, strerror(errno));
}

/* ---- fuzz_idx ------------------------------------------------------------------ */

static bytes idx_images(unsigned dims, unsigned long n, unsigned long rows,
                        unsigned long cols)
{
    bytes b = {.n = 0};
    put(&b, 0), put(&b, 0), put(&b, 0x08), put(&b, dims);
    put_be32(&b, n);
    put_be32(&b, rows);
    if (dims == 3)
        put_be32(&b, cols);
    unsigned long count = n * rows * (dims == 3 ? cols : 1);
    for (unsigned long i = 0; i < count; i++)
        put(&b, (unsigned)(i * 37 % 256));
    return b;
}

static bytes idx_labels(unsigned long n, unsigned classes)
{
    bytes b = {.n = 0};
    put(&b, 0), put(&b, 0), put(&b, 0x08), put(&b, 1);
    put_be32(&b, n);
    for (unsigned long i = 0; i < n; i++)
        put(&b, (unsigned)(i % classes));
    return b;
}

static bytes gzipped(const bytes *src)
{
    bytes b = {.n = 0};
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("zlib", "deflateInit2");
    z.next_in = src->data;
    z.avail_in = (uInt)src->n;
    z.next_out = b.data;
    z.avail_out = sizeof b.data;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("zlib", "deflate");
    b.n = sizeof b.data - z.avail_out;
    deflateEnd(&z);
    return b;
}

/* `head` then `zeros` zero bytes as one gzip member, deflated as tightly as
 * deflate can (about 1000:1): a small decompression bomb. */
static bytes gzip_bomb(const bytes *head, size_t zeros)
{
    static unsigned char zero[1 << 16];
    bytes b = {.n = 0};
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_RLE) != Z_OK)
        die("zlib", "deflateInit2");
    z.next_out = b.data;
    z.avail_out = sizeof b.data;
    z.next_in = head->data;
    z.avail_in = (uInt)head->n;
    int rc = deflate(&z, Z_NO_FLUSH);
    for (size_t left = zeros; rc == Z_OK;) {
        size_t chunk = left < sizeof zero ? left : sizeof zero;
        left -= chunk;
        z.next_in = zero;
        z.avail_in = (uInt)chunk;
        rc = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
        if (rc == Z_OK && z.avail_out == 0)
            die("seed", "bomb too large");
    }
    if (rc != Z_STREAM_END)
        die("zlib", "deflate");
    b.n = sizeof b.data - z.avail_out;
    deflateEnd(&z);
    return b;
}

static bytes joined(const bytes *a, const bytes *b)
{
    bytes j = *a;
    put_all(&j, b->data, b->n);
    return j;
}

static void idx_seed(const char *name, unsigned flags, unsigned classes, const bytes *images,
                     const bytes *labels)
{
    bytes b = {.n = 0};
    put(&b, flags);
    put(&b, classes - 1);
    put(&b, images->n & 0xff);
    put(&b, images->n >> 8);
    put_all(&b, images->data, images->n);
    put_all(&b, labels->data, labels->n);
    write_seed("fuzz_idx", name, &b);
}

static void idx_corpus(void)
{
    bytes img = idx_images(3, 3, 2, 2), lab = idx_labels(3, 3);
    idx_seed("raw-3x2x2", 0, 3, &img, &lab);
    idx_seed("gzip-3x2x2", IDX_GZIP_IMAGES | IDX_GZIP_LABELS, 10, &img, &lab);
    bytes feat = idx_images(2, 2, 5, 0), lab2 = idx_labels(2, 2);
    idx_seed("features-2x5-gzip-images", IDX_GZIP_IMAGES, 256, &feat, &lab2);
    bytes gz_img = gzipped(&img), gz_lab = gzipped(&lab);
    idx_seed("gzip-streams-as-data", 0, 10, &gz_img, &gz_lab);
    idx_seed("gzip-labels-cut", IDX_GZIP_LABELS | IDX_CUT_LABELS, 10, &img, &lab);
    bytes mnist = idx_images(3, 2, 28, 28), lab10 = idx_labels(2, 10);
    idx_seed("mnist-shaped-2", IDX_GZIP_IMAGES | IDX_GZIP_LABELS, 10, &mnist, &lab10);
    /* bytes after the gzip data: refused, as after a raw file's data */
    bytes junk = {.n = 0};
    put_all(&junk, "junk", 4);
    bytes tail = joined(&gz_img, &junk);
    idx_seed("gzip-trailing-garbage", 0, 10, &tail, &gz_lab);
    /* two gzip members: read as one stream */
    bytes first = {.n = 0}, second = {.n = 0};
    put_all(&first, img.data, img.n / 2);
    put_all(&second, img.data + img.n / 2, img.n - img.n / 2);
    bytes gz_first = gzipped(&first), gz_second = gzipped(&second);
    bytes members = joined(&gz_first, &gz_second);
    idx_seed("gzip-two-members", 0, 10, &members, &gz_lab);
    /* 6000 MNIST-shaped images (4.7 MB) in 5 KB, with 3 labels: refused
     * before the images are inflated */
    bytes bomb_head = {.n = 0};
    put(&bomb_head, 0), put(&bomb_head, 0), put(&bomb_head, 0x08), put(&bomb_head, 3);
    put_be32(&bomb_head, 6000);
    put_be32(&bomb_head, 28);
    put_be32(&bomb_head, 28);
    bytes bomb = gzip_bomb(&bomb_head, (size_t)6000 * 28 * 28);
    idx_seed("gzip-bomb-3-labels", 0, 10, &bomb, &gz_lab);
}

/* ---- regression inputs ----------------------------------------------------------------
 *
 * Model files no net is saved as, written field by field in format
 * version 1 (layout: the top of lib/model_io.c), which the loader still
 * reads: each reaches a defect that the checks of fuzz_model.c report, so
 * replaying the corpus keeps checking it. */

static void put_le(bytes *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        put(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_f32(bytes *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_le(b, bits, 4);
}

static void put_name(bytes *b, const char *s)
{
    put_le(b, strlen(s), 4);
    put_all(b, s, strlen(s));
}

static void put_net_head(bytes *b, unsigned inputs, unsigned layers)
{
    put_le(b, inputs, 8);
    put_le(b, 1, 8); /* seed */
    for (int i = 0; i < 4; i++)
        put_le(b, 0x9e3779b97f4a7c15u * (unsigned)(i + 1), 8); /* generator state */
    put_le(b, BPL_LOSS_CROSS_ENTROPY, 4);
    put_le(b, layers, 4);
    put_le(b, 0, 8), put_le(b, 0, 8); /* optimiser steps */
}

static void put_layer_head(bytes *b, unsigned units, int activation, unsigned tensors)
{
    put_le(b, units, 8);
    put_le(b, (uint64_t)activation, 4);
    put_le(b, BPL_INIT_GLOROT_UNIFORM, 4);
    put_le(b, tensors, 4);
}

/* A tensor of `rows` x `cols` values `v`; flag bit 0 adds zero moments. */
static void put_tensor(bytes *b, const char *name, int group, unsigned rows, unsigned cols,
                       unsigned flags, const float *v)
{
    put_name(b, name);
    put_le(b, (uint32_t)group, 4);
    put_le(b, rows, 8);
    put_le(b, cols, 8);
    put(b, flags);
    for (unsigned i = 0; i < rows * cols; i++)
        put_f32(b, v[i]);
    for (unsigned i = 0; (flags & 1) && i < 2 * rows * cols; i++)
        put_f32(b, 0.0f);
}

static void put_rule(bytes *b, const char *name)
{
    put_le(b, 1, 4);
    put_name(b, name);
    put_le(b, 0, 4); /* no saved hyperparameters: the defaults */
}

static void write_model(const char *name, const bytes *payload)
{
    bytes b = {.n = 0};
    put_all(&b, "BPLNET\r\n", 8);
    put_le(&b, 1, 4);
    put_le(&b, 0, 4);
    put_le(&b, payload->n, 8);
    put_le(&b, crc32(0L, payload->data, (uInt)payload->n), 4);
    put_le(&b, crc32(0L, b.data, 28), 4);
    put_all(&b, payload->data, payload->n);
    write_seed("fuzz_model", name, &b);
}

/* 1 input, a hidden unit and an output unit, layer 0 holding `extra`. */
static void tiny_net(bytes *b, int hidden_act, const char *extra, int group, unsigned flags,
                     const float *values, unsigned cols)
{
    static const float one[1] = {0.5f}, zero[1] = {0.0f};
    put_net_head(b, 1, 2);
    put_layer_head(b, 1, hidden_act, 3);
    put_tensor(b, "weight", BPL_GROUP_FORWARD, 1, 1, 0, one);
    put_tensor(b, "bias", BPL_GROUP_FORWARD, 1, 1, 0, zero);
    put_tensor(b, extra, group, 1, cols, flags, values);
    put_layer_head(b, 1, BPL_ACT_SIGMOID, 2);
    put_tensor(b, "weight", BPL_GROUP_FORWARD, 1, 1, 0, one);
    put_tensor(b, "bias", BPL_GROUP_FORWARD, 1, 1, 0, zero);
}

/* 1 input, a tanh unit and a sigmoid output trained by backprop (Adam),
 * with the generator state (all zero, or the usual), the forward step count
 * and the second moment of the first weight given. */
static void backprop_net(bytes *b, int zero_state, uint64_t steps, float second_moment)
{
    static const float half[1] = {0.5f}, zero[1] = {0.0f};
    put_le(b, 1, 8); /* inputs */
    put_le(b, 1, 8); /* seed */
    for (int i = 0; i < 4; i++)
        put_le(b, zero_state ? 0 : 0x9e3779b97f4a7c15u * (unsigned)(i + 1), 8);
    put_le(b, BPL_LOSS_CROSS_ENTROPY, 4);
    put_le(b, 2, 4);
    put_le(b, steps, 8), put_le(b, 0, 8);
    put_layer_head(b, 1, BPL_ACT_TANH, 2);
    put_name(b, "weight");
    put_le(b, BPL_GROUP_FORWARD, 4);
    put_le(b, 1, 8), put_le(b, 1, 8);
    put(b, 1); /* moments follow */
    put_f32(b, 0.5f), put_f32(b, 0.0f), put_f32(b, second_moment);
    put_tensor(b, "bias", BPL_GROUP_FORWARD, 1, 1, 0, zero);
    put_layer_head(b, 1, BPL_ACT_SIGMOID, 2);
    put_tensor(b, "weight", BPL_GROUP_FORWARD, 1, 1, 0, half);
    put_tensor(b, "bias", BPL_GROUP_FORWARD, 1, 1, 0, zero);
    put_rule(b, "backprop");
}

static void model_regressions(void)
{
    /* dfa keeps "feedback" fixed (group none); this file trains it, with
     * optimiser moments, which the adopted tensor keeps: the net is then
     * saved as a file bpl_net_load rejects. */
    const float fb[1] = {0.3f};
    bytes b = {.n = 0};
    tiny_net(&b, BPL_ACT_TANH, "feedback", BPL_GROUP_FEEDBACK, 1, fb, 1);
    put_rule(&b, "dfa");
    write_model("regress-fixed-tensor-with-moments.bpl", &b);
    /* Schedule counters are floats in the file: a negative one is finite,
     * so it loads, and converting it to an unsigned count is undefined. */
    const float negative[2] = {-5.0f, 0.0f};
    const char *const counters[][2] = {{"tp", "schedule_steps"},
                                       {"microcircuit", "microcircuit_steps"}};
    for (int i = 0; i < 2; i++) {
        char name[96];
        b.n = 0;
        tiny_net(&b, BPL_ACT_SIGMOID, counters[i][1], BPL_GROUP_NONE, 0, negative, 2);
        put_rule(&b, counters[i][0]);
        snprintf(name, sizeof name, "regress-negative-%s.bpl", counters[i][1]);
        write_model(name, &b);
    }
    /* Finite weights whose products overflow to +Inf and -Inf: the output
     * unit's pre-activation is NaN, which the sigmoid kernel converts to an
     * integer. */
    static const float w0[2] = {3e38f, -3e38f}, b0[2] = {0, 0}, w1[2] = {10, 10}, b1[1] = {0};
    b.n = 0;
    put_net_head(&b, 1, 2);
    put_layer_head(&b, 2, BPL_ACT_LINEAR, 2);
    put_tensor(&b, "weight", BPL_GROUP_FORWARD, 2, 1, 0, w0);
    put_tensor(&b, "bias", BPL_GROUP_FORWARD, 1, 2, 0, b0);
    put_layer_head(&b, 1, BPL_ACT_SIGMOID, 2);
    put_tensor(&b, "weight", BPL_GROUP_FORWARD, 1, 2, 0, w1);
    put_tensor(&b, "bias", BPL_GROUP_FORWARD, 1, 1, 0, b1);
    put_le(&b, 0, 4); /* no rule */
    write_model("regress-nan-pre-activation.bpl", &b);
    /* Found once the model fuzzer trained what it loaded: an all-zero
     * generator state makes bpl_net_fit's shuffle loop for ever; a negative
     * Adam second moment gives NaN weights that save but do not load; a
     * step count one below the loader's limit of 2^53 passes it after a
     * step. */
    b.n = 0;
    backprop_net(&b, 1, 0, 0.0f);
    write_model("regress-fit-zero-generator-state.bpl", &b);
    b.n = 0;
    backprop_net(&b, 0, 0, -3e38f);
    write_model("regress-train-negative-second-moment.bpl", &b);
    b.n = 0;
    backprop_net(&b, 0, ((uint64_t)1 << 53) - 1, 0.0f);
    write_model("regress-train-step-count-at-limit.bpl", &b);
}

/* ---- fuzz_model ------------------------------------------------------------------ */

static bpl_net *small_net(size_t n_layers, int output, uint64_t seed)
{
    static const size_t units[] = {4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID};
    bpl_net *net;
    ok(bpl_net_create(&net, 3, seed), "bpl_net_create");
    for (size_t l = 0; l + 1 < n_layers; l++)
        ok(bpl_net_add_dense(net, units[l], acts[l], BPL_INIT_GLOROT_UNIFORM), "add_dense");
    ok(bpl_net_add_dense(net, 2, output, BPL_INIT_GLOROT_UNIFORM), "add_dense");
    if (output == BPL_ACT_LINEAR)
        ok(bpl_net_set_loss(net, BPL_LOSS_MSE), "bpl_net_set_loss");
    return net;
}

static void train_once(bpl_net *net)
{
    const float x[2 * 3] = {0.1f, -0.4f, 0.8f, 0.5f, 0.2f, -0.9f};
    const float y[2 * 2] = {1, 0, 0, 1};
    ok(bpl_net_train_batch(net, x, y, 2, NULL), "bpl_net_train_batch");
}

/* `settings` is "name=value,name=value" applied with bpl_rule_set_string. */
static void model_seed(const char *file, const char *rule_name, const char *settings,
                       size_t n_layers, int output)
{
    bpl_net *net = small_net(n_layers, output, 7);
    if (rule_name) {
        bpl_rule *rule;
        ok(bpl_rule_create_builtin(&rule, rule_name), rule_name);
        char copy[256], *save = NULL;
        snprintf(copy, sizeof copy, "%s", settings ? settings : "");
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            *eq = '\0';
            ok(bpl_rule_set_string(rule, kv, eq + 1), kv);
        }
        ok(bpl_net_set_rule(net, rule), "bpl_net_set_rule");
        train_once(net);
    }
    ok(bpl_net_save(net, path_of("fuzz_model", file)), "bpl_net_save");
    bpl_net_destroy(net);
}

/* A rule that is not built in: a loaded net keeps it pending. */
static int custom_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int custom_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    return bpl_net_output_delta(net, y, batch);
}

static int custom_update(void *self, bpl_net *net)
{
    (void)self;
    int rc = bpl_net_weight_gradients(net, bpl_net_layer_count(net) - 1);
    return rc == BPL_OK ? bpl_net_apply_gradients(net, 1u) : rc;
}

static void custom_seed(void)
{
    bpl_rule_vtable vt;
    ok(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION), "bpl_rule_vtable_init");
    vt.name = "custom";
    vt.forward = custom_forward;
    vt.compute_targets = custom_targets;
    vt.update = custom_update;
    bpl_rule *rule;
    ok(bpl_rule_create(&rule, &vt, NULL), "bpl_rule_create");
    ok(bpl_rule_add_param(rule, "alpha", BPL_PARAM_REAL, 0.5, 0, 1, NULL, "a weight"),
       "bpl_rule_add_param");
    bpl_net *net = small_net(2, BPL_ACT_SOFTMAX, 9);
    ok(bpl_net_set_rule(net, rule), "bpl_net_set_rule");
    train_once(net);
    ok(bpl_net_save(net, path_of("fuzz_model", "custom-rule-pending.bpl")), "bpl_net_save");
    bpl_net_destroy(net);
}

static void frozen_seed(void)
{
    bpl_net *net = small_net(2, BPL_ACT_SIGMOID, 11);
    bpl_rule *rule;
    ok(bpl_rule_create_builtin(&rule, "fa"), "fa");
    ok(bpl_rule_set_string(rule, "optimizer", "momentum"), "optimizer");
    ok(bpl_net_set_rule(net, rule), "bpl_net_set_rule");
    ok(bpl_layer_set_frozen(bpl_net_layer(net, 0), "bias", 1), "bpl_layer_set_frozen");
    train_once(net);
    ok(bpl_net_save(net, path_of("fuzz_model", "fa-momentum-frozen-bias.bpl")), "save");
    bpl_net_destroy(net);
}

/* A microcircuit in continuous mode whose hidden bias overflows its
 * dynamics: the step fails, and once left the plasticity filters NaN. */
static void overflowing_microcircuit_seed(void)
{
    static const float huge[3] = {3e38f, -3e38f, 3e38f};
    bpl_net *net = small_net(3, BPL_ACT_SOFTMAX, 7);
    bpl_rule *rule;
    ok(bpl_rule_create_builtin(&rule, "microcircuit"), "microcircuit");
    ok(bpl_rule_set_string(rule, "mode", "continuous"), "mode");
    ok(bpl_rule_set_string(rule, "steps", "2"), "steps");
    ok(bpl_rule_set_string(rule, "dt", "1.2"), "dt");
    ok(bpl_net_set_rule(net, rule), "bpl_net_set_rule");
    train_once(net);
    ok(bpl_layer_set_tensor(bpl_net_layer(net, 1), "bias", huge, 3), "bpl_layer_set_tensor");
    ok(bpl_net_save(net, path_of("fuzz_model", "regress-continuous-failed-step-filters.bpl")),
       "bpl_net_save");
    bpl_net_destroy(net);
}

/* Attach `rule_name` (NULL: none) with `optimizer` (NULL: its own), train
 * one batch of two rows, save the net as fuzz_model/`file` and destroy it. */
static void train_once_and_save(bpl_net *net, const char *file, const char *rule_name,
                                const char *optimizer)
{
    if (rule_name) {
        bpl_rule *rule;
        ok(bpl_rule_create_builtin(&rule, rule_name), rule_name);
        if (optimizer)
            ok(bpl_rule_set_string(rule, "optimizer", optimizer), "optimizer");
        ok(bpl_net_set_rule(net, rule), "bpl_net_set_rule");
        size_t n = 2 * bpl_net_inputs(net);
        float x[2 * 36], y[2 * 2] = {1, 0, 0, 1};
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((int)(i * 7 % 11) - 5) * 0.2f;
        ok(bpl_net_train_batch(net, x, y, 2, NULL), "bpl_net_train_batch");
    }
    ok(bpl_net_save(net, path_of("fuzz_model", file)), "bpl_net_save");
    bpl_net_destroy(net);
}

/* 1x4x4 -> conv 2@3x3 stride 2 pad 1 (tanh) [-> conv 3@2x1 (relu)] -> dense 2
 * (softmax), trained once with `rule_name` (NULL: none) and `optimizer`. */
static void conv_seed(const char *file, const char *rule_name, const char *optimizer,
                      int deep)
{
    static const size_t chw[] = {1, 4, 4};
    bpl_net *net;
    ok(bpl_net_create(&net, 16, 13), "bpl_net_create");
    ok(bpl_net_set_input_shape(net, chw, 3), "bpl_net_set_input_shape");
    ok(bpl_net_add_conv2d(net, 2, 3, 3, 2, 1, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM),
       "bpl_net_add_conv2d");
    if (deep)
        ok(bpl_net_add_conv2d(net, 3, 2, 1, 1, 0, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
           "bpl_net_add_conv2d");
    ok(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM), "add_dense");
    train_once_and_save(net, file, rule_name, optimizer);
}

/* 1x6x6 -> conv 2@3x3 pad 1 (relu) -> maxpool 2 -> avgpool 2 stride 1 ->
 * dense 2 (softmax), trained once with `rule_name`: the pooling records. */
static void pool_seed(const char *file, const char *rule_name)
{
    static const size_t chw[] = {1, 6, 6};
    bpl_net *net;
    ok(bpl_net_create(&net, 36, 17), "bpl_net_create");
    ok(bpl_net_set_input_shape(net, chw, 3), "bpl_net_set_input_shape");
    ok(bpl_net_add_conv2d(net, 2, 3, 3, 1, 1, BPL_ACT_RELU, BPL_INIT_HE_NORMAL),
       "bpl_net_add_conv2d");
    ok(bpl_net_add_maxpool2d(net, 2, 0), "bpl_net_add_maxpool2d");
    ok(bpl_net_add_avgpool2d(net, 2, 1), "bpl_net_add_avgpool2d");
    ok(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM), "add_dense");
    train_once_and_save(net, file, rule_name, NULL);
}

static void model_corpus(void)
{
    pool_seed("pool-backprop.bpl", "backprop");
    pool_seed("pool-frsf.bpl", "frsf");
    pool_seed("pool-dfa.bpl", "dfa"); /* B sized by the pooled maps */
    conv_seed("conv-usf-deep.bpl", "usf", "adam", 1);
    conv_seed("conv-fa-deep.bpl", "fa", "adam", 1);
    conv_seed("conv-no-rule.bpl", NULL, NULL, 0);
    conv_seed("conv-backprop.bpl", "backprop", "adam", 0);
    conv_seed("conv-fa.bpl", "fa", "momentum", 0);
    conv_seed("conv-dfa-deep.bpl", "dfa", "rmsprop", 1);
    conv_seed("conv-backprop-deep.bpl", "backprop", "sgd", 1);
    for (size_t i = 0; i < bpl_rule_builtin_count(); i++) {
        char file[96];
        snprintf(file, sizeof file, "%s.bpl", bpl_rule_builtin_name(i));
        model_seed(file, bpl_rule_builtin_name(i), NULL, 3, BPL_ACT_SOFTMAX);
    }
    model_seed("no-rule.bpl", NULL, NULL, 2, BPL_ACT_SOFTMAX);
    model_seed("backprop-one-layer-mse.bpl", "backprop", "optimizer=rmsprop", 1,
               BPL_ACT_LINEAR);
    model_seed("tp-alternating.bpl", "tp",
               "schedule=alternating,alternate_steps=1,pretrain_steps=1", 3, BPL_ACT_SOFTMAX);
    model_seed("sdtp-auxiliary.bpl", "sdtp", "auxiliary_outputs=2", 3, BPL_ACT_SOFTMAX);
    model_seed("segregated-spiking.bpl", "segregated",
               "mode=spiking,learn_feedback=1,phase_steps=4,integration_steps=2,"
               "test_steps=4,test_average=2,feedback=symmetric",
               3, BPL_ACT_SIGMOID);
    model_seed("microcircuit-continuous.bpl", "microcircuit",
               "mode=continuous,steps=4,learn_topdown=1,learn_pi=1,noise=0.1", 3,
               BPL_ACT_SOFTMAX);
    custom_seed();
    frozen_seed();
    overflowing_microcircuit_seed();
    model_regressions();
}

/* ---- dictionaries ------------------------------------------------------------------ */

/* One libFuzzer dictionary entry: `prefix_len` bytes of length prefix (the
 * encoding each target uses for strings), then the text. */
static char seen[512][64]; /* entries of the dictionary being written */
static size_t n_seen;

static void dict_entry(FILE *f, const char *text, int prefix_len)
{
    for (size_t i = 0; i < n_seen; i++)
        if (strcmp(seen[i], text) == 0)
            return;
    if (n_seen < sizeof seen / sizeof seen[0])
        snprintf(seen[n_seen++], sizeof seen[0], "%s", text);
    size_t n = strlen(text);
    fputc('"', f);
    for (int i = 0; i < prefix_len; i++)
        fprintf(f, "\\x%02x", (unsigned)(n >> (8 * i)) & 0xff);
    fprintf(f, "%s\"\n", text);
}

/* The names a target must spell to reach deep code: every built-in rule's
 * name and hyperparameters, every tensor name a rule adds, the layer kinds
 * of format version 2, and the tensors in which version-1 files kept the
 * built-in rules' step counts (the loader turns them into rule state). */
static void write_dict(const char *file, int prefix_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    FILE *f = fopen(path, "w");
    if (!f)
        die(path, strerror(errno));
    n_seen = 0;
    static const char *const format_names[] = {
        "dense",          "conv2d",           "maxpool2d",          "avgpool2d",
        "schedule_steps", "microcircuit_steps", "segregated_initialised", "feedback_magnitude",
        "inverse"};
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        dict_entry(f, format_names[i], prefix_len);
    for (size_t r = 0; r < bpl_rule_builtin_count(); r++) {
        bpl_rule *rule;
        ok(bpl_rule_create_builtin(&rule, bpl_rule_builtin_name(r)), "create");
        dict_entry(f, bpl_rule_name(rule), prefix_len);
        for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
            const char *name;
            ok(bpl_rule_param_info(rule, i, &name, NULL, NULL, NULL, NULL, NULL, NULL), "info");
            dict_entry(f, name, prefix_len);
        }
        bpl_net *net = small_net(3, BPL_ACT_SOFTMAX, 3);
        if (bpl_net_set_rule(net, rule) != BPL_OK)
            die("attach", bpl_last_error_message());
        for (size_t l = 0; l < bpl_net_layer_count(net); l++)
            for (size_t t = 2; t < bpl_layer_tensor_count(bpl_net_layer(net, l)); t++)
                dict_entry(f, bpl_layer_tensor_name(bpl_net_layer(net, l), t), prefix_len);
        bpl_net_destroy(net);
    }
    if (fclose(f) != 0)
        die(path, strerror(errno));
}

/* ---- fuzz_params ------------------------------------------------------------------ */

/* Operands of OP_ATTACH's net, inverting the target's mapping (fuzz_params.c). */
static void put_net(bytes *b, unsigned seed, unsigned n_in, unsigned n_layers)
{
    put(b, seed);
    put(b, (n_in + 2) % 4);
    put(b, (n_layers + 1) % 3);
    for (unsigned l = 0; l + 1 < n_layers; l++) {
        put(b, (4 + 1) % 4); /* 4 units */
        put(b, BPL_ACT_TANH);
        put(b, BPL_INIT_GLOROT_UNIFORM);
    }
    put(b, (2 + 2) % 4); /* 2 outputs */
    put(b, 0);           /* softmax */
    put(b, BPL_INIT_GLOROT_UNIFORM);
}

static void put_train(bytes *b, unsigned op, unsigned batch, unsigned n_in)
{
    put(b, op);
    put(b, batch - 1);
    for (unsigned i = 0; i < batch * n_in; i++)
        put(b, 96 + 17 * i % 64);
    if (op == OP_TRAIN)
        for (unsigned i = 0; i < batch; i++)
            put(b, i);
}

static void params_basic(unsigned rule)
{
    bytes b = {.n = 0};
    put(&b, rule);
    put(&b, OP_GET), put(&b, 0);
    put(&b, OP_PARAM_INFO), put(&b, 1);
    put(&b, OP_SET), put(&b, 1), put(&b, VALUE_IN_BOUNDS), put(&b, 3);
    put(&b, OP_SET_STRING), put(&b, 0), put_str(&b, ""), put(&b, 2); /* a real choice */
    put(&b, OP_ATTACH);
    put_net(&b, rule, 3, 3);
    put_train(&b, OP_TRAIN, 2, 3);
    put(&b, OP_SET), put(&b, NAME_RAW), put_str(&b, "lr"), put(&b, VALUE_RAW);
    put_double(&b, 0.01);
    put_train(&b, OP_TRAIN, 3, 3);
    put_train(&b, OP_PREDICT, 2, 3);
    char name[64];
    snprintf(name, sizeof name, "basic-%s", bpl_rule_builtin_name(rule));
    write_seed("fuzz_params", name, &b);
}

static void params_declare(void)
{
    bytes b = {.n = 0};
    put(&b, 0); /* backprop */
    put(&b, OP_ADD_PARAM), put_str(&b, "alpha"), put(&b, BPL_PARAM_REAL + 1);
    put(&b, VALUE_SMALL_INT), put(&b, 1), put(&b, VALUE_SMALL_INT), put(&b, 0);
    put(&b, VALUE_SMALL_INT), put(&b, 5), put(&b, 1), put_str(&b, ""), put_str(&b, "doc");
    put(&b, OP_ADD_PARAM), put_str(&b, "mode2"), put(&b, BPL_PARAM_CHOICE + 1);
    put(&b, VALUE_SMALL_INT), put(&b, 1), put(&b, VALUE_SMALL_INT), put(&b, 0);
    put(&b, VALUE_SMALL_INT), put(&b, 0), put(&b, 0), put_str(&b, "a|b|c"), put_str(&b, "");
    put(&b, OP_SET_STRING), put(&b, NAME_RAW), put_str(&b, "mode2"), put_str(&b, "c");
    put(&b, OP_ADD_OPTIMIZER), put(&b, BPL_GROUP_FEEDBACK + 1), put_str(&b, "x_");
    put(&b, BPL_OPT_SGD + 1), put(&b, VALUE_SPECIAL), put(&b, 4);
    put(&b, OP_PROPERTY), put(&b, BPL_PROP_EXPLICIT_ERROR + 1), put(&b, BPL_TICK_PARTIAL + 1);
    put_str(&b, "a note");
    put(&b, OP_DESCRIPTION), put_str(&b, "a description");
    put(&b, OP_ATTACH);
    put_net(&b, 1, 2, 2);
    put_train(&b, OP_TRAIN, 1, 2);
    put(&b, OP_ADD_PARAM), put_str(&b, "late"), put(&b, BPL_PARAM_BOOL + 1);
    put(&b, VALUE_SMALL_INT), put(&b, 0), put(&b, VALUE_SMALL_INT), put(&b, 0);
    put(&b, VALUE_SMALL_INT), put(&b, 1), put(&b, 3), put_str(&b, ""), put_str(&b, "");
    write_seed("fuzz_params", "declare-then-attach", &b);
}

static void params_replace(void)
{
    bytes b = {.n = 0};
    put(&b, 3); /* tp */
    put(&b, OP_ATTACH);
    put_net(&b, 5, 3, 3);
    put_train(&b, OP_TRAIN, 2, 3);
    put(&b, OP_NEW_RULE), put(&b, 2); /* dfa */
    put(&b, OP_SET_STRING), put(&b, NAME_RAW), put_str(&b, "feedback_scale");
    put_str(&b, "0.5");
    put(&b, OP_ATTACH);
    put_train(&b, OP_TRAIN, 4, 3);
    write_seed("fuzz_params", "attach-replace", &b);
}

/* Sequences reaching defects that the checks of fuzz_params.c report. */
static void params_regressions(void)
{
    /* sdtp's auxiliary outputs changed after attach: the buffers sized at
     * attach are then too small for a training step of two examples. */
    bytes b = {.n = 0};
    put(&b, 5); /* sdtp */
    put(&b, OP_ATTACH);
    put_net(&b, 0, 3, 3);
    put(&b, OP_SET), put(&b, NAME_RAW), put_str(&b, "auxiliary_outputs");
    put(&b, VALUE_SMALL_INT), put(&b, 3);
    put_train(&b, OP_TRAIN, 2, 3);
    write_seed("fuzz_params", "regress-auxiliary-outputs-after-attach", &b);
    /* Re-declaring an optimiser over a parameter of another kind: the bool
     * "x_lr" is given the learning rate 2, outside its bounds [0, 1]. */
    b.n = 0;
    put(&b, 0); /* backprop */
    put(&b, OP_ADD_PARAM), put_str(&b, "x_lr"), put(&b, BPL_PARAM_BOOL + 1);
    put(&b, VALUE_SMALL_INT), put(&b, 0), put(&b, VALUE_SMALL_INT), put(&b, 0);
    put(&b, VALUE_SMALL_INT), put(&b, 1), put(&b, 3), put_str(&b, ""), put_str(&b, "");
    put(&b, OP_ADD_OPTIMIZER), put(&b, BPL_GROUP_FEEDBACK + 1), put_str(&b, "x_");
    put(&b, BPL_OPT_SGD + 1), put(&b, VALUE_SPECIAL), put(&b, 5); /* lr 2 */
    write_seed("fuzz_params", "regress-optimizer-over-bool", &b);
    /* ... and over a real "x_optimizer": 1e300 as the forward optimiser's
     * kind is converted to int when a training step reads it. */
    b.n = 0;
    put(&b, 0); /* backprop */
    put(&b, OP_ADD_PARAM), put_str(&b, "x_optimizer"), put(&b, BPL_PARAM_REAL + 1);
    put(&b, VALUE_SMALL_INT), put(&b, 0), put(&b, VALUE_SMALL_INT), put(&b, 0);
    put(&b, VALUE_SPECIAL), put(&b, 10), put(&b, 3), put_str(&b, ""), put_str(&b, "");
    put(&b, OP_ADD_OPTIMIZER), put(&b, BPL_GROUP_FORWARD + 1), put_str(&b, "x_");
    put(&b, BPL_OPT_SGD + 1), put(&b, VALUE_SPECIAL), put(&b, 7); /* lr 1e-12 */
    put(&b, OP_SET), put(&b, NAME_RAW), put_str(&b, "x_optimizer");
    put(&b, VALUE_SPECIAL), put(&b, 10); /* 1e300 */
    put(&b, OP_ATTACH);
    put_net(&b, 0, 3, 3);
    put_train(&b, OP_TRAIN, 1, 3);
    write_seed("fuzz_params", "regress-optimizer-kind-not-whole", &b);
}

static void params_corpus(void)
{
    params_regressions();
    for (unsigned r = 0; r < bpl_rule_builtin_count(); r++)
        params_basic(r);
    params_declare();
    params_replace();
}

/* ---- fuzz_api -------------------------------------------------------------------
 *
 * Operation sequences in the layout of fuzz_format.h; every VARIANT is 0
 * (well formed).  Data bytes follow a fixed pattern. */

static void put_data(bytes *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(b, 96 + 17 * (unsigned)i % 64);
}

/* inputs -> hidden (tanh, if any) -> 2 softmax outputs, in `slot`. */
static void api_net(bytes *b, unsigned slot, unsigned inputs, unsigned hidden)
{
    put(b, API_NET_CREATE), put(b, slot), put(b, inputs - 1), put(b, 7), put(b, 0);
    if (hidden) {
        put(b, API_ADD_DENSE), put(b, slot), put(b, hidden - 1), put(b, BPL_ACT_TANH);
        put(b, BPL_INIT_GLOROT_UNIFORM), put(b, 0);
    }
    put(b, API_ADD_DENSE), put(b, slot), put(b, 2 - 1), put(b, BPL_ACT_SOFTMAX);
    put(b, BPL_INIT_GLOROT_UNIFORM), put(b, 0);
}

/* API_TRAIN, API_PREDICT or API_ALIGNMENT of `batch` rows on the net of `net`. */
static void api_batch(bytes *b, unsigned op, unsigned net, unsigned batch, unsigned inputs)
{
    put(b, op), put(b, net), put(b, batch - 1), put(b, 0);
    put_data(b, batch * inputs);
    if (op != API_PREDICT)
        put_data(b, batch); /* classes */
}

/* A float dataset of `rows` examples shaped like the net of `net`. */
static void api_dataset(bytes *b, unsigned slot, unsigned net, unsigned kind, unsigned rows,
                        unsigned inputs)
{
    put(b, API_DATASET), put(b, slot), put(b, net), put(b, kind), put(b, rows - 1), put(b, 0);
    put_data(b, rows * inputs);
    put_data(b, rows);
}

static void api_fit(bytes *b, unsigned net, unsigned epochs, unsigned batch, unsigned stop,
                    unsigned at, unsigned action)
{
    put(b, API_FIT), put(b, net), put(b, 0), put(b, epochs), put(b, batch - 1);
    put(b, stop), put(b, at), put(b, action), put(b, 0);
}

static void api_user(bytes *b, unsigned slot, const unsigned char script[USER_SCRIPT_SIZE])
{
    put(b, API_RULE_USER), put(b, slot);
    put_all(b, script, USER_SCRIPT_SIZE);
    put(b, 0);
}

/* Train, predict, fit, evaluate, align, save, load into slot 1, train that. */
static void api_workout(bytes *b, unsigned inputs)
{
    api_batch(b, API_TRAIN, 0, 2, inputs);
    api_batch(b, API_PREDICT, 0, 2, inputs);
    api_dataset(b, 0, 0, 1, 5, inputs);
    api_fit(b, 0, 2, 2, 0, 0, 0);
    put(b, API_EVALUATE), put(b, 0), put(b, 0), put(b, 0);
    api_batch(b, API_ALIGNMENT, 0, 2, inputs);
    put(b, API_SAVE), put(b, 0), put(b, 0);
    put(b, API_LOAD), put(b, 1), put(b, 0);
    api_batch(b, API_TRAIN, 1, 3, inputs);
}

static void api_basic(unsigned rule)
{
    bytes b = {.n = 0};
    api_net(&b, 0, 3, 4);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, rule), put(&b, 0);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_workout(&b, 3);
    char name[64];
    snprintf(name, sizeof name, "basic-%s", bpl_rule_builtin_name(rule));
    write_seed("fuzz_api", name, &b);
}

/* A user rule, saved, loaded (its rule pending) and adopted by a new one. */
static void api_user_rule(const char *name, unsigned attach, unsigned targets,
                          unsigned update, unsigned group)
{
    unsigned char script[USER_SCRIPT_SIZE] = {0};
    script[SCRIPT_ATTACH] = (unsigned char)attach;
    script[SCRIPT_TARGETS] = (unsigned char)targets;
    script[SCRIPT_UPDATE] = (unsigned char)update;
    script[SCRIPT_FAIL_HOOK] = 7; /* none fails */
    script[SCRIPT_GROUP] = (unsigned char)(group + 1);
    script[SCRIPT_PARAMS] = 7;
    bytes b = {.n = 0};
    api_net(&b, 0, 3, 4);
    api_user(&b, 0, script);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_workout(&b, 3);
    api_user(&b, 2, script);
    put(&b, API_ATTACH), put(&b, 1), put(&b, 2), put(&b, 0);
    api_batch(&b, API_TRAIN, 1, 2, 3);
    put(&b, API_SAVE), put(&b, 1), put(&b, 0);
    write_seed("fuzz_api", name, &b);
}

/* Every hook of a user rule and a progress callback call back into the
 * library with `action`. */
static void api_reenter(unsigned action)
{
    static const char *const names[REENTER_KINDS] = {
        "none", "train", "predict", "evaluate", "fit", "alignment", "save",
        "load", "set-rule", "add-dense", "set-loss", "set-tensor", "init-tensor",
        "add-tensor", "freeze", "rule-set", "random", "add-buffer", "rule-destroy",
        "buffer", "apply"};
    unsigned char script[USER_SCRIPT_SIZE] = {0};
    script[SCRIPT_ATTACH] = 1;
    script[SCRIPT_TARGETS] = 1;
    script[SCRIPT_FAIL_HOOK] = 7;
    for (int h = 0; h < 4; h++)
        script[SCRIPT_REENTER + h] = (unsigned char)action;
    bytes b = {.n = 0};
    api_net(&b, 0, 3, 4);
    api_user(&b, 0, script);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_batch(&b, API_TRAIN, 0, 2, 3);
    api_dataset(&b, 0, 0, 1, 4, 3);
    api_fit(&b, 0, 2, 2, 5, 1, action);
    put(&b, API_SAVE), put(&b, 0), put(&b, 0);
    char name[64];
    snprintf(name, sizeof name, "reenter-%s", names[action]);
    write_seed("fuzz_api", name, &b);
}

static void api_datasets(void)
{
    bytes b = {.n = 0};
    api_net(&b, 0, 3, 0);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, 1), put(&b, 0); /* fa */
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    put(&b, API_DATASET), put(&b, 1), put(&b, 0), put(&b, 0), put(&b, 6 - 1), put(&b, 0);
    put_data(&b, 6 * 3);
    put_data(&b, 6); /* u8 pixels and labels */
    put(&b, API_DATASET_SLICE), put(&b, 2), put(&b, 1), put(&b, 1), put(&b, 4);
    put(&b, API_DATASET_GET), put(&b, 2), put(&b, 0), put(&b, 1), put(&b, 2), put(&b, 0);
    put(&b, API_DATASET_GET), put(&b, 1), put(&b, 1), put(&b, 3), put(&b, 0), put(&b, 0);
    put(&b, API_DATASET_GET), put(&b, 1), put(&b, 2), put(&b, 0), put(&b, 0), put(&b, 0);
    put(&b, VALUE_SPECIAL), put(&b, 4), put(&b, VALUE_SPECIAL), put(&b, 3); /* 0.5, -1 */
    put(&b, API_FIT), put(&b, 0), put(&b, 1), put(&b, 2), put(&b, 2), put(&b, 0), put(&b, 0);
    put(&b, 0), put(&b, 0);
    put(&b, API_EVALUATE), put(&b, 0), put(&b, 2), put(&b, 0);
    write_seed("fuzz_api", "datasets", &b);
}

static void api_tensors(void)
{
    bytes b = {.n = 0};
    api_net(&b, 0, 2, 3);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, 2), put(&b, 0); /* dfa */
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    put(&b, API_TENSOR_GET), put(&b, 0), put(&b, 0), put(&b, 2), put(&b, 0);
    put(&b, API_TENSOR_SET), put(&b, 0), put(&b, 0), put(&b, 0), put(&b, 0);
    put_data(&b, 3 * 2 + 1);
    put(&b, API_TENSOR_INIT), put(&b, 0), put(&b, 1), put(&b, 0), put(&b, BPL_INIT_ORTHOGONAL + 1);
    put(&b, VALUE_SPECIAL), put(&b, 2);
    put(&b, API_TENSOR_ADD), put(&b, 0), put(&b, 0), put(&b, 3), put(&b, 1), put(&b, 1);
    put(&b, BPL_GROUP_FORWARD + 1), put(&b, 0); /* "extra", 2 x 2 */
    put(&b, API_FREEZE), put(&b, 0), put(&b, 1), put(&b, 1), put(&b, 1);
    put(&b, API_RANDOM), put(&b, 0), put(&b, 9), put(&b, 1), put(&b, VALUE_SPECIAL);
    put(&b, 0), put(&b, VALUE_SPECIAL), put(&b, 2);
    api_batch(&b, API_TRAIN, 0, 2, 2);
    put(&b, API_SAVE), put(&b, 0), put(&b, 0);
    put(&b, API_LOAD), put(&b, 2), put(&b, 0);
    api_batch(&b, API_PREDICT, 2, 1, 2);
    write_seed("fuzz_api", "tensors", &b);
}

static void api_misc(void)
{
    bytes b = {.n = 0};
    api_net(&b, 0, 3, 4);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, 0), put(&b, 0);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_batch(&b, API_TRAIN, 0, 2, 3);
    for (unsigned which = 0; which < 9; which++) {
        put(&b, API_MISC), put(&b, which), put(&b, 0);
        put_data(&b, 24); /* whatever the call reads */
    }
    put(&b, API_RULE_SET), put(&b, 0x80), put(&b, NAME_RAW), put_str(&b, "lr");
    put(&b, VALUE_SPECIAL), put(&b, 4);
    put(&b, API_RULE_SET_STRING), put(&b, 0x80), put(&b, NAME_RAW), put_str(&b, "optimizer");
    put_str(&b, "momentum");
    put(&b, API_RULE_GET), put(&b, 0x80), put(&b, 1), put(&b, 0);
    put(&b, API_SET_LOSS), put(&b, 0), put(&b, BPL_LOSS_MSE);
    api_batch(&b, API_TRAIN, 0, 1, 3);
    put(&b, API_DESTROY), put(&b, 3), put(&b, 0);
    put(&b, API_DESTROY), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "misc", &b);
}

/* Calls the library must refuse or survive, each once a defect. */
static void api_regressions(void)
{
    bytes b = {.n = 0};
    /* A net without layers saved as a file bpl_net_load refused. */
    put(&b, API_NET_CREATE), put(&b, 0), put(&b, 2), put(&b, 7), put(&b, 0);
    put(&b, API_SAVE), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "regress-save-without-layers", &b);
    /* Values beyond a float: infinite draws, and weights saved as a file
     * bpl_net_load refused. */
    b.n = 0;
    api_net(&b, 0, 3, 4);
    put(&b, API_RANDOM), put(&b, 0), put(&b, 4), put(&b, 0);
    put(&b, VALUE_SPECIAL), put(&b, 0), put(&b, VALUE_SPECIAL), put(&b, 10); /* 0, 1e300 */
    write_seed("fuzz_api", "regress-random-beyond-float", &b);
    b.n = 0;
    api_net(&b, 0, 3, 4);
    put(&b, API_TENSOR_INIT), put(&b, 0), put(&b, 0), put(&b, 0), put(&b, BPL_INIT_CONSTANT + 1);
    put(&b, VALUE_SPECIAL), put(&b, 10); /* 1e300 */
    put(&b, API_SAVE), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "regress-init-beyond-float", &b);
    /* A rule's step counter written from outside, then saved as a file
     * bpl_net_load refused. */
    b.n = 0;
    api_net(&b, 0, 3, 4);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, 3), put(&b, 0); /* tp */
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    put(&b, API_TENSOR_INIT), put(&b, 0), put(&b, 0), put(&b, NAME_RAW);
    put_str(&b, "schedule_steps");
    put(&b, BPL_INIT_CONSTANT + 1), put(&b, VALUE_SPECIAL), put(&b, 4); /* 0.5 */
    put(&b, API_SAVE), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "regress-counter-written-from-outside", &b);
    /* Re-entrant bpl_net_set_rule from an attach hook that then fails. */
    unsigned char script[USER_SCRIPT_SIZE] = {0};
    script[SCRIPT_REENTER + 0] = REENTER_SET_RULE;
    script[SCRIPT_FAIL_HOOK] = 0; /* attach fails */
    b.n = 0;
    api_net(&b, 0, 3, 4);
    api_user(&b, 0, script);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "regress-set-rule-from-failing-attach", &b);
    /* A rule that regroups the forward weight at attach, then trains. */
    memset(script, 0, sizeof script);
    script[SCRIPT_ATTACH] = 3; /* a hostile add: the weight in no group */
    script[SCRIPT_FAIL_HOOK] = 7;
    b.n = 0;
    api_net(&b, 0, 3, 4);
    api_user(&b, 0, script);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_batch(&b, API_TRAIN, 0, 2, 3);
    write_seed("fuzz_api", "regress-regroup-weight", &b);
    /* Counts whose product with the row width overflows size_t. */
    static const struct {
        const char *name;
        unsigned op, variant;
    } overflowing[] = {{"regress-predict-overflowing-batch", API_PREDICT, 8},
                       {"regress-train-overflowing-batch", API_TRAIN, 6},
                       {"regress-alignment-overflowing-batch", API_ALIGNMENT, 6}};
    for (size_t i = 0; i < sizeof overflowing / sizeof overflowing[0]; i++) {
        b.n = 0;
        api_net(&b, 0, 3, 4);
        put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, 0), put(&b, 0);
        put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
        put(&b, overflowing[i].op), put(&b, 0), put(&b, 1), put(&b, VARIANT_HOSTILE + overflowing[i].variant);
        put_data(&b, 12);
        write_seed("fuzz_api", overflowing[i].name, &b);
    }
    b.n = 0;
    api_net(&b, 0, 3, 4);
    put(&b, API_DATASET), put(&b, 0), put(&b, 0), put(&b, 0), put(&b, 1);
    put(&b, VARIANT_HOSTILE + 8); /* u8, n * 3 features overflowing */
    put_data(&b, 8);
    write_seed("fuzz_api", "regress-dataset-overflowing-count", &b);
    b.n = 0;
    put(&b, API_MISC), put(&b, 5), put(&b, 0); /* bpl_activation_forward */
    put(&b, BPL_ACT_TANH + 1), put(&b, 1), put(&b, 3), put(&b, VARIANT_HOSTILE + 1);
    put_data(&b, 10);
    write_seed("fuzz_api", "regress-activation-overflowing-rows", &b);
    /* Rows of no columns: softmax read their first value, and a NULL
     * matrix with a bias was addressed row by row. */
    b.n = 0;
    put(&b, API_MISC), put(&b, 5), put(&b, 0);
    put(&b, BPL_ACT_SOFTMAX + 1), put(&b, 2), put(&b, 0), put(&b, 0), put(&b, 0);
    write_seed("fuzz_api", "regress-activation-softmax-no-columns", &b);
    b.n = 0;
    put(&b, API_MISC), put(&b, 5), put(&b, 0);
    put(&b, BPL_ACT_TANH + 1), put(&b, 2), put(&b, 0), put(&b, VARIANT_HOSTILE), put(&b, 1);
    write_seed("fuzz_api", "regress-activation-null-no-columns", &b);
}

/* A net of 8 inputs shaped 2x2x2 -> conv 3@2x1 pad 1 (tanh) [-> conv 2@2x2
 * stride 2 (relu)] -> dense 2 (softmax), `rule` attached, put to work, saved
 * and loaded. */
static void api_conv(unsigned rule, int deep)
{
    bytes b = {.n = 0};
    put(&b, API_NET_CREATE), put(&b, 0), put(&b, 8 - 1), put(&b, 7), put(&b, 0);
    /* shape 17: C = 2 (divisors of 8, 17 % 4), H = 2 (of 4, (17 >> 3) % 3) */
    put(&b, API_ADD_CONV2D), put(&b, 0), put(&b, 17), put(&b, 3 - 1), put(&b, 2 - 1);
    put(&b, 1 - 1), put(&b, 1 - 1), put(&b, 1), put(&b, BPL_ACT_TANH);
    put(&b, BPL_INIT_GLOROT_UNIFORM), put(&b, 0);
    if (deep) {
        put(&b, API_ADD_CONV2D), put(&b, 0), put(&b, 0), put(&b, 2 - 1), put(&b, 2 - 1);
        put(&b, 2 - 1), put(&b, 2 - 1), put(&b, 0), put(&b, BPL_ACT_RELU);
        put(&b, BPL_INIT_HE_NORMAL), put(&b, 0);
    }
    put(&b, API_ADD_DENSE), put(&b, 0), put(&b, 2 - 1), put(&b, BPL_ACT_SOFTMAX);
    put(&b, BPL_INIT_GLOROT_UNIFORM), put(&b, 0);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, rule), put(&b, 0);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_workout(&b, 8);
    char name[64];
    snprintf(name, sizeof name, "conv%s-%s", deep ? "-deep" : "", bpl_rule_builtin_name(rule));
    write_seed("fuzz_api", name, &b);
}

/* The same 2x2x2 input -> conv 3@2x1 pad 1 (relu): 3x3x4 -> maxpool 2: 3x1x2
 * -> dense 2 (softmax), `rule` attached, put to work, saved and loaded. */
static void api_pool(unsigned rule)
{
    bytes b = {.n = 0};
    put(&b, API_NET_CREATE), put(&b, 0), put(&b, 8 - 1), put(&b, 7), put(&b, 0);
    put(&b, API_ADD_CONV2D), put(&b, 0), put(&b, 17), put(&b, 3 - 1), put(&b, 2 - 1);
    put(&b, 1 - 1), put(&b, 1 - 1), put(&b, 1), put(&b, BPL_ACT_RELU);
    put(&b, BPL_INIT_HE_NORMAL), put(&b, 0);
    put(&b, API_ADD_POOL2D), put(&b, 0), put(&b, 0), put(&b, 1), put(&b, 2 - 1), put(&b, 0);
    put(&b, 0);
    put(&b, API_ADD_DENSE), put(&b, 0), put(&b, 2 - 1), put(&b, BPL_ACT_SOFTMAX);
    put(&b, BPL_INIT_GLOROT_UNIFORM), put(&b, 0);
    put(&b, API_RULE_BUILTIN), put(&b, 0), put(&b, rule), put(&b, 0);
    put(&b, API_ATTACH), put(&b, 0), put(&b, 0), put(&b, 0);
    api_workout(&b, 8);
    char name[64];
    snprintf(name, sizeof name, "pool-%s", bpl_rule_builtin_name(rule));
    write_seed("fuzz_api", name, &b);
}

static void api_corpus(void)
{
    api_pool(0); /* backprop */
    api_pool(8); /* usf */
    for (unsigned r = 0; r < 3; r++) /* backprop, fa, dfa: the rules that train conv nets */
        api_conv(r, r == 2);
    api_conv(0, 1);
    api_regressions();
    for (unsigned r = 0; r < bpl_rule_builtin_count(); r++)
        api_basic(r);
    api_user_rule("user-backprop", 0, 0, 0, BPL_GROUP_FORWARD);
    api_user_rule("user-feedback", 2, 1, 2, BPL_GROUP_FEEDBACK);
    api_user_rule("user-fixed-feedback", 1, 1, 0, BPL_GROUP_NONE);
    for (unsigned a = REENTER_TRAIN; a < REENTER_KINDS; a++)
        api_reenter(a);
    api_datasets();
    api_tensors();
    api_misc();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return EXIT_FAILURE;
    }
    snprintf(out_dir, sizeof out_dir, "%s", argv[1]);
    make_dir(out_dir);
    const char *targets[] = {"fuzz_idx", "fuzz_model", "fuzz_params", "fuzz_api"};
    for (int i = 0; i < 4; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", out_dir, targets[i]);
        make_dir(dir);
    }
    idx_corpus();
    model_corpus();
    params_corpus();
    api_corpus();
    write_dict("fuzz_model.dict", 4); /* strings are a u32 length and bytes */
    write_dict("fuzz_params.dict", 1); /* strings are a length byte and bytes */
    write_dict("fuzz_api.dict", 1);
    return EXIT_SUCCESS;
}
