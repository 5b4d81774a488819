/*
 * dense_rule.c - what backprop, FA and DFA have in common.  Only the public
 * API is used: built-in rules are written exactly as a user rule would be.
 */
#include "dense_rule.h"

int bpl__dense_forward(void *self, bpl_net *net, const float *x, size_t batch)
{
    (void)self;
    return bpl_net_forward_dense(net, x, batch);
}

int bpl__dense_update(void *self, bpl_net *net)
{
    (void)self;
    for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
        int rc = bpl_net_weight_gradients(net, l);
        if (rc != BPL_OK)
            return rc;
    }
    return bpl_net_apply_gradients(net, 1u << BPL_GROUP_FORWARD);
}

int bpl__dense_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable,
                           const char *description, const int ticks[7],
                           const char *const notes[7])
{
    bpl_rule *rule;
    int rc = bpl_rule_create(&rule, vtable, NULL);
    if (rc != BPL_OK)
        return rc;
    rc = bpl_rule_set_description(rule, description);
    for (int p = 0; rc == BPL_OK && p < 7; p++)
        rc = bpl_rule_set_property(rule, p, ticks[p], notes ? notes[p] : NULL);
    if (rc != BPL_OK) {
        bpl_rule_destroy(rule);
        return rc;
    }
    *out = rule;
    return BPL_OK;
}
