/*
 * options.c - the command line of bench-train: the lists of rules, nets,
 * batch sizes and thread counts, the presets --matrix and --quick applied
 * where they stand, and the rest.
 */
#include "bench_train.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The presets.  The default (no preset) is the historical bench-train:
 * backprop, 784-256-256-10, batches 64 and 128, 3 repeats, BLAS threads as
 * the BLAS library chooses. */
static const char *const MATRIX_ARGS[] = {
    "--rules", "all", "--nets", "784-256-256-10,784-500-10,784-500-500-10",
    "--batches", "32,64,128,256", "--threads", "1,2", "--repeats", "3"};
static const char *const QUICK_ARGS[] = {
    "--rules", "backprop,fa,dfa,dtp", "--nets", "784-256-256-10", "--batches", "128",
    "--threads", "1,2", "--repeats", "1", "--gemm-seconds", "0.02"};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: bench-train [--matrix | --quick] [--rules a,b|all] "
            "[--nets 784-256-256-10,...]\n"
            "                   [--hidden 256,256] [--batches 64,128] [--threads 1,2] "
            "[--repeats N]\n"
            "                   [--param [rule:]key=value]... [--data DIR] [--synthetic]\n"
            "                   [--torch SCRIPT] [--python PYTHON] [--csv FILE]\n"
            "                   [--gemm-seconds S] [--in-process]\n");
}

static void bad_option(const char *what, const char *text)
{
    fprintf(stderr, "bench-train: %s: '%s'\n", what, text);
    exit(2);
}

static size_t parse_list(const char *text, size_t *out, char sep)
{
    size_t n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || errno || (*end && *end != sep) || n == MAX_ITEMS)
            bad_option("expected a list of positive numbers", text);
        out[n++] = (size_t)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0)
        bad_option("empty list", text);
    return n;
}

static void parse_rules(const char *text, options *o)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", text);
    o->n_rules = 0;
    if (strcmp(text, "all") == 0) {
        for (size_t i = 0; i < bpl_rule_builtin_count() && o->n_rules < MAX_ITEMS; i++)
            snprintf(o->rules[o->n_rules++], sizeof o->rules[0], "%s",
                     bpl_rule_builtin_name(i));
        return;
    }
    for (char *tok = strtok(copy, ","); tok && o->n_rules < MAX_ITEMS;
         tok = strtok(NULL, ",")) {
        /* Unknown names fail now, not an hour into the matrix. */
        int known = 0;
        for (size_t i = 0; i < bpl_rule_builtin_count(); i++)
            known |= strcmp(tok, bpl_rule_builtin_name(i)) == 0;
        if (!known)
            bad_option("not a built-in rule (bpl_rule_builtin_name lists them)", tok);
        snprintf(o->rules[o->n_rules++], sizeof o->rules[0], "%s", tok);
    }
}

/* "784-256-256-10,784-500-10": whole nets, inputs and outputs included, so
 * that the names in the tables are the nets' usual names. */
static void parse_nets(const char *text, options *o)
{
    char copy[512];
    snprintf(copy, sizeof copy, "%s", text);
    o->n_nets = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_nets == MAX_ITEMS)
            bad_option("too many nets", text);
        net_shape *s = &o->nets[o->n_nets++];
        size_t sizes[MAX_ITEMS];
        s->n_sizes = parse_list(tok, sizes, '-');
        if (s->n_sizes < 2 || s->n_sizes > MAX_LAYERS + 2 || sizes[0] != 784 ||
            sizes[s->n_sizes - 1] != 10)
            bad_option("a net is 784-<hidden>-...-10 (MNIST's shape)", tok);
        memcpy(s->sizes, sizes, s->n_sizes * sizeof sizes[0]);
    }
}

static void parse_hidden(const char *text, options *o)
{
    size_t hidden[MAX_ITEMS];
    size_t n = parse_list(text, hidden, ',');
    if (n > MAX_LAYERS)
        bad_option("too many hidden layers", text);
    net_shape *s = &o->nets[0];
    s->sizes[0] = 784;
    memcpy(s->sizes + 1, hidden, n * sizeof hidden[0]);
    s->sizes[n + 1] = 10;
    s->n_sizes = n + 2;
    o->n_nets = 1;
}

static void apply(options *o, int c, const char *arg)
{
    switch (c) {
    case 'r': parse_rules(arg, o); break;
    case 'N': parse_nets(arg, o); break;
    case 'H': parse_hidden(arg, o); break;
    case 'b': o->n_batches = parse_list(arg, o->batches, ','); break;
    case 't': o->n_threads = parse_list(arg, o->threads, ','); break;
    case 'n':
        o->repeats = atoi(arg);
        if (o->repeats < 1 || o->repeats > MAX_REPEATS)
            bad_option("--repeats is 1..64", arg);
        break;
    case 'g':
        o->gemm_seconds = atof(arg);
        if (!(o->gemm_seconds > 0 && o->gemm_seconds < 100))
            bad_option("--gemm-seconds is a positive number of seconds", arg);
        break;
    case 'd': o->data = arg; break;
    case 's': o->synthetic = 1; break;
    case 'i': o->in_process = 1; break;
    case 'T': o->torch = arg; break;
    case 'P': o->python = arg; break;
    case 'c': o->csv = arg; break;
    case 'p':
        if (o->n_params == MAX_ITEMS || !strchr(arg, '='))
            bad_option("--param takes [rule:]key=value, at most 16 times", arg);
        o->params[o->n_params++] = arg;
        break;
    default: usage(c == 'h' ? stdout : stderr); exit(c == 'h' ? 0 : 2);
    }
}

static const struct option LONGS[] = {
    {"rules", required_argument, 0, 'r'},   {"nets", required_argument, 0, 'N'},
    {"hidden", required_argument, 0, 'H'},  {"batches", required_argument, 0, 'b'},
    {"threads", required_argument, 0, 't'}, {"repeats", required_argument, 0, 'n'},
    {"data", required_argument, 0, 'd'},    {"synthetic", no_argument, 0, 's'},
    {"param", required_argument, 0, 'p'},   {"torch", required_argument, 0, 'T'},
    {"python", required_argument, 0, 'P'},  {"csv", required_argument, 0, 'c'},
    {"gemm-seconds", required_argument, 0, 'g'},
    {"in-process", no_argument, 0, 'i'},    {"matrix", no_argument, 0, 'm'},
    {"quick", no_argument, 0, 'q'},         {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static void apply_preset(options *o, const char *const *args, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        for (const struct option *l = LONGS; l->name; l++)
            if (strcmp(args[i] + 2, l->name) == 0)
                apply(o, l->val, args[i + 1]);
}

void parse(int argc, char **argv, options *o)
{
    parse_rules("backprop", o);
    parse_hidden("256,256", o);
    o->n_batches = parse_list("64,128", o->batches, ',');
    o->repeats = 3;
    o->gemm_seconds = 0.05;
    o->python = "python3";
    o->data = getenv("BIOPLAUS_MNIST_DIR") ? getenv("BIOPLAUS_MNIST_DIR") : "data/mnist";
    int c;
    while ((c = getopt_long(argc, argv, "", LONGS, NULL)) != -1) {
        if (c == 'm') {
            apply_preset(o, MATRIX_ARGS, sizeof MATRIX_ARGS / sizeof MATRIX_ARGS[0]);
        } else if (c == 'q') {
            apply_preset(o, QUICK_ARGS, sizeof QUICK_ARGS / sizeof QUICK_ARGS[0]);
        } else {
            apply(o, c, optarg);
        }
    }
    if (optind < argc)
        bad_option("unexpected argument", argv[optind]);
}
