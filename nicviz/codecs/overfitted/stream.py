"""The overfitted codec's bitstream: header, quantized decoder parameters, latents, CRC.

Layout (big-endian): ``b"NO"`` | version (2; 1 still decodes: its latent tables have 4
location bins instead of 16, :mod:`~nicviz.codecs.overfitted.entropy`) | height, width (u16) | levels, ARM hidden,
synthesis hidden (u8) | ARM and synthesis step exponents ``k`` (u8) | quality (float32) |
parameter bytes length (u32) | parameters: per group an exp-Golomb order (u8 in the bit
stream) and the signed codes of every integer | latent stream length (u32) | rANS bytes |
CRC-32 of everything before it. A parameter is ``n / 2^k``; bpp counts every byte.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from nicviz.codecs.overfitted.entropy import BitReader, BitWriter, StreamError, golomb_bits, read_golomb, write_golomb
from nicviz.codecs.overfitted.model import CONTEXT, Config

__all__ = ["pack", "unpack", "Stream", "param_shapes", "MAX_SIDE", "group_bits", "MAX_ABS", "exact_fan_in"]

_MAGIC = b"NO"
_VERSION = 2
#: versions this decoder reads
_VERSIONS = (1, 2)
_HEAD = ">BHHBBBBBf"
MAX_SIDE = 16384
#: every parameter is below this in magnitude (keeps the exact decoder's sums under 2^53)
MAX_ABS = 64


def exact_fan_in(k: int) -> int:
    """The most inputs a layer with parameters on the ``2^-k`` grid may sum exactly in
    float64: each product of an activation (under 2^10, on the 2^-16 grid) and a parameter
    (under MAX_ABS = 2^6, on the 2^-k grid) is an integer under 2^(32 + k) in units of
    2^-(16 + k), so ``fan_in + 1`` of them (the bias too) stay under 2^53."""
    return max(0, 2 ** max(0, 53 - 32 - k) - 1) if k <= 21 else 0


def param_shapes(config: Config) -> dict[str, dict[str, tuple]]:
    h, c, lv = config.arm_hidden, config.synth_hidden, config.levels
    return {
        "arm": {"w1": (h, len(CONTEXT)), "b1": (h,), "w2": (h, h), "b2": (h,), "w3": (2, h), "b3": (2,)},
        "synthesis": {"w1": (c, lv), "b1": (c,), "w2": (3, c), "b2": (3,), "rw1": (3, 3, 3, 3), "rb1": (3,),
                      "rw2": (3, 3, 3, 3), "rb2": (3,)},
    }


@dataclass
class Stream:
    height: int
    width: int
    config: Config
    k: dict[str, int]
    quality: float
    #: integer parameters per group and name
    params: dict[str, dict[str, np.ndarray]]
    latents: bytes
    #: the format version (what :func:`pack` writes; :func:`unpack` reports the stream's)
    version: int = _VERSION


def _flat(group: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([v.reshape(-1) for v in group.values()]).astype(np.int64)


def group_bits(values: np.ndarray) -> tuple[int, int]:
    """``(bits, order)`` of the cheapest exp-Golomb order for ``values``."""
    best = min((golomb_bits(values, o), o) for o in range(16))
    return best[0] + 8, best[1]


def pack(s: Stream) -> bytes:
    bw = BitWriter()
    for name in ("arm", "synthesis"):
        values = _flat(s.params[name])
        _, order = group_bits(values)
        bw.write(order, 8)
        write_golomb(bw, values, order)
    params = bw.getvalue()
    body = b"".join([
        _MAGIC, struct.pack(_HEAD, s.version, s.height, s.width, s.config.levels, s.config.arm_hidden,
                            s.config.synth_hidden, s.k["arm"], s.k["synthesis"], float(s.quality)),
        struct.pack(">I", len(params)), params, struct.pack(">I", len(s.latents)), s.latents])
    return body + struct.pack(">I", zlib.crc32(body))


def unpack(data: bytes) -> Stream:
    """Parse and check a stream; any defect is a :class:`StreamError` in one line."""
    head = struct.calcsize(_HEAD)
    if len(data) < 2 or data[:2] != _MAGIC:
        raise StreamError("not an overfitted-codec bitstream (bad magic)")
    if len(data) < 2 + head + 12:
        raise StreamError("truncated overfitted bitstream (header)")
    end = len(data) - 4
    if zlib.crc32(data[:end]) != struct.unpack(">I", data[end:])[0]:
        raise StreamError("corrupt or truncated overfitted bitstream (checksum mismatch)")
    version, h, w, levels, arm_h, syn_h, k_arm, k_syn, quality = struct.unpack(_HEAD, data[2:2 + head])
    if version not in _VERSIONS:
        raise StreamError(f"unsupported overfitted bitstream version {version}")
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE) or not 1 <= levels <= 10 or not (1 <= arm_h <= 64
                                                                                      and 1 <= syn_h <= 64):
        raise StreamError("corrupt overfitted bitstream (header values)")
    config = Config(levels, arm_h, syn_h)
    if not (exact_fan_in(k_arm) >= max(len(CONTEXT), arm_h) and exact_fan_in(k_syn) >= max(levels, syn_h, 27)):
        raise StreamError("corrupt overfitted bitstream (parameter step)")
    pos = 2 + head
    (n_params,) = struct.unpack(">I", data[pos:pos + 4])
    pos += 4
    if pos + n_params + 4 > end:
        raise StreamError("truncated overfitted bitstream (parameters)")
    reader = BitReader(data[pos:pos + n_params])
    pos += n_params
    params: dict[str, dict[str, np.ndarray]] = {}
    for name, shapes in param_shapes(config).items():
        order = reader.read(8)
        if order > 24:
            raise StreamError("corrupt overfitted bitstream (parameter code)")
        flat = read_golomb(reader, sum(int(np.prod(s)) for s in shapes.values()), order)
        k = k_arm if name == "arm" else k_syn
        if np.abs(flat).max(initial=0) >= MAX_ABS * 2 ** k:
            raise StreamError("corrupt overfitted bitstream (parameter out of range)")
        out, i = {}, 0
        for key, shape in shapes.items():
            n = int(np.prod(shape))
            out[key] = flat[i:i + n].reshape(shape)
            i += n
        params[name] = out
    (n_lat,) = struct.unpack(">I", data[pos:pos + 4])
    pos += 4
    if pos + n_lat != end:
        raise StreamError("corrupt or truncated overfitted bitstream (latent stream length)")
    return Stream(h, w, config, {"arm": k_arm, "synthesis": k_syn}, quality, params, data[pos:end], version)
