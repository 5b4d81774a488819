/*
 * summary.c - after the runs: DIR/summary.csv (one row per run: its
 * set-up, seed, status, the best validation accuracy and its epoch, the
 * test accuracy there and at the end), and, on stdout, the best set-up of
 * each rule by mean best validation accuracy over its seeds, with its test
 * accuracy.  Selection is on validation only; runs without a validation
 * set (--val 0) are ranked by nothing and listed as such.
 */
#include "sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct outcome {
    int done, failed;
    size_t epochs, best_epoch;
    double best_val, test_at_best, final_test;
};

/* The run's CSV: epoch,train_loss,val_accuracy,val_loss,test_accuracy,... */
static struct outcome read_outcome(const char *dir, const struct run *r)
{
    struct outcome o = {0};
    o.best_val = -1.0;
    o.done = run_is_done(dir, r);
    o.failed = !o.done && run_failed(dir, r);
    char path[4096], line[512];
    snprintf(path, sizeof path, "%s/runs/%s.csv", dir, r->id);
    FILE *f = fopen(path, "r");
    if (!f)
        return o;
    if (fgets(line, sizeof line, f)) {
        while (fgets(line, sizeof line, f)) {
            size_t epoch;
            double loss, val = -1.0, val_loss, test;
            int n = sscanf(line, "%zu,%lf,%lf,%lf,%lf", &epoch, &loss, &val, &val_loss, &test);
            if (n < 5 && sscanf(line, "%zu,%lf,,,%lf", &epoch, &loss, &test) == 3)
                n = 5, val = -1.0;
            if (n < 5)
                continue;
            o.epochs = epoch;
            o.final_test = test;
            if (val > o.best_val) {
                o.best_val = val;
                o.best_epoch = epoch;
                o.test_at_best = test;
            }
        }
    }
    fclose(f);
    return o;
}

struct group {
    const struct run *first;
    double val_sum, test_sum;
    size_t n;
};

int write_summary(const char *dir, const struct run *runs, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    FILE *f = fopen(path, "w");
    struct group *groups = calloc(n ? n : 1, sizeof *groups);
    if (!f || !groups) {
        fprintf(stderr, "bioplaus-sweep: cannot write '%s'\n", path);
        if (f)
            fclose(f);
        free(groups);
        return 1;
    }
    fprintf(f, "run,files,rule,setup,seed,status,epochs,best_val_accuracy,best_epoch,"
               "test_accuracy_at_best,final_test_accuracy\n");
    size_t n_groups = 0, finished = 0;
    for (size_t i = 0; i < n; i++) {
        struct outcome o = read_outcome(dir, &runs[i]);
        finished += o.done;
        fprintf(f, "%zu,runs/%s,%s,\"%s\",%s,%s,%zu,", i, runs[i].id, runs[i].rule,
                runs[i].setup, runs[i].seed,
                o.done ? "done" : o.failed ? "failed (see its .log)" : "not done", o.epochs);
        if (o.best_val >= 0.0)
            fprintf(f, "%.6f,%zu,%.6f,%.6f\n", o.best_val, o.best_epoch, o.test_at_best,
                    o.final_test);
        else
            fprintf(f, ",,,\n");
        if (!o.done || o.best_val < 0.0)
            continue;
        size_t g = 0;
        while (g < n_groups && strcmp(groups[g].first->setup, runs[i].setup) != 0)
            g++;
        if (g == n_groups)
            groups[n_groups++].first = &runs[i];
        groups[g].val_sum += o.best_val;
        groups[g].test_sum += o.test_at_best;
        groups[g].n++;
    }
    int failed = fclose(f) != 0;
    printf("%zu of %zu runs done; every run in %s\n\n", finished, n, path);
    printf("| rule | best set-up (by validation) | seeds | validation accuracy | "
           "test accuracy there |\n|---|---|---|---|---|\n");
    for (size_t g = 0; g < n_groups; g++) {
        const char *rule = groups[g].first->rule;
        int first_of_rule = 1;
        for (size_t h = 0; h < g; h++)
            first_of_rule &= strcmp(groups[h].first->rule, rule) != 0;
        if (!first_of_rule)
            continue;
        size_t best = g;
        for (size_t h = g; h < n_groups; h++)
            if (strcmp(groups[h].first->rule, rule) == 0 &&
                groups[h].val_sum / (double)groups[h].n >
                    groups[best].val_sum / (double)groups[best].n)
                best = h;
        printf("| %s | %s | %zu | %.4f | %.4f |\n", rule, groups[best].first->setup,
               groups[best].n, groups[best].val_sum / (double)groups[best].n,
               groups[best].test_sum / (double)groups[best].n);
    }
    free(groups);
    return failed;
}
