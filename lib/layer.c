/*
 * layer.c - layers: named tensors (parameters) and named batch buffers.
 */
#include "bpl_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

bpl__tensor *bpl__layer_find_tensor(const bpl_layer *layer, const char *name)
{
    for (size_t i = 0; i < layer->n_tensors; i++)
        if (strcmp(layer->tensors[i].name, name) == 0)
            return &layer->tensors[i];
    return NULL;
}

const bpl__kind *bpl__layer_kind(const bpl_layer *layer)
{
    return layer->kind;
}

void bpl__layer_shape(const bpl_layer *layer, size_t *dims, size_t *ndim)
{
    memcpy(dims, layer->shape, layer->ndim * sizeof *dims);
    *ndim = layer->ndim;
}

size_t bpl__layer_input_size(const bpl_layer *layer)
{
    const bpl_net *net = layer->net;
    return layer->index ? net->layers[layer->index - 1]->size : net->n_inputs;
}

void bpl__layer_input_shape(const bpl_layer *layer, size_t *dims, size_t *ndim)
{
    if (layer->index)
        bpl__layer_shape(layer->net->layers[layer->index - 1], dims, ndim);
    else
        bpl__net_input_shape(layer->net, dims, ndim);
}

/* The kind's parameters are the layer's first tensors, made with it and
 * never removed: found at once (NULL for a kind without). */
bpl__tensor *bpl__layer_weight(const bpl_layer *layer)
{
    const char *name = layer->kind->weight;
    return name ? bpl__layer_find_tensor(layer, name) : NULL;
}

size_t bpl__layer_kernel_area(const bpl_layer *layer)
{
    size_t area = layer->params.kernel_h * layer->params.kernel_w;
    return layer->kind == &bpl__conv2d_kind && area > 0 ? area : 1;
}

size_t bpl__layer_receptive(const bpl_layer *layer, size_t rows, size_t cols)
{
    const bpl__tensor *w = bpl__layer_weight(layer);
    if (!w || w->rows != rows || w->cols != cols)
        return 1;
    return bpl__layer_kernel_area(layer);
}

bpl__tensor *bpl__layer_bias(const bpl_layer *layer)
{
    const char *name = layer->kind->bias;
    return name ? bpl__layer_find_tensor(layer, name) : NULL;
}

bpl__buffer *bpl__layer_find_buffer(const bpl_layer *layer, const char *name)
{
    for (size_t i = 0; i < layer->n_buffers; i++)
        if (strcmp(layer->buffers[i].name, name) == 0)
            return &layer->buffers[i];
    return NULL;
}

static void free_tensor(bpl__tensor *t)
{
    bpl__free(t->data);
    bpl__tensor_release_training(t);
}

void bpl__layer_free(bpl_layer *layer)
{
    if (!layer)
        return;
    for (size_t i = 0; i < layer->n_tensors; i++)
        free_tensor(&layer->tensors[i]);
    for (size_t i = 0; i < layer->n_buffers; i++)
        bpl__free(layer->buffers[i].data);
    bpl__free(layer->tensors);
    bpl__free(layer->buffers);
    bpl__free(layer->work);
    if (layer->kind && layer->kind->release)
        layer->kind->release(layer);
    bpl__free(layer);
}

int bpl__layer_new_tensor(bpl_layer *layer, const char *name, size_t rows, size_t cols,
                          int group, bpl__tensor **out)
{
    size_t n, bytes;
    if (rows == 0 || cols == 0 || rows > BPL__MAX_UNITS || cols > BPL__MAX_UNITS ||
        !bpl__mul_size(rows, cols, &n) || !bpl__mul_size(n, sizeof(float), &bytes))
        return bpl__fail(BPL_ERR_OVERFLOW, "tensor '%s' of %zu x %zu is too large or empty",
                         name, rows, cols);
    if (layer->n_tensors == layer->cap_tensors) {
        size_t cap = layer->cap_tensors ? 2 * layer->cap_tensors : 4;
        bpl__tensor *grown = bpl__realloc(layer->tensors, cap * sizeof *grown);
        if (!grown)
            return bpl__fail(BPL_ERR_NOMEM, "tensor '%s': out of memory", name);
        layer->tensors = grown;
        layer->cap_tensors = cap;
    }
    bpl__tensor t = {.rows = rows, .cols = cols, .group = group};
    snprintf(t.name, sizeof t.name, "%s", name);
    t.data = bpl__calloc(1, bytes);
    if (!t.data || (group != BPL_GROUP_NONE && bpl__tensor_alloc_training(&t) != BPL_OK)) {
        free_tensor(&t);
        return bpl__fail(BPL_ERR_NOMEM, "tensor '%s' (%zu x %zu): out of memory", name,
                         rows, cols);
    }
    if (group != BPL_GROUP_NONE)
        bpl__net_invalidate_layout(layer->net);
    layer->tensors[layer->n_tensors] = t;
    *out = &layer->tensors[layer->n_tensors++];
    return BPL_OK;
}

