"""Grad-CAM maps of the built-in lesion classifier: they look at the lesion, and the
overlap that summarises how far a map moved behaves as its definition says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nicviz.tasks.classify.cam import grad_cam, map_overlap, overlay, supports


@pytest.fixture(scope="module")
def clf():
    from nicviz.tasks.classify.models import get_classifier

    return get_classifier("isic-effnet-lite0")


def test_the_map_of_a_lesion_peaks_on_the_lesion_far_more_often_than_chance(clf, data_dir: Path):
    """No lesion masks ship with the data, but a dermoscopic lesion is the dark blob on
    lighter skin: Otsu's threshold of the luminance gives its mask. Over 27 test images
    (3 of each class) the map's peak must fall inside that mask far more often than a
    random pixel would (the mask's area share, summed over the images)."""
    from PIL import Image
    from scipy.stats import poisson_binom
    from skimage.filters import threshold_otsu

    folder = data_dir / "isic" / "test"
    if not folder.is_dir():
        pytest.skip("isic/test is not in the data folder")
    files = [f for cls in sorted(folder.iterdir()) for f in sorted(cls.glob("*.jpg"))[:3]]
    hits, shares = 0, []
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        m = grad_cam(clf, rgb)
        assert m.shape == rgb.shape[:2] and 0 <= m.min() and m.max() <= 1
        g = rgb.astype(float).mean(axis=2)
        mask = g < threshold_otsu(g)
        y, x = np.unravel_index(np.argmax(m), m.shape)
        hits += bool(mask[y, x])
        shares.append(float(mask.mean()))
    # P(at least this many hits) if each peak fell on a random pixel
    p = poisson_binom(shares).sf(hits - 1)
    assert p < 0.01, (hits, sum(shares))


def test_overlap_of_maps(clf):
    rng = np.random.default_rng(0)
    a = rng.random((40, 50))
    assert map_overlap(a, a) == 1.0
    assert map_overlap(a, 1 - a) == 0.0  # the top fifth of one is the bottom fifth of the other
    b = np.roll(a, 1, axis=0)
    assert 0.0 <= map_overlap(a, b) < 0.5
    with pytest.raises(ValueError):
        map_overlap(a, a[:10])
    o = overlay(np.zeros((40, 50, 3), np.uint8), a)
    assert o.dtype == np.uint8 and o.shape == (40, 50, 3) and o[..., 0].max() > 0


def test_maps_are_offered_for_the_built_in_classifiers_only(clf):
    from nicviz.errors import NicvizError
    from nicviz.tasks.classify.models import Classifier

    assert supports(clf)
    other = Classifier()
    other.name = "keras:model.h5"
    assert not supports(other)
    with pytest.raises(NicvizError, match="built-in classifiers"):
        grad_cam(other, np.zeros((8, 8, 3), np.uint8))
