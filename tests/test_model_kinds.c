/*
 * test_model_kinds.c - model files with layers of kinds other than dense.
 *
 * A conv net saved and loaded (by file and by buffer) must come back bit
 * for bit, as a dense one does: the same layers (kind, width, window,
 * shape), every tensor and optimiser moment, the same predictions, and the
 * same training after the load as without it.  Several geometries: stride,
 * padding, non-square kernels, conv -> conv -> dense.  The layer record's
 * layout is the documented one (lib/model_io.c), and a dense net's file is
 * what it was before kinds with params existed.  A kind without parameter
 * tensors (as pooling is) stores its params and no tensor, and comes back
 * through the same path; a kind the loader does not know is not saved.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bpl_internal.h"

enum { HEADER = 32, B = 4, PRED_ROWS = 5 };

typedef struct conv_spec {
    size_t c_out, kh, kw, stride, pad;
} conv_spec;

typedef struct geometry {
    const char *what;
    size_t c, h, w;
    conv_spec conv[2];
    size_t n_conv;
    size_t dense; /* the output layer's units */
} geometry;

static const geometry geometries[] = {
    {"plain", 1, 6, 6, {{2, 3, 3, 1, 0}}, 1, 3},
    {"stride 2, padding 1, 3x2 kernel", 2, 7, 6, {{3, 3, 2, 2, 1}}, 1, 3},
    {"same padding 2, 5x5", 3, 8, 8, {{4, 5, 5, 1, 2}}, 1, 2},
    {"conv -> conv -> dense", 2, 6, 6, {{3, 3, 3, 2, 1}, {4, 2, 2, 1, 0}}, 2, 3},
    {"1x3 kernel, stride 2, then stride above the kernel", 2, 6, 9,
     {{2, 1, 3, 2, 0}, {2, 2, 1, 3, 2}}, 2, 4},
};
#define N_GEOMETRIES (sizeof geometries / sizeof geometries[0])

static const char *const rules[] = {"backprop", "fa", "dfa"};
#define N_RULES (sizeof rules / sizeof rules[0])
static const char *const optimizers[] = {"adam", "momentum", "rmsprop", "sgd"};

static size_t in_size(const geometry *g)
{
    return g->c * g->h * g->w;
}

static bpl_net *conv_net(const geometry *g, uint64_t seed)
{
    bpl_net *net;
    const size_t chw[] = {g->c, g->h, g->w};
    BPL_OK_OR_FAIL(bpl_net_create(&net, in_size(g), seed));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    for (size_t i = 0; i < g->n_conv; i++) {
        const conv_spec *c = &g->conv[i];
        BPL_OK_OR_FAIL(bpl_net_add_conv2d(net, c->c_out, c->kh, c->kw, c->stride, c->pad,
                                          i ? BPL_ACT_RELU : BPL_ACT_TANH,
                                          BPL_INIT_GLOROT_UNIFORM));
    }
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, g->dense, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    /* Biases start at zero: give them values a lost one would show. */
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        float *b;
        size_t rows, cols;
        BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), "bias", &b, &rows, &cols));
        test_fill_uniform(b, rows * cols, -0.2f, 0.2f, &seed);
    }
    return net;
}

static void train(bpl_net *net, const geometry *g, int steps, uint64_t seed)
{
    size_t n = in_size(g);
    float *x = malloc(B * n * sizeof *x), *y = malloc(B * g->dense * sizeof *y);
    ck_assert(x && y);
    for (int s = 0; s < steps; s++) {
        uint64_t state = seed + (uint64_t)s;
        test_fill_uniform(x, B * n, -1.0f, 1.0f, &state);
        test_fill_onehot(y, B, g->dense, &state);
        double loss;
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, &loss));
    }
    free(x);
    free(y);
}

