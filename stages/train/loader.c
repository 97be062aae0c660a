/* loader.c: a reader thread filling two batch slots (see loader.h).
 *
 * Protocol, under one mutex: the consumer sets `epoch`/`start` and bumps `generation`; the
 * thread notices, computes the epoch's order and fills slots 0, 1, 0, ... as they come free,
 * marking each full slot with its sequence number; the consumer takes slot seq % 2 when it is
 * full and frees it on the next call. A new generation makes the thread abandon what it was
 * reading; `quit` ends it. */
#include "stages/train/loader.h"

#include <hdf5.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/util/mem.h"
#include "lib/util/progress.h"
#include "lib/util/philox.h"

typedef struct Slot {
    float *images;
    int *labels;
    int32_t *rows;
    int count;
    int *all_labels; /* (batch) labels of the whole global batch */
    int total;       /* samples in the global batch */
    int first;       /* this rank's share starts at sample `first` of it */
    long seq;        /* batch index in the epoch it holds, -1 when free */
    long gen;        /* generation it was filled for */
    int error;       /* reading failed: msg holds why */
    char msg[512];
} Slot;

struct Loader {
    LoaderSpec spec;
    int32_t *rows, *label, *order;
    Augment augment;
    float *plane;    /* (grid, grid) scratch of the thread */
    float *cache;    /* (n, grid, grid) decoded slices, or NULL */
    uint8_t *cached; /* (n) 1 once cache holds item i */
    Slot slot[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long generation, next_seq;
    uint64_t epoch;
    int start;
    int quit, busy, started;
    int sync;        /* no thread: the partition does not fit the cache (see loader_open) */
    hid_t sync_file; /* sync mode: cohort.h5, opened on first use (-1 before) */
    double waited;
};

/* HDF5 as Debian builds it is not thread-safe: every HDF5 call of every loader thread, and the
 * caller's own (checkpoints), go through this one lock. */
static pthread_mutex_t h5_mu = PTHREAD_MUTEX_INITIALIZER;

void loader_h5_lock(void)
{
    pthread_mutex_lock(&h5_mu);
}

void loader_h5_unlock(void)
{
    pthread_mutex_unlock(&h5_mu);
}

int loader_batches(const Loader *l)
{
    int b = l->spec.batch;
    return l->spec.drop_last ? l->spec.n / b : (l->spec.n + b - 1) / b;
}

/* Fisher-Yates with Philox draws: the order of epoch `epoch`. */
static void make_order(Loader *l, uint64_t epoch)
{
    int n = l->spec.n;
    for (int i = 0; i < n; i++)
        l->order[i] = i;
    if (!l->spec.shuffle)
        return;
    Philox p;
    philox_init(&p, l->spec.seed, PHILOX_SHUFFLE, epoch);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)philox_below(&p, (uint32_t)i + 1);
        int32_t t = l->order[i];
        l->order[i] = l->order[j], l->order[j] = t;
    }
}

/* Fills slot s with batch `seq` of the current epoch (outside the lock: only this thread
 * writes a slot that is not full). */
static void fill(Loader *l, hid_t f, Slot *s, long seq, uint64_t epoch)
{
    const LoaderSpec *sp = &l->spec;
    size_t plane = (size_t)sp->size * sp->size;
    int first = (int)seq * sp->batch;
    int total = sp->n - first < sp->batch ? sp->n - first : sp->batch;
    /* this rank's contiguous share [b0, b0 + count) of the global batch */
    int ranks = sp->ranks > 0 ? sp->ranks : 1, base = total / ranks, extra = total % ranks;
    int b0 = sp->rank * base + (sp->rank < extra ? sp->rank : extra);
    int count = base + (sp->rank < extra);
    for (int k = 0; k < total; k++)
        s->all_labels[k] = l->label[l->order[first + k]];
    s->total = total, s->first = b0;
    first += b0;
    s->error = 0;
    for (int k = 0; k < count; k++) {
        int item = l->order[first + k];
        int32_t row = l->rows[item];
        size_t gg = (size_t)sp->grid * sp->grid;
        const float *src = l->plane;
        if (l->cache && l->cached[item]) {
            src = l->cache + (size_t)item * gg;
        } else {
            Err e = {0};
            float *into = l->cache ? l->cache + (size_t)item * gg : l->plane;
            loader_h5_lock();
            int bad = h5_read_rows(f, "/slices/image", row, 1, H5T_NATIVE_FLOAT, into, &e);
            loader_h5_unlock();
            if (bad) {
                s->error = 1;
                snprintf(s->msg, sizeof s->msg, "%s", e.msg);
                break;
            }
            if (l->cache)
                l->cached[item] = 1;
            src = into;
        }
        float *dst = s->images + (size_t)k * sp->channels * plane;
        augment_slice(sp->augment ? &l->augment : NULL, sp->seed, epoch, (uint64_t)row, src,
                      sp->grid, sp->grid, dst, sp->size);
        for (int c = 1; c < sp->channels; c++)
            memcpy(dst + c * plane, dst, plane * sizeof(float));
        s->labels[k] = l->label[item];
        s->rows[k] = row;
    }
    s->count = count;
}

