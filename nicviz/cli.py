"""The ``nicviz`` command line (also ``python -m nicviz``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

from nicviz.errors import NicvizError
from nicviz.paths import atomic_write_bytes, atomic_write_text, check_writable
from nicviz.specs import parse_metrics, parse_numbers, parse_qualities, parse_task, split_list

__all__ = ["main"]


class UsageError(NicvizError):
    """Bad input to a command: printed as one line, exit code 2."""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def need_columns(df, path: str, columns: list[str]) -> None:
    """A one-line error when a results file lacks columns a command reads."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UsageError(f"{path}: this results file has no {', '.join(missing)} column(s); "
                         "it was not written by a sweep of this kind")


# -- commands -------------------------------------------------------------------------
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


def cmd_eval_image(args: argparse.Namespace) -> int:
    from nicviz.evaluate import evaluate
    from nicviz.images import load_image, to_png_bytes

    for path, what in ((args.save_recon, "reconstruction"), (args.save_bitstream, "bitstream")):
        if path:
            check_writable(path, what)
    rgb = load_image(args.image)
    ev = evaluate(rgb, args.codec, args.quality, parse_metrics(args.metrics))
    row = {"image": str(args.image), **ev.row}
    try:
        if args.save_recon:
            atomic_write_bytes(args.save_recon, to_png_bytes(ev.reconstruction))
        if args.save_bitstream and ev.bitstream is not None:
            atomic_write_bytes(args.save_bitstream, ev.bitstream)
    except OSError as exc:
        raise UsageError(f"cannot write the output: {exc.strerror or exc} ({exc.filename})") from None
    if args.json:
        keys = ("codec", "quality", "width", "height", "bytes", "bpp", "psnr", "ssim", "ms_ssim", "vif",
                "mse", "mae", "encode_s", "decode_s", "rate_mode")
        # strict JSON: NaN (not measured) and infinity (identical images: PSNR) become null
        obj = {k: (None if isinstance(row[k], float) and not math.isfinite(row[k]) else row[k]) for k in keys}
        print(json.dumps(obj, allow_nan=False))
    else:
        for k, v in row.items():
            print(f"{k:>10}: {_fmt(v)}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from nicviz.datasets import resolve_dataset
    from nicviz.executors import make_executor
    from nicviz.sweep import run_sweep

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError(f"{out}: --out must end in .csv or .parquet")
    check_writable(out, "--out file")
    dataset = resolve_dataset(args.dataset, args.data).sample(getattr(args, "max_images", None))
    codecs = split_list(args.codec)
    if not codecs:
        raise UsageError("--codec lists no codecs")
    qualities = parse_qualities(codecs, args.quality)
    classifiers = split_list(getattr(args, "classifier", None) or "") or [None]
    task = [parse_task(args.task, c, getattr(args, "ocr_engine", None)) for c in classifiers]
    task = task[0] if len(task) == 1 else task
    if getattr(args, "device", None):
        os.environ["NICVIZ_DEVICE"] = args.device  # read by the codecs that train per image; workers inherit it
    executor = make_executor(args.executor, args.jobs, args.scheduler, args.ship_images)
    summary = run_sweep(dataset, codecs, qualities, out, metrics=parse_metrics(args.metrics), executor=executor,
                        progress=not args.quiet, task=task, bitstreams=getattr(args, "bitstreams", None),
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


def _print_bd(title: str, table, score_name: str, rate_note: str) -> None:
    if table.empty:
        return
    print(f"\n{title}")
    for r in table.itertuples():
        who = getattr(r, "task", None) or r.codec
        where = f"{r.codec}: " if getattr(r, "task", None) else ""
        def ci(lo: float, hi: float) -> str:
            return "[no interval]" if lo != lo or hi != hi else f"[{lo:+.1f}, {hi:+.1f}]"  # NaN != NaN

        rate = "n/a (no common score range)" if r.bd_rate != r.bd_rate else \
            f"{r.bd_rate:+.1f} % {ci(r.bd_rate_lo, r.bd_rate_hi)}"
        print(f"  {where}{who} vs {r.anchor}: BD-{score_name} {r.bd_score:+.1f} points "
              f"{ci(r.bd_score_lo, r.bd_score_hi)}, BD-rate {rate_note} {rate} over {r.from_bpp:.3f}-{r.to_bpp:.3f} bpp")


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


# -- parser -----------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line (``nicviz: error: ...``, exit 2), not a usage block."""

    def error(self, message: str):
        sys.stderr.write(f"nicviz: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)


def _executor_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("-j", "--jobs", type=int, default=1,
                   help="worker processes (with --executor dask and no --scheduler: local Dask workers)")
    s.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local: this machine; dask: a Dask distributed cluster (see --scheduler)")
    s.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="with --executor dask: join this scheduler (default $DASK_SCHEDULER_ADDRESS, "
                        "else start a local cluster of -j workers)")
    s.add_argument("--ship-images", action="store_true",
                   help="with --executor dask: send image bytes with each task (workers without the data folder)")

def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nicviz", description="Measure what image compression does to images.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("codecs", help="list codecs, quality scales and availability")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_codecs)

    s = sub.add_parser("eval-image", help="compress one image and measure it")
    s.add_argument("image")
    s.add_argument("--codec", required=True)
    s.add_argument("--quality", required=True, type=float,
                   help="on the codec's scale (see `nicviz codecs`); fractional for variable-rate models")
    s.add_argument("--metrics", help="comma list or 'all' (default)")
    s.add_argument("--save-recon", metavar="PNG")
    s.add_argument("--save-bitstream", metavar="FILE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval_image)

    s = sub.add_parser("sweep", help="run a resumable sweep over a dataset")
    s.add_argument("dataset", help="folder of images or a known name (kodak, isic-test, plates, ...)")
    s.add_argument("--codec", required=True, help="comma list of codecs")
    s.add_argument("--quality", help="comma list, start:stop:step, or per codec 'jpeg=5,10;webp=20:80:20' "
                   "(default: each codec's defaults)")
    s.add_argument("--metrics", help="comma list or 'all' (default)")
    _executor_options(s)
    s.add_argument("--out", required=True, help="results file, .csv or .parquet")
    s.add_argument("--data", help="data root (default $NICVIZ_DATA or ../shared/data)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--task", default="rd", choices=("rd", "ocr", "classify"),
                   help="rd: reconstruction metrics only; ocr: also read licence plates (needs labels.csv); "
                        "classify: also classify original and reconstruction")
    s.add_argument("--classifier", default="isic-effnet-lite0",
                   help="with --task classify: isic-effnet-lite0[-robust[-no-avif]], imagenet-effnet-lite0 or "
                        "keras:<path>; a comma list classifies each reconstruction with every one (a row each)")
    s.add_argument("--ocr-engine", default="rapidocr", choices=("rapidocr", "paddleocr"))
    s.add_argument("--max-images", type=int, metavar="N",
                   help="use a random sample of N images (seed 0, the same N give the same images)")
    s.add_argument("--bitstreams", metavar="DIR",
                   help="keep every bitstream in DIR/<image>/<codec>-q<quality>.bin (scripts/check_bitstreams.py "
                        "decodes them again)")
    s.add_argument("--device", choices=("cpu", "cuda"),
                   help="where the overfitted codecs fit each image (default $NICVIZ_DEVICE or cpu)")
    s.set_defaults(func=cmd_sweep, argv=None)

    s = sub.add_parser("plates", help="licence-plate OCR before/after compression on a folder with labels.csv")
    s.add_argument("dataset", help="folder of plate images with labels.csv (file,text) in it or its parent")
    s.add_argument("--codec", default="jpeg,webp,avif,jpeg2000")
    s.add_argument("--quality", help="as for sweep, e.g. 'jpeg=5,10,20;jpeg2000=24,28' (default: codec defaults)")
    s.add_argument("--metrics", help="comma list (default psnr,ssim)")
    _executor_options(s)
    s.add_argument("--out", required=True, help="results file, .csv or .parquet")
    s.add_argument("--data", help="data root")
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--ocr-engine", default="rapidocr", choices=("rapidocr", "paddleocr"))
    s.set_defaults(func=cmd_plates, argv=None)

    s = sub.add_parser("report", help="summarise a results file")
    s.add_argument("file")
    s.add_argument("--format", choices=("table", "compressai"), default="table")
    s.add_argument("--codec", help="comma list (default: all in file)")
    s.add_argument("--out-dir", help="with --format compressai: write <codec>.json files here")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("classify-report", help="accuracy drop vs bpp of a classification results file")
    s.add_argument("file")
    s.add_argument("--points", type=float, default=5.0, help="accuracy-drop threshold in points")
    s.add_argument("--anchor", default="jpeg", help="codec the BD-accuracy of the others is measured against")
    s.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the BD intervals")
    s.set_defaults(func=cmd_classify_report)

    s = sub.add_parser("bd-rate", help="Bjontegaard delta rate between two codecs of a results file")
    s.add_argument("file")
    s.add_argument("--anchor", default="jpeg")
    s.add_argument("--test", required=True)
    s.add_argument("--metric", default="psnr", choices=("psnr", "ms_ssim", "ms_ssim_db", "ssim", "vif"))
    s.add_argument("--method", default="pchip", choices=("pchip", "akima", "cubic"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bd_rate)

    sub.add_parser("train", help="train compact Cheng2020 models (see `nicviz train --help`)", add_help=False)

    s = sub.add_parser("download-weights", help="download official CompressAI weights (needs network)")
    s.add_argument("arch")
    s.add_argument("--quality", required=True)
    s.add_argument("--metric", default="mse", choices=("mse", "ms-ssim"))
    s.set_defaults(func=cmd_download_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # nicviz train run|export ... (see nicviz.training.nic)
        from nicviz.training.nic import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    if getattr(args, "argv", "unset") is None:
        args.argv = ["nicviz", *argv]
    try:
        with warnings.catch_warnings():
            # libraries' deprecation notices (torch.jit in CompressAI) would come before nicviz's one line
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return int(args.func(args) or 0)
    except (NicvizError, FileNotFoundError) as exc:
        msg = str(exc).strip("'\"").splitlines()[0] if str(exc) else type(exc).__name__
        print(f"nicviz: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, a read-only folder: one line; finished rows are in the journal
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"nicviz: error: {exc.strerror or type(exc).__name__}{where}; rows already computed are kept",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nicviz: interrupted (finished rows are kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
