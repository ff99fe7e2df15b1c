"""Where neural-codec weights come from.

Official CompressAI weights are looked up, in this order, under the file name of
CompressAI's download URL (for example ``cheng2020-anchor-1-dad2ebff.pth.tar``):

1. ``$NICVIZ_WEIGHTS_DIR/<file>``
2. the torch hub checkpoint cache, ``$TORCH_HOME/hub/checkpoints/<file>``
   (``~/.cache/torch/hub/checkpoints`` by default), where CompressAI itself puts them.

Nothing is downloaded implicitly: ``nicviz download-weights`` (or
:func:`download_official`) fetches them into the torch hub cache when online.
Checkpoints are untrusted data and are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from nicviz.codecs.base import CodecError
from nicviz.paths import PACKAGE_DIR

__all__ = [
    "official_url",
    "official_filename",
    "search_dirs",
    "find_official",
    "download_official",
    "load_state_dict",
    "import_compressai",
    "restore_likelihood_bounds",
]


def import_compressai():
    """Import CompressAI quietly (it warns about ``torch.jit.script`` on import)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import compressai.zoo.image

    return compressai


MODEL_URLS_FILE = PACKAGE_DIR / "reference_data" / "compressai-model-urls.json"


@functools.lru_cache(maxsize=1)
def _model_urls() -> dict:
    """CompressAI's checkpoint addresses from nicviz's copy (no CompressAI import), or from
    CompressAI itself when the copy is missing."""
    try:
        return json.loads(MODEL_URLS_FILE.read_text())["model_urls"]
    except (OSError, ValueError, KeyError):
        import_compressai()
        from compressai.zoo.image import model_urls

        return {a: {m: {str(q): u for q, u in qs.items()} for m, qs in ms.items()} for a, ms in model_urls.items()}


def official_url(arch: str, quality: int, metric: str = "mse") -> str:
    try:
        return _model_urls()[arch][metric][str(quality)]
    except KeyError:
        raise CodecError(f"CompressAI publishes no {metric} weights for {arch} quality {quality}") from None


def official_filename(arch: str, quality: int, metric: str = "mse") -> str:
    return official_url(arch, quality, metric).rsplit("/", 1)[-1]


def search_dirs() -> list[Path]:
    """Folders searched for official checkpoints, in order."""
    dirs: list[Path] = []
    from nicviz.settings import folder

    env = folder("NICVIZ_WEIGHTS_DIR")
    if env:
        dirs.append(env)
    import torch.hub

    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_official(arch: str, quality: int, metric: str = "mse") -> Path | None:
    name = official_filename(arch, quality, metric)
    for folder in search_dirs():
        path = folder / name
        if path.is_file():
            return path
    return None


def download_official(arch: str, quality: int, metric: str = "mse") -> Path:
    """Download one official checkpoint into the torch hub cache (needs network)."""
    import torch.hub

    url = official_url(arch, quality, metric)
    target = Path(torch.hub.get_dir()) / "checkpoints" / official_filename(arch, quality, metric)
    target.parent.mkdir(parents=True, exist_ok=True)
    # CompressAI's file names end in the first hex digits of the file's SHA-256
    match = torch.hub.HASH_REGEX.search(target.name)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=match.group(1) if match else None,
                                       progress=True)
    except RuntimeError as exc:  # torch: "invalid hash value (expected ..., got ...)"
        raise CodecError(f"{target.name}: download does not match its published hash ({exc})") from None
    return target


def load_state_dict(path: Path) -> dict:
    """Load a checkpoint's state dict safely (``weights_only=True``) onto the CPU."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CodecError(f"{path}: not a state dict")
    return {k: v.float() if v.is_floating_point() else v for k, v in obj.items()}


def restore_likelihood_bounds(model, bound: float = 1e-9) -> None:
    """Give back the likelihood lower bound (CompressAI's 1e-9) to entropy models loaded
    from float16 files that stored it as 0 (which makes an unlikely symbol cost infinite
    bits in training and in estimated rates)."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            lb = getattr(m, "likelihood_lower_bound", None)
            if lb is not None and getattr(m, "use_likelihood_bound", False) and float(lb.bound.max()) <= 0:
                lb.bound.fill_(bound)
