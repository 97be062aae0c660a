/* config.h: YAML configs read with libyaml and validated against a schema declared once in C.
 *
 * A schema is an array of CfgKey, one per leaf key ("train.lr"): type, range or choices,
 * default and a one-line doc (pipeline/config_keys.c holds onfh's). Loading a config
 *   1. parses the YAML text (syntax errors name file:line:column),
 *   2. walks its mappings: unknown keys are errors (with a "did you mean"), duplicate keys too,
 *   3. applies --set KEY=VALUE overrides (VALUE is read as YAML, so lists work: [a, b]),
 *   4. fills defaults, and checks every value against its key's type and range.
 * Every value remembers where it came from (file:line:column, --set, or default), so errors read
 *   configs/x.yaml:12:7: train.lr: expected a number > 0, got "fast"
 * The resolved config prints as canonical YAML (schema order, every key); its SHA-256 is the
 * config hash recorded in the run directory and in every output. */
#ifndef ONFH_CONFIG_H
#define ONFH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

typedef enum CfgType {
    CFG_BOOL,
    CFG_INT,
    CFG_NUM,
    CFG_STR,
    CFG_NAME, /* a string of letters, digits, '.', '_', '-' (used in paths) */
    CFG_ENUM, /* one of choices */
    CFG_LIST, /* a sequence of strings, each one of choices when choices is set */
} CfgType;

typedef struct CfgKey {
    const char *path; /* "section.key" */
    CfgType type;
    const char *def; /* default, as YAML ("0.001", "[a, b]", "true"); NULL: optional, unset */
    int ranged;      /* INT, NUM: min/max apply; LIST: they bound the item count */
    double min;      /* inclusive unless min_excl */
    double max;      /* inclusive unless max_excl */
    int min_excl;
    int max_excl;
    const char *choices; /* ENUM, LIST: "a|b|c" */
    const char *doc;     /* one line */
    int nullable;        /* with a default: null is still accepted and means "none" */
} CfgKey;

/* Designated-initializer helpers for schema tables. */
#define CFG_RANGE(lo, hi) .ranged = 1, .min = (lo), .max = (hi)
#define CFG_ABOVE(lo)     .ranged = 1, .min = (lo), .max = 1e308, .min_excl = 1
#define CFG_AT_LEAST(lo)  .ranged = 1, .min = (lo), .max = 1e308

typedef struct CfgValue {
    int set;      /* 0: an optional key left unset (null) */
    char *text;   /* the scalar as written (CFG_LIST: NULL) */
    char **items; /* CFG_LIST */
    int n_items;
    int64_t i;       /* CFG_INT */
    double d;        /* CFG_INT, CFG_NUM */
    int b;           /* CFG_BOOL */
    char where[320]; /* "configs/x.yaml:12:7", "--set run.seed=3", "default" */
} CfgValue;

typedef struct Config {
    const CfgKey *keys;
    int n_keys;
    CfgValue *values; /* n_keys, in schema order */
    char *file;       /* the YAML file's name as given */
} Config;

/* Loads `text` (len bytes of YAML, read from `file`, which only names it in messages), applies
 * `sets` ("key=value" strings), fills defaults and validates. On error c is left empty (nothing
 * to free) and e says file:line:column: key: what was expected, got what. */
int config_load(Config *c, const CfgKey *keys, int n_keys, const char *file, const char *text,
                size_t len, char *const *sets, int n_sets, Err *e);
/* Same, reading the file itself (missing file: ERR_IO naming it). */
int config_load_file(Config *c, const CfgKey *keys, int n_keys, const char *file, char *const *sets,
                     int n_sets, Err *e);
void config_free(Config *c);

/* Typed getters. The path must be in the schema with that type: anything else is a bug in onfh
 * and aborts with a message. config_str returns NULL for an unset optional key. */
int64_t config_int(const Config *c, const char *path);
double config_num(const Config *c, const char *path);
int config_bool(const Config *c, const char *path);
const char *config_str(const Config *c, const char *path);
int config_list(const Config *c, const char *path, char *const **items);
int config_is_set(const Config *c, const char *path);
const char *config_where(const Config *c, const char *path);

/* Replaces a string-typed value after loading (derived values such as run.name from the file
 * name); validated like any other value. */
int config_set_string(Config *c, const char *path, const char *value, const char *where, Err *e);

/* Canonical YAML of the whole config (section NULL) or of one section ("train"): schema order,
 * every key, strings double-quoted, numbers in shortest round-trip form. Free with mem_free. */
int config_to_yaml(const Config *c, const char *section, char **text, Err *e);
/* SHA-256 (hex) of config_to_yaml(c, section). */
int config_hash(const Config *c, const char *section, char hex[65], Err *e);
/* Every key with its type, default and doc, as `onfh config doc` prints it. */
int config_doc(const CfgKey *keys, int n_keys, char **text, Err *e);

#endif
