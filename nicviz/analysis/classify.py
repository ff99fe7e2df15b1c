"""Classification under compression: accuracy drop with an exact paired interval that
agrees with McNemar's exact test, per-class recall, confusion matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nicviz.analysis.ocr import as_bool

__all__ = ["accuracy_won_back", "MALIGNANT", "class_outcomes", "most_informative", "mcnemar_exact", "exact_drop_ci", "bootstrap_drop_ci", "classification_summary", "per_class_recall", "confusion",
           "bpp_where_drop_exceeds"]


def mcnemar_exact(correct_ref: np.ndarray, correct: np.ndarray) -> float:
    """McNemar's exact test (two-sided binomial test on the discordant pairs).

    McNemar, Psychometrika 12(2), 1947; exact form as in Edwards (1948).
    Returns 1.0 when no image changed outcome.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_ref, dtype=bool)
    b = np.asarray(correct, dtype=bool)
    lost, gained = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if lost + gained == 0:
        return 1.0
    return float(binomtest(min(lost, gained), lost + gained, 0.5).pvalue)


def exact_drop_ci(correct_ref: np.ndarray, correct: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Exact conditional interval of the paired accuracy drop (points), consistent with
    :func:`mcnemar_exact`: given the n images that changed outcome, the share lost
    among them, theta, has a Clopper-Pearson interval (Clopper & Pearson, Biometrika
    1934), and the drop is ``n * (2 theta - 1) / N``. For the symmetric null theta = 1/2
    the interval excludes 0 exactly when McNemar's exact two-sided p < 1 - level, so the
    interval and the test never disagree."""
    from scipy.stats import binomtest

    a = np.asarray(correct_ref, dtype=bool)
    b = np.asarray(correct, dtype=bool)
    lost, gained = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n, total = lost + gained, len(a)
    if n == 0:
        return 0.0, 0.0
    ci = binomtest(lost, n, 0.5).proportion_ci(confidence_level=level, method="exact")
    return 100 * n * (2 * ci.low - 1) / total, 100 * n * (2 * ci.high - 1) / total


def bootstrap_drop_ci(correct_ref: np.ndarray, correct: np.ndarray, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the accuracy drop (reference minus compressed, in points),
    resampling images with their paired outcomes."""
    a = np.asarray(correct_ref, dtype=float)
    b = np.asarray(correct, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    drops = 100 * (a[idx].mean(axis=1) - b[idx].mean(axis=1))
    lo, hi = np.percentile(drops, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _accuracy_ci(correct: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of an accuracy, in percent (Clopper & Pearson, 1934)."""
    from scipy.stats import binomtest

    ci = binomtest(int(np.sum(correct)), len(correct)).proportion_ci(confidence_level=level, method="exact")
    return 100 * ci.low, 100 * ci.high


def _bools(s: pd.Series) -> np.ndarray:
    return as_bool(s).astype(float).to_numpy() == 1.0


def classification_summary(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per codec and quality: accuracy (compressed and uncompressed), accuracy drop in points
    with its exact 95 % paired CI (:func:`exact_drop_ci`), McNemar's exact p, macro-F1, Cohen's kappa, prediction flip
    rate, top-5 overlap and mean confidence change. Unlabelled rows give consistency only."""
    from sklearn.metrics import cohen_kappa_score, f1_score

    rows = []
    for (codec, quality), g in df.groupby(["codec", "quality"]):
        rec = {"codec": codec, "quality": quality, "images": int(g["image"].nunique()), "bpp": g["bpp"].mean(),
               "flips": int(as_bool(g["flip"]).astype(float).sum()),
               "flip_rate": float(as_bool(g["flip"]).astype(float).mean()),
               "top5_overlap": float(g["top5_overlap"].astype(float).mean()),
               "confidence_change": float(g["confidence_change"].astype(float).mean())}
        if "psnr" in g:
            rec["psnr"] = g["psnr"].mean()
        labelled = g[g["label"].notna()] if "label" in g else g.iloc[0:0]
        if len(labelled):
            c, c_ref = _bools(labelled["correct"]), _bools(labelled["correct_ref"])
            y = labelled["label"].astype(str)
            rec.update({
                "accuracy": 100 * c.mean(), "accuracy_ref": 100 * c_ref.mean(),
                "drop": 100 * (c_ref.mean() - c.mean()),
                "macro_f1": f1_score(y, labelled["pred"].astype(str), average="macro", labels=sorted(y.unique()),
                                     zero_division=0),
                "kappa": cohen_kappa_score(y, labelled["pred"].astype(str)),
                "mcnemar_p": mcnemar_exact(c_ref, c),
            })
            rec["drop_lo"], rec["drop_hi"] = exact_drop_ci(c_ref, c)
            rec["accuracy_lo"], rec["accuracy_hi"] = _accuracy_ci(c)
        rows.append(rec)
    return pd.DataFrame(rows).sort_values(["codec", "quality"]).reset_index(drop=True)


def per_class_recall(df: pd.DataFrame, pred_col: str = "pred") -> pd.Series:
    """Recall per true class (share of each class's images predicted as that class)."""
    d = df[df["label"].notna()]
    return (d[pred_col].astype(str) == d["label"].astype(str)).groupby(d["label"].astype(str)).mean()


def confusion(df: pd.DataFrame, pred_col: str = "pred") -> pd.DataFrame:
    """Confusion matrix: rows are true classes, columns predicted classes (counts)."""
    d = df[df["label"].notna()]
    return pd.crosstab(d["label"].astype(str), d[pred_col].astype(str), rownames=["true"], colnames=["predicted"])


def bpp_where_drop_exceeds(summary: pd.DataFrame, points: float = 5.0) -> dict[str, float | None]:
    """Per codec, the highest measured bpp at which the accuracy drop exceeds ``points``
    (``None`` when it never does): below that rate the codec costs more than ``points``."""
    out: dict[str, float | None] = {}
    for codec, g in summary.groupby("codec"):
        bad = g[g["drop"] > points] if "drop" in g else g.iloc[0:0]
        out[codec] = float(bad["bpp"].max()) if len(bad) else None
    return out


#: skin-lesion classes a clinician reads first (malignant or pre-malignant)
MALIGNANT = ("melanoma", "basal cell carcinoma", "squamous cell carcinoma", "actinic keratosis")


def class_outcomes(rows: pd.DataFrame) -> pd.DataFrame:
    """Per true class of one codec and quality: images, recognised on the originals and
    after compression, and the most frequent wrong diagnosis after compression. Malignant
    classes (:data:`MALIGNANT`) come first."""
    out = []
    for label, g in rows[rows["label"].notna()].groupby(rows["label"].astype(str)):
        pred, pred_ref = g["pred"].astype(str), g["pred_ref"].astype(str)
        wrong = pred[pred != label].value_counts()
        out.append({"class": label, "images": len(g), "recognised_ref": int((pred_ref == label).sum()),
                    "recognised": int((pred == label).sum()),
                    "called_instead": wrong.index[0] if len(wrong) else "", "called_instead_n": int(wrong.iloc[0]) if len(wrong) else 0,
                    "malignant": label in MALIGNANT})
    df = pd.DataFrame(out)
    if df.empty:
        return df
    df["order"] = [MALIGNANT.index(c) if c in MALIGNANT else len(MALIGNANT) for c in df["class"]]
    return df.sort_values(["order", "class"]).drop(columns="order").reset_index(drop=True)


def most_informative(summary: pd.DataFrame, prefer: str = "jpeg", points: float = 5.0) -> tuple[str, float]:
    """The (codec, quality) a summary should open on: for ``prefer`` (else the first
    codec), the highest rate at which accuracy drops by more than ``points``; without
    one, its lowest rate."""
    codec = prefer if prefer in set(summary["codec"]) else str(sorted(summary["codec"].unique())[0])
    rows = summary[summary["codec"] == codec].sort_values("bpp")
    over = rows[rows["drop"] > points] if "drop" in rows else rows.iloc[0:0]
    r = over.iloc[-1] if len(over) else rows.iloc[0]
    return codec, r["quality"]


def accuracy_won_back(df: pd.DataFrame, standard_task: str, other_task: str, points: float = 5.0) -> pd.DataFrame:
    """Per codec, at the rate where the standard classifier first loses more than ``points``
    (its highest measured bpp with a larger drop): each classifier's drop against its own
    accuracy on the originals (exact paired interval, McNemar p) and the accuracy the
    other classifier wins back on the same compressed images (``won_back`` = its accuracy
    minus the standard's; exact paired interval and McNemar p between the two)."""
    std = df[df["task"].astype(str) == standard_task]
    oth = df[df["task"].astype(str) == other_task]
    rows = []
    for codec, g in std.groupby("codec"):
        table = classification_summary(g)
        bad = table[table["drop"] > points]
        if bad.empty:
            continue
        q = bad.sort_values("bpp").iloc[-1]["quality"]
        a = g[g.quality == q].set_index("image")
        b = oth[(oth.codec == codec) & (oth.quality == q)].set_index("image")
        common = a.index.intersection(b.index)
        if not len(common):
            continue
        a, b = a.loc[common], b.loc[common]
        ca, ca_ref, cb, cb_ref = (_bools(x) for x in (a["correct"], a["correct_ref"], b["correct"], b["correct_ref"]))
        rec = {"codec": codec, "quality": q, "bpp": float(a["bpp"].mean()), "images": int(len(common)),
               "standard_ref": 100 * ca_ref.mean(), "standard": 100 * ca.mean(),
               "standard_drop": 100 * (ca_ref.mean() - ca.mean()), "standard_p": mcnemar_exact(ca_ref, ca),
               "other_ref": 100 * cb_ref.mean(), "other": 100 * cb.mean(),
               "other_drop": 100 * (cb_ref.mean() - cb.mean()), "other_p": mcnemar_exact(cb_ref, cb),
               "won_back": 100 * (cb.mean() - ca.mean()), "won_back_p": mcnemar_exact(ca, cb)}
        rec["standard_drop_lo"], rec["standard_drop_hi"] = exact_drop_ci(ca_ref, ca)
        rec["other_drop_lo"], rec["other_drop_hi"] = exact_drop_ci(cb_ref, cb)
        rec["won_back_lo"], rec["won_back_hi"] = exact_drop_ci(cb, ca)
        rows.append(rec)
    return pd.DataFrame(rows)
