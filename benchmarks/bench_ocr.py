"""Plate OCR throughput and accuracy: rapidocr's default detector against nicviz's tuning.

rapidocr's default scales every crop so that its *shorter* side is 736 px (a 320x160
plate becomes 1472x736) and runs the angle classifier; nicviz limits the longer side
instead and skips the classifier. Both run on one thread over the same plates.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from nicviz.images import load_image
from nicviz.paths import data_root
from nicviz.tasks.ocr.engines import OcrLine, RapidOcrEngine
from nicviz.tasks.ocr.plates import cer, exact, exact_o0, read_labels, select_plate
from nicviz.tasks.ocr.synthetic import write_plate_folder


def default_engine():
    import numpy as np
    from rapidocr import RapidOCR

    eng = RapidOCR(params={"Global.log_level": "error",
                           "EngineConfig.onnxruntime.intra_op_num_threads": 1,
                           "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def read(rgb):
        out = eng(np.ascontiguousarray(rgb[:, :, ::-1]))
        if out.txts is None:
            return []
        return [OcrLine(t, float(s), tuple(map(tuple, b))) for t, s, b in zip(out.txts, out.scores, out.boxes,
                                                                             strict=False)]
    return read


def run(read, images, labels) -> tuple[float, float, float, float]:
    read(images[0][1])
    t = time.perf_counter()
    ok = ok0 = c = 0.0
    for name, rgb in images:
        text, _ = select_plate(read(rgb))
        ok += exact(text, labels[name])
        ok0 += exact_o0(text, labels[name])
        c += cer(text, labels[name])
    n = len(images)
    return n / (time.perf_counter() - t), ok / n, ok0 / n, c / n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    root = data_root()
    folder = root / "plates" / "images" if root else None
    if folder is None or not folder.is_dir():
        import tempfile

        folder = write_plate_folder(Path(tempfile.mkdtemp()), count=40)
        print("(no plates folder: using generated plates)")
    labels = read_labels(folder)
    names = sorted(labels)
    random.Random(0).shuffle(names)
    images = [(f, load_image(folder / f)) for f in names[:n]]
    print(f"{len(images)} plates from {folder}, one thread")
    for label, read in (("rapidocr default", default_engine()), ("nicviz tuned", RapidOcrEngine().read)):
        pps, acc, acc0, c = run(read, images, labels)
        print(f"  {label:17s} {pps:6.2f} plates/s  exact {100 * acc:5.1f} %  exact(O=0) {100 * acc0:5.1f} %  "
              f"CER {c:.3f}")


if __name__ == "__main__":
    main()
