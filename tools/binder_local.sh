#!/usr/bin/env bash
# Reproduce Binder's environment locally and start JupyterLab on localhost, as the launch buttons do on Binder:
# a fresh virtual environment from binder/runtime.txt's Python and binder/requirements.txt, then binder/postBuild
# (run from the repository root, like repo2docker).
#
#   tools/binder_local.sh [--env DIR] [--port PORT] [--no-start]
#
# --env DIR    where the environment goes (default .binder-env; reused when it is complete)
# --port PORT  JupyterLab's port (default 8888); it serves the repository root, so a page opens at
#              http://localhost:PORT/lab/tree/book/01-rl/1-agent-environment.md
# --no-start   build the environment only (the browser tests start JupyterLab themselves)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_dir="$root/.binder-env"; port=8888; start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --env) env_dir=$(realpath -m "$2"); shift 2 ;;
    --port) port=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    *) echo "usage: $0 [--env DIR] [--port PORT] [--no-start]" >&2; exit 2 ;;
  esac
done
want=$(sed -n 's/^python-\([0-9]*\.[0-9]*\).*/\1/p' "$root/binder/runtime.txt")
python=$(command -v "python$want" || command -v python3)
have=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
[ "$have" = "$want" ] || echo "note: binder/runtime.txt asks for Python $want; using $have ($python)" >&2
stamp="$env_dir/.binder-complete"
if [ ! -f "$stamp" ] || [ "$root/binder/requirements.txt" -nt "$stamp" ] || [ "$root/requirements.txt" -nt "$stamp" ] \
   || [ "$root/binder/postBuild" -nt "$stamp" ]; then
  rm -rf "$env_dir"
  "$python" -m venv "$env_dir"
  # an unreachable extra index (the PyTorch CPU index, offline) is a warning for pip; do not retry it for long
  PIP_RETRIES=${PIP_RETRIES:-1} PIP_TIMEOUT=${PIP_TIMEOUT:-20} \
    "$env_dir/bin/python" -m pip install --quiet --upgrade pip
  PIP_RETRIES=${PIP_RETRIES:-1} PIP_TIMEOUT=${PIP_TIMEOUT:-20} \
    "$env_dir/bin/python" -m pip install --quiet -r "$root/binder/requirements.txt"
  (cd "$root" && PATH="$env_dir/bin:$PATH" VIRTUAL_ENV="$env_dir" bash binder/postBuild)
  touch "$stamp"
fi
echo "Binder environment: $env_dir"
if [ "$start" = 1 ]; then
  cd "$root"
  root_flag=(); [ "$(id -u)" = 0 ] && root_flag=(--allow-root)  # CI and containers run as root
  exec "$env_dir/bin/jupyter" lab --no-browser --ip=127.0.0.1 --port="$port" --ServerApp.root_dir="$root" \
    "${root_flag[@]}"
fi
