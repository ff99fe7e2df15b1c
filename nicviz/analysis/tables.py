"""The summary tables the pages lay out, built in one place (the CLI prints the same
frames): a BD table on a task score against an anchor, and the classifiers' BD and
won-back tables. Columns are named in words a reader understands; values are rounded."""

from __future__ import annotations

import pandas as pd

from nicviz.analysis.wording import interval_text

__all__ = ["bd_score_table", "won_back_table", "bd_classifier_table"]


def _ci(lo: pd.Series, hi: pd.Series, scale: float = 1.0) -> list[str]:
    return [interval_text(scale * a, scale * b) for a, b in zip(lo, hi, strict=True)]


def _over(bd: pd.DataFrame) -> list[str]:
    return [f"{a:.2f} to {b:.2f}" for a, b in zip(bd["from_bpp"], bd["to_bpp"], strict=True)]


def bd_score_table(bd: pd.DataFrame, anchor: str, unit: str = "points", scale: float = 1.0,
                   who: str = "codec", names: dict[str, str] | None = None) -> pd.DataFrame:
    """A BD table on a task score (:func:`nicviz.analysis.bd_task.bd_codecs` or
    ``bd_classifiers`` rows): the mean score difference from ``anchor`` (times ``scale``,
    in ``unit``) with its interval, the bits needed for the anchor's score and the bpp
    range both cover. ``who`` names the compared column (``codec`` or ``task``)."""
    names = names or {}
    out = pd.DataFrame({"codec": bd["codec"]})
    if who == "task":
        out["classifier"] = bd["task"].map(lambda t: names.get(t, t))
    out[f"mean difference ({unit})"] = (scale * bd["bd_score"]).round(2)
    out["95 % CI"] = _ci(bd["bd_score_lo"], bd["bd_score_hi"], scale)
    out[f"bits for {anchor}'s score (%)"] = [interval_text(v) for v in bd["bd_rate"]]
    out["bits, 95 % CI"] = _ci(bd["bd_rate_lo"], bd["bd_rate_hi"])
    out["over bits per pixel"] = _over(bd)
    return out


def won_back_table(won: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """:func:`nicviz.analysis.classify.accuracy_won_back` rows in words."""
    names = names or {}
    return pd.DataFrame({
        "codec": won["codec"], "quality": won["quality"], "bits per pixel": won["bpp"].round(3),
        "classifier": won["task"].map(lambda t: names.get(t, t)),
        "accuracy won back (points)": won["won_back"].round(1),
        "won back, 95 % CI": _ci(won["won_back_lo"], won["won_back_hi"]),
        "McNemar p": won["won_back_p"].round(3),
        "standard loses (points)": won["standard_drop"].round(1),
        "this one loses (points)": won["other_drop"].round(1),
        "its loss, 95 % CI": _ci(won["other_drop_lo"], won["other_drop_hi"])})


def bd_classifier_table(bd: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Each classifier's BD-accuracy against the standard one, per codec, in words."""
    names = names or {}
    return pd.DataFrame({
        "codec": bd["codec"], "classifier": bd["task"].map(lambda t: names.get(t, t)),
        "BD-accuracy (points)": bd["bd_score"].round(1),
        "95 % CI": _ci(bd["bd_score_lo"], bd["bd_score_hi"]),
        "bits at equal accuracy (%)": [interval_text(v) for v in bd["bd_rate"]],
        "bits, 95 % CI": _ci(bd["bd_rate_lo"], bd["bd_rate_hi"]),
        "over bits per pixel": _over(bd)})
