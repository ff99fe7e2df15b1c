"""Where a neural codec's weights come from: CompressAI's official zoo, random
initialisation (tests), or the models nicviz trained and ships."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from nicviz.codecs import weights
from nicviz.codecs.base import (
    CodecUnavailable,
)
from nicviz.codecs.neural.container import one_line
from nicviz.codecs.weights import import_compressai
from nicviz.paths import MODELS_DIR


class WeightSource(ABC):
    """Provides a ready (``eval``, ``update``-d) model per quality."""

    label: str = ""
    #: one model serves every quality (:mod:`nicviz.codecs.neural.gained`): ``build`` ignores the
    #: quality and the codec calls ``set_quality`` before coding
    variable_rate: bool = False

    @abstractmethod
    def missing(self, quality: int) -> str | None:
        """``None`` when the weights for ``quality`` are here, else how to get them."""

    @abstractmethod
    def build(self, quality: float):
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

    def build(self, quality: float):
        import_compressai()
        from compressai.zoo.image import model_architectures
        from compressai.zoo.pretrained import load_pretrained

        path = weights.find_official(self.arch, int(quality), self.metric)
        if path is None:
            raise CodecUnavailable(self.missing(int(quality)) or "weights missing")
        try:
            state = load_pretrained(weights.load_state_dict(path))
            return model_architectures[self.arch].from_state_dict(state)
        except Exception as exc:
            raise CodecUnavailable(f"{path}: cannot load checkpoint ({one_line(exc)})") from None


class RandomWeights(WeightSource):
    """Randomly initialised zoo model (tests and smoke checks only)."""

    label = "random initialisation (not a trained model)"

    def __init__(self, arch: str, seed: int = 0) -> None:
        self.arch = arch
        self.seed = seed

    def missing(self, quality: int) -> str | None:
        return None

    def build(self, quality: float):
        import torch

        import_compressai()
        from compressai.zoo.image import cfgs, model_architectures

        torch.manual_seed(self.seed)
        return model_architectures[self.arch](*cfgs[self.arch][quality])


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

    def build(self, quality: float):

        import_compressai()
        from compressai.zoo.image import model_architectures

        path = self.path(int(quality))
        try:
            return model_architectures[self.arch].from_state_dict(weights.load_state_dict(path))
        except Exception as exc:  # noqa: BLE001 - a damaged file: torch raises many kinds
            raise CodecUnavailable(f"{path.name}: cannot load model ({one_line(exc)})") from None


class VariableRateWeights(_NicvizModels):
    """One variable-rate model shipped as ``nicviz/models/<name>.pt`` (float16 state dict
    with gain units, :mod:`nicviz.codecs.neural.gained`) and ``<name>.json``, whose
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
        from nicviz.codecs.neural.gained import gained_from_state_dict

        try:
            return gained_from_state_dict(self.arch, weights.load_state_dict(self.path))
        except Exception as exc:  # noqa: BLE001 - a damaged file: torch raises many kinds
            raise CodecUnavailable(f"{self.path.name}: cannot load model ({one_line(exc)})") from None


#: nicviz's own compact models: codec name -> architecture.