/* A layer kind's parameters (weight and bias) stay in the forward group.  Every gradient
 * writer (bpl_net_weight_gradients, the diagnostics) writes theirs, and the
 * file format saves them as forward parameters; rather than teach each of
 * them about other groups, the group is refused here.  A forward parameter
 * that should not train is frozen (bpl_layer_set_frozen). */
static int keeps_forward_group(const bpl_layer *layer, const bpl__tensor *t, int group)
{
    int forward_parameter =
        layer->kind->weight && (t == bpl__layer_weight(layer) || t == bpl__layer_bias(layer));
    if (!forward_parameter || group == BPL_GROUP_FORWARD)
        return BPL_OK;
    return bpl__fail(BPL_ERR_INVALID_ARG,
                     "bpl_layer_add_tensor: '%s' of layer %zu is a forward parameter and "
                     "stays in BPL_GROUP_FORWARD, not group %d (freeze it with "
                     "bpl_layer_set_frozen instead)",
                     t->name, layer->index, group);
}

/* Give a tensor a new group.  A tensor that is no longer trained drops its
 * gradient, optimiser moments and frozen flag, which would otherwise be
 * saved with a group that has none (and refused when loaded). */
static int regroup_tensor(bpl_layer *layer, bpl__tensor *t, int group)
{
    if (group == BPL_GROUP_NONE) {
        bpl__tensor_release_training(t);
        t->frozen = 0;
    } else if (!t->grad) {
        int rc = bpl__tensor_alloc_training(t);
        if (rc != BPL_OK)
            return rc;
    }
    if (group != t->group || t->pending)
        bpl__net_invalidate_layout(layer->net); /* it moves, joins or leaves the block */
    t->group = group;
    return BPL_OK;
}

static int add_buffer(bpl_layer *layer, const char *name, size_t cols, int from_rule)
{
    bpl__buffer *existing = bpl__layer_find_buffer(layer, name);
    if (existing) {
        if (existing->cols == cols)
            return BPL_OK;
        return bpl__fail(BPL_ERR_SHAPE,
                         "bpl_layer_add_buffer: buffer '%s' of layer %zu exists with width "
                         "%zu, not %zu",
                         name, layer->index, existing->cols, cols);
    }
    if (layer->n_buffers == layer->cap_buffers) {
        size_t cap = layer->cap_buffers ? 2 * layer->cap_buffers : 4;
        bpl__buffer *grown = bpl__realloc(layer->buffers, cap * sizeof *grown);
        if (!grown)
            return bpl__fail(BPL_ERR_NOMEM, "bpl_layer_add_buffer: out of memory");
        layer->buffers = grown;
        layer->cap_buffers = cap;
    }
    bpl__buffer b = {.cols = cols, .from_rule = from_rule};
    snprintf(b.name, sizeof b.name, "%s", name);
    size_t n, bytes;
    if (layer->net->capacity > 0) {
        if (!bpl__mul_size(layer->net->capacity, cols, &n) ||
            !bpl__mul_size(n, sizeof(float), &bytes))
            return bpl__fail(BPL_ERR_OVERFLOW, "bpl_layer_add_buffer: '%s' too large", name);
        b.data = bpl__calloc(1, bytes);
        if (!b.data)
            return bpl__fail(BPL_ERR_NOMEM, "bpl_layer_add_buffer: out of memory");
    }
    layer->buffers[layer->n_buffers++] = b;
    return BPL_OK;
}

