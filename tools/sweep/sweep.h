/*
 * sweep.h - what the files of bioplaus-sweep share: the grid, its
 * configurations, and the runs.
 */
#ifndef BIOPLAUS_SWEEP_H
#define BIOPLAUS_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { MAX_KEYS = 32, MAX_VALUES = 32, MAX_TEXT = 256, MAX_ARGS = 2 * MAX_KEYS + 16 };
enum { ARG_TEXT = 2 * MAX_TEXT + 8 }; /* "--name" or "name=value" */

/* A key of the grid: a bioplaus-train option ("lr"), a hyperparameter
 * ("param weight_decay"), or the seed; its values are a list or a range. */
enum { VALUES_LIST, VALUES_LOG, VALUES_UNIFORM, VALUES_INT };
struct grid_key {
    char name[MAX_TEXT];
    int is_param;
    int kind; /* VALUES_* */
    char values[MAX_VALUES][MAX_TEXT];
    size_t n_values;
    double lo, hi; /* ranges */
};

struct grid {
    struct grid_key keys[MAX_KEYS];
    size_t n_keys;
    struct grid_key seeds; /* a list; "1" when not given */
    size_t count;          /* > 0: a random search of that many configurations */
    uint64_t search_seed;
};

/* One configuration and seed: bioplaus-train's arguments after the program. */
struct run {
    char args[MAX_ARGS][ARG_TEXT];
    size_t n_args;
    char id[17];              /* a hash of the arguments: the run's files */
    char rule[MAX_TEXT];
    char setup[4 * MAX_TEXT]; /* the options but the seed, for grouping */
    char seed[MAX_TEXT];
};

/* grid.c: parse a grid file (0, or 2 after printing why) and list its runs
 * (every configuration with every seed; *out malloc'd). */
int grid_parse(const char *path, struct grid *g);
int grid_runs(const struct grid *g, struct run **out, size_t *n_out);

/* runner.c: a run into DIR/runs/ID.*: run_one waits for it (0 done, 1
 * failed); run_start gives the child (or -1, the run marked failed) and
 * run_end records how it ended (waitpid's status).  run_is_done: its
 * marker holds the same command; run_failed: its last attempt failed. */
int run_one(const char *train, const char *dir, const struct run *r);
pid_t run_start(const char *train, const char *dir, const struct run *r);
int run_end(const char *dir, const struct run *r, int status);
int run_is_done(const char *dir, const struct run *r);
int run_failed(const char *dir, const struct run *r);
void run_command_text(const struct run *r, char *out, size_t size);

/* summary.c: DIR/summary.csv and the table of the best set-up per rule. */
int write_summary(const char *dir, const struct run *runs, size_t n);

#endif
