/*
 * continuous.c - the microcircuit's continuous mode ("continuous"): the
 * Euler-integrated dynamics of Eqs. 1-2 with optional noise, and the
 * plasticity low-pass filtered along the simulation (see common.c).
 */
#include "microcircuit.h"

#include <math.h>
#include <string.h>

/* Low-pass filters of the plasticity, for the continuous mode only: the
 * first two for every layer, all six below the output layer. */
static const char *const filtered[][2] = {{"weight", "weight_filter"},
                                          {"bias", "bias_filter"},
                                          {"feedback", "feedback_filter"},
                                          {"pi", "pi_filter"},
                                          {"ip", "ip_filter"},
                                          {"ip_bias", "ip_bias_filter"}};

static size_t filters_of(const bpl_net *net, size_t l)
{
    return l < bpl__rule_top(net) ? 6 : 2;
}

int bpl__mc_add_filters(bpl_net *net, const settings *s)
{
    if (s->mode != CONTINUOUS)
        return BPL_OK;
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t k = filters_of(net, l);
        for (size_t i = 0; i < k; i++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(layer, filtered[i][0], &rows, &cols, NULL));
            TRY(bpl_layer_add_tensor(layer, filtered[i][1], rows, cols, BPL_GROUP_NONE,
                                     BPL_INIT_ZERO, 0.0, NULL));
        }
    }
    return BPL_OK;
}

/* Attenuations of the plasticity's predictions: the soma's steady state
 * without top-down input, relative to its dendrite. */
static float k_hidden(const settings *s)
{
    return s->g_b / (s->g_lk + s->g_b + s->g_a);
}

static float k_output(const settings *s)
{
    return s->g_b / (s->g_lk + s->g_b);
}

static float k_inter(const settings *s)
{
    return s->g_d / (s->g_lk + s->g_d);
}

/* Every dendritic potential from the current somata (rates phi(u)). */
static int dendrites(bpl_net *net, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        float *u, *r;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        bpl__mc_phi_of(u, r, batch * bpl__rule_units(net, l));
        if (l < top) {
            float *u_i, *r_i;
            TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            bpl__mc_phi_of(u_i, r_i, batch * bpl__rule_units(net, l + 1));
        }
    }
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l);
        float *v_b, *r;
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        bpl__layer_forward(net, layer, below, batch, BPL_ACT_LINEAR, v_b);
        if (l < top) {
            size_t n_above = bpl__rule_units(net, l + 1);
            float *ip, *ip_bias, *v_i, *bfb, *pi, *v_a, *r_above, *r_i;
            TRY(bpl__mc_tensor(net, l, "ip", &ip));
            TRY(bpl__mc_tensor(net, l, "ip_bias", &ip_bias));
            TRY(bpl__mc_tensor(net, l, "feedback", &bfb));
            TRY(bpl__mc_tensor(net, l, "pi", &pi));
            TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
            TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
            TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            bpl__mc_project(net, r, ip, ip_bias, batch, n_above, n, 0.0f, v_i);
            bpl__mc_project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, v_a);
            bpl__mc_project(net, r_i, pi, NULL, batch, n, n_above, 1.0f, v_a);
        }
        below = r;
    }
    return BPL_OK;
}

/* One Euler step of every soma (Eqs. 1-2), the output nudged towards its
 * target when y is given. */
static int euler_step(bpl_net *net, const settings *s, const float *y, size_t batch)
{
    size_t top = bpl__rule_top(net);
    float noise = s->noise * sqrtf(s->dt);
    for (size_t l = 0; l <= top; l++) {
        size_t n = batch * bpl__rule_units(net, l);
        float *u, *v_b, *xi;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "noise", &xi));
        if (noise > 0.0f)
            TRY(bpl_net_random_normal(net, xi, n, 0.0, noise));
        else
            memset(xi, 0, n * sizeof *xi);
        if (l == top) {
            for (size_t i = 0; i < n; i++) {
                float du = -s->g_lk * u[i] + s->g_b * (v_b[i] - u[i]);
                if (y)
                    du += s->g_som * (bpl__mc_target_potential(s, y[i]) - u[i]);
                u[i] += s->dt * du + xi[i];
            }
            continue;
        }
        float *v_a, *u_i, *v_i, *u_above, *xi_i;
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        for (size_t i = 0; i < n; i++)
            u[i] += s->dt * (-s->g_lk * u[i] + s->g_b * (v_b[i] - u[i]) +
                             s->g_a * (v_a[i] - u[i])) +
                    xi[i];
        size_t n_i = batch * bpl__rule_units(net, l + 1);
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l + 1, "u", &u_above));
        TRY(bpl__rule_buffer(net, l, "noise_inter", &xi_i));
        if (noise > 0.0f)
            TRY(bpl_net_random_normal(net, xi_i, n_i, 0.0, noise));
        else
            memset(xi_i, 0, n_i * sizeof *xi_i);
        /* the soma above takes this step later in the loop: the interneuron
         * follows it as it was at the start of the step, like every other
         * term of this explicit Euler step */
        for (size_t i = 0; i < n_i; i++)
            u_i[i] += s->dt * (-s->g_lk * u_i[i] + s->g_d * (v_i[i] - u_i[i]) +
                               s->g_som * (u_above[i] - u_i[i])) +
                      xi_i[i];
    }
    return BPL_OK;
}

