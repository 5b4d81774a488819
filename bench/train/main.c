/*
 * bench_train.c - seconds per training epoch, and where the time and the
 * memory go.
 *
 *   bench/bench-train [--matrix | --quick] [--rules backprop,fa,dfa|all]
 *                     [--nets 784-256-256-10,...] [--hidden 256,256]
 *                     [--batches 64,128] [--threads 1,2] [--repeats 3]
 *                     [--param [rule:]key=value]... [--data DIR] [--synthetic]
 *                     [--torch SCRIPT] [--python PYTHON] [--csv FILE]
 *                     [--gemm-seconds S] [--in-process]
 *
 * Trains tanh nets with a softmax output on the 60,000 MNIST training images
 * (or synthetic data of the same shape when the files are missing or with
 * --synthetic), one epoch per repeat, for every rule x net x batch size x
 * thread count, and prints per configuration:
 *
 *  - the median seconds per epoch (wall clock of bpl_net_fit: batch
 *    gathering included) with the range over the repeats, and that time
 *    relative to backprop's (backprop always runs) and to the GEMM-only
 *    bound of a backprop epoch;
 *  - the share of training-step time spent in matrix products, their rate,
 *    and the rate bpl_gemm reaches on the products of a backprop step of the
 *    same net and batch when each is timed alone (the "sgemm" rate);
 *  - the peak RSS of the process that trained, against the size the
 *    training needs in theory (dataset as uint8, parameters, optimiser
 *    state, workspace);
 *  - optionally the seconds per epoch of the PyTorch reference
 *    (bench/torch_ref.py, run as a subprocess with the same environment) and
 *    the ratio libbioplaus / PyTorch.
 *
 * --matrix and --quick are presets (the full matrix of docs/performance.md,
 * or a short subset) applied where they stand: options after them override
 * single dimensions.
 * --param sets a hyperparameter of every rule but backprop, or with a
 * "rule:" prefix of that rule only (e.g. --param segregated:mode=spiking).
 * --gemm-seconds is the time spent timing each product for the sgemm rate
 * (default 0.05).  --csv writes every figure of every row to FILE.
 *
 * Each configuration runs in a child process of its own, so that its peak
 * RSS is its own (--in-process runs everything in this process, e.g. under
 * a profiler; the peak RSS is then the process's running peak).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#else
#define HAVE_MALLINFO2 0
#endif

#include "bioplaus.h"

#define MAX_ITEMS 16
#define MAX_LAYERS 8
#define MAX_REPEATS 64
#define MAX_TORCH 512
#define MIB (1024.0 * 1024.0)

/* The presets.  The default (no preset) is the historical bench-train:
 * backprop, 784-256-256-10, batches 64 and 128, 3 repeats, BLAS threads as
 * the BLAS library chooses. */
static const char *const MATRIX_ARGS[] = {
    "--rules", "all", "--nets", "784-256-256-10,784-500-10,784-500-500-10",
    "--batches", "32,64,128,256", "--threads", "1,2", "--repeats", "3"};
static const char *const QUICK_ARGS[] = {
    "--rules", "backprop,fa,dfa,dtp", "--nets", "784-256-256-10", "--batches", "128",
    "--threads", "1,2", "--repeats", "1", "--gemm-seconds", "0.02"};

/* The GEMM-only lower bound is always reported for this configuration. */
static const size_t BOUND_NET[] = {784, 256, 256, 10};
#define BOUND_BATCH 128

/* Rules that bench/torch_ref.py implements. */
static const char *const TORCH_RULES[] = {"backprop", "fa", "dtp"};

typedef struct net_shape {
    size_t sizes[MAX_LAYERS + 2]; /* inputs, hidden..., outputs */
    size_t n_sizes;
} net_shape;

typedef struct options {
    char rules[MAX_ITEMS][32];
    size_t n_rules;
    net_shape nets[MAX_ITEMS];
    size_t n_nets;
    size_t batches[MAX_ITEMS], n_batches;
    size_t threads[MAX_ITEMS], n_threads;
    int repeats, synthetic, in_process;
    double gemm_seconds;
    const char *data;
    const char *params[MAX_ITEMS];
    size_t n_params;
    const char *torch, *python, *csv;
} options;

