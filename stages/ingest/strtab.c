/* strtab.c: the string table of the ingest records (see series.h).
 *
 * Why a table: ingest keeps one record per slice on every rank (series are assembled from all of
 * them), so a record's size is what memory grows by with the number of files. Records hold
 * 32-bit offsets; the folders, UIDs and descriptions that a whole series shares are interned, so
 * they cost their bytes once per rank that scanned them rather than once per file. */
#include <string.h>

#include "lib/util/mem.h"
#include "stages/ingest/series.h"

#define MAX_TABLE ((size_t)UINT32_MAX)

int strtab_init(StrTab *t, Err *e)
{
    memset(t, 0, sizeof *t);
    t->cap = 4096;
    t->n_slots = 1024;
    t->s = mem_alloc(t->cap);
    t->slots = mem_calloc(t->n_slots, sizeof *t->slots);
    if (!t->s || !t->slots) {
        strtab_free(t);
        return err_set(e, ERR_NOMEM, "out of memory for a string table");
    }
    t->s[0] = '\0';
    t->len = 1;
    return 0;
}

void strtab_adopt(StrTab *t, char *bytes, size_t len)
{
    memset(t, 0, sizeof *t);
    t->s = bytes;
    t->len = t->cap = len;
}

void strtab_free(StrTab *t)
{
    mem_free(t->s);
    mem_free(t->slots);
    memset(t, 0, sizeof *t);
}

/* FNV-1a: short strings, no adversary (a slow lookup is all a crafted tree could cause). */
static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int grow_slots(StrTab *t, Err *e)
{
    size_t n = t->n_slots * 2;
    uint32_t *slots = mem_calloc(n, sizeof *slots);
    if (!slots)
        return err_set(e, ERR_NOMEM, "out of memory for a string table");
    for (size_t i = 0; i < t->n_slots; i++) {
        if (!t->slots[i])
            continue;
        const char *str = t->s + t->slots[i] - 1;
        size_t k = hash(str, strlen(str)) & (n - 1);
        while (slots[k])
            k = (k + 1) & (n - 1);
        slots[k] = t->slots[i];
    }
    mem_free(t->slots);
    t->slots = slots;
    t->n_slots = n;
    return 0;
}

static int append(StrTab *t, const char *s, size_t n, StrRef *ref, Err *e)
{
    if (t->len + n + 1 > MAX_TABLE)
        return err_set(e, ERR_NOMEM, "string table past 4 GiB");
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = mem_realloc(t->s, cap);
        if (!grown)
            return err_set(e, ERR_NOMEM, "out of memory for a string table");
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->s[t->len + n] = '\0';
    *ref = (StrRef)t->len;
    t->len += n + 1;
    return 0;
}

int strtab_add(StrTab *t, const char *s, size_t n, StrRef *ref, Err *e)
{
    *ref = 0;
    if (n == 0)
        return 0;
    if (!t->slots)
        return append(t, s, n, ref, e);
    if (2 * (t->n_used + 1) > t->n_slots && grow_slots(t, e))
        return e ? e->code : ERR_NOMEM;
    size_t k = hash(s, n) & (t->n_slots - 1);
    for (; t->slots[k]; k = (k + 1) & (t->n_slots - 1)) {
        const char *have = t->s + t->slots[k] - 1;
        if (!strncmp(have, s, n) && have[n] == '\0') {
            *ref = t->slots[k] - 1;
            return 0;
        }
    }
    int rc = append(t, s, n, ref, e);
    if (rc)
        return rc;
    t->slots[k] = *ref + 1;
    t->n_used++;
    return 0;
}

int strtab_addz(StrTab *t, const char *s, StrRef *ref, Err *e)
{
    return strtab_add(t, s, strlen(s), ref, e);
}
