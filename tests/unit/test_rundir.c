/* test_rundir.c: run directory, its lock, and the manifest (pipeline/rundir.c, manifest.c).
 *
 * The lock: a second open is refused with the holder named; a lock left by a dead process on
 * this host is removed; a live holder (our parent) is respected. The manifest: tree hashes do
 * not depend on file creation order, stage entries are added and replaced without losing the
 * others, and a file that is not a manifest is refused rather than overwritten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "pipeline/manifest.h"
#include "pipeline/rundir.h"

static char tmp[4096];

static int make_tmp(void **state)
{
    (void)state;
    const char *base = getenv("ONFH_TEST_TMP");
    snprintf(tmp, sizeof tmp, "%s/rundir.XXXXXX", base ? base : "/tmp");
    return mkdtemp(tmp) ? 0 : -1;
}

static int remove_tmp(void **state)
{
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[8192];
    Err e = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(file_write_atomic(path, text, strlen(text), &e), 0);
}

static void test_lock(void **state)
{
    (void)state;
    char path[4200], note[1024];
    snprintf(path, sizeof path, "%s/runs/a", tmp);
    RunDir r1, r2;
    Err e = {0};
    assert_int_equal(rundir_open(&r1, path, note, sizeof note, &e), 0);
    assert_string_equal(note, "");
    char logs[4300];
    snprintf(logs, sizeof logs, "%s/logs", path);
    assert_true(dir_exists(logs));
    /* held by this live process: refused, holder named */
    assert_int_equal(rundir_open(&r2, path, note, sizeof note, &e), ERR_BUSY);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld on host ", (long)getpid());
    assert_non_null(strstr(e.msg, pid));
    assert_non_null(strstr(e.msg, "run directory is in use by"));
    rundir_close(&r1);
    rundir_close(&r1); /* idempotent */
    assert_false(file_exists(r1.lock_path));

    /* a lock left by a process that has exited: removed, and said so */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char text[512];
    snprintf(text, sizeof text, "%s %ld 1700000000 4242\n", host, (long)child);
    put(path, ".lock", text);
    assert_int_equal(rundir_open(&r2, path, note, sizeof note, &e), 0);
    assert_non_null(strstr(note, "removed a stale lock left by pid"));
    assert_non_null(strstr(note, "Slurm job 4242"));
    rundir_close(&r2);

    /* a lock from another host is never second-guessed */
    put(path, ".lock", "some-other-node 12345 1700000000 -\n");
    assert_int_equal(rundir_open(&r2, path, note, sizeof note, &e), ERR_BUSY);
    assert_non_null(strstr(e.msg, "pid 12345 on host some-other-node since 2023-11-14T22:13:20Z"));
}

static void test_tree_hash(void **state)
{
    (void)state;
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s/tree_a/sub", tmp);
    snprintf(b, sizeof b, "%s/tree_b/sub", tmp);
    Err e = {0};
    assert_int_equal(dir_create(a, &e), 0);
    assert_int_equal(dir_create(b, &e), 0);
    snprintf(a, sizeof a, "%s/tree_a", tmp);
    snprintf(b, sizeof b, "%s/tree_b", tmp);
    put(a, "z.txt", "zed");
    put(a, "sub/x.txt", "ex");
    put(b, "sub/x.txt", "ex"); /* other creation order */
    put(b, "z.txt", "zed");
    char ha[65], hb[65];
    uint64_t bytes, files;
    assert_int_equal(manifest_hash_path(a, ha, &bytes, &files, &e), 0);
    assert_int_equal(bytes, 5);
    assert_int_equal(files, 2);
    assert_int_equal(manifest_hash_path(b, hb, &bytes, &files, &e), 0);
    assert_string_equal(ha, hb);
    /* the documented definition, recomputed by hand */
    char hx[65], hz[65];
    sha256_hex("ex", 2, hx);
    sha256_hex("zed", 3, hz);
    Sha256 s;
    uint8_t d[32];
    char expect[65];
    sha256_init(&s);
    sha256_update(&s, "sub/x.txt", 10);
    sha256_update(&s, hx, 64);
    sha256_update(&s, "\n", 1);
    sha256_update(&s, "z.txt", 6);
    sha256_update(&s, hz, 64);
    sha256_update(&s, "\n", 1);
    sha256_final(&s, d);
    sha256_to_hex(d, expect);
    assert_string_equal(ha, expect);
    put(b, "sub/x.txt", "eX");
    assert_int_equal(manifest_hash_path(b, hb, &bytes, &files, &e), 0);
    assert_string_not_equal(ha, hb);
    /* Hashes are remembered within a process; an in-place edit (same inode, same size) must
     * still be seen: the modification time is part of what is remembered. */
    char again[65], edited[65], xp[4300];
    assert_int_equal(manifest_hash_path(b, again, &bytes, &files, &e), 0);
    assert_string_equal(again, hb);
    snprintf(xp, sizeof xp, "%s/sub/x.txt", b);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    FILE *f = fopen(xp, "r+");
    assert_non_null(f);
    fputc('E', f);
    fclose(f);
    assert_int_equal(manifest_hash_path(b, edited, &bytes, &files, &e), 0);
    assert_string_not_equal(edited, hb);
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/nothing", tmp);
    assert_int_equal(manifest_hash_path(missing, hb, &bytes, &files, &e), ERR_IO);
}

