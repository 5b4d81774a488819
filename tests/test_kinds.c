/*
 * test_kinds.c - layer kinds: the dense kind's table and shapes, the net's
 * input shape, the kind-neutral building blocks rules call (internal and
 * public), and bpl_net_set_rule refusing a rule, built-in or a user's,
 * whose needs a layer's kind lacks (through test-only kinds: no kind but
 * dense is public).
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "bpl_internal.h"

/* 5-6(tanh)-4(tanh)-3(softmax). */
static bpl_net *make_net(void)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(5, units, acts, 3, 7);
}

static int all_zero(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0.0f)
            return 0;
    return 1;
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        v[i] = scale * sinf(1.0f + (float)i);
}

START_TEST(test_dense_kind_and_shapes)
{
    bpl_net *net = make_net();
    size_t dims[BPL__MAX_DIMS], ndim;
    static const size_t sizes[] = {6, 4, 3}, inputs[] = {5, 6, 4};
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        ck_assert_str_eq(bpl__layer_kind(layer)->name, "dense");
        bpl__layer_shape(layer, dims, &ndim);
        ck_assert_uint_eq(ndim, 1);
        ck_assert_uint_eq(dims[0], sizes[l]);
        ck_assert_uint_eq(bpl_layer_units(layer), sizes[l]);
        bpl__layer_input_shape(layer, dims, &ndim);
        ck_assert_uint_eq(ndim, 1);
        ck_assert_uint_eq(dims[0], inputs[l]);
        ck_assert_uint_eq(bpl_layer_inputs(layer), inputs[l]);
        /* The kind names its parameters; the rest of the library finds them so. */
        ck_assert_str_eq(bpl__layer_weight(layer)->name, "weight");
        ck_assert_str_eq(bpl__layer_bias(layer)->name, "bias");
    }
    bpl__net_input_shape(net, dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 5);
    bpl_net_destroy(net);
}
END_TEST

/* A C x H x W input: the dense layer above flattens it. */
START_TEST(test_image_input_shape)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 12, 1));
    static const size_t chw[] = {3, 2, 2}, wrong[] = {3, 2, 3};
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, wrong, 3), BPL_ERR_SHAPE, "12");
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, chw, 0), BPL_ERR_INVALID_ARG, NULL);
    BPL_OK_OR_FAIL(bpl__net_set_input_shape(net, chw, 3));
    size_t dims[BPL__MAX_DIMS], ndim;
    bpl__net_input_shape(net, dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert(memcmp(dims, chw, sizeof chw) == 0);
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    bpl__layer_input_shape(bpl_net_layer(net, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 0)), 12);
    bpl__layer_shape(bpl_net_layer(net, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 4);
    /* The kind says so without a layer, as a loader asks before allocating. */
    size_t out[BPL__MAX_DIMS], out_ndim;
    ck_assert_int_eq(bpl__dense_kind.output_shape(chw, 3, 7, NULL, out, &out_ndim), BPL_OK);
    ck_assert_uint_eq(out_ndim, 1);
    ck_assert_uint_eq(out[0], 7);
    /* The shape describes the net's first layer's input: fixed once it has one. */
    BPL_EXPECT_ERROR(bpl__net_set_input_shape(net, chw, 3), BPL_ERR_STATE, "layer");
    /* The model file keeps the input's shape and each layer's kind and shape. */
    void *data;
    size_t size;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, &size));
    bpl_net *loaded;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&loaded, data, size));
    bpl_buffer_free(data);
    bpl__net_input_shape(loaded, dims, &ndim);
    ck_assert_uint_eq(ndim, 3);
    ck_assert(memcmp(dims, chw, sizeof chw) == 0);
    ck_assert_ptr_eq(bpl__layer_kind(bpl_net_layer(loaded, 0)), &bpl__dense_kind);
    bpl__layer_shape(bpl_net_layer(loaded, 0), dims, &ndim);
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 4);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

