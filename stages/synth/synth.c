/* synth.c: the `synth` stage: plan the cohort, share patients over ranks, write their series and
 * faults, gather the rows, and publish raw/, truth/ and the CSVs (see synth.h).
 *
 * raw/ and truth/ are built as raw.partial/ and truth.partial/ and renamed when every rank has
 * finished, so a killed job never leaves a tree that looks complete. */
#include "stages/synth/synth.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "lib/util/mpicheck.h"
#include "pipeline/runtime.h"
#include "stages/synth/synth_internal.h"

static const char *const clinical_header =
    "patient_id,hip,visit,days_from_baseline,treatment,treatment_day,treated_before_visit,"
    "outcome\n";
static const char *const labels_header = "sop_instance_uid,label\n";
static const char *const slices_header =
    "patient_id,visit,series_uid,sop_instance_uid,instance,y_mm,cuts_head,lesion_R,lesion_L,"
    "lesion_area_R_mm2,lesion_area_L_mm2,labelled,label,pixels_sha256\n";
static const char *const vessels_header =
    "patient_id,visit,day,series_uid,hip,post_graft,branches,length_mm,pixels_sha256\n";
static const char *const patients_header =
    "patient_id,site,sex,birth_year,bilateral,primary_hip,treated_hip,graft_day,visits,"
    "affected_R,affected_L,stage_first_R,stage_first_L,stage_last_R,stage_last_L,progressed_R,"
    "progressed_L\n";
static const char *const faults_header = "path,kind,verdict,detail\n";

static int read_params(SynthCtx *c, const Config *cfg, CohortParams *p, Err *e)
{
    memset(p, 0, sizeof *p);
    c->cfg = cfg;
    c->seed = (uint64_t)config_int(cfg, "run.seed");
    p->seed = c->seed;
    p->patients = (int)config_int(cfg, "synth.patients");
    p->bilateral_fraction = config_num(cfg, "synth.bilateral_fraction");
    p->sites = (int)config_int(cfg, "synth.sites");
    p->visits_min = (int)config_int(cfg, "synth.visits_min");
    p->visits_max = (int)config_int(cfg, "synth.visits_max");
    p->followup_days = (int)config_int(cfg, "synth.followup_days");
    p->slices = (int)config_int(cfg, "synth.slices_per_patient");
    p->labelled_slices = (int)config_int(cfg, "synth.labelled_slices");
    p->lesion_slice_fraction = config_num(cfg, "synth.lesion_slice_fraction");
    p->progression_fraction = config_num(cfg, "synth.progression_fraction");
    p->treated_fraction = config_num(cfg, "synth.treated_fraction");
    p->vessel_length_change_mm = config_num(cfg, "synth.vessel_length_change_mm");
    p->vessel_length_change_sd_mm = config_num(cfg, "synth.vessel_length_change_sd_mm");
    p->vessel_branch_change = config_num(cfg, "synth.vessel_branch_change");
    p->vessel_branch_change_sd = config_num(cfg, "synth.vessel_branch_change_sd");
    p->fault_fraction = config_num(cfg, "synth.fault_fraction");
    p->vessel_slices = (int)config_int(cfg, "synth.vessel_slices");
    c->fov_mm = config_num(cfg, "synth.fov_mm");
    c->snr = config_num(cfg, "synth.snr");
    p->lesion_contrast = config_num(cfg, "synth.lesion_contrast");
    c->supersample = (int)config_int(cfg, "synth.supersample");
    c->vessel_matrix = (int)config_int(cfg, "synth.vessel_matrix");
    c->vessel_slices = p->vessel_slices;
    c->vessel_voxel_mm = config_num(cfg, "synth.vessel_voxel_mm");
    char *const *items;
    c->n_matrix = config_list(cfg, "synth.matrix", &items);
    for (int k = 0; k < c->n_matrix; k++)
        c->matrix[k] = atoi(items[k]);
    int n = config_list(cfg, "synth.encodings", &items);
    c->n_encodings = 0;
    for (int k = 0; k < n; k++)
        for (int ts = 0; ts < DICOM_TS_COUNT; ts++)
            if (!strcmp(items[k], dicom_ts_name((DicomTransferSyntax)ts)))
                c->encodings[c->n_encodings++] = (DicomTransferSyntax)ts;
    if (c->n_encodings != n)
        return err_set(e, ERR_INTERNAL, "synth.encodings: a choice has no transfer syntax");
    return 0;
}

