/*
 * dense.c - the net-level passes of the standard rules, over the layers'
 * kinds: forward pass, output error, error projection and weight gradients,
 * and their public entry points.
 */
#include "bpl_internal.h"

static float *activation_of(const bpl_layer *layer)
{
    return layer->buffers[0].data;
}

static float *delta_of(const bpl_layer *layer)
{
    return layer->buffers[1].data;
}

void bpl__forward_dense(bpl_net *net, const float *x)
{
    net->x = x;
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        bpl__layer_forward(net, layer, bpl__layer_input(layer), net->batch, layer->activation,
                           activation_of(layer));
    }
}

double bpl__batch_loss(const bpl_net *net, const float *y)
{
    const bpl_layer *out = net->layers[net->n_layers - 1];
    return bpl__loss_sum(net->loss, out->activation, activation_of(out), y, net->batch,
                         out->size) /
           (double)net->batch;
}

static void output_delta(bpl_net *net, const float *y)
{
    bpl_layer *out = net->layers[net->n_layers - 1];
    bpl__loss_delta(net->loss, out->activation, activation_of(out), y, delta_of(out),
                    net->batch, out->size, 1.0f / (float)net->batch);
}

/* Layer `to`'s delta from `from`'s: through `from`'s weight (or a tensor of
 * its shape; m NULL: the weight, or the Jacobian of a layer without
 * parameters) to the layer just below, or, from higher up, through a
 * matrix [to][from] shaped like the product of the transposed weights
 * between. */
static void project_delta(bpl_net *net, size_t from, size_t to, const float *m,
                          int m_is_forward_weight)
{
    bpl_layer *src = net->layers[from], *dst = net->layers[to];
    float *d = delta_of(dst);
    if (to + 1 == from)
        bpl__layer_send_error(net, src, m, m && !m_is_forward_weight, delta_of(src),
                              net->batch, 1.0f, 0.0f, d);
    else /* [batch][from] x ([to][from])^T: dense maths across layers */
        bpl__gemm(bpl__net_profile(net), 0, 1, net->batch, dst->size, src->size, 1.0f,
                  delta_of(src), src->size, m, src->size, 0.0f, d, dst->size);
    bpl__activation_backward(dst->activation, d, activation_of(dst), net->batch * dst->size);
}

/* Nothing for a layer without parameters (bpl__layer_gradients). */
static void weight_gradients(bpl_net *net, size_t l)
{
    bpl_layer *layer = net->layers[l];
    bpl__layer_gradients(net, layer, delta_of(layer), bpl__layer_input(layer), net->batch,
                         1.0f, 1.0f, 1.0f);
}

/* Backprop for diagnostics.  A rule whose neurons are not the layer's
 * activation registers a "derivative" buffer with act'(a) of the batch; it
 * replaces the activation's own derivative. */
void bpl__backprop_gradients(bpl_net *net, const float *y)
{
    output_delta(net, y);
    for (size_t l = net->n_layers - 1; l > 0; l--) {
        bpl_layer *below = net->layers[l - 1];
        bpl__buffer *derivative = bpl__layer_find_buffer(below, "derivative");
        if (!derivative) {
            project_delta(net, l, l - 1, NULL, 1);
            continue;
        }
        float *d = delta_of(below);
        bpl__layer_send_error(net, net->layers[l], NULL, 0, delta_of(net->layers[l]),
                              net->batch, 1.0f, 0.0f, d);
        for (size_t i = 0; i < net->batch * below->size; i++)
            d[i] *= derivative->data[i];
    }
    for (size_t l = 0; l < net->n_layers; l++)
        weight_gradients(net, l);
}

/* ---- public building blocks, with their checks ------------------------------ */

static int check_step(const bpl_net *net, size_t batch, const char *caller)
{
    if (net->phase == BPL_PHASE_IDLE)
        return bpl__fail(BPL_ERR_STATE, "%s: call it from a rule hook during a step",
                         caller);
    if (batch != net->batch)
        return bpl__fail(BPL_ERR_SHAPE, "%s: batch %zu differs from the step's batch %zu",
                         caller, batch, net->batch);
    return BPL_OK;
}

BPL_API int bpl_net_forward_dense(bpl_net *net, const float *x, size_t batch)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(x != NULL);
    int rc = check_step(net, batch, "bpl_net_forward_dense");
    if (rc == BPL_OK)
        bpl__forward_dense(net, x);
    return rc;
}

BPL_API int bpl_net_output_delta(bpl_net *net, const float *y, size_t batch)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(y != NULL);
    int rc = check_step(net, batch, "bpl_net_output_delta");
    if (rc == BPL_OK)
        output_delta(net, y);
    return rc;
}

BPL_API int bpl_net_project_delta(bpl_net *net, size_t from, size_t to, const float *m,
                                  int m_is_forward_weight)
{
    static const char caller[] = "bpl_net_project_delta";
    BPL_CHECK_ARG(net != NULL);
    int rc = check_step(net, net->batch, caller);
    if (rc != BPL_OK)
        return rc;
    if (from >= net->n_layers || to >= from)
        return bpl__fail(BPL_ERR_SHAPE, "%s: need to < from < %zu layers, got from %zu to %zu",
                         caller, net->n_layers, from, to);
    if ((m_is_forward_weight || !m) && to + 1 != from)
        return bpl__fail(BPL_ERR_SHAPE,
                         "%s: %s only sends to the layer just below (from %zu to %zu)",
                         caller, m ? "a forward weight" : "a layer's own map (m NULL)", from,
                         to);
    const bpl_layer *src = net->layers[from];
    if (m && to + 1 == from && !bpl__layer_weight(src))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "%s: layer %zu (kind '%s') has no parameters: its error goes "
                         "through its own Jacobian (pass m NULL)",
                         caller, from, src->kind->name);
    project_delta(net, from, to, m, m_is_forward_weight);
    return BPL_OK;
}

BPL_API int bpl_net_weight_gradients(bpl_net *net, size_t layer)
{
    BPL_CHECK_ARG(net != NULL);
    int rc = check_step(net, net->batch, "bpl_net_weight_gradients");
    if (rc != BPL_OK)
        return rc;
    if (layer >= net->n_layers)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_weight_gradients: layer %zu of %zu does not exist", layer,
                         net->n_layers);
    weight_gradients(net, layer);
    return BPL_OK;
}
