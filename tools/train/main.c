/*
 * bioplaus-train - train a fully connected net on MNIST with any built-in
 * learning rule and report its test accuracy.
 *
 *     bioplaus-train --rule fa --epochs 10
 *
 * Every option left out takes the rule's recommended training set-up
 * (bpl_rule_recommendation), so each rule trains as its documented runs
 * did.  `--load FILE` evaluates a saved net, or trains it further.
 *
 * Run `bioplaus-train --help` for every option.  Exit status: 0 on success,
 * 1 when the data or training fail, 2 for a usage error.  The last line
 * printed on stdout is always the `final ...` summary, so scripts can read
 * it with `tail -n 1`.
 */
#include <bioplaus.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

enum { EXIT_USAGE = 2, KEEP_GOING = -1 };
enum { MAX_HIDDEN_LAYERS = 64, MAX_PARAMS = 64 };

/* The official training file holds 60000 images; --val is checked against
 * it before any file is read, and against the real count once loaded.  The
 * net is built for 28x28 images and 10 classes before the data is read, so
 * that a net the library refuses is a usage error found at once. */
enum { MNIST_TRAIN_IMAGES = 60000, MNIST_FEATURES = 784, MNIST_CLASSES = 10 };

static const char program[] = "bioplaus-train";
static const char default_data_dir[] = "./data/mnist";
static const char *const mnist_files[] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

/* The training choices a rule may recommend, as bits of options.recommended. */
enum {
    FROM_RULE_HIDDEN = 1 << 0,
    FROM_RULE_ACTIVATION = 1 << 1,
    FROM_RULE_INIT = 1 << 2,
    FROM_RULE_BATCH = 1 << 3,
    FROM_RULE_EPOCHS = 1 << 4,
    FROM_RULE_LR_DECAY = 1 << 5
};

struct options {
    const char *rule;
    size_t hidden[MAX_HIDDEN_LAYERS];
    size_t n_hidden;
    int activation;
    int init;
    size_t epochs;         /* 0 with --load: evaluate only */
    size_t batch;
    const char *optimizer; /* NULL: the rule's own or recommended */
    double lr;
    double lr_decay;       /* the learning rate is multiplied by it after each epoch */
    size_t frozen[MAX_HIDDEN_LAYERS + 1]; /* layers whose weight and bias stay fixed */
    size_t n_frozen;
    uint64_t seed;
    const char *data_dir;  /* NULL: $BIOPLAUS_MNIST_DIR, else ./data/mnist */
    size_t limit;          /* 0: every training image */
    size_t val;
    const char *csv_path;
    const char *save_path;
    const char *load_path; /* NULL: a new net */
    int threads;           /* 0: leave the BLAS library's setting alone */
    const char *params[MAX_PARAMS];
    size_t n_params;
    int list_params;
    int quiet;
    uint64_t given;        /* bit (id - OPT_RULE) of every option on the command line */
    unsigned recommended;  /* FROM_RULE_* bits: choices taken from the rule */
};

/* Everything that must be freed, in one place so every exit path frees it. */
struct session {
    bpl_rule *rule; /* NULL once the net owns it */
    bpl_net *net;
    bpl_dataset *train;
    bpl_dataset *val;
    bpl_dataset *test;
    FILE *csv;
    const char *data_dir;
};

struct epoch_result {
    double train_loss;
    double val_accuracy, val_loss;
    double test_accuracy, test_loss;
    double seconds;
};

/* State shared with the progress and log callbacks. */
struct trainer {
    const struct options *opt;
    struct session *session;
    int show_progress;        /* stdout is a terminal and --quiet is off */
    int line_dirty;           /* a progress bar is on the current terminal line */
    double epoch_start;
    double last_draw;
    double running_loss_sum;  /* batch loss times batch rows, this epoch */
    double train_seconds;     /* training only: evaluation is excluded */
    size_t epochs_done;
    struct epoch_result last;
    int failed;               /* evaluation failed inside the callback */
    char failure[512];
};

/* ---- messages ------------------------------------------------------------ */

static int usage_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* One line on stderr, then the usage exit status. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

