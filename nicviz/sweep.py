"""The grid runner: (image x codec x quality) rows, resumable, with a pluggable executor.

Resume protocol: every finished task appends its rows as JSON lines to
``<out>.journal.jsonl`` (one ``write`` per line, flushed and fsynced), and the results
file is rewritten atomically from time to time and at the end. On start, rows already
in the results file or the journal are skipped (a torn last journal line, left by
``kill -9``, is ignored), so rerunning the same command computes only what is missing
and never writes duplicate or partial rows.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from nicviz.codecs import get_codec
from nicviz.datasets import Dataset
from nicviz.errors import NicvizError
from nicviz.evaluate import evaluate
from nicviz.executors import MISSING_ROOT, Executor, ProcessExecutor, SerialExecutor, make_executor
from nicviz.images import IMAGE_SUFFIXES, ImageError, load_image
from nicviz.metrics import METRICS
from nicviz.paths import FileLock, atomic_write_bytes, check_writable
from nicviz.results import (
    COLUMNS,
    KEY,
    complete_rows,
    errors_path,
    integer_columns,
    meta_path,
    portable_root,
    read_results,
    run_metadata,
    write_csv_atomic,
    write_json_atomic,
    write_results,
)
from nicviz.sweep_settings import check_same_settings
from nicviz.tasks import TaskRunner

__all__ = ["Task", "SweepSummary", "Executor", "SerialExecutor", "ProcessExecutor", "run_sweep", "plan_tasks",
           "bitstream_path"]


@dataclass(frozen=True)
class Task:
    """One unit of work: one image with the (codec, quality) pairs still missing."""

    dataset: str
    root: str
    image: str
    pairs: tuple[tuple[str, int], ...]
    metrics: tuple[str, ...]
    task: str = "rd"
    label: str | None = None
    #: further tasks run on the same reconstructions (e.g. several classifiers): one row each
    also: tuple[str, ...] = ()
    #: the image file's bytes, for workers that cannot read ``root`` (``--ship-images``)
    data: bytes | None = field(default=None, repr=False)
    #: ``(codec family, pixels)``: the most pixels a family's codecs may get (a shared server's budget)
    pixel_limits: tuple[tuple[str, int], ...] = ()
    #: images above a limit are downscaled to it (else recorded as an error for that codec)
    downscale: bool = False
    #: a folder to keep every bitstream in (``<image>/<codec>-q<quality>.bin``), or ``None``
    bitstreams: str | None = None


@dataclass
class SweepSummary:
    out: Path
    rows: int
    computed: int
    skipped: int
    errors: list[dict] = field(default_factory=list)
    wall_s: float = 0.0


def run_task(task: Task) -> list[dict]:
    """Run one task; returns result rows and ``{"error": ...}`` records."""
    if task.data is None and not Path(task.root).is_dir():
        return [{MISSING_ROOT: task.root, "task": task}]
    try:
        rgb = load_image(Path(task.root) / task.image if task.data is None else task.data, name=task.image)
    except ImageError as exc:
        return [{"error": {"image": task.image, "codec": None, "quality": None, "error": str(exc)}}]
    runners: list[tuple[str, TaskRunner, dict]] = []
    for name in (task.task, *task.also):
        from nicviz.tasks import get_task

        runner = get_task(name)
        try:
            runners.append((name, runner, runner.reference(rgb, task.label)))
        except NicvizError as exc:
            return [{"error": {"image": task.image, "codec": None, "quality": None,
                               "error": f"{task.image}: {name} failed on the original ({exc})"}}]
    out: list[dict] = []
    limits = dict(task.pixel_limits)
    for codec, q in task.pairs:
        try:
            ev = evaluate(_within(rgb, limits.get(get_codec(codec).family), task.downscale, task.image), codec, q,
                          task.metrics)
            if task.bitstreams and ev.bitstream is not None:
                target = bitstream_path(task.bitstreams, task.image, codec, q)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, ev.bitstream)
            rows = [{"dataset": task.dataset, "image": task.image, "task": name, **ev.row,
                     **runner.compare(ev.reconstruction, task.label, ref)} for name, runner, ref in runners]
        except NicvizError as exc:
            out.append({"error": {"image": task.image, "codec": codec, "quality": q,
                                  "error": f"{task.image}: {exc}"}})
            continue
        out.extend(rows)
    return out


def bitstream_path(folder: str | os.PathLike, image: str, codec: str, quality: float) -> Path:
    """Where ``--bitstreams`` keeps the bitstream of one row."""
    return Path(folder) / image / f"{codec}-q{float(quality):g}.bin"


def _within(rgb, limit: int | None, downscale: bool, image: str):
    """``rgb`` within ``limit`` pixels: as it is, downscaled (Lanczos), or a one-line error."""
    h, w = rgb.shape[:2]
    if limit is None or h * w <= limit:
        return rgb
    if not downscale:
        raise NicvizError(f"{w} x {h} is more than this server's limit of {limit:,} pixels for this codec")
    import numpy as np
    from PIL import Image

    scale = (limit / (h * w)) ** 0.5
    return np.asarray(Image.fromarray(rgb).resize((max(1, int(w * scale)), max(1, int(h * scale))),
                                                  Image.Resampling.LANCZOS))


def _run_indexed(item: tuple[int, Task]) -> tuple[int, list[dict]]:
    return item[0], run_task(item[1])


def zip_tasks(executor: Executor, tasks: list[Task]) -> Iterator[tuple[Task, list[dict]]]:
    """Run ``tasks`` on ``executor`` and yield each task with its records as it finishes."""
    for i, records in executor.map_unordered(_run_indexed, list(enumerate(tasks))):
        yield tasks[i], records


def _journal_path(out: Path) -> Path:
    return Path(str(out) + ".journal.jsonl")


def _read_journal(path: Path) -> tuple[list[dict], list[dict]]:
    rows: list[dict] = []
    errors: list[dict] = []
    if not path.is_file():
        return rows, errors
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn write from an interrupted run
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if not isinstance(rec, dict):
                continue  # valid JSON of another shape (null, a list): not ours
            if isinstance(rec.get("error"), dict):
                errors.append(rec["error"])
            elif all(k in rec for k in KEY):
                rows.append(rec)
    return rows, errors


def _key(row: dict) -> tuple:
    q = float(row["quality"])
    return (str(row["dataset"]), str(row["image"]), str(row["codec"]), int(q) if q.is_integer() else q,
            str(row["task"]))


def _read_untorn(out: Path) -> pd.DataFrame:
    """The results file without a row cut by a torn write: a CSV that does not end in a
    newline loses its last, partial line (a value cut short still parses as a number)."""
    if out.suffix.lower() != ".csv":
        return read_results(out)
    import io

    data = out.read_bytes()
    untouched = f"{out}: cannot be read as a results file (its columns are not a sweep's); it was left untouched"
    if b"\n" not in data:  # at most a header cut short: keep nothing, but only if it is one
        head, full = data.decode("ascii", "replace"), ",".join(COLUMNS)
        if full.startswith(head) or head.startswith(full):
            return pd.DataFrame(columns=list(COLUMNS))
        raise NicvizError(untouched)
    if not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    try:
        df = pd.read_csv(io.BytesIO(data), keep_default_na=True, float_precision="round_trip")
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NicvizError(f"{out}: cannot be read as a results file ({first}); it was left untouched") from None
    if not {"codec", "quality", "bpp"} <= set(df.columns):
        raise NicvizError(untouched)
    return df


def _existing_rows(out: Path, metrics: tuple[str, ...] = ()) -> dict[tuple, dict]:
    """Rows already done, from the results file and the journal; a row that fails
    :func:`~nicviz.results.complete_rows` (torn, cut short, a wrong value) is left to recompute."""
    found: dict[tuple, dict] = {}
    if out.is_file():
        for rec in complete_rows(_read_untorn(out), metrics).to_dict("records"):
            found[_key(rec)] = rec
    journal_rows, _ = _read_journal(_journal_path(out))
    if journal_rows:
        for rec in complete_rows(pd.DataFrame(journal_rows), metrics).to_dict("records"):
            found[_key(rec)] = rec
    return found


def task_names(task: str | Sequence[str]) -> list[str]:
    """``"classify"`` or several task names on the same reconstructions (all classify or all ocr)."""
    names = [task] if isinstance(task, str) else list(dict.fromkeys(task))
    if not names:
        raise NicvizError("no task given")
    from nicviz.tasks import task_info

    kinds = {task_info(n).name for n in names}
    if len(names) > 1 and (len(kinds) > 1 or not task_info(names[0]).combinable):
        raise NicvizError(f"tasks {', '.join(names)} cannot share a sweep: give several classifiers or "
                          "several OCR engines, not a mix")
    return names


def plan_tasks(dataset: Dataset, codecs: list[str], qualities: dict[str, list[int]],
               metrics: Sequence[str], done: Iterable[tuple], task: str | Sequence[str] = "rd",
               labels: dict[str, str] | None = None) -> list[Task]:
    """One task per image that has at least one (codec, quality) not in ``done``; with
    several task names, a pair missing for any of them is computed once for all.

    With a codec that fits each image (minutes a pair) the images come in a random order
    (seed 0, the same every run), each image's pairs together: a sweep stopped part way is a
    random sample of whole images, not the first classes of a labelled folder."""
    done = set(done)
    names = task_names(task)
    slow = {c for c in codecs if get_codec(c).fits_per_image}
    files = list(dataset.files)
    if slow:
        import numpy as np

        files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    tasks = []
    for path in files:
        image = dataset.image_id(path)
        missing = tuple((c, q) for c in codecs for q in qualities[c]
                        if any((dataset.name, image, c, q, t) not in done for t in names))
        if not missing:
            continue
        label = labels.get(image) if labels else None
        # a codec that fits each image takes minutes a pair: each pair is a unit of its own, so an
        # interrupted sweep loses at most one fit and the pairs spread over the workers
        groups = [tuple(p for p in missing if p[0] not in slow)] + [(p,) for p in missing if p[0] in slow]
        for pairs in groups:
            if pairs:
                tasks.append(Task(dataset.name, str(dataset.root), image, pairs, tuple(metrics), names[0], label,
                                  also=tuple(names[1:])))
    return tasks


def _frame(rows: Iterable[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    return integer_columns(df.sort_values(list(KEY)).reset_index(drop=True))


def _write_errors(errors: list[dict], out: Path) -> None:
    err_file = errors_path(out)
    if errors:
        write_csv_atomic(pd.DataFrame(errors).drop_duplicates(), err_file)
    elif err_file.exists():
        err_file.unlink()


def run_sweep(dataset: Dataset, codecs: list[str], qualities: dict[str, list[int]], out: str | os.PathLike,
              metrics: Sequence[str] = METRICS, jobs: int = 1, executor: Executor | None = None,
              progress: bool = True, command: list[str] | None = None, flush_every_s: float = 30.0,
              task: str | Sequence[str] = "rd", on_progress: Callable[[int, int], None] | None = None,
              pixel_limits: dict[str, int] | None = None, downscale: bool = False,
              bitstreams: str | os.PathLike | None = None) -> SweepSummary:
    """Run (or resume) a sweep and write ``out`` plus its metadata and errors files.

    ``on_progress(done_rows, total_rows)`` is called after each finished task (the
    dashboard's progress bar); ``progress`` shows a terminal bar with ETA.
    ``pixel_limits`` (``{codec family: pixels}``, a shared server's budget) downscales
    larger images with ``downscale``, else records them as errors for those codecs.
    ``bitstreams`` keeps every row's bitstream in that folder (:func:`bitstream_path`).
    """
    out = Path(out)
    for name in codecs:
        codec = get_codec(name)
        codec.require_available()
        for q in qualities[name]:
            codec.check_quality(q)
    from nicviz.tasks import get_task

    names = task_names(task)
    labels = get_task(names[0]).labels(dataset) or None
    check_writable(out, "results file")
    lock = FileLock(out)  # one writer per results file: a second sweep on it refuses in one line
    lock.acquire()
    try:
        t_start = time.perf_counter()
        found = _existing_rows(out, tuple(metrics))
        check_same_settings(found.values(), codecs, out)
        tasks = plan_tasks(dataset, codecs, qualities, metrics, found.keys(), task, labels)
        if pixel_limits:
            tasks = [replace(t, pixel_limits=tuple(sorted(pixel_limits.items())), downscale=downscale) for t in tasks]
        if bitstreams:
            tasks = [replace(t, bitstreams=str(Path(bitstreams).resolve())) for t in tasks]
        total_rows = sum(len(t.pairs) for t in tasks)
        skipped = len(found)
        executor = executor or make_executor("local", jobs)
        journal = _journal_path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        errors: list[dict] = [
            {"image": dataset.image_id(p), "codec": None, "quality": None,
             "error": f"{dataset.image_id(p)}: {p.suffix.lower()} images are not read by nicviz "
                      f"(use {', '.join(sorted(IMAGE_SUFFIXES))})"} for p in dataset.unsupported]
        computed = 0
        done_rows = 0
        bar = None
        if progress and total_rows:
            from tqdm import tqdm

            bar = tqdm(total=total_rows, unit="row", desc=f"sweep {dataset.name}", dynamic_ncols=True)
        last_flush = time.monotonic()
        with journal.open("a", encoding="utf-8") as jf:
            for task_, records in zip_tasks(executor, tasks):
                lines = []
                for rec in records:
                    if MISSING_ROOT in rec:  # only a remote worker can miss the folder; a local one means it vanished
                        rec = {"error": {"image": task_.image, "codec": None, "quality": None,
                                         "error": f"{task_.image}: dataset folder {rec[MISSING_ROOT]} is missing"}}
                    if "error" in rec:
                        errors.append(rec["error"])
                    else:
                        found[_key(rec)] = rec
                        computed += 1
                    lines.append(json.dumps(rec, default=float) + "\n")
                jf.write("".join(lines))
                jf.flush()
                os.fsync(jf.fileno())
                done_rows += len(task_.pairs)
                if bar is not None:
                    bar.update(len(task_.pairs))
                if on_progress is not None:
                    on_progress(done_rows, total_rows)
                if found and time.monotonic() - last_flush > flush_every_s:
                    write_results(_frame(found.values()), out)
                    last_flush = time.monotonic()
        if bar is not None:
            bar.close()
        if not found:  # every input failed: no empty results file for the pages to trip on
            _write_errors(errors, out)
            journal.unlink(missing_ok=True)
            return SweepSummary(out=out, rows=0, computed=0, skipped=skipped, errors=errors,
                                wall_s=time.perf_counter() - t_start)
        write_results(_frame(found.values()), out)
        wall = time.perf_counter() - t_start
        root, root_base = portable_root(dataset.root)
        meta = run_metadata(command, dataset=dataset.name, dataset_root=root, dataset_root_base=root_base, codecs=codecs,
                            qualities=qualities, metrics=list(metrics), task=",".join(names), rows=len(found), errors=len(errors),
                            seed=0)
        # a results file can grow over several runs (another codec added later): keep each run's record
        previous: list[dict] = []
        if meta_path(out).is_file():
            try:
                old = json.loads(meta_path(out).read_text())
                previous = old.get("runs") or [{k: old.get(k) for k in ("date", "command", "codecs", "qualities",
                                                                        "packages")}]
            except (OSError, json.JSONDecodeError):
                previous = []
        meta["runs"] = [*previous, {k: meta[k] for k in ("date", "command", "codecs", "qualities", "packages")}]
        meta["codecs"] = sorted({str(r["codec"]) for r in found.values()})
        write_json_atomic(meta, meta_path(out))
        _write_errors(errors, out)
        journal.unlink(missing_ok=True)
        return SweepSummary(out=out, rows=len(found), computed=computed, skipped=skipped, errors=errors, wall_s=wall)
    finally:
        lock.release()