/* How a child's job ended: the first member of both kinds of result, so
 * that the code running jobs can report a child that died. */
typedef struct outcome {
    int ok;
    char error[256];
} outcome;

typedef struct train_result {
    outcome status;
    int repeats;
    double seconds[MAX_REPEATS];
    double gemm_share, gemm_gflops;
    double peak_rss, heap;                     /* bytes */
    double dataset, params, state, workspace; /* bytes, in theory */
} train_result;

typedef struct gemm_result {
    outcome status;
    double step_seconds;  /* the products of one backprop step at the batch */
    double step_flops;
    double epoch_seconds; /* the products of a backprop epoch: the GEMM-only bound */
    size_t n_shapes;
    struct {
        int trans_a, trans_b;
        size_t m, n, k;
        double seconds;
    } shapes[3 * (MAX_LAYERS + 1)];
} gemm_result;

typedef struct torch_entry {
    char rule[32];
    size_t net, batch, threads;
    double median, lo, hi, peak_rss_mib;
} torch_entry;

typedef struct job {
    const options *o;
    const bpl_dataset *ds;
    const net_shape *net;
    const char *rule;
    size_t batch, threads;
    int reference; /* backprop's reference run: --param without prefix skipped */
} job;

/* ---- option parsing ------------------------------------------------------- */

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

static void parse(int argc, char **argv, options *o)
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

/* ---- small helpers ---------------------------------------------------------- */

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

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void net_name(const net_shape *s, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < s->n_sizes; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%zu", i ? "-" : "", s->sizes[i]);
}

/* "1 BLAS thread", "2 BLAS threads", or the BLAS's own choice for 0. */
static const char *threads_text(size_t threads, char *out, size_t size)
{
    if (threads)
        snprintf(out, size, "%zu BLAS thread%s", threads, threads > 1 ? "s" : "");
    else
        snprintf(out, size, "the BLAS's default threads");
    return out;
}

static int same_net(const net_shape *s, const size_t *sizes, size_t n)
{
    return s->n_sizes == n && memcmp(s->sizes, sizes, n * sizeof sizes[0]) == 0;
}

static double peak_rss_bytes(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0; /* Linux reports KiB */
}

/* The resident set now (Linux), 0 if unknown. */
static double current_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Bytes the allocator has handed out and not taken back: the heap as the
 * library and this program see it, without allocator or BLAS overheads. */
static double heap_bytes(void)
{
#if HAVE_MALLINFO2
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
#else
    return 0.0;
#endif
}

static void set_error(outcome *status, const char *what, int rc)
{
    snprintf(status->error, sizeof status->error, "%s: %s: %s", what, bpl_strerror(rc),
             bpl_last_error_message());
}

/* ---- data -------------------------------------------------------------------- */

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
    if (rc != BPL_OK) {
        fprintf(stderr, "bench-train: synthetic data: %s\n", bpl_last_error_message());
        exit(1);
    }
    return ds;
}

/* ---- one configuration: train and measure --------------------------------- */

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
    size_t n = bpl_dataset_size(ds), rows = batch < n ? batch : n;
    double params = 0, trained = 0, units = 0;
    for (size_t l = 0; l < bpl_net_num_layers(net); l++) {
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
    size_t rows = j->batch < bpl_dataset_size(j->ds) ? j->batch : bpl_dataset_size(j->ds);
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

static void train_job(const job *j, void *out)
{
    train_result *r = out;
    memset(r, 0, sizeof *r);
    r->repeats = j->o->repeats;
    int rc = j->threads ? bpl_set_num_threads((int)j->threads) : BPL_OK;
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

/* ---- the GEMM-only bound and the sgemm rate -------------------------------- */

static void fill(float *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (float)((double)(seed >> 40) / (double)(1ULL << 24) - 0.5);
    }
}

/* Seconds of one product: the best of five loops of budget/5 seconds each.
 * The best, not the mean, because this is a lower bound and interruptions
 * by other processes only ever add time. */
static double time_gemm(int ta, int tb, size_t m, size_t n, size_t k, const float *a,
                        const float *b, float *c, double budget)
{
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    bpl_gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n); /* warm */
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        size_t calls = 0;
        double start = now(), elapsed;
        do {
            bpl_gemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            calls++;
            elapsed = now() - start;
        } while (elapsed < budget / 5);
        double each = elapsed / (double)calls;
        best = trial == 0 || each < best ? each : best;
    }
    return best;
}

