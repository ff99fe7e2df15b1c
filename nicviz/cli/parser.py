"""The `nicviz` command line: one parser, one error convention (`nicviz: error: ...`, exit 2)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from nicviz.cli.codecs import cmd_codecs, cmd_download_weights, cmd_metrics, cmd_tasks
from nicviz.cli.evaluate import cmd_eval_image
from nicviz.cli.reports import cmd_bd_rate, cmd_classify_report, cmd_report
from nicviz.cli.sweep import cmd_plates, cmd_sweep
from nicviz.errors import NicvizError
from nicviz.metrics import curve_metrics
from nicviz.tasks import TASKS, task_choices

__all__ = ['build_parser', 'main']


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


def cmd_train(args: argparse.Namespace) -> int:
    """``nicviz train run|export ...``: the NIC training command line (``nicviz.training.nic``)."""
    from nicviz.training.nic import main as train_main

    return int(train_main(list(args.rest)) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="nicviz", description="Measure what image compression does to images.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("codecs", help="list codecs, quality scales and availability")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_codecs)

    s = sub.add_parser("metrics", help="list the quality metrics: label, unit, direction")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_metrics)

    s = sub.add_parser("tasks", help="list the tasks a sweep can measure and the columns each adds")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_tasks)

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
    s.add_argument("--task", default="rd", choices=task_choices(),
                   help="; ".join(f"{t.name}: {t.description}" for t in TASKS.values()))
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
    s.add_argument("--compile", action="store_true",
                   help="fit the overfitted codecs through torch.compile: faster an iteration, 100-200 s to "
                        "compile each image size (for many images of one size; $NICVIZ_OVERFITTED_COMPILE=1)")
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
    s.add_argument("--metric", default="psnr", choices=curve_metrics())
    s.add_argument("--method", default="pchip", choices=("pchip", "akima", "cubic"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bd_rate)

    s = sub.add_parser("train", help="train compact Cheng2020 models (see `nicviz train --help`)", add_help=False,
                       prefix_chars="\0")  # every word, --help included, belongs to the training command line
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("download-weights", help="download official CompressAI weights (needs network)")
    s.add_argument("arch")
    s.add_argument("--quality", required=True)
    s.add_argument("--metric", default="mse", choices=("mse", "ms-ssim"))
    s.set_defaults(func=cmd_download_weights)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
    except BrokenPipeError:  # `nicviz codecs | head`: the reader has all it wants
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more may reach the closed pipe
        return 141
    except OSError as exc:  # disk full, a read-only folder: one line; a sweep's finished rows are in its journal
        where = f" ({exc.filename})" if exc.filename else ""
        kept = "; rows already computed are kept (rerun to resume)" if args.command in ("sweep", "plates") else ""
        print(f"nicviz: error: {exc.strerror or type(exc).__name__}{where}{kept}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nicviz: interrupted (finished rows are kept; rerun to resume)", file=sys.stderr)
        return 130
