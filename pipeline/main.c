/* main.c: the onfh command. Subcommands are registered in one table (commands[] below, plus
 * one per stage from pipeline/stages.c); each parses its own arguments and returns an exit
 * code (pipeline/runtime.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dicom/dicom.h"
#include "lib/util/json.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"
#include "pipeline/config_keys.h"
#include "pipeline/manifest.h"
#include "pipeline/model_cmd.h"
#include "pipeline/runtime.h"
#include "pipeline/schema.h"
#include "pipeline/session.h"
#include "pipeline/stages.h"
#include "pipeline/status.h"
#include "pipeline/verify.h"
#include "pipeline/version.h"
#include "stages/predict/predict.h"

typedef struct Command {
    const char *name;
    const char *usage; /* arguments after the name */
    const char *summary;
    const char *help; /* more lines for `onfh NAME --help`, may be NULL */
    int (*fn)(int argc, char **argv);
} Command;

static const Command *find_command(const char *name);
static void print_command_help(FILE *out, const Command *c);

static const char *const exit_codes_text =
    "exit codes:\n"
    "  0  success\n"
    "  1  a stage failed (I/O, MPI, unusable input, internal error); the message says which\n"
    "  2  bad command line or config (YAML syntax, unknown or duplicate key, wrong type,\n"
    "     value out of range, missing config file)\n"
    "  3  the run directory is locked by another run\n"
    "  4  finished, but some inputs were skipped (each stage's report lists them and why)\n"
    "  5  train stopped by SIGUSR1 or SIGTERM after saving its checkpoint: requeue the job\n"
    "     (Slurm: scontrol requeue $SLURM_JOB_ID); the next run resumes\n";

/* ---------------------------------------------------------------------------------------------
 * Arguments shared by commands that take CONFIG: [--run DIR] [--set KEY=VALUE]... */

/* Parses argv[1..] into o. Returns 0, or prints the problem and returns EXIT_USAGE.
 * *help is set when --help was given. st, when not NULL, is the stage whose flag is accepted.
 * o->sets points into a fresh array (free with mem_free). */
static int parse_options(const Command *c, const Stage *st, int argc, char **argv, Options *o,
                         int need_config, int *help)
{
    memset(o, 0, sizeof *o);
    o->fold = -1;
    *help = 0;
    o->sets = mem_calloc((size_t)argc + 1, sizeof *o->sets);
    if (!o->sets) {
        fprintf(stderr, "onfh %s: out of memory\n", c->name);
        return EXIT_FAILURE_RUN;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return 0;
        } else if (!strcmp(a, "--run") || !strcmp(a, "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "onfh %s: %s needs a value\n", c->name, a);
                return EXIT_USAGE;
            }
            if (a[2] == 'r')
                o->run_dir = argv[++i];
            else
                o->sets[o->n_sets++] = argv[++i];
        } else if (!strncmp(a, "--run=", 6)) {
            o->run_dir = a + 6;
        } else if (!strncmp(a, "--set=", 6)) {
            o->sets[o->n_sets++] = (char *)a + 6;
        } else if (!strcmp(a, "--force")) {
            o->force = 1;
        } else if (st && !strcmp(st->name, "train") &&
                   (!strcmp(a, "--arch") || !strcmp(a, "--fold") || !strcmp(a, "--max-steps"))) {
            if (i + 1 >= argc) {
                fprintf(stderr, "onfh %s: %s needs a value\n", c->name, a);
                return EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (a[2] == 'a') {
                o->arch = v;
            } else {
                char *end;
                long x = strtol(v, &end, 10);
                if (!*v || *end || x < (a[2] == 'f' ? 0 : 1)) {
                    fprintf(stderr, "onfh %s: %s: expected %s, got \"%s\"\n", c->name, a,
                            a[2] == 'f' ? "a fold number from 0" : "a positive step count", v);
                    return EXIT_USAGE;
                }
                if (a[2] == 'f')
                    o->fold = (int)x;
                else
                    o->max_steps = x;
            }
        } else if (st && st->flag && !strcmp(a, st->flag)) {
            o->sets[o->n_sets++] = (char *)st->flag_set;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "onfh %s: unknown option %s (see onfh %s --help)\n", c->name, a,
                    c->name);
            return EXIT_USAGE;
        } else if (!o->config) {
            o->config = a;
        } else {
            fprintf(stderr, "onfh %s: unexpected argument %s\n", c->name, a);
            return EXIT_USAGE;
        }
    }
    if (need_config && !o->config) {
        fprintf(stderr, "onfh %s: missing CONFIG\nusage: onfh %s %s\n", c->name, c->name, c->usage);
        return EXIT_USAGE;
    }
    return 0;
}

