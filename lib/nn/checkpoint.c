/* checkpoint.c: HDF5 checkpoints (see checkpoint.h and data-schema/checkpoint.md).
 *
 * Serial HDF5 on one process (rank 0 saves; every rank may load), default property lists
 * apart from creation-order-free, timestamp-free objects. */
#include "lib/nn/checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/h5/h5read.h"
#include "lib/util/mem.h"

#define SCHEMA "onfh-checkpoint-1"

/* Moment buffer k of an optimizer, under PyTorch's state key. */
static const char *moment_name(NnOptimKind kind, int k)
{
    switch (kind) {
    case NN_ADAMW: return k == 0 ? "exp_avg" : "exp_avg_sq";
    case NN_SGD: return "momentum_buffer";
    case NN_RMSPROP: return k == 0 ? "square_avg" : "momentum_buffer";
    }
    return "?";
}

static const char *optim_name(NnOptimKind kind)
{
    return kind == NN_ADAMW ? "adamw" : kind == NN_SGD ? "sgd" : "rmsprop";
}

/* Hyper-parameters as one double[5] attribute: AdamW lr beta1 beta2 eps wd; SGD lr momentum
 * wd nesterov 0; RMSprop lr alpha eps wd momentum. */
static void optim_pack(const NnOptim *o, double h[5])
{
    switch (o->kind) {
    case NN_ADAMW:
        h[0] = o->adamw.lr, h[1] = o->adamw.beta1, h[2] = o->adamw.beta2, h[3] = o->adamw.eps;
        h[4] = o->adamw.weight_decay;
        break;
    case NN_SGD:
        h[0] = o->sgd.lr, h[1] = o->sgd.momentum, h[2] = o->sgd.weight_decay;
        h[3] = o->sgd.nesterov, h[4] = 0;
        break;
    case NN_RMSPROP:
        h[0] = o->rmsprop.lr, h[1] = o->rmsprop.alpha, h[2] = o->rmsprop.eps;
        h[3] = o->rmsprop.weight_decay, h[4] = o->rmsprop.momentum;
        break;
    }
}

static void optim_unpack(NnOptim *o, const double h[5])
{
    switch (o->kind) {
    case NN_ADAMW: o->adamw = (NnAdamW){h[0], h[1], h[2], h[3], h[4]}; break;
    case NN_SGD: o->sgd = (NnSgd){h[0], h[1], h[2], (int)h[3]}; break;
    case NN_RMSPROP: o->rmsprop = (NnRmsprop){h[0], h[1], h[2], h[3], h[4]}; break;
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

typedef struct Writer {
    hid_t file, dcpl, gcpl;
    const char *path;
    int failed;
} Writer;

static void attr_write(Writer *w, hid_t obj, const char *name, hid_t type, int n, const void *v)
{
    hsize_t dims = (hsize_t)n;
    hid_t space = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, NULL);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, v) < 0)
        w->failed = 1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
}

static void attr_string(Writer *w, hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    attr_write(w, obj, name, t, 1, v);
    H5Tclose(t);
}

static void attr_long(Writer *w, hid_t obj, const char *name, long v)
{
    int64_t x = v;
    attr_write(w, obj, name, H5T_NATIVE_INT64, 1, &x);
}

