/*
 * train.c - training steps, fitting over a dataset, prediction and
 * evaluation: the checks and loops around the step driver (step.c).
 */
#include "bpl_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void warn_about_blas_once(bpl_net *net)
{
    if (net->blas_checked)
        return;
    net->blas_checked = 1;
    const char *warning = bpl__blas_warning();
    if (warning)
        bpl__net_log(net, BPL_LOG_WARNING, "%s", warning);
}

/* One step on a batch already checked and fitting the workspace: the step
 * driver's, timed when profiling is on. */
static int train_step(bpl_net *net, const float *x, const float *y, size_t batch,
                      double *loss_out)
{
    double start = net->profile.on ? bpl__now() : 0.0;
    warn_about_blas_once(net);
    int rc = bpl__net_step(net, x, y, batch, BPL_PHASE_TRAIN, loss_out);
    if (net->profile.on) {
        net->profile.step_seconds += bpl__now() - start;
        net->profile.steps++;
    }
    return rc;
}

/* Training belongs to the caller that started it: no hook or callback of
 * the net may train it (bpl_net_fit's own loop would be changed under it). */
static int check_trainable(bpl_net *net, const char *caller)
{
    int rc = bpl__net_check_reentry(net, 0, caller);
    if (rc == BPL_OK)
        rc = bpl__net_validate(net, caller);
    if (rc != BPL_OK)
        return rc;
    if (!net->rule)
        return bpl__fail(BPL_ERR_STATE, "%s: no rule attached (bpl_net_set_rule)", caller);
    return BPL_OK;
}

int bpl__check_floats(size_t rows, size_t cols, const char *caller, const char *what,
                      size_t *n_out)
{
    size_t bytes;
    if (bpl__mul_size(rows, cols, n_out) && bpl__mul_size(*n_out, sizeof(float), &bytes))
        return BPL_OK;
    return bpl__fail(BPL_ERR_OVERFLOW, "%s: %s of %zu x %zu floats is too large to address",
                     caller, what, rows, cols);
}

static int check_finite(const float *v, size_t n, const char *caller, const char *what)
{
    if (bpl__all_finite(v, n))
        return BPL_OK;
    return bpl__fail(BPL_ERR_NUMERIC, "%s: %s contains NaN or Inf", caller, what);
}

static int reserve(bpl_net *net, size_t rows, const char *caller)
{
    int rc = bpl__net_reserve(net, rows);
    if (rc != BPL_OK)
        bpl__error_prefix(caller);
    return rc;
}

static int train_batch(bpl_net *net, const float *x, const float *y, size_t batch,
                       double *loss_out)
{
    static const char caller[] = "bpl_net_train_batch";
    size_t n_x, n_y;
    int rc = check_trainable(net, caller);
    if (rc == BPL_OK)
        rc = bpl__check_floats(batch, net->n_inputs, caller, "x", &n_x);
    if (rc == BPL_OK)
        rc = bpl__check_floats(batch, bpl_net_outputs(net), caller, "y", &n_y);
    if (rc == BPL_OK)
        rc = check_finite(x, n_x, caller, "x");
    if (rc == BPL_OK)
        rc = check_finite(y, n_y, caller, "y");
    if (rc == BPL_OK)
        rc = reserve(net, batch, caller);
    if (rc == BPL_OK) {
        rc = train_step(net, x, y, batch, loss_out);
        if (rc != BPL_OK)
            bpl__error_prefix(caller);
    }
    return rc;
}

BPL_API int bpl_net_train_batch(bpl_net *net, const float *x, const float *y,
                                size_t batch, double *loss_out)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(x != NULL);
    BPL_CHECK_ARG(y != NULL);
    BPL_CHECK_ARG(batch > 0);
    return bpl__net_finish(net, train_batch(net, x, y, batch, loss_out));
}

/* ---- inference ------------------------------------------------------------- */

/* Inference runs between steps: at the top level or from bpl_net_fit's
 * progress callback, never from a hook (the step's buffers are in use). */
static int check_inference(bpl_net *net, const char *caller)
{
    int rc = bpl__net_check_reentry(net, BPL__IN_PROGRESS, caller);
    if (rc == BPL_OK)
        rc = bpl__net_validate(net, caller);
    if (rc != BPL_OK)
        return rc;
    return reserve(net, BPL__INFERENCE_ROWS, caller);
}

/* Rows of the inference chunk that starts at `start` of `total`. */
static size_t chunk_rows(size_t start, size_t total)
{
    return total - start < BPL__INFERENCE_ROWS ? total - start : BPL__INFERENCE_ROWS;
}

