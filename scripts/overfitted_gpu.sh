#!/usr/bin/env bash
# The overfitted codec's sweep on a lent GPU (issue 22): JOBS encodes side by side on one
# GPU for at most SECONDS, continuing the committed partial sweep (the units it has are
# skipped), then the results file, its journal, metadata and streams packed into
# $OUT/overfitted-NAME.tgz. Every stream is checked on the CPU machine afterwards: the
# decoder is exact, so a GPU-fitted stream decodes there bit for bit or the check says so.
#
# On the CPU machine, before the device run:
#   scripts/device_tree.sh slim                       # the checkout must be under 64 MiB
#   echo /.gpudata/ >> .git/info/exclude; mkdir -p .gpudata && cp -r ../shared/data/kodak .gpudata/
#   echo /.whl/ >> .git/info/exclude   # wheels for what the GPU image (Python 3.12) lacks:
#   pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_34_x86_64 -d .whl compressai==1.2.8
#   pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .whl pytorch-msssim==1.0.0
#   (that image has numpy 2 where nicviz pins 1.26: with numpy 2.3.5 over this environment the
#   codec ran and its stream decoded bit for bit under 1.26; the import check below stops a
#   run at once, exit 4, if the image differs)
# The device run: carry [".gpudata", ".whl"], command
#   OUT=$OUT NICVIZ_DATA=.gpudata scripts/overfitted_gpu.sh 540 8
# Back on the CPU machine:
#   tar -xzf FILES_AT/overfitted-kodak.tgz -C results/overfitted
#   scripts/check_bitstreams.py results/overfitted/kodak.csv --bitstreams results/overfitted/kodak-bitstreams
#   scripts/commit_partial_sweep.py results/overfitted/kodak.csv --dataset kodak --codec overfitted \
#     --quality 1,2.5,4,5.5,7
#   scripts/device_tree.sh full
# Settings: DATASET (kodak), NAME (the results file's name, DATASET), CODEC (overfitted),
# QUALITY (1,2.5,4,5.5,7), METRICS (the sweep's default), DEVICE (cuda), RESULTS
# (results/overfitted), PYTHON (python3). tests/test_overfitted.py runs it on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT_S=${1:-540}
JOBS=${2:-8}
OUT=${OUT:-gpu_out}
DATASET=${DATASET:-kodak}
NAME=${NAME:-$DATASET}
CODEC=${CODEC:-overfitted}
QUALITY=${QUALITY:-1,2.5,4,5.5,7}
DEVICE=${DEVICE:-cuda}
RESULTS=${RESULTS:-results/overfitted}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$RESULTS"
if [ -d .whl ] && ! $PY -c "import compressai, pytorch_msssim" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
$PY -c "import torch, compressai, nicviz.codecs; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 4
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
before=$(wc -l < "$RESULTS/$NAME.csv" 2>/dev/null || echo 0)
metrics=()
[ -n "${METRICS:-}" ] && metrics=(--metrics "$METRICS")
# SIGINT at the limit: the sweep stops like a Ctrl-C, and every finished unit is in its journal
timeout --signal=INT --kill-after=30 "$LIMIT_S" $PY -m nicviz sweep "$DATASET" --codec "$CODEC" \
  --quality "$QUALITY" "${metrics[@]}" --device "$DEVICE" -j "$JOBS" --quiet \
  --out "$RESULTS/$NAME.csv" --bitstreams "$RESULTS/$NAME-bitstreams"
rc=$?
case $rc in 0) echo "sweep complete" ;; 124|130) echo "sweep stopped at the time limit (${LIMIT_S} s)" ;;
  *) echo "sweep failed (exit $rc)" ;; esac
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
files=()
for f in "$NAME.csv" "$NAME.csv.journal.jsonl" "$NAME.csv.meta.json" "$NAME-bitstreams"; do
  [ -e "$RESULTS/$f" ] && files+=("$f")
done
[ ${#files[@]} -gt 0 ] || { echo "nothing to pack"; exit 5; }
tar -czf "$OUT/overfitted-$NAME.tgz" -C "$RESULTS" "${files[@]}"
echo "packed ${files[*]} into $OUT/overfitted-$NAME.tgz (results file: $before lines before the run)"
case $rc in 0|124|130) exit 0 ;; *) exit "$rc" ;; esac
