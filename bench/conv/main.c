/*
 * main.c - bench-conv: training speed of conv nets against PyTorch on the
 * CPU, in one run.
 *
 *   bench-conv [--nets lenet,wide] [--arch NAME=SPEC] [--rules backprop,fa]
 *              [--batches 64,256] [--threads 1,2] [--steps N] [--repeats N]
 *              [--data DIR | --synthetic] [--no-torch] [--no-layers]
 *              [--python PYTHON] [--torch SCRIPT]
 *
 * For every net, thread count, batch and rule: the seconds per epoch of
 * 60,000 images (each timed window trains --steps batches and is scaled to
 * the epoch; the median of --repeats windows), the same net trained by
 * PyTorch in the same run and the ratio; the speed-up of each thread count
 * over the first; the peak resident set against the theory (dataset,
 * parameters with gradients and Adam's moments, an activation and an error
 * buffer per layer); and each conv layer's forward, send-error and
 * gradient GFLOP/s against the single-core FMA peak measured at the start.
 */
#include "bench_conv.h"
#include "../peak.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const bpl_dataset *bench_dataset;

static const struct {
    const char *name, *arch;
} KNOWN[] = {
    /* LeNet-5 as BioTorch trains it on MNIST: the padding makes 28x28 LeNet's 32x32. */
    {"lenet", "conv:6:5:1:2,maxpool:2,conv:16:5,maxpool:2,conv:120:5,dense:84"},
    {"wide", "conv:32:5:1:2,maxpool:2,conv:64:5:1:2,maxpool:2,dense:256"},
    /* LeNet's shapes without pooling layers: strided convolutions instead. */
    {"lenet-strided", "conv:6:5:1:2,conv:16:5:2,conv:120:5:2,dense:84"},
    {"wide-strided", "conv:32:5:2:2,conv:64:5:2:2,dense:256"},
};

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-conv [--nets NAME,...] [--arch NAME=SPEC] [--rules R,...]\n"
            "                  [--batches B,...] [--threads T,...] [--steps N] [--repeats N]\n"
            "                  [--data DIR | --synthetic] [--no-torch] [--no-layers]\n"
            "                  [--python PYTHON] [--torch SCRIPT]\n"
            "nets: lenet, wide, lenet-strided, wide-strided\n");
    exit(2);
}

static size_t parse_list(const char *text, size_t *out)
{
    size_t n = 0;
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *t = strtok_r(copy, ",", &save); t && n < MAX_ITEMS; t = strtok_r(NULL, ",", &save)) {
        char *end;
        out[n] = strtoul(t, &end, 10);
        if (*end || out[n] == 0)
            usage();
        n++;
    }
    return n;
}

static void add_net(options *o, const char *name, const char *arch)
{
    if (o->n_nets == MAX_ITEMS || parse_arch(name, arch, &o->nets[o->n_nets]) != 0) {
        fprintf(stderr, "bench-conv: bad net '%s=%s'\n", name, arch);
        exit(2);
    }
    o->n_nets++;
}

static void add_known(options *o, const char *list)
{
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t k = 0;
        while (k < sizeof KNOWN / sizeof KNOWN[0] && strcmp(KNOWN[k].name, t) != 0)
            k++;
        if (k == sizeof KNOWN / sizeof KNOWN[0])
            usage();
        add_net(o, KNOWN[k].name, KNOWN[k].arch);
    }
}

static void parse(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"nets", required_argument, 0, 'n'},   {"arch", required_argument, 0, 'a'},
        {"rules", required_argument, 0, 'r'},  {"batches", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"steps", required_argument, 0, 's'},
        {"repeats", required_argument, 0, 'k'}, {"data", required_argument, 0, 'd'},
        {"synthetic", no_argument, 0, 'S'},    {"no-torch", no_argument, 0, 'N'},
        {"no-layers", no_argument, 0, 'L'},    {"python", required_argument, 0, 'P'},
        {"torch", required_argument, 0, 'T'},  {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->steps = 50;
    o->repeats = 3;
    o->torch = 1;
    o->layers = 1;
    o->python = "python3";
    o->script = BENCH_TORCH_SCRIPT;
    o->data = getenv("BIOPLAUS_MNIST_DIR") ? getenv("BIOPLAUS_MNIST_DIR") : "data/mnist";
    const char *rules = "backprop", *batches = "64,256", *threads = "1,2";
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'n': add_known(o, optarg); break;
        case 'a': {
            char name[32];
            const char *eq = strchr(optarg, '=');
            if (!eq || (size_t)(eq - optarg) >= sizeof name)
                usage();
            snprintf(name, sizeof name, "%.*s", (int)(eq - optarg), optarg);
            add_net(o, name, eq + 1);
            break;
        }
        case 'r': rules = optarg; break;
        case 'b': batches = optarg; break;
        case 't': threads = optarg; break;
        case 's': o->steps = strtoul(optarg, NULL, 10); break;
        case 'k': o->repeats = atoi(optarg); break;
        case 'd': o->data = optarg; break;
        case 'S': o->synthetic = 1; break;
        case 'N': o->torch = 0; break;
        case 'L': o->layers = 0; break;
        case 'P': o->python = optarg; break;
        case 'T': o->script = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || o->steps == 0 || o->repeats < 1 || o->repeats > MAX_ITEMS)
        usage();
    if (!o->n_nets)
        add_known(o, "lenet,wide");
    char copy[256], *save = NULL;
    snprintf(copy, sizeof copy, "%s", rules);
    for (char *t = strtok_r(copy, ",", &save); t && o->n_rules < MAX_ITEMS;
         t = strtok_r(NULL, ",", &save))
        snprintf(o->rules[o->n_rules++], sizeof o->rules[0], "%s", t);
    o->n_batches = parse_list(batches, o->batches);
    o->n_threads = parse_list(threads, o->threads);
}

