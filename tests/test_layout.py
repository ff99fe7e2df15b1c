"""The package's seams: no Streamlit outside the dashboard, portable metadata, specs,
rate estimates against bitstreams, plots and references (BD-rate: tests/test_bd_rate.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nicviz.specs import SpecError, parse_metrics, parse_numbers, parse_qualities, parse_task

ROOT = Path(__file__).resolve().parent.parent


def test_a_cli_sweep_never_imports_streamlit(tmp_path):
    code = (
        "import sys\n"
        "from nicviz.cli import main\n"
        "from nicviz.datasets import write_builtin_samples\n"
        f"ds = write_builtin_samples({str(tmp_path / 'imgs')!r}, ('chelsea',))\n"
        f"rc = main(['sweep', str(ds.root), '--codec', 'jpeg', '--quality', '20', '--quiet', "
        f"'--metrics', 'psnr', '--out', {str(tmp_path / 'r.csv')!r}])\n"
        "assert rc == 0, rc\n"
        "print('streamlit' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_streamlit_is_imported_only_in_the_dashboard_package():
    offenders = []
    for p in (ROOT / "nicviz").rglob("*.py"):
        if "dashboard" in p.relative_to(ROOT / "nicviz").parts:
            continue
        if "import streamlit" in p.read_text() or "from streamlit" in p.read_text():
            offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []


def test_shipped_metadata_names_no_absolute_path():
    for meta in (ROOT / "results").rglob("*.meta.json"):
        text = meta.read_text()
        for value in json.loads(text).values():
            if isinstance(value, str):
                assert not Path(value).is_absolute(), f"{meta.name}: {value}"
        assert "/work/" not in text and "/home/" not in text, meta.name


def test_every_shipped_rd_results_file_can_be_drawn(monkeypatch):
    """Rate-distortion offers every file whose metadata says task ``rd`` (the default): a
    shipped table of another kind (a recipe comparison) must say so, or every user sees it
    listed as a file that cannot be drawn."""
    from nicviz.results import list_result_files

    monkeypatch.setenv("NICVIZ_RESULTS", str(ROOT / "results"))
    files = list_result_files("rd")
    assert files
    for p in files:
        cols = set(pd.read_csv(p, nrows=1).columns) if p.suffix == ".csv" else set(pd.read_parquet(p).columns)
        missing = {"dataset", "image", "codec", "quality", "bpp", "psnr"} - cols
        assert not missing, f"{p.relative_to(ROOT)} lacks {sorted(missing)}"


def test_portable_root_round_trips_inside_and_outside_the_data_root(tmp_path, monkeypatch):
    from nicviz.results import dataset_folder, portable_root

    data = tmp_path / "data"
    (data / "kodak").mkdir(parents=True)
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("NICVIZ_DATA", str(data))
    root, base = portable_root(data / "kodak")
    assert (root, base) == ("kodak", "data root")
    assert dataset_folder({"dataset_root": root, "dataset_root_base": base}) == data / "kodak"
    root, base = portable_root(other)
    assert base == "absolute" and dataset_folder({"dataset_root": root, "dataset_root_base": base}) == other
    assert dataset_folder({"dataset_root": "gone", "dataset_root_base": "data root"}) is None


def test_quality_specs_share_one_grammar():
    d = {"jpeg": [50], "webp": [75]}
    assert parse_qualities(["jpeg", "webp"], "5,10", d) == {"jpeg": [5, 10], "webp": [5, 10]}
    assert parse_qualities(["jpeg", "webp"], "jpeg=10:30:10", d) == {"jpeg": [10, 20, 30], "webp": [75]}
    assert parse_qualities(["jpeg"], None, d) == {"jpeg": [50]}
    assert parse_numbers("1:2:0.5") == [1, 1.5, 2]
    for bad, msg in [("abc", "not a number"), ("jpeg=", "no qualities"), ("avif=5", "not among"),
                     ("5:1", "ends before"), ("1:5:0", "positive step"), ("jpeg=x", "not a number")]:
        with pytest.raises(SpecError, match=msg):
            parse_qualities(["jpeg", "webp"], bad, d)
    assert parse_metrics("psnr, ssim") == ("psnr", "ssim")
    with pytest.raises(SpecError, match="unknown metric"):
        parse_metrics("psnr,fancy")
    assert parse_task("classify", "isic-effnet-lite0") == "classify"
    assert parse_task("classify", "keras:m.h5") == "classify:keras:m.h5"
    assert parse_task("ocr", ocr_engine="paddleocr") == "ocr:paddleocr"
    with pytest.raises(SpecError, match="unknown task"):
        parse_task("segment")


def test_mini_codec_sweep_without_quality_uses_the_shipped_qualities(tmp_path, capsys):
    from nicviz.cli import main
    from nicviz.codecs import get_codec
    from nicviz.datasets import write_builtin_samples

    codec = get_codec("cheng2020-anchor-mini")
    if not codec.available:
        pytest.skip("no shipped mini model")
    folder = write_builtin_samples(tmp_path / "imgs", ("coffee",)).root
    out = tmp_path / "m.csv"
    assert main(["sweep", str(folder), "--codec", "cheng2020-anchor-mini", "--metrics", "psnr", "--quiet",
                 "--out", str(out)]) == 0
    assert sorted(pd.read_csv(out)["quality"]) == codec.available_qualities()
    assert codec.scale.high == max(codec.available_qualities())


def test_estimated_bits_match_the_bitstream_and_eval_forward_matches_decoding(astronaut):
    """For a model without a context model the eval-mode forward quantizes exactly as
    compress/decompress do; the rate estimate matches the real bitstream."""
    from nicviz.codecs.neural import NeuralCodec, RandomWeights, unpack_strings

    codec = NeuralCodec("t-hyper", "bmshj2018-hyperprior", RandomWeights("bmshj2018-hyperprior", seed=0), (1,))
    rgb = astronaut[:128, :192]
    recon_est, bits = codec.estimate(rgb, 1)
    data, _ = codec.encode_reconstruct(rgb, 1)
    payload = sum(len(s) for s in unpack_strings(data).strings) * 8
    assert np.array_equal(codec.decode(data), recon_est)
    # within 1 % plus the coder's flush (a few bytes per string)
    assert payload == pytest.approx(bits, rel=0.01, abs=160)


def test_plots_draw_one_trace_per_codec_and_the_references():
    from nicviz.analysis import load_compressai_json
    from nicviz.paths import REFERENCE_DIR
    from nicviz.plots import rd_figure

    rows = [{"codec": c, "quality": q, "image": f"i{k}", "bpp": 0.1 * q + 0.01 * k + (c == "webp") * 0.05,
             "psnr": 25 + q + k * 0.1, "ssim": 0.9, "ms_ssim": 0.95, "vif": 0.5}
            for c in ("jpeg", "webp") for q in (1, 2, 3) for k in range(3)]
    ref = {"jpeg (CompressAI)": load_compressai_json(REFERENCE_DIR / "jpeg.json")}
    fig = rd_figure(pd.DataFrame(rows), "psnr", ["jpeg", "webp"], ref, "none")
    names = {t.name for t in fig.data}
    assert {"jpeg", "webp"} <= names and any("CompressAI" in str(n) for n in names)


def test_shipped_reference_curves_load():
    from nicviz.paths import REFERENCE_DIR
    from nicviz.reference import load_references

    refs = load_references(REFERENCE_DIR)
    assert "jpeg" in refs and len(refs) >= 10
    r = refs["jpeg"]["results"]
    assert len(r["bpp"]) == len(r["psnr-rgb"]) > 5 and r["bpp"] == sorted(r["bpp"])


def test_results_round_trip_and_refuse_foreign_files(tmp_path):
    from nicviz.errors import NicvizError
    from nicviz.results import read_results, write_results

    df = pd.DataFrame([{"dataset": "d", "image": "a.png", "codec": "jpeg", "quality": 5, "task": "rd", "bpp": 0.5,
                        "psnr": 30.0}])
    write_results(df, tmp_path / "r.csv")
    back = read_results(tmp_path / "r.csv")
    assert back.loc[0, "psnr"] == 30.0 and back.loc[0, "codec"] == "jpeg"
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(NicvizError, match="not a nicviz results file"):
        read_results(tmp_path / "other.csv")
    with pytest.raises(NicvizError, match=".csv or .parquet"):
        write_results(df, tmp_path / "r.txt")
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_installed_wheel_works_outside_the_checkout(tmp_path, astronaut):
    """``pip install .`` into a fresh venv (dependencies borrowed from this environment),
    then ``nicviz codecs`` and a one-image ``eval-image`` with a mini codec elsewhere."""
    import site
    import sysconfig

    from PIL import Image

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    (purelib / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(ROOT)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    Image.fromarray(astronaut[:96, :160]).save(work / "a.png")
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    where = subprocess.run([str(py), "-c", "import nicviz; print(nicviz.__file__)"], capture_output=True, text=True,
                           cwd=work, env=env, timeout=120)
    assert str(venv) in where.stdout, where.stdout + where.stderr
    codecs = subprocess.run([str(venv / "bin" / "nicviz"), "codecs"], capture_output=True, text=True, cwd=work,
                            env=env, timeout=300)
    assert codecs.returncode == 0 and "cheng2020-anchor-mini" in codecs.stdout, codecs.stderr
    ev = subprocess.run([str(venv / "bin" / "nicviz"), "eval-image", "a.png", "--codec", "cheng2020-anchor-mini",
                         "--quality", "1", "--metrics", "psnr", "--json"], capture_output=True, text=True, cwd=work,
                        env=env, timeout=300)
    assert ev.returncode == 0, ev.stderr
    row = json.loads(ev.stdout)
    assert row["bpp"] > 0 and row["psnr"] > 15


def test_reference_curves_take_their_codecs_colour():
    from nicviz.plots import codec_color, reference_codec

    assert reference_codec("jpeg") == "jpeg" and reference_codec("jpeg2000") == "jpeg2000"
    assert reference_codec("compressai-cheng2020-anchor_mse_cuda") == "cheng2020-anchor"
    assert codec_color(reference_codec("jpeg")) == codec_color("jpeg") != codec_color("jpeg2000")
    # every codec nicviz ships and every published family has a colour of its own (BPG is not HEIF)
    from nicviz.codecs import RATE_ESTIMATED, get_codec, list_codecs

    names = [c for c in list_codecs() if get_codec(c).rate_mode != RATE_ESTIMATED] + ["bpg", "vtm", "hm"]
    assert len({codec_color(n) for n in names}) == len(names)
    # the overfitted curve labelled with its effort keeps its colour (it had drawn in WebP's blue)
    assert codec_color("overfitted (3,000 it.)") == codec_color("overfitted") != codec_color("webp")
    assert codec_color("overfitted (3,000 it., 890 MAC/px)") == codec_color("overfitted")


def test_two_decoder_sizes_at_the_same_effort_are_two_labels():
    """The RD page names a per-image codec's curve by its effort and decoder size, so rows of
    the first architecture (ARM 8) and of today's never average into one curve."""
    import json

    from nicviz.codecs import get_codec
    from nicviz.codecs.overfitted.model import Config, macs_per_pixel
    from nicviz.results import fitting_effort

    now = get_codec("overfitted").settings()
    first = {**now, "config": {**now["config"], "arm_hidden": 8}}
    a, b = fitting_effort(json.dumps(now)), fitting_effort(json.dumps(first))
    assert a == f"3,000 it., {macs_per_pixel(Config()):,.0f} MAC/px" and b == "3,000 it., 484 MAC/px" and a != b
    assert fitting_effort(json.dumps({"iterations": 10})) == "10 it." and fitting_effort(None) == ""


