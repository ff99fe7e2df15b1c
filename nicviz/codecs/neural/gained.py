"""Variable-rate Cheng2020 models with gain units.

One network serves a continuous range of qualities (Cui, Wang, Chen, Zhu, Ma, Bai:
"Asymmetric Gained Deep Image Compression With Continuous Rate Adaptation", CVPR 2021):
a learned gain vector ``g_q`` (one value per latent channel) scales the analysis output,
``y = g_a(x) * g_q``, before quantization and entropy coding, and an inverse gain
``g'_q`` rescales the dequantised latent before synthesis, ``x_hat = g_s(y_hat * g'_q)``.
Larger gains give finer effective quantization steps, so more bits and quality.

Integer quality ``q`` owns the gain pair trained with CompressAI's lambda for ``q``
(:data:`LAMBDAS`; quality 0, below CompressAI's ladder of 1..8, continues the ladder's
ratio of about 2 between neighbours, for the low rates of dermoscopy and plate studies);
a fractional quality interpolates geometrically between its integer
neighbours (the paper's exponential interpolation),
``g = g_lo^(1-t) * g_hi^t`` with ``t = q - floor(q)``, and its lambda log-linearly.

The gains are applied by forward hooks on ``g_a`` and ``g_s``, so CompressAI's own
``forward``, ``compress`` and ``decompress`` (and nicviz's wavefront coder) run
unchanged; :meth:`set_quality` selects the rate before each call.

Since the gain comes after ``g_a``, the analysis of an image does not depend on the rate:
:func:`memoize_analysis` keeps the last images' ``g_a`` outputs, so a new quality of the
same image (Compare's slider) skips the heaviest transform. The numbers are the ones a
fresh ``g_a`` gives (the same input, weights and kernels), so streams are unchanged.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LAMBDAS", "lambda_for", "build_gained", "gained_from_state_dict", "init_gains", "memoize_analysis",
           "relevel_gains"]

#: CompressAI's MSE lambdas per integer quality (1..8), and quality 0 below them (q1's
#: lambda squared over q2's: the ladder's ratio continued one step down).
LAMBDAS = {0: 0.0009, 1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}


def lambda_for(quality: float) -> float:
    """Lambda of a (possibly fractional) quality: log-linear between the table's entries."""
    lo = math.floor(quality)
    if lo not in LAMBDAS or (quality > lo and lo + 1 not in LAMBDAS):
        raise ValueError(f"quality {quality} is outside {min(LAMBDAS)}..{max(LAMBDAS)}")
    t = quality - lo
    if t == 0:
        return LAMBDAS[lo]
    return math.exp((1 - t) * math.log(LAMBDAS[lo]) + t * math.log(LAMBDAS[lo + 1]))


def _attach(model, levels: int, channels: int, q_min: int = 1) -> None:
    """Add ``log_gain`` / ``log_inv_gain`` parameters of shape ``(levels, channels)`` (log
    domain: interpolation is geometric and gains stay positive), the lowest quality as the
    buffer ``quality_min`` (so the state dict says which qualities its rows are), and the
    two hooks."""
    import torch

    model.q_min = q_min
    model.register_buffer("quality_min", torch.tensor(q_min, dtype=torch.int64))
    model.levels = levels
    model.log_gain = torch.nn.Parameter(torch.zeros(levels, channels))
    model.log_inv_gain = torch.nn.Parameter(torch.zeros(levels, channels))
    model._gain = None
    model._inv_gain = None

    def set_quality(q) -> None:
        """Select the rate: a number (every image) or a 1-D tensor (one per image)."""
        q_t = torch.as_tensor(q, dtype=torch.float32, device=model.log_gain.device).reshape(-1)
        lo_f = torch.floor(q_t)
        if bool(((q_t < model.q_min) | (q_t > model.q_min + model.levels - 1)).any()):
            raise ValueError(f"quality outside {model.q_min}..{model.q_min + model.levels - 1}")
        idx_lo = (lo_f - model.q_min).long()
        idx_hi = torch.clamp(idx_lo + 1, max=model.levels - 1)
        t = (q_t - lo_f)[:, None]
        lg = (1 - t) * model.log_gain[idx_lo] + t * model.log_gain[idx_hi]
        lig = (1 - t) * model.log_inv_gain[idx_lo] + t * model.log_inv_gain[idx_hi]
        model._gain = torch.exp(lg)[:, :, None, None]
        model._inv_gain = torch.exp(lig)[:, :, None, None]

    def _after_g_a(_module, _inputs, y):
        if model._gain is None:
            raise RuntimeError("call set_quality() before coding with a variable-rate model")
        return y.float() * model._gain  # latents in float32: bf16 cannot hold integer steps

    def _before_g_s(_module, inputs):
        (y_hat,) = inputs
        return (y_hat.float() * model._inv_gain,)

    model.set_quality = set_quality
    model.g_a.register_forward_hook(_after_g_a)
    model.g_s.register_forward_pre_hook(_before_g_s)


