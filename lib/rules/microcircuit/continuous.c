/*
 * continuous.c - the microcircuit's continuous mode ("continuous"): the
 * Euler-integrated dynamics of Eqs. 1-2 with optional noise, and the
 * plasticity low-pass filtered along the simulation (see common.c).
 */
#include "microcircuit.h"

#include <math.h>
#include <string.h>

/* Low-pass filters of the plasticity, for the continuous mode only, one
 * per tensor (in the order of bpl__mc_tensor_names): the first two for
 * every layer, all six below the output layer. */
static const char *const filtered[MC_N_TENSORS] = {"weight_filter",   "bias_filter",
                                                   "feedback_filter", "pi_filter",
                                                   "ip_filter",       "ip_bias_filter"};

static size_t filters_of(const bpl_net *net, size_t l)
{
    return l < bpl__rule_top(net) ? MC_N_TENSORS : MC_FEEDBACK;
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
            TRY(bpl_layer_tensor_info(layer, bpl__mc_tensor_names[i], &rows, &cols, NULL));
            TRY(bpl_layer_add_tensor(layer, filtered[i], rows, cols, BPL_GROUP_NONE,
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
static int dendrites(bpl_net *net, const mc_layer *L, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl__mc_phi_of(L[l].u, L[l].rate_u, batch * L[l].n);
        if (l < top)
            bpl__mc_phi_of(L[l].u_inter, L[l].rate_inter, batch * L[l].n_above);
    }
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        size_t n = m->n, n_above = m->n_above;
        float *r = m->rate_u;
        TRY(bpl_layer_forward(m->layer, below, batch, BPL_ACT_LINEAR, m->v_basal));
        if (l < top) {
            bpl__mc_project(net, r, m->t[MC_IP], m->t[MC_IP_BIAS], batch, n_above, n, 0.0f,
                            m->v_inter);
            bpl__mc_project(net, L[l + 1].rate_u, m->t[MC_FEEDBACK], NULL, batch, n, n_above,
                            0.0f, m->v_apical);
            bpl__mc_project(net, m->rate_inter, m->t[MC_PI], NULL, batch, n, n_above, 1.0f,
                            m->v_apical);
        }
        below = r;
    }
    return BPL_OK;
}

/* One Euler step of every soma (Eqs. 1-2), the output nudged towards its
 * target when y is given. */
static int euler_step(bpl_net *net, const mc_layer *L, const settings *s, const float *y,
                      size_t batch)
{
    size_t top = bpl__rule_top(net);
    float noise = s->noise * sqrtf(s->dt);
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        size_t n = batch * m->n;
        float *u = m->u, *v_b = m->v_basal, *xi = m->noise;
        if (noise > 0.0f)
            TRY(bpl_net_example_random_normal(net, xi, n, 0.0, noise));
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
        float *v_a = m->v_apical;
        for (size_t i = 0; i < n; i++)
            u[i] += s->dt * (-s->g_lk * u[i] + s->g_b * (v_b[i] - u[i]) +
                             s->g_a * (v_a[i] - u[i])) +
                    xi[i];
        size_t n_i = batch * m->n_above;
        float *u_i = m->u_inter, *v_i = m->v_inter, *u_above = L[l + 1].u;
        float *xi_i = m->noise_inter;
        if (noise > 0.0f)
            TRY(bpl_net_example_random_normal(net, xi_i, n_i, 0.0, noise));
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
void bpl__mc_rest(bpl_net *net, const mc_layer *L, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        memset(L[l].u, 0, batch * L[l].n * sizeof *L[l].u);
        if (L[l].u_inter)
            memset(L[l].u_inter, 0, batch * L[l].n_above * sizeof *L[l].u_inter);
    }
}

/* The rates of the somata as the layers' activations (predictions). */
void bpl__mc_publish_rates(bpl_net *net, const mc_layer *L, size_t batch)
{
    for (size_t l = 0; l <= bpl__rule_top(net); l++) {
        float *r = L[l].activation, *deriv = L[l].derivative;
        size_t n = batch * L[l].n;
        bpl__mc_phi_of(L[l].u, r, n);
        for (size_t i = 0; i < n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
    }
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

/* The working copy of filter k of layer l. */
static float *working_filter(const work *wk, size_t l, size_t k)
{
    return wk->filters + wk->filter_at[l * MC_N_TENSORS + k];
}

/* The instant change of one matrix (tensor k of layer l, and its bias's,
 * tensor bias_k, unless negative), filtered into its gradient. */
static void plastic(bpl_net *net, const mc_layer *m, const settings *s, size_t l, size_t k,
                    int bias_k, const float *post, const float *pre, size_t batch, size_t rows,
                    size_t cols, const work *wk)
{
    bpl__mc_outer(net, post, pre, batch, rows, cols, wk->w, bias_k >= 0 ? wk->b : NULL);
    filter_into(s, working_filter(wk, l, k), wk->w, m->g[k], rows * cols);
    if (bias_k >= 0)
        filter_into(s, working_filter(wk, l, (size_t)bias_k), wk->b, m->g[bias_k], rows);
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
    wk->filter_at = bpl__calloc(n_layers * MC_N_TENSORS, sizeof *wk->filter_at);
    if (!wk->filter_at)
        return bpl_error_set(BPL_ERR_NOMEM, "out of memory");
    for (size_t l = 0; l < n_layers; l++) {
        for (size_t k = 0; k < filters_of(net, l); k++) {
            size_t rows, cols;
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k], &rows, &cols,
                                      NULL));
            wk->filter_at[l * MC_N_TENSORS + k] = at;
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
            TRY(bpl_layer_tensor(bpl_net_layer(net, l), filtered[k], &f, &rows, &cols));
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
            TRY(bpl_layer_tensor_info(bpl_net_layer(net, l), filtered[k], &rows, &cols,
                                      NULL));
            if (!bpl__all_finite(working_filter(wk, l, k), rows * cols))
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "the plasticity filter '%s' of layer %zu overflowed to NaN "
                                 "or Inf; parameters left unchanged",
                                 filtered[k], l);
        }
    }
    return BPL_OK;
}

