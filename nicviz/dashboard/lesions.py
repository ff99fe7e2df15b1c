"""The Skin lesions page's parts: the clinician's check of one lesion image (diagnosis
before and after, in words; where the classifier looks) and the study's evidence for a
codec in sentences. The research tables live in the page below these."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from nicviz.analysis.wording import count, originals_sentence, plain_summary, verdict
from nicviz.dashboard.tables import summary_table
from nicviz.dashboard.widgets import (
    available_codecs,
    cached_evaluate,
    classifier,
    classify,
    dataset_choices,
    dataset_image,
    dataset_images,
    load_upload,
    quality_picker,
    size_guard,
)
from nicviz.results import fitting_effort, fitting_iterations, whole_images
from nicviz.tasks.classify.models import ISIC_MODELS, MODELS_DIR

__all__ = ["lesion_check", "study_evidence", "classifier_name", "class_maps"]

#: where the clinician's test images come from: label -> dataset name
SOURCES = {"ISIC test image (180 px)": "isic-test", "ISIC test image, full resolution": "isic-fullres-test"}


def classifier_name(task: str) -> str:
    """``classify`` / ``classify:<spec>`` (or a bare spec) in words."""
    spec = task.partition(":")[2] if task.startswith("classify") else task
    spec = spec or "isic-effnet-lite0"
    return ISIC_MODELS.get(spec, spec)


@st.cache_data(show_spinner=False, max_entries=32)
def class_maps(rgb: np.ndarray, recon: np.ndarray, spec: str) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """Grad-CAM of each image's predicted class, both laid over their image, their overlap
    (0..1) and the seconds both maps took; ``None`` for a classifier without maps."""
    from nicviz.tasks.classify.cam import grad_cam, map_overlap, overlay, supports

    clf, _ = classifier(spec)
    if clf is None or not supports(clf):
        return None
    t = time.perf_counter()
    a, b = grad_cam(clf, rgb), grad_cam(clf, recon)
    return overlay(rgb, a), overlay(recon, b), map_overlap(a, b), time.perf_counter() - t


def _recognised(frames: dict, dataset: str) -> set[str]:
    """Images of ``dataset`` the standard classifier diagnoses right on the original (study file)."""
    key = STUDY_FILES.get(dataset)
    if not frames or key not in frames:
        return set()
    df = frames[key][1]
    ok = df[(df["task"].astype(str) == "classify") & (df["pred_ref"].astype(str) == df["label"].astype(str))]
    return set(ok["image"].astype(str))


def _pick_image(frames: dict) -> tuple[np.ndarray | None, str, str | None, str | None]:
    """The image to check: ``(rgb, name, true label or None, dataset name or None)``. A test
    set opens on a melanoma the model recognises on the original (so what compression
    changes is what the page shows)."""
    have = dataset_choices()
    options = [label for label, ds in SOURCES.items() if ds in have] + ["Upload your own"]
    source = st.radio("Lesion image", options, horizontal=True, key="sk_source")
    if source == "Upload your own":
        up = st.file_uploader("Dermoscopy image (JPEG, PNG, ...)", key="sk_upload")
        if up is None:
            st.info("Upload a dermoscopy image, or pick one of the ISIC test images above.")
            return None, "", None, None
        rgb, err = load_upload(up.getvalue(), up.name)
        if err:
            st.error(err)
        return rgb, up.name, None, None
    folder = have[SOURCES[source]]
    images = dataset_images(folder)
    if not images:
        st.info("No images in this dataset on this server.")
        return None, "", None, None
    known = _recognised(frames, SOURCES[source])
    melanomas = [i for i, name in enumerate(images) if name.startswith("melanoma/")]
    default = next((i for i in melanomas if images[i] in known), melanomas[0] if melanomas else 0)
    name = st.selectbox("Image (true diagnosis / file)", images, index=default, key=f"sk_img_{SOURCES[source]}")
    rgb, err = dataset_image(folder, name)
    if err:
        st.error(err)
    return rgb, name, name.split("/")[0] if "/" in name else None, SOURCES[source]


def lesion_check(frames: dict | None = None) -> dict:
    """Pick or upload a lesion image, compress it, and say first, in plain words, what
    happened to the diagnosis; the maps of where the classifier looks follow. Returns
    what was chosen (``codec``, ``bpp`` reached, classifier ``task``, ``dataset``): the
    evidence below follows it."""
    shipped = [m for m in ISIC_MODELS if (MODELS_DIR / f"{m}.pt").is_file()] or ["isic-effnet-lite0"]
    rgb, name, truth, dataset = _pick_image(frames or {})
    codecs = available_codecs()
    c1, c2, c3 = st.columns([1, 1, 1])
    codec = c1.selectbox("Codec", codecs, index=codecs.index("jpeg") if "jpeg" in codecs else 0, key="sk_ucodec")
    quality = quality_picker(codec, "Quality", "sk_uq", c2)
    spec = c3.selectbox("Classifier", shipped, format_func=classifier_name, key="sk_uclf",
                        help="standard: trained on original images. Compression-trained: also shown compressed "
                             "copies of every training image and taught to give both the same diagnosis.")
    chosen: dict = {"codec": codec, "bpp": None, "task": "classify" if spec == "isic-effnet-lite0" else f"classify:{spec}",
              "dataset": dataset}
    clf, why = classifier(spec)
    if clf is None:
        st.error(f"The classifier is unavailable on this server: {why}")
        return chosen
    if rgb is None:
        return chosen
    rgb = size_guard(rgb, [codec], "sk_downscale")
    if rgb is None:
        return chosen
    res, err = cached_evaluate(rgb, codec, quality)
    if err:
        st.error(err)
        return chosen
    if res is None:
        return chosen
    row, recon = res[0], res[1]
    before, after = classify(rgb, spec), classify(recon, spec)
    if before is None or after is None:
        st.error("The classifier is unavailable on this server.")
        return chosen
    (classes, p0), (_, p1) = before, after
    v = verdict(classes, p0, p1, truth=truth)
    verdict_box = st.container(key="sk_verdict")  # the answer, told apart from error messages by its key
    box = {"error": verdict_box.error, "warning": verdict_box.warning, "success": verdict_box.success}[v.level]
    box(f"**{v.headline}**  \n" + "  \n".join(v.details))
    a, b = st.columns(2)
    top0, top1 = int(np.argmax(p0)), int(np.argmax(p1))
    a.image(rgb, caption=f"original: {classes[top0]} ({100 * p0[top0]:.0f} %)", width="stretch")
    b.image(recon, caption=f"{codec} quality {quality:g}, {row['bpp']:.2f} bits per pixel: {classes[top1]} "
                           f"({100 * p1[top1]:.0f} %)", width="stretch")
    if st.toggle("Show where the classifier looks (Grad-CAM)", value=True, key="sk_cam"):
        maps = class_maps(rgb, recon, spec)
        if maps is None:
            st.info("Maps are drawn for the built-in classifiers only.")
        else:
            ma, mb, overlap, seconds = maps
            m1, m2 = st.columns(2)
            m1.image(ma, caption=f"original: where it looks for {classes[top0]}", width="stretch")
            m2.image(mb, caption=f"compressed: where it looks for {classes[top1]}", width="stretch")
            st.caption(f"The 20 % of the image each map ranks highest overlap by **{100 * overlap:.0f} %** "
                       f"(100 %: the classifier looks at the same place). Grad-CAM (Selvaraju et al., 2017) of "
                       f"the predicted class at the network's last convolution; {seconds:.1f} s for both maps.")
    with st.expander("Every class probability"):
        st.dataframe(pd.DataFrame({"class": classes, "original (%)": (100 * p0).round(1),
                                   "compressed (%)": (100 * p1).round(1),
                                   "change (points)": (100 * (p1 - p0)).round(1)}), hide_index=True)
    st.caption(f"{name}: a research demonstration of what compression does to an automatic classifier, "
               "not a medical device and not a diagnosis.")
    chosen["bpp"] = float(row["bpp"])
    return chosen


#: the shipped study file of each image source
STUDY_FILES = {"isic-test": "isic/test.csv", "isic-fullres-test": "isic/fullres_test.csv"}


def _study_file(frames: dict, dataset: str, codec: str | None, task: str) -> str:
    """The results file to quote for ``codec``: the dataset's study file, or, for a codec
    it lacks (the overfitted codec is swept into a file of its own), another file of the
    same dataset that measured it with this classifier."""
    key = STUDY_FILES.get(dataset, "isic/test.csv")
    key = key if key in frames else "isic/test.csv" if "isic/test.csv" in frames else next(iter(frames))
    df = frames[key][1]
    if codec is None or (df["codec"].astype(str) == codec).any():
        return key
    for other, (_, odf) in sorted(frames.items()):
        here = odf[(odf["codec"].astype(str) == codec) & (odf["task"].astype(str) == task)]
        if not here.empty and (here["dataset"].astype(str) == (dataset or "isic-test")).all():
            return other
    return key


def study_evidence(frames: dict, codec: str | None, bpp: float | None = None, task: str = "classify",
                   dataset: str | None = None) -> None:
    """What the shipped study measured for ``codec`` with classifier ``task`` on the test
    set of ``dataset`` (default the 180 px ISIC test set), in sentences: how often the
    model is right on the originals per malignant class, then the measured bit rate
    nearest ``bpp`` and, folded, every other one."""
    if not frames:
        st.info("No study results on this server.")
        return
    key = _study_file(frames, dataset or "isic-test", codec, task)
    path, df = frames[key]
    df = df[df["task"].astype(str) == task]
    if df.empty:
        df = frames[key][1]
        task = str(df["task"].iloc[0])
        df = df[df["task"].astype(str) == task]
    measured = sorted(df["codec"].unique())
    if codec not in measured:
        st.info(f"The study did not measure {codec}; its evidence for JPEG follows." if "jpeg" in measured
                else f"The study did not measure {codec}.")
        if "jpeg" not in measured:
            return
        codec = "jpeg"
    rows = whole_images(df[df["codec"] == codec])  # as the summary: the images of every quality
    summary = summary_table(str(path), path.stat().st_mtime, task, codec)
    first = rows[rows["quality"] == summary["quality"].iloc[0]]
    its = fitting_iterations(rows["codec_settings"].dropna().iloc[0]) if "codec_settings" in rows and \
        rows["codec_settings"].notna().any() else 0
    size = fitting_effort(rows["codec_settings"].dropna().iloc[0]).partition(", ")[2] if its else ""
    effort = f", {its:,} fitting iterations an image" + (f" with a {size} decoder" if size else "") if its else ""
    st.markdown(f"**{classifier_name(task)}, {count(first['image'].nunique(), 'image')} of the ISIC test set "
                f"({key}{effort}).** " + originals_sentence(first))
    summary = summary.sort_values("bpp", ascending=False).reset_index(drop=True)
    near = int((summary["bpp"] - bpp).abs().idxmin()) if bpp is not None else 0
    r = summary.iloc[near]
    st.markdown(plain_summary(r, rows[rows["quality"] == r["quality"]]))
    if len(summary) > 1:
        with st.expander(f"Every bit rate the study measured for {codec}"):
            for i, r in summary.iterrows():
                if i != near:
                    st.markdown(plain_summary(r, rows[rows["quality"] == r["quality"]]))
