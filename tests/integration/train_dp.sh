# train_dp.sh: `mpirun -np N onfh train` trains one (architecture, fold) data-parallel on the
# small synthetic cohort: the same seed and rank count give the same bytes run after run (with
# an uneven 4 + 3 share of a batch of 7), a 2-rank run stopped and resumed ends where a straight
# one does, 1 and 2 ranks see the same samples (the first BN's running mean after 20 steps,
# data-schema/training.md states the tolerance), SIGUSR1 saves and exits 5, a lost checkpoint is
# refused, and a rank killed mid-training ends the job within 30 s.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/train_dp
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml
d=$run/models/mobilenet_v3_small/fold1
for stage in synth ingest split; do
    "$ONFH" "$stage" "$cfg" --run "$run" >"$t/$stage.out" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || not_ok "onfh $stage for the data-parallel tests" "$(tail -3 "$t/$stage.out")"
done
one=(train "$cfg" --run "$run" --arch mobilenet_v3_small --fold 1)

# the same bytes run after run on 2 ranks, batch 7 shared 4 + 3
b7=(--set train.batch_size=7)
expect_exit "2 ranks, batch 7, 4 steps" 0 "$t/a.out" mpi 2 "$ONFH" "${one[@]}" --force --max-steps 4 "${b7[@]}"
grep -q "2 rank(s)" "$t/a.out" && ok "... one model on both ranks" || not_ok "... one model on both ranks" "$(grep 'train mobilenet' "$t/a.out" | head -2)"
grep -q "gradients all-reduced over 2 ranks" "$t/a.out" && ok "... gradients all-reduced in buckets" || not_ok "... gradients all-reduced in buckets" "$(tail -3 "$t/a.out")"
# the all-reduce's cost, as bench/train_dp.sh reads it: wait fraction and overlap in [0, 1],
# a positive step time and reduction time, waits no longer than the steps
line=$(grep 'gradients all-reduced over 2 ranks' "$t/a.out" | tail -1)
costs=$(sed -n 's/.* over \([0-9]*\) steps: waited \([0-9.]*\) s of \([0-9.]*\) s of steps (wait fraction \([0-9.]*\)), backward \([0-9.]*\) s with \([0-9.]*\) s in MPI calls; a reduction with no overlap takes \([0-9.]*\) s, overlap \([0-9.]*\)$/\1 \2 \3 \4 \5 \6 \7 \8/p' <<<"$line")
awk -v c="$costs" 'BEGIN { n = split(c, f, " "); exit !(n == 8 && f[1] == 4 && f[3] > 0 && f[2] <= f[3] &&
    f[4] >= 0 && f[4] <= 1 && (f[4] - f[2] / f[3])^2 < 1e-6 && f[6] <= f[5] && f[5] <= f[3] && f[7] > 0 &&
    f[8] >= 0 && f[8] <= 1) }' &&
    ok "... wait fraction and overlap in [0, 1] over the 4 steps ($costs)" ||
    not_ok "... wait fraction and overlap in [0, 1] over the 4 steps" "$line"
cp "$d/last.h5" "$t/a.h5"
expect_exit "the same again" 0 "$t/b.out" mpi 2 "$ONFH" "${one[@]}" --force --max-steps 4 "${b7[@]}"
cmp -s "$t/a.h5" "$d/last.h5" && ok "2 ranks: the same seed gives bit-identical weights, moments and state" || not_ok "2 ranks: the same seed gives bit-identical weights, moments and state" "$(h5diff "$t/a.h5" "$d/last.h5" 2>&1 | head -5)"

# 2 + 2 steps on 2 ranks (crossing an epoch boundary) against 4 straight
expect_exit "2 ranks: 2 steps, stopped" 0 "$t/c.out" mpi 2 "$ONFH" "${one[@]}" --force --max-steps 2 "${b7[@]}"
expect_exit "2 ranks: 2 more steps, resumed" 0 "$t/d.out" mpi 2 "$ONFH" "${one[@]}" --max-steps 2 "${b7[@]}"
cmp -s "$t/a.h5" "$d/last.h5" && ok "2 ranks: stopped and resumed ends bit for bit where the straight run does" || not_ok "2 ranks: stopped and resumed ends bit for bit where the straight run does" "$(h5diff "$t/a.h5" "$d/last.h5" 2>&1 | head -5)"

