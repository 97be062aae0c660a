/* checkpoint.h: model checkpoints in HDF5 (layout: data-schema/checkpoint.md).
 *
 * A checkpoint holds everything a training run needs to resume bit for bit: every state_dict
 * tensor by its torchvision name (so tools/torch_to_onfh.py and tools/onfh_to_torch.py convert
 * both ways), the optimizer's moment buffers under the names PyTorch's optimizers use, and the
 * step, seed and data position (onfh's random streams are counter-based, so the seed and the
 * step are the whole RNG state). Files are written under a temporary name and renamed, so a
 * crash never leaves a file that looks finished, and carry no timestamps, so the same state
 * gives the same bytes. Reading is strict: a tensor missing, of another shape or left over is
 * an error naming it, except where the caller asks to keep its own head (NN_CKPT_NEW_HEAD). */
#ifndef ONFH_NN_CHECKPOINT_H
#define ONFH_NN_CHECKPOINT_H

#include <stdint.h>

#include "lib/nn/optimizer.h"
#include "lib/nn/tensor.h"
#include "lib/util/err.h"

typedef struct NnCheckpointInfo {
    char model[64];     /* architecture id (models.h) */
    int classes;        /* outputs */
    int in_channels;    /* image channels the model takes */
    int image_size;     /* side of the square input it was trained at */
    long step;          /* optimizer steps taken */
    long epoch;         /* epochs completed */
    long data_position; /* samples consumed in the current epoch */
    uint64_t seed;      /* run seed: with step, the state of every random stream */
    char config_sha256[65];
    char producer[128];   /* "onfh VERSION (COMMIT)", or the converting tool */
    int finished;         /* training ran to its end (or stopped early) */
    double best_val_loss; /* lowest validation loss so far (training state, for resuming) */
    long best_epoch;      /* epoch that reached it, -1 if none */
    long stale_epochs;    /* epochs since it improved (early stopping) */
    int has_optim;        /* optimizer state present */
    NnOptim optim;
} NnCheckpointInfo;

enum {
    NN_CKPT_WEIGHTS_ONLY = 1, /* load the state_dict, ignore optimizer state */
    /* Tensors whose shape differs (a 1000-class ImageNet head on a 2-class model) are left as
     * they are instead of failing; how many is returned through *skipped. */
    NN_CKPT_NEW_HEAD = 2,
};

/* Writes s (parameters, buffers, counters, and optimizer moments when info->has_optim). */
int nn_checkpoint_save(const char *path, const ParamStore *s, const NnCheckpointInfo *info, Err *e);
/* Reads the root attributes only. */
int nn_checkpoint_info(const char *path, NnCheckpointInfo *info, Err *e);
/* Loads into s (allocated, same model). flags: NN_CKPT_*. skipped may be NULL. */
int nn_checkpoint_load(const char *path, ParamStore *s, NnCheckpointInfo *info, int flags,
                       int *skipped, Err *e);

#endif
