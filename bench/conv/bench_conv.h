/*
 * bench_conv.h - what the files of bench-conv share: the options, the nets
 * (an --arch list of layers), one configuration's results, the FMA peak
 * and the PyTorch reference.
 */
#ifndef BENCH_CONV_H
#define BENCH_CONV_H

#include "bioplaus.h"

#include <stddef.h>

#define MAX_ITEMS 8
#define MAX_SPEC_LAYERS 16
#define MIB (1024.0 * 1024.0)

/* One layer of an --arch list: conv:C:K[:S[:P]], maxpool:K[:S],
 * avgpool:K[:S], dense:N. */
typedef struct spec_layer {
    char kind[16];
    size_t n, k, stride, pad; /* n: output channels or units */
} spec_layer;

typedef struct net_spec {
    char name[32];  /* "lenet" */
    char arch[256]; /* the --arch text */
    spec_layer layers[MAX_SPEC_LAYERS];
    size_t n_layers;
} net_spec;

typedef struct options {
    net_spec nets[MAX_ITEMS];
    size_t n_nets;
    char rules[MAX_ITEMS][32];
    size_t n_rules;
    size_t batches[MAX_ITEMS], n_batches;
    size_t threads[MAX_ITEMS], n_threads;
    size_t steps; /* batches per timed window */
    int repeats, synthetic, torch, layers;
    const char *data, *script, *python;
} options;

/* A conv layer's achieved rates in one configuration. */
typedef struct layer_rate {
    size_t index;
    double flops;                /* of one op (forward, send or gradients) at the batch */
    double forward, send, grads; /* seconds, medians */
} layer_rate;

typedef struct result {
    int ok;
    char error[256];
    double epoch[MAX_ITEMS]; /* seconds per 60,000 images, one per repeat */
    double cpu[MAX_ITEMS];   /* the same in CPU time (user + system) */
    double median, cpu_median;
    double base_rss;         /* bytes resident before the net was built */
    double peak_rss, theory; /* bytes */
    layer_rate rates[MAX_SPEC_LAYERS];
    size_t n_rates;
} result;

typedef struct torch_entry {
    char rule[32];
    size_t net, batch, threads;
    double median, cpu_median, peak_rss_mib;
} torch_entry;

/* arch.c */
int parse_arch(const char *name, const char *text, net_spec *out);
int build_net(const net_spec *spec, uint64_t seed, bpl_net **out);
/* Bytes the theory allows: the dataset, the parameters with their
 * gradients and two optimiser moments, one activation and one error
 * buffer per layer at the batch, and the staged input batch. */
double theory_bytes(bpl_net *net, size_t n_examples, size_t batch);


/* measure.c: one configuration in a child process */
double now(void);
double cpu_seconds(void); /* this process's user + system time */
double median_of(double *v, int n);
void run_config(const options *o, const net_spec *net, const char *rule, size_t batch,
                size_t threads, result *r);

/* torch.c */
int torch_info(const options *o);
size_t run_torch(const options *o, size_t net, size_t threads, torch_entry *t,
                 size_t room);

#endif