/* The start of a presentation: every soma and interneuron at rest. */
int bpl__mc_rest(bpl_net *net, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        float *u;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        memset(u, 0, batch * bpl__rule_units(net, l) * sizeof *u);
        if (l < bpl__rule_top(net)) {
            float *u_i;
            TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
            memset(u_i, 0, batch * bpl__rule_units(net, l + 1) * sizeof *u_i);
        }
    }
    return BPL_OK;
}

/* The rates of the somata as the layers' activations (predictions). */
int bpl__mc_publish_rates(bpl_net *net, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        float *u, *r, *deriv;
        size_t n = batch * bpl__rule_units(net, l);
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(bpl__rule_buffer(net, l, "derivative", &deriv));
        bpl__mc_phi_of(u, r, n);
        for (size_t i = 0; i < n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
    }
    return BPL_OK;
}

/* acc += dt * filter after filter += dt/tau_w (instant - filter):
 * low-pass filtered plasticity, integrated over the presentation.  The
 * instant change is a gradient-ascent direction: it enters as its negative
 * so that the optimiser's descent applies it. */
static void filter_into(const settings *s, float *filter, const float *instant, float *acc,
                        size_t n)
{
    float a = s->dt / s->tau_w;
    for (size_t i = 0; i < n; i++) {
        filter[i] += a * (instant[i] - filter[i]);
        acc[i] -= s->dt * filter[i];
    }
}

enum { N_FILTERS = sizeof filtered / sizeof filtered[0] };

/* The working copy of filter k of layer l. */
static float *working_filter(const work *wk, size_t l, size_t k)
{
    return wk->filters + wk->filter_at[l * N_FILTERS + k];
}

/* The instant change of one matrix (filter k of layer l, and its bias's,
 * filter bias_k, unless negative), filtered into its gradient. */
static int plastic(bpl_net *net, const settings *s, size_t l, size_t k, int bias_k,
                   const float *post, const float *pre, size_t batch, size_t rows,
                   size_t cols, const work *wk)
{
    float *g;
    bpl__mc_outer(net, post, pre, batch, rows, cols, wk->w, bias_k >= 0 ? wk->b : NULL);
    TRY(bpl__mc_grad(net, l, filtered[k][0], &g));
    filter_into(s, working_filter(wk, l, k), wk->w, g, rows * cols);
    if (bias_k >= 0) {
        TRY(bpl__mc_grad(net, l, filtered[bias_k][0], &g));
        filter_into(s, working_filter(wk, l, (size_t)bias_k), wk->b, g, rows);
    }
    return BPL_OK;
}

void bpl__mc_work_free(work *wk)
{
    bpl__free(wk->w);
    bpl__free(wk->b);
    bpl__free(wk->filters);
    bpl__free(wk->filter_at);
}

/* One matrix's and one bias's instant change fit; the filters' copy is
 * laid out at the first step. */
int bpl__mc_work_attach(bpl_net *net, work *wk)
{
    size_t largest = 1, widest = 1;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        size_t n_above = l < bpl__rule_top(net) ? bpl__rule_units(net, l + 1) : 0;
        largest = n * n_in > largest ? n * n_in : largest;
        largest = n * n_above > largest ? n * n_above : largest;
        widest = n > widest ? n : widest;
        widest = n_above > widest ? n_above : widest;
    }
    bpl__mc_work_free(wk);
    wk->filters = NULL;
    wk->filter_at = NULL;
    wk->w = bpl__malloc(largest * sizeof *wk->w);
    wk->b = bpl__malloc(widest * sizeof *wk->b);
    if (!wk->w || !wk->b)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    return BPL_OK;
}

