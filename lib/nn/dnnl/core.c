/* core.c: the machinery every oneDNN kernel shares: the engine and stream, primitive creation
 * that reports failures and implementations, memory objects bound per call, reorders, the
 * primitive cache and the scratch arena.
 *
 * Why abort on a oneDNN error: backend.h's kernels return nothing and cannot fail; every
 * descriptor was validated by nn_*_setup. What remains (oneDNN rejecting a shape, running out
 * of memory while JIT-compiling) is a bug or an unusable machine, found the first time a
 * descriptor runs (usually during the graph's planning, which calls conv2d_workspace). The
 * message names the primitive and the oneDNN status, which is what one needs to debug it.
 *
 * Why a cache: a oneDNN primitive is JIT-compiled code specialised to one shape, tens of
 * microseconds to milliseconds to create. Training repeats the same few hundred shapes every
 * step, so each is created once and found again by key. */
#if ONFH_HAVE_DNNL

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl_debug.h>
#include <omp.h>

#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/nn/dnnl/nn_dnnl.h"
#include "lib/util/mem.h"

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static dnnl_primitive_attr_t attrs[2][2]; /* [user_scratchpad][accumulate] */
static int verbose = -1;

void dnnl_be_check(dnnl_status_t s, const char *what)
{
    if (s == dnnl_success)
        return;
    fprintf(stderr, "onfh: oneDNN failed: %s: %s\n", what, dnnl_status2str(s));
    abort();
}

int dnnl_be_verbose(void)
{
    if (verbose < 0) {
        const char *v = getenv("ONFH_DNNL_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
    }
    return verbose;
}

dnnl_engine_t dnnl_be_engine(void)
{
    if (!engine)
        dnnl_be_check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine");
    return engine;
}

dnnl_stream_t dnnl_be_stream(void)
{
    if (!stream)
        dnnl_be_check(dnnl_stream_create(&stream, dnnl_be_engine(), dnnl_stream_default_flags),
                      "stream");
    return stream;
}

const_dnnl_primitive_attr_t dnnl_be_attr(int user_scratchpad, int accumulate)
{
    dnnl_primitive_attr_t *a = &attrs[user_scratchpad != 0][accumulate != 0];
    if (*a)
        return *a;
    dnnl_be_check(dnnl_primitive_attr_create(a), "attr");
    if (user_scratchpad)
        dnnl_be_check(dnnl_primitive_attr_set_scratchpad_mode(*a, dnnl_scratchpad_mode_user),
                      "attr scratchpad");
    if (accumulate) {
        dnnl_post_ops_t po;
        dnnl_be_check(dnnl_post_ops_create(&po), "post-ops");
        dnnl_be_check(dnnl_post_ops_append_sum(po, 1.0f), "post-op sum");
        dnnl_be_check(dnnl_primitive_attr_set_post_ops(*a, po), "attr post-ops");
        dnnl_post_ops_destroy(po);
    }
    return *a;
}

dnnl_primitive_desc_t dnnl_be_pd(const void *op_desc, const_dnnl_primitive_attr_t attr,
                                 const_dnnl_primitive_desc_t hint, const char *what)
{
    dnnl_primitive_desc_t pd;
    dnnl_be_check(dnnl_primitive_desc_create(&pd, op_desc, attr, dnnl_be_engine(), hint), what);
    return pd;
}

dnnl_primitive_t dnnl_be_primitive(const_dnnl_primitive_desc_t pd, const char *what)
{
    const char *impl = "?";
    dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind);
    if (kind == dnnl_convolution && strncmp(impl, "ref", 3) == 0)
        fprintf(stderr, "onfh: warning: oneDNN runs %s with the slow reference kernel %s\n", what,
                impl);
    else if (dnnl_be_verbose())
        fprintf(stderr, "onfh dnnl: %s: %s\n", what, impl);
    dnnl_primitive_t p;
    dnnl_be_check(dnnl_primitive_create(&p, pd), what);
    return p;
}