/* "3x28x28": a shape in a message. */
static void format_shape(const size_t *dims, size_t ndim, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ndim && used < size; i++) {
        int n = snprintf(buf + used, size - used, i ? "x%zu" : "%zu", dims[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* The layer's output shape from its kind, or the kind's reason prefixed
 * with the layer and its input's shape. */
static int set_shape(bpl_layer *layer, size_t units, const char *caller)
{
    size_t in_dims[BPL__MAX_DIMS], in_ndim;
    bpl__layer_input_shape(layer, in_dims, &in_ndim);
    int rc = layer->kind->output_shape(in_dims, in_ndim, units, &layer->params, layer->shape,
                                       &layer->ndim);
    if (rc != BPL_OK) {
        char shape[BPL__MAX_DIMS * 24], prefix[BPL__MAX_DIMS * 24 + 96];
        format_shape(in_dims, in_ndim, shape, sizeof shape);
        snprintf(prefix, sizeof prefix, "%s: layer %zu (%s) over input %s", caller,
                 layer->index, layer->kind->name, shape);
        bpl__error_prefix(prefix);
        return rc;
    }
    layer->size = 1;
    for (size_t i = 0; i < layer->ndim; i++)
        layer->size *= layer->shape[i];
    return BPL_OK;
}

/* The kind's workspace is allocated the first time the layer computes, not
 * when it is made: its size follows the geometry, not anything stored, so
 * a model file's layers cost only what the file holds until the net is
 * put to work (docs/reliability.md). */
int bpl__layer_ensure_work(bpl_layer *layer)
{
    if (layer->work || layer->work_size == 0)
        return BPL_OK;
    layer->work = bpl__malloc(layer->work_size * sizeof *layer->work);
    if (!layer->work)
        return bpl__fail(BPL_ERR_NOMEM,
                         "layer %zu (%s): a workspace of %zu floats: out of memory",
                         layer->index, layer->kind->name, layer->work_size);
    return BPL_OK;
}

int bpl__layer_create(bpl_net *net, const bpl__kind *kind, size_t units,
                      const bpl__kind_params *params, int activation, int init,
                      bpl_layer **out)
{
    char caller[BPL__NAME_MAX + 16];
    snprintf(caller, sizeof caller, "bpl_net_add_%s", kind->name);
    /* Pooling passes on what the layer below made: a model file that says
     * otherwise describes no layer the library builds. */
    if (!kind->weight && activation != BPL_ACT_LINEAR)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "%s: a %s layer has no activation of its own (linear), not %s",
                         caller, kind->name, bpl_activation_name(activation));
    /* A spatial layer's row is every map at every position: a softmax over
     * it is not a per-position distribution over channels, whatever was
     * meant. */
    if (kind != &bpl__dense_kind && activation == BPL_ACT_SOFTMAX)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "%s: softmax would normalise over every map and position at once; "
                         "end the net with a dense softmax layer",
                         caller);
    bpl_layer *layer = bpl__calloc(1, sizeof *layer);
    if (!layer)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    layer->net = net;
    layer->index = net->n_layers;
    layer->kind = kind;
    layer->activation = activation;
    layer->init = init;
    layer->units = units;
    if (params)
        layer->params = *params;
    int rc = set_shape(layer, units, caller);
    if (rc != BPL_OK) {
        bpl__free(layer);
        return rc;
    }
    rc = kind->build(layer);
    if (rc == BPL_OK)
        rc = add_buffer(layer, "activation", layer->size, 0);
    if (rc == BPL_OK)
        rc = add_buffer(layer, "delta", layer->size, 0);
    if (rc != BPL_OK) {
        bpl__layer_free(layer);
        bpl__error_prefix(caller);
        return rc;
    }
    *out = layer;
    return BPL_OK;
}

void bpl__layer_remove_rule_items(bpl_layer *layer, int pending_only)
{
    size_t kept = 0;
    for (size_t i = 0; i < layer->n_tensors; i++) {
        bpl__tensor *t = &layer->tensors[i];
        /* Pending tensors wait for the rule being attached, so only
         * bpl__net_clear_pending removes them. */
        int drop = pending_only ? t->pending : (t->from_rule && !t->pending);
        if (drop) {
            if (t->grad)
                bpl__net_invalidate_layout(layer->net);
            free_tensor(t);
        } else
            layer->tensors[kept++] = *t;
    }
    layer->n_tensors = kept;
    if (pending_only)
        return;
    kept = 0;
    for (size_t i = 0; i < layer->n_buffers; i++) {
        if (layer->buffers[i].from_rule)
            bpl__free(layer->buffers[i].data);
        else
            layer->buffers[kept++] = layer->buffers[i];
    }
    layer->n_buffers = kept;
}

void bpl__layer_remove_tensor(bpl_layer *layer, bpl__tensor *t)
{
    size_t index = (size_t)(t - layer->tensors);
    if (t->grad)
        bpl__net_invalidate_layout(layer->net);
    free_tensor(t);
    memmove(t, t + 1, (layer->n_tensors - index - 1) * sizeof *t);
    layer->n_tensors--;
}

/* ---- public accessors ------------------------------------------------------ */

BPL_API size_t bpl_layer_index(const bpl_layer *layer)
{
    return layer ? layer->index : 0;
}

BPL_API size_t bpl_layer_units(const bpl_layer *layer)
{
    return layer ? layer->size : 0;
}

BPL_API size_t bpl_layer_inputs(const bpl_layer *layer)
{
    return layer ? bpl__layer_input_size(layer) : 0;
}

BPL_API int bpl_layer_activation(const bpl_layer *layer)
{
    return layer ? layer->activation : -1;
}

BPL_API const char *bpl_layer_kind(const bpl_layer *layer)
{
    return layer ? layer->kind->name : NULL;
}

BPL_API int bpl_layer_get_shape(const bpl_layer *layer, size_t *dims, size_t capacity,
                                size_t *ndim_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(ndim_out != NULL);
    BPL_CHECK_ARG(dims != NULL || capacity == 0);
    *ndim_out = layer->ndim;
    if (!dims)
        return BPL_OK;
    if (capacity < layer->ndim)
        return bpl__fail(BPL_ERR_SHAPE,
                         "bpl_layer_get_shape: the shape has %zu dims, room for %zu",
                         layer->ndim, capacity);
    memcpy(dims, layer->shape, layer->ndim * sizeof *dims);
    return BPL_OK;
}

BPL_API int bpl_layer_get_window(const bpl_layer *layer, size_t *kernel_h, size_t *kernel_w,
                                 size_t *stride, size_t *padding)
{
    BPL_CHECK_ARG(layer != NULL);
    const bpl__kind_params *q = &layer->params;
    size_t *const out[] = {kernel_h, kernel_w, stride, padding};
    const size_t value[] = {q->kernel_h, q->kernel_w, q->stride, q->pad};
    for (size_t i = 0; i < 4; i++)
        if (out[i])
            *out[i] = value[i];
    return BPL_OK;
}

BPL_API size_t bpl_layer_param_count(const bpl_layer *layer)
{
    const bpl__tensor *w = layer ? bpl__layer_weight(layer) : NULL;
    if (!w)
        return 0;
    const bpl__tensor *b = bpl__layer_bias(layer);
    return w->rows * w->cols + (b ? b->rows * b->cols : 0);
}

BPL_API size_t bpl_layer_tensor_count(const bpl_layer *layer)
{
    return layer ? layer->n_tensors : 0;
}

BPL_API const char *bpl_layer_tensor_name(const bpl_layer *layer, size_t index)
{
    return layer && index < layer->n_tensors ? layer->tensors[index].name : NULL;
}

static int find_tensor(const bpl_layer *layer, const char *name, const char *caller,
                       bpl__tensor **out)
{
    *out = bpl__layer_find_tensor(layer, name);
    if (*out && !(*out)->pending)
        return BPL_OK;
    return bpl__fail(BPL_ERR_NOT_FOUND, "%s: layer %zu has no tensor '%s'", caller,
                     layer->index, name);
}

BPL_API int bpl_layer_tensor_info(const bpl_layer *layer, const char *name,
                                  size_t *rows_out, size_t *cols_out, int *group_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_tensor_info", &t);
    if (rc != BPL_OK)
        return rc;
    if (rows_out) *rows_out = t->rows;
    if (cols_out) *cols_out = t->cols;
    if (group_out) *group_out = t->group;
    return BPL_OK;
}

static int check_len(const bpl__tensor *t, size_t len, const char *caller, size_t index)
{
    if (len == t->rows * t->cols)
        return BPL_OK;
    return bpl__fail(BPL_ERR_SHAPE,
                     "%s: tensor '%s' of layer %zu holds %zu x %zu = %zu floats, not %zu",
                     caller, t->name, index, t->rows, t->cols, t->rows * t->cols, len);
}

BPL_API int bpl_layer_get_tensor(const bpl_layer *layer, const char *name, float *dst,
                                 size_t len)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(dst != NULL);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_get_tensor", &t);
    if (rc == BPL_OK)
        rc = check_len(t, len, "bpl_layer_get_tensor", layer->index);
    if (rc == BPL_OK)
        memcpy(dst, t->data, len * sizeof *dst);
    return rc;
}

