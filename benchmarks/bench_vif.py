"""VIF-p speed: sewar.full_ref.vifp against nicviz.metrics.vif on one Kodak image."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_dataset  # noqa: E402
from sewar.full_ref import vifp  # noqa: E402

from nicviz.codecs import get_codec  # noqa: E402
from nicviz.images import load_image  # noqa: E402
from nicviz.metrics import vif  # noqa: E402


def best_of(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    import cv2

    cv2.setNumThreads(1)  # sewar is single-threaded: compare like with like
    ds = bench_dataset()
    ref = load_image(ds.files[0])
    jpeg = get_codec("jpeg")
    test = jpeg.decode(jpeg.encode(ref, 30))
    ours_v, theirs_v = vif(ref, test), vifp(ref, test)
    t_ours = best_of(lambda: vif(ref, test), 5)
    t_sewar = best_of(lambda: vifp(ref, test), 2)
    print(f"VIF-p (one thread) on {ds.image_id(ds.files[0])} ({ref.shape[1]}x{ref.shape[0]}), JPEG q30")
    print(f"  sewar  {t_sewar:.3f} s  value {theirs_v:.6f}")
    print(f"  nicviz {t_ours:.3f} s  value {ours_v:.6f}  (|diff| {abs(ours_v - theirs_v):.1e})")
    print(f"  speed-up sewar/nicviz: {t_sewar / t_ours:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
