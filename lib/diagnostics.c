/*
 * diagnostics.c - how far a rule's updates are from backprop's.
 *
 * The angle between a rule's weight update and the true gradient is the
 * measure Lillicrap et al. (2016) and Guerguiev et al. (2017) report: below
 * 90 degrees the rule still descends the loss.  The gradient is backprop of
 * the net's loss through the activities the rule's own forward pass
 * computed, with each layer's activation derivative.
 */
#include "bpl_internal.h"

#include <math.h>
#include <string.h>

static double angle_degrees(const float *a, const float *b, size_t n)
{
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (na == 0.0 || nb == 0.0)
        return NAN;
    double c = dot / sqrt(na * nb);
    c = c > 1.0 ? 1.0 : (c < -1.0 ? -1.0 : c);
    return acos(c) * (180.0 / 3.14159265358979323846);
}

/* A diagnostic runs the rule's hooks like a step: at the top level or from
 * bpl_net_fit's progress callback, between steps. */
static int alignment(bpl_net *net, const float *x, const float *y, size_t batch,
                     double *angles_out, size_t n)
{
    static const char caller[] = "bpl_net_alignment";
    int rc = bpl__net_check_reentry(net, BPL__IN_PROGRESS, caller);
    if (rc == BPL_OK)
        rc = bpl__net_validate(net, caller);
    if (rc != BPL_OK)
        return rc;
    if (!net->rule)
        return bpl__fail(BPL_ERR_STATE, "%s: no rule attached", caller);
    if (n < net->n_layers)
        return bpl__fail(BPL_ERR_SHAPE, "%s: room for %zu angles, the net has %zu layers",
                         caller, n, net->n_layers);
    size_t n_x, n_y;
    rc = bpl__check_floats(batch, net->n_inputs, caller, "x", &n_x);
    if (rc == BPL_OK)
        rc = bpl__check_floats(batch, bpl_net_outputs(net), caller, "y", &n_y);
    if (rc != BPL_OK)
        return rc;
    if (!bpl__all_finite(x, n_x) || !bpl__all_finite(y, n_y))
        return bpl__fail(BPL_ERR_NUMERIC, "%s: x or y contains NaN or Inf", caller);
    rc = bpl__net_reserve(net, batch);
    if (rc != BPL_OK) {
        bpl__error_prefix(caller);
        return rc;
    }

    /* A layer without parameters (pooling) has no update: its angle is NaN. */
    size_t total = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl__tensor *w = bpl__layer_weight(net->layers[l]);
        total += w ? w->rows * w->cols : 0;
    }
    float *rule_grads = bpl__malloc((total ? total : 1) * sizeof *rule_grads);
    if (!rule_grads)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);

    rc = bpl__net_step(net, x, y, batch, BPL_PHASE_DIAGNOSE, NULL);
    if (rc == BPL_OK) {
        float *dst = rule_grads;
        for (size_t l = 0; l < net->n_layers; l++) {
            const bpl__tensor *w = bpl__layer_weight(net->layers[l]);
            if (!w)
                continue;
            memcpy(dst, w->grad, w->rows * w->cols * sizeof *dst);
            dst += w->rows * w->cols;
        }
        /* Backprop through the activities the rule's forward pass left: for
         * the dense rules that is the dense forward; for a rule with its own
         * dynamics (e.g. rates lambda_max sigma(k (W r + b))) it is the
         * gradient of that rule's function, up to a positive factor per layer,
         * to which angles are blind. */
        bpl__backprop_gradients(net, y);
        const float *ours = rule_grads;
        for (size_t l = 0; l < net->n_layers; l++) {
            const bpl__tensor *w = bpl__layer_weight(net->layers[l]);
            if (!w) {
                angles_out[l] = NAN;
                continue;
            }
            angles_out[l] = angle_degrees(ours, w->grad, w->rows * w->cols);
            ours += w->rows * w->cols;
        }
    } else {
        bpl__error_prefix(caller);
    }
    bpl__free(rule_grads);
    return rc;
}

BPL_API int bpl_net_alignment(bpl_net *net, const float *x, const float *y, size_t batch,
                              double *angles_out, size_t n)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(x != NULL);
    BPL_CHECK_ARG(y != NULL);
    BPL_CHECK_ARG(angles_out != NULL);
    BPL_CHECK_ARG(batch > 0);
    return bpl__net_finish(net, alignment(net, x, y, batch, angles_out, n));
}
