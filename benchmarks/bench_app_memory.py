"""Dashboard memory under long use: `streamlit run app.py` driven by Debian's chromium
(Playwright), N quality changes on the Compare page (JPEG, keyboard on the slider, on a
Kodak image when the data folder is there), the server's resident memory (with its child
processes) sampled after each change. Prints start, after 10 changes, peak and end;
goal: end within 20 % of the value after the first 10 changes.

    python benchmarks/bench_app_memory.py [--changes 100]
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


def idle(page, timeout_s: float = 120) -> None:
    page.wait_for_timeout(300)
    end = time.time() + timeout_s
    while time.time() < end and page.locator('[data-testid="stStatusWidget"]').count():
        page.wait_for_timeout(100)


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from nicviz.paths import data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=100)
    args = ap.parse_args(argv)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                               str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={"MALLOC_ARENA_MAX": "2", **os.environ, "OMP_NUM_THREADS": "1"})  # as dev.sh app
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
            if root is not None and (root / "kodak" / "kodim01.png").is_file():
                page.get_by_text("Dataset image", exact=True).click()
                idle(page)
            start = rss_mb(proc)
            slider = page.get_by_role("slider").first
            samples = []
            t0 = time.perf_counter()
            for i in range(args.changes):
                slider.focus()
                slider.press("ArrowRight" if (i // 20) % 2 == 0 else "ArrowLeft")
                idle(page)
                samples.append(rss_mb(proc))
            wall = time.perf_counter() - t0
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    after10 = samples[min(9, len(samples) - 1)]
    print(f"{args.changes} Compare quality changes in {wall:.0f} s; server RSS (MB): start {start:.0f}, "
          f"after 10 {after10:.0f}, peak {max(samples):.0f}, end {samples[-1]:.0f} "
          f"({100 * (samples[-1] / after10 - 1):+.1f} % against after 10; goal within 20 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
