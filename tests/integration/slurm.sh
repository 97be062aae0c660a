# slurm.sh: the pipeline through a real one-node Slurm cluster (slurm/local, no mocks):
# jobs/submit.sh's dry run; the whole chain of the small config submitted in one command, every
# job completed, every stage's outputs and the manifest's job ids and task map; a second
# submission submits nothing; one training task resubmitted alone; a step stopped by USR1 with
# the preempted exit code requeues its job, which then completes; the cluster stopped with no
# daemon left. Skips (TAP skip-all) only when not root or the Slurm packages are missing.
. "$(dirname "$0")/../tap.sh"
set -u
if [ "$(id -u)" != 0 ]; then
    echo "1..0 # SKIP not root: slurm/local starts slurmd, which must run as root"
    exit 0
fi
for cmd in slurmctld slurmd sbatch munged; do
    command -v "$cmd" >/dev/null || { echo "1..0 # SKIP $cmd not installed (tools/deps.sh test installs slurmctld slurmd slurm-client munge; it could not)"; exit 0; }
done
t=$ONFH_TEST_TMP/slurm
cluster=$t/cluster
run=$t/run
cfg=$ONFH_ROOT/tests/fixtures/configs/synth_small.yaml
mkdir -p "$t"
export ONFH_BIN=$ONFH ASAN_OPTIONS=detect_leaks=0
unset ONFH_SITE
trap '"$ONFH_ROOT/slurm/local/down.sh" "$cluster" >/dev/null 2>&1' EXIT

# wait_jobs SECONDS: until no job is queued or running; 1 on timeout
wait_jobs() {
    local end=$(($(date +%s) + $1))
    while [ -n "$(squeue -h -o %A)" ]; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.5
    done
}
# states JOBID...: the final state of every job (an array: of each task), one per line
states() { for j in "$@"; do scontrol show job -o "$j" | grep -o 'JobState=[A-Z_]*'; done | sort | uniq -c; }

# --- the dry run needs no cluster and writes nothing ---------------------------------------------
expect_exit "submit.sh --dry-run" 0 "$t/dry.out" "$ONFH_ROOT/jobs/submit.sh" "$cfg" --run "$run" --dry-run
n=$(grep -c '^sbatch ' "$t/dry.out")
[ "$n" -eq 9 ] && grep -q -- '--array=0-2 ' "$t/dry.out" && grep -qF -- '--dependency=afterok:\<split\>' "$t/dry.out" && [ ! -e "$run" ] &&
    ok "the dry run prints 9 sbatch commands (an array of 3 tasks, afterok chain) and writes nothing" ||
    not_ok "the dry run prints 9 sbatch commands and writes nothing" "$(cat "$t/dry.out")"

