"""NIC training: loss goes down on tiny data, resume continues exactly."""

from __future__ import annotations

import pytest
import torch

from nicviz.datasets import write_builtin_samples
from nicviz.train import build_parser, export_model, lr_at, train


def _args(tmp_path, ckpt, steps, **kw):
    folder = write_builtin_samples(tmp_path / "imgs", ("chelsea", "coffee")).root
    argv = ["run", "--N", "16", "--patch", "64", "--batch", "4", "--steps", str(steps), "--lr", "1e-3",
            "--warmup", "2", "--data", str(folder), "--ckpt", str(ckpt), "--log-every", "1", "--threads", "1"]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return build_parser().parse_args(argv)


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
