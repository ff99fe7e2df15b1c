"""Classifiers, the classify task, and the statistics of the accuracy drop."""

from __future__ import annotations

import json
import math
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nicviz.analysis import (
    bootstrap_drop_ci,
    bpp_where_drop_exceeds,
    classification_summary,
    confusion,
    mcnemar_exact,
    per_class_recall,
)
from nicviz.cli import main
from nicviz.codecs import get_codec
from nicviz.datasets import builtin_sample
from nicviz.tasks.classify.models import KerasClassifier, get_classifier
from nicviz.training.isic import clean_train, holdout_split, labelled_folder


def test_imagenet_classifier_stable_under_mild_compression():
    clf = get_classifier("imagenet-effnet-lite0")
    cat = builtin_sample("chelsea")
    jpeg = get_codec("jpeg")
    mild = jpeg.decode(jpeg.encode(cat, 95))
    p = clf.predict_proba([cat, mild])
    assert p.shape == (2, 1000) and np.allclose(p.sum(axis=1), 1, atol=1e-5)
    assert clf.classes[int(p[0].argmax())] in {"Egyptian cat", "tabby", "tiger cat"}
    assert p[0].argmax() == p[1].argmax()


def test_classify_sweep_on_labelled_folder(tmp_path, capsys):
    folder = tmp_path / "animals"
    for cls, sample in (("Egyptian cat", "chelsea"), ("espresso", "coffee")):
        (folder / cls).mkdir(parents=True)
        Image.fromarray(builtin_sample(sample)).save(folder / cls / f"{sample}.png")
    (folder / "unsorted.png").write_bytes(b"")  # a bad file at the top: reported, skipped
    out = tmp_path / "cls.csv"
    rc = main(["sweep", str(folder), "--task", "classify", "--classifier", "imagenet-effnet-lite0",
               "--codec", "jpeg", "--quality", "2,90", "--metrics", "psnr", "--out", str(out), "--quiet"])
    assert rc == 2 and "unsorted.png" in capsys.readouterr().err
    df = pd.read_csv(out)
    assert len(df) == 4 and set(df["label"]) == {"Egyptian cat", "espresso"}
    assert df["correct_ref"].all()
    hi = df[df.quality == 90]
    assert (~hi["flip"]).all() and (hi["top5_overlap"] >= 0.6).all()
    assert main(["classify-report", str(out)]) == 0
    report = capsys.readouterr().out
    assert "mcnemar_p" in report and "jpeg:" in report


def test_one_sweep_classifies_each_reconstruction_with_several_classifiers(tmp_path):
    folder = tmp_path / "animals"
    (folder / "Egyptian cat").mkdir(parents=True)
    Image.fromarray(builtin_sample("chelsea")).save(folder / "Egyptian cat" / "chelsea.png")
    out = tmp_path / "two.csv"
    args = ["sweep", str(folder), "--task", "classify", "--classifier", "imagenet-effnet-lite0,isic-effnet-lite0",
            "--codec", "jpeg", "--quality", "5,90", "--metrics", "psnr", "--out", str(out), "--quiet"]
    assert main(args) == 0
    df = pd.read_csv(out)
    assert sorted(df["task"].unique()) == ["classify", "classify:imagenet-effnet-lite0"]
    assert len(df) == 4
    by_task = {t: g.set_index("quality") for t, g in df.groupby("task")}
    # one compression per (image, quality): the rate and quality columns are the same rows
    for col in ("bytes", "psnr"):
        assert (by_task["classify"][col] == by_task["classify:imagenet-effnet-lite0"][col]).all()
    assert by_task["classify:imagenet-effnet-lite0"]["correct_ref"].all()
    # "Egyptian cat" is no ISIC class: the skin classifier's rows are unlabelled
    assert by_task["classify"]["label"].isna().all() and by_task["classify"]["correct"].isna().all()
    meta = json.loads(Path(str(out) + ".meta.json").read_text())
    assert meta["task"] == "classify:imagenet-effnet-lite0,classify"
    assert main(args) == 0 and len(pd.read_csv(out)) == 4  # resumed: nothing added twice


def test_mcnemar_and_bootstrap():
    ref = np.array([True] * 10)
    comp = np.array([True] * 4 + [False] * 6)
    assert mcnemar_exact(ref, comp) == pytest.approx(2 * 0.5**6)
    assert mcnemar_exact(ref, ref) == 1.0
    lo, hi = bootstrap_drop_ci(ref, comp, n_boot=4000)
    assert lo <= 60 <= hi and lo > 20
    same = bootstrap_drop_ci(ref, ref)
    assert same == (0.0, 0.0)


