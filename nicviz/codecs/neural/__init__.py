"""Neural codecs: CompressAI zoo architectures with real entropy-coded bitstreams.

The byte string of a neural codec packs everything ``decode`` needs (version 2)::

    b"NV" | version (1 B) | schedule (1 B) | quality (float32) | height, width (uint32 each) |
    latent shape (2 x uint16) | number of strings (1 B) | per string: length (uint32), bytes |
    CRC-32 of everything before (uint32)

so bpp counts the header too (33 bytes for two strings, 0.0007 bpp on a Kodak image).
The schedule says how the latent was entropy-coded: ``wavefront`` (nicviz's batched
fronts, :mod:`nicviz.codecs.neural.wavefront`, for models with a 5x5 context model: 6-8x faster
decoding than CompressAI's loop) or ``compressai`` (the model's own ``compress``).
Version-1 streams (integer quality, CompressAI's order, no checksum) still decode.
Images are zero-padded to a multiple of 64 (centered, as CompressAI's ``eval_model``)
and the reconstruction is cropped back. ``model.update()`` is run before coding.

The ``-estimated`` variants compute bpp from the model's likelihoods instead of
coding (fast, no bitstream); their rows say ``rate_mode = "estimated"``.
"""

from nicviz.codecs.neural.codec import ZOO_QUALITIES, NeuralCodec
from nicviz.codecs.neural.container import (
    SCHEDULE_COMPRESSAI,
    SCHEDULE_WAVEFRONT,
    SCHEDULES,
    NeuralStream,
    pack_strings,
    unpack_strings,
)
from nicviz.codecs.neural.sources import (
    OfficialWeights,
    RandomWeights,
    ShippedWeights,
    VariableRateWeights,
    WeightSource,
)
from nicviz.codecs.neural.zoo import MINI_MODELS, mini_codec

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
    "SCHEDULE_COMPRESSAI",
    "SCHEDULE_WAVEFRONT",
]