/* Forward `rows` rows of x; the output is in the output layer's activation. */
static int forward_rows(bpl_net *net, const float *x, size_t rows)
{
    net->phase = BPL_PHASE_PREDICT;
    net->batch = rows;
    int rc = bpl__run_forward(net, x);
    net->phase = BPL_PHASE_IDLE;
    return rc;
}

static const float *output_of(const bpl_net *net)
{
    return net->layers[net->n_layers - 1]->buffers[0].data;
}

static int predict(bpl_net *net, const float *x, size_t batch, float *out, size_t out_len)
{
    static const char caller[] = "bpl_net_predict";
    int rc = check_inference(net, caller);
    if (rc != BPL_OK)
        return rc;
    size_t n_out = bpl_net_outputs(net), n_x, n_y;
    rc = bpl__check_floats(batch, n_out, caller, "out", &n_y);
    if (rc == BPL_OK)
        rc = bpl__check_floats(batch, net->n_inputs, caller, "x", &n_x);
    if (rc != BPL_OK)
        return rc;
    if (out_len != n_y)
        return bpl__fail(BPL_ERR_SHAPE,
                         "%s: out_len %zu != batch %zu x outputs %zu", caller, out_len,
                         batch, n_out);
    rc = check_finite(x, n_x, caller, "x");
    for (size_t start = 0; rc == BPL_OK && start < batch; start += BPL__INFERENCE_ROWS) {
        size_t rows = chunk_rows(start, batch);
        rc = forward_rows(net, x + start * net->n_inputs, rows);
        if (rc == BPL_OK)
            memcpy(out + start * n_out, output_of(net), rows * n_out * sizeof *out);
    }
    if (rc != BPL_OK && rc != BPL_ERR_NUMERIC)
        bpl__error_prefix(caller);
    return rc;
}

BPL_API int bpl_net_predict(bpl_net *net, const float *x, size_t batch, float *out,
                            size_t out_len)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(x != NULL);
    BPL_CHECK_ARG(out != NULL);
    BPL_CHECK_ARG(batch > 0);
    return bpl__net_finish(net, predict(net, x, batch, out, out_len));
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

static int check_dataset(const bpl_net *net, const bpl_dataset *ds, const char *caller)
{
    if (ds->n_features != net->n_inputs)
        return bpl__fail(BPL_ERR_SHAPE, "%s: dataset has %zu features, the net %zu inputs",
                         caller, ds->n_features, net->n_inputs);
    if (ds->n_targets != bpl_net_outputs(net))
        return bpl__fail(BPL_ERR_SHAPE, "%s: dataset has %zu targets, the net %zu outputs",
                         caller, ds->n_targets, bpl_net_outputs(net));
    return BPL_OK;
}

static int evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy_out,
                    double *loss_out)
{
    static const char caller[] = "bpl_net_evaluate";
    int rc = check_inference(net, caller);
    if (rc == BPL_OK)
        rc = check_dataset(net, ds, caller);
    if (rc != BPL_OK)
        return rc;
    size_t n_out = ds->n_targets, correct = 0;
    double loss = 0.0;
    int act = net->layers[net->n_layers - 1]->activation;
    for (size_t start = 0; start < ds->n; start += BPL__INFERENCE_ROWS) {
        size_t rows = chunk_rows(start, ds->n);
        bpl__dataset_gather_range(ds, start, rows, net->stage_x, net->stage_y);
        rc = forward_rows(net, net->stage_x, rows);
        if (rc != BPL_OK) {
            bpl__error_prefix(caller);
            return rc;
        }
        const float *out = output_of(net);
        for (size_t i = 0; i < rows; i++)
            correct += argmax(out + i * n_out, n_out) ==
                       argmax(net->stage_y + i * n_out, n_out);
        loss += bpl__loss_sum(net->loss, act, out, net->stage_y, rows, n_out);
    }
    if (accuracy_out)
        *accuracy_out = ds->n ? (double)correct / (double)ds->n : 0.0;
    if (loss_out)
        *loss_out = ds->n ? loss / (double)ds->n : 0.0;
    return BPL_OK;
}

BPL_API int bpl_net_evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy_out,
                             double *loss_out)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(ds != NULL);
    return bpl__net_finish(net, evaluate(net, ds, accuracy_out, loss_out));
}

/* ---- fitting ------------------------------------------------------------------ */

/* Call the progress callback, marked as user code; nonzero: stop training,
 * which a net destroyed from a hook or callback also asks for. */
