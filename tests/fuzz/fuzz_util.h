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
static inline int fuzz_check(int rc, unsigned allowed, const char *call)
{
    const char *msg = bpl_last_error_message();
    if (!msg)
        fuzz_abort("%s: bpl_last_error_message() returned NULL", call);
    if (rc > 0 || rc < BPL_ERR_RANGE || !(allowed & FZ(rc)))
        fuzz_abort("%s returned %d (%s), not a status it may return; message: %s", call,
                   rc, bpl_strerror(rc), msg);
    if (rc != BPL_OK && msg[0] == '\0')
        fuzz_abort("%s failed with %d (%s) and an empty message", call, rc,
                   bpl_strerror(rc));
    return rc;
}

static char fuzz_dir[256];

/* The scratch directory goes when the process ends normally; a crashing
 * run leaves it behind with the files that made it crash. */
static inline void fuzz_remove_dir(void)
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
