/*
 * test_reentrancy.c - what a rule's hooks, bpl_net_fit's progress callback
 * and a net's log callback may call on the same net.
 *
 * The library is walking the net (its rule, layers, tensors and batch
 * buffers) while it runs user code, so that code may not change them:
 * structural calls are refused with BPL_ERR_STATE from every hook and
 * callback, inference and diagnostics run only between steps (from the
 * progress callback), and tensors and buffers are added only by attach.  A
 * bpl_net_destroy from user code is deferred until the outermost library
 * call on the net returns.  docs/reliability.md, "Thread safety and
 * re-entrancy", states the rules this file checks.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum context {
    CTX_ATTACH,
    CTX_FORWARD,
    CTX_TARGETS,
    CTX_UPDATE,
    CTX_DESTROY,
    CTX_PROGRESS,
    CTX_LOG,
    N_CONTEXTS,
    CTX_NONE = -1
};

/* How the refusal names each context. */
static const char *const context_words[N_CONTEXTS] = {
    "attach hook", "forward hook", "compute_targets hook", "update hook",
    "destroy hook", "progress callback", "log callback"};

#define INPUTS 3
#define OUTPUTS 2
#define BATCH 2

struct probe;
typedef int (*action_fn)(struct probe *p, bpl_net *net);

/* A dense backprop rule (and progress and log callbacks) that run `action`
 * once, from `context`, and keep its status and message. */
struct probe {
    int context;
    action_fn action;
    bpl_net *net;      /* for the destroy hook, which is not given the net */
    int acted;
    int rc;
    char message[512];
    int destroy_calls; /* the rule's destroy hook ran */
    int progress_calls;
    int after_destroy_rc; /* a call on the net after bpl_net_destroy in user code */
    char after_destroy_message[512];
    int fail_attach;      /* the attach hook reports failure after acting */
    bpl_dataset *ds;
    bpl_rule *spare; /* what set_rule tries to attach */
    float x[BATCH * INPUTS], y[BATCH * OUTPUTS];
    const char *save_path;
};

static void act(struct probe *p, int context, bpl_net *net)
{
    if (p->context != context || p->acted || !p->action)
        return;
    p->acted = 1;
    p->rc = p->action(p, net);
    snprintf(p->message, sizeof p->message, "%s", bpl_last_error_message());
}

static int probe_attach(void *self, bpl_net *net)
{
    struct probe *p = self;
    p->net = net;
    act(p, CTX_ATTACH, net);
    return p->fail_attach ? BPL_ERR_RANGE : 0;
}

static int probe_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    act(self, CTX_FORWARD, net);
    return bpl_net_forward_dense(net, x, batch);
}

static int probe_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    act(self, CTX_TARGETS, net);
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static int probe_update(void *self, bpl_net *net)
{
    act(self, CTX_UPDATE, net);
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

static void probe_destroy(void *self)
{
    struct probe *p = self;
    act(p, CTX_DESTROY, p->net);
    p->destroy_calls++;
}

static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    (void)event, (void)epoch, (void)step, (void)steps, (void)loss;
    struct probe *p = user_data;
    p->progress_calls++;
    act(p, CTX_PROGRESS, p->net);
    return 0;
}

static void on_log(int level, const char *message, void *user_data)
{
    (void)level, (void)message;
    struct probe *p = user_data;
    act(p, CTX_LOG, p->net);
}

static bpl_rule *probe_rule(struct probe *p, int extra_param)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "probe";
    vt.attach = probe_attach;
    vt.forward = probe_forward;
    vt.compute_targets = probe_targets;
    vt.update = probe_update;
    vt.destroy = probe_destroy;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, p));
    if (extra_param)
        BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "extra", BPL_PARAM_REAL, 1, 0, 2, NULL, ""));
    return rule;
}

static bpl_net *plain_net(void)
{
    static const size_t units[] = {4, OUTPUTS};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(INPUTS, units, acts, 2, 3);
}

