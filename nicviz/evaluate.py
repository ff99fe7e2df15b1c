"""One image, one codec, one quality: compress, decompress, measure."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nicviz.codecs import RATE_ESTIMATED, Codec, get_codec
from nicviz.metrics import METRICS, compute_metrics

__all__ = ["Evaluation", "evaluate"]


@dataclass
class Evaluation:
    """The result of :func:`evaluate`: the row plus the reconstruction and bitstream."""

    row: dict
    reconstruction: np.ndarray
    bitstream: bytes | None = field(repr=False, default=None)


def evaluate(rgb: np.ndarray, codec: Codec | str, quality: float,
             metrics: Sequence[str] = METRICS, parallel_metrics: bool = False,
             progress: Callable[[int, int, float, float], bool | None] | None = None,
             decode: bool = True) -> Evaluation:
    """Compress ``rgb`` with ``codec`` at ``quality`` and measure the reconstruction.

    The row holds ``codec, quality, width, height, bytes, bpp, encode_s, decode_s,
    metrics_s, rate_mode`` and one column per metric (``nan`` when not asked for); a codec
    with :meth:`~nicviz.codecs.Codec.settings` adds ``codec_settings`` (JSON), and one
    whose encoder computes its own reconstruction adds ``recon_sha256`` (of the encoder's
    reconstruction) and ``bit_exact`` (the decoded bitstream equals it). ``progress`` is
    passed to encoders that report it (the overfitted codec: ``(iteration, total, bpp, psnr)``).

    ``decode=False`` (an interactive page) takes the encoder's own reconstruction where the
    codec offers one its decoder reproduces bit for bit (the wavefront minis; tested), and
    skips the second pass: ``decode_s`` is then ``nan``. Sweeps always decode.
    """
    codec = get_codec(codec) if isinstance(codec, str) else codec
    codec.require_available()
    q = codec.check_quality(quality)
    h, w = rgb.shape[:2]
    data: bytes | None
    nbytes: float | int
    if codec.rate_mode == RATE_ESTIMATED:
        t0 = time.perf_counter()
        recon, bits = codec.estimate(rgb, q)
        enc = time.perf_counter() - t0
        dec = 0.0
        data, nbytes = None, bits / 8.0
    else:
        t0 = time.perf_counter()
        own_recon = None
        if decode or progress is not None:
            data = codec.encode_reporting(rgb, q, progress)
        else:
            data, own_recon = codec.encode_with_reconstruction(rgb, q)
        t1 = time.perf_counter()
        if own_recon is not None:
            recon, dec = own_recon, float("nan")
        else:
            recon = codec.decode(data)
            dec = time.perf_counter() - t1
        enc = t1 - t0
        nbytes = len(data)
    if recon.shape != rgb.shape:
        raise RuntimeError(f"{codec.name} returned shape {recon.shape} for input {rgb.shape}")
    t2 = time.perf_counter()
    values = compute_metrics(rgb, recon, list(metrics), parallel=parallel_metrics)
    mt = time.perf_counter() - t2
    row = {
        "codec": codec.name,
        "quality": q,
        "width": w,
        "height": h,
        "bytes": nbytes,
        "bpp": 8.0 * nbytes / (h * w),
        "encode_s": enc,
        "decode_s": dec,
        "metrics_s": mt,
        "rate_mode": codec.rate_mode,
    }
    for name in METRICS:
        row[name] = values.get(name, float("nan"))
    settings = codec.settings()
    if settings:
        row["codec_settings"] = json.dumps(settings, sort_keys=True)
    own = codec.encoder_reconstruction() if data is not None else None
    if own is not None:
        row["recon_sha256"] = hashlib.sha256(np.ascontiguousarray(own).tobytes()).hexdigest()
        row["bit_exact"] = bool(np.array_equal(own, recon))
    return Evaluation(row=row, reconstruction=recon, bitstream=data)
