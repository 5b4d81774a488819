/*
 * messages.c - how bioplaus-train complains: usage errors (exit status 2)
 * and the library's failures (exit status 1), one line each on stderr.
 */
#include "train.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char program[] = "bioplaus-train";

/* One line on stderr, then the usage exit status. */
int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

/* Report the library's last failure; must run right after the failing call. */
int library_error(int status)
{
    fprintf(stderr, "%s: %s: %s\n", program, bpl_strerror(status), bpl_last_error_message());
    return EXIT_FAILURE;
}
