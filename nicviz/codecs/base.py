"""The codec interface and the codec registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nicviz.errors import NicvizError

__all__ = [
    "Codec",
    "CodecError",
    "CodecUnavailable",
    "register_codec",
    "unregister_codec",
    "get_codec",
    "list_codecs",
    "RATE_BITSTREAM",
    "RATE_ESTIMATED",
    "RATE_MODES",
]

#: ``rate_mode`` of rows whose bytes are a real, decodable bitstream.
RATE_BITSTREAM = "bitstream"
#: ``rate_mode`` of rows whose bits come from model likelihoods (no bitstream).
RATE_ESTIMATED = "estimated"
#: every ``rate_mode`` a result row may hold
RATE_MODES = (RATE_BITSTREAM, RATE_ESTIMATED)


class CodecError(NicvizError):
    """Bad use of a codec (unknown name, quality out of range, corrupt bitstream)."""


class CodecUnavailable(CodecError):
    """The codec exists but cannot run here (missing plugin or weights)."""


@dataclass(frozen=True)
class QualityScale:
    """A quality scale ``low..high`` (higher is better unless stated): integers, or with
    ``continuous`` any real number in the range (variable-rate neural codecs)."""

    low: int
    high: int
    default: tuple[int, ...]
    meaning: str
    continuous: bool = False


class Codec(ABC):
    """Lossy image codec: ``encode(rgb, quality) -> bytes``, ``decode(bytes) -> rgb``.

    ``rgb`` is a uint8 H x W x 3 array. The byte string returned by :meth:`encode`
    is everything :meth:`decode` needs, so bpp = 8 * len(bytes) / (H * W).
    """

    name: str = ""
    family: str = ""  # "classical" or "neural"
    description: str = ""
    scale: QualityScale
    rate_mode: str = RATE_BITSTREAM
    #: file name extension of a bitstream, for downloads
    suffix: str = ".bin"
    #: encoding fits a model to each image (minutes): a sweep makes every (image, quality) its own unit of work
    fits_per_image: bool = False

    def availability(self) -> tuple[bool, str]:
        """Return ``(True, "")`` or ``(False, reason)``."""
        return True, ""

    @property
    def available(self) -> bool:
        return self.availability()[0]

    def check_quality(self, quality: float) -> int | float:
        """``quality`` as the codec takes it (an int where integral), or a one-line error."""
        try:
            value = float(quality)
        except (TypeError, ValueError):
            raise CodecError(f"{self.name}: quality {quality!r} is not a number") from None
        integral = value.is_integer()
        if not self.scale.low <= value <= self.scale.high:
            raise CodecError(f"{self.name}: quality {quality} outside {self.scale.low}..{self.scale.high}"
                             f" ({self.scale.meaning})")
        if not (integral or self.scale.continuous):
            raise CodecError(f"{self.name}: quality {quality} is not an integer ({self.scale.meaning})")
        return int(value) if integral else value

    def require_available(self) -> None:
        ok, why = self.availability()
        if not ok:
            raise CodecUnavailable(f"{self.name} is unavailable: {why}")

    def available_qualities(self) -> list[int]:
        """The qualities a sweep uses by default: the scale's documented defaults, or for a
        model family only the qualities whose weights are here."""
        return list(self.scale.default)

    def settings(self) -> dict | None:
        """Encoder settings a result row records beside the quality (effort, device), or ``None``."""
        return None

    def encoder_reconstruction(self) -> np.ndarray | None:
        """The reconstruction the encoder itself computed in this thread's last :meth:`encode`,
        for codecs that promise the decoder reproduces it bit for bit (else ``None``)."""
        return None

    def estimate(self, rgb: np.ndarray, quality: float) -> tuple[np.ndarray, float]:
        """Reconstruction and estimated bits without a bitstream (``rate_mode`` estimated)."""
        raise CodecError(f"{self.name} writes real bitstreams and estimates no rate")

    @abstractmethod
    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        """Compress ``rgb`` at ``quality``."""

    def encode_with_reconstruction(self, rgb: np.ndarray, quality: float) -> tuple[bytes, np.ndarray | None]:
        """The bitstream and, for a codec whose decoder reproduces its encoder bit for bit
        (tested), the encoder's own reconstruction: an interactive page can skip the decode.
        ``None`` for the others."""
        return self.encode(rgb, quality), None

    def encode_reporting(self, rgb: np.ndarray, quality: float,
                         progress: Callable[[int, int, float, float], bool | None] | None) -> bytes:
        """:meth:`encode`, calling ``progress(iteration, total, bpp, psnr)`` while it works
        (a codec that fits each image overrides it; a truthy return cancels). Others ignore it."""
        return self.encode(rgb, quality)

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decompress to uint8 H x W x 3."""


_REGISTRY: dict[str, Callable[[], Codec]] = {}
_INSTANCES: dict[str, Codec] = {}


def register_codec(name: str, factory: Callable[[], Codec]) -> None:
    """Register a codec factory under ``name`` (lower case with dashes)."""
    _REGISTRY[name] = factory


def unregister_codec(name: str) -> None:
    """Remove a registered codec (tests register stand-ins and take them away again)."""
    _REGISTRY.pop(name, None)
    _INSTANCES.pop(name, None)


def get_codec(name: str) -> Codec:
    """Return the (cached) codec instance registered as ``name``."""
    if name not in _REGISTRY:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    if name not in _INSTANCES:
        _INSTANCES[name] = _REGISTRY[name]()
    return _INSTANCES[name]


def list_codecs() -> list[str]:
    """Names of all registered codecs, classical first."""
    return list(_REGISTRY)
