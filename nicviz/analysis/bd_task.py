"""Bjontegaard deltas of a machine task: BD-accuracy and BD-rate on accuracy.

Bjontegaard (VCEG-M33, 2001) compares two rate-distortion curves by the mean gap between
them over their common range, with rate on a log scale. For a machine task the
"distortion" is the task score (accuracy, exact-match rate, character error rate):

* **BD-accuracy** (points): the mean score difference ``test - anchor`` over the common
  log-rate range, as BD-PSNR is for quality. Each curve is interpolated with a
  monotone piecewise cubic (PCHIP, as the ``bjontegaard`` package's ``pchip`` method).
* **BD-rate on accuracy** (percent): the mean rate difference at equal score over the
  common score range (negative: the test needs fewer bits for the same score). Scores
  measured on a few hundred images are not monotone in rate, so each curve is first
  replaced by its monotone envelope (the best score reached at this rate or below);
  without that, rate is not a function of score.

A delta is NaN where the curves share no range (BD-rate: no common score range), and its
interval is NaN too when more than 10 % of the resamples share none (an interval over the
others only would be biased). Both come with
percentile bootstrap intervals over images: the images are resampled
with replacement (the same images for both curves, which are paired when they share
images), the per-quality means recomputed and the deltas with them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nicviz.errors import NicvizError

__all__ = ["BDTask", "bd_classifiers", "bd_codecs", "bd_score", "bd_rate_score", "bd_task", "task_scores"]


@dataclass
class BDTask:
    """BD-accuracy (points, test minus anchor) and BD-rate at equal score (percent) with 95 % intervals."""

    bd_score: float
    bd_score_ci: tuple[float, float]
    bd_rate: float
    bd_rate_ci: tuple[float, float]
    #: common log10-rate range of the two curves, in bpp
    rate_range: tuple[float, float]
    images: int


def _prepare(rate: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rate, score = np.asarray(rate, float), np.asarray(score, float)
    ok = np.isfinite(rate) & np.isfinite(score) & (rate > 0)
    rate, score = rate[ok], score[ok]
    order = np.argsort(rate)
    lr, sc = np.log10(rate[order]), score[order]
    keep = np.concatenate([[True], np.diff(lr) > 0])  # equal rates: keep the first
    return lr[keep], sc[keep]


def bd_score(rate_a, score_a, rate_t, score_t) -> float:
    """Mean of ``score_t - score_a`` over the common log-rate range (PCHIP on each curve).

    NaN when the curves share no rate range or a curve has fewer than 2 points."""
    return _mean_gap(*_prepare(rate_a, score_a), *_prepare(rate_t, score_t))


def _mean_gap(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> float:
    """Mean of ``yt(x) - ya(x)`` over the common range of the increasing ``x`` (PCHIP of each)."""
    from scipy.interpolate import PchipInterpolator

    if len(xa) < 2 or len(xt) < 2:
        return float("nan")
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        return float("nan")
    fa, ft = PchipInterpolator(xa, ya), PchipInterpolator(xt, yt)
    return float((ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo))


def _envelope(lr: np.ndarray, sc: np.ndarray, higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rate as a function of score: the best score at this rate or below, strictly improving."""
    s = sc if higher_is_better else -sc
    best = np.maximum.accumulate(s)
    keep = np.concatenate([[True], np.diff(best) > 0])
    return best[keep], lr[keep]


def bd_rate_score(rate_a, score_a, rate_t, score_t, higher_is_better: bool = True) -> float:
    """Mean rate difference (percent) at equal score over the common score range of the
    two curves' monotone envelopes (PCHIP of log rate against score). NaN without overlap."""
    gap = _mean_gap(*_envelope(*_prepare(rate_a, score_a), higher_is_better),
                    *_envelope(*_prepare(rate_t, score_t), higher_is_better))
    return float((10 ** gap - 1) * 100)


