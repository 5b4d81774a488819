/*
 * error.c - status strings and the per-thread error message.
 */
#include "bpl_internal.h"

#include <stdio.h>
#include <string.h>

#define MESSAGE_SIZE 512

static _Thread_local char last_message[MESSAGE_SIZE];

BPL_API const char *bpl_strerror(int status)
{
    switch (status) {
    case BPL_OK: return "success";
    case BPL_ERR_INVALID_ARG: return "invalid argument";
    case BPL_ERR_NOMEM: return "out of memory";
    case BPL_ERR_SHAPE: return "shape mismatch";
    case BPL_ERR_STATE: return "invalid state";
    case BPL_ERR_UNSUPPORTED: return "unsupported";
    case BPL_ERR_VERSION: return "unsupported version";
    case BPL_ERR_IO: return "input/output error";
    case BPL_ERR_FORMAT: return "bad file format";
    case BPL_ERR_NUMERIC: return "numeric error (NaN or Inf)";
    case BPL_ERR_CALLBACK: return "callback failed";
    case BPL_ERR_NOT_FOUND: return "not found";
    case BPL_ERR_OVERFLOW: return "size overflow";
    case BPL_ERR_RANGE: return "value out of range";
    case BPL_ERR_INTERNAL: return "internal error";
    default: return "unknown status code";
    }
}

BPL_API const char *bpl_last_error_message(void)
{
    return last_message;
}

int bpl__fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

BPL_API int bpl_error_set(int status, const char *message)
{
    snprintf(last_message, sizeof last_message, "%s", message ? message : "");
    return status;
}

void bpl__error_prefix(const char *prefix)
{
    /* Shift the message right and write "prefix: " in front, truncating the
     * end if the whole does not fit. */
    size_t plen = strlen(prefix), mlen = strlen(last_message);
    if (plen + 2 >= MESSAGE_SIZE)
        return;
    size_t keep = mlen < MESSAGE_SIZE - 1 - plen - 2 ? mlen : MESSAGE_SIZE - 1 - plen - 2;
    memmove(last_message + plen + 2, last_message, keep);
    memcpy(last_message, prefix, plen);
    last_message[plen] = ':';
    last_message[plen + 1] = ' ';
    last_message[plen + 2 + keep] = '\0';
}
