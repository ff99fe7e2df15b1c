"""What compression did to a diagnosis, in sentences a clinician reads.

One sign throughout (a *drop* in accuracy is positive, a *rise* is named as such), "we
cannot tell" whenever the 95 % interval spans zero (with few images an unchanged
accuracy is not evidence of safety), counts with their grammar, p-values rounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nicviz.analysis.classify import MALIGNANT, class_outcomes

__all__ = ["interval_text", "Verdict", "verdict", "plain_summary", "originals_sentence", "p_text", "count", "plural", "WARN_POINTS"]

#: a malignant class whose probability falls by more than this many points gets a strong warning
WARN_POINTS = 15.0

_PLURALS = {"melanoma": "melanomas", "basal cell carcinoma": "basal cell carcinomas",
            "squamous cell carcinoma": "squamous cell carcinomas", "actinic keratosis": "actinic keratoses",
            "nevus": "nevi", "dermatofibroma": "dermatofibromas", "vascular lesion": "vascular lesions",
            "pigmented benign keratosis": "pigmented benign keratoses",
            "seborrheic keratosis": "seborrheic keratoses", "image": "images", "diagnosis": "diagnoses"}


def plural(name: str, n: int = 2) -> str:
    """``name`` in the plural when ``n`` is not 1."""
    return name if n == 1 else _PLURALS.get(name, name + "s")


def count(n: int, name: str) -> str:
    """``"1 image"``, ``"3 images"``."""
    return f"{n} {plural(name, n)}"


def p_text(p: float) -> str:
    """A p-value as a reader expects it: ``p = 0.03``, ``p = 0.41``, ``p < 0.001``."""
    if p is None or not np.isfinite(p):
        return "p not available"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2f}" if p >= 0.01 else f"p = {p:.3f}"


def interval_text(lo: float, hi: float | None = None, terminal: bool = False) -> str:
    """An interval as pages and the terminal print it, rounded to 0.1: ``lo to hi`` (or
    ``lo`` alone when ``hi`` is None; ``n/a`` when missing); ``terminal``: signed and in
    brackets, ``[+lo, +hi]`` (``[no interval]`` when missing)."""
    missing = lo != lo or (hi is not None and hi != hi)  # NaN
    if terminal:
        return "[no interval]" if missing or hi is None else f"[{lo:+.1f}, {hi:+.1f}]"
    if missing:
        return "n/a"
    return f"{lo:.1f}" if hi is None else f"{lo:.1f} to {hi:.1f}"


@dataclass
class Verdict:
    """``level``: ``error`` (a malignant diagnosis missed or much less likely), ``warning``
    (the diagnosis changed, or a malignant class became much more likely) or ``success``."""

    level: str
    headline: str
    details: list[str] = field(default_factory=list)


def _pct(p: float) -> str:
    return f"{100 * p:.0f} %"


def verdict(classes: list[str], p_ref: np.ndarray, p: np.ndarray, truth: str | None = None,
            points: float = WARN_POINTS, malignant: tuple[str, ...] = MALIGNANT) -> Verdict:
    """The diagnosis on the original (``p_ref``) against the reconstruction (``p``), class
    probabilities in ``classes`` order: the top class of each with its probability, the
    size of the change, and a strong warning when a malignant class is missed (the
    original's diagnosis, or the true one ``truth`` when known, lost after compression) or
    its probability falls by more than ``points``."""
    p_ref, p = np.asarray(p_ref, dtype=float), np.asarray(p, dtype=float)
    a, b = int(np.argmax(p_ref)), int(np.argmax(p))
    ca, cb = classes[a], classes[b]
    shift = 100 * float(np.abs(p - p_ref).max())
    details = [f"Original: **{ca}** ({_pct(p_ref[a])}). Compressed: **{cb}** ({_pct(p[b])}).",
               f"The largest change of any class probability: {shift:.0f} points."]
    falls = [(c, p_ref[i], p[i]) for i, c in enumerate(classes)
             if c in malignant and 100 * (p_ref[i] - p[i]) > points]
    rises = [(c, p_ref[i], p[i]) for i, c in enumerate(classes)
             if c in malignant and 100 * (p[i] - p_ref[i]) > points]
    for c, x, y in falls:
        details.append(f"The probability of {c} fell from {_pct(x)} to {_pct(y)} ({100 * (x - y):.0f} points).")
    for c, x, y in rises:
        details.append(f"The probability of {c} rose from {_pct(x)} to {_pct(y)} ({100 * (y - x):.0f} points).")
    if truth is not None:
        which = {(True, True): "both images are diagnosed correctly",
                 (True, False): "the original is diagnosed correctly, the compressed image is not",
                 (False, True): "the original is misdiagnosed, the compressed image correctly",
                 (False, False): "neither image is diagnosed correctly"}[(ca == truth, cb == truth)]
        details.insert(0, f"True diagnosis (from the dataset): **{truth}**; {which}.")
        if truth in malignant and ca == truth and cb != truth:
            return Verdict("error", f"Missed {truth}: recognised on the original, called {cb} after compression.",
                           details)
    if ca in malignant and cb != ca:
        return Verdict("error", f"Missed {ca}: the original is called {ca}, the compressed image {cb}.", details)
    if falls:
        return Verdict("error", f"The compressed image makes {falls[0][0]} much less likely "
                                f"({100 * (falls[0][1] - falls[0][2]):.0f} points lower).", details)
    if cb != ca:
        return Verdict("warning", f"The diagnosis changed: {ca} on the original, {cb} after compression.", details)
    if rises:
        return Verdict("warning", f"Same diagnosis, but {rises[0][0]} became much more likely "
                                  f"({100 * (rises[0][2] - rises[0][1]):.0f} points higher).", details)
    return Verdict("success", f"Same diagnosis ({ca}); no class probability moved more than {shift:.0f} points.",
                   details)


def originals_sentence(rows: pd.DataFrame) -> str:
    """How often the model is right on the original images, malignant classes first
    (one codec and quality's rows: every image once)."""
    oc = class_outcomes(rows)
    if oc.empty:
        return ""
    mal = oc[oc["malignant"]]
    parts = [f"{r.recognised_ref} of {count(r.images, r['class'])}" for _, r in mal.iterrows()]
    rest = oc[~oc["malignant"]]
    n, ok = int(rest["images"].sum()), int(rest["recognised_ref"].sum())
    text = "Even on the original, uncompressed images the model recognises "
    text += ", ".join(parts) if parts else "the classes below"
    if n:
        text += f"{'; and' if parts else ''} {ok} of the other {count(n, 'image')}"
    return text + "."


def _change_text(r: pd.Series) -> str:
    """Accuracy before and after, the change with its interval, one sign throughout."""
    drop, lo, hi = float(r["drop"]), float(r["drop_lo"]), float(r["drop_hi"])
    head = f"Accuracy went from **{r['accuracy_ref']:.1f} %** to **{r['accuracy']:.1f} %**"  # the change's own precision
    if lo > 0:
        return (f"{head}: a drop of {drop:.1f} points (95 % interval: a drop of {lo:.1f} to {hi:.1f} points; "
                f"{p_text(r['mcnemar_p'])}). Compression lowered the accuracy.")
    if hi < 0:
        return (f"{head}: a rise of {-drop:.1f} points (95 % interval: a rise of {-hi:.1f} to {-lo:.1f} points; "
                f"{p_text(r['mcnemar_p'])}).")
    move = f"a drop of {drop:.1f} points" if drop > 0 else f"a rise of {-drop:.1f} points" if drop < 0 else "no change"
    return (f"{head} ({move}). The 95 % interval runs from a rise of {-lo:.1f} to a drop of {hi:.1f} points, so "
            f"with {count(int(r['images']), 'image')} **we cannot tell** whether compression changed the "
            f"accuracy ({p_text(r['mcnemar_p'])}); this is not evidence that it is safe.")


def plain_summary(summary_row: pd.Series, rows: pd.DataFrame) -> str:
    """What one codec at one quality did to the diagnoses, in plain words (Markdown): the
    malignant classes first, then overall accuracy with its exact 95 % interval, worded
    as the interval allows."""
    r = summary_row
    head = f"At about **{r['bpp']:.2f} bits per pixel** ({r['codec']} quality {r['quality']:g}):"
    lines: list[str] = []
    for _, c in class_outcomes(rows).iterrows():
        if not c["malignant"]:
            continue
        n, rec, what = int(c["images"]), int(c["recognised"]), count(int(c["images"]), c["class"])
        if n == 1:
            s = f"- The {what} was {'still' if rec else 'not'} recognised"
        elif rec == 0:
            s = f"- None of the {what} was recognised"
        else:
            s = f"- {rec} of the {what} {'was' if rec == 1 else 'were'} still recognised"
        s += f" ({c['recognised_ref']} on the originals)"
        if c["called_instead_n"]:
            n = int(c["called_instead_n"])
            s += f"; {n} {'was' if n == 1 else 'were'} called {c['called_instead']}"
        lines.append(s + ".")
    after = [_change_text(r)] if "drop" in r and pd.notna(r.get("drop")) else []
    flips = int(r["flips"])
    after.append(f"{flips} of {count(int(r['images']), 'image')} got a different diagnosis after compression.")
    # a blank line after the list: the sentences below it are a paragraph, not part of its last item
    return "\n\n".join(part for part in (head, "\n".join(lines), "  \n".join(after)) if part)
