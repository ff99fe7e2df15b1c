"""Entropy coding of the overfitted codec: latents with CompressAI's rANS coder driven by
the ARM's Laplace distributions (decoded front by front), parameters with signed
exponential-Golomb codes.

Latents. For a latent with ARM location ``mu`` and log-scale ``log_b`` the coder uses
the table distribution of index ``(s, o)``: ``s`` the nearest of :data:`SCALES` log-spaced
scales, ``o`` one of ``offsets`` bins of the fractional part of ``mu`` (4 in version-1
streams, :data:`OFFSETS` = 16 since version 2: on 256 px crops the coded latents went from
3 % above the ARM's own bits to 0.6 %); the symbol is ``y - round(mu)``. The tables are discretised Laplace distributions quantized to 16-bit
CDFs by CompressAI's ``pmf_to_quantized_cdf``, with its escape for symbols outside the
table. Both sides compute ``mu`` and ``log_b`` exactly (see ``model.arm_exact``) and the
table index with IEEE arithmetic only, so they agree on every symbol.

Decoding order: grids coarsest first; within a grid, the fronts ``t = 3i + j`` of the
12-neighbour causal context (every neighbour of (i, j) lies on an earlier front, as in
``nicviz.codecs.neural.wavefront``), so a front's latents are decoded together.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np

from nicviz.codecs.overfitted.model import CONTEXT, FRAC_BITS, LIMIT, LOG_B_MAX, LOG_B_MIN, arm_exact_grid

__all__ = ["encode_latents", "decode_latents", "write_golomb", "read_golomb", "SCALES", "OFFSETS", "BitReader",
           "BitWriter", "StreamError", "OFFSETS_BY_VERSION"]

SCALES = 64
#: location bins of the tables in the streams written now (version 2); version 1 had 4
OFFSETS = 16
#: location bins by stream version
OFFSETS_BY_VERSION = {1: 4, 2: 16}
_STEP = (LOG_B_MAX - LOG_B_MIN) / (SCALES - 1)
_PRECISION = 16
_lock = threading.Lock()


class StreamError(ValueError):
    """A corrupt or truncated stream."""


def table_index(mu, log_b, offsets: int = OFFSETS):
    """``(index, centre)`` of the coding table of each latent: scale bin x offset bin, and
    ``round(mu)`` (torch float64 in, torch int64 out; IEEE arithmetic only)."""
    torch = __import__("torch")
    s = torch.round((log_b.clamp(LOG_B_MIN, LOG_B_MAX) - LOG_B_MIN) / _STEP).clamp(0, SCALES - 1)
    centre = torch.round(mu)
    o = torch.floor((mu - centre + 0.5) * offsets).clamp(0, offsets - 1)
    return (s * offsets + o).long(), centre


def _laplace_cdf(x: np.ndarray, c: float, b: float) -> np.ndarray:
    return np.where(x < c, 0.5 * np.exp((x - c) / b), 1 - 0.5 * np.exp(-(x - c) / b))


@lru_cache(maxsize=2)
def tables(bins: int = OFFSETS) -> tuple[list[list[int]], list[int], list[int]]:
    """CDFs, lengths and offsets of every (scale, location bin) table, in CompressAI's format."""
    from compressai._CXX import pmf_to_quantized_cdf

    cdfs, lengths, offsets = [], [], []
    for s in range(SCALES):
        b = math.exp(LOG_B_MIN + s * _STEP)
        r = int(min(max(8, math.ceil(b * 12)), LIMIT))
        for o in range(bins):
            c = -0.5 + (o + 0.5) / bins
            k = np.arange(-r, r + 1, dtype=np.float64)
            pmf = _laplace_cdf(k + 0.5, c, b) - _laplace_cdf(k - 0.5, c, b)
            tail = max(1.0 - float(pmf.sum()), 1e-9)
            cdfs.append(pmf_to_quantized_cdf([*pmf.tolist(), tail], _PRECISION))
            lengths.append(len(pmf) + 2)
            offsets.append(-r)
    return cdfs, lengths, offsets


def _tables_for(indexes: list[int], bins: int = OFFSETS):
    """Only the tables a call uses, its indexes renumbered (the coder converts every table it is given)."""
    used = sorted(set(indexes))
    where = {k: i for i, k in enumerate(used)}
    cdfs, lengths, offsets = tables(bins)
    return ([where[k] for k in indexes], [cdfs[k] for k in used], [lengths[k] for k in used],
            [offsets[k] for k in used])


