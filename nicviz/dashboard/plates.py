"""The Licence plates page's parts: the OCR engine and reader shared by a server, the
demo plate folder, and the gallery of plates before and after compression."""

from __future__ import annotations

import numpy as np
import streamlit as st

from nicviz.dashboard.widgets import cached_evaluate, comparison, dataset_image, results_meta

__all__ = ["ocr_engine", "demo_plate_folder", "read_plate", "plate_gallery", "stored_reconstruction", "per_image_sweep"]


@st.cache_resource(show_spinner="Loading the OCR engine...")
def ocr_engine():
    """The built-in OCR engine, loaded once per server process."""
    from nicviz.tasks.ocr.engines import get_engine

    return get_engine("rapidocr")


@st.cache_resource(show_spinner=False)
def demo_plate_folder() -> str:
    """Generated plates with known text (``labels.csv``) for the demo without a data folder."""
    import atexit
    import shutil
    import tempfile

    from nicviz.tasks.ocr.synthetic import write_plate_folder

    folder = tempfile.mkdtemp(prefix="nicviz-plates-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the server's own scratch: gone when it stops
    # the last six are small, blurred or noisy: at low rates compression makes OCR fail on them
    return str(write_plate_folder(folder, count=12, seed=7, hard=6))


@st.cache_data(show_spinner=False, max_entries=256)
def read_plate(rgb: np.ndarray) -> tuple[str, float]:
    from nicviz.tasks.ocr.plates import select_plate

    return select_plate(ocr_engine().read(rgb))


def per_image_sweep(path) -> bool:
    """A results file of a codec that fits each image (the overfitted codecs): its sweep
    grows across sessions and its rows are shown from their stored bitstreams."""
    from nicviz.codecs import get_codec, list_codecs

    known = set(list_codecs())
    return any(c in known and getattr(get_codec(c), "fits_per_image", False)
               for c in results_meta(path).get("codecs", []))


@st.cache_data(show_spinner=False, max_entries=64)
def stored_reconstruction(results_file: str, image: str, codec: str, quality: float):
    """``(rgb, bpp)`` of one row decoded from the bitstream its sweep kept beside the
    results file (``<file>-bitstreams/``, as ``nicviz sweep --bitstreams`` writes it), or
    ``(None, None)``: a per-image codec's rows are shown from their own streams, never
    fitted again for display (a minute a plate)."""
    from pathlib import Path

    from nicviz.codecs import CodecError, get_codec
    from nicviz.sweep import bitstream_path

    folder = Path(results_file).with_name(Path(results_file).stem + "-bitstreams")
    stream = bitstream_path(folder, image, codec, quality)
    try:
        if not stream.resolve().is_relative_to(folder.resolve()) or not stream.is_file():
            return None, None
        data = stream.read_bytes()
        rgb = get_codec(codec).decode(data)
    except (OSError, ValueError, CodecError):
        return None, None
    return rgb, 8.0 * len(data) / (rgb.shape[0] * rgb.shape[1])


def _compressed(rgb, image: str, codec: str, quality, source: str | None):
    """``(reconstruction, bpp)`` for the gallery: coded now, or for a per-image codec decoded
    from its sweep's stored bitstream (``source``: its results file); ``(None, None)`` if neither."""
    from nicviz.codecs import get_codec

    if getattr(get_codec(codec), "fits_per_image", False):
        return stored_reconstruction(source, image, codec, float(quality)) if source else (None, None)
    res, _ = cached_evaluate(rgb, codec, quality)
    return (res[1], res[0]["bpp"]) if res else (None, None)


def plate_gallery(rows, root: str | None, codec: str, quality, per_page: int = 8, source: str | None = None) -> None:
    """A grid of plates (original above, reconstruction below, each reading with its
    differences from the label highlighted), ``per_page`` at a time with previous / next;
    "Open" shows a plate large in a dialog. ``source``: the results file the rows come from
    (a per-image codec's reconstructions are decoded from the bitstreams kept beside it)."""
    from pathlib import Path

    from nicviz.tasks.ocr.plates import diff_html

    rows = rows.reset_index(drop=True)
    pages = max(1, -(-len(rows) // per_page))
    key = f"pl_gallery_page_{codec}_{quality}"
    page = min(st.session_state.get(key, 0), pages - 1)

    def turn(by: int) -> None:  # a callback: the page changes before the rerun draws the buttons
        st.session_state[key] = min(max(0, page + by), pages - 1)

    b1, b2, b3 = st.columns([1, 3, 1])
    b1.button("Previous", key="pl_prev", disabled=page == 0, on_click=turn, args=(-1,))
    b3.button("Next", key="pl_next", disabled=page >= pages - 1, on_click=turn, args=(1,))
    b2.markdown(f"<div style='text-align:center'>plates {page * per_page + 1}-{min(len(rows), (page + 1) * per_page)}"
                f" of {len(rows)}</div>", unsafe_allow_html=True)
    here = root and Path(root).is_dir()
    if not here:
        st.info("The plate images are not on this machine (data folder missing): readings only.")
    cols = st.columns(4)
    for i, r in rows.iloc[page * per_page:(page + 1) * per_page].iterrows():
        col = cols[(i - page * per_page) % 4]
        label = str(r["text"])
        if here and root:
            rgb, err = dataset_image(root, str(r["image"]))
            if rgb is not None:
                col.image(rgb, caption="original", width="stretch")
                recon, _ = _compressed(rgb, str(r["image"]), codec, quality, source)
                if recon is not None:
                    col.image(recon, caption=f"{codec} q{quality:g}", width="stretch")
                else:
                    col.caption(f"{codec} q{quality:g}: its bitstream was not kept (readings only)")
        # the raw readings: an empty one (NaN in the results file) must not become the letters "nan"
        col.markdown(f"label `{label}`  \nthe original reads {diff_html(label, r['read_ref'])}  \n"
                     f"compressed, it reads {diff_html(label, r['read'])}", unsafe_allow_html=True)
        if col.button("Open", key=f"pl_open_{i}", help="Show this plate large, original against compressed."):
            _plate_dialog(r, root if here else None, codec, quality, source)


@st.dialog("Plate, pixel for pixel", width="large")
def _plate_dialog(r, root: str | None, codec: str, quality, source: str | None = None) -> None:
    """One plate enlarged in a dialog over the gallery (where the user is looking), with
    both readings against the label."""
    from nicviz.tasks.ocr.plates import diff_html

    image = str(r["image"])
    st.markdown(f"**{image}**: drag across the plate to compare original and compressed.")
    rgb = dataset_image(root, image)[0] if root else None
    recon, bpp = _compressed(rgb, image, codec, quality, source) if rgb is not None else (None, None)
    if rgb is not None and recon is not None:
        html, height = comparison(rgb, recon, "original", f"{codec} q{quality:g}: {bpp:.3f} bpp")
        st.iframe(html, height=height)
    else:
        st.info("The plate image is not on this machine: readings only.")
    o, c = st.columns(2)
    label = str(r["text"])
    o.markdown(f"label `{label}`  \nthe original reads {diff_html(label, r['read_ref'])}  \n"
               f"CER {float(r['cer_ref']):.2f}", unsafe_allow_html=True)
    c.markdown(f"label `{label}`  \ncompressed, it reads {diff_html(label, r['read'])}  \n"
               f"CER {float(r['cer']):.2f}", unsafe_allow_html=True)
