"""The environment keeps the pins the project depends on."""

from __future__ import annotations

from importlib import metadata


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_only_headless_opencv():
    assert _installed("opencv-python-headless")
    others = [n for n in ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless") if _installed(n)]
    assert not others, f"a second OpenCV distribution is installed: {others}"


def test_pins():
    assert metadata.version("torch").startswith("2.14.1")
    assert metadata.version("compressai") == "1.2.8"
    assert int(metadata.version("numpy").split(".")[0]) < 2
    assert not _installed("paddlepaddle"), "paddlepaddle belongs in its own environment (see nicviz.tasks.ocr.engines)"
