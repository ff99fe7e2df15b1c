"""Compare page: one image, one codec and quality, reconstruction and metrics."""

from __future__ import annotations

import numpy as np
import streamlit as st

from nicviz.codecs import CodecError, get_codec, list_codecs
from nicviz.datasets import BUILTIN_SAMPLES, builtin_sample
from nicviz.evaluate import evaluate
from nicviz.images import ImageError, load_image, to_png_bytes
from nicviz.metrics import abs_error_map


@st.cache_data(show_spinner=False)
def _sample(name: str) -> np.ndarray:
    return builtin_sample(name)


@st.cache_data(show_spinner=False, max_entries=64)
def _evaluate(rgb: np.ndarray, codec: str, quality: int):
    ev = evaluate(rgb, codec, quality)
    return ev.row, ev.reconstruction, ev.bitstream


st.title("Compare")
source = st.radio("Image", ["Built-in sample", "Upload"], horizontal=True)
rgb = None
if source == "Built-in sample":
    rgb = _sample(st.selectbox("Sample", BUILTIN_SAMPLES))
else:
    up = st.file_uploader("Image file", type=None)
    if up is not None:
        try:
            rgb = load_image(up.getvalue(), name=up.name)
        except ImageError as exc:
            st.error(str(exc))

available = [c for c in list_codecs() if get_codec(c).available]
codec_name = st.selectbox("Codec", available, index=0)
codec = get_codec(codec_name)
default = codec.scale.default[len(codec.scale.default) // 2]
quality = st.slider(f"Quality ({codec.scale.meaning})", codec.scale.low, codec.scale.high, default)

if rgb is not None:
    try:
        with st.spinner(f"Compressing with {codec_name}..."):
            row, recon, bitstream = _evaluate(rgb, codec_name, quality)
    except CodecError as exc:
        st.error(str(exc))
    else:
        left, right = st.columns(2)
        left.image(rgb, caption=f"Original {rgb.shape[1]}x{rgb.shape[0]}", use_container_width=True)
        right.image(recon, caption=f"{codec_name} q{quality}: {row['bpp']:.3f} bpp", use_container_width=True)
        st.subheader("Metrics")
        keys = ["bytes", "bpp", "psnr", "ssim", "ms_ssim", "vif", "mse", "mae", "encode_s", "decode_s"]
        st.dataframe({k: [row[k]] for k in keys}, hide_index=True)
        err = abs_error_map(rgb, recon)
        st.image(np.clip(err * 255.0 / max(err.max(), 1e-9), 0, 255).astype(np.uint8),
                 caption="Absolute error (scaled to the maximum)", use_container_width=True)
        c1, c2 = st.columns(2)
        c1.download_button("Reconstruction (PNG)", to_png_bytes(recon), file_name=f"{codec_name}-q{quality}.png")
        if bitstream is not None:
            c2.download_button("Bitstream", bitstream, file_name=f"{codec_name}-q{quality}.bin")