def task_scores(df: pd.DataFrame, score: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images x qualities tables of bpp and of ``score`` (booleans become 0/100 points)."""
    d = df.copy()
    s = d[score]
    if s.dtype == object or s.dtype == bool:
        s = s.map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true").astype(float) * 100
    d["_score"] = s.astype(float)
    rate = d.pivot_table(index="image", columns="quality", values="bpp", aggfunc="mean")
    sc = d.pivot_table(index="image", columns="quality", values="_score", aggfunc="mean")
    return rate, sc


def bd_task(anchor: pd.DataFrame, test: pd.DataFrame, score: str = "correct", higher_is_better: bool = True,
            n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> BDTask:
    """BD-accuracy and BD-rate on ``score`` between two sets of result rows (one codec and
    one classifier or engine each), with bootstrap intervals over their common images.

    ``score`` is a boolean column (``correct``, ``exact``: points of 100) or a number
    (``cer``, with ``higher_is_better=False``).
    """
    ra, sa = task_scores(anchor, score)
    rt, st = task_scores(test, score)
    images = ra.index.intersection(rt.index)
    if len(images) < 2:
        raise NicvizError("BD-accuracy needs the two curves measured on the same images (fewer than 2 shared)")
    ra, sa, rt, st = (t.loc[images] for t in (ra, sa, rt, st))
    if min(ra.shape[1], rt.shape[1]) < 2:
        raise NicvizError("BD-accuracy needs at least 2 qualities per curve")

    ra_, sa_, rt_, st_ = (t.to_numpy(float) for t in (ra, sa, rt, st))

    def deltas(idx: np.ndarray) -> tuple[float, float]:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a quality missing for every resampled image
            a_r, a_s, t_r, t_s = (np.nanmean(t[idx], axis=0) for t in (ra_, sa_, rt_, st_))
        return (bd_score(a_r, a_s, t_r, t_s), bd_rate_score(a_r, a_s, t_r, t_s, higher_is_better))

    full = np.arange(len(images))
    d_score, d_rate = deltas(full)
    rng = np.random.default_rng(seed)
    boot = np.array([deltas(rng.integers(0, len(images), len(images))) for _ in range(n_boot)])
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]

    def ci(col: np.ndarray, point: float) -> tuple[float, float]:
        col = col[np.isfinite(col)]
        if not np.isfinite(point) or len(col) < 0.9 * n_boot:  # often no common range: no interval
            return float("nan"), float("nan")
        lo, hi = np.percentile(col, q)
        return float(lo), float(hi)

    la, lt = np.log10(ra.mean().to_numpy()), np.log10(rt.mean().to_numpy())
    rate_range = (float(10 ** max(la.min(), lt.min())), float(10 ** min(la.max(), lt.max())))
    return BDTask(d_score, ci(boot[:, 0], d_score), d_rate, ci(boot[:, 1], d_rate), rate_range, int(len(images)))


def _row(res: BDTask, **keys) -> dict:
    return {**keys, "bd_score": res.bd_score, "bd_score_lo": res.bd_score_ci[0], "bd_score_hi": res.bd_score_ci[1],
            "bd_rate": res.bd_rate, "bd_rate_lo": res.bd_rate_ci[0], "bd_rate_hi": res.bd_rate_ci[1],
            "from_bpp": res.rate_range[0], "to_bpp": res.rate_range[1], "images": res.images}


def bd_codecs(df: pd.DataFrame, anchor: str, score: str = "correct", higher_is_better: bool = True,
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """BD-accuracy of every codec of ``df`` (rows of one task) against the ``anchor`` codec."""
    if anchor not in set(df["codec"]):
        raise NicvizError(f"anchor codec {anchor!r} is not in the results")
    rows = []
    for codec in sorted(set(df["codec"]) - {anchor}):
        try:
            res = bd_task(df[df.codec == anchor], df[df.codec == codec], score, higher_is_better, n_boot, seed)
        except NicvizError:
            continue
        rows.append(_row(res, anchor=anchor, codec=codec))
    return pd.DataFrame(rows)


def bd_classifiers(df: pd.DataFrame, anchor_task: str, score: str = "correct", n_boot: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Per codec, BD-accuracy of every other classifier task of ``df`` against ``anchor_task``
    on the same images and codec (the accuracy a compression-trained model wins back)."""
    rows = []
    tasks = sorted(set(df["task"].astype(str)) - {anchor_task})
    for codec in sorted(set(df["codec"])):
        d = df[df.codec == codec]
        for task in tasks:
            try:
                res = bd_task(d[d.task == anchor_task], d[d.task == task], score, True, n_boot, seed)
            except NicvizError:
                continue
            rows.append(_row(res, codec=codec, anchor=anchor_task, task=task))
    return pd.DataFrame(rows)
