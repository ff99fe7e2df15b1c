"""The ISIC 9-class set: class folders, label-noise cleaning and the held-out split.

Cleaning with ``duplicates.csv`` (see the data folder's README):

* a train file whose name also appears in ``test`` is dropped (leakage);
* a name in both ``train/actinic keratosis`` and ``train/nevus``: the nevus copy is
  dropped (HAM10000's metadata labels these images ``akiec``);
* a name in both ``train/melanoma`` and ``train/seborrheic keratosis``: both copies are
  dropped (which label is right is unknown);
* byte-identical files under two names: the longer (or later) name is dropped, so
  ``ISIC_0025509.jpg`` stays and ``ISIC_0025509(1).jpg`` goes.

The held-out split is a stratified 15 % of the cleaned training set drawn with a fixed
seed; it is never trained on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nicviz.datasets import list_images

__all__ = ["LabelledImage", "labelled_folder", "clean_train", "holdout_split", "ISIC_CLASSES"]

ISIC_CLASSES = (
    "actinic keratosis", "basal cell carcinoma", "dermatofibroma", "melanoma", "nevus",
    "pigmented benign keratosis", "seborrheic keratosis", "squamous cell carcinoma", "vascular lesion",
)


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    label: str

    @property
    def key(self) -> str:
        """``<class folder>/<file>``, as in ``duplicates.csv`` without the split."""
        return f"{self.label}/{self.path.name}"


def labelled_folder(folder: Path) -> list[LabelledImage]:
    """Images in class sub-folders: the label is the name of the folder holding the file."""
    return [LabelledImage(p, p.parent.name) for p in list_images(folder) if p.parent != folder]


def clean_train(isic_root: Path) -> tuple[list[LabelledImage], dict[str, int]]:
    """The cleaned training list and how many files each rule dropped."""
    train = labelled_folder(isic_root / "train")
    dup_file = isic_root / "duplicates.csv"
    drop: dict[str, str] = {}
    if dup_file.is_file():
        with dup_file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                files = [f.strip() for f in row["files"].split("|")]
                trains = [f for f in files if f.startswith("train/")]
                if row["kind"] == "identical_bytes_different_name":
                    for f in sorted(trains, key=lambda n: (len(n), n))[1:]:  # keep the plain name
                        drop[f.removeprefix("train/")] = "identical bytes, second name"
                    continue
                if any(f.startswith("test/") for f in files):
                    for f in trains:
                        drop[f.removeprefix("train/")] = "also in test"
                    continue
                labels = {f.split("/")[1] for f in trains}
                if labels == {"actinic keratosis", "nevus"}:
                    for f in trains:
                        if f.split("/")[1] == "nevus":
                            drop[f.removeprefix("train/")] = "nevus copy of an actinic keratosis"
                else:
                    for f in trains:
                        drop[f.removeprefix("train/")] = "same image under two labels"
    kept = [x for x in train if x.key not in drop]
    counts: dict[str, int] = {}
    for reason in drop.values():
        counts[reason] = counts.get(reason, 0) + 1
    return kept, counts


def holdout_split(items: list[LabelledImage], fraction: float = 0.15, seed: int = 0
                  ) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """Stratified ``(train, held_out)`` split with a fixed seed."""
    from sklearn.model_selection import train_test_split

    labels = [x.label for x in items]
    tr, ho = train_test_split(items, test_size=fraction, random_state=seed, stratify=labels)
    return list(tr), list(ho)
