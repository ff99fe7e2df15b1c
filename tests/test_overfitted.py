"""The overfitted codec: a real bitstream that decodes bit for bit to the encoder's
reconstruction at any size, one-line errors on damaged streams, a rate model that the
coder meets, and fitting that learns the picture."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nicviz.codecs import CodecError, get_codec  # noqa: E402
from nicviz.codecs.overfitted.codec import OverfittedCodec  # noqa: E402
from nicviz.codecs.overfitted.entropy import BitReader, BitWriter, golomb_bits, read_golomb, write_golomb  # noqa: E402
from nicviz.datasets import builtin_sample  # noqa: E402
from nicviz.evaluate import evaluate  # noqa: E402


def _photo(h: int, w: int) -> np.ndarray:
    """A crop (tiled where needed) of a real photograph."""
    img = builtin_sample("astronaut")
    reps = (-(-h // img.shape[0]), -(-w // img.shape[1]), 1)
    return np.ascontiguousarray(np.tile(img, reps)[:h, :w])


@pytest.fixture(scope="module")
def coded():
    codec = OverfittedCodec("overfitted", iterations=120)
    rgb = _photo(97, 161)
    data = codec.encode(rgb, 4)
    return codec, rgb, data, codec._last_recon


@pytest.mark.parametrize("size", [(5, 5), (1, 64), (97, 161), (64, 1)])
def test_decode_equals_the_encoders_reconstruction_bit_for_bit(size):
    codec = OverfittedCodec("overfitted", iterations=30)
    rgb = _photo(*size)
    data = codec.encode(rgb, 5)
    out = codec.decode(data)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out, codec._last_recon)


def test_a_2048x1536_image_round_trips():
    codec = OverfittedCodec("overfitted", iterations=2)
    rgb = _photo(1536, 2048)
    data = codec.encode(rgb, 2)
    assert np.array_equal(codec.decode(data), codec._last_recon)


def test_decoding_does_not_depend_on_the_thread_count(coded):
    codec, _, data, recon = coded
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.decode(data)
        torch.set_num_threads(2)
        two = codec.decode(data)
    finally:
        torch.set_num_threads(saved)
    assert np.array_equal(one, recon) and np.array_equal(two, recon)


def test_bpp_counts_every_byte_of_the_bitstream():
    rgb = _photo(40, 56)
    codec = OverfittedCodec("overfitted", iterations=60)
    ev = evaluate(rgb, codec, 3, ("psnr",))
    assert ev.row["bytes"] == len(ev.bitstream)
    assert ev.row["bpp"] == pytest.approx(8 * len(ev.bitstream) / (40 * 56))
    assert np.array_equal(get_codec("overfitted-fast").decode(ev.bitstream), ev.reconstruction)  # any preset decodes


def test_truncated_and_flipped_streams_are_one_line_errors(coded):
    codec, _, data, _ = coded
    rng = np.random.default_rng(0)
    for cut in sorted({0, 1, 2, 5, 17, len(data) // 2, len(data) - 5, len(data) - 1}):
        with pytest.raises(CodecError) as err:
            codec.decode(data[:cut])
        assert "\n" not in str(err.value)
    for pos in rng.choice(len(data), 20, replace=False):
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(CodecError) as err:
            codec.decode(bytes(bad))
        assert "\n" not in str(err.value)


def test_the_coder_meets_the_rate_model(coded):
    """The latent stream is within a few percent of the ARM's own Laplace bits (the
    table quantization of scale and location costs a little: with version 1's 4 location
    bins it was 11 % at this size with the 16-wide ARM, 3 % with version 2's 16)."""
    from nicviz.codecs.overfitted.codec import _exact
    from nicviz.codecs.overfitted.entropy import decode_latents, encode_latents
    from nicviz.codecs.overfitted.model import arm_exact_grid, laplace_bits, level_shapes
    from nicviz.codecs.overfitted.stream import unpack

    codec, rgb, data, _ = coded
    s = unpack(data)
    arm = _exact(s.params["arm"], s.k["arm"])
    ys = decode_latents(s.latents, level_shapes(s.height, s.width, s.config.levels), arm)
    model_bits = 0.0
    for y in ys:
        mu, log_b = arm_exact_grid(y, arm)
        model_bits += float(laplace_bits(y, mu, log_b).sum())
    coded_bits = 8 * len(encode_latents(ys, arm))
    assert s.version == 2 and coded_bits == 8 * len(s.latents)
    assert model_bits * 0.97 - 64 <= coded_bits <= model_bits * 1.06 + 64


