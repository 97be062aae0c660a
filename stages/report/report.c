/* report.c: `onfh report` (see report.h). Each section is one function appending HTML to a
 * StrBuf; the inputs are parsed with the project's JSON, CSV and HDF5 readers, and anything a
 * file lacks is shown as missing rather than guessed. */
#include "stages/report/report.h"

#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/h5/h5read.h"
#include "lib/image/svg.h"
#include "lib/util/csv.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "lib/util/mem.h"
#include "lib/util/strbuf.h"
#include "pipeline/runtime.h"

enum { MAX_MODELS = 32, MAX_FOLDS = 32 };

typedef struct Inputs {
    const char *dir;
    JsonValue *manifest, *ingest, *splits, *metrics, *selection, *treatment; /* NULL: absent */
    JsonValue *progression;
} Inputs;

/* Parses dir/name into *out; a missing file leaves *out NULL (its section says so). */
static int load_json(const char *dir, const char *name, JsonValue **out, Err *e)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *out = NULL;
    if (!file_exists(path))
        return 0;
    return json_parse_file(path, out, e);
}

static void esc(StrBuf *b, const char *s)
{
    svg_escape(b, s ? s : "");
}

/* A number for a table cell: 4 significant digits, "n/a" for NaN or a missing value. */
static void num(StrBuf *b, const JsonValue *v)
{
    if (!v || v->type != JSON_NUMBER || isnan(v->number))
        strbuf_puts(b, "n/a");
    else
        strbuf_printf(b, "%.4g", v->number);
}

/* "0.912 (0.85-0.96)": a pooled metric of metrics.json with its BCa interval. */
static void estimate_ci(StrBuf *b, const JsonValue *metric)
{
    num(b, json_get(metric, "estimate"));
    const JsonValue *ci = json_get(metric, "bca");
    if (ci && ci->type == JSON_ARRAY && ci->n == 2) {
        strbuf_puts(b, " <span class=ci>(");
        num(b, &ci->items[0]);
        strbuf_puts(b, "&ndash;");
        num(b, &ci->items[1]);
        strbuf_puts(b, ")</span>");
    }
}

static void missing(StrBuf *b, const char *what, const char *stage)
{
    strbuf_puts(b, "<p class=missing>");
    esc(b, what);
    strbuf_puts(b, " is not in this run directory: the <code>");
    esc(b, stage);
    strbuf_puts(b, "</code> stage has not run.</p>\n");
}

// ---------------------------------------------------------------------------------------------
// Sections

static void section_summary(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=summary>Summary</h2>\n");
    const JsonValue *sel = in->selection;
    if (!sel) {
        missing(b, "evaluation.json", "evaluate");
        return;
    }
    const char *arch = json_get_string(sel, "selected");
    strbuf_puts(b, "<p>Selected architecture: <b>");
    esc(b, arch ? arch : "none");
    strbuf_puts(b, "</b>, by pooled ");
    esc(b, json_get_string(sel, "metric"));
    strbuf_puts(b, " ");
    num(b, json_get(sel, "estimate"));
    const JsonValue *ci = json_get(sel, "bca");
    if (ci && ci->type == JSON_ARRAY && ci->n == 2) {
        strbuf_puts(b, " (95% BCa ");
        num(b, &ci->items[0]);
        strbuf_puts(b, "&ndash;");
        num(b, &ci->items[1]);
        strbuf_printf(b, ", %.0f patient resamples, seed %.0f)",
                      json_get_number(sel, "resamples", NAN), json_get_number(sel, "seed", NAN));
    }
    strbuf_puts(b, " in a ");
    esc(b, json_get_string(sel, "split_level"));
    strbuf_puts(b, "-level cross-validation. Tie rule: ");
    esc(b, json_get_string(sel, "tie_rule"));
    strbuf_puts(b, ".</p>\n");
}

