"""NIC training: loss goes down on tiny data, resume continues exactly."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest
import torch

from nicviz.datasets import write_builtin_samples
from nicviz.training.nic import build_parser, export_model, lr_at, train


def _argv(tmp_path, ckpt, steps, **kw) -> list[str]:
    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee")).root
    argv = ["run", "--N", "16", "--patch", "64", "--batch", "4", "--steps", str(steps), "--lr", "1e-3",
            "--warmup", "2", "--data", str(folder), "--ckpt", str(ckpt), "--log-every", "1", "--threads", "1"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def _args(tmp_path, ckpt, steps, **kw):
    return build_parser().parse_args(_argv(tmp_path, ckpt, steps, **kw))


def test_lr_schedule_warmup_then_decay():
    assert lr_at(0, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-4)
    assert lr_at(9, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-3)
    assert lr_at(100, 100, 1e-3, 10, 1e-5) == pytest.approx(1e-5)
    assert lr_at(50, 100, 1e-3, 10, 1e-5) < lr_at(20, 100, 1e-3, 10, 1e-5)


def test_few_steps_lower_the_loss(tmp_path):
    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 40))
    import csv

    rows = list(csv.DictReader(open(str(ckpt) + ".log.csv")))
    first = sum(float(r["loss"]) for r in rows[:5]) / 5
    last = sum(float(r["loss"]) for r in rows[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_resume_continues_from_saved_step(tmp_path):
    straight, split = tmp_path / "a.pt", tmp_path / "b.pt"
    train(_args(tmp_path, straight, 6))
    train(_args(tmp_path, split, 3))  # "interrupted" after 3 steps
    state = torch.load(split, weights_only=True)
    assert state["step"] == 3 and state["opt"]["state"]  # optimizer moments saved
    train(_args(tmp_path, split, 6))  # same command with the final step count resumes
    a = torch.load(straight, weights_only=True)
    b = torch.load(split, weights_only=True)
    assert b["step"] == 6
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-5), k
    m_a = a["opt"]["state"][0]["exp_avg"]
    m_b = b["opt"]["state"][0]["exp_avg"]
    assert torch.allclose(m_a, m_b, atol=1e-6)


def test_export_is_safe_float16_with_metadata(tmp_path):
    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 2))
    out = export_model(ckpt, tmp_path / "exp" / "model-q3.pt")
    sd = torch.load(out, weights_only=True)
    assert any(v.dtype == torch.float16 for v in sd.values())
    assert "gaussian_conditional._quantized_cdf" in sd
    import json

    meta = json.loads((tmp_path / "exp" / "model-q3.json").read_text())
    assert meta["N"] == 16 and meta["steps"] == 2 and meta["lambda"] == pytest.approx(0.0067)
    assert "not CompressAI" in meta["trained_by"]


def test_fine_tune_records_its_origin(tmp_path):
    base = tmp_path / "q3.pt"
    train(_args(tmp_path, base, 3))
    ft = tmp_path / "q2.pt"
    train(_args(tmp_path, ft, 2, quality=2, init_from=base))
    state = torch.load(ft, weights_only=True)
    assert state["base_steps"] == 3 and state["base_from"] == "q3.pt" and state["lmbda"] == pytest.approx(0.0035)
    meta_path = export_model(ft, tmp_path / "out" / "m-q2.pt").with_suffix(".json")
    import json

    meta = json.loads(meta_path.read_text())
    assert meta["steps"] == 5 and meta["fine_tune_steps"] == 2 and meta["fine_tuned_from"] == "q3.pt"


def test_soap_lowers_the_loss_and_a_resumed_run_keeps_its_preconditioner(tmp_path):
    """--optimizer soap (pytorch-optimizer's SOAP): the loss falls as with Adam, and a run
    stopped after 7 steps resumes to the same weights as one run of 12 (the eigenbasis,
    refreshed at step 10, is in the checkpoint)."""
    import csv

    pytest.importorskip("pytorch_optimizer", reason="pip package pytorch-optimizer is not installed")
    ckpt = tmp_path / "soap.pt"
    train(_args(tmp_path, ckpt, 40, optimizer="soap"))
    rows = list(csv.DictReader(open(str(ckpt) + ".log.csv")))
    first = sum(float(r["loss"]) for r in rows[:5]) / 5
    last = sum(float(r["loss"]) for r in rows[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    from nicviz.training.nic import Trainer

    straight, split = tmp_path / "a.pt", tmp_path / "b.pt"
    train(_args(tmp_path, straight, 12, optimizer="soap"))
    stopped = Trainer(_args(tmp_path, split, 12, optimizer="soap"))  # the same run, stopped after 7 steps
    c = stopped.cfg
    for _ in range(7):
        stopped.step(lr_at(stopped.step_no, 12, c["lr"], c["warmup"], c["lr"] * c["final_lr_ratio"]))
    stopped.save()
    assert "Q" in torch.load(split, weights_only=True)["opt"]["state"][0]  # the eigenbasis is saved
    train(_args(tmp_path, split, 12, optimizer="soap"))
    a, b = (torch.load(p, weights_only=True)["model"] for p in (straight, split))
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k


def test_time_budget_sets_and_keeps_the_step_count(tmp_path):
    from nicviz.training.nic import CALIBRATION

    ckpt = tmp_path / "b.pt"
    args = _args(tmp_path, ckpt, 5, time_budget=6)
    args.patch, args.batch = 64, 1
    train(args)
    state = torch.load(ckpt, weights_only=True)
    steps = state["args"]["steps"]
    # the count was set from the timed steps (not the --steps 5 given); the run finished it,
    # or (when the machine got slower after the timing) stopped at 1.1 x the budget
    assert steps > CALIBRATION[1] and CALIBRATION[1] < state["step"] <= steps
    assert state["args"]["time_budget"] == 6
    # running the same command again resumes the same schedule instead of re-timing it
    again = _args(tmp_path, ckpt, 5, time_budget=6)
    again.patch, again.batch = 64, 1
    train(again)
    state = torch.load(ckpt, weights_only=True)
    assert state["args"]["steps"] == steps and state["step"] == steps
    import csv

    rows = list(csv.DictReader(open(str(ckpt) + ".log.csv")))
    assert int(rows[-1]["step"]) == steps
    assert float(rows[-1]["lr"]) < 0.2 * float(args.lr)  # the cosine schedule reached its tail


def test_slim_checkpoint_exports_like_the_full_one(tmp_path):
    from nicviz.training.nic import slim_checkpoint

    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 2))
    slim = slim_checkpoint(ckpt, tmp_path / "slim.pt")
    small = torch.load(slim, weights_only=True)
    assert "opt" not in small and all(v.dtype != torch.float32 for k, v in small["model"].items()
                                      if not k.endswith(".bound"))  # bounds stay float32 (1e-9)
    assert slim.stat().st_size < 0.5 * ckpt.stat().st_size
    full_sd = torch.load(export_model(ckpt, tmp_path / "a" / "m-q3.pt"), weights_only=True)
    slim_sd = torch.load(export_model(slim, tmp_path / "b" / "m-q3.pt"), weights_only=True)
    assert full_sd.keys() == slim_sd.keys()
    for k, v in full_sd.items():
        assert torch.equal(v, slim_sd[k]), k


def test_divergence_stops_without_overwriting_the_checkpoint(tmp_path, monkeypatch, capsys):
    import nicviz.training.nic as nt

    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 2))
    good = torch.load(ckpt, weights_only=True)

    def nan_loss(x, x_hat, likelihoods, lmbda):
        loss, bpp, mse = real(x, x_hat, likelihoods, lmbda)
        return loss * float("nan"), bpp, mse

    real = nt.rd_loss
    monkeypatch.setattr(nt, "rd_loss", nan_loss)
    with pytest.raises(nt.TrainingDiverged, match="not finite"):
        train(_args(tmp_path, ckpt, 2 + nt.MAX_SKIPS + 2))
    after = torch.load(ckpt, weights_only=True)
    assert after["step"] == 2
    for k, v in good["model"].items():
        assert torch.equal(v, after["model"][k]), k
    # through the command line: one line, exit 2
    data = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee")).root
    rc = nt.main(["run", "--N", "16", "--patch", "64", "--batch", "2", "--steps", "12", "--data", str(data),
                  "--ckpt", str(ckpt), "--log-every", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("nicviz train: error:") and "diverged" in err[-1]


def test_one_bad_batch_is_skipped_and_training_goes_on(tmp_path, monkeypatch):
    import csv

    import nicviz.training.nic as nt

    calls = {"n": 0}
    real = nt.rd_loss

    def one_nan(x, x_hat, likelihoods, lmbda):
        loss, bpp, mse = real(x, x_hat, likelihoods, lmbda)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] == 2 else loss), bpp, mse

    monkeypatch.setattr(nt, "rd_loss", one_nan)
    ckpt = tmp_path / "m.pt"
    args = _args(tmp_path, ckpt, 4)
    train(args)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    rows = list(csv.DictReader(open(str(ckpt) + ".log.csv")))
    assert rows[-1]["skipped"] == "1"


def test_export_cli_records_extra_metadata_and_refuses_bad_json(tmp_path, capsys):
    import json

    from nicviz.training.nic import main

    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 1))
    out = tmp_path / "o" / "m-q3.pt"
    assert main(["export", str(ckpt), str(out), "--meta", '{"hardware": "test rig"}']) == 0
    assert json.loads(out.with_suffix(".json").read_text())["hardware"] == "test rig"
    assert main(["export", str(ckpt), str(out), "--meta", "{not json"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("nicviz train: error: --meta is not JSON")


@pytest.mark.parametrize("action", ["export", "slim"])
def test_bad_checkpoint_files_are_one_line_errors(tmp_path, capsys, action):
    import pickle

    from nicviz.training.nic import main

    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    wrong = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, wrong)  # loadable, but a bare state dict

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Evil()}))
    for path, words in [(junk, "not a loadable checkpoint"), (wrong, "not a nicviz training checkpoint"),
                        (evil, "not a loadable checkpoint"), (tmp_path / "none.pt", "no such checkpoint")]:
        assert main([action, str(path), str(tmp_path / "out.pt")]) == 2
        captured = capsys.readouterr()
        assert "code ran" not in captured.out
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nicviz train: error:") and words in lines[0], lines


def test_variable_rate_bf16_channels_last_run_exports_a_model_that_codes_every_quality(tmp_path, astronaut):
    """The exact combination the background runs use: gain units, bf16 autocast, channels-last."""
    import json

    from nicviz.codecs.neural import wavefront
    from nicviz.codecs.neural.gained import gained_from_state_dict

    ckpt = tmp_path / "vr.pt"
    train(_args(tmp_path, ckpt, 3, levels=3, precision="bf16"))
    args = _args(tmp_path, ckpt, 5, levels=3, precision="bf16")
    args.channels_last = True
    train(args)  # resumes at step 3
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 5 and state["model"]["log_gain"].shape == (3, 16)
    out = export_model(ckpt, tmp_path / "vr-export.pt")
    meta = json.loads((tmp_path / "vr-export.json").read_text())
    assert meta["qualities"] == [1, 3] and meta["precision"] == "bf16" and "Cui" in meta["variable_rate"]
    model = gained_from_state_dict("cheng2020-anchor", torch.load(out, weights_only=True)).float().eval()
    x = torch.from_numpy(astronaut[:64, :64].copy()).permute(2, 0, 1)[None].float() / 255
    for q in (1, 2.5, 3):
        model.set_quality(q)
        strings, shape, y_hat = wavefront.compress(model, x)
        assert torch.equal(wavefront.decompress(model, strings, shape), model.g_s(y_hat).clamp_(0, 1))


def test_gain_interpolation_is_geometric_and_rates_order():
    from nicviz.codecs.neural.gained import build_gained, lambda_for

    assert lambda_for(3) == 0.0067 and lambda_for(8) == 0.18
    assert lambda_for(2.5) == pytest.approx((0.0035 * 0.0067) ** 0.5)
    with pytest.raises(ValueError, match="outside"):
        lambda_for(8.5)
    torch.manual_seed(0)
    model = build_gained("cheng2020-anchor", 16, 3).eval()
    with torch.no_grad():
        model.log_gain.copy_(torch.log(torch.tensor([1.0, 16.0, 256.0]))[:, None].expand(3, 16))
    model.update(force=True)
    model.set_quality(2.5)
    assert torch.allclose(model._gain.flatten(), torch.full((16,), 64.0))
    with pytest.raises(ValueError, match="outside"):
        model.set_quality(3.5)
    x = torch.rand(1, 3, 128, 128)
    bits = []
    for q in (1, 1.5, 2, 2.5, 3):
        model.set_quality(q)
        with torch.no_grad():
            out = model(x)
        bits.append(float(sum(-torch.log2(v).sum() for v in out["likelihoods"].values())))
    assert bits == sorted(bits) and bits[-1] > 2 * bits[0], bits  # finer steps, more bits


def test_relevel_keeps_trained_rows_and_extends_the_ladder_linearly():
    from nicviz.codecs.neural.gained import LAMBDAS, relevel_gains

    assert LAMBDAS[0] == pytest.approx(LAMBDAS[1] ** 2 / LAMBDAS[2], rel=0.05)  # the ladder's ratio, one step down
    old = torch.tensor([[0.0, 1.0], [0.5, 3.0], [0.75, 4.0]])  # qualities 1..3
    new = relevel_gains(old, 1, 0, 4)  # qualities 0..3
    assert torch.equal(new[1:], old)
    assert torch.allclose(new[0], 2 * old[0] - old[1])  # extrapolated from the two lowest rows
    assert torch.allclose(relevel_gains(old, 1, 1, 4)[3], 2 * old[2] - old[1])  # and above the top
    assert torch.equal(relevel_gains(old, 1, 2, 2), old[1:])


def test_a_run_extends_a_variable_rate_model_to_quality_0(tmp_path, capsys):
    """``--q-min 0 --levels K+1`` from a K-level model: the trained gains stay, quality 0's
    are extrapolated, the export says 0..K, an old state dict (no ``quality_min``) loads
    as qualities from 1, and the codec codes quality 0 and 0.5 bit-exactly."""
    import json

    from nicviz.codecs.neural.gained import gained_from_state_dict

    fixed, base = tmp_path / "q3.pt", tmp_path / "base.pt"
    train(_args(tmp_path, fixed, 1, quality=3))
    train(_args(tmp_path, base, 1, levels=3, init_from=fixed))  # gains spread as sqrt(lambda)
    old = torch.load(base, weights_only=True)["model"]
    ckpt = tmp_path / "ext.pt"
    args = _args(tmp_path, ckpt, 1, levels=4, q_min=0, init_from=base, lr=1e-9)
    args.warmup = 0
    train(args)
    assert "qualities 1..3 moved to 0..3" in capsys.readouterr().err
    assert bool((old["log_gain"][0] < old["log_gain"][1]).all())
    state = torch.load(ckpt, weights_only=True)
    gains = state["model"]["log_gain"]
    assert gains.shape == (4, 16) and int(state["model"]["quality_min"]) == 0
    assert torch.allclose(gains[1:], old["log_gain"], atol=1e-5)
    assert torch.allclose(gains[0], 2 * old["log_gain"][0] - old["log_gain"][1], atol=1e-5)
    export_model(ckpt, tmp_path / "ext-export.pt")
    assert json.loads((tmp_path / "ext-export.json").read_text())["qualities"] == [0, 3]
    model = gained_from_state_dict("cheng2020-anchor", torch.load(tmp_path / "ext-export.pt", weights_only=True))
    assert (model.q_min, model.levels) == (0, 4)
    legacy = {k: v for k, v in old.items() if k != "quality_min"}
    assert gained_from_state_dict("cheng2020-anchor", legacy).q_min == 1
    assert bool((model.log_gain[0] < model.log_gain[1]).all())  # coarser steps below quality 1
    import pandas as pd

    from nicviz.training.nic_export import record_kodak

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "cheng2020-anchor-mini.json").write_text(json.dumps({"qualities": [0, 3]}))
    rows = pd.DataFrame({"codec": "cheng2020-anchor-mini", "quality": [0, 0, 2.5], "bpp": [0.1, 0.2, 0.5],
                         "psnr": [25.0, 27.0, 30.0], "image": ["kodim01.png", "kodim02.png", "kodim01.png"]})
    rows.to_csv(tmp_path / "k.csv", index=False)
    assert record_kodak(tmp_path / "k.csv", tmp_path / "models") == [tmp_path / "models" / "cheng2020-anchor-mini.json"]
    kodak = json.loads((tmp_path / "models" / "cheng2020-anchor-mini.json").read_text())["kodak"]
    assert kodak["0"]["images"] == 2 and kodak["0"]["bpp"] == pytest.approx(0.15) and kodak["2.5"]["psnr"] == 30.0
    assert kodak["0"]["kodim01"] == {"bpp": 0.1, "psnr": 25.0}
    from nicviz.codecs.neural import mini_codec

    codec = mini_codec("ext-export", "cheng2020-anchor", tmp_path)
    assert (codec.scale.low, codec.scale.high) == (0, 3)
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for q in (0, 0.5):
        data, recon = codec.encode_with_reconstruction(rgb, q)
        assert np.array_equal(codec.decode(data), recon), q


def test_export_keeps_the_likelihood_bound_and_gains_start_at_sqrt_lambda(tmp_path):
    """float16 turns CompressAI's 1e-9 likelihood bound into 0 (infinite bits for an
    unlikely symbol): exports keep the bounds in float32, loads restore a lost one."""
    from nicviz.codecs.neural.gained import build_gained, init_gains, lambda_for
    from nicviz.codecs.weights import restore_likelihood_bounds

    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 2))
    out = export_model(ckpt, tmp_path / "e.pt")
    sd = torch.load(out, weights_only=True)
    bounds = [k for k in sd if k.endswith("likelihood_lower_bound.bound")]
    assert bounds and all(float(sd[k]) == pytest.approx(1e-9) for k in bounds)
    model = build_gained("cheng2020-anchor", 16, 8)
    model.gaussian_conditional.likelihood_lower_bound.bound.zero_()
    restore_likelihood_bounds(model)
    assert float(model.gaussian_conditional.likelihood_lower_bound.bound) == pytest.approx(1e-9)
    init_gains(model, 3)
    g = model.log_gain.detach()[:, 0].exp()
    assert float(g[2]) == pytest.approx(1.0)
    assert float(g[7] / g[0]) == pytest.approx((lambda_for(8) / lambda_for(1)) ** 0.5, rel=1e-5)
    assert torch.allclose(model.log_inv_gain, -model.log_gain)


def junk_path(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    return junk


def test_weight_interpolation_and_the_choice_of_alpha():
    from nicviz.errors import NicvizError
    from nicviz.training.interpolate import choose_alpha, interpolate_state

    a = {"w": torch.zeros(3), "n": torch.tensor(1)}
    b = {"w": torch.tensor([2.0, 4.0, -2.0]), "n": torch.tensor(7)}
    assert torch.equal(interpolate_state(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_state(a, b, 1.0)["w"], b["w"])
    half = interpolate_state(a, b, 0.25)
    assert torch.allclose(half["w"], torch.tensor([0.5, 1.0, -0.5])) and int(half["n"]) == 7
    with pytest.raises(NicvizError, match="different layers"):
        interpolate_state(a, {"w": b["w"]}, 0.5)
    with pytest.raises(NicvizError, match="shapes"):
        interpolate_state(a, {"w": torch.zeros(2), "n": b["n"]}, 0.5)
    with pytest.raises(NicvizError, match="outside"):
        interpolate_state(a, b, 1.5)
    # alpha 1 gains most on compressed images but gives up 2 points of the originals: refused;
    # of the rest, 0.5 has the best mean of originals and compressed
    table = {0.0: {"original": 0.80, "compressed": 0.50}, 0.5: {"original": 0.795, "compressed": 0.70},
             0.75: {"original": 0.79, "compressed": 0.69}, 1.0: {"original": 0.78, "compressed": 0.75}}
    assert choose_alpha(table, 0.01) == 0.5
    assert choose_alpha(table, 0.03) == 1.0
    assert choose_alpha({0.0: {"original": 0.8, "compressed": 0.5}}, 0.01) == 0.0


def test_js_consistency_matches_scipy_and_twins_are_augmented_alike():
    from scipy.spatial.distance import jensenshannon

    from nicviz.training.augment import _augment, js_consistency

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 9, generator=g) * 3, torch.randn(5, 9, generator=g) * 3
    want = np.mean([jensenshannon(pa, pb) ** 2 for pa, pb in zip(a.softmax(1).numpy(), b.softmax(1).numpy(), strict=True)])
    assert float(js_consistency(a, b)) == pytest.approx(want, rel=1e-4)
    assert float(js_consistency(a, a)) == pytest.approx(0.0, abs=1e-7)
    imgs = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    out = _augment(imgs, np.random.default_rng(2), 32, imgs.copy())
    assert out.shape == (6, 3, 32, 32) and torch.equal(out[:3], out[3:])
    # without a twin the draws are the same as before twins existed
    assert torch.equal(_augment(imgs, np.random.default_rng(2), 32), out[:3])


def test_distill_kl_matches_scipy():
    from scipy.stats import entropy

    from nicviz.training.augment import distill_kl

    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(4, 9, generator=g) * 2, torch.randn(4, 9, generator=g) * 2
    want = np.mean([entropy(pt, ps) for pt, ps in zip(t.softmax(1).numpy(), s.softmax(1).numpy(), strict=True)])
    assert float(distill_kl(s, t)) == pytest.approx(want, rel=1e-4)
    assert float(distill_kl(t, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(distill_kl(s, t)) != pytest.approx(float(distill_kl(t, s)), rel=1e-3)  # direction matters


def test_classifier_training_runs_resumes_and_refuses_a_stale_checkpoint(tmp_path, capsys):
    """A tiny ISIC-shaped folder (9 classes, generated images, a duplicates.csv): one
    epoch trains, writes the model and its metadata; a second run with the same settings
    resumes instead of retraining; other settings never resume that checkpoint silently."""
    import json

    from PIL import Image

    from nicviz.training.classifier import main
    from nicviz.training.isic import ISIC_CLASSES

    root = tmp_path / "isic"
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 1)):
        for k, cls in enumerate(ISIC_CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                px = np.clip(rng.normal(25 * k, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / split / cls / f"{split}{k}_{i}.png")
    (root / "duplicates.csv").write_text("kind,files\nsame_file_name_in_several_folders,"
                                         "train/nevus/train4_0.png | test/nevus/test4_0.png\n")
    out = tmp_path / "m" / "clf.pt"
    argv = ["--isic", str(root), "--epochs", "1", "--batch", "8", "--size", "48", "--out", str(out)]
    assert main(argv) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["train_images"] + meta["held_out_images"] == 9 * 8 - 1  # the duplicate of a test image is dropped
    assert set(meta["scores"]) == {"held_out", "isic_test"} and out.with_suffix(".ckpt").is_file()
    capsys.readouterr()
    assert main(argv) == 0  # same settings: resumes after epoch 1, trains nothing more
    assert "resumed after epoch 1" in capsys.readouterr().err
    assert main([*argv[:-2], "--lr", "1e-3", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    # compression training: a bank of JPEG versions of the training images, every image swapped
    from nicviz.images import load_image
    from nicviz.training.bank import build_bank, training_items

    items = training_items(root)
    bank = build_bank([load_image(i.path) for i in items], [i.key for i in items], tmp_path / "bank", "isic",
                      {"jpeg": (10, 50)}, log=lambda s: None)
    robust = tmp_path / "m" / "robust.pt"
    rargv = ["--isic", str(root), "--epochs", "1", "--batch", "8", "--size", "48", "--init-from", str(out),
             "--compress-prob", "1", "--bank", str(bank), "--out", str(robust)]
    assert main(rargv) == 0
    rmeta = json.loads(robust.with_suffix(".json").read_text())
    ct = rmeta["compression_training"]
    assert ct["codecs"] == ["jpeg"] and sum(ct["sampled_this_run"].values()) == meta["train_images"]
    assert rmeta["initialisation"] == "fine-tuned from clf.pt"
    # consistency training: every image beside a compressed twin, CE on originals + JS
    cons = tmp_path / "m" / "cons.pt"
    cargv = [*rargv[:-6], "--consistency", "12", "--bank", str(bank), "--out", str(cons)]
    assert main(cargv) == 0
    cmeta = json.loads(cons.with_suffix(".json").read_text())["compression_training"]
    assert "Jensen-Shannon" in cmeta["loss"] and sum(cmeta["sampled_this_run"].values()) == meta["train_images"]
    capsys.readouterr()
    assert main([*cargv, "--compress-prob", "0.5", "--ckpt", str(tmp_path / "c2.ckpt")]) == 2
    assert "replaces --compress-prob" in capsys.readouterr().err
    # distillation from the starting model, beside either way of meeting compressed images
    for mode, flag in (("dc", cargv[-6:-4]), ("dp", ["--compress-prob", "0.5"])):
        dist = tmp_path / "m" / f"{mode}.pt"
        assert main([*rargv[:-6], *flag, "--distill", "1", "--bank", str(bank), "--out", str(dist)]) == 0
        dmeta = json.loads(dist.with_suffix(".json").read_text())
        assert dmeta["distillation"]["teacher"] == "clf.pt" and dmeta["distillation"]["weight"] == 1
        assert not torch.equal(torch.load(dist, weights_only=True)["_fc.weight"],
                               torch.load(out, weights_only=True)["_fc.weight"])
    capsys.readouterr()
    assert main([*argv[:-2], "--distill", "1", "--out", str(tmp_path / "nd.pt")]) == 2
    assert "needs --init-from" in capsys.readouterr().err
    # WiSE-FT: the shipped robust model is the standard one and the fine-tuned one mixed in
    # weight space, alpha chosen on held-out originals and held-out JPEG (the bank's codecs)
    from nicviz.training.interpolate import interpolate_state
    from nicviz.training.interpolate import main as wise

    mixed = tmp_path / "m" / "wise.pt"
    base = ["--zero", str(out), "--finetuned", str(robust), "--out", str(mixed), "--isic", str(root), "--threads", "1"]
    assert wise([*base, "--alpha", "0.5"]) == 0
    wmeta = json.loads(mixed.with_suffix(".json").read_text())
    wi = wmeta["weight_interpolation"]
    assert wi["held_out_conditions"] == ["jpeg-q20", "original"] and set(wi["held_out_accuracy"]) == {"0", "0.5"}
    assert wi["alpha"] == 0.5 and wi["start"] == "clf.pt" and wi["chosen_by"] == "given"
    assert wmeta["compression_training"] == rmeta["compression_training"]  # what the fine-tuning was stays
    assert wmeta["fine_tuned_scores"] == rmeta["scores"] and set(wmeta["scores"]) == {"held_out", "isic_test"}
    want = interpolate_state(torch.load(out, weights_only=True), torch.load(robust, weights_only=True), wi["alpha"])
    got = torch.load(mixed, weights_only=True)
    assert all(torch.equal(got[k], v.half() if v.is_floating_point() else v) for k, v in want.items())
    capsys.readouterr()
    assert wise([*base, "--alpha", "0", "--out", str(tmp_path / "none.pt")]) == 2  # the standard model again
    assert "nothing written" in capsys.readouterr().err and not (tmp_path / "none.pt").exists()
    assert wise(["--zero", str(out), "--finetuned", str(junk_path(tmp_path)), "--out", str(mixed)]) == 2
    assert "not a classifier state dict" in capsys.readouterr().err
    capsys.readouterr()
    assert main([*rargv, "--codecs", "jpeg,webp", "--ckpt", str(tmp_path / "other.ckpt")]) == 2
    assert "holds no webp" in capsys.readouterr().err
    # bad input is one line: a missing or foreign --init-from, a folder that is no ISIC set
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    for bad, needle in ((["--init-from", str(tmp_path / "none.pt")], "no such file"),
                        (["--init-from", str(junk)], "not an EfficientNet-Lite0")):
        assert main([*argv[:-2], *bad, "--out", str(tmp_path / "x.pt"), "--ckpt", str(tmp_path / "x.ckpt")]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
    assert main(["--isic", str(tmp_path / "nothing")]) == 2
    assert "no ISIC 9-class folder" in capsys.readouterr().err


def test_the_committed_variable_rate_checkpoint_exports_and_codes(tmp_path):
    """results/training/V-cheng2020-anchor-cpu.pt (the CPU run, slim) is not lost work: it
    exports like any checkpoint and codes every quality of its range."""
    from pathlib import Path

    from nicviz.codecs.neural import mini_codec

    slim = Path(__file__).resolve().parent.parent / "results" / "training" / "V-cheng2020-anchor-cpu.pt"
    state = torch.load(slim, weights_only=True)
    args = state["args"]
    lo, hi = args.get("q_min", 1), args.get("q_min", 1) + args["levels"] - 1
    assert (lo, hi) in ((1, 8), (0, 8)) and state.get("base_steps", 0) + state["step"] >= 9000  # it accumulates
    export_model(slim, tmp_path / "vr-test.pt")
    codec = mini_codec("vr-test", "cheng2020-anchor", tmp_path)
    assert codec.scale.continuous and (codec.scale.low, codec.scale.high) == (lo, hi)
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    sizes = [len(codec.encode(rgb, q)) for q in (lo, 4.5, 8)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_weight_average_follows_its_recursion_persists_and_is_what_ships(tmp_path):
    """--ema D: after a resumed step the average is D x the saved average + (1 - D) x the
    new weights; slim and export ship the average, not the last step's weights."""
    from nicviz.training.nic import slim_checkpoint

    ckpt = tmp_path / "m.pt"
    train(_args(tmp_path, ckpt, 1, ema=0.75))
    one = torch.load(ckpt, weights_only=True)
    assert one["ema_n"] == 1 and set(one["ema"]) < set(one["model"])  # parameters only, no CDF buffers
    train(_args(tmp_path, ckpt, 2, ema=0.75))
    two = torch.load(ckpt, weights_only=True)
    assert two["ema_n"] == 2
    moved = 0
    for k, e in two["ema"].items():
        assert torch.allclose(e, 0.75 * one["ema"][k] + 0.25 * two["model"][k], atol=1e-6), k
        moved += not torch.allclose(e, two["model"][k])
    assert moved > len(two["ema"]) // 2  # the average is not the live weights
    key = next(k for k in two["ema"] if k.endswith("weight") and "g_a" in k)
    shipped = torch.load(export_model(ckpt, tmp_path / "a" / "m-q3.pt"), weights_only=True)
    assert torch.equal(shipped[key], two["ema"][key].half())
    slim = torch.load(slim_checkpoint(ckpt, tmp_path / "slim.pt"), weights_only=True)
    assert slim["weights"] == "ema" and torch.equal(slim["model"][key], two["ema"][key].half())
    import json

    assert "moving average" in json.loads((tmp_path / "a" / "m-q3.json").read_text())["weights"]


