/*
 * fuzz_input.h - how fuzz_params and fuzz_api read their operands from the
 * input bytes (layouts in fuzz_format.h): bytes, doubles, length-prefixed
 * strings, hyperparameter names and values.  An exhausted input reads as
 * zeros, so every sequence ends cleanly.
 *
 * Included by exactly one translation unit per target.
 */
#ifndef BPL_FUZZ_INPUT_H
#define BPL_FUZZ_INPUT_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bioplaus.h"
#include "fuzz_format.h"

#define STR_MAX 96

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static inline unsigned take(input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline double take_double(input *in)
{
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)take(in) << (8 * i);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static inline void take_string(input *in, char buf[STR_MAX])
{
    size_t len = take(in) % STR_MAX;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)take(in);
    buf[len] = '\0';
}

static inline int param_index(const bpl_rule *rule, const char *name, size_t *index)
{
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
        const char *n;
        if (bpl_rule_param_info(rule, i, &n, NULL, NULL, NULL, NULL, NULL, NULL) == BPL_OK &&
            strcmp(n, name) == 0) {
            *index = i;
            return 1;
        }
    }
    return 0;
}

/* A NAME: a declared hyperparameter of `rule`, or a STRING. */
static inline void take_name(input *in, const bpl_rule *rule, char buf[STR_MAX])
{
    unsigned b = take(in);
    size_t count = bpl_rule_param_count(rule);
    const char *name;
    if (b < NAME_RAW && count > 0 &&
        bpl_rule_param_info(rule, b % count, &name, NULL, NULL, NULL, NULL, NULL, NULL) ==
            BPL_OK)
        snprintf(buf, STR_MAX, "%s", name);
    else
        take_string(in, buf);
}

/* Values at the edges of what parameters accept, and beyond. */
static const double fuzz_specials[] = {
    0.0,     -0.0,     1.0,     -1.0,    0.5,      2.0,       3.0,
    1e-12,   1e-300,   1e12,    1e300,   INFINITY, -INFINITY, NAN,
    DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, /* the smallest subnormal */
    9007199254740992.0, /* 2^53: integers beyond it are not all doubles */
    65536.0, 1e6,      1e7,     0.999999, 1e3};

/* A VALUE, for the hyperparameter `name` of `rule` (either may be unknown). */
static inline double take_value(input *in, const bpl_rule *rule, const char *name)
{
    switch (take(in) % VALUE_KINDS) {
    case VALUE_RAW:
        return take_double(in);
    case VALUE_SPECIAL:
        return fuzz_specials[take(in) % (sizeof fuzz_specials / sizeof fuzz_specials[0])];
    case VALUE_IN_BOUNDS: {
        double lo = 0.0, hi = 1.0, f = take(in) / 255.0;
        int kind = BPL_PARAM_REAL;
        size_t i;
        if (rule && param_index(rule, name, &i))
            bpl_rule_param_info(rule, i, NULL, &kind, NULL, &lo, &hi, NULL, NULL);
        double v = lo + f * (hi - lo);
        return kind == BPL_PARAM_REAL ? v : floor(v);
    }
    default:
        return (double)take(in);
    }
}

#endif
