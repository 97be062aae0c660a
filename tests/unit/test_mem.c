/* test_mem.c: the counting allocator (lib/util/mem.c).
 *
 * Checks exact byte accounting, the peak, and failure injection; then uses injection the way
 * every constructor test should: fail each allocation of an operation in turn (json_parse of a
 * nested document, a JsonWriter run) and check that each failure comes back as ERR_NOMEM with
 * no leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util/json.h"
#include "lib/util/mem.h"

static void test_bytes_return_to_baseline(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    size_t allocs = mem_allocations();
    char *a = mem_alloc(100);
    char *b = mem_calloc(10, 30);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(mem_bytes_in_use(), base + 400);
    for (int i = 0; i < 300; i++)
        assert_int_equal(b[i], 0);
    char *c = mem_realloc(a, 1000);
    assert_non_null(c);
    assert_int_equal(mem_bytes_in_use(), base + 1300);
    char *d = mem_strdup("hello");
    char *e = mem_strndup("hello world", 5);
    assert_string_equal(d, "hello");
    assert_string_equal(e, "hello");
    assert_int_equal(mem_bytes_in_use(), base + 1300 + 6 + 6);
    assert_int_equal(mem_allocations(), allocs + 5);
    mem_free(b);
    mem_free(c);
    mem_free(d);
    mem_free(e);
    mem_free(NULL);
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_alignment_and_zero_size(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    void *p = mem_alloc(0);
    assert_non_null(p);
    assert_int_equal(mem_bytes_in_use(), base);
    void *q = mem_alloc(3);
    assert_int_equal((uintptr_t)q % 16, 0);
    mem_free(p);
    mem_free(q);
    void *r = mem_realloc(NULL, 24); /* realloc of NULL is an allocation */
    assert_non_null(r);
    assert_int_equal(mem_bytes_in_use(), base + 24);
    mem_free(r);
    assert_int_equal(mem_bytes_in_use(), base);
}

/* From 1 KiB up a block starts on a cache line, whether made by mem_alloc, mem_calloc or
 * mem_realloc (growing from small to large, large to larger, and shrinking back below), and
 * realloc keeps the contents and the byte count exact. */
static void test_large_blocks_are_line_aligned(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    size_t sizes[] = {1024, 4096, 100000, (size_t)5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *a = mem_alloc(sizes[i]);
        char *b = mem_calloc(sizes[i], 1);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal((uintptr_t)a % 64, 0);
        assert_int_equal((uintptr_t)b % 64, 0);
        mem_free(a);
        mem_free(b);
    }
    unsigned char *g = mem_alloc(100);
    assert_non_null(g);
    for (int i = 0; i < 100; i++)
        g[i] = (unsigned char)i;
    size_t steps[] = {2000, 300000, 1500, 50};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        g = mem_realloc(g, steps[i]);
        assert_non_null(g);
        if (steps[i] >= 1024)
            assert_int_equal((uintptr_t)g % 64, 0);
        for (int k = 0; k < 50; k++)
            assert_int_equal(g[k], k);
        assert_int_equal(mem_bytes_in_use(), base + steps[i]);
    }
    mem_free(g);
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_peak_tracks(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    void *a = mem_alloc(1 << 20);
    assert_true(mem_peak_bytes() >= base + (1 << 20));
    void *b = mem_alloc(2 << 20);
    size_t peak = mem_peak_bytes();
    assert_true(peak >= base + (3 << 20));
    mem_free(a);
    mem_free(b);
    assert_int_equal(mem_peak_bytes(), peak); /* frees never lower the peak */
    void *c = mem_alloc(16);
    assert_int_equal(mem_peak_bytes(), peak);
    mem_free(c);
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    assert_null(mem_calloc(SIZE_MAX / 2, 4));
    assert_null(mem_alloc(SIZE_MAX - 4));
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_fail_at_exactly_nth(void **state)
{
    (void)state;
    long injected = mem_failures_injected();
    void *p[5];
    mem_fail_at(3);
    for (int i = 0; i < 5; i++)
        p[i] = mem_alloc(8);
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    assert_null(p[2]);
    assert_non_null(p[3]); /* one shot: the countdown disarms after firing */
    assert_non_null(p[4]);
    assert_int_equal(mem_failures_injected(), injected + 1);
    for (int i = 0; i < 5; i++)
        mem_free(p[i]);

    mem_fail_at(1);
    assert_null(mem_strdup("x"));
    void *ok = mem_alloc(1);
    assert_non_null(ok);
    mem_free(ok);

    mem_fail_at(5);
    mem_fail_at(0); /* disarmed */
    for (int i = 0; i < 10; i++) {
        void *q = mem_alloc(1);
        assert_non_null(q);
        mem_free(q);
    }
    assert_int_equal(mem_failures_injected(), injected + 2);
}

static void test_realloc_failure_keeps_block(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    char *p = mem_alloc(4);
    memcpy(p, "abc", 4);
    mem_fail_at(1);
    assert_null(mem_realloc(p, 4096));
    assert_string_equal(p, "abc");
    assert_int_equal(mem_bytes_in_use(), base + 4);
    mem_free(p);
    assert_int_equal(mem_bytes_in_use(), base);
}

// ---------------------------------------------------------------------------------------------
// Fail every allocation in turn

static const char nested_doc[] =
    "{\"name\": \"run \\u00e9\", \"seed\": 42, \"ok\": true, \"none\": null,\n"
    " \"files\": [{\"path\": \"a.dcm\", \"sha\": \"00ff\"}, {\"path\": \"b.dcm\", \"n\": [1, 2, "
    "3]}],\n"
    " \"deep\": [[[[{\"x\": [0.5, -1e-3, \"s\"]}]]]], \"long\": "
    "1.00000000000000000000000000000000000000000000000000000000000000001}";

static void test_json_parse_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    size_t before = mem_allocations();
    JsonValue *v = NULL;
    Err e = {0};
    assert_int_equal(json_parse(nested_doc, strlen(nested_doc), "doc", &v, &e), ERR_OK);
    size_t needed = mem_allocations() - before;
    json_value_free(v);
    assert_int_equal(mem_bytes_in_use(), base);
    assert_true(needed > 10);

    for (size_t n = 1; n <= needed; n++) {
        mem_fail_at((long)n);
        int rc = json_parse(nested_doc, strlen(nested_doc), "doc", &v, &e);
        mem_fail_at(0);
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(v);
        assert_non_null(strstr(e.msg, "doc:"));
        assert_int_equal(mem_bytes_in_use(), base);
    }
    /* One past the last allocation: nothing fails. */
    mem_fail_at((long)needed + 1);
    assert_int_equal(json_parse(nested_doc, strlen(nested_doc), "doc", &v, &e), ERR_OK);
    mem_fail_at(0);
    json_value_free(v);
    assert_int_equal(mem_bytes_in_use(), base);
}

