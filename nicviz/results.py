"""The one result-row format shared by sweeps, reports, plots and the app.

Rows are identified by :data:`KEY` = ``(dataset, image, codec, quality, task)``.
Files are CSV or Parquet (by suffix); run metadata lives beside them in
``<file>.meta.json`` and bad inputs in ``<file>.errors.csv``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from importlib import metadata as _md
from pathlib import Path

import pandas as pd

from nicviz.errors import NicvizError
from nicviz.metrics import METRICS
from nicviz.paths import atomic_write, atomic_write_text, data_root, results_dir

__all__ = [
    "portable_root",
    "dataset_folder",
    "KEY",
    "COLUMNS",
    "read_results",
    "complete_rows",
    "write_results",
    "meta_path",
    "errors_path",
    "run_metadata",
    "write_json_atomic",
    "list_result_files",
]

KEY = ("dataset", "image", "codec", "quality", "task")
COLUMNS = (
    "dataset", "image", "codec", "quality", "task", "width", "height", "bytes", "bpp",
    "encode_s", "decode_s", "metrics_s", "rate_mode", *METRICS,
)

_PACKAGES = ("nicviz", "numpy", "pillow", "torch", "compressai", "scikit-image",
             "pytorch-msssim", "scipy", "pandas", "pillow-heif", "pillow-jxl-plugin")


def meta_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".meta.json")


def errors_path(path: str | os.PathLike) -> Path:
    return Path(str(path) + ".errors.csv")


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise NicvizError(f"{path}: results file must end in .csv or .parquet")
    return suffix


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results file (CSV or Parquet); CSV numbers are parsed exactly (``round_trip``), so
    a file read and written again, as a resumed or growing sweep does, keeps its values."""
    p = Path(path)
    suffix = _check_suffix(p)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such results file")
    try:
        if suffix == ".parquet":
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p, keep_default_na=True, float_precision="round_trip")
    except (ValueError, UnicodeDecodeError, OSError) as exc:  # pandas' ParserError is a ValueError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NicvizError(f"{p}: cannot be read as a results file ({first}); it was left untouched") from None
    missing = [c for c in ("codec", "quality", "bpp") if c not in df.columns]
    if missing:
        raise NicvizError(f"{p}: not a nicviz results file (missing {', '.join(missing)})")
    return df


def complete_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a resumed sweep may keep: key, rate and rate mode present and ``bpp``
    a number (a row cut by a torn write has them missing). The rest is recomputed."""
    need = [c for c in (*KEY, "bytes", "bpp", "rate_mode") if c in df.columns]
    ok = df[need].notna().all(axis=1) & pd.to_numeric(df["bpp"], errors="coerce").notna()
    return df[ok]


def write_results(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write atomically (temporary file + rename), columns in :data:`COLUMNS` order first."""
    p = Path(path)
    suffix = _check_suffix(p)
    cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    df = df[cols]
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        atomic_write(p, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        atomic_write(p, lambda tmp: df.to_csv(tmp, index=False))


def write_json_atomic(obj: object, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def _version(pkg: str) -> str | None:
    try:
        return _md.version(pkg)
    except _md.PackageNotFoundError:
        return None


def run_metadata(command: list[str] | None = None, **extra: object) -> dict:
    """Versions, platform, date and command of this run."""
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in _PACKAGES},
        **extra,
    }


def list_result_files(task: str | None = None) -> list[Path]:
    """Results files (CSV or Parquet with a ``.meta.json``, as sweeps write them) below
    :func:`results_dir`, optionally only those whose metadata names ``task`` or
    ``task:<variant>``."""
    root = results_dir()
    if not root.is_dir():
        return []
    files = sorted(p for p in root.rglob("*") if p.suffix in (".csv", ".parquet")
                   and not p.name.endswith(".errors.csv") and meta_path(p).is_file())
    if task is None:
        return files
    out = []
    for p in files:
        meta = meta_path(p)
        try:
            t = json.loads(meta.read_text()).get("task", "rd")
        except (OSError, json.JSONDecodeError):
            t = "rd"
        if any(n == task or n.startswith(task + ":") for n in str(t).split(",")):
            out.append(p)
    return out


def portable_root(root: str | os.PathLike) -> tuple[str, str]:
    """``(dataset_root, dataset_root_base)`` for the metadata: a folder inside the data
    root is stored relative to it (base ``"data root"``), so shipped results name no
    machine's paths; any other folder is stored as it is (base ``"absolute"``)."""
    root = Path(root).resolve()
    base = data_root()
    if base is not None:
        try:
            return root.relative_to(base.resolve()).as_posix() or ".", "data root"
        except ValueError:
            pass
    return str(root), "absolute"


def dataset_folder(meta: dict) -> Path | None:
    """The image folder a results file was computed on, on this machine (``None`` when
    it is not here)."""
    root = meta.get("dataset_root")
    if not root:
        return None
    if meta.get("dataset_root_base") == "data root" or not Path(root).is_absolute():
        base = data_root()
        folder = base / root if base is not None else None
    else:
        folder = Path(root)
    return folder if folder is not None and folder.is_dir() else None
