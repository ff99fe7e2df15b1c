"""mypy over the whole library (pyproject.toml [tool.mypy] files): no errors."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_library_type_checks(monkeypatch):
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (requirements.txt pins it)")
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # the listed paths are relative to the checkout
    out, err, status = api.run(["--config-file", str(root / "pyproject.toml"), "--no-incremental"])
    assert status == 0, out + err
