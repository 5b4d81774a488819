/*
 * step.c - the step driver: the one place that runs the attached rule's
 * hooks for a training step (bpl_net_train_batch, every step of
 * bpl_net_fit) and for a diagnostic pass (bpl_net_alignment).
 *
 * A training step (BPL_PHASE_TRAIN):
 *   forward(x)            the rule's dynamics; the loss of the output
 *   compute_targets(y)    errors, targets, second-phase states
 *   gradients(&groups)    gradients into the gradient block, the groups to train
 *   -- reduction point -- every trained gradient in one contiguous block
 *   optimisers            the groups' steps, all or nothing (optim.c)
 *   after_apply()         what the rule does once the step stands
 * A diagnostic pass (BPL_PHASE_DIAGNOSE) stops after gradients: it never
 * reduces (it measures this process's batch, and other processes do not
 * take part in it), never applies and never calls after_apply, and it
 * gives the net's generator back as it found it, so that a rule needs no
 * case of its own for diagnostics.
 *
 * A version-1 rule's update hook computes the gradients and steps them
 * through bpl_net_apply_gradients, which passes the same reduction point.
 */
#include "bpl_internal.h"

#include <math.h>
#include <string.h>

/* ---- the hooks, run as user code -------------------------------------------- */

/* The step hooks run marked as user code, so that what they call cannot
 * replace the rule or the layers under the step. */
static bpl__callout call_hook(bpl_net *net, const char *what)
{
    bpl_error_set(BPL_OK, "");
    return bpl__net_call_out(net, BPL__IN_STEP, what);
}

int bpl__run_forward(bpl_net *net, const float *x)
{
    bpl_rule *rule = net->rule;
    net->x = x;
    if (!rule) {
        bpl__forward_dense(net, x);
        return BPL_OK;
    }
    bpl__callout previous = call_hook(net, "a rule's forward hook");
    int rc = rule->vt.forward(rule->self, net, x, net->batch);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "forward", rc);
}

int bpl__run_compute_targets(bpl_net *net, const float *y, size_t batch)
{
    bpl_rule *rule = net->rule;
    bpl__callout previous = call_hook(net, "a rule's compute_targets hook");
    int rc = rule->vt.compute_targets(rule->self, net, y, batch);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "compute_targets", rc);
}

/* Every group the rule has an optimiser for. */
static unsigned int declared_groups(const bpl_rule *rule)
{
    unsigned int groups = 0;
    for (int g = 0; g < BPL__N_GROUPS; g++)
        if (rule->opt_declared[g])
            groups |= 1u << g;
    return groups;
}

static int run_gradients(bpl_net *net, unsigned int *groups)
{
    bpl_rule *rule = net->rule;
    *groups = declared_groups(rule);
    bpl__callout previous = call_hook(net, "a rule's gradients hook");
    int rc = rule->vt.gradients(rule->self, net, groups);
    bpl__net_return(net, previous);
    rc = bpl__hook_result(rule, "gradients", rc);
    if (rc == BPL_OK && (*groups & ~((1u << BPL__N_GROUPS) - 1u)))
        rc = bpl__fail(BPL_ERR_INVALID_ARG, "rule '%s' gradients: unknown group in 0x%x",
                       rule->name, *groups);
    return rc;
}

static int run_after_apply(bpl_net *net)
{
    bpl_rule *rule = net->rule;
    if (!rule->vt.after_apply)
        return BPL_OK;
    bpl__callout previous = call_hook(net, "a rule's after_apply hook");
    int rc = rule->vt.after_apply(rule->self, net);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "after_apply", rc);
}

static int run_legacy_update(bpl_net *net)
{
    bpl_rule *rule = net->rule;
    bpl__callout previous = call_hook(net, "a rule's update hook");
    int rc = rule->vt.update(rule->self, net);
    bpl__net_return(net, previous);
    return bpl__hook_result(rule, "update", rc);
}

/* ---- reduction and apply ------------------------------------------------------ */

void bpl__net_set_reducer(bpl_net *net, bpl__reduce_fn fn, void *data)
{
    net->reduce_fn = fn;
    net->reduce_data = data;
}

/* The reduction point.  Every trained gradient is in the net's gradient
 * block (the layout is valid from the start of the step), the groups to
 * step are known, and nothing has been applied: a reduction across
 * processes (the sum or mean of every process's block) goes here, so that
 * every process then takes the same, all-or-nothing step. */
static int reduce_and_apply(bpl_net *net, unsigned int groups, const char *caller)
{
    if (!net->layout_valid)
        return bpl__fail(BPL_ERR_INTERNAL, "%s: the gradient block is not laid out", caller);
    if (net->reduce_fn) {
        int rc = net->reduce_fn(net, net->grad_block, net->grad_size, groups,
                                net->reduce_data);
        if (rc != BPL_OK)
            return rc;
    }
    int rc = bpl__parallel_reduce(net, BPL_OK);
    if (rc != BPL_OK)
        return rc;
    return bpl__net_apply(net, groups, caller);
}

