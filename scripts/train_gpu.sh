#!/usr/bin/env bash
# GPU procedure for the shipped cheng2020-*-mini models (one GPU, about 9 minutes):
#   phase A: q3 of both architectures from scratch, side by side, for A_SECONDS;
#   phase B: q1..q5 of both architectures fine-tuned from their q3, ten processes side by
#            side, for B_SECONDS;
# (phase C, with CONTINUE_FROM=dir: more steps for chosen models, see below;)
# then float16 checkpoints without optimizer state (`nicviz train slim`), packed in pairs
# into $OUT (16 MiB per file). Export, Kodak evaluation and record-kodak run on the CPU
# machine afterwards (scripts/finish_minis.sh). Each run is sized by --time-budget: the
# first steps are timed and --steps is set so that warm-up + cosine decay end in time;
# the step count is stored in every checkpoint and metadata file.
#   OUT=out DATA=.traindata/train_natural scripts/train_gpu.sh [A_SECONDS] [B_SECONDS]
#   VARIABLE_RATE=1 ... scripts/train_gpu.sh SECONDS   (phase V: the variable-rate minis, see below;
#   then `nicviz train export` and scripts/eval_variable_rate.py on the CPU machine)
#   DRY_RUN=STEPS: every run trains STEPS steps instead of a time budget (DEVICE=cpu BATCH=2
#   PATCH=128 for a CPU check of the same code path; tests/test_train.py runs phase V so)
# Where the machine lacks CompressAI, wheels in .whl/ are installed to /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
A_SECONDS=${1:-220}
B_SECONDS=${2:-230}
OUT=${OUT:-gpu_out}
DATA=${DATA:-.traindata/train_natural}
CK=${CK:-/tmp/nicviz_ckpt}
PY=${PYTHON:-python3}
QUALITIES=${QUALITIES:-1 2 3 4 5}
DEVICE=${DEVICE:-auto}
BATCH=${BATCH:-16}
PATCH=${PATCH:-256}
COMMON=(--N 64 --batch "$BATCH" --patch "$PATCH" --threads 1 --device "$DEVICE" --data "$DATA" --log-every 50 --ckpt-every 60)
# the length of a run: a time budget, or with DRY_RUN a few steps
budget() { if [ -n "${DRY_RUN:-}" ]; then echo "--steps $DRY_RUN"; else echo "--time-budget $1"; fi; }
LOGS=$CK/logs
mkdir -p "$OUT" "$CK" "$LOGS"
if [ -d .whl ] && ! $PY -c "import compressai" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
$PY -c "import torch, compressai, nicviz.training.nic; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" || exit 4
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true

# wait for a phase's background runs (in $pids), show the GPU once, then the last log lines
wait_phase() {
  sleep "${WAIT_S:-45}"; nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
  for p in "${pids[@]}"; do wait "$p" || echo "phase $1 process $p failed"; done
  tail -n 2 "$LOGS"/"$1"-*.log
}

if [ -n "${VARIABLE_RATE:-}" ]; then
  # phase V: one variable-rate model per architecture (gain units, qualities Q_MIN..Q_MIN+LEVELS-1,
  # default 0..8), continuing the CPU runs' committed weights (results/training/V-<arch>-cpu.pt)
  # where they exist, else from the shipped q3 models (gains at sqrt(lambda_q / lambda_3)),
  # side by side for A_SECONDS; on a CPU add PRECISION=bf16 (channels-last is always on).
  # RECIPE: more options of `nicviz train run`, the recipe scripts/compare_recipes.py chose
  # (for example RECIPE="--optimizer soap --ema 0.999")
  pids=()
  for arch in cheng2020-anchor cheng2020-attn; do
    init=results/training/V-$arch-cpu.pt
    [ -f "$init" ] || init=nicviz/models/$arch-mini-q3.pt
    # shellcheck disable=SC2086
    $PY -m nicviz.training.nic run --arch $arch --levels "${LEVELS:-9}" --q-min "${Q_MIN:-0}" --lr "${V_LR:-1e-4}" \
      --warmup 300 ${RECIPE:-} --precision "${PRECISION:-fp32}" --channels-last --init-from "$init" \
      $(budget "$A_SECONDS") "${COMMON[@]}" --ckpt "$CK/V-$arch.pt" > "$LOGS/V-$arch.log" 2>&1 &
    pids+=($!)
  done
  wait_phase V
  for arch in cheng2020-anchor cheng2020-attn; do
    ($PY -m nicviz.training.nic slim "$CK/V-$arch.pt" "$CK/$arch-mini.pt" >/dev/null &&
      tar -C "$CK" -I "gzip -1" -cf "$OUT/V-$arch.tgz" "$arch-mini.pt") &
  done
  wait
  cp "$CK"/V-*.log.csv "$LOGS"/ && tar -C "$LOGS" -czf "$OUT/logs_v.tgz" .
  ls -la "$OUT"
  exit 0