static void section_cohort(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=cohort>Cohort and participant flow</h2>\n");
    const JsonValue *r = in->ingest;
    if (!r) {
        missing(b, "ingest_report.json", "ingest");
    } else {
        static const char *const keys[] = {"files",           "files_ingested", "patients",
                                           "studies",         "series",         "series_flagged",
                                           "training_slices", "labelled",       "lesion",
                                           "normal",          "vessel_series",  "clinical_rows"};
        strbuf_puts(b, "<table><tr><th>ingest_report.json</th><th>count</th></tr>\n");
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
            strbuf_printf(b, "<tr><td>%s</td><td>", keys[i]);
            num(b, json_get(r, keys[i]));
            strbuf_puts(b, "</td></tr>\n");
        }
        const JsonValue *sk = json_get(r, "files_skipped");
        for (size_t i = 0; sk && sk->type == JSON_OBJECT && i < sk->n; i++) {
            strbuf_puts(b, "<tr><td>skipped: ");
            esc(b, sk->keys[i]);
            strbuf_puts(b, "</td><td>");
            num(b, &sk->items[i]);
            strbuf_puts(b, "</td></tr>\n");
        }
        strbuf_puts(b, "</table>\n<p>Every skipped file is listed with its reason in "
                       "<code>ingest_report.csv</code>.</p>\n");
    }
    const JsonValue *s = in->splits;
    if (!s) {
        missing(b, "splits.json", "split");
        return;
    }
    strbuf_puts(b, "<p>Split: ");
    esc(b, json_get_string(s, "level"));
    strbuf_printf(b,
                  "-level, %.0f folds, validation share %.2f, seed %.0f, assignment SHA-256 "
                  "<code>",
                  json_get_number(s, "folds", NAN), json_get_number(s, "val_fraction", NAN),
                  json_get_number(s, "seed", NAN));
    esc(b, json_get_string(s, "assignment_sha256"));
    strbuf_puts(b, "</code>.</p>\n<table><tr><th>fold</th><th>train</th><th>validation</th>"
                   "<th>test</th></tr>\n");
    const JsonValue *folds = json_get(s, "fold");
    for (size_t k = 0; folds && folds->type == JSON_ARRAY && k < folds->n; k++) {
        const JsonValue *f = &folds->items[k];
        const JsonValue *tr = json_get(f, "train"), *va = json_get(f, "val"),
                        *te = json_get(f, "test");
        strbuf_printf(b, "<tr><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td></tr>\n", k,
                      tr ? tr->n : 0, va ? va->n : 0, te ? te->n : 0);
    }
    strbuf_puts(b, "</table>\n<p>Counts are labelled slices; no patient is in two partitions of "
                   "a fold in a patient-level split (checked when the split is read).</p>\n");
}

