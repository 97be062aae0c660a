/* test_fileio.c: whole-file reads, atomic writes and directories (lib/util/fileio.c).
 *
 * Everything happens in a fresh directory under $ONFH_TEST_TMP (or /tmp), which the group
 * teardown removes. The atomic-write tests scan that directory afterwards: a temp file left
 * behind would be exactly the kind of half-finished output atomic writes exist to prevent. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"

static char tmpdir[4096];

static int make_tmpdir(void **state)
{
    (void)state;
    const char *base = getenv("ONFH_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_fileio.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    Err e = {0};
    return dir_remove_tree(tmpdir, &e); /* itself checked by test_write_plain_and_remove_tree */
}

static void join(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

/* Number of entries in dir whose name contains ".tmp." */
static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_write_then_read(void **state)
{
    (void)state;
    char path[4200];
    join(path, sizeof path, "out.json");
    size_t base = mem_bytes_in_use();
    Err e = {0};
    const char first[] = "{\"v\": 1}\n";
    assert_int_equal(file_write_atomic(path, first, strlen(first), &e), ERR_OK);
    assert_true(file_exists(path));
    assert_false(dir_exists(path));

    char *data;
    size_t len;
    assert_int_equal(file_read_all(path, &data, &len, &e), ERR_OK);
    assert_int_equal(len, strlen(first));
    assert_string_equal(data, first);
    mem_free(data);

    /* Overwrite with something larger, including NUL bytes (binary safe). */
    size_t n = 100000;
    char *big = mem_alloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 251);
    assert_int_equal(file_write_atomic(path, big, n, &e), ERR_OK);
    assert_int_equal(file_read_all(path, &data, &len, &e), ERR_OK);
    assert_int_equal(len, n);
    assert_memory_equal(data, big, n);
    assert_int_equal(data[n], '\0');
    mem_free(data);
    mem_free(big);

    /* An empty file. */
    assert_int_equal(file_write_atomic(path, "", 0, &e), ERR_OK);
    assert_int_equal(file_read_all(path, &data, &len, &e), ERR_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    mem_free(data);

    assert_int_equal(count_temp_files(tmpdir), 0);
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_read_from_proc(void **state)
{
    (void)state;
    /* fstat says 0 bytes for /proc files; the read must not trust it. */
    char *data;
    size_t len;
    Err e = {0};
    assert_int_equal(file_read_all("/proc/self/status", &data, &len, &e), ERR_OK);
    assert_true(len > 0);
    assert_non_null(strstr(data, "Name:"));
    mem_free(data);
}

static void test_write_into_missing_dir(void **state)
{
    (void)state;
    char dir[4200];
    char path[4300];
    join(dir, sizeof dir, "missing");
    snprintf(path, sizeof path, "%s/file.txt", dir);
    size_t base = mem_bytes_in_use();
    Err e = {0};
    assert_int_equal(file_write_atomic(path, "x", 1, &e), ERR_IO);
    assert_int_equal(e.code, ERR_IO);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, strerror(ENOENT)));
    assert_false(file_exists(path));
    assert_false(dir_exists(dir));
    assert_int_equal(count_temp_files(tmpdir), 0);
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_rename_failure_removes_temp(void **state)
{
    (void)state;
    /* The target is a non-empty directory, so rename fails after the temp file is written. */
    char path[4200];
    char inner[4300];
    join(path, sizeof path, "occupied");
    snprintf(inner, sizeof inner, "%s/keep", path);
    Err e = {0};
    assert_int_equal(dir_create(inner, &e), ERR_OK);
    assert_int_equal(file_write_atomic(path, "data", 4, &e), ERR_IO);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "rename"));
    assert_int_equal(count_temp_files(tmpdir), 0);
    assert_true(dir_exists(inner));
}

static void test_read_errors(void **state)
{
    (void)state;
    char path[4200];
    char *data = (char *)"sentinel";
    size_t len = 99;
    Err e = {0};
    join(path, sizeof path, "absent.txt");
    assert_int_equal(file_read_all(path, &data, &len, &e), ERR_IO);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, strerror(ENOENT)));

    /* A directory opens but cannot be read. */
    assert_int_equal(file_read_all(tmpdir, &data, &len, &e), ERR_IO);
    assert_non_null(strstr(e.msg, tmpdir));
    assert_false(file_exists(tmpdir));
    assert_true(dir_exists(tmpdir));
    assert_false(file_exists(path));
    assert_false(dir_exists(path));
}

