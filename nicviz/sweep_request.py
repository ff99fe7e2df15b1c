"""A sweep as a user asked for it, checked once: the one preparation behind ``nicviz
sweep`` and the dashboard's Run a sweep page (both then call :func:`nicviz.sweep.run_sweep`
with :meth:`SweepRequest.arguments`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nicviz.datasets import Dataset
from nicviz.specs import SpecError, parse_metrics, parse_qualities, parse_task

__all__ = ["SweepRequest", "sweep_request"]


@dataclass(frozen=True)
class SweepRequest:
    """What :func:`~nicviz.sweep.run_sweep` takes: the (sampled) dataset, codecs, their
    qualities, metrics and the task (one name, or several classified on each reconstruction)."""

    dataset: Dataset
    codecs: list[str]
    qualities: dict[str, list]
    metrics: tuple[str, ...]
    task: str | list[str]

    def arguments(self) -> dict:
        """``run_sweep(**request.arguments(), out=...)``."""
        return {"dataset": self.dataset, "codecs": self.codecs, "qualities": self.qualities,
                "metrics": self.metrics, "task": self.task}


def sweep_request(dataset: Dataset, codecs: Sequence[str], qualities: str | None,
                  metrics: str | Sequence[str] | None, tasks: Sequence[str] = ("rd",),
                  max_images: int | None = None, quality_defaults: dict[str, list] | None = None,
                  image_limit: int | None = None) -> SweepRequest:
    """Check a sweep's choices and sample its dataset; every problem is one
    :class:`~nicviz.specs.SpecError` line.

    ``qualities`` is a quality spec (``nicviz.specs``; codecs it does not name get
    ``quality_defaults``, default their available qualities); ``metrics`` a comma list,
    ``all``, or names; ``tasks`` task names (``classify:<classifier>``, ...), ``max_images``
    a random sample (seed 0), ``image_limit`` the most images allowed after it."""
    codecs = [c for c in codecs if c]
    if not codecs:
        raise SpecError("choose at least one codec")
    if metrics is not None and not isinstance(metrics, str):
        if not metrics:
            raise SpecError("choose at least one metric")
        metrics = ",".join(metrics)
    names = tuple(dict.fromkeys(parse_task(t) for t in tasks))
    if not names:
        raise SpecError("choose a task")
    sampled = dataset.sample(max_images)
    if image_limit is not None and len(sampled.files) > image_limit:
        raise SpecError(f"this dataset has {len(sampled.files)} images; at most {image_limit} can be swept here "
                        "(use `nicviz sweep` for larger ones, or set NICVIZ_MAX_SWEEP_IMAGES)")
    return SweepRequest(sampled, codecs, parse_qualities(codecs, qualities, quality_defaults),
                        parse_metrics(metrics), names[0] if len(names) == 1 else list(names))
