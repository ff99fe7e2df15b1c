"""Neural codecs: CompressAI zoo architectures with real entropy-coded bitstreams.

The byte string of a neural codec packs everything ``decode`` needs::

    b"NV" | version (1 B) | quality (1 B) | height, width (uint32 each) |
    latent shape (2 x uint16) | number of strings (1 B) | per string: length (uint32), bytes

so bpp counts the header too (25 bytes for two strings, 0.0005 bpp on a Kodak image).
Images are zero-padded to a multiple of 64 (centered, as CompressAI's ``eval_model``)
and the reconstruction is cropped back. ``model.update()`` is run before coding.

The ``-estimated`` variants compute bpp from the model's likelihoods instead of
coding (fast, no bitstream); their rows say ``rate_mode = "estimated"``.
"""

from __future__ import annotations

import math
import struct
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from nicviz.codecs import weights
from nicviz.codecs.base import (
    RATE_ESTIMATED,
    Codec,
    CodecError,
    CodecUnavailable,
    QualityScale,
    register_codec,
)

__all__ = [
    "NeuralCodec",
    "WeightSource",
    "OfficialWeights",
    "RandomWeights",
    "pack_strings",
    "unpack_strings",
    "ZOO_QUALITIES",
    "ShippedWeights",
    "MINI_MODELS",
]

#: Qualities of CompressAI's pretrained MSE models per architecture.
ZOO_QUALITIES: dict[str, tuple[int, ...]] = {
    "bmshj2018-factorized": tuple(range(1, 9)),
    "bmshj2018-hyperprior": tuple(range(1, 9)),
    "mbt2018-mean": tuple(range(1, 9)),
    "mbt2018": tuple(range(1, 9)),
    "cheng2020-anchor": tuple(range(1, 7)),
    "cheng2020-attn": tuple(range(1, 7)),
}

_MAGIC = b"NV"
_VERSION = 1
_PAD = 64


def pack_strings(quality: int, height: int, width: int, shape: tuple[int, int],
                 strings: list[bytes]) -> bytes:
    parts = [_MAGIC, struct.pack(">BBIIHHB", _VERSION, quality, height, width,
                                 shape[0], shape[1], len(strings))]
    for s in strings:
        parts.append(struct.pack(">I", len(s)))
        parts.append(s)
    return b"".join(parts)


def unpack_strings(data: bytes) -> tuple[int, int, int, tuple[int, int], list[bytes]]:
    head = struct.calcsize(">BBIIHHB")
    if len(data) < 2 + head or data[:2] != _MAGIC:
        raise CodecError("not a nicviz neural bitstream (bad magic)")
    version, quality, h, w, s0, s1, n = struct.unpack(">BBIIHHB", data[2:2 + head])
    if version != _VERSION:
        raise CodecError(f"unsupported neural bitstream version {version}")
    pos = 2 + head
    strings = []
    for _ in range(n):
        if pos + 4 > len(data):
            raise CodecError("truncated neural bitstream")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if pos + length > len(data):
            raise CodecError("truncated neural bitstream")
        strings.append(data[pos:pos + length])
        pos += length
    return quality, h, w, (s0, s1), strings


def import_compressai():
    """Import CompressAI quietly (it warns about ``torch.jit.script`` on import)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import compressai.zoo.image

    return compressai


class WeightSource(ABC):
    """Provides a ready (``eval``, ``update``-d) model per quality."""

    label: str = ""

    @abstractmethod
    def missing(self, quality: int) -> str | None:
        """``None`` when the weights for ``quality`` are here, else how to get them."""

    @abstractmethod
    def build(self, quality: int):
        """Return the torch model for ``quality``."""


class OfficialWeights(WeightSource):
    """CompressAI's published checkpoints, found locally (see :mod:`weights`)."""

    label = "CompressAI official weights"

    def __init__(self, arch: str, metric: str = "mse") -> None:
        self.arch = arch
        self.metric = metric

    def missing(self, quality: int) -> str | None:
        if weights.find_official(self.arch, quality, self.metric) is not None:
            return None
        name = weights.official_filename(self.arch, quality, self.metric)
        url = weights.official_url(self.arch, quality, self.metric)
        where = " or ".join(str(d) for d in weights.search_dirs())
        return f"weights file {name} not found in {where}; download it from {url}"

    def build(self, quality: int):
        import_compressai()
        from compressai.zoo.image import model_architectures
        from compressai.zoo.pretrained import load_pretrained

        path = weights.find_official(self.arch, quality, self.metric)
        if path is None:
            raise CodecUnavailable(self.missing(quality) or "weights missing")
        try:
            state = load_pretrained(weights.load_state_dict(path))
            return model_architectures[self.arch].from_state_dict(state)
        except Exception as exc:
            raise CodecUnavailable(f"{path}: cannot load checkpoint ({str(exc).splitlines()[0]})") from None


class RandomWeights(WeightSource):
    """Randomly initialised zoo model (tests and smoke checks only)."""

    label = "random initialisation (not a trained model)"

    def __init__(self, arch: str, seed: int = 0) -> None:
        self.arch = arch
        self.seed = seed

    def missing(self, quality: int) -> str | None:
        return None

    def build(self, quality: int):
        import torch

        import_compressai()
        from compressai.zoo.image import cfgs, model_architectures

        torch.manual_seed(self.seed)
        return model_architectures[self.arch](*cfgs[self.arch][quality])


