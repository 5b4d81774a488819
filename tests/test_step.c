/*
 * test_step.c - the training step's machinery: the gradient block that holds
 * every trained gradient in one buffer, with each group's optimiser moments
 * laid out alike, and the step driver that runs a rule's hooks in one order
 * for training and diagnostics: forward, compute_targets, gradients, the
 * reduction point, the optimisers, after_apply.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"
#include "testhooks.h"

/* 5-6(tanh)-4(tanh)-3(softmax). */
static bpl_net *make_net(const char *rule)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SOFTMAX};
    bpl_net *net = test_make_net(5, units, acts, 3, 21);
    if (rule)
        test_attach(net, rule);
    return net;
}

static bpl__tensor *tensor(bpl_net *net, size_t l, const char *name)
{
    bpl__tensor *t = bpl__layer_find_tensor(bpl_net_layer(net, l), name);
    ck_assert_msg(t != NULL, "layer %zu has no tensor %s", l, name);
    return t;
}

static void fill(float *v, size_t n, float first)
{
    for (size_t i = 0; i < n; i++)
        v[i] = first + (float)i;
}

/* The block holds every trained tensor, forward group first, each group in
 * layer and tensor order, with nothing in between; each optimiser's moments
 * are laid out as its part of the block. */
static void assert_laid_out(bpl_net *net)
{
    float *block;
    size_t size;
    BPL_OK_OR_FAIL(bpl__net_gradient_block(net, &block, &size));
    size_t at = 0;
    for (int g = BPL_GROUP_FORWARD; g <= BPL_GROUP_FEEDBACK; g++) {
        const bpl__optimizer *o = &net->optim[g];
        ck_assert_uint_eq(o->offset, at);
        for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
            bpl_layer *layer = bpl_net_layer(net, l);
            for (size_t i = 0; i < layer->n_tensors; i++) {
                const bpl__tensor *t = &layer->tensors[i];
                if (t->group != g)
                    continue;
                ck_assert_msg(t->grad == block + at, "layer %zu '%s' is not at %zu", l,
                              t->name, at);
                ck_assert_ptr_eq(t->m, o->m + (at - o->offset));
                ck_assert_ptr_eq(t->v, o->v + (at - o->offset));
                at += t->rows * t->cols;
            }
        }
        ck_assert_uint_eq(o->size, at - o->offset);
    }
    ck_assert_uint_eq(size, at);
}

START_TEST(every_trained_gradient_in_one_block)
{
    static const char *const rules[] = {"backprop", "fa", "dtp", "sdtp", "segregated",
                                        "microcircuit"};
    bpl_net *net = make_net(rules[_i]);
    assert_laid_out(net);
    /* what the public accessor lends is the block */
    float *grad;
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(bpl_net_layer(net, 1), "weight", &grad, NULL, NULL));
    ck_assert_ptr_eq(grad, tensor(net, 1, "weight")->grad);
    /* frozen tensors stay in it: freezing is the optimiser's business */
    BPL_OK_OR_FAIL(bpl_layer_set_frozen(bpl_net_layer(net, 0), "bias", 1));
    assert_laid_out(net);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(a_net_without_trained_tensors_has_an_empty_block)
{
    bpl_net *net;
    BPL_OK_OR_FAIL(bpl_net_create(&net, 3, 1));
    float *block = (float *)&block;
    size_t size = 7;
    BPL_OK_OR_FAIL(bpl__net_gradient_block(net, &block, &size));
    ck_assert_uint_eq(size, 0);
    bpl_net_destroy(net);
}
END_TEST

/* Tensors added after the rule, or moved to another group, join the block
 * at the next layout with their moments; tensors leaving the group leave it. */
