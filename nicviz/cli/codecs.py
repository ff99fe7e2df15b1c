"""`nicviz codecs` and `nicviz download-weights`."""

from __future__ import annotations

import argparse
import json

from nicviz.cli.common import UsageError
from nicviz.specs import parse_numbers

__all__ = ['cmd_codecs', 'cmd_download_weights']


def cmd_codecs(args: argparse.Namespace) -> int:
    from nicviz.codecs import get_codec, list_codecs

    rows = []
    for name in list_codecs():
        c = get_codec(name)
        ok, why = c.availability()
        avail_q = c.available_qualities() if ok and c.family == "neural" else None
        rows.append({
            "codec": name, "family": c.family, "rate": c.rate_mode,
            "quality": f"{c.scale.low}..{c.scale.high}", "scale": c.scale.meaning,
            "available": "yes" if ok else "no",
            "note": (f"any quality {c.scale.low}..{c.scale.high} (variable rate)" if c.scale.continuous else
                     f"qualities {','.join(map(str, avail_q))}" if avail_q else "") if ok else why,
            "description": c.description,
        })
    return _listing(rows, args.json, [("codec", 0), ("family", 9), ("rate", 9), ("quality", 7), ("available", 9)],
                    lambda r: r["note"] or r["description"], "note")


def _listing(rows: list[dict], as_json: bool, columns: list[tuple[str, int]], last, last_name: str) -> int:
    """``rows`` as JSON, or as a table: ``columns`` (name, width; 0 = the widest value) and a
    free last column ``last(row)``."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    widths = [w or max(len(str(r[c])) for r in [*rows, {c: c}]) for c, w in columns]
    print("  ".join(f"{c:<{w}}" for (c, _), w in zip(columns, widths, strict=True)) + f"  {last_name}")
    for r in rows:
        print("  ".join(f"{r[c]!s:<{w}}" for (c, _), w in zip(columns, widths, strict=True)) + f"  {last(r)}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """``nicviz metrics``: every registered metric."""
    from nicviz.metrics import METRICS, get_metric

    rows = [{"metric": m.name, "label": m.label, "unit": m.unit,
             "better": "higher" if m.higher_is_better else "lower",
             "nan_at_or_below_px": m.nan_at_or_below, "doc": (m.func.__doc__ or "").strip().splitlines()[0]}
            for m in map(get_metric, METRICS)]
    return _listing(rows, args.json, [("metric", 0), ("better", 7), ("label", 14)], lambda r: r["doc"],
                    "description")


def cmd_tasks(args: argparse.Namespace) -> int:
    """``nicviz tasks``: every registered task and the columns it adds to a row."""
    from nicviz.tasks import TASKS

    rows = [{"task": t.name, "description": t.description, "columns": list(t.columns), "summary": t.summary}
            for t in TASKS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["task"]) for r in rows)
    for r in rows:
        print(f"{r['task']:<{w}}  {r['description']}")
        if r["columns"]:
            print(f"{'':<{w}}  columns: {', '.join(r['columns'])}")
    return 0


def cmd_download_weights(args: argparse.Namespace) -> int:
    from nicviz.codecs.weights import download_official, find_official

    for value in parse_numbers(args.quality):
        if not float(value).is_integer():
            raise UsageError(f"official {args.arch} weights come in integer qualities, not {value}")
        q = int(value)
        found = find_official(args.arch, q, args.metric)
        if found:
            print(f"{found} (already present)")
            continue
        try:
            print(download_official(args.arch, q, args.metric))
        except OSError as exc:
            raise UsageError(f"cannot download {args.arch} quality {q}: {exc} (offline? put the file in "
                             f"$NICVIZ_WEIGHTS_DIR instead)") from None
    return 0
