"""Cached helpers for the Streamlit pages: every page stays thin and calls these.

Errors come back as messages (``(value, error)`` pairs) so a page can show them with
``st.error`` and keep working.
"""

from __future__ import annotations

import threading

import numpy as np
import streamlit as st

from nicviz.codecs import RATE_ESTIMATED, get_codec, list_codecs
from nicviz.dashboard.maps import error_maps, error_maps_later, error_scale
from nicviz.datasets import KNOWN_DATASETS, DatasetError, builtin_sample, data_root, resolve_dataset
from nicviz.errors import NicvizError
from nicviz.evaluate import evaluate
from nicviz.images import ImageError, load_image, to_png_bytes
from nicviz.settings import max_neural_pixels, max_pixels

__all__ = ["neural_size_guard", "size_guard", "MAX_NEURAL_PIXELS", "MAX_PIXELS",
           "claim_results_name", "missing_columns", "release_results_name", "result_frames", "results_meta", "png_later", "comparison", "error_maps", "error_maps_later", "error_scale", "side_by_side", "quality_picker", "available_codecs", "cached_evaluate", "dataset_choices", "dataset_images", "dataset_image",
           "load_upload", "download_name", "remembered", "sample_image", "load_results", "classifier", "classify"]


#: pixels a neural codec gets on a shared dashboard before it offers a downscale
MAX_NEURAL_PIXELS = max_neural_pixels()
#: pixels a classical codec gets (a 12 MP image costs gigabytes per quality change)
MAX_PIXELS = max_pixels()

#: results names being written, by session: every browser session of a server shares this process
_CLAIMS: dict[str, str] = {}
_CLAIMS_LOCK = threading.Lock()


def claim_results_name(name: str, session: str, dry_run: bool = False) -> bool:
    """Take ``name`` for ``session`` (``False`` when another session of this server holds it);
    with ``dry_run`` only say whether it could be taken."""
    with _CLAIMS_LOCK:
        holder = _CLAIMS.get(name)
        if holder not in (None, session):
            return False
        if not dry_run:
            _CLAIMS[name] = session
        return True


def release_results_name(name: str, session: str) -> None:
    with _CLAIMS_LOCK:
        if _CLAIMS.get(name) == session:
            del _CLAIMS[name]


@st.cache_data(show_spinner=False, max_entries=8)
def sample_image(name: str) -> np.ndarray:
    return builtin_sample(name)


@st.cache_data(show_spinner=False, ttl=60, max_entries=1)
def available_codecs() -> list[str]:
    """Codecs that can run here (estimated-rate twins left out of the picker)."""
    out = []
    for name in list_codecs():
        c = get_codec(name)
        if c.rate_mode == RATE_ESTIMATED:
            continue
        if c.available:
            out.append(name)
    return out


def result_frames(task: str) -> dict[str, tuple]:
    """Every readable results file of ``task`` below the results folder, by its name
    relative to that folder: ``{name: (path, DataFrame)}``; unreadable files are left out."""
    from nicviz.paths import results_dir
    from nicviz.results import list_result_files

    out = {}
    for p in list_result_files(task):
        try:
            out[str(p.relative_to(results_dir()))] = (p, load_results(str(p), p.stat().st_mtime))
        except (NicvizError, OSError):
            continue
    return out


