"""The neural codec: a CompressAI architecture, a weight source and a real bitstream
(see :mod:`nicviz.codecs.neural`)."""

from __future__ import annotations

import struct
import threading
import weakref
from contextlib import contextmanager
from typing import Any

import numpy as np

from nicviz.codecs import weights
from nicviz.codecs.base import (
    RATE_ESTIMATED,
    Codec,
    CodecError,
    CodecUnavailable,
    QualityScale,
)
from nicviz.codecs.neural.container import (
    _PAD,
    SCHEDULE_COMPRESSAI,
    SCHEDULE_WAVEFRONT,
    one_line,
    pack_strings,
    unpack_strings,
)
from nicviz.codecs.neural.sources import WeightSource

#: Qualities of CompressAI's pretrained MSE models per architecture.
ZOO_QUALITIES: dict[str, tuple[int, ...]] = {
    "bmshj2018-factorized": tuple(range(1, 9)),
    "bmshj2018-hyperprior": tuple(range(1, 9)),
    "mbt2018-mean": tuple(range(1, 9)),
    "mbt2018": tuple(range(1, 9)),
    "cheng2020-anchor": tuple(range(1, 7)),
    "cheng2020-attn": tuple(range(1, 7)),
}


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
        self._models: dict[float | None, Any] = {}
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
                m = m.to(memory_format=torch.channels_last)
                if self.source.variable_rate:  # a new quality of the same image reuses its analysis
                    from nicviz.codecs.neural.gained import memoize_analysis

                    memoize_analysis(m)
                self._models[key] = m
            m = self._models[key]
            if self.source.variable_rate:
                import torch

                with torch.no_grad():  # no autograd graph on the gains (a model holding one cannot be copied)
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
    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        return self.encode_reconstruct(rgb, quality, reconstruct=False)[0]

    def encode_with_reconstruction(self, rgb: np.ndarray, quality: float) -> tuple[bytes, np.ndarray | None]:
        return self.encode_reconstruct(rgb, quality)

    def encode_reconstruct(self, rgb: np.ndarray, quality: float,
                           reconstruct: bool = True) -> tuple[bytes, np.ndarray | None]:
        """The bitstream and, with the wavefront schedule, the encoder's own
        reconstruction (which :meth:`decode` reproduces bit for bit); else ``None``."""
        import torch

        from nicviz.codecs.neural import wavefront

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

        from nicviz.codecs.neural import wavefront

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
            raise CodecError(f"{self.name}: cannot decode bitstream ({one_line(exc)})") from None
        return self._to_rgb(x_hat, unpad)

    def estimate(self, rgb: np.ndarray, quality: float) -> tuple[np.ndarray, float]:
        """Forward pass: reconstruction and estimated bits (sum of -log2 likelihoods)."""
        import torch

        x, unpad = self._to_padded(rgb)
        with self.using(quality) as model, torch.no_grad():
            out = model(x)
        bits = sum(float(-torch.log2(lk).sum()) for lk in out["likelihoods"].values())
        return self._to_rgb(out["x_hat"], unpad), bits
