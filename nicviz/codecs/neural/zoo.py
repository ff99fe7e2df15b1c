"""Registration of the neural codecs: CompressAI's architectures (official weights,
bitstream and estimated-rate variants) and nicviz's compact minis."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from nicviz.codecs.base import (
    register_codec,
)
from nicviz.codecs.neural.codec import ZOO_QUALITIES, NeuralCodec
from nicviz.codecs.neural.sources import OfficialWeights, ShippedWeights, VariableRateWeights

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
        register_codec(name, partial(mini_codec, name, arch))


def _official(name: str, arch: str, qualities: tuple[int, ...], estimated: bool) -> NeuralCodec:
    return NeuralCodec(name, arch, OfficialWeights(arch), qualities, estimated=estimated)


def _register_official() -> None:
    for arch, qualities in ZOO_QUALITIES.items():
        for estimated in (False, True):
            name = arch + ("-estimated" if estimated else "")
            register_codec(name, partial(_official, name, arch, qualities, estimated))


_register_mini()
_register_official()