@st.cache_data(show_spinner=False, ttl=30, max_entries=256)
def missing_columns(path: str, mtime: float, needed: tuple[str, ...]) -> str | None:
    """Why a results file cannot be shown (its header lacks ``needed`` columns, or it
    cannot be read), in a few words; ``None`` when it can. Reads the header only."""
    import pandas as pd

    try:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            cols = set(pq.read_schema(path).names)
        else:
            cols = set(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    lost = [c for c in needed if c not in cols]
    return f"no {', '.join(lost)} column{'s' if len(lost) > 1 else ''}" if lost else None


def results_meta(path) -> dict:
    """The metadata beside a results file (``{}`` when there is none or it is unreadable)."""
    import json

    from nicviz.results import meta_path

    try:
        return json.loads(meta_path(path).read_text())
    except (OSError, ValueError):
        return {}


@st.cache_resource(show_spinner=False)
def _codec(name: str):
    """Codec objects (and the neural models they load) live once per server process."""
    return get_codec(name)


@st.cache_data(show_spinner=False, max_entries=48)
def _evaluate(rgb: np.ndarray, codec: str, quality: float):
    # the wavefront minis' encoder reconstruction is their decode, bit for bit (tests/test_wavefront.py):
    # the page skips the second pass
    ev = evaluate(rgb, _codec(codec), quality, parallel_metrics=True, decode=False)
    return ev.row, ev.reconstruction, ev.bitstream


#: finished fits of per-image codecs, by (image digest, codec, quality): minutes of work each
_FITTED: dict[tuple, tuple] = {}
_FITTED_LOCK = threading.Lock()
_FITTED_MAX = 8


def _fitted_evaluate(rgb: np.ndarray, codec: str, quality: float):
    """An overfitted codec on Compare: a progress bar that shows the fit (iteration, bpp,
    PSNR) while the codec learns the picture, with a Cancel button; the result is kept
    for this server (a rerun with the same image, codec and quality shows it at once)."""
    import hashlib
    import time

    key = (hashlib.sha256(np.ascontiguousarray(rgb).tobytes()).hexdigest(), rgb.shape, codec, float(quality))
    with _FITTED_LOCK:
        if key in _FITTED:
            return _FITTED[key], None
    c = _codec(codec)
    if st.session_state.get(f"cancel_fit_{codec}"):  # the rerun Cancel caused: do not start over by itself
        st.button("Fit again", key=f"refit_{codec}", help=f"Start fitting {codec} to this image again.")
        return None, (f"{codec}: fitting cancelled, nothing was kept. Press 'Fit again' to start over, or choose "
                      "another codec or quality.")
    bar = st.progress(0.0, text=f"{codec} at quality {quality:g}: fitting a decoder to this image...")
    st.button("Cancel", key=f"cancel_fit_{codec}", help="Stop fitting this image.")
    started = time.monotonic()

    def progress(it: int, total: int, bpp: float, psnr: float) -> None:
        # each update is also where a rerun (Cancel, another change) stops the fit
        left = (time.monotonic() - started) / it * (total - it)
        bar.progress(it / total, text=f"{codec} q{quality:g}: iteration {it:,} of {total:,}, about {bpp:.3f} bpp, "
                                      f"PSNR {psnr:.2f} dB (the codec is learning the picture; about {left:.0f} s left)")

    try:
        ev = evaluate(rgb, c, quality, parallel_metrics=True, progress=progress)
    except (NicvizError, ValueError, RuntimeError) as exc:
        bar.empty()
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    bar.empty()
    result = (ev.row, ev.reconstruction, ev.bitstream)
    with _FITTED_LOCK:
        _FITTED[key] = result
        while len(_FITTED) > _FITTED_MAX:
            _FITTED.pop(next(iter(_FITTED)))
    return result, None


def cached_evaluate(rgb: np.ndarray, codec: str, quality: float):
    """``((row, reconstruction, bitstream), None)`` or ``(None, message)``; a spinner with
    the elapsed time while it runs (neural codecs take a second or more on a CPU), a
    progress bar for codecs that fit each image (minutes)."""
    c = get_codec(codec)
    if c.fits_per_image:
        return _fitted_evaluate(rgb, codec, quality)
    what = "encoding and decoding a real bitstream" if c.family == "neural" else "compressing"
    try:
        with st.spinner(f"{codec} at quality {quality:g}: {what}, then measuring...", show_time=True):
            return _evaluate(rgb, codec, quality), None
    except (NicvizError, ValueError, RuntimeError) as exc:  # a page shows a message, never a traceback
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def dataset_choices() -> dict[str, str]:
    """Known datasets present under the data root: label -> folder."""
    root = data_root()
    return {} if root is None else _dataset_choices(str(root))


@st.cache_data(show_spinner=False, ttl=300, max_entries=4)
def _dataset_choices(root: str) -> dict[str, str]:  # keyed by the root: a changed $NICVIZ_DATA is seen
    from pathlib import Path

    return {name: str(Path(root) / sub) for name, sub in KNOWN_DATASETS.items() if (Path(root) / sub).is_dir()}


@st.cache_data(show_spinner=False, ttl=300, max_entries=16)
def dataset_images(folder: str) -> list[str]:
    try:
        ds = resolve_dataset(folder)
    except DatasetError:
        return []
    return [ds.image_id(p) for p in ds.files]


@st.cache_data(show_spinner=False, max_entries=32)
def dataset_image(folder: str, image: str) -> tuple[np.ndarray | None, str | None]:
    from pathlib import Path

    try:
        return load_image(Path(folder) / image, name=image), None
    except ImageError as exc:
        return None, str(exc)


def pixel_limit(codecs: list[str]) -> int:
    """The pixels an image may have on this server for ``codecs`` (the smallest limit of their families)."""
    families = {get_codec(c).family for c in codecs if c}
    return MAX_NEURAL_PIXELS if "neural" in families else MAX_PIXELS


def size_guard(rgb: np.ndarray, codecs: list[str], key: str) -> np.ndarray | None:
    """``rgb`` as ``codecs`` may take it on a shared server: unchanged when small enough
    (``NICVIZ_MAX_PIXELS``; ``NICVIZ_MAX_NEURAL_PIXELS`` for a neural codec), else downscaled
    when the user agrees, else ``None`` with a message (a 12 MP image costs gigabytes per
    change with a classical codec, minutes with a neural one)."""
    h, w = rgb.shape[:2]
    limit = pixel_limit(codecs)
    if h * w <= limit:
        return rgb
    scale = (limit / (h * w)) ** 0.5
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    family = "a neural codec" if limit == MAX_NEURAL_PIXELS and limit != MAX_PIXELS else "this server"
    every = " for every codec on this page" if len([c for c in codecs if c]) > 1 else ""
    if st.checkbox(f"Downscale to {nw} x {nh}{every} (this image has {w * h / 1e6:.1f} megapixels; the limit for "
                   f"{family} is {limit / 1e6:.1f})", value=True, key=key):
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.LANCZOS))
    st.error(f"This image is too large for {family} ({w * h / 1e6:.1f} megapixels, limit {limit / 1e6:.1f}): "
             "downscale it" + (" or pick a classical codec." if limit == MAX_NEURAL_PIXELS else "."))
    return None


