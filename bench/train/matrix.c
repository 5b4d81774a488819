/*
 * matrix.c - the tables: for one net and thread count, every batch size and
 * every rule (backprop first, the others timed against it), with the summary
 * of the closing lines; and the GEMM-only bound of each thread count.
 */
#include "bench_train.h"
#include "../peak.h"

#include <stdio.h>
#include <string.h>

/* The GEMM-only lower bound is always reported for this configuration. */
static const size_t BOUND_NET[] = {784, 256, 256, 10};
#define BOUND_BATCH 128

static int same_net(const net_shape *s, const size_t *sizes, size_t n)
{
    return s->n_sizes == n && memcmp(s->sizes, sizes, n * sizeof sizes[0]) == 0;
}

/* The same products at the machine's FMA peak, measured now: what no
 * implementation can beat.  Only for one thread, where the single-core peak
 * is the limit (with more, the cores' shared clock makes it a guess). */
static void print_fma_bound(const gemm_result *g, size_t examples, size_t threads,
                            double backprop)
{
    if (threads != 1)
        return;
    const char *isa;
    double peak = fma_peak(&isa);
    if (peak <= 0) {
        printf("  FMA bound: not measured (%s)\n", isa);
        return;
    }
    double flops = g->step_flops * (double)examples / BOUND_BATCH;
    double bound = flops / (peak * 1e9);
    printf("  FMA bound: %.1f GFLOP per epoch at the single-core peak of %.1f GFLOP/s "
           "(%s, measured now): %.3f s\n",
           flops * 1e-9, peak, isa, bound);
    if (backprop > 0)
        printf("  backprop trained in %.3f s per epoch: %.2fx the FMA bound\n", backprop,
               backprop / bound);
}

/* The bound's lines for thread count `t`: the products timed in the matrix,
 * or timed now if the matrix does not hold the bound's configuration. */
void print_bound(const options *o, const bpl_dataset *ds, size_t t,
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
           g.epoch_seconds, bpl_dataset_example_count(ds));
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
    print_fma_bound(&g, bpl_dataset_example_count(ds), threads, backprop);
}

/* Every batch and rule of one net at one thread count: one table. */
void run_table(const options *o, const bpl_dataset *ds, size_t n, size_t t,
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
