"""The metric registry: every full-reference metric is one function registered with its
label, unit, direction and the smallest image it is defined for, so the CLI choices, the
plots' labels, the pages' pickers, the specs and the results' columns all come from here.

Adding a metric is one file::

    from nicviz.metrics import register_metric

    @register_metric("my_metric", label="My metric", unit="", higher_is_better=True)
    def my_metric(reference, test, data_range=255):
        ...

Conventions for every function: ``metric(reference, test, data_range=255)``; both are
uint8 (or numeric) H x W x 3 arrays of the same shape, compared in **RGB** (not luma)
with ``data_range`` the span of the sample values (255 for 8-bit). Metrics that need a
minimum size return ``nan`` for images that are too small (``min_side``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from nicviz.errors import NicvizError

__all__ = ["Metric", "register_metric", "unregister_metric", "get_metric", "metric_names", "compute_metrics",
           "METRICS", "METRIC_LABELS", "curve_metrics", "validate_pair"]


@dataclass(frozen=True)
class Metric:
    name: str
    func: Callable[..., float]
    #: axis label, unit included ("PSNR (dB)")
    label: str
    unit: str = ""
    higher_is_better: bool = True
    #: ``nan`` is the metric's answer when the smaller side is at most this (0: always defined)
    nan_at_or_below: int = 0
    #: also drawn as ``<name>_db`` = -10 log10(1 - value) (MS-SSIM in dB, as CompressAI plots it)
    db_form: bool = False
    #: place in the results' column order (metrics without one follow, in registration order)
    order: int = 1000


_REGISTRY: dict[str, Metric] = {}


def register_metric(name: str, *, label: str, unit: str = "", higher_is_better: bool = True,
                    nan_at_or_below: int = 0, db_form: bool = False, order: int = 1000) -> Callable:
    """Decorator: register ``func`` as metric ``name`` (results list metrics by ``order``,
    then in the order they were registered)."""
    def wrap(func: Callable[..., float]) -> Callable[..., float]:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is already registered")
        _REGISTRY[name] = Metric(name, func, label, unit, higher_is_better, nan_at_or_below, db_form, order)
        ranked = sorted(enumerate(_REGISTRY.values()), key=lambda im: (im[1].order, im[0]))
        _REGISTRY.clear()
        _REGISTRY.update((m.name, m) for _, m in ranked)
        return func
    return wrap


def unregister_metric(name: str) -> None:
    _REGISTRY.pop(name, None)


def get_metric(name: str) -> Metric:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NicvizError(f"unknown metric {name!r}; known: {', '.join(_REGISTRY)}") from None


def metric_names() -> tuple[str, ...]:
    """Every registered metric, in registration order."""
    return tuple(_REGISTRY)


def curve_metrics() -> list[str]:
    """What a rate-distortion curve can be drawn over: every metric where higher is better,
    each ``db_form`` metric also in dB (``<name>_db``) right after the first."""
    out = []
    for m in _REGISTRY.values():
        if m.higher_is_better:
            out.append(m.name)
            if m.db_form:
                out.append(f"{m.name}_db")
    return out


class _Names(Sequence[str]):
    """The registered metric names, read when used (a metric registered later is in it)."""

    def __getitem__(self, i):  # type: ignore[override]
        return metric_names()[i]

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return repr(metric_names())


class _Labels(Mapping[str, str]):
    """Axis label of every metric and its dB form, read when used."""

    def _all(self) -> dict[str, str]:
        out = {}
        for m in _REGISTRY.values():
            out[m.name] = m.label
            if m.db_form:
                out[f"{m.name}_db"] = f"{m.label} (dB)"
        return out

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


#: Metric names in the order results list them (live: see :func:`metric_names`).
METRICS: Sequence[str] = _Names()
#: axis labels by metric name, dB forms included (live)
METRIC_LABELS: Mapping[str, str] = _Labels()


def validate_pair(reference: np.ndarray, test: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 H x W x C arrays of one shape (ValueError otherwise)."""
    ref = np.asarray(reference)
    tst = np.asarray(test)
    if ref.shape != tst.shape:
        raise ValueError(f"reference {ref.shape} and test {tst.shape} differ in shape")
    if ref.ndim == 2:
        ref, tst = ref[:, :, None], tst[:, :, None]
    if ref.ndim != 3:
        raise ValueError(f"expected H x W x C images, got shape {ref.shape}")
    if not data_range > 0:
        raise ValueError("data_range must be positive")
    return ref.astype(np.float64), tst.astype(np.float64)


def compute_metrics(reference: np.ndarray, test: np.ndarray, names: Sequence[str] | None = None,
                    parallel: bool = False) -> dict[str, float]:
    """Several metrics at once: ``{name: value}`` in the order of ``names`` (default: all).

    ``parallel`` computes them on threads (their numeric kernels release the GIL): for
    one interactive image, not inside sweep workers that already use every core.
    """
    names = list(metric_names() if names is None else names)
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise NicvizError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(_REGISTRY)}")
    if not parallel or len(names) < 2:
        return {n: _REGISTRY[n].func(reference, test) for n in names}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(4, len(names))) as pool:
        values = list(pool.map(lambda n: _REGISTRY[n].func(reference, test), names))
    return dict(zip(names, values, strict=True))
