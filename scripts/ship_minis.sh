#!/usr/bin/env bash
# Ship trained variable-rate minis (issue 25) and regenerate every shipped result they appear in:
# export each checkpoint as nicviz/models/cheng2020-<arch>-mini.pt (+ .json), remove that
# architecture's fixed-rate files (git history keeps them), drop the codec's old rows from every
# shipped results file (scripts/drop_codec_rows.py) and sweep them again with the new model,
# record the Kodak figures in the model's JSON and re-run the wavefront check.
#   scripts/ship_minis.sh anchor=results/training/V-cheng2020-anchor-cpu.pt [attn=CKPT]
# JOBS (default 2) worker processes; META a JSON object for the models' metadata (hardware,
# procedure); DRY_RUN=1 prints the commands without running them. About an hour of both cores
# per architecture on a 2-core CPU (the plates and full-resolution ISIC take most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
JOBS=${JOBS:-2}
META=${META:-"{}"}
run() { echo "+ $*"; if [[ -z "${DRY_RUN:-}" ]]; then "$@"; fi; }
[[ $# -ge 1 ]] || { echo "ship_minis: give anchor=CKPT and/or attn=CKPT" >&2; exit 2; }
names=()
for spec in "$@"; do
  arch=${spec%%=*}; ck=${spec#*=}
  case $arch in anchor|attn) ;; *) echo "ship_minis: $spec: give anchor=CKPT or attn=CKPT" >&2; exit 2;; esac
  [[ -f $ck ]] || { echo "ship_minis: $ck: no such checkpoint" >&2; exit 2; }
  names+=("cheng2020-$arch-mini")
done
i=0
for spec in "$@"; do
  name=${names[$i]}; i=$((i + 1))
  run "$PY" -m nicviz.training.nic export "${spec#*=}" "nicviz/models/$name.pt" --meta "$META"
  for f in nicviz/models/"$name"-q?.pt nicviz/models/"$name"-q?.json; do
    if [[ -e $f ]]; then run git rm -q "$f"; fi
  done
done
codecs=$(IFS=,; echo "${names[*]}")
ALL=0:8       # every integer quality of the variable-rate models
FEW=0,2,4,8   # the long runs: 0.14 to 0.72 bpp on Kodak
C3=isic-effnet-lite0,isic-effnet-lite0-robust,isic-effnet-lite0-robust-no-avif
redo() {  # results file, then the command that sweeps the codecs into it
  local out=$1; shift
  run "$PY" scripts/drop_codec_rows.py "$out" --codec "$codecs" --why "variable-rate $codecs replace the fixed-rate models"
  run "$PY" -m nicviz "$@" --codec "$codecs" -j "$JOBS" --out "$out" --quiet
}
redo results/kodak/cheng2020-mini.csv sweep kodak --quality $ALL
run "$PY" -m nicviz train record-kodak results/kodak/cheng2020-mini.csv
redo results/kodak/consistency.csv sweep kodak --task classify --classifier imagenet-effnet-lite0 --quality $ALL \
  --metrics psnr,ssim
redo results/isic/test.csv sweep isic-test --task classify --classifier $C3 --quality $ALL --metrics psnr,ssim,ms_ssim
redo results/isic/fullres_test.csv sweep isic-fullres-test --task classify --classifier $C3 --quality $FEW \
  --metrics psnr,ssim,ms_ssim
redo results/plates/ocr.csv plates plates --quality $FEW
run "$PY" scripts/check_wavefront.py --out results/checks/wavefront_kodak.csv