/* parse_options with its usual ending: 1 when the command is done already (--help printed, or a
 * usage error printed), with its exit code in *rc; 0 to go on with o parsed. */
static int parse_or_answer(const Command *c, const Stage *st, int argc, char **argv, Options *o,
                           int *rc)
{
    int help;
    *rc = parse_options(c, st, argc, argv, o, 1, &help);
    if (!*rc && !help)
        return 0;
    if (help)
        print_command_help(stdout, c);
    mem_free(o->sets);
    return 1;
}

/* Starts MPI and opens the session on every rank; on failure prints (rank 0) and exits. */
static void open_or_exit(Session *s, const Options *o)
{
    Err e = {0};
    if (rt_init(NULL, NULL, &e)) {
        fprintf(stderr, "onfh: %s\n", e.msg);
        exit(EXIT_FAILURE_RUN);
    }
    if (session_open(s, o, &e)) {
        if (rt_rank() == 0)
            fprintf(stderr, "%s\n", e.msg);
        rt_exit(rt_exit_code(e.code));
    }
    s->force = o->force;
    s->only_arch = o->arch, s->only_fold = o->fold, s->max_steps = o->max_steps;
}

/* Runs one stage on every rank, unless its manifest entry shows it finished with the same
 * config and untouched outputs (then it is skipped, and says why); --force runs it anyway. */
static int run_stage(Session *s, const Stage *st, int force)
{
    Err e = {0};
    char why[512] = "";
    if (!force && session_stage_current(s, st->name, why, sizeof why)) {
        log_info("%s: skipped: %s (--force runs it again)", st->name, why);
        return EXIT_OK;
    }
    double t0 = progress_now();
    log_info("%s: started on %d rank(s)%s%s", st->name, rt_size(), force ? "" : ": ",
             force ? "" : why);
    s->stage_partial = 0;
    int rc = st->run(s, &e);
    s->partial |= s->stage_partial;
    if (rc && !e.code)
        err_set(&e, rc, "failed without a message (a bug in onfh)");
    if (rt_agree(&e)) {
        if (e.code == ERR_PREEMPTED)
            log_warn("%s: %s", st->name, e.msg);
        else
            log_error("%s: %s", st->name, e.msg);
        return rt_exit_code(e.code);
    }
    log_info("%s: done in %.1f s", st->name, progress_now() - t0);
    return EXIT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Commands. */

static int cmd_run(int argc, char **argv)
{
    const Command *c = find_command("run");
    Options o;
    int rc;
    if (parse_or_answer(c, NULL, argc, argv, &o, &rc))
        return rc;
    Session s;
    open_or_exit(&s, &o);
    log_info("run %s in %s: config %.12s, %d rank(s), %d stage(s)", config_str(&s.cfg, "run.name"),
             s.run.path, s.config_hash, rt_size(), onfh_n_stages);
    for (int i = 0; i < onfh_n_stages && rc == EXIT_OK; i++)
        rc = run_stage(&s, &onfh_stages[i], o.force);
    if (rc == EXIT_OK)
        log_info("run %s: finished; outputs in %s", config_str(&s.cfg, "run.name"), s.run.path);
    if (rc == EXIT_OK && s.partial)
        rc = EXIT_PARTIAL;
    session_close(&s);
    mem_free(o.sets);
    rt_exit(rc);
}

/* `onfh config get CONFIG KEY [--set K=V]...`: one resolved value for scripts (jobs/), printed
 * as it is (a list: one item per line; an unset optional key: nothing), so no shell ever parses
 * YAML or evaluates a config value. */
static int config_get(const Command *c, int argc, char **argv)
{
    /* argv: get CONFIG KEY [options]; the key is taken out, the rest parsed as for show */
    const char *key = argc >= 3 && argv[2][0] != '-' ? argv[2] : NULL;
    char **rest = mem_calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return EXIT_FAILURE_RUN;
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (!(key && i == 2))
            rest[n++] = argv[i];
    Options o;
    int help, rc = parse_options(c, NULL, n, rest, &o, 1, &help);
    if (rc == 0 && !help && !key) {
        fprintf(stderr, "usage: onfh config get CONFIG KEY [--set KEY=VALUE]...\n");
        rc = EXIT_USAGE;
    }
    if (rc || help) {
        if (help)
            print_command_help(stdout, c);
        mem_free(o.sets);
        mem_free(rest);
        return rc;
    }
    Config cfg;
    Err e = {0};
    rc = session_load_config(&cfg, &o, &e);
    mem_free(o.sets);
    mem_free(rest);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        return rt_exit_code(e.code);
    }
    int k = 0;
    while (k < cfg.n_keys && strcmp(cfg.keys[k].path, key))
        k++;
    if (k == cfg.n_keys) {
        fprintf(stderr, "onfh config get: no key %s (onfh config doc lists them)\n", key);
        config_free(&cfg);
        return EXIT_USAGE;
    }
    const CfgValue *v = &cfg.values[k];
    if (v->set && cfg.keys[k].type == CFG_LIST)
        for (int i = 0; i < v->n_items; i++)
            printf("%s\n", v->items[i]);
    else if (v->set)
        printf("%s\n", v->text);
    config_free(&cfg);
    return EXIT_OK;
}

