"""A bank of compressed training images for compression-aware classifier training.

``python -m nicviz.training.bank [--isic DIR] [--bank DIR] [--codecs jpeg,webp,...]``

Every training image of the classifier's split (cleaned ``isic/train`` minus the held-out
15 %, see :mod:`nicviz.training.isic`; never the held-out part, never ``isic/test``) is
compressed once per (codec, quality) of :data:`BANK_QUALITIES` at its own resolution, and
the reconstructions are stored as one ``<codec>-q<quality>.npy`` array each (uint8,
N x H x W x 3, image order in ``index.json``). Classical codecs write real bitstreams;
neural codecs run the wavefront encoder's quantisation without its entropy coder, which
gives exactly the bitstream's reconstruction (tested) at half the time; their mean rate
is measured on real bitstreams of the first 32 images.

Building is resumable: each array is written atomically when complete, and a rerun
computes only the missing ones. The bank records the neural weights' file sizes and
dates, so a bank built with other minis is refused (rebuild it after retraining them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from nicviz.errors import NicvizError
from nicviz.paths import atomic_write, atomic_write_text

__all__ = ["BANK_QUALITIES", "Bank", "build_bank", "default_bank_dir", "main"]

#: (codec, qualities) sampled during training: each covers the rates at which the standard
#: classifier loses accuracy on 180 px ISIC images (results/isic/test.csv), about 0.1-1.2 bpp
#: (JPEG XL and HEIF measured on 24 training images: 0.15-0.72 and 0.14-0.8 bpp).
BANK_QUALITIES: dict[str, tuple[float, ...]] = {
    "jpeg": (5, 10, 20, 40, 75),
    "webp": (0, 10, 30, 60, 80),
    "avif": (5, 25, 40, 60),
    "jpeg2000": (28, 32, 36, 40),
    "jpegxl": (5, 15, 30, 70),
    "heif": (5, 20, 35, 45),
    "cheng2020-anchor-mini": (1, 3, 5),
    "cheng2020-attn-mini": (1, 3, 5),
}
_RATE_SAMPLE = 32


def default_bank_dir() -> Path:
    """``$NICVIZ_CACHE`` or ``~/.cache/nicviz``, then ``isic-bank`` (several GB: not in the repo)."""
    from nicviz.settings import folder

    return (folder("NICVIZ_CACHE") or Path.home() / ".cache" / "nicviz") / "isic-bank"


def _entry(codec: str, quality: float) -> str:
    q = int(quality) if float(quality).is_integer() else quality
    return f"{codec}-q{q}"


def _weights_stamp(codec: str) -> dict | None:
    """Names and sizes of the weight files behind a neural codec (None: classical)."""
    from nicviz.codecs import get_codec
    from nicviz.codecs.neural import NeuralCodec

    c = get_codec(codec)
    if not isinstance(c, NeuralCodec):
        return None
    path = getattr(c.source, "path", None)
    if path is None:
        return None
    files = [path] if isinstance(path, Path) else [path(q) for q in c.available_qualities()]
    return {f.name: f.stat().st_size for f in files if f.is_file()}


def _classical(images: list[np.ndarray], codec: str, quality: float) -> tuple[np.ndarray, float]:
    from nicviz.codecs import get_codec

    c = get_codec(codec)
    out = np.empty((len(images), *images[0].shape), np.uint8)
    bits = 0.0
    for i, rgb in enumerate(images):
        data = c.encode(rgb, quality)
        out[i] = c.decode(data)
        bits += 8 * len(data)
    return out, bits / (len(images) * images[0].shape[0] * images[0].shape[1])


def _reconstruct(model, x):
    """The bitstream's reconstruction of ``x`` (1, 3, H, W) without writing the bitstream:
    the wavefront encoder's quantisation (means from the causal context) minus the rANS coder,
    and the estimated bits (-log2 likelihoods of the quantised symbols)."""
    import torch

    from nicviz.codecs.neural import wavefront

    head = wavefront._head(model)
    y = model.g_a(x)
    z = model.h_a(y)
    z_hat, z_lk = model.entropy_bottleneck(z)
    z_hat = model.entropy_bottleneck.decompress(model.entropy_bottleneck.compress(z), z.size()[-2:])
    params = model.h_s(z_hat)[0].double()
    m, h, w = y.shape[1:]
    y64 = y[0].double()
    pad = wavefront.PAD
    y_pad = torch.zeros((m, h + 2 * pad, w + 2 * pad), dtype=torch.float64)
    for rows, cols in wavefront.fronts(h, w):
        ri, ci = torch.tensor(rows), torch.tensor(cols)
        means, _ = head.params(y_pad, params, ri, ci)
        y_pad[:, ri + pad, ci + pad] = (torch.round(y64[:, ri, ci].t() - means) + means).t()
    y_hat = y_pad[None, :, pad:pad + h, pad:pad + w].float().contiguous(memory_format=torch.channels_last)
    return model.g_s(y_hat).clamp_(0, 1)


def _neural(images: list[np.ndarray], codec: str, quality: float) -> tuple[np.ndarray, float]:
    import torch

    from nicviz.codecs import get_codec
    from nicviz.codecs.neural import NeuralCodec

    c = get_codec(codec)
    if not isinstance(c, NeuralCodec):
        raise NicvizError(f"{codec} is not a neural codec")
    out = np.empty((len(images), *images[0].shape), np.uint8)
    with c.using(quality) as model, torch.no_grad():
        for i, rgb in enumerate(images):
            x, unpad = c._to_padded(rgb)
            out[i] = c._to_rgb(_reconstruct(model, x), unpad)
    sample = images[:_RATE_SAMPLE]  # the rate from real bitstreams of the first images
    bits = sum(8.0 * len(c.encode(rgb, quality)) for rgb in sample)
    return out, bits / (len(sample) * images[0].shape[0] * images[0].shape[1])


@dataclass
class Bank:
    """A built bank: reconstructions of ``images`` (ids) per (codec, quality)."""

    folder: Path
    images: list[str]
    entries: dict[str, dict]
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: str | os.PathLike, images: list[str], codecs: list[str] | None = None) -> Bank:
        """The bank in ``folder`` for exactly these training images, restricted to ``codecs``."""
        folder = Path(folder)
        index = folder / "index.json"
        if not index.is_file():
            raise NicvizError(f"{folder}: no compressed-image bank here; build it with "
                              "python -m nicviz.training.bank")
        meta = json.loads(index.read_text())
        if meta.get("images") != images:
            raise NicvizError(f"{folder}: the bank was built for other training images; rebuild it")
        entries = {k: v for k, v in meta.get("entries", {}).items()
                   if (codecs is None or v["codec"] in codecs) and (folder / f"{k}.npy").is_file()}
        for k, v in entries.items():
            if v.get("weights") and v["weights"] != _weights_stamp(v["codec"]):
                raise NicvizError(f"{folder}: {k} was built with other {v['codec']} weights; rebuild the bank")
        if codecs is not None:
            absent = sorted(set(codecs) - {v["codec"] for v in entries.values()})
            if absent:
                raise NicvizError(f"{folder}: the bank holds no {', '.join(absent)}; build it with --codecs")
        bank = cls(folder, images, entries)
        bank._arrays = {k: np.load(folder / f"{k}.npy", mmap_mode="r") for k in entries}
        return bank

    @property
    def codecs(self) -> list[str]:
        return sorted({v["codec"] for v in self.entries.values()})

    def sample(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """Image ``i`` through a random codec (uniform) at a random quality of it (uniform)."""
        codec = self.codecs[int(rng.integers(len(self.codecs)))]
        keys = sorted(k for k, v in self.entries.items() if v["codec"] == codec)
        key = keys[int(rng.integers(len(keys)))]
        return np.asarray(self._arrays[key][i]), key


def _save_npy(arr: np.ndarray, path: Path) -> None:
    with open(path, "wb") as fh:
        np.save(fh, arr)


def build_bank(images: list[np.ndarray], ids: list[str], folder: str | os.PathLike, dataset: str,
               qualities: dict[str, tuple[float, ...]] | None = None, log=print) -> Path:
    """Compress every image at every (codec, quality); resumable per array."""
    from nicviz.codecs import get_codec
    from nicviz.codecs.neural import NeuralCodec
    from nicviz.results import run_metadata

    qualities = qualities or BANK_QUALITIES
    if len({im.shape for im in images}) != 1:
        raise NicvizError("the bank needs images of one size (ISIC 9-class images are all 180 x 180)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.json"
    meta = json.loads(index.read_text()) if index.is_file() else {}
    if meta.get("images") not in (None, ids):
        raise NicvizError(f"{folder}: holds a bank of other training images; choose another --bank")
    meta.update({"dataset": dataset, "images": ids, "packages": run_metadata()["packages"]})
    meta.setdefault("entries", {})
    for codec, qs in qualities.items():
        c = get_codec(codec)
        c.require_available()
        for q in qs:
            key = _entry(codec, q)
            stamp = _weights_stamp(codec)
            if (folder / f"{key}.npy").is_file() and meta["entries"].get(key, {}).get("weights") == stamp:
                continue
            t0 = time.perf_counter()
            fn = _neural if isinstance(c, NeuralCodec) else _classical
            arr, bpp = fn(images, codec, q)
            atomic_write(folder / f"{key}.npy", partial(_save_npy, arr))
            meta["entries"][key] = {"codec": codec, "quality": q, "bpp": bpp, "weights": stamp,
                                    "rate_mode": "bitstream" if fn is _classical else f"bitstream, first {_RATE_SAMPLE} images",
                                    "seconds": round(time.perf_counter() - t0, 1)}
            atomic_write_text(index, json.dumps(meta, indent=1) + "\n")
            log(f"{key}: mean {bpp:.3f} bpp, {time.perf_counter() - t0:.1f} s")
    return folder


def training_items(isic: Path, seed: int = 0):
    """The classifier's training images (cleaned train minus the held-out split)."""
    from nicviz.training.isic import clean_train, holdout_split

    if not (Path(isic) / "train").is_dir():
        raise NicvizError(f"{isic}: no ISIC 9-class folder here (expected train/<class>/ images)")
    kept, _ = clean_train(isic)
    train, _ = holdout_split(kept, 0.15, seed)
    return train


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicviz.images import load_image

    p = argparse.ArgumentParser(prog="python -m nicviz.training.bank", description=__doc__.splitlines()[0])
    p.add_argument("--isic", help="ISIC 9-class root (default <data root>/isic)")
    p.add_argument("--bank", default=None, help=f"output folder (default {default_bank_dir()})")
    p.add_argument("--codecs", default=",".join(BANK_QUALITIES), help="comma-separated subset of "
                   + ", ".join(BANK_QUALITIES))
    p.add_argument("--seed", type=int, default=0, help="held-out split seed (as the classifier's)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.isic is None:
            from nicviz.paths import data_root

            root = data_root()
            if root is None:
                raise NicvizError("no data folder; pass --isic")
            args.isic = str(root / "isic")
        codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
        unknown = [c for c in codecs if c not in BANK_QUALITIES]
        if unknown:
            raise NicvizError(f"no bank qualities for {', '.join(unknown)}; choose from {', '.join(BANK_QUALITIES)}")
        items = training_items(Path(args.isic), args.seed)
        ids = [it.key for it in items]
        images = [load_image(it.path) for it in items]
        build_bank(images, ids, args.bank or default_bank_dir(), Path(args.isic).name,
                   {c: BANK_QUALITIES[c] for c in codecs}, log=lambda s: print(s, file=sys.stderr, flush=True))
    except NicvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
