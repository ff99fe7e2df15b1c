"""Settings a server operator chooses (``NICVIZ_*`` environment variables), read in one place.

A dashboard served to a team treats what its users type as hostile; what they may reach
is decided here, by whoever starts the server:

- ``NICVIZ_DASK_SCHEDULERS``: the Dask clusters the dashboard offers (a comma or
  whitespace separated list of ``name=tcp://host:port`` or ``tcp://host:port``); none set:
  local Dask workers only. A Dask scheduler and its workers run code, and send pickled
  results, as the user who connects: connect only to clusters you trust.
- ``NICVIZ_MAX_SWEEP_IMAGES`` (300): images one dashboard sweep may take.
- ``NICVIZ_MAX_PIXELS`` (4,000,000): pixels a classical codec gets on the dashboard before
  it offers a downscale (``benchmarks/bench_app_memory.py`` measures the server's memory
  per Compare change).
- ``NICVIZ_MAX_NEURAL_PIXELS`` (1,000,000): the same for neural codecs.
- ``NICVIZ_DEVICE`` (``cpu``): where the overfitted codecs fit each image (``cuda`` on a GPU);
  ``nicviz sweep --device`` sets it for a run and its workers.
- ``NICVIZ_OVERFITTED_PRECISION`` (``fp32``): ``bf16`` fits under bfloat16 autocast on a GPU
  (``benchmarks/bench_overfitted.py`` measures whether it pays). Refused on a CPU with AMX:
  there torch 2.14.1's oneDNN bf16 matmul dies with SIGFPE on some shapes (a 16 x 16
  product over 98,304 rows, the level-1 latent of every 768 x 512 Kodak image), which would
  take the server down, and it measured 1.03x fp32 at 704 x 480.

Folders (:func:`folder`; unset: the default each caller names):

- ``NICVIZ_DATA`` (``../shared/data`` beside the checkout): the data root;
- ``NICVIZ_RESULTS`` (``results/`` of the checkout): precomputed and user results;
- ``NICVIZ_REFERENCE``: CompressAI's published Kodak curves;
- ``NICVIZ_ALLOWED_ROOTS``: more folders a dashboard may read datasets from
  (``os.pathsep``-separated; for a single-user install);
- ``NICVIZ_CACHE`` (``~/.cache/nicviz``): the compressed-image bank for classifier training;
- ``NICVIZ_WEIGHTS_DIR``: official CompressAI checkpoints put there by hand (offline);
- ``NICVIZ_PADDLE_PYTHON``, ``NICVIZ_PADDLE_DET_DIR``, ``NICVIZ_PADDLE_REC_DIR``: PaddleOCR's
  separate environment and its offline model folders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nicviz.errors import NicvizError

__all__ = ["SettingError", "folder", "folders", "text", "device", "overfitted_precision", "overfitted_compile", "dask_schedulers", "max_sweep_images", "max_pixels", "max_neural_pixels",
           "MAX_QUALITIES", "check_scheduler_address"]

#: qualities one range or list may expand to (checked by arithmetic before expanding)
MAX_QUALITIES = 1000

_ADDRESS = re.compile(r"(tcp|tls|ucx|inproc)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}")


class SettingError(NicvizError):
    """An operator setting that cannot be used (raised when read, naming the variable)."""


def _int(name: str, default: int, low: int = 1) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(float(text))
    except ValueError:
        raise SettingError(f"${name}={text!r} is not a number") from None
    if value < low:
        raise SettingError(f"${name} must be at least {low} (got {value})")
    return value


#: the folder settings :func:`folder` reads
FOLDERS = ("NICVIZ_DATA", "NICVIZ_RESULTS", "NICVIZ_REFERENCE", "NICVIZ_CACHE", "NICVIZ_WEIGHTS_DIR",
           "NICVIZ_PADDLE_DET_DIR", "NICVIZ_PADDLE_REC_DIR")


def folder(name: str) -> Path | None:
    """The folder setting ``name`` (``~`` expanded), or ``None`` when it is unset."""
    if name not in FOLDERS:
        raise KeyError(f"{name} is not a nicviz folder setting")
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def folders(name: str = "NICVIZ_ALLOWED_ROOTS") -> list[Path]:
    """A list-of-folders setting (``os.pathsep``-separated), empty when unset."""
    return [Path(p.strip()).expanduser() for p in os.environ.get(name, "").split(os.pathsep) if p.strip()]


def text(name: str) -> str:
    """A free-text setting (``NICVIZ_PADDLE_PYTHON``), ``""`` when unset."""
    if name != "NICVIZ_PADDLE_PYTHON":
        raise KeyError(f"{name} is not a nicviz text setting")
    return os.environ.get(name, "").strip()


def max_sweep_images() -> int:
    return _int("NICVIZ_MAX_SWEEP_IMAGES", 300)


def max_pixels() -> int:
    return _int("NICVIZ_MAX_PIXELS", 4_000_000)


def max_neural_pixels() -> int:
    return _int("NICVIZ_MAX_NEURAL_PIXELS", 1_000_000)


def device() -> str:
    value = os.environ.get("NICVIZ_DEVICE", "").strip() or "cpu"
    if value != "cpu" and not re.fullmatch(r"cuda(:\d+)?", value):
        raise SettingError(f"$NICVIZ_DEVICE={value!r}: choose cpu or cuda")
    return value


def overfitted_precision(on: str = "cpu") -> str:
    """The overfitted codec's fitting precision on device ``on`` (see the module notes)."""
    value = os.environ.get("NICVIZ_OVERFITTED_PRECISION", "").strip() or "fp32"
    if value not in ("fp32", "bf16"):
        raise SettingError(f"$NICVIZ_OVERFITTED_PRECISION={value!r}: choose fp32 or bf16")
    if value == "bf16" and on == "cpu" and _has_amx():
        raise SettingError("$NICVIZ_OVERFITTED_PRECISION=bf16 is refused on this CPU: torch's oneDNN "
                           "bf16 matmul on AMX crashes on some image sizes (Kodak's among them); use fp32")
    return value


def overfitted_compile() -> bool:
    """Whether the overfitted codec fits through ``torch.compile`` (see the module notes)."""
    value = os.environ.get("NICVIZ_OVERFITTED_COMPILE", "").strip() or "0"
    if value not in ("0", "1"):
        raise SettingError(f"$NICVIZ_OVERFITTED_COMPILE={value!r}: choose 0 or 1")
    return value == "1"


def _has_amx() -> bool:
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def check_scheduler_address(address: str) -> str:
    """``address`` if it looks like a Dask scheduler address (``tcp://host:port``), else a
    one-line :class:`~nicviz.errors.NicvizError`."""
    address = address.strip()
    if not _ADDRESS.fullmatch(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise NicvizError(f"{address!r} is not a Dask scheduler address (expected tcp://host:port)")
    return address


def dask_schedulers() -> dict[str, str]:
    """The clusters the operator configured (``NICVIZ_DASK_SCHEDULERS``): ``{name: address}``."""
    out: dict[str, str] = {}
    for item in re.split(r"[\s,]+", os.environ.get("NICVIZ_DASK_SCHEDULERS", "").strip()):
        if not item:
            continue
        name, eq, address = item.partition("=")
        if not eq:
            name, address = item, item
        try:
            out[name] = check_scheduler_address(address)
        except NicvizError as exc:
            raise SettingError(f"$NICVIZ_DASK_SCHEDULERS: {exc}") from None
    return out
