"""Full-reference image-quality metrics on 8-bit RGB images.

Conventions for every function: ``metric(reference, test, data_range=255)``; both are
uint8 (or numeric) H x W x 3 arrays of the same shape, compared in **RGB** (not luma)
with ``data_range`` the span of the sample values (255 for 8-bit). Colour metrics are
computed over all three channels: MSE/MAE/PSNR pool all samples; SSIM, MS-SSIM and VIF
are computed per channel and averaged, as CompressAI reports ``*-rgb`` results.
Metrics that need a minimum size return ``nan`` for images that are too small.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from nicviz.errors import NicvizError

__all__ = [
    "mse",
    "mae",
    "psnr",
    "ssim",
    "ms_ssim",
    "vif",
    "ssim_map",
    "abs_error_map",
    "compute_metrics",
    "METRICS",
]

#: Metric names in the order results list them.
METRICS = ("psnr", "ssim", "ms_ssim", "vif", "mse", "mae")


def _validate(reference: np.ndarray, test: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        raise ValueError(f"reference {ref.shape} and test {tst.shape} differ in shape")
    if ref.ndim == 2:
        ref, tst = ref[:, :, None], tst[:, :, None]
    if ref.ndim != 3:
        raise ValueError(f"expected H x W x C images, got shape {ref.shape}")
    if not data_range > 0:
        raise ValueError("data_range must be positive")
    return ref.astype(np.float64), tst.astype(np.float64)


def mse(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Mean squared error over all pixels and channels, in squared sample units."""
    ref, tst = _validate(reference, test, data_range)
    return float(np.mean((ref - tst) ** 2))


def mae(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Mean absolute error over all pixels and channels, in sample units."""
    ref, tst = _validate(reference, test, data_range)
    return float(np.mean(np.abs(ref - tst)))


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` on RGB.

    MSE pools all three channels (CompressAI's ``psnr-rgb``). Identical images give
    ``inf``.
    """
    err = mse(reference, test, data_range)
    return math.inf if err == 0 else 10.0 * math.log10(data_range**2 / err)


def _gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _sep_filter(x: np.ndarray, k: np.ndarray, border: int) -> np.ndarray:
    """Separable correlation of each channel of ``x`` (H x W x C, float64) with ``k``."""
    if x.shape[2] <= 4:
        y = cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=border)
        return y.reshape(x.shape)
    return np.stack([_sep_filter(x[:, :, i:i + 1], k, border)[:, :, 0] for i in range(x.shape[2])], axis=2)


def _filter_same(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Same-size filtering, borders by reflection (``d c b a | a b c d``)."""
    return _sep_filter(x, k, cv2.BORDER_REFLECT)


def _filter_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """'valid' filtering: only outputs whose window lies inside ``x`` (as convolve2d 'valid')."""
    r = len(k) // 2
    return _sep_filter(x, k, cv2.BORDER_CONSTANT)[r:x.shape[0] - r, r:x.shape[1] - r]


def _ssim_full(ref: np.ndarray, tst: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM map per channel (H x W x C); borders of 5 px come from reflection."""
    k = _gaussian(11, 1.5)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu1 = _filter_same(ref, k)
    mu2 = _filter_same(tst, k)
    s11 = _filter_same(ref * ref, k) - mu1 * mu1
    s22 = _filter_same(tst * tst, k) - mu2 * mu2
    s12 = _filter_same(ref * tst, k) - mu1 * mu2
    num = (2 * mu1 * mu2 + c1) * (2 * s12 + c2)
    den = (mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2)
    return num / den


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004).

    Wang's settings: 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03,
    population (biased) covariance; the mean is taken over the valid region (5-pixel
    border excluded) of each channel, then averaged over R, G, B. Equals
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=-1)`` and ``pytorch_msssim.ssim``.
    Returns ``nan`` for images smaller than 11 px.
    """
    ref, tst = _validate(reference, test, data_range)
    if min(ref.shape[:2]) < 11:
        return math.nan
    smap = _ssim_full(ref, tst, data_range)
    return float(smap[5:-5, 5:-5].mean(axis=(0, 1)).mean())


def ssim_map(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> np.ndarray:
    """Per-pixel SSIM (H x W, channel mean), for heat maps; 1 means identical."""
    ref, tst = _validate(reference, test, data_range)
    return _ssim_full(ref, tst, data_range).mean(axis=2)


def abs_error_map(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error (H x W, mean over channels), in sample units."""
    ref, tst = _validate(reference, test, 255)
    return np.abs(ref - tst).mean(axis=2)


