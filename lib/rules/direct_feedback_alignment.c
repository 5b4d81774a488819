/*
 * direct_feedback_alignment.c - direct feedback alignment (Nokland 2016):
 * the output error goes straight to every hidden layer through a fixed
 * random matrix B_l of shape [units_l][outputs]:
 *   delta_l = (e B_l^T) (.) act'(a_l),  e = dLoss/da_L.
 * A hidden layer without parameters (pooling) gets no B_l and no error:
 * it has nothing to learn, and the layer below it gets its own.
 */
#include "dense_rule.h"

#include "bpl_internal.h" /* declares the constructor */

static int dfa_attach(void *self, bpl_net *net)
{
    (void)self;
    int rc = BPL_OK;
    size_t outputs = bpl_net_outputs(net);
    for (size_t l = 0; rc == BPL_OK && l + 1 < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        if (bpl_layer_param_count(layer)) /* a pooling layer learns nothing from it */
            rc = bpl__add_feedback(net, layer, bpl_layer_units(layer), outputs);
    }
    return rc;
}

static int dfa_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    size_t top = bpl_net_layer_count(net) - 1;
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = 0; rc == BPL_OK && l < top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *feedback;
        if (!bpl_layer_param_count(layer))
            continue; /* the layer below a pooling layer has its own projection */
        rc = bpl_layer_tensor(layer, "feedback", &feedback, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, top, l, feedback, 0);
    }
    return rc;
}

const bpl_rule_vtable bpl__dfa_vtable = {
    .version = BPL_RULE_VTABLE_VERSION,
    .name = "dfa",
    .attach = dfa_attach,
    .forward = bpl__dense_forward,
    .compute_targets = dfa_targets,
    .gradients = bpl__dense_gradients,
};

int bpl__rule_dfa_create(bpl_rule **out)
{
    /* Recommended: the documented run, 97.6% after 20 epochs (docs/results.md). */
    static const char *const recommended[] = {
        "hidden", "256,256", "activation", "tanh", "init", "glorot_uniform",
        "optimizer", "adam", "lr", "0.0005", "lr_decay", "1", "batch_size", "128",
        "epochs", "20", NULL};
    static const bpl__rule_card card = {
        "Direct feedback alignment (Nokland 2016): the output error sent straight to "
        "every hidden layer through fixed random matrices.",
        {BPL_TICK_NO, BPL_TICK_YES, BPL_TICK_NO, BPL_TICK_NO, BPL_TICK_NO,
         BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES},
        {NULL, NULL, "a random broadcast network", NULL, "fixed random B", NULL,
         "output error"}, recommended, BPL_NEEDS_FORWARD | BPL_NEEDS_GRADIENTS};
    /* Adam at 1e-3 oscillates late in training on MNIST (97.4% test after 20
     * epochs of 784-256-256-10 tanh); 5e-4 settles (97.5-97.6% over seeds). */
    return bpl__feedback_rule_create(out, &bpl__dfa_vtable, &card, 5e-4);
}