static void test_dir_create_nested(void **state)
{
    (void)state;
    char path[4200];
    char mid[4200];
    join(path, sizeof path, "a/b//c/d/");
    join(mid, sizeof mid, "a/b");
    size_t base = mem_bytes_in_use();
    Err e = {0};
    assert_int_equal(dir_create(path, &e), ERR_OK);
    assert_true(dir_exists(path));
    assert_true(dir_exists(mid));
    /* Existing directories are fine. */
    assert_int_equal(dir_create(path, &e), ERR_OK);
    assert_int_equal(dir_create(mid, &e), ERR_OK);

    /* A file in the way is an error naming both. */
    char file[4300];
    char below[4400];
    snprintf(file, sizeof file, "%s/plain", mid);
    snprintf(below, sizeof below, "%s/x/y", file);
    assert_int_equal(file_write_atomic(file, "f", 1, &e), ERR_OK);
    assert_int_equal(dir_create(below, &e), ERR_IO);
    assert_non_null(strstr(e.msg, below));
    assert_non_null(strstr(e.msg, "not a directory"));
    assert_int_equal(dir_create(file, &e), ERR_IO);

    assert_int_equal(dir_create("", &e), ERR_IO);
    assert_int_equal(mem_bytes_in_use(), base);
}

/* file_write creates or truncates; dir_remove_tree removes a tree with files, empty directories
 * and a symbolic link without following the link; a missing path is fine. */
static void test_write_plain_and_remove_tree(void **state)
{
    (void)state;
    char top[4200], path[4400], outside[4200], link_path[4400];
    Err e = {0};
    join(top, sizeof top, "tree");
    join(outside, sizeof outside, "outside.txt");
    snprintf(path, sizeof path, "%s/a/b", top);
    assert_int_equal(dir_create(path, &e), ERR_OK);
    snprintf(path, sizeof path, "%s/a/b/f.dcm", top);
    assert_int_equal(file_write(path, "longer text", 11, &e), ERR_OK);
    assert_int_equal(file_write(path, "short", 5, &e), ERR_OK); /* truncates */
    char *back;
    size_t len;
    assert_int_equal(file_read_all(path, &back, &len, &e), ERR_OK);
    assert_int_equal(len, 5);
    assert_string_equal(back, "short");
    mem_free(back);
    snprintf(path, sizeof path, "%s/empty", top);
    assert_int_equal(dir_create(path, &e), ERR_OK);
    assert_int_equal(file_write_atomic(outside, "keep", 4, &e), ERR_OK);
    snprintf(link_path, sizeof link_path, "%s/a/link", top);
    assert_int_equal(symlink(outside, link_path), 0);
    assert_int_equal(dir_remove_tree(top, &e), ERR_OK);
    assert_false(dir_exists(top));
    assert_true(file_exists(outside)); /* the link was removed, not followed */
    assert_int_equal(dir_remove_tree(top, &e), ERR_OK);
    assert_int_equal(file_write("/nonexistent/dir/f", "x", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/f"));
}

static void test_allocation_failures(void **state)
{
    (void)state;
    char path[4200];
    char dir[4200];
    join(path, sizeof path, "nomem.txt");
    join(dir, sizeof dir, "nomem/x/y");
    size_t base = mem_bytes_in_use();
    Err e = {0};
    mem_fail_at(1);
    assert_int_equal(file_write_atomic(path, "x", 1, &e), ERR_NOMEM);
    assert_int_equal(file_write_atomic(path, "x", 1, &e), ERR_OK);
    char *data;
    mem_fail_at(1);
    assert_int_equal(file_read_all(path, &data, NULL, &e), ERR_NOMEM);
    assert_non_null(strstr(e.msg, path));
    mem_fail_at(1);
    assert_int_equal(dir_create(dir, &e), ERR_NOMEM);
    mem_fail_at(0);
    assert_int_equal(count_temp_files(tmpdir), 0);
    assert_int_equal(mem_bytes_in_use(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_read),
        cmocka_unit_test(test_read_from_proc),
        cmocka_unit_test(test_write_into_missing_dir),
        cmocka_unit_test(test_rename_failure_removes_temp),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_dir_create_nested),
        cmocka_unit_test(test_write_plain_and_remove_tree),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
