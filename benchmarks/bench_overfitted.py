"""The overfitted codec's cost, side by side in one run: fitting iterations per second in
float32 against bfloat16 autocast (this CPU's AMX; each in its own process, since torch
2.14.1's oneDNN AMX bf16 matmul dies with SIGFPE on Kodak's sizes), one process against two processes at
once (one thread each), eager against ``torch.compile``, and decode time against the Cheng2020 anchor mini's wavefront
decode, on the same Kodak image (kodim01, or a built-in photograph without data).

    python benchmarks/bench_overfitted.py [--iterations 20] [--before REV [--rounds 2]]

``--before REV`` also times fitting (fp32, one thread) with the fitting code of git revision
``REV`` (its ``nicviz`` package, exported to a temporary folder), the two trees in alternate
fresh processes, ``--rounds`` each, and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if "--worker" in sys.argv:  # a process of --before: that tree's nicviz before the installed one
    sys.path.insert(0, sys.argv[sys.argv.index("--worker") + 1])
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_dataset  # noqa: E402


def _image():
    from nicviz.images import load_image

    ds = bench_dataset()
    return load_image(ds.files[0]), ds.image_id(ds.files[0])


def iterations_per_s(iterations: int, precision: str = "fp32", queue=None, crop: tuple[int, int] | None = None,
                     compiled: bool = False) -> float:
    import torch

    from nicviz.codecs.overfitted.codec import lambda_for
    from nicviz.codecs.overfitted.fit import fit

    torch.set_num_threads(1)
    rgb, _ = _image()
    if crop:
        rgb = rgb[:crop[1], :crop[0]]
    t = time.perf_counter()
    # warm-up (allocator, kernels; compiling both phases' graphs)
    fit(rgb, lambda_for(4), 4, precision=precision, compiled=compiled, noise_share=0.5)
    if compiled:
        print(f"  (compiling and 4 iterations: {time.perf_counter() - t:.0f} s)", file=sys.stderr)
    t = time.perf_counter()
    fit(rgb, lambda_for(4), iterations, precision=precision, compiled=compiled)
    rate = iterations / (time.perf_counter() - t)
    if queue is not None:
        queue.put(rate)
    return rate


ROOT = Path(__file__).resolve().parent.parent


def _rate_in(tree: Path, iterations: int, precision: str = "fp32", env: dict | None = None,
             crop: str = "", compiled: bool = False) -> float:
    """Fitting iterations/s with the ``nicviz`` package of ``tree``, in a fresh process; NaN
    (and a line saying how) when that process dies."""
    import os
    import signal

    run = subprocess.run([sys.executable, __file__, "--worker", str(tree), "--iterations", str(iterations),
                          "--precision", precision] + (["--crop", crop] if crop else []) + (["--compiled"] if compiled else []),
                         capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if run.returncode != 0:
        how = (f"signal {signal.Signals(-run.returncode).name}" if run.returncode < 0
               else f"exit {run.returncode}: {(run.stderr.strip().splitlines() or [''])[-1]}")
        print(f"  ({precision} fitting process died: {how})")
        return float("nan")
    return float(run.stdout.split()[-1])


def before_after(rev: str, iterations: int, rounds: int) -> None:
    """Print fitting speed of revision ``rev`` against this checkout, alternating processes."""
    with tempfile.TemporaryDirectory(prefix="nicviz-bench-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "nicviz"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        was, now = [], []
        for _ in range(rounds):
            was.append(_rate_in(Path(tmp), iterations))
            now.append(_rate_in(ROOT, iterations))
    b, a = statistics.median(was), statistics.median(now)
    print(f"fitting, fp32, one thread: {rev} {1 / b:.3f} s/iteration, this checkout {1 / a:.3f} s/iteration "
          f"({a / b:.2f}x faster; runs: " + ", ".join(f"{1 / r:.3f}" for r in was) + " against "
          + ", ".join(f"{1 / r:.3f}" for r in now) + ")")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--before", metavar="REV", help="also time fitting with this git revision's code")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--crop", default="", help=argparse.SUPPRESS)
    ap.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:  # a process of --before: the nicviz package of that tree first on the path
        import nicviz

        assert Path(nicviz.__file__).resolve().is_relative_to(Path(args.worker).resolve()), nicviz.__file__
        crop = tuple(int(v) for v in args.crop.split("x")) if args.crop else None
        print(iterations_per_s(args.iterations, args.precision, crop=crop, compiled=args.compiled))
        return 0
    import torch

    rgb, name = _image()
    print(f"{name}: {rgb.shape[1]} x {rgb.shape[0]}")
    fp32 = _rate_in(ROOT, args.iterations, "fp32")
    bf16 = _rate_in(ROOT, args.iterations, "bf16")  # its own process: oneDNN's AMX bf16 matmul can die
    line = f"fitting, one process: fp32 {fp32:.2f} it/s, bf16 autocast {bf16:.2f} it/s ({bf16 / fp32:.2f}x)"
    if torch.cpu._is_amx_tile_supported():  # the same without AMX tiles (AVX-512 BF16 instructions)
        no_amx = _rate_in(ROOT, args.iterations, "bf16", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"})
        line += f", bf16 without AMX {no_amx:.2f} it/s ({no_amx / fp32:.2f}x)"
        small = [_rate_in(ROOT, args.iterations, p, crop="704x480") for p in ("fp32", "bf16")]
        line += f"; at 704 x 480 (no crash there) fp32 {small[0]:.2f}, bf16 {small[1]:.2f} it/s ({small[1] / small[0]:.2f}x)"
    print(line)
    comp = _rate_in(ROOT, args.iterations, "fp32", compiled=True)
    again = _rate_in(ROOT, args.iterations, "fp32")  # eager again: the machine's load may have changed
    print(f"fitting, fp32, one process: eager {fp32:.2f} and {again:.2f} it/s, torch.compile {comp:.2f} it/s "
          f"({comp / ((fp32 + again) / 2):.2f}x eager; compiling is paid once a process and image size)")
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=iterations_per_s, args=(args.iterations, "fp32", q)) for _ in range(2)]
    for p in procs:
        p.start()
    rates = [q.get() for _ in procs]
    for p in procs:
        p.join()
    print(f"fitting, two processes at once (fp32, one thread each): {rates[0]:.2f} and {rates[1]:.2f} it/s, "
          f"{sum(rates):.2f} it/s in all ({sum(rates) / fp32:.2f}x one process)")

    from nicviz.codecs import get_codec
    from nicviz.codecs.overfitted.codec import OverfittedCodec

    torch.set_num_threads(1)
    codec = OverfittedCodec("overfitted", iterations=args.iterations)
    data = codec.encode(rgb, 4)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        out = codec.decode(data)
        times.append(time.perf_counter() - t)
    assert (out == codec.encoder_reconstruction()).all()
    mini = get_codec("cheng2020-anchor-mini")
    mtimes = []
    if mini.available:
        mdata = mini.encode(rgb, 3)
        for _ in range(3):
            t = time.perf_counter()
            mini.decode(mdata)
            mtimes.append(time.perf_counter() - t)
    dec, mdec = statistics.median(times), statistics.median(mtimes) if mtimes else float("nan")
    from nicviz.codecs.overfitted.model import macs_per_pixel

    print(f"decode, one thread: overfitted {dec:.2f} s ({macs_per_pixel(codec.config):,.0f} MAC/pixel, bit-exact), "
          f"cheng2020-anchor-mini wavefront {mdec:.2f} s ({dec / mdec:.2f}x the mini's time)")
    if args.before:
        before_after(args.before, args.iterations, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
