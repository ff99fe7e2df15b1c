"""Dashboard pages under streamlit's AppTest: they run, show their widgets, react to input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from imagefiles import png_bomb
from streamlit.testing.v1 import AppTest

from nicviz.datasets import write_builtin_samples
from nicviz.sweep import run_sweep
from nicviz.tasks.ocr.synthetic import write_plate_folder

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)
    return at


def frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page that has ``column``."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no dataframe with column {column!r}")


def keyed(widgets, prefix: str):
    """The one widget whose key starts with ``prefix`` (keys that carry the dataset)."""
    found = [w for w in widgets if str(w.key).startswith(prefix)]
    assert len(found) == 1, [w.key for w in widgets]
    return found[0]


def metrics_row(at: AppTest, i: int = 0) -> dict:
    return frame(at, "psnr").iloc[i].to_dict()


def test_app_entry_runs_default_page():
    at = page("app.py").run()
    assert not at.exception
    assert any("Compare" in t.value for t in at.title)


def test_compare_page_reacts_to_codec_and_quality():
    at = page("app_pages/compare.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="sample").value == "astronaut"
    first = metrics_row(at)
    assert first["codec"] == "jpeg" and 0 < first["bpp"] < 24 and first["psnr"] > 20
    at.slider(key="a_quality").set_value(10).run()
    low = metrics_row(at)
    assert low["quality"] == 10 and low["bpp"] < first["bpp"] and low["psnr"] < first["psnr"]
    at.selectbox(key="a_codec").set_value("webp").run()
    assert not at.exception
    webp = metrics_row(at)
    assert webp["codec"] == "webp" and webp["bytes"] != low["bytes"]
    at.toggle(key="ab").set_value(True).run()
    assert not at.exception
    assert len(frame(at, "psnr")) == 2
    assert len(at.get("download_button")) >= 2
    # A/B: A on the left, B on the right by default; the original can come back on either side
    assert at.radio(key="cmp_view").options == ["A | B", "original | A", "original | B"]
    at.radio(key="cmp_view").set_value("original | B").run()
    assert not at.exception
    # the error maps say whose error they show
    at.radio(key="err_of").set_value("B").run()
    captions = [c for img in at.get("image") for c in [str(img.proto)] if "absolute error" in c]
    assert captions and "B: webp q50" in captions[0]


def test_compare_page_bad_dataset_file_is_a_message(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_builtin_samples(data / "kodak", ("chelsea",))
    (data / "kodak" / "zz-bomb.png").write_bytes(png_bomb())
    monkeypatch.setenv("NICVIZ_DATA", str(data))
    at = page("app_pages/compare.py").run()
    at.radio(key="source").set_value("Dataset image").run()
    assert not at.exception
    at.selectbox(key="dataset_image").set_value("zz-bomb.png").run()
    assert not at.exception
    assert any("decompression bomb" in e.value for e in at.error)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    imgs = write_builtin_samples(root.parent / "imgs", ("chelsea", "coffee", "rocket"))
    run_sweep(imgs, ["jpeg", "webp"], {"jpeg": [10, 30, 50, 70, 90], "webp": [10, 30, 50, 70, 90]},
              root / "kodak" / "small.csv", metrics=("psnr", "ssim", "ms_ssim", "vif"), progress=False)
    from nicviz.datasets import resolve_dataset

    plates = resolve_dataset(str(write_plate_folder(root.parent / "plates", count=10, seed=3)))
    run_sweep(plates, ["jpeg"], {"jpeg": [5, 30, 90]}, root / "plates" / "ocr.csv", metrics=("psnr",),
              task="ocr", progress=False)
    return root


def test_rate_distortion_page(results_root, monkeypatch):
    monkeypatch.setenv("NICVIZ_RESULTS", str(results_root))
    at = page("app_pages/rate_distortion.py").run()
    assert not at.exception and not at.error
    assert keyed(at.multiselect, "rd_codecs_").value == ["jpeg", "webp"]
    bd = frame(at, "BD-rate (%)")
    assert list(bd["codec"]) == ["webp"] and bd["BD-rate (%)"].iloc[0] < 0
    assert 0 <= bd["overlap (%)"].iloc[0] <= 100
    assert not at.warning  # the library's raw warning text never reaches the page
    at.selectbox(key="rd_metric").set_value("ssim").run()
    assert not at.exception
    bd_ssim = frame(at, "BD-rate (%)")["BD-rate (%)"].iloc[0]
    assert bd_ssim != bd["BD-rate (%)"].iloc[0]
    keyed(at.multiselect, "rd_images_").set_value(["chelsea.png"]).run()
    assert not at.exception
    assert len(frame(at, "vif")) == 10


def test_rate_distortion_page_without_results(tmp_path, monkeypatch):
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path / "none"))
    at = page("app_pages/rate_distortion.py").run()
    assert not at.exception
    assert any("No rate-distortion results" in w.value for w in at.warning)


def test_plates_page(results_root, monkeypatch):
    monkeypatch.setenv("NICVIZ_RESULTS", str(results_root))
    at = page("app_pages/plates.py").run()
    assert not at.exception and not at.error
    table = frame(at, "read exactly (%)")
    assert list(table["quality"]) == [5, 30, 90]
    assert not any("_" in c for c in table.columns)  # no column name in code's spelling
    at.selectbox(key="pl_which").set_value("all").run()
    assert not at.exception
    # the gallery: 8 plates a page, next / previous, open one large
    captions = [m.value for m in at.markdown if "of " in m.value and "plates " in m.value]
    assert captions and captions[0].count("plates 1-") == 1
    at.button(key="pl_next").click().run()
    assert not at.exception and any("plates 9-" in m.value for m in at.markdown)
    at.button(key="pl_prev").click().run()
    assert not any("drag across the plate" in m.value for m in at.markdown)
    at.button(key="pl_open_0").click().run()  # the plate opens in a dialog, over the gallery
    assert not at.exception and any("drag across the plate" in m.value for m in at.markdown)
    assert any("compressed, it reads" in m.value and "CER" in m.value for m in at.markdown)
    assert any("Legend" in m.value for m in at.markdown)
    demo = frame(at, "compressed").iloc[0]
    assert demo["original"] == demo["label"]
    at.slider(key="pl_demo_quality").set_value(90).run()
    assert not at.exception
    assert frame(at, "compressed").iloc[0]["compressed"] == demo["label"]


def test_run_sweep_page(tmp_path, monkeypatch):
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    at = page("app_pages/run_sweep.py").run()
    assert not at.exception
    at.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
    at.text_input(key="rs_qualities_jpeg").set_value("jpeg=20,60").run()
    at.multiselect(key="rs_metrics").set_value(["psnr"]).run()
    at.button(key="rs_run").click().run()
    assert not at.exception and not at.error
    assert any("rows in" in s.value for s in at.success)
    name = at.text_input(key="rs_name").value
    assert name.startswith("my-sweep-") and len(name) > len("my-sweep-")  # each session its own default
    # the new sweep shows on Rate-distortion (same session) without changing any selection, as a curve of its own
    rd = page("app_pages/rate_distortion.py")
    rd.session_state["rs_written"] = {name}
    rd.run()
    assert not rd.exception and f"user/{name}.csv" in rd.multiselect(key="rd_files").value
    assert f"jpeg ({name})" in keyed(rd.multiselect, "rd_codecs_").options
    assert len(rd.get("plotly_chart")) >= 1
    shipped = write_builtin_samples(tmp_path / "imgs-shipped", ("chelsea",))
    run_sweep(shipped, ["jpeg"], {"jpeg": [30]}, tmp_path / "kodak" / "shipped.csv", metrics=("psnr",), progress=False)
    other_rd = page("app_pages/rate_distortion.py").run()  # another session: the shipped file, not this one's
    assert other_rd.multiselect(key="rd_files").value == ["kodak/shipped.csv"]
    assert not other_rd.exception and f"user/{name}.csv" not in other_rd.multiselect(key="rd_files").value
    # adding a codec brings its qualities into the spec
    at.multiselect(key="rs_codecs").set_value(["jpeg", "webp"]).run()
    assert "webp=" in at.text_input(key="rs_qualities_jpeg-webp").value
    at.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
    df = pd.read_csv(tmp_path / "user" / f"{name}.csv")
    assert len(df) == 6 * 2 and set(df["quality"]) == {20, 60}
    # bad input is a message, not a traceback
    at.text_input(key="rs_qualities_jpeg").set_value("jpeg=abc").run()
    at.button(key="rs_run").click().run()
    assert not at.exception and at.error
    # another session never adds to this file without asking
    other = page("app_pages/run_sweep.py").run()
    assert other.text_input(key="rs_name").value != name
    other.text_input(key="rs_name").set_value(name).run()
    other.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
    other.text_input(key="rs_qualities_jpeg").set_value("jpeg=30").run()
    other.button(key="rs_run").click().run()
    assert not other.exception and "exists" in other.error[0].value
    assert len(pd.read_csv(tmp_path / "user" / f"{name}.csv")) == 12


@pytest.mark.parametrize("typed, says", [("", "enter a name"), ("  ", "enter a name"), ("../x", "may use letters")])
def test_run_sweep_page_names_what_is_wrong_with_the_results_name(tmp_path, monkeypatch, typed, says):
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path / "results"))
    at = page("app_pages/run_sweep.py").run()
    at.text_input(key="rs_name").set_value(typed).run()
    at.button(key="rs_run").click().run()
    assert not at.exception and len(at.error) == 1
    assert says in at.error[0].value
    assert not (tmp_path / "results" / "user").is_dir() or not any((tmp_path / "results" / "user").iterdir())


@pytest.mark.parametrize("typed", ["/", "/proc", "..", "../..", "~", "/etc", "kodak/../../.."])
def test_run_sweep_page_reads_no_folder_outside_the_allowed_roots(tmp_path, monkeypatch, typed):
    data = tmp_path / "data"
    (data / "mine").mkdir(parents=True)
    monkeypatch.setenv("NICVIZ_DATA", str(data))
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path / "results"))
    at = page("app_pages/run_sweep.py").run()
    at.selectbox(key="rs_dataset").set_value("a folder under the data root").run()
    at.text_input(key="rs_folder").set_value(typed).run()
    at.button(key="rs_run").click().run()
    assert not at.exception and len(at.error) == 1
    msg = at.error[0].value
    assert "may read" in msg and str(tmp_path) not in msg and "Permission" not in msg


def test_run_sweep_page_sweeps_an_uploaded_zip_and_enforces_the_image_limit(tmp_path, monkeypatch):
    import io
    import zipfile

    from PIL import Image

    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    monkeypatch.setenv("NICVIZ_MAX_SWEEP_IMAGES", "3")
    from nicviz.datasets import dataset_from_uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, name in enumerate(["melanoma/a.png", "nevus/b.png", "../escape.png", ".hidden/c.png", "notes.txt"]):
            png = io.BytesIO()
            Image.new("RGB", (32, 32), (i * 40, 80, 120)).save(png, "PNG")
            zf.writestr(name, png.getvalue())
    ds = dataset_from_uploads([("set.zip", buf.getvalue())], tmp_path / "up", max_files=3)
    # ".." and hidden members are dropped, nothing lands outside the upload folder
    assert sorted(ds.image_id(p) for p in ds.files) == ["melanoma/a.png", "nevus/b.png"]
    assert not list(tmp_path.glob("escape.png")) and not (tmp_path / "up" / ".hidden").exists()
    with pytest.raises(Exception, match="more than 1 images"):
        dataset_from_uploads([("set.zip", buf.getvalue())], tmp_path / "up2", max_files=1)
    with pytest.raises(Exception, match="not a readable zip"):
        dataset_from_uploads([("bad.zip", b"PK nonsense")], tmp_path / "up3")
    # the page: a folder of 4 images is over the limit of 3, with a clear message
    data = tmp_path / "data"
    for i in range(4):
        (data / "four").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (i, i, i)).save(data / "four" / f"{i}.png")
    monkeypatch.setenv("NICVIZ_DATA", str(data))
    at = page("app_pages/run_sweep.py").run()
    at.selectbox(key="rs_dataset").set_value("a folder under the data root").run()
    at.text_input(key="rs_folder").set_value("four").run()
    at.button(key="rs_run").click().run()
    assert not at.exception and "at most 3" in at.error[0].value


@pytest.fixture(scope="module")
def classify_root(tmp_path_factory) -> Path:
    """Labelled (two ImageNet classes) and unlabelled classification results."""
    from PIL import Image

    from nicviz.datasets import builtin_sample, resolve_dataset

    root = tmp_path_factory.mktemp("cls-results")
    folder = root.parent / "animals"
    for cls, sample in (("Egyptian cat", "chelsea"), ("espresso", "coffee"), ("espresso", "rocket")):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(builtin_sample(sample)).save(folder / cls / f"{sample}.png")
    ds = resolve_dataset(str(folder))
    run_sweep(ds, ["jpeg"], {"jpeg": [1, 10, 90]}, root / "isic" / "lesions.csv", metrics=("psnr",),
              task="classify:imagenet-effnet-lite0", progress=False)
    flat = write_builtin_samples(root.parent / "flat", ("chelsea", "coffee"))
    run_sweep(flat, ["jpeg"], {"jpeg": [5, 50, 90]}, root / "kodak" / "consistency.csv", metrics=("psnr",),
              task="classify:imagenet-effnet-lite0", progress=False)
    return root


def test_skin_lesions_page(classify_root, monkeypatch):
    monkeypatch.setenv("NICVIZ_RESULTS", str(classify_root))
    at = page("app_pages/skin_lesions.py").run()
    assert not at.exception
    table = frame(at, "drop (points)")
    assert list(table["quality"]) == [1, 10, 90]
    assert table.set_index("quality").loc[90, "drop (points)"] <= table.set_index("quality").loc[1, "drop (points)"]
    assert not any("_" in c for c in table.columns)  # no column name in code's spelling
    summary = " ".join(m.value for m in at.markdown)
    assert "bits per pixel" in summary and "Accuracy went from" in summary
    at.selectbox(key="sk_rate").set_value(at.selectbox(key="sk_rate").options[0]).run()
    at.toggle(key="sk_changed").set_value(False).run()
    assert not at.exception
    assert any("predicted" in m.value for m in at.markdown)


def test_rate_distortion_page_shows_consistency(classify_root, results_root, tmp_path, monkeypatch):
    import shutil

    both = tmp_path / "both"
    shutil.copytree(results_root / "kodak", both / "kodak")
    for f in (classify_root / "kodak").iterdir():
        shutil.copy(f, both / "kodak" / f.name)
    monkeypatch.setenv("NICVIZ_RESULTS", str(both))
    at = page("app_pages/rate_distortion.py").run()
    assert not at.exception
    assert at.selectbox(key="rd_consistency").value == "kodak/consistency.csv"
    assert len(at.get("plotly_chart")) == 3


def test_compare_page_with_a_neural_codec():
    import streamlit as st

    from nicviz.codecs import register_codec, unregister_codec
    from nicviz.codecs.neural import NeuralCodec, RandomWeights

    register_codec("test-random-app", lambda: NeuralCodec(
        "test-random-app", "bmshj2018-factorized", RandomWeights("bmshj2018-factorized", seed=0), (1, 2)))
    try:
        st.cache_data.clear()
        at = page("app_pages/compare.py").run()
        at.selectbox(key="a_codec").set_value("test-random-app").run()
        assert not at.exception and not at.error
        assert at.select_slider(key="a_quality").options == ["1", "2"]
        row = metrics_row(at)
        assert row["codec"] == "test-random-app" and row["rate_mode"] == "bitstream" and row["bytes"] > 0
        at.select_slider(key="a_quality").set_value(1).run()
        assert not at.exception and metrics_row(at)["quality"] == 1
    finally:
        unregister_codec("test-random-app")
        st.cache_data.clear()


def test_compare_offers_a_downscale_before_a_neural_codec_gets_a_large_image(monkeypatch):
    import streamlit as st

    import nicviz.dashboard.widgets as w
    from nicviz.codecs import register_codec, unregister_codec
    from nicviz.codecs.neural import NeuralCodec, RandomWeights

    monkeypatch.setattr(w, "MAX_NEURAL_PIXELS", 40_000)  # astronaut is 512 x 512 = 262,144 pixels
    register_codec("test-random-big", lambda: NeuralCodec(
        "test-random-big", "bmshj2018-factorized", RandomWeights("bmshj2018-factorized", seed=0), (1,)))
    try:
        st.cache_data.clear()
        at = page("app_pages/compare.py").run()
        at.selectbox(key="a_codec").set_value("test-random-big").run()
        assert not at.exception and at.checkbox(key="cmp_downscale").value
        row = metrics_row(at)
        assert 8 * row["bytes"] / row["bpp"] == pytest.approx(40_000, rel=0.02)  # pixels coded: the downscale
        at.checkbox(key="cmp_downscale").uncheck().run()
        assert not at.exception and "too large for a neural codec" in at.error[0].value
        at.selectbox(key="a_codec").set_value("jpeg").run()  # classical codecs take the full image
        row = metrics_row(at)
        assert not at.exception and not at.error and 8 * row["bytes"] / row["bpp"] == pytest.approx(512 * 512)
    finally:
        unregister_codec("test-random-big")
        st.cache_data.clear()


def test_skin_lesions_page_compares_standard_and_compression_trained(tmp_path, monkeypatch):
    """Two classifiers in one file: the page offers both and shows the accuracy won back."""
    import json

    rows = []
    lost = {("classify", 10): 10, ("classify", 50): 2, ("classify:isic-effnet-lite0-robust", 10): 4}
    for task in ("classify", "classify:isic-effnet-lite0-robust"):
        for q, bpp in ((10, 0.3), (30, 0.45), (50, 0.6), (90, 1.0)):
            for i in range(20):
                ok = i >= lost.get((task, q), 0)
                label = "melanoma" if i % 2 else "nevus"
                other = "nevus" if label == "melanoma" else "melanoma"
                rows.append({"dataset": "lesions", "image": f"{label}/im{i:02d}.jpg", "codec": "jpeg", "quality": q,
                             "bpp": bpp, "psnr": 30.0, "task": task, "label": label,
                             "pred": label if ok else other, "pred_ref": label, "correct": ok,
                             "correct_ref": True, "flip": not ok, "top5_overlap": 1.0, "confidence": 0.8,
                             "confidence_ref": 0.9, "confidence_change": -0.1})
    out = tmp_path / "isic" / "two.csv"
    out.parent.mkdir()
    pd.DataFrame(rows).to_csv(out, index=False)
    Path(str(out) + ".meta.json").write_text(json.dumps({"task": "classify,classify:isic-effnet-lite0-robust",
                                                         "dataset": "lesions"}))
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    at = page("app_pages/skin_lesions.py").run()
    assert not at.exception, at.exception
    assert "sk_task" in [r.key for r in at.radio]
    assert any("won back" in h.value for h in at.subheader)
    won = frame(at, "accuracy won back (points)").iloc[0]
    assert won["quality"] == 50 and won["accuracy won back (points)"] == 10.0
    assert won["standard loses (points)"] == 10.0 and won["this one loses (points)"] == 0.0
    bd = frame(at, "BD-accuracy (points)").iloc[0]
    assert bd["BD-accuracy (points)"] > 0 and bd["classifier"] == "compression-trained (all codecs)"
    # the summary follows the chosen classifier
    before = frame(at, "drop (points)").set_index("quality").loc[50, "drop (points)"]
    at.radio(key="sk_task").set_value("classify:isic-effnet-lite0-robust").run()
    assert not at.exception
    assert before == 10.0 and frame(at, "drop (points)").set_index("quality").loc[50, "drop (points)"] == 0.0


def test_skin_lesions_opens_on_the_clinicians_check(tmp_path, monkeypatch):
    """The first thing on the page: a lesion image, its diagnosis before and after in
    words with the true diagnosis, where the classifier looks, then the study's evidence
    for the chosen codec in sentences; the research tables sit in their own tab."""
    import json

    from PIL import Image

    from nicviz.datasets import builtin_sample

    data = tmp_path / "data"
    for cls, sample in (("melanoma", "chelsea"), ("nevus", "coffee")):
        (data / "isic" / "test" / cls).mkdir(parents=True)
        Image.fromarray(builtin_sample(sample)[:180, :180]).save(data / "isic" / "test" / cls / f"{sample}.png")
    results = tmp_path / "results" / "isic"
    results.mkdir(parents=True)
    rows = [{"dataset": "isic-test", "image": f"{lab}/im{i}.jpg", "codec": "jpeg", "quality": q, "bpp": bpp,
             "psnr": 30.0, "task": "classify", "label": lab, "pred_ref": lab,
             "pred": lab if ok else "nevus" if lab == "melanoma" else "melanoma",
             "correct": ok, "correct_ref": True, "flip": not ok, "top5_overlap": 1.0, "confidence": 0.8,
             "confidence_ref": 0.9, "confidence_change": -0.1}
            for q, bpp in ((10, 0.3), (90, 1.5)) for lab in ("melanoma", "nevus") for i in range(8)
            for ok in [q == 90 or i >= 3]]
    pd.DataFrame(rows).to_csv(results / "test.csv", index=False)
    (results / "test.csv.meta.json").write_text(json.dumps({"task": "classify", "dataset": "isic-test"}))
    monkeypatch.setenv("NICVIZ_DATA", str(data))
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path / "results"))
    at = page("app_pages/skin_lesions.py").run()
    assert not at.exception, at.exception
    assert at.tabs[0].label == "Check a lesion image" and at.tabs[1].label == "Research tables"
    assert at.selectbox(key="sk_img_isic-test").value == "melanoma/chelsea.png"
    check = at.tabs[0]
    boxes = [*check.error, *check.warning, *check.success]
    assert len(boxes) == 1 and "True diagnosis (from the dataset): **melanoma**" in boxes[0].value
    assert any("overlap by" in c.value for c in check.caption)  # Grad-CAM maps and their overlap
    text = " ".join(m.value for m in check.markdown)
    assert "the model recognises 8 of 8 melanomas" in text
    assert "5 of the 8 melanomas were still recognised (8 on the originals); 3 were called nevus" in text
    at.selectbox(key="sk_ucodec").set_value("webp").run()
    assert not at.exception and any("did not measure webp" in i.value for i in at.tabs[0].info)
    server = str(tmp_path)
    assert not any(server in e.value for e in [*at.markdown, *at.caption, *at.info, *at.error, *at.warning])


def test_the_sweep_form_keeps_its_values_when_the_user_visits_another_page():
    at = page("app.py").run()
    at.switch_page("app_pages/run_sweep.py").run()
    at.multiselect(key="rs_codecs").set_value(["jpeg"]).run()
    at.text_input(key="rs_name").set_value("keep-me").run()
    at.text_input(key="rs_qualities_jpeg").set_value("jpeg=5,50").run()
    at.switch_page("app_pages/compare.py").run()
    at.switch_page("app_pages/run_sweep.py").run()
    assert not at.exception and not at.warning
    assert at.multiselect(key="rs_codecs").value == ["jpeg"]
    assert at.text_input(key="rs_name").value == "keep-me"
    assert at.text_input(key="rs_qualities_jpeg").value == "jpeg=5,50"


def test_a_page_bug_is_one_line_and_no_traceback(tmp_path, monkeypatch):
    """app.py's guard: a page that raises shows one line; the traceback goes to the log."""
    import streamlit as st

    import nicviz.dashboard.widgets as w

    def broken(*a, **k):
        raise KeyError("['bpp', 'psnr'] not in index")

    monkeypatch.setattr(w, "available_codecs", broken)
    st.cache_data.clear()
    at = page("app.py").run()
    assert not at.exception
    assert len(at.error) == 1 and "internal error (KeyError)" in at.error[0].value
    assert "Traceback" not in at.error[0].value and str(ROOT) not in at.error[0].value


