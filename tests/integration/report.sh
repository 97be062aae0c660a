# report.sh: `onfh report` on a small evaluated run: one self-contained page with every section
# and figure (inline SVG that parses as XML, nothing fetched from elsewhere), the same bytes on
# a second run, sections of stages that have not run saying so, and the page rendered by
# headless Chromium to a screenshot that is not blank (and by tools/report_screenshot.sh, which
# makes the README's picture).
. "$(dirname "$0")/../tap.sh"
set -u
fx=$ONFH_ROOT/tests/fixtures/configs
t=$ONFH_TEST_TMP/report
mkdir -p "$t"
export ASAN_OPTIONS=detect_leaks=0 # Open MPI's own leaks (toolchain.md)
run=$t/run
cfg=$fx/synth_small.yaml
page=$run/report/index.html

expect_exit "synth through report: exit 4 (planted faults skipped)" 4 "$t/run.out" "$ONFH" run "$cfg" --run "$run" --set evaluate.bootstrap_resamples=199
[ -s "$page" ] && ok "report/index.html is written" || not_ok "report/index.html is written"
grep -q '"report"' "$run/manifest.json" && ok "... and listed in the manifest" || not_ok "... and listed in the manifest"
absent=""
for id in summary cohort training models roc pairs leakage treatment progression provenance items; do
    grep -q "<h2 id=$id>" "$page" || absent="$absent $id"
done
[ -z "$absent" ] && ok "every section is there" || not_ok "every section is there" "missing:$absent"
n_svg=$(grep -c '<svg ' "$page")
[ "$n_svg" -ge 5 ] && ok "training curves, forest plot, ROC, calibration and treatment figures ($n_svg)" || not_ok "at least 5 figures" "$n_svg"
grep -q -E 'src=|href="http|<script' "$page" && not_ok "nothing is fetched from elsewhere, no script" "$(grep -o -E 'src=[^ ]*|href="http[^"]*|<script' "$page" | head -3)" || ok "nothing is fetched from elsewhere, no script"
grep -q "mobilenet_v3_small.*baseline_logistic\|baseline_logistic" "$page" && grep -q "199 bootstrap resamples of patients" "$page" && ok "the comparison names its models and its resamples" || not_ok "the comparison names its models and its resamples"
if /usr/bin/python3 -c 'import xml.etree.ElementTree' 2>/dev/null; then
    /usr/bin/python3 - "$page" >"$t/svg.out" 2>&1 <<'PY' && ok "every figure is well-formed SVG" || not_ok "every figure is well-formed SVG" "$(tail -3 "$t/svg.out")"
import re, sys, xml.etree.ElementTree as ET
svgs = re.findall(r"<svg .*?</svg>", open(sys.argv[1]).read(), re.S)
for s in svgs:
    root = ET.fromstring(s)
    assert len(root) > 3, "an empty figure"
print(len(svgs))
PY
fi
cp "$page" "$t/first.html"
expect_exit "report again (--force)" 0 "$t/again.out" "$ONFH" report "$cfg" --run "$run" --force --set evaluate.bootstrap_resamples=199
cmp -s "$t/first.html" "$page" && ok "the same bytes on a second run" || not_ok "the same bytes on a second run" "$(diff "$t/first.html" "$page" | head -5)"

# a run that stopped after split: its later sections say which stage has not run
part=$t/part
mkdir -p "$part"
cp "$run/manifest.json" "$run/ingest_report.json" "$run/splits.json" "$run/config.yaml" "$part/"
expect_exit "report of a run without training or evaluation" 0 "$t/part.out" "$ONFH" report "$cfg" --run "$part" --force
grep -q "the <code>train</code> stage has not run" "$part/report/index.html" && grep -q "the <code>evaluate</code> stage has not run" "$part/report/index.html" && grep -q "the <code>vessels</code> stage has not run" "$part/report/index.html" && grep -q "the <code>progression</code> stage has not run" "$part/report/index.html" && ok "... says which stages have not run" || not_ok "... says which stages have not run" "$(grep -o 'class=missing>[^<]*' "$part/report/index.html" | head -3)"
empty=$t/empty
mkdir -p "$empty"
expect_exit "a run directory where no stage has run is an error" 2 "$t/empty.out" "$ONFH" report "$cfg" --run "$empty"
grep -q "no stage has run" "$t/empty.out" && ok "... saying so" || not_ok "... saying so" "$(tail -2 "$t/empty.out")"

# headless Chromium: the page renders, not blank, with every figure in the DOM
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    ok "# SKIP chromium is not installed (tools/deps.sh test installs it)"
else
    timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1200,2400 --screenshot="$t/page.png" "file://$page" >"$t/chromium.out" 2>&1
    timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --dump-dom "file://$page" \
        >"$t/dom.html" 2>>"$t/chromium.out"
    [ "$(grep -c '<svg ' "$t/dom.html")" = "$n_svg" ] && ok "Chromium's DOM holds every figure ($n_svg)" || not_ok "Chromium's DOM holds every figure" "$(grep -c '<svg ' "$t/dom.html") of $n_svg; $(tail -3 "$t/chromium.out")"
    /usr/bin/python3 - "$t/page.png" >"$t/png.out" 2>&1 <<'PY' && ok "the screenshot is not blank ($(cat "$t/png.out"))" || not_ok "the screenshot is not blank" "$(tail -3 "$t/png.out") $(tail -3 "$t/chromium.out")"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
colors = im.getcolors(1 << 20) or []
dark = sum(n for n, (r, g, b) in colors if r + g + b < 300)
assert len(colors) > 50 and dark > 2000, f"{len(colors)} colours, {dark} dark pixels"
print(f"{len(colors)} colours, {dark} dark pixels")
PY
    # the README's docs/report.png is made by this tool: it must keep working and stay small
    expect_exit "tools/report_screenshot.sh RUN_DIR OUT" 0 "$t/shot.out" "$ONFH_ROOT/tools/report_screenshot.sh" "$run" "$t/shot.png"
    kib=$(($(stat -c %s "$t/shot.png" 2>/dev/null || echo 0) / 1024))
    [ "$kib" -gt 20 ] && [ "$kib" -lt 300 ] && grep -q "^$t/shot.png: 1200x1200, $kib KiB$" "$t/shot.out" &&
        ok "... a 1200x1200 screenshot of $kib KiB (between 20 and 300)" || not_ok "... a small screenshot" "$kib KiB" "$(cat "$t/shot.out")"
fi
done_testing