/* Rank 0: writes header + rows to path, atomically. */
static int write_csv(const char *path, const char *header, const char *rows, size_t len, Err *e)
{
    StrBuf out = STRBUF_INIT;
    strbuf_puts(&out, header);
    strbuf_append(&out, rows, len);
    char *text;
    size_t text_len;
    int rc = strbuf_finish(&out, &text, &text_len, e);
    if (!rc)
        rc = file_write_atomic(path, text, text_len, e);
    mem_free(text);
    return rc;
}

/* This rank's patients: each patient's clean series, then its faults. */
static int generate(SynthCtx *c, Err *e)
{
    uint64_t begin, end;
    rt_share((uint64_t)c->plan.params.patients, &begin, &end);
    Progress bar;
    rt_progress_start(&bar, "synth: patients of rank 0", end - begin);
    CohortPatient *pt = mem_alloc(sizeof *pt);
    if (!pt)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = 0;
    for (uint64_t i = begin; i < end && !rc; i++) {
        if ((rc = cohort_patient(&c->plan, (int)i, pt, e)))
            break;
        int relocated = 0;
        for (int f = 0; f < c->plan.n_faults; f++)
            relocated +=
                c->plan.fault_patient[f] == (int)i && f % SYNTH_FAULT_KINDS == FAULT_NESTED_NAMES;
        rc = synth_write_patient(c, pt, relocated, e);
        for (int f = 0; f < c->plan.n_faults && !rc; f++)
            if (c->plan.fault_patient[f] == (int)i)
                rc = synth_inject_fault(c, pt, f, e);
        rt_progress_update(&bar, i + 1 - begin);
    }
    rt_progress_finish(&bar);
    mem_free(pt);
    return rc;
}

static int alloc_scratch(SynthCtx *c, Err *e)
{
    int m = 0;
    for (int k = 0; k < c->n_matrix; k++)
        m = c->matrix[k] > m ? c->matrix[k] : m;
    size_t t1 = (size_t)m * m, mra = (size_t)c->vessel_matrix * c->vessel_matrix;
    c->pixels = mem_alloc((t1 > mra ? t1 : mra) * sizeof *c->pixels);
    c->mask = mem_alloc(t1);
    c->volume = mem_alloc(mra * (size_t)c->vessel_slices * sizeof *c->volume);
    if (!c->pixels || !c->mask || !c->volume)
        return err_set(e, ERR_NOMEM, "out of memory for image buffers");
    return 0;
}

static void free_ctx(SynthCtx *c)
{
    cohort_plan_free(&c->plan);
    strbuf_free(&c->clinical);
    strbuf_free(&c->labels);
    strbuf_free(&c->slices);
    strbuf_free(&c->vessels);
    strbuf_free(&c->patients);
    strbuf_free(&c->faults);
    mem_free(c->pixels);
    mem_free(c->mask);
    mem_free(c->volume);
}

/* Rank 0: removes what a previous run left and makes the .partial directories. */
static int prepare_dirs(const SynthCtx *c, Err *e)
{
    if (rt_rank() != 0)
        return 0;
    int rc = dir_remove_tree(c->raw, e);
    if (!rc)
        rc = dir_remove_tree(c->truth, e);
    if (!rc)
        rc = dir_create(c->raw, e);
    if (!rc)
        rc = dir_create(c->truth, e);
    return rc;
}

