"""Train compact Cheng2020 models (CompressAI architectures) for nicviz.

``nicviz train ...`` / ``python -m nicviz.training.nic ...``. Rate-distortion loss
``lambda * 255^2 * MSE + bpp`` with the entropy bottleneck's auxiliary loss on its own
optimizer, random crops and flips, gradient clipping, warm-up then cosine decay.

Quantization as the codec does it (Minnen & Singh, ICIP 2020): the rate term uses the
usual additive-noise proxy, but the synthesis transform sees
``round(y - mu) + mu`` (and ``round(z - median) + median`` for the hyper-latent),
passed with a straight-through gradient, which is what ``compress``/``decompress``
reconstruct. Plain CompressAI training decodes ``y + noise`` and evaluates ``round(y)``,
which costs about 0.8 dB against the real codec.

Checkpoints (``weights_only``-loadable: tensors, numbers, strings) are written
atomically every ``--ckpt-every`` seconds and at the end; rerunning the same command
resumes at the saved step with the same optimizer and random-number state.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from nicviz.codecs.neural.gained import LAMBDAS as _ALL_LAMBDAS
from nicviz.errors import NicvizError

__all__ = ["LAMBDAS", "TrainingDiverged", "Trainer", "main", "train", "rd_forward", "export_model", "slim_checkpoint", "load_checkpoint", "CropSampler"]

#: CompressAI's MSE lambdas of the six Cheng2020 qualities (one table: ``codecs.gained.LAMBDAS`` has all eight)
LAMBDAS = {q: v for q, v in _ALL_LAMBDAS.items() if q <= 6}
ARCHS = ("cheng2020-anchor", "cheng2020-attn")
#: Steps timed to size a ``--time-budget`` run: from the first to the second.
CALIBRATION = (10, 40)
#: Non-finite steps in a row that stop a run as diverged (isolated ones are skipped).
MAX_SKIPS = 5


from nicviz.codecs.weights import restore_likelihood_bounds  # noqa: E402


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


def build_training_model(arch: str, n: int, levels: int = 0):
    """A fixed-rate model, or with ``levels`` > 0 a variable-rate (gained) one."""
    if levels:
        from nicviz.codecs.neural.gained import build_gained

        return build_gained(arch, n, levels)
    return build_model(arch, n)


def build_model(arch: str, n: int):
    from nicviz.codecs.weights import import_compressai

    import_compressai()
    from compressai.models import Cheng2020Anchor, Cheng2020Attention

    return {"cheng2020-anchor": Cheng2020Anchor, "cheng2020-attn": Cheng2020Attention}[arch](N=n)


class CropSampler:
    """Random crops with random horizontal/vertical flips from images held in memory."""

    def __init__(self, folder: Path, patch: int, seed: int) -> None:
        from nicviz.datasets import list_images
        from nicviz.images import ImageError, load_image

        self.images = []
        for p in list_images(folder):
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
            y = self.rng.integers(a.shape[0] - self.patch + 1)
            x = self.rng.integers(a.shape[1] - self.patch + 1)
            c = a[y:y + self.patch, x:x + self.patch]
            if self.rng.random() < 0.5:
                c = c[:, ::-1]
            if self.rng.random() < 0.5:
                c = c[::-1]
            out[i] = c
        # contiguous NCHW: a channels-last input crashes CPU backward in torch 2.14.1
        x = torch.from_numpy(out)
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


def steps_for_budget(step: int, rate: float, remaining: float, margin: float = 0.93) -> int:
    """Total step count that fits ``remaining`` seconds at ``rate`` steps/s (with a margin)."""
    return step + max(1, int(remaining * rate * margin))


class Trainer:
    """One training run (or its resumption), in small steps: :meth:`run` calls
    :meth:`step` until the schedule ends; settings live in ``self.cfg`` (a copy of the
    command line's arguments, with the step count a time budget chose), never in the
    caller's namespace."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.cfg = {k: v for k, v in vars(args).items() if k != "func"}
        cfg = self.cfg
        torch.set_num_threads(cfg["threads"])
        torch.set_flush_denormal(True)  # denormal weights/gradients are slow on x86 and change nothing
        self.device = resolve_device(cfg.get("device", "cpu"))
        if self.device.startswith("cuda"):
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.ckpt = Path(cfg["ckpt"])
        self.ckpt.parent.mkdir(parents=True, exist_ok=True)
        self.levels = int(cfg.get("levels", 0) or 0)
        self.precision = cfg.get("precision", "fp32")
        self.channels_last = bool(cfg.get("channels_last", False))
        if self.levels:
            from nicviz.codecs.neural.gained import lambda_for

            self.lmbda = 0.0  # one lambda per image, drawn every step
            self.lambda_table = torch.tensor([lambda_for(q) for q in range(1, self.levels + 1)], device=self.device)
        else:
            self.lmbda = cfg["lmbda"] if cfg.get("lmbda") is not None else LAMBDAS[cfg["quality"]]
        random.seed(cfg["seed"])
        torch.manual_seed(cfg["seed"])
        model = build_training_model(cfg["arch"], cfg["N"], self.levels).to(self.device)
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        self.main_params, aux_params = _split_params(self.model)
        gains = [p for n, p in self.model.named_parameters() if n in ("log_gain", "log_inv_gain")]
        other = [p for p in self.main_params if all(p is not g for g in gains)]
        # the gains move in the log domain, where the network's learning rate is far too slow
        self.opt = torch.optim.Adam([{"params": other, "scale": 1.0},
                                     {"params": gains, "scale": float(cfg.get("gain_lr_scale", 10.0))}], lr=cfg["lr"])
        self.aux_opt = torch.optim.Adam(aux_params, lr=cfg["aux_lr"])
        self.sampler = CropSampler(Path(cfg["data"]), cfg["patch"], cfg["seed"])
        self.step_no, self.base_steps, self.base_from = 0, 0, ""
        self.skipped = self.run_of_skips = 0
        self.acc = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, bpp, mse, aux sums
        self.n_acc = 0
        if self.ckpt.is_file():
            self._resume()
        elif cfg.get("init_from"):
            self._init_from(cfg["init_from"])

    def _resume(self) -> None:
        import torch

        state = load_checkpoint(self.ckpt)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.aux_opt.load_state_dict(state["aux_opt"])
        self.sampler.load_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.startswith("cuda") and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        self.step_no = int(state["step"])
        if state["args"].get("time_budget"):
            self.cfg["steps"] = int(state["args"]["steps"])  # a budgeted run keeps its timed schedule
        self.base_steps, self.base_from = int(state.get("base_steps", 0)), str(state.get("base_from", ""))
        print(f"resumed {self.ckpt} at step {self.step_no}", file=sys.stderr)

    def _init_from(self, path: str) -> None:
        state = load_checkpoint(path, need=())
        init = {k: v.float() if v.is_floating_point() else v
                for k, v in (state["model"] if "model" in state else state).items()}
        if self.levels and "log_gain" not in init:  # a fixed-rate model: gains around its own quality
            from nicviz.codecs.neural.gained import init_gains

            init_gains(self.model, _fixed_quality(path, state))
            init["log_gain"] = self.model.log_gain.detach().clone()
            init["log_inv_gain"] = self.model.log_inv_gain.detach().clone()
        self.model.load_state_dict(init)
        restore_likelihood_bounds(self.model)
        self.base_steps = int(state.get("step", 0)) + int(state.get("base_steps", 0))
        self.base_from = Path(path).name
        print(f"initialised from {path} ({self.base_steps} steps)", file=sys.stderr)

    def _diverged(self, why: str) -> TrainingDiverged:
        return TrainingDiverged(f"{why}: training diverged; {self.ckpt} keeps its last finite state; rerun with a "
                                "lower --lr or longer --warmup")

    def save(self) -> None:
        import torch

        if not all(bool(torch.isfinite(q).all()) for q in self.main_params):
            raise self._diverged(f"non-finite weights at step {self.step_no}")
        extra = {"cuda_rng": torch.cuda.get_rng_state()} if self.device.startswith("cuda") else {}
        _save_atomic({
            "model": self.model.state_dict(), "opt": self.opt.state_dict(), "aux_opt": self.aux_opt.state_dict(),
            "sampler": self.sampler.state(), "torch_rng": torch.get_rng_state(), "step": self.step_no, **extra,
            "args": {k: v for k, v in self.cfg.items() if isinstance(v, (int, float, str))},
            "lmbda": self.lmbda, "base_steps": self.base_steps, "base_from": self.base_from,
        }, self.ckpt)

    def step(self, lr: float) -> None:
        """One optimisation step at ``lr``; a non-finite one is skipped (``MAX_SKIPS`` in a
        row raise :class:`TrainingDiverged`)."""
        import torch

        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("scale", 1.0)
        x = self.sampler.batch(cfg["batch"], self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.opt.zero_grad(set_to_none=True)
        self.aux_opt.zero_grad(set_to_none=True)
        lmbda = self.lmbda
        if self.levels:
            q = torch.randint(1, self.levels + 1, (x.shape[0],), device=self.device)
            self.model.set_quality(q.float())
            lmbda = self.lambda_table[q - 1]
        x_hat, lks = rd_forward(self.model, x, self.precision)
        loss, bpp, mse = rd_loss(x, x_hat, lks, lmbda)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.main_params, cfg["clip"] if cfg["clip"] > 0 else float("inf"))
        aux = self.model.aux_loss()
        self.step_no += 1
        bad = [n for n, v in (("loss", loss), ("gradient", grad_norm), ("aux loss", aux)) if not torch.isfinite(v)]
        if bad:
            # one bad batch (as mixed-precision loss scaling does): skip it, keep the weights;
            # MAX_SKIPS in a row means the weights themselves went bad: stop
            self.skipped += 1
            self.run_of_skips += 1
            print(f"step {self.step_no - 1}: non-finite {bad[0]} (bpp {float(bpp):.4g}, mse {float(mse):.4g}): "
                  "step skipped", file=sys.stderr, flush=True)
            if self.run_of_skips >= MAX_SKIPS:
                raise self._diverged(f"the loss is not finite by step {self.step_no - 1} (lr {lr:.3g}, "
                                     f"{self.run_of_skips} steps in a row)")
            return
        self.run_of_skips = 0
        self.opt.step()
        aux.backward()
        self.aux_opt.step()
        self.acc += torch.stack([loss.detach(), bpp.detach(), mse.detach(), aux.detach()]).double()
        self.n_acc += 1

    def record(self, lr: float, seconds: float) -> dict:
        """Means since the last record (and the skip count), as one log line."""
        mean_loss, mean_bpp, m, mean_aux = (self.acc / max(self.n_acc, 1)).tolist()
        if not (math.isfinite(mean_loss) and math.isfinite(mean_aux)):
            raise self._diverged(f"the loss is not finite by step {self.step_no} (lr {lr:.3g})")
        self.acc.zero_()
        self.n_acc = 0
        return {"step": self.step_no, "lr": lr, "loss": mean_loss, "bpp": mean_bpp, "mse": m,
                "psnr": 10 * math.log10(1 / max(m, 1e-12)), "aux": mean_aux, "seconds": seconds,
                "skipped": self.skipped}

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def run(self) -> dict:
        """Train to the end of the schedule (or of the time budget); returns the last record."""
        cfg = self.cfg
        log_path = Path(str(self.ckpt) + ".log.csv")
        new_log = not log_path.exists()
        record: dict = {}
        budget = float(cfg.get("time_budget", 0) or 0)
        calibrating = budget > 0 and self.step_no == 0
        if calibrating:
            cfg["steps"] = 10**9  # placeholder until timed; warm-up covers the calibration steps
            cfg["warmup"] = max(cfg["warmup"], CALIBRATION[1])
        self.model.train()
        t0, loop_start, last_save, t_cal = time.perf_counter(), time.monotonic(), time.monotonic(), 0.0
        with log_path.open("a", newline="") as log:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["step", "lr", "loss", "bpp", "mse", "psnr", "aux", "seconds", "skipped"])
            while self.step_no < cfg["steps"]:
                if calibrating and self.step_no == CALIBRATION[0]:
                    self._sync()
                    t_cal = time.monotonic()
                elif calibrating and self.step_no == CALIBRATION[1]:
                    self._sync()
                    now = time.monotonic()
                    rate = (CALIBRATION[1] - CALIBRATION[0]) / max(now - t_cal, 1e-9)
                    cfg["steps"] = steps_for_budget(self.step_no, rate, budget - (now - loop_start))
                    calibrating = False
                    print(f"time budget {budget:.0f} s: {rate:.2f} steps/s, training {cfg['steps']} steps",
                          file=sys.stderr, flush=True)
                if budget > 0 and time.monotonic() - loop_start > budget * 1.1:
                    print(f"stopping at step {self.step_no}: over the time budget", file=sys.stderr, flush=True)
                    break
                lr = lr_at(self.step_no, cfg["steps"], cfg["lr"], cfg["warmup"], cfg["lr"] * cfg["final_lr_ratio"])
                self.step(lr)
                if self.step_no % cfg["log_every"] == 0 or self.step_no == cfg["steps"]:
                    record = self.record(lr, time.perf_counter() - t0)
                    writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in record.values()])
                    log.flush()
                    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                          file=sys.stderr, flush=True)
                if time.monotonic() - last_save > cfg["ckpt_every"]:
                    self.save()
                    last_save = time.monotonic()
        self.save()
        return record


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final log record.

    With ``args.time_budget`` (seconds) the total step count is set once, after timing
    ``CALIBRATION`` steps, so that the schedule (warm-up, cosine decay) ends within the
    budget; the chosen count is stored in the checkpoint, so a resumed or repeated run
    follows the same schedule. ``args`` itself is left as it was.
    """
    return Trainer(args).run()


def _code_version() -> str:
    import subprocess

    from nicviz import __version__

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = ""
    return f"nicviz {__version__}" + (f" (git {rev})" if rev else "")


def export_model(ckpt: str | os.PathLike, out: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write an updated (CDF tables built), float16 state dict and a metadata JSON beside it."""
    import torch

    state = load_checkpoint(ckpt)
    args = state["args"]
    levels = int(args.get("levels", 0) or 0)
    model = build_training_model(args["arch"], int(args["N"]), levels)
    # float16 first, then the CDF tables: the tables are built from the weights that ship
    model.load_state_dict({k: _half(k, v).float() for k, v in state["model"].items()})
    restore_likelihood_bounds(model)
    model.eval()
    model.update(force=True)
    sd = {k: _half(k, v) for k, v in model.state_dict().items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, out)
    info = {
        "architecture": args["arch"], "N": int(args["N"]),
        **({"variable_rate": "gain units (Cui et al., CVPR 2021)", "qualities": [1, levels],
            "lambdas": "CompressAI's table per integer quality, log-linear between"} if levels else
           {"quality": int(args["quality"]), "lambda": float(state["lmbda"])}),
        "precision": str(args.get("precision", "fp32")), "steps": int(state["step"]) + int(state.get("base_steps", 0)),
        "fine_tuned_from": state.get("base_from") or None,
        "fine_tune_steps": int(state["step"]) if state.get("base_from") else None,
        "batch": int(args["batch"]),
        "patch": int(args["patch"]), "lr": float(args["lr"]), "seed": int(args["seed"]),
        "training_data": Path(args["data"]).name,
        "trained_by": "nicviz (not CompressAI's official weights)",
        "code_version": _code_version(),
        "storage": "float16 state dict, loaded as float32",
        **(meta or {}),
    }
    Path(str(out).removesuffix(".pt") + ".json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def slim_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Keep what ``export`` needs (float16 weights, arguments, steps), drop optimizer state:
    a trained checkpoint small enough to move between machines."""

    state = load_checkpoint(ckpt)
    slim = {k: state[k] for k in ("args", "lmbda", "step", "base_steps", "base_from") if k in state}
    slim["model"] = {k: _half(k, v) for k, v in state["model"].items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(slim, out)
    return out


def record_kodak(results: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write each shipped model's measured Kodak figures (real bitstreams) into its JSON:
    mean bpp/PSNR/MS-SSIM over the 24 images and the kodim01 bpp and PSNR."""
    from nicviz.codecs.neural import MINI_MODELS, MODELS_DIR
    from nicviz.results import read_results

    df = read_results(results)
    folder = Path(models_dir) if models_dir else MODELS_DIR
    written = []
    for codec in MINI_MODELS:
        for q, g in df[df["codec"] == codec].groupby("quality"):
            meta_file = folder / f"{codec}-q{int(q)}.json"
            if not meta_file.is_file():
                continue
            meta = json.loads(meta_file.read_text())
            k1 = g[g["image"].astype(str).str.endswith("kodim01.png")]
            meta["kodak"] = {
                "images": int(g["image"].nunique()), "bpp": float(g["bpp"].mean()), "psnr": float(g["psnr"].mean()),
                "ms_ssim": float(g["ms_ssim"].mean()) if "ms_ssim" in g else None,
                "rate": "real bitstreams (model.compress)", "results": str(results),
            }
            if len(k1):
                meta["kodim01"] = {"bpp": float(k1["bpp"].iloc[0]), "psnr": float(k1["psnr"].iloc[0])}
            meta_file.write_text(json.dumps(meta, indent=2) + "\n")
            written.append(meta_file)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nicviz train", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    t = sub.add_parser("run", help="train or resume")
    t.add_argument("--arch", choices=ARCHS, default="cheng2020-anchor")
    t.add_argument("--N", type=int, default=64)
    t.add_argument("--quality", type=int, choices=sorted(LAMBDAS), default=3)
    t.add_argument("--lmbda", type=float, help="override the quality's lambda")
    t.add_argument("--data", help="training image folder (default: <data root>/train_natural)")
    t.add_argument("--steps", type=int, default=10000)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--patch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    t.add_argument("--warmup", type=int, default=200)
    t.add_argument("--final-lr-ratio", type=float, default=0.05)
    t.add_argument("--aux-lr", type=float, default=1e-3)
    t.add_argument("--clip", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--ckpt", required=True, help="checkpoint path (resumed when it exists)")
    t.add_argument("--init-from", help="start from another checkpoint (fine-tune a neighbour quality)")
    t.add_argument("--ckpt-every", type=float, default=180.0, help="seconds between checkpoints")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    t.add_argument("--levels", type=int, default=0, choices=range(0, 9), metavar="K",
                   help="variable rate: one model for qualities 1..K (gain units); 0 = one quality")
    t.add_argument("--gain-lr-scale", type=float, default=10.0,
                   help="with --levels: learning rate of the gain units relative to --lr")
    t.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast on the transforms (rate and loss stay float32)")
    t.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    t.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds: time the first steps, then set --steps so the schedule ends in time")
    sl = sub.add_parser("slim", help="float16 weights without optimizer state (to move a checkpoint)")
    sl.add_argument("ckpt")
    sl.add_argument("out")
    e = sub.add_parser("export", help="write a shippable float16 model + metadata")
    e.add_argument("ckpt")
    e.add_argument("out")
    e.add_argument("--meta", default="{}", help="JSON object of extra metadata (hardware, procedure, ...)")
    r = sub.add_parser("record-kodak", help="store measured Kodak figures in the shipped models' metadata")
    r.add_argument("results", help="sweep results of the mini codecs on kodak")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.action == "export":
            try:
                extra = json.loads(args.meta)
            except json.JSONDecodeError as exc:
                raise ValueError(f"--meta is not JSON: {exc}") from None
            if not isinstance(extra, dict):
                raise ValueError("--meta must be a JSON object")
            print(export_model(args.ckpt, args.out, extra))
            return 0
        if args.action == "slim":
            print(slim_checkpoint(args.ckpt, args.out))
            return 0
        if args.action == "record-kodak":
            for f in record_kodak(args.results):
                print(f)
            return 0
        if args.data is None:
            from nicviz.paths import data_root

            root = data_root()
            if root is None:
                raise ValueError("no training data: pass --data or set NICVIZ_DATA")
            args.data = str(root / "train_natural")
        if "kodak" in Path(args.data).resolve().as_posix().lower():
            raise ValueError("refusing to train on Kodak: it is the test set")
        train(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"nicviz train: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
