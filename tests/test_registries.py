"""Adding a metric or a task is one file: a test-only module registers one of each, and
the CLI's choices, the listings and a sweep's columns show them."""

from __future__ import annotations

import importlib
import json

import pytest

from nicviz.cli import main
from nicviz.datasets import write_builtin_samples
from nicviz.metrics import METRICS, unregister_metric
from nicviz.results import read_results
from nicviz.tasks import TASKS, unregister_task


@pytest.fixture
def plugin():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        yield importlib.import_module("plugins.brightness")
    finally:
        unregister_metric("luma_shift")
        unregister_task("brightness")
        sys.modules.pop("plugins.brightness", None)
        sys.path.pop(0)


def test_a_metric_and_a_task_in_one_file_reach_every_listing_and_a_sweep(plugin, tmp_path, capsys):
    assert "luma_shift" in METRICS and "brightness" in TASKS
    assert main(["metrics", "--json"]) == 0
    listed = {r["metric"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["luma_shift"]["better"] == "lower" and listed["luma_shift"]["label"] == "luma shift"
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "brightness" in out and "brightness_ref" in out
    imgs = write_builtin_samples(tmp_path / "imgs", ("chelsea",))
    res = tmp_path / "r.csv"
    assert main(["sweep", str(imgs.root), "--codec", "jpeg", "--quality", "10,90", "--task", "brightness",
                 "--metrics", "psnr,luma_shift", "--out", str(res), "--quiet"]) == 0
    df = read_results(res)
    assert {"luma_shift", "brightness", "brightness_ref"} <= set(df.columns)
    assert (df["task"] == "brightness").all() and len(df) == 2
    assert df["luma_shift"].ge(0).all() and df["luma_shift"].max() > 0
    assert df["brightness_ref"].nunique() == 1  # measured once, on the original


def test_without_the_file_neither_exists(capsys):
    assert "luma_shift" not in METRICS and "brightness" not in TASKS
    with pytest.raises(SystemExit):
        main(["sweep", "x", "--codec", "jpeg", "--task", "brightness", "--out", "r.csv"])
    assert "invalid choice: 'brightness'" in capsys.readouterr().err