BPL_API int bpl_layer_set_tensor(bpl_layer *layer, const char *name, const float *src,
                                 size_t len)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(src != NULL);
    if (layer->net->phase != BPL_PHASE_IDLE)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_layer_set_tensor: not allowed inside a step (rule hooks "
                         "write through bpl_layer_tensor)");
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_set_tensor", &t);
    if (rc == BPL_OK)
        rc = check_len(t, len, "bpl_layer_set_tensor", layer->index);
    if (rc != BPL_OK)
        return rc;
    if (!bpl__all_finite(src, len))
        return bpl__fail(BPL_ERR_NUMERIC,
                         "bpl_layer_set_tensor: values for '%s' contain NaN or Inf", name);
    memcpy(t->data, src, len * sizeof *src);
    return BPL_OK;
}

/* Tensors and buffers are added at the top level or by an attach hook;
 * from any other hook or callback the step, or bpl_net_fit, walks them. */
static int check_structure_change(const bpl_layer *layer, const char *caller)
{
    return bpl__net_check_reentry(layer->net, BPL__IN_ATTACH, caller);
}

/* What may not be created: more tensors than a file may hold, and, while
 * bpl_net_load restores a rule, any tensor the file does not hold (the
 * allocation would be the rule's choice, not paid for by the file). */