/* Report the library's last failure; must run right after the failing call. */
static int library_error(int status)
{
    fprintf(stderr, "%s: %s: %s\n", program, bpl_strerror(status), bpl_last_error_message());
    return EXIT_FAILURE;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Write "a, b, c" of a NULL-terminated sequence of names into buf. */
static void join_names(char *buf, size_t size, const char *(*name_at)(size_t))
{
    buf[0] = '\0';
    for (size_t i = 0; name_at(i) != NULL; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? ", " : "", name_at(i));
    }
}

static const char *rule_name_at(size_t i)
{
    return bpl_rule_builtin_name(i);
}

/* The enum name functions answer "unknown" past the last value. */
static const char *init_name_at(size_t i)
{
    const char *name = bpl_init_name((int)i);
    return strcmp(name, "unknown") == 0 ? NULL : name;
}

static const char *optimizer_name_at(size_t i)
{
    const char *name = bpl_optimizer_name((int)i);
    return strcmp(name, "unknown") == 0 ? NULL : name;
}

static const char *hidden_activation_name_at(size_t i)
{
    static const char *const names[] = {"tanh", "relu", "sigmoid", NULL};
    return i < sizeof names / sizeof names[0] ? names[i] : NULL;
}

/* ---- help and version ---------------------------------------------------- */

/* Print "a, b, c" after `indent` spaces, wrapped before column 80. */
static void print_wrapped_names(int indent, const char *(*name_at)(size_t))
{
    int column = printf("%*s", indent, "");
    for (size_t i = 0; name_at(i) != NULL; i++) {
        const char *separator = name_at(i + 1) ? "," : "";
        if (i > 0 && column + 1 + (int)strlen(name_at(i)) + 1 > 79)
            column = printf("\n%*s", indent, "") - 1;
        else if (i > 0)
            column += printf(" ");
        column += printf("%s%s", name_at(i), separator);
    }
    printf("\n");
}

static void print_help(void)
{
    char rules[256];
    join_names(rules, sizeof rules, rule_name_at);
    printf("Usage: %s [OPTION]...\n"
           "Train a fully connected net on MNIST with a learning rule and report its\n"
           "test accuracy.  Options marked (R) default to the rule's recommended\n"
           "training set-up, which --list-params shows.\n\n", program);
    printf("Model and rule:\n"
           "  --rule NAME         learning rule: %s (default: backprop)\n"
           "  --hidden SIZES      comma-separated hidden layer sizes; \"\" or 0 for none (R)\n"
           "  --activation NAME   hidden layers: tanh, relu or sigmoid (R); the output\n"
           "                      layer is softmax with cross-entropy; refused for rules\n"
           "                      whose model fixes it (segregated, microcircuit)\n"
           "  --init NAME         weight initialiser (R), one of\n",
           rules);
    print_wrapped_names(22, init_name_at);
    printf("  --optimizer NAME    sgd, momentum, rmsprop or adam (R)\n"
           "  --lr X              learning rate, positive (R)\n"
           "  --lr-decay F        multiply the learning rate by F after every epoch (R)\n"
           "  --freeze LAYERS     comma-separated layers (0 = the first hidden) whose\n"
           "                      weights and biases stay fixed (default: none)\n"
           "  --param KEY=VALUE   set any rule hyperparameter; repeatable; applied after\n"
           "                      the recommendation, --optimizer and --lr (default: none)\n"
           "  --list-params       list the rule's hyperparameters and recommended set-up\n"
           "                      and exit\n"
           "  --seed N            seed of every random choice, 64-bit (default: 1)\n\n");
    printf("Training:\n"
           "  --epochs N          passes over the training images (R; with --load: 0,\n"
           "                      evaluate only)\n"
           "  --batch N           mini-batch size (R)\n"
           "  --val N             hold out the last N of the %d training images for\n"
           "                      validation; 0 for none (default: 5000)\n"
           "  --limit N           train on the first N of the remaining training images\n"
           "                      (default: all of them)\n"
           "  --threads N         BLAS threads (default: the BLAS library's own)\n\n",
           MNIST_TRAIN_IMAGES);
    printf("Data and output:\n"
           "  --data DIR          directory of the four MNIST IDX files, gzipped or not\n"
           "                      (default: $BIOPLAUS_MNIST_DIR if set, else %s)\n"
           "  --csv FILE          write one row per epoch: epoch,train_loss,val_accuracy,\n"
           "                      val_loss,test_accuracy,test_loss,seconds,cumulative_seconds\n"
           "                      (default: none)\n"
           "  --save FILE         save the net at the end; checked before training\n"
           "                      (default: none)\n"
           "  --load FILE         start from a net saved with --save: evaluate it on the\n"
           "                      test set or, with --epochs N, train it N more epochs\n"
           "                      with its saved rule and hyperparameters (--optimizer,\n"
           "                      --lr and --param override them)\n"
           "  --quiet             print only the final line\n"
           "  --help              show this help and exit\n"
           "  --version           show the library version and BLAS backend and exit\n\n"
           "The first line, config ..., names the values taken from the rule's\n"
           "recommendation in recommended=...  The last line is: final test_accuracy=A\n"
           "test_error=PERCENT epochs=N seconds=S (S: training time, evaluation excluded,\n"
           "3 decimals or more).  Exit status: 0 success, 1 failure, 2 usage error.\n"
           "examples/get-mnist.sh, in libbioplaus's sources, downloads the data.\n",
           default_data_dir);
}

