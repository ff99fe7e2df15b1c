"""Aggregation of result rows: CompressAI-format curves and BD-rate."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["mean_curve", "compressai_json", "bd_rate", "BDResult", "load_compressai_json", "ocr_baseline",
           "ocr_summary", "classification_summary", "per_class_recall", "confusion", "mcnemar_exact",
           "bootstrap_drop_ci", "bpp_where_drop_exceeds"]


def mean_curve(df: pd.DataFrame, codec: str, metrics: tuple[str, ...] = ("bpp", "psnr", "ms_ssim", "ssim", "vif")) -> pd.DataFrame:
    """Per-quality means over images for one codec, sorted by quality."""
    sub = df[df["codec"] == codec]
    if sub.empty:
        raise ValueError(f"no rows for codec {codec!r}; codecs in file: {', '.join(sorted(df['codec'].unique()))}")
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
            "quality": [int(q) for q in curve["quality"]],
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
        raise ValueError(f"{path}: not a CompressAI results JSON (no results.bpp)")
    return data


@dataclass
class BDResult:
    """BD-rate in percent (negative: the test codec needs fewer bits) and warnings raised."""

    bd_rate: float
    anchor_points: int
    test_points: int
    warnings: list[str]


_DIST = {"psnr": "psnr", "ms_ssim": "ms_ssim", "ms_ssim_db": "ms_ssim", "ssim": "ssim", "vif": "vif"}


def _distortion(curve: pd.DataFrame, metric: str) -> np.ndarray:
    v = curve[_DIST[metric]].to_numpy(dtype=float)
    if metric == "ms_ssim_db":
        v = -10 * np.log10(1 - v)
    return v


def bd_rate(df: pd.DataFrame, anchor: str, test: str, metric: str = "psnr", method: str = "pchip") -> BDResult:
    """Bjontegaard delta rate of ``test`` against ``anchor`` with the ``bjontegaard`` package.

    Mean curves over images per quality; curves may have different point counts
    (``require_matching_points=False``). The package's overlap warning is returned in
    ``warnings`` so callers can show it.
    """
    import bjontegaard as bd

    if metric not in _DIST:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(_DIST)}")
    a = mean_curve(df, anchor).dropna(subset=["bpp", _DIST[metric]])
    t = mean_curve(df, test).dropna(subset=["bpp", _DIST[metric]])
    if len(a) < 4 or len(t) < 4:
        raise ValueError(f"BD-rate needs at least 4 points per curve ({anchor}: {len(a)}, {test}: {len(t)})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = bd.bd_rate(a["bpp"].to_numpy(), _distortion(a, metric), t["bpp"].to_numpy(),
                           _distortion(t, metric), method=method, require_matching_points=False)
    return BDResult(float(value), len(a), len(t), [str(w.message) for w in caught])


def _as_bool(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true" if pd.notna(v) else np.nan)


def ocr_baseline(df: pd.DataFrame) -> dict:
    """Reading of the uncompressed plates (one per image, from the ``*_ref`` columns)."""
    ref = df.groupby("image").first()
    return {
        "plates": int(len(ref)),
        "exact": float(_as_bool(ref["exact_ref"]).astype(float).mean()),
        "exact_o0": float(_as_bool(ref["exact_o0_ref"]).astype(float).mean()),
        "cer": float(ref["cer_ref"].astype(float).mean()),
        "confidence": float(ref["confidence_ref"].astype(float).mean()),
    }


def ocr_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per codec and quality: bpp, accuracy, CER and the shares of plates improved,
    worsened and unchanged against the uncompressed reading, by exact match and by CER."""
    d = df.copy()
    for c in ("exact", "exact_ref", "exact_o0", "exact_o0_ref"):
        d[c] = _as_bool(d[c]).astype(float)
    d["cer"] = d["cer"].astype(float)
    d["cer_ref"] = d["cer_ref"].astype(float)
    d["improved_exact"] = (d["exact"] > d["exact_ref"]).astype(float)
    d["worsened_exact"] = (d["exact"] < d["exact_ref"]).astype(float)
    d["improved_cer"] = (d["cer"] < d["cer_ref"] - 1e-12).astype(float)
    d["worsened_cer"] = (d["cer"] > d["cer_ref"] + 1e-12).astype(float)
    g = d.groupby(["codec", "quality"])
    out = g.agg(plates=("image", "nunique"), bpp=("bpp", "mean"), psnr=("psnr", "mean"),
                exact=("exact", "mean"), exact_o0=("exact_o0", "mean"), cer=("cer", "mean"),
                improved_exact=("improved_exact", "mean"), worsened_exact=("worsened_exact", "mean"),
                improved_cer=("improved_cer", "mean"), worsened_cer=("worsened_cer", "mean"))
    out["unchanged_exact"] = 1 - out["improved_exact"] - out["worsened_exact"]
    out["unchanged_cer"] = 1 - out["improved_cer"] - out["worsened_cer"]
    return out.reset_index()


