"""The overfitted decoder: a latent pyramid, an auto-regressive probability model (ARM),
a cascade of x2 upsamplings and a small synthesis network.

Design after COOL-CHIC (Ladune et al., ICCV 2023) and its low-complexity successor
(Leguay et al., MMSP 2023), with C3's two training phases (Kim et al., CVPR 2024):

- ``levels`` one-channel latent grids, level ``l`` of ``ceil(H / 2^l) x ceil(W / 2^l)``
  (full resolution down to 1/64 for 7 levels);
- the ARM: an MLP over the 12 causal neighbours of a latent in its own grid (the rows
  above within +-2 columns, two to the left), ``12 -> h -> h -> 2``, giving the location
  and log-scale of a Laplace distribution of that latent;
- upsampling: from the coarsest level, the stack is upsampled x2 (bilinear) and the next
  finer grid appended, down to full resolution (``levels`` channels);
- synthesis: 1x1 ``levels -> c``, ReLU, 1x1 ``c -> 3``, then two residual 3x3 ``3 -> 3``
  convolutions (the second after a ReLU), clamped to [0, 1] RGB.

Two forms of the same network: :class:`OverfittedModel` trains in float32 (PyTorch
autograd), and :func:`decode_exact` / :func:`arm_exact` decode with quantized parameters
in float64 fixed point. Every parameter there is an integer times ``2^-k``, inputs are
integers (latents) or dyadic (bilinear x2 weights are 1/4 and 3/4), every activation is
clamped to +-2^10 and rounded to a 2^-16 grid after each layer, so every product and
partial sum is exactly representable in float64 (under 2^53): the result does not depend
on summation order, blocking, thread count or machine, and the decoder reproduces the
encoder's reconstruction bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["Config", "OverfittedModel", "CONTEXT", "quantize_params", "arm_exact", "decode_exact",
           "macs_per_pixel", "level_shapes", "PARAM_GROUPS"]

#: causal neighbours (dy, dx) of a latent, in raster order: rows -2 and -1 (dx -2..2), then (0, -2), (0, -1)
CONTEXT = tuple((dy, dx) for dy in (-2, -1) for dx in range(-2, 3)) + ((0, -2), (0, -1))
#: fixed-point grid of activations in the exact decoder
FRAC_BITS = 16
#: activations and latents are clamped to +-LIMIT (keeps every sum under 2^53)
LIMIT = 2.0 ** 10
#: the parameter groups quantized with a step of their own
PARAM_GROUPS = ("arm", "synthesis")


@dataclass(frozen=True)
class Config:
    """Architecture of one overfitted decoder (sent in the bitstream header)."""

    levels: int = 7
    #: 16 since stop 25: on two 256 px Kodak crops at 1,000 iterations the gap to WebP went from
    #: -0.95 to -0.40 dB (kodim23) and +0.31 to +1.04 dB (kodim05) against 8, at 1.25x the
    #: time of an iteration at 768 x 512; 24 and 32 were no better (scripts/tune_overfitted_crop.py)
    arm_hidden: int = 16
    synth_hidden: int = 16

    def as_dict(self) -> dict:
        return asdict(self)


def level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """``(h, w)`` of each latent grid, finest first."""
    return [(math.ceil(height / 2 ** lv), math.ceil(width / 2 ** lv)) for lv in range(levels)]


def macs_per_pixel(config: Config) -> float:
    """Decoder multiplications per image pixel: the ARM on every latent (4/3 per pixel for a
    full pyramid), the x2 upsamplings (4 taps a value per level) and the synthesis."""
    h = config.arm_hidden
    arm = len(CONTEXT) * h + h * h + 2 * h
    latents = sum(4.0 ** -lv for lv in range(config.levels))
    up = sum(4 * (config.levels - lv) * 4.0 ** -lv for lv in range(config.levels - 1))
    c = config.synth_hidden
    synth = config.levels * c + 3 * c + 2 * 27
    return arm * latents + up + synth


def _torch():
    import torch

    return torch


class OverfittedModel:
    """The trainable form (float32). Built lazily on ``torch`` so that importing the codec
    registry costs nothing; its class is made once (``torch.compile`` guards on it)."""

    def __new__(cls, config: Config, height: int, width: int, seed: int = 0) -> Any:
        return _model_class()(config, height, width, seed)


@lru_cache(maxsize=1)
def _model_class() -> type:
    torch = _torch()
    nn = torch.nn

    class _Model(nn.Module):  # type: ignore[name-defined]  # torch is imported when a model is made
        def __init__(self, config: Config, height: int, width: int, seed: int) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.config = config
            self.height, self.width = height, width
            self.latents = nn.ParameterList(
                [nn.Parameter(torch.zeros(1, 1, h, w)) for h, w in level_shapes(height, width, config.levels)])
            hid, c, lv = config.arm_hidden, config.synth_hidden, config.levels

            def lin(n_out: int, n_in: int, gain: float = 1.0) -> tuple:
                bound = gain / math.sqrt(n_in)
                return (nn.Parameter((torch.rand(n_out, n_in, generator=g) * 2 - 1) * bound),
                        nn.Parameter(torch.zeros(n_out)))

            self.arm_w1, self.arm_b1 = lin(hid, len(CONTEXT))
            self.arm_w2, self.arm_b2 = lin(hid, hid)
            self.arm_w3, self.arm_b3 = lin(2, hid, 0.1)
            self.syn_w1, self.syn_b1 = lin(c, lv)
            self.syn_w2, self.syn_b2 = lin(3, c)
            self.res_w1 = nn.Parameter(torch.zeros(3, 3, 3, 3))
            self.res_b1 = nn.Parameter(torch.zeros(3))
            self.res_w2 = nn.Parameter(torch.zeros(3, 3, 3, 3))
            self.res_b2 = nn.Parameter(torch.zeros(3))
            with torch.no_grad():  # the output starts mid-grey: the 1x1 layers learn the rest
                self.syn_b2.fill_(0.5)

        def arm_groups(self) -> dict[str, list]:
            return {"arm": [self.arm_w1, self.arm_b1, self.arm_w2, self.arm_b2, self.arm_w3, self.arm_b3],
                    "synthesis": [self.syn_w1, self.syn_b1, self.syn_w2, self.syn_b2, self.res_w1, self.res_b1,
                                  self.res_w2, self.res_b2]}

        def arm(self, y):
            """Laplace location and log-scale of every latent of grid ``y`` (1, 1, h, w): the
            12 causal neighbours gathered as 12 rows of positions, then three matrix products
            with the channels first (GEMMs over (channels, positions) need no transposed copy:
            about 2x faster than rows of contexts, several times faster than 1x1 convolutions)."""
            f = torch.nn.functional
            h, w = y.shape[-2:]
            pad = f.pad(y[0, 0], (2, 2, 2, 0))
            ctx = torch.stack([pad[2 + dy: 2 + dy + h, 2 + dx: 2 + dx + w] for dy, dx in CONTEXT],
                              dim=0).reshape(len(CONTEXT), -1)
            z = torch.addmm(self.arm_b1[:, None], self.arm_w1, ctx).relu_()
            z = torch.addmm(self.arm_b2[:, None], self.arm_w2, z).relu_()
            out = torch.addmm(self.arm_b3[:, None], self.arm_w3, z)
            return out[0], out[1]

        def upsample(self, ys):
            f = torch.nn.functional
            u = ys[-1]
            for y in reversed(ys[:-1]):
                u = f.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)
                u = torch.cat((u[:, :, : y.shape[2], : y.shape[3]], y), dim=1)
            return u

        def synthesis(self, u):
            f = torch.nn.functional
            _, lv, hh, ww = u.shape
            z = u[0].reshape(lv, -1)  # (levels, pixels): channels first, as the GEMMs want them
            z = torch.addmm(self.syn_b1[:, None], self.syn_w1, z).relu_()
            x = torch.addmm(self.syn_b2[:, None], self.syn_w2, z).reshape(1, 3, hh, ww)
            # channels-last: oneDNN's 3-channel 3x3 convolution, forward and backward, is about
            # 4x faster so at 768 x 512 on this CPU (21 against 82 ms), the same numbers forward
            x = x.contiguous(memory_format=torch.channels_last)
            x = x + f.conv2d(x, self.res_w1, self.res_b1, padding=1)
            x = x + f.conv2d(f.relu(x), self.res_w2, self.res_b2, padding=1)
            return x

        def forward(self, ys):
            """Reconstruction (1, 3, H, W) and total bits of the latents ``ys`` (noisy or rounded)."""
            bits = 0.0
            for y in ys:
                mu, log_b = self.arm(y)
                bits = bits + laplace_bits(y.reshape(-1), mu.float(), log_b.float()).sum()
            return self.synthesis(self.upsample(ys)), bits

    return _Model


#: Laplace scales allowed (the rate model and the coder's table agree on this range)
LOG_B_MIN, LOG_B_MAX = math.log(0.04), math.log(80.0)


def laplace_bits(y, mu, log_b):
    """-log2 P(y) of integers (or noisy values) ``y`` under Laplace(mu, exp(log_b)) over
    the bin [y - 1/2, y + 1/2]."""
    torch = _torch()
    b = torch.exp(log_b.clamp(LOG_B_MIN, LOG_B_MAX))
    d = (y - mu).abs()
    # P = F(|d| + 1/2) - F(|d| - 1/2), the two-sided Laplace CDF, folded at the location
    upper = 1 - 0.5 * torch.exp(-(d + 0.5) / b)
    # both branches of where() are differentiated: keep each exponent finite (inf x 0 = NaN gradients)
    lower = torch.where(d >= 0.5, 1 - 0.5 * torch.exp(-(d.clamp_min(0.5) - 0.5) / b),
                        0.5 * torch.exp((d.clamp_max(0.5) - 0.5) / b))
    p = (upper - lower).clamp_min(2 ** -24)
    return -torch.log2(p)


def quantize_params(values: np.ndarray, k: int) -> np.ndarray:
    """Integers ``round(values * 2^k)`` (the parameter ``n / 2^k``)."""
    return np.round(np.asarray(values, dtype=np.float64) * 2.0 ** k).astype(np.int64)


def _fix(x):
    """Clamp to +-LIMIT and round to the 2^-16 grid, in place (``x`` must be a fresh tensor):
    exact, since every value is exactly representable. In place: about 10x faster than four
    new tensors a layer at 3 MP, the same numbers."""
    return x.clamp_(-LIMIT, LIMIT).mul_(2.0 ** FRAC_BITS).round_().mul_(2.0 ** -FRAC_BITS)


def _conv3x3(x, w, b):
    """A 3x3 convolution (padding 1) of ``x`` (C, H, W) float64 as 9 x C x C scaled
    additions of shifted views: twice as fast as ``conv2d`` in float64 on this CPU, and the
    same numbers (every partial sum is exact, so the order of the sums does not matter)."""
    torch = _torch()
    c, h, wd = x.shape
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
    out = b[:, None, None].expand(w.shape[0], h, wd).clone()
    for dy in range(3):
        for dx in range(3):
            view = xp[:, dy: dy + h, dx: dx + wd]
            for o in range(w.shape[0]):
                for i in range(c):
                    out[o].add_(view[i], alpha=float(w[o, i, dy, dx]))
    return out


def arm_exact(ctx, arm: dict):
    """Exact ARM on context rows ``ctx`` (P, 12) of integer latents (float64): the Laplace
    location and log-scale, each on the 2^-16 grid."""
    torch = _torch()
    h = _fix(torch.addmm(arm["b1"], ctx, arm["w1"].t()).relu_())
    h = _fix(torch.addmm(arm["b2"], h, arm["w2"].t()).relu_())
    out = _fix(torch.addmm(arm["b3"], h, arm["w3"].t()))
    return out[:, 0], out[:, 1]


def arm_exact_grid(y, arm: dict):
    """:func:`arm_exact` on every position of grid ``y`` (h, w) at once (the encoder's view)."""
    torch = _torch()
    h, w = y.shape
    pad = torch.nn.functional.pad(y[None, None], (2, 2, 2, 0))[0, 0]  # causal: no rows below
    ctx = torch.stack([pad[2 + dy: 2 + dy + h, 2 + dx: 2 + dx + w] for dy, dx in CONTEXT], dim=-1)
    mu, log_b = arm_exact(ctx.reshape(-1, len(CONTEXT)), arm)
    return mu.reshape(h, w), log_b.reshape(h, w)


def decode_exact(ys: list, syn: dict):
    """The reconstruction (H, W, 3) uint8 from integer latent grids ``ys`` (float64 tensors,
    finest first) and exact synthesis parameters (float64, each an integer times 2^-k)."""
    torch = _torch()
    f = torch.nn.functional
    u = ys[-1][None, None]
    for y in reversed(ys[:-1]):
        u = f.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)  # weights 1/4, 3/4: exact
        u = torch.cat((u[:, :, : y.shape[0], : y.shape[1]], y[None, None]), dim=1)
    _, lv, hh, ww = u.shape
    u = _fix(u[0].reshape(lv, -1).clone())  # (levels, pixels); a copy: the latents stay as they were
    h = _fix(torch.addmm(syn["b1"][:, None], syn["w1"], u).relu_())
    x = _fix(torch.addmm(syn["b2"][:, None], syn["w2"], h)).reshape(3, hh, ww)
    x = _fix(x + _conv3x3(x, syn["rw1"], syn["rb1"]))
    x = _fix(x + _conv3x3(x.relu(), syn["rw2"], syn["rb2"]))
    rgb = torch.round(x.clamp(0, 1) * 255).to(torch.uint8)
    return rgb.permute(1, 2, 0).contiguous().numpy()