def test_the_study_evidence_for_a_codec_swept_into_its_own_file_comes_from_that_file(tmp_path):
    """The overfitted codec's ISIC sweep is a file of its own (it grows across sessions):
    choosing it on Skin lesions quotes that file, not "the study did not measure it"."""
    from nicviz.dashboard.lesions import _study_file

    def frame(dataset, codec, task="classify"):
        return pd.DataFrame({"dataset": [dataset], "codec": [codec], "task": [task]})

    frames = {"isic/test.csv": (tmp_path / "a.csv", frame("isic-test", "jpeg")),
              "kodak/other.csv": (tmp_path / "b.csv", frame("kodak", "overfitted-fast")),
              "overfitted/isic-test.csv": (tmp_path / "c.csv", frame("isic-test", "overfitted-fast"))}
    assert _study_file(frames, "isic-test", "jpeg", "classify") == "isic/test.csv"
    assert _study_file(frames, "isic-test", "overfitted-fast", "classify") == "overfitted/isic-test.csv"
    # another classifier, or another dataset, than the one measured: the study file (which says so)
    assert _study_file(frames, "isic-test", "overfitted-fast", "classify:isic-effnet-lite0-robust") == "isic/test.csv"
    assert _study_file(frames, "isic-fullres-test", "overfitted-fast", "classify") == "isic/test.csv"