def test_classification_summary_numbers():
    rows = []
    for i in range(20):
        label = "a" if i < 10 else "b"
        for q, wrong in ((10, i % 4 == 0), (90, False)):
            pred = ("b" if label == "a" else "a") if wrong else label
            rows.append({"image": f"{i}.png", "codec": "jpeg", "quality": q, "bpp": q / 100, "psnr": 30.0,
                         "label": label, "pred": pred, "pred_ref": label, "correct": not wrong,
                         "correct_ref": True, "flip": wrong, "top5_overlap": 1.0,
                         "confidence_change": -0.1 if wrong else 0.0})
    df = pd.DataFrame(rows)
    s = classification_summary(df).set_index("quality")
    assert s.loc[10, "accuracy"] == 75 and s.loc[10, "drop"] == 25 and s.loc[10, "flip_rate"] == 0.25
    assert s.loc[90, "drop"] == 0 and s.loc[90, "mcnemar_p"] == 1.0
    assert s.loc[10, "drop_lo"] <= 25 <= s.loc[10, "drop_hi"]
    assert s.loc[10, "mcnemar_p"] == pytest.approx(2 * 0.5**5)
    assert bpp_where_drop_exceeds(s.reset_index(), 5) == {"jpeg": pytest.approx(0.1)}
    low = df[df.quality == 10]
    assert per_class_recall(low)["a"] == pytest.approx(7 / 10)
    cm = confusion(low)
    assert cm.loc["a", "b"] == 3 and cm.values.sum() == 20


def test_keras_then_a_neural_codec_in_one_process_does_not_crash():
    """TensorFlow, then torch's triton (CompressAI imports it) segfaults a process; nicviz
    loads Keras so that a dashboard serving a Keras classifier can still run neural codecs."""
    import subprocess
    import sys

    if find_spec("keras") is None:  # never imported here: that import itself is what crashes
        pytest.skip("tensorflow-cpu is not installed")
    code = ("from nicviz.tasks.classify.models import import_keras; import_keras(); "
            "from nicviz.codecs import get_codec; import compressai.zoo; print('alive')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "alive" in run.stdout, (run.returncode, run.stderr[-500:])


def test_keras_densenet201_h5_roundtrip(tmp_path):
    if find_spec("keras") is None:
        pytest.skip("tensorflow-cpu is not installed")
    from nicviz.tasks.classify.models import import_keras

    keras = import_keras()  # the order nicviz loads it in (CompressAI first: see the next test)
    model = keras.applications.DenseNet201(weights=None, classes=9, input_shape=(96, 96, 3))
    path = tmp_path / "skin_disease_model.h5"
    model.save(path)
    classes = [f"class {i}" for i in range(9)]
    (tmp_path / "skin_disease_model.json").write_text(json.dumps({"classes": classes, "preprocess": "scale01"}))
    clf = KerasClassifier(path)
    assert clf.input_size == (96, 96) and clf.classes == classes
    p = clf.predict_proba([builtin_sample("chelsea"), builtin_sample("coffee")])
    assert p.shape == (2, 9) and np.allclose(p.sum(axis=1), 1, atol=1e-4)
    # same input, same output as Keras itself (our resize + preprocessing, then the model)
    x = np.asarray(Image.fromarray(builtin_sample("chelsea")).resize((96, 96), Image.BILINEAR), np.float32) / 255
    assert np.allclose(np.asarray(model(x[None], training=False))[0], p[0], atol=1e-4)
    with pytest.raises(ValueError, match="class names"):
        KerasClassifier(path, classes=["a", "b"])
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot load Keras model"):
        KerasClassifier(bad)


def test_cleaning_rules_on_a_made_tree(tmp_path):
    root = tmp_path / "isic"
    files = {
        "train/nevus/A.jpg": 1, "train/actinic keratosis/A.jpg": 1,  # AK/nevus pair: drop nevus copy
        "train/melanoma/B.jpg": 2, "train/seborrheic keratosis/B.jpg": 2,  # unknown: drop both
        "train/nevus/C.jpg": 3, "test/actinic keratosis/C.jpg": 3,  # leakage: drop train copy
        "train/melanoma/D.jpg": 4, "train/melanoma/D(1).jpg": 4,  # identical bytes: keep one
        "train/nevus/E.jpg": 5,
    }
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (files[rel] * 20, 0, 0)).save(p)
    (root / "duplicates.csv").write_text(
        "kind,files\n"
        "same_file_name_in_several_folders,train/actinic keratosis/A.jpg | train/nevus/A.jpg\n"
        "same_file_name_in_several_folders,train/melanoma/B.jpg | train/seborrheic keratosis/B.jpg\n"
        "same_file_name_in_several_folders,train/nevus/C.jpg | test/actinic keratosis/C.jpg\n"
        "identical_bytes_different_name,train/melanoma/D(1).jpg | train/melanoma/D.jpg\n")
    kept, dropped = clean_train(root)
    assert sorted(x.key for x in kept) == ["actinic keratosis/A.jpg", "melanoma/D.jpg", "nevus/E.jpg"]
    assert sum(dropped.values()) == 5


