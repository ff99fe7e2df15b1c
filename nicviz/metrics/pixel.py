"""Pixel-wise metrics: MSE, MAE and PSNR over all samples of the three channels."""

from __future__ import annotations

import math

import numpy as np

from nicviz.metrics.registry import register_metric, validate_pair

__all__ = ["mse", "mae", "psnr", "abs_error_map"]


@register_metric("mse", label="MSE", unit="(sample units)^2", higher_is_better=False, order=4)
def mse(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Mean squared error over all pixels and channels, in squared sample units."""
    ref, tst = validate_pair(reference, test, data_range)
    return float(np.mean((ref - tst) ** 2))


@register_metric("mae", label="MAE", unit="sample units", higher_is_better=False, order=5)
def mae(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Mean absolute error over all pixels and channels, in sample units."""
    ref, tst = validate_pair(reference, test, data_range)
    return float(np.mean(np.abs(ref - tst)))


@register_metric("psnr", label="PSNR (dB)", unit="dB", order=0)
def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)`` on RGB.

    MSE pools all three channels (CompressAI's ``psnr-rgb``). Identical images give
    ``inf``.
    """
    err = mse(reference, test, data_range)
    return math.inf if err == 0 else 10.0 * math.log10(data_range**2 / err)


def abs_error_map(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-pixel absolute error (H x W, mean over channels), in sample units."""
    ref, tst = validate_pair(reference, test, 255)
    return np.abs(ref - tst).mean(axis=2)