def test_rate_distortion_opens_on_kodak_beside_the_overfitted_isic_sweep(results_root, tmp_path, monkeypatch):
    """Files under overfitted/ are shown by default, and a dataset such as "isic-test"
    sorts before "kodak": the page still opens on Kodak, the study's rate-distortion set."""
    import shutil

    small = pd.read_csv(results_root / "kodak" / "small.csv")
    for name, dataset in (("kodak/classical.csv", "kodak"), ("overfitted/isic-rd.csv", "isic-test")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        small.assign(dataset=dataset).to_csv(tmp_path / name, index=False)
        shutil.copy(results_root / "kodak" / "small.csv.meta.json", tmp_path / f"{name}.meta.json")
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    at = page("app_pages/rate_distortion.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="rd_dataset").value == "kodak"
    assert set(at.selectbox(key="rd_dataset").options) == {"kodak", "isic-test"}


def test_bd_rate_compares_a_growing_sweep_on_the_images_it_shares_with_the_anchor(results_root, tmp_path,
                                                                                   monkeypatch):
    """A codec swept on one image of three is compared with the anchor on that image, not with
    the anchor's mean over all three (the images' difficulty is not the codec's merit)."""
    import shutil

    from nicviz.analysis import bd_rate

    small = pd.read_csv(results_root / "kodak" / "small.csv")
    grown = small[(small["codec"] == "jpeg") | (small["image"] == "coffee.png")]
    (tmp_path / "kodak").mkdir()
    grown.to_csv(tmp_path / "kodak" / "grown.csv", index=False)
    shutil.copy(results_root / "kodak" / "small.csv.meta.json", tmp_path / "kodak" / "grown.csv.meta.json")
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    at = page("app_pages/rate_distortion.py").run()
    assert not at.exception and not at.error
    bd = frame(at, "BD-rate (%)").set_index("codec")
    assert bd.loc["webp", "images"] == 1
    on_coffee = bd_rate(small[small["image"] == "coffee.png"], "jpeg", "webp").bd_rate
    over_all = bd_rate(grown, "jpeg", "webp").bd_rate
    assert abs(on_coffee - over_all) > 0.5  # the two readings differ: the test can tell them apart
    assert bd.loc["webp", "BD-rate (%)"] == round(on_coffee, 1)
    # one click holds every curve to the images the growing sweep has: the image filter is set to them
    keyed(at.button, "rd_common_").click().run()
    assert not at.exception
    assert keyed(at.multiselect, "rd_images_").value == ["coffee.png"]
    means = next(d.value for d in at.dataframe if {"images", "quality"} <= set(d.value.columns))
    assert set(means["codec"]) == {"jpeg", "webp"} and (means["images"] == 1).all()  # jpeg too: coffee only


def test_plates_page_draws_the_overfitted_sweep_beside_the_others_on_its_plates(results_root, tmp_path,
                                                                               monkeypatch):
    """An overfitted-codec sweep of 3 of the 10 plates (a sweep still growing): the page adds
    it beside the shipped file's codecs, holds every codec to those 3 plates, and its
    gallery decodes the stored bitstreams (it never fits a plate again for display)."""
    import shutil

    from nicviz.codecs import register_codec, unregister_codec
    from nicviz.codecs.overfitted.codec import OverfittedCodec
    from nicviz.datasets import resolve_dataset
    from nicviz.results import dataset_folder, meta_path

    shutil.copytree(results_root / "plates", tmp_path / "plates")
    meta = json.loads(meta_path(tmp_path / "plates" / "ocr.csv").read_text())
    plates = resolve_dataset(str(dataset_folder(meta)))
    assert plates.name == meta["dataset"]
    fitted: list[int] = []

    class Counted(OverfittedCodec):
        def encode(self, rgb, quality, progress=None):
            fitted.append(1)
            return super().encode(rgb, quality, progress)

    register_codec("overfitted-brief", lambda: Counted("overfitted-brief", iterations=10))
    try:
        out = tmp_path / "overfitted" / "plates.csv"
        run_sweep(plates.sample(3), ["overfitted-brief"], {"overfitted-brief": [2]}, out, metrics=("psnr",),
                  task="ocr", progress=False, bitstreams=tmp_path / "overfitted" / "plates-bitstreams")
        sampled = set(pd.read_csv(out)["image"])
        assert len(sampled) == 3 and len(fitted) == 3
        monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
        at = page("app_pages/plates.py").run()
        assert not at.exception and not at.error
        assert at.selectbox(key="pl_file").value == "plates/ocr.csv"
        assert at.multiselect(key="pl_beside").value == []  # the study's figures over every plate come first
        assert set(frame(at, "read exactly (%)")["codec"]) == {"jpeg"}
        at.multiselect(key="pl_beside").set_value(["overfitted/plates.csv"]).run()
        assert any("3 of 10 plates" in c.value for c in at.caption)
        table = frame(at, "read exactly (%)")
        assert set(table["codec"]) == {"jpeg", "overfitted-brief"}
        at.selectbox(key="pl_codec").set_value("overfitted-brief").run()
        at.selectbox(key="pl_which").set_value("all").run()
        assert not at.exception and any("plates 1-3 of 3" in m.value for m in at.markdown)
        assert len(fitted) == 3  # the gallery decoded the kept streams: no plate was fitted again
        assert not [c.value for c in at.caption if "was not kept" in c.value]
        at.multiselect(key="pl_beside").set_value([]).run()  # without it: the shipped file alone, all plates
        assert set(frame(at, "read exactly (%)")["codec"]) == {"jpeg"}
        assert not any("of 10 plates" in c.value for c in at.caption)
    finally:
        unregister_codec("overfitted-brief")


def test_an_unreadable_overfitted_plates_file_is_named_and_left_out(results_root, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(results_root / "plates", tmp_path / "plates")
    (tmp_path / "overfitted").mkdir()
    (tmp_path / "overfitted" / "plates.csv").write_bytes(b"\x00\xff not a results file")
    meta = json.loads((tmp_path / "plates" / "ocr.csv.meta.json").read_text())
    (tmp_path / "overfitted" / "plates.csv.meta.json").write_text(json.dumps({**meta, "codecs": ["overfitted-fast"]}))
    monkeypatch.setenv("NICVIZ_RESULTS", str(tmp_path))
    at = page("app_pages/plates.py").run()
    assert not at.exception and not at.error
    at.multiselect(key="pl_beside").set_value(["overfitted/plates.csv"]).run()
    assert not at.exception and not at.error
    assert any(w.value.startswith("overfitted/plates.csv is left out") for w in at.warning)
    assert set(frame(at, "read exactly (%)")["codec"]) == {"jpeg"}
    assert not any(str(tmp_path) in w.value for w in at.warning)