static void probe_init(struct probe *p, int context, action_fn action)
{
    memset(p, 0, sizeof *p);
    p->context = context;
    p->action = action;
    uint64_t state = 17;
    test_fill_uniform(p->x, BATCH * INPUTS, -1.0f, 1.0f, &state);
    test_fill_onehot(p->y, BATCH, OUTPUTS, &state);
    float x[4 * INPUTS], y[4 * OUTPUTS];
    test_fill_uniform(x, 4 * INPUTS, -1.0f, 1.0f, &state);
    test_fill_onehot(y, 4, OUTPUTS, &state);
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&p->ds, x, y, 4, INPUTS, OUTPUTS));
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&p->spare, "backprop"));
    p->save_path = test_temp_path("reentrant.bpl");
}

static void probe_clear(struct probe *p)
{
    bpl_dataset_destroy(p->ds);
    bpl_rule_destroy(p->spare); /* a no-op if a net took it */
}

static void train_once(bpl_net *net, const struct probe *p)
{
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, p->x, p->y, BATCH, NULL));
}

/* A net with the probe attached, in which `context` has run: the probe has
 * acted.  The net is left trainable. */
static bpl_net *run_context(struct probe *p)
{
    if (p->context == CTX_LOG) {
        /* A saved hyperparameter the attached rule no longer declares is
         * logged while bpl_net_set_rule runs. */
        bpl_net *saved = plain_net();
        struct probe quiet = {.context = CTX_NONE};
        BPL_OK_OR_FAIL(bpl_net_set_rule(saved, probe_rule(&quiet, 1)));
        BPL_OK_OR_FAIL(bpl_net_save(saved, p->save_path));
        bpl_net_destroy(saved);
        bpl_net *net;
        BPL_OK_OR_FAIL(bpl_net_load(&net, p->save_path));
        p->net = net;
        BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, on_log, p));
        BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(p, 0)));
        return net;
    }
    bpl_net *net = plain_net();
    p->net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(p, 0)));
    switch (p->context) {
    case CTX_FORWARD:
    case CTX_TARGETS:
    case CTX_UPDATE:
        train_once(net, p);
        break;
    case CTX_DESTROY: {
        /* replacing the rule destroys the probe; the net goes on */
        bpl_rule *next;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&next, "backprop"));
        BPL_OK_OR_FAIL(bpl_net_set_rule(net, next));
        break;
    }
    case CTX_PROGRESS:
        BPL_OK_OR_FAIL(bpl_net_fit(net, p->ds, 1, BATCH, on_progress, p));
        break;
    default:
        break;
    }
    return net;
}

/* ---- the calls, refused or allowed by context ----------------------------- */

static int act_set_rule(struct probe *p, bpl_net *net)
{
    return bpl_net_set_rule(net, p->spare);
}

static int act_add_dense(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_net_add_dense(net, 2, BPL_ACT_LINEAR, BPL_INIT_ZERO);
}

static int act_set_loss(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY);
}

static int act_set_log_fn(struct probe *p, bpl_net *net)
{
    return bpl_net_set_log_fn(net, on_log, p);
}

static int act_train_batch(struct probe *p, bpl_net *net)
{
    return bpl_net_train_batch(net, p->x, p->y, BATCH, NULL);
}

static int act_fit(struct probe *p, bpl_net *net)
{
    return bpl_net_fit(net, p->ds, 1, BATCH, NULL, NULL);
}

static int act_predict(struct probe *p, bpl_net *net)
{
    float out[BATCH * OUTPUTS];
    return bpl_net_predict(net, p->x, BATCH, out, BATCH * OUTPUTS);
}

static int act_evaluate(struct probe *p, bpl_net *net)
{
    double accuracy;
    return bpl_net_evaluate(net, p->ds, &accuracy, NULL);
}

static int act_alignment(struct probe *p, bpl_net *net)
{
    double angles[2];
    return bpl_net_alignment(net, p->x, p->y, BATCH, angles, 2);
}

static int act_set_profiling(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_net_set_profiling(net, 1);
}