@pytest.fixture(scope="module")
def isic(data_dir) -> Path:
    root = data_dir / "isic"
    if not (root / "test").is_dir():
        pytest.skip(f"ISIC folder not found at {root}")
    return root


def test_real_isic_cleaning_and_split(isic):
    kept, dropped = clean_train(isic)
    test_names = {p.path.name for p in labelled_folder(isic / "test")}
    assert not test_names & {x.path.name for x in kept}
    assert dropped["nevus copy of an actinic keratosis"] == 62
    train, held = holdout_split(kept, 0.15, 0)
    assert not {x.key for x in train} & {x.key for x in held}
    assert abs(len(held) / len(kept) - 0.15) < 0.01
    assert holdout_split(kept, 0.15, 0)[1] == held  # fixed seed


@pytest.mark.parametrize("name", ["isic-effnet-lite0", "isic-effnet-lite0-robust", "isic-effnet-lite0-robust-no-avif"])
def test_builtin_isic_classifier_scores(isic, name):
    """Each shipped classifier reproduces the isic/test accuracy its JSON records."""
    from nicviz.tasks.classify.models import MODELS_DIR

    if not (MODELS_DIR / f"{name}.pt").is_file():
        pytest.skip(f"{name} is not shipped in this version")
    clf = get_classifier(name)
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    items = labelled_folder(isic / "test")
    from nicviz.images import load_image

    probs = np.concatenate([clf.predict_proba([load_image(i.path) for i in items[k:k + 32]])
                            for k in range(0, len(items), 32)])
    acc = float(np.mean([clf.classes[int(p.argmax())] == i.label for p, i in zip(probs, items, strict=True)]))
    assert acc >= 0.45
    assert math.isclose(acc, meta["scores"]["isic_test"]["accuracy"], abs_tol=0.02)
    if name != "isic-effnet-lite0":  # the same split and seed as the standard model, trained on compressed images
        std = json.loads((MODELS_DIR / "isic-effnet-lite0.json").read_text())
        assert meta["held_out_images"] == std["held_out_images"] and meta["seed"] == std["seed"]
        assert meta["initialisation"] == "fine-tuned from isic-effnet-lite0.pt"
        codecs = set(meta["compression_training"]["codecs"])
        assert ("avif" in codecs) == (name == "isic-effnet-lite0-robust") and "jpeg" in codecs


@pytest.mark.parametrize("lost,gained,total", [(11, 4, 118), (9, 2, 64), (6, 0, 30), (3, 3, 50), (20, 9, 118),
                                               (0, 0, 10), (14, 5, 64)])