static void print_version(void)
{
    printf("%s (libbioplaus) %s\n", program, bpl_version_string());
    if (bpl_version_number() != BPL_VERSION_NUMBER)
        printf("built with the header of version %s\n", BPL_VERSION_STRING);
    printf("BLAS backend: %s\nBLAS info: %s\n", bpl_blas_backend(), bpl_blas_info());
}

/* ---- option parsing ------------------------------------------------------ */

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
    opt->n_hidden = 0;
    if (text[0] == '\0' || strcmp(text, "0") == 0)
        return 0;
    for (const char *p = text;;) {
        char *end;
        errno = 0;
        unsigned long long units = isdigit((unsigned char)*p) ? strtoull(p, &end, 10) : 0;
        if (units == 0 || errno == ERANGE || units > SIZE_MAX || (*end != ',' && *end))
            return usage_error("--hidden expects comma-separated positive layer sizes "
                               "such as 256,256 (or 0 for none), got '%s'", text);
        if (opt->n_hidden == MAX_HIDDEN_LAYERS)
            return usage_error("--hidden: at most %d hidden layers", MAX_HIDDEN_LAYERS);
        opt->hidden[opt->n_hidden++] = (size_t)units;
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

enum option_id {
    OPT_RULE = 256, OPT_HIDDEN, OPT_ACTIVATION, OPT_INIT, OPT_EPOCHS, OPT_BATCH,
    OPT_OPTIMIZER, OPT_LR, OPT_SEED, OPT_DATA, OPT_LIMIT, OPT_VAL, OPT_CSV, OPT_SAVE,
    OPT_THREADS, OPT_PARAM, OPT_LIST_PARAMS, OPT_LR_DECAY, OPT_FREEZE, OPT_LOAD
};

/* 1 if the option `id` was on the command line. */
static int given(const struct options *opt, int id)
{
    return (int)((opt->given >> (id - OPT_RULE)) & 1u);
}

static const struct option long_options[] = {
    {"rule", required_argument, NULL, OPT_RULE},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
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
    opt->hidden[0] = opt->hidden[1] = 256;
    opt->n_hidden = 2;
    opt->activation = BPL_ACT_TANH;
    opt->init = BPL_INIT_GLOROT_UNIFORM;
    opt->epochs = 10;
    opt->batch = 128;
    opt->seed = 1;
    opt->val = 5000;
    opt->lr_decay = 1.0;
}

/* Apply one parsed option; returns 0, an exit status, or KEEP_GOING. */
static int apply_option(int id, const char *arg, struct options *opt)
{
    switch (id) {
    case OPT_RULE: opt->rule = arg; return check_rule_name(arg);
    case OPT_HIDDEN: return parse_hidden(arg, opt);
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
    return 0;
}

/* Returns KEEP_GOING to run, or the status to exit with. */
static int parse_options(int argc, char **argv, struct options *opt)
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

/* ---- the rule ------------------------------------------------------------ */

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

static int has_param(const bpl_rule *rule, const char *key)
{
    double unused;
    return bpl_rule_get(rule, key, &unused) == BPL_OK;
}

/* 1 if --optimizer, --lr or a --param sets the hyperparameter `key`. */
static int param_given(const struct options *opt, const char *key)
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
static int apply_settings(const struct options *opt, bpl_rule *rule)
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
static int create_rule(const struct options *opt, bpl_rule **out)
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
static int check_ignored(const struct options *opt, const bpl_rule *rule)
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
static int take_recommendation(struct options *opt, const bpl_rule *rule)
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
        if (given(opt, choices[i].id) || (opt->load_path && choices[i].new_net_only) ||
            bpl_rule_recommended(rule, choices[i].key, &value) != BPL_OK)
            continue;
        int status = apply_option(choices[i].id, value, opt);
        if (status != 0)
            return status;
        opt->recommended |= choices[i].bit;
    }
    return 0;
}