static void print_machine(int argc, char **argv, const options *o, double peak,
                          const char *isa)
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
    double load[3] = {-1, -1, -1};
    f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
        load[0] = -1;
    if (f)
        fclose(f);
    printf("bench-conv");
    for (int i = 1; i < argc; i++)
        printf(" %s", argv[i]);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("\n\nmachine:  %s; load average %.2f %.2f %.2f\n", cpu, load[0], load[1], load[2]);
    printf("library:  libbioplaus %s, BLAS %s (%s); OPENBLAS_CORETYPE=%s\n",
           bpl_version_string(), bpl_blas_backend(), bpl_blas_info(), core ? core : "(unset)");
    printf("FMA peak: %.1f GFLOP/s on one core (%s, measured now)\n", peak, isa);
    printf("timing:   %zu batches per window, scaled to an epoch of %zu images; the median "
           "of %d windows after 3 warm-up batches; Adam, ReLU, softmax/cross-entropy;\n"
           "          batches gathered from uint8 (%s)\n",
           o->steps, bpl_dataset_example_count(bench_dataset), o->repeats,
           o->synthetic ? "random pixels of MNIST's shape" : "MNIST's training images");
    printf("columns:  s/epoch wall-clock (and CPU time, user + system: steadier on a "
           "shared machine); torch: the same net in PyTorch in this run; vs bprop: "
           "against backprop's wall-clock\n");
    printf("memory:   peak RSS of each configuration's own process against the theory "
           "(dataset, parameters + gradients + 2 Adam moments, an activation and an "
           "error buffer per layer, the staged batch)\n");
}

static const torch_entry *find_torch(const torch_entry *t, size_t n, const char *rule,
                                     size_t batch)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].rule, rule) == 0 && t[i].batch == batch)
            return &t[i];
    return NULL;
}

static void print_rates(const net_spec *spec, const result *r, double peak)
{
    for (size_t i = 0; i < r->n_rates; i++) {
        const layer_rate *lr = &r->rates[i];
        const spec_layer *l = &spec->layers[lr->index];
        double f = lr->flops * 1e-9;
        printf("      layer %zu conv:%zu:%zu:%zu:%zu  %7.2f MFLOP/op  forward %6.1f GFLOP/s "
               "(%3.0f%%)  send %6.1f (%3.0f%%)  gradients %6.1f (%3.0f%%) of the peak "
               "(per CPU-second)\n",
               lr->index, l->n, l->k, l->stride, l->pad, lr->flops * 1e-6, f / lr->forward,
               peak > 0 ? 100 * f / lr->forward / peak : 0, f / lr->send,
               peak > 0 ? 100 * f / lr->send / peak : 0, f / lr->grads,
               peak > 0 ? 100 * f / lr->grads / peak : 0);
    }
}

/* Seconds per epoch of backprop at (net, batch, threads index), for the
 * rule ratios and the thread speed-ups. */
static double medians[MAX_ITEMS][MAX_ITEMS][MAX_ITEMS][MAX_ITEMS];

