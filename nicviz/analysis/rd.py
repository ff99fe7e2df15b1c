"""Rate-distortion: per-quality mean curves, CompressAI-format JSON, BD-rate."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nicviz.errors import NicvizError

__all__ = ["mean_curve", "compressai_json", "load_compressai_json", "BDResult", "bd_rate"]


def mean_curve(df: pd.DataFrame, codec: str, metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Per-quality means over images for one codec, sorted by quality (``metrics``: the
    columns averaged besides the timings; default ``bpp`` and every registered metric)."""
    if metrics is None:
        from nicviz.metrics import METRICS

        metrics = ("bpp", *METRICS)
    sub = df[df["codec"] == codec]
    if sub.empty:
        raise NicvizError(f"no rows for codec {codec!r}; codecs in file: {', '.join(sorted(df['codec'].unique()))}")
    cols = [c for c in (*metrics, "encode_s", "decode_s") if c in sub.columns]
    g = sub.groupby("quality")[cols].mean(numeric_only=True)
    g["images"] = sub.groupby("quality")["image"].nunique() if "image" in sub.columns else np.nan
    return g.reset_index().sort_values("quality")


def compressai_json(df: pd.DataFrame, codec: str, description: str | None = None) -> dict:
    """A CompressAI results JSON (``name``, ``description``, ``results`` lists per quality).

    Values are means over images per quality, as ``compressai.utils.eval_model`` and
    ``compressai.utils.bench`` report them.
    """
    curve = mean_curve(df, codec)
    rate_mode = df.loc[df["codec"] == codec, "rate_mode"].iloc[0] if "rate_mode" in df.columns else "bitstream"
    desc = description or f"nicviz {codec} ({'entropy estimation' if rate_mode == 'estimated' else 'real bitstream'})"

    def col(name: str) -> list[float]:
        return [float(v) for v in curve[name]] if name in curve.columns else []

    return {
        "name": codec,
        "description": desc,
        "results": {
            # fractional qualities (variable-rate models) are kept: int() would turn 1.5 into 1
            "quality": [int(q) if float(q).is_integer() else float(q) for q in curve["quality"]],
            "psnr-rgb": col("psnr"),
            "ms-ssim-rgb": col("ms_ssim"),
            "bpp": col("bpp"),
            "encoding_time": col("encode_s"),
            "decoding_time": col("decode_s"),
        },
    }


def load_compressai_json(path) -> dict:
    """Read a CompressAI results JSON and check its ``results`` has ``bpp``."""
    import json

    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if "results" not in data or "bpp" not in data["results"]:
        raise NicvizError(f"{path}: not a CompressAI results JSON (no results.bpp)")
    return data


@dataclass
class BDResult:
    """BD-rate in percent (negative: the test codec needs fewer bits) and warnings raised."""

    bd_rate: float
    anchor_points: int
    test_points: int
    warnings: list[str]
    #: share of the narrower curve's quality range that both curves cover (0..1): the
    #: BD-rate averages over that common range only
    overlap: float = 1.0


def _distortion(curve: pd.DataFrame, metric: str) -> np.ndarray:
    """The curve's quality values of ``metric``: a registered metric, or ``<name>_db`` (its
    dB form, -10 log10(1 - value))."""
    from nicviz.metrics import curve_metrics

    if metric not in curve_metrics():
        raise ValueError(f"no rate-distortion curve over {metric!r}; choose from {', '.join(curve_metrics())}")
    db = metric.endswith("_db") and metric not in curve.columns
    v = curve[metric.removesuffix("_db") if db else metric].to_numpy(dtype=float)
    return -10 * np.log10(1 - v) if db else v


def bd_rate(df: pd.DataFrame, anchor: str, test: str, metric: str = "psnr", method: str = "pchip") -> BDResult:
    """Bjontegaard delta rate of ``test`` against ``anchor`` with the ``bjontegaard`` package.

    Mean curves over images per quality; curves may have different point counts
    (``require_matching_points=False``). The package's overlap warning is returned in
    ``warnings`` so callers can show it.
    """
    import bjontegaard as bd

    from nicviz.metrics import curve_metrics

    if metric not in curve_metrics():
        raise NicvizError(f"unknown metric {metric!r}; choose from {', '.join(curve_metrics())}")
    column = metric if metric in df.columns else metric.removesuffix("_db")
    a = mean_curve(df, anchor).dropna(subset=["bpp", column])
    t = mean_curve(df, test).dropna(subset=["bpp", column])
    if len(a) < 4 or len(t) < 4:
        raise NicvizError(f"BD-rate needs at least 4 points per curve ({anchor}: {len(a)}, {test}: {len(t)})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = bd.bd_rate(a["bpp"].to_numpy(), _distortion(a, metric), t["bpp"].to_numpy(),
                           _distortion(t, metric), method=method, require_matching_points=False)
    da, dt = _distortion(a, metric), _distortion(t, metric)
    common = min(da.max(), dt.max()) - max(da.min(), dt.min())
    narrower = min(da.max() - da.min(), dt.max() - dt.min())
    overlap = float(np.clip(common / narrower, 0.0, 1.0)) if narrower > 0 else 0.0
    return BDResult(float(value), len(a), len(t), [str(w.message) for w in caught], overlap)
