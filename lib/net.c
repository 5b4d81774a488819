/*
 * net.c - networks: construction, introspection, the attached rule and the
 * batch workspace.
 */
#include "bpl_internal.h"

#include <stdio.h>
#include <string.h>

BPL_API int bpl_net_create(bpl_net **out, size_t n_inputs, uint64_t seed)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    if (n_inputs == 0 || n_inputs > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_create: n_inputs must be in 1..%zu, got %zu",
                         BPL__MAX_UNITS, n_inputs);
    bpl_net *net = bpl__calloc(1, sizeof *net);
    if (!net)
        return bpl__fail(BPL_ERR_NOMEM, "bpl_net_create: out of memory");
    net->n_inputs = n_inputs;
    net->in_shape[0] = n_inputs;
    net->in_ndim = 1;
    net->seed = seed;
    net->loss = BPL_LOSS_CROSS_ENTROPY;
    bpl__rng_seed(&net->rng, seed);
    *out = net;
    return BPL_OK;
}

void bpl__net_input_shape(const bpl_net *net, size_t *dims, size_t *ndim)
{
    memcpy(dims, net->in_shape, net->in_ndim * sizeof *dims);
    *ndim = net->in_ndim;
}

/* The loader's way in: the same checks, without a caller's re-entry. */
int bpl__net_set_input_shape(bpl_net *net, const size_t *dims, size_t ndim)
{
    static const char caller[] = "bpl_net_set_input_shape";
    if (ndim == 0 || ndim > BPL_MAX_DIMS)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: %zu dims, not 1..%d", caller, ndim,
                         BPL_MAX_DIMS);
    /* The first layer was built for the shape it saw. */
    if (net->n_layers)
        return bpl__fail(BPL_ERR_STATE, "%s: the net has a layer already", caller);
    size_t size = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] == 0)
            return bpl__fail(BPL_ERR_INVALID_ARG, "%s: dim %zu is 0", caller, i);
        if (!bpl__mul_size(size, dims[i], &size))
            return bpl__fail(BPL_ERR_OVERFLOW, "%s: the product of the dims overflows",
                             caller);
    }
    if (size != net->n_inputs)
        return bpl__fail(BPL_ERR_SHAPE, "%s: the dims hold %zu elements, the input %zu",
                         caller, size, net->n_inputs);
    memcpy(net->in_shape, dims, ndim * sizeof *dims);
    net->in_ndim = ndim;
    return BPL_OK;
}

BPL_API int bpl_net_set_input_shape(bpl_net *net, const size_t *dims, size_t ndim)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(dims != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_set_input_shape");
    return rc == BPL_OK ? bpl__net_set_input_shape(net, dims, ndim) : rc;
}

BPL_API int bpl_net_get_input_shape(const bpl_net *net, size_t *dims, size_t capacity,
                                    size_t *ndim_out)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(ndim_out != NULL);
    BPL_CHECK_ARG(dims != NULL || capacity == 0);
    *ndim_out = net->in_ndim;
    if (!dims)
        return BPL_OK;
    if (capacity < net->in_ndim)
        return bpl__fail(BPL_ERR_SHAPE,
                         "bpl_net_get_input_shape: the shape has %zu dims, room for %zu",
                         net->in_ndim, capacity);
    memcpy(dims, net->in_shape, net->in_ndim * sizeof *dims);
    return BPL_OK;
}

void bpl__net_clear_pending(bpl_net *net)
{
    net->pending_rule[0] = '\0';
    bpl__free(net->pending_params);
    net->pending_params = NULL;
    net->n_pending_params = 0;
    bpl__free(net->pending_state);
    net->pending_state = NULL;
    net->pending_state_size = 0;
    net->has_pending_state = 0;
    for (size_t l = 0; l < net->n_layers; l++)
        bpl__layer_remove_rule_items(net->layers[l], 1);
}

/* ---- user code ---------------------------------------------------------------- */

bpl__callout bpl__net_call_out(bpl_net *net, unsigned kind, const char *what)
{
    bpl__callout previous = net->callout;
    net->callout.kinds |= kind;
    net->callout.what = what;
    return previous;
}

void bpl__net_return(bpl_net *net, bpl__callout previous)
{
    net->callout = previous;
}

int bpl__net_check_reentry(const bpl_net *net, unsigned allowed, const char *caller)
{
    if (net->destroy_deferred)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: the net is being destroyed (bpl_net_destroy was called from "
                         "a hook or callback; it takes effect when the outermost call on "
                         "the net returns)",
                         caller);
    if (net->callout.kinds & ~allowed)
        return bpl__fail(BPL_ERR_STATE, "%s: not allowed while the net runs %s", caller,
                         net->callout.what);
    return BPL_OK;
}

