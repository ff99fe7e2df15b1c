"""Real-browser test: streamlit run app.py, Debian's chromium driven by Playwright.

Every page is opened, checked for error boxes and exceptions, and a screenshot is
saved under ``screenshots/`` (``$NICVIZ_SCREENSHOTS`` overrides). ``.ci/run`` installs
chromium; without it the test skips with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"compare": "", "rate_distortion": "rate_distortion", "skin_lesions": "skin_lesions", "plates": "plates",
         "run_sweep": "run_sweep"}


def _isic_here() -> bool:
    from nicviz.paths import data_root

    root = data_root()
    return root is not None and (root / "isic" / "test").is_dir()


DATA_OK = _isic_here()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install --no-install-recommends chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip package playwright is not installed")
    port = _free_port()
    # the shipped results in a copy: the sweep run in the browser must not write into the checkout
    results = tmp_path_factory.mktemp("browser") / "results"
    shutil.copytree(ROOT / "results", results, ignore=shutil.ignore_patterns("user", "training", "checks"))
    log = results.parent / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NICVIZ_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + log.read_text(errors="replace")[-2000:])
    yield url, log
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_idle(pg, timeout_s: float = 120) -> None:
    pg.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    pg.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    time.sleep(1.0)
    while time.time() < deadline:
        if pg.locator('[data-testid="stStatusWidget"]').count() == 0:
            time.sleep(0.5)
            if pg.locator('[data-testid="stStatusWidget"]').count() == 0:
                return
        time.sleep(0.5)
    raise AssertionError("page did not finish running")


@contextlib.contextmanager
def _chromium():
    """A fresh Chromium profile driven by Playwright: the browser context, closed after."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="nicviz-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                       args=FLAGS, viewport={"width": 1400, "height": 1000})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _offline(ctx, external: list[str]) -> None:
    """Refuse (and record) every request that leaves this machine: the app must not need one."""
    def route(r):
        host = r.request.url.split("/")[2].split(":")[0] if "://" in r.request.url else ""
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)