def fronts(h: int, w: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) of each front ``t = 3i + j`` of an h x w grid, in coding order."""
    t = np.arange(3 * (h - 1) + w)
    out = []
    for tt in t:
        i = np.arange(max(0, -(-(tt - w + 1) // 3)), min(h - 1, tt // 3) + 1)
        if len(i):  # a grid narrower than 3 leaves some fronts empty
            out.append((i, tt - 3 * i))
    return out


def _order(h: int, w: int) -> np.ndarray:
    """Flat positions of an h x w grid in front order (the order symbols are coded in)."""
    i, j = np.divmod(np.arange(h * w), w)
    return np.lexsort((i, 3 * i + j))


def encode_latents(ys: list, arm: dict, offsets: int = OFFSETS) -> bytes:
    """One rANS stream of the integer latent grids ``ys`` (float64 torch, finest first)."""
    from compressai.ans import BufferedRansEncoder

    enc = BufferedRansEncoder()
    for y in reversed(ys):
        mu, log_b = arm_exact_grid(y, arm)
        idx, centre = table_index(mu.reshape(-1), log_b.reshape(-1), offsets)
        order = _order(*y.shape)
        sym = (y.reshape(-1) - centre).long().numpy()[order]
        with _lock:
            enc.encode_with_indexes(sym.tolist(), *_tables_for(idx.numpy()[order].tolist(), offsets))
    return enc.flush()


def _fix_np(x: np.ndarray) -> np.ndarray:
    """:func:`model._fix` in numpy, in place (the same IEEE operations, the same numbers)."""
    np.clip(x, -LIMIT, LIMIT, out=x)
    x *= 2.0 ** FRAC_BITS
    np.round(x, out=x)  # half to even, as torch.round
    x *= 2.0 ** -FRAC_BITS
    return x


def _arm_np(ctx: np.ndarray, arm: dict) -> tuple[np.ndarray, np.ndarray]:
    """:func:`model.arm_exact` in numpy: a front's few hundred latents pay numpy's small
    per-operation cost instead of torch's (every product and sum is exact, so the result is
    the encoder's to the bit)."""
    h = _fix_np(np.maximum(ctx @ arm["w1"].T + arm["b1"], 0.0))
    h = _fix_np(np.maximum(h @ arm["w2"].T + arm["b2"], 0.0))
    out = _fix_np(h @ arm["w3"].T + arm["b3"])
    return out[:, 0], out[:, 1]


def _table_index_np(mu: np.ndarray, log_b: np.ndarray, offsets: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`table_index` in numpy (the same IEEE operations)."""
    s = np.clip(np.round((np.clip(log_b, LOG_B_MIN, LOG_B_MAX) - LOG_B_MIN) / _STEP), 0, SCALES - 1)
    centre = np.round(mu)
    o = np.clip(np.floor((mu - centre + 0.5) * offsets), 0, offsets - 1)
    return (s * offsets + o).astype(np.int64), centre


def decode_latents(data: bytes, shapes: list[tuple[int, int]], arm: dict, offsets: int = OFFSETS) -> list:
    """Inverse of :func:`encode_latents`: the grids (float64 torch, finest first)."""
    import torch
    from compressai.ans import RansDecoder

    dec = RansDecoder()
    dec.set_stream(data)
    out = []
    dy = np.array([d for d, _ in CONTEXT]) + 2
    dx = np.array([d for _, d in CONTEXT]) + 2
    arm_np = {k: v.numpy() for k, v in arm.items()}
    for h, w in reversed(shapes):
        pad = np.zeros((h + 2, w + 4), dtype=np.float64)
        for rows, cols in fronts(h, w):
            mu, log_b = _arm_np(pad[rows[:, None] + dy, cols[:, None] + dx], arm_np)
            idx, centre = _table_index_np(mu, log_b, offsets)
            val = np.asarray(dec.decode_stream(*_tables_for(idx.tolist(), offsets)), dtype=np.float64) + centre
            if np.abs(val).max() > LIMIT:
                raise StreamError("corrupt overfitted bitstream (a latent out of range)")
            pad[rows + 2, cols + 2] = val
        out.append(torch.from_numpy(pad[2:, 2:-2].copy()))
    return out[::-1]


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def write(self, value: int, n: int) -> None:
        self.bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

    def getvalue(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return np.packbits(np.array(bits, dtype=np.uint8)).tobytes() if bits else b""


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self.pos = 0

    def read(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise StreamError("truncated overfitted bitstream (parameters)")
        v = 0
        for b in self.bits[self.pos: self.pos + n]:
            v = (v << 1) | int(b)
        self.pos += n
        return v


def golomb_bits(values: np.ndarray, order: int) -> int:
    """Length in bits of signed exp-Golomb codes of ``values`` with ``order``."""
    u = np.where(values > 0, 2 * values - 1, -2 * values).astype(np.int64) + (1 << order)
    return int(np.sum(2 * np.floor(np.log2(u)).astype(np.int64) + 1 - order))


def write_golomb(w: BitWriter, values: np.ndarray, order: int) -> None:
    """Signed exp-Golomb codes (0, 1, -1, 2, -2, ... mapped to 0, 1, 2, 3, 4, ...) of order ``order``."""
    for v in values.tolist():
        u = (2 * v - 1 if v > 0 else -2 * v) + (1 << order)
        n = u.bit_length()
        w.write(0, n - 1 - order)
        w.write(u, n)


def read_golomb(r: BitReader, count: int, order: int) -> np.ndarray:
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        zeros = 0
        while r.read(1) == 0:
            zeros += 1
            if zeros > 40:
                raise StreamError("corrupt overfitted bitstream (parameters)")
        n = zeros + order + 1
        u = (1 << (n - 1)) | r.read(n - 1) if n > 1 else 1
        u -= 1 << order
        out[i] = (u + 1) // 2 if u % 2 else -(u // 2)
    return out