static void dataset(Writer *w, const char *name, hid_t mem_type, hid_t file_type, int ndim,
                    const int *shape, const void *data)
{
    hsize_t dims[NN_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        dims[d] = (hsize_t)shape[d];
    hid_t space = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = H5Dcreate2(w->file, name, file_type, space, H5P_DEFAULT, w->dcpl, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        w->failed = 1;
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(space);
}

static void group(Writer *w, const char *name)
{
    hid_t g = H5Gcreate2(w->file, name, H5P_DEFAULT, w->gcpl, H5P_DEFAULT);
    if (g < 0)
        w->failed = 1;
    else
        H5Gclose(g);
}

int nn_checkpoint_save(const char *path, const ParamStore *s, const NnCheckpointInfo *info, Err *e)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    Writer w = {.path = path};
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    w.file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (w.file < 0)
        return err_set(e, ERR_IO, "%s: cannot create checkpoint", tmp);
    w.dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(w.dcpl, 0);
    w.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(w.gcpl, 0);

    attr_string(&w, w.file, "schema", SCHEMA);
    attr_string(&w, w.file, "model", info->model);
    attr_string(&w, w.file, "producer", info->producer);
    attr_string(&w, w.file, "config_sha256", info->config_sha256);
    attr_long(&w, w.file, "classes", info->classes);
    attr_long(&w, w.file, "in_channels", info->in_channels);
    attr_long(&w, w.file, "image_size", info->image_size);
    attr_long(&w, w.file, "step", info->step);
    attr_long(&w, w.file, "epoch", info->epoch);
    attr_long(&w, w.file, "data_position", info->data_position);
    attr_long(&w, w.file, "finished", info->finished);
    attr_long(&w, w.file, "best_epoch", info->best_epoch);
    attr_long(&w, w.file, "stale_epochs", info->stale_epochs);
    attr_write(&w, w.file, "best_val_loss", H5T_NATIVE_DOUBLE, 1, &info->best_val_loss);
    uint64_t seed = info->seed;
    attr_write(&w, w.file, "seed", H5T_NATIVE_UINT64, 1, &seed);

    group(&w, "state_dict");
    for (int i = 0; i < s->n_views; i++) {
        const NnView *v = &s->views[i];
        char name[NN_NAME_MAX + 32];
        snprintf(name, sizeof name, "state_dict/%s", v->name);
        if (v->kind == NN_COUNTER)
            dataset(&w, name, H5T_NATIVE_INT64, H5T_STD_I64LE, v->ndim, v->shape,
                    nn_store_counter(s, i));
        else
            dataset(&w, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape,
                    v->kind == NN_PARAM ? nn_store_param(s, i) : nn_store_buffer(s, i));
    }
    if (info->has_optim) {
        int moments = nn_optim_moments(&info->optim);
        group(&w, "optimizer");
        hid_t og = H5Gopen2(w.file, "optimizer", H5P_DEFAULT);
        if (og >= 0) {
            double h[5];
            optim_pack(&info->optim, h);
            attr_string(&w, og, "kind", optim_name(info->optim.kind));
            attr_write(&w, og, "hyper", H5T_NATIVE_DOUBLE, 5, h);
            attr_long(&w, og, "moments", moments);
            H5Gclose(og);
        }
        if (moments > s->n_moments)
            w.failed = 1;
        for (int k = 0; k < moments && !w.failed; k++) {
            char gname[96];
            snprintf(gname, sizeof gname, "optimizer/%s", moment_name(info->optim.kind, k));
            group(&w, gname);
            for (int i = 0; i < s->n_views; i++) {
                const NnView *v = &s->views[i];
                if (v->kind != NN_PARAM)
                    continue;
                char name[NN_NAME_MAX + 128];
                snprintf(name, sizeof name, "%s/%s", gname, v->name);
                dataset(&w, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape,
                        nn_store_moment(s, k, i));
            }
        }
    }
    H5Pclose(w.dcpl);
    H5Pclose(w.gcpl);
    if (H5Fclose(w.file) < 0)
        w.failed = 1;
    if (w.failed) {
        unlink(tmp);
        return err_set(e, ERR_IO, "%s: writing the checkpoint failed (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(e, ERR_IO, "%s: cannot rename %s into place", path, tmp);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Reading

int nn_checkpoint_info(const char *path, NnCheckpointInfo *info, Err *e)
{
    hid_t f;
    memset(info, 0, sizeof *info);
    if (h5_open_read(path, &f, e))
        return -1;
    char schema[64];
    long classes, chans, size, epoch, pos;
    int rc = h5_attr_string(f, ".", "schema", schema, sizeof schema, e);
    if (rc == 0 && strcmp(schema, SCHEMA) != 0)
        rc = err_set(e, ERR_FORMAT, "%s: schema '%s', expected '%s'", path, schema, SCHEMA);
    if (rc == 0)
        rc = h5_attr_string(f, ".", "model", info->model, sizeof info->model, e) ||
             h5_attr_string(f, ".", "producer", info->producer, sizeof info->producer, e) ||
             h5_attr_string(f, ".", "config_sha256", info->config_sha256,
                            sizeof info->config_sha256, e) ||
             h5_attr_long(f, ".", "classes", &classes, e) ||
             h5_attr_long(f, ".", "in_channels", &chans, e) ||
             h5_attr_long(f, ".", "image_size", &size, e) ||
             h5_attr_long(f, ".", "step", &info->step, e) ||
             h5_attr_long(f, ".", "epoch", &epoch, e) ||
             h5_attr_long(f, ".", "data_position", &pos, e);
    long finished = 0;
    if (rc == 0)
        rc = h5_attr_long(f, ".", "finished", &finished, e) ||
             h5_attr_long(f, ".", "best_epoch", &info->best_epoch, e) ||
             h5_attr_long(f, ".", "stale_epochs", &info->stale_epochs, e) ||
             h5_attr_double(f, ".", "best_val_loss", &info->best_val_loss, e);
    info->finished = (int)finished;
    if (rc == 0) {
        /* the seed is read exactly as uint64 (a double would round above 2^53) */
        hid_t a = H5Aopen(f, "seed", H5P_DEFAULT);
        if (a < 0 || H5Aread(a, H5T_NATIVE_UINT64, &info->seed) < 0)
            rc = err_set(e, ERR_FORMAT, "%s: attribute 'seed' is not an integer", path);
        if (a >= 0)
            H5Aclose(a);
        info->classes = (int)classes, info->in_channels = (int)chans, info->image_size = (int)size;
        info->epoch = epoch, info->data_position = pos;
    }
    if (rc == 0 && h5_exists(f, "optimizer")) {
        char kind[32];
        double h[5];
        rc = h5_attr_string(f, "optimizer", "kind", kind, sizeof kind, e) ||
             h5_attr_doubles(f, "optimizer", "hyper", h, 5, e);
        if (rc == 0) {
            info->has_optim = 1;
            if (strcmp(kind, "adamw") == 0)
                info->optim.kind = NN_ADAMW;
            else if (strcmp(kind, "sgd") == 0)
                info->optim.kind = NN_SGD;
            else if (strcmp(kind, "rmsprop") == 0)
                info->optim.kind = NN_RMSPROP;
            else
                rc = err_set(e, ERR_FORMAT,
                             "%s: optimizer kind '%s' (expected adamw, sgd or "
                             "rmsprop)",
                             path, kind);
            optim_unpack(&info->optim, h);
        }
    }
    h5_close(f);
    return rc ? -1 : 0;
}

/* Reads dataset name into dst (numel floats) after checking its shape against v. Returns 0,
 * 1 if the shape differs (message in e), -1 on other errors. */
static int read_tensor(hid_t f, const char *path, const char *name, const NnView *v, void *dst,
                       Err *e)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0)
        return err_set(e, ERR_FORMAT, "%s: '%s' is missing", path, name);
    hid_t space = H5Dget_space(ds);
    int ndim = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8] = {0};
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    int same = ndim == v->ndim;
    for (int d = 0; same && d < ndim; d++)
        same = dims[d] == (hsize_t)v->shape[d];
    if (!same) {
        char got[96] = "", want[96] = "";
        for (int d = 0; d < ndim && d < 8; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), d ? "x%llu" : "%llu",
                     (unsigned long long)dims[d]);
        for (int d = 0; d < v->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), d ? "x%d" : "%d",
                     v->shape[d]);
        H5Dclose(ds);
        err_set(e, ERR_FORMAT, "%s: '%s' has shape (%s), the model expects (%s)", path, name, got,
                want);
        return 1;
    }
    hid_t mem = v->kind == NN_COUNTER ? H5T_NATIVE_INT64 : H5T_NATIVE_FLOAT;
    herr_t r = H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst);
    H5Dclose(ds);
    if (r < 0)
        return err_set(e, ERR_FORMAT, "%s: cannot read '%s'", path, name);
    return 0;
}

