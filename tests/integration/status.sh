# status.sh: `onfh status RUN_DIR` shows each training task (architecture x fold) done, running,
# failed or pending, with times, from the run directory's files: on the small synthetic cohort
# with two architectures (6 tasks), two tasks trained, one that failed for real (a `preempted`
# marker without its last.h5: training refuses to start from scratch and leaves a `failed`
# marker), one whose lock a live process holds (running), one whose lock a dead process left
# (killed), one never started. Then the whole stage, `onfh train` without --arch, takes each
# task's own lock while it trains it (so status sees it running), takes over the dead one's,
# trains the rest, and leaves every task done and no lock behind.
. "$(dirname "$0")/../tap.sh"
set -u
t=$ONFH_TEST_TMP/status
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$t/two_archs.yaml
"$ONFH" config show "$ONFH_ROOT/tests/fixtures/configs/synth_small.yaml" \
    --set 'train.archs=[mobilenet_v3_small,shufflenet_v2_x1_0]' --set train.epochs=2 >"$cfg"
one() { "$ONFH" train "$cfg" --run "$run" --arch "$1" --fold "$2"; }

for s in synth ingest split; do
    "$ONFH" "$s" "$cfg" --run "$run" >"$t/$s.out" 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ] || not_ok "onfh $s" "exit $rc" "$(tail -5 "$t/$s.out")"
done
expect_exit "status before any training" 0 "$t/st0" "$ONFH" status "$run"
grep -q '^training tasks (2 architecture(s) x 3 fold(s)): 0 done, 0 running, 0 failed, 6 pending$' "$t/st0" &&
    ok "... 6 tasks, all pending" || not_ok "... 6 tasks, all pending" "$(cat "$t/st0")"

expect_exit "train mobilenet_v3_small fold 0" 0 "$t/tr0" one mobilenet_v3_small 0
expect_exit "train mobilenet_v3_small fold 1" 0 "$t/tr1" one mobilenet_v3_small 1
# failed for real: a preempted task whose checkpoint is gone must not start from scratch
mkdir -p "$run/models/mobilenet_v3_small/fold2"
echo "preempted at step 3" >"$run/models/mobilenet_v3_small/fold2/preempted"
expect_exit "a preempted task without its last.h5 fails (exit 2)" 2 "$t/tr2" one mobilenet_v3_small 2
# running: a live process holds shufflenet fold 0's lock, as a Slurm array task would
sleep 300 &
holder=$!
since=$(date +%s)
echo "$(hostname) $holder $since 4242" >"$run/.lock.train.shufflenet_v2_x1_0.fold0"
# killed: fold 1's lock left by a process that is gone (kill -9 leaves no marker)
sh -c 'exit 0' &
dead=$!
wait "$dead"
echo "$(hostname) $dead $since -" >"$run/.lock.train.shufflenet_v2_x1_0.fold1"

expect_exit "status with tasks in every state" 0 "$t/st1" "$ONFH" status "$run"
row() { grep -E "^ +$1  $2 +$3  " "$t/st1"; }
grep -q '^training tasks (2 architecture(s) x 3 fold(s)): 2 done, 1 running, 2 failed, 1 pending$' "$t/st1" &&
    ok "... counts: 2 done, 1 running, 2 failed, 1 pending" || not_ok "... counts" "$(cat "$t/st1")"
for k in 0 1; do
    row $k mobilenet_v3_small $k | grep -Eq "  done +2/2 +[0-9.]+ s  best epoch [12], finished 20[0-9-]+T[0-9:]+Z$" &&
        ok "... task $k done: epochs, training time, best epoch, when it finished" ||
        not_ok "... task $k done" "$(cat "$t/st1")"
done
row 2 mobilenet_v3_small 2 | grep -Eq "  failed +20[0-9-]+T[0-9:]+Z .*refusing to start from scratch" &&
    ok "... task 2 failed: when, and the error" || not_ok "... task 2 failed: when and why" "$(cat "$t/st1")"
[ -f "$run/models/mobilenet_v3_small/fold2/failed" ] && ok "... the failed task left its failed marker" || not_ok "... the failed marker"
row 3 shufflenet_v2_x1_0 0 | grep -Eq "  running +since 20[0-9-]+T[0-9:]+Z \([0-9.]+ s\), pid $holder on $(hostname), Slurm job 4242$" &&
    ok "... task 3 running: since when, pid, host, Slurm job" || not_ok "... task 3 running" "$(cat "$t/st1")"
row 4 shufflenet_v2_x1_0 1 | grep -q "  failed .*by pid $dead, which is gone from this host" &&
    ok "... task 4 failed: its process died holding the lock" || not_ok "... task 4 killed" "$(cat "$t/st1")"
row 5 shufflenet_v2_x1_0 2 | grep -Eq "  pending$" && ok "... task 5 pending" || not_ok "... task 5 pending" "$(cat "$t/st1")"
expect_exit "the whole stage refuses a task whose lock a live process holds" 3 "$t/busy" "$ONFH" train "$cfg" --run "$run" --set train.archs=[shufflenet_v2_x1_0]
grep -q "in use by pid $holder on host $(hostname)" "$t/busy" && ok "... naming the holder" || not_ok "... naming the holder" "$(tail -3 "$t/busy")"

# the whole stage: every task under its own lock while it trains
kill "$holder"
wait "$holder" 2>/dev/null
rm "$run/models/mobilenet_v3_small/fold2/preempted"
"$ONFH" train "$cfg" --run "$run" >"$t/stage.out" 2>&1 &
stage=$!
seen=
for _ in $(seq 600); do
    "$ONFH" status "$run" >"$t/st2" 2>&1
    grep -Eq "  running +since .*, pid $stage on " "$t/st2" && { seen=1; break; }
    kill -0 "$stage" 2>/dev/null || break
    sleep 0.1
done
[ -n "$seen" ] && ok "onfh train (the whole stage): status shows the task it trains running, by its pid" ||
    not_ok "onfh train (the whole stage): a task shows running" "$(cat "$t/st2")"
grep -q "^locked by pid $stage on $(hostname) since 20[0-9-]*T[0-9:]*Z$" "$t/st2" && ok "... and the run's lock: whose, since when" ||
    not_ok "... and the run's lock" "$(head -3 "$t/st2")"
wait "$stage"
rc=$?
[ "$rc" -eq 0 ] && ok "... the stage finishes" || not_ok "... the stage finishes" "exit $rc" "$(tail -5 "$t/stage.out")"
grep -q "removed a stale lock left by pid $dead" "$t/stage.out" && ok "... taking over the killed task's lock, with a warning" ||
    not_ok "... takes over the killed task's lock" "$(grep -i lock "$t/stage.out")"
expect_exit "status afterwards" 0 "$t/st3" "$ONFH" status "$run"
grep -q '): 6 done, 0 running, 0 failed, 0 pending$' "$t/st3" && [ -z "$(ls -A "$run" | grep '^\.lock')" ] &&
    [ ! -e "$run/models/mobilenet_v3_small/fold2/failed" ] &&
    ok "... every task done, no lock left, the failed marker gone" || not_ok "... every task done" "$(cat "$t/st3")" "$(ls -A "$run")"
done_testing
