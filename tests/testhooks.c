/*
 * testhooks.c - see testhooks.h.
 */
#include "testhooks.h"

#include <math.h>

#include "bpl_internal.h"
#include "testutil.h"

void test_run_hooks(bpl_net *net, int phase, const float *x, const float *y, size_t batch,
                    int targets, int update)
{
    bpl_rule *rule = bpl_net_rule(net);
    BPL_OK_OR_FAIL(bpl__net_reserve(net, batch));
    net->phase = phase;
    net->batch = batch;
    net->x = x;
    BPL_OK_OR_FAIL(rule->vt.forward(rule->self, net, x, batch));
    if (targets)
        BPL_OK_OR_FAIL(rule->vt.compute_targets(rule->self, net, y, batch));
    if (update)
        BPL_OK_OR_FAIL(rule->vt.update(rule->self, net));
    net->phase = BPL_PHASE_IDLE;
}

float *test_buffer(bpl_net *net, size_t l, const char *name)
{
    bpl__buffer *b = bpl__layer_find_buffer(bpl_net_layer(net, l), name);
    ck_assert_msg(b != NULL, "layer %zu has no buffer %s", l, name);
    return b->data;
}

float *test_tensor(bpl_net *net, size_t l, const char *name)
{
    float *data;
    BPL_OK_OR_FAIL(bpl_layer_tensor(bpl_net_layer(net, l), name, &data, NULL, NULL));
    return data;
}

float *test_grad(bpl_net *net, size_t l, const char *name)
{
    float *data;
    BPL_OK_OR_FAIL(bpl_layer_tensor_grad(bpl_net_layer(net, l), name, &data, NULL, NULL));
    return data;
}

double test_max_abs(const float *v, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(v[i]));
    return m;
}
