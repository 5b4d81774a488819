/*
 * test_rule_state.c - a rule's own state (the save_state and load_state
 * hooks) and nets saved to and loaded from memory: a user rule on the
 * version-2 contract keeps a step count that survives save and load (file
 * and buffer), is given back before attach, does not move in diagnostics
 * or failed steps and starts afresh in a new rule; hostile states and
 * buffers are refused with clear errors; the built-in rules keep their
 * counts the same way.
 */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IN = 5, B = 6 };

/* ---- a user rule with a step count ---------------------------------------- */

#define COUNTER_FORMAT 7 /* the rule's own format byte: first of its state */

typedef struct counter_rule {
    uint64_t steps;       /* steps applied: the state */
    int loaded;           /* load_state ran */
    int resumed_attach;   /* attach ran after load_state */
    int attaches;
    int poison;           /* gradients leave NaN: the step fails */
    int lie;              /* save_state writes another size than it said */
    int save_error;       /* save_state fails with this status */
    unsigned char format; /* the format byte save_state writes (0: its own) */
} counter_rule;

static int counter_attach(void *self, bpl_net *net)
{
    counter_rule *c = self;
    (void)net;
    c->attaches++;
    c->resumed_attach = c->loaded;
    return BPL_OK;
}

static int counter_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int counter_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static int counter_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    counter_rule *c = self;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    if (c->poison) {
        float *g;
        int rc = bpl_layer_tensor_grad(bpl_net_layer(net, 0), "weight", &g, NULL, NULL);
        if (rc != BPL_OK)
            return rc;
        g[0] = NAN;
    }
    *groups = 1u << BPL_GROUP_FORWARD;
    return BPL_OK;
}

static int counter_after_apply(void *self, bpl_net *net)
{
    (void)net;
    ((counter_rule *)self)->steps++;
    return BPL_OK;
}

static int counter_save_state(void *self, void *data, size_t capacity, size_t *size_out)
{
    const counter_rule *c = self;
    if (c->save_error)
        return bpl_error_set(c->save_error, "the counter cannot be saved now");
    *size_out = 9;
    if (!data || capacity < 9)
        return BPL_OK;
    unsigned char *b = data;
    b[0] = c->format ? c->format : COUNTER_FORMAT;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(c->steps >> (8 * i));
    if (c->lie)
        *size_out = 8;
    return BPL_OK;
}

static int counter_load_state(void *self, bpl_net *net, const void *data, size_t size)
{
    counter_rule *c = self;
    const unsigned char *b = data;
    ck_assert_ptr_nonnull(net);
    if (size != 9 || b[0] != COUNTER_FORMAT)
        return bpl_error_set(BPL_ERR_FORMAT, "not a counter state of format 7");
    c->steps = 0;
    for (int i = 7; i >= 0; i--)
        c->steps = c->steps << 8 | b[1 + i];
    c->loaded = 1;
    return BPL_OK;
}

static bpl_rule *counter_rule_named(counter_rule *c, const char *name, int with_state)
{
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = name;
    vt.attach = counter_attach;
    vt.forward = counter_forward;
    vt.compute_targets = counter_targets;
    vt.gradients = counter_gradients;
    vt.after_apply = counter_after_apply;
    if (with_state) {
        vt.save_state = counter_save_state;
        vt.load_state = counter_load_state;
    }
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, c));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.01));
    return rule;
}

static bpl_net *plain_net(uint64_t seed)
{
    static const size_t units[] = {7, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    return test_make_net(IN, units, acts, 2, seed);
}

static bpl_net *counter_net(counter_rule *c)
{
    bpl_net *net = plain_net(5);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, counter_rule_named(c, "user.counter", 1)));
    return net;
}

static void batch(uint64_t seed, float *x, float *y)
{
    test_fill_uniform(x, B * IN, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
}

static void train(bpl_net *net, int steps, uint64_t seed)
{
    float x[B * IN], y[B * 3];
    for (int i = 0; i < steps; i++) {
        batch(seed + (uint64_t)i, x, y);
        BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, B, NULL));
    }
}

static void *to_buffer(const bpl_net *net, size_t *size)
{
    void *data = NULL;
    BPL_OK_OR_FAIL(bpl_net_save_to_buffer(net, &data, size));
    ck_assert_ptr_nonnull(data);
    return data;
}

