/*
 * train_job.c - one configuration trained and measured: a net of the job's
 * rule, net and batch, warmed up, then trained one epoch per repeat with the
 * time per epoch, the GEMM share and rate, the peak RSS and heap, and what
 * the training needs in theory.
 */
#include "bench_train.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --param entries meant for `rule`: "rule:key=value", or "key=value" for
 * every rule but backprop's reference runs. */
static int set_params(const job *j, bpl_rule *rule)
{
    for (size_t p = 0; p < j->o->n_params; p++) {
        const char *text = j->o->params[p], *colon = strchr(text, ':');
        const char *eq = strchr(text, '=');
        if (colon && colon < eq) {
            if (strncmp(text, j->rule, (size_t)(colon - text)) != 0 ||
                j->rule[colon - text] != '\0')
                continue;
            text = colon + 1;
        } else if (j->reference) {
            continue;
        }
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)(eq - text), text);
        int rc = bpl_rule_set_string(rule, key, eq + 1);
        if (rc != BPL_OK)
            return rc;
    }
    return BPL_OK;
}

static int build_net(const job *j, uint64_t seed, bpl_net **out)
{
    bpl_net *net;
    bpl_rule *rule = NULL;
    const net_shape *s = j->net;
    int rc = bpl_net_create(&net, s->sizes[0], seed);
    if (rc != BPL_OK)
        return rc;
    for (size_t l = 1; rc == BPL_OK && l < s->n_sizes; l++)
        rc = bpl_net_add_dense(net, s->sizes[l],
                               l + 1 < s->n_sizes ? BPL_ACT_TANH : BPL_ACT_SOFTMAX,
                               BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_rule_create_builtin(&rule, j->rule);
    if (rc == BPL_OK)
        rc = set_params(j, rule);
    if (rc == BPL_OK && (rc = bpl_net_set_rule(net, rule)) == BPL_OK)
        rule = NULL;
    if (rc == BPL_OK)
        rc = bpl_net_set_profiling(net, 1);
    bpl_rule_destroy(rule);
    if (rc != BPL_OK) {
        bpl_net_destroy(net);
        return rc;
    }
    *out = net;
    return BPL_OK;
}

/* What training needs in theory.  Every tensor the rule trains also has a
 * gradient and two optimiser moments (the library keeps both whatever the
 * optimiser); the workspace is what the library documents: "activation" and
 * "delta" per layer, the float batch staged from the uint8 dataset and the
 * shuffled order.  Batch buffers a rule adds are not enumerable through the
 * API, so they are not counted (the heap column shows them). */
static void theory(bpl_net *net, const bpl_dataset *ds, size_t batch, train_result *r)
{
    size_t n = bpl_dataset_example_count(ds), rows = batch < n ? batch : n;
    double params = 0, trained = 0, units = 0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        units += (double)bpl_layer_units(layer);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows_t, cols_t;
            int group;
            if (bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t), &rows_t,
                                      &cols_t, &group) != BPL_OK)
                continue;
            params += (double)rows_t * (double)cols_t;
            if (group != BPL_GROUP_NONE)
                trained += (double)rows_t * (double)cols_t;
        }
    }
    size_t f = bpl_dataset_features(ds), k = bpl_dataset_targets(ds);
    r->dataset = (double)n * (double)f + (double)n;
    r->params = 4.0 * params;
    r->state = 4.0 * 3.0 * trained; /* gradient, first and second moment */
    r->workspace = 4.0 * (double)rows * (2.0 * units + (double)f + (double)k) +
                   (double)n * (double)sizeof(size_t);
}

/* A few untimed steps on a throw-away net, so that one-time costs (the BLAS
 * starting its threads, first touches of code and buffers) stay out of the
 * timed epochs; the PyTorch reference does the same. */
static int warm_up(const job *j)
{
    size_t f = bpl_dataset_features(j->ds), k = bpl_dataset_targets(j->ds);
    size_t examples = bpl_dataset_example_count(j->ds);
    size_t rows = j->batch < examples ? j->batch : examples;
    float *x = malloc(rows * f * sizeof *x), *y = malloc(rows * k * sizeof *y);
    bpl_net *net = NULL;
    int rc = x && y ? BPL_OK : BPL_ERR_NOMEM;
    if (rc == BPL_OK)
        rc = bpl_dataset_get(j->ds, 0, rows, x, rows * f, y, rows * k);
    if (rc == BPL_OK)
        rc = build_net(j, 1000, &net);
    for (int s = 0; rc == BPL_OK && s < 3; s++)
        rc = bpl_net_train_batch(net, x, y, rows, NULL);
    bpl_net_destroy(net);
    free(x);
    free(y);
    return rc;
}

void train_job(const job *j, void *out)
{
    train_result *r = out;
    memset(r, 0, sizeof *r);
    r->repeats = j->o->repeats;
    int rc = j->threads ? bpl_set_thread_count((int)j->threads) : BPL_OK;
    if (rc != BPL_OK) {
        set_error(&r->status, "threads", rc);
        return;
    }
    if ((rc = warm_up(j)) != BPL_OK) {
        set_error(&r->status, "warm-up", rc);
        return;
    }
    for (int rep = 0; rep < r->repeats; rep++) {
        bpl_net *net;
        if ((rc = build_net(j, (uint64_t)rep + 1, &net)) != BPL_OK) {
            set_error(&r->status, "net", rc);
            return;
        }
        if (rep == 0)
            theory(net, j->ds, j->batch, r);
        double start = now();
        rc = bpl_net_fit(net, j->ds, 1, j->batch, NULL, NULL);
        r->seconds[rep] = now() - start;
        if (rc != BPL_OK) {
            set_error(&r->status, "fit", rc);
            bpl_net_destroy(net);
            return;
        }
        double step_s, gemm_s, flops;
        bpl_net_profile(net, &step_s, &gemm_s, &flops, NULL);
        r->gemm_share += gemm_s / step_s / r->repeats;
        r->gemm_gflops += flops / gemm_s / 1e9 / r->repeats;
        if (rep == r->repeats - 1)
            r->heap = heap_bytes();
        bpl_net_destroy(net);
    }
    r->peak_rss = peak_rss_bytes();
    r->status.ok = 1;
}
