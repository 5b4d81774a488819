/*
 * test_api.c - the documented contract of nets, layers, training, inference,
 * diagnostics and the library-level functions of bioplaus.h.
 *
 * Rules, hyperparameters and properties are covered by test_rule_api.c;
 * datasets, IDX files and model files by their own suites.
 */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

/* A call that must fail (any negative status) with a message naming `needle`,
 * for inputs whose exact status the header leaves open. */
#define EXPECT_FAILURE(expr, needle) expect_failure((expr), (needle), #expr, __LINE__)

static void expect_failure(int rc, const char *needle, const char *expr, int line)
{
    const char *msg = bpl_last_error_message();
    ck_assert_msg(rc < 0, "line %d: %s -> %d, expected a failure", line, expr, rc);
    ck_assert_msg(strstr(msg, needle) != NULL, "line %d: %s: message '%s' lacks '%s'", line,
                  expr, msg, needle);
}

/* A 4-5(tanh)-3(softmax) classifier: the default loss (cross-entropy) fits. */
static bpl_net *small_classifier(uint64_t seed)
{
    static const size_t units[] = {5, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(4, units, acts, 2, seed);
}

/* Every tensor of every layer, concatenated in layer and tensor order. */
static float *snapshot(bpl_net *net, size_t *n_out)
{
    size_t total = 0;
    for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t),
                                                 &rows, &cols, NULL));
            total += rows * cols;
        }
    }
    float *buf = malloc((total ? total : 1) * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    size_t off = 0;
    for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            const char *name = bpl_layer_tensor_name(layer, t);
            size_t rows, cols;
            BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
            BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, buf + off, rows * cols));
            off += rows * cols;
        }
    }
    *n_out = total;
    return buf;
}

/* Bitwise comparison: "unchanged" in the header means exactly unchanged. */
static int same_params(bpl_net *net, const float *before, size_t n)
{
    size_t now_n;
    float *now = snapshot(net, &now_n);
    int same = now_n == n && memcmp(now, before, n * sizeof *now) == 0;
    free(now);
    return same;
}

static void get_weight(bpl_net *net, size_t layer, float *dst, size_t len)
{
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, layer), "weight", dst, len));
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* ======================================================================== */
/* library: versions, errors, names, BLAS                                   */
/* ======================================================================== */

START_TEST(test_version)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", BPL_VERSION_MAJOR, BPL_VERSION_MINOR,
             BPL_VERSION_PATCH);
    ck_assert_str_eq(BPL_VERSION_STRING, expected);
    ck_assert_str_eq(bpl_version_string(), BPL_VERSION_STRING);
    ck_assert_uint_eq(bpl_version_number(), BPL_VERSION_NUMBER);
    ck_assert_uint_eq(bpl_version_number(), BPL_VERSION_MAJOR * 10000u +
                                                BPL_VERSION_MINOR * 100u + BPL_VERSION_PATCH);
}
END_TEST

static const int all_statuses[] = {
    BPL_OK,          BPL_ERR_INVALID_ARG, BPL_ERR_NOMEM,    BPL_ERR_SHAPE,
    BPL_ERR_STATE,   BPL_ERR_UNSUPPORTED, BPL_ERR_VERSION,  BPL_ERR_IO,
    BPL_ERR_FORMAT,  BPL_ERR_NUMERIC,     BPL_ERR_CALLBACK, BPL_ERR_NOT_FOUND,
    BPL_ERR_OVERFLOW, BPL_ERR_RANGE,      BPL_ERR_INTERNAL};
#define N_STATUSES (sizeof all_statuses / sizeof all_statuses[0])

START_TEST(test_strerror)
{
    /* The values are ABI: pin them. */
    ck_assert_int_eq(BPL_ERR_INVALID_ARG, -1);
    ck_assert_int_eq(BPL_ERR_RANGE, -13);
    ck_assert_int_eq(BPL_ERR_INTERNAL, -99);
    for (size_t i = 0; i < N_STATUSES; i++) {
        const char *s = bpl_strerror(all_statuses[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_msg(s[0] != '\0', "empty description of %d", all_statuses[i]);
        ck_assert_str_ne(s, "unknown status code");
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, bpl_strerror(all_statuses[j]));
    }
    ck_assert_str_eq(bpl_strerror(BPL_ERR_SHAPE), "shape mismatch");
    static const int unknown[] = {1, 42, -14, -98, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_str_eq(bpl_strerror(unknown[i]), "unknown status code");
}
END_TEST

struct thread_report {
    int fresh_is_empty;
    int rc;
    char msg[256];
};

static void *other_thread(void *arg)
{
    struct thread_report *r = arg;
    const char *msg = bpl_last_error_message();
    r->fresh_is_empty = msg != NULL && msg[0] == '\0';
    bpl_net *net;
    r->rc = bpl_net_create(&net, 0, 1);
    snprintf(r->msg, sizeof r->msg, "%s", bpl_last_error_message());
    return NULL;
}

START_TEST(test_error_messages)
{
    ck_assert_ptr_nonnull(bpl_last_error_message());
    ck_assert_int_eq(bpl_error_set(BPL_ERR_RANGE, "my rule: alpha too large"), BPL_ERR_RANGE);
    ck_assert_str_eq(bpl_last_error_message(), "my rule: alpha too large");
    /* NULL is treated as "": still a valid string */
    ck_assert_int_eq(bpl_error_set(BPL_ERR_IO, NULL), BPL_ERR_IO);
    ck_assert_ptr_nonnull(bpl_last_error_message());
    ck_assert_str_eq(bpl_last_error_message(), "");
    ck_assert_int_eq(bpl_error_set(BPL_OK, "fine"), BPL_OK);

    BPL_EXPECT_ERROR(bpl_net_create(NULL, 3, 0), BPL_ERR_INVALID_ARG, "bpl_net_create");

    /* Messages are per thread: a new thread starts with "" and its failures
     * do not touch this thread's message. */
    bpl_error_set(BPL_ERR_STATE, "main thread message");
    struct thread_report report = {0};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, other_thread, &report), 0);
    ck_assert_int_eq(pthread_join(thread, NULL), 0);
    ck_assert(report.fresh_is_empty);
    ck_assert_int_eq(report.rc, BPL_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(report.msg, "bpl_net_create"));
    ck_assert_str_eq(bpl_last_error_message(), "main thread message");
}
END_TEST

struct enum_names {
    const char *(*name)(int);
    int (*from_name)(const char *, int *);
    int first, last;
    const char *function;
    const char *example;
    int example_value;
};

START_TEST(test_enum_names)
{
    const struct enum_names tables[] = {
        {bpl_activation_name, bpl_activation_from_name, BPL_ACT_LINEAR, BPL_ACT_SOFTMAX,
         "bpl_activation_from_name", "tanh", BPL_ACT_TANH},
        {bpl_init_name, bpl_init_from_name, BPL_INIT_GLOROT_UNIFORM, BPL_INIT_CONSTANT,
         "bpl_init_from_name", "glorot_uniform", BPL_INIT_GLOROT_UNIFORM},
        {bpl_loss_name, bpl_loss_from_name, BPL_LOSS_CROSS_ENTROPY, BPL_LOSS_MSE,
         "bpl_loss_from_name", "cross_entropy", BPL_LOSS_CROSS_ENTROPY},
        {bpl_optimizer_name, bpl_optimizer_from_name, BPL_OPT_SGD, BPL_OPT_ADAM,
         "bpl_optimizer_from_name", "adam", BPL_OPT_ADAM},
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        const struct enum_names *e = &tables[t];
        for (int v = e->first; v <= e->last; v++) {
            const char *name = e->name(v);
            ck_assert_ptr_nonnull(name);
            ck_assert_msg(name[0] != '\0' && strcmp(name, "unknown") != 0,
                          "%s: value %d has no name", e->function, v);
            int back = -1;
            BPL_OK_OR_FAIL(e->from_name(name, &back));
            ck_assert_int_eq(back, v);
        }
        ck_assert_str_eq(e->name(e->example_value), e->example);
        static const int outside[] = {-1, -100, 1000, INT_MIN, INT_MAX};
        for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++)
            ck_assert_str_eq(e->name(outside[i]), "unknown");
        ck_assert_str_eq(e->name(e->first - 1), "unknown");
        ck_assert_str_eq(e->name(e->last + 1), "unknown");
        int out = 12345;
        BPL_EXPECT_ERROR(e->from_name("no-such-name", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name("", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name("unknown", &out), BPL_ERR_NOT_FOUND, e->function);
        BPL_EXPECT_ERROR(e->from_name(NULL, &out), BPL_ERR_INVALID_ARG, e->function);
        BPL_EXPECT_ERROR(e->from_name(e->example, NULL), BPL_ERR_INVALID_ARG, e->function);
    }
    int act;
    BPL_OK_OR_FAIL(bpl_activation_from_name("relu", &act));
    ck_assert_int_eq(act, BPL_ACT_RELU);
}
END_TEST

START_TEST(test_blas)
{
    const char *backend = bpl_blas_backend();
    ck_assert_ptr_nonnull(backend);
    ck_assert_msg(strcmp(backend, "openblas") == 0 || strcmp(backend, "blis") == 0 ||
                      strcmp(backend, "cblas") == 0 || strcmp(backend, "builtin") == 0,
                  "unexpected backend '%s'", backend);
    const char *info = bpl_blas_info();
    ck_assert_ptr_nonnull(info);
    ck_assert_msg(info[0] != '\0', "empty BLAS info");

    BPL_EXPECT_ERROR(bpl_set_num_threads(0), BPL_ERR_RANGE, "bpl_set_num_threads");
    BPL_EXPECT_ERROR(bpl_set_num_threads(-4), BPL_ERR_RANGE, "bpl_set_num_threads");
    BPL_OK_OR_FAIL(bpl_set_num_threads(1));
    ck_assert_int_eq(bpl_get_num_threads(), 1);
    if (strcmp(backend, "builtin") == 0)
        BPL_EXPECT_ERROR(bpl_set_num_threads(2), BPL_ERR_UNSUPPORTED, "bpl_set_num_threads");
    ck_assert_int_ge(bpl_get_num_threads(), 1);
}
END_TEST

/* ======================================================================== */
/* nets                                                                     */
/* ======================================================================== */

START_TEST(test_net_create_args)
{
    bpl_net *net = (bpl_net *)(uintptr_t)1; /* must be reset to NULL on failure */
    BPL_EXPECT_ERROR(bpl_net_create(&net, 0, 1), BPL_ERR_INVALID_ARG, "bpl_net_create");
    ck_assert_ptr_null(net);
    BPL_EXPECT_ERROR(bpl_net_create(NULL, 3, 1), BPL_ERR_INVALID_ARG, "bpl_net_create");
    net = (bpl_net *)(uintptr_t)1;
    EXPECT_FAILURE(bpl_net_create(&net, SIZE_MAX, 1), "bpl_net_create");
    ck_assert_ptr_null(net);
    bpl_net_destroy(NULL);

    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 99));
    ck_assert_ptr_nonnull(net);
    ck_assert_uint_eq(bpl_net_input_size(net), 3);
    ck_assert_uint_eq(bpl_net_output_size(net), 0);
    ck_assert_uint_eq(bpl_net_num_layers(net), 0);
    ck_assert_uint_eq(bpl_net_num_params(net), 0);
    ck_assert_uint_eq(bpl_net_seed(net), 99);
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    ck_assert_ptr_null(bpl_net_layer(net, 0));
    ck_assert_ptr_null(bpl_net_rule(net));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    /* A rule needs layers to attach to. */
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "backprop"));
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_STATE, "bpl_net_set_rule");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_null_getters)
{
    ck_assert_int_eq(bpl_net_loss(NULL), 0);
    ck_assert_uint_eq(bpl_net_input_size(NULL), 0);
    ck_assert_uint_eq(bpl_net_output_size(NULL), 0);
    ck_assert_uint_eq(bpl_net_num_layers(NULL), 0);
    ck_assert_uint_eq(bpl_net_num_params(NULL), 0);
    ck_assert_uint_eq(bpl_net_seed(NULL), 0);
    ck_assert_ptr_null(bpl_net_layer(NULL, 0));
    ck_assert_ptr_null(bpl_net_rule(NULL));
    ck_assert_int_eq(bpl_net_phase(NULL), BPL_PHASE_IDLE);
    ck_assert_uint_eq(bpl_layer_index(NULL), 0);
    ck_assert_uint_eq(bpl_layer_units(NULL), 0);
    ck_assert_uint_eq(bpl_layer_inputs(NULL), 0);
    ck_assert_int_eq(bpl_layer_activation(NULL), -1);
    ck_assert_uint_eq(bpl_layer_tensor_count(NULL), 0);
    ck_assert_ptr_null(bpl_layer_tensor_name(NULL, 0));
}
END_TEST