def mcnemar_exact(correct_ref: np.ndarray, correct: np.ndarray) -> float:
    """McNemar's exact test (two-sided binomial test on the discordant pairs).

    McNemar, Psychometrika 12(2), 1947; exact form as in Edwards (1948).
    Returns 1.0 when no image changed outcome.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_ref, dtype=bool)
    b = np.asarray(correct, dtype=bool)
    lost, gained = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if lost + gained == 0:
        return 1.0
    return float(binomtest(min(lost, gained), lost + gained, 0.5).pvalue)


def bootstrap_drop_ci(correct_ref: np.ndarray, correct: np.ndarray, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy drop (reference minus compressed, in points),
    resampling images with their paired outcomes."""
    a = np.asarray(correct_ref, dtype=float)
    b = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    drops = 100 * (a[idx].mean(axis=1) - b[idx].mean(axis=1))
    lo, hi = np.percentile(drops, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _bools(s: pd.Series) -> np.ndarray:
    return _as_bool(s).astype(float).to_numpy() == 1.0


def classification_summary(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per codec and quality: accuracy (compressed and uncompressed), accuracy drop in points
    with its 95 % bootstrap CI, McNemar's exact p, macro-F1, Cohen's kappa, prediction flip
    rate, top-5 overlap and mean confidence change. Unlabelled rows give consistency only."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    rows = []
    for (codec, quality), g in df.groupby(["codec", "quality"]):
        rec = {"codec": codec, "quality": quality, "images": int(g["image"].nunique()), "bpp": g["bpp"].mean(),
               "flip_rate": float(_as_bool(g["flip"]).astype(float).mean()),
               "top5_overlap": float(g["top5_overlap"].astype(float).mean()),
               "confidence_change": float(g["confidence_change"].astype(float).mean())}
        if "psnr" in g:
            rec["psnr"] = g["psnr"].mean()
        labelled = g[g["label"].notna()] if "label" in g else g.iloc[0:0]
        if len(labelled):
            c, c_ref = _bools(labelled["correct"]), _bools(labelled["correct_ref"])
            y = labelled["label"].astype(str)
            rec.update({
                "accuracy": 100 * c.mean(), "accuracy_ref": 100 * c_ref.mean(),
                "drop": 100 * (c_ref.mean() - c.mean()),
                "macro_f1": f1_score(y, labelled["pred"].astype(str), average="macro", labels=sorted(y.unique()),
                                     zero_division=0),
                "kappa": cohen_kappa_score(y, labelled["pred"].astype(str)),
                "mcnemar_p": mcnemar_exact(c_ref, c),
            })
            rec["drop_lo"], rec["drop_hi"] = bootstrap_drop_ci(c_ref, c, n_boot, seed)
        rows.append(rec)
    return pd.DataFrame(rows).sort_values(["codec", "quality"]).reset_index(drop=True)


def per_class_recall(df: pd.DataFrame, pred_col: str = "pred") -> pd.Series:
    """Recall per true class (share of each class's images predicted as that class)."""
    d = df[df["label"].notna()]
    return (d[pred_col].astype(str) == d["label"].astype(str)).groupby(d["label"].astype(str)).mean()


def confusion(df: pd.DataFrame, pred_col: str = "pred") -> pd.DataFrame:
    """Confusion matrix: rows are true classes, columns predicted classes (counts)."""
    d = df[df["label"].notna()]
    return pd.crosstab(d["label"].astype(str), d[pred_col].astype(str), rownames=["true"], colnames=["predicted"])


def bpp_where_drop_exceeds(summary: pd.DataFrame, points: float = 5.0) -> dict[str, float | None]:
    """Per codec, the highest measured bpp at which the accuracy drop exceeds ``points``
    (``None`` when it never does): below that rate the codec costs more than ``points``."""
    out: dict[str, float | None] = {}
    for codec, g in summary.groupby("codec"):
        bad = g[g["drop"] > points] if "drop" in g else g.iloc[0:0]
        out[codec] = float(bad["bpp"].max()) if len(bad) else None
    return out
