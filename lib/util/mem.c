/* mem.c: the counting allocator behind every heap allocation of onfh (see mem.h).
 *
 * Each block carries a 16-byte header in front of the caller's pointer holding the requested
 * size, so mem_free knows exactly how many bytes to take off the count: bytes in use and the
 * peak are exact, not estimates. 16 bytes (not sizeof(size_t)) keep the caller's pointer as
 * aligned as malloc's own (16 on glibc x86-64 and aarch64).
 *
 * Failure injection is a countdown: mem_fail_at(n) arms it, every allocation attempt ticks it,
 * and the attempt that brings it to zero fails and disarms it. Tests use it to fail each
 * allocation of a constructor in turn and check that it unwinds without a leak. */
#include "lib/util/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MEM_HEADER 16
/* Blocks from MEM_LINE_MIN bytes up start on a cache line: a 64-byte header under
 * posix_memalign. Why: malloc's 16-byte alignment plus the header put every large block at 32
 * bytes past a cache line (mmap's page, malloc's 16-byte chunk header, ours), so each 64-byte
 * AVX-512 load of an activation arena or a weight buffer straddled two lines; oneDNN's
 * depthwise backward-weights ran 1.35x slower on such buffers than on aligned ones. */
#define MEM_LINE     64
#define MEM_LINE_MIN ((size_t)1024)
/* The header in front of a block of n bytes: the size sits in its last 16 bytes, right before
 * the caller's pointer, whichever header it is. */
static size_t header_of(size_t n)
{
    return n >= MEM_LINE_MIN ? MEM_LINE : MEM_HEADER;
}

/* Blocks from 4 MiB up are asked to use transparent huge pages (see huge_pages). */
#define MEM_HUGE_MIN  ((size_t)4 << 20)
#define MEM_HUGE_PAGE ((uintptr_t)2 << 20)

_Static_assert(sizeof(size_t) <= MEM_HEADER, "the size must fit in the block header");

static atomic_size_t bytes_in_use;
static atomic_size_t peak_bytes;
static atomic_size_t allocations;
static atomic_long fail_countdown; /* > 0: attempts left until the one that fails */
static atomic_long failures_injected;
/* ONFH_FAIL_ALLOC is read once: 0 not yet, 1 being read, 2 done. */
static atomic_int env_state;

// ---------------------------------------------------------------------------------------------
// Accounting and injection

/* Reads ONFH_FAIL_ALLOC the first time any entry point runs. A thread that loses the race spins
 * until the winner is done, so nobody allocates before the countdown is armed. */
static void read_env_once(void)
{
    int expected = 0;
    if (atomic_load(&env_state) == 2)
        return;
    if (atomic_compare_exchange_strong(&env_state, &expected, 1)) {
        const char *s = getenv("ONFH_FAIL_ALLOC");
        if (s && *s) {
            long n = strtol(s, NULL, 10);
            atomic_store(&fail_countdown, n > 0 ? n : 0);
        }
        atomic_store(&env_state, 2);
        return;
    }
    while (atomic_load(&env_state) != 2) {
    }
}

/* One allocation attempt: returns 1 if injection says this one must fail. */
static int should_fail(void)
{
    read_env_once();
    long n = atomic_load(&fail_countdown);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) {
            if (n == 1) {
                atomic_fetch_add(&failures_injected, 1);
                return 1;
            }
            return 0;
        }
    }
    return 0;
}

static void count_alloc(size_t n)
{
    size_t now = atomic_fetch_add(&bytes_in_use, n) + n;
    size_t peak = atomic_load(&peak_bytes);
    while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
    }
    atomic_fetch_add(&allocations, 1);
}

static size_t block_size(void *p)
{
    size_t n;
    memcpy(&n, (char *)p - MEM_HEADER, sizeof n);
    return n;
}

/* Asks the kernel for 2 MiB pages under the whole 2 MiB-aligned part of a large block. Debian
 * (like most distributions but RHEL) sets transparent huge pages to "madvise": without the
 * call a 300 MiB activation arena sits on 4 KiB pages, and oneDNN's kernels, which stride
 * across NHWC tensors of several MiB, miss the TLB; the first step also takes a page fault per
 * 4 KiB instead of per 2 MiB. Measured on the 2-core machine: mobilenet_v2 training 2-4% more
 * images/s. A hint only: where huge pages are off or short, nothing changes. */
static void huge_pages(void *p, size_t n)
{
    uintptr_t lo = ((uintptr_t)p + MEM_HUGE_PAGE - 1) & ~(MEM_HUGE_PAGE - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(MEM_HUGE_PAGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
}

// ---------------------------------------------------------------------------------------------
// Allocation

/* A block of n bytes, counted, without the failure injection (callers tick it). */
static void *block_alloc(size_t n)
{
    if (n > SIZE_MAX - MEM_LINE)
        return NULL;
    size_t h = header_of(n);
    void *raw = NULL;
    if (h == MEM_HEADER)
        raw = malloc(n + h);
    else if (posix_memalign(&raw, MEM_LINE, n + h) != 0)
        raw = NULL;
    if (!raw)
        return NULL;
    char *p = (char *)raw + h;
    memcpy(p - MEM_HEADER, &n, sizeof n);
    count_alloc(n);
    if (n >= MEM_HUGE_MIN)
        huge_pages(p, n);
    return p;
}

void *mem_alloc(size_t n)
{
    if (should_fail())
        return NULL;
    return block_alloc(n);
}

void *mem_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = mem_alloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *mem_realloc(void *p, size_t n)
{
    if (!p)
        return mem_alloc(n);
    if (should_fail() || n > SIZE_MAX - MEM_LINE)
        return NULL;
    size_t old = block_size(p);
    if (header_of(old) == MEM_LINE || header_of(n) == MEM_LINE) {
        /* realloc keeps only malloc's alignment: a new aligned block and a copy (a buffer that
         * grows by doubling copies each byte about once more) */
        char *q = block_alloc(n);
        if (!q)
            return NULL;
        memcpy(q, p, old < n ? old : n);
        mem_free(p);
        return q;
    }
    char *raw = realloc((char *)p - MEM_HEADER, n + MEM_HEADER);
    if (!raw)
        return NULL;
    memcpy(raw, &n, sizeof n);
    /* Add the new size before taking off the old: while realloc moves a block both copies
     * exist, so the peak errs high rather than low. */
    count_alloc(n);
    atomic_fetch_sub(&bytes_in_use, old);
    return raw + MEM_HEADER;
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = mem_alloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void mem_free(void *p)
{
    if (!p)
        return;
    size_t n = block_size(p);
    atomic_fetch_sub(&bytes_in_use, n);
    free((char *)p - header_of(n));
}

// ---------------------------------------------------------------------------------------------
// Counters and injection control

size_t mem_bytes_in_use(void)
{
    return atomic_load(&bytes_in_use);
}

size_t mem_peak_bytes(void)
{
    return atomic_load(&peak_bytes);
}

size_t mem_allocations(void)
{
    return atomic_load(&allocations);
}

void mem_fail_at(long n)
{
    /* Read the environment first so that it cannot override this explicit call later. */
    read_env_once();
    atomic_store(&fail_countdown, n > 0 ? n : 0);
}

long mem_failures_injected(void)
{
    return atomic_load(&failures_injected);
}
