/* manifest.c: reading, updating and atomically rewriting <run>/manifest.json (see manifest.h). */
#include "pipeline/manifest.h"

#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "lib/util/strbuf.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"

#define MANIFEST_FORMAT "onfh-manifest-1"

/* ---------------------------------------------------------------------------------------------
 * Hashing files and trees. */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every regular file under dir (relative to root) to *list. */
static int list_files(const char *root, const char *rel, char ***list, size_t *n, size_t *cap,
                      Err *e)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return err_set(e, ERR_IO, "%s: cannot list directory", dir);
    int rc = 0;
    struct dirent *ent;
    while (!rc && (ent = readdir(d))) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        char sub[4096], full[8192];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", ent->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        /* The entry's type from the directory itself where the file system gives it (no
         * stat per file: tree_signature stats each file once anyway); links and unknown
         * types are stat-ed, so a link is followed as before. */
        mode_t mode = ent->d_type == DT_DIR ? S_IFDIR : ent->d_type == DT_REG ? S_IFREG : 0;
        struct stat st;
        if (!mode && stat(full, &st) == 0)
            mode = st.st_mode;
        if (!mode) {
            rc = err_set(e, ERR_IO, "%s: cannot stat", full);
        } else if (S_ISDIR(mode)) {
            rc = list_files(root, sub, list, n, cap, e);
        } else if (S_ISREG(mode)) {
            if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                char **grown = mem_realloc(*list, ncap * sizeof *grown);
                if (!grown) {
                    rc = err_set(e, ERR_NOMEM, "%s: out of memory listing files", root);
                    break;
                }
                *list = grown;
                *cap = ncap;
            }
            if (!((*list)[*n] = mem_strdup(sub)))
                rc = err_set(e, ERR_NOMEM, "%s: out of memory listing files", root);
            else
                (*n)++;
        }
    }
    closedir(d);
    return rc;
}

/* Hashes computed by this process, so a tree that one command hashes twice (ingest's
 * inputs_sha256 and its manifest entry, a skip check and the next stage's inputs) is read
 * once. An entry holds a signature of what stat says about every file (relative path, device,
 * inode, size, modification time to the nanosecond): a changed, added, removed or replaced
 * file changes it, and the tree is read again. Stat-ing a tree costs milliseconds where reading
 * it costs seconds. */
typedef struct HashMemo {
    char path[4096];
    char signature[65];
    char hex[65];
    uint64_t bytes;
    uint64_t files;
} HashMemo;

static HashMemo memo[8];
static int memo_next;

/* One file of a tree signature: its path and what stat says of it (ManifestFileSeen's fields,
 * so a stage's own stats give the same bytes). */
static void feed_seen(Sha256 *s, const char *rel, const ManifestFileSeen *f)
{
    int64_t v[5] = {f->dev, f->ino, f->size, f->mtime_sec, f->mtime_nsec};
    sha256_update(s, rel, strlen(rel) + 1);
    sha256_update(s, v, sizeof v);
}

static void feed_stat(Sha256 *s, const char *rel, const struct stat *st)
{
    ManifestFileSeen f = {.dev = (int64_t)st->st_dev,
                          .ino = (int64_t)st->st_ino,
                          .size = (int64_t)st->st_size,
                          .mtime_sec = (int64_t)st->st_mtim.tv_sec,
                          .mtime_nsec = (int64_t)st->st_mtim.tv_nsec};
    feed_seen(s, rel, &f);
}

/* One file of a tree hash: "rel\0" then its SHA-256 in hex and a newline. */
static void feed_tree_line(Sha256 *tree, const char *rel, const char file_hex[65])
{
    sha256_update(tree, rel, strlen(rel) + 1);
    sha256_update(tree, file_hex, 64);
    sha256_update(tree, "\n", 1);
}

static int tree_signature(const char *path, const struct stat *st, char sig[65], Err *e)
{
    Sha256 s;
    sha256_init(&s);
    int rc = 0;
    if (!S_ISDIR(st->st_mode)) {
        feed_stat(&s, "", st);
    } else {
        char **list = NULL;
        size_t n = 0, cap = 0;
        rc = list_files(path, "", &list, &n, &cap, e);
        if (!rc && n > 1) /* an empty directory has no list at all: qsort(NULL) is undefined */
            qsort(list, n, sizeof *list, cmp_str);
        for (size_t i = 0; !rc && i < n; i++) {
            char full[8192];
            struct stat fs;
            snprintf(full, sizeof full, "%s/%s", path, list[i]);
            if (stat(full, &fs) != 0)
                rc = err_set(e, ERR_IO, "%s: cannot stat", full);
            else
                feed_stat(&s, list[i], &fs);
        }
        for (size_t i = 0; i < n; i++)
            mem_free(list[i]);
        mem_free(list);
    }
    uint8_t d[32];
    sha256_final(&s, d);
    sha256_to_hex(d, sig);
    return rc;
}