START_TEST(layout_follows_tensors_and_keeps_moments)
{
    bpl_net *net = make_net("dtp");
    bpl__tensor *w = tensor(net, 2, "weight"), *inv = tensor(net, 1, "inverse");
    size_t nw = w->rows * w->cols, ninv = inv->rows * inv->cols;
    float *mw = malloc(nw * sizeof *mw), *vinv = malloc(ninv * sizeof *vinv);
    fill(w->m, nw, 1.0f);
    fill(inv->v, ninv, 100.0f);
    memcpy(mw, w->m, nw * sizeof *mw);
    memcpy(vinv, inv->v, ninv * sizeof *vinv);

    BPL_OK_OR_FAIL(bpl_layer_add_tensor(bpl_net_layer(net, 0), "extra", 2, 3,
                                        BPL_GROUP_FEEDBACK, BPL_INIT_ZERO, 0.0, NULL));
    ck_assert(!net->layout_valid);
    assert_laid_out(net);
    /* the moments moved with their tensors */
    w = tensor(net, 2, "weight");
    inv = tensor(net, 1, "inverse");
    ck_assert_mem_eq(w->m, mw, nw * sizeof *mw);
    ck_assert_mem_eq(inv->v, vinv, ninv * sizeof *vinv);

    /* into the forward group: the inverse's moments follow it there */
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(bpl_net_layer(net, 1), "inverse", inv->rows,
                                        inv->cols, BPL_GROUP_FORWARD, BPL_INIT_ZERO, 0.0,
                                        NULL));
    assert_laid_out(net);
    inv = tensor(net, 1, "inverse");
    ck_assert_ptr_eq(inv->v, net->optim[BPL_GROUP_FORWARD].v +
                                 (inv->grad - net->grad_block));
    ck_assert_mem_eq(inv->v, vinv, ninv * sizeof *vinv);

    /* out of training: no gradient, and the block shrinks */
    size_t before = net->grad_size;
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(bpl_net_layer(net, 0), "extra", 2, 3, BPL_GROUP_NONE,
                                        BPL_INIT_ZERO, 0.0, NULL));
    ck_assert_ptr_null(tensor(net, 0, "extra")->grad);
    assert_laid_out(net);
    ck_assert_uint_eq(net->grad_size, before - 6);
    free(mw);
    free(vinv);
    bpl_net_destroy(net);
}
END_TEST

/* A layout that cannot allocate leaves every tensor where it was, and a
 * later one succeeds. */
START_TEST(failed_layout_changes_nothing)
{
    bpl_net *net = make_net("fa");
    bpl__tensor *w = tensor(net, 0, "weight");
    fill(w->m, w->rows * w->cols, 3.0f);
    BPL_OK_OR_FAIL(bpl_layer_add_tensor(bpl_net_layer(net, 1), "extra", 1, 4,
                                        BPL_GROUP_FORWARD, BPL_INIT_ZERO, 0.0, NULL));
    w = tensor(net, 0, "weight");
    float *grad = w->grad, *m = w->m;
    bpl__alloc_fail_at(1);
    BPL_EXPECT_ERROR(bpl__net_layout(net), BPL_ERR_NOMEM, "gradient block");
    bpl__alloc_fail_at(0);
    ck_assert_ptr_eq(w->grad, grad);
    ck_assert_ptr_eq(w->m, m);
    ck_assert(!net->layout_valid);
    assert_laid_out(net);
    ck_assert_float_eq(tensor(net, 0, "weight")->m[2], 5.0f);
    bpl_net_destroy(net);
}
END_TEST

/* Loading lays the block out with the saved moments in it, and training
 * continues as it would have. */
START_TEST(loaded_net_is_laid_out_with_its_moments)
{
    bpl_net *a = make_net("dtp");
    float x[4 * 5], y[4 * 3];
    uint64_t seed = 6;
    test_fill_uniform(x, 4 * 5, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, 4, 3, &seed);
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, 4, NULL));
    const char *path = test_temp_path("block.bpl");
    BPL_OK_OR_FAIL(bpl_net_save(a, path));
    bpl_net *b = NULL;
    BPL_OK_OR_FAIL(bpl_net_load(&b, path));
    assert_laid_out(b);
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        ck_assert_uint_eq(b->optim[g].size, a->optim[g].size);
        ck_assert_uint_eq(b->optim[g].steps, a->optim[g].steps);
        ck_assert_mem_eq(b->optim[g].m, a->optim[g].m, a->optim[g].size * sizeof(float));
        ck_assert_mem_eq(b->optim[g].v, a->optim[g].v, a->optim[g].size * sizeof(float));
    }
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, 4, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, 4, NULL));
    bpl__tensor *wa = tensor(a, 1, "weight"), *wb = tensor(b, 1, "weight");
    ck_assert_mem_eq(wa->data, wb->data, wa->rows * wa->cols * sizeof(float));
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

