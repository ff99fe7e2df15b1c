"""The neural codecs' bitstream container: header, entropy-coded strings, CRC (see
:mod:`nicviz.codecs.neural`)."""

from __future__ import annotations

import math
import struct
import zlib
from typing import NamedTuple

from nicviz.codecs.base import (
    CodecError,
)

_MAGIC = b"NV"
#: version 1: CompressAI's own (raster) coding order, integer quality, no checksum
#: version 2: schedule byte, float32 quality, CRC-32 of the strings
_VERSION = 2
_PAD = 64
#: entropy-coding schedules a version-2 header names
SCHEDULE_COMPRESSAI = 0  # the model's own compress/decompress (raster order for mbt2018/Cheng2020)
SCHEDULE_WAVEFRONT = 1  # nicviz.codecs.neural.wavefront: front t = 3i + j, one batch per front
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


def one_line(exc: BaseException, limit: int = 400) -> str:
    """Every line of an error joined into one (a state-dict error names its keys on later lines)."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
