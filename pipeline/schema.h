/* schema.h: checking an HDF5 file onfh wrote against the layout its "schema" attribute names
 * (`onfh schema check FILE`; layouts documented in data-schema/). */
#ifndef ONFH_SCHEMA_H
#define ONFH_SCHEMA_H

#include "lib/util/err.h"

/* *report gets one line per problem ("" when none; free with mem_free), *n_problems their
 * count. Returns an error only when the file cannot be opened or memory runs out. */
int schema_check(const char *path, char **report, int *n_problems, Err *e);

#endif