/* ---- the step driver ------------------------------------------------------------ */

/* A version-2 rule (backprop from the building blocks, plus a feedback
 * tensor it trains with a constant gradient) that writes down what runs:
 * F forward, T compute_targets, G gradients, R the reduction point, A
 * after_apply, U a version-1 update. */
struct probe {
    char trace[64];
    unsigned int groups_in, groups_out; /* what gradients saw and leaves */
    int draw;                           /* forward draws a random number */
    int nan_gradient;                   /* gradients leaves NaN in a weight's gradient */
    int apply_itself;                   /* gradients calls bpl_net_apply_gradients */
    int reduce_rc;                      /* what the reduction returns */
    float halve;                        /* the reduction scales the block by this */
    float w_at_reduce, w_at_after;      /* a weight as the reduction and after_apply saw it */
    int block_is_grads;                 /* the reduction's block holds the rule's gradients */
};

static void note(struct probe *p, char c)
{
    size_t n = strlen(p->trace);
    if (n + 1 < sizeof p->trace)
        p->trace[n] = c;
}

static int probe_attach(void *self, bpl_net *net)
{
    (void)self;
    return bpl_layer_add_tensor(bpl_net_layer(net, 0), "fb", 2, 2, BPL_GROUP_FEEDBACK,
                                BPL_INIT_CONSTANT, 1.0, NULL);
}

static int probe_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    struct probe *p = self;
    note(p, 'F');
    float r;
    if (p->draw)
        bpl_net_random_uniform(net, &r, 1, 0.0, 1.0);
    return bpl_net_forward_dense(net, x, batch);
}

static int probe_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    note(self, 'T');
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *w;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "weight", &w, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, w, 1);
    }
    return rc;
}

static float first_weight(bpl_net *net)
{
    float *w;
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, 0), "weight", &w, NULL, NULL));
    return w[0];
}

static int probe_gradients(void *self, bpl_net *net, unsigned int *groups)
{
    struct probe *p = self;
    note(p, 'G');
    p->groups_in = *groups;
    int rc = BPL_OK;
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++)
        rc = bpl_net_weight_gradients(net, l);
    float *g;
    if (rc == BPL_OK)
        rc = bpl_layer_tensor_grad(bpl_net_layer(net, 0), "fb", &g, NULL, NULL);
    for (int i = 0; rc == BPL_OK && i < 4; i++)
        g[i] = 0.5f;
    if (rc == BPL_OK && p->nan_gradient) {
        rc = bpl_layer_tensor_grad(bpl_net_layer(net, 1), "weight", &g, NULL, NULL);
        g[0] = NAN;
    }
    if (rc == BPL_OK && p->apply_itself)
        rc = bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
    *groups = p->groups_out;
    return rc;
}

static int probe_after_apply(void *self, bpl_net *net)
{
    struct probe *p = self;
    note(p, 'A');
    p->w_at_after = first_weight(net);
    return BPL_OK;
}

/* The reduction point, as a reduction across processes would see it. */
static int probe_reduce(bpl_net *net, float *block, size_t size, unsigned int groups,
                        void *data)
{
    struct probe *p = data;
    note(p, 'R');
    p->w_at_reduce = first_weight(net);
    ck_assert_uint_eq(groups, p->groups_out);
    p->block_is_grads = size == net->grad_size && block == net->grad_block;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        for (size_t t = 0; t < layer->n_tensors; t++) {
            const bpl__tensor *tensor = &layer->tensors[t];
            if (tensor->grad)
                p->block_is_grads &= tensor->grad >= block && tensor->grad < block + size;
        }
    }
    for (size_t i = 0; p->halve != 0.0f && i < size; i++)
        block[i] *= p->halve;
    return p->reduce_rc;
}

