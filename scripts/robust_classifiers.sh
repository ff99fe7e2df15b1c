#!/usr/bin/env bash
# Compression-trained ISIC classifiers, end to end (resumable: rerun after an interruption).
#   1. the bank of compressed training images (python -m nicviz.training.bank)
#   2. isic-effnet-lite0-robust: fine-tuned from the standard model, every image beside its
#      reconstruction by a random codec at a random quality (JPEG, WebP, AVIF, JPEG 2000,
#      both minis), cross-entropy on the originals + 12 x Jensen-Shannon consistency
#      (AugMix-style) + 4 x KL from the standard model's prediction on the original
#      (--distill 4); then mixed with the standard model in weight space (WiSE-FT,
#      python -m nicviz.training.interpolate, alpha chosen on the held-out split)
#   3. isic-effnet-lite0-robust-no-avif: without AVIF (a codec it never saw), with JPEG XL
#      and HEIF in its place, the same consistency loss plus 1 x KL from the standard model's
#      prediction on the original (--distill 1, learning without forgetting)
#   4. sweeps of all three classifiers on isic/test and isic_fullres/test, every codec
# Usage: scripts/robust_classifiers.sh [steps...]   (default: bank robust no-avif test fullres)
# Environment: THREADS (2), EPOCHS (4), LR (2e-4), CKPT_DIR (/tmp/nicviz-ckpt),
#   ROBUST_MIX ("--consistency 12 --distill 4"), NO_AVIF_MIX ("--consistency 12 --distill 1"): how each model
#   meets compressed images (--consistency W: every image beside a compressed twin, W x
#   Jensen-Shannon; --compress-prob P: an image swapped for a reconstruction with probability P;
#   --distill D: D x KL(standard model on the original || model) on every view),
#   CLASSIFIERS (the three; one retrained model: drop its rows from the results files, sweep it alone)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-4}
LR=${LR:-2e-4}
ROBUST_MIX=${ROBUST_MIX:---consistency 12 --distill 4}
NO_AVIF_MIX=${NO_AVIF_MIX:---consistency 12 --distill 1}
CKPT_DIR=${CKPT_DIR:-/tmp/nicviz-ckpt}
mkdir -p "$CKPT_DIR"
STEPS=${*:-bank robust no-avif test fullres}
CLASSIFIERS=${CLASSIFIERS:-isic-effnet-lite0,isic-effnet-lite0-robust,isic-effnet-lite0-robust-no-avif}
QUALITIES="jpeg=2,5,10,20,40,60,75,90;webp=0,5,10,30,60,80,90;avif=5,15,25,40,50,60,75;jpeg2000=24,28,32,36,40,44"
NEURAL=cheng2020-anchor-mini,cheng2020-attn-mini

train() {  # name, how it meets compressed images, extra args: fine-tune into $CKPT_DIR, then mix
  local name=$1 mix=$2; shift 2
  # shellcheck disable=SC2086  # $mix is a flag and its value
  "$PY" -m nicviz.training.classifier --init-from nicviz/models/isic-effnet-lite0.pt \
    $mix --epochs "$EPOCHS" --lr "$LR" --threads "$THREADS" \
    --ckpt "$CKPT_DIR/$name.ckpt" --out "$CKPT_DIR/$name-finetuned.pt" "$@"
  "$PY" -m nicviz.training.interpolate --zero nicviz/models/isic-effnet-lite0.pt \
    --finetuned "$CKPT_DIR/$name-finetuned.pt" --out "nicviz/models/$name.pt" --threads "$THREADS"
}

for step in $STEPS; do
  echo "== $step $(date -u +%FT%TZ)"
  case $step in
    bank) "$PY" -m nicviz.training.bank --threads "$THREADS" ;;
    robust) train isic-effnet-lite0-robust "$ROBUST_MIX" --codecs jpeg,webp,avif,jpeg2000,$NEURAL ;;
    no-avif) train isic-effnet-lite0-robust-no-avif "$NO_AVIF_MIX" --codecs jpeg,webp,jpeg2000,jpegxl,heif,$NEURAL ;;
    test|fullres)
      data=isic-test; out=results/isic/test.csv; nq="1,2,3,4,5"
      if [ "$step" = fullres ]; then data=isic-fullres-test; out=results/isic/fullres_test.csv; nq="1,3,5"; fi
      "$PY" -m nicviz sweep "$data" --task classify --classifier "$CLASSIFIERS" \
        --codec jpeg,webp,avif,jpeg2000 --quality "$QUALITIES" --metrics psnr,ssim,ms_ssim \
        -j "$THREADS" --out "$out" --quiet
      "$PY" -m nicviz sweep "$data" --task classify --classifier "$CLASSIFIERS" \
        --codec "$NEURAL" --quality "$nq" --metrics psnr,ssim,ms_ssim -j "$THREADS" --out "$out" --quiet ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
echo "== done $(date -u +%FT%TZ)"