static void assert_same_predictions(bpl_net *a, bpl_net *b, const geometry *g,
                                    const char *what)
{
    size_t n = in_size(g), out = bpl_net_outputs(a);
    float *x = malloc(PRED_ROWS * n * sizeof *x);
    float *pa = malloc(PRED_ROWS * out * sizeof *pa), *pb = malloc(PRED_ROWS * out * sizeof *pb);
    ck_assert(x && pa && pb);
    uint64_t seed = 4242;
    test_fill_uniform(x, PRED_ROWS * n, -2.0f, 2.0f, &seed);
    BPL_OK_OR_FAIL(bpl_net_predict(a, x, PRED_ROWS, pa, PRED_ROWS * out));
    BPL_OK_OR_FAIL(bpl_net_predict(b, x, PRED_ROWS, pb, PRED_ROWS * out));
    ck_assert_msg(memcmp(pa, pb, PRED_ROWS * out * sizeof *pa) == 0, "%s: predictions differ",
                  what);
    free(x);
    free(pa);
    free(pb);
}

static int same_floats(const float *a, const float *b, size_t n)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* The same layers (kind, width, params, shape, activation) holding the same
 * tensors: names, shapes, groups, flags, values and optimiser moments. */
static void assert_same_net(const bpl_net *a, const bpl_net *b, const char *what)
{
    ck_assert_uint_eq(a->n_layers, b->n_layers);
    ck_assert_uint_eq(a->in_ndim, b->in_ndim);
    ck_assert(memcmp(a->in_shape, b->in_shape, a->in_ndim * sizeof *a->in_shape) == 0);
    for (size_t l = 0; l < a->n_layers; l++) {
        const bpl_layer *la = a->layers[l], *lb = b->layers[l];
        ck_assert_ptr_eq(la->kind, lb->kind);
        ck_assert_uint_eq(la->units, lb->units);
        ck_assert(memcmp(&la->params, &lb->params, sizeof la->params) == 0);
        ck_assert_uint_eq(la->ndim, lb->ndim);
        ck_assert(memcmp(la->shape, lb->shape, la->ndim * sizeof *la->shape) == 0);
        ck_assert_int_eq(la->activation, lb->activation);
        ck_assert_int_eq(la->init, lb->init);
        ck_assert_msg(la->n_tensors == lb->n_tensors, "%s: layer %zu: %zu tensors, loaded %zu",
                      what, l, la->n_tensors, lb->n_tensors);
        for (size_t i = 0; i < la->n_tensors; i++) {
            const bpl__tensor *ta = &la->tensors[i];
            const bpl__tensor *tb = bpl__layer_find_tensor(lb, ta->name);
            ck_assert_msg(tb != NULL, "%s: layer %zu lacks '%s'", what, l, ta->name);
            size_t n = ta->rows * ta->cols;
            ck_assert(ta->rows == tb->rows && ta->cols == tb->cols && ta->group == tb->group);
            ck_assert_int_eq(ta->frozen, tb->frozen);
            ck_assert_msg(same_floats(ta->data, tb->data, n), "%s: layer %zu '%s' differs", what,
                          l, ta->name);
            ck_assert_msg(same_floats(ta->m, tb->m, n) && same_floats(ta->v, tb->v, n),
                          "%s: layer %zu '%s': optimiser moments differ", what, l, ta->name);
        }
    }
}

static bpl_net *load_buffer(const void *data, size_t size)
{
    bpl_net *net = NULL;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&net, data, size));
    return net;
}

/* Saved to a file and to a buffer: the same bytes, which load to a net that
 * saves them again. */
static bpl_net *round_trip(bpl_net *net, const char *what)
{
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    const char *path = test_temp_path("kinds.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *from_file = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&from_file, path));
    bpl_net *loaded = load_buffer(data, size);
    void *again;
    size_t again_size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(from_file, &again, &again_size));
    ck_assert_msg(again_size == size && memcmp(again, data, size) == 0,
                  "%s: the loaded net saves other bytes", what);
    assert_same_net(from_file, loaded, what);
    bpl_buffer_free(again);
    bpl_buffer_free(data);
    bpl_net_destroy(from_file);
    return loaded;
}

START_TEST(conv_net_round_trip_without_rule)
{
    for (size_t k = 0; k < N_GEOMETRIES; k++) {
        const geometry *g = &geometries[k];
        bpl_net *net = conv_net(g, 10 + k);
        bpl_net *loaded = round_trip(net, g->what);
        assert_same_net(net, loaded, g->what);
        assert_same_predictions(net, loaded, g, g->what);
        ck_assert_ptr_null(bpl_net_rule(loaded));
        /* A rule attached afterwards trains both alike. */
        test_attach(net, "backprop");
        test_attach(loaded, "backprop");
        train(net, g, 2, 5);
        train(loaded, g, 2, 5);
        assert_same_net(net, loaded, g->what);
        bpl_net_destroy(net);
        bpl_net_destroy(loaded);
    }
}
END_TEST

