/*
 * bench_train.c - seconds per training epoch, and where the time goes.
 *
 *   bench/bench-train [--rules backprop,fa,dfa] [--batches 64,128]
 *                     [--hidden 256,256] [--repeats 3] [--threads N]
 *                     [--param key=value]... [--data DIR] [--synthetic]
 *
 * Trains 784-<hidden>-10 tanh nets on the 60,000 MNIST training images (or
 * synthetic data of the same shape when the files are missing or with
 * --synthetic) and prints, per rule and batch size, the median seconds per
 * epoch (wall clock of bpl_net_fit: batch gathering included) with the range
 * over the repeats, that time relative to backprop's at the same batch size
 * (backprop always runs), the share of training-step time spent in matrix
 * products, their GFLOP/s, the examples per second and the microseconds per
 * example.  --param sets a hyperparameter of every rule but backprop's
 * reference runs (e.g. --param mode=spiking with --rules segregated).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bioplaus.h"

#define MAX_ITEMS 16

typedef struct options {
    char rules[MAX_ITEMS][32];
    size_t n_rules;
    size_t batches[MAX_ITEMS], n_batches;
    size_t hidden[MAX_ITEMS], n_hidden;
    int repeats, threads, synthetic;
    const char *data;
    const char *params[MAX_ITEMS];
    size_t n_params;
} options;

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench-train: %s: %s: %s\n", what, bpl_strerror(rc),
            bpl_last_error_message());
    exit(1);
}

static size_t parse_list(const char *text, size_t *out)
{
    size_t n = 0;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *tok = strtok(copy, ","); tok && n < MAX_ITEMS; tok = strtok(NULL, ",")) {
        long v = strtol(tok, NULL, 10);
        if (v <= 0) {
            fprintf(stderr, "bench-train: '%s' is not a positive number\n", tok);
            exit(2);
        }
        out[n++] = (size_t)v;
    }
    return n;
}

static void parse_rules(const char *text, options *o)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    o->n_rules = 0;
    for (char *tok = strtok(copy, ","); tok && o->n_rules < MAX_ITEMS; tok = strtok(NULL, ","))
        snprintf(o->rules[o->n_rules++], sizeof o->rules[0], "%s", tok);
}

static void parse(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"rules", required_argument, 0, 'r'},  {"batches", required_argument, 0, 'b'},
        {"hidden", required_argument, 0, 'H'}, {"repeats", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"data", required_argument, 0, 'd'},
        {"synthetic", no_argument, 0, 's'},    {"help", no_argument, 0, 'h'},
        {"param", required_argument, 0, 'p'},
        {0, 0, 0, 0}};
    parse_rules("backprop", o);
    o->n_batches = parse_list("64,128", o->batches);
    o->n_hidden = parse_list("256,256", o->hidden);
    o->repeats = 3;
    o->data = getenv("BIOPLAUS_MNIST_DIR") ? getenv("BIOPLAUS_MNIST_DIR") : "data/mnist";
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'r': parse_rules(optarg, o); break;
        case 'b': o->n_batches = parse_list(optarg, o->batches); break;
        case 'H': o->n_hidden = parse_list(optarg, o->hidden); break;
        case 'n': o->repeats = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
        case 't': o->threads = atoi(optarg); break;
        case 'd': o->data = optarg; break;
        case 's': o->synthetic = 1; break;
        case 'p':
            if (o->n_params < MAX_ITEMS)
                o->params[o->n_params++] = optarg;
            break;
        default:
            printf("usage: bench-train [--rules a,b] [--batches 64,128] [--hidden 256,256]\n"
                   "                   [--repeats N] [--threads N] [--param k=v]... "
                   "[--data DIR] [--synthetic]\n");
            exit(c == 'h' ? 0 : 2);
        }
    }
}

/* Random pixels and labels of MNIST's shape, for machines without the files. */
static bpl_dataset *synthetic_mnist(void)
{
    enum { N = 60000, F = 784 };
    uint8_t *pixels = malloc((size_t)N * F), *labels = malloc(N);
    if (!pixels || !labels) {
        fprintf(stderr, "bench-train: out of memory\n");
        exit(1);
    }
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)N * F; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        pixels[i] = (uint8_t)(s >> 56);
    }
    for (size_t i = 0; i < N; i++)
        labels[i] = (uint8_t)(i % 10);
    bpl_dataset *ds;
    int rc = bpl_dataset_from_u8(&ds, pixels, labels, N, F, 10);
    free(pixels);
    free(labels);
    if (rc != BPL_OK)
        die("synthetic data", rc);
    return ds;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per epoch of `rule_name` at `batch`, with the figures it
 * prints; `reference` is backprop's median at that batch (0: none yet). */