/* What ingest does: the hashes and stats of a tree's files, seen while reading them, give the
 * tree hash manifest_hash_path gives, and a later manifest_hash_path reuses it (the proof: a
 * digest planted in what was seen comes back) until a file changes. */
static void see(const char *dir, const char *rel, const char *fake, ManifestFileSeen *out)
{
    char path[4300], *data;
    size_t len;
    struct stat st;
    Err e = {0};
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    assert_int_equal(file_read_all(path, &data, &len, &e), 0);
    assert_int_equal(stat(path, &st), 0);
    Sha256 s;
    sha256_init(&s);
    sha256_update(&s, fake ? fake : data, fake ? strlen(fake) : len);
    sha256_final(&s, out->sha256);
    out->bytes = len;
    out->dev = (int64_t)st.st_dev;
    out->ino = (int64_t)st.st_ino;
    out->size = (int64_t)st.st_size;
    out->mtime_sec = (int64_t)st.st_mtim.tv_sec;
    out->mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
    mem_free(data);
}

static void test_remember_tree(void **state)
{
    (void)state;
    char c[4200], copy[4200];
    Err e = {0};
    snprintf(c, sizeof c, "%s/tree_c/sub", tmp);
    snprintf(copy, sizeof copy, "%s/tree_c_copy/sub", tmp);
    assert_int_equal(dir_create(c, &e), 0);
    assert_int_equal(dir_create(copy, &e), 0);
    snprintf(c, sizeof c, "%s/tree_c", tmp);
    snprintf(copy, sizeof copy, "%s/tree_c_copy", tmp);
    put(c, "sub/x.txt", "ex");
    put(c, "z.txt", "zed");
    put(copy, "sub/x.txt", "ex");
    put(copy, "z.txt", "zed");
    const char *rel[] = {"sub/x.txt", "z.txt"};
    ManifestFileSeen seen[2];
    see(c, rel[0], NULL, &seen[0]);
    see(c, rel[1], NULL, &seen[1]);
    char remembered[65], hashed[65], again[65];
    uint64_t bytes, files;
    manifest_remember_tree(c, rel, seen, 2, remembered, &bytes);
    assert_int_equal(bytes, 5);
    assert_int_equal(manifest_hash_path(copy, hashed, &bytes, &files, &e), 0);
    assert_string_equal(remembered, hashed);
    /* reused, not read again */
    see(c, rel[1], "planted", &seen[1]);
    manifest_remember_tree(c, rel, seen, 2, remembered, &bytes);
    assert_string_not_equal(remembered, hashed);
    assert_int_equal(manifest_hash_path(c, again, &bytes, &files, &e), 0);
    assert_string_equal(again, remembered);
    assert_int_equal(files, 2);
    /* a file changed since it was seen: the tree is read again */
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    put(c, "z.txt", "zed");
    assert_int_equal(manifest_hash_path(c, again, &bytes, &files, &e), 0);
    assert_string_equal(again, hashed);
}

static JsonValue *read_manifest(const char *dir)
{
    char path[4200], *text;
    size_t len;
    JsonValue *m;
    Err e = {0};
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    assert_int_equal(file_read_all(path, &text, &len, &e), 0);
    assert_int_equal(json_parse(text, len, path, &m, &e), 0);
    mem_free(text);
    return m;
}

