/*
 * test_rule_api.c - the documented contract of learning rules: vtables, user
 * rules built from the public building blocks, hook failures, ownership,
 * built-in rules, hyperparameters, optimisers and the property table.
 */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static const char *const optimizer_keys[] = {"optimizer", "lr",  "momentum",
                                             "beta1",     "beta2", "eps",
                                             "rho",       "weight_decay"};
#define BPL_TEST_NAME_MAX 48 /* a name of 47 characters is the longest */
#define N_OPT_KEYS (sizeof optimizer_keys / sizeof optimizer_keys[0])

/* A 5-6(tanh)-4(tanh)-3(softmax) net and a batch for it. */
static bpl_net *deep_net(uint64_t seed, float *x, float *y, size_t batch)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    if (x && y) {
        uint64_t s = seed * 7 + 3;
        test_fill_uniform(x, batch * 5, -1, 1, &s);
        test_fill_onehot(y, batch, 3, &s);
    }
    return test_make_net(5, units, acts, 3, seed);
}

/* Every tensor of every layer, concatenated in layer and tensor order. */
static float *snapshot(bpl_net *net, size_t *n_out)
{
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        float *buf = pass ? malloc((total ? total : 1) * sizeof *buf) : NULL;
        size_t off = 0;
        for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
            bpl_layer *layer = bpl_net_layer(net, l);
            for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
                const char *name = bpl_layer_tensor_name(layer, t);
                size_t rows, cols;
                BPL_OK_OR_FAIL(bpl_layer_tensor_info(layer, name, &rows, &cols, NULL));
                if (pass)
                    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, name, buf + off, rows * cols));
                off += rows * cols;
            }
        }
        if (pass) {
            *n_out = total;
            return buf;
        }
        total = off;
    }
    return NULL;
}

/* Bitwise comparison of two nets' tensors. */
static int same_params(bpl_net *a, bpl_net *b)
{
    size_t na, nb;
    float *pa = snapshot(a, &na), *pb = snapshot(b, &nb);
    int same = na == nb && memcmp(pa, pb, na * sizeof *pa) == 0;
    free(pa);
    free(pb);
    return same;
}

static int has_tensor(bpl_layer *layer, const char *name)
{
    return bpl_layer_tensor_info(layer, name, NULL, NULL, NULL) == BPL_OK;
}

/* Index of hyperparameter `name` by enumeration, or -1. */
static long param_index(const bpl_rule *rule, const char *name)
{
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
        const char *n = NULL;
        BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, &n, NULL, NULL, NULL, NULL, NULL, NULL));
        if (strcmp(n, name) == 0)
            return (long)i;
    }
    return -1;
}

static double get_param(const bpl_rule *rule, const char *name)
{
    double v = NAN;
    BPL_OK_OR_FAIL(bpl_rule_get(rule, name, &v));
    return v;
}

/* ---- a user rule: backprop written from the public building blocks ------- */

enum hook { HOOK_NONE, HOOK_ATTACH, HOOK_FORWARD, HOOK_TARGETS, HOOK_UPDATE, N_HOOKS };

struct user_rule {
    int calls[N_HOOKS];
    int phase[N_HOOKS];  /* the phase each hook saw on its last call */
    int destroy_calls;
    size_t batch_seen;
    int extras;          /* attach adds "trace" and "scratch" to the output layer */
    int feedback;        /* attach adds "fbw", trained in the feedback group */
    int poison;          /* update writes Inf into "trace" (needs extras) */
    int fail_hook;       /* enum hook that fails */
    int fail_rc;         /* what it returns */
    const char *fail_msg; /* set with bpl_error_set first, if not NULL */
    bpl_rule *rule_in_attach;
    size_t scratch_rows, scratch_cols;
};

static bpl_layer *output_layer(bpl_net *net)
{
    return bpl_net_layer(net, bpl_net_layer_count(net) - 1);
}

/* Count the call and say whether this hook is the one that must fail. */
static int enter(struct user_rule *u, bpl_net *net, int hook)
{
    u->calls[hook]++;
    u->phase[hook] = bpl_net_phase(net);
    if (u->fail_hook != hook)
        return 0;
    if (u->fail_msg)
        bpl_error_set(BPL_ERR_INTERNAL, u->fail_msg);
    return 1;
}

static int user_attach(void *self, bpl_net *net)
{
    struct user_rule *u = self;
    u->rule_in_attach = bpl_net_rule(net);
    bpl_layer *out = output_layer(net);
    size_t units = bpl_layer_units(out);
    int rc = BPL_OK;
    if (u->extras) {
        rc = bpl_layer_add_tensor(out, "trace", 1, units, BPL_GROUP_NONE, BPL_INIT_ZERO, 1.0,
                                  NULL);
        if (rc == BPL_OK)
            rc = bpl_layer_add_buffer(out, "scratch", units);
    }
    if (rc == BPL_OK && u->feedback)
        rc = bpl_layer_add_tensor(bpl_net_layer(net, 0), "fbw", 2, 3, BPL_GROUP_FEEDBACK,
                                  BPL_INIT_CONSTANT, 1.0, NULL);
    /* fails after adding its tensors: the net must remove them */
    if (enter(u, net, HOOK_ATTACH))
        return u->fail_rc;
    return rc;
}

static int user_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    struct user_rule *u = self;
    if (enter(u, net, HOOK_FORWARD))
        return u->fail_rc;
    u->batch_seen = batch;
    int rc = bpl_net_forward_dense(net, x, batch);
    if (rc == BPL_OK && u->extras) {
        /* keep the output in the rule's own buffer, read again by update */
        bpl_layer *out = output_layer(net);
        float *act, *scratch;
        size_t rows, cols;
        rc = bpl_layer_buffer(out, "activation", &act, &rows, &cols);
        if (rc == BPL_OK)
            rc = bpl_layer_buffer(out, "scratch", &scratch, &u->scratch_rows,
                                  &u->scratch_cols);
        if (rc == BPL_OK)
            memcpy(scratch, act, rows * cols * sizeof *act);
    }
    return rc;
}

static int user_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    struct user_rule *u = self;
    if (enter(u, net, HOOK_TARGETS))
        return u->fail_rc;
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *weight;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &weight, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, weight, 1);
    }
    return rc;
}

static int user_update(void *self, bpl_net *net)
{
    struct user_rule *u = self;
    if (enter(u, net, HOOK_UPDATE))
        return u->fail_rc;
    int rc = BPL_OK;
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++)
        rc = bpl_net_weight_gradients(net, l);
    if (rc == BPL_OK && u->extras) {
        bpl_layer *out = output_layer(net);
        float *trace, *scratch;
        size_t rows, cols;
        rc = bpl_layer_tensor(out, "trace", &trace, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_layer_buffer(out, "scratch", &scratch, &rows, &cols);
        for (size_t i = 0; rc == BPL_OK && i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                trace[j] += scratch[i * cols + j];
        if (rc == BPL_OK && u->poison)
            trace[0] = INFINITY;
    }
    unsigned int mask = 1u << BPL_GROUP_FORWARD;
    if (rc == BPL_OK && u->feedback) {
        float *grad;
        size_t rows, cols;
        rc = bpl_layer_tensor_grad(bpl_net_layer(net, 0), "fbw", &grad, &rows, &cols);
        for (size_t i = 0; rc == BPL_OK && i < rows * cols; i++)
            grad[i] = 0.5f;
        mask |= 1u << BPL_GROUP_FEEDBACK;
    }
    if (rc == BPL_OK)
        rc = bpl_net_apply_gradients(net, mask);
    return rc;
}

static void user_destroy(void *self)
{
    ((struct user_rule *)self)->destroy_calls++;
}

/* State hooks that are only ever checked for, never called. */
static int user_save_state(void *self, void *data, size_t capacity, size_t *size_out)
{
    (void)self, (void)data, (void)capacity;
    *size_out = 0;
    return BPL_OK;
}

static int user_load_state(void *self, bpl_net *net, const void *data, size_t size)
{
    (void)self, (void)net, (void)data, (void)size;
    return BPL_OK;
}

static void user_vtable(bpl_rule_vtable *vt, const char *name)
{
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(vt, BPL_RULE_VTABLE_VERSION));
    vt->name = name;
    vt->attach = user_attach;
    vt->forward = user_forward;
    vt->compute_targets = user_targets;
    vt->update = user_update;
    vt->destroy = user_destroy;
}

static bpl_rule *make_user_rule(struct user_rule *u, const char *name)
{
    bpl_rule_vtable vt;
    user_vtable(&vt, name);
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, u));
    return rule;
}

/* ======================================================================== */
/* vtables and rule creation                                                */
/* ======================================================================== */

START_TEST(test_vtable_init)
{
    bpl_rule_vtable vt;
    BPL_EXPECT_ERROR(bpl_rule_vtable_init(NULL, BPL_RULE_VTABLE_VERSION), BPL_ERR_INVALID_ARG,
                     "bpl_rule_vtable_init");
    BPL_EXPECT_ERROR(bpl_rule_vtable_init(&vt, 0), BPL_ERR_VERSION, "bpl_rule_vtable_init");
    BPL_EXPECT_ERROR(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION + 1), BPL_ERR_VERSION,
                     "bpl_rule_vtable_init");
    BPL_EXPECT_ERROR(bpl_rule_vtable_init(&vt, UINT_MAX), BPL_ERR_VERSION,
                     "bpl_rule_vtable_init");
    /* success zeroes every field and sets the version */
    memset(&vt, 0xab, sizeof vt);
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    ck_assert_uint_eq(vt.version, BPL_RULE_VTABLE_VERSION);
    ck_assert_uint_eq(vt.flags, 0);
    ck_assert_ptr_null(vt.name);
    ck_assert(vt.attach == NULL && vt.forward == NULL && vt.compute_targets == NULL &&
              vt.update == NULL && vt.destroy == NULL);
    ck_assert(vt.gradients == NULL && vt.after_apply == NULL && vt.save_state == NULL &&
              vt.load_state == NULL);
}
END_TEST