def test_whole_images_keeps_only_the_images_of_every_quality_per_codec_and_task():
    """A growing per-image sweep: its half-finished image is left out of its curve, the
    other codec's rows are untouched (it has its own qualities)."""
    from nicviz.results import whole_images

    rows = [("a", "ovf", 1, "classify"), ("a", "ovf", 4, "classify"), ("b", "ovf", 1, "classify"),
            ("b", "ovf", 4, "classify"), ("c", "ovf", 1, "classify"),  # c: the sweep is at its first rate
            ("c", "ovf", 1, "classify:robust"), ("c", "ovf", 4, "classify:robust"),  # but done for robust
            ("a", "jpeg", 10, "classify"), ("c", "jpeg", 10, "classify")]
    df = pd.DataFrame(rows, columns=["image", "codec", "quality", "task"])
    kept = whole_images(df)
    assert sorted(map(tuple, kept.to_numpy())) == sorted(r for r in rows if r != ("c", "ovf", 1, "classify"))
    assert len(whole_images(df, ("codec",))) == len(df)  # by codec alone, c has both rates
    assert whole_images(df.iloc[0:0]).empty


def test_the_tree_sent_to_a_lent_accelerator_fits_and_comes_back(tmp_path):
    """scripts/device_tree.sh slim leaves the shipped weights out of the working tree (the
    device tool refuses one over 64 MiB), keeps the ones a GPU run starts from, and
    ``full`` brings every file back."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", str(ROOT), str(clone)], check=True)
    shutil.copy(ROOT / "scripts" / "device_tree.sh", clone / "scripts" / "device_tree.sh")  # this tree's version
    models = sorted(p.name for p in (clone / "nicviz" / "models").glob("*.pt"))
    run = subprocess.run(["bash", "scripts/device_tree.sh", "slim"], cwd=clone, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    sent = int(subprocess.run(["bash", "scripts/device_tree.sh", "size"], cwd=clone, capture_output=True,
                              text=True, check=True).stdout)
    assert sent <= 64 * 1024 * 1024, sent
    kept = sorted(p.name for p in (clone / "nicviz" / "models").glob("*.pt"))
    assert kept == ["cheng2020-anchor-mini-q3.pt", "cheng2020-attn-mini-q3.pt"]
    cpu_runs = subprocess.run(["git", "ls-files", "results/training/V-*-cpu.pt"], cwd=clone, capture_output=True,
                              text=True, check=True).stdout.split()
    assert cpu_runs and all((clone / f).is_file() for f in cpu_runs)  # the GPU run continues them
    subprocess.run(["bash", "scripts/device_tree.sh", "full"], cwd=clone, capture_output=True, check=True)
    assert sorted(p.name for p in (clone / "nicviz" / "models").glob("*.pt")) == models