static int act_add_tensor(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_layer_add_tensor(bpl_net_layer(net, 0), "reentrant", 2, 2, BPL_GROUP_NONE,
                                BPL_INIT_ZERO, 1.0, NULL);
}

static int act_add_buffer(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_layer_add_buffer(bpl_net_layer(net, 0), "reentrant", 3);
}

/* Calls that only read the net or write values in place, allowed anywhere. */
static int act_observe(struct probe *p, bpl_net *net)
{
    (void)p;
    bpl_layer *layer = bpl_net_layer(net, 0);
    float *w, draws[4];
    size_t rows, cols, epoch;
    int rc = bpl_layer_tensor(layer, "weight", &w, &rows, &cols);
    if (rc == BPL_OK)
        rc = bpl_layer_tensor_info(layer, "bias", &rows, &cols, NULL);
    if (rc == BPL_OK)
        rc = bpl_layer_set_frozen(layer, "bias", 0);
    if (rc == BPL_OK)
        rc = bpl_layer_init_tensor(layer, "bias", BPL_INIT_ZERO, 1.0);
    if (rc == BPL_OK)
        rc = bpl_net_random_uniform(net, draws, 4, 0.0, 1.0);
    if (rc == BPL_OK)
        rc = bpl_net_progress(net, &epoch, NULL, NULL);
    if (rc == BPL_OK && bpl_net_rule(net))
        rc = bpl_rule_set(bpl_net_rule(net), "lr", 1e-3);
    if (rc == BPL_OK && (bpl_net_layer_count(net) != 2 || bpl_net_inputs(net) != INPUTS))
        rc = BPL_ERR_INTERNAL;
    return rc;
}

/* Outside a step the gradients are the last step's: applying them again
 * would be a second step nobody asked for. */
static int act_apply_gradients(struct probe *p, bpl_net *net)
{
    (void)p;
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

/* Saving only reads the net; inside a step it is refused by the step's own
 * rule (the parameters are half updated). */
static int act_save(struct probe *p, bpl_net *net)
{
    return bpl_net_save(net, p->save_path);
}

#define S BPL_ERR_STATE
#define Y BPL_OK
static const struct {
    const char *name;
    action_fn action;
    int expected[N_CONTEXTS]; /* attach forward targets update destroy progress log */
} calls[] = {
    {"bpl_net_set_rule", act_set_rule, {S, S, S, S, S, S, S}},
    {"bpl_net_add_dense", act_add_dense, {S, S, S, S, S, S, S}},
    {"bpl_net_set_loss", act_set_loss, {S, S, S, S, S, S, S}},
    {"bpl_net_set_log_fn", act_set_log_fn, {S, S, S, S, S, S, S}},
    {"bpl_net_train_batch", act_train_batch, {S, S, S, S, S, S, S}},
    {"bpl_net_fit", act_fit, {S, S, S, S, S, S, S}},
    {"bpl_net_predict", act_predict, {S, S, S, S, S, Y, S}},
    {"bpl_net_evaluate", act_evaluate, {S, S, S, S, S, Y, S}},
    {"bpl_net_alignment", act_alignment, {S, S, S, S, S, Y, S}},
    {"bpl_net_set_profiling", act_set_profiling, {S, S, S, S, S, Y, S}},
    {"bpl_layer_add_tensor", act_add_tensor, {Y, S, S, S, S, S, S}},
    {"bpl_layer_add_buffer", act_add_buffer, {Y, S, S, S, S, S, S}},
    {"reading and in-place calls", act_observe, {Y, Y, Y, Y, Y, Y, Y}},
    {"bpl_net_save", act_save, {Y, S, S, S, Y, Y, Y}},
    {"bpl_net_apply_gradients", act_apply_gradients, {S, Y, Y, Y, S, S, S}},
};
#undef S
#define N_CALLS (sizeof calls / sizeof calls[0])

/* Loop index: call * N_CONTEXTS + context. */
START_TEST(test_call_from_context)
{
    size_t call = (size_t)_i / N_CONTEXTS;
    int context = _i % N_CONTEXTS;
    struct probe p;
    probe_init(&p, context, calls[call].action);
    bpl_net *net = run_context(&p);
    int expected = calls[call].expected[context];
    ck_assert_msg(p.acted, "%s: the %s never ran", calls[call].name, context_words[context]);
    ck_assert_msg(p.rc == expected, "%s from the %s -> %d (%s), expected %d (%s); message: %s",
                  calls[call].name, context_words[context], p.rc, bpl_strerror(p.rc),
                  expected, bpl_strerror(expected), p.message);
    if (expected == BPL_ERR_STATE && calls[call].action != act_save) {
        ck_assert_msg(strstr(p.message, calls[call].name) &&
                          strstr(p.message, context_words[context]),
                      "%s from the %s: message '%s' names neither", calls[call].name,
                      context_words[context], p.message);
    }
    if (calls[call].action == act_save && expected == BPL_OK) {
        bpl_net *loaded;
        BPL_OK_OR_FAIL(bpl_net_load(&loaded, p.save_path));
        bpl_net_destroy(loaded);
    }
    /* whatever was refused, the net is whole */
    train_once(net, &p);
    bpl_net_destroy(net);
    probe_clear(&p);
}
END_TEST

START_TEST(test_apply_gradients_outside_a_step)
{
    struct probe p;
    probe_init(&p, CTX_NONE, NULL);
    bpl_net *net = run_context(&p);
    train_once(net, &p);
    float before[4 * INPUTS], after[4 * INPUTS];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", before, 4 * INPUTS));
    BPL_EXPECT_ERROR(bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD), BPL_ERR_STATE,
                     "only inside a training step");
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(bpl_net_layer(net, 0), "weight", after, 4 * INPUTS));
    ck_assert_msg(memcmp(before, after, sizeof before) == 0,
                  "a refused bpl_net_apply_gradients changed the weights");
    bpl_net_destroy(net);
    probe_clear(&p);
}
END_TEST