/* ---- a caller built against the version-1 header ---------------------------- */

/* The struct of the version-1 header, as a caller built against it has it. */
typedef struct vtable_v1 {
    unsigned int version;
    unsigned int flags;
    const char *name;
    int (*attach)(void *self, bpl_net *net);
    int (*forward)(void *self, bpl_net *net, const float *x, size_t batch);
    int (*compute_targets)(void *self, bpl_net *net, const float *y, size_t batch);
    int (*update)(void *self, bpl_net *net);
    void (*destroy)(void *self);
} vtable_v1;

#define V1_SIZE sizeof(vtable_v1)

static int v2_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    (void)self, (void)net, (void)groups;
    ck_abort_msg("a version-1 vtable's gradients hook was read");
    return BPL_ERR_INTERNAL;
}

/* bpl_rule_vtable_init writes, and bpl_rule_create reads, only the size
 * of the version the caller asks for. */
START_TEST(test_vtable_version_1_size)
{
    /* init: the bytes after version 1's struct are the caller's, untouched */
    unsigned char *mem = malloc(sizeof(bpl_rule_vtable));
    ck_assert_ptr_nonnull(mem);
    memset(mem, 0xab, sizeof(bpl_rule_vtable));
    BPL_OK_OR_FAIL(bpl_rule_vtable_init((bpl_rule_vtable *)(void *)mem, 1));
    ck_assert_uint_eq(((bpl_rule_vtable *)(void *)mem)->version, 1);
    for (size_t i = sizeof(unsigned int); i < V1_SIZE; i++)
        ck_assert_msg(mem[i] == 0, "byte %zu of the version-1 struct not cleared", i);
    for (size_t i = V1_SIZE; i < sizeof(bpl_rule_vtable); i++)
        ck_assert_msg(mem[i] == 0xab, "byte %zu past the version-1 struct written", i);

    /* create: what lies past version 1's struct is never read, even when it
     * looks like a gradients hook (with update, both would be refused) */
    struct user_rule u = {.calls = {0}};
    bpl_rule_vtable *vt = (bpl_rule_vtable *)(void *)mem;
    vt->name = "old";
    vt->forward = user_forward;
    vt->compute_targets = user_targets;
    vt->update = user_update;
    vt->destroy = user_destroy;
    vt->gradients = v2_gradients;
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, vt, &u));
    free(mem);

    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(31, x, y, 3);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 1);
    bpl_net_destroy(net);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

/* The same with a vtable allocated exactly version 1's size: under the
 * address sanitizer, a read or write past it fails the test. */
START_TEST(test_vtable_version_1_exact_allocation)
{
    ck_assert_uint_eq(V1_SIZE, offsetof(bpl_rule_vtable, gradients));
    vtable_v1 *vt = malloc(sizeof *vt);
    ck_assert_ptr_nonnull(vt);
    BPL_OK_OR_FAIL(bpl_rule_vtable_init((bpl_rule_vtable *)(void *)vt, 1));
    vt->name = "exact";
    vt->forward = user_forward;
    vt->compute_targets = user_targets;
    vt->update = user_update;
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, (const bpl_rule_vtable *)(void *)vt, &u));
    free(vt);
    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(32, x, y, 3);
    bpl_net *twin = deep_net(32, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    test_attach(twin, "backprop");
    for (int i = 0; i < 3; i++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 3, NULL));
    }
    /* version-1 backprop computes what the built-in rule computes */
    ck_assert(same_params(net, twin));
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 3);
    bpl_net_destroy(net);
    bpl_net_destroy(twin);
}
END_TEST

/* bpl_rule_create must fail with `status` naming `needle`, leave *out NULL
 * and never call destroy. */
static void expect_create_fails(const bpl_rule_vtable *vt, int status, const char *needle)
{
    struct user_rule u = {.destroy_calls = 0};
    bpl_rule *rule = (bpl_rule *)(uintptr_t)1;
    BPL_EXPECT_ERROR(bpl_rule_create(&rule, vt, &u), status, "bpl_rule_create");
    ck_assert_msg(strstr(bpl_last_error_message(), needle) != NULL,
                  "message '%s' does not mention '%s'", bpl_last_error_message(), needle);
    ck_assert_ptr_null(rule);
    ck_assert_int_eq(u.destroy_calls, 0);
}

START_TEST(test_rule_create_validation)
{
    bpl_rule_vtable vt;
    bpl_rule *rule = (bpl_rule *)(uintptr_t)1;
    user_vtable(&vt, "probe");
    BPL_EXPECT_ERROR(bpl_rule_create(NULL, &vt, NULL), BPL_ERR_INVALID_ARG, "bpl_rule_create");
    BPL_EXPECT_ERROR(bpl_rule_create(&rule, NULL, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_create");
    ck_assert_ptr_null(rule);

    user_vtable(&vt, NULL);
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "name");
    user_vtable(&vt, "");
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "name");
    user_vtable(&vt, "probe");
    vt.forward = NULL;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "forward");
    user_vtable(&vt, "probe");
    vt.compute_targets = NULL;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "compute_targets");
    user_vtable(&vt, "probe");
    vt.update = NULL;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "neither a gradients nor an update");
    /* a step is version 1's update or version 2's gradients, not both */
    user_vtable(&vt, "probe");
    vt.gradients = v2_gradients;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "both an update and a gradients hook");
    user_vtable(&vt, "probe");
    vt.after_apply = user_attach;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "after_apply hook without a gradients");
    user_vtable(&vt, "probe");
    vt.update = NULL;
    vt.gradients = v2_gradients;
    vt.save_state = user_save_state;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "only one of save_state and load_state");
    vt.save_state = NULL;
    vt.load_state = user_load_state;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "only one of save_state and load_state");
    user_vtable(&vt, "probe");
    vt.flags = 1;
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "flags");
    user_vtable(&vt, "probe");
    vt.version = 0;
    expect_create_fails(&vt, BPL_ERR_VERSION, "version");
    vt.version = BPL_RULE_VTABLE_VERSION + 1;
    expect_create_fails(&vt, BPL_ERR_VERSION, "version");
    char long_name[300];
    memset(long_name, 'r', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    user_vtable(&vt, long_name);
    expect_create_fails(&vt, BPL_ERR_INVALID_ARG, "name");

    /* attach and destroy are optional */
    struct user_rule u = {.calls = {0}};
    user_vtable(&vt, "minimal");
    vt.attach = NULL;
    vt.destroy = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, &u));
    ck_assert_str_eq(bpl_rule_name(rule), "minimal");
    bpl_net *net = deep_net(1, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    float x[2 * 5] = {0}, y[2 * 3] = {1, 0, 0, 0, 1, 0};
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 1);
    bpl_net_destroy(net);
    ck_assert_int_eq(u.destroy_calls, 0);
}
END_TEST

START_TEST(test_rule_create_copies)
{
    /* The vtable and the name are copied: the caller may reuse both. */
    struct user_rule u = {.calls = {0}};
    bpl_rule_vtable *vt = malloc(sizeof *vt);
    char *name = malloc(16);
    ck_assert_ptr_nonnull(vt);
    ck_assert_ptr_nonnull(name);
    strcpy(name, "copied");
    user_vtable(vt, name);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, vt, &u));
    memset(name, 'x', 15);
    name[15] = '\0';
    free(name);
    memset(vt, 0, sizeof *vt);
    free(vt);
    ck_assert_str_eq(bpl_rule_name(rule), "copied");

    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(2, x, y, 3);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    ck_assert_int_eq(u.calls[HOOK_ATTACH], 1);
    ck_assert_int_eq(u.calls[HOOK_FORWARD], 1);
    ck_assert_int_eq(u.calls[HOOK_TARGETS], 1);
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 1);
    ck_assert_str_eq(bpl_rule_name(bpl_net_rule(net)), "copied");
    bpl_net_destroy(net);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

START_TEST(test_rule_accessors)
{
    ck_assert_ptr_null(bpl_rule_name(NULL));
    ck_assert_str_eq(bpl_rule_description(NULL), "");
    ck_assert_uint_eq(bpl_rule_param_count(NULL), 0);
    bpl_rule_destroy(NULL);

    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    ck_assert_str_eq(bpl_rule_name(rule), "probe");
    ck_assert_str_eq(bpl_rule_description(rule), "");
    char text[32] = "a test rule";
    BPL_OK_OR_FAIL(bpl_rule_set_description(rule, text));
    text[0] = 'X'; /* copied */
    ck_assert_str_eq(bpl_rule_description(rule), "a test rule");
    BPL_EXPECT_ERROR(bpl_rule_set_description(NULL, "x"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_description");
    BPL_EXPECT_ERROR(bpl_rule_set_description(rule, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_description");
    ck_assert_str_eq(bpl_rule_description(rule), "a test rule");
    bpl_rule_destroy(rule);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

/* ======================================================================== */
/* user rules                                                               */
/* ======================================================================== */

START_TEST(test_user_backprop_matches_builtin)
{
    /* Built-in rules go through the same public path as user rules: the
     * same hooks give the same bits. */
    float x[6 * 5], y[6 * 3];
    bpl_net *builtin = deep_net(31, x, y, 6);
    bpl_net *user = deep_net(31, NULL, NULL, 0);
    ck_assert(same_params(builtin, user));
    test_attach(builtin, "backprop");
    struct user_rule u = {.calls = {0}};
    BPL_OK_OR_FAIL(bpl_net_set_rule(user, make_user_rule(&u, "my_backprop")));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(builtin), "lr", 0.05));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(user), "lr", 0.05));
    uint64_t s = 99;
    for (int step = 0; step < 6; step++) {
        double la = -1, lb = -2;
        BPL_OK_OR_FAIL(bpl_net_train_batch(builtin, x, y, 6, &la));
        BPL_OK_OR_FAIL(bpl_net_train_batch(user, x, y, 6, &lb));
        ck_assert_double_eq(la, lb);
        test_fill_uniform(x, 30, -1, 1, &s);
        test_fill_onehot(y, 6, 3, &s);
    }
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 6);
    ck_assert(same_params(builtin, user));
    /* and it did learn something: the weights moved */
    bpl_net *fresh = deep_net(31, NULL, NULL, 0);
    ck_assert(!same_params(fresh, user));
    float out_a[6 * 3], out_b[6 * 3];
    BPL_OK_OR_FAIL(bpl_net_predict(builtin, x, 6, out_a, 18));
    BPL_OK_OR_FAIL(bpl_net_predict(user, x, 6, out_b, 18));
    ck_assert_mem_eq(out_a, out_b, sizeof out_a);
    bpl_net_destroy(fresh);
    bpl_net_destroy(builtin);
    bpl_net_destroy(user);
}
END_TEST

