/* splits.c: splits.json writing, reading and verification (see splits.h). */
#include "lib/cohort/splits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "lib/util/strbuf.h"

#define SCHEMA "onfh-splits-1"

static const char *const part_key[3] = {"train", "val", "test"};

/* The canonical text hashed: parameters, then per fold one line per partition, rows ascending:
 *   onfh-splits-1 level=patient folds=5 val_fraction=0.15 seed=1 cohort=<sha>\n
 *   fold 0 train 3 4 9 ...\n  fold 0 val ...\n  fold 0 test ...\n  ... */
void splits_hash(Splits *s)
{
    Sha256 h;
    sha256_init(&h);
    char buf[256];
    char vf[32];
    format_double(s->val_fraction, vf);
    int len =
        snprintf(buf, sizeof buf, "%s level=%s folds=%d val_fraction=%s seed=%llu cohort=%s\n",
                 SCHEMA, s->slice_level ? "slice" : "patient", s->folds, vf,
                 (unsigned long long)s->seed, s->cohort_sha256);
    sha256_update(&h, buf, (size_t)len);
    for (int f = 0; f < s->folds; f++)
        for (int p = 0; p < 3; p++) {
            len = snprintf(buf, sizeof buf, "fold %d %s", f, part_key[p]);
            sha256_update(&h, buf, (size_t)len);
            for (int i = 0; i < s->n; i++)
                if (s->part[(size_t)f * s->n + i] == p) {
                    len = snprintf(buf, sizeof buf, " %d", s->rows[i]);
                    sha256_update(&h, buf, (size_t)len);
                }
            sha256_update(&h, "\n", 1);
        }
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_to_hex(d, s->sha256);
}

