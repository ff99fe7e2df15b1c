"""Compare's error maps: absolute error and 1 - SSIM, colourised, on one brightness scale."""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

__all__ = ["error_scale", "error_maps", "error_maps_later"]


@st.cache_data(show_spinner=False, max_entries=16)
def error_scale(rgb: np.ndarray, recons: list[np.ndarray]) -> float:
    """One brightness scale for several error maps: the largest 99.5th percentile of their absolute errors."""
    from nicviz.metrics import abs_error_map

    return max(float(np.percentile(abs_error_map(rgb, r), 99.5)) for r in recons) or 1.0


def error_maps(rgb: np.ndarray, recon: np.ndarray, vmax: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Colourised absolute-error and 1 - SSIM maps, and the error value shown brightest
    (``vmax``: a scale shared with another map, so A and B compare by eye)."""
    from nicviz.metrics import abs_error_map, ssim_map
    from nicviz.plots import colorize

    emap = abs_error_map(rgb, recon)
    vmax = vmax or float(np.percentile(emap, 99.5)) or 1.0
    smap = ssim_map(rgb, recon)
    return colorize(emap, 0, vmax), colorize(1 - np.clip(smap, 0, 1), 0, 0.5), vmax


#: a few threads for work that needs no Streamlit call (numpy and Pillow release the GIL)
_POOL = None
_POOL_LOCK = threading.Lock()


def error_maps_later(rgb: np.ndarray, recon: np.ndarray, vmax: float | None = None):
    """:func:`error_maps` started in a worker thread: a future whose ``result()`` the page
    takes where it shows the maps, so they are computed while the page above them renders."""
    global _POOL
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="nicviz-maps")
    return _POOL.submit(error_maps, rgb, recon, vmax)