/* Trained with a rule and optimiser, saved, loaded: the same net, and
 * training both on (steps and an epoch of bpl_net_fit, which draws from the
 * generator) keeps them the same to the bit. */
START_TEST(conv_net_trains_on_after_load)
{
    const geometry *g = &geometries[(size_t)_i % N_GEOMETRIES];
    const char *rule_name = rules[(size_t)_i / N_GEOMETRIES];
    const char *optimizer = optimizers[(size_t)_i % 4];
    char what[256];
    snprintf(what, sizeof what, "%s, %s, %s", g->what, rule_name, optimizer);
    bpl_net *net = conv_net(g, 100 + (uint64_t)_i);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rule_name));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", optimizer));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.02));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    train(net, g, 3, 60);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(bpl_net_layer(net, 0), "bias", 1));
    bpl_net *loaded = round_trip(net, what);
    assert_same_net(net, loaded, what);
    assert_same_predictions(net, loaded, g, what);
    ck_assert_str_eq(bpl_rule_name(bpl_net_rule(loaded)), rule_name);
    ck_assert_uint_eq(bpl_net_param_count(loaded), bpl_net_param_count(net));

    train(net, g, 3, 7);
    train(loaded, g, 3, 7);
    assert_same_net(net, loaded, what);
    size_t n = in_size(g), rows = 9;
    float *x = malloc(rows * n * sizeof *x), *y = malloc(rows * g->dense * sizeof *y);
    ck_assert(x && y);
    uint64_t seed = 77;
    test_fill_uniform(x, rows * n, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, rows, g->dense, &seed);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, rows, n, g->dense));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, 4, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_net_fit(loaded, ds, 1, 4, NULL, NULL));
    assert_same_net(net, loaded, what);
    assert_same_predictions(net, loaded, g, what);
    bpl_dataset_destroy(ds);
    free(x);
    free(y);
    bpl_net_destroy(net);
    bpl_net_destroy(loaded);
}
END_TEST

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The first layer's record, as lib/model_io.c documents it: the kind's
 * name, then units, kernel_h, kernel_w, stride and pad, then its shape. */
START_TEST(conv_record_layout)
{
    const geometry *g = &geometries[1];
    bpl_net *net = conv_net(g, 3);
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    const unsigned char *p = (const unsigned char *)data + HEADER;
    /* the input shape C x H x W, seed, generator, loss, layers, steps */
    ck_assert_uint_eq(le(p, 4), 3);
    ck_assert_uint_eq(le(p + 4, 8), 2);
    size_t at = 4 + 3 * 8 + 8 + 32 + 4;
    ck_assert_uint_eq(le(p + at, 4), 2); /* layers */
    at += 4 + 16;
    ck_assert_uint_eq(le(p + at, 4), 6);
    ck_assert(memcmp(p + at + 4, "conv2d", 6) == 0);
    at += 10;
    const uint64_t want[] = {3, 3, 2, 2, 1}; /* units, kh, kw, stride, pad */
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(le(p + at + 8 * i, 8), want[i]);
    at += 40;
    ck_assert_uint_eq(le(p + at, 4), 3); /* shape 3 x 4 x 4 */
    ck_assert_uint_eq(le(p + at + 4, 8), 3);
    ck_assert_uint_eq(le(p + at + 12, 8), 4);
    ck_assert_uint_eq(le(p + at + 20, 8), 4);
    at += 28 + 8;
    ck_assert_uint_eq(le(p + at, 4), 2); /* weight and bias */
    bpl_buffer_free(data);
    bpl_net_destroy(net);
}
END_TEST

/* A tensor's record: its name, group, rows, cols, flags, values and
 * optimiser moments. */
static size_t tensor_bytes(size_t name_length, size_t values)
{
    return 4 + name_length + 4 + 16 + 1 + 3 * 4 * values;
}

