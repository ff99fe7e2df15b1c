"""Write the golden bitstreams of ``tests/golden/``: one small picture (a 96 x 128 crop of
scikit-image's astronaut, shipped with the package) coded by every stream version and
schedule nicviz decodes, with the decoded picture's SHA-256 and PSNR in ``golden.json``.
``tests/test_golden_streams.py`` decodes them again: a decode that changes by one pixel
fails. Rerun only when a format or a shipped model changes on purpose:

    python scripts/make_golden_streams.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "golden"


def picture() -> np.ndarray:
    from nicviz.datasets import builtin_sample

    return np.ascontiguousarray(builtin_sample("astronaut")[40:136, 190:318])


def digest(rgb: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()).hexdigest()


def streams() -> dict[str, tuple[str, bytes]]:
    """``{file name: (codec, bytes)}`` of every kind of stream."""
    import torch

    from nicviz.codecs import get_codec
    from nicviz.codecs.overfitted.codec import OverfittedCodec

    rgb = picture()
    out = {}
    mini = get_codec("cheng2020-anchor-mini")
    mini.require_available()
    out["mini-v2-wavefront.nicviz"] = ("cheng2020-anchor-mini", mini.encode(rgb, 3))
    raster = copy.copy(mini)
    raster.schedule = "compressai"
    out["mini-v2-compressai.nicviz"] = ("cheng2020-anchor-mini", raster.encode(rgb, 3))
    # version 1: integer quality, CompressAI's raster order by a contiguous model, no checksum
    model = copy.deepcopy(mini.model(3)).to(memory_format=torch.contiguous_format)
    x, _ = mini._to_padded(rgb)
    with torch.no_grad():
        c = model.compress(x.contiguous())
    shape = tuple(int(v) for v in c["shape"])
    strings = [s[0] for s in c["strings"]]
    v1 = b"NV" + struct.pack(">BBIIHHB", 1, 3, rgb.shape[0], rgb.shape[1], *shape, len(strings))
    out["mini-v1.nicviz"] = ("cheng2020-anchor-mini", v1 + b"".join(struct.pack(">I", len(s)) + s for s in strings))
    out["overfitted-v2.nof"] = ("overfitted", OverfittedCodec("overfitted", iterations=150).encode(rgb, 4))
    return out


#: streams this encoder can no longer write (an older format or decoder size): kept as committed
FROZEN = {"overfitted.nof": "version 1 (4 location bins, ARM 8), written before stop 25"}


def main(argv: list[str] | None = None) -> int:
    import torch

    from nicviz.codecs import get_codec
    from nicviz.metrics import psnr

    torch.set_num_threads(1)  # CompressAI's synthesis rounds differently on 1 and 2 threads: pin it
    OUT.mkdir(parents=True, exist_ok=True)
    rgb = picture()
    record = {"picture": "astronaut[40:136, 190:318] (scikit-image)", "streams": {}}
    old = json.loads((OUT / "golden.json").read_text())["streams"] if (OUT / "golden.json").is_file() else {}
    for name in FROZEN:
        if name in old and (OUT / name).is_file():
            record["streams"][name] = old[name]
    for name, (codec, data) in streams().items():
        (OUT / name).write_bytes(data)
        dec = get_codec(codec).decode(data)
        record["streams"][name] = {"codec": codec, "bytes": len(data), "sha256": digest(dec),
                                   "psnr": round(psnr(rgb, dec), 4)}
        print(name, record["streams"][name])
    (OUT / "golden.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
