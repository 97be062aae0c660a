/* config.c: YAML config loading and validation against a C schema (see config.h).
 *
 * libyaml's document API gives a node tree with marks (0-based line and column) on every node;
 * we walk it once, turning each leaf into a Raw value (scalar text and style, or a list of
 * scalars) and converting it against its CfgKey. libyaml itself accepts duplicate keys, so the
 * walk rejects them. --set values and schema defaults go through the same YAML parser and the
 * same conversion, so "3", "[a, b]" and "true" mean the same everywhere. */
#include "pipeline/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "lib/util/strbuf.h"

/* ---------------------------------------------------------------------------------------------
 * Raw values: what the YAML said, before conversion. */

typedef enum { RAW_NULL, RAW_SCALAR, RAW_LIST, RAW_MAP } RawKind;

typedef struct Raw {
    RawKind kind;
    const char *text;   /* RAW_SCALAR */
    int quoted;         /* RAW_SCALAR written in quotes: a string, never a number or bool */
    const char **items; /* RAW_LIST, pointing into the YAML document */
    int n_items;
} Raw;

static int is_null_scalar(const yaml_node_t *n)
{
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !strcmp(s, "") || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* Fills r from a node. Lists point into doc; r->items is allocated (free with mem_free). */
static int raw_from_node(yaml_document_t *doc, yaml_node_t *n, Raw *r, const char *where,
                         const char *path, Err *e)
{
    *r = (Raw){0};
    if (n->type == YAML_SCALAR_NODE) {
        if (is_null_scalar(n)) {
            r->kind = RAW_NULL;
            return 0;
        }
        r->kind = RAW_SCALAR;
        r->text = (const char *)n->data.scalar.value;
        r->quoted = n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        return 0;
    }
    if (n->type == YAML_MAPPING_NODE) {
        r->kind = RAW_MAP;
        return 0;
    }
    r->kind = RAW_LIST;
    int count = (int)(n->data.sequence.items.top - n->data.sequence.items.start);
    r->items = mem_calloc(count ? (size_t)count : 1, sizeof *r->items);
    if (!r->items)
        return err_set(e, ERR_NOMEM, "%s: %s: out of memory", where, path);
    for (int i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
        if (item->type != YAML_SCALAR_NODE || is_null_scalar(item)) {
            mem_free(r->items);
            r->items = NULL;
            return err_set(e, ERR_CONFIG, "%s:%zu:%zu: %s: list item %d must be a plain value",
                           where, item->start_mark.line + 1, item->start_mark.column + 1, path,
                           i + 1);
        }
        r->items[i] = (const char *)item->data.scalar.value;
    }
    r->n_items = count;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Schema lookups and "did you mean". */

static int key_index(const CfgKey *keys, int n_keys, const char *path)
{
    for (int i = 0; i < n_keys; i++)
        if (!strcmp(keys[i].path, path))
            return i;
    return -1;
}

/* A section is any proper prefix of a key path ending at a dot: "train" for "train.lr". */
static int is_section(const CfgKey *keys, int n_keys, const char *path)
{
    size_t n = strlen(path);
    for (int i = 0; i < n_keys; i++)
        if (!strncmp(keys[i].path, path, n) && keys[i].path[n] == '.')
            return 1;
    return 0;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* What the user probably meant: for a key, the same leaf name in another section
 * ("run.lr" -> "train.lr"), else the closest key path within a couple of edits of the leaf;
 * for a section, the closest section name. NULL when nothing is close. */
static const char *suggest(const CfgKey *keys, int n_keys, const char *path, int want_section,
                           char *buf, size_t cap)
{
    const char *leaf = strrchr(path, '.');
    leaf = leaf ? leaf + 1 : path;
    if (!want_section)
        for (int i = 0; i < n_keys; i++) {
            const char *kl = strrchr(keys[i].path, '.');
            if (kl && !strcmp(kl + 1, leaf)) {
                snprintf(buf, cap, "%s", keys[i].path);
                return buf;
            }
        }
    size_t best = (size_t)-1;
    buf[0] = '\0';
    for (int i = 0; i < n_keys; i++) {
        char cand[256];
        snprintf(cand, sizeof cand, "%s", keys[i].path);
        if (want_section) {
            char *dot = strchr(cand, '.');
            if (dot)
                *dot = '\0';
        }
        size_t d = edit_distance(path, cand);
        if (d < best) {
            best = d;
            snprintf(buf, cap, "%s", cand);
        }
    }
    size_t limit = strlen(leaf) / 3 > 2 ? strlen(leaf) / 3 : 2;
    return best <= limit ? buf : NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Conversion of a Raw value against its key. */

static void describe_bound(char *out, size_t cap, const CfgKey *k, const char *noun)
{
    char lo[32], hi[32];
    format_double(k->min, lo);
    format_double(k->max, hi);
    if (k->max >= 1e308)
        snprintf(out, cap, "%s %s %s", noun, k->min_excl ? ">" : ">=", lo);
    else
        snprintf(out, cap, "%s in %s%s, %s%s", noun, k->min_excl ? "(" : "[", lo, hi,
                 k->max_excl ? ")" : "]");
}

/* "an integer in [0, 10]", "a number > 0", "one of: auto, bar, lines, off" ... */
static void describe_expected(const CfgKey *k, char *out, size_t cap)
{
    switch (k->type) {
    case CFG_BOOL: snprintf(out, cap, "true or false"); break;
    case CFG_INT:
        if (k->ranged)
            describe_bound(out, cap, k, "an integer");
        else
            snprintf(out, cap, "an integer");
        break;
    case CFG_NUM:
        if (k->ranged)
            describe_bound(out, cap, k, "a number");
        else
            snprintf(out, cap, "a number");
        break;
    case CFG_STR: snprintf(out, cap, "a string"); break;
    case CFG_NAME: snprintf(out, cap, "a name of letters, digits, '.', '_' or '-'"); break;
    case CFG_ENUM:
    case CFG_LIST: {
        const char *lead = k->type == CFG_ENUM ? "one of: " : k->choices ? "a list of: " : "";
        size_t o = (size_t)snprintf(out, cap, "%s", k->choices ? lead : "a list of strings");
        for (const char *p = k->choices; p && *p && o + 3 < cap; p++) {
            if (*p == '|') {
                out[o++] = ',';
                out[o++] = ' ';
            } else {
                out[o++] = *p;
            }
        }
        out[o < cap ? o : cap - 1] = '\0';
        break;
    }
    }
}

static int in_choices(const char *choices, const char *s)
{
    size_t n = strlen(s);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, s, n))
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static const char *choice_suggestion(const char *choices, const char *s, char *buf, size_t cap)
{
    size_t best = (size_t)-1;
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        char cand[128];
        snprintf(cand, sizeof cand, "%.*s", (int)len, p);
        size_t d = edit_distance(s, cand);
        if (d < best) {
            best = d;
            snprintf(buf, cap, "%s", cand);
        }
        p = bar ? bar + 1 : NULL;
    }
    return best <= 2 ? buf : NULL;
}

static int in_range(const CfgKey *k, double v)
{
    if (!k->ranged)
        return 1;
    if (k->min_excl ? !(v > k->min) : !(v >= k->min))
        return 0;
    if (k->max_excl ? !(v < k->max) : !(v <= k->max))
        return 0;
    return 1;
}

static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return 0;
    *out = v;
    return 1;
}

static int parse_num(const char *s, double *out)
{
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return 0; /* refuses hex floats, "inf" and "nan", which strtod would take */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return 0;
    *out = v;
    return 1;
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static void value_clear(CfgValue *v)
{
    mem_free(v->text);
    for (int i = 0; i < v->n_items; i++)
        mem_free(v->items[i]);
    mem_free(v->items);
    *v = (CfgValue){0};
}

/* "got "fast"", "got a list", "got null" */
static void describe_got(const Raw *r, char *out, size_t cap)
{
    switch (r->kind) {
    case RAW_NULL: snprintf(out, cap, "got null"); break;
    case RAW_LIST: snprintf(out, cap, "got a list"); break;
    case RAW_MAP: snprintf(out, cap, "got a mapping"); break;
    case RAW_SCALAR:
        snprintf(out, cap, "got \"%.200s\"%s", r->text,
                 r->quoted && (r->text[0] >= '0' && r->text[0] <= '9') ? " (quoted: a string)"
                                                                       : "");
        break;
    }
}

/* Converts r into a fresh value for key k. where: "file:line:col" or "--set ..." */
static int convert(const CfgKey *k, const Raw *r, const char *where, CfgValue *out, Err *e)
{
    char expected[600], got[300];
    CfgValue v = {0};
    snprintf(v.where, sizeof v.where, "%s", where);

    if (r->kind == RAW_NULL && (!k->def || k->nullable)) {
        *out = v; /* optional key explicitly unset */
        return 0;
    }
    int ok = 0;
    switch (k->type) {
    case CFG_BOOL:
        if (r->kind == RAW_SCALAR && !r->quoted) {
            if (!strcmp(r->text, "true") || !strcmp(r->text, "True") || !strcmp(r->text, "TRUE"))
                ok = 1, v.b = 1;
            else if (!strcmp(r->text, "false") || !strcmp(r->text, "False") ||
                     !strcmp(r->text, "FALSE"))
                ok = 1, v.b = 0;
        }
        break;
    case CFG_INT:
        if (r->kind == RAW_SCALAR && !r->quoted && parse_int(r->text, &v.i)) {
            v.d = (double)v.i;
            ok = in_range(k, v.d);
        }
        break;
    case CFG_NUM:
        ok = r->kind == RAW_SCALAR && !r->quoted && parse_num(r->text, &v.d) && in_range(k, v.d);
        break;
    case CFG_STR: ok = r->kind == RAW_SCALAR; break;
    case CFG_NAME: ok = r->kind == RAW_SCALAR && valid_name(r->text); break;
    case CFG_ENUM: ok = r->kind == RAW_SCALAR && in_choices(k->choices, r->text); break;
    case CFG_LIST:
        ok = r->kind == RAW_LIST && (!k->ranged || in_range(k, r->n_items));
        for (int i = 0; ok && i < r->n_items; i++) {
            if (k->choices && !in_choices(k->choices, r->items[i])) {
                char sug[128];
                const char *s = choice_suggestion(k->choices, r->items[i], sug, sizeof sug);
                describe_expected(k, expected, sizeof expected);
                return err_set(e, ERR_CONFIG,
                               "%s: %s: item \"%s\" is not allowed%s%s%s; expected %s", where,
                               k->path, r->items[i], s ? " (did you mean " : "", s ? s : "",
                               s ? "?)" : "", expected);
            }
        }
        break;
    }
    if (!ok) {
        describe_expected(k, expected, sizeof expected);
        describe_got(r, got, sizeof got);
        char sug[128];
        const char *s = k->type == CFG_ENUM && r->kind == RAW_SCALAR
                            ? choice_suggestion(k->choices, r->text, sug, sizeof sug)
                            : NULL;
        if (k->type == CFG_LIST && r->kind == RAW_LIST)
            return err_set(e, ERR_CONFIG, "%s: %s: expected %g to %g items, got %d", where, k->path,
                           k->min, k->max, r->n_items);
        return err_set(e, ERR_CONFIG, "%s: %s: expected %s, %s%s%s%s", where, k->path, expected,
                       got, s ? " (did you mean " : "", s ? s : "", s ? "?)" : "");
    }

    v.set = 1;
    if (r->kind == RAW_SCALAR) {
        v.text = mem_strdup(r->text);
        if (!v.text)
            goto nomem;
    } else {
        v.items = mem_calloc(r->n_items ? (size_t)r->n_items : 1, sizeof *v.items);
        if (!v.items)
            goto nomem;
        for (int i = 0; i < r->n_items; i++) {
            v.items[i] = mem_strdup(r->items[i]);
            if (!v.items[i])
                goto nomem;
            v.n_items = i + 1;
        }
    }
    *out = v;
    return 0;
nomem:
    value_clear(&v);
    return err_set(e, ERR_NOMEM, "%s: %s: out of memory", where, k->path);
}

/* ---------------------------------------------------------------------------------------------
 * YAML documents. */

/* Parses text into doc. On a syntax error, e names what:line:column. */
static int yaml_load_text(const char *what, const char *text, size_t len, yaml_document_t *doc,
                          Err *e)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return err_set(e, ERR_NOMEM, "%s: cannot start the YAML parser", what);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        const yaml_mark_t *m = &parser.problem_mark;
        if (parser.error == YAML_READER_ERROR)
            rc = err_set(e, ERR_FORMAT, "%s: byte %zu: YAML syntax error: %s", what,
                         parser.problem_offset, parser.problem ? parser.problem : "unreadable");
        else
            rc = err_set(e, ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s%s%s", what, m->line + 1,
                         m->column + 1, parser.problem ? parser.problem : "invalid",
                         parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    /* A second document would be silently ignored by the caller: refuse it. */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *root = yaml_document_get_root_node(&extra);
        if (root)
            rc = err_set(e, ERR_FORMAT, "%s:%zu:%zu: expected one YAML document, found another",
                         what, root->start_mark.line + 1, root->start_mark.column + 1);
        yaml_document_delete(&extra);
    } else {
        rc = err_set(e, ERR_FORMAT, "%s:%zu:%zu: YAML syntax error: %s", what,
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "invalid");
    }
    yaml_parser_delete(&parser);
    if (rc)
        yaml_document_delete(doc);
    return rc;
}

typedef struct Loader {
    Config *c;
    const char *file;
    yaml_document_t *doc;
    Err *e;
} Loader;

static int assign(Loader *L, int idx, yaml_node_t *n, const char *where)
{
    Raw r;
    int rc = raw_from_node(L->doc, n, &r, L->file, L->c->keys[idx].path, L->e);
    if (rc)
        return rc;
    CfgValue v;
    rc = convert(&L->c->keys[idx], &r, where, &v, L->e);
    mem_free(r.items);
    if (rc)
        return rc;
    value_clear(&L->c->values[idx]);
    L->c->values[idx] = v;
    return 0;
}

static int walk_mapping(Loader *L, yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top; p++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        size_t kl = kn->start_mark.line + 1, kc = kn->start_mark.column + 1;
        if (kn->type != YAML_SCALAR_NODE)
            return err_set(L->e, ERR_CONFIG, "%s:%zu:%zu: %s%skeys must be plain names", L->file,
                           kl, kc, prefix ? prefix : "", prefix ? ": " : "");
        const char *key = (const char *)kn->data.scalar.value;
        for (yaml_node_pair_t *q = start; q < p; q++) {
            yaml_node_t *prev = yaml_document_get_node(L->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)prev->data.scalar.value, key))
                return err_set(L->e, ERR_CONFIG,
                               "%s:%zu:%zu: %s%s%s: duplicate key (first given at line %zu)",
                               L->file, kl, kc, prefix ? prefix : "", prefix ? "." : "", key,
                               prev->start_mark.line + 1);
        }
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", key);
        int idx = key_index(L->c->keys, L->c->n_keys, path);
        if (idx >= 0) {
            char where[300];
            snprintf(where, sizeof where, "%s:%zu:%zu", L->file, vn->start_mark.line + 1,
                     vn->start_mark.column + 1);
            int rc = assign(L, idx, vn, where);
            if (rc)
                return rc;
            continue;
        }
        if (is_section(L->c->keys, L->c->n_keys, path)) {
            if (vn->type == YAML_MAPPING_NODE) {
                int rc = walk_mapping(L, vn, path);
                if (rc)
                    return rc;
            } else if (!(vn->type == YAML_SCALAR_NODE && is_null_scalar(vn))) {
                return err_set(L->e, ERR_CONFIG,
                               "%s:%zu:%zu: %s: expected a mapping of keys (a config section)",
                               L->file, vn->start_mark.line + 1, vn->start_mark.column + 1, path);
            }
            continue;
        }
        char sug[256];
        const char *s = suggest(L->c->keys, L->c->n_keys, path, !prefix, sug, sizeof sug);
        if (s)
            return err_set(L->e, ERR_CONFIG, "%s:%zu:%zu: %s: unknown %s (did you mean %s?)",
                           L->file, kl, kc, path, prefix ? "key" : "section", s);
        return err_set(L->e, ERR_CONFIG,
                       "%s:%zu:%zu: %s: unknown %s ('onfh config doc' lists every key)", L->file,
                       kl, kc, path, prefix ? "key" : "section");
    }
    return 0;
}

