/*
 * kinds/blocks.c - the building blocks rules call on a layer, whatever its
 * kind: forward, send an error to the input, parameter gradients; and the
 * check that every layer's kind can do what a rule needs.
 */
#include "bpl_internal.h"

const float *bpl__layer_input(const bpl_layer *layer)
{
    const bpl_net *net = layer->net;
    return layer->index == 0 ? net->x : net->layers[layer->index - 1]->buffers[0].data;
}

void bpl__layer_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                        int activation, float *out)
{
    layer->kind->forward(net, layer, in, batch, activation, out);
}

void bpl__layer_send_error(bpl_net *net, const bpl_layer *layer, const float *through,
                           int transposed, const float *err, size_t batch, float alpha,
                           float beta, float *out)
{
    if (!through)
        through = bpl__layer_weight(layer)->data;
    layer->kind->send_error(net, layer, through, transposed, err, batch, alpha, beta, out);
}

void bpl__layer_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                          size_t batch, float alpha, float bias_scale, float bias_divisor)
{
    layer->kind->gradients(net, layer, err, in, batch, alpha, bias_scale, bias_divisor);
}

static const char *capability_name(unsigned cap)
{
    switch (cap) {
    case BPL__CAN_FORWARD: return "a forward pass";
    case BPL__CAN_SEND_ERROR: return "sending an error to its input";
    case BPL__CAN_GRADIENTS: return "parameter gradients";
    default: return "a dense weight matrix";
    }
}

int bpl__net_check_kinds(const bpl_net *net, unsigned needs, const char *rule, const char *caller)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl__kind *kind = net->layers[l]->kind;
        unsigned missing = needs & ~kind->caps;
        if (!missing)
            continue;
        unsigned first = missing & -missing;
        return bpl__fail(BPL_ERR_UNSUPPORTED,
                         "%s: rule '%s' needs %s, which layer %zu (kind '%s') does not "
                         "provide",
                         caller, rule, capability_name(first), l, kind->name);
    }
    return BPL_OK;
}