static bpl_net *through_buffer(const bpl_net *net)
{
    size_t size;
    void *data = to_buffer(net, &size);
    bpl_net *copy = NULL;
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&copy, data, size));
    bpl_buffer_free(data);
    return copy;
}

static bpl_net *through_file(const bpl_net *net, const char *name)
{
    const char *path = test_temp_path(name);
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    bpl_net *copy = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&copy, path));
    return copy;
}

static void assert_same_bytes(const bpl_net *a, const bpl_net *b, const char *what)
{
    size_t na, nb;
    void *da = to_buffer(a, &na), *db = to_buffer(b, &nb);
    ck_assert_msg(na == nb && memcmp(da, db, na) == 0, "%s: the nets differ", what);
    bpl_buffer_free(da);
    bpl_buffer_free(db);
}

/* ---- the user rule's state ------------------------------------------------ */

START_TEST(user_state_round_trips)
{
    /* _i: 0 through a file, 1 through a buffer */
    counter_rule a = {0}, b = {0};
    bpl_net *net = counter_net(&a);
    train(net, 5, 100);
    ck_assert_uint_eq(a.steps, 5);
    ck_assert_int_eq(a.resumed_attach, 0);
    bpl_net *loaded = _i ? through_buffer(net) : through_file(net, "counter.bpl");
    ck_assert_ptr_null(bpl_net_rule(loaded)); /* not built in: pending */
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, counter_rule_named(&b, "user.counter", 1)));
    ck_assert_int_eq(b.loaded, 1);
    ck_assert_int_eq(b.resumed_attach, 1); /* the state came before attach */
    ck_assert_uint_eq(b.steps, 5);
    train(net, 3, 200);
    train(loaded, 3, 200);
    ck_assert_uint_eq(b.steps, 8);
    assert_same_bytes(net, loaded, "user rule resumed");
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(user_state_survives_pending_save)
{
    counter_rule a = {0}, b = {0};
    bpl_net *net = counter_net(&a);
    train(net, 4, 300);
    bpl_net *pending = through_buffer(net);
    bpl_net *again = through_file(pending, "pending.bpl"); /* saved while pending */
    BPL_OK_OR_FAIL(bpl_net_set_rule(again, counter_rule_named(&b, "user.counter", 1)));
    ck_assert_uint_eq(b.steps, 4);
    bpl_net_destroy(again);
    bpl_net_destroy(pending);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(diagnostics_and_failed_steps_keep_the_count)
{
    counter_rule a = {0};
    bpl_net *net = counter_net(&a);
    train(net, 2, 400);
    float x[B * IN], y[B * 3];
    double angles[2];
    batch(401, x, y);
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, B, angles, 2));
    ck_assert_uint_eq(a.steps, 2);
    a.poison = 1;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, B, NULL), BPL_ERR_NUMERIC, "weight");
    ck_assert_uint_eq(a.steps, 2);
    a.poison = 0;
    train(net, 1, 402);
    ck_assert_uint_eq(a.steps, 3);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(a_new_rule_starts_afresh)
{
    counter_rule a = {0}, b = {0}, c = {0};
    bpl_net *net = counter_net(&a);
    train(net, 3, 500);
    bpl_net *loaded = through_buffer(net);
    /* a rule of another name drops the saved state ... */
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, counter_rule_named(&b, "user.other", 1)));
    ck_assert_int_eq(b.loaded, 0);
    ck_assert_uint_eq(b.steps, 0);
    /* ... and so it is gone for the saved name too */
    BPL_OK_OR_FAIL(bpl_net_set_rule(loaded, counter_rule_named(&c, "user.counter", 1)));
    ck_assert_int_eq(c.loaded, 0);
    ck_assert_int_eq(c.resumed_attach, 0);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

/* Edit a model's bytes and make its checksums match again, so that only
 * the parser and the rule stand between them and the library. */
static void fix_checksums(unsigned char *d, size_t size)
{
    uint64_t payload = size - 32;
    uint32_t crc = (uint32_t)crc32(0L, d + 32, (uInt)payload);
    for (int i = 0; i < 8; i++)
        d[16 + i] = (unsigned char)(payload >> (8 * i));
    for (int i = 0; i < 4; i++)
        d[24 + i] = (unsigned char)(crc >> (8 * i));
    crc = (uint32_t)crc32(0L, d, 28);
    for (int i = 0; i < 4; i++)
        d[28 + i] = (unsigned char)(crc >> (8 * i));
}

