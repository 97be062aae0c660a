/* comm.c: bucketed gradient all-reduce overlapping backward, parameter broadcast, BN buffer
 * averaging, over MPI or NCCL (see comm.h for the protocol). */
#include "lib/nn/comm.h"

#include <string.h>

#include "lib/nn/cuda/cuda_info.h"
#include "lib/nn/cuda/nn_cuda.h"
#include "lib/util/mem.h"
#include "lib/util/mpicheck.h"

/* MPI counts are int: big buffers go in pieces. */
#define PIECE_FLOATS ((size_t)1 << 28)

typedef struct Bucket {
    size_t lo, hi; /* floats [lo, hi) of the gradient buffer, whole tensors (and padding) */
    int views;     /* parameter tensors in it */
    int pending;   /* of them not yet final in this backward */
    int started;   /* its reduction runs (requests below) */
    int first_req; /* requests [first_req, first_req + n_req) of NnComm.req */
    int n_req;
} Bucket;

struct NnComm {
    MPI_Comm comm;
    int rank, size;
    NnGraph *g;
    int device_pointers; /* the transport reduces g->dev's memory itself (NCCL); MPI: 0 */
    NnNccl *nccl;        /* the NCCL transport, or NULL (MPI) */
    int staged;          /* gradients pass through `staging` (device backend, host transport) */
    float *staging;      /* (n_param) host copy of the gradients, staged only */
    Bucket *bucket;      /* from the end of the buffer to its start: the order they start in */
    int n_buckets;
    int *bucket_of; /* (n_views) bucket of a parameter view, -1 for other kinds */
    int next;       /* next bucket to start */
    MPI_Request *req;
    int n_req_total;
    MPI_Request *buf_req; /* (n_buf_req) the BN buffers' sum, during backward */
    int n_buf_req;
    double t_begin;
    Err err; /* first failure inside the graph callback, reported by nn_comm_end_backward */
    NnCommStats stats;
};

int nn_comm_rank(const NnComm *c)
{
    return c->rank;
}

int nn_comm_size(const NnComm *c)
{
    return c->size;
}

MPI_Comm nn_comm_mpi(const NnComm *c)
{
    return c->comm;
}

NnCommStats nn_comm_stats(const NnComm *c)
{
    return c->stats;
}

/* Where the transport reduces: g->dev's gradients (host backend, or a device transport), or
 * the host staging copy. */
static float *grads_for_transport(NnComm *c)
{
    return c->staged ? c->staging : c->g->dev.grads;
}

static int nccl_err(Err *e, const char *why)
{
    return err_set(e, ERR_MPI, "comm: %s", why);
}

static int start_bucket(NnComm *c, int b, Err *e)
{
    Bucket *k = &c->bucket[b];
    k->started = 1;
    if (c->nccl) { /* device memory, in place; also on one rank (train.comm nccl: a test) */
        char why[256];
        if (nn_nccl_allreduce(c->nccl, c->g->dev.grads + k->lo, k->hi - k->lo, 0, why, sizeof why))
            return nccl_err(e, why);
        return 0;
    }
    if (c->size == 1)
        return 0; /* one rank: the sum is its own gradient */
    float *p = grads_for_transport(c);
    if (c->staged)
        c->g->be->mem->download(p + k->lo, c->g->dev.grads + k->lo,
                                (k->hi - k->lo) * sizeof(float));
    for (int r = 0; r < k->n_req; r++) {
        size_t lo = k->lo + (size_t)r * PIECE_FLOATS;
        size_t n = k->hi - lo < PIECE_FLOATS ? k->hi - lo : PIECE_FLOATS;
        int rc = MPI_CALL(e, MPI_Iallreduce(MPI_IN_PLACE, p + lo, (int)n, MPI_FLOAT, MPI_SUM,
                                            c->comm, &c->req[k->first_req + r]));
        if (rc)
            return rc;
    }
    return 0;
}

/* Starts every bucket from `next` on whose tensors are all final, in order. */
static void start_ready(NnComm *c)
{
    while (c->next < c->n_buckets && c->bucket[c->next].pending == 0 && !c->err.code) {
        if (start_bucket(c, c->next, &c->err))
            return;
        c->stats.started_early++, c->stats.started_total++;
        c->next++;
    }
}

