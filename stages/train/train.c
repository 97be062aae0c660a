/* train.c: `onfh train`: one model per (architecture, fold) of splits.json, trained on the
 * fold's training partition, early-stopped on its validation partition, and applied to its test
 * partition (heldout_predictions.csv, for the evaluate stage). Layout of the outputs:
 * data-schema/training.md.
 *
 * Ranks form groups of train.ranks_per_model (default: one group of all ranks); tasks
 * (architecture x fold) are shared round-robin over the groups, and a group trains its task
 * data-parallel (lib/nn/comm.h): each rank takes its share of every global batch, gradients are
 * summed during backward, BatchNorm uses each rank's own batch statistics and its running
 * statistics are averaged over the ranks after every step (so before every evaluation and
 * checkpoint). Rank 0 of a
 * group evaluates and writes the task's files. On SIGUSR1 or SIGTERM the ranks finish the step,
 * agree, save last.h5 (and a `preempted` marker) and the command exits with EXIT_REQUEUE. A task
 * resumes from models/<arch>/fold<k>/last.h5 when it exists and was written by the same train
 * config, split and seed. An unfinished last.h5 of any other configuration is an error, never a
 * silent fresh start (a resubmitted job after a config edit would otherwise lose its progress); the
 * finished results of another configuration are outdated outputs and are replaced, with a
 * warning. Because sample
 * order, augmentation and dropout are Philox functions of (seed, epoch, sample, step), a run
 * stopped after k steps and resumed ends bit for bit where an uninterrupted run does. */
#include "stages/train/train.h"

#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/cohort/splits.h"
#include "lib/h5/h5read.h"
#include "lib/nn/checkpoint.h"
#include "lib/nn/comm.h"
#include "lib/nn/cuda/nn_cuda.h"
#include "lib/nn/models/models.h"
#include "lib/nn/optimizer.h"
#include "lib/stats/metrics.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "lib/util/strbuf.h"
#include "pipeline/rundir.h"
#include "pipeline/runtime.h"
#include "pipeline/schema.h"
#include "pipeline/version.h"
#include "stages/train/loader.h"

/* One (architecture, fold) and everything it needs. */
typedef struct Task {
    Session *s;
    MPI_Comm comm; /* the ranks training this task together (train.ranks_per_model) */
    const Splits *splits;
    const char *arch;
    int fold;
    char dir[4300];
    char cohort[4300];
    char hash[65]; /* train section + run.seed + split assignment */
    int grid, size, channels;
    int32_t *rows[3], *labels[3]; /* per partition (SPLIT_*) */
    int n[3];
    const int32_t *all_labels;    /* /slices/label */
    const char *pseudonyms;       /* /patients/pseudonym, 17 bytes each */
    const int32_t *slice_patient; /* /slices/patient */
} Task;

typedef struct EpochStats {
    double loss, accuracy, auc;
    int n;
} EpochStats;

/* Set by SIGUSR1 or SIGTERM (Slurm's notice before preemption or the time limit): the ranks
 * finish the step, agree, save last.h5 and exit with EXIT_REQUEUE. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void task_free(Task *t)
{
    for (int p = 0; p < 3; p++)
        mem_free(t->rows[p]), mem_free(t->labels[p]);
}

// ---------------------------------------------------------------------------------------------
// Configuration

static int optim_from_config(const Config *cfg, NnOptim *o, Err *e)
{
    const char *k = config_str(cfg, "train.optimizer");
    double lr = config_num(cfg, "train.lr"), wd = config_num(cfg, "train.weight_decay");
    double mom = config_num(cfg, "train.momentum");
    if (!strcmp(k, "adamw"))
        *o = (NnOptim){.kind = NN_ADAMW, .adamw = {lr, 0.9, 0.999, 1e-8, wd}};
    else if (!strcmp(k, "sgd"))
        *o = (NnOptim){.kind = NN_SGD, .sgd = {lr, mom, wd, mom > 0}};
    else if (!strcmp(k, "rmsprop")) /* torchvision's MobileNetV3 recipe: alpha 0.9, eps 0.0316 */
        *o = (NnOptim){.kind = NN_RMSPROP, .rmsprop = {lr, 0.9, 0.0316, wd, mom}};
    else
        return err_set(e, ERR_CONFIG, "train.optimizer: '%s'", k);
    return 0;
}

static void optim_set_lr(NnOptim *o, double lr)
{
    o->adamw.lr = o->sgd.lr = o->rmsprop.lr = lr;
}

/* Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`. step counts from 0. */
static double schedule(double peak, long step, long warmup, long total)
{
    if (step < warmup)
        return peak * (double)(step + 1) / (double)warmup;
    if (total <= warmup)
        return peak;
    double t = (double)(step - warmup) / (double)(total - warmup);
    return 0.5 * peak * (1.0 + cos(M_PI * (t > 1 ? 1 : t)));
}

// ---------------------------------------------------------------------------------------------
// Evaluation of a partition (eval mode)

/* Runs the graph over loader l (eval mode): mean cross-entropy (unweighted), accuracy at 0.5,
 * AUC; when probs is not NULL, stores p(class 1) per sample in loader order. */
