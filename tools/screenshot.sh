#!/usr/bin/env bash
# Screenshot a built page of the book with Debian's headless Chromium (for authors checking figures and layout).
#   tools/screenshot.sh _build/html/book/01-rl/4-lm-as-agent.html out.png [height]
set -euo pipefail
page=$(realpath "$1"); out=$2; height=${3:-6000}
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --hide-scrollbars \
  --timeout=15000 --window-size="${WIDTH:-1280}","$height" --screenshot="$out" "file://$page" 2>/dev/null
echo "wrote $out"
