/*
 * model_file.c - saving a net to a path and loading it from one: the model
 * bytes (model_io.c) written atomically, or read whole and decoded.
 *
 * Saving writes a temporary file next to the target, flushes it to disk and
 * renames it over the target, so the target is never half-written.  The
 * target is the path, or the file its symbolic links lead to; anything but
 * a regular file there is refused (docs/reliability.md, "Saving over
 * special paths").
 */
#include "bpl_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the file a save replaces ---------------------------------------------- */

#define PATH_BYTES 4096
#define MAX_LINKS 40 /* as many as Linux follows in one path */
#define TEMP_NAME_MAX 200 /* bytes of the target's name kept in a temporary's */

/* The length of the directory part of `path`, its trailing slash included
 * (0 for a bare name). */
static size_t directory_length(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? (size_t)(slash - path) + 1 : 0;
}

/* Replace `target` (a symbolic link) by what it points to, relative to the
 * link's directory. */
static int follow_link(const char *path, char *target)
{
    static const char caller[] = "bpl_net_save";
    char link[PATH_BYTES];
    ssize_t n = readlink(target, link, sizeof link);
    if (n < 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot read the link '%s': %s", caller, path,
                         target, strerror(errno));
    size_t dir = link[0] == '/' ? 0 : directory_length(target);
    if ((size_t)n >= sizeof link || dir + (size_t)n >= PATH_BYTES)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': the path its links lead to is too long",
                         caller, path);
    memcpy(target + dir, link, (size_t)n);
    target[dir + (size_t)n] = '\0';
    return BPL_OK;
}

/* The file a save to `path` replaces: `path` itself, or the end of its
 * chain of symbolic links.  It must be a regular file or not exist yet (a
 * dangling link's target is created, as open() would). */
static int resolve_target(const char *path, char *target)
{
    static const char caller[] = "bpl_net_save";
    snprintf(target, PATH_BYTES, "%s", path);
    for (int links = 0;; links++) {
        struct stat st;
        if (lstat(target, &st) != 0)
            return errno == ENOENT ? BPL_OK
                                   : bpl__fail(BPL_ERR_IO, "%s: '%s': %s", caller, path,
                                               strerror(errno));
        if (S_ISREG(st.st_mode))
            return BPL_OK;
        if (!S_ISLNK(st.st_mode))
            return bpl__fail(BPL_ERR_IO, "%s: '%s'%s%s%s: not a regular file (%s); nothing "
                             "was written",
                             caller, path, links ? " (links to '" : "", links ? target : "",
                             links ? "')" : "", bpl__file_kind((unsigned)st.st_mode));
        if (links == MAX_LINKS)
            return bpl__fail(BPL_ERR_IO, "%s: '%s': too many levels of symbolic links (a "
                             "loop?); nothing was written",
                             caller, path);
        int rc = follow_link(path, target);
        if (rc != BPL_OK)
            return rc;
    }
}

/* 32 bits that differ between calls, threads and processes; O_EXCL makes a
 * clash harmless. */
static uint32_t temporary_suffix(unsigned attempt, const void *salt)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
                 (uint64_t)(uintptr_t)salt ^ (uint64_t)attempt << 48 ^
                 (uint64_t)getpid() << 16;
    x ^= x >> 30; /* splitmix64's finaliser */
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (uint32_t)x;
}

/* Create a fresh temporary file beside `target`, named
 * ".<name>.bpl-tmp.<pid>.<8 hex digits>" (the name cut to TEMP_NAME_MAX
 * bytes), so that one left by a killed save is recognisable. */
static int open_temporary(const char *target, char *tmp, size_t size)
{
    size_t dir = directory_length(target), name = strlen(target + dir);
    int kept = (int)(name < TEMP_NAME_MAX ? name : TEMP_NAME_MAX);
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, size, "%.*s.%.*s.bpl-tmp.%ld.%08lx", (int)dir, target, kept,
                 target + dir, (long)getpid(),
                 (unsigned long)temporary_suffix(attempt, tmp));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static void sync_directory(const char *target)
{
    char dir[PATH_BYTES];
    size_t n = directory_length(target);
    if (n == 0)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(n > 1 ? n - 1 : n), target);
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* durability of the rename; a failure here is not fatal */
        close(fd);
    }
}

static int write_atomically(const char *path, const unsigned char *data, size_t n)
{
    static const char caller[] = "bpl_net_save";
    char target[PATH_BYTES], tmp[PATH_BYTES + TEMP_NAME_MAX + 64];
    if (strlen(path) > 4000)
        return bpl__fail(BPL_ERR_INVALID_ARG, "%s: path too long", caller);
    int rc = resolve_target(path, target);
    if (rc != BPL_OK)
        return rc;
    int fd = open_temporary(target, tmp, sizeof tmp);
    if (fd < 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot create a temporary file: %s", caller,
                         path, strerror(errno));
    const char *step = NULL;
    if (write_all(fd, data, n) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "flush";
    int saved_errno = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved_errno = errno;
    }
    if (!step && rename(tmp, target) != 0) {
        step = "rename";
        saved_errno = errno;
    }
    if (step) {
        unlink(tmp);
        return bpl__fail(BPL_ERR_IO, "%s: '%s': %s failed: %s (the previous file, if any, "
                         "is untouched)",
                         caller, path, step, strerror(saved_errno));
    }
    sync_directory(target);
    return BPL_OK;
}

static int read_file(const char *path, unsigned char **data, size_t *size)
{
    static const char caller[] = "bpl_net_load";
    int fd;
    uint64_t file_size;
    int rc = bpl__open_regular(path, caller, &fd, &file_size);
    if (rc != BPL_OK)
        return rc;
    if (file_size > BPL__MAX_MODEL_BYTES) {
        close(fd);
        return bpl__fail(BPL_ERR_FORMAT, "%s: '%s': too large to be a model", caller, path);
    }
    size_t n = (size_t)file_size;
    unsigned char *buf = bpl__malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return bpl__fail(BPL_ERR_NOMEM, "%s: out of memory", caller);
    }
    size_t got;
    int failed = bpl__read_fully(fd, buf, n, &got) != 0;
    int saved_errno = errno;
    close(fd);
    if (failed || got != n) {
        bpl__free(buf);
        return bpl__fail(BPL_ERR_IO, "%s: '%s': read error: %s", caller, path,
                         failed ? strerror(saved_errno) : "the file shrank while read");
    }
    *data = buf;
    *size = n;
    return BPL_OK;
}

BPL_API int bpl_net_save(const bpl_net *net, const char *path)
{
    BPL_CHECK_ARG(net != NULL);
    BPL_CHECK_ARG(path != NULL && path[0] != '\0');
    unsigned char *data;
    size_t size;
    int rc = bpl__model_encode(net, "bpl_net_save", &data, &size);
    if (rc != BPL_OK)
        return rc;
    rc = write_atomically(path, data, size);
    bpl__free(data);
    return rc;
}

BPL_API int bpl_net_load(bpl_net **out, const char *path)
{
    BPL_CHECK_ARG(out != NULL);
    *out = NULL;
    BPL_CHECK_ARG(path != NULL);
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = read_file(path, &data, &size);
    if (rc != BPL_OK)
        return rc;
    rc = bpl__model_decode(data, size, "bpl_net_load", path, out);
    bpl__free(data);
    return rc;
}
