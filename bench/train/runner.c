/*
 * runner.c - a job run in a child process of its own, so that its peak RSS is
 * its own; its result comes back through a pipe, and a child that dies is
 * reported as a failed result.
 */
#include "bench_train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A failed outcome: what failed, the status and the library's message. */
void set_error(outcome *status, const char *what, int rc)
{
    snprintf(status->error, sizeof status->error, "%s: %s: %s", what, bpl_strerror(rc),
             bpl_last_error_message());
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t read_all(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Run fn(j, out) in a child and copy its `size`-byte result back; `out`
 * points to a result that starts with its outcome. */
void run_job(const job *j, void (*fn)(const job *, void *), void *out, size_t size)
{
    if (j->o->in_process) {
        fn(j, out);
        return;
    }
    int fds[2];
    outcome *head = out; /* every result starts with its outcome */
    if (pipe(fds) != 0) {
        memset(out, 0, size);
        snprintf(head->error, sizeof head->error, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL); /* or the child would flush the parent's pending output again */
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        fn(j, out);
        _exit(write_all(fds[1], out, size) == 0 ? 0 : 1);
    }
    close(fds[1]);
    size_t got = pid > 0 ? read_all(fds[0], out, size) : 0;
    close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (pid < 0 || got != size) {
        memset(out, 0, size);
        if (pid < 0)
            snprintf(head->error, sizeof head->error, "fork: %s", strerror(errno));
        else if (WIFSIGNALED(status))
            snprintf(head->error, sizeof head->error, "the child died of signal %d",
                     WTERMSIG(status));
        else
            snprintf(head->error, sizeof head->error, "the child exited without a result");
    }
}
