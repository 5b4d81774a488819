/*
 * csv.c - the metrics file of --csv: a header and one row per epoch,
 * written as each epoch ends.
 */
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int open_csv(const char *path, struct session *s)
{
    /* Under mpiexec, process 0 writes the file. */
    s->csv = fopen(parallel_rank() == 0 ? path : "/dev/null", "w");
    if (!s->csv) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", program, path, strerror(errno));
        return EXIT_FAILURE;
    }
    fprintf(s->csv, "epoch,train_loss,val_accuracy,val_loss,test_accuracy,test_loss,"
                    "seconds,cumulative_seconds\n");
    return 0;
}

/* Validation columns stay empty without a validation set. */
void write_csv_row(FILE *csv, size_t epoch, const struct epoch_result *r,
                   int have_val, double cumulative_seconds)
{
    fprintf(csv, "%zu,%.6f,", epoch, r->train_loss);
    if (have_val)
        fprintf(csv, "%.6f,%.6f,", r->val_accuracy, r->val_loss);
    else
        fprintf(csv, ",,");
    fprintf(csv, "%.6f,%.6f,%.3f,%.3f\n", r->test_accuracy, r->test_loss, r->seconds,
            cumulative_seconds);
    fflush(csv); /* a long run can be watched, and an aborted one keeps its rows */
}

int close_csv(const char *path, struct session *s)
{
    int failed = ferror(s->csv) != 0;
    failed |= fclose(s->csv) != 0;
    s->csv = NULL;
    if (failed) {
        fprintf(stderr, "%s: writing '%s' failed\n", program, path);
        return EXIT_FAILURE;
    }
    return 0;
}
