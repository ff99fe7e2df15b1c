"""Aggregation of result rows, one module per kind of result: :mod:`.rd`
(rate-distortion, BD-rate), :mod:`.ocr` (plates), :mod:`.classify` (classifiers)."""

from nicviz.analysis.classify import (
    bootstrap_drop_ci,
    bpp_where_drop_exceeds,
    classification_summary,
    confusion,
    exact_drop_ci,
    mcnemar_exact,
    per_class_recall,
)
from nicviz.analysis.ocr import ocr_baseline, ocr_summary
from nicviz.analysis.rd import BDResult, bd_rate, compressai_json, load_compressai_json, mean_curve

__all__ = ["mean_curve", "compressai_json", "bd_rate", "BDResult", "load_compressai_json", "ocr_baseline",
           "ocr_summary", "classification_summary", "per_class_recall", "confusion", "mcnemar_exact",
           "bootstrap_drop_ci", "exact_drop_ci", "bpp_where_drop_exceeds"]