def ms_ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Multi-scale SSIM (Wang, Simoncelli, Bovik, Asilomar 2003) on RGB.

    Computed by ``pytorch_msssim.ms_ssim`` (5 scales, standard weights, 11x11 Gaussian,
    sigma 1.5) on the RGB image as CompressAI does; linear 0..1, not dB. Needs the
    smaller side to exceed 160 px, else returns ``nan``.
    """
    ref, tst = _validate(reference, test, data_range)
    if min(ref.shape[:2]) <= 160:
        return math.nan
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    a = torch.from_numpy(ref.astype(np.float32)).permute(2, 0, 1)[None]
    b = torch.from_numpy(tst.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return float(_ms_ssim(a, b, data_range=data_range, size_average=True))


_VIF_KERNELS = {n: _gaussian(n, n / 5.0) for n in (17, 9, 5, 3)}


def vif(reference: np.ndarray, test: np.ndarray, data_range: float = 255,
        sigma_nsq: float = 2.0) -> float:
    """Pixel-domain visual information fidelity, VIF-p (Sheikh & Bovik, IEEE TIP 15(2), 2006).

    Four scales with Gaussian windows of 17, 9, 5, 3 px (sigma = size / 5), noise
    variance ``sigma_nsq = 2``, computed on each of R, G, B in sample units (0..255)
    and averaged, exactly as ``sewar.full_ref.vifp`` computes it, but with separable
    filters (OpenCV) on all channels at once (about 20x faster). 1 means identical;
    contrast enhancement can exceed 1. ``data_range`` is validated but VIF-p is defined
    on the raw sample values, as in sewar. Returns ``nan`` for images too small for
    four scales (under about 40 px).
    """
    ref, tst = _validate(reference, test, data_range)
    eps = 1e-10
    num = np.zeros(ref.shape[2])
    den = np.zeros(ref.shape[2])
    gt, p = ref, tst
    for scale, n in enumerate((17, 9, 5, 3), start=1):
        k = _VIF_KERNELS[n]
        if scale > 1:
            gt = _filter_valid(gt, k)[::2, ::2]
            p = _filter_valid(p, k)[::2, ::2]
        if min(gt.shape[:2]) < n:
            return math.nan
        mu1 = _filter_valid(gt, k)
        mu2 = _filter_valid(p, k)
        s11 = _filter_valid(gt * gt, k) - mu1 * mu1
        s22 = _filter_valid(p * p, k) - mu2 * mu2
        s12 = _filter_valid(gt * p, k) - mu1 * mu2
        s11[s11 < 0] = 0
        s22[s22 < 0] = 0
        g = s12 / (s11 + eps)
        sv = s22 - g * s12
        low = s11 < eps
        g[low] = 0
        sv[low] = s22[low]
        s11[low] = 0
        low2 = s22 < eps
        g[low2] = 0
        sv[low2] = 0
        neg = g < 0
        sv[neg] = s22[neg]
        g[neg] = 0
        sv[sv <= eps] = eps
        num += np.log10(1.0 + g * g * s11 / (sv + sigma_nsq)).sum(axis=(0, 1))
        den += np.log10(1.0 + s11 / sigma_nsq).sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(num / den))


_FUNCS = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim, "vif": vif, "mse": mse, "mae": mae}


def compute_metrics(reference: np.ndarray, test: np.ndarray,
                    names: tuple[str, ...] | list[str] = METRICS, parallel: bool = False) -> dict[str, float]:
    """Several metrics at once: ``{name: value}`` in the order of ``names``.

    ``parallel`` computes them on threads (their numeric kernels release the GIL): for
    one interactive image, not inside sweep workers that already use every core.
    """
    unknown = [n for n in names if n not in _FUNCS]
    if unknown:
        raise NicvizError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if not parallel or len(names) < 2:
        return {n: _FUNCS[n](reference, test) for n in names}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(4, len(names))) as pool:
        values = list(pool.map(lambda n: _FUNCS[n](reference, test), names))
    return dict(zip(names, values, strict=True))
