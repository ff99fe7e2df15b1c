"""Metric agreement with scikit-image, pytorch-msssim and sewar on real photographs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as pm_ms_ssim
from pytorch_msssim import ssim as pm_ssim
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from nicviz import metrics as M
from nicviz.codecs import get_codec
from nicviz.images import load_image


def _jpeg(rgb: np.ndarray, q: int) -> np.ndarray:
    c = get_codec("jpeg")
    return c.decode(c.encode(rgb, q))


@pytest.fixture(scope="module")
def pairs(astronaut, chelsea):
    return [(astronaut, _jpeg(astronaut, q)) for q in (5, 40, 90)] + [(chelsea, _jpeg(chelsea, 20))]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float64)).permute(2, 0, 1)[None]


def test_psnr_mse_mae_match_skimage(pairs):
    for ref, test in pairs:
        assert M.mse(ref, test) == pytest.approx(mean_squared_error(ref, test), rel=1e-12)
        assert M.psnr(ref, test) == pytest.approx(peak_signal_noise_ratio(ref, test, data_range=255), abs=1e-9)
        assert M.mae(ref, test) == pytest.approx(np.abs(ref.astype(float) - test).mean(), rel=1e-12)


def test_identical_images():
    a = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert M.psnr(a, a) == math.inf
    assert M.ssim(a, a) == pytest.approx(1.0)
    assert M.vif(a, a) == pytest.approx(1.0)


def test_ssim_matches_skimage_and_pytorch_msssim(pairs):
    for ref, test in pairs:
        ours = M.ssim(ref, test)
        sk = structural_similarity(ref, test, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                   use_sample_covariance=False, data_range=255)
        pm = float(pm_ssim(_t(ref), _t(test), data_range=255))
        assert abs(ours - sk) < 1e-4
        assert abs(ours - pm) < 1e-4


def test_ssim_map_mean_is_ssim(pairs):
    ref, test = pairs[1]
    smap = M.ssim_map(ref, test)
    assert smap.shape == ref.shape[:2]
    assert smap[5:-5, 5:-5].mean() == pytest.approx(M.ssim(ref, test), abs=1e-9)
    emap = M.abs_error_map(ref, test)
    assert emap.shape == ref.shape[:2] and emap.mean() == pytest.approx(M.mae(ref, test))


def test_ms_ssim_matches_pytorch_msssim(pairs):
    for ref, test in pairs:
        expected = float(pm_ms_ssim(_t(ref), _t(test), data_range=255))
        assert abs(M.ms_ssim(ref, test) - expected) < 1e-4


def test_ms_ssim_small_image_is_nan():
    a = np.zeros((100, 300, 3), np.uint8)
    assert math.isnan(M.ms_ssim(a, a))


def test_vif_matches_sewar(pairs):
    from sewar.full_ref import vifp

    for ref, test in pairs[:2]:
        assert abs(M.vif(ref, test) - vifp(ref, test)) < 1e-4


def test_vif_matches_sewar_on_kodak(kodak_dir):
    from sewar.full_ref import vifp

    ref = load_image(kodak_dir / "kodim23.png")
    test = _jpeg(ref, 25)
    assert abs(M.vif(ref, test) - vifp(ref, test)) < 1e-4


def test_metrics_order_and_monotonic(astronaut):
    low, high = _jpeg(astronaut, 10), _jpeg(astronaut, 90)
    a, b = M.compute_metrics(astronaut, low), M.compute_metrics(astronaut, high)
    assert list(a) == list(M.METRICS)
    for name in ("psnr", "ssim", "ms_ssim", "vif"):
        assert b[name] > a[name]
    for name in ("mse", "mae"):
        assert b[name] < a[name]


def test_validation_errors(astronaut):
    with pytest.raises(ValueError, match="differ in shape"):
        M.psnr(astronaut, astronaut[:10])
    with pytest.raises(ValueError, match="unknown metric"):
        M.compute_metrics(astronaut, astronaut, ["psnr", "lpips"])


def test_parallel_metrics_equal_serial_ones(astronaut):
    from nicviz.metrics import METRICS, compute_metrics

    rec = np.clip(astronaut.astype(int) + np.random.default_rng(0).integers(-9, 10, astronaut.shape), 0, 255)
    rec = rec.astype(np.uint8)
    assert compute_metrics(astronaut, rec, METRICS, parallel=True) == compute_metrics(astronaut, rec, METRICS)