/* A dense net's file is the bytes it was before: no params in its layer
 * records (the payload's first layer starts with the kind, then the shape
 * [units]). */
START_TEST(dense_record_unchanged)
{
    const size_t units[] = {4, 3};
    const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(5, units, acts, 2, 9);
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    const unsigned char *p = (const unsigned char *)data + HEADER + 76;
    ck_assert_uint_eq(le(p, 4), 5);
    ck_assert(memcmp(p + 4, "dense", 5) == 0);
    ck_assert_uint_eq(le(p + 9, 4), 1);
    ck_assert_uint_eq(le(p + 13, 8), 4);
    /* kind, shape [units], activation, initialiser, tensor count; weight
     * 4x5 and bias 4, layer 2's 3x4 and 3 (with their optimiser moments);
     * no rule */
    size_t layer1 = 9 + 12 + 12 + tensor_bytes(6, 20) + tensor_bytes(4, 4);
    size_t layer2 = 9 + 12 + 12 + tensor_bytes(6, 12) + tensor_bytes(4, 3);
    ck_assert_uint_eq(size, HEADER + 76 + layer1 + layer2 + 4);
    bpl_buffer_free(data);
    bpl_net_destroy(net);
}
END_TEST

/* Every allocation of loading a conv net may fail: the load then fails with
 * BPL_ERR_NOMEM and no net (no leak: the sanitiser build checks), and the
 * next load gives the net. */
START_TEST(conv_load_survives_allocation_failure)
{
    const geometry *g = &geometries[3];
    bpl_net *net = conv_net(g, 21);
    test_attach(net, "fa");
    train(net, g, 1, 3);
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    uint64_t before = bpl__alloc_count();
    bpl_net *loaded = load_buffer(data, size);
    uint64_t n = bpl__alloc_count() - before;
    bpl_net_destroy(loaded);
    ck_assert_uint_gt(n, 10);
    for (uint64_t k = 1; k <= n; k++) {
        loaded = (bpl_net *)1;
        bpl__alloc_fail_at(k);
        int rc = bpl_net_load_from_buffer(&loaded, data, size);
        bpl__alloc_fail_at(0);
        ck_assert_msg(rc == BPL_ERR_NOMEM, "allocation %llu of %llu failed: status %d (%s)",
                      (unsigned long long)k, (unsigned long long)n, rc,
                      bpl_last_error_message());
        ck_assert_ptr_null(loaded);
    }
    loaded = load_buffer(data, size);
    assert_same_net(net, loaded, "after failed loads");
    bpl_net_destroy(loaded);
    bpl_buffer_free(data);
    bpl_net_destroy(net);
}
END_TEST

/* ---- a kind without parameter tensors ------------------------------------------- */

/* out = act(kernel_h * in): a kind with params and no tensors, its output
 * shaped like its input, its width unused (0, as a pooling layer's may
 * be). */
static int scale_output_shape(const size_t *in_dims, size_t in_ndim, size_t units,
                              const bpl__kind_params *params, size_t *dims, size_t *ndim)
{
    (void)units;
    if (params->kernel_h == 0 || params->stride != 1)
        return bpl__fail(BPL_ERR_INVALID_ARG, "a scale needs kernel_h > 0 and stride 1");
    memcpy(dims, in_dims, in_ndim * sizeof *dims);
    *ndim = in_ndim;
    return BPL_OK;
}

static int scale_build(bpl_layer *layer)
{
    (void)layer;
    return BPL_OK;
}

static void scale_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                          int activation, float *out)
{
    (void)net;
    for (size_t i = 0; i < batch * layer->size; i++)
        out[i] = (float)layer->params.kernel_h * in[i];
    bpl__activation_forward(activation, out, NULL, batch, layer->size);
}

static const bpl__kind scale_kind = {
    .name = "test_scale",
    .caps = BPL__CAN_FORWARD,
    .output_shape = scale_output_shape,
    .build = scale_build,
    .forward = scale_forward,
};