static int cmd_config(int argc, char **argv)
{
    const Command *c = find_command("config");
    if (argc >= 2 && !strcmp(argv[1], "doc")) {
        char *text;
        Err e = {0};
        if (config_doc(onfh_config_keys, onfh_config_n_keys, &text, &e)) {
            fprintf(stderr, "onfh config doc: %s\n", e.msg);
            return EXIT_FAILURE_RUN;
        }
        fputs(text, stdout);
        mem_free(text);
        return EXIT_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "get"))
        return config_get(c, argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "show")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            print_command_help(stdout, c);
            return EXIT_OK;
        }
        fprintf(stderr, "usage: onfh config %s\n", c->usage);
        return EXIT_USAGE;
    }
    Options o;
    int rc;
    if (parse_or_answer(c, NULL, argc - 1, argv + 1, &o, &rc))
        return rc;
    Config cfg;
    Err e = {0};
    char *yaml = NULL, hash[65];
    rc = session_load_config(&cfg, &o, &e);
    mem_free(o.sets);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        return rt_exit_code(e.code);
    }
    if (config_to_yaml(&cfg, NULL, &yaml, &e) || config_hash(&cfg, NULL, hash, &e)) {
        fprintf(stderr, "onfh config show: %s\n", e.msg);
        config_free(&cfg);
        return EXIT_FAILURE_RUN;
    }
    printf("# resolved from %s; sha256 of the lines below: %s\n%s", o.config, hash, yaml);
    mem_free(yaml);
    config_free(&cfg);
    return EXIT_OK;
}

/* `onfh plan CONFIG [--run DIR] [--set K=V]...`: per stage, whether `onfh run` would run it or
 * skip it (its manifest entry is current), one "NAME<TAB>run|skip<TAB>why" line each. Takes no
 * lock and writes nothing; jobs/submit.sh submits from the first stage that must run. */
