/* bench_hash.c: SHA-256 throughput of onfh (every manifest hashes each stage's inputs and
 * outputs, gigabytes of DICOM and HDF5 on a real cohort) beside coreutils' sha256sum on the same
 * file. Prints the median of 5 runs of each, with min and max; "portable C" is onfh without the
 * x86 SHA extensions, as on CPUs that lack them.
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
    return strcmp(hex, theirs) != 0;
}
