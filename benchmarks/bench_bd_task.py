"""BD-accuracy bootstrap speed: one scipy PchipInterpolator per resample against the
vectorised PCHIP of nicviz.analysis.bd_task, on the shipped isic/test results.

Prints both times, their ratio and the largest difference of the figures (same seed).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from nicviz.analysis.bd_task import bd_task, scipy_gap, task_scores
from nicviz.results import read_results

RESULTS = Path(__file__).resolve().parent.parent / "results" / "isic" / "test.csv"


def scipy_bootstrap(anchor, test, n_boot: int, seed: int = 0) -> np.ndarray:
    """BD-accuracy of every resample, one resample at a time (the former implementation)."""
    ra, sa = task_scores(anchor, "correct")
    rt, st = task_scores(test, "correct")
    images = ra.index.intersection(rt.index)
    tables = [t.loc[images].to_numpy(float) for t in (ra, sa, rt, st)]
    rng = np.random.default_rng(seed)
    idx = np.concatenate([np.arange(len(images))[None], rng.integers(0, len(images), (n_boot, len(images)))])
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in idx:
            out.append(scipy_gap(*(np.nanmean(t[i], axis=0) for t in tables)))
    return np.array(out)


def main() -> None:
    df = read_results(RESULTS)
    df = df[(df["task"] == "classify") & df["label"].notna()]
    n_boot = 1000
    pairs = [("jpeg", c) for c in sorted(set(df.codec) - {"jpeg"})]
    t = time.perf_counter()
    ref = [scipy_bootstrap(df[df.codec == a], df[df.codec == b], n_boot) for a, b in pairs]
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    ours = [bd_task(df[df.codec == a], df[df.codec == b], n_boot=n_boot) for a, b in pairs]
    t_ours = time.perf_counter() - t
    diff = max(abs(r[0] - o.bd_score) for r, o in zip(ref, ours, strict=True))
    print(f"{len(pairs)} codec pairs against jpeg, {n_boot} resamples each, {RESULTS.parent.name}/{RESULTS.name}")
    print(f"scipy, a resample at a time (BD-accuracy only): {t_ref:.2f} s")
    print(f"nicviz vectorised (BD-accuracy and BD-rate):    {t_ours:.2f} s")
    print(f"ratio: {t_ref / t_ours:.1f}x; largest difference of the point figures: {diff:.2e} points")


if __name__ == "__main__":
    main()