/* The products of one backprop step at `rows` rows, each timed alone, with
 * the shapes and transposes the library uses (lib/dense.c): per layer the
 * forward product, the weight gradient delta^T x, and (above the first
 * layer) the error sent down, delta W. */
static double time_step(const job *j, size_t rows, float *const *buf, gemm_result *r,
                        int record)
{
    const net_shape *s = j->net;
    double total = 0;
    for (size_t l = 1; l < s->n_sizes; l++) {
        size_t in = s->sizes[l - 1], out = s->sizes[l];
        const float *x = buf[0], *w = buf[1];
        float *c = buf[2];
        struct { int ta, tb; size_t m, n, k; } shapes[3] = {
            {0, 1, rows, out, in},  /* activation = x W^T */
            {1, 0, out, in, rows},  /* grad W = delta^T x */
            {0, 0, rows, in, out}}; /* delta below = delta W */
        for (int i = 0; i < (l > 1 ? 3 : 2); i++) {
            double t = time_gemm(shapes[i].ta, shapes[i].tb, shapes[i].m, shapes[i].n,
                                 shapes[i].k, x, w, c, j->o->gemm_seconds);
            total += t;
            if (record && r->n_shapes < sizeof r->shapes / sizeof r->shapes[0]) {
                r->shapes[r->n_shapes].trans_a = shapes[i].ta;
                r->shapes[r->n_shapes].trans_b = shapes[i].tb;
                r->shapes[r->n_shapes].m = shapes[i].m;
                r->shapes[r->n_shapes].n = shapes[i].n;
                r->shapes[r->n_shapes].k = shapes[i].k;
                r->shapes[r->n_shapes].seconds = t;
                r->n_shapes++;
                r->step_flops += 2.0 * (double)shapes[i].m * (double)shapes[i].n *
                                 (double)shapes[i].k;
            }
        }
    }
    return total;
}

static void gemm_job(const job *j, void *out)
{
    gemm_result *r = out;
    memset(r, 0, sizeof *r);
    int rc = j->threads ? bpl_set_num_threads((int)j->threads) : BPL_OK;
    if (rc != BPL_OK) {
        set_error(&r->status, "threads", rc);
        return;
    }
    /* One operand size fits every product: rows x widest or widest^2. */
    size_t widest = 0, n = bpl_dataset_size(j->ds);
    for (size_t l = 0; l < j->net->n_sizes; l++)
        widest = j->net->sizes[l] > widest ? j->net->sizes[l] : widest;
    size_t side = j->batch > widest ? j->batch : widest;
    float *buf[3] = {NULL, NULL, NULL};
    int have = 1;
    for (int i = 0; i < 3; i++) {
        buf[i] = malloc(side * widest * sizeof(float));
        have = have && buf[i];
        if (buf[i])
            fill(buf[i], side * widest, (uint64_t)i + 7);
    }
    if (!have) {
        set_error(&r->status, "gemm buffers", BPL_ERR_NOMEM);
    } else {
        r->step_seconds = time_step(j, j->batch, buf, r, 1);
        size_t full = n / j->batch, rest = n % j->batch;
        r->epoch_seconds = (double)full * r->step_seconds;
        if (rest)
            r->epoch_seconds += time_step(j, rest, buf, r, 0);
        r->status.ok = 1;
    }
    for (int i = 0; i < 3; i++)
        free(buf[i]);
}

