"""BD-rate of the overfitted codec on Kodak against nicviz's own sweeps, on the images the
overfitted sweep has finished (every quality of them), PSNR, pchip, with the overlap of
the curves' PSNR ranges. Also a table of its rows.

    python scripts/bd_overfitted.py [--codec overfitted]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from nicviz.analysis import bd_rate
    from nicviz.results import read_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="overfitted")
    ap.add_argument("--results", default=str(ROOT / "results" / "overfitted" / "kodak.csv"))
    ap.add_argument("--images", help="only these images (comma-separated), e.g. to pair two runs")
    ap.add_argument("--versus", metavar="RESULTS", help="also the BD-rate against this file's rows of the codec "
                    "(an earlier recipe: git show REV:results/overfitted/kodak.csv > old.csv)")
    args = ap.parse_args(argv)
    from nicviz.sweep import _existing_rows

    found = _existing_rows(Path(args.results))  # the file and, while the sweep runs, its journal
    if not found:
        print(f"no finished rows at {args.results}", file=sys.stderr)
        return 2
    ours = pd.DataFrame(list(found.values()))
    ours = ours[ours["codec"] == args.codec]
    per_image = ours.groupby("image")["quality"].nunique()
    full = sorted(per_image[per_image == per_image.max()].index)
    if args.images:
        full = [i for i in full if i.removesuffix(".png") in {v.strip().removesuffix(".png") for v in args.images.split(",")}]
    ours = ours[ours["image"].isin(full)]
    print(f"{args.codec}: {len(ours)} rows, {len(full)} image(s) with all {per_image.max()} qualities: "
          f"{', '.join(full)}")
    print(ours.sort_values(["image", "quality"])[["image", "quality", "bpp", "psnr", "ms_ssim", "encode_s",
                                                   "decode_s", "bit_exact"]].round(3).to_string(index=False))
    others = pd.concat([read_results(ROOT / "results" / "kodak" / f) for f in ("classical.csv", "cheng2020-mini.csv")],
                       ignore_index=True)
    df = pd.concat([others[others["image"].isin(full)], ours], ignore_index=True)
    anchors = ["webp", "avif", "heif", "jpeg", "jpeg2000", "jpegxl", "cheng2020-anchor-mini", "cheng2020-attn-mini"]
    if args.versus:
        old = pd.DataFrame(list(_existing_rows(Path(args.versus)).values()))
        old = old[(old["codec"] == args.codec) & old["image"].isin(full)].assign(codec=f"{args.codec} ({Path(args.versus).name})")
        missing = sorted(set(full) - set(old["image"]))
        if missing:
            print(f"{args.versus} lacks {', '.join(missing)}: the comparison with it is on fewer images", file=sys.stderr)
        df = pd.concat([df, old], ignore_index=True)
        anchors.append(old["codec"].iloc[0] if len(old) else "")
    print(f"\nBD-rate of {args.codec} (PSNR, pchip) on these images; negative = fewer bits for the same PSNR")
    for anchor in anchors:
        if anchor not in set(df["codec"]):
            continue
        try:
            r = bd_rate(df, anchor, args.codec, metric="psnr")
            if r.bd_rate != r.bd_rate:  # NaN: the curves share no PSNR range
                print(f"  against {anchor:22s}    n/a   (no common PSNR range)")
                continue
            print(f"  against {anchor:22s} {r.bd_rate:+7.1f} %   overlap {100 * r.overlap:3.0f} % of the narrower "
                  f"PSNR range")
        except Exception as exc:  # noqa: BLE001 - a report line per anchor
            print(f"  against {anchor:22s} n/a ({str(exc).splitlines()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