START_TEST(test_net_introspection)
{
    static const size_t units[] = {5, 4, 3};
    static const int acts[] = {BPL_ACT_RELU, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(6, units, acts, 3, 42);
    ck_assert_uint_eq(bpl_net_num_layers(net), 3);
    ck_assert_uint_eq(bpl_net_input_size(net), 6);
    ck_assert_uint_eq(bpl_net_output_size(net), 3);
    ck_assert_uint_eq(bpl_net_seed(net), 42);
    /* every layer's weight [units][inputs] and bias [units] */
    ck_assert_uint_eq(bpl_net_num_params(net), 5 * (6 + 1) + 4 * (5 + 1) + 3 * (4 + 1));

    size_t inputs = 6;
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        ck_assert_ptr_nonnull(layer);
        ck_assert_ptr_eq(bpl_net_layer(net, l), layer);
        ck_assert_uint_eq(bpl_layer_index(layer), l);
        ck_assert_uint_eq(bpl_layer_units(layer), units[l]);
        ck_assert_uint_eq(bpl_layer_inputs(layer), inputs);
        ck_assert_int_eq(bpl_layer_activation(layer), acts[l]);
        ck_assert_uint_eq(bpl_layer_tensor_count(layer), 2);
        ck_assert_str_eq(bpl_layer_tensor_name(layer, 0), "weight");
        ck_assert_str_eq(bpl_layer_tensor_name(layer, 1), "bias");
        ck_assert_ptr_null(bpl_layer_tensor_name(layer, 2));
        ck_assert_ptr_null(bpl_layer_tensor_name(layer, SIZE_MAX));

        size_t rows = 0, cols = 0;
        int group = -7;
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "weight", &rows, &cols, &group));
        ck_assert_uint_eq(rows, units[l]);
        ck_assert_uint_eq(cols, inputs);
        ck_assert_int_eq(group, BPL_GROUP_FORWARD);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "bias", &rows, &cols, &group));
        ck_assert_uint_eq(rows, 1);
        ck_assert_uint_eq(cols, units[l]);
        ck_assert_int_eq(group, BPL_GROUP_FORWARD);
        BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "bias", NULL, NULL, NULL));

        /* biases start at zero */
        float bias[5];
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", bias, units[l]));
        for (size_t j = 0; j < units[l]; j++)
            ck_assert_float_eq(bias[j], 0.0f);
        inputs = units[l];
    }
    ck_assert_ptr_null(bpl_net_layer(net, 3));
    ck_assert_ptr_null(bpl_net_layer(net, SIZE_MAX));

    bpl_layer *first = bpl_net_layer(net, 0);
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(first, "feedback", NULL, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "bpl_layer_tensor_info");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(first, NULL, NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_info");
    BPL_EXPECT_ERROR(bpl_layer_tensor_info(NULL, "weight", NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_info");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_layer_handles_stable)
{
    /* Layer handles stay valid while the net grows (as long as it lives). */
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    bpl_layer *first = bpl_net_layer(net, 0);
    for (int i = 0; i < 20; i++)
        BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    ck_assert_uint_eq(bpl_net_num_layers(net), 21);
    ck_assert_ptr_eq(bpl_net_layer(net, 0), first);
    ck_assert_uint_eq(bpl_layer_units(first), 4);
    ck_assert_uint_eq(bpl_layer_inputs(first), 3);
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 20)), 4);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_dense_args)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    BPL_EXPECT_ERROR(bpl_net_add_dense(NULL, 3, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 0, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, -1, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_SOFTMAX + 1, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_RELU, -1), BPL_ERR_INVALID_ARG,
                     "bpl_net_add_dense");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 3, BPL_ACT_RELU, BPL_INIT_CONSTANT + 1),
                     BPL_ERR_INVALID_ARG, "bpl_net_add_dense");
    EXPECT_FAILURE(bpl_net_add_dense(net, SIZE_MAX, BPL_ACT_RELU, BPL_INIT_ZERO),
                   "bpl_net_add_dense");
    /* failed calls add nothing */
    ck_assert_uint_eq(bpl_net_num_layers(net), 0);

    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 2, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM));
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_add_dense(net, 2, BPL_ACT_RELU, BPL_INIT_GLOROT_UNIFORM),
                     BPL_ERR_STATE, "bpl_net_add_dense");
    ck_assert_uint_eq(bpl_net_num_layers(net), 1);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_loss)
{
    bpl_net *net = small_classifier(1);
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_MSE);
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, 0), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, 3), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    BPL_EXPECT_ERROR(bpl_net_set_loss(net, -1), BPL_ERR_INVALID_ARG, "bpl_net_set_loss");
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_MSE);
    BPL_EXPECT_ERROR(bpl_net_set_loss(NULL, BPL_LOSS_MSE), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_loss");
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY));
    ck_assert_int_eq(bpl_net_loss(net), BPL_LOSS_CROSS_ENTROPY);
    bpl_net_destroy(net);
}
END_TEST

static void count_log(int level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    ++*(int *)user_data;
}

START_TEST(test_log_fn)
{
    bpl_net *net = small_classifier(1);
    int calls = 0;
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, count_log, &calls));
    BPL_EXPECT_ERROR(bpl_net_set_log_fn(NULL, count_log, &calls), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_log_fn");
    /* NULL switches logging off: nothing reaches the old callback */
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, NULL, NULL));
    test_attach(net, "backprop");
    float x[2 * 4], y[2 * 3];
    uint64_t s = 5;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    ck_assert_int_eq(calls, 0);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* layers: tensors and buffers                                              */
/* ======================================================================== */

