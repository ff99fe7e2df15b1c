"""OCR engines behind one interface: ``engine.read(rgb) -> list[OcrLine]``.

* ``rapidocr`` (built in, offline): PaddleOCR's PP-OCRv6 detection and recognition
  models run by onnxruntime through the ``rapidocr`` package, whose wheel ships the
  models. nicviz passes the model paths explicitly, so nothing is downloaded.
* ``paddleocr`` (optional): PaddleOCR itself in its own virtual environment, called as
  a subprocess (paddlepaddle crashes when imported after TensorFlow and brings its own
  OpenCV, so it never shares nicviz's environment). Point ``NICVIZ_PADDLE_PYTHON`` at
  that environment's ``python`` and, offline, ``NICVIZ_PADDLE_DET_DIR`` /
  ``NICVIZ_PADDLE_REC_DIR`` at local model folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nicviz.errors import NicvizError

__all__ = ["OcrLine", "OcrEngine", "OcrError", "RapidOcrEngine", "PaddleOcrEngine", "get_engine", "ENGINES"]


class OcrError(NicvizError, RuntimeError):
    """An OCR engine that cannot run; the message says how to fix it."""


@dataclass(frozen=True)
class OcrLine:
    """One detected text line: text, recognition confidence, quadrilateral box (4 x 2, x/y)."""

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]

    @property
    def height(self) -> float:
        """Height of the box: mean length of its left and right edges."""
        b = np.asarray(self.box, dtype=float)
        return float((np.linalg.norm(b[3] - b[0]) + np.linalg.norm(b[2] - b[1])) / 2)

    @property
    def center(self) -> tuple[float, float]:
        b = np.asarray(self.box, dtype=float)
        return float(b[:, 0].mean()), float(b[:, 1].mean())

    @property
    def top(self) -> float:
        return float(np.asarray(self.box, dtype=float)[:, 1].min())

    @property
    def bottom(self) -> float:
        return float(np.asarray(self.box, dtype=float)[:, 1].max())

    @property
    def left(self) -> float:
        return float(np.asarray(self.box, dtype=float)[:, 0].min())


class OcrEngine:
    """Interface: ``read(rgb uint8 H x W x 3) -> list[OcrLine]``."""

    name = ""

    def read(self, rgb: np.ndarray) -> list[OcrLine]:  # pragma: no cover - interface
        raise NotImplementedError


class RapidOcrEngine(OcrEngine):
    """PP-OCRv6 (detection + recognition) on onnxruntime via rapidocr, fully offline.

    Tuned for plate crops: the detector's input is limited by its *longer* side
    (``det_side``, default 480 px) instead of rapidocr's default of upscaling the shorter
    side to 736 px, and the angle classifier is off (crops are upright). One
    onnxruntime thread per engine, so parallel sweeps do not oversubscribe.
    """

    name = "rapidocr"

    def __init__(self, det_side: int = 480, threads: int = 1) -> None:
        self.det_side = det_side
        self.threads = threads
        self._engine = None
        self._lock = threading.Lock()

    def _load(self):
        if self._engine is None:
            try:
                import rapidocr
                from rapidocr import RapidOCR
            except ImportError as exc:
                raise OcrError(f"rapidocr is not installed ({exc}); pip install rapidocr onnxruntime") from None
            models = Path(rapidocr.__file__).parent / "models"
            det = models / "PP-OCRv6_det_small.onnx"
            rec = models / "PP-OCRv6_rec_small.onnx"
            for p in (det, rec):
                if not p.is_file():
                    raise OcrError(f"rapidocr model {p.name} missing from {models}; reinstall rapidocr")
            self._engine = RapidOCR(params={
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Det.model_path": str(det),
                "Rec.model_path": str(rec),
                "Det.limit_type": "max",
                "Det.limit_side_len": self.det_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
        return self._engine

    def read(self, rgb: np.ndarray) -> list[OcrLine]:
        with self._lock:
            engine = self._load()
            # rapidocr takes OpenCV's BGR order for arrays
            out = engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        if out.txts is None or out.boxes is None:
            return []
        return [OcrLine(str(t), float(s), tuple((float(x), float(y)) for x, y in b))
                for t, s, b in zip(out.txts, out.scores, out.boxes, strict=False)]


_PADDLE_SCRIPT = r"""
import json, sys
from nicviz.errors import NicvizError
args = json.loads(sys.argv[1])
try:
    from paddleocr import PaddleOCR
    kw = dict(use_doc_orientation_classify=False, use_doc_unwarping=False, use_textline_orientation=False)
    if args.get("det"): kw["text_detection_model_dir"] = args["det"]
    if args.get("rec"): kw["text_recognition_model_dir"] = args["rec"]
    ocr = PaddleOCR(**kw)
    res = []
    for path in args["images"]:
        lines = []
        for page in ocr.predict(path):
            for t, s, b in zip(page["rec_texts"], page["rec_scores"], page["rec_polys"]):
                lines.append([str(t), float(s), [[float(x), float(y)] for x, y in b]])
        res.append(lines)
    print("NICVIZ-RESULT " + json.dumps(res))
