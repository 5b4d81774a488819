/*
 * bench_train.h - what the files of bench-train share: the options, a job
 * (one configuration to measure) and its results, the PyTorch reference's
 * figures, the summary of a run, and each file's functions.
 */
#ifndef BENCH_TRAIN_H
#define BENCH_TRAIN_H

#include "bioplaus.h"

#include <stddef.h>
#include <stdio.h>

#define MAX_ITEMS 16
#define MAX_LAYERS 8
#define MAX_REPEATS 64
#define MAX_TORCH 512
#define MIB (1024.0 * 1024.0)

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

/* ---- options.c: the command line (exits with status 2 on a bad option) */
void parse(int argc, char **argv, options *o);

/* ---- data.c: synthetic data */
bpl_dataset *synthetic_mnist(void);

/* ---- measure.c: clocks and memory */
double now(void);
double median_of(double *v, int n);
double peak_rss_bytes(void);
double current_rss_bytes(void);
double heap_bytes(void);

/* ---- runner.c: a job in a child process, and its outcome */
void set_error(outcome *status, const char *what, int rc);
void run_job(const job *j, void (*fn)(const job *, void *), void *out, size_t size);

/* ---- train_job.c: one configuration trained and measured */
void train_job(const job *j, void *out);

/* ---- gemm_job.c: the products of a backprop step, timed alone */
void gemm_job(const job *j, void *out);

/* ---- torch.c: the PyTorch reference */
int torch_available(const options *o);
void run_torch(const options *o, size_t net, size_t threads, torch_entry *t,
               size_t *n_t);
const torch_entry *torch_find(const torch_entry *t, size_t n_t, const char *rule,
                              size_t net, size_t batch, size_t threads);

/* ---- matrix.c: the tables and the bound */
void print_bound(const options *o, const bpl_dataset *ds, size_t t,
                 const summary *sum);
void run_table(const options *o, const bpl_dataset *ds, size_t n, size_t t,
               int torch, FILE *csv, summary *sum);

/* ---- report.c: what is printed and written */
void net_name(const net_shape *s, char *out, size_t size);
const char *threads_text(size_t threads, char *out, size_t size);
void csv_list(char *out, size_t size, const size_t *v, size_t n);
void print_machine(const options *o, int argc, char **argv);
void print_header(void);
void print_row(const char *rule, size_t batch, const train_result *r, double median,
               double reference, const gemm_result *g, const torch_entry *te);
void csv_row(FILE *csv, const char *rule, const char *net, size_t batch,
             size_t threads, const train_result *r, double median, double reference,
             const gemm_result *g, const torch_entry *te);
FILE *open_csv(const char *path);

#endif