static bpl_net *probe_net(struct probe *p)
{
    memset(p, 0, sizeof *p);
    p->groups_out = (1u << BPL_GROUP_FORWARD) | (1u << BPL_GROUP_FEEDBACK);
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION));
    vt.name = "probe";
    vt.attach = probe_attach;
    vt.forward = probe_forward;
    vt.compute_targets = probe_targets;
    vt.gradients = probe_gradients;
    vt.after_apply = probe_after_apply;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, p));
    BPL_OK_OR_FAIL(bpl_rule_add_optimizer(rule, BPL_GROUP_FEEDBACK, "fb_", BPL_OPT_SGD, 0.1));
    BPL_OK_OR_FAIL(bpl_rule_set_string(rule, "optimizer", "sgd"));
    BPL_OK_OR_FAIL(bpl_rule_set(rule, "lr", 0.1));
    bpl_net *net = make_net(NULL);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    bpl__net_set_reducer(net, probe_reduce, p);
    return net;
}

static void batch_of(float *x, float *y)
{
    uint64_t seed = 14;
    test_fill_uniform(x, 4 * 5, -1.0f, 1.0f, &seed);
    test_fill_onehot(y, 4, 3, &seed);
}

START_TEST(training_step_order)
{
    struct probe p;
    bpl_net *net = probe_net(&p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    float before = first_weight(net);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert_str_eq(p.trace, "FTGRA");
    /* gradients is offered every group the rule has an optimiser for */
    ck_assert_uint_eq(p.groups_in, (1u << BPL_GROUP_FORWARD) | (1u << BPL_GROUP_FEEDBACK));
    /* the reduction comes before the optimisers, after_apply after them */
    ck_assert(p.w_at_reduce == before);
    ck_assert(p.w_at_after != before);
    ck_assert(p.w_at_after == first_weight(net));
    ck_assert_msg(p.block_is_grads, "the reduction's block is not the gradient block");
    ck_assert_float_eq(test_tensor(net, 0, "fb")[0], 1.0f - 0.1f * 0.5f);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FORWARD].steps, 1);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FEEDBACK].steps, 1);
    /* fit's steps are the same driver's */
    memset(p.trace, 0, sizeof p.trace);
    bpl_dataset *ds;
    BPL_OK_OR_FAIL(bpl_dataset_from_f32(&ds, x, y, 4, 5, 3));
    BPL_OK_OR_FAIL(bpl_net_fit(net, ds, 1, 2, NULL, NULL));
    ck_assert_str_eq(p.trace, "FTGRAFTGRA");
    bpl_dataset_destroy(ds);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(diagnostic_never_applies)
{
    struct probe p;
    bpl_net *net = probe_net(&p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    p.draw = 1;
    bpl__rng generator = net->rng;
    float before = first_weight(net);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 3));
    ck_assert_str_eq(p.trace, "FTG"); /* no reduction, no optimiser, no after_apply */
    ck_assert(first_weight(net) == before);
    ck_assert_float_eq(test_tensor(net, 0, "fb")[0], 1.0f);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FORWARD].steps, 0);
    /* the rule's own draw is given back: a step after it draws the same */
    ck_assert_mem_eq(&net->rng, &generator, sizeof generator);
    for (int l = 0; l < 3; l++)
        ck_assert_msg(angles[l] < 1e-3, "backprop's own angle, layer %d: %g", l, angles[l]);
    bpl_net_destroy(net);
}
END_TEST

