"""Plate OCR: baseline reading and improved / worsened / unchanged shares per codec and quality."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["as_bool", "ocr_baseline", "ocr_summary", "cer_improved", "cer_worsened", "select_plates", "PLATE_SELECTIONS"]

#: the plate selections of :func:`select_plates`
PLATE_SELECTIONS = ("worsened", "improved", "changed reading", "all")


def as_bool(s: pd.Series) -> pd.Series:
    return s.map(lambda v: v if isinstance(v, bool) else str(v).strip().lower() == "true" if pd.notna(v) else np.nan)


def ocr_baseline(df: pd.DataFrame) -> dict:
    """Reading of the uncompressed plates (one per image, from the ``*_ref`` columns)."""
    ref = df.groupby("image").first()
    return {
        "plates": int(len(ref)),
        "exact": float(as_bool(ref["exact_ref"]).astype(float).mean()),
        "exact_o0": float(as_bool(ref["exact_o0_ref"]).astype(float).mean()),
        "cer": float(ref["cer_ref"].astype(float).mean()),
        "confidence": float(ref["confidence_ref"].astype(float).mean()),
    }


def cer_improved(df: pd.DataFrame) -> pd.Series:
    """Rows whose character error rate fell against the uncompressed reading."""
    return df["cer"].astype(float) < df["cer_ref"].astype(float) - 1e-12


def cer_worsened(df: pd.DataFrame) -> pd.Series:
    """Rows whose character error rate rose against the uncompressed reading."""
    return df["cer"].astype(float) > df["cer_ref"].astype(float) + 1e-12


def select_plates(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """The rows of ``df`` that are ``worsened`` / ``improved`` (by CER), whose ``changed
    reading`` differs from the uncompressed one, or ``all``."""
    if which == "worsened":
        return df[cer_worsened(df)]
    if which == "improved":
        return df[cer_improved(df)]
    if which == "changed reading":
        return df[df["read"].astype(str) != df["read_ref"].astype(str)]
    if which == "all":
        return df
    raise ValueError(f"unknown plate selection {which!r}; choose from {', '.join(PLATE_SELECTIONS)}")


def ocr_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per codec and quality: bpp, accuracy, CER and the shares of plates improved,
    worsened and unchanged against the uncompressed reading, by exact match and by CER."""
    d = df.copy()
    for c in ("exact", "exact_ref", "exact_o0", "exact_o0_ref"):
        d[c] = as_bool(d[c]).astype(float)
    d["cer"] = d["cer"].astype(float)
    d["cer_ref"] = d["cer_ref"].astype(float)
    d["improved_exact"] = (d["exact"] > d["exact_ref"]).astype(float)
    d["worsened_exact"] = (d["exact"] < d["exact_ref"]).astype(float)
    d["improved_cer"] = cer_improved(d).astype(float)
    d["worsened_cer"] = cer_worsened(d).astype(float)
    g = d.groupby(["codec", "quality"])
    out = g.agg(plates=("image", "nunique"), bpp=("bpp", "mean"), psnr=("psnr", "mean"),
                exact=("exact", "mean"), exact_o0=("exact_o0", "mean"), cer=("cer", "mean"),
                improved_exact=("improved_exact", "mean"), worsened_exact=("worsened_exact", "mean"),
                improved_cer=("improved_cer", "mean"), worsened_cer=("worsened_cer", "mean"))
    out["unchanged_exact"] = 1 - out["improved_exact"] - out["worsened_exact"]
    out["unchanged_cer"] = 1 - out["improved_cer"] - out["worsened_cer"]
    return out.reset_index()
