/*
 * dense_rule.c - what the built-in rules have in common (see dense_rule.h).
 * Built-in rules use the extension API as a user rule would: the net-level
 * passes (bpl_net_forward_dense, bpl_net_project_delta, ...) and, for
 * their own dynamics, the blocks on one layer (bpl_layer_forward,
 * bpl_layer_send_error, bpl_layer_gradients), all of which go through the
 * layers' kinds, so that a rule runs on any kind that provides what it
 * declares it needs (bpl_rule_set_needs, from each rule's card).
 */
#include "dense_rule.h"

#include <math.h>

#include "bpl_internal.h" /* bpl__fail */


int bpl__dense_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

int bpl__dense_gradients(void *self, bpl_net *net, unsigned int *groups)
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

/* The net-level pass rather than bpl_layer_send_error and
 * bpl_activation_backward per layer, which compute the same bits: on small
 * nets their buffer look-ups cost backprop several percent of a step.  A
 * layer without parameters (pooling) has no tensor to send through: its
 * error goes through its own Jacobian (m NULL), whatever the rule. */
int bpl__dense_send_down(bpl_net *net, const float *y, size_t batch, const char *matrix,
                         int is_forward_weight)
{
    int rc = bpl_net_output_delta(net, y, batch);
    for (size_t l = bpl_net_layer_count(net) - 1; rc == BPL_OK && l > 0; l--) {
        bpl_layer *layer = bpl_net_layer(net, l);
        /* Only a dense layer's feedback may have W^T's layout. */
        int as_weight = is_forward_weight || bpl__layer_kind(layer) != &bpl__dense_kind;
        float *m = NULL;
        if (bpl_layer_param_count(layer)) /* else its own Jacobian sends it */
            rc = bpl_layer_tensor(layer, matrix ? matrix : "weight", &m, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_net_project_delta(net, l, l - 1, m, as_weight);
    }
    return rc;
}

int bpl__rule_add_params(bpl_rule *rule, const bpl__param_spec *specs, size_t n)
{
    int rc = BPL_OK;
    for (size_t i = 0; rc == BPL_OK && i < n; i++)
        rc = bpl_rule_add_param(rule, specs[i].name, specs[i].kind, specs[i].def, specs[i].lo,
                                specs[i].hi, specs[i].choices, specs[i].doc);
    return rc;
}

int bpl__rule_fix_params(bpl_rule *rule, const char *const *names, size_t n)
{
    int rc = BPL_OK;
    for (size_t i = 0; rc == BPL_OK && i < n; i++)
        rc = bpl_rule_fix_param(rule, names[i]);
    return rc;
}

int bpl__rule_build(bpl_rule **out, const bpl_rule_vtable *vtable, void *self,
                    const bpl__rule_card *card, double default_lr, bpl__declare_fn declare,
                    const void *context)
{
    bpl_rule *rule;
    int rc = bpl_rule_create(&rule, vtable, self);
    if (rc != BPL_OK) {
        if (vtable->destroy) /* bpl_rule_create leaves self to its caller */
            vtable->destroy(self);
        return rc;
    }
    rc = bpl_rule_set_needs(rule, card->needs & (unsigned)BPL_NEEDS_ALL);
    rule->builtin_needs = card->needs & ~(unsigned)BPL_NEEDS_ALL;
    if (rc == BPL_OK)
        rc = bpl_rule_set_description(rule, card->description);
    for (int p = 0; rc == BPL_OK && p < 7; p++)
        rc = bpl_rule_set_property(rule, p, card->ticks[p], card->notes[p]);
    if (rc == BPL_OK)
        rc = bpl_rule_add_optimizer(rule, BPL_GROUP_FORWARD, "", BPL_OPT_ADAM, default_lr);
    if (rc == BPL_OK && declare)
        rc = declare(rule, context);
    /* After the hyperparameters, which the recommendation's values are checked against. */
    for (const char *const *r = card->recommended; rc == BPL_OK && r && r[0]; r += 2)
        rc = bpl_rule_set_recommendation(rule, r[0], r[1]);
    if (rc != BPL_OK) {
        bpl_rule_destroy(rule); /* and self with it */
        return rc;
    }
    *out = rule;
    return BPL_OK;
}

int bpl__declare_feedback_scale(bpl_rule *rule, const void *context)
{
    (void)context;
    return bpl_rule_add_param(rule, "feedback_scale", BPL_PARAM_REAL, 1.0, 1e-6, 1e3, NULL,
                              "gain of the Glorot-uniform feedback matrices B_l");
}

int bpl__feedback_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable,
                              const bpl__rule_card *card, double default_lr)
{
    return bpl__rule_build(out, vtable, NULL, card, default_lr, bpl__declare_feedback_scale,
                           NULL);
}

int bpl__add_feedback(bpl_net *net, bpl_layer *layer, size_t rows, size_t cols)
{
    double scale;
    int rc = bpl_rule_get(bpl_net_rule(net), "feedback_scale", &scale);
    if (rc == BPL_OK)
        rc = bpl_layer_add_tensor(layer, "feedback", rows, cols, BPL_GROUP_NONE,
                                  BPL_INIT_GLOROT_UNIFORM, scale, NULL);
    return rc;
}

size_t bpl__rule_top(const bpl_net *net)
{
    return bpl_net_layer_count(net) - 1;
}

size_t bpl__rule_units(bpl_net *net, size_t l)
{
    return bpl_layer_units(bpl_net_layer(net, l));
}

int bpl__rule_buffer(bpl_net *net, size_t l, const char *name, float **out)
{
    return bpl_layer_buffer(bpl_net_layer(net, l), name, out, NULL, NULL);
}

float bpl__rule_getf(const bpl_rule *rule, const char *name)
{
    double v = 0.0;
    bpl_rule_get(rule, name, &v);
    return (float)v;
}