/* ---- running a job in a child process -------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t read_all(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Run fn(j, out) in a child and copy its `size`-byte result back; `out`
 * points to a result that starts with its outcome. */
static void run_job(const job *j, void (*fn)(const job *, void *), void *out, size_t size)
{
    if (j->o->in_process) {
        fn(j, out);
        return;
    }
    int fds[2];
    outcome *head = out; /* every result starts with its outcome */
    if (pipe(fds) != 0) {
        memset(out, 0, size);
        snprintf(head->error, sizeof head->error, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL); /* or the child would flush the parent's pending output again */
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        fn(j, out);
        _exit(write_all(fds[1], out, size) == 0 ? 0 : 1);
    }
    close(fds[1]);
    size_t got = pid > 0 ? read_all(fds[0], out, size) : 0;
    close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (pid < 0 || got != size) {
        memset(out, 0, size);
        if (pid < 0)
            snprintf(head->error, sizeof head->error, "fork: %s", strerror(errno));
        else if (WIFSIGNALED(status))
            snprintf(head->error, sizeof head->error, "the child died of signal %d",
                     WTERMSIG(status));
        else
            snprintf(head->error, sizeof head->error, "the child exited without a result");
    }
}

/* ---- the PyTorch reference ---------------------------------------------------- */

/* Single-quote `s` for the shell. */
static void quote(char *out, size_t size, const char *s)
{
    size_t n = 0;
    if (n + 1 < size)
        out[n++] = '\'';
    for (; *s && n + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            out[n++] = *s;
        }
    }
    if (n + 1 < size)
        out[n++] = '\'';
    out[n] = '\0';
}

static int torch_command(const options *o, char *cmd, size_t size)
{
    char py[1024], script[1024];
    quote(py, sizeof py, o->python);
    quote(script, sizeof script, o->torch);
    return snprintf(cmd, size, "%s %s", py, script) < (int)size;
}

/* Run the reference's --info; 0 and the reason printed if it cannot run. */
static int torch_available(const options *o)
{
    char cmd[2200], line[1024];
    if (!torch_command(o, cmd, sizeof cmd - 20))
        return 0;
    strcat(cmd, " --info 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("PyTorch reference: SKIPPED: cannot run '%s %s': %s\n", o->python, o->torch,
               strerror(errno));
        return 0;
    }
    char text[4096] = "";
    while (fgets(line, sizeof line, p))
        if (strlen(text) + strlen(line) < sizeof text)
            strcat(text, line);
    int status = pclose(p);
    if (status != 0) {
        size_t end = strlen(text);
        while (end > 0 && text[end - 1] == '\n')
            text[--end] = '\0';
        const char *last = strrchr(text, '\n') ? strrchr(text, '\n') + 1 : text;
        printf("PyTorch reference: SKIPPED: '%s %s --info' failed: %s\n"
               "  Install Debian's PyTorch (apt-get install python3-torch) or name an "
               "interpreter that has it with --python.\n",
               o->python, o->torch, last[0] ? last : "no output");
        return 0;
    }
    printf("%s", text);
    return 1;
}

static void csv_list(char *out, size_t size, const size_t *v, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%zu", i ? "," : "", v[i]);
}

/* Run the reference for one net and thread count over every batch and every
 * rule it implements, appending to `t`. */
