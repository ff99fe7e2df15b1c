"""The clinician's sentences: one sign, "we cannot tell" when the interval spans zero,
grammar of counts, rounded p-values, and the strong warning for a missed malignant class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nicviz.analysis import classification_summary
from nicviz.analysis.wording import count, originals_sentence, p_text, plain_summary, verdict

CLASSES = ["actinic keratosis", "basal cell carcinoma", "dermatofibroma", "melanoma", "nevus",
           "pigmented benign keratosis", "seborrheic keratosis", "squamous cell carcinoma", "vascular lesion"]


def probs(**by_class: float) -> np.ndarray:
    p = np.array([by_class.get(c.replace(" ", "_"), 0.0) for c in CLASSES])
    rest = 1.0 - p.sum()
    free = p == 0
    p[free] = rest / free.sum()
    return p


def test_a_melanoma_called_nevus_after_compression_is_a_strong_warning():
    v = verdict(CLASSES, probs(melanoma=0.62, nevus=0.2), probs(melanoma=0.3, nevus=0.55))
    assert v.level == "error" and v.headline.startswith("Missed melanoma")
    text = " ".join(v.details)
    assert "Original: **melanoma** (62 %)" in text and "Compressed: **nevus** (55 %)" in text
    assert "fell from 62 % to 30 % (32 points)" in text


def test_a_malignant_probability_falling_more_than_15_points_warns_even_with_the_same_diagnosis():
    v = verdict(CLASSES, probs(nevus=0.5, melanoma=0.4), probs(nevus=0.7, melanoma=0.2))
    assert v.level == "error" and "melanoma much less likely (20 points lower)" in v.headline
    small = verdict(CLASSES, probs(nevus=0.5, melanoma=0.4), probs(nevus=0.55, melanoma=0.3))
    assert small.level == "success"  # 10 points: below the warning threshold


def test_a_rising_malignant_probability_and_a_benign_change_are_named():
    # the case: cheng2020-anchor-mini q2 moved melanoma from 42 % to 71 %
    rise = verdict(CLASSES, probs(melanoma=0.42, nevus=0.3), probs(melanoma=0.71, nevus=0.1))
    assert rise.level == "warning" and "melanoma became much more likely (29 points higher)" in rise.headline
    benign = verdict(CLASSES, probs(nevus=0.5, dermatofibroma=0.3), probs(nevus=0.3, dermatofibroma=0.5))
    assert benign.level == "warning" and "nevus on the original, dermatofibroma after compression" in benign.headline


def test_the_true_diagnosis_decides_a_miss_when_known():
    v = verdict(CLASSES, probs(melanoma=0.6), probs(melanoma=0.4, nevus=0.45), truth="melanoma")
    assert v.level == "error" and "recognised on the original, called nevus after compression" in v.headline
    assert "the original is diagnosed correctly, the compressed image is not" in v.details[0]
    both_wrong = verdict(CLASSES, probs(nevus=0.6), probs(nevus=0.62), truth="melanoma")
    assert both_wrong.level == "success" and "neither image is diagnosed correctly" in both_wrong.details[0]


def _rows(pairs: list[tuple[str, str, str]], quality: int = 10) -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "d", "image": f"{k}.png", "codec": "jpeg", "quality": quality,
                          "task": "classify", "bpp": 0.2, "label": lab, "pred_ref": ref, "pred": pred,
                          "correct_ref": ref == lab, "correct": pred == lab, "flip": ref != pred,
                          "top5_overlap": 1.0, "confidence_change": 0.0} for k, (lab, ref, pred) in enumerate(pairs)])


def test_a_significant_drop_keeps_one_sign():
    rows = _rows([("nevus", "nevus", "melanoma")] * 12 + [("nevus", "nevus", "nevus")] * 8)
    r = classification_summary(rows).iloc[0]
    text = plain_summary(r, rows)
    assert r["drop_lo"] > 0
    assert f"a drop of {r['drop']:.1f} points (95 % interval: a drop of {r['drop_lo']:.1f} to" in text
    assert "p < 0.001" in text and "-" not in text.split("Accuracy")[1].split("(95")[0]


def test_an_interval_spanning_zero_says_we_cannot_tell():
    # the case: 16 of 64 diagnoses changed, yet McNemar cannot call the change
    pairs = ([("nevus", "nevus", "melanoma")] * 9 + [("nevus", "melanoma", "nevus")] * 7
             + [("nevus", "nevus", "nevus")] * 48)
    rows = _rows(pairs)
    r = classification_summary(rows).iloc[0]
    text = plain_summary(r, rows)
    assert r["drop_lo"] < 0 < r["drop_hi"]
    assert "we cannot tell" in text and "not evidence that it is safe" in text
    assert "not a statistically significant" not in text
    assert "16 of 64 images got a different diagnosis" in text
    # both accuracies to the change's own precision (54 % to 57 % read as 3 points beside "2.5 points")
    assert "Accuracy went from **89.1 %** to **85.9 %** (a drop of 3.1 points)" in text


def test_counts_have_their_grammar_and_p_values_are_rounded():
    assert count(1, "image") == "1 image" and count(2, "image") == "2 images"
    assert count(1, "melanoma") == "1 melanoma" and count(3, "actinic keratosis") == "3 actinic keratoses"
    assert count(2, "nevus") == "2 nevi"
    assert p_text(6.9e-08) == "p < 0.001" and p_text(0.0312) == "p = 0.03" and p_text(0.0042) == "p = 0.004"
    rows = _rows([("melanoma", "melanoma", "nevus")])  # one image, one melanoma called nevus
    r = classification_summary(rows).iloc[0]
    text = plain_summary(r, rows)
    assert "The 1 melanoma was not recognised (1 on the originals)" in text
    assert "1 was called nevus" in text and "1 of 1 image got" in text and "1 were" not in text
    assert "with 1 image **we cannot tell**" in text
    # the sentences after the list of malignant classes are a paragraph of their own (a blank
    # line), not a continuation of the list's last item (as the page once drew them)
    listed, _, after = text.partition("- The 1 melanoma")[2].partition("\n\n")
    assert after.startswith("Accuracy") and "Accuracy" not in listed


def test_originals_sentence_counts_the_malignant_classes_first():
    rows = _rows([("melanoma", "melanoma", "nevus")] * 4 + [("melanoma", "nevus", "nevus")] * 12
                 + [("nevus", "nevus", "nevus")] * 5)
    assert originals_sentence(rows) == ("Even on the original, uncompressed images the model recognises 4 of "
                                        "16 melanomas; and 5 of the other 5 images.")


@pytest.mark.parametrize("p", [float("nan"), None])
def test_a_missing_p_value_is_said(p):
    assert p_text(p) == "p not available"


def test_one_interval_format_for_pages_and_terminal():
    from nicviz.analysis.wording import interval_text

    assert interval_text(-0.64, 16.44) == "-0.6 to 16.4" and interval_text(3.0) == "3.0"
    assert interval_text(-0.64, 16.44, terminal=True) == "[-0.6, +16.4]"
    nan = float("nan")
    assert interval_text(nan, 1.0) == "n/a" and interval_text(nan, 1.0, terminal=True) == "[no interval]"