static void test_manifest(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/runs/m", tmp);
    Err e = {0};
    assert_int_equal(dir_create(dir, &e), 0);
    put(dir, "in.csv", "a,b\n");
    put(dir, "out.h5", "data");
    assert_int_equal(manifest_update_run(dir, "m", "c0ffee", &e), 0);
    const char *ins[] = {"in.csv"}, *outs[] = {"out.h5"};
    StageRecord rec = {"synth", ins, 1, outs, 1, "c0ffee", "5ec7", 3, 1.5, 0};
    assert_int_equal(manifest_record_stage(dir, &rec, &e), 0);
    StageRecord rec2 = {"ingest", outs, 1, NULL, 0, "c0ffee", "abcd", 2, 0.25, 1};
    assert_int_equal(manifest_record_stage(dir, &rec2, &e), 0);
    rec.ranks = 4; /* synth again: replaced, ingest kept */
    assert_int_equal(manifest_record_stage(dir, &rec, &e), 0);

    JsonValue *m = read_manifest(dir);
    assert_string_equal(json_get_string(m, "format"), "onfh-manifest-1");
    assert_string_equal(json_get_string(m, "run"), "m");
    assert_string_equal(json_get_string(m, "config_sha256"), "c0ffee");
    assert_non_null(json_get_string(json_get(m, "versions"), "hdf5"));
    const JsonValue *stages = json_get(m, "stages");
    assert_int_equal(stages->n, 2);
    assert_string_equal(stages->keys[0], "synth"); /* replaced in place */
    assert_string_equal(stages->keys[1], "ingest");
    const JsonValue *synth = json_get(stages, "synth");
    assert_true(json_get_number(synth, "ranks", 0) == 4);
    assert_string_equal(json_get_string(synth, "section_sha256"), "5ec7");
    const JsonValue *in0 = &json_get(synth, "inputs")->items[0];
    char h[65];
    sha256_hex("a,b\n", 4, h);
    assert_string_equal(json_get_string(in0, "path"), "in.csv");
    assert_string_equal(json_get_string(in0, "sha256"), h);
    assert_true(json_get_number(in0, "bytes", 0) == 4);
    json_value_free(m);

    /* a stage whose output is missing is an error, and the manifest is left as it was */
    const char *gone[] = {"never_written.h5"};
    StageRecord bad = {"evaluate", NULL, 0, gone, 1, "c0ffee", "1", 1, 1, 0};
    assert_int_equal(manifest_record_stage(dir, &bad, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "never_written.h5"));
    m = read_manifest(dir);
    assert_int_equal(json_get(m, "stages")->n, 2);
    json_value_free(m);

    /* current: same section hash and untouched outputs; anything else says why not */
    char why[256];
    int partial = -1;
    assert_int_equal(manifest_stage_current(dir, "synth", "5ec7", why, sizeof why, &partial), 1);
    assert_int_equal(partial, 0);
    assert_int_equal(manifest_stage_current(dir, "ingest", "abcd", why, sizeof why, &partial), 1);
    assert_int_equal(partial, 1); /* a stage that skipped inputs says so again when skipped */
    assert_int_equal(manifest_stage_current(dir, "synth", "5ec8", why, sizeof why, NULL), 0);
    assert_string_equal(why, "its config changed since it last ran");
    assert_int_equal(manifest_stage_current(dir, "train", "5ec7", why, sizeof why, NULL), 0);
    assert_string_equal(why, "no record of a finished train");
    put(dir, "in.csv", "a,b,c\n");
    assert_int_equal(manifest_stage_current(dir, "synth", "5ec7", why, sizeof why, NULL), 0);
    assert_string_equal(why, "its input in.csv changed or is missing");
    put(dir, "in.csv", "a,b\n");
    put(dir, "out.h5", "DATA");
    assert_int_equal(manifest_stage_current(dir, "synth", "5ec7", why, sizeof why, NULL), 0);
    assert_string_equal(why, "its output out.h5 changed or is missing");

    /* not a manifest: refused, not overwritten */
    put(dir, "manifest.json", "{\"format\": \"something-else\"}");
    assert_int_equal(manifest_record_stage(dir, &rec, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "not an onfh manifest"));
    put(dir, "manifest.json", "{\"format\": ");
    assert_int_equal(manifest_record_stage(dir, &rec, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "cannot update the manifest: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_tree_hash),
        cmocka_unit_test(test_remember_tree),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests(tests, make_tmp, remove_tmp);
}