static void run_torch(const options *o, size_t net, size_t threads, torch_entry *t,
                      size_t *n_t)
{
    char cmd[4096], name[128], batches[256], rules[128] = "", data[1024];
    net_name(&o->nets[net], name, sizeof name);
    csv_list(batches, sizeof batches, o->batches, o->n_batches);
    /* Backprop always: the tables time every rule against it. */
    for (size_t i = 0; i < sizeof TORCH_RULES / sizeof TORCH_RULES[0]; i++) {
        int wanted = i == 0;
        for (size_t r = 0; r < o->n_rules; r++)
            wanted |= strcmp(o->rules[r], TORCH_RULES[i]) == 0;
        if (wanted)
            snprintf(rules + strlen(rules), sizeof rules - strlen(rules), "%s%s",
                     rules[0] ? "," : "", TORCH_RULES[i]);
    }
    quote(data, sizeof data, o->data);
    torch_command(o, cmd, sizeof cmd);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd),
             " --net %s --batches %s --rules %s --threads %zu --repeats %d %s%s 2>&1", name,
             batches, rules, threads, o->repeats, o->synthetic ? "--synthetic" : "--data ",
             o->synthetic ? "" : data);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("PyTorch reference failed to start: %s\n", strerror(errno));
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        torch_entry e = {.net = net, .threads = threads};
        char net_text[128];
        if (*n_t < MAX_TORCH &&
            sscanf(line, "torch_ref rule=%31s net=%127s batch=%zu threads=%*u median_s=%lf "
                         "min_s=%lf max_s=%lf repeats=%*d maxrss_mib=%lf",
                   e.rule, net_text, &e.batch, &e.median, &e.lo, &e.hi,
                   &e.peak_rss_mib) == 7)
            t[(*n_t)++] = e;
        else if (strncmp(line, "torch_ref", 9) != 0)
            printf("  [torch_ref] %s", line); /* warnings and errors, shown as they are */
    }
    if (pclose(p) != 0)
        printf("  PyTorch reference exited with an error (command: %s)\n", cmd);
}

static const torch_entry *torch_find(const torch_entry *t, size_t n_t, const char *rule,
                                     size_t net, size_t batch, size_t threads)
{
    for (size_t i = 0; i < n_t; i++)
        if (strcmp(t[i].rule, rule) == 0 && t[i].net == net && t[i].batch == batch &&
            t[i].threads == threads)
            return &t[i];
    return NULL;
}

/* ---- the report -------------------------------------------------------------------- */

static void print_machine(const options *o, int argc, char **argv)
{
    char line[512], cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
    double load[3] = {0, 0, 0};
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
        load[0] = load[1] = load[2] = -1;
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    time_t t = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));

    printf("bench-train");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n\noptions:  --rules ");
    for (size_t r = 0; r < o->n_rules; r++)
        printf("%s%s", r ? "," : "", o->rules[r]);
    printf(" --nets ");
    for (size_t n = 0; n < o->n_nets; n++) {
        char name[128];
        net_name(&o->nets[n], name, sizeof name);
        printf("%s%s", n ? "," : "", name);
    }
    char list[256];
    csv_list(list, sizeof list, o->batches, o->n_batches);
    printf(" --batches %s", list);
    if (o->n_threads) {
        csv_list(list, sizeof list, o->threads, o->n_threads);
        printf(" --threads %s", list);
    }
    printf(" --repeats %d --gemm-seconds %g", o->repeats, o->gemm_seconds);
    for (size_t p = 0; p < o->n_params; p++)
        printf(" --param %s", o->params[p]);
    if (o->synthetic)
        printf(" --synthetic");
    else
        printf(" --data %s", o->data);
    if (o->torch)
        printf(" --torch %s --python %s", o->torch, o->python);
    if (o->in_process)
        printf(" --in-process");
    if (o->csv)
        printf(" --csv %s", o->csv);
    printf("\nwhen:     %s\n", when);
    printf("machine:  %s, %ld CPUs online, %s %s %s, load average %.2f %.2f %.2f\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, u.machine, load[0],
           load[1], load[2]);
    printf("library:  libbioplaus %s, BLAS %s (%s)\n", bpl_version_string(),
           bpl_blas_backend(), bpl_blas_info());
    if (o->n_threads)
        printf("          (the threads above are the BLAS's default; every configuration "
               "sets its own)\n");
#ifdef __VERSION__
    printf("compiler: %s (this program)\n", __VERSION__);
#endif
    static const char *const vars[] = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                       "OPENBLAS_NUM_THREADS",
                                       "OPENBLAS_VERBOSE", "BLIS_ARCH_TYPE",
                                       "BLIS_NUM_THREADS", "OMP_NUM_THREADS",
                                       "GOMP_CPU_AFFINITY"};
    printf("env:     ");
    int any = 0;
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++)
        if (getenv(vars[v])) {
            printf(" %s=%s", vars[v], getenv(vars[v]));
            any = 1;
        }
    printf("%s\n", any ? "" : " (no BLAS or OpenMP variables set)");
}