static int cmd_plan(int argc, char **argv)
{
    const Command *c = find_command("plan");
    Options o;
    int rc;
    if (parse_or_answer(c, NULL, argc, argv, &o, &rc))
        return rc;
    Session s;
    memset(&s, 0, sizeof s);
    Err e = {0};
    rc = session_load_config(&s.cfg, &o, &e);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        mem_free(o.sets);
        return rt_exit_code(e.code);
    }
    char path[4096];
    if (o.run_dir)
        snprintf(path, sizeof path, "%s", o.run_dir);
    else
        snprintf(path, sizeof path, "%s/%s", config_str(&s.cfg, "run.output_root"),
                 config_str(&s.cfg, "run.name"));
    for (int i = 0; i < onfh_n_stages && rc == EXIT_OK; i++) {
        char hex[65], why[512] = "";
        if (session_section_hash(&s, onfh_stages[i].name, hex, &e)) {
            fprintf(stderr, "onfh plan: %s\n", e.msg);
            rc = EXIT_FAILURE_RUN;
            break;
        }
        int current = manifest_stage_current(path, onfh_stages[i].name, hex, why, sizeof why, NULL);
        printf("%s\t%s\t%s\n", onfh_stages[i].name, current ? "skip" : "run", why);
    }
    config_free(&s.cfg);
    mem_free(o.sets);
    return rc;
}

static int cmd_status(int argc, char **argv)
{
    const Command *c = find_command("status");
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            print_command_help(stdout, c);
            return EXIT_OK;
        }
        fprintf(stderr, "usage: onfh status %s\n", c->usage);
        return EXIT_USAGE;
    }
    return status_print(argv[1], stdout);
}

/* `onfh verify DIR [--keep]`: hashes against the manifest, deterministic stages re-run
 * (pipeline/verify.h). */
static int cmd_verify(int argc, char **argv)
{
    const Command *c = find_command("verify");
    const char *dir = NULL;
    int keep = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_command_help(stdout, c);
            return EXIT_OK;
        }
        if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "usage: onfh verify %s\n", c->usage);
            return EXIT_USAGE;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: onfh verify %s\n", c->usage);
        return EXIT_USAGE;
    }
    Err e = {0};
    if (rt_init(NULL, NULL, &e)) {
        fprintf(stderr, "onfh: %s\n", e.msg);
        return EXIT_FAILURE_RUN;
    }
    rt_exit(verify_run(dir, keep));
}

/* `onfh formats`: the transfer-syntax support matrix (lib/dicom/dicom_ts.c), as Markdown. */
static int cmd_formats(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: onfh formats\n");
        return EXIT_USAGE;
    }
    size_t n;
    const DicomTsInfo *t = dicom_ts_table(&n);
    printf("| transfer syntax | UID | read | decoder |\n| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < n; i++)
        printf("| %s | %s | %s | %s |\n", t[i].name, t[i].uid, t[i].supported ? "yes" : "refused",
               t[i].decoder);
    return EXIT_OK;
}

/* `onfh schema check FILE`: a file against its declared layout; exit 1 on any problem. */
static int cmd_schema(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "check")) {
        fprintf(stderr, "usage: onfh schema check FILE\n");
        return EXIT_USAGE;
    }
    char *report;
    int n;
    Err e = {0};
    if (schema_check(argv[2], &report, &n, &e)) {
        fprintf(stderr, "onfh schema check: %s\n", e.msg);
        return EXIT_FAILURE_RUN;
    }
    if (n)
        fputs(report, stderr);
    else
        printf("%s: matches its schema\n", argv[2]);
    mem_free(report);
    return n ? EXIT_FAILURE_RUN : EXIT_OK;
}

/* `onfh predict CONFIG --checkpoint FILE [--out FILE] [--backend B] [--batch N]`: its own flags
 * are taken out first, the rest parsed as for a stage. */
