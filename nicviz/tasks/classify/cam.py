"""Where the classifier looks: Grad-CAM maps (Selvaraju et al., "Grad-CAM: Visual
Explanations from Deep Networks via Gradient-based Localization", ICCV 2017) from the
maintained ``grad-cam`` package, and how far a map moves under compression.

Offered for the built-in PyTorch classifiers (EfficientNet-Lite0: the map is taken at
the 1x1 head convolution, the last layer with a spatial grid, 7 x 7 at 224 px). The
package does not drive Keras models; :func:`supports` says which classifiers have maps.
"""

from __future__ import annotations

import numpy as np

from nicviz.errors import NicvizError
from nicviz.tasks.classify.models import PREPROCESS, Classifier, EffNetLiteClassifier

__all__ = ["supports", "grad_cam", "map_overlap", "overlay", "TOP_SHARE"]

#: the share of the image called "where the classifier looks" by :func:`map_overlap`
TOP_SHARE = 0.2


def supports(clf: Classifier) -> bool:
    """Whether :func:`grad_cam` can draw maps for ``clf``."""
    return isinstance(clf, EffNetLiteClassifier)


def grad_cam(clf: Classifier, rgb: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """The Grad-CAM map (H x W float in [0, 1], at ``rgb``'s size) of ``class_index``
    (default: the predicted class) for uint8 RGB ``rgb``."""
    if not isinstance(clf, EffNetLiteClassifier):  # what supports() says, spelled for the type checker
        raise NicvizError(f"class-activation maps are offered for the built-in classifiers, not {clf.name}")
    import torch
    from PIL import Image
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    x = PREPROCESS["effnet-lite"](clf.resize(rgb).astype(np.float32))
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None].contiguous()
    with clf._lock:  # one forward/backward at a time on the shared model
        if class_index is None:
            with torch.no_grad():
                class_index = int(clf.model(t).argmax(1))
        with GradCAM(model=clf.model, target_layers=[clf.model._conv_head]) as cam:
            m = cam(input_tensor=t, targets=[ClassifierOutputTarget(int(class_index))])[0]
    m = np.nan_to_num(np.asarray(m, dtype=np.float32), nan=0.0)
    h, w = rgb.shape[:2]
    if m.shape != (h, w):
        m = np.asarray(Image.fromarray(m).resize((w, h), Image.Resampling.BILINEAR))
    return np.clip(m, 0.0, 1.0)


def _top(m: np.ndarray, share: float) -> np.ndarray:
    k = max(1, int(round(share * m.size)))
    thresh = np.partition(m.reshape(-1), m.size - k)[m.size - k]
    return m >= thresh


def map_overlap(a: np.ndarray, b: np.ndarray, share: float = TOP_SHARE) -> float:
    """How much two maps agree: the intersection over union (0..1) of the ``share`` of
    pixels each map ranks highest. 1: the classifier looks at the same place."""
    if a.shape != b.shape:
        raise ValueError(f"maps of different sizes: {a.shape} and {b.shape}")
    ta, tb = _top(a, share), _top(b, share)
    union = np.logical_or(ta, tb).sum()
    return float(np.logical_and(ta, tb).sum() / union) if union else 1.0


def overlay(rgb: np.ndarray, m: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """``rgb`` under map ``m`` in the inferno colours: where the map is low the image shows
    through untouched, where it is high the colour covers it (``alpha`` at the peak), so
    the region the classifier relies on stands out instead of a wash over everything."""
    from nicviz.plots import colorize

    m = np.clip(np.asarray(m, dtype=np.float32), 0, 1)
    heat = colorize(m, 0.0, 1.0).astype(np.float32)
    a = (alpha * np.clip((m - 0.35) / 0.65, 0, 1) ** 1.5)[..., None]
    out = (1 - a) * np.asarray(rgb, dtype=np.float32) + a * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