/* The architectures with a models/ARCH directory, sorted by name. */
static int list_archs(const char *dir, char names[][128], int cap)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/models", dir);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d)) && n < cap;)
        if (de->d_name[0] != '.' && strlen(de->d_name) < 128)
            snprintf(names[n++], 128, "%s", de->d_name);
    closedir(d);
    qsort(names, (size_t)n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* One column of log.csv as doubles ("" and non-numbers are NaN). */
static double *csv_doubles(const Csv *c, int col)
{
    double *v = mem_alloc((c->n_rows + 1) * sizeof *v);
    for (size_t i = 0; v && i < c->n_rows; i++) {
        char *end;
        const char *f = c->rows[i].field[col];
        v[i] = strtod(f, &end);
        if (end == f || *end)
            v[i] = NAN;
    }
    return v;
}

static void section_training(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=training>Training</h2>\n");
    char archs[MAX_MODELS][128];
    int n = list_archs(in->dir, archs, MAX_MODELS);
    if (n == 0) {
        missing(b, "models/", "train");
        return;
    }
    strbuf_puts(b, "<p>Per architecture and fold, from <code>models/ARCH/foldK/log.csv</code>: "
                   "training loss (solid) and validation loss (dashed) per epoch, one colour "
                   "per fold.</p>\n<div class=figs>\n");
    for (int a = 0; a < n; a++) {
        Csv logs[MAX_FOLDS];
        int nf = 0, epochs = 1;
        double top = 0;
        for (int k = 0; k < MAX_FOLDS; k++) {
            char path[4600];
            snprintf(path, sizeof path, "%s/models/%s/fold%d/log.csv", in->dir, archs[a], k);
            Err e = {0};
            if (!file_exists(path) || csv_read_file(&logs[nf], path, &e))
                continue;
            int ce, cl, cv;
            if (csv_column(&logs[nf], "epoch", &ce, &e) ||
                csv_column(&logs[nf], "train_loss", &cl, &e) ||
                csv_column(&logs[nf], "val_loss", &cv, &e)) {
                csv_free(&logs[nf]);
                continue;
            }
            if ((int)logs[nf].n_rows > epochs)
                epochs = (int)logs[nf].n_rows;
            for (size_t i = 0; i < logs[nf].n_rows; i++)
                top = fmax(
                    top, fmax(atof(logs[nf].rows[i].field[cl]), atof(logs[nf].rows[i].field[cv])));
            nf++;
        }
        if (nf == 0)
            continue;
        SvgChart c;
        char title[200];
        snprintf(title, sizeof title, "%s: loss per epoch", archs[a]);
        svg_begin(&c, b, 340, 240, 1, epochs > 1 ? epochs : 2, 0, top > 0 ? top * 1.05 : 1, title,
                  "epoch", "cross-entropy");
        const char *names[MAX_FOLDS], *colors[MAX_FOLDS];
        char labels[MAX_FOLDS][16];
        for (int k = 0; k < nf; k++) {
            Err e = {0};
            int ce, cl, cv;
            csv_column(&logs[k], "epoch", &ce, &e);
            csv_column(&logs[k], "train_loss", &cl, &e);
            csv_column(&logs[k], "val_loss", &cv, &e);
            double *x = csv_doubles(&logs[k], ce), *tl = csv_doubles(&logs[k], cl),
                   *vl = csv_doubles(&logs[k], cv);
            if (x && tl && vl) {
                svg_line(&c, x, tl, (int)logs[k].n_rows, svg_color(k), 1.5, 0);
                svg_line(&c, x, vl, (int)logs[k].n_rows, svg_color(k), 1.5, 1);
            }
            mem_free(x), mem_free(tl), mem_free(vl);
            snprintf(labels[k], sizeof labels[k], "fold %d", k);
            names[k] = labels[k];
            colors[k] = svg_color(k);
            csv_free(&logs[k]);
        }
        svg_legend(&c, nf, names, colors);
        svg_end(&c);
    }
    strbuf_puts(b, "</div>\n");
}

static const char *const table_metrics[] = {"roc_auc",     "pr_auc",           "accuracy",
                                            "sensitivity", "specificity",      "f1",
                                            "brier",       "calibration_slope"};

static void section_models(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=models>Architecture comparison</h2>\n");
    const JsonValue *models = json_get(in->metrics, "models");
    if (!models || models->type != JSON_ARRAY) {
        missing(b, "metrics.json", "evaluate");
        return;
    }
    const JsonValue *bs = json_get(in->metrics, "bootstrap");
    strbuf_printf(b,
                  "<p>Out-of-fold predictions of every fold, pooled; 95%% BCa intervals from "
                  "%.0f bootstrap resamples of patients (stratified by outcome, seed %.0f). "
                  "Thresholds: ",
                  json_get_number(bs, "resamples", NAN), json_get_number(bs, "seed", NAN));
    esc(b, json_get_string(in->metrics, "threshold_rule"));
    strbuf_puts(b, ".</p>\n<table><tr><th>model</th>");
    for (size_t k = 0; k < sizeof table_metrics / sizeof *table_metrics; k++)
        strbuf_printf(b, "<th>%s</th>", table_metrics[k]);
    strbuf_puts(b, "</tr>\n");
    for (size_t m = 0; m < models->n; m++) {
        const JsonValue *md = &models->items[m];
        strbuf_puts(b, "<tr><td>");
        esc(b, json_get_string(md, "name"));
        strbuf_puts(b, "</td>");
        for (size_t k = 0; k < sizeof table_metrics / sizeof *table_metrics; k++) {
            strbuf_puts(b, "<td>");
            estimate_ci(b, json_get(json_get(md, "pooled"), table_metrics[k]));
            strbuf_puts(b, "</td>");
        }
        strbuf_puts(b, "</tr>\n");
    }
    strbuf_puts(b, "</table>\n");
    /* forest plot of the pooled ROC AUC, one row per model from the top */
    int n = (int)models->n;
    SvgChart c;
    svg_begin(&c, b, 560, 40 + 22 * n + 40, 0, 1, 0, n + 1, "ROC AUC, pooled, 95% BCa", "ROC AUC",
              NULL);
    for (int m = 0; m < n; m++) {
        const JsonValue *auc = json_get(json_get(&models->items[m], "pooled"), "roc_auc");
        const JsonValue *ci = json_get(auc, "bca");
        double lo = NAN, hi = NAN;
        if (ci && ci->type == JSON_ARRAY && ci->n == 2 && ci->items[0].type == JSON_NUMBER &&
            ci->items[1].type == JSON_NUMBER)
            lo = ci->items[0].number, hi = ci->items[1].number;
        double y = n - m;
        svg_interval(&c, y, lo, json_get_number(auc, "estimate", NAN), hi, svg_color(m));
        svg_row_label(&c, y, json_get_string(&models->items[m], "name"));
    }
    svg_end(&c);
}

/* One curve per model of evaluation.h5: /models/NAME/XNAME against YNAME. */
static void curves(StrBuf *b, const Inputs *in, const char *title, const char *xname,
                   const char *yname, const char *xlabel, const char *ylabel)
{
    const JsonValue *models = json_get(in->metrics, "models");
    char path[4400];
    snprintf(path, sizeof path, "%s/evaluation.h5", in->dir);
    hid_t f;
    Err e = {0};
    if (!models || models->type != JSON_ARRAY || !file_exists(path) || h5_open_read(path, &f, &e)) {
        missing(b, "evaluation.h5", "evaluate");
        return;
    }
    SvgChart c;
    svg_begin(&c, b, 360, 300, 0, 1, 0, 1, title, xlabel, ylabel);
    double diag[2] = {0, 1};
    svg_line(&c, diag, diag, 2, "#999", 1, 1);
    const char *names[MAX_MODELS], *colors[MAX_MODELS];
    int shown = 0;
    for (size_t m = 0; m < models->n && shown < MAX_MODELS; m++) {
        const char *name = json_get_string(&models->items[m], "name");
        char px[512], py[512];
        snprintf(px, sizeof px, "/models/%s/%s", name ? name : "", xname);
        snprintf(py, sizeof py, "/models/%s/%s", name ? name : "", yname);
        H5Array ax = {0}, ay = {0};
        if (!name || h5_read_float(f, px, &ax, &e) || h5_read_float(f, py, &ay, &e)) {
            h5_array_free(&ax);
            continue;
        }
        size_t np = ax.numel < ay.numel ? ax.numel : ay.numel;
        double *x = mem_alloc((np + 1) * sizeof *x), *y = mem_alloc((np + 1) * sizeof *y);
        for (size_t i = 0; x && y && i < np; i++)
            x[i] = ((float *)ax.data)[i], y[i] = ((float *)ay.data)[i];
        if (x && y) {
            svg_line(&c, x, y, (int)np, svg_color((int)m), 1.5, 0);
            svg_dots(&c, x, y, strcmp(xname, "roc_fpr") ? (int)np : 0, svg_color((int)m), 2.5);
        }
        mem_free(x), mem_free(y);
        h5_array_free(&ax), h5_array_free(&ay);
        names[shown] = name;
        colors[shown++] = svg_color((int)m);
    }
    svg_legend(&c, shown, names, colors);
    svg_end(&c);
    h5_close(f);
}

static void section_curves(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=roc>ROC and calibration</h2>\n<p>Pooled out-of-fold ROC curves and "
                   "reliability diagrams (<code>evaluation.h5</code>; calibration in equal-width "
                   "bins of predicted probability, empty bins left out).</p>\n<div class=figs>\n");
    curves(b, in, "ROC, pooled", "roc_fpr", "roc_tpr", "1 - specificity", "sensitivity");
    curves(b, in, "Calibration", "calibration_mean_predicted", "calibration_fraction_positive",
           "mean predicted probability", "fraction with a lesion");
    strbuf_puts(b, "</div>\n");
}