static int cmd_predict(int argc, char **argv)
{
    const Command *c = find_command("predict");
    PredictOptions po = {0};
    char **rest = mem_calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return EXIT_FAILURE_RUN;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--checkpoint") ? &po.checkpoint
                            : !strcmp(a, "--out")      ? &po.out
                            : !strcmp(a, "--backend")  ? &po.backend
                                                       : NULL;
        if (slot || !strcmp(a, "--batch")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "onfh predict: %s needs a value\n", a);
                mem_free(rest);
                return EXIT_USAGE;
            }
            if (slot) {
                *slot = argv[++i];
            } else {
                char *end;
                long b = strtol(argv[++i], &end, 10);
                if (*end || b < 1 || b > 4096) {
                    fprintf(stderr, "onfh predict: --batch: expected 1 to 4096, got \"%s\"\n",
                            argv[i]);
                    mem_free(rest);
                    return EXIT_USAGE;
                }
                po.batch = (int)b;
            }
        } else {
            rest[n++] = argv[i];
        }
    }
    Options o;
    int help, rc = parse_options(c, NULL, n, rest, &o, 1, &help);
    if (rc == 0 && !help && !po.checkpoint) {
        fprintf(stderr, "onfh predict: missing --checkpoint FILE\nusage: onfh predict %s\n",
                c->usage);
        rc = EXIT_USAGE;
    }
    if (rc || help) {
        if (help)
            print_command_help(stdout, c);
        mem_free(o.sets);
        mem_free(rest);
        return rc;
    }
    Session s;
    open_or_exit(&s, &o);
    Err e = {0};
    rc = predict_run(&s, &po, &e);
    if (rc && !e.code)
        err_set(&e, ERR_INTERNAL, "predict failed without a message (a bug in onfh)");
    if (rt_agree(&e)) {
        log_error("predict: %s", e.msg);
        rc = rt_exit_code(e.code);
    } else {
        rc = EXIT_OK;
    }
    session_close(&s);
    mem_free(o.sets);
    mem_free(rest);
    rt_exit(rc);
}

static int cmd_help(int argc, char **argv);

static const Command commands[] = {
    {"run", "CONFIG [--run DIR] [--set KEY=VALUE]...",
     "run every stage in order on every MPI rank, skipping finished ones",
     "  --run DIR          run directory (default: <run.output_root>/<run.name>, where run.name\n"
     "                     defaults to the config file's name)\n"
     "  --set KEY=VALUE    override a config key (repeatable), e.g. --set run.seed=7;\n"
     "                     VALUE is YAML, so lists work: --set KEY=[a,b]\n"
     "  --force            run every stage, even those whose manifest entry is current\n"
     "Writes config.yaml, manifest.json and logs/rank<N>.log in the run directory.\n",
     cmd_run},
    {"config", "show CONFIG [--set KEY=VALUE]... | get CONFIG KEY [--set KEY=VALUE]... | doc",
     "print the resolved config and its SHA-256, one value, or every key with its doc",
     "  show   the config after --set overrides and defaults, in canonical form; its SHA-256\n"
     "         is the config hash recorded in the run directory\n"
     "  get    one resolved value as it is (a list: one item per line), for scripts\n"
     "  doc    every key: type, range or choices, default, one line of doc\n",
     cmd_config},
    {"status", "DIR",
     "what each stage of a run directory did, and each training task: done, running, failed "
     "or pending",
     "  reads DIR's files only (manifest.json, config.yaml, the locks, models/): works from a\n"
     "  login node while jobs run; tasks are numbered as jobs/submit.sh's Slurm array\n",
     cmd_status},
    {"verify", "DIR [--keep]",
     "re-hash every recorded input and output, re-run the deterministic stages, report any "
     "difference",
     "  every input and output manifest.json records is hashed again; ingest, split and\n"
     "  evaluate run again into DIR/.verify/STAGE from DIR/config.yaml and their recorded\n"
     "  inputs, and their outputs are compared byte for byte (SHA-256); exit 0 only when\n"
     "  everything matches\n"
     "  --keep             leave DIR/.verify for inspection\n",
     cmd_verify},
    {"plan", "CONFIG [--run DIR] [--set KEY=VALUE]...",
     "which stages onfh run would run and which it would skip (from the manifest)",
     "  prints one line per stage: NAME, run or skip, and why (tab-separated); takes no lock\n"
     "  and writes nothing (jobs/submit.sh submits from the first stage to run)\n",
     cmd_plan},
    {"schema", "check FILE", "check an HDF5 file onfh wrote against its documented layout", NULL,
     cmd_schema},
    {"formats", "", "the DICOM transfer syntaxes onfh reads, and which it refuses", NULL,
     cmd_formats},
    {"model",
     "list | init ID --out FILE [--classes K] [--size N] [--channels C] [--seed S] | profile ID "
     "[--batch B] [--size N] [--backend NAME] [--steps K]",
     "the architectures (parameter counts), freshly initialised checkpoints, and when each "
     "gradient is final during backward",
     NULL, cmd_model},
    {"archs", "", "the ten architectures: parameters, forward GMAC at 224, primitives used", NULL,
     cmd_archs},
    {"predict",
     "CONFIG --checkpoint FILE [--out FILE] [--backend auto|ref|dnnl|cuda] [--batch N] "
     "[--run DIR] [--set KEY=VALUE]...",
     "per-slice class probabilities of a checkpoint over the run's cohort.h5 (predictions.csv)",
     "  --checkpoint FILE  an onfh checkpoint (HDF5; tools/torch_to_onfh.py converts PyTorch's)\n"
     "  --out FILE         default <run>/predictions.csv (data-schema/predictions.md)\n"
     "  --backend NAME     auto (default: oneDNN where built), ref or dnnl\n"
     "  --batch N          images per forward pass (default 32)\n",
     cmd_predict},
    {"help", "[COMMAND]", "this text, or a command's", NULL, cmd_help},
};