def test_drop_interval_agrees_with_mcnemar(lost, gained, total):
    from nicviz.analysis import exact_drop_ci

    rest = total - lost - gained
    ref = np.array([True] * lost + [False] * gained + [True] * (rest // 2) + [False] * (rest - rest // 2))
    comp = np.array([False] * lost + [True] * gained + list(ref[lost + gained:]))
    lo, hi = exact_drop_ci(ref, comp)
    p = mcnemar_exact(ref, comp)
    assert lo <= 100 * (lost - gained) / total <= hi
    assert (lo > 0 or hi < 0) == (p < 0.05), (lo, hi, p)


def test_the_case_where_bootstrap_and_mcnemar_disagreed_now_agrees():
    # 9 images lost, 2 gained of 64 (the page's case): McNemar p = 0.065, bootstrap CI above 0
    ref = np.array([True] * 9 + [False] * 2 + [True] * 26 + [False] * 27)
    comp = np.array([False] * 9 + [True] * 2 + [True] * 26 + [False] * 27)
    boot_lo, _ = bootstrap_drop_ci(ref, comp, n_boot=4000)
    assert boot_lo > 0 and mcnemar_exact(ref, comp) > 0.05  # the old pair contradicted itself
    from nicviz.analysis import exact_drop_ci

    lo, hi = exact_drop_ci(ref, comp)
    assert lo < 0 < hi


def test_plain_summary_names_the_malignant_classes_first_and_agrees_with_itself():
    from nicviz.analysis import classification_summary
    from nicviz.analysis.classify import class_outcomes, most_informative
    from nicviz.analysis.wording import plain_summary

    rows = []
    # 16 melanomas: 4 recognised on the originals, 2 after compression, 9 called nevus
    for i in range(16):
        ref = "melanoma" if i < 4 else "nevus"
        pred = "melanoma" if i < 2 else "nevus" if i < 11 else "seborrheic keratosis"
        rows.append(("melanoma", ref, pred))
    rows += [("nevus", "nevus", "nevus")] * 14 + [("nevus", "nevus", "melanoma")] * 2
    df = pd.DataFrame([{"dataset": "d", "image": f"{k}.png", "codec": "jpeg", "quality": 10, "task": "classify",
                        "bpp": 0.18, "label": lab, "pred_ref": ref, "pred": pred, "correct_ref": ref == lab,
                        "correct": pred == lab, "flip": ref != pred, "top5_overlap": 1.0, "confidence_change": 0.0}
                       for k, (lab, ref, pred) in enumerate(rows)])
    oc = class_outcomes(df)
    assert list(oc["class"]) == ["melanoma", "nevus"]  # malignant first
    mel = oc.iloc[0]
    assert (mel["recognised_ref"], mel["recognised"], mel["called_instead"], mel["called_instead_n"]) == \
        (4, 2, "nevus", 9)
    summary = classification_summary(df)
    text = plain_summary(summary.iloc[0], df)
    assert "2 of the 16 melanomas were still recognised (4 on the originals); 9 were called nevus" in text
    r = summary.iloc[0]
    significant = "Compression lowered the accuracy" in text
    assert significant == (r["mcnemar_p"] < 0.05) == (r["drop_lo"] > 0 or r["drop_hi"] < 0)
    assert significant or "we cannot tell" in text
    assert most_informative(summary) == ("jpeg", 10)


def _two_classifier_rows() -> pd.DataFrame:
    """20 images, JPEG at q10/q50/q90: the standard model loses 2 images at q50 and 10 at
    q10; the compression-trained one loses none at q50 and 4 at q10."""
    rows = []
    lost = {("classify", 10): 10, ("classify", 50): 2, ("classify:robust", 10): 4, ("classify:robust", 50): 0}
    for task in ("classify", "classify:robust"):
        for q, bpp in ((10, 0.3), (50, 0.6), (90, 1.0)):
            for i in range(20):
                ok = i >= lost.get((task, q), 0)
                rows.append({"image": f"im{i:02d}", "codec": "jpeg", "quality": q, "bpp": bpp, "task": task,
                             "label": "nevus", "pred": "nevus" if ok else "melanoma", "pred_ref": "nevus",
                             "correct": ok, "correct_ref": True, "flip": not ok, "top5_overlap": 1.0,
                             "confidence_change": 0.0})
    return pd.DataFrame(rows)


def test_accuracy_won_back_at_the_standard_models_first_loss():
    from nicviz.analysis.classify import accuracy_won_back

    won = accuracy_won_back(_two_classifier_rows(), "classify", "classify:robust", 5.0)
    assert len(won) == 1
    r = won.iloc[0]
    # first loss of more than 5 points from the top: q50 (drop 10), not q10 (drop 50)
    assert r["quality"] == 50 and r["standard_drop"] == pytest.approx(10.0) and r["other_drop"] == 0
    assert r["won_back"] == pytest.approx(10.0)
    assert r["won_back_p"] == pytest.approx(mcnemar_exact(np.r_[np.zeros(2), np.ones(18)] > 0, np.ones(20) > 0))
    assert r["won_back_lo"] <= 10.0 <= r["won_back_hi"]


def test_classify_report_with_two_classifiers(tmp_path, capsys):
    out = tmp_path / "two.csv"
    _two_classifier_rows().to_csv(out, index=False)
    assert main(["classify-report", str(out), "--boot", "50"]) == 0
    text = capsys.readouterr().out
    assert "== classify:robust" in text
    assert "jpeg q50 (0.600 bpp): standard loses 10.0" in text and "won back +10.0" in text
    assert "jpeg: classify:robust vs classify: BD-accuracy +" in text
