"""Decode every kept bitstream of a results file again and check it against its row.

For each row with a ``recon_sha256`` (codecs whose encoder computes its own
reconstruction: the overfitted codecs): the file ``<bitstreams>/<image>/<codec>-q<q>.bin``
exists, its size is the row's ``bytes`` (what ``bpp`` counts), and decoding it gives the
encoder's reconstruction bit for bit (same SHA-256) and the row's PSNR.

    python scripts/check_bitstreams.py results/kodak/overfitted.csv --bitstreams results/kodak/overfitted-bitstreams
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from nicviz.codecs import get_codec
    from nicviz.datasets import resolve_dataset
    from nicviz.errors import NicvizError
    from nicviz.images import load_image
    from nicviz.metrics import psnr
    from nicviz.results import read_results
    from nicviz.sweep import bitstream_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--bitstreams", required=True)
    ap.add_argument("--data", help="data root, to recompute PSNR against the originals")
    args = ap.parse_args(argv)
    df = read_results(args.results)
    if "recon_sha256" not in df.columns:
        print(f"{args.results}: no row records an encoder reconstruction", file=sys.stderr)
        return 2
    df = df[df["recon_sha256"].notna()]
    bad, checked = [], 0
    originals: dict[tuple[str, str], np.ndarray] = {}
    for r in df.itertuples():
        path = bitstream_path(args.bitstreams, r.image, r.codec, r.quality)
        if not path.is_file():
            bad.append(f"{r.image} {r.codec} q{r.quality:g}: no bitstream at {path}")
            continue
        data = path.read_bytes()
        checked += 1
        try:
            recon = get_codec(r.codec).decode(data)
        except NicvizError as exc:
            bad.append(f"{r.image} {r.codec} q{r.quality:g}: cannot be decoded ({exc})")
            continue
        sha = hashlib.sha256(np.ascontiguousarray(recon).tobytes()).hexdigest()
        problems = []
        if len(data) != int(r.bytes):
            problems.append(f"{len(data)} bytes, the row says {int(r.bytes)}")
        if sha != r.recon_sha256:
            problems.append("decoded image differs from the encoder's reconstruction")
        try:
            key = (r.dataset, r.image)
            if key not in originals:
                originals[key] = load_image(Path(resolve_dataset(r.dataset, args.data).root) / r.image)
            p = psnr(originals[key], recon)
            if not math.isclose(p, r.psnr, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"PSNR {p:.6f}, the row says {r.psnr:.6f}")
        except Exception as exc:  # noqa: BLE001 - the originals are optional
            if args.data:
                problems.append(f"original not checked ({type(exc).__name__})")
        if problems:
            bad.append(f"{r.image} {r.codec} q{r.quality:g}: " + "; ".join(problems))
    for line in bad:
        print(line)
    print(f"{checked} bitstreams decoded; {checked - len(bad)} equal their encoder's reconstruction bit for bit, "
          f"with the size the row counts; {len(bad)} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