/* NnGraph.after_node: node i's parameter gradients are final. */
static void after_node(void *ctx, int i)
{
    NnComm *c = ctx;
    double t0 = MPI_Wtime();
    const NnNode *nd = &c->g->nodes[i];
    int ids[2] = {nd->weight, nd->bias}, any = 0;
    for (int k = 0; k < 2; k++)
        if (ids[k] >= 0 && c->bucket_of[ids[k]] >= 0) {
            c->bucket[c->bucket_of[ids[k]]].pending--;
            any = 1;
        }
    if (any)
        start_ready(c);
    /* let the library move started reductions on (no progress thread in most MPIs); NCCL
     * progresses on the device */
    int flag;
    if (c->next > 0 && !c->nccl)
        MPI_Testall(c->bucket[c->next - 1].first_req + c->bucket[c->next - 1].n_req, c->req, &flag,
                    MPI_STATUSES_IGNORE);
    c->stats.progress_s += MPI_Wtime() - t0;
}

/* 1 when every rank can have a GPU of its own (NCCL refuses two ranks on one GPU): on each node
 * at least as many GPUs as ranks. Collective. */
static int gpu_per_rank(NnComm *c)
{
    int gpus = 0;
#if ONFH_GPU
    NnCudaInfo info;
    nn_cuda_info(&info);
    gpus = info.device_count;
#endif
    MPI_Comm node;
    int local = 1, ok, all = 0;
    if (MPI_Comm_split_type(c->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    ok = gpus >= local;
    if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, c->comm) != MPI_SUCCESS)
        return 0;
    return all;
}

/* Every rank opens the NCCL communicator with rank 0's id; a failure anywhere is every rank's. */
static int open_nccl(NnComm *c, Err *e)
{
    unsigned char id[NN_NCCL_ID_BYTES] = {0};
    char why[256] = "";
    int rc = 0;
    if (c->rank == 0 && nn_nccl_unique_id(id, why, sizeof why))
        rc = nccl_err(e, why);
    if (nn_mpi_agree(c->comm, e))
        return e->code;
    rc = MPI_CALL(e, MPI_Bcast(id, NN_NCCL_ID_BYTES, MPI_BYTE, 0, c->comm));
    if (rc == 0 && nn_nccl_open(&c->nccl, c->size, c->rank, id, why, sizeof why))
        rc = nccl_err(e, why);
    return nn_mpi_agree(c->comm, e) ? e->code : rc;
}

