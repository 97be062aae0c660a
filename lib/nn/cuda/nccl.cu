/* nccl.cu: the NCCL transport of lib/nn/comm (see nn_cuda.h): one NCCL communicator per
 * NnComm, its own stream, and two events that order it against the compute stream
 * (cu_stream()) on the device, without the host waiting:
 *
 *   compute stream:  ... backward of layer k ... [ready] ... backward of layer k-1 ... [wait done]
 *   NCCL stream:                 [wait ready] allreduce(bucket) ...          [done]
 *
 * A reduction starts after everything queued on the compute stream so far (the bucket's
 * gradients are final there) and runs beside the rest of backward; nn_nccl_join makes the
 * compute stream wait for every reduction started, so the optimizer step reads the sums.
 *
 * NCCL's ring and tree algorithms sum in an order fixed by the rank count and the topology, so
 * a rerun on the same nodes repeats bit for bit (NCCL_ALGO and NCCL_PROTO pin it across
 * machines). */
#include "lib/nn/cuda/cu_core.cuh"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nccl.h>

#include "lib/nn/cuda/nn_cuda.h"

static_assert(NN_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "nn_cuda.h's id size is NCCL's");

struct NnNccl {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t ready, done;
    int ranks;
    int aborted; /* after a peer's failure: the communicator is gone */
};

static int nccl_fail(const char *what, ncclResult_t rc, char *why, size_t cap)
{
    snprintf(why, cap, "NCCL %s: %s", what, ncclGetErrorString(rc));
    return -1;
}

int nn_nccl_unique_id(unsigned char id[NN_NCCL_ID_BYTES], char *why, size_t cap)
{
    char msg[256];
    if (cu_init(msg, sizeof msg) < 0) {
        snprintf(why, cap, "%s", msg);
        return -1;
    }
    ncclUniqueId u;
    ncclResult_t rc = ncclGetUniqueId(&u);
    if (rc != ncclSuccess)
        return nccl_fail("ncclGetUniqueId", rc, why, cap);
    memcpy(id, u.internal, NN_NCCL_ID_BYTES);
    return 0;
}

int nn_nccl_open(NnNccl **out, int ranks, int rank, const unsigned char id[NN_NCCL_ID_BYTES],
                 char *why, size_t cap)
{
    *out = NULL;
    char msg[256];
    if (cu_init(msg, sizeof msg) < 0) {
        snprintf(why, cap, "%s", msg);
        return -1;
    }
    NnNccl *n = (NnNccl *)calloc(1, sizeof *n);
    if (!n) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    ncclUniqueId u;
    memcpy(u.internal, id, NN_NCCL_ID_BYTES);
    ncclResult_t rc = ncclCommInitRank(&n->comm, ranks, u, rank);
    if (rc != ncclSuccess) {
        free(n);
        return nccl_fail("ncclCommInitRank", rc, why, cap);
    }
    n->ranks = ranks;
    CU_CHECK(cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking));
    CU_CHECK(cudaEventCreateWithFlags(&n->ready, cudaEventDisableTiming));
    CU_CHECK(cudaEventCreateWithFlags(&n->done, cudaEventDisableTiming));
    *out = n;
    return 0;
}

void nn_nccl_close(NnNccl *n)
{
    if (!n)
        return;
    if (!n->aborted) {
        CU_CHECK(cudaStreamSynchronize(n->stream));
        ncclCommDestroy(n->comm);
    }
    CU_CHECK(cudaEventDestroy(n->ready));
    CU_CHECK(cudaEventDestroy(n->done));
    CU_CHECK(cudaStreamDestroy(n->stream));
    free(n);
}

int nn_nccl_allreduce(NnNccl *n, float *x, size_t count, int average, char *why, size_t cap)
{
    CU_CHECK(cudaEventRecord(n->ready, cu_stream()));
    CU_CHECK(cudaStreamWaitEvent(n->stream, n->ready, 0));
    ncclResult_t rc =
        ncclAllReduce(x, x, count, ncclFloat, average ? ncclAvg : ncclSum, n->comm, n->stream);
    if (rc != ncclSuccess)
        return nccl_fail("ncclAllReduce", rc, why, cap);
    return 0;
}

/* NCCL reports a peer's failure (a rank died, the network broke) asynchronously. */
static int async_error(NnNccl *n, char *why, size_t cap)
{
    ncclResult_t state;
    ncclResult_t rc = ncclCommGetAsyncError(n->comm, &state);
    if (rc != ncclSuccess)
        return nccl_fail("ncclCommGetAsyncError", rc, why, cap);
    if (state != ncclSuccess && state != ncclInProgress)
        return nccl_fail("communicator", state, why, cap);
    return 0;
}

int nn_nccl_join(NnNccl *n, char *why, size_t cap)
{
    CU_CHECK(cudaEventRecord(n->done, n->stream));
    CU_CHECK(cudaStreamWaitEvent(cu_stream(), n->done, 0));
    return async_error(n, why, cap);
}

int nn_nccl_sync(NnNccl *n, char *why, size_t cap)
{
    /* polled rather than cudaStreamSynchronize, so a dead peer is an error, not a hang */
    for (;;) {
        cudaError_t q = cudaStreamQuery(n->stream);
        if (q == cudaSuccess)
            return async_error(n, why, cap);
        if (q != cudaErrorNotReady)
            CU_CHECK(q);
        if (async_error(n, why, cap)) {
            ncclCommAbort(n->comm);
            n->aborted = 1;
            return -1;
        }
    }
}
