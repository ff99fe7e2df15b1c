"""Drop every row of some codecs from a results file, before a sweep re-runs them with new
weights (a shipped model replaced): the rows, their entries in the errors file, and the
codecs in the metadata, with a record in its ``runs`` of what was dropped and why (git
history keeps the old rows). Refuses while a sweep writes the file.

    python scripts/drop_codec_rows.py results/isic/test.csv --codec cheng2020-anchor-mini \\
        --why "the variable-rate model replaces the fixed-rate ones"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from nicviz.errors import NicvizError
    from nicviz.paths import FileLock
    from nicviz.results import errors_path, meta_path, read_results, write_csv_atomic, write_json_atomic, write_results
    from nicviz.specs import split_list

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--codec", required=True, help="comma list of codecs whose rows go")
    ap.add_argument("--why", required=True, help="recorded in the metadata's runs")
    args = ap.parse_args(argv)
    out, codecs = Path(args.results), split_list(args.codec)
    lock = FileLock(out)
    try:
        lock.acquire()
        df = read_results(out)
    except (NicvizError, FileNotFoundError) as exc:
        print(f"drop_codec_rows: {exc}", file=sys.stderr)
        return 2
    try:
        gone = df["codec"].astype(str).isin(codecs)
        if not gone.any():
            print(f"drop_codec_rows: {out} has no rows of {', '.join(codecs)}", file=sys.stderr)
            return 2
        kept = df[~gone]
        if kept.empty:
            print(f"drop_codec_rows: {out} holds only rows of {', '.join(codecs)}: delete it instead", file=sys.stderr)
            return 2
        write_results(kept, out)
        errs = errors_path(out)
        if errs.is_file():
            e = pd.read_csv(errs)
            if "codec" in e.columns:
                write_csv_atomic(e[~e["codec"].astype(str).isin(codecs)], errs)
        mp = meta_path(out)
        meta = json.loads(mp.read_text()) if mp.is_file() else {}
        runs = meta.get("runs") or ([{k: meta.get(k) for k in ("date", "command", "codecs", "qualities")}]
                                    if meta else [])
        meta["runs"] = [*runs, {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "dropped": codecs,
                                "rows_dropped": int(gone.sum()), "why": args.why}]
        meta["codecs"] = sorted(kept["codec"].astype(str).unique())
        meta["rows"] = len(kept)
        if isinstance(meta.get("qualities"), dict):
            meta["qualities"] = {k: v for k, v in meta["qualities"].items() if k not in codecs}
        write_json_atomic(meta, mp)
        print(f"{out}: dropped {int(gone.sum())} rows of {', '.join(codecs)}; {len(kept)} kept")
    finally:
        lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