static int check_new_tensor(const bpl_layer *layer, const char *name)
{
    if (layer->net->restoring)
        return bpl__fail(BPL_ERR_FORMAT,
                         "the file lacks tensor '%s' of layer %zu, which its rule needs",
                         name, layer->index);
    if (layer->n_tensors >= BPL__MAX_TENSORS)
        return bpl__fail(BPL_ERR_OVERFLOW, "layer %zu has %d tensors, the most it may have",
                         layer->index, BPL__MAX_TENSORS);
    return BPL_OK;
}

BPL_API int bpl_layer_add_tensor(bpl_layer *layer, const char *name, size_t rows,
                                 size_t cols, int group, int init, double gain,
                                 int *created_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    if (created_out)
        *created_out = 0;
    int rc = check_structure_change(layer, "bpl_layer_add_tensor");
    if (rc != BPL_OK)
        return rc;
    if (!bpl__valid_name(name, BPL__NAME_MAX, 0))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_add_tensor: name must have 1-%d printable ASCII "
                         "characters",
                         BPL__NAME_MAX - 1);
    if (rows == 0 || cols == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_add_tensor: '%s' needs rows and cols > 0, got %zu x %zu",
                         name, rows, cols);
    if (group < BPL_GROUP_NONE || group >= BPL__N_GROUPS)
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_layer_add_tensor: unknown group %d",
                         group);
    if (!bpl__init_valid(init) || !isfinite(gain))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_add_tensor: unknown initialiser %d or non-finite gain",
                         init);
    if (!(fabs(gain) <= FLT_MAX))
        return bpl__fail(BPL_ERR_RANGE,
                         "bpl_layer_add_tensor: gain %g does not fit a float", gain);
    bpl__tensor *t = bpl__layer_find_tensor(layer, name);
    if (t) {
        if (t->rows != rows || t->cols != cols)
            return bpl__fail(BPL_ERR_SHAPE,
                             "bpl_layer_add_tensor: tensor '%s' of layer %zu exists as "
                             "%zu x %zu, not %zu x %zu",
                             name, layer->index, t->rows, t->cols, rows, cols);
        rc = keeps_forward_group(layer, t, group);
        if (rc == BPL_OK)
            rc = regroup_tensor(layer, t, group);
        if (rc != BPL_OK)
            return rc;
        if (t->pending)
            t->from_rule = 1;
        t->pending = 0;
        return BPL_OK;
    }
    rc = check_new_tensor(layer, name);
    if (rc == BPL_OK)
        rc = bpl__layer_new_tensor(layer, name, rows, cols, group, &t);
    if (rc != BPL_OK) {
        bpl__error_prefix("bpl_layer_add_tensor");
        return rc;
    }
    t->from_rule = (layer->net->callout.kinds & BPL__IN_ATTACH) || layer->net->rule != NULL;
    rc = bpl__init_fill(init, gain, t->data, rows, cols,
                        bpl__layer_receptive(layer, rows, cols), &layer->net->rng);
    if (rc != BPL_OK) {
        free_tensor(t);
        layer->n_tensors--;
        bpl__error_prefix("bpl_layer_add_tensor");
        return rc;
    }
    if (created_out)
        *created_out = 1;
    return BPL_OK;
}

