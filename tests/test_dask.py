"""Sweeps on a real Dask cluster: the same rows as the serial executor, surviving a lost
worker and a killed driver, images shipped to workers that cannot see the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from nicviz.datasets import Dataset, resolve_dataset, write_builtin_samples  # noqa: E402
from nicviz.executors import DaskExecutor, SerialExecutor  # noqa: E402
from nicviz.sweep import run_sweep  # noqa: E402

pytestmark = pytest.mark.slow
TIMINGS = ["encode_s", "decode_s", "metrics_s"]
FAST = ("psnr", "ssim")  # the executors are under test, not the metrics (VIF alone would triple the time)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                     silence_logs=40)
    yield c
    c.close()


def _rows(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path).drop(columns=TIMINGS)
    return df.sort_values(["image", "codec", "quality"]).reset_index(drop=True)


def _same(a: Path, b: Path) -> None:
    x, y = _rows(a), _rows(b)
    assert len(x) == len(y) and not x.duplicated(["image", "codec", "quality"]).any()
    pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-9)


def _lesions(folder: Path) -> Dataset:
    """Two class folders the built-in lesion classifier knows (labelled rows)."""
    for cls, names in (("melanoma", ("chelsea", "coffee")), ("nevus", ("astronaut", "rocket"))):
        write_builtin_samples(folder / cls, names)
    return resolve_dataset(str(folder))


@pytest.mark.parametrize("task", ["rd", "ocr", "classify"])
def test_dask_rows_equal_serial_rows(cluster, tmp_path, task):
    if task == "ocr":
        from nicviz.tasks.ocr.synthetic import write_plate_folder

        ds = resolve_dataset(str(write_plate_folder(tmp_path / "plates", count=6, seed=1)))
    elif task == "classify":
        ds = _lesions(tmp_path / "lesions")
    else:
        ds = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "astronaut"))
    q = {"jpeg": [10, 60], "webp": [30]}
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    run_sweep(ds, ["jpeg", "webp"], q, serial, metrics=("psnr", "ssim"), executor=SerialExecutor(), progress=False,
              task=task)
    run_sweep(ds, ["jpeg", "webp"], q, dask, metrics=("psnr", "ssim"), progress=False, task=task,
              executor=DaskExecutor(cluster.scheduler_address))
    _same(serial, dask)


def test_a_killed_worker_loses_and_duplicates_no_row(cluster, tmp_path):
    from distributed import Client

    ds = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field"))
    q = {"jpeg": [5, 20, 40, 60, 80], "avif": [20, 50]}
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    run_sweep(ds, list(q), q, serial, metrics=FAST, executor=SerialExecutor(), progress=False)
    result = {}

    def sweep():
        result["summary"] = run_sweep(ds, list(q), q, dask, metrics=FAST, progress=False,
                                      executor=DaskExecutor(cluster.scheduler_address))

    t = threading.Thread(target=sweep)
    t.start()
    journal = Path(str(dask) + ".journal.jsonl")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (journal.is_file() and journal.read_text().count("\n") >= 3):
        time.sleep(0.05)
    with Client(cluster.scheduler_address) as c:
        pids = list(c.run(os.getpid).values())
    os.kill(pids[0], signal.SIGKILL)  # mid-sweep: its task is rescheduled on the other worker
    t.join(300)
    assert not t.is_alive()
    assert result["summary"].rows == 6 * 7
    _same(serial, dask)


def test_a_killed_driver_resumes_to_identical_rows(tmp_path):
    ds = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "rocket", "astronaut"))
    serial, dask = tmp_path / "serial.csv", tmp_path / "dask.csv"
    q = {"jpeg": [5, 20, 40, 60, 80], "webp": [10, 50]}
    run_sweep(ds, list(q), q, serial, metrics=FAST, executor=SerialExecutor(), progress=False)
    cmd = [sys.executable, "-m", "nicviz", "sweep", str(ds.root), "--codec", "jpeg,webp", "--quality",
           "jpeg=5,20,40,60,80;webp=10,50", "--metrics", ",".join(FAST), "--executor", "dask", "-j", "2",
           "--out", str(dask), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    journal = Path(str(dask) + ".journal.jsonl")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (journal.is_file() and journal.read_text().count("\n") >= 2):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)  # the driver and its local cluster
    p.wait(30)
    done = journal.read_text().count("\n")
    assert 2 <= done < 4 * 7 and not dask.is_file() or len(pd.read_csv(dask)) < 4 * 7
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "already done" in rerun.stdout
    _same(serial, dask)


def test_images_are_shipped_to_workers_that_cannot_see_the_data(tmp_path, capsys):
    """A worker started in another folder cannot resolve the dataset's relative root (as a
    worker on another machine): the driver warns once and sends the image bytes."""
    from distributed import LocalCluster

    driver_dir, worker_dir = tmp_path / "driver", tmp_path / "worker"
    worker_dir.mkdir()
    full = write_builtin_samples(driver_dir / "imgs", ("chelsea", "coffee"))
    ds = Dataset("imgs", Path("imgs"), tuple(Path("imgs") / p.name for p in full.files))
    cwd = os.getcwd()
    sched = LocalCluster(n_workers=0, dashboard_address=None, silence_logs=40)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", sched.scheduler_address,
                               "--nthreads", "1", "--nworkers", "1", "--no-dashboard"], cwd=worker_dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from distributed import Client

        with Client(sched.scheduler_address) as c:
            c.wait_for_workers(1, timeout=120)
        os.chdir(driver_dir)
        summary = run_sweep(ds, ["jpeg"], {"jpeg": [20, 70]}, tmp_path / "out.csv", metrics=("psnr",),
                            progress=False, executor=DaskExecutor(sched.scheduler_address))
    finally:
        os.chdir(cwd)
        os.killpg(worker.pid, signal.SIGKILL)
        sched.close()
    assert summary.rows == 4 and not summary.errors
    err = capsys.readouterr().err
    assert err.count("cannot see imgs") == 1 and "ship-images" in err


def test_a_scheduler_that_sends_a_pickle_payload_is_out_of_a_web_users_reach(cluster, tmp_path, monkeypatch):
    """A real cluster whose worker answers every task with a pickle payload (it touches a
    file when the driver deserialises it). Joined on purpose (the CLI's --scheduler: its
    user chose to trust it) the payload runs; the dashboard offers no way to reach it
    unless the operator configured it, even with $DASK_SCHEDULER_ADDRESS pointing there,
    and a sweep from the page runs nothing from it."""
    from distributed import Client
    from streamlit.testing.v1 import AppTest

    marker = tmp_path / "payload-ran"

    def poison(path=str(marker)):
        import pathlib

        import nicviz.sweep

        class Payload:
            def __reduce__(self):
                return pathlib.Path.touch, (pathlib.Path(path),)

        nicviz.sweep._run_indexed = lambda item: (item[0], [Payload()])

    evil = type(cluster)(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=40)
    try:
        with Client(evil.scheduler_address) as c:
            c.run(poison)
        ds = write_builtin_samples(tmp_path / "imgs", ("chelsea",))
        with pytest.raises(Exception):  # noqa: B017 - whatever the bad records do next, the payload ran first
            run_sweep(ds, ["jpeg"], {"jpeg": [30]}, tmp_path / "cli.csv", metrics=("psnr",), progress=False,
                      executor=DaskExecutor(evil.scheduler_address))
        assert marker.exists()  # the attack is real
        marker.unlink()

        monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path / "results"))
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", evil.scheduler_address)
        monkeypatch.delenv("NICVIZ_DASK_SCHEDULERS", raising=False)
        root = Path(__file__).resolve().parent.parent
        at = AppTest.from_file(str(root / "app_pages" / "run_sweep.py"), default_timeout=300).run()
        places = at.radio(key="rs_where").options
        assert places == ["this machine", "local Dask workers (2 processes)"]
        at.radio(key="rs_where").set_value("local Dask workers (2 processes)").run()
        typed = [t.label for t in at.text_input]  # no field takes an address
        assert not any("cheduler" in t or "ddress" in t for t in typed), typed
        from nicviz.executors import make_executor

        assert make_executor("dask", 2, None, from_env=False).address is None  # what the page asks for
        at.radio(key="rs_where").set_value("this machine").run()
        at.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
        at.text_input(key="rs_qualities_jpeg").set_value("jpeg=30").run()
        at.multiselect(key="rs_metrics").set_value(["psnr"]).run()
        at.button(key="rs_run").click().run()
        assert not at.exception and any("rows in" in s.value for s in at.success)
        assert not marker.exists()
        # configured by the operator, the cluster is offered by name (its address is not shown)
        monkeypatch.setenv("NICVIZ_DASK_SCHEDULERS", f"lab={evil.scheduler_address}")
        at2 = AppTest.from_file(str(root / "app_pages" / "run_sweep.py"), default_timeout=60).run()
        assert at2.radio(key="rs_where").options[-1] == "Dask cluster lab"
        assert not marker.exists()
    finally:
        evil.close()