# 1 rank against 2 for 20 steps (lr so small that the weights stay put): the first BN layer's
# running mean, averaged over the ranks, is the 1-rank one when every sample of every global
# batch went to exactly one rank with the same augmentation (tolerance: data-schema/training.md)
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
    slow=(--force --max-steps 20 --set train.epochs=8 --set train.lr=1e-7)
    expect_exit "1 rank, 20 steps" 0 "$t/r1.out" mpi 1 "$ONFH" "${one[@]}" "${slow[@]}"
    cp "$d/last.h5" "$t/r1.h5"
    expect_exit "2 ranks, 20 steps" 0 "$t/r2.out" mpi 2 "$ONFH" "${one[@]}" "${slow[@]}"
    cp "$d/last.h5" "$t/r2.h5"
    expect_exit "1 rank, 20 steps, other data (no augmentation)" 0 "$t/r0.out" mpi 1 "$ONFH" "${one[@]}" "${slow[@]}" --set train.augment=false
    diff12=$(/usr/bin/python3 "$ONFH_ROOT/tests/integration/bn_diff.py" "$t/r1.h5" "$t/r2.h5" features.0.1.running_mean)
    control=$(/usr/bin/python3 "$ONFH_ROOT/tests/integration/bn_diff.py" "$t/r1.h5" "$d/last.h5" features.0.1.running_mean)
    awk -v a="$diff12" -v c="$control" 'BEGIN { exit !(a < 1e-4 && c > 1e-2) }' &&
        ok "1 vs 2 ranks, 20 steps: first BN running mean within 1e-4 ($diff12; other data: $control)" ||
        not_ok "1 vs 2 ranks, 20 steps: first BN running mean within 1e-4" "1 vs 2: $diff12, other data: $control"
fi

expect_exit "train.ranks_per_model that does not divide the ranks" 2 "$t/rpm.out" mpi 2 "$ONFH" "${one[@]}" --force --max-steps 1 --set train.ranks_per_model=3
grep -q "train.ranks_per_model 3 does not divide the 2 ranks" "$t/rpm.out" && ok "... is named" || not_ok "... is named" "$(tail -2 "$t/rpm.out")"

# preemption: SIGUSR1 to mpirun (which passes it to the ranks) once training runs
long=(--force --set train.epochs=100)
# mpirun started directly, not through a function (a subshell), so that $! is mpirun itself
mpirun -x ASAN_OPTIONS -x UBSAN_OPTIONS -np 2 "$ONFH" "${one[@]}" "${long[@]}" >"$t/pre.out" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "epoch 1:" "$t/pre.out" && break; sleep 0.1; done
kill -USR1 "$pid"
for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 5 ] && ok "SIGUSR1: the ranks finish the step, save and exit 5 (requeue)" || not_ok "SIGUSR1: the ranks finish the step, save and exit 5 (requeue)" "exit $rc" "$(tail -5 "$t/pre.out")"
grep -q "stopped after .* steps (signal)" "$t/pre.out" && [ -s "$d/last.h5" ] && [ -s "$d/preempted" ] && ok "... last.h5 and the preempted marker written" || not_ok "... last.h5 and the preempted marker written" "$(ls "$d")"
mv "$d/last.h5" "$t/pre.h5"
expect_exit "a preempted task whose last.h5 is gone is refused" 2 "$t/lost.out" mpi 2 "$ONFH" "${one[@]}" --max-steps 1
grep -q "refusing to start from scratch" "$t/lost.out" && ok "... saying why" || not_ok "... saying why" "$(tail -3 "$t/lost.out")"
mv "$t/pre.h5" "$d/last.h5"
expect_exit "the requeued job resumes (1 step)" 0 "$t/resume.out" mpi 2 "$ONFH" "${one[@]}" --max-steps 1 --set train.epochs=100
grep -q "resuming" "$t/resume.out" && [ ! -e "$d/preempted" ] && ok "... from last.h5, marker cleared" || not_ok "... from last.h5, marker cleared" "$(grep -c resuming "$t/resume.out") $(ls "$d")"

# a rank killed mid-training: the others must not wait for it forever
mpirun -x ASAN_OPTIONS -x UBSAN_OPTIONS -np 3 "$ONFH" "${one[@]}" "${long[@]}" >"$t/kill.out" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -q "epoch 1:" "$t/kill.out" && break; sleep 0.1; done
victim=$(pgrep -P "$pid" | tail -1)
start=$(date +%s)
[ -n "$victim" ] && kill -KILL "$victim"
for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
took=$(($(date +%s) - start))
if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    not_ok "one of 3 ranks killed: the others exit within 30 s" "still running after ${took}s"
else
    wait "$pid"
    rc=$?
    [ -n "$victim" ] && [ "$rc" -ne 0 ] && ok "one of 3 ranks killed: the others exit within 30 s (${took}s, exit $rc)" || not_ok "one of 3 ranks killed: the others exit within 30 s" "victim '$victim', exit $rc" "$(tail -5 "$t/kill.out")"
fi

done_testing