START_TEST(gradients_choose_the_groups)
{
    struct probe p;
    bpl_net *net = probe_net(&p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    float before = first_weight(net);
    p.groups_out = 1u << BPL_GROUP_FEEDBACK; /* the forward weights rest */
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert(first_weight(net) == before);
    ck_assert_float_eq(test_tensor(net, 0, "fb")[0], 1.0f - 0.1f * 0.5f);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FORWARD].steps, 0);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FEEDBACK].steps, 1);
    p.groups_out = 0; /* nothing: the step still runs to after_apply */
    memset(p.trace, 0, sizeof p.trace);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert_str_eq(p.trace, "FTGRA");
    ck_assert_uint_eq(net->optim[BPL_GROUP_FEEDBACK].steps, 1);
    p.groups_out = 1u << 5;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_INVALID_ARG,
                     "rule 'probe' gradients: unknown group");
    bpl_net_destroy(net);
}
END_TEST

/* A reduction that averages two processes' blocks: the step is taken on
 * what the reduction leaves. */
START_TEST(the_step_applies_the_reduced_block)
{
    struct probe p, q;
    bpl_net *a = probe_net(&p), *b = probe_net(&q);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    q.halve = 0.5f;
    BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, 4, NULL));
    BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, 4, NULL));
    ck_assert_float_eq_tol(test_tensor(b, 0, "fb")[0], 1.0f - 0.1f * 0.25f, 1e-7f);
    float w0 = q.w_at_reduce;
    ck_assert_float_eq_tol(first_weight(b) - w0, 0.5f * (first_weight(a) - w0), 1e-6f);
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

/* A failure at the reduction or in the optimiser: nothing is applied and
 * after_apply is not called. */
START_TEST(failed_step_skips_after_apply)
{
    struct probe p;
    bpl_net *net = probe_net(&p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    float before = first_weight(net);
    p.reduce_rc = BPL_ERR_IO;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_IO, NULL);
    ck_assert_str_eq(p.trace, "FTGR");
    p.reduce_rc = BPL_OK;
    p.nan_gradient = 1;
    memset(p.trace, 0, sizeof p.trace);
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_NUMERIC,
                     "gradient of 'weight' in layer 1");
    ck_assert_str_eq(p.trace, "FTGR");
    ck_assert(first_weight(net) == before);
    ck_assert_float_eq(test_tensor(net, 0, "fb")[0], 1.0f);
    ck_assert_uint_eq(net->optim[BPL_GROUP_FORWARD].steps, 0);
    bpl_net_destroy(net);
}
END_TEST

/* A rule with a gradients hook leaves the step to the library. */
START_TEST(gradients_hook_cannot_apply)
{
    struct probe p;
    bpl_net *net = probe_net(&p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    float before = first_weight(net);
    p.apply_itself = 1;
    BPL_EXPECT_ERROR(bpl_net_train_batch(net, x, y, 4, NULL), BPL_ERR_STATE,
                     "only a version-1 update hook calls this");
    ck_assert(first_weight(net) == before);
    bpl_net_destroy(net);
}
END_TEST

/* A version-1 rule steps through bpl_net_apply_gradients, which passes the
 * same reduction point. */
static int v1_update(void *self, bpl_net *net)
{
    note(self, 'U');
    int rc = BPL_OK;
    for (size_t l = 0; rc == BPL_OK && l < bpl_net_layer_count(net); l++)
        rc = bpl_net_weight_gradients(net, l);
    return rc == BPL_OK ? bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD) : rc;
}

START_TEST(version_1_update_passes_the_reduction)
{
    struct probe p;
    memset(&p, 0, sizeof p);
    p.groups_out = 1u << BPL_GROUP_FORWARD;
    bpl_rule_vtable vt;
    BPL_OK_OR_FAIL(bpl_rule_vtable_init(&vt, 1));
    vt.name = "old";
    vt.forward = probe_forward;
    vt.compute_targets = probe_targets;
    vt.update = v1_update;
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create(&rule, &vt, &p));
    bpl_net *net = make_net(NULL);
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    bpl__net_set_reducer(net, probe_reduce, &p);
    float x[4 * 5], y[4 * 3];
    batch_of(x, y);
    float before = first_weight(net);
    BPL_OK_OR_FAIL(bpl_net_train_batch(net, x, y, 4, NULL));
    ck_assert_str_eq(p.trace, "FTUR");
    ck_assert(p.w_at_reduce == before && first_weight(net) != before);
    /* a diagnostic runs its update, whose apply does nothing */
    memset(p.trace, 0, sizeof p.trace);
    before = first_weight(net);
    double angles[3];
    BPL_OK_OR_FAIL(bpl_net_alignment(net, x, y, 4, angles, 3));
    ck_assert_str_eq(p.trace, "FTU");
    ck_assert(first_weight(net) == before);
    bpl_net_destroy(net);
}
END_TEST