/* Applies one "key=value" override. */
static int apply_set(Config *c, const char *set, Err *e)
{
    const char *eq = strchr(set, '=');
    char where[320];
    snprintf(where, sizeof where, "--set %.300s", set);
    if (!eq || eq == set)
        return err_set(e, ERR_USAGE, "%s: expected KEY=VALUE, e.g. --set train.epochs=3", where);
    char path[256];
    snprintf(path, sizeof path, "%.*s", (int)(eq - set), set);
    int idx = key_index(c->keys, c->n_keys, path);
    if (idx < 0) {
        char sug[256];
        const char *s = suggest(c->keys, c->n_keys, path, 0, sug, sizeof sug);
        if (is_section(c->keys, c->n_keys, path))
            return err_set(e, ERR_CONFIG, "%s: %s is a section; set its keys one by one", where,
                           path);
        return err_set(e, ERR_CONFIG, "%s: %s: unknown key%s%s%s", where, path,
                       s ? " (did you mean " : "", s ? s : "", s ? "?)" : "");
    }
    yaml_document_t doc;
    int rc = yaml_load_text(where, eq + 1, strlen(eq + 1), &doc, e);
    if (rc)
        return rc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    Loader L = {c, where, &doc, e};
    if (root) {
        rc = assign(&L, idx, root, where);
    } else {
        yaml_node_t null_node = {.type = YAML_SCALAR_NODE};
        null_node.data.scalar.value = (yaml_char_t *)"";
        null_node.data.scalar.style = YAML_PLAIN_SCALAR_STYLE;
        rc = assign(&L, idx, &null_node, where);
    }
    yaml_document_delete(&doc);
    return rc;
}

