/* predict.c: `onfh predict CONFIG --checkpoint FILE`: a checkpoint applied to every training
 * slice of the run's cohort.h5, in eval mode, with per-slice class probabilities written to a
 * CSV (data-schema/predictions.md).
 *
 * Slices are shared out over ranks in contiguous blocks; each rank reads its images in batches
 * of predict.batch rows, runs the model and formats its rows; rank 0 gathers the rows in rank
 * order, so the file does not depend on the rank count, and writes it atomically. Grayscale
 * slices go to a 3-channel model as three copies (what ImageNet weights expect, paper.md). */
#include "stages/predict/predict.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/strbuf.h"
#include "pipeline/runtime.h"

typedef struct SliceMeta {
    int32_t *series, *index, *patient;
    int32_t *label, *valid;
} SliceMeta;

static void meta_free(SliceMeta *m)
{
    mem_free(m->series), mem_free(m->index), mem_free(m->patient);
    mem_free(m->label), mem_free(m->valid);
}

/* Reads the per-slice columns of rows [first, first + n). */
static int meta_read(hid_t f, int64_t first, int64_t n, SliceMeta *m, Err *e)
{
    size_t bytes = (size_t)(n ? n : 1) * sizeof(int32_t);
    int32_t **cols[5] = {&m->series, &m->index, &m->patient, &m->label, &m->valid};
    const char *names[5] = {"/slices/series", "/slices/index", "/slices/patient", "/slices/label",
                            "/slices/valid"};
    for (int k = 0; k < 5; k++) {
        *cols[k] = mem_alloc(bytes);
        if (!*cols[k])
            return err_set(e, ERR_NOMEM, "predict: out of memory");
        if (h5_read_rows(f, names[k], first, n, H5T_NATIVE_INT32, *cols[k], e))
            return -1;
    }
    return 0;
}

/* Softmax of one row of logits (K) into p. */
static void softmax(const float *z, int k, double *p)
{
    double m = z[0], s = 0;
    for (int c = 1; c < k; c++)
        m = fmax(m, z[c]);
    for (int c = 0; c < k; c++)
        s += p[c] = exp(z[c] - m);
    for (int c = 0; c < k; c++)
        p[c] /= s;
}

/* Runs the model over this rank's rows and appends their CSV lines to out. */
static int predict_rows(NnGraph *g, const NnCheckpointInfo *info, hid_t f, int64_t first, int64_t n,
                        int grid, int batch, StrBuf *out, long *n_invalid, Err *e)
{
    SliceMeta m = {0};
    size_t plane = (size_t)grid * grid;
    int ch = info->in_channels;
    float *gray = mem_alloc((size_t)batch * plane * sizeof(float));
    float *images = mem_calloc((size_t)batch * ch * plane, sizeof(float));
    double *p = mem_alloc((size_t)info->classes * sizeof(double));
    int rc = -1;
    if (!gray || !images || !p) {
        err_set(e, ERR_NOMEM, "predict: out of memory for a batch of %d", batch);
        goto out;
    }
    if (meta_read(f, first, n, &m, e))
        goto out;
    Progress prog;
    rt_progress_start(&prog, "predict", (uint64_t)n);
    for (int64_t b = 0; b < n; b += batch) {
        int rows = (int)(n - b < batch ? n - b : batch);
        if (h5_read_rows(f, "/slices/image", first + b, rows, H5T_NATIVE_FLOAT, gray, e))
            goto out;
        /* rows past the end of the last batch stay zero; eval-mode ops treat samples apart */
        for (int i = 0; i < rows; i++)
            for (int c = 0; c < ch; c++)
                memcpy(images + ((size_t)i * ch + c) * plane, gray + (size_t)i * plane,
                       plane * sizeof(float));
        nn_graph_set_input(g, images);
        if (nn_graph_forward(g, 0, e))
            goto out;
        const float *logits = nn_graph_output(g);
        for (int i = 0; i < rows; i++) {
            int64_t r = b + i;
            strbuf_printf(out, "%lld,%d,%d,%d,%d,%d", (long long)(first + r), m.series[r],
                          m.index[r], m.patient[r], m.label[r], m.valid[r]);
            if (!m.valid[r]) {
                /* an undecodable slice is stored as zeros: no prediction for it */
                for (int c = 0; c < info->classes; c++)
                    strbuf_puts(out, ",");
                (*n_invalid)++;
            } else {
                softmax(logits + (size_t)i * info->classes, info->classes, p);
                for (int c = 0; c < info->classes; c++)
                    strbuf_printf(out, ",%.9g", p[c]);
            }
            strbuf_putc(out, '\n');
        }
        rt_progress_update(&prog, (uint64_t)(b + rows));
    }
    rt_progress_finish(&prog);
    rc = 0;
out:
    meta_free(&m);
    mem_free(gray);
    mem_free(images);
    mem_free(p);
    return rc;
}

