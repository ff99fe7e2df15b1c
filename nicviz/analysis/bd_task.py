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

__all__ = ["BDTask", "bd_classifiers", "bd_codecs", "bd_score", "bd_rate_score", "bd_task", "scipy_gap", "task_scores"]


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


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """PCHIP end and inner slopes of each row of ``(B, n)`` increasing ``x`` (Fritsch and Carlson,
    SIAM J. Numer. Anal. 1980; ends as Moler's pchiptx), as ``scipy.interpolate.PchipInterpolator``."""
    h = np.diff(x, axis=1)
    m = np.diff(y, axis=1) / h
    d = np.zeros_like(y)
    if x.shape[1] == 2:
        d[:, 0] = d[:, 1] = m[:, 0]
        return d
    sm = np.sign(m)
    flat = (sm[:, 1:] != sm[:, :-1]) | (m[:, 1:] == 0) | (m[:, :-1] == 0)
    w1, w2 = 2 * h[:, 1:] + h[:, :-1], h[:, 1:] + 2 * h[:, :-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        d[:, 1:-1] = np.where(flat, 0.0, (w1 + w2) / (w1 / m[:, :-1] + w2 / m[:, 1:]))

    def edge(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        wrong_sign = np.sign(e) != np.sign(m0)
        overshoot = (np.sign(m0) != np.sign(m1)) & (np.abs(e) > 3 * np.abs(m0))
        return np.where(wrong_sign, 0.0, np.where(overshoot, 3 * m0, e))

    d[:, 0] = edge(h[:, 0], h[:, 1], m[:, 0], m[:, 1])
    d[:, -1] = edge(h[:, -1], h[:, -2], m[:, -1], m[:, -2])
    return d


def _pchip_integral(x: np.ndarray, y: np.ndarray, d: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Integral of each row's PCHIP from ``x[:, 0]`` to ``t`` (``t`` inside the row's range):
    the cubic Hermite segments integrated in closed form."""
    b = np.arange(len(x))
    h = np.diff(x, axis=1)
    whole = h * (y[:, :-1] + y[:, 1:]) / 2 + h ** 2 * (d[:, :-1] - d[:, 1:]) / 12
    before = np.concatenate([np.zeros((len(x), 1)), np.cumsum(whole, axis=1)], axis=1)
    k = np.clip((x[:, 1:-1] <= t[:, None]).sum(axis=1), 0, x.shape[1] - 2)
    hk = h[b, k]
    u = (t - x[b, k]) / hk
    u2, u3, u4 = u * u, u ** 3, u ** 4
    part = hk * (y[b, k] * (u4 / 2 - u3 + u) + hk * d[b, k] * (u4 / 4 - 2 * u3 / 3 + u2 / 2)
                 + y[b, k + 1] * (u3 - u4 / 2) + hk * d[b, k + 1] * (u4 / 4 - u3 / 3))
    return before[b, k] + part


def _gap_rows(xa, ya, ka, xt, yt, kt) -> np.ndarray:
    """Mean of ``yt(x) - ya(x)`` over the common range of each row's two curves, PCHIP of
    each; only the points marked in ``ka`` / ``kt`` count (increasing ``x`` among them).

    Rows are grouped by which points they keep, so every group is one vectorised PCHIP
    (the bootstrap's thousand curves in a few array operations instead of a thousand
    ``PchipInterpolator`` objects). NaN where a curve has fewer than 2 points or none overlap.
    """
    out = np.full(len(xa), np.nan)
    keys = np.concatenate([ka, kt], axis=1)
    patterns, which = np.unique(keys, axis=0, return_inverse=True)
    q = ka.shape[1]
    for g, pattern in enumerate(patterns):
        ma, mt = pattern[:q], pattern[q:]
        if ma.sum() < 2 or mt.sum() < 2:
            continue
        rows = np.flatnonzero(which.ravel() == g)
        a_x, a_y, t_x, t_y = xa[rows][:, ma], ya[rows][:, ma], xt[rows][:, mt], yt[rows][:, mt]
        lo, hi = np.maximum(a_x[:, 0], t_x[:, 0]), np.minimum(a_x[:, -1], t_x[:, -1])
        ok = hi > lo
        if not ok.any():
            continue
        a_x, a_y, t_x, t_y, lo, hi, rows = a_x[ok], a_y[ok], t_x[ok], t_y[ok], lo[ok], hi[ok], rows[ok]
        da, dt = _pchip_slopes(a_x, a_y), _pchip_slopes(t_x, t_y)
        gap = ((_pchip_integral(t_x, t_y, dt, hi) - _pchip_integral(t_x, t_y, dt, lo))
               - (_pchip_integral(a_x, a_y, da, hi) - _pchip_integral(a_x, a_y, da, lo)))
        out[rows] = gap / (hi - lo)
    return out


def _prepare(rate: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of (rate, score) points as log10 rate ascending, score, and which points count
    (finite, positive rate; of equal rates the first)."""
    rate, score = np.atleast_2d(np.asarray(rate, float)), np.atleast_2d(np.asarray(score, float))
    ok = np.isfinite(rate) & np.isfinite(score) & (rate > 0)
    order = np.argsort(np.where(ok, rate, np.inf), axis=1, kind="stable")
    rate, score, ok = (np.take_along_axis(t, order, axis=1) for t in (rate, score, ok))
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.where(ok, np.log10(np.where(ok, rate, 1.0)), np.inf)
    keep = ok.copy()
    keep[:, 1:] &= np.diff(lr, axis=1) > 0
    return lr, score, keep


def _envelope(lr: np.ndarray, sc: np.ndarray, keep: np.ndarray, higher_is_better: bool):
    """Rate as a function of score: the best score at this rate or below, strictly improving
    (as x), log rate (as y), and which points count."""
    best = np.maximum.accumulate(np.where(keep, sc if higher_is_better else -sc, -np.inf), axis=1)
    before = np.concatenate([np.full((len(best), 1), -np.inf), best[:, :-1]], axis=1)
    return best, lr, keep & (best > before)


def scipy_gap(rate_a, score_a, rate_t, score_t) -> float:
    """The mean gap of :func:`bd_score` with one ``scipy.interpolate.PchipInterpolator`` per
    curve: the reference the vectorised version is tested and benchmarked against."""
    from scipy.interpolate import PchipInterpolator

    curves = []
    for r, s in ((np.asarray(rate_a, float), np.asarray(score_a, float)),
                 (np.asarray(rate_t, float), np.asarray(score_t, float))):
        ok = np.isfinite(r) & np.isfinite(s) & (r > 0)
        order = np.argsort(r[ok], kind="stable")
        x, y = np.log10(r[ok][order]), s[ok][order]
        keep = np.concatenate([[True], np.diff(x) > 0])
        curves.append((x[keep], y[keep]))
    (xa, ya), (xt, yt) = curves
    if len(xa) < 2 or len(xt) < 2:
        return float("nan")
    lo, hi = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if hi <= lo:
        return float("nan")
    return float((PchipInterpolator(xt, yt).integrate(lo, hi) - PchipInterpolator(xa, ya).integrate(lo, hi))
                 / (hi - lo))


def bd_score(rate_a, score_a, rate_t, score_t) -> float:
    """Mean of ``score_t - score_a`` over the common log-rate range (PCHIP on each curve).

    NaN when the curves share no rate range or a curve has fewer than 2 points."""
    return float(_gap_rows(*_prepare(rate_a, score_a), *_prepare(rate_t, score_t))[0])


def bd_rate_score(rate_a, score_a, rate_t, score_t, higher_is_better: bool = True) -> float:
    """Mean rate difference (percent) at equal score over the common score range of the
    two curves' monotone envelopes (PCHIP of log rate against score). NaN without overlap."""
    return float(_bd_rate_rows(rate_a, score_a, rate_t, score_t, higher_is_better)[0])


def _bd_rate_rows(rate_a, score_a, rate_t, score_t, higher_is_better: bool) -> np.ndarray:
    gap = _gap_rows(*_envelope(*_prepare(rate_a, score_a), higher_is_better),
                    *_envelope(*_prepare(rate_t, score_t), higher_is_better))
    return (10 ** gap - 1) * 100


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

    full = np.arange(len(images))[None]
    rng = np.random.default_rng(seed)
    # row 0: all images; then n_boot resamples, all at once: (1 + n_boot) curves per table
    idx = np.concatenate([full, rng.integers(0, len(images), (n_boot, len(images)))])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a quality missing for every resampled image
        a_r, a_s, t_r, t_s = (np.nanmean(t[idx], axis=1) for t in (ra_, sa_, rt_, st_))
    scores = _gap_rows(*_prepare(a_r, a_s), *_prepare(t_r, t_s))
    rates = _bd_rate_rows(a_r, a_s, t_r, t_s, higher_is_better)
    d_score, d_rate = float(scores[0]), float(rates[0])
    boot = np.stack([scores[1:], rates[1:]], axis=1)
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
