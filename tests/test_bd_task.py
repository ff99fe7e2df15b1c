"""BD-accuracy and BD-rate on a task score: closed-form answers and the bjontegaard package."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nicviz.analysis.bd_task import bd_rate_score, bd_score, bd_task

RATES = np.array([0.1, 0.2, 0.4, 0.8, 1.6])


def test_shifted_linear_curves_have_closed_form_deltas():
    # score = 40 + 20 log10(r); the test reaches every score at 10**-c of the anchor's rate
    c = 0.15
    lr = np.log10(RATES)
    anchor, test = 40 + 20 * lr, 40 + 20 * (lr + c)
    assert bd_score(RATES, anchor, RATES, test) == pytest.approx(20 * c, abs=1e-9)
    assert bd_rate_score(RATES, anchor, RATES, test) == pytest.approx((10 ** -c - 1) * 100, abs=1e-9)
    # swapping anchor and test flips the sign of BD-accuracy and inverts the rate ratio
    assert bd_score(RATES, test, RATES, anchor) == pytest.approx(-20 * c, abs=1e-9)
    assert bd_rate_score(RATES, test, RATES, anchor) == pytest.approx((10 ** c - 1) * 100, abs=1e-9)


def test_quadratic_curves_closed_form_integral():
    # on a common range [a, b] of L = log10 r, the mean of (L^2 + 5) - L^2 is exactly 5,
    # whatever the interpolant's curvature (both curves interpolated the same way)
    lr = np.linspace(-1, 0.2, 7)
    r = 10 ** lr
    assert bd_score(r, lr ** 2, r, lr ** 2 + 5) == pytest.approx(5.0, abs=1e-9)


def test_agrees_with_bjontegaard_package_on_monotone_curves():
    bd = pytest.importorskip("bjontegaard")
    rng = np.random.default_rng(3)
    for _ in range(5):
        ra = np.sort(rng.uniform(0.05, 2, 5))
        rt = np.sort(rng.uniform(0.05, 2, 5))
        sa = np.sort(rng.uniform(20, 90, 5))
        st = np.sort(rng.uniform(20, 90, 5))
        expect_score = bd.bd_psnr(ra, sa, rt, st, method="pchip", require_matching_points=False,
                                   min_overlap=0)
        assert bd_score(ra, sa, rt, st) == pytest.approx(expect_score, abs=1e-6)
        if max(sa[0], st[0]) < min(sa[-1], st[-1]):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expect_rate = bd.bd_rate(ra, sa, rt, st, method="pchip", require_matching_points=False,
                                         min_overlap=0)
            assert bd_rate_score(ra, sa, rt, st) == pytest.approx(expect_rate, rel=1e-6, abs=1e-6)


def test_vectorised_pchip_gap_matches_scipy_on_rough_curves():
    """The batched PCHIP integral (the bootstrap's speed) against scipy's PchipInterpolator:
    non-monotone scores, flat stretches, 2- and 3-point curves, missing and repeated rates."""
    from nicviz.analysis.bd_task import _gap_rows, _prepare, scipy_gap

    rng = np.random.default_rng(7)
    rows = []
    for n in (2, 3, 5, 8):
        for _ in range(60):
            ra, rt = rng.uniform(0.05, 2, n), rng.uniform(0.05, 2, n)
            sa, st = rng.choice([0.0, 25.0, 50.0, 75.0, 100.0], n), rng.uniform(0, 100, n)
            if rng.random() < 0.3:
                ra[rng.integers(n)] = np.nan
            if rng.random() < 0.3:
                rt[rng.integers(n)] = rt[rng.integers(n)]
            rows.append((ra, sa, rt, st))
    for n in (2, 3, 5, 8):
        batch = [r for r in rows if len(r[0]) == n]
        got = _gap_rows(*_prepare(np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch])),
                        *_prepare(np.stack([b[2] for b in batch]), np.stack([b[3] for b in batch])))
        want = np.array([scipy_gap(*b) for b in batch])
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.isfinite(want).sum() > 10 and np.allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_no_overlap_is_nan_and_envelope_handles_dips():
    assert math.isnan(bd_score([0.1, 0.2], [1, 2], [0.5, 0.9], [1, 2]))
    # a dip in accuracy at a higher rate does not make rate a non-function of accuracy
    r = np.array([0.1, 0.2, 0.3, 0.4])
    dipped = np.array([50, 60, 55, 70])
    assert bd_rate_score(r, dipped, r, dipped) == pytest.approx(0.0, abs=1e-9)
    # lower-is-better scores (character error rate): a test with half the CER at each rate
    cer_a = np.array([0.8, 0.5, 0.3, 0.2])
    assert bd_rate_score(r, cer_a, r * 0.5, cer_a, higher_is_better=False) == pytest.approx(-50.0, abs=1e-9)


def _rows(codec: str, images: int, rates: np.ndarray, p_correct, rng) -> pd.DataFrame:
    rows = []
    for i in range(images):
        for q, r in enumerate(rates):
            rows.append({"image": f"im{i}", "codec": codec, "quality": q, "bpp": r,
                         "correct": bool(rng.random() < p_correct(r))})
    return pd.DataFrame(rows)


def test_bd_task_bootstrap_interval_covers_a_known_gap():
    rng = np.random.default_rng(0)
    # accuracy 30 + 40 * log-rate fraction; the test classifier is 10 points better everywhere
    lr = np.log10(RATES)
    frac = (lr - lr[0]) / (lr[-1] - lr[0])
    acc = dict(zip(RATES, 0.3 + 0.4 * frac, strict=True))
    anchor = _rows("a", 400, RATES, lambda r: acc[r], rng)
    test = _rows("b", 400, RATES, lambda r: acc[r] + 0.1, rng)
    res = bd_task(anchor, test, n_boot=300)
    assert res.images == 400
    assert res.bd_score_ci[0] < res.bd_score < res.bd_score_ci[1]
    assert res.bd_score_ci[0] < 10 < res.bd_score_ci[1]
    assert 5 < res.bd_score < 15
    assert res.bd_rate < 0 and res.bd_rate_ci[1] < 0  # the better classifier needs fewer bits
    # the same rows against themselves: zero, with a zero-width interval
    same = bd_task(anchor, anchor, n_boot=50)
    assert same.bd_score == 0 and same.bd_score_ci == (0.0, 0.0)


def test_bd_task_needs_shared_images():
    from nicviz.errors import NicvizError

    rng = np.random.default_rng(1)
    a = _rows("a", 3, RATES, lambda r: 0.5, rng)
    b = a.assign(image=a["image"] + "x")
    with pytest.raises(NicvizError, match="same images"):
        bd_task(a, b)


def test_bd_codecs_on_a_lower_is_better_score():
    from nicviz.analysis.bd_task import bd_codecs

    rows = []
    for codec, scale in (("jpeg", 1.0), ("half", 0.5)):
        for q, (r, cer) in enumerate(zip(RATES, (0.8, 0.5, 0.3, 0.2, 0.1), strict=True)):
            for i in range(10):
                rows.append({"image": f"p{i}", "codec": codec, "quality": q, "bpp": r * scale, "cer": cer})
    table = bd_codecs(pd.DataFrame(rows), "jpeg", "cer", higher_is_better=False, n_boot=20)
    r = table.iloc[0]
    assert r["codec"] == "half" and r["bd_rate"] == pytest.approx(-50.0, abs=1e-6)
    assert r["bd_rate_lo"] == pytest.approx(-50.0, abs=1e-6)  # every plate alike: no spread
    assert r["bd_score"] < 0  # at equal rate the codec needing half the bits makes fewer errors
