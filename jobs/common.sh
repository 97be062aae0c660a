# shellcheck shell=bash
# common.sh: sourced by every jobs/*.sbatch (and by jobs/submit.sh for the settings).
# jobs/submit.sh exports, for every job it submits:
#   ONFH_ROOT    the onfh checkout (jobs/, slurm/)      ONFH_BIN   the onfh program
#   ONFH_CONFIG  the config file (absolute path)        ONFH_RUN   the run directory (absolute)
#   ONFH_SITE    the site file (slurm/site/*.env) with partition, account, modules, MPI flavour
# Config values are never read here: scripts ask `onfh config get`, and pass them quoted.
set -eu

# Exit code of a training step stopped by SIGUSR1/SIGTERM after writing its checkpoint: the
# job requeues itself and resumes (train.sbatch). It is onfh's EXIT_REQUEUE
# (pipeline/runtime.h, `onfh help` lists the exit codes); tests/integration/train_dp.sh checks
# that `onfh train` exits with it.
ONFH_EXIT_PREEMPTED=5
# `onfh` exit 4: finished, some inputs skipped and listed in the stage's report (ingest's
# planted faults): the stage did its work, so the chain goes on.
ONFH_EXIT_PARTIAL=4
# A job requeued this many times stops requeueing itself (a step that always gets preempted).
ONFH_MAX_REQUEUES=${ONFH_MAX_REQUEUES:-20}

onfh_site() { # reads the site file, if any (defaults below)
    if [ -n "${ONFH_SITE:-}" ]; then
        # shellcheck disable=SC1090 # a site file chosen by the user
        . "$ONFH_SITE"
    fi
    ONFH_MPI=${ONFH_MPI:-pmix}
    case "$ONFH_MPI" in pmix | pmi2 | none) ;; *)
        echo "onfh jobs: ONFH_MPI must be pmix, pmi2 or none, got '$ONFH_MPI'" >&2
        return 2
        ;;
    esac
}

onfh_job_env() { # in a job: site settings, module loads, a line saying what runs where
    onfh_site
    if [ -n "${ONFH_MODULES:-}" ]; then
        command -v module >/dev/null 2>&1 || { echo "onfh jobs: ONFH_MODULES is set but there is no 'module' command" >&2; return 1; }
        # shellcheck disable=SC2086 # a list of module names
        module load $ONFH_MODULES
    fi
    echo "onfh job ${SLURM_JOB_ID:-?} (${SLURM_JOB_NAME:-?}) on ${SLURM_JOB_NODELIST:-?}, restart ${SLURM_RESTART_COUNT:-0}: $(date -u +%FT%TZ)"
}

# onfh_srun ARGS...: the ranks of `$ONFH_BIN ARGS...` launched by srun with the site's MPI
# flavour. srun runs in the background so that the batch shell can take Slurm's warning signal
# (--signal=B:USR1@120, or `scancel --signal=USR1 --batch`): the trap forwards USR1 or TERM to
# srun, which passes it to every rank. A step that then exits with ONFH_EXIT_PREEMPTED has saved
# its checkpoint: the job requeues itself (the script starts again from the top with
# SLURM_RESTART_COUNT one higher) and the step resumes. Exit 4 (partial) counts as success.
onfh_srun() {
    local pid rc=0
    srun --mpi="$ONFH_MPI" "$ONFH_BIN" "$@" &
    pid=$!
    trap 'echo "onfh jobs: got USR1, forwarding it to srun"; kill -USR1 "$pid" 2>/dev/null || true' USR1
    trap 'echo "onfh jobs: got TERM, forwarding it to srun"; kill -TERM "$pid" 2>/dev/null || true' TERM
    while :; do
        rc=0
        wait "$pid" || rc=$?
        # a trapped signal ends `wait` early (status > 128) while srun still runs: wait again
        kill -0 "$pid" 2>/dev/null || break
    done
    trap - USR1 TERM
    if [ "$rc" -eq "$ONFH_EXIT_PREEMPTED" ]; then
        if [ "${SLURM_RESTART_COUNT:-0}" -ge "$ONFH_MAX_REQUEUES" ]; then
            echo "onfh jobs: preempted again after $ONFH_MAX_REQUEUES requeues; giving up" >&2
            return "$rc"
        fi
        echo "onfh jobs: $1 saved its checkpoint and stopped (exit $rc): requeueing job $SLURM_JOB_ID"
        scontrol requeue "$SLURM_JOB_ID"
        exit 0 # the requeue ends this run of the script; should it not have yet, end it cleanly
    fi
    if [ "$rc" -eq "$ONFH_EXIT_PARTIAL" ]; then
        echo "onfh jobs: $1 finished with skipped inputs (exit $rc: see its report); going on"
        rc=0
    fi
    return "$rc"
}

# onfh_stage NAME: one stage of the run on every rank of the job.
onfh_stage() {
    onfh_srun "$1" "$ONFH_CONFIG" --run "$ONFH_RUN"
}