/* The blocks compute what the dense maths says, whichever matrix is given. */
START_TEST(test_blocks)
{
    bpl_net *net = make_net();
    bpl_layer *layer = bpl_net_layer(net, 1); /* 6 -> 4 */
    const size_t batch = 3, in_n = 6, out_n = 4;
    bpl__tensor *w = bpl__layer_weight(layer), *b = bpl__layer_bias(layer);
    float in[18], out[12], err[12], down[18], down_t[18], wt[24];
    fill(in, batch * in_n, 0.5f);
    fill(err, batch * out_n, 0.25f);
    fill(b->data, out_n, 0.1f);

    bpl__layer_forward(net, layer, in, batch, BPL_ACT_TANH, out);
    for (size_t i = 0; i < batch; i++)
        for (size_t j = 0; j < out_n; j++) {
            double z = b->data[j];
            for (size_t k = 0; k < in_n; k++)
                z += (double)in[i * in_n + k] * w->data[j * in_n + k];
            ck_assert_double_eq_tol(out[i * out_n + j], tanh(z), 1e-5);
        }

    /* Through W itself, and through a copy of W stored transposed. */
    for (size_t j = 0; j < out_n; j++)
        for (size_t k = 0; k < in_n; k++)
            wt[k * out_n + j] = w->data[j * in_n + k];
    bpl__layer_send_error(net, layer, NULL, 0, err, batch, 2.0f, 0.0f, down);
    bpl__layer_send_error(net, layer, wt, 1, err, batch, 2.0f, 0.0f, down_t);
    for (size_t i = 0; i < batch; i++)
        for (size_t k = 0; k < in_n; k++) {
            double e = 0.0;
            for (size_t j = 0; j < out_n; j++)
                e += 2.0 * err[i * out_n + j] * w->data[j * in_n + k];
            ck_assert_double_eq_tol(down[i * in_n + k], e, 1e-5);
            ck_assert_double_eq_tol(down_t[i * in_n + k], e, 1e-5);
        }

    /* Gradients: alpha err^T in for W; sums of 3 err / 4 for the bias. */
    bpl__layer_gradients(net, layer, err, in, batch, 2.0f, 3.0f, 4.0f);
    for (size_t j = 0; j < out_n; j++) {
        double gb = 0.0;
        for (size_t i = 0; i < batch; i++)
            gb += 3.0 * err[i * out_n + j] / 4.0;
        ck_assert_double_eq_tol(b->grad[j], gb, 1e-6);
        for (size_t k = 0; k < in_n; k++) {
            double g = 0.0;
            for (size_t i = 0; i < batch; i++)
                g += 2.0 * err[i * out_n + j] * in[i * in_n + k];
            ck_assert_double_eq_tol(w->grad[j * in_n + k], g, 1e-5);
        }
    }
    bpl_net_destroy(net);
}
END_TEST

/* Dense, but without what the named capabilities give. */
static bpl__kind lacking(unsigned missing, const char *name)
{
    bpl__kind kind = bpl__dense_kind;
    kind.name = name;
    kind.caps &= ~missing;
    return kind;
}

/* `rule` on a net whose layer 1 is of `kind`: BPL_OK or the refusal. */
static int attach(bpl_net *net, const char *rule_name)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rule_name));
    int rc = bpl_net_set_rule(net, rule);
    if (rc != BPL_OK)
        bpl_rule_destroy(rule); /* a refused rule stays its caller's */
    return rc;
}

