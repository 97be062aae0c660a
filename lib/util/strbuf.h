/* strbuf.h: a growable text buffer for building YAML, JSON, CSV and report text.
 * Allocation failure is sticky: appends after a failure do nothing and strbuf_finish reports
 * ERR_NOMEM once, so builders need not check every append. */
#ifndef ONFH_STRBUF_H
#define ONFH_STRBUF_H

#include <stddef.h>

#include "lib/util/err.h"

typedef struct StrBuf {
    char *s; /* NUL-terminated while len > 0 */
    size_t len;
    size_t cap;
    int failed;
} StrBuf;

#define STRBUF_INIT                                                                                \
    {                                                                                              \
        0                                                                                          \
    }

void strbuf_append(StrBuf *b, const char *s, size_t n);
void strbuf_puts(StrBuf *b, const char *s);
void strbuf_putc(StrBuf *b, char ch);
void strbuf_printf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the text (NUL-terminated, "" when empty) to the caller, who frees it with mem_free, and
 * resets b. ERR_NOMEM if any append failed (b is freed). */
int strbuf_finish(StrBuf *b, char **text, size_t *len, Err *e);
void strbuf_free(StrBuf *b);

/* The shortest decimal form of v that reads back (strtod) to exactly v: "0.1", "1e+300", "3".
 * NaN and infinities print as "nan", "inf", "-inf". */
void format_double(double v, char out[32]);

#endif
