"""Neural codecs: CompressAI zoo architectures with real entropy-coded bitstreams.

The byte string of a neural codec packs everything ``decode`` needs (version 2)::

    b"NV" | version (1 B) | schedule (1 B) | quality (float32) | height, width (uint32 each) |
    latent shape (2 x uint16) | number of strings (1 B) | per string: length (uint32), bytes |
    CRC-32 of everything before (uint32)

so bpp counts the header too (33 bytes for two strings, 0.0007 bpp on a Kodak image).
The schedule says how the latent was entropy-coded: ``wavefront`` (nicviz's batched
fronts, :mod:`nicviz.codecs.wavefront`, for models with a 5x5 context model: 6-8x faster
decoding than CompressAI's loop) or ``compressai`` (the model's own ``compress``).
Version-1 streams (integer quality, CompressAI's order, no checksum) still decode.
Images are zero-padded to a multiple of 64 (centered, as CompressAI's ``eval_model``)
and the reconstruction is cropped back. ``model.update()`` is run before coding.

The ``-estimated`` variants compute bpp from the model's likelihoods instead of
coding (fast, no bitstream); their rows say ``rate_mode = "estimated"``.
"""

from __future__ import annotations

import math
import struct
import threading
import weakref
import zlib
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

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
from nicviz.codecs.weights import import_compressai
from nicviz.paths import MODELS_DIR

