/* loader.h: the prefetching batch loader of `onfh train`.
 *
 * A thread reads the slices of one partition from cohort.h5 (one HDF5 chunk per slice, so
 * random access reads what it needs), augments them (lib/image/augment.h) and fills batches
 * into two slots while the caller computes on the previous one. Sample order is a Philox
 * permutation keyed by (seed, PHILOX_SHUFFLE, epoch), so epoch e's order, a sample's
 * augmentation and therefore a resumed run are independent of timing and of where a run
 * stopped. When the partition's decoded slices fit in spec.cache_bytes, loader_open reads them
 * all (in the caller's thread) and the thread only augments: epochs cost no HDF5 read and no
 * decompression, and HDF5, which Debian builds without thread safety, is never called from a
 * second thread. A partition too large for the cache is read batch by batch in the caller's
 * thread, without prefetching. HDF5 calls go through one process-wide lock (loader_h5_lock). */
#ifndef ONFH_TRAIN_LOADER_H
#define ONFH_TRAIN_LOADER_H

#include <stdint.h>

#include "lib/image/augment.h"
#include "lib/util/err.h"

typedef struct LoaderSpec {
    const char *cohort;   /* cohort.h5 */
    const int32_t *rows;  /* (n) /slices rows of the partition */
    const int32_t *label; /* (n) their labels */
    int n;
    int batch;
    int channels;           /* planes per image (copies of the slice) */
    int grid;               /* side of the stored slices */
    int size;               /* side of the images produced */
    const Augment *augment; /* NULL: none (validation, test) */
    uint64_t seed;
    int shuffle;        /* 1: Philox order per epoch; 0: partition order */
    int drop_last;      /* 1: every batch full (training); 0: the last one may be short */
    size_t cache_bytes; /* keep decoded slices in memory up to this size (0: read every time) */
    /* Data parallelism: batch is the global batch, of which this loader yields share `rank` of
     * `ranks` (0 and 0: the whole batch): contiguous shares, the first count % ranks one
     * sample larger (7 on 2 ranks: 4 + 3). Order and augmentation are keyed by sample, so the
     * samples of a global batch and their pixels do not depend on the rank count. */
    int rank, ranks;
} LoaderSpec;

typedef struct Loader Loader;

/* Copies spec (rows and labels too) and starts the thread. */
int loader_open(Loader **l, const LoaderSpec *spec, Err *e);
/* Batches in one epoch. */
int loader_batches(const Loader *l);
/* Starts reading epoch `epoch` from sample position `start` (a multiple of the batch size:
 * where a resumed run stopped). Any epoch in progress is abandoned. */
void loader_start(Loader *l, uint64_t epoch, int start);
/* Next batch of the epoch (this rank's share of it): images (count, channels, size, size) NCHW,
 * labels (count), rows (count) their /slices rows. count = 0 at the end of the epoch. The buffers
 * stay valid until the next call. Errors (an unreadable slice) name the file and row. */
int loader_next(Loader *l, const float **images, const int **labels, const int32_t **rows,
                int *count, Err *e);
/* The global batch of the batch loader_next handed out last: its labels (total of them, in
 * batch order) and where this rank's share starts in it (*first). */
void loader_global_batch(const Loader *l, const int **labels, int *total, int *first);
/* Seconds the caller waited for batches since loader_open (the loader's cost to training). */
double loader_wait_seconds(const Loader *l);
/* Stops the thread at a batch boundary and waits until it no longer touches HDF5. */
void loader_stop(Loader *l);
void loader_close(Loader *l);

/* The lock every HDF5 call takes while loaders run (Debian's HDF5 is not thread-safe): the
 * caller holds it around its own HDF5 use, such as saving a checkpoint. */
void loader_h5_lock(void);
void loader_h5_unlock(void);

#endif
