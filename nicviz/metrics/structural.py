"""Structural similarity: SSIM (Wang et al., 2004) and MS-SSIM (Wang et al., 2003),
per channel and averaged over R, G, B, as CompressAI reports ``*-rgb`` results."""

from __future__ import annotations

import math

import cv2
import numpy as np

from nicviz.metrics.registry import register_metric, validate_pair

__all__ = ["ssim", "ms_ssim", "ssim_map", "gaussian", "filter_same", "filter_valid"]


def gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _sep_filter(x: np.ndarray, k: np.ndarray, border: int) -> np.ndarray:
    """Separable correlation of each channel of ``x`` (H x W x C, float64) with ``k``."""
    if x.shape[2] <= 4:
        y = cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=border)
        return y.reshape(x.shape)
    return np.stack([_sep_filter(x[:, :, i:i + 1], k, border)[:, :, 0] for i in range(x.shape[2])], axis=2)


def filter_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Same-size filtering, borders by reflection (``d c b a | a b c d``)."""
    return _sep_filter(x, k, cv2.BORDER_REFLECT)


def filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """'valid' filtering: only outputs whose window lies inside ``x`` (as convolve2d 'valid')."""
    r = len(k) // 2
    return _sep_filter(x, k, cv2.BORDER_CONSTANT)[r:x.shape[0] - r, r:x.shape[1] - r]


def _ssim_full(ref: np.ndarray, tst: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM map per channel (H x W x C); borders of 5 px come from reflection."""
    k = gaussian(11, 1.5)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu1 = filter_same(ref, k)
    mu2 = filter_same(tst, k)
    s11 = filter_same(ref * ref, k) - mu1 * mu1
    s22 = filter_same(tst * tst, k) - mu2 * mu2
    s12 = filter_same(ref * tst, k) - mu1 * mu2
    num = (2 * mu1 * mu2 + c1) * (2 * s12 + c2)
    den = (mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2)
    return num / den


@register_metric("ssim", label="SSIM", nan_at_or_below=160, order=1)
def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004).

    Wang's settings: 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
    population (biased) covariance; the mean is taken over the valid region (5-pixel
    border excluded) of each channel, then averaged over R, G, B. Equals
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1)`` and ``pytorch_msssim.ssim``.
    Returns ``nan`` for images smaller than 11 px.
    """
    ref, tst = validate_pair(reference, test, data_range)
    if min(ref.shape[:2]) < 11:
        return math.nan
    smap = _ssim_full(ref, tst, data_range)
    return float(smap[5:-5, 5:-5].mean(axis=(0, 1)).mean())


def ssim_map(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> np.ndarray:
    """Per-pixel SSIM (H x W, channel mean), for heat maps; 1 means identical."""
    ref, tst = validate_pair(reference, test, data_range)
    return _ssim_full(ref, tst, data_range).mean(axis=2)


@register_metric("ms_ssim", label="MS-SSIM", nan_at_or_below=160, db_form=True, order=2)
def ms_ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik, Asilomar 2003) on RGB.

    Computed by ``pytorch_msssim.ms_ssim`` (5 scales, standard weights, 11x11 Gaussian,
    sigma 1.5) on the RGB image as CompressAI does; linear 0..1, not dB. Needs the
    smaller side to exceed 160 px, else returns ``nan``.
    """
    ref, tst = validate_pair(reference, test, data_range)
    if min(ref.shape[:2]) <= 160:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    a = torch.from_numpy(ref.astype(np.float32)).permute(2, 0, 1)[None]
    b = torch.from_numpy(tst.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return float(_ms_ssim(a, b, data_range=data_range, size_average=True))
