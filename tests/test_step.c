/*
 * test_step.c - the training step's machinery: the gradient block that holds
 * every trained gradient in one buffer, with each group's optimiser moments
 * laid out alike.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bpl_internal.h"

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
        for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
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
    return test_run_suite(suite);
}