def test_exp_golomb_codes_round_trip_and_have_the_counted_length():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.laplace(0, 40, 500).round().astype(np.int64), [0, 1, -1, 2**20, -(2**20)]])
    for order in (0, 3, 7):
        w = BitWriter()
        write_golomb(w, values, order)
        assert len(w.bits) == golomb_bits(values, order)
        assert np.array_equal(read_golomb(BitReader(w.getvalue()), len(values), order), values)


def test_fitting_learns_the_picture():
    rgb = _photo(64, 80)
    psnr = {}
    for it in (20, 120):
        ev = evaluate(rgb, OverfittedCodec("overfitted", iterations=it), 6, ("psnr",))
        psnr[it] = ev.row["psnr"]
    assert psnr[120] > psnr[20] + 3, psnr


def test_the_fit_allocator_setting_changes_no_number():
    """fit() keeps freed memory in the heap while it runs (fewer page faults): the fitted
    parameters equal those of the same fit without that setting."""
    from nicviz.codecs.overfitted import fit as fit_module

    rgb = _photo(40, 56)
    args = (rgb, 0.01, 15, None, 0, 1e-2, 0.05, 0.95, "cpu", "fp32", "softround", (0.3, 0.1), None, 50)
    plain = fit_module._fit(*args).model.state_dict()
    kept = fit_module.fit(rgb, 0.01, 15).model.state_dict()
    assert plain.keys() == kept.keys()
    for name in plain:
        assert torch.equal(plain[name], kept[name]), name


def test_the_straight_through_phase_fits_the_networks_to_the_rounded_latents_only():
    """With the recipe's ``st_latent_scale`` 0 the last phase leaves the latents where the
    soft-rounding phase left them (the same as a fit that stops there) and trains only
    the ARM and the synthesis; with 1 (the recipe before 2026-12-03) it moves them too."""
    from nicviz.codecs.overfitted.codec import RECIPE
    from nicviz.codecs.overfitted.fit import fit

    assert RECIPE["st_latent_scale"] == 0.0
    rgb = _photo(40, 56)
    soft_only = fit(rgb, 0.01, 30, noise_share=1.0).model
    frozen = fit(rgb, 0.01, 40, noise_share=0.75, st_latent_scale=0.0).model
    moved = fit(rgb, 0.01, 40, noise_share=0.75, st_latent_scale=1.0).model
    for a, b in zip(soft_only.latents, frozen.latents, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(soft_only.latents, moved.latents, strict=True))
    assert not torch.equal(soft_only.syn_w1, frozen.syn_w1) and not torch.equal(soft_only.arm_w1, frozen.arm_w1)


def test_the_presets_are_registered_with_their_effort_and_cost():
    from nicviz.cli import main

    for name in ("overfitted-fast", "overfitted", "overfitted-slow"):
        c = get_codec(name)
        assert c.family == "neural" and c.scale.continuous and c.settings()["iterations"] > 0
        assert "MAC/pixel" in c.description
    assert get_codec("overfitted-slow").iterations > get_codec("overfitted").iterations > \
        get_codec("overfitted-fast").iterations
    assert main(["codecs"]) == 0


def test_progress_reports_the_fit_and_can_cancel_it():
    from nicviz.codecs.overfitted.fit import Cancelled

    seen = []

    def progress(it, total, bpp, psnr):
        seen.append((it, total, bpp, psnr))
        return it < 40

    codec = OverfittedCodec("overfitted", iterations=200)
    with pytest.raises(Cancelled):
        evaluate(_photo(24, 32), codec, 3, ("psnr",), progress=progress)
    its = [s[0] for s in seen]
    assert its == list(range(2, 42, 2))  # every 1 % of the fit, until the callback said stop
    assert all(s[1] == 200 and s[2] > 0 and s[3] > 0 for s in seen)


