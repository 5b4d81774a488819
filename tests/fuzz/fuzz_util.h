/*
 * fuzz_util.h - what the fuzz targets share: a scratch directory of their
 * own, writing files, the status contract every call must keep, and a cap
 * on the hyperparameters that set how long one step runs.
 *
 * Included by exactly one translation unit per target.
 */
#ifndef BPL_FUZZ_UTIL_H
#define BPL_FUZZ_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bioplaus.h"

/* A set of statuses: one bit per code, BPL_OK (bit 0) to BPL_ERR_RANGE (bit 13). */
#define FZ(status) (1u << -(status))
/* Every documented error except BPL_ERR_INTERNAL, which is a bug by definition. */
#define FZ_ANY_ERROR 0x3ffeu
#define FZ_ANY (FZ(BPL_OK) | FZ_ANY_ERROR)

/* Time steps one step or one prediction may simulate in a fuzz run. */
#define FUZZ_STEP_CAP 8.0

/* Report a broken contract: the abort gives libFuzzer a crash with a stack. */
static inline void fuzz_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void fuzz_abort(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("contract violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* The header's promises about every call: the status is one the function
 * documents, the message is never NULL and names the problem on failure. */
/* The last status a user rule's hook failed with: the library passes every
 * status in [BPL_STATUS_MIN, -1] on unchanged, including ones it does not
 * define (yet), so a call that ran the hook may return it. */
static int fuzz_hook_status __attribute__((unused));

static inline int fuzz_check(int rc, unsigned allowed, const char *call)
{
    static int trace = -1; /* BPL_FUZZ_TRACE=1: every checked call and its status */
    if (trace < 0)
        trace = getenv("BPL_FUZZ_TRACE") != NULL;
    const char *msg = bpl_last_error_message();
    if (trace)
        fprintf(stderr, "%s -> %d %s\n", call, rc, rc == BPL_OK ? "" : msg);
    if (!msg)
        fuzz_abort("%s: bpl_last_error_message() returned NULL", call);
    int passed_on = rc != BPL_OK && rc == fuzz_hook_status && rc >= BPL_STATUS_MIN &&
                    rc < BPL_ERR_RANGE;
    if (!passed_on && (rc > 0 || rc < BPL_ERR_RANGE || !(allowed & FZ(rc))))
        fuzz_abort("%s returned %d (%s), not a status it may return; message: %s", call,
                   rc, bpl_strerror(rc), msg);
    if (rc != BPL_OK && msg[0] == '\0')
        fuzz_abort("%s failed with %d (%s) and an empty message", call, rc,
                   bpl_strerror(rc));
    return rc;
}

static char fuzz_dir[256];

/* Remove the files of the scratch directory. */
static inline void fuzz_empty_dir(void)
{
    DIR *dir = opendir(fuzz_dir);
    if (!dir)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
        unlink(path);
    }
    closedir(dir);
}

/* The scratch directory goes when the process ends normally; a crashing
 * run leaves it behind with the files that made it crash. */
static inline void fuzz_remove_dir(void)
{
    fuzz_empty_dir();
    rmdir(fuzz_dir);
}

/* The scratch directory, made once per process: files in it are overwritten
 * by every run, so a long campaign does not fill the disk. */
static inline const char *fuzz_scratch_dir(void)
{
    if (!fuzz_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/bplfuzz-XXXXXX",
                 base && base[0] ? base : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_remove_dir);
    }
    return fuzz_dir;
}

/* `dst` receives the path of `name` in the scratch directory. */
static inline void fuzz_path(char *dst, size_t size, const char *name)
{
    snprintf(dst, size, "%s/%s", fuzz_scratch_dir(), name);
}

