/* deid.c: de-identification. Patients become keyed pseudonyms, study dates become days from the
 * patient's first study, and only age (not the birth date) is kept. PatientID, names, birth
 * dates, addresses and institutions never reach cohort.h5, the reports or the logs.
 *
 * Pseudonym: the first 16 hex digits of HMAC-SHA-256(site key, PatientID). Without the key
 * nobody can tell which pseudonym belongs to which PatientID, nor recompute one; with it, the
 * site can re-identify its own patients. The key comes from the environment variable named by
 * ingest.site_key_env, or (synthetic data only) from ingest.site_key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util/mem.h"
#include "lib/util/sha256.h"
#include "stages/ingest/ingest_internal.h"

int ingest_site_key(Ingest *in, Err *e)
{
    const char *key = config_str(&in->s->cfg, "ingest.site_key");
    const char *env = config_str(&in->s->cfg, "ingest.site_key_env");
    if (!key && env && env[0])
        key = getenv(env);
    if (!key || !key[0])
        return err_set(e, ERR_CONFIG,
                       "ingest: no site key for patient pseudonyms: set the environment variable "
                       "%s (ingest.site_key_env), or ingest.site_key for synthetic data",
                       env ? env : "named by ingest.site_key_env");
    in->key_len = strlen(key) < sizeof in->key ? strlen(key) : sizeof in->key;
    memcpy(in->key, key, in->key_len);
    return 0;
}

/* Days since 1970-01-01 of a YYYYMMDD date, or INT32_MIN when it is not one. */
static long date_days(const char *d)
{
    int y, m, day;
    if (strlen(d) != 8 || sscanf(d, "%4d%2d%2d", &y, &m, &day) != 3 || m < 1 || m > 12 || day < 1 ||
        day > 31 || y < 1800 || y > 2200)
        return INT32_MIN;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = day, .tm_hour = 12};
    return (long)(timegm(&tm) / 86400);
}