START_TEST(test_tensor_roundtrip)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);

    float w[6], back[6];
    for (int i = 0; i < 6; i++)
        w[i] = 0.25f * (float)i - 0.5f;
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "weight", w, 6));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);
    const float b[2] = {0.5f, -1.5f};
    float bback[2];
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "bias", b, 2));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", bback, 2));
    ck_assert_mem_eq(b, bback, sizeof b);

    /* non-finite values: rejected before anything is written */
    float bad[6];
    memcpy(bad, w, sizeof bad);
    bad[5] = NAN;
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", bad, 6), BPL_ERR_NUMERIC,
                     "bpl_layer_set_tensor");
    bad[5] = 0.0f;
    bad[0] = INFINITY;
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", bad, 6), BPL_ERR_NUMERIC,
                     "bpl_layer_set_tensor");
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);

    /* length must equal rows * cols */
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", w, 5), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "bias", w, 3), BPL_ERR_SHAPE,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", back, 7), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", back, 0), BPL_ERR_SHAPE,
                     "bpl_layer_get_tensor");
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", back, 6));
    ck_assert_mem_eq(w, back, sizeof w);

    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "feedback", back, 6), BPL_ERR_NOT_FOUND,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "feedback", w, 6), BPL_ERR_NOT_FOUND,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(NULL, "weight", back, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, NULL, back, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "weight", NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_get_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(NULL, "weight", w, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, NULL, w, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    BPL_EXPECT_ERROR(bpl_layer_set_tensor(layer, "weight", NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_tensor");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_tensor)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    size_t params = bpl_net_num_params(net);

    int created = -1;
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_NONE,
                                        BPL_INIT_CONSTANT, 0.5, &created));
    ck_assert_int_eq(created, 1);
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    ck_assert_str_eq(bpl_layer_tensor_name(layer, 2), "extra");
    /* only weights and biases are forward parameters */
    ck_assert_uint_eq(bpl_net_num_params(net), params);
    int group = -7;
    size_t rows = 0, cols = 0;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "extra", &rows, &cols, &group));
    ck_assert_uint_eq(rows, 2);
    ck_assert_uint_eq(cols, 3);
    ck_assert_int_eq(group, BPL_GROUP_NONE);
    float v[6];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(v[i], 0.5f);

    /* borrowed storage is the tensor itself */
    float *data = NULL;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "extra", &data, &rows, &cols));
    ck_assert_uint_eq(rows * cols, 6);
    data[4] = 9.0f;
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    ck_assert_float_eq(v[4], 9.0f);
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "extra", &data, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_layer_tensor(layer, "nope", &data, NULL, NULL), BPL_ERR_NOT_FOUND,
                     "bpl_layer_tensor");
    BPL_EXPECT_ERROR(bpl_layer_tensor(layer, "extra", NULL, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_tensor");

    /* a group-none tensor has no gradient; a trained one has, same shape */
    float *grad = NULL;
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL), BPL_ERR_STATE,
                     "bpl_layer_tensor_grad");
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "weight", &grad, &rows, &cols));
    ck_assert_ptr_nonnull(grad);
    ck_assert_uint_eq(rows, 2);
    ck_assert_uint_eq(cols, 3);
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(layer, "nope", &grad, NULL, NULL),
                     BPL_ERR_NOT_FOUND, "bpl_layer_tensor_grad");
    BPL_EXPECT_ERROR(bpl_layer_tensor_grad(NULL, "weight", &grad, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_tensor_grad");

    /* same name, same shape: kept with its values, regrouped */
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_FEEDBACK,
                                        BPL_INIT_ZERO, 1.0, &created));
    ck_assert_int_eq(created, 0);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "extra", v, 6));
    ck_assert_float_eq(v[4], 9.0f);
    ck_assert_float_eq(v[0], 0.5f);
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, "extra", NULL, NULL, &group));
    ck_assert_int_eq(group, BPL_GROUP_FEEDBACK);
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "extra", &grad, NULL, NULL));
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "extra", 2, 3, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                        1.0, NULL));

    /* same name, other shape */
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "extra", 3, 2, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_SHAPE, "bpl_layer_add_tensor");

    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(NULL, "t", 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, NULL, 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "", 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                          1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, long_name, 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, -2, BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, 2, BPL_INIT_ZERO, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE, 9, 1.0, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, NAN, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, "t", 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_CONSTANT, INFINITY, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor");
    ck_assert_uint_eq(bpl_layer_tensor_count(layer), 3);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_tensor_zero_size)
{
    /* Zero sizes are invalid arguments: "BPL_ERR_INVALID_ARG: NULL where not
     * allowed, bad enum, zero size" (enum bpl_status). */
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    int rc_rows = bpl_layer_add_tensor(layer, "t", 0, 3, BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                       NULL);
    int rows_named = strstr(bpl_last_error_message(), "bpl_layer_add_tensor") != NULL;
    int rc_cols = bpl_layer_add_tensor(layer, "t", 3, 0, BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                       NULL);
    int cols_named = strstr(bpl_last_error_message(), "bpl_layer_add_tensor") != NULL;
    size_t count = bpl_layer_tensor_count(layer);
    bpl_net_destroy(net); /* before asserting: nothing leaks if this fails */
    ck_assert_uint_eq(count, 2);
    ck_assert(rows_named && cols_named);
    ck_assert_msg(rc_rows == BPL_ERR_INVALID_ARG && rc_cols == BPL_ERR_INVALID_ARG,
                  "bpl_layer_add_tensor with 0 rows -> %d (%s), 0 cols -> %d (%s); "
                  "expected %d (%s)",
                  rc_rows, bpl_strerror(rc_rows), rc_cols, bpl_strerror(rc_cols),
                  BPL_ERR_INVALID_ARG, bpl_strerror(BPL_ERR_INVALID_ARG));
}
END_TEST

START_TEST(test_init_tensor_args)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    float w[6];
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT, 2.5));
    get_weight(net, 0, w, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(w[i], 2.5f);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "bias", BPL_INIT_CONSTANT, -1.0));
    float b[2];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", b, 2));
    ck_assert_float_eq(b[0], -1.0f);
    ck_assert_float_eq(b[1], -1.0f);

    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "nope", BPL_INIT_ZERO, 1.0),
                     BPL_ERR_NOT_FOUND, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", -1, 1.0), BPL_ERR_INVALID_ARG,
                     "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT + 1, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, "weight", BPL_INIT_CONSTANT, NAN),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(NULL, "weight", BPL_INIT_ZERO, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    BPL_EXPECT_ERROR(bpl_layer_init_tensor(layer, NULL, BPL_INIT_ZERO, 1.0),
                     BPL_ERR_INVALID_ARG, "bpl_layer_init_tensor");
    /* failed calls leave the values */
    get_weight(net, 0, w, 6);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(w[i], 2.5f);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_buffer)
{
    static const size_t units[] = {2};
    static const int acts[] = {BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(3, units, acts, 1, 7);
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "trace", 4));
    /* same name and width: a no-op */
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "trace", 4));
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "trace", 5), BPL_ERR_SHAPE,
                     "bpl_layer_add_buffer");
    /* the standard buffers exist already, [batch][units] */
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "activation", 2));
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "delta", 2));
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "delta", 3), BPL_ERR_SHAPE,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "w0", 0), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, "", 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(layer, NULL, 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(NULL, "x", 3), BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_buffer");
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* initialisers                                                             */
/* ======================================================================== */

/* The weight of a single [rows][cols] layer drawn by `init`. */
static void draw_weight(int init, size_t rows, size_t cols, uint64_t seed, float *w)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, cols, seed));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, rows, BPL_ACT_LINEAR, init));
    get_weight(net, 0, w, rows * cols);
    float bias[64];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "bias", bias, rows));
    for (size_t j = 0; j < rows; j++)
        ck_assert_float_eq(bias[j], 0.0f);
    bpl_net_destroy(net);
}

struct moments {
    double mean, sd, max_abs;
};

static struct moments moments_of(const float *w, size_t n)
{
    struct moments m = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        m.mean += w[i];
        m.max_abs = fmax(m.max_abs, fabs(w[i]));
    }
    m.mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        m.sd += (w[i] - m.mean) * (w[i] - m.mean);
    m.sd = sqrt(m.sd / (double)n);
    return m;
}

START_TEST(test_init_distributions)
{
    enum { ROWS = 64, COLS = 48, N = ROWS * COLS };
    const double fan_sum = ROWS + COLS, fan_in = COLS;
    /* uniform limit (0 for normal), expected standard deviation */
    const struct {
        int init;
        double limit, sd;
    } cases[] = {
        {BPL_INIT_GLOROT_UNIFORM, sqrt(6 / fan_sum), sqrt(6 / fan_sum) / sqrt(3)},
        {BPL_INIT_GLOROT_NORMAL, 0, sqrt(2 / fan_sum)},
        {BPL_INIT_HE_UNIFORM, sqrt(6 / fan_in), sqrt(6 / fan_in) / sqrt(3)},
        {BPL_INIT_HE_NORMAL, 0, sqrt(2 / fan_in)},
        {BPL_INIT_UNIFORM, 1.0, 1.0 / sqrt(3)},
        {BPL_INIT_NORMAL, 0, 1.0},
    };
    static float w[N];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        draw_weight(cases[c].init, ROWS, COLS, 11, w);
        struct moments m = moments_of(w, N);
        const char *name = bpl_init_name(cases[c].init);
        /* 3072 draws: the sample sd is within ~1.3% (1 sigma) of the truth */
        ck_assert_msg(fabs(m.sd / cases[c].sd - 1) < 0.1, "%s: sd %g, expected %g", name, m.sd,
                      cases[c].sd);
        ck_assert_msg(fabs(m.mean) < 0.1 * cases[c].sd, "%s: mean %g", name, m.mean);
        if (cases[c].limit > 0) {
            ck_assert_msg(m.max_abs <= cases[c].limit * (1 + 1e-6), "%s: %g beyond +-%g", name,
                          m.max_abs, cases[c].limit);
            ck_assert_msg(m.max_abs > 0.95 * cases[c].limit, "%s: max %g of limit %g", name,
                          m.max_abs, cases[c].limit);
        }
    }
    draw_weight(BPL_INIT_ZERO, ROWS, COLS, 11, w);
    for (size_t i = 0; i < N; i++)
        ck_assert_float_eq(w[i], 0.0f);
    draw_weight(BPL_INIT_CONSTANT, ROWS, COLS, 11, w);
    for (size_t i = 0; i < N; i++)
        ck_assert_float_eq(w[i], 1.0f); /* gain 1 */
}
END_TEST

/* max |M M^T - gain^2 I| (rows_first) or |M^T M - gain^2 I| for [rows][cols] M. */
static double gram_error(const float *m, size_t rows, size_t cols, int rows_first,
                         double gain)
{
    size_t n = rows_first ? rows : cols, len = rows_first ? cols : rows;
    double worst = 0;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) {
            double dot = 0;
            for (size_t k = 0; k < len; k++)
                dot += rows_first ? (double)m[a * cols + k] * m[b * cols + k]
                                  : (double)m[k * cols + a] * m[k * cols + b];
            worst = fmax(worst, fabs(dot - (a == b ? gain * gain : 0.0)));
        }
    return worst;
}

