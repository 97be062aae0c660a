/* stages.h: the one table through which pipeline/ knows the stages (DESIGN.md section 2).
 * `onfh run` runs them in table order; each also gets its own subcommand `onfh NAME CONFIG`. */
#ifndef ONFH_STAGES_H
#define ONFH_STAGES_H

#include "lib/util/err.h"
#include "pipeline/session.h"

typedef struct Stage {
    const char *name;               /* subcommand and config section */
    const char *summary;            /* one line for --help */
    int (*run)(Session *s, Err *e); /* collective; records its manifest entry on success */
    /* An optional command-line flag of `onfh NAME`, a shorthand for a --set: */
    const char *flag;     /* e.g. "--preview" */
    const char *flag_set; /* e.g. "synth.preview=true" */
    const char *flag_doc;
} Stage;

extern const Stage onfh_stages[];
extern const int onfh_n_stages;

#endif