/* Defaults are YAML text in the schema, converted like user input; a bad one is a bug. */
static int apply_default(Config *c, int idx, Err *e)
{
    const CfgKey *k = &c->keys[idx];
    yaml_document_t doc;
    char what[300];
    snprintf(what, sizeof what, "schema default of %s", k->path);
    int rc = yaml_load_text(what, k->def, strlen(k->def), &doc, e);
    if (rc)
        return err_set(e, ERR_INTERNAL, "%s", e->msg);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    Loader L = {c, what, &doc, e};
    if (!root)
        rc = err_set(e, ERR_INTERNAL, "%s: empty", what);
    else
        rc = assign(&L, idx, root, "default");
    yaml_document_delete(&doc);
    if (rc && rc != ERR_NOMEM)
        return err_set(e, ERR_INTERNAL, "bug in the config schema: %s", e->msg);
    return rc;
}

int config_load(Config *c, const CfgKey *keys, int n_keys, const char *file, const char *text,
                size_t len, char *const *sets, int n_sets, Err *e)
{
    *c = (Config){.keys = keys, .n_keys = n_keys};
    c->values = mem_calloc((size_t)n_keys, sizeof *c->values);
    c->file = mem_strdup(file);
    if (!c->values || !c->file) {
        config_free(c);
        return err_set(e, ERR_NOMEM, "%s: out of memory", file);
    }
    yaml_document_t doc;
    int rc = yaml_load_text(file, text, len, &doc, e);
    if (rc) {
        config_free(c);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        Loader L = {c, file, &doc, e};
        rc = walk_mapping(&L, root, NULL);
    } else if (root && !(root->type == YAML_SCALAR_NODE && is_null_scalar(root))) {
        rc = err_set(e, ERR_CONFIG, "%s:%zu:%zu: expected a mapping of sections (run:, ...)", file,
                     root->start_mark.line + 1, root->start_mark.column + 1);
    }
    yaml_document_delete(&doc);
    for (int i = 0; !rc && i < n_sets; i++)
        rc = apply_set(c, sets[i], e);
    for (int i = 0; !rc && i < n_keys; i++)
        if (!c->values[i].set && !c->values[i].where[0] && keys[i].def)
            rc = apply_default(c, i, e);
    for (int i = 0; !rc && i < n_keys; i++)
        if (!c->values[i].where[0])
            snprintf(c->values[i].where, sizeof c->values[i].where, "default");
    if (rc)
        config_free(c);
    return rc;
}