static double run(const options *o, const bpl_dataset *ds, const char *rule_name,
                  size_t batch, double reference)
{
    double seconds[64], gemm_share = 0, gflops = 0;
    int repeats = o->repeats < 64 ? o->repeats : 64;
    for (int r = 0; r < repeats; r++) {
        bpl_net *net;
        bpl_rule *rule;
        int rc = bpl_net_create(&net, 784, (uint64_t)r + 1);
        for (size_t l = 0; rc == BPL_OK && l < o->n_hidden; l++)
            rc = bpl_net_add_dense(net, o->hidden[l], BPL_ACT_TANH, BPL_INIT_GLOROT_UNIFORM);
        if (rc == BPL_OK)
            rc = bpl_net_add_dense(net, 10, BPL_ACT_SOFTMAX, BPL_INIT_GLOROT_UNIFORM);
        if (rc == BPL_OK)
            rc = bpl_rule_create_builtin(&rule, rule_name);
        for (size_t p = 0; rc == BPL_OK && reference > 0 && p < o->n_params; p++) {
            char key[64];
            const char *eq = strchr(o->params[p], '=');
            snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - o->params[p]) : 0, o->params[p]);
            rc = eq ? bpl_rule_set_string(rule, key, eq + 1) : BPL_ERR_INVALID_ARG;
            if (rc != BPL_OK)
                bpl_rule_destroy(rule);
        }
        if (rc == BPL_OK && (rc = bpl_net_set_rule(net, rule)) != BPL_OK)
            bpl_rule_destroy(rule);
        if (rc == BPL_OK)
            rc = bpl_net_set_profiling(net, 1);
        double start = now();
        if (rc == BPL_OK)
            rc = bpl_net_fit(net, ds, 1, batch, NULL, NULL);
        seconds[r] = now() - start;
        if (rc != BPL_OK)
            die(rule_name, rc);
        double step_s, gemm_s, flops;
        uint64_t steps;
        bpl_net_profile(net, &step_s, &gemm_s, &flops, &steps);
        gemm_share += gemm_s / step_s / repeats;
        gflops += flops / gemm_s / 1e9 / repeats;
        bpl_net_destroy(net);
    }
    qsort(seconds, (size_t)repeats, sizeof seconds[0], compare_doubles);
    double median = repeats % 2 ? seconds[repeats / 2]
                                : 0.5 * (seconds[repeats / 2 - 1] + seconds[repeats / 2]);
    printf("%-10s %6zu %10.3f %8.3f-%-8.3f %9.2fx %10.1f%% %9.1f %12.0f %8.1f\n", rule_name,
           batch, median, seconds[0], seconds[repeats - 1],
           reference > 0 ? median / reference : 1.0, 100.0 * gemm_share, gflops,
           (double)bpl_dataset_size(ds) / median, 1e6 * median / (double)bpl_dataset_size(ds));
    return median;
}

int main(int argc, char **argv)
{
    options o = {0};
    parse(argc, argv, &o);
    if (o.threads > 0 && bpl_set_num_threads(o.threads) != BPL_OK)
        die("--threads", BPL_ERR_UNSUPPORTED);
    bpl_dataset *ds = NULL;
    const char *source = "synthetic (random pixels)";
    if (!o.synthetic && bpl_dataset_load_mnist(&ds, o.data, BPL_MNIST_TRAIN) == BPL_OK)
        source = o.data;
    else
        ds = synthetic_mnist();
    char arch[128] = "784";
    for (size_t l = 0; l < o.n_hidden; l++)
        snprintf(arch + strlen(arch), sizeof arch - strlen(arch), "-%zu", o.hidden[l]);
    printf("libbioplaus %s, BLAS %s (%s)\n", bpl_version_string(), bpl_blas_backend(),
           bpl_blas_info());
    printf("net %s-10 tanh, %zu examples from %s, %d repeat(s)\n\n",
           arch, bpl_dataset_size(ds), source, o.repeats);
    printf("%-10s %6s %10s %17s %10s %11s %9s %12s %8s\n", "rule", "batch", "s/epoch", "range",
           "vs bprop", "GEMM share", "GFLOP/s", "examples/s", "us/ex");
    /* Backprop runs first at every batch size: the other rules are timed
     * against it. */
    for (size_t b = 0; b < o.n_batches; b++) {
        double reference = run(&o, ds, "backprop", o.batches[b], 0.0);
        for (size_t r = 0; r < o.n_rules; r++)
            if (strcmp(o.rules[r], "backprop") != 0)
                run(&o, ds, o.rules[r], o.batches[b], reference);
    }
    bpl_dataset_destroy(ds);
    return 0;
}
