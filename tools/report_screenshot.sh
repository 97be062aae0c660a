#!/bin/bash
# report_screenshot.sh RUN_DIR [OUT.png] [HEIGHT]: the top of a run's report (RUN_DIR/report/index.html)
# as headless Chromium renders it, 1200 pixels wide and HEIGHT (default 1500) high, reduced to a
# 64-colour palette so that it stays small enough to commit (README's docs/report.png, the
# default OUT, is made from `make run`'s report: tools/report_screenshot.sh runs/default).
# Needs chromium (tools/deps.sh test) and Pillow under /usr/bin/python3.
set -eu
run=${1:?usage: tools/report_screenshot.sh RUN_DIR [OUT.png] [HEIGHT]}
out=${2:-docs/report.png}
height=${3:-1500}
page=$(cd "$run" && pwd)/report/index.html
[ -f "$page" ] || { echo "report_screenshot.sh: no $page (run onfh report first)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "report_screenshot.sh: chromium is not installed (tools/deps.sh test)" >&2; exit 1; }
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,"$height" --screenshot="$tmp/page.png" "file://$page" >"$tmp/chromium.out" 2>&1 ||
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
