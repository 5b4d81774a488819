/*
 * files.c - opening the files the library reads (models, IDX data).
 *
 * Only regular files are read.  A FIFO would block the open until some
 * writer appears (forever, for a path given by mistake) and then feed
 * whatever arrives; a device such as /dev/zero reads forever; a directory
 * is no file at all.  Each is refused with BPL_ERR_IO naming what it is.
 */
#include "bpl_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *bpl__file_kind(unsigned mode)
{
    mode_t m = (mode_t)mode;
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
           : S_ISLNK(m)  ? "a symbolic link"
           : S_ISREG(m)  ? "a regular file"
                         : "of an unknown type";
}

static int not_regular(const char *path, const char *caller, mode_t mode)
{
    return bpl__fail(BPL_ERR_IO, "%s: '%s': not a regular file (%s)", caller, path,
                     bpl__file_kind((unsigned)mode));
}

int bpl__open_regular(const char *path, const char *caller, int *fd_out, uint64_t *size_out)
{
    *fd_out = -1;
    /* Looked at before it is opened: opening a device can have effects of
     * its own (a tape rewinds, a terminal becomes the controlling one). */
    struct stat st;
    if (stat(path, &st) != 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot open: %s", caller, path,
                         strerror(errno));
    if (!S_ISREG(st.st_mode))
        return not_regular(path, caller, st.st_mode);
    /* The path may be replaced in between: O_NONBLOCK makes the open of a
     * FIFO return at once, and fstat checks what was really opened. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return bpl__fail(BPL_ERR_IO, "%s: '%s': cannot open: %s", caller, path,
                         strerror(errno));
    int rc = BPL_OK, flags;
    if (fstat(fd, &st) != 0)
        rc = bpl__fail(BPL_ERR_IO, "%s: '%s': %s", caller, path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = not_regular(path, caller, st.st_mode);
    else if ((flags = fcntl(fd, F_GETFL)) == -1 ||
             fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
        rc = bpl__fail(BPL_ERR_IO, "%s: '%s': %s", caller, path, strerror(errno));
    if (rc != BPL_OK) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return BPL_OK;
}

int bpl__read_fully(int fd, void *dst, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < ((size_t)1 << 30) ? n - *got : (size_t)1 << 30;
        ssize_t r = read(fd, (char *)dst + *got, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}
