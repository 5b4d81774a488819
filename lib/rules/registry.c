/*
 * registry.c - the built-in rules.  A const table: no global registration,
 * nothing to initialise, safe from any thread.  A rule's name is its
 * vtable's: written once, where its hooks are.
 */
#include "bpl_internal.h"

const bpl__builtin_rule bpl__builtin_rules[] = {
    {&bpl__backprop_vtable, bpl__rule_backprop_create},
    {&bpl__fa_vtable, bpl__rule_fa_create},
    {&bpl__dfa_vtable, bpl__rule_dfa_create},
    {&bpl__tp_vtable, bpl__rule_tp_create},
    {&bpl__dtp_vtable, bpl__rule_dtp_create},
    {&bpl__sdtp_vtable, bpl__rule_sdtp_create},
    {&bpl__segregated_vtable, bpl__rule_segregated_create},
    {&bpl__microcircuit_vtable, bpl__rule_microcircuit_create},
    {&bpl__usf_vtable, bpl__rule_usf_create},
    {&bpl__brsf_vtable, bpl__rule_brsf_create},
    {&bpl__frsf_vtable, bpl__rule_frsf_create},
};

const size_t bpl__n_builtin_rules = sizeof bpl__builtin_rules / sizeof bpl__builtin_rules[0];