/* ---- the reported defect ---------------------------------------------------- */

/* An attach hook that replaced its own rule and then failed made the library
 * read and write the freed rule. */
START_TEST(test_attach_replacing_its_rule_then_failing)
{
    struct probe p;
    probe_init(&p, CTX_ATTACH, act_set_rule);
    p.fail_attach = 1;
    bpl_net *net = plain_net();
    p.net = net;
    bpl_rule *rule = probe_rule(&p, 0);
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_RANGE, "rule 'probe' attach");
    ck_assert_int_eq(p.rc, BPL_ERR_STATE);
    ck_assert_ptr_null(bpl_net_rule(net));
    ck_assert_int_eq(p.destroy_calls, 0); /* the caller keeps the rule */
    bpl_rule_destroy(rule);
    ck_assert_int_eq(p.destroy_calls, 1);
    test_attach(net, "backprop");
    train_once(net, &p);
    bpl_net_destroy(net);
    probe_clear(&p);
}
END_TEST

/* ---- destroying from user code ---------------------------------------------- */

/* bpl_net_destroy, then one more call that needs the net idle. */
static int act_destroy(struct probe *p, bpl_net *net)
{
    bpl_net_destroy(net);
    bpl_net_destroy(net); /* a second request changes nothing */
    p->after_destroy_rc = bpl_net_set_loss(net, BPL_LOSS_MSE);
    snprintf(p->after_destroy_message, sizeof p->after_destroy_message, "%s",
             bpl_last_error_message());
    return BPL_OK;
}

static void expect_deferred(const struct probe *p)
{
    ck_assert(p->acted);
    ck_assert_msg(p->after_destroy_rc == BPL_ERR_STATE && strstr(p->after_destroy_message,
                                                                 "being destroyed"),
                  "a call on a net whose destruction waits -> %d: %s", p->after_destroy_rc,
                  p->after_destroy_message);
}

/* From each hook of a step and from the progress callback: the net is
 * destroyed when bpl_net_fit (or train_batch) returns, and fit stops. */