int splits_write(const char *path, const Splits *s, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "schema"), json_string(&w, SCHEMA);
    json_key(&w, "level"), json_string(&w, s->slice_level ? "slice" : "patient");
    json_key(&w, "folds"), json_int(&w, s->folds);
    json_key(&w, "val_fraction"), json_number(&w, s->val_fraction);
    json_key(&w, "seed"), json_int(&w, (int64_t)s->seed);
    json_key(&w, "cohort_sha256"), json_string(&w, s->cohort_sha256);
    json_key(&w, "assignment_sha256"), json_string(&w, s->sha256);
    json_key(&w, "n_slices"), json_int(&w, s->n);
    json_key(&w, "fold");
    json_array_begin(&w);
    for (int f = 0; f < s->folds; f++) {
        json_object_begin(&w);
        for (int p = 0; p < 3; p++) {
            json_key(&w, part_key[p]);
            json_array_begin(&w);
            for (int i = 0; i < s->n; i++)
                if (s->part[(size_t)f * s->n + i] == p)
                    json_int(&w, s->rows[i]);
            json_array_end(&w);
        }
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    char *text;
    size_t len;
    if (json_writer_finish(&w, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

void splits_free(Splits *s)
{
    mem_free(s->rows);
    mem_free(s->part);
    memset(s, 0, sizeof *s);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int splits_read(const char *path, Splits *s, Err *e)
{
    memset(s, 0, sizeof *s);
    JsonValue *root = NULL;
    int rc = json_parse_file(path, &root, e);
    if (rc)
        return -1;
    const char *schema = json_get_string(root, "schema");
    const char *level = json_get_string(root, "level");
    const char *cohort = json_get_string(root, "cohort_sha256");
    const char *sha = json_get_string(root, "assignment_sha256");
    const JsonValue *fold = json_get(root, "fold");
    s->folds = (int)json_get_number(root, "folds", 0);
    s->val_fraction = json_get_number(root, "val_fraction", -1);
    s->seed = (uint64_t)json_get_number(root, "seed", 0);
    s->n = (int)json_get_number(root, "n_slices", -1);
    if (!schema || strcmp(schema, SCHEMA)) {
        rc = err_set(e, ERR_FORMAT, "%s: schema '%s', expected '%s'", path,
                     schema ? schema : "(none)", SCHEMA);
        goto out;
    }
    if (!level || (strcmp(level, "patient") && strcmp(level, "slice")) || !cohort || !sha ||
        !fold || fold->type != JSON_ARRAY || (int)fold->n != s->folds || s->folds < 2 || s->n < 0 ||
        strlen(cohort) != 64 || strlen(sha) != 64) {
        rc = err_set(e, ERR_FORMAT,
                     "%s: missing or malformed level, folds, n_slices, "
                     "cohort_sha256, assignment_sha256 or fold list (data-schema/splits.md)",
                     path);
        goto out;
    }
    s->slice_level = !strcmp(level, "slice");
    snprintf(s->cohort_sha256, sizeof s->cohort_sha256, "%s", cohort);
    /* rows: the union of fold 0's partitions */
    s->rows = mem_alloc((size_t)(s->n ? s->n : 1) * sizeof *s->rows);
    s->part = mem_alloc((size_t)s->folds * (size_t)(s->n ? s->n : 1));
    if (!s->rows || !s->part) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    memset(s->part, -1, (size_t)s->folds * (size_t)s->n);
    int m = 0;
    for (int p = 0; p < 3; p++) {
        const JsonValue *a = json_get(&fold->items[0], part_key[p]);
        for (size_t k = 0; a && a->type == JSON_ARRAY && k < a->n && m < s->n; k++)
            s->rows[m++] = (int32_t)a->items[k].number;
    }
    if (m != s->n) {
        rc = err_set(e, ERR_FORMAT, "%s: fold 0 lists %d slices, n_slices says %d", path, m, s->n);
        goto out;
    }
    qsort(s->rows, (size_t)s->n, sizeof *s->rows, cmp_i32);
    for (int f = 0; f < s->folds && rc == 0; f++) {
        for (int p = 0; p < 3 && rc == 0; p++) {
            const JsonValue *a = json_get(&fold->items[f], part_key[p]);
            if (!a || a->type != JSON_ARRAY) {
                rc = err_set(e, ERR_FORMAT, "%s: fold %d has no %s list", path, f, part_key[p]);
                break;
            }
            for (size_t k = 0; k < a->n; k++) {
                int32_t r = (int32_t)a->items[k].number;
                const int32_t *hit = bsearch(&r, s->rows, (size_t)s->n, sizeof r, cmp_i32);
                if (!hit || s->part[(size_t)f * s->n + (hit - s->rows)] != (int8_t)-1) {
                    rc = err_set(e, ERR_FORMAT, "%s: fold %d: slice %d listed twice or unknown",
                                 path, f, r);
                    break;
                }
                s->part[(size_t)f * s->n + (hit - s->rows)] = (int8_t)p;
            }
        }
        for (int i = 0; i < s->n && rc == 0; i++)
            if (s->part[(size_t)f * s->n + i] < 0)
                rc = err_set(e, ERR_FORMAT, "%s: fold %d does not place slice %d", path, f,
                             s->rows[i]);
    }
    if (rc == 0) {
        splits_hash(s);
        if (strcmp(s->sha256, sha))
            rc = err_set(e, ERR_FORMAT,
                         "%s: assignment_sha256 is %s but the lists hash to %s: the file was "
                         "edited (run `onfh split --force` to make a new one)",
                         path, sha, s->sha256);
    }
out:
    json_value_free(root);
    if (rc)
        splits_free(s);
    return rc ? -1 : 0;
}

int splits_rows(const Splits *s, int f, int part, int32_t **rows, int *n, Err *e)
{
    *n = 0;
    *rows = mem_alloc((size_t)(s->n ? s->n : 1) * sizeof **rows);
    if (!*rows)
        return err_set(e, ERR_NOMEM, "splits: out of memory");
    for (int i = 0; i < s->n; i++)
        if (s->part[(size_t)f * s->n + i] == part)
            (*rows)[(*n)++] = s->rows[i];
    return 0;
}