/* The `index`-th name of "a|b|c", copied into buf. */
static void choice_name(const char *choices, double index, char *buf, size_t size)
{
    const char *start = choices;
    for (long i = 0; i < (long)index && start; i++) {
        start = strchr(start, '|');
        start = start ? start + 1 : NULL;
    }
    size_t length = start ? strcspn(start, "|") : 0;
    snprintf(buf, size, "%.*s", (int)length, start ? start : "");
}

static void print_param(const bpl_rule *rule, size_t index)
{
    static const char *const kinds[] = {"real", "int", "bool", "choice"};
    const char *name, *choices, *doc;
    int kind;
    double def, lo, hi;
    if (bpl_rule_param_info(rule, index, &name, &kind, &def, &lo, &hi, &choices, &doc))
        return;
    char def_text[64], range[128];
    if (kind == BPL_PARAM_CHOICE) {
        choice_name(choices, def, def_text, sizeof def_text);
        snprintf(range, sizeof range, "%s", choices);
    } else if (kind == BPL_PARAM_BOOL) {
        snprintf(def_text, sizeof def_text, "%s", def != 0.0 ? "true" : "false");
        snprintf(range, sizeof range, "true|false");
    } else {
        /* Enough digits that an upper bound of 0.999999999 does not read as 1. */
        snprintf(def_text, sizeof def_text, "%.10g", def);
        snprintf(range, sizeof range, "[%.10g, %.10g]", lo, hi);
    }
    const char *kind_name = kind >= 0 && kind < 4 ? kinds[kind] : "?";
    printf("  %-16s %-6s  default %-8s  %-26s  %s\n", name, kind_name, def_text, range, doc);
}

static void print_recommendation(const bpl_rule *rule)
{
    printf("recommended set-up (taken for every option left out):\n");
    for (size_t i = 0; i < bpl_rule_recommendation_count(rule); i++) {
        const char *key, *value;
        if (bpl_rule_recommendation(rule, i, &key, &value) == BPL_OK)
            printf("  %-16s %s\n", key, value[0] ? value : "\"\"");
    }
}

static int list_params(const struct options *opt)
{
    bpl_rule *rule;
    int rc = bpl_rule_create_builtin(&rule, opt->rule);
    if (rc != BPL_OK)
        return library_error(rc);
    printf("rule %s: %s\n", bpl_rule_name(rule), bpl_rule_description(rule));
    printf("hyperparameters (set with --param KEY=VALUE):\n");
    for (size_t i = 0; i < bpl_rule_param_count(rule); i++)
        print_param(rule, i);
    print_recommendation(rule);
    bpl_rule_destroy(rule);
    return EXIT_SUCCESS;
}

/* ---- data ---------------------------------------------------------------- */

static const char *data_dir(const struct options *opt)
{
    const char *env = getenv("BIOPLAUS_MNIST_DIR");
    if (opt->data_dir)
        return opt->data_dir;
    return env && env[0] ? env : default_data_dir;
}

static int data_error(int status, const char *dir)
{
    library_error(status);
    if (status != BPL_ERR_IO && status != BPL_ERR_FORMAT)
        return EXIT_FAILURE;
    fprintf(stderr,
            "%s: expected %s, %s, %s and %s (gzipped or not) in '%s'; "
            "examples/get-mnist.sh %s (in libbioplaus's sources) downloads them, or use "
            "--data DIR or BIOPLAUS_MNIST_DIR\n",
            program, mnist_files[0], mnist_files[1], mnist_files[2], mnist_files[3], dir,
            dir);
    return EXIT_FAILURE;
}

