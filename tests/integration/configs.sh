# configs.sh: the configs that ship in configs/ cannot rot. configs/default.yaml (what `make run`
# runs) trains every architecture `onfh archs` lists; configs/paper.yaml (the full design for a GPU
# cluster, too big to run here) loads, resolves to the paper's sizes, plans every stage, and
# jobs/submit.sh turns it into the chain of sbatch commands with one array task per
# (architecture, fold) on the example GPU site, writing nothing.
. "$(dirname "$0")/../tap.sh"
set -u
t=$ONFH_TEST_TMP/configs
mkdir -p "$t"
cfgs=$ONFH_ROOT/configs
"$ONFH" archs >"$t/archs" 2>&1
# `onfh archs` prints a table whose first column is the id; the ids are the torchvision names
mapfile -t all < <(awk 'NR > 1 && $1 ~ /^[a-z0-9_]+$/ { print $1 }' "$t/archs")
[ "${#all[@]}" -eq 10 ] && ok "onfh archs lists ten architectures" || not_ok "onfh archs lists ten architectures" "$(cat "$t/archs")"

for c in default paper; do
    expect_exit "configs/$c.yaml loads (config show)" 0 "$t/$c.show" "$ONFH" config show "$cfgs/$c.yaml"
    "$ONFH" config get "$cfgs/$c.yaml" train.archs >"$t/$c.archs" 2>&1
    [ "$(sort "$t/$c.archs")" = "$(printf '%s\n' "${all[@]}" | sort)" ] &&
        ok "configs/$c.yaml trains all ten architectures" ||
        not_ok "configs/$c.yaml trains all ten architectures" "$(cat "$t/$c.archs")" "onfh archs: ${all[*]}"
    expect_exit "onfh plan configs/$c.yaml" 0 "$t/$c.plan" "$ONFH" plan "$cfgs/$c.yaml" --run "$t/runs/$c"
    [ "$(cut -f2 "$t/$c.plan" | sort -u)" = run ] && [ ! -e "$t/runs/$c" ] &&
        ok "... every stage would run in a new directory, which plan does not create" ||
        not_ok "... every stage would run" "$(cat "$t/$c.plan")"
done

get() { "$ONFH" config get "$cfgs/paper.yaml" "$1" 2>&1; }
want="224 224 5 9999 9999 auto 0 patient"
got="$(get ingest.grid_size) $(get train.image_size) $(get split.folds) $(get evaluate.bootstrap_resamples) $(get vessels.bootstrap_resamples) $(get train.backend) $(get train.ranks_per_model) $(get split.level)"
[ "$got" = "$want" ] && ok "paper.yaml: 224 x 224, 5 patient-grouped folds, 9999 resamples, backend auto, all ranks per task" ||
    not_ok "paper.yaml has the paper's sizes" "got:  $got" "want: $want"

run=$t/runs/paper-dry
expect_exit "jobs/submit.sh configs/paper.yaml --site example-gpu.env --dry-run" 0 "$t/paper.dry" \
    env ONFH_BIN="$ONFH" "$ONFH_ROOT/jobs/submit.sh" "$cfgs/paper.yaml" --run "$run" \
    --site "$ONFH_ROOT/slurm/site/example-gpu.env" --dry-run
n_stages=$("$ONFH" plan "$cfgs/paper.yaml" --run "$run" | wc -l)
# one sbatch per stage, plus the training array beside its collect job
[ "$(grep -c '^sbatch ' "$t/paper.dry")" -eq $((n_stages + 1)) ] && grep -q -- '--array=0-49%20 ' "$t/paper.dry" &&
    grep -q -- '--gpus-per-node=4 ' "$t/paper.dry" && [ "$(grep -c '^#   [0-9]' "$t/paper.dry")" -eq 50 ] && [ ! -e "$run" ] &&
    ok "... one job per stage, an array of 50 (architecture, fold) tasks on 4 GPUs per node, nothing written" ||
    not_ok "... the paper chain's sbatch commands" "$(head -c 3000 "$t/paper.dry")"
done_testing