def test_a_weight_average_starts_from_a_shipped_model(tmp_path):
    """--ema with --init-from an exported model (its entropy models' CDF tables filled):
    the average copies the model's buffers at their size (it crashed on the first step)."""
    base = tmp_path / "base.pt"
    train(_args(tmp_path, base, 2))
    shipped = export_model(base, tmp_path / "shipped.pt")
    ckpt = tmp_path / "ema.pt"
    train(_args(tmp_path, ckpt, 2, init_from=shipped, ema=0.9))
    assert torch.load(ckpt, weights_only=True)["ema_n"] == 2


def test_keep_optimizer_carries_the_adam_moments_into_a_new_schedule(tmp_path, capsys):
    from nicviz.training.nic import main, slim_checkpoint

    base = tmp_path / "base.pt"
    train(_args(tmp_path, base, 3))
    cold, warm = tmp_path / "cold.pt", tmp_path / "warm.pt"
    train(_args(tmp_path, cold, 2, init_from=base))
    train(build_parser().parse_args([*_argv(tmp_path, warm, 2, init_from=base), "--keep-optimizer"]))
    adam_steps = {p: int(torch.load(p, weights_only=True)["opt"]["state"][0]["step"]) for p in (cold, warm)}
    assert adam_steps == {cold: 2, warm: 5}
    slim = slim_checkpoint(base, tmp_path / "slim.pt")
    assert main([*_argv(tmp_path, tmp_path / "x.pt", 2, init_from=slim), "--keep-optimizer"]) == 2
    assert "keeps no optimizer state" in capsys.readouterr().err


