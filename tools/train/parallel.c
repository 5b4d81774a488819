/*
 * parallel.c - bioplaus-train on several processes: started by mpiexec
 * (or mpirun) in a build with libbioplaus-mpi, every process loads the data
 * and builds the same net, and they train it data-parallel, --batch rows
 * per process per step.  Process 0 prints; the others' stdout goes to
 * /dev/null (their stderr stays, for what fails on them alone).
 *
 * Every step of a run that can fail on one process is followed by an
 * agreement, so a missing file on one process ends the run on all of them
 * instead of leaving the others waiting; inside training the library does
 * the same.  Without libbioplaus-mpi, or when not started by a launcher,
 * there is one process and these functions do what one process does.
 */
#include "train.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef BPL_TRAIN_MPI
#include <bioplaus_mpi.h>

static bpl_mpi *context;
static int processes = 1, rank;

/* Launchers say so in the environment: MPI is initialised only then, so a
 * plain run never starts an MPI runtime (which Open MPI refuses as root). */
static int launched_by_mpiexec(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                       "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

int parallel_start(int *argc, char ***argv)
{
    if (!launched_by_mpiexec())
        return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init_thread failed\n", program);
        return EXIT_FAILURE;
    }
    int rc = bpl_mpi_create(&context, MPI_COMM_WORLD);
    if (rc != BPL_OK)
        return library_error(rc);
    processes = bpl_mpi_size(context);
    rank = bpl_mpi_rank(context);
    if (rank != 0 && !freopen("/dev/null", "w", stdout))
        return EXIT_FAILURE;
    return 0;
}

void parallel_finish(void)
{
    if (!context)
        return;
    bpl_mpi_destroy(context);
    context = NULL;
    MPI_Finalize();
}

int parallel_processes(void)
{
    return processes;
}

int parallel_rank(void)
{
    return rank;
}

/* The worst exit status of any process (0 < 1 < 2), on every process. */
int parallel_agree(int status)
{
    if (!context)
        return status;
    int worst = status;
    if (MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return EXIT_FAILURE;
    return worst;
}

int parallel_fit(bpl_net *net, const bpl_dataset *ds, size_t epochs, size_t batch,
                 bpl_progress_fn fn, void *user_data)
{
    if (!context)
        return bpl_net_fit(net, ds, epochs, batch, fn, user_data);
    int rc = bpl_mpi_attach(context, net);
    if (rc == BPL_OK)
        rc = bpl_mpi_fit(context, net, ds, epochs, batch * (size_t)processes, fn, user_data);
    int detached = bpl_mpi_detach(context);
    return rc != BPL_OK ? rc : detached;
}

int parallel_evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy, double *loss)
{
    return context ? bpl_mpi_evaluate(context, net, ds, accuracy, loss)
                   : bpl_net_evaluate(net, ds, accuracy, loss);
}

int parallel_save(const bpl_net *net, const char *path)
{
    return context ? bpl_mpi_save(context, net, path) : bpl_net_save(net, path);
}

#else /* one process */

int parallel_start(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

void parallel_finish(void)
{
}

int parallel_processes(void)
{
    return 1;
}

int parallel_rank(void)
{
    return 0;
}

int parallel_agree(int status)
{
    return status;
}

int parallel_fit(bpl_net *net, const bpl_dataset *ds, size_t epochs, size_t batch,
                 bpl_progress_fn fn, void *user_data)
{
    return bpl_net_fit(net, ds, epochs, batch, fn, user_data);
}

int parallel_evaluate(bpl_net *net, const bpl_dataset *ds, double *accuracy, double *loss)
{
    return bpl_net_evaluate(net, ds, accuracy, loss);
}

int parallel_save(const bpl_net *net, const char *path)
{
    return bpl_net_save(net, path);
}

#endif
