# cli.sh: the onfh command as a user meets it: help, version, config faults, the run
# directory, its lock, status, install. Runs bin/onfh of the build under test ($ONFH).
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/cli
mkdir -p "$t"
# MPI_Init leaks inside Open MPI by design (toolchain.md): leak checks stay in the unit tests.
export ASAN_OPTIONS=detect_leaks=0

# --- help and version -----------------------------------------------------------------------
expect_exit "onfh --help exits 0" 0 "$t/help" "$ONFH" --help
if grep -q '^  run ' "$t/help" && grep -q '^  config ' "$t/help" && grep -q '^exit codes:' "$t/help"; then
    ok "--help lists the commands and exit codes"
else
    not_ok "--help lists the commands and exit codes" "$(cat "$t/help")"
fi
expect_exit "onfh run --help exits 0" 0 "$t/runhelp" "$ONFH" run --help
grep -q -- '--set KEY=VALUE' "$t/runhelp" && ok "run --help documents --set" || not_ok "run --help documents --set" "$(cat "$t/runhelp")"
expect_exit "onfh synth --help exits 0" 0 "$t/synthhelp" "$ONFH" synth --help
grep -q -- '--preview .*montage' "$t/synthhelp" && ok "a stage's --help documents its own flag" || not_ok "a stage's --help documents its own flag" "$(cat "$t/synthhelp")"
expect_exit "onfh --version exits 0" 0 "$t/version" "$ONFH" --version
missing=""
for lib in "MPI:" "HDF5:" "libyaml:" "oneDNN:" "cuDNN:" "NCCL:" "commit" "build:"; do
    grep -q "$lib" "$t/version" || missing="$missing $lib"
done
[ -z "$missing" ] && ok "--version names commit, flags and every library" || not_ok "--version names commit, flags and every library" "missing:$missing" "$(cat "$t/version")"
expect_exit "onfh formats exits 0" 0 "$t/formats" "$ONFH" formats
grep -q '^| RLE Lossless | 1.2.840.10008.1.2.5 | yes |' "$t/formats" && grep -q '^| MPEG2 Main Profile @ Main Level | 1.2.840.10008.1.2.4.100 | refused |' "$t/formats" &&
    ok "formats prints the support matrix" || not_ok "formats prints the support matrix" "$(head "$t/formats")"
expect_exit "unknown command exits 2" 2 "$t/unknown" "$ONFH" frobnicate
grep -q "no command 'frobnicate'" "$t/unknown" && ok "unknown command is named" || not_ok "unknown command is named" "$(cat "$t/unknown")"
expect_exit "no arguments exits 2" 2 "$t/noargs" "$ONFH"
expect_exit "unknown option exits 2" 2 "$t/badopt" "$ONFH" run "$fx/good.yaml" --frob
expect_exit "missing CONFIG exits 2" 2 "$t/noconf" "$ONFH" run

# --- the six config faults: one line naming file:line:column and key, exit 2 ------------------
fault() { # fault NAME EXPECTED-LINE COMMAND-ARGS...
    local name=$1 expect=$2
    shift 2
    "$ONFH" "$@" >"$t/$name.out" 2>"$t/$name.err"
    local rc=$? lines
    lines=$(wc -l <"$t/$name.err")
    if [ "$rc" -eq 2 ] && [ "$lines" -eq 1 ] && [ "$(cat "$t/$name.err")" = "$expect" ]; then
        ok "config fault '$name': exit 2 and one line"
    else
        not_ok "config fault '$name': exit 2 and one line" "exit $rc, $lines line(s):" "$(cat "$t/$name.err")" "expected: $expect"
    fi
}
fault bad_syntax "$fx/bad_syntax.yaml:3:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence" \
    run "$fx/bad_syntax.yaml" --run "$t/never"
fault unknown_key "$fx/unknown_key.yaml:3:3: run.sede: unknown key (did you mean run.seed?)" \
    run "$fx/unknown_key.yaml" --run "$t/never"
