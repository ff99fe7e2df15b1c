"""Summary tables the pages lay out, computed once per results-file version: class
summaries and BD tables with their bootstrap intervals (laid out by
:mod:`nicviz.analysis.tables`)."""

from __future__ import annotations

import streamlit as st

from nicviz.dashboard.widgets import load_results

__all__ = ["summary_table", "bd_classifier_tables", "bd_codec_table", "merged_rows"]


@st.cache_data(show_spinner=False, max_entries=64)
def summary_table(path: str, mtime: float, task: str, codec: str | None = None):
    """:func:`~nicviz.analysis.classification_summary` of one classifier's rows of a
    results file (one codec's, when given), over the images measured at every quality of
    their codec, computed once per file version."""
    from nicviz.analysis import classification_summary
    from nicviz.results import whole_images

    df = load_results(path, mtime)
    df = whole_images(df[df["task"].astype(str) == task])  # a growing sweep: its finished images only
    return classification_summary(df if codec is None else df[df["codec"] == codec])


@st.cache_data(show_spinner=False, max_entries=8)
def bd_classifier_tables(path: str, mtime: float, anchor_task: str, points: float = 5.0):
    """Per codec: BD-accuracy of each other classifier against ``anchor_task`` and the
    accuracy won back where the anchor first loses ``points`` (cached per results file)."""
    import pandas as pd

    from nicviz.analysis.bd_task import bd_classifiers
    from nicviz.analysis.classify import accuracy_won_back

    df = load_results(path, mtime)
    df = df[df["task"].astype(str).str.startswith("classify") & df["label"].notna()]
    won = [accuracy_won_back(df, anchor_task, t, points).assign(task=t)
           for t in sorted(set(df["task"].astype(str)) - {anchor_task})]
    return bd_classifiers(df, anchor_task, n_boot=500), pd.concat(won, ignore_index=True) if won else pd.DataFrame()


def merged_rows(path: str, mtime: float, task: str, beside: tuple[tuple[str, float], ...] = ()):
    """The rows of ``task`` in a results file with those of the per-image codecs' sweeps
    ``beside`` it (``(path, mtime)`` pairs), all on the images every file has finished (a
    growing sweep is a random sample of the images: the other codecs are held to the same
    sample). Returns ``(rows, images of the main file, images kept)``."""
    import pandas as pd

    from nicviz.results import whole_images

    df = load_results(path, mtime)
    df = df[df["task"].astype(str) == task]
    everything = df["image"].nunique()
    if not beside:
        return df, everything, everything
    frames, keep = [df], set(df["image"])
    for other, other_mtime in beside:
        extra = whole_images(load_results(other, other_mtime))
        extra = extra[(extra["task"].astype(str) == task) & ~extra["codec"].isin(set(df["codec"]))]
        frames.append(extra)
        keep &= set(extra["image"])
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows["image"].isin(keep)].reset_index(drop=True), everything, len(keep)


@st.cache_data(show_spinner=False, max_entries=8)
def bd_codec_table(path: str, mtime: float, task: str, anchor: str, score: str, higher_is_better: bool = True,
                   beside: tuple[tuple[str, float], ...] = ()):
    """BD of every codec against ``anchor`` on ``score`` for the rows of ``task`` (cached),
    with the per-image codecs' sweeps ``beside`` it on their shared images (:func:`merged_rows`)."""
    from nicviz.analysis.bd_task import bd_codecs

    df = merged_rows(path, mtime, task, beside)[0]
    if "label" in df and score == "correct":
        df = df[df["label"].notna()]
    return bd_codecs(df, anchor, score, higher_is_better, n_boot=500)
