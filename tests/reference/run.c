/*
 * run.c - one reference scenario, built and trained (see run.h).
 */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Apply "key=value;key=value" to the rule. */
static int set_params(bpl_rule *rule, const char *params)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", params);
    for (char *item = strtok(buf, ";"); item; item = strtok(NULL, ";")) {
        char *eq = strchr(item, '=');
        if (!eq)
            return bpl_error_set(BPL_ERR_INVALID_ARG, "reference: a parameter without '='");
        *eq = '\0';
        int rc = bpl_rule_set_string(rule, item, eq + 1);
        if (rc != BPL_OK)
            return rc;
    }
    return BPL_OK;
}

static int copy_params(bpl_rule *rule, const bpl_rule *pinned)
{
    for (size_t i = 0; i < bpl_rule_param_count(pinned); i++) {
        const char *name;
        double value;
        int rc = bpl_rule_param_info(pinned, i, &name, NULL, NULL, NULL, NULL, NULL, NULL);
        if (rc == BPL_OK)
            rc = bpl_rule_get(pinned, name, &value);
        if (rc == BPL_OK)
            rc = bpl_rule_set(rule, name, value);
        if (rc != BPL_OK)
            return rc;
    }
    return BPL_OK;
}

static int freeze(bpl_net *net, const char *what)
{
    if (!what)
        return BPL_OK;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", what);
    char *colon = strchr(buf, ':');
    if (!colon)
        return bpl_error_set(BPL_ERR_INVALID_ARG, "reference: frozen is layer:tensor");
    *colon = '\0';
    return bpl_layer_set_frozen(bpl_net_layer(net, (size_t)atoi(buf)), colon + 1, 1);
}

int ref_build(const ref_scenario *s, const bpl_rule *pinned, bpl_net **out)
{
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    int rc = bpl_net_create(&net, REF_INPUTS, REF_SEED);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, REF_HIDDEN1, s->hidden, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, REF_HIDDEN2, s->hidden, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, REF_OUTPUTS, s->output, BPL_INIT_GLOROT_UNIFORM);
    if (rc == BPL_OK)
        rc = bpl_net_set_loss(net, s->loss);
    if (rc == BPL_OK)
        rc = bpl_rule_create_builtin(&rule, s->rule);
    if (rc == BPL_OK)
        rc = set_params(rule, s->params);
    if (rc == BPL_OK && pinned)
        rc = copy_params(rule, pinned);
    if (rc == BPL_OK) {
        rc = bpl_net_set_rule(net, rule);
        if (rc == BPL_OK)
            rule = NULL; /* the net owns it */
    }
    if (rc == BPL_OK)
        rc = freeze(net, s->frozen);
    bpl_rule_destroy(rule);
    if (rc != BPL_OK) {
        bpl_net_destroy(net);
        net = NULL;
    }
    *out = net;
    return rc;
}

int ref_train(bpl_net *net)
{
    float x[REF_FIT_ROWS * REF_INPUTS], y[REF_FIT_ROWS * REF_OUTPUTS];
    int rc = BPL_OK;
    for (int step = 0; rc == BPL_OK && step < REF_STEPS; step++) {
        ref_data(1000 + (uint64_t)step, x, y, REF_BATCH);
        rc = bpl_net_train_batch(net, x, y, REF_BATCH, NULL);
    }
    bpl_dataset *ds = NULL;
    ref_data(2000, x, y, REF_FIT_ROWS);
    if (rc == BPL_OK)
        rc = bpl_dataset_from_f32(&ds, x, y, REF_FIT_ROWS, REF_INPUTS, REF_OUTPUTS);
    if (rc == BPL_OK)
        rc = bpl_net_fit(net, ds, 1, REF_FIT_BATCH, NULL, NULL);
    bpl_dataset_destroy(ds);
    return rc;
}

int ref_predict(bpl_net *net, float *out)
{
    float x[REF_PREDICT_ROWS * REF_INPUTS], y[REF_PREDICT_ROWS * REF_OUTPUTS];
    ref_data(3000, x, y, REF_PREDICT_ROWS);
    return bpl_net_predict(net, x, REF_PREDICT_ROWS, out, REF_PREDICT_ROWS * REF_OUTPUTS);
}
