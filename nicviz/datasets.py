"""Named datasets, image folders and the data root setting.

The data root is, in order: an explicit ``data_root`` argument (``--data``), the
``NICVIZ_DATA`` environment variable, then ``../shared/data`` next to the checkout
when it exists. Known names resolve below it; anything else is taken as a folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
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

    def sample(self, n: int | None, seed: int = 0) -> Dataset:
        """At most ``n`` of its images, drawn at random with ``seed`` (so every class of a
        labelled folder can appear), in file order; all of them for ``n`` None or 0."""
        if not n or n >= len(self.files):
            return self
        if n < 0:
            raise DatasetError(f"the number of images must be positive, not {n}")
        import numpy as np

        keep = np.sort(np.random.default_rng(seed).choice(len(self.files), n, replace=False))
        return replace(self, files=tuple(self.files[i] for i in keep))


#: image types nicviz does not read: a sweep lists these files in its errors file
UNSUPPORTED_SUFFIXES = {".gif", ".svg", ".heic", ".heif", ".avif", ".jxl", ".ico", ".psd", ".dng", ".cr2", ".nef"}


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted, hidden files skipped)."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def resolve_dataset(spec: str, data: str | os.PathLike | None = None, confined: bool = False) -> Dataset:
    """A known dataset name (see :data:`KNOWN_DATASETS`) or a folder path; ``confined`` (a
    folder a dashboard user chose) leaves out files and links that resolve outside it."""
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
    if confined:
        real = folder.resolve()
        files = [p for p in files if _inside(p, real)]
    if not files:
        raise DatasetError(f"{folder}: no image files found")
    unsupported = tuple(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in UNSUPPORTED_SUFFIXES
                               and not any(part.startswith(".") for part in p.relative_to(folder).parts)))
    return Dataset(name=name, root=folder, files=tuple(files), unsupported=unsupported)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError, RuntimeError):
        return False
    return True


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


def dataset_from_uploads(files: list[tuple[str, bytes]], folder: str | os.PathLike, max_files: int = 500,
                         max_bytes: int = 512 << 20, ignored: list[str] | None = None) -> Dataset:
    """A dataset from uploaded files: images, or zip archives of images (class
    sub-folders inside a zip are kept as labels). Names are reduced to safe relative
    paths (no ``..``, no absolute paths, no hidden parts); other members are ignored;
    more than ``max_files`` images or ``max_bytes`` in all is a one-line error. The names
    of the files left out are appended to ``ignored`` when given (a page says which)."""
    import io
    import re
    import zipfile

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    count, total = 0, 0

    def safe(name: str) -> Path | None:
        parts = [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]
        if not parts or any(p == ".." or p.startswith(".") for p in parts):
            return None
        parts = [re.sub(r"[^A-Za-z0-9._ -]", "_", p)[:120] for p in parts]
        if len(parts) > 8 or sum(len(p) + 1 for p in parts) > 400:
            return None  # deeper or longer than any real dataset layout
        return Path(*parts) if Path(parts[-1]).suffix.lower() in IMAGE_SUFFIXES else None

    def add(rel: Path, data: bytes, shown: str) -> None:
        nonlocal count, total
        count, total = count + 1, total + len(data)
        if count > max_files:
            raise DatasetError(f"more than {max_files} images uploaded; use the command line for larger sweeps")
        if total > max_bytes:
            raise DatasetError(f"the upload is larger than {max_bytes >> 20} MB")
        target = out / rel
        try:
            if target.exists() or any((out / Path(*rel.parts[:i])).is_file() for i in range(1, len(rel.parts))):
                raise FileExistsError
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError:  # a file and a folder of one name, a path too long: the user's name only
            raise DatasetError(f"{shown}: cannot be unpacked (two members share a name, a file and a folder "
                               "share a name, or the path is too long)") from None

    for name, data in files:
        if name.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    members = [(info, safe(info.filename)) for info in zf.infolist() if not info.is_dir()]
                    if ignored is not None:
                        ignored.extend(f"{name}: {info.filename[:80]}" for info, rel in members if rel is None)
                    # images only: never inflated
                    kept: list[tuple[zipfile.ZipInfo, Path]] = [(i, r) for i, r in members if r is not None]
                    unpacked = sum(info.file_size for info, _ in kept)
                    if unpacked > max_bytes - total:
                        raise DatasetError(f"{name}: the archive unpacks to more than {max_bytes >> 20} MB")
                    for info, rel in kept:
                        add(rel, zf.read(info), f"{name}: {info.filename[:80]}")
            except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError):
                raise DatasetError(f"{name}: not a readable zip archive") from None
        else:
            single = safe(name)
            if single is not None:
                add(single, data, name[:80])
            elif ignored is not None:
                ignored.append(name[:80])
    if count == 0:
        raise DatasetError("no image files among the uploads (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ", or a zip of them)")
    return resolve_dataset(str(out))
