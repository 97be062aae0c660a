#!/bin/bash
# submit.sh CONFIG [--run DIR] [--site FILE] [--tasks LIST] [--dry-run]
# Submits the whole pipeline to Slurm in one command: one job per stage (jobs/<stage>.sbatch),
# each after the one before (afterok), training as an array over (architecture, fold) followed
# by a collect job. Prints the job ids and records them in <run>/manifest.json ("slurm").
#   --run DIR     the run directory (default: run.output_root/run.name of CONFIG, as onfh run)
#   --site FILE   site settings (slurm/site/*.env; default $ONFH_SITE, else none)
#   --tasks LIST  only these training array indices (e.g. 3 or 0,4-5): resubmit failed tasks
#   --dry-run     print the sbatch commands instead of running them
# Stages whose manifest entry is current (`onfh plan`) are not submitted: the chain starts at the
# first stage that must run, so submitting a finished run again submits nothing.
set -eu
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }
config='' run='' site=${ONFH_SITE:-} tasks='' dry=0
while [ $# -gt 0 ]; do
    case $1 in
    --run) run=${2:?--run needs a directory}; shift 2 ;;
    --site) site=${2:?--site needs a file}; shift 2 ;;
    --tasks) tasks=${2:?--tasks needs a list}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage ;;
    -*) echo "submit.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$config" ] || usage; config=$1; shift ;;
    esac
done
[ -n "$config" ] || usage
[ -f "$config" ] || { echo "submit.sh: no config file $config" >&2; exit 2; }
case $tasks in *[!0-9,-]*) echo "submit.sh: --tasks: expected indices like 3 or 0,4-5, got '$tasks'" >&2; exit 2 ;; esac
bin=${ONFH_BIN:-$root/bin/onfh}
[ -x "$bin" ] || bin=$(command -v onfh) || { echo "submit.sh: no $root/bin/onfh (make) and no onfh on PATH" >&2; exit 1; }
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s/%s\n' "$PWD" "$1" ;; esac; }
config=$(abs "$config")
if [ -z "$run" ]; then
    run="$("$bin" config get "$config" run.output_root)/$("$bin" config get "$config" run.name)"
fi
run=$(abs "$run")
[ -z "$site" ] || site=$(abs "$site")
export ONFH_ROOT=$root ONFH_BIN=$bin ONFH_CONFIG=$config ONFH_RUN=$run ONFH_SITE=$site
export ONFH_TRAIN_MAP=$run/slurm/train_tasks.tsv
. "$root/jobs/common.sh"
onfh_site