static void *run(void *arg)
{
    Loader *l = arg;
    hid_t f = -1;
    Err e = {0};
    /* a fully cached partition (read by loader_open) needs no file in this thread */
    int all_cached = l->cache != NULL;
    for (int i = 0; all_cached && i < l->spec.n; i++)
        all_cached = l->cached[i];
    if (!all_cached) {
        loader_h5_lock();
        if (h5_open_read(l->spec.cohort, &f, &e))
            f = -1;
        loader_h5_unlock();
    }
    pthread_mutex_lock(&l->mu);
    long gen = -1, seq = 0;
    uint64_t epoch = 0;
    for (;;) {
        /* nothing to do before the first loader_start, or once the epoch is read */
        while (!l->quit &&
               (l->generation < 0 || (l->generation == gen && seq >= loader_batches(l))))
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit)
            break;
        if (l->generation != gen) {
            gen = l->generation;
            epoch = l->epoch;
            seq = l->start / l->spec.batch;
            make_order(l, epoch);
        }
        if (seq >= loader_batches(l))
            continue;
        Slot *s = &l->slot[seq % 2];
        if (s->seq >= 0 && s->gen == gen) { /* not yet consumed */
            pthread_cond_wait(&l->cv, &l->mu);
            continue;
        }
        l->busy = 1;
        pthread_mutex_unlock(&l->mu);
        if (f < 0 && !all_cached) {
            s->error = 1, s->count = 0;
            snprintf(s->msg, sizeof s->msg, "%s", e.msg);
        } else {
            fill(l, f, s, seq, epoch);
        }
        pthread_mutex_lock(&l->mu);
        l->busy = 0;
        if (l->generation == gen) {
            s->seq = seq++, s->gen = gen;
        }
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    if (f >= 0) {
        loader_h5_lock();
        h5_close(f);
        loader_h5_unlock();
    }
    return NULL;
}

int loader_open(Loader **out, const LoaderSpec *spec, Err *e)
{
    Loader *l = mem_calloc(1, sizeof *l);
    if (!l)
        return err_set(e, ERR_NOMEM, "loader: out of memory");
    l->spec = *spec;
    int n = spec->n ? spec->n : 1;
    size_t img = (size_t)spec->batch * spec->channels * spec->size * spec->size;
    l->rows = mem_alloc((size_t)n * sizeof *l->rows);
    l->label = mem_alloc((size_t)n * sizeof *l->label);
    l->order = mem_alloc((size_t)n * sizeof *l->order);
    l->plane = mem_alloc((size_t)spec->grid * spec->grid * sizeof(float));
    int ok = l->rows && l->label && l->order && l->plane;
    size_t cache = (size_t)n * spec->grid * spec->grid * sizeof(float);
    if (ok && cache <= spec->cache_bytes) {
        l->cache = mem_alloc(cache); /* no cache if this fails: reading still works */
        l->cached = l->cache ? mem_calloc((size_t)n, 1) : NULL;
        if (!l->cached) {
            mem_free(l->cache);
            l->cache = NULL;
        }
    }
    for (int k = 0; k < 2 && ok; k++) {
        l->slot[k].images = mem_alloc(img * sizeof(float));
        l->slot[k].labels = mem_alloc((size_t)spec->batch * sizeof(int));
        l->slot[k].rows = mem_alloc((size_t)spec->batch * sizeof(int32_t));
        l->slot[k].all_labels = mem_alloc((size_t)spec->batch * sizeof(int));
        l->slot[k].seq = -1;
        ok = l->slot[k].images && l->slot[k].labels && l->slot[k].rows && l->slot[k].all_labels;
    }
    if (!ok) {
        loader_close(l);
        return err_set(e, ERR_NOMEM, "loader: out of memory for batches of %d", spec->batch);
    }
    memcpy(l->rows, spec->rows, (size_t)spec->n * sizeof *l->rows);
    memcpy(l->label, spec->label, (size_t)spec->n * sizeof *l->label);
    if (spec->augment)
        l->augment = *spec->augment;
    l->spec.rows = l->rows, l->spec.label = l->label;
    if (l->cache) {
        /* the partition fits: read it all here, in the caller's thread, so that the loader
         * thread never calls HDF5 (which Debian builds without thread safety) */
        hid_t f = -1;
        loader_h5_lock();
        int rc = h5_open_read(spec->cohort, &f, e);
        int opened = rc == 0;
        size_t gg = (size_t)spec->grid * spec->grid;
        for (int i = 0; rc == 0 && i < spec->n; i++) {
            rc = h5_read_rows(f, "/slices/image", l->rows[i], 1, H5T_NATIVE_FLOAT,
                              l->cache + (size_t)i * gg, e);
            l->cached[i] = rc == 0;
        }
        if (opened)
            h5_close(f);
        loader_h5_unlock();
        if (rc) {
            loader_close(l);
            return -1;
        }
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->generation = -1; /* nothing to read until loader_start */
    l->sync_file = -1;
    if (!l->cache) {
        /* Slices are read from cohort.h5 as batches are asked for, in the caller's thread:
         * Debian's HDF5 is built without thread safety, and a reader thread corrupted its
         * heap even with every call serialised under loader_h5_lock (a crash in HDF5's
         * free lists at exit, one run in five). Prefetching is for cached partitions. */
        l->sync = 1;
        l->started = 1;
        *out = l;
        return 0;
    }
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
        loader_close(l);
        return err_set(e, ERR_INTERNAL, "loader: cannot start its thread");
    }
    l->started = 1;
    *out = l;
    return 0;
}

