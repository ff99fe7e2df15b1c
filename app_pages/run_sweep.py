"""Run a sweep: choose a dataset, codecs, qualities and task; results appear in the other pages."""

from __future__ import annotations

import re
import tempfile

import streamlit as st

from nicviz.codecs import get_codec
from nicviz.dashboard.widgets import available_codecs, dataset_choices
from nicviz.datasets import resolve_dataset, write_builtin_samples
from nicviz.errors import NicvizError
from nicviz.executors import make_executor
from nicviz.metrics import METRICS
from nicviz.paths import results_dir
from nicviz.specs import format_qualities, parse_qualities
from nicviz.sweep import run_sweep

st.title("Run a sweep")

choices = {"built-in samples (scikit-image photographs)": "__samples__", **dataset_choices(),
           "a folder on this machine": "__folder__"}
pick = st.selectbox("Dataset", list(choices), key="rs_dataset")
folder = choices[pick]
if folder == "__folder__":
    folder = st.text_input("Folder path", key="rs_folder").strip()
codecs = st.multiselect("Codecs", available_codecs(), default=["jpeg", "webp"], key="rs_codecs")
defaults = format_qualities({c: get_codec(c).available_qualities()[::2] for c in codecs})
qspec = st.text_input("Qualities per codec (codec=q,q,... or start:stop:step; separated by ';')", value=defaults,
                      key="rs_qualities")
metrics = st.multiselect("Metrics", list(METRICS), default=["psnr", "ssim", "ms_ssim"], key="rs_metrics")
task = st.selectbox("Task", ["rd", "ocr", "classify", "classify:imagenet-effnet-lite0"],
                    format_func={"rd": "reconstruction quality only",
                                 "ocr": "licence-plate OCR (folder needs labels.csv)",
                                 "classify": "skin-lesion diagnosis (class sub-folders as labels)",
                                 "classify:imagenet-effnet-lite0": "ImageNet prediction consistency"}.get,
                    key="rs_task")
name = st.text_input("Name of the results file", value="my-sweep", key="rs_name")
where = st.radio("Run on", ["this machine", "a Dask cluster"], horizontal=True, key="rs_where",
                 help="A Dask cluster spreads the images over its workers; the results come back here.")
scheduler = ""
if where == "a Dask cluster":
    scheduler = st.text_input("Scheduler address (empty: start 2 local Dask workers)",
                              placeholder="tcp://host:8786", key="rs_scheduler").strip()
    ship = st.checkbox("Send the images with each task (workers cannot see this machine's folders)",
                       key="rs_ship")


if st.button("Run", type="primary", key="rs_run"):
    try:
        if not codecs:
            raise NicvizError("choose at least one codec")
        if not metrics:
            raise NicvizError("choose at least one metric")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", name):
            raise NicvizError("the name may use letters, digits, '.', '_' and '-' only")
        qualities = parse_qualities(codecs, qspec, defaults={})
        if folder == "__samples__":
            dataset = write_builtin_samples(tempfile.gettempdir() + "/nicviz-samples")
        elif not folder:
            raise NicvizError("enter a folder path")
        else:
            dataset = resolve_dataset(folder)
        out = results_dir() / "user" / f"{name}.csv"
        bar = st.progress(0.0, text="starting...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"{done} / {total} rows")

        executor = make_executor("dask", 2, scheduler or None, ship) if where == "a Dask cluster" else None
        summary = run_sweep(dataset, codecs, qualities, out, metrics=tuple(metrics), task=task, progress=False,
                            on_progress=progress, command=["dashboard", "run-a-sweep", name], executor=executor)
        bar.progress(1.0, text="done")
        st.success(f"{summary.rows} rows in {out} ({summary.computed} computed, {summary.skipped} already there, "
                   f"{summary.wall_s:.1f} s). Open the Rate-distortion or Licence plates page to see them.")
        for e in summary.errors:
            st.warning(f"skipped: {e['error']}")
    except (NicvizError, FileNotFoundError) as exc:
        st.error(str(exc))
