/*
 * rate.c - the segregated rule's rate mode ("rate", the default): each
 * phase reduces exactly to one deterministic sweep, computed for the whole
 * batch with GEMMs (see common.c).
 */
#include "segregated.h"

/* Output soma at steady state under teaching conductances g_E = gain y and
 * g_I = gain (1 - y) (y NULL: none).  One formula for both phases, so that
 * without a teacher the target phase reproduces the forward phase exactly. */
static void output_soma(const model *m, const float *basal, const float *y, float *soma,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float g_e = y ? m->teaching * y[i] : 0.0f;
        float g_i = y ? m->teaching * (1.0f - y[i]) : 0.0f;
        soma[i] = (m->g_d * basal[i] + g_e * m->e_e + g_i * m->e_i) /
                  (m->g_l + m->g_d + g_e + g_i);
    }
}

/* out = sigma(lambda_max output_sigma Y_l^T): the plateau of a rate sweep. */
static int rate_plateau(bpl_net *net, const model *m, size_t l, const float *output_sigma,
                        size_t batch, float *out)
{
    float *y;
    size_t n = bpl__rule_units(net, l), n_top = bpl__rule_units(net, bpl__rule_top(net));
    TRY(bpl_layer_tensor(bpl_net_layer(net, l), "feedback", &y, NULL, NULL));
    TRY(bpl_gemm(net, 0, 1, batch, n, n_top, m->lambda_max, output_sigma, n_top, y, n_top,
                 0.0f, out, n));
    return bpl_activation_forward(BPL_ACT_SIGMOID, out, NULL, batch, n);
}

static void scale_copy(float *dst, const float *src, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = scale * src[i];
}

/* Forward phase: activation = sigma(C), presyn = the rates below. */
int bpl__seg_rate_forward(bpl_net *net, const model *m, const float *x, size_t batch)
{
    size_t top = bpl__rule_top(net);
    const float *below = x;
    for (size_t l = 0; l <= top; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        float *act, *presyn, *basal;
        size_t n = bpl__rule_units(net, l);
        TRY(bpl__rule_buffer(net, l, "activation", &act));
        TRY(bpl__rule_buffer(net, l, "presyn", &presyn));
        TRY(bpl__rule_buffer(net, l, "basal", &basal));
        scale_copy(presyn, below, batch * bpl_layer_inputs(layer), m->lambda_max);
        TRY(bpl_layer_forward(layer, presyn, batch, BPL_ACT_LINEAR, basal));
        if (l < top)
            scale_copy(act, basal, batch * n, m->k_b);
        else
            output_soma(m, basal, NULL, act, batch * n);
        TRY(bpl_activation_forward(BPL_ACT_SIGMOID, act, NULL, batch, n));
        below = act;
    }
    return BPL_OK;
}

/* Target phase: the output's teacher-driven rates and every plateau. */
int bpl__seg_rate_target(bpl_net *net, const model *m, const float *y, size_t batch)
{
    size_t top = bpl__rule_top(net), n_top = bpl__rule_units(net, top);
    float *basal, *s_t, *s_f;
    TRY(bpl__rule_buffer(net, top, "basal", &basal));
    TRY(bpl__rule_buffer(net, top, "target_rate", &s_t));
    TRY(bpl__rule_buffer(net, top, "activation", &s_f));
    output_soma(m, basal, y, s_t, batch * n_top);
    TRY(bpl_activation_forward(BPL_ACT_SIGMOID, s_t, NULL, batch, n_top));
    for (size_t l = 0; l < top; l++) {
        float *a_f, *a_t;
        TRY(bpl__rule_buffer(net, l, "plateau_f", &a_f));
        TRY(bpl__rule_buffer(net, l, "plateau_t", &a_t));
        TRY(rate_plateau(net, m, l, s_f, batch, a_f));
        TRY(rate_plateau(net, m, l, s_t, batch, a_t));
    }
    return BPL_OK;
}