START_TEST(test_init_orthogonal)
{
    float w[12 * 12];
    /* wide [5][12]: orthonormal rows */
    draw_weight(BPL_INIT_ORTHOGONAL, 5, 12, 3, w);
    ck_assert_double_lt(gram_error(w, 5, 12, 1, 1.0), 1e-4);
    /* tall [12][5]: orthonormal columns */
    draw_weight(BPL_INIT_ORTHOGONAL, 12, 5, 3, w);
    ck_assert_double_lt(gram_error(w, 12, 5, 0, 1.0), 1e-4);
    /* square: both */
    draw_weight(BPL_INIT_ORTHOGONAL, 12, 12, 3, w);
    ck_assert_double_lt(gram_error(w, 12, 12, 1, 1.0), 1e-4);
    ck_assert_double_lt(gram_error(w, 12, 12, 0, 1.0), 1e-4);

    /* the gain scales the matrix */
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 9, 3));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(bpl_net_layer(net, 0), "weight",
                                         BPL_INIT_ORTHOGONAL, 2.0));
    get_weight(net, 0, w, 36);
    ck_assert_double_lt(gram_error(w, 4, 9, 1, 2.0), 4e-4);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_init_gain)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 40, 3));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 30, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    bpl_layer *layer = bpl_net_layer(net, 0);
    static float w[1200];
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_UNIFORM, 0.1));
    get_weight(net, 0, w, 1200);
    struct moments m = moments_of(w, 1200);
    ck_assert_double_le(m.max_abs, 0.1 * (1 + 1e-6));
    ck_assert_double_gt(m.max_abs, 0.09);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_GLOROT_UNIFORM, 3.0));
    get_weight(net, 0, w, 1200);
    m = moments_of(w, 1200);
    double limit = 3.0 * sqrt(6.0 / 70.0);
    ck_assert_double_le(m.max_abs, limit * (1 + 1e-6));
    ck_assert_double_gt(m.max_abs, 0.9 * limit);
    BPL_OK_OR_FAIL(bpl_layer_init_tensor(layer, "weight", BPL_INIT_NORMAL, 0.5));
    get_weight(net, 0, w, 1200);
    m = moments_of(w, 1200);
    ck_assert_double_lt(fabs(m.sd - 0.5), 0.05);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_init_seed)
{
    static const int inits[] = {BPL_INIT_GLOROT_UNIFORM, BPL_INIT_HE_NORMAL,
                                BPL_INIT_ORTHOGONAL, BPL_INIT_NORMAL};
    float a[8 * 6], b[8 * 6], c[8 * 6];
    for (size_t i = 0; i < sizeof inits / sizeof inits[0]; i++) {
        draw_weight(inits[i], 8, 6, 1234, a);
        draw_weight(inits[i], 8, 6, 1234, b);
        draw_weight(inits[i], 8, 6, 1235, c);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s: same seed, different weights",
                      bpl_init_name(inits[i]));
        ck_assert_msg(memcmp(a, c, sizeof a) != 0, "%s: different seeds, same weights",
                      bpl_init_name(inits[i]));
    }
    /* whole nets too: every layer is drawn from the net's generator */
    bpl_net *n1 = small_classifier(77), *n2 = small_classifier(77), *n3 = small_classifier(78);
    size_t len;
    float *s1 = snapshot(n1, &len);
    ck_assert(same_params(n2, s1, len));
    ck_assert(!same_params(n3, s1, len));
    free(s1);
    bpl_net_destroy(n1);
    bpl_net_destroy(n2);
    bpl_net_destroy(n3);
}
END_TEST

/* ======================================================================== */
/* training                                                                 */
/* ======================================================================== */

START_TEST(test_train_args)
{
    bpl_net *net = small_classifier(3);
    float x[2 * 4], y[2 * 3];
    uint64_t s = 9;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_train_batch(NULL, x, y, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, NULL, y, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, NULL, 2, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 0, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_train_batch");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    bpl_net_destroy(net);

    bpl_net *empty;
    BPL_OK_OR_FAIL(bpl_net_create(&empty, 4, 1));
    BPL_EXPECT_ERROR(bpl_net_train_batch(empty, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    float out[2 * 3];
    BPL_EXPECT_ERROR(bpl_net_predict(empty, x, 2, out, 6), BPL_ERR_STATE, "bpl_net_predict");
    bpl_net_destroy(empty);
}
END_TEST

/* Train and predict on a net whose architecture is invalid: STATE, both. */
static void expect_invalid_architecture(bpl_net *net)
{
    float x[2 * 4], y[2 * 3], out[2 * 3];
    uint64_t s = 4;
    test_fill_uniform(x, 8, -1, 1, &s);
    test_fill_onehot(y, 2, 3, &s);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 2, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_STATE, "bpl_net_predict");
    double angles[2];
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 2, angles, 2), BPL_ERR_STATE,
                     "bpl_net_alignment");
}

START_TEST(test_invalid_architectures)
{
    /* softmax is for the output layer only */
    static const size_t units[] = {5, 3};
    static const int hidden_softmax[] = {BPL_ACT_SOFTMAX, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, hidden_softmax, 2, 1);
    test_attach(net, "backprop");
    expect_invalid_architecture(net);
    bpl_net_destroy(net);

    /* cross-entropy needs a softmax or sigmoid output */
    static const int outputs[] = {BPL_ACT_TANH, BPL_ACT_LINEAR, BPL_ACT_RELU};
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
        const int acts[] = {BPL_ACT_TANH, outputs[i]};
        net = test_make_net(4, units, acts, 2, 1);
        test_attach(net, "backprop");
        expect_invalid_architecture(net);
        /* ... and is fine with MSE */
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
        float x[2 * 4] = {0}, y[2 * 3] = {0}, out[2 * 3];
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2, out, 6));
        bpl_net_destroy(net);
    }
    const int sigmoid_out[] = {BPL_ACT_TANH, BPL_ACT_SIGMOID};
    net = test_make_net(4, units, sigmoid_out, 2, 1);
    test_attach(net, "backprop");
    float x[2 * 4] = {0}, y[2 * 3] = {0};
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    bpl_net_destroy(net);
}
END_TEST

/* Mean over rows of the documented loss of outputs h against targets y. */
static double expected_loss(int loss, int out_act, const float *h, const float *y,
                            size_t rows, size_t cols)
{
    double total = 0;
    for (size_t i = 0; i < rows * cols; i++) {
        if (loss == BPL_LOSS_MSE)
            total += 0.5 * ((double)h[i] - y[i]) * ((double)h[i] - y[i]);
        else if (out_act == BPL_ACT_SIGMOID)
            total -= y[i] * log((double)h[i]) + (1.0 - y[i]) * log(1.0 - (double)h[i]);
        else
            total -= y[i] * log((double)h[i]);
    }
    return total / (double)rows;
}

START_TEST(test_train_loss)
{
    const struct {
        int out_act, loss;
    } cases[] = {{BPL_ACT_SOFTMAX, BPL_LOSS_CROSS_ENTROPY},
                 {BPL_ACT_SIGMOID, BPL_LOSS_CROSS_ENTROPY},
                 {BPL_ACT_LINEAR, BPL_LOSS_MSE},
                 {BPL_ACT_SOFTMAX, BPL_LOSS_MSE}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        static const size_t units[] = {5, 3};
        const int acts[] = {BPL_ACT_TANH, cases[c].out_act};
        bpl_net *net = test_make_net(4, units, acts, 2, 21);
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, cases[c].loss));
        test_attach(net, "backprop");
        BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.05));
        float x[6 * 4], y[6 * 3], h[6 * 3];
        uint64_t s = 31 + c;
        test_fill_uniform(x, 24, -1, 1, &s);
        test_fill_onehot(y, 6, 3, &s);
        BPL_OK_OR_FAIL(bpl_net_predict(net, x, 6, h, 18));
        double want = expected_loss(cases[c].loss, cases[c].out_act, h, y, 6, 3);
        /* loss_out is the loss before the update */
        double first = -1;
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, &first));
        ck_assert_msg(fabs(first - want) <= 1e-6 * fmax(1.0, fabs(want)),
                      "case %zu: loss %.9g, expected %.9g", c, first, want);
        double last = first;
        for (int step = 0; step < 40; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 6, &last));
        ck_assert_msg(last < first, "case %zu: loss %g did not fall from %g", c, last,
                      first);
        ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
        bpl_net_destroy(net);
    }
}
END_TEST

START_TEST(test_train_nonfinite)
{
    bpl_net *net = small_classifier(5);
    test_attach(net, "backprop");
    float x[3 * 4], y[3 * 3];
    uint64_t s = 8;
    test_fill_uniform(x, 12, -1, 1, &s);
    test_fill_onehot(y, 3, 3, &s);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL)); /* moments exist */
    size_t n;
    float *before = snapshot(net, &n);

    float bad_x[3 * 4], bad_y[3 * 3];
    const float poison[] = {NAN, INFINITY, -INFINITY};
    for (size_t p = 0; p < 3; p++) {
        memcpy(bad_x, x, sizeof x);
        bad_x[7] = poison[p];
        double loss = 123.0;
        BPL_EXPECT_ERROR(bpl_net_train_batch(net, bad_x, y, 3, &loss), BPL_ERR_NUMERIC,
                         "bpl_net_train_batch");
        ck_assert(same_params(net, before, n));
        memcpy(bad_y, y, sizeof y);
        bad_y[8] = poison[p];
        BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, bad_y, 3, &loss), BPL_ERR_NUMERIC,
                         "bpl_net_train_batch");
        ck_assert(same_params(net, before, n));
        ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    }
    /* the net trains on afterwards */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert(!same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

/* A linear regression with plain SGD at the largest learning rate: it
 * explodes within a few steps. */
static bpl_net *diverging_regression(void)
{
    static const size_t units[] = {3};
    static const int acts[] = {BPL_ACT_LINEAR};
    bpl_net *net = test_make_net(4, units, acts, 1, 13);
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    test_attach(net, "backprop");
    BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 1000.0));
    return net;
}

START_TEST(test_train_divergence)
{
    bpl_net *net = diverging_regression();
    float x[4 * 4], y[4 * 3];
    uint64_t s = 17;
    test_fill_uniform(x, 16, -1, 1, &s);
    test_fill_uniform(y, 12, -1, 1, &s);
    int failed_at = -1;
    for (int step = 0; step < 200 && failed_at < 0; step++) {
        size_t n;
        float *before = snapshot(net, &n);
        int rc = bpl_net_train_batch(net, x, y, 4, NULL);
        if (rc != BPL_OK) {
            failed_at = step;
            BPL_EXPECT_ERROR(rc, BPL_ERR_NUMERIC, "bpl_net_train_batch");
            ck_assert_msg(same_params(net, before, n),
                          "the failing step %d changed the parameters", step);
        } else {
            /* A step that succeeds never leaves a parameter at Inf or NaN. */
            size_t m;
            float *after = snapshot(net, &m);
            for (size_t i = 0; i < m; i++)
                ck_assert_msg(isfinite(after[i]), "step %d left parameter %zu = %g", step,
                              i, (double)after[i]);
            free(after);
        }
        free(before);
    }
    ck_assert_msg(failed_at > 0, "training did not diverge (failed at %d)", failed_at);
    /* The net is still usable: with a sane learning rate training goes on. */
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 1e-6));
    double loss = NAN;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, &loss));
    ck_assert(isfinite(loss));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

/* RMSprop and Adam check a step against a bound before they check it
 * exactly; weights near the float limit take the exact check.  A tanh unit
 * saturated by a bias of 2e37 gets a zero gradient: its step is zero and
 * must be accepted, by both optimisers, leaving every parameter finite. */