/* A user's rule writes through borrowed pointers, past the optimiser's
 * checks: a step that leaves NaN or Inf behind must not report success. */
START_TEST(test_user_rule_leaving_inf_fails_the_step)
{
    float x[4 * 5], y[4 * 3];
    bpl_net *net = deep_net(5, x, y, 4);
    struct user_rule u = {.extras = 1};
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, make_user_rule(&u, "tracer")));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    u.poison = 1;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_NUMERIC, "'trace'");
    ck_assert_msg(strstr(bpl_last_error_message(), "tracer") != NULL,
                  "the message does not name the rule: %s", bpl_last_error_message());
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_user_rule_tensors_and_buffers)
{
    float x[4 * 5], y[4 * 3], p[4 * 3];
    bpl_net *net = deep_net(5, x, y, 4);
    struct user_rule u = {.extras = 1};
    bpl_rule *rule = make_user_rule(&u, "tracer");
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    /* the attach hook runs once, sees the rule attached, and adds its tensor */
    ck_assert_int_eq(u.calls[HOOK_ATTACH], 1);
    ck_assert_ptr_eq(u.rule_in_attach, rule);
    bpl_layer *out = bpl_net_layer(net, 2);
    ck_assert_uint_eq(bpl_layer_tensor_count(out), 3);
    ck_assert_str_eq(bpl_layer_tensor_name(out, 2), "trace");
    int group = -7;
    size_t rows, cols;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(out, "trace", &rows, &cols, &group));
    ck_assert_uint_eq(rows, 1);
    ck_assert_uint_eq(cols, 3);
    ck_assert_int_eq(group, BPL_GROUP_NONE);

    /* update sums the outputs the forward hook left in "scratch" */
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 4, p, 12));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert_uint_eq(u.scratch_rows, 4);
    ck_assert_uint_eq(u.scratch_cols, 3);
    float trace[3];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(out, "trace", trace, 3));
    for (size_t j = 0; j < 3; j++) {
        double sum = 0;
        for (size_t i = 0; i < 4; i++)
            sum += p[i * 3 + j];
        ck_assert_double_lt(fabs(trace[j] - sum), 1e-5);
    }
    /* group none: the optimiser leaves it alone, only the rule writes it */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 2, NULL));
    ck_assert_uint_eq(u.scratch_rows, 2);
    ck_assert_int_eq(u.destroy_calls, 0);
    bpl_net_destroy(net);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

START_TEST(test_hook_phases)
{
    float x[4 * 5], y[4 * 3], out[4 * 3];
    bpl_net *net = deep_net(6, x, y, 4);
    struct user_rule u = {.calls = {0}};
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, make_user_rule(&u, "probe")));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert_int_eq(u.phase[HOOK_FORWARD], BPL_PHASE_TRAIN);
    ck_assert_int_eq(u.phase[HOOK_TARGETS], BPL_PHASE_TRAIN);
    ck_assert_int_eq(u.phase[HOOK_UPDATE], BPL_PHASE_TRAIN);
    ck_assert_uint_eq(u.batch_seen, 4);

    /* inference calls forward only */
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 3, out, 9));
    ck_assert_int_eq(u.calls[HOOK_FORWARD], 2);
    ck_assert_int_eq(u.calls[HOOK_TARGETS], 1);
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 1);
    ck_assert_int_eq(u.phase[HOOK_FORWARD], BPL_PHASE_PREDICT);
    ck_assert_uint_eq(u.batch_seen, 3);

    /* diagnostics run every hook; applying gradients does nothing */
    bpl_net *twin = deep_net(6, NULL, NULL, 0);
    struct user_rule v = {.calls = {0}};
    BPL_OK_OR_FAIL(bpl_net_set_rule(twin, make_user_rule(&v, "probe")));
    BPL_OK_OR_FAIL(bpl_net_train_batch(twin, x, y, 4, NULL));
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 3));
    ck_assert_int_eq(u.phase[HOOK_FORWARD], BPL_PHASE_DIAGNOSE);
    ck_assert_int_eq(u.phase[HOOK_TARGETS], BPL_PHASE_DIAGNOSE);
    ck_assert_int_eq(u.phase[HOOK_UPDATE], BPL_PHASE_DIAGNOSE);
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 2);
    ck_assert(same_params(net, twin));
    for (int l = 0; l < 3; l++)
        ck_assert_double_lt(angles[l], 1e-2); /* a backprop clone */
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    bpl_net_destroy(twin);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* hook failures                                                            */
/* ======================================================================== */

START_TEST(test_hook_failures)
{
    const struct {
        int hook;
        int rc;
        const char *msg;
        int expect;
        const char *where;
    } cases[] = {
        {HOOK_FORWARD, BPL_ERR_RANGE, "probe: alpha too large", BPL_ERR_RANGE,
         "rule 'probe' forward"},
        {HOOK_TARGETS, BPL_ERR_UNSUPPORTED, "probe: no such target", BPL_ERR_UNSUPPORTED,
         "rule 'probe' compute_targets"},
        {HOOK_UPDATE, BPL_ERR_NUMERIC, "probe: bad update", BPL_ERR_NUMERIC,
         "rule 'probe' update"},
        /* without a message of its own */
        {HOOK_UPDATE, BPL_ERR_STATE, NULL, BPL_ERR_STATE, "rule 'probe' update"},
        /* a status this library does not know, but a later one may define:
         * the reserved range passes unchanged */
        {HOOK_UPDATE, -50, NULL, -50, "rule 'probe' update"},
        {HOOK_TARGETS, BPL_STATUS_MIN, "probe: newest status", BPL_STATUS_MIN,
         "rule 'probe' compute_targets"},
        /* positive values, and negative values below the reserved range */
        {HOOK_FORWARD, 1, NULL, BPL_ERR_CALLBACK, "rule 'probe' forward"},
        {HOOK_TARGETS, 7, NULL, BPL_ERR_CALLBACK, "rule 'probe' compute_targets"},
        {HOOK_UPDATE, BPL_STATUS_MIN - 1, NULL, BPL_ERR_CALLBACK, "rule 'probe' update"},
        {HOOK_UPDATE, INT_MIN, NULL, BPL_ERR_CALLBACK, "rule 'probe' update"},
    };
    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(7, x, y, 3);
    struct user_rule u = {.calls = {0}};
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, make_user_rule(&u, "probe")));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        u.fail_hook = cases[c].hook;
        u.fail_rc = cases[c].rc;
        u.fail_msg = cases[c].msg;
        int rc = bpl_net_train_batch(net, x, y, 3, NULL);
        BPL_EXPECT_ERROR(rc, cases[c].expect, cases[c].where);
        if (cases[c].msg)
            ck_assert_msg(strstr(bpl_last_error_message(), cases[c].msg) != NULL,
                          "case %zu: '%s' lacks the hook's message", c,
                          bpl_last_error_message());
        ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
        /* the net is usable afterwards */
        u.fail_hook = HOOK_NONE;
        double loss = -1;
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, &loss));
        ck_assert(isfinite(loss));
    }
    /* inference propagates forward failures the same way */
    u.fail_hook = HOOK_FORWARD;
    u.fail_rc = BPL_ERR_RANGE;
    u.fail_msg = "probe: cannot predict";
    float out[3 * 3];
    BPL_EXPECT_ERROR(bpl_net_predict(net, x, 3, out, 9), BPL_ERR_RANGE,
                     "rule 'probe' forward");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "probe: cannot predict"));
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    double angles[3];
    u.fail_hook = HOOK_TARGETS;
    u.fail_rc = 3;
    BPL_EXPECT_ERROR(bpl_net_alignment(net, x, y, 3, angles, 3), BPL_ERR_CALLBACK,
                     "rule 'probe' compute_targets");
    ck_assert_int_eq(bpl_net_phase(net), BPL_PHASE_IDLE);
    u.fail_hook = HOOK_NONE;
    BPL_OK_OR_FAIL(bpl_net_predict(net, x, 3, out, 9));
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 3, angles, 3));
    bpl_net_destroy(net);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

START_TEST(test_attach_failure)
{
    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(8, x, y, 3);
    test_attach(net, "fa");
    ck_assert(has_tensor(bpl_net_layer(net, 1), "feedback"));

    struct user_rule u = {.extras = 1, .fail_hook = HOOK_ATTACH,
                          .fail_rc = BPL_ERR_UNSUPPORTED, .fail_msg = "needs sigmoid"};
    bpl_rule *rule = make_user_rule(&u, "probe");
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_UNSUPPORTED, "rule 'probe' attach");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "needs sigmoid"));
    /* no rule at all now, and nothing the failed attach added is left */
    ck_assert_ptr_null(bpl_net_rule(net));
    for (size_t l = 0; l < 3; l++)
        ck_assert_uint_eq(bpl_layer_tensor_count(bpl_net_layer(net, l)), 2);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 3, NULL), BPL_ERR_STATE,
                     "bpl_net_train_batch");
    /* the caller still owns the rule */
    ck_assert_int_eq(u.destroy_calls, 0);
    bpl_rule_destroy(rule);
    ck_assert_int_eq(u.destroy_calls, 1);

    /* ... and may attach it again once the hook succeeds */
    struct user_rule v = {.extras = 1, .fail_hook = HOOK_ATTACH, .fail_rc = 5};
    rule = make_user_rule(&v, "probe");
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, rule), BPL_ERR_CALLBACK, "rule 'probe' attach");
    v.fail_hook = HOOK_NONE;
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    ck_assert_ptr_eq(bpl_net_rule(net), rule);
    ck_assert(has_tensor(bpl_net_layer(net, 2), "trace"));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    bpl_net_destroy(net);
    ck_assert_int_eq(v.destroy_calls, 1);
}
END_TEST

