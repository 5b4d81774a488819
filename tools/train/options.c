/*
 * options.c - the command line: every option parsed and checked on its
 * own, before anything is loaded.  What depends on the rule (its
 * recommendation, what it ignores) is rule.c's.
 */
#include "train.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Digits only: strtoull alone would accept "-1" (wrapping it) and spaces. */
static int parse_u64(const char *text, uint64_t *out)
{
    if (!isdigit((unsigned char)text[0]))
        return 0;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || value > UINT64_MAX)
        return 0;
    *out = (uint64_t)value;
    return 1;
}

static int parse_size(const char *option, const char *text, size_t min, size_t *out)
{
    uint64_t value;
    if (!parse_u64(text, &value) || value > SIZE_MAX || value < min)
        return usage_error("%s expects %s integer, got '%s'", option,
                           min ? "a positive" : "a non-negative", text);
    *out = (size_t)value;
    return 0;
}

static int parse_seed(const char *text, uint64_t *out)
{
    if (!parse_u64(text, out))
        return usage_error("--seed expects an integer from 0 to %llu, got '%s'",
                           (unsigned long long)UINT64_MAX, text);
    return 0;
}

static int parse_threads(const char *text, int *out)
{
    uint64_t value;
    if (!parse_u64(text, &value) || value == 0 || value > 4096)
        return usage_error("--threads expects an integer from 1 to 4096, got '%s'", text);
    *out = (int)value;
    return 0;
}

static int parse_lr(const char *text, double *out)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    /* A rate of 0 trains nothing and would still report a result. */
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(value) || value <= 0.0)
        return usage_error("--lr expects a positive number, got '%s'", text);
    *out = value;
    return 0;
}

static int parse_decay(const char *text, double *out)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !(value > 0.0 && value <= 1.0))
        return usage_error("--lr-decay expects a factor in (0, 1], got '%s'", text);
    *out = value;
    return 0;
}

/* "1" or "0,2": layer indices (0 = the first hidden layer), checked against
 * the architecture once it is known. */
static int parse_freeze(const char *text, struct options *opt)
{
    opt->n_frozen = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') || opt->n_frozen > MAX_HIDDEN_LAYERS)
            return usage_error("--freeze expects layer indices like 1 or 0,2, got '%s'", text);
        opt->frozen[opt->n_frozen++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* "256,256" -> {256, 256}; "" or "0" -> no hidden layer. */
static int parse_hidden(const char *text, struct options *opt)
{
    opt->n_arch = 0;
    if (text[0] == '\0' || strcmp(text, "0") == 0)
        return 0;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        unsigned long long units = isdigit((unsigned char)*p) ? strtoull(p, &end, 10) : 0;
        if (units == 0 || errno == ERANGE || units > SIZE_MAX || (*end != ',' && *end))
            return usage_error("--hidden expects comma-separated positive layer sizes "
                               "such as 256,256 (or 0 for none), got '%s'", text);
        if (opt->n_arch == MAX_HIDDEN_LAYERS)
            return usage_error("--hidden: at most %d hidden layers", MAX_HIDDEN_LAYERS);
        opt->arch[opt->n_arch++] = (struct arch_layer){.kind = ARCH_DENSE, .size = (size_t)units};
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

static int parse_activation(const char *text, int *out)
{
    for (size_t i = 0; hidden_activation_name_at(i); i++)
        if (strcmp(text, hidden_activation_name_at(i)) == 0)
            return bpl_activation_from_name(text, out) == BPL_OK ? 0 : EXIT_USAGE;
    return usage_error("--activation: unknown hidden activation '%s' (known: tanh, relu, "
                       "sigmoid)", text);
}

static int parse_init(const char *text, int *out)
{
    if (bpl_init_from_name(text, out) == BPL_OK)
        return 0;
    char known[256];
    join_names(known, sizeof known, init_name_at);
    return usage_error("--init: unknown initialiser '%s' (known: %s)", text, known);
}

static int check_optimizer(const char *text)
{
    int optimizer;
    if (bpl_optimizer_from_name(text, &optimizer) == BPL_OK)
        return 0;
    char known[128];
    join_names(known, sizeof known, optimizer_name_at);
    return usage_error("--optimizer: unknown optimizer '%s' (known: %s)", text, known);
}

static int check_rule_name(const char *text)
{
    for (size_t i = 0; i < bpl_rule_builtin_count(); i++)
        if (strcmp(text, bpl_rule_builtin_name(i)) == 0)
            return 0;
    char known[256];
    join_names(known, sizeof known, rule_name_at);
    return usage_error("--rule: unknown rule '%s' (built-in rules: %s)", text, known);
}

static int add_param(const char *text, struct options *opt)
{
    const char *equals = strchr(text, '=');
    if (!equals || equals == text || equals[1] == '\0')
        return usage_error("--param expects KEY=VALUE such as feedback_scale=0.5, got '%s'",
                           text);
    if (opt->n_params == MAX_PARAMS)
        return usage_error("--param: at most %d of them", MAX_PARAMS);
    opt->params[opt->n_params++] = text;
    return 0;
}

static int check_val(const char *text, size_t *out)
{
    int status = parse_size("--val", text, 0, out);
    if (status == 0 && *out >= MNIST_TRAIN_IMAGES)
        return usage_error("--val must be less than %d (the training images), got '%s'",
                           MNIST_TRAIN_IMAGES, text);
    return status;
}

static int check_path(const char *option, const char *text)
{
    return text[0] ? 0 : usage_error("%s expects a non-empty path", option);
}

/* 1 if the option `id` was on the command line. */
int given(const struct options *opt, int id)
{
    return (int)((opt->given >> (id - OPT_RULE)) & 1u);
}

static const struct option long_options[] = {
    {"rule", required_argument, NULL, OPT_RULE},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"arch", required_argument, NULL, OPT_ARCH},
    {"activation", required_argument, NULL, OPT_ACTIVATION},
    {"init", required_argument, NULL, OPT_INIT},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"lr", required_argument, NULL, OPT_LR},
    {"lr-decay", required_argument, NULL, OPT_LR_DECAY},
    {"freeze", required_argument, NULL, OPT_FREEZE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"data", required_argument, NULL, OPT_DATA},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"val", required_argument, NULL, OPT_VAL},
    {"csv", required_argument, NULL, OPT_CSV},
    {"save", required_argument, NULL, OPT_SAVE},
    {"load", required_argument, NULL, OPT_LOAD},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"param", required_argument, NULL, OPT_PARAM},
    {"list-params", no_argument, NULL, OPT_LIST_PARAMS},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