#: the earlier name of :func:`size_guard`
neural_size_guard = size_guard


def load_upload(data: bytes, name: str) -> tuple[np.ndarray | None, str | None]:
    try:
        return load_image(data, name=name), None
    except ImageError as exc:
        return None, str(exc)


@st.cache_data(show_spinner=False, ttl=30, max_entries=12)
def load_results(path: str, mtime: float):
    """A results file as a DataFrame (``mtime`` in the key refreshes it after a new sweep)."""
    from nicviz.results import read_results

    return read_results(path)


@st.cache_resource(show_spinner="Loading the classifier (once per server)...", show_time=True)
def classifier(spec: str = "isic-effnet-lite0"):
    """A classifier loaded once per server process (``None`` and a message when missing)."""
    from nicviz.tasks.classify.models import get_classifier

    try:
        return get_classifier(spec), None
    except (NicvizError, FileNotFoundError, ValueError, RuntimeError) as exc:
        return None, str(exc)


@st.cache_data(show_spinner=False, max_entries=256)
def classify(rgb: np.ndarray, spec: str = "isic-effnet-lite0") -> tuple[list[str], np.ndarray] | None:
    clf, _ = classifier(spec)
    if clf is None:
        return None
    return clf.classes, clf.predict_proba([rgb])[0]


