/*
 * kinds/blocks.c - the building blocks rules call on a layer, whatever its
 * kind: forward, send an error to the input, parameter gradients, and
 * their public, checked forms (bioplaus_rule.h); and the check that every
 * layer's kind can do what a rule needs.
 */
#include "bpl_internal.h"

#include <math.h>
#include <stdint.h>

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
    const bpl__tensor *w = bpl__layer_weight(layer);
    if (!through && w) /* without parameters, the kind's own Jacobian */
        through = w->data;
    layer->kind->send_error(net, layer, through, transposed, err, batch, alpha, beta, out);
}

void bpl__layer_gradients(bpl_net *net, bpl_layer *layer, const float *err, const float *in,
                          size_t batch, float alpha, float bias_scale, float bias_divisor)
{
    if (!layer->kind->gradients) /* no parameters */
        return;
    layer->kind->gradients(net, layer, err, in, batch, alpha, bias_scale, bias_divisor,
                           bpl__layer_weight(layer)->grad, bpl__layer_bias(layer)->grad);
}

void bpl__layer_gradients_into(bpl_net *net, bpl_layer *layer, const float *err,
                               const float *in, size_t batch, float alpha, float bias_scale,
                               float bias_divisor, float *w_grad, float *b_grad)
{
    layer->kind->gradients(net, layer, err, in, batch, alpha, bias_scale, bias_divisor, w_grad,
                           b_grad);
}

static const char *capability_name(unsigned cap)
{
    switch (cap) {
    case BPL__CAN_FORWARD: return "a forward pass";
    case BPL__CAN_SEND_ERROR: return "sending an error to its input";
    case BPL__CAN_GRADIENTS: return "parameter gradients";
    case BPL__CAN_TRANSPOSE:
        return "a transposed map of its weight's shape to run a learned inverse through";
    default: return "a dense weight matrix";
    }
}

int bpl__net_check_kinds(const bpl_net *net, unsigned needs, const char *rule, const char *caller)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl__kind *kind = net->layers[l]->kind;
        unsigned missing = needs & ~kind->caps;
        if (!kind->weight) /* nothing to take gradients of */
            missing &= ~(unsigned)BPL__CAN_GRADIENTS;
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

/* ---- the public blocks, with their checks -------------------------------------- */

/* What every public block checks: the layer, its kind's capability, and
 * the batch against the widths of `in` and `err` rows. */
static int check_block(bpl_layer *layer, unsigned cap, size_t batch, const char *caller)
{
    if (!(layer->kind->caps & cap))
        return bpl__fail(BPL_ERR_UNSUPPORTED, "%s: layer %zu (kind '%s') does not provide %s",
                         caller, layer->index, layer->kind->name, capability_name(cap));
    if (batch == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: batch must be > 0", caller);
    if (batch > BPL__MAX_BATCH) /* every BLAS dimension stays an int */
        return bpl__fail(BPL_ERR_OVERFLOW, "%s: batch %zu is above %zu rows", caller, batch,
                         BPL__MAX_BATCH);
    /* Rules call these blocks many times a step: rows narrower than this
     * cannot overflow with batch <= BPL__MAX_BATCH, and need no product. */
    const size_t safe = SIZE_MAX / sizeof(float) / BPL__MAX_BATCH;
    size_t n, in = bpl__layer_input_size(layer);
    int rc = in <= safe ? BPL_OK : bpl__check_floats(batch, in, caller, "the input rows", &n);
    if (rc == BPL_OK && layer->size > safe)
        rc = bpl__check_floats(batch, layer->size, caller, "the output rows", &n);
    if (rc == BPL_OK)
        rc = bpl__layer_ensure_work(layer);
    return rc;
}

BPL_API int bpl_layer_forward(bpl_layer *layer, const float *in, size_t batch, int activation,
                              float *out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(in != NULL);
    BPL_CHECK_ARG(out != NULL);
    if (!bpl__activation_valid(activation))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_layer_forward: unknown activation %d",
                         activation);
    int rc = check_block(layer, BPL__CAN_FORWARD, batch, "bpl_layer_forward");
    if (rc == BPL_OK)
        bpl__layer_forward(layer->net, layer, in, batch, activation, out);
    return rc;
}

