"""Plotly figures and image helpers shared by the dashboard pages and the CLI."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from PIL import Image

__all__ = ["zoom_region", "zoom_marker", "classifiers_figure", "reference_codec", "codec_color", "colorize", "zoom_crop", "comparison_html", "rd_figure", "curve_figure", "METRIC_LABELS"]

from nicviz.metrics import METRIC_LABELS  # noqa: E402  (every metric's axis label, from the registry)

_REF_KEYS = {"psnr": "psnr-rgb", "ms_ssim": "ms-ssim-rgb", "ms_ssim_db": "ms-ssim-rgb"}
_INFERNO = ["#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925", "#fb9b06",
            "#f7d13d", "#fcffa4"]


#: 20 distinguishable colours (Tableau 10, then darker and lighter companions)
_PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
            "#e6550d", "#31a354", "#756bb1", "#636363"]
#: every codec nicviz knows and every CompressAI reference family: a colour of its own
_FIXED = {"jpeg": 0, "webp": 1, "avif": 2, "jpeg2000": 3, "jpegxl": 4, "heif": 5, "cheng2020-anchor-mini": 6,
          "cheng2020-attn-mini": 7, "cheng2020-anchor": 8, "cheng2020-attn": 9, "mbt2018-mean": 10,
          "mbt2018": 11, "bmshj2018-hyperprior": 12, "bmshj2018-factorized": 13, "bpg": 14, "vtm": 15,
          "hm": 19}
#: the overfitted codec, nicviz's own neural codec, stands apart from every other curve (black)
_OWN = {"overfitted": "#000000", "overfitted-fast": "#444444", "overfitted-slow": "#a6761d"}


def codec_color(codec: str) -> str:
    """The same colour for a codec in every chart (a user's curve, ``jpeg (my-sweep)``, gets
    another); a per-image codec labelled with its effort, ``overfitted (3,000 it., 890 MAC/px)``,
    keeps its own."""
    effort = re.fullmatch(r"(.+) \([\d,]+ it\.(?:, [\d,]+ MAC/px)?\)", codec)
    if effort and (effort.group(1) in _FIXED or effort.group(1) in _OWN):
        codec = effort.group(1)
    if codec in _OWN:
        return _OWN[codec]
    if codec in _FIXED:
        return _PALETTE[_FIXED[codec]]
    return _PALETTE[sum(map(ord, codec)) % len(_PALETTE)]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def colorize(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Map a 2-D array to uint8 RGB with the inferno colour scale (``vmin`` dark, ``vmax`` bright)."""
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in _INFERNO], dtype=np.float64)
    t = np.clip((np.asarray(values, dtype=np.float64) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    pos = t * (len(stops) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    frac = (pos - lo)[..., None]
    return np.rint(stops[lo] * (1 - frac) + stops[hi] * frac).astype(np.uint8)


def zoom_region(shape: tuple[int, ...], cx: float, cy: float, zoom: float) -> tuple[int, int, int, int]:
    """``(x0, y0, width, height)`` of the region :func:`zoom_crop` shows."""
    h, w = shape[:2]
    cw, ch = max(1, int(round(w / zoom))), max(1, int(round(h / zoom)))
    x0 = int(round(min(max(cx * w - cw / 2, 0), w - cw)))
    y0 = int(round(min(max(cy * h - ch / 2, 0), h - ch)))
    return x0, y0, cw, ch


def zoom_marker(rgb: np.ndarray, cx: float, cy: float, zoom: float, out_w: int = 240) -> np.ndarray:
    """A small copy of ``rgb`` with the zoomed region outlined (where the zoom looks)."""
    from PIL import ImageDraw

    x0, y0, cw, ch = zoom_region(rgb.shape, cx, cy, zoom)
    scale = out_w / rgb.shape[1]
    im = Image.fromarray(rgb).resize((out_w, max(1, int(round(rgb.shape[0] * scale)))), Image.Resampling.BILINEAR)
    box = [x0 * scale, y0 * scale, (x0 + cw) * scale - 1, (y0 + ch) * scale - 1]
    draw = ImageDraw.Draw(im)
    draw.rectangle(box, outline=(255, 255, 255), width=3)
    draw.rectangle(box, outline=(230, 0, 0), width=1)
    return np.asarray(im)


def zoom_crop(rgb: np.ndarray, cx: float, cy: float, zoom: float, out_w: int = 480) -> np.ndarray:
    """The region around the relative centre ``(cx, cy)`` (0..1) at ``zoom``x, pixels enlarged
    without smoothing so that compression artefacts stay visible. The same arguments give
    the same region in every image of the same size (synchronised zoom)."""
    x0, y0, cw, ch = zoom_region(rgb.shape, cx, cy, zoom)
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    scale = out_w / cw
    return np.asarray(Image.fromarray(crop).resize((out_w, max(1, int(round(ch * scale)))), Image.Resampling.NEAREST))


#: PNG data URLs of recent images, by content: the original of a Compare view is the same
#: picture on every quality change, so its encoding (about 0.06 s at 768 x 512) is done once
_URLS: dict[tuple, str] = {}
_URLS_LOCK = threading.Lock()  # Streamlit serves each session from a thread of its own


def _data_url(rgb: np.ndarray) -> str:
    rgb = np.ascontiguousarray(rgb)
    key = (rgb.shape, str(rgb.dtype), hashlib.blake2b(rgb.data, digest_size=16).digest())
    with _URLS_LOCK:
        url = _URLS.get(key)
    if url is None:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        with _URLS_LOCK:
            while len(_URLS) >= 8:  # a handful of recent pictures, oldest dropped first
                _URLS.pop(next(iter(_URLS)))
            _URLS[key] = url
    return url


def comparison_html(left: np.ndarray, right: np.ndarray, left_label: str, right_label: str,
                    width: int = 760) -> tuple[str, int]:
    """Self-contained before/after slider (no network, no CDN): HTML and its height in px."""
    h, w = left.shape[:2]
    height = int(round(width * h / w))
    html = f"""
<div id="cmp" style="position:relative;width:{width}px;height:{height}px;user-select:none;touch-action:none;cursor:ew-resize;font-family:sans-serif">
  <img src="{_data_url(right)}" draggable="false" style="position:absolute;left:0;top:0;width:{width}px;height:{height}px;image-rendering:pixelated;pointer-events:none">
  <img id="top" src="{_data_url(left)}" draggable="false" style="position:absolute;left:0;top:0;width:{width}px;height:{height}px;clip-path:inset(0 50% 0 0);image-rendering:pixelated;pointer-events:none">
  <div id="bar" style="position:absolute;top:0;left:50%;width:2px;height:100%;background:#fff;box-shadow:0 0 3px #000;pointer-events:none"></div>
  <span style="position:absolute;left:6px;top:6px;background:rgba(0,0,0,.6);color:#fff;padding:2px 6px;font-size:13px">{left_label}</span>
  <span style="position:absolute;right:6px;top:6px;background:rgba(0,0,0,.6);color:#fff;padding:2px 6px;font-size:13px">{right_label}</span>
</div>
<input id="pos" type="range" min="0" max="100" value="50" style="width:{width}px" aria-label="before/after position">
<script>
const pos = document.getElementById('pos'), top_ = document.getElementById('top'), bar = document.getElementById('bar');
function upd(v) {{ top_.style.clipPath = 'inset(0 ' + (100 - v) + '% 0 0)'; bar.style.left = v + '%'; }}
pos.addEventListener('input', e => upd(e.target.value));
// pointer events with capture: a press moves the divider there, a drag follows the pointer
// even outside the picture, and the browser never starts dragging the image itself
const cmp = document.getElementById('cmp');
function at(e) {{
  const r = cmp.getBoundingClientRect();
  const v = Math.max(0, Math.min(100, 100 * (e.clientX - r.left) / r.width));
  pos.value = Math.round(v); upd(v); }}
cmp.addEventListener('pointerdown', e => {{ cmp.setPointerCapture(e.pointerId); at(e); e.preventDefault(); }});
cmp.addEventListener('pointermove', e => {{ if (cmp.hasPointerCapture(e.pointerId)) at(e); }});
cmp.addEventListener('pointerup', e => {{ if (cmp.hasPointerCapture(e.pointerId)) cmp.releasePointerCapture(e.pointerId); }});
cmp.addEventListener('dragstart', e => e.preventDefault());
</script>"""
    return html, height + 40


def _spread(sub: pd.DataFrame, y: str, how: str) -> tuple[pd.Series, pd.Series]:
    g = sub.groupby("quality")[y]
    if how == "std":
        return g.mean() - g.std().fillna(0), g.mean() + g.std().fillna(0)
    return g.min(), g.max()


def reference_codec(label: str) -> str:
    """The nicviz codec a CompressAI reference curve stands for (for its colour)."""
    low = label.lower().removeprefix("compressai-")
    for name in ("cheng2020-anchor", "cheng2020-attn", "mbt2018-mean", "mbt2018", "bmshj2018-hyperprior",
                 "bmshj2018-factorized", "jpeg2000", "jpeg", "webp", "av1", "bpg", "vtm", "hm"):
        if low.startswith(name):
            return {"av1": "avif"}.get(name, name)
    return low


def rd_figure(df: pd.DataFrame, metric: str = "psnr", codecs: list[str] | None = None,
              references: dict[str, dict] | None = None, spread: str = "minmax",
              max_bpp: float | None = None) -> go.Figure:
    """bpp against ``metric``: mean per codec and quality, per-image spread as a band,
    CompressAI reference curves dashed."""
    fig = go.Figure()
    y = "ms_ssim" if metric == "ms_ssim_db" else metric

    def tr(v):
        v = np.asarray(v, dtype=float)
        return -10 * np.log10(np.clip(1 - v, 1e-12, None)) if metric == "ms_ssim_db" else v

    codecs = codecs if codecs is not None else sorted(df["codec"].unique())
    for codec in codecs:
        sub = df[df["codec"] == codec].dropna(subset=[y, "bpp"])
        if sub.empty:
            continue
        mean = sub.groupby("quality")[["bpp", y]].mean().sort_values("bpp")
        if spread != "none" and sub["image"].nunique() > 1:
            lo, hi = _spread(sub, y, spread)
            lo, hi = lo.reindex(mean.index), hi.reindex(mean.index)
            fig.add_trace(go.Scatter(x=list(mean["bpp"]) + list(mean["bpp"][::-1]),
                                     y=list(tr(hi)) + list(tr(lo)[::-1]), fill="toself", mode="lines",
                                     fillcolor=_rgba(codec_color(codec), 0.15), line={"width": 0},
                                     hoverinfo="skip", showlegend=False, name=f"{codec} spread"))
        fig.add_trace(go.Scatter(x=mean["bpp"], y=tr(mean[y]), mode="lines+markers", name=codec,
                                 line={"color": codec_color(codec)},
                                 text=[f"q={q}" for q in mean.index], hovertemplate="%{text}<br>%{x:.3f} bpp, %{y:.3f}"))
    key = _REF_KEYS.get(metric)
    for label, ref in (references or {}).items():
        res = ref["results"]
        if key and key in res and len(res[key]) == len(res["bpp"]):
            # dashed, in the colour of the codec it stands for: the same in every view
            fig.add_trace(go.Scatter(x=res["bpp"], y=tr(res[key]), mode="lines",
                                     line={"dash": "dash", "color": codec_color(reference_codec(label))},
                                     name=f"{ref.get('name', label)} (CompressAI)"))
    fig.update_layout(xaxis_title="bits per pixel", yaxis_title=METRIC_LABELS.get(metric, metric),
                      legend_title="codec", margin={"t": 30}, height=520)
    if max_bpp is not None:
        fig.update_xaxes(range=[0, max_bpp])
    return fig


def curve_figure(table: pd.DataFrame, y: str, y_title: str, lo: str | None = None, hi: str | None = None) -> go.Figure:
    """One line per codec of ``table[y]`` against ``table['bpp']`` with an optional band."""
    fig = go.Figure()
    for codec, sub in table.sort_values("bpp").groupby("codec"):
        if lo and hi:
            fig.add_trace(go.Scatter(x=list(sub["bpp"]) + list(sub["bpp"][::-1]),
                                     y=list(sub[hi]) + list(sub[lo][::-1]), fill="toself", mode="lines",
                                     fillcolor=_rgba(codec_color(codec), 0.15), line={"width": 0},
                                     hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=sub["bpp"], y=sub[y], mode="lines+markers", name=codec,
                                 line={"color": codec_color(codec)},
                                 text=[f"q={q}" for q in sub["quality"]],
                                 hovertemplate="%{text}<br>%{x:.3f} bpp, %{y:.3f}"))
    fig.update_layout(xaxis_title="bits per pixel", yaxis_title=y_title, margin={"t": 30}, height=440)
    return fig


_DASHES = ("solid", "dash", "dot", "dashdot")


def classifiers_figure(table: pd.DataFrame, names: dict[str, str] | None = None) -> go.Figure:
    """Accuracy against bpp, one line per classifier (``table``: classifier, bpp, accuracy,
    accuracy_ref, quality, optional acc_lo/acc_hi band), each with its accuracy on the
    originals as a dotted level."""
    names = names or {}
    fig = go.Figure()
    for k, (clf, sub) in enumerate(table.sort_values("bpp").groupby("classifier", sort=False)):
        color = _PALETTE[k % len(_PALETTE)]
        label = names.get(clf, clf)
        if {"acc_lo", "acc_hi"} <= set(sub.columns):
            fig.add_trace(go.Scatter(x=list(sub["bpp"]) + list(sub["bpp"][::-1]),
                                     y=list(sub["acc_hi"]) + list(sub["acc_lo"][::-1]), fill="toself",
                                     mode="lines", fillcolor=_rgba(color, 0.12), line={"width": 0},
                                     hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=sub["bpp"], y=sub["accuracy"], mode="lines+markers", name=label,
                                 line={"color": color, "dash": _DASHES[k % len(_DASHES)]},
                                 text=[f"quality {q:g}" for q in sub["quality"]],
                                 hovertemplate=label + "<br>%{text}: %{x:.3f} bpp, %{y:.1f} %<extra></extra>"))
        fig.add_hline(y=float(sub["accuracy_ref"].iloc[0]), line={"color": color, "dash": "dot", "width": 1},
                      annotation_text=f"{label}, originals",
                      # levels of several classifiers lie close: their labels take turns at the corners
                      annotation_position=("top left", "bottom right", "top right", "bottom left")[k % 4],
                      annotation_font_color=color)
    fig.update_layout(xaxis_title="bits per pixel (log scale)", yaxis_title="top-1 accuracy (%)", margin={"t": 30},
                      height=440, xaxis_type="log", legend={"orientation": "h", "y": -0.2})
    return fig
