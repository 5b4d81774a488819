/*
 * parallel.c - what a data-parallel transport plugs into: this process's
 * share of each batch, the reduction of the step's gradient block with the
 * process's status, its own stream of per-example draws, and a hash that
 * tells whether the processes' nets are still in step.
 *
 * The core knows no transport: libbioplaus-mpi (or any other) gives a
 * reduction function, and the step driver calls it once per training step,
 * also when the step failed on this process before it, so that a failure
 * reaches every process instead of leaving the others waiting.
 */
#include "bpl_internal.h"

#include <stdio.h>
#include <string.h>

BPL_API int bpl_net_set_parallel(bpl_net *net, size_t rank, size_t size, bpl_reduce_fn reduce,
                                 void *user_data, uint64_t example_seed)
{
    BPL_CHECK_ARG(net != NULL);
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_set_parallel");
    if (rc != BPL_OK)
        return rc;
    if (size == 0 || rank >= size)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_set_parallel: process %zu of %zu does not exist", rank, size);
    if (size > 1 && !reduce)
        return bpl__fail(BPL_ERR_INVALID_ARG,
                         "bpl_net_set_parallel: %zu processes need a reduction function", size);
    bpl__parallel *p = &net->parallel;
    memset(p, 0, sizeof *p);
    p->rank = rank;
    p->size = size;
    p->reduce = reduce;
    p->user_data = user_data;
    p->own_stream = reduce != NULL;
    if (p->own_stream)
        bpl__rng_seed(&p->example_rng, example_seed);
    return BPL_OK;
}

BPL_API int bpl_net_gradient_size(bpl_net *net, size_t *n_out)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(n_out != NULL);
    *n_out = 0;
    int rc = bpl__net_check_reentry(net, 0, "bpl_net_gradient_size");
    if (rc == BPL_OK && net->rule)
        rc = bpl__net_layout(net);
    if (rc == BPL_OK && net->rule)
        *n_out = net->grad_size;
    return rc;
}

/* ---- the state hash ----------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

BPL_API int bpl_net_state_hash(const bpl_net *net, uint64_t *hash_out)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(hash_out != NULL);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        for (size_t t = 0; t < layer->n_tensors; t++) {
            const bpl__tensor *tensor = &layer->tensors[t];
            h = fnv1a(h, tensor->data, tensor->rows * tensor->cols * sizeof(float));
        }
    }
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        const bpl__optimizer *o = &net->optim[g];
        h = fnv1a(h, &o->steps, sizeof o->steps);
        if (o->m)
            h = fnv1a(h, o->m, o->size * sizeof(float));
        if (o->v)
            h = fnv1a(h, o->v, o->size * sizeof(float));
    }
    if (net->rule)
        for (size_t i = 0; i < net->rule->n_params; i++)
            h = fnv1a(h, &net->rule->params[i].value, sizeof(double));
    *hash_out = fnv1a(h, net->rng.s, sizeof net->rng.s);
    return BPL_OK;
}

/* ---- the step's share and reduction ------------------------------------------- */

void bpl__parallel_share(const bpl_net *net, size_t start, size_t rows, size_t *first,
                         size_t *count, double *weight)
{
    const bpl__parallel *p = &net->parallel;
    if (p->size <= 1) {
        *first = start;
        *count = rows;
        *weight = (double)rows;
        return;
    }
    /* rows * (rank + 1) cannot overflow: rows is a batch, at most the
     * dataset, and both fit in memory many times over. */
    size_t lo = rows * p->rank / p->size, hi = rows * (p->rank + 1) / p->size;
    *first = start + lo;
    *count = hi - lo;
    *weight = (double)(hi - lo);
    if (*count == 0) {
        /* A share of nothing still takes part in the step (every process
         * runs the same hooks and draws): one row, weighed 0. */
        *first = start;
        *count = 1;
    }
}

/* Called at the reduction point with BPL_OK, and at the end of a training
 * step with its status.  Every process must make the same sequence of
 * calls to the transport: a failure goes through it once (unless it came
 * from it, when every process knows already), and a step that never
 * reached its reduction (a version-1 rule that applied nothing) still
 * makes one call. */
int bpl__parallel_reduce(bpl_net *net, int status)
{
    bpl__parallel *p = &net->parallel;
    if (!p->reduce || p->failure_shared)
        return status;
    if (status != BPL_OK) {
        /* The failure's own message stays: keep it across the call. */
        char message[512];
        snprintf(message, sizeof message, "%s", bpl_last_error_message());
        p->failure_shared = 1;
        p->reduce(p->user_data, net->grad_block, net->grad_size, p->rows, status);
        return bpl__fail(status, "%s", message);
    }
    bpl_error_set(BPL_OK, "");
    bpl__callout previous = bpl__net_call_out(net, BPL__IN_STEP, "a transport's reduction");
    int rc = p->reduce(p->user_data, net->grad_block, net->grad_size, p->rows, BPL_OK);
    bpl__net_return(net, previous);
    p->reduced = 1;
    if (rc == BPL_OK)
        return BPL_OK;
    p->failure_shared = 1;
    if (bpl_last_error_message()[0] == '\0')
        return bpl__fail(rc, "a transport's reduction failed without a message");
    return rc;
}