int predict_run(Session *s, const PredictOptions *o, Err *e)
{
    char cohort[4200], out_path[4200];
    snprintf(cohort, sizeof cohort, "%s/cohort.h5", s->run.path);
    if (o->out)
        snprintf(out_path, sizeof out_path, "%s", o->out);
    else
        snprintf(out_path, sizeof out_path, "%s/predictions.csv", s->run.path);

    NnCheckpointInfo info;
    const NnBackend *be = nn_backend_by_name(o->backend ? o->backend : "auto", e);
    if (!be || nn_checkpoint_info(o->checkpoint, &info, e))
        return -1;
    hid_t f;
    if (h5_open_read(cohort, &f, e))
        return err_prefix(e, "predict (run `onfh ingest` first?)");
    long grid = 0;
    int rc = h5_attr_long(f, ".", "grid_size", &grid, e);
    if (rc == 0 && grid != info.image_size)
        rc = err_set(e, ERR_CONFIG,
                     "%s: images are %ld x %ld, but %s was trained at %d x %d (ingest with "
                     "ingest.grid_size: %d)",
                     cohort, grid, grid, o->checkpoint, info.image_size, info.image_size,
                     info.image_size);
    int64_t n_slices = 0;
    if (rc == 0) {
        hid_t ds = H5Dopen2(f, "/slices/image", H5P_DEFAULT);
        if (ds < 0) {
            rc = err_set(e, ERR_FORMAT, "%s: no /slices/image", cohort);
        } else {
            hid_t sp = H5Dget_space(ds);
            hsize_t dims[3] = {0};
            H5Sget_simple_extent_dims(sp, dims, NULL);
            n_slices = (int64_t)dims[0];
            H5Sclose(sp);
            H5Dclose(ds);
        }
    }
    uint64_t begin = 0, end = 0;
    rt_share((uint64_t)n_slices, &begin, &end);
    NnGraph g;
    int batch = o->batch > 0 ? o->batch : 32;
    if (rc == 0 && nn_model_graph(&g, be, info.model, batch, info.in_channels, (int)grid, (int)grid,
                                  info.classes, 0, 0, e) == 0) {
        int skipped = 0;
        NnCheckpointInfo loaded;
        if (nn_checkpoint_load(o->checkpoint, &g.store, &loaded, NN_CKPT_WEIGHTS_ONLY, &skipped, e))
            rc = -1;
        nn_graph_upload(&g);
        StrBuf rows = {0};
        long n_invalid = 0;
        if (rc == 0) {
            log_info("predict: %s (%s, step %ld) on %lld slices, backend %s, batch %d",
                     o->checkpoint, info.model, info.step, (long long)n_slices, be->name, batch);
            rc = predict_rows(&g, &info, f, (int64_t)begin, (int64_t)(end - begin), (int)grid,
                              batch, &rows, &n_invalid, e);
        }
        nn_graph_free(&g);
        char *mine = NULL, *all = NULL;
        size_t mine_len = 0, all_len = 0;
        Err fe = {0};
        if (strbuf_finish(&rows, &mine, &mine_len, &fe) && rc == 0)
            *e = fe, rc = -1;
        /* every rank takes part in the gather, whatever happened, then all agree */
        if (rt_gather_text(mine ? mine : "", mine ? mine_len : 0, &all, &all_len, &fe) && rc == 0)
            *e = fe, rc = -1;
        mem_free(mine);
        if (rc == 0 && rt_rank() == 0) {
            StrBuf csv = {0};
            strbuf_puts(&csv, "slice,series,index,patient,label,valid");
            for (int c = 0; c < info.classes; c++)
                strbuf_printf(&csv, ",p%d", c);
            strbuf_putc(&csv, '\n');
            strbuf_append(&csv, all, all_len);
            char *text;
            size_t len;
            if (strbuf_finish(&csv, &text, &len, e) == 0) {
                rc = file_write_atomic(out_path, text, len, e);
                mem_free(text);
            } else {
                rc = -1;
            }
            if (rc == 0)
                log_info("predict: wrote %s (%lld slices%s)", out_path, (long long)n_slices,
                         n_invalid ? ", some undecodable: empty probabilities" : "");
        }
        mem_free(all);
    } else if (rc == 0) {
        rc = -1;
    }
    h5_close(f);
    return rc;
}