static void pair_rows(StrBuf *b, const JsonValue *pairs)
{
    for (size_t i = 0; pairs && pairs->type == JSON_ARRAY && i < pairs->n; i++) {
        const JsonValue *p = &pairs->items[i];
        strbuf_puts(b, "<tr><td>");
        esc(b, json_get_string(p, "a"));
        strbuf_puts(b, "</td><td>");
        esc(b, json_get_string(p, "b"));
        static const char *const cols[] = {"auc_difference",      "delong_p",  "delong_p_holm",
                                           "accuracy_difference", "mcnemar_p", "mcnemar_p_holm"};
        for (size_t k = 0; k < sizeof cols / sizeof *cols; k++) {
            strbuf_puts(b, "</td><td>");
            num(b, json_get(p, cols[k]));
        }
        strbuf_puts(b, "</td></tr>\n");
    }
}

static void section_pairs(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=pairs>Paired tests</h2>\n");
    const JsonValue *cmp = json_get(in->metrics, "comparisons");
    if (!cmp) {
        missing(b, "metrics.json", "evaluate");
        return;
    }
    strbuf_puts(b, "<p>");
    esc(b, json_get_string(cmp, "auc_test"));
    strbuf_puts(b, "; ");
    esc(b, json_get_string(cmp, "accuracy_test"));
    strbuf_puts(b, "; ");
    esc(b, json_get_string(cmp, "adjustment"));
    strbuf_puts(b,
                ".</p>\n<table><tr><th>a</th><th>b</th><th>AUC a &minus; b</th><th>DeLong p</th>"
                "<th>Holm</th><th>accuracy a &minus; b</th><th>McNemar p</th><th>Holm</th></tr>\n");
    pair_rows(b, json_get(cmp, "architectures"));
    pair_rows(b, json_get(cmp, "cnn_vs_baselines"));
    strbuf_puts(b, "</table>\n");
}

static void section_leakage(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=leakage>Leakage: slice-level against patient-level</h2>\n");
    const JsonValue *pf = json_get(in->metrics, "paper_faithful");
    if (!pf) {
        strbuf_puts(b, "<p>Not measured in this run: the paper split by slice, which lets one "
                       "patient's slices into both training and test. Train a slice-level run "
                       "of the same cohort and name it in <code>evaluate.compare_run</code> "
                       "(data-schema/evaluation.md) to put a number on the inflation.</p>\n");
        return;
    }
    strbuf_puts(b, "<p>Compared with run <code>");
    esc(b, json_get_string(pf, "run"));
    strbuf_puts(b, "</code>. ");
    esc(b, json_get_string(pf, "note"));
    strbuf_puts(b, "</p>\n<table><tr><th>model</th><th>metric</th><th>patient-level</th>"
                   "<th>slice-level</th><th>inflation</th></tr>\n");
    const JsonValue *models = json_get(pf, "models");
    for (size_t m = 0; models && models->type == JSON_ARRAY && m < models->n; m++) {
        const JsonValue *md = &models->items[m];
        for (size_t k = 0; k < md->n; k++) {
            const JsonValue *v = &md->items[k];
            if (md->type != JSON_OBJECT || v->type != JSON_OBJECT)
                continue;
            strbuf_puts(b, "<tr><td>");
            esc(b, json_get_string(md, "name"));
            strbuf_puts(b, "</td><td>");
            esc(b, md->keys[k]);
            strbuf_puts(b, "</td><td>");
            num(b, json_get(v, "patient_level"));
            strbuf_puts(b, "</td><td>");
            num(b, json_get(v, "slice_level"));
            strbuf_puts(b, "</td><td>");
            num(b, json_get(v, "inflation"));
            strbuf_puts(b, "</td></tr>\n");
        }
    }
    strbuf_puts(b, "</table>\n");
}