START_TEST(test_rule_needs_dense_matrix)
{
    static bpl__kind not_dense;
    not_dense = lacking(BPL__CAN_DENSE, "test_not_dense");
    /* dtp and sdtp give a layer without a dense matrix an inverse of its
     * weight's shape, run through the kind's transposed map. */
    static const char *const accepted[] = {"backprop", "fa",  "dfa", "dtp",
                                           "sdtp",     "usf", "brsf", "frsf"};
    static const char *const refused[] = {"tp", "segregated", "microcircuit"};
    bpl_net *net = make_net();
    bpl_net_layer(net, 1)->kind = &not_dense;
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
        BPL_OK_OR_FAIL(attach(net, accepted[i]));
    bpl_rule *before = bpl_net_rule(net);
    size_t tensors = bpl_layer_tensor_count(bpl_net_layer(net, 0));
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        BPL_EXPECT_ERROR(attach(net, refused[i]), BPL_ERR_UNSUPPORTED,
                         "layer 1 (kind 'test_not_dense')");
        ck_assert_msg(strstr(bpl_last_error_message(), refused[i]) != NULL, "%s",
                      bpl_last_error_message());
        ck_assert_msg(strstr(bpl_last_error_message(), "dense weight matrix") != NULL, "%s",
                      bpl_last_error_message());
        /* Refused before anything changed: the previous rule and its tensors stay. */
        ck_assert_ptr_eq(bpl_net_rule(net), before);
        ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(net, 0)), tensors);
    }
    bpl_net_destroy(net);
}
END_TEST

/* A kind that cannot run a learned inverse through a transposed map of its
 * weight's shape (as pooling cannot): dtp and sdtp are refused before
 * anything changes, every other rule attaches. */
START_TEST(test_rule_needs_transpose)
{
    static bpl__kind no_transpose;
    no_transpose = lacking(BPL__CAN_TRANSPOSE, "test_no_transpose");
    static const char *const accepted[] = {"backprop", "fa", "dfa", "tp", "segregated",
                                           "microcircuit"};
    static const char *const refused[] = {"dtp", "sdtp"};
    bpl_net *net = make_net();
    bpl_net_layer(net, 1)->kind = &no_transpose;
    for (size_t i = 0; i < sizeof accepted / sizeof *accepted; i++)
        BPL_OK_OR_FAIL(attach(net, accepted[i]));
    bpl_rule *before = bpl_net_rule(net);
    size_t tensors = bpl_layer_tensor_count(bpl_net_layer(net, 1));
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        BPL_EXPECT_ERROR(attach(net, refused[i]), BPL_ERR_UNSUPPORTED,
                         "needs a transposed map of its weight's shape to run a learned "
                         "inverse through, which layer 1 (kind 'test_no_transpose')");
        ck_assert_msg(strstr(bpl_last_error_message(), refused[i]) != NULL, "%s",
                      bpl_last_error_message());
        ck_assert_ptr_eq(bpl_net_rule(net), before);
        ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(net, 1)), tensors);
    }
    /* A user cannot drop the need: it is not among the public bits. */
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "dtp"));
    BPL_OK_OR_FAIL(bpl_rule_set_needs(rule, BPL_NEEDS_FORWARD));
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_UNSUPPORTED, "transposed map");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
}
END_TEST

/* One capability missing on one layer: which rules are refused, and how. */
START_TEST(test_rule_needs_each_capability)
{
    static const struct {
        unsigned missing;
        size_t layer;
        const char *rule, *message; /* NULL: the rule attaches */
    } cases[] = {
        {BPL__CAN_SEND_ERROR, 2, "backprop",
         "needs sending an error to its input, which layer 2 (kind 'test_kind') does not "
         "provide"},
        {BPL__CAN_SEND_ERROR, 2, "fa", "layer 2 (kind 'test_kind')"},
        /* Direct feedback alignment sends the error around the layers. */
        {BPL__CAN_SEND_ERROR, 2, "dfa", NULL},
        {BPL__CAN_GRADIENTS, 0, "dfa", "parameter gradients, which layer 0"},
        {BPL__CAN_FORWARD, 1, "backprop", "a forward pass, which layer 1"},
    };
    static bpl__kind kind;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kind = lacking(cases[i].missing, "test_kind");
        bpl_net *net = make_net();
        bpl_net_layer(net, cases[i].layer)->kind = &kind;
        if (cases[i].message) {
            BPL_EXPECT_ERROR(attach(net, cases[i].rule), BPL_ERR_UNSUPPORTED,
                             cases[i].message);
            ck_assert_ptr_null(bpl_net_rule(net));
        } else {
            BPL_OK_OR_FAIL(attach(net, cases[i].rule));
        }
        bpl_net_destroy(net);
    }
}
END_TEST