int nn_comm_open(NnComm **out, MPI_Comm comm, NnGraph *g, size_t bucket_bytes,
                 const char *transport, Err *e)
{
    *out = NULL;
    if (bucket_bytes == 0)
        return err_set(e, ERR_CONFIG, "comm: bucket size must be positive");
    const ParamStore *s = &g->store;
    NnComm *c = mem_calloc(1, sizeof *c);
    int *refs = mem_calloc((size_t)s->n_views + 1, sizeof *refs);
    if (!c || !refs) {
        mem_free(c), mem_free(refs);
        return err_set(e, ERR_NOMEM, "comm: out of memory");
    }
    c->g = g;
    c->comm = MPI_COMM_NULL;
    int rc = MPI_CALL(e, MPI_Comm_dup(comm, &c->comm));
    if (rc)
        goto fail;
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    /* NCCL for the cuda backend on several ranks (auto) or when asked (nccl) */
    int on_cuda = !strcmp(g->be->name, "cuda");
    if (!strcmp(transport, "nccl") && !on_cuda) {
        rc = err_set(e, ERR_CONFIG,
                     "train.comm nccl: gradients live on the %s backend; NCCL needs cuda (use "
                     "mpi or auto)",
                     g->be->name);
        goto fail;
    }
    if (strcmp(transport, "auto") && strcmp(transport, "mpi") && strcmp(transport, "nccl")) {
        rc = err_set(e, ERR_CONFIG, "train.comm '%s': expected auto, mpi or nccl", transport);
        goto fail;
    }
    if (!strcmp(transport, "nccl") ||
        (!strcmp(transport, "auto") && on_cuda && c->size > 1 && gpu_per_rank(c))) {
        rc = open_nccl(c, e);
        if (rc)
            goto fail;
    }
    c->device_pointers = c->nccl != NULL;
    c->staged = g->be->mem->device && !c->device_pointers;
    /* one node per parameter, or a bucket could start before a gradient is final */
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].weight >= 0)
            refs[g->nodes[i].weight]++;
        if (g->nodes[i].bias >= 0)
            refs[g->nodes[i].bias]++;
    }
    for (int v = 0; v < s->n_views; v++)
        if (s->views[v].kind == NN_PARAM && refs[v] > 1) {
            rc = err_set(e, ERR_INTERNAL,
                         "comm: parameter %s belongs to %d nodes; bucketed all-reduce needs one",
                         s->views[v].name, refs[v]);
            goto fail;
        }
    /* buckets from the end of the buffer: whole tensors, about bucket_bytes each */
    c->bucket_of = mem_alloc((size_t)(s->n_views ? s->n_views : 1) * sizeof *c->bucket_of);
    c->bucket = mem_calloc((size_t)s->n_views + 1, sizeof *c->bucket);
    if (!c->bucket_of || !c->bucket) {
        rc = err_set(e, ERR_NOMEM, "comm: out of memory");
        goto fail;
    }
    size_t hi = s->n_param, per = bucket_bytes / sizeof(float);
    Bucket *k = NULL;
    for (int v = s->n_views - 1; v >= 0; v--) {
        c->bucket_of[v] = -1;
        if (s->views[v].kind != NN_PARAM)
            continue;
        if (!k) {
            k = &c->bucket[c->n_buckets++];
            k->hi = hi;
        }
        k->lo = s->views[v].offset;
        k->views++;
        c->bucket_of[v] = (int)(k - c->bucket);
        if (refs[v] == 0) /* reported by no node: final only once backward ends */
            k->views += 1 << 24;
        if ((k->hi - k->lo) >= per)
            hi = k->lo, k = NULL;
    }
    if (c->n_buckets)
        c->bucket[c->n_buckets - 1].lo = 0;
    for (int b = 0; b < c->n_buckets; b++) {
        Bucket *q = &c->bucket[b];
        q->first_req = c->n_req_total;
        q->n_req = (int)((q->hi - q->lo + PIECE_FLOATS - 1) / PIECE_FLOATS);
        c->n_req_total += q->n_req;
    }
    c->req = mem_alloc((size_t)(c->n_req_total ? c->n_req_total : 1) * sizeof *c->req);
    c->n_buf_req = (int)((s->n_buffer + PIECE_FLOATS - 1) / PIECE_FLOATS);
    c->buf_req = mem_alloc((size_t)(c->n_buf_req + 1) * sizeof *c->buf_req);
    for (int r = 0; c->buf_req && r <= c->n_buf_req; r++)
        c->buf_req[r] = MPI_REQUEST_NULL;
    if (c->staged)
        c->staging = mem_alloc((s->n_param ? s->n_param : 1) * sizeof(float));
    if (!c->req || !c->buf_req || (c->staged && !c->staging)) {
        rc = err_set(e, ERR_NOMEM, "comm: out of memory for %zu MiB of gradients",
                     s->n_param * sizeof(float) >> 20);
        goto fail;
    }
    for (int r = 0; r < c->n_req_total; r++)
        c->req[r] = MPI_REQUEST_NULL;
    c->stats.buckets = c->n_buckets;
    c->stats.bytes = s->n_param * sizeof(float);
    g->after_node = after_node;
    g->after_node_ctx = c;
    mem_free(refs);
    *out = c;
    return 0;
fail:
    mem_free(refs);
    nn_comm_close(c);
    return rc ? rc : ERR_INTERNAL;
}

void nn_comm_close(NnComm *c)
{
    if (!c)
        return;
    if (c->g && c->g->after_node_ctx == c)
        c->g->after_node = NULL, c->g->after_node_ctx = NULL;
    nn_nccl_close(c->nccl);
    if (c->comm != MPI_COMM_NULL)
        MPI_Comm_free(&c->comm);
    mem_free(c->bucket), mem_free(c->bucket_of), mem_free(c->req), mem_free(c->staging);
    mem_free(c->buf_req);
    mem_free(c);
}

