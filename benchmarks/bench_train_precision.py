"""NIC training precision: fp32 against bfloat16 autocast + channels-last, in one run.

1. A fixed validation batch (8 crops of 128 px from the training data, seed 0) through
   the shipped anchor-mini q3 weights in eval mode (rounded latents): estimated bpp and
   PSNR in fp32 and in bf16 (requirement: rate within 1 %, PSNR within 0.05 dB).
2. Training steps (forward + backward + Adam, variable-rate model, 8 crops of 128 px):
   seconds per step of each configuration, median of the timed steps, and the ratio.

    python benchmarks/bench_train_precision.py [--threads 2] [--steps 8]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

from nicviz.codecs.neural.gained import build_gained
from nicviz.paths import data_root
from nicviz.training.nic import CropSampler, _split_params, rd_forward, rd_loss

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "nicviz" / "models" / "cheng2020-anchor-mini-q3.pt"


def load_model(channels_last: bool):
    torch.manual_seed(0)
    m = build_gained("cheng2020-anchor", 64, 8)
    sd = {k: v.float() for k, v in torch.load(WEIGHTS, weights_only=True).items()}
    sd["log_gain"], sd["log_inv_gain"] = m.log_gain.detach().clone(), m.log_inv_gain.detach().clone()
    m.load_state_dict(sd)
    return m.to(memory_format=torch.channels_last) if channels_last else m


def validate(x, precision: str, channels_last: bool) -> tuple[float, float]:
    m = load_model(channels_last).eval()
    m.set_quality(3)
    xx = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    with torch.no_grad():
        x_hat, lks = rd_forward(m, xx, precision)
        _, bpp, mse = rd_loss(x, x_hat.clamp(0, 1), lks, 0.0)
    return float(bpp), 10 * math.log10(1 / float(mse))


def time_steps(sampler, precision: str, channels_last: bool, steps: int) -> float:
    m = load_model(channels_last).train()
    main, _ = _split_params(m)
    opt = torch.optim.Adam(main, lr=1e-5)
    times = []
    for _ in range(steps + 2):
        x = sampler.batch(8)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        m.set_quality(torch.randint(1, 9, (8,)).float())
        t = time.perf_counter()
        x_hat, lks = rd_forward(m, x, precision)
        loss, _, _ = rd_loss(x, x_hat, lks, torch.full((8,), 0.0067))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:])  # the first steps warm up oneDNN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    root = data_root()
    if root is None:
        raise SystemExit("no data root: set NICVIZ_DATA (needs train_natural/)")
    sampler = CropSampler(root / "train_natural", 128, 0)
    x = sampler.batch(8)
    b32, p32 = validate(x, "fp32", False)
    b16, p16 = validate(x, "bf16", True)
    print(f"validation batch (8x128 px, anchor-mini q3 weights, eval mode, threads={args.threads}):")
    print(f"  fp32: {b32:.4f} bpp {p32:.3f} dB | bf16+channels-last: {b16:.4f} bpp {p16:.3f} dB")
    print(f"  rate difference {100 * (b16 / b32 - 1):+.2f} % (limit 1 %), PSNR {p16 - p32:+.3f} dB (limit 0.05)")
    t32 = time_steps(sampler, "fp32", False, args.steps)
    t16 = time_steps(sampler, "bf16", True, args.steps)
    t16c = time_steps(sampler, "bf16", False, args.steps)
    print(f"training step (8x128 px, variable rate): fp32 {t32:.3f} s, bf16 {t16c:.3f} s, "
          f"bf16+channels-last {t16:.3f} s -> {t32 / t16:.2f}x faster")


if __name__ == "__main__":
    main()