/* ======================================================================== */
/* ownership                                                                */
/* ======================================================================== */

START_TEST(test_rule_ownership)
{
    float x[3 * 5], y[3 * 3];
    bpl_net *a = deep_net(9, x, y, 3), *b = deep_net(9, NULL, NULL, 0);
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    BPL_OK_OR_FAIL(bpl_net_set_rule(a, rule));
    ck_assert_ptr_eq(bpl_net_rule(a), rule);

    /* the net owns it: destroying it now is a no-op */
    bpl_rule_destroy(rule);
    ck_assert_int_eq(u.destroy_calls, 0);
    ck_assert_str_eq(bpl_rule_name(rule), "probe");
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, 3, NULL));
    ck_assert_int_eq(u.calls[HOOK_UPDATE], 1);

    /* one net per rule */
    BPL_EXPECT_ERROR(bpl_net_set_rule(b, rule), BPL_ERR_INVALID_ARG, "bpl_net_set_rule");
    ck_assert_ptr_null(bpl_net_rule(b));
    BPL_EXPECT_ERROR(bpl_net_set_rule(a, rule), BPL_ERR_INVALID_ARG, "bpl_net_set_rule");
    ck_assert_ptr_eq(bpl_net_rule(a), rule);
    ck_assert_int_eq(u.calls[HOOK_ATTACH], 1);

    /* replacing the rule destroys the old one, once */
    test_attach(a, "backprop");
    ck_assert_int_eq(u.destroy_calls, 1);
    ck_assert_str_eq(bpl_rule_name(bpl_net_rule(a)), "backprop");
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, 3, NULL));
    bpl_net_destroy(a);
    bpl_net_destroy(b);
    ck_assert_int_eq(u.destroy_calls, 1);
}
END_TEST

START_TEST(test_rule_replacement)
{
    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(10, x, y, 3);
    test_attach(net, "fa");
    bpl_layer *l0 = bpl_net_layer(net, 0), *l1 = bpl_net_layer(net, 1),
              *l2 = bpl_net_layer(net, 2);
    int group = -7;
    /* FA: a fixed feedback matrix for each layer above the first */
    ck_assert(!has_tensor(l0, "feedback"));
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(l1, "feedback", NULL, NULL, &group));
    ck_assert_int_eq(group, BPL_GROUP_NONE);
    ck_assert(has_tensor(l2, "feedback"));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));

    test_attach(net, "backprop");
    for (size_t l = 0; l < 3; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        ck_assert(!has_tensor(layer, "feedback"));
        ck_assert_uint_eq(bpl_layer_tensor_count(layer), 2);
        float tmp[30];
        BPL_EXPECT_ERROR(bpl_layer_get_tensor(layer, "feedback", tmp, 30), BPL_ERR_NOT_FOUND,
                         "bpl_layer_get_tensor");
    }
    /* DFA: a feedback matrix for each hidden layer */
    test_attach(net, "dfa");
    ck_assert(has_tensor(l0, "feedback"));
    ck_assert(has_tensor(l1, "feedback"));
    ck_assert(!has_tensor(l2, "feedback"));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));

    /* a user rule's tensor and buffer go with it too: the buffer name is
     * free for another width afterwards */
    struct user_rule u = {.extras = 1};
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, make_user_rule(&u, "tracer")));
    ck_assert(!has_tensor(l0, "feedback"));
    ck_assert(has_tensor(l2, "trace"));
    BPL_EXPECT_ERROR(bpl_layer_add_buffer(l2, "scratch", 7), BPL_ERR_SHAPE,
                     "bpl_layer_add_buffer");
    test_attach(net, "backprop");
    ck_assert_int_eq(u.destroy_calls, 1);
    ck_assert(!has_tensor(l2, "trace"));
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(l2, "scratch", 7));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_rule_args)
{
    bpl_net *net = deep_net(11, NULL, NULL, 0);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "backprop"));
    BPL_EXPECT_ERROR(bpl_net_set_rule(NULL, rule), BPL_ERR_INVALID_ARG, "bpl_net_set_rule");
    BPL_EXPECT_ERROR(bpl_net_set_rule(net, NULL), BPL_ERR_INVALID_ARG, "bpl_net_set_rule");
    ck_assert_ptr_null(bpl_net_rule(net));
    bpl_net *empty;
    BPL_OK_OR_FAIL(bpl_net_create(&empty, 3, 1));
    BPL_EXPECT_ERROR(bpl_net_set_rule(empty, rule), BPL_ERR_STATE, "bpl_net_set_rule");
    /* still the caller's after the failures */
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    bpl_net_destroy(empty);
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* built-in rules                                                           */
/* ======================================================================== */

START_TEST(test_builtin_list)
{
    static const char *const expected[] = {"backprop", "fa", "dfa"};
    ck_assert_uint_ge(bpl_rule_builtin_count(), 3);
    for (size_t e = 0; e < 3; e++) {
        int found = 0;
        for (size_t i = 0; i < bpl_rule_builtin_count(); i++) {
            ck_assert_ptr_nonnull(bpl_rule_builtin_name(i));
            found += strcmp(bpl_rule_builtin_name(i), expected[e]) == 0;
        }
        ck_assert_msg(found == 1, "'%s' listed %d times", expected[e], found);
    }
    ck_assert_ptr_null(bpl_rule_builtin_name(bpl_rule_builtin_count()));
    ck_assert_ptr_null(bpl_rule_builtin_name(SIZE_MAX));
    /* every listed name can be created, and is the rule's name */
    for (size_t i = 0; i < bpl_rule_builtin_count(); i++) {
        bpl_rule *rule = NULL;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, bpl_rule_builtin_name(i)));
        ck_assert_str_eq(bpl_rule_name(rule), bpl_rule_builtin_name(i));
        ck_assert_msg(bpl_rule_description(rule)[0] != '\0', "%s: no description",
                      bpl_rule_name(rule));
        bpl_rule_destroy(rule);
    }
}
END_TEST

