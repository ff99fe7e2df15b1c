#!/usr/bin/env bash
# Set up (idempotent) and run nicviz:  scripts/dev.sh app | test | setup | bench
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${NICVIZ_VENV:-.venv}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.nicviz-setup"
  local want
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --upgrade --quiet "pip>=24"
    # torch first and pinned, so no other package can make pip resolve a different one
    "$VENV/bin/python" -m pip install --quiet torch==2.14.1 torchvision==0.29.1
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-app}
shift || true
case "$cmd" in
  setup) setup ;;
  # Streamlit runs every rerun on a new thread: glibc's per-thread malloc arenas would
  # fragment the server's memory (bench_app_memory.py: end 3.4 GB with 8 arenas, 2.3 GB with 2)
  app) setup; export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}; exec "$VENV/bin/streamlit" run app.py "$@" ;;
  # two worker processes (one torch thread each), a test file per worker at a time: module
  # fixtures are built once; NICVIZ_TEST_JOBS=0 runs everything in this process
  test) setup; export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
        exec "$VENV/bin/python" -m pytest -q -n "${NICVIZ_TEST_JOBS:-2}" --dist loadgroup --no-loadscope-reorder "$@" ;;
  bench) setup; for b in benchmarks/*.py; do "$VENV/bin/python" "$b"; done ;;
  *) echo "usage: scripts/dev.sh app|test|setup|bench" >&2; exit 2 ;;
esac
