/*
 * optim.c - optimisers (SGD, momentum, RMSprop, Adam): each parameter
 * group's optimiser steps the group's trained tensors.
 *
 * Weight decay is L2 regularisation: weight_decay * w is added to the
 * gradient before the optimiser sees it.
 *
 * A step is all or nothing: every gradient, and every new weight and moment
 * it would produce, is checked for NaN and Inf before anything is written.
 * A diverging step therefore leaves the net as it was, and the caller can
 * lower the learning rate and go on.  Each kernel runs twice for that, once
 * checking and once writing; the loops are cheap next to the GEMMs, and the
 * check of RMSprop and Adam avoids their square roots and divisions when a
 * bound shows that no weight can overflow (see step_bound_is_safe).
 *
 * The check assumes nothing about the state it starts from: a negative
 * second moment (which no step produces, but memory or a file could hold)
 * is refused too, since its square root would be NaN.
 */
#include "bpl_internal.h"

#include <math.h>
#include <string.h>

/* 1 if x is NaN or Inf: its exponent bits are all ones.  Integer tests keep
 * the checking loops vectorisable. */
static inline uint32_t not_finite(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & 0x7f800000u) == 0x7f800000u;
}

/* |x| as ordered bits: for finite floats, the integer order of these bits
 * is the order of the magnitudes, and an integer max reduction vectorises
 * where a float one would need -ffast-math. */
static inline uint32_t magnitude_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits & 0x7fffffffu;
}

/* 1 if x is below zero (-0 is not): the sign bit and a nonzero magnitude. */
static inline uint32_t negative(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits > 0x80000000u;
}

static inline float from_bits(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* RMSprop and Adam compute w - lr (c x) / (sqrt(v') + eps), where x is the
 * gradient or the first moment and c its bias correction (1 for RMSprop).
 * The denominator is at least eps (v' >= 0, checked with the moments; if it
 * overflows the quotient is 0), so with finite moments every step is at
 * most lr c max|x| / eps in magnitude.  When that plus the largest |w|
 * stays far below FLT_MAX, every new weight is finite and the exact check
 * can be skipped.  NaN in the bound compares false and falls back to the
 * exact check. */
static int step_bound_is_safe(float lr, float c, uint32_t x_max, uint32_t w_max, float eps)
{
    float scaled = c * from_bits(x_max);
    if (!(scaled < 1e37f))
        return 0;
    return lr * scaled / eps + from_bits(w_max) < 1e37f;
}

/* Each kernel either writes the new values (commit) or returns what is
 * wrong with them: BAD_VALUE if any would be non-finite, BAD_STATE if a
 * second moment is negative. */
enum { BAD_VALUE = 1, BAD_STATE = 2 };

BPL__MULTIVERSION
static uint32_t sgd(const bpl__optim_config *c, float *w, const float *g, size_t n,
                    int commit)
{
    float lr = (float)c->lr, wd = (float)c->weight_decay;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] - lr * (g[i] + wd * w[i]);
        if (commit)
            w[i] = wi;
        else
            bad |= not_finite(wi);
    }
    return bad;
}

/* Heavy ball, as in PyTorch: v = mu v + g; w -= lr v. */
BPL__MULTIVERSION
static uint32_t momentum(const bpl__optim_config *c, float *w, const float *g, float *m,
                         size_t n, int commit)
{
    float lr = (float)c->lr, mu = (float)c->momentum, wd = (float)c->weight_decay;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float mi = mu * m[i] + (g[i] + wd * w[i]);
        float wi = w[i] - lr * mi;
        if (commit) {
            m[i] = mi;
            w[i] = wi;
        } else {
            bad |= not_finite(mi) | not_finite(wi);
        }
    }
    return bad;
}

/* v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps). */
BPL__MULTIVERSION
static uint32_t rmsprop(const bpl__optim_config *c, float *w, const float *g, float *v,
                        size_t n, int commit)
{
    float lr = (float)c->lr, rho = (float)c->rho, eps = (float)c->eps;
    float wd = (float)c->weight_decay;
    uint32_t bad = 0;
    if (!commit) {
        uint32_t g_max = 0, w_max = 0, neg = 0;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float vi = rho * v[i] + (1.0f - rho) * gi * gi;
            bad |= not_finite(gi) | not_finite(vi);
            neg |= negative(v[i]);
            uint32_t gb = magnitude_bits(gi), wb = magnitude_bits(w[i]);
            g_max = gb > g_max ? gb : g_max;
            w_max = wb > w_max ? wb : w_max;
        }
        if (neg)
            return BAD_STATE;
        if (bad || step_bound_is_safe(lr, 1.0f, g_max, w_max, eps))
            return bad;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float vi = rho * v[i] + (1.0f - rho) * gi * gi;
        float wi = w[i] - lr * gi / (sqrtf(vi) + eps);
        if (commit) {
            v[i] = vi;
            w[i] = wi;
        } else {
            bad |= not_finite(vi) | not_finite(wi);
        }
    }
    return bad;
}

