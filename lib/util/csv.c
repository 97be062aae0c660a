/* csv.c: RFC 4180 CSV reading (see csv.h). One pass over the text: a field ends at a comma or a
 * line end outside quotes; "" inside quotes is one quote. */
#include "lib/util/csv.h"

#include <stdio.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/strbuf.h"

static void row_free(CsvRow *r)
{
    for (int i = 0; i < r->n; i++)
        mem_free(r->field[i]);
    mem_free(r->field);
    memset(r, 0, sizeof *r);
}

void csv_free(Csv *c)
{
    row_free(&c->header);
    for (size_t i = 0; i < c->n_rows; i++)
        row_free(&c->rows[i]);
    mem_free(c->rows);
    mem_free(c->file);
    memset(c, 0, sizeof *c);
}

static int push_field(CsvRow *r, StrBuf *f, Err *e)
{
    char **grown = mem_realloc(r->field, ((size_t)r->n + 1) * sizeof *grown);
    if (!grown)
        return err_set(e, ERR_NOMEM, "out of memory reading CSV");
    r->field = grown;
    char *text;
    if (strbuf_finish(f, &text, NULL, e))
        return ERR_NOMEM;
    r->field[r->n++] = text;
    return 0;
}

int csv_parse(Csv *c, const char *file, const char *text, size_t len, Err *e)
{
    memset(c, 0, sizeof *c);
    if (!(c->file = mem_strdup(file)))
        return err_set(e, ERR_NOMEM, "%s: out of memory", file);
    size_t cap = 0;
    int line = 1, rc = 0;
    size_t i = 0;
    while (i < len && !rc) {
        CsvRow r = {.line = line};
        StrBuf f = STRBUF_INIT;
        int quoted = 0, at_start = 1, blank = 1;
        for (;; i++) {
            char ch = i < len ? text[i] : '\n';
            if (quoted) {
                if (i >= len) {
                    rc =
                        err_set(e, ERR_FORMAT, "%s:%d: a quoted field is not closed", file, r.line);
                    break;
                }
                if (ch == '"' && i + 1 < len && text[i + 1] == '"') {
                    strbuf_putc(&f, '"');
                    i++;
                } else if (ch == '"') {
                    quoted = 0;
                } else {
                    if (ch == '\n')
                        line++;
                    strbuf_putc(&f, ch);
                }
                continue;
            }
            if (ch == '"' && at_start) {
                quoted = 1;
                at_start = 0;
                blank = 0;
            } else if (ch == ',') {
                blank = 0;
                if ((rc = push_field(&r, &f, e)))
                    break;
                at_start = 1;
            } else if (ch == '\n' || ch == '\r') {
                if (ch == '\r' && i + 1 < len && text[i + 1] == '\n')
                    i++;
                i++;
                line++;
                if (!blank && (rc = push_field(&r, &f, e)))
                    break;
                break;
            } else {
                strbuf_putc(&f, ch);
                at_start = 0;
                blank = 0;
            }
        }
        strbuf_free(&f);
        if (rc) {
            row_free(&r);
            break;
        }
        if (r.n == 0) /* an empty line */
            continue;
        if (!c->header.n) {
            c->header = r;
            continue;
        }
        if (r.n != c->header.n) {
            rc = err_set(e, ERR_FORMAT, "%s:%d: %d field%s, expected %d as in the header", file,
                         r.line, r.n, r.n == 1 ? "" : "s", c->header.n);
            row_free(&r);
            break;
        }
        if (c->n_rows == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            CsvRow *grown = mem_realloc(c->rows, ncap * sizeof *grown);
            if (!grown) {
                row_free(&r);
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", file);
                break;
            }
            c->rows = grown;
            cap = ncap;
        }
        c->rows[c->n_rows++] = r;
    }
    if (!rc && !c->header.n)
        rc = err_set(e, ERR_FORMAT, "%s: empty, expected a header row", file);
    if (rc)
        csv_free(c);
    return rc;
}

int csv_read_file(Csv *c, const char *path, Err *e)
{
    char *text;
    size_t len;
    int rc = file_read_all(path, &text, &len, e);
    if (rc)
        return rc;
    rc = csv_parse(c, path, text, len, e);
    mem_free(text);
    return rc;
}

int csv_column(const Csv *c, const char *name, int *index, Err *e)
{
    for (int i = 0; i < c->header.n; i++)
        if (!strcmp(c->header.field[i], name)) {
            *index = i;
            return 0;
        }
    return err_set(e, ERR_FORMAT, "%s:%d: no column \"%s\" in the header", c->file, c->header.line,
                   name);
}
