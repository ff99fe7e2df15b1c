"""Tasks measured on the original and on each reconstruction, behind one registry.

A task runner turns an image (and its label) into outcome columns for the result row:
``reference`` runs once on the uncompressed image (columns ending in ``_ref``),
``compare`` runs on each reconstruction. Built in: ``rd`` (reconstruction quality only:
no columns of its own), ``ocr`` (licence plates) and ``classify[:<classifier>]`` (skin
lesions by default, any classifier by name).

Adding a task is one file::

    from nicviz.tasks import register_task

    @register_task("mytask", "what it measures", columns=("my_score", "my_score_ref"))
    def make(arg=None):
        return MyRunner(arg)   # has name, labels(), reference(), compare()

The CLI's ``--task`` choices, ``nicviz tasks`` and the sweep read the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from nicviz.datasets import Dataset
from nicviz.errors import NicvizError

__all__ = ["TaskRunner", "TaskInfo", "register_task", "unregister_task", "get_task", "task_info", "task_choices",
           "TASKS"]


class TaskRunner(Protocol):
    name: str

    def labels(self, dataset: Dataset) -> dict[str, str]:
        """Label per image id of ``dataset`` (raises when the task needs labels and none exist)."""

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        """Outcome on the uncompressed image: the ``*_ref`` columns."""

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        """Outcome on a reconstruction, with the reference columns included."""


@dataclass(frozen=True)
class TaskInfo:
    name: str
    #: ``factory(arg)`` makes the runner of ``name:arg`` (``arg`` None for the bare name)
    factory: Callable[[str | None], TaskRunner]
    description: str
    #: the columns its rows add (for listings and docs)
    columns: tuple[str, ...] = ()
    #: several variants (``classify:a``, ``classify:b``) may share one sweep's reconstructions
    combinable: bool = True
    #: ``module:function`` that summarises its rows per codec and quality
    summary: str = ""


#: registered tasks by name
TASKS: dict[str, TaskInfo] = {}
_CACHE: dict[str, TaskRunner] = {}


def register_task(name: str, description: str, columns: tuple[str, ...] = (), combinable: bool = True,
                  summary: str = "") -> Callable:
    """Decorator: register ``factory`` as task ``name``."""
    def wrap(factory: Callable[[str | None], TaskRunner]) -> Callable[[str | None], TaskRunner]:
        if name in TASKS or ":" in name:
            raise ValueError(f"task name {name!r} is taken or has a ':'")
        TASKS[name] = TaskInfo(name, factory, description, tuple(columns), combinable, summary)
        return factory
    return wrap


def unregister_task(name: str) -> None:
    TASKS.pop(name, None)
    for key in [k for k in _CACHE if k.partition(":")[0] == name]:
        _CACHE.pop(key)


def task_choices() -> list[str]:
    """Every registered task name."""
    return list(TASKS)


def task_info(name: str) -> TaskInfo:
    base = name.partition(":")[0]
    if base not in TASKS:
        raise NicvizError(f"unknown task {name!r}; choose from {', '.join(TASKS)} (classify[:<classifier>])")
    return TASKS[base]


def get_task(name: str) -> TaskRunner:
    """The runner for task ``name`` (one per process): a registered name, or
    ``name:<argument>`` (``classify:<classifier>``)."""
    info = task_info(name)
    arg = name.partition(":")[2]
    if name not in _CACHE:
        _CACHE[name] = info.factory(arg or None)
    return _CACHE[name]


class _Reconstruction:
    """``rd``: reconstruction quality only; the metrics are the row, the task adds nothing."""

    name = "rd"

    def labels(self, dataset: Dataset) -> dict[str, str]:
        return {}

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        return {}

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        return {}


@register_task("rd", "reconstruction metrics only", combinable=False, summary="nicviz.analysis.rd:mean_curve")
def _rd(arg: str | None = None) -> TaskRunner:
    if arg:
        raise NicvizError("task rd takes no argument")
    return _Reconstruction()


@register_task("ocr", "also read licence plates, original and reconstruction (needs labels.csv)",
               columns=("text", "read", "read_ref", "confidence", "cer", "cer_ref", "exact", "exact_ref", "exact_o0"),
               summary="nicviz.analysis.ocr:ocr_summary")
def _ocr(engine: str | None = None) -> TaskRunner:
    from nicviz.tasks.ocr.runner import PlateOcrTask

    return PlateOcrTask(engine or "rapidocr")


@register_task("classify", "also classify original and reconstruction (class sub-folders are labels)",
               columns=("label", "pred", "pred_ref", "correct", "correct_ref", "p_label", "flip", "confidence",
                        "confidence_ref", "confidence_change", "top5", "top5_overlap", "classifier"),
               summary="nicviz.analysis.classify:classification_summary")
def _classify(spec: str | None = None) -> TaskRunner:
    from nicviz.tasks.classify.runner import DEFAULT_CLASSIFIER, ClassifyTask

    return ClassifyTask(spec or DEFAULT_CLASSIFIER)