/* Counts the members of group gname that the store does not declare (left-over tensors). */
static int extra_members(hid_t f, const char *gname, const ParamStore *s, int params_only,
                         char *first, size_t cap)
{
    hid_t g = H5Gopen2(f, gname, H5P_DEFAULT);
    if (g < 0)
        return 0;
    H5G_info_t gi;
    H5Gget_info(g, &gi);
    int extra = 0;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char name[NN_NAME_MAX + 8];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        int k = nn_store_find(s, name);
        if (k < 0 || (params_only && s->views[k].kind != NN_PARAM)) {
            if (!extra++)
                snprintf(first, cap, "%s/%s", gname, name);
        }
    }
    H5Gclose(g);
    return extra;
}

int nn_checkpoint_load(const char *path, ParamStore *s, NnCheckpointInfo *info, int flags,
                       int *skipped, Err *e)
{
    if (skipped)
        *skipped = 0;
    if (nn_checkpoint_info(path, info, e))
        return -1;
    hid_t f;
    if (h5_open_read(path, &f, e))
        return -1;
    int rc = 0;
    char first[NN_NAME_MAX + 32] = "";
    int extra = extra_members(f, "state_dict", s, 0, first, sizeof first);
    if (extra)
        rc = err_set(e, ERR_FORMAT,
                     "%s: %d tensor(s) the model does not have, first '%s' "
                     "(another architecture?)",
                     path, extra, first);
    for (int i = 0; rc == 0 && i < s->n_views; i++) {
        const NnView *v = &s->views[i];
        char name[NN_NAME_MAX + 32];
        snprintf(name, sizeof name, "state_dict/%s", v->name);
        void *dst = v->kind == NN_PARAM    ? (void *)nn_store_param(s, i)
                    : v->kind == NN_BUFFER ? (void *)nn_store_buffer(s, i)
                                           : (void *)nn_store_counter(s, i);
        int r = read_tensor(f, path, name, v, dst, e);
        if (r == 1 && (flags & NN_CKPT_NEW_HEAD)) {
            if (skipped)
                (*skipped)++;
            continue;
        }
        if (r)
            rc = -1;
    }
    int load_optim = rc == 0 && info->has_optim && !(flags & NN_CKPT_WEIGHTS_ONLY);
    int moments = load_optim ? nn_optim_moments(&info->optim) : 0;
    if (load_optim && moments > s->n_moments)
        rc = err_set(e, ERR_INTERNAL, "%s: optimizer state has %d moments, the store %d", path,
                     moments, s->n_moments);
    for (int k = 0; rc == 0 && k < moments; k++) {
        for (int i = 0; rc == 0 && i < s->n_views; i++) {
            const NnView *v = &s->views[i];
            if (v->kind != NN_PARAM)
                continue;
            char name[NN_NAME_MAX + 128];
            snprintf(name, sizeof name, "optimizer/%s/%s", moment_name(info->optim.kind, k),
                     v->name);
            if (read_tensor(f, path, name, v, nn_store_moment(s, k, i), e))
                rc = -1;
        }
    }
    h5_close(f);
    return rc ? -1 : 0;
}