/* Split the official training file into training and validation images. */
static int split_training_file(const struct options *opt, struct session *s,
                               const bpl_dataset *full)
{
    size_t n = bpl_dataset_size(full);
    if (opt->val >= n)
        return usage_error("--val %zu leaves no training images: the file holds %zu",
                           opt->val, n);
    size_t n_train = n - opt->val;
    if (opt->limit && opt->limit < n_train)
        n_train = opt->limit;
    int rc = bpl_dataset_slice(&s->train, full, 0, n_train);
    if (rc == BPL_OK && opt->val)
        rc = bpl_dataset_slice(&s->val, full, n - opt->val, opt->val);
    return rc == BPL_OK ? 0 : library_error(rc);
}

/* The net was built for MNIST's shape before the files were read. */
static int check_data_shape(const struct session *s)
{
    size_t features = bpl_dataset_features(s->test), classes = bpl_dataset_targets(s->test);
    if (features == MNIST_FEATURES && classes == MNIST_CLASSES)
        return 0;
    fprintf(stderr, "%s: the images in '%s' have %zu pixels and %zu classes; this program "
                    "trains on %d pixels (28x28) and %d classes\n",
            program, s->data_dir, features, classes, MNIST_FEATURES, MNIST_CLASSES);
    return EXIT_FAILURE;
}

/* The training file only when there is training to do. */
static int load_data(const struct options *opt, struct session *s)
{
    bpl_dataset *full = NULL;
    s->data_dir = data_dir(opt);
    int rc = opt->epochs ? bpl_dataset_load_mnist(&full, s->data_dir, BPL_MNIST_TRAIN)
                         : BPL_OK;
    if (rc != BPL_OK)
        return data_error(rc, s->data_dir);
    rc = bpl_dataset_load_mnist(&s->test, s->data_dir, BPL_MNIST_TEST);
    if (rc != BPL_OK) {
        bpl_dataset_destroy(full);
        return data_error(rc, s->data_dir);
    }
    int status = full ? split_training_file(opt, s, full) : 0;
    bpl_dataset_destroy(full); /* the slices are copies: free the 47 MB now */
    return status ? status : check_data_shape(s);
}

/* ---- the net ------------------------------------------------------------- */

static void print_log(int level, const char *message, void *user_data)
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
    int rc = BPL_OK;
    for (size_t i = 0; rc == BPL_OK && i < opt->n_hidden; i++)
        rc = bpl_net_add_dense(net, opt->hidden[i], opt->activation, opt->init);
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
                               opt->frozen[i], bpl_net_num_layers(net));
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
    if (rc == BPL_ERR_INVALID_ARG || rc == BPL_ERR_OVERFLOW)
        return usage_error("--hidden: %s", bpl_last_error_message());
    if (rc == BPL_OK)
        rc = bpl_net_set_rule(s->net, s->rule);
    if (rc != BPL_OK)
        return library_error(rc);
    s->rule = NULL; /* the net owns and destroys it now */
    return freeze_layers(opt, s->net);
}

/* "784-256-256-10", read back from the net itself. */
static void describe_architecture(bpl_net *net, char *buf, size_t size)
{
    snprintf(buf, size, "%zu", bpl_net_input_size(net));
    for (size_t i = 0; i < bpl_net_num_layers(net); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "-%zu", bpl_layer_units(bpl_net_layer(net, i)));
    }
}

/* ---- a saved net ----------------------------------------------------------- */

static int same_hidden(const struct options *opt, bpl_net *net)
{
    if (bpl_net_num_layers(net) != opt->n_hidden + 1)
        return 0;
    for (size_t i = 0; i < opt->n_hidden; i++)
        if (bpl_layer_units(bpl_net_layer(net, i)) != opt->hidden[i])
            return 0;
    return 1;
}

