"""Every image of a dataset through every shipped mini quality with the wavefront schedule:
the decoder reproduces the encoder's reconstruction bit for bit, and the size is within
0.5 % of CompressAI's own ``compress`` for the same weights. One CSV line per check.

    python scripts/check_wavefront.py [--dataset kodak] [--out out/wavefront_check.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from nicviz.codecs import get_codec
from nicviz.codecs.neural import MINI_MODELS
from nicviz.datasets import resolve_dataset
from nicviz.images import load_image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="kodak")
    ap.add_argument("--out", default="out/wavefront_check.csv")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    images = resolve_dataset(args.dataset).files
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    failures, worst, n = 0, 0.0, 0
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "codec", "quality", "bytes_wavefront", "bytes_compressai", "size_diff_pct", "exact"])
        for name in MINI_MODELS:
            codec = get_codec(name)
            for q in codec.available_qualities():
                for path in images:
                    rgb = load_image(path)
                    codec.schedule = "compressai"
                    ref = codec.encode(rgb, q)
                    codec.schedule = "wavefront"
                    data, recon = codec.encode_reconstruct(rgb, q)
                    exact = bool(np.array_equal(codec.decode(data), recon))
                    diff = 100 * (len(data) / len(ref) - 1)
                    w.writerow([path.name, name, q, len(data), len(ref), f"{diff:.4f}", exact])
                    f.flush()
                    failures += (not exact) + (abs(diff) > 0.5)
                    worst, n = max(worst, abs(diff)), n + 1
                print(f"{name} q{q}: done ({n} checks so far, worst size difference {worst:.3f} %)", flush=True)
    print(f"{n} checks, {failures} failures, worst size difference {worst:.3f} % -> {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
