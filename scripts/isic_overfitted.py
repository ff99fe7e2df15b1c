"""The overfitted codec on ``isic/test`` (what its sweep has finished, journal included):
per classifier and quality the accuracy drop with its exact paired 95 % interval and
McNemar's p, then BD-accuracy and BD-rate against JPEG (and the other codecs of the
study file) over the images both measured, with bootstrap intervals.

    python scripts/isic_overfitted.py [--codec overfitted-fast]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from nicviz.analysis.bd_task import bd_task
    from nicviz.analysis.classify import classification_summary
    from nicviz.results import read_results
    from nicviz.sweep import _existing_rows

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", default="overfitted-fast")
    ap.add_argument("--results", default=str(ROOT / "results" / "overfitted" / "isic-test.csv"))
    ap.add_argument("--study", default=str(ROOT / "results" / "isic" / "test.csv"))
    ap.add_argument("--anchors", default="jpeg,webp,avif,jpeg2000,cheng2020-anchor-mini,cheng2020-attn-mini")
    args = ap.parse_args(argv)
    found = _existing_rows(Path(args.results))
    if not found:
        print(f"no finished rows at {args.results}", file=sys.stderr)
        return 2
    ours = pd.DataFrame(list(found.values()))
    ours = ours[ours["codec"] == args.codec]
    study = read_results(args.study)
    for task in sorted(ours["task"].astype(str).unique(), key=lambda t: (t != "classify", t)):
        mine = ours[ours["task"].astype(str) == task]
        per_image = mine.groupby("image")["quality"].nunique()
        whole = per_image[per_image == per_image.max()].index
        mine = mine[mine["image"].isin(whole)]
        classes = mine.drop_duplicates("image")["label"].value_counts()
        print(f"\n## {task}: {len(whole)} images with every quality ({', '.join(f'{n} {c}' for c, n in classes.items())})")
        s = classification_summary(mine)
        print(s[["quality", "images", "bpp", "psnr", "accuracy_ref", "accuracy", "drop", "drop_lo", "drop_hi",
                 "mcnemar_p", "flips"]].round(3).to_string(index=False))
        others = study[(study["task"].astype(str) == task) & study["image"].isin(whole)]
        print(f"BD-accuracy of {args.codec} (points; + = more correct at equal rate) and BD-rate (% bits at equal "
              "accuracy), bootstrap 95 % over the common images:")
        for anchor in args.anchors.split(","):
            a = others[others["codec"] == anchor]
            if a.empty:
                continue
            try:
                r = bd_task(a, mine)
            except Exception as exc:  # noqa: BLE001 - a report line per anchor
                print(f"  against {anchor:22s} n/a ({str(exc).splitlines()[0]})")
                continue
            print(f"  against {anchor:22s} {r.bd_score:+6.1f} points [{r.bd_score_ci[0]:+.1f}, {r.bd_score_ci[1]:+.1f}]"
                  f"   BD-rate {r.bd_rate:+7.1f} % [{r.bd_rate_ci[0]:+.1f}, {r.bd_rate_ci[1]:+.1f}]   "
                  f"{r.rate_range[0]:.3f}-{r.rate_range[1]:.3f} bpp, {r.images} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
