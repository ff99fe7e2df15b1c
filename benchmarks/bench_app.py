"""Dashboard speed, measured with streamlit's AppTest in one run:

* every page: first render (fresh process caches are not cleared between pages, as on a
  server), the median warm render (goal < 2 s), and the time of one change a user makes
  there (a quality, a metric, a codec) until the page has run again;
* Compare: time from a quality change to the new metrics (all metrics) on a Kodak image
  (or a built-in sample without data), for JPEG (goal < 0.5 s) and for the shipped
  Cheng2020 mini model when it is available.

``--before REV`` measures the pages of git revision ``REV`` too (a temporary worktree,
run in a subprocess with that revision's package) and prints both side by side.

``--variable-rate CKPT`` also times Compare's quality change with a variable-rate training
checkpoint standing in for the anchor mini (exported as the codec ships it); with
``--before`` in that revision too. ``--only-variable-rate`` measures only that.

    python benchmarks/bench_app.py --before HEAD~10
    python benchmarks/bench_app.py --before f793f0c --only-variable-rate \
        --variable-rate results/training/V-cheng2020-anchor-cpu.pt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGES = ("compare", "rate_distortion", "skin_lesions", "plates", "run_sweep")
#: per page, the changes tried in order (widget kind, key, value); the first one the page has is timed
CHANGES = {
    "compare": [("slider", "a_quality", 60)],
    "rate_distortion": [("selectbox", "rd_metric", "ssim")],
    "skin_lesions": [("slider", "sk_uq", 60), ("selectbox", "sk_rate", None)],
    "plates": [("slider", "pl_demo_quality", 60)],
    "run_sweep": [("multiselect", "rs_codecs", ["jpeg"])],
}


def psnr_shown(at) -> float:
    for d in at.dataframe:
        if "psnr" in d.value.columns:
            return float(d.value["psnr"].iloc[0])
    raise RuntimeError("no metrics table")


def time_changes(root: Path, codec: str, qualities: list[int]) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from nicviz.datasets import data_root

    at = AppTest.from_file(str(root / "app_pages" / "compare.py"), default_timeout=600).run()
    data = data_root()
    if data is not None and (data / "kodak" / "kodim01.png").is_file():
        at.radio(key="source").set_value("Dataset image").run()
        at.selectbox(key="dataset").set_value("kodak").run()
        at.selectbox(key="dataset_image").set_value("kodim01.png").run()
    at.selectbox(key="a_codec").set_value(codec).run()
    from nicviz.codecs import get_codec

    c = get_codec(codec)
    picked_from_list = c.family == "neural" and not c.scale.continuous  # the fixed-rate minis' select slider
    times = []
    last = psnr_shown(at)
    for q in qualities:
        widget = at.select_slider(key="a_quality") if picked_from_list else at.slider(key="a_quality")
        t = time.perf_counter()
        widget.set_value(q).run()
        times.append(time.perf_counter() - t)
        now = psnr_shown(at)
        assert now != last, "metrics did not change"
        last = now
    return times


def _change(at, name: str) -> float | None:
    """Seconds of the first change of :data:`CHANGES` the page has (``None``: none of them)."""
    for kind, key, value in CHANGES[name]:
        found = [w for w in getattr(at, kind) if w.key == key]
        if not found:
            continue
        w = found[0]
        if value is None:  # a select box: its last option
            value = w.options[-1]
        t = time.perf_counter()
        w.set_value(value).run()
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
        return time.perf_counter() - t
    return None


def page_times(root: Path, repeats: int = 3) -> dict[str, dict]:
    """Per page: first render, median warm render and one change, in seconds."""
    from streamlit.testing.v1 import AppTest

    out = {}
    for name in PAGES:
        path = str(root / "app_pages" / f"{name}.py")
        t = time.perf_counter()
        at = AppTest.from_file(path, default_timeout=600).run()
        cold = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
        change = _change(at, name)
        warm = []
        for _ in range(repeats):
            t = time.perf_counter()
            AppTest.from_file(path, default_timeout=600).run()
            warm.append(time.perf_counter() - t)
        out[name] = {"first": cold, "warm": statistics.median(warm), "change": change}
    return out


def mini_times(root: Path) -> list[float] | None:
    """Compare's quality changes with the shipped anchor mini (``None``: not shipped)."""
    from nicviz.codecs import get_codec

    mini = get_codec("cheng2020-anchor-mini")
    qs = mini.available_qualities() if mini.available else []
    return time_changes(root, "cheng2020-anchor-mini", [qs[0], qs[-1], qs[0]]) if len(qs) >= 2 else None


def variable_rate_times(root: Path, ckpt: str, arch: str = "cheng2020-anchor") -> list[float]:
    """Compare's quality changes (5 -> 4.5 -> 2.5 -> 6 -> 3) with checkpoint ``ckpt``
    exported as the anchor mini ships it (fresh page caches and codec objects)."""
    import shutil

    import streamlit as st

    from nicviz.codecs import register_codec
    from nicviz.codecs.base import unregister_codec
    from nicviz.codecs.neural import mini_codec
    from nicviz.codecs.neural.zoo import _register_mini
    from nicviz.training.nic import export_model

    name = "cheng2020-anchor-mini"
    folder = Path(tempfile.mkdtemp(prefix="nicviz-bench-vr-"))
    export_model(ckpt, folder / f"{name}.pt")
    st.cache_data.clear()  # no result and no codec object of an earlier measurement
    st.cache_resource.clear()
    unregister_codec(name)
    register_codec(name, lambda: mini_codec(name, arch, folder))
    try:
        return time_changes(root, name, [4.5, 2.5, 6.0, 3.0, 5.5])
    finally:
        unregister_codec(name)
        _register_mini()
        shutil.rmtree(folder, ignore_errors=True)


