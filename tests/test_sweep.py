"""Resumable sweeps: kill -9 in the middle, rerun, no duplicate or partial rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nicviz.datasets import resolve_dataset, write_builtin_samples
from nicviz.results import KEY
from nicviz.sweep import run_sweep

ARGS = ["--codec", "jpeg,webp,jpeg2000", "--quality", "20:60:10", "--metrics", "psnr,ssim", "--quiet"]


def _cmd(folder: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "nicviz", "sweep", str(folder), *ARGS, "--out", str(out)]


def test_kill_9_then_resume(tmp_path):
    # the three smallest pictures: 45 rows, killed after a third of them
    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "rocket")).root
    out = tmp_path / "res.csv"
    journal = Path(str(out) + ".journal.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cmd(folder, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if journal.is_file() and journal.read_text().count("\n") >= 15:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_before = journal.read_text().count("\n")
    assert 15 <= done_before < 45
    # simulate a torn write at the moment of the kill
    with journal.open("a") as fh:
        fh.write('{"dataset": "imgs", "image": "rocket.png", "codec": "jpeg", "quality": 9')
    res = subprocess.run(_cmd(folder, out), env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    df = pd.read_csv(out)
    total = 3 * 3 * 5
    assert len(df) == total
    assert not df.duplicated(list(KEY)).any()
    assert df[["psnr", "ssim", "bpp"]].notna().all().all()
    computed = int(res.stdout.split("(")[1].split(" computed")[0])
    assert computed == total - done_before
    assert not journal.exists()


def test_parallel_equals_serial(tmp_path):
    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "rocket", "astronaut")).root
    ds = resolve_dataset(str(folder))
    q = {"jpeg": [10, 50], "webp": [30]}
    a = run_sweep(ds, ["jpeg", "webp"], q, tmp_path / "serial.csv", metrics=("psnr", "ssim"), jobs=1, progress=False)
    b = run_sweep(ds, ["jpeg", "webp"], q, tmp_path / "par.csv", metrics=("psnr", "ssim"), jobs=2, progress=False)
    assert a.rows == b.rows == 12
    cols = ["image", "codec", "quality", "bytes", "psnr", "ssim"]
    sa = pd.read_csv(tmp_path / "serial.csv")[cols]
    sb = pd.read_csv(tmp_path / "par.csv")[cols]
    pd.testing.assert_frame_equal(sa, sb)


def test_unavailable_codec_refused_before_work(tmp_path, monkeypatch):
    monkeypatch.setenv("NICVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    ds = write_builtin_samples(tmp_path / "imgs", ("chelsea",))
    from nicviz.codecs import CodecUnavailable

    with pytest.raises(CodecUnavailable, match="cheng2020-attn"):
        run_sweep(ds, ["jpeg", "cheng2020-attn"], {"jpeg": [50], "cheng2020-attn": [1]}, tmp_path / "x.csv",
                  progress=False)
    assert not (tmp_path / "x.csv").exists()


def test_adding_a_codec_later_keeps_rows_and_run_history(tmp_path):
    import json

    ds = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee"))
    out = tmp_path / "grow.csv"
    run_sweep(ds, ["jpeg"], {"jpeg": [20, 60]}, out, metrics=("psnr",), progress=False, command=["first"])
    s = run_sweep(ds, ["webp"], {"webp": [50]}, out, metrics=("psnr",), progress=False, command=["second"])
    assert s.computed == 2 and s.rows == 6
    df = pd.read_csv(out)
    assert sorted(df.codec.unique()) == ["jpeg", "webp"] and len(df) == 6
    meta = json.loads((tmp_path / "grow.csv.meta.json").read_text())
    assert [r["command"] for r in meta["runs"]] == [["first"], ["second"]]
    assert meta["codecs"] == ["jpeg", "webp"]


def test_a_results_file_read_and_written_again_keeps_every_digit(tmp_path):
    """A growing or resumed sweep reads the file and writes it back: the shipped ISIC
    results (13,000 rows) come out byte for byte (pandas' default float parser changed the
    last digit of one row in ten)."""
    from nicviz.paths import results_dir
    from nicviz.results import read_results, write_results

    shipped = results_dir() / "isic" / "test.csv"
    out = tmp_path / "again.csv"
    write_results(read_results(shipped), out)
    assert out.read_bytes() == shipped.read_bytes()


def test_one_sweep_request_checks_what_the_cli_and_the_page_are_given(tmp_path):
    """`nicviz sweep` and Run a sweep prepare a sweep with one function: each bad choice is
    one line, and a good one is exactly what run_sweep then computes."""
    from nicviz.specs import SpecError
    from nicviz.sweep_request import sweep_request

    ds = write_builtin_samples(tmp_path / "samples")
    for args, message in [(([], "10", "psnr"), "at least one codec"), ((["jpeg"], "10", []), "at least one metric"),
                          ((["jpeg"], "10", "psnr,sharpness"), "unknown metric"),
                          ((["jpeg"], "webp=10", "psnr"), "not among the chosen codecs")]:
        with pytest.raises(SpecError, match=message):
            sweep_request(ds, *args)
    with pytest.raises(SpecError, match=f"has {len(ds.files)} images; at most 2"):
        sweep_request(ds, ["jpeg"], "10", None, image_limit=2)
    req = sweep_request(ds, ["jpeg", "webp"], "jpeg=10,20", ["psnr"], ["classify", "classify:isic-effnet-lite0",
                                                                       "classify:isic-effnet-lite0-robust"],
                        max_images=2, quality_defaults={"webp": [50]})
    assert len(req.dataset.files) == 2 and req.qualities == {"jpeg": [10, 20], "webp": [50]}
    assert req.metrics == ("psnr",) and req.task == ["classify", "classify:isic-effnet-lite0-robust"]
    summary = run_sweep(**{**req.arguments(), "task": "rd"}, out=tmp_path / "out.csv", progress=False)
    df = pd.read_csv(summary.out)
    assert len(df) == 2 * 3 and set(df["codec"]) == {"jpeg", "webp"} and df["psnr"].notna().all()


def test_a_codec_s_rows_can_be_dropped_and_swept_again(tmp_path):
    """scripts/drop_codec_rows.py (new weights replace a shipped model): the codec's rows
    go, the others stay bit for bit, the metadata records the drop, and the same sweep
    then computes the dropped rows again; a codec with no rows is a one-line refusal."""
    import json

    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee")).root
    out = tmp_path / "res.csv"
    ds = resolve_dataset(str(folder))
    run_sweep(ds, ["jpeg", "webp"], {"jpeg": [20, 50], "webp": [30]}, out, metrics=("psnr",), progress=False)
    before = pd.read_csv(out)
    script = Path(__file__).resolve().parent.parent / "scripts" / "drop_codec_rows.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ok = subprocess.run([sys.executable, str(script), str(out), "--codec", "webp", "--why", "new weights"],
                        capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    after = pd.read_csv(out)
    assert set(after["codec"]) == {"jpeg"} and len(after) == 4
    pd.testing.assert_frame_equal(after.reset_index(drop=True),
                                  before[before["codec"] == "jpeg"].reset_index(drop=True))
    meta = json.loads(Path(str(out) + ".meta.json").read_text())
    assert meta["codecs"] == ["jpeg"] and meta["rows"] == 4 and "webp" not in meta["qualities"]
    assert meta["runs"][-1]["dropped"] == ["webp"] and meta["runs"][-1]["rows_dropped"] == 2
    run_sweep(ds, ["webp"], {"webp": [30]}, out, metrics=("psnr",), progress=False)
    again = pd.read_csv(out)
    assert len(again) == 6 and sorted(again[list(KEY)].astype(str).agg("|".join, axis=1)) == \
        sorted(before[list(KEY)].astype(str).agg("|".join, axis=1))
    bad = subprocess.run([sys.executable, str(script), str(out), "--codec", "avif", "--why", "x"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no rows of avif" in bad.stderr