/* ---- no rule has a case for diagnostics ------------------------------------------ */

static const struct {
    const char *rule, *params;
    int carries_state;     /* its forward dynamics run on from call to call */
    const char *derived;   /* a tensor every pass derives from the weights */
} modes[] = {
    {"backprop", "", 0, NULL},
    {"fa", "", 0, NULL},
    {"dfa", "", 0, NULL},
    {"tp", "pretrain_steps=2", 0, NULL},
    {"dtp", "schedule=alternating;alternate_steps=1", 0, NULL},
    {"sdtp", "auxiliary_outputs=3", 0, NULL},
    {"segregated", "learn_feedback=1", 0, NULL},
    /* symmetric Y is the weights' function, derived afresh by every pass
     * that reads it (the diagnostic's too), never read from the tensor */
    {"segregated", "feedback=symmetric", 0, "feedback"},
    {"segregated", "mode=spiking;phase_steps=3;integration_steps=2", 1, NULL},
    {"microcircuit", "learn_topdown=1;pretrain_steps=1", 0, NULL},
    {"microcircuit", "mode=continuous;steps=3;noise=0.1", 0, NULL},
};
enum { N_MODES = sizeof modes / sizeof modes[0] };

static bpl_net *mode_net(int m)
{
    static const size_t units[] = {6, 4, 3};
    static const int acts[] = {BPL_ACT_TANH, BPL_ACT_TANH, BPL_ACT_SIGMOID};
    bpl_net *net = test_make_net(5, units, acts, 3, 33);
    bpl_rule *rule;
    BPL_OK_OR_FAIL(bpl_rule_create_builtin(&rule, modes[m].rule));
    char buf[128];
    snprintf(buf, sizeof buf, "%s", modes[m].params);
    for (char *item = strtok(buf, ";"); item; item = strtok(NULL, ";")) {
        char *eq = strchr(item, '=');
        *eq = '\0';
        BPL_OK_OR_FAIL(bpl_rule_set_string(rule, item, eq + 1));
    }
    BPL_OK_OR_FAIL(bpl_net_set_rule(net, rule));
    return net;
}

/* Every tensor value, moment and step count, the generator, the rule's
 * own state (its step count). */
typedef struct net_state {
    float *values;
    size_t n;
    uint64_t steps[BPL__N_GROUPS];
    bpl__rng rng;
    unsigned char *rule_state;
    size_t rule_state_size;
} net_state;

static net_state state_of(bpl_net *net, const char *derived)
{
    net_state st = {.rng = net->rng};
    for (int pass = 0; pass < 2; pass++) {
        size_t at = 0;
        for (size_t l = 0; l < net->n_layers; l++) {
            bpl_layer *layer = net->layers[l];
            for (size_t i = 0; i < layer->n_tensors; i++) {
                const bpl__tensor *t = &layer->tensors[i];
                if (derived && strcmp(t->name, derived) == 0)
                    continue;
                size_t n = t->rows * t->cols;
                const float *parts[] = {t->data, t->m, t->v};
                for (int p = 0; p < 3; p++) {
                    if (pass && parts[p])
                        memcpy(st.values + at, parts[p], n * sizeof *st.values);
                    at += parts[p] ? n : 0;
                }
            }
        }
        st.n = at;
        if (!pass)
            st.values = malloc((at ? at : 1) * sizeof *st.values);
    }
    for (int g = 0; g < BPL__N_GROUPS; g++)
        st.steps[g] = net->optim[g].steps;
    ck_assert_int_eq(bpl__rule_save_state(net->rule, &st.rule_state, &st.rule_state_size),
                     BPL_OK);
    return st;
}

