"""The nicviz command line: eval-image, bad input, sweeps with errors, report, bd-rate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from imagefiles import encode, png16_rgb, png_bomb, write
from PIL import Image

from nicviz.cli import main
from nicviz.codecs import register_codec, unregister_codec
from nicviz.codecs.neural import NeuralCodec, RandomWeights
from nicviz.datasets import write_builtin_samples


@pytest.fixture(autouse=True, scope="module")
def random_neural_codec():
    """A neural codec with random weights, registered for this module's tests only."""
    register_codec("test-random", lambda: NeuralCodec(
        "test-random", "bmshj2018-factorized", RandomWeights("bmshj2018-factorized", seed=0), (1, 2)))
    yield
    unregister_codec("test-random")

JSON_KEYS = {"codec", "quality", "width", "height", "bytes", "bpp", "psnr", "ssim", "ms_ssim", "vif",
             "mse", "mae", "encode_s", "decode_s"}


@pytest.fixture
def chelsea_png(tmp_path, chelsea):
    return write(tmp_path / "chelsea.png", encode(Image.fromarray(chelsea), "PNG"))


def test_eval_image_json(chelsea_png, capsys, tmp_path):
    recon = tmp_path / "recon.png"
    assert main(["eval-image", str(chelsea_png), "--codec", "jpeg", "--quality", "40", "--json",
                 "--save-recon", str(recon)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert JSON_KEYS <= set(out)
    assert out["width"] == 451 and out["height"] == 300 and out["codec"] == "jpeg"
    assert out["bpp"] == pytest.approx(8 * out["bytes"] / (451 * 300))
    assert 25 < out["psnr"] < 45 and 0 < out["ssim"] < 1 and 0 < out["vif"] < 1
    assert np.asarray(Image.open(recon)).shape == (300, 451, 3)


def _bad_files(tmp_path, astronaut):
    png = encode(Image.fromarray(astronaut), "PNG")
    jpg = encode(Image.fromarray(astronaut), "JPEG")
    return {
        "zero.png": b"",
        "cut.png": png[: len(png) // 3],
        "cut.jpg": jpg[: len(jpg) // 3],
        "text.png": b"hello, I am not a picture\n",
        "bomb.png": png_bomb(30000, 30000),
    }


def test_eval_image_bad_inputs_one_line_exit_2(tmp_path, astronaut, capsys):
    for name, data in _bad_files(tmp_path, astronaut).items():
        p = write(tmp_path / name, data)
        assert main(["eval-image", str(p), "--codec", "jpeg", "--quality", "50"]) == 2, name
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and name in lines[0] and lines[0].startswith("nicviz: error:"), err
        assert "Traceback" not in err


def _convertible(tmp_path, chelsea):
    gray = Image.fromarray(chelsea).convert("L")
    rgba = Image.fromarray(chelsea).convert("RGBA")
    im = Image.fromarray(chelsea)
    exif = im.getexif()
    exif[0x0112] = 6
    return {
        "deep.png": png16_rgb(chelsea.astype(np.uint16) * 257),
        "cmyk.jpg": encode(im.convert("CMYK"), "JPEG"),
        "rgba.png": encode(rgba, "PNG"),
        "pal.png": encode(im.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "gray.png": encode(gray, "PNG"),
        "rot.jpg": encode(im, "JPEG", exif=exif.tobytes()),
        "tiny.png": encode(im.resize((20, 13)), "PNG"),
    }


def test_eval_image_converts_awkward_images(tmp_path, chelsea, capsys):
    for name, data in _convertible(tmp_path, chelsea).items():
        p = write(tmp_path / name, data)
        assert main(["eval-image", str(p), "--codec", "webp", "--quality", "60", "--json"]) == 0, name
        out = json.loads(capsys.readouterr().out)
        expect = {"rot.jpg": (300, 451), "tiny.png": (20, 13)}.get(name, (451, 300))
        assert (out["width"], out["height"]) == expect, name
    # 16-bit with the same 8-bit content gives the same result as the 8-bit file
    write(tmp_path / "eight.png", encode(Image.fromarray(chelsea), "PNG"))
    main(["eval-image", str(tmp_path / "eight.png"), "--codec", "webp", "--quality", "60", "--json"])
    main(["eval-image", str(tmp_path / "deep.png"), "--codec", "webp", "--quality", "60", "--json"])
    a, b = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert a["bytes"] == b["bytes"] and a["psnr"] == b["psnr"]


@pytest.mark.parametrize("size", [(20, 13), (65, 33), (64, 64)])
def test_eval_image_neural_small_and_odd(tmp_path, chelsea, capsys, size):
    p = write(tmp_path / "small.png", encode(Image.fromarray(chelsea).resize(size), "PNG"))
    assert main(["eval-image", str(p), "--codec", "test-random", "--quality", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["width"], out["height"]) == size and out["bytes"] > 0
    assert out["ms_ssim"] is None  # too small for 5 scales: reported as missing, not made up


@pytest.mark.parametrize("argv,needle", [
    (["--codec", "nope", "--quality", "5"], "unknown codec"),
    (["--codec", "jpeg", "--quality", "500"], "outside 1..100"),
    (["--codec", "jpeg", "--quality", "50", "--metrics", "lpips"], "unknown metric"),
    (["--codec", "cheng2020-anchor", "--quality", "3"], "pth.tar"),
])
def test_eval_image_bad_options(chelsea_png, capsys, argv, needle, monkeypatch, tmp_path):
    monkeypatch.setenv("NICVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert main(["eval-image", str(chelsea_png), *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_sweep_records_bad_files_and_finishes(tmp_path, astronaut, chelsea, capsys):
    folder = tmp_path / "mixed"
    write_builtin_samples(folder, ("chelsea", "coffee"))
    for name, data in _bad_files(tmp_path, astronaut).items():
        write(folder / name, data)
    write(folder / "gray.png", encode(Image.fromarray(chelsea).convert("L"), "PNG"))
    out = tmp_path / "res.csv"
    rc = main(["sweep", str(folder), "--codec", "jpeg,webp", "--quality", "20,60", "--metrics", "psnr,ssim",
               "--out", str(out), "--quiet"])
    assert rc == 2
    df = pd.read_csv(out)
    assert sorted(df["image"].unique()) == ["chelsea.png", "coffee.png", "gray.png"]
    assert len(df) == 3 * 2 * 2 and not df.duplicated(["image", "codec", "quality"]).any()
    errors = pd.read_csv(str(out) + ".errors.csv")
    assert set(errors["image"]) == set(_bad_files(tmp_path, astronaut))
    meta = json.loads((tmp_path / "res.csv.meta.json").read_text())
    assert meta["packages"]["pillow"] and meta["command"][:2] == ["nicviz", "sweep"]
    err = capsys.readouterr().err
    assert "Traceback" not in err and "bomb.png" in err
    # rerun: nothing left to compute
    main(["sweep", str(folder), "--codec", "jpeg,webp", "--quality", "20,60", "--metrics", "psnr,ssim",
          "--out", str(out), "--quiet"])
    assert "(0 computed, 12 already done)" in capsys.readouterr().out
    assert len(pd.read_csv(out)) == 12


def test_sweep_bad_arguments(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nowhere"), "--codec", "jpeg", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path), "--codec", "jpeg", "--out", str(tmp_path / "x.txt")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err


def test_report_and_bd_rate(tmp_path, capsys):
    folder = write_builtin_samples(tmp_path / "s", ("chelsea", "coffee", "rocket")).root
    out = tmp_path / "r.parquet"
    assert main(["sweep", str(folder), "--codec", "jpeg,webp", "--quality", "10:90:20", "--metrics",
                 "psnr,ms_ssim", "-j", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--format", "compressai", "--codec", "jpeg"]) == 0
    doc = json.loads(capsys.readouterr().out)
    df = pd.read_parquet(out)
    j = df[df.codec == "jpeg"].groupby("quality")
    assert doc["results"]["quality"] == [10, 30, 50, 70, 90]
    assert doc["results"]["psnr-rgb"] == pytest.approx(list(j["psnr"].mean()))
    assert doc["results"]["bpp"] == pytest.approx(list(j["bpp"].mean()))
    assert set(doc["results"]) >= {"psnr-rgb", "ms-ssim-rgb", "bpp", "encoding_time", "decoding_time"}
    assert main(["bd-rate", str(out), "--anchor", "jpeg", "--test", "webp", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert -60 < res["bd_rate"] < 0  # WebP beats JPEG on photographs
    assert main(["bd-rate", str(out), "--anchor", "jpeg", "--test", "avif"]) == 2
    assert "no rows for codec 'avif'" in capsys.readouterr().err


def test_per_codec_quality_lists(tmp_path, capsys):
    folder = write_builtin_samples(tmp_path / "s", ("chelsea",)).root
    out = tmp_path / "q.csv"
    assert main(["sweep", str(folder), "--codec", "jpeg,jpeg2000", "--quality", "jpeg=10,20;jpeg2000=24:32:4",
                 "--metrics", "psnr", "--out", str(out), "--quiet"]) == 0
    df = pd.read_csv(out)
    assert sorted(df[df.codec == "jpeg"].quality) == [10, 20]
    assert sorted(df[df.codec == "jpeg2000"].quality) == [24, 28, 32]
    assert main(["sweep", str(folder), "--codec", "jpeg", "--quality", "webp=10", "--out", str(out)]) == 2
    assert "not among the chosen codecs" in capsys.readouterr().err
    assert main(["sweep", str(folder), "--codec", "jpeg", "--quality", "ten", "--out", str(out)]) == 2


def test_sweep_on_a_random_sample_of_images(tmp_path, capsys):
    ds = write_builtin_samples(tmp_path / "samples")
    out = tmp_path / "few.csv"
    args = ["sweep", str(ds.root), "--codec", "jpeg", "--quality", "50", "--metrics", "psnr", "--max-images", "2",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    first = sorted(pd.read_csv(out)["image"])
    assert len(first) == 2 and set(first) < {ds.image_id(p) for p in ds.files}
    assert ds.sample(2).files == ds.sample(2).files and ds.sample(0) is ds  # same seed, same images
    assert len({ds.sample(2, seed=s).files for s in range(6)}) > 1  # a sample, not the first two
    bad = [*args[:-4], "-1", "--out", str(tmp_path / "bad.csv"), "--quiet"]
    assert bad[-5] == "--max-images" and main(bad) == 2
    assert "must be positive" in capsys.readouterr().err
