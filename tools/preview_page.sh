#!/usr/bin/env bash
# Build ONE book page on its own (Jupyter Book's page mode) into a private folder and screenshot it, so authors
# can look at a page without building the whole book. Citations show as unresolved in page mode (the bibliography
# path is relative to the book root); the full `make book` resolves them.
#   tools/preview_page.sh book/03-imitation/1-compounding-error.md /tmp/preview [height]
# Writes <out>/page.png and <out>/page-<k>.png (1800-pixel slices, easier to view).
set -euo pipefail
page=$1; out=${2:-/tmp/preview-$(basename "$page" .md)}; height=${3:-12000}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
RL4LLM_QUIET=1 HF_HUB_OFFLINE=1 "$root/.venv/bin/jupyter-book" build "$page" --config "$root/_config.yml" \
  --path-output "$out" > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
grep -E "WARNING|ERROR" "$out/build.log" | grep -vE "bibtex|TCP without encryption" || true
name=$(basename "$page"); html=$(find "$out/_build/_page" -name "${name%.*}.html" | head -1)
WIDTH=${WIDTH:-1400} "$root/tools/screenshot.sh" "$html" "$out/page.png" "$height" > /dev/null
"$root/.venv/bin/python" - "$out" <<'PY'
import sys
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
im = Image.open(out / "page.png").convert("RGB")
w, h = im.size
# trim the blank bottom, then slice
px = im.load()
last = h - 1
while last > 0 and all(px[x, last] == (255, 255, 255) for x in range(0, w, 7)):
    last -= 1
for k, top in enumerate(range(0, last + 1, 1800)):
    im.crop((0, top, w, min(top + 1800, last + 1))).save(out / f"page-{k}.png")
print(f"{out}/page-*.png ({(last // 1800) + 1} slices)")
PY