/* The memo entry of path whose tree has signature sig, or NULL. */
static const HashMemo *memo_find(const char *path, const char *sig)
{
    for (int i = 0; i < 8; i++)
        if (!strcmp(memo[i].path, path) && !strcmp(memo[i].signature, sig))
            return &memo[i];
    return NULL;
}

static void memo_put(const char *path, const char *sig, const char *hex, uint64_t bytes,
                     uint64_t files)
{
    /* A path has one entry: the latest (memo_find would otherwise meet an older one first). */
    HashMemo *m = NULL;
    for (int i = 0; i < 8 && !m; i++)
        if (!strcmp(memo[i].path, path))
            m = &memo[i];
    if (!m) {
        m = &memo[memo_next];
        memo_next = (memo_next + 1) % 8;
    }
    snprintf(m->path, sizeof m->path, "%s", path);
    memcpy(m->signature, sig, 65);
    memcpy(m->hex, hex, 65);
    m->bytes = bytes;
    m->files = files;
}

static int hash_path(const char *path, const struct stat *st, char hex[65], uint64_t *bytes,
                     uint64_t *files, Err *e);

int manifest_hash_path(const char *path, char hex[65], uint64_t *bytes, uint64_t *files, Err *e)
{
    struct stat st;
    char sig[65];
    if (stat(path, &st) != 0)
        return err_set(e, ERR_IO, "%s: does not exist", path);
    int rc = tree_signature(path, &st, sig, e);
    if (rc)
        return rc;
    const HashMemo *m = memo_find(path, sig);
    if (m) {
        memcpy(hex, m->hex, 65);
        *bytes = m->bytes;
        *files = m->files;
        return 0;
    }
    rc = hash_path(path, &st, hex, bytes, files, e);
    if (!rc)
        memo_put(path, sig, hex, *bytes, *files);
    return rc;
}

static int hash_path(const char *path, const struct stat *st, char hex[65], uint64_t *bytes,
                     uint64_t *files, Err *e)
{
    if (!S_ISDIR(st->st_mode)) {
        *files = 1;
        return sha256_file(path, hex, bytes, e);
    }
    char **list = NULL;
    size_t n = 0, cap = 0;
    int rc = list_files(path, "", &list, &n, &cap, e);
    if (!rc && n > 1) /* an empty directory has no list at all: qsort(NULL) is undefined */
        qsort(list, n, sizeof *list, cmp_str);
    Sha256 tree;
    sha256_init(&tree);
    *bytes = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        char full[8192], file_hex[65];
        uint64_t size = 0;
        snprintf(full, sizeof full, "%s/%s", path, list[i]);
        rc = sha256_file(full, file_hex, &size, e);
        feed_tree_line(&tree, list[i], file_hex);
        *bytes += size;
    }
    for (size_t i = 0; i < n; i++)
        mem_free(list[i]);
    mem_free(list);
    if (rc)
        return rc;
    uint8_t digest[32];
    sha256_final(&tree, digest);
    sha256_to_hex(digest, hex);
    *files = n;
    return 0;
}

void manifest_remember_tree(const char *dir, const char *const *rel, const ManifestFileSeen *seen,
                            size_t n, char hex[65], uint64_t *bytes)
{
    /* The tree hash exactly as hash_path makes it, and the signature as tree_signature does. */
    Sha256 tree, sig;
    sha256_init(&tree);
    sha256_init(&sig);
    *bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char file_hex[65];
        sha256_to_hex(seen[i].sha256, file_hex);
        feed_tree_line(&tree, rel[i], file_hex);
        feed_seen(&sig, rel[i], &seen[i]);
        *bytes += seen[i].bytes;
    }
    uint8_t d[32];
    char sig_hex[65];
    sha256_final(&tree, d);
    sha256_to_hex(d, hex);
    sha256_final(&sig, d);
    sha256_to_hex(d, sig_hex);
    memo_put(dir, sig_hex, hex, *bytes, n);
}