# --- the cluster --------------------------------------------------------------------------------
expect_exit "slurm/local/up.sh starts munged, slurmctld, slurmd; the node is idle" 0 "$t/up.out" "$ONFH_ROOT/slurm/local/up.sh" "$cluster"
. "$cluster/env.sh"
cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
scontrol show node localhost | grep -q "CPUTot=$cpus " && ok "the node has the machine's $cpus CPUs (slurmd -C)" || not_ok "the node has the machine's CPUs" "$(scontrol show node localhost | head -5)"
pids=$(cat "$cluster"/run/*.pid)

# --- the whole chain in one command ------------------------------------------------------------
t0=$(date +%s)
expect_exit "jobs/submit.sh submits the chain" 0 "$t/submit.out" "$ONFH_ROOT/jobs/submit.sh" "$cfg" --run "$run"
# jobs/submit.sh prints "stage<TAB>job id" lines (and notes without a tab)
ids_of() { awk -F '\t' 'NF == 2 { print $'"$1"' }' "$2"; }
mapfile -t ids < <(ids_of 2 "$t/submit.out")
[ "$(ids_of 1 "$t/submit.out" | tr '\n' ' ')" = "synth ingest split train_array train evaluate vessels progression report " ] && ok "it prints one job id per stage" || not_ok "it prints one job id per stage" "$(cat "$t/submit.out")"
if wait_jobs 240; then ok "the chain finished in $(($(date +%s) - t0)) s"; else not_ok "the chain finished within 240 s" "$(squeue)"; fi
st=$(states "${ids[@]}")
[ "$(echo "$st" | wc -l)" = 1 ] && echo "$st" | grep -q ' 11 JobState=COMPLETED' && ok "every job completed (8 jobs + 3 array tasks)" ||
    not_ok "every job completed" "$st" "$(tail -n 5 "$run"/slurm/logs/*.out)"
missing=
for f in raw clinical.csv labels.csv cohort.h5 ingest_report.json splits.json metrics.json evaluation.json predictions.csv evaluation.h5 vessels.h5 treatment.json progression.h5 progression.json report/index.html \
    models/mobilenet_v3_small/fold{0,1,2}/{checkpoint.h5,heldout_predictions.csv}; do
    [ -e "$run/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "every stage's outputs are there (synth to report)" || not_ok "every stage's outputs are there" "missing:$missing"
"$ONFH" plan "$cfg" --run "$run" >"$t/plan.out"
[ "$(cut -f1,2 "$t/plan.out" | tr '\t\n' ': ')" = "synth:skip ingest:skip split:skip train:skip evaluate:skip vessels:skip progression:skip report:skip " ] && ok "the manifest records every stage as current" || not_ok "the manifest records every stage as current" "$(cat "$t/plan.out")"
rec=$(jq -r '.slurm.submissions[-1].jobs | [.synth, .ingest, .split, .train_array, .train, .evaluate, .vessels, .progression, .report] | join(" ")' "$run/manifest.json")
[ "$rec" = "${ids[*]}" ] && ok "the manifest records the job ids ($rec)" || not_ok "the manifest records the job ids" "manifest: $rec" "submit.sh: ${ids[*]}"
map=$(jq -r '.slurm.submissions[-1] | .train_map + " " + ([.train_tasks[] | "\(.index):\(.arch):\(.fold)"] | join(" "))' "$run/manifest.json")
[ "$map" = "slurm/train_tasks.tsv 0:mobilenet_v3_small:0 1:mobilenet_v3_small:1 2:mobilenet_v3_small:2" ] && ok "... and the array's index map (and its file)" || not_ok "the manifest records the index map" "$map"
good=0
for i in 0 1 2; do
    grep -q "array task $i: mobilenet_v3_small fold $i" "$run/slurm/logs/train-${ids[3]}_$i.out" &&
        grep -q "train mobilenet_v3_small fold $i: held-out fold" "$run/slurm/logs/train-${ids[3]}_$i.out" && good=$((good + 1))
done
[ "$good" = 3 ] && ok "each array task trained its own (architecture, fold)" || not_ok "each array task trained its own (architecture, fold)" "$(tail -n 3 "$run"/slurm/logs/train-*_*.out)"
[ "$(grep -c 'finished before' "$run/slurm/logs/train-collect-${ids[4]}.out")" = 3 ] && ok "the collect job found all 3 tasks finished" || not_ok "the collect job found all 3 tasks finished" "$(cat "$run/slurm/logs/train-collect-${ids[4]}.out")"

# --- idempotence: nothing to submit; one failed task resubmitted alone ---------------------------
expect_exit "submitting the finished run again" 0 "$t/again.out" "$ONFH_ROOT/jobs/submit.sh" "$cfg" --run "$run"
grep -q '^nothing to submit' "$t/again.out" && [ -z "$(squeue -h)" ] && [ "$(jq '.slurm.submissions | length' "$run/manifest.json")" = 1 ] &&
    ok "... submits nothing" || not_ok "... submits nothing" "$(cat "$t/again.out")" "$(squeue)"
rm "$run/models/mobilenet_v3_small/fold1/heldout_predictions.csv" # as a task that failed at its end
expect_exit "submit.sh --tasks 1 (one failed task)" 0 "$t/one.out" "$ONFH_ROOT/jobs/submit.sh" "$cfg" --run "$run" --tasks 1
mapfile -t ids2 < <(ids_of 2 "$t/one.out")
wait_jobs 120 || not_ok "the resubmission finished within 120 s" "$(squeue)"
st=$(states "${ids2[@]}")
[ "$(ids_of 1 "$t/one.out" | tr '\n' ' ')" = "train_array train evaluate vessels progression report " ] && echo "$st" | grep -q ' 6 JobState=COMPLETED' && [ "$(echo "$st" | wc -l)" = 1 ] &&
    [ "$(ls "$run/slurm/logs/train-${ids2[0]}"_*.out)" = "$run/slurm/logs/train-${ids2[0]}_1.out" ] && [ -s "$run/models/mobilenet_v3_small/fold1/heldout_predictions.csv" ] &&
    ok "only task 1 ran again (then collect and the later stages), and its predictions are back" || not_ok "only task 1 ran again" "$(cat "$t/one.out")" "$st"

# --- preemption: USR1 to the batch shell, the step exits ONFH_EXIT_PREEMPTED, the job requeues --
cat >"$t/preempt.sbatch" <<'EOF'
#!/bin/bash
#SBATCH --requeue --open-mode=append --ntasks=1
. "$ONFH_ROOT/jobs/common.sh"
onfh_job_env
ONFH_BIN=/bin/bash
export ONFH_EXIT_PREEMPTED
# the step: on its first run, wait for USR1 and exit with the preempted code, as onfh train does
onfh_srun -c 'if [ "${SLURM_RESTART_COUNT:-0}" = 0 ]; then
    trap "echo step: USR1, checkpoint saved; exit $ONFH_EXIT_PREEMPTED" USR1
    touch "$MARK"; while :; do sleep 0.1; done
fi
echo "step: resumed, restart $SLURM_RESTART_COUNT"'
EOF
export ONFH_ROOT MARK=$t/preempt.started
j=$(sbatch --parsable --output="$t/preempt.out" "$t/preempt.sbatch")
for _ in $(seq 300); do [ -e "$MARK" ] && break; sleep 0.1; done
scancel --signal=USR1 --batch "$j"
wait_jobs 90 || not_ok "the preempted job finished within 90 s" "$(squeue)"
sj=$(scontrol show job -o "$j")
echo "$sj" | grep -q 'JobState=COMPLETED' && echo "$sj" | grep -q 'Restarts=1 ' && grep -q 'step: resumed, restart 1' "$t/preempt.out" &&
    grep -q 'requeueing job' "$t/preempt.out" && ok "a step preempted with the requeue exit code (jobs/common.sh) requeued its job, which resumed (SLURM_RESTART_COUNT=1) and completed" ||
    not_ok "a preempted step requeues its job" "$(echo "$sj" | grep -o 'JobState=[A-Z]*\|Restarts=[0-9]*')" "$(cat "$t/preempt.out")"

# --- a real training task preempted mid-run: requeued, resumed, an uninterrupted run's weights ---
# 40 epochs at 128x128 last a few seconds; USR1 comes once the first epoch is logged. The
# uninterrupted reference runs on 1 rank with the job's thread count (OMP_NUM_THREADS=1 here).
slow=$t/slow.yaml
sed 's/^  epochs: 2$/  epochs: 40\n  image_size: 128/' "$cfg" >"$slow"
prun=$t/prun
mkdir -p "$prun"
cp "$run/cohort.h5" "$run/splits.json" "$prun/"
task=$prun/models/mobilenet_v3_small/fold0
expect_exit "an uninterrupted training task (the reference)" 0 "$t/ref.out" "$ONFH" train "$slow" --run "$prun" --arch mobilenet_v3_small --fold 0
cp "$task/last.h5" "$t/uninterrupted.h5"
rm -rf "$prun/models"
printf '0\tmobilenet_v3_small\t0\n' >"$t/map.tsv"
pj=$(ONFH_BIN=$ONFH ONFH_CONFIG=$slow ONFH_RUN=$prun ONFH_TRAIN_MAP=$t/map.tsv sbatch --parsable --array=0 \
    --output="$t/ptrain-%A_%a.out" "$ONFH_ROOT/jobs/train.sbatch")
for _ in $(seq 600); do [ "$( (wc -l <"$task/log.csv") 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
scancel --signal=USR1 --batch "${pj}_0"
wait_jobs 180 || not_ok "the preempted training task finished within 180 s" "$(squeue)"
sj=$(scontrol show job -o "${pj}_0")
pout=$t/ptrain-${pj}_0.out
echo "$sj" | grep -q 'JobState=COMPLETED' && echo "$sj" | grep -q 'Restarts=1 ' && grep -q 'requeueing job' "$pout" && grep -q 'resum' "$pout" &&
    ok "a training task sent USR1 mid-run checkpointed, requeued itself and resumed to the end" ||
    not_ok "a training task sent USR1 mid-run requeues and resumes" "$(echo "$sj" | grep -o 'JobState=[A-Z]*\|Restarts=[0-9]*')" "$(tail -n 12 "$pout")"
{ h5diff "$t/uninterrupted.h5" "$task/last.h5" /state_dict /state_dict &&
    h5diff "$t/uninterrupted.h5" "$task/last.h5" /optimizer /optimizer; } >"$t/pdiff.out" 2>&1 &&
    ok "... ending with the uninterrupted run's weights and moments, bit for bit" ||
    not_ok "... ending with the uninterrupted run's weights and moments" "$(head -5 "$t/pdiff.out")"

# --- the default config's chain (the paper-sized synthetic cohort, every stage at its sizes), with
# two of its ten architectures: all ten are `make run`'s ten minutes, too long for make test. The
# config is configs/default.yaml resolved with that one change (onfh config show), so it follows
# every other edit of the default. Minutes, not seconds, so it runs last, once the small chain
# has shown each mechanism --------------------------------------------------------------------
drun=$t/default
dcfg=$t/default_two_archs.yaml
"$ONFH" config show "$ONFH_ROOT/configs/default.yaml" --set 'train.archs=[mobilenet_v3_large,mobilenet_v3_small]' >"$dcfg"
t1=$(date +%s)
expect_exit "jobs/submit.sh configs/default.yaml with two architectures" 0 "$t/dsubmit.out" "$ONFH_ROOT/jobs/submit.sh" "$dcfg" --run "$drun"
mapfile -t dids < <(ids_of 2 "$t/dsubmit.out")
if wait_jobs 1200; then ok "the default chain finished in $(($(date +%s) - t1)) s"; else not_ok "the default chain finished within 1200 s" "$(squeue)"; fi
dst=$(states "${dids[@]}")
ntasks=$(awk -F '\t' 'NF == 3' "$drun/slurm/train_tasks.tsv" | wc -l)
[ "$(echo "$dst" | wc -l)" = 1 ] && echo "$dst" | grep -q " $((${#dids[@]} - 1 + ntasks)) JobState=COMPLETED" &&
    ok "every job of the default chain completed (${#dids[@]} jobs, an array of $ntasks tasks)" ||
    not_ok "every job of the default chain completed" "$dst" "$(tail -n 5 "$drun"/slurm/logs/*.out)"
missing=
for f in cohort.h5 splits.json metrics.json evaluation.json evaluation.h5 vessels.h5 treatment.json progression.json report/index.html; do
    [ -e "$drun/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && "$ONFH" plan "$dcfg" --run "$drun" | cut -f2 | grep -qv skip && missing="$missing (a stage not current)"
[ -z "$missing" ] && ok "... every stage's outputs, every stage current in the manifest" || not_ok "... every stage's outputs" "missing:$missing"
"$ONFH" status "$drun" >"$t/dstatus.out" 2>&1
grep -q "training tasks (2 architecture(s) x [0-9]* fold(s)): $ntasks done, 0 running, 0 failed, 0 pending" "$t/dstatus.out" && [ "$(grep -c '  done  ' "$t/dstatus.out")" -eq "$ntasks" ] &&
    ok "... onfh status shows every array task done" || not_ok "... onfh status shows every array task done" "$(cat "$t/dstatus.out")"

# --- down: every daemon gone ---------------------------------------------------------------------
expect_exit "slurm/local/down.sh" 0 "$t/down.out" "$ONFH_ROOT/slurm/local/down.sh" "$cluster"
left=
for p in $pids; do
    # a zombie (state Z) is already dead, waiting for its parent to read its status
    s=$(ps -o stat= -p "$p" 2>/dev/null) && [ "${s#Z}" = "$s" ] && left="$left $p"
done
live=$(ps -eo stat=,args= | grep -v '^Z' | grep -F -- "$cluster" | grep -v grep)
steps=$(ps -eo stat=,comm= | grep -v '^Z' | grep -w slurmstepd)
[ -z "$left$live$steps" ] && ok "no munged, slurmctld, slurmd or slurmstepd is left (ps)" || not_ok "no daemon is left" "pids:$left" "$live" "$steps"
trap - EXIT
done_testing