fi

if [ -n "${CONTINUE_FROM:-}" ]; then
  # phase C: more steps for chosen models, from float16 checkpoints <arch>-q<k>.pt(.gz) in
  # $CONTINUE_FROM (fresh Adam state), all side by side for A_SECONDS, packed one per file.
  # The shipped attn q3 ran with C_LR=2e-4; four other runs diverged at that rate (see
  # results/training/README.md), hence the lower default.
  gunzip -f "$CONTINUE_FROM"/*.gz 2>/dev/null
  pids=()
  for init in "$CONTINUE_FROM"/*-q?.pt; do
    b=$(basename "$init" .pt); arch=${b%-q*}; q=${b##*-q}
    $PY -m nicviz.training.nic run --arch "$arch" --quality "$q" --lr "${C_LR:-1e-4}" --warmup 100 $(budget "$A_SECONDS") \
      --init-from "$init" "${COMMON[@]}" --ckpt "$CK/C-$b.pt" > "$LOGS/C-$b.log" 2>&1 &
    pids+=($!)
  done
  wait_phase C
  for init in "$CONTINUE_FROM"/*-q?.pt; do
    b=$(basename "$init" .pt)
    ($PY -m nicviz.training.nic slim "$CK/C-$b.pt" "$CK/${b/-q/-mini-q}.pt" >/dev/null &&
      tar -C "$CK" -I "gzip -1" -cf "$OUT/C-$b.tgz" "${b/-q/-mini-q}.pt") &
  done
  wait
  cp "$CK"/*.log.csv "$LOGS"/ && tar -C "$LOGS" -czf "$OUT/logs_c.tgz" .
  ls -la "$OUT"
  exit 0
fi

pids=()
for arch in cheng2020-anchor cheng2020-attn; do
  $PY -m nicviz.training.nic run --arch $arch --quality 3 --lr 3e-4 --warmup 200 $(budget "$A_SECONDS") \
    "${COMMON[@]}" --ckpt "$CK/A-$arch-q3.pt" > "$LOGS/A-$arch.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "phase A process $p failed"; done
tail -n 3 "$LOGS"/A-*.log
for arch in cheng2020-anchor cheng2020-attn; do
  $PY -m nicviz.training.nic slim "$CK/A-$arch-q3.pt" "$CK/base-$arch-q3.pt" >/dev/null &
done
wait
tar -C "$CK" -cf "$OUT/base.tar" base-cheng2020-anchor-q3.pt base-cheng2020-attn-q3.pt
cp "$CK"/A-*.log.csv "$LOGS"/ && tar -C "$LOGS" -czf "$OUT/logs_a.tgz" .

nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
pids=()
for arch in cheng2020-anchor cheng2020-attn; do
  for q in $QUALITIES; do
    $PY -m nicviz.training.nic run --arch $arch --quality "$q" --lr 1e-4 --warmup 50 $(budget "$B_SECONDS") \
      --init-from "$CK/A-$arch-q3.pt" "${COMMON[@]}" --ckpt "$CK/$arch-q$q.pt" > "$LOGS/B-$arch-q$q.log" 2>&1 &
    pids+=($!)
  done
done
sleep 60; nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null || true
for p in "${pids[@]}"; do wait "$p" || echo "phase B process $p failed"; done
tail -n 2 "$LOGS"/B-*.log

for arch in cheng2020-anchor cheng2020-attn; do
  for q in $QUALITIES; do
    [ -f "$CK/$arch-q$q.pt" ] && $PY -m nicviz.training.nic slim "$CK/$arch-q$q.pt" "$CK/$arch-mini-q$q.pt" >/dev/null &
  done
  wait
  # pairs of qualities per file: every file under the 16 MiB that comes back
  set -- $QUALITIES
  while [ $# -gt 0 ]; do
    files=()
    for q in "$1" "${2:-}"; do [ -n "$q" ] && [ -f "$CK/$arch-mini-q$q.pt" ] && files+=("$arch-mini-q$q.pt"); done
    [ ${#files[@]} -gt 0 ] && tar -C "$CK" -I "gzip -1" -cf "$OUT/$arch-q$1.tgz" "${files[@]}"
    shift; [ $# -gt 0 ] && shift
  done
done
cp "$CK"/*.log.csv "$LOGS"/ && tar -C "$LOGS" -czf "$OUT/logs.tgz" . && rm -f "$OUT/logs_a.tgz"
ls "$OUT"/*-q*.tgz >/dev/null 2>&1 && rm -f "$OUT/base.tar"
ls -la "$OUT"
