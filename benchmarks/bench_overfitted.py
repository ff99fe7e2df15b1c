"""The overfitted codec's cost, side by side in one run: fitting iterations per second in
float32 against bfloat16 autocast (this CPU's AMX), one process against two processes at
once (one thread each), and decode time against the Cheng2020 anchor mini's wavefront
decode, on the same Kodak image (kodim01, or a built-in photograph without data).

    python benchmarks/bench_overfitted.py [--iterations 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_dataset  # noqa: E402


def _image():
    from nicviz.images import load_image

    ds = bench_dataset()
    return load_image(ds.files[0]), ds.image_id(ds.files[0])


def iterations_per_s(iterations: int, precision: str = "fp32", queue=None) -> float:
    import torch

    from nicviz.codecs.overfitted.codec import lambda_for
    from nicviz.codecs.overfitted.fit import fit

    torch.set_num_threads(1)
    rgb, _ = _image()
    fit(rgb, lambda_for(4), 3, precision=precision)  # warm-up (allocator, kernels)
    t = time.perf_counter()
    fit(rgb, lambda_for(4), iterations, precision=precision)
    rate = iterations / (time.perf_counter() - t)
    if queue is not None:
        queue.put(rate)
    return rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    rgb, name = _image()
    print(f"{name}: {rgb.shape[1]} x {rgb.shape[0]}")
    fp32 = iterations_per_s(args.iterations, "fp32")
    bf16 = iterations_per_s(args.iterations, "bf16")
    print(f"fitting, one process: fp32 {fp32:.2f} it/s, bf16 autocast {bf16:.2f} it/s ({bf16 / fp32:.2f}x)")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
