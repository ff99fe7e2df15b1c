"""`nicviz report`, `nicviz classify-report`, `nicviz bd-rate`: summaries of a results file."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from nicviz.cli.common import UsageError, _print_bd, need_columns
from nicviz.paths import atomic_write_text, check_writable
from nicviz.specs import split_list

__all__ = ['cmd_classify_report', 'cmd_report', 'cmd_bd_rate']


def cmd_classify_report(args: argparse.Namespace) -> int:
    """Accuracy drop table (with CIs and McNemar p) of a classification results file, per
    classifier; BD-accuracy between codecs and between classifiers; accuracy won back."""
    import pandas as pd

    from nicviz.analysis import bpp_where_drop_exceeds, classification_summary
    from nicviz.analysis.bd_task import bd_classifiers, bd_codecs
    from nicviz.analysis.classify import accuracy_won_back
    from nicviz.results import read_results

    df = read_results(args.file)
    need_columns(df, args.file, ["task", "image", "quality", "pred", "pred_ref"])
    df = df[df["task"].astype(str).str.startswith("classify")]
    if df.empty:
        raise UsageError(f"{args.file}: no classification rows")
    tasks = sorted(df["task"].astype(str).unique(), key=lambda t: (t != "classify", t))
    labelled = df["label"].notna().any() if "label" in df else False
    for task in tasks:
        d = df[df["task"].astype(str) == task]
        if len(tasks) > 1:
            print(f"\n== {task}")
        table = classification_summary(d)
        with pd.option_context("display.width", 220, "display.max_columns", 30):
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if "drop" in table:
            for codec, bpp in bpp_where_drop_exceeds(table, args.points).items():
                msg = f"loses more than {args.points:g} points at {bpp:.3f} bpp and below" if bpp is not None \
                    else f"never loses more than {args.points:g} points at the measured rates"
                print(f"{codec}: {msg}")
        if labelled and args.anchor in set(d["codec"]):
            _print_bd(f"BD-accuracy against {args.anchor} (95 % bootstrap intervals over images):",
                      bd_codecs(d, args.anchor, n_boot=args.boot), "accuracy", "at equal accuracy")
    if labelled and len(tasks) > 1:
        _print_bd(f"BD-accuracy of each classifier against {tasks[0]}, per codec:",
                  bd_classifiers(df, tasks[0], n_boot=args.boot), "accuracy", "at equal accuracy")
        for task in tasks[1:]:
            won = accuracy_won_back(df, tasks[0], task, args.points)
            if won.empty:
                continue
            print(f"\n{task} against {tasks[0]} where {tasks[0]} first loses more than {args.points:g} points:")
            for r in won.itertuples():
                print(f"  {r.codec} q{r.quality:g} ({r.bpp:.3f} bpp): standard loses {r.standard_drop:.1f} "
                      f"[{r.standard_drop_lo:.1f}, {r.standard_drop_hi:.1f}] (p {r.standard_p:.3f}), {task} loses "
                      f"{r.other_drop:.1f} [{r.other_drop_lo:.1f}, {r.other_drop_hi:.1f}] (p {r.other_p:.3f}); "
                      f"won back {r.won_back:+.1f} [{r.won_back_lo:+.1f}, {r.won_back_hi:+.1f}] (p {r.won_back_p:.3f})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nicviz.analysis import compressai_json, mean_curve
    from nicviz.results import read_results

    df = read_results(args.file)
    codecs = split_list(args.codec) if args.codec else sorted(df["codec"].unique())
    if args.format == "compressai":
        docs = {c: compressai_json(df, c) for c in codecs}
        if args.out_dir:
            d = Path(args.out_dir)
            if d.exists() and not d.is_dir():
                raise UsageError(f"{d}: --out-dir names a file; give a folder")
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"{d}: cannot create the folder ({exc.strerror})") from None
            for c in docs:
                check_writable(d / f"{c}.json", "report file")
            for c, doc in docs.items():
                atomic_write_text(d / f"{c}.json", json.dumps(doc, indent=2) + "\n")
                print(d / f"{c}.json")
        else:
            print(json.dumps(docs[codecs[0]] if len(docs) == 1 else docs, indent=2))
        return 0
    for c in codecs:
        curve = mean_curve(df, c)
        print(f"== {c}")
        print(curve.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_bd_rate(args: argparse.Namespace) -> int:
    from nicviz.analysis import bd_rate
    from nicviz.results import read_results

    df = read_results(args.file)
    need_columns(df, args.file, ["image", "quality", "psnr" if args.metric == "psnr" else args.metric.removesuffix("_db")])
    res = bd_rate(df, args.anchor, args.test, metric=args.metric, method=args.method)
    for w in res.warnings:
        print(f"nicviz: warning: {w}", file=sys.stderr)
    value = res.bd_rate if math.isfinite(res.bd_rate) else None
    if args.json:  # strict JSON: no common range is null, never NaN
        print(json.dumps({"anchor": args.anchor, "test": args.test, "metric": args.metric,
                          "method": args.method, "bd_rate": value, "overlap": res.overlap,
                          "warnings": res.warnings}, allow_nan=False))
    elif value is None:
        print(f"BD-rate of {args.test} against {args.anchor} ({args.metric}, {args.method}): n/a "
              "(the curves share no quality range)")
    else:
        print(f"BD-rate of {args.test} against {args.anchor} ({args.metric}, {args.method}): {value:+.2f} %")
    return 0
