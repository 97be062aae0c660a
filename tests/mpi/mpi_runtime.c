/* mpi_runtime.c: the runtime under real mpirun (tests/integration/mpi.sh runs it on 2 and 3
 * ranks). Checks are made on every rank and reported by rank 0 as TAP lines.
 *   mpi_runtime checks   share (uneven splits), agree, all_ok, logging to rank files
 *   mpi_runtime fatal    the last rank calls rt_fatal while the others wait in a barrier: the
 *                        job must end (MPI_Abort), not hang */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"
#include "pipeline/runtime.h"

static int n_check;

static void check(int ok, const char *what)
{
    int all = rt_all_ok(ok);
    if (rt_rank() == 0)
        printf("%sok %d - %s (%d ranks)\n", all ? "" : "not ", ++n_check, what, rt_size());
    fflush(stdout);
}

/* Every item is in exactly one rank's share; shares are contiguous and in rank order. */
static void check_share(uint64_t n)
{
    uint64_t b, e;
    rt_share(n, &b, &e);
    unsigned long long mine[2] = {b, e}, all[2 * 64];
    MPI_Gather(mine, 2, MPI_UNSIGNED_LONG_LONG, all, 2, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
    int ok = 1;
    if (rt_rank() == 0) {
        uint64_t next = 0, lo = n, hi = 0;
        for (int r = 0; r < rt_size(); r++) {
            ok &= all[2 * r] == next && all[2 * r + 1] >= all[2 * r];
            uint64_t len = all[2 * r + 1] - all[2 * r];
            lo = len < lo ? len : lo;
            hi = len > hi ? len : hi;
            next = all[2 * r + 1];
        }
        ok &= next == n && hi - lo <= 1;
    }
    char what[64];
    snprintf(what, sizeof what, "rt_share splits %llu items", (unsigned long long)n);
    check(ok, what);
}

int main(int argc, char **argv)
{
    Err e = {0};
    if (rt_init(&argc, &argv, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "checks";
    int last = rt_size() - 1;
    if (!strcmp(mode, "fatal")) {
        if (rt_rank() == last)
            rt_fatal(EXIT_FAILURE_RUN, "rank %d gives up on purpose", last);
        MPI_Barrier(MPI_COMM_WORLD); /* never completes: the last rank is gone */
        rt_exit(EXIT_OK);
    }

    const uint64_t sizes[] = {0, 1, 2, 5, 7, 100, 1001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_share(sizes[i]);

    Err mine = {0};
    if (rt_rank() == last)
        err_set(&mine, ERR_IO, "rank %d could not read x.dcm", last);
    char expect[64];
    snprintf(expect, sizeof expect, "rank %d could not read x.dcm", last);
    int code = rt_agree(&mine);
    check(code == ERR_IO && !strcmp(mine.msg, expect), "rt_agree gives every rank the error");
    Err none = {0};
    check(rt_agree(&none) == 0 && none.code == 0, "rt_agree with no error");
    check(rt_all_ok(rt_rank() != last) == 0 && rt_all_ok(1) == 1, "rt_all_ok");

    /* rt_gather_text: rank r contributes r lines (rank 0 none), rank 0 gets them in order */
    char mine_text[256] = "", *all;
    size_t all_len;
    for (int k = 0; k < rt_rank(); k++)
        snprintf(mine_text + strlen(mine_text), sizeof mine_text - strlen(mine_text), "r%d.%d\n",
                 rt_rank(), k);
    Err ge = {0};
    int grc = rt_gather_text(mine_text, strlen(mine_text), &all, &all_len, &ge);
    int gathered = grc == 0;
    if (rt_rank() == 0) {
        char expect_all[1024] = "";
        for (int r = 0; r < rt_size(); r++)
            for (int k = 0; k < r; k++)
                snprintf(expect_all + strlen(expect_all), sizeof expect_all - strlen(expect_all),
                         "r%d.%d\n", r, k);
        gathered = gathered && all && all_len == strlen(expect_all) && !strcmp(all, expect_all);
    } else {
        gathered = gathered && all == NULL;
    }
    mem_free(all);
    check(gathered, "rt_gather_text puts every rank's text in rank order on rank 0");

    /* rt_allgather_bytes: the same concatenation on every rank */
    void *everywhere;
    size_t every_len;
    int arc = rt_allgather_bytes(mine_text, strlen(mine_text), &everywhere, &every_len, &ge);
    char expect_every[1024] = "";
    for (int r = 0; r < rt_size(); r++)
        for (int k = 0; k < r; k++)
            snprintf(expect_every + strlen(expect_every),
                     sizeof expect_every - strlen(expect_every), "r%d.%d\n", r, k);
    check(arc == 0 && every_len == strlen(expect_every) &&
              !memcmp(everywhere, expect_every, every_len),
          "rt_allgather_bytes gives every rank the same rank-ordered bytes");
    mem_free(everywhere);

    if (argc > 2) { /* a directory for rank logs */
        rt_open_rank_log(argv[2], &e);
        rt_set_logging(LOG_INFO, 0);
        log_info("hello from rank %d", rt_rank());
        log_debug("not shown at info level");
        rt_set_logging(LOG_INFO, 1);
        log_info("all ranks speak, rank %d", rt_rank());
    }
    if (rt_rank() == 0)
        printf("1..%d\n", n_check);
    rt_exit(EXIT_OK);
}
