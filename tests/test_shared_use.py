"""Safe to share: one writer per results file, torn or foreign results files, failures
that are one line and come before the work, strict JSON, unsupported files listed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nicviz.cli import main
from nicviz.datasets import write_builtin_samples
from nicviz.errors import NicvizError
from nicviz.paths import FileLock


@pytest.fixture
def samples(tmp_path):
    return write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "astronaut"))


def _sweep(folder, out, codec="jpeg", quality="10,40", extra=()):
    return main(["sweep", str(folder), "--codec", codec, "--quality", quality, "--metrics", "psnr", "--quiet",
                 "--out", str(out), *extra])


def test_two_concurrent_sweeps_on_one_file_never_lose_rows(samples, tmp_path, capsys):
    out = tmp_path / "shared.csv"
    first = subprocess.Popen([sys.executable, "-m", "nicviz", "sweep", str(samples.root), "--codec", "jpeg",
                              "--quality", "5:95:5", "--metrics", "psnr,ssim", "--quiet",
                              "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = Path(str(out) + ".lock")
    deadline = time.monotonic() + 120
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock.exists()
    assert _sweep(samples.root, out, "webp", "30") == 2  # refused at once, in one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by process {first.pid}" in err[0]
    assert first.wait(300) == 0, first.stderr.read()
    assert _sweep(samples.root, out, "webp", "30") == 0  # now it adds its rows
    df = pd.read_csv(out)
    assert len(df) == 3 * 19 + 3 and not df.duplicated(["image", "codec", "quality"]).any()
    assert not lock.exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(samples, tmp_path):
    out = tmp_path / "r.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(str(out) + ".lock").write_text(f"{dead.pid}\n")
    assert _sweep(samples.root, out) == 0 and len(pd.read_csv(out)) == 6


def test_the_lock_refuses_a_second_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nicviz.paths import FileLock; "
                               f"l = FileLock({str(tmp_path / 'x.csv')!r}); l.acquire(); print('ok', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(NicvizError, match=f"in use by process {holder.pid}"):
            FileLock(tmp_path / "x.csv").acquire()
    finally:
        holder.kill()
        holder.wait()


def test_a_torn_results_file_is_repaired_on_resume(samples, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert _sweep(samples.root, out) == 0
    full = pd.read_csv(out)
    text = out.read_text()
    out.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # cut the last row in half
    capsys.readouterr()
    assert _sweep(samples.root, out) == 0
    assert "(1 computed, 5 already done)" in capsys.readouterr().out
    again = pd.read_csv(out)
    assert len(again) == 6 and again["rate_mode"].notna().all() and again["psnr"].notna().all()
    pd.testing.assert_frame_equal(again[["image", "quality", "bytes", "psnr"]], full[["image", "quality", "bytes", "psnr"]])


def test_an_unreadable_results_file_is_named_and_left_untouched(samples, tmp_path, capsys):
    out = tmp_path / "r.csv"
    junk = bytes(np.random.default_rng(0).integers(128, 256, 400, dtype=np.uint8))
    out.write_bytes(junk)
    assert _sweep(samples.root, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "cannot be read" in err[0]
    assert out.read_bytes() == junk


@pytest.mark.parametrize("argv,msg", [
    (["--quality", "abc"], "not a number"),
    (["--quality", "jpeg="], "no qualities"),
    (["-j", "0"], "at least 1"),
    (["-j", "-1"], "at least 1"),
])
def test_bad_sweep_arguments_are_one_line_before_any_work(samples, tmp_path, capsys, argv, msg):
    out = tmp_path / "r.csv"
    args = ["sweep", str(samples.root), "--codec", "jpeg", "--out", str(out), "--quiet", *argv]
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and msg in err[0], err
    assert not out.exists()


def test_outputs_that_cannot_be_written_are_refused_before_the_work(samples, tmp_path, capsys):
    (tmp_path / "adir.csv").mkdir()
    assert _sweep(samples.root, tmp_path / "adir.csv") == 2
    assert "names a directory" in capsys.readouterr().err
    img = str(samples.files[0])
    assert main(["eval-image", img, "--codec", "jpeg", "--quality", "20", "--save-recon", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names a directory" in err[0]
    assert not list(tmp_path.rglob("*.tmp"))


def test_json_output_is_strict_even_for_an_identical_reconstruction(tmp_path, capsys):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path)
    assert main(["eval-image", str(path), "--codec", "jpeg", "--quality", "100", "--metrics", "psnr", "--json"]) == 0
    out = capsys.readouterr().out
    assert "Infinity" not in out and "NaN" not in out
    assert json.loads(out)["psnr"] is None


def test_unsupported_image_files_are_listed_in_the_errors_file(samples, tmp_path):
    Image.new("RGB", (8, 8)).save(samples.root / "anim.gif")
    (samples.root / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    out = tmp_path / "r.csv"
    assert _sweep(samples.root, out) == 2  # the images that can be read are all done
    assert len(pd.read_csv(out)) == 6
    errors = pd.read_csv(str(out) + ".errors.csv")
    assert set(errors["image"]) == {"anim.gif", "logo.svg"}
    assert os.path.exists(out) and all("not read by nicviz" in e for e in errors["error"])


def test_an_output_without_write_permission_is_refused_before_the_work(samples, tmp_path, monkeypatch, capsys):
    """As root every place is writable, so the permission answer is simulated: the check
    asks the operating system (os.access) about the first existing parent."""
    import nicviz.paths as paths

    real = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(paths.os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    assert _sweep(samples.root, locked / "sub" / "r.csv") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no permission" in err[0]
    assert main(["eval-image", str(samples.files[0]), "--codec", "jpeg", "--quality", "20",
                 "--save-recon", str(locked / "r.png")]) == 2
    assert "no permission" in capsys.readouterr().err and not list(locked.iterdir())


def test_every_dashboard_data_cache_is_bounded():
    """Memory stays bounded under long use: each st.cache_data keeps a limited number of
    entries (cache_resource holds one object per model, by construction)."""
    import re

    root = Path(__file__).resolve().parent.parent
    sources = [root / "nicviz" / "dashboard" / "widgets.py", *(root / "app_pages").glob("*.py")]
    caches = [m.group(0) for src in sources for m in re.finditer(r"@st\.cache_data\([^)]*\)", src.read_text())]
    assert caches and all("max_entries=" in c for c in caches), [c for c in caches if "max_entries=" not in c]
