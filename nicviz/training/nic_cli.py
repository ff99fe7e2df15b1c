"""Command line of ``nicviz train`` (:mod:`nicviz.training.nic`)."""

from __future__ import annotations

import argparse

from nicviz.training.nic_parts import LAMBDAS, OPTIMIZERS

__all__ = ["ARCHS", "build_parser"]

#: The architectures nicviz trains.
ARCHS = ("cheng2020-anchor", "cheng2020-attn")


def build_parser(description: str = "Train compact Cheng2020 models for nicviz.") -> argparse.ArgumentParser:
    """The parser of ``nicviz train`` (run, slim, export, record-kodak)."""
    p = argparse.ArgumentParser(prog="nicviz train", description=description)
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
    t.add_argument("--keep-optimizer", action="store_true",
                   help="with --init-from a working checkpoint: keep its Adam moments (and --ema average)")
    t.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999); shipped by slim/export")
    t.add_argument("--holdout", type=int, default=0, metavar="K",
                   help="leave the last K training images (file order) out, for validation")
    t.add_argument("--ckpt-every", type=float, default=180.0, help="seconds between checkpoints")
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    t.add_argument("--levels", type=int, default=0, choices=range(0, 10), metavar="K",
                   help="variable rate: one model for K qualities from --q-min (gain units); 0 = one quality")
    t.add_argument("--q-min", type=int, default=1, choices=(0, 1),
                   help="with --levels: the lowest quality (0: one step below CompressAI's ladder)")
    t.add_argument("--gain-lr-scale", type=float, default=10.0,
                   help="with --levels: learning rate of the gain units relative to --lr")
    t.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: bfloat16 autocast on the transforms (rate and loss stay float32)")
    t.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    t.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds (CPU seconds on the CPU): time the first steps, then set --steps to end in time")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="of the main parameters (soap: arXiv 2409.11321)")
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
