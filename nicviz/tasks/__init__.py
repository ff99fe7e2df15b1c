"""Machine tasks measured on the original and on each reconstruction.

A task runner turns an image (and its label) into outcome columns for the result row:
``reference`` runs once on the uncompressed image (columns ending in ``_ref``),
``compare`` runs on each reconstruction. Registered tasks: ``ocr`` (licence plates).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nicviz.datasets import Dataset

__all__ = ["TaskRunner", "get_task", "TASKS"]


class TaskRunner(Protocol):
    name: str

    def labels(self, dataset: Dataset) -> dict[str, str]:
        """Label per image id of ``dataset`` (raises when the task needs labels and none exist)."""

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        """Outcome on the uncompressed image: the ``*_ref`` columns."""

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        """Outcome on a reconstruction, with the reference columns included."""


def _ocr():
    from nicviz.tasks.plate_task import PlateOcrTask

    return PlateOcrTask()


TASKS = {"ocr": _ocr}
_CACHE: dict[str, TaskRunner] = {}


def get_task(name: str) -> TaskRunner:
    """The runner for task ``name`` (one per process)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from rd, {', '.join(TASKS)}")
    if name not in _CACHE:
        _CACHE[name] = TASKS[name]()
    return _CACHE[name]
