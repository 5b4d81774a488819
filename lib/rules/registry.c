/*
 * registry.c - the built-in rules, by name.  A const table: no global
 * registration, nothing to initialise, safe from any thread.
 */
#include "bpl_internal.h"

const bpl__builtin_rule bpl__builtin_rules[] = {
    {"backprop", bpl__rule_backprop_create},
    {"fa", bpl__rule_fa_create},
    {"dfa", bpl__rule_dfa_create},
    {"tp", bpl__rule_tp_create},
    {"dtp", bpl__rule_dtp_create},
    {"sdtp", bpl__rule_sdtp_create},
    {"segregated", bpl__rule_segregated_create},
    {"microcircuit", bpl__rule_microcircuit_create},
};

const size_t bpl__n_builtin_rules = sizeof bpl__builtin_rules / sizeof bpl__builtin_rules[0];