START_TEST(test_builtin_create_args)
{
    bpl_rule *rule = (bpl_rule *)(uintptr_t)1;
    BPL_EXPECT_ERROR(bpl_rule_create_builtin(&rule, "hebbian"), BPL_ERR_NOT_FOUND,
                     "bpl_rule_create_builtin");
    ck_assert_ptr_null(rule);
    const char *msg = bpl_last_error_message();
    ck_assert_ptr_nonnull(strstr(msg, "hebbian"));
    for (size_t i = 0; i < bpl_rule_builtin_count(); i++)
        ck_assert_msg(strstr(msg, bpl_rule_builtin_name(i)) != NULL,
                      "'%s' does not list '%s'", msg, bpl_rule_builtin_name(i));
    BPL_EXPECT_ERROR(bpl_rule_create_builtin(&rule, ""), BPL_ERR_NOT_FOUND,
                     "bpl_rule_create_builtin");
    BPL_EXPECT_ERROR(bpl_rule_create_builtin(&rule, "Backprop"), BPL_ERR_NOT_FOUND,
                     "bpl_rule_create_builtin");
    rule = (bpl_rule *)(uintptr_t)1;
    BPL_EXPECT_ERROR(bpl_rule_create_builtin(&rule, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_create_builtin");
    ck_assert_ptr_null(rule);
    BPL_EXPECT_ERROR(bpl_rule_create_builtin(NULL, "fa"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_create_builtin");
}
END_TEST

/* ======================================================================== */
/* hyperparameters                                                          */
/* ======================================================================== */

/* The optimiser hyperparameters of group `prefix` exist with sane metadata. */
static void check_optimizer_params(const bpl_rule *rule, const char *prefix)
{
    for (size_t k = 0; k < N_OPT_KEYS; k++) {
        char key[64];
        snprintf(key, sizeof key, "%s%s", prefix, optimizer_keys[k]);
        long index = param_index(rule, key);
        ck_assert_msg(index >= 0, "rule '%s' lacks '%s'", bpl_rule_name(rule), key);
        const char *name, *choices, *doc;
        int kind;
        double def, lo, hi;
        BPL_OK_OR_FAIL(bpl_rule_param_info(rule, (size_t)index, &name, &kind, &def, &lo, &hi,
                                           &choices, &doc));
        ck_assert_str_eq(name, key);
        ck_assert_ptr_nonnull(doc);
        ck_assert_msg(doc[0] != '\0', "'%s' has no doc", key);
        ck_assert_msg(lo <= def && def <= hi, "'%s': default %g outside [%g, %g]", key, def,
                      lo, hi);
        ck_assert_double_eq(get_param(rule, key), def);
        if (k == 0) {
            ck_assert_int_eq(kind, BPL_PARAM_CHOICE);
            ck_assert_ptr_nonnull(choices);
            ck_assert_str_eq(choices, "sgd|momentum|rmsprop|adam");
            ck_assert_double_eq(lo, 0);
            ck_assert_double_eq(hi, 3);
            continue;
        }
        ck_assert_int_eq(kind, BPL_PARAM_REAL);
        ck_assert_ptr_null(choices);
        const char *base = optimizer_keys[k];
        if (strcmp(base, "eps") == 0) {
            ck_assert_double_gt(lo, 0); /* a denominator stabiliser */
        } else {
            ck_assert_double_eq(lo, 0);
        }
        if (strcmp(base, "momentum") == 0 || strcmp(base, "beta1") == 0 ||
            strcmp(base, "beta2") == 0 || strcmp(base, "rho") == 0)
            ck_assert_double_lt(hi, 1); /* decay rates below 1 */
        if (strcmp(base, "lr") == 0)
            ck_assert_double_ge(hi, 1);
    }
}

START_TEST(test_optimizer_params_declared)
{
    for (size_t i = 0; i < bpl_rule_builtin_count(); i++) {
        bpl_rule *rule;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, bpl_rule_builtin_name(i)));
        check_optimizer_params(rule, "");
        bpl_rule_destroy(rule);
    }
    /* user rules start with the forward optimiser: Adam, lr 1e-3 */
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    ck_assert_uint_eq(bpl_rule_param_count(rule), N_OPT_KEYS);
    check_optimizer_params(rule, "");
    ck_assert_double_eq(get_param(rule, "optimizer"), BPL_OPT_ADAM);
    ck_assert_double_eq(get_param(rule, "lr"), 1e-3);
    ck_assert_int_lt(param_index(rule, "fb_lr"), 0);
    bpl_rule_destroy(rule);
}
END_TEST

/* Names a file holds may be any printable ASCII; hyperparameter names are
 * identifiers, since they also travel as "name=value". */
START_TEST(test_name_rules)
{
    bpl_net *net = test_small_classifier(3);
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(layer, "a b=c", 1, 1, BPL_GROUP_NONE, BPL_INIT_ZERO,
                                        0, NULL));
    BPL_OK_OR_FAIL(bpl_layer_add_buffer(layer, "x,y", 2));
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "backprop"));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "Beta_2.x-1", BPL_PARAM_REAL, 0, 0, 1, NULL,
                                      NULL));
    static const char *const refused[] = {"a b", "a=b", "x,y", "", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        BPL_EXPECT_ERROR(bpl_rule_add_param(rule, refused[i], BPL_PARAM_REAL, 0, 0, 1, NULL,
                                            NULL),
                         BPL_ERR_INVALID_ARG, "[A-Za-z0-9_.-]");
    char long_name[BPL_TEST_NAME_MAX + 1];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, long_name, BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "1-47 characters");
    BPL_EXPECT_ERROR(bpl_layer_add_tensor(layer, long_name, 1, 1, BPL_GROUP_NONE,
                                          BPL_INIT_ZERO, 0, NULL),
                     BPL_ERR_INVALID_ARG, "1-47 printable");
    bpl_rule_destroy(rule);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_param_info_args)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "fa"));
    size_t n = bpl_rule_param_count(rule);
    ck_assert_uint_ge(n, N_OPT_KEYS + 1);
    /* every out pointer may be NULL */
    for (size_t i = 0; i < n; i++)
        BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    const char *name = "unchanged";
    BPL_EXPECT_ERROR(bpl_rule_param_info(rule, n, &name, NULL, NULL, NULL, NULL, NULL, NULL),
                     BPL_ERR_RANGE, "bpl_rule_param_info");
    BPL_EXPECT_ERROR(bpl_rule_param_info(rule, SIZE_MAX, NULL, NULL, NULL, NULL, NULL, NULL,
                                         NULL),
                     BPL_ERR_RANGE, "bpl_rule_param_info");
    BPL_EXPECT_ERROR(bpl_rule_param_info(NULL, 0, &name, NULL, NULL, NULL, NULL, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_param_info");
    /* names are unique */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) {
            const char *a, *b;
            BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, &a, NULL, NULL, NULL, NULL, NULL,
                                               NULL));
            BPL_OK_OR_FAIL(bpl_rule_param_info(rule, j, &b, NULL, NULL, NULL, NULL, NULL,
                                               NULL));
            ck_assert_str_ne(a, b);
        }
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(test_set_get)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "backprop"));
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
        const char *name;
        int kind;
        double lo, hi;
        BPL_OK_OR_FAIL(bpl_rule_param_info(rule, i, &name, &kind, NULL, &lo, &hi, NULL,
                                           NULL));
        double value = kind == BPL_PARAM_REAL ? lo + 0.37 * (hi - lo) : hi;
        BPL_OK_OR_FAIL(bpl_rule_set(rule, name, value));
        ck_assert_double_eq(get_param(rule, name), value);
        BPL_OK_OR_FAIL(bpl_rule_set(rule, name, lo));
        ck_assert_double_eq(get_param(rule, name), lo);
        BPL_OK_OR_FAIL(bpl_rule_set(rule, name, value));
        /* outside the bounds, NaN: rejected, value kept */
        BPL_EXPECT_ERROR(bpl_rule_set(rule, name, hi + 1), BPL_ERR_RANGE, "bpl_rule_set");
        BPL_EXPECT_ERROR(bpl_rule_set(rule, name, lo - 1), BPL_ERR_RANGE, "bpl_rule_set");
        BPL_EXPECT_ERROR(bpl_rule_set(rule, name, INFINITY), BPL_ERR_RANGE, "bpl_rule_set");
        BPL_EXPECT_ERROR(bpl_rule_set(rule, name, -INFINITY), BPL_ERR_RANGE, "bpl_rule_set");
        BPL_EXPECT_ERROR(bpl_rule_set(rule, name, NAN), BPL_ERR_INVALID_ARG, "bpl_rule_set");
        ck_assert_double_eq(get_param(rule, name), value);
    }
    /* specific bounds with a meaning */
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "lr", -0.1), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "momentum", 1.0), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "beta2", 1.0), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "eps", 0.0), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "weight_decay", -1e-3), BPL_ERR_RANGE,
                     "bpl_rule_set");
    /* a choice takes whole indices */
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "optimizer", 1.5), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "optimizer", 4), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "optimizer", -1), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "optimizer", BPL_OPT_MOMENTUM));
    ck_assert_double_eq(get_param(rule, "optimizer"), BPL_OPT_MOMENTUM);

    double v = 42;
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "alpha", 1.0), BPL_ERR_NOT_FOUND, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_get(rule, "alpha", &v), BPL_ERR_NOT_FOUND, "bpl_rule_get");
    BPL_EXPECT_ERROR(bpl_rule_get(rule, "fb_lr", &v), BPL_ERR_NOT_FOUND, "bpl_rule_get");
    BPL_EXPECT_ERROR(bpl_rule_get(rule, "feedback_scale", &v), BPL_ERR_NOT_FOUND,
                     "bpl_rule_get");
    ck_assert_double_eq(v, 42);
    BPL_EXPECT_ERROR(bpl_rule_set(NULL, "lr", 1.0), BPL_ERR_INVALID_ARG, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, NULL, 1.0), BPL_ERR_INVALID_ARG, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_get(NULL, "lr", &v), BPL_ERR_INVALID_ARG, "bpl_rule_get");
    BPL_EXPECT_ERROR(bpl_rule_get(rule, NULL, &v), BPL_ERR_INVALID_ARG, "bpl_rule_get");
    BPL_EXPECT_ERROR(bpl_rule_get(rule, "lr", NULL), BPL_ERR_INVALID_ARG, "bpl_rule_get");

    /* an attached rule is still configured through the same calls */
    bpl_net *net = deep_net(12, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", 0.25));
    ck_assert_double_eq(get_param(rule, "lr"), 0.25);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_set_string)
{
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "dfa"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "lr", "0.05"));
    ck_assert_double_eq(get_param(rule, "lr"), 0.05);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "lr", "2.5e-2"));
    ck_assert_double_eq(get_param(rule, "lr"), 0.025);
    /* choice names and numbers */
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", "rmsprop"));
    ck_assert_double_eq(get_param(rule, "optimizer"), 2);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", "sgd"));
    ck_assert_double_eq(get_param(rule, "optimizer"), 0);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", "adam"));
    ck_assert_double_eq(get_param(rule, "optimizer"), 3);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", "1"));
    ck_assert_double_eq(get_param(rule, "optimizer"), 1);

    /* neither a number nor a choice */
    static const char *const garbage[] = {"fast", "", "0.1x", "x0.1", "ADAM", "adam ", "1,5"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "optimizer", garbage[i]),
                         BPL_ERR_INVALID_ARG, "bpl_rule_set_string");
        BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "lr", garbage[i]), BPL_ERR_INVALID_ARG,
                         "bpl_rule_set_string");
    }
    ck_assert_double_eq(get_param(rule, "optimizer"), 1);
    ck_assert_double_eq(get_param(rule, "lr"), 0.025);
    /* errors as bpl_rule_set */
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "lr", "1e5"), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "lr", "-1"), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "optimizer", "2.5"), BPL_ERR_RANGE,
                     "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "optimizer", "7"), BPL_ERR_RANGE,
                     "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "alpha", "1"), BPL_ERR_NOT_FOUND,
                     "bpl_rule_set_string");
    BPL_EXPECT_ERROR(bpl_rule_set_string(NULL, "lr", "1"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_string");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, NULL, "1"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_string");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "lr", NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_string");
    ck_assert_double_eq(get_param(rule, "lr"), 0.025);

    /* booleans */
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "flag", BPL_PARAM_BOOL, 0, 0, 1, NULL, "a flag"));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "flag", "true"));
    ck_assert_double_eq(get_param(rule, "flag"), 1);
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "flag", "0"));
    ck_assert_double_eq(get_param(rule, "flag"), 0);
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "flag", "maybe"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_string");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "flag", "0.5"), BPL_ERR_RANGE, "bpl_rule_set");
    ck_assert_double_eq(get_param(rule, "flag"), 0);
    bpl_rule_destroy(rule);
}
END_TEST