START_TEST(test_huge_weights_take_exact_check)
{
    static const char *const optimizers[] = {"adam", "rmsprop"};
    for (int o = 0; o < 2; o++) {
        static const size_t units[] = {3, 2};
        static const int acts[] = {BPL_ACT_TANH, BPL_ACT_LINEAR};
        bpl_net *net = test_make_net(4, units, acts, 2, 21);
        BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
        test_attach(net, "backprop");
        BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "optimizer", optimizers[o]));
        float bias[3];
        bpl_layer *hidden = bpl_net_layer(net, 0);
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(hidden, "bias", bias, 3));
        bias[1] = 2e37f;
        BPL_OK_OR_FAIL(bpl_layer_set_tensor(hidden, "bias", bias, 3));
        float x[2 * 4], y[2 * 2];
        uint64_t s = 23;
        test_fill_uniform(x, 8, -1, 1, &s);
        test_fill_uniform(y, 4, -1, 1, &s);
        size_t n;
        float *before = snapshot(net, &n);
        for (int step = 0; step < 3; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
        float *after = snapshot(net, &n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(isfinite(after[i]), "%s: parameter %zu = %g", optimizers[o], i,
                          (double)after[i]);
        ck_assert(!same_params(net, before, n)); /* the other units did learn */
        BPL_OK_OR_FAIL(bpl_layer_get_tensor(hidden, "bias", bias, 3));
        ck_assert_float_eq(bias[1], 2e37f);
        free(before);
        free(after);
        bpl_net_destroy(net);
    }
}
END_TEST

/* ======================================================================== */
/* inference                                                                */
/* ======================================================================== */

START_TEST(test_predict_args)
{
    bpl_net *net = small_classifier(2);
    float x[2 * 4] = {0}, out[2 * 3];
    BPL_EXPECT_ERROR(bpl_net_predict(NULL, x, 2, out, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, NULL, 2, out, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, NULL, 6), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 0, out, 0), BPL_ERR_INVALID_ARG,
                     "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 5), BPL_ERR_SHAPE, "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 7), BPL_ERR_SHAPE, "bpl_net_predict");
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 1, out, 6), BPL_ERR_SHAPE, "bpl_net_predict");
    x[3] = NAN;
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_NUMERIC, "bpl_net_predict");
    x[3] = -INFINITY;
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 2, out, 6), BPL_ERR_NUMERIC, "bpl_net_predict");
    x[3] = 0;
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 2, out, 6));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_predict_softmax)
{
    bpl_net *net = small_classifier(6);
    float x[5 * 4], plain[5 * 3], with_rule[5 * 3];
    uint64_t s = 3;
    test_fill_uniform(x, 20, -3, 3, &s);
    /* no rule: the dense forward pass */
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, plain, 15));
    for (size_t i = 0; i < 5; i++) {
        double sum = 0;
        for (size_t j = 0; j < 3; j++) {
            ck_assert_float_ge(plain[i * 3 + j], 0.0f);
            ck_assert_float_le(plain[i * 3 + j], 1.0f);
            sum += plain[i * 3 + j];
        }
        ck_assert_double_lt(fabs(sum - 1.0), 1e-5);
    }
    /* backprop's forward hook is the same dense pass */
    test_attach(net, "backprop");
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, with_rule, 15));
    for (size_t i = 0; i < 15; i++)
        ck_assert_float_eq_tol(with_rule[i], plain[i], 1e-6f);
    /* prediction changes nothing */
    size_t n;
    float *before = snapshot(net, &n);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 5, with_rule, 15));
    ck_assert(same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_predict_large_batch)
{
    enum { ROWS = 600 }; /* more than the default 256-row workspace */
    bpl_net *net = small_classifier(8);
    test_attach(net, "backprop");
    static float x[ROWS * 4], out[ROWS * 3];
    uint64_t s = 12;
    test_fill_uniform(x, ROWS * 4, -2, 2, &s);
    for (size_t i = 0; i < ROWS * 3; i++)
        out[i] = NAN;
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, ROWS, out, ROWS * 3));
    for (size_t i = 0; i < ROWS; i++) {
        float row[3];
        BPL_OK_OR_FAIL(bpl_net_predict(net, x + i * 4, 1, row, 3));
        for (size_t j = 0; j < 3; j++)
            ck_assert_msg(fabsf(out[i * 3 + j] - row[j]) <= 1e-6f, "row %zu col %zu: %g vs %g",
                          i, j, out[i * 3 + j], row[j]);
    }
    bpl_net_destroy(net);
}
END_TEST

/* Accuracy and mean cross-entropy computed from bpl_net_predict. */
static void reference_eval(bpl_net *net, const float *x, const float *y, size_t n,
                           size_t classes, double *acc, double *loss)
{
    float *p = malloc(n * classes * sizeof *p);
    ck_assert_ptr_nonnull(p);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, n, p, n * classes));
    size_t correct = 0;
    for (size_t i = 0; i < n; i++)
        correct += argmax(p + i * classes, classes) == argmax(y + i * classes, classes);
    *acc = (double)correct / (double)n;
    *loss = expected_loss(BPL_LOSS_CROSS_ENTROPY, BPL_ACT_SOFTMAX, p, y, n, classes);
    free(p);
}

START_TEST(test_evaluate)
{
    enum { N = 40 };
    bpl_net *net = small_classifier(4);
    float x[N * 4], y[N * 3];
    uint64_t s = 77;
    test_fill_uniform(x, N * 4, -1, 1, &s);
    test_fill_onehot(y, N, 3, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, N, 4, 3));

    /* without a rule (dense pass) and with one */
    for (int pass = 0; pass < 2; pass++) {
        double acc = -1, loss = -1, want_acc, want_loss;
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, &acc, &loss));
        reference_eval(net, x, y, N, 3, &want_acc, &want_loss);
        ck_assert_double_eq(acc, want_acc);
        ck_assert_double_ge(acc, 0.0);
        ck_assert_double_le(acc, 1.0);
        ck_assert_double_lt(fabs(loss - want_loss), 1e-6 * want_loss);
        BPL_OK_OR_FAIL(bpl_net_evaluate(net, ds, NULL, NULL));
        if (pass == 0)
            test_attach(net, "backprop");
    }
    /* uint8 data: pixels scaled by 1/255, labels as one-hot targets */
    uint8_t pixels[N * 4], labels[N];
    float scaled[N * 4], onehot[N * 3] = {0};
    for (size_t i = 0; i < N * 4; i++) {
        pixels[i] = (uint8_t)((i * 37) % 256);
        scaled[i] = (float)pixels[i] * (1.0f / 255.0f);
    }
    for (size_t i = 0; i < N; i++) {
        labels[i] = (uint8_t)(i % 3);
        onehot[i * 3 + labels[i]] = 1.0f;
    }
    bpl_dataset *u8;
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&u8, pixels, labels, N, 4, 3));
    double acc, loss, want_acc, want_loss;
    BPL_OK_OR_FAIL(bpl_net_evaluate(net, u8, &acc, &loss));
    reference_eval(net, scaled, onehot, N, 3, &want_acc, &want_loss);
    ck_assert_double_eq(acc, want_acc);
    ck_assert_double_lt(fabs(loss - want_loss), 1e-5 * want_loss);

    BPL_EXPECT_ERROR(bpl_net_evaluate(NULL, ds, &acc, &loss), BPL_ERR_INVALID_ARG,
                     "bpl_net_evaluate");
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, NULL, &acc, &loss), BPL_ERR_INVALID_ARG,
                     "bpl_net_evaluate");
    bpl_dataset *wrong;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y, N / 2, 8, 3)); /* 8 features */
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, wrong, &acc, &loss), BPL_ERR_SHAPE,
                     "bpl_net_evaluate");
    bpl_dataset_destroy(wrong);
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, N, 4, 5)); /* 5 classes */
    BPL_EXPECT_ERROR(bpl_net_evaluate(net, wrong, &acc, &loss), BPL_ERR_SHAPE,
                     "bpl_net_evaluate");
    bpl_dataset_destroy(wrong);
    bpl_dataset_destroy(u8);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* fitting                                                                  */
/* ======================================================================== */

#define MAX_EVENTS 64

struct fit_log {
    int n;
    int event[MAX_EVENTS];
    size_t epoch[MAX_EVENTS], step[MAX_EVENTS], steps[MAX_EVENTS];
    double loss[MAX_EVENTS];
    int stop_after;   /* return nonzero on this (1-based) event; 0: never */
    bpl_net *net;     /* if set, evaluate and predict from the callback */
    const bpl_dataset *ds;
    int nested_rc;
    int phase_seen;
};

static int log_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                        void *user_data)
{
    struct fit_log *log = user_data;
    if (log->n < MAX_EVENTS) {
        log->event[log->n] = event;
        log->epoch[log->n] = epoch;
        log->step[log->n] = step;
        log->steps[log->n] = steps;
        log->loss[log->n] = loss;
    }
    log->n++;
    if (log->net) {
        log->phase_seen = bpl_net_phase(log->net);
        double acc;
        float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, out[3];
        int rc = bpl_net_evaluate(log->net, log->ds, &acc, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_predict(log->net, x, 1, out, 3);
        if (rc != BPL_OK)
            log->nested_rc = rc;
    }
    return log->stop_after != 0 && log->n >= log->stop_after;
}

/* 10 examples of 4 features and 3 classes. */
static bpl_dataset *fit_dataset(void)
{
    float x[10 * 4], y[10 * 3];
    uint64_t s = 101;
    test_fill_uniform(x, 40, -1, 1, &s);
    test_fill_onehot(y, 10, 3, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 10, 4, 3));
    return ds;
}