int config_load_file(Config *c, const CfgKey *keys, int n_keys, const char *file, char *const *sets,
                     int n_sets, Err *e)
{
    char *text;
    size_t len;
    int rc = file_read_all(file, &text, &len, e);
    if (rc)
        return rc;
    rc = config_load(c, keys, n_keys, file, text, len, sets, n_sets, e);
    mem_free(text);
    return rc;
}

void config_free(Config *c)
{
    if (c->values)
        for (int i = 0; i < c->n_keys; i++)
            value_clear(&c->values[i]);
    mem_free(c->values);
    mem_free(c->file);
    *c = (Config){0};
}

/* ---------------------------------------------------------------------------------------------
 * Getters. */

/* The value of path, which must be in the schema with one of the types in mask (bits of
 * CfgType); anything else is a bug in onfh, not a user error. */
static const CfgValue *lookup(const Config *c, const char *path, unsigned mask)
{
    int idx = key_index(c->keys, c->n_keys, path);
    if (idx < 0 || !(mask & (1u << c->keys[idx].type))) {
        fprintf(stderr, "onfh: bug: config key %s %s\n", path,
                idx < 0 ? "is not in the schema" : "read with the wrong type");
        abort();
    }
    return &c->values[idx];
}

#define BIT(t) (1u << (t))

