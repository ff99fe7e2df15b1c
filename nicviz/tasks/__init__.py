"""Machine tasks measured on the original and on each reconstruction.

A task runner turns an image (and its label) into outcome columns for the result row:
``reference`` runs once on the uncompressed image (columns ending in ``_ref``),
``compare`` runs on each reconstruction. Registered tasks: ``ocr`` (licence plates) and
``classify[:<classifier>]`` (skin lesions by default, any classifier by name).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nicviz.datasets import Dataset
from nicviz.errors import NicvizError

__all__ = ["TaskRunner", "get_task", "TASKS"]


class TaskRunner(Protocol):
    name: str

    def labels(self, dataset: Dataset) -> dict[str, str]:
        """Label per image id of ``dataset`` (raises when the task needs labels and none exist)."""

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        """Outcome on the uncompressed image: the ``*_ref`` columns."""

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        """Outcome on a reconstruction, with the reference columns included."""


def _ocr(engine: str | None = None):
    from nicviz.tasks.ocr.runner import PlateOcrTask

    return PlateOcrTask(engine or "rapidocr")


def _classify(spec: str | None = None):
    from nicviz.tasks.classify.runner import DEFAULT_CLASSIFIER, ClassifyTask

    return ClassifyTask(spec or DEFAULT_CLASSIFIER)


TASKS = {"ocr": _ocr, "classify": _classify}
_CACHE: dict[str, TaskRunner] = {}


def get_task(name: str) -> TaskRunner:
    """The runner for task ``name`` (one per process): ``ocr``, ``classify`` or
    ``classify:<classifier>``."""
    base, _, arg = name.partition(":")
    if base not in TASKS:
        raise NicvizError(f"unknown task {name!r}; choose from rd, ocr, classify[:<classifier>]")
    if name not in _CACHE:
        _CACHE[name] = TASKS[base](arg) if arg else TASKS[base]()
    return _CACHE[name]
