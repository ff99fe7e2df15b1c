"""Safe to serve, part 2: one writer per results file across sessions of one process,
budgets checked before work, torn rows never trusted, and every bad input one line."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nicviz.cli import main
from nicviz.datasets import DatasetError, dataset_from_uploads, resolve_dataset
from nicviz.errors import NicvizError
from nicviz.results import read_results
from nicviz.specs import SpecError, parse_qualities
from nicviz.sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent
TIMINGS = ["encode_s", "decode_s", "metrics_s"]


@pytest.fixture
def tiny(tmp_path):
    """Three small real photographs (crops of scikit-image's), quick to sweep many times."""
    from nicviz.datasets import builtin_sample

    folder = tmp_path / "tiny"
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        Image.fromarray(builtin_sample(name)[:48, :64]).save(folder / f"{name}.png")
    return resolve_dataset(str(folder))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("nicviz: error: ") and "Traceback" not in err[0]
    return err[0]


# -- one writer across the sessions of one process -------------------------------------------
def test_a_second_sweep_in_the_same_process_is_refused_before_work(tiny, tmp_path):
    out = tmp_path / "shared.csv"
    started, go_on = threading.Event(), threading.Event()
    result: dict = {}

    def held(done: int, total: int) -> None:
        started.set()
        go_on.wait(60)

    def first() -> None:
        result["first"] = run_sweep(tiny, ["jpeg"], {"jpeg": [10, 50, 90]}, out, metrics=("psnr",), progress=False,
                                    on_progress=held)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(120)
    with pytest.raises(NicvizError, match="in use by another sweep of this process"):
        run_sweep(tiny, ["webp"], {"webp": [30]}, out, metrics=("psnr",), progress=False)
    go_on.set()
    t.join(120)
    assert result["first"].rows == 9 and len(read_results(out)) == 9
    # once the first is done, the name is free again
    assert run_sweep(tiny, ["webp"], {"webp": [30]}, out, metrics=("psnr",), progress=False).rows == 12


def test_two_dashboard_sessions_never_share_a_name_without_asking(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from nicviz.dashboard.widgets import claim_results_name, release_results_name

    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    other = "someone-else"
    assert claim_results_name("team", other)  # another session is writing "team" (no file yet)
    try:
        at = AppTest.from_file(str(ROOT / "app_pages" / "run_sweep.py"), default_timeout=120).run()
        at.text_input(key="rs_name").set_value("team").run()
        at.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
        at.text_input(key="rs_qualities_jpeg").set_value("jpeg=30").run()
        at.multiselect(key="rs_metrics").set_value(["psnr"]).run()
        assert at.checkbox(key="rs_add").value is False  # the question is asked although no file exists
        at.button(key="rs_run").click().run()
        assert not at.exception and "exists" in at.error[0].value
        at.checkbox(key="rs_add").check().run()
        at.button(key="rs_run").click().run()  # agreed, but the other session still holds it: refused before work
        assert not at.exception and "another session is writing team" in at.error[0].value
        assert not (tmp_path / "user" / "team.csv").exists()
    finally:
        release_results_name("team", other)
    at.button(key="rs_run").click().run()
    assert not at.exception and any("rows in" in s.value for s in at.success)


def test_a_sweep_of_only_bad_files_writes_no_results_file(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "b.jpg").write_bytes(b"\xff\xd8 nope")
    out = tmp_path / "r.csv"
    assert main(["sweep", str(folder), "--codec", "jpeg", "--quality", "30", "--quiet", "--out", str(out)]) == 2
    assert not out.exists() and Path(str(out) + ".errors.csv").is_file()


# -- budgets before work ---------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["0:1e12:1", "jpeg=1:1e7:1", "1:100000:0.001", "1:inf:1", "nan", "1:5:1e-300"])
def test_huge_quality_ranges_are_refused_by_arithmetic(spec, monkeypatch):
    """Counted, not expanded: the refusal comes before a single value of the range is made
    (a parser that expanded first would build 1e12 numbers; here it would fail at once)."""
    import nicviz.specs

    made = []
    real = nicviz.specs._number

    def counting(text, what):
        made.append(text)
        if len(made) > 10:
            raise AssertionError("the range is being expanded")
        return real(text, what)

    monkeypatch.setattr(nicviz.specs, "_number", counting)
    with pytest.raises(SpecError):
        parse_qualities(["jpeg"], spec, defaults={})


def test_the_cli_refuses_a_huge_range_in_one_line(tiny, tmp_path, capsys):
    rc = main(["sweep", str(tiny.root), "--codec", "jpeg", "--quality", "0:1e12:1", "--quiet",
               "--out", str(tmp_path / "r.csv")])
    assert rc == 2 and "quality" in _one_line(capsys) and not (tmp_path / "r.csv").exists()


def test_zip_members_are_sized_before_any_is_inflated(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.txt", b"\0" * (64 << 20))  # not an image: never inflated
        png = io.BytesIO()
        Image.new("RGB", (8, 8)).save(png, "PNG")
        zf.writestr("a.png", png.getvalue())
        zf.writestr("huge.png", b"\0" * (40 << 20))  # an "image" too large for the budget
    data = buf.getvalue()
    assert len(data) < 1 << 20
    with pytest.raises(DatasetError, match="unpacks to more than 32 MB"):
        dataset_from_uploads([("x.zip", data)], tmp_path / "u", max_bytes=32 << 20)
    assert not any((tmp_path / "u").iterdir())  # refused before anything was written
    ignored: list[str] = []
    ok = dataset_from_uploads([("x.zip", data), ("notes.txt", b"hi")], tmp_path / "u2", max_bytes=48 << 20,
                              ignored=ignored)
    assert sorted(p.name for p in ok.files) == ["a.png", "huge.png"]  # big.txt never unpacked
    assert ignored == ["x.zip: big.txt", "notes.txt"]  # and the page can say so


@pytest.mark.parametrize("members", [["x.png", "x.png/y.png"], ["x.png/y.png", "x.png"], ["a/" * 7 + "b" * 300 + ".png"]])
def test_zip_layouts_that_cannot_be_unpacked_are_one_line(tmp_path, members):
    buf = io.BytesIO()
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    with zipfile.ZipFile(buf, "w") as zf:
        for m in members:
            zf.writestr(m, png.getvalue())
        zf.writestr("ok.png", png.getvalue())
    try:
        ds = dataset_from_uploads([("up.zip", buf.getvalue())], tmp_path / "u")
    except DatasetError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(tmp_path) not in msg and "cannot be unpacked" in msg
    else:  # an over-long member is left out
        assert [p.name for p in ds.files] == ["ok.png"]


def test_every_page_guards_the_pixel_budget():
    for page in ("app_pages/compare.py", "app_pages/plates.py", "nicviz/dashboard/lesions.py"):
        assert "size_guard(" in (ROOT / page).read_text(), page


def test_a_dashboard_sweep_downscales_or_skips_images_over_the_budget(tmp_path):
    from nicviz.datasets import builtin_sample

    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(builtin_sample("astronaut")).save(folder / "astro.png")  # 512 x 512
    ds = resolve_dataset(str(folder))
    limits = {"classical": 128 * 128}
    skipped = run_sweep(ds, ["jpeg"], {"jpeg": [30]}, tmp_path / "a.csv", metrics=("psnr",), progress=False,
                        pixel_limits=limits)
    assert skipped.rows == 0 and "limit of 16,384 pixels" in skipped.errors[0]["error"]
    done = run_sweep(ds, ["jpeg"], {"jpeg": [30]}, tmp_path / "b.csv", metrics=("psnr",), progress=False,
                     pixel_limits=limits, downscale=True)
    row = read_results(tmp_path / "b.csv").iloc[0]
    assert done.rows == 1 and (row["width"], row["height"]) == (128, 128)


# -- torn rows never trusted -----------------------------------------------------------------
def test_a_results_file_cut_anywhere_in_its_last_two_rows_resumes_to_the_uninterrupted_rows(tiny, tmp_path):
    metrics = ("psnr", "ssim", "mae")
    q = {"jpeg": [10, 60], "webp": [40]}
    full = tmp_path / "full.csv"
    run_sweep(tiny, ["jpeg", "webp"], q, full, metrics=metrics, progress=False)
    want = read_results(full)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    start = len(data) - len(lines[-1]) - len(lines[-2])
    offsets = range(start, len(data))
    rng = np.random.default_rng(0)
    picked = sorted(rng.choice(np.array(offsets), size=min(60, len(offsets)), replace=False))
    cut = tmp_path / "cut.csv"
    for off in picked:
        cut.write_bytes(data[:off])
        run_sweep(tiny, ["jpeg", "webp"], q, cut, metrics=metrics, progress=False)
        got = read_results(cut)
        assert list(got.dtypes) == list(want.dtypes), off
        pd.testing.assert_frame_equal(got.drop(columns=TIMINGS), want.drop(columns=TIMINGS), check_exact=True,
                                      obj=f"cut at byte {off}")


@pytest.mark.parametrize("bad", [("rate_mode", "bitstr"), ("psnr", "inf"), ("bytes", "12.5"), ("width", ""),
                                 ("bpp", "nan"), ("psnr", "")])
def test_a_row_with_a_wrong_value_is_recomputed(tiny, tmp_path, bad):
    column, value = bad
    out = tmp_path / "r.csv"
    run_sweep(tiny, ["jpeg"], {"jpeg": [30]}, out, metrics=("psnr",), progress=False)
    want = read_results(out)
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    df.loc[1, column] = value
    df.to_csv(out, index=False)
    summary = run_sweep(tiny, ["jpeg"], {"jpeg": [30]}, out, metrics=("psnr",), progress=False)
    assert summary.computed == (0 if (column, value) == ("psnr", "inf") else 1)
    if summary.computed:
        got = read_results(out)
        pd.testing.assert_frame_equal(got.drop(columns=TIMINGS), want.drop(columns=TIMINGS))


def test_journal_lines_of_the_wrong_shape_are_ignored(tiny, tmp_path, capsys):
    out = tmp_path / "r.csv"
    Path(str(out) + ".journal.jsonl").write_text('{"foo": 1}\nnull\n[1, 2]\n"text"\n{"error": 3}\n')
    rc = main(["sweep", str(tiny.root), "--codec", "jpeg", "--quality", "30", "--metrics", "psnr", "--quiet",
               "--out", str(out)])
    assert rc == 0 and len(read_results(out)) == 3


# -- one line for every bad input ------------------------------------------------------------
def test_disk_full_is_one_line_and_keeps_the_journal(tiny, tmp_path, capsys, monkeypatch):
    import nicviz.sweep

    def full(df, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(nicviz.sweep, "write_results", full)
    out = tmp_path / "r.csv"
    rc = main(["sweep", str(tiny.root), "--codec", "jpeg", "--quality", "30", "--metrics", "psnr", "--quiet",
               "--out", str(out)])
    assert rc == 2 and "No space left on device" in _one_line(capsys)
    journal = Path(str(out) + ".journal.jsonl").read_text().splitlines()
    assert len(journal) == 3  # every computed row kept for the rerun


def test_report_out_dir_naming_a_file_is_one_line(tiny, tmp_path, capsys):
    out = tmp_path / "r.csv"
    run_sweep(tiny, ["jpeg"], {"jpeg": [10, 30]}, out, metrics=("psnr",), progress=False)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["report", str(out), "--format", "compressai", "--out-dir", str(afile)]) == 2
    assert "names a file" in _one_line(capsys)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert main(["report", str(out), "--format", "compressai", "--out-dir", str(ro)]) == 2
        _one_line(capsys)


def test_reports_on_files_missing_columns_are_one_line(tmp_path, capsys):
    f = tmp_path / "r.csv"
    pd.DataFrame({"codec": ["jpeg"] * 4, "quality": [1, 2, 3, 4], "bpp": [0.1, 0.2, 0.3, 0.4]}).to_csv(f, index=False)
    assert main(["classify-report", str(f)]) == 2
    assert "no task" in _one_line(capsys)
    assert main(["bd-rate", str(f), "--anchor", "jpeg", "--test", "webp"]) == 2
    assert "psnr" in _one_line(capsys)


def test_bd_rate_of_curves_that_do_not_overlap_is_n_a_and_strict_json(tmp_path, capsys):
    rows = [{"dataset": "d", "image": "i", "codec": c, "quality": q, "task": "rd", "bpp": b, "psnr": p}
            for c, base in (("jpeg", 20.0), ("webp", 40.0)) for q, (b, p) in
            enumerate(zip([0.1, 0.2, 0.4, 0.8], [base, base + 1, base + 2, base + 3], strict=True))]
    f = tmp_path / "r.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    assert main(["bd-rate", str(f), "--anchor", "jpeg", "--test", "webp", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["bd_rate"] is None and "NaN" not in out
    assert main(["bd-rate", str(f), "--anchor", "jpeg", "--test", "webp"]) == 0
    assert "n/a" in capsys.readouterr().out


def test_a_non_utf8_labels_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "plates"
    folder.mkdir()
    Image.new("RGB", (64, 32), (200, 200, 200)).save(folder / "a.png")
    (folder / "labels.csv").write_bytes("file,text\na.png,ÄBC\n".encode("latin-1"))
    assert main(["plates", str(folder), "--codec", "jpeg", "--quality", "30", "--quiet",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "not UTF-8" in _one_line(capsys)


def test_labels_naming_missing_files_are_warned_about(tmp_path, capsys):
    from nicviz.tasks.ocr.runner import PlateOcrTask

    folder = tmp_path / "plates"
    folder.mkdir()
    Image.new("RGB", (64, 32)).save(folder / "a.png")
    (folder / "labels.csv").write_text("file,text\na.png,ABC123\ngone.png,XYZ\n")
    assert PlateOcrTask().labels(resolve_dataset(str(folder))) == {"a.png": "ABC123"}
    assert "names 1 file(s) that are not in" in capsys.readouterr().err
    (folder / "labels.csv").write_text("file,text\ngone.png,XYZ\n")
    with pytest.raises(NicvizError, match="names none of the images"):
        PlateOcrTask().labels(resolve_dataset(str(folder)))


@pytest.mark.parametrize("sidecar", ["{not json", "null", "[1, 2]", '{"classes": "abc"}', '{"preprocess": 3}'])
def test_a_bad_keras_sidecar_is_one_line(tmp_path, sidecar):
    from nicviz.tasks.classify.models import KerasClassifier

    model = tmp_path / "m.h5"
    model.write_bytes(b"\x89HDF\r\n\x1a\n")
    model.with_suffix(".json").write_text(sidecar)
    with pytest.raises(NicvizError) as err:
        KerasClassifier(model)
    assert "\n" not in str(err.value) and "m.json" in str(err.value)


@pytest.mark.parametrize("address", ["notaurl", "myhost", "tcp://myhost", "http://x:1", "tcp://h:99999"])
def test_a_bad_scheduler_address_is_one_line(tiny, tmp_path, capsys, address):
    rc = main(["sweep", str(tiny.root), "--codec", "jpeg", "--quality", "30", "--quiet", "--executor", "dask",
               "--scheduler", address, "--out", str(tmp_path / "r.csv")])
    assert rc == 2 and "not a Dask scheduler address" in _one_line(capsys)


def test_special_files_are_never_replaced(tmp_path, capsys):
    from nicviz.datasets import builtin_sample

    img = tmp_path / "a.png"
    Image.fromarray(builtin_sample("chelsea")[:32, :32]).save(img)
    assert main(["eval-image", str(img), "--codec", "jpeg", "--quality", "30", "--save-recon", "/dev/full"]) == 2
    assert "not a regular file" in _one_line(capsys)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["eval-image", str(img), "--codec", "jpeg", "--quality", "30", "--save-bitstream", str(fifo)]) == 2
    _one_line(capsys)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_lock_holding_a_reused_process_id_is_taken_over(tiny, tmp_path):
    out = tmp_path / "r.csv"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process, but not the one that wrote the lock (its start time differs)
        Path(str(out) + ".lock").write_text(f"{sleeper.pid} 12345.0\n")
        assert run_sweep(tiny, ["jpeg"], {"jpeg": [30]}, out, metrics=("psnr",), progress=False).rows == 3
        from nicviz.paths import _start_time

        Path(str(out) + ".lock").write_text(f"{sleeper.pid} {_start_time(sleeper.pid)}\n")
        with pytest.raises(NicvizError, match=f"in use by process {sleeper.pid}"):
            run_sweep(tiny, ["jpeg"], {"jpeg": [40]}, out, metrics=("psnr",), progress=False)
    finally:
        sleeper.kill()


def test_a_symlink_out_of_an_allowed_folder_is_not_followed(tmp_path):
    inside, outside = tmp_path / "data" / "mine", tmp_path / "secret"
    inside.mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (16, 16)).save(inside / "ok.png")
    Image.new("RGB", (16, 16)).save(outside / "private.png")
    (inside / "link.png").symlink_to(outside / "private.png")
    (inside / "dir").symlink_to(outside, target_is_directory=True)
    names = sorted(p.name for p in resolve_dataset(str(inside), confined=True).files)
    assert names == ["ok.png"]
    assert len(resolve_dataset(str(inside)).files) >= 2  # the CLI's user may use links on purpose


def test_library_warnings_do_not_come_before_the_one_line_error(tmp_path):
    """A corrupt checkpoint makes CompressAI build its model (torch.jit's deprecation
    warning) before the load fails: only nicviz's one line reaches the terminal."""
    from nicviz.codecs.weights import official_filename

    img = tmp_path / "a.png"
    Image.new("RGB", (40, 40), (10, 120, 200)).save(img)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / official_filename("bmshj2018-factorized", 2)).write_bytes(b"junk")
    run = subprocess.run([sys.executable, "-m", "nicviz", "eval-image", str(img), "--codec", "bmshj2018-factorized",
                          "--quality", "2"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NICVIZ_WEIGHTS_DIR": str(weights)})
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "cannot load checkpoint" in lines[0], run.stderr


def test_report_compressai_keeps_fractional_qualities(tmp_path, capsys):
    rows = [{"dataset": "d", "image": "i", "codec": "v", "quality": q, "task": "rd", "bpp": 0.1 * q, "psnr": 20 + q,
             "ms_ssim": 0.9} for q in (1, 1.5, 2.25, 3)]
    f = tmp_path / "r.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    assert main(["report", str(f), "--format", "compressai"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]["quality"] == [1, 1.5, 2.25, 3]


def test_a_peer_that_never_speaks_dask_is_given_up_on(tiny, tmp_path):
    """An open port that accepts but never answers (an HTTP server, say): one line after the
    timeout, not a sweep stuck at 'starting...'."""
    import socket

    from nicviz.executors import DaskExecutor

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        ex = DaskExecutor(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout_s=1)
        with pytest.raises(NicvizError, match="cannot reach the Dask scheduler"):
            run_sweep(tiny, ["jpeg"], {"jpeg": [30]}, tmp_path / "r.csv", metrics=("psnr",), progress=False,
                      executor=ex)
    finally:
        server.close()
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("reply", [b"\xff" * 64, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"])
def test_a_peer_that_answers_other_bytes_is_one_line(tiny, tmp_path, reply):
    """A port that answers with bytes that are not Dask's (a huge frame length, an HTTP
    reply): one line naming the address, never the allocation error a frame length of
    exbibytes caused."""
    import socket
    import threading

    from nicviz.executors import DaskExecutor

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(30)

    def answer() -> None:
        try:
            while True:
                conn, _ = server.accept()
                conn.sendall(reply)
        except OSError:
            return

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    try:
        ex = DaskExecutor(address, timeout_s=1)
        with pytest.raises(NicvizError, match="cannot reach the Dask scheduler") as err:
            run_sweep(tiny, ["jpeg"], {"jpeg": [30]}, tmp_path / "r.csv", metrics=("psnr",), progress=False,
                      executor=ex)
    finally:
        server.close()
    assert "\n" not in str(err.value) and address in str(err.value)
    assert not (tmp_path / "r.csv").exists()
