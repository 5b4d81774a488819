/*
 * bench-train - seconds per training epoch, and where the time and the
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
 *
 * main.c loads the data and runs the tables; bench_train.h says which file
 * holds each part.
 */
#include "bench_train.h"

#include <stdio.h>

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
           bpl_dataset_example_count(ds), source, rss_start / MIB, current_rss_bytes() / MIB);
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