__all__ = [
    "NeuralCodec",
    "WeightSource",
    "OfficialWeights",
    "RandomWeights",
    "pack_strings",
    "unpack_strings",
    "NeuralStream",
    "SCHEDULES",
    "ZOO_QUALITIES",
    "ShippedWeights",
    "VariableRateWeights",
    "mini_codec",
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
#: version 1: CompressAI's own (raster) coding order, integer quality, no checksum
#: version 2: schedule byte, float32 quality, CRC-32 of the strings
_VERSION = 2
_PAD = 64
#: entropy-coding schedules a version-2 header names
SCHEDULE_COMPRESSAI = 0  # the model's own compress/decompress (raster order for mbt2018/Cheng2020)
SCHEDULE_WAVEFRONT = 1  # nicviz.codecs.wavefront: front t = 3i + j, one batch per front
SCHEDULES = {SCHEDULE_COMPRESSAI: "compressai", SCHEDULE_WAVEFRONT: "wavefront"}
_V1 = ">BBIIHHB"
_V2 = ">BBfIIHHB"
#: largest image side a bitstream may claim (Pillow's decompression-bomb scale)
_MAX_SIDE = 1 << 16


class NeuralStream(NamedTuple):
    """What a neural bitstream's header and payload hold."""

    quality: float
    height: int
    width: int
    shape: tuple[int, int]
    strings: list[bytes]
    schedule: int


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """Every line of an error joined into one (a state-dict error names its keys on later lines)."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTIGUOUS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CONTIGUOUS_LOCK = threading.Lock()


def _contiguous(model):
    """A contiguous-memory copy of ``model`` (kept while the model lives; same parameters)."""
    import copy

    import torch

    with _CONTIGUOUS_LOCK:
        twin = _CONTIGUOUS.get(model)
        if twin is None:
            twin = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
            _CONTIGUOUS[model] = twin
        # a variable-rate model's gain hooks are closures over the original: the twin follows its set_quality
        return twin


def pack_strings(quality: float, height: int, width: int, shape: tuple[int, int],
                 strings: list[bytes], schedule: int = SCHEDULE_WAVEFRONT) -> bytes:
    """Version-2 container: ``b"NV" | 2 | schedule | quality (float32) | height, width |
    latent shape | number of strings | (length, bytes) per string | CRC-32 of all before``."""
    parts = [_MAGIC, struct.pack(_V2, _VERSION, schedule, float(quality), height, width,
                                 shape[0], shape[1], len(strings))]
    for s in strings:
        parts.append(struct.pack(">I", len(s)))
        parts.append(s)
    body = b"".join(parts)
    return body + struct.pack(">I", zlib.crc32(body))


def unpack_strings(data: bytes) -> NeuralStream:
    """Parse and check a version-1 or version-2 bitstream; any defect is a :class:`CodecError`."""
    if len(data) < 3 or data[:2] != _MAGIC:
        raise CodecError("not a nicviz neural bitstream (bad magic)")
    version = data[2]
    if version == 1:
        fmt = _V1
    elif version == 2:
        fmt = _V2
    else:
        raise CodecError(f"unsupported neural bitstream version {version}")
    head = struct.calcsize(fmt)
    if len(data) < 2 + head:
        raise CodecError("truncated neural bitstream (header)")
    fields = struct.unpack(fmt, data[2:2 + head])
    end = len(data)
    if version == 1:
        _, quality, h, w, s0, s1, n = fields
        schedule = SCHEDULE_COMPRESSAI
    else:
        end -= 4
        if end < 2 + head or zlib.crc32(data[:end]) != struct.unpack(">I", data[end:])[0]:
            raise CodecError("corrupt or truncated neural bitstream (checksum mismatch)")
        _, schedule, quality, h, w, s0, s1, n = fields
        if schedule not in SCHEDULES:
            raise CodecError(f"corrupt neural bitstream (unknown schedule {schedule})")
        if not math.isfinite(quality):
            raise CodecError("corrupt neural bitstream (quality is not a number)")
    if not (0 < h <= _MAX_SIDE and 0 < w <= _MAX_SIDE):
        raise CodecError(f"corrupt neural bitstream (image size {w}x{h})")
    if (s0, s1) != (math.ceil(h / _PAD), math.ceil(w / _PAD)) and (s0, s1) != (math.ceil(h / _PAD) * 4,
                                                                           math.ceil(w / _PAD) * 4):
        raise CodecError(f"corrupt neural bitstream (latent shape {s0}x{s1} for a {w}x{h} image)")
    pos = 2 + head
    strings = []
    for _ in range(n):
        if pos + 4 > end:
            raise CodecError("truncated neural bitstream")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
        if pos + length > end:
            raise CodecError("truncated neural bitstream")
        strings.append(data[pos:pos + length])
        pos += length
    if pos != end:
        raise CodecError(f"corrupt neural bitstream ({end - pos} bytes after the last string)")
    if quality == int(quality):
        quality = int(quality)
    return NeuralStream(quality, h, w, (s0, s1), strings, schedule)


class WeightSource(ABC):
    """Provides a ready (``eval``, ``update``-d) model per quality."""

    label: str = ""
    #: one model serves every quality (:mod:`nicviz.codecs.gained`): ``build`` ignores the
    #: quality and the codec calls ``set_quality`` before coding
    variable_rate: bool = False

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
            raise CodecUnavailable(f"{path}: cannot load checkpoint ({_one_line(exc)})") from None


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
    """A CompressAI model family; quality selects the checkpoint, or for a variable-rate
    source (:class:`VariableRateWeights`) the rate of one model on a continuous scale."""

    family = "neural"
    #: nicviz's own container (header, entropy-coded strings, CRC-32): ``nicviz`` decodes it
    suffix = ".nicviz"

    def __init__(self, name: str, arch: str, source: WeightSource,
                 qualities: tuple[int, ...], description: str = "",
                 estimated: bool = False) -> None:
        self.name = name
        self.arch = arch
        self.source = source
        self.qualities = tuple(qualities)
        if source.variable_rate:
            self.scale = QualityScale(min(qualities), max(qualities), self.qualities,
                                      f"any number {min(qualities)}..{max(qualities)}, higher is better (more bits)",
                                      continuous=True)
        else:
            self.scale = QualityScale(min(qualities), max(qualities), self.qualities,
                                      "one model per quality, higher = more bits")
        self.description = description or f"{arch} ({source.label})"
        if estimated:
            self.rate_mode = RATE_ESTIMATED
            self.description += ", bpp estimated from likelihoods"
        self._models: dict[int | None, object] = {}
        self._lock = threading.RLock()
        #: "wavefront" (nicviz's batched fronts where the model has a context model) or
        #: "compressai" (the model's own compress/decompress)
        self.schedule = "wavefront"

    def available_qualities(self) -> list[int]:
        return [q for q in self.qualities if self.source.missing(q) is None]

    def availability(self) -> tuple[bool, str]:
        # whether CompressAI is installed, without importing it (3-8 s); a broken install
        # shows when a model is built
        import importlib.util

        if importlib.util.find_spec("compressai") is None:
            return False, "compressai is not installed"
        if self.available_qualities():
            return True, ""
        return False, self.source.missing(self.qualities[0]) or "no weights"

    def check_quality(self, quality: float) -> int | float:
        q = super().check_quality(quality)
        why = self.source.missing(round(q))
        if why:
            raise CodecUnavailable(f"{self.name} quality {q} is unavailable: {why}")
        return q

    def model(self, quality: float):
        """The loaded model for ``quality`` (loaded once per process; a variable-rate
        model is set to ``quality``: hold :meth:`using` while coding with it)."""
        q = self.check_quality(quality)
        key = None if self.source.variable_rate else q
        with self._lock:
            if key not in self._models:
                import torch

                with torch.no_grad():
                    try:
                        m = self.source.build(q).eval()
                    except ImportError as exc:  # availability only checks that compressai is installed
                        raise CodecUnavailable(f"{self.name}: compressai cannot be imported ({exc})") from None
                    weights.restore_likelihood_bounds(m)
                    m.update(force=True)
                # channels-last: oneDNN's convolutions run the transforms ~1.6x faster here
                self._models[key] = m.to(memory_format=torch.channels_last)
            m = self._models[key]
            if self.source.variable_rate:
                m.set_quality(q)
            return m

    @contextmanager
    def using(self, quality: float):
        """The model for ``quality``, kept at that rate until the block ends (a
        variable-rate model is shared by every quality, so coding holds the lock)."""
        if not self.source.variable_rate:
            yield self.model(quality)
            return
        with self._lock:
            yield self.model(quality)

    # -- tensors -------------------------------------------------------------------
    @staticmethod
    def _to_padded(rgb: np.ndarray):
        """(1, 3, H, W) float tensor zero-padded to multiples of 64 (centred, as CompressAI's
        evaluation does) and the ``unpad`` tuple that crops the reconstruction back."""
        import torch
        import torch.nn.functional as F
        from compressai.ops import compute_padding

        x = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)[None]
        pad, unpad = compute_padding(*rgb.shape[:2], min_div=_PAD)
        return F.pad(x, pad, mode="constant", value=0).contiguous(memory_format=torch.channels_last), unpad

    @staticmethod
    def _to_rgb(x_hat, unpad: tuple[int, int, int, int]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = F.pad(x_hat, unpad)[0].clamp(0, 1).mul(255).round()
        return np.ascontiguousarray(x.permute(1, 2, 0).to(torch.uint8).numpy())

    # -- coding --------------------------------------------------------------------
    def encode(self, rgb: np.ndarray, quality: int) -> bytes:
        return self.encode_reconstruct(rgb, quality, reconstruct=False)[0]

    def encode_reconstruct(self, rgb: np.ndarray, quality: int,
                           reconstruct: bool = True) -> tuple[bytes, np.ndarray | None]:
        """The bitstream and, with the wavefront schedule, the encoder's own
        reconstruction (which :meth:`decode` reproduces bit for bit); else ``None``."""
        import torch

        from nicviz.codecs import wavefront

        if self.rate_mode == RATE_ESTIMATED:
            raise CodecError(f"{self.name} estimates bpp and writes no bitstream; use estimate()")
        quality = self.check_quality(quality)
        if isinstance(quality, float):  # the header stores float32: code with exactly that value
            quality = struct.unpack(">f", struct.pack(">f", quality))[0]
        h, w = rgb.shape[:2]
        x, unpad = self._to_padded(rgb)
        with self.using(quality) as model, torch.no_grad():
            if self.schedule == "wavefront" and wavefront.supports_wavefront(model):
                strings, shape, y_hat = wavefront.compress(model, x)
                recon = self._to_rgb(model.g_s(y_hat), unpad) if reconstruct else None
                return pack_strings(quality, h, w, shape, strings, SCHEDULE_WAVEFRONT), recon
            # CompressAI's raster-order loop is not memory-format invariant: its streams are
            # written (and read) by a contiguous model, as nicviz wrote them before channels-last
            out = _contiguous(model).compress(x.contiguous())
        strings = [s[0] for s in out["strings"]]
        shape = tuple(int(v) for v in out["shape"])
        return pack_strings(quality, h, w, shape, strings, SCHEDULE_COMPRESSAI), None

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        from nicviz.codecs import wavefront

        stream = unpack_strings(data)
        h, w = stream.height, stream.width
        from compressai.ops import compute_padding

        _, unpad = compute_padding(h, w, min_div=_PAD)
        try:
            with self.using(stream.quality) as model, torch.no_grad():
                if stream.schedule == SCHEDULE_WAVEFRONT:
                    if not wavefront.supports_wavefront(model):
                        raise CodecError(f"{self.arch} has no context model to decode a wavefront bitstream")
                    x_hat = wavefront.decompress(model, stream.strings, stream.shape)
                else:  # version 1 / CompressAI order: a contiguous model, as the encoder had
                    x_hat = _contiguous(model).decompress([[s] for s in stream.strings], list(stream.shape))["x_hat"]
        except CodecError:
            raise
        except (RuntimeError, ValueError, IndexError, OverflowError) as exc:  # what a damaged stream causes in
            # CompressAI's decoder (a shape that does not fit); anything else is a bug and keeps its traceback
            raise CodecError(f"{self.name}: cannot decode bitstream ({_one_line(exc)})") from None
        return self._to_rgb(x_hat, unpad)

    def estimate(self, rgb: np.ndarray, quality: int) -> tuple[np.ndarray, float]:
        """Forward pass: reconstruction and estimated bits (sum of -log2 likelihoods)."""
        import torch

        x, unpad = self._to_padded(rgb)
        with self.using(quality) as model, torch.no_grad():
            out = model(x)
        bits = sum(float(-torch.log2(lk).sum()) for lk in out["likelihoods"].values())
        return self._to_rgb(out["x_hat"], unpad), bits


class _NicvizModels(WeightSource):
    """Models trained by nicviz, named ``name``, in ``folder`` (default: the shipped ones)."""

    def __init__(self, name: str, arch: str, folder: Path | None = None) -> None:
        self.name = name
        self.arch = arch
        self.folder = folder or MODELS_DIR


class ShippedWeights(_NicvizModels):
    """Models trained by nicviz and shipped in ``nicviz/models/<name>-q<k>.pt`` (float16
    state dict with CDF tables, loaded as float32) with ``<name>-q<k>.json`` metadata."""

    label = "trained by nicviz (not CompressAI's official weights)"

    def path(self, quality: int) -> Path:
        return self.folder / f"{self.name}-q{quality}.pt"

    def metadata(self, quality: int) -> dict:
        import json

        return json.loads(self.path(quality).with_suffix(".json").read_text())

    def shipped_qualities(self) -> tuple[int, ...]:
        """Qualities with a model file and its metadata in the folder."""
        return tuple(q for q in range(1, 9) if self.missing(q) is None)

    def missing(self, quality: int) -> str | None:
        p = self.path(quality)
        if p.is_file() and p.with_suffix(".json").is_file():
            return None
        return f"{p.name} is not shipped in this version (train it with `nicviz train`)"

    def build(self, quality: int):

        import_compressai()
        from compressai.zoo.image import model_architectures

        path = self.path(quality)
        try:
            return model_architectures[self.arch].from_state_dict(weights.load_state_dict(path))
        except Exception as exc:  # noqa: BLE001 - a damaged file: torch raises many kinds
            raise CodecUnavailable(f"{path.name}: cannot load model ({_one_line(exc)})") from None


class VariableRateWeights(_NicvizModels):
    """One variable-rate model shipped as ``nicviz/models/<name>.pt`` (float16 state dict
    with gain units, :mod:`nicviz.codecs.gained`) and ``<name>.json``, whose
    ``"qualities": [low, high]`` is the range it was trained on."""

    label = "trained by nicviz, variable rate (not CompressAI's official weights)"
    variable_rate = True

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}.pt"

    def metadata(self) -> dict:
        import json

        return json.loads(self.path.with_suffix(".json").read_text())

    def quality_range(self) -> tuple[int, int]:
        lo, hi = self.metadata()["qualities"]
        return int(lo), int(hi)

    def missing(self, quality: int) -> str | None:
        if self.path.is_file() and self.path.with_suffix(".json").is_file():
            return None
        return f"{self.path.name} is not shipped in this version"

    def build(self, quality: float):
        from nicviz.codecs.gained import gained_from_state_dict

        try:
            return gained_from_state_dict(self.arch, weights.load_state_dict(self.path))
        except Exception as exc:  # noqa: BLE001 - a damaged file: torch raises many kinds
            raise CodecUnavailable(f"{self.path.name}: cannot load model ({_one_line(exc)})") from None


#: nicviz's own compact models: codec name -> architecture.
MINI_MODELS = {"cheng2020-anchor-mini": "cheng2020-anchor", "cheng2020-attn-mini": "cheng2020-attn"}


def mini_codec(name: str, arch: str, folder: Path | None = None) -> NeuralCodec:
    """A nicviz-trained codec: the variable-rate model ``<name>.pt`` when shipped, else
    one fixed-rate model per quality (``<name>-q<k>.pt``)."""
    vr = VariableRateWeights(name, arch, folder)
    if vr.missing(0) is None:
        lo, hi = vr.quality_range()
        return NeuralCodec(name, arch, vr, tuple(range(lo, hi + 1)),
                           description=f"{arch}, compact variable-rate model trained by nicviz "
                                       "(not CompressAI's official weights)")
    fixed = ShippedWeights(name, arch, folder)
    return NeuralCodec(name, arch, fixed, fixed.shipped_qualities() or (1,),
                       description=f"{arch}, compact model trained by nicviz (not CompressAI's official weights)")


def _register_mini() -> None:
    for name, arch in MINI_MODELS.items():
        register_codec(name, lambda n=name, a=arch: mini_codec(n, a))


def _register_official() -> None:
    for arch, qualities in ZOO_QUALITIES.items():
        for estimated in (False, True):
            name = arch + ("-estimated" if estimated else "")
            register_codec(name, lambda a=arch, q=qualities, e=estimated, n=name: NeuralCodec(
                n, a, OfficialWeights(a), q, estimated=e))


_register_mini()
_register_official()