/* Destroy the attached rule.  Its destroy hook is user code that may still
 * hold the net: it finds the net without a rule, and with its own calls
 * limited like any hook's. */
static void release_rule(bpl_net *net)
{
    bpl_rule *rule = net->rule;
    if (!rule)
        return;
    net->rule = NULL;
    rule->owner = NULL;
    bpl__callout previous = bpl__net_call_out(net, BPL__IN_DESTROY, "a rule's destroy hook");
    bpl__rule_free_owned(rule);
    bpl__net_return(net, previous);
}

static void destroy_now(bpl_net *net)
{
    release_rule(net);
    for (size_t l = 0; l < net->n_layers; l++)
        bpl__layer_free(net->layers[l]);
    bpl__free(net->layers);
    bpl__net_free_blocks(net);
    bpl__free(net->pending_params);
    bpl__free(net->pending_state);
    bpl__free(net->stage_x);
    bpl__free(net->stage_y);
    bpl__free(net);
}

/* From user code the net is running, the library still holds the net (and
 * will touch it when the user code returns): the destruction waits for the
 * outermost library call to end, in bpl__net_finish. */
BPL_API void bpl_net_destroy(bpl_net *net)
{
    if (!net)
        return;
    if (net->callout.kinds) {
        net->destroy_deferred = 1;
        return;
    }
    destroy_now(net);
}

int bpl__net_finish(bpl_net *net, int rc)
{
    if (net && net->destroy_deferred && net->callout.kinds == 0)
        destroy_now(net);
    return rc;
}

int bpl__net_append_layer(bpl_net *net, const bpl__kind *kind, size_t units,
                          const bpl__kind_params *params, int activation, int init,
                          int initialise)
{
    char caller[BPL__NAME_MAX + 16];
    snprintf(caller, sizeof caller, "bpl_net_add_%s", kind->name);
    if (net->n_layers >= BPL__MAX_LAYERS)
        return bpl__fail(BPL_ERR_OVERFLOW, "%s: at most %d layers", caller, BPL__MAX_LAYERS);
    if (net->n_layers == net->cap_layers) {
        size_t cap = net->cap_layers ? 2 * net->cap_layers : 8;
        bpl_layer **grown = bpl__realloc(net->layers, cap * sizeof *grown);
        if (!grown)
            return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
        net->layers = grown;
        net->cap_layers = cap;
    }
    bpl_layer *layer;
    int rc = bpl__layer_create(net, kind, units, params, activation, init, &layer);
    if (rc != BPL_OK)
        return rc;
    net->layers[net->n_layers++] = layer;
    if (net->capacity > 0) {
        /* Batch buffers exist already: give the new layer room too. */
        size_t capacity = net->capacity;
        net->capacity = 0;
        rc = bpl__net_reserve(net, capacity);
    }
    bpl__tensor *w = bpl__layer_weight(layer);
    if (rc == BPL_OK && initialise && w) /* a layer without parameters has none to draw */
        rc = bpl__init_fill(init, 1.0, w->data, w->rows, w->cols,
                            bpl__layer_receptive(layer, w->rows, w->cols), &net->rng);
    if (rc != BPL_OK) {
        net->n_layers--;
        bpl__layer_free(layer);
        /* The output staging buffer may have been sized for the new layer:
         * let the next batch size every buffer again. */
        net->capacity = 0;
        bpl__error_prefix(caller);
    }
    return rc;
}

BPL_API int bpl_net_add_dense(bpl_net *net, size_t units, int activation, int init)
{
    BPL_CHECK_ARG(net != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_add_dense");
    if (rc != BPL_OK)
        return rc;
    if (units == 0 || units > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_add_dense: units must be in 1..%zu, got %zu",
                         BPL__MAX_UNITS, units);
    if (!bpl__activation_valid(activation))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_net_add_dense: unknown activation %d",
                         activation);
    if (!bpl__init_valid(init))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_net_add_dense: unknown initialiser %d",
                         init);
    if (net->rule)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_net_add_dense: add layers before attaching a rule (rule '%s' "
                         "is attached)",
                         net->rule->name);
    return bpl__net_append_layer(net, &bpl__dense_kind, units, NULL, activation, init, 1);
}

