/*
 * net.c - the net: built for MNIST from the options, or loaded from
 * --load, with its rule attached, its log sent to stderr and the layers of
 * --freeze frozen.
 */
#include "train.h"

#include <stdio.h>
#include <string.h>

void print_log(int level, const char *message, void *user_data)
{
    struct trainer *t = user_data;
    if (level == BPL_LOG_INFO && t->opt->quiet)
        return;
    if (t->line_dirty) { /* keep the message off the progress bar's line */
        printf("\n");
        fflush(stdout);
        t->line_dirty = 0;
    }
    const char *kind = level == BPL_LOG_ERROR     ? "error"
                       : level == BPL_LOG_WARNING ? "warning"
                                                  : "info";
    fprintf(stderr, "%s: library %s: %s\n", program, kind, message);
}

static int add_layers(const struct options *opt, bpl_net *net, size_t n_classes)
{
    int rc = add_hidden_layers(opt, net);
    if (rc == BPL_OK)
        rc = bpl_net_add_dense(net, n_classes, BPL_ACT_SOFTMAX, opt->init);
    if (rc == BPL_OK)
        rc = bpl_net_set_loss(net, BPL_LOSS_CROSS_ENTROPY);
    return rc;
}

static int freeze_layers(const struct options *opt, bpl_net *net)
{
    for (size_t i = 0; i < opt->n_frozen; i++) {
        bpl_layer *layer = bpl_net_layer(net, opt->frozen[i]);
        if (!layer)
            return usage_error("--freeze %zu: the net has %zu layers (0 = the first hidden)",
                               opt->frozen[i], bpl_net_layer_count(net));
        if (bpl_layer_param_count(layer) == 0)
            return usage_error("--freeze %zu: layer %zu (%s) has no weights", opt->frozen[i],
                               opt->frozen[i], bpl_layer_kind(layer));
        int rc = bpl_layer_set_frozen(layer, "weight", 1);
        if (rc == BPL_OK)
            rc = bpl_layer_set_frozen(layer, "bias", 1);
        if (rc != BPL_OK)
            return library_error(rc);
    }
    return 0;
}

/* A size the library refuses (more units than it can index) is a usage
 * error; running out of memory is not. */
static int build_net(const struct options *opt, struct session *s, struct trainer *t)
{
    int rc = bpl_net_create(&s->net, MNIST_FEATURES, opt->seed);
    if (rc == BPL_OK)
        rc = bpl_net_set_log_fn(s->net, print_log, t);
    if (rc == BPL_OK)
        rc = add_layers(opt, s->net, MNIST_CLASSES);
    if (rc == BPL_ERR_INVALID_ARG || rc == BPL_ERR_OVERFLOW || rc == BPL_ERR_SHAPE)
        return usage_error("%s: %s", given(opt, OPT_ARCH) ? "--arch" : "--hidden",
                           bpl_last_error_message());
    if (rc == BPL_OK)
        rc = bpl_net_set_rule(s->net, s->rule);
    if (rc == BPL_ERR_UNSUPPORTED) /* a rule that cannot train these layers */
        return usage_error("--rule %s: %s", opt->rule, bpl_last_error_message());
    if (rc != BPL_OK)
        return library_error(rc);
    s->rule = NULL; /* the net owns and destroys it now */
    return freeze_layers(opt, s->net);
}

/* The net of --load, or a new one with a new rule: both with the options
 * applied and the rest of the set-up taken from the rule's recommendation. */
int prepare_net(struct options *opt, struct session *s, struct trainer *t)
{
    if (!opt->load_path) {
        int status = create_rule(opt, &s->rule);
        if (status == 0)
            status = check_ignored(opt, s->rule);
        if (status == 0)
            status = take_recommendation(opt, s->rule);
        return status ? status : build_net(opt, s, t);
    }
    int status = load_net(opt, s, t);
    bpl_rule *rule = s->net ? bpl_net_rule(s->net) : NULL;
    if (status == 0)
        status = take_recommendation(opt, rule);
    if (status == 0)
        status = check_against_file(opt, s->net);
    if (status == 0) {
        opt->seed = bpl_net_seed(s->net); /* for the config line */
        status = apply_settings(opt, rule);
    }
    return status ? status : freeze_layers(opt, s->net);
}