class NeuralCodec(Codec):
    """A CompressAI model family; quality selects the checkpoint."""

    family = "neural"

    def __init__(self, name: str, arch: str, source: WeightSource,
                 qualities: tuple[int, ...], description: str = "",
                 estimated: bool = False) -> None:
        self.name = name
        self.arch = arch
        self.source = source
        self.qualities = tuple(qualities)
        self.scale = QualityScale(min(qualities), max(qualities), self.qualities,
                                  "model index, higher is better (more bits)")
        self.description = description or f"{arch} ({source.label})"
        if estimated:
            self.rate_mode = RATE_ESTIMATED
            self.description += ", bpp estimated from likelihoods"
        self._models: dict[int, object] = {}
        self._lock = threading.Lock()

    def available_qualities(self) -> list[int]:
        return [q for q in self.qualities if self.source.missing(q) is None]

    def availability(self) -> tuple[bool, str]:
        try:
            import_compressai()
        except ImportError as exc:
            return False, f"compressai is not installed ({exc})"
        if self.available_qualities():
            return True, ""
        return False, self.source.missing(self.qualities[0]) or "no weights"

    def check_quality(self, quality: int) -> int:
        q = super().check_quality(quality)
        why = self.source.missing(q)
        if why:
            raise CodecUnavailable(f"{self.name} quality {q} is unavailable: {why}")
        return q

    def model(self, quality: int):
        """The loaded model for ``quality`` (loaded once per process)."""
        q = self.check_quality(quality)
        with self._lock:
            if q not in self._models:
                import torch

                with torch.no_grad():
                    m = self.source.build(q).eval()
                    m.update(force=True)
                self._models[q] = m
            return self._models[q]

    # -- tensors -------------------------------------------------------------------
    @staticmethod
    def _to_padded(rgb: np.ndarray):
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)[None]
        h, w = rgb.shape[:2]
        H, W = math.ceil(h / _PAD) * _PAD, math.ceil(w / _PAD) * _PAD
        left, top = (W - w) // 2, (H - h) // 2
        x = F.pad(x, (left, W - w - left, top, H - h - top), mode="constant", value=0)
        return x, (top, left)

    @staticmethod
    def _to_rgb(x_hat, h: int, w: int, offset: tuple[int, int]) -> np.ndarray:
        import torch

        top, left = offset
        x = x_hat[0, :, top:top + h, left:left + w].clamp(0, 1).mul(255).round()
        return np.ascontiguousarray(x.permute(1, 2, 0).to(torch.uint8).numpy())

    # -- coding --------------------------------------------------------------------
    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        import torch

        if self.rate_mode == RATE_ESTIMATED:
            raise CodecError(f"{self.name} estimates bpp and writes no bitstream; use estimate()")
        model = self.model(quality)
        h, w = rgb.shape[:2]
        x, _ = self._to_padded(rgb)
        with torch.no_grad():
            out = model.compress(x)
        strings = [s[0] for s in out["strings"]]
        shape = tuple(int(v) for v in out["shape"])
        return pack_strings(int(quality), h, w, shape, strings)

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        quality, h, w, shape, strings = unpack_strings(data)
        model = self.model(quality)
        H, W = math.ceil(h / _PAD) * _PAD, math.ceil(w / _PAD) * _PAD
        offset = ((H - h) // 2, (W - w) // 2)
        try:
            with torch.no_grad():
                out = model.decompress([[s] for s in strings], list(shape))
        except Exception as exc:
            raise CodecError(f"{self.name}: cannot decode bitstream ({exc})") from None
        return self._to_rgb(out["x_hat"], h, w, offset)

    def estimate(self, rgb: np.ndarray, quality: int) -> tuple[np.ndarray, float]:
        """Forward pass: reconstruction and estimated bits (sum of -log2 likelihoods)."""
        import torch

        model = self.model(quality)
        h, w = rgb.shape[:2]
        x, offset = self._to_padded(rgb)
        with torch.no_grad():
            out = model(x)
        bits = sum(float(-torch.log2(lk).sum()) for lk in out["likelihoods"].values())
        return self._to_rgb(out["x_hat"], h, w, offset), bits


class ShippedWeights(WeightSource):
    """Models trained by nicviz and shipped in ``nicviz/models/<name>-q<k>.pt`` (float16
    state dict with CDF tables, loaded as float32) with ``<name>-q<k>.json`` metadata."""

    label = "trained by nicviz (not CompressAI's official weights)"

    def __init__(self, name: str, arch: str, folder: Path | None = None) -> None:
        self.name = name
        self.arch = arch
        self.folder = folder or MODELS_DIR

    def path(self, quality: int) -> Path:
        return self.folder / f"{self.name}-q{quality}.pt"

    def metadata(self, quality: int) -> dict:
        import json

        return json.loads(self.path(quality).with_suffix(".json").read_text())

    def missing(self, quality: int) -> str | None:
        p = self.path(quality)
        if p.is_file() and p.with_suffix(".json").is_file():
            return None
        return f"{p.name} is not shipped in this version (train it with `nicviz train`)"

    def build(self, quality: int):
        import torch

        import_compressai()
        from compressai.zoo.image import model_architectures

        path = self.path(quality)
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        return model_architectures[self.arch].from_state_dict(state)


MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
#: nicviz's own compact models: codec name -> architecture.
MINI_MODELS = {"cheng2020-anchor-mini": "cheng2020-anchor", "cheng2020-attn-mini": "cheng2020-attn"}


def _register_mini() -> None:
    for name, arch in MINI_MODELS.items():
        register_codec(name, lambda n=name, a=arch: NeuralCodec(
            n, a, ShippedWeights(n, a), tuple(range(1, 7)),
            description=f"{a}, compact model trained by nicviz (not CompressAI's official weights)"))


def _register_official() -> None:
    for arch, qualities in ZOO_QUALITIES.items():
        for estimated in (False, True):
            name = arch + ("-estimated" if estimated else "")
            register_codec(name, lambda a=arch, q=qualities, e=estimated, n=name: NeuralCodec(
                n, a, OfficialWeights(a), q, estimated=e))


_register_mini()
_register_official()