/* 1x4x4 -> scale 3 -> conv 2@2x2 -> scale 2 -> dense 3. */
static bpl_net *scale_net(void)
{
    bpl_net *net;
    const size_t chw[] = {1, 4, 4};
    const bpl__kind_params three = {.kernel_h = 3, .stride = 1}, two = {.kernel_h = 2,
                                                                        .stride = 1};
    BPL_OK_OR_FAIL(bpl_net_create(&net, 16, 8));
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(
        bpl__net_append_layer(net, &scale_kind, 0, &three, BPL_ACT_LINEAR, BPL_INIT_ZERO, 0));
    BPL_OK_OR_FAIL(
        bpl_net_add_conv2d(net, 2, 2, 2, 1, 0, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(
        bpl__net_append_layer(net, &scale_kind, 0, &two, BPL_ACT_LINEAR, BPL_INIT_ZERO, 0));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    return net;
}

START_TEST(kind_without_parameters_round_trips)
{
    bpl__kind_register_test(&scale_kind);
    bpl_net *net = scale_net();
    ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(net, 0)), 0);
    geometry g = {"scale", 1, 4, 4, {{0}}, 0, 3};
    bpl_net *loaded = round_trip(net, "a kind without parameters");
    assert_same_net(net, loaded, "a kind without parameters");
    ck_assert_uint_eq(loaded->layers[0]->params.kernel_h, 3);
    ck_assert_uint_eq(loaded->layers[2]->params.kernel_h, 2);
    ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(loaded, 2)), 0);
    assert_same_predictions(net, loaded, &g, "a kind without parameters");
    bpl_net_destroy(loaded);

    /* Its record: the name, units 0, kernel_h 3, kernel_w 0, stride 1,
     * pad 0, the shape 1x4x4, activation, initialiser, no tensor. */
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    const unsigned char *p = (const unsigned char *)data + HEADER + 4 + 24 + 8 + 32 + 4 + 4 +
                             16;
    ck_assert_uint_eq(le(p, 4), 10);
    ck_assert(memcmp(p + 4, "test_scale", 10) == 0);
    p += 14;
    const uint64_t want[] = {0, 3, 0, 1, 0};
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(le(p + 8 * i, 8), want[i]);
    p += 40 + 28;
    ck_assert_uint_eq(le(p + 8, 4), 0); /* tensors */

    /* A tensor of its own is a rule's (pending until a rule takes it), as
     * on any layer; its params are checked by the kind. */
    unsigned char *edited = malloc(size);
    ck_assert_ptr_nonnull(edited);
    memcpy(edited, data, size);
    edited[HEADER + 92 + 14 + 24] = 2; /* layer 0's stride */
    uint32_t crc = (uint32_t)crc32(0L, edited + HEADER, (uInt)(size - HEADER));
    for (int i = 0; i < 4; i++)
        edited[24 + i] = (unsigned char)(crc >> (8 * i));
    crc = (uint32_t)crc32(0L, edited, 28);
    for (int i = 0; i < 4; i++)
        edited[28 + i] = (unsigned char)(crc >> (8 * i));
    bpl_net *refused = NULL;
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&refused, edited, size), BPL_ERR_FORMAT,
                     "layer 0 (test_scale) does not fit its input 1x4x4: a scale needs");
    ck_assert_ptr_null(refused);
    free(edited);
    bpl_buffer_free(data);

    /* A kind the loader does not know is not saved: the file could not be
     * loaded. */
    bpl__kind_register_test(NULL);
    data = (void *)1;
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(net, &data, &size), BPL_ERR_UNSUPPORTED,
                     "layer 0 is of kind 'test_scale', which the model file format does not "
                     "store (it stores dense, conv2d, maxpool2d, avgpool2d)");
    ck_assert_ptr_null(data);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_kinds");
    TCase *tc = tcase_create("conv");
    tcase_add_test(tc, conv_net_round_trip_without_rule);
    tcase_add_loop_test(tc, conv_net_trains_on_after_load, 0, (int)(N_GEOMETRIES * N_RULES));
    tcase_add_test(tc, conv_record_layout);
    tcase_add_test(tc, dense_record_unchanged);
    tcase_add_test(tc, conv_load_survives_allocation_failure);
    suite_add_tcase(s, tc);
    tc = tcase_create("no_parameters");
    tcase_add_test(tc, kind_without_parameters_round_trips);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
