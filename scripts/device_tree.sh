#!/usr/bin/env bash
# The checkout a lent accelerator receives. The device tool sends the working tree (tracked
# files) and refuses one over 64 MiB; with every shipped model this one is about 120 MB.
#   scripts/device_tree.sh slim   # before the device runs: the shipped weights leave the
#                                 # working tree (git sparse-checkout: they stay tracked and
#                                 # committed), except KEEP, the ones a GPU run starts from
#   scripts/device_tree.sh full   # after them: every file is back
#   scripts/device_tree.sh size   # bytes of the files that would travel
# KEEP (default: the q3 minis of both architectures and the CPU runs' variable-rate weights,
# which scripts/train_gpu.sh starts from) names the weights to keep, relative to the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=${KEEP:-nicviz/models/cheng2020-anchor-mini-q3.pt nicviz/models/cheng2020-attn-mini-q3.pt $(git ls-files 'results/training/V-*-cpu.pt' | tr '\n' ' ')}
LIMIT=$((64 * 1024 * 1024))

size() {  # tracked files present in the working tree, and the untracked ones git does not ignore
  # (a file sparse-checkout left out is tracked but absent: stat skips it)
  { { git ls-files -z; git ls-files -z --others --exclude-standard; } |
    xargs -0 -r stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'
}

case "${1:-}" in
  slim)
    patterns=('/*' '!/nicviz/models/*.pt' '!/results/training/*.pt')
    for k in $KEEP; do
      [ -f "$k" ] || git cat-file -e "HEAD:$k" 2>/dev/null || { echo "error: $k is not in this checkout" >&2; exit 2; }
      patterns+=("/$k")
    done
    git sparse-checkout set --no-cone "${patterns[@]}"
    bytes=$(size)
    echo "working tree to send: $((bytes / 1024 / 1024)) MiB (limit 64 MiB); restore with: $0 full"
    [ "$bytes" -le "$LIMIT" ] || { echo "error: still over 64 MiB" >&2; exit 1; }
    ;;
  full)
    git sparse-checkout disable
    echo "every tracked file is back ($(( $(size) / 1024 / 1024 )) MiB)"
    ;;
  size)
    size
    ;;
  *)
    echo "usage: $0 slim|full|size" >&2
    exit 2
    ;;
esac
