"""Whether a resumed sweep's rows were encoded as the codec encodes now."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from nicviz.codecs import get_codec
from nicviz.errors import NicvizError

__all__ = ["check_same_settings", "RUN_SETTINGS"]

#: encoder settings that may differ between the rows of one sweep (where it ran, not what it is)
RUN_SETTINGS = ("device", "precision", "compiled")


def _identity(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in RUN_SETTINGS}


def check_same_settings(rows: Iterable[dict], codecs: Sequence[str], out: Path) -> None:
    """A resumed sweep must not mix encoders: rows of a codec whose recorded settings (its
    iterations, architecture, recipe, lambda ladder) differ from the codec's settings now
    stop the sweep in one line, before any work."""
    want = {}
    for name in codecs:
        settings = get_codec(name).settings()
        if settings is not None:
            want[name] = _identity(json.loads(json.dumps(settings)))
    if not want:
        return
    for rec in rows:
        name, raw = str(rec.get("codec")), rec.get("codec_settings")
        if name not in want or not isinstance(raw, str) or not raw:
            continue
        had = _identity(json.loads(raw))
        if had != want[name]:
            keys = sorted(k for k in set(had) | set(want[name]) if had.get(k) != want[name].get(k))
            raise NicvizError(f"{out.name} already has {name} rows encoded with other settings ({', '.join(keys)}); "
                              "resume with the settings they record, or write the new settings to another file")
