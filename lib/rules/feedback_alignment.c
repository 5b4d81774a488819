/*
 * feedback_alignment.c - feedback alignment (Lillicrap, Cownden, Tweed &
 * Akerman 2016): errors are sent down through fixed random matrices B_l
 * instead of the forward weights (on a dense layer, B_l shaped like W_l^T):
 *   delta_{l-1} = (delta_l B_l^T) (.) act'(a_{l-1}).
 * The forward weights come to align with B, and learning follows.
 */
#include "dense_rule.h"

#include "bpl_internal.h" /* declares the constructor */

static int fa_attach(void *self, bpl_net *net)
{
    (void)self;
    int rc = BPL_OK;
    for (size_t l = 1; rc == BPL_OK && l < bpl_net_layer_count(net); l++) {
        /* B has the layout of W^T on a dense layer, [inputs][units], as fa
         * has always drawn it (saved models and reference runs hold it so);
         * on the other kinds the layout of W itself, [C_out][C_in kh kw] for
         * a convolution, so that the error goes down through B by exactly
         * the products backprop runs with W.  Layers without a weight
         * (pooling) send through no matrix. */
        bpl_layer *layer = bpl_net_layer(net, l);
        const bpl__kind *kind = bpl__layer_kind(layer);
        const bpl__tensor *w = kind->weight ? bpl__layer_weight(layer) : NULL;
        if (!w)
            continue;
        if (kind == &bpl__dense_kind)
            rc = bpl__add_feedback(net, layer, w->cols, w->rows);
        else
            rc = bpl__add_feedback(net, layer, w->rows, w->cols);
    }
    return rc;
}

static int fa_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    return bpl__dense_send_down(net, y, batch, "feedback", 0);
}

const bpl_rule_vtable bpl__fa_vtable = {
    .version = BPL_RULE_VTABLE_VERSION,
    .name = "fa",
    .attach = fa_attach,
    .forward = bpl__dense_forward,
    .compute_targets = fa_targets,
    .gradients = bpl__dense_gradients,
};

int bpl__rule_fa_create(bpl_rule **out)
{
    /* Recommended: the documented run, 97.8% after 20 epochs (docs/results.md). */
    static const char *const recommended[] = {
        "hidden", "256,256", "activation", "tanh", "init", "glorot_uniform",
        "optimizer", "adam", "lr", "0.001", "lr_decay", "1", "batch_size", "128",
        "epochs", "20", NULL};
    static const bpl__rule_card card = {
        "Feedback alignment (Lillicrap et al. 2016): errors sent down through fixed "
        "random matrices B_l in place of W_l^T.",
        {BPL_TICK_NO, BPL_TICK_YES, BPL_TICK_NO, BPL_TICK_NO, BPL_TICK_NO,
         BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES},
        {NULL, NULL, "a random error network", NULL, "fixed random B", NULL, "delta"},
        recommended, BPL__NEEDS_BACKWARD};
    return bpl__feedback_rule_create(out, &bpl__fa_vtable, &card, 1e-3);
}
