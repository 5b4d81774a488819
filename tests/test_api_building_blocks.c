/*
 * test_api_building_blocks.c - the building blocks rules call, outside and
 * inside the hooks, the phases of a step, and writing tensors during
 * inference and training.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_blocks_outside_hooks)
{
    float x[2 * 5], y[2 * 3];
    bpl_net *net = test_deep_net(5, x, y, 2);
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
    /* m NULL is the layer's own map: refused here for the step alone */
    BPL_EXPECT_ERROR(bpl_net_project_delta(net, 1, 0, NULL, 1), BPL_ERR_STATE,
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
    bpl_net *net = test_small_classifier(1);
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
    bpl_net *a = test_small_classifier(50), *b = test_small_classifier(50);
    enum { N = 2000 };
    static float u[N], v[N];
    BPL_OK_OR_FAIL(bpl_net_random_uniform(a, u, N, -2.0, 3.0));
    BPL_OK_OR_FAIL(bpl_net_random_uniform(b, v, N, -2.0, 3.0));
    ck_assert_mem_eq(u, v, sizeof u); /* the net's generator, seeded by the net */
    struct test_moments m = test_moments(u, N);
    for (size_t i = 0; i < N; i++)
        ck_assert(u[i] >= -2.0f && u[i] <= 3.0f);
    ck_assert_double_lt(fabs(m.mean - 0.5), 0.15);
    BPL_OK_OR_FAIL(bpl_net_random_normal(a, u, N, 1.5, 0.5));
    m = test_moments(u, N);
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
    BPL_EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, 1.0, 0.0), "bpl_net_random_uniform");
    BPL_EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, NAN, 1.0), "bpl_net_random_uniform");
    BPL_EXPECT_FAILURE(bpl_net_random_uniform(a, u, N, 0.0, INFINITY), "bpl_net_random_uniform");
    BPL_EXPECT_FAILURE(bpl_net_random_normal(a, u, N, 0.0, -1.0), "bpl_net_random_normal");
    BPL_EXPECT_FAILURE(bpl_net_random_normal(a, u, N, NAN, 1.0), "bpl_net_random_normal");
    BPL_EXPECT_FAILURE(bpl_net_random_normal(a, u, N, 0.0, INFINITY), "bpl_net_random_normal");
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
    size_t top = bpl_net_layer_count(net) - 1;
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
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

static bpl_net *probe_net(struct probe *p, float *x, float *y, size_t batch)
{
    bpl_net *net = test_deep_net(6, x, y, batch);
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
    float *before = test_snapshot(net, &n);
    /* the failed calls inside the hooks do not spoil the step */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert(!test_same_params(net, before, n));
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

static Suite *building_blocks_suite(void)
{
    Suite *s = suite_create("api_building_blocks");
    TCase *tc = tcase_create("building_blocks");
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
    return test_run_suite(building_blocks_suite());
}