def test_a_sweep_keeps_bitstreams_that_the_check_script_decodes(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from PIL import Image

    from nicviz.codecs import register_codec, unregister_codec
    from nicviz.datasets import resolve_dataset
    from nicviz.results import read_results
    from nicviz.sweep import run_sweep

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(_photo(20, 28)).save(folder / "a.png")
    out, keep = tmp_path / "r.csv", tmp_path / "streams"
    script = Path(__file__).resolve().parent.parent / "scripts" / "check_bitstreams.py"
    spec = importlib.util.spec_from_file_location("check_bitstreams", script)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    register_codec("overfitted-brief", lambda: OverfittedCodec("overfitted-brief", iterations=40))
    try:
        run_sweep(resolve_dataset(str(folder)), ["overfitted-brief"], {"overfitted-brief": [2, 5.5]}, out,
                  metrics=("psnr",), progress=False, bitstreams=keep)
        df = read_results(out)
        assert df["bit_exact"].all() and df["codec_settings"].str.contains('"iterations": 40').all()
        capsys.readouterr()
        assert check.main([str(out), "--bitstreams", str(keep)]) == 0
        assert "2 bitstreams decoded; 2 equal" in capsys.readouterr().out
        (keep / "a.png" / "overfitted-brief-q2.bin").write_bytes(b"NO" + b"\0" * 40)  # a damaged stream is reported
        assert check.main([str(out), "--bitstreams", str(keep)]) != 0
    finally:
        unregister_codec("overfitted-brief")


def test_a_sweep_makes_each_fit_its_own_unit_of_work(tmp_path):
    """Classical pairs of an image share a task; every (image, quality) of a codec that
    fits each image is a task of its own, so an interrupted sweep loses at most one fit."""
    from PIL import Image

    from nicviz.datasets import resolve_dataset
    from nicviz.sweep import plan_tasks

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(_photo(8, 8)).save(folder / name)
    ds = resolve_dataset(str(folder))
    tasks = plan_tasks(ds, ["jpeg", "overfitted"], {"jpeg": [10, 50], "overfitted": [2, 4, 6]}, ("psnr",),
                       done={(ds.name, "b.png", "overfitted", 4, "rd")})
    units = sorted((t.image, t.pairs) for t in tasks)
    assert units == sorted([("a.png", (("jpeg", 10), ("jpeg", 50))), ("a.png", (("overfitted", 2),)),
                            ("a.png", (("overfitted", 4),)), ("a.png", (("overfitted", 6),)),
                            ("b.png", (("jpeg", 10), ("jpeg", 50))), ("b.png", (("overfitted", 2),)),
                            ("b.png", (("overfitted", 6),))])


def test_a_resumed_sweep_refuses_rows_of_other_encoder_settings(tmp_path):
    """A Kodak sweep accumulates over sessions: resuming it after the codec's recipe or size
    changed would mix two encoders in one curve. It stops in one line before any fit; the
    rows already there stay as they were. Where and how it ran (device, precision,
    compiled) may differ."""
    from PIL import Image

    from nicviz.codecs import register_codec
    from nicviz.codecs.base import unregister_codec
    from nicviz.codecs.overfitted.model import Config
    from nicviz.datasets import Dataset, resolve_dataset
    from nicviz.errors import NicvizError
    from nicviz.sweep import run_sweep

    class OnAGpu(OverfittedCodec):  # rows as a lent GPU writes them (the fit itself runs here)
        def settings(self) -> dict:
            return {**super().settings(), "device": "cuda", "precision": "bf16", "compiled": True}

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(_photo(12, 12)).save(folder / name)
    ds = resolve_dataset(str(folder))
    out = tmp_path / "of.csv"

    def sweep(factory, dataset=ds):
        unregister_codec("of-test")
        register_codec("of-test", factory)
        return run_sweep(dataset, ["of-test"], {"of-test": [2]}, out, metrics=("psnr",), progress=False)

    try:
        sweep(lambda: OnAGpu("of-test", iterations=3), Dataset(ds.name, ds.root, ds.files[:1]))
        before = out.read_bytes()
        with pytest.raises(NicvizError) as err:
            sweep(lambda: OverfittedCodec("of-test", iterations=3, config=Config(arm_hidden=4)))
        assert "of.csv" in str(err.value) and "config" in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(NicvizError) as err:
            sweep(lambda: OverfittedCodec("of-test", iterations=4))
        assert "iterations" in str(err.value)
        assert out.read_bytes() == before
        assert sweep(lambda: OverfittedCodec("of-test", iterations=3)).computed == 1  # the second image only
    finally:
        unregister_codec("of-test")


def test_a_per_image_codec_sweeps_images_in_a_random_order_that_every_run_repeats(tmp_path):
    """A Kodak or ISIC sweep of the overfitted codec takes hours: stopped part way, what it
    finished is a random sample of whole images, not the first class folders."""
    from PIL import Image

    from nicviz.datasets import resolve_dataset
    from nicviz.sweep import plan_tasks

    folder = tmp_path / "lesions"
    for cls in ("a", "b", "c", "d"):
        (folder / cls).mkdir(parents=True)
        for k in range(5):
            Image.fromarray(_photo(8, 8)).save(folder / cls / f"{k}.png")
    ds = resolve_dataset(str(folder))
    qualities = {"overfitted": [2, 4], "jpeg": [10]}
    tasks = plan_tasks(ds, ["overfitted"], qualities, ("psnr",), done=set())
    images = [t.image for t in tasks]
    assert images == [t.image for t in plan_tasks(ds, ["overfitted"], qualities, ("psnr",), done=set())]
    assert all(images[i] == images[i + 1] for i in range(0, len(images), 2))  # an image's rates together
    first = images[::2][:8]  # the first 8 images of 20: all four classes (a file-order sweep has two)
    assert {name.split("/")[0] for name in first} == {"a", "b", "c", "d"}, first
    # a classical sweep keeps file order
    assert [t.image for t in plan_tasks(ds, ["jpeg"], qualities, ("psnr",), done=set())] == sorted(images[::2])


@pytest.mark.slow
def test_the_gpu_sweep_script_packs_a_sweep_that_decodes_bit_for_bit_here(tmp_path):
    """scripts/overfitted_gpu.sh as a lent GPU would run it, on the CPU (DEVICE=cpu): it
    sweeps under NICVIZ_DATA, packs rows, metadata and streams, and what it packs passes
    scripts/check_bitstreams.py (the check the CPU machine runs afterwards)."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    from PIL import Image

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "data" / "kodak").mkdir(parents=True)
    Image.fromarray(builtin_sample("chelsea")[:40, :56]).save(tmp_path / "data" / "kodak" / "chelsea.png")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "NICVIZ_DATA": str(tmp_path / "data"), "DEVICE": "cpu",
           "RESULTS": str(tmp_path / "results"), "CODEC": "overfitted-fast", "QUALITY": "4", "METRICS": "psnr",
           "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(root / "scripts" / "overfitted_gpu.sh"), "600", "1"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0 and "sweep complete" in run.stdout, run.stdout[-1500:] + run.stderr[-1500:]
    back = tmp_path / "back"
    with tarfile.open(tmp_path / "out" / "overfitted-kodak.tgz") as tar:
        tar.extractall(back, filter="data")
    assert (back / "kodak.csv.meta.json").is_file()
    check = subprocess.run([sys.executable, str(root / "scripts" / "check_bitstreams.py"), str(back / "kodak.csv"),
                            "--bitstreams", str(back / "kodak-bitstreams"), "--data", str(tmp_path / "data")],
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 bitstreams decoded; 1 equal their encoder's reconstruction bit for bit" in check.stdout, check.stdout


def test_bf16_fitting_is_refused_on_an_amx_cpu_and_allowed_on_a_gpu(monkeypatch):
    """torch 2.14.1's oneDNN bf16 matmul dies with SIGFPE on AMX for some shapes (Kodak's
    768 x 512 among them): the setting must refuse it there, not take the server down."""
    from nicviz import settings

    monkeypatch.setenv("NICVIZ_OVERFITTED_PRECISION", "bf16")
    monkeypatch.setattr(settings, "_has_amx", lambda: True)
    with pytest.raises(settings.SettingError, match="refused on this CPU"):
        settings.overfitted_precision("cpu")
    assert settings.overfitted_precision("cuda") == "bf16"
    monkeypatch.setattr(settings, "_has_amx", lambda: False)
    assert settings.overfitted_precision("cpu") == "bf16"
    monkeypatch.setenv("NICVIZ_OVERFITTED_PRECISION", "fp16")
    with pytest.raises(settings.SettingError, match="choose fp32 or bf16"):
        settings.overfitted_precision("cpu")


def test_a_compiled_fit_is_the_eager_fit_in_other_float_rounding(monkeypatch):
    """``torch.compile`` (``nicviz sweep --compile``) makes an iteration faster, not another
    fit: through both phases its reports match the eager fit's to float rounding, and the
    codec records that it compiled (a run setting: a resumed sweep may mix them)."""
    from nicviz import settings
    from nicviz.codecs.overfitted.fit import fit

    rgb = _photo(20, 28)
    eager = fit(rgb, 0.01, 8, noise_share=0.5, report_every=2, st_latent_scale=0.0).history
    compiled = fit(rgb, 0.01, 8, noise_share=0.5, report_every=2, st_latent_scale=0.0, compiled=True).history
    assert [h[0] for h in compiled] == [h[0] for h in eager] == [2, 4, 6, 8]
    assert np.allclose(np.array(compiled)[:, 1:], np.array(eager)[:, 1:], rtol=1e-3), (eager, compiled)
    assert OverfittedCodec().settings()["compiled"] is False
    monkeypatch.setenv("NICVIZ_OVERFITTED_COMPILE", "1")
    assert OverfittedCodec().settings()["compiled"] is True
    monkeypatch.setenv("NICVIZ_OVERFITTED_COMPILE", "yes")
    with pytest.raises(settings.SettingError, match="choose 0 or 1"):
        settings.overfitted_compile()