static int same_activation(const struct options *opt, bpl_net *net)
{
    size_t n_hidden = bpl_net_num_layers(net) - 1;
    for (size_t i = 0; i < n_hidden; i++)
        if (bpl_layer_activation(bpl_net_layer(net, i)) != opt->activation)
            return 0;
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
static int check_against_file(const struct options *opt, bpl_net *net)
{
    const char *file = opt->load_path;
    const char *rule = bpl_rule_name(bpl_net_rule(net));
    char architecture[1024];
    describe_architecture(net, architecture, sizeof architecture);
    if (given(opt, OPT_RULE) && strcmp(opt->rule, rule) != 0)
        return usage_error("--rule %s: '%s' holds a net trained with rule '%s'", opt->rule,
                           file, rule);
    if (given(opt, OPT_HIDDEN) && !same_hidden(opt, net))
        return usage_error("--hidden: '%s' holds a %s net, whose architecture is kept",
                           file, architecture);
    if (given(opt, OPT_ACTIVATION) && !same_activation(opt, net))
        return usage_error("--activation %s: the hidden layers of the %s net in '%s' are %s",
                           bpl_activation_name(opt->activation), architecture, file,
                           bpl_net_num_layers(net) > 1
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
static int load_net(struct options *opt, struct session *s, struct trainer *t)
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
    if (bpl_net_input_size(s->net) != MNIST_FEATURES ||
        bpl_net_output_size(s->net) != MNIST_CLASSES) {
        fprintf(stderr, "%s: the net in '%s' takes %zu inputs and gives %zu outputs; "
                        "MNIST needs %d and %d\n",
                program, opt->load_path, bpl_net_input_size(s->net),
                bpl_net_output_size(s->net), MNIST_FEATURES, MNIST_CLASSES);
        return EXIT_FAILURE;
    }
    return 0;
}

/* The net of --load, or a new one with a new rule: both with the options
 * applied and the rest of the set-up taken from the rule's recommendation. */
static int prepare_net(struct options *opt, struct session *s, struct trainer *t)
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
    if (opt->load_path && bpl_net_num_layers(net) > 1)
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

static void print_header(const struct options *opt, struct session *s)
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
           bpl_dataset_size(s->train), bpl_dataset_size(s->val), bpl_dataset_size(s->test),
           bpl_blas_backend(), bpl_get_num_threads());
    if (recommended[0])
        printf(" recommended=%s", recommended);
    printf("\n");
    fflush(stdout);
}

/* ---- output files -------------------------------------------------------- */

/* Whether --save will be able to create its file, known before any training
 * depends on it: a probe file in the same directory, removed at once (the
 * library writes a temporary file there and renames it). */
static int check_save_path(const char *path)
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

static int open_csv(const char *path, struct session *s)
{
    s->csv = fopen(path, "w");
    if (!s->csv) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", program, path, strerror(errno));
        return EXIT_FAILURE;
    }
    fprintf(s->csv, "epoch,train_loss,val_accuracy,val_loss,test_accuracy,test_loss,"
                    "seconds,cumulative_seconds\n");
    return 0;
}

/* Validation columns stay empty without a validation set. */
static void write_csv_row(FILE *csv, size_t epoch, const struct epoch_result *r,
                          int have_val, double cumulative_seconds)
{
    fprintf(csv, "%zu,%.6f,", epoch, r->train_loss);
    if (have_val)
        fprintf(csv, "%.6f,%.6f,", r->val_accuracy, r->val_loss);
    else
        fprintf(csv, ",,");
    fprintf(csv, "%.6f,%.6f,%.3f,%.3f\n", r->test_accuracy, r->test_loss, r->seconds,
            cumulative_seconds);
    fflush(csv); /* a long run can be watched, and an aborted one keeps its rows */
}

static int close_csv(const char *path, struct session *s)
{
    int failed = ferror(s->csv) != 0;
    failed |= fclose(s->csv) != 0;
    s->csv = NULL;
    if (failed) {
        fprintf(stderr, "%s: writing '%s' failed\n", program, path);
        return EXIT_FAILURE;
    }
    return 0;
}

/* ---- training ------------------------------------------------------------ */

static int count_digits(size_t n)
{
    return snprintf(NULL, 0, "%zu", n);
}

/* Rows of batch `step` (from 1): only the last batch of an epoch may be short. */
static size_t batch_rows(const struct trainer *t, size_t step)
{
    size_t n_train = bpl_dataset_size(t->session->train);
    size_t start = (step - 1) * t->opt->batch;
    return n_train - start < t->opt->batch ? n_train - start : t->opt->batch;
}