/* What a rule that recommends nothing would train with; every built-in rule
 * recommends its own set-up. */
static void set_defaults(struct options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->rule = "backprop";
    opt->arch[0] = opt->arch[1] = (struct arch_layer){.kind = ARCH_DENSE, .size = 256};
    opt->n_arch = 2;
    opt->activation = BPL_ACT_TANH;
    opt->init = BPL_INIT_GLOROT_UNIFORM;
    opt->epochs = 10;
    opt->batch = 128;
    opt->seed = 1;
    opt->val = 5000;
    opt->lr_decay = 1.0;
}

/* Apply one parsed option; returns 0, an exit status, or KEEP_GOING. */
int apply_option(int id, const char *arg, struct options *opt)
{
    switch (id) {
    case OPT_RULE: opt->rule = arg; return check_rule_name(arg);
    case OPT_HIDDEN: return parse_hidden(arg, opt);
    case OPT_ARCH: return parse_arch(arg, opt);
    case OPT_ACTIVATION: return parse_activation(arg, &opt->activation);
    case OPT_INIT: return parse_init(arg, &opt->init);
    case OPT_EPOCHS: return parse_size("--epochs", arg, 1, &opt->epochs);
    case OPT_BATCH: return parse_size("--batch", arg, 1, &opt->batch);
    case OPT_OPTIMIZER: opt->optimizer = arg; return check_optimizer(arg);
    case OPT_LR: return parse_lr(arg, &opt->lr);
    case OPT_LR_DECAY: return parse_decay(arg, &opt->lr_decay);
    case OPT_FREEZE: return parse_freeze(arg, opt);
    case OPT_SEED: return parse_seed(arg, &opt->seed);
    case OPT_DATA: opt->data_dir = arg; return check_path("--data", arg);
    case OPT_LIMIT: return parse_size("--limit", arg, 1, &opt->limit);
    case OPT_VAL: return check_val(arg, &opt->val);
    case OPT_CSV: opt->csv_path = arg; return check_path("--csv", arg);
    case OPT_SAVE: opt->save_path = arg; return check_path("--save", arg);
    case OPT_LOAD: opt->load_path = arg; return check_path("--load", arg);
    case OPT_THREADS: return parse_threads(arg, &opt->threads);
    case OPT_PARAM: return add_param(arg, opt);
    case OPT_LIST_PARAMS: opt->list_params = 1; return 0;
    case 'q': opt->quiet = 1; return 0;
    case 'h': print_help(); return EXIT_SUCCESS;
    case 'V': print_version(); return EXIT_SUCCESS;
    default: return EXIT_USAGE;
    }
}

/* getopt_long's own messages are switched off so that every complaint has
 * the same one-line shape. */
static int getopt_failure(int id, char **argv)
{
    const char *word = argv[optind - 1];
    if (id == ':')
        return usage_error("option '%s' needs a value", word);
    return usage_error("unknown option '%s'", word);
}

/* getopt takes the next word as an option's value even when it is another
 * option: "--rule --limit 1000" would look for a rule named "--limit".  A
 * value given with '=' (--data=--odd) is taken as written. */
static int missing_value(int id, char **argv)
{
    return id >= OPT_RULE && optarg && optarg == argv[optind - 1] &&
           strncmp(optarg, "--", 2) == 0 && optarg[2] != '\0';
}

/* Options that contradict each other, or that would have no effect. */
static int check_combinations(const struct options *opt)
{
    if (opt->list_params && opt->load_path)
        return usage_error("--list-params lists a built-in rule's hyperparameters; it does "
                           "not read --load (use --rule NAME)");
    if (given(opt, OPT_HIDDEN) && given(opt, OPT_ARCH))
        return usage_error("--hidden and --arch both give the hidden layers: use one "
                           "(--hidden 256,256 is --arch dense:256,dense:256)");
    return 0;
}

/* Returns KEEP_GOING to run, or the status to exit with. */
int parse_options(int argc, char **argv, struct options *opt)
{
    set_defaults(opt);
    opterr = 0;
    int id, index = 0;
    while ((id = getopt_long(argc, argv, ":qhV", long_options, &index)) != -1) {
        int status;
        if (id == '?' || id == ':')
            status = getopt_failure(id, argv);
        else if (missing_value(id, argv))
            status = usage_error("option '--%s' needs a value (got the option '%s')",
                                 long_options[index].name, optarg);
        else
            status = apply_option(id, optarg, opt);
        if (id >= OPT_RULE)
            opt->given |= (uint64_t)1 << (id - OPT_RULE);
        if (status != 0 || id == 'h' || id == 'V')
            return status;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    int status = check_combinations(opt);
    return status ? status : KEEP_GOING;
}