static void print_header(void)
{
    printf("%-12s %5s %8s %15s %6s %7s %6s %7s %7s %5s %8s %7s %6s %8s %7s\n", "rule",
           "batch", "s/epoch", "range", "vs bp", "x bound", "GEMM%", "GEMM GF", "sgemmGF",
           "eff%", "RSS MiB", "theory", "RSS/th", "torch s", "x torch");
}

static void print_row(const char *rule, size_t batch, const train_result *r, double median,
                      double reference, const gemm_result *g, const torch_entry *te)
{
    if (!r->status.ok) {
        printf("%-12s %5zu FAILED: %s\n", rule, batch, r->status.error);
        return;
    }
    double th = r->dataset + r->params + r->state + r->workspace;
    char bound[16] = "-", sgemm[16] = "-", eff[16] = "-", torch[16] = "-", ratio[16] = "-";
    if (g && g->status.ok) {
        snprintf(bound, sizeof bound, "%.2fx", median / g->epoch_seconds);
        double rate = g->step_flops / g->step_seconds / 1e9;
        snprintf(sgemm, sizeof sgemm, "%.1f", rate);
        snprintf(eff, sizeof eff, "%.0f", 100.0 * r->gemm_gflops / rate);
    }
    if (te) {
        snprintf(torch, sizeof torch, "%.3f", te->median);
        snprintf(ratio, sizeof ratio, "%.2fx", median / te->median);
    }
    char range[32];
    snprintf(range, sizeof range, "%.3f-%.3f", r->seconds[0], r->seconds[r->repeats - 1]);
    printf("%-12s %5zu %8.3f %15s %5.2fx %7s %5.1f%% %7.1f %7s %5s %8.1f %7.1f %6.2f %8s "
           "%7s\n",
           rule, batch, median, range, reference > 0 ? median / reference : 1.0, bound,
           100.0 * r->gemm_share, r->gemm_gflops, sgemm, eff, r->peak_rss / MIB, th / MIB,
           r->peak_rss / th, torch, ratio);
}

static void csv_row(FILE *csv, const char *rule, const char *net, size_t batch,
                    size_t threads, const train_result *r, double median, double reference,
                    const gemm_result *g, const torch_entry *te)
{
    if (!csv)
        return;
    double th = r->dataset + r->params + r->state + r->workspace;
    fprintf(csv, "%s,%s,%zu,%zu,%d,%s", rule, net, batch, threads, r->repeats,
            r->status.ok ? "ok" : "failed");
    if (!r->status.ok) {
        fprintf(csv, ",,,,,,,,,,,,,,,,,,,,,,\n");
        return;
    }
    fprintf(csv, ",%.4f,%.4f,%.4f,%.4f,%.4f,%.2f", median, r->seconds[0],
            r->seconds[r->repeats - 1], reference > 0 ? median / reference : 1.0,
            r->gemm_share, r->gemm_gflops);
    if (g && g->status.ok)
        fprintf(csv, ",%.2f,%.4f,%.4f", g->step_flops / g->step_seconds / 1e9,
                g->epoch_seconds, median / g->epoch_seconds);
    else
        fprintf(csv, ",,,");
    fprintf(csv, ",%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.3f", r->peak_rss / MIB, r->heap / MIB,
            r->dataset / MIB, r->params / MIB, r->state / MIB, r->workspace / MIB, th / MIB,
            r->peak_rss / th);
    if (te)
        fprintf(csv, ",%.4f,%.4f,%.4f,%.3f,%.1f\n", te->median, te->lo, te->hi,
                median / te->median, te->peak_rss_mib);
    else
        fprintf(csv, ",,,,,\n");
}