static void assert_same_state(const net_state *a, const net_state *b, const char *what)
{
    ck_assert_msg(a->n == b->n && memcmp(a->values, b->values, a->n * sizeof *a->values) == 0,
                  "%s: parameters or moments differ", what);
    ck_assert_msg(memcmp(a->steps, b->steps, sizeof a->steps) == 0, "%s: step counts", what);
    ck_assert_msg(memcmp(&a->rng, &b->rng, sizeof a->rng) == 0, "%s: generator", what);
    ck_assert_msg(a->rule_state_size == b->rule_state_size &&
                      (a->rule_state_size == 0 ||
                       memcmp(a->rule_state, b->rule_state, a->rule_state_size) == 0),
                  "%s: the rule's state", what);
}

/* A diagnostic pass in the middle of training changes no parameter, moment,
 * step count or generator state, whatever the rule and mode: training
 * goes on as if it had not happened (except for a rule whose neurons run
 * on from one call to the next, which sees its batch like a prediction). */
START_TEST(alignment_changes_nothing)
{
    bpl_net *a = mode_net(_i), *b = mode_net(_i);
    enum { B = 4 };
    float x[B * 5], y[B * 3];
    uint64_t seed = 40;
    test_fill_uniform(x, B * 5, 0.0f, 1.0f, &seed);
    test_fill_onehot(y, B, 3, &seed);
    for (int step = 0; step < 4; step++) {
        BPL_OK_OR_FAIL(bpl_net_train_batch(a, x, y, B, NULL));
        BPL_OK_OR_FAIL(bpl_net_train_batch(b, x, y, B, NULL));
        net_state before = state_of(a, modes[_i].derived);
        double angles[3];
        BPL_OK_OR_FAIL(bpl_net_alignment(a, x, y, B, angles, 3));
        net_state after = state_of(a, modes[_i].derived);
        char what[96];
        snprintf(what, sizeof what, "%s (%s), step %d", modes[_i].rule, modes[_i].params, step);
        assert_same_state(&before, &after, what);
        if (!modes[_i].carries_state) {
            net_state twin = state_of(b, modes[_i].derived);
            assert_same_state(&after, &twin, what);
            free(twin.values);
            bpl__free(twin.rule_state);
        }
        free(before.values);
        bpl__free(before.rule_state);
        free(after.values);
        bpl__free(after.rule_state);
    }
    bpl_net_destroy(a);
    bpl_net_destroy(b);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("step");
    TCase *block = tcase_create("gradient block");
    tcase_add_loop_test(block, every_trained_gradient_in_one_block, 0, 6);
    tcase_add_test(block, a_net_without_trained_tensors_has_an_empty_block);
    tcase_add_test(block, layout_follows_tensors_and_keeps_moments);
    tcase_add_test(block, failed_layout_changes_nothing);
    tcase_add_test(block, loaded_net_is_laid_out_with_its_moments);
    suite_add_tcase(suite, block);
    TCase *driver = tcase_create("driver");
    tcase_add_test(driver, training_step_order);
    tcase_add_test(driver, diagnostic_never_applies);
    tcase_add_test(driver, gradients_choose_the_groups);
    tcase_add_test(driver, the_step_applies_the_reduced_block);
    tcase_add_test(driver, failed_step_skips_after_apply);
    tcase_add_test(driver, gradients_hook_cannot_apply);
    tcase_add_test(driver, version_1_update_passes_the_reduction);
    suite_add_tcase(suite, driver);
    TCase *diagnostics = tcase_create("diagnostics");
    tcase_add_loop_test(diagnostics, alignment_changes_nothing, 0, N_MODES);
    suite_add_tcase(suite, diagnostics);
    return test_run_suite(suite);
}