START_TEST(test_add_param)
{
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    size_t n = bpl_rule_param_count(rule);

    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "alpha", BPL_PARAM_REAL, 0.5, 0, 1, NULL,
                                      "mixing weight"));
    ck_assert_uint_eq(bpl_rule_param_count(rule), n + 1);
    const char *name, *choices, *doc;
    int kind;
    double def, lo, hi;
    BPL_OK_OR_FAIL(bpl_rule_param_info(rule, n, &name, &kind, &def, &lo, &hi, &choices, &doc));
    ck_assert_str_eq(name, "alpha");
    ck_assert_int_eq(kind, BPL_PARAM_REAL);
    ck_assert_double_eq(def, 0.5);
    ck_assert_double_eq(lo, 0);
    ck_assert_double_eq(hi, 1);
    ck_assert_ptr_null(choices);
    ck_assert_str_eq(doc, "mixing weight");
    ck_assert_double_eq(get_param(rule, "alpha"), 0.5);

    /* integers */
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "steps", BPL_PARAM_INT, 3, 1, 10, NULL, "steps"));
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "steps", 2.5), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "steps", 10));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "steps", "7"));
    ck_assert_double_eq(get_param(rule, "steps"), 7);
    /* booleans: 0 or 1 */
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "use_bias", BPL_PARAM_BOOL, 1, 0, 1, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "use_bias", 0.5), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "use_bias", 2), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "use_bias", 0));
    /* choices: lo and hi are ignored, the list sets the range */
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "mode", BPL_PARAM_CHOICE, 1, 99, -99,
                                      "fast|exact|lazy", "evaluation mode"));
    long index = param_index(rule, "mode");
    ck_assert_int_ge(index, 0);
    BPL_OK_OR_FAIL(bpl_rule_param_info(rule, (size_t)index, NULL, &kind, &def, &lo, &hi,
                                       &choices, NULL));
    ck_assert_int_eq(kind, BPL_PARAM_CHOICE);
    ck_assert_double_eq(def, 1);
    ck_assert_double_eq(lo, 0);
    ck_assert_double_eq(hi, 2);
    ck_assert_str_eq(choices, "fast|exact|lazy");
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "mode", "lazy"));
    ck_assert_double_eq(get_param(rule, "mode"), 2);
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "mode", 3), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "mode", 0.5), BPL_ERR_RANGE, "bpl_rule_set");
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "mode", "slow"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_string");
    size_t declared = bpl_rule_param_count(rule);

    /* invalid declarations add nothing */
    char long_name[200];
    memset(long_name, 'p', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    static const char *const bad_names[] = {"", "two words", "a=b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        BPL_EXPECT_ERROR(bpl_rule_add_param(rule, bad_names[i], BPL_PARAM_REAL, 0, 0, 1, NULL,
                                            NULL),
                         BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, long_name, BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, NULL, BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(NULL, "beta", BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "alpha", BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "lr", BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", 4, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", -1, 0, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", BPL_PARAM_REAL, 0.5, 1, 0, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", BPL_PARAM_REAL, 0.5, NAN, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", BPL_PARAM_CHOICE, 0, 0, 0, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", BPL_PARAM_CHOICE, 0, 0, 0, "", NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "beta", BPL_PARAM_REAL, NAN, 0, 1, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_param");
    ck_assert_uint_eq(bpl_rule_param_count(rule), declared);
    ck_assert_int_lt(param_index(rule, "beta"), 0);

    /* declarations end when the rule is attached */
    bpl_net *net = deep_net(13, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_EXPECT_ERROR(bpl_rule_add_param(rule, "late", BPL_PARAM_REAL, 0, 0, 1, NULL, NULL),
                     BPL_ERR_STATE, "bpl_rule_add_param");
    ck_assert_uint_eq(bpl_rule_param_count(rule), declared);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_add_optimizer)
{
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    size_t n = bpl_rule_param_count(rule);
    BPL_OK_OR_FAIL(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, 0.25));
    ck_assert_uint_eq(bpl_rule_param_count(rule), n + N_OPT_KEYS);
    check_optimizer_params(rule, "fb_");
    ck_assert_double_eq(get_param(rule, "fb_optimizer"), BPL_OPT_SGD);
    ck_assert_double_eq(get_param(rule, "fb_lr"), 0.25);
    /* the forward group is untouched */
    ck_assert_double_eq(get_param(rule, "optimizer"), BPL_OPT_ADAM);
    ck_assert_double_eq(get_param(rule, "lr"), 1e-3);

    /* re-declaring a group updates its defaults, adds nothing */
    BPL_OK_OR_FAIL(bpl_rule_add_optimizer(rule, BPL_GROUP_FORWARD, "", BPL_OPT_MOMENTUM, 0.1));
    ck_assert_uint_eq(bpl_rule_param_count(rule), n + N_OPT_KEYS);
    ck_assert_double_eq(get_param(rule, "optimizer"), BPL_OPT_MOMENTUM);
    ck_assert_double_eq(get_param(rule, "lr"), 0.1);
    double def = -1;
    BPL_OK_OR_FAIL(bpl_rule_param_info(rule, (size_t)param_index(rule, "lr"), NULL, NULL, &def,
                                       NULL, NULL, NULL, NULL));
    ck_assert_double_eq(def, 0.1);

    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(NULL, BPL_GROUP_FORWARD, "", BPL_OPT_SGD, 0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, BPL_GROUP_FORWARD, NULL, BPL_OPT_SGD, 0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, BPL_GROUP_NONE, "x_", BPL_OPT_SGD, 0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, 2, "x_", BPL_OPT_SGD, 0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", -1, 0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_ADAM + 1,
                                            0.1),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    ck_assert_uint_eq(bpl_rule_param_count(rule), n + N_OPT_KEYS);
    bpl_rule_destroy(rule);
}
END_TEST

/* A name the optimiser would generate that already belongs to another
 * parameter (here an integer "x_lr") is refused, and nothing is added. */
START_TEST(test_add_optimizer_foreign_name)
{
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "x_lr", BPL_PARAM_INT, 3, 1, 10, NULL, "count"));
    size_t n = bpl_rule_param_count(rule);
    BPL_EXPECT_ERROR(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "x_", BPL_OPT_SGD, 0.5),
                     BPL_ERR_INVALID_ARG, "bpl_rule_add_optimizer");
    ck_assert_uint_eq(bpl_rule_param_count(rule), n);
    ck_assert_double_eq(get_param(rule, "x_lr"), 3);
    ck_assert_int_eq(param_index(rule, "x_optimizer"), -1);
    bpl_rule_destroy(rule);
}
END_TEST

/* A user rule declares its own shape-setting hyperparameter: its attach
 * hook reads "width" to size a tensor, so the value cannot change once the
 * rule is attached; the other hyperparameters stay settable. */
static int width_attach(void *self, bpl_net *net)
{
    (void)self;
    double width;
    int rc = bpl_rule_get(bpl_net_rule(net), "width", &width);
    if (rc == BPL_OK)
        rc = bpl_layer_add_tensor(bpl_net_layer(net, 0), "extra", 1, (size_t)width,
                                  BPL_GROUP_NONE, BPL_INIT_ZERO, 0.0, NULL);
    return rc;
}

START_TEST(test_user_fixed_param)
{
    struct user_rule u = {.calls = {0}};
    bpl_rule_vtable vt;
    user_vtable(&vt, "shaped");
    vt.attach = width_attach;
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, &u));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "width", BPL_PARAM_INT, 3, 1, 64, NULL, "extra"));
    BPL_OK_OR_FAIL(bpl_rule_add_param(rule, "alpha", BPL_PARAM_REAL, 0.5, 0, 1, NULL, NULL));
    BPL_EXPECT_ERROR(bpl_rule_fix_param(NULL, "width"), BPL_ERR_INVALID_ARG,
                     "bpl_rule_fix_param");
    BPL_EXPECT_ERROR(bpl_rule_fix_param(rule, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_fix_param");
    BPL_EXPECT_ERROR(bpl_rule_fix_param(rule, "depth"), BPL_ERR_NOT_FOUND, "depth");
    BPL_OK_OR_FAIL(bpl_rule_fix_param(rule, "width"));
    BPL_OK_OR_FAIL(bpl_rule_fix_param(rule, "width")); /* once or twice, the same */
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "width", 5)); /* free until attached */
    bpl_net *net = deep_net(13, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    size_t cols = 0;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(bpl_net_layer(net, 0), "extra", NULL, &cols, NULL));
    ck_assert_uint_eq(cols, 5);
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "width", 6), BPL_ERR_STATE, "width");
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "width", 5));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "alpha", 0.25));
    /* attached: fixing another now could not undo a change made before */
    BPL_EXPECT_ERROR(bpl_rule_fix_param(rule, "alpha"), BPL_ERR_STATE, "attached");
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "alpha", 0.75));
    bpl_net_destroy(net);
}
END_TEST

/* Hyperparameters that shape the net's tensors are fixed once attached;
 * the others stay settable, and re-setting the current value is allowed. */
