"""Per-image training of the overfitted decoder: rate + lambda x MSE, soft rounding then rounding.

Loss ``MSE + lambda x bpp`` (MSE on [0, 1] RGB, bpp from the ARM's Laplace model), Adam
with a cosine learning rate: 1e-2 for the networks and 0.05 for the latents. Phase 1 (95 %
of the iterations) replaces rounding with a differentiable proxy; phase 2 rounds the
latents in the forward pass and passes gradients straight through (C3, Kim et al., CVPR
2024), at a tenth of the learning rate, so the decoder learns the latents it will really
receive.

Phase 1 uses C3's soft rounding by default: the latent the decoder and the rate model see
is ``s_T(s_T(y) + u)``, ``u`` uniform in [-1/2, 1/2] and ``s_T`` the soft rounding of
Agustsson & Theis (NeurIPS 2020), ``s_T(y) = m + tanh((y - m) / T) / (2 tanh(1 / 2T))``
with ``m = floor(y) + 1/2``, its temperature annealed from 0.3 to 0.1 (C3). Measured on a
256 px crop of kodim23 at 1000 iterations, 3 qualities: the mean PSNR gap to WebP at equal
rate was -2.65 dB with plain noise (latent lr 0.2), -1.87 dB with soft rounding at latent
lr 0.2 and -1.55 dB at 0.05 (plain noise at 0.05: -4.66 dB; a decoder with twice the
ARM and synthesis width: -2.68 dB, so capacity was not the limit). Full-resolution
latents that are nonzero fell from 95-98 % to 5-29 %. A shorter rounding phase helped
most: 5 % of the iterations instead of 15 % gave -0.95 dB at 1000 iterations and -0.26 dB
at 3000 (15 %: -1.53 dB at 3000; the straight-through phase undoes part of the fit). The
latent rate 0.02 gave -1.76 dB, 0.1 -1.73 dB, a network rate of 2e-2 -3.04 dB. (One seed
each: differences under about 0.3 dB are within the noise of one fit.) The proxy of the
first version, uniform noise instead of soft rounding, remains as ``quantizer="noise"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from nicviz.codecs.overfitted.model import LIMIT, Config, OverfittedModel

__all__ = ["FitResult", "fit", "Cancelled", "learning_rate", "keep_heap", "compiled_objective"]

#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_heap() -> Callable[[], None]:
    """Keep freed memory in the process's heap while fitting; returns the function that
    gives it back. By default glibc serves each of a fit's 25 MB activations (16 x 393,216
    floats at 768 x 512) with a fresh ``mmap`` and unmaps it when freed, so every iteration
    faults in 64 MB of zeroed pages again (16,000 minor faults an iteration, measured): with
    the mmap threshold at its 32 MB maximum and no trimming, an iteration of kodim05 went
    from 0.26 to 0.24 s (faults 16,087 -> 453 an iteration). The returned function runs
    ``malloc_trim``, so a long-lived server does not keep a fit's memory. Elsewhere than
    glibc, nothing happens."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
    except (OSError, AttributeError):
        return lambda: None

    def release() -> None:
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)  # glibc's default
        libc.malloc_trim(0)

    return release


class Cancelled(Exception):
    """The progress callback asked to stop (a user pressed Cancel)."""


@dataclass
class FitResult:
    model: Any
    iterations: int
    seconds: float
    #: (iteration, bpp estimate, PSNR) at each report
    history: list


def learning_rate(it: int, iterations: int, lr: float, n_noise: int, final_scale: float = 0.1) -> float:
    """The fit's schedule: a cosine from ``lr`` over the first ``n_noise`` iterations (the
    noise / soft-rounding phase), then a second cosine from ``final_scale x lr`` over the
    straight-through phase (C3, Kim et al., CVPR 2024, restarts lower for its last phase)."""
    if it < n_noise:
        frac = it / n_noise  # as written before: the same floats, the same fits
        return lr * 0.5 * (1 + math.cos(math.pi * frac))
    frac = (it - n_noise) / max(1, iterations - n_noise)
    return final_scale * lr * 0.5 * (1 + math.cos(math.pi * frac))


def softround(y, t: float):
    """Soft rounding (Agustsson & Theis, 2020): ``floor(y) + 1/2 + tanh((r - 1/2) / t) /
    (2 tanh(1 / 2t))``, ``r`` the fractional part; the identity as ``t`` grows, rounding
    as it falls to 0, differentiable everywhere."""
    import torch

    m = torch.floor(y) + 0.5
    scale = 2 * (math.tanh(1 / (2 * t)) if isinstance(t, float) else torch.tanh(1 / (2 * t)))
    return m + torch.tanh((y - m) / t) / scale