/* The public blocks are the internal ones behind checks: the same bits. */
START_TEST(test_public_blocks_match)
{
    bpl_net *net = make_net();
    bpl_layer *layer = bpl_net_layer(net, 1); /* 6 -> 4 */
    const size_t batch = 3;
    float in[18], err[12], a[18], b[18], wt[24], fb[24];
    fill(in, 18, 0.5f);
    fill(err, 12, 0.25f);
    fill(a, 18, 1.0f);
    memcpy(b, a, sizeof a);

    bpl__layer_forward(net, layer, in, batch, BPL_ACT_SIGMOID, a);
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, batch, BPL_ACT_SIGMOID, b));
    ck_assert(memcmp(a, b, 12 * sizeof *a) == 0);

    /* beta 0.5: out is read and scaled, through the weight (NULL or its name). */
    fill(a, 18, 1.0f);
    memcpy(b, a, sizeof a);
    bpl__layer_send_error(net, layer, NULL, 0, err, batch, 2.0f, 0.5f, a);
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, NULL, 0, err, batch, 2.0f, 0.5f, b));
    ck_assert(memcmp(a, b, sizeof a) == 0);
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, "weight", 0, err, batch, 2.0f, 0.0f, b));
    bpl__layer_send_error(net, layer, NULL, 0, err, batch, 2.0f, 0.0f, a);
    ck_assert(memcmp(a, b, sizeof a) == 0);

    /* Through a tensor of the transpose's shape, as feedback alignment keeps B. */
    float *w;
    BPL_OK_OR_FAIL(bpl_layer_tensor(layer, "weight", &w, NULL, NULL));
    for (size_t j = 0; j < 4; j++)
        for (size_t k = 0; k < 6; k++)
            wt[k * 4 + j] = w[j * 6 + k];
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "fa"));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "feedback", wt, 24));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "feedback", fb, 24));
    bpl__layer_send_error(net, layer, fb, 1, err, batch, 1.0f, 0.0f, a);
    BPL_OK_OR_FAIL(bpl_layer_send_error(layer, "feedback", 1, err, batch, 1.0f, 0.0f, b));
    ck_assert(memcmp(a, b, sizeof a) == 0);

    /* Gradients into the layer's gradient buffers, each rule's bias rounding. */
    float *gw, *gb, w1[24], b1[4];
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "weight", &gw, NULL, NULL));
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(layer, "bias", &gb, NULL, NULL));
    bpl__layer_gradients(net, layer, err, in, batch, 1.0f / 3.0f, 1.0f, 3.0f);
    memcpy(w1, gw, sizeof w1);
    memcpy(b1, gb, sizeof b1);
    memset(gw, 0, sizeof w1);
    memset(gb, 0, sizeof b1);
    BPL_OK_OR_FAIL(bpl_layer_gradients(layer, err, in, batch, 1.0f / 3.0f, 1.0f, 3.0f));
    ck_assert(memcmp(w1, gw, sizeof w1) == 0);
    ck_assert(memcmp(b1, gb, sizeof b1) == 0);

    /* The same op into a caller's destinations leaves the layer's own alone;
     * without a bias destination it computes the weight's alone. */
    float w2[24], b2[4];
    memset(gw, 0, sizeof w1);
    memset(gb, 0, sizeof b1);
    bpl__layer_gradients_into(net, layer, err, in, batch, 1.0f / 3.0f, 1.0f, 3.0f, w2, b2);
    ck_assert(memcmp(w1, w2, sizeof w1) == 0);
    ck_assert(memcmp(b1, b2, sizeof b1) == 0);
    ck_assert(all_zero(gw, 24) && all_zero(gb, 4));
    memset(w2, 0, sizeof w2);
    bpl__layer_gradients_into(net, layer, err, in, batch, 1.0f / 3.0f, 1.0f, 3.0f, w2, NULL);
    ck_assert(memcmp(w1, w2, sizeof w1) == 0);
    ck_assert(all_zero(gb, 4));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_public_blocks_refuse)
{
    bpl_net *net = make_net();
    bpl_layer *layer = bpl_net_layer(net, 1); /* 6 -> 4 */
    float in[18] = {0}, err[12] = {0}, out[18];
    const float inf = INFINITY;
    BPL_EXPECT_ERROR(bpl_layer_forward(NULL, in, 3, BPL_ACT_TANH, out), BPL_ERR_INVALID_ARG,
                     "layer");
    BPL_EXPECT_ERROR(bpl_layer_forward(layer, NULL, 3, BPL_ACT_TANH, out),
                     BPL_ERR_INVALID_ARG, "in");
    BPL_EXPECT_ERROR(bpl_layer_forward(layer, in, 3, BPL_ACT_TANH, NULL),
                     BPL_ERR_INVALID_ARG, "out");
    BPL_EXPECT_ERROR(bpl_layer_forward(layer, in, 0, BPL_ACT_TANH, out), BPL_ERR_INVALID_ARG,
                     "batch");
    BPL_EXPECT_ERROR(bpl_layer_forward(layer, in, 3, 99, out), BPL_ERR_INVALID_ARG,
                     "activation 99");
    BPL_EXPECT_ERROR(bpl_layer_forward(layer, in, ((size_t)1 << 24) + 1, BPL_ACT_TANH, out),
                     BPL_ERR_OVERFLOW, "batch");
    BPL_EXPECT_ERROR(bpl_layer_send_error(NULL, NULL, 0, err, 3, 1.0f, 0.0f, out),
                     BPL_ERR_INVALID_ARG, "layer");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, NULL, 0, NULL, 3, 1.0f, 0.0f, out),
                     BPL_ERR_INVALID_ARG, "err");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, NULL, 0, err, 3, 1.0f, 0.0f, NULL),
                     BPL_ERR_INVALID_ARG, "out");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, NULL, 0, err, 0, 1.0f, 0.0f, out),
                     BPL_ERR_INVALID_ARG, "batch");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, "nothing", 0, err, 3, 1.0f, 0.0f, out),
                     BPL_ERR_NOT_FOUND, "layer 1 has no tensor 'nothing'");
    /* The bias is no matrix of the weight's shape; the weight is not its transpose's. */
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, "bias", 0, err, 3, 1.0f, 0.0f, out),
                     BPL_ERR_SHAPE, "'bias' of layer 1 is 1 x 4, not 4 x 6");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, NULL, 1, err, 3, 1.0f, 0.0f, out),
                     BPL_ERR_SHAPE, "not 6 x 4 (the weight's shape, transposed)");
    BPL_EXPECT_ERROR(bpl_layer_gradients(NULL, err, in, 3, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_INVALID_ARG, "layer");
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, NULL, in, 3, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_INVALID_ARG, "err");
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, err, NULL, 3, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_INVALID_ARG, "in");
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, err, in, 0, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_INVALID_ARG, "batch");
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, err, in, 3, 1.0f, 1.0f, 0.0f),
                     BPL_ERR_INVALID_ARG, "divisor");
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, err, in, 3, inf, 1.0f, 1.0f),
                     BPL_ERR_INVALID_ARG, "finite");
    /* Rows so wide that batch x width floats overflow a size_t. */
    bpl_net *wide;
    BPL_OK_OR_FAIL(bpl_net_create(&wide, (size_t)1 << 24, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(wide, 1, BPL_ACT_LINEAR, BPL_INIT_ZERO));
    if (sizeof(size_t) == 4)
        BPL_EXPECT_ERROR(bpl_layer_forward(bpl_net_layer(wide, 0), in, (size_t)1 << 10,
                                           BPL_ACT_LINEAR, out),
                         BPL_ERR_OVERFLOW, "too large");
    bpl_net_destroy(wide);

    /* A kind without the capability: refused by name, nothing written. */
    static bpl__kind no_grad;
    no_grad = bpl__dense_kind;
    no_grad.name = "test_no_gradients";
    no_grad.caps = BPL__CAN_FORWARD;
    layer->kind = &no_grad;
    BPL_EXPECT_ERROR(bpl_layer_gradients(layer, err, in, 3, 1.0f, 1.0f, 1.0f),
                     BPL_ERR_UNSUPPORTED,
                     "layer 1 (kind 'test_no_gradients') does not provide parameter gradients");
    BPL_EXPECT_ERROR(bpl_layer_send_error(layer, NULL, 0, err, 3, 1.0f, 0.0f, out),
                     BPL_ERR_UNSUPPORTED, "sending an error to its input");
    BPL_OK_OR_FAIL(bpl_layer_forward(layer, in, 3, BPL_ACT_TANH, out));
    layer->kind = &bpl__dense_kind;
    bpl_net_destroy(net);
}
END_TEST

