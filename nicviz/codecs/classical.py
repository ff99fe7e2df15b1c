"""Classical codecs through Pillow and its plugins.

Quality scales:

* ``jpeg``: Pillow/libjpeg-turbo quality 1..100, 4:2:0 chroma subsampling (Pillow's
  default, as in CompressAI's reference ``jpeg.json``), baseline Huffman tables.
* ``webp``: libwebp lossy quality 0..100, method 4 (Pillow's default).
* ``avif``: Pillow's native AVIF (libavif/aom) quality 0..100, speed 6, 4:2:0.
* ``jpeg2000``: OpenJPEG through Pillow, irreversible 9/7 wavelet with the colour
  transform, one quality layer whose target PSNR in dB is the quality (20..60, higher
  is better).
* ``jpegxl``: pillow-jxl-plugin (libjxl) quality 0..99 (distance mapped by libjxl).
* ``heif``: pillow-heif (libheif/x265 HEVC) quality 0..100.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, features

from nicviz.codecs.base import Codec, CodecError, QualityScale, register_codec

__all__ = ["PillowCodec"]


_SUFFIXES = {"JPEG": ".jpg", "WEBP": ".webp", "AVIF": ".avif", "JPEG2000": ".jp2", "JXL": ".jxl", "HEIF": ".heic"}


class PillowCodec(Codec):
    """A codec implemented by ``PIL.Image.save`` / ``PIL.Image.open``."""

    family = "classical"
    fmt = ""
    plugin: str | None = None  # importable module that registers the format

    def __init__(self, name: str, fmt: str, scale: QualityScale, description: str,
                 plugin: str | None = None, feature: str | None = None,
                 options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.fmt = fmt
        self.suffix = _SUFFIXES.get(fmt, ".bin")
        self.scale = scale
        self.description = description
        self.plugin = plugin
        self.feature = feature
        self.options = options or {}
        self._why: str | None = None

    def availability(self) -> tuple[bool, str]:
        if self._why is None:
            self._why = ""
            if self.plugin:
                try:
                    module = __import__(self.plugin)
                    if hasattr(module, "register_heif_opener"):
                        module.register_heif_opener()
                except ImportError as exc:
                    self._why = f"Python package {self.plugin!r} is not installed ({exc})"
            if self.feature and not features.check(self.feature):
                self._why = f"this Pillow build has no {self.feature} support"
        return (not self._why, self._why)

    def save_kwargs(self, quality: float) -> dict[str, Any]:
        return {"quality": quality, **self.options}

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        self.require_available()
        q = self.check_quality(quality)
        _check_rgb(rgb)
        buf = io.BytesIO()
        Image.fromarray(rgb, "RGB").save(buf, format=self.fmt, **self.save_kwargs(q))
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        self.require_available()
        try:
            im = Image.open(io.BytesIO(data))
            im.load()
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
        except Exception as exc:  # corrupt bitstreams come in many exception types
            raise CodecError(f"{self.name}: cannot decode bitstream ({exc})") from None


class Jpeg2000Codec(PillowCodec):
    def save_kwargs(self, quality: float) -> dict[str, Any]:
        # mct=1: code YCbCr, not R, G, B separately (Pillow's default is no colour transform,
        # which costs JPEG 2000 about 40 % more bits on Kodak)
        return {"quality_mode": "dB", "quality_layers": [float(quality)], "irreversible": True, "mct": 1}


def _check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise CodecError("codecs take uint8 H x W x 3 arrays (use nicviz.images.load_image)")


_Q100 = QualityScale(0, 100, (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95), "higher is better")

register_codec("jpeg", lambda: PillowCodec(
    "jpeg", "JPEG", QualityScale(1, 100, tuple(range(5, 100, 5)), "libjpeg quality, higher is better"),
    "JPEG (Pillow, libjpeg-turbo, 4:2:0)", feature="jpg"))
register_codec("webp", lambda: PillowCodec(
    "webp", "WEBP", _Q100, "WebP lossy (Pillow, libwebp, method 4)", feature="webp"))
register_codec("avif", lambda: PillowCodec(
    "avif", "AVIF", _Q100, "AVIF (Pillow native, libavif, speed 6, 4:2:0)", feature="avif"))
register_codec("jpeg2000", lambda: Jpeg2000Codec(
    "jpeg2000", "JPEG2000",
    QualityScale(20, 60, (24, 26, 28, 30, 32, 34, 36, 38, 40, 42), "target PSNR in dB of the single layer"),
    "JPEG 2000 (Pillow, OpenJPEG, 9/7 wavelet)", feature="jpg_2000"))
register_codec("jpegxl", lambda: PillowCodec(
    "jpegxl", "JXL", QualityScale(0, 99, (10, 20, 30, 40, 50, 60, 70, 80, 90), "higher is better"),
    "JPEG XL (pillow-jxl-plugin, libjxl)", plugin="pillow_jxl"))
register_codec("heif", lambda: PillowCodec(
    "heif", "HEIF", _Q100, "HEIF/HEVC (pillow-heif, libheif + x265)", plugin="pillow_heif"))
