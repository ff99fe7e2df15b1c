"""Pilot of the overfitted codec: Kodak images x qualities x fitting iterations, one row
each (CPU seconds of the encode, bpp of the real bitstream, PSNR), to choose the effort
by quality gained per CPU-minute. Resumable: rows already in the output are skipped.

    python scripts/pilot_overfitted.py --images kodim01 --out results/overfitted/pilot-kodim01.csv

``--crop N`` fits the N x N centre crop of each image instead (a sixth of the CPU at 256 px).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicviz.codecs.overfitted.codec import OverfittedCodec
    from nicviz.datasets import resolve_dataset
    from nicviz.evaluate import evaluate
    from nicviz.images import load_image
    from nicviz.results import meta_path, run_metadata, write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default="kodim01,kodim23")
    ap.add_argument("--qualities", default="2,4,6")
    ap.add_argument("--iterations", default="250,750,2000")
    ap.add_argument("--crop", type=int, default=0, help="side of a centre crop (0: the whole image)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=["image", "quality", "iterations"])
    have = {(r.image, float(r.quality), int(r.iterations)) for r in done.itertuples()}
    ds = resolve_dataset("kodak")
    rows = done.to_dict("records")
    for image in args.images.split(","):
        rgb = load_image(Path(ds.root) / f"{image}.png")
        if args.crop:
            h, w, s = rgb.shape[0], rgb.shape[1], args.crop
            rgb = rgb[h // 2 - s // 2: h // 2 - s // 2 + s, w // 2 - s // 2: w // 2 - s // 2 + s].copy()
        for q in map(float, args.qualities.split(",")):
            for it in map(int, args.iterations.split(",")):
                if (image, q, it) in have:
                    continue
                codec = OverfittedCodec("overfitted", iterations=it)
                cpu = time.process_time()
                ev = evaluate(rgb, codec, q, ("psnr", "ms_ssim"))
                cpu = time.process_time() - cpu
                rows.append({"dataset": "kodak", "image": image, "crop": args.crop or None, "quality": q, "iterations": it,
                             "cpu_s": round(cpu, 1), "encode_s": round(ev.row["encode_s"], 1),
                             "decode_s": round(ev.row["decode_s"], 2), "bytes": ev.row["bytes"],
                             "bpp": ev.row["bpp"], "psnr": ev.row["psnr"], "ms_ssim": ev.row["ms_ssim"],
                             "bit_exact": ev.row["bit_exact"], "codec_settings": ev.row["codec_settings"]})
                pd.DataFrame(rows).to_csv(out, index=False)
                write_json_atomic(run_metadata(dataset="kodak", seed=0, rows=len(rows), task="overfitted-pilot"),
                                  meta_path(out))  # not a sweep: the dashboard does not offer it as a curve
                print(rows[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
