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

from nicviz.errors import NicvizError

__all__ = ["LAMBDAS", "TrainingDiverged", "main", "train", "rd_forward", "export_model", "slim_checkpoint", "load_checkpoint", "CropSampler"]

#: CompressAI's MSE lambdas per quality.
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483}
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
        from nicviz.codecs.gained import build_gained

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


def train(args: argparse.Namespace) -> dict:
    """Run (or resume) training; returns the final log record.

    With ``args.time_budget`` (seconds) the total step count is set once, after timing
    ``CALIBRATION`` steps, so that the schedule (warm-up, cosine decay) ends within the
    budget; the chosen count is stored in the checkpoint, so a resumed or repeated run
    follows the same schedule.
    """
    import torch

    torch.set_num_threads(args.threads)
    device = resolve_device(getattr(args, "device", "cpu"))
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ckpt = Path(args.ckpt)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    levels = int(getattr(args, "levels", 0) or 0)
    precision = getattr(args, "precision", "fp32")
    channels_last = bool(getattr(args, "channels_last", False))
    torch.set_flush_denormal(True)  # denormal weights/gradients are slow on x86 and change nothing
    if levels:
        from nicviz.codecs.gained import lambda_for

        lmbda = 0.0  # one lambda per image, drawn every step
        lambda_table = torch.tensor([lambda_for(q) for q in range(1, levels + 1)], device=device)
    else:
        lmbda = args.lmbda if args.lmbda is not None else LAMBDAS[args.quality]
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_training_model(args.arch, args.N, levels).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    main_params, aux_params = _split_params(model)
    gain_params = [p for n, p in model.named_parameters() if n in ("log_gain", "log_inv_gain")]
    other = [p for p in main_params if all(p is not g for g in gain_params)]
    # the gains move in the log domain, where 1e-4 per step is far too slow
    opt = torch.optim.Adam([{"params": other, "scale": 1.0},
                            {"params": gain_params, "scale": float(getattr(args, "gain_lr_scale", 10.0))}],
                           lr=args.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=args.aux_lr)
    sampler = CropSampler(Path(args.data), args.patch, args.seed)
    step = 0
    base_steps, base_from = 0, ""
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        sampler.load_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if device.startswith("cuda") and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        step = int(state["step"])
        if state["args"].get("time_budget"):
            args.steps = int(state["args"]["steps"])  # a budgeted run keeps its timed schedule
        base_steps, base_from = int(state.get("base_steps", 0)), str(state.get("base_from", ""))
        print(f"resumed {ckpt} at step {step}", file=sys.stderr)
    elif args.init_from:
        state = load_checkpoint(args.init_from, need=())
        init = {k: v.float() if v.is_floating_point() else v
                for k, v in (state["model"] if "model" in state else state).items()}
        if levels and "log_gain" not in init:  # a fixed-rate model: gains around its own quality
            from nicviz.codecs.gained import init_gains

            init_gains(model, _fixed_quality(args.init_from, state))
            init["log_gain"] = model.log_gain.detach().clone()
            init["log_inv_gain"] = model.log_inv_gain.detach().clone()
        model.load_state_dict(init)
        restore_likelihood_bounds(model)
        base_steps = int(state.get("step", 0)) + int(state.get("base_steps", 0))
        base_from = Path(args.init_from).name
        print(f"initialised from {args.init_from} ({base_steps} steps)", file=sys.stderr)
    log_path = Path(str(ckpt) + ".log.csv")
    new_log = not log_path.exists()
    log = log_path.open("a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "lr", "loss", "bpp", "mse", "psnr", "aux", "seconds", "skipped"])
    model.train()
    last_save = time.monotonic()
    t0 = time.perf_counter()
    acc = torch.zeros(4, dtype=torch.float64, device=device)  # loss, bpp, mse, aux: summed on the device
    n_acc = 0
    skipped = run_of_skips = 0
    record: dict = {}

    budget = float(getattr(args, "time_budget", 0) or 0)
    calibrating = budget > 0 and step == 0
    if calibrating:
        args.steps = 10**9  # placeholder until timed; warm-up covers the calibration steps
        args.warmup = max(args.warmup, CALIBRATION[1])
    loop_start = time.monotonic()
    t_cal = 0.0

    def save() -> None:
        if not all(bool(torch.isfinite(q).all()) for q in main_params):
            raise TrainingDiverged(f"non-finite weights at step {step}: training diverged; {ckpt} keeps its "
                                   "last finite state; rerun with a lower --lr or longer --warmup")
        extra = {"cuda_rng": torch.cuda.get_rng_state()} if device.startswith("cuda") else {}
        _save_atomic({
            "model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
            "sampler": sampler.state(), "torch_rng": torch.get_rng_state(), "step": step, **extra,
            "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str)) and k != "func"},
            "lmbda": lmbda, "base_steps": base_steps, "base_from": base_from,
        }, ckpt)

    while step < args.steps:
        lr = lr_at(step, args.steps, args.lr, args.warmup, args.lr * args.final_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr * g.get("scale", 1.0)
        if calibrating and step == CALIBRATION[0]:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t_cal = time.monotonic()
        elif calibrating and step == CALIBRATION[1]:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            now = time.monotonic()
            rate = (CALIBRATION[1] - CALIBRATION[0]) / max(now - t_cal, 1e-9)
            args.steps = steps_for_budget(step, rate, budget - (now - loop_start))
            calibrating = False
            print(f"time budget {budget:.0f} s: {rate:.2f} steps/s, training {args.steps} steps", file=sys.stderr,
                  flush=True)
        if budget > 0 and time.monotonic() - loop_start > budget * 1.1:
            print(f"stopping at step {step}: over the time budget", file=sys.stderr, flush=True)
            break
        x = sampler.batch(args.batch, device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        aux_opt.zero_grad(set_to_none=True)
        step_lmbda = lmbda
        if levels:
            q = torch.randint(1, levels + 1, (x.shape[0],), device=device)
            model.set_quality(q.float())
            step_lmbda = lambda_table[q - 1]
        x_hat, lks = rd_forward(model, x, precision)
        loss, bpp, mse = rd_loss(x, x_hat, lks, step_lmbda)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(main_params, args.clip if args.clip > 0 else float("inf"))
        aux = model.aux_loss()
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm) and torch.isfinite(aux)):
            # one bad batch (as mixed-precision loss scaling does): skip it, keep the weights;
            # MAX_SKIPS in a row means the weights themselves went bad: stop
            skipped += 1
            run_of_skips += 1
            print(f"step {step}: non-finite {'loss' if not torch.isfinite(loss) else 'gradient' if not torch.isfinite(grad_norm) else 'aux loss'}"
                  f" (bpp {float(bpp):.4g}, mse {float(mse):.4g}): step skipped", file=sys.stderr, flush=True)
            if run_of_skips >= MAX_SKIPS:
                log.close()
                raise TrainingDiverged(
                    f"the loss is not finite by step {step} (lr {lr:.3g}, {run_of_skips} steps in a row): training "
                    f"diverged; {ckpt} keeps its last finite state; rerun with a lower --lr or longer --warmup")
            opt.zero_grad(set_to_none=True)
            aux_opt.zero_grad(set_to_none=True)
            step += 1
            continue
        run_of_skips = 0
        opt.step()
        aux.backward()
        aux_opt.step()
        step += 1
        acc += torch.stack([loss.detach(), bpp.detach(), mse.detach(), aux.detach()]).double()
        n_acc += 1
        if step % args.log_every == 0 or step == args.steps:
            mean_loss, mean_bpp, m, mean_aux = (acc / max(n_acc, 1)).tolist()
            if not (math.isfinite(mean_loss) and math.isfinite(mean_aux)):
                log.close()
                raise TrainingDiverged(
                    f"the loss is not finite by step {step} (lr {lr:.3g}): training diverged; "
                    f"{ckpt} keeps its last finite state; rerun with a lower --lr or longer --warmup")
            record = {"step": step, "lr": lr, "loss": mean_loss, "bpp": mean_bpp, "mse": m,
                      "psnr": 10 * math.log10(1 / max(m, 1e-12)), "aux": mean_aux,
                      "seconds": time.perf_counter() - t0, "skipped": skipped}
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in record.values()])
            log.flush()
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                  file=sys.stderr, flush=True)
            acc.zero_()
            n_acc = 0
        if time.monotonic() - last_save > args.ckpt_every:
            save()
            last_save = time.monotonic()
    save()
    log.close()
    return record


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