fault wrong_type "$fx/wrong_type.yaml:2:24: run.progress_interval_s: expected a number > 0, got \"fast\"" \
    run "$fx/wrong_type.yaml" --run "$t/never"
fault out_of_range "$fx/out_of_range.yaml:2:9: run.seed: expected an integer in [0, 4294967295], got \"-1\"" \
    run "$fx/out_of_range.yaml" --run "$t/never"
fault missing_file "$fx/no_such.yaml: cannot open: No such file or directory" \
    run "$fx/no_such.yaml" --run "$t/never"
fault duplicate_key "$fx/duplicate_key.yaml:4:3: run.seed: duplicate key (first given at line 2)" \
    run "$fx/duplicate_key.yaml" --run "$t/never"
fault set_type "--set run.seed=many: run.seed: expected an integer in [0, 4294967295], got \"many\"" \
    run "$fx/good.yaml" --set run.seed=many --run "$t/never"
fault show_unknown "$fx/unknown_key.yaml:3:3: run.sede: unknown key (did you mean run.seed?)" \
    config show "$fx/unknown_key.yaml"
[ ! -e "$t/never" ] && ok "a config fault creates no run directory" || not_ok "a config fault creates no run directory"

# --- config show / doc ------------------------------------------------------------------------
expect_exit "config show exits 0" 0 "$t/show" "$ONFH" config show "$fx/good.yaml" --set run.log_level=warn
if grep -q '^  seed: 7$' "$t/show" && grep -q '^  log_level: warn$' "$t/show" && grep -q '^  name: "good"$' "$t/show"; then
    ok "config show resolves file, --set and defaults"
else
    not_ok "config show resolves file, --set and defaults" "$(cat "$t/show")"
fi
hash_said=$(sed -n 's/.*sha256 of the lines below: \([0-9a-f]*\)$/\1/p' "$t/show")
hash_real=$(tail -n +2 "$t/show" | sha256sum | cut -d' ' -f1)
[ -n "$hash_said" ] && [ "$hash_said" = "$hash_real" ] && ok "config show's hash is the SHA-256 of its text" || not_ok "config show's hash is the SHA-256 of its text" "$hash_said vs $hash_real"
expect_exit "config doc exits 0" 0 "$t/doc" "$ONFH" config doc
grep -q '^run.seed: an integer in \[0, 4294967295\]; default 1$' "$t/doc" && ok "config doc gives type, range and default" || not_ok "config doc gives type, range and default" "$(head -20 "$t/doc")"

# --- config get and plan: what scripts (jobs/submit.sh) read instead of parsing YAML ------------
"$ONFH" config get "$fx/synth_small.yaml" train.archs --set 'train.archs=[resnet18, vgg16_bn]' >"$t/get" 2>&1
[ "$(tr '\n' ' ' <"$t/get")" = "resnet18 vgg16_bn " ] && ok "config get prints a list one item per line, after --set" || not_ok "config get prints a list one item per line" "$(cat "$t/get")"
"$ONFH" config get "$fx/synth_small.yaml" run.name >"$t/get" 2>&1
[ "$(cat "$t/get")" = synth_small ] && ok "config get prints derived values (run.name from the file name)" || not_ok "config get prints run.name" "$(cat "$t/get")"
expect_exit "config get of an unknown key exits 2" 2 "$t/get" "$ONFH" config get "$fx/synth_small.yaml" train.nope
expect_exit "plan exits 0" 0 "$t/plan" "$ONFH" plan "$fx/synth_small.yaml" --run "$t/runs/planned"
[ "$(cut -f1 "$t/plan" | head -1)" = synth ] && [ "$(cut -f2 "$t/plan" | sort -u)" = run ] && [ "$(wc -l <"$t/plan")" -ge 5 ] && [ ! -e "$t/runs/planned" ] &&
    ok "plan: every stage would run in a new directory, which it does not create" || not_ok "plan on a new directory" "$(cat "$t/plan")"

