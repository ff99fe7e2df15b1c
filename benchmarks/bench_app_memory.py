"""Dashboard memory under long use: `streamlit run app.py` driven by Debian's chromium
(Playwright), N quality changes on the Compare page (JPEG, keyboard on the slider, on a
Kodak image when the data folder is there), the server's resident memory (with its child
processes) sampled after each change. Prints start, after 10 changes, peak and end;
goal: end within 20 % of the value after the first 10 changes.

With ``--upload-mp 12`` it uploads a 12-megapixel photograph on Compare instead and runs the
server twice in one run: without a pixel budget (``NICVIZ_MAX_PIXELS`` above the image:
how the dashboard behaved before the budget) and with the default budget (the page offers
a downscale and takes it); it prints the peak server memory above the idle page per
quality change for both.

    python benchmarks/bench_app_memory.py [--changes 100] [--upload-mp 12 --changes 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def rss_mb(proc: psutil.Process) -> float:
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def reset_peak(proc: psutil.Process) -> None:
    """Linux: restart the process's peak resident memory (VmHWM) count."""
    with open(f"/proc/{proc.pid}/clear_refs", "w") as fh:
        fh.write("5")


def peak_mb(proc: psutil.Process) -> float:
    """The process's peak resident memory since the last :func:`reset_peak` (VmHWM)."""
    with open(f"/proc/{proc.pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return rss_mb(proc)


def idle(page, timeout_s: float = 120) -> None:
    page.wait_for_timeout(300)
    end = time.time() + timeout_s
    while time.time() < end and page.locator('[data-testid="stStatusWidget"]').count():
        page.wait_for_timeout(100)


def big_photo(megapixels: float, folder: Path) -> Path:
    """A real photograph (Kodak when present, else scikit-image's) scaled to ``megapixels``, as a JPEG."""
    from PIL import Image

    from nicviz.datasets import builtin_sample
    from nicviz.paths import data_root

    root = data_root()
    kodak = root / "kodak" / "kodim23.png" if root is not None else None
    img = Image.open(kodak).convert("RGB") if kodak is not None and kodak.is_file() else \
        Image.fromarray(builtin_sample("astronaut"))
    scale = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    path = folder / f"photo-{megapixels:g}mp.jpg"
    img.save(path, quality=92)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--upload-mp", type=float, default=0.0, help="upload a photograph of this many megapixels")
    args = ap.parse_args(argv)
    if not args.upload_mp:
        return run(args, {})
    import tempfile

    photo = big_photo(args.upload_mp, Path(tempfile.mkdtemp(prefix="nicviz-bench-")))
    from nicviz.settings import max_pixels

    results = {}
    for label, env in (("no pixel budget (before)", {"NICVIZ_MAX_PIXELS": str(10**9)}),
                       (f"default budget {max_pixels() / 1e6:.0f} MP (after)", {})):
        results[label] = run(args, env, photo)
    print(f"{args.upload_mp:g} MP upload on Compare, JPEG, {args.changes} quality changes:")
    for label, (idle_mb, peak, end) in results.items():
        print(f"  {label}: page with the photo shown {idle_mb:.0f} MB; peak during a change {peak:.0f} MB "
              f"(+{peak - idle_mb:.0f}); after the last change {end:.0f} MB (+{end - idle_mb:.0f})")
    return 0


def run(args, env: dict, photo: Path | None = None):
    from playwright.sync_api import sync_playwright

    from nicviz.paths import data_root

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                               str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={"MALLOC_ARENA_MAX": "2", **os.environ, "OMP_NUM_THREADS": "1", **env})  # as dev.sh app
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        proc = psutil.Process(server.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            idle(page)
            root = data_root()
            start = rss_mb(proc)
            if photo is not None:
                page.get_by_text("Upload", exact=True).click()
                idle(page)
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
                page.get_by_text(" bpp, PSNR ").first.wait_for(timeout=600_000)  # the metrics line: done
                idle(page)
                start = rss_mb(proc)  # the page with the upload shown once: models and caches loaded
            elif root is not None and (root / "kodak" / "kodim01.png").is_file():
                page.get_by_text("Dataset image", exact=True).click()
                idle(page)
                start = rss_mb(proc)
            slider = page.get_by_role("slider").first
            samples, peaks = [], []
            quality = 50  # JPEG's default on Compare
            t0 = time.perf_counter()
            for i in range(args.changes):
                slider.focus()
                reset_peak(proc)
                slider.press("ArrowRight" if (i // 20) % 2 == 0 else "ArrowLeft")
                if photo is not None:  # the status widget is not reliable: wait for the new quality's metrics line
                    quality += 1 if (i // 20) % 2 == 0 else -1
                    page.get_by_text(f" q{quality}: ").first.wait_for(timeout=600_000)
                idle(page, 600)
                samples.append(rss_mb(proc))
                peaks.append(peak_mb(proc))  # the server process's own peak during this change
            wall = time.perf_counter() - t0
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # still busy with a change
            server.kill()
            server.wait(30)
    if photo is not None:
        return start, max(peaks), samples[-1]
    after10 = samples[min(9, len(samples) - 1)]
    print(f"{args.changes} Compare quality changes in {wall:.0f} s; server RSS (MB): start {start:.0f}, "
          f"after 10 {after10:.0f}, peak {max(samples):.0f}, end {samples[-1]:.0f} "
          f"({100 * (samples[-1] / after10 - 1):+.1f} % against after 10; goal within 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