def _objective(model, x, latents: list, noises: list | None, t, quantizer: str):
    """MSE and total bits of the reconstruction from ``latents`` with ``noises`` added
    (soft-rounded around them for ``softround``), or rounded straight through when
    ``noises`` is ``None``."""
    import torch

    if noises is None:
        ys = [y + (torch.round(y) - y).detach() for y in latents]
    elif quantizer == "noise":
        ys = [y + u for y, u in zip(latents, noises, strict=True)]
    else:
        ys = [softround(softround(y, t) + u, t) for y, u in zip(latents, noises, strict=True)]
    xhat, bits = model(ys)
    return torch.mean((xhat.float() - x) ** 2), bits


@lru_cache(maxsize=1)
def compiled_objective() -> Callable:
    """:func:`_objective` under ``torch.compile`` (inductor; made once a process, a graph
    for each image size and phase). On one core an iteration took 1/1.45 of the eager time
    at 768 x 512 and 1/1.65 at 180 x 180 (``benchmarks/bench_overfitted.py``); compiling
    costs 100-300 s for a new size, 15-25 s once inductor's on-disk cache has it, so it
    pays for many images of one size (a Kodak or ISIC sweep), not for one image."""
    import torch

    return torch.compile(_objective, dynamic=False)


#: the proxies of rounding in phase 1
QUANTIZERS = ("softround", "noise")


def fit(rgb: np.ndarray, lam: float, iterations: int, config: Config | None = None, seed: int = 0,
        lr: float = 1e-2, latent_lr: float = 0.05, noise_share: float = 0.95, device: str = "cpu",
        precision: str = "fp32", quantizer: str = "softround", temperature: tuple[float, float] = (0.3, 0.1),
        progress: Callable[[int, int, float, float], bool | None] | None = None, report_every: int = 50,
        st_latent_scale: float = 1.0, compiled: bool = False) -> FitResult:
    """Fit a decoder and latents to ``rgb`` (H x W x 3 uint8). ``progress(it, total, bpp,
    psnr)`` is called every ``report_every`` iterations; returning ``False`` cancels
    (:class:`Cancelled`). ``precision`` ``bf16`` runs the forward pass under bfloat16
    autocast (CPU AMX or GPU). ``quantizer``: ``softround`` (C3) or ``noise`` (additive
    uniform noise) in phase 1. ``st_latent_scale`` multiplies the latents' learning rate in
    the straight-through phase (the codec's recipe: 0, so that phase fits the ARM and the
    synthesis to the rounded latents and leaves the latents alone; 1 moved them too, which
    measured 12-15 % more rate at equal PSNR). ``compiled`` runs the loss through
    :func:`compiled_objective` (the same fit, other float rounding)."""
    if quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}")
    release = keep_heap()
    try:
        return _fit(rgb, lam, iterations, config, seed, lr, latent_lr, noise_share, device, precision,
                    quantizer, temperature, progress, report_every, st_latent_scale, compiled)
    finally:
        release()


def _fit(rgb, lam, iterations, config, seed, lr, latent_lr, noise_share, device, precision, quantizer,
         temperature, progress, report_every, st_latent_scale=1.0, compiled=False) -> FitResult:
    import torch


    config = config or Config()
    torch.manual_seed(seed)
    h, w = rgb.shape[:2]
    x = torch.tensor(np.asarray(rgb, dtype=np.uint8)).permute(2, 0, 1)[None].float().div(255).to(device)
    model = OverfittedModel(config, h, w, seed).to(device)
    latents = list(model.latents.parameters())
    ids = {id(p) for p in latents}
    net = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.Adam([{"params": net, "scale": 1.0},
                            {"params": latents, "scale": latent_lr / lr}], lr=lr)
    n_noise = max(1, int(round(iterations * noise_share)))
    gen = torch.Generator(device=device).manual_seed(seed)
    objective = compiled_objective() if compiled else _objective
    t0 = time.perf_counter()
    history = []
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")
    for it in range(iterations):
        rate = learning_rate(it, iterations, lr, n_noise)
        for i, g in enumerate(opt.param_groups):
            g["lr"] = rate * g["scale"] * (st_latent_scale if i == 1 and it >= n_noise else 1.0)
        t = temperature[0] * (temperature[1] / temperature[0]) ** (it / n_noise)  # geometric annealing
        noises = ([torch.rand(y.shape, generator=gen, device=device) - 0.5 for y in model.latents]
                  if it < n_noise else None)  # None: straight-through rounding
        with autocast:
            mse, bits = objective(model, x, list(model.latents), noises,
                                  torch.tensor(t, device=device) if compiled else t, quantizer)
        bpp = bits / (h * w)
        loss = mse + lam * bpp
        if not torch.isfinite(loss):
            raise FloatingPointError(f"fitting diverged at iteration {it + 1}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for y in model.latents:
                y.clamp_(-LIMIT + 1, LIMIT - 1)
        if (it + 1) % report_every == 0 or it + 1 == iterations:
            psnr = float(-10 * torch.log10(mse.detach().clamp_min(1e-10)))
            est = float(bpp.detach())
            history.append((it + 1, est, psnr))
            if progress is not None and progress(it + 1, iterations, est, psnr) is False:
                raise Cancelled
    return FitResult(model.cpu().eval(), iterations, time.perf_counter() - t0, history)
