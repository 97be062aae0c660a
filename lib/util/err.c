/* err.c: filling Err messages (see err.h). */
#include "lib/util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(Err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->code = code;
    return code;
}

int err_prefix(Err *e, const char *fmt, ...)
{
    char head[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t hl = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t ml = strnlen(e->msg, sizeof e->msg - 1);
    if (hl + ml > sizeof e->msg - 1)
        ml = sizeof e->msg - 1 - hl; /* the message's tail gives way to the context */
    memmove(e->msg + hl, e->msg, ml);
    memcpy(e->msg, head, hl);
    e->msg[hl + ml] = '\0';
    return e->code;
}

const char *err_name(int code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_IO: return "io";
    case ERR_FORMAT: return "format";
    case ERR_CONFIG: return "config";
    case ERR_NOMEM: return "nomem";
    case ERR_BUSY: return "busy";
    case ERR_MPI: return "mpi";
    case ERR_USAGE: return "usage";
    case ERR_INTERNAL: return "internal";
    case ERR_PREEMPTED: return "preempted";
    }
    return "unknown";
}
