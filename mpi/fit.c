/*
 * fit.c - data-parallel bpl_net_fit, evaluation shared out among the
 * processes, and checkpoints saved by one process.
 *
 * bpl_mpi_fit runs the core's bpl_net_fit one epoch at a time (which gives
 * bit for bit what one call for all epochs gives), so that between epochs
 * the processes can agree on the epoch's loss, on stopping, and on their
 * nets being still the same.
 */
#include "mpi_internal.h"

#include <stdio.h>

/* The rows this process trains in an epoch of n examples. */
static double rows_per_epoch(const bpl_mpi *m, size_t n, size_t batch)
{
    size_t rows = 0;
    for (size_t start = 0; start < n; start += batch) {
        size_t len = n - start < batch ? n - start : batch;
        rows += len * (size_t)(m->rank + 1) / (size_t)m->size -
                len * (size_t)m->rank / (size_t)m->size;
    }
    return (double)rows;
}

/* The core's progress callback.  A batch's stop request travels in the
 * next round, so every process stops after the same step. */
static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    bpl_mpi *m = user_data;
    (void)epoch;
    if (event == BPL_EVENT_EPOCH) {
        m->epoch_loss = loss;
        return 0;
    }
    if (m->stop_agreed)
        return 1;
    if (m->fn && m->fn(event, m->epoch, step, steps, loss, m->user_data))
        m->stop_request = 1;
    return 0;
}

static int check_fit(bpl_mpi *m, bpl_net *net, const bpl_dataset *ds, size_t batch)
{
    if (!net || !ds)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_fit: the net or dataset is NULL");
    if (net != m->net)
        return bpl_error_set(BPL_ERR_STATE, "bpl_mpi_fit: the net is not attached to the "
                                            "context (bpl_mpi_attach)");
    if (batch == 0)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_fit: batch_size must be > 0");
    /* Validation and buffers, without a step. */
    return bpl_net_fit(net, ds, 0, batch, NULL, NULL);
}

/* After the epoch's steps: its loss over every process, the stop requests,
 * and whether the nets are still the same everywhere. */
static int end_epoch(bpl_mpi *m, bpl_net *net, double rows, double *loss_out)
{
    int rc = bpl__mpi_round(m, NULL, rows, BPL_OK, m->epoch_loss, loss_out);
    uint64_t hash = 0;
    int same = 1;
    if (rc == BPL_OK)
        rc = bpl_net_state_hash(net, &hash);
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, hash, &same);
    if (rc == BPL_OK && !same) {
        char message[160];
        snprintf(message, sizeof message,
                 "bpl_mpi_fit: epoch %zu: the processes' nets are no longer the same", m->epoch);
        rc = bpl_error_set(BPL_ERR_STATE, message);
    }
    return rc;
}

static int fit_epochs(bpl_mpi *m, bpl_net *net, const bpl_dataset *ds, size_t epochs,
                      size_t batch)
{
    size_t n = bpl_dataset_example_count(ds);
    size_t steps = (n + batch - 1) / batch;
    double rows = rows_per_epoch(m, n, batch < n ? batch : n);
    for (m->epoch = 1; m->epoch <= epochs; m->epoch++) {
        m->failure_seen = 0;
        int rc = bpl_net_fit(net, ds, 1, batch, on_progress, m);
        if (rc != BPL_OK) {
            /* A failure no round has carried yet (after this process's
             * last reduction) still has to reach the others. */
            if (!m->failure_seen)
                bpl__mpi_round(m, NULL, 0.0, rc, 0.0, NULL);
            return rc;
        }
        int stopped = m->stop_agreed;
        double loss = 0.0;
        rc = end_epoch(m, net, rows, &loss);
        if (rc != BPL_OK)
            return rc;
        if (stopped)
            return BPL_OK; /* part of an epoch: no epoch event */
        int stop = m->fn && m->fn(BPL_EVENT_EPOCH, m->epoch, steps, steps, loss, m->user_data);
        int same = 0;
        rc = bpl__mpi_same_everywhere(m, (uint64_t)(stop || m->stop_agreed), &same);
        if (rc != BPL_OK)
            return rc;
        if (stop || m->stop_agreed || !same)
            return BPL_OK;
    }
    return BPL_OK;
}

