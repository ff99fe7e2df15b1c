#!/usr/bin/env bash
# The CPU route to cheng2020-*-mini models (one thread per job): q3 from scratch, then
# q1, q2, q4 fine-tuned from q3 in parallel, then scripts/finish_minis.sh (float16
# export, Kodak with real bitstreams, figures into each model's JSON).
#   scripts/train_minis.sh ARCH CKPT_DIR Q3_STEPS FINETUNE_STEPS
# The models shipped now come from the GPU route, scripts/train_gpu.sh (8x the pixels per
# step, 4,000-5,300 steps); the earlier CPU-trained anchor (3,900 + 600 steps of 8 crops
# of 128x128) was 0.3-0.5 dB worse on Kodak at the same rate.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH=${1:-cheng2020-anchor}
DIR=${2:-ckpt}
Q3_STEPS=${3:-3900}
FT_STEPS=${4:-600}
PY=${PYTHON:-.venv/bin/python}
NAME="$ARCH-mini"
export OMP_NUM_THREADS=1
mkdir -p "$DIR"
$PY -m nicviz.training.nic run --arch "$ARCH" --N 64 --quality 3 --steps "$Q3_STEPS" --lr 3e-4 --warmup 200 \
  --ckpt "$DIR/$ARCH-q3.pt" --log-every 100
for q in 1 2 4; do
  $PY -m nicviz.training.nic run --arch "$ARCH" --N 64 --quality $q --steps "$FT_STEPS" --lr 1e-4 --warmup 50 \
    --init-from "$DIR/$ARCH-q3.pt" --ckpt "$DIR/$ARCH-q$q.pt" --log-every 100 &
done
wait
for q in 1 2 3 4; do cp "$DIR/$ARCH-q$q.pt" "$DIR/$NAME-q$q.pt"; done
scripts/finish_minis.sh "$DIR"