static int report(bpl_net *net, bpl_progress_fn fn, int event, size_t epoch, size_t step,
                  size_t steps, double loss, void *user_data)
{
    int stop = 0;
    if (fn && !net->destroy_deferred) {
        bpl__callout previous = bpl__net_call_out(net, BPL__IN_PROGRESS,
                                                  "bpl_net_fit's progress callback");
        stop = fn(event, epoch, step, steps, loss, user_data) != 0;
        bpl__net_return(net, previous);
    }
    return stop || net->destroy_deferred;
}

static int fit_epoch(bpl_net *net, const bpl_dataset *ds, size_t *order, size_t epoch,
                     size_t batch_size, bpl_progress_fn fn, void *user_data, int *stop)
{
    size_t steps = (ds->n + batch_size - 1) / batch_size;
    double loss_sum = 0.0, rows_sum = 0.0;
    /* A fresh permutation every epoch, drawn from the generator alone: an
     * epoch's order does not depend on the epochs before it in this call,
     * so a net saved between epochs, loaded and fitted again goes on
     * exactly as if it had never stopped (resumable runs). */
    for (size_t i = 0; i < ds->n; i++)
        order[i] = i;
    bpl__rng_shuffle(&net->rng, order, ds->n);
    for (size_t s = 0; s < steps; s++) {
        size_t start = s * batch_size;
        size_t rows = ds->n - start < batch_size ? ds->n - start : batch_size;
        /* Trained data-parallel, this process takes its share of the batch. */
        size_t first, count;
        double weight;
        bpl__parallel_share(net, start, rows, &first, &count, &weight);
        bpl__dataset_gather(ds, order + first, count, net->stage_x, net->stage_y);
        double loss;
        net->fit_epoch = epoch;
        net->fit_step = s + 1;
        net->fit_steps = steps;
        net->parallel.rows = weight;
        net->parallel.weight_given = 1;
        int rc = train_step(net, net->stage_x, net->stage_y, count, &loss);
        net->fit_epoch = net->fit_step = net->fit_steps = 0;
        if (rc != BPL_OK) {
            char where[96];
            snprintf(where, sizeof where, "bpl_net_fit: epoch %zu, step %zu of %zu", epoch,
                     s + 1, steps);
            bpl__error_prefix(where);
            return rc;
        }
        loss_sum += loss * weight;
        rows_sum += weight;
        if (report(net, fn, BPL_EVENT_BATCH, epoch, s + 1, steps, loss, user_data)) {
            *stop = 1;
            return BPL_OK;
        }
    }
    /* The mean over this process's rows (all of them on one process). */
    *stop = report(net, fn, BPL_EVENT_EPOCH, epoch, steps, steps,
                   rows_sum > 0.0 ? loss_sum / rows_sum : 0.0, user_data);
    return BPL_OK;
}

static int fit(bpl_net *net, const bpl_dataset *ds, size_t epochs, size_t batch_size,
               bpl_progress_fn fn, void *user_data)
{
    static const char caller[] = "bpl_net_fit";
    int rc = check_trainable(net, caller);
    if (rc == BPL_OK)
        rc = check_dataset(net, ds, caller);
    if (rc == BPL_OK && ds->n == 0)
        rc = bpl__fail(BPL_ERR_INVALID_ARG, "%s: the dataset is empty", caller);
    if (rc == BPL_OK)
        rc = reserve(net, batch_size < ds->n ? batch_size : ds->n, caller);
    if (rc != BPL_OK || epochs == 0)
        return rc;
    if (batch_size > ds->n)
        batch_size = ds->n;
    size_t bytes;
    if (!bpl__mul_size(ds->n, sizeof(size_t), &bytes))
        return bpl__fail(BPL_ERR_OVERFLOW, "%s: dataset too large", caller);
    size_t *order = bpl__malloc(bytes);
    if (!order)
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    int stop = 0;
    for (size_t epoch = 1; rc == BPL_OK && !stop && epoch <= epochs; epoch++)
        rc = fit_epoch(net, ds, order, epoch, batch_size, fn, user_data, &stop);
    bpl__free(order);
    return rc;
}

BPL_API int bpl_net_fit(bpl_net *net, const bpl_dataset *ds, size_t epochs,
                        size_t batch_size, bpl_progress_fn fn, void *user_data)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(ds != NULL);
    BPL_CHECK_ARG(batch_size > 0);
    return bpl__net_finish(net, fit(net, ds, epochs, batch_size, fn, user_data));
}

BPL_API int bpl_net_progress(const bpl_net *net, size_t *epoch_out, size_t *step_out,
                             size_t *steps_out)
{
    BPL_CHECK_ARG(net != NULL);
    if (epoch_out) *epoch_out = net->fit_epoch;
    if (step_out) *step_out = net->fit_step;
    if (steps_out) *steps_out = net->fit_steps;
    return BPL_OK;
}