BPL_API int bpl_net_add_conv2d(bpl_net *net, size_t out_channels, size_t kernel_h,
                               size_t kernel_w, size_t stride, size_t padding, int activation,
                               int init)
{
    static const char caller[] = "bpl_net_add_conv2d";
    BPL_CHECK_ARG(net != NULL);
    int rc = bpl__net_check_reentry(net, 0, caller);
    if (rc != BPL_OK)
        return rc;
    if (out_channels == 0 || out_channels > BPL__MAX_UNITS)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: out_channels must be in 1..%zu, got %zu",
                         caller, BPL__MAX_UNITS, out_channels);
    if (kernel_h == 0 || kernel_w == 0 || stride == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "%s: the kernel (%zux%zu) and the stride (%zu) must be > 0", caller,
                         kernel_h, kernel_w, stride);
    if (!bpl__activation_valid(activation))
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: unknown activation %d", caller, activation);
    if (!bpl__init_valid(init))
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: unknown initialiser %d", caller, init);
    if (net->rule)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: add layers before attaching a rule (rule '%s' is attached)",
                         caller, net->rule->name);
    const bpl__kind_params params = {
        .kernel_h = kernel_h, .kernel_w = kernel_w, .stride = stride, .pad = padding};
    return bpl__net_append_layer(net, &bpl__conv2d_kind, out_channels, &params, activation,
                                 init, 1);
}

/* A pooling layer over the layer below's maps (or the net's input). */
static int add_pool(bpl_net *net, const bpl__kind *kind, size_t window, size_t stride)
{
    char caller[BPL__NAME_MAX + 16];
    snprintf(caller, sizeof caller, "bpl_net_add_%s", kind->name);
    int rc = bpl__net_check_reentry(net, 0, caller);
    if (rc != BPL_OK)
        return rc;
    if (window == 0)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: the window must be > 0", caller);
    if (net->rule)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: add layers before attaching a rule (rule '%s' is attached)",
                         caller, net->rule->name);
    const bpl__kind_params params = {
        .kernel_h = window, .kernel_w = window, .stride = stride ? stride : window};
    /* Linear: a pooling layer passes on what the layer below's activation
     * made; and it has nothing to initialise. */
    return bpl__net_append_layer(net, kind, 0, &params, BPL_ACT_LINEAR, BPL_INIT_ZERO, 1);
}

BPL_API int bpl_net_add_maxpool2d(bpl_net *net, size_t window, size_t stride)
{
    BPL_CHECK_ARG(net != NULL);
    return add_pool(net, &bpl__maxpool2d_kind, window, stride);
}

BPL_API int bpl_net_add_avgpool2d(bpl_net *net, size_t window, size_t stride)
{
    BPL_CHECK_ARG(net != NULL);
    return add_pool(net, &bpl__avgpool2d_kind, window, stride);
}

