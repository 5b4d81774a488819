/*
 * report.c - the first and last lines of a run: the config line, which
 * records the whole set-up, and the final line that scripts read.
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Comma-separated into buf: `name`, unless it is empty. */
static void append_name(char *buf, size_t size, const char *name)
{
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? "," : "", name);
}

/* The hyperparameters whose values differ from their defaults (the
 * optimiser and learning rate have fields of their own). */
static void describe_params(const bpl_rule *rule, char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++) {
        const char *name, *choices;
        int kind;
        double def, value;
        if (bpl_rule_param_info(rule, i, &name, &kind, &def, NULL, NULL, &choices, NULL) ||
            bpl_rule_get(rule, name, &value) || value == def ||
            strcmp(name, "optimizer") == 0 || strcmp(name, "lr") == 0)
            continue;
        char text[256], item[320];
        if (kind == BPL_PARAM_CHOICE)
            choice_name(choices, value, text, sizeof text);
        else if (kind == BPL_PARAM_BOOL)
            snprintf(text, sizeof text, "%s", value != 0.0 ? "true" : "false");
        else
            snprintf(text, sizeof text, "%g", value);
        snprintf(item, sizeof item, "%s=%s", name, text);
        append_name(buf, size, item);
    }
}

/* The config line's names of the values taken from the rule's
 * recommendation, in the rule's order. */
static void describe_recommended(const struct options *opt, const bpl_rule *rule, char *buf,
                                 size_t size)
{
    static const struct {
        const char *key, *field;
        unsigned bit;
    } choices[] = {{"hidden", "net", FROM_RULE_HIDDEN},
                   {"activation", "activation", FROM_RULE_ACTIVATION},
                   {"init", "init", FROM_RULE_INIT},
                   {"batch_size", "batch", FROM_RULE_BATCH},
                   {"epochs", "epochs", FROM_RULE_EPOCHS},
                   {"lr_decay", "lr_decay", FROM_RULE_LR_DECAY}};
    buf[0] = '\0';
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key;
        if (bpl_rule_recommendation(rule, i, &key, NULL) != BPL_OK)
            continue;
        if (has_param(rule, key)) {
            /* A loaded net's hyperparameters are the saved ones. */
            if (!opt->load_path && !param_given(opt, key))
                append_name(buf, size, key);
            continue;
        }
        for (size_t c = 0; c < sizeof choices / sizeof choices[0]; c++)
            if (strcmp(key, choices[c].key) == 0 && (opt->recommended & choices[c].bit))
                append_name(buf, size, choices[c].field);
    }
}

/* What the hidden layers compute, or why the option does not apply. */
static const char *activation_text(const struct options *opt, bpl_net *net)
{
    int ignored = 0;
    bpl_rule_ignores(bpl_net_rule(net), "activation", &ignored);
    if (ignored)
        return "ignored";
    if (opt->load_path && bpl_net_layer_count(net) > 1)
        return bpl_activation_name(bpl_layer_activation(bpl_net_layer(net, 0)));
    return bpl_activation_name(opt->activation);
}

static const char *init_text(const struct options *opt, bpl_net *net)
{
    int ignored = 0;
    bpl_rule_ignores(bpl_net_rule(net), "init", &ignored);
    if (opt->load_path)
        return "loaded";
    return ignored ? "ignored" : bpl_init_name(opt->init);
}

void print_header(const struct options *opt, struct session *s)
{
    char architecture[1024], params[2048], recommended[512];
    double optimizer = -1.0, lr = NAN;
    const bpl_rule *rule = bpl_net_rule(s->net);
    bpl_rule_get(rule, "optimizer", &optimizer);
    bpl_rule_get(rule, "lr", &lr);
    describe_architecture(s->net, architecture, sizeof architecture);
    describe_params(rule, params, sizeof params);
    describe_recommended(opt, rule, recommended, sizeof recommended);
    printf("config rule=%s net=%s activation=%s init=%s optimizer=%s lr=%g lr_decay=%g "
           "batch=%zu epochs=%zu seed=%llu",
           bpl_rule_name(rule), architecture, activation_text(opt, s->net),
           init_text(opt, s->net), bpl_optimizer_name((int)optimizer), lr, opt->lr_decay,
           opt->batch, opt->epochs, (unsigned long long)opt->seed);
    if (params[0])
        printf(" params=%s", params);
    if (opt->load_path)
        printf(" load=%s", opt->load_path);
    printf(" data=%s train=%zu val=%zu test=%zu blas=%s threads=%d", s->data_dir,
           bpl_dataset_example_count(s->train), bpl_dataset_example_count(s->val),
           bpl_dataset_example_count(s->test), bpl_blas_backend(), bpl_thread_count());
    if (parallel_processes() > 1) /* --batch rows on each: steps of batch x processes */
        printf(" processes=%d", parallel_processes());
    if (recommended[0])
        printf(" recommended=%s", recommended);
    printf("\n");
    fflush(stdout);
}

/* Seconds with at least three significant digits, which a benchmark of a
 * short epoch needs: 9.312, 0.523, 0.0523. */
static void format_seconds(double seconds, char *buf, size_t size)
{
    int decimals = 3;
    for (double limit = 0.1; seconds > 0.0 && seconds < limit && decimals < 9; limit /= 10)
        decimals++;
    snprintf(buf, size, "%.*f", decimals, seconds);
}

void print_final(const struct trainer *t)
{
    char seconds[64];
    format_seconds(t->train_seconds, seconds, sizeof seconds);
    printf("final test_accuracy=%.4f test_error=%.2f epochs=%zu seconds=%s\n",
           t->last.test_accuracy, 100.0 * (1.0 - t->last.test_accuracy), t->epochs_done,
           seconds);
}