/* A version-2 user rule whose hooks are the public blocks only. */
static int user_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int user_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    return bpl_net_output_delta(net, y, batch);
}

static int user_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    (void)self;
    bpl_layer *top = bpl_net_layer(net, bpl_net_layer_count(net) - 1);
    float *delta;
    const float *in;
    size_t rows;
    int rc = bpl_layer_buffer(top, "delta", &delta, &rows, NULL);
    if (rc == BPL_OK)
        rc = bpl_layer_input(top, &in, NULL, NULL);
    if (rc == BPL_OK)
        rc = bpl_layer_gradients(top, delta, in, rows, 1.0f, 1.0f, 1.0f);
    *groups = 1u << BPL_GROUP_FORWARD;
    return rc;
}

static bpl_rule *user_rule(void)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, 2));
    vt.name = "test_top_only";
    vt.forward = user_forward;
    vt.compute_targets = user_targets;
    vt.gradients = user_gradients;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, NULL));
    return rule;
}

START_TEST(test_user_rule_needs)
{
    static bpl__kind forward_only;
    forward_only = lacking(BPL__CAN_ALL & ~BPL__CAN_FORWARD, "test_forward_only");
    bpl_net *net = make_net();
    bpl_net_layer(net, 0)->kind = &forward_only;
    bpl_rule *rule = user_rule();
    /* Declaring nothing, a rule may rely on everything a dense layer gives. */
    ck_assert_uint_eq(bpl_rule_needs(rule), BPL_NEEDS_ALL);
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_UNSUPPORTED,
                     "rule 'test_top_only' needs sending an error to its input, which layer 0 "
                     "(kind 'test_forward_only') does not provide");
    BPL_EXPECT_ERROR(bpl_rule_set_needs(NULL, BPL_NEEDS_FORWARD), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_rule_set_needs(rule, BPL_NEEDS_ALL + 1), BPL_ERR_INVALID_ARG,
                     "0x10");
    ck_assert_uint_eq(bpl_rule_needs(rule), BPL_NEEDS_ALL);
    /* It trains the output layer only: a forward map is all it needs of the others. */
    BPL_OK_OR_FAIL(bpl_rule_set_needs(rule, BPL_NEEDS_FORWARD));
    ck_assert_uint_eq(bpl_rule_needs(rule), BPL_NEEDS_FORWARD);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_EXPECT_ERROR(bpl_rule_set_needs(rule, BPL_NEEDS_ALL), BPL_ERR_STATE, "attached");
    float x[10], y[6] = {1, 0, 0, 0, 1, 0};
    fill(x, 10, 1.0f);
    double loss;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, &loss));
    ck_assert(isfinite(loss));
    ck_assert_uint_eq(bpl_rule_needs(NULL), 0);
    bpl_net_destroy(net);
}
END_TEST