def _before(rev: str, variable_rate: str | None, only_variable_rate: bool) -> dict:
    """:func:`page_times` (and :func:`variable_rate_times`) of revision ``rev``, in a
    worktree and a subprocess of its own."""
    tmp = Path(tempfile.mkdtemp(prefix="nicviz-bench-before-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    try:
        from nicviz.datasets import data_root

        env = {**os.environ, "PYTHONPATH": str(tree), "NICVIZ_RESULTS": str(tree / "results")}
        data = data_root()
        if data is not None:  # the same images as this checkout measures (a worktree elsewhere finds none)
            env["NICVIZ_DATA"] = str(data)
        extra = ["--variable-rate", str(Path(variable_rate).resolve())] if variable_rate else []
        extra += ["--only-variable-rate"] if only_variable_rate else []
        run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--pages-json", str(tree), *extra],
                             cwd=tree, env=env, capture_output=True, text=True, check=False)
        if run.returncode:
            raise RuntimeError(f"measuring {rev} failed: {run.stderr.strip().splitlines()[-1:]}")
        return json.loads(run.stdout.strip().splitlines()[-1])  # {"pages": ..., "mini": ...}
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def _fmt(v: float | None) -> str:
    return "   n/a" if v is None else f"{v:6.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REV", help="also measure the pages of this git revision")
    ap.add_argument("--variable-rate", metavar="CKPT",
                    help="also time Compare with this variable-rate checkpoint as the anchor mini")
    ap.add_argument("--only-variable-rate", action="store_true", help="skip the pages, JPEG and the shipped mini")
    ap.add_argument("--pages-json", metavar="ROOT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.only_variable_rate and not args.variable_rate:
        ap.error("--only-variable-rate needs --variable-rate CKPT")
    if args.pages_json:  # the worker of --before
        root = Path(args.pages_json)
        out: dict = {"pages": {}, "mini": None, "vr": None}
        if not args.only_variable_rate:
            out.update(pages=page_times(root), mini=mini_times(root))
        if args.variable_rate:
            out["vr"] = variable_rate_times(root, args.variable_rate)
        print(json.dumps(out))
        return 0
    measured = _before(args.before, args.variable_rate, args.only_variable_rate) if args.before else None
    if args.only_variable_rate:
        _print_variable_rate(variable_rate_times(ROOT, args.variable_rate), measured and measured["vr"], args.before)
        return 0
    before = measured["pages"] if measured else None
    now = page_times(ROOT)
    head = "page              first render    warm render    one change   (seconds"
    print(head + (f"; before = {args.before}, after = this checkout)" if before else ")"))
    for name, t in now.items():
        if before:
            b = before.get(name, {})
            print(f"{name:16s} {_fmt(b.get('first'))} -> {_fmt(t['first'])}  {_fmt(b.get('warm'))} -> "
                  f"{_fmt(t['warm'])}  {_fmt(b.get('change'))} -> {_fmt(t['change'])}")
        else:
            print(f"{name:16s} {_fmt(t['first'])}          {_fmt(t['warm'])}         {_fmt(t['change'])}   "
                  f"({'meets' if t['warm'] < 2 else 'misses'} the warm goal of < 2 s)")

    jpeg = time_changes(ROOT, "jpeg", [20, 35, 60, 80, 45])
    print(f"JPEG, quality change -> new metrics: median {statistics.median(jpeg):.3f} s "
          f"(max {max(jpeg):.3f} s; goal < 0.5 s)")
    t = mini_times(ROOT)
    if t:
        was = f"; before: median {statistics.median(measured['mini']):.2f} s" if measured and measured["mini"] else ""
        print(f"cheng2020-anchor-mini, quality change -> new metrics: median {statistics.median(t):.2f} s "
              f"(real bitstream, autoregressive decoding on the CPU{was})")
    else:
        print("cheng2020-anchor-mini: not shipped in this version", file=sys.stderr)
    if args.variable_rate:
        _print_variable_rate(variable_rate_times(ROOT, args.variable_rate), measured and measured["vr"], args.before)
    return 0


def _print_variable_rate(times: list[float], before: list[float] | None, rev: str | None) -> None:
    now = statistics.median(times)
    was = f"; {rev}: median {statistics.median(before):.2f} s ({statistics.median(before) / now:.2f}x)" if before else ""
    print(f"variable-rate anchor, Compare quality change -> new metrics: median {now:.2f} s{was} (goal < 1.5 s)")
    print("  now: " + ", ".join(f"{t:.2f}" for t in times) + " s")
    if before:
        print(f"  {rev}: " + ", ".join(f"{t:.2f}" for t in before) + " s")


if __name__ == "__main__":
    raise SystemExit(main())
