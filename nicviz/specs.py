"""One parser per spec, shared by the CLI, the dashboard and the tasks.

- qualities: ``5,10,20`` (every codec), ``24:40:4`` (start:stop:step, stop included),
  or per codec ``jpeg=5,10;jpeg2000=24:40:4``; a codec without a list gets its
  available qualities; numbers may be fractional where a codec's scale allows;
- metrics: a comma list or ``all``;
- tasks: ``rd``, ``ocr[:<engine>]``, ``classify[:<classifier>]``.

Every problem is a :class:`SpecError`: one line naming the bad part.
"""

from __future__ import annotations

import math

from nicviz.errors import NicvizError
from nicviz.settings import MAX_QUALITIES

__all__ = ["SpecError", "split_list", "parse_numbers", "parse_qualities", "parse_metrics", "parse_task",
           "format_qualities"]



class SpecError(NicvizError):
    """A quality, metric or task spec that cannot be parsed."""


def split_list(text: str) -> list[str]:
    """Comma-separated items, stripped, empty ones dropped."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _number(text: str, what: str) -> int | float:
    try:
        v = float(text)
    except ValueError:
        raise SpecError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(v) or abs(v) > 1e9:
        raise SpecError(f"{what}: {text!r} is not a usable number")
    return int(v) if v == int(v) else v


def parse_numbers(text: str, what: str = "quality") -> list[int | float]:
    """``5,10,20`` and ``start:stop[:step]`` ranges (stop included); integers stay integers."""
    out: list[int | float] = []
    for part in split_list(text):
        if ":" in part:
            bits = [_number(b, what) for b in part.split(":")]
            if len(bits) not in (2, 3):
                raise SpecError(f"{what}: {part!r} is not start:stop or start:stop:step")
            start, stop, step = bits[0], bits[1], bits[2] if len(bits) == 3 else 1
            if step <= 0:
                raise SpecError(f"{what}: {part!r} needs a positive step")
            if stop < start:
                raise SpecError(f"{what}: {part!r} ends before it starts")
            span = (stop - start) / step
            if not span < MAX_QUALITIES:  # counted, never expanded, before the check (NaN and inf refused too)
                raise SpecError(f"{what}: {part!r} gives more than {MAX_QUALITIES} values")
            n = int(span + 1e-9)
            out.extend(_number(repr(round(start + i * step, 6)), what) for i in range(n + 1))
        else:
            out.append(_number(part, what))
        if len(out) > MAX_QUALITIES:
            raise SpecError(f"{what}: more than {MAX_QUALITIES} values")
    return out


def parse_qualities(codecs: list[str], spec: str | None,
                    defaults: dict[str, list] | None = None) -> dict[str, list]:
    """``{codec: [qualities]}`` from a quality spec (see the module docstring).

    ``defaults`` gives each codec's list when the spec names none (default: the codec's
    :meth:`~nicviz.codecs.Codec.available_qualities`).
    """
    if defaults is None:
        from nicviz.codecs import get_codec

        defaults = {c: get_codec(c).available_qualities() for c in codecs}
    out = {c: list(defaults.get(c, [])) for c in codecs}
    spec = (spec or "").strip()
    if spec and "=" not in spec:
        qs = parse_numbers(spec)
        if not qs:
            raise SpecError("the quality list is empty")
        out = {c: qs for c in codecs}
    elif spec:
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            name, eq, values = part.partition("=")
            name = name.strip()
            if not eq or not name:
                raise SpecError(f"quality spec {part!r}: expected codec=list")
            if name not in out:
                raise SpecError(f"quality spec names codec {name!r}, which is not among the chosen codecs")
            qs = parse_numbers(values, f"{name} quality")
            if not qs:
                raise SpecError(f"no qualities after {name}= in the quality spec")
            out[name] = qs
    missing = [c for c, qs in out.items() if not qs]
    if missing:
        raise SpecError(f"no qualities for {', '.join(missing)}")
    return out


def format_qualities(qualities: dict[str, list]) -> str:
    """The inverse of :func:`parse_qualities` (``jpeg=5,10;webp=20``)."""
    return ";".join(f"{c}={','.join(str(q) for q in qs)}" for c, qs in qualities.items())


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """A comma list of metric names, or ``all`` / nothing for every metric."""
    from nicviz.metrics import METRICS

    if text is None or text.strip() in ("", "all"):
        return tuple(METRICS)
    names = tuple(split_list(text))
    bad = [n for n in names if n not in METRICS]
    if bad:
        raise SpecError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(METRICS)}")
    return names


def parse_task(task: str, classifier: str | None = None, ocr_engine: str | None = None) -> str:
    """The canonical task name: ``rd``, ``ocr``, ``ocr:<engine>``, ``classify`` or
    ``classify:<classifier>`` (the defaults rapidocr and isic-effnet-lite0 are implied)."""
    from nicviz.tasks import TASKS

    base, _, arg = task.strip().partition(":")
    if base not in TASKS:
        raise SpecError(f"unknown task {task!r}; choose from {', '.join(TASKS)} (ocr[:<engine>], "
                        "classify[:<classifier>])")
    if base == "classify":
        arg = arg or classifier or ""
        return "classify" if arg in ("", "isic-effnet-lite0") else f"classify:{arg}"
    if base == "ocr":
        arg = arg or ocr_engine or ""
        return "ocr" if arg in ("", "rapidocr") else f"ocr:{arg}"
    if base == "rd" and arg:
        raise SpecError(f"task rd takes no argument ({task!r})")
    return f"{base}:{arg}" if arg else base