START_TEST(test_destroy_from_step_hook)
{
    int context = CTX_FORWARD + _i; /* forward, compute_targets, update */
    struct probe p;
    probe_init(&p, context, act_destroy);
    bpl_net *net = plain_net();
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    BPL_OK_OR_FAIL(bpl_net_fit(net, p.ds, 100, 1, on_progress, &p));
    expect_deferred(&p);
    ck_assert_int_eq(p.destroy_calls, 1); /* the net, and its rule, are gone */
    ck_assert_int_eq(p.progress_calls, 0); /* nothing after the step that asked */
    probe_clear(&p);
}
END_TEST

START_TEST(test_destroy_from_train_batch_hook)
{
    struct probe p;
    probe_init(&p, CTX_UPDATE, act_destroy);
    bpl_net *net = plain_net();
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, p.x, p.y, BATCH, NULL));
    expect_deferred(&p);
    ck_assert_int_eq(p.destroy_calls, 1);
    probe_clear(&p);
}
END_TEST

START_TEST(test_destroy_from_progress)
{
    struct probe p;
    probe_init(&p, CTX_PROGRESS, act_destroy);
    bpl_net *net = plain_net();
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    BPL_OK_OR_FAIL(bpl_net_fit(net, p.ds, 100, 1, on_progress, &p));
    expect_deferred(&p);
    ck_assert_int_eq(p.progress_calls, 1); /* fit stopped there */
    ck_assert_int_eq(p.destroy_calls, 1);
    probe_clear(&p);
}
END_TEST

/* predict from the progress callback, whose forward hook destroys the net:
 * the net lives until bpl_net_fit, the outermost call, returns. */
static int act_predict_then_count(struct probe *p, bpl_net *net)
{
    p->context = CTX_FORWARD;
    p->acted = 0;
    p->action = act_destroy;
    int rc = act_predict(p, net);
    ck_assert_int_eq(p->destroy_calls, 0);
    ck_assert_int_eq(bpl_net_layer_count(net), 2);
    return rc;
}

START_TEST(test_destroy_nested)
{
    struct probe p;
    probe_init(&p, CTX_PROGRESS, act_predict_then_count);
    bpl_net *net = plain_net();
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    BPL_OK_OR_FAIL(bpl_net_fit(net, p.ds, 100, 1, on_progress, &p));
    expect_deferred(&p);
    ck_assert_int_eq(p.progress_calls, 1);
    ck_assert_int_eq(p.destroy_calls, 1);
    probe_clear(&p);
}
END_TEST

/* From attach: bpl_net_set_rule finishes (the net owns the rule, and both
 * go), or fails (the caller keeps the rule). */
START_TEST(test_destroy_from_attach)
{
    for (int fail = 0; fail < 2; fail++) {
        struct probe p;
        probe_init(&p, CTX_ATTACH, act_destroy);
        p.fail_attach = fail;
        bpl_net *net = plain_net();
        p.net = net;
        bpl_rule *rule = probe_rule(&p, 0);
        int rc = bpl_net_set_rule(net, rule);
        expect_deferred(&p);
        if (fail) {
            ck_assert_int_eq(rc, BPL_ERR_RANGE);
            ck_assert_int_eq(p.destroy_calls, 0);
            bpl_rule_destroy(rule);
        } else {
            ck_assert_int_eq(rc, BPL_OK);
        }
        ck_assert_int_eq(p.destroy_calls, 1);
        probe_clear(&p);
    }
}
END_TEST

/* From the log callback, during bpl_net_set_rule. */
START_TEST(test_destroy_from_log)
{
    struct probe p;
    probe_init(&p, CTX_LOG, act_destroy);
    bpl_net *saved = plain_net();
    struct probe quiet = {.context = CTX_NONE};
    BPL_OK_OR_FAIL(bpl_net_set_rule(saved, probe_rule(&quiet, 1)));
    BPL_OK_OR_FAIL(bpl_net_save(saved, p.save_path));
    bpl_net_destroy(saved);
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_load(&net, p.save_path));
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_log_fn(net, on_log, &p));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    expect_deferred(&p);
    ck_assert_int_eq(p.destroy_calls, 1);
    probe_clear(&p);
}
END_TEST