int64_t config_int(const Config *c, const char *path)
{
    return lookup(c, path, BIT(CFG_INT))->i;
}

double config_num(const Config *c, const char *path)
{
    return lookup(c, path, BIT(CFG_NUM) | BIT(CFG_INT))->d;
}

int config_bool(const Config *c, const char *path)
{
    return lookup(c, path, BIT(CFG_BOOL))->b;
}

const char *config_str(const Config *c, const char *path)
{
    const CfgValue *v = lookup(c, path, BIT(CFG_STR) | BIT(CFG_NAME) | BIT(CFG_ENUM));
    return v->set ? v->text : NULL;
}

int config_list(const Config *c, const char *path, char *const **items)
{
    const CfgValue *v = lookup(c, path, BIT(CFG_LIST));
    *items = v->items;
    return v->n_items;
}

int config_is_set(const Config *c, const char *path)
{
    int idx = key_index(c->keys, c->n_keys, path);
    return idx >= 0 && c->values[idx].set;
}

const char *config_where(const Config *c, const char *path)
{
    int idx = key_index(c->keys, c->n_keys, path);
    return idx >= 0 ? c->values[idx].where : "";
}

int config_set_string(Config *c, const char *path, const char *value, const char *where, Err *e)
{
    int idx = key_index(c->keys, c->n_keys, path);
    if (idx < 0 || (c->keys[idx].type != CFG_STR && c->keys[idx].type != CFG_NAME &&
                    c->keys[idx].type != CFG_ENUM))
        return err_set(e, ERR_INTERNAL, "bug: %s is not a string key", path);
    Raw r = {.kind = RAW_SCALAR, .text = value, .quoted = 1};
    CfgValue v;
    int rc = convert(&c->keys[idx], &r, where, &v, e);
    if (rc)
        return rc;
    value_clear(&c->values[idx]);
    c->values[idx] = v;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Canonical YAML, hashes and docs. */

static void put_quoted(StrBuf *b, const char *s)
{
    strbuf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            strbuf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            strbuf_puts(b, "\\n");
        else if (*p == '\t')
            strbuf_puts(b, "\\t");
        else if (*p < 0x20 || *p == 0x7f)
            strbuf_printf(b, "\\x%02x", *p);
        else
            strbuf_putc(b, (char)*p);
    }
    strbuf_putc(b, '"');
}