const dnnl_memory_desc_t *dnnl_be_arg_md(const_dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

size_t dnnl_be_scratch_bytes(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

dnnl_memory_desc_t dnnl_be_md(int nd, const dnnl_dim_t *d, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    dnnl_be_check(dnnl_memory_desc_init_by_tag(&md, nd, d, dnnl_f32, tag), "memory descriptor");
    return md;
}

dnnl_memory_t dnnl_be_memory(const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    dnnl_be_check(dnnl_memory_create(&m, md, dnnl_be_engine(), DNNL_MEMORY_NONE), "memory");
    return m;
}

/* oneDNN takes handles as void *; inputs are never written through them. */
void dnnl_be_bind(dnnl_memory_t m, const void *p)
{
    dnnl_be_check(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p), "set data handle");
}

void dnnl_be_exec_arg(DnnlBeExec *e, const_dnnl_primitive_desc_t pd, int arg)
{
    if (e->n_args >= DNNL_BE_MAX_ARGS) {
        fprintf(stderr, "onfh: dnnl backend: too many arguments (a bug)\n");
        abort();
    }
    e->args[e->n_args].arg = arg;
    e->args[e->n_args].memory = dnnl_be_memory(dnnl_be_arg_md(pd, arg));
    e->n_args++;
}

void dnnl_be_exec_bind(DnnlBeExec *e, int arg, const void *p)
{
    for (int i = 0; i < e->n_args; i++)
        if (e->args[i].arg == arg) {
            dnnl_be_bind(e->args[i].memory, p);
            return;
        }
    fprintf(stderr, "onfh: dnnl backend: binding argument %d it does not have (a bug)\n", arg);
    abort();
}

void dnnl_be_exec_run(DnnlBeExec *e, const char *what)
{
    dnnl_be_check(dnnl_primitive_execute(e->prim, dnnl_be_stream(), e->n_args, e->args), what);
    dnnl_be_check(dnnl_stream_wait(dnnl_be_stream()), what);
}

void dnnl_be_exec_free(DnnlBeExec *e)
{
    for (int i = 0; i < e->n_args; i++)
        dnnl_memory_destroy(e->args[i].memory);
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

void dnnl_be_reorder_init(DnnlBeReorder *r, const dnnl_memory_desc_t *from,
                          const dnnl_memory_desc_t *to, int accumulate, const char *what)
{
    memset(r, 0, sizeof *r);
    r->dst_bytes = dnnl_memory_desc_get_size(to);
    if (!accumulate && dnnl_memory_desc_equal(from, to))
        return;
    dnnl_primitive_desc_t pd;
    dnnl_be_check(dnnl_reorder_primitive_desc_create(&pd, from, dnnl_be_engine(), to,
                                                     dnnl_be_engine(), dnnl_be_attr(0, accumulate)),
                  what);
    r->ex.prim = dnnl_be_primitive(pd, what);
    dnnl_be_exec_arg(&r->ex, pd, DNNL_ARG_FROM);
    dnnl_be_exec_arg(&r->ex, pd, DNNL_ARG_TO);
    dnnl_primitive_desc_destroy(pd);
}

void dnnl_be_reorder_run(DnnlBeReorder *r, const void *from, void *to, const char *what)
{
    dnnl_be_exec_bind(&r->ex, DNNL_ARG_FROM, from);
    dnnl_be_exec_bind(&r->ex, DNNL_ARG_TO, to);
    dnnl_be_exec_run(&r->ex, what);
}

void dnnl_be_reorder_free(DnnlBeReorder *r)
{
    dnnl_be_exec_free(&r->ex);
}

// ---------------------------------------------------------------------------------------------
// The primitive cache: a chained hash table of a fixed 1024 buckets. A model has at most a few
// hundred distinct op shapes, so chains stay short and the table never needs to grow.

#define CACHE_BUCKETS 1024

typedef struct CacheNode CacheNode;
struct CacheNode {
    DnnlBeKey key;
    void *entry;
    void (*destroy)(void *);
    CacheNode *next;
};

static CacheNode *buckets[CACHE_BUCKETS];

/* FNV-1a over the key's ints. */
static unsigned key_hash(const DnnlBeKey *k)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < DNNL_BE_KEY_INTS; i++) {
        h ^= (uint32_t)k->v[i];
        h *= 16777619u;
    }
    return h % CACHE_BUCKETS;
}

