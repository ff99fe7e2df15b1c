"""The ``ocr`` sweep task: read the plate before and after compression, score both."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from nicviz.datasets import Dataset
from nicviz.errors import NicvizError
from nicviz.tasks.ocr.engines import get_engine
from nicviz.tasks.ocr.plates import cer, exact, exact_o0, read_labels, select_plate

__all__ = ["PlateOcrTask"]


class PlateOcrTask:
    name = "ocr"

    def __init__(self, engine: str = "rapidocr") -> None:
        self.engine_name = engine

    def labels(self, dataset: Dataset) -> dict[str, str]:
        by_file = read_labels(Path(dataset.root))
        out = {}
        used = set()
        for path in dataset.files:
            image = dataset.image_id(path)
            key = image if image in by_file else path.name
            label = by_file.get(key)
            if label:
                out[image] = label
                used.add(key)
        missing = sorted(set(by_file) - used - {dataset.image_id(p) for p in dataset.files})
        if missing and not out:
            raise NicvizError(f"labels.csv names none of the images in {dataset.name} (first: {missing[0]!r})")
        if missing:
            print(f"nicviz: warning: labels.csv names {len(missing)} file(s) that are not in {dataset.name} "
                  f"(first: {missing[0]!r}); they are left out", file=sys.stderr)
        return out

    def _score(self, rgb: np.ndarray, label: str | None) -> dict:
        text, conf = select_plate(get_engine(self.engine_name).read(rgb))
        if not label:
            return {"read": text, "confidence": conf, "exact": None, "exact_o0": None, "cer": None}
        return {"read": text, "confidence": conf, "exact": exact(text, label), "exact_o0": exact_o0(text, label),
                "cer": cer(text, label)}

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        return {f"{k}_ref": v for k, v in self._score(rgb, label).items()}

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        return {"text": label, **self._score(recon, label), **ref}
