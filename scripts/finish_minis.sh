#!/usr/bin/env bash
# After training (scripts/train_gpu.sh on a GPU machine, or scripts/train_minis.sh here):
# export float16 models with CDF tables into nicviz/models, sweep Kodak with real
# bitstreams, and write the measured figures into each model's JSON.
#   scripts/finish_minis.sh CKPT_DIR [META_JSON]
# CKPT_DIR holds <arch>-mini-q<k>.pt checkpoints (full or `nicviz train slim`).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?checkpoint folder}
META=${2:-"{}"}
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=1
codecs=()
for ck in "$DIR"/cheng2020-*-mini-q?.pt; do
  $PY -m nicviz.training.nic export "$ck" "nicviz/models/$(basename "$ck")" --meta "$META"
  name=$(basename "$ck"); name=${name%-q?.pt}
  [[ " ${codecs[*]:-} " == *" $name "* ]] || codecs+=("$name")
done
OUT=results/kodak/cheng2020-mini.csv
$PY -m nicviz sweep kodak --codec "$(IFS=,; echo "${codecs[*]}")" --quality 1,2,3,4,5,6 -j 2 --out "$OUT" --quiet
$PY -m nicviz train record-kodak "$OUT"
