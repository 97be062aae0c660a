#!/bin/bash
# run.sh BUILD_DIR: every test of onfh, in TAP, ending with one line "N passed, N failed".
#   unit tests        BUILD_DIR/tests/test_* (cmocka, TAP output); one run per line of
#                     tests/unit/test_NAME.args when it exists (each line's words are the
#                     arguments; # starts a comment line)
#   integration tests tests/integration/*.sh (mpirun, the onfh command; they print TAP lines)
#   format-check      clang-format over the sources
# ONFH_TEST_FILTER=substring runs only the matching test programs.
set -u
build=${1:?usage: tests/run.sh BUILD_DIR}
export ONFH="$PWD/$build/onfh" ONFH_BUILD="$PWD/$build" ONFH_ROOT="$PWD"
# MPI as root, more ranks than cores, and traffic kept off the network (toolchain.md).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
export OMP_NUM_THREADS=1 CMOCKA_MESSAGE_OUTPUT=TAP
# Open MPI leaks by design; LeakSanitizer cannot be told about it (toolchain.md), so leaks are
# checked in the unit tests (single process, no MPI_Init) and off under mpirun.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
export ONFH_TEST_TMP=$tmp

passed=0
failed=0
failures=()

# run_tap NAME CMD...: runs a program that prints TAP, counts its ok / not ok lines. A program
# that exits non-zero without reporting a failure (a crash, a sanitizer report) counts as one.
run_tap() {
    local name=$1
    shift
    local out="$tmp/${name//[^A-Za-z0-9_.-]/_}.out"
    "$@" >"$out" 2>&1
    local rc=$?
    local ok nok
    ok=$(grep -c -E '^ok ' "$out")
    nok=$(grep -c -E '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        nok=1
        echo "not ok - $name exited with status $rc" >>"$out"
    fi
    passed=$((passed + ok))
    failed=$((failed + nok))
    if [ "$nok" -gt 0 ]; then
        failures+=("$name")
        echo "# $name: $ok passed, $nok failed"
        sed 's/^/#   /' "$out" | tail -n 60
    elif grep -q '^1\.\.0 # SKIP' "$out"; then
        echo "# $name: skipped:$(sed -n 's/^1\.\.0 # SKIP//p' "$out")"
    else
        echo "# $name: $ok passed"
    fi
}

for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    [[ "$t" == *"${ONFH_TEST_FILTER:-}"* ]] || continue
    name=$(basename "$t")
    if [ -f "tests/unit/$name.args" ]; then
        mapfile -t arg_sets <"tests/unit/$name.args"
        for args in "${arg_sets[@]}"; do
            [[ -z "$args" || "$args" == \#* ]] && continue
            # shellcheck disable=SC2086 # the words of the line are the arguments
            run_tap "$name $args" "$t" $args
        done
    else
        run_tap "$name" "$t"
    fi
done
for t in tests/integration/*.sh; do
    [ -f "$t" ] || continue
    [[ "$t" == *"${ONFH_TEST_FILTER:-}"* ]] || continue
    run_tap "$(basename "$t")" bash "$t"
done
if [ -z "${ONFH_TEST_FILTER:-}" ]; then
    if make --no-print-directory format-check >"$tmp/format.out" 2>&1; then
        passed=$((passed + 1))
        echo "# format-check: clean"
    else
        failed=$((failed + 1))
        failures+=("format-check")
        echo "# format-check: files need 'make format':"
        grep -o '^[^:]*\.[ch]:' "$tmp/format.out" | sort -u | sed 's/^/#   /'
    fi
fi

[ ${#failures[@]} -gt 0 ] && echo "# failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
