"""Run a sweep: choose a dataset, codecs, qualities and task; results appear in the other pages."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid

import streamlit as st

from nicviz.codecs import get_codec
from nicviz.dashboard.widgets import (
    available_codecs,
    claim_results_name,
    dataset_choices,
    release_results_name,
    remembered,
)
from nicviz.datasets import dataset_from_uploads, resolve_dataset, write_builtin_samples
from nicviz.errors import NicvizError
from nicviz.executors import make_executor
from nicviz.metrics import METRICS
from nicviz.paths import allowed_folder, results_dir
from nicviz.settings import dask_schedulers, max_neural_pixels, max_pixels, max_sweep_images
from nicviz.specs import format_qualities
from nicviz.sweep import run_sweep
from nicviz.sweep_request import sweep_request
from nicviz.tasks.classify.models import ISIC_MODELS, MODELS_DIR

st.title("Run a sweep")

MAX_IMAGES = max_sweep_images()
session = st.session_state.setdefault("rs_session", uuid.uuid4().hex[:6])
choices = {"built-in samples (scikit-image photographs)": "__samples__", **dataset_choices(),
           "my own images (upload)": "__upload__", "a folder under the data root": "__folder__"}
pick = st.selectbox("Dataset", list(choices), key="rs_dataset", **remembered("rs_dataset", 0, "index", choices))
folder = choices[pick]
uploads = []
if folder == "__folder__":
    folder = st.text_input("Folder (relative to the data root)", key="rs_folder", **remembered("rs_folder", ""),
                           help="Only folders under the data root (and $NICVIZ_ALLOWED_ROOTS) can be read.").strip()
elif folder == "__upload__":
    uploads = st.file_uploader("Images, or a zip of them (class sub-folders in a zip become labels)",
                               accept_multiple_files=True, key="rs_upload") or []
offered = available_codecs()
codecs = st.multiselect("Codecs", offered, key="rs_codecs",
                        **remembered("rs_codecs", [c for c in ("jpeg", "webp") if c in offered], "default", offered))
defaults = format_qualities({c: get_codec(c).available_qualities()[::2] for c in codecs})
# keyed by the codec choice: adding or removing a codec brings its qualities along
qkey = "rs_qualities_" + "-".join(codecs)
qspec = st.text_input("Qualities per codec (codec=q,q,... or start:stop:step; separated by ';')", key=qkey,
                      **remembered(qkey, defaults))
metrics = st.multiselect("Metrics", list(METRICS), key="rs_metrics",
                         **remembered("rs_metrics", ["psnr", "ssim", "ms_ssim"], "default"))
limit = st.number_input("Images to use (0 = all of them)", min_value=0, max_value=MAX_IMAGES, step=1,
                        **remembered("rs_limit", 0),
                        key="rs_limit", help="A random sample (the same number gives the same images), "
                                             "to try settings quickly before the whole dataset.")
TASKS = {"rd": "reconstruction quality only", "ocr": "licence-plate OCR (folder needs labels.csv)",
         "classify": "skin-lesion diagnosis (class sub-folders as labels)"}
shipped = [m for m in ISIC_MODELS if m != "isic-effnet-lite0" and (MODELS_DIR / f"{m}.pt").is_file()]
if shipped:
    TASKS["classify-all"] = "skin-lesion diagnosis, standard and compression-trained classifiers"
TASKS["classify:imagenet-effnet-lite0"] = "ImageNet prediction consistency"
task = st.selectbox("Task", list(TASKS), format_func=TASKS.get, key="rs_task", **remembered("rs_task", 0, "index", TASKS))
if task == "classify-all":
    task = ["classify", *(f"classify:{m}" for m in shipped)]
name = st.text_input("Name of the results file", key="rs_name", **remembered("rs_name", f"my-sweep-{session}"))
out = results_dir() / "user" / f"{name}.csv"
mine = st.session_state.setdefault("rs_written", set())
add_to_existing = True
# every session of this server shares one process: a name another session holds or wrote is asked about
if (out.is_file() or not claim_results_name(name, session, dry_run=True)) and name not in mine:
    add_to_existing = st.checkbox(f"A results file named {name} exists or another session is writing it. Add this "
                                  "sweep's rows to it", value=False, key="rs_add")
# a Dask scheduler runs code as whoever connects (and sends pickles back): only clusters the
# operator configured ($NICVIZ_DASK_SCHEDULERS) are offered, never an address typed here
clusters = dask_schedulers()
places = ["this machine", "local Dask workers (2 processes)", *(f"Dask cluster {n}" for n in clusters)]
where = st.radio("Run on", places, horizontal=True, key="rs_where", **remembered("rs_where", 0, "index", places),
                 help="Dask spreads the images over its workers; the results come back here. Clusters are "
                      "offered only when this server's operator configured them ($NICVIZ_DASK_SCHEDULERS).")
scheduler = clusters.get(where.removeprefix("Dask cluster "), "") if where.startswith("Dask cluster ") else ""
ship = False
if scheduler:
    ship = st.checkbox("Send the images with each task (workers cannot see this machine's folders)",
                       key="rs_ship")
neural = [c for c in codecs if get_codec(c).family == "neural"]
limits = {"classical": max_pixels(), "neural": max_neural_pixels()}
downscale = st.checkbox(f"Downscale images above this server's limits ({limits['classical'] / 1e6:g} megapixels"
                        + (f"; {limits['neural'] / 1e6:g} for the neural codecs" if neural else "")
                        + "); unticked, such images are skipped", value=True, key="rs_downscale")


run = st.button("Run", type="primary", key="rs_run")
if st.session_state.get("rs_cancel") and not run:  # the rerun that Cancel caused
    st.warning(f"Sweep cancelled. The rows computed so far are kept in {out.name}; Run again continues "
               "where it stopped.")
if run:
    upload_dir = None
    claimed = False
    try:
        if not name.strip():
            raise NicvizError("enter a name for the results file")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", name):
            raise NicvizError("the name may use letters, digits, '.', '_' and '-' only")
        if not add_to_existing:
            raise NicvizError(f"{name} exists: tick the box to add to it, or choose another name")
        if folder == "__samples__":
            dataset = write_builtin_samples(tempfile.gettempdir() + "/nicviz-samples")
        elif folder == "__upload__":
            if not uploads:
                raise NicvizError("upload images (or a zip of them) first")
            upload_dir = tempfile.mkdtemp(prefix=f"nicviz-upload-{session}-")
            ignored: list[str] = []
            dataset = dataset_from_uploads([(u.name, u.getvalue()) for u in uploads], upload_dir, MAX_IMAGES,
                                           ignored=ignored)
            if ignored:
                shown = ", ".join(ignored[:5]) + (f" and {len(ignored) - 5} more" if len(ignored) > 5 else "")
                st.info(f"Left out, not image files: {shown}.")
        elif not folder:
            raise NicvizError("enter a folder under the data root")
        else:
            dataset = resolve_dataset(str(allowed_folder(folder)), confined=True)
        request = sweep_request(dataset, codecs, qspec, metrics, [task] if isinstance(task, str) else task,
                                int(limit), quality_defaults={}, image_limit=MAX_IMAGES)
        if not claim_results_name(name, session):
            raise NicvizError(f"another session is writing {name} right now: wait for it, or choose another name")
        claimed = True
        bar = st.progress(0.0, text="starting local Dask workers (about 30 s)..." if where.startswith("local Dask")
                          else f"connecting to {where}..." if scheduler else "starting...")
        # pressing Cancel reruns the page, which stops this run at its next progress update;
        # every finished row is already in the sweep's journal, so nothing is lost
        cancel = st.empty()
        cancel.button("Cancel", key="rs_cancel", help="Stop the sweep; the rows done so far are kept.")
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            elapsed = time.monotonic() - started
            eta = f", about {elapsed / done * (total - done):.0f} s left" if done else ""
            bar.progress(done / max(total, 1), text=f"{done} / {total} rows, {elapsed:.0f} s{eta}")

        executor = make_executor("dask", 2, scheduler or None, ship, from_env=False) if where != "this machine" \
            else None
        summary = run_sweep(**request.arguments(), out=out, progress=False,
                            on_progress=progress, command=["dashboard", "run-a-sweep", name], executor=executor,
                            pixel_limits=limits, downscale=downscale)
        bar.progress(1.0, text="done")
        cancel.empty()  # nothing left to cancel
        mine.add(name)
        if summary.rows:
            st.success(f"{summary.rows} rows in results/user/{out.name} ({summary.computed} computed, "
                       f"{summary.skipped} already there, {summary.wall_s:.1f} s). Open the Rate-distortion or "
                       "Licence plates page to see them.")
        else:
            st.warning("No row could be computed: every image failed (see below). Nothing was added to the results.")
        for e in summary.errors:
            st.warning(f"skipped: {e['error']}")
    except (NicvizError, FileNotFoundError) as exc:
        st.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except OSError as exc:  # disk full, a folder gone: one line, no server path
        st.error(f"the sweep stopped: {exc.strerror or type(exc).__name__}; the rows computed so far are kept")
    finally:
        if upload_dir is not None:
            shutil.rmtree(upload_dir, ignore_errors=True)
        if claimed:
            release_results_name(name, session)
