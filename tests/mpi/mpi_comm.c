/* mpi_comm.c: the data-parallel communicator (lib/nn/comm.h) under real mpirun
 * (tests/integration/mpi.sh runs it on 2 and 3 ranks). Checks run on every rank and rank 0
 * reports them as TAP lines.
 *   mpi_comm BACKEND   ref (host memory) or refdev (device memory: buckets staged on the host)
 * A BN-free graph (conv, ReLU, conv, ReLU, average pool, linear) sees a global batch of 7 with
 * class weights; each rank runs its share (7 on 2 ranks: 4 + 3) with the loss scaled by its
 * share of the weights, and the gradients summed in 16-float buckets during backward must equal
 * one process's gradient of the whole batch. Also: rank 0's parameters broadcast, BN running
 * statistics averaged. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/comm.h"
#include "lib/nn/graph.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

#define B 7 /* global batch */

static int n_check, rank, size;

static void check(int ok, const char *what, const char *backend)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%sok %d - %s (%s, %d ranks)\n", all ? "" : "not ", ++n_check, what, backend, size);
    fflush(stdout);
}

/* x (n,1,8,8) -> conv 3x3 (4) -> ReLU -> conv 3x3 (4) -> ReLU -> avg pool -> linear (2) */
static int small_net(NnGraph *g, const NnBackend *be, int n, Err *e)
{
    nn_graph_init(g, be, n);
    int x = nn_graph_input(g, 1, 8, 8);
    x = nn_graph_conv(g, "c1", x, 4, 3, 1, 1, 1, 1, 1);
    x = nn_graph_act(g, x, NN_RELU);
    x = nn_graph_conv(g, "c2", x, 4, 3, 1, 1, 1, 1, 1);
    x = nn_graph_act(g, x, NN_RELU);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    nn_graph_linear(g, "fc", x, 2, 1);
    if (nn_graph_finish(g, 1, 2, e))
        return -1;
    nn_graph_init_params(g, 11);
    return 0;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *name = argc > 1 ? argv[1] : "ref";
    Err e = {0};
    const NnBackend *be = nn_backend_by_name(name, &e);
    if (!be) {
        fprintf(stderr, "mpi_comm: %s\n", e.msg);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (rank == 0)
        printf("1..6\n");
    float images[B * 64];
    int target[B] = {0, 1, 1, 0, 1, 0, 0};
    float weight[2] = {1.0f, 1.5f};
    Philox p;
    philox_init(&p, 3, PHILOX_TEST, 0);
    for (int i = 0; i < B * 64; i++)
        images[i] = (float)philox_normal(&p);
    /* the whole batch in one process: the reference gradient */
    NnGraph full, mine;
    float loss;
    int base = B / size, extra = B % size;
    int first = rank * base + (rank < extra ? rank : extra), n = base + (rank < extra);
    if (small_net(&full, be, B, &e) || small_net(&mine, be, n, &e)) {
        fprintf(stderr, "mpi_comm: %s\n", e.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    nn_graph_set_input(&full, images);
    nn_graph_forward(&full, 1, &e);
    nn_graph_loss(&full, target, weight, 0.1f, &loss, &e);
    nn_graph_zero_grads(&full);
    nn_graph_backward(&full, &e);
    nn_graph_download(&full);

    /* this rank's share; rank 0's parameters broadcast over disturbed ones */
    for (size_t i = 0; rank > 0 && i < mine.store.n_param; i++)
        mine.store.params[i] += (float)rank;
    nn_graph_upload(&mine);
    NnComm *c;
    if (nn_comm_open(&c, MPI_COMM_WORLD, &mine, 16 * sizeof(float), "mpi", &e) ||
        nn_comm_broadcast_store(c, &e)) {
        fprintf(stderr, "mpi_comm: %s\n", e.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    nn_graph_download(&mine);
    check(!memcmp(mine.store.params, full.store.params, mine.store.n_param * sizeof(float)),
          "rank 0's parameters are every rank's after the broadcast", name);
    double w_all = 0, w_mine = 0;
    for (int i = 0; i < B; i++)
        w_all += weight[target[i]];
    for (int i = first; i < first + n; i++)
        w_mine += weight[target[i]];
    mine.loss_scale = (float)(w_mine / w_all);
    mine.sample0 = (uint64_t)first;
    nn_graph_set_input(&mine, images + first * 64);
    nn_graph_forward(&mine, 1, &e);
    nn_graph_loss(&mine, target + first, weight, 0.1f, &loss, &e);
    nn_graph_zero_grads(&mine);
    nn_comm_begin_backward(c);
    int rc = nn_graph_backward(&mine, &e) || nn_comm_end_backward(c, &e);
    nn_graph_download(&mine);
    double worst = 0, scale = max_abs(full.store.grads, full.store.n_param);
    for (size_t i = 0; i < full.store.n_param; i++)
        worst = fmax(worst, fabs(mine.store.grads[i] - full.store.grads[i]));
    if (rank == 0)
        printf("# summed shares against the whole batch: max |difference| %.3g of max |gradient| "
               "%.3g\n",
               worst, scale);
    check(rc == 0 && scale > 0 && worst <= 1e-5 * scale,
          "shares' gradients summed in buckets equal the whole batch's (class weights, smoothing, "
          "uneven shares)",
          name);
    NnCommStats st = nn_comm_stats(c);
    check(st.buckets > 3 && st.started_early == st.buckets,
          "every bucket started during backward, as soon as its gradients were final", name);
    /* the reduction with no overlap, timed: gradients left zero, the step counters untouched */
    rc = nn_comm_time_allreduce(c, 2, &e);
    nn_graph_download(&mine);
    NnCommStats after = nn_comm_stats(c);
    int zero = 1;
    for (size_t i = 0; i < mine.store.n_param; i++)
        zero &= mine.store.grads[i] == 0.0f;
    check(rc == 0 && zero && (size > 1 ? after.allreduce_s > 0 : after.allreduce_s == 0) &&
              after.started_total == st.started_total && after.steps == st.steps &&
              after.wait_s == st.wait_s,
          "a reduction with no overlap timed (ranks > 1), gradients zero, step counters kept",
          name);
    nn_comm_close(c);
    /* the transport: NCCL only where the gradients live on the cuda backend; names checked */
    Err ne = {0}, ue = {0};
    NnComm *nc = NULL, *uc = NULL;
    int nrc = nn_comm_open(&nc, MPI_COMM_WORLD, &mine, 1024, "nccl", &ne);
    int urc = nn_comm_open(&uc, MPI_COMM_WORLD, &mine, 1024, "gloo", &ue);
    check(strcmp(be->name, "cuda")
              ? nrc == ERR_CONFIG && !nc && strstr(ne.msg, "NCCL needs cuda") &&
                    urc == ERR_CONFIG && strstr(ue.msg, "'gloo'")
              : 1,
          "train.comm nccl is refused off the cuda backend, an unknown transport is named", name);
    nn_comm_close(nc);
    nn_comm_close(uc);
    nn_graph_free(&mine);
    nn_graph_free(&full);

    /* BN running statistics: the mean over the ranks on every rank */
    NnGraph bn;
    nn_graph_init(&bn, be, 2);
    int x = nn_graph_input(&bn, 1, 4, 4);
    x = nn_graph_conv(&bn, "c", x, 2, 3, 1, 1, 1, 1, 0);
    x = nn_graph_bn(&bn, "b", x, 1e-5f, 0.1f);
    x = nn_graph_adaptive_avgpool(&bn, x, 1, 1);
    nn_graph_linear(&bn, "fc", x, 2, 1);
    if (nn_graph_finish(&bn, 1, 0, &e) || nn_comm_open(&c, MPI_COMM_WORLD, &bn, 1024, "auto", &e)) {
        fprintf(stderr, "mpi_comm: %s\n", e.msg);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < bn.store.n_buffer; i++)
        bn.store.buffers[i] = (float)(rank + 1) * (float)(i + 1);
    nn_graph_upload(&bn);
    rc = nn_comm_average_buffers(c, &e);
    nn_graph_download(&bn);
    int ok = rc == 0 && bn.store.n_buffer > 0;
    for (size_t i = 0; i < bn.store.n_buffer; i++)
        ok &= fabsf(bn.store.buffers[i] - (float)(size + 1) / 2.0f * (float)(i + 1)) < 1e-6f;
    check(ok, "BN running statistics averaged over the ranks", name);
    nn_comm_close(c);
    nn_graph_free(&bn);
    MPI_Finalize();
    return 0;
}
