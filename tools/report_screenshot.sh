#!/bin/bash
# report_screenshot.sh RUN_DIR [OUT.png] [SECTIONS] [HEIGHT]: a picture of a run's report
# (RUN_DIR/report/index.html) as headless Chromium renders it: the page's title and the sections
# named in SECTIONS (comma-separated <h2> ids, default summary,models: the selected architecture
# and the comparison table with its forest plot; "all" keeps the whole page), 1200 pixels wide
# and HEIGHT high (default 1200), reduced to a 64-colour palette so that it stays small enough to
# commit. README's docs/report.png, the default OUT, is `make run`'s report:
#   tools/report_screenshot.sh runs/default
# Needs chromium (tools/deps.sh test) and Pillow under /usr/bin/python3.
set -eu
usage="usage: tools/report_screenshot.sh RUN_DIR [OUT.png] [SECTIONS] [HEIGHT]"
run=${1:?$usage}
out=${2:-docs/report.png}
sections=${3:-summary,models}
height=${4:-1200}
page=$run/report/index.html
[ -f "$page" ] || { echo "report_screenshot.sh: no $page (run onfh report first)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "report_screenshot.sh: chromium is not installed (tools/deps.sh test)" >&2; exit 1; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
# The page's sections each start on a line "<h2 id=NAME>" (stages/report/report.c); the copy
# keeps the lines before the first one, the chosen sections, and the closing tags. The report is
# self-contained (inline SVG), so the copy renders the same anywhere.
awk -v keep=",$sections," '
    /^<h2 id=/ { id = $0; sub(/^<h2 id=/, "", id); sub(/>.*/, "", id); in_sec = 1
                 show = keep == ",all," || index(keep, "," id ",") > 0 }
    /^<\/body>/ { in_sec = 0; show = 1 }
    !in_sec || show' "$page" >"$tmp/page.html"
for s in ${sections//,/ }; do
    [ "$s" = all ] || grep -q "^<h2 id=$s>" "$tmp/page.html" ||
        { echo "report_screenshot.sh: $page has no section '$s' (ids: $(grep -o '^<h2 id=[a-z]*' "$page" | cut -d= -f2 | tr '\n' ' '))" >&2; exit 1; }
done
timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,"$height" --screenshot="$tmp/page.png" "file://$tmp/page.html" >"$tmp/chromium.out" 2>&1 ||
    { tail -5 "$tmp/chromium.out" >&2; exit 1; }
/usr/bin/python3 - "$tmp/page.png" "$out" <<'PY'
import os, sys
from PIL import Image
src, dst = sys.argv[1:]
im = Image.open(src).convert("RGB")
# 64 colours: the report is text, lines and a few flat fills; the palette keeps it sharp
im.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(dst + ".tmp.png", optimize=True)
os.replace(dst + ".tmp.png", dst)
print(f"{dst}: {im.width}x{im.height}, {os.path.getsize(dst) // 1024} KiB")
PY
