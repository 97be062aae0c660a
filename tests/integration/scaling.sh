# scaling.sh: the data-parallel cost model cannot rot. `onfh model profile` prints a backward
# profile whose last line holds every gradient byte of `onfh model list`, in backward order;
# tools/scaling_model.py (standard library only) runs on the committed profiles, prints the ten
# architectures with efficiencies in (0, 1], its all-reduce column is the ring formula computed
# here, a free fabric gives efficiency 1, and docs/scaling.md holds its output verbatim.
. "$(dirname "$0")/../tap.sh"
set -u
t=$ONFH_TEST_TMP/scaling
mkdir -p "$t"
py=$(command -v python3 || echo /usr/bin/python3)

expect_exit "onfh model profile (ref, batch 2 at 32)" 0 "$t/prof.out" \
    "$ONFH" model profile mobilenet_v3_small --batch 2 --size 32 --backend ref --steps 2
params=$("$ONFH" model list | awk '$1 == "mobilenet_v3_small" { print $2 }')
awk -v want=$((4 * params)) '
    $1 == "gradient_bytes" { total = $2 }
    $1 == "backward_s" { bwd = $2 }
    $1 == "node" { n++; if ($4 < last || $4 <= 0) bad = bad " bytes " $4 " after " last; last = $4; t = $3 }
    END { exit !(n > 10 && total == want && last == total && bwd > 0 && t <= bwd * 1.0001 && bad == "") }' "$t/prof.out" &&
    ok "... gradient bytes final grow to the model's $((4 * params)) in backward order" ||
    not_ok "... gradient bytes final grow to the model's $((4 * params)) in backward order" "$(head -8 "$t/prof.out")" "$(tail -3 "$t/prof.out")"
expect_exit "onfh model profile: an unknown architecture" 2 "$t/unknown.out" "$ONFH" model profile lenet
expect_exit "onfh model profile: --batch 0" 2 "$t/batch.out" "$ONFH" model profile resnet18 --batch 0
grep -q -- "--batch: expected an integer in 1..1000" "$t/batch.out" && ok "... named with what was expected" ||
    not_ok "... named with what was expected" "$(cat "$t/batch.out")"

cd "$ONFH_ROOT" || exit 1
expect_exit "tools/scaling_model.py" 0 "$t/model.md" "$py" tools/scaling_model.py "$ONFH"
"$ONFH" model list | awk 'NR > 1 { print $1, $2 }' >"$t/archs"
missing=$(while read -r arch _; do grep -q "^| $arch\( (est.)\)\? |" "$t/model.md" || echo "$arch"; done <"$t/archs")
[ -z "$missing" ] && ok "... every architecture of onfh model list" || not_ok "... every architecture of onfh model list" "missing: $missing"
# every efficiency the tool prints (three decimals) lies in (0, 1]
bad=$(grep -o '[0-9]\+\.[0-9]\{3\} (' "$t/model.md" | awk '$1 <= 0 || $1 > 1' | head -3)
effs=$(grep -c '[0-9]\.[0-9]\{3\} (' "$t/model.md")
[ -z "$bad" ] && [ "$effs" -ge 10 ] && ok "... efficiencies in (0, 1] ($effs rows)" || not_ok "... efficiencies in (0, 1]" "$bad"
# resnet50's all-reduce of every gradient at 8 GPUs: 2 (p-1)/p S/B + 2 (p-1) alpha
want=$(awk '$1 == "resnet50" { printf "%.1f", (2 * 7 / 8 * 4 * $2 / 25e9 + 14 * 9.6e-6) * 1e3 }' "$t/archs")
got=$(grep '^| resnet50 |' "$t/model.md" | head -1 | awk -F'|' '{ print $7 }' | awk '{ print $1 }')
[ "$got" = "$want" ] && ok "... ring all-reduce of resnet50 at 8 GPUs: $got ms" || not_ok "... ring all-reduce of resnet50 at 8 GPUs" "got $got, formula $want"
"$py" tools/scaling_model.py "$ONFH" --alpha-us 0 --gbps 1e12 >"$t/free.md" 2>&1
bad=$(grep -o '[0-9]\+\.[0-9]\{3\} (' "$t/free.md" | awk '$1 != 1' | head -3)
[ -z "$bad" ] && ok "... a free fabric: efficiency 1 everywhere" || not_ok "... a free fabric: efficiency 1 everywhere" "$bad"
printf 'mobilenet_v3_large\th200\tpytorch fp32\t128\tfast\tnowhere\n' >"$t/bad.tsv"
expect_exit "... a measured file with a bad rate" 1 "$t/badtsv.out" "$py" tools/scaling_model.py "$ONFH" --measured "$t/bad.tsv"
grep -q "bad.tsv:1: expected 6 tab-separated fields" "$t/badtsv.out" && ok "... named with file, line and what was expected" ||
    not_ok "... named with file, line and what was expected" "$(cat "$t/badtsv.out")"
# the document's tables are the tool's output
sed -n '/^<!-- tools\/scaling_model.py begins -->$/,/^<!-- tools\/scaling_model.py ends -->$/p' docs/scaling.md |
    sed '1d;$d' >"$t/doc.md"
diff -q "$t/doc.md" "$t/model.md" >/dev/null && ok "docs/scaling.md holds the tool's output" ||
    not_ok "docs/scaling.md holds the tool's output (python3 tools/scaling_model.py bin/onfh)" "$(diff "$t/doc.md" "$t/model.md" | head -10)"
done_testing