/* What the run found across configurations, for the closing lines. */
typedef struct summary {
    size_t failures;
    double worst_ratio; /* largest peak RSS over theory */
    char worst[320];    /* and where */
    /* At the bound's configuration, per thread count: backprop's median
     * and the products' timings, if the matrix has that configuration. */
    double bound_backprop[MAX_ITEMS];
    gemm_result bound_gemm[MAX_ITEMS];
    torch_entry torch[MAX_TORCH];
    size_t n_torch;
} summary;

/* The bound's lines for thread count `t`: the products timed in the matrix,
 * or timed now if the matrix does not hold the bound's configuration. */
static void print_bound(const options *o, const bpl_dataset *ds, size_t t,
                        const summary *sum)
{
    size_t threads = o->n_threads ? o->threads[t] : 0;
    double backprop = sum->bound_backprop[t];
    gemm_result g = sum->bound_gemm[t];
    if (!g.status.ok) {
        net_shape s = {{784, 256, 256, 10}, 4};
        job j = {.o = o, .ds = ds, .net = &s, .rule = "backprop", .batch = BOUND_BATCH,
                 .threads = threads};
        run_job(&j, gemm_job, &g, sizeof g);
    }
    char how[48];
    printf("\nGEMM-only lower bound, backprop 784-256-256-10, batch %d, %s:\n", BOUND_BATCH,
           threads_text(threads, how, sizeof how));
    if (!g.status.ok) {
        printf("  FAILED: %s\n", g.status.error);
        return;
    }
    printf("  %.3f s per epoch of %zu examples: the products of every step, each timed "
           "alone with bpl_gemm:\n",
           g.epoch_seconds, bpl_dataset_size(ds));
    for (size_t i = 0; i < g.n_shapes; i++) {
        double flops = 2.0 * (double)g.shapes[i].m * (double)g.shapes[i].n *
                       (double)g.shapes[i].k;
        printf("    %c%c m=%-4zu n=%-4zu k=%-4zu %8.1f us %7.1f GFLOP/s\n",
               g.shapes[i].trans_a ? 'T' : 'N', g.shapes[i].trans_b ? 'T' : 'N',
               g.shapes[i].m, g.shapes[i].n, g.shapes[i].k, 1e6 * g.shapes[i].seconds,
               flops / g.shapes[i].seconds / 1e9);
    }
    if (backprop > 0)
        printf("  backprop trained in %.3f s per epoch: within %.2fx of the GEMM-only "
               "bound\n",
               backprop, backprop / g.epoch_seconds);
}

/* Every batch and rule of one net at one thread count: one table. */
static void run_table(const options *o, const bpl_dataset *ds, size_t n, size_t t,
                      int torch, FILE *csv, summary *sum)
{
    size_t threads = o->n_threads ? o->threads[t] : 0;
    char name[128];
    net_name(&o->nets[n], name, sizeof name);
    if (torch)
        run_torch(o, n, threads, sum->torch, &sum->n_torch);
    char how[48];
    threads_text(threads, how, sizeof how);
    printf("\n== net %s tanh, softmax output; %s ==\n", name, how);
    print_header();
    for (size_t b = 0; b < o->n_batches; b++) {
        size_t batch = o->batches[b];
        job j = {.o = o, .ds = ds, .net = &o->nets[n], .rule = "backprop", .batch = batch,
                 .threads = threads, .reference = 1};
        gemm_result g;
        run_job(&j, gemm_job, &g, sizeof g);
        if (!g.status.ok)
            printf("sgemm rate at batch %zu FAILED: %s\n", batch, g.status.error);
        double reference = 0;
        for (size_t r = 0; r <= o->n_rules; r++) {
            /* Backprop first: the others are timed against it. */
            const char *rule = r == 0 ? "backprop" : o->rules[r - 1];
            if (r > 0 && strcmp(rule, "backprop") == 0)
                continue;
            j.rule = rule;
            j.reference = r == 0;
            train_result res;
            run_job(&j, train_job, &res, sizeof res);
            double median = res.status.ok ? median_of(res.seconds, res.repeats) : 0;
            if (r == 0)
                reference = median;
            if (r == 0 && batch == BOUND_BATCH && same_net(&o->nets[n], BOUND_NET, 4)) {
                sum->bound_backprop[t] = median;
                sum->bound_gemm[t] = g;
            }
            const torch_entry *te =
                torch ? torch_find(sum->torch, sum->n_torch, rule, n, batch, threads) : NULL;
            print_row(rule, batch, &res, median, reference, &g, te);
            csv_row(csv, rule, name, batch, threads, &res, median, reference, &g, te);
            if (!res.status.ok) {
                sum->failures++;
                continue;
            }
            double ratio =
                res.peak_rss / (res.dataset + res.params + res.state + res.workspace);
            if (ratio > sum->worst_ratio) {
                sum->worst_ratio = ratio;
                snprintf(sum->worst, sizeof sum->worst, "%s, %s, batch %zu, %s", rule,
                         name, batch, how);
            }
        }
    }
}

