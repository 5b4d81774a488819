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
    BPL_OK_OR_FAIL(bpl__net_reserve(net, batch));
    BPL_OK_OR_FAIL(bpl__net_layout(net));
    net->phase = phase;
    net->batch = batch;
    BPL_OK_OR_FAIL(bpl__run_forward(net, x));
    if (targets)
        BPL_OK_OR_FAIL(bpl__run_compute_targets(net, y, batch));
    if (update)
        test_run_gradients(net);
    net->phase = BPL_PHASE_IDLE;
}

unsigned int test_run_gradients(bpl_net *net)
{
    int phase = net->phase;
    if (phase == BPL_PHASE_IDLE)
        net->phase = BPL_PHASE_DIAGNOSE;
    unsigned int groups = 0;
    BPL_OK_OR_FAIL(bpl__run_update(net, &groups));
    net->phase = phase;
    return groups;
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