# The stages still to run, in pipeline order: from the first that `onfh plan` does not skip.
stages=()
while IFS=$'\t' read -r name verdict why; do
    [ ${#stages[@]} -gt 0 ] || [ "$verdict" = run ] || { echo "$name: current, not submitted ($why)"; continue; }
    [ -f "$root/jobs/$name.sbatch" ] || { echo "submit.sh: stage $name has no jobs/$name.sbatch" >&2; exit 1; }
    stages+=("$name")
done < <("$bin" plan "$config" --run "$run")
if [ ${#stages[@]} -eq 0 ]; then
    echo "nothing to submit: every stage of $run is current"
    exit 0
fi

# The training array's index map: one line per (architecture, fold), in train.archs order.
mapfile -t archs < <("$bin" config get "$config" train.archs)
folds=$("$bin" config get "$config" split.folds)
map=$(i=0; for a in "${archs[@]}"; do for ((k = 0; k < folds; k++)); do printf '%d\t%s\t%d\n' $i "$a" $k; i=$((i + 1)); done; done)
n_tasks=$((${#archs[@]} * folds))

# sbatch options of a stage: the site's partition, account, ranks and time; logs in the run.
stage_opts() {
    local s=$1 up
    up=$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
    local ntasks_var=ONFH_NTASKS_$up time_var=ONFH_TIME_$up
    opts=(--parsable --kill-on-invalid-dep=yes --chdir="$run")
    if [ "$s" != train ] && [ -n "${ONFH_PARTITION_CPU:-}" ]; then
        opts+=(--partition="$ONFH_PARTITION_CPU")
    elif [ -n "${ONFH_PARTITION:-}" ]; then
        opts+=(--partition="$ONFH_PARTITION")
    fi
    [ -z "${ONFH_ACCOUNT:-}" ] || opts+=(--account="$ONFH_ACCOUNT")
    [ -z "${!ntasks_var:-}" ] || opts+=(--ntasks="${!ntasks_var}")
    [ -z "${!time_var:-}" ] || opts+=(--time="${!time_var}")
    [ "$dry" = 1 ] || opts+=(--hold) # released once the ids are in the manifest
}

ids=() names=()
submit() { # submit NAME SBATCH-ARGS...: prints the command (--dry-run) or submits it
    local name=$1 id
    shift
    if [ "$dry" = 1 ]; then
        printf '%q ' sbatch "$@"
        printf '\n'
        id="<$name>"
    else
        id=$(sbatch "$@") || { echo "submit.sh: sbatch failed for $name" >&2; [ ${#ids[@]} -eq 0 ] || scancel "${ids[@]}"; exit 1; }
        id=${id%%;*} # --parsable prints "id;cluster" on multi-cluster sites
    fi
    ids+=("$id") names+=("$name")
    prev=$id
}

[ "$dry" = 1 ] || mkdir -p "$run/slurm/logs"
prev=
for s in "${stages[@]}"; do
    stage_opts "$s"
    dep=()
    [ -z "$prev" ] || dep=(--dependency="afterok:$prev")
    if [ "$s" = train ]; then
        array=${tasks:-0-$((n_tasks - 1))}
        [ -z "${ONFH_ARRAY_MAX:-}" ] || array+="%$ONFH_ARRAY_MAX"
        gpu=()
        if [ -n "${ONFH_GPUS_PER_NODE:-}" ]; then
            nodes=${ONFH_TRAIN_NODES:-1}
            gpu=(--nodes="$nodes" --ntasks-per-node="$ONFH_GPUS_PER_NODE" --ntasks=$((nodes * ONFH_GPUS_PER_NODE))
                --gpus-per-node="$ONFH_GPUS_PER_NODE")
        fi
        [ -z "${ONFH_TRAIN_CPUS_PER_TASK:-}" ] || gpu+=(--cpus-per-task="$ONFH_TRAIN_CPUS_PER_TASK")
        if [ "$dry" = 1 ]; then
            echo "# training tasks ($ONFH_TRAIN_MAP): index, architecture, fold"
            printf '%s\n' "$map" | sed 's/^/#   /'
        else
            printf '%s\n' "$map" >"$ONFH_TRAIN_MAP.tmp" && mv "$ONFH_TRAIN_MAP.tmp" "$ONFH_TRAIN_MAP"
        fi
        submit train_array "${opts[@]}" "${dep[@]}" "${gpu[@]}" --array="$array" \
            --output="$run/slurm/logs/train-%A_%a.out" "$root/jobs/train.sbatch"
        # collect: one rank is enough when every task has finished
        submit train "${opts[@]}" --dependency="afterok:$prev" --ntasks=1 \
            --output="$run/slurm/logs/train-collect-%j.out" "$root/jobs/train.sbatch"
    else
        submit "$s" "${opts[@]}" "${dep[@]}" --output="$run/slurm/logs/$s-%j.out" "$root/jobs/$s.sbatch"
    fi
done
[ "$dry" = 1 ] && exit 0

# Record the submission in the manifest (kept by onfh's own updates), then let the jobs run.
# The values travel as arguments, never inside the program text.
hash=$("$bin" config show "$config" | sed -n '1s/.*sha256 of the lines below: //p')
python3 - "$run/manifest.json" "$config" "$ONFH_TRAIN_MAP" "$run" "${names[*]}" "${ids[*]}" "$hash" <<'EOF'
import json, os, sys, time
path, config, map_path, run, names, ids, config_hash = sys.argv[1:]
try:
    with open(path) as f:
        m = json.load(f)
except FileNotFoundError:  # nothing has run yet: the first stage fills in the rest
    m = {"format": "onfh-manifest-1", "run": os.path.basename(run),
         "config_sha256": config_hash, "stages": {}}
jobs = dict(zip(names.split(), ids.split()))
entry = {"submitted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "config": config,
         "jobs": jobs}
if "train_array" in jobs and os.path.exists(map_path):
    entry["train_map"] = os.path.relpath(map_path, run)
    with open(map_path) as f:
        entry["train_tasks"] = [{"index": int(i), "arch": a, "fold": int(k)}
                                for i, a, k in (l.rstrip("\n").split("\t") for l in f if l.strip())]
m.setdefault("slurm", {"submissions": []})["submissions"].append(entry)
tmp = "%s.tmp.%d" % (path, os.getpid())
with open(tmp, "w") as f:
    json.dump(m, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
EOF
scontrol release "${ids[@]}"
for i in "${!ids[@]}"; do printf '%s\t%s\n' "${names[$i]}" "${ids[$i]}"; done
