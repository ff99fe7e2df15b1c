"""The compressed-image bank behind compression-trained classifiers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nicviz.codecs import get_codec
from nicviz.datasets import builtin_sample
from nicviz.errors import NicvizError
from nicviz.training.augment import _compress_swap
from nicviz.training.bank import Bank, build_bank


@pytest.fixture(scope="module")
def images():
    cat = builtin_sample("chelsea")[:96, :128]
    return [cat, np.ascontiguousarray(cat[::-1]), np.ascontiguousarray(cat[:, ::-1])]


def test_bank_holds_the_codecs_real_reconstructions_and_resumes(tmp_path, images):
    qualities = {"jpeg": (10, 50), "cheng2020-anchor-mini": (2,)}
    ids = ["a", "b", "c"]
    folder = build_bank(images, ids, tmp_path / "bank", "tiny", qualities, log=lambda s: None)
    bank = Bank.open(folder, ids)
    assert sorted(bank.entries) == ["cheng2020-anchor-mini-q2", "jpeg-q10", "jpeg-q50"]
    jpeg, mini = get_codec("jpeg"), get_codec("cheng2020-anchor-mini")
    arr = np.load(folder / "jpeg-q10.npy")
    for i, im in enumerate(images):
        assert np.array_equal(arr[i], jpeg.decode(jpeg.encode(im, 10)))
    # the neural entry is the bitstream's own reconstruction, bit for bit
    neural = np.load(folder / "cheng2020-anchor-mini-q2.npy")
    assert np.array_equal(neural[1], mini.decode(mini.encode(images[1], 2)))
    meta = json.loads((folder / "index.json").read_text())
    assert meta["entries"]["jpeg-q50"]["bpp"] > meta["entries"]["jpeg-q10"]["bpp"]
    assert meta["dataset"] == "tiny" and "packages" in meta
    assert meta["entries"]["cheng2020-anchor-mini-q2"]["weights"]  # which weights made it
    # a rerun computes nothing already there
    stamp = (folder / "jpeg-q10.npy").stat().st_mtime_ns
    logged: list[str] = []
    build_bank(images, ids, folder, "tiny", qualities, log=logged.append)
    assert logged == [] and (folder / "jpeg-q10.npy").stat().st_mtime_ns == stamp
    # sampling: a swapped image is one of the bank's reconstructions of that same image
    rng = np.random.default_rng(0)
    from PIL import Image

    square = np.asarray(Image.fromarray(images[2]).resize((96, 96), Image.BILINEAR))
    batch = np.stack([square] * 2)
    swapped = _compress_swap(batch, np.array([2, 2]), bank, 1.0, rng, 96)
    assert swapped.shape == batch.shape and not np.array_equal(swapped[0], batch[0])
    assert np.abs(swapped.astype(float) - batch).mean() < 20  # the same picture, compressed
    assert _compress_swap(batch, np.array([2, 2]), bank, 0.0, rng, 96) is batch


def test_bank_refuses_other_images_codecs_or_weights(tmp_path, images):
    folder = build_bank(images[:2], ["a", "b"], tmp_path / "bank", "tiny", {"jpeg": (20,)}, log=lambda s: None)
    with pytest.raises(NicvizError, match="other training images"):
        Bank.open(folder, ["a", "x"])
    with pytest.raises(NicvizError, match="holds no webp"):
        Bank.open(folder, ["a", "b"], ["jpeg", "webp"])
    with pytest.raises(NicvizError, match="other training images"):
        build_bank(images[:2], ["a", "x"], folder, "tiny", {"jpeg": (20,)})
    index = folder / "index.json"
    meta = json.loads(index.read_text())
    meta["entries"]["jpeg-q20"]["codec"] = "cheng2020-anchor-mini"
    meta["entries"]["jpeg-q20"]["weights"] = {"old.pt": 1}
    index.write_text(json.dumps(meta))
    with pytest.raises(NicvizError, match="other cheng2020-anchor-mini weights"):
        Bank.open(folder, ["a", "b"])
    with pytest.raises(NicvizError, match="no compressed-image bank"):
        Bank.open(tmp_path / "none", ["a"])


def test_bank_command_without_an_isic_folder_is_one_line(tmp_path, capsys):
    from nicviz.training.bank import main

    assert main(["--isic", str(tmp_path / "missing"), "--bank", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "no ISIC 9-class folder" in err and "Traceback" not in err
