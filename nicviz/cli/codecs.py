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
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    w = max(len(r["codec"]) for r in rows)
    print(f"{'codec':<{w}}  {'family':<9} {'rate':<9} {'quality':<7} available  note")
    for r in rows:
        print(f"{r['codec']:<{w}}  {r['family']:<9} {r['rate']:<9} {r['quality']:<7} {r['available']:<9}  "
              f"{r['note'] or r['description']}")
    return 0


def cmd_download_weights(args: argparse.Namespace) -> int:
    from nicviz.codecs.weights import download_official, find_official

    for q in parse_numbers(args.quality):
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
