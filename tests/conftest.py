"""Shared fixtures: the data root (tests that need it skip with a reason) and test images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from nicviz.datasets import builtin_sample, data_root  # noqa: E402

#: Files whose tests start servers, clusters or pools of their own: on two test processes
#: (``scripts/dev.sh test``, ``--dist loadgroup``) they run one after another on one
#: process, first, while the other process takes every other file; together they would
#: fight for the two cores.
HEAVY = ("test_browser.py", "test_dask.py")


def pytest_collection_modifyitems(config, items):
    """One xdist group per test file (a file's module fixtures are built once), the heavy
    files in one group of their own, scheduled first."""
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group("heavy" if name in HEAVY else name))
    items.sort(key=lambda it: it.path.name not in HEAVY)  # stable: the order within files stays


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if root is None or not root.is_dir():
        pytest.skip("no data folder: set NICVIZ_DATA or place the shared data at ../shared/data")
    return root


@pytest.fixture(scope="session")
def kodak_dir(data_dir: Path) -> Path:
    folder = data_dir / "kodak"
    if not (folder / "kodim01.png").is_file():
        pytest.skip(f"Kodak images not found in {folder}")
    return folder


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photograph shipped inside scikit-image (512 x 512 RGB)."""
    return builtin_sample("astronaut")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    return builtin_sample("chelsea")