START_TEST(test_shape_params_fixed_after_attach)
{
    bpl_net *net = deep_net(11, NULL, NULL, 0);
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "sdtp"));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "auxiliary_outputs", 4));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_EXPECT_ERROR(bpl_rule_set(rule, "auxiliary_outputs", 8), BPL_ERR_STATE,
                     "auxiliary_outputs");
    ck_assert_double_eq(get_param(rule, "auxiliary_outputs"), 4);
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "auxiliary_outputs", 4));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.01));
    ck_assert_double_eq(get_param(rule, "lr"), 0.01);
    bpl_net_destroy(net);

    net = deep_net(12, NULL, NULL, 0);
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, "segregated"));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    BPL_EXPECT_ERROR(bpl_rule_set_string(rule, "feedback", "symmetric"), BPL_ERR_STATE,
                     "feedback");
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_default_out_of_bounds)
{
    /* bpl_rule_add_param: "Errors: INVALID_ARG (bad kind, name or default
     * out of bounds, duplicate name)"; bpl_rule_add_optimizer: "Errors:
     * INVALID_ARG, NOMEM". */
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    size_t n = bpl_rule_param_count(rule);
    int rc_real = bpl_rule_add_param(rule, "beta", BPL_PARAM_REAL, 2, 0, 1, NULL, NULL);
    int rc_int = bpl_rule_add_param(rule, "gamma", BPL_PARAM_INT, 11, 1, 10, NULL, NULL);
    int rc_choice = bpl_rule_add_param(rule, "mode", BPL_PARAM_CHOICE, 3, 0, 0, "a|b|c", NULL);
    size_t count = bpl_rule_param_count(rule);
    /* a learning rate outside lr's bounds */
    int rc_opt = bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, -1);
    int opt_named = strstr(bpl_last_error_message(), "fb_lr") != NULL;
    bpl_rule_destroy(rule); /* before asserting: nothing leaks if this fails */
    ck_assert_uint_eq(count, n);
    ck_assert(opt_named);
    ck_assert_msg(rc_real == BPL_ERR_INVALID_ARG && rc_int == BPL_ERR_INVALID_ARG &&
                      rc_choice == BPL_ERR_INVALID_ARG && rc_opt == BPL_ERR_INVALID_ARG,
                  "default out of bounds: bpl_rule_add_param REAL -> %d (%s), INT -> %d, "
                  "CHOICE -> %d; bpl_rule_add_optimizer(lr -1) -> %d; expected %d (%s)",
                  rc_real, bpl_strerror(rc_real), rc_int, rc_choice, rc_opt,
                  BPL_ERR_INVALID_ARG, bpl_strerror(BPL_ERR_INVALID_ARG));
}
END_TEST

START_TEST(test_feedback_scale)
{
    static const char *const rules[] = {"fa", "dfa"};
    for (size_t r = 0; r < 2; r++) {
        for (int scaled = 0; scaled < 2; scaled++) {
            bpl_rule *rule;
            BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, rules[r]));
            long index = param_index(rule, "feedback_scale");
            ck_assert_msg(index >= 0, "'%s' lacks feedback_scale", rules[r]);
            int kind;
            double def;
            const char *doc;
            BPL_OK_OR_FAIL(bpl_rule_param_info(rule, (size_t)index, NULL, &kind, &def, NULL,
                                               NULL, NULL, &doc));
            ck_assert_int_eq(kind, BPL_PARAM_REAL);
            ck_assert_double_gt(def, 0);
            ck_assert(doc[0] != '\0');
            double gain = scaled ? 0.25 : def;
            BPL_OK_OR_FAIL(bpl_rule_set(rule, "feedback_scale", gain));
            /* the gain of the Glorot-uniform feedback matrices */
            bpl_net *net = deep_net(14, NULL, NULL, 0);
            BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
            int seen = 0;
            for (size_t l = 0; l < 3; l++) {
                bpl_layer *layer = bpl_net_layer(net, l);
                float *b;
                size_t rows, cols;
                if (bpl_layer_tensor(layer, "feedback", &b, &rows, &cols) != BPL_OK)
                    continue;
                seen++;
                double limit = gain * sqrt(6.0 / (double)(rows + cols)), max = 0;
                for (size_t i = 0; i < rows * cols; i++)
                    max = fmax(max, fabs(b[i]));
                ck_assert_msg(max <= limit * (1 + 1e-6) && max > 0.3 * limit,
                              "%s layer %zu: max |B| %g, limit %g", rules[r], l, max, limit);
            }
            ck_assert_int_eq(seen, 2);
            bpl_net_destroy(net);
        }
    }
}
END_TEST

/* ======================================================================== */
/* optimisers                                                               */
/* ======================================================================== */

START_TEST(test_optimizers_differ)
{
    static const char *const names[] = {"sgd", "momentum", "rmsprop", "adam"};
    float x[6 * 5], y[6 * 3];
    bpl_net *nets[4];
    bpl_net *fresh = deep_net(15, x, y, 6);
    for (int o = 0; o < 4; o++) {
        nets[o] = deep_net(15, NULL, NULL, 0);
        test_attach(nets[o], "backprop");
        bpl_rule *rule = bpl_net_rule(nets[o]);
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", names[o]));
        ck_assert_double_eq(get_param(rule, "optimizer"), o);
        BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.01));
        /* two steps: momentum's first step equals SGD's */
        for (int step = 0; step < 2; step++)
            BPL_OK_OR_FAIL(bpl_net_train_batch(nets[o], x, y, 6, NULL));
        ck_assert_msg(!same_params(nets[o], fresh), "%s did not train", names[o]);
    }
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < a; b++)
            ck_assert_msg(!same_params(nets[a], nets[b]), "%s and %s train alike", names[a],
                          names[b]);
    for (int o = 0; o < 4; o++)
        bpl_net_destroy(nets[o]);
    bpl_net_destroy(fresh);
}
END_TEST

START_TEST(test_sgd_step_exact)
{
    /* One linear layer, MSE, plain SGD.  Every value is a small dyadic
     * rational, so the float arithmetic is exact in any summation order and
     * the step can be compared bit for bit. */
    enum { B = 4, IN = 3, OUT = 2 };
    const float w[OUT * IN] = {0.25f, -0.5f, 0.75f, -0.25f, 0.5f, 0.0f};
    const float bias[OUT] = {0.25f, -0.5f};
    const float x[B * IN] = {1, 0, -1, 2, 1, 0, 0, -2, 1, -1, 1, 2};
    const float y[B * OUT] = {1, 0, 0, -1, 2, 1, -1, 0};
    const double lr = 0.125;

    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, IN, 1));
    BPL_OK_OR_FAIL(bpl_net_add_dense(net, OUT, BPL_ACT_LINEAR, BPL_INIT_GLOROT_UNIFORM));
    BPL_OK_OR_FAIL(bpl_net_set_loss(net, BPL_LOSS_MSE));
    bpl_layer *layer = bpl_net_layer(net, 0);
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "weight", w, OUT * IN));
    BPL_OK_OR_FAIL(bpl_layer_set_tensor(layer, "bias", bias, OUT));
    test_attach(net, "backprop");
    BPL_OK_OR_FAIL(bpl_rule_set_string(bpl_net_rule(net), "optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set(bpl_net_rule(net), "lr", lr));

    /* by hand: h = x W^T + b, loss = mean 1/2 |h - y|^2,
     * dL/dh = (h - y) / B, grad W = (dL/dh)^T x, grad b = column sums */
    double d[B][OUT], loss = 0;
    for (int i = 0; i < B; i++)
        for (int j = 0; j < OUT; j++) {
            double h = bias[j];
            for (int k = 0; k < IN; k++)
                h += (double)x[i * IN + k] * w[j * IN + k];
            double e = h - y[i * OUT + j];
            loss += 0.5 * e * e / B;
            d[i][j] = e / B;
        }
    float want_w[OUT * IN], want_b[OUT];
    for (int j = 0; j < OUT; j++) {
        double gb = 0;
        for (int i = 0; i < B; i++)
            gb += d[i][j];
        want_b[j] = (float)(bias[j] - lr * gb);
        for (int k = 0; k < IN; k++) {
            double g = 0;
            for (int i = 0; i < B; i++)
                g += d[i][j] * x[i * IN + k];
            want_w[j * IN + k] = (float)(w[j * IN + k] - lr * g);
        }
    }
    double got_loss = -1;
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, &got_loss));
    ck_assert_double_eq(got_loss, loss);
    float got_w[OUT * IN], got_b[OUT];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "weight", got_w, OUT * IN));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(layer, "bias", got_b, OUT));
    for (int i = 0; i < OUT * IN; i++)
        ck_assert_msg(got_w[i] == want_w[i], "weight %d: %.9g, expected %.9g", i, got_w[i],
                      want_w[i]);
    for (int j = 0; j < OUT; j++)
        ck_assert_msg(got_b[j] == want_b[j], "bias %d: %.9g, expected %.9g", j, got_b[j],
                      want_b[j]);
    /* the step was not trivial */
    ck_assert(memcmp(got_w, w, sizeof w) != 0);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(test_feedback_group_optimizer)
{
    float x[3 * 5], y[3 * 3];
    bpl_net *net = deep_net(16, x, y, 3);
    struct user_rule u = {.feedback = 1};
    bpl_rule *rule = make_user_rule(&u, "fbrule");
    BPL_OK_OR_FAIL(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, 0.25));
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    bpl_layer *l0 = bpl_net_layer(net, 0);
    int group;
    BPL_OK_OR_FAIL(bpl_layer_tensor_info(l0, "fbw", NULL, NULL, &group));
    ck_assert_int_eq(group, BPL_GROUP_FEEDBACK);
    /* SGD with fb_lr 0.25 on a gradient of 0.5: 1 -> 0.875 exactly */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    float fbw[6];
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(l0, "fbw", fbw, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(fbw[i], 0.875f);
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "fb_lr", 0.5));
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 3, NULL));
    BPL_OK_OR_FAIL(bpl_layer_get_tensor(l0, "fbw", fbw, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(fbw[i], 0.625f);
    bpl_net_destroy(net);

    /* without a feedback optimiser, applying the group is a state error */
    net = deep_net(16, NULL, NULL, 0);
    struct user_rule v = {.feedback = 1};
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, make_user_rule(&v, "fbrule")));
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 3, NULL), BPL_ERR_STATE,
                     "rule 'fbrule' update");
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "bpl_net_apply_gradients"));
    bpl_net_destroy(net);
}
END_TEST

/* ======================================================================== */
/* properties                                                               */
/* ======================================================================== */

