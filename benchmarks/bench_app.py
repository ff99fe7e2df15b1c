"""Dashboard speed, measured with streamlit's AppTest in one run:

* warm render of every page (second and later runs, caches filled; goal < 2 s each),
  against the shipped results;
* Compare page: time from a quality change to the new metrics (all metrics) on a Kodak
  image (or a built-in sample without data), for JPEG (goal < 0.5 s) and for the shipped
  Cheng2020 mini model when it is available."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


def psnr_shown(at: AppTest) -> float:
    for d in at.dataframe:
        if "psnr" in d.value.columns:
            return float(d.value["psnr"].iloc[0])
    raise RuntimeError("no metrics table")


def time_changes(codec: str, qualities: list[int]) -> list[float]:
    from nicviz.paths import data_root

    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=600).run()
    root = data_root()
    if root is not None and (root / "kodak" / "kodim01.png").is_file():
        at.radio(key="source").set_value("Dataset image").run()
        at.selectbox(key="dataset").set_value("kodak").run()
        at.selectbox(key="dataset_image").set_value("kodim01.png").run()
    at.selectbox(key="a_codec").set_value(codec).run()
    times = []
    last = psnr_shown(at)
    for q in qualities:
        widget = at.slider(key="a_quality") if not codec.endswith("-mini") else at.select_slider(key="a_quality")
        t = time.perf_counter()
        widget.set_value(q).run()
        times.append(time.perf_counter() - t)
        now = psnr_shown(at)
        assert now != last, "metrics did not change"
        last = now
    return times


PAGES = ("compare", "rate_distortion", "skin_lesions", "plates", "run_sweep")


def warm_renders(repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Per page: (first render, median of ``repeats`` warm renders) in seconds."""
    out = {}
    for name in PAGES:
        t = time.perf_counter()
        at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=600).run()
        cold = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(f"{name}: {at.exception[0].message}")
        warm = []
        for _ in range(repeats):
            t = time.perf_counter()
            AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=600).run()
            warm.append(time.perf_counter() - t)
        out[name] = (cold, statistics.median(warm))
    return out


def main() -> None:
    from nicviz.codecs import get_codec

    for name, (cold, warm) in warm_renders().items():
        print(f"{name:16s} first render {cold:6.2f} s, warm render {warm:5.2f} s "
              f"({'meets' if warm < 2 else 'misses'} the goal of < 2 s)")

    jpeg = time_changes("jpeg", [20, 35, 60, 80, 45])
    print(f"JPEG, quality change -> new metrics: median {statistics.median(jpeg):.3f} s "
          f"(max {max(jpeg):.3f} s; goal < 0.5 s)")
    mini = get_codec("cheng2020-anchor-mini")
    qs = mini.available_qualities() if mini.available else []
    if len(qs) >= 2:
        t = time_changes("cheng2020-anchor-mini", [qs[0], qs[-1]])
        print(f"cheng2020-anchor-mini, quality change -> new metrics: median {statistics.median(t):.2f} s "
              f"(real bitstream, autoregressive decoding on the CPU)")
    else:
        print("cheng2020-anchor-mini: not shipped in this version", file=sys.stderr)


if __name__ == "__main__":
    main()