def test_every_page_in_chromium(server):
    server, log = server
    shots = Path(os.environ.get("NICVIZ_SCREENSHOTS", ROOT / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with _chromium() as ctx:
        external: list[str] = []
        _offline(ctx, external)
        pg = ctx.new_page()
        console_errors: list[str] = []
        pg.on("pageerror", lambda e: console_errors.append(str(e)))
        for name, path in PAGES.items():
            pg.goto(f"{server}/{path}", wait_until="domcontentloaded")
            _wait_idle(pg)
            if name == "skin_lesions" and DATA_OK:
                # the check classifies, compresses and classifies again before its verdict: on a
                # loaded machine the page can look idle between its reruns, so wait for the answer
                verdict = pg.locator('.st-key-sk_verdict [data-testid="stAlert"]')
                verdict.first.wait_for(timeout=240_000)
                _wait_idle(pg)
                assert verdict.count() == 1 and "original" in verdict.inner_text().lower()
            assert pg.locator('[data-testid="stException"]').count() == 0, name
            # an error box is a failure, unless it is the Skin lesions verdict (red for a missed melanoma)
            errors = pg.locator('[data-testid="stAlertContentError"]:not(.st-key-sk_verdict *)')
            assert errors.count() == 0, f"{name}: {errors.all_inner_texts()}"
            assert pg.locator("h1").count() >= 1, name
            # a deep link gets the app's own menu (app.py ran), not Streamlit's folder listing
            nav = pg.locator('[data-testid="stSidebarNav"]').inner_text()
            assert "Licence plates" in nav and "Run a sweep" in nav, f"{name}: menu {nav!r}"
            if name == "compare":
                frame = pg.frame_locator("iframe").first
                frame.locator("#cmp img").first.wait_for(timeout=30000)
                loaded = frame.locator("#cmp img").evaluate_all(
                    "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
                assert loaded and all(loaded), "before/after slider images did not render"
                # drag the divider with the mouse from the middle to 20 %: it follows the drop point
                frame.locator("#cmp").scroll_into_view_if_needed()
                box = pg.locator("iframe").first.bounding_box()
                cmp = frame.locator("#cmp").bounding_box()
                y = cmp["y"] + cmp["height"] / 2
                pg.mouse.move(cmp["x"] + 0.5 * cmp["width"], y)
                pg.mouse.down()
                for f in (0.45, 0.35, 0.25, 0.2):
                    pg.mouse.move(cmp["x"] + f * cmp["width"], y, steps=4)
                pg.mouse.up()
                left = frame.locator("#bar").evaluate("b => b.getBoundingClientRect().left")
                frac = (left - (cmp["x"] - box["x"])) / cmp["width"]
                assert abs(frac - 0.2) < 0.05, f"divider at {frac:.2f} after a drag to 0.20"
                # a click moves it too
                pg.mouse.click(cmp["x"] + 0.7 * cmp["width"], y)
                left = frame.locator("#bar").evaluate("b => b.getBoundingClientRect().left")
                assert abs((left - (cmp["x"] - box["x"])) / cmp["width"] - 0.7) < 0.05
            text = pg.locator('[data-testid="stApp"]').inner_text()
            for where in _server_paths(log):  # no page names a folder of the server
                assert where not in text, f"{name} shows the server path {where}"
            pg.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert not console_errors, console_errors
    assert all((shots / f"{n}.png").stat().st_size > 10_000 for n in PAGES)
    assert not external, f"requests to other hosts: {external[:5]}"  # works with no external host reachable
    server_log = log.read_text(errors="replace")
    assert "deprecat" not in server_log.lower(), [x for x in server_log.splitlines() if "eprecat" in x][:3]


def _server_paths(log: Path) -> list[str]:
    """The server's checkout, results and data folders (and the home folder)."""
    from nicviz.datasets import data_root

    paths = [str(ROOT), str(log.parent / "results"), str(Path.home())]
    root = data_root()
    return paths + ([str(root), str(root.resolve())] if root else [])


def test_one_sessions_bad_sweep_breaks_no_other_session(server, tmp_path):
    """Sweep only bad uploads in one browser; Rate-distortion in a second one shows no
    exception or traceback, names a results file it cannot draw with its reason, and
    shows no server path."""
    server, log = server
    results = log.parent / "results"
    broken = results / "user" / "half-written.csv"  # a file of an older run that lacks its columns
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("image,codec\nx.png,jpeg\n")
    broken.with_name(broken.name + ".meta.json").write_text('{"task": "rd"}')
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"this is text, not a PNG")
    try:
        with _chromium() as ctx:
            pg = ctx.new_page()
            pg.goto(f"{server}/run_sweep", wait_until="domcontentloaded")
            _wait_idle(pg)
            _choose(pg, "Dataset", "my own images (upload)")
            pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
            pg.get_by_text("not-an-image.png").first.wait_for(timeout=60_000)  # the upload has arrived
            _wait_idle(pg)
            # typed, as a user would: under load (CI, -n 2) the boxes were seen empty for a minute
            for box, value in (("Name of the results file", "bad-upload"), ("Qualities per codec", "jpeg=50;webp=50")):
                field = pg.get_by_label(box, exact=False)
                field.fill(value)
                field.press("Enter")
                _wait_idle(pg)
            _click_until_running(pg, "Run")
            _wait_text(pg, "No row could be computed", 180)
            assert pg.locator('[data-testid="stAlertContentSuccess"]').count() == 0
        with _chromium() as other:
            pg = other.new_page()
            pg.goto(f"{server}/rate_distortion", wait_until="domcontentloaded")
            _wait_idle(pg)
            pg.locator(".js-plotly-plot .legendtext").first.wait_for(timeout=60_000)
            text = pg.locator('[data-testid="stApp"]').inner_text()
            assert pg.locator('[data-testid="stException"]').count() == 0
            assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
            assert "Traceback" not in text and "KeyError" not in text
            assert "user/half-written.csv (no dataset, quality, bpp, psnr columns)" in text, text[:600]
            for where in _server_paths(log):
                assert where not in text
            pg.screenshot(path=str(Path(os.environ.get("NICVIZ_SCREENSHOTS", ROOT / "screenshots"))
                                   / "rate_distortion_second_session.png"), full_page=True)
    finally:
        broken.unlink(missing_ok=True)
        broken.with_name(broken.name + ".meta.json").unlink(missing_ok=True)


def _click_until_running(pg, name: str) -> None:
    """Click the button ``name`` until the page shows it started (a progress bar or an alert):
    a rerun still drawing the page can swallow a click."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = pg.locator('[data-testid="stProgress"], [data-testid="stAlert"]')
    for _ in range(3):
        pg.get_by_role("button", name=name, exact=True).click()
        try:
            started.first.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            _wait_idle(pg)
    raise AssertionError(f"pressing {name!r} started nothing: " + pg.locator('[data-testid="stApp"]').inner_text()[:600])


def _wait_text(pg, text: str, timeout_s: float) -> None:
    """Wait for ``text`` on the page; on a timeout fail with what the page shows instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        pg.get_by_text(text).first.wait_for(timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        raise AssertionError(f"no {text!r} after {timeout_s:.0f} s; the page shows: "
                             + pg.locator('[data-testid="stApp"]').inner_text()[:800]) from None


def _choose(pg, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label`` (the list opens on a click; a
    rerun still drawing the page can swallow the first one)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        pg.locator('[data-testid="stSelectbox"]', has_text=label).locator("input").click()
        try:
            pg.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except PlaywrightTimeout:
            pg.keyboard.press("Escape")
            _wait_idle(pg)
    else:
        raise AssertionError(f"could not choose {option!r} in {label!r}")
    _wait_idle(pg)


def _filled(pg, label: str, timeout_s: float = 60) -> str:
    """The value of the text box labelled ``label`` once it has one (a rerun can draw the
    box a moment before its value)."""
    box = pg.get_by_label(label)
    deadline = time.time() + timeout_s
    while not (value := box.input_value()) and time.time() < deadline:
        time.sleep(0.2)
    assert value, f"{label!r} stayed empty"
    return value


def _csv_download(pg, button: str) -> list[dict]:
    """The rows a download button gives (Streamlit draws tables on a canvas: the download
    is the table a user can read)."""
    import csv
    import io

    with pg.expect_download(timeout=60_000) as d:
        pg.get_by_role("button", name=button).click()
    return list(csv.DictReader(io.StringIO(Path(d.value.path()).read_text())))


def _nav(pg, label: str) -> None:
    """Open a page through the sidebar menu, as a user does (the session and its state stay)."""
    pg.locator('[data-testid="stSidebarNav"] a', has_text=label).first.click()
    _wait_idle(pg)


def test_a_sweep_run_in_the_browser_shows_on_rate_distortion_and_the_gallery_turns(server, tmp_path):
    server, log = server
    with _chromium() as ctx:
        pg = ctx.new_page()
        pg.goto(f"{server}/run_sweep", wait_until="domcontentloaded")
        _wait_idle(pg)
        name = _filled(pg, "Name of the results file")
        limit = pg.locator('[data-testid="stNumberInput"]', has_text="Images to use").locator("input")
        limit.fill("2")  # a small sweep: two of the six pictures, five qualities a codec
        limit.press("Enter")
        _wait_idle(pg)
        spec = pg.get_by_label("Qualities per codec", exact=False)
        spec.fill("jpeg=10:90:20;webp=10:90:20")
        spec.press("Enter")
        _wait_idle(pg)
        _click_until_running(pg, "Run")
        pg.locator('[data-testid="stAlertContentSuccess"]').wait_for(timeout=180_000)
        assert "rows in" in pg.locator('[data-testid="stAlertContentSuccess"]').inner_text()
        # Rate-distortion shows the new sweep without any selection changed
        _nav(pg, "Rate-distortion")
        chips = pg.locator('[data-testid="stMultiSelect"]').first.inner_text()
        assert f"user/{name}.csv" in chips, chips
        assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
        # plotly draws after the script run ends: wait for the legend, not for the run
        pg.locator(".js-plotly-plot .legendtext", has_text="webp").first.wait_for(timeout=60_000)
        legend = pg.locator(".js-plotly-plot .legendtext").evaluate_all("els => els.map(e => e.textContent)")
        # the user's sweep is a curve of its own, never averaged into the shipped ones
        assert f"jpeg ({name})" in legend and f"webp ({name})" in legend, legend
        # and the shipped Kodak curves keep their 24 images per quality
        _choose(pg, "Dataset", "kodak")
        pg.get_by_text("Images (empty = all 24)").first.wait_for(timeout=60_000)  # the rerun for kodak is drawn
        _wait_idle(pg)
        pg.get_by_text("Per-quality means").first.wait_for(timeout=30_000)
        images: dict[str, set] = {}
        for r in _csv_download(pg, "Download the selected rows (CSV)"):
            if r["codec"] == "jpeg":
                images.setdefault(r["quality"], set()).add(r["image"])
        assert images and all(len(v) == 24 for v in images.values()), {q: len(v) for q, v in images.items()}
        # the plate gallery: all plates of a codec, then the next page of them
        _nav(pg, "Licence plates")
        _choose(pg, "Show", "all")
        pg.get_by_text("plates 1-8 of").first.wait_for(timeout=30_000)
        assert pg.get_by_text("plates 1-8 of").count() == 1
        pg.get_by_role("button", name="Next").first.click()
        _wait_idle(pg)
        pg.get_by_text("plates 9-16 of").first.wait_for(timeout=30_000)
        _wait_idle(pg)
        # an inspector's own plate photo: uploaded, compressed, read before and after
        from nicviz.tasks.ocr.synthetic import write_plate_folder

        plates = write_plate_folder(tmp_path / "plate", count=1, seed=3)
        photo = next(Path(plates).glob("*.png"))
        text = (Path(plates) / "labels.csv").read_text().splitlines()[1].split(",")[1]
        # the page opens on the inspection; the live reading has a tab of its own
        pg.get_by_role("tab", name="Read a plate live").click()
        _wait_idle(pg)
        pg.get_by_text("my own plate photo").click()
        _wait_idle(pg)
        pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
        _wait_idle(pg)
        box = pg.get_by_label("The plate's text, if you know it", exact=False)
        box.fill(text)
        box.press("Enter")
        _wait_idle(pg)
        pg.get_by_text("CER 0.00").first.wait_for(timeout=60_000)  # read, and read right
        _wait_idle(pg)
        # a photo with no plate in it: a plain warning, no traceback ("empty label" once was)
        blank = Path(plates) / "no-plate.png"
        from PIL import Image

        Image.new("RGB", (160, 80), (128, 140, 150)).save(blank)
        box.fill("")
        box.press("Enter")
        _wait_idle(pg)
        pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(blank))
        _wait_idle(pg)
        pg.get_by_text("OCR finds no plate text in the original photo").first.wait_for(timeout=60_000)
        assert pg.locator('[data-testid="stException"]').count() == 0
        pg.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
        _wait_idle(pg)  # the upload's rerun first: text typed during it can be lost
        box.fill(text)
        box.press("Enter")
        _wait_idle(pg)
        pg.get_by_text("CER 0.00").first.wait_for(timeout=60_000)
        _wait_idle(pg)
        pg.get_by_text("Legend").last.scroll_into_view_if_needed()
        pg.screenshot(path=str(Path(os.environ.get("NICVIZ_SCREENSHOTS", ROOT / "screenshots"))
                               / "plates_upload.png"))
        assert pg.locator('[data-testid="stAlertContentError"]').count() == 0
        pg.screenshot(path=str(Path(os.environ.get("NICVIZ_SCREENSHOTS", ROOT / "screenshots"))
                               / "plates_gallery_page2.png"), full_page=True)


def test_a_running_sweep_can_be_cancelled_and_keeps_its_rows(server):
    server, log = server
    results = log.parent / "results"
    with _chromium() as ctx:
        pg = ctx.new_page()
        pg.goto(f"{server}/run_sweep", wait_until="domcontentloaded")
        _wait_idle(pg)
        name = _filled(pg, "Name of the results file")
        spec = pg.get_by_label("Qualities per codec", exact=False)
        # the default codecs (jpeg, webp) at 34 qualities each: progress after each of the 6
        # pictures (a few seconds each), the whole sweep long enough to cancel
        spec.fill("jpeg=1:100:3;webp=1:100:3")
        spec.press("Enter")
        _wait_idle(pg)
        _click_until_running(pg, "Run")
        _wait_text(pg, "s left", 180)  # rows are coming in, with an estimate
        pg.get_by_role("button", name="Cancel").click(timeout=60_000)
        pg.get_by_text("Sweep cancelled").first.wait_for(timeout=180_000)
        _wait_idle(pg)
        journal = [p for p in (results / "user").glob(f"{name}*") if p.is_file()]
        kept = sum(len(p.read_text().splitlines()) for p in journal if p.suffix != ".json")
        assert kept > 0, [p.name for p in journal]
        assert pg.locator('[data-testid="stAlertContentSuccess"]').count() == 0  # it did not run to the end
