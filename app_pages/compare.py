"""Compare: one image through one or two codecs, side by side, with metrics and maps."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from nicviz.codecs import get_codec
from nicviz.dashboard.widgets import (
    available_codecs,
    cached_evaluate,
    comparison,
    dataset_choices,
    dataset_image,
    dataset_images,
    download_name,
    error_maps_later,
    error_scale,
    load_upload,
    png_later,
    quality_picker,
    sample_image,
    size_guard,
)
from nicviz.datasets import BUILTIN_SAMPLES
from nicviz.metrics import METRICS
from nicviz.plots import zoom_crop, zoom_marker

st.title("Compare")
st.caption("Compress one image, see the reconstruction beside the original, and measure it.")

rgb, name = None, ""
sources = ["Built-in sample", "Dataset image", "Upload"]
source = st.radio("Image source", sources, horizontal=True, key="source")
if source == "Built-in sample":
    name = st.selectbox("Sample (photographs shipped with scikit-image)", BUILTIN_SAMPLES, key="sample")
    rgb = sample_image(name)
elif source == "Dataset image":
    choices = dataset_choices()
    if not choices:
        st.info("No data folder found: set NICVIZ_DATA or use a built-in sample or an upload.")
    else:
        ds = st.selectbox("Dataset", list(choices), key="dataset")
        images = dataset_images(choices[ds])
        name = st.selectbox("Image", images, key="dataset_image")
        rgb, err = dataset_image(choices[ds], name)
        if err:
            st.error(err)
else:
    up = st.file_uploader("Image file (PNG, JPEG, WebP, TIFF, ...)", key="upload")
    if up is not None:
        name = up.name
        rgb, err = load_upload(up.getvalue(), up.name)
        if err:
            st.error(err)


def codec_picker(label: str, key: str, default: str = "jpeg") -> tuple[str, int]:
    codecs = available_codecs()
    c1, c2 = st.columns([1, 2])
    codec = c1.selectbox(f"{label} codec", codecs, index=codecs.index(default) if default in codecs else 0,
                         key=f"{key}_codec")
    return codec, quality_picker(codec, f"{label} quality", f"{key}_quality", c2)


codec_a, q_a = codec_picker("A", "a")
ab = st.toggle("A/B: compare with a second codec", key="ab")
codec_b, q_b = codec_picker("B", "b", "webp") if ab else (None, None)

if rgb is None:
    st.stop()
rgb = size_guard(rgb, [codec_a, codec_b], "cmp_downscale")
if rgb is None:
    st.stop()

results = {}
for label, codec, q in (("A", codec_a, q_a), ("B", codec_b, q_b)):
    if codec is None:
        continue
    res, err = cached_evaluate(rgb, codec, q)
    if err:
        st.error(err)
    else:
        results[label] = (codec, q, *res)
if not results:
    st.stop()

# the error maps of the codec they show (the radio further down keeps its last choice) start now,
# in a worker thread, and are ready when the page reaches them
target = "A" if "A" in results else "B"
if len(results) == 2 and st.session_state.get("err_of") in results:
    target = st.session_state["err_of"]
# one brightness scale for A and B (the larger of their 99.5th percentiles): the maps compare by eye
shared = error_scale(rgb, [r[3] for r in results.values()]) if len(results) == 2 else None
maps = error_maps_later(rgb, results[target][3], shared)

first = results.get("A") or results["B"]
views = {"original | A": ("original", "A")}
if len(results) == 2:
    views = {"A | B": ("A", "B"), "original | A": ("original", "A"), "original | B": ("original", "B")}
st.subheader("Before / after")
view = st.radio("Left | right", list(views), horizontal=True, key="cmp_view") if len(views) > 1 else list(views)[0]


def _side(which: str):
    if which == "original" or which not in results:
        return rgb, "original"
    r = results[which]
    return r[3], f"{which}: {r[0]} q{r[1]:g}"


(left_img, left_label), (right_img, right_label) = (_side(w) for w in views[view])
html, height = comparison(left_img, right_img, left_label, right_label)
st.caption("Drag or click on the picture to move the divider (or use the slider underneath).")
st.iframe(html, height=height)

st.subheader("Metrics")
keys = ["bytes", "bpp", *METRICS, "encode_s", "decode_s", "rate_mode"]
table = pd.DataFrame([{"": label, "codec": r[0], "quality": r[1], **{k: r[2][k] for k in keys}}
                      for label, r in results.items()])
st.dataframe(table, hide_index=True, column_config={
    "codec": st.column_config.TextColumn("codec", width="medium"),
    "rate_mode": st.column_config.TextColumn("rate", help="bitstream: measured from the bytes written"),
    "decode_s": st.column_config.NumberColumn("decode_s", help="Empty for the neural minis: their encoder's own "
                                              "reconstruction is what the decoder gives, bit for bit (tested), so "
                                              "the page skips the second pass. Sweeps always decode.")})
for label, r in results.items():
    st.markdown(f"**{label}** `{r[0]}` q{r[1]}: **{r[2]['bpp']:.3f} bpp**, PSNR **{r[2]['psnr']:.2f} dB**, "
                f"SSIM {r[2]['ssim']:.4f}", help="All metrics on RGB, reference first.")

st.subheader("Zoom (same region in every image)")
z1, z2, z3 = st.columns(3)
zoom = z1.select_slider("Zoom", [1, 2, 4, 8, 16], value=4, key="zoom")
cx = z2.slider("Centre x", 0.0, 1.0, 0.5, key="zoom_x")
cy = z3.slider("Centre y", 0.0, 1.0, 0.5, key="zoom_y")
panels = [("original", rgb)] + [(f"{label}: {r[0]} q{r[1]:g}", r[3]) for label, r in results.items()]
cols = st.columns([1] + [2] * len(panels))
cols[0].image(zoom_marker(rgb, cx, cy, zoom), caption="zoomed region", width="stretch")
for col, (caption, img) in zip(cols[1:], panels, strict=True):
    col.image(zoom_crop(img, cx, cy, zoom, 420), caption=caption, width="stretch")

st.subheader("Where the error is")
if len(results) == 2:
    chosen = st.radio("Error of", ["A", "B"], horizontal=True, key="err_of",
                      format_func=lambda k: f"{k}: {results[k][0]} q{results[k][1]:g}")
    if chosen != target:  # not expected (the radio's value was read above), but never show the other map
        target, maps = chosen, error_maps_later(rgb, results[chosen][3], shared)
err_cols = st.columns(2)
emap, smap, vmax = maps.result()
who = f"{target}: {results[target][0]} q{results[target][1]:g}"
err_cols[0].image(emap, caption=f"{who}, absolute error, mean over RGB (bright = {vmax:.0f} or more)",
                  width="stretch")
err_cols[1].image(smap, caption=f"{who}, 1 - SSIM map (bright = structure lost)", width="stretch")

st.subheader("Downloads")
for label, r in results.items():
    d1, d2 = st.columns(2)
    d1.download_button(f"{label}: reconstruction (PNG)", png_later(r[3]), file_name=download_name(name, r[0], r[1], ".png"),
                       mime="image/png", key=f"dl_png_{label}")
    if r[4] is not None:
        d2.download_button(f"{label}: bitstream ({len(r[4])} bytes)", r[4],
                           file_name=download_name(name, r[0], r[1], get_codec(r[0]).suffix), key=f"dl_bin_{label}")
