/*
 * gradient_block.c - where the gradients and optimiser moments of a net's
 * trained tensors live.
 *
 * Every trained tensor (a group other than BPL_GROUP_NONE, not waiting for
 * its rule) has its gradient in one contiguous block of the net, grouped by
 * parameter group (forward, then feedback) and, within a group, in layer
 * and tensor order.  Each group's optimiser holds its moments in two arrays
 * laid out exactly as the group's part of the block, so element i of the
 * part, of m and of v belong to the same parameter.  A step driver can thus
 * hand all trained gradients to a reduction across processes as one buffer
 * (bpl__net_gradient_block), and the optimiser walks flat arrays.
 *
 * A tensor that is added, loaded or regrouped first gets storage of its
 * own; the next layout (when a rule has been attached, and at the start of
 * every step or diagnostic if something changed since) moves everything
 * into new blocks in one pass, so adding many tensors costs linear time,
 * not a copy of the whole block per tensor.
 */
#include "bpl_internal.h"

#include <string.h>

static int trained(const bpl__tensor *t)
{
    return t->group != BPL_GROUP_NONE && !t->pending;
}

int bpl__tensor_alloc_training(bpl__tensor *t)
{
    size_t bytes = t->rows * t->cols * sizeof(float); /* checked when it was created */
    t->grad = bpl__calloc(1, bytes);
    t->m = bpl__calloc(1, bytes);
    t->v = bpl__calloc(1, bytes);
    t->placed = 0;
    if (t->grad && t->m && t->v)
        return BPL_OK;
    bpl__tensor_release_training(t);
    return bpl__fail(BPL_ERR_NOMEM, "tensor '%s': out of memory", t->name);
}

void bpl__tensor_release_training(bpl__tensor *t)
{
    if (!t->placed) {
        bpl__free(t->grad);
        bpl__free(t->m);
        bpl__free(t->v);
    }
    t->grad = t->m = t->v = NULL;
    t->placed = 0;
}

void bpl__net_invalidate_layout(bpl_net *net)
{
    net->layout_valid = 0;
}

void bpl__net_free_blocks(bpl_net *net)
{
    bpl__free(net->grad_block);
    net->grad_block = NULL;
    net->grad_size = 0;
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        bpl__free(net->optim[g].m);
        bpl__free(net->optim[g].v);
        net->optim[g].m = net->optim[g].v = NULL;
        net->optim[g].offset = net->optim[g].size = 0;
    }
    net->layout_valid = 0;
}

/* Floats each group needs: the sum over its trained tensors. */
static void group_sizes(const bpl_net *net, size_t size[BPL__N_GROUPS])
{
    memset(size, 0, BPL__N_GROUPS * sizeof *size);
    for (size_t l = 0; l < net->n_layers; l++) {
        const bpl_layer *layer = net->layers[l];
        for (size_t i = 0; i < layer->n_tensors; i++)
            if (trained(&layer->tensors[i]))
                size[layer->tensors[i].group] += layer->tensors[i].rows * layer->tensors[i].cols;
    }
}

static float *zeroed(size_t n)
{
    return n ? bpl__calloc(n, sizeof(float)) : NULL;
}

/* New blocks for `size`; all or nothing. */
static int alloc_blocks(const size_t size[BPL__N_GROUPS], float **grad,
                        float *m[BPL__N_GROUPS], float *v[BPL__N_GROUPS])
{
    size_t total = 0;
    int ok = 1;
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        total += size[g];
        m[g] = zeroed(size[g]);
        v[g] = zeroed(size[g]);
        ok &= !size[g] || (m[g] && v[g]);
    }
    *grad = zeroed(total);
    if (ok && (*grad || !total))
        return BPL_OK;
    bpl__free(*grad);
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        bpl__free(m[g]);
        bpl__free(v[g]);
    }
    return bpl__fail(BPL_ERR_NOMEM, "gradient block of %zu floats: out of memory", total);
}

int bpl__net_layout(bpl_net *net)
{
    if (net->layout_valid)
        return BPL_OK;
    size_t size[BPL__N_GROUPS], at[BPL__N_GROUPS];
    group_sizes(net, size);
    float *grad, *m[BPL__N_GROUPS], *v[BPL__N_GROUPS];
    int rc = alloc_blocks(size, &grad, m, v);
    if (rc != BPL_OK)
        return rc;
    memset(at, 0, sizeof at);
    for (size_t l = 0; l < net->n_layers; l++) {
        bpl_layer *layer = net->layers[l];
        for (size_t i = 0; i < layer->n_tensors; i++) {
            bpl__tensor *t = &layer->tensors[i];
            if (!trained(t))
                continue;
            size_t n = t->rows * t->cols, offset = at[t->group];
            size_t base = t->group == BPL_GROUP_FORWARD ? 0 : size[BPL_GROUP_FORWARD];
            memcpy(grad + base + offset, t->grad, n * sizeof *grad);
            memcpy(m[t->group] + offset, t->m, n * sizeof *grad);
            memcpy(v[t->group] + offset, t->v, n * sizeof *grad);
            bpl__tensor_release_training(t); /* its own storage, if it had any */
            t->grad = grad + base + offset;
            t->m = m[t->group] + offset;
            t->v = v[t->group] + offset;
            t->placed = 1;
            at[t->group] += n;
        }
    }
    bpl__net_free_blocks(net); /* the old blocks, now that everything moved */
    net->grad_block = grad;
    net->grad_size = size[BPL_GROUP_FORWARD] + size[BPL_GROUP_FEEDBACK];
    for (int g = 0; g < BPL__N_GROUPS; g++) {
        net->optim[g].m = m[g];
        net->optim[g].v = v[g];
        net->optim[g].offset = g == BPL_GROUP_FORWARD ? 0 : size[BPL_GROUP_FORWARD];
        net->optim[g].size = size[g];
    }
    net->layout_valid = 1;
    return BPL_OK;
}

int bpl__net_gradient_block(bpl_net *net, float **block_out, size_t *size_out)
{
    int rc = bpl__net_layout(net);
    if (rc != BPL_OK)
        return rc;
    *block_out = net->grad_block;
    *size_out = net->grad_size;
    return BPL_OK;
}