def test_holdout_leaves_the_last_images_out_of_the_crops(tmp_path):
    from nicviz.training.nic_parts import CropSampler, holdout_images

    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee", "rocket")).root
    kept = CropSampler(folder, 64, 0, holdout=1)
    held = holdout_images(folder, 1)
    assert len(kept.images) == 2 and [p.name for p in held] == ["rocket.png"]
    from nicviz.images import load_image

    rocket = load_image(held[0])
    assert not any(a.shape == rocket.shape and np.array_equal(a, rocket) for a in kept.images)
    with pytest.raises(ValueError, match="has 3 images"):
        CropSampler(folder, 64, 0, holdout=3)


def test_the_recipe_comparison_runs_end_to_end_in_a_dry_run(tmp_path):
    """scripts/compare_recipes.py (issue 25), a few steps a half instead of CPU minutes:
    two variants from the committed variable-rate weights, each in two halves, coded with
    real bitstreams on the held-out image, in one table with its metadata."""
    import importlib.util
    import json
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("compare_recipes", root / "scripts" / "compare_recipes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from PIL import Image

    big = write_builtin_samples(tmp_path / "big", ("chelsea", "coffee", "rocket")).root
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted(big.glob("*.png")):  # 144 px crops: a crop of 128 fits, the held-out one codes fast
        Image.open(p).convert("RGB").crop((0, 0, 144, 144)).save(folder / p.name)
    out = tmp_path / "recipes"
    assert mod.main(["--start", str(root / "results" / "training" / "V-cheng2020-anchor-cpu.pt"), "--data",
                     str(folder), "--variants", "base,keep-adam", "--holdout", "1", "--qualities", "1,3,5,8",
                     "--dry-run-steps", "2", "--parallel", "2", "--out", str(out)]) == 0
    table = pd.read_csv(out / "recipes.csv")
    assert list(table["variant"]) == ["base", "keep-adam"] and list(table["steps"]) == [4, 4]
    assert all(len(b.split()) == 4 for b in table["bpp"]) and table["bd_rate_vs_base"].iloc[1] == \
        table["bd_rate_vs_base"].iloc[1]  # a number: both curves coded at every quality
    adam = {n: int(torch.load(out / f"{n}-2.pt", weights_only=True)["opt"]["state"][0]["step"])
            for n in ("base", "keep-adam")}
    assert adam == {"base": 2, "keep-adam": 4}  # the second half kept the first half's moments
    meta = json.loads((out / "recipes.csv.meta.json").read_text())
    assert meta["dataset"] == "imgs" and meta["seed"] == 0 and str(tmp_path) not in json.dumps(meta)
    assert mod.main(["--start", "x.pt", "--variants", "nonsense"]) == 2
    # a half resumed in a later session logs from 0 again: its segments add up
    (out / "resumed-1.pt.log.csv").write_text("step,seconds\n50,10\n100,20\n150,5\n200,15\n")
    assert mod._seconds(out, "resumed") == 35


def test_bf16_on_a_cpu_without_bf16_hardware_warns(tmp_path, capsys, monkeypatch):
    import nicviz.training.nic as nic

    monkeypatch.setattr(nic, "bf16_is_fast", lambda: False)
    nic.Trainer(_args(tmp_path, tmp_path / "w.pt", 1, precision="bf16"))
    assert "bf16 is emulated" in capsys.readouterr().err
    monkeypatch.setattr(nic, "bf16_is_fast", lambda: True)
    nic.Trainer(_args(tmp_path, tmp_path / "w2.pt", 1, precision="bf16"))
    assert "emulated" not in capsys.readouterr().err


def test_the_gpu_script_runs_its_variable_rate_phase_on_the_cpu_in_a_dry_run(tmp_path):
    """scripts/train_gpu.sh as a lent accelerator would run it (VARIABLE_RATE=1), with
    DRY_RUN=2 steps on the CPU: both architectures train side by side, from the CPU runs'
    committed variable-rate weights where they exist (else the shipped q3), for qualities
    0..8, and come back packed, slim, variable-rate."""
    import os
    import subprocess
    import sys
    import tarfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    data = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee")).root
    env = {**os.environ, "VARIABLE_RATE": "1", "DRY_RUN": "2", "DEVICE": "cpu", "BATCH": "2", "PATCH": "128",
           "PRECISION": "bf16",  # channels-last on the CPU needs bf16 (fp32 crashes torch's backward)
           "WAIT_S": "0", "OUT": str(tmp_path / "out"), "CK": str(tmp_path / "ck"), "DATA": str(data),
           "RECIPE": "--ema 0.999" + (" --optimizer soap" if find_spec("pytorch_optimizer") else ""),
           "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(root / "scripts" / "train_gpu.sh"), "60"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for arch in ("cheng2020-anchor", "cheng2020-attn"):
        with tarfile.open(tmp_path / "out" / f"V-{arch}.tgz") as tar:
            tar.extractall(tmp_path / "unpacked", filter="data")
        state = torch.load(tmp_path / "unpacked" / f"{arch}-mini.pt", weights_only=True)
        assert state["step"] == 2 and "opt" not in state, arch
        assert (state["args"]["levels"], state["args"]["q_min"], int(state["model"]["quality_min"])) == (9, 0, 0)
        cpu = root / "results" / "training" / f"V-{arch}-cpu.pt"
        assert state["base_from"] == (cpu.name if cpu.is_file() else f"{arch}-mini-q3.pt")
        assert state["args"]["ema"] == 0.999 and state["args"]["optimizer"] == ("soap" if find_spec(
            "pytorch_optimizer") else "adam")  # the chosen recipe reached both runs


def test_float32_channels_last_on_the_cpu_is_refused_in_one_line(tmp_path, capsys):
    from nicviz.training.nic import main

    assert main([*_argv(tmp_path, tmp_path / "m.pt", 2), "--channels-last"]) == 2
    err = capsys.readouterr().err
    assert "needs --precision bf16" in err and err.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()



def test_the_ship_script_regenerates_every_results_file_a_mini_appears_in():
    """scripts/ship_minis.sh (DRY_RUN: the commands only): it exports the model, removes the
    fixed-rate files it replaces, and drops and re-sweeps the codec in every shipped results
    file that holds its rows (a results file added later with mini rows fails this test
    until the script regenerates it); a bad argument is one line and exit 2."""
    import os
    import subprocess
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).resolve().parent.parent
    script = root / "scripts" / "ship_minis.sh"
    env = {**os.environ, "DRY_RUN": "1"}
    out = subprocess.run(["bash", str(script), "anchor=results/training/V-cheng2020-anchor-cpu.pt"], cwd=root,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("export results/training/V-cheng2020-anchor-cpu.pt nicviz/models/cheng2020-anchor-mini.pt" in x
               for x in lines)
    fixed = sorted((root / "nicviz" / "models").glob("cheng2020-anchor-mini-q*"))
    assert all(any(f"git rm -q nicviz/models/{f.name}" in x for x in lines) for f in fixed)
    with_rows = set()
    for f in (root / "results").rglob("*.csv"):
        if f.name.endswith(".errors.csv") or "training" in f.parts or "overfitted" in f.parts:
            continue
        head = pd.read_csv(f, nrows=0).columns
        if "codec" in head and (pd.read_csv(f, usecols=["codec"])["codec"] == "cheng2020-anchor-mini").any():
            with_rows.add(f.relative_to(root).as_posix())
    dropped = {x.split("drop_codec_rows.py ")[1].split()[0] for x in lines if "drop_codec_rows.py" in x}
    swept = {x.split("--out ")[1].split()[0] for x in lines if "--out " in x}
    checked = {x.split("--out ")[1].split()[0] for x in lines if "check_wavefront.py" in x}
    assert with_rows and with_rows <= (dropped & swept) | checked, with_rows - ((dropped & swept) | checked)
    bad = subprocess.run(["bash", str(script), "vgg=x.pt"], cwd=root, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
