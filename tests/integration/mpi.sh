# mpi.sh: onfh under real mpirun with 2 and 3 ranks (3 on 2 cores catches uneven splits and
# oversubscription): agreement, logs per rank, one error message for a config fault, and a
# fatal error on one rank ending the whole job instead of hanging it.
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/mpi
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)

for np in 2 3; do
    mkdir -p "$t/logs$np"
    mpi "$np" "$ONFH_BUILD/tests/mpi/mpi_runtime" checks "$t/logs$np" >"$t/checks$np" 2>&1 ||
        not_ok "mpi_runtime checks on $np ranks exited non-zero" "$(cat "$t/checks$np")"
    relay "$t/checks$np"
    good_logs=0
    for ((k = 0; k < np; k++)); do
        grep -q "r$k hello from rank $k" "$t/logs$np/rank$k.log" 2>/dev/null &&
            ! grep -q 'not shown' "$t/logs$np/rank$k.log" && good_logs=$((good_logs + 1))
    done
    [ "$good_logs" -eq "$np" ] && ok "each of $np ranks logs to its own file, at its level" || not_ok "each of $np ranks logs to its own file, at its level" "$(cat "$t/logs$np"/* 2>&1)"
    [ "$(grep -c '^1\.\.' "$t/checks$np")" -eq 1 ] || not_ok "mpi_runtime on $np ranks reported its plan" "$(cat "$t/checks$np")"

    r=$t/run$np
    expect_exit "onfh run on $np ranks exits 0" 0 "$t/run$np.out" mpi "$np" "$ONFH" run "$fx/good.yaml" --run "$r"
    n_logs=$(ls "$r"/logs/rank*.log 2>/dev/null | wc -l)
    [ "$n_logs" -eq "$np" ] && ok "$np ranks write $np rank logs" || not_ok "$np ranks write $np rank logs" "$(ls "$r/logs")"
    others=$(grep -c -E ' r[1-9][0-9]* ' "$t/run$np.out")
    [ "$others" -eq 0 ] && ok "only rank 0 prints by default ($np ranks)" || not_ok "only rank 0 prints by default ($np ranks)" "$(cat "$t/run$np.out")"

    expect_exit "log_all_ranks on $np ranks exits 0" 0 "$t/all$np.out" mpi "$np" "$ONFH" run "$fx/good.yaml" --run "$r" --set run.log_all_ranks=true
    speakers=$(grep -o -E ' r[0-9]+ run good' "$t/all$np.out" | sort -u | wc -l)
    [ "$speakers" -eq "$np" ] && ok "run.log_all_ranks: every rank prints ($np ranks)" || not_ok "run.log_all_ranks: every rank prints ($np ranks)" "$(cat "$t/all$np.out")"

    mpi "$np" "$ONFH" run "$fx/wrong_type.yaml" --run "$t/never" >"$t/fault$np.out" 2>&1
    rc=$?
    n_err=$(grep -c 'run.progress_interval_s: expected a number > 0' "$t/fault$np.out")
    [ "$rc" -eq 2 ] && [ "$n_err" -eq 1 ] && ok "config fault on $np ranks: exit 2, printed once" || not_ok "config fault on $np ranks: exit 2, printed once" "exit $rc, $n_err copies" "$(cat "$t/fault$np.out")"

    start=$(date +%s)
    mpi "$np" "$ONFH_BUILD/tests/mpi/mpi_runtime" fatal >"$t/fatal$np.out" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    last=$((np - 1))
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$took" -lt 30 ] && grep -q "r$last error: rank $last gives up on purpose" "$t/fatal$np.out"; then
        ok "a fatal error on rank $last ends all $np ranks (exit $rc, ${took}s)"
    else
        not_ok "a fatal error on rank $last ends all $np ranks" "exit $rc after ${took}s" "$(cat "$t/fatal$np.out")"
    fi
done

# collective HDF5 writing on 1, 2 and 3 ranks: values check out, and the files are the same
for np in 1 2 3; do
    mpi "$np" "$ONFH_BUILD/tests/mpi/mpi_h5out" "$t/h5out$np.h5" >"$t/h5out$np.out" 2>&1 ||
        not_ok "mpi_h5out on $np ranks exited non-zero" "$(tail -5 "$t/h5out$np.out")"
    relay "$t/h5out$np.out"
done
if command -v h5diff >/dev/null; then
    if h5diff "$t/h5out1.h5" "$t/h5out2.h5" >/dev/null && h5diff "$t/h5out1.h5" "$t/h5out3.h5" >/dev/null; then
        ok "h5diff: files written by 1, 2 and 3 ranks have the same content"
    else
        not_ok "h5diff: files written by 1, 2 and 3 ranks have the same content" "$(h5diff "$t/h5out1.h5" "$t/h5out3.h5" | head)"
    fi
else
    ok "# SKIP h5diff not installed"
fi
# the data-parallel communicator (lib/nn/comm.h): bucketed gradient sums against one process's
# whole batch, parameter broadcast, BN averaging; host memory and staged device memory
for np in 2 3; do
    for be in ref refdev; do
        mpi "$np" "$ONFH_BUILD/tests/mpi/mpi_comm" "$be" >"$t/comm$np$be.out" 2>&1 ||
            not_ok "mpi_comm $be on $np ranks exited non-zero" "$(tail -5 "$t/comm$np$be.out")"
        relay "$t/comm$np$be.out"
    done
done
done_testing