/* Where the BN buffers are summed: the store's host copy (downloaded on a device backend). */
static float *buffers_for_transport(NnComm *c)
{
    const NnMemory *m = c->g->be->mem;
    ParamStore *s = &c->g->store;
    int host_copy = m->device && !c->device_pointers;
    if (host_copy)
        m->download(s->buffers, c->g->dev.buffers, s->n_buffer * sizeof(float));
    return host_copy ? s->buffers : c->g->dev.buffers;
}

/* The buffers' sum divided by the rank count, back where the kernels read them. */
static void buffers_done(NnComm *c)
{
    const NnMemory *m = c->g->be->mem;
    ParamStore *s = &c->g->store;
    int host_copy = m->device && !c->device_pointers;
    float *p = host_copy ? s->buffers : c->g->dev.buffers, size = (float)c->size;
    for (size_t i = 0; i < s->n_buffer; i++)
        p[i] /= size;
    if (host_copy)
        m->upload(c->g->dev.buffers, s->buffers, s->n_buffer * sizeof(float));
}

int nn_comm_time_allreduce(NnComm *c, int reps, Err *e)
{
    nn_graph_zero_grads(c->g); /* zeros sum to zeros: no denormals or NaNs to slow the sums */
    if (c->size == 1 || reps < 1)
        return 0; /* one rank reduces nothing */
    if (c->nccl)
        c->g->be->mem->sync(); /* the zeroing, before the clock starts */
    double total = 0;
    for (int r = 0; r <= reps; r++) {
        int rc = MPI_CALL(e, MPI_Barrier(c->comm)); /* every rank starts together, as after a
                                                       step whose backward took as long */
        double t0 = MPI_Wtime();
        for (int b = 0; rc == 0 && b < c->n_buckets; b++)
            rc = start_bucket(c, b, e);
        char why[256];
        if (rc == 0 && c->nccl && nn_nccl_sync(c->nccl, why, sizeof why))
            rc = nccl_err(e, why);
        if (rc == 0 && c->n_req_total && !c->nccl)
            rc = MPI_CALL(e, MPI_Waitall(c->n_req_total, c->req, MPI_STATUSES_IGNORE));
        if (rc)
            return rc;
        if (c->staged)
            c->g->be->mem->upload(c->g->dev.grads, c->staging, c->g->dev.n_param * sizeof(float));
        if (r > 0) /* the first run pays for first touches and the library's setup */
            total += MPI_Wtime() - t0;
    }
    c->stats.allreduce_s = total / reps;
    return 0;
}

void nn_comm_begin_backward(NnComm *c)
{
    c->t_begin = MPI_Wtime();
    c->next = 0;
    c->err = (Err){0};
    for (int b = 0; b < c->n_buckets; b++)
        c->bucket[b].pending = c->bucket[b].views, c->bucket[b].started = 0;
    /* forward has updated the BN running statistics, which backward does not read: their
     * average travels while backward runs */
    if (c->size == 1)
        return;
    if (c->nccl) { /* averaged on the device, in place */
        char why[256];
        if (c->g->store.n_buffer &&
            nn_nccl_allreduce(c->nccl, c->g->dev.buffers, c->g->store.n_buffer, 1, why, sizeof why))
            nccl_err(&c->err, why);
        return;
    }
    float *p = buffers_for_transport(c);
    size_t n = c->g->store.n_buffer;
    for (int r = 0; r < c->n_buf_req && !c->err.code; r++) {
        size_t lo = (size_t)r * PIECE_FLOATS, k = n - lo < PIECE_FLOATS ? n - lo : PIECE_FLOATS;
        MPI_CALL(&c->err, MPI_Iallreduce(MPI_IN_PLACE, p + lo, (int)k, MPI_FLOAT, MPI_SUM, c->comm,
                                         &c->buf_req[r]));
    }
}