START_TEST(test_property_names)
{
    ck_assert_str_eq(bpl_property_name(BPL_PROP_EXACT_GRADIENTS), "Exact Gradients");
    ck_assert_str_eq(bpl_property_name(BPL_PROP_NO_WEIGHT_TRANSPORT), "No Weight Transport");
    for (int p = BPL_PROP_EXACT_GRADIENTS; p <= BPL_PROP_EXPLICIT_ERROR; p++) {
        const char *name = bpl_property_name(p);
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(name[0] != '\0' && strcmp(name, "unknown") != 0, "property %d", p);
        for (int q = 0; q < p; q++)
            ck_assert_str_ne(name, bpl_property_name(q));
    }
    ck_assert_str_eq(bpl_property_name(-1), "unknown");
    ck_assert_str_eq(bpl_property_name(BPL_PROP_EXPLICIT_ERROR + 1), "unknown");
    ck_assert_str_eq(bpl_property_name(INT_MAX), "unknown");

    ck_assert_str_eq(bpl_tick_name(BPL_TICK_YES), "yes");
    ck_assert_str_eq(bpl_tick_name(BPL_TICK_NO), "no");
    ck_assert_str_eq(bpl_tick_name(BPL_TICK_PARTIAL), "partial");
    for (int t = BPL_TICK_NO; t <= BPL_TICK_UNKNOWN; t++) {
        ck_assert_ptr_nonnull(bpl_tick_name(t));
        ck_assert(bpl_tick_name(t)[0] != '\0');
        for (int q = 0; q < t; q++)
            ck_assert_str_ne(bpl_tick_name(t), bpl_tick_name(q));
    }
    ck_assert_str_eq(bpl_tick_name(-1), "unknown");
    ck_assert_str_eq(bpl_tick_name(BPL_TICK_UNKNOWN + 1), "unknown");
}
END_TEST

static int tick_of(const bpl_rule *rule, int property)
{
    int tick = -1;
    const char *note = NULL;
    BPL_OK_OR_FAIL(bpl_rule_property(rule, property, &tick, &note));
    ck_assert_ptr_nonnull(note);
    return tick;
}

/* The review's property table (Lange, "Biologically Plausible Deep
 * Learning: A Critical Review"), as every built-in rule must report it
 * before it is attached; columns in enum bpl_property order. */
#define Y BPL_TICK_YES
#define N BPL_TICK_NO
#define P BPL_TICK_PARTIAL
#define NA BPL_TICK_NOT_APPLICABLE
static const struct {
    const char *rule;
    int ticks[7];
} review_table[] = {
    {"backprop", {Y, N, N, NA, NA, NA, Y}},
    {"fa", {N, Y, N, N, N, NA, Y}},
    {"dfa", {N, Y, N, N, N, NA, Y}},
    {"tp", {N, Y, N, N, Y, N, Y}},
    {"dtp", {N, P, N, N, Y, Y, Y}},
    {"sdtp", {N, Y, N, N, Y, Y, Y}},
    {"segregated", {N, Y, Y, Y, N, NA, N}},
    {"microcircuit", {P, Y, Y, Y, P, NA, Y}},
    /* not in the review: fa's row, but W's signs are transported */
    {"usf", {N, P, N, N, N, NA, Y}},
    {"brsf", {N, P, N, N, N, NA, Y}},
    {"frsf", {N, P, N, N, N, NA, Y}},
};
#undef Y
#undef N
#undef P
#undef NA

START_TEST(test_builtin_properties)
{
    size_t n = sizeof review_table / sizeof review_table[0];
    ck_assert_uint_eq(bpl_rule_builtin_count(), n);
    for (size_t r = 0; r < n; r++) {
        bpl_rule *rule;
        BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, review_table[r].rule));
        for (int p = BPL_PROP_EXACT_GRADIENTS; p <= BPL_PROP_EXPLICIT_ERROR; p++) {
            int tick = tick_of(rule, p);
            ck_assert_msg(tick == review_table[r].ticks[p], "%s, %s: %s, the review says %s",
                          review_table[r].rule, bpl_property_name(p), bpl_tick_name(tick),
                          bpl_tick_name(review_table[r].ticks[p]));
        }
        bpl_rule_destroy(rule);
    }
}
END_TEST

START_TEST(test_user_properties)
{
    struct user_rule u = {.calls = {0}};
    bpl_rule *rule = make_user_rule(&u, "probe");
    for (int p = BPL_PROP_EXACT_GRADIENTS; p <= BPL_PROP_EXPLICIT_ERROR; p++) {
        int tick = -1;
        const char *note = NULL;
        BPL_OK_OR_FAIL(bpl_rule_property(rule, p, &tick, &note));
        ck_assert_int_eq(tick, BPL_TICK_UNKNOWN);
        ck_assert_str_eq(note, "");
    }
    char note_buf[32] = "final layer";
    BPL_OK_OR_FAIL(bpl_rule_set_property(rule, BPL_PROP_EXACT_GRADIENTS, BPL_TICK_PARTIAL,
                                         note_buf));
    strcpy(note_buf, "changed"); /* the note is copied */
    int tick = -1;
    const char *note = NULL;
    BPL_OK_OR_FAIL(bpl_rule_property(rule, BPL_PROP_EXACT_GRADIENTS, &tick, &note));
    ck_assert_int_eq(tick, BPL_TICK_PARTIAL);
    ck_assert_str_eq(note, "final layer");
    BPL_OK_OR_FAIL(bpl_rule_property(rule, BPL_PROP_EXACT_GRADIENTS, &tick, NULL));
    ck_assert_int_eq(tick, BPL_TICK_PARTIAL);
    BPL_OK_OR_FAIL(bpl_rule_set_property(rule, BPL_PROP_EXACT_GRADIENTS, BPL_TICK_YES, NULL));
    BPL_OK_OR_FAIL(bpl_rule_property(rule, BPL_PROP_EXACT_GRADIENTS, &tick, &note));
    ck_assert_int_eq(tick, BPL_TICK_YES);
    ck_assert_str_eq(note, "");
    /* others are untouched */
    ck_assert_int_eq(tick_of(rule, BPL_PROP_NO_WEIGHT_TRANSPORT), BPL_TICK_UNKNOWN);

    BPL_EXPECT_ERROR(bpl_rule_set_property(rule, -1, BPL_TICK_YES, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_set_property");
    BPL_EXPECT_ERROR(bpl_rule_set_property(rule, BPL_PROP_EXPLICIT_ERROR + 1, BPL_TICK_YES,
                                           NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_set_property");
    BPL_EXPECT_ERROR(bpl_rule_set_property(rule, BPL_PROP_EXACT_GRADIENTS, -1, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_set_property");
    BPL_EXPECT_ERROR(bpl_rule_set_property(rule, BPL_PROP_EXACT_GRADIENTS,
                                           BPL_TICK_UNKNOWN + 1, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_set_property");
    BPL_EXPECT_ERROR(bpl_rule_set_property(NULL, BPL_PROP_EXACT_GRADIENTS, BPL_TICK_YES, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_set_property");
    ck_assert_int_eq(tick_of(rule, BPL_PROP_EXACT_GRADIENTS), BPL_TICK_YES);
    BPL_EXPECT_ERROR(bpl_rule_property(rule, -1, &tick, NULL), BPL_ERR_INVALID_ARG,
                     "bpl_rule_property");
    BPL_EXPECT_ERROR(bpl_rule_property(rule, BPL_PROP_EXPLICIT_ERROR + 1, &tick, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_property");
    BPL_EXPECT_ERROR(bpl_rule_property(rule, BPL_PROP_EXACT_GRADIENTS, NULL, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_property");
    BPL_EXPECT_ERROR(bpl_rule_property(NULL, BPL_PROP_EXACT_GRADIENTS, &tick, NULL),
                     BPL_ERR_INVALID_ARG, "bpl_rule_property");
    bpl_rule_destroy(rule);
}
END_TEST

/* ======================================================================== */

static Suite *rule_api_suite(void)
{
    Suite *s = suite_create("rule_api");

    TCase *tc = tcase_create("vtable");
    tcase_add_test(tc, test_vtable_init);
    tcase_add_test(tc, test_vtable_version_1_size);
    tcase_add_test(tc, test_vtable_version_1_exact_allocation);
    tcase_add_test(tc, test_rule_create_validation);
    tcase_add_test(tc, test_rule_create_copies);
    tcase_add_test(tc, test_rule_accessors);
    suite_add_tcase(s, tc);

    tc = tcase_create("user_rule");
    tcase_add_test(tc, test_user_backprop_matches_builtin);
    tcase_add_test(tc, test_user_rule_tensors_and_buffers);
    tcase_add_test(tc, test_hook_phases);
    suite_add_tcase(s, tc);

    tc = tcase_create("hook_failures");
    tcase_add_test(tc, test_hook_failures);
    tcase_add_test(tc, test_attach_failure);
    suite_add_tcase(s, tc);

    tc = tcase_create("ownership");
    tcase_add_test(tc, test_rule_ownership);
    tcase_add_test(tc, test_rule_replacement);
    tcase_add_test(tc, test_set_rule_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("builtins");
    tcase_add_test(tc, test_builtin_list);
    tcase_add_test(tc, test_builtin_create_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("hyperparameters");
    tcase_add_test(tc, test_optimizer_params_declared);
    tcase_add_test(tc, test_param_info_args);
    tcase_add_test(tc, test_name_rules);
    tcase_add_test(tc, test_set_get);
    tcase_add_test(tc, test_set_string);
    tcase_add_test(tc, test_add_param);
    tcase_add_test(tc, test_add_optimizer);
    tcase_add_test(tc, test_add_optimizer_foreign_name);
    tcase_add_test(tc, test_shape_params_fixed_after_attach);
    tcase_add_test(tc, test_user_fixed_param);
    tcase_add_test(tc, test_default_out_of_bounds);
    tcase_add_test(tc, test_feedback_scale);
    suite_add_tcase(s, tc);

    tc = tcase_create("optimizers");
    tcase_add_test(tc, test_optimizers_differ);
    tcase_add_test(tc, test_sgd_step_exact);
    tcase_add_test(tc, test_user_rule_leaving_inf_fails_the_step);
    tcase_add_test(tc, test_feedback_group_optimizer);
    suite_add_tcase(s, tc);

    tc = tcase_create("properties");
    tcase_add_test(tc, test_property_names);
    tcase_add_test(tc, test_builtin_properties);
    tcase_add_test(tc, test_user_properties);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return test_run_suite(rule_api_suite());
}