static int evaluate(NnGraph *g, Loader *l, int n, EpochStats *st, double *probs, int32_t *rows,
                    Err *e)
{
    double *score = mem_alloc((size_t)(n ? n : 1) * sizeof *score);
    int *label = mem_alloc((size_t)(n ? n : 1) * sizeof *label);
    float *padded = NULL;
    int rc = 0, seen = 0, correct = 0;
    double loss = 0;
    if (!score || !label) {
        rc = err_set(e, ERR_NOMEM, "train: out of memory");
        goto out;
    }
    const NnValue *in = nn_graph_value(g, g->input);
    size_t per = (size_t)in->c * in->h * in->w;
    padded = mem_calloc((size_t)in->n * per, sizeof(float));
    if (!padded) {
        rc = err_set(e, ERR_NOMEM, "train: out of memory");
        goto out;
    }
    loader_start(l, 0, 0);
    for (;;) {
        const float *images;
        const int *lab;
        const int32_t *r;
        int count;
        if ((rc = loader_next(l, &images, &lab, &r, &count, e)) || count == 0)
            break;
        /* a short last batch is padded with zeros: eval mode treats samples apart */
        memcpy(padded, images, (size_t)count * per * sizeof(float));
        memset(padded + (size_t)count * per, 0, (size_t)(in->n - count) * per * sizeof(float));
        nn_graph_set_input(g, padded);
        if ((rc = nn_graph_forward(g, 0, e)))
            break;
        const float *z = nn_graph_output(g);
        for (int i = 0; i < count && seen < n; i++, seen++) {
            double m = fmax(z[2 * i], z[2 * i + 1]);
            double l0 = exp(z[2 * i] - m), l1 = exp(z[2 * i + 1] - m);
            double p1 = l1 / (l0 + l1);
            loss += -(lab[i] ? log(l1 / (l0 + l1)) : log(l0 / (l0 + l1)));
            correct += (p1 >= 0.5) == (lab[i] != 0);
            score[seen] = p1, label[seen] = lab[i];
            if (probs)
                probs[seen] = p1, rows[seen] = r[i];
        }
    }
    if (rc == 0) {
        st->n = seen;
        st->loss = seen ? loss / seen : NAN;
        st->accuracy = seen ? (double)correct / seen : NAN;
        st->auc = metrics_auc(score, label, seen);
    }
out:
    mem_free(score), mem_free(label), mem_free(padded);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Files

static int write_text(const char *path, StrBuf *b, Err *e)
{
    char *text;
    size_t len;
    if (strbuf_finish(b, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

static int save(const Task *t, NnGraph *g, const char *name, NnCheckpointInfo *info, Err *e)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    nn_graph_download(g);
    loader_h5_lock();
    int rc = nn_checkpoint_save(path, &g->store, info, e);
    loader_h5_unlock();
    return rc;
}

/* log.csv keeps the rows of epochs before `epochs` (a resumed run continues the file). */
static int log_restore(const char *path, long epochs, StrBuf *log, Err *e)
{
    strbuf_puts(log, "epoch,step,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_auc,"
                     "images_per_s,loader_wait_s,seconds\n");
    if (epochs == 0 || !file_exists(path))
        return 0;
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len, e))
        return -1;
    char *line = strchr(text, '\n');
    for (long k = 0; line && k < epochs; k++) {
        char *next = strchr(line + 1, '\n');
        if (!next)
            break;
        strbuf_append(log, line + 1, (size_t)(next - line));
        line = next;
    }
    mem_free(text);
    return 0;
}

/* heldout_predictions.csv (test partition) or validation_predictions.csv (the evaluate stage
 * picks its decision threshold there, never on the test fold). */
static int write_predictions(const Task *t, const char *name, const double *probs,
                             const int32_t *rows, int n, Err *e)
{
    StrBuf b = STRBUF_INIT;
    strbuf_puts(&b, "patient,slice,label,probability\n");
    for (int i = 0; i < n; i++) {
        int32_t r = rows[i];
        strbuf_printf(&b, "%s,%d,%d,%.9g\n", t->pseudonyms + 17 * (size_t)t->slice_patient[r], r,
                      t->all_labels[r], probs[i]);
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", t->dir, name);
    return write_text(path, &b, e);
}

// ---------------------------------------------------------------------------------------------
// One task

/* Rank 0 of the task's ranks: how the task starts. *resume: from last.h5 (whose attributes are
 * in *info); *done: finished before, nothing to do. A `preempted` marker without its last.h5
 * means a checkpoint was expected and is gone: an error, never a silent fresh start. */
static int start_plan(const Task *t, NnCheckpointInfo *info, int *resume, int *done, Err *e)
{
    const char *names[] = {"last.h5",
                           "checkpoint.h5",
                           "log.csv",
                           "heldout_predictions.csv",
                           "validation_predictions.csv",
                           "preempted"};
    char path[6][4400];
    for (int i = 0; i < 6; i++)
        snprintf(path[i], sizeof path[i], "%s/%s", t->dir, names[i]);
    *resume = *done = 0;
    *info = (NnCheckpointInfo){.best_val_loss = INFINITY, .best_epoch = -1};
    if (t->s->force)
        for (int i = 0; i < 6; i++)
            unlink(path[i]);
    if (file_exists(path[5]) && !file_exists(path[0]))
        return err_set(e, ERR_CONFIG,
                       "train %s fold %d: %s says the task was preempted with a checkpoint, but "
                       "%s is missing: refusing to start from scratch (--force starts again)",
                       t->arch, t->fold, path[5], path[0]);
    if (!file_exists(path[0]))
        return 0;
    *resume = 1;
    if (nn_checkpoint_info(path[0], info, e))
        return err_prefix(e, "train: cannot resume");
    int other = strcmp(info->config_sha256, t->hash) || strcmp(info->model, t->arch);
    if (other && info->finished) {
        /* finished results of an older config are just outdated outputs: replace them */
        log_warn("train %s fold %d: replacing the finished results of another configuration "
                 "(config %.12s, this run %.12s)",
                 t->arch, t->fold, info->config_sha256, t->hash);
        for (int i = 0; i < 6; i++)
            unlink(path[i]);
        *resume = 0;
        *info = (NnCheckpointInfo){.best_val_loss = INFINITY, .best_epoch = -1};
        return 0;
    }
    if (other)
        return err_set(e, ERR_CONFIG,
                       "train: %s was written by another configuration (train section, "
                       "split or seed changed: config %.12s, this run %.12s); remove it or "
                       "run with --force to start this task again",
                       path[0], info->config_sha256, t->hash);
    if (info->finished && file_exists(path[3]) && file_exists(path[4])) {
        log_info("train %s fold %d: finished before (best epoch %ld); --force trains again",
                 t->arch, t->fold, info->best_epoch);
        *done = 1;
    }
    return 0;
}

/* Rank 0: the `preempted` marker beside last.h5 (see start_plan). */
static int write_marker(const Task *t, long step, Err *e)
{
    StrBuf b = STRBUF_INIT;
    strbuf_printf(&b, "preempted at step %ld; last.h5 holds the state to resume from\n", step);
    char path[4400];
    snprintf(path, sizeof path, "%s/preempted", t->dir);
    return write_text(path, &b, e);
}

/* A failure on one rank in the middle of a data-parallel step: its peers wait in a collective
 * for it, so the job ends here, with the message (runtime.h: MPI_Abort). One rank returns. */
static int step_failed(const Task *t, int ranks, int rc, const Err *e)
{
    if (rc && ranks > 1)
        rt_fatal(rt_exit_code(e->code), "train %s fold %d, rank %d: %s", t->arch, t->fold,
                 rt_rank(), e->msg);
    return rc;
}

static int train_task(Task *t, Err *e)
{
    Session *s = t->s;
    const Config *cfg = &s->cfg;
    int rank, ranks;
    MPI_Comm_rank(t->comm, &rank);
    MPI_Comm_size(t->comm, &ranks);
    const NnBackend *be = nn_backend_by_name(config_str(cfg, "train.backend"), e);
    if (!be)
        return -1;
    if (!strcmp(config_str(cfg, "train.precision"), "tf32")) {
        char why[256];
        if (strcmp(be->name, "cuda"))
            return err_set(e, ERR_CONFIG,
                           "train.precision tf32: the %s backend has no TF32 (only cuda has; "
                           "use fp32)",
                           be->name);
        if (nn_cuda_set_tf32(1, why, sizeof why))
            return err_set(e, ERR_CONFIG, "train.precision tf32: %s", why);
    }
    NnOptim opt;
    if (optim_from_config(cfg, &opt, e))
        return -1;
    int batch = (int)config_int(cfg, "train.batch_size");
    long epochs = (long)config_int(cfg, "train.epochs");
    int patience = (int)config_int(cfg, "train.patience");
    uint64_t seed = (uint64_t)config_int(cfg, "run.seed");
    if (t->n[SPLIT_TRAIN] < batch)
        return err_set(e, ERR_CONFIG,
                       "train: fold %d has %d training slices, fewer than train.batch_size %d",
                       t->fold, t->n[SPLIT_TRAIN], batch);
    if (batch < ranks)
        return err_set(e, ERR_CONFIG,
                       "train: train.batch_size %d is smaller than the %d ranks that train one "
                       "model (fewer ranks, or train.ranks_per_model)",
                       batch, ranks);
    /* this rank's share of every global batch: the first batch % ranks ranks take one more */
    int local = batch / ranks + (rank < batch % ranks);
    char best[4400], logp[4400], marker[4400];
    snprintf(best, sizeof best, "%s/checkpoint.h5", t->dir);
    snprintf(logp, sizeof logp, "%s/log.csv", t->dir);
    snprintf(marker, sizeof marker, "%s/preempted", t->dir);
    /* rank 0 decides how the task starts, and reads the checkpoints; the others follow */
    NnCheckpointInfo info, init_info = {0};
    int resume = 0, done = 0, rc = 0;
    const char *init = config_str(cfg, "train.init_checkpoint");
    if (rank == 0) {
        rc = start_plan(t, &info, &resume, &done, e);
        if (rc == 0 && init && nn_checkpoint_info(init, &init_info, e))
            rc = err_prefix(e, "train.init_checkpoint");
    }
    if (nn_mpi_agree(t->comm, e))
        return -1;
    int plan[2] = {resume, done};
    MPI_Bcast(plan, 2, MPI_INT, 0, t->comm);
    MPI_Bcast(&info, (int)sizeof info, MPI_BYTE, 0, t->comm);
    MPI_Bcast(&init_info, (int)sizeof init_info, MPI_BYTE, 0, t->comm);
    resume = plan[0];
    if (plan[1])
        return 0;
    /* the model: channels from imported weights where given */
    int channels = init ? init_info.in_channels : t->channels;
    NnGraph g;
    if (nn_model_graph(&g, be, t->arch, local, channels, t->size, t->size, 2, 1,
                       nn_optim_moments(&opt), e))
        rc = -1;
    if (nn_mpi_agree(t->comm, e)) {
        if (rc == 0)
            nn_graph_free(&g);
        return -1;
    }
    g.seed = seed;
    nn_graph_init_params(&g, seed);
    double bn_momentum = config_num(cfg, "train.bn_momentum");
    for (int i = 0; bn_momentum > 0 && i < g.n_nodes; i++)
        if (g.nodes[i].kind == NN_OP_BN)
            g.nodes[i].u.bn.momentum = (float)bn_momentum;
    int skipped = 0;
    NnCheckpointInfo loaded;
    char last[4400];
    snprintf(last, sizeof last, "%s/last.h5", t->dir);
    if (rank == 0 && resume) {
        rc = nn_checkpoint_load(last, &g.store, &loaded, 0, NULL, e);
        if (rc == 0)
            unlink(marker); /* resumed: last.h5 stands for the preemption from here on */
    } else if (rank == 0 && init) {
        rc = nn_checkpoint_load(init, &g.store, &loaded, NN_CKPT_WEIGHTS_ONLY | NN_CKPT_NEW_HEAD,
                                &skipped, e);
        if (rc == 0)
            log_info("train %s fold %d: started from %s (%d tensor(s) of another shape kept "
                     "their initialisation)",
                     t->arch, t->fold, init, skipped);
    }
    if (rc == 0)
        nn_graph_upload(&g); /* the weights loaded into the store */
    /* every rank starts from rank 0's state; gradients are summed in buckets during backward */
    NnComm *comm = NULL;
    if (nn_mpi_agree(t->comm, e) == 0)
        rc = nn_comm_open(&comm, t->comm, &g,
                          (size_t)(config_num(cfg, "train.bucket_mib") * 1048576.0),
                          config_str(cfg, "train.comm"), e);
    else
        rc = -1;
    if (nn_mpi_agree(t->comm, e))
        rc = -1;
    if (rc == 0 && ranks > 1 && nn_comm_broadcast_store(comm, e))
        rc = step_failed(t, ranks, -1, e);
    /* what a step would wait for its gradients without overlap: the overlap reported below */
    if (rc == 0 && ranks > 1 && nn_comm_time_allreduce(comm, 3, e))
        rc = step_failed(t, ranks, -1, e);
    /* class weights from the training partition: n / (2 n_c) */
    float weight[2] = {1, 1};
    int count[2] = {0, 0};
    for (int i = 0; i < t->n[SPLIT_TRAIN]; i++)
        count[t->labels[SPLIT_TRAIN][i] != 0]++;
    if (!strcmp(config_str(cfg, "train.class_weights"), "balanced"))
        for (int c = 0; c < 2; c++)
            weight[c] = (float)t->n[SPLIT_TRAIN] / (2.0f * (float)count[c]);
    float smoothing = (float)config_num(cfg, "train.label_smoothing");
    Augment aug = {.flip = config_bool(cfg, "train.augment_flip"),
                   .rotation_deg = config_num(cfg, "train.augment_rotation_deg"),
                   .scale = config_num(cfg, "train.augment_scale"),
                   .intensity = config_num(cfg, "train.augment_intensity")};
    int use_aug = config_bool(cfg, "train.augment");
    /* every rank loads its share of the training batches; rank 0 alone evaluates */
    Loader *loader[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3 && rc == 0; p++) {
        if (p != SPLIT_TRAIN && rank != 0)
            continue;
        LoaderSpec spec = {.cohort = t->cohort,
                           .rows = t->rows[p],
                           .label = t->labels[p],
                           .n = t->n[p],
                           .batch = p == SPLIT_TRAIN ? batch : local,
                           .channels = channels,
                           .grid = t->grid,
                           .size = t->size,
                           .augment = p == SPLIT_TRAIN && use_aug ? &aug : NULL,
                           .seed = seed,
                           .shuffle = p == SPLIT_TRAIN,
                           .drop_last = p == SPLIT_TRAIN,
                           .cache_bytes = (size_t)config_int(cfg, "train.cache_mib") << 20,
                           .rank = p == SPLIT_TRAIN ? rank : 0,
                           .ranks = p == SPLIT_TRAIN ? ranks : 1};
        rc = loader_open(&loader[p], &spec, e);
    }
    StrBuf log = STRBUF_INIT;
    if (rc == 0 && rank == 0)
        rc = log_restore(logp, resume ? info.epoch : 0, &log, e);
    if (nn_mpi_agree(t->comm, e))
        rc = -1;
    long per_epoch = rc == 0 ? loader_batches(loader[SPLIT_TRAIN]) : 0;
    long total = per_epoch * epochs;
    long warmup = (long)llround(config_num(cfg, "train.warmup_epochs") * (double)per_epoch);
    long step = resume ? info.step : 0, budget = s->max_steps, done_steps = 0;
    long epoch = resume ? info.epoch : 0;
    int position = resume ? (int)info.data_position : 0;
    g.step = (uint64_t)step;
    NnCheckpointInfo ck = {.classes = 2,
                           .in_channels = channels,
                           .image_size = t->size,
                           .seed = seed,
                           .has_optim = 1,
                           .optim = opt,
                           .best_val_loss = resume ? info.best_val_loss : INFINITY,
                           .best_epoch = resume ? info.best_epoch : -1,
                           .stale_epochs = resume ? info.stale_epochs : 0};
    snprintf(ck.model, sizeof ck.model, "%s", t->arch);
    snprintf(ck.config_sha256, sizeof ck.config_sha256, "%s", t->hash);
    Versions v;
    versions_get(&v);
    snprintf(ck.producer, sizeof ck.producer, "onfh %s (%s) train", v.onfh, v.commit);
    if (rc == 0)
        log_info("train %s fold %d: %d train / %d validation / %d test slices, %ld steps of %d "
                 "(%ld per epoch) on %s, %d rank(s)%s",
                 t->arch, t->fold, t->n[0], t->n[1], t->n[2], total, batch, per_epoch, be->name,
                 ranks, resume ? ", resuming" : "");
    /* stopped: by --max-steps or a signal (preempted); early: early stopping, or finished with
     * a predictions file missing */
    int stopped = 0, preempted = 0, early = resume && info.finished;
    double step_s = 0; /* this rank's training steps, loading to the agreed loss */
    while (rc == 0 && epoch < epochs && !stopped && !early) {
        double t0 = MPI_Wtime(), wait0 = loader_wait_seconds(loader[SPLIT_TRAIN]);
        double loss_sum = 0;
        long seen = 0, correct = 0;
        loader_start(loader[SPLIT_TRAIN], (uint64_t)epoch, position);
        Progress prog;
        char label[96];
        snprintf(label, sizeof label, "%s fold %d epoch %ld", t->arch, t->fold, epoch + 1);
        rt_progress_start(&prog, label, (uint64_t)per_epoch);
        double lr = 0;
        while (rc == 0) {
            double step_t0 = MPI_Wtime();
            const float *images;
            const int *lab, *all;
            const int32_t *r;
            int n, n_all, first;
            if ((rc = step_failed(t, ranks,
                                  loader_next(loader[SPLIT_TRAIN], &images, &lab, &r, &n, e), e)) ||
                n == 0)
                break;
            /* this rank's share of the global batch's loss normaliser (class weights summed):
             * the ranks' scaled gradients sum to the global batch's mean gradient */
            loader_global_batch(loader[SPLIT_TRAIN], &all, &n_all, &first);
            double w_all = 0, w_mine = 0;
            for (int i = 0; i < n_all; i++)
                w_all += weight[all[i] != 0];
            for (int i = 0; i < n; i++)
                w_mine += weight[lab[i] != 0];
            g.loss_scale = (float)(w_mine / w_all);
            g.sample0 = (uint64_t)first;
            lr = schedule(config_num(cfg, "train.lr"), step, warmup, total);
            optim_set_lr(&opt, lr);
            float loss;
            g.step = (uint64_t)step;
            nn_graph_set_input(&g, images);
            rc = nn_graph_forward(&g, 1, e) || nn_graph_loss(&g, lab, weight, smoothing, &loss, e);
            if ((rc = step_failed(t, ranks, rc, e)))
                break;
            const float *z = nn_graph_output(&g);
            long right = 0;
            for (int i = 0; i < n; i++)
                right += (z[2 * i + 1] > z[2 * i]) == (lab[i] != 0);
            nn_graph_discard_grads(&g); /* backward writes every parameter gradient */
            nn_comm_begin_backward(comm);
            rc = nn_graph_backward(&g, e) || nn_comm_end_backward(comm, e) ||
                 nn_graph_step(&g, &opt, step + 1, e);
            if ((rc = step_failed(t, ranks, rc, e)))
                break;
            /* one small sum per step: loss, accuracy and the stop flag, agreed by every rank */
            double sum[3] = {(double)loss * g.loss_scale, (double)right, stop_signal != 0};
            if ((rc = step_failed(t, ranks, nn_comm_sum(comm, sum, 3, e), e)))
                break;
            step_s += MPI_Wtime() - step_t0;
            if (!isfinite(sum[0])) {
                rc = err_set(e, ERR_CONFIG,
                             "train %s fold %d: the loss became %g at step %ld "
                             "(lower train.lr?)",
                             t->arch, t->fold, sum[0], step);
                break;
            }
            preempted |= sum[2] > 0;
            loss_sum += sum[0] * n_all, seen += n_all, correct += (long)sum[1];
            step++, done_steps++;
            position += n_all;
            rt_progress_update(&prog, (uint64_t)(position / batch));
            if (((budget && done_steps >= budget) || preempted) && position < per_epoch * batch) {
                stopped = 1;
                break;
            }
        }
        rt_progress_finish(&prog);
        if (rc)
            break;
        if (stopped) {
            loader_stop(loader[SPLIT_TRAIN]);
            ck.step = step, ck.epoch = epoch, ck.data_position = position;
            if (rank == 0) /* BN running statistics: the same on every rank (comm.h) */
                rc = save(t, &g, "last.h5", &ck, e);
            if (rc == 0 && rank == 0 && preempted)
                rc = write_marker(t, step, e);
            if (rc == 0)
                log_info("train %s fold %d: stopped after %ld steps (%s) at epoch %ld, "
                         "sample %d; run again to resume",
                         t->arch, t->fold, done_steps, preempted ? "signal" : "--max-steps",
                         epoch + 1, position);
            break;
        }
        /* end of an epoch: validation (rank 0; the BN running statistics are every rank's
         * average, comm.h), early stopping, log, checkpoints */
        EpochStats val = {0};
        double secs = MPI_Wtime() - t0;
        double wait = loader_wait_seconds(loader[SPLIT_TRAIN]) - wait0;
        if (rank == 0)
            rc = evaluate(&g, loader[SPLIT_VAL], t->n[SPLIT_VAL], &val, NULL, NULL, e);
        if ((rc = nn_comm_agree(comm, e)) || (rc = nn_comm_broadcast(comm, &val, sizeof val, e)))
            break;
        epoch++, position = 0;
        int improved = val.loss < ck.best_val_loss;
        if (improved)
            ck.best_val_loss = val.loss, ck.best_epoch = epoch, ck.stale_epochs = 0;
        else
            ck.stale_epochs++;
        early = patience > 0 && ck.stale_epochs >= patience;
        char f[6][32];
        format_double(lr, f[0]);
        format_double(seen ? loss_sum / seen : NAN, f[1]);
        format_double(seen ? (double)correct / seen : NAN, f[2]);
        format_double(val.loss, f[3]);
        format_double(val.accuracy, f[4]);
        format_double(val.auc, f[5]);
        strbuf_printf(&log, "%ld,%ld,%s,%s,%s,%s,%s,%s,%.1f,%.3f,%.3f\n", epoch, step, f[0], f[1],
                      f[2], f[3], f[4], f[5], seen / secs, wait, secs);
        log_info("train %s fold %d epoch %ld: loss %.4f, validation loss %.4f, accuracy %.3f, "
                 "AUC %.3f, %.1f images/s%s",
                 t->arch, t->fold, epoch, seen ? loss_sum / seen : NAN, val.loss, val.accuracy,
                 val.auc, seen / secs, improved ? " (best so far)" : "");
        ck.step = step, ck.epoch = epoch, ck.data_position = 0;
        ck.finished = early || epoch == epochs;
        if (rank == 0) {
            if (improved) { /* weights only: every reader loads them so (NN_CKPT_WEIGHTS_ONLY),
                               and the moments would double a big model's file (vgg16_bn:
                               537 MB of weights, 1.6 GB with them) */
                NnCheckpointInfo weights = ck;
                weights.has_optim = 0;
                rc = save(t, &g, "checkpoint.h5", &weights, e);
            }
            StrBuf copy = STRBUF_INIT;
            strbuf_append(&copy, log.s ? log.s : "", log.len);
            if (rc == 0)
                rc = write_text(logp, &copy, e);
            else
                strbuf_free(&copy);
            if (rc == 0 && !ck.finished)
                rc = save(t, &g, "last.h5", &ck, e);
            if (rc == 0 && !ck.finished && preempted)
                rc = write_marker(t, step, e);
        }
        if ((rc = nn_comm_agree(comm, e)))
            break;
        if (early)
            log_info("train %s fold %d: no better validation loss for %d epochs: stopped at "
                     "epoch %ld, best %ld",
                     t->arch, t->fold, patience, epoch, ck.best_epoch);
        if (((budget && done_steps >= budget) || preempted) && !ck.finished) {
            stopped = 1;
            log_info("train %s fold %d: stopped after %ld steps (%s) at the end of epoch %ld; "
                     "run again to resume",
                     t->arch, t->fold, done_steps, preempted ? "signal" : "--max-steps", epoch);
        }
    }
    /* held-out and validation predictions with the best weights (rank 0), then mark the task
     * finished */
    if (rc == 0 && !stopped && rank == 0) {
        EpochStats test = {0}, val = {0};
        int most = t->n[SPLIT_TEST] > t->n[SPLIT_VAL] ? t->n[SPLIT_TEST] : t->n[SPLIT_VAL];
        double *probs = mem_alloc((size_t)(most + 1) * sizeof *probs);
        int32_t *rows = mem_alloc((size_t)(most + 1) * sizeof *rows);
        NnCheckpointInfo bi;
        if (!probs || !rows)
            rc = err_set(e, ERR_NOMEM, "train: out of memory");
        if (rc == 0 && file_exists(best)) {
            loader_h5_lock();
            rc = nn_checkpoint_load(best, &g.store, &bi, NN_CKPT_WEIGHTS_ONLY, NULL, e);
            loader_h5_unlock();
            nn_graph_upload(&g);
        }
        if (rc == 0)
            rc = evaluate(&g, loader[SPLIT_TEST], t->n[SPLIT_TEST], &test, probs, rows, e);
        if (rc == 0)
            rc = write_predictions(t, "heldout_predictions.csv", probs, rows, test.n, e);
        if (rc == 0)
            rc = evaluate(&g, loader[SPLIT_VAL], t->n[SPLIT_VAL], &val, probs, rows, e);
        if (rc == 0)
            rc = write_predictions(t, "validation_predictions.csv", probs, rows, val.n, e);
        if (rc == 0) {
            ck.finished = 1;
            rc = save(t, &g, "last.h5", &ck, e);
        }
        if (rc == 0)
            log_info("train %s fold %d: held-out fold: %d slices, loss %.4f, accuracy %.3f, "
                     "AUC %.3f (best epoch %ld)",
                     t->arch, t->fold, test.n, test.loss, test.accuracy, test.auc, ck.best_epoch);
        mem_free(probs), mem_free(rows);
    }
    if (rc == 0)
        e->code = 0;
    if (nn_mpi_agree(t->comm, e))
        rc = -1;
    /* the all-reduce's cost, averaged over the ranks: the wait after backward as a share of
     * the step time, and the share of the reduction hidden behind backward (comm.h). Seconds
     * to the microsecond: a few steps of a small model take tens of milliseconds, where four
     * decimals lose a percent of the ratio that readers (bench/train_dp.sh, the tests)
     * recompute from them. */
    if (rc == 0 && ranks > 1) {
        NnCommStats cs = nn_comm_stats(comm);
        double mean[5] = {cs.wait_s, step_s, cs.backward_s, cs.progress_s, cs.allreduce_s};
        rc = step_failed(t, ranks, nn_comm_sum(comm, mean, 5, e), e);
        for (int k = 0; k < 5; k++)
            mean[k] /= ranks;
        long n = cs.steps > 0 ? cs.steps : 1;
        double overlap = mean[4] > 0 ? 1.0 - mean[0] / (double)n / mean[4] : 0.0;
        overlap = overlap < 0 ? 0 : overlap > 1 ? 1 : overlap;
        if (rc == 0)
            log_info("train %s fold %d: gradients all-reduced over %d ranks in %d bucket(s) of "
                     "%.1f MiB in all, %ld of %ld started during backward; per rank over %ld "
                     "steps: waited %.6f s of %.6f s of steps (wait fraction %.4f), backward "
                     "%.6f s with %.6f s in MPI calls; a reduction with no overlap takes "
                     "%.6f s, overlap %.4f",
                     t->arch, t->fold, ranks, cs.buckets, (double)cs.bytes / 1048576.0,
                     cs.started_early, cs.started_total, cs.steps, mean[0], mean[1],
                     mean[1] > 0 ? mean[0] / mean[1] : 0.0, mean[2], mean[3], mean[4], overlap);
    }
    if (rc == 0 && stopped && preempted)
        rc = err_set(e, ERR_PREEMPTED,
                     "train %s fold %d: stopped by a signal at step %ld with last.h5 saved; "
                     "run again (requeue) to resume",
                     t->arch, t->fold, step);
    strbuf_free(&log);
    for (int p = 0; p < 3; p++)
        if (loader[p])
            loader_close(loader[p]);
    nn_comm_close(comm);
    nn_graph_free(&g);
    return rc ? -1 : 0;
}

// ---------------------------------------------------------------------------------------------
// The stage

/* The partitions of fold f, with their labels. */
static int task_rows(Task *t, Err *e)
{
    for (int p = 0; p < 3; p++) {
        if (splits_rows(t->splits, t->fold, p, &t->rows[p], &t->n[p], e))
            return -1;
        t->labels[p] = mem_alloc((size_t)(t->n[p] ? t->n[p] : 1) * sizeof(int32_t));
        if (!t->labels[p])
            return err_set(e, ERR_NOMEM, "train: out of memory");
        for (int i = 0; i < t->n[p]; i++)
            t->labels[p][i] = t->all_labels[t->rows[p][i]];
    }
    return 0;
}

/* Rank 0 of the task's ranks takes the task's own lock .lock.train.<arch>.fold<k> (unless this
 * command is that one task and its session holds it already), so that `onfh status` can tell a
 * running task from one that failed or waits, whether it runs under `onfh run` or as a Slurm
 * array task; and it removes the `failed` marker of an earlier attempt. */
static int task_begin(Task *t, RunDir *lock, Err *e)
{
    int rank, rc = dir_create(t->dir, e);
    MPI_Comm_rank(t->comm, &rank);
    if (rc == 0 && rank == 0 && !(t->s->only_arch && t->s->only_fold >= 0)) {
        char name[320], note[1024];
        rundir_train_lock_name(name, sizeof name, t->arch, t->fold);
        rc = rundir_open_locked(lock, t->s->run.path, name, note, sizeof note, e);
        if (rc == 0 && note[0])
            log_warn("%s", note);
    }
    if (rc == 0 && rank == 0) {
        char path[4400];
        snprintf(path, sizeof path, "%s/failed", t->dir);
        unlink(path);
    }
    return nn_mpi_agree(t->comm, e) ? -1 : 0;
}

/* Rank 0: a task that failed (not one stopped by a signal, which resumes, nor one whose lock
 * another process holds) leaves a `failed` marker with the time and the message for
 * `onfh status`; then the task's lock is released. */
static void task_end(const Task *t, RunDir *lock, int rc, const Err *e)
{
    int rank;
    MPI_Comm_rank(t->comm, &rank);
    if (rank == 0 && rc && e->code != ERR_PREEMPTED && e->code != ERR_BUSY) {
        char when[32] = "?", path[4400];
        time_t now = time(NULL);
        struct tm tm;
        if (gmtime_r(&now, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        StrBuf b = STRBUF_INIT;
        strbuf_printf(&b, "%s %s\n", when, e->msg);
        snprintf(path, sizeof path, "%s/failed", t->dir);
        Err ignored = {0};
        if (write_text(path, &b, &ignored))
            log_warn("train %s fold %d: %s", t->arch, t->fold, ignored.msg);
    }
    rundir_close(lock);
}

/* What a task's last.h5 must match: the train section, run.seed and the split. */
static int task_hash(Session *s, const Splits *sp, char hex[65], Err *e)
{
    char section[65];
    if (session_section_hash(s, "train", section, e))
        return -1;
    char text[200];
    snprintf(text, sizeof text, "%s %s", section, sp->sha256);
    sha256_hex(text, strlen(text), hex);
    return 0;
}

int train_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    const Config *cfg = &s->cfg;
    char cohort[4300], splits_path[4300];
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", s->run.path);
    snprintf(splits_path, sizeof splits_path, "%s/splits.json", s->run.path);
    Splits sp = {0};
    H5Array labels = {0}, spatient = {0};
    char *pseud = NULL;
    char *const *archs;
    int n_archs = config_list(cfg, "train.archs", &archs);
    /* a cohort.h5 that does not match its schema stops here, with its first problem */
    char *report = NULL;
    int problems = 0;
    int rc = rt_rank() == 0 ? schema_check(cohort, &report, &problems, e) : 0;
    if (rc == 0 && problems) {
        char *nl = strchr(report, '\n');
        if (nl)
            *nl = 0;
        rc = err_set(e, ERR_FORMAT, "train: %s fails its schema (%d problem(s)), first: %s", cohort,
                     problems, report);
    }
    mem_free(report);
    if (rt_agree(e))
        return -1;
    rc = splits_read(splits_path, &sp, e);
    if (rc)
        err_prefix(e, "train (run `onfh split` first?)");
    char cohort_hash[65];
    if (rc == 0 && (rc = sha256_file(cohort, cohort_hash, NULL, e)) == 0 &&
        strcmp(cohort_hash, sp.cohort_sha256))
        rc = err_set(e, ERR_CONFIG,
                     "train: %s was made from another cohort.h5 (cohort %.12s, "
                     "split for %.12s): run `onfh split --force`",
                     splits_path, cohort_hash, sp.cohort_sha256);
    for (int a = 0; rc == 0 && a < n_archs; a++)
        if (!nn_model_find(archs[a]))
            rc = err_set(e, ERR_CONFIG, "train.archs: unknown architecture '%s' (onfh model list)",
                         archs[a]);
    if (rc == 0 && s->only_arch && !nn_model_find(s->only_arch))
        rc = err_set(e, ERR_CONFIG, "--arch: unknown architecture '%s' (onfh model list)",
                     s->only_arch);
    if (rc == 0 && s->only_fold >= sp.folds)
        rc = err_set(e, ERR_CONFIG, "--fold %d: the split has folds 0 to %d", s->only_fold,
                     sp.folds - 1);
    long grid = 0;
    hid_t f = -1;
    if (rc == 0 && (rc = h5_open_read(cohort, &f, e)) == 0) {
        rc = h5_attr_long(f, ".", "grid_size", &grid, e) ||
             h5_read_int(f, "/slices/label", &labels, e) ||
             h5_read_int(f, "/slices/patient", &spatient, e);
        if (rc == 0) {
            hid_t ds = H5Dopen2(f, "/patients/pseudonym", H5P_DEFAULT);
            hid_t sps = ds >= 0 ? H5Dget_space(ds) : -1;
            hssize_t np = sps >= 0 ? H5Sget_simple_extent_npoints(sps) : -1;
            hid_t ty = H5Tcopy(H5T_C_S1);
            H5Tset_size(ty, 17);
            pseud = np >= 0 ? mem_calloc((size_t)np + 1, 17) : NULL;
            if (!pseud || H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, pseud) < 0)
                rc = err_set(e, ERR_FORMAT, "%s: cannot read /patients/pseudonym", cohort);
            H5Tclose(ty);
            if (sps >= 0)
                H5Sclose(sps);
            if (ds >= 0)
                H5Dclose(ds);
        }
        h5_close(f);
    }
    char hash[65];
    if (rc == 0)
        rc = task_hash(s, &sp, hash, e);
    int size = (int)config_int(cfg, "train.image_size");
    if (size == 0)
        size = (int)grid;
    /* ranks in groups of train.ranks_per_model (0: one group of all); tasks in (architecture,
     * fold) order, shared round-robin over the groups; a group trains its task data-parallel */
    int per_model = (int)config_int(cfg, "train.ranks_per_model");
    if (per_model == 0)
        per_model = rt_size();
    if (rc == 0 && rt_size() % per_model)
        rc = err_set(e, ERR_CONFIG,
                     "train.ranks_per_model %d does not divide the %d ranks of this job", per_model,
                     rt_size());
    int groups = rc == 0 ? rt_size() / per_model : 1, group = rt_rank() / per_model;
    MPI_Comm comm = MPI_COMM_NULL;
    if (rt_agree(e))
        rc = -1;
    else if (MPI_Comm_split(MPI_COMM_WORLD, group, rt_rank(), &comm) != MPI_SUCCESS)
        rc = err_set(e, ERR_MPI, "train: MPI_Comm_split into groups of %d ranks failed", per_model);
    struct sigaction stop = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART}, old_usr1,
                     old_term;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGUSR1, &stop, &old_usr1);
    sigaction(SIGTERM, &stop, &old_term);
    int task = 0;
    for (int a = 0; rc == 0 && a < n_archs; a++) {
        if (s->only_arch && strcmp(s->only_arch, archs[a]))
            continue;
        for (int k = 0; rc == 0 && k < sp.folds; k++) {
            if (s->only_fold >= 0 && k != s->only_fold)
                continue;
            if (task++ % groups != group)
                continue;
            /* a signal between tasks: stop before the next one (its ranks agree) */
            int flag = stop_signal != 0;
            MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, comm);
            if (flag) {
                rc = err_set(e, ERR_PREEMPTED,
                             "train: stopped by a signal before %s fold %d; run again (requeue) to "
                             "go on",
                             archs[a], k);
                break;
            }
            Task t = {.s = s,
                      .comm = comm,
                      .splits = &sp,
                      .arch = archs[a],
                      .fold = k,
                      .grid = (int)grid,
                      .size = size,
                      .channels = (int)config_int(cfg, "train.channels"),
                      .all_labels = labels.data,
                      .slice_patient = spatient.data,
                      .pseudonyms = pseud};
            snprintf(t.cohort, sizeof t.cohort, "%s", cohort);
            snprintf(t.hash, sizeof t.hash, "%s", hash);
            snprintf(t.dir, sizeof t.dir, "%s/models/%s/fold%d", s->run.path, archs[a], k);
            RunDir lock = {0};
            rc = task_begin(&t, &lock, e) || task_rows(&t, e) || train_task(&t, e);
            task_end(&t, &lock, rc, e);
            task_free(&t);
        }
    }
    if (rc == 0 && s->only_arch && task == 0)
        rc = err_set(e, ERR_CONFIG, "--arch %s: not in train.archs", s->only_arch);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
    splits_free(&sp);
    h5_array_free(&labels), h5_array_free(&spatient);
    mem_free(pseud);
    if (rt_agree(e))
        return -1;
    if (s->only_arch || s->only_fold >= 0 || s->max_steps)
        return 0; /* a part of the stage: the manifest records whole stages only */
    const char *inputs[] = {"cohort.h5", "splits.json"}, *outputs[] = {"models"};
    return session_record_stage(s, "train", inputs, 2, outputs, 1, MPI_Wtime() - t0, e) ? -1 : 0;
}