static FILE *open_csv(const char *path)
{
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "bench-train: cannot write '%s': %s\n", path, strerror(errno));
        exit(1);
    }
    fprintf(csv, "rule,net,batch,threads,repeats,status,median_s,min_s,max_s,vs_backprop,"
                 "gemm_share,gemm_gflops,sgemm_gflops,gemm_bound_s,vs_bound,peak_rss_mib,"
                 "heap_mib,dataset_mib,params_mib,optimizer_state_mib,workspace_mib,"
                 "theory_mib,rss_over_theory,torch_median_s,torch_min_s,torch_max_s,"
                 "lib_over_torch,torch_peak_rss_mib\n");
    return csv;
}

int main(int argc, char **argv)
{
    options o = {0};
    parse(argc, argv, &o);
    double started = now();
    print_machine(&o, argc, argv);

    /* The dataset is loaded once, before any child is forked: every child
     * shares it and its peak RSS includes it, as a training program's would. */
    double rss_start = current_rss_bytes();
    bpl_dataset *ds = NULL;
    const char *source = "synthetic (random pixels)";
    if (!o.synthetic && bpl_dataset_load_mnist(&ds, o.data, BPL_MNIST_TRAIN) == BPL_OK) {
        source = o.data;
    } else {
        if (!o.synthetic)
            printf("data:     no MNIST in '%s' (%s): synthetic data instead\n", o.data,
                   bpl_last_error_message());
        ds = synthetic_mnist();
        o.synthetic = 1; /* the PyTorch reference must use the same kind */
    }
    printf("data:     %zu examples from %s; RSS %.1f MiB before loading, %.1f MiB after\n",
           bpl_dataset_size(ds), source, rss_start / MIB, current_rss_bytes() / MIB);
    printf("memory:   %s\n",
           o.in_process ? "peak RSS is this process's running peak (--in-process)"
                        : "peak RSS of a child process per configuration (forked after "
                          "loading the data)");
    int torch = 0;
    if (!o.torch)
        printf("PyTorch reference: not requested (--torch bench/torch_ref.py)\n");
    else
        torch = torch_available(&o);
    FILE *csv = o.csv ? open_csv(o.csv) : NULL;

    static summary sum; /* large: not on the stack */
    size_t n_threads = o.n_threads ? o.n_threads : 1;
    for (size_t n = 0; n < o.n_nets; n++)
        for (size_t t = 0; t < n_threads; t++)
            run_table(&o, ds, n, t, torch, csv, &sum);
    for (size_t t = 0; t < n_threads; t++)
        print_bound(&o, ds, t, &sum);
    if (sum.worst_ratio > 0)
        printf("\nPeak RSS against theory: at most %.2fx (%s); target <= 1.5x: %s\n",
               sum.worst_ratio, sum.worst, sum.worst_ratio <= 1.5 ? "met" : "NOT met");
    printf("\n%zu failure(s); %.0f s in all\n", sum.failures, now() - started);
    if (csv)
        fclose(csv);
    bpl_dataset_destroy(ds);
    return sum.failures ? 1 : 0;
}