BPL_API int bpl_net_set_loss(bpl_net *net, int loss)
{
    BPL_CHECK_ARG(net != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_set_loss");
    if (rc != BPL_OK)
        return rc;
    if (!bpl__loss_valid(loss))
        return bpl__fail(BPL_ERR_INVALID_ARG, "bpl_net_set_loss: unknown loss %d", loss);
    net->loss = loss;
    return BPL_OK;
}

BPL_API int bpl_net_loss(const bpl_net *net)
{
    return net ? net->loss : 0;
}

BPL_API size_t bpl_net_inputs(const bpl_net *net)
{
    return net ? net->n_inputs : 0;
}

BPL_API size_t bpl_net_outputs(const bpl_net *net)
{
    return net && net->n_layers ? net->layers[net->n_layers - 1]->size : 0;
}

BPL_API size_t bpl_net_layer_count(const bpl_net *net)
{
    return net ? net->n_layers : 0;
}

BPL_API size_t bpl_net_param_count(const bpl_net *net)
{
    size_t n = 0;
    for (size_t l = 0; net && l < net->n_layers; l++)
        n += bpl_layer_param_count(net->layers[l]);
    return n;
}

BPL_API uint64_t bpl_net_seed(const bpl_net *net)
{
    return net ? net->seed : 0;
}

BPL_API bpl_layer *bpl_net_layer(bpl_net *net, size_t index)
{
    return net && index < net->n_layers ? net->layers[index] : NULL;
}

BPL_API bpl_rule *bpl_net_rule(bpl_net *net)
{
    return net ? net->rule : NULL;
}

BPL_API int bpl_net_phase(const bpl_net *net)
{
    return net ? net->phase : BPL_PHASE_IDLE;
}

BPL_API int bpl_net_set_log_fn(bpl_net *net, bpl_log_fn fn, void *user_data)
{
    BPL_CHECK_ARG(net != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_set_log_fn");
    if (rc != BPL_OK)
        return rc;
    net->log_fn = fn;
    net->log_user_data = user_data;
    return BPL_OK;
}

void bpl__net_log(bpl_net *net, int level, const char *fmt, ...)
{
    if (!net->log_fn)
        return;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    bpl__callout previous = bpl__net_call_out(net, BPL__IN_LOG, "the log callback");
    net->log_fn(level, message, net->log_user_data);
    bpl__net_return(net, previous);
}

/* Saved hyperparameters of a pending rule go to the rule being attached. */
static int apply_pending_params(bpl_net *net, bpl_rule *rule)
{
    for (size_t i = 0; i < net->n_pending_params; i++) {
        const bpl__saved_param *p = &net->pending_params[i];
        if (!bpl__rule_find_param(rule, p->name)) {
            bpl__net_log(net, BPL_LOG_WARNING,
                         "saved hyperparameter '%s' is not declared by rule '%s'; ignored",
                         p->name, rule->name);
            continue;
        }
        int rc = bpl_rule_set(rule, p->name, p->value);
        if (rc != BPL_OK) {
            bpl__error_prefix("bpl_net_set_rule: saved hyperparameter");
            return rc;
        }
    }
    return BPL_OK;
}

/* Remove the attached rule and its tensors.  A rule adopting a saved state
 * keeps the saved optimiser step counts with the saved moments. */
static void detach_current_rule(bpl_net *net, int keep_optimiser_steps)
{
    for (size_t l = 0; l < net->n_layers; l++)
        bpl__layer_remove_rule_items(net->layers[l], 0);
    release_rule(net);
    if (!keep_optimiser_steps)
        for (int g = 0; g < BPL__N_GROUPS; g++)
            net->optim[g].steps = 0;
}

/* The attach hook, marked as user code: it may add tensors and buffers, and
 * nothing it calls may replace or free the rule being attached. */
static int run_attach(bpl_net *net, bpl_rule *rule)
{
    if (!rule->vt.attach)
        return BPL_OK;
    bpl_error_set(BPL_OK, "");
    bpl__callout previous = bpl__net_call_out(net, BPL__IN_ATTACH, "a rule's attach hook");
    int rc = rule->vt.attach(rule->self, net);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "attach", rc);
}

/* After a failure the net has no rule (the previous one is gone) and the
 * caller keeps its rule; what the attach hook added is removed. */
static int undo_attach(bpl_net *net, bpl_rule *rule, int rc)
{
    net->rule = NULL;
    rule->owner = NULL;
    for (size_t l = 0; l < net->n_layers; l++)
        bpl__layer_remove_rule_items(net->layers[l], 0);
    bpl__net_clear_pending(net);
    bpl__error_prefix("bpl_net_set_rule");
    return rc;
}

static int attach_rule(bpl_net *net, bpl_rule *rule)
{
    int adopt = net->pending_rule[0] != '\0' && strcmp(net->pending_rule, rule->name) == 0;
    if (adopt) {
        int rc = apply_pending_params(net, rule);
        if (rc != BPL_OK)
            return rc;
    }
    /* From here on the previous rule is gone, whatever attach says. */
    detach_current_rule(net, adopt);
    if (!adopt)
        bpl__net_clear_pending(net);

    /* The hook sees the rule as attached (bpl_net_rule, its hyperparameters). */
    net->rule = rule;
    rule->owner = net;
    /* The saved state comes first, so that attach knows it continues a
     * saved net (and keeps what a fresh attach would initialise). */
    int rc = BPL_OK;
    if (adopt && net->has_pending_state)
        rc = bpl__rule_load_state(rule, net, net->pending_state, net->pending_state_size);
    if (rc == BPL_OK)
        rc = run_attach(net, rule);
    if (rc != BPL_OK)
        return undo_attach(net, rule, rc);
    bpl__net_clear_pending(net); /* whatever the rule did not claim */
    /* Its tensors are all there: the gradient block takes its final shape
     * now rather than at the first step (which would lay it out anyway). */
    rc = bpl__net_layout(net);
    return rc == BPL_OK ? BPL_OK : undo_attach(net, rule, rc);
}

BPL_API int bpl_net_set_rule(bpl_net *net, bpl_rule *rule)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(rule != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_set_rule");
    if (rc != BPL_OK)
        return rc;
    if (rule->owner)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_set_rule: rule '%s' is already attached to a net",
                         rule->name);
    if (rule->destroying)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_set_rule: rule '%s' is being destroyed", rule->name);
    if (net->n_layers == 0)
        return bpl__fail(BPL_ERR_STATE, "bpl_net_set_rule: add layers before the rule");
    /* Before anything changes: a refused rule leaves the net as it was. */
    rc = bpl__net_check_kinds(net, rule->needs | rule->builtin_needs, rule->name,
                              "bpl_net_set_rule");
    if (rc != BPL_OK)
        return rc;
    return bpl__net_finish(net, attach_rule(net, rule));
}

