/*
 * microcircuit.h - what the files of the dendritic cortical microcircuit
 * ("microcircuit", described in common.c) share: its settings, the
 * neurons' rate function, the dense products every mode uses, and each
 * mode's entry points.  common.c holds the hyperparameters, attach and the
 * hooks; steady.c the steady-state sweeps and their gradients; continuous.c
 * the Euler-integrated dynamics and their filtered plasticity.
 */
#ifndef BPL_MICROCIRCUIT_H
#define BPL_MICROCIRCUIT_H

#include <math.h>

#include "../dense_rule.h"
#include "fast_math.h"

enum mode { STEADY, CONTINUOUS };

typedef struct settings {
    int mode, learn_topdown, learn_pi, rescale, inter_nudged;
    float lambda_out, lambda_inter, lambda_apical, target_high, target_low;
    float dt, g_lk, g_a, g_b, g_d, g_som, noise, tau_w;
    size_t steps, pretrain_steps;
} settings;

static inline float phi(float u)
{
    return bpl__fast_sigmoidf(u);
}

/* phi(x) - phi(y) given d = x - y: phi(x) (1 - phi(y)) (1 - e^{-d}).  The
 * errors of the steady-state scheme are differences between a potential and
 * one nudged by a mixing factor; subtracting two logistic values would lose
 * them to rounding once the factors are small (the error reaching layer k
 * shrinks like lambda^(depth)), while d itself is exact. */
static inline float phi_difference(float x, float y, float d)
{
    return phi(x) * (1.0f - phi(y)) * -expm1f(-d);
}

/* Scratch of the continuous mode: one matrix's instant change, and the
 * step's plasticity filters.  A step integrates its filters as it goes, in
 * this copy of them, and after_apply makes the copy the net's: a step that
 * fails, and a diagnostic pass, leave the filter tensors as they were, like
 * every other parameter.  Allocated at the first step, not at attach, so
 * that a load allocates no more than its file holds. */
typedef struct work {
    float *w, *b;
    float *filters;    /* every filter, layer by layer, in the order of the tensors */
    size_t *filter_at; /* where the filter of layer l's tensor k starts: [l * MC_N_TENSORS + k] */
} work;

/* A layer's tensors, in the order of bpl__mc_tensor_names; every layer has
 * the first two, the layers below the output all six. */
enum mc_tensor { MC_WEIGHT, MC_BIAS, MC_FEEDBACK, MC_PI, MC_IP, MC_IP_BIAS, MC_N_TENSORS };
extern const char *const bpl__mc_tensor_names[MC_N_TENSORS];

/* What the sweeps need of one layer, looked up by name once per hook
 * (bpl__mc_layers) instead of in every sweep and every time step.  What
 * belongs to the interneurons and the top-down path is NULL at the output
 * layer; a gradient is NULL where its tensor does not learn, and every
 * gradient is NULL unless asked for. */
typedef struct mc_layer {
    bpl_layer *layer;
    size_t n, n_in, n_above; /* units, inputs, units above (0 at the output) */
    /* [batch][n] */
    float *v_basal, *u, *rate_u, *derivative, *scratch, *noise, *activation, *delta;
    float *v_apical;
    /* [batch][n_above] */
    float *v_inter, *u_inter, *rate_inter, *err_inter, *noise_inter;
    float *t[MC_N_TENSORS], *g[MC_N_TENSORS];
} mc_layer;

/* ---- common.c ---------------------------------------------------------------- */

/* Every layer's buffers and tensors into L (one per layer), and with
 * `grads` the gradients of the tensors that learn. */
int bpl__mc_layers(bpl_net *net, const settings *s, int grads, mc_layer *L);
/* out = phi(u), elementwise. */
void bpl__mc_phi_of(const float *u, float *out, size_t n);
/* out = beta out + in M^T (+ bias), in [batch][cols], M [rows][cols]. */
void bpl__mc_project(bpl_net *net, const float *in, const float *m, const float *bias,
                     size_t batch, size_t rows, size_t cols, float beta, float *out);
/* post [batch][rows] x pre [batch][cols] -> [rows][cols] / batch, and the
 * column sums of post / batch for a bias. */
void bpl__mc_outer(bpl_net *net, const float *post, const float *pre, size_t batch,
                   size_t rows, size_t cols, float *out, float *bias_out);
/* The output's target potential for a label value y. */
float bpl__mc_target_potential(const settings *s, float y);

/* ---- steady.c ---------------------------------------------------------------- */

/* Bottom-up: v_B, rates (the "activation"), interneuron dendrites. */
int bpl__mc_bottom_up(bpl_net *net, const mc_layer *L, const float *x, size_t batch);
/* The output nudged towards y (NULL: not), then the top-down sweep. */
void bpl__mc_top_down(bpl_net *net, const mc_layer *L, const settings *s, const float *y,
                      size_t batch);
/* Errors of Eqs. 7-8 into "delta" and "err_inter". */
void bpl__mc_steady_errors(bpl_net *net, const mc_layer *L, const settings *s, size_t batch);
/* The steady-state gradients; the forward ones only if `forward`. */
int bpl__mc_steady_gradients(bpl_net *net, const mc_layer *L, const settings *s, size_t batch,
                             int forward);

/* ---- continuous.c ------------------------------------------------------------ */

/* The plasticity's filter tensors (continuous mode only), at attach. */
int bpl__mc_add_filters(bpl_net *net, const settings *s);
/* Size the scratch for `net` (at attach), and release it. */
int bpl__mc_work_attach(bpl_net *net, work *wk);
void bpl__mc_work_free(work *wk);
/* Every soma and interneuron at rest. */
void bpl__mc_rest(bpl_net *net, const mc_layer *L, size_t batch);
/* `steps` Euler steps; with `wk`, plasticity is integrated along the way. */
int bpl__mc_simulate(bpl_net *net, const mc_layer *L, const settings *s, const float *x,
                     const float *y, size_t batch, const work *wk);
/* The somata's rates as the layers' activations (predictions). */
void bpl__mc_publish_rates(bpl_net *net, const mc_layer *L, size_t batch);
/* At a step's start, the filter tensors into the working copy; before
 * anything is applied, whether the copy stayed finite; once the step
 * stands, the copy into the tensors (copy_filters with commit = 1). */
int bpl__mc_begin_filters(bpl_net *net, work *wk);
int bpl__mc_check_filters(bpl_net *net, const work *wk);
int bpl__mc_copy_filters(bpl_net *net, const work *wk, int commit);

#endif
