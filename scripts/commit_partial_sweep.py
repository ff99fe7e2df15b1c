"""Fold a stopped (or still running) sweep's journal into its results file and write the
metadata a finished sweep writes, marked partial with the count of finished rows, so
the rows can be committed and the sweep resumed later with the same command (it skips
every finished row).

    python scripts/commit_partial_sweep.py results/overfitted/kodak.csv --dataset kodak \\
        --codec overfitted --quality 1,2.5,4,5.5,7 --max-images 3
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
    args = ap.parse_args(argv)
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
        planned = len(ds.files) * sum(len(v) for v in qualities.values())
        df = _frame(found.values())
        write_results(df, out)
        root, base = portable_root(ds.root)
        metrics = [c for c in ("psnr", "ssim", "ms_ssim", "vif", "mse", "mae") if c in df.columns]
        meta = run_metadata(["nicviz", "sweep", args.dataset, "--codec", args.codec, "--quality", args.quality,
                             *(["--max-images", str(args.max_images)] if args.max_images else []), "--out", str(out)],
                            dataset=ds.name, dataset_root=root, dataset_root_base=base, codecs=codecs,
                            qualities=qualities, metrics=metrics, task=args.task, rows=len(df), errors=0, seed=0,
                            partial=True, planned_rows=planned,
                            images_finished=sorted(df.groupby("image")["quality"].nunique()
                                                   .loc[lambda s: s == max(len(v) for v in qualities.values())].index))
        write_json_atomic(meta, meta_path(out))
        _journal_path(out).unlink(missing_ok=True)
        print(f"{out}: {len(df)} of {planned} planned rows; metadata written (partial)")
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
