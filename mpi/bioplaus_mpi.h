/*
 * bioplaus_mpi.h - data-parallel training of libbioplaus nets over MPI.
 *
 * libbioplaus-mpi (pkg-config bioplaus-mpi) trains one net on the
 * processes of an MPI communicator: every process holds the whole net and
 * the whole training set, all draw the same order of examples, each trains
 * its share of every batch, and after the gradients of each step one
 * MPI_Allreduce over one contiguous buffer averages them (weighted by each
 * process's rows) before every process takes the same optimiser step.
 *
 *     bpl_mpi *mpi;
 *     bpl_mpi_create(&mpi, MPI_COMM_WORLD);
 *     bpl_mpi_attach(mpi, net);              // collective
 *     bpl_mpi_fit(mpi, net, train, 10, 128, NULL, NULL);   // 128 rows in all
 *     bpl_mpi_evaluate(mpi, net, test, &accuracy, &loss);
 *     bpl_mpi_destroy(mpi);
 *
 * Every function marked collective must be called by every process of the
 * communicator, in the same order.  Errors are collective too: when one
 * process fails (a missing file, a bad hyperparameter, NaN), every process's
 * call returns the failure's code, and bpl_last_error_message() says which
 * process failed and why.  Nothing here calls MPI_Abort, prints or exits.
 *
 * Random draws: what a rule draws once per batch for the whole net (brsf's
 * feedback magnitudes, the order of examples) comes from the net's
 * generator, which every process keeps in step; what it draws per example
 * (noise, spikes) comes from a stream of each process's own, seeded from
 * the net's seed, the process's rank and the optimiser's step count.
 *
 * MPI must be initialised (MPI_Init_thread with at least
 * MPI_THREAD_FUNNELED) before any call, and a context's calls come from one
 * thread.
 */
#ifndef BIOPLAUS_MPI_H
#define BIOPLAUS_MPI_H

#include <mpi.h>

#include "bioplaus.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A communicator (duplicated: the library's messages never mix with the
 * caller's) and the buffers of its reductions. */
typedef struct bpl_mpi bpl_mpi;

/** What MPI_Get_library_version says of the MPI this library runs with
 * (static; it may be called before MPI_Init).  A binding that gets its
 * communicators from elsewhere (Python's mpi4py) compares it with its own,
 * since a communicator of one MPI means nothing to another. */
BPL_API const char *bpl_mpi_library_version(void);

/** Collective.  Errors: INVALID_ARG (NULL out, MPI_COMM_NULL), STATE (MPI
 * not initialised), NOMEM, IO (an MPI call failed). */
BPL_API int bpl_mpi_create(bpl_mpi **out, MPI_Comm comm);

/** Not collective; detaches the net it trains, if any.  NULL is a no-op. */
BPL_API void bpl_mpi_destroy(bpl_mpi *mpi);

/** This process's rank and the communicator's size (-1 for NULL). */
BPL_API int bpl_mpi_rank(const bpl_mpi *mpi);
BPL_API int bpl_mpi_size(const bpl_mpi *mpi);

/** Collective: make `net` (with its rule attached) this context's net and
 * check that every process holds the same net (bpl_net_state_hash): built
 * from the same seed, or loaded from the same file.  From now on
 * bpl_net_fit and bpl_net_train_batch on it reduce every step across the
 * processes; prefer bpl_mpi_fit, which also agrees on errors between steps.
 * Errors: INVALID_ARG, STATE (no rule attached; another net attached; the
 * nets differ between processes), IO, and any process's failure. */
BPL_API int bpl_mpi_attach(bpl_mpi *mpi, bpl_net *net);

/** Collective: train the net back as one process.  Errors: INVALID_ARG. */
BPL_API int bpl_mpi_detach(bpl_mpi *mpi);

/** Collective: bpl_net_fit data-parallel.  `batch_size` is the rows of a
 * step over all processes; each trains rows [len*rank/size,
 * len*(rank+1)/size) of it.  Every process needs the same dataset,
 * epochs and batch_size (checked: INVALID_ARG or SHAPE everywhere).  The
 * progress callback runs on every process with the loss of the whole batch
 * only at BPL_EVENT_EPOCH (a batch's loss is this process's share); when it
 * asks to stop on any process, every process stops after the next step or
 * at the end of the epoch, and returns BPL_OK.  At the end of every epoch
 * the processes compare their nets' state hashes and fail with STATE if
 * they differ.  Errors: as bpl_net_fit, on every process (the message names
 * the process that failed), and IO. */
BPL_API int bpl_mpi_fit(bpl_mpi *mpi, bpl_net *net, const bpl_dataset *ds, size_t epochs,
                        size_t batch_size, bpl_progress_fn fn, void *user_data);

/** Collective: bpl_net_evaluate with the dataset shared out among the
 * processes; every process gets the accuracy and mean loss over all of it.
 * Errors: as bpl_net_evaluate, on every process, and IO. */
BPL_API int bpl_mpi_evaluate(bpl_mpi *mpi, bpl_net *net, const bpl_dataset *ds,
                             double *accuracy_out, double *loss_out);

/** Collective: rank 0 saves the net (bpl_net_save, which replaces the file
 * at once or not at all); every process returns rank 0's result. */
BPL_API int bpl_mpi_save(bpl_mpi *mpi, const bpl_net *net, const char *path);

/** Collective: agree on a status.  Every process gives its own; all return
 * BPL_OK if all gave BPL_OK, else the code of the lowest-ranked process
 * that failed, with its message prefixed by its rank.  For a program's own
 * steps (loading data, say), so that a failure on one process does not
 * leave the others waiting in the next collective call. */
BPL_API int bpl_mpi_agree(bpl_mpi *mpi, int status);

#ifdef __cplusplus
}
#endif

#endif /* BIOPLAUS_MPI_H */