# --- a run directory --------------------------------------------------------------------------
r=$t/runs/one
expect_exit "onfh run exits 0" 0 "$t/run1" "$ONFH" run "$fx/good.yaml" --run "$r"
for f in config.yaml manifest.json logs/rank0.log; do
    [ -s "$r/$f" ] && ok "run writes $f" || not_ok "run writes $f" "$(ls -laR "$r" 2>&1)"
done
[ ! -e "$r/.lock" ] && ok "the lock is released at exit" || not_ok "the lock is released at exit"
cfg_hash=$(sha256sum <"$r/config.yaml" | cut -d' ' -f1)
grep -q "\"config_sha256\": \"$cfg_hash\"" "$r/manifest.json" && ok "manifest's config hash is sha256sum of config.yaml" || not_ok "manifest's config hash is sha256sum of config.yaml" "$cfg_hash" "$(cat "$r/manifest.json")"
ls "$r" | grep -q '\.tmp\.' && not_ok "no temporary files are left" "$(ls "$r")" || ok "no temporary files are left"
grep -q ' r0 run good in ' "$t/run1" && ok "log lines carry time and rank" || not_ok "log lines carry time and rank" "$(cat "$t/run1")"
grep -E -q '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z r0 ' "$r/logs/rank0.log" && ok "the rank log has the same lines" || not_ok "the rank log has the same lines" "$(cat "$r/logs/rank0.log")"
expect_exit "onfh status exits 0" 0 "$t/status" "$ONFH" status "$r"
grep -q "^run good, config sha256 $cfg_hash" "$t/status" && ok "status reports the run" || not_ok "status reports the run" "$(cat "$t/status")"
expect_exit "status of a non-run directory exits 1" 1 "$t/status2" "$ONFH" status "$t"

# default run directory: <run.output_root>/<config name>
(cd "$t" && "$ONFH" run "$fx/good.yaml" --set run.output_root=out >/dev/null 2>&1)
[ -f "$t/out/good/manifest.json" ] && ok "default run directory is <output_root>/<config name>" || not_ok "default run directory is <output_root>/<config name>" "$(ls -R "$t/out" 2>&1)"

# --- the lock -----------------------------------------------------------------------------------
sleep 60 &
holder=$!
echo "$(hostname) $holder $(date +%s) 777" >"$r/.lock"
expect_exit "a run directory held by a live process: exit 3" 3 "$t/busy" "$ONFH" run "$fx/good.yaml" --run "$r"
grep -q "in use by pid $holder on host $(hostname) since .*, Slurm job 777" "$t/busy" && ok "the busy message names the holder" || not_ok "the busy message names the holder" "$(cat "$t/busy")"
kill "$holder"
wait "$holder" 2>/dev/null
expect_exit "a stale lock (dead process) is taken over" 0 "$t/stale" "$ONFH" run "$fx/good.yaml" --run "$r"
grep -q "warning: .*removed a stale lock left by pid $holder" "$t/stale" && ok "taking over a stale lock is logged" || not_ok "taking over a stale lock is logged" "$(cat "$t/stale")"

# --- commands that never start MPI leak nothing (LeakSanitizer on in SAN=1 builds) -------------
if [ "$(basename "$ONFH_BUILD")" = san ]; then
    leaks=""
    for args in "--version" "--help" "config doc" "config show $fx/good.yaml" "config show $fx/unknown_key.yaml" "status $r"; do
        ASAN_OPTIONS=detect_leaks=1 "$ONFH" $args >/dev/null 2>"$t/lsan"
        grep -q LeakSanitizer "$t/lsan" && leaks="$leaks [$args]"
    done
    [ -z "$leaks" ] && ok "LeakSanitizer: no leaks in commands without MPI" || not_ok "LeakSanitizer: no leaks in commands without MPI" "$leaks"
fi

# --- install ------------------------------------------------------------------------------------
if [ "$(basename "$ONFH_BUILD")" = rel ]; then
    expect_exit "make install PREFIX=..." 0 "$t/install" make -C "$ONFH_ROOT" --no-print-directory install PREFIX="$t/prefix"
    expect_exit "the installed onfh runs" 0 "$t/installed" "$t/prefix/bin/onfh" --version
fi
done_testing