START_TEST(refused_states)
{
    /* a state in a format the rule does not know: attaching fails with the
     * rule's message, and the net is left without a rule */
    counter_rule a = {.format = 99}, b = {0}, c = {0};
    bpl_net *net = counter_net(&a);
    train(net, 1, 600);
    bpl_net *pending = through_buffer(net);
    bpl_rule *rule = counter_rule_named(&b, "user.counter", 1);
    BPL_EXPECT_ERROR(bpl_net_set_rule(pending, rule), BPL_ERR_FORMAT, "format 7");
    ck_assert_ptr_null(bpl_net_rule(pending));
    ck_assert_int_eq(b.attaches, 0);
    bpl_rule_destroy(rule);
    bpl_net_destroy(pending);

    /* a rule of the saved name without load_state cannot take the state */
    a.format = 0;
    pending = through_buffer(net);
    rule = counter_rule_named(&c, "user.counter", 0);
    BPL_EXPECT_ERROR(bpl_net_set_rule(pending, rule), BPL_ERR_STATE, "load_state");
    ck_assert_ptr_null(bpl_net_rule(pending));
    bpl_rule_destroy(rule);
    bpl_net_destroy(pending);
    bpl_net_destroy(net);

    /* a built-in rule's state it refuses: the load fails with FORMAT */
    net = plain_net(19);
    test_attach(net, "microcircuit");
    train(net, 2, 650);
    size_t size;
    unsigned char *data = to_buffer(net, &size);
    ck_assert_int_eq(data[size - 9], 1); /* the state: format 1, count 2 */
    ck_assert_int_eq(data[size - 8], 2);
    data[size - 9] = 2;
    fix_checksums(data, size);
    bpl_net *out = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, size), BPL_ERR_FORMAT,
                     "restoring its rule");
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(bpl_last_error_message(), "load_state"));
    /* a count beyond 2^53 */
    data[size - 9] = 1;
    data[size - 1] = 0x80;
    fix_checksums(data, size);
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, size), BPL_ERR_FORMAT, "beyond");
    /* a state size beyond the bytes left */
    data[size - 1] = 0;
    data[size - 17] = 10;
    fix_checksums(data, size);
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, size), BPL_ERR_FORMAT,
                     "state is larger");
    /* a has_state flag of 2 */
    data[size - 17] = 9;
    data[size - 21] = 2;
    fix_checksums(data, size);
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, size), BPL_ERR_FORMAT,
                     "state flag");
    /* no state at all: the file's net attaches afresh (count 0) */
    data[size - 21] = 0;
    fix_checksums(data, size - 17);
    /* the payload shrank by the 17 bytes of size and state */
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&out, data, size - 17));
    bpl_net_destroy(out);
    bpl_buffer_free(data);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(state_hook_failures)
{
    counter_rule a = {0};
    bpl_net *net = counter_net(&a);
    train(net, 1, 700);
    void *data = (void *)1;
    size_t size = 1;
    a.lie = 1;
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(net, &data, &size), BPL_ERR_CALLBACK,
                     "save_state");
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(size, 0);
    BPL_EXPECT_ERROR(bpl_net_save(net, test_temp_path("liar.bpl")), BPL_ERR_CALLBACK,
                     "said 9 bytes");
    a.lie = 0;
    a.save_error = BPL_ERR_STATE;
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(net, &data, &size), BPL_ERR_STATE,
                     "cannot be saved now");
    a.save_error = 0;
    bpl_net_destroy(net);
}
END_TEST

/* ---- buffers ---------------------------------------------------------------- */