BPL_API int bpl_mpi_fit(bpl_mpi *m, bpl_net *net, const bpl_dataset *ds, size_t epochs,
                        size_t batch_size, bpl_progress_fn fn, void *user_data)
{
    if (!m)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_fit: the context is NULL");
    int rc = bpl_mpi_agree(m, check_fit(m, net, ds, batch_size));
    /* The same loop on every process, or their collective calls would not
     * meet: the dataset's size, the epochs and the batch must agree. */
    int same_n = 0, same_epochs = 0, same_batch = 0;
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, (uint64_t)bpl_dataset_example_count(ds), &same_n);
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, (uint64_t)epochs, &same_epochs);
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, (uint64_t)batch_size, &same_batch);
    if (rc == BPL_OK && !same_n)
        rc = bpl_error_set(BPL_ERR_SHAPE, "bpl_mpi_fit: the processes' datasets differ in size");
    else if (rc == BPL_OK && (!same_epochs || !same_batch))
        rc = bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_fit: the processes were given "
                                                "different epochs or batch sizes");
    size_t n = 0;
    if (rc == BPL_OK)
        rc = bpl_net_gradient_size(net, &n);
    if (rc == BPL_OK)
        rc = bpl__mpi_reserve(m, n);
    rc = bpl_mpi_agree(m, rc);
    if (rc != BPL_OK)
        return rc;
    m->fn = fn;
    m->user_data = user_data;
    m->stop_request = m->stop_agreed = 0;
    rc = fit_epochs(m, net, ds, epochs, batch_size);
    m->fn = NULL;
    m->user_data = NULL;
    return rc;
}

/* ---- evaluation ------------------------------------------------------------------ */

static int evaluate_share(bpl_mpi *m, bpl_net *net, const bpl_dataset *ds, double sums[3])
{
    size_t n = bpl_dataset_example_count(ds);
    size_t lo = n * (size_t)m->rank / (size_t)m->size;
    size_t hi = n * (size_t)(m->rank + 1) / (size_t)m->size;
    sums[0] = sums[1] = sums[2] = 0.0;
    if (hi == lo)
        return BPL_OK;
    bpl_dataset *share = NULL;
    double accuracy = 0.0, loss = 0.0;
    int rc = bpl_dataset_slice(&share, ds, lo, hi - lo);
    if (rc == BPL_OK)
        rc = bpl_net_evaluate(net, share, &accuracy, &loss);
    bpl_dataset_destroy(share);
    sums[0] = accuracy * (double)(hi - lo);
    sums[1] = loss * (double)(hi - lo);
    sums[2] = (double)(hi - lo);
    return rc;
}

BPL_API int bpl_mpi_evaluate(bpl_mpi *m, bpl_net *net, const bpl_dataset *ds,
                             double *accuracy_out, double *loss_out)
{
    if (!m)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_evaluate: the context is NULL");
    double sums[3] = {0.0, 0.0, 0.0}, total[3];
    int rc = !net || !ds ? bpl_error_set(BPL_ERR_INVALID_ARG,
                                         "bpl_mpi_evaluate: the net or dataset is NULL")
                         : evaluate_share(m, net, ds, sums);
    rc = bpl_mpi_agree(m, rc);
    int same = 0;
    if (rc == BPL_OK)
        rc = bpl__mpi_same_everywhere(m, (uint64_t)bpl_dataset_example_count(ds), &same);
    if (rc == BPL_OK && !same)
        rc = bpl_error_set(BPL_ERR_SHAPE,
                           "bpl_mpi_evaluate: the processes' datasets differ in size");
    if (rc != BPL_OK)
        return rc;
    int mrc = MPI_Allreduce(sums, total, 3, MPI_DOUBLE, MPI_SUM, m->comm);
    if (mrc != MPI_SUCCESS)
        return bpl__mpi_error(mrc, "bpl_mpi_evaluate: MPI_Allreduce");
    if (accuracy_out)
        *accuracy_out = total[2] > 0.0 ? total[0] / total[2] : 0.0;
    if (loss_out)
        *loss_out = total[2] > 0.0 ? total[1] / total[2] : 0.0;
    return BPL_OK;
}

/* ---- checkpoints ------------------------------------------------------------------ */

BPL_API int bpl_mpi_save(bpl_mpi *m, const bpl_net *net, const char *path)
{
    if (!m)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "bpl_mpi_save: the context is NULL");
    int rc = m->rank == 0 ? bpl_net_save(net, path) : BPL_OK;
    return bpl_mpi_agree(m, rc);
}