BPL_API int bpl_net_apply_gradients(bpl_net *net, unsigned int group_mask)
{
    BPL_CHECK_ARG(net != NULL);
    if (group_mask & ~((1u << BPL__N_GROUPS) - 1u))
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_apply_gradients: unknown group in mask 0x%x", group_mask);
    if (net->phase == BPL_PHASE_DIAGNOSE)
        return BPL_OK;
    /* Outside a step the gradient buffers hold the last step's gradients:
     * applying them again would be a second, unintended step. */
    if (net->phase != BPL_PHASE_TRAIN)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_net_apply_gradients: gradients are applied only inside a "
                         "training step (from a rule's update hook)%s%s",
                         net->callout.kinds ? ", not while the net runs " : "",
                         net->callout.kinds ? net->callout.what : "");
    if (!net->rule)
        return bpl__fail(BPL_ERR_STATE, "bpl_net_apply_gradients: no rule attached");
    /* The library steps the groups such a rule's gradients hook names:
     * stepping them here too would apply the gradients twice. */
    if (net->rule->vt.gradients)
        return bpl__fail(BPL_ERR_STATE,
                         "bpl_net_apply_gradients: rule '%s' has a gradients hook, so the "
                         "library applies its step; only a version-1 update hook calls this",
                         net->rule->name);
    return reduce_and_apply(net, group_mask, "bpl_net_apply_gradients");
}

/* ---- the step ------------------------------------------------------------------ */

int bpl__run_update(bpl_net *net, unsigned int *groups_out)
{
    *groups_out = 0;
    if (!net->rule->vt.gradients)
        return run_legacy_update(net);
    unsigned int groups;
    int rc = run_gradients(net, &groups);
    if (rc == BPL_OK && net->phase == BPL_PHASE_TRAIN) {
        rc = reduce_and_apply(net, groups, "the optimiser");
        if (rc == BPL_OK)
            rc = run_after_apply(net);
    }
    if (rc == BPL_OK)
        *groups_out = groups;
    return rc;
}

/* A user's rule may write parameters through borrowed pointers, past the
 * optimiser's all-or-nothing checks: a step that left NaN or Inf behind
 * must not report success (the values cannot be taken back, but the caller
 * learns at once, not at the next save). */
static int check_user_rule_left_finite(bpl_net *net)
{
    if (net->rule->builtin)
        return BPL_OK;
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        for (size_t t = 0; t < layer->n_tensors; t++) {
            const bpl__tensor *tensor = &layer->tensors[t];
            if (!tensor->pending && !bpl__all_finite(tensor->data, tensor->rows * tensor->cols))
                return bpl__fail(BPL_ERR_NUMERIC,
                                 "rule '%s' left NaN or Inf in tensor '%s' of layer %zu",
                                 net->rule->name, tensor->name, l);
        }
    }
    return BPL_OK;
}

/* forward, the loss (training only: it must be finite), compute_targets,
 * and the gradients with what follows them in this phase. */
static int run_step(bpl_net *net, const float *x, const float *y, size_t batch,
                    double *loss_out)
{
    int rc = bpl__run_forward(net, x);
    if (rc == BPL_OK && net->phase == BPL_PHASE_TRAIN) {
        *loss_out = bpl__batch_loss(net, y);
        if (!isfinite(*loss_out))
            rc = bpl__fail(BPL_ERR_NUMERIC,
                           "the loss is %g: training diverged (lower the learning rate); "
                           "parameters left unchanged",
                           *loss_out);
    }
    if (rc == BPL_OK)
        rc = bpl__run_compute_targets(net, y, batch);
    unsigned int groups;
    if (rc == BPL_OK)
        rc = bpl__run_update(net, &groups);
    if (rc == BPL_OK && net->phase == BPL_PHASE_TRAIN)
        rc = check_user_rule_left_finite(net);
    return rc;
}

int bpl__net_step(bpl_net *net, const float *x, const float *y, size_t batch, int phase,
                  double *loss_out)
{
    if (!net->parallel.weight_given)
        net->parallel.rows = (double)batch;
    net->parallel.weight_given = 0;
    net->parallel.reduced = net->parallel.failure_shared = 0;
    /* Tensors added since the last step join the block before any hook
     * borrows a gradient pointer: the layout never moves them mid-step. */
    int rc = bpl__net_layout(net);
    if (rc != BPL_OK)
        return phase == BPL_PHASE_TRAIN ? bpl__parallel_reduce(net, rc) : rc;
    double loss = 0.0;
    bpl__rng generator = net->rng, example_generator = net->parallel.example_rng;
    net->phase = phase;
    net->batch = batch;
    if (phase == BPL_PHASE_DIAGNOSE && net->grad_size)
        memset(net->grad_block, 0, net->grad_size * sizeof *net->grad_block);
    rc = run_step(net, x, y, batch, &loss);
    /* A step that failed before its reduction still takes part in it, with
     * its status, so that no other process waits for it. */
    if (phase == BPL_PHASE_TRAIN && (rc != BPL_OK || !net->parallel.reduced))
        rc = bpl__parallel_reduce(net, rc);
    if (phase == BPL_PHASE_DIAGNOSE) {
        /* what a diagnostic drew, a step will draw again */
        net->rng = generator;
        net->parallel.example_rng = example_generator;
    }
    net->phase = BPL_PHASE_IDLE;
    if (rc == BPL_OK && loss_out)
        *loss_out = loss;
    return rc;
}
