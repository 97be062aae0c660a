/* strbuf.c: growable text buffer (see strbuf.h). */
#include "lib/util/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"

static int reserve(StrBuf *b, size_t extra)
{
    if (b->failed)
        return 0;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *s = mem_realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

void strbuf_append(StrBuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_puts(StrBuf *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

void strbuf_putc(StrBuf *b, char ch)
{
    strbuf_append(b, &ch, 1);
}

void strbuf_printf(StrBuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int strbuf_finish(StrBuf *b, char **text, size_t *len, Err *e)
{
    if (b->failed || !reserve(b, 0)) {
        strbuf_free(b);
        return err_set(e, ERR_NOMEM, "out of memory building text");
    }
    b->s[b->len] = '\0'; /* an empty buffer has had no append to terminate it */
    *text = b->s;
    if (len)
        *len = b->len;
    *b = (StrBuf)STRBUF_INIT;
    return 0;
}

void strbuf_free(StrBuf *b)
{
    mem_free(b->s);
    *b = (StrBuf)STRBUF_INIT;
}

void format_double(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, 32, "%.0f", v); /* integers read best without an exponent: 100, not 1e+02 */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}
