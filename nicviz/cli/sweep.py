"""`nicviz sweep` and `nicviz plates`: resumable sweeps."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nicviz.cli.common import UsageError, _print_bd
from nicviz.paths import check_writable
from nicviz.specs import parse_task, split_list

__all__ = ['cmd_sweep', 'cmd_plates']


def cmd_sweep(args: argparse.Namespace) -> int:
    from nicviz.datasets import resolve_dataset
    from nicviz.executors import make_executor
    from nicviz.sweep import run_sweep
    from nicviz.sweep_request import sweep_request

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError(f"{out}: --out must end in .csv or .parquet")
    check_writable(out, "--out file")
    classifiers: list[str | None] = [*split_list(getattr(args, "classifier", None) or "")] or [None]
    request = sweep_request(resolve_dataset(args.dataset, args.data), split_list(args.codec), args.quality,
                            args.metrics, [parse_task(args.task, c, getattr(args, "ocr_engine", None))
                                           for c in classifiers], getattr(args, "max_images", None))
    if getattr(args, "device", None):
        os.environ["NICVIZ_DEVICE"] = args.device  # read by the codecs that train per image; workers inherit it
    if getattr(args, "compile", False):
        os.environ["NICVIZ_OVERFITTED_COMPILE"] = "1"
    executor = make_executor(args.executor, args.jobs, args.scheduler, args.ship_images)
    summary = run_sweep(**request.arguments(), out=out, executor=executor,
                        progress=not args.quiet, bitstreams=getattr(args, "bitstreams", None),
                        command=["nicviz", *sys.argv[1:]] if args.argv is None else args.argv)
    print(f"{summary.out}: {summary.rows} rows ({summary.computed} computed, {summary.skipped} already done) "
          f"in {summary.wall_s:.1f} s")
    if summary.errors:
        for e in summary.errors:
            print(f"nicviz: skipped: {e['error']}", file=sys.stderr)
        print(f"nicviz: {len(summary.errors)} input(s) failed; listed in {summary.out}.errors.csv", file=sys.stderr)
        return 2
    return 0


def cmd_plates(args: argparse.Namespace) -> int:
    """Whole plate evaluation on a folder with labels.csv: sweep (resumable) + table."""
    import pandas as pd

    from nicviz.analysis import ocr_baseline, ocr_summary
    from nicviz.results import read_results

    args.task = "ocr"
    args.ocr_engine = getattr(args, "ocr_engine", "rapidocr")
    if args.metrics is None:
        args.metrics = "psnr,ssim"
    rc = cmd_sweep(args)
    df = read_results(args.out)
    df = df[df["task"] == "ocr"]
    if df.empty:
        raise UsageError("no plate could be read; see the errors above")
    base = ocr_baseline(df)
    print(f"uncompressed: {base['plates']} plates, exact {100 * base['exact']:.1f} %, exact (O=0) "
          f"{100 * base['exact_o0']:.1f} %, CER {base['cer']:.3f}")
    table = ocr_summary(df)
    pct = ["exact", "exact_o0", "improved_exact", "worsened_exact", "unchanged_exact", "improved_cer",
           "worsened_cer", "unchanged_cer"]
    table[pct] = table[pct] * 100
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if "jpeg" in set(df["codec"]) and df["codec"].nunique() > 1:
        from nicviz.analysis.bd_task import bd_codecs

        _print_bd("BD on exact-match accuracy against jpeg (95 % bootstrap intervals over plates):",
                  bd_codecs(df, "jpeg", "exact"), "exact-match", "at equal accuracy")
        cer = bd_codecs(df, "jpeg", "cer", higher_is_better=False)
        if not cer.empty:
            cer[["bd_score", "bd_score_lo", "bd_score_hi"]] *= 100  # CER in points of 100
        _print_bd("BD on character error rate against jpeg (negative BD-CER: fewer errors):", cer, "CER",
                  "at equal CER")
    return rc
