"""Measure a variable-rate training checkpoint on Kodak as the shipped codec would run it.

Exports the checkpoint (float16, CDF tables) to a temporary models folder, sweeps Kodak
with real bitstreams at the given qualities, prints the curve and BD-rates (PSNR, pchip)
against the shipped classical sweeps and the shipped fixed-rate minis, and the gap to
CompressAI's published model of the same architecture at 0.12, 0.25 and 0.5 bpp.

    python scripts/eval_variable_rate.py out/vr/anchor-vr.pt --arch cheng2020-anchor \
        [--images 24] [--qualities 0:8] [--out out/vr/kodak.csv]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from nicviz.analysis import bd_rate, load_compressai_json
from nicviz.codecs import register_codec
from nicviz.codecs.neural import mini_codec
from nicviz.datasets import Dataset, resolve_dataset
from nicviz.paths import REFERENCE_DIR, checkout_root
from nicviz.specs import parse_numbers
from nicviz.sweep import run_sweep
from nicviz.training.nic import export_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt")
    ap.add_argument("--arch", default="cheng2020-anchor")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--qualities", help="default: every integer quality the checkpoint was trained for")
    ap.add_argument("--out", default="out/vr/kodak.csv")
    ap.add_argument("-j", "--jobs", type=int, default=1, choices=[1],
                    help="1 only: the checkpoint's codec is registered in this process, not in workers")
    args = ap.parse_args(argv)
    name = f"vr-{args.arch}"
    folder = Path(tempfile.mkdtemp(prefix="nicviz-vr-"))
    export_model(args.ckpt, folder / f"{name}.pt")
    register_codec(name, lambda: mini_codec(name, args.arch, folder))
    ds = resolve_dataset("kodak")
    ds = Dataset(ds.name, ds.root, ds.files[: args.images])
    if args.qualities is None:
        import json

        lo, hi = json.loads((folder / f"{name}.json").read_text())["qualities"]
        args.qualities = f"{lo}:{hi}"
    qs = parse_numbers(args.qualities)
    out = Path(args.out)
    out.unlink(missing_ok=True)
    Path(str(out) + ".meta.json").unlink(missing_ok=True)
    run_sweep(ds, [name], {name: qs}, out, metrics=("psnr", "ms_ssim"), jobs=args.jobs, progress=False)
    df = pd.read_csv(out)
    curve = df.groupby("quality")[["bpp", "psnr", "ms_ssim"]].mean()
    print(curve.round(4).to_string())
    images = {Path(f).name for f in ds.files}
    root = checkout_root() or Path(".")
    shipped = pd.concat([pd.read_csv(root / "results/kodak/classical.csv"),
                         pd.read_csv(root / "results/kodak/cheng2020-mini.csv")])
    shipped = shipped[shipped["image"].isin(images)]
    both = pd.concat([shipped, df])
    for anchor in ("jpeg", "webp", "avif", "jpeg2000", "heif", "jpegxl", "cheng2020-anchor-mini", "cheng2020-attn-mini"):
        try:
            res = bd_rate(both, anchor, name)
        except ValueError as exc:
            print(f"BD-rate against {anchor}: {exc}")
            continue
        lo, hi = both[both.codec == anchor].groupby("quality").psnr.mean().agg(["min", "max"])
        mine = curve["psnr"]
        overlap = max(0.0, min(hi, mine.max()) - max(lo, mine.min())) / max(mine.max() - mine.min(), 1e-9)
        if not np.isfinite(res.bd_rate):
            print(f"BD-rate against {anchor}: n/a (no common PSNR range)")
            continue
        print(f"BD-rate against {anchor}: {res.bd_rate:+.1f} % (overlap {100 * overlap:.0f} % of the mini's PSNR range)")
    ref = load_compressai_json(REFERENCE_DIR / f"compressai-{args.arch}_mse_cuda.json")["results"]
    for bpp in (0.12, 0.25, 0.5):
        if curve["bpp"].min() <= bpp <= curve["bpp"].max():
            ours = float(np.interp(bpp, curve["bpp"], curve["psnr"]))
            theirs = float(np.interp(bpp, ref["bpp"], ref["psnr-rgb"]))
            print(f"at {bpp} bpp: {ours:.2f} dB, CompressAI {args.arch} {theirs:.2f} dB (gap {ours - theirs:+.2f} dB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
