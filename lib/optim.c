/*
 * optim.c - optimisers (SGD, momentum, RMSprop, Adam) and the step that
 * applies a rule's gradients.
 *
 * Weight decay is L2 regularisation: weight_decay * w is added to the
 * gradient before the optimiser sees it.
 */
#include "bpl_internal.h"

#include <math.h>

static void sgd(const bpl__optim_config *c, float *w, const float *g, size_t n)
{
    float lr = (float)c->lr, wd = (float)c->weight_decay;
    for (size_t i = 0; i < n; i++)
        w[i] -= lr * (g[i] + wd * w[i]);
}

/* Heavy ball, as in PyTorch: v = mu v + g; w -= lr v. */
static void momentum(const bpl__optim_config *c, float *w, const float *g, float *m,
                     size_t n)
{
    float lr = (float)c->lr, mu = (float)c->momentum, wd = (float)c->weight_decay;
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] + (g[i] + wd * w[i]);
        w[i] -= lr * m[i];
    }
}

/* v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps). */
static void rmsprop(const bpl__optim_config *c, float *w, const float *g, float *v,
                    size_t n)
{
    float lr = (float)c->lr, rho = (float)c->rho, eps = (float)c->eps;
    float wd = (float)c->weight_decay;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        v[i] = rho * v[i] + (1.0f - rho) * gi * gi;
        w[i] -= lr * gi / (sqrtf(v[i]) + eps);
    }
}

/* Adam (Kingma & Ba) with bias-corrected moments. */
static void adam(const bpl__optim_config *c, uint64_t t, float *w, const float *g,
                 float *m, float *v, size_t n)
{
    float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    float wd = (float)c->weight_decay;
    float c1 = (float)(1.0 / (1.0 - pow(c->beta1, (double)t)));
    float c2 = (float)(1.0 / (1.0 - pow(c->beta2, (double)t)));
    float lr = (float)c->lr;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
    }
}

void bpl__optim_step(const bpl__optim_config *cfg, uint64_t t, float *w, const float *g,
                     float *m, float *v, size_t n)
{
    switch (cfg->kind) {
    case BPL_OPT_MOMENTUM: momentum(cfg, w, g, m, n); break;
    case BPL_OPT_RMSPROP: rmsprop(cfg, w, g, v, n); break;
    case BPL_OPT_ADAM: adam(cfg, t, w, g, m, v, n); break;
    default: sgd(cfg, w, g, n); break;
    }
}

static int group_in_mask(int group, unsigned int mask)
{
    return group >= 0 && group < BPL__N_GROUPS && (mask & (1u << group));
}

/* Every gradient of the selected groups is checked before any is applied,
 * so a NaN leaves the whole net as it was. */
static int check_gradients(bpl_net *net, unsigned int mask)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        for (size_t t = 0; t < layer->n_tensors; t++) {
            bpl__tensor *tensor = &layer->tensors[t];
            if (!group_in_mask(tensor->group, mask) || tensor->pending)
                continue;
            if (!bpl__all_finite(tensor->grad, tensor->rows * tensor->cols))
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "bpl_net_apply_gradients: gradient of '%s' in layer %zu "
                                 "has NaN or Inf; parameters left unchanged",
                                 tensor->name, l);
        }
    }
    return BPL_OK;
}

BPL_API int bpl_net_apply_gradients(bpl_net *net, unsigned int group_mask)
{
    BPL_CHECK_ARG(net != NULL);
    if (group_mask & ~((1u << BPL__N_GROUPS) - 1u))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_apply_gradients: unknown group in mask 0x%x", group_mask);
    if (!net->rule)
        return bpl__fail(BPL_ERR_STATE, "bpl_net_apply_gradients: no rule attached");
    if (net->phase == BPL_PHASE_DIAGNOSE)
        return BPL_OK;

    bpl__optim_config cfg[BPL__N_GROUPS];
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        if (!(group_mask & (1u << g)))
            continue;
        int rc = bpl__rule_optim_config(net->rule, g, &cfg[g]);
        if (rc != BPL_OK)
            return rc;
    }
    int rc = check_gradients(net, group_mask);
    if (rc != BPL_OK)
        return rc;

    for (int g = 0; g < BPL__N_GROUPS; g++)
        if (group_mask & (1u << g))
            net->optim_steps[g]++;
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        for (size_t t = 0; t < layer->n_tensors; t++) {
            bpl__tensor *tensor = &layer->tensors[t];
            if (!group_in_mask(tensor->group, group_mask) || tensor->pending)
                continue;
            bpl__optim_step(&cfg[tensor->group], net->optim_steps[tensor->group],
                            tensor->data, tensor->grad, tensor->m, tensor->v,
                            tensor->rows * tensor->cols);
        }
    }
    return BPL_OK;
}
