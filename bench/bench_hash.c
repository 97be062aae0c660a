/* bench_hash.c: SHA-256 throughput of onfh (every manifest hashes each stage's inputs and
 * outputs, gigabytes of DICOM and HDF5 on a real cohort) beside coreutils' sha256sum on the same
 * file. Prints the median of 5 runs of each, with min and max; "portable C" is onfh without the
 * x86 SHA extensions, as on CPUs that lack them. Then what ingest does: many DICOM-sized
 * buffers in memory, hashed one at a time and SHA256_MANY_MAX at a time (sha256_many), in
 * aggregate.
 *   bench_hash [MiB]   (default 512) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "lib/util/sha256.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *who, double mib, double t[5])
{
    qsort(t, 5, sizeof t[0], cmp_double);
    printf("  %-22s %8.0f MiB/s   (min %.0f, max %.0f)\n", who, mib / t[2], mib / t[4], mib / t[0]);
}

/* Many buffers the size of a DICOM file of the native bench tree (about 110 KB on average),
 * BUFS_MIB in all: ingest hashes every file it has read, from memory. */
enum { BUF_BYTES = 128 << 10, BUFS_MIB = 64, N_BUFS = (BUFS_MIB << 20) / BUF_BYTES };

/* Digests of the N_BUFS buffers of pool, `at_once` of them per sha256_many call. */
static void hash_bufs(const uint8_t *pool, int at_once, uint8_t (*digest)[32])
{
    for (int i = 0; i < N_BUFS; i += at_once) {
        const void *data[SHA256_MANY_MAX];
        size_t len[SHA256_MANY_MAX];
        int m = N_BUFS - i < at_once ? N_BUFS - i : at_once;
        for (int k = 0; k < m; k++) {
            data[k] = pool + (size_t)(i + k) * BUF_BYTES;
            len[k] = BUF_BYTES;
        }
        sha256_many(m, data, len, digest + i);
    }
}

/* Buffers 1 to SHA256_MANY_MAX at a time; returns 0 when all give the same digests. */
static int bench_many(Philox *rng)
{
    uint32_t *pool = mem_alloc((size_t)BUFS_MIB << 20);
    uint8_t(*want)[32] = mem_alloc(sizeof *want * N_BUFS);
    uint8_t(*got)[32] = mem_alloc(sizeof *got * N_BUFS);
    if (!pool || !want || !got) {
        fprintf(stderr, "bench_hash: no memory for %d MiB of buffers\n", BUFS_MIB);
        return 1;
    }
    for (size_t i = 0; i < ((size_t)BUFS_MIB << 20) / 4; i++)
        pool[i] = philox_u32(rng);
    static const int at_once[] = {1, 2, 3, SHA256_MANY_MAX};
    enum { N_WAYS = sizeof at_once / sizeof *at_once };
    double t[N_WAYS][5];
    int differ = 0;
    hash_bufs((const uint8_t *)pool, 1, want);
    for (int r = 0; r < 5; r++)
        for (int w = 0; w < N_WAYS; w++) {
            double t0 = now();
            hash_bufs((const uint8_t *)pool, at_once[w], got);
            t[w][r] = now() - t0;
            differ |= memcmp(got, want, sizeof *want * N_BUFS) != 0;
        }
    printf("SHA-256 of %d buffers of %d KiB in memory (as ingest hashes files), aggregate:\n",
           N_BUFS, BUF_BYTES >> 10);
    char who[64];
    for (int w = 0; w < N_WAYS; w++) {
        snprintf(who, sizeof who, "onfh, %d at a time", at_once[w]);
        report(who, BUFS_MIB, t[w]);
    }
    printf("  digests %s\n", differ ? "DIFFER: bug" : "agree");
    mem_free(got);
    mem_free(want);
    mem_free(pool);
    return differ;
}

int main(int argc, char **argv)
{
    int mib = argc > 1 ? atoi(argv[1]) : 512;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/onfh_bench_hash.%ld", dir, (long)getpid());
    FILE *f = fopen(path, "wb");
    uint32_t *block = mem_alloc(1 << 20);
    if (!f || !block) {
        fprintf(stderr, "bench_hash: cannot create %s\n", path);
        return 1;
    }
    Philox rng;
    philox_init(&rng, 1, PHILOX_TEST, 0);
    for (int m = 0; m < mib; m++) {
        for (int i = 0; i < (1 << 18); i++)
            block[i] = philox_u32(&rng);
        fwrite(block, 1, 1 << 20, f);
    }
    fclose(f);
    mem_free(block);

    char hex[65], cmd[4200], theirs[65] = "";
    double t_onfh[5], t_port[5], t_peer[5];
    Err e = {0};
    for (int r = 0; r < 5; r++) { /* alternate, so both see the same page-cache state */
        double t0 = now();
        if (sha256_file(path, hex, NULL, &e)) {
            fprintf(stderr, "bench_hash: %s\n", e.msg);
            return 1;
        }
        t_onfh[r] = now() - t0;
        sha256_force_portable(1);
        t0 = now();
        sha256_file(path, hex, NULL, &e);
        t_port[r] = now() - t0;
        sha256_force_portable(0);
        snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
        t0 = now();
        FILE *p = popen(cmd, "r");
        if (!p || fscanf(p, "%64s", theirs) != 1) {
            fprintf(stderr, "bench_hash: sha256sum failed\n");
            return 1;
        }
        pclose(p);
        t_peer[r] = now() - t0;
    }
    unlink(path);
    printf("SHA-256 of a %d MiB file (warm page cache), median of 5:\n", mib);
    report("onfh sha256_file", mib, t_onfh);
    report("onfh, portable C", mib, t_port);
    report("coreutils sha256sum", mib, t_peer);
    printf("  digests %s\n", strcmp(hex, theirs) ? "DIFFER: bug" : "agree");
    int differ = strcmp(hex, theirs) != 0;
    return bench_many(&rng) || differ;
}