/* The built-in rules declare through bpl_rule_set_needs too. */
START_TEST(test_builtin_needs)
{
    static const struct {
        const char *rule;
        unsigned needs;
    } cases[] = {
        {"backprop", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"fa", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"dfa", BPL_NEEDS_FORWARD | BPL_NEEDS_GRADIENTS},
        {"tp", BPL_NEEDS_ALL},
        {"dtp", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"sdtp", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"segregated", BPL_NEEDS_ALL},
        {"microcircuit", BPL_NEEDS_ALL},
        {"usf", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"brsf", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
        {"frsf", BPL_NEEDS_FORWARD | BPL_NEEDS_SEND_ERROR | BPL_NEEDS_GRADIENTS},
    };
    ck_assert_uint_eq(sizeof cases / sizeof *cases, bpl_rule_builtin_count());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bpl_rule *rule;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, cases[i].rule));
        ck_assert_msg(bpl_rule_needs(rule) == cases[i].needs, "%s", cases[i].rule);
        bpl_rule_destroy(rule);
    }
}
END_TEST

START_TEST(test_public_input_shape)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 12, 1));
    size_t dims[BPL_MAX_DIMS] = {0}, ndim = 99, small[2];
    BPL_OK_OR_FAIL(bpl_net_get_input_shape(net, dims, BPL_MAX_DIMS, &ndim));
    ck_assert_uint_eq(ndim, 1);
    ck_assert_uint_eq(dims[0], 12);
    static const size_t chw[] = {3, 2, 2}, zero[] = {3, 0, 4}, five[] = {1, 1, 12, 1, 1};
    static const size_t huge[] = {(size_t)1 << 40, (size_t)1 << 40, 1};
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(NULL, chw, 3), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, NULL, 3), BPL_ERR_INVALID_ARG, "dims");
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, chw, 0), BPL_ERR_INVALID_ARG, "0 dims");
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, five, 5), BPL_ERR_INVALID_ARG, "1..4");
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, zero, 3), BPL_ERR_INVALID_ARG, "dim 1 is 0");
    if (sizeof(size_t) == 8)
        BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, huge, 3), BPL_ERR_OVERFLOW,
                         "overflows");
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, chw, 2), BPL_ERR_SHAPE,
                     "hold 6 elements, the input 12");
    /* A refused shape leaves the one before. */
    BPL_OK_OR_FAIL(bpl_net_get_input_shape(net, dims, BPL_MAX_DIMS, &ndim));
    ck_assert_uint_eq(ndim, 1);
    BPL_OK_OR_FAIL(bpl_net_set_input_shape(net, chw, 3));
    BPL_OK_OR_FAIL(bpl_net_get_input_shape(net, NULL, 0, &ndim));
    ck_assert_uint_eq(ndim, 3);
    ndim = 0;
    BPL_EXPECT_ERROR(bpl_net_get_input_shape(net, small, 2, &ndim), BPL_ERR_SHAPE,
                     "3 dims, room for 2");
    ck_assert_uint_eq(ndim, 3);
    BPL_EXPECT_ERROR(bpl_net_get_input_shape(net, NULL, 2, &ndim), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_get_input_shape(net, dims, 4, NULL), BPL_ERR_INVALID_ARG, NULL);
    BPL_EXPECT_ERROR(bpl_net_get_input_shape(NULL, dims, 4, &ndim), BPL_ERR_INVALID_ARG,
                     NULL);
    BPL_OK_OR_FAIL(bpl_net_get_input_shape(net, dims, 3, &ndim));
    ck_assert(memcmp(dims, chw, sizeof chw) == 0);
    /* The first layer saw this shape: it stays. */
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, 4, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    BPL_EXPECT_ERROR(bpl_net_set_input_shape(net, chw, 3), BPL_ERR_STATE, "a layer already");
    ck_assert_uint_eq(bpl_layer_inputs(bpl_net_layer(net, 0)), 12);
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kinds");
    TCase *tc = tcase_create("kinds");
    tcase_add_test(tc, test_dense_kind_and_shapes);
    tcase_add_test(tc, test_image_input_shape);
    tcase_add_test(tc, test_blocks);
    tcase_add_test(tc, test_rule_needs_dense_matrix);
    tcase_add_test(tc, test_rule_needs_transpose);
    tcase_add_test(tc, test_rule_needs_each_capability);
    tcase_add_test(tc, test_public_blocks_match);
    tcase_add_test(tc, test_public_blocks_refuse);
    tcase_add_test(tc, test_user_rule_needs);
    tcase_add_test(tc, test_builtin_needs);
    tcase_add_test(tc, test_public_input_shape);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
