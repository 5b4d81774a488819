/*
 * bioplaus-sweep - train every configuration of a grid (or a random sample
 * of it) with bioplaus-train, on the processes of an MPI job:
 *
 *     mpiexec -n 8 bioplaus-sweep grid.txt out/
 *
 * Rank 0 holds the queue of runs not yet done and hands them out one at a
 * time to whichever process asks (itself included, between polls), so a
 * slow configuration does not hold the others back.  Each run is one
 * bioplaus-train child; it leaves out/runs/NNNN.csv and .log, and a .done
 * marker when it ended well.  Started again, the sweep skips the runs that
 * are done, so it resumes after a crash or a wall-clock limit.  At the end
 * rank 0 writes out/summary.csv and prints the best set-up of each rule by
 * validation accuracy, with its test accuracy.  Without mpiexec it runs
 * alone.
 *
 * Exit status: 0 every run done, 1 a run or a file failed, 2 usage.
 */
#include "sweep.h"

#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { TAG_REQUEST = 1, TAG_ASSIGN = 2 };
enum { NOTHING_YET = -1, STOP = -1 };

static int world_rank, world_size;

static int usage(void)
{
    fprintf(stderr, "usage: bioplaus-sweep [--train PATH] GRID OUT_DIR\n"
                    "  GRID: the grid file (docs/scaling.md, \"Sweeps\"); OUT_DIR: where the\n"
                    "  runs and summary.csv go.  --train: the bioplaus-train to run (default:\n"
                    "  the one next to this program).\n");
    return 2;
}

/* bioplaus-train beside this program (the build tree and the install). */
static int default_train(char *out, size_t size)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return 1;
    *slash = '\0';
    int len = snprintf(out, size, "%s/bioplaus-train", self);
    return len < 0 || (size_t)len >= size || access(out, X_OK) != 0;
}

static int make_dirs(const char *dir)
{
    char runs[4096];
    snprintf(runs, sizeof runs, "%s/runs", dir);
    if ((mkdir(dir, 0777) != 0 && errno != EEXIST) || (mkdir(runs, 0777) != 0 && errno != EEXIST)) {
        fprintf(stderr, "bioplaus-sweep: cannot create '%s': %s\n", runs, strerror(errno));
        return 1;
    }
    return 0;
}

static void report(const struct run *runs, long i, int failed)
{
    printf("[rank %d] run %04ld (%s) %s: %s\n", world_rank, i, runs[i].id,
           failed ? "FAILED" : "done", runs[i].setup);
    fflush(stdout);
}

/* Rank 0: serve requests, and train between them. */
static int lead(const char *train, const char *dir, const struct run *runs, const long *todo,
                size_t n_todo)
{
    size_t next = 0;
    int stopped = 0, failures = 0, own_running = 0;
    pid_t own_pid = -1;
    long own = 0;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQUEST, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            long result, assign;
            MPI_Recv(&result, 1, MPI_LONG, st.MPI_SOURCE, TAG_REQUEST, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            failures += result <= -2;
            assign = next < n_todo ? todo[next++] : STOP;
            stopped += assign == STOP;
            MPI_Send(&assign, 1, MPI_LONG, st.MPI_SOURCE, TAG_ASSIGN, MPI_COMM_WORLD);
        }
        if (!own_running && next < n_todo) {
            own = todo[next++];
            own_pid = run_start(train, dir, &runs[own]);
            own_running = own_pid > 0;
            if (!own_running) {
                failures++;
                report(runs, own, 1);
            }
        } else if (own_running) {
            int status;
            if (waitpid(own_pid, &status, WNOHANG) == own_pid) {
                int failed = run_end(dir, &runs[own], status);
                failures += failed;
                report(runs, own, failed);
                own_running = 0;
            }
        }
        if (!own_running && next >= n_todo && stopped == world_size - 1)
            return failures;
        if (!flag) {
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
}

/* The other ranks: ask, train, tell how it went, until told to stop. */
static void follow(const char *train, const char *dir, const struct run *runs)
{
    long result = NOTHING_YET, assign;
    for (;;) {
        MPI_Send(&result, 1, MPI_LONG, 0, TAG_REQUEST, MPI_COMM_WORLD);
        MPI_Recv(&assign, 1, MPI_LONG, 0, TAG_ASSIGN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (assign == STOP)
            return;
        int failed = run_one(train, dir, &runs[assign]);
        report(runs, assign, failed);
        result = failed ? -2 - assign : assign;
    }
}

static int worst(int status)
{
    int all = status;
    MPI_Allreduce(&status, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return all;
}

static int sweep(int argc, char **argv)
{
    char train[PATH_MAX] = "";
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "--train") == 0) {
        snprintf(train, sizeof train, "%s", argv[a + 1]);
        a += 2;
    }
    if (argc - a != 2)
        return worst(usage());
    const char *grid_path = argv[a], *dir = argv[a + 1];
    if (!train[0] && default_train(train, sizeof train) != 0) {
        fprintf(stderr, "bioplaus-sweep: no bioplaus-train next to this program; use --train\n");
        return worst(2);
    }
    /* Every process reads the grid: the same file gives the same runs. */
    struct grid grid;
    struct run *runs = NULL;
    size_t n = 0;
    int status = grid_parse(grid_path, &grid);
    if (status == 0)
        status = grid_runs(&grid, &runs, &n);
    if (status == 0 && world_rank == 0)
        status = make_dirs(dir);
    status = worst(status);
    if (status != 0) {
        free(runs);
        return status;
    }
    int failures = 0;
    if (world_rank == 0) {
        long *todo = malloc((n ? n : 1) * sizeof *todo);
        size_t n_todo = 0;
        for (size_t i = 0; todo && i < n; i++)
            if (!run_is_done(dir, &runs[i]))
                todo[n_todo++] = (long)i;
        printf("bioplaus-sweep: %zu runs, %zu done before, %zu to train on %d process%s\n", n,
               todo ? n - n_todo : 0, n_todo, world_size, world_size == 1 ? "" : "es");
        fflush(stdout);
        failures = todo ? lead(train, dir, runs, todo, n_todo) : 1;
        free(todo);
    } else {
        follow(train, dir, runs);
    }
    status = worst(failures ? 1 : 0);
    if (world_rank == 0 && write_summary(dir, runs, n) != 0)
        status = 1;
    free(runs);
    return worst(status);
}

int main(int argc, char **argv)
{
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "bioplaus-sweep: MPI_Init_thread failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    int status = sweep(argc, argv);
    MPI_Finalize();
    return status;
}
