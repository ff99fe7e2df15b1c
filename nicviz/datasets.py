"""Named datasets, image folders and the data root setting.

The data root is, in order: an explicit ``data_root`` argument (``--data``), the
``NICVIZ_DATA`` environment variable, then ``../shared/data`` next to the checkout
when it exists. Known names resolve below it; anything else is taken as a folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nicviz.errors import NicvizError
from nicviz.images import IMAGE_SUFFIXES
from nicviz.paths import data_root

__all__ = [
    "BUILTIN_SAMPLES",
    "Dataset",
    "DatasetError",
    "KNOWN_DATASETS",
    "builtin_sample",
    "data_root",
    "list_images",
    "resolve_dataset",
    "write_builtin_samples",
]

#: Known dataset names and their folder below the data root.
KNOWN_DATASETS: dict[str, str] = {
    "kodak": "kodak",
    "isic-test": "isic/test",
    "isic-train": "isic/train",
    "isic-fullres-test": "isic_fullres/test",
    "isic-fullres": "isic_fullres",
    "plates": "plates/images",
}

class DatasetError(NicvizError):
    """A dataset name or folder that cannot be used."""


@dataclass(frozen=True)
class Dataset:
    """A named, ordered list of image files under ``root``."""

    name: str
    root: Path
    files: tuple[Path, ...]
    #: image files of a type nicviz does not read (listed as errors by a sweep)
    unsupported: tuple[Path, ...] = ()

    def image_id(self, path: Path) -> str:
        """The ``image`` column: the path relative to the dataset root, with ``/``."""
        return path.relative_to(self.root).as_posix()


#: image types nicviz does not read: a sweep lists these files in its errors file
UNSUPPORTED_SUFFIXES = {".gif", ".svg", ".heic", ".heif", ".avif", ".jxl", ".ico", ".psd", ".dng", ".cr2", ".nef"}


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files skipped)."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def resolve_dataset(spec: str, data: str | os.PathLike | None = None) -> Dataset:
    """A known dataset name (see :data:`KNOWN_DATASETS`) or a folder path."""
    if spec in KNOWN_DATASETS:
        root = data_root(data)
        if root is None:
            raise DatasetError(
                f"dataset {spec!r} needs a data folder: pass --data or set NICVIZ_DATA")
        folder = root / KNOWN_DATASETS[spec]
        name = spec
    else:
        folder = Path(spec).expanduser()
        name = folder.resolve().name if folder.exists() else spec
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such dataset folder")
    files = list_images(folder)
    if not files:
        raise DatasetError(f"{folder}: no image files found")
    unsupported = tuple(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in UNSUPPORTED_SUFFIXES
                               and not any(part.startswith(".") for part in p.relative_to(folder).parts)))
    return Dataset(name=name, root=folder, files=tuple(files), unsupported=unsupported)


#: Photographs shipped inside scikit-image, usable with no data folder.
BUILTIN_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def builtin_sample(name: str):
    """A built-in photograph (from scikit-image's package data) as uint8 RGB."""
    import numpy as np
    import skimage.data

    if name not in BUILTIN_SAMPLES:
        raise DatasetError(f"unknown sample {name!r}; choose from {', '.join(BUILTIN_SAMPLES)}")
    arr = getattr(skimage.data, name)()
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3].astype(np.uint8))


def write_builtin_samples(folder: str | os.PathLike, names: tuple[str, ...] = BUILTIN_SAMPLES) -> Dataset:
    """Write the built-in photographs as PNG files into ``folder`` and return that dataset."""
    from PIL import Image

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    for n in names:
        target = root / f"{n}.png"
        if not target.exists():
            Image.fromarray(builtin_sample(n)).save(target)
    return resolve_dataset(str(root))