static void continuous_plasticity(bpl_net *net, const mc_layer *L, const settings *s,
                                  const float *x, size_t batch, const work *wk)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        size_t n = m->n, n_above = m->n_above;
        float *u = m->u, *v_b = m->v_basal, *post = m->scratch;
        const float *pre = l > 0 ? L[l - 1].rate_u : x;
        float k = l == top ? k_output(s) : k_hidden(s);
        for (size_t i = 0; i < batch * n; i++)
            post[i] = phi(u[i]) - phi(k * v_b[i]);
        plastic(net, m, s, l, MC_WEIGHT, MC_BIAS, post, pre, batch, n, m->n_in, wk);
        if (l == top)
            continue;
        float *u_i = m->u_inter, *v_i = m->v_inter, *e_i = m->err_inter;
        float *tmp = m->noise; /* redrawn by the Euler step */
        float *r_above = L[l + 1].rate_u;
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi(u_i[i]) - phi(k_inter(s) * v_i[i]);
        plastic(net, m, s, l, MC_IP, MC_IP_BIAS, e_i, m->rate_u, batch, n_above, n, wk);
        if (s->learn_pi) {
            const float *v_a = m->v_apical;
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = -v_a[i];
            plastic(net, m, s, l, MC_PI, -1, tmp, m->rate_inter, batch, n, n_above, wk);
        }
        if (s->learn_topdown) {
            bpl__mc_project(net, r_above, m->t[MC_FEEDBACK], NULL, batch, n, n_above, 0.0f,
                            tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(u[i]) - phi(tmp[i]);
            plastic(net, m, s, l, MC_FEEDBACK, -1, tmp, r_above, batch, n, n_above, wk);
        }
    }
}

/* `steps` Euler steps; with `wk`, plasticity is integrated along the way. */
int bpl__mc_simulate(bpl_net *net, const mc_layer *L, const settings *s, const float *x,
                     const float *y, size_t batch, const work *wk)
{
    for (size_t t = 0; t < s->steps; t++) {
        TRY(dendrites(net, L, x, batch));
        if (wk)
            continuous_plasticity(net, L, s, x, batch, wk);
        TRY(euler_step(net, L, s, y, batch));
    }
    return dendrites(net, L, x, batch); /* leave the final state's potentials */
}