START_TEST(test_fit_events)
{
    bpl_net *net = small_classifier(10);
    test_attach(net, "backprop");
    bpl_dataset *ds = fit_dataset();
    struct fit_log log = {0};
    log.net = net;
    log.ds = ds;
    /* 10 examples in batches of 4: steps of 4, 4 and 2 examples */
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 2, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 8);
    ck_assert_int_eq(log.nested_rc, BPL_OK);
    ck_assert_int_eq(log.phase_seen, BPL_PHASE_IDLE);
    for (int e = 0; e < 2; e++) {
        const int base = e * 4;
        for (int k = 0; k < 3; k++) {
            ck_assert_int_eq(log.event[base + k], BPL_EVENT_BATCH);
            ck_assert_uint_eq(log.epoch[base + k], (size_t)e + 1);
            ck_assert_uint_eq(log.step[base + k], (size_t)k + 1);
            ck_assert_uint_eq(log.steps[base + k], 3);
            ck_assert(isfinite(log.loss[base + k]) && log.loss[base + k] > 0);
        }
        ck_assert_int_eq(log.event[base + 3], BPL_EVENT_EPOCH);
        ck_assert_uint_eq(log.epoch[base + 3], (size_t)e + 1);
        ck_assert_uint_eq(log.step[base + 3], 3);
        ck_assert_uint_eq(log.steps[base + 3], 3);
        /* the epoch's mean training loss, weighted by batch size */
        double mean = (4 * log.loss[base] + 4 * log.loss[base + 1] + 2 * log.loss[base + 2]) /
                      10.0;
        ck_assert_double_lt(fabs(log.loss[base + 3] - mean), 1e-9 * mean);
    }
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);

    /* no callback is fine; the same seed and calls give the same net */
    bpl_net *a = small_classifier(10), *b = small_classifier(10);
    test_attach(a, "backprop");
    test_attach(b, "backprop");
    BPL_OK_OR_FAIL(bpl_net_fit(a, ds, 3, 3, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_net_fit(b, ds, 3, 3, NULL, NULL));
    size_t n;
    float *pa = snapshot(a, &n);
    ck_assert(same_params(b, pa, n));
    free(pa);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_fit_stop)
{
    bpl_dataset *ds = fit_dataset();
    /* stop on a batch event: no further callbacks, BPL_OK */
    bpl_net *net = small_classifier(10);
    test_attach(net, "backprop");
    struct fit_log log = {0};
    log.stop_after = 2;
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 5, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.event[1], BPL_EVENT_BATCH);
    ck_assert_uint_eq(log.step[1], 2);
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    /* exactly two steps were taken: a twin stopped after two steps of a
     * one-epoch fit (same shuffle) ends up identical */
    bpl_net *twin = small_classifier(10);
    test_attach(twin, "backprop");
    struct fit_log twin_log = {0};
    twin_log.stop_after = 2;
    BPL_OK_OR_FAIL(bpl_net_fit(twin, ds, 1, 4, log_progress, &twin_log));
    size_t n;
    float *p = snapshot(net, &n);
    ck_assert(same_params(twin, p, n));
    free(p);
    bpl_net_destroy(twin);
    bpl_net_destroy(net);

    /* stop at the end of the first epoch */
    net = small_classifier(10);
    test_attach(net, "backprop");
    memset(&log, 0, sizeof log);
    log.stop_after = 4;
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 3, 4, log_progress, &log));
    ck_assert_int_eq(log.n, 4);
    ck_assert_int_eq(log.event[3], BPL_EVENT_EPOCH);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_fit_args)
{
    bpl_dataset *ds = fit_dataset();
    bpl_net *net = small_classifier(10);
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 1, 4, NULL, NULL), BPL_ERR_STATE, "bpl_net_fit");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_fit(NULL, ds, 1, 4, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");
    BPL_EXPECT_ERROR(bpl_net_fit(net, NULL, 1, 4, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 1, 0, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_net_fit");

    /* dataset shape against the net: features, then targets */
    float x[6 * 5] = {0}, y[6 * 3] = {0}, y2[6 * 2] = {0};
    bpl_dataset *wrong;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y, 6, 5, 3));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&wrong, x, y2, 6, 4, 2));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    uint8_t pixels[6 * 4] = {0}, labels[6] = {0, 1, 0, 1, 0, 1};
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, 6, 4, 2));
    BPL_EXPECT_ERROR(bpl_net_fit(net, wrong, 1, 2, NULL, NULL), BPL_ERR_SHAPE, "bpl_net_fit");
    bpl_dataset_destroy(wrong);
    /* a matching uint8 dataset trains */
    BPL_OK_OR_FAIL(bpl_dataset_from_u8(&wrong, pixels, labels, 6, 4, 3));
    size_t n;
    float *before = snapshot(net, &n);
    BPL_OK_OR_FAIL(bpl_net_fit(net, wrong, 1, 2, NULL, NULL));
    ck_assert(!same_params(net, before, n));
    free(before);
    bpl_dataset_destroy(wrong);
    bpl_net_destroy(net);
    bpl_dataset_destroy(ds);
}
END_TEST

START_TEST(test_fit_divergence)
{
    bpl_net *net = diverging_regression();
    float x[8 * 4], y[8 * 3];
    uint64_t s = 23;
    test_fill_uniform(x, 32, -1, 1, &s);
    test_fill_uniform(y, 24, -1, 1, &s);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 8, 4, 3));
    /* the message says where training broke down */
    BPL_EXPECT_ERROR(bpl_net_fit(net, ds, 100, 4, NULL, NULL), BPL_ERR_NUMERIC, "epoch");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "step"));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* diagnostics                                                              */
/* ======================================================================== */

/* A 5-6(tanh)-4(tanh)-3(softmax) net and a batch for it. */
static bpl_net *deep_net(uint64_t seed, float *x, float *y, size_t batch)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    uint64_t s = seed * 3 + 1;
    test_fill_uniform(x, batch * 5, -1, 1, &s);
    test_fill_onehot(y, batch, 3, &s);
    return test_make_net(5, units, acts, 3, seed);
}

START_TEST(test_alignment_args)
{
    float x[4 * 5], y[4 * 3];
    bpl_net *net = deep_net(1, x, y, 4);
    double angles[4];
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_STATE,
                     "bpl_net_alignment");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_alignment(NULL, x, y, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, NULL, y, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, NULL, 4, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, NULL, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 0, angles, 3), BPL_ERR_INVALID_ARG,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 2), BPL_ERR_SHAPE,
                     "bpl_net_alignment");
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 0), BPL_ERR_SHAPE,
                     "bpl_net_alignment");
    x[2] = NAN;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_NUMERIC,
                     "bpl_net_alignment");
    x[2] = 0;
    y[1] = INFINITY;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 4, angles, 3), BPL_ERR_NUMERIC,
                     "bpl_net_alignment");
    y[1] = 0;
    /* room for more angles than layers is fine */
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 4));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_alignment_backprop)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = deep_net(2, x, y, 8);
    bpl_net *twin = deep_net(2, x, y, 8);
    test_attach(net, "backprop");
    test_attach(twin, "backprop");
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 8, NULL));
    size_t n;
    float *before = snapshot(net, &n);
    double angles[3] = {-1, -1, -1};
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 8, angles, 3));
    for (int l = 0; l < 3; l++)
        ck_assert_msg(angles[l] >= 0 && angles[l] < 1e-2, "layer %d: %g degrees", l,
                      angles[l]);
    ck_assert(same_params(net, before, n));
    /* nor does it advance the optimiser: training continues as in the twin */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 8, NULL));
    free(before);
    before = snapshot(twin, &n);
    ck_assert(same_params(net, before, n));
    free(before);
    bpl_net_destroy(twin);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_alignment_fa)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = deep_net(3, x, y, 8);
    test_attach(net, "fa");
    size_t n;
    float *before = snapshot(net, &n);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 8, angles, 3));
    /* FA's output layer sees the true error; hidden layers do not */
    ck_assert_double_lt(angles[2], 1e-2);
    for (int l = 0; l < 2; l++)
        ck_assert_msg(isfinite(angles[l]) && angles[l] > 1e-2 && angles[l] < 180,
                      "layer %d: %g degrees", l, angles[l]);
    ck_assert(same_params(net, before, n));
    free(before);
    bpl_net_destroy(net);

    /* zero weights give zero updates: NaN angles */
    bpl_net *zero;
    BPL_OK_OR_FAIL(bpl_net_create(&zero, 5, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(zero, 4, BPL_ACT_TANH, BPL_INIT_ZERO));
    BPL_OK_OR_FAIL(bpl_net_add_dense(zero, 3, BPL_ACT_SOFTMAX, BPL_INIT_ZERO));
    test_attach(zero, "backprop");
    BPL_OK_OR_FAIL(bpl_net_alignment(zero, x, y, 8, angles, 2));
    ck_assert(isnan(angles[0]));
    ck_assert(isnan(angles[1]));
    bpl_net_destroy(zero);
}
END_TEST

