/*
 * steady.c - the microcircuit's steady-state mode ("steady", the default):
 * each example is one bottom-up sweep and one top-down sweep, whose exact
 * potential differences are the errors of Eqs. 7-8 (see common.c).
 */
#include "microcircuit.h"

#include <math.h>

/* Bottom-up: v_B, rates (the "activation"), interneuron dendrites. */
int bpl__mc_bottom_up(bpl_net *net, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l);
        float *v_b, *r, *deriv;
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(bpl__rule_buffer(net, l, "derivative", &deriv));
        bpl__layer_forward(net, layer, below, batch, BPL_ACT_LINEAR, v_b);
        bpl__mc_phi_of(v_b, r, batch * n);
        for (size_t i = 0; i < batch * n; i++)
            deriv[i] = r[i] * (1.0f - r[i]);
        if (l < top) {
            float *ip, *ip_bias, *v_i;
            size_t n_above = bpl__rule_units(net, l + 1);
            TRY(bpl__mc_tensor(net, l, "ip", &ip));
            TRY(bpl__mc_tensor(net, l, "ip_bias", &ip_bias));
            TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
            bpl__mc_project(net, r, ip, ip_bias, batch, n_above, n, 0.0f, v_i);
        }
        below = r;
    }
    return BPL_OK;
}

/* Nudge the output, then sweep down: interneurons mix in the soma above,
 * pyramidal somata their apical potential.  a + lambda (b - a) makes the
 * mixture exact when a == b, so the self-predicting state is a fixed point
 * to the bit at the top. */
int bpl__mc_top_down(bpl_net *net, const settings *s, const float *y, size_t batch)
{
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    float *u, *v_b;
    TRY(bpl__rule_buffer(net, top, "u", &u));
    TRY(bpl__rule_buffer(net, top, "v_basal", &v_b));
    float *d_top;
    TRY(bpl__rule_buffer(net, top, "scratch", &d_top)); /* u - v_B, exactly */
    for (size_t i = 0; i < batch * n_top; i++) {
        d_top[i] = y ? s->lambda_out * (bpl__mc_target_potential(s, y[i]) - v_b[i]) : 0.0f;
        u[i] = v_b[i] + d_top[i];
    }
    for (size_t l = top; l-- > 0;) {
        size_t n = bpl__rule_units(net, l), n_above = bpl__rule_units(net, l + 1);
        float *u_above, *rate_above, *v_i, *u_i, *r_i, *v_a, *bfb, *pi, *ul, *vl;
        TRY(bpl__rule_buffer(net, l + 1, "u", &u_above));
        TRY(bpl__rule_buffer(net, l + 1, "rate_u", &rate_above));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
        TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
        TRY(bpl__rule_buffer(net, l, "u", &ul));
        TRY(bpl__rule_buffer(net, l, "v_basal", &vl));
        TRY(bpl__mc_tensor(net, l, "feedback", &bfb));
        TRY(bpl__mc_tensor(net, l, "pi", &pi));
        float *d_i, *d_l, *v_b_above;
        /* the interneuron's learning target, exactly */
        TRY(bpl__rule_buffer(net, l, "err_inter", &d_i));
        TRY(bpl__rule_buffer(net, l + 1, "v_basal", &v_b_above));
        TRY(bpl__rule_buffer(net, l, "scratch", &d_l));   /* u - (1 - lambda) v_B, exactly */
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
        bpl__mc_project(net, rate_above, bfb, NULL, batch, n, n_above, 0.0f, v_a);
        bpl__mc_project(net, r_i, pi, NULL, batch, n, n_above, 1.0f, v_a);
        float keep = 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++) {
            d_l[i] = s->lambda_apical * v_a[i];
            ul[i] = keep * vl[i] + d_l[i];
        }
    }
    float *rate_top;
    TRY(bpl__rule_buffer(net, top, "rate_u", &rate_top));
    bpl__mc_phi_of(u, rate_top, batch * n_top);
    return BPL_OK;
}

/* Errors of Eqs. 7-8 into "delta" (pyramidal) and "err_inter", from the
 * exact potential differences top_down left in "scratch" and "err_inter". */
