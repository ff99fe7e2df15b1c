#!/usr/bin/env bash
# How the shipped cheng2020-*-mini models are made (CPU, one thread per job):
# q3 from scratch, then q1, q2, q4 fine-tuned from q3 in parallel, exported as float16,
# evaluated on Kodak with real bitstreams, figures written into each model's JSON.
#   scripts/train_minis.sh ARCH CKPT_DIR Q3_STEPS FINETUNE_STEPS
# The shipped cheng2020-anchor-mini ran q3 under a 5000-step cosine schedule, was cut at
# step 3709 for time and annealed to step 3900 (a 3900-step schedule's tail); q1, q2 and
# q4 were then fine-tuned for 600 steps each. Each model's JSON records its steps.
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
$PY -m nicviz.train run --arch "$ARCH" --N 64 --quality 3 --steps "$Q3_STEPS" --lr 3e-4 --warmup 200 \
  --ckpt "$DIR/$ARCH-q3.pt" --log-every 100
for q in 1 2 4; do
  $PY -m nicviz.train run --arch "$ARCH" --N 64 --quality $q --steps "$FT_STEPS" --lr 1e-4 --warmup 50 \
    --init-from "$DIR/$ARCH-q3.pt" --ckpt "$DIR/$ARCH-q$q.pt" --log-every 100 &
done
wait
for q in 1 2 3 4; do
  $PY -m nicviz.train export "$DIR/$ARCH-q$q.pt" "nicviz/models/$NAME-q$q.pt"
done
$PY -m nicviz sweep kodak --codec "$NAME" --quality 1,2,3,4 -j 2 --out "results/kodak/$NAME.csv" --quiet
$PY -m nicviz train record-kodak "results/kodak/$NAME.csv"