START_TEST(buffer_is_the_file)
{
    counter_rule a = {0};
    bpl_net *net = counter_net(&a);
    train(net, 2, 800);
    const char *path = test_temp_path("same.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(net, path));
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char file[65536];
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    size_t size;
    void *data = to_buffer(net, &size);
    ck_assert_uint_eq(size, n);
    ck_assert_mem_eq(data, file, n);
    ck_assert_uint_eq(file[8], 2); /* format version 2 */
    bpl_buffer_free(data);
    bpl_buffer_free(NULL);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(builtin_rules_through_buffers)
{
    /* every built-in rule, its state included, resumes exactly from a buffer */
    const char *name = bpl_rule_builtin_name((size_t)_i);
    static const size_t units[] = {7, 6, 3};
    static const int acts[] = {BPL_ACT_SIGMOID, BPL_ACT_SIGMOID, BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(IN, units, acts, 3, 11);
    bpl_rule *rule = NULL;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, name));
    (void)bpl_rule_set(rule, "pretrain_steps", 3); /* where the rule has one */
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    train(net, 2, 900);
    bpl_net *loaded = through_buffer(net);
    ck_assert_str_eq(bpl_rule_name(bpl_net_rule(loaded)), name);
    assert_same_bytes(net, loaded, name);
    train(net, 3, 950);
    train(loaded, 3, 950);
    assert_same_bytes(net, loaded, name);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(builtin_replaced_starts_afresh)
{
    /* a tp net loaded with its schedule at step 4, given a new tp rule:
     * the new rule's count starts at 0, as a rule attached afresh does
     * (its state, the model's last 9 bytes, says so) */
    bpl_net *net = plain_net(13);
    test_attach(net, "tp");
    train(net, 4, 1000);
    bpl_net *loaded = through_buffer(net);
    size_t size;
    unsigned char *data = to_buffer(loaded, &size);
    ck_assert_int_eq(data[size - 8], 4);
    bpl_buffer_free(data);
    test_attach(loaded, "tp");
    data = to_buffer(loaded, &size);
    ck_assert_int_eq(data[size - 9], 1); /* the format byte */
    ck_assert_int_eq(data[size - 8], 0);
    bpl_buffer_free(data);
    bpl_net_destroy(loaded);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(hostile_buffers)
{
    bpl_net *net = plain_net(17);
    test_attach(net, "fa");
    size_t size;
    unsigned char *data = to_buffer(net, &size);
    bpl_net *out = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(NULL, data, size), BPL_ERR_INVALID_ARG,
                     "out");
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, NULL, size), BPL_ERR_INVALID_ARG,
                     "data");
    ck_assert_ptr_null(out);
    out = (bpl_net *)1;
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, NULL, 0), BPL_ERR_FORMAT, "(buffer)");
    ck_assert_ptr_null(out);
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, 0), BPL_ERR_FORMAT, "magic");
    /* every truncation, and sizes beyond the bytes the header announces */
    for (size_t n = 1; n < size; n += n < 64 ? 1 : 7) {
        int rc = bpl_net_load_from_buffer(&out, data, n);
        ck_assert_msg(rc == BPL_ERR_FORMAT, "%zu of %zu bytes: status %d", n, size, rc);
        ck_assert_ptr_null(out);
    }
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, SIZE_MAX), BPL_ERR_FORMAT,
                     "too many");
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, data, (size_t)1 << 36 | 1),
                     BPL_ERR_FORMAT, "too many");
    /* a payload size in the header that overflows when added to the header */
    unsigned char copy[32];
    memcpy(copy, data, sizeof copy);
    memset(copy + 16, 0xff, 8);
    BPL_EXPECT_ERROR(bpl_net_load_from_buffer(&out, copy, sizeof copy), BPL_ERR_FORMAT,
                     "(buffer)");
    /* the whole buffer loads */
    BPL_OK_OR_FAIL(bpl_net_load_from_buffer(&out, data, size));
    bpl_net_destroy(out);
    bpl_buffer_free(data);

    /* save: NULL arguments, and the outputs cleared */
    void *saved = (void *)1;
    size_t n = 7;
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(NULL, &saved, &n), BPL_ERR_INVALID_ARG, "net");
    ck_assert_ptr_null(saved);
    ck_assert_uint_eq(n, 0);
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(net, NULL, &n), BPL_ERR_INVALID_ARG, "data");
    BPL_EXPECT_ERROR(bpl_net_save_to_buffer(net, &saved, NULL), BPL_ERR_INVALID_ARG, "size");
    bpl_net_destroy(net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rule_state");
    TCase *tc = tcase_create("user rule");
    tcase_add_loop_test(tc, user_state_round_trips, 0, 2);
    tcase_add_test(tc, user_state_survives_pending_save);
    tcase_add_test(tc, diagnostics_and_failed_steps_keep_the_count);
    tcase_add_test(tc, a_new_rule_starts_afresh);
    tcase_add_test(tc, refused_states);
    tcase_add_test(tc, state_hook_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("buffers");
    tcase_add_test(tc, buffer_is_the_file);
    tcase_add_loop_test(tc, builtin_rules_through_buffers, 0, (int)bpl_rule_builtin_count());
    tcase_add_test(tc, builtin_replaced_starts_afresh);
    tcase_add_test(tc, hostile_buffers);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