/* ---- workspace ------------------------------------------------------------- */

static int grow(float **data, size_t rows, size_t cols)
{
    size_t n, bytes;
    if (!bpl__mul_size(rows, cols, &n) || !bpl__mul_size(n, sizeof(float), &bytes))
        return bpl__fail(BPL_ERR_OVERFLOW, "batch of %zu x %zu floats is too large", rows,
                         cols);
    float *grown = bpl__realloc(*data, bytes);
    if (!grown)
        return bpl__fail(BPL_ERR_NOMEM, "batch workspace of %zu bytes: out of memory",
                         bytes);
    *data = grown;
    return BPL_OK;
}

int bpl__net_reserve(bpl_net *net, size_t rows)
{
    for (size_t l = 0; l < net->n_layers; l++) {
        int rc = bpl__layer_ensure_work(net->layers[l]);
        if (rc != BPL_OK)
            return rc;
    }
    if (rows <= net->capacity)
        return BPL_OK;
    if (rows > BPL__MAX_BATCH)
        return bpl__fail(BPL_ERR_OVERFLOW, "batch of %zu rows exceeds the limit of %zu",
                         rows, BPL__MAX_BATCH);
    /* Buffers that grew keep their larger size if a later one fails; the
     * capacity only moves once all have grown. */
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        for (size_t b = 0; b < layer->n_buffers; b++) {
            int rc = grow(&layer->buffers[b].data, rows, layer->buffers[b].cols);
            if (rc != BPL_OK)
                return rc;
        }
    }
    size_t n_out = bpl_net_outputs(net);
    int rc = grow(&net->stage_x, rows, net->n_inputs);
    if (rc == BPL_OK && n_out)
        rc = grow(&net->stage_y, rows, n_out);
    if (rc != BPL_OK)
        return rc;
    net->capacity = rows;
    return BPL_OK;
}

int bpl__net_validate(const bpl_net *net, const char *caller)
{
    if (net->n_layers == 0)
        return bpl__fail(BPL_ERR_STATE, "%s: the net has no layers", caller);
    for (size_t l = 0; l + 1 < net->n_layers; l++)
        if (net->layers[l]->activation == BPL_ACT_SOFTMAX)
            return bpl__fail(BPL_ERR_STATE,
                             "%s: layer %zu uses softmax, which is only allowed on the "
                             "output layer",
                             caller, l);
    int out_act = net->layers[net->n_layers - 1]->activation;
    if (net->loss == BPL_LOSS_CROSS_ENTROPY && out_act != BPL_ACT_SOFTMAX &&
        out_act != BPL_ACT_SIGMOID)
        return bpl__fail(BPL_ERR_STATE,
                         "%s: cross-entropy needs a softmax or sigmoid output layer, not "
                         "%s (use BPL_LOSS_MSE)",
                         caller, bpl_activation_name(out_act));
    return BPL_OK;
}

/* ---- profiling --------------------------------------------------------------- */

bpl__profile *bpl__net_profile(bpl_net *net)
{
    return net->profile.on ? &net->profile : NULL;
}

BPL_API int bpl_net_set_profiling(bpl_net *net, int on)
{
    BPL_CHECK_ARG(net != NULL);
    /* A step in progress times itself against the profile it started with. */
    int rc = bpl__net_check_reentry(net, BPL__IN_PROGRESS, "bpl_net_set_profiling");
    if (rc != BPL_OK)
        return rc;
    memset(&net->profile, 0, sizeof net->profile);
    net->profile.on = on != 0;
    return BPL_OK;
}

BPL_API int bpl_net_profile(const bpl_net *net, double *step_seconds_out,
                            double *gemm_seconds_out, double *gemm_flops_out,
                            uint64_t *steps_out)
{
    BPL_CHECK_ARG(net != NULL);
    if (step_seconds_out) *step_seconds_out = net->profile.step_seconds;
    if (gemm_seconds_out) *gemm_seconds_out = net->profile.gemm_seconds;
    if (gemm_flops_out) *gemm_flops_out = net->profile.gemm_flops;
    if (steps_out) *steps_out = net->profile.steps;
    return BPL_OK;
}