def memoize_analysis(model, images: int = 2) -> None:
    """Keep ``g_a``'s output (before the gain) for the last ``images`` inputs, keyed by a
    digest of the input tensor, and reuse it when the same image is coded again. Only
    without autograd (coding, not training). The memo lives on the model: hold the codec's
    lock while coding, as for :meth:`set_quality`."""
    import hashlib

    import torch

    if getattr(model, "_analysis_memo", None) is not None:
        return
    memo: list[tuple[tuple, Any]] = []
    model._analysis_memo = memo
    forward = model.g_a.forward

    def _memo_forward(x):
        if torch.is_grad_enabled():
            return forward(x)
        key = (tuple(x.shape), str(x.dtype), hashlib.blake2b(x.detach().cpu().numpy().tobytes(),
                                                               digest_size=16).digest())
        for k, y in memo:
            if k == key:
                return y
        y = forward(x)
        memo.append((key, y))
        del memo[:-images]
        return y

    model.g_a.forward = _memo_forward  # the instance attribute: nn.Module.__call__ runs it, then the gain hook


def init_gains(model, ref_quality: float) -> None:
    """Start the gains where rate-distortion theory puts them: at high rate the best
    quantization step of quality q scales as ``lambda_q ** -0.5``, so ``g_q =
    sqrt(lambda_q / lambda_ref)`` (inverse gains ``1 / g_q``), with the model's own
    fixed-rate quality ``ref_quality`` at gain 1. Learned gains starting at 1 spread
    far too slowly (a few percent per thousand steps)."""
    import torch

    with torch.no_grad():
        for i in range(model.levels):
            lg = 0.5 * math.log(lambda_for(model.q_min + i) / lambda_for(ref_quality))
            model.log_gain[i].fill_(lg)
            model.log_inv_gain[i].fill_(-lg)


def build_gained(arch: str, n: int, levels: int = 8, q_min: int = 1):
    """A Cheng2020 model (``cheng2020-anchor`` or ``cheng2020-attn``, N channels) with
    ``levels`` gain pairs for qualities ``q_min..q_min + levels - 1``."""
    if q_min not in LAMBDAS or q_min + levels - 1 not in LAMBDAS or levels < 1:
        raise ValueError(f"qualities {q_min}..{q_min + levels - 1} are outside {min(LAMBDAS)}..{max(LAMBDAS)}")
    from nicviz.codecs.weights import import_compressai

    import_compressai()
    from compressai.models import Cheng2020Anchor, Cheng2020Attention

    cls = {"cheng2020-anchor": Cheng2020Anchor, "cheng2020-attn": Cheng2020Attention}[arch]
    model = cls(N=n)
    _attach(model, levels, n, q_min)
    return model


def state_quality_min(state: dict) -> int:
    """The lowest quality of a gained state dict (1 for those written before quality 0)."""
    q = state.get("quality_min")
    return 1 if q is None else int(q)


def gained_from_state_dict(arch: str, state: dict):
    """Build a gained model from its state dict (N, levels and the lowest quality read from
    the tensors)."""
    levels, n = state["log_gain"].shape
    q_min = state_quality_min(state)
    model = build_gained(arch, int(n), int(levels), q_min)
    model.load_state_dict({**state, "quality_min": model.quality_min})
    return model


def relevel_gains(log_gain, q_min: int, new_q_min: int, new_levels: int):
    """Gain rows for qualities ``new_q_min..new_q_min + new_levels - 1`` from rows trained
    for ``q_min..``: each quality's log gain interpolated linearly in the quality between
    the two nearest trained rows, and extrapolated from the two end rows outside them (the
    trained log gains are close to linear in the quality: the ladder is geometric)."""
    import torch

    levels = log_gain.shape[0]
    rows = []
    for q in range(new_q_min, new_q_min + new_levels):
        pos = q - q_min
        lo = min(max(math.floor(pos), 0), max(levels - 2, 0))
        hi = min(lo + 1, levels - 1)
        t = pos - lo
        rows.append(log_gain[lo] if hi == lo else (1 - t) * log_gain[lo] + t * log_gain[hi])
    return torch.stack(rows)
