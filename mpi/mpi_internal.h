/*
 * mpi_internal.h - what the files of libbioplaus-mpi share.
 */
#ifndef BPL_MPI_INTERNAL_H
#define BPL_MPI_INTERNAL_H

#include "bioplaus_mpi.h"
#include "bioplaus_rule.h"

#include <stddef.h>
#include <stdint.h>

/* The header after the gradients in every round's buffer. */
enum {
    BPL__MPI_ROWS = 0,   /* the rows behind the gradients (the weights' sum) */
    BPL__MPI_FAILED = 1, /* processes whose step failed */
    BPL__MPI_STOP = 2,   /* processes whose progress callback asked to stop */
    BPL__MPI_LOSS = 3,   /* loss times rows (the end-of-epoch round) */
    BPL__MPI_HEADER = 4
};

struct bpl_mpi {
    MPI_Comm comm;
    int rank, size;
    bpl_net *net;     /* the net attached, or NULL */
    float *buf;       /* a round's buffer: n gradients and the header */
    size_t n, cap;    /* the gradient block's size; buf's room */
    int failure_seen; /* a round of this fit carried a failure */
    int stop_request; /* this process's progress callback asked to stop */
    int stop_agreed;  /* some process asked: stop after this step */
    /* bpl_mpi_fit's caller and where it is */
    bpl_progress_fn fn;
    void *user_data;
    size_t epoch;
    double epoch_loss; /* this process's mean over its rows */
};

int bpl__mpi_error(int mpi_rc, const char *what);
int bpl__mpi_reserve(bpl_mpi *m, size_t n);
/* One round: block (n floats, or NULL between steps) becomes the
 * rows-weighted mean over every process; a failure anywhere is returned on
 * every process; *loss_out (if not NULL) gets the rows-weighted mean of
 * `loss`. */
int bpl__mpi_round(bpl_mpi *m, float *block, double rows, int status, double loss,
                   double *loss_out);
int bpl__mpi_same_everywhere(bpl_mpi *m, uint64_t value, int *same_out);

#endif