static int find_patient(const Ingest *in, const char *id)
{
    int lo = 0, hi = in->n_patients - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(in->patients[mid].id, id);
        if (!c)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int cmp_study(const void *a, const void *b)
{
    const Study *x = a, *y = b;
    int c;
    if (x->patient != y->patient)
        return x->patient < y->patient ? -1 : 1;
    if ((c = strcmp(x->date, y->date)))
        return c;
    return strcmp(x->uid, y->uid);
}

/* qsort has no context argument in C11: the records whose fields are sorted. */
static const Ingest *sort_in;

static int cmp_patient_ref(const void *a, const void *b)
{
    const FileRec *x = &sort_in->recs[*(const int *)a], *y = &sort_in->recs[*(const int *)b];
    return strcmp(REC_STR(sort_in, x, patient_id), REC_STR(sort_in, y, patient_id));
}

int ingest_patients(Ingest *in, Err *e)
{
    /* Readable records, sorted by PatientID: one int each, and the tables hold only unique
     * rows, so memory follows patients and studies, not files. */
    int n = 0;
    for (int i = 0; i < in->n_recs; i++)
        n += !in->recs[i].skip;
    int *order = mem_calloc((size_t)(n ? n : 1), sizeof *order);
    if (!order)
        return err_set(e, ERR_NOMEM, "out of memory building the patient table");
    n = 0;
    for (int i = 0; i < in->n_recs; i++)
        if (!in->recs[i].skip)
            order[n++] = i;
    sort_in = in;
    qsort(order, (size_t)n, sizeof *order, cmp_patient_ref);
    int patients = 0, studies = 0;
    for (int k = 0; k < n; k++)
        patients += !k || cmp_patient_ref(&order[k - 1], &order[k]) != 0;
    in->patients = mem_calloc((size_t)(patients ? patients : 1), sizeof *in->patients);
    if (!in->patients) {
        mem_free(order);
        return err_set(e, ERR_NOMEM, "out of memory building the patient table");
    }
    /* Patients: unique PatientIDs of readable files, in byte order. */
    for (int k = 0; k < n; k++)
        if (!k || cmp_patient_ref(&order[k - 1], &order[k]) != 0)
            snprintf(in->patients[in->n_patients++].id, sizeof in->patients->id, "%s",
                     REC_STR(in, &in->recs[order[k]], patient_id));
    /* Studies: unique (patient, StudyInstanceUID); records of a patient are together in order,
     * so a study repeated by its slices is a repeat of one already in the patient's short list. */
    Study *st = mem_calloc(64, sizeof *st);
    int cap = 64;
    int rc = st ? 0 : err_set(e, ERR_NOMEM, "out of memory building the study table");
    int p = -1, patient_first = 0;
    for (int k = 0; !rc && k < n; k++) {
        const FileRec *r = &in->recs[order[k]];
        if (!k || cmp_patient_ref(&order[k - 1], &order[k]) != 0) {
            p++;
            patient_first = studies;
        }
        Patient *pt = &in->patients[p];
        const char *sex = REC_STR(in, r, sex);
        if (!pt->sex[0] && sex[0])
            snprintf(pt->sex, sizeof pt->sex, "%s", sex);
        const char *uid = REC_STR(in, r, study_uid);
        int seen = 0;
        for (int j = studies - 1; j >= patient_first && !seen; j--)
            seen = !strcmp(st[j].uid, uid);
        if (seen)
            continue;
        if (studies == cap) {
            Study *grown = mem_realloc(st, (size_t)cap * 2 * sizeof *st);
            if (!grown) {
                rc = err_set(e, ERR_NOMEM, "out of memory building the study table");
                break;
            }
            st = grown;
            cap *= 2;
        }
        Study *s = &st[studies++];
        memset(s, 0, sizeof *s);
        s->patient = p;
        snprintf(s->uid, sizeof s->uid, "%s", uid);
        snprintf(s->date, sizeof s->date, "%s", REC_STR(in, r, study_date));
    }
    mem_free(order);
    if (rc) {
        mem_free(st);
        return rc;
    }
    in->studies = st;
    in->n_studies = studies;
    qsort(in->studies, (size_t)in->n_studies, sizeof *in->studies, cmp_study);
    for (int i = 0; i < in->n_studies; i++) {
        Study *s = &in->studies[i];
        Patient *pt = &in->patients[s->patient];
        if (!pt->n_studies++)
            snprintf(pt->first_date, sizeof pt->first_date, "%s", s->date);
        s->visit = pt->n_studies;
        long d0 = date_days(pt->first_date), d = date_days(s->date);
        s->day = d0 == INT32_MIN || d == INT32_MIN ? -1 : (int)(d - d0);
    }
    for (int q = 0; q < in->n_patients; q++) {
        Patient *pt = &in->patients[q];
        uint8_t mac[32];
        char hex[65];
        hmac_sha256(in->key, in->key_len, pt->id, strlen(pt->id), mac);
        sha256_to_hex(mac, hex);
        snprintf(pt->pseudonym, sizeof pt->pseudonym, "%.16s", hex);
        pt->age_years = NAN;
    }
    /* Age at the first study, from the first birth date any of the patient's files gives. */
    for (int i = 0; i < in->n_recs; i++) {
        const FileRec *r = &in->recs[i];
        if (r->skip || !r->birth_date)
            continue;
        Patient *pt = &in->patients[find_patient(in, REC_STR(in, r, patient_id))];
        long born = date_days(REC_STR(in, r, birth_date)), first = date_days(pt->first_date);
        if (isnan(pt->age_years) && born != INT32_MIN && first != INT32_MIN)
            pt->age_years = floor((double)(first - born) / 365.2425 * 10) / 10;
    }
    return 0;
}

int ingest_patient_index(const Ingest *in, const char *patient_id)
{
    return find_patient(in, patient_id);
}

int ingest_study_index(const Ingest *in, int patient, const char *study_uid)
{
    /* studies are sorted by patient first: find the patient's, then look among them */
    int lo = 0, hi = in->n_studies;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (in->studies[mid].patient < patient)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = lo; i < in->n_studies && in->studies[i].patient == patient; i++)
        if (!strcmp(in->studies[i].uid, study_uid))
            return i;
    return -1;
}

void ingest_safe_path(const Ingest *in, const char *path, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = path;
    if (cap == 0)
        return;
    while (*p && o + 1 < cap) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[1024];
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        int pi = find_patient(in, part);
        if (pi >= 0) {
            o += (size_t)snprintf(out + o, cap - o, "%s", in->patients[pi].pseudonym);
        } else {
            /* 8-digit runs that are dates become "date" */
            for (size_t k = 0; k < len && o + 1 < cap;) {
                size_t run = 0;
                while (k + run < len && part[k + run] >= '0' && part[k + run] <= '9')
                    run++;
                if (run == 8) {
                    char d[9];
                    memcpy(d, part + k, 8);
                    d[8] = '\0';
                    if (date_days(d) != INT32_MIN) {
                        o += (size_t)snprintf(out + o, cap - o, "date");
                        k += 8;
                        continue;
                    }
                }
                size_t take = run ? run : 1;
                o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)take, part + k);
                k += take;
            }
        }
        if (o >= cap)
            o = cap - 1;
        if (!end)
            break;
        if (o + 1 < cap)
            out[o++] = '/';
        p = end + 1;
    }
    out[o < cap ? o : cap - 1] = '\0';
}