/* A layer without parameters sends through its own Jacobian, and max
 * pooling's is taken at the layer's input of the step under way. */
static int check_own_jacobian(const bpl_layer *layer, const char *name, size_t batch)
{
    static const char caller[] = "bpl_layer_send_error";
    if (name)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "%s: layer %zu (kind '%s') has no parameters: its error goes "
                         "through its own Jacobian, not through tensor '%s' (pass NULL)",
                         caller, layer->index, layer->kind->name, name);
    if (!layer->kind->send_reads_input)
        return BPL_OK;
    const bpl_net *net = layer->net;
    if (net->phase == BPL_PHASE_IDLE || net->batch == 0)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: layer %zu (kind '%s') sends its error through the Jacobian "
                         "at its input of the current step: call it from a rule hook",
                         caller, layer->index, layer->kind->name);
    if (batch != net->batch)
        return bpl__fail(BPL_ERR_SHAPE,
                         "%s: layer %zu (kind '%s') reads its input of the step, %zu rows, "
                         "not %zu",
                         caller, layer->index, layer->kind->name, net->batch, batch);
    return BPL_OK;
}

/* The tensor an error is sent through: the weight, or one of its shape
 * (`transposed`: of its transpose's); NULL for a layer without parameters. */
static int find_through(const bpl_layer *layer, const char *name, int transposed,
                        size_t batch, const bpl__tensor **out)
{
    static const char caller[] = "bpl_layer_send_error";
    const bpl__tensor *w = bpl__layer_weight(layer);
    if (!w) {
        *out = NULL;
        return check_own_jacobian(layer, name, batch);
    }
    const bpl__tensor *t = name ? bpl__layer_find_tensor(layer, name) : w;
    if (!t)
        return bpl__fail(BPL_ERR_NOT_FOUND, "%s: layer %zu has no tensor '%s'", caller,
                         layer->index, name);
    size_t rows = transposed ? w->cols : w->rows, cols = transposed ? w->rows : w->cols;
    if (t->rows != rows || t->cols != cols)
        return bpl__fail(BPL_ERR_SHAPE,
                         "%s: tensor '%s' of layer %zu is %zu x %zu, not %zu x %zu (the "
                         "weight's shape%s)",
                         caller, t->name, layer->index, t->rows, t->cols, rows, cols,
                         transposed ? ", transposed" : "");
    *out = t;
    return BPL_OK;
}

BPL_API int bpl_layer_send_error(bpl_layer *layer, const char *through, int transposed,
                                 const float *err, size_t batch, float alpha, float beta,
                                 float *out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(err != NULL);
    BPL_CHECK_ARG(out != NULL);
    int rc = check_block(layer, BPL__CAN_SEND_ERROR, batch, "bpl_layer_send_error");
    const bpl__tensor *t = NULL;
    if (rc == BPL_OK)
        rc = find_through(layer, through, transposed != 0, batch, &t);
    if (rc == BPL_OK)
        bpl__layer_send_error(layer->net, layer, t ? t->data : NULL, transposed != 0, err,
                              batch, alpha, beta, out);
    return rc;
}

BPL_API int bpl_layer_gradients(bpl_layer *layer, const float *err, const float *in,
                                size_t batch, float alpha, float bias_scale,
                                float bias_divisor)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(err != NULL);
    BPL_CHECK_ARG(in != NULL);
    if (!isfinite(alpha) || !isfinite(bias_scale) || !isfinite(bias_divisor) ||
        bias_divisor == 0.0f)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_gradients: the factors must be finite and the divisor "
                         "nonzero, got %g, %g, %g",
                         (double)alpha, (double)bias_scale, (double)bias_divisor);
    int rc = check_block(layer, BPL__CAN_GRADIENTS, batch, "bpl_layer_gradients");
    if (rc == BPL_OK)
        bpl__layer_gradients(layer->net, layer, err, in, batch, alpha, bias_scale,
                             bias_divisor);
    return rc;
}