/* Where each filter goes in the working copy, and the copy itself. */
static int layout_filters(bpl_net *net, work *wk)
{
    size_t n_layers = bpl_net_layer_count(net), at = 0;
    wk->filter_at = bpl__calloc(n_layers * N_FILTERS, sizeof *wk->filter_at);
    if (!wk->filter_at)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    for (size_t l = 0; l < n_layers; l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k][1], &rows, &cols,
                                      NULL));
            wk->filter_at[l * N_FILTERS + k] = at;
            at += rows * cols;
        }
    }
    wk->filters = bpl__malloc((at ? at : 1) * sizeof *wk->filters);
    return wk->filters ? BPL_OK : bpl_error_set(BPL_ERR_NOMEM, "out of memory");
}

/* Copy every filter tensor into the working copy (commit = 0), or the
 * working copy into the tensors (commit = 1). */
int bpl__mc_copy_filters(bpl_net *net, const work *wk, int commit)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            float *f, *copy = working_filter(wk, l, k);
            size_t rows, cols;
            TRY(bpl_layer_tensor(bpl_net_layer(net, l), filtered[k][1], &f, &rows, &cols));
            memcpy(commit ? f : copy, commit ? copy : f, rows * cols * sizeof *f);
        }
    }
    return BPL_OK;
}

int bpl__mc_begin_filters(bpl_net *net, work *wk)
{
    if (!wk->filters)
        TRY(layout_filters(net, wk));
    return bpl__mc_copy_filters(net, wk, 0);
}

/* A filter that overflowed would reach the weights through a later step
 * (or through a frozen weight, not at all), and a file may not hold it. */
int bpl__mc_check_filters(bpl_net *net, const work *wk)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k][1], &rows, &cols,
                                      NULL));
            if (!bpl__all_finite(working_filter(wk, l, k), rows * cols))
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "the plasticity filter '%s' of layer %zu overflowed to NaN "
                                 "or Inf; parameters left unchanged",
                                 filtered[k][1], l);
        }
    }
    return BPL_OK;
}

static int continuous_plasticity(bpl_net *net, const settings *s, const float *x,
                                 size_t batch, const work *wk)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        float *u, *v_b, *post, *below;
        const float *pre = x;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "scratch", &post));
        if (l > 0) {
            TRY(bpl__rule_buffer(net, l - 1, "rate_u", &below));
            pre = below;
        }
        float k = l == top ? k_output(s) : k_hidden(s);
        for (size_t i = 0; i < batch * n; i++)
            post[i] = phi(u[i]) - phi(k * v_b[i]);
        TRY(plastic(net, s, l, 0, 1, post, pre, batch, n, n_in, wk));
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *u_i, *v_i, *e_i, *r, *r_i, *v_a, *tmp, *r_above;
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        TRY(bpl__rule_buffer(net, l, "rate_u", &r));
        TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        TRY(bpl__rule_buffer(net, l, "noise", &tmp)); /* redrawn by the Euler step */
        TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi(u_i[i]) - phi(k_inter(s) * v_i[i]);
        TRY(plastic(net, s, l, 4, 5, e_i, r, batch, n_above, n, wk));
        if (s->learn_pi) {
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = -v_a[i];
            TRY(plastic(net, s, l, 3, -1, tmp, r_i, batch, n, n_above, wk));
        }
        if (s->learn_topdown) {
            float *bfb;
            TRY(bpl__mc_tensor(net, l, "feedback", &bfb));
            bpl__mc_project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(u[i]) - phi(tmp[i]);
            TRY(plastic(net, s, l, 2, -1, tmp, r_above, batch, n, n_above, wk));
        }
    }
    return BPL_OK;
}

/* `steps` Euler steps; with `wk`, plasticity is integrated along the way. */
int bpl__mc_simulate(bpl_net *net, const settings *s, const float *x, const float *y,
                     size_t batch, const work *wk)
{
    for (size_t t = 0; t < s->steps; t++) {
        TRY(dendrites(net, x, batch));
        if (wk)
            TRY(continuous_plasticity(net, s, x, batch, wk));
        TRY(euler_step(net, s, y, batch));
    }
    return dendrites(net, x, batch); /* leave the final state's potentials */
}