/* A row of the treatment table: n, mean change, its three intervals, the two p-values. */
static void change_row(StrBuf *b, const char *what, const JsonValue *v)
{
    strbuf_printf(b, "<tr><td>%s</td><td>", what);
    num(b, json_get(v, "n"));
    strbuf_puts(b, "</td><td>");
    num(b, json_get(v, "mean_change"));
    static const char *const cis[] = {"ci_t", "ci_bootstrap_bca", "ci_bootstrap_percentile"};
    for (int k = 0; k < 3; k++) {
        const JsonValue *ci = json_get(v, cis[k]);
        strbuf_puts(b, "</td><td>");
        if (ci && ci->type == JSON_ARRAY && ci->n == 2) {
            num(b, &ci->items[0]);
            strbuf_puts(b, " to ");
            num(b, &ci->items[1]);
        }
    }
    strbuf_puts(b, "</td><td>");
    num(b, json_get(v, "p_paired_t"));
    strbuf_puts(b, "</td><td>");
    num(b, json_get(v, "p_wilcoxon"));
    strbuf_puts(b, "</td></tr>\n");
}

static void section_treatment(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=treatment>Vessels: treatment response</h2>\n");
    const JsonValue *t = in->treatment;
    if (!t) {
        missing(b, "treatment.json", "vessels");
        return;
    }
    strbuf_printf(b,
                  "<p>Per patient, post minus pre (grafted hip); %.0f%% intervals: t, and "
                  "%.0f bootstrap resamples of patients (seed %.0f). Definitions: ",
                  100 * json_get_number(t, "confidence_level", NAN),
                  json_get_number(t, "bootstrap_resamples", NAN),
                  json_get_number(t, "bootstrap_seed", NAN));
    const JsonValue *d = json_get(t, "definitions");
    for (size_t i = 0; d && d->type == JSON_OBJECT && i < d->n; i++) {
        strbuf_puts(b, i ? "; <i>" : "<i>");
        esc(b, d->keys[i]);
        strbuf_puts(b, "</i>: ");
        esc(b, d->items[i].type == JSON_STRING ? d->items[i].string : "");
    }
    strbuf_puts(b, ".</p>\n<table><tr><th>change</th><th>patients</th><th>mean</th><th>t CI</th>"
                   "<th>BCa CI</th><th>percentile CI</th><th>paired t p</th><th>Wilcoxon p</th>"
                   "</tr>\n");
    change_row(b, "vessel length, mm", json_get(t, "length_mm"));
    change_row(b, "branches", json_get(t, "branches"));
    strbuf_puts(b, "</table>\n");
    /* each patient's pre and post length, joined: the paired design at a glance */
    const JsonValue *pts = json_get(t, "patients");
    int n = pts && pts->type == JSON_ARRAY ? (int)pts->n : 0;
    double top = 0;
    for (int i = 0; i < n; i++) {
        const JsonValue *pp = json_get(&pts->items[i], "length_mm_pre_post");
        for (size_t k = 0; pp && pp->type == JSON_ARRAY && k < pp->n; k++)
            top = fmax(top, pp->items[k].type == JSON_NUMBER ? pp->items[k].number : 0);
    }
    if (n == 0)
        return;
    SvgChart c;
    svg_begin(&c, b, 300, 260, -0.3, 1.3, 0, top > 0 ? top * 1.1 : 1,
              "vessel length per patient, pre and post", "0 = pre, 1 = post", "mm");
    for (int i = 0; i < n; i++) {
        const JsonValue *pp = json_get(&pts->items[i], "length_mm_pre_post");
        if (!pp || pp->type != JSON_ARRAY || pp->n != 2 || pp->items[0].type != JSON_NUMBER ||
            pp->items[1].type != JSON_NUMBER)
            continue;
        double x[2] = {0, 1}, y[2] = {pp->items[0].number, pp->items[1].number};
        svg_line(&c, x, y, 2, svg_color(i), 1.2, 0);
        svg_dots(&c, x, y, 2, svg_color(i), 2.5);
    }
    svg_end(&c);
}

/* n numbers of a JSON array into out (NaN for null); returns how many. */
static int json_numbers(const JsonValue *a, double *out, int cap)
{
    int n = 0;
    for (size_t i = 0; a && a->type == JSON_ARRAY && i < a->n && n < cap; i++)
        out[n++] = a->items[i].type == JSON_NUMBER ? a->items[i].number : NAN;
    return n;
}