/* From the rule's destroy hook: while the net is being destroyed (nothing
 * more to do), and while its rule is replaced (the net goes when
 * bpl_net_set_rule returns, with the new rule). */
static int act_destroy_only(struct probe *p, bpl_net *net)
{
    (void)p;
    bpl_net_destroy(net);
    return BPL_OK;
}

START_TEST(test_destroy_from_destroy_hook)
{
    struct probe p;
    probe_init(&p, CTX_DESTROY, act_destroy_only);
    bpl_net *net = plain_net();
    p.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&p, 0)));
    bpl_net_destroy(net);
    ck_assert(p.acted);
    ck_assert_int_eq(p.destroy_calls, 1);

    struct probe second, next;
    probe_init(&second, CTX_DESTROY, act_destroy);
    probe_init(&next, CTX_NONE, NULL);
    net = plain_net();
    second.net = next.net = net;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&second, 0)));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, probe_rule(&next, 0)));
    expect_deferred(&second);
    ck_assert_int_eq(second.destroy_calls, 1);
    ck_assert_int_eq(next.destroy_calls, 1); /* went with the net */
    probe_clear(&second);
    probe_clear(&next);
    probe_clear(&p);
}
END_TEST

/* ---- a rule destroyed from its own destroy hook ----------------------------- */

struct self_destroyer {
    bpl_rule *rule;
    bpl_net *other;
    int attach_rc;
    int calls;
};

static void destroy_itself(void *self)
{
    struct self_destroyer *s = self;
    s->calls++;
    bpl_rule_destroy(s->rule);
    s->attach_rc = bpl_net_set_rule(s->other, s->rule);
}

static int nothing_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int nothing_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self, (void)net, (void)y, (void)batch;
    return 0;
}

static int nothing_update(void *self, bpl_net *net)
{
    (void)self, (void)net;
    return 0;
}

START_TEST(test_rule_destroyed_from_its_destroy_hook)
{
    for (int owned = 0; owned < 2; owned++) {
        struct self_destroyer s = {.other = plain_net()};
        bpl_rule_vtable vt;
        BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
        vt.name = "self_destroyer";
        vt.forward = nothing_forward;
        vt.compute_targets = nothing_targets;
        vt.update = nothing_update;
        vt.destroy = destroy_itself;
        BPL_OK_OR_FAIL(bpl_rule_create(&s.rule, &vt, &s));
        if (owned) {
            bpl_net *net = plain_net();
            BPL_OK_OR_FAIL(bpl_net_set_rule(net, s.rule));
            bpl_net_destroy(net);
        } else {
            bpl_rule_destroy(s.rule);
        }
        ck_assert_int_eq(s.calls, 1);
        ck_assert_int_eq(s.attach_rc, BPL_ERR_INVALID_ARG);
        ck_assert_ptr_null(bpl_net_rule(s.other));
        bpl_net_destroy(s.other);
    }
}
END_TEST

static Suite *reentrancy_suite(void)
{
    Suite *s = suite_create("reentrancy");
    TCase *tc = tcase_create("calls by context");
    tcase_add_loop_test(tc, test_call_from_context, 0, (int)(N_CALLS * N_CONTEXTS));
    tcase_add_test(tc, test_attach_replacing_its_rule_then_failing);
    tcase_add_test(tc, test_apply_gradients_outside_a_step);
    suite_add_tcase(s, tc);

    tc = tcase_create("destroy");
    tcase_add_loop_test(tc, test_destroy_from_step_hook, 0, 3);
    tcase_add_test(tc, test_destroy_from_train_batch_hook);
    tcase_add_test(tc, test_destroy_from_progress);
    tcase_add_test(tc, test_destroy_nested);
    tcase_add_test(tc, test_destroy_from_attach);
    tcase_add_test(tc, test_destroy_from_log);
    tcase_add_test(tc, test_destroy_from_destroy_hook);
    tcase_add_test(tc, test_rule_destroyed_from_its_destroy_hook);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(reentrancy_suite());
}
