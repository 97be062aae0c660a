/* comm.h: data-parallel communication for one model trained on several ranks.
 *
 * Every rank of a communicator holds the same model (NnGraph) and runs forward and backward on
 * its own share of each global batch. The communicator keeps the replicas identical:
 *
 *   nn_comm_broadcast_store   at the start (and after rank 0 loads a checkpoint): rank 0's
 *                             parameters, BN buffers and counters, optimizer moments to all;
 *   nn_comm_begin_backward    before nn_graph_backward: arms the buckets (below), and starts
 *                             averaging the BN running statistics that forward just updated;
 *   nn_comm_end_backward      after it: every gradient summed over the ranks, on every rank,
 *                             and the running statistics averaged;
 *   nn_comm_average_buffers   the running statistics averaged outside a step.
 *
 * BatchNorm normalises with each rank's own batch statistics (no synchronised BN). The running
 * statistics are averaged over the ranks after every step, overlapped with backward: the running
 * average is linear, so this is the average of the ranks' own running statistics that averaging
 * before each checkpoint and evaluation would give, and every rank holds the same state at every
 * step, so a checkpoint taken at any step resumes bit for bit.
 *
 * Buckets. The gradients live in one flat buffer in state_dict order (tensor.h), and backward
 * visits the nodes in reverse, so the gradients become final from the end of the buffer towards
 * its start. The buffer is cut, from the end, into buckets of about bucket_bytes whole tensors
 * each. The graph calls back after each node's backward (NnGraph.after_node); when the last
 * tensor of a bucket is final the bucket's sum all-reduce starts, non-blocking, while backward
 * goes on with the earlier layers; buckets start in one fixed order (from the end) on every
 * rank, as collectives must. nn_comm_end_backward starts what is left and waits. Overlap needs
 * the MPI library to progress a started collective: the callback pokes it (MPI_Testall) after
 * every node.
 *
 * Scaling: the all-reduce sums. A rank scales its loss gradient (NnGraph.loss_scale) by its
 * share of the global batch's loss normaliser, so the sum is the global batch's mean gradient.
 *
 * Transports. Gradients are reduced by a transport:
 *   mpi   on host memory; on a device backend (backend.h NnMemory.device) each bucket is
 *         downloaded to a host staging copy, reduced there and uploaded back;
 *   nccl  (the cuda backend) g->dev's gradients reduced in place on the GPU, each bucket an
 *         ncclAllReduce on NCCL's own stream ordered after the compute stream's work by an
 *         event (lib/nn/cuda/nccl.cu), the BN buffers averaged by NCCL too;
 *   auto  nccl for the cuda backend on several ranks with a GPU each (NCCL refuses two ranks
 *         on one GPU), else mpi.
 * Both use the same bucket plan and callbacks; the small host-side collectives (nn_comm_sum,
 * nn_comm_agree, the parameter broadcast) stay on MPI, which also carries NCCL's unique id.
 * NOT YET RUN on a GPU: the nccl transport is compiled in every CI build but no GPU run has
 * exercised it (train.comm: nccl on one rank runs its reductions too, for a one-GPU check).
 *
 * Determinism: for a given rank count, the same buckets are reduced in the same order by the
 * same MPI algorithms, so runs repeat bit for bit; sums over another rank count differ in
 * floating-point order only. */
#ifndef ONFH_NN_COMM_H
#define ONFH_NN_COMM_H

#include <mpi.h>
#include <stddef.h>

#include "lib/nn/graph.h"
#include "lib/util/err.h"

typedef struct NnComm NnComm;

/* What the reductions cost this rank, summed over the steps (clock reads around the MPI calls).
 * Per step: wait_s / steps is the all-reduce time left exposed after backward; allreduce_s is
 * what the whole reduction takes when nothing overlaps it, so the share hidden behind backward
 * (the overlap) is 1 - (wait_s / steps) / allreduce_s. progress_s is the price of hiding it on a
 * host transport: the reductions advance inside the MPI calls backward makes after each node. */
typedef struct NnCommStats {
    int buckets;        /* in the plan */
    size_t bytes;       /* gradient bytes reduced per step */
    long steps;         /* nn_comm_end_backward calls */
    double wait_s;      /* spent in nn_comm_end_backward: waiting for reductions to finish */
    double backward_s;  /* from nn_comm_begin_backward to nn_comm_end_backward's return */
    double progress_s;  /* in MPI calls during backward: starting buckets and progressing them */
    double allreduce_s; /* a step's reduction, no overlap (nn_comm_time_allreduce); 0: untimed */
    long started_early; /* buckets started during backward (the rest at its end) */
    long started_total;
} NnCommStats;

/* Plans the buckets of g (bucket_bytes > 0) on communicator comm (duplicated: the caller may
 * free its own) with transport "auto", "mpi" or "nccl" (above) and installs the graph
 * callback. Fails when a parameter belongs to several
 * nodes (its gradient would not be final after one node's backward). Collective. */
int nn_comm_open(NnComm **out, MPI_Comm comm, NnGraph *g, size_t bucket_bytes,
                 const char *transport, Err *e);
void nn_comm_close(NnComm *c);
int nn_comm_rank(const NnComm *c);
int nn_comm_size(const NnComm *c);
MPI_Comm nn_comm_mpi(const NnComm *c);
NnCommStats nn_comm_stats(const NnComm *c);

/* Collective: rank 0's store (parameters, buffers, counters, moments) on every rank, in dev
 * too. Rank 0 must have uploaded whatever it loaded. */
int nn_comm_broadcast_store(NnComm *c, Err *e);
/* Collective: times what nn_comm_end_backward waits when no bucket started during backward
 * (every bucket started, then all waited, as in a step), `reps` times after one untimed run,
 * behind a barrier; the mean goes to NnCommStats.allreduce_s (one rank: 0, nothing to time). It
 * sums the gradient buffer in place and leaves it zero: call it before a step, not within. */
int nn_comm_time_allreduce(NnComm *c, int reps, Err *e);
void nn_comm_begin_backward(NnComm *c);
int nn_comm_end_backward(NnComm *c, Err *e);
int nn_comm_average_buffers(NnComm *c, Err *e);

/* Collective, blocking, host memory: v (n doubles) summed over the ranks, in place. */
int nn_comm_sum(NnComm *c, double *v, int n, Err *e);
/* Collective: rank 0's bytes on every rank (host memory). */
int nn_comm_broadcast(NnComm *c, void *p, size_t bytes, Err *e);
/* Collective: the error of the lowest rank that failed, in e on every rank (0: none did). */
int nn_comm_agree(NnComm *c, Err *e);
/* The same on any communicator (before a model, and so an NnComm, exists). */
int nn_mpi_agree(MPI_Comm comm, Err *e);

#endif
