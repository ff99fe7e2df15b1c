"""Licence-plate reading: text normalisation, choosing the plate number, scoring.

Normalisation: upper case, then only ``A-Z`` and ``0-9`` are kept (spaces, dashes,
dots and other punctuation are dropped).

Plate selection rule (``select_plate``). A plate crop also shows the state name,
slogans, month and year stickers and small print; the registration number is the
tallest text. So:

1. normalise every line the engine found; drop lines that become empty, are a US
   state name, a month, or longer than 10 characters (slogans);
2. take the tallest remaining box; keep every remaining box at least 60 % as tall
   whose vertical centre lies within the tallest box's vertical extent (a number split
   into two boxes, ``KAA`` ``20C``);
3. join those boxes left to right.

Scores against a label: exact match (strict, and with the letter O and the digit 0
treated as the same character, since the labels often write 0 for O), and the
character error rate, Levenshtein distance / label length.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from nicviz.errors import NicvizError
from nicviz.tasks.ocr.engines import OcrLine

__all__ = ["normalize", "select_plate", "cer", "exact", "exact_o0", "read_labels", "diff_html", "US_STATES", "MONTHS"]

US_STATES = {
    "ALABAMA", "ALASKA", "ARIZONA", "ARKANSAS", "CALIFORNIA", "COLORADO", "CONNECTICUT", "DELAWARE",
    "FLORIDA", "GEORGIA", "HAWAII", "IDAHO", "ILLINOIS", "INDIANA", "IOWA", "KANSAS", "KENTUCKY",
    "LOUISIANA", "MAINE", "MARYLAND", "MASSACHUSETTS", "MICHIGAN", "MINNESOTA", "MISSISSIPPI",
    "MISSOURI", "MONTANA", "NEBRASKA", "NEVADA", "NEWHAMPSHIRE", "NEWJERSEY", "NEWMEXICO", "NEWYORK",
    "NORTHCAROLINA", "NORTHDAKOTA", "OHIO", "OKLAHOMA", "OREGON", "PENNSYLVANIA", "RHODEISLAND",
    "SOUTHCAROLINA", "SOUTHDAKOTA", "TENNESSEE", "TEXAS", "UTAH", "VERMONT", "VIRGINIA", "WASHINGTON",
    "WESTVIRGINIA", "WISCONSIN", "WYOMING", "DISTRICTOFCOLUMBIA", "WASHINGTONDC",
}
MONTHS = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "SEPT", "OCT", "NOV", "DEC",
    "JANUARY", "FEBRUARY", "MARCH", "APRIL", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
    "NOVEMBER", "DECEMBER",
}
_KEEP = re.compile(r"[^A-Z0-9]")
MAX_PLATE_LEN = 10
MIN_HEIGHT_RATIO = 0.6


def normalize(text: str | None) -> str:
    """Upper case, only A-Z and 0-9 kept; an empty reading (``None``, or NaN as a results
    file reads an empty cell) is the empty string, never the letters "NAN"."""
    if text is None or (isinstance(text, float) and text != text):
        return ""
    return _KEEP.sub("", str(text).upper())


def _is_plate_candidate(norm: str) -> bool:
    return 0 < len(norm) <= MAX_PLATE_LEN and norm not in US_STATES and norm not in MONTHS


def select_plate(lines: Sequence[OcrLine]) -> tuple[str, float]:
    """The plate number among ``lines`` (see the module docstring) and its mean confidence."""
    cands = [(normalize(ln.text), ln) for ln in lines]
    cands = [(n, ln) for n, ln in cands if _is_plate_candidate(n)]
    if not cands:
        return "", 0.0
    tallest = max(cands, key=lambda c: c[1].height)[1]
    keep = [(n, ln) for n, ln in cands
            if ln.height >= MIN_HEIGHT_RATIO * tallest.height and tallest.top <= ln.center[1] <= tallest.bottom]
    keep.sort(key=lambda c: c[1].left)
    text = "".join(n for n, _ in keep)
    conf = sum(ln.confidence for _, ln in keep) / len(keep)
    return text, conf


def cer(read: str, label: str) -> float:
    """Character error rate: Levenshtein distance / label length (0 is perfect)."""
    label = normalize(label)
    if not label:
        raise NicvizError("empty label")
    return Levenshtein.distance(normalize(read), label) / len(label)


def exact(read: str, label: str) -> bool:
    return normalize(read) == normalize(label)


def exact_o0(read: str, label: str) -> bool:
    """Exact match with the letter O and the digit 0 treated as one character."""
    return normalize(read).replace("O", "0") == normalize(label).replace("O", "0")


def read_labels(folder: Path) -> dict[str, str]:
    """``labels.csv`` (``file,text``) from ``folder`` or its parent: file name -> text."""
    for cand in (folder / "labels.csv", folder.parent / "labels.csv"):
        if cand.is_file():
            try:
                with cand.open(newline="", encoding="utf-8") as fh:
                    reader = csv.DictReader(fh)
                    if not reader.fieldnames or not {"file", "text"} <= set(reader.fieldnames):
                        raise NicvizError(f"{cand.name}: needs the columns file,text")
                    return {str(row["file"]): normalize(row["text"] or "") for row in reader if row.get("file")}
            except UnicodeDecodeError:
                raise NicvizError(f"{cand.name}: not UTF-8 text (save it as UTF-8 CSV with the columns file,text)") \
                    from None
            except csv.Error as exc:
                raise NicvizError(f"{cand.name}: not a readable CSV file ({exc})") from None
    raise FileNotFoundError(f"no labels.csv (file,text) in {folder} or its parent")


def diff_html(label: str, read: str) -> str:
    """``read`` as HTML with the characters that differ from ``label`` highlighted
    (substituted and inserted in red, a red gap where a label character is missing);
    "(nothing read)" when OCR read nothing."""
    import html

    label, read = normalize(label), normalize(read)
    if not read:  # OCR found no text: say so, never draw letters or an empty box
        return '<span style="font-style:italic;color:#b00">(nothing read)</span>'
    wrong: set[int] = set()
    gaps: set[int] = set()
    for op in Levenshtein.editops(label, read):
        if op.tag in ("replace", "insert"):
            wrong.add(op.dest_pos)
        elif op.tag == "delete":
            gaps.add(op.dest_pos)
    out = []
    for i, ch in enumerate(read + " "):
        if i in gaps:
            out.append('<span style="background:#d33;color:#fff">&nbsp;</span>')
        if i < len(read):
            c = html.escape(ch)
            out.append(f'<span style="background:#d33;color:#fff">{c}</span>' if i in wrong else c)
    text = "".join(out)
    return f'<span style="font-family:monospace;font-size:1.3em">{text}</span>'
