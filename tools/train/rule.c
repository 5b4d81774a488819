/*
 * rule.c - the rule: a built-in rule with its recommended hyperparameters
 * and the options applied over them, the options its model would ignore
 * refused, and the training choices left out taken from its
 * recommendation.
 */
#include "train.h"

#include <stdio.h>
#include <string.h>

static int setting_error(const char *option, const char *value)
{
    return usage_error("%s %s: %s", option, value, bpl_last_error_message());
}

static int apply_param(bpl_rule *rule, const char *key_value)
{
    char key[128];
    size_t key_length = (size_t)(strchr(key_value, '=') - key_value);
    if (key_length >= sizeof key)
        return usage_error("--param %s: no hyperparameter has so long a name", key_value);
    memcpy(key, key_value, key_length);
    key[key_length] = '\0';
    if (bpl_rule_set_string(rule, key, key_value + key_length + 1) != BPL_OK)
        return setting_error("--param", key_value);
    return 0;
}

int has_param(const bpl_rule *rule, const char *key)
{
    double unused;
    return bpl_rule_get(rule, key, &unused) == BPL_OK;
}

/* 1 if --optimizer, --lr or a --param sets the hyperparameter `key`. */
int param_given(const struct options *opt, const char *key)
{
    if (strcmp(key, "optimizer") == 0 && opt->optimizer)
        return 1;
    if (strcmp(key, "lr") == 0 && given(opt, OPT_LR))
        return 1;
    size_t length = strlen(key);
    for (size_t i = 0; i < opt->n_params; i++)
        if (strncmp(opt->params[i], key, length) == 0 && opt->params[i][length] == '=')
            return 1;
    return 0;
}

/* The hyperparameters of the rule's recommended set-up; the training
 * choices are read by take_recommendation. */
static int apply_recommended_params(bpl_rule *rule)
{
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key, *value;
        int rc = bpl_rule_recommendation(rule, i, &key, &value);
        if (rc == BPL_OK && has_param(rule, key))
            rc = bpl_rule_set_string(rule, key, value);
        if (rc != BPL_OK)
            return library_error(rc);
    }
    return 0;
}

/* --optimizer, --lr and every --param, in that order. */
int apply_settings(const struct options *opt, bpl_rule *rule)
{
    int status = 0;
    if (opt->optimizer && bpl_rule_set_string(rule, "optimizer", opt->optimizer) != BPL_OK)
        status = setting_error("--optimizer", opt->optimizer);
    if (status == 0 && given(opt, OPT_LR) && bpl_rule_set(rule, "lr", opt->lr) != BPL_OK) {
        char text[32];
        snprintf(text, sizeof text, "%g", opt->lr);
        status = setting_error("--lr", text);
    }
    for (size_t i = 0; status == 0 && i < opt->n_params; i++)
        status = apply_param(rule, opt->params[i]);
    return status;
}

/* A new built-in rule: its recommended hyperparameters, then the options. */
int create_rule(const struct options *opt, bpl_rule **out)
{
    int rc = bpl_rule_create_builtin(out, opt->rule);
    if (rc != BPL_OK)
        return library_error(rc);
    int status = apply_recommended_params(*out);
    if (status == 0)
        status = apply_settings(opt, *out);
    if (status != 0) {
        bpl_rule_destroy(*out);
        *out = NULL;
    }
    return status;
}

/* An option the rule's model would ignore is refused: whoever asks for
 * relu units expects relu units.  The rule says what it ignores, as its
 * hyperparameters now stand. */
int check_ignored(const struct options *opt, const bpl_rule *rule)
{
    static const struct {
        int id;
        const char *option, *choice, *what;
    } checks[] = {{OPT_ACTIVATION, "--activation", "activation", "the hidden activation"},
                  {OPT_INIT, "--init", "init", "the initial weights"}};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int ignored = 0;
        if (!given(opt, checks[i].id))
            continue;
        int rc = bpl_rule_ignores(rule, checks[i].choice, &ignored);
        if (rc != BPL_OK)
            return library_error(rc);
        if (ignored)
            return usage_error("%s: rule '%s' would ignore it: its model sets %s itself "
                               "('ignores' in --list-params)",
                               checks[i].option, bpl_rule_name(rule), checks[i].what);
    }
    return 0;
}

/* Every training choice left out is taken from the rule's recommendation,
 * parsed as its option would be.  A loaded net keeps its architecture and
 * trains only the epochs asked for: those choices are for a new net only. */
int take_recommendation(struct options *opt, const bpl_rule *rule)
{
    static const struct {
        int id;
        const char *key;
        unsigned bit;
        int new_net_only;
    } choices[] = {{OPT_HIDDEN, "hidden", FROM_RULE_HIDDEN, 1},
                   {OPT_ACTIVATION, "activation", FROM_RULE_ACTIVATION, 1},
                   {OPT_INIT, "init", FROM_RULE_INIT, 1},
                   {OPT_BATCH, "batch_size", FROM_RULE_BATCH, 0},
                   {OPT_EPOCHS, "epochs", FROM_RULE_EPOCHS, 1},
                   {OPT_LR_DECAY, "lr_decay", FROM_RULE_LR_DECAY, 0}};
    if (opt->load_path && !given(opt, OPT_EPOCHS))
        opt->epochs = 0; /* evaluate only */
    if (opt->load_path && opt->epochs == 0)
        return 0;
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        const char *value;
        /* --arch gives the hidden layers as --hidden would. */
        int chosen = given(opt, choices[i].id) ||
                     (choices[i].id == OPT_HIDDEN && given(opt, OPT_ARCH));
        if (chosen || (opt->load_path && choices[i].new_net_only) ||
            bpl_rule_recommended(rule, choices[i].key, &value) != BPL_OK)
            continue;
        int status = apply_option(choices[i].id, value, opt);
        if (status != 0)
            return status;
        opt->recommended |= choices[i].bit;
    }
    return 0;
}