static const Command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static void print_command_help(FILE *out, const Command *c)
{
    fprintf(out, "usage: onfh %s %s\n%s\n", c->name, c->usage, c->summary);
    if (c->help)
        fprintf(out, "%s", c->help);
    fprintf(out, "%s", exit_codes_text);
}

static void print_help(FILE *out)
{
    fprintf(out, "onfh: hip MRI from DICOM to published results (ONFH study pipeline)\n\n"
                 "usage: onfh [--version] [--help] COMMAND [ARGS]\n"
                 "       mpirun -np N onfh COMMAND ...   or   srun onfh COMMAND ...\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    for (int i = 0; i < onfh_n_stages; i++)
        fprintf(out, "  %-11s %s\n", onfh_stages[i].name, onfh_stages[i].summary);
    fprintf(out, "\n'onfh COMMAND --help' tells more.\n\n%s", exit_codes_text);
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stdout);
        return EXIT_OK;
    }
    const Command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "onfh help: no command %s\n", argv[1]);
        return EXIT_USAGE;
    }
    print_command_help(stdout, c);
    return EXIT_OK;
}

/* `onfh STAGE CONFIG ...`: one stage on every rank. */
static int cmd_stage(const Stage *st, int argc, char **argv)
{
    char help_text[1024];
    int n = snprintf(help_text, sizeof help_text,
                     "  --run DIR, --set KEY=VALUE, --force   as for onfh run\n%s",
                     strcmp(st->name, "train")
                         ? ""
                         : "  --arch NAME        only this architecture (a Slurm array task)\n"
                           "  --fold K           only fold K (0-based)\n"
                           "  --max-steps N      stop after N optimizer steps, resumable\n");
    if (st->flag)
        snprintf(help_text + n, sizeof help_text - (size_t)n, "  %-18s %s\n", st->flag,
                 st->flag_doc);
    Command c = {st->name, "CONFIG [--run DIR] [--set KEY=VALUE]... [--force]", st->summary,
                 help_text, NULL};
    Options o;
    int rc;
    if (parse_or_answer(&c, st, argc, argv, &o, &rc))
        return rc;
    Session s;
    open_or_exit(&s, &o);
    /* one (architecture, fold) is one task of the stage: never skipped as a whole */
    rc = run_stage(&s, st, o.force || o.arch || o.fold >= 0 || o.max_steps);
    if (rc == EXIT_OK && s.partial)
        rc = EXIT_PARTIAL;
    session_close(&s);
    mem_free(o.sets);
    rt_exit(rc);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version")) {
        versions_print(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help(stdout);
        return EXIT_OK;
    }
    const Command *c = find_command(argv[1]);
    if (c)
        return c->fn(argc - 1, argv + 1);
    for (int i = 0; i < onfh_n_stages; i++)
        if (!strcmp(onfh_stages[i].name, argv[1]))
            return cmd_stage(&onfh_stages[i], argc - 1, argv + 1);
    fprintf(stderr, "onfh: no command '%s' (see onfh --help)\n", argv[1]);
    return EXIT_USAGE;
}
