# archs.sh: `onfh archs` lists the ten architectures with torchvision's parameter counts and
# the forward GMAC at 224 of ../shared/reference/architectures.md (counted from the graph's
# convolutions and linear layers).
. "$(dirname "$0")/../tap.sh"
set -u
t=$ONFH_TEST_TMP/archs
mkdir -p "$t"
expect_exit "onfh archs" 0 "$t/archs.out" "$ONFH" archs
rows=$(grep -c -E '^[a-z0-9_]+ +[0-9]+ +[0-9]+ +[0-9.]+ ' "$t/archs.out")
[ "$rows" = 10 ] && ok "ten architectures" || not_ok "ten architectures" "$(cat "$t/archs.out")"
# id, parameters for 2 classes, GMAC at 224 (the reference table)
while read -r id params gmac; do
    line=$(grep "^$id " "$t/archs.out")
    set -- $line
    [ "${2:-}" = "$params" ] && [ "${4:-}" = "$gmac" ] && ok "$id: $params parameters, $gmac GMAC" ||
        not_ok "$id: $params parameters, $gmac GMAC" "$line"
done <<'TABLE'
mobilenet_v3_large 4204594 0.217
mobilenet_v3_small 1519906 0.057
mobilenet_v2 2226434 0.301
resnet18 11177538 1.814
resnet50 23512130 4.089
densenet121 6955906 2.834
densenet201 18096770 4.291
efficientnet_b0 4010110 0.386
shufflenet_v2_x1_0 1255654 0.145
vgg16_bn 134277186 15.470
TABLE
grep -q "^densenet121 .*zero-copy concat" "$t/archs.out" && ok "densenet concatenates without copies on ref" ||
    not_ok "densenet concatenates without copies on ref" "$(grep densenet121 "$t/archs.out")"
grep -q "^efficientnet_b0 .*stochastic depth" "$t/archs.out" && ok "efficientnet has stochastic depth" ||
    not_ok "efficientnet has stochastic depth" "$(grep efficientnet "$t/archs.out")"
done_testing