static void draw_progress(struct trainer *t, size_t epoch, size_t step, size_t steps)
{
    enum { BAR_WIDTH = 24 };
    double elapsed = now_seconds() - t->epoch_start;
    size_t examples = (step - 1) * t->opt->batch + batch_rows(t, step);
    size_t filled = BAR_WIDTH * step / steps;
    char bar[BAR_WIDTH + 1];
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    printf("\r\033[Kepoch %*zu/%zu [%s] %*zu/%zu  loss %.4f  %.0f ex/s",
           count_digits(t->opt->epochs), epoch, t->opt->epochs, bar, count_digits(steps),
           step, steps, t->running_loss_sum / (double)examples,
           elapsed > 0.0 ? (double)examples / elapsed : 0.0);
    fflush(stdout);
    t->line_dirty = 1;
}

static void on_batch(struct trainer *t, size_t epoch, size_t step, size_t steps, double loss)
{
    t->running_loss_sum += loss * (double)batch_rows(t, step);
    if (!t->show_progress)
        return;
    double now = now_seconds();
    /* Redrawing every batch would make the terminal the bottleneck. */
    if (step == 1 || step == steps || now - t->last_draw >= 0.1) {
        t->last_draw = now;
        draw_progress(t, epoch, step, steps);
    }
}

/* Evaluation inside the callback cannot fail through bpl_net_fit: keep the
 * message and stop training instead. */
static int stop_with_error(struct trainer *t, int status)
{
    snprintf(t->failure, sizeof t->failure, "%s: %s: %s", program, bpl_strerror(status),
             bpl_last_error_message());
    t->failed = 1;
    return 1;
}

static int evaluate(struct trainer *t, struct epoch_result *r)
{
    struct session *s = t->session;
    int rc = BPL_OK;
    if (s->val)
        rc = bpl_net_evaluate(s->net, s->val, &r->val_accuracy, &r->val_loss);
    if (rc == BPL_OK)
        rc = bpl_net_evaluate(s->net, s->test, &r->test_accuracy, &r->test_loss);
    return rc == BPL_OK ? 0 : stop_with_error(t, rc);
}

static void print_epoch(struct trainer *t, size_t epoch, const struct epoch_result *r)
{
    if (t->line_dirty)
        printf("\r\033[K"); /* the epoch line replaces the progress bar */
    t->line_dirty = 0;
    printf("epoch %*zu/%zu  train_loss %.4f", count_digits(t->opt->epochs), epoch,
           t->opt->epochs, r->train_loss);
    if (t->session->val)
        printf("  val_acc %.4f", r->val_accuracy);
    printf("  test_acc %.4f  time %.2fs\n", r->test_accuracy, r->seconds);
    fflush(stdout);
}

/* The rule reads "lr" at every step, so a schedule is a setting between epochs. */
static int decay_learning_rate(struct trainer *t)
{
    bpl_rule *rule = bpl_net_rule(t->session->net);
    double lr;
    int rc = bpl_rule_get(rule, "lr", &lr);
    if (rc == BPL_OK)
        rc = bpl_rule_set(rule, "lr", lr * t->opt->lr_decay);
    return rc == BPL_OK ? 0 : stop_with_error(t, rc);
}

static int on_epoch(struct trainer *t, size_t epoch, double train_loss)
{
    struct epoch_result r = {0};
    r.train_loss = train_loss;
    r.seconds = now_seconds() - t->epoch_start;
    t->train_seconds += r.seconds;
    /* With nothing to show for it, evaluating before the last epoch is wasted time. */
    int wanted = !t->opt->quiet || t->session->csv || epoch == t->opt->epochs;
    if (wanted && evaluate(t, &r) != 0)
        return 1;
    if (!t->opt->quiet)
        print_epoch(t, epoch, &r);
    if (t->session->csv)
        write_csv_row(t->session->csv, epoch, &r, t->session->val != NULL, t->train_seconds);
    if (t->opt->lr_decay != 1.0 && decay_learning_rate(t) != 0)
        return 1;
    t->last = r;
    t->epochs_done = epoch;
    t->running_loss_sum = 0.0;
    t->epoch_start = now_seconds(); /* evaluation time is not training time */
    return 0;
}

