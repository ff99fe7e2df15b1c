"""Neural coding time: CompressAI's position-by-position loop against nicviz's wavefront
schedule, side by side in one run, for the shipped anchor and attn minis.

For each image (Kodak kodim01..kodimNN, or the built-in photographs without data):
encode and decode with both schedules, check that the wavefront decode equals the
encoder's reconstruction bit for bit, and compare sizes. Prints medians and ratios.
Requirement: wavefront decode >= 3x faster than CompressAI's; goal >= 8x.

    python benchmarks/bench_nic_decode.py [--images 3] [--quality 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_dataset  # noqa: E402

from nicviz.codecs import get_codec  # noqa: E402
from nicviz.images import load_image  # noqa: E402


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--quality", type=float, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    images = list(bench_dataset().files)[: args.images]
    print(f"{len(images)} images, quality {args.quality:g}, {args.threads} threads")
    for name in ("cheng2020-anchor-mini", "cheng2020-attn-mini"):
        codec = get_codec(name)
        if not codec.available:
            print(f"{name}: unavailable ({codec.availability()[1]})")
            continue
        codec.model(args.quality)  # load outside the timings
        t = {k: [] for k in ("enc_ca", "dec_ca", "enc_wf", "dec_wf")}
        sizes = []
        for path in images:
            rgb = load_image(path)
            codec.schedule = "compressai"
            ref, dt = timed(codec.encode, rgb, args.quality)
            t["enc_ca"].append(dt)
            _, dt = timed(codec.decode, ref)
            t["dec_ca"].append(dt)
            codec.schedule = "wavefront"
            data, dt = timed(codec.encode, rgb, args.quality)
            t["enc_wf"].append(dt)
            _, recon = codec.encode_reconstruct(rgb, args.quality)  # untimed: the encoder's reconstruction
            out, dt = timed(codec.decode, data)
            t["dec_wf"].append(dt)
            if not np.array_equal(out, recon):
                print(f"  {path.name}: wavefront decode differs from the encoder's reconstruction!")
                return 1
            sizes.append(len(data) / len(ref) - 1)
        m = {k: statistics.median(v) for k, v in t.items()}
        print(f"{name}: encode CompressAI {m['enc_ca']:.2f} s, wavefront {m['enc_wf']:.2f} s "
              f"({m['enc_ca'] / m['enc_wf']:.1f}x) | decode CompressAI {m['dec_ca']:.2f} s, wavefront "
              f"{m['dec_wf']:.2f} s ({m['dec_ca'] / m['dec_wf']:.1f}x) | size vs CompressAI "
              f"{100 * min(sizes):+.2f}..{100 * max(sizes):+.2f} % | decode bit-exact on all images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