static void put_value(StrBuf *b, const CfgKey *k, const CfgValue *v)
{
    char num[32];
    if (!v->set) {
        strbuf_puts(b, "null");
        return;
    }
    switch (k->type) {
    case CFG_BOOL: strbuf_puts(b, v->b ? "true" : "false"); break;
    case CFG_INT: strbuf_printf(b, "%lld", (long long)v->i); break;
    case CFG_NUM:
        format_double(v->d, num);
        strbuf_puts(b, num);
        break;
    case CFG_ENUM: strbuf_puts(b, v->text); break;
    case CFG_STR:
    case CFG_NAME: put_quoted(b, v->text); break;
    case CFG_LIST:
        strbuf_putc(b, '[');
        for (int i = 0; i < v->n_items; i++) {
            if (i)
                strbuf_puts(b, ", ");
            if (valid_name(v->items[i]))
                strbuf_puts(b, v->items[i]);
            else
                put_quoted(b, v->items[i]);
        }
        strbuf_putc(b, ']');
        break;
    }
}

int config_to_yaml(const Config *c, const char *section, char **text, Err *e)
{
    StrBuf b = STRBUF_INIT;
    char current[128] = "";
    for (int i = 0; i < c->n_keys; i++) {
        const char *path = c->keys[i].path;
        const char *dot = strchr(path, '.');
        size_t slen = (size_t)(dot - path);
        if (section && (strlen(section) != slen || strncmp(section, path, slen)))
            continue;
        if (strlen(current) != slen || strncmp(current, path, slen)) {
            snprintf(current, sizeof current, "%.*s", (int)slen, path);
            strbuf_printf(&b, "%s:\n", current);
        }
        strbuf_printf(&b, "  %s: ", dot + 1);
        put_value(&b, &c->keys[i], &c->values[i]);
        strbuf_putc(&b, '\n');
    }
    return strbuf_finish(&b, text, NULL, e);
}

int config_hash(const Config *c, const char *section, char hex[65], Err *e)
{
    char *text;
    size_t len;
    int rc = config_to_yaml(c, section, &text, e);
    if (rc)
        return rc;
    len = strlen(text);
    sha256_hex(text, len, hex);
    mem_free(text);
    return 0;
}

int config_doc(const CfgKey *keys, int n_keys, char **text, Err *e)
{
    StrBuf b = STRBUF_INIT;
    for (int i = 0; i < n_keys; i++) {
        char expected[600];
        describe_expected(&keys[i], expected, sizeof expected);
        strbuf_printf(&b, "%s: %s; default %s\n    %s\n", keys[i].path, expected,
                      keys[i].def ? keys[i].def : "unset", keys[i].doc);
    }
    return strbuf_finish(&b, text, NULL, e);
}