/* Rank 0's listing of a tree, sorted, as "rel\n" lines on every rank. */
static int shared_listing(const char *path, char **text, size_t *len, Err *e)
{
    char *mine = NULL;
    size_t mine_len = 0;
    int rc = 0;
    if (rt_rank() == 0) {
        char **list = NULL;
        size_t n = 0, cap = 0;
        rc = list_files(path, "", &list, &n, &cap, e);
        if (!rc && n > 1) /* an empty directory has no list at all: qsort(NULL) is undefined */
            qsort(list, n, sizeof *list, cmp_str);
        size_t total = 1;
        for (size_t i = 0; i < n; i++)
            total += strlen(list[i]) + 1;
        if (!rc && !(mine = mem_alloc(total)))
            rc = err_set(e, ERR_NOMEM, "%s: out of memory listing files", path);
        for (size_t i = 0; i < n; i++) {
            if (!rc) {
                size_t l = strlen(list[i]);
                memcpy(mine + mine_len, list[i], l);
                mine[mine_len + l] = '\n';
                mine_len += l + 1;
            }
            mem_free(list[i]);
        }
        mem_free(list);
    }
    if (rt_agree(e)) {
        mem_free(mine);
        return e->code;
    }
    void *all;
    rc = rt_allgather_bytes(mine ? mine : "", mine_len, &all, len, e);
    mem_free(mine);
    *text = all;
    return rc;
}

