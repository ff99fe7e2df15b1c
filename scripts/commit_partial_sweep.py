"""Fold a stopped (or still running) sweep's journal into its results file and write the
metadata a finished sweep writes, marked partial with the count of finished rows, so
the rows can be committed and the sweep resumed later with the same command (it skips
every finished row).

    python scripts/commit_partial_sweep.py results/overfitted/kodak.csv --dataset kodak \\
        --codec overfitted --quality 1,2.5,4,5.5,7 --max-images 3
    python scripts/commit_partial_sweep.py results/overfitted/isic-test.csv --dataset isic-test \\
        --codec overfitted-fast --quality 1,4,7 --task classify \\
        --classifier isic-effnet-lite0,isic-effnet-lite0-robust,isic-effnet-lite0-robust-no-avif

With several classifiers an image is finished when every (quality, classifier) row is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from nicviz.datasets import resolve_dataset
    from nicviz.paths import FileLock
    from nicviz.results import meta_path, portable_root, run_metadata, write_json_atomic, write_results
    from nicviz.specs import parse_qualities, split_list
    from nicviz.sweep import _existing_rows, _frame, _journal_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--codec", required=True)
    ap.add_argument("--quality", required=True)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--task", default="rd")
    ap.add_argument("--classifier", help="with --task classify: the comma list the sweep was given")
    args = ap.parse_args(argv)
    from nicviz.specs import parse_task

    tasks = [parse_task(args.task, c) for c in (split_list(args.classifier) if args.classifier else [None])]
    out = Path(args.out)
    lock = FileLock(out)  # refuses while the sweep still runs: stop it first
    lock.acquire()
    try:
        found = _existing_rows(out)
        if not found:
            print(f"{out}: no finished rows", file=sys.stderr)
            return 2
        ds = resolve_dataset(args.dataset).sample(args.max_images)
        codecs = split_list(args.codec)
        qualities = parse_qualities(codecs, args.quality)
        planned = len(ds.files) * sum(len(v) for v in qualities.values()) * len(tasks)
        df = _frame(found.values())
        write_results(df, out)
        root, base = portable_root(ds.root)
        metrics = [c for c in ("psnr", "ssim", "ms_ssim", "vif", "mse", "mae") if c in df.columns]
        command = ["nicviz", "sweep", args.dataset, "--task", args.task,
                   *(["--classifier", args.classifier] if args.classifier else []), "--codec", args.codec,
                   "--quality", args.quality, *(["--max-images", str(args.max_images)] if args.max_images else []),
                   "--out", str(out)]
        per_image = max(len(v) for v in qualities.values()) * len(tasks)
        rows_of = df.groupby("image").size()
        meta = run_metadata(command,
                            dataset=ds.name, dataset_root=root, dataset_root_base=base, codecs=codecs,
                            qualities=qualities, metrics=metrics, task=",".join(tasks), rows=len(df), errors=0,
                            seed=0, partial=True, planned_rows=planned,
                            images_finished=sorted(rows_of[rows_of == per_image].index))
        write_json_atomic(meta, meta_path(out))
        _journal_path(out).unlink(missing_ok=True)
        print(f"{out}: {len(df)} of {planned} planned rows; metadata written (partial)")
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
