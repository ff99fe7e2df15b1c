"""Codec registry, classical round trips, neural bitstreams and official-weight lookup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nicviz.codecs import CodecError, CodecUnavailable, get_codec, list_codecs
from nicviz.codecs.neural import NeuralCodec, OfficialWeights, RandomWeights, unpack_strings
from nicviz.codecs.weights import find_official, official_filename
from nicviz.evaluate import evaluate
from nicviz.metrics import psnr

CLASSICAL = ["jpeg", "webp", "avif", "jpeg2000", "jpegxl", "heif"]


def test_registry_lists_classical_and_neural():
    names = list_codecs()
    for n in CLASSICAL + ["cheng2020-anchor", "cheng2020-attn", "bmshj2018-factorized", "mbt2018",
                          "mbt2018-mean", "bmshj2018-hyperprior", "cheng2020-anchor-estimated"]:
        assert n in names
    with pytest.raises(CodecError, match="unknown codec"):
        get_codec("jpeg-9000")


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_roundtrip_rate_and_quality_order(name, chelsea):
    codec = get_codec(name)
    assert codec.available, codec.availability()[1]
    lo, hi = codec.scale.default[1], codec.scale.default[-2]
    small, big = codec.encode(chelsea, lo), codec.encode(chelsea, hi)
    rec_small, rec_big = codec.decode(small), codec.decode(big)
    assert rec_small.shape == chelsea.shape and rec_small.dtype == np.uint8
    assert len(small) < len(big)
    assert psnr(chelsea, rec_small) < psnr(chelsea, rec_big)
    row = evaluate(chelsea, name, hi, ["psnr"]).row
    assert row["bytes"] == len(big)
    assert row["bpp"] == pytest.approx(8 * len(big) / (chelsea.shape[0] * chelsea.shape[1]))


def test_quality_out_of_range_and_bad_bitstream(chelsea):
    jpeg = get_codec("jpeg")
    with pytest.raises(CodecError, match="quality 101 outside 1..100"):
        jpeg.encode(chelsea, 101)
    with pytest.raises(CodecError, match="cannot decode"):
        jpeg.decode(b"\xff\xd8garbage")


@pytest.fixture(scope="module")
def random_codec() -> NeuralCodec:
    return NeuralCodec("test-random", "bmshj2018-factorized", RandomWeights("bmshj2018-factorized", seed=0), (1, 2))


@pytest.mark.parametrize("shape", [(64, 64), (33, 65), (17, 9), (100, 130)])
def test_neural_roundtrip_real_bitstream(random_codec, shape):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ev = evaluate(rgb, random_codec, 1, ["psnr", "mse"])
    assert ev.reconstruction.shape == rgb.shape and ev.reconstruction.dtype == np.uint8
    assert ev.bitstream is not None and ev.row["bytes"] == len(ev.bitstream)
    assert ev.row["bpp"] == pytest.approx(8 * len(ev.bitstream) / (shape[0] * shape[1]))
    stream = unpack_strings(ev.bitstream)
    assert (stream.quality, stream.height, stream.width) == (1, *shape) and len(stream.strings) == 1
    # decoding the same bytes again gives the same image: it is a real bitstream
    assert np.array_equal(random_codec.decode(ev.bitstream), ev.reconstruction)


def test_neural_estimated_mode_labelled(random_codec, astronaut):
    est = NeuralCodec("test-random-estimated", "bmshj2018-factorized",
                      RandomWeights("bmshj2018-factorized", seed=0), (1,), estimated=True)
    row = evaluate(astronaut[:128, :128], est, 1, ["psnr"]).row
    real = evaluate(astronaut[:128, :128], random_codec, 1, ["psnr"]).row
    assert row["rate_mode"] == "estimated" and real["rate_mode"] == "bitstream"
    assert row["bpp"] > 0
    with pytest.raises(CodecError, match="no bitstream"):
        est.encode(astronaut, 1)


def test_official_weights_missing_says_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("NICVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    codec = NeuralCodec("cheng2020-anchor", "cheng2020-anchor", OfficialWeights("cheng2020-anchor"), (1, 2, 3))
    ok, why = codec.availability()
    assert not ok
    assert "cheng2020-anchor-1-dad2ebff.pth.tar" in why and "https://compressai.s3.amazonaws.com" in why
    with pytest.raises(CodecUnavailable):
        codec.encode(np.zeros((64, 64, 3), np.uint8), 1)


def test_the_copy_of_compressais_checkpoint_addresses_matches_compressai():
    """nicviz reads CompressAI's download addresses from its own copy (listing codecs must
    not import CompressAI); the copy equals the installed CompressAI's table."""
    import json

    from nicviz.codecs.weights import MODEL_URLS_FILE, import_compressai

    import_compressai()
    from compressai.zoo.image import model_urls

    ours = json.loads(MODEL_URLS_FILE.read_text())["model_urls"]
    theirs = {a: {m: {str(q): u for q, u in qs.items()} for m, qs in ms.items()} for a, ms in model_urls.items()}
    assert ours == theirs and sum(len(q) for m in ours.values() for q in m.values()) > 50


