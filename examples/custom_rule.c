/*
 * custom_rule.c - a learning rule of your own, written against
 * bioplaus_rule.h on the version-2 contract: backpropagation from the
 * building blocks, with a step count of its own that is saved with the net
 * (save_state / load_state).  A 2-4-1 net learns XOR; half-way, the net is
 * saved to memory and loaded again, a new rule of the same name picks up
 * the count, and both nets train on.  Exits 0 only if the loaded net ends
 * exactly as the one that never stopped, and both learned XOR.
 */
#include <bioplaus_rule.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define RULE_NAME "counting_backprop"
#define STATE_FORMAT 1 /* the first byte of the saved state: ours to version */
#define STATE_SIZE 9   /* the format byte, then the count as 8 bytes little-endian */

typedef struct counter {
    uint64_t steps; /* training steps that stood */
} counter;

static int bp_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

static int bp_targets(void *self, bpl_net *net, const float *y, size_t batch)
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

/* Fill the gradients and name the groups to step: the library applies them. */
static int bp_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    (void)self;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    *groups = 1u << BPL_GROUP_FORWARD;
    return BPL_OK;
}

/* Only a step that stood counts (not a failed one, not a diagnostic pass). */
static int bp_after_apply(void *self, bpl_net *net)
{
    (void)net;
    ((counter *)self)->steps++;
    return BPL_OK;
}

static int bp_save_state(void *self, void *data, size_t capacity, size_t *size_out)
{
    const counter *c = self;
    *size_out = STATE_SIZE;
    if (!data || capacity < STATE_SIZE)
        return BPL_OK; /* asked for the size */
    unsigned char *b = data;
    b[0] = STATE_FORMAT;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(c->steps >> (8 * i));
    return BPL_OK;
}

/* The bytes come from a file or a buffer: trust nothing. */
static int bp_load_state(void *self, bpl_net *net, const void *data, size_t size)
{
    counter *c = self;
    const unsigned char *b = data;
    (void)net;
    if (size != STATE_SIZE || b[0] != STATE_FORMAT)
        return bpl_error_set(BPL_ERR_FORMAT, "not a " RULE_NAME " state of format 1");
    c->steps = 0;
    for (int i = 7; i >= 0; i--)
        c->steps = c->steps << 8 | b[1 + i];
    return BPL_OK;
}

static int make_rule(bpl_rule **out, counter *c)
{
    bpl_rule_vtable vt;
    int rc = bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION);
    if (rc != BPL_OK)
        return rc;
    vt.name = RULE_NAME;
    vt.forward = bp_forward;
    vt.compute_targets = bp_targets;
    vt.gradients = bp_gradients;
    vt.after_apply = bp_after_apply;
    vt.save_state = bp_save_state;
    vt.load_state = bp_load_state;
    rc = bpl_rule_create(out, &vt, c);
    if (rc == BPL_OK)
        rc = bpl_rule_set(*out, "lr", 0.1); /* Adam, the default optimiser */
    return rc;
}

/* On failure, jump to the single clean-up path with the status in rc. */
#define CHECK(call) do { if ((rc = (call)) != BPL_OK) goto done; } while (0)

int main(void)
{
    static const float x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const float y[4][1] = {{0}, {1}, {1}, {0}};
    counter first = {0}, second = {0};
    bpl_net *net = NULL, *copy = NULL;
    bpl_rule *rule = NULL;
    void *saved = NULL;
    size_t size = 0;
    float out[4], out_copy[4];
    int rc, correct = 0;

    CHECK(bpl_net_create(&net, 2, 42));
    CHECK(bpl_net_add_dense(net, 4, BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_add_dense(net, 1, BPL_ACT_SIGMOID, BPL_INIT_GLOROT_UNIFORM));
    CHECK(bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY));
    CHECK(make_rule(&rule, &first));
    CHECK(bpl_net_set_rule(net, rule));
    rule = NULL; /* the net owns the rule now */
    for (int step = 0; step < 150; step++)
        CHECK(bpl_net_train_batch(net, &x[0][0], &y[0][0], 4, NULL));

    /* Half-way: the net as bytes, and back.  The rule is not built in, so
     * the loaded net keeps it pending until a rule of its name comes. */
    CHECK(bpl_net_save_to_buffer(net, &saved, &size));
    CHECK(bpl_net_load_from_buffer(&copy, saved, size));
    CHECK(make_rule(&rule, &second));
    CHECK(bpl_net_set_rule(copy, rule)); /* load_state runs: the count is back */
    rule = NULL;
    printf("saved after %llu steps (%zu bytes); the new rule resumes at %llu\n",
           (unsigned long long)first.steps, size, (unsigned long long)second.steps);

    for (int step = 0; step < 150; step++) {
        CHECK(bpl_net_train_batch(net, &x[0][0], &y[0][0], 4, NULL));
        CHECK(bpl_net_train_batch(copy, &x[0][0], &y[0][0], 4, NULL));
    }
    CHECK(bpl_net_predict(net, &x[0][0], 4, out, 4));
    CHECK(bpl_net_predict(copy, &x[0][0], 4, out_copy, 4));
    for (int i = 0; i < 4; i++) {
        printf("%g xor %g -> %.3f\n", x[i][0], x[i][1], out[i]);
        correct += (out[i] > 0.5f) == (y[i][0] > 0.5f);
    }
    printf("%llu steps each; the loaded net %s\n", (unsigned long long)second.steps,
           memcmp(out, out_copy, sizeof out) == 0 ? "predicts the same, to the bit"
                                                  : "DIFFERS");
done:
    if (rc != BPL_OK)
        fprintf(stderr, "custom_rule: %s: %s\n", bpl_strerror(rc), bpl_last_error_message());
    bpl_buffer_free(saved);
    bpl_rule_destroy(rule);
    bpl_net_destroy(copy);
    bpl_net_destroy(net);
    return rc == BPL_OK && correct == 4 && first.steps == 300 && second.steps == 300 &&
                   memcmp(out, out_copy, sizeof out) == 0
               ? 0
               : 1;
}