int bpl__mc_steady_errors(bpl_net *net, const settings *s, size_t batch)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        size_t n = bpl__rule_units(net, l);
        float *u, *v_b, *d, *diff;
        TRY(bpl__rule_buffer(net, l, "u", &u));
        TRY(bpl__rule_buffer(net, l, "v_basal", &v_b));
        TRY(bpl__rule_buffer(net, l, "delta", &d));
        TRY(bpl__rule_buffer(net, l, "scratch", &diff));
        float k = l == top ? 1.0f : 1.0f - s->lambda_apical;
        for (size_t i = 0; i < batch * n; i++)
            d[i] = phi_difference(u[i], k * v_b[i], diff[i]);
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *u_i, *v_i, *e_i;
        TRY(bpl__rule_buffer(net, l, "u_inter", &u_i));
        TRY(bpl__rule_buffer(net, l, "v_inter", &v_i));
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        for (size_t i = 0; i < batch * n_above; i++)
            e_i[i] = phi_difference(v_i[i] + e_i[i], v_i[i], e_i[i]);
    }
    return BPL_OK;
}

/* Gradients of the steady-state rules; pyramidal ones rescaled by the
 * inverse of the mixing factors the error went through. */
int bpl__mc_steady_gradients(bpl_net *net, const settings *s, size_t batch, int forward)
{
    size_t top = bpl__rule_top(net);
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        size_t n = bpl__rule_units(net, l), n_in = bpl_layer_inputs(layer);
        float *d, *gw, *gb;
        const float *pre;
        if (forward) {
            float scale = 1.0f;
            if (s->rescale)
                scale = 1.0f / (s->lambda_out * powf(s->lambda_apical, (float)(top - l)));
            TRY(bpl__rule_buffer(net, l, "delta", &d));
            TRY(bpl_layer_input(layer, &pre, NULL, NULL));
            TRY(bpl__mc_grad(net, l, "weight", &gw));
            TRY(bpl__mc_grad(net, l, "bias", &gb));
            bpl__layer_gradients(net, layer, d, pre, batch, 1.0f / (float)batch, 1.0f,
                                 (float)batch);
            for (size_t i = 0; i < n * n_in; i++)
                gw[i] *= -scale;
            for (size_t i = 0; i < n; i++)
                gb[i] *= -scale;
        }
        if (l == top)
            continue;
        size_t n_above = bpl__rule_units(net, l + 1);
        float *e_i, *r, *g_ip, *g_ipb;
        TRY(bpl__rule_buffer(net, l, "err_inter", &e_i));
        TRY(bpl__rule_buffer(net, l, "activation", &r));
        TRY(bpl__mc_grad(net, l, "ip", &g_ip));
        TRY(bpl__mc_grad(net, l, "ip_bias", &g_ipb));
        bpl__mc_outer(net, e_i, r, batch, n_above, n, g_ip, g_ipb);
        for (size_t i = 0; i < n_above * n; i++)
            g_ip[i] = -g_ip[i];
        for (size_t i = 0; i < n_above; i++)
            g_ipb[i] = -g_ipb[i];
        if (s->learn_pi) { /* W_PI += (0 - v_A) r_I^T: the gradient is +v_A r_I^T */
            float *v_a, *r_i, *g_pi;
            TRY(bpl__rule_buffer(net, l, "v_apical", &v_a));
            TRY(bpl__rule_buffer(net, l, "rate_inter", &r_i));
            TRY(bpl__mc_grad(net, l, "pi", &g_pi));
            bpl__mc_outer(net, v_a, r_i, batch, n, n_above, g_pi, NULL);
        }
        if (s->learn_topdown) { /* B += (phi(u) - phi(B r_above)) r_above^T */
            float *u, *tmp, *r_above, *bfb, *g_b;
            TRY(bpl__rule_buffer(net, l, "u", &u));
            TRY(bpl__rule_buffer(net, l, "scratch", &tmp));
            TRY(bpl__rule_buffer(net, l + 1, "rate_u", &r_above));
            TRY(bpl__mc_tensor(net, l, "feedback", &bfb));
            TRY(bpl__mc_grad(net, l, "feedback", &g_b));
            bpl__mc_project(net, r_above, bfb, NULL, batch, n, n_above, 0.0f, tmp);
            for (size_t i = 0; i < batch * n; i++)
                tmp[i] = phi(tmp[i]) - phi(u[i]);
            bpl__mc_outer(net, tmp, r_above, batch, n, n_above, g_b, NULL);
        }
    }
    return BPL_OK;
}
