/*
 * steady.c - the microcircuit's steady-state mode ("steady", the default):
 * each example is one bottom-up sweep and one top-down sweep, whose exact
 * potential differences are the errors of Eqs. 7-8 (see common.c).
 */
#include "microcircuit.h"

#include <math.h>

/* Bottom-up: v_B, rates (the "activation"), interneuron dendrites. */
int bpl__mc_bottom_up(bpl_net *net, const mc_layer *L, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        float *r = m->activation, *deriv = m->derivative;
        size_t n = m->n;
        TRY(bpl_layer_forward(m->layer, below, batch, BPL_ACT_LINEAR, m->v_basal));
        bpl__mc_phi_of(m->v_basal, r, batch * n);
        for (size_t i = 0; i < batch * n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
        if (l < top)
            bpl__mc_project(net, r, m->t[MC_IP], m->t[MC_IP_BIAS], batch, m->n_above, n, 0.0f,
                            m->v_inter);
        below = r;
    }
    return BPL_OK;
}

/* Nudge the output, then sweep down: interneurons mix in the soma above,
 * pyramidal somata their apical potential.  a + lambda (b - a) makes the
 * mixture exact when a == b, so the self-predicting state is a fixed point
 * to the bit at the top. */
void bpl__mc_top_down(bpl_net *net, const mc_layer *L, const settings *s, const float *y,
                      size_t batch)
{
    size_t top = bpl__rule_top(net);
    const mc_layer *out = &L[top];
    float *u = out->u, *v_b = out->v_basal;
    float *d_top = out->scratch; /* u - v_B, exactly */
    for (size_t i = 0; i < batch * out->n; i++) {
        d_top[i] = y ? s->lambda_out * (bpl__mc_target_potential(s, y[i]) - v_b[i]) : 0.0f;
        u[i] = v_b[i] + d_top[i];
    }
    for (size_t l = top; l-- > 0;) {
        const mc_layer *m = &L[l], *above = &L[l + 1];
        size_t n = m->n, n_above = m->n_above;
        float *u_above = above->u, *rate_above = above->rate_u, *v_b_above = above->v_basal;
        float *v_i = m->v_inter, *u_i = m->u_inter, *r_i = m->rate_inter, *v_a = m->v_apical;
        float *d_i = m->err_inter; /* the interneuron's learning target, exactly */
        float *d_l = m->scratch;   /* u - (1 - lambda) v_B, exactly */
        float *ul = m->u, *vl = m->v_basal;
        bpl__mc_phi_of(u_above, rate_above, batch * n_above);
        /* Interneurons follow the soma above.  Their plasticity follows it as
         * it is now (Eq. 8 read literally), or, with interneuron_target=
         * bottom_up, as it would be without a target: the self-predicting
         * solution, which cannot learn the labels and so cannot silence the
         * error. */
        float k_above = l + 1 == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n_above; i++) {
            u_i[i] = v_i[i] + s->lambda_inter * (u_above[i] - v_i[i]);
            float goal = s->inter_nudged ? u_above[i] : k_above * v_b_above[i];
            d_i[i] = s->lambda_inter * (goal - v_i[i]);
        }
        bpl__mc_phi_of(u_i, r_i, batch * n_above);
        bpl__mc_project(net, rate_above, m->t[MC_FEEDBACK], NULL, batch, n, n_above, 0.0f,
                        v_a);
        bpl__mc_project(net, r_i, m->t[MC_PI], NULL, batch, n, n_above, 1.0f, v_a);
        float keep = 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++) {
            d_l[i] = s->lambda_apical * v_a[i];
            ul[i] = keep * vl[i] + d_l[i];
        }
    }
    bpl__mc_phi_of(u, out->rate_u, batch * out->n);
}

/* Errors of Eqs. 7-8 into "delta" (pyramidal) and "err_inter", from the
 * exact potential differences top_down left in "scratch" and "err_inter". */
void bpl__mc_steady_errors(bpl_net *net, const mc_layer *L, const settings *s, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        float *u = m->u, *v_b = m->v_basal, *d = m->delta, *diff = m->scratch;
        size_t n = m->n, n_above = m->n_above;
        float k = l == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++)
            d[i] = phi_difference(u[i], k * v_b[i], diff[i]);
        if (l == top)
            continue;
        float *v_i = m->v_inter, *e_i = m->err_inter;
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi_difference(v_i[i] + e_i[i], v_i[i], e_i[i]);
    }
}

/* grad W and grad b of the pyramidal rule (Eq. 7), rescaled by the inverse
 * of the mixing factors the error went through. */
static int pyramidal_gradients(bpl_net *net, const mc_layer *m, const settings *s,
                               size_t depth, size_t batch)
{
    float scale = 1.0f;
    if (s->rescale)
        scale = 1.0f / (s->lambda_out * powf(s->lambda_apical, (float)depth));
    const float *pre;
    TRY(bpl_layer_input(m->layer, &pre, NULL, NULL));
    TRY(bpl_layer_gradients(m->layer, m->delta, pre, batch, 1.0f / (float)batch, 1.0f,
                            (float)batch));
    float *gw = m->g[MC_WEIGHT], *gb = m->g[MC_BIAS];
    size_t n = m->n, n_in = m->n_in;
    for (size_t i = 0; i < n * n_in; i++)
        gw[i] *= -scale;
    for (size_t i = 0; i < n; i++)
        gb[i] *= -scale;
    return BPL_OK;
}

/* Gradients of the steady-state rules. */
int bpl__mc_steady_gradients(bpl_net *net, const mc_layer *L, const settings *s, size_t batch,
                             int forward)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        const mc_layer *m = &L[l];
        if (forward)
            TRY(pyramidal_gradients(net, m, s, top - l, batch));
        if (l == top)
            continue;
        size_t n = m->n, n_above = m->n_above;
        float *g_ip = m->g[MC_IP], *g_ipb = m->g[MC_IP_BIAS];
        bpl__mc_outer(net, m->err_inter, m->activation, batch, n_above, n, g_ip, g_ipb);
        for (size_t i = 0; i < n_above * n; i++)
            g_ip[i] = -g_ip[i];
        for (size_t i = 0; i < n_above; i++)
            g_ipb[i] = -g_ipb[i];
        if (s->learn_pi) /* W_PI += (0 - v_A) r_I^T: the gradient is +v_A r_I^T */
            bpl__mc_outer(net, m->v_apical, m->rate_inter, batch, n, n_above, m->g[MC_PI],
                          NULL);
        if (s->learn_topdown) { /* B += (phi(u) - phi(B r_above)) r_above^T */
            float *tmp = m->scratch, *r_above = L[l + 1].rate_u;
            const float *u = m->u;
            bpl__mc_project(net, r_above, m->t[MC_FEEDBACK], NULL, batch, n, n_above, 0.0f,
                            tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(tmp[i]) - phi(u[i]);
            bpl__mc_outer(net, tmp, r_above, batch, n, n_above, m->g[MC_FEEDBACK], NULL);
        }
    }
    return BPL_OK;
}
