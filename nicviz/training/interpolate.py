"""Weight-space ensembling of a fine-tuned classifier with the model it started from (WiSE-FT).

``python -m nicviz.training.interpolate --zero nicviz/models/isic-effnet-lite0.pt
--finetuned FT.pt --out nicviz/models/isic-effnet-lite0-robust.pt``

Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022: the weights
``(1 - alpha) * theta_zero + alpha * theta_finetuned`` keep most of what fine-tuning gained
and most of what the starting model knew, and do better than either under distribution
shift. Here ``theta_zero`` is the standard ISIC classifier and the fine-tuning is the
compression training of :mod:`nicviz.training.classifier` (every floating tensor is
interpolated, batch-norm statistics included).

``alpha`` is chosen on the held-out split only (never on ``isic/test``): for each
candidate, accuracy on the held-out originals and on held-out images compressed by the
codecs the fine-tuned model was trained on (the middle of each codec's bank qualities, so a
codec left out of training stays unseen). The rule (:func:`choose_alpha`): the highest mean of original
accuracy and mean compressed accuracy among the alphas whose original accuracy is within
``--tolerance`` (2 points, the target for a compression-trained model) of the starting
model's. A rule that picks alpha 0 (the starting model itself) is refused: no mixture
keeps the originals within the tolerance, so there is nothing to ship.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from nicviz.errors import NicvizError

__all__ = ["interpolate_state", "choose_alpha", "held_out_conditions", "main"]


def interpolate_state(zero: dict, finetuned: dict, alpha: float) -> dict:
    """``(1 - alpha) * zero + alpha * finetuned`` for floating tensors (float32); others from
    ``finetuned``. The two state dicts must have the same keys and shapes."""
    if not 0.0 <= alpha <= 1.0:
        raise NicvizError(f"alpha {alpha} is outside 0..1")
    if zero.keys() != finetuned.keys():
        raise NicvizError("the two classifiers have different layers: not the same architecture")
    out = {}
    for k, b in finetuned.items():
        a = zero[k]
        if a.shape != b.shape:
            raise NicvizError(f"layer {k}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        out[k] = (a.float() * (1 - alpha) + b.float() * alpha) if b.is_floating_point() else b.clone()
    return out


def choose_alpha(table: dict[float, dict[str, float]], tolerance: float = 0.01) -> float:
    """The alpha of ``table`` ({alpha: {"original": acc, "compressed": mean acc}}, alpha 0 the
    starting model) with the best ``(original + compressed) / 2`` among those whose original
    accuracy is at least the starting model's minus ``tolerance``; ties go to the smaller alpha."""
    if 0.0 not in table:
        raise NicvizError("the table needs alpha 0 (the starting model) as the reference")
    floor = table[0.0]["original"] - tolerance - 1e-12
    ok = [a for a in sorted(table) if table[a]["original"] >= floor]
    return max(ok, key=lambda a: ((table[a]["original"] + table[a]["compressed"]) / 2, -a))


def held_out_conditions(images: list[np.ndarray], codecs: list[str], qualities: dict[str, tuple[float, ...]],
                        log=print) -> dict[str, np.ndarray]:
    """The held-out images as they are (``original``) and through each codec at each quality
    (``<codec>-q<quality>``), reconstructed as the bank does (neural: bit-exact without rANS)."""
    from nicviz.codecs import get_codec
    from nicviz.codecs.neural import NeuralCodec
    from nicviz.training.bank import _classical, _entry, _neural

    out = {"original": np.stack(images)}
    for codec in codecs:
        fn = _neural if isinstance(get_codec(codec), NeuralCodec) else _classical
        for q in qualities[codec]:
            out[_entry(codec, q)], bpp = fn(images, codec, q)
            log(f"held-out {_entry(codec, q)}: {bpp:.3f} bpp")
    return out


def _middle(qualities: tuple[float, ...], k: int) -> tuple[float, ...]:
    """``k`` qualities from the middle of a sorted list (the rates where losses begin)."""
    qs = sorted(qualities)
    start = max(0, (len(qs) - k) // 2)
    return tuple(qs[start:start + k])


def _resize(xs: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(x).resize((size, size), Image.Resampling.BILINEAR)) for x in xs])


