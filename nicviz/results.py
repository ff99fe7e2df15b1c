"""The one result-row format shared by sweeps, reports, plots and the app.

Rows are identified by :data:`KEY` = ``(dataset, image, codec, quality, task)``.
Files are CSV or Parquet (by suffix); run metadata lives beside them in
``<file>.meta.json`` and bad inputs in ``<file>.errors.csv``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import sys
from importlib import metadata as _md
from pathlib import Path

import pandas as pd

from nicviz.errors import NicvizError
from nicviz.metrics import METRICS, get_metric
from nicviz.paths import atomic_write, atomic_write_text, data_root, results_dir

__all__ = [
    "fitting_iterations",
    "fitting_effort",
    "whole_images",
    "portable_root",
    "dataset_folder",
    "KEY",
    "COLUMNS",
    "read_results",
    "complete_rows",
    "integer_columns",
    "INT_COLUMNS",
    "write_results",
    "meta_path",
    "errors_path",
    "run_metadata",
    "write_csv_atomic",
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


#: columns that hold whole numbers (kept integer through every resume)
INT_COLUMNS = ("width", "height", "bytes")


def complete_rows(df: pd.DataFrame, metrics: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows a resumed sweep may keep; the rest is recomputed. A row is kept when every
    expected column is present and parseable: the key, whole positive ``width``/``height``
    and a whole ``bytes``, finite ``bpp`` and timings, ``rate_mode`` one of its values, and
    each metric of ``metrics`` finite (``inf`` for PSNR of identical images; ``nan`` only
    where the image is too small for it)."""
    from nicviz.codecs.base import RATE_MODES

    need = [*KEY, *INT_COLUMNS, "bpp", "encode_s", "decode_s", "metrics_s", "rate_mode"]
    if any(c not in df.columns for c in [*need, *metrics]) or df.empty:
        return df.iloc[:0]
    ok = df[list(KEY)].notna().all(axis=1)
    num = {c: pd.to_numeric(df[c], errors="coerce") for c in ("quality", *INT_COLUMNS, "bpp", "encode_s",
                                                              "decode_s", "metrics_s", *metrics)}
    ok &= num["quality"].map(math.isfinite, na_action="ignore").fillna(False).astype(bool)
    for c in INT_COLUMNS:
        v = num[c]
        ok &= v.notna() & (v >= (0 if c == "bytes" else 1)) & (v == v.round())
    for c in ("bpp", "encode_s", "decode_s", "metrics_s"):
        v = num[c]
        ok &= v.notna() & (v >= 0) & (v < float("inf"))
    ok &= df["rate_mode"].isin(RATE_MODES)
    side = pd.concat([num["width"], num["height"]], axis=1).min(axis=1)
    for c in metrics:
        v = num[c]
        finite = v.notna() & (v.abs() < float("inf"))
        if c == "psnr":
            finite |= v == float("inf")
        limit = get_metric(c).nan_at_or_below if c in METRICS else 0
        if limit:  # a metric an image may be too small for
            finite |= v.isna() & (side <= limit)
        ok &= finite
    return df[ok]


def integer_columns(df: pd.DataFrame) -> pd.DataFrame:
    """``width``, ``height`` and ``bytes`` as integers (and a whole-number ``quality``), as a
    sweep that never stopped writes them."""
    df = df.copy()
    for c in INT_COLUMNS:
        if c in df.columns and df[c].notna().all():
            df[c] = pd.to_numeric(df[c]).astype("int64")
    if "quality" in df.columns and not df.empty:
        q = pd.to_numeric(df["quality"], errors="coerce")
        if q.notna().all() and (q == q.round()).all():
            df["quality"] = q.astype("int64")
    return df


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


def write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


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


def fitting_iterations(settings: object) -> int:
    """The fitting iterations a row's ``codec_settings`` (JSON) records: the effort of a
    codec that fits each image; 0 when none is recorded."""
    try:
        return int(json.loads(settings).get("iterations", 0)) if isinstance(settings, str) else 0
    except (ValueError, AttributeError, TypeError):
        return 0


def fitting_effort(settings: object) -> str:
    """A row's encoder effort and decoder size in words, from its ``codec_settings`` (JSON):
    ``"3,000 it., 890 MAC/px"``; ``""`` for a codec that records none. Two architectures
    at the same iterations are two curves, never one."""
    its = fitting_iterations(settings)
    if not its:
        return ""
    try:
        config = json.loads(settings).get("config")  # type: ignore[arg-type]  # a str: fitting_iterations read it
        from nicviz.codecs.overfitted.model import Config, macs_per_pixel

        return f"{its:,} it., {macs_per_pixel(Config(**config)):,.0f} MAC/px"
    except (ValueError, AttributeError, TypeError):
        return f"{its:,} it."


def whole_images(df: pd.DataFrame, by: tuple[str, ...] = ("codec", "task")) -> pd.DataFrame:
    """The rows of images measured at every quality of their group (one codec's curve,
    per task): the images a growing sweep has not finished are left out, so every point
    of a curve averages the same images."""
    if df.empty:
        return df
    keys = [k for k in by if k in df.columns]
    have = df.groupby([*keys, "image"])["quality"].transform("nunique")
    need = df.groupby(keys)["quality"].transform("nunique") if keys else df["quality"].nunique()
    return df[have == need]