/* Writes enough to need several buffer growths. */
static int write_document(char **text, Err *e)
{
    JsonWriter w;
    json_writer_init(&w, 1);
    json_object_begin(&w);
    json_key(&w, "files");
    json_array_begin(&w);
    for (int i = 0; i < 200; i++) {
        json_object_begin(&w);
        json_key(&w, "path");
        json_string(&w, "series/instance/with/a/fairly/long/path.dcm");
        json_key(&w, "value");
        json_number(&w, i / 3.0);
        json_object_end(&w);
    }
    json_array_end(&w);
    json_object_end(&w);
    return json_writer_finish(&w, text, NULL, e);
}

static void test_json_writer_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    size_t before = mem_allocations();
    char *text = NULL;
    Err e = {0};
    assert_int_equal(write_document(&text, &e), ERR_OK);
    size_t needed = mem_allocations() - before;
    mem_free(text);
    assert_true(needed > 3);

    for (size_t n = 1; n <= needed; n++) {
        mem_fail_at((long)n);
        int rc = write_document(&text, &e);
        mem_fail_at(0);
        assert_int_equal(rc, ERR_NOMEM);
        assert_null(text);
        assert_int_equal(mem_bytes_in_use(), base);
    }
}

/* The VmFlags line of the mapping in /proc/self/smaps that holds address a, or "" if none. */
static void vm_flags_at(uintptr_t a, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = a >= lo && a < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(out, cap, "%s", line + 8);
            break;
        }
    }
    fclose(f);
}

/* A block of 4 MiB or more asks for transparent huge pages over its 2 MiB-aligned part
 * (mem.c huge_pages): the kernel marks that mapping "hg". Skipped where the kernel has no
 * transparent huge pages or they are off. */
static void test_large_blocks_ask_for_huge_pages(void **state)
{
    (void)state;
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(mode, sizeof mode, f))
            mode[0] = '\0';
        fclose(f);
    }
    if (!mode[0] || strstr(mode, "[never]")) {
        printf("# skip: no transparent huge pages on this kernel\n");
        skip();
    }
    size_t n = (size_t)16 << 20;
    char *p = mem_alloc(n);
    assert_non_null(p);
    uintptr_t mid = ((uintptr_t)p + ((uintptr_t)4 << 20)) & ~(((uintptr_t)2 << 20) - 1);
    char flags[256];
    vm_flags_at(mid, flags, sizeof flags);
    assert_non_null(strstr(flags, " hg"));
    mem_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_return_to_baseline),
        cmocka_unit_test(test_alignment_and_zero_size),
        cmocka_unit_test(test_large_blocks_are_line_aligned),
        cmocka_unit_test(test_peak_tracks),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_fail_at_exactly_nth),
        cmocka_unit_test(test_realloc_failure_keeps_block),
        cmocka_unit_test(test_json_parse_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_json_writer_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_large_blocks_ask_for_huge_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
