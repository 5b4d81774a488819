/*
 * saved.c - a saved net: --load read and checked against the options, and
 * --save checked before training and written after it.
 */
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Pooling layers have no activation of their own. */
static int same_activation(const struct options *opt, bpl_net *net)
{
    size_t n_hidden = bpl_net_layer_count(net) - 1;
    for (size_t i = 0; i < n_hidden; i++) {
        bpl_layer *layer = bpl_net_layer(net, i);
        if (bpl_layer_param_count(layer) && bpl_layer_activation(layer) != opt->activation)
            return 0;
    }
    return n_hidden > 0;
}

/* Options that only shape training, refused when there is none. */
static int check_training_options(const struct options *opt)
{
    static const struct {
        int id;
        const char *name;
    } training[] = {{OPT_BATCH, "--batch"},     {OPT_LR_DECAY, "--lr-decay"},
                    {OPT_LIMIT, "--limit"},     {OPT_VAL, "--val"},
                    {OPT_FREEZE, "--freeze"},   {OPT_CSV, "--csv"},
                    {OPT_OPTIMIZER, "--optimizer"}, {OPT_LR, "--lr"}};
    for (size_t i = 0; i < sizeof training / sizeof training[0]; i++)
        if (given(opt, training[i].id))
            return usage_error("%s only matters for training: with --load, add --epochs N "
                               "to train the net further",
                               training[i].name);
    return 0;
}

/* The architecture, rule and generator come from the file: an option that
 * says otherwise is refused rather than silently overridden. */
int check_against_file(const struct options *opt, bpl_net *net)
{
    const char *file = opt->load_path;
    const char *rule = bpl_rule_name(bpl_net_rule(net));
    char architecture[1024];
    describe_architecture(net, architecture, sizeof architecture);
    if (given(opt, OPT_RULE) && strcmp(opt->rule, rule) != 0)
        return usage_error("--rule %s: '%s' holds a net trained with rule '%s'", opt->rule,
                           file, rule);
    if ((given(opt, OPT_HIDDEN) || given(opt, OPT_ARCH)) && !same_arch(opt, net))
        return usage_error("%s: '%s' holds a %s net, whose architecture is kept",
                           given(opt, OPT_ARCH) ? "--arch" : "--hidden", file, architecture);
    if (given(opt, OPT_ACTIVATION) && !same_activation(opt, net))
        return usage_error("--activation %s: the hidden layers of the %s net in '%s' are %s",
                           bpl_activation_name(opt->activation), architecture, file,
                           bpl_net_layer_count(net) > 1
                               ? bpl_activation_name(bpl_layer_activation(bpl_net_layer(net, 0)))
                               : "none");
    if (given(opt, OPT_INIT))
        return usage_error("--init: the weights of a loaded net come from '%s'", file);
    if (given(opt, OPT_SEED) && opt->seed != bpl_net_seed(net))
        return usage_error("--seed %llu: the net in '%s' was created with seed %llu and "
                           "goes on with its own generator",
                           (unsigned long long)opt->seed, file,
                           (unsigned long long)bpl_net_seed(net));
    return opt->epochs ? 0 : check_training_options(opt);
}

/* The saved net, its rule (built in, with its saved hyperparameters) and
 * its shape checked against MNIST's. */
int load_net(struct options *opt, struct session *s, struct trainer *t)
{
    int rc = bpl_net_load(&s->net, opt->load_path);
    if (rc != BPL_OK)
        return library_error(rc);
    bpl_net_set_log_fn(s->net, print_log, t);
    if (!bpl_net_rule(s->net)) {
        fprintf(stderr, "%s: the net in '%s' has no built-in rule attached; this program "
                        "runs only the built-in rules\n",
                program, opt->load_path);
        return EXIT_FAILURE;
    }
    if (bpl_net_inputs(s->net) != MNIST_FEATURES ||
        bpl_net_outputs(s->net) != MNIST_CLASSES) {
        fprintf(stderr, "%s: the net in '%s' takes %zu inputs and gives %zu outputs; "
                        "MNIST needs %d and %d\n",
                program, opt->load_path, bpl_net_inputs(s->net),
                bpl_net_outputs(s->net), MNIST_FEATURES, MNIST_CLASSES);
        return EXIT_FAILURE;
    }
    return 0;
}

/* Whether --save will be able to create its file, known before any training
 * depends on it: a probe file in the same directory, removed at once (the
 * library writes a temporary file there and renames it). */
int check_save_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: cannot write '%s': it is a directory\n", program, path);
        return EXIT_FAILURE;
    }
    const char *slash = strrchr(path, '/');
    const char *dir = slash ? path : ".";
    int dir_length = !slash ? 1 : slash == path ? 1 : (int)(slash - path);
    char probe[4096];
    int n = snprintf(probe, sizeof probe, "%.*s/.bioplaus-train-save-XXXXXX", dir_length, dir);
    int fd = n > 0 && (size_t)n < sizeof probe ? mkstemp(probe) : -1;
    if (fd < 0) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", program, path,
                n > 0 && (size_t)n < sizeof probe ? strerror(errno) : "path too long");
        return EXIT_FAILURE;
    }
    close(fd);
    unlink(probe);
    return 0;
}

int save_net(const struct options *opt, const struct session *s)
{
    int rc = parallel_save(s->net, opt->save_path);
    if (rc != BPL_OK)
        return library_error(rc);
    if (!opt->quiet)
        printf("saved the %s net to %s\n", opt->epochs ? "trained" : "loaded", opt->save_path);
    return 0;
}
