/* mem.h: the one allocation wrapper of onfh.
 *
 * Every heap allocation in onfh goes through these functions so that (1) bytes in use and the
 * peak are counted, for memory reports, and (2) a test can make the n-th allocation fail and
 * check that the code under test unwinds cleanly (no leak, no crash, a clear error).
 * They return NULL on failure; callers handle it (constructors unwind with goto labels).
 * Thread safe (counters are atomics). Blocks are 16-byte aligned, and from 1 KiB up 64-byte
 * aligned (a cache line, an AVX-512 vector). */
#ifndef ONFH_MEM_H
#define ONFH_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_calloc(size_t count, size_t size); /* zeroed; NULL on count*size overflow */
void *mem_realloc(void *p, size_t n);        /* like realloc; on failure p is untouched */
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *p); /* NULL is fine */

size_t mem_bytes_in_use(void);
size_t mem_peak_bytes(void);
size_t mem_allocations(void); /* successful allocations so far (mem_alloc/calloc/realloc/strdup) */

/* Make the n-th allocation from now fail (n = 1: the next one). n = 0 turns injection off.
 * Also settable by the environment: ONFH_FAIL_ALLOC=n, read at the first allocation. */
void mem_fail_at(long n);
/* Number of allocations made to fail by injection so far. */
long mem_failures_injected(void);

#endif
