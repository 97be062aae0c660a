/* splits.h: splits.json (data-schema/splits.md), the one fold assignment every training and
 * evaluation of a run shares.
 *
 * The file lists, for each fold, the cohort.h5 /slices rows of its train, validation and test
 * partitions, and carries assignment_sha256: the SHA-256 of a canonical text of those lists
 * and the split's parameters. splits_read recomputes it and refuses a file whose lists were
 * edited, so a model trained on one split can never be evaluated against another unnoticed;
 * consumers also record the hash next to their outputs. */
#ifndef ONFH_COHORT_SPLITS_H
#define ONFH_COHORT_SPLITS_H

#include <stdint.h>

#include "lib/util/err.h"

enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2 };

typedef struct Splits {
    int folds;
    int slice_level; /* 1: paper-faithful slice-level split (patients leak across partitions) */
    double val_fraction;
    uint64_t seed;
    char cohort_sha256[65];
    char sha256[65]; /* assignment_sha256 */
    int n;           /* labelled, decodable slices in the split */
    int32_t *rows;   /* (n) their /slices rows, ascending */
    int8_t *part;    /* (folds, n): SPLIT_* of item i in fold f at part[f * n + i] */
} Splits;

/* Fills s->sha256 from the other fields. */
void splits_hash(Splits *s);
/* Writes path atomically (after splits_hash). */
int splits_write(const char *path, const Splits *s, Err *e);
/* Reads and verifies path (errors name the file and what is wrong). */
int splits_read(const char *path, Splits *s, Err *e);
void splits_free(Splits *s);

/* Rows of partition `part` of fold f, ascending; *rows is mem_alloc'ed (free with mem_free). */
int splits_rows(const Splits *s, int f, int part, int32_t **rows, int *n, Err *e);

#endif
