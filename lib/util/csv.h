/* csv.h: reading the CSV files a study provides (labels.csv, clinical.csv): RFC 4180 fields,
 * quoted or not, with CRLF or LF line ends. Rows keep their line number so that every complaint
 * names file:line. */
#ifndef ONFH_CSV_H
#define ONFH_CSV_H

#include <stddef.h>

#include "lib/util/err.h"

typedef struct CsvRow {
    int line;     /* 1-based line where the row starts */
    int n;        /* fields */
    char **field; /* n NUL-terminated fields */
} CsvRow;

typedef struct Csv {
    char *file;
    CsvRow header;
    CsvRow *rows;
    size_t n_rows;
} Csv;

/* Parses text (len bytes) from `file` (named in messages). The first row is the header; every
 * row must have as many fields as the header (else ERR_FORMAT "file:line: 3 fields, expected 2").
 * Empty lines are skipped. */
int csv_parse(Csv *c, const char *file, const char *text, size_t len, Err *e);
int csv_read_file(Csv *c, const char *path, Err *e);
void csv_free(Csv *c);
/* Index of the header column `name`, or ERR_FORMAT naming the file and the missing column. */
int csv_column(const Csv *c, const char *name, int *index, Err *e);

#endif
