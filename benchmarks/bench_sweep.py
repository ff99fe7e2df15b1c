"""Sweep overhead and parallel speed-up, measured in one run.

* overhead: share of the -j 1 wall time spent outside codec (encode + decode) and
  metric calls (goal: under 10 %);
* speed-up of -j 2 over -j 1 on the same grid (goal: at least 1.6x on 2 cores).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from _common import bench_dataset  # noqa: E402

from nicviz.sweep import run_sweep  # noqa: E402

CODECS = ["jpeg", "webp"]
QUALITIES = {"jpeg": [10, 30, 50, 70, 90], "webp": [10, 50, 90]}


def main() -> None:
    ds = bench_dataset()
    tmp = Path(tempfile.mkdtemp(prefix="nicviz-bench-sweep-"))
    t = time.perf_counter()
    s1 = run_sweep(ds, CODECS, QUALITIES, tmp / "j1.csv", jobs=1, progress=False)
    wall1 = time.perf_counter() - t
    df = pd.read_csv(tmp / "j1.csv")
    work = float((df["encode_s"] + df["decode_s"] + df["metrics_s"]).sum())
    t = time.perf_counter()
    s2 = run_sweep(ds, CODECS, QUALITIES, tmp / "j2.csv", jobs=2, progress=False)
    wall2 = time.perf_counter() - t
    assert s1.rows == s2.rows
    print(f"sweep of {ds.name}: {len(ds.files)} images x {sum(map(len, QUALITIES.values()))} (codec, quality), "
          f"{s1.rows} rows, all metrics")
    print(f"  -j 1 wall {wall1:.1f} s; codec + metric calls {work:.1f} s")
    print(f"  overhead outside codec + metric calls: {100 * (1 - work / wall1):.1f} % (goal < 10 %)")
    print(f"  -j 2 wall {wall2:.1f} s; speed-up -j2/-j1: {wall1 / wall2:.2f}x (goal >= 1.6x)")


if __name__ == "__main__":
    main()
