"""`nicviz eval-image`: one image through one codec."""

from __future__ import annotations

import argparse
import json
import math

from nicviz.cli.common import UsageError, _fmt
from nicviz.paths import atomic_write_bytes, check_writable
from nicviz.specs import parse_metrics

__all__ = ['cmd_eval_image']


def cmd_eval_image(args: argparse.Namespace) -> int:
    from nicviz.evaluate import evaluate
    from nicviz.images import load_image, to_png_bytes

    for path, what in ((args.save_recon, "reconstruction"), (args.save_bitstream, "bitstream")):
        if path:
            check_writable(path, what)
    rgb = load_image(args.image)
    ev = evaluate(rgb, args.codec, args.quality, parse_metrics(args.metrics))
    row = {"image": str(args.image), **ev.row}
    try:
        if args.save_recon:
            atomic_write_bytes(args.save_recon, to_png_bytes(ev.reconstruction))
        if args.save_bitstream and ev.bitstream is not None:
            atomic_write_bytes(args.save_bitstream, ev.bitstream)
    except OSError as exc:
        raise UsageError(f"cannot write the output: {exc.strerror or exc} ({exc.filename})") from None
    if args.json:
        keys = ("codec", "quality", "width", "height", "bytes", "bpp", "psnr", "ssim", "ms_ssim", "vif",
                "mse", "mae", "encode_s", "decode_s", "rate_mode")
        # strict JSON: NaN (not measured) and infinity (identical images: PSNR) become null
        obj = {k: (None if isinstance(row[k], float) and not math.isfinite(row[k]) else row[k]) for k in keys}
        print(json.dumps(obj, allow_nan=False))
    else:
        for k, v in row.items():
            print(f"{k:>10}: {_fmt(v)}")
    return 0
