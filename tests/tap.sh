# tap.sh: helpers for the integration tests (tests/integration/*.sh): each check prints one TAP line.
# Sourced by tests/integration/*.sh; tests/run.sh counts the lines.
n_tap=0
ok() { # ok DESCRIPTION: a passed check
    n_tap=$((n_tap + 1))
    echo "ok $n_tap - $1"
}
not_ok() { # not_ok DESCRIPTION DETAILS...
    n_tap=$((n_tap + 1))
    echo "not ok $n_tap - $1"
    shift
    for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
check() { # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else not_ok "$what" "failed: $*"; fi
}
# expect_exit DESCRIPTION CODE OUTFILE COMMAND...: runs COMMAND (stdout+stderr to OUTFILE) and
# checks its exit status.
expect_exit() {
    local what=$1 code=$2 out=$3
    shift 3
    "$@" >"$out" 2>&1
    local rc=$?
    if [ "$rc" -eq "$code" ]; then ok "$what"; else not_ok "$what" "exit $rc, expected $code: $*" "$(head -c 2000 "$out")"; fi
}
# relay FILE: re-numbers the TAP lines another program wrote to FILE into this script's sequence,
# keeping each failure's "#" detail lines.
relay() {
    local verdict what
    while read -r verdict what; do
        if [ "$verdict" = ok ]; then
            ok "$what"
        else
            not_ok "$what" "$(grep -F -A20 -- "- $what" "$1" | tail -n +2 | sed -n '/^#/!q; s/^# *//p')"
        fi
    done < <(sed -n -E 's/^ok [0-9]+ - /ok /p; s/^not ok [0-9]+ - /not_ok /p' "$1")
}
# mpi NP COMMAND...: COMMAND on NP ranks under mpirun, passing the sanitizer settings, never
# hanging a test run for more than 5 minutes.
mpi() { timeout 300 mpirun -x ASAN_OPTIONS -x UBSAN_OPTIONS -np "$@"; }
done_testing() { echo "1..$n_tap"; }
