"""Helpers shared by the benchmark scripts: a Kodak folder or built-in samples."""

from __future__ import annotations

import tempfile
from pathlib import Path

from nicviz.datasets import Dataset, data_root, resolve_dataset, write_builtin_samples


def bench_dataset() -> Dataset:
    root = data_root()
    if root is not None and (root / "kodak" / "kodim01.png").is_file():
        return resolve_dataset("kodak")
    print("(no Kodak folder found: using scikit-image's built-in photographs)")
    return write_builtin_samples(Path(tempfile.mkdtemp(prefix="nicviz-bench-")))