int manifest_hash_path_shared(const char *path, char hex[65], uint64_t *bytes, uint64_t *files,
                              Err *e)
{
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (!rt_mpi_active() || rt_size() == 1 || !rt_all_ok(is_dir)) {
        /* one rank, or a file: rank 0 alone */
        int rc = rt_rank() == 0 ? manifest_hash_path(path, hex, bytes, files, e) : 0;
        if (rt_agree(e))
            return e->code;
        uint64_t v[2] = {*bytes, *files};
        if (rt_mpi_active() && rt_size() > 1) {
            MPI_Bcast(hex, 65, MPI_CHAR, 0, MPI_COMM_WORLD);
            MPI_Bcast(v, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        }
        *bytes = v[0];
        *files = v[1];
        return rc;
    }
    char sig[65] = "";
    int hit = 0;
    if (rt_rank() == 0 && !tree_signature(path, &st, sig, e)) {
        const HashMemo *m = memo_find(path, sig);
        if (m) {
            memcpy(hex, m->hex, 65);
            *bytes = m->bytes;
            *files = m->files;
            hit = 1;
        }
    }
    if (rt_agree(e))
        return e->code;
    MPI_Bcast(&hit, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char *list = NULL, *rows = NULL;
    size_t len = 0, rows_len = 0;
    int rc = hit ? 0 : shared_listing(path, &list, &len, e);
    if (!hit && !rc) {
        /* Contiguous shares of the sorted files; each rank's "hex size" lines come back to
         * rank 0 in file order, where the tree hash is made exactly as hash_path makes it. */
        uint64_t n = 0, begin, end;
        for (size_t k = 0; k < len; k++)
            n += list[k] == '\n';
        rt_share(n, &begin, &end);
        StrBuf out = STRBUF_INIT;
        char *p = list;
        for (uint64_t i = 0; i < end && !rc; i++) {
            char *nl = strchr(p, '\n');
            *nl = '\0';
            if (i >= begin) {
                char full[8192], file_hex[65];
                uint64_t size = 0;
                snprintf(full, sizeof full, "%s/%s", path, p);
                if (!(rc = sha256_file(full, file_hex, &size, e)))
                    strbuf_printf(&out, "%s %llu\n", file_hex, (unsigned long long)size);
            }
            *nl = '\n';
            p = nl + 1;
        }
        if (!rt_agree(e))
            rc = rt_gather_text(out.s ? out.s : "", out.len, &rows, &rows_len, e);
        else
            rc = e->code;
        strbuf_free(&out);
        if (!rc && rt_rank() == 0) {
            Sha256 tree;
            sha256_init(&tree);
            *bytes = 0;
            *files = n;
            char *name = list, *row = rows;
            for (uint64_t i = 0; i < n; i++) {
                char *nl = strchr(name, '\n');
                sha256_update(&tree, name, (size_t)(nl - name));
                sha256_update(&tree, "", 1);
                sha256_update(&tree, row, 64);
                sha256_update(&tree, "\n", 1);
                *bytes += strtoull(row + 65, &row, 10);
                row++;
                name = nl + 1;
            }
            uint8_t digest[32];
            sha256_final(&tree, digest);
            sha256_to_hex(digest, hex);
            memo_put(path, sig, hex, *bytes, *files);
        }
    }
    mem_free(list);
    mem_free(rows);
    if (rt_agree(e))
        return e->code;
    uint64_t v[2] = {*bytes, *files};
    MPI_Bcast(hex, 65, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Bcast(v, 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    *bytes = v[0];
    *files = v[1];
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Rewriting. */

static void write_value(JsonWriter *w, const JsonValue *v)
{
    switch (v->type) {
    case JSON_NULL: json_null(w); break;
    case JSON_BOOL: json_bool(w, v->boolean); break;
    case JSON_NUMBER: json_number(w, v->number); break;
    case JSON_STRING: json_string(w, v->string); break;
    case JSON_ARRAY:
        json_array_begin(w);
        for (size_t i = 0; i < v->n; i++)
            write_value(w, &v->items[i]);
        json_array_end(w);
        break;
    case JSON_OBJECT:
        json_object_begin(w);
        for (size_t i = 0; i < v->n; i++) {
            json_key(w, v->keys[i]);
            write_value(w, &v->items[i]);
        }
        json_object_end(w);
        break;
    }
}

static void utc_now(char *out, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_files(JsonWriter *w, const char *rundir, const char *const *paths, int n, Err *e)
{
    json_array_begin(w);
    for (int i = 0; i < n; i++) {
        char full[8192], hex[65];
        uint64_t bytes = 0, files = 0;
        if (paths[i][0] == '/')
            snprintf(full, sizeof full, "%s", paths[i]);
        else
            snprintf(full, sizeof full, "%s/%s", rundir, paths[i]);
        int rc = manifest_hash_path(full, hex, &bytes, &files, e);
        if (rc)
            return rc;
        json_object_begin(w);
        json_key(w, "path");
        json_string(w, paths[i]);
        json_key(w, "sha256");
        json_string(w, hex);
        json_key(w, "bytes");
        json_int(w, (int64_t)bytes);
        json_key(w, "files");
        json_int(w, (int64_t)files);
        json_object_end(w);
    }
    json_array_end(w);
    return 0;
}

static int write_stage(JsonWriter *w, const char *rundir, const StageRecord *r, Err *e)
{
    char now[32];
    utc_now(now, sizeof now);
    json_object_begin(w);
    json_key(w, "finished");
    json_string(w, now);
    json_key(w, "wall_s");
    json_number(w, r->wall_s);
    json_key(w, "ranks");
    json_int(w, r->ranks);
    json_key(w, "partial");
    json_bool(w, r->partial);
    json_key(w, "config_sha256");
    json_string(w, r->config_hash);
    json_key(w, "section_sha256");
    json_string(w, r->section_hash);
    json_key(w, "versions");
    versions_json(w);
    json_key(w, "inputs");
    int rc = write_files(w, rundir, r->inputs, r->n_inputs, e);
    if (rc)
        return rc;
    json_key(w, "outputs");
    rc = write_files(w, rundir, r->outputs, r->n_outputs, e);
    if (rc)
        return rc;
    json_object_end(w);
    return 0;
}

/* Reads the current manifest (NULL when there is none yet), then writes a new one: run-level
 * fields from run_name/config_hash when given (else kept), stage entries kept except rec's,
 * which is replaced. */
static int rewrite(const char *rundir, const char *run_name, const char *config_hash,
                   const StageRecord *rec, Err *e)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/manifest.json", rundir);
    JsonValue *old = NULL;
    if (file_exists(path)) {
        if (json_parse_file(path, &old, e))
            return err_prefix(e, "cannot update the manifest: ");
        if (old->type != JSON_OBJECT ||
            strcmp(json_get_string(old, "format") ? json_get_string(old, "format") : "",
                   MANIFEST_FORMAT)) {
            json_value_free(old);
            return err_set(e, ERR_FORMAT, "%s: not an onfh manifest (format %s expected)", path,
                           MANIFEST_FORMAT);
        }
    }
    const char *name = run_name ? run_name : json_get_string(old, "run");
    const char *hash = config_hash ? config_hash : json_get_string(old, "config_sha256");
    char now[32];
    utc_now(now, sizeof now);

    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "format");
    json_string(&w, MANIFEST_FORMAT);
    json_key(&w, "run");
    json_string(&w, name);
    json_key(&w, "config_sha256");
    json_string(&w, hash);
    json_key(&w, "updated");
    json_string(&w, now);
    json_key(&w, "versions");
    versions_json(&w);
    json_key(&w, "stages");
    json_object_begin(&w);
    /* A re-run stage keeps its place, so the file reads in pipeline order. */
    const JsonValue *stages = json_get(old, "stages");
    int rc = 0, replaced = 0;
    for (size_t i = 0; !rc && stages && stages->type == JSON_OBJECT && i < stages->n; i++) {
        json_key(&w, stages->keys[i]);
        if (rec && !strcmp(stages->keys[i], rec->stage)) {
            rc = write_stage(&w, rundir, rec, e);
            replaced = 1;
        } else {
            write_value(&w, &stages->items[i]);
        }
    }
    if (!rc && rec && !replaced) {
        json_key(&w, rec->stage);
        rc = write_stage(&w, rundir, rec, e);
    }
    json_object_end(&w);
    /* Top-level keys written by others (jobs/submit.sh's "slurm": job ids, array map) are kept. */
    static const char *const own[] = {"format",  "run",      "config_sha256",
                                      "updated", "versions", "stages"};
    for (size_t i = 0; !rc && old && old->type == JSON_OBJECT && i < old->n; i++) {
        int mine = 0;
        for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
            mine |= !strcmp(old->keys[i], own[k]);
        if (!mine) {
            json_key(&w, old->keys[i]);
            write_value(&w, &old->items[i]);
        }
    }
    json_object_end(&w);
    json_value_free(old);
    if (rc) {
        json_writer_free(&w);
        return rc;
    }
    char *text;
    size_t len;
    rc = json_writer_finish(&w, &text, &len, e);
    if (rc)
        return rc;
    rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

int manifest_update_run(const char *rundir, const char *run_name, const char *config_hash, Err *e)
{
    return rewrite(rundir, run_name, config_hash, NULL, e);
}

int manifest_record_stage(const char *rundir, const StageRecord *rec, Err *e)
{
    return rewrite(rundir, NULL, NULL, rec, e);
}

int manifest_stage_current(const char *rundir, const char *stage, const char *section_hash,
                           char *why, size_t why_cap, int *partial)
{
    char path[4200];
    JsonValue *m = NULL;
    Err e = {0};
    int current = 0;
    snprintf(path, sizeof path, "%s/manifest.json", rundir);
    snprintf(why, why_cap, "no record of a finished %s", stage);
    if (!file_exists(path) || json_parse_file(path, &m, &e))
        goto out;
    const JsonValue *entry = json_get(json_get(m, "stages"), stage);
    if (!entry)
        goto out;
    const char *recorded = json_get_string(entry, "section_sha256");
    if (!recorded || strcmp(recorded, section_hash)) {
        snprintf(why, why_cap, "its config changed since it last ran");
        goto out;
    }
    /* Inputs first (what it read must be what it read then), then outputs (what it wrote must
     * still be there, untouched). */
    static const char *const lists[2] = {"inputs", "outputs"};
    for (int l = 0; l < 2; l++) {
        const JsonValue *files_list = json_get(entry, lists[l]);
        for (size_t i = 0; files_list && files_list->type == JSON_ARRAY && i < files_list->n; i++) {
            const char *p = json_get_string(&files_list->items[i], "path");
            const char *want = json_get_string(&files_list->items[i], "sha256");
            char full[8192], hex[65];
            uint64_t bytes, files;
            if (!p || !want)
                goto out;
            if (p[0] == '/')
                snprintf(full, sizeof full, "%s", p);
            else
                snprintf(full, sizeof full, "%s/%s", rundir, p);
            if (manifest_hash_path(full, hex, &bytes, &files, &e) || strcmp(hex, want)) {
                snprintf(why, why_cap, "its %s %s changed or is missing", l ? "output" : "input",
                         p);
                goto out;
            }
        }
    }
    current = 1;
    snprintf(why, why_cap, "finished before with the same config and outputs");
    const JsonValue *p = json_get(entry, "partial");
    if (partial)
        *partial = p && p->type == JSON_BOOL && p->boolean;
out:
    json_value_free(m);
    return current;
}
