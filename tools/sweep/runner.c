/*
 * runner.c - one run: bioplaus-train in a child process, its per-epoch
 * metrics in DIR/runs/NNNN.csv and its output in NNNN.log.  A run that
 * ends well leaves NNNN.done holding its command (written to a temporary
 * file and renamed, so it is there whole or not at all); a sweep started
 * again skips the runs whose marker holds the same command, so that a
 * sweep killed part way, or stopped by a wall-clock limit, goes on where it
 * was and a changed grid file retrains what changed.
 *
 * The child gets the environment without the MPI launcher's variables, so
 * that it trains as one process and does not try to join the sweep's job.
 */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

static void path_of(char *out, size_t size, const char *dir, const struct run *r,
                    const char *ext)
{
    snprintf(out, size, "%s/runs/%s.%s", dir, r->id, ext);
}

void run_command_text(const struct run *r, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t a = 0; a < r->n_args && used < size; a++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", a ? " " : "", r->args[a]);
}

int run_failed(const char *dir, const struct run *r)
{
    char path[4096];
    path_of(path, sizeof path, dir, r, "failed");
    FILE *f = fopen(path, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

int run_is_done(const char *dir, const struct run *r)
{
    char path[4096], want[MAX_ARGS * (ARG_TEXT + 1)], have[sizeof want];
    path_of(path, sizeof path, dir, r, "done");
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(have, 1, sizeof have - 1, f);
    fclose(f);
    have[n] = '\0';
    if (n && have[n - 1] == '\n')
        have[n - 1] = '\0';
    run_command_text(r, want, sizeof want);
    return strcmp(have, want) == 0;
}

static int launcher_variable(const char *entry)
{
    static const char *const prefixes[] = {"OMPI_", "PMI_", "PMIX_", "HYDRA_", "MPI_LOCAL"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

static char **child_environment(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!launcher_variable(environ[i]))
            env[k++] = environ[i];
    return env;
}

static int mark_done(const char *dir, const struct run *r)
{
    char path[4096], tmp[4200], text[MAX_ARGS * (ARG_TEXT + 1)];
    path_of(path, sizeof path, dir, r, "done");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    run_command_text(r, text, sizeof text);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return 1;
    int failed = fprintf(f, "%s\n", text) < 0;
    failed |= fclose(f) != 0;
    return failed || rename(tmp, path) != 0;
}

pid_t run_start(const char *train, const char *dir, const struct run *r)
{
    char csv[4096], log[4096], failed_path[4096];
    path_of(csv, sizeof csv, dir, r, "csv");
    path_of(log, sizeof log, dir, r, "log");
    path_of(failed_path, sizeof failed_path, dir, r, "failed");
    remove(failed_path);
    /* posix_spawn takes writable strings: copies of the arguments. */
    char *argv[MAX_ARGS + 4] = {NULL};
    size_t n = 0;
    int copied = (argv[n++] = strdup(train)) != NULL;
    for (size_t a = 0; a < r->n_args; a++)
        copied &= (argv[n++] = strdup(r->args[a])) != NULL;
    copied &= (argv[n++] = strdup("--csv")) != NULL;
    copied &= (argv[n++] = strdup(csv)) != NULL;
    argv[n] = NULL;

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    char **env = child_environment();
    pid_t pid = -1;
    int rc = env && copied ? posix_spawn(&pid, train, &actions, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    for (size_t a = 0; a < n; a++)
        free(argv[a]);
    if (rc != 0) {
        run_end(dir, r, -1);
        return -1;
    }
    return pid;
}

/* status: waitpid's, or -1 when the child could not start. */
int run_end(const char *dir, const struct run *r, int status)
{
    if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return mark_done(dir, r);
    char failed_path[4096];
    path_of(failed_path, sizeof failed_path, dir, r, "failed");
    FILE *f = fopen(failed_path, "w");
    if (f) {
        fprintf(f, "%s\n", status < 0               ? "could not start bioplaus-train"
                           : WIFEXITED(status)     ? "bioplaus-train failed"
                                                   : "bioplaus-train was killed");
        fclose(f);
    }
    return 1;
}

int run_one(const char *train, const char *dir, const struct run *r)
{
    pid_t pid = run_start(train, dir, r);
    if (pid < 0)
        return 1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return run_end(dir, r, status);
}