static void section_progression(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=progression>Progression (LSTM over visits)</h2>\n");
    const JsonValue *p = in->progression;
    if (!p) {
        missing(b, "progression.json", "progression");
        return;
    }
    if (json_get(p, "available") && !json_get(p, "available")->boolean) {
        strbuf_puts(b, "<p class=missing>No forecast: ");
        esc(b, json_get_string(p, "reason"));
        strbuf_puts(b, ".</p>\n");
        return;
    }
    const JsonValue *pat = json_get(p, "patients"), *models = json_get(p, "models");
    const JsonValue *boot = json_get(p, "bootstrap");
    strbuf_printf(b, "<p>Outcome: ");
    esc(b, json_get_string(p, "outcome"));
    strbuf_printf(b,
                  ". Forecast from the visits up to day %.0f; %.0f patients (%.0f progressed, "
                  "%.0f stable), %.0f-fold cross-validation grouped by patient; %.0f%% BCa "
                  "intervals from %.0f patient resamples (seed %.0f). Agreement: predicted "
                  "progression (p &ge; 0.5) equal to the clinical outcome.</p>\n",
                  json_get_number(p, "cutoff_days", NAN), json_get_number(pat, "included", NAN),
                  json_get_number(pat, "progressed", NAN), json_get_number(pat, "stable", NAN),
                  json_get_number(json_get(p, "cross_validation"), "folds", NAN),
                  100 * json_get_number(boot, "confidence_level", NAN),
                  json_get_number(boot, "resamples", NAN), json_get_number(boot, "seed", NAN));
    const JsonValue *feats = json_get(p, "model_features");
    if (feats && feats->type == JSON_ARRAY && feats->n > 0) {
        strbuf_puts(b,
                    "<p>Per-visit features the models see (<code>progression.features</code>): ");
        for (size_t j = 0; j < feats->n; j++) {
            strbuf_puts(b, j ? ", " : "");
            esc(b, feats->items[j].type == JSON_STRING ? feats->items[j].string : "?");
        }
        strbuf_puts(b, "; each with its observation mask, and the years since the previous "
                       "visit.</p>\n");
    }
    strbuf_puts(b, "<table><tr><th>model</th><th>features of</th><th>ROC AUC (BCa)</th>"
                   "<th>agreement k/N</th><th>Brier</th><th>calibration slope</th></tr>\n");
    int nm = models && models->type == JSON_ARRAY ? (int)models->n : 0;
    for (int m = 0; m < nm; m++) {
        const JsonValue *x = &models->items[m], *ci = json_get(x, "roc_auc_bca");
        strbuf_puts(b, "<tr><td>");
        esc(b, json_get_string(x, "name"));
        strbuf_puts(b, "</td><td>");
        esc(b, json_get_string(x, "cnn"));
        strbuf_puts(b, "</td><td>");
        num(b, json_get(x, "roc_auc"));
        if (ci && ci->type == JSON_ARRAY && ci->n == 2) {
            strbuf_puts(b, " <span class=ci>(");
            num(b, &ci->items[0]);
            strbuf_puts(b, "&ndash;");
            num(b, &ci->items[1]);
            strbuf_puts(b, ")</span>");
        }
        const JsonValue *ag = json_get(x, "agreement");
        strbuf_printf(b, "</td><td>%.0f/%.0f</td><td>", json_get_number(ag, "k", NAN),
                      json_get_number(ag, "n", NAN));
        num(b, json_get(x, "brier"));
        strbuf_puts(b, "</td><td>");
        num(b, json_get(x, "calibration_slope"));
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</table>\n");
    const JsonValue *cmp = json_get(p, "comparisons");
    for (size_t i = 0; cmp && cmp->type == JSON_ARRAY && i < cmp->n; i++) {
        const JsonValue *c = &cmp->items[i];
        strbuf_puts(b, i ? "; " : "<p>DeLong: ");
        esc(b, json_get_string(c, "a"));
        strbuf_puts(b, " vs ");
        esc(b, json_get_string(c, "b"));
        strbuf_puts(b, " &Delta;AUC ");
        num(b, json_get(c, "auc_difference"));
        strbuf_puts(b, ", p ");
        num(b, json_get(c, "delong_p"));
    }
    strbuf_puts(b, cmp && cmp->type == JSON_ARRAY && cmp->n ? ".</p>\n" : "");
    const JsonValue *r50 = json_get(p, "resnet50");
    if (r50 && json_get(r50, "available") && !json_get(r50, "available")->boolean) {
        strbuf_puts(b, "<p>ResNet50-feature comparator: ");
        esc(b, json_get_string(r50, "reason"));
        strbuf_puts(b, ".</p>\n");
    }
    strbuf_puts(b, "<div class=figs>\n");
    SvgChart c;
    svg_begin(&c, b, 360, 300, 0, 1, 0, 1, "progression ROC (out of fold)", "1 - specificity",
              "sensitivity");
    double diag[2] = {0, 1};
    svg_line(&c, diag, diag, 2, "#999", 1, 1);
    const char *names[8], *colors[8];
    int shown = 0;
    for (int m = 0; m < nm && shown < 8; m++) {
        const JsonValue *roc = json_get(&models->items[m], "roc");
        double x[4096], y[4096];
        int n = json_numbers(json_get(roc, "fpr"), x, 4096);
        if (json_numbers(json_get(roc, "tpr"), y, 4096) != n || n == 0)
            continue;
        svg_line(&c, x, y, n, svg_color(m), 1.5, 0);
        names[shown] = json_get_string(&models->items[m], "name");
        colors[shown++] = svg_color(m);
    }
    svg_legend(&c, shown, names, colors);
    svg_end(&c);
    /* example trajectories: lesion extent over the visits, cut-off dashed */
    const JsonValue *ex = json_get(p, "example_trajectories");
    int ne = ex && ex->type == JSON_ARRAY ? (int)ex->n : 0;
    double top = 0, last = json_get_number(p, "cutoff_days", 0);
    for (int i = 0; i < ne; i++) {
        double v[64];
        int n = json_numbers(json_get(&ex->items[i], "extent_mm"), v, 64);
        for (int k = 0; k < n; k++)
            top = isnan(v[k]) ? top : fmax(top, v[k]);
        n = json_numbers(json_get(&ex->items[i], "day"), v, 64);
        for (int k = 0; k < n; k++)
            last = fmax(last, v[k]);
    }
    if (ne > 0) {
        svg_begin(&c, b, 360, 300, 0, last > 0 ? last * 1.05 : 1, 0, top > 0 ? top * 1.1 : 1,
                  "lesion extent per visit (solid: progressed)", "day", "extent, mm");
        double cx[2] = {json_get_number(p, "cutoff_days", 0), json_get_number(p, "cutoff_days", 0)};
        double cy[2] = {0, top > 0 ? top * 1.1 : 1};
        svg_line(&c, cx, cy, 2, "#999", 1, 1);
        for (int i = 0; i < ne; i++) {
            double x[64], y[64];
            int n = json_numbers(json_get(&ex->items[i], "day"), x, 64);
            if (json_numbers(json_get(&ex->items[i], "extent_mm"), y, 64) != n)
                continue;
            int prog = json_get_number(&ex->items[i], "outcome", 0) > 0;
            svg_line(&c, x, y, n, svg_color(i), 1.5, !prog);
            svg_dots(&c, x, y, n, svg_color(i), 2.5);
        }
        svg_end(&c);
    }
    strbuf_puts(b, "</div>\n");
}

static void section_provenance(StrBuf *b, const Inputs *in)
{
    strbuf_puts(b, "<h2 id=provenance>Provenance</h2>\n");
    const JsonValue *m = in->manifest;
    strbuf_puts(b, "<p>Run <code>");
    esc(b, json_get_string(m, "run"));
    strbuf_puts(b, "</code>, config SHA-256 <code>");
    esc(b, json_get_string(m, "config_sha256"));
    strbuf_puts(b, "</code> (the config itself: <code>config.yaml</code>).</p>\n"
                   "<table><tr><th>stage</th><th>finished</th><th>wall s</th><th>ranks</th>"
                   "<th>skipped inputs</th><th>outputs (SHA-256)</th></tr>\n");
    const JsonValue *st = json_get(m, "stages");
    for (size_t i = 0; st && st->type == JSON_OBJECT && i < st->n; i++) {
        const JsonValue *s = &st->items[i];
        if (!strcmp(st->keys[i], "report"))
            continue; /* this page's own entry: a second run must give the same bytes */
        strbuf_puts(b, "<tr><td>");
        esc(b, st->keys[i]);
        strbuf_puts(b, "</td><td>");
        esc(b, json_get_string(s, "finished"));
        strbuf_puts(b, "</td><td>");
        num(b, json_get(s, "wall_s"));
        strbuf_puts(b, "</td><td>");
        num(b, json_get(s, "ranks"));
        const JsonValue *partial = json_get(s, "partial");
        strbuf_printf(b, "</td><td>%s</td><td>", partial && partial->boolean ? "yes" : "no");
        const JsonValue *outs = json_get(s, "outputs");
        for (size_t k = 0; outs && outs->type == JSON_ARRAY && k < outs->n; k++) {
            esc(b, json_get_string(&outs->items[k], "path"));
            strbuf_puts(b, " <code>");
            const char *h = json_get_string(&outs->items[k], "sha256");
            strbuf_printf(b, "%.12s", h ? h : "");
            strbuf_puts(b, "</code><br>");
        }
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</table>\n<table><tr><th>component</th><th>version</th></tr>\n");
    const JsonValue *v = json_get(m, "versions");
    for (size_t i = 0; v && v->type == JSON_OBJECT && i < v->n; i++) {
        strbuf_puts(b, "<tr><td>");
        esc(b, v->keys[i]);
        strbuf_puts(b, "</td><td>");
        esc(b, v->items[i].type == JSON_STRING ? v->items[i].string : "");
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</table>\n<p>Results depend on the rank count only through floating-point "
                   "summation order in training; ingest, split and evaluate give the same bytes "
                   "on any rank count.</p>\n");
}

/* Where the report answers reporting-guideline items (TRIPOD+AI 2024, CLAIM 2024); items of
 * stages that do not exist yet are marked so, not left out. */
static void section_items(StrBuf *b)
{
    static const char *const items[][3] = {
        {"TRIPOD+AI 5, CLAIM 7", "source of data, study dates", "#cohort"},
        {"TRIPOD+AI 6, CLAIM 8-9", "participants, eligibility, exclusions (skipped files)",
         "#cohort"},
        {"TRIPOD+AI 8, CLAIM 15", "outcome and its labelling (labels.csv)", "#cohort"},
        {"TRIPOD+AI 9, CLAIM 21", "sample size, partitions", "#cohort"},
        {"TRIPOD+AI 12, CLAIM 20-23", "data partitions without patient overlap", "#cohort"},
        {"TRIPOD+AI 12, CLAIM 24-27", "model, training, hyper-parameters", "#training"},
        {"TRIPOD+AI 12, CLAIM 28-29", "performance measures, uncertainty (bootstrap CIs)",
         "#models"},
        {"TRIPOD+AI 12, CLAIM 32", "model comparison and statistical tests", "#pairs"},
        {"TRIPOD+AI 23, CLAIM 37", "calibration", "#roc"},
        {"TRIPOD+AI 18, CLAIM 44", "reproducibility: code version, config, hashes", "#provenance"},
        {"TRIPOD+AI 14", "treatment response (vessels)", "#treatment"},
        {"TRIPOD+AI 14", "progression model (LSTM)", "#progression"},
    };
    strbuf_puts(b, "<h2 id=items>Reporting items</h2>\n<table><tr><th>item</th><th>what</th>"
                   "<th>where</th></tr>\n");
    for (size_t i = 0; i < sizeof items / sizeof *items; i++) {
        strbuf_printf(b, "<tr><td>%s</td><td>%s</td><td>", items[i][0], items[i][1]);
        if (items[i][2][0])
            strbuf_printf(b, "<a href=\"%s\">%s</a>", items[i][2], items[i][2] + 1);
        else
            strbuf_puts(b, "not answered: this onfh has no such stage yet");
        strbuf_puts(b, "</td></tr>\n");
    }
    strbuf_puts(b, "</table>\n");
}

static const char style[] =
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
    "font-size:13px}th{background:#f3f3f3}.ci{color:#666}.missing{color:#a00}"
    ".figs{display:flex;flex-wrap:wrap;gap:12px}code{font-size:12px}";

static int write_page(const Inputs *in, const char *path, Err *e)
{
    StrBuf b = {0};
    strbuf_puts(&b, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>onfh "
                    "report: ");
    esc(&b, json_get_string(in->manifest, "run"));
    strbuf_printf(&b, "</title><style>%s</style></head><body>\n<h1>onfh report: ", style);
    esc(&b, json_get_string(in->manifest, "run"));
    strbuf_puts(&b, "</h1>\n<p>Sections: <a href=#summary>summary</a> &middot; <a href=#cohort>"
                    "cohort</a> &middot; <a href=#training>training</a> &middot; <a href=#models>"
                    "comparison</a> &middot; <a href=#roc>ROC and calibration</a> &middot; "
                    "<a href=#pairs>paired tests</a> &middot; <a href=#leakage>leakage</a> "
                    "&middot; <a href=#treatment>treatment response</a> &middot; "
                    "<a href=#progression>progression</a> &middot; "
                    "<a href=#provenance>provenance</a> &middot; <a href=#items>reporting "
                    "items</a>.</p>\n");
    section_summary(&b, in);
    section_cohort(&b, in);
    section_training(&b, in);
    section_models(&b, in);
    section_curves(&b, in);
    section_pairs(&b, in);
    section_leakage(&b, in);
    section_treatment(&b, in);
    section_progression(&b, in);
    section_provenance(&b, in);
    section_items(&b);
    strbuf_puts(&b, "</body></html>\n");
    char *text;
    size_t len;
    if (strbuf_finish(&b, &text, &len, e))
        return -1;
    int rc = file_write_atomic(path, text, len, e);
    mem_free(text);
    return rc;
}

int report_run(Session *s, Err *e)
{
    double t0 = MPI_Wtime();
    Inputs in = {.dir = s->run.path};
    int rc = 0;
    char dir[4400], page[4500];
    snprintf(dir, sizeof dir, "%s/report", s->run.path);
    snprintf(page, sizeof page, "%s/index.html", dir);
    if (rt_rank() == 0) {
        rc = load_json(in.dir, "manifest.json", &in.manifest, e) ||
             load_json(in.dir, "ingest_report.json", &in.ingest, e) ||
             load_json(in.dir, "splits.json", &in.splits, e) ||
             load_json(in.dir, "metrics.json", &in.metrics, e) ||
             load_json(in.dir, "evaluation.json", &in.selection, e) ||
             load_json(in.dir, "treatment.json", &in.treatment, e) ||
             load_json(in.dir, "progression.json", &in.progression, e);
        const JsonValue *stages = json_get(in.manifest, "stages");
        if (rc == 0 && (!stages || stages->type != JSON_OBJECT || stages->n == 0))
            rc = err_set(e, ERR_CONFIG,
                         "report: no stage has run in %s (manifest.json records none): "
                         "nothing to report",
                         in.dir);
        if (rc == 0)
            rc = dir_create(dir, e) || write_page(&in, page, e);
        if (rc == 0)
            log_info("report: %s", page);
    }
    json_value_free(in.manifest), json_value_free(in.ingest), json_value_free(in.splits);
    json_value_free(in.metrics), json_value_free(in.selection), json_value_free(in.treatment);
    json_value_free(in.progression);
    if (rt_agree(e))
        return -1;
    /* what exists of what the page read: hashed into the manifest */
    static const char *const candidates[] = {
        "ingest_report.json", "splits.json", "metrics.json",   "evaluation.json",
        "evaluation.h5",      "models",      "treatment.json", "progression.json"};
    enum { N_CANDIDATES = sizeof candidates / sizeof *candidates };
    const char *inputs[N_CANDIDATES];
    int n_in = 0;
    for (int i = 0; i < N_CANDIDATES; i++) {
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", s->run.path, candidates[i]);
        if (file_exists(path) || dir_exists(path))
            inputs[n_in++] = candidates[i];
    }
    const char *outputs[] = {"report"};
    return session_record_stage(s, "report", inputs, n_in, outputs, 1, MPI_Wtime() - t0, e);
}
