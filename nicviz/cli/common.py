"""Pieces every subcommand shares: the one-line usage error, number formatting, column checks, BD lines."""

from __future__ import annotations

import math

from nicviz.errors import NicvizError

__all__ = ['UsageError', 'need_columns']


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


def _print_bd(title: str, table, score_name: str, rate_note: str) -> None:
    if table.empty:
        return
    print(f"\n{title}")
    for r in table.itertuples():
        who = getattr(r, "task", None) or r.codec
        where = f"{r.codec}: " if getattr(r, "task", None) else ""
        from nicviz.analysis.wording import interval_text

        def ci(lo: float, hi: float) -> str:
            return interval_text(lo, hi, terminal=True)

        rate = "n/a (no common score range)" if r.bd_rate != r.bd_rate else \
            f"{r.bd_rate:+.1f} % {ci(r.bd_rate_lo, r.bd_rate_hi)}"
        print(f"  {where}{who} vs {r.anchor}: BD-{score_name} {r.bd_score:+.1f} points "
              f"{ci(r.bd_score_lo, r.bd_score_hi)}, BD-rate {rate_note} {rate} over {r.from_bpp:.3f}-{r.to_bpp:.3f} bpp")