static void run_net(const options *o, size_t n, double peak, int torch)
{
    const net_spec *spec = &o->nets[n];
    printf("\nnet %s: --arch %s (then dense 10 softmax)\n", spec->name, spec->arch);
    for (size_t ti = 0; ti < o->n_threads; ti++) {
        size_t threads = o->threads[ti];
        torch_entry te[2 * MAX_ITEMS * MAX_ITEMS];
        size_t n_te = torch ? run_torch(o, n, threads, te, sizeof te / sizeof te[0]) : 0;
        printf("  %zu thread%s\n", threads, threads > 1 ? "s" : "");
        printf("    %-9s %5s %8s %15s %8s %8s %8s %8s %9s %8s %8s %8s %7s\n", "rule", "batch",
               "s/epoch", "(min-max)", "torch", "vs torch", "cpu s", "torch", "cpu ratio",
               "vs bprop", "RSS MiB", "theory", "RSS/th");
        for (size_t b = 0; b < o->n_batches; b++)
            for (size_t r = 0; r < o->n_rules; r++) {
                result res;
                run_config(o, spec, o->rules[r], o->batches[b], threads, &res);
                if (!res.ok) {
                    printf("    %-9s %5zu FAILED: %s\n", o->rules[r], o->batches[b],
                           res.error);
                    continue;
                }
                medians[n][b][ti][r] = res.median;
                double lo = res.epoch[0], hi = res.epoch[0];
                for (int i = 1; i < o->repeats; i++) {
                    lo = res.epoch[i] < lo ? res.epoch[i] : lo;
                    hi = res.epoch[i] > hi ? res.epoch[i] : hi;
                }
                const torch_entry *t = find_torch(te, n_te, o->rules[r], o->batches[b]);
                char tt[32] = "-", ratio[32] = "-", vs[32] = "-", range[40];
                char tc[32] = "-", cratio[32] = "-";
                if (t && t->median > 0) {
                    snprintf(tt, sizeof tt, "%.2f", t->median);
                    snprintf(ratio, sizeof ratio, "%.2fx", res.median / t->median);
                }
                if (t && t->cpu_median > 0) {
                    snprintf(tc, sizeof tc, "%.2f", t->cpu_median);
                    snprintf(cratio, sizeof cratio, "%.2fx", res.cpu_median / t->cpu_median);
                }
                if (r > 0 && medians[n][b][ti][0] > 0)
                    snprintf(vs, sizeof vs, "%.2fx", res.median / medians[n][b][ti][0]);
                snprintf(range, sizeof range, "(%.2f-%.2f)", lo, hi);
                printf("    %-9s %5zu %8.2f %15s %8s %8s %8.2f %8s %9s %8s %8.1f %8.1f "
                       "%6.2fx\n",
                       o->rules[r], o->batches[b], res.median, range, tt, ratio,
                       res.cpu_median, tc, cratio, vs, res.peak_rss / MIB, res.theory / MIB,
                       res.peak_rss / res.theory);
                printf("      (resident before the net: %.1f MiB: the dataset, the libraries)\n",
                       res.base_rss / MIB);
                print_rates(spec, &res, peak);
            }
    }
    if (o->n_threads < 2)
        return;
    printf("  speed-up over %zu thread%s:", o->threads[0], o->threads[0] > 1 ? "s" : "");
    for (size_t b = 0; b < o->n_batches; b++)
        for (size_t r = 0; r < o->n_rules; r++)
            for (size_t ti = 1; ti < o->n_threads; ti++)
                if (medians[n][b][ti][r] > 0 && medians[n][b][0][r] > 0)
                    printf(" %s batch %zu %zu threads %.2fx;", o->rules[r], o->batches[b],
                           o->threads[ti], medians[n][b][0][r] / medians[n][b][ti][r]);
    printf("\n");
}

int main(int argc, char **argv)
{
    options o;
    parse(argc, argv, &o);
    bpl_dataset *ds = NULL;
    int rc;
    if (o.synthetic) {
        enum { N = 60000, F = 784 };
        unsigned char *pixels = malloc((size_t)N * F), *labels = malloc(N);
        uint64_t s = 1;
        for (size_t i = 0; pixels && i < (size_t)N * F; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            pixels[i] = (unsigned char)(s >> 56);
        }
        for (size_t i = 0; labels && i < N; i++)
            labels[i] = (unsigned char)(i % 10);
        rc = pixels && labels ? bpl_dataset_from_u8(&ds, pixels, labels, N, F, 10)
                              : BPL_ERR_NOMEM;
        free(pixels);
        free(labels);
    } else {
        rc = bpl_dataset_load_mnist(&ds, o.data, BPL_MNIST_TRAIN);
    }
    if (rc != BPL_OK) {
        fprintf(stderr, "bench-conv: the data: %s (use --synthetic without MNIST)\n",
                bpl_last_error_message());
        return 1;
    }
    bench_dataset = ds;
    const char *isa;
    double peak = fma_peak(&isa);
    print_machine(argc, argv, &o, peak, isa);
    int torch = o.torch && torch_info(&o);
    for (size_t n = 0; n < o.n_nets; n++)
        run_net(&o, n, peak, torch);
    bpl_dataset_destroy(ds);
    return 0;
}
