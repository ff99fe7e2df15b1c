"""The pieces of NIC training (:mod:`nicviz.training.nic`): models, crops, the
rate-distortion forward pass and loss, the schedule, checkpoints."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from nicviz.codecs.neural.gained import LAMBDAS as _ALL_LAMBDAS
from nicviz.errors import NicvizError

#: CompressAI's MSE lambdas of the six Cheng2020 qualities (one table: ``codecs.gained.LAMBDAS`` has all of them)
LAMBDAS = {q: v for q, v in _ALL_LAMBDAS.items() if 1 <= q <= 6}


def _half(key: str, v):
    """Float16 for storage, except the entropy models' bounds: 1e-9 is 0 in float16."""
    return v.half() if v.is_floating_point() and not key.endswith(".bound") else v


def _fixed_quality(path: str, state: dict) -> int:
    """The quality a fixed-rate model was trained for: its checkpoint's, or its shipped
    JSON's, else 3."""
    if isinstance(state.get("args"), dict) and "quality" in state["args"]:
        return int(state["args"]["quality"])
    meta = Path(str(path).removesuffix(".pt") + ".json")
    try:
        return int(json.loads(meta.read_text())["quality"])
    except (OSError, ValueError, KeyError):
        return 3


def build_training_model(arch: str, n: int, levels: int = 0, q_min: int = 1):
    """A fixed-rate model, or with ``levels`` > 0 a variable-rate (gained) one for
    qualities ``q_min..q_min + levels - 1``."""
    if levels:
        from nicviz.codecs.neural.gained import build_gained

        return build_gained(arch, n, levels, q_min)
    return build_model(arch, n)


def fill_quality_min(model, state: dict) -> dict:
    """``state`` with the gained model's ``quality_min`` buffer added where it predates it
    (every such state was trained for qualities from 1)."""
    if "quality_min" in model.state_dict() and "quality_min" not in state:
        import torch

        return {**state, "quality_min": torch.tensor(1, dtype=torch.int64)}
    return state


def relevel_state(model, init: dict, keep_optimizer: bool = False) -> dict:
    """A variable-rate state trained for other qualities than ``model``'s, its gain rows
    moved to the model's qualities (new ones extrapolated,
    :func:`~nicviz.codecs.neural.gained.relevel_gains`)."""
    from nicviz.codecs.neural.gained import relevel_gains

    q0, levels = int(init["quality_min"]), int(init["log_gain"].shape[0])
    q_min, new_levels = int(model.q_min), int(model.levels)
    if (q0, levels) == (q_min, new_levels):
        return init
    if keep_optimizer:
        raise ValueError("--keep-optimizer needs the same qualities as the run it continues")
    print(f"gains of qualities {q0}..{q0 + levels - 1} moved to {q_min}..{q_min + new_levels - 1}", file=sys.stderr)
    return {**init, "quality_min": model.quality_min.detach().clone(),
            **{k: relevel_gains(init[k], q0, q_min, new_levels) for k in ("log_gain", "log_inv_gain")}}


def build_model(arch: str, n: int):
    from nicviz.codecs.weights import import_compressai

    import_compressai()
    from compressai.models import Cheng2020Anchor, Cheng2020Attention

    return {"cheng2020-anchor": Cheng2020Anchor, "cheng2020-attn": Cheng2020Attention}[arch](N=n)


def weight_average(model, decay: float):
    """An exponential moving average of ``model``'s parameters (``torch.optim.swa_utils``),
    or ``None`` for ``decay`` 0. Parameters only: the entropy models' integer CDF buffers
    are rebuilt at export."""
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)


def holdout_images(folder: Path, holdout: int) -> list[Path]:
    """The ``holdout`` images a ``--holdout`` run leaves out of its crops (the last in file order)."""
    from nicviz.datasets import list_images

    return list(list_images(folder))[-holdout:] if holdout else []


class CropSampler:
    """Random crops with random horizontal/vertical flips from images held in memory."""

    def __init__(self, folder: Path, patch: int, seed: int, holdout: int = 0) -> None:
        from nicviz.datasets import list_images
        from nicviz.images import ImageError, load_image

        self.images = []
        files = list_images(folder)
        if holdout:
            if not 0 < holdout < len(files):
                raise ValueError(f"--holdout {holdout}: {folder} has {len(files)} images")
            files = files[:-holdout]  # the held-out images: holdout_images(folder, holdout)
        for p in files:
            try:
                a = load_image(p)
            except ImageError as exc:
                print(f"skipping {exc}", file=sys.stderr)
                continue
            if min(a.shape[:2]) >= patch:
                self.images.append(a)
        if not self.images:
            raise ValueError(f"{folder}: no training images of at least {patch} px")
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int, device: str = "cpu"):
        import torch

        out = np.empty((size, self.patch, self.patch, 3), np.uint8)
        for i in range(size):
            a = self.images[self.rng.integers(len(self.images))]
            top = self.rng.integers(a.shape[0] - self.patch + 1)
            left = self.rng.integers(a.shape[1] - self.patch + 1)
            c = a[top:top + self.patch, left:left + self.patch]
            if self.rng.random() < 0.5:
                c = c[:, ::-1]
            if self.rng.random() < 0.5:
                c = c[::-1]
            out[i] = c
        # contiguous NCHW: a channels-last input crashes CPU backward in torch 2.14.1
        x: torch.Tensor = torch.from_numpy(out)
        if device != "cpu":  # pinned + non_blocking: the copy does not wait for the GPU's queue
            x = x.pin_memory().to(device, non_blocking=True)
        return x.permute(0, 3, 1, 2).contiguous().float().div_(255.0)

    def state(self) -> dict:
        return {"bit_generator": json.dumps(self.rng.bit_generator.state)}

    def load_state(self, state: dict) -> None:
        self.rng.bit_generator.state = json.loads(state["bit_generator"])