except Exception as exc:
    print("NICVIZ-ERROR " + " ".join(str(exc).split()), flush=True)
    sys.exit(3)
"""


class PaddleOcrEngine(OcrEngine):
    """PaddleOCR (``paddleocr`` + ``paddlepaddle``) in a separate environment, as a subprocess."""

    name = "paddleocr"

    def __init__(self, python: str | None = None, det_dir: str | None = None, rec_dir: str | None = None,
                 timeout: float = 600) -> None:
        from nicviz import settings

        self.python = python or settings.text("NICVIZ_PADDLE_PYTHON")
        self.det_dir = det_dir or (str(settings.folder("NICVIZ_PADDLE_DET_DIR") or "") or None)
        self.rec_dir = rec_dir or (str(settings.folder("NICVIZ_PADDLE_REC_DIR") or "") or None)
        self.timeout = timeout

    def availability(self) -> tuple[bool, str]:
        if not self.python:
            return False, ("set NICVIZ_PADDLE_PYTHON to the python of a separate virtual environment with "
                           "paddleocr and paddlepaddle installed")
        if not Path(self.python).is_file():
            return False, f"NICVIZ_PADDLE_PYTHON={self.python}: no such file"
        return True, ""

    def read_many(self, images: list[np.ndarray]) -> list[list[OcrLine]]:
        ok, why = self.availability()
        if not ok:
            raise OcrError(f"paddleocr is unavailable: {why}")
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="nicviz-paddle-") as tmp:
            paths = []
            for i, rgb in enumerate(images):
                p = Path(tmp) / f"{i}.png"
                Image.fromarray(rgb).save(p)
                paths.append(str(p))
            arg = json.dumps({"images": paths, "det": self.det_dir, "rec": self.rec_dir})
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
            try:
                proc = subprocess.run([self.python, "-c", _PADDLE_SCRIPT, arg], capture_output=True, text=True,
                                      timeout=self.timeout, env=env)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise OcrError(f"paddleocr subprocess failed: {exc}") from None
        for line in proc.stdout.splitlines():
            if line.startswith("NICVIZ-RESULT "):
                data = json.loads(line[len("NICVIZ-RESULT "):])
                return [[OcrLine(t, s, tuple(tuple(p) for p in b)) for t, s, b in page] for page in data]
            if line.startswith("NICVIZ-ERROR "):
                msg = line[len("NICVIZ-ERROR "):]
                if "No available model hosting platforms" in msg or "hosting" in msg.lower():
                    raise OcrError(
                        "paddleocr could not download its models (offline): set NICVIZ_PADDLE_DET_DIR and "
                        "NICVIZ_PADDLE_REC_DIR to local model folders (passed as text_detection_model_dir and "
                        "text_recognition_model_dir)")
                raise OcrError(f"paddleocr failed: {msg}")
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise OcrError(f"paddleocr subprocess exited with code {proc.returncode}: {tail[0]}")

    def read(self, rgb: np.ndarray) -> list[OcrLine]:
        return self.read_many([rgb])[0]


ENGINES = {"rapidocr": RapidOcrEngine, "paddleocr": PaddleOcrEngine}
_CACHE: dict[str, OcrEngine] = {}


def get_engine(name: str = "rapidocr") -> OcrEngine:
    """The engine registered as ``name``, created once per process."""
    if name not in ENGINES:
        raise OcrError(f"unknown OCR engine {name!r}; choose from {', '.join(ENGINES)}")
    if name not in _CACHE:
        _CACHE[name] = ENGINES[name]()
    return _CACHE[name]
