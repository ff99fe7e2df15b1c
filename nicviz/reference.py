"""CompressAI's published Kodak curves, for overlays and BD-rate against them."""

from __future__ import annotations

import json
from pathlib import Path

from nicviz.paths import REFERENCE_DIR, data_root

__all__ = ["reference_dir", "load_references"]

_SHIPPED = REFERENCE_DIR


def reference_dir() -> Path:
    """``$NICVIZ_REFERENCE``, else ``<data root>/../reference/compressai-kodak``, else the shipped copy."""
    from nicviz.settings import folder

    env = folder("NICVIZ_REFERENCE")
    if env:
        return env
    root = data_root()
    if root is not None:
        cand = root.parent / "reference" / "compressai-kodak"
        if cand.is_dir():
            return cand
    return _SHIPPED


def load_references(folder: Path | None = None) -> dict[str, dict]:
    """``{label: compressai json}`` for every readable results JSON in the folder."""
    folder = folder or reference_dir()
    out: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        res = data.get("results", {})
        if "bpp" in res and ("psnr-rgb" in res or "ms-ssim-rgb" in res):
            out[path.stem] = data
    return out
