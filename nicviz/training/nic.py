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

Checkpoints (``weights_only``-loadable) are written atomically every ``--ckpt-every``
seconds and at the end; rerunning the same command resumes at the saved step with the
same optimizer and random-number state. ``--init-from`` a working checkpoint with
``--keep-optimizer`` carries its optimizer moments (and weight average) into a new
schedule. ``--optimizer soap``: see :func:`~nicviz.training.nic_parts.make_optimizer`.
``--ema D`` keeps a moving average of the weights (decay ``D`` a step; Polyak & Juditsky,
SIAM J. Control Optim. 1992) that ``slim`` and ``export`` ship. ``--holdout K`` leaves
the last ``K`` training images (file order) out of the crops, for validation.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import time
from pathlib import Path

__all__ = ["LAMBDAS", "TrainingDiverged", "Trainer", "main", "train", "rd_forward", "export_model", "slim_checkpoint", "load_checkpoint", "CropSampler"]

#: Steps timed to size a ``--time-budget`` run: from the first to the second.
CALIBRATION = (10, 40)
#: Non-finite steps in a row that stop a run as diverged (isolated ones are skipped).
MAX_SKIPS = 5


from nicviz.codecs.weights import restore_likelihood_bounds  # noqa: E402
from nicviz.training.nic_cli import ARCHS, build_parser  # noqa: E402,F401 - ARCHS: the trainable architectures
from nicviz.training.nic_export import export_model, parse_meta, record_kodak, slim_checkpoint  # noqa: E402
from nicviz.training.nic_parts import (  # noqa: E402
    LAMBDAS,
    CropSampler,
    TrainingDiverged,
    _fixed_quality,
    _save_atomic,
    _split_params,
    bf16_is_fast,
    budget_clock,
    build_training_model,
    fill_quality_min,
    load_checkpoint,
    lr_at,
    make_optimizer,
    rd_forward,
    rd_loss,
    relevel_state,
    resolve_device,
    steps_for_budget,
    weight_average,
)


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
        self.q_min = int(cfg.get("q_min", 1))
        self.precision = cfg.get("precision", "fp32")
        self.channels_last = bool(cfg.get("channels_last", False))
        if self.channels_last and self.precision == "fp32" and not self.device.startswith("cuda"):
            # measured: torch 2.14.1's float32 channels-last CPU backward corrupts the heap; bf16 trains
            raise ValueError("--channels-last on the CPU needs --precision bf16 (float32 channels-last crashes "
                             "torch's CPU backward)")
        if self.precision == "bf16" and self.device == "cpu" and not bf16_is_fast():
            print("warning: no AMX or AVX-512 BF16 on this CPU: bf16 is emulated, many times slower", file=sys.stderr)
        if self.levels:
            from nicviz.codecs.neural.gained import lambda_for

            self.lmbda = 0.0  # one lambda per image, drawn every step
            self.lambda_table = torch.tensor([lambda_for(q) for q in range(self.q_min, self.q_min + self.levels)],
                                             device=self.device)
        else:
            self.lmbda = cfg["lmbda"] if cfg.get("lmbda") is not None else LAMBDAS[cfg["quality"]]
        random.seed(cfg["seed"])
        torch.manual_seed(cfg["seed"])
        model = build_training_model(cfg["arch"], cfg["N"], self.levels, self.q_min).to(self.device)
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        self.main_params, aux_params = _split_params(self.model)
        gains = [p for n, p in self.model.named_parameters() if n in ("log_gain", "log_inv_gain")]
        other = [p for p in self.main_params if all(p is not g for g in gains)]
        # the gains move in the log domain, where the network's learning rate is far too slow
        self.opt = make_optimizer(cfg.get("optimizer") or "adam", [
            {"params": other, "scale": 1.0}, {"params": gains, "scale": float(cfg.get("gain_lr_scale", 10.0))}], cfg["lr"])
        self.aux_opt = torch.optim.Adam(aux_params, lr=cfg["aux_lr"])
        self.sampler = CropSampler(Path(cfg["data"]), cfg["patch"], cfg["seed"], holdout=int(cfg.get("holdout", 0) or 0))
        self.ema = weight_average(self.model, float(cfg.get("ema", 0) or 0))
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
        self.model.load_state_dict(fill_quality_min(self.model, state["model"]))
        self.opt.load_state_dict(state["opt"])
        self.aux_opt.load_state_dict(state["aux_opt"])
        self._load_ema(state)
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
            init["quality_min"] = self.model.quality_min.detach().clone()
        elif self.levels:
            init = relevel_state(self.model, fill_quality_min(self.model, init), bool(self.cfg.get("keep_optimizer")))
        self.model.load_state_dict(init)
        restore_likelihood_bounds(self.model)
        self._load_ema(None)
        if self.cfg.get("keep_optimizer"):
            if "opt" not in state:
                raise ValueError(f"{path}: a slim or shipped model keeps no optimizer state; --keep-optimizer needs "
                                 "the working checkpoint")
            try:
                self.opt.load_state_dict(state["opt"])
                self.aux_opt.load_state_dict(state["aux_opt"])
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}: its optimizer state does not fit this model ({exc})") from None
            self._load_ema(state)
        self.base_steps = int(state.get("step", 0)) + int(state.get("base_steps", 0))
        self.base_from = Path(path).name
        print(f"initialised from {path} ({self.base_steps} steps)", file=sys.stderr)

    def _load_ema(self, state: dict | None) -> None:
        """A new average of the model as loaded (its buffers, such as a shipped model's CDF
        tables, sized as the model's), holding ``state``'s average where it has one."""
        self.ema = weight_average(self.model, float(self.cfg.get("ema", 0) or 0))
        if self.ema is not None and state is not None and "ema" in state:
            # the average keeps parameters only: the buffers come from the live model
            self.ema.module.load_state_dict({**self.model.state_dict(), **state["ema"]})
            self.ema.n_averaged.fill_(int(state.get("ema_n", 1)))

    def _diverged(self, why: str) -> TrainingDiverged:
        return TrainingDiverged(f"{why}: training diverged; {self.ckpt} keeps its last finite state; rerun with a "
                                "lower --lr or longer --warmup")

    def save(self) -> None:
        import torch

        if not all(bool(torch.isfinite(q).all()) for q in self.main_params):
            raise self._diverged(f"non-finite weights at step {self.step_no}")
        extra: dict[str, object] = {"cuda_rng": torch.cuda.get_rng_state()} if self.device.startswith("cuda") else {}
        if self.ema is not None:
            extra |= {"ema": {n: q.detach() for n, q in self.ema.module.named_parameters()},  # parameters only
                      "ema_n": int(self.ema.n_averaged)}
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
        lmbda: float | torch.Tensor = self.lmbda
        if self.levels:
            q = torch.randint(self.q_min, self.q_min + self.levels, (x.shape[0],), device=self.device)
            self.model.set_quality(q.float())
            lmbda = self.lambda_table[q - self.q_min]
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
        if self.ema is not None:
            self.ema.update_parameters(self.model)
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
        clock = budget_clock(self.device)
        loop_start, last_save, t_cal = clock(), time.monotonic(), 0.0  # log "seconds": the budget's clock
        with log_path.open("a", newline="") as log:
            writer = csv.writer(log)
            if new_log:
                writer.writerow(["step", "lr", "loss", "bpp", "mse", "psnr", "aux", "seconds", "skipped"])
            while self.step_no < cfg["steps"]:
                if calibrating and self.step_no == CALIBRATION[0]:
                    self._sync()
                    t_cal = clock()
                elif calibrating and self.step_no == CALIBRATION[1]:
                    self._sync()
                    now = clock()
                    rate = (CALIBRATION[1] - CALIBRATION[0]) / max(now - t_cal, 1e-9)
                    cfg["steps"] = steps_for_budget(self.step_no, rate, budget - (now - loop_start))
                    calibrating = False
                    print(f"time budget {budget:.0f} s: {rate:.2f} steps/s, training {cfg['steps']} steps",
                          file=sys.stderr, flush=True)
                if budget > 0 and clock() - loop_start > budget * 1.1:
                    print(f"stopping at step {self.step_no}: over the time budget", file=sys.stderr, flush=True)
                    break
                lr = lr_at(self.step_no, cfg["steps"], cfg["lr"], cfg["warmup"], cfg["lr"] * cfg["final_lr_ratio"])
                self.step(lr)
                if self.step_no % cfg["log_every"] == 0 or self.step_no == cfg["steps"]:
                    record = self.record(lr, clock() - loop_start)
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
    """Run (or resume) training; returns the final log record. With ``args.time_budget``
    (seconds of :func:`~nicviz.training.nic_parts.budget_clock`) the step count is set once,
    after timing ``CALIBRATION`` steps, so that the schedule ends within the budget; it is
    stored in the checkpoint, so a resumed run follows the same schedule."""
    return Trainer(args).run()


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__.splitlines()[0]).parse_args(argv)
    try:
        if args.action == "export":
            print(export_model(args.ckpt, args.out, parse_meta(args.meta)))
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
