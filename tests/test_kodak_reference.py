"""nicviz's JPEG on Kodak against CompressAI's published jpeg.json."""

from __future__ import annotations

import json

import pytest

from nicviz.analysis import compressai_json
from nicviz.datasets import resolve_dataset
from nicviz.paths import REFERENCE_DIR
from nicviz.sweep import run_sweep

REFERENCE = REFERENCE_DIR / "jpeg.json"  # the shipped copy of CompressAI's published curve


@pytest.mark.slow
def test_jpeg_matches_compressai_reference(kodak_dir, tmp_path):
    if not REFERENCE.is_file():
        pytest.skip(f"CompressAI reference not found at {REFERENCE}")
    ref = json.loads(REFERENCE.read_text())["results"]
    assert len(ref["bpp"]) == 19
    ds = resolve_dataset(str(kodak_dir))
    assert len(ds.files) == 24
    qualities = list(range(5, 100, 10))  # every other point of the published curve
    out = tmp_path / "kodak_jpeg.csv"
    run_sweep(ds, ["jpeg"], {"jpeg": qualities}, out, metrics=("psnr",), jobs=1, progress=False)
    import pandas as pd

    ours = compressai_json(pd.read_csv(out), "jpeg")["results"]
    assert ours["quality"] == qualities
    for i, q in enumerate(qualities):
        j = (q - 5) // 5  # the published curve is at qualities 5, 10, ..., 95
        assert abs(ours["psnr-rgb"][i] - ref["psnr-rgb"][j]) <= 0.15, q
        assert abs(ours["bpp"][i] / ref["bpp"][j] - 1) <= 0.03, q