static int on_progress(int event, size_t epoch, size_t step, size_t steps, double loss,
                       void *user_data)
{
    struct trainer *t = user_data;
    if (event == BPL_EVENT_BATCH) {
        on_batch(t, epoch, step, steps, loss);
        return 0;
    }
    return event == BPL_EVENT_EPOCH ? on_epoch(t, epoch, loss) : 0;
}

static int train(struct trainer *t)
{
    struct session *s = t->session;
    t->epoch_start = now_seconds();
    int rc = bpl_net_fit(s->net, s->train, t->opt->epochs, t->opt->batch, on_progress, t);
    if (t->line_dirty) {
        printf("\n"); /* keep the interrupted progress bar visible */
        t->line_dirty = 0;
    }
    if (rc != BPL_OK)
        return library_error(rc);
    if (t->failed) {
        fprintf(stderr, "%s\n", t->failure);
        return EXIT_FAILURE;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int set_threads(int threads)
{
    if (threads == 0)
        return 0;
    int rc = bpl_set_num_threads(threads);
    if (rc == BPL_ERR_UNSUPPORTED) { /* e.g. the single-threaded builtin kernels */
        fprintf(stderr, "%s: warning: --threads %d ignored: %s\n", program, threads,
                bpl_last_error_message());
        return 0;
    }
    return rc == BPL_OK ? 0 : library_error(rc);
}

static int save_net(const struct options *opt, const struct session *s)
{
    int rc = bpl_net_save(s->net, opt->save_path);
    if (rc != BPL_OK)
        return library_error(rc);
    if (!opt->quiet)
        printf("saved the %s net to %s\n", opt->epochs ? "trained" : "loaded", opt->save_path);
    return 0;
}

/* A loaded net without --epochs: the test set only. */
static int evaluate_only(struct trainer *t)
{
    struct session *s = t->session;
    int rc = bpl_net_evaluate(s->net, s->test, &t->last.test_accuracy, &t->last.test_loss);
    return rc == BPL_OK ? 0 : library_error(rc);
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

static void print_final(const struct trainer *t)
{
    char seconds[64];
    format_seconds(t->train_seconds, seconds, sizeof seconds);
    printf("final test_accuracy=%.4f test_error=%.2f epochs=%zu seconds=%s\n",
           t->last.test_accuracy, 100.0 * (1.0 - t->last.test_accuracy), t->epochs_done,
           seconds);
}

static void close_session(struct session *s)
{
    if (s->csv)
        fclose(s->csv);
    bpl_net_destroy(s->net);
    bpl_rule_destroy(s->rule);
    bpl_dataset_destroy(s->train);
    bpl_dataset_destroy(s->val);
    bpl_dataset_destroy(s->test);
}

static int run(struct options *opt)
{
    struct session s = {0};
    struct trainer t = {0};
    t.opt = opt;
    t.session = &s;
    t.show_progress = !opt->quiet && isatty(STDOUT_FILENO);
    /* Usage errors, and a --save that cannot succeed, come before the slow
     * data load. */
    int status = prepare_net(opt, &s, &t);
    if (status == 0 && opt->save_path)
        status = check_save_path(opt->save_path);
    if (status == 0)
        status = set_threads(opt->threads);
    if (status == 0)
        status = load_data(opt, &s);
    if (status == 0 && opt->csv_path)
        status = open_csv(opt->csv_path, &s);
    if (status == 0 && !opt->quiet)
        print_header(opt, &s);
    if (status == 0)
        status = opt->epochs ? train(&t) : evaluate_only(&t);
    if (status == 0 && opt->csv_path)
        status = close_csv(opt->csv_path, &s);
    if (status == 0 && opt->save_path)
        status = save_net(opt, &s);
    if (status == 0)
        print_final(&t);
    close_session(&s);
    return status;
}

int main(int argc, char **argv)
{
    struct options opt;
    int status = parse_options(argc, argv, &opt);
    if (status != KEEP_GOING)
        return status;
    if (opt.list_params)
        return list_params(&opt);
    return run(&opt);
}