def test_listing_codecs_does_not_import_compressai():
    import os
    import subprocess
    import sys

    code = ("import sys\n"
            "from nicviz.codecs import get_codec, list_codecs\n"
            "ok = {n: get_codec(n).availability() for n in list_codecs()}\n"
            "assert ok['cheng2020-anchor-mini'][0] and not ok['cheng2020-anchor'][0], ok\n"
            "assert 'dad2ebff' in ok['cheng2020-anchor'][1]\n"
            "print('compressai' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NICVIZ_WEIGHTS_DIR": "/nonexistent",
                              "TORCH_HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_official_weights_found_in_weights_dir(tmp_path, monkeypatch):
    """A checkpoint written under the official name is found, loaded safely and codes."""
    arch = "bmshj2018-factorized"
    monkeypatch.setenv("NICVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    model = RandomWeights(arch, seed=3).build(2)
    name = official_filename(arch, 2)
    # official checkpoints were saved from DataParallel: every key starts with "module.", a
    # legacy name compressai.zoo.load_pretrained (which OfficialWeights runs) renames
    state = {"module." + k: v for k, v in model.state_dict().items()}
    from compressai.zoo.pretrained import load_pretrained

    assert not set(state) & set(model.state_dict())
    assert set(load_pretrained(state)) == set(model.state_dict())  # every legacy name is one CompressAI renames
    torch.save(state, tmp_path / name)
    assert find_official(arch, 2) == tmp_path / name
    codec = NeuralCodec(arch, arch, OfficialWeights(arch), (1, 2))
    assert codec.availability() == (True, "") and codec.available_qualities() == [2]
    rgb = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    ev = evaluate(rgb, codec, 2, ["psnr"])
    assert ev.reconstruction.shape == rgb.shape
    # the loaded weights are the ones written
    loaded = codec.model(2)
    ref = model.g_a[0].weight.detach()
    assert torch.equal(loaded.g_a[0].weight.detach(), ref)


def test_checkpoint_with_code_is_refused(tmp_path, monkeypatch):
    """weights_only=True: a pickle that runs code is not loaded."""
    import pickle

    arch = "bmshj2018-factorized"
    monkeypatch.setenv("NICVIZ_WEIGHTS_DIR", str(tmp_path))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / official_filename(arch, 1)).write_bytes(pickle.dumps({"x": Evil()}))
    codec = NeuralCodec(arch, arch, OfficialWeights(arch), (1,))
    with pytest.raises(CodecUnavailable, match="cannot load checkpoint"):
        codec.model(1)


def _shipped_minis() -> list[tuple[str, int]]:
    """(codec, quality) of every shipped fixed-rate mini file."""
    from nicviz.codecs.neural import MINI_MODELS
    from nicviz.paths import MODELS_DIR

    out = []
    for name in MINI_MODELS:
        for q in range(1, 7):
            if (MODELS_DIR / f"{name}-q{q}.pt").is_file():
                out.append((name, q))
    return out


def _variable_rate_minis() -> list[str]:
    """The minis shipped as one variable-rate model (``<codec>.pt``)."""
    from nicviz.codecs.neural import MINI_MODELS
    from nicviz.paths import MODELS_DIR

    return [name for name in MINI_MODELS if (MODELS_DIR / f"{name}.pt").is_file()]


def _meta(name: str, quality: int | None = None) -> dict:
    import json

    from nicviz.paths import MODELS_DIR

    return json.loads((MODELS_DIR / (f"{name}-q{quality}.json" if quality else f"{name}.json")).read_text())


def test_shipped_models_are_small_and_labelled():
    from nicviz.paths import MODELS_DIR

    fixed = sum((MODELS_DIR / f"{name}-q{q}.pt").stat().st_size for name, q in _shipped_minis())
    variable = sum((MODELS_DIR / f"{name}.pt").stat().st_size for name in _variable_rate_minis())
    assert fixed + variable < 80e6  # all shipped compression models together
    assert variable < 40e6  # issue 25: both variable-rate minis together
    for name, q in _shipped_minis():
        meta = _meta(name, q)
        assert meta["quality"] == q and "not CompressAI" in meta["trained_by"]
        assert {"architecture", "N", "lambda", "steps", "training_data", "seed", "code_version"} <= set(meta)
        assert "trained by nicviz" in get_codec(name).description
    for name in _variable_rate_minis():
        meta = _meta(name)
        assert "Cui" in meta["variable_rate"] and "not CompressAI" in meta["trained_by"]
        assert {"architecture", "N", "qualities", "steps", "training_data", "seed", "code_version"} <= set(meta)
        codec = get_codec(name)
        assert codec.scale.continuous and [codec.scale.low, codec.scale.high] == meta["qualities"]


def test_shipped_models_cover_q1_to_q4_and_rise_in_rate_and_quality():
    from nicviz.codecs.neural import MINI_MODELS

    shipped, variable = _shipped_minis(), _variable_rate_minis()
    for name in MINI_MODELS:
        if name in variable:  # issue 25: at least 0.15-0.70 bpp on Kodak, monotone
            figures = _meta(name).get("kodak")
            if not figures:
                pytest.skip(f"{name}: Kodak figures not recorded")
            kodak = [figures[k] for k in sorted(figures, key=float)]
            bpp = [k["bpp"] for k in kodak]
            assert bpp[0] <= 0.15 and bpp[-1] >= 0.70, (name, bpp)
        else:
            qs = [q for n, q in shipped if n == name]
            assert {1, 2, 3, 4} <= set(qs), f"{name}: shipped qualities {qs}"
            kodak = [_meta(name, q).get("kodak") for q in sorted(qs)]
            if any(k is None for k in kodak):
                pytest.skip(f"{name}: Kodak figures not recorded")
        bpp, psnr = [k["bpp"] for k in kodak], [k["psnr"] for k in kodak]
        assert all(k["images"] == 24 for k in kodak)
        assert bpp == sorted(bpp) and len(set(bpp)) == len(bpp), (name, bpp)
        assert psnr == sorted(psnr) and len(set(psnr)) == len(psnr), (name, psnr)


def _kodim01_cases() -> list:
    cases = [(name, q, _meta(name, q)) for name, q in _shipped_minis()]
    for name in _variable_rate_minis():
        figures = _meta(name).get("kodak") or {}
        cases += [(name, float(q) if "." in q else int(q), f) for q, f in figures.items() if q in ("0", "4", "8")]
    return [pytest.param(n, q, m, id=f"{n}-q{q}") for n, q, m in cases]


@pytest.mark.parametrize("name,quality,meta", _kodim01_cases() or [pytest.param("none", 0, {}, marks=pytest.mark.skip(
    reason="no nicviz-trained model is shipped"))])
def test_shipped_model_reproduces_kodim01(name, quality, meta, kodak_dir):
    from nicviz.images import load_image
    from nicviz.paths import MODELS_DIR

    if "kodim01" not in meta:
        pytest.skip(f"{name} q{quality}: no recorded Kodak figures")
    for f in MODELS_DIR.glob(f"{name}*.pt"):
        torch.load(f, weights_only=True)  # safe load works
    # the encoder's own reconstruction: the wavefront decoder reproduces it bit for bit (test_wavefront)
    row = evaluate(load_image(kodak_dir / "kodim01.png"), name, quality, ["psnr"], decode=False).row
    assert row["bpp"] == pytest.approx(meta["kodim01"]["bpp"], rel=0.01)
    assert row["psnr"] == pytest.approx(meta["kodim01"]["psnr"], rel=0.01)


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif", "jpeg2000"])
def test_bitstream_suffix_names_the_format_pillow_reads(name, tmp_path):
    from PIL import Image

    c = get_codec(name)
    if not c.available:
        pytest.skip(c.availability()[1])
    rgb = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    path = tmp_path / f"x{c.suffix}"
    path.write_bytes(c.encode(rgb, c.scale.default[0]))
    with Image.open(path) as im:  # a download opens in an image viewer under its own name
        assert im.size == (48, 32)
        assert Image.registered_extensions()[c.suffix] == im.format


def test_zoom_marker_outlines_the_zoomed_region():
    from nicviz.plots import zoom_crop, zoom_marker, zoom_region

    rgb = np.zeros((100, 200, 3), np.uint8)
    x0, y0, w, h = zoom_region(rgb.shape, 0.25, 0.5, 4)
    assert (x0, y0, w, h) == (25, 38, 50, 25)
    assert zoom_crop(rgb, 0.25, 0.5, 4, 100).shape == (50, 100, 3)
    marked = zoom_marker(rgb, 0.25, 0.5, 4, out_w=200)
    assert marked.shape == rgb.shape
    assert marked[y0 + h // 2, x0].any() and marked[y0 + h // 2, x0 + w - 1].any()  # the frame's sides
    assert not marked[y0 + h // 2, x0 + w // 2].any()  # the inside is left as it is
    assert not marked[5, 150].any()


def test_comparison_slider_embeds_each_picture_as_it_is_and_reuses_the_original():
    import base64
    import io
    import re

    from PIL import Image

    from nicviz import plots

    rng = np.random.default_rng(3)
    left = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    right = rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)
    html, _ = plots.comparison_html(left, right, "original", "compressed", width=400)
    urls = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    decoded = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("RGB")) for u in urls]
    assert np.array_equal(decoded[0], right) and np.array_equal(decoded[1], left)
    assert plots._data_url(left.copy()) == plots._data_url(left)  # by content: the cached original
    changed = left.copy()
    changed[0, 0, 0] ^= 1
    assert plots._data_url(changed) != plots._data_url(left)  # one changed value is a new picture
