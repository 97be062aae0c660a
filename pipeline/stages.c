/* stages.c: the stage table. A stage is added here when it really works (no placeholders):
 * its entry function lives in stages/<name>/, and its keys in pipeline/config_keys.c. */
#include "pipeline/stages.h"

const Stage onfh_stages[] = {
    {.name = NULL}, /* sentinel: C has no empty arrays */
};

const int onfh_n_stages = (int)(sizeof onfh_stages / sizeof onfh_stages[0]) - 1;