void loader_start(Loader *l, uint64_t epoch, int start)
{
    if (l->sync) {
        l->epoch = epoch;
        l->next_seq = start / l->spec.batch;
        make_order(l, epoch);
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->epoch = epoch;
    l->start = start;
    l->generation++;
    l->next_seq = start / l->spec.batch;
    l->slot[0].seq = l->slot[1].seq = -1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

int loader_next(Loader *l, const float **images, const int **labels, const int32_t **rows,
                int *count, Err *e)
{
    double t0 = progress_now();
    if (l->sync) {
        *count = 0;
        if (l->next_seq >= loader_batches(l))
            return 0;
        loader_h5_lock();
        int rc = l->sync_file < 0 ? h5_open_read(l->spec.cohort, &l->sync_file, e) : 0;
        loader_h5_unlock();
        if (rc) {
            l->sync_file = -1;
            return -1;
        }
        Slot *s = &l->slot[0];
        fill(l, l->sync_file, s, l->next_seq++, l->epoch);
        l->waited += progress_now() - t0;
        if (s->error)
            return err_set(e, ERR_FORMAT, "%s", s->msg);
        *images = s->images, *labels = s->labels, *rows = s->rows, *count = s->count;
        return 0;
    }
    pthread_mutex_lock(&l->mu);
    /* free the slot handed out last time */
    Slot *prev = &l->slot[(l->next_seq + 1) % 2];
    if (prev->seq == l->next_seq - 1 && prev->gen == l->generation)
        prev->seq = -1;
    pthread_cond_broadcast(&l->cv);
    *count = 0;
    if (l->next_seq >= loader_batches(l)) {
        pthread_mutex_unlock(&l->mu);
        return 0;
    }
    Slot *s = &l->slot[l->next_seq % 2];
    while (!(s->seq == l->next_seq && s->gen == l->generation))
        pthread_cond_wait(&l->cv, &l->mu);
    int rc = 0;
    if (s->error) {
        rc = err_set(e, ERR_FORMAT, "%s", s->msg);
    } else {
        *images = s->images, *labels = s->labels, *rows = s->rows, *count = s->count;
    }
    l->next_seq++;
    pthread_mutex_unlock(&l->mu);
    l->waited += progress_now() - t0;
    return rc;
}

void loader_global_batch(const Loader *l, const int **labels, int *total, int *first)
{
    /* the slot handed out last: the only one in sync mode, else batch next_seq - 1's */
    const Slot *s = &l->slot[l->sync ? 0 : (l->next_seq + 1) % 2];
    *labels = s->all_labels, *total = s->total, *first = s->first;
}

double loader_wait_seconds(const Loader *l)
{
    return l->waited;
}

void loader_stop(Loader *l)
{
    if (l->sync) {
        l->next_seq = loader_batches(l);
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->generation++;
    l->next_seq = loader_batches(l); /* nothing more to hand out */
    l->start = l->next_seq * l->spec.batch;
    pthread_cond_broadcast(&l->cv);
    while (l->busy)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
}

void loader_close(Loader *l)
{
    if (!l)
        return;
    if (l->sync && l->sync_file >= 0) {
        loader_h5_lock();
        h5_close(l->sync_file);
        loader_h5_unlock();
    }
    if (l->started && !l->sync) {
        pthread_mutex_lock(&l->mu);
        l->quit = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (l->started) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    for (int k = 0; k < 2; k++) {
        mem_free(l->slot[k].images);
        mem_free(l->slot[k].labels);
        mem_free(l->slot[k].rows);
        mem_free(l->slot[k].all_labels);
    }
    mem_free(l->rows), mem_free(l->label), mem_free(l->order), mem_free(l->plane);
    mem_free(l->cache), mem_free(l->cached);
    mem_free(l);
}
