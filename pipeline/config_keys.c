/* config_keys.c: the schema of onfh's YAML config, declared once.
 *
 * One row per key: path, type, default (as YAML), range or choices, one-line doc. `onfh config
 * doc` prints this table; every load validates against it; unknown keys are errors. A stage that
 * reads a key adds its row here, in its own section (DESIGN.md section 3a). */
#include "pipeline/config_keys.h"

const CfgKey onfh_config_keys[] = {
    {"run.name", CFG_NAME, NULL,
     .doc = "run name; the run directory is <output_root>/<name> (unset: the config file's name)"},
    {"run.seed", CFG_INT, "1", CFG_RANGE(0, 4294967295.0),
     .doc = "seed of every random draw in the run (Philox key), so a run repeats bit for bit"},
    {"run.output_root", CFG_STR, "\"runs\"",
     .doc = "directory that holds run directories (relative to the working directory)"},
    {"run.log_level", CFG_ENUM, "info", .choices = "debug|info|warn|error",
     .doc = "least severe message that is logged"},
    {"run.log_all_ranks", CFG_BOOL, "false",
     .doc = "print every MPI rank's messages on stderr, not only rank 0's (errors always print)"},
    {"run.progress", CFG_ENUM, "auto", .choices = "auto|bar|lines|off",
     .doc = "progress display: a bar on a terminal, periodic log lines otherwise (auto)"},
    {"run.progress_interval_s", CFG_NUM, "10", CFG_ABOVE(0),
     .doc = "seconds between progress log lines when not drawing a bar"},
};

const int onfh_config_n_keys = (int)(sizeof onfh_config_keys / sizeof onfh_config_keys[0]);