START_TEST(test_profiling)
{
    float x[8 * 5], y[8 * 3];
    bpl_net *net = deep_net(4, x, y, 8);
    test_attach(net, "backprop");
    double step_s = -1, gemm_s = -1, flops = -1;
    uint64_t steps = 99;
    /* off by default: nothing recorded */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);
    ck_assert_double_eq(flops, 0);

    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
    for (int i = 0; i < 2; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 2);
    ck_assert_double_gt(flops, 0);
    ck_assert_double_ge(gemm_s, 0);
    ck_assert_double_gt(step_s, 0);
    ck_assert_double_le(gemm_s, step_s);
    double flops2 = flops;
    for (int i = 0; i < 2; i++)
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 4);
    /* the same batch shape costs the same operations every step */
    ck_assert_double_eq(flops, 2 * flops2);
    ck_assert_double_le(gemm_s, step_s);

    /* switching on again resets */
    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 1));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);
    ck_assert_double_eq(step_s, 0);
    ck_assert_double_eq(gemm_s, 0);
    ck_assert_double_eq(flops, 0);
    BPL_OK_OR_FAIL(bpl_net_set_profiling(net, 0));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps));
    ck_assert_uint_eq(steps, 0);

    BPL_EXPECT_ERROR(bpl_net_set_profiling(NULL, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_set_profiling");
    BPL_EXPECT_ERROR(bpl_net_profile(NULL, &step_s, &gemm_s, &flops, &steps),
                     BPL_ERR_INVALID_ARG, "bpl_net_profile");
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* building blocks and phases                                               */
/* ======================================================================== */

START_TEST(test_blocks_outside_hooks)
{
    float x[2 * 5], y[2 * 3];
    bpl_net *net = deep_net(5, x, y, 2);
    test_attach(net, "backprop");
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);

    /* even after a step has sized the buffers, they are off limits between steps */
    bpl_layer *layer = bpl_net_layer(net, 1);
    float *weight;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &weight, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_net_forward_dense(net, x, 2), BPL_ERR_STATE,
                     "bpl_net_forward_dense");
    BPL_EXPECT_ERROR(bpl_net_output_delta(net, y, 2), BPL_ERR_STATE, "bpl_net_output_delta");
    BPL_EXPECT_ERROR(bpl_net_project_delta(net, 1, 0, weight, 1), BPL_ERR_STATE,
                     "bpl_net_project_delta");
    BPL_EXPECT_ERROR(bpl_net_weight_gradients(net, 0), BPL_ERR_STATE,
                     "bpl_net_weight_gradients");
    float *buf;
    const float *in;
    size_t rows, cols;
    BPL_EXPECT_ERROR(bpl_layer_buffer(layer, "activation", &buf, &rows, &cols),
                     BPL_ERR_STATE, "bpl_layer_buffer");
    BPL_EXPECT_ERROR(bpl_layer_input(layer, &in, &rows, &cols), BPL_ERR_STATE,
                     "bpl_layer_input");

    /* NULL arguments */
    BPL_EXPECT_ERROR(bpl_net_forward_dense(NULL, x, 2), BPL_ERR_INVALID_ARG,
                     "bpl_net_forward_dense");
    BPL_EXPECT_ERROR(bpl_net_forward_dense(net, NULL, 2), BPL_ERR_INVALID_ARG,
                     "bpl_net_forward_dense");
    BPL_EXPECT_ERROR(bpl_net_output_delta(NULL, y, 2), BPL_ERR_INVALID_ARG,
                     "bpl_net_output_delta");
    BPL_EXPECT_ERROR(bpl_net_output_delta(net, NULL, 2), BPL_ERR_INVALID_ARG,
                     "bpl_net_output_delta");
    BPL_EXPECT_ERROR(bpl_net_project_delta(NULL, 1, 0, weight, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_project_delta");
    BPL_EXPECT_ERROR(bpl_net_project_delta(net, 1, 0, NULL, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_project_delta");
    BPL_EXPECT_ERROR(bpl_net_weight_gradients(NULL, 0), BPL_ERR_INVALID_ARG,
                     "bpl_net_weight_gradients");
    BPL_EXPECT_ERROR(bpl_layer_buffer(NULL, "delta", &buf, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_buffer");
    BPL_EXPECT_ERROR(bpl_layer_buffer(layer, NULL, &buf, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_buffer");
    BPL_EXPECT_ERROR(bpl_layer_buffer(layer, "delta", NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_layer_buffer");
    BPL_EXPECT_ERROR(bpl_layer_input(NULL, &in, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_input");
    BPL_EXPECT_ERROR(bpl_layer_input(layer, NULL, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_layer_input");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_apply_gradients_args)
{
    bpl_net *net = small_classifier(1);
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD), BPL_ERR_STATE,
                     "bpl_net_apply_gradients");
    test_attach(net, "backprop");
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(NULL, 1u << BPL_GROUP_FORWARD),
                     BPL_ERR_INVALID_ARG, "bpl_net_apply_gradients");
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(net, 1u << 2), BPL_ERR_INVALID_ARG,
                     "bpl_net_apply_gradients");
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(net, 0x80000000u), BPL_ERR_INVALID_ARG,
                     "bpl_net_apply_gradients");
    /* backprop declares no optimiser for the feedback group */
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(net, 1u << BPL_GROUP_FEEDBACK), BPL_ERR_STATE,
                     "bpl_net_apply_gradients");
    bpl_net_destroy(net);
}
END_TEST

/* An empty matrix with a bias: rows of no columns.  No row of a NULL
 * matrix may be addressed (NULL + 0 is undefined, which UBSan reports), and
 * nothing is written. */
START_TEST(test_activation_empty_rows)
{
    const float bias[1] = {1.0f};
    BPL_OK_OR_FAIL(bpl_activation_forward(BPL_ACT_TANH, NULL, bias, 3, 0));
    BPL_OK_OR_FAIL(bpl_activation_forward(BPL_ACT_SOFTMAX, NULL, NULL, 3, 0));
    BPL_OK_OR_FAIL(bpl_activation_forward(BPL_ACT_RELU, NULL, bias, 0, 1));
    BPL_OK_OR_FAIL(bpl_activation_backward(BPL_ACT_TANH, NULL, NULL, 0));
    float a[2] = {5.0f, 6.0f};
    BPL_OK_OR_FAIL(bpl_activation_forward(BPL_ACT_LINEAR, a, bias, 2, 0));
    ck_assert(a[0] == 5.0f && a[1] == 6.0f);
}
END_TEST

START_TEST(test_random_draws)
{
    bpl_net *a = small_classifier(50), *b = small_classifier(50);
    enum { N = 2000 };
    static float u[N], v[N];
    BPL_OK_OR_FAIL(bpl_net_random_uniform(a, u, N, -2.0, 3.0));
    BPL_OK_OR_FAIL(bpl_net_random_uniform(b, v, N, -2.0, 3.0));
    ck_assert_mem_eq(u, v, sizeof u); /* the net's generator, seeded by the net */
    struct moments m = moments_of(u, N);
    for (size_t i = 0; i < N; i++)
        ck_assert(u[i] >= -2.0f && u[i] <= 3.0f);
    ck_assert_double_lt(fabs(m.mean - 0.5), 0.15);
    BPL_OK_OR_FAIL(bpl_net_random_normal(a, u, N, 1.5, 0.5));
    m = moments_of(u, N);
    ck_assert_double_lt(fabs(m.mean - 1.5), 0.05);
    ck_assert_double_lt(fabs(m.sd - 0.5), 0.05);
    BPL_OK_OR_FAIL(bpl_net_random_uniform(a, u, 0, 0.0, 1.0));

    BPL_EXPECT_ERROR(bpl_net_random_uniform(NULL, u, N, 0, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_random_uniform");
    BPL_EXPECT_ERROR(bpl_net_random_uniform(a, NULL, N, 0, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_random_uniform");
    BPL_EXPECT_ERROR(bpl_net_random_normal(NULL, u, N, 0, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_random_normal");
    BPL_EXPECT_ERROR(bpl_net_random_normal(a, NULL, N, 0, 1), BPL_ERR_INVALID_ARG,
                     "bpl_net_random_normal");
    EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, 1.0, 0.0), "bpl_net_random_uniform");
    EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, NAN, 1.0), "bpl_net_random_uniform");
    EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, 0.0, INFINITY), "bpl_net_random_uniform");
    EXPECT_FAILURE(bpl_net_random_normal(a, u, N, 0.0, -1.0), "bpl_net_random_normal");
    EXPECT_FAILURE(bpl_net_random_normal(a, u, N, NAN, 1.0), "bpl_net_random_normal");
    EXPECT_FAILURE(bpl_net_random_normal(a, u, N, 0.0, INFINITY), "bpl_net_random_normal");
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

/* What a building block answered inside a hook. */
struct outcome {
    int rc;
    int named; /* the message named the function */
};

/* A backprop rule that probes the building blocks from inside its hooks. */
struct probe {
    int set_rc[4]; /* bpl_layer_set_tensor from forward, by phase */
    int phase[4];  /* phases seen by forward, by call */
    int calls;
    int probed;
    struct outcome fwd_batch, delta_batch, proj_up, proj_skip, proj_far, grad_far,
        buf_unknown, apply_mask, apply_group;
    size_t buf_rows, buf_cols, in0_rows, in0_cols, in1_cols;
    int in0_is_x, in1_is_activation;
};

static struct outcome outcome_of(int rc, const char *function)
{
    struct outcome o = {rc, strstr(bpl_last_error_message(), function) != NULL};
    return o;
}

static void expect_outcome(struct outcome o, int status, const char *what)
{
    ck_assert_msg(o.rc == status, "%s -> %d (%s), expected %d (%s)", what, o.rc,
                  bpl_strerror(o.rc), status, bpl_strerror(status));
    ck_assert_msg(o.named, "%s: message does not name the function", what);
}

static int probe_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    struct probe *p = self;
    int phase = bpl_net_phase(net);
    if (p->calls < 4)
        p->phase[p->calls] = phase;
    p->calls++;
    /* writing a tensor's own values back: only the status matters */
    bpl_layer *layer = bpl_net_layer(net, 0);
    float bias[6];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", bias, bpl_layer_units(layer)));
    if (phase >= 0 && phase < 4)
        p->set_rc[phase] = bpl_layer_set_tensor(layer, "bias", bias, bpl_layer_units(layer));
    if (phase == BPL_PHASE_TRAIN && !p->probed) {
        p->fwd_batch = outcome_of(bpl_net_forward_dense(net, x, batch + 1),
                                  "bpl_net_forward_dense");
    }
    int rc = bpl_net_forward_dense(net, x, batch);
    if (rc == BPL_OK && phase == BPL_PHASE_TRAIN && !p->probed) {
        const float *in;
        size_t rows, cols;
        rc = bpl_layer_input(bpl_net_layer(net, 0), &in, &p->in0_rows, &p->in0_cols);
        p->in0_is_x = in == x;
        float *act;
        if (rc == BPL_OK)
            rc = bpl_layer_input(bpl_net_layer(net, 1), &in, &rows, &p->in1_cols);
        if (rc == BPL_OK)
            rc = bpl_layer_buffer(layer, "activation", &act, &rows, &cols);
        p->in1_is_activation = rc == BPL_OK && in == act;
    }
    return rc;
}

static int probe_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    struct probe *p = self;
    size_t top = bpl_net_num_layers(net) - 1;
    float *w_top;
    int rc = bpl_layer_tensor(bpl_net_layer(net, top), "weight", &w_top, NULL, NULL);
    if (rc != BPL_OK)
        return rc;
    if (bpl_net_phase(net) == BPL_PHASE_TRAIN && !p->probed) {
        p->delta_batch = outcome_of(bpl_net_output_delta(net, y, batch + 1),
                                    "bpl_net_output_delta");
        p->proj_up = outcome_of(bpl_net_project_delta(net, 0, 1, w_top, 0),
                                "bpl_net_project_delta");
        p->proj_skip = outcome_of(bpl_net_project_delta(net, top, 0, w_top, 1),
                                  "bpl_net_project_delta");
        p->proj_far = outcome_of(bpl_net_project_delta(net, top + 1, 0, w_top, 0),
                                 "bpl_net_project_delta");
        p->grad_far = outcome_of(bpl_net_weight_gradients(net, top + 1),
                                 "bpl_net_weight_gradients");
        float *buf;
        p->buf_unknown = outcome_of(bpl_layer_buffer(bpl_net_layer(net, 0), "nope", &buf,
                                                     NULL, NULL),
                                    "bpl_layer_buffer");
        rc = bpl_layer_buffer(bpl_net_layer(net, 0), "delta", &buf, &p->buf_rows,
                              &p->buf_cols);
        if (rc != BPL_OK)
            return rc;
    }
    rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = top; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static int probe_update(void *self, bpl_net *net)
{
    struct probe *p = self;
    if (bpl_net_phase(net) == BPL_PHASE_TRAIN && !p->probed) {
        p->apply_mask = outcome_of(bpl_net_apply_gradients(net, 1u << 3),
                                   "bpl_net_apply_gradients");
        p->apply_group = outcome_of(bpl_net_apply_gradients(net, 1u << BPL_GROUP_FEEDBACK),
                                    "bpl_net_apply_gradients");
        p->probed = 1;
    }
    for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

static bpl_net *probe_net(struct probe *p, float *x, float *y, size_t batch)
{
    bpl_net *net = deep_net(6, x, y, batch);
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "probe";
    vt.forward = probe_forward;
    vt.compute_targets = probe_targets;
    vt.update = probe_update;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, p));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    return net;
}

START_TEST(test_blocks_inside_hooks)
{
    struct probe p = {.probed = 0};
    float x[3 * 5], y[3 * 3];
    bpl_net *net = probe_net(&p, x, y, 3);
    size_t n;
    float *before = snapshot(net, &n);
    /* the failed calls inside the hooks do not spoil the step */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert(!same_params(net, before, n));
    free(before);
    ck_assert(p.probed);
    expect_outcome(p.fwd_batch, BPL_ERR_SHAPE, "forward_dense with batch + 1");
    expect_outcome(p.delta_batch, BPL_ERR_SHAPE, "output_delta with batch + 1");
    expect_outcome(p.proj_up, BPL_ERR_SHAPE, "project_delta upwards");
    expect_outcome(p.proj_skip, BPL_ERR_SHAPE, "project_delta skipping with a weight");
    expect_outcome(p.proj_far, BPL_ERR_SHAPE, "project_delta from a missing layer");
    ck_assert_int_lt(p.grad_far.rc, 0);
    ck_assert(p.grad_far.named);
    expect_outcome(p.buf_unknown, BPL_ERR_NOT_FOUND, "layer_buffer of an unknown name");
    expect_outcome(p.apply_mask, BPL_ERR_INVALID_ARG, "apply_gradients unknown group");
    expect_outcome(p.apply_group, BPL_ERR_STATE, "apply_gradients without an optimiser");
    /* buffers are [batch][units]; layer 0 reads the batch itself */
    ck_assert_uint_eq(p.buf_rows, 3);
    ck_assert_uint_eq(p.buf_cols, 6);
    ck_assert_uint_eq(p.in0_rows, 3);
    ck_assert_uint_eq(p.in0_cols, 5);
    ck_assert(p.in0_is_x);
    ck_assert_uint_eq(p.in1_cols, 6);
    ck_assert(p.in1_is_activation);
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_phases)
{
    struct probe p = {.calls = 0};
    float x[3 * 5], y[3 * 3], out[3 * 3];
    bpl_net *net = probe_net(&p, x, y, 3);
    p.probed = 1; /* phases only */
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 3, out, 9));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 3, angles, 3));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    ck_assert_int_eq(p.calls, 3);
    ck_assert_int_eq(p.phase[0], BPL_PHASE_TRAIN);
    ck_assert_int_eq(p.phase[1], BPL_PHASE_PREDICT);
    ck_assert_int_eq(p.phase[2], BPL_PHASE_DIAGNOSE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_tensor_during_inference)
{
    struct probe p = {.probed = 1};
    float x[3 * 5], y[3 * 3], out[3 * 3];
    bpl_net *net = probe_net(&p, x, y, 3);
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 3, out, 9));
    ck_assert_int_eq(p.set_rc[BPL_PHASE_PREDICT], BPL_ERR_STATE);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 3, angles, 3));
    ck_assert_int_eq(p.set_rc[BPL_PHASE_DIAGNOSE], BPL_ERR_STATE);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_tensor_during_training)
{
    /* The header: "Errors: ... STATE (inside a step)". */
    struct probe p = {.probed = 1};
    float x[3 * 5], y[3 * 3];
    bpl_net *net = probe_net(&p, x, y, 3);
    p.set_rc[BPL_PHASE_TRAIN] = 12345;
    int rc = bpl_net_train_batch(net, x, y, 3, NULL);
    bpl_net_destroy(net); /* before asserting: nothing leaks if this fails */
    ck_assert_int_eq(rc, BPL_OK);
    ck_assert_msg(p.set_rc[BPL_PHASE_TRAIN] == BPL_ERR_STATE,
                  "bpl_layer_set_tensor inside a training step -> %d (%s), expected %d (%s)",
                  p.set_rc[BPL_PHASE_TRAIN], bpl_strerror(p.set_rc[BPL_PHASE_TRAIN]),
                  BPL_ERR_STATE, bpl_strerror(BPL_ERR_STATE));
}
END_TEST

/* A frozen tensor keeps its values whatever the rule computes; the flag is
 * saved with the net; fixed tensors cannot be frozen. */
START_TEST(test_frozen_tensors)
{
    static const size_t units[] = {6, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(4, units, acts, 2, 5);
    test_attach(net, "fa");
    bpl_layer *first = bpl_net_layer(net, 0), *second = bpl_net_layer(net, 1);
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(NULL, "weight", 1), BPL_ERR_INVALID_ARG,
                     "bpl_layer_set_frozen");
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(first, "nope", 1), BPL_ERR_NOT_FOUND, "nope");
    BPL_EXPECT_ERROR(bpl_layer_set_frozen(second, "feedback", 1), BPL_ERR_STATE, "feedback");
    ck_assert_int_eq(bpl_layer_frozen(first, "weight"), 0);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(first, "weight", 1));
    ck_assert_int_eq(bpl_layer_frozen(first, "weight"), 1);
    ck_assert_int_eq(bpl_layer_frozen(NULL, "weight"), 0);
    float w0[24], w1[24], v0[18], v1[18], x[8 * 4], y[8 * 3];
    uint64_t seed = 3;
    test_fill_uniform(x, 32, -1, 1, &seed);
    test_fill_onehot(y, 8, 3, &seed);
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w0, 24));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(second, "weight", v0, 18));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w1, 24));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(second, "weight", v1, 18));
    ck_assert_mem_eq(w0, w1, sizeof w0);
    ck_assert(memcmp(v0, v1, sizeof v0) != 0);
    const char *path = test_temp_path("frozen.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *copy;
    BPL_OK_OR_FAIL(bpl_net_load(&copy, path));
    ck_assert_int_eq(bpl_layer_frozen(bpl_net_layer(copy, 0), "weight"), 1);
    ck_assert_int_eq(bpl_layer_frozen(bpl_net_layer(copy, 1), "weight"), 0);
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(first, "weight", 0));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 8, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(first, "weight", w1, 24));
    ck_assert(memcmp(w0, w1, sizeof w0) != 0);
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");

    TCase *tc = tcase_create("library");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_enum_names);
    tcase_add_test(tc, test_blas);
    suite_add_tcase(s, tc);

    tc = tcase_create("net");
    tcase_add_test(tc, test_net_create_args);
    tcase_add_test(tc, test_null_getters);
    tcase_add_test(tc, test_net_introspection);
    tcase_add_test(tc, test_layer_handles_stable);
    tcase_add_test(tc, test_add_dense_args);
    tcase_add_test(tc, test_set_loss);
    tcase_add_test(tc, test_log_fn);
    suite_add_tcase(s, tc);

    tc = tcase_create("layer");
    tcase_add_test(tc, test_tensor_roundtrip);
    tcase_add_test(tc, test_add_tensor);
    tcase_add_test(tc, test_add_tensor_zero_size);
    tcase_add_test(tc, test_init_tensor_args);
    tcase_add_test(tc, test_add_buffer);
    tcase_add_test(tc, test_frozen_tensors);
    suite_add_tcase(s, tc);

    tc = tcase_create("init");
    tcase_add_test(tc, test_init_distributions);
    tcase_add_test(tc, test_init_orthogonal);
    tcase_add_test(tc, test_init_gain);
    tcase_add_test(tc, test_init_seed);
    suite_add_tcase(s, tc);

    tc = tcase_create("training");
    tcase_add_test(tc, test_train_args);
    tcase_add_test(tc, test_invalid_architectures);
    tcase_add_test(tc, test_train_loss);
    tcase_add_test(tc, test_train_nonfinite);
    tcase_add_test(tc, test_train_divergence);
    tcase_add_test(tc, test_huge_weights_take_exact_check);
    suite_add_tcase(s, tc);

    tc = tcase_create("inference");
    tcase_add_test(tc, test_predict_args);
    tcase_add_test(tc, test_predict_softmax);
    tcase_add_test(tc, test_predict_large_batch);
    tcase_add_test(tc, test_evaluate);
    suite_add_tcase(s, tc);

    tc = tcase_create("fit");
    tcase_add_test(tc, test_fit_events);
    tcase_add_test(tc, test_fit_stop);
    tcase_add_test(tc, test_fit_args);
    tcase_add_test(tc, test_fit_divergence);
    suite_add_tcase(s, tc);

    tc = tcase_create("diagnostics");
    tcase_add_test(tc, test_alignment_args);
    tcase_add_test(tc, test_alignment_backprop);
    tcase_add_test(tc, test_alignment_fa);
    tcase_add_test(tc, test_profiling);
    suite_add_tcase(s, tc);

    tc = tcase_create("building_blocks");
    tcase_add_test(tc, test_blocks_outside_hooks);
    tcase_add_test(tc, test_apply_gradients_args);
    tcase_add_test(tc, test_random_draws);
    tcase_add_test(tc, test_activation_empty_rows);
    tcase_add_test(tc, test_blocks_inside_hooks);
    tcase_add_test(tc, test_phases);
    tcase_add_test(tc, test_set_tensor_during_inference);
    tcase_add_test(tc, test_set_tensor_during_training);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(api_suite());
}
