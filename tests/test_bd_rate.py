"""BD-rate (Bjontegaard, pchip via the bjontegaard package): a known value and the overlap
of the curves it reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_bd_rate_of_a_curve_with_rates_scaled_by_0_8_is_minus_20_percent():
    from nicviz.analysis import bd_rate

    psnr = np.array([28.0, 31.0, 34.0, 37.0, 40.0])
    bpp = np.array([0.2, 0.45, 0.9, 1.6, 2.8])
    rows = [{"codec": "a", "quality": i, "image": "x", "bpp": b, "psnr": p} for i, (b, p) in enumerate(zip(bpp, psnr, strict=True))]
    rows += [{"codec": "t", "quality": i, "image": "x", "bpp": 0.8 * b, "psnr": p}
             for i, (b, p) in enumerate(zip(bpp, psnr, strict=True))]
    res = bd_rate(pd.DataFrame(rows), "a", "t")
    assert res.bd_rate == pytest.approx(-20.0, abs=1e-6)


def test_bd_rate_reports_the_overlap_of_the_curves():
    from nicviz.analysis import bd_rate

    rows = [{"codec": "a", "quality": q, "image": "x", "bpp": 0.1 * 2 ** q, "psnr": 25.0 + 3 * q} for q in range(6)]
    rows += [{"codec": "t", "quality": q, "image": "x", "bpp": 0.1 * 2 ** q, "psnr": 37.0 + 3 * q} for q in range(6)]
    res = bd_rate(pd.DataFrame(rows), "a", "t")
    assert res.overlap == pytest.approx((40 - 37) / 15)  # a: 25..40 dB, t: 37..52 dB
