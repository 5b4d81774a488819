/*
 * arch.c - nets from an --arch list (bioplaus-train's syntax), built with
 * ReLU hidden layers and a 10-way softmax output, and the memory the
 * issue's theory allows them.
 */
#include "bench_conv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields of one "kind:a:b:c" item into v (up to 4); their count, or -1. */
static int fields(const char *item, char *kind, size_t kind_size, size_t *v)
{
    char copy[64];
    snprintf(copy, sizeof copy, "%s", item);
    char *save = NULL, *tok = strtok_r(copy, ":", &save);
    if (!tok)
        return -1;
    snprintf(kind, kind_size, "%s", tok);
    int n = 0;
    while ((tok = strtok_r(NULL, ":", &save)) != NULL) {
        char *end;
        unsigned long x = strtoul(tok, &end, 10);
        if (n == 4 || *end || end == tok)
            return -1;
        v[n++] = x;
    }
    return n;
}

int parse_arch(const char *name, const char *text, net_spec *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->arch, sizeof out->arch, "%s", text);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        if (out->n_layers == MAX_SPEC_LAYERS)
            return -1;
        spec_layer *l = &out->layers[out->n_layers++];
        size_t v[4] = {0};
        int n = fields(item, l->kind, sizeof l->kind, v);
        if (strcmp(l->kind, "conv") == 0 && n >= 2) {
            l->n = v[0];
            l->k = v[1];
            l->stride = n > 2 ? v[2] : 1;
            l->pad = n > 3 ? v[3] : 0;
        } else if ((strcmp(l->kind, "maxpool") == 0 || strcmp(l->kind, "avgpool") == 0) &&
                   (n == 1 || n == 2)) {
            l->k = v[0];
            l->stride = n > 1 ? v[1] : v[0];
        } else if (strcmp(l->kind, "dense") == 0 && n == 1) {
            l->n = v[0];
        } else {
            return -1;
        }
    }
    return out->n_layers ? 0 : -1;
}

static int add_layer(bpl_net *net, const spec_layer *l)
{
    if (strcmp(l->kind, "conv") == 0)
        return bpl_net_add_conv2d(net, l->n, l->k, l->k, l->stride, l->pad, BPL_ACT_RELU,
                                  BPL_INIT_HE_UNIFORM);
    if (strcmp(l->kind, "dense") == 0)
        return bpl_net_add_dense(net, l->n, BPL_ACT_RELU, BPL_INIT_HE_UNIFORM);
    if (strcmp(l->kind, "maxpool") == 0)
        return bpl_net_add_maxpool2d(net, l->k, l->stride);
    return bpl_net_add_avgpool2d(net, l->k, l->stride);
}

int build_net(const net_spec *spec, uint64_t seed, bpl_net **out)
{
    const size_t chw[] = {1, 28, 28};
    bpl_net *net;
    int rc = bpl_net_create(&net, 784, seed);
    if (rc != BPL_OK)
        return rc;
    rc = bpl_net_set_input_shape(net, chw, 3);
    for (size_t i = 0; rc == BPL_OK && i < spec->n_layers; i++)
        rc = add_layer(net, &spec->layers[i]);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY);
    if (rc != BPL_OK) {
        bpl_net_destroy(net);
        return rc;
    }
    *out = net;
    return BPL_OK;
}

double theory_bytes(bpl_net *net, size_t n_examples, size_t batch)
{
    double bytes = (double)n_examples * (784.0 + 1.0);             /* uint8 pixels, labels */
    bytes += 4.0 * sizeof(float) * (double)bpl_net_param_count(net); /* w, grad, m, v */
    for (size_t l = 0; l < bpl_net_layer_count(net); l++)
        bytes += 2.0 * sizeof(float) * (double)batch *
                 (double)bpl_layer_units(bpl_net_layer(net, l));
    return bytes + sizeof(float) * (double)batch * (784.0 + 10.0); /* the staged batch */
}
