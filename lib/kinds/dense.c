/*
 * kinds/dense.c - the dense layer kind, out = act(in W^T + b) with W
 * [units][inputs], and the dense matrix products that rules whose maths is
 * dense by nature (inverses, dendritic compartments) use on their own
 * matrices.  Each product is one GEMM followed by one elementwise pass.
 */
#include "bpl_internal.h"

#include <string.h>

void bpl__dense_map(bpl_net *net, const float *in, const float *m, const float *bias,
                    size_t batch, size_t rows, size_t cols, float beta, int activation,
                    float *out)
{
    bpl__gemm(bpl__net_profile(net), 0, 1, batch, rows, cols, 1.0f, in, cols, m, cols, beta,
              out, rows);
    bpl__activation_forward(activation, out, bias, batch, rows);
}

void bpl__dense_outer(bpl_net *net, const float *post, const float *pre, size_t batch,
                      size_t rows, size_t cols, float alpha, float bias_scale,
                      float bias_divisor, float *w_out, float *b_out)
{
    bpl__gemm(bpl__net_profile(net), 1, 0, rows, cols, batch, alpha, post, rows, pre, cols,
              0.0f, w_out, cols);
    if (!b_out)
        return;
    memset(b_out, 0, rows * sizeof *b_out);
    if (bias_scale == 1.0f && bias_divisor == 1.0f) { /* the plain sum of the fast path */
        for (size_t i = 0; i < batch; i++) {
            const float *row = post + i * rows;
            for (size_t j = 0; j < rows; j++)
                b_out[j] += row[j];
        }
        return;
    }
    /* s x / 1 and 1 x / d round as s x and x / d do: each rule's own rounding. */
    for (size_t i = 0; i < batch; i++) {
        const float *row = post + i * rows;
        for (size_t j = 0; j < rows; j++)
            b_out[j] += bias_scale * row[j] / bias_divisor;
    }
}

/* ---- the kind's operations ---------------------------------------------------- */

/* Every input shape is flattened: [units] whatever comes in. */
static int dense_output_shape(const size_t *in_dims, size_t in_ndim, size_t units,
                              const bpl__kind_params *params, size_t *dims, size_t *ndim)
{
    (void)in_dims;
    (void)in_ndim;
    (void)params;
    dims[0] = units;
    *ndim = 1;
    return BPL_OK;
}

/* A weight [units][inputs] and a bias [units]. */
static uint64_t dense_param_values(const size_t *in_dims, size_t in_ndim, size_t units,
                                   const bpl__kind_params *params)
{
    (void)params;
    uint64_t inputs = 1;
    for (size_t i = 0; i < in_ndim; i++)
        inputs *= in_dims[i]; /* a shape's product is at most BPL__MAX_UNITS */
    return (inputs + 1) * units;
}

static int dense_build(bpl_layer *layer)
{
    size_t units = layer->size;
    bpl__tensor *t;
    int rc = bpl__layer_new_tensor(layer, "weight", units, bpl__layer_input_size(layer),
                                   BPL_GROUP_FORWARD, &t);
    if (rc == BPL_OK)
        rc = bpl__layer_new_tensor(layer, "bias", 1, units, BPL_GROUP_FORWARD, &t);
    return rc;
}

static void dense_forward(bpl_net *net, const bpl_layer *layer, const float *in, size_t batch,
                          int activation, float *out)
{
    /* The weight and bias are the layer's first tensors: found at once. */
    bpl__dense_map(net, in, bpl__layer_weight(layer)->data, bpl__layer_bias(layer)->data,
                   batch, layer->size, bpl__layer_input_size(layer), 0.0f, activation, out);
}

static void dense_send_error(bpl_net *net, const bpl_layer *layer, const float *m,
                             int transposed, const float *err, size_t batch, float alpha,
                             float beta, float *out)
{
    size_t units = layer->size, inputs = bpl__layer_input_size(layer);
    if (!transposed) /* [batch][units] x [units][inputs] */
        bpl__gemm(bpl__net_profile(net), 0, 0, batch, inputs, units, alpha, err, units, m,
                  inputs, beta, out, inputs);
    else /* [batch][units] x ([inputs][units])^T */
        bpl__gemm(bpl__net_profile(net), 0, 1, batch, inputs, units, alpha, err, units, m,
                  units, beta, out, inputs);
}

static void dense_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                            size_t batch, float alpha, float bias_scale, float bias_divisor,
                            float *w_grad, float *b_grad)
{
    bpl__dense_outer(net, err, in, batch, layer->size, bpl__layer_input_size(layer), alpha,
                     bias_scale, bias_divisor, w_grad, b_grad);
}

const bpl__kind bpl__dense_kind = {
    .name = "dense",
    .caps = BPL__CAN_ALL | BPL__CAN_TRANSPOSE,
    .weight = "weight",
    .bias = "bias",
    .ignores_params = 1,
    .output_shape = dense_output_shape,
    .param_values = dense_param_values,
    .build = dense_build,
    .forward = dense_forward,
    .send_error = dense_send_error,
    .gradients = dense_gradients,
};
