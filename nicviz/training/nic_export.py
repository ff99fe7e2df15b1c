"""Exporting a trained NIC checkpoint as a shipped model, slimming a checkpoint, and
recording the shipped models' Kodak results (:mod:`nicviz.training.nic`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nicviz.codecs.weights import restore_likelihood_bounds
from nicviz.training.nic_parts import (
    _half,
    _save_atomic,
    build_training_model,
    fill_quality_min,
    load_checkpoint,
)


def parse_meta(text: str) -> dict:
    """``--meta``: a JSON object of extra metadata, else a :class:`ValueError` in one line."""
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--meta is not JSON: {exc}") from None
    if not isinstance(extra, dict):
        raise ValueError("--meta must be a JSON object")
    return extra


def _code_version() -> str:
    import subprocess

    from nicviz import __version__

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        rev = ""
    return f"nicviz {__version__}" + (f" (git {rev})" if rev else "")


def shipped_weights(state: dict) -> dict:
    """The weights a checkpoint ships: its moving average of the parameters (``--ema``)
    over the live weights when it keeps one, else the live weights."""
    return {**state["model"], **state.get("ema", {})}


def export_model(ckpt: str | os.PathLike, out: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write an updated (CDF tables built), float16 state dict and a metadata JSON beside it."""
    import torch

    state = load_checkpoint(ckpt)
    args = state["args"]
    levels, q_min = int(args.get("levels", 0) or 0), int(args.get("q_min", 1))
    model = build_training_model(args["arch"], int(args["N"]), levels, q_min)
    # float16 first, then the CDF tables: the tables are built from the weights that ship
    weights = {k: _half(k, v) for k, v in fill_quality_min(model, shipped_weights(state)).items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    restore_likelihood_bounds(model)
    model.eval()
    model.update(force=True)
    sd = {k: _half(k, v) for k, v in model.state_dict().items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, out)
    info = {
        "architecture": args["arch"], "N": int(args["N"]),
        **({"variable_rate": "gain units (Cui et al., CVPR 2021)", "qualities": [q_min, q_min + levels - 1],
            "lambdas": "CompressAI's table per integer quality (quality 0: 0.0009), log-linear between"} if levels else
           {"quality": int(args["quality"]), "lambda": float(state["lmbda"])}),
        "weights": (f"exponential moving average of the parameters (decay {args.get('ema')})"
                    if "ema" in state or state.get("weights") == "ema" else "the last step's"),
        "precision": str(args.get("precision", "fp32")), "steps": int(state["step"]) + int(state.get("base_steps", 0)),
        "fine_tuned_from": state.get("base_from") or None,
        "fine_tune_steps": int(state["step"]) if state.get("base_from") else None,
        "batch": int(args["batch"]),
        "patch": int(args["patch"]), "lr": float(args["lr"]), "seed": int(args["seed"]),
        "training_data": Path(args["data"]).name,
        "trained_by": "nicviz (not CompressAI's official weights)",
        "code_version": _code_version(),
        "storage": "float16 state dict, loaded as float32",
        **(meta or {}),
    }
    Path(str(out).removesuffix(".pt") + ".json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def slim_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Keep what ``export`` needs (float16 weights, arguments, steps), drop optimizer state:
    a trained checkpoint small enough to move between machines."""

    state = load_checkpoint(ckpt)
    slim = {k: state[k] for k in ("args", "lmbda", "step", "base_steps", "base_from") if k in state}
    slim["model"] = {k: _half(k, v) for k, v in shipped_weights(state).items()}
    if "ema" in state:
        slim["weights"] = "ema"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(slim, out)
    return out


def _kodak_figures(g, results) -> dict:
    return {"images": int(g["image"].nunique()), "bpp": float(g["bpp"].mean()), "psnr": float(g["psnr"].mean()),
            "ms_ssim": float(g["ms_ssim"].mean()) if "ms_ssim" in g else None,
            "rate": "real bitstreams (model.compress)", "results": str(results)}


def _kodim01(g) -> dict:
    k1 = g[g["image"].astype(str).str.endswith("kodim01.png")]
    return {"kodim01": {"bpp": float(k1["bpp"].iloc[0]), "psnr": float(k1["psnr"].iloc[0])}} if len(k1) else {}


def record_kodak(results: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write each shipped model's measured Kodak figures (real bitstreams) into its JSON:
    mean bpp/PSNR/MS-SSIM over the 24 images and the kodim01 bpp and PSNR; for a
    variable-rate model (``<codec>.json``) those of every quality swept, under ``kodak``
    by quality."""
    from nicviz.codecs.neural import MINI_MODELS
    from nicviz.paths import MODELS_DIR
    from nicviz.results import read_results

    df = read_results(results)
    folder = Path(models_dir) if models_dir else MODELS_DIR
    written = []
    for codec in MINI_MODELS:
        rows = df[df["codec"] == codec]
        vr_file = folder / f"{codec}.json"
        if vr_file.is_file() and len(rows):
            meta = json.loads(vr_file.read_text())
            meta["kodak"] = {f"{q:g}": {**_kodak_figures(g, results), **_kodim01(g)}
                             for q, g in rows.groupby("quality")}
            vr_file.write_text(json.dumps(meta, indent=2) + "\n")
            written.append(vr_file)
            continue
        for q, g in rows.groupby("quality"):
            meta_file = folder / f"{codec}-q{int(q)}.json"
            if not meta_file.is_file():
                continue
            meta = json.loads(meta_file.read_text())
            meta["kodak"] = _kodak_figures(g, results)
            meta.update(_kodim01(g))
            meta_file.write_text(json.dumps(meta, indent=2) + "\n")
            written.append(meta_file)
    return written
