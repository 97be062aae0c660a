/* test_ingest_hash.c: ingest_hash_files (stages/ingest/scan.c), which hashes the files ingest
 * has read SHA256_MANY_MAX at a time: every file read gets its own digest, whatever the mix of
 * lengths and however many files sit between two that failed to read, and a file whose read
 * failed gets none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/sha256.h"
#include "stages/ingest/ingest_internal.h"

enum { N_FILES = 11 };

/* Files of N_FILES lengths (empty, under a block, a few blocks, DICOM-sized), each with its own
 * bytes; the ones marked in failed[] carry a read error, as ingest_read_file leaves them. */
static void hash_and_check(const int failed[N_FILES], int n)
{
    static const size_t lens[N_FILES] = {200000, 0, 65, 1000, 64, 131072, 55, 200000, 1, 4096, 63};
    ScanFile f[N_FILES];
    memset(f, 0, sizeof f);
    for (int k = 0; k < n; k++) {
        f[k].len = lens[k];
        f[k].data = malloc(lens[k] ? lens[k] : 1);
        assert_non_null(f[k].data);
        for (size_t i = 0; i < lens[k]; i++)
            f[k].data[i] = (uint8_t)((i + 1) * 2654435761u >> (k + 8));
        if (failed[k])
            err_set(&f[k].err, ERR_IO, "file %d: cannot read", k);
    }
    ingest_hash_files(f, n);
    static const uint8_t none[32];
    for (int k = 0; k < n; k++) {
        if (failed[k]) {
            assert_memory_equal(f[k].seen.sha256, none, 32);
        } else {
            char got[65], want[65];
            sha256_to_hex(f[k].seen.sha256, got);
            sha256_hex(f[k].data, f[k].len, want);
            assert_string_equal(got, want);
        }
        free(f[k].data);
    }
}

static void test_every_file_read_gets_its_digest(void **state)
{
    (void)state;
    static const int no_fault[N_FILES];
    for (int n = 0; n <= N_FILES; n++)
        hash_and_check(no_fault, n);
}

static void test_failed_reads_get_none(void **state)
{
    (void)state;
    static const int some[N_FILES] = {0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1};
    static const int first_last[N_FILES] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const int all[N_FILES] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int n = 1; n <= N_FILES; n++) {
        hash_and_check(some, n);
        hash_and_check(first_last, n);
        hash_and_check(all, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_file_read_gets_its_digest),
        cmocka_unit_test(test_failed_reads_get_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
