/*
 * dense_rule.h - hooks shared by the rules that run the standard dense
 * forward pass and train every layer on its weight gradient (backprop,
 * feedback alignment, direct feedback alignment): they differ only in how
 * the output error reaches the hidden layers.
 */
#ifndef BPL_DENSE_RULE_H
#define BPL_DENSE_RULE_H

#include "bioplaus.h"

int bpl__dense_forward(void *self, bpl_net *net, const float *x, size_t batch);
int bpl__dense_update(void *self, bpl_net *net);
/* Create a rule over `vtable` and set its description and property table
 * (ticks in enum bpl_property order, notes may be NULL). */
int bpl__dense_rule_create(bpl_rule **out, const bpl_rule_vtable *vtable,
                           const char *description, const int ticks[7],
                           const char *const notes[7]);

#endif