void *dnnl_be_cache_find(const DnnlBeKey *k)
{
    for (CacheNode *n = buckets[key_hash(k)]; n; n = n->next)
        if (memcmp(&n->key, k, sizeof *k) == 0)
            return n->entry;
    return NULL;
}

void dnnl_be_cache_add(const DnnlBeKey *k, void *entry, void (*destroy)(void *))
{
    CacheNode *n = mem_alloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "onfh: dnnl backend: out of memory for the primitive cache\n");
        abort();
    }
    unsigned h = key_hash(k);
    n->key = *k;
    n->entry = entry;
    n->destroy = destroy;
    n->next = buckets[h];
    buckets[h] = n;
}

// ---------------------------------------------------------------------------------------------
// The scratch arena

static void *arena; /* aligned to 64 */
static size_t arena_bytes;

void *dnnl_be_arena(size_t bytes)
{
    if (bytes <= arena_bytes)
        return arena;
    mem_free(arena);
    /* at least 1 KiB: mem_alloc starts such blocks on a cache line (mem.h) */
    if (bytes < 1024)
        bytes = 1024;
    arena = mem_alloc(bytes);
    if (!arena) {
        fprintf(stderr, "onfh: dnnl backend: out of memory for %zu bytes of scratch\n", bytes);
        abort();
    }
    arena_bytes = bytes;
    return arena;
}

void nn_dnnl_set_threads(int n)
{
    if (n > 0)
        omp_set_num_threads(n);
}

void nn_dnnl_release(void)
{
    for (int b = 0; b < CACHE_BUCKETS; b++) {
        CacheNode *n = buckets[b];
        while (n) {
            CacheNode *next = n->next;
            n->destroy(n->entry);
            mem_free(n);
            n = next;
        }
        buckets[b] = NULL;
    }
    mem_free(arena);
    arena = NULL;
    arena_bytes = 0;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (attrs[i][j]) {
                dnnl_primitive_attr_destroy(attrs[i][j]);
                attrs[i][j] = NULL;
            }
    if (stream)
        dnnl_stream_destroy(stream);
    if (engine)
        dnnl_engine_destroy(engine);
    stream = NULL;
    engine = NULL;
}

// ---------------------------------------------------------------------------------------------

DNNL_BE_CLONES static void accumulate_range(size_t n, const float *restrict x, float *restrict y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

unsigned dnnl_be_fresh;

void dnnl_be_set_fresh_grads(unsigned mask)
{
    dnnl_be_fresh = mask;
}

void dnnl_be_deliver(unsigned k, size_t n, const float *x, float *y)
{
    if (dnnl_be_fresh >> k & 1) {
        if (x != y)
            memcpy(y, x, n * sizeof(float));
    } else {
        dnnl_be_accumulate(n, x, y);
    }
}

void dnnl_be_accumulate(size_t n, const float *x, float *y)
{
    /* chunks of 4096 floats keep each thread's run contiguous and vector-aligned */
    size_t chunks = (n + 4095) / 4096;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * 4096;
        size_t len = n - i0 < 4096 ? n - i0 : 4096;
        accumulate_range(len, x + i0, y + i0);
    }
}

/* Channel views (backend.h channel_views): NHWC rows of c floats, the source's ldx floats
 * apart and the destination's ldy; y = x (add 0) or y += x (add 1). */
void dnnl_be_rows(size_t rows, int c, const float *x, int ldx, float *y, int ldy, int add)
{
#pragma omp parallel for if (rows * (size_t)c >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * (size_t)ldx;
        float *yr = y + r * (size_t)ldy;
        if (add)
            accumulate_range((size_t)c, xr, yr);
        else
            memcpy(yr, xr, (size_t)c * sizeof(float));
    }
}

#else

#include "lib/nn/dnnl/nn_dnnl.h"

void nn_dnnl_set_threads(int n)
{
    (void)n;
}

void nn_dnnl_release(void)
{
}

#endif