BPL_API int bpl_layer_tensor(bpl_layer *layer, const char *name, float **data_out,
                             size_t *rows_out, size_t *cols_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(data_out != NULL);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_tensor", &t);
    if (rc != BPL_OK)
        return rc;
    *data_out = t->data;
    if (rows_out) *rows_out = t->rows;
    if (cols_out) *cols_out = t->cols;
    return BPL_OK;
}

BPL_API int bpl_layer_tensor_grad(bpl_layer *layer, const char *name, float **data_out,
                                  size_t *rows_out, size_t *cols_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(data_out != NULL);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_tensor_grad", &t);
    if (rc != BPL_OK)
        return rc;
    if (!t->grad)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_layer_tensor_grad: tensor '%s' of layer %zu is not trained "
                         "(group none) and has no gradient",
                         name, layer->index);
    *data_out = t->grad;
    if (rows_out) *rows_out = t->rows;
    if (cols_out) *cols_out = t->cols;
    return BPL_OK;
}

BPL_API int bpl_layer_init_tensor(bpl_layer *layer, const char *name, int init,
                                  double gain)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    if (!bpl__init_valid(init) || !isfinite(gain))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_init_tensor: unknown initialiser %d or non-finite gain",
                         init);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_init_tensor", &t);
    if (rc != BPL_OK)
        return rc;
    rc = bpl__init_fill(init, gain, t->data, t->rows, t->cols,
                        bpl__layer_receptive(layer, t->rows, t->cols), &layer->net->rng);
    if (rc != BPL_OK)
        bpl__error_prefix("bpl_layer_init_tensor");
    return rc;
}

BPL_API int bpl_layer_add_buffer(bpl_layer *layer, const char *name, size_t cols)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    int rc = check_structure_change(layer, "bpl_layer_add_buffer");
    if (rc != BPL_OK)
        return rc;
    if (!bpl__valid_name(name, BPL__NAME_MAX, 0))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_add_buffer: name must have 1-%d printable ASCII "
                         "characters",
                         BPL__NAME_MAX - 1);
    if (cols == 0 || cols > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_layer_add_buffer: width %zu outside 1..%zu", cols,
                         BPL__MAX_UNITS);
    return add_buffer(layer, name, cols, 1);
}

static int in_step(const bpl_layer *layer, const char *caller)
{
    if (layer->net->phase == BPL_PHASE_IDLE || layer->net->batch == 0)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: batch buffers exist only while a step runs (call from a "
                         "rule hook)",
                         caller);
    return BPL_OK;
}

BPL_API int bpl_layer_buffer(bpl_layer *layer, const char *name, float **data_out,
                             size_t *rows_out, size_t *cols_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    BPL_CHECK_ARG(data_out != NULL);
    int rc = in_step(layer, "bpl_layer_buffer");
    if (rc != BPL_OK)
        return rc;
    bpl__buffer *b = bpl__layer_find_buffer(layer, name);
    if (!b)
        return bpl__fail(BPL_ERR_NOT_FOUND, "bpl_layer_buffer: layer %zu has no buffer '%s'",
                         layer->index, name);
    *data_out = b->data;
    if (rows_out) *rows_out = layer->net->batch;
    if (cols_out) *cols_out = b->cols;
    return BPL_OK;
}

BPL_API int bpl_layer_input(bpl_layer *layer, const float **data_out, size_t *rows_out,
                            size_t *cols_out)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(data_out != NULL);
    int rc = in_step(layer, "bpl_layer_input");
    if (rc != BPL_OK)
        return rc;
    *data_out = bpl__layer_input(layer);
    if (rows_out) *rows_out = layer->net->batch;
    if (cols_out) *cols_out = bpl__layer_input_size(layer);
    return BPL_OK;
}

BPL_API int bpl_layer_set_frozen(bpl_layer *layer, const char *name, int frozen)
{
    BPL_CHECK_ARG(layer != NULL);
    BPL_CHECK_ARG(name != NULL);
    bpl__tensor *t;
    int rc = find_tensor(layer, name, "bpl_layer_set_frozen", &t);
    if (rc != BPL_OK)
        return rc;
    if (t->group == BPL_GROUP_NONE)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_layer_set_frozen: tensor '%s' of layer %zu is never trained",
                         name, layer->index);
    t->frozen = frozen != 0;
    return BPL_OK;
}

BPL_API int bpl_layer_frozen(const bpl_layer *layer, const char *name)
{
    if (!layer || !name)
        return 0;
    const bpl__tensor *t = bpl__layer_find_tensor(layer, name);
    return t && !t->pending && t->frozen;
}
