/*
 * measure.c - one configuration (net, rule, batch, threads) trained in a
 * child process of its own, so that its peak resident set is its own: a
 * warm-up, then timed windows of a fixed number of batches through
 * bpl_net_fit (shuffling, gathering uint8 batches to float), each scaled to
 * an epoch of the dataset; then, for backprop, each conv layer's three
 * operations timed alone for their GFLOP/s.
 */
#define _GNU_SOURCE
#include "bench_conv.h"
#include "bioplaus_rule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const bpl_dataset *bench_dataset; /* main.c: loaded before the children fork */

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median_of(double *v, int n)
{
    double sorted[64];
    n = n > 64 ? 64 : n;
    memcpy(sorted, v, (size_t)n * sizeof *v);
    qsort(sorted, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

/* The resident set's high-water mark (VmHWM) or its size now (VmRSS), in
 * bytes (Linux), 0 if unknown. */
static double rss(const char *which)
{
    char line[256];
    double kib = 0.0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, which, strlen(which)) == 0)
            kib = strtod(line + strlen(which), NULL);
    if (f)
        fclose(f);
    return kib * 1024.0;
}

static int stop_after(int event, size_t epoch, size_t step, size_t steps, double loss,
                      void *user)
{
    (void)epoch;
    (void)steps;
    (void)loss;
    return event == BPL_EVENT_BATCH && step >= *(const size_t *)user;
}

static void fail(result *r, const char *what, int rc)
{
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "%s: %s (%s)", what, bpl_strerror(rc),
             bpl_last_error_message());
}

/* The median of three timings of one layer operation, in CPU time (all
 * threads'): on a shared machine wall-clock time measures the load. */
enum { FORWARD, SEND, GRADS };
static double time_op(bpl_layer *layer, int op, const float *in, const float *err,
                      float *out, float *sent, size_t batch)
{
    double t[3];
    for (int i = 0; i < 3; i++) {
        double start = cpu_seconds();
        if (op == FORWARD)
            bpl_layer_forward(layer, in, batch, BPL_ACT_RELU, out);
        else if (op == SEND)
            bpl_layer_send_error(layer, NULL, 0, err, batch, 1.0f, 0.0f, sent);
        else
            bpl_layer_gradients(layer, err, in, batch, 1.0f, 1.0f, 1.0f);
        t[i] = cpu_seconds() - start;
    }
    return median_of(t, 3);
}

/* Layer l of the net is item l of the spec. */
static void layer_rates(const net_spec *spec, bpl_net *net, size_t batch, result *r)
{
    for (size_t l = 0; l < spec->n_layers && r->n_rates < MAX_SPEC_LAYERS; l++) {
        bpl_layer *layer = bpl_net_layer(net, l);
        if (strcmp(spec->layers[l].kind, "conv") != 0)
            continue;
        size_t in_size = bpl_layer_inputs(layer), out_size = bpl_layer_units(layer);
        float *w;
        size_t rows, cols;
        if (bpl_layer_tensor(layer, "weight", &w, &rows, &cols) != BPL_OK)
            continue;
        float *in = calloc(batch * in_size, sizeof *in), *sent = malloc(batch * in_size * 4);
        float *out = malloc(batch * out_size * 4), *err = malloc(batch * out_size * 4);
        if (in && sent && out && err) {
            for (size_t i = 0; i < batch * in_size; i++)
                in[i] = (float)(i % 7) * 0.1f;
            for (size_t i = 0; i < batch * out_size; i++)
                err[i] = (float)(i % 5) * 0.01f - 0.02f;
            layer_rate *lr = &r->rates[r->n_rates++];
            lr->index = l;
            lr->flops = 2.0 * (double)batch * (double)out_size * (double)cols;
            lr->forward = time_op(layer, FORWARD, in, err, out, sent, batch);
            lr->send = time_op(layer, SEND, in, err, out, sent, batch);
            lr->grads = time_op(layer, GRADS, in, err, out, sent, batch);
        }
        free(in);
        free(sent);
        free(out);
        free(err);
    }
}

static void train(const options *o, const net_spec *spec, const char *rule_name,
                  size_t batch, size_t threads, result *r)
{
    bpl_net *net = NULL;
    bpl_rule *rule = NULL;
    r->base_rss = rss("VmRSS:");
    int rc = bpl_set_thread_count((int)threads);
    if (rc != BPL_OK) {
        fail(r, "bpl_set_thread_count", rc);
        return;
    }
    if ((rc = build_net(spec, 42, &net)) != BPL_OK) {
        fail(r, "building the net", rc);
        return;
    }
    if ((rc = bpl_rule_create_builtin(&rule, rule_name)) != BPL_OK ||
        (rc = bpl_net_set_rule(net, rule)) != BPL_OK) {
        bpl_net_destroy(net);
        fail(r, "attaching the rule", rc);
        return;
    }
    size_t n = bpl_dataset_example_count(bench_dataset);
    size_t steps = o->steps < n / batch ? o->steps : n / batch, warm = 3;
    r->ok = 1;
    rc = bpl_net_fit(net, bench_dataset, 1, batch, stop_after, &warm);
    for (int i = 0; rc == BPL_OK && i < o->repeats; i++) {
        double start = now(), cpu = cpu_seconds();
        rc = bpl_net_fit(net, bench_dataset, 1, batch, stop_after, &steps);
        r->epoch[i] = (now() - start) * (double)n / (double)(steps * batch);
        r->cpu[i] = (cpu_seconds() - cpu) * (double)n / (double)(steps * batch);
    }
    if (rc != BPL_OK)
        fail(r, "training", rc);
    r->median = median_of(r->epoch, o->repeats);
    r->cpu_median = median_of(r->cpu, o->repeats);
    r->peak_rss = rss("VmHWM:");
    r->theory = theory_bytes(net, n, batch);
    if (rc == BPL_OK && o->layers && strcmp(rule_name, "backprop") == 0)
        layer_rates(spec, net, batch, r);
    bpl_net_destroy(net);
}

static int read_all(int fd, void *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (char *)out + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

void run_config(const options *o, const net_spec *net, const char *rule, size_t batch,
                size_t threads, result *r)
{
    memset(r, 0, sizeof *r);
    int fds[2];
    fflush(stdout);
    if (pipe(fds) != 0) {
        snprintf(r->error, sizeof r->error, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        result mine;
        memset(&mine, 0, sizeof mine);
        train(o, net, rule, batch, threads, &mine);
        ssize_t w = write(fds[1], &mine, sizeof mine);
        _exit(w == (ssize_t)sizeof mine ? 0 : 1);
    }
    close(fds[1]);
    if (pid < 0) {
        snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
        close(fds[0]);
        return;
    }
    int status = 0;
    if (read_all(fds[0], r, sizeof *r) != 0) {
        memset(r, 0, sizeof *r);
        snprintf(r->error, sizeof r->error, "the child process died");
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
}
