"""Training recipes for the variable-rate minis, measured side by side from one start
(issue 25): every variant trains for the same CPU seconds (this process's CPU time, so a
loaded machine gives each the same work) from the same weights, in two halves as
sessions do (the second resumes from the first half's working checkpoint), then is coded
with real bitstreams on BSDS500 images held out of its crops (``--holdout``) and
compared by BD-rate (PSNR, pchip) with the first variant; ``--kodak N`` confirms on Kodak.
A stopped run resumes: rerun the same command (each half resumes its checkpoint).

Variants (``--variants``, first = the reference):
- ``base``: today's recipe: 8 crops of 128 px, a cold Adam state at each half;
- ``crop256``: 2 crops of 256 px (Cheng2020's hyperprior sees a 4x4 grid, not 2x2);
- ``ema``: the base recipe with a moving average of the weights (``--ema 0.999``);
- ``keep-adam``: the base recipe, the Adam moments carried into the second half;
- ``soap``: the base recipe with SOAP instead of Adam (arXiv 2409.11321; arXiv 2601.20769
  reports up to 70 % fewer steps for learned image codecs);
- ``all``: crop256 + ema + keep-adam.

    python scripts/compare_recipes.py --start results/training/V-cheng2020-anchor-cpu.pt \\
        --seconds 1800 [--parallel 2] [--holdout 30] [--kodak 24] [--out out/recipes]

Both halves of each variant run with one thread; ``--parallel`` variants at once. The
table (variant, steps, CPU seconds, held-out bpp and PSNR per quality, BD-rate) is printed
and written to ``<out>/recipes.csv`` with a ``.meta.json`` (seed, versions, data names).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
from nicviz.training.nic_parts import bf16_is_fast  # noqa: E402

VARIANTS = {
    "base": {"run": [], "keep": False},
    "crop256": {"run": ["--patch", "256", "--batch", "2"], "keep": False},
    "ema": {"run": ["--ema", "0.999"], "keep": False},
    "keep-adam": {"run": [], "keep": True},
    "soap": {"run": ["--optimizer", "soap"], "keep": False},
    "all": {"run": ["--patch", "256", "--batch", "2", "--ema", "0.999"], "keep": True},
}
COMMON = ["--N", "64", "--levels", "8", "--lr", "5e-5", "--warmup", "100", "--batch", "8", "--patch", "128",
          "--threads", "1", "--log-every", "50", "--ckpt-every", "120"]
#: bf16 + channels-last where the CPU has AMX or AVX-512 BF16 (2.7x a step on AMX); float32
#: elsewhere (emulated bf16 is many times slower). A dry run's few steps stay fp32: bf16 +
#: channels-last spends its first steps (tens of seconds each) creating kernels
FAST = ["--precision", "bf16", "--channels-last"] if bf16_is_fast() else []


def _train_cmd(arch: str, data: str, ckpt: Path, init: Path, seconds: float, holdout: int, extra: list[str],
               keep: bool, steps: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "nicviz.training.nic", "run", "--arch", arch, "--data", data, "--ckpt", str(ckpt),
           "--init-from", str(init), "--holdout", str(holdout), *COMMON, *extra]
    cmd += ["--steps", str(steps), "--log-every", "1"] if steps else ["--time-budget", str(seconds), *FAST]
    return cmd + (["--keep-optimizer"] if keep else [])


def _variant(name: str, args: argparse.Namespace, out: Path) -> subprocess.Popen:
    """Both halves of one variant, one after the other, in one background shell."""
    v = VARIANTS[name]
    first, second = out / f"{name}-1.pt", out / f"{name}-2.pt"
    half = args.seconds / 2
    steps = args.dry_run_steps or None
    one = _train_cmd(args.arch, args.data, first, Path(args.start), half, args.holdout, v["run"], False, steps)
    two = _train_cmd(args.arch, args.data, second, first, half, args.holdout, v["run"], v["keep"], steps)
    log = (out / f"{name}.log").open("w")
    script = " && ".join(" ".join(f"'{c}'" for c in cmd) for cmd in (one, two))
    return subprocess.Popen(["bash", "-c", script], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})


def _measure(name: str, ckpt: Path, arch: str, images, qualities: list[float]) -> pd.DataFrame:
    from nicviz.codecs import register_codec, unregister_codec
    from nicviz.codecs.neural import mini_codec
    from nicviz.sweep import run_sweep
    from nicviz.training.nic import export_model

    codec = f"recipe-{name}"
    folder = Path(tempfile.mkdtemp(prefix="nicviz-recipe-"))
    export_model(ckpt, folder / f"{codec}.pt")
    register_codec(codec, lambda: mini_codec(codec, arch, folder))
    try:
        res = folder / "rows.csv"
        run_sweep(images, [codec], {codec: qualities}, res, metrics=("psnr",), progress=False)
        return pd.read_csv(res).assign(variant=name)
    finally:
        unregister_codec(codec)
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicviz.analysis import bd_rate
    from nicviz.datasets import Dataset, resolve_dataset
    from nicviz.results import meta_path, run_metadata
    from nicviz.specs import parse_numbers
    from nicviz.training.nic_parts import holdout_images

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", required=True, help="the weights every variant starts from (V5)")
    ap.add_argument("--arch", default="cheng2020-anchor")
    ap.add_argument("--data", help="training folder (default <data root>/train_natural)")
    ap.add_argument("--seconds", type=float, default=1800.0, help="training seconds per variant (two halves)")
    ap.add_argument("--variants", default="base,crop256,ema,keep-adam,soap,all")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--holdout", type=int, default=30)
    ap.add_argument("--qualities", default="1,2.5,4,5.5,7,8")
    ap.add_argument("--kodak", type=int, default=0, help="also code the first N Kodak images")
    ap.add_argument("--out", default="out/recipes")
    ap.add_argument("--dry-run-steps", type=int, default=0, help="a few fixed steps per half instead of --seconds")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    bad = [n for n in names if n not in VARIANTS]
    if bad or not names:
        print(f"error: unknown variant(s) {', '.join(bad) or '(none)'}; choose from {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    if args.data is None:
        from nicviz.paths import data_root

        root = data_root()
        if root is None:
            print("error: no data folder; pass --data", file=sys.stderr)
            return 2
        args.data = str(root / "train_natural")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    running: list[tuple[str, subprocess.Popen]] = []
    for name in names:  # at most --parallel variants at once
        while len([p for _, p in running if p.poll() is None]) >= args.parallel:
            time.sleep(2)
        running.append((name, _variant(name, args, out)))
    failed = [n for n, p in running if p.wait() != 0]
    if failed:
        print(f"error: variant(s) {', '.join(failed)} failed; see {out}/<variant>.log", file=sys.stderr)
        return 2
    held = holdout_images(Path(args.data), args.holdout)
    sets = {"held-out": Dataset("train_natural-holdout", Path(args.data), tuple(held))}
    if args.kodak:
        kodak = resolve_dataset("kodak")
        sets["kodak"] = Dataset(kodak.name, kodak.root, kodak.files[: args.kodak])
    qualities = [float(q) for q in parse_numbers(args.qualities)]
    rows = []
    for name in names:
        state = torch.load(out / f"{name}-2.pt", weights_only=True)
        steps = int(state["step"]) + int(state.get("base_steps", 0)) - _start_steps(Path(args.start))
        for label, images in sets.items():
            df = _measure(name, out / f"{name}-2.pt", args.arch, images, qualities)
            rows.append(df.assign(set=label, steps=steps))
    df = pd.concat(rows, ignore_index=True)
    ref = names[0]
    table = []
    for (name, label), g in df.groupby(["variant", "set"], sort=False):
        curve = g.groupby("quality")[["bpp", "psnr"]].mean()
        both = pd.concat([df[(df.variant == ref) & (df.set == label)].assign(codec="ref"), g.assign(codec="test")])
        bd = float("nan") if name == ref else bd_rate(both, "ref", "test").bd_rate
        table.append({"variant": name, "set": label, "steps": int(g["steps"].iloc[0]), "seconds": _seconds(out, name),
                      "bpp": " ".join(f"{b:.3f}" for b in curve["bpp"]),
                      "psnr": " ".join(f"{p:.2f}" for p in curve["psnr"]), f"bd_rate_vs_{ref}": bd})
    table_df = pd.DataFrame(table)
    print(table_df.to_string(index=False))
    table_df.to_csv(out / "recipes.csv", index=False)
    # the command as run, its paths reduced to their names (no server path in a results file)
    command = ["scripts/compare_recipes.py", "--start", Path(args.start).name, "--data", Path(args.data).name,
               "--seconds", f"{args.seconds:g}", "--variants", ",".join(names), "--holdout", str(args.holdout),
               "--qualities", args.qualities, "--kodak", str(args.kodak)]
    meta = run_metadata(command, task="training-recipes",  # not a sweep: Rate-distortion does not offer it
                        start=Path(args.start).name, arch=args.arch, dataset=Path(args.data).name,
                        holdout=args.holdout, seconds=args.seconds, variants={n: VARIANTS[n] for n in names},
                        common=COMMON + ([] if args.dry_run_steps else FAST), qualities=qualities, seed=0, wall_s=round(time.time() - t0, 1))
    meta_path(out / "recipes.csv").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


def _seconds(out: Path, name: str) -> float:
    """Training seconds of both halves (CPU seconds on the CPU), from their logs: each
    process counts from 0, so a half resumed in a later session adds its segments."""
    total = 0.0
    for half in (1, 2):
        log = out / f"{name}-{half}.pt.log.csv"
        seconds = pd.read_csv(log)["seconds"].tolist() if log.is_file() else []
        total += sum(a for i, a in enumerate(seconds) if i + 1 == len(seconds) or seconds[i + 1] < a)  # segment ends
    return round(total, 1)


def _start_steps(path: Path) -> int:
    import torch

    state = torch.load(path, weights_only=True)
    return int(state.get("step", 0)) + int(state.get("base_steps", 0)) if isinstance(state, dict) else 0


if __name__ == "__main__":
    sys.exit(main())