def _load_state(path: str) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a file that is not a state dict
        raise NicvizError(f"{path}: not a classifier state dict ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict):
        raise NicvizError(f"{path}: not a classifier state dict")
    return state


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicviz.images import load_image
    from nicviz.paths import atomic_write
    from nicviz.tasks.classify.models import build_effnet_lite0
    from nicviz.training.bank import BANK_QUALITIES
    from nicviz.training.classifier import evaluate_classifier
    from nicviz.training.isic import ISIC_CLASSES, clean_train, holdout_split, labelled_folder

    p = argparse.ArgumentParser(prog="python -m nicviz.training.interpolate", description=__doc__.splitlines()[0])
    p.add_argument("--zero", required=True, help="the model fine-tuning started from (.pt)")
    p.add_argument("--finetuned", required=True, help="the fine-tuned model (.pt, its .json beside it)")
    p.add_argument("--out", required=True, help="the interpolated model (.pt; a .json is written beside it)")
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1",
                   help="candidate weights of the fine-tuned model, comma-separated")
    p.add_argument("--alpha", type=float, help="use this alpha instead of choosing one")
    p.add_argument("--tolerance", type=float, default=2.0,
                   help="accuracy points of the held-out originals given up at most (2: the robust model's target)")
    p.add_argument("--qualities-per-codec", type=int, default=1,
                   help="held-out conditions per codec: that many of the bank's middle qualities")
    p.add_argument("--isic", help="ISIC 9-class root (default <data root>/isic)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        zero, ft = _load_state(args.zero), _load_state(args.finetuned)
        meta_path = Path(args.finetuned).with_suffix(".json")
        if not meta_path.is_file():
            raise NicvizError(f"{meta_path}: the fine-tuned model's description is missing")
        meta = json.loads(meta_path.read_text())
        alphas = sorted({0.0, 1.0} | {float(a) for a in args.alphas.split(",") if a.strip()})
        if args.alpha is not None:
            alphas = sorted({0.0, args.alpha})
        interpolate_state(zero, ft, 0.5)  # same architecture, before any slow step
        if args.isic is None:
            from nicviz.paths import data_root

            root = data_root()
            if root is None:
                raise NicvizError("no data folder; pass --isic")
            args.isic = str(root / "isic")
        isic = Path(args.isic)
        if not (isic / "train").is_dir():
            raise NicvizError(f"{isic}: no ISIC 9-class folder here (expected train/<class>/ images)")
        seed, size = int(meta.get("seed", 0)), int(meta.get("input_size", 192))
        _, held = holdout_split(clean_train(isic)[0], 0.15, seed)
        test = labelled_folder(isic / "test")
        codecs = meta.get("compression_training", {}).get("codecs", [])
        quals = {c: _middle(BANK_QUALITIES[c], args.qualities_per_codec) for c in codecs}
        images = [load_image(it.path) for it in held]
        yh = np.array([ISIC_CLASSES.index(it.label) for it in held])
        conds = {k: _resize(v, size) for k, v in held_out_conditions(
            images, codecs, quals, log=lambda s: print(s, file=sys.stderr, flush=True)).items()}
        model = build_effnet_lite0(len(ISIC_CLASSES))
        table: dict[float, dict] = {}
        for a in alphas:
            model.load_state_dict(interpolate_state(zero, ft, a))
            acc = {k: evaluate_classifier(model, x, yh)["accuracy"] for k, x in conds.items()}
            comp = [v for k, v in acc.items() if k != "original"]
            table[a] = {"original": acc["original"], "compressed": float(np.mean(comp)) if comp else acc["original"],
                        "by_condition": acc}
            print(f"alpha {a:.2f}: held-out originals {acc['original']:.3f}, compressed "
                  f"{table[a]['compressed']:.3f}", file=sys.stderr, flush=True)
        alpha = args.alpha if args.alpha is not None else choose_alpha(table, args.tolerance / 100)
        if alpha == 0.0:
            raise NicvizError(f"every mixture with the fine-tuned model gives up more than {args.tolerance:g} "
                              "point(s) on the held-out originals; nothing written")
        state = interpolate_state(zero, ft, alpha)
        model.load_state_dict(state)
        xt = _resize(np.stack([load_image(it.path) for it in test]), size)
        yt = np.array([ISIC_CLASSES.index(it.label) for it in test])
        scores = {"held_out": evaluate_classifier(model, conds["original"], yh),
                  "isic_test": evaluate_classifier(model, xt, yt)}
    except NicvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: torch.save({k: v.half() if v.is_floating_point() else v
                                              for k, v in state.items()}, tmp))
    meta = dict(meta)
    meta["fine_tuned_scores"] = meta.pop("scores", None)
    meta["scores"] = scores
    meta["weight_interpolation"] = {
        "method": "WiSE-FT (Wortsman et al., CVPR 2022): (1 - alpha) * start + alpha * fine-tuned",
        "start": Path(args.zero).name, "alpha": alpha,
        "chosen_by": ("given" if args.alpha is not None else
                      f"held-out split only: best (originals + mean compressed) / 2 with originals within "
                      f"{args.tolerance:g} point(s) of alpha 0"),
        "held_out_conditions": sorted(conds),
        "held_out_accuracy": {f"{a:g}": {k: round(v, 4) for k, v in t["by_condition"].items()}
                              for a, t in table.items()}}
    Path(str(out).removesuffix(".pt") + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps({"alpha": alpha, **scores}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
