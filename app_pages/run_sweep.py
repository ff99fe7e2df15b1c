"""Run a sweep: choose a dataset, codecs, qualities and task; results appear in the other pages."""

from __future__ import annotations

import os
import re
import tempfile
import time
import uuid

import streamlit as st

from nicviz.codecs import get_codec
from nicviz.dashboard.widgets import available_codecs, dataset_choices
from nicviz.datasets import dataset_from_uploads, resolve_dataset, write_builtin_samples
from nicviz.errors import NicvizError
from nicviz.executors import make_executor
from nicviz.metrics import METRICS
from nicviz.paths import allowed_folder, results_dir
from nicviz.specs import format_qualities, parse_qualities
from nicviz.sweep import run_sweep
from nicviz.tasks.classify.models import ISIC_MODELS, MODELS_DIR

st.title("Run a sweep")

MAX_IMAGES = int(os.environ.get("NICVIZ_MAX_SWEEP_IMAGES", "300"))
session = st.session_state.setdefault("rs_session", uuid.uuid4().hex[:6])
choices = {"built-in samples (scikit-image photographs)": "__samples__", **dataset_choices(),
           "my own images (upload)": "__upload__", "a folder under the data root": "__folder__"}
pick = st.selectbox("Dataset", list(choices), key="rs_dataset")
folder = choices[pick]
uploads = []
if folder == "__folder__":
    folder = st.text_input("Folder (relative to the data root)", key="rs_folder",
                           help="Only folders under the data root (and $NICVIZ_ALLOWED_ROOTS) can be read.").strip()
elif folder == "__upload__":
    uploads = st.file_uploader("Images, or a zip of them (class sub-folders in a zip become labels)",
                               accept_multiple_files=True, key="rs_upload") or []
codecs = st.multiselect("Codecs", available_codecs(), default=["jpeg", "webp"], key="rs_codecs")
defaults = format_qualities({c: get_codec(c).available_qualities()[::2] for c in codecs})
# keyed by the codec choice: adding or removing a codec brings its qualities along
qspec = st.text_input("Qualities per codec (codec=q,q,... or start:stop:step; separated by ';')", value=defaults,
                      key="rs_qualities_" + "-".join(codecs))
metrics = st.multiselect("Metrics", list(METRICS), default=["psnr", "ssim", "ms_ssim"], key="rs_metrics")
limit = st.number_input("Images to use (0 = all of them)", min_value=0, max_value=MAX_IMAGES, value=0, step=1,
                        key="rs_limit", help="A random sample (the same number gives the same images), "
                                             "to try settings quickly before the whole dataset.")
TASKS = {"rd": "reconstruction quality only", "ocr": "licence-plate OCR (folder needs labels.csv)",
         "classify": "skin-lesion diagnosis (class sub-folders as labels)"}
shipped = [m for m in ISIC_MODELS if m != "isic-effnet-lite0" and (MODELS_DIR / f"{m}.pt").is_file()]
if shipped:
    TASKS["classify-all"] = "skin-lesion diagnosis, standard and compression-trained classifiers"
TASKS["classify:imagenet-effnet-lite0"] = "ImageNet prediction consistency"
task = st.selectbox("Task", list(TASKS), format_func=TASKS.get, key="rs_task")
if task == "classify-all":
    task = ["classify", *(f"classify:{m}" for m in shipped)]
name = st.text_input("Name of the results file", value=f"my-sweep-{session}", key="rs_name")
out = results_dir() / "user" / f"{name}.csv"
mine = st.session_state.setdefault("rs_written", set())
add_to_existing = True
if out.is_file() and name not in mine:
    add_to_existing = st.checkbox(f"A results file named {name} exists (another session's?). Add this sweep's rows "
                                  "to it", value=False, key="rs_add")
where = st.radio("Run on", ["this machine", "a Dask cluster"], horizontal=True, key="rs_where",
                 help="A Dask cluster spreads the images over its workers; the results come back here.")
scheduler = ""
if where == "a Dask cluster":
    scheduler = st.text_input("Scheduler address (empty: start 2 local Dask workers)",
                              placeholder="tcp://host:8786", key="rs_scheduler").strip()
    ship = st.checkbox("Send the images with each task (workers cannot see this machine's folders)",
                       key="rs_ship")


run = st.button("Run", type="primary", key="rs_run")
if st.session_state.get("rs_cancel") and not run:  # the rerun that Cancel caused
    st.warning(f"Sweep cancelled. The rows computed so far are kept in {out.name}; Run again continues "
               "where it stopped.")
if run:
    try:
        if not codecs:
            raise NicvizError("choose at least one codec")
        if not metrics:
            raise NicvizError("choose at least one metric")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", name):
            raise NicvizError("the name may use letters, digits, '.', '_' and '-' only")
        qualities = parse_qualities(codecs, qspec, defaults={})
        if not add_to_existing:
            raise NicvizError(f"{name} exists: tick the box to add to it, or choose another name")
        if folder == "__samples__":
            dataset = write_builtin_samples(tempfile.gettempdir() + "/nicviz-samples")
        elif folder == "__upload__":
            if not uploads:
                raise NicvizError("upload images (or a zip of them) first")
            dataset = dataset_from_uploads([(u.name, u.getvalue()) for u in uploads],
                                           tempfile.mkdtemp(prefix=f"nicviz-upload-{session}-"), MAX_IMAGES)
        elif not folder:
            raise NicvizError("enter a folder under the data root")
        else:
            dataset = resolve_dataset(str(allowed_folder(folder)))
        dataset = dataset.sample(int(limit))
        if len(dataset.files) > MAX_IMAGES:
            raise NicvizError(f"this dataset has {len(dataset.files)} images; the dashboard runs at most {MAX_IMAGES} "
                              "(use `nicviz sweep` for larger ones, or set NICVIZ_MAX_SWEEP_IMAGES)")
        bar = st.progress(0.0, text="starting...")
        # pressing Cancel reruns the page, which stops this run at its next progress update;
        # every finished row is already in the sweep's journal, so nothing is lost
        st.button("Cancel", key="rs_cancel", help="Stop the sweep; the rows done so far are kept.")
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            elapsed = time.monotonic() - started
            eta = f", about {elapsed / done * (total - done):.0f} s left" if done else ""
            bar.progress(done / max(total, 1), text=f"{done} / {total} rows, {elapsed:.0f} s{eta}")

        executor = make_executor("dask", 2, scheduler or None, ship) if where == "a Dask cluster" else None
        summary = run_sweep(dataset, codecs, qualities, out, metrics=tuple(metrics), task=task, progress=False,
                            on_progress=progress, command=["dashboard", "run-a-sweep", name], executor=executor)
        bar.progress(1.0, text="done")
        mine.add(name)
        st.success(f"{summary.rows} rows in {out} ({summary.computed} computed, {summary.skipped} already there, "
                   f"{summary.wall_s:.1f} s). Open the Rate-distortion or Licence plates page to see them.")
        for e in summary.errors:
            st.warning(f"skipped: {e['error']}")
    except (NicvizError, FileNotFoundError) as exc:
        st.error(str(exc))
