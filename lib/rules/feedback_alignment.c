/*
 * feedback_alignment.c - feedback alignment (Lillicrap, Cownden, Tweed &
 * Akerman 2016): errors are sent down through fixed random matrices B_l,
 * shaped like W_l^T, instead of the forward weights:
 *   delta_{l-1} = (delta_l B_l^T) (.) act'(a_{l-1}).
 * The forward weights come to align with B, and learning follows.
 */
#include "dense_rule.h"

#include "bpl_internal.h" /* declares the constructor */

static int fa_attach(void *self, bpl_net *net)
{
    (void)self;
    double scale;
    int rc = bpl_rule_get(bpl_net_rule(net), "feedback_scale", &scale);
    for (size_t l = 1; rc == BPL_OK && l < bpl_net_num_layers(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        rc = bpl_layer_add_tensor(layer, "feedback", bpl_layer_inputs(layer),
                                  bpl_layer_units(layer), BPL_GROUP_NONE,
                                  BPL_INIT_GLOROT_UNIFORM, scale, NULL);
    }
    return rc;
}

static int fa_targets(void *self, bpl_net *net, const float *y, size_t batch)
{
    (void)self;
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_num_layers(net) - 1; rc == BPL_OK && l > 0; l--) {
        float *feedback;
        rc = bpl_layer_tensor(bpl_net_layer(net, l), "feedback", &feedback, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, feedback, 0);
    }
    return rc;
}

int bpl__rule_fa_create(bpl_rule **out)
{
    bpl_rule_vtable vt;
    bpl_rule_vtable_init(&vt, BPL_RULE_VTABLE_VERSION);
    vt.name = "fa";
    vt.attach = fa_attach;
    vt.forward = bpl__dense_forward;
    vt.compute_targets = fa_targets;
    vt.update = bpl__dense_update;
    static const int ticks[7] = {BPL_TICK_NO, BPL_TICK_YES, BPL_TICK_NO, BPL_TICK_NO,
                                 BPL_TICK_NO, BPL_TICK_NOT_APPLICABLE, BPL_TICK_YES};
    static const char *const notes[7] = {NULL, NULL, "a random error network", NULL,
                                         "fixed random B", NULL, "delta"};
    bpl_rule *rule;
    int rc = bpl__dense_rule_create(
        &rule, &vt,
        "Feedback alignment (Lillicrap et al. 2016): errors sent down through fixed "
        "random matrices B_l in place of W_l^T.",
        ticks, notes);
    if (rc != BPL_OK)
        return rc;
    rc = bpl_rule_add_param(rule, "feedback_scale", BPL_PARAM_REAL, 1.0, 1e-6, 1e3, NULL,
                            "gain of the Glorot-uniform feedback matrices B_l");
    if (rc != BPL_OK) {
        bpl_rule_destroy(rule);
        return rc;
    }
    *out = rule;
    return BPL_OK;
}