int nn_comm_end_backward(NnComm *c, Err *e)
{
    double t0 = MPI_Wtime();
    int rc = 0;
    if (c->err.code) {
        *e = c->err;
        rc = c->err.code;
    }
    for (; rc == 0 && c->next < c->n_buckets; c->next++, c->stats.started_total++)
        rc = start_bucket(c, c->next, e);
    if (rc == 0 && c->nccl) {
        /* the host waits too, so wait_s is the exposed reduction time as on MPI (the device
         * would only need nn_nccl_join; the optimizer's launches then start after it) */
        char why[256];
        if (nn_nccl_sync(c->nccl, why, sizeof why))
            rc = nccl_err(e, why);
    }
    if (rc == 0 && c->n_req_total && !c->nccl)
        rc = MPI_CALL(e, MPI_Waitall(c->n_req_total, c->req, MPI_STATUSES_IGNORE));
    if (rc == 0 && c->staged && c->size > 1)
        c->g->be->mem->upload(c->g->dev.grads, c->staging, c->g->dev.n_param * sizeof(float));
    if (rc == 0 && c->size > 1 && c->n_buf_req && !c->nccl) {
        rc = MPI_CALL(e, MPI_Waitall(c->n_buf_req, c->buf_req, MPI_STATUSES_IGNORE));
        if (rc == 0)
            buffers_done(c);
    }
    double t1 = MPI_Wtime();
    c->stats.steps++;
    c->stats.wait_s += t1 - t0;
    c->stats.backward_s += t1 - c->t_begin;
    return rc;
}

/* MPI_Bcast of n bytes in pieces. */
static int bcast(NnComm *c, void *p, size_t n, Err *e)
{
    for (size_t at = 0; at < n; at += PIECE_FLOATS) {
        size_t piece = n - at < PIECE_FLOATS ? n - at : PIECE_FLOATS;
        int rc = MPI_CALL(e, MPI_Bcast((char *)p + at, (int)piece, MPI_BYTE, 0, c->comm));
        if (rc)
            return rc;
    }
    return 0;
}

int nn_comm_broadcast(NnComm *c, void *p, size_t bytes, Err *e)
{
    return bcast(c, p, bytes, e);
}

int nn_comm_broadcast_store(NnComm *c, Err *e)
{
    NnGraph *g = c->g;
    ParamStore *s = &g->store;
    nn_graph_download(g); /* rank 0's uploaded state; on the others, overwritten below */
    int rc = bcast(c, s->params, s->n_param * sizeof(float), e);
    for (int k = 0; rc == 0 && k < s->n_moments; k++)
        rc = bcast(c, s->moments[k], s->n_param * sizeof(float), e);
    if (rc == 0)
        rc = bcast(c, s->buffers, s->n_buffer * sizeof(float), e);
    if (rc == 0)
        rc = bcast(c, s->counters, s->n_counter * sizeof(int64_t), e);
    if (rc == 0)
        nn_graph_upload(g);
    return rc;
}

int nn_comm_average_buffers(NnComm *c, Err *e)
{
    NnGraph *g = c->g;
    ParamStore *s = &g->store;
    if (c->size == 1 || s->n_buffer == 0)
        return 0;
    if (c->nccl) {
        char why[256];
        if (nn_nccl_allreduce(c->nccl, g->dev.buffers, s->n_buffer, 1, why, sizeof why) ||
            nn_nccl_sync(c->nccl, why, sizeof why))
            return nccl_err(e, why);
        return 0;
    }
    float *p = buffers_for_transport(c);
    for (size_t at = 0; at < s->n_buffer; at += PIECE_FLOATS) {
        size_t n = s->n_buffer - at < PIECE_FLOATS ? s->n_buffer - at : PIECE_FLOATS;
        int rc =
            MPI_CALL(e, MPI_Allreduce(MPI_IN_PLACE, p + at, (int)n, MPI_FLOAT, MPI_SUM, c->comm));
        if (rc)
            return rc;
    }
    buffers_done(c);
    return 0;
}

int nn_comm_sum(NnComm *c, double *v, int n, Err *e)
{
    if (c->size == 1)
        return 0;
    return MPI_CALL(e, MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, c->comm));
}

int nn_comm_agree(NnComm *c, Err *e)
{
    return nn_mpi_agree(c->comm, e);
}

int nn_mpi_agree(MPI_Comm comm, Err *e)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    if (size == 1)
        return e->code;
    int mine = e->code ? rank : size, first = size;
    Err local = {0};
    if (MPI_CALL(&local, MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm))) {
        *e = local;
        return e->code;
    }
    if (first == size) {
        e->code = 0;
        return 0;
    }
    if (MPI_CALL(&local, MPI_Bcast(e, (int)sizeof *e, MPI_BYTE, first, comm)))
        *e = local;
    return e->code;
}