/* Adam (Kingma & Ba) with bias-corrected moments. */
BPL__MULTIVERSION
static uint32_t adam(const bpl__optim_config *c, uint64_t t, float *w, const float *g,
                     float *m, float *v, size_t n, int commit)
{
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    float wd = (float)c->weight_decay;
    float c1 = (float)(1.0 / (1.0 - pow(c->beta1, (double)t)));
    float c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)t)));
    float lr = (float)c->lr;
    uint32_t bad = 0;
    if (!commit) {
        uint32_t m_max = 0, w_max = 0, neg = 0;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            bad |= not_finite(mi) | not_finite(vi);
            neg |= negative(v[i]);
            uint32_t mb = magnitude_bits(mi), wb = magnitude_bits(w[i]);
            m_max = mb > m_max ? mb : m_max;
            w_max = wb > w_max ? wb : w_max;
        }
        if (neg)
            return BAD_STATE;
        if (bad || step_bound_is_safe(lr, c1, m_max, w_max, eps))
            return bad;
    }
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        float wi = w[i] - lr * (mi * c1) / (sqrtf(vi * c2) + eps);
        if (commit) {
            m[i] = mi;
            v[i] = vi;
            w[i] = wi;
        } else {
            bad |= not_finite(mi) | not_finite(vi) | not_finite(wi);
        }
    }
    return bad;
}

static uint32_t run_kernel(const bpl__optim_config *cfg, uint64_t t, float *w,
                           const float *g, float *m, float *v, size_t n, int commit)
{
    switch (cfg->kind) {
    case BPL_OPT_MOMENTUM: return momentum(cfg, w, g, m, n, commit);
    case BPL_OPT_RMSPROP: return rmsprop(cfg, w, g, v, n, commit);
    case BPL_OPT_ADAM: return adam(cfg, t, w, g, m, v, n, commit);
    default: return sgd(cfg, w, g, n, commit);
    }
}

static int group_in_mask(int group, unsigned int mask)
{
    return group >= 0 && group < BPL__N_GROUPS && (mask & (1u << group));
}

/* What is wrong with the step of tensor t (layer l) under optimiser o, or
 * BPL_OK: its gradient, or the values the step would write. */
static int check_tensor(const bpl__optimizer *o, const bpl__tensor *t, size_t l,
                        const char *caller)
{
    size_t n = t->rows * t->cols;
    if (!bpl__all_finite(t->grad, n))
        return bpl__fail(BPL_ERR_NUMERIC,
                         "%s: gradient of '%s' in layer %zu has NaN or Inf; parameters left "
                         "unchanged",
                         caller, t->name, l);
    uint32_t bad = run_kernel(&o->cfg, o->steps + 1, t->data, t->grad, t->m, t->v, n, 0);
    if (bad & BAD_STATE)
        return bpl__fail(BPL_ERR_NUMERIC,
                         "%s: the optimiser state of '%s' in layer %zu holds a negative "
                         "second moment; parameters left unchanged",
                         caller, t->name, l);
    if (bad)
        return bpl__fail(BPL_ERR_NUMERIC,
                         "%s: the step would make '%s' in layer %zu overflow to Inf or NaN "
                         "(learning rate too large?); parameters left unchanged",
                         caller, t->name, l);
    return BPL_OK;
}

/* Visit every trained tensor of the selected groups: check (commit = 0,
 * stops at the first problem) or write (commit = 1).  Tensor by tensor, so
 * that a message names the tensor; a frozen one keeps its values. */
static int visit_tensors(bpl_net *net, unsigned int mask, int commit, const char *caller)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        for (size_t i = 0; i < layer->n_tensors; i++) {
            bpl__tensor *t = &layer->tensors[i];
            if (!group_in_mask(t->group, mask) || t->pending || t->frozen)
                continue;
            const bpl__optimizer *o = &net->optim[t->group];
            if (commit) {
                run_kernel(&o->cfg, o->steps + 1, t->data, t->grad, t->m, t->v,
                           t->rows * t->cols, 1);
                continue;
            }
            int rc = check_tensor(o, t, l, caller);
            if (rc != BPL_OK)
                return rc;
        }
    }
    return BPL_OK;
}

int bpl__net_apply(bpl_net *net, unsigned int mask, const char *caller)
{
    /* Each optimiser takes the rule's hyperparameters of its group as they
     * are now: a schedule may have changed the learning rate since. */
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        if (!(mask & (1u << g)))
            continue;
        int rc = bpl__rule_optim_config(net->rule, g, &net->optim[g].cfg);
        if (rc != BPL_OK) {
            bpl__error_prefix(caller);
            return rc;
        }
    }
    int rc = visit_tensors(net, mask, 0, caller);
    if (rc != BPL_OK)
        return rc;
    visit_tensors(net, mask, 1, caller);
    for (int g = 0; g < BPL__N_GROUPS; g++)
        if ((mask & (1u << g)) && net->optim[g].steps < BPL__MAX_OPTIM_STEPS - 1)
            net->optim[g].steps++;
    return BPL_OK;
}