static inline void fuzz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* ---- how deep the inputs reach ----------------------------------------------
 *
 * A fuzzer whose inputs are all rejected early proves nothing, so each
 * target counts its executions and those that called bpl_net_train_batch,
 * bpl_net_predict and bpl_net_save successfully (at least once), and those
 * it skipped as too costly.  With BPL_FUZZ_STATS=FILE in the environment,
 * every process appends one line to FILE when it exits normally:
 *
 *   runs N train N predict N save N skipped N
 *
 * (tests/fuzz/long-run.sh adds up the lines of a run's worker processes). */
enum {
    FUZZ_REACH_TRAIN = 0,
    FUZZ_REACH_PREDICT,
    FUZZ_REACH_SAVE,
    FUZZ_REACH_SKIPPED,
    FUZZ_REACH_KINDS
};

static struct {
    uint64_t runs, reached[FUZZ_REACH_KINDS];
    unsigned now; /* what this execution has reached so far */
} fuzz_stats;

static inline void fuzz_write_stats(void)
{
    const char *path = getenv("BPL_FUZZ_STATS");
    FILE *f = path && path[0] && fuzz_stats.runs ? fopen(path, "a") : NULL;
    if (!f)
        return;
    fprintf(f, "runs %llu train %llu predict %llu save %llu skipped %llu\n",
            (unsigned long long)fuzz_stats.runs,
            (unsigned long long)fuzz_stats.reached[FUZZ_REACH_TRAIN],
            (unsigned long long)fuzz_stats.reached[FUZZ_REACH_PREDICT],
            (unsigned long long)fuzz_stats.reached[FUZZ_REACH_SAVE],
            (unsigned long long)fuzz_stats.reached[FUZZ_REACH_SKIPPED]);
    fclose(f);
}

/* Called first by every execution. */
static inline void fuzz_begin(void)
{
    if (fuzz_stats.runs++ == 0)
        atexit(fuzz_write_stats);
    fuzz_stats.now = 0;
}

/* Count `kind` once for this execution. */
static inline void fuzz_reach(int kind)
{
    if (!(fuzz_stats.now & (1u << kind))) {
        fuzz_stats.now |= 1u << kind;
        fuzz_stats.reached[kind]++;
    }
}

/* The status of a call, counted as reaching `kind` if it succeeded. */
static inline int fuzz_reached_if_ok(int rc, int kind)
{
    if (rc == BPL_OK)
        fuzz_reach(kind);
    return rc;
}

/* ---- the cost cap --------------------------------------------------------------
 *
 * One call that runs `rows` examples through a net does about
 *
 *   tensor elements x rows x simulated time steps
 *
 * multiply-adds: every tensor of every layer (weights, biases and whatever
 * the rule added: feedback matrices, inverses, sdtp's auxiliary outputs)
 * once per example per time step.  The time steps are the rule's: twice
 * `phase_steps` plus `test_steps` for the segregated rule in spiking mode,
 * twice `steps` for the microcircuit in continuous mode, 1 otherwise.  A
 * call whose estimate exceeds FUZZ_COST_CAP is not made (the execution
 * counts as skipped): such a call is legitimate, but slow enough to be
 * reported as a hang and to hide the inputs that matter.  The cap is what
 * the library's own policy lets an untrusted model file ask of one step
 * (docs/reliability-fuzzing.md). */
#define FUZZ_COST_CAP 4e6

static inline double fuzz_param_or(const bpl_rule *rule, const char *name, double dflt)
{
    double v;
    return bpl_rule_get(rule, name, &v) == BPL_OK ? v : dflt;
}

/* Simulated time steps per example of one step of `rule`. */
static inline double fuzz_time_steps(const bpl_rule *rule)
{
    const char *name = rule ? bpl_rule_name(rule) : "";
    double mode = rule ? fuzz_param_or(rule, "mode", 0.0) : 0.0;
    if (strcmp(name, "segregated") == 0 && mode == 1.0)
        return 2.0 * fuzz_param_or(rule, "phase_steps", 1.0) +
               fuzz_param_or(rule, "test_steps", 1.0);
    if (strcmp(name, "microcircuit") == 0 && mode == 1.0)
        return 2.0 * fuzz_param_or(rule, "steps", 1.0);
    return 1.0;
}

/* How many times a layer applies its tensors per example: once for a dense
 * layer, at each of its H_out W_out output positions for a conv layer (its
 * outputs over its weight's rows, the output channels). */
static inline double fuzz_positions(const bpl_layer *layer)
{
    size_t rows = 0;
    if (bpl_layer_tensor_info(layer, "weight", &rows, NULL, NULL) != BPL_OK || rows == 0)
        return 1.0;
    return (double)bpl_layer_units(layer) / (double)rows;
}

/* Elements of every tensor of the net, each counted as often as its layer
 * applies it, and every layer's outputs (its elementwise work). */
static inline double fuzz_tensor_elements(bpl_net *net)
{
    double n = 0.0;
    for (size_t l = 0; l < bpl_net_layer_count(net); l++) {
        const bpl_layer *layer = bpl_net_layer(net, l);
        double positions = fuzz_positions(layer);
        for (size_t t = 0; t < bpl_layer_tensor_count(layer); t++) {
            size_t rows = 0, cols = 0;
            bpl_layer_tensor_info(layer, bpl_layer_tensor_name(layer, t), &rows, &cols, NULL);
            n += (double)rows * (double)cols * positions;
        }
        n += (double)bpl_layer_units(layer);
    }
    return n;
}

static inline double fuzz_cost(bpl_net *net, double rows)
{
    return fuzz_tensor_elements(net) * rows * fuzz_time_steps(bpl_net_rule(net));
}

/* 1 if a call running `rows` examples through `net` fits the cap; else the
 * execution counts as skipped. */
static inline int fuzz_affordable(bpl_net *net, double rows)
{
    if (fuzz_cost(net, rows) <= FUZZ_COST_CAP)
        return 1;
    fuzz_reach(FUZZ_REACH_SKIPPED);
    return 0;
}

/* Hyperparameters that set how many time steps one step or one prediction
 * simulates.  A run of a million steps is legitimate but would be reported
 * as a hang and hide the inputs that matter, so they are capped. */
static inline void fuzz_cap_costs(bpl_rule *rule)
{
    static const char *const names[] = {"phase_steps", "integration_steps", "test_steps",
                                        "test_average", "steps"};
    for (size_t i = 0; rule && i < sizeof names / sizeof names[0]; i++) {
        double v;
        if (bpl_rule_get(rule, names[i], &v) == BPL_OK && v > FUZZ_STEP_CAP)
            fuzz_check(bpl_rule_set(rule, names[i], FUZZ_STEP_CAP), FZ(BPL_OK),
                       "bpl_rule_set (cost cap)");
    }
}

#endif
