/*
 * dense.c - the building blocks of dense-layer learning rules: forward pass,
 * output error, error projection and weight gradients.  Each layer's work is
 * one GEMM followed by one fused elementwise pass.
 */
#include "bpl_internal.h"

#include <string.h>

static float *activation_of(const bpl_layer *layer)
{
    return layer->buffers[0].data;
}

static float *delta_of(const bpl_layer *layer)
{
    return layer->buffers[1].data;
}

static const float *input_of(const bpl_net *net, size_t l)
{
    return l == 0 ? net->x : activation_of(net->layers[l - 1]);
}

void bpl__forward_dense(bpl_net *net, const float *x)
{
    size_t batch = net->batch;
    bpl__profile *prof = bpl__net_profile(net);
    net->x = x;
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        float *out = activation_of(layer);
        bpl__gemm(prof, 0, 1, batch, layer->units, layer->inputs, 1.0f, input_of(net, l),
                  layer->inputs, layer->tensors[0].data, layer->inputs, 0.0f, out,
                  layer->units);
        bpl__activation_forward(layer->activation, out, layer->tensors[1].data, batch,
                                layer->units);
    }
}

double bpl__batch_loss(const bpl_net *net, const float *y)
{
    const bpl_layer *out = net->layers[net->n_layers - 1];
    return bpl__loss_sum(net->loss, out->activation, activation_of(out), y, net->batch,
                         out->units) /
           (double)net->batch;
}

static void output_delta(bpl_net *net, const float *y)
{
    bpl_layer *out = net->layers[net->n_layers - 1];
    bpl__loss_delta(net->loss, out->activation, activation_of(out), y, delta_of(out),
                    net->batch, out->units, 1.0f / (float)net->batch);
}

static void project_delta(bpl_net *net, size_t from, size_t to, const float *m,
                          int m_is_forward_weight)
{
    bpl_layer *src = net->layers[from], *dst = net->layers[to];
    float *d = delta_of(dst);
    if (m_is_forward_weight) /* [batch][from] x [from][to] */
        bpl__gemm(bpl__net_profile(net), 0, 0, net->batch, dst->units, src->units, 1.0f,
                  delta_of(src), src->units, m, dst->units, 0.0f, d, dst->units);
    else /* [batch][from] x ([to][from])^T */
        bpl__gemm(bpl__net_profile(net), 0, 1, net->batch, dst->units, src->units, 1.0f,
                  delta_of(src), src->units, m, src->units, 0.0f, d, dst->units);
    bpl__activation_backward(dst->activation, d, activation_of(dst),
                             net->batch * dst->units);
}

static void weight_gradients(bpl_net *net, size_t l)
{
    bpl_layer *layer = net->layers[l];
    const float *delta = delta_of(layer);
    bpl__gemm(bpl__net_profile(net), 1, 0, layer->units, layer->inputs, net->batch, 1.0f,
              delta, layer->units, input_of(net, l), layer->inputs, 0.0f,
              layer->tensors[0].grad, layer->inputs);
    float *gb = layer->tensors[1].grad;
    memset(gb, 0, layer->units * sizeof *gb);
    for (size_t i = 0; i < net->batch; i++) {
        const float *row = delta + i * layer->units;
        for (size_t j = 0; j < layer->units; j++)
            gb[j] += row[j];
    }
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
            project_delta(net, l, l - 1, net->layers[l]->tensors[0].data, 1);
            continue;
        }
        bpl_layer *src = net->layers[l];
        float *d = delta_of(below);
        bpl__gemm(NULL, 0, 0, net->batch, below->units, src->units, 1.0f, delta_of(src),
                  src->units, src->tensors[0].data, below->units, 0.0f, d, below->units);
        for (size_t i = 0; i < net->batch * below->units; i++)
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
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(m != NULL);
    int rc = check_step(net, net->batch, "bpl_net_project_delta");
    if (rc != BPL_OK)
        return rc;
    if (from >= net->n_layers || to >= from)
        return bpl__fail(BPL_ERR_SHAPE,
                         "bpl_net_project_delta: need to < from < %zu layers, got from %zu "
                         "to %zu",
                         net->n_layers, from, to);
    if (m_is_forward_weight && to + 1 != from)
        return bpl__fail(BPL_ERR_SHAPE,
                         "bpl_net_project_delta: a forward weight only sends to the layer "
                         "just below (from %zu to %zu)",
                         from, to);
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
