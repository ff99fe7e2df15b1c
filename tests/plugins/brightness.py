"""A metric and a task in one file, registered the way a user adds them (used by
tests/test_registries.py): mean luma difference, and the mean brightness of each image."""

from __future__ import annotations

import numpy as np

from nicviz.metrics import register_metric
from nicviz.tasks import register_task


@register_metric("luma_shift", label="luma shift", unit="sample units", higher_is_better=False)
def luma_shift(reference: np.ndarray, test: np.ndarray, data_range: float = 255) -> float:
    """Absolute difference of the mean luma (BT.601) of the two images."""
    w = np.array([0.299, 0.587, 0.114])
    return float(abs((np.asarray(reference, float) @ w).mean() - (np.asarray(test, float) @ w).mean()))


class Brightness:
    name = "brightness"

    def labels(self, dataset):
        return {}

    def reference(self, rgb, label):
        return {"brightness_ref": float(np.asarray(rgb, float).mean())}

    def compare(self, recon, label, ref):
        return {"brightness": float(np.asarray(recon, float).mean()), **ref}


@register_task("brightness", "mean brightness of original and reconstruction",
               columns=("brightness", "brightness_ref"))
def make(arg: str | None = None) -> Brightness:
    return Brightness()