/* Rank 0: replaces final/ by partial/. */
static int publish_dir(const char *partial, const char *final, Err *e)
{
    int rc = dir_remove_tree(final, e);
    if (!rc && rename(partial, final) != 0)
        rc = err_set(e, ERR_IO, "%s: cannot rename to %s", partial, final);
    return rc;
}

int synth_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    SynthCtx c = {0};
    CohortParams params;
    const char *run = s->run.path;
    int rc = read_params(&c, &s->cfg, &params, e);
    if (!rc)
        rc = cohort_plan(&c.plan, &params, e);
    snprintf(c.raw, sizeof c.raw, "%s/raw.partial", run);
    snprintf(c.truth, sizeof c.truth, "%s/truth.partial", run);
    if (!rc)
        rc = prepare_dirs(&c, e);
    if (rt_agree(e))
        goto out;
    if ((rc = alloc_scratch(&c, e)) == 0)
        rc = generate(&c, e);
    if (rt_agree(e))
        goto out;

    char path[4400];
    const struct {
        StrBuf *rows;
        const char *header;
        const char *dir;
        const char *name;
    } csv[] = {
        {&c.clinical, clinical_header, run, "clinical.csv"},
        {&c.labels, labels_header, run, "labels.csv"},
        {&c.patients, patients_header, c.truth, "patients.csv"},
        {&c.slices, slices_header, c.truth, "slices.csv"},
        {&c.vessels, vessels_header, c.truth, "vessels.csv"},
        {&c.faults, faults_header, c.truth, "faults.csv"},
    };
    enum { N_CSV = sizeof csv / sizeof csv[0] };
    /* Gather every table first (collective, failures agreed inside), then rank 0 writes. */
    char *rows[N_CSV] = {0};
    size_t lens[N_CSV] = {0};
    for (int k = 0; k < N_CSV && !rc; k++)
        rc = rt_gather_text(csv[k].rows->s ? csv[k].rows->s : "", csv[k].rows->len, &rows[k],
                            &lens[k], e);
    for (int k = 0; k < N_CSV && !rc && rt_rank() == 0; k++) {
        snprintf(path, sizeof path, "%s/%s", csv[k].dir, csv[k].name);
        rc = write_csv(path, csv[k].header, rows[k], lens[k], e);
    }
    for (int k = 0; k < N_CSV; k++)
        mem_free(rows[k]);
    if (rt_agree(e))
        goto out;
    unsigned long long mine[2] = {c.files, c.bytes}, total[2] = {0, 0};
    if (rt_mpi_active() && rt_size() > 1)
        rc = MPI_CALL(
            e, MPI_Reduce(mine, total, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD));
    else
        memcpy(total, mine, sizeof total);

    if (rt_rank() == 0 && !rc) {
        char raw[4400], truth[4400];
        snprintf(raw, sizeof raw, "%s/raw", run);
        snprintf(truth, sizeof truth, "%s/truth", run);
        rc = publish_dir(c.raw, raw, e);
        if (!rc)
            rc = publish_dir(c.truth, truth, e);
        int preview = config_bool(&s->cfg, "synth.preview");
        if (!rc && preview) {
            snprintf(path, sizeof path, "%s/synth_preview.png", run);
            rc = synth_write_preview(&c, path, e);
        }
        const char *outputs[] = {"raw", "clinical.csv", "labels.csv", "truth", "synth_preview.png"};
        if (!rc)
            rc = session_record_stage(s, "synth", NULL, 0, outputs, preview ? 5 : 4,
                                      MPI_Wtime() - t0, e);
        if (!rc)
            log_info("synth: %d patients, %llu files, %.1f MiB, %d faults, in %.1f s",
                     params.patients, total[0], total[1] / 1048576.0, c.plan.n_faults,
                     MPI_Wtime() - t0);
    }
    rt_agree(e);
out:
    free_ctx(&c);
    return e->code;
}
