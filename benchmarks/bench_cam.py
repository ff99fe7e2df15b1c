"""Grad-CAM on the built-in lesion classifier: seconds per map (the dashboard draws two
per check) and how often a map's peak falls on the lesion (the dark Otsu region) against
the chance of a random pixel, over the ISIC test images (every ``--step``-th).

    python benchmarks/bench_cam.py --step 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch
    from PIL import Image
    from skimage.filters import threshold_otsu

    from nicviz.datasets import resolve_dataset
    from nicviz.tasks.classify.cam import grad_cam
    from nicviz.tasks.classify.models import get_classifier

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    clf = get_classifier("isic-effnet-lite0")
    files = resolve_dataset("isic-test").files[:: args.step]
    grad_cam(clf, np.asarray(Image.open(files[0]).convert("RGB")))  # warm-up
    hits, chance, seconds = 0, 0.0, []
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        t = time.perf_counter()
        m = grad_cam(clf, rgb)
        seconds.append(time.perf_counter() - t)
        g = rgb.astype(float).mean(axis=2)
        mask = g < threshold_otsu(g)
        y, x = np.unravel_index(np.argmax(m), m.shape)
        hits += bool(mask[y, x])
        chance += float(mask.mean())
    print(f"images {len(files)}  peak on the lesion {hits} (chance {chance:.1f})  "
          f"seconds per map: median {np.median(seconds):.3f}, max {max(seconds):.3f} ({args.threads} thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
