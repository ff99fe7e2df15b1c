"""The ``classify`` sweep task: classify the original and each reconstruction.

Task names: ``classify`` (the built-in ISIC classifier), ``classify:imagenet-effnet-lite0``
(general ImageNet classifier, for prediction consistency on unlabelled folders) or
``classify:keras:<path>``. Labels come from class sub-folders whose names are classes
of the classifier; folders without them are unlabelled (consistency only).
"""

from __future__ import annotations

import json

import numpy as np

from nicviz.datasets import Dataset
from nicviz.tasks.classify.models import get_classifier

__all__ = ["ClassifyTask", "DEFAULT_CLASSIFIER"]

DEFAULT_CLASSIFIER = "isic-effnet-lite0"


class ClassifyTask:
    def __init__(self, classifier: str = DEFAULT_CLASSIFIER) -> None:
        self.classifier_spec = classifier
        self.name = "classify" if classifier == DEFAULT_CLASSIFIER else f"classify:{classifier}"

    @property
    def classifier(self):
        return get_classifier(self.classifier_spec)

    def labels(self, dataset: Dataset) -> dict[str, str]:
        classes = set(self.classifier.classes)
        out = {}
        for path in dataset.files:
            if path.parent != dataset.root and path.parent.name in classes:
                out[dataset.image_id(path)] = path.parent.name
        return out

    def _own(self, label: str | None) -> str | None:
        """``label`` if it is one of this classifier's classes (a sweep with several
        classifiers labels images by the first one's classes), else ``None``."""
        return label if label in self.classifier.classes else None

    def _outcome(self, rgb: np.ndarray, label: str | None) -> dict:
        clf = self.classifier
        label = self._own(label)
        p = clf.predict_proba([rgb])[0]
        top = np.argsort(-p)[:5]
        pred = clf.classes[int(top[0])]
        out = {"pred": pred, "confidence": float(p[top[0]]), "top5": json.dumps([int(i) for i in top])}
        if label is not None:
            out["correct"] = pred == label
            out["p_label"] = float(p[clf.classes.index(label)])
        return out

    def reference(self, rgb: np.ndarray, label: str | None) -> dict:
        return {f"{k}_ref": v for k, v in self._outcome(rgb, label).items()}

    def compare(self, recon: np.ndarray, label: str | None, ref: dict) -> dict:
        out = self._outcome(recon, label)
        top, top_ref = json.loads(out["top5"]), json.loads(ref["top5_ref"])
        return {"label": self._own(label), **out, **ref, "classifier": self.classifier_spec,
                "flip": out["pred"] != ref["pred_ref"],
                "top5_overlap": len(set(top) & set(top_ref)) / 5.0,
                "confidence_change": out["confidence"] - ref["confidence_ref"]}