def rd_forward(model, x, precision: str = "fp32"):
    """Forward pass with the codec's quantization in the synthesis path (see module doc).

    ``precision="bf16"`` runs the transforms (analysis, synthesis, hyper and context
    networks) under bfloat16 autocast; latents, likelihoods and so the rate stay float32.
    """
    import torch

    ac = torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    with ac:
        y = model.g_a(x).float()
        z = model.h_a(y).float()
    _, z_likelihoods = model.entropy_bottleneck(z)
    med = model.entropy_bottleneck._get_medians().reshape(1, -1, 1, 1)
    z_hat = z + (torch.round(z - med) + med - z).detach()
    y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5) if model.training else torch.round(y)
    with ac:
        params = model.h_s(z_hat)
        ctx = model.context_prediction(y_noisy)
        gp = model.entropy_parameters(torch.cat((params, ctx), dim=1)).float()
    scales, means = gp.chunk(2, 1)
    _, y_likelihoods = model.gaussian_conditional(y, scales, means=means)
    y_hat = y + (torch.round(y - means) + means - y).detach()
    with ac:
        x_hat = model.g_s(y_hat).float()
    return x_hat, (y_likelihoods, z_likelihoods)


def rd_loss(x, x_hat, likelihoods, lmbda):
    """``lambda * 255^2 * MSE + bpp`` per image, averaged; ``lmbda`` is a number or one
    value per image (variable-rate training). Returns loss, mean bpp, mean MSE."""
    import torch

    n, _, h, w = x.shape
    bpp = sum(torch.log(lk).reshape(n, -1).sum(1) for lk in likelihoods) / (-math.log(2) * h * w)
    mse = torch.mean((x_hat - x) ** 2, dim=(1, 2, 3))
    lm = torch.as_tensor(lmbda, dtype=x.dtype, device=x.device)
    return torch.mean(lm * 255**2 * mse + bpp), bpp.mean(), mse.mean()


def lr_at(step: int, total: int, peak: float, warmup: int, final: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * t))


def load_checkpoint(path: str | os.PathLike, need: tuple[str, ...] = ("model", "args", "step", "lmbda")) -> dict:
    """``torch.load(weights_only=True)`` of a training checkpoint; anything else (a missing
    file, another kind of file, a pickle that would run code) is a one-line ``ValueError``."""
    import torch

    if not Path(path).is_file():
        raise ValueError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ValueError(f"{path}: not a loadable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or any(k not in state for k in need):
        raise ValueError(f"{path}: not a nicviz training checkpoint (needs {', '.join(need)})")
    return state


def _save_atomic(obj: dict, path: Path) -> None:
    import torch

    from nicviz.paths import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _split_params(model):
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    return main, aux


class TrainingDiverged(NicvizError):
    """The loss became NaN or infinite; the checkpoint on disk is left as it was."""


def resolve_device(name: str) -> str:
    """``auto`` is ``cuda`` where a GPU is visible, else ``cpu``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible")
    return name


#: ``--optimizer`` choices of the main parameters (the entropy bottleneck's quantiles keep Adam)
OPTIMIZERS = ("adam", "soap")


def make_optimizer(kind: str, groups: list[dict], lr: float):
    """Adam (Kingma & Ba, ICLR 2015), or SOAP: Adam run in the eigenbasis of Shampoo's
    preconditioner (Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam",
    ICLR 2025, arXiv 2409.11321), from the ``pytorch-optimizer`` package. For learned
    image codecs Zhang & Zhu (arXiv 2601.20769) report up to 70 % fewer steps to the same
    loss. SOAP here: the paper's betas (0.95, 0.95), its eigenbasis refreshed every 10
    steps, no weight decay (as Adam here)."""
    import torch

    if kind == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if kind != "soap":
        raise ValueError(f"unknown optimizer {kind!r}; choose from {', '.join(OPTIMIZERS)}")
    try:
        from pytorch_optimizer import SOAP
    except ImportError:
        raise ValueError("--optimizer soap needs the pip package pytorch-optimizer (requirements.txt)") from None
    return SOAP(groups, lr=lr, betas=(0.95, 0.95), weight_decay=0.0, precondition_frequency=10)


def bf16_is_fast() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX-512 BF16): without it
    torch emulates bf16 and a training step is many times slower than in float32."""
    import torch

    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def budget_clock(device: str):
    """The clock a ``--time-budget`` counts: this process's CPU seconds on the CPU (equal
    work for every run, however loaded the machine; runs use one thread), wall seconds on
    an accelerator (whose work the CPU clock does not see)."""
    import time

    return time.process_time if device == "cpu" else time.monotonic


def steps_for_budget(step: int, rate: float, remaining: float, margin: float = 0.93) -> int:
    """Total step count that fits ``remaining`` seconds at ``rate`` steps/s (with a margin)."""
    return step + max(1, int(remaining * rate * margin))