def remembered(key: str, default, arg: str = "value", options=None) -> dict:
    """The keyword arguments that give widget ``key`` its value: ``{arg: default}`` the
    first time; afterwards the value the user last chose, also after a visit to another
    page (Streamlit drops the state of widgets a page run did not draw; it is put back
    through session state, and then no default is passed, as Streamlit requires). A kept
    value no longer among ``options`` is forgotten."""
    kept = st.session_state.setdefault("_kept_widgets", {})
    if options is not None and key in kept:
        value = kept[key]
        if not all(v in options for v in (value if isinstance(value, list) else [value])):
            kept.pop(key)
    if key in st.session_state:
        kept[key] = st.session_state[key]
        return {}
    if key in kept:
        st.session_state[key] = kept[key]
        return {}
    return {arg: default}


def download_name(image: str, codec: str, quality, suffix: str) -> str:
    """A download's file name: the image's name (any folders and extension dropped, only
    letters, digits, ``-`` and ``_`` kept, at most 40 of them), codec and quality."""
    import re
    from pathlib import PurePosixPath

    stem = PurePosixPath(str(image).replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:40] or "image"
    return f"{stem}-{codec}-q{float(quality):g}{suffix}"


def png_later(rgb: np.ndarray):
    """A download callable: the PNG is encoded only when the button is clicked."""
    return lambda: to_png_bytes(rgb)


@st.cache_data(show_spinner=False, max_entries=16)
def comparison(left: np.ndarray, right: np.ndarray, left_label: str, right_label: str) -> tuple[str, int]:
    from nicviz.plots import comparison_html

    return comparison_html(left, right, left_label, right_label)


def side_by_side(root: str | None, image: str, codec: str, quality: int, what: str = "images"):
    """Two columns with the dataset image and its reconstruction (or a message when the
    image is not on this machine); returns the columns for captions below."""
    from pathlib import Path

    left, right = st.columns(2)
    rgb = None
    if root and Path(root).is_dir():
        rgb, err = dataset_image(root, image)
        if err:
            st.error(err)
    if rgb is None:
        st.info(f"The {what} are not on this machine (data folder missing); results only.")
        return left, right
    res, err = cached_evaluate(rgb, codec, quality)
    left.image(rgb, caption="original", width="stretch")
    if res:
        right.image(res[1], caption=f"{codec} q{quality:g}: {res[0]['bpp']:.3f} bpp", width="stretch")
    else:
        right.error(err)
    return left, right


def quality_picker(codec: str, label: str, key: str, container=st, default_index: int | None = None) -> int | float:
    """A quality widget on the codec's scale: a slider for classical codecs, the qualities
    that are actually available for neural ones."""
    c = get_codec(codec)
    if c.scale.continuous:  # a variable-rate model: any quality in its range
        d = c.available_qualities() or list(c.scale.default)
        value = float(d[len(d) // 2] if default_index is None else d[min(default_index, len(d) - 1)])
        q = container.slider(f"{label} ({c.scale.meaning})", float(c.scale.low), float(c.scale.high), value,
                             step=0.25, key=key)
        return int(q) if float(q).is_integer() else float(q)
    if c.family == "neural":
        options: list[int] = c.available_qualities() or list(c.scale.default)
        idx = len(options) // 2 if default_index is None else min(default_index, len(options) - 1)
        return int(container.select_slider(f"{label} ({c.scale.meaning})", options=options, value=options[idx],
                                           key=key))
    steps = c.scale.default
    value = steps[len(steps) // 2] if default_index is None else steps[min(default_index, len(steps) - 1)]
    return int(container.slider(f"{label} ({c.scale.meaning})", c.scale.low, c.scale.high, value, key=key))
